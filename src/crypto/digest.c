/* Message digests for kyso: the PKCS#11 hash mechanisms mapped onto OpenSSL
 * EVP digests, MGF1 hash selection, and the DER DigestInfo that
 * EMSA-PKCS1-v1_5 signs. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "crypto/crypto.h"

/* Shared with the other files of src/crypto/ (no header of its own: crypto.h
 * stays free of OpenSSL types). */
const EVP_MD *kyso_md(CK_MECHANISM_TYPE hash);

struct kyso_digest {
	EVP_MD_CTX *ctx;
};

const EVP_MD *kyso_md(CK_MECHANISM_TYPE hash)
{
	switch (hash) {
	case CKM_SHA_1:
		return EVP_sha1();
	case CKM_SHA224:
		return EVP_sha224();
	case CKM_SHA256:
		return EVP_sha256();
	case CKM_SHA384:
		return EVP_sha384();
	case CKM_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

size_t kyso_digest_size(CK_MECHANISM_TYPE hash)
{
	switch (hash) {
	case CKM_SHA_1:
		return 20;
	case CKM_SHA224:
		return 28;
	case CKM_SHA256:
		return 32;
	case CKM_SHA384:
		return 48;
	case CKM_SHA512:
		return 64;
	default:
		return 0;
	}
}

CK_RV kyso_digest_new(CK_MECHANISM_TYPE hash, struct kyso_digest **out)
{
	const EVP_MD *md = kyso_md(hash);
	struct kyso_digest *d;

	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	*out = NULL;
	if (md == NULL)
		return CKR_MECHANISM_INVALID;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return CKR_HOST_MEMORY;
	ERR_set_mark();
	d->ctx = EVP_MD_CTX_new();
	if (d->ctx == NULL || EVP_DigestInit_ex(d->ctx, md, NULL) != 1) {
		ERR_pop_to_mark();
		EVP_MD_CTX_free(d->ctx);
		free(d);
		return CKR_HOST_MEMORY;
	}
	ERR_pop_to_mark();
	*out = d;
	return CKR_OK;
}

CK_RV kyso_digest_update(struct kyso_digest *d, const uint8_t *p, size_t n)
{
	CK_RV rv = CKR_OK;

	if (d == NULL || (p == NULL && n > 0))
		return CKR_ARGUMENTS_BAD;
	if (n == 0)
		return CKR_OK;
	ERR_set_mark();
	if (EVP_DigestUpdate(d->ctx, p, n) != 1)
		rv = CKR_FUNCTION_FAILED;
	ERR_pop_to_mark();
	return rv;
}

/* d is consumed whatever the outcome, so callers have one path. */
CK_RV kyso_digest_final(struct kyso_digest *d, uint8_t *out)
{
	CK_RV rv = CKR_OK;

	if (d == NULL)
		return CKR_ARGUMENTS_BAD;
	if (out == NULL) {
		kyso_digest_free(d);
		return CKR_ARGUMENTS_BAD;
	}
	ERR_set_mark();
	if (EVP_DigestFinal_ex(d->ctx, out, NULL) != 1)
		rv = CKR_FUNCTION_FAILED;
	ERR_pop_to_mark();
	kyso_digest_free(d);
	return rv;
}

void kyso_digest_free(struct kyso_digest *d)
{
	if (d == NULL)
		return;
	EVP_MD_CTX_free(d->ctx);
	free(d);
}

CK_RV kyso_digest_once(CK_MECHANISM_TYPE hash, const uint8_t *p, size_t n,
		       uint8_t *out)
{
	const EVP_MD *md = kyso_md(hash);
	CK_RV rv = CKR_OK;

	if (out == NULL || (p == NULL && n > 0))
		return CKR_ARGUMENTS_BAD;
	if (md == NULL)
		return CKR_MECHANISM_INVALID;
	ERR_set_mark();
	/* EVP_Digest dislikes a NULL pointer even for zero bytes. */
	if (EVP_Digest(n > 0 ? (const void *)p : (const void *)"", n, out, NULL,
		       md, NULL) != 1)
		rv = CKR_FUNCTION_FAILED;
	ERR_pop_to_mark();
	return rv;
}

CK_MECHANISM_TYPE kyso_mgf_hash(CK_RSA_PKCS_MGF_TYPE mgf)
{
	switch (mgf) {
	case CKG_MGF1_SHA1:
		return CKM_SHA_1;
	case CKG_MGF1_SHA224:
		return CKM_SHA224;
	case CKG_MGF1_SHA256:
		return CKM_SHA256;
	case CKG_MGF1_SHA384:
		return CKM_SHA384;
	case CKG_MGF1_SHA512:
		return CKM_SHA512;
	default:
		return CKM_VENDOR_DEFINED;
	}
}

/* DigestInfo ::= SEQUENCE { AlgorithmIdentifier { oid, NULL }, OCTET STRING }
 * up to the hash itself (RFC 8017, 9.2, note 1). */
static const uint8_t di_sha1[] = {0x30, 0x21, 0x30, 0x09, 0x06,
				  0x05, 0x2b, 0x0e, 0x03, 0x02,
				  0x1a, 0x05, 0x00, 0x04, 0x14};
static const uint8_t di_sha224[] = {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60,
				    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
				    0x04, 0x05, 0x00, 0x04, 0x1c};
static const uint8_t di_sha256[] = {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
				    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
				    0x01, 0x05, 0x00, 0x04, 0x20};
static const uint8_t di_sha384[] = {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60,
				    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
				    0x02, 0x05, 0x00, 0x04, 0x30};
static const uint8_t di_sha512[] = {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60,
				    0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
				    0x03, 0x05, 0x00, 0x04, 0x40};

/* out may be NULL to ask for the size. */
CK_RV kyso_digestinfo(CK_MECHANISM_TYPE hash, const uint8_t *h, size_t hlen,
		      uint8_t *out, size_t cap, size_t *outlen)
{
	const uint8_t *pre;
	size_t prelen;

	if (outlen == NULL || (h == NULL && hlen > 0))
		return CKR_ARGUMENTS_BAD;
	switch (hash) {
	case CKM_SHA_1:
		pre = di_sha1;
		prelen = sizeof(di_sha1);
		break;
	case CKM_SHA224:
		pre = di_sha224;
		prelen = sizeof(di_sha224);
		break;
	case CKM_SHA256:
		pre = di_sha256;
		prelen = sizeof(di_sha256);
		break;
	case CKM_SHA384:
		pre = di_sha384;
		prelen = sizeof(di_sha384);
		break;
	case CKM_SHA512:
		pre = di_sha512;
		prelen = sizeof(di_sha512);
		break;
	default:
		return CKR_MECHANISM_INVALID;
	}
	if (hlen != kyso_digest_size(hash))
		return CKR_DATA_LEN_RANGE;
	*outlen = prelen + hlen;
	if (out == NULL)
		return CKR_OK;
	if (cap < prelen + hlen)
		return CKR_BUFFER_TOO_SMALL;
	memmove(out + prelen, h, hlen);
	memcpy(out, pre, prelen);
	return CKR_OK;
}
