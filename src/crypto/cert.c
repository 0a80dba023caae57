/* X.509 certificates as the token layer needs them: the DER pieces PKCS#11
 * attributes carry (subject, issuer, serial), validity, and the public key;
 * plus the bounded inflate of compressed certificates (PIV CertInfo 01). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <zlib.h>

#include "crypto/crypto.h"

/* Largest point we take out of a certificate: P-521, 04||X||Y. */
#define KYSO_EC_POINT_MAX  (1 + 2 * 66)
#define KYSO_RSA_MAX_BYTES (16384 / 8)

void kyso_cert_info_clear(struct kyso_cert_info *info)
{
	if (info == NULL)
		return;
	free(info->subject);
	free(info->issuer);
	free(info->serial);
	kyso_pubkey_clear(&info->pub);
	memset(info, 0, sizeof(*info));
}

/* i2d into a malloc'd buffer. */
static CK_RV i2d_dup(int (*i2d)(const void *, unsigned char **),
		     const void *obj, uint8_t **out, size_t *outlen)
{
	unsigned char *p;
	int n = i2d(obj, NULL);

	if (n <= 0)
		return CKR_DEVICE_ERROR;
	*out = malloc((size_t)n);
	if (*out == NULL)
		return CKR_HOST_MEMORY;
	p = *out;
	if (i2d(obj, &p) != n) {
		free(*out);
		*out = NULL;
		return CKR_DEVICE_ERROR;
	}
	*outlen = (size_t)n;
	return CKR_OK;
}

static int i2d_name(const void *name, unsigned char **pp)
{
	return i2d_X509_NAME(name, pp);
}

static int i2d_integer(const void *i, unsigned char **pp)
{
	return i2d_ASN1_INTEGER(i, pp);
}

/* Seconds since the epoch; ASN1_TIME_diff does the calendar for us. */
static CK_RV asn1_time(const ASN1_TIME *t, int64_t *out)
{
	ASN1_TIME *epoch;
	int days, secs, ok;

	if (t == NULL || ASN1_TIME_check(t) != 1)
		return CKR_DEVICE_ERROR;
	epoch = ASN1_TIME_set(NULL, 0);
	if (epoch == NULL)
		return CKR_HOST_MEMORY;
	ok = ASN1_TIME_diff(&days, &secs, epoch, t);
	ASN1_TIME_free(epoch);
	if (ok != 1)
		return CKR_DEVICE_ERROR;
	*out = (int64_t)days * 86400 + secs;
	return CKR_OK;
}

static CK_RV rsa_from_evp(EVP_PKEY *pkey, struct kyso_pubkey *pub)
{
	BIGNUM *n = NULL, *e = NULL;
	uint8_t *nb = NULL, *eb = NULL;
	int nl, el;
	CK_RV rv = CKR_DEVICE_ERROR;

	if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
	    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
		goto out;
	nl = BN_num_bytes(n);
	el = BN_num_bytes(e);
	if (nl <= 0 || el <= 0 || nl > KYSO_RSA_MAX_BYTES || el > nl)
		goto out;
	nb = malloc((size_t)nl);
	eb = malloc((size_t)el);
	if (nb == NULL || eb == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	BN_bn2bin(n, nb);
	BN_bn2bin(e, eb);
	rv = kyso_pubkey_rsa(pub, nb, (size_t)nl, eb, (size_t)el);
out:
	free(nb);
	free(eb);
	BN_free(n);
	BN_free(e);
	return rv;
}

/* Curves kyso does not know leave pub empty; that is not an error. */
static CK_RV ec_from_evp(EVP_PKEY *pkey, struct kyso_pubkey *pub)
{
	char name[64];
	BIGNUM *x = NULL, *y = NULL;
	uint8_t pt[KYSO_EC_POINT_MAX];
	CK_ULONG bits;
	size_t cb;
	CK_RV rv = CKR_OK;

	if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
					   name, sizeof(name), NULL) != 1)
		return CKR_OK; /* explicit parameters: not a named curve */
	switch (OBJ_sn2nid(name)) {
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
		return CKR_OK;
	}
	cb = (bits + 7) / 8;
	/* The affine coordinates, so that a compressed point in the
	 * certificate still gives the uncompressed form PKCS#11 wants. */
	if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) == 1 &&
	    EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y) == 1) {
		if (BN_bn2binpad(x, pt + 1, (int)cb) != (int)cb ||
		    BN_bn2binpad(y, pt + 1 + cb, (int)cb) != (int)cb) {
			rv = CKR_DEVICE_ERROR;
			goto out;
		}
	} else {
		/* In a host process where an ENGINE is the default (the
		 * OpenSSL pkcs11 engine, say) the key is engine-backed and
		 * has no coordinate parameters; its encoded point is still
		 * there. Only the uncompressed form of the right size. */
		unsigned char *enc = NULL;
		size_t el = EVP_PKEY_get1_encoded_public_key(pkey, &enc);

		if (el != 1 + 2 * cb || enc == NULL || enc[0] != 0x04) {
			OPENSSL_free(enc);
			rv = CKR_DEVICE_ERROR;
			goto out;
		}
		memcpy(pt + 1, enc + 1, 2 * cb);
		OPENSSL_free(enc);
	}
	pt[0] = 0x04;
	rv = kyso_pubkey_ec(pub, bits, pt, 1 + 2 * cb);
out:
	BN_free(x);
	BN_free(y);
	return rv;
}

/* The certificate must be exactly len bytes: trailing bytes (a padded file
 * on a file-system card, say) are refused, so that what a caller hands in
 * is what it can publish as CKA_VALUE. Callers trim with the outer TLV. */
CK_RV kyso_cert_parse(const uint8_t *der, size_t len,
		      struct kyso_cert_info *info)
{
	const unsigned char *p = der;
	X509 *x = NULL;
	EVP_PKEY *pkey;
	CK_RV rv;

	if (der == NULL || info == NULL)
		return CKR_ARGUMENTS_BAD;
	memset(info, 0, sizeof(*info));
	if (len == 0 || len > LONG_MAX)
		return CKR_DEVICE_ERROR;
	ERR_set_mark();
	x = d2i_X509(NULL, &p, (long)len);
	if (x == NULL || p != der + len) {
		rv = CKR_DEVICE_ERROR;
		goto out;
	}
	rv = i2d_dup(i2d_name, X509_get_subject_name(x), &info->subject,
		     &info->subjectlen);
	if (rv == CKR_OK)
		rv = i2d_dup(i2d_name, X509_get_issuer_name(x), &info->issuer,
			     &info->issuerlen);
	if (rv == CKR_OK)
		rv = i2d_dup(i2d_integer, X509_get0_serialNumber(x),
			     &info->serial, &info->seriallen);
	if (rv == CKR_OK)
		rv = asn1_time(X509_get0_notBefore(x), &info->not_before);
	if (rv == CKR_OK)
		rv = asn1_time(X509_get0_notAfter(x), &info->not_after);
	if (rv != CKR_OK)
		goto out;

	/* NULL for key types OpenSSL cannot decode: parse still succeeds. */
	pkey = X509_get0_pubkey(x);
	if (pkey != NULL) {
		if (EVP_PKEY_is_a(pkey, "RSA") ||
		    EVP_PKEY_is_a(pkey, "RSA-PSS"))
			rv = rsa_from_evp(pkey, &info->pub);
		else if (EVP_PKEY_is_a(pkey, "EC"))
			rv = ec_from_evp(pkey, &info->pub);
	}
out:
	if (rv != CKR_OK)
		kyso_cert_info_clear(info);
	X509_free(x);
	ERR_pop_to_mark();
	return rv;
}

/* --- inflate ----------------------------------------------------------- */

#define KYSO_INFLATE_DEFAULT_MAX (1024 * 1024)

/* Gzip or zlib (detected from the header), at most max bytes out (max 0
 * means 1 MiB, as for kyso_buf). After the end of the stream only zero
 * bytes may follow, as some cards pad the object; anything else is refused.
 * *out is malloc'd; the caller frees it. */
CK_RV kyso_inflate(const uint8_t *in, size_t len, uint8_t **out, size_t *outlen,
		   size_t max)
{
	z_stream zs;
	uint8_t *buf = NULL, *nb;
	size_t cap, limit, avail, used = 0, i;
	int zr;
	CK_RV rv = CKR_DEVICE_ERROR;

	if (in == NULL || out == NULL || outlen == NULL)
		return CKR_ARGUMENTS_BAD;
	*out = NULL;
	*outlen = 0;
	if (max == 0)
		max = KYSO_INFLATE_DEFAULT_MAX;
	if (len == 0 || len > UINT_MAX)
		return CKR_DEVICE_ERROR;

	/* One byte over max tells "too long" from "exactly max". */
	limit = max < SIZE_MAX ? max + 1 : max;
	cap = len < limit / 4 ? len * 4 : limit;
	if (cap < 256)
		cap = limit < 256 ? limit : 256;
	buf = malloc(cap);
	if (buf == NULL)
		return CKR_HOST_MEMORY;

	memset(&zs, 0, sizeof(zs));
	/* 15 + 32: largest window, and accept either a zlib or gzip header */
	if (inflateInit2(&zs, 15 + 32) != Z_OK) {
		free(buf);
		return CKR_HOST_MEMORY;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	for (;;) {
		if (used == cap) {
			if (cap == limit)
				goto out; /* more output than allowed */
			cap = cap > limit / 2 ? limit : cap * 2;
			nb = realloc(buf, cap);
			if (nb == NULL) {
				rv = CKR_HOST_MEMORY;
				goto out;
			}
			buf = nb;
		}
		avail = cap - used;
		zs.next_out = buf + used;
		zs.avail_out = avail > UINT_MAX ? UINT_MAX : (uInt)avail;
		zr = inflate(&zs, Z_NO_FLUSH);
		used = (size_t)(zs.next_out - buf);
		if (zr == Z_STREAM_END)
			break;
		if (zr == Z_BUF_ERROR && zs.avail_in == 0)
			goto out; /* input ended before the stream did */
		if (zr != Z_OK && zr != Z_BUF_ERROR)
			goto out; /* corrupt data, header or check value */
	}
	if (used > max)
		goto out;
	for (i = 0; i < zs.avail_in; i++)
		if (zs.next_in[i] != 0)
			goto out;
	*out = buf;
	*outlen = used;
	buf = NULL;
	rv = CKR_OK;
out:
	inflateEnd(&zs);
	free(buf);
	return rv;
}
