/* A bounded ASN.1 reader for DER (and the definite-length BER that cards
 * write): one element at a time from a cursor, typed getters for the
 * universal types PKCS#15 structures use. Nothing here allocates; every
 * value points into the span being read. Indefinite lengths are malformed. */
#ifndef KYSO_ISO7816_ASN1_H
#define KYSO_ISO7816_ASN1_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Tags as their identifier bytes. */
#define KYSO_ASN1_BOOLEAN      0x01
#define KYSO_ASN1_INTEGER      0x02
#define KYSO_ASN1_BIT_STRING   0x03
#define KYSO_ASN1_OCTET_STRING 0x04
#define KYSO_ASN1_NULL	       0x05
#define KYSO_ASN1_OID	       0x06
#define KYSO_ASN1_ENUMERATED   0x0A
#define KYSO_ASN1_UTF8STRING   0x0C
#define KYSO_ASN1_PRINTABLE    0x13
#define KYSO_ASN1_T61STRING    0x14
#define KYSO_ASN1_IA5STRING    0x16
#define KYSO_ASN1_GENTIME      0x18
#define KYSO_ASN1_SEQUENCE     0x30
#define KYSO_ASN1_SET	       0x31
#define KYSO_ASN1_CTX(n)       (0x80u | (n)) /* [n] IMPLICIT, primitive */
#define KYSO_ASN1_CTX_CONS(n)  (0xA0u | (n)) /* [n], constructed */
#define KYSO_ASN1_APP(n)       (0x40u | (n))

struct kyso_asn1 {
	uint32_t tag; /* identifier bytes, big-endian */
	int constructed;
	const uint8_t *val; /* contents, inside the span */
	size_t len;
	const uint8_t *raw; /* the whole element, header included */
	size_t rawlen;
};

/* Reads the next element. 1: read; 0: the span is empty; -1: malformed
 * (header or length past the span, indefinite length, a 00 tag). On 0 and
 * -1 the cursor is unchanged. */
int kyso_asn1_next(struct kyso_cur *c, struct kyso_asn1 *t);

/* The next element must carry this tag: 0 when read, -1 otherwise (then
 * the cursor is unchanged). */
int kyso_asn1_get(struct kyso_cur *c, uint32_t tag, struct kyso_asn1 *t);

/* An OPTIONAL element: 1 when the next element has this tag (consumed),
 * 0 when it has another one or the span is empty, -1 when malformed. */
int kyso_asn1_opt(struct kyso_cur *c, uint32_t tag, struct kyso_asn1 *t);

/* A cursor over the contents of an element. */
struct kyso_cur kyso_asn1_inner(const struct kyso_asn1 *t);

/* A non-negative INTEGER or ENUMERATED of at most 32 bits (leading zero
 * bytes allowed). 0, or -1 for a negative, empty or too large value. */
int kyso_asn1_uint(const struct kyso_asn1 *t, uint32_t *v);

/* BOOLEAN: 0 with *v 0 or 1, -1 when not one byte. */
int kyso_asn1_bool(const struct kyso_asn1 *t, int *v);

/* BIT STRING as named bits: bit n of the ASN.1 value (n from 0, the first
 * content bit after the unused-bits byte) is bit n of *bits; bits past 31
 * are ignored. -1 when the unused-bits byte is out of range. */
int kyso_asn1_bits(const struct kyso_asn1 *t, uint32_t *bits);

/* Whether the rest of the span is empty or only padding bytes (00 or FF),
 * as card files are after their last object. */
int kyso_asn1_at_padding(const struct kyso_cur *c);

/* How far a file of concatenated elements read so far (p[0..len)) goes:
 * 1 when it is complete (every element whole, then padding or nothing with
 * at_end set); 0 when more bytes are needed (an element runs past len, or
 * len ends at an element boundary without at_end); -1 when malformed.
 * *used gets the bytes up to the end of the last whole element. */
int kyso_asn1_extent(const uint8_t *p, size_t len, int at_end, size_t *used);

#endif
