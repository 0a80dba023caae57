/* A bounded BER-TLV reader (ISO 7816-4 / X.690 subset): tags up to 4 bytes,
 * definite lengths up to 4 bytes. Indefinite lengths and anything that would
 * run past the span are malformed. */
#ifndef KYSO_ISO7816_TLV_H
#define KYSO_ISO7816_TLV_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct kyso_tlv {
	uint32_t tag;	     /* the tag bytes, big-endian: 0x53, 0x5FC105, 0x7F49 */
	int constructed;     /* bit 6 of the first tag byte */
	const uint8_t *val;  /* points into the span */
	size_t len;
	size_t hdrlen;	     /* tag + length bytes */
};

/* Reads the next TLV from c. Returns 1 when one was read, 0 at the end of the
 * span (c->len == 0), -1 when malformed (c unchanged). Padding bytes 00/FF
 * between TLVs are not skipped: callers that expect them skip them. */
int kyso_tlv_next(struct kyso_cur *c, struct kyso_tlv *t);

/* Finds the first TLV with this tag at the top level of p[0..len). Returns 1
 * found, 0 not found, -1 malformed before it was found. */
int kyso_tlv_find(const uint8_t *p, size_t len, uint32_t tag,
		  struct kyso_tlv *t);

/* Writes a TLV header (tag, length) for len bytes of value; returns the header
 * size, or 0 if cap is too small. For building commands and vcard answers. */
size_t kyso_tlv_put_header(uint32_t tag, size_t len, uint8_t *out, size_t cap);

#endif
