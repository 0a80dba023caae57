/* Slots ↔ readers: one slot per reader, ids never reused, a token bound once
 * per card insertion, and the state changes C_WaitForSlotEvent reports. */
#ifndef KYSO_TOKEN_SLOTS_H
#define KYSO_TOKEN_SLOTS_H

#include "reader/reader.h"
#include "token/token.h"

struct kyso_slot {
	CK_SLOT_ID id;
	char *reader;
	int gone;			/* the reader was unplugged */
	struct kyso_reader_state st;	/* as last seen */
	struct kyso_token *tok;		/* bound token, or NULL */
	CK_RV bind_rv;			/* why there is no token */
	int bind_tries;			/* failed binds, this insertion */
	unsigned long gen;		/* bumped at every card change */
	int event;			/* not yet reported by WaitForSlotEvent */
};

/* A bind that failed (a card answer lost or spoiled on the way) is tried
 * again on a later call, up to this many times per insertion; a card that
 * is not ours costs no more than that, and a flaky one need not be pulled
 * out to work once its answers come through. */
#define KYSO_BIND_TRIES 3

struct kyso_slots {
	const struct kyso_readers_ops *ops;
	void *ctx;
	struct kyso_slot **v;
	size_t n;
	CK_SLOT_ID next_id;
};

CK_RV kyso_slots_open(struct kyso_slots *s);
void kyso_slots_close(struct kyso_slots *s);
/* After fork: forget everything without touching the parent's PC/SC
 * connections (they are shared sockets; using them would disturb it). */
void kyso_slots_abandon(struct kyso_slots *s);
/* Lists readers (new ones get new slots, missing ones are marked gone) and
 * updates every slot's state. */
CK_RV kyso_slots_refresh(struct kyso_slots *s);
struct kyso_slot *kyso_slots_get(struct kyso_slots *s, CK_SLOT_ID id);
/* Reads one reader's state (PC/SC, no card I/O); a card change drops the
 * token and bumps gen. */
void kyso_slot_update(struct kyso_slots *s, struct kyso_slot *slot);
/* The slot's token, binding the card on first use after insertion.
 * CKR_TOKEN_NOT_PRESENT, CKR_TOKEN_NOT_RECOGNIZED, CKR_DEVICE_ERROR... */
CK_RV kyso_slot_token(struct kyso_slots *s, struct kyso_slot *slot,
		      struct kyso_token **tok);
/* Forget the token (card gone or broken): sessions on it die. */
void kyso_slot_drop(struct kyso_slot *slot);

#endif
