/* Unit tests for the APDU layer and the card handle under it: encoding of the
 * seven ISO 7816 cases, the exchange loop (chaining, 61xx, 6Cxx, bounds)
 * against scripted cards, status word mapping, transactions and the scripted
 * card itself. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iso7816/apdu.h"
#include "reader/reader.h"
#include "rig.h"
#include "util/buf.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t atr[] = {0x3b, 0x8c, 0x80, 0x01};

/* p[0..n) as a malloc'd hex string between prefix and suffix. */
static char *hexs(const char *prefix, const uint8_t *p, size_t n,
		  const char *suffix)
{
	size_t a = strlen(prefix), c = strlen(suffix);
	char *s = malloc(a + 2 * n + c + 1);

	ck_assert_ptr_nonnull(s);
	memcpy(s, prefix, a);
	kyso_hex(p, n, s + a);
	memcpy(s + a + 2 * n, suffix, c + 1);
	return s;
}

static void assert_bytes(const uint8_t *p, size_t n, const char *hex)
{
	size_t cap = strlen(hex) / 2 + 1;
	uint8_t *want = malloc(cap);
	long wn;

	ck_assert_ptr_nonnull(want);
	wn = kyso_unhex(hex, want, cap);
	ck_assert_int_ge(wn, 0);
	if ((size_t)wn != n || memcmp(want, p, n) != 0) {
		char *got = hexs("", p, n, "");

		ck_abort_msg("got %s, want %s", got, hex);
	}
	free(want);
}

static struct kyso_card *script(const struct kyso_script_step *steps, size_t n)
{
	struct kyso_card *c = kyso_script_card(atr, sizeof(atr), steps, n);

	ck_assert_ptr_nonnull(c);
	return c;
}

static uint8_t data10[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};

/* --- encoding ----------------------------------------------------------- */

static void assert_encodes(const struct kyso_apdu *a, int ext, const char *hex)
{
	uint8_t out[70000];
	size_t n = 0;

	ck_assert_uint_eq(kyso_apdu_encode(a, ext, out, sizeof(out), &n),
			  CKR_OK);
	assert_bytes(out, n, hex);
}

START_TEST(encode_case1_is_the_header_alone)
{
	struct kyso_apdu a = {.ins = 0xa4, .p1 = 0x04};

	assert_encodes(&a, 0, "00A40400");
	/* forcing extended changes nothing when there is no body */
	assert_encodes(&a, 1, "00A40400");
}
END_TEST

START_TEST(encode_case2s_writes_le_and_256_as_00)
{
	struct kyso_apdu a = {.ins = 0xb0, .le = 0x10};

	assert_encodes(&a, 0, "00B0000010");
	a.le = 1;
	assert_encodes(&a, 0, "00B0000001");
	a.le = 256;
	assert_encodes(&a, 0, "00B0000000");
}
END_TEST

START_TEST(encode_case3s_writes_lc_and_data)
{
	struct kyso_apdu a = {.ins = 0xd6, .data = data10, .lc = 5};

	assert_encodes(&a, 0, "00D60000050001020304");
}
END_TEST

START_TEST(encode_case4s_writes_lc_data_and_le)
{
	struct kyso_apdu a = {.ins = 0x88, .data = data10, .lc = 3, .le = 256};

	assert_encodes(&a, 0, "0088000003 000102 00");
}
END_TEST

START_TEST(encode_case2e_writes_three_byte_le_and_65536_as_0000)
{
	struct kyso_apdu a = {.ins = 0xb0, .le = 257};

	assert_encodes(&a, 0, "00B00000000101");
	a.le = KYSO_LE_MAX;
	assert_encodes(&a, 0, "00B00000000000");
}
END_TEST

START_TEST(encode_case3e_writes_three_byte_lc)
{
	uint8_t d[300];
	struct kyso_apdu a = {
	    .ins = 0xda, .p1 = 0x3f, .p2 = 0xff, .data = d, .lc = sizeof(d)};
	char *want;

	memset(d, 0x42, sizeof(d));
	want = hexs("00DA3FFF00012C", d, sizeof(d), "");
	assert_encodes(&a, 0, want);
	free(want);
}
END_TEST

START_TEST(encode_case4e_writes_two_byte_le_after_data)
{
	uint8_t d[300];
	struct kyso_apdu a = {
	    .ins = 0x2a, .p1 = 0x9e, .p2 = 0x9a, .data = d, .lc = sizeof(d)};
	char *want;

	memset(d, 0x17, sizeof(d));
	a.le = KYSO_LE_MAX;
	want = hexs("002A9E9A00012C", d, sizeof(d), "0000");
	assert_encodes(&a, 0, want);
	free(want);
	a.le = 0x200;
	want = hexs("002A9E9A00012C", d, sizeof(d), "0200");
	assert_encodes(&a, 0, want);
	free(want);
}
END_TEST

START_TEST(encode_uses_extended_for_short_sizes_when_asked)
{
	struct kyso_apdu a = {.ins = 0x2a,
			      .p1 = 0x80,
			      .p2 = 0x86,
			      .data = data10,
			      .lc = 5,
			      .le = 10};

	assert_encodes(&a, 1, "002A8086 000005 0001020304 000A");
	a.data = NULL;
	a.lc = 0;
	assert_encodes(&a, 1, "002A8086 00000A");
}
END_TEST

START_TEST(encode_takes_the_largest_extended_command)
{
	uint8_t *d = calloc(1, 65535);
	uint8_t *out = malloc(4 + 3 + 65535 + 2);
	struct kyso_apdu a = {.ins = 0xda,
			      .p1 = 0x3f,
			      .p2 = 0xff,
			      .data = d,
			      .lc = 65535,
			      .le = KYSO_LE_MAX};
	size_t n;

	ck_assert_uint_eq(kyso_apdu_encode(&a, 0, out, 4 + 3 + 65535 + 2, &n),
			  CKR_OK);
	ck_assert_uint_eq(n, 4 + 3 + 65535 + 2);
	ck_assert_uint_eq(out[4], 0x00);
	ck_assert_uint_eq(out[5], 0xff);
	ck_assert_uint_eq(out[6], 0xff);
	ck_assert_uint_eq(out[n - 2], 0x00);
	ck_assert_uint_eq(out[n - 1], 0x00);
	free(d);
	free(out);
}
END_TEST

START_TEST(encode_rejects_inconsistent_fields)
{
	uint8_t out[32];
	size_t n;
	struct kyso_apdu a = {.ins = 0xda, .data = data10, .lc = 65536};

	/* Lc beyond 65535 */
	ck_assert_uint_eq(kyso_apdu_encode(&a, 1, out, sizeof(out), &n),
			  CKR_ARGUMENTS_BAD);
	/* a length with no data */
	a.data = NULL;
	a.lc = 4;
	ck_assert_uint_eq(kyso_apdu_encode(&a, 0, out, sizeof(out), &n),
			  CKR_ARGUMENTS_BAD);
	/* data with a zero length */
	a.data = data10;
	a.lc = 0;
	ck_assert_uint_eq(kyso_apdu_encode(&a, 0, out, sizeof(out), &n),
			  CKR_ARGUMENTS_BAD);
	/* Le beyond 65536 */
	a.data = NULL;
	a.le = KYSO_LE_MAX + 1;
	ck_assert_uint_eq(kyso_apdu_encode(&a, 1, out, sizeof(out), &n),
			  CKR_ARGUMENTS_BAD);
	a.le = (size_t)-1;
	ck_assert_uint_eq(kyso_apdu_encode(&a, 1, out, sizeof(out), &n),
			  CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(kyso_apdu_encode(NULL, 0, out, sizeof(out), &n),
			  CKR_ARGUMENTS_BAD);
	a.le = 0;
	ck_assert_uint_eq(kyso_apdu_encode(&a, 0, out, sizeof(out), NULL),
			  CKR_ARGUMENTS_BAD);
}
END_TEST

START_TEST(encode_refuses_extended_lengths_for_short_only_apdus)
{
	uint8_t out[600], d[256] = {0};
	size_t n;
	struct kyso_apdu a = {
	    .ins = 0xda, .data = d, .lc = 256, .flags = KYSO_APDU_SHORT};

	ck_assert_uint_eq(kyso_apdu_encode(&a, 0, out, sizeof(out), &n),
			  CKR_ARGUMENTS_BAD);
	a.lc = 255;
	ck_assert_uint_eq(kyso_apdu_encode(&a, 0, out, sizeof(out), &n),
			  CKR_OK);
	a.le = 257;
	ck_assert_uint_eq(kyso_apdu_encode(&a, 0, out, sizeof(out), &n),
			  CKR_ARGUMENTS_BAD);
	a.le = 256;
	ck_assert_uint_eq(kyso_apdu_encode(&a, 1, out, sizeof(out), &n),
			  CKR_ARGUMENTS_BAD);
}
END_TEST

START_TEST(encode_reports_the_size_needed_for_every_short_buffer)
{
	uint8_t d[300] = {0}, out[400];
	static const struct {
		size_t lc, le;
		int ext;
	} cases[] = {
	    {0, 0, 0},	 {0, 10, 0},   {5, 0, 0},  {5, 256, 0},	  {0, 257, 0},
	    {300, 0, 0}, {300, 10, 0}, {5, 10, 1}, {0, 65536, 0},
	};
	size_t i, cap, need, n;

	for (i = 0; i < N(cases); i++) {
		struct kyso_apdu a = {.ins = 0x01,
				      .p1 = 0x02,
				      .p2 = 0x03,
				      .data = cases[i].lc ? d : NULL,
				      .lc = cases[i].lc,
				      .le = cases[i].le};

		ck_assert_uint_eq(
		    kyso_apdu_encode(&a, cases[i].ext, out, sizeof(out), &need),
		    CKR_OK);
		for (cap = 0; cap < need; cap++) {
			n = 0;
			ck_assert_uint_eq(kyso_apdu_encode(&a, cases[i].ext,
							   cap ? out : NULL,
							   cap, &n),
					  CKR_BUFFER_TOO_SMALL);
			ck_assert_uint_eq(n, need);
		}
	}
}
END_TEST

/* --- transmit: plain exchanges ------------------------------------------ */

START_TEST(transmit_returns_data_and_status_word)
{
	static const struct kyso_script_step steps[] = {
	    {"00A4040009 A00000030800001000 00", "61114F06000010000100 9000"},
	};
	static const uint8_t aid[] = {0xa0, 0x00, 0x00, 0x03, 0x08,
				      0x00, 0x00, 0x10, 0x00};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {
	    .ins = 0xa4, .p1 = 0x04, .data = aid, .lc = sizeof(aid), .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_uint_eq(sw, 0x9000);
	assert_bytes(b.p, b.len, "61114F06000010000100");
	script_done(c);
	ck_assert_uint_eq(c->apdus, 1);
	ck_assert_uint_eq(c->depth, 0);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_returns_an_error_status_word_with_rv_ok)
{
	static const struct kyso_script_step steps[] = {
	    {"00CB3FFF055C035FC10500", "6A82"},
	};
	static const uint8_t tag[] = {0x5c, 0x03, 0x5f, 0xc1, 0x05};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0xcb,
			      .p1 = 0x3f,
			      .p2 = 0xff,
			      .data = tag,
			      .lc = sizeof(tag),
			      .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_uint_eq(sw, 0x6a82);
	ck_assert_uint_eq(b.len, 0);
	script_done(c);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_appends_to_what_resp_holds)
{
	static const struct kyso_script_step steps[] = {
	    {"00B0000000", "CCDD9000"},
	};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0xb0, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	ck_assert_int_eq(kyso_buf_append(&b, "\xaa\xbb", 2), 0);
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	assert_bytes(b.p, b.len, "AABBCCDD");
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_rejects_inconsistent_apdus_before_sending)
{
	struct kyso_card *c = script(NULL, 0);
	struct kyso_apdu a = {.ins = 0xda, .lc = 4};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw = 0x1234;

	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw),
			  CKR_ARGUMENTS_BAD);
	a.data = data10;
	a.lc = 0;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw),
			  CKR_ARGUMENTS_BAD);
	a.lc = 65536;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw),
			  CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(kyso_apdu_transmit(c, NULL, &b, &sw),
			  CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, NULL, &sw),
			  CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, NULL),
			  CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(c->apdus, 0);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_fails_on_a_response_without_status_word)
{
	static const struct kyso_script_step one[] = {{"*", "90"}};
	static const struct kyso_script_step none[] = {{"*", ""}};
	struct kyso_apdu a = {.ins = 0xb0, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	struct kyso_card *c;
	uint16_t sw;

	c = script(one, N(one));
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_DEVICE_ERROR);
	ck_assert_uint_eq(c->depth, 0);
	kyso_card_free(c);
	c = script(none, N(none));
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_DEVICE_ERROR);
	kyso_card_free(c);
	ck_assert_uint_eq(b.len, 0);
	kyso_buf_free(&b);
}
END_TEST

START_TEST(transmit_passes_a_transport_failure_up)
{
	static const struct kyso_script_step steps[] = {
	    {"00B0000010", "9000"},
	};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0xb0, .le = 0x20};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw = 0x1234;

	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_DEVICE_ERROR);
	ck_assert_uint_eq(sw, 0);
	ck_assert_int_eq(kyso_script_mismatch(c), 1);
	ck_assert_uint_eq(c->depth, 0);
	kyso_card_free(c);
}
END_TEST

/* --- transmit: 61xx and 6Cxx ------------------------------------------- */

START_TEST(transmit_follows_61xx_with_get_response)
{
	static const struct kyso_script_step steps[] = {
	    {"002A9E9A04 01020304 00", "6104"},
	    {"00C0000004", "A1A2A3A4 6102"},
	    {"00C0000002", "B1B2 9000"},
	};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0x2a,
			      .p1 = 0x9e,
			      .p2 = 0x9a,
			      .data = data10 + 1,
			      .lc = 4,
			      .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_uint_eq(sw, 0x9000);
	assert_bytes(b.p, b.len, "A1A2A3A4B1B2");
	script_done(c);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_asks_256_bytes_for_6100)
{
	uint8_t d[256];
	char *r1;
	struct kyso_script_step steps[] = {
	    {"00CA010000", "6100"},
	    {"00C0000000", NULL},
	};
	struct kyso_card *c;
	struct kyso_apdu a = {.ins = 0xca, .p1 = 0x01, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	memset(d, 0x33, sizeof(d));
	r1 = hexs("", d, sizeof(d), "9000");
	steps[1].resp = r1;
	c = script(steps, N(steps));
	free(r1);
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_uint_eq(b.len, 256);
	script_done(c);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_keeps_data_that_came_with_61xx)
{
	static const struct kyso_script_step steps[] = {
	    {"00B0000000", "0102 6101"},
	    {"00C0000001", "03 9000"},
	};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0xb0, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	assert_bytes(b.p, b.len, "010203");
	script_done(c);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_get_response_keeps_cla_without_chaining_bit)
{
	static const struct kyso_script_step steps[] = {
	    {"1CDA3FFF04 00010203", "9000"}, {"0CDA3FFF01 04", "6102"},
	    {"0CC0000002", "EEFF9000"},	     {"80CA000000", "6101"},
	    {"80C0000001", "119000"},
	};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.cla = 0x0c,
			      .ins = 0xda,
			      .p1 = 0x3f,
			      .p2 = 0xff,
			      .data = data10,
			      .lc = 5,
			      .flags = KYSO_APDU_CHAIN};
	struct kyso_apdu g = {.cla = 0x80, .ins = 0xca, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	c->max_send = 4;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	assert_bytes(b.p, b.len, "EEFF");
	ck_assert_uint_eq(kyso_apdu_transmit(c, &g, &b, &sw), CKR_OK);
	assert_bytes(b.p, b.len, "EEFF11");
	script_done(c);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_gives_up_on_61xx_that_never_ends)
{
	enum { STEPS = 1100 };
	struct kyso_script_step *steps = calloc(STEPS, sizeof(*steps));
	struct kyso_apdu a = {.ins = 0xb0, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	struct kyso_card *c;
	uint16_t sw = 0x1234;
	size_t i;

	for (i = 0; i < STEPS; i++) {
		steps[i].cmd = "*";
		steps[i].resp = "AA 6101";
	}
	c = script(steps, STEPS);
	free(steps);
	ck_assert_int_eq(kyso_buf_append(&b, "\x01", 1), 0);
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_DEVICE_ERROR);
	ck_assert_uint_eq(sw, 0);
	/* the command and 1024 GET RESPONSE, then it stops */
	ck_assert_uint_eq(c->apdus, 1025);
	ck_assert_uint_eq(kyso_script_left(c), STEPS - 1025);
	/* what was there before stays, nothing of the failed exchange */
	assert_bytes(b.p, b.len, "01");
	ck_assert_uint_eq(c->depth, 0);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_gives_up_on_get_response_that_brings_nothing)
{
	enum { STEPS = 100 };
	struct kyso_script_step *steps = calloc(STEPS, sizeof(*steps));
	struct kyso_apdu a = {.ins = 0xb0, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	struct kyso_card *c;
	uint16_t sw;
	size_t i;

	for (i = 0; i < STEPS; i++) {
		steps[i].cmd = "*";
		steps[i].resp = "6110";
	}
	c = script(steps, STEPS);
	free(steps);
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_DEVICE_ERROR);
	ck_assert_uint_le(c->apdus, 10);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_stops_at_the_response_ceiling)
{
	static const struct kyso_script_step steps[] = {
	    {"00B0000000", "000102030405060708 6108"},
	    {"00C0000008", "0001020304050607 9000"},
	};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0xb0, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	b.max = 16;
	ck_assert_int_eq(kyso_buf_append(&b, "\x77", 1), 0);
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_DEVICE_ERROR);
	assert_bytes(b.p, b.len, "77");
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_fills_resp_exactly_to_its_ceiling)
{
	static const struct kyso_script_step steps[] = {
	    {"00B0000000", "0001020304050607 6108"},
	    {"00C0000008", "0001020304050607 9000"},
	};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0xb0, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	b.max = 16;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_uint_eq(b.len, 16);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_resends_once_with_the_le_of_6cxx)
{
	static const struct kyso_script_step steps[] = {
	    {"00B0000000", "6C05"},
	    {"00B0000005", "0102030405 9000"},
	};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0xb0, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_uint_eq(sw, 0x9000);
	assert_bytes(b.p, b.len, "0102030405");
	script_done(c);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_resends_a_command_with_data_after_6cxx)
{
	static const struct kyso_script_step steps[] = {
	    {"00CB3FFF 02 5C00 00", "6C00"},
	    {"00CB3FFF 02 5C00 00", "AA9000"},
	    {"00CB3FFF 02 5C00", "6C02"},
	    {"00CB3FFF 02 5C00 02", "BBCC9000"},
	};
	struct kyso_card *c = script(steps, N(steps));
	static const uint8_t d[] = {0x5c, 0x00};
	struct kyso_apdu a = {
	    .ins = 0xcb, .p1 = 0x3f, .p2 = 0xff, .data = d, .lc = 2, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	/* 6C00 means 256 */
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	assert_bytes(b.p, b.len, "AA");
	/* a case 3 command becomes case 4 */
	a.le = KYSO_LE_NONE;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	assert_bytes(b.p, b.len, "AABBCC");
	script_done(c);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_returns_a_second_6cxx_as_the_status_word)
{
	static const struct kyso_script_step steps[] = {
	    {"00B0000000", "6C05"},
	    {"00B0000005", "6C03"},
	};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0xb0, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_uint_eq(sw, 0x6c03);
	ck_assert_uint_eq(b.len, 0);
	script_done(c);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_never_resends_a_secret_command_after_6cxx)
{
	/* A vendor PIN check (ePass2003 INS 82) is not an ISO PIN command:
	 * the secret flag alone must stop the re-send. */
	static const struct kyso_script_step steps[] = {
	    {"0082018108 0102030405060708", "6C08"},
	};
	static const uint8_t crypto[] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0x82,
			      .p1 = 0x01,
			      .p2 = 0x81,
			      .data = crypto,
			      .lc = sizeof(crypto),
			      .flags = KYSO_APDU_SECRET};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_uint_eq(sw, 0x6c08);
	script_done(c);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_never_resends_a_pin_command_after_6cxx)
{
	static const struct kyso_script_step steps[] = {
	    {"0020008106 313233343536", "6C00"},
	    {"002C000006 313233343536", "6C06"},
	};
	static const uint8_t pin[] = {'1', '2', '3', '4', '5', '6'};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {
	    .ins = 0x20, .p2 = 0x81, .data = pin, .lc = sizeof(pin)};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_uint_eq(sw, 0x6c00);
	a.ins = 0x2c;
	a.p2 = 0x00;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_uint_eq(sw, 0x6c06);
	script_done(c);
	ck_assert_uint_eq(c->apdus, 2);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_resends_get_response_after_6cxx)
{
	static const struct kyso_script_step steps[] = {
	    {"00B0000000", "6110"},
	    {"00C0000010", "6C04"},
	    {"00C0000004", "01020304 9000"},
	};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0xb0, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	assert_bytes(b.p, b.len, "01020304");
	script_done(c);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_survives_61xx_and_6cxx_alternating_forever)
{
	enum { STEPS = 3000 };
	struct kyso_script_step *steps = calloc(STEPS, sizeof(*steps));
	struct kyso_apdu a = {.ins = 0xb0, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	struct kyso_card *c;
	uint16_t sw;
	size_t i;

	for (i = 0; i < STEPS; i++) {
		steps[i].cmd = "*";
		steps[i].resp = i % 2 ? "6C01" : "AA6101";
	}
	c = script(steps, STEPS);
	free(steps);
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_DEVICE_ERROR);
	ck_assert_uint_le(c->apdus, 2 * 1025);
	ck_assert_uint_eq(b.len, 0);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

/* --- transmit: chaining and extended length ----------------------------- */

START_TEST(transmit_chains_blocks_with_the_chaining_bit_on_all_but_last)
{
	static const struct kyso_script_step steps[] = {
	    {"10DB3FFF04 00010203", "9000"},
	    {"10DB3FFF04 04050607", "9000"},
	    {"00DB3FFF02 0809", "9000"},
	};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0xdb,
			      .p1 = 0x3f,
			      .p2 = 0xff,
			      .data = data10,
			      .lc = 10,
			      .flags = KYSO_APDU_CHAIN};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	c->max_send = 4;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_uint_eq(sw, 0x9000);
	script_done(c);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_puts_le_only_on_the_last_chained_block)
{
	static const struct kyso_script_step steps[] = {
	    {"102A9E9A05 0001020304", "9000"},
	    {"002A9E9A05 0506070809 00", "C0FFEE9000"},
	};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0x2a,
			      .p1 = 0x9e,
			      .p2 = 0x9a,
			      .data = data10,
			      .lc = 10,
			      .le = 256,
			      .flags = KYSO_APDU_CHAIN};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	c->max_send = 5;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	assert_bytes(b.p, b.len, "C0FFEE");
	script_done(c);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_stops_a_chain_at_a_block_not_answered_9000)
{
	static const struct kyso_script_step steps[] = {
	    {"10DB3FFF04 00010203", "6A80"},
	};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0xdb,
			      .p1 = 0x3f,
			      .p2 = 0xff,
			      .data = data10,
			      .lc = 10,
			      .flags = KYSO_APDU_CHAIN};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	c->max_send = 4;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_uint_eq(sw, 0x6a80);
	ck_assert_uint_eq(b.len, 0);
	script_done(c);
	ck_assert_uint_eq(c->depth, 0);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_does_not_treat_61xx_on_a_chained_block_as_done)
{
	static const struct kyso_script_step steps[] = {
	    {"10DB3FFF04 00010203", "6100"},
	};
	struct kyso_card *c = script(steps, N(steps));
	struct kyso_apdu a = {.ins = 0xdb,
			      .p1 = 0x3f,
			      .p2 = 0xff,
			      .data = data10,
			      .lc = 10,
			      .flags = KYSO_APDU_CHAIN};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	c->max_send = 4;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_uint_eq(sw, 0x6100);
	script_done(c);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_refuses_long_data_without_chain_or_extended)
{
	uint8_t d[256] = {0};
	struct kyso_card *c = script(NULL, 0);
	struct kyso_apdu a = {
	    .ins = 0xdb, .p1 = 0x3f, .p2 = 0xff, .data = d, .lc = sizeof(d)};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw),
			  CKR_ARGUMENTS_BAD);
	c->max_send = 100;
	a.lc = 101;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw),
			  CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(c->apdus, 0);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_chains_at_255_bytes_by_default)
{
	uint8_t d[300];
	struct kyso_script_step steps[2];
	struct kyso_apdu a = {.ins = 0xdb,
			      .p1 = 0x3f,
			      .p2 = 0xff,
			      .data = d,
			      .lc = sizeof(d),
			      .flags = KYSO_APDU_CHAIN};
	struct kyso_buf b = KYSO_BUF_INIT;
	struct kyso_card *c;
	char *s0, *s1;
	uint16_t sw;
	size_t i;

	for (i = 0; i < sizeof(d); i++)
		d[i] = (uint8_t)i;
	s0 = hexs("10DB3FFFFF", d, 255, "");
	s1 = hexs("00DB3FFF2D", d + 255, 45, "");
	steps[0] = (struct kyso_script_step){s0, "9000"};
	steps[1] = (struct kyso_script_step){s1, "9000"};
	c = script(steps, 2);
	free(s0);
	free(s1);
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	script_done(c);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_sends_long_data_as_one_extended_apdu_when_the_card_can)
{
	uint8_t d[300];
	struct kyso_script_step steps[1];
	struct kyso_apdu a = {.ins = 0x2a,
			      .p1 = 0x9e,
			      .p2 = 0x9a,
			      .data = d,
			      .lc = sizeof(d),
			      .le = KYSO_LE_MAX,
			      .flags = KYSO_APDU_CHAIN};
	struct kyso_buf b = KYSO_BUF_INIT;
	struct kyso_card *c;
	char *s0;
	uint16_t sw;

	memset(d, 0x99, sizeof(d));
	s0 = hexs("002A9E9A00012C", d, sizeof(d), "0000");
	steps[0] = (struct kyso_script_step){s0, "01029000"};
	c = script(steps, 1);
	free(s0);
	c->ext_apdu = 1;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	assert_bytes(b.p, b.len, "0102");
	script_done(c);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_chains_on_an_extended_card_above_its_max_send)
{
	uint8_t d[250];
	struct kyso_script_step steps[3];
	struct kyso_apdu a = {.ins = 0xdb,
			      .p1 = 0x3f,
			      .p2 = 0xff,
			      .data = d,
			      .lc = sizeof(d),
			      .flags = KYSO_APDU_CHAIN};
	struct kyso_buf b = KYSO_BUF_INIT;
	struct kyso_card *c;
	char *s[3];
	uint16_t sw;
	size_t i;

	memset(d, 0x11, sizeof(d));
	s[0] = hexs("10DB3FFF64", d, 100, "");
	s[1] = hexs("10DB3FFF64", d, 100, "");
	s[2] = hexs("00DB3FFF32", d, 50, "");
	for (i = 0; i < 3; i++)
		steps[i] = (struct kyso_script_step){s[i], "9000"};
	c = script(steps, 3);
	for (i = 0; i < 3; i++)
		free(s[i]);
	c->ext_apdu = 1;
	c->max_send = 100;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	script_done(c);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_asks_extended_le_only_of_extended_cards)
{
	static const struct kyso_script_step ext[] = {
	    {"00B00000 000000", "AB9000"},
	};
	static const struct kyso_script_step shrt[] = {
	    {"00B00000 00", "AB9000"},
	    {"00B00000 00", "AB9000"},
	};
	struct kyso_apdu a = {.ins = 0xb0, .le = KYSO_LE_MAX};
	struct kyso_buf b = KYSO_BUF_INIT;
	struct kyso_card *c;
	uint16_t sw;

	c = script(ext, N(ext));
	c->ext_apdu = 1;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	script_done(c);
	kyso_card_free(c);

	/* a short-only card, and an extended card told to stay short */
	c = script(shrt, N(shrt));
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	c->ext_apdu = 1;
	a.flags = KYSO_APDU_SHORT;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	script_done(c);
	kyso_card_free(c);
	kyso_buf_free(&b);
}
END_TEST

START_TEST(transmit_chains_short_on_an_extended_card_told_to_stay_short)
{
	uint8_t d[300];
	struct kyso_script_step steps[2];
	struct kyso_apdu a = {.ins = 0xdb,
			      .p1 = 0x3f,
			      .p2 = 0xff,
			      .data = d,
			      .lc = sizeof(d),
			      .flags = KYSO_APDU_CHAIN | KYSO_APDU_SHORT};
	struct kyso_buf b = KYSO_BUF_INIT;
	struct kyso_card *c;
	char *s0, *s1;
	uint16_t sw;

	memset(d, 0x22, sizeof(d));
	s0 = hexs("10DB3FFFFF", d, 255, "");
	s1 = hexs("00DB3FFF2D", d, 45, "");
	steps[0] = (struct kyso_script_step){s0, "9000"};
	steps[1] = (struct kyso_script_step){s1, "9000"};
	c = script(steps, 2);
	free(s0);
	free(s1);
	c->ext_apdu = 1;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	script_done(c);
	kyso_card_free(c);
}
END_TEST

/* --- a card with counting transport, for transactions -------------------- */

struct counting {
	unsigned begins, ends, transmits, releases;
	CK_RV begin_rv;
	size_t resplen; /* what transmit answers: 9000, or this many bytes */
};

static struct counting counts;

static CK_RV count_transmit(struct kyso_card *c, const uint8_t *cmd, size_t len,
			    uint8_t *resp, size_t *resplen)
{
	(void)c;
	(void)cmd;
	(void)len;
	counts.transmits++;
	if (counts.resplen) {
		memset(resp, 0x90,
		       counts.resplen <= KYSO_MAX_RAPDU ? counts.resplen
							: KYSO_MAX_RAPDU);
		*resplen = counts.resplen;
		return CKR_OK;
	}
	resp[0] = 0x90;
	resp[1] = 0x00;
	*resplen = 2;
	return CKR_OK;
}

static CK_RV count_begin(struct kyso_card *c)
{
	(void)c;
	counts.begins++;
	return counts.begin_rv;
}

static CK_RV count_end(struct kyso_card *c)
{
	(void)c;
	counts.ends++;
	return CKR_OK;
}

static void count_release(struct kyso_card *c)
{
	(void)c;
	counts.releases++;
}

static const struct kyso_card_ops count_ops = {count_transmit, count_begin,
					       count_end, count_release};

static struct kyso_card *counting_card(void)
{
	struct kyso_card *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	memset(&counts, 0, sizeof(counts));
	c->ops = &count_ops;
	return c;
}

START_TEST(card_transactions_nest_and_reach_the_transport_once)
{
	struct kyso_card *c = counting_card();

	ck_assert_uint_eq(kyso_card_begin(c), CKR_OK);
	ck_assert_uint_eq(kyso_card_begin(c), CKR_OK);
	ck_assert_uint_eq(kyso_card_begin(c), CKR_OK);
	ck_assert_uint_eq(c->depth, 3);
	ck_assert_uint_eq(counts.begins, 1);
	ck_assert_uint_eq(kyso_card_end(c), CKR_OK);
	ck_assert_uint_eq(kyso_card_end(c), CKR_OK);
	ck_assert_uint_eq(counts.ends, 0);
	ck_assert_uint_eq(kyso_card_end(c), CKR_OK);
	ck_assert_uint_eq(counts.ends, 1);
	ck_assert_uint_eq(c->depth, 0);
	kyso_card_free(c);
	ck_assert_uint_eq(counts.releases, 1);
}
END_TEST

START_TEST(card_end_without_begin_is_refused)
{
	struct kyso_card *c = counting_card();

	ck_assert_uint_eq(kyso_card_end(c), CKR_GENERAL_ERROR);
	ck_assert_uint_eq(counts.ends, 0);
	ck_assert_uint_eq(c->depth, 0);
	kyso_card_free(c);
}
END_TEST

START_TEST(card_begin_that_fails_leaves_no_transaction)
{
	struct kyso_card *c = counting_card();

	counts.begin_rv = CKR_DEVICE_REMOVED;
	ck_assert_uint_eq(kyso_card_begin(c), CKR_DEVICE_REMOVED);
	ck_assert_uint_eq(c->depth, 0);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_runs_its_apdus_in_one_transaction)
{
	struct kyso_card *c = counting_card();
	struct kyso_apdu a = {.ins = 0xdb,
			      .p1 = 0x3f,
			      .p2 = 0xff,
			      .data = data10,
			      .lc = 10,
			      .flags = KYSO_APDU_CHAIN};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	c->max_send = 3;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_OK);
	ck_assert_uint_eq(counts.transmits, 4);
	ck_assert_uint_eq(counts.begins, 1);
	ck_assert_uint_eq(counts.ends, 1);
	ck_assert_uint_eq(c->depth, 0);
	kyso_card_free(c);
}
END_TEST

START_TEST(transmit_does_not_send_when_the_transaction_fails)
{
	struct kyso_card *c = counting_card();
	struct kyso_apdu a = {.ins = 0xb0, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	uint16_t sw;

	counts.begin_rv = CKR_TOKEN_NOT_PRESENT;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw),
			  CKR_TOKEN_NOT_PRESENT);
	ck_assert_uint_eq(counts.transmits, 0);
	ck_assert_uint_eq(counts.ends, 0);
	kyso_card_free(c);
}
END_TEST

START_TEST(card_transmit_counts_apdus)
{
	struct kyso_card *c = counting_card();
	static const uint8_t cmd[] = {0x00, 0xb0, 0x00, 0x00, 0x00};
	uint8_t *resp = malloc(KYSO_MAX_RAPDU);
	size_t n;

	ck_assert_uint_eq(kyso_card_transmit(c, cmd, sizeof(cmd), resp, &n),
			  CKR_OK);
	ck_assert_uint_eq(kyso_card_transmit(c, cmd, sizeof(cmd), resp, &n),
			  CKR_OK);
	ck_assert_uint_eq(c->apdus, 2);
	ck_assert_uint_eq(n, 2);
	free(resp);
	kyso_card_free(c);
}
END_TEST

START_TEST(card_transmit_rejects_transport_answers_out_of_bounds)
{
	struct kyso_card *c = counting_card();
	static const uint8_t cmd[] = {0x00, 0xb0, 0x00, 0x00, 0x00};
	uint8_t *resp = malloc(KYSO_MAX_RAPDU);
	size_t n;

	counts.resplen = 1;
	ck_assert_uint_eq(kyso_card_transmit(c, cmd, sizeof(cmd), resp, &n),
			  CKR_DEVICE_ERROR);
	counts.resplen = KYSO_MAX_RAPDU + 1;
	ck_assert_uint_eq(kyso_card_transmit(c, cmd, sizeof(cmd), resp, &n),
			  CKR_DEVICE_ERROR);
	ck_assert_uint_eq(n, 0);
	counts.resplen = KYSO_MAX_RAPDU;
	ck_assert_uint_eq(kyso_card_transmit(c, cmd, sizeof(cmd), resp, &n),
			  CKR_OK);
	ck_assert_uint_eq(kyso_card_transmit(c, cmd, 0, resp, &n),
			  CKR_ARGUMENTS_BAD);
	free(resp);
	kyso_card_free(c);
}
END_TEST

START_TEST(card_free_accepts_null)
{
	kyso_card_free(NULL);
	kyso_strv_free(NULL, 3);
}
END_TEST

START_TEST(strv_free_frees_every_name)
{
	char **v = calloc(3, sizeof(*v));

	v[0] = strdup("a");
	v[1] = NULL;
	v[2] = strdup("c");
	kyso_strv_free(v, 3);
}
END_TEST

START_TEST(readers_backend_defaults_to_pcsc_and_can_be_replaced)
{
	static const struct kyso_readers_ops other = {0};

	ck_assert_ptr_eq(kyso_readers_backend(), &kyso_pcsc_readers);
	kyso_readers_set_backend(&other);
	ck_assert_ptr_eq(kyso_readers_backend(), &other);
	kyso_readers_set_backend(NULL);
	ck_assert_ptr_eq(kyso_readers_backend(), &kyso_pcsc_readers);
}
END_TEST

/* --- the scripted card -------------------------------------------------- */

START_TEST(script_card_copies_the_atr)
{
	struct kyso_card *c = script(NULL, 0);
	uint8_t big[KYSO_MAX_ATR + 1] = {0};

	ck_assert_uint_eq(c->atrlen, sizeof(atr));
	ck_assert_int_eq(memcmp(c->atr, atr, sizeof(atr)), 0);
	kyso_card_free(c);
	ck_assert_ptr_null(kyso_script_card(big, sizeof(big), NULL, 0));
}
END_TEST

START_TEST(script_card_refuses_steps_that_are_not_hex)
{
	static const struct kyso_script_step bad1[] = {{"00A4 0", "9000"}};
	static const struct kyso_script_step bad2[] = {{"00A4", "90 0X"}};
	static const struct kyso_script_step bad3[] = {{"**", "9000"}};
	static const struct kyso_script_step bad4[] = {{NULL, "9000"}};

	ck_assert_ptr_null(kyso_script_card(atr, sizeof(atr), bad1, 1));
	ck_assert_ptr_null(kyso_script_card(atr, sizeof(atr), bad2, 1));
	ck_assert_ptr_null(kyso_script_card(atr, sizeof(atr), bad3, 1));
	ck_assert_ptr_null(kyso_script_card(atr, sizeof(atr), bad4, 1));
	ck_assert_ptr_null(kyso_script_card(atr, sizeof(atr), NULL, 1));
}
END_TEST

START_TEST(script_card_remembers_a_command_that_does_not_match)
{
	static const struct kyso_script_step steps[] = {
	    {"00A40400", "9000"},
	    {"00B00000", "9000"},
	};
	static const uint8_t good[] = {0x00, 0xa4, 0x04, 0x00};
	static const uint8_t longer[] = {0x00, 0xb0, 0x00, 0x00, 0x00};
	struct kyso_card *c = script(steps, N(steps));
	uint8_t *resp = malloc(KYSO_MAX_RAPDU);
	size_t n;

	ck_assert_uint_eq(kyso_card_transmit(c, good, 4, resp, &n), CKR_OK);
	ck_assert_int_eq(kyso_script_mismatch(c), 0);
	ck_assert_uint_eq(kyso_script_left(c), 1);
	/* a prefix of the expected command is no match either */
	ck_assert_uint_eq(kyso_card_transmit(c, longer, 5, resp, &n),
			  CKR_DEVICE_ERROR);
	ck_assert_uint_eq(kyso_card_transmit(c, longer, 3, resp, &n),
			  CKR_DEVICE_ERROR);
	ck_assert_int_eq(kyso_script_mismatch(c), 1);
	ck_assert_uint_eq(kyso_script_left(c), 1);
	free(resp);
	kyso_card_free(c);
}
END_TEST

START_TEST(script_card_fails_commands_after_the_last_step)
{
	static const struct kyso_script_step steps[] = {{" * ", "9000"}};
	static const uint8_t cmd[] = {0x00, 0xa4, 0x04, 0x00};
	struct kyso_card *c = script(steps, N(steps));
	uint8_t *resp = malloc(KYSO_MAX_RAPDU);
	size_t n;

	ck_assert_uint_eq(kyso_card_transmit(c, cmd, 4, resp, &n), CKR_OK);
	ck_assert_int_eq(kyso_script_mismatch(c), 0);
	ck_assert_uint_eq(kyso_card_transmit(c, cmd, 4, resp, &n),
			  CKR_DEVICE_ERROR);
	ck_assert_int_eq(kyso_script_mismatch(c), 1);
	free(resp);
	kyso_card_free(c);
}
END_TEST

START_TEST(raw_script_card_answers_in_order_whatever_is_asked)
{
	static const uint8_t r0[] = {0x90, 0x00};
	static const uint8_t r1[] = {0x01};
	static const uint8_t *const resps[] = {r0, r1, NULL};
	static const size_t lens[] = {2, 1, 0};
	static const uint8_t cmd[] = {0x00, 0xa4, 0x04, 0x00};
	struct kyso_card *c = kyso_script_card_raw(NULL, 0, resps, lens, 3);
	uint8_t *resp = malloc(KYSO_MAX_RAPDU);
	size_t n;

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(kyso_card_transmit(c, cmd, 4, resp, &n), CKR_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(kyso_card_transmit(c, cmd, 2, resp, &n),
			  CKR_DEVICE_ERROR);
	ck_assert_uint_eq(kyso_card_transmit(c, cmd, 3, resp, &n),
			  CKR_DEVICE_ERROR);
	ck_assert_uint_eq(kyso_script_left(c), 0);
	ck_assert_uint_eq(kyso_card_transmit(c, cmd, 4, resp, &n),
			  CKR_DEVICE_ERROR);
	ck_assert_int_eq(kyso_script_mismatch(c), 0);
	free(resp);
	kyso_card_free(c);
}
END_TEST

START_TEST(raw_script_card_refuses_responses_over_the_maximum)
{
	static const uint8_t r0[] = {0x90, 0x00};
	static const uint8_t *const resps[] = {r0};
	static const size_t big[] = {KYSO_MAX_RAPDU + 1};
	static const size_t hole[] = {2};
	static const uint8_t *const nulls[] = {NULL};

	ck_assert_ptr_null(kyso_script_card_raw(NULL, 0, resps, big, 1));
	ck_assert_ptr_null(kyso_script_card_raw(NULL, 0, nulls, hole, 1));
	ck_assert_ptr_null(kyso_script_card_raw(NULL, 0, NULL, NULL, 1));
}
END_TEST

START_TEST(raw_script_card_feeds_garbage_to_transmit_safely)
{
	/* every response shape: nothing, 1 byte, 61xx with and without data,
	 * 6Cxx, huge */
	static const uint8_t r61[] = {0x61, 0xff};
	static const uint8_t r6c[] = {0x6c, 0x00};
	static const uint8_t rd61[] = {0xaa, 0x61, 0x00};
	static const uint8_t r1[] = {0x90};
	uint8_t *huge = calloc(1, KYSO_MAX_RAPDU);
	const uint8_t *resps[] = {r61, r6c, rd61, huge, r1};
	size_t lens[] = {2, 2, 3, KYSO_MAX_RAPDU, 1};
	struct kyso_apdu a = {.ins = 0xb0, .le = 256};
	struct kyso_buf b = KYSO_BUF_INIT;
	struct kyso_card *c;
	uint16_t sw;

	huge[KYSO_MAX_RAPDU - 2] = 0x61;
	c = kyso_script_card_raw(NULL, 0, resps, lens, N(lens));
	ck_assert_ptr_nonnull(c);
	free(huge);
	b.max = 100000;
	ck_assert_uint_eq(kyso_apdu_transmit(c, &a, &b, &sw), CKR_DEVICE_ERROR);
	ck_assert_uint_eq(b.len, 0);
	ck_assert_uint_eq(c->apdus, 5);
	kyso_buf_free(&b);
	kyso_card_free(c);
}
END_TEST

/* --- status words ------------------------------------------------------- */

START_TEST(sw_maps_to_the_pkcs11_values_callers_expect)
{
	static const struct {
		uint16_t sw;
		CK_RV rv;
	} map[] = {
	    {0x9000, CKR_OK},
	    {0x6300, CKR_PIN_INCORRECT},
	    {0x63c0, CKR_PIN_INCORRECT},
	    {0x63c2, CKR_PIN_INCORRECT},
	    {0x63cf, CKR_PIN_INCORRECT},
	    {0x6983, CKR_PIN_LOCKED},
	    {0x6982, CKR_USER_NOT_LOGGED_IN},
	    {0x6984, CKR_DEVICE_ERROR},
	    {0x6985, CKR_FUNCTION_FAILED},
	    {0x6986, CKR_FUNCTION_FAILED},
	    {0x6a80, CKR_FUNCTION_FAILED},
	    {0x6a89, CKR_FUNCTION_FAILED},
	    {0x6a82, CKR_OBJECT_HANDLE_INVALID},
	    {0x6a83, CKR_OBJECT_HANDLE_INVALID},
	    {0x6a88, CKR_OBJECT_HANDLE_INVALID},
	    {0x6a84, CKR_DEVICE_MEMORY},
	    {0x6a81, CKR_FUNCTION_NOT_SUPPORTED},
	    {0x6d00, CKR_FUNCTION_NOT_SUPPORTED},
	    {0x6e00, CKR_FUNCTION_NOT_SUPPORTED},
	    {0x6f00, CKR_DEVICE_ERROR},
	    {0x6700, CKR_DEVICE_ERROR},
	    {0x6a86, CKR_DEVICE_ERROR},
	    {0x6b00, CKR_DEVICE_ERROR},
	    {0x6581, CKR_DEVICE_ERROR},
	    {0x6400, CKR_DEVICE_ERROR},
	    {0x6310, CKR_DEVICE_ERROR},
	    {0x6110, CKR_DEVICE_ERROR},
	    {0x0000, CKR_DEVICE_ERROR},
	    {0xffff, CKR_DEVICE_ERROR},
	};
	size_t i;

	for (i = 0; i < N(map); i++)
		ck_assert_msg(kyso_sw_to_rv(map[i].sw) == map[i].rv,
			      "SW %04X gave 0x%lx, want 0x%lx", map[i].sw,
			      kyso_sw_to_rv(map[i].sw), map[i].rv);
}
END_TEST

START_TEST(sw_error_never_says_ok)
{
	ck_assert_uint_eq(kyso_sw_error(0x9000), CKR_DEVICE_ERROR);
	ck_assert_uint_eq(kyso_sw_error(0x6982), CKR_USER_NOT_LOGGED_IN);
	ck_assert_uint_eq(kyso_sw_error(0x6a84), CKR_DEVICE_MEMORY);
	ck_assert_uint_eq(kyso_sw_error(0x63c1), CKR_PIN_INCORRECT);
	ck_assert_uint_eq(kyso_sw_error(0x6f00), CKR_DEVICE_ERROR);
}
END_TEST

/* The answers to a PIN command, and to a PIN state query (no data). */
static const struct {
	uint16_t sw;
	int known; /* kyso_pin_sw decodes it */
	CK_RV rv, state;
	int tries;
} pin_answers[] = {
    {0x9000, 1, CKR_OK, CKR_OK, -1},
    {0x63c3, 1, CKR_PIN_INCORRECT, CKR_OK, 3},
    {0x63c1, 1, CKR_PIN_INCORRECT, CKR_OK, 1},
    {0x63cf, 1, CKR_PIN_INCORRECT, CKR_OK, 15},
    {0x63c0, 1, CKR_PIN_LOCKED, CKR_PIN_LOCKED, 0},
    {0x6983, 1, CKR_PIN_LOCKED, CKR_PIN_LOCKED, 0},
    {0x6300, 1, CKR_PIN_INCORRECT, CKR_PIN_INCORRECT, -1},
    {0x6982, 0, 0, CKR_USER_NOT_LOGGED_IN, -1},
    {0x6a88, 0, 0, CKR_OBJECT_HANDLE_INVALID, -1},
    {0x6a80, 0, 0, CKR_FUNCTION_FAILED, -1},
    {0x6310, 0, 0, CKR_DEVICE_ERROR, -1},
    {0x6d00, 0, 0, CKR_FUNCTION_NOT_SUPPORTED, -1},
};

START_TEST(pin_sw_decodes_the_iso_pin_answers_only)
{
	CK_RV rv = 0x12345;
	int tries = 99;
	int known = kyso_pin_sw(pin_answers[_i].sw, &rv, &tries);

	ck_assert_int_eq(known, pin_answers[_i].known);
	ck_assert_int_eq(tries, pin_answers[_i].tries);
	if (known)
		ck_assert_uint_eq(rv, pin_answers[_i].rv);
	else
		ck_assert_uint_eq(rv, 0x12345); /* left for the caller */
}
END_TEST

START_TEST(pin_state_sw_says_ok_while_tries_are_left)
{
	int tries = 99;

	ck_assert_uint_eq(kyso_pin_state_sw(pin_answers[_i].sw, &tries),
			  pin_answers[_i].state);
	ck_assert_int_eq(tries, pin_answers[_i].tries);
}
END_TEST

static Suite *apdu_suite(void)
{
	Suite *s = suite_create("apdu");
	TCase *tc;

	tc = tcase_create("encode");
	tcase_add_test(tc, encode_case1_is_the_header_alone);
	tcase_add_test(tc, encode_case2s_writes_le_and_256_as_00);
	tcase_add_test(tc, encode_case3s_writes_lc_and_data);
	tcase_add_test(tc, encode_case4s_writes_lc_data_and_le);
	tcase_add_test(tc,
		       encode_case2e_writes_three_byte_le_and_65536_as_0000);
	tcase_add_test(tc, encode_case3e_writes_three_byte_lc);
	tcase_add_test(tc, encode_case4e_writes_two_byte_le_after_data);
	tcase_add_test(tc, encode_uses_extended_for_short_sizes_when_asked);
	tcase_add_test(tc, encode_takes_the_largest_extended_command);
	tcase_add_test(tc, encode_rejects_inconsistent_fields);
	tcase_add_test(tc,
		       encode_refuses_extended_lengths_for_short_only_apdus);
	tcase_add_test(tc,
		       encode_reports_the_size_needed_for_every_short_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("transmit");
	tcase_add_test(tc, transmit_returns_data_and_status_word);
	tcase_add_test(tc, transmit_returns_an_error_status_word_with_rv_ok);
	tcase_add_test(tc, transmit_appends_to_what_resp_holds);
	tcase_add_test(tc, transmit_rejects_inconsistent_apdus_before_sending);
	tcase_add_test(tc, transmit_fails_on_a_response_without_status_word);
	tcase_add_test(tc, transmit_passes_a_transport_failure_up);
	tcase_add_test(tc, transmit_follows_61xx_with_get_response);
	tcase_add_test(tc, transmit_asks_256_bytes_for_6100);
	tcase_add_test(tc, transmit_keeps_data_that_came_with_61xx);
	tcase_add_test(tc,
		       transmit_get_response_keeps_cla_without_chaining_bit);
	tcase_add_test(tc, transmit_gives_up_on_61xx_that_never_ends);
	tcase_add_test(tc,
		       transmit_gives_up_on_get_response_that_brings_nothing);
	tcase_add_test(tc, transmit_stops_at_the_response_ceiling);
	tcase_add_test(tc, transmit_fills_resp_exactly_to_its_ceiling);
	tcase_add_test(tc, transmit_resends_once_with_the_le_of_6cxx);
	tcase_add_test(tc, transmit_resends_a_command_with_data_after_6cxx);
	tcase_add_test(tc, transmit_returns_a_second_6cxx_as_the_status_word);
	tcase_add_test(tc, transmit_never_resends_a_pin_command_after_6cxx);
	tcase_add_test(tc, transmit_never_resends_a_secret_command_after_6cxx);
	tcase_add_test(tc, transmit_resends_get_response_after_6cxx);
	tcase_add_test(tc, transmit_survives_61xx_and_6cxx_alternating_forever);
	tcase_add_test(
	    tc, transmit_chains_blocks_with_the_chaining_bit_on_all_but_last);
	tcase_add_test(tc, transmit_puts_le_only_on_the_last_chained_block);
	tcase_add_test(tc, transmit_stops_a_chain_at_a_block_not_answered_9000);
	tcase_add_test(tc,
		       transmit_does_not_treat_61xx_on_a_chained_block_as_done);
	tcase_add_test(tc,
		       transmit_refuses_long_data_without_chain_or_extended);
	tcase_add_test(tc, transmit_chains_at_255_bytes_by_default);
	tcase_add_test(
	    tc,
	    transmit_sends_long_data_as_one_extended_apdu_when_the_card_can);
	tcase_add_test(tc,
		       transmit_chains_on_an_extended_card_above_its_max_send);
	tcase_add_test(tc, transmit_asks_extended_le_only_of_extended_cards);
	tcase_add_test(
	    tc, transmit_chains_short_on_an_extended_card_told_to_stay_short);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("card");
	tcase_add_test(tc, card_transactions_nest_and_reach_the_transport_once);
	tcase_add_test(tc, card_end_without_begin_is_refused);
	tcase_add_test(tc, card_begin_that_fails_leaves_no_transaction);
	tcase_add_test(tc, transmit_runs_its_apdus_in_one_transaction);
	tcase_add_test(tc, transmit_does_not_send_when_the_transaction_fails);
	tcase_add_test(tc, card_transmit_counts_apdus);
	tcase_add_test(tc,
		       card_transmit_rejects_transport_answers_out_of_bounds);
	tcase_add_test(tc, card_free_accepts_null);
	tcase_add_test(tc, strv_free_frees_every_name);
	tcase_add_test(tc,
		       readers_backend_defaults_to_pcsc_and_can_be_replaced);
	suite_add_tcase(s, tc);

	tc = tcase_create("script");
	tcase_add_test(tc, script_card_copies_the_atr);
	tcase_add_test(tc, script_card_refuses_steps_that_are_not_hex);
	tcase_add_test(tc, script_card_remembers_a_command_that_does_not_match);
	tcase_add_test(tc, script_card_fails_commands_after_the_last_step);
	tcase_add_test(tc, raw_script_card_answers_in_order_whatever_is_asked);
	tcase_add_test(tc, raw_script_card_refuses_responses_over_the_maximum);
	tcase_add_test(tc, raw_script_card_feeds_garbage_to_transmit_safely);
	suite_add_tcase(s, tc);

	tc = tcase_create("sw");
	tcase_add_test(tc, sw_maps_to_the_pkcs11_values_callers_expect);
	tcase_add_test(tc, sw_error_never_says_ok);
	tcase_add_loop_test(tc, pin_sw_decodes_the_iso_pin_answers_only, 0,
			    (int)N(pin_answers));
	tcase_add_loop_test(tc, pin_state_sw_says_ok_while_tries_are_left, 0,
			    (int)N(pin_answers));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(apdu_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
