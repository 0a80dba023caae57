/* PKCS#11 argument abuse, table-driven, against kyso AND a reference
 * implementation (SoftHSM2): NULL pointers, lengths too small, handles that
 * do not exist, calls before C_Initialize and after C_Finalize, operations
 * in the wrong state. Each row names the return value PKCS#11 2.40 asks for
 * (and a second one where the specification allows either); both modules
 * run the same rows in the same order on a token with an RSA key pair of
 * CKA_ID 01, and each result must be the expected one. Where a module
 * answers otherwise, the row says so (the `kyso` or `ref` column) and why:
 * that list is the documented difference between kyso, the reference and
 * the specification, printed at the end.
 *
 *   args KYSO_MODULE PIN SO-PIN REF_MODULE REF_PIN REF_SO_PIN
 *
 * Run inside tests/with-card with a provisioned PIV card (9A: RSA 2048,
 * CKA_ID 01; PIN 123456, PUK 12345678) and SOFTHSM2_CONF naming an
 * initialized SoftHSM token with such a key (args.sh sets both up). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hlib.h"

#define SAME ((CK_RV)~0UL) /* the module answers as the specification asks */
#define NONE ((CK_RV)~0UL) /* no second value allowed */

struct ctx {
	const char *name;
	CK_FUNCTION_LIST_PTR f;
	const char *pin, *sopin;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE ro, rw;
	CK_OBJECT_HANDLE key, pub;
	CK_ULONG n;
	uint8_t buf[1024];
	CK_ULONG len;
	CK_ATTRIBUTE a;
};

struct row {
	const char *name;
	CK_RV (*fn)(struct ctx *);
	CK_RV spec, alt;  /* what PKCS#11 2.40 asks (alt: also allowed) */
	CK_RV kyso, ref;  /* a module's own answer when it differs, or SAME */
	const char *why;  /* for every difference */
	/* an output the row also checks: 1 when it holds */
	int (*post)(struct ctx *);
};

static const CK_SLOT_ID bad_slot = 0xDEAD;
static const CK_SESSION_HANDLE bad_session = 0xDEAD0001;
static const CK_OBJECT_HANDLE bad_object = 0xDEAD0002;

#define F (c->f)
#define R(name) static CK_RV name(struct ctx *c)

static const CK_C_INITIALIZE_ARGS reserved_args = {NULL, NULL, NULL, NULL, 0,
						   (void *)1};

static CK_RV some_mutex(CK_VOID_PTR_PTR m)
{
	*m = NULL;
	return CKR_OK;
}

/* --- before C_Initialize ----------------------------------------------------- */
R(pre_getinfo)
{
	CK_INFO i;
	return F->C_GetInfo(&i);
}
R(pre_getinfo_null) { return F->C_GetInfo(NULL); }
R(pre_slotlist) { return F->C_GetSlotList(CK_FALSE, NULL, &c->n); }
R(pre_slotinfo)
{
	CK_SLOT_INFO i;
	return F->C_GetSlotInfo(1, &i);
}
R(pre_open)
{
	CK_SESSION_HANDLE s;
	return F->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &s);
}
R(pre_close) { return F->C_CloseSession(1); }
R(pre_login)
{
	return F->C_Login(1, CKU_USER, (CK_UTF8CHAR_PTR)c->pin,
			  strlen(c->pin));
}
R(pre_finalize) { return F->C_Finalize(NULL); }
R(pre_wait)
{
	CK_SLOT_ID s;
	return F->C_WaitForSlotEvent(CKF_DONT_BLOCK, &s, NULL);
}
R(init_reserved)
{
	return F->C_Initialize((CK_VOID_PTR)&reserved_args);
}
R(init_some_mutexes)
{
	CK_C_INITIALIZE_ARGS a = {0};

	a.CreateMutex = some_mutex;
	return F->C_Initialize(&a);
}

/* --- general and slot functions ------------------------------------------- */
R(init) { return F->C_Initialize(NULL); }
R(init_again) { return F->C_Initialize(NULL); }
R(finalize_reserved) { return F->C_Finalize((CK_VOID_PTR)1); }
R(getinfo_null) { return F->C_GetInfo(NULL); }
R(slotlist_null) { return F->C_GetSlotList(CK_FALSE, NULL, NULL); }
R(find_slot)
{
	CK_SLOT_ID v[16];
	CK_ULONG n = 16;
	CK_RV rv = F->C_GetSlotList(CK_TRUE, v, &n);

	if (rv == CKR_OK && n == 0)
		return CKR_TOKEN_NOT_PRESENT;
	c->slot = v[0];
	return rv;
}
R(slotlist_short)
{
	CK_SLOT_ID v[1];

	c->n = 0;
	return F->C_GetSlotList(CK_FALSE, v, &c->n);
}
static int post_count_set(struct ctx *c) { return c->n > 0; }
R(slotinfo_bad)
{
	CK_SLOT_INFO i;
	return F->C_GetSlotInfo(bad_slot, &i);
}
R(slotinfo_null) { return F->C_GetSlotInfo(c->slot, NULL); }
R(tokeninfo_bad)
{
	CK_TOKEN_INFO i;
	return F->C_GetTokenInfo(bad_slot, &i);
}
R(tokeninfo_null) { return F->C_GetTokenInfo(c->slot, NULL); }
R(mechlist_bad) { return F->C_GetMechanismList(bad_slot, NULL, &c->n); }
R(mechlist_null) { return F->C_GetMechanismList(c->slot, NULL, NULL); }
R(mechlist_short)
{
	CK_MECHANISM_TYPE m[1];

	c->n = 0;
	return F->C_GetMechanismList(c->slot, m, &c->n);
}
R(mechinfo_bad)
{
	CK_MECHANISM_INFO i;
	return F->C_GetMechanismInfo(c->slot, 0x80001234UL, &i);
}
R(mechinfo_null)
{
	return F->C_GetMechanismInfo(c->slot, CKM_RSA_PKCS, NULL);
}
R(wait_null) { return F->C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL); }
R(wait_none)
{
	CK_SLOT_ID s;
	CK_RV rv;

	/* events from start-up are not events; take any left first */
	while ((rv = F->C_WaitForSlotEvent(CKF_DONT_BLOCK, &s, NULL)) ==
	       CKR_OK)
		;
	return rv;
}

/* --- sessions and login ----------------------------------------------------- */
R(open_parallel)
{
	CK_SESSION_HANDLE s;
	return F->C_OpenSession(c->slot, 0, NULL, NULL, &s);
}
R(open_bad_slot)
{
	CK_SESSION_HANDLE s;
	return F->C_OpenSession(bad_slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
}
R(open_null)
{
	return F->C_OpenSession(c->slot, CKF_SERIAL_SESSION, NULL, NULL, NULL);
}
R(open_ro)
{
	return F->C_OpenSession(c->slot, CKF_SERIAL_SESSION, NULL, NULL,
				&c->ro);
}
R(close_bad) { return F->C_CloseSession(bad_session); }
R(sessinfo_bad)
{
	CK_SESSION_INFO i;
	return F->C_GetSessionInfo(bad_session, &i);
}
R(sessinfo_null) { return F->C_GetSessionInfo(c->ro, NULL); }
R(login_bad_type)
{
	return F->C_Login(c->ro, 99, (CK_UTF8CHAR_PTR)c->pin, strlen(c->pin));
}
R(login_bad_session)
{
	return F->C_Login(bad_session, CKU_USER, (CK_UTF8CHAR_PTR)c->pin,
			  strlen(c->pin));
}
R(login_null_pin) { return F->C_Login(c->ro, CKU_USER, NULL, 6); }
R(logout_nobody) { return F->C_Logout(c->ro); }
R(login_context_no_op)
{
	return F->C_Login(c->ro, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)c->pin,
			  strlen(c->pin));
}
R(login_so_ro)
{
	return F->C_Login(c->ro, CKU_SO, (CK_UTF8CHAR_PTR)c->sopin,
			  strlen(c->sopin));
}
R(login_long)
{
	static const char longpin[] = "123456789012345678901234567890"
				      "123456789012345678901234567890"
				      "1234567890";

	return F->C_Login(c->ro, CKU_USER, (CK_UTF8CHAR_PTR)longpin,
			  strlen(longpin));
}
R(login_wrong)
{
	return F->C_Login(c->ro, CKU_USER, (CK_UTF8CHAR_PTR) "000000", 6);
}
R(login_user)
{
	return F->C_Login(c->ro, CKU_USER, (CK_UTF8CHAR_PTR)c->pin,
			  strlen(c->pin));
}
R(setpin_ro)
{
	return F->C_SetPIN(c->ro, (CK_UTF8CHAR_PTR)c->pin, strlen(c->pin),
			   (CK_UTF8CHAR_PTR)c->pin, strlen(c->pin));
}
R(setpin_null)
{
	return F->C_SetPIN(c->ro, NULL, 6, (CK_UTF8CHAR_PTR)c->pin,
			   strlen(c->pin));
}
R(initpin_user)
{
	return F->C_InitPIN(c->ro, (CK_UTF8CHAR_PTR)c->pin, strlen(c->pin));
}

/* --- objects ------------------------------------------------------------------ */
R(find_null_template) { return F->C_FindObjectsInit(c->ro, NULL, 1); }
R(find_no_init)
{
	CK_OBJECT_HANDLE h;
	return F->C_FindObjects(c->ro, &h, 1, &c->n);
}
R(findfinal_no_init) { return F->C_FindObjectsFinal(c->ro); }
static CK_OBJECT_CLASS cls_priv = CKO_PRIVATE_KEY, cls_pub = CKO_PUBLIC_KEY;
static CK_BYTE id01 = 0x01;
R(find_init)
{
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls_priv, sizeof(cls_priv)},
			    {CKA_ID, &id01, 1}};
	return F->C_FindObjectsInit(c->ro, t, 2);
}
R(find_init_again) { return F->C_FindObjectsInit(c->ro, NULL, 0); }
R(find_null_out) { return F->C_FindObjects(c->ro, NULL, 1, &c->n); }
R(find_null_count)
{
	CK_OBJECT_HANDLE h;
	return F->C_FindObjects(c->ro, &h, 1, NULL);
}
R(find_key) { return F->C_FindObjects(c->ro, &c->key, 1, &c->n); }
static int post_one(struct ctx *c) { return c->n == 1; }
R(find_final) { return F->C_FindObjectsFinal(c->ro); }
R(find_pub)
{
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls_pub, sizeof(cls_pub)},
			    {CKA_ID, &id01, 1}};
	CK_RV rv = F->C_FindObjectsInit(c->ro, t, 2);

	if (rv == CKR_OK)
		rv = F->C_FindObjects(c->ro, &c->pub, 1, &c->n);
	if (rv == CKR_OK)
		rv = F->C_FindObjectsFinal(c->ro);
	return rv == CKR_OK && c->n != 1 ? CKR_GENERAL_ERROR : rv;
}
R(attr_bad_object)
{
	c->a.type = CKA_ID;
	c->a.pValue = c->buf;
	c->a.ulValueLen = sizeof(c->buf);
	return F->C_GetAttributeValue(c->ro, bad_object, &c->a, 1);
}
R(attr_null_template)
{
	return F->C_GetAttributeValue(c->ro, c->key, NULL, 1);
}
R(attr_sensitive)
{
	c->a.type = CKA_PRIVATE_EXPONENT;
	c->a.pValue = c->buf;
	c->a.ulValueLen = sizeof(c->buf);
	return F->C_GetAttributeValue(c->ro, c->key, &c->a, 1);
}
static int post_unavailable(struct ctx *c)
{
	return c->a.ulValueLen == CK_UNAVAILABLE_INFORMATION;
}
R(attr_bad_type)
{
	c->a.type = 0x7FFF1234UL;
	c->a.pValue = c->buf;
	c->a.ulValueLen = sizeof(c->buf);
	return F->C_GetAttributeValue(c->ro, c->key, &c->a, 1);
}
R(attr_short)
{
	c->a.type = CKA_ID;
	c->a.pValue = c->buf;
	c->a.ulValueLen = 0;
	return F->C_GetAttributeValue(c->ro, c->key, &c->a, 1);
}
R(attr_size)
{
	c->a.type = CKA_ID;
	c->a.pValue = NULL;
	c->a.ulValueLen = 0;
	return F->C_GetAttributeValue(c->ro, c->key, &c->a, 1);
}
static int post_len1(struct ctx *c) { return c->a.ulValueLen == 1; }
R(setattr_ro)
{
	CK_ATTRIBUTE t = {CKA_LABEL, "x", 1};
	return F->C_SetAttributeValue(c->ro, c->key, &t, 1);
}
R(destroy_ro) { return F->C_DestroyObject(c->ro, c->key); }
R(destroy_bad) { return F->C_DestroyObject(c->ro, bad_object); }
R(objsize_null) { return F->C_GetObjectSize(c->ro, c->key, NULL); }

/* --- signing, verifying, digesting --------------------------------------------- */
static CK_MECHANISM m_sha256rsa = {CKM_SHA256_RSA_PKCS, NULL, 0};
static CK_MECHANISM m_rsa = {CKM_RSA_PKCS, NULL, 0};
static CK_MECHANISM m_sha256 = {CKM_SHA256, NULL, 0};
static CK_BYTE data[] = "argument abuse";

/* A C_SignInit that should fail: if a module starts the operation anyway,
 * end it, so that the rows after it see the state they expect. */
static CK_RV init_should_fail(struct ctx *c, CK_RV rv)
{
	if (rv == CKR_OK) {
		c->len = sizeof(c->buf);
		F->C_Sign(c->ro, data, sizeof(data), c->buf, &c->len);
	}
	return rv;
}

R(signinit_null) { return F->C_SignInit(c->ro, NULL, c->key); }
R(signinit_bad_mech)
{
	CK_MECHANISM m = {0x80001234UL, NULL, 0};
	return F->C_SignInit(c->ro, &m, c->key);
}
R(signinit_bad_param)
{
	CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, c->buf, 4};
	return init_should_fail(c, F->C_SignInit(c->ro, &m, c->key));
}
R(signinit_ec_on_rsa)
{
	CK_MECHANISM m = {CKM_ECDSA, NULL, 0};
	return init_should_fail(c, F->C_SignInit(c->ro, &m, c->key));
}
R(signinit_bad_key)
{
	return init_should_fail(c,
				F->C_SignInit(c->ro, &m_sha256rsa, bad_object));
}
R(signinit_pub_key)
{
	return init_should_fail(c, F->C_SignInit(c->ro, &m_sha256rsa, c->pub));
}
R(sign_no_init)
{
	c->len = sizeof(c->buf);
	return F->C_Sign(c->ro, data, sizeof(data), c->buf, &c->len);
}
R(signfinal_no_init)
{
	c->len = sizeof(c->buf);
	return F->C_SignFinal(c->ro, c->buf, &c->len);
}
R(signinit) { return F->C_SignInit(c->ro, &m_sha256rsa, c->key); }
R(signinit_again) { return F->C_SignInit(c->ro, &m_sha256rsa, c->key); }
R(sign_null_len) { return F->C_Sign(c->ro, data, sizeof(data), c->buf, NULL); }
R(sign_query)
{
	c->len = 0;
	return F->C_Sign(c->ro, data, sizeof(data), NULL, &c->len);
}
static int post_len256(struct ctx *c) { return c->len == 256; }
R(sign_short)
{
	c->len = 1;
	return F->C_Sign(c->ro, data, sizeof(data), c->buf, &c->len);
}
R(sign)
{
	c->len = sizeof(c->buf);
	return F->C_Sign(c->ro, data, sizeof(data), c->buf, &c->len);
}
R(signinit_raw) { return F->C_SignInit(c->ro, &m_rsa, c->key); }
R(sign_too_long)
{
	c->len = sizeof(c->buf);
	return F->C_Sign(c->ro, c->buf, 300, c->buf + 300, &c->len);
}
R(verifyinit_bad_key)
{
	return F->C_VerifyInit(c->ro, &m_sha256rsa, bad_object);
}
R(verifyinit) { return F->C_VerifyInit(c->ro, &m_sha256rsa, c->pub); }
R(verify_bad_sig)
{
	uint8_t sig[256];

	memset(sig, 0x5A, sizeof(sig));
	return F->C_Verify(c->ro, data, sizeof(data), sig, sizeof(sig));
}
R(verify_short_sig)
{
	uint8_t sig[10] = {0};
	return F->C_Verify(c->ro, data, sizeof(data), sig, sizeof(sig));
}
R(verify_no_init)
{
	uint8_t sig[256] = {0};
	return F->C_Verify(c->ro, data, sizeof(data), sig, sizeof(sig));
}
R(decryptinit_null) { return F->C_DecryptInit(c->ro, NULL, c->key); }
R(decrypt_no_init)
{
	c->len = sizeof(c->buf);
	return F->C_Decrypt(c->ro, c->buf, 256, c->buf, &c->len);
}
R(digestinit_null) { return F->C_DigestInit(c->ro, NULL); }
R(digestinit_bad)
{
	CK_MECHANISM m = {0x80001234UL, NULL, 0};
	return F->C_DigestInit(c->ro, &m);
}
R(digest_no_init)
{
	c->len = sizeof(c->buf);
	return F->C_Digest(c->ro, data, sizeof(data), c->buf, &c->len);
}
R(digestinit) { return F->C_DigestInit(c->ro, &m_sha256); }
R(digestinit_again) { return F->C_DigestInit(c->ro, &m_sha256); }
R(digest_short)
{
	c->len = 1;
	return F->C_Digest(c->ro, data, sizeof(data), c->buf, &c->len);
}
static int post_len32(struct ctx *c) { return c->len == 32; }
R(digest)
{
	c->len = sizeof(c->buf);
	return F->C_Digest(c->ro, data, sizeof(data), c->buf, &c->len);
}
R(random_null) { return F->C_GenerateRandom(c->ro, NULL, 16); }
R(gen_random) { return F->C_GenerateRandom(c->ro, c->buf, 16); }
R(seed_random) { return F->C_SeedRandom(c->ro, c->buf, 4); }
R(function_status) { return F->C_GetFunctionStatus(c->ro); }
R(cancel_function) { return F->C_CancelFunction(c->ro); }
R(encryptinit_bad_session)
{
	return F->C_EncryptInit(bad_session, &m_rsa, c->key);
}

/* --- SO, closing, finalizing --------------------------------------------------- */
R(close_ro) { return F->C_CloseSession(c->ro); }
R(sessinfo_closed)
{
	CK_SESSION_INFO i;
	return F->C_GetSessionInfo(c->ro, &i);
}
R(open_rw)
{
	return F->C_OpenSession(c->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				NULL, NULL, &c->rw);
}
R(login_so)
{
	return F->C_Login(c->rw, CKU_SO, (CK_UTF8CHAR_PTR)c->sopin,
			  strlen(c->sopin));
}
R(open_ro_with_so)
{
	CK_SESSION_HANDLE s;
	return F->C_OpenSession(c->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
}
R(login_user_with_so)
{
	return F->C_Login(c->rw, CKU_USER, (CK_UTF8CHAR_PTR)c->pin,
			  strlen(c->pin));
}
R(logout_rw) { return F->C_Logout(c->rw); }
R(closeall_bad) { return F->C_CloseAllSessions(bad_slot); }
R(closeall) { return F->C_CloseAllSessions(c->slot); }
R(sessinfo_after_closeall)
{
	CK_SESSION_INFO i;
	return F->C_GetSessionInfo(c->rw, &i);
}
R(finalize) { return F->C_Finalize(NULL); }
R(post_getinfo)
{
	CK_INFO i;
	return F->C_GetInfo(&i);
}
R(post_open)
{
	CK_SESSION_HANDLE s;
	return F->C_OpenSession(c->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
}

#define NI CKR_CRYPTOKI_NOT_INITIALIZED
#define AB CKR_ARGUMENTS_BAD

static const struct row rows[] = {
	/* before C_Initialize */
	{"C_GetInfo before C_Initialize", pre_getinfo, NI, NONE, SAME, SAME},
	{"C_GetInfo(NULL) before C_Initialize", pre_getinfo_null, NI, AB,
	 SAME, SAME, NULL},
	{"C_GetSlotList before C_Initialize", pre_slotlist, NI, NONE, SAME,
	 SAME},
	{"C_GetSlotInfo before C_Initialize", pre_slotinfo, NI, NONE, SAME,
	 SAME},
	{"C_OpenSession before C_Initialize", pre_open, NI, NONE, SAME, SAME},
	{"C_CloseSession before C_Initialize", pre_close, NI, NONE, SAME,
	 SAME},
	{"C_Login before C_Initialize", pre_login, NI, NONE, SAME, SAME},
	{"C_Finalize before C_Initialize", pre_finalize, NI, NONE, SAME, SAME},
	{"C_WaitForSlotEvent before C_Initialize", pre_wait, NI, NONE, SAME,
	 SAME},
	{"C_Initialize with pReserved set", init_reserved, AB, NONE, SAME,
	 SAME},
	{"C_Initialize with only some mutex functions", init_some_mutexes,
	 AB, NONE, SAME, SAME},
	/* general and slot functions */
	{"C_Initialize(NULL)", init, CKR_OK, NONE, SAME, SAME},
	{"C_Initialize twice", init_again, CKR_CRYPTOKI_ALREADY_INITIALIZED,
	 NONE, SAME, SAME},
	{"C_Finalize(non-NULL)", finalize_reserved, AB, NONE, SAME, SAME},
	{"C_GetInfo(NULL)", getinfo_null, AB, NONE, SAME, SAME},
	{"C_GetSlotList(pulCount NULL)", slotlist_null, AB, NONE, SAME, SAME},
	{"a slot with the token", find_slot, CKR_OK, NONE, SAME, SAME},
	{"C_GetSlotList into a list too short", slotlist_short,
	 CKR_BUFFER_TOO_SMALL, NONE, SAME, SAME, NULL, post_count_set},
	{"C_GetSlotInfo(bad slot)", slotinfo_bad, CKR_SLOT_ID_INVALID, NONE,
	 SAME, SAME},
	{"C_GetSlotInfo(NULL)", slotinfo_null, AB, NONE, SAME, SAME},
	{"C_GetTokenInfo(bad slot)", tokeninfo_bad, CKR_SLOT_ID_INVALID, NONE,
	 SAME, SAME},
	{"C_GetTokenInfo(NULL)", tokeninfo_null, AB, NONE, SAME, SAME},
	{"C_GetMechanismList(bad slot)", mechlist_bad, CKR_SLOT_ID_INVALID,
	 NONE, SAME, SAME},
	{"C_GetMechanismList(pulCount NULL)", mechlist_null, AB, NONE, SAME,
	 SAME},
	{"C_GetMechanismList into a list too short", mechlist_short,
	 CKR_BUFFER_TOO_SMALL, NONE, SAME, SAME, NULL, post_count_set},
	{"C_GetMechanismInfo(unknown mechanism)", mechinfo_bad,
	 CKR_MECHANISM_INVALID, NONE, SAME, SAME},
	{"C_GetMechanismInfo(NULL)", mechinfo_null, AB, NONE, SAME, SAME},
	{"C_WaitForSlotEvent(pSlot NULL)", wait_null, AB, NONE, SAME,
	 CKR_NO_EVENT,
	 "SoftHSM answers CKR_NO_EVENT without looking at pSlot"},
	{"C_WaitForSlotEvent(DONT_BLOCK) with nothing new", wait_none,
	 CKR_NO_EVENT, NONE, SAME, SAME},
	/* sessions and login */
	{"C_OpenSession without CKF_SERIAL_SESSION", open_parallel,
	 CKR_SESSION_PARALLEL_NOT_SUPPORTED, NONE, SAME, SAME},
	{"C_OpenSession(bad slot)", open_bad_slot, CKR_SLOT_ID_INVALID, NONE,
	 SAME, SAME},
	{"C_OpenSession(phSession NULL)", open_null, AB, NONE, SAME, SAME},
	{"a read-only session", open_ro, CKR_OK, NONE, SAME, SAME},
	{"C_CloseSession(bad handle)", close_bad, CKR_SESSION_HANDLE_INVALID,
	 NONE, SAME, SAME},
	{"C_GetSessionInfo(bad handle)", sessinfo_bad,
	 CKR_SESSION_HANDLE_INVALID, NONE, SAME, SAME},
	{"C_GetSessionInfo(NULL)", sessinfo_null, AB, NONE, SAME, SAME},
	{"C_Login(bad user type)", login_bad_type, CKR_USER_TYPE_INVALID, NONE,
	 SAME, SAME},
	{"C_Login(bad session)", login_bad_session, CKR_SESSION_HANDLE_INVALID,
	 NONE, SAME, SAME},
	{"C_Login(pPin NULL, no protected path)", login_null_pin, AB, NONE,
	 SAME, SAME},
	{"C_Logout when nobody is logged in", logout_nobody,
	 CKR_USER_NOT_LOGGED_IN, NONE, SAME, CKR_OK,
	 "SoftHSM logs out whoever is there, nobody included"},
	{"C_Login(CKU_CONTEXT_SPECIFIC) with no operation",
	 login_context_no_op, CKR_OPERATION_NOT_INITIALIZED, NONE,
	 CKR_USER_NOT_LOGGED_IN, SAME,
	 "kyso checks the user login before the operation; "
	 "CKR_USER_NOT_LOGGED_IN is not listed for C_Login (reported)"},
	{"C_Login(CKU_SO) with a read-only session open", login_so_ro,
	 CKR_SESSION_READ_ONLY_EXISTS, NONE, SAME, SAME},
	{"C_Login with a 90-character PIN", login_long, CKR_PIN_INCORRECT,
	 NONE, CKR_PIN_LEN_RANGE, SAME,
	 "kyso refuses a PIN the card cannot hold before sending it (costs "
	 "no try); CKR_PIN_LEN_RANGE is not listed for C_Login (OpenSC "
	 "does the same)"},
	{"C_Login with a wrong PIN (one try)", login_wrong, CKR_PIN_INCORRECT,
	 NONE, SAME, SAME},
	{"C_Login(CKU_USER)", login_user, CKR_OK, NONE, SAME, SAME},
	{"C_Login twice", login_user, CKR_USER_ALREADY_LOGGED_IN, NONE, SAME,
	 SAME},
	{"C_Login(CKU_SO) while the user is logged in", login_so_ro,
	 CKR_USER_ANOTHER_ALREADY_LOGGED_IN, CKR_SESSION_READ_ONLY_EXISTS,
	 SAME, SAME},
	{"C_SetPIN in a read-only session", setpin_ro, CKR_SESSION_READ_ONLY,
	 NONE, SAME, SAME},
	{"C_SetPIN(pOldPin NULL)", setpin_null, AB, NONE, SAME, SAME},
	{"C_InitPIN as the user", initpin_user, CKR_USER_NOT_LOGGED_IN,
	 CKR_SESSION_READ_ONLY, SAME, SAME},
	/* objects */
	{"C_FindObjectsInit(NULL template, count 1)", find_null_template, AB,
	 NONE, SAME, SAME},
	{"C_FindObjects without C_FindObjectsInit", find_no_init,
	 CKR_OPERATION_NOT_INITIALIZED, NONE, SAME, SAME},
	{"C_FindObjectsFinal without C_FindObjectsInit", findfinal_no_init,
	 CKR_OPERATION_NOT_INITIALIZED, NONE, SAME, SAME},
	{"C_FindObjectsInit (private key, CKA_ID 01)", find_init, CKR_OK, NONE,
	 SAME, SAME},
	{"C_FindObjectsInit during a search", find_init_again,
	 CKR_OPERATION_ACTIVE, NONE, SAME, SAME},
	{"C_FindObjects(phObject NULL)", find_null_out, AB, NONE, SAME, SAME},
	{"C_FindObjects(pulObjectCount NULL)", find_null_count, AB, NONE,
	 SAME, SAME},
	{"C_FindObjects finds the key", find_key, CKR_OK, NONE, SAME, SAME,
	 NULL, post_one},
	{"C_FindObjectsFinal", find_final, CKR_OK, NONE, SAME, SAME},
	{"the public key, CKA_ID 01", find_pub, CKR_OK, NONE, SAME, SAME},
	{"C_GetAttributeValue(bad object)", attr_bad_object,
	 CKR_OBJECT_HANDLE_INVALID, NONE, SAME, SAME},
	{"C_GetAttributeValue(NULL template, count 1)", attr_null_template,
	 AB, NONE, SAME, SAME},
	{"C_GetAttributeValue(CKA_PRIVATE_EXPONENT)", attr_sensitive,
	 CKR_ATTRIBUTE_SENSITIVE, NONE, SAME, SAME, NULL, post_unavailable},
	{"C_GetAttributeValue(unknown type)", attr_bad_type,
	 CKR_ATTRIBUTE_TYPE_INVALID, NONE, SAME, SAME, NULL,
	 post_unavailable},
	{"C_GetAttributeValue into a buffer too small", attr_short,
	 CKR_BUFFER_TOO_SMALL, NONE, SAME, SAME, NULL, post_unavailable},
	{"C_GetAttributeValue size query", attr_size, CKR_OK, NONE, SAME, SAME,
	 NULL, post_len1},
	{"C_SetAttributeValue in a read-only session", setattr_ro,
	 CKR_SESSION_READ_ONLY, CKR_ACTION_PROHIBITED, SAME, SAME},
	{"C_DestroyObject(token key) in a read-only session", destroy_ro,
	 CKR_SESSION_READ_ONLY, CKR_ACTION_PROHIBITED, SAME, SAME},
	{"C_DestroyObject(bad object)", destroy_bad, CKR_OBJECT_HANDLE_INVALID,
	 CKR_SESSION_READ_ONLY, SAME, SAME},
	{"C_GetObjectSize(pulSize NULL)", objsize_null, AB, NONE, SAME, SAME},
	/* signing, verifying, digesting */
	{"C_SignInit(pMechanism NULL)", signinit_null, AB, NONE, SAME, SAME},
	{"C_SignInit(unknown mechanism)", signinit_bad_mech,
	 CKR_MECHANISM_INVALID, NONE, SAME, SAME},
	{"C_SignInit(parameter where none belongs)", signinit_bad_param,
	 CKR_MECHANISM_PARAM_INVALID, NONE, SAME, CKR_OK,
	 "SoftHSM ignores a parameter CKM_SHA256_RSA_PKCS does not take"},
	{"C_SignInit(CKM_ECDSA, RSA key)", signinit_ec_on_rsa,
	 CKR_KEY_TYPE_INCONSISTENT, CKR_MECHANISM_INVALID, SAME, CKR_OK,
	 "SoftHSM starts an ECDSA operation with an RSA key (and fails at "
	 "C_Sign)"},
	{"C_SignInit(bad key)", signinit_bad_key, CKR_KEY_HANDLE_INVALID, NONE,
	 SAME, CKR_OBJECT_HANDLE_INVALID,
	 "SoftHSM's object lookup answers for the key handle; "
	 "CKR_OBJECT_HANDLE_INVALID is not listed for C_SignInit"},
	{"C_SignInit(a public key)", signinit_pub_key, CKR_KEY_TYPE_INCONSISTENT,
	 CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_KEY_HANDLE_INVALID, SAME,
	 "kyso only signs with private keys it knows: a public key's handle "
	 "is not a signing key handle"},
	{"C_Sign without C_SignInit", sign_no_init,
	 CKR_OPERATION_NOT_INITIALIZED, NONE, SAME, SAME},
	{"C_SignFinal without C_SignInit", signfinal_no_init,
	 CKR_OPERATION_NOT_INITIALIZED, NONE, SAME, SAME},
	{"C_SignInit(CKM_SHA256_RSA_PKCS)", signinit, CKR_OK, NONE, SAME,
	 SAME},
	{"C_SignInit during a signature", signinit_again, CKR_OPERATION_ACTIVE,
	 NONE, SAME, SAME},
	{"C_Sign(pulSignatureLen NULL)", sign_null_len, AB, NONE, SAME, SAME},
	{"C_Sign length query (pSignature NULL)", sign_query, CKR_OK, NONE,
	 SAME, SAME, NULL, post_len256},
	{"C_Sign into a buffer too small", sign_short, CKR_BUFFER_TOO_SMALL,
	 NONE, SAME, SAME, NULL, post_len256},
	{"C_Sign after the length protocol", sign, CKR_OK, NONE, SAME, SAME,
	 NULL, post_len256},
	{"C_Sign again: the operation ended", sign,
	 CKR_OPERATION_NOT_INITIALIZED, NONE, SAME, SAME},
	{"C_SignInit(CKM_RSA_PKCS)", signinit_raw, CKR_OK, NONE, SAME, SAME},
	{"C_Sign(CKM_RSA_PKCS, 300 bytes)", sign_too_long, CKR_DATA_LEN_RANGE,
	 NONE, SAME, CKR_GENERAL_ERROR,
	 "SoftHSM lets the RSA operation fail on input longer than k - 11"},
	{"C_Sign after a failed C_Sign: the operation ended", sign,
	 CKR_OPERATION_NOT_INITIALIZED, NONE, SAME, SAME},
	{"C_VerifyInit(bad key)", verifyinit_bad_key, CKR_KEY_HANDLE_INVALID,
	 NONE, SAME, CKR_OBJECT_HANDLE_INVALID,
	 "SoftHSM's object lookup answers for the key handle; "
	 "CKR_OBJECT_HANDLE_INVALID is not listed for C_VerifyInit"},
	{"C_VerifyInit(public key)", verifyinit, CKR_OK, NONE, SAME, SAME},
	{"C_Verify(a wrong signature)", verify_bad_sig, CKR_SIGNATURE_INVALID,
	 NONE, SAME, SAME},
	{"C_VerifyInit(public key) again", verifyinit, CKR_OK, NONE, SAME,
	 SAME},
	{"C_Verify(a 10-byte signature)", verify_short_sig,
	 CKR_SIGNATURE_LEN_RANGE, NONE, SAME, SAME},
	{"C_Verify without C_VerifyInit", verify_no_init,
	 CKR_OPERATION_NOT_INITIALIZED, NONE, SAME, SAME},
	{"C_DecryptInit(pMechanism NULL)", decryptinit_null, AB, NONE, SAME,
	 SAME},
	{"C_Decrypt without C_DecryptInit", decrypt_no_init,
	 CKR_OPERATION_NOT_INITIALIZED, NONE, SAME, SAME},
	{"C_DigestInit(NULL)", digestinit_null, AB, NONE, SAME, SAME},
	{"C_DigestInit(unknown mechanism)", digestinit_bad,
	 CKR_MECHANISM_INVALID, NONE, SAME, SAME},
	{"C_Digest without C_DigestInit", digest_no_init,
	 CKR_OPERATION_NOT_INITIALIZED, NONE, SAME, SAME},
	{"C_DigestInit(CKM_SHA256)", digestinit, CKR_OK, NONE, SAME, SAME},
	{"C_DigestInit during a digest", digestinit_again,
	 CKR_OPERATION_ACTIVE, NONE, SAME, SAME},
	{"C_Digest into a buffer too small", digest_short,
	 CKR_BUFFER_TOO_SMALL, NONE, SAME, SAME, NULL, post_len32},
	{"C_Digest after a buffer too small", digest, CKR_OK, NONE, SAME,
	 SAME, NULL, post_len32},
	{"C_GenerateRandom(NULL, 16)", random_null, AB, NONE, SAME, SAME},
	{"C_GenerateRandom", gen_random, CKR_OK, NONE, SAME, SAME},
	{"C_SeedRandom", seed_random, CKR_RANDOM_SEED_NOT_SUPPORTED, CKR_OK, SAME,
	 SAME},
	{"C_GetFunctionStatus", function_status, CKR_FUNCTION_NOT_PARALLEL,
	 NONE, SAME, SAME},
	{"C_CancelFunction", cancel_function, CKR_FUNCTION_NOT_PARALLEL, NONE,
	 SAME, SAME},
	{"C_EncryptInit(bad session)", encryptinit_bad_session,
	 CKR_SESSION_HANDLE_INVALID, NONE, CKR_FUNCTION_NOT_SUPPORTED, SAME,
	 "kyso offers no encryption: not supported whatever the arguments"},
	/* SO, closing, finalizing */
	{"C_CloseSession(read-only)", close_ro, CKR_OK, NONE, SAME, SAME},
	{"C_GetSessionInfo of a closed session", sessinfo_closed,
	 CKR_SESSION_HANDLE_INVALID, NONE, SAME, SAME},
	{"a read-write session", open_rw, CKR_OK, NONE, SAME, SAME},
	{"C_Login(CKU_SO)", login_so, CKR_OK, NONE, SAME, SAME},
	{"C_OpenSession(read-only) while the SO is logged in",
	 open_ro_with_so, CKR_SESSION_READ_WRITE_SO_EXISTS, NONE, SAME, SAME},
	{"C_Login(CKU_USER) while the SO is logged in", login_user_with_so,
	 CKR_USER_ANOTHER_ALREADY_LOGGED_IN, NONE, SAME, SAME},
	{"C_Logout (SO)", logout_rw, CKR_OK, NONE, SAME, SAME},
	{"C_CloseAllSessions(bad slot)", closeall_bad, CKR_SLOT_ID_INVALID,
	 NONE, SAME, SAME},
	{"C_CloseAllSessions", closeall, CKR_OK, NONE, SAME, SAME},
	{"C_GetSessionInfo after C_CloseAllSessions", sessinfo_after_closeall,
	 CKR_SESSION_HANDLE_INVALID, NONE, SAME, SAME},
	{"C_Finalize(NULL)", finalize, CKR_OK, NONE, SAME, SAME},
	{"C_GetInfo after C_Finalize", post_getinfo, NI, NONE, SAME, SAME},
	{"C_OpenSession after C_Finalize", post_open, NI, NONE, SAME, SAME},
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static CK_RV expected(const struct row *r, int is_kyso)
{
	CK_RV own = is_kyso ? r->kyso : r->ref;

	return own != SAME ? own : r->spec;
}

static int matches(const struct row *r, int is_kyso, CK_RV rv)
{
	CK_RV own = is_kyso ? r->kyso : r->ref;

	if (own != SAME)
		return rv == own;
	return rv == r->spec || (r->alt != NONE && rv == r->alt);
}

static void run(struct ctx *c, int is_kyso, CK_RV *got)
{
	size_t i;

	for (i = 0; i < NROWS; i++) {
		const struct row *r = &rows[i];
		CK_RV rv = r->fn(c);
		int post_ok = rv != expected(r, is_kyso) || r->post == NULL ||
			      r->post(c);

		got[i] = rv;
		CHECK(matches(r, is_kyso, rv) && post_ok,
		      "%s: %s: %s (expected %s%s%s)%s", c->name, r->name,
		      h_rv(rv), h_rv(expected(r, is_kyso)),
		      r->alt != NONE ? " or " : "",
		      r->alt != NONE ? h_rv(r->alt) : "",
		      post_ok ? "" : " [output not as the specification says]");
	}
}

int main(int argc, char **argv)
{
	struct ctx k = {0}, ref = {0};
	static CK_RV got_k[NROWS], got_ref[NROWS];
	size_t i, same = 0, ndiff = 0;

	if (argc != 7)
		h_die("usage: args KYSO_MODULE PIN SO-PIN REF_MODULE REF_PIN "
		      "REF_SO_PIN");
	if (argc > 7 || getenv("KYSO_ARGS_VERBOSE"))
		h_verbose = 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(120);
	k.name = "kyso";
	k.f = h_load(argv[1]);
	k.pin = argv[2];
	k.sopin = argv[3];
	ref.name = "SoftHSM2";
	ref.f = h_load(argv[4]);
	ref.pin = argv[5];
	ref.sopin = argv[6];

	run(&k, 1, got_k);
	run(&ref, 0, got_ref);

	h_note("%zu rows", NROWS);
	for (i = 0; i < NROWS; i++) {
		if (got_k[i] == got_ref[i]) {
			same++;
			continue;
		}
		ndiff++;
		h_note("differs: %s: kyso %s, SoftHSM2 %s%s%s", rows[i].name,
		       h_rv(got_k[i]), h_rv(got_ref[i]),
		       rows[i].why ? " -- " : "",
		       rows[i].why ? rows[i].why : "");
		/* every difference between the two is explained in its row */
		CHECK(rows[i].kyso != SAME || rows[i].ref != SAME ||
			      rows[i].alt != NONE,
		      "%s: kyso and SoftHSM2 differ without a word why",
		      rows[i].name);
	}
	h_note("%zu rows answered alike by kyso and SoftHSM2, %zu differ "
	       "(each documented in its row)",
	       same, ndiff);
	CHECK(h_pin_repeats() == 0,
	      "no PIN command went to the card again after it was refused "
	      "(%u did)",
	      h_pin_repeats());
	return h_done("args");
}
