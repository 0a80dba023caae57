/* Block ciphers for card protocols (secure messaging, card authentication):
 * 3DES with two or three keys and AES, in ECB or CBC, never padded. */
#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "crypto/crypto.h"

size_t kyso_cipher_block(enum kyso_cipher alg)
{
	switch (alg) {
	case KYSO_DES3:
		return 8;
	case KYSO_AES:
		return 16;
	default:
		return 0;
	}
}

static const EVP_CIPHER *pick(enum kyso_cipher alg, size_t keylen, int cbc)
{
	if (alg == KYSO_DES3 && (keylen == 16 || keylen == 24))
		return cbc ? EVP_des_ede3_cbc() : EVP_des_ede3_ecb();
	if (alg == KYSO_AES && keylen == 16)
		return cbc ? EVP_aes_128_cbc() : EVP_aes_128_ecb();
	if (alg == KYSO_AES && keylen == 24)
		return cbc ? EVP_aes_192_cbc() : EVP_aes_192_ecb();
	if (alg == KYSO_AES && keylen == 32)
		return cbc ? EVP_aes_256_cbc() : EVP_aes_256_ecb();
	return NULL;
}

static CK_RV run(enum kyso_cipher alg, const uint8_t *key, size_t keylen,
		 int encrypt, int cbc, const uint8_t *iv, const uint8_t *in,
		 size_t len, uint8_t *out)
{
	static const uint8_t zero_iv[16];
	const EVP_CIPHER *c = pick(alg, keylen, cbc);
	size_t bs = kyso_cipher_block(alg);
	uint8_t k3[24];
	EVP_CIPHER_CTX *ctx = NULL;
	int n1 = 0, n2 = 0;
	CK_RV rv;

	if (key == NULL || (len > 0 && (in == NULL || out == NULL)))
		return CKR_ARGUMENTS_BAD;
	if (bs == 0)
		return CKR_MECHANISM_INVALID;
	if (c == NULL)
		return CKR_KEY_SIZE_RANGE;
	if (len % bs != 0 || len > INT_MAX)
		return CKR_DATA_LEN_RANGE;
	if (len == 0)
		return CKR_OK;
	/* Two-key 3DES is three-key 3DES with K3 = K1; this way it does not
	 * depend on which provider carries DES-EDE. */
	if (alg == KYSO_DES3 && keylen == 16) {
		memcpy(k3, key, 16);
		memcpy(k3 + 16, key, 8);
		key = k3;
	}
	ERR_set_mark();
	rv = CKR_HOST_MEMORY;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		goto out;
	rv = CKR_FUNCTION_FAILED;
	if (EVP_CipherInit_ex(ctx, c, NULL, key,
			      cbc ? (iv != NULL ? iv : zero_iv) : NULL,
			      encrypt ? 1 : 0) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 ||
	    EVP_CipherUpdate(ctx, out, &n1, in, (int)len) != 1 ||
	    EVP_CipherFinal_ex(ctx, out + n1, &n2) != 1 ||
	    (size_t)n1 + (size_t)n2 != len)
		goto out;
	rv = CKR_OK;
out:
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(k3, sizeof(k3));
	ERR_pop_to_mark();
	return rv;
}

CK_RV kyso_cipher_ecb(enum kyso_cipher alg, const uint8_t *key, size_t keylen,
		      int encrypt, const uint8_t *in, size_t len, uint8_t *out)
{
	return run(alg, key, keylen, encrypt, 0, NULL, in, len, out);
}

CK_RV kyso_cipher_cbc(enum kyso_cipher alg, const uint8_t *key, size_t keylen,
		      int encrypt, const uint8_t *iv, const uint8_t *in,
		      size_t len, uint8_t *out)
{
	return run(alg, key, keylen, encrypt, 1, iv, in, len, out);
}
