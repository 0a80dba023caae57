/* fork() with the module in use. The parent initializes, logs in and signs,
 * then forks:
 *   - a child that calls the module without C_Initialize gets
 *     CKR_CRYPTOKI_NOT_INITIALIZED and sends nothing to the card (the
 *     parent's card connection is not its to use);
 *   - a child that initializes again sees the token, logs in and signs
 *     (the signature verifies), while the parent keeps signing on its own
 *     session at the same time;
 *   - afterwards the parent's session still works.
 * Loads KYSO_MODULE; run inside tests/with-card with a provisioned PIV card
 * (KYSO_PROV). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hlib.h"

#define PIN "123456"

static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot;

static int child_uninitialized(CK_SESSION_HANDLE parent_s)
{
	static const uint8_t msg[] = "child";
	uint8_t sig[512];
	CK_ULONG siglen = sizeof(sig);
	CK_INFO info;
	CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
	long before = h_stat("apdus");
	CK_RV rv;

	rv = f->C_GetInfo(&info);
	CHECK(rv == CKR_CRYPTOKI_NOT_INITIALIZED,
	      "child: C_GetInfo before C_Initialize: %s", h_rv(rv));
	rv = f->C_SignInit(parent_s, &m, 1);
	CHECK(rv == CKR_CRYPTOKI_NOT_INITIALIZED,
	      "child: C_SignInit on the parent's session: %s", h_rv(rv));
	rv = f->C_Sign(parent_s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &siglen);
	CHECK(rv == CKR_CRYPTOKI_NOT_INITIALIZED,
	      "child: C_Sign on the parent's session: %s", h_rv(rv));
	rv = f->C_Finalize(NULL);
	CHECK(rv == CKR_CRYPTOKI_NOT_INITIALIZED,
	      "child: C_Finalize before C_Initialize: %s", h_rv(rv));
	CHECK(h_stat("apdus") == before,
	      "child: nothing went to the card (%ld APDUs)",
	      h_stat("apdus") - before);
	return h_failures ? 1 : 0;
}

static int child_reinit(CK_SESSION_HANDLE parent_s)
{
	static const uint8_t msg[] = "signed by the child";
	CK_SESSION_INFO si;
	CK_SESSION_HANDLE s;
	int i, ok;
	CK_RV rv;

	rv = f->C_Initialize(NULL);
	CHECK(rv == CKR_OK, "child: C_Initialize: %s", h_rv(rv));
	if (rv != CKR_OK)
		return 1;
	rv = f->C_GetSessionInfo(parent_s, &si);
	CHECK(rv == CKR_SESSION_HANDLE_INVALID,
	      "child: the parent's session is not the child's: %s", h_rv(rv));
	slot = h_token_slot(f, 10);
	rv = h_open_login(f, slot, PIN, &s);
	CHECK(rv == CKR_OK, "child: open and log in: %s", h_rv(rv));
	for (i = 0; rv == CKR_OK && i < 10; i++) {
		rv = h_sign(f, s, &h_key_9a, PIN, msg, sizeof(msg), &ok);
		CHECK(rv == CKR_OK && ok, "child: signature %d: %s%s", i,
		      h_rv(rv), rv == CKR_OK && !ok ? " (does not verify)" : "");
	}
	rv = h_sign(f, s, &h_key_9e, PIN, msg, sizeof(msg), &ok);
	CHECK(rv == CKR_OK && ok, "child: EC signature: %s", h_rv(rv));
	rv = f->C_Finalize(NULL);
	CHECK(rv == CKR_OK, "child: C_Finalize: %s", h_rv(rv));
	return h_failures ? 1 : 0;
}

static void wait_child(pid_t pid, const char *what)
{
	int st = 0;

	if (waitpid(pid, &st, 0) != pid)
		h_die("waitpid");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "%s exited cleanly (status 0x%x)", what, st);
}

int main(void)
{
	static const uint8_t msg[] = "signed by the parent";
	CK_SESSION_HANDLE s;
	pid_t pid;
	int i, ok, good = 0;
	CK_RV rv;

	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(300);
	f = h_load(NULL);
	rv = f->C_Initialize(NULL);
	if (rv != CKR_OK)
		h_die("C_Initialize: %s", h_rv(rv));
	slot = h_token_slot(f, 10);
	rv = h_open_login(f, slot, PIN, &s);
	if (rv != CKR_OK)
		h_die("parent: open and log in: %s", h_rv(rv));
	rv = h_sign(f, s, &h_key_9a, PIN, msg, sizeof(msg), &ok);
	CHECK(rv == CKR_OK && ok, "parent: a signature before fork (%s)",
	      h_rv(rv));
	fflush(NULL);

	pid = fork();
	if (pid < 0)
		h_die("fork");
	if (pid == 0)
		_exit(child_uninitialized(s));
	wait_child(pid, "the child that did not initialize");

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		h_die("fork");
	if (pid == 0)
		_exit(child_reinit(s));
	/* the parent signs while the child does */
	for (i = 0; i < 10; i++) {
		rv = h_sign(f, s, &h_key_9a, PIN, msg, sizeof(msg), &ok);
		CHECK(rv == CKR_OK && ok,
		      "parent: signature %d while the child works: %s", i,
		      h_rv(rv));
		good += rv == CKR_OK && ok;
	}
	wait_child(pid, "the child that initialized and signed");

	rv = h_sign(f, s, &h_key_9a, PIN, msg, sizeof(msg), &ok);
	CHECK(rv == CKR_OK && ok, "parent: its session works after the "
				  "children (%s)",
	      h_rv(rv));
	rv = f->C_Finalize(NULL);
	CHECK(rv == CKR_OK, "parent: C_Finalize: %s", h_rv(rv));
	h_note("parent signed %d times while a re-initialized child signed 11 "
	       "times",
	       good);
	CHECK(h_pin_repeats() == 0,
	      "no PIN command went to the card again after it was refused "
	      "(%u did)",
	      h_pin_repeats());
	return h_done("fork");
}
