/* What the hardening tests share: loading the module, finding the token and
 * its keys, signing and checking the signature against the key the card
 * was provisioned with (never against what the module itself reports),
 * steering the virtual card with tests/card-ctl, reading its APDU log, and
 * the per-function return codes PKCS#11 2.40 allows. */
#ifndef KYSO_HARDENING_HLIB_H
#define KYSO_HARDENING_HLIB_H

#include <stddef.h>
#include <stdint.h>

#include "kyso/pkcs11.h"

extern int h_failures;
extern int h_verbose;

/* Reports a check; a failed one is counted and printed with its place. */
#define CHECK(cond, ...)                                                       \
	h_check((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)
void h_check(int ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A failure the test cannot go on after: printed, then exit(1). */
void h_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void h_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Ends the program: 0 when every check held. */
int h_done(const char *what);

const char *h_rv(CK_RV rv);

/* dlopen()s path (KYSO_MODULE when NULL) and returns its function list. */
CK_FUNCTION_LIST_PTR h_load(const char *path);

/* The first slot with a token, waiting up to timeout_s for one. */
CK_SLOT_ID h_token_slot(CK_FUNCTION_LIST_PTR f, int timeout_s);

/* An object of class cls with CKA_ID id (1 byte, PIV style); 0 if none. */
CK_OBJECT_HANDLE h_find(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
			CK_OBJECT_CLASS cls, uint8_t id);

/* The keys of a provisioned card (tests/integration/piv-provision.sh):
 * PIV slot, CKA_ID, mechanism used to sign, whether it needs the PIN right
 * before each use. Public keys come from DIR/pub-<slot>.pem (KYSO_PROV). */
struct h_key {
	const char *slot; /* "9a" */
	uint8_t id;
	CK_MECHANISM_TYPE mech;
	int pin;	  /* needs a user login */
	int always_auth;  /* and a context login before each use */
};
extern const struct h_key h_key_9a, h_key_9c, h_key_9e;

/* Signs msg with key through session s (SignInit + one C_Sign; a context
 * login with pin first when the key asks for it). Returns the C_Sign (or
 * first failing) return value; on CKR_OK, *ok says whether the signature
 * verifies against the provisioned public key. */
CK_RV h_sign(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
	     const struct h_key *k, const char *pin, const uint8_t *msg,
	     size_t msglen, int *ok);
/* The same in two steps, for tests that time C_Sign. */
CK_RV h_sign_init(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s,
		  const struct h_key *k, const char *pin);
/* 1 when sig is a good signature of msg by key k (provisioned key). */
int h_verify(const struct h_key *k, const uint8_t *msg, size_t msglen,
	     const uint8_t *sig, size_t siglen);

/* Opens a session on slot and logs in as user (pin NULL: no login). */
CK_RV h_open_login(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, const char *pin,
		   CK_SESSION_HANDLE *s);

/* Runs tests/card-ctl (CARD_CTL) with these words; 0 when it succeeded. */
int h_card_ctl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The vcard's APDU log (KYSO_VCARD_LOG): the number of lines so far, and
 * over the lines from `from` on, the count of commands with this INS that
 * carry data (VERIFY with a PIN, not the status query). */
size_t h_log_lines(void);
unsigned h_log_count(size_t from, uint8_t ins, int with_data);
/* Over the whole APDU log: how many times a PIN command (VERIFY, CHANGE
 * REFERENCE DATA, RESET RETRY COUNTER with data) went to the card again,
 * the same bytes, after the card had not accepted it (any answer but 9000,
 * or none) and before the PIN was changed or unblocked. For tests whose
 * application never repeats a refused PIN itself: then every repeat is
 * the module's. */
unsigned h_pin_repeats(void);
/* A counter of the vcard's stats file (KYSO_VCARD_STATS). */
long h_stat(const char *name);

/* Whether rv is a return value PKCS#11 2.40 lists for the function. */
int h_rv_allowed(const char *func, CK_RV rv);
/* Whether rv is one the module is known to give for func although PKCS#11
 * does not list it (reported; see the list in hlib.c). */
int h_rv_known(const char *func, CK_RV rv);

/* Milliseconds of a monotonic clock. */
double h_now_ms(void);
void h_sleep_ms(long ms);

#endif
