/* RSA encodings around a raw, modulus-sized operation that the card does:
 * PKCS#1 v1.5 type 1 and EMSA-PSS to sign, and constant-time removal of
 * type 2 and OAEP padding after a raw decryption. */

/* OpenSSL 3 has no non-deprecated public API for padding on its own (the
 * EVP layer pads only inside a key operation it does itself), so this file
 * uses the RSA_padding_* functions, which 3.x still ships and maintains. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "crypto/crypto.h"

/* From digest.c. */
const EVP_MD *kyso_md(CK_MECHANISM_TYPE hash);

/* OpenSSL's own ceiling (OPENSSL_RSA_MAX_MODULUS_BITS). */
#define KYSO_RSA_MAX_BITS 16384

CK_RV kyso_rsa_pad_pkcs1(const uint8_t *in, size_t inlen, uint8_t *out,
			 size_t k)
{
	size_t ps;

	if (out == NULL || (in == NULL && inlen > 0))
		return CKR_ARGUMENTS_BAD;
	/* 00 01 at least eight FF 00 */
	if (k < 11 || inlen > k - 11)
		return CKR_DATA_LEN_RANGE;
	ps = k - 3 - inlen;
	memmove(out + k - inlen, in, inlen);
	out[0] = 0x00;
	out[1] = 0x01;
	memset(out + 2, 0xff, ps);
	out[2 + ps] = 0x00;
	return CKR_OK;
}

/* An RSA object good enough for the padding functions, which look only at
 * the size of n: n = 2^(modbits-1) + 1, e = 65537. */
static RSA *size_only_rsa(size_t modbits)
{
	BIGNUM *n = BN_new(), *e = BN_new();
	RSA *rsa = RSA_new();

	if (n == NULL || e == NULL || rsa == NULL ||
	    BN_set_bit(n, (int)modbits - 1) != 1 || BN_set_bit(n, 0) != 1 ||
	    BN_set_word(e, RSA_F4) != 1 || RSA_set0_key(rsa, n, e, NULL) != 1) {
		BN_free(n);
		BN_free(e);
		RSA_free(rsa);
		return NULL;
	}
	return rsa;
}

CK_RV kyso_rsa_pad_pss(CK_MECHANISM_TYPE hash, CK_MECHANISM_TYPE mgf_hash,
		       size_t saltlen, const uint8_t *mh, size_t mhlen,
		       size_t modbits, uint8_t *out, size_t k)
{
	const EVP_MD *md = kyso_md(hash), *mgf = kyso_md(mgf_hash);
	size_t hlen = kyso_digest_size(hash), emlen;
	RSA *rsa = NULL;
	CK_RV rv;

	if (mh == NULL || out == NULL)
		return CKR_ARGUMENTS_BAD;
	if (md == NULL || mgf == NULL)
		return CKR_MECHANISM_PARAM_INVALID;
	if (modbits < 2 || modbits > KYSO_RSA_MAX_BITS ||
	    k != (modbits + 7) / 8)
		return CKR_ARGUMENTS_BAD;
	if (mhlen != hlen)
		return CKR_DATA_LEN_RANGE;
	/* RFC 8017 9.1.1: emLen = ceil((modBits - 1) / 8) >= hLen + sLen + 2 */
	emlen = (modbits - 1 + 7) / 8;
	if (saltlen > INT_MAX || emlen < hlen + 2 || saltlen > emlen - hlen - 2)
		return CKR_MECHANISM_PARAM_INVALID;

	ERR_set_mark();
	rsa = size_only_rsa(modbits);
	if (rsa == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	/* Writes RSA_size = k bytes; the first is 00 when emLen < k. */
	if (RSA_padding_add_PKCS1_PSS_mgf1(rsa, out, mh, md, mgf,
					   (int)saltlen) != 1) {
		rv = CKR_FUNCTION_FAILED;
		goto out;
	}
	rv = CKR_OK;
out:
	RSA_free(rsa);
	ERR_pop_to_mark();
	return rv;
}

/* Common tail of the two unpadders. tmp holds k bytes of which the first n
 * (n < 0 on a padding error) are the message. Branches only on the outcome,
 * which the caller learns anyway. */
static CK_RV unpad_result(int n, uint8_t *tmp, size_t k, uint8_t *out,
			  size_t *outlen)
{
	CK_RV rv;

	if (n < 0) {
		rv = CKR_ENCRYPTED_DATA_INVALID;
	} else if (out == NULL) {
		*outlen = (size_t)n;
		rv = CKR_OK;
	} else if (*outlen < (size_t)n) {
		*outlen = (size_t)n;
		rv = CKR_BUFFER_TOO_SMALL;
	} else {
		memcpy(out, tmp, (size_t)n);
		*outlen = (size_t)n;
		rv = CKR_OK;
	}
	OPENSSL_cleanse(tmp, k);
	free(tmp);
	return rv;
}

/* The message is decoded into a k-byte scratch buffer first, so that the
 * size of out cannot change what OpenSSL does while the padding is checked;
 * out == NULL asks for the size. */
CK_RV kyso_rsa_unpad_pkcs1(const uint8_t *em, size_t k, uint8_t *out,
			   size_t *outlen)
{
	uint8_t *tmp;
	int n;

	if (em == NULL || outlen == NULL)
		return CKR_ARGUMENTS_BAD;
	if (k < 11 || k > KYSO_RSA_MAX_BITS / 8)
		return CKR_ENCRYPTED_DATA_INVALID;
	tmp = malloc(k);
	if (tmp == NULL)
		return CKR_HOST_MEMORY;
	ERR_set_mark();
	/* Given the whole block (flen = num = k), OpenSSL checks em[0] == 0
	 * itself, in constant time. */
	n = RSA_padding_check_PKCS1_type_2(tmp, (int)k, em, (int)k, (int)k);
	ERR_pop_to_mark();
	return unpad_result(n, tmp, k, out, outlen);
}

CK_RV kyso_rsa_unpad_oaep(const uint8_t *em, size_t k, CK_MECHANISM_TYPE hash,
			  CK_MECHANISM_TYPE mgf_hash, const uint8_t *label,
			  size_t labellen, uint8_t *out, size_t *outlen)
{
	static const uint8_t empty[1];
	const EVP_MD *md = kyso_md(hash), *mgf = kyso_md(mgf_hash);
	size_t hlen = kyso_digest_size(hash);
	uint8_t *tmp;
	int n;

	if (em == NULL || outlen == NULL || (label == NULL && labellen > 0))
		return CKR_ARGUMENTS_BAD;
	if (md == NULL || mgf == NULL || labellen > INT_MAX)
		return CKR_MECHANISM_PARAM_INVALID;
	/* Public facts about the key and hash, not about the plaintext. */
	if (k > KYSO_RSA_MAX_BITS / 8)
		return CKR_ENCRYPTED_DATA_INVALID;
	if (k < 2 * hlen + 2)
		return CKR_MECHANISM_PARAM_INVALID;
	tmp = malloc(k);
	if (tmp == NULL)
		return CKR_HOST_MEMORY;
	ERR_set_mark();
	n = RSA_padding_check_PKCS1_OAEP_mgf1(tmp, (int)k, em, (int)k, (int)k,
					      label != NULL ? label : empty,
					      (int)labellen, md, mgf);
	ERR_pop_to_mark();
	return unpad_result(n, tmp, k, out, outlen);
}
