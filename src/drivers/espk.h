/* The ENTERSAFE-ESPK layout Feitian personalises CA-issued ePass2003 tokens
 * with (OpenSC issue #3834, PR #3835): DF 3F00/2003 whose FCI name is
 * "ENTERSAFE-ESPK", an index EF 6F01 of 30-byte records naming the files,
 * and files that are bare streams of PKCS#11 attributes. Parsers only, over
 * bytes the driver has read; kyso never writes this layout. */
#ifndef KYSO_DRIVERS_ESPK_H
#define KYSO_DRIVERS_ESPK_H

#include <stddef.h>
#include <stdint.h>

#define KYSO_ESPK_DF	    0x2003
#define KYSO_ESPK_INDEX	    0x6F01
#define KYSO_ESPK_RECLEN    30
#define KYSO_ESPK_NAME	    "ENTERSAFE-ESPK"
#define KYSO_ESPK_MAX_FILES 64

/* The vendor attribute that holds the card's key handle (0xA0xx for a
 * private key, 0x80xx for a public one), a 32-bit little-endian value. */
#define KYSO_ESPK_CKA_KEY_HANDLE 0x80000100UL

struct kyso_espk_entry {
	uint16_t fid;
	char dir[11];  /* NUL-terminated, at most 10 characters */
	char name[14]; /* NUL-terminated, at most 13 characters */
	uint8_t acl;
	uint16_t used;	/* bytes in use */
	uint16_t alloc; /* bytes allocated */
};

/* Whether an FCI file name (tag 84 of the DF's FCI) is the ESPK one: the 14
 * characters, then nothing or only zero bytes. */
int kyso_espk_is_name(const uint8_t *name, size_t len);

/* Parses the index: whole 30-byte records, FID and sizes little-endian.
 * Directory labels (FID FFFF), empty slots (FID 0000 or nothing used) and
 * records whose names are not printable are skipped. A trailing partial
 * record is ignored. At most cap entries are kept; *n gets their number.
 * 0, or -1 when len holds no record at all. */
int kyso_espk_index(const uint8_t *p, size_t len, struct kyso_espk_entry *out,
		    size_t cap, size_t *n);

/* The entry with this file name, or NULL. */
const struct kyso_espk_entry *kyso_espk_find(const struct kyso_espk_entry *e,
					     size_t n, const char *name);

struct kyso_espk_attr {
	uint32_t type;
	const uint8_t *val; /* inside the stream */
	uint32_t len;
};

/* Parses an attribute stream: (u32 type LE, u32 length LE, value) until
 * the end. Bytes after the last whole attribute must all be zero (unused
 * space) or the stream is malformed. At most cap attributes are kept.
 * 0, or -1 when malformed or when there are more than cap. */
int kyso_espk_attrs(const uint8_t *p, size_t len, struct kyso_espk_attr *out,
		    size_t cap, size_t *n);

/* The first attribute of this type, or NULL. */
const struct kyso_espk_attr *kyso_espk_attr(const struct kyso_espk_attr *a,
					    size_t n, uint32_t type);

/* A CK_BBOOL (1 byte) or CK_ULONG (4 or 8 bytes, little-endian) value:
 * 0 and *v, or -1 when the length fits neither. */
int kyso_espk_ulong(const struct kyso_espk_attr *a, uint64_t *v);

/* The container map: a 32-byte header, then 24-byte records whose first
 * two little-endian u32 are the private and public key handles. Records
 * end at the first one out of range (private 0xA000..0xAFFF, public
 * 0x8000..0x8FFF). */
struct kyso_espk_container {
	uint16_t priv;
	uint16_t pub;
};
#define KYSO_ESPK_MAX_CONTAINERS 16
int kyso_espk_containermap(const uint8_t *p, size_t len,
			   struct kyso_espk_container *out, size_t cap,
			   size_t *n);

#endif
