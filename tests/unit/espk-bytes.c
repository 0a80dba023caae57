/* ENTERSAFE-ESPK records and attribute streams for the tests
 * (espk-bytes.h). */
#include <string.h>

#include "drivers/espk.h"
#include "espk-bytes.h"

void put16le(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void put32le(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

void espk_put_record(uint8_t *r, unsigned fid, const char *dir,
		     const char *name, unsigned used, unsigned alloc)
{
	memset(r, 0, KYSO_ESPK_RECLEN);
	put16le(r, fid);
	memcpy(r + 0x02, dir, strlen(dir));
	memcpy(r + 0x0C, name, strlen(name));
	r[0x19] = 0x00;
	put16le(r + 0x1A, used);
	put16le(r + 0x1C, alloc);
}

size_t espk_put_attr(uint8_t *s, size_t n, uint32_t type, const void *v,
		     uint32_t len)
{
	put32le(s + n, type);
	put32le(s + n + 4, len);
	memcpy(s + n + 8, v, len);
	return n + 8 + len;
}
