/* Unit tests for iso7816/tlv.c: BER-TLV reading of hostile card data, and
 * header writing. Inputs are copied to exactly-sized heap blocks so that any
 * read past the span is caught by the sanitizers and valgrind. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iso7816/tlv.h"

static uint8_t *exact(const void *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

/* Parses one TLV from a heap copy of p[0..n); returns kyso_tlv_next's value
 * and, when 1, what was read (val as an offset from the start). */
static int parse1(const uint8_t *p, size_t n, struct kyso_tlv *t,
		  size_t *valoff, size_t *left)
{
	uint8_t *q = exact(p, n);
	struct kyso_cur c = kyso_cur_make(q, n);
	int r = kyso_tlv_next(&c, t);

	if (r == 1) {
		ck_assert(t->val >= q && t->val + t->len <= q + n);
		ck_assert_uint_le(t->hdrlen + t->len, n);
		*valoff = (size_t)(t->val - q);
	}
	if (r != 1) {
		/* the cursor is left where it was */
		ck_assert_ptr_eq(c.p, q);
		ck_assert_uint_eq(c.len, n);
	}
	if (left)
		*left = c.len;
	free(q);
	return r;
}

#define PARSE(arr, t, off) parse1(arr, sizeof(arr), t, off, NULL)

/* --- reading ------------------------------------------------------------ */

START_TEST(tlv_reads_a_primitive_one_byte_tag)
{
	static const uint8_t d[] = {0x53, 0x02, 0xaa, 0xbb};
	struct kyso_tlv t;
	size_t off;

	ck_assert_int_eq(PARSE(d, &t, &off), 1);
	ck_assert_uint_eq(t.tag, 0x53);
	ck_assert_int_eq(t.constructed, 0);
	ck_assert_uint_eq(t.len, 2);
	ck_assert_uint_eq(t.hdrlen, 2);
	ck_assert_uint_eq(off, 2);
}
END_TEST

START_TEST(tlv_sees_the_constructed_bit_of_the_first_tag_byte)
{
	static const uint8_t d1[] = {0x70, 0x00};
	static const uint8_t d2[] = {0x7f, 0x49, 0x00};
	static const uint8_t d3[] = {0x5f, 0x7f, 0x00};
	struct kyso_tlv t;
	size_t off;

	ck_assert_int_eq(PARSE(d1, &t, &off), 1);
	ck_assert_int_eq(t.constructed, 1);
	ck_assert_int_eq(PARSE(d2, &t, &off), 1);
	ck_assert_uint_eq(t.tag, 0x7f49);
	ck_assert_int_eq(t.constructed, 1);
	/* bit 6 of a later tag byte does not count */
	ck_assert_int_eq(PARSE(d3, &t, &off), 1);
	ck_assert_uint_eq(t.tag, 0x5f7f);
	ck_assert_int_eq(t.constructed, 0);
}
END_TEST

START_TEST(tlv_reads_multi_byte_tags_up_to_four_bytes)
{
	static const uint8_t d3[] = {0x5f, 0xc1, 0x05, 0x01, 0x99};
	static const uint8_t d4[] = {0xdf, 0x81, 0x82, 0x03, 0x00};
	struct kyso_tlv t;
	size_t off;

	ck_assert_int_eq(PARSE(d3, &t, &off), 1);
	ck_assert_uint_eq(t.tag, 0x5fc105);
	ck_assert_uint_eq(t.hdrlen, 4);
	ck_assert_uint_eq(t.len, 1);
	ck_assert_uint_eq(off, 4);
	ck_assert_int_eq(PARSE(d4, &t, &off), 1);
	ck_assert_uint_eq(t.tag, 0xdf818203u);
	ck_assert_uint_eq(t.hdrlen, 5);
	ck_assert_uint_eq(t.len, 0);
}
END_TEST

START_TEST(tlv_rejects_tags_longer_than_four_bytes)
{
	static const uint8_t d[] = {0x5f, 0x81, 0x82, 0x83, 0x04, 0x00};
	struct kyso_tlv t;
	size_t off;

	ck_assert_int_eq(PARSE(d, &t, &off), -1);
}
END_TEST

START_TEST(tlv_rejects_a_tag_cut_short)
{
	static const uint8_t d1[] = {0x5f};
	static const uint8_t d2[] = {0x5f, 0xc1};
	static const uint8_t d3[] = {0x53};
	struct kyso_tlv t;
	size_t off;

	ck_assert_int_eq(PARSE(d1, &t, &off), -1);
	ck_assert_int_eq(PARSE(d2, &t, &off), -1);
	/* a tag with no length byte */
	ck_assert_int_eq(PARSE(d3, &t, &off), -1);
}
END_TEST

START_TEST(tlv_reads_every_definite_length_form)
{
	struct kyso_tlv t;
	size_t off, n, hl;
	uint8_t *d;
	static const struct {
		uint8_t hdr[6];
		size_t hdrlen, len;
	} cases[] = {
	    {{0x04, 0x00}, 2, 0},
	    {{0x04, 0x7f}, 2, 0x7f},
	    {{0x04, 0x81, 0x80}, 3, 0x80},
	    {{0x04, 0x81, 0x05}, 3, 5}, /* not minimal, still BER */
	    {{0x04, 0x82, 0x01, 0x00}, 4, 0x100},
	    {{0x04, 0x82, 0x00, 0x03}, 4, 3},
	    {{0x04, 0x83, 0x01, 0x00, 0x01}, 5, 0x10001},
	    {{0x04, 0x84, 0x00, 0x01, 0x00, 0x02}, 6, 0x10002},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		hl = cases[i].hdrlen;
		n = hl + cases[i].len;
		d = calloc(1, n);
		ck_assert_ptr_nonnull(d);
		memcpy(d, cases[i].hdr, hl);
		ck_assert_int_eq(parse1(d, n, &t, &off, NULL), 1);
		ck_assert_uint_eq(t.len, cases[i].len);
		ck_assert_uint_eq(t.hdrlen, hl);
		ck_assert_uint_eq(off, hl);
		/* one byte fewer is one byte past the end */
		ck_assert_int_eq(parse1(d, n - 1, &t, &off, NULL), -1);
		free(d);
	}
}
END_TEST

START_TEST(tlv_rejects_the_indefinite_length)
{
	static const uint8_t d[] = {0x30, 0x80, 0x04, 0x00, 0x00, 0x00};
	struct kyso_tlv t;
	size_t off;

	ck_assert_int_eq(PARSE(d, &t, &off), -1);
}
END_TEST

START_TEST(tlv_rejects_length_forms_of_five_bytes_and_more)
{
	uint8_t d[2 + 127];
	struct kyso_tlv t;
	size_t off;
	int b;

	memset(d, 0, sizeof(d));
	d[0] = 0x04;
	for (b = 0x85; b <= 0xff; b++) {
		d[1] = (uint8_t)b;
		ck_assert_int_eq(parse1(d, sizeof(d), &t, &off, NULL), -1);
	}
}
END_TEST

START_TEST(tlv_rejects_length_past_end)
{
	static const uint8_t d1[] = {0x53, 0x03, 0xaa, 0xbb};
	static const uint8_t d2[] = {0x53, 0x81, 0x02, 0xaa};
	static const uint8_t d3[] = {0x53, 0x82, 0x01, 0x00, 0xaa};
	struct kyso_tlv t;
	size_t off;

	ck_assert_int_eq(PARSE(d1, &t, &off), -1);
	ck_assert_int_eq(PARSE(d2, &t, &off), -1);
	ck_assert_int_eq(PARSE(d3, &t, &off), -1);
}
END_TEST

START_TEST(tlv_rejects_length_bytes_cut_short)
{
	static const uint8_t d1[] = {0x53, 0x81};
	static const uint8_t d2[] = {0x53, 0x82, 0x00};
	static const uint8_t d3[] = {0x53, 0x84, 0x00, 0x00, 0x00};
	struct kyso_tlv t;
	size_t off;

	ck_assert_int_eq(PARSE(d1, &t, &off), -1);
	ck_assert_int_eq(PARSE(d2, &t, &off), -1);
	ck_assert_int_eq(PARSE(d3, &t, &off), -1);
}
END_TEST

START_TEST(tlv_rejects_lengths_that_would_overflow_pointer_arithmetic)
{
	static const uint8_t d1[] = {0x53, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00};
	static const uint8_t d2[] = {0x53, 0x84, 0xff, 0xff, 0xff, 0xfa, 0x00};
	static const uint8_t d3[] = {0x5f, 0xc1, 0x05, 0x84,
				     0x80, 0x00, 0x00, 0x00};
	struct kyso_tlv t;
	size_t off;

	ck_assert_int_eq(PARSE(d1, &t, &off), -1);
	ck_assert_int_eq(PARSE(d2, &t, &off), -1);
	ck_assert_int_eq(PARSE(d3, &t, &off), -1);
}
END_TEST

START_TEST(tlv_at_the_end_of_the_span_returns_zero)
{
	struct kyso_cur c = kyso_cur_make(NULL, 0);
	struct kyso_tlv t;

	memset(&t, 0x5a, sizeof(t));
	ck_assert_int_eq(kyso_tlv_next(&c, &t), 0);
	ck_assert_uint_eq(t.len, (size_t)0x5a5a5a5a5a5a5a5aull);
}
END_TEST

START_TEST(tlv_does_not_skip_padding_bytes)
{
	static const uint8_t d[] = {0x00, 0x00, 0x53, 0x00};
	struct kyso_tlv t;
	size_t off, left;

	ck_assert_int_eq(parse1(d, sizeof(d), &t, &off, &left), 1);
	ck_assert_uint_eq(t.tag, 0x00);
	ck_assert_uint_eq(t.len, 0);
	ck_assert_uint_eq(left, 2);
}
END_TEST

START_TEST(tlv_walks_a_stream_and_nested_values)
{
	/* 7F49 { 81 03 010001, 82 02 AABB } 53 00 5FC105 01 FF */
	static const uint8_t d[] = {0x7f, 0x49, 0x09, 0x81, 0x03, 0x01, 0x00,
				    0x01, 0x82, 0x02, 0xaa, 0xbb, 0x53, 0x00,
				    0x5f, 0xc1, 0x05, 0x01, 0xff};
	uint8_t *q = exact(d, sizeof(d));
	struct kyso_cur c = kyso_cur_make(q, sizeof(d)), in;
	struct kyso_tlv t, u;

	ck_assert_int_eq(kyso_tlv_next(&c, &t), 1);
	ck_assert_uint_eq(t.tag, 0x7f49);
	in = kyso_cur_make(t.val, t.len);
	ck_assert_int_eq(kyso_tlv_next(&in, &u), 1);
	ck_assert_uint_eq(u.tag, 0x81);
	ck_assert_uint_eq(u.len, 3);
	ck_assert_int_eq(kyso_tlv_next(&in, &u), 1);
	ck_assert_uint_eq(u.tag, 0x82);
	ck_assert_uint_eq(u.val[1], 0xbb);
	ck_assert_int_eq(kyso_tlv_next(&in, &u), 0);
	ck_assert_int_eq(kyso_tlv_next(&c, &t), 1);
	ck_assert_uint_eq(t.tag, 0x53);
	ck_assert_uint_eq(t.len, 0);
	ck_assert_int_eq(kyso_tlv_next(&c, &t), 1);
	ck_assert_uint_eq(t.tag, 0x5fc105);
	ck_assert_uint_eq(t.val[0], 0xff);
	ck_assert_int_eq(kyso_tlv_next(&c, &t), 0);
	free(q);
}
END_TEST

/* A valid stream and the offsets where its TLVs end. */
static const uint8_t stream[] = {
    0x4f, 0x05, 0xa0, 0x00, 0x00, 0x03, 0x08,			/* 7 */
    0x5f, 0xc1, 0x02, 0x81, 0x03, 0x11, 0x22, 0x33,		/* +8 = 15 */
    0x53, 0x00,							/* +2 = 17 */
    0x7f, 0x49, 0x82, 0x00, 0x04, 0x86, 0x02, 0x04, 0x41,	/* +9 = 26 */
    0xdf, 0x81, 0x82, 0x03, 0x84, 0x00, 0x00, 0x00, 0x01, 0x99, /* 36 */
};
static const size_t stream_ends[] = {0, 7, 15, 17, 26, 36};

START_TEST(tlv_handles_every_truncation_point_of_a_valid_stream)
{
	size_t k, i, nends = sizeof(stream_ends) / sizeof(stream_ends[0]);

	ck_assert_uint_eq(stream_ends[nends - 1], sizeof(stream));
	for (k = 0; k <= sizeof(stream); k++) {
		uint8_t *q = exact(stream, k);
		struct kyso_cur c = kyso_cur_make(q, k);
		struct kyso_tlv t;
		size_t whole = 0, at_boundary = 0;
		int r;

		for (i = 0; i < nends; i++) {
			if (stream_ends[i] <= k)
				whole = i;
			if (stream_ends[i] == k)
				at_boundary = 1;
		}
		for (i = 0; (r = kyso_tlv_next(&c, &t)) == 1; i++) {
			ck_assert_uint_eq(t.hdrlen + t.len,
					  stream_ends[i + 1] - stream_ends[i]);
			ck_assert_ptr_eq(t.val + t.len, q + stream_ends[i + 1]);
		}
		ck_assert_uint_eq(i, whole);
		ck_assert_int_eq(r, at_boundary ? 0 : -1);
		/* stopped at the last whole TLV, not inside the broken one */
		ck_assert_uint_eq(c.len, k - stream_ends[whole]);
		free(q);
	}
}
END_TEST

START_TEST(tlv_stays_inside_every_one_and_two_byte_input)
{
	struct kyso_tlv t;
	size_t off;
	unsigned v;
	uint8_t d[2];

	for (v = 0; v < 0x100; v++) {
		d[0] = (uint8_t)v;
		ck_assert_int_ne(parse1(d, 1, &t, &off, NULL), 0);
	}
	for (v = 0; v < 0x10000; v++) {
		d[0] = (uint8_t)(v >> 8);
		d[1] = (uint8_t)v;
		ck_assert_int_ne(parse1(d, 2, &t, &off, NULL), 0);
	}
}
END_TEST

START_TEST(tlv_stays_inside_random_inputs)
{
	uint32_t x = 0x12345678; /* xorshift: the same inputs every run */
	struct kyso_tlv t;
	uint8_t d[12];
	size_t off, n, i;
	int iter;

	for (iter = 0; iter < 20000; iter++) {
		n = 1 + iter % sizeof(d);
		for (i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			d[i] = (uint8_t)x;
		}
		/* small lengths, so that some inputs are valid */
		if (iter & 1)
			d[(d[0] & 0x1f) == 0x1f ? 2 : 1] &= 0x07;
		ck_assert_int_ne(parse1(d, n, &t, &off, NULL), 0);
	}
}
END_TEST

/* --- find --------------------------------------------------------------- */

START_TEST(tlv_find_returns_the_first_match_at_top_level)
{
	/* 70 { 5A 01 11 } 5A 01 22 5A 01 33 */
	static const uint8_t d[] = {0x70, 0x03, 0x5a, 0x01, 0x11, 0x5a,
				    0x01, 0x22, 0x5a, 0x01, 0x33};
	uint8_t *q = exact(d, sizeof(d));
	struct kyso_tlv t;

	ck_assert_int_eq(kyso_tlv_find(q, sizeof(d), 0x5a, &t), 1);
	ck_assert_uint_eq(t.val[0], 0x22);
	ck_assert_int_eq(kyso_tlv_find(q, sizeof(d), 0x70, &t), 1);
	ck_assert_uint_eq(t.len, 3);
	free(q);
}
END_TEST

START_TEST(tlv_find_says_zero_when_absent)
{
	static const uint8_t d[] = {0x53, 0x01, 0x00, 0x54, 0x00};
	struct kyso_tlv t;

	ck_assert_int_eq(kyso_tlv_find(d, sizeof(d), 0x55, &t), 0);
	ck_assert_int_eq(kyso_tlv_find(NULL, 0, 0x55, &t), 0);
}
END_TEST

START_TEST(tlv_find_reports_malformed_data_before_the_match)
{
	static const uint8_t d[] = {0x53, 0x01, 0x00, 0x54, 0x05, 0x00};
	uint8_t *q = exact(d, sizeof(d));
	struct kyso_tlv t;

	ck_assert_int_eq(kyso_tlv_find(q, sizeof(d), 0x53, &t), 1);
	ck_assert_int_eq(kyso_tlv_find(q, sizeof(d), 0x55, &t), -1);
	ck_assert_int_eq(kyso_tlv_find(q, sizeof(d), 0x54, &t), -1);
	free(q);
}
END_TEST

START_TEST(tlv_find_matches_the_whole_tag)
{
	static const uint8_t d[] = {0x5f, 0xc1, 0x05, 0x00};
	struct kyso_tlv t;

	ck_assert_int_eq(kyso_tlv_find(d, sizeof(d), 0x5f, &t), 0);
	ck_assert_int_eq(kyso_tlv_find(d, sizeof(d), 0xc105, &t), 0);
	ck_assert_int_eq(kyso_tlv_find(d, sizeof(d), 0x5fc105, &t), 1);
}
END_TEST

/* --- writing ------------------------------------------------------------ */

START_TEST(tlv_put_header_writes_minimal_tags_and_lengths)
{
	uint8_t out[16];
	static const struct {
		uint32_t tag;
		size_t len;
		size_t n;
		uint8_t hdr[9];
	} cases[] = {
	    {0x53, 0, 2, {0x53, 0x00}},
	    {0x53, 0x7f, 2, {0x53, 0x7f}},
	    {0x53, 0x80, 3, {0x53, 0x81, 0x80}},
	    {0x53, 0xff, 3, {0x53, 0x81, 0xff}},
	    {0x7f49, 0x100, 5, {0x7f, 0x49, 0x82, 0x01, 0x00}},
	    {0x5fc105, 0xffff, 6, {0x5f, 0xc1, 0x05, 0x82, 0xff, 0xff}},
	    {0x5fc105, 0x10000, 7, {0x5f, 0xc1, 0x05, 0x83, 0x01, 0x00, 0x00}},
	    {0xdf818203u,
	     0x1000000,
	     9,
	     {0xdf, 0x81, 0x82, 0x03, 0x84, 0x01, 0x00, 0x00, 0x00}},
	    {0x00, 1, 2, {0x00, 0x01}},
	};
	size_t i, k;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_uint_eq(kyso_tlv_put_header(cases[i].tag,
						      cases[i].len, out,
						      sizeof(out)),
				  cases[i].n);
		ck_assert_int_eq(memcmp(out, cases[i].hdr, cases[i].n), 0);
		/* every smaller capacity is refused */
		for (k = 0; k < cases[i].n; k++)
			ck_assert_uint_eq(kyso_tlv_put_header(cases[i].tag,
							      cases[i].len, out,
							      k),
					  0);
	}
}
END_TEST

START_TEST(tlv_put_header_refuses_lengths_beyond_four_bytes)
{
	uint8_t out[16];

	ck_assert_uint_eq(
	    kyso_tlv_put_header(0x53, 0xffffffffu, out, sizeof(out)), 6);
	if (sizeof(size_t) > 4)
		ck_assert_uint_eq(kyso_tlv_put_header(0x53,
						      (size_t)0xffffffffu + 1,
						      out, sizeof(out)),
				  0);
	ck_assert_uint_eq(kyso_tlv_put_header(0x53, 1, NULL, 10), 0);
}
END_TEST

START_TEST(tlv_put_header_round_trips_through_next)
{
	static const uint32_t tags[] = {0x04, 0x30, 0x7f49, 0x5fc105,
					0xdf818203u};
	static const size_t lens[] = {0, 1, 0x7f, 0x80, 0xff, 0x100, 0x1234};
	uint8_t *d;
	size_t i, j, h, off;
	struct kyso_tlv t;

	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		for (j = 0; j < sizeof(lens) / sizeof(lens[0]); j++) {
			d = calloc(1, 16 + lens[j]);
			ck_assert_ptr_nonnull(d);
			h = kyso_tlv_put_header(tags[i], lens[j], d, 16);
			ck_assert_uint_gt(h, 0);
			ck_assert_int_eq(parse1(d, h + lens[j], &t, &off, NULL),
					 1);
			ck_assert_uint_eq(t.tag, tags[i]);
			ck_assert_uint_eq(t.len, lens[j]);
			ck_assert_uint_eq(t.hdrlen, h);
			free(d);
		}
	}
}
END_TEST

static Suite *tlv_suite(void)
{
	Suite *s = suite_create("tlv");
	TCase *tc;

	tc = tcase_create("next");
	tcase_add_test(tc, tlv_reads_a_primitive_one_byte_tag);
	tcase_add_test(tc, tlv_sees_the_constructed_bit_of_the_first_tag_byte);
	tcase_add_test(tc, tlv_reads_multi_byte_tags_up_to_four_bytes);
	tcase_add_test(tc, tlv_rejects_tags_longer_than_four_bytes);
	tcase_add_test(tc, tlv_rejects_a_tag_cut_short);
	tcase_add_test(tc, tlv_reads_every_definite_length_form);
	tcase_add_test(tc, tlv_rejects_the_indefinite_length);
	tcase_add_test(tc, tlv_rejects_length_forms_of_five_bytes_and_more);
	tcase_add_test(tc, tlv_rejects_length_past_end);
	tcase_add_test(tc, tlv_rejects_length_bytes_cut_short);
	tcase_add_test(
	    tc, tlv_rejects_lengths_that_would_overflow_pointer_arithmetic);
	tcase_add_test(tc, tlv_at_the_end_of_the_span_returns_zero);
	tcase_add_test(tc, tlv_does_not_skip_padding_bytes);
	tcase_add_test(tc, tlv_walks_a_stream_and_nested_values);
	tcase_add_test(tc,
		       tlv_handles_every_truncation_point_of_a_valid_stream);
	tcase_add_test(tc, tlv_stays_inside_every_one_and_two_byte_input);
	tcase_add_test(tc, tlv_stays_inside_random_inputs);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("find");
	tcase_add_test(tc, tlv_find_returns_the_first_match_at_top_level);
	tcase_add_test(tc, tlv_find_says_zero_when_absent);
	tcase_add_test(tc, tlv_find_reports_malformed_data_before_the_match);
	tcase_add_test(tc, tlv_find_matches_the_whole_tag);
	suite_add_tcase(s, tc);

	tc = tcase_create("put_header");
	tcase_add_test(tc, tlv_put_header_writes_minimal_tags_and_lengths);
	tcase_add_test(tc, tlv_put_header_refuses_lengths_beyond_four_bytes);
	tcase_add_test(tc, tlv_put_header_round_trips_through_next);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(tlv_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
