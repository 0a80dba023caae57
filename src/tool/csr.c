/* kyso csr: a PKCS #10 certificate request for a key on the token, signed
 * by the token (the host builds the request, the card signs its hash). */
#include "tool/kyso.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

/* "/C=VN/O=.../CN=..." (OpenSSL's form; "\/" is a slash in a value) into a
 * name; values are UTF-8. */
int kx_parse_subject(const char *s, X509_NAME **out)
{
	X509_NAME *n = X509_NAME_new();
	char *buf = NULL, *field, *value, *w;
	const char *p;
	int rc = KX_USAGE;

	*out = NULL;
	if (!n)
		return kx_fail(KX_FAIL, "%s", kx_rv_text(CKR_HOST_MEMORY));
	if (*s != '/') {
		kx_fail(KX_USAGE,
			_("the subject must look like /C=VN/O=.../CN=..., not "
			  "\"%s\""),
			s);
		goto out;
	}
	buf = malloc(strlen(s) + 1);
	if (!buf)
		goto out;
	p = s + 1;
	while (*p) {
		w = buf;
		field = w;
		while (*p && *p != '=' && *p != '/')
			*w++ = *p++;
		*w++ = '\0';
		if (*p != '=' || !*field) {
			kx_fail(KX_USAGE,
				_("the subject part \"%s\" has no \"=\""),
				field);
			goto out;
		}
		p++;
		value = w;
		while (*p && *p != '/') {
			if (*p == '\\' && p[1])
				p++;
			*w++ = *p++;
		}
		*w = '\0';
		if (*p == '/')
			p++;
		if (!*value) {
			kx_fail(KX_USAGE, _("the subject part %s is empty"),
				field);
			goto out;
		}
		if (!X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8,
						(unsigned char *)value, -1, -1,
						0)) {
			ERR_clear_error();
			kx_fail(
			    KX_USAGE,
			    _("the subject part %s=%s is not valid (unknown "
			      "name, or text that is not UTF-8)"),
			    field, value);
			goto out;
		}
	}
	if (X509_NAME_entry_count(n) == 0) {
		kx_fail(KX_USAGE, "%s", _("the subject is empty"));
		goto out;
	}
	*out = n;
	n = NULL;
	rc = KX_OK;
out:
	free(buf);
	X509_NAME_free(n);
	return rc;
}

const EVP_MD *kx_md_by_name(const char *name)
{
	if (!name || strcmp(name, "sha256") == 0)
		return EVP_sha256();
	if (strcmp(name, "sha384") == 0)
		return EVP_sha384();
	if (strcmp(name, "sha512") == 0)
		return EVP_sha512();
	return NULL;
}

int kx_csr_write(struct kx_token *t, struct kx_key *k, struct kx_secret *pin,
		 const X509_NAME *name, const EVP_MD *md, enum kx_sigalg alg,
		 const char *outpath, int as_der)
{
	unsigned char *tbs = NULL, *sig = NULL, *der = NULL;
	size_t siglen = 0;
	X509_REQ *req = NULL;
	X509_ALGOR *algor = NULL;
	ASN1_BIT_STRING *bits = NULL;
	BIO *b = NULL;
	int rc, len;

	req = X509_REQ_new();
	if (!req || !X509_REQ_set_version(req, 0) ||
	    !X509_REQ_set_subject_name(req, name) ||
	    !X509_REQ_set_pubkey(req, k->pub)) {
		rc = kx_fail(KX_FAIL, "%s", _("cannot build the request"));
		goto out;
	}
	len = i2d_re_X509_REQ_tbs(req, &tbs);
	algor = kx_sig_algor(k->pub, md, alg);
	if (len <= 0 || !algor) {
		rc = kx_fail(KX_FAIL, "%s", _("cannot build the request"));
		goto out;
	}
	rc = kx_token_sign(t, k, pin, md, alg, tbs, (size_t)len, &sig, &siglen);
	if (rc != KX_OK)
		goto out;
	bits = ASN1_BIT_STRING_new();
	if (!bits || !ASN1_BIT_STRING_set(bits, sig, (int)siglen) ||
	    !X509_REQ_set1_signature_algo(req, algor)) {
		rc = kx_fail(KX_FAIL, "%s", _("cannot build the request"));
		goto out;
	}
	/* A signature is whole bytes: no unused bits. */
	bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	X509_REQ_set0_signature(req, bits);
	bits = NULL;
	/* Check what the card made before anyone sends it to a CA. */
	if (X509_REQ_verify(req, k->pub) != 1) {
		ERR_clear_error();
		rc = kx_fail(KX_FAIL, "%s",
			     _("the card's signature on the request does not "
			       "verify; the request was not written"));
		goto out;
	}
	if (as_der) {
		len = i2d_X509_REQ(req, &der);
		rc = len > 0 ? kx_write_file(outpath, der, (size_t)len)
			     : kx_fail(KX_FAIL, "%s",
				       _("cannot build the request"));
	} else {
		char *p;
		long plen;

		b = BIO_new(BIO_s_mem());
		if (!b || !PEM_write_bio_X509_REQ(b, req)) {
			rc = kx_fail(KX_FAIL, "%s",
				     _("cannot build the request"));
			goto out;
		}
		plen = BIO_get_mem_data(b, &p);
		rc = kx_write_file(outpath, (unsigned char *)p, (size_t)plen);
	}
	if (rc == KX_OK && strcmp(outpath, "-") != 0) {
		char *s = kx_name(name);

		fprintf(stderr,
			_("Certificate request for %s written to %s; send it "
			  "to your certificate provider.\n"),
			s ? s : "?", outpath);
		free(s);
	}
out:
	BIO_free(b);
	OPENSSL_free(der);
	OPENSSL_free(tbs);
	OPENSSL_free(sig);
	ASN1_BIT_STRING_free(bits);
	X509_ALGOR_free(algor);
	X509_REQ_free(req);
	return rc;
}

int kx_cmd_csr(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"subject", required_argument, NULL, 's'},
	    {"out", required_argument, NULL, 'o'},
	    {"der", no_argument, NULL, 'd'},
	    {"pss", no_argument, NULL, 'p'},
	    {"hash", required_argument, NULL, 'H'},
	    {NULL, 0, NULL, 0}};
	const char *keyspec = NULL, *subject = NULL, *outpath = "-";
	const char *hash = NULL;
	enum kx_sigalg alg = KX_SIG_PKCS1;
	struct kx_secret pin;
	struct kx_token t;
	struct kx_key k;
	X509_NAME *name = NULL;
	const EVP_MD *md;
	int c, rc, as_der = 0;

	memset(&pin, 0, sizeof(pin));
	memset(&k, 0, sizeof(k));
	while ((c = kx_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'k':
			keyspec = optarg;
			break;
		case 's':
			subject = optarg;
			break;
		case 'o':
			outpath = optarg;
			break;
		case 'd':
			as_der = 1;
			break;
		case 'p':
			alg = KX_SIG_PSS;
			break;
		case 'H':
			hash = optarg;
			break;
		default:
			return KX_USAGE;
		}
	}
	if (optind < argc) {
		return kx_usage_fail("csr", _("unexpected argument \"%s\""),
				     argv[optind]);
	}
	if (!keyspec || !subject)
		return kx_usage_fail("csr", "%s",
				     _("csr needs --key ID and --subject"));
	md = kx_md_by_name(hash);
	if (!md)
		return kx_fail(KX_USAGE,
			       _("unknown hash \"%s\": use sha256, sha384 or "
				 "sha512"),
			       hash);
	rc = kx_parse_subject(subject, &name);
	if (rc != KX_OK)
		return rc;
	rc = kx_token_open(&t, 0);
	if (rc != KX_OK)
		goto out_name;
	rc = kx_key_find(&t, keyspec, &k);
	if (rc != KX_OK)
		goto out;
	if (!k.pub) {
		rc = kx_fail(KX_NOT_FOUND,
			     _("the token does not show the public key of "
			       "key %s"),
			     k.idhex);
		goto out;
	}
	if (alg == KX_SIG_PSS && !EVP_PKEY_is_a(k.pub, "RSA")) {
		rc = kx_fail(KX_USAGE, "%s",
			     _("--pss is for RSA keys; this key is EC"));
		goto out;
	}
	rc = kx_login_user(&t, &pin);
	if (rc != KX_OK)
		goto out;
	rc = kx_csr_write(&t, &k, &pin, name, md, alg, outpath, as_der);
out:
	kx_secret_wipe(&pin);
	kx_key_clear(&k);
	kx_token_close(&t);
out_name:
	X509_NAME_free(name);
	return rc;
}
