/* Mechanisms composed once for every driver over its raw operations:
 * hash-then-sign, PKCS#1 v1.5 and PSS padding, ECDSA input fitting, and
 * decryption unpadding; plus the mechanism list and info per token. */
#ifndef KYSO_TOKEN_MECH_H
#define KYSO_TOKEN_MECH_H

#include "token/token.h"
#include "util/buf.h"

/* Mechanisms the token offers; n in/out per the PKCS#11 two-call protocol. */
CK_RV kyso_mech_list(const struct kyso_token *tok, CK_MECHANISM_TYPE *out,
		     CK_ULONG *n);
CK_RV kyso_mech_info(const struct kyso_token *tok, CK_MECHANISM_TYPE m,
		     CK_MECHANISM_INFO *info);

enum kyso_op_kind { KYSO_OP_SIGN = 1, KYSO_OP_DECRYPT, KYSO_OP_VERIFY };

/* One sign, verify or decrypt operation of a session. */
struct kyso_op {
	enum kyso_op_kind kind; /* 0: none active */
	CK_MECHANISM_TYPE mech;
	CK_MECHANISM_TYPE hash;		/* hash-then-sign, or 0 */
	CK_RSA_PKCS_PSS_PARAMS pss;	/* for PSS mechanisms */
	CK_RSA_PKCS_OAEP_PARAMS oaep;	/* source data not kept */
	size_t key;			/* index into tok->keys (sign, decrypt) */
	struct kyso_pubkey pub;		/* verify */
	struct kyso_digest *dg;		/* hash-then-sign running hash */
	struct kyso_buf data;		/* collected input (raw mechanisms) */
	struct kyso_buf result;		/* decrypted data kept for a re-call */
	int multipart;			/* Update was used */
	int have_result;
};

void kyso_op_clear(struct kyso_op *op);

/* Init checks mechanism, parameters and key; op is cleared on failure. */
CK_RV kyso_sign_init(struct kyso_token *tok, struct kyso_op *op,
		     const CK_MECHANISM *m, size_t key);
CK_RV kyso_op_update(struct kyso_op *op, const uint8_t *p, size_t n);
/* Signature size for this operation. */
size_t kyso_sign_len(const struct kyso_token *tok, const struct kyso_op *op);
/* Finishes the signature (card I/O inside a transaction). */
CK_RV kyso_sign_final(struct kyso_token *tok, struct kyso_op *op,
		      uint8_t *sig, size_t *siglen);

CK_RV kyso_verify_init(struct kyso_op *op, const CK_MECHANISM *m,
		       const struct kyso_pubkey *pub);
CK_RV kyso_verify_final(struct kyso_op *op, const uint8_t *sig, size_t len);

CK_RV kyso_decrypt_init(struct kyso_token *tok, struct kyso_op *op,
			const CK_MECHANISM *m, size_t key);
/* Decrypts once (card I/O) and keeps the result until it fits out. */
CK_RV kyso_decrypt_run(struct kyso_token *tok, struct kyso_op *op,
		       const uint8_t *in, size_t inlen);

/* Whether a key may serve a mechanism of this kind. */
int kyso_mech_key_ok(CK_MECHANISM_TYPE m, enum kyso_op_kind kind,
		     CK_KEY_TYPE kt);

#endif
