/* PKCS#15 parsing (ISO/IEC 7816-15, PKCS #15 v1.1): the ASN.1 of EF.DIR,
 * ODF, TokenInfo and the directory files, read with the bounded reader of
 * iso7816/asn1.c. Tagging follows the module's rules: the [0]/[1] around
 * subclass and type attributes, ODF entries and direct values are explicit
 * (they wrap open types or choices), the [0] of pinReference and of a
 * TokenInfo label are implicit. */
#include "drivers/pkcs15.h"

#include <string.h>

const uint8_t kyso_p15_aid[12] = {0xA0, 0x00, 0x00, 0x00, 0x63, 0x50,
				  0x4B, 0x43, 0x53, 0x2D, 0x31, 0x35};

/* --- helpers ------------------------------------------------------------ */

/* Copies a string value for display: at most cap-1 bytes, cut at a UTF-8
 * character boundary, control characters replaced. */
static void copy_label(const struct kyso_asn1 *t, char *out, size_t cap)
{
	size_t n = t->len < cap - 1 ? t->len : cap - 1, i;

	if (n < t->len)
		while (n > 0 && (t->val[n] & 0xC0) == 0x80)
			n--;
	for (i = 0; i < n; i++) {
		uint8_t ch = t->val[i];

		out[i] = (char)(ch < 0x20 || ch == 0x7F ? '?' : ch);
	}
	out[n] = '\0';
}

static int copy_id(const struct kyso_asn1 *t, uint8_t *out, size_t *outlen)
{
	if (t->len > KYSO_P15_ID_MAX)
		return -1;
	memcpy(out, t->val, t->len);
	*outlen = t->len;
	return 0;
}

/* Path ::= SEQUENCE { path OCTET STRING, index INTEGER OPTIONAL,
 *                     length [0] INTEGER OPTIONAL } */
static int parse_path(const struct kyso_asn1 *seq, struct kyso_p15_path *p)
{
	struct kyso_cur c = kyso_asn1_inner(seq);
	struct kyso_asn1 t;
	int r;

	memset(p, 0, sizeof(*p));
	if (seq->tag != KYSO_ASN1_SEQUENCE)
		return -1;
	if (kyso_asn1_get(&c, KYSO_ASN1_OCTET_STRING, &t) < 0)
		return -1;
	if (t.len == 0 || t.len % 2 || t.len > KYSO_P15_PATH_MAX)
		return -1;
	memcpy(p->v, t.val, t.len);
	p->len = t.len;
	r = kyso_asn1_opt(&c, KYSO_ASN1_INTEGER, &t);
	if (r < 0)
		return -1;
	if (r == 1) {
		if (kyso_asn1_uint(&t, &p->index) < 0)
			return -1;
		if (kyso_asn1_get(&c, KYSO_ASN1_CTX(0), &t) < 0 ||
		    kyso_asn1_uint(&t, &p->count) < 0)
			return -1;
		p->has_range = 1;
	}
	return 0; /* later extensions (aid) are ignored */
}

int kyso_p15_path_join(const struct kyso_p15_path *app,
		       const struct kyso_p15_path *p, struct kyso_p15_path *out)
{
	struct kyso_p15_path r = *p;

	if (p->len % 2 || (app != NULL && app->len % 2))
		return -1;
	if (!(p->len >= 2 && p->v[0] == 0x3F && p->v[1] == 0x00) &&
	    app != NULL) {
		if (app->len + p->len > KYSO_P15_PATH_MAX)
			return -1;
		memcpy(r.v, app->v, app->len);
		memcpy(r.v + app->len, p->v, p->len);
		r.len = app->len + p->len;
	}
	*out = r;
	return 0;
}

/* CommonObjectAttributes ::= SEQUENCE { label UTF8String OPTIONAL,
 *   flags BIT STRING OPTIONAL, authId OCTET STRING OPTIONAL, ... } */
static int parse_common(const struct kyso_asn1 *seq, struct kyso_p15_common *co)
{
	struct kyso_cur c = kyso_asn1_inner(seq);
	struct kyso_asn1 t;
	int r;

	memset(co, 0, sizeof(*co));
	if (seq->tag != KYSO_ASN1_SEQUENCE)
		return -1;
	r = kyso_asn1_opt(&c, KYSO_ASN1_UTF8STRING, &t);
	if (r < 0)
		return -1;
	if (r == 1)
		copy_label(&t, co->label, sizeof(co->label));
	r = kyso_asn1_opt(&c, KYSO_ASN1_BIT_STRING, &t);
	if (r < 0 || (r == 1 && kyso_asn1_bits(&t, &co->flags) < 0))
		return -1;
	r = kyso_asn1_opt(&c, KYSO_ASN1_OCTET_STRING, &t);
	if (r < 0 || (r == 1 && copy_id(&t, co->auth_id, &co->auth_idlen) < 0))
		return -1;
	return 0;
}

/* The four parts of a PKCS15Object: common attributes, class attributes,
 * optional [0] subclass attributes, [1] type attributes (whose single
 * element is returned in *type). */
static int object_parts(const struct kyso_asn1 *obj, struct kyso_asn1 *common,
			struct kyso_asn1 *cls, struct kyso_asn1 *type)
{
	struct kyso_cur c = kyso_asn1_inner(obj), tc;
	struct kyso_asn1 t, sub;
	int r;

	if (!obj->constructed)
		return -1;
	if (kyso_asn1_get(&c, KYSO_ASN1_SEQUENCE, common) < 0 ||
	    kyso_asn1_get(&c, KYSO_ASN1_SEQUENCE, cls) < 0)
		return -1;
	r = kyso_asn1_opt(&c, KYSO_ASN1_CTX_CONS(0), &sub);
	if (r < 0)
		return -1;
	if (kyso_asn1_get(&c, KYSO_ASN1_CTX_CONS(1), &t) < 0)
		return -1;
	tc = kyso_asn1_inner(&t);
	if (kyso_asn1_next(&tc, type) != 1)
		return -1;
	return 0;
}

/* ObjectValue: a Path (indirect), or [0] { value } (direct). */
static int object_value(const struct kyso_asn1 *v, struct kyso_p15_path *path,
			const uint8_t **direct, size_t *directlen)
{
	struct kyso_cur c;
	struct kyso_asn1 inner;

	memset(path, 0, sizeof(*path));
	*direct = NULL;
	*directlen = 0;
	if (v->tag == KYSO_ASN1_SEQUENCE)
		return parse_path(v, path);
	if (v->tag == KYSO_ASN1_CTX_CONS(0)) {
		c = kyso_asn1_inner(v);
		if (kyso_asn1_next(&c, &inner) != 1 || c.len != 0)
			return -1;
		*direct = inner.raw;
		*directlen = inner.rawlen;
		return 0;
	}
	return -1; /* URL, protected values: not handled */
}

/* --- EF.DIR ------------------------------------------------------------ */

int kyso_p15_dir_entry(const uint8_t *p, size_t len, struct kyso_p15_app *app)
{
	struct kyso_cur c = kyso_cur_make(p, len), ic;
	struct kyso_asn1 t, e;
	int r, have_aid = 0;

	memset(app, 0, sizeof(*app));
	if (kyso_asn1_get(&c, KYSO_ASN1_APP(0x21), &t) < 0 ||
	    !kyso_asn1_at_padding(&c))
		return -1;
	ic = kyso_asn1_inner(&t);
	while ((r = kyso_asn1_next(&ic, &e)) == 1) {
		switch (e.tag) {
		case 0x4F:
			if (e.len == 0 || e.len > sizeof(app->aid) || have_aid)
				return -1;
			memcpy(app->aid, e.val, e.len);
			app->aidlen = e.len;
			have_aid = 1;
			break;
		case 0x50:
			copy_label(&e, app->label, sizeof(app->label));
			break;
		case 0x51:
			if (e.len == 0 || e.len % 2 ||
			    e.len > KYSO_P15_PATH_MAX)
				return -1;
			memcpy(app->path.v, e.val, e.len);
			app->path.len = e.len;
			break;
		default:
			break;
		}
	}
	return r < 0 || !have_aid ? -1 : 0;
}

/* --- ODF --------------------------------------------------------------- */

int kyso_p15_odf(const uint8_t *p, size_t len, struct kyso_p15_odf *odf)
{
	struct kyso_cur c = kyso_cur_make(p, len), ic;
	struct kyso_asn1 t, pt;
	struct kyso_p15_path path;
	unsigned kind;

	memset(odf, 0, sizeof(*odf));
	while (c.len > 0 && !kyso_asn1_at_padding(&c)) {
		if (kyso_asn1_next(&c, &t) != 1)
			return -1;
		if ((t.tag & 0xE0) != 0xA0 || t.tag > 0xBE)
			return -1;
		kind = t.tag & 0x1F;
		ic = kyso_asn1_inner(&t);
		if (kyso_asn1_next(&ic, &pt) != 1)
			return -1;
		if (kind >= KYSO_P15_NDF)
			continue;
		if (pt.tag != KYSO_ASN1_SEQUENCE)
			continue; /* objects given in place: not used */
		if (parse_path(&pt, &path) < 0)
			return -1;
		if (odf->n[kind] < KYSO_P15_ODF_MAX)
			odf->df[kind][odf->n[kind]++] = path;
	}
	return 0;
}

/* --- TokenInfo --------------------------------------------------------- */

/* TokenInfo ::= SEQUENCE { version INTEGER, serialNumber OCTET STRING,
 *   manufacturerID UTF8String OPTIONAL, label [0] Label OPTIONAL,
 *   tokenflags BIT STRING, ... } */
int kyso_p15_tokeninfo(const uint8_t *p, size_t len,
		       struct kyso_p15_tokeninfo *ti)
{
	struct kyso_cur c = kyso_cur_make(p, len), ic;
	struct kyso_asn1 seq, t;
	int r;

	memset(ti, 0, sizeof(*ti));
	if (kyso_asn1_get(&c, KYSO_ASN1_SEQUENCE, &seq) < 0 ||
	    !kyso_asn1_at_padding(&c))
		return -1;
	ic = kyso_asn1_inner(&seq);
	if (kyso_asn1_get(&ic, KYSO_ASN1_INTEGER, &t) < 0 ||
	    kyso_asn1_uint(&t, &ti->version) < 0)
		return -1;
	if (kyso_asn1_get(&ic, KYSO_ASN1_OCTET_STRING, &t) < 0 ||
	    t.len > sizeof(ti->serial))
		return -1;
	memcpy(ti->serial, t.val, t.len);
	ti->seriallen = t.len;
	r = kyso_asn1_opt(&ic, KYSO_ASN1_UTF8STRING, &t);
	if (r < 0)
		return -1;
	if (r == 1)
		copy_label(&t, ti->manufacturer, sizeof(ti->manufacturer));
	r = kyso_asn1_opt(&ic, KYSO_ASN1_CTX(0), &t);
	if (r < 0)
		return -1;
	if (r == 1)
		copy_label(&t, ti->label, sizeof(ti->label));
	/* Some writers put the label as a plain UTF8String after the
	 * manufacturer; take it when no [0] label came. */
	if (r == 0 && ti->label[0] == '\0') {
		r = kyso_asn1_opt(&ic, KYSO_ASN1_UTF8STRING, &t);
		if (r < 0)
			return -1;
		if (r == 1)
			copy_label(&t, ti->label, sizeof(ti->label));
	}
	if (kyso_asn1_get(&ic, KYSO_ASN1_BIT_STRING, &t) < 0 ||
	    kyso_asn1_bits(&t, &ti->flags) < 0)
		return -1;
	return 0;
}

/* --- directory files ----------------------------------------------------- */

int kyso_p15_next(struct kyso_cur *c, struct kyso_asn1 *obj)
{
	if (c->len == 0 || kyso_asn1_at_padding(c))
		return 0;
	return kyso_asn1_next(c, obj) == 1 ? 1 : -1;
}

/* PinAttributes ::= SEQUENCE { pinFlags, pinType ENUMERATED, minLength,
 *   storedLength, maxLength OPTIONAL, pinReference [0] DEFAULT 0,
 *   padChar OCTET STRING OPTIONAL, lastPinChange OPTIONAL, path OPTIONAL } */
int kyso_p15_pin(const struct kyso_asn1 *obj, struct kyso_p15_pin *pin)
{
	struct kyso_asn1 common, cls, type, t;
	struct kyso_cur c;
	int r;

	memset(pin, 0, sizeof(*pin));
	pin->pad_char = -1;
	if (obj->tag != KYSO_ASN1_SEQUENCE)
		return obj->constructed ? KYSO_P15_OTHER : KYSO_P15_BAD;
	if (object_parts(obj, &common, &cls, &type) < 0 ||
	    parse_common(&common, &pin->c) < 0)
		return KYSO_P15_BAD;
	/* CommonAuthenticationObjectAttributes ::= SEQUENCE { authId, ... } */
	c = kyso_asn1_inner(&cls);
	if (kyso_asn1_get(&c, KYSO_ASN1_OCTET_STRING, &t) < 0 ||
	    copy_id(&t, pin->auth_id, &pin->auth_idlen) < 0)
		return KYSO_P15_BAD;
	if (type.tag != KYSO_ASN1_SEQUENCE)
		return KYSO_P15_BAD;
	c = kyso_asn1_inner(&type);
	if (kyso_asn1_get(&c, KYSO_ASN1_BIT_STRING, &t) < 0 ||
	    kyso_asn1_bits(&t, &pin->flags) < 0)
		return KYSO_P15_BAD;
	if (kyso_asn1_get(&c, KYSO_ASN1_ENUMERATED, &t) < 0 ||
	    kyso_asn1_uint(&t, &pin->type) < 0)
		return KYSO_P15_BAD;
	if (kyso_asn1_get(&c, KYSO_ASN1_INTEGER, &t) < 0 ||
	    kyso_asn1_uint(&t, &pin->min_len) < 0)
		return KYSO_P15_BAD;
	if (kyso_asn1_get(&c, KYSO_ASN1_INTEGER, &t) < 0 ||
	    kyso_asn1_uint(&t, &pin->stored_len) < 0)
		return KYSO_P15_BAD;
	r = kyso_asn1_opt(&c, KYSO_ASN1_INTEGER, &t);
	if (r < 0 || (r == 1 && kyso_asn1_uint(&t, &pin->max_len) < 0))
		return KYSO_P15_BAD;
	r = kyso_asn1_opt(&c, KYSO_ASN1_CTX(0), &t);
	if (r < 0 || (r == 1 && kyso_asn1_uint(&t, &pin->reference) < 0))
		return KYSO_P15_BAD;
	r = kyso_asn1_opt(&c, KYSO_ASN1_OCTET_STRING, &t);
	if (r < 0 || (r == 1 && t.len != 1))
		return KYSO_P15_BAD;
	if (r == 1)
		pin->pad_char = t.val[0];
	r = kyso_asn1_opt(&c, KYSO_ASN1_GENTIME, &t);
	if (r < 0)
		return KYSO_P15_BAD;
	r = kyso_asn1_opt(&c, KYSO_ASN1_SEQUENCE, &t);
	if (r < 0 || (r == 1 && parse_path(&t, &pin->path) < 0))
		return KYSO_P15_BAD;
	return KYSO_P15_OK;
}

/* CommonKeyAttributes ::= SEQUENCE { iD, usage, native BOOLEAN DEFAULT
 *   TRUE, accessFlags OPTIONAL, keyReference INTEGER OPTIONAL, ... } */
static int parse_key_common(const struct kyso_asn1 *cls,
			    struct kyso_p15_key *key)
{
	struct kyso_cur c = kyso_asn1_inner(cls);
	struct kyso_asn1 t;
	int r;

	if (kyso_asn1_get(&c, KYSO_ASN1_OCTET_STRING, &t) < 0 ||
	    copy_id(&t, key->id, &key->idlen) < 0)
		return -1;
	if (kyso_asn1_get(&c, KYSO_ASN1_BIT_STRING, &t) < 0 ||
	    kyso_asn1_bits(&t, &key->usage) < 0)
		return -1;
	key->native = 1;
	r = kyso_asn1_opt(&c, KYSO_ASN1_BOOLEAN, &t);
	if (r < 0 || (r == 1 && kyso_asn1_bool(&t, &key->native) < 0))
		return -1;
	r = kyso_asn1_opt(&c, KYSO_ASN1_BIT_STRING, &t);
	if (r < 0 || (r == 1 && kyso_asn1_bits(&t, &key->access) < 0))
		return -1;
	r = kyso_asn1_opt(&c, KYSO_ASN1_INTEGER, &t);
	if (r < 0 || (r == 1 && kyso_asn1_uint(&t, &key->ref) < 0))
		return -1;
	key->has_ref = r == 1;
	return 0;
}

/* The type attributes of a key: SEQUENCE { value ObjectValue, then the
 * size as the first INTEGER, if any (modulusLength for RSA; OpenSC puts a
 * field size there for EC), then whatever follows }. */
static int parse_key_type(const struct kyso_asn1 *type,
			  struct kyso_p15_key *key)
{
	struct kyso_cur c;
	struct kyso_asn1 v, t;
	int r;

	if (type->tag != KYSO_ASN1_SEQUENCE)
		return -1;
	c = kyso_asn1_inner(type);
	if (kyso_asn1_next(&c, &v) != 1 ||
	    object_value(&v, &key->path, &key->direct, &key->directlen) < 0)
		return -1;
	r = kyso_asn1_opt(&c, KYSO_ASN1_INTEGER, &t);
	if (r < 0 || (r == 1 && kyso_asn1_uint(&t, &key->bits) < 0))
		return -1;
	return 0;
}

static int parse_key(const struct kyso_asn1 *obj, struct kyso_p15_key *key,
		     int private)
{
	struct kyso_asn1 common, cls, type;

	memset(key, 0, sizeof(*key));
	if (obj->tag == KYSO_ASN1_SEQUENCE)
		key->type = KYSO_P15_KEY_RSA;
	else if (obj->tag == KYSO_ASN1_CTX_CONS(0))
		key->type = KYSO_P15_KEY_EC;
	else
		return obj->constructed ? KYSO_P15_OTHER : KYSO_P15_BAD;
	if (object_parts(obj, &common, &cls, &type) < 0 ||
	    parse_common(&common, &key->c) < 0 ||
	    parse_key_common(&cls, key) < 0 || parse_key_type(&type, key) < 0)
		return KYSO_P15_BAD;
	/* A private key on the card is reached through its path or its key
	 * reference, never a value kept in the directory. */
	if (private && key->direct != NULL)
		return KYSO_P15_OTHER;
	return KYSO_P15_OK;
}

int kyso_p15_prkey(const struct kyso_asn1 *obj, struct kyso_p15_key *key)
{
	return parse_key(obj, key, 1);
}

int kyso_p15_pubkey(const struct kyso_asn1 *obj, struct kyso_p15_key *key)
{
	return parse_key(obj, key, 0);
}

/* CommonCertificateAttributes ::= SEQUENCE { iD, authority BOOLEAN
 *   DEFAULT FALSE, ... }; X509CertificateAttributes ::= SEQUENCE {
 *   value ObjectValue, subject, issuer, serialNumber OPTIONAL } */
int kyso_p15_cert(const struct kyso_asn1 *obj, struct kyso_p15_cert *cert)
{
	struct kyso_asn1 common, cls, type, t, v;
	struct kyso_cur c;
	int r;

	memset(cert, 0, sizeof(*cert));
	if (obj->tag != KYSO_ASN1_SEQUENCE)
		return obj->constructed ? KYSO_P15_OTHER : KYSO_P15_BAD;
	if (object_parts(obj, &common, &cls, &type) < 0 ||
	    parse_common(&common, &cert->c) < 0)
		return KYSO_P15_BAD;
	c = kyso_asn1_inner(&cls);
	if (kyso_asn1_get(&c, KYSO_ASN1_OCTET_STRING, &t) < 0 ||
	    copy_id(&t, cert->id, &cert->idlen) < 0)
		return KYSO_P15_BAD;
	r = kyso_asn1_opt(&c, KYSO_ASN1_BOOLEAN, &t);
	if (r < 0 || (r == 1 && kyso_asn1_bool(&t, &cert->authority) < 0))
		return KYSO_P15_BAD;
	if (type.tag != KYSO_ASN1_SEQUENCE)
		return KYSO_P15_BAD;
	c = kyso_asn1_inner(&type);
	if (kyso_asn1_next(&c, &v) != 1 ||
	    object_value(&v, &cert->path, &cert->direct, &cert->directlen) < 0)
		return KYSO_P15_BAD;
	return KYSO_P15_OK;
}

/* --- public key values ---------------------------------------------------- */

static const uint8_t oid_rsa[] = {0x2A, 0x86, 0x48, 0x86, 0xF7,
				  0x0D, 0x01, 0x01, 0x01};
static const uint8_t oid_ec[] = {0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01};

/* RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } */
static CK_RV rsa_public(const struct kyso_asn1 *seq, struct kyso_pubkey *pub)
{
	struct kyso_cur c = kyso_asn1_inner(seq);
	struct kyso_asn1 n, e;

	if (kyso_asn1_get(&c, KYSO_ASN1_INTEGER, &n) < 0 ||
	    kyso_asn1_get(&c, KYSO_ASN1_INTEGER, &e) < 0 || c.len != 0 ||
	    n.len == 0 || e.len == 0 || (n.val[0] & 0x80) || (e.val[0] & 0x80))
		return CKR_DEVICE_ERROR;
	return kyso_pubkey_rsa(pub, n.val, n.len, e.val, e.len);
}

/* The contents of a SubjectPublicKeyInfo: AlgorithmIdentifier, BIT STRING */
static CK_RV spki_body(struct kyso_cur c, struct kyso_pubkey *pub)
{
	struct kyso_asn1 alg, oid, params, bits, inner;
	struct kyso_cur ac, bc;
	CK_ULONG cbits;
	CK_RV rv;

	if (kyso_asn1_get(&c, KYSO_ASN1_SEQUENCE, &alg) < 0 ||
	    kyso_asn1_get(&c, KYSO_ASN1_BIT_STRING, &bits) < 0 || c.len != 0)
		return CKR_DEVICE_ERROR;
	if (bits.len < 2 || bits.val[0] != 0)
		return CKR_DEVICE_ERROR;
	ac = kyso_asn1_inner(&alg);
	if (kyso_asn1_get(&ac, KYSO_ASN1_OID, &oid) < 0)
		return CKR_DEVICE_ERROR;
	if (oid.len == sizeof(oid_rsa) &&
	    memcmp(oid.val, oid_rsa, sizeof(oid_rsa)) == 0) {
		bc = kyso_cur_make(bits.val + 1, bits.len - 1);
		if (kyso_asn1_get(&bc, KYSO_ASN1_SEQUENCE, &inner) < 0 ||
		    bc.len != 0)
			return CKR_DEVICE_ERROR;
		return rsa_public(&inner, pub);
	}
	if (oid.len == sizeof(oid_ec) &&
	    memcmp(oid.val, oid_ec, sizeof(oid_ec)) == 0) {
		if (kyso_asn1_get(&ac, KYSO_ASN1_OID, &params) < 0)
			return CKR_DEVICE_ERROR; /* named curves only */
		cbits = kyso_ec_params_bits(params.raw, params.rawlen);
		if (cbits == 0)
			return CKR_DEVICE_ERROR;
		rv = kyso_pubkey_ec(pub, cbits, bits.val + 1, bits.len - 1);
		return rv == CKR_OK || rv == CKR_HOST_MEMORY ? rv
							     : CKR_DEVICE_ERROR;
	}
	return CKR_DEVICE_ERROR;
}

CK_RV kyso_p15_decode_pubkey(const uint8_t *p, size_t len,
			     struct kyso_pubkey *pub)
{
	struct kyso_cur c = kyso_cur_make(p, len), ic;
	struct kyso_asn1 t, first;

	if (p == NULL || pub == NULL)
		return CKR_ARGUMENTS_BAD;
	if (kyso_asn1_next(&c, &t) != 1 || !kyso_asn1_at_padding(&c))
		return CKR_DEVICE_ERROR;
	if (t.tag == KYSO_ASN1_CTX_CONS(1))
		return spki_body(kyso_asn1_inner(&t), pub);
	if (t.tag != KYSO_ASN1_SEQUENCE)
		return CKR_DEVICE_ERROR;
	ic = kyso_asn1_inner(&t);
	if (kyso_asn1_next(&ic, &first) != 1)
		return CKR_DEVICE_ERROR;
	if (first.tag == KYSO_ASN1_INTEGER)
		return rsa_public(&t, pub);
	return spki_body(kyso_asn1_inner(&t), pub);
}

/* --- encoders ------------------------------------------------------------ */

/* A DER element: tag, length, value, appended. */
static int put(struct kyso_buf *b, uint32_t tag, const void *v, size_t len)
{
	uint8_t h[8];
	size_t n = 0;

	if (tag > 0xFF)
		h[n++] = (uint8_t)(tag >> 8);
	h[n++] = (uint8_t)tag;
	if (len < 0x80) {
		h[n++] = (uint8_t)len;
	} else if (len < 0x100) {
		h[n++] = 0x81;
		h[n++] = (uint8_t)len;
	} else if (len < 0x10000) {
		h[n++] = 0x82;
		h[n++] = (uint8_t)(len >> 8);
		h[n++] = (uint8_t)len;
	} else {
		return -1;
	}
	if (kyso_buf_append(b, h, n) < 0)
		return -1;
	return len ? kyso_buf_append(b, v, len) : 0;
}

/* Wraps what was appended to b since start as one element. */
static int wrap(struct kyso_buf *b, size_t start, uint32_t tag)
{
	struct kyso_buf tmp = KYSO_BUF_INIT;
	int r;

	tmp.max = b->max;
	if (kyso_buf_append(&tmp, b->p + start, b->len - start) < 0)
		return -1;
	b->len = start;
	r = put(b, tag, tmp.p, tmp.len);
	kyso_buf_free(&tmp);
	return r;
}

static int put_uint(struct kyso_buf *b, uint32_t tag, uint32_t v)
{
	uint8_t d[5];
	size_t n = 0;
	int i, started = 0;

	for (i = 3; i >= 0; i--) {
		uint8_t byte = (uint8_t)(v >> (8 * i));

		if (!started && byte == 0 && i > 0)
			continue;
		if (!started && (byte & 0x80))
			d[n++] = 0x00;
		started = 1;
		d[n++] = byte;
	}
	return put(b, tag, d, n);
}

/* Named bits as a DER BIT STRING (trailing zero bits dropped). */
static int put_bits(struct kyso_buf *b, uint32_t bits)
{
	uint8_t d[5] = {0};
	int top = -1, i;
	size_t nbytes;

	for (i = 0; i < 32; i++)
		if (bits & ((uint32_t)1 << i)) {
			d[1 + i / 8] |= (uint8_t)(0x80 >> (i % 8));
			top = i;
		}
	if (top < 0)
		return put(b, KYSO_ASN1_BIT_STRING, d, 1);
	nbytes = (size_t)top / 8 + 1;
	d[0] = (uint8_t)(7 - top % 8);
	return put(b, KYSO_ASN1_BIT_STRING, d, 1 + nbytes);
}

static int put_path(struct kyso_buf *b, const struct kyso_p15_path *p)
{
	size_t start = b->len;

	if (put(b, KYSO_ASN1_OCTET_STRING, p->v, p->len) < 0)
		return -1;
	if (p->has_range && (put_uint(b, KYSO_ASN1_INTEGER, p->index) < 0 ||
			     put_uint(b, KYSO_ASN1_CTX(0), p->count) < 0))
		return -1;
	return wrap(b, start, KYSO_ASN1_SEQUENCE);
}

static int put_common(struct kyso_buf *b, const struct kyso_p15_common *co)
{
	size_t start = b->len;

	if (put(b, KYSO_ASN1_UTF8STRING, co->label, strlen(co->label)) < 0 ||
	    put_bits(b, co->flags) < 0)
		return -1;
	if (co->auth_idlen &&
	    put(b, KYSO_ASN1_OCTET_STRING, co->auth_id, co->auth_idlen) < 0)
		return -1;
	return wrap(b, start, KYSO_ASN1_SEQUENCE);
}

static int put_key_common(struct kyso_buf *b, const struct kyso_p15_key *k)
{
	size_t start = b->len;
	uint8_t f = 0;

	if (put(b, KYSO_ASN1_OCTET_STRING, k->id, k->idlen) < 0 ||
	    put_bits(b, k->usage) < 0)
		return -1;
	if (!k->native && put(b, KYSO_ASN1_BOOLEAN, &f, 1) < 0)
		return -1;
	if (k->access && put_bits(b, k->access) < 0)
		return -1;
	if (k->has_ref && put_uint(b, KYSO_ASN1_INTEGER, k->ref) < 0)
		return -1;
	return wrap(b, start, KYSO_ASN1_SEQUENCE);
}

int kyso_p15_encode_prkey(const struct kyso_p15_key *key, struct kyso_buf *out)
{
	size_t start = out->len, t;

	if (key->path.len == 0)
		return -1;
	if (put_common(out, &key->c) < 0 || put_key_common(out, key) < 0)
		return -1;
	t = out->len;
	if (put_path(out, &key->path) < 0 ||
	    (key->bits && put_uint(out, KYSO_ASN1_INTEGER, key->bits) < 0) ||
	    wrap(out, t, KYSO_ASN1_SEQUENCE) < 0 ||
	    wrap(out, t, KYSO_ASN1_CTX_CONS(1)) < 0)
		return -1;
	return wrap(out, start,
		    key->type == KYSO_P15_KEY_EC ? KYSO_ASN1_CTX_CONS(0)
						 : KYSO_ASN1_SEQUENCE);
}

int kyso_p15_encode_pubkey(const struct kyso_p15_key *key, struct kyso_buf *out)
{
	size_t start = out->len, t, v;

	if (key->path.len == 0 && (key->direct == NULL || key->directlen == 0))
		return -1;
	if (put_common(out, &key->c) < 0 || put_key_common(out, key) < 0)
		return -1;
	t = out->len;
	v = out->len;
	if (key->path.len > 0) {
		if (put_path(out, &key->path) < 0)
			return -1;
	} else if (kyso_buf_append(out, key->direct, key->directlen) < 0 ||
		   wrap(out, v, KYSO_ASN1_CTX_CONS(0)) < 0) {
		return -1;
	}
	if ((key->bits && put_uint(out, KYSO_ASN1_INTEGER, key->bits) < 0) ||
	    wrap(out, t, KYSO_ASN1_SEQUENCE) < 0 ||
	    wrap(out, t, KYSO_ASN1_CTX_CONS(1)) < 0)
		return -1;
	return wrap(out, start,
		    key->type == KYSO_P15_KEY_EC ? KYSO_ASN1_CTX_CONS(0)
						 : KYSO_ASN1_SEQUENCE);
}

int kyso_p15_encode_cert(const struct kyso_p15_cert *cert, struct kyso_buf *out)
{
	size_t start = out->len, t;

	if (cert->path.len == 0)
		return -1;
	if (put_common(out, &cert->c) < 0)
		return -1;
	t = out->len;
	if (put(out, KYSO_ASN1_OCTET_STRING, cert->id, cert->idlen) < 0 ||
	    wrap(out, t, KYSO_ASN1_SEQUENCE) < 0)
		return -1;
	t = out->len;
	if (put_path(out, &cert->path) < 0 ||
	    wrap(out, t, KYSO_ASN1_SEQUENCE) < 0 ||
	    wrap(out, t, KYSO_ASN1_CTX_CONS(1)) < 0)
		return -1;
	return wrap(out, start, KYSO_ASN1_SEQUENCE);
}
