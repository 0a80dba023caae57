/* Unit tests of the bounded ASN.1 reader (iso7816/asn1.c) and the PKCS#15
 * parser library (drivers/pkcs15.c): structures as pkcs15-init writes them,
 * written out here in hex from ISO/IEC 7816-15, their every truncation,
 * and the encoders read back by the parser. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "drivers/pkcs15.h"
#include "hexs.h"
#include "iso7816/asn1.h"
#include "p15-hex.h"
#include "util/buf.h"

/* --- bytes from hex ------------------------------------------------------ */

struct bin {
	uint8_t p[8192];
	size_t n;
};

static struct bin *bin(const char *hex)
{
	static struct bin b[4];
	static int k;
	struct bin *r = &b[k++ % 4];

	r->n = unhex(hex, r->p, sizeof(r->p));
	return r;
}

static struct kyso_asn1 first(const struct bin *b)
{
	struct kyso_cur c = kyso_cur_make(b->p, b->n);
	struct kyso_asn1 t;

	ck_assert_int_eq(kyso_p15_next(&c, &t), 1);
	return t;
}

/* --- PKCS#15 objects as pkcs15-init writes them -------------------------- */

/* The application DF; the entries are p15-hex.h's. */
#define PATH_APP "3F005015"

/* --- the ASN.1 reader ---------------------------------------------------- */

START_TEST(asn1_reads_short_and_long_lengths_and_multibyte_tags)
{
	struct bin *b =
	    bin(cat("0401AA", tlv(0x04, cat(hx((uint8_t[200]){0}, 200), NULL)),
		    "5F2001BB", NULL));
	struct kyso_cur c = kyso_cur_make(b->p, b->n);
	struct kyso_asn1 t;

	ck_assert_int_eq(kyso_asn1_next(&c, &t), 1);
	ck_assert_uint_eq(t.tag, 0x04);
	ck_assert_uint_eq(t.len, 1);
	ck_assert_int_eq(kyso_asn1_next(&c, &t), 1);
	ck_assert_uint_eq(t.len, 200);
	ck_assert_uint_eq(t.rawlen, 203);
	ck_assert_int_eq(kyso_asn1_next(&c, &t), 1);
	ck_assert_uint_eq(t.tag, 0x5F20);
	ck_assert_uint_eq(t.val[0], 0xBB);
	ck_assert_int_eq(kyso_asn1_next(&c, &t), 0);
}
END_TEST

START_TEST(asn1_refuses_what_runs_past_the_span)
{
	static const char *bad[] = {
	    "04",	      /* no length */
	    "0405AABB",	      /* value past the end */
	    "048100",	      /* long form, byte missing... and zero */
	    "0480",	      /* indefinite */
	    "04850000000001", /* five length bytes */
	    "0000",	      /* end-of-contents */
	    "1F",	      /* tag continues past the end */
	    "1F818181818101", /* tag of five bytes */
	    "0484FFFFFFFF00", /* a length near 4 GiB */
	};
	struct kyso_asn1 t;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct bin *b = bin(bad[i]);
		struct kyso_cur c = kyso_cur_make(b->p, b->n);

		if (i == 2) {
			/* 04 81 00: a valid (if not minimal) empty value */
			ck_assert_int_eq(kyso_asn1_next(&c, &t), 1);
			continue;
		}
		ck_assert_msg(kyso_asn1_next(&c, &t) == -1, "case %zu", i);
		ck_assert_uint_eq(c.len, b->n); /* cursor left as it was */
	}
}
END_TEST

START_TEST(asn1_typed_getters_check_their_values)
{
	struct kyso_asn1 t;
	uint32_t v, bits;
	int bv;

	t = first(bin("020400FFFFFF"));
	ck_assert_int_eq(kyso_asn1_uint(&t, &v), 0);
	ck_assert_uint_eq(v, 0xFFFFFF);
	t = first(bin("02050000000001"));
	ck_assert_int_eq(kyso_asn1_uint(&t, &v), 0);
	ck_assert_uint_eq(v, 1);
	t = first(bin("02050100000000")); /* 33 bits */
	ck_assert_int_eq(kyso_asn1_uint(&t, &v), -1);
	t = first(bin("0201FF")); /* negative */
	ck_assert_int_eq(kyso_asn1_uint(&t, &v), -1);
	t = first(bin("0200"));
	ck_assert_int_eq(kyso_asn1_uint(&t, &v), -1);
	t = first(bin("0101FF"));
	ck_assert_int_eq(kyso_asn1_bool(&t, &bv), 0);
	ck_assert_int_eq(bv, 1);
	/* bits 2 and 9: 0x20 0x40 with 6 unused bits */
	t = first(bin("0303062040"));
	ck_assert_int_eq(kyso_asn1_bits(&t, &bits), 0);
	ck_assert_uint_eq(bits, (1u << 2) | (1u << 9));
	t = first(bin("03020880")); /* 8 unused bits */
	ck_assert_int_eq(kyso_asn1_bits(&t, &bits), -1);
	t = first(bin("030101")); /* unused bits without content */
	ck_assert_int_eq(kyso_asn1_bits(&t, &bits), -1);
}
END_TEST

START_TEST(asn1_extent_tells_when_a_file_is_read_far_enough)
{
	struct bin *b =
	    bin(cat(tlv(0x30, "0401AA"), tlv(0x30, "0401BB"), "000000", NULL));
	size_t used;

	ck_assert_int_eq(kyso_asn1_extent(b->p, 3, 0, &used), 0);
	ck_assert_int_eq(kyso_asn1_extent(b->p, 5, 0, &used), 0);
	ck_assert_uint_eq(used, 5);
	ck_assert_int_eq(kyso_asn1_extent(b->p, 10, 0, &used), 0);
	ck_assert_int_eq(kyso_asn1_extent(b->p, 11, 0, &used), 1);
	ck_assert_uint_eq(used, 10);
	ck_assert_int_eq(kyso_asn1_extent(b->p, 10, 1, &used), 1);
	ck_assert_int_eq(kyso_asn1_extent(b->p, 7, 1, &used), -1);
	ck_assert_int_eq(kyso_asn1_extent(bin("3080")->p, 2, 0, &used), -1);
}
END_TEST

/* --- paths, EF.DIR, ODF, TokenInfo -------------------------------------- */

START_TEST(relative_paths_join_the_application_and_absolute_ones_stay)
{
	struct kyso_p15_path app = {{0x3F, 0x00, 0x50, 0x15}, 4, 0, 0, 0},
			     rel = {{0x44, 0x02}, 2, 0, 0, 0},
			     abs = {{0x3F, 0x00, 0x50, 0x15, 0x31, 0x00},
				    6,
				    0,
				    0,
				    0},
			     out;

	ck_assert_int_eq(kyso_p15_path_join(&app, &rel, &out), 0);
	ck_assert_str_eq(hx(out.v, out.len), "3F0050154402");
	ck_assert_int_eq(kyso_p15_path_join(&app, &abs, &out), 0);
	ck_assert_str_eq(hx(out.v, out.len), "3F0050153100");
	app.len = 16;
	ck_assert_int_eq(kyso_p15_path_join(&app, &rel, &out), -1);
}
END_TEST

START_TEST(ef_dir_record_gives_aid_label_and_path)
{
	struct kyso_p15_app a;
	struct bin *b = bin(tlv(0x61, cat(tlv(0x4F, "A000000063504B43532D3135"),
					  tlv(0x50, utf8("ePass2003")),
					  tlv(0x51, PATH_APP), NULL)));

	ck_assert_int_eq(kyso_p15_dir_entry(b->p, b->n, &a), 0);
	ck_assert_uint_eq(a.aidlen, 12);
	ck_assert_int_eq(memcmp(a.aid, kyso_p15_aid, 12), 0);
	ck_assert_str_eq(a.label, "ePass2003");
	ck_assert_str_eq(hx(a.path.v, a.path.len), PATH_APP);
	/* an odd path, no AID, another template */
	b = bin(tlv(0x61, cat(tlv(0x4F, "A0"), tlv(0x51, "3F0050"), NULL)));
	ck_assert_int_eq(kyso_p15_dir_entry(b->p, b->n, &a), -1);
	b = bin(tlv(0x61, tlv(0x50, utf8("x"))));
	ck_assert_int_eq(kyso_p15_dir_entry(b->p, b->n, &a), -1);
	b = bin(tlv(0x62, tlv(0x4F, "A0")));
	ck_assert_int_eq(kyso_p15_dir_entry(b->p, b->n, &a), -1);
}
END_TEST

START_TEST(odf_lists_each_kind_of_directory_file)
{
	struct kyso_p15_odf odf;
	struct bin *b = bin(cat(
	    tlv(0xA8, p15_path("3F0050154401")),
	    tlv(0xA0, p15_path("3F0050154402")), tlv(0xA1, p15_path("4403")),
	    tlv(0xA4, p15_path("3F0050154404")),
	    tlv(0xA7, p15_path("3F0050154405")),
	    tlv(0xAF, p15_path("3F0050154409")), "0000000000", NULL));

	ck_assert_int_eq(kyso_p15_odf(b->p, b->n, &odf), 0);
	ck_assert_uint_eq(odf.n[KYSO_P15_AODF], 1);
	ck_assert_uint_eq(odf.n[KYSO_P15_PRKDF], 1);
	ck_assert_uint_eq(odf.n[KYSO_P15_PUKDF], 1);
	ck_assert_uint_eq(odf.n[KYSO_P15_CDF], 1);
	ck_assert_uint_eq(odf.n[KYSO_P15_DODF], 1);
	ck_assert_str_eq(
	    hx(odf.df[KYSO_P15_PUKDF][0].v, odf.df[KYSO_P15_PUKDF][0].len),
	    "4403");
	b = bin(cat(tlv(0xA8, p15_path("3F0050154401")), "0401AA", NULL));
	ck_assert_int_eq(kyso_p15_odf(b->p, b->n, &odf), -1);
	b = bin(tlv(0xA8, "3005"));
	ck_assert_int_eq(kyso_p15_odf(b->p, b->n, &odf), -1);
}
END_TEST

START_TEST(tokeninfo_gives_serial_manufacturer_label_and_flags)
{
	struct kyso_p15_tokeninfo ti;
	struct bin *b =
	    bin(cat(tlv(0x30, cat("020100", tlv(0x04, "2E6F4550001A0028"),
				  tlv(0x0C, utf8("EnterSafe")),
				  tlv(0x80, utf8("kyso")), "03020420", NULL)),
		    "0000", NULL));

	ck_assert_int_eq(kyso_p15_tokeninfo(b->p, b->n, &ti), 0);
	ck_assert_uint_eq(ti.seriallen, 8);
	ck_assert_str_eq(hx(ti.serial, 8), "2E6F4550001A0028");
	ck_assert_str_eq(ti.manufacturer, "EnterSafe");
	ck_assert_str_eq(ti.label, "kyso");
	ck_assert_uint_eq(ti.flags, KYSO_P15_TOKEN_PRN);
	/* a label with control characters is shown with '?' */
	b = bin(tlv(
	    0x30, cat("020100", "0400", tlv(0x80, "410742"), "030100", NULL)));
	ck_assert_int_eq(kyso_p15_tokeninfo(b->p, b->n, &ti), 0);
	ck_assert_str_eq(ti.label, "A?B");
	b = bin(tlv(0x30, cat("020100", "0400", NULL)));
	ck_assert_int_eq(kyso_p15_tokeninfo(b->p, b->n, &ti), -1);
}
END_TEST

/* --- directory objects --------------------------------------------------- */

START_TEST(aodf_pins_as_pkcs15_init_writes_them)
{
	struct kyso_p15_pin pin;
	struct kyso_asn1 t =
	    first(bin(p15_pin("User PIN", 1, P15_PIN_FLAGS, PATH_APP)));

	ck_assert_int_eq(kyso_p15_pin(&t, &pin), KYSO_P15_OK);
	ck_assert_str_eq(pin.c.label, "User PIN");
	ck_assert_uint_eq(pin.auth_idlen, 1);
	ck_assert_uint_eq(pin.auth_id[0], 1);
	ck_assert_uint_eq(pin.flags, KYSO_P15_PIN_LOCAL |
					 KYSO_P15_PIN_INITIALIZED |
					 KYSO_P15_PIN_NEEDS_PADDING);
	ck_assert_uint_eq(pin.type, 1);
	ck_assert_uint_eq(pin.min_len, 4);
	ck_assert_uint_eq(pin.max_len, 16);
	ck_assert_uint_eq(pin.reference, 1);
	ck_assert_int_eq(pin.pad_char, 0);
	ck_assert_str_eq(hx(pin.path.v, pin.path.len), PATH_APP);

	t = first(
	    bin(p15_pin("Security Officer PIN", 2, P15_PIN_FLAGS_SO, NULL)));
	ck_assert_int_eq(kyso_p15_pin(&t, &pin), KYSO_P15_OK);
	ck_assert(pin.flags & KYSO_P15_PIN_SO);
	ck_assert(pin.flags & KYSO_P15_PIN_UNBLOCKING);
	ck_assert_uint_eq(pin.reference, 2);

	/* a biometric template [0] is another kind, not an error */
	t = first(bin(tlv(0xA0, "3000")));
	ck_assert_int_eq(kyso_p15_pin(&t, &pin), KYSO_P15_OTHER);
}
END_TEST

START_TEST(prkdf_rsa_and_ec_keys)
{
	struct kyso_p15_key k;
	struct kyso_asn1 t = first(bin(p15_prkey(
	    0x30, "Key", "45", P15_USAGE_SIGN, "3F0050152900", 0, 2048)));

	ck_assert_int_eq(kyso_p15_prkey(&t, &k), KYSO_P15_OK);
	ck_assert_int_eq(k.type, KYSO_P15_KEY_RSA);
	ck_assert_str_eq(hx(k.id, k.idlen), "45");
	ck_assert_uint_eq(k.usage,
			  KYSO_P15_USE_SIGN | KYSO_P15_USE_NONREPUDIATION);
	ck_assert_int_eq(k.native, 1);
	ck_assert_uint_eq(k.access, 0x1D);
	ck_assert_int_eq(k.has_ref, 1);
	ck_assert_uint_eq(k.ref, 0);
	ck_assert_uint_eq(k.bits, 2048);
	ck_assert_str_eq(hx(k.path.v, k.path.len), "3F0050152900");
	ck_assert_str_eq(hx(k.c.auth_id, k.c.auth_idlen), "01");

	t = first(bin(p15_prkey(0xA0, "Key", "4601", P15_USAGE_SIGN,
				"3F0050152901", -1, 256)));
	ck_assert_int_eq(kyso_p15_prkey(&t, &k), KYSO_P15_OK);
	ck_assert_int_eq(k.type, KYSO_P15_KEY_EC);
	ck_assert_int_eq(k.has_ref, 0);
	ck_assert_uint_eq(k.bits, 256);

	/* DSA [2] and GOST [3]: other kinds */
	t = first(bin(p15_prkey(0xA2, "Key", "47", P15_USAGE_SIGN,
				"3F0050152902", 2, 1024)));
	ck_assert_int_eq(kyso_p15_prkey(&t, &k), KYSO_P15_OTHER);
	/* a private key given as a value is not one kyso can use */
	t = first(bin(tlv(
	    0x30,
	    cat(p15_coa("K", NULL), tlv(0x30, cat("040101", "03020520", NULL)),
		tlv(0xA1, tlv(0x30, cat(tlv(0xA0, "0400"), "02020400", NULL))),
		NULL))));
	ck_assert_int_eq(kyso_p15_prkey(&t, &k), KYSO_P15_OTHER);
}
END_TEST

START_TEST(cdf_certificates_by_path_and_by_value)
{
	struct kyso_p15_cert c;
	struct kyso_asn1 t = first(bin(p15_cert("Cert", "45", "3F0050153100")));

	ck_assert_int_eq(kyso_p15_cert(&t, &c), KYSO_P15_OK);
	ck_assert_str_eq(c.c.label, "Cert");
	ck_assert_str_eq(hx(c.id, c.idlen), "45");
	ck_assert_str_eq(hx(c.path.v, c.path.len), "3F0050153100");
	ck_assert_ptr_null(c.direct);

	t = first(bin(tlv(0x30, cat(p15_coa("C", NULL),
				    tlv(0x30, cat("040145", "0101FF", NULL)),
				    tlv(0xA1, tlv(0x30, tlv(0xA0, "30030201"
								  "05"))),
				    NULL))));
	ck_assert_int_eq(kyso_p15_cert(&t, &c), KYSO_P15_OK);
	ck_assert_int_eq(c.authority, 1);
	ck_assert_uint_eq(c.directlen, 5);
	ck_assert_uint_eq(c.path.len, 0);

	/* a path with index and length */
	t = first(bin(
	    tlv(0x30,
		cat(p15_coa("C", NULL), tlv(0x30, "040145"),
		    tlv(0xA1,
			tlv(0x30, tlv(0x30, cat(tlv(0x04, "3F0050153100"),
						"020110", "8002012C", NULL)))),
		    NULL))));
	ck_assert_int_eq(kyso_p15_cert(&t, &c), KYSO_P15_OK);
	ck_assert_int_eq(c.path.has_range, 1);
	ck_assert_uint_eq(c.path.index, 16);
	ck_assert_uint_eq(c.path.count, 300);
}
END_TEST

/* Every prefix of a valid object, and every single-byte change, is read
 * without a crash and never as something it is not. */
START_TEST(truncated_and_mutated_objects_never_crash)
{
	const char *objs[] = {p15_pin("User PIN", 1, P15_PIN_FLAGS, PATH_APP),
			      p15_prkey(0x30, "Key", "45", P15_USAGE_SIGN,
					"3F0050152900", 0, 2048),
			      p15_cert("Cert", "45", "3F0050153100")};
	struct kyso_p15_pin pin;
	struct kyso_p15_key k;
	struct kyso_p15_cert c;
	size_t o, cut, i;

	for (o = 0; o < 3; o++) {
		struct bin *b = bin(objs[o]);
		uint8_t copy[512];

		for (cut = 0; cut < b->n; cut++) {
			struct kyso_cur cur = kyso_cur_make(b->p, cut);
			struct kyso_asn1 t;

			/* a cut object does not even come out as one */
			ck_assert_int_ne(kyso_p15_next(&cur, &t), 1);
		}
		for (i = 0; i < b->n; i++) {
			struct kyso_cur cur;
			struct kyso_asn1 t;

			memcpy(copy, b->p, b->n);
			copy[i] ^= 0xA5;
			cur = kyso_cur_make(copy, b->n);
			if (kyso_p15_next(&cur, &t) != 1)
				continue;
			(void)kyso_p15_pin(&t, &pin);
			(void)kyso_p15_prkey(&t, &k);
			(void)kyso_p15_pubkey(&t, &k);
			(void)kyso_p15_cert(&t, &c);
		}
	}
}
END_TEST

/* --- public key values --------------------------------------------------- */

static EVP_PKEY *rsa_key, *ec_key;

static void keys_setup(void)
{
	if (rsa_key == NULL)
		rsa_key = EVP_RSA_gen(1024);
	if (ec_key == NULL)
		ec_key = EVP_EC_gen("P-256");
	ck_assert_ptr_nonnull(rsa_key);
	ck_assert_ptr_nonnull(ec_key);
}

static struct bin *spki_of(EVP_PKEY *pk)
{
	static struct bin b;
	uint8_t *der = NULL;
	int n = i2d_PUBKEY(pk, &der);

	ck_assert_int_gt(n, 0);
	memcpy(b.p, der, (size_t)n);
	b.n = (size_t)n;
	OPENSSL_free(der);
	return &b;
}

START_TEST(public_key_values_in_every_accepted_form)
{
	struct kyso_pubkey pub;
	struct bin *s;
	uint8_t raw[600];
	size_t rawlen;
	uint8_t *der = NULL;
	int n;

	keys_setup();
	memset(&pub, 0, sizeof(pub));
	s = spki_of(rsa_key);
	ck_assert_int_eq(kyso_p15_decode_pubkey(s->p, s->n, &pub), CKR_OK);
	ck_assert_uint_eq(pub.type, CKK_RSA);
	ck_assert_uint_eq(pub.bits, 1024);
	kyso_pubkey_clear(&pub);

	/* RSAPublicKey on its own */
	n = i2d_PublicKey(rsa_key, &der);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(kyso_p15_decode_pubkey(der, (size_t)n, &pub), CKR_OK);
	ck_assert_uint_eq(pub.bits, 1024);
	kyso_pubkey_clear(&pub);
	OPENSSL_free(der);

	s = spki_of(ec_key);
	ck_assert_int_eq(kyso_p15_decode_pubkey(s->p, s->n, &pub), CKR_OK);
	ck_assert_uint_eq(pub.type, CKK_EC);
	ck_assert_uint_eq(pub.bits, 256);
	ck_assert_uint_eq(pub.pointlen, 65);
	kyso_pubkey_clear(&pub);

	/* [1] SubjectPublicKeyInfo (RSAPublicKeyChoice spki) */
	raw[0] = 0xA1;
	ck_assert_uint_lt(s->n, 0x80 + 2);
	raw[1] = (uint8_t)(s->n - 2);
	memcpy(raw + 2, s->p + 2, s->n - 2);
	rawlen = s->n;
	ck_assert_int_eq(kyso_p15_decode_pubkey(raw, rawlen, &pub), CKR_OK);
	ck_assert_uint_eq(pub.type, CKK_EC);
	kyso_pubkey_clear(&pub);

	/* garbage, a point off the curve, trailing bytes */
	ck_assert_int_eq(kyso_p15_decode_pubkey(bin("3000")->p, 2, &pub),
			 CKR_DEVICE_ERROR);
	memcpy(raw, s->p, s->n);
	raw[s->n - 1] ^= 0x01;
	ck_assert_int_eq(kyso_p15_decode_pubkey(raw, s->n, &pub),
			 CKR_DEVICE_ERROR);
	memcpy(raw, s->p, s->n);
	raw[s->n] = 0x05;
	ck_assert_int_eq(kyso_p15_decode_pubkey(raw, s->n + 1, &pub),
			 CKR_DEVICE_ERROR);
}
END_TEST

/* --- encoders ------------------------------------------------------------ */

START_TEST(encoded_entries_read_back_the_same)
{
	struct kyso_buf out = KYSO_BUF_INIT;
	struct kyso_p15_key k, r;
	struct kyso_p15_cert c, rc;
	struct kyso_asn1 t;
	struct kyso_cur cur;
	struct bin *s;

	keys_setup();
	memset(&k, 0, sizeof(k));
	snprintf(k.c.label, sizeof(k.c.label), "Private Key");
	k.c.flags = 3;
	k.c.auth_id[0] = 1;
	k.c.auth_idlen = 1;
	k.type = KYSO_P15_KEY_EC;
	memset(k.id, 0xAB, 20);
	k.idlen = 20;
	k.usage = KYSO_P15_USE_SIGN | KYSO_P15_USE_NONREPUDIATION;
	k.native = 1;
	k.access = 0x1D;
	k.has_ref = 1;
	k.ref = 3;
	memcpy(k.path.v, "\x3F\x00\x50\x15\x29\x03", 6);
	k.path.len = 6;
	k.bits = 256;
	ck_assert_int_eq(kyso_p15_encode_prkey(&k, &out), 0);
	cur = kyso_cur_make(out.p, out.len);
	ck_assert_int_eq(kyso_p15_next(&cur, &t), 1);
	ck_assert_uint_eq(cur.len, 0);
	ck_assert_int_eq(kyso_p15_prkey(&t, &r), KYSO_P15_OK);
	ck_assert_str_eq(r.c.label, "Private Key");
	ck_assert_uint_eq(r.c.flags, 3);
	ck_assert_int_eq(r.type, KYSO_P15_KEY_EC);
	ck_assert_uint_eq(r.idlen, 20);
	ck_assert_uint_eq(r.usage, k.usage);
	ck_assert_uint_eq(r.access, 0x1D);
	ck_assert_uint_eq(r.ref, 3);
	ck_assert_uint_eq(r.bits, 256);
	ck_assert_str_eq(hx(r.path.v, r.path.len), "3F0050152903");

	s = spki_of(ec_key);
	k.c.flags = 2;
	k.c.auth_idlen = 0;
	k.usage = KYSO_P15_USE_VERIFY;
	k.access = 0;
	k.has_ref = 0;
	memset(&k.path, 0, sizeof(k.path)); /* by value, not by path */
	k.direct = s->p;
	k.directlen = s->n;
	kyso_buf_reset(&out);
	ck_assert_int_eq(kyso_p15_encode_pubkey(&k, &out), 0);
	cur = kyso_cur_make(out.p, out.len);
	ck_assert_int_eq(kyso_p15_next(&cur, &t), 1);
	ck_assert_int_eq(kyso_p15_pubkey(&t, &r), KYSO_P15_OK);
	ck_assert_uint_eq(r.directlen, s->n);
	ck_assert_int_eq(memcmp(r.direct, s->p, s->n), 0);

	memset(&c, 0, sizeof(c));
	snprintf(c.c.label, sizeof(c.c.label), "Certificate");
	c.c.flags = 2;
	c.id[0] = 0x45;
	c.idlen = 1;
	memcpy(c.path.v, "\x3F\x00\x50\x15\x31\x03", 6);
	c.path.len = 6;
	kyso_buf_reset(&out);
	ck_assert_int_eq(kyso_p15_encode_cert(&c, &out), 0);
	cur = kyso_cur_make(out.p, out.len);
	ck_assert_int_eq(kyso_p15_next(&cur, &t), 1);
	ck_assert_int_eq(kyso_p15_cert(&t, &rc), KYSO_P15_OK);
	ck_assert_str_eq(rc.c.label, "Certificate");
	ck_assert_str_eq(hx(rc.path.v, rc.path.len), "3F0050153103");
	kyso_buf_free(&out);
}
END_TEST

static Suite *pkcs15_suite(void)
{
	Suite *s = suite_create("pkcs15");
	TCase *t;

	t = tcase_create("asn1");
	tcase_add_checked_fixture(t, NULL, arena_free);
	tcase_add_test(t, asn1_reads_short_and_long_lengths_and_multibyte_tags);
	tcase_add_test(t, asn1_refuses_what_runs_past_the_span);
	tcase_add_test(t, asn1_typed_getters_check_their_values);
	tcase_add_test(t, asn1_extent_tells_when_a_file_is_read_far_enough);
	suite_add_tcase(s, t);

	t = tcase_create("files");
	tcase_add_checked_fixture(t, NULL, arena_free);
	tcase_add_test(
	    t, relative_paths_join_the_application_and_absolute_ones_stay);
	tcase_add_test(t, ef_dir_record_gives_aid_label_and_path);
	tcase_add_test(t, odf_lists_each_kind_of_directory_file);
	tcase_add_test(t, tokeninfo_gives_serial_manufacturer_label_and_flags);
	suite_add_tcase(s, t);

	t = tcase_create("objects");
	tcase_add_checked_fixture(t, NULL, arena_free);
	tcase_add_test(t, aodf_pins_as_pkcs15_init_writes_them);
	tcase_add_test(t, prkdf_rsa_and_ec_keys);
	tcase_add_test(t, cdf_certificates_by_path_and_by_value);
	tcase_add_test(t, truncated_and_mutated_objects_never_crash);
	tcase_add_test(t, public_key_values_in_every_accepted_form);
	tcase_add_test(t, encoded_entries_read_back_the_same);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(pkcs15_suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
