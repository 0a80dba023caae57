/* BER-TLV as cards use it (ISO 7816-4 5.2): tags of up to 4 bytes, definite
 * lengths in short form or 81..84. Every length is checked against the span
 * before anything points at the value. */
#include "iso7816/tlv.h"

#define TLV_MAX_TAG_BYTES 4
#define TLV_MAX_LEN_BYTES 4

int kyso_tlv_next(struct kyso_cur *c, struct kyso_tlv *t)
{
	struct kyso_cur cur = *c;
	uint32_t tag;
	size_t len, i, ntag = 1;
	uint8_t b;

	if (cur.len == 0)
		return 0;

	if (kyso_cur_u8(&cur, &b) < 0)
		return -1;
	tag = b;
	if ((b & 0x1f) == 0x1f) {
		/* subsequent tag bytes while bit 8 is set */
		do {
			if (ntag == TLV_MAX_TAG_BYTES ||
			    kyso_cur_u8(&cur, &b) < 0)
				return -1;
			tag = tag << 8 | b;
			ntag++;
		} while (b & 0x80);
	}

	if (kyso_cur_u8(&cur, &b) < 0)
		return -1;
	if (b < 0x80) {
		len = b;
	} else {
		size_t n = b & 0x7f;

		/* 80 is the indefinite form; 85 and above exceed our bound */
		if (n == 0 || n > TLV_MAX_LEN_BYTES)
			return -1;
		len = 0;
		for (i = 0; i < n; i++) {
			if (kyso_cur_u8(&cur, &b) < 0)
				return -1;
			/* n <= 4, so this never overflows a 32-bit size_t */
			len = len << 8 | b;
		}
	}
	if (len > cur.len)
		return -1;

	t->tag = tag;
	t->constructed = (tag >> (8 * (ntag - 1)) & 0x20) != 0;
	t->hdrlen = c->len - cur.len;
	t->val = cur.p;
	t->len = len;
	kyso_cur_skip(&cur, len);
	*c = cur;
	return 1;
}

int kyso_tlv_find(const uint8_t *p, size_t len, uint32_t tag,
		  struct kyso_tlv *t)
{
	struct kyso_cur c = kyso_cur_make(p, len);
	struct kyso_tlv cur;
	int r;

	if (!p && len)
		return -1;
	while ((r = kyso_tlv_next(&c, &cur)) == 1) {
		if (cur.tag == tag) {
			if (t)
				*t = cur;
			return 1;
		}
	}
	return r;
}

size_t kyso_tlv_put_header(uint32_t tag, size_t len, uint8_t *out, size_t cap)
{
	size_t ntag, nlen, n = 0, i;

	if (tag > 0xffffff)
		ntag = 4;
	else if (tag > 0xffff)
		ntag = 3;
	else if (tag > 0xff)
		ntag = 2;
	else
		ntag = 1;

	if (len < 0x80)
		nlen = 1;
	else if (len <= 0xff)
		nlen = 2;
	else if (len <= 0xffff)
		nlen = 3;
	else if (len <= 0xffffff)
		nlen = 4;
	else if ((uint64_t)len <= 0xffffffffu)
		nlen = 5;
	else
		return 0;

	if (!out || ntag + nlen > cap)
		return 0;
	for (i = ntag; i-- > 0;)
		out[n++] = (uint8_t)(tag >> (8 * i));
	if (nlen == 1) {
		out[n++] = (uint8_t)len;
	} else {
		out[n++] = (uint8_t)(0x80 | (nlen - 1));
		for (i = nlen - 1; i-- > 0;)
			out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	return n;
}
