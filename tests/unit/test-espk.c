/* Unit tests of the ENTERSAFE-ESPK parsers (drivers/espk.c): index records,
 * PKCS#11 attribute streams and the container map, laid out here from the
 * description in OpenSC issue #3834 / PR #3835 (no real token dump is
 * public), and their hostile variants. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/espk.h"
#include "espk-bytes.h"
#include "kyso/pkcs11.h"

START_TEST(the_fci_name_is_recognised_with_zero_padding_only)
{
	uint8_t name[16] = "ENTERSAFE-ESPK";

	ck_assert_int_eq(kyso_espk_is_name(name, 14), 1);
	ck_assert_int_eq(kyso_espk_is_name(name, 16), 1);
	name[14] = 'X';
	ck_assert_int_eq(kyso_espk_is_name(name, 16), 0);
	ck_assert_int_eq(kyso_espk_is_name(name, 13), 0);
	ck_assert_int_eq(
	    kyso_espk_is_name((const uint8_t *)"entersafe-espk", 14), 0);
	ck_assert_int_eq(kyso_espk_is_name(NULL, 0), 0);
}
END_TEST

START_TEST(the_index_lists_files_and_skips_labels_and_empty_slots)
{
	uint8_t idx[8 * KYSO_ESPK_RECLEN + 7];
	struct kyso_espk_entry e[8];
	const struct kyso_espk_entry *f;
	size_t n;

	espk_put_record(idx + 0 * 30, 0xFFFF, "mscp", "", 0, 0);
	espk_put_record(idx + 1 * 30, 0x0101, "mscp", "cert0001", 900, 2048);
	espk_put_record(idx + 2 * 30, 0x0102, "mscp", "prvk0001", 120, 512);
	espk_put_record(idx + 3 * 30, 0x0000, "", "", 0, 0);
	espk_put_record(idx + 4 * 30, 0x0103, "mscp", "unused", 0, 512);
	espk_put_record(idx + 5 * 30, 0x0104, "mscp", "containermap", 80, 256);
	espk_put_record(idx + 6 * 30, 0x0105, "tkinfdir", "tokeninfo", 64, 64);
	/* a record whose name is not printable */
	espk_put_record(idx + 7 * 30, 0x0106, "mscp", "x", 10, 10);
	idx[7 * 30 + 0x0C] = 0x07;
	memset(idx + 8 * 30, 0xEE, 7); /* trailing partial record */
	ck_assert_int_eq(kyso_espk_index(idx, sizeof(idx), e, 8, &n), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(e[0].fid, 0x0101);
	ck_assert_str_eq(e[0].dir, "mscp");
	ck_assert_str_eq(e[0].name, "cert0001");
	ck_assert_uint_eq(e[0].used, 900);
	ck_assert_uint_eq(e[0].alloc, 2048);
	f = kyso_espk_find(e, n, "tokeninfo");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(f->fid, 0x0105);
	ck_assert_ptr_null(kyso_espk_find(e, n, "cmapfile"));
	/* at most cap entries */
	ck_assert_int_eq(kyso_espk_index(idx, sizeof(idx), e, 2, &n), 0);
	ck_assert_uint_eq(n, 2);
	/* less than a record */
	ck_assert_int_eq(kyso_espk_index(idx, 29, e, 8, &n), -1);
}
END_TEST

START_TEST(a_13_character_name_fills_its_field)
{
	uint8_t idx[KYSO_ESPK_RECLEN];
	struct kyso_espk_entry e[1];
	size_t n;

	espk_put_record(idx, 0x0201, "0123456789", "abcdefghijklm", 1, 1);
	ck_assert_int_eq(kyso_espk_index(idx, sizeof(idx), e, 1, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(e[0].dir, "0123456789");
	ck_assert_str_eq(e[0].name, "abcdefghijklm");
	/* a byte after the zero padding: not a name */
	idx[0x0C + 3] = 0;
	ck_assert_int_eq(kyso_espk_index(idx, sizeof(idx), e, 1, &n), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(an_attribute_stream_reads_types_lengths_and_values)
{
	uint8_t s[256], handle[4] = {0x60, 0xA0, 0, 0}, t = 1;
	struct kyso_espk_attr a[8];
	const struct kyso_espk_attr *x;
	uint64_t v;
	size_t n = 0, na;

	n = espk_put_attr(s, n, CKA_LABEL, "Viettel-CA", 10);
	n = espk_put_attr(s, n, CKA_ID, "\x01\x02\x03", 3);
	n = espk_put_attr(s, n, CKA_SIGN, &t, 1);
	n = espk_put_attr(s, n, (uint32_t)KYSO_ESPK_CKA_KEY_HANDLE, handle, 4);
	n = espk_put_attr(s, n, CKA_VALUE, "", 0);
	memset(s + n, 0, 20); /* unused space */
	ck_assert_int_eq(kyso_espk_attrs(s, n + 20, a, 8, &na), 0);
	ck_assert_uint_eq(na, 5);
	x = kyso_espk_attr(a, na, CKA_LABEL);
	ck_assert_ptr_nonnull(x);
	ck_assert_uint_eq(x->len, 10);
	ck_assert_int_eq(memcmp(x->val, "Viettel-CA", 10), 0);
	x = kyso_espk_attr(a, na, (uint32_t)KYSO_ESPK_CKA_KEY_HANDLE);
	ck_assert_int_eq(kyso_espk_ulong(x, &v), 0);
	ck_assert_uint_eq(v, 0xA060);
	ck_assert_int_eq(kyso_espk_ulong(kyso_espk_attr(a, na, CKA_SIGN), &v),
			 0);
	ck_assert_uint_eq(v, 1);
	ck_assert_int_eq(kyso_espk_ulong(kyso_espk_attr(a, na, CKA_ID), &v),
			 -1);
	ck_assert_ptr_null(kyso_espk_attr(a, na, CKA_MODULUS));
	/* more attributes than room */
	ck_assert_int_eq(kyso_espk_attrs(s, n, a, 4, &na), -1);
}
END_TEST

START_TEST(a_stream_that_overruns_or_ends_in_garbage_is_malformed)
{
	uint8_t s[64];
	struct kyso_espk_attr a[8];
	size_t n = 0, na, cut;

	n = espk_put_attr(s, n, CKA_LABEL, "abcd", 4);
	n = espk_put_attr(s, n, CKA_ID, "\x01", 1);
	/* every cut inside the last attribute */
	for (cut = 13; cut < n; cut++)
		ck_assert_msg(kyso_espk_attrs(s, cut, a, 8, &na) == -1,
			      "cut %zu", cut);
	ck_assert_int_eq(kyso_espk_attrs(s, 12, a, 8, &na), 0);
	ck_assert_uint_eq(na, 1);
	/* a length of 4 GiB */
	put32le(s + 4, 0xFFFFFFFF);
	ck_assert_int_eq(kyso_espk_attrs(s, n, a, 8, &na), -1);
	ck_assert_int_eq(kyso_espk_attrs(NULL, 0, a, 8, &na), 0);
	ck_assert_uint_eq(na, 0);
}
END_TEST

START_TEST(the_container_map_pairs_handles_until_one_is_out_of_range)
{
	uint8_t m[0x20 + 4 * 0x18];
	struct kyso_espk_container c[4];
	size_t n;

	memset(m, 0, sizeof(m));
	put32le(m + 0x20, 0xA020);
	put32le(m + 0x24, 0x8020);
	put32le(m + 0x38, 0xA040);
	put32le(m + 0x3C, 0x8040);
	put32le(m + 0x50, 0xB000); /* out of range: the list ends */
	put32le(m + 0x54, 0x8060);
	ck_assert_int_eq(kyso_espk_containermap(m, sizeof(m), c, 4, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(c[0].priv, 0xA020);
	ck_assert_uint_eq(c[0].pub, 0x8020);
	ck_assert_uint_eq(c[1].priv, 0xA040);
	ck_assert_int_eq(kyso_espk_containermap(m, 0x27, c, 4, &n), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(kyso_espk_containermap(m, sizeof(m), c, 1, &n), 0);
	ck_assert_uint_eq(n, 1);
}
END_TEST

static Suite *espk_suite(void)
{
	Suite *s = suite_create("espk");
	TCase *t = tcase_create("parsers");

	tcase_add_test(t, the_fci_name_is_recognised_with_zero_padding_only);
	tcase_add_test(t,
		       the_index_lists_files_and_skips_labels_and_empty_slots);
	tcase_add_test(t, a_13_character_name_fills_its_field);
	tcase_add_test(t, an_attribute_stream_reads_types_lengths_and_values);
	tcase_add_test(t,
		       a_stream_that_overruns_or_ends_in_garbage_is_malformed);
	tcase_add_test(
	    t, the_container_map_pairs_handles_until_one_is_out_of_range);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(espk_suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
