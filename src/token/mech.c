/* Mechanisms composed over the drivers' raw RSA / ECDSA operations. A card
 * signs a modulus-sized block or a curve-sized hash; everything else
 * (hashing, DigestInfo, PKCS#1 and PSS padding, unpadding) happens here,
 * once, through src/crypto/. */
#include "config.h"

#include <string.h>

#include "token/mech.h"
#include "util/log.h"

enum {
	M_SIGN = 1 << 0,
	M_DECRYPT = 1 << 1,
	M_DIGEST = 1 << 2,
	M_GEN = 1 << 3,
	M_PSS = 1 << 4,
	M_OAEP = 1 << 5,
};

struct mdef {
	CK_MECHANISM_TYPE m;
	CK_KEY_TYPE kt; /* CKK_RSA, CKK_EC, or -1 for digests */
	CK_MECHANISM_TYPE hash;
	unsigned what;
};

#define NO_KEY ((CK_KEY_TYPE)-1)

static const struct mdef mechs[] = {
	{CKM_RSA_PKCS, CKK_RSA, 0, M_SIGN | M_DECRYPT},
	{CKM_RSA_X_509, CKK_RSA, 0, M_SIGN | M_DECRYPT},
	{CKM_SHA1_RSA_PKCS, CKK_RSA, CKM_SHA_1, M_SIGN},
	{CKM_SHA224_RSA_PKCS, CKK_RSA, CKM_SHA224, M_SIGN},
	{CKM_SHA256_RSA_PKCS, CKK_RSA, CKM_SHA256, M_SIGN},
	{CKM_SHA384_RSA_PKCS, CKK_RSA, CKM_SHA384, M_SIGN},
	{CKM_SHA512_RSA_PKCS, CKK_RSA, CKM_SHA512, M_SIGN},
	{CKM_RSA_PKCS_PSS, CKK_RSA, 0, M_SIGN | M_PSS},
	{CKM_SHA1_RSA_PKCS_PSS, CKK_RSA, CKM_SHA_1, M_SIGN | M_PSS},
	{CKM_SHA224_RSA_PKCS_PSS, CKK_RSA, CKM_SHA224, M_SIGN | M_PSS},
	{CKM_SHA256_RSA_PKCS_PSS, CKK_RSA, CKM_SHA256, M_SIGN | M_PSS},
	{CKM_SHA384_RSA_PKCS_PSS, CKK_RSA, CKM_SHA384, M_SIGN | M_PSS},
	{CKM_SHA512_RSA_PKCS_PSS, CKK_RSA, CKM_SHA512, M_SIGN | M_PSS},
	{CKM_RSA_PKCS_OAEP, CKK_RSA, 0, M_DECRYPT | M_OAEP},
	{CKM_RSA_PKCS_KEY_PAIR_GEN, CKK_RSA, 0, M_GEN},
	{CKM_ECDSA, CKK_EC, 0, M_SIGN},
	{CKM_ECDSA_SHA1, CKK_EC, CKM_SHA_1, M_SIGN},
	{CKM_ECDSA_SHA224, CKK_EC, CKM_SHA224, M_SIGN},
	{CKM_ECDSA_SHA256, CKK_EC, CKM_SHA256, M_SIGN},
	{CKM_ECDSA_SHA384, CKK_EC, CKM_SHA384, M_SIGN},
	{CKM_ECDSA_SHA512, CKK_EC, CKM_SHA512, M_SIGN},
	{CKM_EC_KEY_PAIR_GEN, CKK_EC, 0, M_GEN},
	{CKM_SHA_1, NO_KEY, 0, M_DIGEST},
	{CKM_SHA224, NO_KEY, 0, M_DIGEST},
	{CKM_SHA256, NO_KEY, 0, M_DIGEST},
	{CKM_SHA384, NO_KEY, 0, M_DIGEST},
	{CKM_SHA512, NO_KEY, 0, M_DIGEST},
};

#define NMECHS (sizeof(mechs) / sizeof(mechs[0]))

/* Input collected for raw mechanisms is never more than this. */
#define MAX_RAW_INPUT 1024
/* Messages kept for software verification of hash mechanisms. */
#define MAX_VERIFY_INPUT (64u << 20)

static const struct mdef *mdef_of(CK_MECHANISM_TYPE m)
{
	size_t i;

	for (i = 0; i < NMECHS; i++)
		if (mechs[i].m == m)
			return &mechs[i];
	return NULL;
}

static int offered(const struct kyso_token *tok, const struct mdef *d)
{
	if (d->kt == CKK_RSA && !tok->rsa_max)
		return 0;
	if (d->kt == CKK_EC && !tok->ec_max)
		return 0;
	if ((d->what & M_GEN) && !tok->can_generate)
		return 0;
	if (d->what == (M_DECRYPT | M_OAEP) && !tok->can_decrypt)
		return 0;
	return 1;
}

CK_RV kyso_mech_list(const struct kyso_token *tok, CK_MECHANISM_TYPE *out,
		     CK_ULONG *n)
{
	CK_ULONG cnt = 0, cap = *n;
	size_t i;

	for (i = 0; i < NMECHS; i++) {
		if (!offered(tok, &mechs[i]))
			continue;
		if (out && cnt < cap)
			out[cnt] = mechs[i].m;
		cnt++;
	}
	*n = cnt;
	if (out && cnt > cap)
		return CKR_BUFFER_TOO_SMALL;
	return CKR_OK;
}

CK_RV kyso_mech_info(const struct kyso_token *tok, CK_MECHANISM_TYPE m,
		     CK_MECHANISM_INFO *info)
{
	const struct mdef *d = mdef_of(m);

	if (!d || !offered(tok, d))
		return CKR_MECHANISM_INVALID;
	memset(info, 0, sizeof(*info));
	if (d->kt == CKK_RSA) {
		info->ulMinKeySize = tok->rsa_min;
		info->ulMaxKeySize = tok->rsa_max;
	} else if (d->kt == CKK_EC) {
		info->ulMinKeySize = tok->ec_min;
		info->ulMaxKeySize = tok->ec_max;
		info->flags |= CKF_EC_F_P | CKF_EC_NAMEDCURVE |
			       CKF_EC_UNCOMPRESS;
	}
	if (d->what & M_SIGN)
		info->flags |= CKF_HW | CKF_SIGN | CKF_VERIFY;
	if ((d->what & M_DECRYPT) && tok->can_decrypt)
		info->flags |= CKF_HW | CKF_DECRYPT;
	if (d->what & M_DIGEST)
		info->flags |= CKF_DIGEST;
	if (d->what & M_GEN)
		info->flags |= CKF_HW | CKF_GENERATE_KEY_PAIR;
	return CKR_OK;
}

int kyso_mech_key_ok(CK_MECHANISM_TYPE m, enum kyso_op_kind kind,
		     CK_KEY_TYPE kt)
{
	const struct mdef *d = mdef_of(m);

	if (!d || d->kt != kt)
		return 0;
	if (kind == KYSO_OP_DECRYPT)
		return (d->what & M_DECRYPT) != 0;
	return (d->what & M_SIGN) != 0;
}

void kyso_op_clear(struct kyso_op *op)
{
	if (op->dg)
		kyso_digest_free(op->dg);
	kyso_pubkey_clear(&op->pub);
	op->data.secret = 1;
	op->result.secret = 1;
	kyso_buf_free(&op->data);
	kyso_buf_free(&op->result);
	memset(op, 0, sizeof(*op));
}

/* Reads the PSS parameters and checks them against the mechanism. */
static CK_RV pss_params(struct kyso_op *op, const struct mdef *d,
			const CK_MECHANISM *m)
{
	const CK_RSA_PKCS_PSS_PARAMS *p = m->pParameter;

	if (!p || m->ulParameterLen != sizeof(*p))
		return CKR_MECHANISM_PARAM_INVALID;
	if (!kyso_digest_size(p->hashAlg) ||
	    kyso_mgf_hash(p->mgf) == CKM_VENDOR_DEFINED)
		return CKR_MECHANISM_PARAM_INVALID;
	if (d->hash && p->hashAlg != d->hash)
		return CKR_MECHANISM_PARAM_INVALID;
	op->pss = *p;
	return CKR_OK;
}

static CK_RV start(struct kyso_op *op, const struct mdef *d,
		   const CK_MECHANISM *m, enum kyso_op_kind kind)
{
	CK_RV rv;

	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->mech = d->m;
	op->hash = d->hash;
	op->data.max = kind == KYSO_OP_VERIFY && d->hash ? MAX_VERIFY_INPUT
							 : MAX_RAW_INPUT;
	op->data.secret = 1;
	op->result.secret = 1;
	if (d->what & M_PSS) {
		rv = pss_params(op, d, m);
		if (rv != CKR_OK)
			return rv;
	} else if (!(d->what & M_OAEP) && m->ulParameterLen != 0) {
		return CKR_MECHANISM_PARAM_INVALID;
	}
	if (d->hash && kind == KYSO_OP_SIGN) {
		rv = kyso_digest_new(d->hash, &op->dg);
		if (rv != CKR_OK)
			return rv;
	}
	return CKR_OK;
}

CK_RV kyso_sign_init(struct kyso_token *tok, struct kyso_op *op,
		     const CK_MECHANISM *m, size_t key)
{
	const struct mdef *d = mdef_of(m->mechanism);
	const struct kyso_key *k = &tok->keys[key];
	CK_RV rv;

	if (!d || !offered(tok, d) || !(d->what & M_SIGN))
		return CKR_MECHANISM_INVALID;
	if (d->kt != k->type)
		return CKR_KEY_TYPE_INCONSISTENT;
	if (!k->can_sign)
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	if (!k->bits)
		return CKR_KEY_HANDLE_INVALID; /* size unknown: cannot pad */
	rv = start(op, d, m, KYSO_OP_SIGN);
	if (rv != CKR_OK) {
		kyso_op_clear(op);
		return rv;
	}
	op->key = key;
	return CKR_OK;
}

CK_RV kyso_op_update(struct kyso_op *op, const uint8_t *p, size_t n)
{
	op->multipart = 1;
	if (op->dg)
		return kyso_digest_update(op->dg, p, n);
	if (kyso_buf_append(&op->data, p, n) < 0)
		return CKR_DATA_LEN_RANGE;
	return CKR_OK;
}

size_t kyso_sign_len(const struct kyso_token *tok, const struct kyso_op *op)
{
	const struct kyso_key *k = &tok->keys[op->key];
	size_t bytes = (k->bits + 7) / 8;

	return k->type == CKK_EC ? 2 * bytes : bytes;
}

/* Builds what the card signs: a k-byte block for RSA, the fitted hash for
 * EC. */
static CK_RV sign_input(const struct kyso_key *k, struct kyso_op *op,
			uint8_t *block, size_t *blocklen)
{
	uint8_t h[64], di[128];
	size_t hlen = 0, dilen = 0, kbytes = (k->bits + 7) / 8;
	const uint8_t *msg = op->data.p;
	size_t msglen = op->data.len;
	CK_RV rv;

	if (op->dg) {
		hlen = kyso_digest_size(op->hash);
		rv = kyso_digest_final(op->dg, h);
		op->dg = NULL;
		if (rv != CKR_OK)
			return rv;
		msg = h;
		msglen = hlen;
	}
	if (k->type == CKK_EC) {
		if (msglen == 0)
			return CKR_DATA_LEN_RANGE;
		kyso_ecdsa_fit(msg, msglen, k->bits, block);
		*blocklen = kbytes;
		return CKR_OK;
	}
	*blocklen = kbytes;
	switch (op->mech) {
	case CKM_RSA_X_509:
		if (msglen > kbytes)
			return CKR_DATA_LEN_RANGE;
		memset(block, 0, kbytes - msglen);
		if (msglen)
			memcpy(block + kbytes - msglen, msg, msglen);
		return CKR_OK;
	case CKM_RSA_PKCS:
		if (msglen + 11 > kbytes)
			return CKR_DATA_LEN_RANGE;
		return kyso_rsa_pad_pkcs1(msg, msglen, block, kbytes);
	case CKM_RSA_PKCS_PSS:
		if (msglen != kyso_digest_size(op->pss.hashAlg))
			return CKR_DATA_LEN_RANGE;
		/* fall through */
	case CKM_SHA1_RSA_PKCS_PSS:
	case CKM_SHA224_RSA_PKCS_PSS:
	case CKM_SHA256_RSA_PKCS_PSS:
	case CKM_SHA384_RSA_PKCS_PSS:
	case CKM_SHA512_RSA_PKCS_PSS:
		return kyso_rsa_pad_pss(op->pss.hashAlg,
					kyso_mgf_hash(op->pss.mgf),
					op->pss.sLen, msg, msglen, k->bits,
					block, kbytes);
	default: /* CKM_SHAx_RSA_PKCS */
		rv = kyso_digestinfo(op->hash, msg, msglen, di, sizeof(di),
				     &dilen);
		if (rv != CKR_OK)
			return rv;
		return kyso_rsa_pad_pkcs1(di, dilen, block, kbytes);
	}
}

/* What a card's answer to a private-key operation may become: the codes
 * PKCS#11 lists for C_Sign / C_Decrypt. A PIN status word there (the card
 * wanted a PIN we had sent) must not make an application ask for the PIN
 * again, and "no such object / instruction" after the one re-select is
 * the card failing. */
static CK_RV privop_rv(CK_RV rv)
{
	switch (rv) {
	case CKR_PIN_INCORRECT:
	case CKR_PIN_LOCKED:
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_FUNCTION_NOT_SUPPORTED:
		return CKR_DEVICE_ERROR;
	default:
		return rv;
	}
}

/* Login rules checked before any card I/O: a key behind the PIN needs a
 * user login, an always-authenticate key a fresh context login. */
static CK_RV may_use(struct kyso_token *tok, const struct kyso_key *k)
{
	if (k->no_pin)
		return CKR_OK;
	if (tok->login != CKU_USER)
		return CKR_USER_NOT_LOGGED_IN;
	if (k->always_auth && !tok->ctx_login)
		return CKR_USER_NOT_LOGGED_IN;
	return CKR_OK;
}

CK_RV kyso_sign_final(struct kyso_token *tok, struct kyso_op *op,
		      uint8_t *sig, size_t *siglen)
{
	const struct kyso_key *k = &tok->keys[op->key];
	uint8_t block[1024];
	size_t blocklen = 0, want = kyso_sign_len(tok, op), outlen;
	CK_RV rv;

	if (want > sizeof(block))
		return CKR_KEY_SIZE_RANGE;
	rv = may_use(tok, k);
	if (rv != CKR_OK)
		return rv;
	rv = sign_input(k, op, block, &blocklen);
	if (rv != CKR_OK)
		goto out;
	rv = kyso_token_begin(tok);
	if (rv != CKR_OK)
		goto out;
	outlen = want;
	rv = tok->drv->sign(tok->card, k, block, blocklen, sig, &outlen);
	if (kyso_token_lost_app(tok, rv)) {
		outlen = want;
		rv = tok->drv->sign(tok->card, k, block, blocklen, sig,
				    &outlen);
	}
	kyso_token_end(tok);
	if (k->always_auth)
		tok->ctx_login = 0;
	if (rv == CKR_USER_NOT_LOGGED_IN)
		tok->login = KYSO_NOBODY; /* the card forgot our PIN */
	if (rv == CKR_OK && outlen != want) {
		kyso_err("sign: driver gave %zu bytes, want %zu", outlen, want);
		rv = CKR_DEVICE_ERROR;
	}
	rv = privop_rv(rv);
	if (rv == CKR_OK)
		*siglen = outlen;
	else
		kyso_wipe(sig, want);
out:
	kyso_wipe(block, sizeof(block));
	return rv;
}

CK_RV kyso_verify_init(struct kyso_op *op, const CK_MECHANISM *m,
		       const struct kyso_pubkey *pub)
{
	const struct mdef *d = mdef_of(m->mechanism);
	CK_RV rv;

	if (!d || !(d->what & M_SIGN))
		return CKR_MECHANISM_INVALID;
	if (d->kt != pub->type)
		return CKR_KEY_TYPE_INCONSISTENT;
	rv = start(op, d, m, KYSO_OP_VERIFY);
	if (rv == CKR_OK)
		rv = kyso_pubkey_copy(&op->pub, pub);
	if (rv != CKR_OK)
		kyso_op_clear(op);
	return rv;
}

CK_RV kyso_verify_final(struct kyso_op *op, const uint8_t *sig, size_t len)
{
	const void *params = NULL;
	size_t plen = 0;

	if (op->pss.hashAlg) {
		params = &op->pss;
		plen = sizeof(op->pss);
	}
	return kyso_verify(&op->pub, op->mech, params, plen, op->data.p,
			   op->data.len, sig, len);
}

CK_RV kyso_decrypt_init(struct kyso_token *tok, struct kyso_op *op,
			const CK_MECHANISM *m, size_t key)
{
	const struct mdef *d = mdef_of(m->mechanism);
	const struct kyso_key *k = &tok->keys[key];
	CK_RV rv;

	if (!d || !offered(tok, d) || !(d->what & M_DECRYPT) ||
	    !tok->can_decrypt)
		return CKR_MECHANISM_INVALID;
	if (d->kt != k->type)
		return CKR_KEY_TYPE_INCONSISTENT;
	if (!k->can_decrypt)
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	if (!k->bits)
		return CKR_KEY_HANDLE_INVALID;
	rv = start(op, d, m, KYSO_OP_DECRYPT);
	if (rv == CKR_OK && (d->what & M_OAEP)) {
		const CK_RSA_PKCS_OAEP_PARAMS *p = m->pParameter;

		if (!p || m->ulParameterLen != sizeof(*p) ||
		    !kyso_digest_size(p->hashAlg) ||
		    kyso_mgf_hash(p->mgf) == CKM_VENDOR_DEFINED ||
		    (p->source != 0 && p->source != CKZ_DATA_SPECIFIED) ||
		    (p->ulSourceDataLen && !p->pSourceData))
			rv = CKR_MECHANISM_PARAM_INVALID;
		else {
			op->oaep = *p;
			/* The label is needed after init returns: keep it. */
			op->oaep.pSourceData = NULL;
			if (p->ulSourceDataLen &&
			    kyso_buf_append(&op->data, p->pSourceData,
					    p->ulSourceDataLen) < 0)
				rv = CKR_MECHANISM_PARAM_INVALID;
		}
	}
	if (rv != CKR_OK) {
		kyso_op_clear(op);
		return rv;
	}
	op->key = key;
	op->result.max = 1024;
	return CKR_OK;
}

CK_RV kyso_decrypt_run(struct kyso_token *tok, struct kyso_op *op,
		       const uint8_t *in, size_t inlen)
{
	const struct kyso_key *k = &tok->keys[op->key];
	size_t kbytes = (k->bits + 7) / 8, emlen = kbytes, outlen;
	uint8_t em[1024], out[1024];
	CK_RV rv;

	if (kbytes > sizeof(em))
		return CKR_KEY_SIZE_RANGE;
	if (inlen != kbytes)
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	rv = may_use(tok, k);
	if (rv != CKR_OK)
		return rv;
	rv = kyso_token_begin(tok);
	if (rv != CKR_OK)
		return rv;
	rv = tok->drv->decrypt(tok->card, k, in, inlen, em, &emlen);
	if (kyso_token_lost_app(tok, rv)) {
		emlen = kbytes;
		rv = tok->drv->decrypt(tok->card, k, in, inlen, em, &emlen);
	}
	kyso_token_end(tok);
	if (k->always_auth)
		tok->ctx_login = 0;
	if (rv == CKR_USER_NOT_LOGGED_IN)
		tok->login = KYSO_NOBODY;
	if (rv == CKR_OK && emlen != kbytes)
		rv = CKR_DEVICE_ERROR;
	rv = privop_rv(rv);
	if (rv != CKR_OK)
		goto out;
	outlen = sizeof(out);
	switch (op->mech) {
	case CKM_RSA_X_509:
		memcpy(out, em, kbytes);
		outlen = kbytes;
		break;
	case CKM_RSA_PKCS:
		rv = kyso_rsa_unpad_pkcs1(em, kbytes, out, &outlen);
		break;
	default:
		rv = kyso_rsa_unpad_oaep(em, kbytes, op->oaep.hashAlg,
					 kyso_mgf_hash(op->oaep.mgf),
					 op->data.p, op->data.len, out,
					 &outlen);
		break;
	}
	if (rv == CKR_OK) {
		kyso_buf_reset(&op->result);
		if (kyso_buf_append(&op->result, out, outlen) < 0)
			rv = CKR_HOST_MEMORY;
		else
			op->have_result = 1;
	}
out:
	kyso_wipe(em, sizeof(em));
	kyso_wipe(out, sizeof(out));
	return rv;
}
