/* Many threads at once on one token: each opens its own sessions and, in
 * a loop, lists every object, reads attributes, digests, and signs with the
 * RSA key (behind the PIN, logged in once for the token) and the EC key
 * that needs no PIN; every signature is checked against the provisioned
 * key. Then C_Finalize while another thread is blocked in
 * C_WaitForSlotEvent: the waiter must come back with
 * CKR_CRYPTOKI_NOT_INITIALIZED.
 *
 *   threads [--threads N] [--sessions N] [--iters N] [--app-locks]
 *     (defaults 8, 4, 20; --app-locks: the application's mutex callbacks
 *      instead of CKF_OS_LOCKING_OK)
 *
 * Meant to run under helgrind as well (threads.sh). Loads KYSO_MODULE; run
 * inside tests/with-card with a provisioned PIV card (KYSO_PROV). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "hlib.h"

#define PIN "123456"

static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot;
static int nthreads = 8, nsessions = 4, iters = 20;
static CK_ULONG nobjects;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long n_sign, n_find, n_attr, n_digest;

struct worker {
	int id;
	int failures;
	char first[256];
};

static void fail(struct worker *w, const char *what, CK_RV rv)
{
	if (w->failures++ == 0)
		snprintf(w->first, sizeof(w->first), "%s: %s", what, h_rv(rv));
}

static void *work(void *arg)
{
	struct worker *w = arg;
	CK_SESSION_HANDLE s[16];
	uint8_t msg[64];
	unsigned long signs = 0, finds = 0, attrs = 0, digests = 0;
	int i, j, ok;
	CK_RV rv;

	for (j = 0; j < nsessions; j++) {
		rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL,
				      &s[j]);
		if (rv != CKR_OK) {
			fail(w, "C_OpenSession", rv);
			return NULL;
		}
	}
	for (i = 0; i < iters; i++) {
		for (j = 0; j < nsessions; j++) {
			CK_OBJECT_HANDLE objs[64];
			CK_ULONG n = 0, k;
			const struct h_key *key =
				(i + j + w->id) % 2 ? &h_key_9a : &h_key_9e;

			rv = f->C_FindObjectsInit(s[j], NULL, 0);
			if (rv == CKR_OK)
				rv = f->C_FindObjects(s[j], objs, 64, &n);
			if (rv == CKR_OK)
				rv = f->C_FindObjectsFinal(s[j]);
			if (rv != CKR_OK || n != nobjects)
				fail(w, "find all objects", rv);
			finds++;
			for (k = 0; k < n; k++) {
				char label[64];
				CK_ATTRIBUTE a = {CKA_LABEL, label,
						  sizeof(label)};

				rv = f->C_GetAttributeValue(s[j], objs[k], &a,
							    1);
				if (rv != CKR_OK)
					fail(w, "C_GetAttributeValue", rv);
				attrs++;
			}
			{
				CK_MECHANISM m = {CKM_SHA256, NULL, 0};
				uint8_t d[32], want[32];
				CK_ULONG dl = sizeof(d);

				memset(msg, 0, sizeof(msg));
				snprintf((char *)msg, sizeof(msg),
					 "thread %d iter %d session %d", w->id,
					 i, j);
				rv = f->C_DigestInit(s[j], &m);
				if (rv == CKR_OK)
					rv = f->C_Digest(s[j], msg, sizeof(msg),
							 d, &dl);
				EVP_Digest(msg, sizeof(msg), want, NULL,
					   EVP_sha256(), NULL);
				if (rv != CKR_OK || dl != 32 ||
				    memcmp(d, want, 32) != 0)
					fail(w, "C_Digest", rv);
				digests++;
			}
			rv = h_sign(f, s[j], key, PIN, msg, sizeof(msg), &ok);
			if (rv != CKR_OK || !ok)
				fail(w, key == &h_key_9a ? "sign 9A" : "sign 9E",
				     rv);
			signs++;
		}
	}
	for (j = 0; j < nsessions; j++)
		f->C_CloseSession(s[j]);
	pthread_mutex_lock(&mu);
	n_sign += signs;
	n_find += finds;
	n_attr += attrs;
	n_digest += digests;
	pthread_mutex_unlock(&mu);
	return NULL;
}

/* Application mutex callbacks, for the CreateMutex & co. path. */
static CK_RV app_create(CK_VOID_PTR_PTR m)
{
	pthread_mutex_t *p = malloc(sizeof(*p));

	if (p == NULL)
		return CKR_HOST_MEMORY;
	pthread_mutex_init(p, NULL);
	*m = p;
	return CKR_OK;
}

static CK_RV app_destroy(CK_VOID_PTR m)
{
	pthread_mutex_destroy(m);
	free(m);
	return CKR_OK;
}

static CK_RV app_lock(CK_VOID_PTR m)
{
	return pthread_mutex_lock(m) ? CKR_GENERAL_ERROR : CKR_OK;
}

static CK_RV app_unlock(CK_VOID_PTR m)
{
	return pthread_mutex_unlock(m) ? CKR_MUTEX_NOT_LOCKED : CKR_OK;
}

struct waiter {
	CK_RV rv;
	double at;
};

static void *wait_thread(void *arg)
{
	struct waiter *wt = arg;
	CK_SLOT_ID ev;

	wt->rv = f->C_WaitForSlotEvent(0, &ev, NULL);
	wt->at = h_now_ms();
	return NULL;
}

static void on_alarm(int sig)
{
	static const char msg[] = "FAIL: threads hung (deadlock?)\n";
	ssize_t r = write(2, msg, sizeof(msg) - 1);

	(void)r;
	(void)sig;
	_exit(1);
}

int main(int argc, char **argv)
{
	CK_C_INITIALIZE_ARGS args = {0};
	struct worker *w;
	pthread_t *t, wt;
	struct waiter wait = {0};
	CK_SESSION_HANDLE s0;
	CK_SLOT_ID ev;
	double t0, fin;
	int app_locks = 0, i, total = 0;
	CK_RV rv;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			nthreads = atoi(argv[++i]);
		else if (strcmp(argv[i], "--sessions") == 0 && i + 1 < argc)
			nsessions = atoi(argv[++i]);
		else if (strcmp(argv[i], "--iters") == 0 && i + 1 < argc)
			iters = atoi(argv[++i]);
		else if (strcmp(argv[i], "--app-locks") == 0)
			app_locks = 1;
		else
			h_die("usage: threads [--threads N] [--sessions N] "
			      "[--iters N] [--app-locks]");
	}
	if (nthreads < 1 || nsessions < 1 || nsessions > 16 || iters < 1)
		h_die("bad counts");
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	alarm(1800);
	f = h_load(NULL);
	if (app_locks) {
		args.CreateMutex = app_create;
		args.DestroyMutex = app_destroy;
		args.LockMutex = app_lock;
		args.UnlockMutex = app_unlock;
	} else {
		args.flags = CKF_OS_LOCKING_OK;
	}
	rv = f->C_Initialize(&args);
	if (rv != CKR_OK)
		h_die("C_Initialize: %s", h_rv(rv));
	slot = h_token_slot(f, 10);
	/* the login is the token's: every session of every thread has it */
	rv = h_open_login(f, slot, PIN, &s0);
	if (rv != CKR_OK)
		h_die("login: %s", h_rv(rv));
	if (f->C_FindObjectsInit(s0, NULL, 0) != CKR_OK)
		h_die("C_FindObjectsInit");
	{
		CK_OBJECT_HANDLE objs[64];

		f->C_FindObjects(s0, objs, 64, &nobjects);
		f->C_FindObjectsFinal(s0);
	}
	/* load the public keys before the threads share them */
	{
		int ok;

		h_sign(f, s0, &h_key_9a, PIN, (const uint8_t *)"x", 1, &ok);
		h_sign(f, s0, &h_key_9e, PIN, (const uint8_t *)"x", 1, &ok);
	}

	t = calloc((size_t)nthreads, sizeof(*t));
	w = calloc((size_t)nthreads, sizeof(*w));
	if (t == NULL || w == NULL)
		h_die("out of memory");
	t0 = h_now_ms();
	for (i = 0; i < nthreads; i++) {
		w[i].id = i;
		if (pthread_create(&t[i], NULL, work, &w[i]) != 0)
			h_die("pthread_create");
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		CHECK(w[i].failures == 0, "thread %d: %d failures (first: %s)",
		      i, w[i].failures, w[i].first);
		total += w[i].failures;
	}
	h_note("%d threads x %d sessions x %d rounds in %.0f ms: %lu "
	       "signatures (all verified), %lu object searches (%lu objects "
	       "each), %lu attribute reads, %lu digests, %d failures",
	       nthreads, nsessions, iters, h_now_ms() - t0, n_sign, n_find,
	       (unsigned long)nobjects, n_attr, n_digest, total);

	/* C_Finalize while a thread waits for a slot event */
	while (f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL) == CKR_OK)
		;
	if (pthread_create(&wt, NULL, wait_thread, &wait) != 0)
		h_die("pthread_create");
	h_sleep_ms(300);
	fin = h_now_ms();
	rv = f->C_Finalize(NULL);
	CHECK(rv == CKR_OK, "C_Finalize with a waiter: %s", h_rv(rv));
	pthread_join(wt, NULL);
	CHECK(wait.rv == CKR_CRYPTOKI_NOT_INITIALIZED,
	      "the waiter returns CKR_CRYPTOKI_NOT_INITIALIZED (%s, %.0f ms "
	      "after C_Finalize began)",
	      h_rv(wait.rv), wait.at - fin);
	/* and the module can start again */
	rv = f->C_Initialize(&args);
	CHECK(rv == CKR_OK, "C_Initialize again: %s", h_rv(rv));
	rv = f->C_Finalize(NULL);
	CHECK(rv == CKR_OK, "C_Finalize again: %s", h_rv(rv));
	free(t);
	free(w);
	CHECK(h_pin_repeats() == 0,
	      "no PIN command went to the card again after it was refused "
	      "(%u did)",
	      h_pin_repeats());
	return h_done(app_locks ? "threads --app-locks" : "threads");
}
