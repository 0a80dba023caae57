/* The ENTERSAFE-ESPK layout as the tests write it (OpenSC issue #3834):
 * little-endian fields, 30-byte index records and PKCS#11 attribute
 * streams. */
#ifndef KYSO_TEST_ESPK_BYTES_H
#define KYSO_TEST_ESPK_BYTES_H

#include <stddef.h>
#include <stdint.h>

void put16le(uint8_t *p, unsigned v);
void put32le(uint8_t *p, uint32_t v);
/* One index record at r (KYSO_ESPK_RECLEN bytes): file id, directory and
 * file name, bytes used and allocated. */
void espk_put_record(uint8_t *r, unsigned fid, const char *dir,
		     const char *name, unsigned used, unsigned alloc);
/* Appends one attribute (type, length, value) to the stream s of n bytes;
 * returns the new length. */
size_t espk_put_attr(uint8_t *s, size_t n, uint32_t type, const void *v,
		     uint32_t len);

#endif
