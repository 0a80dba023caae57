/* The CLI's side of PKCS#11: loads the kyso module, chooses the token, finds
 * keys and certificates by CKA_ID or label, and turns return values into
 * plain messages and exit codes. Nothing here talks to PC/SC. */
#include "tool/kyso.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509v3.h>

#include "kyso/vendor.h"

CK_FUNCTION_LIST_PTR kx_p11;
static void *dl;
static int initialized;
static KYSO_VENDOR_FUNCTION_LIST *vendor;

const char *kx_module_path(void)
{
	const char *m = kx_opt.module;

	if (!m || !*m)
		m = getenv("KYSO_MODULE");
	if (!m || !*m)
		m = KYSO_DEFAULT_MODULE;
	return m;
}

/* The module's vendor interface, when it has one (vendor.h). */
static void find_vendor(void)
{
	CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(dl, "C_GetInterface");
	CK_INTERFACE_PTR iface = NULL;
	KYSO_VENDOR_FUNCTION_LIST *v;

	vendor = NULL;
	if (!gi ||
	    gi((CK_UTF8CHAR_PTR)KYSO_VENDOR_INTERFACE, NULL, &iface, 0) !=
		CKR_OK ||
	    !iface || !iface->pFunctionList)
		return;
	v = iface->pFunctionList;
	if (v->version.major == 1 && v->C_KysoGetPinTries)
		vendor = v;
}

int kx_pin_tries(struct kx_token *t, CK_USER_TYPE who)
{
	CK_ULONG left = CK_UNAVAILABLE_INFORMATION;

	if (!vendor ||
	    vendor->C_KysoGetPinTries(t->slot, who, &left) != CKR_OK ||
	    left == CK_UNAVAILABLE_INFORMATION || left > 1000)
		return -1;
	return (int)left;
}

int kx_p11_load(void)
{
	CK_C_GetFunctionList get;
	CK_C_INITIALIZE_ARGS args;
	const char *path = kx_module_path();
	CK_RV rv;

	if (kx_p11)
		return KX_OK;
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl)
		return kx_fail(KX_MODULE,
			       _("cannot load the PKCS#11 module %s: %s"), path,
			       dlerror());
	get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	if (!get || get(&kx_p11) != CKR_OK || !kx_p11) {
		kx_p11 = NULL;
		dlclose(dl);
		dl = NULL;
		return kx_fail(KX_MODULE, _("%s is not a PKCS#11 module"),
			       path);
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = kx_p11->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		kx_p11 = NULL;
		dlclose(dl);
		dl = NULL;
		return kx_fail(KX_MODULE,
			       _("the PKCS#11 module %s did not start: %s"),
			       path, kx_rv_text(rv));
	}
	initialized = 1;
	find_vendor();
	return KX_OK;
}

void kx_p11_unload(void)
{
	if (kx_p11 && initialized)
		kx_p11->C_Finalize(NULL);
	initialized = 0;
	kx_p11 = NULL;
	vendor = NULL;
	if (dl)
		dlclose(dl);
	dl = NULL;
}

void kx_trim(char *dst, size_t cap, const CK_UTF8CHAR *src, size_t len)
{
	size_t n = len < cap - 1 ? len : cap - 1;

	memcpy(dst, src, n);
	while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0'))
		n--;
	dst[n] = '\0';
}

const char *kx_rv_text(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return _("success");
	case CKR_PIN_INCORRECT:
		return _("wrong PIN");
	case CKR_PIN_LOCKED:
		return _("the PIN is locked");
	case CKR_PIN_LEN_RANGE:
		return _("the PIN has the wrong length");
	case CKR_PIN_INVALID:
		return _("the PIN contains characters the card refuses");
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_REMOVED:
		return _("the card was removed");
	case CKR_TOKEN_NOT_RECOGNIZED:
		return _("the card is not one kyso knows");
	case CKR_DEVICE_ERROR:
		return _("the card answered with an error");
	case CKR_DEVICE_MEMORY:
		return _("the card is full");
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
		return _("the card was removed or reset during the operation");
	case CKR_USER_NOT_LOGGED_IN:
		return _("this needs another login first (changes to the card "
			 "need its management key, not the PUK)");
	case CKR_KEY_SIZE_RANGE:
		return _("the card does not make keys of this size");
	case CKR_CURVE_NOT_SUPPORTED:
		return _("the card does not support this curve");
	case CKR_MECHANISM_INVALID:
		return _("the card does not support this algorithm");
	case CKR_FUNCTION_NOT_SUPPORTED:
		return _("the card does not support this operation");
	case CKR_ACTION_PROHIBITED:
		return _("the card does not allow this");
	case CKR_TOKEN_WRITE_PROTECTED:
		return _("the card is write-protected");
	case CKR_ATTRIBUTE_VALUE_INVALID:
	case CKR_TEMPLATE_INCONSISTENT:
		return _("the card refused the data");
	case CKR_HOST_MEMORY:
		return _("out of memory");
	case CKR_FUNCTION_CANCELED:
		return _("cancelled");
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
	case CKR_KEY_TYPE_INCONSISTENT:
		return _("this key is not allowed to do that");
	case CKR_USER_ANOTHER_ALREADY_LOGGED_IN:
		return _("another program is logged in to the token");
	}
	{
		static char buf[128];

		snprintf(buf, sizeof(buf), "%s (0x%lx)",
			 _("unexpected error from the PKCS#11 module"),
			 (unsigned long)rv);
		return buf;
	}
}

int kx_rv_exit(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return KX_OK;
	case CKR_PIN_INCORRECT:
		return KX_PIN_INCORRECT;
	case CKR_PIN_LOCKED:
		return KX_PIN_LOCKED;
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
		return KX_NO_TOKEN;
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_INVALID:
		return KX_USAGE;
	}
	return KX_FAIL;
}

static void token_names(struct kx_token *t)
{
	kx_trim(t->label, sizeof(t->label), t->info.label,
		sizeof(t->info.label));
	kx_trim(t->serial, sizeof(t->serial), t->info.serialNumber,
		sizeof(t->info.serialNumber));
	kx_trim(t->model, sizeof(t->model), t->info.model,
		sizeof(t->info.model));
	kx_trim(t->manufacturer, sizeof(t->manufacturer),
		t->info.manufacturerID, sizeof(t->info.manufacturerID));
}

int kx_p11_slots(CK_SLOT_ID **slots, CK_ULONG *n)
{
	CK_SLOT_ID *v = NULL;
	CK_RV rv;

	*slots = NULL;
	*n = 0;
	rv = kx_p11->C_GetSlotList(CK_FALSE, NULL, n);
	if (rv == CKR_OK && *n > 0) {
		v = calloc(*n, sizeof(*v));
		if (!v)
			return kx_fail(KX_FAIL, "%s",
				       kx_rv_text(CKR_HOST_MEMORY));
		rv = kx_p11->C_GetSlotList(CK_FALSE, v, n);
	}
	if (rv != CKR_OK || *n == 0) {
		free(v);
		*n = 0;
		return kx_fail(KX_NO_READER,
			       _("no card reader found: plug in the token (or "
				 "the reader) and check that pcscd runs; "
				 "\"kyso doctor\" tells more"));
	}
	*slots = v;
	return KX_OK;
}

int kx_token_open(struct kx_token *t, int rw)
{
	CK_SLOT_ID *slots = NULL, found = 0;
	CK_ULONG n = 0, i;
	CK_SLOT_INFO si;
	char reader[65], odd[65] = "";
	int nfound = 0, rc;
	CK_RV rv;

	memset(t, 0, sizeof(*t));
	t->sess = CK_INVALID_HANDLE;
	rc = kx_p11_load();
	if (rc != KX_OK)
		return rc;
	rc = kx_p11_slots(&slots, &n);
	if (rc != KX_OK)
		return rc;
	for (i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;

		if (kx_opt.slot >= 0 && slots[i] != (CK_SLOT_ID)kx_opt.slot)
			continue;
		if (kx_p11->C_GetSlotInfo(slots[i], &si) != CKR_OK ||
		    !(si.flags & CKF_TOKEN_PRESENT))
			continue;
		kx_trim(reader, sizeof(reader), si.slotDescription,
			sizeof(si.slotDescription));
		rv = kx_p11->C_GetTokenInfo(slots[i], &ti);
		if (rv != CKR_OK) {
			if (rv == CKR_TOKEN_NOT_RECOGNIZED)
				snprintf(odd, sizeof(odd), "%s", reader);
			continue;
		}
		if (kx_opt.token) {
			struct kx_token tmp;

			tmp.info = ti;
			token_names(&tmp);
			if (strcmp(kx_opt.token, tmp.label) != 0 &&
			    strcmp(kx_opt.token, tmp.serial) != 0)
				continue;
		}
		if (nfound++ == 0) {
			found = slots[i];
			t->info = ti;
		}
	}
	free(slots);
	if (nfound == 0) {
		if (kx_opt.slot >= 0 && !kx_opt.token)
			return kx_fail(KX_NO_TOKEN, _("no token in slot %ld"),
				       kx_opt.slot);
		if (kx_opt.token)
			return kx_fail(KX_NO_TOKEN,
				       _("no token \"%s\" found (see \"kyso "
					 "list\")"),
				       kx_opt.token);
		if (odd[0])
			return kx_fail(KX_NO_TOKEN,
				       _("the card in \"%s\" is not one kyso "
					 "knows; run \"kyso doctor\" and send "
					 "its report to your help desk"),
				       odd);
		return kx_fail(KX_NO_TOKEN,
			       _("no token found: insert your token or card"));
	}
	if (nfound > 1)
		return kx_fail(KX_USAGE,
			       _("%d tokens are present: choose one with "
				 "--token LABEL or --slot N (see \"kyso "
				 "list\")"),
			       nfound);
	t->slot = found;
	token_names(t);
	rv = kx_p11->C_OpenSession(
	    found, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0), NULL, NULL,
	    &t->sess);
	if (rv != CKR_OK) {
		t->sess = CK_INVALID_HANDLE;
		return kx_fail(kx_rv_exit(rv),
			       _("cannot open a session with the token: %s"),
			       kx_rv_text(rv));
	}
	return KX_OK;
}

void kx_token_close(struct kx_token *t)
{
	if (kx_p11 && t->sess != CK_INVALID_HANDLE)
		kx_p11->C_CloseSession(t->sess);
	t->sess = CK_INVALID_HANDLE;
}

int kx_find(struct kx_token *t, CK_OBJECT_CLASS cls, const CK_BYTE *id,
	    size_t idlen, CK_OBJECT_HANDLE *out, size_t max, size_t *n)
{
	CK_ATTRIBUTE tmpl[2];
	CK_ULONG count = 0, nt = 0;
	CK_RV rv;

	tmpl[nt].type = CKA_CLASS;
	tmpl[nt].pValue = &cls;
	tmpl[nt++].ulValueLen = sizeof(cls);
	if (id) {
		tmpl[nt].type = CKA_ID;
		tmpl[nt].pValue = (void *)id;
		tmpl[nt++].ulValueLen = idlen;
	}
	*n = 0;
	rv = kx_p11->C_FindObjectsInit(t->sess, tmpl, nt);
	if (rv != CKR_OK)
		return kx_fail(kx_rv_exit(rv), _("cannot search the token: %s"),
			       kx_rv_text(rv));
	rv = kx_p11->C_FindObjects(t->sess, out, max, &count);
	kx_p11->C_FindObjectsFinal(t->sess);
	if (rv != CKR_OK)
		return kx_fail(kx_rv_exit(rv), _("cannot search the token: %s"),
			       kx_rv_text(rv));
	*n = count;
	return KX_OK;
}

CK_RV kx_attr(struct kx_token *t, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
	      unsigned char **val, size_t *len)
{
	CK_ATTRIBUTE a = {type, NULL, 0};
	CK_RV rv;

	*val = NULL;
	*len = 0;
	rv = kx_p11->C_GetAttributeValue(t->sess, h, &a, 1);
	if (rv != CKR_OK)
		return rv;
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return CKR_ATTRIBUTE_TYPE_INVALID;
	a.pValue = malloc(a.ulValueLen + 1);
	if (!a.pValue)
		return CKR_HOST_MEMORY;
	rv = kx_p11->C_GetAttributeValue(t->sess, h, &a, 1);
	if (rv != CKR_OK) {
		free(a.pValue);
		return rv;
	}
	((unsigned char *)a.pValue)[a.ulValueLen] = '\0';
	*val = a.pValue;
	*len = a.ulValueLen;
	return CKR_OK;
}

CK_RV kx_attr_ulong(struct kx_token *t, CK_OBJECT_HANDLE h,
		    CK_ATTRIBUTE_TYPE type, CK_ULONG *v)
{
	CK_ATTRIBUTE a = {type, v, sizeof(*v)};

	return kx_p11->C_GetAttributeValue(t->sess, h, &a, 1);
}

CK_RV kx_attr_bool(struct kx_token *t, CK_OBJECT_HANDLE h,
		   CK_ATTRIBUTE_TYPE type, CK_BBOOL *v)
{
	CK_ATTRIBUTE a = {type, v, sizeof(*v)};

	*v = CK_FALSE;
	return kx_p11->C_GetAttributeValue(t->sess, h, &a, 1);
}

void kx_hex(const unsigned char *p, size_t n, char *out, size_t cap)
{
	size_t i;

	out[0] = '\0';
	for (i = 0; i < n && 2 * i + 2 < cap; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

int kx_hex_id(const char *s, unsigned char *id, size_t cap, size_t *len)
{
	size_t n = strlen(s), i;

	if (n == 0 || n % 2 || n / 2 > cap)
		return -1;
	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return -1;
	for (i = 0; i < n / 2; i++) {
		char b[3] = {s[2 * i], s[2 * i + 1], 0};

		id[i] = (unsigned char)strtoul(b, NULL, 16);
	}
	*len = n / 2;
	return 0;
}

static EVP_PKEY *pkey_rsa(const unsigned char *n, size_t nlen,
			  const unsigned char *e, size_t elen)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL);
	BIGNUM *be = BN_bin2bn(e, (int)elen, NULL);

	if (!bld || !bn || !be ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pk = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pk;
}

static EVP_PKEY *pkey_ec(const unsigned char *params_der, size_t plen,
			 const unsigned char *point, size_t ptlen)
{
	const unsigned char *p = params_der;
	ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &p, (long)plen);
	ASN1_OCTET_STRING *os = NULL;
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;
	const char *group;
	int nid;

	if (!oid)
		return NULL;
	nid = OBJ_obj2nid(oid);
	ASN1_OBJECT_free(oid);
	group = OBJ_nid2sn(nid);
	if (nid == NID_undef || !group)
		return NULL;
	/* CKA_EC_POINT is a DER OCTET STRING; some modules give it raw. */
	p = point;
	if (ptlen > 2 && point[0] == 0x04 &&
	    (os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)ptlen)) != NULL &&
	    p == point + ptlen) {
		point = ASN1_STRING_get0_data(os);
		ptlen = (size_t)ASN1_STRING_length(os);
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
						     (char *)group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
						      (void *)point, ptlen);
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pk = NULL;
	EVP_PKEY_CTX_free(ctx);
	ASN1_OCTET_STRING_free(os);
	return pk;
}

EVP_PKEY *kx_pubkey_of(struct kx_token *t, CK_OBJECT_HANDLE h)
{
	unsigned char *a = NULL, *b = NULL;
	size_t alen, blen;
	CK_ULONG type;
	EVP_PKEY *pk = NULL;

	if (kx_attr_ulong(t, h, CKA_KEY_TYPE, &type) != CKR_OK)
		return NULL;
	if (type == CKK_RSA) {
		if (kx_attr(t, h, CKA_MODULUS, &a, &alen) == CKR_OK &&
		    kx_attr(t, h, CKA_PUBLIC_EXPONENT, &b, &blen) == CKR_OK)
			pk = pkey_rsa(a, alen, b, blen);
	} else if (type == CKK_EC) {
		if (kx_attr(t, h, CKA_EC_PARAMS, &a, &alen) == CKR_OK &&
		    kx_attr(t, h, CKA_EC_POINT, &b, &blen) == CKR_OK)
			pk = pkey_ec(a, alen, b, blen);
	}
	free(a);
	free(b);
	return pk;
}

void kx_key_clear(struct kx_key *k)
{
	EVP_PKEY_free(k->pub);
	X509_free(k->cert);
	memset(k, 0, sizeof(*k));
}

/* The entry for an id in keys[0..*n), added when new. */
static struct kx_key *key_slot(struct kx_key **keys, size_t *n, size_t *cap,
			       const unsigned char *id, size_t idlen)
{
	struct kx_key *k;
	size_t i;

	for (i = 0; i < *n; i++)
		if ((*keys)[i].idlen == idlen &&
		    memcmp((*keys)[i].id, id, idlen) == 0)
			return &(*keys)[i];
	if (idlen > sizeof(k->id))
		return NULL;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		struct kx_key *nk = realloc(*keys, nc * sizeof(*nk));

		if (!nk)
			return NULL;
		*keys = nk;
		*cap = nc;
	}
	k = &(*keys)[(*n)++];
	memset(k, 0, sizeof(*k));
	memcpy(k->id, id, idlen);
	k->idlen = idlen;
	kx_hex(id, idlen, k->idhex, sizeof(k->idhex));
	return k;
}

int kx_key_list(struct kx_token *t, struct kx_key **keys, size_t *n)
{
	static const CK_OBJECT_CLASS classes[] = {
	    CKO_CERTIFICATE, CKO_PUBLIC_KEY, CKO_PRIVATE_KEY};
	CK_OBJECT_HANDLE h[256];
	size_t cap = 0, nh, i, c;
	int rc;

	*keys = NULL;
	*n = 0;
	for (c = 0; c < sizeof(classes) / sizeof(classes[0]); c++) {
		rc = kx_find(t, classes[c], NULL, 0, h, 256, &nh);
		if (rc != KX_OK)
			return rc;
		for (i = 0; i < nh; i++) {
			unsigned char *id = NULL, *v = NULL;
			size_t idlen = 0, vlen = 0;
			struct kx_key *k;

			if (kx_attr(t, h[i], CKA_ID, &id, &idlen) != CKR_OK ||
			    idlen == 0) {
				free(id);
				continue;
			}
			k = key_slot(keys, n, &cap, id, idlen);
			free(id);
			if (!k)
				continue;
			if (!k->label[0] &&
			    kx_attr(t, h[i], CKA_LABEL, &v, &vlen) == CKR_OK)
				snprintf(k->label, sizeof(k->label), "%.*s",
					 (int)vlen, (char *)v);
			free(v);
			v = NULL;
			if (classes[c] == CKO_CERTIFICATE && !k->cert &&
			    kx_attr(t, h[i], CKA_VALUE, &v, &vlen) == CKR_OK) {
				const unsigned char *p = v;

				k->cert = d2i_X509(NULL, &p, (long)vlen);
				k->cert_h = h[i];
				if (k->cert && !k->pub)
					k->pub = X509_get_pubkey(k->cert);
			}
			free(v);
			if (classes[c] == CKO_PUBLIC_KEY) {
				EVP_PKEY *pk = kx_pubkey_of(t, h[i]);

				k->pub_h = h[i];
				/* The key object is the truth: the card may
				 * hold a new key next to an old certificate. */
				if (pk) {
					EVP_PKEY_free(k->pub);
					k->pub = pk;
				}
			}
		}
	}
	return KX_OK;
}

/* A signing key for "kyso sign" without --key: the one whose certificate
 * says non-repudiation (a signature key), else digital signature. */
static int choose_default(struct kx_key *keys, size_t n)
{
	int best = -1, score = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		uint32_t ku;
		int s;

		if (!keys[i].cert)
			continue;
		ku = X509_get_key_usage(keys[i].cert);
		if (ku & KU_NON_REPUDIATION)
			s = 3;
		else if (ku & KU_DIGITAL_SIGNATURE)
			s = 2;
		else
			s = 0;
		if (ku == UINT32_MAX)
			s = 1;
		if (s > score) {
			score = s;
			best = (int)i;
		}
	}
	return best;
}

int kx_key_find(struct kx_token *t, const char *spec, struct kx_key *out)
{
	struct kx_key *keys;
	unsigned char id[64];
	size_t n, i, idlen = 0;
	int rc, pick = -1, isid;

	memset(out, 0, sizeof(*out));
	rc = kx_key_list(t, &keys, &n);
	if (rc != KX_OK)
		return rc;
	if (spec) {
		isid = kx_hex_id(spec, id, sizeof(id), &idlen) == 0;
		for (i = 0; i < n && pick < 0; i++)
			if (isid && keys[i].idlen == idlen &&
			    memcmp(keys[i].id, id, idlen) == 0)
				pick = (int)i;
		for (i = 0; i < n && pick < 0; i++)
			if (strcmp(keys[i].label, spec) == 0)
				pick = (int)i;
		if (pick < 0) {
			rc = kx_fail(KX_NOT_FOUND,
				     _("no key \"%s\" on the token (\"kyso "
				       "list\" shows the keys)"),
				     spec);
			goto out;
		}
	} else {
		pick = choose_default(keys, n);
		if (pick < 0) {
			rc = kx_fail(KX_NOT_FOUND,
				     _("the token has no key with a "
				       "certificate to sign with"));
			goto out;
		}
	}
	*out = keys[pick];
	memset(&keys[pick], 0, sizeof(keys[pick]));
	rc = KX_OK;
out:
	for (i = 0; i < n; i++)
		kx_key_clear(&keys[i]);
	free(keys);
	return rc;
}

void kx_token_refresh(struct kx_token *t)
{
	CK_TOKEN_INFO ti;

	if (kx_p11->C_GetTokenInfo(t->slot, &ti) == CKR_OK)
		t->info = ti;
}
