/* One logging module for the library: KYSO_DEBUG=1..3 (errors, calls, APDUs)
 * to stderr, or to the file named by KYSO_LOG. APDU traces redact PIN data. */
#ifndef KYSO_UTIL_LOG_H
#define KYSO_UTIL_LOG_H

#include <stddef.h>
#include <stdint.h>

enum {
	KYSO_LOG_ERR = 1,  /* errors and card failures */
	KYSO_LOG_CALL = 2, /* PKCS#11 calls and driver steps */
	KYSO_LOG_APDU = 3, /* every APDU, PIN data redacted */
};

extern int kyso_log_level;

/* Reads KYSO_DEBUG and KYSO_LOG; safe to call more than once. */
void kyso_log_init(void);
void kyso_log_fini(void);
/* In a forked child, before logging again. */
void kyso_log_forked(void);
void kyso_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Trace a command (is_cmd != 0) or a response APDU at level 3. The data of
 * VERIFY (20), CHANGE REFERENCE DATA (24) and RESET RETRY COUNTER (2C), and of
 * any command with redact != 0, is replaced by a marker with its length. */
void kyso_log_apdu(int is_cmd, const uint8_t *p, size_t len, int redact);

/* Whether a command APDU carries PIN data that a trace must not show. */
int kyso_apdu_is_secret(const uint8_t *cmd, size_t len);

#define kyso_err(...) kyso_log(KYSO_LOG_ERR, __VA_ARGS__)
#define kyso_dbg(...)                                                          \
	do {                                                                   \
		if (kyso_log_level >= KYSO_LOG_CALL)                           \
			kyso_log(KYSO_LOG_CALL, __VA_ARGS__);                  \
	} while (0)

#endif
