/* Shared helpers of the hardening tests (see hlib.h). */
#include "config.h"

#include "hlib.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#ifndef CKR_TOKEN_RESOURCE_EXCEEDED
#define CKR_TOKEN_RESOURCE_EXCEEDED 0x201UL /* PKCS#11 2.40 */
#endif

int h_failures;
int h_verbose;

void h_check(int ok, const char *file, int line, const char *fmt, ...)
{
	FILE *out = ok ? stdout : stderr;
	va_list ap;

	if (ok && !h_verbose)
		return;
	if (ok)
		fprintf(out, "ok: ");
	else
		fprintf(out, "FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	fflush(out);
	if (!ok)
		h_failures++;
}

void h_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void h_note(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

int h_done(const char *what)
{
	if (h_failures) {
		fprintf(stderr, "%s: %d check(s) failed\n", what, h_failures);
		return 1;
	}
	printf("%s: PASS\n", what);
	return 0;
}

const char *h_rv(CK_RV rv)
{
	static __thread char buf[32];

	switch (rv) {
#define RV(x)                                                                  \
	case x:                                                                \
		return #x;
		RV(CKR_OK)
		RV(CKR_HOST_MEMORY)
		RV(CKR_SLOT_ID_INVALID)
		RV(CKR_GENERAL_ERROR)
		RV(CKR_FUNCTION_FAILED)
		RV(CKR_ARGUMENTS_BAD)
		RV(CKR_NO_EVENT)
		RV(CKR_CANT_LOCK)
		RV(CKR_ATTRIBUTE_READ_ONLY)
		RV(CKR_ATTRIBUTE_SENSITIVE)
		RV(CKR_ATTRIBUTE_TYPE_INVALID)
		RV(CKR_ATTRIBUTE_VALUE_INVALID)
		RV(CKR_ACTION_PROHIBITED)
		RV(CKR_DATA_INVALID)
		RV(CKR_DATA_LEN_RANGE)
		RV(CKR_DEVICE_ERROR)
		RV(CKR_DEVICE_MEMORY)
		RV(CKR_DEVICE_REMOVED)
		RV(CKR_ENCRYPTED_DATA_INVALID)
		RV(CKR_ENCRYPTED_DATA_LEN_RANGE)
		RV(CKR_FUNCTION_CANCELED)
		RV(CKR_FUNCTION_NOT_PARALLEL)
		RV(CKR_FUNCTION_NOT_SUPPORTED)
		RV(CKR_KEY_HANDLE_INVALID)
		RV(CKR_KEY_SIZE_RANGE)
		RV(CKR_KEY_TYPE_INCONSISTENT)
		RV(CKR_KEY_FUNCTION_NOT_PERMITTED)
		RV(CKR_MECHANISM_INVALID)
		RV(CKR_MECHANISM_PARAM_INVALID)
		RV(CKR_OBJECT_HANDLE_INVALID)
		RV(CKR_OPERATION_ACTIVE)
		RV(CKR_OPERATION_NOT_INITIALIZED)
		RV(CKR_PIN_INCORRECT)
		RV(CKR_PIN_INVALID)
		RV(CKR_PIN_LEN_RANGE)
		RV(CKR_PIN_LOCKED)
		RV(CKR_SESSION_CLOSED)
		RV(CKR_SESSION_COUNT)
		RV(CKR_SESSION_HANDLE_INVALID)
		RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED)
		RV(CKR_SESSION_READ_ONLY)
		RV(CKR_SESSION_EXISTS)
		RV(CKR_SESSION_READ_ONLY_EXISTS)
		RV(CKR_SESSION_READ_WRITE_SO_EXISTS)
		RV(CKR_SIGNATURE_INVALID)
		RV(CKR_SIGNATURE_LEN_RANGE)
		RV(CKR_TEMPLATE_INCOMPLETE)
		RV(CKR_TEMPLATE_INCONSISTENT)
		RV(CKR_TOKEN_NOT_PRESENT)
		RV(CKR_TOKEN_NOT_RECOGNIZED)
		RV(CKR_TOKEN_WRITE_PROTECTED)
		RV(CKR_USER_ALREADY_LOGGED_IN)
		RV(CKR_USER_NOT_LOGGED_IN)
		RV(CKR_USER_PIN_NOT_INITIALIZED)
		RV(CKR_USER_TYPE_INVALID)
		RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
		RV(CKR_USER_TOO_MANY_TYPES)
		RV(CKR_RANDOM_SEED_NOT_SUPPORTED)
		RV(CKR_RANDOM_NO_RNG)
		RV(CKR_BUFFER_TOO_SMALL)
		RV(CKR_CRYPTOKI_NOT_INITIALIZED)
		RV(CKR_CRYPTOKI_ALREADY_INITIALIZED)
		RV(CKR_FUNCTION_REJECTED)
#undef RV
	}
	snprintf(buf, sizeof(buf), "0x%lx", (unsigned long)rv);
	return buf;
}

CK_FUNCTION_LIST_PTR h_load(const char *path)
{
	CK_RV (*gfl)(CK_FUNCTION_LIST_PTR_PTR);
	CK_FUNCTION_LIST_PTR f = NULL;
	void *lib;

	if (path == NULL)
		path = getenv("KYSO_MODULE");
	if (path == NULL)
		h_die("KYSO_MODULE not set");
	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL)
		h_die("dlopen %s: %s", path, dlerror());
	*(void **)&gfl = dlsym(lib, "C_GetFunctionList");
	if (gfl == NULL || gfl(&f) != CKR_OK || f == NULL)
		h_die("C_GetFunctionList of %s", path);
	return f;
}

CK_SLOT_ID h_token_slot(CK_FUNCTION_LIST_PTR f, int timeout_s)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n;
	double end = h_now_ms() + timeout_s * 1000.0;
	CK_RV rv;

	for (;;) {
		n = 16;
		rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
		if (rv == CKR_OK && n > 0) {
			n = 16;
			rv = f->C_GetSlotList(CK_TRUE, slots, &n);
			if (rv == CKR_OK && n > 0)
				return slots[0];
		}
		if (h_now_ms() > end)
			h_die("no slot with a token after %d s (%s)", timeout_s,
			      h_rv(rv));
		h_sleep_ms(50);
	}
}

CK_OBJECT_HANDLE h_find(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
			CK_OBJECT_CLASS cls, uint8_t id)
{
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_ID, &id, 1},
	};
	CK_OBJECT_HANDLE h = 0;
	CK_ULONG n = 0;

	if (f->C_FindObjectsInit(s, t, 2) != CKR_OK)
		return 0;
	if (f->C_FindObjects(s, &h, 1, &n) != CKR_OK || n != 1)
		h = 0;
	f->C_FindObjectsFinal(s);
	return h;
}

const struct h_key h_key_9a = {"9a", 0x01, CKM_SHA256_RSA_PKCS, 1, 0};
const struct h_key h_key_9c = {"9c", 0x02, CKM_ECDSA_SHA256, 1, 1};
const struct h_key h_key_9e = {"9e", 0x04, CKM_ECDSA_SHA384, 0, 0};

static EVP_PKEY *prov_key(const char *slot)
{
	static struct {
		char slot[4];
		EVP_PKEY *k;
	} cache[8];
	static size_t ncache;
	const char *dir = getenv("KYSO_PROV");
	char path[4096];
	EVP_PKEY *k;
	FILE *fp;
	size_t i;

	for (i = 0; i < ncache; i++)
		if (strcmp(cache[i].slot, slot) == 0)
			return cache[i].k;
	if (dir == NULL)
		h_die("KYSO_PROV (the piv-provision.sh directory) not set");
	snprintf(path, sizeof(path), "%s/pub-%s.pem", dir, slot);
	fp = fopen(path, "r");
	if (fp == NULL)
		h_die("%s: %s", path, strerror(errno));
	k = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
	fclose(fp);
	if (k == NULL)
		h_die("%s: not a public key", path);
	/* filled before any thread starts: the tests load keys up front */
	if (ncache < sizeof(cache) / sizeof(cache[0])) {
		snprintf(cache[ncache].slot, sizeof(cache[0].slot), "%s", slot);
		cache[ncache++].k = k;
	}
	return k;
}

int h_verify(const struct h_key *k, const uint8_t *msg, size_t msglen,
	     const uint8_t *sig, size_t siglen)
{
	EVP_PKEY *pk = prov_key(k->slot);
	const EVP_MD *md = k->mech == CKM_ECDSA_SHA384 ? EVP_sha384()
						       : EVP_sha256();
	unsigned char *der = NULL;
	EVP_MD_CTX *ctx;
	int derlen = 0, ok = 0;

	if (EVP_PKEY_is_a(pk, "EC")) {
		/* PKCS#11 ECDSA is r||s; OpenSSL verifies DER */
		ECDSA_SIG *es = ECDSA_SIG_new();
		size_t half = siglen / 2;

		if (es == NULL || siglen == 0 || siglen % 2 ||
		    !ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)half, NULL),
				    BN_bin2bn(sig + half, (int)half, NULL))) {
			ECDSA_SIG_free(es);
			return 0;
		}
		derlen = i2d_ECDSA_SIG(es, &der);
		ECDSA_SIG_free(es);
		if (derlen <= 0)
			return 0;
		sig = der;
		siglen = (size_t)derlen;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, md, NULL, pk) == 1)
		ok = EVP_DigestVerify(ctx, sig, siglen, msg, msglen) == 1;
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	return ok;
}

CK_RV h_sign_init(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
		  const struct h_key *k, const char *pin)
{
	CK_MECHANISM m = {k->mech, NULL, 0};
	CK_OBJECT_HANDLE key = h_find(f, s, CKO_PRIVATE_KEY, k->id);
	CK_RV rv;

	if (key == 0)
		return CKR_KEY_HANDLE_INVALID;
	rv = f->C_SignInit(s, &m, key);
	if (rv == CKR_OK && k->always_auth)
		rv = f->C_Login(s, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)pin,
				pin ? strlen(pin) : 0);
	return rv;
}

CK_RV h_sign(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
	     const struct h_key *k, const char *pin, const uint8_t *msg,
	     size_t msglen, int *ok)
{
	uint8_t sig[1024];
	CK_ULONG siglen = sizeof(sig);
	CK_RV rv;

	*ok = 0;
	rv = h_sign_init(f, s, k, pin);
	if (rv != CKR_OK)
		return rv;
	rv = f->C_Sign(s, (CK_BYTE_PTR)msg, msglen, sig, &siglen);
	if (rv == CKR_OK)
		*ok = h_verify(k, msg, msglen, sig, siglen);
	return rv;
}

CK_RV h_open_login(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, const char *pin,
		   CK_SESSION_HANDLE *s)
{
	CK_RV rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				    NULL, NULL, s);

	if (rv != CKR_OK || pin == NULL)
		return rv;
	rv = f->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	if (rv == CKR_USER_ALREADY_LOGGED_IN)
		rv = CKR_OK;
	return rv;
}

int h_card_ctl(const char *fmt, ...)
{
	const char *ctl = getenv("CARD_CTL");
	char args[256], cmd[1024];
	va_list ap;
	int r;

	if (ctl == NULL)
		h_die("CARD_CTL (tests/card-ctl) not set");
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "%s %s", ctl, args);
	fflush(stdout);
	r = system(cmd);
	if (h_verbose)
		h_note("card-ctl %s: %d", args, r);
	return r;
}

/* The APDU log, re-read each time (the card appends to it). */
static char **log_read(size_t *n)
{
	const char *path = getenv("KYSO_VCARD_LOG");
	char **v = NULL, *line = NULL;
	size_t cap = 0, cnt = 0;
	FILE *fp;

	*n = 0;
	if (path == NULL || (fp = fopen(path, "r")) == NULL)
		h_die("cannot read KYSO_VCARD_LOG");
	while (getline(&line, &cap, fp) > 0) {
		v = realloc(v, (cnt + 1) * sizeof(*v));
		if (v == NULL)
			h_die("out of memory");
		v[cnt++] = line;
		line = NULL;
		cap = 0;
	}
	free(line);
	fclose(fp);
	*n = cnt;
	return v;
}

static void log_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

size_t h_log_lines(void)
{
	size_t n;
	char **v = log_read(&n);

	log_free(v, n);
	return n;
}

unsigned h_log_count(size_t from, uint8_t ins, int with_data)
{
	size_t n, i;
	char **v = log_read(&n);
	unsigned cnt = 0;

	for (i = from; i < n; i++) {
		unsigned cla, in, lc = 0;
		size_t len;

		if (strncmp(v[i], "> ", 2) != 0)
			continue;
		len = strcspn(v[i] + 2, "\r\n") / 2;
		if (sscanf(v[i] + 2, "%2x%2x", &cla, &in) != 2 || in != ins)
			continue;
		if (len > 5)
			sscanf(v[i] + 2 + 8, "%2x", &lc);
		if (!with_data || (len > 5 && lc > 0))
			cnt++;
	}
	log_free(v, n);
	return cnt;
}

unsigned h_pin_repeats(void)
{
	size_t n, i, j, nfailed = 0;
	char **v = log_read(&n);
	char *failed[256];
	unsigned repeats = 0;

	for (i = 0; i < n; i++) {
		const char *cmd = v[i] + 2;
		unsigned cla, ins, lc = 0;
		size_t len;
		int ok = 0;

		if (strncmp(v[i], "> ", 2) != 0)
			continue;
		len = strcspn(cmd, "\r\n");
		if (sscanf(cmd, "%2x%2x", &cla, &ins) != 2 ||
		    (ins != 0x20 && ins != 0x24 && ins != 0x2C) || len <= 10)
			continue;
		sscanf(cmd + 8, "%2x", &lc);
		if (lc == 0)
			continue;
		for (j = 0; j < nfailed; j++)
			if (strncmp(failed[j], cmd, len) == 0 &&
			    failed[j][len] == '\0')
				repeats++;
		/* the answer: the next "<" line before the next command */
		for (j = i + 1; j < n && strncmp(v[j], "> ", 2) != 0; j++) {
			if (strncmp(v[j], "< ", 2) == 0) {
				ok = strncmp(v[j] + 2, "9000", 4) == 0 &&
				     strcspn(v[j] + 2, "\r\n") == 4;
				break;
			}
		}
		if (ok && ins != 0x20) {
			/* the PIN itself changed: what was wrong may be
			 * right now */
			for (j = 0; j < nfailed; j++)
				free(failed[j]);
			nfailed = 0;
		}
		if (!ok && nfailed < sizeof(failed) / sizeof(failed[0]))
			failed[nfailed++] = strndup(cmd, len);
	}
	for (j = 0; j < nfailed; j++)
		free(failed[j]);
	log_free(v, n);
	return repeats;
}

long h_stat(const char *name)
{
	const char *path = getenv("KYSO_VCARD_STATS");
	char line[256];
	size_t l = strlen(name);
	long v = -1;
	FILE *fp;

	if (path == NULL || (fp = fopen(path, "r")) == NULL)
		h_die("cannot read KYSO_VCARD_STATS");
	while (fgets(line, sizeof(line), fp))
		if (strncmp(line, name, l) == 0 && line[l] == '=')
			v = strtol(line + l + 1, NULL, 10);
	fclose(fp);
	return v;
}

/* PKCS#11 2.40, section 5: the return values each function lists. Every
 * function may also return CKR_OK, CKR_GENERAL_ERROR, CKR_HOST_MEMORY and
 * CKR_FUNCTION_FAILED (5.1.1); functions on a session CKR_SESSION_HANDLE_
 * INVALID, CKR_DEVICE_REMOVED and CKR_SESSION_CLOSED (5.1.2); functions
 * that use a token CKR_DEVICE_MEMORY, CKR_DEVICE_ERROR and
 * CKR_DEVICE_REMOVED, and those without a session CKR_TOKEN_NOT_PRESENT
 * (5.1.3). */
static const struct {
	const char *func;
	int session, token;
	CK_RV rv[16];
} allowed[] = {
	{"C_GetSlotList", 0, 0, {CKR_ARGUMENTS_BAD, CKR_BUFFER_TOO_SMALL,
				 CKR_CRYPTOKI_NOT_INITIALIZED}},
	{"C_GetSlotInfo", 0, 0, {CKR_ARGUMENTS_BAD, CKR_CRYPTOKI_NOT_INITIALIZED,
				 CKR_DEVICE_ERROR, CKR_SLOT_ID_INVALID}},
	{"C_GetTokenInfo", 0, 1, {CKR_ARGUMENTS_BAD,
				  CKR_CRYPTOKI_NOT_INITIALIZED,
				  CKR_SLOT_ID_INVALID,
				  CKR_TOKEN_NOT_RECOGNIZED}},
	{"C_WaitForSlotEvent", 0, 0, {CKR_ARGUMENTS_BAD,
				      CKR_CRYPTOKI_NOT_INITIALIZED,
				      CKR_NO_EVENT}},
	{"C_OpenSession", 0, 1, {CKR_ARGUMENTS_BAD, CKR_CRYPTOKI_NOT_INITIALIZED,
				 CKR_SESSION_COUNT,
				 CKR_SESSION_PARALLEL_NOT_SUPPORTED,
				 CKR_SESSION_READ_WRITE_SO_EXISTS,
				 CKR_SLOT_ID_INVALID, CKR_TOKEN_NOT_RECOGNIZED,
				 CKR_TOKEN_WRITE_PROTECTED}},
	{"C_CloseSession", 1, 1, {CKR_CRYPTOKI_NOT_INITIALIZED}},
	{"C_GetSessionInfo", 1, 1, {CKR_ARGUMENTS_BAD,
				    CKR_CRYPTOKI_NOT_INITIALIZED}},
	{"C_Login", 1, 1, {CKR_ARGUMENTS_BAD, CKR_CRYPTOKI_NOT_INITIALIZED,
			   CKR_FUNCTION_CANCELED, CKR_OPERATION_NOT_INITIALIZED,
			   CKR_PIN_INCORRECT, CKR_PIN_LOCKED,
			   CKR_SESSION_READ_ONLY_EXISTS,
			   CKR_USER_ALREADY_LOGGED_IN,
			   CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
			   CKR_USER_PIN_NOT_INITIALIZED,
			   CKR_USER_TOO_MANY_TYPES, CKR_USER_TYPE_INVALID}},
	{"C_Logout", 1, 1, {CKR_CRYPTOKI_NOT_INITIALIZED,
			    CKR_USER_NOT_LOGGED_IN}},
	{"C_FindObjectsInit", 1, 1, {CKR_ARGUMENTS_BAD,
				     CKR_ATTRIBUTE_TYPE_INVALID,
				     CKR_ATTRIBUTE_VALUE_INVALID,
				     CKR_CRYPTOKI_NOT_INITIALIZED,
				     CKR_OPERATION_ACTIVE}},
	{"C_FindObjects", 1, 1, {CKR_ARGUMENTS_BAD,
				 CKR_CRYPTOKI_NOT_INITIALIZED,
				 CKR_OPERATION_NOT_INITIALIZED}},
	{"C_FindObjectsFinal", 1, 1, {CKR_CRYPTOKI_NOT_INITIALIZED,
				      CKR_OPERATION_NOT_INITIALIZED}},
	{"C_GetAttributeValue", 1, 1, {CKR_ARGUMENTS_BAD,
				       CKR_ATTRIBUTE_SENSITIVE,
				       CKR_ATTRIBUTE_TYPE_INVALID,
				       CKR_BUFFER_TOO_SMALL,
				       CKR_CRYPTOKI_NOT_INITIALIZED,
				       CKR_OBJECT_HANDLE_INVALID}},
	{"C_SignInit", 1, 1, {CKR_ARGUMENTS_BAD, CKR_CRYPTOKI_NOT_INITIALIZED,
			      CKR_FUNCTION_CANCELED,
			      CKR_KEY_FUNCTION_NOT_PERMITTED,
			      CKR_KEY_HANDLE_INVALID, CKR_KEY_SIZE_RANGE,
			      CKR_KEY_TYPE_INCONSISTENT, CKR_MECHANISM_INVALID,
			      CKR_MECHANISM_PARAM_INVALID, CKR_OPERATION_ACTIVE,
			      CKR_PIN_EXPIRED, CKR_USER_NOT_LOGGED_IN}},
	{"C_Sign", 1, 1, {CKR_ARGUMENTS_BAD, CKR_BUFFER_TOO_SMALL,
			  CKR_CRYPTOKI_NOT_INITIALIZED, CKR_DATA_INVALID,
			  CKR_DATA_LEN_RANGE, CKR_FUNCTION_CANCELED,
			  CKR_OPERATION_NOT_INITIALIZED, CKR_USER_NOT_LOGGED_IN,
			  CKR_FUNCTION_REJECTED, CKR_TOKEN_RESOURCE_EXCEEDED}},
	{"C_Decrypt", 1, 1, {CKR_ARGUMENTS_BAD, CKR_BUFFER_TOO_SMALL,
			     CKR_CRYPTOKI_NOT_INITIALIZED,
			     CKR_ENCRYPTED_DATA_INVALID,
			     CKR_ENCRYPTED_DATA_LEN_RANGE,
			     CKR_FUNCTION_CANCELED,
			     CKR_OPERATION_NOT_INITIALIZED,
			     CKR_USER_NOT_LOGGED_IN}},
	{"C_SetPIN", 1, 1, {CKR_ARGUMENTS_BAD, CKR_CRYPTOKI_NOT_INITIALIZED,
			    CKR_FUNCTION_CANCELED, CKR_PIN_INCORRECT,
			    CKR_PIN_INVALID, CKR_PIN_LEN_RANGE, CKR_PIN_LOCKED,
			    CKR_SESSION_READ_ONLY, CKR_TOKEN_WRITE_PROTECTED}},
	{"C_InitPIN", 1, 1, {CKR_ARGUMENTS_BAD, CKR_CRYPTOKI_NOT_INITIALIZED,
			     CKR_FUNCTION_CANCELED, CKR_PIN_INVALID,
			     CKR_PIN_LEN_RANGE, CKR_SESSION_READ_ONLY,
			     CKR_TOKEN_WRITE_PROTECTED, CKR_USER_NOT_LOGGED_IN}},
	{"C_Finalize", 0, 0, {CKR_ARGUMENTS_BAD, CKR_CRYPTOKI_NOT_INITIALIZED}},
};

int h_rv_allowed(const char *func, CK_RV rv)
{
	size_t i, j;

	if (rv == CKR_OK || rv == CKR_GENERAL_ERROR || rv == CKR_HOST_MEMORY ||
	    rv == CKR_FUNCTION_FAILED)
		return 1;
	for (i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		if (strcmp(allowed[i].func, func) != 0)
			continue;
		if (allowed[i].session &&
		    (rv == CKR_SESSION_HANDLE_INVALID ||
		     rv == CKR_DEVICE_REMOVED || rv == CKR_SESSION_CLOSED))
			return 1;
		if (allowed[i].token &&
		    (rv == CKR_DEVICE_MEMORY || rv == CKR_DEVICE_ERROR ||
		     rv == CKR_DEVICE_REMOVED ||
		     (!allowed[i].session && rv == CKR_TOKEN_NOT_PRESENT)))
			return 1;
		for (j = 0; j < 16 && allowed[i].rv[j]; j++)
			if (allowed[i].rv[j] == rv)
				return 1;
		return 0;
	}
	h_die("no return value list for %s", func);
}

/* Return values the module gives on purpose that PKCS#11 2.40 does not
 * list for the function: CKR_PIN_INVALID from C_Login when the card refuses
 * the PIN's format (6A80 to VERIFY; it tells the user that the characters,
 * not the PIN, are wrong, as CKR_PIN_LEN_RANGE does for the length). Every
 * other card answer to a login or a private-key operation is mapped to a
 * listed code by the module (CKR_DEVICE_ERROR for 6982, 6A82, 6D00 to
 * VERIFY; 63Cx, 6983, 6A82, 6D00 to GENERAL AUTHENTICATE). Anything else
 * not listed fails. */
static const struct {
	const char *func;
	CK_RV rv;
} known[] = {
	{"C_Login", CKR_PIN_INVALID},
};

int h_rv_known(const char *func, CK_RV rv)
{
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(known[i].func, func) == 0 && known[i].rv == rv)
			return 1;
	return 0;
}

double h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

void h_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
