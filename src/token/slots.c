/* Slots ↔ readers. Everything here runs under the module lock. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "token/slots.h"
#include "util/log.h"

CK_RV kyso_slots_open(struct kyso_slots *s)
{
	memset(s, 0, sizeof(*s));
	s->ops = kyso_readers_backend();
	s->next_id = 1;
	return s->ops->open(&s->ctx);
}

static void slot_free(struct kyso_slot *slot)
{
	kyso_token_free(slot->tok);
	free(slot->reader);
	free(slot);
}

void kyso_slots_close(struct kyso_slots *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		slot_free(s->v[i]);
	free(s->v);
	if (s->ops && s->ctx)
		s->ops->close(s->ctx);
	memset(s, 0, sizeof(*s));
}

/* What a forked child abandoned (see below), kept reachable so that leak
 * checkers in the child (valgrind) see it is meant. */
static void *volatile abandoned[2];

void kyso_slots_abandon(struct kyso_slots *s)
{
	/* The parent's tokens, card handles and PC/SC contexts are left as
	 * they are: freeing them would send messages on sockets the parent
	 * still uses. Memory only, once per fork. */
	abandoned[0] = s->v;
	abandoned[1] = s->ctx;
	memset(s, 0, sizeof(*s));
}

void kyso_slot_drop(struct kyso_slot *slot)
{
	if (slot->tok) {
		kyso_token_free(slot->tok);
		slot->tok = NULL;
	}
	slot->gen++;
}

void kyso_slot_update(struct kyso_slots *s, struct kyso_slot *slot)
{
	struct kyso_reader_state st;
	CK_RV rv;

	if (slot->gone)
		return;
	rv = s->ops->status(s->ctx, slot->reader, &st);
	if (rv != CKR_OK)
		memset(&st, 0, sizeof(st));
	if (st.present != slot->st.present ||
	    (st.present && st.events != slot->st.events)) {
		kyso_dbg("slot %lu: card %s", (unsigned long)slot->id,
			 st.present ? "inserted" : "removed");
		kyso_slot_drop(slot);
		slot->bind_tries = 0;
		slot->bind_rv = CKR_OK;
		slot->event = 1;
	}
	slot->st = st;
}

CK_RV kyso_slots_refresh(struct kyso_slots *s)
{
	char **names = NULL;
	size_t n = 0, i, j;
	CK_RV rv;

	rv = s->ops->list(s->ctx, &names, &n);
	if (rv != CKR_OK)
		return rv;
	for (i = 0; i < s->n; i++) {
		struct kyso_slot *slot = s->v[i];
		int found = 0;

		for (j = 0; j < n && !found; j++)
			found = !slot->gone && strcmp(names[j], slot->reader) == 0;
		if (!found && !slot->gone) {
			kyso_dbg("slot %lu: reader gone", (unsigned long)slot->id);
			kyso_slot_drop(slot);
			slot->gone = 1;
			slot->event = slot->st.present;
			memset(&slot->st, 0, sizeof(slot->st));
		}
	}
	for (j = 0; j < n; j++) {
		struct kyso_slot *slot = NULL, **nv;

		for (i = 0; i < s->n && !slot; i++)
			if (!s->v[i]->gone &&
			    strcmp(s->v[i]->reader, names[j]) == 0)
				slot = s->v[i];
		if (!slot) {
			/* A reader seen for the first time, or again after it
			 * was unplugged: a new slot id either way. */
			slot = calloc(1, sizeof(*slot));
			nv = slot ? realloc(s->v, (s->n + 1) * sizeof(*nv))
				  : NULL;
			if (!nv) {
				free(slot);
				rv = CKR_HOST_MEMORY;
				break;
			}
			s->v = nv;
			slot->reader = names[j];
			names[j] = NULL;
			slot->id = s->next_id++;
			s->v[s->n++] = slot;
			kyso_dbg("slot %lu: reader '%s'",
				 (unsigned long)slot->id, slot->reader);
		}
		kyso_slot_update(s, slot);
	}
	kyso_strv_free(names, n);
	return rv;
}

struct kyso_slot *kyso_slots_get(struct kyso_slots *s, CK_SLOT_ID id)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->v[i]->id == id && !s->v[i]->gone)
			return s->v[i];
	return NULL;
}

CK_RV kyso_slot_token(struct kyso_slots *s, struct kyso_slot *slot,
		      struct kyso_token **tok)
{
	struct kyso_card *card = NULL;
	CK_RV rv;

	*tok = NULL;
	kyso_slot_update(s, slot);
	if (!slot->st.present)
		return CKR_TOKEN_NOT_PRESENT;
	if (slot->tok) {
		*tok = slot->tok;
		return CKR_OK;
	}
	if (slot->bind_tries >= KYSO_BIND_TRIES)
		return slot->bind_rv;
	rv = s->ops->connect(s->ctx, slot->reader, &card);
	if (rv == CKR_OK) {
		rv = kyso_token_bind(card, &slot->tok);
		if (rv != CKR_OK)
			kyso_card_free(card);
	}
	if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_REMOVED) {
		/* Pulled while we looked: the next update sees it. */
		return CKR_TOKEN_NOT_PRESENT;
	}
	slot->bind_rv = rv == CKR_OK ? CKR_OK
		: rv == CKR_HOST_MEMORY ? rv
		: rv == CKR_DEVICE_ERROR ? CKR_DEVICE_ERROR
		: CKR_TOKEN_NOT_RECOGNIZED;
	if (rv != CKR_OK && rv != CKR_HOST_MEMORY) {
		slot->bind_tries++;
		kyso_dbg("slot %lu: bind %d of %d failed: rv 0x%lx",
			 (unsigned long)slot->id, slot->bind_tries,
			 KYSO_BIND_TRIES, (unsigned long)rv);
	}
	*tok = slot->tok;
	return slot->bind_rv;
}
