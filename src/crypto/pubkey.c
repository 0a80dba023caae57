/* Public keys as kyso keeps them (RSA n/e, EC curve OID and point), their
 * SubjectPublicKeyInfo, and software verification of every signature
 * mechanism kyso offers, so C_Verify never needs the card. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto/crypto.h"

/* From digest.c. */
const EVP_MD *kyso_md(CK_MECHANISM_TYPE hash);

#define KYSO_RSA_MAX_BITS 16384
/* DER Ecdsa-Sig-Value of two 66-byte integers, with room to spare. */
#define KYSO_ECDSA_DER_MAX 160

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n > 0 ? n : 1);

	if (d != NULL && n > 0)
		memcpy(d, p, n);
	return d;
}

void kyso_pubkey_clear(struct kyso_pubkey *k)
{
	if (k == NULL)
		return;
	free(k->n);
	free(k->e);
	free(k->params);
	free(k->point);
	memset(k, 0, sizeof(*k));
}

/* dst is overwritten, not freed; on failure it is left empty. */
CK_RV kyso_pubkey_copy(struct kyso_pubkey *dst, const struct kyso_pubkey *src)
{
	struct kyso_pubkey t;

	if (dst == NULL || src == NULL)
		return CKR_ARGUMENTS_BAD;
	memset(&t, 0, sizeof(t));
	t.type = src->type;
	t.bits = src->bits;
	if ((src->n != NULL && (t.n = dup_bytes(src->n, src->nlen)) == NULL) ||
	    (src->e != NULL && (t.e = dup_bytes(src->e, src->elen)) == NULL) ||
	    (src->params != NULL &&
	     (t.params = dup_bytes(src->params, src->paramslen)) == NULL) ||
	    (src->point != NULL &&
	     (t.point = dup_bytes(src->point, src->pointlen)) == NULL)) {
		kyso_pubkey_clear(&t);
		memset(dst, 0, sizeof(*dst));
		return CKR_HOST_MEMORY;
	}
	t.nlen = src->nlen;
	t.elen = src->elen;
	t.paramslen = src->paramslen;
	t.pointlen = src->pointlen;
	*dst = t;
	return CKR_OK;
}

static void strip_zeros(const uint8_t **p, size_t *n)
{
	while (*n > 0 && **p == 0) {
		(*p)++;
		(*n)--;
	}
}

/* k is overwritten (not freed) on success and untouched on failure. Key
 * material usually comes from a card, so nonsense is CKR_DEVICE_ERROR. */
CK_RV kyso_pubkey_rsa(struct kyso_pubkey *k, const uint8_t *n, size_t nlen,
		      const uint8_t *e, size_t elen)
{
	struct kyso_pubkey t;
	unsigned top;

	if (k == NULL || (n == NULL && nlen > 0) || (e == NULL && elen > 0))
		return CKR_ARGUMENTS_BAD;
	strip_zeros(&n, &nlen);
	strip_zeros(&e, &elen);
	if (nlen == 0 || elen == 0 || nlen > KYSO_RSA_MAX_BITS / 8 ||
	    elen > nlen)
		return CKR_DEVICE_ERROR;
	memset(&t, 0, sizeof(t));
	t.type = CKK_RSA;
	t.bits = (CK_ULONG)(nlen - 1) * 8;
	for (top = n[0]; top != 0; top >>= 1)
		t.bits++;
	t.n = dup_bytes(n, nlen);
	t.e = dup_bytes(e, elen);
	if (t.n == NULL || t.e == NULL) {
		kyso_pubkey_clear(&t);
		return CKR_HOST_MEMORY;
	}
	t.nlen = nlen;
	t.elen = elen;
	*k = t;
	return CKR_OK;
}

static int curve_nid(CK_ULONG bits)
{
	switch (bits) {
	case 256:
		return NID_X9_62_prime256v1;
	case 384:
		return NID_secp384r1;
	case 521:
		return NID_secp521r1;
	default:
		return NID_undef;
	}
}

/* Also takes 521 (P-521) besides the 256 and 384 of the header comment.
 * k is overwritten (not freed) on success and untouched on failure. */
CK_RV kyso_pubkey_ec(struct kyso_pubkey *k, CK_ULONG curve_bits,
		     const uint8_t *point, size_t pointlen)
{
	int nid = curve_nid(curve_bits);
	size_t cbytes = (curve_bits + 7) / 8;
	EC_GROUP *grp = NULL;
	EC_POINT *pt = NULL;
	struct kyso_pubkey t;
	unsigned char *p;
	int dlen;
	CK_RV rv;

	if (k == NULL || (point == NULL && pointlen > 0))
		return CKR_ARGUMENTS_BAD;
	if (nid == NID_undef)
		return CKR_KEY_SIZE_RANGE;
	if (pointlen != 2 * cbytes + 1 || point[0] != 0x04)
		return CKR_DEVICE_ERROR;
	memset(&t, 0, sizeof(t));
	ERR_set_mark();
	grp = EC_GROUP_new_by_curve_name(nid);
	pt = grp != NULL ? EC_POINT_new(grp) : NULL;
	if (pt == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	/* Rejects points off the curve; these curves have cofactor 1. */
	if (EC_POINT_oct2point(grp, pt, point, pointlen, NULL) != 1) {
		rv = CKR_DEVICE_ERROR;
		goto out;
	}
	dlen = i2d_ASN1_OBJECT(OBJ_nid2obj(nid), NULL);
	if (dlen <= 0) {
		rv = CKR_FUNCTION_FAILED;
		goto out;
	}
	t.type = CKK_EC;
	t.bits = curve_bits;
	t.params = malloc((size_t)dlen);
	t.point = dup_bytes(point, pointlen);
	if (t.params == NULL || t.point == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	p = t.params;
	if (i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &p) != dlen) {
		rv = CKR_FUNCTION_FAILED;
		goto out;
	}
	t.paramslen = (size_t)dlen;
	t.pointlen = pointlen;
	*k = t;
	memset(&t, 0, sizeof(t));
	rv = CKR_OK;
out:
	kyso_pubkey_clear(&t);
	EC_POINT_free(pt);
	EC_GROUP_free(grp);
	ERR_pop_to_mark();
	return rv;
}

static const char *curve_name(CK_ULONG bits)
{
	switch (bits) {
	case 256:
		return "prime256v1";
	case 384:
		return "secp384r1";
	case 521:
		return "secp521r1";
	default:
		return NULL;
	}
}

/* An OpenSSL key from ours. Call with an error mark set. */
static CK_RV to_evp(const struct kyso_pubkey *k, EVP_PKEY **out)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *n = NULL, *e = NULL;
	const char *type, *curve = NULL;
	CK_ULONG bits;
	CK_RV rv;

	*out = NULL;
	if (k->type == CKK_RSA) {
		if (k->n == NULL || k->nlen == 0 || k->e == NULL ||
		    k->elen == 0 || k->nlen > KYSO_RSA_MAX_BITS / 8 ||
		    k->elen > k->nlen)
			return CKR_KEY_TYPE_INCONSISTENT;
		type = "RSA";
	} else if (k->type == CKK_EC) {
		if (k->params == NULL || k->point == NULL)
			return CKR_KEY_TYPE_INCONSISTENT;
		bits = kyso_ec_params_bits(k->params, k->paramslen);
		curve = curve_name(bits);
		if (curve == NULL)
			return CKR_CURVE_NOT_SUPPORTED;
		type = "EC";
	} else {
		return CKR_KEY_TYPE_INCONSISTENT;
	}

	rv = CKR_HOST_MEMORY;
	bld = OSSL_PARAM_BLD_new();
	if (bld == NULL)
		goto out;
	if (k->type == CKK_RSA) {
		n = BN_bin2bn(k->n, (int)k->nlen, NULL);
		e = BN_bin2bn(k->e, (int)k->elen, NULL);
		if (n == NULL || e == NULL ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
			goto out;
	} else {
		if (!OSSL_PARAM_BLD_push_utf8_string(
			bld, OSSL_PKEY_PARAM_GROUP_NAME, curve, 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(
			bld, OSSL_PKEY_PARAM_PUB_KEY, k->point, k->pointlen))
			goto out;
	}
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (params == NULL || ctx == NULL)
		goto out;
	rv = CKR_FUNCTION_FAILED;
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		*out = NULL;
		goto out;
	}
	rv = CKR_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	return rv;
}

/* *der is malloc'd; the caller frees it. */
CK_RV kyso_pubkey_spki(const struct kyso_pubkey *k, uint8_t **der, size_t *len)
{
	EVP_PKEY *pkey = NULL;
	unsigned char *p;
	int n;
	CK_RV rv;

	if (k == NULL || der == NULL || len == NULL)
		return CKR_ARGUMENTS_BAD;
	*der = NULL;
	*len = 0;
	ERR_set_mark();
	rv = to_evp(k, &pkey);
	if (rv != CKR_OK)
		goto out;
	n = i2d_PUBKEY(pkey, NULL);
	if (n <= 0) {
		rv = CKR_FUNCTION_FAILED;
		goto out;
	}
	*der = malloc((size_t)n);
	if (*der == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	p = *der;
	if (i2d_PUBKEY(pkey, &p) != n) {
		free(*der);
		*der = NULL;
		rv = CKR_FUNCTION_FAILED;
		goto out;
	}
	*len = (size_t)n;
out:
	EVP_PKEY_free(pkey);
	ERR_pop_to_mark();
	return rv;
}

/* --- verification ------------------------------------------------------ */

enum vkind {
	V_RSA_PKCS,   /* data is what was padded (DigestInfo or raw) */
	V_RSA_X509,   /* raw RSA */
	V_RSA_HASH,   /* hash, DigestInfo, PKCS#1 v1.5 */
	V_PSS,	      /* data is the hash */
	V_PSS_HASH,   /* hash, PSS */
	V_ECDSA,      /* data is the hash */
	V_ECDSA_HASH, /* hash, ECDSA */
};

static const struct vmech {
	CK_MECHANISM_TYPE mech;
	CK_KEY_TYPE key;
	enum vkind kind;
	CK_MECHANISM_TYPE hash;
} vmechs[] = {
    {CKM_RSA_PKCS, CKK_RSA, V_RSA_PKCS, 0},
    {CKM_RSA_X_509, CKK_RSA, V_RSA_X509, 0},
    {CKM_SHA1_RSA_PKCS, CKK_RSA, V_RSA_HASH, CKM_SHA_1},
    {CKM_SHA224_RSA_PKCS, CKK_RSA, V_RSA_HASH, CKM_SHA224},
    {CKM_SHA256_RSA_PKCS, CKK_RSA, V_RSA_HASH, CKM_SHA256},
    {CKM_SHA384_RSA_PKCS, CKK_RSA, V_RSA_HASH, CKM_SHA384},
    {CKM_SHA512_RSA_PKCS, CKK_RSA, V_RSA_HASH, CKM_SHA512},
    {CKM_RSA_PKCS_PSS, CKK_RSA, V_PSS, 0},
    {CKM_SHA1_RSA_PKCS_PSS, CKK_RSA, V_PSS_HASH, CKM_SHA_1},
    {CKM_SHA224_RSA_PKCS_PSS, CKK_RSA, V_PSS_HASH, CKM_SHA224},
    {CKM_SHA256_RSA_PKCS_PSS, CKK_RSA, V_PSS_HASH, CKM_SHA256},
    {CKM_SHA384_RSA_PKCS_PSS, CKK_RSA, V_PSS_HASH, CKM_SHA384},
    {CKM_SHA512_RSA_PKCS_PSS, CKK_RSA, V_PSS_HASH, CKM_SHA512},
    {CKM_ECDSA, CKK_EC, V_ECDSA, 0},
    {CKM_ECDSA_SHA1, CKK_EC, V_ECDSA_HASH, CKM_SHA_1},
    {CKM_ECDSA_SHA224, CKK_EC, V_ECDSA_HASH, CKM_SHA224},
    {CKM_ECDSA_SHA256, CKK_EC, V_ECDSA_HASH, CKM_SHA256},
    {CKM_ECDSA_SHA384, CKK_EC, V_ECDSA_HASH, CKM_SHA384},
    {CKM_ECDSA_SHA512, CKK_EC, V_ECDSA_HASH, CKM_SHA512},
};

struct pss {
	const EVP_MD *md, *mgf;
	size_t hlen;
	int slen;
};

/* want: the hash the mechanism fixes, 0 when the parameters choose. */
static CK_RV pss_params(const void *params, size_t len, CK_MECHANISM_TYPE want,
			CK_ULONG modbits, struct pss *out)
{
	const CK_RSA_PKCS_PSS_PARAMS *pp = params;
	size_t emlen = (modbits - 1 + 7) / 8;

	if (pp == NULL || len != sizeof(*pp))
		return CKR_MECHANISM_PARAM_INVALID;
	if (want != 0 && pp->hashAlg != want)
		return CKR_MECHANISM_PARAM_INVALID;
	out->md = kyso_md(pp->hashAlg);
	out->mgf = kyso_md(kyso_mgf_hash(pp->mgf));
	out->hlen = kyso_digest_size(pp->hashAlg);
	if (out->md == NULL || out->mgf == NULL)
		return CKR_MECHANISM_PARAM_INVALID;
	/* RFC 8017 9.1.1: emLen >= hLen + sLen + 2 */
	if (pp->sLen > INT_MAX || emlen < out->hlen + 2 ||
	    pp->sLen > emlen - out->hlen - 2)
		return CKR_MECHANISM_PARAM_INVALID;
	out->slen = (int)pp->sLen;
	return CKR_OK;
}

static CK_RV set_pss(EVP_PKEY_CTX *pctx, const struct pss *pss)
{
	if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, pss->mgf) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss->slen) != 1)
		return CKR_FUNCTION_FAILED;
	return CKR_OK;
}

/* RSA_X_509: the public operation gives back the integer that was signed;
 * it must equal data read as a big-endian integer of k bytes. */
static CK_RV verify_x509(EVP_PKEY *pkey, size_t k, const uint8_t *data,
			 size_t datalen, const uint8_t *sig, size_t siglen)
{
	EVP_PKEY_CTX *ctx = NULL;
	uint8_t *want = NULL, *got = NULL;
	size_t gotlen = k;
	CK_RV rv = CKR_HOST_MEMORY;

	if (datalen > k)
		return CKR_DATA_LEN_RANGE;
	want = calloc(1, k);
	got = calloc(1, k);
	ctx = EVP_PKEY_CTX_new(pkey, NULL);
	if (want == NULL || got == NULL || ctx == NULL)
		goto out;
	if (datalen > 0)
		memcpy(want + k - datalen, data, datalen);
	rv = CKR_FUNCTION_FAILED;
	if (EVP_PKEY_verify_recover_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) != 1)
		goto out;
	/* A signature not below n fails here: not a signature of anything. */
	if (EVP_PKEY_verify_recover(ctx, got, &gotlen, sig, siglen) != 1 ||
	    gotlen != k || CRYPTO_memcmp(got, want, k) != 0)
		rv = CKR_SIGNATURE_INVALID;
	else
		rv = CKR_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	free(want);
	free(got);
	return rv;
}

static CK_RV verify_rsa(const struct vmech *vm, EVP_PKEY *pkey,
			const struct kyso_pubkey *k, const void *params,
			size_t paramslen, const uint8_t *data, size_t datalen,
			const uint8_t *sig, size_t siglen)
{
	EVP_PKEY_CTX *ctx = NULL, *pctx;
	EVP_MD_CTX *mctx = NULL;
	struct pss pss;
	int r;
	CK_RV rv;

	/* Parameters first: they are wrong whatever the signature. */
	if (vm->kind == V_PSS || vm->kind == V_PSS_HASH) {
		rv = pss_params(params, paramslen, vm->hash, k->bits, &pss);
		if (rv != CKR_OK)
			return rv;
		if (vm->kind == V_PSS && datalen != pss.hlen)
			return CKR_DATA_LEN_RANGE;
	}
	if (vm->kind == V_RSA_PKCS && (k->nlen < 11 || datalen > k->nlen - 11))
		return CKR_DATA_LEN_RANGE;
	if (siglen != k->nlen)
		return CKR_SIGNATURE_LEN_RANGE;

	switch (vm->kind) {
	case V_RSA_X509:
		return verify_x509(pkey, k->nlen, data, datalen, sig, siglen);
	case V_RSA_PKCS:
	case V_PSS:
		ctx = EVP_PKEY_CTX_new(pkey, NULL);
		if (ctx == NULL)
			return CKR_HOST_MEMORY;
		rv = CKR_FUNCTION_FAILED;
		if (EVP_PKEY_verify_init(ctx) != 1)
			goto out;
		if (vm->kind == V_RSA_PKCS) {
			/* No digest: OpenSSL compares what follows the
			 * type 1 padding with data as it is. */
			if (EVP_PKEY_CTX_set_rsa_padding(
				ctx, RSA_PKCS1_PADDING) != 1)
				goto out;
		} else if (EVP_PKEY_CTX_set_signature_md(ctx, pss.md) != 1 ||
			   set_pss(ctx, &pss) != CKR_OK) {
			goto out;
		}
		r = EVP_PKEY_verify(ctx, sig, siglen, data, datalen);
		break;
	default: /* V_RSA_HASH, V_PSS_HASH */
		mctx = EVP_MD_CTX_new();
		if (mctx == NULL)
			return CKR_HOST_MEMORY;
		rv = CKR_FUNCTION_FAILED;
		if (EVP_DigestVerifyInit(mctx, &pctx, kyso_md(vm->hash), NULL,
					 pkey) != 1)
			goto out;
		if (vm->kind == V_RSA_HASH) {
			if (EVP_PKEY_CTX_set_rsa_padding(
				pctx, RSA_PKCS1_PADDING) != 1)
				goto out;
		} else if (set_pss(pctx, &pss) != CKR_OK) {
			goto out;
		}
		r = EVP_DigestVerify(mctx, sig, siglen,
				     datalen > 0 ? data : (const uint8_t *)"",
				     datalen);
		break;
	}
	rv = r == 1 ? CKR_OK : CKR_SIGNATURE_INVALID;
out:
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(ctx);
	return rv;
}

static CK_RV verify_ec(const struct vmech *vm, EVP_PKEY *pkey,
		       const struct kyso_pubkey *k, const uint8_t *data,
		       size_t datalen, const uint8_t *sig, size_t siglen)
{
	CK_ULONG bits = kyso_ec_params_bits(k->params, k->paramslen);
	uint8_t der[KYSO_ECDSA_DER_MAX];
	size_t derlen;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_MD_CTX *mctx = NULL;
	int r;
	CK_RV rv;

	if (siglen != 2 * ((bits + 7) / 8))
		return CKR_SIGNATURE_LEN_RANGE;
	rv = kyso_ecdsa_raw_to_der(sig, siglen, der, sizeof(der), &derlen);
	if (rv != CKR_OK)
		return rv;
	if (vm->kind == V_ECDSA) {
		ctx = EVP_PKEY_CTX_new(pkey, NULL);
		if (ctx == NULL)
			return CKR_HOST_MEMORY;
		rv = CKR_FUNCTION_FAILED;
		if (EVP_PKEY_verify_init(ctx) != 1)
			goto out;
		/* OpenSSL truncates a long hash to the order as X9.62 says. */
		r = EVP_PKEY_verify(ctx, der, derlen,
				    datalen > 0 ? data : (const uint8_t *)"",
				    datalen);
	} else {
		mctx = EVP_MD_CTX_new();
		if (mctx == NULL)
			return CKR_HOST_MEMORY;
		rv = CKR_FUNCTION_FAILED;
		if (EVP_DigestVerifyInit(mctx, NULL, kyso_md(vm->hash), NULL,
					 pkey) != 1)
			goto out;
		r = EVP_DigestVerify(mctx, der, derlen,
				     datalen > 0 ? data : (const uint8_t *)"",
				     datalen);
	}
	rv = r == 1 ? CKR_OK : CKR_SIGNATURE_INVALID;
out:
	EVP_MD_CTX_free(mctx);
	EVP_PKEY_CTX_free(ctx);
	return rv;
}

CK_RV kyso_verify(const struct kyso_pubkey *k, CK_MECHANISM_TYPE mech,
		  const void *params, size_t paramslen, const uint8_t *data,
		  size_t datalen, const uint8_t *sig, size_t siglen)
{
	const struct vmech *vm = NULL;
	EVP_PKEY *pkey = NULL;
	size_t i;
	CK_RV rv;

	if (k == NULL || (data == NULL && datalen > 0) ||
	    (sig == NULL && siglen > 0))
		return CKR_ARGUMENTS_BAD;
	for (i = 0; i < sizeof(vmechs) / sizeof(vmechs[0]); i++) {
		if (vmechs[i].mech == mech) {
			vm = &vmechs[i];
			break;
		}
	}
	if (vm == NULL)
		return CKR_MECHANISM_INVALID;
	if (k->type != vm->key)
		return CKR_KEY_TYPE_INCONSISTENT;
	ERR_set_mark();
	rv = to_evp(k, &pkey);
	if (rv != CKR_OK)
		goto out;
	if (k->type == CKK_RSA)
		rv = verify_rsa(vm, pkey, k, params, paramslen, data, datalen,
				sig, siglen);
	else
		rv = verify_ec(vm, pkey, k, data, datalen, sig, siglen);
out:
	EVP_PKEY_free(pkey);
	ERR_pop_to_mark();
	return rv;
}
