/* Bounded ASN.1 reading: element headers checked against the span before
 * any value is looked at, typed getters that refuse what does not fit. */
#include "iso7816/asn1.h"

#define MAX_TAG_BYTES 4
#define MAX_LEN_BYTES 4

/* Parses an element header at p[0..avail). 1: done; 0: the header runs
 * past avail; -1: malformed. The length is not checked against avail. */
static int header(const uint8_t *p, size_t avail, uint32_t *tag, int *cons,
		  size_t *hdrlen, size_t *len)
{
	size_t i = 0, n, k;
	uint32_t t;
	uint8_t b;

	if (avail == 0)
		return 0;
	b = p[i++];
	if (b == 0x00)
		return -1; /* end-of-contents: indefinite forms only */
	*cons = (b & 0x20) != 0;
	t = b;
	if ((b & 0x1F) == 0x1F) {
		do {
			if (i >= avail)
				return 0;
			if (i == MAX_TAG_BYTES)
				return -1;
			b = p[i++];
			t = t << 8 | b;
		} while (b & 0x80);
	}
	if (i >= avail)
		return 0;
	b = p[i++];
	if (b < 0x80) {
		*len = b;
	} else {
		n = b & 0x7F;
		if (n == 0 || n > MAX_LEN_BYTES)
			return -1;
		*len = 0;
		for (k = 0; k < n; k++) {
			if (i >= avail)
				return 0;
			*len = *len << 8 | p[i++];
		}
	}
	*tag = t;
	*hdrlen = i;
	return 1;
}

int kyso_asn1_next(struct kyso_cur *c, struct kyso_asn1 *t)
{
	size_t hdrlen = 0, len = 0;
	uint32_t tag = 0;
	int cons = 0, r;

	if (c->len == 0)
		return 0;
	r = header(c->p, c->len, &tag, &cons, &hdrlen, &len);
	if (r <= 0 || len > c->len - hdrlen)
		return -1;
	t->tag = tag;
	t->constructed = cons;
	t->raw = c->p;
	t->rawlen = hdrlen + len;
	t->val = c->p + hdrlen;
	t->len = len;
	c->p += hdrlen + len;
	c->len -= hdrlen + len;
	return 1;
}

int kyso_asn1_get(struct kyso_cur *c, uint32_t tag, struct kyso_asn1 *t)
{
	struct kyso_cur save = *c;

	if (kyso_asn1_next(c, t) != 1 || t->tag != tag) {
		*c = save;
		return -1;
	}
	return 0;
}

int kyso_asn1_opt(struct kyso_cur *c, uint32_t tag, struct kyso_asn1 *t)
{
	struct kyso_cur save = *c;
	int r = kyso_asn1_next(c, t);

	if (r <= 0)
		return r;
	if (t->tag != tag) {
		*c = save;
		return 0;
	}
	return 1;
}

struct kyso_cur kyso_asn1_inner(const struct kyso_asn1 *t)
{
	return kyso_cur_make(t->val, t->len);
}

int kyso_asn1_uint(const struct kyso_asn1 *t, uint32_t *v)
{
	size_t i = 0;
	uint32_t x = 0;

	if (t->len == 0 || (t->val[0] & 0x80))
		return -1;
	while (i < t->len - 1 && t->val[i] == 0)
		i++;
	if (t->len - i > 4)
		return -1;
	for (; i < t->len; i++)
		x = x << 8 | t->val[i];
	*v = x;
	return 0;
}

int kyso_asn1_bool(const struct kyso_asn1 *t, int *v)
{
	if (t->len != 1)
		return -1;
	*v = t->val[0] != 0;
	return 0;
}

int kyso_asn1_bits(const struct kyso_asn1 *t, uint32_t *bits)
{
	size_t i, nbits;
	uint32_t x = 0;

	if (t->len == 0 || t->val[0] > 7 || (t->len == 1 && t->val[0] != 0))
		return -1;
	nbits = (t->len - 1) * 8 - t->val[0];
	for (i = 0; i < nbits && i < 32; i++)
		if (t->val[1 + i / 8] & (0x80 >> (i % 8)))
			x |= (uint32_t)1 << i;
	*bits = x;
	return 0;
}

int kyso_asn1_at_padding(const struct kyso_cur *c)
{
	size_t i;

	for (i = 0; i < c->len; i++)
		if (c->p[i] != 0x00 && c->p[i] != 0xFF)
			return 0;
	return 1;
}

int kyso_asn1_extent(const uint8_t *p, size_t len, int at_end, size_t *used)
{
	size_t pos = 0, hdrlen = 0, elen = 0;
	uint32_t tag;
	int cons, r;

	*used = 0;
	while (pos < len) {
		if (p[pos] == 0x00 || p[pos] == 0xFF)
			return 1; /* padding after the last element */
		r = header(p + pos, len - pos, &tag, &cons, &hdrlen, &elen);
		if (r < 0)
			return -1;
		if (r == 0 || elen > len - pos - hdrlen)
			return at_end ? -1 : 0;
		pos += hdrlen + elen;
		*used = pos;
	}
	return at_end ? 1 : 0;
}
