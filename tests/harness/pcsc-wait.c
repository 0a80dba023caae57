/* pcsc-wait: the harness's PC/SC probe. Waits until a (private) pcscd is
 * ready, until cards come and go, and sends raw APDUs, so shell tests need
 * neither pcsc_scan nor a PKCS#11 stack. Reaches pcscd through
 * PCSCLITE_CSOCK_NAME like every libpcsclite client.
 *
 *   pcsc-wait readers N [TIMEOUT]           N readers are listed
 *   pcsc-wait present INDEX|all [TIMEOUT]   card(s) present and answering
 *   pcsc-wait absent INDEX|all [TIMEOUT]    slot(s) empty
 *   pcsc-wait atr INDEX [TIMEOUT]           waits for the card, prints ATR
 *   pcsc-wait apdu INDEX HEX [COUNT]        prints the response (last of
 *                                           COUNT); timing on stderr
 *
 * TIMEOUT is in seconds (default 10; 0 checks once). Readers are numbered
 * in the order pcscd lists them. Exit: 0 done, 1 failed or timed out,
 * 2 usage. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* clock_gettime, nanosleep under -std=c11 */
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <winscard.h>
#include <wintypes.h>

#define DEFAULT_TIMEOUT_S 10
#define MAX_READERS	  16
#define RESP_MAX	  (65536 + 2)

static const char *prog = "pcsc-wait";

static void fail(const char *what, LONG rv)
{
	fprintf(stderr, "%s: %s: %s (0x%08lX)\n", prog, what,
		pcsc_stringify_error(rv), (unsigned long)rv);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int parse_ulong(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return (errno || end == s || *end || *s == '-') ? -1 : 0;
}

/* pcscd may still be starting: until it accepts us the client library
 * answers SCARD_E_NO_SERVICE, so keep asking until the deadline. */
static int establish(SCARDCONTEXT *ctx, double deadline)
{
	LONG rv;

	for (;;) {
		rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, ctx);
		if (rv == SCARD_S_SUCCESS)
			return 0;
		if (now_s() >= deadline)
			break;
		nap_ms(20);
	}
	fail("cannot reach pcscd (is PCSCLITE_CSOCK_NAME right?)", rv);
	return -1;
}

struct readers {
	char *buf; /* multi-string from SCardListReaders */
	const char *name[MAX_READERS];
	size_t n;
};

/* 0 with r filled (possibly n == 0), -1 on a real error. */
static int list_readers(SCARDCONTEXT ctx, struct readers *r)
{
	DWORD len = 0;
	LONG rv;
	char *p;

	free(r->buf);
	r->buf = NULL;
	r->n = 0;
	rv = SCardListReaders(ctx, NULL, NULL, &len);
	if (rv == SCARD_E_NO_READERS_AVAILABLE)
		return 0;
	if (rv != SCARD_S_SUCCESS) {
		fail("SCardListReaders", rv);
		return -1;
	}
	r->buf = malloc(len);
	if (!r->buf) {
		perror(prog);
		return -1;
	}
	rv = SCardListReaders(ctx, NULL, r->buf, &len);
	/* A reader may vanish between the two calls. */
	if (rv == SCARD_E_NO_READERS_AVAILABLE)
		return 0;
	if (rv == SCARD_E_INSUFFICIENT_BUFFER)
		return list_readers(ctx, r);
	if (rv != SCARD_S_SUCCESS) {
		fail("SCardListReaders", rv);
		return -1;
	}
	for (p = r->buf; p < r->buf + len && *p && r->n < MAX_READERS;
	     p += strlen(p) + 1)
		r->name[r->n++] = p;
	return 0;
}

static int cmd_readers(SCARDCONTEXT ctx, unsigned long want, double deadline)
{
	struct readers r = {0};
	int ret = 1;

	for (;;) {
		if (list_readers(ctx, &r) < 0)
			break;
		if (r.n >= want) {
			ret = 0;
			break;
		}
		if (now_s() >= deadline) {
			fprintf(stderr,
				"%s: timed out: %zu reader(s) listed, "
				"waiting for %lu\n",
				prog, r.n, want);
			break;
		}
		nap_ms(20);
	}
	free(r.buf);
	return ret;
}

/* Picks readers by "INDEX" or "all" from the current list. */
static int select_readers(SCARDCONTEXT ctx, const char *which,
			  struct readers *r, SCARD_READERSTATE *st, size_t *n)
{
	unsigned long idx;
	size_t i;

	if (list_readers(ctx, r) < 0)
		return -1;
	memset(st, 0, sizeof(*st) * MAX_READERS);
	if (!strcmp(which, "all")) {
		if (r->n == 0) {
			fprintf(stderr, "%s: no readers listed\n", prog);
			return -1;
		}
		for (i = 0; i < r->n; i++)
			st[i].szReader = r->name[i];
		*n = r->n;
		return 0;
	}
	if (parse_ulong(which, &idx) < 0) {
		fprintf(stderr, "%s: bad reader index '%s'\n", prog, which);
		return -1;
	}
	if (idx >= r->n) {
		fprintf(stderr, "%s: reader %lu not listed (%zu reader(s))\n",
			prog, idx, r->n);
		return -1;
	}
	st[0].szReader = r->name[idx];
	*n = 1;
	return 0;
}

static int state_ok(DWORD ev, int present)
{
	if (present)
		return (ev & SCARD_STATE_PRESENT) && !(ev & SCARD_STATE_MUTE);
	return (ev & SCARD_STATE_EMPTY) != 0;
}

/* Waits until every selected reader is in the wanted state. st[] carries
 * the ATRs out for cmd_atr. */
static int wait_state(SCARDCONTEXT ctx, SCARD_READERSTATE *st, size_t n,
		      int present, double deadline)
{
	double left;
	size_t i, ok;
	LONG rv;

	for (i = 0; i < n; i++)
		st[i].dwCurrentState = SCARD_STATE_UNAWARE;
	/* The first call (all UNAWARE) returns at once with the state. */
	left = 0;
	for (;;) {
		rv = SCardGetStatusChange(ctx, (DWORD)(left * 1000), st, n);
		if (rv == SCARD_E_TIMEOUT)
			goto timeout;
		if (rv != SCARD_S_SUCCESS) {
			fail("SCardGetStatusChange", rv);
			return -1;
		}
		for (i = ok = 0; i < n; i++) {
			ok += state_ok(st[i].dwEventState, present);
			st[i].dwCurrentState =
			    st[i].dwEventState & ~SCARD_STATE_CHANGED;
		}
		if (ok == n)
			return 0;
		left = deadline - now_s();
		if (left <= 0)
			goto timeout;
	}
timeout:
	for (i = 0; i < n; i++)
		if (!state_ok(st[i].dwCurrentState, present))
			fprintf(stderr,
				"%s: timed out waiting for a card to be %s "
				"in '%s' (state 0x%lX)\n",
				prog, present ? "present" : "absent",
				st[i].szReader,
				(unsigned long)st[i].dwCurrentState);
	return -1;
}

static void print_hex(const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		printf("%02X", p[i]);
	printf("\n");
}

static int cmd_state(SCARDCONTEXT ctx, const char *which, int present,
		     int print_atr, double deadline)
{
	SCARD_READERSTATE st[MAX_READERS];
	struct readers r = {0};
	size_t n;
	int ret = 1;

	if (select_readers(ctx, which, &r, st, &n) < 0)
		goto out;
	if (wait_state(ctx, st, n, present, deadline) < 0)
		goto out;
	/* With "all", the first reader's. */
	if (print_atr)
		print_hex(st[0].rgbAtr, st[0].cbAtr);
	ret = 0;
out:
	free(r.buf);
	return ret;
}

static int parse_hex(const char *s, uint8_t *out, size_t cap, size_t *len)
{
	size_t n = 0;
	int hi = -1, v;

	for (; *s; s++) {
		if (*s == ' ' || *s == ':')
			continue;
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else if (*s >= 'A' && *s <= 'F')
			v = *s - 'A' + 10;
		else
			return -1;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == cap)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	if (hi >= 0)
		return -1;
	*len = n;
	return 0;
}

static int cmd_apdu(SCARDCONTEXT ctx, const char *which, const char *hex,
		    unsigned long count)
{
	SCARD_READERSTATE st[MAX_READERS];
	struct readers r = {0};
	SCARDHANDLE h = 0;
	DWORD proto, rlen = 0;
	uint8_t *cmd = NULL, *resp = NULL;
	size_t n, clen;
	unsigned long i;
	double t0, dt;
	LONG rv;
	int ret = 1;

	cmd = malloc(RESP_MAX);
	resp = malloc(RESP_MAX);
	if (!cmd || !resp) {
		perror(prog);
		goto out;
	}
	if (parse_hex(hex, cmd, RESP_MAX, &clen) < 0 || clen < 4) {
		fprintf(stderr, "%s: bad APDU hex '%s'\n", prog, hex);
		goto out;
	}
	if (select_readers(ctx, which, &r, st, &n) < 0)
		goto out;
	rv = SCardConnect(ctx, st[0].szReader, SCARD_SHARE_SHARED,
			  SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &h, &proto);
	if (rv != SCARD_S_SUCCESS) {
		fail("SCardConnect", rv);
		goto out;
	}
	t0 = now_s();
	for (i = 0; i < count; i++) {
		rlen = RESP_MAX;
		rv = SCardTransmit(
		    h, proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1,
		    cmd, clen, NULL, resp, &rlen);
		if (rv != SCARD_S_SUCCESS) {
			fail("SCardTransmit", rv);
			goto out;
		}
	}
	dt = now_s() - t0;
	print_hex(resp, rlen);
	if (count > 1)
		fprintf(stderr, "%s: %lu APDUs in %.3f s: %.1f us per APDU\n",
			prog, count, dt, dt * 1e6 / count);
	ret = 0;
out:
	if (h)
		SCardDisconnect(h, SCARD_LEAVE_CARD);
	free(r.buf);
	free(cmd);
	free(resp);
	return ret;
}

static int usage(void)
{
	fprintf(stderr, "usage: pcsc-wait readers N [TIMEOUT]\n"
			"       pcsc-wait present INDEX|all [TIMEOUT]\n"
			"       pcsc-wait absent INDEX|all [TIMEOUT]\n"
			"       pcsc-wait atr INDEX [TIMEOUT]\n"
			"       pcsc-wait apdu INDEX HEX [COUNT]\n");
	return 2;
}

int main(int argc, char **argv)
{
	unsigned long timeout = DEFAULT_TIMEOUT_S, count = 1, want = 0;
	const char *cmd = argc > 1 ? argv[1] : "";
	int apdu = !strcmp(cmd, "apdu");
	SCARDCONTEXT ctx;
	double deadline;
	int ret;

	/* apdu takes a count where the others take a timeout; a stuck pcscd
	 * during an APDU is for the calling test's timeout to catch. */
	if (argc < 3 + apdu || argc > 4 + apdu)
		return usage();
	if (argc == 4 + apdu &&
	    parse_ulong(argv[3 + apdu], apdu ? &count : &timeout) < 0)
		return usage();
	if (apdu && count == 0)
		return usage();
	if (!strcmp(cmd, "readers") && parse_ulong(argv[2], &want) < 0)
		return usage();

	deadline = now_s() + timeout;
	if (establish(&ctx, deadline) < 0)
		return 1;

	if (!strcmp(cmd, "readers"))
		ret = cmd_readers(ctx, want, deadline);
	else if (!strcmp(cmd, "present"))
		ret = cmd_state(ctx, argv[2], 1, 0, deadline);
	else if (!strcmp(cmd, "absent"))
		ret = cmd_state(ctx, argv[2], 0, 0, deadline);
	else if (!strcmp(cmd, "atr"))
		ret = cmd_state(ctx, argv[2], 1, 1, deadline);
	else if (apdu)
		ret = cmd_apdu(ctx, argv[2], argv[3], count);
	else
		ret = usage();

	SCardReleaseContext(ctx);
	return ret;
}
