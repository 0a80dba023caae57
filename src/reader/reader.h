/* The reader layer: a card handle with a transport underneath (PC/SC in the
 * module, a scripted card in unit tests and fuzzers) and a reader back-end that
 * lists readers, reports their state and waits for events. */
#ifndef KYSO_READER_H
#define KYSO_READER_H

#include <stddef.h>
#include <stdint.h>

#include "kyso/pkcs11.h"

#define KYSO_MAX_ATR 36
#define KYSO_MAX_RAPDU (65536 + 2) /* longest response one transmit gives */

struct kyso_card;
struct kyso_driver;

/* What a transport does. transmit gets a whole encoded command APDU and gives
 * the whole response with its status word (resp holds KYSO_MAX_RAPDU).
 * begin/end bracket exclusive use (PC/SC transaction); begin sets
 * card->reset_seen when the card was reset or reconnected since the last one,
 * and returns CKR_DEVICE_REMOVED / CKR_TOKEN_NOT_PRESENT when the card is gone. */
struct kyso_card_ops {
	CK_RV (*transmit)(struct kyso_card *c, const uint8_t *cmd, size_t len,
			  uint8_t *resp, size_t *resplen);
	CK_RV (*begin)(struct kyso_card *c);
	CK_RV (*end)(struct kyso_card *c);
	void (*release)(struct kyso_card *c); /* disconnect and free priv */
};

struct kyso_card {
	const struct kyso_card_ops *ops;
	void *priv; /* the transport's */
	uint8_t atr[KYSO_MAX_ATR];
	size_t atrlen;
	unsigned depth;	     /* transaction nesting, kept by kyso_card_begin */
	int reset_seen;	     /* set by the transport, cleared by the token layer */
	int ext_apdu;	     /* card takes extended-length APDUs (driver sets) */
	size_t max_send;     /* largest command data per APDU; 0 = 255 */
	uint64_t apdus;	     /* APDUs sent on this handle (for traces) */
	const struct kyso_driver *driver;
	void *drvdata; /* the driver's, freed by its unbind */
};

/* Transactions nest: only the outermost begin/end reach the transport. */
CK_RV kyso_card_begin(struct kyso_card *c);
CK_RV kyso_card_end(struct kyso_card *c);
/* One raw exchange, traced at KYSO_DEBUG=3 (PIN data redacted). */
CK_RV kyso_card_transmit(struct kyso_card *c, const uint8_t *cmd, size_t len,
			 uint8_t *resp, size_t *resplen);
/* The same, with redact != 0 also hiding the command data of APDUs that are
 * not PIN commands (KYSO_APDU_SECRET: keys, SM payloads). */
CK_RV kyso_card_transmit_redact(struct kyso_card *c, const uint8_t *cmd,
				size_t len, uint8_t *resp, size_t *resplen,
				int redact);
void kyso_card_free(struct kyso_card *c);

/* Reader state as the back-end sees it, without talking to the card. */
struct kyso_reader_state {
	int present;	/* a card is in the reader */
	int mute;	/* present but unresponsive */
	uint32_t events; /* changes each time a card is inserted or reset */
	uint8_t atr[KYSO_MAX_ATR];
	size_t atrlen;
};

/* A reader back-end. list gives a malloc'd array of malloc'd names (free with
 * kyso_strv_free). wait blocks until some reader's state or the reader list
 * changes (CKR_OK), the timeout passes (CKR_NO_EVENT; timeout_ms < 0 waits
 * forever) or cancel is called (CKR_FUNCTION_CANCELED). cancel may be called
 * from any thread. */
struct kyso_readers_ops {
	CK_RV (*open)(void **ctx);
	void (*close)(void *ctx);
	CK_RV (*list)(void *ctx, char ***names, size_t *n);
	CK_RV (*status)(void *ctx, const char *reader,
			struct kyso_reader_state *st);
	CK_RV (*wait)(void *ctx, long timeout_ms);
	void (*cancel)(void *ctx);
	CK_RV (*connect)(void *ctx, const char *reader, struct kyso_card **out);
};

extern const struct kyso_readers_ops kyso_pcsc_readers;

/* The back-end the token layer uses: PC/SC unless a test installs another
 * (before C_Initialize). NULL restores PC/SC. */
void kyso_readers_set_backend(const struct kyso_readers_ops *ops);
const struct kyso_readers_ops *kyso_readers_backend(void);

void kyso_strv_free(char **v, size_t n);

/* A scripted card for tests and fuzzers: each step is an expected command
 * (hex, spaces ignored; "*" matches any command) and the response to give
 * (hex, status word included). A command that does not match the next step
 * fails the exchange with CKR_DEVICE_ERROR and is remembered. */
struct kyso_script_step {
	const char *cmd;
	const char *resp;
};
struct kyso_card *kyso_script_card(const uint8_t *atr, size_t atrlen,
				   const struct kyso_script_step *steps,
				   size_t n);
/* Steps not yet consumed, and whether a command failed to match. */
size_t kyso_script_left(const struct kyso_card *c);
int kyso_script_mismatch(const struct kyso_card *c);

/* For fuzzers: answers the i-th command, whatever it is, with resp[i] (any
 * bytes, up to KYSO_MAX_RAPDU; copied). Past the last one, transmit fails
 * with CKR_DEVICE_ERROR. */
struct kyso_card *kyso_script_card_raw(const uint8_t *atr, size_t atrlen,
				       const uint8_t *const *resp,
				       const size_t *resplen, size_t n);

#endif
