/* The card shared with other programs between two kyso calls:
 *   1. opensc-tool (a stack we did not write) selects another application
 *      and reads from the card: kyso's next signature works, without the
 *      PIN being sent again.
 *   2. another program resets the card (SCARD_RESET_CARD): the card forgot
 *      the PIN and the selection. kyso selects again before its next
 *      command; the key without PIN signs at once; the key behind the PIN
 *      answers CKR_USER_NOT_LOGGED_IN (the session shows the logout) and
 *      signs after a new C_Login, whose VERIFY follows a SELECT.
 *   3. a signature answered "instruction not supported" / "file not
 *      found", as when another program left a different application
 *      selected: kyso selects its application and repeats the operation
 *      once (never a PIN command), and the signature verifies.
 *   4. another program holds a transaction for a second: kyso's signature
 *      waits for it and succeeds.
 * Loads KYSO_MODULE; run inside tests/with-card with a provisioned PIV card
 * (KYSO_PROV, CARD_CTL, PCSC_OTHER: tests/hardening/pcsc-other). */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hlib.h"

#define PIN "123456"
#define PIV_SELECT "00A4040009A00000030800001000"

static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot;

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fflush(stdout);
	r = system(cmd);
	if (h_verbose)
		h_note("%s: %d", cmd, r);
	return r;
}

/* The INS bytes of the commands the card got since log line `from`, as a
 * string of hex pairs ("A4 87 ..."). */
static void ins_since(size_t from, char *out, size_t cap)
{
	const char *path = getenv("KYSO_VCARD_LOG");
	char *line = NULL;
	size_t lcap = 0, i = 0, n = 0;
	FILE *fp = fopen(path, "r");

	out[0] = '\0';
	if (fp == NULL)
		h_die("cannot read the APDU log");
	while (getline(&line, &lcap, fp) > 0) {
		if (i++ < from || strncmp(line, "> ", 2) != 0 || n + 4 > cap)
			continue;
		n += (size_t)snprintf(out + n, cap - n, "%s%.2s", n ? " " : "",
				      line + 4);
	}
	free(line);
	fclose(fp);
}

static CK_ULONG session_state(CK_SESSION_HANDLE s)
{
	CK_SESSION_INFO si;

	if (f->C_GetSessionInfo(s, &si) != CKR_OK)
		return (CK_ULONG)-1;
	return si.state;
}

int main(int argc, char **argv)
{
	static const uint8_t msg[] = "shared card";
	const char *reader = getenv("KYSO_READER");
	const char *other = getenv("PCSC_OTHER");
	char seen[1024];
	CK_SESSION_HANDLE s;
	size_t from;
	unsigned verifies;
	int ok;
	CK_RV rv;

	if (argc > 1 && strcmp(argv[1], "-v") == 0)
		h_verbose = 1;
	if (reader == NULL || other == NULL)
		h_die("KYSO_READER and PCSC_OTHER must be set");
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(120);
	f = h_load(NULL);
	if (f->C_Initialize(NULL) != CKR_OK)
		h_die("C_Initialize");
	slot = h_token_slot(f, 10);
	rv = h_open_login(f, slot, PIN, &s);
	if (rv != CKR_OK)
		h_die("open and log in: %s", h_rv(rv));
	rv = h_sign(f, s, &h_key_9a, PIN, msg, sizeof(msg), &ok);
	CHECK(rv == CKR_OK && ok, "a signature before anyone else (%s)",
	      h_rv(rv));

	/* 1. opensc-tool selects OpenPGP and asks for data */
	from = h_log_lines();
	CHECK(run("opensc-tool -r '%s' -s 00A4040006D27600012401 "
		  "-s 00CA006E00 >/dev/null 2>&1",
		  reader) == 0,
	      "opensc-tool talked to the card");
	verifies = h_log_count(from, 0x20, 1);
	rv = h_sign(f, s, &h_key_9a, PIN, msg, sizeof(msg), &ok);
	CHECK(rv == CKR_OK && ok,
	      "after opensc-tool used the card, kyso signs (%s)", h_rv(rv));
	CHECK(h_log_count(from, 0x20, 1) == verifies,
	      "... without sending the PIN again");

	/* 2. another program resets the card: the card forgot the PIN */
	CHECK(run("'%s' --reset '%s' " PIV_SELECT " >/dev/null", other,
		  reader) == 0,
	      "another program selected and reset the card");
	from = h_log_lines();
	rv = h_sign(f, s, &h_key_9a, PIN, msg, sizeof(msg), &ok);
	CHECK(rv == CKR_USER_NOT_LOGGED_IN,
	      "after a reset, the key behind the PIN wants a login (%s)",
	      h_rv(rv));
	ins_since(from, seen, sizeof(seen));
	CHECK(strcmp(seen, "A4 87") == 0,
	      "... the card was selected again first (%s)", seen);
	CHECK(session_state(s) == CKS_RW_PUBLIC_SESSION,
	      "... and the session shows it is logged out (state %lu)",
	      session_state(s));
	from = h_log_lines();
	rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)PIN, strlen(PIN));
	CHECK(rv == CKR_OK, "C_Login again (%s)", h_rv(rv));
	ins_since(from, seen, sizeof(seen));
	CHECK(strcmp(seen, "A4 20") == 0,
	      "... sends SELECT then one VERIFY (%s)", seen);
	rv = h_sign(f, s, &h_key_9a, PIN, msg, sizeof(msg), &ok);
	CHECK(rv == CKR_OK && ok, "... and the key signs again (%s)",
	      h_rv(rv));
	CHECK(run("'%s' --reset '%s' >/dev/null", other, reader) == 0,
	      "another program reset the card again");
	from = h_log_lines();
	rv = h_sign(f, s, &h_key_9e, PIN, msg, sizeof(msg), &ok);
	CHECK(rv == CKR_OK && ok,
	      "after a reset, the key without PIN signs at once (%s)",
	      h_rv(rv));
	ins_since(from, seen, sizeof(seen));
	CHECK(strcmp(seen, "A4 87") == 0,
	      "... after selecting the application (%s)", seen);

	/* 3. an answer that says our application is not selected */
	from = h_log_lines();
	if (h_card_ctl("fault sw 6D00 ins 87") != 0)
		h_die("card-ctl");
	rv = h_sign(f, s, &h_key_9e, PIN, msg, sizeof(msg), &ok);
	CHECK(rv == CKR_OK && ok,
	      "\"instruction not supported\" to a signature: selected and "
	      "repeated once (%s)",
	      h_rv(rv));
	ins_since(from, seen, sizeof(seen));
	CHECK(strcmp(seen, "87 A4 87") == 0, "... the card saw %s", seen);
	if (h_card_ctl("fault sw 6A82 ins 87") != 0 ||
	    h_card_ctl("fault sw 6A82 ins 87") != 0)
		h_die("card-ctl");
	from = h_log_lines();
	rv = h_sign(f, s, &h_key_9e, PIN, msg, sizeof(msg), &ok);
	CHECK(rv != CKR_OK &&
		      (h_rv_allowed("C_Sign", rv) || h_rv_known("C_Sign", rv)),
	      "a second \"not found\" after the repeat is an error (%s)",
	      h_rv(rv));
	ins_since(from, seen, sizeof(seen));
	CHECK(strcmp(seen, "87 A4 87") == 0,
	      "... repeated once only: the card saw %s", seen);

	/* 4. another program holds a transaction for a second (the
	 * repeats above selected again: log in again) */
	rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)PIN, strlen(PIN));
	CHECK(rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN,
	      "logged in for the last part (%s)", h_rv(rv));
	if (run("'%s' --hold-ms 1000 '%s' " PIV_SELECT " >/dev/null & "
		"sleep 0.3",
		other, reader) != 0)
		h_die("starting the other program");
	{
		double t0 = h_now_ms();

		rv = h_sign(f, s, &h_key_9a, PIN, msg, sizeof(msg), &ok);
		CHECK(rv == CKR_OK && ok,
		      "a signature while another program holds the card "
		      "(%s, waited %.0f ms)",
		      h_rv(rv), h_now_ms() - t0);
	}

	/* 5. between two signatures with the key that wants its PIN for
	 * every use, opensc-tool selects another application. PC/SC does not
	 * tell kyso; the VERIFY of the next C_Login(CKU_CONTEXT_SPECIFIC)
	 * must still reach PIV, never the other application. This is why a
	 * PIN entry costs SELECT + VERIFY (tests/bench/bench.c, "shared"). */
	rv = h_sign(f, s, &h_key_9c, PIN, msg, sizeof(msg), &ok);
	CHECK(rv == CKR_OK && ok, "a signature with the PIN-each-use key (%s)",
	      h_rv(rv));
	CHECK(run("opensc-tool -r '%s' -s 00A4040006D27600012401 "
		  ">/dev/null 2>&1",
		  reader) == 0,
	      "opensc-tool selected another application");
	from = h_log_lines();
	rv = h_sign(f, s, &h_key_9c, PIN, msg, sizeof(msg), &ok);
	CHECK(rv == CKR_OK && ok,
	      "the next PIN-each-use signature works (%s)", h_rv(rv));
	ins_since(from, seen, sizeof(seen));
	CHECK(strcmp(seen, "A4 20 87") == 0,
	      "... its VERIFY follows kyso's SELECT: the card saw %s", seen);
	rv = f->C_Finalize(NULL);
	CHECK(rv == CKR_OK, "C_Finalize: %s", h_rv(rv));
	CHECK(h_pin_repeats() == 0,
	      "no PIN command went to the card again after it was refused "
	      "(%u did)",
	      h_pin_repeats());
	return h_done("sharing");
}
