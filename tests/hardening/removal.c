/* The card pulled while the module signs, and the reader itself going away.
 *
 *   removal [--loops N]    (default 100 of each)
 *     timed:   a thread pulls the card (tests/card-ctl remove) while the
 *              main thread starts C_Sign after a delay that walks across
 *              the pull (0 to 1.8 times what card-ctl takes to reach the
 *              card; the card takes 150 ms per private-key operation), so
 *              it lands before, during or after the signature;
 *     mid-APDU: the card vanishes on receiving GENERAL AUTHENTICATE
 *              (card-ctl fault drop ins 87: the host sees an empty answer,
 *              as vpcd gives one, and then an empty reader).
 *   Each round: no crash, no hang (alarm); C_Sign returns a value PKCS#11
 *   lists, and a signature it returns verifies against the provisioned key;
 *   the session is invalid once the card is out; the token is absent; after
 *   card-ctl insert a new session logs in and signs.
 *
 *   removal --unplug        the reader goes away with sessions open: the
 *     command in KYSO_UNPLUG_CMD stops the private pcscd. Every call must
 *     return (no hang) with a listed value, the slot disappears, and the
 *     module finalizes and initializes again without a daemon.
 *
 * Loads KYSO_MODULE; run inside tests/with-card with a provisioned PIV card
 * (KYSO_PROV, CARD_CTL; see removal.sh). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hlib.h"

#define PIN	  "123456"
#define PRIVOP_MS 150

static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot;
static const char *phase = "";

static void on_alarm(int sig)
{
	static const char msg[] = "FAIL: hung (60 s) in ";
	ssize_t r;

	(void)sig;
	r = write(2, msg, sizeof(msg) - 1);
	r = write(2, phase, strlen(phase));
	r = write(2, "\n", 1);
	(void)r;
	_exit(1);
}

struct signer {
	CK_SESSION_HANDLE s;
	CK_RV rv;
	uint8_t sig[512];
	CK_ULONG siglen;
};

static const uint8_t msg[] = "pulled while signing";

static void *sign_thread(void *arg)
{
	struct signer *sg = arg;

	sg->siglen = sizeof(sg->sig);
	sg->rv = f->C_Sign(sg->s, (CK_BYTE_PTR)msg, sizeof(msg), sg->sig,
			   &sg->siglen);
	return NULL;
}

/* A session that signs with 9A, ready for C_Sign. */
static CK_SESSION_HANDLE ready_session(void)
{
	CK_SESSION_HANDLE s;
	CK_RV rv;

	slot = h_token_slot(f, 10);
	rv = h_open_login(f, slot, PIN, &s);
	if (rv == CKR_OK)
		rv = h_sign_init(f, s, &h_key_9a, PIN);
	if (rv != CKR_OK)
		h_die("%s: preparing a signature: %s", phase, h_rv(rv));
	return s;
}

/* Once the card is out: the session is dead and the token gone. pcscd
 * sees a dropped card within its polling period; wait for it. */
static void check_gone(CK_SESSION_HANDLE s, int round)
{
	CK_SESSION_INFO si;
	CK_TOKEN_INFO ti;
	CK_RV rv = CKR_OK;
	double end = h_now_ms() + 5000;

	while (h_now_ms() < end) {
		rv = f->C_GetSessionInfo(s, &si);
		if (rv != CKR_OK)
			break;
		h_sleep_ms(20);
	}
	CHECK(rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_DEVICE_REMOVED ||
		      rv == CKR_SESSION_CLOSED,
	      "%s %d: the session is invalid after the removal (%s)", phase,
	      round, h_rv(rv));
	rv = f->C_GetTokenInfo(slot, &ti);
	CHECK(rv == CKR_TOKEN_NOT_PRESENT,
	      "%s %d: no token while the card is out (%s)", phase, round,
	      h_rv(rv));
	/* and the dead session stays dead, whatever is called on it */
	{
		CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};

		rv = f->C_SignInit(s, &m, 1);
		CHECK(rv == CKR_SESSION_HANDLE_INVALID,
		      "%s %d: C_SignInit on the old session: %s", phase,
		      round, h_rv(rv));
	}
}

static void check_back(int round)
{
	static const uint8_t m2[] = "after reinsertion";
	CK_SESSION_HANDLE s;
	int ok = 0;
	CK_RV rv;

	slot = h_token_slot(f, 10);
	rv = h_open_login(f, slot, PIN, &s);
	if (rv == CKR_OK)
		rv = h_sign(f, s, &h_key_9a, PIN, m2, sizeof(m2), &ok);
	CHECK(rv == CKR_OK && ok,
	      "%s %d: after reinsertion a new session signs (%s)", phase,
	      round, h_rv(rv));
	f->C_CloseSession(s);
}

static unsigned out_ok, out_err, out_other;
static CK_RV err_rv[4];
static unsigned err_n[4];

static void tally(CK_RV rv)
{
	int i;

	for (i = 0; i < 4; i++) {
		if (err_n[i] == 0 || err_rv[i] == rv) {
			err_rv[i] = rv;
			err_n[i]++;
			return;
		}
	}
}

static void tally_note(void)
{
	int i;

	for (i = 0; i < 4 && err_n[i]; i++)
		h_note("  C_Sign %s: %u", h_rv(err_rv[i]), err_n[i]);
	memset(err_n, 0, sizeof(err_n));
}

static void outcome(struct signer *sg, int round)
{
	if (sg->rv == CKR_OK) {
		CHECK(h_verify(&h_key_9a, msg, sizeof(msg), sg->sig,
			       sg->siglen),
		      "%s %d: the signature returned verifies", phase, round);
		out_ok++;
	} else if (h_rv_allowed("C_Sign", sg->rv)) {
		out_err++;
		tally(sg->rv);
	} else {
		CHECK(0, "%s %d: C_Sign returned %s, not a listed value",
		      phase, round, h_rv(sg->rv));
		out_other++;
	}
}

static void *remove_thread(void *arg)
{
	int *r = arg;

	*r = h_card_ctl("remove");
	return NULL;
}

/* The pull is started first (card-ctl takes some tens of milliseconds to
 * reach the card) and C_Sign after a delay that walks over that window
 * and the private-key operation: some rounds sign before the card goes,
 * some find it going or gone. */
static void timed(int loops)
{
	double t0, lat;
	int i;

	phase = "timed removal";
	/* how long card-ctl takes to reach the card: the pull lands about
	 * that long after it is started, so the delays spread around it */
	t0 = h_now_ms();
	if (h_card_ctl("delay privop %d", PRIVOP_MS) != 0)
		h_die("card-ctl delay");
	lat = h_now_ms() - t0;
	out_ok = out_err = out_other = 0;
	for (i = 0; i < loops; i++) {
		struct signer sg;
		pthread_t t;
		long delay = (long)((i % 10) * lat / 5);
		int r = -1;

		alarm(60);
		memset(&sg, 0, sizeof(sg));
		sg.s = ready_session();
		if (pthread_create(&t, NULL, remove_thread, &r) != 0)
			h_die("pthread_create");
		h_sleep_ms(delay);
		sign_thread(&sg);
		pthread_join(t, NULL);
		if (r != 0)
			h_die("card-ctl remove");
		outcome(&sg, i);
		check_gone(sg.s, i);
		if (h_card_ctl("insert") != 0)
			h_die("card-ctl insert");
		check_back(i);
		alarm(0);
	}
	h_card_ctl("delay privop 0");
	h_note("timed removal: %d rounds (card-ctl reaches the card in %.0f "
	       "ms): %u signatures (all verified), %u errors, %u unlisted",
	       loops, lat, out_ok, out_err, out_other);
	tally_note();
}

static void mid_apdu(int loops)
{
	int i;

	phase = "dropped mid-sign";
	out_ok = out_err = out_other = 0;
	for (i = 0; i < loops; i++) {
		struct signer sg;

		alarm(60);
		memset(&sg, 0, sizeof(sg));
		sg.s = ready_session();
		if (h_card_ctl("fault drop ins 87") != 0)
			h_die("card-ctl fault");
		sign_thread(&sg);
		CHECK(sg.rv != CKR_OK,
		      "%s %d: no signature from a card that never answered",
		      phase, i);
		outcome(&sg, i);
		check_gone(sg.s, i);
		if (h_card_ctl("insert") != 0)
			h_die("card-ctl insert");
		check_back(i);
		alarm(0);
	}
	h_note("dropped mid-sign: %d rounds: %u signatures, %u errors, %u "
	       "unlisted",
	       loops, out_ok, out_err, out_other);
	tally_note();
}

struct waiter {
	CK_RV rv;
	CK_SLOT_ID slot;
	double at;
	int done;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;

	w->rv = f->C_WaitForSlotEvent(0, &w->slot, NULL);
	w->at = h_now_ms();
	w->done = 1;
	return NULL;
}

static void unplug(void)
{
	struct waiter w = {0};
	pthread_t wt;
	double killed;
	const char *cmd = getenv("KYSO_UNPLUG_CMD");
	CK_SESSION_HANDLE s1, s2;
	CK_SESSION_INFO si;
	CK_SLOT_INFO sli;
	CK_SLOT_ID ev;
	CK_ULONG n;
	uint8_t sig[512];
	CK_ULONG siglen = sizeof(sig);
	double end;
	int ok = 0;
	CK_RV rv;

	phase = "reader unplugged";
	if (cmd == NULL)
		h_die("KYSO_UNPLUG_CMD not set");
	alarm(60);
	slot = h_token_slot(f, 10);
	if (h_open_login(f, slot, PIN, &s1) != CKR_OK ||
	    h_open_login(f, slot, NULL, &s2) != CKR_OK)
		h_die("sessions before the unplug");
	rv = h_sign(f, s1, &h_key_9a, PIN, msg, sizeof(msg), &ok);
	CHECK(rv == CKR_OK && ok, "a signature before the unplug (%s)",
	      h_rv(rv));
	rv = h_sign_init(f, s2, &h_key_9e, NULL);
	CHECK(rv == CKR_OK, "C_SignInit before the unplug (%s)", h_rv(rv));

	/* a thread waits for slot events (earlier ones taken first) */
	while (f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL) == CKR_OK)
		;
	if (pthread_create(&wt, NULL, wait_thread, &w) != 0)
		h_die("pthread_create");
	h_sleep_ms(200);

	if (system(cmd) != 0)
		h_die("'%s' failed", cmd);
	killed = h_now_ms();
	h_note("pcscd stopped; sessions 2, one with a signature pending, a "
	       "thread in C_WaitForSlotEvent");
	pthread_join(wt, NULL);
	CHECK(w.rv == CKR_OK && w.slot == slot,
	      "the waiting thread sees the reader go (%s, slot %lu, %.0f ms)",
	      h_rv(w.rv), (unsigned long)w.slot, w.at - killed);

	rv = f->C_Sign(s2, (CK_BYTE_PTR)msg, sizeof(msg), sig, &siglen);
	CHECK(rv != CKR_OK && h_rv_allowed("C_Sign", rv),
	      "C_Sign with no reader: %s", h_rv(rv));
	/* the size query of the two-call protocol refreshes the list */
	end = h_now_ms() + 5000;
	for (;;) {
		n = 0;
		rv = f->C_GetSlotList(CK_FALSE, NULL, &n);
		if (rv != CKR_OK || n == 0 || h_now_ms() > end)
			break;
		h_sleep_ms(50);
	}
	CHECK(rv == CKR_OK && n == 0,
	      "the reader is gone from the slot list (%s, %lu slots)",
	      h_rv(rv), (unsigned long)n);
	rv = f->C_GetSlotInfo(slot, &sli);
	CHECK(rv == CKR_SLOT_ID_INVALID, "C_GetSlotInfo of the old slot: %s",
	      h_rv(rv));
	rv = f->C_GetSessionInfo(s1, &si);
	CHECK(rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_DEVICE_REMOVED,
	      "the sessions are invalid (%s)", h_rv(rv));
	rv = f->C_Login(s1, CKU_USER, (CK_UTF8CHAR_PTR)PIN, 6);
	CHECK(rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_DEVICE_REMOVED,
	      "C_Login on an old session: %s", h_rv(rv));
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s1);
	CHECK(rv == CKR_SLOT_ID_INVALID, "C_OpenSession on the old slot: %s",
	      h_rv(rv));
	rv = f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL);
	CHECK(rv == CKR_OK || rv == CKR_NO_EVENT,
	      "C_WaitForSlotEvent(DONT_BLOCK) with no daemon: %s", h_rv(rv));
	rv = f->C_CloseAllSessions(slot);
	CHECK(rv == CKR_SLOT_ID_INVALID || rv == CKR_OK,
	      "C_CloseAllSessions of the old slot: %s", h_rv(rv));
	rv = f->C_Finalize(NULL);
	CHECK(rv == CKR_OK, "C_Finalize with no daemon: %s", h_rv(rv));
	rv = f->C_Initialize(NULL);
	CHECK(rv == CKR_OK, "C_Initialize with no daemon: %s", h_rv(rv));
	n = 8;
	rv = f->C_GetSlotList(CK_FALSE, NULL, &n);
	CHECK(rv == CKR_OK && n == 0, "no slots without a daemon (%s, %lu)",
	      h_rv(rv), (unsigned long)n);
	alarm(0);
}

int main(int argc, char **argv)
{
	CK_C_INITIALIZE_ARGS args = {0};
	int loops = 100, unplugging = 0, i;
	CK_RV rv;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--loops") == 0 && i + 1 < argc)
			loops = atoi(argv[++i]);
		else if (strcmp(argv[i], "--unplug") == 0)
			unplugging = 1;
		else if (strcmp(argv[i], "-v") == 0)
			h_verbose = 1;
		else
			h_die("usage: removal [--loops N] [--unplug] [-v]");
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	f = h_load(NULL);
	args.flags = CKF_OS_LOCKING_OK;
	rv = f->C_Initialize(&args);
	if (rv != CKR_OK)
		h_die("C_Initialize: %s", h_rv(rv));
	if (unplugging) {
		unplug();
	} else {
		timed(loops);
		mid_apdu(loops);
	}
	rv = f->C_Finalize(NULL);
	CHECK(rv == CKR_OK, "C_Finalize: %s", h_rv(rv));
	CHECK(h_pin_repeats() == 0,
	      "no PIN command went to the card again after it was refused "
	      "(%u did)",
	      h_pin_repeats());
	return h_done(unplugging ? "removal --unplug" : "removal");
}
