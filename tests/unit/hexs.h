/* Hex strings the unit tests build their card scripts and expected bytes
 * with. Every string (and anything else handed to keep()) lives in one
 * arena until arena_free(), which a test file registers as its teardown. */
#ifndef KYSO_TEST_HEXS_H
#define KYSO_TEST_HEXS_H

#include <stddef.h>
#include <stdint.h>

/* Takes p (malloc'd, not NULL) into the arena; returns it. */
void *keep(void *p);
/* Frees everything kept so far. */
void arena_free(void);

/* p[0..n) as upper-case hex. */
char *hx(const uint8_t *p, size_t n);
/* The first n characters of s. */
char *sub(const char *s, size_t n);
/* The strings up to a NULL, one after the other. */
char *cat(const char *first, ...) __attribute__((sentinel));
/* printf into a string of the size it needs. */
char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
/* A BER-TLV / DER element as hex: a tag of 1 to 3 bytes, the length in
 * the shortest form, then val (hex digits, no spaces). */
char *tlv(unsigned tag, const char *val);
/* The bytes of s (UTF-8) as hex. */
char *utf8(const char *s);

/* Hex (spaces allowed) into out; fails the test when it is not hex or
 * more than cap bytes. Returns the byte count. */
size_t unhex(const char *h, uint8_t *out, size_t cap);

#endif
