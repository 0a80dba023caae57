/* Integration check run inside tests/with-card with a provisioned PIV card
 * (tests/integration/piv-kyso.sh): a module (KYSO_MODULE) logs in and signs
 * with the 9A key, the card is pulled mid-session with tests/card-ctl, the
 * old sessions fail cleanly, and after reinsertion they stay dead while a
 * new session must log in again before it can sign. The two signatures and
 * the message go to OUTDIR (argv[1]) for openssl to verify. One line per
 * check; exit 0 when every check holds. */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kyso/pkcs11.h"

static int failures, passes;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("FAIL: ");                                      \
			failures++;                                            \
		} else {                                                       \
			printf("PASS: ");                                      \
			passes++;                                              \
		}                                                              \
		printf(__VA_ARGS__);                                           \
		putchar('\n');                                                 \
		fflush(stdout);                                                \
	} while (0)

static const char msg[] = "kyso signs, the card is pulled, kyso signs again\n";
static const CK_BYTE key_id[] = {0x01}; /* PIV 9A */

static CK_FUNCTION_LIST_PTR f;

static void card_ctl(const char *what)
{
	char cmd[512];
	const char *ctl = getenv("CARD_CTL");

	snprintf(cmd, sizeof(cmd), "%s %s", ctl ? ctl : "tests/card-ctl", what);
	fflush(stdout);
	if (system(cmd) != 0) {
		printf("FAIL: '%s' failed\n", cmd);
		exit(1);
	}
}

static void on_alarm(int sig)
{
	static const char m[] = "FAIL: piv-removal timed out\n";
	ssize_t r = write(1, m, sizeof(m) - 1);

	(void)sig;
	(void)r;
	_exit(1);
}

static int is_removed_rv(CK_RV rv)
{
	return rv == CKR_DEVICE_REMOVED || rv == CKR_SESSION_HANDLE_INVALID;
}

/* The private key with CKA_ID 01; *n gets how many were found. */
static CK_RV find_key(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *key, CK_ULONG *n)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_ID, (void *)key_id, sizeof(key_id)},
	};
	CK_RV rv, rv2;

	*n = 0;
	*key = CK_INVALID_HANDLE;
	rv = f->C_FindObjectsInit(s, t, 2);
	if (rv != CKR_OK)
		return rv;
	rv = f->C_FindObjects(s, key, 1, n);
	rv2 = f->C_FindObjectsFinal(s);
	return rv != CKR_OK ? rv : rv2;
}

static CK_RV sign(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_BYTE *sig,
		  CK_ULONG *siglen)
{
	CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
	CK_RV rv = f->C_SignInit(s, &m, key);

	if (rv != CKR_OK)
		return rv;
	return f->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg) - 1, sig, siglen);
}

static int save(const char *dir, const char *name, const void *p, size_t n)
{
	char path[1024];
	FILE *fp;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "wb");
	if (!fp)
		return 0;
	ok = fwrite(p, 1, n, fp) == n;
	return fclose(fp) == 0 && ok;
}

int main(int argc, char **argv)
{
	const char *path = getenv("KYSO_MODULE");
	const char *pin = getenv("PIV_PIN") ? getenv("PIV_PIN") : "123456";
	CK_MECHANISM mech = {CKM_SHA256_RSA_PKCS, NULL, 0};
	CK_RV (*gfl)(CK_FUNCTION_LIST_PTR_PTR);
	CK_SLOT_ID slots[4], slot;
	CK_ULONG n = 4, siglen, found;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_SESSION_INFO sinfo;
	CK_SESSION_HANDLE a = 0, b = 0, c = 0;
	CK_OBJECT_HANDLE key = 0, newkey = 0;
	CK_BYTE sig[512];
	char label[33];
	CK_RV rv;
	void *lib;
	int i;

	if (argc != 2) {
		fprintf(stderr, "usage: piv-removal OUTDIR\n");
		return 2;
	}
	if (!path) {
		printf("FAIL: KYSO_MODULE not set\n");
		return 1;
	}
	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		printf("FAIL: dlopen %s: %s\n", path, dlerror());
		return 1;
	}
	gfl =
	    (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(lib, "C_GetFunctionList");
	if (!gfl || gfl(&f) != CKR_OK) {
		printf("FAIL: C_GetFunctionList\n");
		return 1;
	}
	signal(SIGALRM, on_alarm);
	alarm(60);

	CHECK(f->C_Initialize(NULL) == CKR_OK, "removal: C_Initialize");
	rv = f->C_GetSlotList(CK_TRUE, slots, &n);
	CHECK(rv == CKR_OK && n >= 1, "removal: a slot with a token (%lu)",
	      (unsigned long)n);
	if (rv != CKR_OK || n < 1)
		return 1;
	slot = slots[0];
	rv = f->C_GetTokenInfo(slot, &ti);
	CHECK(rv == CKR_OK, "removal: token info before the pull (0x%lx)",
	      (unsigned long)rv);
	memcpy(label, ti.label, 32);
	label[32] = '\0';

	/* Session a: logged in, signs once, then has a signature started
	 * when the card goes; session b: idle. */
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &a);
	CHECK(rv == CKR_OK, "removal: session opened (0x%lx)",
	      (unsigned long)rv);
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &b);
	CHECK(rv == CKR_OK, "removal: second session opened (0x%lx)",
	      (unsigned long)rv);
	rv = f->C_Login(a, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	CHECK(rv == CKR_OK, "removal: C_Login with the PIN (0x%lx)",
	      (unsigned long)rv);
	rv = find_key(a, &key, &found);
	CHECK(rv == CKR_OK && found == 1, "removal: the 9A private key found");
	siglen = sizeof(sig);
	rv = sign(a, key, sig, &siglen);
	CHECK(rv == CKR_OK && siglen == 256,
	      "removal: signs before the pull (0x%lx, %lu bytes)",
	      (unsigned long)rv, (unsigned long)siglen);
	CHECK(rv == CKR_OK && save(argv[1], "sig-before", sig, siglen) &&
		  save(argv[1], "msg", msg, sizeof(msg) - 1),
	      "removal: signature before the pull saved");
	rv = f->C_SignInit(a, &mech, key);
	CHECK(rv == CKR_OK, "removal: C_SignInit before the pull (0x%lx)",
	      (unsigned long)rv);

	card_ctl("remove");
	siglen = sizeof(sig);
	rv = f->C_Sign(a, (CK_BYTE_PTR)msg, sizeof(msg) - 1, sig, &siglen);
	CHECK(is_removed_rv(rv),
	      "removal: C_Sign of an operation begun before the pull gives "
	      "CKR_DEVICE_REMOVED or CKR_SESSION_HANDLE_INVALID (0x%lx)",
	      (unsigned long)rv);
	rv = f->C_SignInit(b, &mech, key);
	CHECK(is_removed_rv(rv),
	      "removal: C_SignInit on the idle session after the pull gives "
	      "CKR_DEVICE_REMOVED or CKR_SESSION_HANDLE_INVALID (0x%lx)",
	      (unsigned long)rv);
	rv = f->C_SignInit(a, &mech, key);
	CHECK(is_removed_rv(rv),
	      "removal: C_SignInit on the signing session after the pull "
	      "gives CKR_DEVICE_REMOVED or CKR_SESSION_HANDLE_INVALID (0x%lx)",
	      (unsigned long)rv);
	rv = f->C_GetSlotInfo(slot, &si);
	CHECK(rv == CKR_OK && !(si.flags & CKF_TOKEN_PRESENT),
	      "removal: the slot shows no token (0x%lx)", (unsigned long)rv);
	rv = f->C_GetTokenInfo(slot, &ti);
	CHECK(rv == CKR_TOKEN_NOT_PRESENT,
	      "removal: token info is CKR_TOKEN_NOT_PRESENT (0x%lx)",
	      (unsigned long)rv);

	card_ctl("insert");
	/* card-ctl returns once pcscd sees the card; the module reads the
	 * reader state on each call. Bounded wait all the same. */
	for (i = 0; i < 100; i++) {
		if (f->C_GetSlotInfo(slot, &si) == CKR_OK &&
		    (si.flags & CKF_TOKEN_PRESENT))
			break;
		usleep(50000);
	}
	CHECK(i < 100, "removal: the slot shows the token again");
	rv = f->C_GetTokenInfo(slot, &ti);
	CHECK(rv == CKR_OK && memcmp(ti.label, label, 32) == 0,
	      "removal: the reinserted card is bound again, same label "
	      "(0x%lx)",
	      (unsigned long)rv);

	siglen = sizeof(sig);
	rv = f->C_Sign(a, (CK_BYTE_PTR)msg, sizeof(msg) - 1, sig, &siglen);
	CHECK(rv == CKR_SESSION_HANDLE_INVALID,
	      "removal: C_Sign on the old session after reinsertion is "
	      "CKR_SESSION_HANDLE_INVALID (0x%lx)",
	      (unsigned long)rv);
	rv = f->C_SignInit(a, &mech, key);
	CHECK(rv == CKR_SESSION_HANDLE_INVALID,
	      "removal: C_SignInit on the old session after reinsertion is "
	      "CKR_SESSION_HANDLE_INVALID (0x%lx)",
	      (unsigned long)rv);
	rv = f->C_GetSessionInfo(b, &sinfo);
	CHECK(rv == CKR_SESSION_HANDLE_INVALID,
	      "removal: the idle old session stays dead (0x%lx)",
	      (unsigned long)rv);

	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &c);
	CHECK(rv == CKR_OK,
	      "removal: new session on the reinserted card "
	      "(0x%lx)",
	      (unsigned long)rv);
	rv = f->C_GetSessionInfo(c, &sinfo);
	CHECK(rv == CKR_OK && sinfo.state == CKS_RO_PUBLIC_SESSION,
	      "removal: the new session is not logged in (state %lu)",
	      (unsigned long)sinfo.state);
	rv = find_key(c, &newkey, &found);
	CHECK(rv == CKR_OK && found == 0,
	      "removal: the private key is hidden until the new login");
	rv = f->C_SignInit(c, &mech, key);
	CHECK(rv == CKR_KEY_HANDLE_INVALID,
	      "removal: the old card's key handle names nothing now (0x%lx)",
	      (unsigned long)rv);
	rv = f->C_Login(c, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	CHECK(rv == CKR_OK,
	      "removal: C_Login again after reinsertion "
	      "(0x%lx)",
	      (unsigned long)rv);
	rv = find_key(c, &newkey, &found);
	CHECK(rv == CKR_OK && found == 1, "removal: the 9A key found again");
	siglen = sizeof(sig);
	rv = sign(c, newkey, sig, &siglen);
	CHECK(rv == CKR_OK && siglen == 256,
	      "removal: signs after reinsertion (0x%lx)", (unsigned long)rv);
	CHECK(rv == CKR_OK && save(argv[1], "sig-after", sig, siglen),
	      "removal: signature after reinsertion saved");

	rv = f->C_Logout(c);
	CHECK(rv == CKR_OK, "removal: C_Logout (0x%lx)", (unsigned long)rv);
	rv = f->C_Login(c, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
	CHECK(rv == CKR_OK, "removal: C_Login before a quick swap (0x%lx)",
	      (unsigned long)rv);

	/* Pulled and put back with no call in between: the module must
	 * still see that the card (and its PIN status) went away. */
	card_ctl("remove");
	card_ctl("insert");
	rv = f->C_SignInit(c, &mech, newkey);
	CHECK(is_removed_rv(rv),
	      "removal: after a quick pull and reinsert the logged-in session "
	      "is gone (0x%lx)",
	      (unsigned long)rv);
	rv = f->C_CloseSession(c);
	CHECK(rv == CKR_SESSION_HANDLE_INVALID,
	      "removal: closing it says CKR_SESSION_HANDLE_INVALID (0x%lx)",
	      (unsigned long)rv);
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &c);
	CHECK(rv == CKR_OK, "removal: a session after the quick swap (0x%lx)",
	      (unsigned long)rv);
	rv = f->C_GetSessionInfo(c, &sinfo);
	CHECK(rv == CKR_OK && sinfo.state == CKS_RO_PUBLIC_SESSION,
	      "removal: not logged in after the quick swap (state %lu)",
	      (unsigned long)sinfo.state);
	rv = f->C_CloseSession(c);
	CHECK(rv == CKR_OK, "removal: C_CloseSession (0x%lx)",
	      (unsigned long)rv);
	CHECK(f->C_Finalize(NULL) == CKR_OK, "removal: C_Finalize");
	dlclose(lib);
	printf("piv-removal: %d passed, %d failed\n", passes, failures);
	return failures ? 1 : 0;
}
