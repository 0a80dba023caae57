/* Unit tests of secure messaging (iso7816/sm.c) and the MACs under it
 * (crypto/mac.c): known answers computed outside kyso (ISO/IEC 9797-1,
 * RFC 4493, and wrapped APDUs computed with Python's cryptography package
 * from OpenSC's description), random commands against the reference in
 * sm-ref.h, and hostile answers. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "crypto/crypto.h"
#include "hexs.h"
#include "iso7816/sm.h"
#include "sm-ref.h"
#include "util/buf.h"

/* --- MACs ----------------------------------------------------------------- */

START_TEST(retail_mac_matches_the_iso_9797_1_example)
{
	/* ISO/IEC 9797-1 annex B: "Now is the time for all ", K and K',
	 * padding method 1 (the data are a whole number of blocks) */
	uint8_t key[16], mac[8];

	unhex("0123456789ABCDEFFEDCBA9876543210", key, sizeof(key));
	ck_assert_int_eq(
	    kyso_mac_retail(key, NULL,
			    (const uint8_t *)"Now is the time for all ", 24,
			    mac),
	    CKR_OK);
	ck_assert_str_eq(hx(mac, 8), "A1C72E74EA3FA9B6");
}
END_TEST

START_TEST(cmac_matches_the_rfc_4493_examples)
{
	static const char *msgs[] = {
	    "", "6BC1BEE22E409F96E93D7E117393172A",
	    "6BC1BEE22E409F96E93D7E117393172AAE2D8A571E03AC9C9EB76FAC45AF8E5130"
	    "C81C46A35CE411",
	    "6BC1BEE22E409F96E93D7E117393172AAE2D8A571E03AC9C9EB76FAC45AF8E5130"
	    "C81C46A35CE411E5FBC1191A0A52EFF69F2445DF4F9B17AD2B417BE66C3710"};
	static const char *tags[] = {"BB1D6929E95937287FA37D129B756746",
				     "070A16B46B4D4144F79BDD9DD04A287C",
				     "DFA66747DE9AE63030CA32611497C827",
				     "51F0BEBF7E3B9D92FC49741779363CFE"};
	uint8_t key[16], m[64], tag[16];
	size_t i, n;

	unhex("2B7E151628AED2A6ABF7158809CF4F3C", key, sizeof(key));
	for (i = 0; i < 4; i++) {
		n = unhex(msgs[i], m, sizeof(m));
		ck_assert_int_eq(kyso_mac_cmac(key, 16, NULL, m, n, tag),
				 CKR_OK);
		ck_assert_str_eq(hx(tag, 16), tags[i]);
	}
}
END_TEST

START_TEST(cmac_agrees_with_openssl_for_every_length)
{
	uint8_t key[16], m[80], a[16], b[16], iv[16];
	size_t n;

	RAND_bytes(key, sizeof(key));
	RAND_bytes(m, sizeof(m));
	RAND_bytes(iv, sizeof(iv));
	for (n = 0; n <= sizeof(m); n++) {
		ck_assert_int_eq(kyso_mac_cmac(key, 16, NULL, m, n, a), CKR_OK);
		ref_cmac(key, m, n, b);
		ck_assert_int_eq(memcmp(a, b, 16), 0);
		ck_assert_int_eq(kyso_mac_cmac(key, 16, iv, m, n, a), CKR_OK);
		ref_cmac_iv(key, iv, m, n, b);
		ck_assert_int_eq(memcmp(a, b, 16), 0);
	}
}
END_TEST

START_TEST(macs_refuse_unpadded_input)
{
	uint8_t key[16] = {0}, m[16] = {0}, out[16];

	ck_assert_int_eq(kyso_mac_retail(key, NULL, m, 7, out),
			 CKR_ARGUMENTS_BAD);
	ck_assert_int_eq(kyso_mac_retail(key, NULL, m, 0, out),
			 CKR_ARGUMENTS_BAD);
	ck_assert_int_eq(kyso_mac_cbc(KYSO_AES, key, 16, NULL, m, 15, out),
			 CKR_ARGUMENTS_BAD);
}
END_TEST

/* --- wrapping ------------------------------------------------------------- */

static void session(struct kyso_sm *sm, enum ref_mode mode)
{
	memset(sm, 0, sizeof(*sm));
	sm->cipher = mode == REF_DES ? KYSO_DES3 : KYSO_AES;
	sm->mac = mode == REF_DES   ? KYSO_SM_RETAIL
		  : mode == REF_AES ? KYSO_SM_CBCMAC
				    : KYSO_SM_CMAC;
	sm->flags = KYSO_SM_ICV_COUNTER;
	unhex("00112233445566778899AABBCCDDEEFF", sm->kenc, 16);
	unhex("0F1E2D3C4B5A69788796A5B4C3D2E1F0", sm->kmac, 16);
	unhex("0102030405060708", sm->icv, 8);
}

static const char *wrap_hex(enum ref_mode mode, uint8_t ins, uint8_t p1,
			    uint8_t p2, const char *data, size_t le,
			    unsigned opts)
{
	struct kyso_sm sm;
	struct kyso_apdu a = {0};
	uint8_t d[300], out[400];
	size_t n = 0;

	session(&sm, mode);
	a.cla = 0x00;
	a.ins = ins;
	a.p1 = p1;
	a.p2 = p2;
	if (data) {
		a.lc = unhex(data, d, sizeof(d));
		a.data = d;
	}
	a.le = le;
	ck_assert_int_eq(kyso_sm_wrap(&sm, &a, opts, out, sizeof(out), &n),
			 CKR_OK);
	return hx(out, n);
}

/* Expected bytes computed outside kyso (Python, cryptography 48) from
 * OpenSC's card-epass2003.c construction. */
START_TEST(wrapped_3des_commands_match_independent_vectors)
{
	ck_assert_str_eq(wrap_hex(REF_DES, 0xA4, 0, 0, "3F00", 256, 0),
			 "0CA4000018870901D6499E44673175AB9701008E0855A701FA148"
			 "2199100");
	ck_assert_str_eq(
	    wrap_hex(REF_DES, 0x22, 0x41, 0xB8, "80018481022920", KYSO_LE_NONE,
		     0),
	    "0C2241B8158709013B9D373D51D558038E08E45446F2E833179500");
	ck_assert_str_eq(wrap_hex(REF_DES, 0xB0, 0, 0, NULL, 0xD8, 0),
			 "0CB0000000000E970200D88E08B343125DD07F683E0000");
	ck_assert_str_eq(
	    wrap_hex(REF_DES, 0x82, 0x01, 0x81, NULL, KYSO_LE_NONE, 0),
	    "0C8201810A8E083D5DE53663C01ABE00");
}
END_TEST

START_TEST(wrapped_aes_commands_match_independent_vectors)
{
	ck_assert_str_eq(wrap_hex(REF_AES, 0xA4, 0, 0, "3F00", 256, 0),
			 "0CA400002087110170C57DD22CE3B766868114357F4F2B2B97010"
			 "08E08123488B7BA496EDE00");
	ck_assert_str_eq(
	    wrap_hex(REF_AES, 0x22, 0x41, 0xB8, "80018481022920", KYSO_LE_NONE,
		     0),
	    "0C2241B81D8711011C84AAE275E36A6E90831272E79AD3EA8E08250616B5E3"
	    "93D51100");
	ck_assert_str_eq(wrap_hex(REF_AES, 0xB0, 0, 0, NULL, 0xD8, 0),
			 "0CB0000000000E970200D88E0882D26DD5274E0D050000");
	ck_assert_str_eq(
	    wrap_hex(REF_AES, 0x82, 0x01, 0x81, NULL, KYSO_LE_NONE, 0),
	    "0C8201810A8E0811FF8D6870539A3000");
}
END_TEST

START_TEST(wrapped_fips_commands_match_independent_vectors)
{
	ck_assert_str_eq(wrap_hex(REF_FIPS, 0xA4, 0, 0, "3F00", 256, 0),
			 "0CA400002087110170C57DD22CE3B766868114357F4F2B2B97010"
			 "08E080E368ED896BA157400");
	ck_assert_str_eq(
	    wrap_hex(REF_FIPS, 0x22, 0x41, 0xB8, "80018481022920", KYSO_LE_NONE,
		     0),
	    "0C2241B81D8711011C84AAE275E36A6E90831272E79AD3EA8E08F9BC4FED0C"
	    "8AFBC500");
	ck_assert_str_eq(wrap_hex(REF_FIPS, 0xB0, 0, 0, NULL, 0xD8, 0),
			 "0CB0000000000E970200D88E08C2B68BA4907326960000");
	/* the PIN status query: CMAC of the bare header from the chaining
	 * value */
	ck_assert_str_eq(wrap_hex(REF_FIPS, 0x82, 0x01, 0x81, NULL,
				  KYSO_LE_NONE, KYSO_SM_MAC_HEADER_ONLY),
			 "0C8201810A8E0844D478E8BFF5546F00");
}
END_TEST

START_TEST(a_256_byte_block_goes_in_an_extended_apdu)
{
	struct kyso_sm sm;
	struct kyso_apdu a = {0};
	uint8_t d[256], out[400];
	size_t n = 0, i;

	for (i = 0; i < sizeof(d); i++)
		d[i] = (uint8_t)i;
	session(&sm, REF_DES);
	a.ins = 0x2A;
	a.p1 = 0x80;
	a.p2 = 0x86;
	a.data = d;
	a.lc = sizeof(d);
	a.le = 256;
	ck_assert_int_eq(kyso_sm_wrap(&sm, &a, 0, out, sizeof(out), &n),
			 CKR_OK);
	ck_assert_uint_eq(n, 291);
	ck_assert_str_eq(hx(out, 12), "0C2A808600011A8782010901");
	ck_assert_str_eq(hx(out + n - 14, 14), "01008E08F52BC7B6903F39030000");
}
END_TEST

START_TEST(header_only_mac_is_refused_for_commands_with_data)
{
	struct kyso_sm sm;
	struct kyso_apdu a = {0};
	uint8_t d[2] = {1, 2}, out[64];
	size_t n;

	session(&sm, REF_FIPS);
	a.ins = 0x82;
	a.data = d;
	a.lc = 2;
	ck_assert_int_eq(kyso_sm_wrap(&sm, &a, KYSO_SM_MAC_HEADER_ONLY, out,
				      sizeof(out), &n),
			 CKR_ARGUMENTS_BAD);
	session(&sm, REF_AES);
	a.data = NULL;
	a.lc = 0;
	ck_assert_int_eq(kyso_sm_wrap(&sm, &a, KYSO_SM_MAC_HEADER_ONLY, out,
				      sizeof(out), &n),
			 CKR_ARGUMENTS_BAD);
}
END_TEST

/* Random commands, every mode, checked by the card-side reference. */
START_TEST(random_commands_open_on_the_reference_card)
{
	static const size_t les[] = {KYSO_LE_NONE, 1,	0x7F, 0x80,
				     0xD8,	   256, 300,  65536};
	enum ref_mode mode = (enum ref_mode)_i;
	struct kyso_sm sm;
	struct ref_sm card;
	struct ref_cmd c;
	struct kyso_apdu a = {0};
	uint8_t d[600], out[800];
	size_t n, round;

	session(&sm, mode);
	memset(&card, 0, sizeof(card));
	card.mode = mode;
	memcpy(card.kenc, sm.kenc, 16);
	memcpy(card.kmac, sm.kmac, 16);
	memcpy(card.icv, sm.icv, 16);
	for (round = 0; round < 200; round++) {
		uint8_t r[4];

		RAND_bytes(r, sizeof(r));
		a.cla = 0x00;
		a.ins = r[0] & 0xFE;
		a.p1 = r[1];
		a.p2 = r[2];
		a.lc = round % 5 == 0 ? 0 : (size_t)(r[3] * 2 + round % 3);
		RAND_bytes(d, sizeof(d));
		a.data = a.lc ? d : NULL;
		a.le = les[round % 8];
		ck_assert_int_eq(kyso_sm_wrap(&sm, &a, 0, out, sizeof(out), &n),
				 CKR_OK);
		ck_assert_uint_eq(ref_unwrap(&card, out, n, &c), 0);
		ck_assert_uint_eq(c.ins, a.ins);
		ck_assert_uint_eq(c.p1, a.p1);
		ck_assert_uint_eq(c.p2, a.p2);
		ck_assert_uint_eq(c.lc, a.lc);
		ck_assert_int_eq(memcmp(c.data, d, a.lc), 0);
		ck_assert_int_eq(c.has_le, a.le != KYSO_LE_NONE);
		/* the wrapped APDU always asks for the whole answer */
		ck_assert_uint_eq(out[n - 1], 0x00);
	}
	ck_assert_int_eq(memcmp(card.icv, sm.icv, 16), 0);
}
END_TEST

/* --- opening answers ------------------------------------------------------ */

struct pair {
	struct kyso_sm host;
	struct ref_sm card;
};

static void pair_start(struct pair *p, enum ref_mode mode)
{
	struct kyso_apdu a = {0};
	struct ref_cmd c;
	uint8_t out[64];
	size_t n;

	session(&p->host, mode);
	memset(&p->card, 0, sizeof(p->card));
	p->card.mode = mode;
	memcpy(p->card.kenc, p->host.kenc, 16);
	memcpy(p->card.kmac, p->host.kmac, 16);
	memcpy(p->card.icv, p->host.icv, 16);
	/* one command, so that both sides stand at the same counter */
	a.ins = 0xB0;
	a.le = 0x10;
	ck_assert_int_eq(kyso_sm_wrap(&p->host, &a, 0, out, sizeof(out), &n),
			 CKR_OK);
	ck_assert_uint_eq(ref_unwrap(&p->card, out, n, &c), 0);
}

START_TEST(answers_with_data_open_in_every_mode)
{
	enum ref_mode mode = (enum ref_mode)_i;
	struct kyso_buf out = KYSO_BUF_INIT;
	struct pair p;
	uint8_t data[300], resp[400];
	size_t len, n;
	uint16_t sw;
	int plain;

	RAND_bytes(data, sizeof(data));
	for (len = 0; len <= sizeof(data); len += 37) {
		pair_start(&p, mode);
		n = ref_wrap_resp(&p.card, data, len, 0x9000, resp);
		kyso_buf_reset(&out);
		ck_assert_int_eq(
		    kyso_sm_unwrap(&p.host, resp, n, &out, &sw, &plain),
		    CKR_OK);
		ck_assert_int_eq(plain, 0);
		ck_assert_uint_eq(sw, 0x9000);
		ck_assert_uint_eq(out.len, len);
		if (len > 0)
			ck_assert_int_eq(memcmp(out.p, data, len), 0);
	}
	kyso_buf_free(&out);
}
END_TEST

START_TEST(an_error_status_word_comes_authenticated)
{
	struct kyso_buf out = KYSO_BUF_INIT;
	struct pair p;
	uint8_t resp[64];
	size_t n;
	uint16_t sw;
	int plain;

	pair_start(&p, REF_DES);
	n = ref_wrap_resp(&p.card, NULL, 0, 0x63C2, resp);
	ck_assert_int_eq(kyso_sm_unwrap(&p.host, resp, n, &out, &sw, &plain),
			 CKR_OK);
	ck_assert_uint_eq(sw, 0x63C2);
	ck_assert_int_eq(plain, 0);
	ck_assert_uint_eq(out.len, 0);
	kyso_buf_free(&out);
}
END_TEST

START_TEST(a_corrupted_mac_is_rejected_and_nothing_is_given)
{
	enum ref_mode mode = (enum ref_mode)_i;
	struct kyso_buf out = KYSO_BUF_INIT;
	struct pair p;
	uint8_t data[40], resp[128];
	size_t n, i;
	uint16_t sw;
	int plain;

	RAND_bytes(data, sizeof(data));
	pair_start(&p, mode);
	n = ref_wrap_resp(&p.card, data, sizeof(data), 0x9000, resp);
	/* every byte the MAC covers, and the MAC itself */
	for (i = 0; i < n - 2; i++) {
		resp[i] ^= 0x01;
		ck_assert_int_eq(
		    kyso_sm_unwrap(&p.host, resp, n, &out, &sw, &plain),
		    CKR_DEVICE_ERROR);
		ck_assert_uint_eq(out.len, 0);
		resp[i] ^= 0x01;
	}
	ck_assert_int_eq(kyso_sm_unwrap(&p.host, resp, n, &out, &sw, &plain),
			 CKR_OK);
	kyso_buf_free(&out);
}
END_TEST

START_TEST(an_answer_for_another_counter_is_rejected)
{
	struct kyso_buf out = KYSO_BUF_INIT;
	struct pair p;
	uint8_t resp[64];
	size_t n;
	uint16_t sw;
	int plain;

	pair_start(&p, REF_AES);
	ref_icv_inc(&p.card); /* a replayed or foreign answer */
	n = ref_wrap_resp(&p.card, (const uint8_t *)"abc", 3, 0x9000, resp);
	ck_assert_int_eq(kyso_sm_unwrap(&p.host, resp, n, &out, &sw, &plain),
			 CKR_DEVICE_ERROR);
	kyso_buf_free(&out);
}
END_TEST

START_TEST(outer_and_inner_status_words_must_agree)
{
	struct kyso_buf out = KYSO_BUF_INIT;
	struct pair p;
	uint8_t resp[64];
	size_t n;
	uint16_t sw;
	int plain;

	pair_start(&p, REF_DES);
	n = ref_wrap_resp(&p.card, NULL, 0, 0x6A82, resp);
	resp[n - 2] = 0x90;
	resp[n - 1] = 0x00;
	ck_assert_int_eq(kyso_sm_unwrap(&p.host, resp, n, &out, &sw, &plain),
			 CKR_DEVICE_ERROR);
	kyso_buf_free(&out);
}
END_TEST

START_TEST(a_bare_status_word_is_never_success)
{
	struct kyso_buf out = KYSO_BUF_INIT;
	struct pair p;
	uint8_t ok[2] = {0x90, 0x00}, more[2] = {0x61, 0x10},
		err[2] = {0x69, 0x88};
	uint16_t sw;
	int plain;

	pair_start(&p, REF_DES);
	ck_assert_int_eq(kyso_sm_unwrap(&p.host, ok, 2, &out, &sw, &plain),
			 CKR_DEVICE_ERROR);
	ck_assert_int_eq(kyso_sm_unwrap(&p.host, more, 2, &out, &sw, &plain),
			 CKR_DEVICE_ERROR);
	ck_assert_int_eq(kyso_sm_unwrap(&p.host, err, 2, &out, &sw, &plain),
			 CKR_OK);
	ck_assert_int_eq(plain, 1);
	ck_assert_uint_eq(sw, 0x6988);
	kyso_buf_free(&out);
}
END_TEST

START_TEST(truncated_and_garbage_answers_are_malformed)
{
	struct kyso_buf out = KYSO_BUF_INIT;
	struct pair p;
	uint8_t resp[128], junk[64];
	size_t n, cut;
	uint16_t sw;
	int plain;

	pair_start(&p, REF_AES);
	n = ref_wrap_resp(&p.card, (const uint8_t *)"hello", 5, 0x9000, resp);
	for (cut = 0; cut < n - 2; cut++) {
		uint8_t t[128];

		/* the first cut bytes, then the status word again */
		memcpy(t, resp, cut);
		t[cut] = 0x90;
		t[cut + 1] = 0x00;
		ck_assert_int_eq(
		    kyso_sm_unwrap(&p.host, t, cut + 2, &out, &sw, &plain),
		    CKR_DEVICE_ERROR);
	}
	ck_assert_int_eq(kyso_sm_unwrap(&p.host, resp, 1, &out, &sw, &plain),
			 CKR_DEVICE_ERROR);
	for (cut = 0; cut < 200; cut++) {
		RAND_bytes(junk, sizeof(junk));
		junk[sizeof(junk) - 2] = 0x90;
		junk[sizeof(junk) - 1] = 0x00;
		ck_assert_int_eq(kyso_sm_unwrap(&p.host, junk, sizeof(junk),
						&out, &sw, &plain),
				 CKR_DEVICE_ERROR);
	}
	/* an extra object after the MAC */
	memmove(resp + n - 2 + 3, resp + n - 2, 2);
	resp[n - 2] = 0x80;
	resp[n - 1] = 0x01;
	resp[n] = 0x00;
	ck_assert_int_eq(
	    kyso_sm_unwrap(&p.host, resp, n + 3, &out, &sw, &plain),
	    CKR_DEVICE_ERROR);
	ck_assert_uint_eq(out.len, 0);
	kyso_buf_free(&out);
}
END_TEST

/* Tokens send 87 LL 01 for lengths 80..FF (OpenSC works around it). */
START_TEST(the_one_byte_long_length_quirk_is_read)
{
	struct kyso_buf out = KYSO_BUF_INIT;
	struct pair p;
	uint8_t data[128], resp[256], q[256], mac[8];
	size_t n;
	uint16_t sw;
	int plain;

	memset(data, 0x5A, sizeof(data));
	pair_start(&p, REF_DES);
	/* 128 bytes pad to 136: 87 81 89 01 ... ; drop the 81 */
	n = ref_wrap_resp(&p.card, data, sizeof(data), 0x9000, resp);
	ck_assert_uint_eq(resp[1], 0x81);
	q[0] = 0x87;
	memcpy(q + 1, resp + 2, n - 2);
	n -= 1;
	/* MAC over what the token sends */
	ref_mac(&p.card, q, n - 12, 1, mac);
	memcpy(q + n - 10, mac, 8);
	ck_assert_int_eq(kyso_sm_unwrap(&p.host, q, n, &out, &sw, &plain),
			 CKR_OK);
	ck_assert_uint_eq(out.len, sizeof(data));
	ck_assert_int_eq(memcmp(out.p, data, sizeof(data)), 0);
	kyso_buf_free(&out);
}
END_TEST

START_TEST(bad_padding_inside_a_valid_mac_is_rejected)
{
	struct kyso_buf out = KYSO_BUF_INIT;
	struct pair p;
	uint8_t blk[16], resp[64], mac[8];
	size_t n = 0;
	uint16_t sw;
	int plain;

	pair_start(&p, REF_AES);
	memset(blk, 0x41, sizeof(blk)); /* no 80 anywhere */
	resp[n++] = 0x87;
	resp[n++] = 17;
	resp[n++] = 0x01;
	ref_crypt(REF_AES, p.card.kenc, 16, 1, NULL, 1, blk, 16, resp + n);
	n += 16;
	resp[n++] = 0x99;
	resp[n++] = 2;
	resp[n++] = 0x90;
	resp[n++] = 0x00;
	ref_mac(&p.card, resp, n, 1, mac);
	resp[n++] = 0x8E;
	resp[n++] = 8;
	memcpy(resp + n, mac, 8);
	n += 8;
	resp[n++] = 0x90;
	resp[n++] = 0x00;
	ck_assert_int_eq(kyso_sm_unwrap(&p.host, resp, n, &out, &sw, &plain),
			 CKR_DEVICE_ERROR);
	ck_assert_uint_eq(out.len, 0);
	kyso_buf_free(&out);
}
END_TEST

static Suite *sm_suite(void)
{
	Suite *s = suite_create("sm");
	TCase *t;

	t = tcase_create("mac");
	tcase_add_checked_fixture(t, NULL, arena_free);
	tcase_add_test(t, retail_mac_matches_the_iso_9797_1_example);
	tcase_add_test(t, cmac_matches_the_rfc_4493_examples);
	tcase_add_test(t, cmac_agrees_with_openssl_for_every_length);
	tcase_add_test(t, macs_refuse_unpadded_input);
	suite_add_tcase(s, t);

	t = tcase_create("wrap");
	tcase_add_checked_fixture(t, NULL, arena_free);
	tcase_add_test(t, wrapped_3des_commands_match_independent_vectors);
	tcase_add_test(t, wrapped_aes_commands_match_independent_vectors);
	tcase_add_test(t, wrapped_fips_commands_match_independent_vectors);
	tcase_add_test(t, a_256_byte_block_goes_in_an_extended_apdu);
	tcase_add_test(t, header_only_mac_is_refused_for_commands_with_data);
	tcase_add_loop_test(t, random_commands_open_on_the_reference_card, 0,
			    3);
	suite_add_tcase(s, t);

	t = tcase_create("unwrap");
	tcase_add_checked_fixture(t, NULL, arena_free);
	tcase_add_loop_test(t, answers_with_data_open_in_every_mode, 0, 3);
	tcase_add_test(t, an_error_status_word_comes_authenticated);
	tcase_add_loop_test(t, a_corrupted_mac_is_rejected_and_nothing_is_given,
			    0, 3);
	tcase_add_test(t, an_answer_for_another_counter_is_rejected);
	tcase_add_test(t, outer_and_inner_status_words_must_agree);
	tcase_add_test(t, a_bare_status_word_is_never_success);
	tcase_add_test(t, truncated_and_garbage_answers_are_malformed);
	tcase_add_test(t, the_one_byte_long_length_quirk_is_read);
	tcase_add_test(t, bad_padding_inside_a_valid_mac_is_rejected);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(sm_suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
