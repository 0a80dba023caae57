/* General and slot functions: initialization, the lock, fork guard, slot
 * and token information (from memory and PC/SC status, no card I/O beyond
 * the one bind per insertion), mechanisms, and slot events. */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pkcs11/internal.h"
#include "util/log.h"

struct kyso_module kyso_mod;
static pthread_mutex_t mod_mu = PTHREAD_MUTEX_INITIALIZER;

void kyso_lock(void)
{
	if (kyso_mod.app_locks && kyso_mod.app_mutex)
		kyso_mod.args.LockMutex(kyso_mod.app_mutex);
	else
		pthread_mutex_lock(&mod_mu);
}

void kyso_unlock(void)
{
	if (kyso_mod.app_locks && kyso_mod.app_mutex)
		kyso_mod.args.UnlockMutex(kyso_mod.app_mutex);
	else
		pthread_mutex_unlock(&mod_mu);
}


static void pad(CK_UTF8CHAR *dst, size_t n, const char *src)
{
	size_t l = strlen(src);

	memset(dst, ' ', n);
	memcpy(dst, src, l < n ? l : n);
}

/* Set by the atfork handler in a forked child, and only there: C_Initialize
 * checks it before taking the lock without racing another thread's
 * C_Initialize in the parent (reading kyso_mod.init and .pid unlocked did,
 * and could make a parent forget its own state). */
static volatile sig_atomic_t forked;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
	forked = 1;
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

/* Forget a parent's state in a forked child: memory only. */
static void forget_parent(void)
{
	size_t i;

	for (i = 0; i < kyso_mod.nsess; i++)
		kyso_session_free(kyso_mod.sess[i]);
	free(kyso_mod.sess);
	kyso_slots_abandon(&kyso_mod.slots);
	memset(&kyso_mod, 0, sizeof(kyso_mod));
	pthread_mutex_init(&mod_mu, NULL);
	kyso_log_forked();
}

CK_RV C_Initialize(CK_VOID_PTR pInitArgs)
{
	CK_C_INITIALIZE_ARGS *a = pInitArgs;
	int app_locks = 0;
	CK_RV rv;

	pthread_once(&atfork_once, register_atfork);
	if (forked) {
		forked = 0;
		if (kyso_mod.init)
			forget_parent();
	}
	kyso_log_init();
	if (a) {
		int some = a->CreateMutex || a->DestroyMutex || a->LockMutex ||
			   a->UnlockMutex;
		int all = a->CreateMutex && a->DestroyMutex && a->LockMutex &&
			  a->UnlockMutex;

		if (a->pReserved)
			return CKR_ARGUMENTS_BAD;
		if (some && !all)
			return CKR_ARGUMENTS_BAD;
		/* Callbacks without CKF_OS_LOCKING_OK: we must use them. With
		 * the flag we may use our own, which we do. */
		app_locks = all && !(a->flags & CKF_OS_LOCKING_OK);
	}
	pthread_mutex_lock(&mod_mu);
	if (kyso_mod.init) {
		pthread_mutex_unlock(&mod_mu);
		return CKR_CRYPTOKI_ALREADY_INITIALIZED;
	}
	memset(&kyso_mod, 0, sizeof(kyso_mod));
	if (app_locks) {
		kyso_mod.args = *a;
		if (a->CreateMutex(&kyso_mod.app_mutex) != CKR_OK) {
			pthread_mutex_unlock(&mod_mu);
			return CKR_CANT_LOCK;
		}
		kyso_mod.app_locks = 1;
	}
	rv = kyso_slots_open(&kyso_mod.slots);
	if (rv == CKR_OK)
		rv = kyso_slots_refresh(&kyso_mod.slots);
	if (rv != CKR_OK) {
		kyso_slots_close(&kyso_mod.slots);
		if (kyso_mod.app_locks)
			kyso_mod.args.DestroyMutex(kyso_mod.app_mutex);
		memset(&kyso_mod, 0, sizeof(kyso_mod));
		pthread_mutex_unlock(&mod_mu);
		return rv == CKR_HOST_MEMORY ? rv : CKR_GENERAL_ERROR;
	}
	/* Cards present at start are not events. */
	for (size_t i = 0; i < kyso_mod.slots.n; i++)
		kyso_mod.slots.v[i]->event = 0;
	kyso_mod.next_sess = 1;
	kyso_mod.pid = getpid();
	kyso_mod.init = 1;
	pthread_mutex_unlock(&mod_mu);
	kyso_dbg("C_Initialize: %zu readers", kyso_mod.slots.n);
	return CKR_OK;
}

CK_RV C_Finalize(CK_VOID_PTR pReserved)
{
	size_t i;

	return_val_if_fail(pReserved == NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	kyso_mod.finalizing = 1;
	/* Wake threads blocked in C_WaitForSlotEvent; they leave with
	 * CKR_CRYPTOKI_NOT_INITIALIZED, then we free what they used. */
	while (kyso_mod.waiters > 0) {
		struct timespec ts = {0, 2 * 1000 * 1000};

		kyso_mod.slots.ops->cancel(kyso_mod.slots.ctx);
		kyso_unlock();
		nanosleep(&ts, NULL);
		kyso_lock();
	}
	for (i = 0; i < kyso_mod.nsess; i++)
		kyso_session_free(kyso_mod.sess[i]);
	free(kyso_mod.sess);
	kyso_mod.sess = NULL;
	kyso_mod.nsess = 0;
	kyso_slots_close(&kyso_mod.slots);
	kyso_mod.init = 0;
	kyso_mod.finalizing = 0;
	kyso_unlock();
	if (kyso_mod.app_locks) {
		kyso_mod.args.DestroyMutex(kyso_mod.app_mutex);
		kyso_mod.app_locks = 0;
		kyso_mod.app_mutex = NULL;
	}
	kyso_dbg("C_Finalize");
	return CKR_OK;
}

CK_RV C_GetInfo(CK_INFO_PTR pInfo)
{
	return_val_if_fail(pInfo != NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	memset(pInfo, 0, sizeof(*pInfo));
	pInfo->cryptokiVersion.major = CRYPTOKI_VERSION_MAJOR;
	pInfo->cryptokiVersion.minor = CRYPTOKI_VERSION_MINOR;
	pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "kyso");
	pad(pInfo->libraryDescription, sizeof(pInfo->libraryDescription),
	    "kyso PKCS#11 module");
	pInfo->libraryVersion.major = 0;
	pInfo->libraryVersion.minor = 1;
	kyso_unlock();
	return CKR_OK;
}

CK_RV C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList,
		    CK_ULONG_PTR pulCount)
{
	CK_ULONG n = 0;
	size_t i;
	CK_RV rv;

	return_val_if_fail(pulCount != NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	/* The size query refreshes the reader list; the second call of the
	 * two-call protocol answers from that same list. */
	if (!pSlotList) {
		rv = kyso_slots_refresh(&kyso_mod.slots);
		if (rv != CKR_OK)
			kyso_dbg("C_GetSlotList: refresh: 0x%lx",
				 (unsigned long)rv);
	}
	for (i = 0; i < kyso_mod.slots.n; i++) {
		struct kyso_slot *s = kyso_mod.slots.v[i];

		if (s->gone || (tokenPresent && !s->st.present))
			continue;
		if (pSlotList && n < *pulCount)
			pSlotList[n] = s->id;
		n++;
	}
	rv = CKR_OK;
	if (pSlotList && n > *pulCount)
		rv = CKR_BUFFER_TOO_SMALL;
	*pulCount = n;
	kyso_unlock();
	return rv;
}

CK_RV C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
	struct kyso_slot *s;

	return_val_if_fail(pInfo != NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	s = kyso_slots_get(&kyso_mod.slots, slotID);
	if (!s) {
		kyso_unlock();
		return CKR_SLOT_ID_INVALID;
	}
	kyso_slot_update(&kyso_mod.slots, s);
	memset(pInfo, 0, sizeof(*pInfo));
	pad(pInfo->slotDescription, sizeof(pInfo->slotDescription), s->reader);
	pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID), "PC/SC");
	pInfo->flags = CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
	if (s->st.present)
		pInfo->flags |= CKF_TOKEN_PRESENT;
	kyso_unlock();
	return CKR_OK;
}

CK_RV C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
	struct kyso_slot *s;
	struct kyso_token *tok;
	CK_ULONG nsess = 0, nrw = 0;
	size_t i;
	CK_RV rv;

	return_val_if_fail(pInfo != NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_token_of_slot(slotID, &s, &tok);
	if (rv != CKR_OK) {
		kyso_unlock();
		return rv;
	}
	for (i = 0; i < kyso_mod.nsess; i++) {
		struct kyso_session *ss = kyso_mod.sess[i];

		if (ss->slot != slotID || ss->gen != s->gen)
			continue;
		nsess++;
		if (ss->flags & CKF_RW_SESSION)
			nrw++;
	}
	memset(pInfo, 0, sizeof(*pInfo));
	pad(pInfo->label, sizeof(pInfo->label), tok->label);
	pad(pInfo->manufacturerID, sizeof(pInfo->manufacturerID),
	    tok->manufacturer);
	pad(pInfo->model, sizeof(pInfo->model), tok->model);
	pad(pInfo->serialNumber, sizeof(pInfo->serialNumber), tok->serial);
	pInfo->flags = tok->flags;
	pInfo->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
	pInfo->ulSessionCount = nsess;
	pInfo->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
	pInfo->ulRwSessionCount = nrw;
	pInfo->ulMaxPinLen = tok->max_pin;
	pInfo->ulMinPinLen = tok->min_pin;
	pInfo->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
	pInfo->hardwareVersion.major = 0;
	pInfo->firmwareVersion.major = 0;
	memset(pInfo->utcTime, ' ', sizeof(pInfo->utcTime));
	kyso_unlock();
	return CKR_OK;
}

CK_RV kyso_token_of_slot(CK_SLOT_ID id, struct kyso_slot **slotp,
			 struct kyso_token **tok)
{
	struct kyso_slot *s = kyso_slots_get(&kyso_mod.slots, id);

	if (!s)
		return CKR_SLOT_ID_INVALID;
	if (slotp)
		*slotp = s;
	return kyso_slot_token(&kyso_mod.slots, s, tok);
}

/* The vendor interface: the PIN (or PUK) tries left as the card last told,
 * from memory. */
CK_RV kyso_C_KysoGetPinTries(CK_SLOT_ID slotID, CK_USER_TYPE who,
			     CK_ULONG_PTR pulLeft)
{
	struct kyso_token *tok;
	int tries = -1;
	CK_RV rv;

	return_val_if_fail(pulLeft != NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_token_of_slot(slotID, NULL, &tok);
	if (rv == CKR_OK) {
		if (who == CKU_USER)
			tries = tok->user_tries;
		else if (who == CKU_SO)
			tries = tok->so_tries;
		else
			rv = CKR_USER_TYPE_INVALID;
		if (rv == CKR_OK)
			*pulLeft = tries < 0 ? CK_UNAVAILABLE_INFORMATION
					     : (CK_ULONG)tries;
	}
	kyso_unlock();
	return rv;
}

CK_RV C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pList,
			 CK_ULONG_PTR pulCount)
{
	struct kyso_token *tok;
	CK_RV rv;

	return_val_if_fail(pulCount != NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_token_of_slot(slotID, NULL, &tok);
	if (rv == CKR_OK)
		rv = kyso_mech_list(tok, pList, pulCount);
	kyso_unlock();
	return rv;
}

CK_RV C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type,
			 CK_MECHANISM_INFO_PTR pInfo)
{
	struct kyso_token *tok;
	CK_RV rv;

	return_val_if_fail(pInfo != NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_token_of_slot(slotID, NULL, &tok);
	if (rv == CKR_OK)
		rv = kyso_mech_info(tok, type, pInfo);
	kyso_unlock();
	return rv;
}

/* A slot with an event not yet reported, or NULL. Under the lock. */
static struct kyso_slot *take_event(void)
{
	size_t i;

	for (i = 0; i < kyso_mod.slots.n; i++) {
		struct kyso_slot *s = kyso_mod.slots.v[i];

		if (s->event) {
			s->event = 0;
			return s;
		}
	}
	return NULL;
}

CK_RV C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot,
			 CK_VOID_PTR pReserved)
{
	struct kyso_slot *s;
	CK_RV rv;

	return_val_if_fail(pSlot != NULL, CKR_ARGUMENTS_BAD);
	return_val_if_fail(pReserved == NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	kyso_mod.waiters++;
	for (;;) {
		kyso_slots_refresh(&kyso_mod.slots);
		s = take_event();
		if (s) {
			*pSlot = s->id;
			rv = CKR_OK;
			break;
		}
		if (flags & CKF_DONT_BLOCK) {
			rv = CKR_NO_EVENT;
			break;
		}
		kyso_unlock();
		/* Wait without the lock; C_Finalize cancels the wait. */
		rv = kyso_mod.slots.ops->wait(kyso_mod.slots.ctx, 1000);
		kyso_lock();
		if (kyso_mod.finalizing || !kyso_mod.init) {
			rv = CKR_CRYPTOKI_NOT_INITIALIZED;
			break;
		}
		if (rv == CKR_NO_EVENT && kyso_mod.slots.ctx) {
			/* A slice passed; without a daemon the back-end
			 * returns at once, so sleep a little ourselves. */
			continue;
		}
	}
	kyso_mod.waiters--;
	kyso_unlock();
	return rv;
}
