/* ISO 7816-4 APDUs: encoding (short, extended, command chaining), the
 * exchange loop (61xx GET RESPONSE, 6Cxx re-send) and status word → CK_RV. */
#ifndef KYSO_ISO7816_APDU_H
#define KYSO_ISO7816_APDU_H

#include <stddef.h>
#include <stdint.h>

#include "kyso/pkcs11.h"
#include "reader/reader.h"
#include "util/buf.h"

#define KYSO_LE_NONE 0	     /* no Le field */
#define KYSO_LE_MAX 65536    /* "as much as there is": 00 (short) / 0000 */

enum {
	KYSO_APDU_SECRET = 1 << 0, /* data is a PIN or key: redact in traces */
	KYSO_APDU_CHAIN = 1 << 1,  /* data too long for one APDU may be chained */
	KYSO_APDU_SHORT = 1 << 2,  /* never use extended length */
};

struct kyso_apdu {
	uint8_t cla, ins, p1, p2;
	const uint8_t *data;
	size_t lc;
	size_t le; /* KYSO_LE_NONE, 1..65536 */
	unsigned flags;
};

/* Encodes one APDU. Extended length is used when lc > 255 or le > 256 unless
 * KYSO_APDU_SHORT is set (then CKR_ARGUMENTS_BAD). Returns CKR_OK or
 * CKR_BUFFER_TOO_SMALL / CKR_ARGUMENTS_BAD. */
CK_RV kyso_apdu_encode(const struct kyso_apdu *a, int extended, uint8_t *out,
		       size_t cap, size_t *outlen);

/* Sends an APDU and collects the whole answer into resp (appended to what is
 * there; resp->max bounds it). Data longer than what one APDU carries goes as
 * extended length when card->ext_apdu, else as a command chain (CLA | 0x10)
 * when KYSO_APDU_CHAIN is set, else CKR_ARGUMENTS_BAD. 61xx is followed by
 * GET RESPONSE until the card is done; 6Cxx re-sends once with Le = xx.
 * *sw gets the final status word. Returns a transport error, CKR_DEVICE_ERROR
 * for a malformed answer (shorter than 2 bytes, or over the bound), or CKR_OK
 * (whatever the status word). */
CK_RV kyso_apdu_transmit(struct kyso_card *card, const struct kyso_apdu *a,
			 struct kyso_buf *resp, uint16_t *sw);

/* The usual mapping of a final status word to a PKCS#11 return value:
 * 9000 → CKR_OK, 63Cx → CKR_PIN_INCORRECT, 6983 → CKR_PIN_LOCKED,
 * 6982 → CKR_USER_NOT_LOGGED_IN, 6A82/6A88 → CKR_OBJECT_HANDLE_INVALID... */
CK_RV kyso_sw_to_rv(uint16_t sw);

/* A status word that should have been 9000, as an error: kyso_sw_to_rv, and
 * CKR_DEVICE_ERROR where that would say CKR_OK. */
CK_RV kyso_sw_error(uint16_t sw);

/* The ISO 7816-4 answers to a PIN command (VERIFY, CHANGE REFERENCE DATA,
 * RESET RETRY COUNTER): 9000, 63Cx (x tries left), 6983 (blocked) and 6300
 * (wrong, count not given). Returns 1 and sets *rv to CKR_OK,
 * CKR_PIN_INCORRECT or CKR_PIN_LOCKED for one of those, else 0 (the caller
 * decides what the word means). *tries gets the tries left the answer
 * states, else -1. */
int kyso_pin_sw(uint16_t sw, CK_RV *rv, int *tries);

/* The answer to a PIN command without data (VERIFY with Lc absent), which
 * asks the PIN's state and spends no try: CKR_OK when verified (9000) or
 * when tries are left (63Cx, x > 0), CKR_PIN_LOCKED for 63C0 and 6983,
 * else as kyso_pin_sw / kyso_sw_error. *tries as kyso_pin_sw. */
CK_RV kyso_pin_state_sw(uint16_t sw, int *tries);

#define KYSO_SW_OK 0x9000

#endif
