/* Hex strings for the unit tests (hexs.h): one arena that grows as the
 * test keeps things, and the builders that put their results in it. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hexs.h"
#include "util/buf.h"

static void **arena;
static size_t narena, arena_cap;

void *keep(void *p)
{
	ck_assert_ptr_nonnull(p);
	if (narena == arena_cap) {
		size_t ncap = arena_cap ? 2 * arena_cap : 64;
		void **a = realloc(arena, ncap * sizeof(*a));

		ck_assert_ptr_nonnull(a);
		arena = a;
		arena_cap = ncap;
	}
	arena[narena++] = p;
	return p;
}

void arena_free(void)
{
	while (narena > 0)
		free(arena[--narena]);
	free(arena);
	arena = NULL;
	arena_cap = 0;
}

char *hx(const uint8_t *p, size_t n)
{
	char *s = keep(malloc(2 * n + 1));
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(s + 2 * i, "%02X", p[i]);
	s[2 * n] = '\0';
	return s;
}

char *sub(const char *s, size_t n)
{
	char *d;

	ck_assert_uint_eq(strnlen(s, n), n);
	d = keep(malloc(n + 1));
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *cat(const char *first, ...)
{
	va_list ap;
	const char *p;
	size_t n = 0, k;
	char *s;

	va_start(ap, first);
	for (p = first; p; p = va_arg(ap, const char *))
		n += strlen(p);
	va_end(ap);
	s = keep(malloc(n + 1));
	n = 0;
	va_start(ap, first);
	for (p = first; p; p = va_arg(ap, const char *)) {
		k = strlen(p);
		memcpy(s + n, p, k);
		n += k;
	}
	va_end(ap);
	s[n] = '\0';
	return s;
}

char *fmt(const char *f, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, f);
	n = vsnprintf(NULL, 0, f, ap);
	va_end(ap);
	ck_assert_int_ge(n, 0);
	s = keep(malloc((size_t)n + 1));
	va_start(ap, f);
	ck_assert_int_eq(vsnprintf(s, (size_t)n + 1, f, ap), n);
	va_end(ap);
	return s;
}

char *tlv(unsigned tag, const char *val)
{
	size_t len = strlen(val) / 2, k = 0;
	uint8_t h[8];

	ck_assert_uint_le(tag, 0xFFFFFF);
	ck_assert_uint_le(len, 0xFFFFFF);
	if (tag > 0xFFFF)
		h[k++] = (uint8_t)(tag >> 16);
	if (tag > 0xFF)
		h[k++] = (uint8_t)(tag >> 8);
	h[k++] = (uint8_t)tag;
	if (len < 0x80) {
		h[k++] = (uint8_t)len;
	} else if (len < 0x100) {
		h[k++] = 0x81;
		h[k++] = (uint8_t)len;
	} else if (len < 0x10000) {
		h[k++] = 0x82;
		h[k++] = (uint8_t)(len >> 8);
		h[k++] = (uint8_t)len;
	} else {
		h[k++] = 0x83;
		h[k++] = (uint8_t)(len >> 16);
		h[k++] = (uint8_t)(len >> 8);
		h[k++] = (uint8_t)len;
	}
	return cat(hx(h, k), val, NULL);
}

char *utf8(const char *s)
{
	return hx((const uint8_t *)s, strlen(s));
}

size_t unhex(const char *h, uint8_t *out, size_t cap)
{
	long n = kyso_unhex(h, out, cap);

	ck_assert_int_ge(n, 0);
	return (size_t)n;
}
