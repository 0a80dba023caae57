/* The PKCS#11 face over a fake reader back-end: initialization rules, slot
 * list protocol, slot ids never reused, hot-plugged readers, slot events,
 * C_Finalize waking a waiter, fork, and the interface entry points. */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kyso/pkcs11.h"
#include "reader/reader.h"
#include "token/slots.h"

CK_RV C_GetInterfaceList(CK_INTERFACE_PTR, CK_ULONG_PTR);
CK_RV C_GetInterface(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR,
		     CK_FLAGS);

/* --- a fake back-end: readers and cards the test sets ------------------- */

#define MAXR 4
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *names[MAXR];
	int present[MAXR];
	uint32_t events[MAXR];
	unsigned version, seen_version;
	int cancelled;
	int connects;
} fk = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static const uint8_t atr[] = {0x3B, 0x80, 0x80, 0x01, 0x01};

static void fk_set(int i, const char *name, int present)
{
	pthread_mutex_lock(&fk.mu);
	free(fk.names[i]);
	fk.names[i] = name ? strdup(name) : NULL;
	if (fk.present[i] != present)
		fk.events[i]++;
	fk.present[i] = present;
	fk.version++;
	pthread_cond_broadcast(&fk.cv);
	pthread_mutex_unlock(&fk.mu);
}

static CK_RV fk_open(void **ctx)
{
	*ctx = &fk;
	return CKR_OK;
}

static void fk_close(void *ctx)
{
}

static CK_RV fk_list(void *ctx, char ***names, size_t *n)
{
	char **v = calloc(MAXR, sizeof(*v));
	size_t k = 0;
	int i;

	pthread_mutex_lock(&fk.mu);
	for (i = 0; i < MAXR; i++)
		if (fk.names[i])
			v[k++] = strdup(fk.names[i]);
	fk.seen_version = fk.version;
	pthread_mutex_unlock(&fk.mu);
	*names = v;
	*n = k;
	return CKR_OK;
}

static CK_RV fk_status(void *ctx, const char *reader,
		       struct kyso_reader_state *st)
{
	int i;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&fk.mu);
	for (i = 0; i < MAXR; i++) {
		if (fk.names[i] && strcmp(fk.names[i], reader) == 0) {
			st->present = fk.present[i];
			st->events = fk.events[i];
			memcpy(st->atr, atr, sizeof(atr));
			st->atrlen = sizeof(atr);
		}
	}
	pthread_mutex_unlock(&fk.mu);
	return CKR_OK;
}

static CK_RV fk_wait(void *ctx, long timeout_ms)
{
	CK_RV rv = CKR_OK;

	pthread_mutex_lock(&fk.mu);
	while (!fk.cancelled && fk.version == fk.seen_version)
		pthread_cond_wait(&fk.cv, &fk.mu);
	if (fk.cancelled)
		rv = CKR_FUNCTION_CANCELED;
	fk.cancelled = 0;
	pthread_mutex_unlock(&fk.mu);
	return rv;
}

static void fk_cancel(void *ctx)
{
	pthread_mutex_lock(&fk.mu);
	fk.cancelled = 1;
	pthread_cond_broadcast(&fk.cv);
	pthread_mutex_unlock(&fk.mu);
}

/* Every card is one no driver knows: it refuses every SELECT. */
static CK_RV fk_connect(void *ctx, const char *reader, struct kyso_card **out)
{
	static const struct kyso_script_step steps[] = {
		{"*", "6A82"}, {"*", "6A82"}, {"*", "6A82"}, {"*", "6A82"},
		{"*", "6A82"}, {"*", "6A82"}, {"*", "6A82"}, {"*", "6A82"},
	};

	fk.connects++;
	*out = kyso_script_card(atr, sizeof(atr), steps, 8);
	return *out ? CKR_OK : CKR_HOST_MEMORY;
}

static const struct kyso_readers_ops fake = {
	fk_open, fk_close, fk_list, fk_status, fk_wait, fk_cancel, fk_connect,
};

static void setup(void)
{
	int i;

	for (i = 0; i < MAXR; i++)
		fk_set(i, NULL, 0);
	fk.cancelled = 0;
	fk.connects = 0;
	kyso_readers_set_backend(&fake);
}

static void teardown(void)
{
	C_Finalize(NULL);
	kyso_readers_set_backend(NULL);
}

/* --- application mutex callbacks that count their use ----------------- */
static int locks;
static CK_RV m_create(CK_VOID_PTR_PTR m)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	*m = &mu;
	return CKR_OK;
}
static CK_RV m_destroy(CK_VOID_PTR m)
{
	return CKR_OK;
}
static CK_RV m_lock(CK_VOID_PTR m)
{
	locks++;
	pthread_mutex_lock(m);
	return CKR_OK;
}
static CK_RV m_unlock(CK_VOID_PTR m)
{
	pthread_mutex_unlock(m);
	return CKR_OK;
}
static CK_RV m_fail_create(CK_VOID_PTR_PTR m)
{
	return CKR_HOST_MEMORY;
}

START_TEST(calls_before_initialize_say_not_initialized)
{
	CK_INFO info;
	CK_ULONG n = 0;
	CK_SESSION_HANDLE h;

	ck_assert_uint_eq(C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	ck_assert_uint_eq(C_GetSlotList(CK_FALSE, NULL, &n),
			  CKR_CRYPTOKI_NOT_INITIALIZED);
	ck_assert_uint_eq(C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h),
			  CKR_CRYPTOKI_NOT_INITIALIZED);
	ck_assert_uint_eq(C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
	ck_assert_uint_eq(C_EncryptInit(1, NULL, 0),
			  CKR_CRYPTOKI_NOT_INITIALIZED);
}
END_TEST

START_TEST(initialize_twice_is_refused)
{
	ck_assert_uint_eq(C_Initialize(NULL), CKR_OK);
	ck_assert_uint_eq(C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	ck_assert_uint_eq(C_Finalize(NULL), CKR_OK);
	ck_assert_uint_eq(C_Initialize(NULL), CKR_OK);
}
END_TEST

START_TEST(initialize_checks_its_arguments)
{
	CK_C_INITIALIZE_ARGS a;

	memset(&a, 0, sizeof(a));
	a.pReserved = &a;
	ck_assert_uint_eq(C_Initialize(&a), CKR_ARGUMENTS_BAD);
	memset(&a, 0, sizeof(a));
	a.CreateMutex = m_create; /* some callbacks but not all */
	ck_assert_uint_eq(C_Initialize(&a), CKR_ARGUMENTS_BAD);
	memset(&a, 0, sizeof(a));
	a.flags = CKF_OS_LOCKING_OK;
	ck_assert_uint_eq(C_Initialize(&a), CKR_OK);
	ck_assert_uint_eq(C_Finalize(&a), CKR_ARGUMENTS_BAD);
}
END_TEST

START_TEST(application_mutexes_are_used_without_os_locking)
{
	CK_C_INITIALIZE_ARGS a = {m_create, m_destroy, m_lock, m_unlock, 0,
				  NULL};
	CK_INFO info;

	locks = 0;
	ck_assert_uint_eq(C_Initialize(&a), CKR_OK);
	ck_assert_uint_eq(C_GetInfo(&info), CKR_OK);
	ck_assert_int_gt(locks, 0);
	ck_assert_uint_eq(C_Finalize(NULL), CKR_OK);
}
END_TEST

START_TEST(a_mutex_that_cannot_be_made_gives_cant_lock)
{
	CK_C_INITIALIZE_ARGS a = {m_fail_create, m_destroy, m_lock, m_unlock,
				  0, NULL};

	ck_assert_uint_eq(C_Initialize(&a), CKR_CANT_LOCK);
	ck_assert_uint_eq(C_Initialize(NULL), CKR_OK);
}
END_TEST

START_TEST(get_info_reports_version_and_blank_padding)
{
	CK_INFO info;

	ck_assert_uint_eq(C_Initialize(NULL), CKR_OK);
	ck_assert_uint_eq(C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(C_GetInfo(&info), CKR_OK);
	ck_assert_int_eq(info.cryptokiVersion.major, 2);
	ck_assert_int_eq(info.cryptokiVersion.minor, 40);
	ck_assert_int_eq(memcmp(info.manufacturerID, "kyso ", 5), 0);
	ck_assert_int_eq(info.manufacturerID[31], ' ');
}
END_TEST

START_TEST(slot_list_follows_the_two_call_protocol)
{
	CK_SLOT_ID ids[4];
	CK_ULONG n = 0;

	fk_set(0, "Reader A", 1);
	fk_set(1, "Reader B", 0);
	ck_assert_uint_eq(C_Initialize(NULL), CKR_OK);
	ck_assert_uint_eq(C_GetSlotList(CK_FALSE, NULL, NULL),
			  CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 2);
	n = 1;
	ck_assert_uint_eq(C_GetSlotList(CK_FALSE, ids, &n),
			  CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(n, 2);
	n = 4;
	ck_assert_uint_eq(C_GetSlotList(CK_FALSE, ids, &n), CKR_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_ne(ids[0], ids[1]);
	n = 4;
	ck_assert_uint_eq(C_GetSlotList(CK_TRUE, ids, &n), CKR_OK);
	ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(slot_info_says_removable_hardware_and_presence)
{
	CK_SLOT_ID ids[2];
	CK_ULONG n = 2;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	int i;

	fk_set(0, "Reader A", 1);
	fk_set(1, "Reader B", 0);
	ck_assert_uint_eq(C_Initialize(NULL), CKR_OK);
	ck_assert_uint_eq(C_GetSlotList(CK_FALSE, ids, &n), CKR_OK);
	ck_assert_uint_eq(C_GetSlotInfo(ids[0], &si), CKR_OK);
	ck_assert_uint_eq(si.flags, CKF_REMOVABLE_DEVICE | CKF_HW_SLOT |
					    CKF_TOKEN_PRESENT);
	ck_assert_int_eq(memcmp(si.slotDescription, "Reader A ", 9), 0);
	ck_assert_uint_eq(C_GetSlotInfo(ids[1], &si), CKR_OK);
	ck_assert_uint_eq(si.flags, CKF_REMOVABLE_DEVICE | CKF_HW_SLOT);
	ck_assert_uint_eq(C_GetSlotInfo(999, &si), CKR_SLOT_ID_INVALID);
	ck_assert_uint_eq(C_GetTokenInfo(ids[1], &ti), CKR_TOKEN_NOT_PRESENT);
	/* A card no driver knows: probed again by the next calls (an answer
	 * may have been spoiled on the way), but no more than
	 * KYSO_BIND_TRIES times per insertion. */
	for (i = 0; i < 2 * KYSO_BIND_TRIES; i++)
		ck_assert_uint_eq(C_GetTokenInfo(ids[0], &ti),
				  CKR_TOKEN_NOT_RECOGNIZED);
	ck_assert_int_eq(fk.connects, KYSO_BIND_TRIES);
}
END_TEST

START_TEST(a_reader_plugged_in_later_gets_a_new_slot_and_ids_are_never_reused)
{
	CK_SLOT_ID ids[4], first, second;
	CK_ULONG n = 4;

	fk_set(0, "Reader A", 0);
	ck_assert_uint_eq(C_Initialize(NULL), CKR_OK);
	ck_assert_uint_eq(C_GetSlotList(CK_FALSE, ids, &n), CKR_OK);
	ck_assert_uint_eq(n, 1);
	first = ids[0];
	fk_set(1, "Reader B", 1);
	n = 0;
	ck_assert_uint_eq(C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(C_GetSlotList(CK_FALSE, ids, &n), CKR_OK);
	second = ids[0] == first ? ids[1] : ids[0];
	ck_assert_uint_ne(second, first);
	/* Unplug B and plug it again: a new id, the old one is dead. */
	fk_set(1, NULL, 0);
	ck_assert_uint_eq(C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 1);
	fk_set(1, "Reader B", 1);
	ck_assert_uint_eq(C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
	ck_assert_uint_eq(C_GetSlotList(CK_FALSE, ids, &n), CKR_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert(ids[0] != second && ids[1] != second);
	{
		CK_SLOT_INFO si;
		ck_assert_uint_eq(C_GetSlotInfo(second, &si),
				  CKR_SLOT_ID_INVALID);
	}
}
END_TEST

START_TEST(wait_for_slot_event_reports_insertion_and_removal)
{
	CK_SLOT_ID ids[1], ev = 0;
	CK_ULONG n = 1;

	fk_set(0, "Reader A", 0);
	ck_assert_uint_eq(C_Initialize(NULL), CKR_OK);
	ck_assert_uint_eq(C_GetSlotList(CK_FALSE, ids, &n), CKR_OK);
	ck_assert_uint_eq(C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL),
			  CKR_NO_EVENT);
	fk_set(0, "Reader A", 1);
	ck_assert_uint_eq(C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL),
			  CKR_OK);
	ck_assert_uint_eq(ev, ids[0]);
	ck_assert_uint_eq(C_WaitForSlotEvent(CKF_DONT_BLOCK, &ev, NULL),
			  CKR_NO_EVENT);
	fk_set(0, "Reader A", 0);
	ev = 0;
	ck_assert_uint_eq(C_WaitForSlotEvent(0, &ev, NULL), CKR_OK);
	ck_assert_uint_eq(ev, ids[0]);
}
END_TEST

static void *insert_later(void *arg)
{
	usleep(50 * 1000);
	fk_set(0, "Reader A", 1);
	return NULL;
}

START_TEST(a_blocking_wait_returns_when_a_card_arrives)
{
	CK_SLOT_ID ev = 0;
	pthread_t t;

	fk_set(0, "Reader A", 0);
	ck_assert_uint_eq(C_Initialize(NULL), CKR_OK);
	pthread_create(&t, NULL, insert_later, NULL);
	ck_assert_uint_eq(C_WaitForSlotEvent(0, &ev, NULL), CKR_OK);
	ck_assert_uint_ne(ev, 0);
	pthread_join(t, NULL);
}
END_TEST

static void *waiter(void *arg)
{
	CK_SLOT_ID ev;

	*(CK_RV *)arg = C_WaitForSlotEvent(0, &ev, NULL);
	return NULL;
}

START_TEST(finalize_wakes_a_blocked_waiter)
{
	pthread_t t;
	CK_RV rv = 0xFFFF;

	fk_set(0, "Reader A", 0);
	ck_assert_uint_eq(C_Initialize(NULL), CKR_OK);
	pthread_create(&t, NULL, waiter, &rv);
	usleep(100 * 1000);
	ck_assert_uint_eq(C_Finalize(NULL), CKR_OK);
	pthread_join(t, NULL);
	ck_assert_uint_eq(rv, CKR_CRYPTOKI_NOT_INITIALIZED);
}
END_TEST

START_TEST(a_forked_child_initializes_again_and_works)
{
	CK_ULONG n = 0;
	pid_t pid;
	int status;

	fk_set(0, "Reader A", 1);
	ck_assert_uint_eq(C_Initialize(NULL), CKR_OK);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int ok = C_GetSlotList(CK_FALSE, NULL, &n) ==
				 CKR_CRYPTOKI_NOT_INITIALIZED &&
			 C_Initialize(NULL) == CKR_OK &&
			 C_GetSlotList(CK_FALSE, NULL, &n) == CKR_OK &&
			 n == 1 && C_Finalize(NULL) == CKR_OK;
		_exit(ok ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	/* The parent is untouched. */
	ck_assert_uint_eq(C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 1);
}
END_TEST

START_TEST(interfaces_offer_a_240_and_a_30_list)
{
	CK_INTERFACE list[4];
	CK_ULONG n = 0;
	CK_INTERFACE_PTR ifc;
	CK_VERSION v30 = {3, 0}, v240 = {2, 40}, v99 = {9, 9};
	CK_FUNCTION_LIST_PTR fl;

	ck_assert_uint_eq(C_GetInterfaceList(NULL, &n), CKR_OK);
	ck_assert_uint_eq(n, 3);
	n = 1;
	ck_assert_uint_eq(C_GetInterfaceList(list, &n), CKR_BUFFER_TOO_SMALL);
	n = 4;
	ck_assert_uint_eq(C_GetInterfaceList(list, &n), CKR_OK);
	ck_assert_str_eq((char *)list[0].pInterfaceName, "PKCS 11");
	ck_assert_str_eq((char *)list[2].pInterfaceName, "Vendor kyso");
	ck_assert_uint_eq(C_GetInterface(NULL, &v30, &ifc, 0), CKR_OK);
	ck_assert_int_eq(((CK_VERSION *)ifc->pFunctionList)->major, 3);
	ck_assert_ptr_eq(((CK_FUNCTION_LIST_3_0 *)ifc->pFunctionList)->C_Sign,
			 C_Sign);
	ck_assert_uint_eq(C_GetInterface((CK_UTF8CHAR_PTR) "PKCS 11", &v240,
					 &ifc, 0),
			  CKR_OK);
	ck_assert_int_eq(((CK_VERSION *)ifc->pFunctionList)->minor, 40);
	ck_assert_uint_eq(C_GetInterface(NULL, &v99, &ifc, 0),
			  CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(C_GetInterface((CK_UTF8CHAR_PTR) "Vendor", NULL,
					 &ifc, 0),
			  CKR_ARGUMENTS_BAD);
	/* kyso's own (include/kyso/vendor.h): never chosen without its name. */
	ck_assert_uint_eq(C_GetInterface((CK_UTF8CHAR_PTR) "Vendor kyso", NULL,
					 &ifc, 0),
			  CKR_OK);
	ck_assert_int_eq(((CK_VERSION *)ifc->pFunctionList)->major, 1);
	ck_assert_uint_eq(C_GetFunctionList(&fl), CKR_OK);
	ck_assert_int_eq(fl->version.major, 2);
	ck_assert_ptr_eq(fl->C_WaitForSlotEvent, C_WaitForSlotEvent);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pkcs11");
	TCase *tc = tcase_create("general");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, calls_before_initialize_say_not_initialized);
	tcase_add_test(tc, initialize_twice_is_refused);
	tcase_add_test(tc, initialize_checks_its_arguments);
	tcase_add_test(tc, application_mutexes_are_used_without_os_locking);
	tcase_add_test(tc, a_mutex_that_cannot_be_made_gives_cant_lock);
	tcase_add_test(tc, get_info_reports_version_and_blank_padding);
	tcase_add_test(tc, slot_list_follows_the_two_call_protocol);
	tcase_add_test(tc, slot_info_says_removable_hardware_and_presence);
	tcase_add_test(
		tc,
		a_reader_plugged_in_later_gets_a_new_slot_and_ids_are_never_reused);
	tcase_add_test(tc, wait_for_slot_event_reports_insertion_and_removal);
	tcase_add_test(tc, a_blocking_wait_returns_when_a_card_arrives);
	tcase_add_test(tc, finalize_wakes_a_blocked_waiter);
	tcase_add_test(tc, a_forked_child_initializes_again_and_works);
	tcase_add_test(tc, interfaces_offer_a_240_and_a_30_list);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
