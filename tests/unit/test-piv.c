/* Unit tests of the PIV driver and the ATR parser: a scripted card (expected
 * command → response) under the driver for exact APDU bytes, and a small
 * card emulator for the management-key exchange, whose challenge is random.
 * Certificates and signatures are made with OpenSSL here, in the test. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <zlib.h>

#include "certs.h"
#include "hexs.h"
#include "iso7816/atr.h"
#include "reader/reader.h"
#include "rig.h"
#include "token/token.h"
#include "util/buf.h"

/* --- fixtures ------------------------------------------------------------ */

/* YubiKey 5 NFC: card capabilities 73 C0 21 C0, extended Lc/Le. */
static const uint8_t atr_ext[] = {
    0x3B, 0xFD, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0x73, 0xC0,
    0x21, 0xC0, 0x57, 0x59, 0x75, 0x62, 0x69, 0x4B, 0x65, 0x79, 0x40};
/* A card that chains but has no extended length (73 C0 21 80). */
static const uint8_t atr_short[] = {0x3B, 0x85, 0x80, 0x01, 0x80,
				    0x73, 0xC0, 0x21, 0x80, 0x1B};

#define SELECT_HEX    "00 A4 04 00 09 A0 00 00 03 08 00 00 10 00 00"
#define VERIFY_STATUS "00 20 00 80"

static EVP_PKEY *rsa_key, *ec_key;

/* Bytes the test owns, as hex-friendly spans. */
struct bytes {
	uint8_t *p;
	size_t n;
};

/* A certificate under O=kyso test, freed with the test's strings. */
static uint8_t *der_cert(EVP_PKEY *pk, const char *cn, size_t *len)
{
	return keep(cert_der(pk, "kyso test", cn, len));
}

static struct bytes gzip_bytes(const uint8_t *p, size_t n)
{
	struct bytes b;
	z_stream z;

	memset(&z, 0, sizeof(z));
	ck_assert_int_eq(
	    deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY),
	    Z_OK);
	b.n = deflateBound(&z, n) + 32;
	b.p = keep(malloc(b.n));
	z.next_in = (Bytef *)p;
	z.avail_in = (uInt)n;
	z.next_out = b.p;
	z.avail_out = (uInt)b.n;
	ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
	b.n = z.total_out;
	deflateEnd(&z);
	return b;
}

/* A certificate container's hex: 53 { 70 cert, 71 info, FE 00 }. */
static char *container(const uint8_t *der, size_t len, int compress)
{
	struct bytes c = {(uint8_t *)der, len};

	if (compress)
		c = gzip_bytes(der, len);
	return tlv(0x53, cat(tlv(0x70, hx(c.p, c.n)),
			     compress ? "710101" : "710100", "FE00", NULL));
}

/* --- scripts ------------------------------------------------------------ */

struct script {
	struct kyso_script_step *v;
	size_t n;
	int ext; /* the card answers long data at once (extended Le) */
};

static void step(struct script *s, const char *cmd, const char *resp)
{
	script_add(&s->v, &s->n, cmd, resp);
}

/* A command whose answer (hex data, then sw) may be longer than one short
 * response: without extended length the card hands it out in 256-byte
 * pieces with 61xx, fetched with GET RESPONSE. */
static void step_long(struct script *s, const char *cmd, const char *data,
		      const char *sw)
{
	size_t len = strlen(data) / 2, off = 0, piece, rest;
	const char *c = cmd;

	if (s->ext || len <= 256) {
		step(s, cmd, cat(data, sw, NULL));
		return;
	}
	while (off < len) {
		piece = len - off > 256 ? 256 : len - off;
		rest = len - off - piece;
		char *chunk = sub(data + 2 * off, 2 * piece);
		step(s, c,
		     rest ? cat(chunk,
				fmt("61%02X", rest > 255 ? 0 : (unsigned)rest),
				NULL)
			  : cat(chunk, sw, NULL));
		c = fmt("00C00000%02X", rest > 255 ? 0 : (unsigned)rest);
		off += piece;
	}
}

static const char *get_data_cmd(const struct script *s, uint32_t tag)
{
	return s->ext ? fmt("00CB3FFF0000055C03%06X0000", tag)
		      : fmt("00CB3FFF055C03%06X00", tag);
}

static void step_get(struct script *s, uint32_t tag, const char *data,
		     const char *sw)
{
	step_long(s, get_data_cmd(s, tag), data, sw);
}

struct rig {
	struct script s;
	struct kyso_card *card;
	struct kyso_token *tok;
};

static void rig_start(struct rig *r, int ext)
{
	memset(r, 0, sizeof(*r));
	r->s.ext = ext;
}

/* Puts the scripted card under a fresh token, in a transaction. */
static void rig_card(struct rig *r)
{
	r->card = kyso_script_card(
	    r->s.ext ? atr_ext : atr_short,
	    r->s.ext ? sizeof(atr_ext) : sizeof(atr_short), r->s.v, r->s.n);
	ck_assert_ptr_nonnull(r->card);
	/* as match leaves it, for tests that start after the match */
	r->card->ext_apdu = r->s.ext;
	ck_assert_int_eq(kyso_card_begin(r->card), CKR_OK);
	r->tok = new_token();
}

static void rig_done(struct rig *r)
{
	kyso_driver_piv.unbind(r->card);
	ck_assert_ptr_null(r->card->drvdata);
	kyso_card_end(r->card);
	r->tok->drv = NULL;
	r->tok->card = NULL;
	kyso_token_free(r->tok);
	kyso_card_free(r->card);
	free(r->s.v);
}

static int count_class(const struct kyso_token *tok, CK_OBJECT_CLASS cls)
{
	size_t i;
	int n = 0;

	for (i = 0; i < tok->nobjs; i++)
		n += tok->objs[i]->cls == cls;
	return n;
}

static const struct kyso_object *find_obj(const struct kyso_token *tok,
					  CK_OBJECT_CLASS cls, uint8_t id)
{
	size_t i;

	for (i = 0; i < tok->nobjs; i++) {
		const struct kyso_attr *a =
		    kyso_object_attr(tok->objs[i], CKA_ID);

		if (tok->objs[i]->cls == cls && a && a->len == 1 &&
		    ((uint8_t *)a->val)[0] == id)
			return tok->objs[i];
	}
	return NULL;
}

static void assert_label(const struct kyso_object *o, const char *label)
{
	const struct kyso_attr *a = kyso_object_attr(o, CKA_LABEL);

	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->len, strlen(label));
	ck_assert_mem_eq(a->val, label, a->len);
}

static const char *chuid(const char *fascn, const char *guid)
{
	return tlv(0x53, cat(tlv(0x30, fascn), tlv(0x34, guid),
			     tlv(0x35, "3230333031323331"), "3E00FE00", NULL));
}

static const char *fascn_hex =
    "D4E739DA739CED39CE739D836858210842108421C84210C3EB";
static const char *guid_hex = "00112233445566778899AABBCCDDEEFF";

/* The four main containers in binding order, answered "absent". */
static const uint32_t main_tags[] = {0x5FC105, 0x5FC10A, 0x5FC10B, 0x5FC101};

/* --- ATR ----------------------------------------------------------------- */

START_TEST(atr_with_the_extended_length_bit_announces_extended_apdus)
{
	ck_assert_int_eq(kyso_atr_ext_apdu(atr_ext, sizeof(atr_ext)), 1);
}
END_TEST

START_TEST(atr_without_the_bit_announces_short_apdus)
{
	ck_assert_int_eq(kyso_atr_ext_apdu(atr_short, sizeof(atr_short)), 0);
}
END_TEST

START_TEST(atr_with_status_bytes_after_compact_tlv_is_read)
{
	/* category 00: compact-TLV, then 3 status bytes */
	static const uint8_t a[] = {0x3B, 0x88, 0x80, 0x01, 0x00, 0x73,
				    0xC0, 0x21, 0x40, 0x00, 0x90, 0x00};
	/* the same bytes, but the capabilities sit in the status bytes */
	static const uint8_t b[] = {0x3B, 0x87, 0x80, 0x01, 0x00, 0x51,
				    0x00, 0x73, 0xC0, 0x21, 0x40};

	ck_assert_int_eq(kyso_atr_ext_apdu(a, sizeof(a)), 1);
	ck_assert_int_eq(kyso_atr_ext_apdu(b, sizeof(b)), 0);
}
END_TEST

START_TEST(truncated_or_odd_atrs_announce_nothing)
{
	static const uint8_t bad_ts[] = {0x3C, 0x81, 0x80, 0x80};
	/* compact-TLV length runs past the historical bytes */
	static const uint8_t overrun[] = {0x3B, 0x03, 0x80, 0x73, 0xC0};
	/* proprietary historical bytes that look like capabilities */
	static const uint8_t proprietary[] = {0x3B, 0x04, 0x41, 0x73,
					      0xC0, 0x21, 0xC0};
	size_t i;

	for (i = 0; i < sizeof(atr_ext) - 1; i++)
		ck_assert_int_eq(kyso_atr_ext_apdu(atr_ext, i), 0);
	ck_assert_int_eq(kyso_atr_ext_apdu(NULL, 0), 0);
	ck_assert_int_eq(kyso_atr_ext_apdu(bad_ts, sizeof(bad_ts)), 0);
	ck_assert_int_eq(kyso_atr_ext_apdu(overrun, sizeof(overrun)), 0);
	ck_assert_int_eq(kyso_atr_ext_apdu(proprietary, sizeof(proprietary)),
			 0);
}
END_TEST

/* --- match -----------------------------------------------------------------
 */

START_TEST(match_claims_a_card_that_selects_the_piv_aid)
{
	struct rig r;

	rig_start(&r, 1);
	step(&r.s, SELECT_HEX, "61114F0600001000010079074F05A0000003089000");
	rig_card(&r);
	r.card->ext_apdu = 0; /* a fresh handle: the ATR decides */
	ck_assert_int_eq(kyso_driver_piv.match(r.card), 1);
	ck_assert_int_eq(r.card->ext_apdu, 1);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(match_declines_a_card_without_the_piv_aid)
{
	struct rig r;

	rig_start(&r, 1);
	step(&r.s, SELECT_HEX, "6A82");
	rig_card(&r);
	r.card->ext_apdu = 0;
	ck_assert_int_eq(kyso_driver_piv.match(r.card), 0);
	/* not ours: the handle is left as it was */
	ck_assert_int_eq(r.card->ext_apdu, 0);
	ck_assert_ptr_null(r.card->drvdata);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(bind_takes_algorithm_limits_from_the_property_template)
{
	struct rig r;
	size_t i;

	rig_start(&r, 0);
	/* APT listing 3DES, RSA-2048 and P-256 only */
	step(&r.s, SELECT_HEX,
	     cat(tlv(0x61, cat("4F0600001000010079074F05A000000308",
			       tlv(0xAC, "8001038001078001110600"), NULL)),
		 "9000", NULL));
	step_get(&r.s, 0x5FC102, "", "6A82");
	step_get(&r.s, 0x5FC10C, "", "6A82");
	for (i = 0; i < 4; i++)
		step_get(&r.s, main_tags[i], "", "6A82");
	step(&r.s, VERIFY_STATUS, "63C3");
	rig_card(&r);
	ck_assert_int_eq(kyso_driver_piv.match(r.card), 1);
	ck_assert_int_eq(kyso_driver_piv.bind(r.card, r.tok), CKR_OK);
	ck_assert_uint_eq(r.tok->rsa_min, 2048);
	ck_assert_uint_eq(r.tok->rsa_max, 2048);
	ck_assert_uint_eq(r.tok->ec_min, 256);
	ck_assert_uint_eq(r.tok->ec_max, 256);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

/* --- bind ------------------------------------------------------------------
 */

/* Steps of a bind: CHUID, Key History, four containers, PIN status. */
static void bind_steps(struct script *s, const char *chuid_data,
		       const char *history, const char *const conts[4])
{
	size_t i;

	step_get(s, 0x5FC102, chuid_data ? chuid_data : "",
		 chuid_data ? "9000" : "6A82");
	step_get(s, 0x5FC10C, history ? history : "",
		 history ? "9000" : "6A82");
	for (i = 0; i < 4; i++)
		step_get(s, main_tags[i], conts[i] ? conts[i] : "",
			 conts[i] ? "9000" : "6A82");
}

START_TEST(bind_of_an_empty_card_adds_nothing_and_reads_no_retired_slot)
{
	static const char *none[4];
	struct rig r;

	rig_start(&r, 0);
	bind_steps(&r.s, NULL, NULL, none);
	step(&r.s, VERIFY_STATUS, "63C3");
	rig_card(&r);
	ck_assert_int_eq(kyso_driver_piv.bind(r.card, r.tok), CKR_OK);
	ck_assert_uint_eq(r.tok->nkeys, 0);
	ck_assert_uint_eq(r.tok->nobjs, 0);
	ck_assert_str_eq(r.tok->label, "PIV Card");
	ck_assert_str_eq(r.tok->manufacturer, "PIV");
	ck_assert_str_eq(r.tok->model, "PIV II");
	ck_assert_str_eq(r.tok->serial, "00000000");
	ck_assert(r.tok->flags & CKF_LOGIN_REQUIRED);
	ck_assert(r.tok->flags & CKF_USER_PIN_INITIALIZED);
	ck_assert(r.tok->flags & CKF_TOKEN_INITIALIZED);
	ck_assert(!(r.tok->flags & CKF_RNG));
	ck_assert_uint_eq(r.tok->max_pin, 8);
	ck_assert_uint_eq(r.tok->rsa_min, 1024);
	ck_assert_uint_eq(r.tok->rsa_max, 2048);
	ck_assert_uint_eq(r.tok->ec_min, 256);
	ck_assert_uint_eq(r.tok->ec_max, 384);
	ck_assert_int_eq(r.tok->so_pin, 1);
	ck_assert_int_eq(r.tok->user_tries, 3);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(bind_adds_key_and_certificate_of_a_slot_under_one_id_and_label)
{
	const char *conts[4] = {NULL};
	const struct kyso_object *cert, *priv;
	const struct kyso_attr *v;
	struct rig r;
	uint8_t *der;
	size_t len;

	der = der_cert(rsa_key, "Nguy\xe1\xbb\x85n V\xc4\x83n A", &len);
	conts[0] = container(der, len, 0);
	rig_start(&r, 0);
	bind_steps(&r.s, chuid(fascn_hex, guid_hex), NULL, conts);
	step(&r.s, VERIFY_STATUS, "9000");
	rig_card(&r);
	ck_assert_int_eq(kyso_driver_piv.bind(r.card, r.tok), CKR_OK);
	script_done(r.card);

	ck_assert_uint_eq(r.tok->nkeys, 1);
	ck_assert_uint_eq(r.tok->keys[0].ref, 0x9A);
	ck_assert_uint_eq(r.tok->keys[0].type, CKK_RSA);
	ck_assert_uint_eq(r.tok->keys[0].bits, 2048);
	ck_assert_uint_eq(r.tok->keys[0].idlen, 1);
	ck_assert_uint_eq(r.tok->keys[0].id[0], 0x01);
	ck_assert_str_eq(r.tok->keys[0].label, "PIV AUTH key");
	ck_assert_int_eq(r.tok->keys[0].can_sign, 1);
	ck_assert_int_eq(r.tok->keys[0].can_decrypt, 1);
	ck_assert_int_eq(r.tok->keys[0].always_auth, 0);
	ck_assert_int_eq(r.tok->keys[0].no_pin, 0);

	cert = find_obj(r.tok, CKO_CERTIFICATE, 0x01);
	ck_assert_ptr_nonnull(cert);
	assert_label(cert, "PIV AUTH key");
	ck_assert_uint_eq(cert->drv_ref, 0x5FC105);
	v = kyso_object_attr(cert, CKA_VALUE);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(v->len, len);
	ck_assert_mem_eq(v->val, der, len);
	priv = find_obj(r.tok, CKO_PRIVATE_KEY, 0x01);
	ck_assert_ptr_nonnull(priv);
	assert_label(priv, "PIV AUTH key");
	ck_assert_int_eq(count_class(r.tok, CKO_CERTIFICATE), 1);
	ck_assert_int_eq(count_class(r.tok, CKO_PRIVATE_KEY), 1);

	ck_assert_str_eq(r.tok->label, "Nguy\xe1\xbb\x85n V\xc4\x83n A");
	/* the GUID's last 16 hex digits, as OpenSC shows it */
	ck_assert_str_eq(r.tok->serial, "8899aabbccddeeff");
	rig_done(&r);
}
END_TEST

START_TEST(bind_inflates_a_compressed_certificate)
{
	const char *conts[4] = {NULL};
	const struct kyso_object *cert;
	const struct kyso_attr *v;
	struct rig r;
	uint8_t *der;
	size_t len;

	der = der_cert(ec_key, "Signer", &len);
	conts[1] = container(der, len, 1);
	rig_start(&r, 0);
	bind_steps(&r.s, NULL, NULL, conts);
	step(&r.s, VERIFY_STATUS, "63C3");
	rig_card(&r);
	ck_assert_int_eq(kyso_driver_piv.bind(r.card, r.tok), CKR_OK);
	script_done(r.card);
	ck_assert_uint_eq(r.tok->nkeys, 1);
	ck_assert_uint_eq(r.tok->keys[0].ref, 0x9C);
	ck_assert_uint_eq(r.tok->keys[0].id[0], 0x02);
	ck_assert_str_eq(r.tok->keys[0].label, "SIGN key");
	ck_assert_uint_eq(r.tok->keys[0].type, CKK_EC);
	ck_assert_uint_eq(r.tok->keys[0].bits, 256);
	ck_assert_int_eq(r.tok->keys[0].always_auth, 1);
	ck_assert_int_eq(r.tok->keys[0].can_sign, 1);
	ck_assert_int_eq(r.tok->keys[0].can_decrypt, 0);
	cert = find_obj(r.tok, CKO_CERTIFICATE, 0x02);
	ck_assert_ptr_nonnull(cert);
	v = kyso_object_attr(cert, CKA_VALUE);
	ck_assert_uint_eq(v->len, len);
	ck_assert_mem_eq(v->val, der, len);
	ck_assert_str_eq(r.tok->label, "Signer");
	rig_done(&r);
}
END_TEST

START_TEST(bind_gives_each_slot_its_usage)
{
	const char *conts[4];
	struct rig r;
	uint8_t *der;
	size_t len, i;

	der = der_cert(rsa_key, "Four", &len);
	for (i = 0; i < 4; i++)
		conts[i] = container(der, len, 0);
	rig_start(&r, 1);
	bind_steps(&r.s, NULL, NULL, conts);
	step(&r.s, VERIFY_STATUS, "63C3");
	rig_card(&r);
	ck_assert_int_eq(kyso_driver_piv.bind(r.card, r.tok), CKR_OK);
	script_done(r.card);
	ck_assert_uint_eq(r.tok->nkeys, 4);
	/* 9D: key management, decrypt only */
	ck_assert_uint_eq(r.tok->keys[2].ref, 0x9D);
	ck_assert_uint_eq(r.tok->keys[2].id[0], 0x03);
	ck_assert_str_eq(r.tok->keys[2].label, "KEY MAN key");
	ck_assert_int_eq(r.tok->keys[2].can_sign, 0);
	ck_assert_int_eq(r.tok->keys[2].can_decrypt, 1);
	/* 9E: card authentication, sign without PIN */
	ck_assert_uint_eq(r.tok->keys[3].ref, 0x9E);
	ck_assert_uint_eq(r.tok->keys[3].id[0], 0x04);
	ck_assert_str_eq(r.tok->keys[3].label, "CARD AUTH key");
	ck_assert_int_eq(r.tok->keys[3].can_sign, 1);
	ck_assert_int_eq(r.tok->keys[3].can_decrypt, 0);
	ck_assert_int_eq(r.tok->keys[3].no_pin, 1);
	ck_assert_int_eq(count_class(r.tok, CKO_CERTIFICATE), 4);
	rig_done(&r);
}
END_TEST

START_TEST(bind_reads_the_retired_slots_the_key_history_announces)
{
	static const char *none[4];
	const struct kyso_object *cert;
	struct rig r;
	uint8_t *der;
	size_t len;

	der = der_cert(rsa_key, "Old key", &len);
	rig_start(&r, 0);
	/* two retired keys with certificates on the card */
	bind_steps(&r.s, NULL, tlv(0x53, "C10102C20100FE00"), none);
	step_get(&r.s, 0x5FC10D, container(der, len, 0), "9000");
	step_get(&r.s, 0x5FC10E, "", "6A82");
	step(&r.s, VERIFY_STATUS, "63C3");
	rig_card(&r);
	ck_assert_int_eq(kyso_driver_piv.bind(r.card, r.tok), CKR_OK);
	script_done(r.card);
	ck_assert_uint_eq(r.tok->nkeys, 1);
	ck_assert_uint_eq(r.tok->keys[0].ref, 0x82);
	ck_assert_uint_eq(r.tok->keys[0].id[0], 0x05);
	ck_assert_str_eq(r.tok->keys[0].label, "Retired KEY MAN 1");
	ck_assert_int_eq(r.tok->keys[0].can_decrypt, 1);
	ck_assert_int_eq(r.tok->keys[0].can_sign, 0);
	cert = find_obj(r.tok, CKO_CERTIFICATE, 0x05);
	ck_assert_ptr_nonnull(cert);
	ck_assert_uint_eq(cert->drv_ref, 0x5FC10D);
	assert_label(cert, "Retired KEY MAN 1");
	/* no 9A/9C certificate: the label is the default */
	ck_assert_str_eq(r.tok->label, "PIV Card");
	rig_done(&r);
}
END_TEST

START_TEST(bind_ignores_a_key_history_that_claims_too_many_keys)
{
	static const char *none[4];
	static const char *const bad[] = {
	    "C10115C20100FE00", /* 21 retired keys */
	    "C1010FC20106FE00", /* 15 + 6 */
	    "C1020001FE00",	/* C1 of two bytes */
	    "C10105C2",		/* truncated */
	};
	struct rig r;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rig_start(&r, 0);
		bind_steps(&r.s, NULL, tlv(0x53, bad[i]), none);
		step(&r.s, VERIFY_STATUS, "63C3");
		rig_card(&r);
		ck_assert_int_eq(kyso_driver_piv.bind(r.card, r.tok), CKR_OK);
		script_done(r.card);
		ck_assert_uint_eq(r.tok->nobjs, 0);
		rig_done(&r);
	}
}
END_TEST

START_TEST(bind_skips_malformed_containers)
{
	uint8_t *der;
	size_t len;
	const char *good, *bad[13];
	struct rig r;
	size_t i;

	der = der_cert(rsa_key, "Bad", &len);
	good = container(der, len, 0);
	i = 0;
	/* truncated 53: the length says more than there is */
	bad[i++] = sub(good, strlen(good) - 20);
	/* 70 longer than its 53 */
	bad[i++] = "530670103082000AFE00";
	bad[i++] = "DEADBEEF";
	/* trailing bytes after 53 */
	bad[i++] = cat(good, "00", NULL);
	/* two certificates */
	bad[i++] = tlv(0x53, cat(tlv(0x70, hx(der, len)),
				 tlv(0x70, hx(der, len)), "710100FE00", NULL));
	/* no certificate */
	bad[i++] = "5305710100FE00";
	/* says gzip, is not */
	bad[i++] = tlv(0x53, cat(tlv(0x70, hx(der, len)), "710101FE00", NULL));
	/* not a certificate */
	bad[i++] = "530A70053003020100710100";
	/* CertInfo of two bytes */
	bad[i++] =
	    tlv(0x53, cat(tlv(0x70, hx(der, len)), "71020000FE00", NULL));
	/* indefinite length */
	bad[i++] = "53807003300100710100FE000000";
	/* a length of four gigabytes */
	bad[i++] = "5384FFFFFFFF70";
	/* empty 70 */
	bad[i++] = "53067000710100FE00";
	/* a certificate cut short inside 70 */
	bad[i++] =
	    tlv(0x53, cat(tlv(0x70, hx(der, len - 10)), "710100FE00", NULL));
	ck_assert_uint_eq(i, sizeof(bad) / sizeof(bad[0]));

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *conts[4] = {bad[i], NULL, NULL, NULL};

		rig_start(&r, 0);
		bind_steps(&r.s, NULL, NULL, conts);
		step(&r.s, VERIFY_STATUS, "63C3");
		rig_card(&r);
		ck_assert_msg(kyso_driver_piv.bind(r.card, r.tok) == CKR_OK,
			      "case %zu", i);
		script_done(r.card);
		ck_assert_msg(r.tok->nobjs == 0 && r.tok->nkeys == 0,
			      "case %zu added an object", i);
		rig_done(&r);
	}
}
END_TEST

START_TEST(bind_takes_the_serial_from_the_fasc_n_when_the_guid_is_zero)
{
	static const char *none[4];
	struct rig r;

	rig_start(&r, 0);
	bind_steps(&r.s, chuid(fascn_hex, "00000000000000000000000000000000"),
		   NULL, none);
	step(&r.s, VERIFY_STATUS, "63C3");
	rig_card(&r);
	ck_assert_int_eq(kyso_driver_piv.bind(r.card, r.tok), CKR_OK);
	script_done(r.card);
	ck_assert_str_eq(r.tok->serial, "108421c84210c3eb");
	rig_done(&r);
}
END_TEST

START_TEST(bind_cuts_a_long_common_name_at_a_character_boundary)
{
	const char *conts[4] = {NULL};
	struct rig r;
	uint8_t *der;
	size_t len;

	/* 31 ASCII characters, then a two-byte one that does not fit */
	der =
	    der_cert(rsa_key, "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDE\xc3\xa9", &len);
	conts[0] = container(der, len, 0);
	rig_start(&r, 0);
	bind_steps(&r.s, NULL, NULL, conts);
	step(&r.s, VERIFY_STATUS, "63C3");
	rig_card(&r);
	ck_assert_int_eq(kyso_driver_piv.bind(r.card, r.tok), CKR_OK);
	ck_assert_str_eq(r.tok->label, "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDE");
	rig_done(&r);
}
END_TEST

START_TEST(bind_notes_a_locked_pin)
{
	static const char *none[4];
	struct rig r;

	rig_start(&r, 0);
	bind_steps(&r.s, NULL, NULL, none);
	step(&r.s, VERIFY_STATUS, "6983");
	rig_card(&r);
	ck_assert_int_eq(kyso_driver_piv.bind(r.card, r.tok), CKR_OK);
	ck_assert_int_eq(r.tok->user_tries, 0);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(bind_survives_a_card_without_a_pin_status)
{
	static const char *none[4];
	struct rig r;

	rig_start(&r, 0);
	bind_steps(&r.s, NULL, NULL, none);
	step(&r.s, VERIFY_STATUS, "6A86");
	rig_card(&r);
	ck_assert_int_eq(kyso_driver_piv.bind(r.card, r.tok), CKR_OK);
	ck_assert_int_eq(r.tok->user_tries, -1);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(bind_fails_and_frees_its_state_when_the_card_stops_answering)
{
	struct rig r;

	rig_start(&r, 0);
	step_get(&r.s, 0x5FC102, "", "6A82");
	rig_card(&r);
	ck_assert_int_ne(kyso_driver_piv.bind(r.card, r.tok), CKR_OK);
	ck_assert_ptr_null(r.card->drvdata);
	rig_done(&r);
}
END_TEST

/* Four RSA-2048 certificates of about 800 bytes each. */
static unsigned long bind_four(int ext)
{
	const char *conts[4];
	struct rig r;
	uint8_t *der;
	size_t len, i;
	unsigned long n;

	der = der_cert(rsa_key, "Four certificates", &len);
	for (i = 0; i < 4; i++)
		conts[i] = container(der, len, 0);
	rig_start(&r, ext);
	bind_steps(&r.s, chuid(fascn_hex, guid_hex), NULL, conts);
	step(&r.s, VERIFY_STATUS, "63C3");
	rig_card(&r);
	ck_assert_int_eq(kyso_driver_piv.bind(r.card, r.tok), CKR_OK);
	script_done(r.card);
	ck_assert_uint_eq(r.tok->nkeys, 4);
	n = (unsigned long)r.card->apdus;
	ck_assert_uint_eq(n, r.s.n);
	rig_done(&r);
	return n;
}

START_TEST(bind_of_four_certificates_takes_seven_apdus_with_extended_length)
{
	ck_assert_uint_eq(bind_four(1), 7);
}
END_TEST

START_TEST(bind_of_four_certificates_without_extended_length_fetches_pieces)
{
	size_t len;
	unsigned long pieces;

	der_cert(rsa_key, "Four certificates", &len);
	/* each container answer: 256 bytes a piece */
	pieces = (unsigned long)((len + 4 + 4 + 5 + 255) / 256);
	ck_assert_uint_eq(bind_four(0), 3 + 4 * pieces);
}
END_TEST

/* --- PIN -------------------------------------------------------------------
 */

static void pin_rig(struct rig *r, const char *cmd, const char *resp)
{
	rig_start(r, 0);
	if (cmd != NULL)
		step(&r->s, cmd, resp);
	rig_card(r);
}

START_TEST(login_sends_the_pin_padded_with_ff)
{
	struct rig r;
	int tries = 99;

	pin_rig(&r, "00 20 00 80 08 31 32 33 34 35 36 FF FF", "9000");
	ck_assert_int_eq(kyso_driver_piv.login(r.card, CKU_USER,
					       (const uint8_t *)"123456", 6,
					       &tries),
			 CKR_OK);
	ck_assert_int_eq(tries, -1);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(a_wrong_pin_is_sent_once_and_reports_the_tries_left)
{
	struct rig r;
	int tries = 99;

	pin_rig(&r, "00 20 00 80 08 31 32 33 34 35 37 38 FF", "63C2");
	ck_assert_int_eq(kyso_driver_piv.login(r.card, CKU_USER,
					       (const uint8_t *)"1234578", 7,
					       &tries),
			 CKR_PIN_INCORRECT);
	ck_assert_int_eq(tries, 2);
	ck_assert_uint_eq(r.card->apdus, 1);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(a_locked_pin_reports_no_tries_left)
{
	struct rig r;
	int tries = 99;

	pin_rig(&r, "00 20 00 80 08 31 32 33 34 35 36 37 38", "6983");
	ck_assert_int_eq(kyso_driver_piv.login(r.card, CKU_USER,
					       (const uint8_t *)"12345678", 8,
					       &tries),
			 CKR_PIN_LOCKED);
	ck_assert_int_eq(tries, 0);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(a_pin_of_nine_characters_is_refused_without_talking_to_the_card)
{
	struct rig r;
	int tries = 99;

	pin_rig(&r, NULL, NULL);
	ck_assert_int_eq(kyso_driver_piv.login(r.card, CKU_USER,
					       (const uint8_t *)"123456789", 9,
					       &tries),
			 CKR_PIN_LEN_RANGE);
	ck_assert_int_eq(kyso_driver_piv.login(r.card, CKU_USER,
					       (const uint8_t *)"", 0, &tries),
			 CKR_PIN_LEN_RANGE);
	ck_assert_int_eq(kyso_driver_piv.login(r.card, CKU_CONTEXT_SPECIFIC,
					       (const uint8_t *)"123456789", 9,
					       &tries),
			 CKR_PIN_LEN_RANGE);
	ck_assert_uint_eq(r.card->apdus, 0);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(a_pin_the_card_refuses_by_format_is_invalid)
{
	struct rig r;
	int tries = 99;

	pin_rig(&r, "00 20 00 80 08 31 32 33 34 61 62 FF FF", "6A80");
	ck_assert_int_eq(kyso_driver_piv.login(r.card, CKU_USER,
					       (const uint8_t *)"1234ab", 6,
					       &tries),
			 CKR_PIN_INVALID);
	ck_assert_int_eq(tries, -1);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(context_specific_login_sends_the_same_verify)
{
	struct rig r;
	int tries;

	pin_rig(&r, "00 20 00 80 08 31 32 33 34 35 36 FF FF", "9000");
	ck_assert_int_eq(kyso_driver_piv.login(r.card, CKU_CONTEXT_SPECIFIC,
					       (const uint8_t *)"123456", 6,
					       &tries),
			 CKR_OK);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(pin_status_asks_without_spending_a_try)
{
	struct rig r;
	int tries = 99;

	rig_start(&r, 0);
	step(&r.s, VERIFY_STATUS, "63C3");
	step(&r.s, VERIFY_STATUS, "9000");
	step(&r.s, VERIFY_STATUS, "6983");
	rig_card(&r);
	ck_assert_int_eq(kyso_driver_piv.pin_status(r.card, CKU_USER, &tries),
			 CKR_OK);
	ck_assert_int_eq(tries, 3);
	ck_assert_int_eq(kyso_driver_piv.pin_status(r.card, CKU_USER, &tries),
			 CKR_OK);
	ck_assert_int_eq(tries, -1);
	ck_assert_int_eq(kyso_driver_piv.pin_status(r.card, CKU_USER, &tries),
			 CKR_PIN_LOCKED);
	ck_assert_int_eq(tries, 0);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(change_pin_sends_old_and_new_padded)
{
	struct rig r;
	int tries = 99;

	rig_start(&r, 0);
	step(&r.s,
	     "00 24 00 80 10 31 32 33 34 35 36 FF FF 36 35 34 33 32 31 30 FF",
	     "9000");
	step(&r.s,
	     "00 24 00 81 10 31 32 33 34 35 36 37 38 38 37 36 35 34 33 32 31",
	     "63C1");
	rig_card(&r);
	ck_assert_int_eq(kyso_driver_piv.change_pin(
			     r.card, CKU_USER, (const uint8_t *)"123456", 6,
			     (const uint8_t *)"6543210", 7, &tries),
			 CKR_OK);
	ck_assert_int_eq(kyso_driver_piv.change_pin(
			     r.card, CKU_SO, (const uint8_t *)"12345678", 8,
			     (const uint8_t *)"87654321", 8, &tries),
			 CKR_PIN_INCORRECT);
	ck_assert_int_eq(tries, 1);
	/* too long: nothing sent */
	ck_assert_int_eq(kyso_driver_piv.change_pin(
			     r.card, CKU_USER, (const uint8_t *)"123456", 6,
			     (const uint8_t *)"123456789", 9, &tries),
			 CKR_PIN_LEN_RANGE);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(puk_login_sends_nothing_and_unblock_uses_it_once)
{
	struct rig r;
	int tries = 99;

	pin_rig(
	    &r,
	    "00 2C 00 80 10 31 32 33 34 35 36 37 38 36 35 34 33 32 31 FF FF",
	    "9000");
	ck_assert_int_eq(kyso_driver_piv.login(r.card, CKU_SO,
					       (const uint8_t *)"12345678", 8,
					       &tries),
			 CKR_OK);
	ck_assert_uint_eq(r.card->apdus, 0);
	ck_assert_int_eq(kyso_driver_piv.unblock(
			     r.card, (const uint8_t *)"654321", 6, &tries),
			 CKR_OK);
	/* the PUK went with that one use */
	ck_assert_int_eq(kyso_driver_piv.unblock(
			     r.card, (const uint8_t *)"654321", 6, &tries),
			 CKR_USER_NOT_LOGGED_IN);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(a_wrong_puk_reports_its_tries_and_is_not_sent_again)
{
	struct rig r;
	int tries = 99;

	pin_rig(
	    &r,
	    "00 2C 00 80 10 31 31 31 31 31 31 31 31 32 32 32 32 32 32 FF FF",
	    "63C1");
	ck_assert_int_eq(kyso_driver_piv.login(r.card, CKU_SO,
					       (const uint8_t *)"11111111", 8,
					       &tries),
			 CKR_OK);
	ck_assert_int_eq(kyso_driver_piv.unblock(
			     r.card, (const uint8_t *)"222222", 6, &tries),
			 CKR_PIN_INCORRECT);
	ck_assert_int_eq(tries, 1);
	ck_assert_int_eq(kyso_driver_piv.unblock(
			     r.card, (const uint8_t *)"222222", 6, &tries),
			 CKR_USER_NOT_LOGGED_IN);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(unblock_without_a_puk_is_refused)
{
	struct rig r;
	int tries;

	pin_rig(&r, NULL, NULL);
	ck_assert_int_eq(kyso_driver_piv.unblock(
			     r.card, (const uint8_t *)"654321", 6, &tries),
			 CKR_USER_NOT_LOGGED_IN);
	ck_assert_uint_eq(r.card->apdus, 0);
	rig_done(&r);
}
END_TEST

START_TEST(logout_resets_the_pin_status_and_forgets_the_puk)
{
	struct rig r;
	int tries;

	pin_rig(&r, "00 20 FF 80", "9000");
	ck_assert_int_eq(kyso_driver_piv.login(r.card, CKU_SO,
					       (const uint8_t *)"12345678", 8,
					       &tries),
			 CKR_OK);
	ck_assert_int_eq(kyso_driver_piv.logout(r.card), CKR_OK);
	ck_assert_int_eq(kyso_driver_piv.unblock(
			     r.card, (const uint8_t *)"654321", 6, &tries),
			 CKR_USER_NOT_LOGGED_IN);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

/* --- management key: a small card emulator ---------------------------------
 */

/* Answers GENERAL AUTHENTICATE on 9B as a PIV card would, and every other
 * command from a script, like kyso_script_card. */
struct emu {
	const EVP_CIPHER *cipher;
	uint8_t key[32];
	uint8_t alg;
	size_t bs;
	int lie;    /* answer our challenge wrongly */
	int reject; /* refuse the witness with 6982 */
	uint8_t witness[16];
	uint8_t cmd1[64], cmd2[64];
	size_t cmd1len, cmd2len;
	struct kyso_script_step *steps;
	size_t n, i;
	int mismatch;
};

static size_t emu_crypt(struct emu *e, int enc, const uint8_t *in, uint8_t *out)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0;

	ck_assert(EVP_CipherInit_ex(x, e->cipher, NULL, e->key, NULL, enc));
	EVP_CIPHER_CTX_set_padding(x, 0);
	ck_assert(EVP_CipherUpdate(x, out, &l1, in, (int)e->bs));
	ck_assert(EVP_CipherFinal_ex(x, out + l1, &l2));
	EVP_CIPHER_CTX_free(x);
	return (size_t)(l1 + l2);
}

static CK_RV emu_transmit(struct kyso_card *c, const uint8_t *cmd, size_t len,
			  uint8_t *resp, size_t *resplen)
{
	struct emu *e = c->priv;
	size_t bs = e->bs, n = 0;
	uint8_t want[2048];
	long wl;

	if (len >= 5 && cmd[1] == 0x87 && cmd[3] == 0x9B) {
		if (cmd[2] != e->alg) {
			memcpy(resp, "\x6A\x80", 2);
			*resplen = 2;
			return CKR_OK;
		}
		if (len == 10 && memcmp(cmd + 5, "\x7C\x02\x80\x00", 4) == 0) {
			memcpy(e->cmd1, cmd, len);
			e->cmd1len = len;
			RAND_bytes(e->witness, (int)bs);
			resp[n++] = 0x7C;
			resp[n++] = (uint8_t)(bs + 2);
			resp[n++] = 0x80;
			resp[n++] = (uint8_t)bs;
			n += emu_crypt(e, 1, e->witness, resp + n);
		} else {
			uint8_t ch[16];

			ck_assert_uint_le(len, sizeof(e->cmd2));
			memcpy(e->cmd2, cmd, len);
			e->cmd2len = len;
			if (e->reject || len != 5 + 6 + 2 * bs + 1 ||
			    memcmp(cmd + 5 + 4, e->witness, bs) != 0) {
				memcpy(resp, "\x69\x82", 2);
				*resplen = 2;
				return CKR_OK;
			}
			memcpy(ch, cmd + 5 + 4 + bs + 2, bs);
			resp[n++] = 0x7C;
			resp[n++] = (uint8_t)(bs + 2);
			resp[n++] = 0x82;
			resp[n++] = (uint8_t)bs;
			n += emu_crypt(e, 1, ch, resp + n);
			if (e->lie)
				resp[n - 1] ^= 1;
		}
		resp[n++] = 0x90;
		resp[n++] = 0x00;
		*resplen = n;
		return CKR_OK;
	}
	if (e->i >= e->n) {
		e->mismatch = 1;
		return CKR_DEVICE_ERROR;
	}
	wl = kyso_unhex(e->steps[e->i].cmd, want, sizeof(want));
	if (strcmp(e->steps[e->i].cmd, "*") != 0 &&
	    (wl < 0 || (size_t)wl != len || memcmp(want, cmd, len) != 0)) {
		e->mismatch = 1;
		return CKR_DEVICE_ERROR;
	}
	wl = kyso_unhex(e->steps[e->i].resp, resp, KYSO_MAX_RAPDU);
	ck_assert_int_ge(wl, 2);
	*resplen = (size_t)wl;
	e->i++;
	return CKR_OK;
}

static CK_RV emu_nop(struct kyso_card *c)
{
	(void)c;
	return CKR_OK;
}

static void emu_release(struct kyso_card *c)
{
	(void)c; /* the emulator lives on the test's stack */
}

static const struct kyso_card_ops emu_ops = {emu_transmit, emu_nop, emu_nop,
					     emu_release};

static const uint8_t default_3des[24] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4,
					 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8};
static const char *default_3des_hex =
    "010203040506070801020304050607080102030405060708";

static struct kyso_card *emu_card(struct emu *e, const struct script *s)
{
	struct kyso_card *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	if (e->cipher == NULL) {
		e->cipher = EVP_des_ede3_ecb();
		memcpy(e->key, default_3des, 24);
		e->alg = 0x03;
		e->bs = 8;
	}
	if (s != NULL) {
		e->steps = s->v;
		e->n = s->n;
	}
	c->ops = &emu_ops;
	c->priv = e;
	memcpy(c->atr, atr_short, sizeof(atr_short));
	c->atrlen = sizeof(atr_short);
	ck_assert_int_eq(kyso_card_begin(c), CKR_OK);
	return c;
}

static void emu_done(struct emu *e, struct kyso_card *c)
{
	ck_assert_int_eq(e->mismatch, 0);
	ck_assert_uint_eq(e->i, e->n);
	kyso_driver_piv.unbind(c);
	kyso_card_end(c);
	kyso_card_free(c);
}

static CK_RV so_login(struct kyso_card *c, const char *cred)
{
	int tries = 99;
	CK_RV rv = kyso_driver_piv.login(c, CKU_SO, (const uint8_t *)cred,
					 strlen(cred), &tries);

	ck_assert_int_eq(tries, -1);
	return rv;
}

START_TEST(management_key_login_proves_the_default_3des_key_both_ways)
{
	struct emu e = {0};
	struct kyso_card *c = emu_card(&e, NULL);

	ck_assert_int_eq(so_login(c, default_3des_hex), CKR_OK);
	ck_assert_uint_eq(c->apdus, 2);
	/* witness request, exactly */
	ck_assert_uint_eq(e.cmd1len, 10);
	ck_assert_mem_eq(e.cmd1, "\x00\x87\x03\x9B\x04\x7C\x02\x80\x00\x00",
			 10);
	/* 7C 14 { 80 08 witness, 81 08 challenge }, Le */
	ck_assert_uint_eq(e.cmd2len, 5 + 22 + 1);
	ck_assert_mem_eq(e.cmd2, "\x00\x87\x03\x9B\x16\x7C\x14\x80\x08", 9);
	ck_assert_mem_eq(e.cmd2 + 9, e.witness, 8);
	ck_assert_mem_eq(e.cmd2 + 17, "\x81\x08", 2);
	emu_done(&e, c);
}
END_TEST

START_TEST(management_key_login_takes_an_aes_key_with_its_prefix)
{
	struct emu e = {0};
	struct kyso_card *c;

	e.cipher = EVP_aes_128_ecb();
	memset(e.key, 0x42, 16);
	e.alg = 0x08;
	e.bs = 16;
	c = emu_card(&e, NULL);
	ck_assert_int_eq(so_login(c, "AES128:42424242424242424242424242424242"),
			 CKR_OK);
	ck_assert_uint_eq(e.cmd1[2], 0x08);
	ck_assert_uint_eq(e.cmd2[4], 4 + 2 * 16 + 2);
	emu_done(&e, c);
}
END_TEST

START_TEST(a_card_that_answers_our_challenge_wrongly_is_not_trusted)
{
	struct emu e = {0};
	struct kyso_card *c;
	struct kyso_keygen req = {0};
	struct kyso_pubkey pub = {0};

	e.lie = 1;
	c = emu_card(&e, NULL);
	ck_assert_int_eq(so_login(c, default_3des_hex), CKR_DEVICE_ERROR);
	req.type = CKK_EC;
	req.bits = 256;
	ck_assert_int_eq(kyso_driver_piv.generate(c, NULL, &req, &pub),
			 CKR_USER_NOT_LOGGED_IN);
	ck_assert_uint_eq(c->apdus, 2);
	emu_done(&e, c);
}
END_TEST

START_TEST(a_card_that_refuses_our_witness_means_a_wrong_key)
{
	struct emu e = {0};
	struct kyso_card *c;

	e.reject = 1;
	c = emu_card(&e, NULL);
	ck_assert_int_eq(so_login(c, default_3des_hex), CKR_PIN_INCORRECT);
	ck_assert_uint_eq(c->apdus, 2);
	emu_done(&e, c);
}
END_TEST

START_TEST(a_key_of_another_algorithm_is_refused_by_the_card_once)
{
	struct emu e = {0};
	struct kyso_card *c = emu_card(&e, NULL);

	/* the card holds 3DES; AES-192 asked: 6A80 to the first step */
	ck_assert_int_eq(so_login(c, cat("aes192:", default_3des_hex, NULL)),
			 CKR_PIN_INCORRECT);
	ck_assert_uint_eq(c->apdus, 1);
	emu_done(&e, c);
}
END_TEST

START_TEST(malformed_management_keys_are_refused_without_talking_to_the_card)
{
	struct emu e = {0};
	struct kyso_card *c = emu_card(&e, NULL);

	ck_assert_int_eq(
	    so_login(c, "0102030405060708010203040506070801020304"),
	    CKR_PIN_LEN_RANGE);
	ck_assert_int_eq(
	    so_login(c, "0102030405060708010203040506070801020304050607XY"),
	    CKR_PIN_INVALID);
	ck_assert_int_eq(so_login(c, cat("aes128:", default_3des_hex, NULL)),
			 CKR_PIN_LEN_RANGE);
	ck_assert_int_eq(so_login(c, "3des:0102"), CKR_PIN_LEN_RANGE);
	ck_assert_uint_eq(c->apdus, 0);
	emu_done(&e, c);
}
END_TEST

/* --- sign, decrypt ---------------------------------------------------------
 */

static struct kyso_key rsa2048_9a(void)
{
	struct kyso_key k;

	memset(&k, 0, sizeof(k));
	k.type = CKK_RSA;
	k.bits = 2048;
	k.ref = 0x9A;
	k.id[0] = 1;
	k.idlen = 1;
	k.can_sign = k.can_decrypt = 1;
	return k;
}

static void pattern(uint8_t *p, size_t n, uint8_t seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

START_TEST(rsa_2048_sign_sends_one_extended_apdu)
{
	struct kyso_key k = rsa2048_9a();
	uint8_t in[256], sig[256], out[300];
	size_t outlen = sizeof(out);
	struct rig r;

	pattern(in, sizeof(in), 0x11);
	in[0] = 0x00;
	in[1] = 0x01;
	pattern(sig, sizeof(sig), 0x5A);
	rig_start(&r, 1);
	step(&r.s,
	     cat("00 87 07 9A 00 01 0A 7C 82 01 06 82 00 81 82 01 00",
		 hx(in, 256), "00 00", NULL),
	     cat("7C 82 01 04 82 82 01 00", hx(sig, 256), "9000", NULL));
	rig_card(&r);
	ck_assert_int_eq(
	    kyso_driver_piv.sign(r.card, &k, in, 256, out, &outlen), CKR_OK);
	ck_assert_uint_eq(outlen, 256);
	ck_assert_mem_eq(out, sig, 256);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(rsa_2048_sign_chains_without_extended_length)
{
	struct kyso_key k = rsa2048_9a();
	uint8_t in[256], sig[256], data[266], rsp[264], out[256];
	size_t outlen = sizeof(out);
	struct rig r;

	pattern(in, sizeof(in), 0x22);
	pattern(sig, sizeof(sig), 0x33);
	memcpy(data, "\x7C\x82\x01\x06\x82\x00\x81\x82\x01\x00", 10);
	memcpy(data + 10, in, 256);
	memcpy(rsp, "\x7C\x82\x01\x04\x82\x82\x01\x00", 8);
	memcpy(rsp + 8, sig, 256);
	rig_start(&r, 0);
	step(&r.s, cat("10 87 07 9A FF", hx(data, 255), NULL), "9000");
	step(&r.s, cat("00 87 07 9A 0B", hx(data + 255, 11), "00", NULL),
	     cat(hx(rsp, 256), "6108", NULL));
	step(&r.s, "00 C0 00 00 08", cat(hx(rsp + 256, 8), "9000", NULL));
	rig_card(&r);
	ck_assert_int_eq(
	    kyso_driver_piv.sign(r.card, &k, in, 256, out, &outlen), CKR_OK);
	ck_assert_mem_eq(out, sig, 256);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(ec_p256_sign_turns_the_der_signature_into_r_and_s)
{
	struct kyso_key k;
	uint8_t hash[32], der[80], raw[64], out[64];
	const BIGNUM *br, *bs;
	size_t outlen = sizeof(out), dlen = sizeof(der);
	EVP_PKEY_CTX *pc;
	ECDSA_SIG *es;
	const unsigned char *dp;
	struct rig r;

	pattern(hash, sizeof(hash), 0x44);
	pc = EVP_PKEY_CTX_new(ec_key, NULL);
	ck_assert_int_eq(EVP_PKEY_sign_init(pc), 1);
	ck_assert_int_eq(EVP_PKEY_sign(pc, der, &dlen, hash, 32), 1);
	EVP_PKEY_CTX_free(pc);
	dp = der;
	es = d2i_ECDSA_SIG(NULL, &dp, (long)dlen);
	ck_assert_ptr_nonnull(es);
	ECDSA_SIG_get0(es, &br, &bs);
	BN_bn2binpad(br, raw, 32);
	BN_bn2binpad(bs, raw + 32, 32);
	ECDSA_SIG_free(es);

	memset(&k, 0, sizeof(k));
	k.type = CKK_EC;
	k.bits = 256;
	k.ref = 0x9C;
	rig_start(&r, 0);
	step(&r.s,
	     cat("00 87 11 9C 26 7C 24 82 00 81 20", hx(hash, 32), "00", NULL),
	     cat(tlv(0x7C, tlv(0x82, hx(der, dlen))), "9000", NULL));
	rig_card(&r);
	ck_assert_int_eq(
	    kyso_driver_piv.sign(r.card, &k, hash, 32, out, &outlen), CKR_OK);
	ck_assert_uint_eq(outlen, 64);
	ck_assert_mem_eq(out, raw, 64);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(sign_rejects_malformed_answers)
{
	struct kyso_key k = rsa2048_9a();
	uint8_t in[256], sig[257], out[256];
	const char *s256, *bad[9];
	struct rig r;
	size_t i, outlen;

	pattern(in, sizeof(in), 0x01);
	pattern(sig, sizeof(sig), 0x7F);
	s256 = hx(sig, 256);
	i = 0;
	/* truncated: 7C says 260, 100 bytes follow */
	bad[i++] = cat("7C 82 01 04 82 82 01 00", hx(sig, 100), NULL);
	/* one byte longer than the modulus */
	bad[i++] = cat("7C 82 01 05 82 82 01 01", hx(sig, 257), NULL);
	/* trailing byte */
	bad[i++] = cat("7C 82 01 04 82 82 01 00", s256, "00", NULL);
	/* a response tag other than 82 */
	bad[i++] = cat("7C 82 01 04 81 82 01 00", s256, NULL);
	/* another template */
	bad[i++] = cat("7D 82 01 04 82 82 01 00", s256, NULL);
	/* empty */
	bad[i++] = "7C 02 82 00";
	bad[i++] = "7C 00";
	bad[i++] = "";
	/* 82 then junk inside 7C */
	bad[i++] = cat("7C 82 01 06 82 82 01 00", s256, "FF00", NULL);
	ck_assert_uint_eq(i, sizeof(bad) / sizeof(bad[0]));

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rig_start(&r, 1);
		step(&r.s, "*", cat(bad[i], "9000", NULL));
		rig_card(&r);
		outlen = sizeof(out);
		ck_assert_msg(kyso_driver_piv.sign(r.card, &k, in, 256, out,
						   &outlen) == CKR_DEVICE_ERROR,
			      "case %zu", i);
		rig_done(&r);
	}
}
END_TEST

START_TEST(ec_sign_rejects_a_signature_that_is_not_der)
{
	struct kyso_key k;
	uint8_t hash[32], out[64];
	size_t outlen = sizeof(out);
	struct rig r;

	memset(&k, 0, sizeof(k));
	k.type = CKK_EC;
	k.bits = 256;
	k.ref = 0x9A;
	pattern(hash, sizeof(hash), 3);
	rig_start(&r, 0);
	step(&r.s, "*", "7C 06 82 04 30 02 02 00 9000");
	rig_card(&r);
	ck_assert_int_eq(
	    kyso_driver_piv.sign(r.card, &k, hash, 32, out, &outlen),
	    CKR_DEVICE_ERROR);
	rig_done(&r);
}
END_TEST

START_TEST(sign_before_login_reports_user_not_logged_in)
{
	struct kyso_key k = rsa2048_9a();
	uint8_t in[256], out[256];
	size_t outlen = sizeof(out);
	struct rig r;

	pattern(in, sizeof(in), 9);
	rig_start(&r, 1);
	step(&r.s, "*", "6982");
	rig_card(&r);
	ck_assert_int_eq(
	    kyso_driver_piv.sign(r.card, &k, in, 256, out, &outlen),
	    CKR_USER_NOT_LOGGED_IN);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

START_TEST(a_short_rsa_result_is_left_padded_to_the_modulus)
{
	struct kyso_key k = rsa2048_9a();
	uint8_t in[256], sig[256], out[256];
	size_t outlen = sizeof(out);
	struct rig r;

	pattern(in, sizeof(in), 9);
	pattern(sig, sizeof(sig), 0x10);
	sig[0] = 0;
	rig_start(&r, 1);
	step(&r.s, "*",
	     cat("7C 82 01 02 82 81 FF", hx(sig + 1, 255), "9000", NULL));
	rig_card(&r);
	ck_assert_int_eq(
	    kyso_driver_piv.sign(r.card, &k, in, 256, out, &outlen), CKR_OK);
	ck_assert_mem_eq(out, sig, 256);
	rig_done(&r);
}
END_TEST

START_TEST(decrypt_returns_a_modulus_sized_block)
{
	struct kyso_key k = rsa2048_9a();
	uint8_t in[256], plain[256], out[256];
	size_t outlen = sizeof(out);
	struct rig r;

	pattern(in, sizeof(in), 0x61);
	pattern(plain, sizeof(plain), 0x02);
	plain[0] = 0;
	plain[1] = 2;
	rig_start(&r, 1);
	step(&r.s,
	     cat("00 87 07 9A 00 01 0A 7C 82 01 06 82 00 81 82 01 00",
		 hx(in, 256), "00 00", NULL),
	     cat("7C 82 01 04 82 82 01 00", hx(plain, 256), "9000", NULL));
	rig_card(&r);
	ck_assert_int_eq(
	    kyso_driver_piv.decrypt(r.card, &k, in, 256, out, &outlen), CKR_OK);
	ck_assert_uint_eq(outlen, 256);
	ck_assert_mem_eq(out, plain, 256);
	k.type = CKK_EC;
	k.bits = 256;
	ck_assert_int_eq(
	    kyso_driver_piv.decrypt(r.card, &k, in, 32, out, &outlen),
	    CKR_KEY_TYPE_INCONSISTENT);
	script_done(r.card);
	rig_done(&r);
}
END_TEST

/* --- generate, write, delete ---------------------------------------------- */

START_TEST(generate_needs_the_management_key)
{
	struct kyso_keygen req = {0};
	struct kyso_pubkey pub = {0};
	struct rig r;

	pin_rig(&r, NULL, NULL);
	req.type = CKK_RSA;
	req.bits = 2048;
	ck_assert_int_eq(kyso_driver_piv.generate(r.card, r.tok, &req, &pub),
			 CKR_USER_NOT_LOGGED_IN);
	ck_assert_uint_eq(r.card->apdus, 0);
	rig_done(&r);
}
END_TEST

START_TEST(generate_rsa_2048_in_9a_returns_the_card_public_key)
{
	struct kyso_keygen req = {0};
	struct kyso_pubkey pub = {0};
	struct script s = {0};
	struct emu e = {0};
	struct kyso_card *c;
	BIGNUM *bn = NULL;
	uint8_t n[256];

	ck_assert_int_eq(EVP_PKEY_get_bn_param(rsa_key, "n", &bn), 1);
	BN_bn2binpad(bn, n, 256);
	BN_free(bn);
	step_long(&s, "00 47 00 9A 05 AC 03 80 01 07 00",
		  tlv(0x7F49, cat(tlv(0x81, hx(n, 256)), "8203010001", NULL)),
		  "9000");
	ck_assert_uint_eq(s.n, 2); /* 270 bytes: 256, then 61 0E */
	c = emu_card(&e, &s);
	ck_assert_int_eq(so_login(c, default_3des_hex), CKR_OK);
	req.type = CKK_RSA;
	req.bits = 2048;
	ck_assert_int_eq(kyso_driver_piv.generate(c, NULL, &req, &pub), CKR_OK);
	ck_assert_uint_eq(req.ref, 0x9A);
	ck_assert_uint_eq(req.idlen, 1);
	ck_assert_uint_eq(req.id[0], 0x01);
	ck_assert_str_eq(req.label, "PIV AUTH key");
	ck_assert_uint_eq(pub.type, CKK_RSA);
	ck_assert_uint_eq(pub.bits, 2048);
	ck_assert_uint_eq(pub.nlen, 256);
	ck_assert_mem_eq(pub.n, n, 256);
	ck_assert_uint_eq(pub.elen, 3);
	ck_assert_mem_eq(pub.e, "\x01\x00\x01", 3);
	kyso_pubkey_clear(&pub);
	emu_done(&e, c);
	free(s.v);
}
END_TEST

START_TEST(generate_p256_in_9c_takes_the_slot_label)
{
	struct kyso_keygen req = {0};
	struct kyso_pubkey pub = {0};
	struct script s = {0};
	struct emu e = {0};
	struct kyso_card *c;
	uint8_t point[65];
	size_t plen = 0;

	/* a real point: the driver's crypto checks it is on the curve */
	ck_assert_int_eq(
	    EVP_PKEY_get_octet_string_param(ec_key, "encoded-pub-key", point,
					    sizeof(point), &plen),
	    1);
	ck_assert_uint_eq(plen, 65);
	step(&s, "00 47 00 9C 05 AC 03 80 01 11 00",
	     cat(tlv(0x7F49, tlv(0x86, hx(point, 65))), "9000", NULL));
	c = emu_card(&e, &s);
	ck_assert_int_eq(so_login(c, default_3des_hex), CKR_OK);
	req.type = CKK_EC;
	req.bits = 256;
	req.ref = 0x9C;
	strcpy(req.label, "my signing key");
	ck_assert_int_eq(kyso_driver_piv.generate(c, NULL, &req, &pub), CKR_OK);
	ck_assert_uint_eq(req.id[0], 0x02);
	/* A PIV card cannot store a label: the slot's label is the one
	 * every later insertion shows, so it is the one used now. */
	ck_assert_str_eq(req.label, "SIGN key");
	ck_assert_uint_eq(pub.type, CKK_EC);
	ck_assert_uint_eq(pub.bits, 256);
	ck_assert_uint_eq(pub.pointlen, 65);
	ck_assert_mem_eq(pub.point, point, 65);
	kyso_pubkey_clear(&pub);
	emu_done(&e, c);
	free(s.v);
}
END_TEST

START_TEST(generate_rejects_a_malformed_public_key)
{
	static const char *const bad[] = {
	    "7F4906860404010203", /* point too short */
	    "7F4906810101820103", /* RSA answer to EC */
	    "7F49058601048601",	  /* two points, cut */
	    "7F48438641",	  /* wrong template */
	};
	uint8_t point[65];
	size_t i;

	pattern(point, sizeof(point), 0x31);
	point[0] = 0x04;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]) + 2; i++) {
		struct kyso_keygen req = {0};
		struct kyso_pubkey pub = {0};
		struct script s = {0};
		struct emu e = {0};
		struct kyso_card *c;
		const char *answer;

		if (i < sizeof(bad) / sizeof(bad[0]))
			answer = bad[i];
		else if (i == sizeof(bad) / sizeof(bad[0]))
			/* compressed-point marker */
			answer =
			    tlv(0x7F49,
				tlv(0x86, cat("02", hx(point + 1, 64), NULL)));
		else
			/* a well-formed point, then trailing bytes */
			answer = cat(tlv(0x7F49, tlv(0x86, hx(point, 65))),
				     "00", NULL);
		step(&s, "*", cat(answer, "9000", NULL));
		c = emu_card(&e, &s);
		ck_assert_int_eq(so_login(c, default_3des_hex), CKR_OK);
		req.type = CKK_EC;
		req.bits = 256;
		ck_assert_msg(kyso_driver_piv.generate(c, NULL, &req, &pub) ==
				  CKR_DEVICE_ERROR,
			      "case %zu", i);
		ck_assert(!kyso_pubkey_present(&pub));
		emu_done(&e, c);
		free(s.v);
	}
}
END_TEST

START_TEST(write_cert_puts_the_container_with_certinfo_and_lrc)
{
	static const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x05};
	struct script s = {0};
	struct emu e = {0};
	struct kyso_card *c;
	struct kyso_token *tok = new_token();
	uint32_t ref = 0;

	step(&s,
	     "00 DB 3F FF 13 5C 03 5F C1 0A 53 0C 70 05 3003020105 "
	     "71 01 00 FE 00",
	     "9000");
	c = emu_card(&e, &s);
	ck_assert_int_eq(kyso_driver_piv.write_cert(c, tok,
						    (const uint8_t *)"\x02", 1,
						    der, sizeof(der), &ref),
			 CKR_USER_NOT_LOGGED_IN);
	ck_assert_int_eq(so_login(c, default_3des_hex), CKR_OK);
	ck_assert_int_eq(kyso_driver_piv.write_cert(c, tok,
						    (const uint8_t *)"\x02", 1,
						    der, sizeof(der), &ref),
			 CKR_OK);
	ck_assert_uint_eq(ref, 0x5FC10A);
	/* an id no slot has */
	ck_assert_int_eq(kyso_driver_piv.write_cert(c, tok,
						    (const uint8_t *)"\x0A", 1,
						    der, sizeof(der), &ref),
			 CKR_ATTRIBUTE_VALUE_INVALID);
	emu_done(&e, c);
	kyso_token_free(tok);
	free(s.v);
}
END_TEST

START_TEST(write_cert_of_a_real_certificate_chains_without_extended_length)
{
	struct script s = {0};
	struct emu e = {0};
	struct kyso_card *c;
	struct kyso_token *tok = new_token();
	const char *body, *data;
	uint8_t *der;
	size_t len, n, off;
	uint32_t ref = 0;

	der = der_cert(rsa_key, "Chained", &len);
	body = cat(tlv(0x70, hx(der, len)), "710100FE00", NULL);
	data = cat("5C035FC105", tlv(0x53, body), NULL);
	n = strlen(data) / 2;
	for (off = 0; n - off > 255; off += 255)
		step(&s, cat("10DB3FFFFF", sub(data + 2 * off, 510), NULL),
		     "9000");
	step(&s, cat("00DB3FFF", fmt("%02zX", n - off), data + 2 * off, NULL),
	     "9000");
	c = emu_card(&e, &s);
	ck_assert_int_eq(so_login(c, default_3des_hex), CKR_OK);
	ck_assert_int_eq(kyso_driver_piv.write_cert(c, tok,
						    (const uint8_t *)"\x01", 1,
						    der, len, &ref),
			 CKR_OK);
	ck_assert_uint_eq(ref, 0x5FC105);
	emu_done(&e, c);
	kyso_token_free(tok);
	free(s.v);
}
END_TEST

START_TEST(delete_of_a_certificate_empties_its_container)
{
	struct kyso_object cert, priv;
	struct script s = {0};
	struct emu e = {0};
	struct kyso_card *c;

	memset(&cert, 0, sizeof(cert));
	cert.cls = CKO_CERTIFICATE;
	cert.drv_ref = 0x5FC10B;
	priv = cert;
	priv.cls = CKO_PRIVATE_KEY;
	step(&s, "00 DB 3F FF 07 5C 03 5F C1 0B 53 00", "9000");
	c = emu_card(&e, &s);
	ck_assert_int_eq(kyso_driver_piv.delete_object(c, NULL, &cert),
			 CKR_USER_NOT_LOGGED_IN);
	ck_assert_int_eq(so_login(c, default_3des_hex), CKR_OK);
	ck_assert_int_eq(kyso_driver_piv.delete_object(c, NULL, &priv),
			 CKR_ACTION_PROHIBITED);
	ck_assert_int_eq(kyso_driver_piv.delete_object(c, NULL, &cert), CKR_OK);
	emu_done(&e, c);
	free(s.v);
}
END_TEST

START_TEST(a_lost_management_key_status_reports_not_logged_in)
{
	static const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x05};
	struct script s = {0};
	struct emu e = {0};
	struct kyso_card *c;
	uint32_t ref = 0;

	/* the card was reset behind our back: 6982 */
	step(&s, "*", "6982");
	c = emu_card(&e, &s);
	ck_assert_int_eq(so_login(c, default_3des_hex), CKR_OK);
	ck_assert_int_eq(kyso_driver_piv.write_cert(c, NULL,
						    (const uint8_t *)"\x01", 1,
						    der, sizeof(der), &ref),
			 CKR_USER_NOT_LOGGED_IN);
	/* and the driver does not pretend otherwise next time */
	ck_assert_int_eq(kyso_driver_piv.write_cert(c, NULL,
						    (const uint8_t *)"\x01", 1,
						    der, sizeof(der), &ref),
			 CKR_USER_NOT_LOGGED_IN);
	emu_done(&e, c);
	free(s.v);
}
END_TEST

/* --- suite -----------------------------------------------------------------
 */

static Suite *piv_suite(void)
{
	Suite *s = suite_create("piv");
	TCase *t;

	t = tcase_create("atr");
	tcase_add_checked_fixture(t, NULL, arena_free);
	tcase_add_test(
	    t, atr_with_the_extended_length_bit_announces_extended_apdus);
	tcase_add_test(t, atr_without_the_bit_announces_short_apdus);
	tcase_add_test(t, atr_with_status_bytes_after_compact_tlv_is_read);
	tcase_add_test(t, truncated_or_odd_atrs_announce_nothing);
	suite_add_tcase(s, t);

	t = tcase_create("match");
	tcase_add_checked_fixture(t, NULL, arena_free);
	tcase_add_test(t, match_claims_a_card_that_selects_the_piv_aid);
	tcase_add_test(t, match_declines_a_card_without_the_piv_aid);
	tcase_add_test(t,
		       bind_takes_algorithm_limits_from_the_property_template);
	suite_add_tcase(s, t);

	t = tcase_create("bind");
	tcase_add_checked_fixture(t, NULL, arena_free);
	tcase_add_test(
	    t, bind_of_an_empty_card_adds_nothing_and_reads_no_retired_slot);
	tcase_add_test(
	    t, bind_adds_key_and_certificate_of_a_slot_under_one_id_and_label);
	tcase_add_test(t, bind_inflates_a_compressed_certificate);
	tcase_add_test(t, bind_gives_each_slot_its_usage);
	tcase_add_test(t,
		       bind_reads_the_retired_slots_the_key_history_announces);
	tcase_add_test(t, bind_ignores_a_key_history_that_claims_too_many_keys);
	tcase_add_test(t, bind_skips_malformed_containers);
	tcase_add_test(
	    t, bind_takes_the_serial_from_the_fasc_n_when_the_guid_is_zero);
	tcase_add_test(t, bind_cuts_a_long_common_name_at_a_character_boundary);
	tcase_add_test(t, bind_notes_a_locked_pin);
	tcase_add_test(t, bind_survives_a_card_without_a_pin_status);
	tcase_add_test(
	    t, bind_fails_and_frees_its_state_when_the_card_stops_answering);
	tcase_add_test(
	    t,
	    bind_of_four_certificates_takes_seven_apdus_with_extended_length);
	tcase_add_test(
	    t,
	    bind_of_four_certificates_without_extended_length_fetches_pieces);
	suite_add_tcase(s, t);

	t = tcase_create("pin");
	tcase_add_checked_fixture(t, NULL, arena_free);
	tcase_add_test(t, login_sends_the_pin_padded_with_ff);
	tcase_add_test(t, a_wrong_pin_is_sent_once_and_reports_the_tries_left);
	tcase_add_test(t, a_locked_pin_reports_no_tries_left);
	tcase_add_test(
	    t, a_pin_of_nine_characters_is_refused_without_talking_to_the_card);
	tcase_add_test(t, a_pin_the_card_refuses_by_format_is_invalid);
	tcase_add_test(t, context_specific_login_sends_the_same_verify);
	tcase_add_test(t, pin_status_asks_without_spending_a_try);
	tcase_add_test(t, change_pin_sends_old_and_new_padded);
	tcase_add_test(t, puk_login_sends_nothing_and_unblock_uses_it_once);
	tcase_add_test(t, a_wrong_puk_reports_its_tries_and_is_not_sent_again);
	tcase_add_test(t, unblock_without_a_puk_is_refused);
	tcase_add_test(t, logout_resets_the_pin_status_and_forgets_the_puk);
	suite_add_tcase(s, t);

	t = tcase_create("management key");
	tcase_add_checked_fixture(t, NULL, arena_free);
	tcase_add_test(
	    t, management_key_login_proves_the_default_3des_key_both_ways);
	tcase_add_test(t,
		       management_key_login_takes_an_aes_key_with_its_prefix);
	tcase_add_test(
	    t, a_card_that_answers_our_challenge_wrongly_is_not_trusted);
	tcase_add_test(t, a_card_that_refuses_our_witness_means_a_wrong_key);
	tcase_add_test(t,
		       a_key_of_another_algorithm_is_refused_by_the_card_once);
	tcase_add_test(
	    t,
	    malformed_management_keys_are_refused_without_talking_to_the_card);
	suite_add_tcase(s, t);

	t = tcase_create("private key");
	tcase_add_checked_fixture(t, NULL, arena_free);
	tcase_add_test(t, rsa_2048_sign_sends_one_extended_apdu);
	tcase_add_test(t, rsa_2048_sign_chains_without_extended_length);
	tcase_add_test(t, ec_p256_sign_turns_the_der_signature_into_r_and_s);
	tcase_add_test(t, sign_rejects_malformed_answers);
	tcase_add_test(t, ec_sign_rejects_a_signature_that_is_not_der);
	tcase_add_test(t, sign_before_login_reports_user_not_logged_in);
	tcase_add_test(t, a_short_rsa_result_is_left_padded_to_the_modulus);
	tcase_add_test(t, decrypt_returns_a_modulus_sized_block);
	suite_add_tcase(s, t);

	t = tcase_create("administration");
	tcase_add_checked_fixture(t, NULL, arena_free);
	tcase_add_test(t, generate_needs_the_management_key);
	tcase_add_test(t, generate_rsa_2048_in_9a_returns_the_card_public_key);
	tcase_add_test(t, generate_p256_in_9c_takes_the_slot_label);
	tcase_add_test(t, generate_rejects_a_malformed_public_key);
	tcase_add_test(t, write_cert_puts_the_container_with_certinfo_and_lrc);
	tcase_add_test(
	    t, write_cert_of_a_real_certificate_chains_without_extended_length);
	tcase_add_test(t, delete_of_a_certificate_empties_its_container);
	tcase_add_test(t, a_lost_management_key_status_reports_not_logged_in);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	/* Keys once, before the tests fork. */
	rsa_key = EVP_RSA_gen(2048);
	ec_key = EVP_EC_gen("P-256");
	if (rsa_key == NULL || ec_key == NULL)
		return 99;
	sr = srunner_create(piv_suite());
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	return failed == 0 ? 0 : 1;
}
