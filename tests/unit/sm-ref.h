/* A reference of the ePass2003 card side, written for the tests straight
 * from OpenSC's card-epass2003.c description with OpenSSL EVP calls, and
 * sharing no code with src/: session keys from mutual authentication,
 * command unwrapping with MAC check, answer wrapping. The unit tests put
 * kyso's host side against it. (Static functions: include once per test.) */
#ifndef KYSO_TEST_SM_REF_H
#define KYSO_TEST_SM_REF_H

#include <stdint.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

/* not every test uses every helper */
#define REF static __attribute__((unused))

enum ref_mode { REF_DES, REF_AES, REF_FIPS };

struct ref_sm {
	enum ref_mode mode;
	uint8_t kenc[16], kmac[16];
	uint8_t icv[16];
};

REF size_t ref_bs(const struct ref_sm *s)
{
	return s->mode == REF_DES ? 8 : 16;
}

REF const EVP_CIPHER *ref_cipher(enum ref_mode m, int cbc, size_t keylen)
{
	if (m == REF_DES)
		return cbc ? EVP_des_ede3_cbc() : EVP_des_ede3_ecb();
	(void)keylen;
	return cbc ? EVP_aes_128_cbc() : EVP_aes_128_ecb();
}

/* Encrypts or decrypts whole blocks; 3DES keys of 16 bytes become K1K2K1. */
REF void ref_crypt(enum ref_mode m, const uint8_t *key, size_t keylen, int cbc,
		   const uint8_t *iv, int enc, const uint8_t *in, size_t len,
		   uint8_t *out)
{
	uint8_t k[24], zero[16] = {0};
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n1 = 0, n2 = 0;

	if (m == REF_DES) {
		memcpy(k, key, 16);
		memcpy(k + 16, keylen == 24 ? key + 16 : key, 8);
	} else {
		memcpy(k, key, 16);
	}
	EVP_CipherInit_ex(c, ref_cipher(m, cbc, keylen), NULL, k,
			  cbc ? (iv ? iv : zero) : NULL, enc);
	EVP_CIPHER_CTX_set_padding(c, 0);
	EVP_CipherUpdate(c, out, &n1, in, (int)len);
	EVP_CipherFinal_ex(c, out + n1, &n2);
	EVP_CIPHER_CTX_free(c);
}

REF void ref_des1(const uint8_t k8[8], int enc, const uint8_t in[8],
		  uint8_t out[8])
{
	uint8_t k[24];

	memcpy(k, k8, 8);
	memcpy(k + 8, k8, 8);
	memcpy(k + 16, k8, 8);
	ref_crypt(REF_DES, k, 24, 0, NULL, enc, in, 8, out);
}

REF void ref_cmac(const uint8_t key[16], const uint8_t *in, size_t len,
		  uint8_t out[16])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
	OSSL_PARAM p[2];
	size_t n = 0;

	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER,
						(char *)"AES-128-CBC", 0);
	p[1] = OSSL_PARAM_construct_end();
	EVP_MAC_init(ctx, key, 16, p);
	EVP_MAC_update(ctx, in, len);
	EVP_MAC_final(ctx, out, &n, 16);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
}

/* CMAC with the chaining value as the CBC's starting point (RFC 4493's
 * steps by hand, on EVP AES-ECB); a zero iv is plain CMAC. */
REF void ref_cmac_iv(const uint8_t key[16], const uint8_t iv[16],
		     const uint8_t *in, size_t len, uint8_t out[16])
{
	uint8_t l[16], k1[16], k2[16], zero[16] = {0}, x[16], blk[16];
	size_t n = len == 0 ? 1 : (len + 15) / 16, i, j;
	int b;

	ref_crypt(REF_AES, key, 16, 0, NULL, 1, zero, 16, l);
	for (b = 0; b < 2; b++) {
		const uint8_t *src = b ? k1 : l;
		uint8_t *dst = b ? k2 : k1;

		for (i = 0; i < 15; i++)
			dst[i] = (uint8_t)(src[i] << 1 | src[i + 1] >> 7);
		dst[15] = (uint8_t)(src[15] << 1);
		if (src[0] & 0x80)
			dst[15] ^= 0x87;
	}
	memcpy(x, iv, 16);
	for (i = 0; i < n; i++) {
		size_t off = i * 16, take = len > off ? len - off : 0;

		if (take > 16)
			take = 16;
		memset(blk, 0, 16);
		memcpy(blk, in + off, take);
		if (i == n - 1) {
			if (take == 16 && len > 0) {
				for (j = 0; j < 16; j++)
					blk[j] ^= k1[j];
			} else {
				blk[take] = 0x80;
				for (j = 0; j < 16; j++)
					blk[j] ^= k2[j];
			}
		}
		for (j = 0; j < 16; j++)
			x[j] ^= blk[j];
		ref_crypt(REF_AES, key, 16, 0, NULL, 1, x, 16, x);
	}
	memcpy(out, x, 16);
}

/* ISO padding into a new length. */
REF size_t ref_pad(uint8_t *buf, size_t len, size_t bs)
{
	buf[len++] = 0x80;
	while (len % bs)
		buf[len++] = 0x00;
	return len;
}

/* The MAC of m (header block and objects, unpadded) from iv. */
REF void ref_mac(const struct ref_sm *s, const uint8_t *m, size_t len, int pad,
		 uint8_t out[8])
{
	uint8_t buf[70000], h[16], t[16];
	size_t bs = ref_bs(s), n = len, i, j;

	memcpy(buf, m, len);
	if (s->mode == REF_FIPS) {
		ref_cmac_iv(s->kmac, s->icv, buf, n, t);
		memcpy(out, t, 8);
		return;
	}
	if (pad)
		n = ref_pad(buf, len, bs);
	memcpy(h, s->icv, bs);
	for (i = 0; i < n; i += bs) {
		for (j = 0; j < bs; j++)
			h[j] ^= buf[i + j];
		if (s->mode == REF_DES)
			ref_des1(s->kmac, 1, h, h);
		else
			ref_crypt(REF_AES, s->kmac, 16, 0, NULL, 1, h, 16, h);
	}
	if (s->mode == REF_DES) {
		ref_des1(s->kmac + 8, 0, h, t);
		ref_des1(s->kmac, 1, t, h);
	}
	memcpy(out, h, 8);
}

REF void ref_icv_inc(struct ref_sm *s)
{
	size_t i = ref_bs(s);

	while (i-- > 0)
		if (++s->icv[i] != 0)
			break;
}

/* --- mutual authentication (card side) ---------------------------------- */

static const uint8_t ref_static_key[16] = {1, 2,  3,  4,  5,  6,  7,  8,
					   9, 10, 11, 12, 13, 14, 15, 16};

/* Answers 80 50 00 00 08 <host random>: fills resp (28 or 29 bytes) and
 * the session keys; remembers what 84 82 03 00 must carry in expect. */
REF size_t ref_mutual1(struct ref_sm *s, const uint8_t hr[8],
		       const uint8_t cr[8], uint8_t *resp, uint8_t expect[16])
{
	static const uint8_t prefix[12] = {0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
					   0x17, 0x05, 0x12, 0x01, 0xFF, 0x01};
	uint8_t d[32] = {0}, m[32] = {0}, c[32], t[16], hdr[16] = {0};
	size_t bs = ref_bs(s), n = 0;

	memcpy(resp, prefix, 12);
	n = 12;
	if (s->mode == REF_FIPS)
		resp[n++] = 0x00;
	memcpy(resp + n, cr, 8);
	n += 8;
	hdr[0] = 0x84;
	hdr[1] = 0x82;
	hdr[2] = 0x03;
	hdr[4] = 0x10;
	if (s->mode == REF_FIPS) {
		d[11] = 0x04;
		d[14] = 0x80;
		d[15] = 0x01;
		memcpy(d + 16, hr, 8);
		memcpy(d + 24, cr, 8);
		ref_cmac(ref_static_key, d, 32, s->kenc);
		d[11] = 0x06;
		ref_cmac(ref_static_key, d, 32, s->kmac);
		d[11] = 0x00;
		d[14] = 0x40;
		ref_cmac(s->kenc, d, 32, t);
		memcpy(resp + n, t, 8);
		d[11] = 0x01;
		ref_cmac(s->kenc, d, 32, t);
		memcpy(expect, t, 8);
		memcpy(hdr + 5, t, 8);
		ref_cmac(s->kmac, hdr, 13, t);
		memcpy(expect + 8, t, 8);
	} else {
		d[0] = cr[4], d[1] = cr[5], d[2] = cr[6], d[3] = cr[7];
		memcpy(d + 4, hr, 4);
		memcpy(d + 8, cr, 4);
		memcpy(d + 12, hr + 4, 4);
		ref_crypt(s->mode, ref_static_key, 16, 0, NULL, 1, d, 16,
			  s->kenc);
		ref_crypt(s->mode, ref_static_key, 16, 0, NULL, 1, d, 16,
			  s->kmac);
		memcpy(m, hr, 8);
		memcpy(m + 8, cr, 8);
		m[16] = 0x80;
		ref_crypt(s->mode, s->kenc, 16, 1, NULL, 1, m, 16 + bs, c);
		memcpy(resp + n, c + 16, 8);
		memcpy(m, cr, 8);
		memcpy(m + 8, hr, 8);
		ref_crypt(s->mode, s->kenc, 16, 1, NULL, 1, m, 16 + bs, c);
		memcpy(expect, c + 16, 8);
		memcpy(hdr + 5, c + 16, 8);
		hdr[13] = 0x80;
		ref_crypt(s->mode, s->kmac, 16, 1, NULL, 1, hdr, 16, c);
		memcpy(expect + 8, s->mode == REF_DES ? c + 8 : c, 8);
	}
	memset(s->icv, 0, 16);
	memcpy(s->icv, expect + 8, 8);
	return n + 8;
}

/* --- command and answer (card side) -------------------------------------- */

struct ref_cmd {
	uint8_t cla, ins, p1, p2;
	uint8_t data[4096];
	size_t lc;
	int has_le;
	uint8_t le[2];
	size_t lelen;
};

/* Opens a wrapped command; 0, or the status word the card answers with
 * (6988 for a MAC or object error). Increments the chaining value. */
REF unsigned ref_unwrap(struct ref_sm *s, const uint8_t *apdu, size_t len,
			struct ref_cmd *c)
{
	uint8_t m[70000], mac[8], plain[4096];
	const uint8_t *body;
	size_t bs = ref_bs(s), blen, pos = 0, l, h, mlen;
	int hdr_only = 0;

	memset(c, 0, sizeof(*c));
	if (len < 5 || (apdu[0] & 0x0C) != 0x0C)
		return 0x6988;
	if (apdu[4] == 0 && len >= 7) {
		blen = (size_t)apdu[5] << 8 | apdu[6];
		body = apdu + 7;
		if (7 + blen + 2 != len)
			return 0x6700;
	} else {
		blen = apdu[4];
		body = apdu + 5;
		if (5 + blen + 1 != len)
			return 0x6700;
	}
	c->cla = apdu[0] & 0xF3;
	c->ins = apdu[1];
	c->p1 = apdu[2];
	c->p2 = apdu[3];
	ref_icv_inc(s);
	while (pos < blen && body[pos] != 0x8E) {
		uint8_t tag = body[pos];

		if (pos + 2 > blen)
			return 0x6988;
		l = body[pos + 1];
		h = 2;
		if (l == 0x82) {
			l = (size_t)body[pos + 2] << 8 | body[pos + 3];
			h = 4;
		} else if (l == 0x81) {
			l = body[pos + 2];
			h = 3;
		}
		if (pos + h + l > blen)
			return 0x6988;
		if (tag == 0x87) {
			if (l < 1 + bs || (l - 1) % bs || body[pos + h] != 1)
				return 0x6988;
			ref_crypt(s->mode == REF_DES ? REF_DES : REF_AES,
				  s->kenc, 16, 1, NULL, 0, body + pos + h + 1,
				  l - 1, plain);
			c->lc = l - 1;
			while (c->lc > 0 && plain[c->lc - 1] == 0)
				c->lc--;
			if (c->lc == 0 || plain[c->lc - 1] != 0x80)
				return 0x6988;
			c->lc--;
			memcpy(c->data, plain, c->lc);
		} else if (tag == 0x97) {
			if (l < 1 || l > 2)
				return 0x6988;
			c->has_le = 1;
			memcpy(c->le, body + pos + h, l);
			c->lelen = l;
		} else {
			return 0x6988;
		}
		pos += h + l;
	}
	if (pos + 10 != blen || body[pos + 1] != 8)
		return 0x6988;
	if (s->mode == REF_FIPS && c->ins == 0x82 && c->p1 == 0x01 && pos == 0)
		hdr_only = 1;
	if (hdr_only) {
		uint8_t t[16], hdr[4] = {apdu[0], apdu[1], apdu[2], apdu[3]};

		ref_cmac_iv(s->kmac, s->icv, hdr, 4, t);
		memcpy(mac, t, 8);
	} else {
		memset(m, 0, bs);
		memcpy(m, apdu, 4);
		m[4] = 0x80;
		memcpy(m + bs, body, pos);
		mlen = bs + pos;
		ref_mac(s, m, mlen, pos > 0, mac);
	}
	if (memcmp(mac, body + pos + 2, 8) != 0)
		return 0x6988;
	return 0;
}

/* Wraps an answer: [87 01 E(data)] 99 02 SW 8E 08 MAC, then SW. */
REF size_t ref_wrap_resp(const struct ref_sm *s, const uint8_t *data,
			 size_t len, unsigned sw, uint8_t *out)
{
	uint8_t buf[70000], mac[8];
	size_t bs = ref_bs(s), n = 0, plen, l;

	if (len > 0) {
		memcpy(buf, data, len);
		plen = ref_pad(buf, len, bs);
		l = plen + 1;
		out[n++] = 0x87;
		if (l < 0x80) {
			out[n++] = (uint8_t)l;
		} else if (l < 0x100) {
			out[n++] = 0x81;
			out[n++] = (uint8_t)l;
		} else {
			out[n++] = 0x82;
			out[n++] = (uint8_t)(l >> 8);
			out[n++] = (uint8_t)l;
		}
		out[n++] = 0x01;
		ref_crypt(s->mode == REF_DES ? REF_DES : REF_AES, s->kenc, 16,
			  1, NULL, 1, buf, plen, out + n);
		n += plen;
	}
	out[n++] = 0x99;
	out[n++] = 0x02;
	out[n++] = (uint8_t)(sw >> 8);
	out[n++] = (uint8_t)sw;
	ref_mac(s, out, n, 1, mac);
	out[n++] = 0x8E;
	out[n++] = 0x08;
	memcpy(out + n, mac, 8);
	n += 8;
	out[n++] = (uint8_t)(sw >> 8);
	out[n++] = (uint8_t)sw;
	return n;
}

/* The PIN's 3DES key: SHA-1(PIN) || length (4 bytes, big-endian). */
REF void ref_pin_key(const char *pin, uint8_t key[24])
{
	size_t len = strlen(pin);

	SHA1((const uint8_t *)pin, len, key);
	key[20] = (uint8_t)(len >> 24);
	key[21] = (uint8_t)(len >> 16);
	key[22] = (uint8_t)(len >> 8);
	key[23] = (uint8_t)len;
}

#endif
