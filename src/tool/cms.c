/* kyso sign / kyso verify: detached CMS (PKCS #7 SignedData) signatures of a
 * file. The host hashes the file and builds the signed attributes; the card
 * signs their hash. Any CMS verifier (openssl cms -verify) checks them. */
#include "tool/kyso.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* pem.h first: cms.h declares its PEM functions only after it. */
#include <openssl/pem.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>

static int digest_file(const char *path, const EVP_MD *md, unsigned char *out,
		       unsigned int *outlen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char buf[65536];
	size_t n;
	FILE *f = fopen(path, "rb");
	int ok = 0;

	if (!f) {
		EVP_MD_CTX_free(ctx);
		return kx_fail(KX_USAGE, _("cannot read %s: %s"), path,
			       strerror(errno));
	}
	if (ctx && EVP_DigestInit_ex(ctx, md, NULL)) {
		ok = 1;
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			if (!EVP_DigestUpdate(ctx, buf, n))
				ok = 0;
		if (ferror(f))
			ok = 0;
		if (ok && !EVP_DigestFinal_ex(ctx, out, outlen))
			ok = 0;
	}
	fclose(f);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return kx_fail(KX_FAIL, _("cannot read %s: %s"), path,
			       _("read or hash error"));
	return KX_OK;
}

/* The certificate must be valid now: a signature made with an expired one
 * is worth nothing, better to say so before asking for the PIN. */
static int cert_usable(X509 *x)
{
	char d[16];

	if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
		kx_date(X509_get0_notAfter(x), d, sizeof(d));
		return kx_fail(KX_FAIL,
			       _("the certificate expired on %s; ask your "
				 "certificate provider for a new one"),
			       d);
	}
	if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
		kx_date(X509_get0_notBefore(x), d, sizeof(d));
		return kx_fail(KX_FAIL,
			       _("the certificate is valid only from %s "
				 "(is the computer's clock right?)"),
			       d);
	}
	return KX_OK;
}

int kx_cmd_sign(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"out", required_argument, NULL, 'o'},
	    {"pss", no_argument, NULL, 'p'},
	    {"hash", required_argument, NULL, 'H'},
	    {NULL, 0, NULL, 0}};
	const char *keyspec = NULL, *hash = NULL, *file;
	char *outpath = NULL, *name = NULL;
	enum kx_sigalg alg = KX_SIG_PKCS1;
	unsigned char dig[EVP_MAX_MD_SIZE], *attrs = NULL, *sig = NULL;
	unsigned char *der = NULL;
	unsigned int diglen = 0;
	size_t siglen = 0;
	struct kx_secret pin;
	struct kx_token t;
	struct kx_key k;
	PKCS7 *p7 = NULL;
	PKCS7_SIGNER_INFO *si;
	X509_ALGOR *algor = NULL;
	const EVP_MD *md;
	int c, rc, len;

	memset(&pin, 0, sizeof(pin));
	memset(&k, 0, sizeof(k));
	while ((c = kx_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'k':
			keyspec = optarg;
			break;
		case 'o':
			free(outpath);
			outpath = strdup(optarg);
			break;
		case 'p':
			alg = KX_SIG_PSS;
			break;
		case 'H':
			hash = optarg;
			break;
		default:
			free(outpath);
			return KX_USAGE;
		}
	}
	if (optind != argc - 1) {
		free(outpath);
		return kx_usage_fail("sign", "%s",
				     _("sign needs one file to sign"));
	}
	file = argv[optind];
	md = kx_md_by_name(hash);
	if (!md) {
		free(outpath);
		return kx_fail(KX_USAGE,
			       _("unknown hash \"%s\": use sha256, sha384 or "
				 "sha512"),
			       hash);
	}
	if (!outpath && asprintf(&outpath, "%s.p7s", file) < 0)
		return kx_fail(KX_FAIL, "%s", kx_rv_text(CKR_HOST_MEMORY));
	rc = digest_file(file, md, dig, &diglen);
	if (rc != KX_OK) {
		free(outpath);
		return rc;
	}
	rc = kx_token_open(&t, 0);
	if (rc != KX_OK) {
		free(outpath);
		return rc;
	}
	rc = kx_key_find(&t, keyspec, &k);
	if (rc != KX_OK)
		goto out;
	if (!k.cert) {
		rc = kx_fail(KX_NOT_FOUND,
			     _("key %s has no certificate; a signature needs "
			       "one"),
			     k.idhex);
		goto out;
	}
	rc = cert_usable(k.cert);
	if (rc != KX_OK)
		goto out;
	if (alg == KX_SIG_PSS && !EVP_PKEY_is_a(k.pub, "RSA")) {
		rc = kx_fail(KX_USAGE, "%s",
			     _("--pss is for RSA keys; this key is EC"));
		goto out;
	}

	/* SignedData, detached: the certificate, and signed attributes
	 * (content type, signing time, message digest) as RFC 5652 5.3. */
	p7 = PKCS7_new();
	if (!p7 || !PKCS7_set_type(p7, NID_pkcs7_signed) ||
	    !PKCS7_content_new(p7, NID_pkcs7_data) ||
	    !(si = PKCS7_add_signature(p7, k.cert, k.pub, md)) ||
	    !PKCS7_add_certificate(p7, k.cert) ||
	    !PKCS7_add_signed_attribute(si, NID_pkcs9_contentType,
					V_ASN1_OBJECT,
					OBJ_nid2obj(NID_pkcs7_data)) ||
	    !PKCS7_add0_attrib_signing_time(si, NULL) ||
	    !PKCS7_add1_attrib_digest(si, dig, (int)diglen) ||
	    !PKCS7_set_detached(p7, 1) ||
	    !(algor = kx_sig_algor(k.pub, md, alg))) {
		ERR_clear_error();
		rc = kx_fail(KX_FAIL, "%s", _("cannot build the signature"));
		goto out;
	}
	X509_ALGOR_free(si->digest_enc_alg);
	si->digest_enc_alg = algor;
	algor = NULL;
	len = ASN1_item_i2d((ASN1_VALUE *)si->auth_attr, &attrs,
			    ASN1_ITEM_rptr(PKCS7_ATTR_SIGN));
	if (len <= 0) {
		rc = kx_fail(KX_FAIL, "%s", _("cannot build the signature"));
		goto out;
	}
	rc = kx_login_user(&t, &pin);
	if (rc != KX_OK)
		goto out;
	rc = kx_token_sign(&t, &k, &pin, md, alg, attrs, (size_t)len, &sig,
			   &siglen);
	kx_secret_wipe(&pin);
	if (rc != KX_OK)
		goto out;
	ASN1_STRING_set0(si->enc_digest, sig, (int)siglen);
	sig = NULL;
	len = i2d_PKCS7(p7, &der);
	if (len <= 0) {
		rc = kx_fail(KX_FAIL, "%s", _("cannot build the signature"));
		goto out;
	}
	rc = kx_write_file(outpath, der, (size_t)len);
	if (rc != KX_OK)
		goto out;
	name = kx_name(X509_get_subject_name(k.cert));
	printf(_("Signed %s as %s (key %s); signature in %s\n"), file,
	       name ? name : "?", k.idhex, outpath);
out:
	kx_secret_wipe(&pin);
	free(name);
	free(outpath);
	OPENSSL_free(der);
	OPENSSL_free(attrs);
	OPENSSL_free(sig);
	X509_ALGOR_free(algor);
	PKCS7_free(p7);
	kx_key_clear(&k);
	kx_token_close(&t);
	return rc;
}

static CMS_ContentInfo *read_cms(const char *path)
{
	int unreadable;
	CMS_ContentInfo *cms = kx_read_der_pem(
	    path, (d2i_of_void *)d2i_CMS_ContentInfo, PEM_STRING_CMS,
	    &unreadable);

	if (!cms && !unreadable)
		kx_fail(KX_USAGE, _("%s is not a CMS signature"), path);
	return cms;
}

static void signing_time(CMS_ContentInfo *cms, char *buf, size_t cap)
{
	STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
	CMS_SignerInfo *si;
	X509_ATTRIBUTE *a;
	ASN1_TYPE *v;
	struct tm tm;
	int i;

	buf[0] = '\0';
	if (!sis || sk_CMS_SignerInfo_num(sis) < 1)
		return;
	si = sk_CMS_SignerInfo_value(sis, 0);
	i = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
	if (i < 0 || !(a = CMS_signed_get_attr(si, i)) ||
	    !(v = X509_ATTRIBUTE_get0_type(a, 0)))
		return;
	if ((v->type == V_ASN1_UTCTIME || v->type == V_ASN1_GENERALIZEDTIME) &&
	    ASN1_TIME_to_tm((ASN1_TIME *)v->value.ptr, &tm))
		snprintf(buf, cap, "%04d-%02d-%02d %02d:%02d:%02d UTC",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int kx_cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"ca", required_argument, NULL, 'c'}, {NULL, 0, NULL, 0}};
	const char *file, *ca = NULL;
	char *sigpath = NULL, *name = NULL, when[64];
	CMS_ContentInfo *cms = NULL;
	STACK_OF(X509) *signers = NULL;
	X509_STORE *store = NULL;
	BIO *content = NULL;
	unsigned long err;
	int c, rc;

	while ((c = kx_getopt(argc, argv, "", opts)) != -1) {
		if (c == 'c')
			ca = optarg;
		else
			return KX_USAGE;
	}
	if (optind != argc - 1 && optind != argc - 2) {
		return kx_usage_fail(
		    "verify", "%s",
		    _("verify needs the signed file (and the signature "
		      "file, if not FILE.p7s)"));
	}
	file = argv[optind];
	if (optind == argc - 2)
		sigpath = strdup(argv[optind + 1]);
	else if (asprintf(&sigpath, "%s.p7s", file) < 0)
		sigpath = NULL;
	if (!sigpath)
		return kx_fail(KX_FAIL, "%s", kx_rv_text(CKR_HOST_MEMORY));
	cms = read_cms(sigpath);
	if (!cms) {
		rc = KX_USAGE;
		goto out;
	}
	if (ca) {
		store = X509_STORE_new();
		if (!store || !X509_STORE_load_file(store, ca)) {
			ERR_clear_error();
			rc = kx_fail(KX_USAGE,
				     _("cannot read the CA certificates in %s"),
				     ca);
			goto out;
		}
	}
	/* First the signature itself, then (with --ca) the certificate:
	 * two different troubles, two different messages. */
	content = BIO_new_file(file, "rb");
	if (!content) {
		rc = kx_fail(KX_USAGE, _("cannot read %s: %s"), file,
			     strerror(errno));
		goto out;
	}
	if (CMS_verify(cms, NULL, NULL, content, NULL,
		       CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
		err = ERR_peek_last_error();
		ERR_clear_error();
		(void)err;
		rc =
		    kx_fail(KX_BAD_SIGNATURE, "%s",
			    _("BAD signature: the file is not the one that was "
			      "signed, or the signature is damaged"));
		goto out;
	}
	signers = CMS_get0_signers(cms);
	if (signers && sk_X509_num(signers) > 0)
		name =
		    kx_name(X509_get_subject_name(sk_X509_value(signers, 0)));
	sk_X509_free(signers);
	signing_time(cms, when, sizeof(when));
	if (store) {
		BIO_free(content);
		content = BIO_new_file(file, "rb");
		if (!content || CMS_verify(cms, NULL, store, content, NULL,
					   CMS_BINARY) != 1) {
			err = ERR_peek_last_error();
			ERR_clear_error();
			rc = kx_fail(KX_BAD_SIGNATURE,
				     _("the signature is intact, but the "
				       "signer's certificate is not trusted "
				       "by %s: %s"),
				     ca,
				     ERR_reason_error_string(err)
					 ? ERR_reason_error_string(err)
					 : "?");
			goto out;
		}
		printf(_("Good signature by %s, made %s; the certificate is "
			 "trusted by %s.\n"),
		       name ? name : "?", when[0] ? when : "?", ca);
	} else {
		printf(_("Good signature by %s, made %s.\n"), name ? name : "?",
		       when[0] ? when : "?");
		printf("%s\n",
		       _("The signer's certificate was NOT checked against a "
			 "certificate authority; give one with --ca."));
	}
	rc = KX_OK;
out:
	free(name);
	free(sigpath);
	BIO_free(content);
	X509_STORE_free(store);
	CMS_ContentInfo_free(cms);
	return rc;
}
