/* Bounded cursors over card data, growable buffers with a ceiling, secure
 * zeroing and hex conversion. Everything here is a leaf: no logging, no
 * OpenSSL. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* explicit_bzero */
#endif

#include "util/buf.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define KYSO_BUF_DEFAULT_MAX ((size_t)1 << 20)
#define KYSO_BUF_MIN_CAP     64

int kyso_cur_u8(struct kyso_cur *c, uint8_t *v)
{
	if (c->len < 1)
		return -1;
	*v = c->p[0];
	c->p++;
	c->len--;
	return 0;
}

int kyso_cur_be16(struct kyso_cur *c, uint16_t *v)
{
	if (c->len < 2)
		return -1;
	*v = (uint16_t)((unsigned)c->p[0] << 8 | c->p[1]);
	c->p += 2;
	c->len -= 2;
	return 0;
}

int kyso_cur_be32(struct kyso_cur *c, uint32_t *v)
{
	if (c->len < 4)
		return -1;
	*v = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 |
	     (uint32_t)c->p[2] << 8 | c->p[3];
	c->p += 4;
	c->len -= 4;
	return 0;
}

int kyso_cur_take(struct kyso_cur *c, size_t n, const uint8_t **out)
{
	if (n > c->len)
		return -1;
	if (out)
		*out = c->p;
	/* p may be NULL for an empty span; NULL + 0 is undefined in C */
	if (n)
		c->p += n;
	c->len -= n;
	return 0;
}

int kyso_cur_skip(struct kyso_cur *c, size_t n)
{
	return kyso_cur_take(c, n, NULL);
}

/* glibc's explicit_bzero carries the same guarantee as OPENSSL_cleanse (the
 * store is never elided) and keeps src/util/ free of OpenSSL headers, which
 * only src/crypto/ may include. */
void kyso_wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

static size_t buf_ceiling(const struct kyso_buf *b)
{
	return b->max ? b->max : KYSO_BUF_DEFAULT_MAX;
}

int kyso_buf_reserve(struct kyso_buf *b, size_t extra)
{
	size_t max = buf_ceiling(b);
	size_t need, cap;
	uint8_t *np;

	if (extra == 0)
		return 0;
	if (b->len > max || extra > max - b->len)
		return -1;
	need = b->len + extra;
	if (need <= b->cap)
		return 0;

	cap = b->cap ? b->cap : KYSO_BUF_MIN_CAP;
	while (cap < need)
		cap = cap > max / 2 ? max : cap * 2;
	if (cap > max)
		cap = max;

	if (b->secret) {
		/* realloc could leave a copy of the secret in freed memory */
		np = malloc(cap);
		if (!np)
			return -1;
		if (b->len)
			memcpy(np, b->p, b->len);
		kyso_wipe(b->p, b->cap);
		free(b->p);
	} else {
		np = realloc(b->p, cap);
		if (!np)
			return -1;
	}
	b->p = np;
	b->cap = cap;
	return 0;
}

int kyso_buf_append(struct kyso_buf *b, const void *p, size_t n)
{
	const uint8_t *src = p;
	size_t off = 0;
	int inside = 0;

	if (n == 0)
		return 0;
	/* appending part of the buffer to itself must survive the move */
	if (b->p && src >= b->p && src < b->p + b->cap) {
		inside = 1;
		off = (size_t)(src - b->p);
	}
	if (kyso_buf_reserve(b, n) < 0)
		return -1;
	if (inside)
		src = b->p + off;
	memmove(b->p + b->len, src, n);
	b->len += n;
	return 0;
}

int kyso_buf_append_u8(struct kyso_buf *b, uint8_t v)
{
	return kyso_buf_append(b, &v, 1);
}

void kyso_buf_reset(struct kyso_buf *b)
{
	if (b->secret)
		kyso_wipe(b->p, b->cap);
	b->len = 0;
}

void kyso_buf_free(struct kyso_buf *b)
{
	if (b->secret)
		kyso_wipe(b->p, b->cap);
	free(b->p);
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
}

void kyso_hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

long kyso_unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1, v;

	if (!s)
		return -1;
	for (; *s; s++) {
		if (is_space(*s))
			continue;
		v = hexval(*s);
		if (v < 0)
			return -1;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n >= cap || n >= (size_t)LONG_MAX)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	if (hi >= 0)
		return -1; /* odd number of digits */
	return (long)n;
}
