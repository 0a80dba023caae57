/* PIN safety through the module, asserted by what the card saw (the vcard's
 * APDU log and counters) and by what the module wrote (KYSO_DEBUG=3 log):
 *   - every PKCS#11 call that carries a PIN, PUK or new PIN sends exactly
 *     one PIN command (VERIFY 20 / CHANGE REFERENCE DATA 24 / RESET RETRY
 *     COUNTER 2C), right or wrong, and every other call sends none: a wrong
 *     PIN costs one try and is never retried, a wrong PUK held for
 *     C_InitPIN is used once and then forgotten;
 *   - the card's failed-VERIFY counter moves by exactly the wrong PINs
 *     given;
 *   - the debug log traces every APDU but contains none of the PINs, PUKs
 *     or the management key, in ASCII or in hex, and shows the redaction
 *     marker for each PIN command instead.
 * Loads KYSO_MODULE with KYSO_DEBUG=3 and KYSO_LOG set (pin.sh); run inside
 * tests/with-card with a provisioned PIV card (KYSO_PROV). */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hlib.h"

/* Distinct values, so that a search cannot confuse them with other data. */
#define PIN	   "123456"
#define NEW_PIN	   "654321"
#define BAD_PIN	   "493827"
#define BAD_CTX	   "582914"
#define BAD_OLD	   "736251"
#define PUK	   "12345678"
#define BAD_PUK	   "90817263"
#define MGMT_HEX   "010203040506070801020304050607080102030405060708"
#define MGMT_CRED  "3des:" MGMT_HEX

static CK_FUNCTION_LIST_PTR f;
static CK_SESSION_HANDLE s;

struct pin_cmds {
	unsigned verify, change, reset;
};

static struct pin_cmds counts(size_t from)
{
	struct pin_cmds c;

	c.verify = h_log_count(from, 0x20, 1);
	c.change = h_log_count(from, 0x24, 1);
	c.reset = h_log_count(from, 0x2C, 1);
	return c;
}

/* Runs a call and checks the PIN commands it sent. */
#define EXPECT(call, want_rv, v, c, r)                                         \
	do {                                                                   \
		size_t from_ = h_log_lines();                                  \
		CK_RV rv_ = (call);                                            \
		struct pin_cmds got_ = counts(from_);                          \
		CHECK(rv_ == (want_rv), "%s: %s (want %s)", #call, h_rv(rv_),  \
		      h_rv(want_rv));                                          \
		CHECK(got_.verify == (v) && got_.change == (c) &&              \
			  got_.reset == (r),                                   \
		      "%s: sent VERIFY %u, CHANGE %u, RESET RETRY %u (want "   \
		      "%u %u %u)",                                             \
		      #call, got_.verify, got_.change, got_.reset, (v), (c),   \
		      (r));                                                    \
		pin_calls += (v) + (c) + (r);                                  \
	} while (0)

static unsigned pin_calls;

static CK_RV login(CK_USER_TYPE who, const char *pin)
{
	return f->C_Login(s, who, (CK_UTF8CHAR_PTR)pin, strlen(pin));
}

static CK_RV set_pin(const char *old, const char *newp)
{
	return f->C_SetPIN(s, (CK_UTF8CHAR_PTR)old, strlen(old),
			   (CK_UTF8CHAR_PTR)newp, strlen(newp));
}

static CK_RV init_pin(const char *pin)
{
	return f->C_InitPIN(s, (CK_UTF8CHAR_PTR)pin, strlen(pin));
}

static CK_RV sign_init(const struct h_key *k)
{
	CK_MECHANISM m = {k->mech, NULL, 0};

	return f->C_SignInit(s, &m, h_find(f, s, CKO_PRIVATE_KEY, k->id));
}

static CK_RV sign(const struct h_key *k, int want_ok)
{
	static const uint8_t msg[] = "pin test";
	uint8_t sig[512];
	CK_ULONG siglen = sizeof(sig);
	CK_RV rv = f->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &siglen);

	if (rv == CKR_OK && want_ok)
		CHECK(h_verify(k, msg, sizeof(msg), sig, siglen),
		      "the signature verifies");
	return rv;
}

static CK_RV token_flags(CK_FLAGS *fl)
{
	CK_SESSION_INFO si;
	CK_TOKEN_INFO ti;
	CK_RV rv = f->C_GetSessionInfo(s, &si);

	if (rv == CKR_OK)
		rv = f->C_GetTokenInfo(si.slotID, &ti);
	*fl = rv == CKR_OK ? ti.flags : 0;
	return rv;
}

/* --- the debug log ------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, n = 0, r;

	if (fp == NULL)
		h_die("cannot read %s", path);
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap);
			if (buf == NULL)
				h_die("out of memory");
		}
		r = fread(buf + n, 1, 4096, fp);
		if (r == 0)
			break;
		n += r;
	}
	fclose(fp);
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int contains_ci(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (strncasecmp(hay, needle, n) == 0)
			return 1;
	return 0;
}

static void hex_of(const char *str, char *out)
{
	for (; *str; str++, out += 2)
		sprintf(out, "%02X", (unsigned char)*str);
	*out = '\0';
}

static void check_log(const char *path)
{
	static const char *const secrets[] = {PIN,     NEW_PIN, BAD_PIN,
					      BAD_CTX, BAD_OLD, PUK,
					      BAD_PUK, MGMT_HEX};
	size_t len, i, j, k = 0, markers = 0;
	char *log = slurp(path, &len), *hexrun, hex[128];
	const char *p;

	/* all hex digits of the log in one run, so that a PIN split over a
	 * line break is found too */
	hexrun = malloc(len + 1);
	if (hexrun == NULL)
		h_die("out of memory");
	for (i = 0; i < len; i++)
		if (isxdigit((unsigned char)log[i]))
			hexrun[k++] = log[i];
	hexrun[k] = '\0';

	CHECK(strstr(log, "apdu>") != NULL,
	      "the KYSO_DEBUG=3 log traces APDUs (%zu bytes)", len);
	for (p = log; (p = strstr(p, "[PIN data redacted")) != NULL; p++)
		markers++;
	CHECK(markers == pin_calls,
	      "the log shows the redaction marker for each of the %u PIN "
	      "commands (%zu)",
	      pin_calls, markers);
	for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		CHECK(!contains_ci(log, secrets[i]),
		      "the log does not contain \"%s\"", secrets[i]);
		hex_of(secrets[i], hex);
		CHECK(!contains_ci(hexrun, hex),
		      "the log does not contain the hex of \"%s\" (%s)",
		      secrets[i], hex);
		/* and not padded as on the card (FF to 8 bytes) */
		if (strlen(secrets[i]) < 8) {
			for (j = strlen(secrets[i]); j < 8; j++)
				strcat(hex, "FF");
			CHECK(!contains_ci(hexrun, hex),
			      "the log does not contain %s", hex);
		}
	}
	/* the management key's bytes, as the card would see them */
	CHECK(!contains_ci(hexrun, MGMT_HEX), "no management key bytes");
	free(hexrun);
	free(log);
}

int main(void)
{
	const char *logpath = getenv("KYSO_LOG");
	CK_SLOT_ID slot;
	CK_FLAGS fl = 0;
	long fails0;
	CK_RV rv;

	if (logpath == NULL || getenv("KYSO_DEBUG") == NULL)
		h_die("run with KYSO_DEBUG=3 and KYSO_LOG set");
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(120);
	f = h_load(NULL);
	if (f->C_Initialize(NULL) != CKR_OK)
		h_die("C_Initialize");
	slot = h_token_slot(f, 10);
	rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
			      NULL, &s);
	if (rv != CKR_OK)
		h_die("C_OpenSession: %s", h_rv(rv));
	fails0 = h_stat("verify_fail");

	/* a wrong user PIN: one try, nothing more afterwards */
	EXPECT(login(CKU_USER, BAD_PIN), CKR_PIN_INCORRECT, 1, 0, 0);
	EXPECT(token_flags(&fl), CKR_OK, 0, 0, 0);
	CHECK(fl & CKF_USER_PIN_COUNT_LOW, "the token says a try was lost");
	EXPECT(sign_init(&h_key_9a), CKR_KEY_HANDLE_INVALID, 0, 0, 0);
	EXPECT(f->C_Logout(s), CKR_USER_NOT_LOGGED_IN, 0, 0, 0);
	/* a PIN of the wrong length never reaches the card */
	EXPECT(login(CKU_USER, "12"), CKR_PIN_LEN_RANGE, 0, 0, 0);
	EXPECT(login(CKU_USER, "123456789"), CKR_PIN_LEN_RANGE, 0, 0, 0);
	EXPECT(login(CKU_USER, PIN), CKR_OK, 1, 0, 0);
	EXPECT(token_flags(&fl), CKR_OK, 0, 0, 0);
	CHECK(!(fl & CKF_USER_PIN_COUNT_LOW), "the count is full again");
	EXPECT(login(CKU_USER, PIN), CKR_USER_ALREADY_LOGGED_IN, 0, 0, 0);

	/* the signature key wants the PIN right before each use; a wrong
	 * one there costs one try too, and the key is not used */
	EXPECT(sign_init(&h_key_9c), CKR_OK, 0, 0, 0);
	EXPECT(login(CKU_CONTEXT_SPECIFIC, BAD_CTX), CKR_PIN_INCORRECT, 1, 0,
	       0);
	EXPECT(sign(&h_key_9c, 0), CKR_USER_NOT_LOGGED_IN, 0, 0, 0);
	EXPECT(sign_init(&h_key_9c), CKR_OK, 0, 0, 0);
	EXPECT(login(CKU_CONTEXT_SPECIFIC, PIN), CKR_OK, 1, 0, 0);
	EXPECT(sign(&h_key_9c, 1), CKR_OK, 0, 0, 0);
	EXPECT(sign_init(&h_key_9a), CKR_OK, 0, 0, 0);
	EXPECT(sign(&h_key_9a, 1), CKR_OK, 0, 0, 0);

	/* changing the PIN: one CHANGE REFERENCE DATA per call */
	EXPECT(set_pin(BAD_OLD, NEW_PIN), CKR_PIN_INCORRECT, 0, 1, 0);
	EXPECT(set_pin(PIN, NEW_PIN), CKR_OK, 0, 1, 0);
	EXPECT(f->C_Logout(s), CKR_OK, 0, 0, 0); /* VERIFY FF, no data */
	EXPECT(login(CKU_USER, PIN), CKR_PIN_INCORRECT, 1, 0, 0);
	EXPECT(login(CKU_USER, NEW_PIN), CKR_OK, 1, 0, 0);
	EXPECT(set_pin(NEW_PIN, PIN), CKR_OK, 0, 1, 0);
	EXPECT(f->C_Logout(s), CKR_OK, 0, 0, 0);

	/* the PUK is held by C_Login(SO) and used once by C_InitPIN */
	EXPECT(login(CKU_SO, BAD_PUK), CKR_OK, 0, 0, 0);
	EXPECT(init_pin(PIN), CKR_PIN_INCORRECT, 0, 0, 1);
	EXPECT(init_pin(PIN), CKR_USER_NOT_LOGGED_IN, 0, 0, 0);
	EXPECT(f->C_Logout(s), CKR_OK, 0, 0, 0);
	EXPECT(login(CKU_SO, PUK), CKR_OK, 0, 0, 0);
	EXPECT(init_pin(PIN), CKR_OK, 0, 0, 1);
	EXPECT(f->C_Logout(s), CKR_OK, 0, 0, 0);

	/* the management key: proven by the card, never sent */
	EXPECT(login(CKU_SO, MGMT_CRED), CKR_OK, 0, 0, 0);
	EXPECT(f->C_Logout(s), CKR_OK, 0, 0, 0);

	/* the right PIN still works: nothing was locked on the way */
	EXPECT(login(CKU_USER, PIN), CKR_OK, 1, 0, 0);
	EXPECT(f->C_Logout(s), CKR_OK, 0, 0, 0);
	CHECK(h_stat("verify_fail") - fails0 == 3,
	      "the card counted 3 failed VERIFY (the 3 wrong PINs given): "
	      "%ld",
	      h_stat("verify_fail") - fails0);

	rv = f->C_Finalize(NULL);
	CHECK(rv == CKR_OK, "C_Finalize: %s", h_rv(rv));
	check_log(logpath);
	CHECK(h_pin_repeats() == 0,
	      "no PIN command went to the card again after it was refused "
	      "(%u did)",
	      h_pin_repeats());
	return h_done("pin");
}
