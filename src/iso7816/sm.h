/* ISO/IEC 7816-4 secure messaging (clause 10) with data objects 87 (padding
 * indicator 01, ISO padding, CBC with a zero IV), 97 (Le), 99 (status word)
 * and 8E (8-byte MAC over the padded header and objects, chained through a
 * chaining value): wrapping of commands, checking and opening of answers.
 * The session keys come from whatever authentication the card uses. */
#ifndef KYSO_ISO7816_SM_H
#define KYSO_ISO7816_SM_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "iso7816/apdu.h"
#include "kyso/pkcs11.h"
#include "util/buf.h"

enum kyso_sm_mac {
	KYSO_SM_RETAIL, /* ISO 9797-1 algorithm 3, DES, 16-byte MAC key */
	KYSO_SM_CBCMAC, /* AES CBC-MAC of the ISO-padded input */
	KYSO_SM_CMAC,	/* AES-CMAC from the chaining value */
};

enum {
	/* Increment the chaining value (a big-endian counter of one block)
	 * before each command; the answer is checked with the same value. */
	KYSO_SM_ICV_COUNTER = 1 << 0,
};

/* One session. Keys are 16 bytes (two-key 3DES or AES-128). */
struct kyso_sm {
	enum kyso_cipher cipher; /* data encryption */
	enum kyso_sm_mac mac;
	unsigned flags;
	uint8_t kenc[16];
	uint8_t kmac[16];
	uint8_t icv[16]; /* chaining value: the first block-size bytes */
};

/* Options for one command. */
enum {
	/* MAC the bare 4-byte header (CMAC's own padding, the chaining
	 * value as CBC IV) instead of the padded header block: what
	 * ePass2003 FIPS tokens want for INS 82 P1 01 without data (OpenSC
	 * 0.23 sends it so; 0.24 lost the chaining value and real units
	 * refuse it, OpenSC #3034). Only for commands without data and Le. */
	KYSO_SM_MAC_HEADER_ONLY = 1 << 0,
};

/* Longest wrapped APDU for lc bytes of data: for sizing buffers. */
size_t kyso_sm_wrapped_max(size_t lc);

/* Wraps a command: CLA | 0C, data as 87 01 || E(padded data), Le as 97,
 * MAC as 8E 08. The wrapped APDU is short unless its data exceed 255 bytes
 * or Le needs two bytes in 97; it always ends with Le 00 (00 00) since the
 * answer is longer than the plain one. a->flags are ignored. */
CK_RV kyso_sm_wrap(struct kyso_sm *sm, const struct kyso_apdu *a, unsigned opts,
		   uint8_t *out, size_t cap, size_t *outlen);

/* Checks and opens the answer to the last wrapped command (resp: the whole
 * answer with its status word). The answer must be [87] 99 8E, in this
 * order and nothing else, 99 must repeat the status word, and the MAC must
 * verify: then *sw is the status word, the plain data are appended to out,
 * *plain = 0 and CKR_OK is returned.
 * An answer that is a bare status word other than 9000 and 61xx (the card
 * refused the command before secure messaging, or lost the session) gives
 * CKR_OK with *plain = 1: that status word is not authenticated and may
 * only ever mean failure.
 * Anything else -- a bad MAC, malformed objects, a bare 9000 -- gives
 * CKR_DEVICE_ERROR and nothing in out. */
CK_RV kyso_sm_unwrap(struct kyso_sm *sm, const uint8_t *resp, size_t len,
		     struct kyso_buf *out, uint16_t *sw, int *plain);

/* Wipes the session keys and chaining value. */
void kyso_sm_clear(struct kyso_sm *sm);

#endif
