/* Sessions, login and PINs. Login state belongs to the token (all sessions
 * of the application share it); a PIN is sent to the card once per call and
 * never retried, whatever the answer. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pkcs11/internal.h"
#include "util/log.h"

void kyso_session_free(struct kyso_session *s)
{
	if (!s)
		return;
	kyso_op_clear(&s->sign);
	kyso_op_clear(&s->verify);
	kyso_op_clear(&s->decrypt);
	if (s->digest)
		kyso_digest_free(s->digest);
	free(s->found);
	free(s);
}

static void session_remove(size_t i)
{
	kyso_session_free(kyso_mod.sess[i]);
	memmove(&kyso_mod.sess[i], &kyso_mod.sess[i + 1],
		(kyso_mod.nsess - i - 1) * sizeof(kyso_mod.sess[0]));
	kyso_mod.nsess--;
}

static size_t live_sessions(CK_SLOT_ID slot, unsigned long gen)
{
	size_t i, n = 0;

	for (i = 0; i < kyso_mod.nsess; i++)
		if (kyso_mod.sess[i]->slot == slot &&
		    kyso_mod.sess[i]->gen == gen)
			n++;
	return n;
}

CK_RV kyso_session_get(CK_SESSION_HANDLE h, struct kyso_session **out,
		       struct kyso_slot **slotp, struct kyso_token **tokp)
{
	struct kyso_slot *slot;
	size_t i;

	for (i = 0; i < kyso_mod.nsess; i++)
		if (kyso_mod.sess[i]->h == h)
			break;
	if (i == kyso_mod.nsess)
		return CKR_SESSION_HANDLE_INVALID;
	slot = kyso_slots_get(&kyso_mod.slots, kyso_mod.sess[i]->slot);
	if (slot)
		kyso_slot_update(&kyso_mod.slots, slot);
	if (!slot || slot->gen != kyso_mod.sess[i]->gen || !slot->tok) {
		/* The card this session was opened on is gone. */
		session_remove(i);
		return CKR_SESSION_HANDLE_INVALID;
	}
	*out = kyso_mod.sess[i];
	if (slotp)
		*slotp = slot;
	if (tokp)
		*tokp = slot->tok;
	return CKR_OK;
}

CK_RV kyso_after_io(struct kyso_slot *slot, CK_RV rv)
{
	if (rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT) {
		kyso_slot_drop(slot);
		slot->event = 1;
		return CKR_DEVICE_REMOVED;
	}
	return rv;
}

CK_RV C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags,
		    CK_VOID_PTR pApplication, CK_NOTIFY Notify,
		    CK_SESSION_HANDLE_PTR phSession)
{
	struct kyso_slot *slot;
	struct kyso_token *tok;
	struct kyso_session *s, **nv;
	CK_RV rv;

	return_val_if_fail(phSession != NULL, CKR_ARGUMENTS_BAD);
	if (!(flags & CKF_SERIAL_SESSION))
		return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_token_of_slot(slotID, &slot, &tok);
	if (rv != CKR_OK)
		goto out;
	if (!(flags & CKF_RW_SESSION) && tok->login == CKU_SO) {
		rv = CKR_SESSION_READ_WRITE_SO_EXISTS;
		goto out;
	}
	s = calloc(1, sizeof(*s));
	nv = s ? realloc(kyso_mod.sess, (kyso_mod.nsess + 1) * sizeof(*nv))
	       : NULL;
	if (!nv) {
		free(s);
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	kyso_mod.sess = nv;
	s->h = kyso_mod.next_sess++;
	s->slot = slotID;
	s->gen = slot->gen;
	s->flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
	nv[kyso_mod.nsess++] = s;
	*phSession = s->h;
	kyso_dbg("C_OpenSession: slot %lu session %lu",
		 (unsigned long)slotID, (unsigned long)s->h);
out:
	kyso_unlock();
	return rv;
}

/* The spec logs the token out when its last session closes. */
static void logout_if_last(struct kyso_slot *slot)
{
	struct kyso_token *tok = slot->tok;

	if (!tok || live_sessions(slot->id, slot->gen) > 0)
		return;
	if (tok->login != KYSO_NOBODY && tok->drv->logout &&
	    kyso_token_begin(tok) == CKR_OK) {
		kyso_after_io(slot, tok->drv->logout(tok->card));
		if (slot->tok)
			kyso_token_end(tok);
	}
	if (slot->tok) {
		tok->login = KYSO_NOBODY;
		tok->ctx_login = 0;
	}
}

CK_RV C_CloseSession(CK_SESSION_HANDLE hSession)
{
	struct kyso_slot *slot = NULL;
	CK_SLOT_ID id = 0;
	size_t i;

	kyso_lock();
	KYSO_CHECK_INIT();
	for (i = 0; i < kyso_mod.nsess; i++)
		if (kyso_mod.sess[i]->h == hSession)
			break;
	if (i == kyso_mod.nsess) {
		kyso_unlock();
		return CKR_SESSION_HANDLE_INVALID;
	}
	id = kyso_mod.sess[i]->slot;
	slot = kyso_slots_get(&kyso_mod.slots, id);
	if (slot && slot->gen != kyso_mod.sess[i]->gen)
		slot = NULL;
	session_remove(i);
	if (slot)
		logout_if_last(slot);
	kyso_unlock();
	return CKR_OK;
}

CK_RV C_CloseAllSessions(CK_SLOT_ID slotID)
{
	struct kyso_slot *slot;
	size_t i;

	kyso_lock();
	KYSO_CHECK_INIT();
	slot = kyso_slots_get(&kyso_mod.slots, slotID);
	if (!slot) {
		kyso_unlock();
		return CKR_SLOT_ID_INVALID;
	}
	for (i = kyso_mod.nsess; i-- > 0;)
		if (kyso_mod.sess[i]->slot == slotID)
			session_remove(i);
	logout_if_last(slot);
	kyso_unlock();
	return CKR_OK;
}

CK_RV C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
	struct kyso_session *s;
	struct kyso_token *tok;
	int rw;
	CK_RV rv;

	return_val_if_fail(pInfo != NULL, CKR_ARGUMENTS_BAD);
	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, NULL, &tok);
	if (rv == CKR_OK) {
		rw = (s->flags & CKF_RW_SESSION) != 0;
		memset(pInfo, 0, sizeof(*pInfo));
		pInfo->slotID = s->slot;
		pInfo->flags = s->flags;
		if (tok->login == CKU_SO)
			pInfo->state = CKS_RW_SO_FUNCTIONS;
		else if (tok->login == CKU_USER)
			pInfo->state = rw ? CKS_RW_USER_FUNCTIONS
					  : CKS_RO_USER_FUNCTIONS;
		else
			pInfo->state = rw ? CKS_RW_PUBLIC_SESSION
					  : CKS_RO_PUBLIC_SESSION;
	}
	kyso_unlock();
	return rv;
}

CK_RV C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType,
	      CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	struct kyso_session *s;
	struct kyso_slot *slot;
	struct kyso_token *tok;
	int tries = -1;
	size_t i;
	CK_RV rv;

	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, &slot, &tok);
	if (rv != CKR_OK)
		goto out;
	if (userType != CKU_USER && userType != CKU_SO &&
	    userType != CKU_CONTEXT_SPECIFIC) {
		rv = CKR_USER_TYPE_INVALID;
		goto out;
	}
	if (!pPin) {
		/* No protected authentication path on any reader we drive. */
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	if (userType == CKU_CONTEXT_SPECIFIC) {
		if (tok->login != CKU_USER) {
			rv = CKR_USER_NOT_LOGGED_IN;
			goto out;
		}
		if (!s->sign.kind && !s->decrypt.kind) {
			rv = CKR_OPERATION_NOT_INITIALIZED;
			goto out;
		}
	} else if (tok->login == userType) {
		rv = CKR_USER_ALREADY_LOGGED_IN;
		goto out;
	} else if (tok->login != KYSO_NOBODY) {
		rv = CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
		goto out;
	}
	if (userType == CKU_SO) {
		for (i = 0; i < kyso_mod.nsess; i++)
			if (kyso_mod.sess[i]->slot == slot->id &&
			    kyso_mod.sess[i]->gen == slot->gen &&
			    !(kyso_mod.sess[i]->flags & CKF_RW_SESSION)) {
				rv = CKR_SESSION_READ_ONLY_EXISTS;
				goto out;
			}
	} else if (tok->max_pin &&
		   (ulPinLen < tok->min_pin || ulPinLen > tok->max_pin)) {
		/* Refused before the card sees it: costs no try. */
		rv = CKR_PIN_LEN_RANGE;
		goto out;
	}
	rv = kyso_token_begin_pin(tok);
	if (rv == CKR_OK) {
		/* Known blocked: ask the card (free) before a PIN crosses
		 * the wire for nothing; another program may have unblocked. */
		if (userType != CKU_SO && (tok->flags & CKF_USER_PIN_LOCKED) &&
		    tok->drv->pin_status &&
		    tok->drv->pin_status(tok->card, CKU_USER, &tries) ==
			    CKR_PIN_LOCKED)
			rv = CKR_PIN_LOCKED;
		else
			rv = tok->drv->login(tok->card, userType, pPin,
					     ulPinLen, &tries);
		kyso_token_end(tok);
		/* "No such PIN / instruction", or "security status not
		 * satisfied" in answer to the PIN itself: the card failing,
		 * in the terms PKCS#11 lists for C_Login. */
		if (rv == CKR_OBJECT_HANDLE_INVALID ||
		    rv == CKR_FUNCTION_NOT_SUPPORTED ||
		    rv == CKR_USER_NOT_LOGGED_IN)
			rv = CKR_DEVICE_ERROR;
	}
	rv = kyso_after_io(slot, rv);
	if (!slot->tok)
		goto out;
	if (userType != CKU_SO || tries >= 0)
		kyso_token_note_tries(tok,
				      userType == CKU_SO ? CKU_SO : CKU_USER,
				      tries, rv);
	if (rv == CKR_OK) {
		if (userType == CKU_CONTEXT_SPECIFIC)
			tok->ctx_login = 1;
		else
			tok->login = userType;
	}
	kyso_dbg("C_Login(%lu): 0x%lx, tries left %d",
		 (unsigned long)userType, (unsigned long)rv, tries);
out:
	kyso_unlock();
	return rv;
}

CK_RV C_Logout(CK_SESSION_HANDLE hSession)
{
	struct kyso_session *s;
	struct kyso_slot *slot;
	struct kyso_token *tok;
	CK_RV rv;

	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, &slot, &tok);
	if (rv != CKR_OK)
		goto out;
	if (tok->login == KYSO_NOBODY) {
		rv = CKR_USER_NOT_LOGGED_IN;
		goto out;
	}
	if (tok->drv->logout && kyso_token_begin(tok) == CKR_OK) {
		rv = kyso_after_io(slot, tok->drv->logout(tok->card));
		if (slot->tok)
			kyso_token_end(tok);
	}
	if (slot->tok) {
		tok->login = KYSO_NOBODY;
		tok->ctx_login = 0;
	}
	/* Logged out whatever the card said: the state is ours to drop. */
	rv = CKR_OK;
out:
	kyso_unlock();
	return rv;
}

CK_RV C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin,
	       CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
	struct kyso_session *s;
	struct kyso_slot *slot;
	struct kyso_token *tok;
	CK_USER_TYPE who;
	int tries = -1;
	CK_RV rv;

	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, &slot, &tok);
	if (rv != CKR_OK)
		goto out;
	if (!pOldPin || !pNewPin) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	if (!(s->flags & CKF_RW_SESSION)) {
		rv = CKR_SESSION_READ_ONLY;
		goto out;
	}
	if (!tok->drv->change_pin) {
		rv = CKR_FUNCTION_NOT_SUPPORTED;
		goto out;
	}
	who = tok->login == CKU_SO ? CKU_SO : CKU_USER;
	if (who == CKU_USER && tok->max_pin &&
	    (ulNewLen < tok->min_pin || ulNewLen > tok->max_pin ||
	     ulOldLen < tok->min_pin || ulOldLen > tok->max_pin)) {
		rv = CKR_PIN_LEN_RANGE;
		goto out;
	}
	rv = kyso_token_begin_pin(tok);
	if (rv == CKR_OK) {
		rv = tok->drv->change_pin(tok->card, who, pOldPin, ulOldLen,
					  pNewPin, ulNewLen, &tries);
		kyso_token_end(tok);
	}
	rv = kyso_after_io(slot, rv);
	if (slot->tok)
		kyso_token_note_tries(tok, who, tries, rv);
out:
	kyso_unlock();
	return rv;
}

CK_RV C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin,
		CK_ULONG ulPinLen)
{
	struct kyso_session *s;
	struct kyso_slot *slot;
	struct kyso_token *tok;
	int tries = -1;
	CK_RV rv;

	kyso_lock();
	KYSO_CHECK_INIT();
	rv = kyso_session_get(hSession, &s, &slot, &tok);
	if (rv != CKR_OK)
		goto out;
	if (!pPin) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	if (tok->login != CKU_SO) {
		rv = CKR_USER_NOT_LOGGED_IN;
		goto out;
	}
	if (!(s->flags & CKF_RW_SESSION)) {
		rv = CKR_SESSION_READ_ONLY;
		goto out;
	}
	if (!tok->drv->unblock) {
		rv = CKR_FUNCTION_NOT_SUPPORTED;
		goto out;
	}
	if (tok->max_pin &&
	    (ulPinLen < tok->min_pin || ulPinLen > tok->max_pin)) {
		rv = CKR_PIN_LEN_RANGE;
		goto out;
	}
	rv = kyso_token_begin_pin(tok);
	if (rv == CKR_OK) {
		rv = tok->drv->unblock(tok->card, pPin, ulPinLen, &tries);
		kyso_token_end(tok);
	}
	rv = kyso_after_io(slot, rv);
	if (!slot->tok)
		goto out;
	kyso_token_note_tries(tok, CKU_SO, tries, rv);
	if (rv == CKR_OK) {
		/* A fresh PIN: the user counter is full again. */
		tok->flags &= ~(CKF_USER_PIN_COUNT_LOW |
				CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_LOCKED);
		tok->user_tries = tok->user_max;
	}
out:
	kyso_unlock();
	return rv;
}
