/* Integration check run inside tests/with-card: a module (KYSO_MODULE) sees
 * the virtual reader, follows the card being pulled and reinserted through
 * tests/card-ctl, and reports both through C_WaitForSlotEvent. Sessions from
 * before the pull stay dead. Exit 0 when every check holds. */
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kyso/pkcs11.h"

static int failures;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);   \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			failures++;                                            \
		} else {                                                       \
			printf("ok: ");                                        \
			printf(__VA_ARGS__);                                   \
			putchar('\n');                                         \
		}                                                              \
	} while (0)

static void card_ctl(const char *what)
{
	char cmd[512];
	const char *ctl = getenv("CARD_CTL");

	snprintf(cmd, sizeof(cmd), "%s %s", ctl ? ctl : "tests/card-ctl",
		 what);
	if (system(cmd) != 0) {
		fprintf(stderr, "FAIL: '%s' failed\n", cmd);
		exit(1);
	}
}

static void on_alarm(int sig)
{
	static const char msg[] = "FAIL: timed out waiting for a slot event\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);
	(void)r;
	_exit(1);
}

int main(void)
{
	const char *path = getenv("KYSO_MODULE");
	int expect_token = getenv("EXPECT_TOKEN") != NULL;
	CK_FUNCTION_LIST_PTR f;
	CK_RV (*gfl)(CK_FUNCTION_LIST_PTR_PTR);
	CK_SLOT_ID slots[4], slot, ev;
	CK_ULONG n = 4;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE sess = 0;
	CK_SESSION_INFO sinfo;
	CK_RV rv;
	void *lib;

	if (!path) {
		fprintf(stderr, "FAIL: KYSO_MODULE not set\n");
		return 1;
	}
	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "FAIL: dlopen %s: %s\n", path, dlerror());
		return 1;
	}
	gfl = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(lib, "C_GetFunctionList");
	if (!gfl || gfl(&f) != CKR_OK) {
		fprintf(stderr, "FAIL: C_GetFunctionList\n");
		return 1;
	}
	signal(SIGALRM, on_alarm);
	alarm(60);

	CHECK(f->C_Initialize(NULL) == CKR_OK, "C_Initialize");
	CHECK(f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK && n >= 1,
	      "a slot with a card (%lu)", (unsigned long)n);
	if (n < 1)
		return 1;
	slot = slots[0];
	CHECK(f->C_GetSlotInfo(slot, &si) == CKR_OK &&
		      (si.flags & CKF_TOKEN_PRESENT),
	      "slot %lu has a token", (unsigned long)slot);
	rv = f->C_GetTokenInfo(slot, &ti);
	if (expect_token) {
		CHECK(rv == CKR_OK, "token info (rv 0x%lx)", (unsigned long)rv);
		CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL,
				       &sess) == CKR_OK,
		      "session opened");
	} else {
		CHECK(rv == CKR_TOKEN_NOT_RECOGNIZED,
		      "an unknown card is CKR_TOKEN_NOT_RECOGNIZED (0x%lx)",
		      (unsigned long)rv);
	}
	CHECK(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL) == CKR_NO_EVENT,
	      "no event before anything happens");

	card_ctl("remove");
	rv = f->C_WaitForSlotEvent(0, &ev, NULL);
	CHECK(rv == CKR_OK && ev == slot, "removal reported on slot %lu",
	      (unsigned long)ev);
	CHECK(f->C_GetSlotInfo(slot, &si) == CKR_OK &&
		      !(si.flags & CKF_TOKEN_PRESENT),
	      "slot shows no token after removal");
	CHECK(f->C_GetTokenInfo(slot, &ti) == CKR_TOKEN_NOT_PRESENT,
	      "token info says not present");
	n = 4;
	CHECK(f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK && n == 0,
	      "no slot with a token");
	if (sess)
		CHECK(f->C_GetSessionInfo(sess, &sinfo) ==
			      CKR_SESSION_HANDLE_INVALID,
		      "the old session is dead");

	card_ctl("insert");
	rv = f->C_WaitForSlotEvent(0, &ev, NULL);
	CHECK(rv == CKR_OK && ev == slot, "insertion reported on slot %lu",
	      (unsigned long)ev);
	CHECK(f->C_GetSlotInfo(slot, &si) == CKR_OK &&
		      (si.flags & CKF_TOKEN_PRESENT),
	      "slot shows the token again");
	rv = f->C_GetTokenInfo(slot, &ti);
	CHECK(expect_token ? rv == CKR_OK : rv == CKR_TOKEN_NOT_RECOGNIZED,
	      "the reinserted card is bound again (0x%lx)", (unsigned long)rv);
	if (sess)
		CHECK(f->C_GetSessionInfo(sess, &sinfo) ==
			      CKR_SESSION_HANDLE_INVALID,
		      "sessions from before the pull stay dead");
	CHECK(f->C_Finalize(NULL) == CKR_OK, "C_Finalize");
	dlclose(lib);
	printf("%d failed\n", failures);
	return failures ? 1 : 0;
}
