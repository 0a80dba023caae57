/* libFuzzer target: the BER-TLV reader (src/iso7816/tlv.c) that every card
 * object goes through. Walks the input as nested TLVs and checks what the
 * header promises: values inside the span, the cursor moved by exactly
 * header plus value, a failed read leaves the cursor alone, and a header
 * written back with kyso_tlv_put_header reads back as the same tag and
 * length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iso7816/tlv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DEPTH 16

static void roundtrip(const struct kyso_tlv *t)
{
	uint8_t hdr[16], *buf;
	size_t n = kyso_tlv_put_header(t->tag, t->len, hdr, sizeof(hdr));
	struct kyso_cur c;
	struct kyso_tlv back;

	if (n == 0 || n > sizeof(hdr))
		abort(); /* a tag and length we read can always be written */
	/* the header and an exactly sized value, so a read past it is seen */
	buf = malloc(n + t->len);
	if (buf == NULL)
		return;
	memcpy(buf, hdr, n);
	if (t->len)
		memcpy(buf + n, t->val, t->len);
	c = kyso_cur_make(buf, n + t->len);
	if (kyso_tlv_next(&c, &back) != 1 || back.tag != t->tag ||
	    back.len != t->len || back.hdrlen != n || c.len != 0 ||
	    back.constructed != t->constructed)
		abort();
	free(buf);
}

static void walk(const uint8_t *p, size_t len, unsigned depth)
{
	struct kyso_cur c = kyso_cur_make(p, len);
	struct kyso_tlv t;
	int r;

	for (;;) {
		struct kyso_cur before = c;

		r = kyso_tlv_next(&c, &t);
		if (r == 0) {
			if (before.len != 0)
				abort();
			return;
		}
		if (r < 0) {
			if (c.p != before.p || c.len != before.len)
				abort();
			return;
		}
		if (r != 1)
			abort();
		if (t.val < before.p || t.len > before.len ||
		    t.hdrlen + t.len != before.len - c.len ||
		    t.val != before.p + t.hdrlen || c.p != t.val + t.len)
			abort();
		roundtrip(&t);
		if (t.constructed && depth < MAX_DEPTH)
			walk(t.val, t.len, depth + 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kyso_tlv t;
	uint32_t tag = 0;
	size_t i;
	int r;

	walk(data, size, 0);

	/* find: a tag made of the first bytes, and the PIV ones */
	for (i = 0; i < size && i < 3; i++)
		tag = tag << 8 | data[i];
	static const uint32_t tags[] = {0x53, 0x70, 0x71, 0x7C, 0x82,
					0x5FC102, 0x7F49, 0x61, 0xAC};
	for (i = 0; i <= sizeof(tags) / sizeof(tags[0]); i++) {
		uint32_t want = i < sizeof(tags) / sizeof(tags[0]) ? tags[i]
								  : tag;

		r = kyso_tlv_find(data, size, want, &t);
		if (r == 1 && (t.tag != want || t.val < data ||
			       t.val + t.len > data + size))
			abort();
		if (r != 1 && r != 0 && r != -1)
			abort();
	}
	return 0;
}
