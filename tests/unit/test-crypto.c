/* src/crypto/ against OpenSSL used directly: whatever kyso encodes, OpenSSL
 * must accept, and whatever OpenSSL produces, kyso must decode; plus
 * known-answer vectors and malformed input for every parser. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <zlib.h>

#include "crypto/crypto.h"

/* --- fixture: keys made once, before the tests fork ---------------------- */

static EVP_PKEY *rsa1024, *rsa2048, *rsa1025, *rsa1030;
static EVP_PKEY *ec256, *ec384, *ec521;

static const CK_MECHANISM_TYPE hashes[] = {CKM_SHA_1, CKM_SHA224, CKM_SHA256,
					   CKM_SHA384, CKM_SHA512};
#define NHASHES (sizeof(hashes) / sizeof(hashes[0]))

static const EVP_MD *md_of(CK_MECHANISM_TYPE h)
{
	switch (h) {
	case CKM_SHA_1:
		return EVP_sha1();
	case CKM_SHA224:
		return EVP_sha224();
	case CKM_SHA256:
		return EVP_sha256();
	case CKM_SHA384:
		return EVP_sha384();
	default:
		return EVP_sha512();
	}
}

static CK_RSA_PKCS_MGF_TYPE mgf_of(CK_MECHANISM_TYPE h)
{
	switch (h) {
	case CKM_SHA_1:
		return CKG_MGF1_SHA1;
	case CKM_SHA224:
		return CKG_MGF1_SHA224;
	case CKM_SHA256:
		return CKG_MGF1_SHA256;
	case CKM_SHA384:
		return CKG_MGF1_SHA384;
	default:
		return CKG_MGF1_SHA512;
	}
}

static CK_MECHANISM_TYPE rsa_pkcs_mech(CK_MECHANISM_TYPE h)
{
	switch (h) {
	case CKM_SHA_1:
		return CKM_SHA1_RSA_PKCS;
	case CKM_SHA224:
		return CKM_SHA224_RSA_PKCS;
	case CKM_SHA256:
		return CKM_SHA256_RSA_PKCS;
	case CKM_SHA384:
		return CKM_SHA384_RSA_PKCS;
	default:
		return CKM_SHA512_RSA_PKCS;
	}
}

static CK_MECHANISM_TYPE rsa_pss_mech(CK_MECHANISM_TYPE h)
{
	switch (h) {
	case CKM_SHA_1:
		return CKM_SHA1_RSA_PKCS_PSS;
	case CKM_SHA224:
		return CKM_SHA224_RSA_PKCS_PSS;
	case CKM_SHA256:
		return CKM_SHA256_RSA_PKCS_PSS;
	case CKM_SHA384:
		return CKM_SHA384_RSA_PKCS_PSS;
	default:
		return CKM_SHA512_RSA_PKCS_PSS;
	}
}

static CK_MECHANISM_TYPE ecdsa_mech(CK_MECHANISM_TYPE h)
{
	switch (h) {
	case CKM_SHA_1:
		return CKM_ECDSA_SHA1;
	case CKM_SHA224:
		return CKM_ECDSA_SHA224;
	case CKM_SHA256:
		return CKM_ECDSA_SHA256;
	case CKM_SHA384:
		return CKM_ECDSA_SHA384;
	default:
		return CKM_ECDSA_SHA512;
	}
}

static size_t unhex(const char *s, uint8_t *out)
{
	size_t n = 0;
	unsigned v;

	for (; s[0] != '\0' && s[1] != '\0'; s += 2) {
		ck_assert_int_eq(sscanf(s, "%2x", &v), 1);
		out[n++] = (uint8_t)v;
	}
	return n;
}

static const uint8_t msg[] = "Cộng hòa xã hội chủ nghĩa Việt Nam";

static size_t rsa_k(EVP_PKEY *key)
{
	return (size_t)EVP_PKEY_get_size(key);
}

static int rsa_bits(EVP_PKEY *key)
{
	return EVP_PKEY_get_bits(key);
}

/* kyso's view of an OpenSSL key. */
static void pub_of(EVP_PKEY *key, struct kyso_pubkey *pub)
{
	memset(pub, 0, sizeof(*pub));
	if (EVP_PKEY_is_a(key, "RSA")) {
		BIGNUM *n = NULL, *e = NULL;
		uint8_t nb[1024], eb[16];
		int nl, el;

		ck_assert(
		    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n));
		ck_assert(
		    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e));
		nl = BN_bn2bin(n, nb);
		el = BN_bn2bin(e, eb);
		ck_assert_uint_eq(
		    kyso_pubkey_rsa(pub, nb, (size_t)nl, eb, (size_t)el),
		    CKR_OK);
		BN_free(n);
		BN_free(e);
	} else {
		uint8_t pt[200];
		size_t len;

		ck_assert(EVP_PKEY_get_octet_string_param(
		    key, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &len));
		ck_assert_uint_eq(
		    kyso_pubkey_ec(pub, (CK_ULONG)EVP_PKEY_get_bits(key), pt,
				   len),
		    CKR_OK);
	}
}

/* The raw private operation a card does: m^d mod n. */
static void rsa_raw_private(EVP_PKEY *key, const uint8_t *in, uint8_t *out)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(key, NULL);
	size_t k = rsa_k(key), outlen = k;

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(EVP_PKEY_decrypt_init(c), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(c, RSA_NO_PADDING), 1);
	ck_assert_int_eq(EVP_PKEY_decrypt(c, out, &outlen, in, k), 1);
	ck_assert_uint_eq(outlen, k);
	EVP_PKEY_CTX_free(c);
}

static int openssl_verify_pss(EVP_PKEY *key, const EVP_MD *md,
			      const EVP_MD *mgf, int slen, const uint8_t *h,
			      size_t hlen, const uint8_t *sig, size_t siglen)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(key, NULL);
	int r;

	ck_assert_int_eq(EVP_PKEY_verify_init(c), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PSS_PADDING),
			 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_signature_md(c, md), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(c, mgf), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_pss_saltlen(c, slen), 1);
	r = EVP_PKEY_verify(c, sig, siglen, h, hlen);
	EVP_PKEY_CTX_free(c);
	return r;
}

/* Nothing kyso does may leave errors in the caller's queue, nor take the
 * caller's own errors away. */
static void host_error_push(void)
{
	ERR_clear_error();
	ERR_raise(ERR_LIB_USER, 42);
}

static void host_error_intact(void)
{
	unsigned long e = ERR_get_error();

	ck_assert_int_eq(ERR_GET_LIB(e), ERR_LIB_USER);
	ck_assert_int_eq(ERR_GET_REASON(e), 42);
	ck_assert_uint_eq(ERR_get_error(), 0);
}

/* --- digests ----------------------------------------------------------- */

START_TEST(digest_sizes_follow_the_mechanism)
{
	ck_assert_uint_eq(kyso_digest_size(CKM_SHA_1), 20);
	ck_assert_uint_eq(kyso_digest_size(CKM_SHA224), 28);
	ck_assert_uint_eq(kyso_digest_size(CKM_SHA256), 32);
	ck_assert_uint_eq(kyso_digest_size(CKM_SHA384), 48);
	ck_assert_uint_eq(kyso_digest_size(CKM_MD5), 0);
	ck_assert_uint_eq(kyso_digest_size(CKM_SHA512), 64);
}
END_TEST

START_TEST(digest_of_abc_matches_the_fips_180_vector)
{
	uint8_t h[32], want[32];
	struct kyso_digest *d;

	unhex(
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	    want);
	ck_assert_uint_eq(
	    kyso_digest_once(CKM_SHA256, (const uint8_t *)"abc", 3, h), CKR_OK);
	ck_assert_mem_eq(h, want, 32);

	ck_assert_uint_eq(kyso_digest_new(CKM_SHA256, &d), CKR_OK);
	ck_assert_uint_eq(kyso_digest_update(d, (const uint8_t *)"a", 1),
			  CKR_OK);
	ck_assert_uint_eq(kyso_digest_update(d, NULL, 0), CKR_OK);
	ck_assert_uint_eq(kyso_digest_update(d, (const uint8_t *)"bc", 2),
			  CKR_OK);
	memset(h, 0, sizeof(h));
	ck_assert_uint_eq(kyso_digest_final(d, h), CKR_OK);
	ck_assert_mem_eq(h, want, 32);
}
END_TEST

START_TEST(digest_streaming_equals_openssl_for_every_hash)
{
	size_t i, j;

	for (i = 0; i < NHASHES; i++) {
		uint8_t a[64], b[64], c[64];
		unsigned blen;
		struct kyso_digest *d;

		ck_assert_uint_eq(kyso_digest_new(hashes[i], &d), CKR_OK);
		for (j = 0; j < sizeof(msg); j += 7)
			ck_assert_uint_eq(
			    kyso_digest_update(
				d, msg + j,
				sizeof(msg) - j < 7 ? sizeof(msg) - j : 7),
			    CKR_OK);
		ck_assert_uint_eq(kyso_digest_final(d, a), CKR_OK);
		ck_assert_uint_eq(
		    kyso_digest_once(hashes[i], msg, sizeof(msg), b), CKR_OK);
		ck_assert_int_eq(EVP_Digest(msg, sizeof(msg), c, &blen,
					    md_of(hashes[i]), NULL),
				 1);
		ck_assert_uint_eq(blen, kyso_digest_size(hashes[i]));
		ck_assert_mem_eq(a, c, blen);
		ck_assert_mem_eq(b, c, blen);
	}
	ck_assert_uint_eq(
	    kyso_digest_once(CKM_SHA256, NULL, 0, (uint8_t[32]){0}), CKR_OK);
}
END_TEST

START_TEST(digest_refuses_unknown_mechanisms)
{
	struct kyso_digest *d = (void *)1;
	uint8_t h[64];

	ck_assert_uint_eq(kyso_digest_new(CKM_MD5, &d), CKR_MECHANISM_INVALID);
	ck_assert_ptr_null(d);
	ck_assert_uint_eq(kyso_digest_once(CKM_RSA_PKCS, msg, 1, h),
			  CKR_MECHANISM_INVALID);
	kyso_digest_free(NULL);
	/* An abandoned digest is freed without a final. */
	ck_assert_uint_eq(kyso_digest_new(CKM_SHA384, &d), CKR_OK);
	kyso_digest_free(d);
}
END_TEST

START_TEST(mgf_hash_maps_every_mgf1)
{
	ck_assert_uint_eq(kyso_mgf_hash(CKG_MGF1_SHA1), CKM_SHA_1);
	ck_assert_uint_eq(kyso_mgf_hash(CKG_MGF1_SHA224), CKM_SHA224);
	ck_assert_uint_eq(kyso_mgf_hash(CKG_MGF1_SHA256), CKM_SHA256);
	ck_assert_uint_eq(kyso_mgf_hash(CKG_MGF1_SHA384), CKM_SHA384);
	ck_assert_uint_eq(kyso_mgf_hash(CKG_MGF1_SHA512), CKM_SHA512);
	ck_assert_uint_eq(kyso_mgf_hash(0), CKM_VENDOR_DEFINED);
	ck_assert_uint_eq(kyso_mgf_hash(99), CKM_VENDOR_DEFINED);
}
END_TEST

/* OpenSSL builds the same DigestInfo from the algorithm OID. */
START_TEST(digestinfo_matches_openssl_encoding)
{
	size_t i;

	for (i = 0; i < NHASHES; i++) {
		const EVP_MD *md = md_of(hashes[i]);
		size_t hlen = kyso_digest_size(hashes[i]), len, need;
		uint8_t h[64], out[128], *der = NULL;
		X509_SIG *sig = X509_SIG_new();
		X509_ALGOR *alg;
		ASN1_OCTET_STRING *os;
		int dlen;

		memset(h, 0xa5, sizeof(h));
		X509_SIG_getm(sig, &alg, &os);
		ck_assert(X509_ALGOR_set0(alg, OBJ_nid2obj(EVP_MD_get_type(md)),
					  V_ASN1_NULL, NULL));
		ck_assert(ASN1_OCTET_STRING_set(os, h, (int)hlen));
		dlen = i2d_X509_SIG(sig, &der);
		ck_assert_int_gt(dlen, 0);

		ck_assert_uint_eq(
		    kyso_digestinfo(hashes[i], h, hlen, NULL, 0, &need),
		    CKR_OK);
		ck_assert_uint_eq(need, (size_t)dlen);
		ck_assert_uint_eq(
		    kyso_digestinfo(hashes[i], h, hlen, out, need - 1, &len),
		    CKR_BUFFER_TOO_SMALL);
		ck_assert_uint_eq(
		    kyso_digestinfo(hashes[i], h, hlen, out, sizeof(out), &len),
		    CKR_OK);
		ck_assert_uint_eq(len, (size_t)dlen);
		ck_assert_mem_eq(out, der, len);
		ck_assert_uint_eq(kyso_digestinfo(hashes[i], h, hlen - 1, out,
						  sizeof(out), &len),
				  CKR_DATA_LEN_RANGE);
		OPENSSL_free(der);
		X509_SIG_free(sig);
	}
	ck_assert_uint_eq(
	    kyso_digestinfo(CKM_MD5, msg, 16, NULL, 0, &(size_t){0}),
	    CKR_MECHANISM_INVALID);
}
END_TEST

/* --- RSA signing encodings ------------------------------------------------ */

START_TEST(pkcs1_padding_has_the_type_1_layout)
{
	uint8_t out[128], in[117];
	size_t i;

	memset(in, 0x33, sizeof(in));
	ck_assert_uint_eq(kyso_rsa_pad_pkcs1(in, 117, out, 128), CKR_OK);
	ck_assert_uint_eq(out[0], 0);
	ck_assert_uint_eq(out[1], 1);
	for (i = 2; i < 10; i++)
		ck_assert_uint_eq(out[i], 0xff);
	ck_assert_uint_eq(out[10], 0);
	ck_assert_mem_eq(out + 11, in, 117);
	/* Fewer than 8 bytes of FF would be left. */
	ck_assert_uint_eq(kyso_rsa_pad_pkcs1(in, 118, out, 128),
			  CKR_DATA_LEN_RANGE);
	ck_assert_uint_eq(kyso_rsa_pad_pkcs1(in, 0, out, 10),
			  CKR_DATA_LEN_RANGE);
	/* In place. */
	memcpy(out, in, 20);
	ck_assert_uint_eq(kyso_rsa_pad_pkcs1(out, 20, out, 128), CKR_OK);
	ck_assert_mem_eq(out + 108, in, 20);
	ck_assert_uint_eq(out[107], 0);
	ck_assert_uint_eq(out[106], 0xff);
}
END_TEST

static void check_pkcs1_sign(EVP_PKEY *key)
{
	size_t k = rsa_k(key), i, dilen;
	struct kyso_pubkey pub;

	pub_of(key, &pub);
	ck_assert_uint_eq(pub.bits, (CK_ULONG)rsa_bits(key));
	for (i = 0; i < NHASHES; i++) {
		uint8_t h[64], di[128], em[512], sig[512];
		size_t hlen = kyso_digest_size(hashes[i]);
		EVP_MD_CTX *m = EVP_MD_CTX_new();

		ck_assert_uint_eq(
		    kyso_digest_once(hashes[i], msg, sizeof(msg), h), CKR_OK);
		ck_assert_uint_eq(
		    kyso_digestinfo(hashes[i], h, hlen, di, sizeof(di), &dilen),
		    CKR_OK);
		ck_assert_uint_eq(kyso_rsa_pad_pkcs1(di, dilen, em, k), CKR_OK);
		rsa_raw_private(key, em, sig);

		host_error_push();
		ck_assert_uint_eq(kyso_verify(&pub, rsa_pkcs_mech(hashes[i]),
					      NULL, 0, msg, sizeof(msg), sig,
					      k),
				  CKR_OK);
		host_error_intact();
		ck_assert_uint_eq(
		    kyso_verify(&pub, CKM_RSA_PKCS, NULL, 0, di, dilen, sig, k),
		    CKR_OK);
		/* OpenSSL's ordinary hash-and-verify agrees. */
		ck_assert_int_eq(
		    EVP_DigestVerifyInit(m, NULL, md_of(hashes[i]), NULL, key),
		    1);
		ck_assert_int_eq(EVP_DigestVerify(m, sig, k, msg, sizeof(msg)),
				 1);
		EVP_MD_CTX_free(m);

		ck_assert_uint_eq(kyso_verify(&pub, rsa_pkcs_mech(hashes[i]),
					      NULL, 0, msg, sizeof(msg) - 1,
					      sig, k),
				  CKR_SIGNATURE_INVALID);
		ck_assert_uint_eq(kyso_verify(&pub, CKM_RSA_PKCS, NULL, 0, di,
					      dilen - 1, sig, k),
				  CKR_SIGNATURE_INVALID);
		ck_assert_uint_eq(kyso_verify(&pub, rsa_pkcs_mech(hashes[i]),
					      NULL, 0, msg, sizeof(msg), sig,
					      k - 1),
				  CKR_SIGNATURE_LEN_RANGE);
		sig[k / 2] ^= 1;
		ck_assert_uint_eq(kyso_verify(&pub, rsa_pkcs_mech(hashes[i]),
					      NULL, 0, msg, sizeof(msg), sig,
					      k),
				  CKR_SIGNATURE_INVALID);
	}
	kyso_pubkey_clear(&pub);
}

START_TEST(pkcs1_padding_verifies_with_kyso_and_openssl)
{
	check_pkcs1_sign(rsa1024);
	check_pkcs1_sign(rsa2048);
	check_pkcs1_sign(rsa1025);
}
END_TEST

START_TEST(rsa_x509_verifies_the_raw_operation)
{
	struct kyso_pubkey pub;
	size_t k = rsa_k(rsa2048);
	uint8_t em[256], sig[256];

	pub_of(rsa2048, &pub);
	memset(em, 0, k);
	memcpy(em + k - 40, msg, 40);
	rsa_raw_private(rsa2048, em, sig);
	/* Short data stands for the same integer with zeros in front. */
	ck_assert_uint_eq(
	    kyso_verify(&pub, CKM_RSA_X_509, NULL, 0, msg, 40, sig, k), CKR_OK);
	ck_assert_uint_eq(
	    kyso_verify(&pub, CKM_RSA_X_509, NULL, 0, em, k, sig, k), CKR_OK);
	ck_assert_uint_eq(
	    kyso_verify(&pub, CKM_RSA_X_509, NULL, 0, msg, 39, sig, k),
	    CKR_SIGNATURE_INVALID);
	ck_assert_uint_eq(
	    kyso_verify(&pub, CKM_RSA_X_509, NULL, 0, msg, 40, sig, k + 1),
	    CKR_SIGNATURE_LEN_RANGE);
	/* A "signature" not below n. */
	memset(sig, 0xff, k);
	ck_assert_uint_eq(
	    kyso_verify(&pub, CKM_RSA_X_509, NULL, 0, msg, 40, sig, k),
	    CKR_SIGNATURE_INVALID);
	kyso_pubkey_clear(&pub);
}
END_TEST

static void check_pss(EVP_PKEY *key)
{
	size_t k = rsa_k(key), modbits = (size_t)rsa_bits(key);
	size_t emlen = (modbits - 1 + 7) / 8, i, j;
	struct kyso_pubkey pub;

	pub_of(key, &pub);
	for (i = 0; i < NHASHES; i++) {
		size_t hlen = kyso_digest_size(hashes[i]);
		size_t salts[3] = {0, hlen, emlen - hlen - 2};

		for (j = 0; j < 3; j++) {
			uint8_t h[64], em[512], sig[512];
			CK_RSA_PKCS_PSS_PARAMS pp = {
			    hashes[i], mgf_of(hashes[i]), salts[j]};
			CK_RV want = CKR_OK;

			if (emlen < hlen + 2 + salts[j])
				want = CKR_MECHANISM_PARAM_INVALID;
			ck_assert_uint_eq(
			    kyso_digest_once(hashes[i], msg, sizeof(msg), h),
			    CKR_OK);
			ck_assert_uint_eq(kyso_rsa_pad_pss(hashes[i], hashes[i],
							   salts[j], h, hlen,
							   modbits, em, k),
					  want);
			if (want != CKR_OK)
				continue;
			/* emBits = modBits - 1: the top bits are clear. */
			if (modbits % 8 == 1)
				ck_assert_uint_eq(em[0], 0);
			else
				ck_assert_uint_eq(em[0] >> ((modbits - 1) % 8),
						  0);
			ck_assert_uint_eq(em[k - 1], 0xbc);
			rsa_raw_private(key, em, sig);

			ck_assert_uint_eq(kyso_verify(&pub, CKM_RSA_PKCS_PSS,
						      &pp, sizeof(pp), h, hlen,
						      sig, k),
					  CKR_OK);
			ck_assert_uint_eq(
			    kyso_verify(&pub, rsa_pss_mech(hashes[i]), &pp,
					sizeof(pp), msg, sizeof(msg), sig, k),
			    CKR_OK);
			ck_assert_int_eq(
			    openssl_verify_pss(key, md_of(hashes[i]),
					       md_of(hashes[i]), (int)salts[j],
					       h, hlen, sig, k),
			    1);
			/* The salt length is checked exactly. */
			if (salts[j] > 0) {
				pp.sLen--;
				ck_assert_uint_eq(
				    kyso_verify(&pub, CKM_RSA_PKCS_PSS, &pp,
						sizeof(pp), h, hlen, sig, k),
				    CKR_SIGNATURE_INVALID);
				pp.sLen++;
			}
			h[0] ^= 0x80;
			ck_assert_uint_eq(kyso_verify(&pub, CKM_RSA_PKCS_PSS,
						      &pp, sizeof(pp), h, hlen,
						      sig, k),
					  CKR_SIGNATURE_INVALID);
		}
	}
	kyso_pubkey_clear(&pub);
}

START_TEST(pss_padding_verifies_with_openssl_for_every_hash_and_salt)
{
	check_pss(rsa1024);
	check_pss(rsa2048);
}
END_TEST

START_TEST(pss_padding_handles_moduli_that_are_not_whole_bytes)
{
	check_pss(rsa1025); /* emLen = k - 1: a leading 00 */
	check_pss(rsa1030);
}
END_TEST

START_TEST(pss_padding_with_a_different_mgf_hash_verifies)
{
	size_t k = rsa_k(rsa2048);
	CK_RSA_PKCS_PSS_PARAMS pp = {CKM_SHA256, CKG_MGF1_SHA1, 20};
	struct kyso_pubkey pub;
	uint8_t h[32], em[256], sig[256];

	pub_of(rsa2048, &pub);
	kyso_digest_once(CKM_SHA256, msg, sizeof(msg), h);
	ck_assert_uint_eq(
	    kyso_rsa_pad_pss(CKM_SHA256, CKM_SHA_1, 20, h, 32, 2048, em, k),
	    CKR_OK);
	rsa_raw_private(rsa2048, em, sig);
	ck_assert_uint_eq(kyso_verify(&pub, CKM_SHA256_RSA_PKCS_PSS, &pp,
				      sizeof(pp), msg, sizeof(msg), sig, k),
			  CKR_OK);
	ck_assert_int_eq(openssl_verify_pss(rsa2048, EVP_sha256(), EVP_sha1(),
					    20, h, 32, sig, k),
			 1);
	pp.mgf = CKG_MGF1_SHA256;
	ck_assert_uint_eq(kyso_verify(&pub, CKM_SHA256_RSA_PKCS_PSS, &pp,
				      sizeof(pp), msg, sizeof(msg), sig, k),
			  CKR_SIGNATURE_INVALID);
	kyso_pubkey_clear(&pub);
}
END_TEST

START_TEST(pss_refuses_bad_parameters)
{
	size_t k = rsa_k(rsa2048);
	CK_RSA_PKCS_PSS_PARAMS pp = {CKM_SHA256, CKG_MGF1_SHA256, 32};
	struct kyso_pubkey pub;
	uint8_t h[32], em[256], sig[256] = {0};

	pub_of(rsa2048, &pub);
	kyso_digest_once(CKM_SHA256, msg, sizeof(msg), h);
	/* Padding: unknown hashes, a wrong hash size, k and modbits apart. */
	ck_assert_uint_eq(
	    kyso_rsa_pad_pss(CKM_MD5, CKM_SHA256, 0, h, 32, 2048, em, k),
	    CKR_MECHANISM_PARAM_INVALID);
	ck_assert_uint_eq(
	    kyso_rsa_pad_pss(CKM_SHA256, 0, 0, h, 32, 2048, em, k),
	    CKR_MECHANISM_PARAM_INVALID);
	ck_assert_uint_eq(
	    kyso_rsa_pad_pss(CKM_SHA256, CKM_SHA256, 0, h, 20, 2048, em, k),
	    CKR_DATA_LEN_RANGE);
	ck_assert_uint_eq(
	    kyso_rsa_pad_pss(CKM_SHA256, CKM_SHA256, 0, h, 32, 2048, em, k - 1),
	    CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(kyso_rsa_pad_pss(CKM_SHA256, CKM_SHA256, 256 - 32 - 1,
					   h, 32, 2048, em, k),
			  CKR_MECHANISM_PARAM_INVALID);

	/* Verification. */
	ck_assert_uint_eq(
	    kyso_verify(&pub, CKM_RSA_PKCS_PSS, NULL, 0, h, 32, sig, k),
	    CKR_MECHANISM_PARAM_INVALID);
	ck_assert_uint_eq(kyso_verify(&pub, CKM_RSA_PKCS_PSS, &pp,
				      sizeof(pp) - 1, h, 32, sig, k),
			  CKR_MECHANISM_PARAM_INVALID);
	ck_assert_uint_eq(kyso_verify(&pub, CKM_SHA384_RSA_PKCS_PSS, &pp,
				      sizeof(pp), msg, 5, sig, k),
			  CKR_MECHANISM_PARAM_INVALID);
	ck_assert_uint_eq(
	    kyso_verify(&pub, CKM_RSA_PKCS_PSS, &pp, sizeof(pp), h, 31, sig, k),
	    CKR_DATA_LEN_RANGE);
	pp.mgf = 77;
	ck_assert_uint_eq(
	    kyso_verify(&pub, CKM_RSA_PKCS_PSS, &pp, sizeof(pp), h, 32, sig, k),
	    CKR_MECHANISM_PARAM_INVALID);
	pp.mgf = CKG_MGF1_SHA256;
	pp.sLen = 256 - 32 - 1;
	ck_assert_uint_eq(
	    kyso_verify(&pub, CKM_RSA_PKCS_PSS, &pp, sizeof(pp), h, 32, sig, k),
	    CKR_MECHANISM_PARAM_INVALID);
	pp.sLen = 32;
	ck_assert_uint_eq(kyso_verify(&pub, CKM_RSA_PKCS_PSS, &pp, sizeof(pp),
				      h, 32, sig, k - 1),
			  CKR_SIGNATURE_LEN_RANGE);
	kyso_pubkey_clear(&pub);
}
END_TEST

START_TEST(pss_salt_is_random)
{
	uint8_t h[32] = {1}, a[128], b[128];

	ck_assert_uint_eq(
	    kyso_rsa_pad_pss(CKM_SHA256, CKM_SHA256, 32, h, 32, 1024, a, 128),
	    CKR_OK);
	ck_assert_uint_eq(
	    kyso_rsa_pad_pss(CKM_SHA256, CKM_SHA256, 32, h, 32, 1024, b, 128),
	    CKR_OK);
	ck_assert(memcmp(a, b, 128) != 0);
	/* Without salt the encoding is deterministic. */
	kyso_rsa_pad_pss(CKM_SHA256, CKM_SHA256, 0, h, 32, 1024, a, 128);
	kyso_rsa_pad_pss(CKM_SHA256, CKM_SHA256, 0, h, 32, 1024, b, 128);
	ck_assert_mem_eq(a, b, 128);
}
END_TEST

/* --- RSA decryption encodings -------------------------------------------- */

static size_t encrypt_with(EVP_PKEY *key, int pad, const EVP_MD *md,
			   const EVP_MD *mgf, const uint8_t *label, size_t llen,
			   const uint8_t *m, size_t mlen, uint8_t *ct)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(key, NULL);
	size_t outlen = 512;

	ck_assert_int_eq(EVP_PKEY_encrypt_init(c), 1);
	ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_padding(c, pad), 1);
	if (pad == RSA_PKCS1_OAEP_PADDING) {
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_oaep_md(c, md), 1);
		ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_mgf1_md(c, mgf), 1);
		if (llen > 0)
			ck_assert_int_eq(
			    EVP_PKEY_CTX_set0_rsa_oaep_label(
				c, OPENSSL_memdup(label, llen), (int)llen),
			    1);
	}
	ck_assert_int_eq(EVP_PKEY_encrypt(c, ct, &outlen, m, mlen), 1);
	EVP_PKEY_CTX_free(c);
	return outlen;
}

/* The raw decryption a card gives back for an OpenSSL ciphertext. */
static void raw_decrypt_of(EVP_PKEY *key, int pad, const EVP_MD *md,
			   const EVP_MD *mgf, const uint8_t *label, size_t llen,
			   const uint8_t *m, size_t mlen, uint8_t *em)
{
	uint8_t ct[512];

	ck_assert_uint_eq(
	    encrypt_with(key, pad, md, mgf, label, llen, m, mlen, ct),
	    rsa_k(key));
	rsa_raw_private(key, ct, em);
}

static void check_type2(EVP_PKEY *key)
{
	size_t k = rsa_k(key), lens[] = {0, 1, 16, k - 11}, i, outlen;
	uint8_t m[512], em[512], out[512];

	memset(m, 0x5a, sizeof(m));
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		raw_decrypt_of(key, RSA_PKCS1_PADDING, NULL, NULL, NULL, 0, m,
			       lens[i], em);
		ck_assert_uint_eq(em[0], 0);
		ck_assert_uint_eq(em[1], 2);
		outlen = sizeof(out);
		ck_assert_uint_eq(kyso_rsa_unpad_pkcs1(em, k, out, &outlen),
				  CKR_OK);
		ck_assert_uint_eq(outlen, lens[i]);
		ck_assert_mem_eq(out, m, lens[i]);
	}
}

START_TEST(pkcs1_type2_unpad_round_trips_openssl_encrypt)
{
	check_type2(rsa1024);
	check_type2(rsa2048);
}
END_TEST

static void check_oaep(EVP_PKEY *key, CK_MECHANISM_TYPE h, CK_MECHANISM_TYPE mh,
		       const char *label)
{
	size_t k = rsa_k(key), hlen = kyso_digest_size(h);
	size_t llen = label != NULL ? strlen(label) : 0, lens[3], i, outlen;
	uint8_t m[512], em[512], out[512];

	lens[0] = 0;
	lens[1] = 1;
	lens[2] = k - 2 * hlen - 2;
	for (i = 0; i < 512; i++)
		m[i] = (uint8_t)i;
	for (i = 0; i < 3; i++) {
		raw_decrypt_of(key, RSA_PKCS1_OAEP_PADDING, md_of(h), md_of(mh),
			       (const uint8_t *)label, llen, m, lens[i], em);
		outlen = sizeof(out);
		ck_assert_uint_eq(kyso_rsa_unpad_oaep(em, k, h, mh,
						      (const uint8_t *)label,
						      llen, out, &outlen),
				  CKR_OK);
		ck_assert_uint_eq(outlen, lens[i]);
		ck_assert_mem_eq(out, m, lens[i]);
	}
}

START_TEST(oaep_unpad_round_trips_openssl_encrypt)
{
	size_t i;

	for (i = 0; i < NHASHES; i++) {
		check_oaep(rsa2048, hashes[i], hashes[i], NULL);
		check_oaep(rsa2048, hashes[i], CKM_SHA_1, "nhãn");
	}
	check_oaep(rsa1024, CKM_SHA_1, CKM_SHA_1, NULL);
	check_oaep(rsa1024, CKM_SHA256, CKM_SHA256, "label");
	check_oaep(rsa1025, CKM_SHA256, CKM_SHA256, NULL);
}
END_TEST

/* Every way the padding can be wrong gives the same answer, leaves out
 * alone and leaves nothing in the error queue. */
static void expect_invalid_pkcs1(const uint8_t *em, size_t k)
{
	uint8_t out[512];
	size_t outlen = sizeof(out);

	memset(out, 0xee, sizeof(out));
	host_error_push();
	ck_assert_uint_eq(kyso_rsa_unpad_pkcs1(em, k, out, &outlen),
			  CKR_ENCRYPTED_DATA_INVALID);
	host_error_intact();
	ck_assert_uint_eq(outlen, sizeof(out));
	ck_assert_uint_eq(out[0], 0xee);
}

START_TEST(pkcs1_type2_unpad_rejects_each_corruption_the_same_way)
{
	size_t k = rsa_k(rsa2048), i;
	uint8_t m[32], good[256], em[256], out[256];
	size_t outlen;

	memset(m, 0x42, sizeof(m));
	raw_decrypt_of(rsa2048, RSA_PKCS1_PADDING, NULL, NULL, NULL, 0, m,
		       sizeof(m), good);

	memcpy(em, good, k);
	em[0] = 1; /* not below 2^(8(k-1)) */
	expect_invalid_pkcs1(em, k);
	memcpy(em, good, k);
	em[1] = 1; /* block type 1 */
	expect_invalid_pkcs1(em, k);
	em[1] = 0;
	expect_invalid_pkcs1(em, k);
	/* No zero after the padding string. */
	memcpy(em, good, k);
	for (i = 2; i < k; i++)
		if (em[i] == 0)
			em[i] = 0x17;
	expect_invalid_pkcs1(em, k);
	/* A zero within the first eight padding bytes. */
	for (i = 2; i < 10; i++) {
		memcpy(em, good, k);
		em[i] = 0;
		expect_invalid_pkcs1(em, k);
	}
	/* A zero right after those eight is still valid. */
	memcpy(em, good, k);
	em[10] = 0;
	outlen = sizeof(out);
	ck_assert_uint_eq(kyso_rsa_unpad_pkcs1(em, k, out, &outlen), CKR_OK);
	ck_assert_uint_eq(outlen, k - 11);
	/* Too short to hold any padding at all. */
	expect_invalid_pkcs1(good, 10);
}
END_TEST

static void expect_invalid_oaep(const uint8_t *em, size_t k,
				CK_MECHANISM_TYPE h, CK_MECHANISM_TYPE mh,
				const char *label)
{
	uint8_t out[512];
	size_t outlen = sizeof(out);

	memset(out, 0xee, sizeof(out));
	host_error_push();
	ck_assert_uint_eq(
	    kyso_rsa_unpad_oaep(em, k, h, mh, (const uint8_t *)label,
				label ? strlen(label) : 0, out, &outlen),
	    CKR_ENCRYPTED_DATA_INVALID);
	host_error_intact();
	ck_assert_uint_eq(outlen, sizeof(out));
	ck_assert_uint_eq(out[0], 0xee);
}

START_TEST(oaep_unpad_rejects_each_corruption_the_same_way)
{
	size_t k = rsa_k(rsa2048), i;
	uint8_t m[32], good[256], em[256];

	memset(m, 0x42, sizeof(m));
	raw_decrypt_of(rsa2048, RSA_PKCS1_OAEP_PADDING, EVP_sha256(),
		       EVP_sha256(), (const uint8_t *)"L", 1, m, sizeof(m),
		       good);

	memcpy(em, good, k);
	em[0] = 1;
	expect_invalid_oaep(em, k, CKM_SHA256, CKM_SHA256, "L");
	/* Any flipped bit in maskedSeed or maskedDB. */
	for (i = 1; i < k; i += 13) {
		memcpy(em, good, k);
		em[i] ^= 0x01;
		expect_invalid_oaep(em, k, CKM_SHA256, CKM_SHA256, "L");
	}
	expect_invalid_oaep(good, k, CKM_SHA256, CKM_SHA256, "M");
	expect_invalid_oaep(good, k, CKM_SHA256, CKM_SHA256, NULL);
	expect_invalid_oaep(good, k, CKM_SHA256, CKM_SHA_1, "L");
	expect_invalid_oaep(good, k, CKM_SHA384, CKM_SHA256, "L");

	/* With nothing in the queue before, nothing is left after. */
	ERR_clear_error();
	em[0] = 1;
	ck_assert_uint_eq(kyso_rsa_unpad_oaep(em, k, CKM_SHA256, CKM_SHA256,
					      NULL, 0, em, &(size_t){256}),
			  CKR_ENCRYPTED_DATA_INVALID);
	ck_assert_uint_eq(kyso_cert_parse(good, k, &(struct kyso_cert_info){0}),
			  CKR_DEVICE_ERROR);
	ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

START_TEST(unpad_tells_the_size_needed_when_out_is_small)
{
	size_t k = rsa_k(rsa2048), outlen;
	uint8_t m[40], em[256], out[256];

	memset(m, 0x11, sizeof(m));
	raw_decrypt_of(rsa2048, RSA_PKCS1_PADDING, NULL, NULL, NULL, 0, m, 40,
		       em);
	outlen = 39;
	ck_assert_uint_eq(kyso_rsa_unpad_pkcs1(em, k, out, &outlen),
			  CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(outlen, 40);
	outlen = 0;
	ck_assert_uint_eq(kyso_rsa_unpad_pkcs1(em, k, NULL, &outlen), CKR_OK);
	ck_assert_uint_eq(outlen, 40);
	outlen = 40;
	ck_assert_uint_eq(kyso_rsa_unpad_pkcs1(em, k, out, &outlen), CKR_OK);
	ck_assert_mem_eq(out, m, 40);

	raw_decrypt_of(rsa2048, RSA_PKCS1_OAEP_PADDING, EVP_sha1(), EVP_sha1(),
		       NULL, 0, m, 40, em);
	outlen = 1;
	ck_assert_uint_eq(kyso_rsa_unpad_oaep(em, k, CKM_SHA_1, CKM_SHA_1, NULL,
					      0, out, &outlen),
			  CKR_BUFFER_TOO_SMALL);
	ck_assert_uint_eq(outlen, 40);
	ck_assert_uint_eq(kyso_rsa_unpad_oaep(em, k, CKM_SHA_1, CKM_SHA_1, NULL,
					      0, NULL, &outlen),
			  CKR_OK);
	ck_assert_uint_eq(outlen, 40);
	/* Hashes the key is too small for, and unknown ones. */
	ck_assert_uint_eq(kyso_rsa_unpad_oaep(em, 100, CKM_SHA512, CKM_SHA512,
					      NULL, 0, out, &outlen),
			  CKR_MECHANISM_PARAM_INVALID);
	ck_assert_uint_eq(kyso_rsa_unpad_oaep(em, k, CKM_MD5, CKM_SHA_1, NULL,
					      0, out, &outlen),
			  CKR_MECHANISM_PARAM_INVALID);
}
END_TEST

/* --- ECDSA -------------------------------------------------------------- */

START_TEST(ecdsa_fit_left_pads_short_hashes)
{
	uint8_t h[64], out[66], zero[66] = {0};
	size_t i;

	for (i = 0; i < sizeof(h); i++)
		h[i] = (uint8_t)(0x80 | i);
	kyso_ecdsa_fit(h, 20, 256, out);
	ck_assert_mem_eq(out, zero, 12);
	ck_assert_mem_eq(out + 12, h, 20);
	kyso_ecdsa_fit(h, 32, 384, out);
	ck_assert_mem_eq(out, zero, 16);
	ck_assert_mem_eq(out + 16, h, 32);
	/* SHA-512 is shorter than P-521's order. */
	kyso_ecdsa_fit(h, 64, 521, out);
	ck_assert_mem_eq(out, zero, 2);
	ck_assert_mem_eq(out + 2, h, 64);
	/* Equal size: unchanged. */
	kyso_ecdsa_fit(h, 32, 256, out);
	ck_assert_mem_eq(out, h, 32);
}
END_TEST

START_TEST(ecdsa_fit_keeps_the_leftmost_bits_of_long_hashes)
{
	uint8_t h[80], out[66], want[66];
	BIGNUM *bn = BN_new();
	size_t i;

	for (i = 0; i < sizeof(h); i++)
		h[i] = (uint8_t)(0xf1 ^ (i * 37));
	kyso_ecdsa_fit(h, 64, 256, out);
	ck_assert_mem_eq(out, h, 32);
	kyso_ecdsa_fit(h, 64, 384, out);
	ck_assert_mem_eq(out, h, 48);
	/* P-521 from a 66- and an 80-byte hash: the top 521 bits, which is
	 * the first 66 bytes shifted right by 7 (and by 7 + 14*8). */
	BN_bin2bn(h, 66, bn);
	BN_rshift(bn, bn, 7);
	BN_bn2binpad(bn, want, 66);
	kyso_ecdsa_fit(h, 66, 521, out);
	ck_assert_mem_eq(out, want, 66);
	kyso_ecdsa_fit(h, 80, 521, out);
	ck_assert_mem_eq(out, want, 66);
	BN_free(bn);
}
END_TEST

/* For P-521 the fitted value is the integer, not a 528-bit string: signing
 * the 66 bytes as OpenSSL reads them gives a signature of a different
 * value, which a verifier of the hash rejects. */
START_TEST(ecdsa_fit_for_p521_is_an_integer_not_a_bit_string)
{
	uint8_t h[64], in[66], der[160];
	size_t derlen = sizeof(der);
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(ec521, NULL);

	memset(h, 0xc3, sizeof(h));
	kyso_ecdsa_fit(h, 64, 521, in);
	ck_assert_int_eq(EVP_PKEY_sign_init(c), 1);
	ck_assert_int_eq(EVP_PKEY_sign(c, der, &derlen, in, 66), 1);
	ck_assert_int_eq(EVP_PKEY_verify_init(c), 1);
	ck_assert_int_eq(EVP_PKEY_verify(c, der, derlen, in, 66), 1);
	ck_assert_int_ne(EVP_PKEY_verify(c, der, derlen, h, 64), 1);
	derlen = sizeof(der);
	ck_assert_int_eq(EVP_PKEY_sign_init(c), 1);
	ck_assert_int_eq(EVP_PKEY_sign(c, der, &derlen, in + 2, 64), 1);
	ck_assert_int_eq(EVP_PKEY_verify_init(c), 1);
	ck_assert_int_eq(EVP_PKEY_verify(c, der, derlen, h, 64), 1);
	EVP_PKEY_CTX_free(c);
	ERR_clear_error();
}
END_TEST

static EVP_PKEY *ec_of_bits(CK_ULONG bits)
{
	return bits == 256 ? ec256 : bits == 384 ? ec384 : ec521;
}

/* A card signs the fitted hash as an integer; r||s comes back. OpenSSL
 * reads its input as a bit string and truncates one longer than the order,
 * so it gets the integer without the zero bytes in front (for P-521 they
 * would make 528 bits). */
static void card_ecdsa(EVP_PKEY *key, const uint8_t *h, size_t hlen,
		       uint8_t *raw)
{
	size_t cbits = (size_t)EVP_PKEY_get_bits(key), cb = (cbits + 7) / 8;
	uint8_t in[66], der[160];
	size_t derlen = sizeof(der), skip = 0;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(key, NULL);

	kyso_ecdsa_fit(h, hlen, cbits, in);
	while ((cb - skip) * 8 > cbits && in[skip] == 0)
		skip++;
	ck_assert_int_eq(EVP_PKEY_sign_init(c), 1);
	ck_assert_int_eq(EVP_PKEY_sign(c, der, &derlen, in + skip, cb - skip),
			 1);
	EVP_PKEY_CTX_free(c);
	ck_assert_uint_eq(kyso_ecdsa_der_to_raw(der, derlen, cb, raw), CKR_OK);
}

START_TEST(ecdsa_signatures_verify_for_every_curve_and_hash)
{
	static const CK_ULONG curves[] = {256, 384, 521};
	size_t c, i;

	for (c = 0; c < 3; c++) {
		EVP_PKEY *key = ec_of_bits(curves[c]);
		size_t cb = (curves[c] + 7) / 8;
		struct kyso_pubkey pub;

		pub_of(key, &pub);
		ck_assert_uint_eq(pub.bits, curves[c]);
		for (i = 0; i < NHASHES; i++) {
			size_t hlen = kyso_digest_size(hashes[i]);
			uint8_t h[64], raw[132];
			EVP_MD_CTX *m = EVP_MD_CTX_new();
			uint8_t der[160];
			size_t derlen;

			kyso_digest_once(hashes[i], msg, sizeof(msg), h);
			card_ecdsa(key, h, hlen, raw);
			ck_assert_uint_eq(kyso_verify(&pub, CKM_ECDSA, NULL, 0,
						      h, hlen, raw, 2 * cb),
					  CKR_OK);
			ck_assert_uint_eq(
			    kyso_verify(&pub, ecdsa_mech(hashes[i]), NULL, 0,
					msg, sizeof(msg), raw, 2 * cb),
			    CKR_OK);
			/* OpenSSL agrees about the DER form. */
			ck_assert_uint_eq(
			    kyso_ecdsa_raw_to_der(raw, 2 * cb, der, sizeof(der),
						  &derlen),
			    CKR_OK);
			ck_assert_int_eq(EVP_DigestVerifyInit(m, NULL,
							      md_of(hashes[i]),
							      NULL, key),
					 1);
			ck_assert_int_eq(
			    EVP_DigestVerify(m, der, derlen, msg, sizeof(msg)),
			    1);
			EVP_MD_CTX_free(m);

			ck_assert_uint_eq(
			    kyso_verify(&pub, ecdsa_mech(hashes[i]), NULL, 0,
					msg, sizeof(msg) - 1, raw, 2 * cb),
			    CKR_SIGNATURE_INVALID);
			ck_assert_uint_eq(kyso_verify(&pub, CKM_ECDSA, NULL, 0,
						      h, hlen, raw, 2 * cb - 1),
					  CKR_SIGNATURE_LEN_RANGE);
			raw[3] ^= 4;
			ck_assert_uint_eq(kyso_verify(&pub, CKM_ECDSA, NULL, 0,
						      h, hlen, raw, 2 * cb),
					  CKR_SIGNATURE_INVALID);
			memset(raw, 0, 2 * cb);
			ck_assert_uint_eq(kyso_verify(&pub, CKM_ECDSA, NULL, 0,
						      h, hlen, raw, 2 * cb),
					  CKR_SIGNATURE_INVALID);
		}
		kyso_pubkey_clear(&pub);
	}
}
END_TEST

START_TEST(ecdsa_der_and_raw_round_trip)
{
	static const size_t sizes[] = {32, 48, 66};
	size_t i, j, len;

	for (i = 0; i < 3; i++) {
		size_t cb = sizes[i];
		uint8_t raw[132], back[132], der[160];

		for (j = 0; j < 6; j++) {
			kyso_random(raw, 2 * cb);
			/* Leading zeros and set top bits both need care in
			 * DER: a missing or extra 00. */
			if (j & 1)
				raw[0] = 0, raw[1] = 0;
			if (j & 2)
				raw[cb] |= 0x80;
			if (j & 4)
				raw[0] = 0x01;
			ck_assert_uint_eq(
			    kyso_ecdsa_raw_to_der(raw, 2 * cb, NULL, 0, &len),
			    CKR_OK);
			ck_assert_uint_eq(kyso_ecdsa_raw_to_der(
					      raw, 2 * cb, der, len - 1, &len),
					  CKR_BUFFER_TOO_SMALL);
			ck_assert_uint_eq(
			    kyso_ecdsa_raw_to_der(raw, 2 * cb, der, sizeof(der),
						  &len),
			    CKR_OK);
			ck_assert_uint_eq(
			    kyso_ecdsa_der_to_raw(der, len, cb, back), CKR_OK);
			ck_assert_mem_eq(back, raw, 2 * cb);
		}
	}
	ck_assert_uint_eq(kyso_ecdsa_raw_to_der(msg, 63, NULL, 0, &len),
			  CKR_SIGNATURE_LEN_RANGE);
}
END_TEST

static void expect_bad_der(const char *hex, size_t cb)
{
	uint8_t der[200], out[132], *exact;
	size_t n = unhex(hex, der);

	/* An exact-size copy, so that any over-read trips ASan. */
	exact = malloc(n ? n : 1);
	memcpy(exact, der, n);
	host_error_push();
	ck_assert_uint_eq(kyso_ecdsa_der_to_raw(exact, n, cb, out),
			  CKR_DEVICE_ERROR);
	host_error_intact();
	free(exact);
}

START_TEST(ecdsa_der_rejects_malformed_signatures)
{
	uint8_t der[160], raw[64], out[64];
	size_t len, i;

	expect_bad_der("30060201010201", 32); /* truncated */
	expect_bad_der("", 32);
	expect_bad_der("3006020101020101ff", 32);     /* trailing byte */
	expect_bad_der("3006020180020101", 32);	      /* negative r */
	expect_bad_der("30070202000102010100", 32);   /* non-minimal r */
	expect_bad_der("3006020100020101", 32);	      /* r = 0 */
	expect_bad_der("3003020101", 32);	      /* s missing */
	expect_bad_der("3106020101020101", 32);	      /* SET, not SEQUENCE */
	expect_bad_der("30800201010201010000", 32);   /* BER indefinite */
	expect_bad_der("308106020101020101", 32);     /* long-form length */
	expect_bad_der("3009020101020101020101", 32); /* three integers */
	/* r of 33 significant bytes for a 32-byte curve. */
	expect_bad_der("302602210101010101010101010101010101010101010101010101"
		       "010101010101010101010101020101",
		       32);
	/* A 33-byte r with a sign byte is fine: it is 32 bytes of value. */
	memset(raw, 0xff, 64);
	ck_assert_uint_eq(
	    kyso_ecdsa_raw_to_der(raw, 64, der, sizeof(der), &len), CKR_OK);
	ck_assert_uint_eq(kyso_ecdsa_der_to_raw(der, len, 32, out), CKR_OK);
	ck_assert_uint_eq(kyso_ecdsa_der_to_raw(der, len, 31, out),
			  CKR_DEVICE_ERROR);
	/* Every truncation of a good signature. */
	for (i = 0; i < len; i++) {
		uint8_t *exact = malloc(i ? i : 1);

		memcpy(exact, der, i);
		ck_assert_uint_eq(kyso_ecdsa_der_to_raw(exact, i, 32, out),
				  CKR_DEVICE_ERROR);
		free(exact);
	}
}
END_TEST

START_TEST(ec_params_bits_knows_the_named_curves)
{
	static const struct {
		int nid;
		CK_ULONG bits;
	} t[] = {{NID_X9_62_prime256v1, 256}, {NID_secp384r1, 384},
		 {NID_secp521r1, 521},	      {NID_secp256k1, 0},
		 {NID_X9_62_prime192v1, 0},   {NID_sha256, 0}};
	uint8_t buf[64], *p;
	size_t i;
	int n;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		p = buf;
		n = i2d_ASN1_OBJECT(OBJ_nid2obj(t[i].nid), &p);
		ck_assert_int_gt(n, 0);
		ck_assert_uint_eq(kyso_ec_params_bits(buf, (size_t)n),
				  t[i].bits);
		if (t[i].bits != 0) {
			ck_assert_uint_eq(
			    kyso_ec_params_bits(buf, (size_t)n - 1), 0);
			buf[n] = 0;
			ck_assert_uint_eq(
			    kyso_ec_params_bits(buf, (size_t)n + 1), 0);
		}
	}
	n = (int)unhex("06082a8648ce3d030107", buf);
	ck_assert_uint_eq(kyso_ec_params_bits(buf, (size_t)n), 256);
	/* A printable string naming the curve is not an OID. */
	ck_assert_uint_eq(
	    kyso_ec_params_bits((const uint8_t *)"\x13\x0aprime256v1", 12), 0);
	ck_assert_uint_eq(kyso_ec_params_bits(NULL, 0), 0);
}
END_TEST

/* --- public keys ---------------------------------------------------------- */

START_TEST(pubkey_rsa_strips_leading_zeros_and_counts_bits)
{
	struct kyso_pubkey k, c;
	uint8_t n[130], e[] = {0, 0, 1, 0, 1};

	memset(n, 0, sizeof(n));
	n[2] = 0x01;
	memset(n + 3, 0xab, sizeof(n) - 3);
	ck_assert_uint_eq(kyso_pubkey_rsa(&k, n, sizeof(n), e, sizeof(e)),
			  CKR_OK);
	ck_assert_uint_eq(k.type, CKK_RSA);
	ck_assert_uint_eq(k.nlen, 128);
	ck_assert_uint_eq(k.bits, 1017);
	ck_assert_uint_eq(k.elen, 3);
	ck_assert_mem_eq(k.e, e + 2, 3);

	ck_assert_uint_eq(kyso_pubkey_copy(&c, &k), CKR_OK);
	ck_assert_ptr_ne(c.n, k.n);
	ck_assert_uint_eq(c.bits, 1017);
	ck_assert_mem_eq(c.n, k.n, 128);
	kyso_pubkey_clear(&k);
	ck_assert_uint_eq(k.type, 0);
	ck_assert_ptr_null(k.n);
	kyso_pubkey_clear(&c);
	kyso_pubkey_clear(NULL);

	memset(n, 0, sizeof(n));
	ck_assert_uint_eq(kyso_pubkey_rsa(&k, n, sizeof(n), e, sizeof(e)),
			  CKR_DEVICE_ERROR);
	ck_assert_uint_eq(kyso_pubkey_rsa(&k, e, sizeof(e), n, 4),
			  CKR_DEVICE_ERROR);
}
END_TEST

START_TEST(pubkey_ec_refuses_points_off_the_curve)
{
	struct kyso_pubkey k;
	uint8_t pt[200], cpt[200];
	size_t len, clen;
	EVP_PKEY *dup;

	ck_assert(EVP_PKEY_get_octet_string_param(
	    ec256, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &len));
	ck_assert_uint_eq(len, 65);
	ck_assert_uint_eq(kyso_pubkey_ec(&k, 256, pt, len), CKR_OK);
	ck_assert_uint_eq(k.type, CKK_EC);
	ck_assert_uint_eq(k.bits, 256);
	ck_assert_uint_eq(kyso_ec_params_bits(k.params, k.paramslen), 256);
	ck_assert_mem_eq(k.point, pt, 65);
	kyso_pubkey_clear(&k);

	host_error_push();
	ck_assert_uint_eq(kyso_pubkey_ec(&k, 384, pt, len), CKR_DEVICE_ERROR);
	ck_assert_uint_eq(kyso_pubkey_ec(&k, 256, pt, len - 1),
			  CKR_DEVICE_ERROR);
	ck_assert_uint_eq(kyso_pubkey_ec(&k, 255, pt, len), CKR_KEY_SIZE_RANGE);
	pt[64] ^= 1;
	ck_assert_uint_eq(kyso_pubkey_ec(&k, 256, pt, len), CKR_DEVICE_ERROR);
	host_error_intact();

	/* Compressed points are not what PKCS#11 stores. */
	dup = EVP_PKEY_dup(ec256);
	ck_assert(EVP_PKEY_set_utf8_string_param(
	    dup, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED));
	ck_assert(EVP_PKEY_get_octet_string_param(dup, OSSL_PKEY_PARAM_PUB_KEY,
						  cpt, sizeof(cpt), &clen));
	ck_assert_uint_eq(clen, 33);
	ck_assert_uint_eq(kyso_pubkey_ec(&k, 256, cpt, clen), CKR_DEVICE_ERROR);
	EVP_PKEY_free(dup);
}
END_TEST

static void check_spki(EVP_PKEY *key)
{
	struct kyso_pubkey pub;
	uint8_t *der, *want = NULL;
	size_t len;
	int n;

	pub_of(key, &pub);
	ck_assert_uint_eq(kyso_pubkey_spki(&pub, &der, &len), CKR_OK);
	n = i2d_PUBKEY(key, &want);
	ck_assert_uint_eq(len, (size_t)n);
	ck_assert_mem_eq(der, want, len);
	free(der);
	OPENSSL_free(want);
	kyso_pubkey_clear(&pub);
}

START_TEST(pubkey_spki_matches_openssl_encoding)
{
	struct kyso_pubkey none = {0};
	uint8_t *der;
	size_t len;

	check_spki(rsa1024);
	check_spki(rsa2048);
	check_spki(rsa1025);
	check_spki(ec256);
	check_spki(ec384);
	host_error_push();
	check_spki(ec521);
	host_error_intact();
	ck_assert_uint_eq(kyso_pubkey_spki(&none, &der, &len),
			  CKR_KEY_TYPE_INCONSISTENT);
	ck_assert_ptr_null(der);
}
END_TEST

START_TEST(verify_refuses_foreign_mechanisms_and_key_types)
{
	struct kyso_pubkey rsa, ec;
	uint8_t sig[256] = {0};

	pub_of(rsa2048, &rsa);
	pub_of(ec256, &ec);
	ck_assert_uint_eq(
	    kyso_verify(&rsa, CKM_ECDSA, NULL, 0, msg, 32, sig, 64),
	    CKR_KEY_TYPE_INCONSISTENT);
	ck_assert_uint_eq(
	    kyso_verify(&ec, CKM_SHA256_RSA_PKCS, NULL, 0, msg, 32, sig, 256),
	    CKR_KEY_TYPE_INCONSISTENT);
	ck_assert_uint_eq(
	    kyso_verify(&rsa, CKM_MD5_RSA_PKCS, NULL, 0, msg, 32, sig, 256),
	    CKR_MECHANISM_INVALID);
	ck_assert_uint_eq(
	    kyso_verify(&rsa, CKM_SHA256, NULL, 0, msg, 32, sig, 256),
	    CKR_MECHANISM_INVALID);
	ck_assert_uint_eq(
	    kyso_verify(&rsa, CKM_RSA_PKCS, NULL, 0, sig, 246, sig, 256),
	    CKR_DATA_LEN_RANGE);
	ck_assert_uint_eq(
	    kyso_verify(&rsa, CKM_RSA_X_509, NULL, 0, sig, 257, sig, 256),
	    CKR_DATA_LEN_RANGE);
	host_error_push();
	ck_assert_uint_eq(
	    kyso_verify(&rsa, CKM_SHA256_RSA_PKCS, NULL, 0, msg, 32, sig, 256),
	    CKR_SIGNATURE_INVALID);
	ck_assert_uint_eq(
	    kyso_verify(&ec, CKM_ECDSA_SHA256, NULL, 0, msg, 32, sig, 64),
	    CKR_SIGNATURE_INVALID);
	host_error_intact();
	kyso_pubkey_clear(&rsa);
	kyso_pubkey_clear(&ec);
}
END_TEST

/* --- certificates -------------------------------------------------------- */

static X509 *make_cert(EVP_PKEY *key, const char *serial_hex, int64_t nb,
		       int64_t na)
{
	X509 *x = X509_new();
	X509_NAME *sub = X509_NAME_new(), *iss = X509_NAME_new();
	BIGNUM *bn = NULL;
	ASN1_INTEGER *sn;

	ck_assert(X509_set_version(x, X509_VERSION_3));
	ck_assert(BN_hex2bn(&bn, serial_hex));
	sn = BN_to_ASN1_INTEGER(bn, NULL);
	ck_assert(X509_set_serialNumber(x, sn));
	ASN1_INTEGER_free(sn);
	BN_free(bn);
	ck_assert(X509_NAME_add_entry_by_txt(
	    sub, "C", MBSTRING_UTF8, (const unsigned char *)"VN", -1, -1, 0));
	ck_assert(X509_NAME_add_entry_by_txt(
	    sub, "CN", MBSTRING_UTF8, (const unsigned char *)"Nguyễn Văn Ký",
	    -1, -1, 0));
	ck_assert(X509_NAME_add_entry_by_txt(
	    iss, "CN", MBSTRING_UTF8, (const unsigned char *)"kyso test CA", -1,
	    -1, 0));
	ck_assert(X509_set_subject_name(x, sub));
	ck_assert(X509_set_issuer_name(x, iss));
	X509_NAME_free(sub);
	X509_NAME_free(iss);
	ck_assert_ptr_nonnull(
	    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb));
	ck_assert_ptr_nonnull(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na));
	ck_assert(X509_set_pubkey(x, key));
	ck_assert_int_gt(
	    X509_sign(x, key,
		      EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256()),
	    0);
	return x;
}

static uint8_t *der_of(X509 *x, size_t *len)
{
	uint8_t *der = NULL;
	int n = i2d_X509(x, &der);

	ck_assert_int_gt(n, 0);
	*len = (size_t)n;
	return der;
}

static void check_cert(EVP_PKEY *key, const char *serial_hex)
{
	/* 2050 and later are GeneralizedTime in a certificate. */
	X509 *x = make_cert(key, serial_hex, 1700000000, 2556143999LL);
	struct kyso_cert_info ci;
	uint8_t *der, *want, *spki = NULL, *got;
	size_t len, gotlen;
	int n;

	der = der_of(x, &len);
	host_error_push();
	ck_assert_uint_eq(kyso_cert_parse(der, len, &ci), CKR_OK);
	host_error_intact();

	want = NULL;
	n = i2d_X509_NAME(X509_get_subject_name(x), &want);
	ck_assert_uint_eq(ci.subjectlen, (size_t)n);
	ck_assert_mem_eq(ci.subject, want, ci.subjectlen);
	OPENSSL_free(want);
	want = NULL;
	n = i2d_X509_NAME(X509_get_issuer_name(x), &want);
	ck_assert_uint_eq(ci.issuerlen, (size_t)n);
	ck_assert_mem_eq(ci.issuer, want, ci.issuerlen);
	OPENSSL_free(want);
	want = NULL;
	n = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &want);
	ck_assert_uint_eq(ci.seriallen, (size_t)n);
	ck_assert_mem_eq(ci.serial, want, ci.seriallen);
	ck_assert_uint_eq(ci.serial[0], 0x02);
	OPENSSL_free(want);

	ck_assert_int_eq(ci.not_before, 1700000000);
	ck_assert_int_eq(ci.not_after, 2556143999LL);

	n = i2d_PUBKEY(key, &spki);
	ck_assert_uint_eq(kyso_pubkey_spki(&ci.pub, &got, &gotlen), CKR_OK);
	ck_assert_uint_eq(gotlen, (size_t)n);
	ck_assert_mem_eq(got, spki, gotlen);
	free(got);
	OPENSSL_free(spki);

	kyso_cert_info_clear(&ci);
	ck_assert_ptr_null(ci.subject);
	OPENSSL_free(der);
	X509_free(x);
}

START_TEST(cert_parse_gives_names_serial_dates_and_key)
{
	/* A top bit set in the serial needs a 00 in its DER. */
	check_cert(rsa2048, "8A0B0C0D0E0F101112131415161718191A");
	check_cert(rsa1025, "01");
	check_cert(ec256, "7F");
	check_cert(ec384, "00FF");
	check_cert(ec521, "1234567890ABCDEF");
}
END_TEST

START_TEST(cert_parse_uncompresses_a_compressed_ec_point)
{
	EVP_PKEY *dup = EVP_PKEY_dup(ec384);
	struct kyso_pubkey want;
	struct kyso_cert_info ci;
	X509 *x;
	uint8_t *der;
	size_t len;

	pub_of(ec384, &want);
	ck_assert(EVP_PKEY_set_utf8_string_param(
	    dup, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED));
	x = make_cert(dup, "05", 0, 86400);
	der = der_of(x, &len);
	ck_assert_uint_eq(kyso_cert_parse(der, len, &ci), CKR_OK);
	ck_assert_uint_eq(ci.pub.type, CKK_EC);
	ck_assert_uint_eq(ci.pub.pointlen, 97);
	ck_assert_mem_eq(ci.pub.point, want.point, 97);
	ck_assert_int_eq(ci.not_before, 0);
	ck_assert_int_eq(ci.not_after, 86400);
	kyso_cert_info_clear(&ci);
	kyso_pubkey_clear(&want);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(dup);
}
END_TEST

START_TEST(cert_parse_leaves_unknown_key_types_empty)
{
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp256k1");
	struct kyso_cert_info ci;
	X509 *x;
	uint8_t *der;
	size_t len;

	ck_assert_ptr_nonnull(ed);
	x = make_cert(ed, "01", 1000, 2000);
	der = der_of(x, &len);
	host_error_push();
	ck_assert_uint_eq(kyso_cert_parse(der, len, &ci), CKR_OK);
	host_error_intact();
	ck_assert_uint_eq(ci.pub.type, 0);
	ck_assert_uint_gt(ci.subjectlen, 0);
	kyso_cert_info_clear(&ci);
	OPENSSL_free(der);
	X509_free(x);

	ck_assert_ptr_nonnull(k1);
	x = make_cert(k1, "02", 1000, 2000);
	der = der_of(x, &len);
	ck_assert_uint_eq(kyso_cert_parse(der, len, &ci), CKR_OK);
	ck_assert_uint_eq(ci.pub.type, 0);
	kyso_cert_info_clear(&ci);
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(k1);
}
END_TEST

START_TEST(cert_parse_rejects_every_truncation_and_trailing_data)
{
	X509 *x = make_cert(ec256, "0102", 1700000000, 1800000000);
	struct kyso_cert_info ci;
	uint8_t *der, *exact;
	size_t len, i;

	der = der_of(x, &len);
	host_error_push();
	for (i = 0; i < len; i++) {
		exact = malloc(i ? i : 1);
		memcpy(exact, der, i);
		ck_assert_uint_eq(kyso_cert_parse(exact, i, &ci),
				  CKR_DEVICE_ERROR);
		ck_assert_ptr_null(ci.subject);
		free(exact);
	}
	exact = malloc(len + 1);
	memcpy(exact, der, len);
	exact[len] = 0;
	ck_assert_uint_eq(kyso_cert_parse(exact, len + 1, &ci),
			  CKR_DEVICE_ERROR);
	/* Garbage in the middle. */
	exact[len / 2] ^= 0xff;
	exact[4] ^= 0x20;
	ck_assert_uint_eq(kyso_cert_parse(exact, len, &ci), CKR_DEVICE_ERROR);
	free(exact);
	host_error_intact();
	OPENSSL_free(der);
	X509_free(x);
}
END_TEST

static uint8_t *gzip_of(const uint8_t *p, size_t n, int gzip, size_t *outlen)
{
	z_stream zs;
	uLong cap = compressBound((uLong)n) + 64;
	uint8_t *out = malloc(cap);

	memset(&zs, 0, sizeof(zs));
	ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, gzip ? 15 + 16 : 15,
				      8, Z_DEFAULT_STRATEGY),
			 Z_OK);
	zs.next_in = (Bytef *)p;
	zs.avail_in = (uInt)n;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	ck_assert_int_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*outlen = zs.total_out;
	deflateEnd(&zs);
	return out;
}

START_TEST(inflate_restores_a_gzip_or_zlib_certificate)
{
	X509 *x = make_cert(rsa2048, "03", 1700000000, 1800000000);
	uint8_t *der, *z, *out;
	size_t len, zlen, outlen;
	struct kyso_cert_info ci;
	int gzip;

	der = der_of(x, &len);
	for (gzip = 0; gzip < 2; gzip++) {
		z = gzip_of(der, len, gzip, &zlen);
		ck_assert_uint_eq(z[0], gzip ? 0x1f : 0x78);
		ck_assert_uint_eq(kyso_inflate(z, zlen, &out, &outlen, 4096),
				  CKR_OK);
		ck_assert_uint_eq(outlen, len);
		ck_assert_mem_eq(out, der, len);
		ck_assert_uint_eq(kyso_cert_parse(out, outlen, &ci), CKR_OK);
		kyso_cert_info_clear(&ci);
		free(out);
		/* Exactly max bytes fit; one fewer does not. */
		ck_assert_uint_eq(kyso_inflate(z, zlen, &out, &outlen, len),
				  CKR_OK);
		free(out);
		ck_assert_uint_eq(kyso_inflate(z, zlen, &out, &outlen, len - 1),
				  CKR_DEVICE_ERROR);
		ck_assert_ptr_null(out);
		free(z);
	}
	OPENSSL_free(der);
	X509_free(x);
}
END_TEST

START_TEST(inflate_bounds_a_bomb_by_max)
{
	size_t big = 64 * 1024 * 1024, zlen, outlen;
	uint8_t *zeros = calloc(1, big), *z, *out = (void *)1;

	z = gzip_of(zeros, big, 1, &zlen);
	free(zeros);
	ck_assert_uint_lt(zlen, 100 * 1024);
	ck_assert_uint_eq(kyso_inflate(z, zlen, &out, &outlen, 64 * 1024),
			  CKR_DEVICE_ERROR);
	ck_assert_ptr_null(out);
	ck_assert_uint_eq(outlen, 0);
	/* max 0 means 1 MiB. */
	ck_assert_uint_eq(kyso_inflate(z, zlen, &out, &outlen, 0),
			  CKR_DEVICE_ERROR);
	free(z);
}
END_TEST

START_TEST(inflate_rejects_truncated_corrupt_and_trailing_data)
{
	uint8_t data[3000], *z, *buf, *out;
	size_t zlen, outlen, i;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * i);
	z = gzip_of(data, sizeof(data), 1, &zlen);
	for (i = 0; i < zlen; i++) {
		buf = malloc(i ? i : 1);
		memcpy(buf, z, i);
		ck_assert_uint_eq(kyso_inflate(buf, i, &out, &outlen, 8192),
				  CKR_DEVICE_ERROR);
		free(buf);
	}
	buf = malloc(zlen + 8);
	memcpy(buf, z, zlen);
	/* Zero padding after the stream is tolerated... */
	memset(buf + zlen, 0, 8);
	ck_assert_uint_eq(kyso_inflate(buf, zlen + 8, &out, &outlen, 8192),
			  CKR_OK);
	ck_assert_uint_eq(outlen, sizeof(data));
	free(out);
	/* ...anything else after it is not. */
	buf[zlen + 5] = 0x01;
	ck_assert_uint_eq(kyso_inflate(buf, zlen + 8, &out, &outlen, 8192),
			  CKR_DEVICE_ERROR);
	/* A wrong CRC-32 in the gzip trailer. */
	buf[zlen - 8] ^= 1;
	ck_assert_uint_eq(kyso_inflate(buf, zlen, &out, &outlen, 8192),
			  CKR_DEVICE_ERROR);
	buf[zlen - 8] ^= 1;
	/* Not compressed at all: a DER certificate as it is. */
	ck_assert_uint_eq(kyso_inflate((const uint8_t *)"\x30\x82\x01\x00", 4,
				       &out, &outlen, 8192),
			  CKR_DEVICE_ERROR);
	free(buf);
	free(z);
}
END_TEST

/* --- ciphers ------------------------------------------------------------ */

static void kat(enum kyso_cipher alg, const char *key_hex, const char *iv_hex,
		const char *pt_hex, const char *ct_hex)
{
	uint8_t key[32], iv[16], pt[64], ct[64], out[64];
	size_t kl = unhex(key_hex, key), n = unhex(pt_hex, pt);
	const uint8_t *ivp = NULL;

	ck_assert_uint_eq(unhex(ct_hex, ct), n);
	if (iv_hex != NULL) {
		ck_assert_uint_eq(unhex(iv_hex, iv), kyso_cipher_block(alg));
		ivp = iv;
	}
	if (ivp != NULL)
		ck_assert_uint_eq(
		    kyso_cipher_cbc(alg, key, kl, 1, ivp, pt, n, out), CKR_OK);
	else
		ck_assert_uint_eq(kyso_cipher_ecb(alg, key, kl, 1, pt, n, out),
				  CKR_OK);
	ck_assert_mem_eq(out, ct, n);
	/* Decrypt in place. */
	if (ivp != NULL)
		ck_assert_uint_eq(
		    kyso_cipher_cbc(alg, key, kl, 0, ivp, out, n, out), CKR_OK);
	else
		ck_assert_uint_eq(kyso_cipher_ecb(alg, key, kl, 0, out, n, out),
				  CKR_OK);
	ck_assert_mem_eq(out, pt, n);
}

START_TEST(aes_matches_the_fips_197_vectors)
{
	const char *pt = "00112233445566778899aabbccddeeff";

	kat(KYSO_AES, "000102030405060708090a0b0c0d0e0f", NULL, pt,
	    "69c4e0d86a7b0430d8cdb78070b4c55a");
	kat(KYSO_AES, "000102030405060708090a0b0c0d0e0f1011121314151617", NULL,
	    pt, "dda97ca4864cdfe06eaf70a0ec0d7191");
	kat(KYSO_AES,
	    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
	    NULL, pt, "8ea2b7ca516745bfeafc49904b496089");
}
END_TEST

START_TEST(aes_cbc_matches_the_sp800_38a_vector)
{
	kat(KYSO_AES, "2b7e151628aed2a6abf7158809cf4f3c",
	    "000102030405060708090a0b0c0d0e0f",
	    "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51",
	    "7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2");
}
END_TEST

/* With K1 = K2 (= K3), EDE collapses to single DES, for which FIPS 81 has
 * vectors; then two-key must equal three-key with K3 = K1. */
START_TEST(des3_matches_the_fips_81_vectors)
{
	static const char *pt =
	    "4e6f77206973207468652074696d6520666f7220616c6c20";
	uint8_t k2[16], k3[24], in[16], a[16], b[16], c[16];
	size_t i;

	kat(KYSO_DES3, "0123456789abcdef0123456789abcdef", NULL, pt,
	    "3fa40e8a984d48156a271787ab8883f9893d51ec4b563b53");
	kat(KYSO_DES3, "0123456789abcdef0123456789abcdef0123456789abcdef",
	    "1234567890abcdef", pt,
	    "e5c7cdde872bf27c43e934008c389c0f683788499a7c05f6");
	kat(KYSO_DES3, "133457799bbcdff1133457799bbcdff1", NULL,
	    "0123456789abcdef", "85e813540f0ab405");

	for (i = 0; i < 16; i++)
		k2[i] = (uint8_t)(0x10 + 7 * i);
	memcpy(k3, k2, 16);
	memcpy(k3 + 16, k2, 8);
	memset(in, 0x61, sizeof(in));
	ck_assert_uint_eq(kyso_cipher_ecb(KYSO_DES3, k2, 16, 1, in, 16, a),
			  CKR_OK);
	ck_assert_uint_eq(kyso_cipher_ecb(KYSO_DES3, k3, 24, 1, in, 16, b),
			  CKR_OK);
	ck_assert_mem_eq(a, b, 16);
	k3[20] ^= 0x40;
	ck_assert_uint_eq(kyso_cipher_ecb(KYSO_DES3, k3, 24, 1, in, 16, c),
			  CKR_OK);
	ck_assert(memcmp(a, c, 16) != 0);
}
END_TEST

START_TEST(cipher_cbc_without_iv_uses_zeros)
{
	uint8_t key[16] = {1, 2, 3}, zero[16] = {0}, in[32], a[32], b[32];

	memset(in, 0x77, sizeof(in));
	ck_assert_uint_eq(
	    kyso_cipher_cbc(KYSO_AES, key, 16, 1, NULL, in, 32, a), CKR_OK);
	ck_assert_uint_eq(
	    kyso_cipher_cbc(KYSO_AES, key, 16, 1, zero, in, 32, b), CKR_OK);
	ck_assert_mem_eq(a, b, 32);
	ck_assert_uint_eq(
	    kyso_cipher_cbc(KYSO_DES3, key, 16, 1, NULL, in, 32, a), CKR_OK);
	ck_assert_uint_eq(
	    kyso_cipher_cbc(KYSO_DES3, key, 16, 1, zero, in, 32, b), CKR_OK);
	ck_assert_mem_eq(a, b, 32);
}
END_TEST

START_TEST(cipher_refuses_partial_blocks_and_bad_keys)
{
	uint8_t key[32] = {0}, in[32] = {0}, out[32];

	ck_assert_uint_eq(kyso_cipher_block(KYSO_DES3), 8);
	ck_assert_uint_eq(kyso_cipher_block(KYSO_AES), 16);
	ck_assert_uint_eq(kyso_cipher_ecb(KYSO_AES, key, 16, 1, in, 15, out),
			  CKR_DATA_LEN_RANGE);
	ck_assert_uint_eq(
	    kyso_cipher_cbc(KYSO_DES3, key, 24, 0, NULL, in, 12, out),
	    CKR_DATA_LEN_RANGE);
	ck_assert_uint_eq(kyso_cipher_ecb(KYSO_AES, key, 20, 1, in, 16, out),
			  CKR_KEY_SIZE_RANGE);
	ck_assert_uint_eq(kyso_cipher_ecb(KYSO_DES3, key, 8, 1, in, 16, out),
			  CKR_KEY_SIZE_RANGE);
	ck_assert_uint_eq(kyso_cipher_ecb(KYSO_DES3, key, 32, 1, in, 16, out),
			  CKR_KEY_SIZE_RANGE);
	ck_assert_uint_eq(kyso_cipher_ecb(KYSO_AES, key, 32, 1, in, 0, out),
			  CKR_OK);
}
END_TEST

/* --- randomness and comparison ------------------------------------------- */

START_TEST(random_fills_the_buffer)
{
	uint8_t a[64] = {0}, b[64] = {0};

	ck_assert_uint_eq(kyso_random(a, sizeof(a)), CKR_OK);
	ck_assert_uint_eq(kyso_random(b, sizeof(b)), CKR_OK);
	ck_assert(memcmp(a, b, sizeof(a)) != 0);
	ck_assert_uint_eq(kyso_random(NULL, 0), CKR_OK);
	ck_assert_uint_eq(kyso_random(NULL, 1), CKR_ARGUMENTS_BAD);
}
END_TEST

START_TEST(ct_memcmp_tells_only_equal_or_not)
{
	uint8_t a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8];

	memcpy(b, a, 8);
	ck_assert_int_eq(kyso_ct_memcmp(a, b, 8), 0);
	b[7] = 9;
	ck_assert_int_ne(kyso_ct_memcmp(a, b, 8), 0);
	b[0] = 0;
	ck_assert_int_ne(kyso_ct_memcmp(a, b, 8), 0);
	ck_assert_int_eq(kyso_ct_memcmp(a, b, 0), 0);
}
END_TEST

/* --- runner ------------------------------------------------------------ */

static Suite *crypto_suite(void)
{
	Suite *s = suite_create("crypto");
	TCase *t;

	t = tcase_create("digest");
	tcase_add_test(t, digest_sizes_follow_the_mechanism);
	tcase_add_test(t, digest_of_abc_matches_the_fips_180_vector);
	tcase_add_test(t, digest_streaming_equals_openssl_for_every_hash);
	tcase_add_test(t, digest_refuses_unknown_mechanisms);
	tcase_add_test(t, mgf_hash_maps_every_mgf1);
	tcase_add_test(t, digestinfo_matches_openssl_encoding);
	suite_add_tcase(s, t);

	t = tcase_create("rsa");
	tcase_set_timeout(t, 600);
	tcase_add_test(t, pkcs1_padding_has_the_type_1_layout);
	tcase_add_test(t, pkcs1_padding_verifies_with_kyso_and_openssl);
	tcase_add_test(t, rsa_x509_verifies_the_raw_operation);
	tcase_add_test(
	    t, pss_padding_verifies_with_openssl_for_every_hash_and_salt);
	tcase_add_test(t, pss_padding_handles_moduli_that_are_not_whole_bytes);
	tcase_add_test(t, pss_padding_with_a_different_mgf_hash_verifies);
	tcase_add_test(t, pss_refuses_bad_parameters);
	tcase_add_test(t, pss_salt_is_random);
	tcase_add_test(t, pkcs1_type2_unpad_round_trips_openssl_encrypt);
	tcase_add_test(t, oaep_unpad_round_trips_openssl_encrypt);
	tcase_add_test(t,
		       pkcs1_type2_unpad_rejects_each_corruption_the_same_way);
	tcase_add_test(t, oaep_unpad_rejects_each_corruption_the_same_way);
	tcase_add_test(t, unpad_tells_the_size_needed_when_out_is_small);
	suite_add_tcase(s, t);

	t = tcase_create("ec");
	tcase_set_timeout(t, 600);
	tcase_add_test(t, ecdsa_fit_left_pads_short_hashes);
	tcase_add_test(t, ecdsa_fit_keeps_the_leftmost_bits_of_long_hashes);
	tcase_add_test(t, ecdsa_fit_for_p521_is_an_integer_not_a_bit_string);
	tcase_add_test(t, ecdsa_signatures_verify_for_every_curve_and_hash);
	tcase_add_test(t, ecdsa_der_and_raw_round_trip);
	tcase_add_test(t, ecdsa_der_rejects_malformed_signatures);
	tcase_add_test(t, ec_params_bits_knows_the_named_curves);
	suite_add_tcase(s, t);

	t = tcase_create("pubkey");
	tcase_set_timeout(t, 600);
	tcase_add_test(t, pubkey_rsa_strips_leading_zeros_and_counts_bits);
	tcase_add_test(t, pubkey_ec_refuses_points_off_the_curve);
	tcase_add_test(t, pubkey_spki_matches_openssl_encoding);
	tcase_add_test(t, verify_refuses_foreign_mechanisms_and_key_types);
	suite_add_tcase(s, t);

	t = tcase_create("cert");
	tcase_set_timeout(t, 600);
	tcase_add_test(t, cert_parse_gives_names_serial_dates_and_key);
	tcase_add_test(t, cert_parse_uncompresses_a_compressed_ec_point);
	tcase_add_test(t, cert_parse_leaves_unknown_key_types_empty);
	tcase_add_test(t,
		       cert_parse_rejects_every_truncation_and_trailing_data);
	tcase_add_test(t, inflate_restores_a_gzip_or_zlib_certificate);
	tcase_add_test(t, inflate_bounds_a_bomb_by_max);
	tcase_add_test(t, inflate_rejects_truncated_corrupt_and_trailing_data);
	suite_add_tcase(s, t);

	t = tcase_create("cipher");
	tcase_add_test(t, aes_matches_the_fips_197_vectors);
	tcase_add_test(t, aes_cbc_matches_the_sp800_38a_vector);
	tcase_add_test(t, des3_matches_the_fips_81_vectors);
	tcase_add_test(t, cipher_cbc_without_iv_uses_zeros);
	tcase_add_test(t, cipher_refuses_partial_blocks_and_bad_keys);
	tcase_add_test(t, random_fills_the_buffer);
	tcase_add_test(t, ct_memcmp_tells_only_equal_or_not);
	suite_add_tcase(s, t);
	return s;
}

static EVP_PKEY *keygen_rsa(size_t bits)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);

	if (k == NULL || (size_t)EVP_PKEY_get_bits(k) != bits)
		abort();
	return k;
}

static EVP_PKEY *keygen_ec(const char *curve)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);

	if (k == NULL)
		abort();
	return k;
}

int main(void)
{
	SRunner *sr;
	int failed;

	rsa1024 = keygen_rsa(1024);
	rsa2048 = keygen_rsa(2048);
	rsa1025 = keygen_rsa(1025);
	rsa1030 = keygen_rsa(1030);
	ec256 = keygen_ec("P-256");
	ec384 = keygen_ec("P-384");
	ec521 = keygen_ec("P-521");

	sr = srunner_create(crypto_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);

	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(rsa1025);
	EVP_PKEY_free(rsa1030);
	EVP_PKEY_free(ec256);
	EVP_PKEY_free(ec384);
	EVP_PKEY_free(ec521);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
