/* A hostile card: kyso-vcard's fault injection (tests/card-ctl fault ...)
 * under every multi-APDU operation the module does -- binding (SELECT,
 * CHUID, Key History, each certificate container, PIN status), login,
 * signing with an RSA and an EC key, decrypting -- with truncated answers,
 * random garbage, a connection dropped mid-operation (vpcd then hands the
 * host an empty answer), and wrong or oversized status words (61xx / 6Cxx
 * announcing data that is not there).
 *
 * Every case must end in a return value PKCS#11 2.40 lists for the
 * function, or one of the known deviations of hlib.c (counted and shown):
 * never a crash (the program runs under sanitizers and valgrind too),
 * never a hang (each case has an alarm). A signature returned must
 * verify against the key the card was provisioned with, a login sends its
 * PIN at most once, and afterwards the token works again -- at once, or
 * after the card is pulled and put back (counted, not an error).
 *
 * The module is linked in (libkyso + the PKCS#11 face), so that --chain can
 * give the card an ATR without extended length: signatures then go as a
 * command chain and come back by GET RESPONSE, and faults land between the
 * blocks. Run inside tests/with-card with a provisioned PIV card
 * (KYSO_PROV, CARD_CTL; see tests/hardening/hostile.sh). */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "hlib.h"
#include "kyso/pkcs11.h"
#include "reader/reader.h"

#define PIN "123456"

static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot;
static int chain_mode;
static unsigned ncases, nreplugs, nsigned_ok, nerrors, nknown;
static unsigned replug_by_op[5], cases_by_op[5];
static int cur_op;
static const char *cur_case = "";
static const char *only; /* KYSO_HOSTILE_ONLY: cases whose name has it */

/* --- an ATR that only chains (73 C0 21 80: no extended Lc/Le) ---------- */

static const uint8_t atr_chain[] = {0x3B, 0x85, 0x80, 0x01, 0x80,
				    0x73, 0xC0, 0x21, 0x80, 0x1B};
static struct kyso_readers_ops chain_ops;

static CK_RV chain_connect(void *ctx, const char *reader,
			   struct kyso_card **out)
{
	CK_RV rv = kyso_pcsc_readers.connect(ctx, reader, out);

	if (rv == CKR_OK) {
		memcpy((*out)->atr, atr_chain, sizeof(atr_chain));
		(*out)->atrlen = sizeof(atr_chain);
	}
	return rv;
}

/* --- bookkeeping -------------------------------------------------------- */

static void on_alarm(int sig)
{
	static const char msg[] = "FAIL: a case hung (30 s): ";
	ssize_t r;

	(void)sig;
	r = write(2, msg, sizeof(msg) - 1);
	r = write(2, cur_case, strlen(cur_case));
	r = write(2, "\n", 1);
	(void)r;
	_exit(1);
}

/* Faults fired since log line `from`: the card logs "* fault KIND" for
 * the answers it spoils and "* out: fault drop" for a drop. */
static unsigned faults_fired(size_t from, unsigned *drops)
{
	const char *path = getenv("KYSO_VCARD_LOG");
	char *line = NULL;
	size_t cap = 0, i = 0;
	unsigned n = 0;
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		h_die("cannot read %s", path);
	*drops = 0;
	while (getline(&line, &cap, fp) > 0) {
		if (i++ < from)
			continue;
		if (strncmp(line, "* fault ", 8) == 0)
			n++;
		if (strncmp(line, "* out: fault drop", 17) == 0) {
			n++;
			(*drops)++;
		}
	}
	free(line);
	fclose(fp);
	return n;
}

enum op { OP_BIND, OP_LOGIN, OP_SIGN_RSA, OP_SIGN_EC, OP_DECRYPT };
static const char *const op_names[] = {"bind", "login", "sign 9A RSA",
				       "sign 9E EC", "decrypt 9D"};

static void replug(void)
{
	if (h_card_ctl("remove") != 0)
		h_die("card-ctl remove");
	if (h_card_ctl("insert") != 0)
		h_die("card-ctl insert");
	nreplugs++;
}

/* The token works: a fresh session signs, and the signature verifies. */
static int works(void)
{
	static const uint8_t msg[] = "after the fault";
	CK_SESSION_HANDLE s;
	int ok = 0;
	CK_RV rv;

	rv = h_open_login(f, slot, PIN, &s);
	if (rv == CKR_OK)
		rv = h_sign(f, s, &h_key_9a, PIN, msg, sizeof(msg), &ok);
	if (rv == CKR_OK || rv != CKR_SESSION_HANDLE_INVALID)
		f->C_CloseSession(s);
	return rv == CKR_OK && ok;
}

/* After a case: the card back in if it was dropped, and a working token,
 * by pulling and reinserting the card if it must be. bind_failed: the case
 * was a bind, and its first call failed. */
static void recover(unsigned dropped, int bind_failed)
{
	/* card-ctl insert waits for pcscd to see the dropped card gone */
	if (dropped && h_card_ctl("insert") != 0)
		h_die("card-ctl insert after %s", cur_case);
	if (works())
		return;
	/* A bind that failed is tried again by the next call
	 * (KYSO_BIND_TRIES): a spoiled answer must not need a replug. (One
	 * that succeeded on answers such as "no such object" holds what the
	 * card said until the card is reinserted.) */
	CHECK(!bind_failed || dropped,
	      "%s: the token needs a reinsertion after a fault in the bind",
	      cur_case);
	replug();
	replug_by_op[cur_op]++;
	CHECK(works(), "%s: the token works again after reinsertion",
	      cur_case);
}

/* How the cases ended: each return value and how often. */
static struct {
	CK_RV rv;
	unsigned n;
} tally[32];
static size_t ntally;

static void count_rv(CK_RV rv)
{
	size_t i;

	for (i = 0; i < ntally && tally[i].rv != rv; i++)
		;
	if (i == ntally) {
		if (ntally == sizeof(tally) / sizeof(tally[0]))
			h_die("more than %zu different return values", ntally);
		tally[ntally++].rv = rv;
	}
	tally[i].n++;
}

/* Queues faults (each "KIND [ARGS] ins HH"); returns how many. */
static size_t queue(const char *const *faults, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (h_card_ctl("fault %s", faults[i]) != 0)
			h_die("card-ctl fault %s", faults[i]);
	return n;
}

static void print_tally(void)
{
	char line[1024];
	size_t i, n = 0;

	line[0] = 0;
	for (i = 0; i < ntally && n < sizeof(line); i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s %u",
				      i ? ", " : "", h_rv(tally[i].rv),
				      tally[i].n);
	h_note("return values: %s", line);
}

/* --- the operations under fault ------------------------------------------ */

static uint8_t ct9d[256], pt9d[] = "the session key";
static size_t ct9dlen;

static void make_ciphertext(void)
{
	const char *dir = getenv("KYSO_PROV");
	char path[4096];
	EVP_PKEY *pk;
	EVP_PKEY_CTX *ctx;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/pub-9d.pem", dir ? dir : ".");
	fp = fopen(path, "r");
	if (fp == NULL)
		h_die("%s", path);
	pk = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
	fclose(fp);
	ctx = pk ? EVP_PKEY_CTX_new(pk, NULL) : NULL;
	ct9dlen = sizeof(ct9d);
	if (ctx == NULL || EVP_PKEY_encrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) != 1 ||
	    EVP_PKEY_encrypt(ctx, ct9d, &ct9dlen, pt9d, sizeof(pt9d)) != 1)
		h_die("cannot encrypt to the 9D key");
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
}

/* Runs one case: the faults are queued right before the call that is to
 * meet them. */
static void run_case(enum op op, const char *const *faults, size_t nf,
		     int expect_verify)
{
	static const uint8_t msg[] = "signed under fault";
	static char name[512];
	size_t from, i, n = 0;
	CK_SESSION_HANDLE s = 0;
	CK_RV rv = CKR_OK;
	const char *func = "C_Sign";
	unsigned fired, drops;
	int bind_failed = 0;

	n = (size_t)snprintf(name, sizeof(name), "%s%s:", op_names[op],
			     chain_mode ? " (chained)" : "");
	for (i = 0; i < nf && n < sizeof(name); i++)
		n += (size_t)snprintf(name + n, sizeof(name) - n, " [%s]",
				      faults[i]);
	cur_case = name;
	if (only != NULL && strstr(name, only) == NULL)
		return;
	ncases++;
	cur_op = (int)op;
	cases_by_op[op]++;
	alarm(30);

	if (op == OP_BIND) {
		CK_TOKEN_INFO ti;

		/* a fresh insertion: the next call binds */
		replug();
		nreplugs--;
		from = h_log_lines();
		queue(faults, nf);
		func = "C_GetTokenInfo";
		rv = f->C_GetTokenInfo(slot, &ti);
		bind_failed = rv != CKR_OK;
		if (rv == CKR_OK) {
			/* what was read must be usable */
			rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL,
					      NULL, &s);
			CHECK(h_rv_allowed("C_OpenSession", rv),
			      "%s: C_OpenSession: %s", name, h_rv(rv));
			if (rv == CKR_OK) {
				CK_OBJECT_HANDLE objs[64];
				CK_ULONG cnt = 0;

				if (f->C_FindObjectsInit(s, NULL, 0) == CKR_OK) {
					f->C_FindObjects(s, objs, 64, &cnt);
					f->C_FindObjectsFinal(s);
				}
				f->C_CloseSession(s);
			}
			rv = CKR_OK;
		}
	} else if (op == OP_LOGIN) {
		unsigned before;

		rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL,
				      &s);
		if (rv != CKR_OK)
			h_die("%s: C_OpenSession before the fault: %s", name,
			      h_rv(rv));
		from = h_log_lines();
		before = h_log_count(from, 0x20, 1);
		queue(faults, nf);
		func = "C_Login";
		rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)PIN,
				strlen(PIN));
		n = h_log_count(from, 0x20, 1) - before;
		CHECK(n <= 1, "%s: the PIN went to the card %zu times", name,
		      n);
		if (expect_verify)
			CHECK(n == 1, "%s: the PIN went to the card %zu times",
			      name, n);
		if (rv == CKR_OK)
			f->C_Logout(s);
		f->C_CloseSession(s);
	} else {
		const struct h_key *k =
			op == OP_SIGN_EC ? &h_key_9e : &h_key_9a;
		uint8_t out[1024];
		CK_ULONG outlen = sizeof(out);

		rv = h_open_login(f, slot, PIN, &s);
		if (rv == CKR_OK && op == OP_DECRYPT) {
			CK_MECHANISM m = {CKM_RSA_PKCS, NULL, 0};

			rv = f->C_DecryptInit(
				s, &m, h_find(f, s, CKO_PRIVATE_KEY, 0x03));
		} else if (rv == CKR_OK) {
			rv = h_sign_init(f, s, k, PIN);
		}
		if (rv != CKR_OK)
			h_die("%s: setting up before the fault: %s", name,
			      h_rv(rv));
		from = h_log_lines();
		queue(faults, nf);
		if (op == OP_DECRYPT) {
			func = "C_Decrypt";
			rv = f->C_Decrypt(s, ct9d, ct9dlen, out, &outlen);
			if (rv == CKR_OK)
				CHECK(outlen == sizeof(pt9d) &&
					  memcmp(out, pt9d, outlen) == 0,
				      "%s: a decryption returned is right",
				      name);
		} else {
			rv = f->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), out,
				       &outlen);
			if (rv == CKR_OK) {
				CHECK(h_verify(k, msg, sizeof(msg), out,
					       outlen),
				      "%s: a signature returned verifies",
				      name);
				nsigned_ok++;
			}
		}
		f->C_CloseSession(s);
	}
	if (!h_rv_allowed(func, rv) && h_rv_known(func, rv)) {
		h_note("known deviation: %s: %s returned %s", name, func,
		       h_rv(rv));
		nknown++;
	} else {
		CHECK(h_rv_allowed(func, rv),
		      "%s: %s returned %s (must be a value PKCS#11 lists "
		      "for it)",
		      name, func, h_rv(rv));
	}
	count_rv(rv);
	if (rv != CKR_OK)
		nerrors++;
	if (h_verbose)
		h_note("%s -> %s", name, h_rv(rv));
	/* the card logs a drop right after it closed the connection: the
	 * line may come a little after the host saw the empty answer */
	fired = faults_fired(from, &drops);
	for (i = 0; i < 20 && fired < nf; i++) {
		h_sleep_ms(50);
		fired = faults_fired(from, &drops);
	}
	CHECK(fired == nf, "%s: all %zu faults fired (%u did)", name, nf,
	      fired);
	recover(drops, bind_failed);
	alarm(0);
}

/* What the card may say instead of its answer. 61xx/6Cxx announce data
 * that is not there (the card has nothing left to give). */
static const char *const spoils[] = {
	"drop",	   "truncate", "garbage",  "sw 9000", "sw 6A82", "sw 6A88",
	"sw 6D00", "sw 6E00",  "sw 6F00",  "sw 6700", "sw 6982", "sw 6983",
	"sw 63C0", "sw 63C2",  "sw 6985",  "sw 6A80", "sw 6A84", "sw 61FF",
	"sw 6100", "sw 6CFF",  "sw 6C00",  "sw 6281", "sw 9001", "sw 0000",
};
#define NSPOILS (sizeof(spoils) / sizeof(spoils[0]))

static void with_prefix(enum op op, const char *ins, unsigned skip,
			const char *spoil, int expect_verify)
{
	char buf[8][64];
	const char *fl[8];
	unsigned i;

	/* earlier commands with the same INS get a harmless answer: a
	 * missing object, or "OK, go on" to a chained block */
	for (i = 0; i < skip && i < 7; i++) {
		snprintf(buf[i], sizeof(buf[i]), "sw %s ins %s",
			 strcmp(ins, "87") == 0 ? "9000" : "6A82", ins);
		fl[i] = buf[i];
	}
	snprintf(buf[i], sizeof(buf[i]), "%s ins %s", spoil, ins);
	fl[i] = buf[i];
	run_case(op, fl, i + 1, expect_verify);
}

int main(int argc, char **argv)
{
	size_t i;
	unsigned k;
	int quick = getenv("KYSO_HOSTILE_QUICK") != NULL;

	only = getenv("KYSO_HOSTILE_ONLY");
	CK_RV rv;

	for (i = 1; i < (size_t)argc; i++) {
		if (strcmp(argv[i], "--chain") == 0)
			chain_mode = 1;
		else if (strcmp(argv[i], "-v") == 0)
			h_verbose = 1;
		else
			h_die("usage: hostile [--chain] [-v]");
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	if (chain_mode) {
		chain_ops = kyso_pcsc_readers;
		chain_ops.connect = chain_connect;
		kyso_readers_set_backend(&chain_ops);
	}
	make_ciphertext();
	if (C_GetFunctionList(&f) != CKR_OK)
		h_die("C_GetFunctionList");
	rv = f->C_Initialize(NULL);
	if (rv != CKR_OK)
		h_die("C_Initialize: %s", h_rv(rv));
	slot = h_token_slot(f, 10);
	{
		size_t from = h_log_lines();

		if (!works())
			h_die("the token does not work before any fault");
		/* chained mode must really chain: 10 87 ... then 00 87 */
		if (chain_mode)
			CHECK(h_log_count(from, 0x87, 1) >= 2,
			      "--chain: the signature went as a command chain");
	}

	/* binding: every spoil on the first object read and on a
	 * certificate; a drop at every step of the bind */
	for (i = 0; i < NSPOILS; i++) {
		with_prefix(OP_BIND, "CB", 0, spoils[i], 0);
		if (!quick)
			with_prefix(OP_BIND, "CB", 2, spoils[i], 0);
	}
	for (k = 1; k < 6; k++)
		if (k != 2)
			with_prefix(OP_BIND, "CB", k, "drop", 0);
	for (i = 0; i < 4; i++) {
		with_prefix(OP_BIND, "A4", 0, spoils[i], 0);
		with_prefix(OP_BIND, "20", 0, spoils[i], 0);
	}

	/* login: the answer to VERIFY, and to the SELECT before it */
	for (i = 0; i < NSPOILS; i++)
		with_prefix(OP_LOGIN, "20", 0, spoils[i], 1);
	for (i = 0; i < (quick ? 4 : NSPOILS); i++)
		with_prefix(OP_LOGIN, "A4", 0, spoils[i], 0);

	/* signatures and decryption: the GENERAL AUTHENTICATE answer; when
	 * chained, also the first block's and the GET RESPONSE after it */
	for (i = 0; i < NSPOILS; i++) {
		with_prefix(OP_SIGN_RSA, "87", 0, spoils[i], 0);
		with_prefix(OP_SIGN_EC, "87", 0, spoils[i], 0);
		if (chain_mode) {
			with_prefix(OP_SIGN_RSA, "87", 1, spoils[i], 0);
			with_prefix(OP_SIGN_RSA, "C0", 0, spoils[i], 0);
		}
	}
	for (i = 0; i < (quick ? 4 : NSPOILS); i++)
		with_prefix(OP_DECRYPT, "87", 0, spoils[i], 0);
	/* the one repeat after "application not selected" meets the same */
	{
		static const char *const twice[][2] = {
			{"sw 6A82 ins 87", "sw 6A82 ins 87"},
			{"sw 6D00 ins 87", "sw 6D00 ins 87"},
			{"sw 6A88 ins 87", "drop ins 87"},
			{"sw 6E00 ins 87", "garbage ins 87"},
		};

		for (i = 0; i < sizeof(twice) / sizeof(twice[0]); i++) {
			run_case(OP_SIGN_RSA, twice[i], 2, 0);
			run_case(OP_SIGN_EC, twice[i], 2, 0);
			run_case(OP_DECRYPT, twice[i], 2, 0);
		}
	}

	h_note("%u fault cases%s: %u ended in an error code, %u signed "
	       "(every signature verified), %u needed the card pulled and "
	       "put back",
	       ncases, chain_mode ? " (chained APDUs)" : "", nerrors,
	       nsigned_ok, nreplugs);
	for (i = 0; i < 5; i++)
		h_note("  %s: %u cases, %u left the token unusable until the "
		       "card was pulled and put back",
		       op_names[i], cases_by_op[i], replug_by_op[i]);
	h_note("%u known deviations from the return values PKCS#11 lists "
	       "(see h_rv_known)",
	       nknown);
	print_tally();
	rv = f->C_Finalize(NULL);
	CHECK(rv == CKR_OK, "C_Finalize: %s", h_rv(rv));
	return h_done(chain_mode ? "hostile --chain" : "hostile");
}
