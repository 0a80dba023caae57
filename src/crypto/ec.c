/* ECDSA formats: the X9.62 fitting of a hash to the curve order, the
 * conversion between the DER Ecdsa-Sig-Value that PKIX wants and the r||s
 * that cards and PKCS#11 use, and the named curves kyso knows. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "crypto/crypto.h"

/* The largest half kyso handles: P-521 needs 66 bytes. */
#define KYSO_EC_MAX_BYTES 66

/* out is the integer e of X9.62 (ANS X9.62 5.3.2 / SEC 1 4.1.3 step 5) as
 * cbytes big-endian bytes, for a card that signs the integer it is given.
 * For P-256 and P-384 that is also the right bit string for a card that
 * truncates its input itself; for P-521 it is not: 66 bytes are 528 bits,
 * and such a card (OpenSSL is one) would shift them right by 7. */
void kyso_ecdsa_fit(const uint8_t *h, size_t hlen, size_t cbits, uint8_t *out)
{
	size_t cbytes = (cbits + 7) / 8;
	unsigned shift, i;

	if (cbytes == 0)
		return;
	if (hlen * 8 <= cbits) {
		/* A shorter hash is the same integer with zeros in front. */
		memset(out, 0, cbytes - hlen);
		if (hlen > 0)
			memcpy(out + cbytes - hlen, h, hlen);
		return;
	}
	/* The leftmost cbits bits: whole bytes, then a right shift when cbits
	 * is not a multiple of 8 (P-521). hlen >= cbytes here. */
	memcpy(out, h, cbytes);
	shift = (unsigned)(cbytes * 8 - cbits);
	if (shift == 0)
		return;
	for (i = (unsigned)cbytes - 1; i > 0; i--) {
		unsigned v = (unsigned)out[i - 1] << 8 | out[i];

		out[i] = (uint8_t)(v >> shift);
	}
	out[0] = (uint8_t)(out[0] >> shift);
}

CK_RV kyso_ecdsa_der_to_raw(const uint8_t *der, size_t len, size_t cbytes,
			    uint8_t *out)
{
	const unsigned char *p = der;
	ECDSA_SIG *sig = NULL;
	const BIGNUM *r, *s;
	unsigned char *re = NULL;
	int relen;
	CK_RV rv = CKR_DEVICE_ERROR;

	if (der == NULL || out == NULL || cbytes == 0 ||
	    cbytes > KYSO_EC_MAX_BYTES)
		return CKR_ARGUMENTS_BAD;
	if (len == 0 || len > LONG_MAX)
		return CKR_DEVICE_ERROR;
	ERR_set_mark();
	sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
	if (sig == NULL || p != der + len)
		goto out;
	ECDSA_SIG_get0(sig, &r, &s);
	/* OpenSSL reads INTEGERs into BIGNUMs leniently (a negative encoding
	 * comes back positive): insist on the unique DER by encoding again. */
	relen = i2d_ECDSA_SIG(sig, &re);
	if (relen <= 0 || (size_t)relen != len || memcmp(re, der, len) != 0)
		goto out;
	if (BN_is_negative(r) || BN_is_negative(s) || BN_is_zero(r) ||
	    BN_is_zero(s) || (size_t)BN_num_bytes(r) > cbytes ||
	    (size_t)BN_num_bytes(s) > cbytes)
		goto out;
	if (BN_bn2binpad(r, out, (int)cbytes) != (int)cbytes ||
	    BN_bn2binpad(s, out + cbytes, (int)cbytes) != (int)cbytes)
		goto out;
	rv = CKR_OK;
out:
	OPENSSL_free(re);
	ECDSA_SIG_free(sig);
	ERR_pop_to_mark();
	return rv;
}

/* out may be NULL to ask for the size. */
CK_RV kyso_ecdsa_raw_to_der(const uint8_t *raw, size_t len, uint8_t *out,
			    size_t cap, size_t *outlen)
{
	BIGNUM *r = NULL, *s = NULL;
	ECDSA_SIG *sig = NULL;
	unsigned char *p;
	size_t half = len / 2;
	int n;
	CK_RV rv;

	if (raw == NULL || outlen == NULL)
		return CKR_ARGUMENTS_BAD;
	if (len == 0 || len % 2 != 0 || half > KYSO_EC_MAX_BYTES)
		return CKR_SIGNATURE_LEN_RANGE;
	ERR_set_mark();
	r = BN_bin2bn(raw, (int)half, NULL);
	s = BN_bin2bn(raw + half, (int)half, NULL);
	sig = ECDSA_SIG_new();
	if (r == NULL || s == NULL || sig == NULL ||
	    ECDSA_SIG_set0(sig, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	n = i2d_ECDSA_SIG(sig, NULL);
	if (n <= 0) {
		rv = CKR_FUNCTION_FAILED;
		goto out;
	}
	*outlen = (size_t)n;
	if (out == NULL) {
		rv = CKR_OK;
		goto out;
	}
	if (cap < (size_t)n) {
		rv = CKR_BUFFER_TOO_SMALL;
		goto out;
	}
	p = out;
	rv = i2d_ECDSA_SIG(sig, &p) == n ? CKR_OK : CKR_FUNCTION_FAILED;
out:
	ECDSA_SIG_free(sig);
	ERR_pop_to_mark();
	return rv;
}

CK_ULONG kyso_ec_params_bits(const uint8_t *params, size_t len)
{
	const unsigned char *p = params;
	ASN1_OBJECT *obj;
	CK_ULONG bits = 0;

	if (params == NULL || len == 0 || len > 64)
		return 0;
	ERR_set_mark();
	obj = d2i_ASN1_OBJECT(NULL, &p, (long)len);
	if (obj != NULL && p == params + len) {
		switch (OBJ_obj2nid(obj)) {
		case NID_X9_62_prime256v1:
			bits = 256;
			break;
		case NID_secp384r1:
			bits = 384;
			break;
		case NID_secp521r1:
			bits = 521;
			break;
		default:
			break;
		}
	}
	ASN1_OBJECT_free(obj);
	ERR_pop_to_mark();
	return bits;
}
