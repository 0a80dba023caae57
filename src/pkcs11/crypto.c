/* Sign, verify, decrypt, digest and random: argument checks and the spec's
 * length protocol here; the work itself in src/token/mech.c. */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "pkcs11/internal.h"
#include "util/log.h"

/* The private key behind a handle, as an index into tok->keys. */
static CK_RV key_of(struct kyso_token *tok, CK_OBJECT_HANDLE h, size_t *idx)
{
	struct kyso_object *o = kyso_visible_object(tok, h);

	if (!o || o->cls != CKO_PRIVATE_KEY || o->key < 0 ||
	    (size_t)o->key >= tok->nkeys)
		return CKR_KEY_HANDLE_INVALID;
	*idx = (size_t)o->key;
	return CKR_OK;
}

/* SignInit and DecryptInit: one private-key operation per session. */
static CK_RV key_op_init(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR m,
			 CK_OBJECT_HANDLE hKey, enum kyso_op_kind kind)
{
	struct kyso_session *s;
	struct kyso_token *tok;
	struct kyso_op *op;
	size_t idx;
	CK_RV rv;

	return_val_if_fail(m != NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, &tok);
	if (rv != CKR_OK)
		goto out;
	op = kind == KYSO_OP_SIGN ? &s->sign : &s->decrypt;
	if (op->kind) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	rv = key_of(tok, hKey, &idx);
	if (rv == CKR_OK)
		rv = kind == KYSO_OP_SIGN ? kyso_sign_init(tok, op, m, idx)
					  : kyso_decrypt_init(tok, op, m, idx);
	if (rv == CKR_OK)
		tok->ctx_login = 0; /* a context login counts for this op only */
out:
	kyso_unlock();
	return rv;
}

CK_RV C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		 CK_OBJECT_HANDLE hKey)
{
	return key_op_init(hSession, pMechanism, hKey, KYSO_OP_SIGN);
}

/* The end of a signature: length query, buffer check, then the card. */
static CK_RV sign_finish(struct kyso_session *s, struct kyso_slot *slot,
			 struct kyso_token *tok, CK_BYTE_PTR sig,
			 CK_ULONG_PTR siglen)
{
	size_t need = kyso_sign_len(tok, &s->sign), got = 0;
	CK_RV rv;

	if (!sig) {
		*siglen = need;
		return CKR_OK;
	}
	if (*siglen < need) {
		*siglen = need;
		return CKR_BUFFER_TOO_SMALL;
	}
	rv = kyso_sign_final(tok, &s->sign, sig, &got);
	rv = kyso_after_io(slot, rv);
	if (rv == CKR_OK)
		*siglen = got;
	kyso_op_clear(&s->sign);
	return rv;
}

CK_RV C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
	     CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
	struct kyso_session *s;
	struct kyso_slot *slot;
	struct kyso_token *tok;
	CK_RV rv;

	return_val_if_fail(pulSignatureLen != NULL, CKR_ARGUMENTS_BAD);
	return_val_if_fail(pData != NULL || ulDataLen == 0, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, &slot, &tok);
	if (rv != CKR_OK)
		goto out;
	if (s->sign.kind != KYSO_OP_SIGN) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
		goto out;
	}
	if (s->sign.multipart) {
		kyso_op_clear(&s->sign);
		rv = CKR_FUNCTION_FAILED; /* C_Sign after C_SignUpdate */
		goto out;
	}
	if (pSignature && *pulSignatureLen >= kyso_sign_len(tok, &s->sign)) {
		rv = kyso_op_update(&s->sign, pData, ulDataLen);
		if (rv != CKR_OK) {
			kyso_op_clear(&s->sign);
			goto out;
		}
	}
	rv = sign_finish(s, slot, tok, pSignature, pulSignatureLen);
out:
	kyso_unlock();
	return rv;
}

CK_RV C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
		   CK_ULONG ulPartLen)
{
	struct kyso_session *s;
	CK_RV rv;

	return_val_if_fail(pPart != NULL || ulPartLen == 0, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, NULL);
	if (rv != CKR_OK)
		goto out;
	if (s->sign.kind != KYSO_OP_SIGN) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
		goto out;
	}
	rv = kyso_op_update(&s->sign, pPart, ulPartLen);
	if (rv != CKR_OK)
		kyso_op_clear(&s->sign);
out:
	kyso_unlock();
	return rv;
}

CK_RV C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
		  CK_ULONG_PTR pulSignatureLen)
{
	struct kyso_session *s;
	struct kyso_slot *slot;
	struct kyso_token *tok;
	CK_RV rv;

	return_val_if_fail(pulSignatureLen != NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, &slot, &tok);
	if (rv != CKR_OK)
		goto out;
	if (s->sign.kind != KYSO_OP_SIGN) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
		goto out;
	}
	s->sign.multipart = 1;
	rv = sign_finish(s, slot, tok, pSignature, pulSignatureLen);
out:
	kyso_unlock();
	return rv;
}

CK_RV C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		   CK_OBJECT_HANDLE hKey)
{
	struct kyso_session *s;
	struct kyso_token *tok;
	struct kyso_object *o;
	struct kyso_pubkey pub;
	CK_RV rv;

	return_val_if_fail(pMechanism != NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, &tok);
	if (rv != CKR_OK)
		goto out;
	if (s->verify.kind) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	o = kyso_visible_object(tok, hKey);
	if (!o) {
		rv = CKR_KEY_HANDLE_INVALID;
		goto out;
	}
	rv = kyso_object_pubkey(o, &pub);
	if (rv != CKR_OK) {
		rv = CKR_KEY_TYPE_INCONSISTENT;
		goto out;
	}
	rv = kyso_verify_init(&s->verify, pMechanism, &pub);
	kyso_pubkey_clear(&pub);
out:
	kyso_unlock();
	return rv;
}

static CK_RV verify_op(CK_SESSION_HANDLE hSession, const uint8_t *data,
		       size_t datalen, const uint8_t *sig, size_t siglen,
		       int mode /* 0 single, 1 update, 2 final */)
{
	struct kyso_session *s;
	CK_RV rv;

	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, NULL);
	if (rv != CKR_OK)
		goto out;
	if (s->verify.kind != KYSO_OP_VERIFY) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
		goto out;
	}
	if (mode != 2 && datalen) {
		/* Verification keeps the message (hash mechanisms are
		 * checked in one pass at the end). */
		if (kyso_buf_append(&s->verify.data, data, datalen) < 0) {
			rv = CKR_DATA_LEN_RANGE;
			goto done;
		}
	}
	if (mode == 1)
		goto out;
	rv = kyso_verify_final(&s->verify, sig, siglen);
done:
	kyso_op_clear(&s->verify);
out:
	kyso_unlock();
	return rv;
}

CK_RV C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
	       CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
	return_val_if_fail(pData != NULL || ulDataLen == 0, CKR_ARGUMENTS_BAD);
	return_val_if_fail(pSignature != NULL, CKR_ARGUMENTS_BAD);
	return verify_op(hSession, pData, ulDataLen, pSignature, ulSignatureLen,
			 0);
}

CK_RV C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
		     CK_ULONG ulPartLen)
{
	return_val_if_fail(pPart != NULL || ulPartLen == 0, CKR_ARGUMENTS_BAD);
	return verify_op(hSession, pPart, ulPartLen, NULL, 0, 1);
}

CK_RV C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature,
		    CK_ULONG ulSignatureLen)
{
	return_val_if_fail(pSignature != NULL, CKR_ARGUMENTS_BAD);
	return verify_op(hSession, NULL, 0, pSignature, ulSignatureLen, 2);
}

CK_RV C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		    CK_OBJECT_HANDLE hKey)
{
	return key_op_init(hSession, pMechanism, hKey, KYSO_OP_DECRYPT);
}

CK_RV C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData,
		CK_ULONG ulEncryptedDataLen, CK_BYTE_PTR pData,
		CK_ULONG_PTR pulDataLen)
{
	struct kyso_session *s;
	struct kyso_slot *slot;
	struct kyso_token *tok;
	CK_RV rv;

	return_val_if_fail(pEncryptedData != NULL && pulDataLen != NULL,
			   CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, &slot, &tok);
	if (rv != CKR_OK)
		goto out;
	if (s->decrypt.kind != KYSO_OP_DECRYPT) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
		goto out;
	}
	/* The card decrypts once; the result waits here for a buffer big
	 * enough, so a length query never costs a second card operation. */
	if (!s->decrypt.have_result) {
		rv = kyso_decrypt_run(tok, &s->decrypt, pEncryptedData,
				      ulEncryptedDataLen);
		rv = kyso_after_io(slot, rv);
		if (rv != CKR_OK) {
			kyso_op_clear(&s->decrypt);
			goto out;
		}
	}
	if (!pData) {
		*pulDataLen = s->decrypt.result.len;
		goto out;
	}
	if (*pulDataLen < s->decrypt.result.len) {
		*pulDataLen = s->decrypt.result.len;
		rv = CKR_BUFFER_TOO_SMALL;
		goto out;
	}
	if (s->decrypt.result.len)
		memcpy(pData, s->decrypt.result.p, s->decrypt.result.len);
	*pulDataLen = s->decrypt.result.len;
	kyso_op_clear(&s->decrypt);
out:
	kyso_unlock();
	return rv;
}

CK_RV C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
	struct kyso_session *s;
	CK_RV rv;

	return_val_if_fail(pMechanism != NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, NULL);
	if (rv != CKR_OK)
		goto out;
	if (s->digest) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	if (!kyso_digest_size(pMechanism->mechanism)) {
		rv = CKR_MECHANISM_INVALID;
		goto out;
	}
	if (pMechanism->ulParameterLen) {
		rv = CKR_MECHANISM_PARAM_INVALID;
		goto out;
	}
	rv = kyso_digest_new(pMechanism->mechanism, &s->digest);
	if (rv == CKR_OK)
		s->digest_mech = pMechanism->mechanism;
out:
	kyso_unlock();
	return rv;
}

static CK_RV digest_out(struct kyso_session *s, CK_BYTE_PTR out,
			CK_ULONG_PTR outlen)
{
	size_t need = kyso_digest_size(s->digest_mech);
	CK_RV rv;

	if (!out) {
		*outlen = need;
		return CKR_OK;
	}
	if (*outlen < need) {
		*outlen = need;
		return CKR_BUFFER_TOO_SMALL;
	}
	rv = kyso_digest_final(s->digest, out);
	s->digest = NULL;
	if (rv == CKR_OK)
		*outlen = need;
	return rv;
}

CK_RV C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
	       CK_ULONG ulDataLen, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
	struct kyso_session *s;
	CK_RV rv;

	return_val_if_fail(pulDigestLen != NULL, CKR_ARGUMENTS_BAD);
	return_val_if_fail(pData != NULL || ulDataLen == 0, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, NULL);
	if (rv != CKR_OK)
		goto out;
	if (!s->digest) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
		goto out;
	}
	if (pDigest && *pulDigestLen >= kyso_digest_size(s->digest_mech)) {
		rv = kyso_digest_update(s->digest, pData, ulDataLen);
		if (rv != CKR_OK) {
			kyso_digest_free(s->digest);
			s->digest = NULL;
			goto out;
		}
	}
	rv = digest_out(s, pDigest, pulDigestLen);
out:
	kyso_unlock();
	return rv;
}

CK_RV C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
		     CK_ULONG ulPartLen)
{
	struct kyso_session *s;
	CK_RV rv;

	return_val_if_fail(pPart != NULL || ulPartLen == 0, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, NULL);
	if (rv == CKR_OK && !s->digest)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	if (rv == CKR_OK) {
		rv = kyso_digest_update(s->digest, pPart, ulPartLen);
		if (rv != CKR_OK) {
			kyso_digest_free(s->digest);
			s->digest = NULL;
		}
	}
	kyso_unlock();
	return rv;
}

CK_RV C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest,
		    CK_ULONG_PTR pulDigestLen)
{
	struct kyso_session *s;
	CK_RV rv;

	return_val_if_fail(pulDigestLen != NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, NULL);
	if (rv == CKR_OK && !s->digest)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	if (rv == CKR_OK)
		rv = digest_out(s, pDigest, pulDigestLen);
	kyso_unlock();
	return rv;
}

CK_RV C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pRandom,
		       CK_ULONG ulRandomLen)
{
	struct kyso_session *s;
	CK_RV rv;

	return_val_if_fail(pRandom != NULL || ulRandomLen == 0,
			   CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, NULL);
	/* The host's generator (libcrypto), not the card's: CKF_RNG is not
	 * claimed in the token flags. */
	if (rv == CKR_OK)
		rv = kyso_random(pRandom, ulRandomLen);
	kyso_unlock();
	return rv;
}

