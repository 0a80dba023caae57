/* pcsc-other: "another program" using the card between two kyso calls. It
 * connects in shared mode like any PC/SC client, sends the APDUs given in
 * hex (printing each answer), optionally holds a transaction for a while,
 * and disconnects leaving the card as it is or resetting it.
 *
 *   pcsc-other [--reset] [--hold-ms N] READER [APDU-HEX...]
 *
 * Reaches the private pcscd through PCSCLITE_CSOCK_NAME. Exit 0 when every
 * PC/SC call succeeded (whatever the card answered). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <winscard.h>

static int unhex(const char *s, unsigned char *out, size_t cap, size_t *n)
{
	size_t len = strlen(s), i;

	if (len % 2 || len / 2 > cap)
		return -1;
	for (i = 0; i < len / 2; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	*n = len / 2;
	return 0;
}

int main(int argc, char **argv)
{
	SCARDCONTEXT ctx;
	SCARDHANDLE h;
	DWORD proto, rlen;
	unsigned char cmd[4096], resp[65538];
	size_t n;
	long hold_ms = 0;
	int reset = 0, i = 1, j;
	LONG r;

	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--reset") == 0)
			reset = 1;
		else if (strcmp(argv[i], "--hold-ms") == 0 && i + 1 < argc)
			hold_ms = atol(argv[++i]);
		else
			break;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: pcsc-other [--reset] [--hold-ms N] "
				"READER [APDU-HEX...]\n");
		return 2;
	}
	r = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
	if (r != SCARD_S_SUCCESS) {
		fprintf(stderr, "pcsc-other: context: %s\n",
			pcsc_stringify_error(r));
		return 1;
	}
	r = SCardConnect(ctx, argv[i], SCARD_SHARE_SHARED,
			 SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &h, &proto);
	if (r != SCARD_S_SUCCESS) {
		fprintf(stderr, "pcsc-other: connect %s: %s\n", argv[i],
			pcsc_stringify_error(r));
		return 1;
	}
	r = SCardBeginTransaction(h);
	if (r != SCARD_S_SUCCESS) {
		fprintf(stderr, "pcsc-other: transaction: %s\n",
			pcsc_stringify_error(r));
		return 1;
	}
	for (j = i + 1; j < argc; j++) {
		if (unhex(argv[j], cmd, sizeof(cmd), &n) < 0 || n < 4) {
			fprintf(stderr, "pcsc-other: bad APDU '%s'\n", argv[j]);
			return 2;
		}
		rlen = sizeof(resp);
		r = SCardTransmit(h,
				  proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0
							     : SCARD_PCI_T1,
				  cmd, (DWORD)n, NULL, resp, &rlen);
		if (r != SCARD_S_SUCCESS) {
			fprintf(stderr, "pcsc-other: transmit: %s\n",
				pcsc_stringify_error(r));
			return 1;
		}
		for (n = 0; n < rlen; n++)
			printf("%02X", resp[n]);
		putchar('\n');
	}
	fflush(stdout);
	if (hold_ms > 0) {
		struct timespec ts = {hold_ms / 1000,
				      (hold_ms % 1000) * 1000000L};

		nanosleep(&ts, NULL);
	}
	r = SCardEndTransaction(h, SCARD_LEAVE_CARD);
	if (r == SCARD_S_SUCCESS)
		r = SCardDisconnect(h, reset ? SCARD_RESET_CARD
					     : SCARD_LEAVE_CARD);
	SCardReleaseContext(ctx);
	if (r != SCARD_S_SUCCESS) {
		fprintf(stderr, "pcsc-other: disconnect: %s\n",
			pcsc_stringify_error(r));
		return 1;
	}
	return 0;
}
