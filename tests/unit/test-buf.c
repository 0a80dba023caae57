/* Unit tests for util/buf.c: the bounded cursor, growable buffers with a
 * ceiling, secret buffers, wiping and hex. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

/* A copy of exactly n bytes on the heap, so that a read past n is caught by
 * the address sanitizer and valgrind. */
static uint8_t *exact(const void *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

/* --- cursor ------------------------------------------------------------ */

START_TEST(cur_reads_big_endian_integers_in_order)
{
	static const uint8_t d[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
	uint8_t *p = exact(d, sizeof(d));
	struct kyso_cur c = kyso_cur_make(p, sizeof(d));
	uint8_t v8;
	uint16_t v16;
	uint32_t v32;

	ck_assert_int_eq(kyso_cur_u8(&c, &v8), 0);
	ck_assert_uint_eq(v8, 0x01);
	ck_assert_int_eq(kyso_cur_be16(&c, &v16), 0);
	ck_assert_uint_eq(v16, 0x0203);
	ck_assert_int_eq(kyso_cur_be32(&c, &v32), 0);
	ck_assert_uint_eq(v32, 0x04050607);
	ck_assert_uint_eq(c.len, 0);
	ck_assert_int_eq(kyso_cur_u8(&c, &v8), -1);
	free(p);
}
END_TEST

START_TEST(cur_reads_high_bytes_without_sign_extension)
{
	static const uint8_t d[] = {0xff, 0xfe, 0xfd, 0xfc};
	struct kyso_cur c = kyso_cur_make(d, sizeof(d));
	uint32_t v32;

	ck_assert_int_eq(kyso_cur_be32(&c, &v32), 0);
	ck_assert_uint_eq(v32, 0xfffefdfcu);
}
END_TEST

START_TEST(cur_getters_fail_without_moving_when_short)
{
	static const uint8_t d[] = {0xaa, 0xbb, 0xcc};
	uint8_t *p = exact(d, sizeof(d));
	struct kyso_cur c = kyso_cur_make(p, sizeof(d));
	uint16_t v16 = 0x1234;
	uint32_t v32 = 0x12345678;
	const uint8_t *out = NULL;

	ck_assert_int_eq(kyso_cur_be32(&c, &v32), -1);
	ck_assert_uint_eq(v32, 0x12345678);
	ck_assert_ptr_eq(c.p, p);
	ck_assert_uint_eq(c.len, 3);
	ck_assert_int_eq(kyso_cur_take(&c, 4, &out), -1);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(kyso_cur_skip(&c, 4), -1);
	ck_assert_uint_eq(c.len, 3);

	ck_assert_int_eq(kyso_cur_skip(&c, 2), 0);
	ck_assert_int_eq(kyso_cur_be16(&c, &v16), -1);
	ck_assert_uint_eq(v16, 0x1234);
	ck_assert_ptr_eq(c.p, p + 2);
	ck_assert_uint_eq(c.len, 1);
	free(p);
}
END_TEST

START_TEST(cur_take_points_into_the_span)
{
	static const uint8_t d[] = {1, 2, 3, 4, 5};
	struct kyso_cur c = kyso_cur_make(d, sizeof(d));
	const uint8_t *out;

	ck_assert_int_eq(kyso_cur_take(&c, 2, &out), 0);
	ck_assert_ptr_eq(out, d);
	ck_assert_int_eq(kyso_cur_take(&c, 3, &out), 0);
	ck_assert_ptr_eq(out, d + 2);
	ck_assert_uint_eq(c.len, 0);
	ck_assert_int_eq(kyso_cur_take(&c, 0, &out), 0);
	ck_assert_int_eq(kyso_cur_take(&c, 1, &out), -1);
}
END_TEST

START_TEST(cur_rejects_lengths_near_size_max)
{
	static const uint8_t d[] = {1, 2, 3};
	struct kyso_cur c = kyso_cur_make(d, sizeof(d));
	const uint8_t *out;

	ck_assert_int_eq(kyso_cur_take(&c, SIZE_MAX, &out), -1);
	ck_assert_int_eq(kyso_cur_skip(&c, SIZE_MAX - 1), -1);
	ck_assert_uint_eq(c.len, 3);
}
END_TEST

START_TEST(cur_over_an_empty_span_gives_nothing)
{
	struct kyso_cur c = kyso_cur_make(NULL, 0);
	uint8_t v;

	ck_assert_int_eq(kyso_cur_u8(&c, &v), -1);
	ck_assert_int_eq(kyso_cur_skip(&c, 0), 0);
	ck_assert_int_eq(kyso_cur_skip(&c, 1), -1);
}
END_TEST

/* --- buffers ------------------------------------------------------------ */

START_TEST(buf_appends_and_grows)
{
	struct kyso_buf b = KYSO_BUF_INIT;
	uint8_t chunk[100];
	size_t i;

	for (i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)i;
	for (i = 0; i < 50; i++)
		ck_assert_int_eq(kyso_buf_append(&b, chunk, sizeof(chunk)), 0);
	ck_assert_uint_eq(b.len, 5000);
	ck_assert_uint_ge(b.cap, b.len);
	for (i = 0; i < b.len; i++)
		ck_assert_uint_eq(b.p[i], i % 100);
	ck_assert_int_eq(kyso_buf_append_u8(&b, 0xab), 0);
	ck_assert_uint_eq(b.p[5000], 0xab);
	kyso_buf_free(&b);
	ck_assert_ptr_null(b.p);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(b.cap, 0);
}
END_TEST

START_TEST(buf_append_of_nothing_succeeds_with_null)
{
	struct kyso_buf b = KYSO_BUF_INIT;

	ck_assert_int_eq(kyso_buf_append(&b, NULL, 0), 0);
	ck_assert_uint_eq(b.len, 0);
	kyso_buf_free(&b);
}
END_TEST

START_TEST(buf_stops_at_its_ceiling)
{
	struct kyso_buf b = KYSO_BUF_INIT;
	uint8_t d[8] = {0};

	b.max = 10;
	ck_assert_int_eq(kyso_buf_append(&b, d, 8), 0);
	ck_assert_int_eq(kyso_buf_append(&b, d, 3), -1);
	ck_assert_uint_eq(b.len, 8);
	ck_assert_int_eq(kyso_buf_append(&b, d, 2), 0);
	ck_assert_uint_eq(b.len, 10);
	ck_assert_uint_le(b.cap, 10);
	ck_assert_int_eq(kyso_buf_append_u8(&b, 1), -1);
	ck_assert_uint_eq(b.len, 10);
	kyso_buf_free(&b);
}
END_TEST

START_TEST(buf_default_ceiling_is_one_mebibyte)
{
	struct kyso_buf b = KYSO_BUF_INIT;

	ck_assert_int_eq(kyso_buf_reserve(&b, 1 << 20), 0);
	ck_assert_int_eq(kyso_buf_reserve(&b, (1 << 20) + 1), -1);
	b.len = 1 << 20;
	ck_assert_int_eq(kyso_buf_reserve(&b, 1), -1);
	b.len = 0;
	kyso_buf_free(&b);
}
END_TEST

START_TEST(buf_reserve_rejects_sizes_that_overflow)
{
	struct kyso_buf b = KYSO_BUF_INIT;

	/* len + extra would wrap around to a small number */
	b.max = SIZE_MAX;
	ck_assert_int_eq(kyso_buf_append(&b, "ab", 2), 0);
	ck_assert_int_eq(kyso_buf_reserve(&b, SIZE_MAX), -1);
	ck_assert_int_eq(kyso_buf_reserve(&b, SIZE_MAX - 1), -1);
	ck_assert_uint_eq(b.len, 2);
	ck_assert_uint_eq(b.cap, 64);
	kyso_buf_free(&b);
}
END_TEST

START_TEST(buf_reserve_of_zero_always_succeeds)
{
	struct kyso_buf b = KYSO_BUF_INIT;

	b.max = 4;
	ck_assert_int_eq(kyso_buf_append(&b, "abcd", 4), 0);
	ck_assert_int_eq(kyso_buf_reserve(&b, 0), 0);
	kyso_buf_free(&b);
}
END_TEST

START_TEST(buf_append_of_its_own_bytes_survives_a_move)
{
	struct kyso_buf b = KYSO_BUF_INIT;
	size_t i;

	for (i = 0; i < 64; i++)
		ck_assert_int_eq(kyso_buf_append_u8(&b, (uint8_t)i), 0);
	/* the buffer is full, so this append must move the storage */
	ck_assert_uint_eq(b.cap, b.len);
	ck_assert_int_eq(kyso_buf_append(&b, b.p, b.len), 0);
	ck_assert_uint_eq(b.len, 128);
	for (i = 0; i < 128; i++)
		ck_assert_uint_eq(b.p[i], i % 64);
	kyso_buf_free(&b);
}
END_TEST

START_TEST(buf_reset_keeps_storage_and_empties)
{
	struct kyso_buf b = KYSO_BUF_INIT;
	uint8_t *p;

	ck_assert_int_eq(kyso_buf_append(&b, "hello", 5), 0);
	p = b.p;
	kyso_buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_ptr_eq(b.p, p);
	ck_assert_int_eq(kyso_buf_append(&b, "x", 1), 0);
	ck_assert_uint_eq(b.p[0], 'x');
	kyso_buf_free(&b);
}
END_TEST

START_TEST(buf_secret_reset_wipes_the_storage)
{
	struct kyso_buf b = KYSO_BUF_INIT;
	size_t i;

	b.secret = 1;
	ck_assert_int_eq(kyso_buf_append(&b, "123456", 6), 0);
	kyso_buf_reset(&b);
	for (i = 0; i < b.cap; i++)
		ck_assert_uint_eq(b.p[i], 0);
	kyso_buf_free(&b);
}
END_TEST

START_TEST(buf_secret_growth_moves_to_fresh_storage)
{
	struct kyso_buf b = KYSO_BUF_INIT;
	uint8_t big[200];
	uint8_t *before;

	memset(big, 0x5a, sizeof(big));
	b.secret = 1;
	ck_assert_int_eq(kyso_buf_append(&b, "123456", 6), 0);
	before = b.p;
	/* malloc-copy-wipe-free: the new block is taken while the old one is
	 * still held, so the two can never be the same */
	ck_assert_int_eq(kyso_buf_append(&b, big, sizeof(big)), 0);
	ck_assert_ptr_ne(b.p, before);
	ck_assert_int_eq(memcmp(b.p, "123456", 6), 0);
	ck_assert_int_eq(memcmp(b.p + 6, big, sizeof(big)), 0);
	kyso_buf_free(&b);
	ck_assert_ptr_null(b.p);
	ck_assert_int_eq(b.secret, 1);
}
END_TEST

START_TEST(buf_free_twice_is_harmless)
{
	struct kyso_buf b = KYSO_BUF_INIT;

	b.secret = 1;
	kyso_buf_free(&b);
	ck_assert_int_eq(kyso_buf_append(&b, "ab", 2), 0);
	kyso_buf_free(&b);
	kyso_buf_free(&b);
	ck_assert_ptr_null(b.p);
}
END_TEST

START_TEST(wipe_zeroes_every_byte)
{
	uint8_t d[33];
	size_t i;

	memset(d, 0xee, sizeof(d));
	kyso_wipe(d, sizeof(d));
	for (i = 0; i < sizeof(d); i++)
		ck_assert_uint_eq(d[i], 0);
	kyso_wipe(NULL, 10);
	kyso_wipe(d, 0);
}
END_TEST

/* --- hex ---------------------------------------------------------------- */

START_TEST(hex_prints_uppercase_and_terminates)
{
	static const uint8_t d[] = {0x00, 0x9f, 0xa5, 0xff};
	char out[2 * sizeof(d) + 1];

	memset(out, 'x', sizeof(out));
	kyso_hex(d, sizeof(d), out);
	ck_assert_str_eq(out, "009FA5FF");
	kyso_hex(d, 0, out);
	ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(unhex_reads_mixed_case_and_ignores_whitespace)
{
	uint8_t out[8];

	ck_assert_int_eq(kyso_unhex(" 00 a4\t04\n0C ff\r", out, sizeof(out)),
			 5);
	ck_assert_uint_eq(out[0], 0x00);
	ck_assert_uint_eq(out[1], 0xa4);
	ck_assert_uint_eq(out[2], 0x04);
	ck_assert_uint_eq(out[3], 0x0c);
	ck_assert_uint_eq(out[4], 0xff);
}
END_TEST

START_TEST(unhex_of_nothing_is_zero_bytes)
{
	uint8_t out[1];

	ck_assert_int_eq(kyso_unhex("", out, sizeof(out)), 0);
	ck_assert_int_eq(kyso_unhex("   ", NULL, 0), 0);
}
END_TEST

START_TEST(unhex_rejects_odd_digits_and_foreign_characters)
{
	uint8_t out[8];

	ck_assert_int_eq(kyso_unhex("123", out, sizeof(out)), -1);
	ck_assert_int_eq(kyso_unhex("12 3", out, sizeof(out)), -1);
	ck_assert_int_eq(kyso_unhex("0x12", out, sizeof(out)), -1);
	ck_assert_int_eq(kyso_unhex("1g", out, sizeof(out)), -1);
	ck_assert_int_eq(kyso_unhex("12:34", out, sizeof(out)), -1);
	ck_assert_int_eq(kyso_unhex("\xc3\xa9", out, sizeof(out)), -1);
	ck_assert_int_eq(kyso_unhex(NULL, out, sizeof(out)), -1);
}
END_TEST

START_TEST(unhex_never_writes_past_cap)
{
	uint8_t out[4];

	memset(out, 0x77, sizeof(out));
	ck_assert_int_eq(kyso_unhex("0102030405", out, 3), -1);
	ck_assert_uint_eq(out[3], 0x77);
	ck_assert_int_eq(kyso_unhex("010203", out, 3), 3);
}
END_TEST

START_TEST(hex_and_unhex_round_trip_every_byte)
{
	uint8_t d[256], back[256];
	char s[2 * 256 + 1];
	size_t i;

	for (i = 0; i < 256; i++)
		d[i] = (uint8_t)i;
	kyso_hex(d, sizeof(d), s);
	ck_assert_int_eq(kyso_unhex(s, back, sizeof(back)), 256);
	ck_assert_int_eq(memcmp(d, back, sizeof(d)), 0);
}
END_TEST

static Suite *buf_suite(void)
{
	Suite *s = suite_create("buf");
	TCase *tc;

	tc = tcase_create("cursor");
	tcase_add_test(tc, cur_reads_big_endian_integers_in_order);
	tcase_add_test(tc, cur_reads_high_bytes_without_sign_extension);
	tcase_add_test(tc, cur_getters_fail_without_moving_when_short);
	tcase_add_test(tc, cur_take_points_into_the_span);
	tcase_add_test(tc, cur_rejects_lengths_near_size_max);
	tcase_add_test(tc, cur_over_an_empty_span_gives_nothing);
	suite_add_tcase(s, tc);

	tc = tcase_create("buffer");
	tcase_add_test(tc, buf_appends_and_grows);
	tcase_add_test(tc, buf_append_of_nothing_succeeds_with_null);
	tcase_add_test(tc, buf_stops_at_its_ceiling);
	tcase_add_test(tc, buf_default_ceiling_is_one_mebibyte);
	tcase_add_test(tc, buf_reserve_rejects_sizes_that_overflow);
	tcase_add_test(tc, buf_reserve_of_zero_always_succeeds);
	tcase_add_test(tc, buf_append_of_its_own_bytes_survives_a_move);
	tcase_add_test(tc, buf_reset_keeps_storage_and_empties);
	tcase_add_test(tc, buf_secret_reset_wipes_the_storage);
	tcase_add_test(tc, buf_secret_growth_moves_to_fresh_storage);
	tcase_add_test(tc, buf_free_twice_is_harmless);
	tcase_add_test(tc, wipe_zeroes_every_byte);
	suite_add_tcase(s, tc);

	tc = tcase_create("hex");
	tcase_add_test(tc, hex_prints_uppercase_and_terminates);
	tcase_add_test(tc, unhex_reads_mixed_case_and_ignores_whitespace);
	tcase_add_test(tc, unhex_of_nothing_is_zero_bytes);
	tcase_add_test(tc, unhex_rejects_odd_digits_and_foreign_characters);
	tcase_add_test(tc, unhex_never_writes_past_cap);
	tcase_add_test(tc, hex_and_unhex_round_trip_every_byte);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(buf_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
