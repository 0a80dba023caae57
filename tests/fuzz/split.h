/* Shared by the fuzz targets that play a card: a fuzzer input read as a list
 * of card responses, each a 2-byte big-endian length and then that many
 * bytes; a length that runs past the end takes what is left. Seeds in this
 * form: tests/fuzz/log2seed turns a kyso-vcard APDU log into one, and
 * `make fuzz-seeds` records fuzz-piv's from the virtual card. */
#ifndef KYSO_FUZZ_SPLIT_H
#define KYSO_FUZZ_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_MAX_RESP 256

struct fuzz_resps {
	const uint8_t *p[FUZZ_MAX_RESP];
	size_t len[FUZZ_MAX_RESP];
	size_t n;
};

static inline void fuzz_split(const uint8_t *data, size_t size,
			      struct fuzz_resps *r)
{
	size_t off = 0;

	r->n = 0;
	while (off + 2 <= size && r->n < FUZZ_MAX_RESP) {
		size_t l = (size_t)data[off] << 8 | data[off + 1];

		off += 2;
		if (l > size - off)
			l = size - off;
		r->p[r->n] = data + off;
		r->len[r->n] = l;
		r->n++;
		off += l;
	}
}

#endif
