/* Bounded reads and growable buffers: every parser in kyso reads card data
 * through a cursor that cannot step past its end. */
#ifndef KYSO_UTIL_BUF_H
#define KYSO_UTIL_BUF_H

#include <stddef.h>
#include <stdint.h>

/* A read cursor over a byte span. All getters return 0 on success and -1 when
 * fewer bytes remain than asked; on failure the cursor is left unchanged. */
struct kyso_cur {
	const uint8_t *p;
	size_t len; /* bytes remaining */
};

static inline struct kyso_cur kyso_cur_make(const uint8_t *p, size_t len)
{
	struct kyso_cur c = {p, len};
	return c;
}
int kyso_cur_u8(struct kyso_cur *c, uint8_t *v);
int kyso_cur_be16(struct kyso_cur *c, uint16_t *v);
int kyso_cur_be32(struct kyso_cur *c, uint32_t *v);
/* Takes n bytes: *out points into the span, valid as long as the span is. */
int kyso_cur_take(struct kyso_cur *c, size_t n, const uint8_t **out);
int kyso_cur_skip(struct kyso_cur *c, size_t n);

/* A growable byte buffer with a hard ceiling (max 0 means 1 MiB). A buffer
 * marked secret is wiped whenever its storage is released or moved. */
struct kyso_buf {
	uint8_t *p;
	size_t len, cap, max;
	int secret;
};

#define KYSO_BUF_INIT {NULL, 0, 0, 0, 0}

/* 0, or -1 if memory runs out or the ceiling would be passed. */
int kyso_buf_reserve(struct kyso_buf *b, size_t extra);
int kyso_buf_append(struct kyso_buf *b, const void *p, size_t n);
int kyso_buf_append_u8(struct kyso_buf *b, uint8_t v);
void kyso_buf_reset(struct kyso_buf *b); /* len = 0, wipes if secret */
void kyso_buf_free(struct kyso_buf *b);	 /* wipes if secret */

/* Secure zeroing that the compiler cannot elide. */
void kyso_wipe(void *p, size_t n);

/* Hex for logs and tests; out must hold 2*n+1 chars. */
void kyso_hex(const uint8_t *p, size_t n, char *out);
/* Parses hex (whitespace ignored) into out; returns bytes written or -1. */
long kyso_unhex(const char *s, uint8_t *out, size_t cap);

#endif
