/* ePass2003 secure messaging, card side: GlobalPlatform SCP01-like key
 * derivation (3DES or AES-ECB of the interleaved challenges), the FIPS
 * units' SCP03-style AES-CMAC derivation, and the command/response MACs
 * exactly as OpenSC's card-epass2003.c computes them on the host. */
#include "epass2003-sm.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <string.h>

size_t ep_sm_block(enum ep_sm_mode mode)
{
	return mode == EP_SM_DES ? 8 : 16;
}

/* One pass of a block cipher without padding; n a whole number of blocks. */
static int run(const EVP_CIPHER *c, const uint8_t *key, const uint8_t *iv,
	       int enc, const uint8_t *in, size_t n, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0, ok;

	if (!ctx)
		return -1;
	ok = EVP_CipherInit_ex(ctx, c, NULL, key, iv, enc) == 1 &&
	     EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
	     EVP_CipherUpdate(ctx, out, &l1, in, (int)n) == 1 &&
	     EVP_CipherFinal_ex(ctx, out + l1, &l2) == 1 &&
	     (size_t)(l1 + l2) == n;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* Single DES as 3DES with K||K||K: the default OpenSSL 3 provider has no
 * single DES, and EDE with three equal keys is exactly E_K. */
static int des1(const uint8_t k[8], const uint8_t *iv, int enc,
		const uint8_t *in, size_t n, uint8_t *out)
{
	uint8_t k3[24];
	int r;

	memcpy(k3, k, 8);
	memcpy(k3 + 8, k, 8);
	memcpy(k3 + 16, k, 8);
	r = run(iv ? EVP_des_ede3_cbc() : EVP_des_ede3_ecb(), k3, iv, enc, in,
		n, out);
	OPENSSL_cleanse(k3, sizeof(k3));
	return r;
}

static void shift1(const uint8_t in[16], uint8_t out[16])
{
	uint8_t msb = in[0] & 0x80;
	int i;

	for (i = 0; i < 15; i++)
		out[i] = (uint8_t)(in[i] << 1 | in[i + 1] >> 7);
	out[15] = (uint8_t)(in[15] << 1);
	if (msb)
		out[15] ^= 0x87;
}

/* RFC 4493 AES-CMAC, with the CBC chain starting at iv instead of zero
 * (NULL: zero). Equivalent to XORing iv into the first block, which is
 * how the host folds the ICV in. */
static int cmac(const uint8_t key[16], const uint8_t *iv, const uint8_t *m,
		size_t len, uint8_t out[16])
{
	static const uint8_t zero[16];
	uint8_t l[16], k1[16], k2[16], x[16], blk[16];
	size_t nblk = len ? (len + 15) / 16 : 1, i, j, last;
	int r = -1;

	if (run(EVP_aes_128_ecb(), key, NULL, 1, zero, 16, l) < 0)
		goto out;
	shift1(l, k1);
	shift1(k1, k2);
	memcpy(x, iv ? iv : zero, 16);
	for (i = 0; i + 1 < nblk; i++) {
		for (j = 0; j < 16; j++)
			x[j] ^= m[16 * i + j];
		if (run(EVP_aes_128_ecb(), key, NULL, 1, x, 16, x) < 0)
			goto out;
	}
	last = len - 16 * (nblk - 1);
	memset(blk, 0, sizeof(blk));
	if (len && last == 16) {
		memcpy(blk, m + 16 * i, 16);
		for (j = 0; j < 16; j++)
			blk[j] ^= k1[j];
	} else {
		if (last)
			memcpy(blk, m + 16 * i, last);
		blk[last] = 0x80;
		for (j = 0; j < 16; j++)
			blk[j] ^= k2[j];
	}
	for (j = 0; j < 16; j++)
		x[j] ^= blk[j];
	r = run(EVP_aes_128_ecb(), key, NULL, 1, x, 16, out);
out:
	OPENSSL_cleanse(l, sizeof(l));
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	OPENSSL_cleanse(x, sizeof(x));
	return r;
}

/* ISO 9797-1 MAC algorithm 3 (retail MAC): single-DES CBC under the left
 * half from iv, then decrypt with the right half and encrypt with the
 * left half again. n is a whole number of 8-byte blocks. */
static int retail_mac(const uint8_t key[16], const uint8_t iv[8],
		      const uint8_t *m, size_t n, uint8_t out[8])
{
	uint8_t buf[8], *tmp;
	int r = -1;

	if (!n || n % 8)
		return -1;
	tmp = OPENSSL_malloc(n);
	if (!tmp)
		return -1;
	if (des1(key, iv, 1, m, n, tmp) < 0 ||
	    des1(key + 8, NULL, 0, tmp + n - 8, 8, buf) < 0 ||
	    des1(key, NULL, 1, buf, 8, out) < 0)
		goto out;
	r = 0;
out:
	OPENSSL_clear_free(tmp, n);
	return r;
}

/* Last block of a CBC chain: the AES CBC-MAC the host computes. */
static int aes_cbc_mac(const uint8_t key[16], const uint8_t iv[16],
		       const uint8_t *m, size_t n, uint8_t out[16])
{
	uint8_t *tmp = OPENSSL_malloc(n ? n : 1);
	int r = -1;

	if (!tmp || !n || n % 16)
		goto out;
	if (run(EVP_aes_128_cbc(), key, iv, 1, m, n, tmp) < 0)
		goto out;
	memcpy(out, tmp + n - 16, 16);
	r = 0;
out:
	OPENSSL_clear_free(tmp, n ? n : 1);
	return r;
}

/* 3DES or AES CBC with a zero IV over m (padded by the caller). */
static int cbc0(enum ep_sm_mode mode, const uint8_t key[16], int enc,
		const uint8_t *m, size_t n, uint8_t *out)
{
	static const uint8_t zero[16];

	if (mode == EP_SM_DES)
		return run(EVP_des_ede_cbc(), key, zero, enc, m, n, out);
	return run(EVP_aes_128_cbc(), key, zero, enc, m, n, out);
}

/* The FIPS KDF input: a 32-byte SCP03 derivation block, constant at 11,
 * output length in bits at 13..14, counter 1 at 15, then both
 * challenges (host first). */
static void fips_block(uint8_t d[32], uint8_t constant, uint16_t bits,
		       const uint8_t host[8], const uint8_t card[8])
{
	memset(d, 0, 32);
	d[11] = constant;
	d[13] = (uint8_t)(bits >> 8);
	d[14] = (uint8_t)bits;
	d[15] = 0x01;
	memcpy(d + 16, host, 8);
	memcpy(d + 24, card, 8);
}

/* Cryptogram over first||second||80 00..: the 8 bytes after the first
 * 16 of the CBC output (DES: the third block; AES: half the second). */
static int cbc_cryptogram(enum ep_sm_mode mode, const uint8_t key[16],
			  const uint8_t first[8], const uint8_t second[8],
			  uint8_t out[8])
{
	uint8_t m[32], c[32];
	size_t bs = ep_sm_block(mode);

	memset(m, 0, sizeof(m));
	memcpy(m, first, 8);
	memcpy(m + 8, second, 8);
	m[16] = 0x80;
	if (cbc0(mode, key, 1, m, 16 + bs, c) < 0)
		return -1;
	memcpy(out, c + 16, 8);
	return 0;
}

int ep_sm_derive(struct ep_session *s, const uint8_t kenc[16],
		 const uint8_t kmac[16], const uint8_t host[8],
		 const uint8_t card[8], uint8_t card_crypto[8])
{
	uint8_t d[32], t[16];
	int r = -1;

	s->open = 0;
	if (s->mode == EP_SM_FIPS) {
		fips_block(d, 0x04, 0x80, host, card);
		if (cmac(kenc, NULL, d, 32, s->enc) < 0)
			goto out;
		d[11] = 0x06;
		if (cmac(kmac, NULL, d, 32, s->mac) < 0)
			goto out;
		fips_block(d, 0x00, 0x40, host, card);
		if (cmac(s->enc, NULL, d, 32, t) < 0)
			goto out;
		memcpy(card_crypto, t, 8);
		r = 0;
		goto out;
	}
	/* SCP01 derivation data: card[4..8] host[0..4] card[0..4] host[4..8] */
	memcpy(d, card + 4, 4);
	memcpy(d + 4, host, 4);
	memcpy(d + 8, card, 4);
	memcpy(d + 12, host + 4, 4);
	if (s->mode == EP_SM_DES) {
		if (run(EVP_des_ede_ecb(), kenc, NULL, 1, d, 16, s->enc) < 0 ||
		    run(EVP_des_ede_ecb(), kmac, NULL, 1, d, 16, s->mac) < 0)
			goto out;
	} else {
		if (run(EVP_aes_128_ecb(), kenc, NULL, 1, d, 16, s->enc) < 0 ||
		    run(EVP_aes_128_ecb(), kmac, NULL, 1, d, 16, s->mac) < 0)
			goto out;
	}
	r = cbc_cryptogram(s->mode, s->enc, host, card, card_crypto);
out:
	OPENSSL_cleanse(d, sizeof(d));
	OPENSSL_cleanse(t, sizeof(t));
	return r;
}

/* Host cryptogram and the MAC over 84 82 03 00 10 || cryptogram. */
static int host_auth_data(struct ep_session *s, const uint8_t host[8],
			  const uint8_t card[8], uint8_t out16[16])
{
	static const uint8_t zero[16];
	uint8_t d[32], m[16], mac[16];
	int r = -1;

	if (s->mode == EP_SM_FIPS) {
		fips_block(d, 0x01, 0x40, host, card);
		if (cmac(s->enc, NULL, d, 32, mac) < 0)
			goto out;
		memcpy(out16, mac, 8);
	} else if (cbc_cryptogram(s->mode, s->enc, card, host, out16) < 0) {
		goto out;
	}
	/* The MAC covers the command header 84 82 03 00 10 and the
	 * cryptogram: 13 bytes, ISO-padded to 16 except under CMAC. */
	memset(m, 0, sizeof(m));
	memcpy(m, "\x84\x82\x03\x00\x10", 5);
	memcpy(m + 5, out16, 8);
	m[13] = 0x80;
	if (s->mode == EP_SM_FIPS) {
		if (cmac(s->mac, NULL, m, 13, mac) < 0)
			goto out;
	} else if (s->mode == EP_SM_AES) {
		if (aes_cbc_mac(s->mac, zero, m, 16, mac) < 0)
			goto out;
	} else {
		/* Full 2-key 3DES CBC here, not the retail MAC: the second
		 * block's ciphertext. */
		uint8_t c[16];

		if (cbc0(EP_SM_DES, s->mac, 1, m, 16, c) < 0)
			goto out;
		memcpy(mac, c + 8, 8);
	}
	memcpy(out16 + 8, mac, 8);
	r = 0;
out:
	OPENSSL_cleanse(d, sizeof(d));
	OPENSSL_cleanse(mac, sizeof(mac));
	return r;
}

static void open_session(struct ep_session *s, const uint8_t mac[8])
{
	memset(s->icv, 0, sizeof(s->icv));
	memcpy(s->icv, mac, 8);
	s->open = 1;
}

int ep_sm_verify_host(struct ep_session *s, const uint8_t host[8],
		      const uint8_t card[8], const uint8_t *cmd16)
{
	uint8_t want[16];
	int r = -1;

	s->open = 0;
	if (host_auth_data(s, host, card, want) < 0 ||
	    CRYPTO_memcmp(want, cmd16, 16) != 0)
		goto out;
	open_session(s, want + 8);
	r = 0;
out:
	OPENSSL_cleanse(want, sizeof(want));
	return r;
}

int ep_sm_host_auth(struct ep_session *s, const uint8_t host[8],
		    const uint8_t card[8], uint8_t out16[16])
{
	s->open = 0;
	if (host_auth_data(s, host, card, out16) < 0)
		return -1;
	open_session(s, out16 + 8);
	return 0;
}

void ep_sm_bump_icv(struct ep_session *s)
{
	int i = (int)ep_sm_block(s->mode) - 1;

	for (; i >= 0; i--)
		if (++s->icv[i] != 0)
			break;
}

/* header block || tlv, ISO-padded unless CMAC pads itself */
static uint8_t *mac_input(const struct ep_session *s, const uint8_t hdr[4],
			  const uint8_t *tlv, size_t tlvlen, size_t *n)
{
	size_t bs = ep_sm_block(s->mode), len = bs + tlvlen;
	uint8_t *m;

	if (s->mode != EP_SM_FIPS && tlvlen)
		len = (len / bs + 1) * bs;
	m = OPENSSL_zalloc(len);
	if (!m)
		return NULL;
	memcpy(m, hdr, 4);
	m[4] = 0x80;
	if (tlvlen)
		memcpy(m + bs, tlv, tlvlen);
	if (s->mode != EP_SM_FIPS && tlvlen)
		m[bs + tlvlen] = 0x80;
	*n = len;
	return m;
}

int ep_sm_cmd_mac(const struct ep_session *s, const uint8_t hdr[4],
		  const uint8_t *tlv, size_t tlvlen, int case1, uint8_t mac[8])
{
	uint8_t out[16], *m;
	size_t n = 0;
	int r;

	/* FIPS units MAC "0C 82 01 8x" without data as the AES-CMAC of just
	 * the four header bytes, the ICV as the CBC IV. OpenSC 0.23 computes
	 * it so and initialises real FIPS units (OpenSC #2843); later
	 * versions drop the ICV (AES-ECB ignores it) and real units then
	 * fail right at this APDU (#3034). */
	if (case1) {
		r = cmac(s->mac, s->icv, hdr, 4, out);
		memcpy(mac, out, 8);
		return r;
	}
	m = mac_input(s, hdr, tlv, tlvlen, &n);
	if (!m)
		return -1;
	if (s->mode == EP_SM_DES)
		r = retail_mac(s->mac, s->icv, m, n, mac);
	else if (s->mode == EP_SM_AES)
		r = aes_cbc_mac(s->mac, s->icv, m, n, out);
	else
		r = cmac(s->mac, s->icv, m, n, out);
	if (r == 0 && s->mode != EP_SM_DES)
		memcpy(mac, out, 8);
	OPENSSL_clear_free(m, n);
	return r;
}

int ep_sm_resp_mac(const struct ep_session *s, const uint8_t *tlv,
		   size_t tlvlen, uint8_t mac[8])
{
	size_t bs = ep_sm_block(s->mode), n = (tlvlen / bs + 1) * bs;
	uint8_t out[16], *m;
	int r;

	if (s->mode == EP_SM_FIPS) {
		r = cmac(s->mac, s->icv, tlv, tlvlen, out);
		memcpy(mac, out, 8);
		return r;
	}
	m = OPENSSL_zalloc(n);
	if (!m)
		return -1;
	memcpy(m, tlv, tlvlen);
	m[tlvlen] = 0x80;
	if (s->mode == EP_SM_DES) {
		r = retail_mac(s->mac, s->icv, m, n, mac);
	} else {
		r = aes_cbc_mac(s->mac, s->icv, m, n, out);
		memcpy(mac, out, 8);
	}
	OPENSSL_clear_free(m, n);
	return r;
}

int ep_sm_crypt(const struct ep_session *s, int enc, const uint8_t *in,
		size_t n, uint8_t *out)
{
	if (!n || n % ep_sm_block(s->mode))
		return -1;
	return cbc0(s->mode, s->enc, enc, in, n, out);
}

int ep_pin_key(const uint8_t *pin, size_t len, uint8_t key[24])
{
	if (!SHA1(pin, len, key))
		return -1;
	key[20] = (uint8_t)(len >> 24);
	key[21] = (uint8_t)(len >> 16);
	key[22] = (uint8_t)(len >> 8);
	key[23] = (uint8_t)len;
	return 0;
}

int ep_pin_response(const uint8_t key[24], const uint8_t chal[8],
		    uint8_t out[8])
{
	static const uint8_t zero[8];

	return run(EVP_des_ede3_cbc(), key, zero, 1, chal, 8, out);
}
