/* The token model: binding a card to a driver, the object store drivers fill
 * through kyso_token_add_*, and PIN state kept from the card's answers. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "token/token.h"
#include "util/buf.h"
#include "util/log.h"

/* Object handles are unique for the module's lifetime, so a handle from a
 * pulled card never names an object of the next one. Guarded by the module
 * lock like every token. */
static CK_OBJECT_HANDLE next_handle = 1;

static const CK_BBOOL ck_true = CK_TRUE, ck_false = CK_FALSE;

/* --- attribute lists ---------------------------------------------------- */

struct attrs {
	struct kyso_attr *v;
	size_t n;
	int oom;
};

static void attrs_add(struct attrs *a, CK_ATTRIBUTE_TYPE type,
		      const void *val, size_t len)
{
	struct kyso_attr *nv;

	if (a->oom)
		return;
	nv = realloc(a->v, (a->n + 1) * sizeof(*nv));
	if (!nv)
		goto oom;
	a->v = nv;
	nv[a->n].type = type;
	nv[a->n].len = len;
	nv[a->n].val = NULL;
	if (len) {
		nv[a->n].val = malloc(len);
		if (!nv[a->n].val)
			goto oom;
		memcpy(nv[a->n].val, val, len);
	}
	a->n++;
	return;
oom:
	a->oom = 1;
}

static void attrs_bool(struct attrs *a, CK_ATTRIBUTE_TYPE t, int v)
{
	attrs_add(a, t, v ? &ck_true : &ck_false, sizeof(CK_BBOOL));
}

static void attrs_ulong(struct attrs *a, CK_ATTRIBUTE_TYPE t, CK_ULONG v)
{
	attrs_add(a, t, &v, sizeof(v));
}

static void attrs_free(struct kyso_attr *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i].val);
	free(v);
}

const struct kyso_attr *kyso_object_attr(const struct kyso_object *o,
					 CK_ATTRIBUTE_TYPE type)
{
	size_t i;

	for (i = 0; i < o->nattrs; i++)
		if (o->attrs[i].type == type)
			return &o->attrs[i];
	return NULL;
}

static void object_free(struct kyso_object *o)
{
	if (!o)
		return;
	attrs_free(o->attrs, o->nattrs);
	free(o);
}

static CK_RV object_set(struct kyso_object *o, struct attrs *a)
{
	if (a->oom) {
		attrs_free(a->v, a->n);
		return CKR_HOST_MEMORY;
	}
	attrs_free(o->attrs, o->nattrs);
	o->attrs = a->v;
	o->nattrs = a->n;
	return CKR_OK;
}

static CK_RV token_push(struct kyso_token *tok, struct kyso_object *o)
{
	struct kyso_object **nv =
		realloc(tok->objs, (tok->nobjs + 1) * sizeof(*nv));

	if (!nv)
		return CKR_HOST_MEMORY;
	tok->objs = nv;
	o->handle = next_handle++;
	nv[tok->nobjs++] = o;
	return CKR_OK;
}

struct kyso_object *kyso_token_object(struct kyso_token *tok,
				      CK_OBJECT_HANDLE h)
{
	size_t i;

	for (i = 0; i < tok->nobjs; i++)
		if (tok->objs[i]->handle == h)
			return tok->objs[i];
	return NULL;
}

void kyso_token_remove_object(struct kyso_token *tok, CK_OBJECT_HANDLE h)
{
	size_t i;

	for (i = 0; i < tok->nobjs; i++) {
		if (tok->objs[i]->handle != h)
			continue;
		object_free(tok->objs[i]);
		memmove(&tok->objs[i], &tok->objs[i + 1],
			(tok->nobjs - i - 1) * sizeof(tok->objs[0]));
		tok->nobjs--;
		return;
	}
}

/* The object of a class with this CKA_ID, or NULL. */
static struct kyso_object *find_by_id(struct kyso_token *tok,
				      CK_OBJECT_CLASS cls, const uint8_t *id,
				      size_t idlen)
{
	size_t i;

	for (i = 0; i < tok->nobjs; i++) {
		struct kyso_object *o = tok->objs[i];
		const struct kyso_attr *a = kyso_object_attr(o, CKA_ID);

		if (o->cls == cls && a && a->len == idlen &&
		    (idlen == 0 || memcmp(a->val, id, idlen) == 0))
			return o;
	}
	return NULL;
}

struct kyso_key *kyso_token_key_by_id(struct kyso_token *tok,
				      const uint8_t *id, size_t idlen)
{
	size_t i;

	for (i = 0; i < tok->nkeys; i++)
		if (tok->keys[i].idlen == idlen &&
		    memcmp(tok->keys[i].id, id, idlen) == 0)
			return &tok->keys[i];
	return NULL;
}

/* --- object builders ----------------------------------------------------- */

static void add_common(struct attrs *a, CK_OBJECT_CLASS cls, int priv,
		       const uint8_t *id, size_t idlen, const char *label)
{
	attrs_ulong(a, CKA_CLASS, cls);
	attrs_bool(a, CKA_TOKEN, 1);
	attrs_bool(a, CKA_PRIVATE, priv);
	attrs_bool(a, CKA_MODIFIABLE, 0);
	attrs_bool(a, CKA_COPYABLE, 0);
	attrs_bool(a, CKA_DESTROYABLE, cls == CKO_CERTIFICATE);
	attrs_add(a, CKA_LABEL, label, strlen(label));
	attrs_add(a, CKA_ID, id, idlen);
}

/* EC point as PKCS#11 wants it: DER OCTET STRING around the raw point. */
static void add_ec_point(struct attrs *a, const struct kyso_pubkey *pub)
{
	uint8_t der[4 + 200];
	size_t h = 0;

	if (pub->pointlen > 200)
		return;
	der[h++] = 0x04;
	if (pub->pointlen >= 128)
		der[h++] = 0x81;
	der[h++] = (uint8_t)pub->pointlen;
	memcpy(der + h, pub->point, pub->pointlen);
	attrs_add(a, CKA_EC_POINT, der, h + pub->pointlen);
}

static void add_key_common(struct attrs *a, CK_KEY_TYPE type,
			   const struct kyso_pubkey *pub,
			   const struct kyso_cert_info *ci, int local)
{
	CK_DATE empty;

	memset(&empty, 0, sizeof(empty));
	attrs_ulong(a, CKA_KEY_TYPE, type);
	attrs_add(a, CKA_SUBJECT, ci ? ci->subject : NULL,
		  ci ? ci->subjectlen : 0);
	attrs_add(a, CKA_START_DATE, NULL, 0);
	attrs_add(a, CKA_END_DATE, NULL, 0);
	attrs_bool(a, CKA_DERIVE, 0);
	attrs_bool(a, CKA_LOCAL, local);
	attrs_ulong(a, CKA_KEY_GEN_MECHANISM,
		    local ? (type == CKK_RSA ? CKM_RSA_PKCS_KEY_PAIR_GEN
					     : CKM_EC_KEY_PAIR_GEN)
			  : CK_UNAVAILABLE_INFORMATION);
	if (pub && pub->type == CKK_RSA) {
		attrs_add(a, CKA_MODULUS, pub->n, pub->nlen);
		attrs_add(a, CKA_PUBLIC_EXPONENT, pub->e, pub->elen);
	} else if (pub && pub->type == CKK_EC) {
		attrs_add(a, CKA_EC_PARAMS, pub->params, pub->paramslen);
	}
	if (pub && kyso_pubkey_present(pub)) {
		uint8_t *spki = NULL;
		size_t spkilen = 0;

		if (kyso_pubkey_spki(pub, &spki, &spkilen) == CKR_OK) {
			attrs_add(a, CKA_PUBLIC_KEY_INFO, spki, spkilen);
			free(spki);
		}
	}
}

static CK_RV build_public(struct kyso_object *o, const uint8_t *id,
			  size_t idlen, const char *label,
			  const struct kyso_pubkey *pub,
			  const struct kyso_cert_info *ci, int local)
{
	struct attrs a = {0};
	int rsa = pub->type == CKK_RSA;

	add_common(&a, CKO_PUBLIC_KEY, 0, id, idlen, label);
	add_key_common(&a, pub->type, pub, ci, local);
	attrs_bool(&a, CKA_ENCRYPT, rsa);
	attrs_bool(&a, CKA_VERIFY, 1);
	attrs_bool(&a, CKA_VERIFY_RECOVER, 0);
	attrs_bool(&a, CKA_WRAP, 0);
	attrs_bool(&a, CKA_TRUSTED, 0);
	if (rsa)
		attrs_ulong(&a, CKA_MODULUS_BITS, pub->bits);
	else
		add_ec_point(&a, pub);
	o->cls = CKO_PUBLIC_KEY;
	return object_set(o, &a);
}

static CK_RV build_private(struct kyso_object *o, const struct kyso_key *k,
			   const struct kyso_cert_info *ci)
{
	struct attrs a = {0};
	const struct kyso_pubkey *pub =
		kyso_pubkey_present(&k->pub) ? &k->pub : NULL;

	add_common(&a, CKO_PRIVATE_KEY, !k->no_pin, k->id, k->idlen,
		   k->label);
	add_key_common(&a, k->type, pub, ci, 0);
	attrs_bool(&a, CKA_SENSITIVE, 1);
	attrs_bool(&a, CKA_ALWAYS_SENSITIVE, 1);
	attrs_bool(&a, CKA_EXTRACTABLE, 0);
	attrs_bool(&a, CKA_NEVER_EXTRACTABLE, 1);
	attrs_bool(&a, CKA_DECRYPT, k->can_decrypt);
	attrs_bool(&a, CKA_SIGN, k->can_sign);
	attrs_bool(&a, CKA_SIGN_RECOVER, 0);
	attrs_bool(&a, CKA_UNWRAP, 0);
	attrs_bool(&a, CKA_WRAP_WITH_TRUSTED, 0);
	attrs_bool(&a, CKA_ALWAYS_AUTHENTICATE, k->always_auth);
	if (k->type == CKK_RSA && !pub)
		attrs_ulong(&a, CKA_MODULUS_BITS, k->bits);
	o->cls = CKO_PRIVATE_KEY;
	return object_set(o, &a);
}

/* The certificate info of the certificate with this id, parsed anew; the
 * caller clears it. Returns 0 when there is none. */
static int cert_info_for(struct kyso_token *tok, const uint8_t *id,
			 size_t idlen, struct kyso_cert_info *ci)
{
	struct kyso_object *c = find_by_id(tok, CKO_CERTIFICATE, id, idlen);
	const struct kyso_attr *v = c ? kyso_object_attr(c, CKA_VALUE) : NULL;

	memset(ci, 0, sizeof(*ci));
	if (!v)
		return 0;
	return kyso_cert_parse(v->val, v->len, ci) == CKR_OK;
}

/* Brings the private and public key objects of key k in line with what is
 * known (its own public key, or its certificate's). */
static CK_RV sync_key(struct kyso_token *tok, size_t idx)
{
	struct kyso_key *k = &tok->keys[idx];
	struct kyso_cert_info ci;
	int have_cert = cert_info_for(tok, k->id, k->idlen, &ci);
	struct kyso_object *priv = NULL, *pubo;
	size_t i;
	CK_RV rv;

	if (!kyso_pubkey_present(&k->pub) && have_cert &&
	    kyso_pubkey_present(&ci.pub) && ci.pub.type == k->type) {
		rv = kyso_pubkey_copy(&k->pub, &ci.pub);
		if (rv != CKR_OK)
			goto out;
		k->bits = k->pub.bits;
	}
	for (i = 0; i < tok->nobjs; i++)
		if (tok->objs[i]->key == (int)idx &&
		    tok->objs[i]->cls == CKO_PRIVATE_KEY)
			priv = tok->objs[i];
	if (!priv) {
		priv = calloc(1, sizeof(*priv));
		if (!priv) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		priv->key = (int)idx;
		rv = token_push(tok, priv);
		if (rv != CKR_OK) {
			free(priv);
			goto out;
		}
	}
	priv->priv = !k->no_pin;
	priv->drv_ref = k->ref;
	rv = build_private(priv, k, have_cert ? &ci : NULL);
	if (rv != CKR_OK || !kyso_pubkey_present(&k->pub))
		goto out;
	pubo = find_by_id(tok, CKO_PUBLIC_KEY, k->id, k->idlen);
	if (!pubo) {
		pubo = calloc(1, sizeof(*pubo));
		if (!pubo) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		pubo->key = -1;
		rv = token_push(tok, pubo);
		if (rv != CKR_OK) {
			free(pubo);
			goto out;
		}
	}
	pubo->drv_ref = k->ref;
	rv = build_public(pubo, k->id, k->idlen, k->label, &k->pub,
			  have_cert ? &ci : NULL, 0);
out:
	kyso_cert_info_clear(&ci);
	return rv;
}

CK_RV kyso_token_add_key(struct kyso_token *tok, const struct kyso_key *key,
			 size_t *idx)
{
	struct kyso_key *nk;
	struct kyso_key *old = kyso_token_key_by_id(tok, key->id, key->idlen);
	size_t i;
	CK_RV rv;

	if (key->idlen > KYSO_MAX_ID)
		return CKR_ARGUMENTS_BAD;
	if (old) {
		/* A new key in the same container replaces the old one. */
		i = (size_t)(old - tok->keys);
		kyso_pubkey_clear(&old->pub);
		*old = *key;
		memset(&old->pub, 0, sizeof(old->pub));
	} else {
		nk = realloc(tok->keys, (tok->nkeys + 1) * sizeof(*nk));
		if (!nk)
			return CKR_HOST_MEMORY;
		tok->keys = nk;
		i = tok->nkeys++;
		nk[i] = *key;
		memset(&nk[i].pub, 0, sizeof(nk[i].pub));
	}
	if (kyso_pubkey_present(&key->pub)) {
		rv = kyso_pubkey_copy(&tok->keys[i].pub, &key->pub);
		if (rv != CKR_OK)
			return rv;
	}
	if (idx)
		*idx = i;
	return sync_key(tok, i);
}

CK_RV kyso_token_add_cert(struct kyso_token *tok, const uint8_t *id,
			  size_t idlen, const char *label, const uint8_t *der,
			  size_t len, uint32_t drv_ref)
{
	struct kyso_cert_info ci;
	struct kyso_object *o, *pubo;
	struct attrs a = {0};
	struct kyso_key *k;
	CK_RV rv;

	if (idlen > KYSO_MAX_ID)
		return CKR_ARGUMENTS_BAD;
	rv = kyso_cert_parse(der, len, &ci);
	if (rv != CKR_OK)
		return rv;
	add_common(&a, CKO_CERTIFICATE, 0, id, idlen, label);
	attrs_ulong(&a, CKA_CERTIFICATE_TYPE, CKC_X_509);
	attrs_ulong(&a, CKA_CERTIFICATE_CATEGORY, 0);
	attrs_bool(&a, CKA_TRUSTED, 0);
	attrs_add(&a, CKA_SUBJECT, ci.subject, ci.subjectlen);
	attrs_add(&a, CKA_ISSUER, ci.issuer, ci.issuerlen);
	attrs_add(&a, CKA_SERIAL_NUMBER, ci.serial, ci.seriallen);
	attrs_add(&a, CKA_VALUE, der, len);
	attrs_add(&a, CKA_START_DATE, NULL, 0);
	attrs_add(&a, CKA_END_DATE, NULL, 0);
	attrs_add(&a, CKA_URL, NULL, 0);
	attrs_ulong(&a, CKA_JAVA_MIDP_SECURITY_DOMAIN, 0);
	if (kyso_pubkey_present(&ci.pub)) {
		uint8_t *spki = NULL;
		size_t spkilen = 0;

		if (kyso_pubkey_spki(&ci.pub, &spki, &spkilen) == CKR_OK) {
			attrs_add(&a, CKA_PUBLIC_KEY_INFO, spki, spkilen);
			free(spki);
		}
	}

	o = find_by_id(tok, CKO_CERTIFICATE, id, idlen);
	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o) {
			attrs_free(a.v, a.n);
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		o->key = -1;
		rv = token_push(tok, o);
		if (rv != CKR_OK) {
			free(o);
			attrs_free(a.v, a.n);
			goto out;
		}
	}
	o->cls = CKO_CERTIFICATE;
	o->drv_ref = drv_ref;
	rv = object_set(o, &a);
	if (rv != CKR_OK)
		goto out;

	k = kyso_token_key_by_id(tok, id, idlen);
	if (k) {
		rv = sync_key(tok, (size_t)(k - tok->keys));
	} else if (kyso_pubkey_present(&ci.pub)) {
		/* A certificate without a known private key still has a
		 * public key object, as consumers expect. */
		pubo = find_by_id(tok, CKO_PUBLIC_KEY, id, idlen);
		if (!pubo) {
			pubo = calloc(1, sizeof(*pubo));
			if (!pubo) {
				rv = CKR_HOST_MEMORY;
				goto out;
			}
			pubo->key = -1;
			rv = token_push(tok, pubo);
			if (rv != CKR_OK) {
				free(pubo);
				goto out;
			}
		}
		pubo->drv_ref = drv_ref;
		rv = build_public(pubo, id, idlen, label, &ci.pub, &ci, 0);
	}
out:
	kyso_cert_info_clear(&ci);
	return rv;
}

/* --- binding --------------------------------------------------------- */

void kyso_token_free(struct kyso_token *tok)
{
	size_t i;

	if (!tok)
		return;
	if (tok->drv && tok->drv->unbind && tok->card)
		tok->drv->unbind(tok->card);
	for (i = 0; i < tok->nobjs; i++)
		object_free(tok->objs[i]);
	free(tok->objs);
	for (i = 0; i < tok->nkeys; i++)
		kyso_pubkey_clear(&tok->keys[i].pub);
	free(tok->keys);
	if (tok->card)
		kyso_card_free(tok->card);
	free(tok);
}

CK_RV kyso_token_bind(struct kyso_card *card, struct kyso_token **out)
{
	struct kyso_token *tok;
	size_t i;
	CK_RV rv;

	*out = NULL;
	tok = calloc(1, sizeof(*tok));
	if (!tok)
		return CKR_HOST_MEMORY;
	tok->user_tries = tok->user_max = tok->so_tries = tok->so_max = -1;
	tok->login = KYSO_NOBODY;
	rv = kyso_card_begin(card);
	if (rv != CKR_OK) {
		free(tok);
		return rv;
	}
	card->reset_seen = 0;
	rv = CKR_TOKEN_NOT_RECOGNIZED;
	for (i = 0; kyso_drivers[i]; i++) {
		const struct kyso_driver *d = kyso_drivers[i];

		if (!d->match(card))
			continue;
		card->driver = d;
		tok->drv = d;
		tok->card = card;
		rv = d->bind(card, tok);
		kyso_dbg("token: driver %s bound: rv 0x%lx", d->name,
			 (unsigned long)rv);
		break;
	}
	kyso_card_end(card);
	if (rv != CKR_OK) {
		tok->card = NULL; /* the caller keeps the card on failure */
		if (tok->drv && tok->drv->unbind)
			tok->drv->unbind(card);
		tok->drv = NULL;
		card->driver = NULL;
		kyso_token_free(tok);
		return rv;
	}
	*out = tok;
	return CKR_OK;
}

CK_RV kyso_token_begin(struct kyso_token *tok)
{
	CK_RV rv = kyso_card_begin(tok->card);

	if (rv != CKR_OK)
		return rv;
	if (tok->card->reset_seen) {
		/* Reset by someone else: the card forgot our login and
		 * selection. Select again; the application logs in again. */
		tok->card->reset_seen = 0;
		tok->login = KYSO_NOBODY;
		tok->ctx_login = 0;
		if (tok->drv->select) {
			rv = tok->drv->select(tok->card);
			if (rv != CKR_OK) {
				kyso_card_end(tok->card);
				return rv;
			}
		}
	}
	return CKR_OK;
}

CK_RV kyso_token_begin_pin(struct kyso_token *tok)
{
	CK_RV rv = kyso_token_begin(tok);

	if (rv != CKR_OK || !tok->drv->select)
		return rv;
	rv = tok->drv->select(tok->card);
	if (rv != CKR_OK)
		kyso_card_end(tok->card);
	return rv;
}

int kyso_token_lost_app(struct kyso_token *tok, CK_RV rv)
{
	if (rv != CKR_FUNCTION_NOT_SUPPORTED && rv != CKR_OBJECT_HANDLE_INVALID)
		return 0;
	if (!tok->drv->select || tok->drv->select(tok->card) != CKR_OK)
		return 0;
	kyso_dbg("token: application was deselected by someone; selected");
	/* A new selection drops the card's security status. */
	tok->login = KYSO_NOBODY;
	tok->ctx_login = 0;
	return 1;
}

void kyso_token_end(struct kyso_token *tok)
{
	kyso_card_end(tok->card);
}

void kyso_token_note_tries(struct kyso_token *tok, CK_USER_TYPE who,
			   int tries_left, CK_RV rv)
{
	int so = who == CKU_SO;
	CK_FLAGS low = so ? CKF_SO_PIN_COUNT_LOW : CKF_USER_PIN_COUNT_LOW;
	CK_FLAGS fin = so ? CKF_SO_PIN_FINAL_TRY : CKF_USER_PIN_FINAL_TRY;
	CK_FLAGS lck = so ? CKF_SO_PIN_LOCKED : CKF_USER_PIN_LOCKED;
	int *tries = so ? &tok->so_tries : &tok->user_tries;
	int *max = so ? &tok->so_max : &tok->user_max;

	if (rv == CKR_PIN_LOCKED)
		tries_left = 0;
	if (tries_left < 0) {
		if (rv == CKR_OK)
			tok->flags &= ~(low | fin | lck);
		return;
	}
	*tries = tries_left;
	if (rv == CKR_OK && tries_left > *max)
		*max = tries_left; /* a success shows the full count */
	tok->flags &= ~(low | fin | lck);
	if (tries_left == 0)
		tok->flags |= lck;
	else if (tries_left == 1)
		tok->flags |= fin | low;
	else if (rv == CKR_PIN_INCORRECT || (*max > 0 && tries_left < *max))
		tok->flags |= low;
}
