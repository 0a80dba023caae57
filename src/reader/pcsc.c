/* The PC/SC back-end: reader list, reader state without card I/O, event
 * waits on a context of their own (a blocking SCardGetStatusChange holds its
 * context), and card handles in shared mode with transactions. */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <PCSC/winscard.h>
#include <PCSC/wintypes.h>

#include "reader/reader.h"
#include "util/log.h"

#define PNP_READER "\\\\?PnP?\\Notification"

/* Last state reported by status() per reader, so that wait() blocks only
 * until something differs from what the caller has already seen. */
struct seen {
	char *name;
	DWORD state;
};

struct pcsc_ctx {
	SCARDCONTEXT ctx;      /* for everything but waiting */
	SCARDCONTEXT wait_ctx; /* for blocking waits; 0 until first wait */
	pthread_mutex_t mu;    /* guards seen, nreaders_seen, wait_ctx */
	struct seen *seen;
	size_t nseen;
	size_t nreaders_seen;
	int cancelled;
};

struct pcsc_card {
	struct pcsc_ctx *pc;
	SCARDHANDLE h;
	DWORD proto;
};

static CK_RV pcsc_rv(LONG r)
{
	switch (r) {
	case SCARD_S_SUCCESS:
		return CKR_OK;
	case SCARD_W_REMOVED_CARD:
	case SCARD_E_NO_SMARTCARD:
	case SCARD_W_UNPOWERED_CARD:
		return CKR_DEVICE_REMOVED;
	case SCARD_E_UNKNOWN_READER:
	case SCARD_E_READER_UNAVAILABLE:
	case SCARD_E_NO_READERS_AVAILABLE:
		return CKR_TOKEN_NOT_PRESENT;
	case SCARD_E_NO_MEMORY:
		return CKR_HOST_MEMORY;
	case SCARD_E_CANCELLED:
		return CKR_FUNCTION_CANCELED;
	case SCARD_E_TIMEOUT:
		return CKR_NO_EVENT;
	case SCARD_W_UNRESPONSIVE_CARD:
	case SCARD_E_PROTO_MISMATCH:
		return CKR_TOKEN_NOT_RECOGNIZED;
	default:
		return CKR_DEVICE_ERROR;
	}
}

static CK_RV pcsc_open(void **out)
{
	struct pcsc_ctx *pc = calloc(1, sizeof(*pc));
	LONG r;

	if (!pc)
		return CKR_HOST_MEMORY;
	r = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &pc->ctx);
	if (r != SCARD_S_SUCCESS) {
		/* No pcscd: no readers yet, but not an error for C_Initialize;
		 * list() retries. */
		kyso_dbg("pcsc: SCardEstablishContext: %s",
			 pcsc_stringify_error(r));
		pc->ctx = 0;
	}
	pthread_mutex_init(&pc->mu, NULL);
	*out = pc;
	return CKR_OK;
}

static void pcsc_close(void *p)
{
	struct pcsc_ctx *pc = p;
	size_t i;

	if (!pc)
		return;
	if (pc->ctx)
		SCardReleaseContext(pc->ctx);
	if (pc->wait_ctx)
		SCardReleaseContext(pc->wait_ctx);
	for (i = 0; i < pc->nseen; i++)
		free(pc->seen[i].name);
	free(pc->seen);
	pthread_mutex_destroy(&pc->mu);
	free(pc);
}

static int ensure_ctx(struct pcsc_ctx *pc)
{
	if (pc->ctx && SCardIsValidContext(pc->ctx) == SCARD_S_SUCCESS)
		return 0;
	if (pc->ctx)
		SCardReleaseContext(pc->ctx);
	pc->ctx = 0;
	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &pc->ctx) !=
	    SCARD_S_SUCCESS) {
		pc->ctx = 0;
		return -1;
	}
	return 0;
}

static CK_RV pcsc_list(void *p, char ***names, size_t *n)
{
	struct pcsc_ctx *pc = p;
	DWORD len = 0;
	char *buf = NULL, *s;
	char **v = NULL;
	size_t cnt = 0, i;
	LONG r;

	*names = NULL;
	*n = 0;
	if (ensure_ctx(pc) < 0)
		return CKR_OK; /* no pcscd: no readers */
	r = SCardListReaders(pc->ctx, NULL, NULL, &len);
	if (r == SCARD_E_NO_READERS_AVAILABLE || r == SCARD_E_NO_SERVICE)
		return CKR_OK;
	if (r != SCARD_S_SUCCESS)
		return pcsc_rv(r);
	buf = malloc(len);
	if (!buf)
		return CKR_HOST_MEMORY;
	r = SCardListReaders(pc->ctx, NULL, buf, &len);
	if (r == SCARD_E_NO_READERS_AVAILABLE) {
		free(buf);
		return CKR_OK;
	}
	if (r != SCARD_S_SUCCESS) {
		free(buf);
		return pcsc_rv(r);
	}
	for (s = buf; s < buf + len && *s; s += strlen(s) + 1)
		cnt++;
	v = calloc(cnt ? cnt : 1, sizeof(*v));
	if (!v)
		goto nomem;
	for (i = 0, s = buf; i < cnt; s += strlen(s) + 1, i++) {
		v[i] = strdup(s);
		if (!v[i]) {
			kyso_strv_free(v, i);
			goto nomem;
		}
	}
	free(buf);
	pthread_mutex_lock(&pc->mu);
	pc->nreaders_seen = cnt;
	pthread_mutex_unlock(&pc->mu);
	*names = v;
	*n = cnt;
	return CKR_OK;
nomem:
	free(buf);
	return CKR_HOST_MEMORY;
}

static void remember(struct pcsc_ctx *pc, const char *reader, DWORD state)
{
	size_t i;
	struct seen *ns;

	pthread_mutex_lock(&pc->mu);
	for (i = 0; i < pc->nseen; i++) {
		if (strcmp(pc->seen[i].name, reader) == 0) {
			pc->seen[i].state = state;
			goto out;
		}
	}
	ns = realloc(pc->seen, (pc->nseen + 1) * sizeof(*ns));
	if (!ns)
		goto out;
	pc->seen = ns;
	ns[pc->nseen].name = strdup(reader);
	if (!ns[pc->nseen].name)
		goto out;
	ns[pc->nseen].state = state;
	pc->nseen++;
out:
	pthread_mutex_unlock(&pc->mu);
}

static CK_RV pcsc_status(void *p, const char *reader,
			 struct kyso_reader_state *st)
{
	struct pcsc_ctx *pc = p;
	SCARD_READERSTATE rs;
	LONG r;

	memset(st, 0, sizeof(*st));
	if (ensure_ctx(pc) < 0)
		return CKR_TOKEN_NOT_PRESENT;
	memset(&rs, 0, sizeof(rs));
	rs.szReader = reader;
	rs.dwCurrentState = SCARD_STATE_UNAWARE;
	r = SCardGetStatusChange(pc->ctx, 0, &rs, 1);
	if (r != SCARD_S_SUCCESS && r != SCARD_E_TIMEOUT)
		return pcsc_rv(r);
	if (rs.dwEventState & (SCARD_STATE_UNKNOWN | SCARD_STATE_UNAVAILABLE))
		return CKR_TOKEN_NOT_PRESENT;
	st->present = (rs.dwEventState & SCARD_STATE_PRESENT) != 0;
	st->mute = (rs.dwEventState & SCARD_STATE_MUTE) != 0;
	/* pcsc-lite keeps a per-reader card event counter in the high word. */
	st->events = (uint32_t)(rs.dwEventState >> 16);
	if (st->present && rs.cbAtr <= sizeof(st->atr)) {
		memcpy(st->atr, rs.rgbAtr, rs.cbAtr);
		st->atrlen = rs.cbAtr;
	}
	remember(pc, reader, rs.dwEventState & ~(DWORD)SCARD_STATE_CHANGED);
	return CKR_OK;
}

static CK_RV pcsc_wait(void *p, long timeout_ms)
{
	struct pcsc_ctx *pc = p;
	SCARD_READERSTATE *rs = NULL;
	size_t n, i;
	LONG r;
	CK_RV rv;

	pthread_mutex_lock(&pc->mu);
	if (pc->cancelled) {
		pc->cancelled = 0;
		pthread_mutex_unlock(&pc->mu);
		return CKR_FUNCTION_CANCELED;
	}
	if (!pc->wait_ctx &&
	    SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL,
				  &pc->wait_ctx) != SCARD_S_SUCCESS)
		pc->wait_ctx = 0;
	n = pc->nseen;
	rs = calloc(n + 1, sizeof(*rs));
	if (!rs) {
		pthread_mutex_unlock(&pc->mu);
		return CKR_HOST_MEMORY;
	}
	for (i = 0; i < n; i++) {
		rs[i].szReader = strdup(pc->seen[i].name);
		rs[i].dwCurrentState = pc->seen[i].state;
	}
	rs[n].szReader = PNP_READER;
	rs[n].dwCurrentState = (DWORD)(pc->nreaders_seen << 16);
	pthread_mutex_unlock(&pc->mu);

	if (!pc->wait_ctx) {
		/* No pcscd to wait on: sleep a slice so callers that loop do
		 * not spin; cancel is seen when the slice ends. */
		struct timespec ts = {0, 200 * 1000 * 1000};

		if (timeout_ms >= 0 && timeout_ms < 200)
			ts.tv_nsec = timeout_ms * 1000 * 1000;
		nanosleep(&ts, NULL);
		rv = CKR_NO_EVENT;
		goto out;
	}
	r = SCardGetStatusChange(pc->wait_ctx,
				 timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms,
				 rs, (DWORD)(n + 1));
	rv = pcsc_rv(r);
	if (r == SCARD_E_NO_SERVICE || r == SCARD_E_INVALID_HANDLE) {
		pthread_mutex_lock(&pc->mu);
		SCardReleaseContext(pc->wait_ctx);
		pc->wait_ctx = 0;
		pthread_mutex_unlock(&pc->mu);
		rv = CKR_OK; /* the daemon went away: that is a change */
	} else if (rv == CKR_DEVICE_ERROR || rv == CKR_TOKEN_NOT_PRESENT) {
		/* A reader vanished under us: a change, let the caller look. */
		rv = CKR_OK;
	}
out:
	for (i = 0; i < n; i++)
		free((char *)rs[i].szReader);
	free(rs);
	pthread_mutex_lock(&pc->mu);
	if (pc->cancelled) {
		pc->cancelled = 0;
		rv = CKR_FUNCTION_CANCELED;
	}
	pthread_mutex_unlock(&pc->mu);
	return rv;
}

static void pcsc_cancel(void *p)
{
	struct pcsc_ctx *pc = p;

	pthread_mutex_lock(&pc->mu);
	pc->cancelled = 1;
	if (pc->wait_ctx)
		SCardCancel(pc->wait_ctx);
	pthread_mutex_unlock(&pc->mu);
}

/* --- card handles ------------------------------------------------------ */

static CK_RV card_reconnect(struct kyso_card *c)
{
	struct pcsc_card *pcard = c->priv;
	LONG r = SCardReconnect(pcard->h, SCARD_SHARE_SHARED,
				SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
				SCARD_LEAVE_CARD, &pcard->proto);

	c->reset_seen = 1;
	return pcsc_rv(r);
}

static CK_RV card_transmit(struct kyso_card *c, const uint8_t *cmd,
			   size_t len, uint8_t *resp, size_t *resplen)
{
	struct pcsc_card *pcard = c->priv;
	const SCARD_IO_REQUEST *pci = pcard->proto == SCARD_PROTOCOL_T0
					      ? SCARD_PCI_T0
					      : SCARD_PCI_T1;
	DWORD rlen = (DWORD)*resplen;
	LONG r;

	r = SCardTransmit(pcard->h, pci, cmd, (DWORD)len, NULL, resp, &rlen);
	if (r == SCARD_W_RESET_CARD) {
		/* Another program reset the card: whatever we had selected or
		 * verified is gone. Reconnect; the caller fails this step. */
		card_reconnect(c);
		return CKR_DEVICE_ERROR;
	}
	if (r != SCARD_S_SUCCESS) {
		kyso_err("pcsc: SCardTransmit: %s", pcsc_stringify_error(r));
		return pcsc_rv(r) == CKR_DEVICE_ERROR ? CKR_DEVICE_ERROR
						      : CKR_DEVICE_REMOVED;
	}
	*resplen = rlen;
	return CKR_OK;
}

static CK_RV card_begin(struct kyso_card *c)
{
	struct pcsc_card *pcard = c->priv;
	LONG r = SCardBeginTransaction(pcard->h);

	if (r == SCARD_W_RESET_CARD) {
		CK_RV rv = card_reconnect(c);
		if (rv != CKR_OK)
			return rv;
		r = SCardBeginTransaction(pcard->h);
	}
	if (r != SCARD_S_SUCCESS)
		kyso_dbg("pcsc: SCardBeginTransaction: %s",
			 pcsc_stringify_error(r));
	return pcsc_rv(r);
}

static CK_RV card_end(struct kyso_card *c)
{
	struct pcsc_card *pcard = c->priv;
	LONG r = SCardEndTransaction(pcard->h, SCARD_LEAVE_CARD);

	if (r == SCARD_W_RESET_CARD) {
		card_reconnect(c);
		return CKR_OK;
	}
	return pcsc_rv(r);
}

static void card_release(struct kyso_card *c)
{
	struct pcsc_card *pcard = c->priv;

	if (!pcard)
		return;
	SCardDisconnect(pcard->h, SCARD_LEAVE_CARD);
	free(pcard);
	c->priv = NULL;
}

static const struct kyso_card_ops pcsc_card_ops = {
	.transmit = card_transmit,
	.begin = card_begin,
	.end = card_end,
	.release = card_release,
};

static CK_RV pcsc_connect(void *p, const char *reader, struct kyso_card **out)
{
	struct pcsc_ctx *pc = p;
	struct pcsc_card *pcard;
	struct kyso_card *c;
	BYTE atr[MAX_ATR_SIZE];
	DWORD atrlen = sizeof(atr), state, proto, rlen = 0;
	LONG r;

	*out = NULL;
	if (ensure_ctx(pc) < 0)
		return CKR_TOKEN_NOT_PRESENT;
	pcard = calloc(1, sizeof(*pcard));
	c = calloc(1, sizeof(*c));
	if (!pcard || !c) {
		free(pcard);
		free(c);
		return CKR_HOST_MEMORY;
	}
	r = SCardConnect(pc->ctx, reader, SCARD_SHARE_SHARED,
			 SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &pcard->h,
			 &pcard->proto);
	if (r != SCARD_S_SUCCESS) {
		kyso_dbg("pcsc: SCardConnect(%s): %s", reader,
			 pcsc_stringify_error(r));
		free(pcard);
		free(c);
		return r == SCARD_E_NO_SMARTCARD || r == SCARD_W_REMOVED_CARD
			       ? CKR_TOKEN_NOT_PRESENT
			       : pcsc_rv(r);
	}
	r = SCardStatus(pcard->h, NULL, &rlen, &state, &proto, atr, &atrlen);
	if (r != SCARD_S_SUCCESS || atrlen > sizeof(c->atr)) {
		SCardDisconnect(pcard->h, SCARD_LEAVE_CARD);
		free(pcard);
		free(c);
		return r != SCARD_S_SUCCESS ? pcsc_rv(r) : CKR_DEVICE_ERROR;
	}
	memcpy(c->atr, atr, atrlen);
	c->atrlen = atrlen;
	pcard->pc = pc;
	c->ops = &pcsc_card_ops;
	c->priv = pcard;
	*out = c;
	return CKR_OK;
}

const struct kyso_readers_ops kyso_pcsc_readers = {
	.open = pcsc_open,
	.close = pcsc_close,
	.list = pcsc_list,
	.status = pcsc_status,
	.wait = pcsc_wait,
	.cancel = pcsc_cancel,
	.connect = pcsc_connect,
};
