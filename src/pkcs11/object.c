/* Objects: search, attributes with the spec's per-attribute semantics,
 * certificate writes and deletes, and on-card key generation. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pkcs11/internal.h"
#include "util/log.h"

struct kyso_object *kyso_visible_object(struct kyso_token *tok,
					CK_OBJECT_HANDLE h)
{
	struct kyso_object *o = kyso_token_object(tok, h);

	if (o && o->priv && tok->login != CKU_USER)
		return NULL;
	return o;
}

static int is_sensitive(const struct kyso_object *o, CK_ATTRIBUTE_TYPE t)
{
	if (o->cls != CKO_PRIVATE_KEY)
		return 0;
	switch (t) {
	case CKA_VALUE:
	case CKA_PRIVATE_EXPONENT:
	case CKA_PRIME_1:
	case CKA_PRIME_2:
	case CKA_EXPONENT_1:
	case CKA_EXPONENT_2:
	case CKA_COEFFICIENT:
		return 1;
	default:
		return 0;
	}
}

static int matches(const struct kyso_object *o, const CK_ATTRIBUTE *tmpl,
		   CK_ULONG n)
{
	CK_ULONG i;

	for (i = 0; i < n; i++) {
		const struct kyso_attr *a = kyso_object_attr(o, tmpl[i].type);

		if (!a || a->len != tmpl[i].ulValueLen)
			return 0;
		if (a->len && (!tmpl[i].pValue ||
			       memcmp(a->val, tmpl[i].pValue, a->len) != 0))
			return 0;
	}
	return 1;
}

CK_RV C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
			CK_ULONG ulCount)
{
	struct kyso_session *s;
	struct kyso_token *tok;
	size_t i;
	CK_RV rv;

	if (!pTemplate && ulCount)
		return CKR_ARGUMENTS_BAD;
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, &tok);
	if (rv != CKR_OK)
		goto out;
	if (s->finding) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	s->found = calloc(tok->nobjs ? tok->nobjs : 1, sizeof(*s->found));
	if (!s->found) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	s->nfound = s->pos = 0;
	for (i = 0; i < tok->nobjs; i++) {
		const struct kyso_object *o = tok->objs[i];

		if (o->priv && tok->login != CKU_USER)
			continue;
		if (matches(o, pTemplate, ulCount))
			s->found[s->nfound++] = o->handle;
	}
	s->finding = 1;
out:
	kyso_unlock();
	return rv;
}

CK_RV C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
		    CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
	struct kyso_session *s;
	CK_ULONG n = 0;
	CK_RV rv;

	return_val_if_fail(pulObjectCount != NULL, CKR_ARGUMENTS_BAD);
	return_val_if_fail(phObject != NULL || ulMaxObjectCount == 0,
			   CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, NULL);
	if (rv != CKR_OK)
		goto out;
	if (!s->finding) {
		rv = CKR_OPERATION_NOT_INITIALIZED;
		goto out;
	}
	while (n < ulMaxObjectCount && s->pos < s->nfound)
		phObject[n++] = s->found[s->pos++];
	*pulObjectCount = n;
out:
	kyso_unlock();
	return rv;
}

CK_RV C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
	struct kyso_session *s;
	CK_RV rv;

	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, NULL);
	if (rv == CKR_OK && !s->finding)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	if (rv == CKR_OK) {
		free(s->found);
		s->found = NULL;
		s->nfound = s->pos = 0;
		s->finding = 0;
	}
	kyso_unlock();
	return rv;
}

CK_RV C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
			  CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	struct kyso_session *s;
	struct kyso_token *tok;
	struct kyso_object *o;
	CK_ULONG i;
	CK_RV rv;

	return_val_if_fail(pTemplate != NULL || ulCount == 0, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, &tok);
	if (rv != CKR_OK)
		goto out;
	o = kyso_visible_object(tok, hObject);
	if (!o) {
		rv = CKR_OBJECT_HANDLE_INVALID;
		goto out;
	}
	/* Every attribute is answered; the return value tells the worst
	 * thing that happened, as the spec allows any of them. */
	for (i = 0; i < ulCount; i++) {
		CK_ATTRIBUTE *t = &pTemplate[i];
		const struct kyso_attr *a;

		if (is_sensitive(o, t->type)) {
			t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_SENSITIVE;
			continue;
		}
		a = kyso_object_attr(o, t->type);
		if (!a) {
			t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
			if (rv != CKR_ATTRIBUTE_SENSITIVE)
				rv = CKR_ATTRIBUTE_TYPE_INVALID;
			continue;
		}
		if (!t->pValue) {
			t->ulValueLen = a->len;
		} else if (t->ulValueLen < a->len) {
			t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
			if (rv == CKR_OK)
				rv = CKR_BUFFER_TOO_SMALL;
		} else {
			if (a->len)
				memcpy(t->pValue, a->val, a->len);
			t->ulValueLen = a->len;
		}
	}
out:
	kyso_unlock();
	return rv;
}

CK_RV C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
		      CK_ULONG_PTR pulSize)
{
	struct kyso_session *s;
	struct kyso_token *tok;
	struct kyso_object *o;
	CK_ULONG size = 0;
	size_t i;
	CK_RV rv;

	return_val_if_fail(pulSize != NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, &tok);
	if (rv != CKR_OK)
		goto out;
	o = kyso_visible_object(tok, hObject);
	if (!o) {
		rv = CKR_OBJECT_HANDLE_INVALID;
		goto out;
	}
	for (i = 0; i < o->nattrs; i++)
		size += o->attrs[i].len;
	*pulSize = size;
out:
	kyso_unlock();
	return rv;
}

CK_RV C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
			  CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	struct kyso_session *s;
	struct kyso_token *tok;
	CK_RV rv;

	return_val_if_fail(pTemplate != NULL || ulCount == 0, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, &tok);
	if (rv == CKR_OK)
		rv = kyso_visible_object(tok, hObject)
			     ? CKR_ACTION_PROHIBITED /* CKA_MODIFIABLE false */
			     : CKR_OBJECT_HANDLE_INVALID;
	kyso_unlock();
	return rv;
}

CK_RV C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
		   CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
		   CK_OBJECT_HANDLE_PTR phNewObject)
{
	struct kyso_session *s;
	struct kyso_token *tok;
	CK_RV rv;

	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, &tok);
	if (rv == CKR_OK)
		rv = kyso_visible_object(tok, hObject)
			     ? CKR_ACTION_PROHIBITED /* CKA_COPYABLE false */
			     : CKR_OBJECT_HANDLE_INVALID;
	kyso_unlock();
	return rv;
}

/* A template attribute, or NULL. */
static const CK_ATTRIBUTE *tattr(const CK_ATTRIBUTE *t, CK_ULONG n,
				 CK_ATTRIBUTE_TYPE type)
{
	CK_ULONG i;

	for (i = 0; i < n; i++)
		if (t[i].type == type)
			return &t[i];
	return NULL;
}

static int tbool(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type,
		 int def)
{
	const CK_ATTRIBUTE *a = tattr(t, n, type);

	if (!a || a->ulValueLen != sizeof(CK_BBOOL) || !a->pValue)
		return def;
	return *(CK_BBOOL *)a->pValue != CK_FALSE;
}

static int tulong(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type,
		  CK_ULONG *v)
{
	const CK_ATTRIBUTE *a = tattr(t, n, type);

	if (!a || a->ulValueLen != sizeof(CK_ULONG) || !a->pValue)
		return 0;
	*v = *(CK_ULONG *)a->pValue;
	return 1;
}

static CK_RV check_template(const CK_ATTRIBUTE *t, CK_ULONG n)
{
	CK_ULONG i;

	if (n && !t)
		return CKR_ARGUMENTS_BAD;
	for (i = 0; i < n; i++)
		if (t[i].ulValueLen && !t[i].pValue)
			return CKR_ATTRIBUTE_VALUE_INVALID;
	return CKR_OK;
}

/* The handle of the first object of a class with this CKA_ID. */
static CK_OBJECT_HANDLE handle_by_id(struct kyso_token *tok,
				     CK_OBJECT_CLASS cls, const uint8_t *id,
				     size_t idlen)
{
	size_t i;

	for (i = 0; i < tok->nobjs; i++) {
		const struct kyso_object *o = tok->objs[i];
		const struct kyso_attr *a = kyso_object_attr(o, CKA_ID);

		if (o->cls == cls && a && a->len == idlen &&
		    (!idlen || memcmp(a->val, id, idlen) == 0))
			return o->handle;
	}
	return CK_INVALID_HANDLE;
}

CK_RV C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
		     CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject)
{
	struct kyso_session *s;
	struct kyso_slot *slot;
	struct kyso_token *tok;
	const CK_ATTRIBUTE *val, *id, *label;
	struct kyso_key *k;
	CK_ULONG cls, ctype = CKC_X_509;
	char lab[64];
	uint32_t ref = 0;
	CK_RV rv;

	return_val_if_fail(phObject != NULL, CKR_ARGUMENTS_BAD);
	rv = check_template(pTemplate, ulCount);
	if (rv != CKR_OK)
		return rv;
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, &slot, &tok);
	if (rv != CKR_OK)
		goto out;
	if (!tulong(pTemplate, ulCount, CKA_CLASS, &cls)) {
		rv = CKR_TEMPLATE_INCOMPLETE;
		goto out;
	}
	tulong(pTemplate, ulCount, CKA_CERTIFICATE_TYPE, &ctype);
	if (cls != CKO_CERTIFICATE || ctype != CKC_X_509 || !tok->can_write ||
	    !tok->drv->write_cert) {
		/* Keys are made on the card, never imported; no data objects. */
		rv = CKR_TEMPLATE_INCONSISTENT;
		goto out;
	}
	if (!tbool(pTemplate, ulCount, CKA_TOKEN, 0)) {
		rv = CKR_TEMPLATE_INCONSISTENT; /* no session objects */
		goto out;
	}
	if (tbool(pTemplate, ulCount, CKA_PRIVATE, 0)) {
		rv = CKR_ATTRIBUTE_VALUE_INVALID;
		goto out;
	}
	if (!(s->flags & CKF_RW_SESSION)) {
		rv = CKR_SESSION_READ_ONLY;
		goto out;
	}
	val = tattr(pTemplate, ulCount, CKA_VALUE);
	id = tattr(pTemplate, ulCount, CKA_ID);
	label = tattr(pTemplate, ulCount, CKA_LABEL);
	if (!val || !val->ulValueLen || !id || !id->ulValueLen) {
		rv = CKR_TEMPLATE_INCOMPLETE;
		goto out;
	}
	if (id->ulValueLen > KYSO_MAX_ID) {
		rv = CKR_ATTRIBUTE_VALUE_INVALID;
		goto out;
	}
	{
		/* Refuse what is not a certificate before writing it. */
		struct kyso_cert_info ci;

		if (kyso_cert_parse(val->pValue, val->ulValueLen, &ci) !=
		    CKR_OK) {
			rv = CKR_ATTRIBUTE_VALUE_INVALID;
			goto out;
		}
		kyso_cert_info_clear(&ci);
	}
	/* A certificate next to a key shares its label (NSS pairs them). */
	k = kyso_token_key_by_id(tok, id->pValue, id->ulValueLen);
	if (k)
		snprintf(lab, sizeof(lab), "%s", k->label);
	else if (label && label->ulValueLen < sizeof(lab))
		snprintf(lab, sizeof(lab), "%.*s", (int)label->ulValueLen,
			 (const char *)label->pValue);
	else
		snprintf(lab, sizeof(lab), "Certificate");
	rv = kyso_token_begin(tok);
	if (rv == CKR_OK) {
		rv = tok->drv->write_cert(tok->card, tok, id->pValue,
					  id->ulValueLen, val->pValue,
					  val->ulValueLen, &ref);
		kyso_token_end(tok);
	}
	rv = kyso_after_io(slot, rv);
	if (rv != CKR_OK)
		goto out;
	rv = kyso_token_add_cert(tok, id->pValue, id->ulValueLen, lab,
				 val->pValue, val->ulValueLen, ref);
	if (rv == CKR_OK)
		*phObject = handle_by_id(tok, CKO_CERTIFICATE, id->pValue,
					 id->ulValueLen);
out:
	kyso_unlock();
	return rv;
}

CK_RV C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
	struct kyso_session *s;
	struct kyso_slot *slot;
	struct kyso_token *tok;
	struct kyso_object *o;
	CK_RV rv;

	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, &slot, &tok);
	if (rv != CKR_OK)
		goto out;
	o = kyso_visible_object(tok, hObject);
	if (!o) {
		rv = CKR_OBJECT_HANDLE_INVALID;
		goto out;
	}
	if (o->cls != CKO_CERTIFICATE || !tok->drv->delete_object) {
		rv = CKR_ACTION_PROHIBITED;
		goto out;
	}
	if (!(s->flags & CKF_RW_SESSION)) {
		rv = CKR_SESSION_READ_ONLY;
		goto out;
	}
	rv = kyso_token_begin(tok);
	if (rv == CKR_OK) {
		rv = tok->drv->delete_object(tok->card, tok, o);
		kyso_token_end(tok);
	}
	rv = kyso_after_io(slot, rv);
	if (rv == CKR_OK)
		kyso_token_remove_object(tok, hObject);
out:
	kyso_unlock();
	return rv;
}

CK_RV kyso_object_pubkey(const struct kyso_object *o, struct kyso_pubkey *pub)
{
	const struct kyso_attr *kt = kyso_object_attr(o, CKA_KEY_TYPE);
	const struct kyso_attr *a, *b;
	CK_KEY_TYPE type;

	memset(pub, 0, sizeof(*pub));
	if (o->cls != CKO_PUBLIC_KEY || !kt || kt->len != sizeof(CK_ULONG))
		return CKR_KEY_HANDLE_INVALID;
	memcpy(&type, kt->val, sizeof(type));
	if (type == CKK_RSA) {
		a = kyso_object_attr(o, CKA_MODULUS);
		b = kyso_object_attr(o, CKA_PUBLIC_EXPONENT);
		if (!a || !b)
			return CKR_KEY_HANDLE_INVALID;
		return kyso_pubkey_rsa(pub, a->val, a->len, b->val, b->len);
	}
	if (type == CKK_EC) {
		const uint8_t *pt;
		size_t ptlen, h;

		a = kyso_object_attr(o, CKA_EC_PARAMS);
		b = kyso_object_attr(o, CKA_EC_POINT);
		if (!a || !b || b->len < 3)
			return CKR_KEY_HANDLE_INVALID;
		/* CKA_EC_POINT is a DER OCTET STRING (we build it so). */
		pt = b->val;
		h = pt[1] == 0x81 ? 3 : 2;
		if (b->len < h)
			return CKR_KEY_HANDLE_INVALID;
		ptlen = b->len - h;
		return kyso_pubkey_ec(pub, kyso_ec_params_bits(a->val, a->len),
				      pt + h, ptlen);
	}
	return CKR_KEY_TYPE_INCONSISTENT;
}

CK_RV C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			CK_ATTRIBUTE_PTR pPubTemplate, CK_ULONG ulPubCount,
			CK_ATTRIBUTE_PTR pPrivTemplate, CK_ULONG ulPrivCount,
			CK_OBJECT_HANDLE_PTR phPublicKey,
			CK_OBJECT_HANDLE_PTR phPrivateKey)
{
	struct kyso_session *s;
	struct kyso_slot *slot;
	struct kyso_token *tok;
	struct kyso_keygen req;
	struct kyso_pubkey pub;
	const CK_ATTRIBUTE *a;
	CK_ULONG bits = 0;
	CK_RV rv;

	return_val_if_fail(pMechanism && phPublicKey && phPrivateKey,
			   CKR_ARGUMENTS_BAD);
	rv = check_template(pPubTemplate, ulPubCount);
	if (rv == CKR_OK)
		rv = check_template(pPrivTemplate, ulPrivCount);
	if (rv != CKR_OK)
		return rv;
	memset(&req, 0, sizeof(req));
	memset(&pub, 0, sizeof(pub));
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, &slot, &tok);
	if (rv != CKR_OK)
		goto out;
	if (!tok->can_generate || !tok->drv->generate) {
		rv = CKR_FUNCTION_NOT_SUPPORTED;
		goto out;
	}
	if (pMechanism->mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN && tok->rsa_max) {
		static const uint8_t f4[] = {0x01, 0x00, 0x01};

		req.type = CKK_RSA;
		if (!tulong(pPubTemplate, ulPubCount, CKA_MODULUS_BITS, &bits)) {
			rv = CKR_TEMPLATE_INCOMPLETE;
			goto out;
		}
		if (bits < tok->rsa_min || bits > tok->rsa_max) {
			rv = CKR_KEY_SIZE_RANGE;
			goto out;
		}
		a = tattr(pPubTemplate, ulPubCount, CKA_PUBLIC_EXPONENT);
		if (a) {
			/* Cards make e = 65537 only; accept it with any
			 * leading zeros. */
			const uint8_t *e = a->pValue;
			CK_ULONG n = a->ulValueLen;

			while (n > 3 && *e == 0) {
				e++;
				n--;
			}
			if (n != 3 || memcmp(e, f4, 3) != 0) {
				rv = CKR_ATTRIBUTE_VALUE_INVALID;
				goto out;
			}
		}
	} else if (pMechanism->mechanism == CKM_EC_KEY_PAIR_GEN &&
		   tok->ec_max) {
		req.type = CKK_EC;
		a = tattr(pPubTemplate, ulPubCount, CKA_EC_PARAMS);
		if (!a)
			a = tattr(pPrivTemplate, ulPrivCount, CKA_EC_PARAMS);
		if (!a) {
			rv = CKR_TEMPLATE_INCOMPLETE;
			goto out;
		}
		bits = kyso_ec_params_bits(a->pValue, a->ulValueLen);
		if (!bits || bits < tok->ec_min || bits > tok->ec_max) {
			rv = CKR_CURVE_NOT_SUPPORTED;
			goto out;
		}
	} else {
		rv = CKR_MECHANISM_INVALID;
		goto out;
	}
	if (pMechanism->ulParameterLen) {
		rv = CKR_MECHANISM_PARAM_INVALID;
		goto out;
	}
	if (!tbool(pPrivTemplate, ulPrivCount, CKA_TOKEN, 1) ||
	    !tbool(pPubTemplate, ulPubCount, CKA_TOKEN, 1) ||
	    tbool(pPrivTemplate, ulPrivCount, CKA_EXTRACTABLE, 0) ||
	    !tbool(pPrivTemplate, ulPrivCount, CKA_SENSITIVE, 1)) {
		rv = CKR_TEMPLATE_INCONSISTENT;
		goto out;
	}
	if (!(s->flags & CKF_RW_SESSION)) {
		rv = CKR_SESSION_READ_ONLY;
		goto out;
	}
	req.bits = bits;
	a = tattr(pPrivTemplate, ulPrivCount, CKA_ID);
	if (!a)
		a = tattr(pPubTemplate, ulPubCount, CKA_ID);
	if (a && a->ulValueLen > KYSO_MAX_ID) {
		rv = CKR_ATTRIBUTE_VALUE_INVALID;
		goto out;
	}
	if (a && a->ulValueLen) {
		memcpy(req.id, a->pValue, a->ulValueLen);
		req.idlen = a->ulValueLen;
	}
	a = tattr(pPrivTemplate, ulPrivCount, CKA_LABEL);
	if (!a)
		a = tattr(pPubTemplate, ulPubCount, CKA_LABEL);
	if (a && a->ulValueLen < sizeof(req.label))
		memcpy(req.label, a->pValue, a->ulValueLen);

	rv = kyso_token_begin(tok);
	if (rv == CKR_OK) {
		rv = tok->drv->generate(tok->card, tok, &req, &pub);
		kyso_token_end(tok);
	}
	rv = kyso_after_io(slot, rv);
	if (rv != CKR_OK)
		goto out;
	if (!kyso_token_key_by_id(tok, req.id, req.idlen)) {
		/* A driver that did not add the key: plain defaults. */
		struct kyso_key k;

		memset(&k, 0, sizeof(k));
		k.type = req.type;
		k.bits = pub.bits ? pub.bits : req.bits;
		k.ref = req.ref;
		k.can_sign = 1;
		k.can_decrypt = req.type == CKK_RSA;
		memcpy(k.id, req.id, req.idlen);
		k.idlen = req.idlen;
		snprintf(k.label, sizeof(k.label), "%s", req.label);
		k.pub = pub;
		rv = kyso_token_add_key(tok, &k, NULL);
		if (rv != CKR_OK)
			goto out;
	}
	*phPrivateKey = handle_by_id(tok, CKO_PRIVATE_KEY, req.id, req.idlen);
	*phPublicKey = handle_by_id(tok, CKO_PUBLIC_KEY, req.id, req.idlen);
	if (*phPrivateKey == CK_INVALID_HANDLE ||
	    *phPublicKey == CK_INVALID_HANDLE)
		rv = CKR_GENERAL_ERROR;
out:
	kyso_pubkey_clear(&pub);
	kyso_unlock();
	return rv;
}
