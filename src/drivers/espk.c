/* ENTERSAFE-ESPK parsing: the 6F01 index, PKCS#11 attribute streams and the
 * container map, all little-endian and all bounded by the bytes given. */
#include "drivers/espk.h"

#include <string.h>

#define CMAP_HEADER 0x20
#define CMAP_RECORD 0x18

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

int kyso_espk_is_name(const uint8_t *name, size_t len)
{
	size_t n = strlen(KYSO_ESPK_NAME), i;

	if (name == NULL || len < n || memcmp(name, KYSO_ESPK_NAME, n) != 0)
		return 0;
	for (i = n; i < len; i++)
		if (name[i] != 0)
			return 0;
	return 1;
}

/* A zero-padded name field into a C string; -1 when a byte is not
 * printable ASCII or a non-zero byte follows the padding. */
static int field(const uint8_t *p, size_t len, char *out)
{
	size_t i, end = len;

	for (i = 0; i < len; i++) {
		if (p[i] == 0) {
			if (end == len)
				end = i;
		} else if (end != len || p[i] < 0x20 || p[i] > 0x7E) {
			return -1;
		}
	}
	memcpy(out, p, end);
	out[end] = '\0';
	return 0;
}

int kyso_espk_index(const uint8_t *p, size_t len, struct kyso_espk_entry *out,
		    size_t cap, size_t *n)
{
	size_t nrec = len / KYSO_ESPK_RECLEN, i, k = 0;

	*n = 0;
	if (p == NULL || nrec == 0)
		return -1;
	for (i = 0; i < nrec && k < cap; i++) {
		const uint8_t *r = p + i * KYSO_ESPK_RECLEN;
		struct kyso_espk_entry e;

		memset(&e, 0, sizeof(e));
		e.fid = le16(r);
		e.acl = r[0x19];
		e.used = le16(r + 0x1A);
		e.alloc = le16(r + 0x1C);
		if (e.fid == 0xFFFF || e.fid == 0x0000 || e.used == 0)
			continue;
		if (field(r + 0x02, 10, e.dir) < 0 ||
		    field(r + 0x0C, 13, e.name) < 0 || e.name[0] == '\0')
			continue;
		out[k++] = e;
	}
	*n = k;
	return 0;
}

const struct kyso_espk_entry *kyso_espk_find(const struct kyso_espk_entry *e,
					     size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(e[i].name, name) == 0)
			return &e[i];
	return NULL;
}

int kyso_espk_attrs(const uint8_t *p, size_t len, struct kyso_espk_attr *out,
		    size_t cap, size_t *n)
{
	size_t pos = 0, k = 0, i;
	uint32_t alen;

	*n = 0;
	if (p == NULL && len > 0)
		return -1;
	while (len - pos >= 8) {
		alen = le32(p + pos + 4);
		if (alen > len - pos - 8)
			break;
		if (le32(p + pos) == 0 && alen == 0) {
			/* unused space: only zeros may follow */
			break;
		}
		if (k == cap)
			return -1;
		out[k].type = le32(p + pos);
		out[k].len = alen;
		out[k].val = p + pos + 8;
		k++;
		pos += 8 + (size_t)alen;
	}
	for (i = pos; i < len; i++)
		if (p[i] != 0)
			return -1;
	*n = k;
	return 0;
}

const struct kyso_espk_attr *kyso_espk_attr(const struct kyso_espk_attr *a,
					    size_t n, uint32_t type)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (a[i].type == type)
			return &a[i];
	return NULL;
}

int kyso_espk_ulong(const struct kyso_espk_attr *a, uint64_t *v)
{
	uint64_t x = 0;
	uint32_t i;

	if (a == NULL || (a->len != 1 && a->len != 4 && a->len != 8))
		return -1;
	for (i = a->len; i > 0; i--)
		x = x << 8 | a->val[i - 1];
	*v = x;
	return 0;
}

int kyso_espk_containermap(const uint8_t *p, size_t len,
			   struct kyso_espk_container *out, size_t cap,
			   size_t *n)
{
	size_t pos, k = 0;

	*n = 0;
	if (p == NULL && len > 0)
		return -1;
	for (pos = CMAP_HEADER; pos + 8 <= len && k < cap; pos += CMAP_RECORD) {
		uint32_t priv = le32(p + pos), pub = le32(p + pos + 4);

		if (priv < 0xA000 || priv > 0xAFFF || pub < 0x8000 ||
		    pub > 0x8FFF)
			break;
		out[k].priv = (uint16_t)priv;
		out[k].pub = (uint16_t)pub;
		k++;
	}
	*n = k;
	return 0;
}
