/* The Cryptoki face: module state, the one lock, fork guard, sessions. No
 * APDUs here: everything below goes through the token layer. */
#ifndef KYSO_PKCS11_INTERNAL_H
#define KYSO_PKCS11_INTERNAL_H

#include <pthread.h>
#include <sys/types.h>

#include "kyso/pkcs11.h"
#include "token/mech.h"
#include "token/slots.h"
#include "token/token.h"

struct kyso_session {
	CK_SESSION_HANDLE h;
	CK_SLOT_ID slot;
	unsigned long gen; /* the slot's gen when opened */
	CK_FLAGS flags;
	CK_OBJECT_HANDLE *found;
	size_t nfound, pos;
	int finding;
	struct kyso_op sign, verify, decrypt;
	struct kyso_digest *digest;
	CK_MECHANISM_TYPE digest_mech;
};

struct kyso_module {
	int init;
	pid_t pid;
	int app_locks; /* use the application's mutex callbacks */
	CK_C_INITIALIZE_ARGS args;
	void *app_mutex;
	struct kyso_slots slots;
	struct kyso_session **sess;
	size_t nsess;
	CK_SESSION_HANDLE next_sess;
	int waiters;	/* threads in C_WaitForSlotEvent */
	int finalizing;
};

extern struct kyso_module kyso_mod;

void kyso_lock(void);
void kyso_unlock(void);

/* Precondition for every call after C_Initialize: initialized in this
 * process (a forked child must call C_Initialize again). */
#define KYSO_CHECK_INIT()                                                      \
	do {                                                                   \
		if (!kyso_mod.init || kyso_mod.pid != getpid() ||              \
		    kyso_mod.finalizing) {                                     \
			kyso_unlock();                                         \
			return CKR_CRYPTOKI_NOT_INITIALIZED;                   \
		}                                                              \
	} while (0)

/* The vendor interface (include/kyso/vendor.h). */
CK_RV kyso_C_KysoGetPinTries(CK_SLOT_ID slotID, CK_USER_TYPE who,
			     CK_ULONG_PTR pulLeft);

#define return_val_if_fail(cond, val)                                          \
	do {                                                                   \
		if (!(cond))                                                   \
			return (val);                                          \
	} while (0)

/* Looks up a live session and its token; a session whose card went away is
 * closed and CKR_SESSION_HANDLE_INVALID returned. Call under the lock. */
CK_RV kyso_session_get(CK_SESSION_HANDLE h, struct kyso_session **s,
		       struct kyso_slot **slot, struct kyso_token **tok);
/* A slot's token, bound on first use after insertion. Under the lock. */
CK_RV kyso_token_of_slot(CK_SLOT_ID id, struct kyso_slot **slot,
			 struct kyso_token **tok);
/* After card I/O failed: notice a removal so sessions die with the token. */
CK_RV kyso_after_io(struct kyso_slot *slot, CK_RV rv);
void kyso_session_free(struct kyso_session *s);
void kyso_sessions_close_slot(CK_SLOT_ID slot);

/* Object visibility for a session: private objects only after login. */
struct kyso_object *kyso_visible_object(struct kyso_token *tok,
					CK_OBJECT_HANDLE h);
CK_RV kyso_object_pubkey(const struct kyso_object *o, struct kyso_pubkey *pub);


/* The C_* functions themselves are defined in this library under their
 * standard names (declared by pkcs11.h); the module's symbol map keeps all
 * but the three entry points local. Those kyso does not offer are in unsupported.c. */
CK_RV kyso_C_LoginUser(CK_SESSION_HANDLE, CK_USER_TYPE, CK_UTF8CHAR_PTR,
		       CK_ULONG, CK_UTF8CHAR_PTR, CK_ULONG);
CK_RV kyso_C_SessionCancel(CK_SESSION_HANDLE, CK_FLAGS);
CK_RV kyso_C_MessageInit(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
CK_RV kyso_C_MessageOp(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
		       CK_ULONG, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR,
		       CK_ULONG_PTR);
CK_RV kyso_C_MessageBegin(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG,
			  CK_BYTE_PTR, CK_ULONG);
CK_RV kyso_C_MessageNext(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
			 CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR, CK_FLAGS);
CK_RV kyso_C_MessageFinal(CK_SESSION_HANDLE);
CK_RV kyso_C_SignMessage(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR,
			 CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
CK_RV kyso_C_SignMessageBegin(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG);
CK_RV kyso_C_VerifyMessage(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG,
			   CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG);

#endif
