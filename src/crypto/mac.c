/* Message authentication codes for card secure messaging: the ISO/IEC 9797-1
 * retail MAC (algorithm 3 with DES), CBC-MAC and AES-CMAC (RFC 4493), each
 * with an initial chaining value, since card protocols chain MACs. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "crypto/crypto.h"

/* Single DES is 3DES with three equal keys: this keeps single-DES steps in
 * OpenSSL's default provider (DES-CBC itself is in the legacy one). */
static void des_key_triple(const uint8_t k[8], uint8_t out[24])
{
	memcpy(out, k, 8);
	memcpy(out + 8, k, 8);
	memcpy(out + 16, k, 8);
}

CK_RV kyso_mac_retail(const uint8_t key[16], const uint8_t *iv,
		      const uint8_t *in, size_t len, uint8_t out[8])
{
	uint8_t k1[24], h[8];
	uint8_t *tmp = NULL;
	size_t i;
	CK_RV rv;

	if (key == NULL || in == NULL || out == NULL || len == 0 || len % 8)
		return CKR_ARGUMENTS_BAD;
	if (iv != NULL)
		memcpy(h, iv, 8);
	else
		memset(h, 0, 8);
	des_key_triple(key, k1);
	/* All blocks but the last: DES-CBC under K1 from the chaining value. */
	if (len > 8) {
		tmp = malloc(len - 8);
		if (tmp == NULL) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		rv = kyso_cipher_cbc(KYSO_DES3, k1, sizeof(k1), 1, h, in,
				     len - 8, tmp);
		if (rv != CKR_OK)
			goto out;
		memcpy(h, tmp + len - 16, 8);
	}
	/* The last block: E(K1), D(K2), E(K1), which is two-key 3DES. */
	for (i = 0; i < 8; i++)
		h[i] ^= in[len - 8 + i];
	rv = kyso_cipher_ecb(KYSO_DES3, key, 16, 1, h, 8, out);
out:
	if (tmp != NULL) {
		OPENSSL_cleanse(tmp, len - 8);
		free(tmp);
	}
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(h, sizeof(h));
	return rv;
}

CK_RV kyso_mac_cbc(enum kyso_cipher alg, const uint8_t *key, size_t keylen,
		   const uint8_t *iv, const uint8_t *in, size_t len,
		   uint8_t *out)
{
	size_t bs = kyso_cipher_block(alg);
	uint8_t *tmp;
	CK_RV rv;

	if (key == NULL || in == NULL || out == NULL || bs == 0 || len == 0 ||
	    len % bs)
		return CKR_ARGUMENTS_BAD;
	tmp = malloc(len);
	if (tmp == NULL)
		return CKR_HOST_MEMORY;
	rv = kyso_cipher_cbc(alg, key, keylen, 1, iv, in, len, tmp);
	if (rv == CKR_OK)
		memcpy(out, tmp + len - bs, bs);
	OPENSSL_cleanse(tmp, len);
	free(tmp);
	return rv;
}

/* Doubling in GF(2^128) as RFC 4493 derives its subkeys. */
static void dbl(const uint8_t in[16], uint8_t out[16])
{
	uint8_t carry = in[0] & 0x80;
	int i;

	for (i = 0; i < 15; i++)
		out[i] = (uint8_t)(in[i] << 1 | in[i + 1] >> 7);
	out[15] = (uint8_t)(in[15] << 1);
	if (carry)
		out[15] ^= 0x87;
}

CK_RV kyso_mac_cmac(const uint8_t *key, size_t keylen, const uint8_t *iv,
		    const uint8_t *in, size_t len, uint8_t out[16])
{
	static const uint8_t zero[16];
	uint8_t l[16], k1[16], k2[16];
	uint8_t *buf = NULL, *enc = NULL;
	size_t n, last, i;
	CK_RV rv;

	if (key == NULL || out == NULL || (in == NULL && len > 0))
		return CKR_ARGUMENTS_BAD;
	rv = kyso_cipher_ecb(KYSO_AES, key, keylen, 1, zero, 16, l);
	if (rv != CKR_OK)
		return rv;
	dbl(l, k1);
	dbl(k1, k2);
	n = len == 0 ? 1 : (len + 15) / 16;
	buf = malloc(n * 16);
	enc = malloc(n * 16);
	if (buf == NULL || enc == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	memset(buf, 0, n * 16);
	if (len > 0)
		memcpy(buf, in, len);
	last = (n - 1) * 16;
	if (len > 0 && len % 16 == 0) {
		for (i = 0; i < 16; i++)
			buf[last + i] ^= k1[i];
	} else {
		buf[len] = 0x80;
		for (i = 0; i < 16; i++)
			buf[last + i] ^= k2[i];
	}
	/* CBC from the chaining value: a zero one gives RFC 4493 CMAC. */
	rv = kyso_cipher_cbc(KYSO_AES, key, keylen, 1, iv, buf, n * 16, enc);
	if (rv == CKR_OK)
		memcpy(out, enc + last, 16);
out:
	if (buf != NULL) {
		OPENSSL_cleanse(buf, n * 16);
		free(buf);
	}
	if (enc != NULL) {
		OPENSSL_cleanse(enc, n * 16);
		free(enc);
	}
	OPENSSL_cleanse(l, sizeof(l));
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	return rv;
}
