/* kyso cert import | export | delete: the certificate next to a key. Import
 * finds the key by the certificate's public key when --key is not given. */
#include "tool/kyso.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

static int import(struct kx_token *t, X509 *x, const char *keyspec,
		  const char *label)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ctype = CKC_X_509;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE tmpl[10];
	CK_OBJECT_HANDLE h;
	unsigned char *der = NULL, *subj = NULL, *iss = NULL, *sn = NULL;
	int derlen, subjlen, isslen, snlen, rc;
	struct kx_key *keys = NULL, *k = NULL;
	size_t nkeys = 0, i, n = 0;
	unsigned char id[64];
	size_t idlen = 0;
	char *name = NULL;
	CK_RV rv;

	rc = kx_key_list(t, &keys, &nkeys);
	if (rc != KX_OK)
		goto out;
	if (keyspec) {
		int isid = kx_hex_id(keyspec, id, sizeof(id), &idlen) == 0;

		for (i = 0; i < nkeys && !k; i++)
			if ((isid && keys[i].idlen == idlen &&
			     memcmp(keys[i].id, id, idlen) == 0) ||
			    strcmp(keys[i].label, keyspec) == 0)
				k = &keys[i];
		if (!k && !isid) {
			rc = kx_fail(KX_NOT_FOUND,
				     _("no key \"%s\" on the token (\"kyso "
				       "list\" shows the keys)"),
				     keyspec);
			goto out;
		}
		if (k && k->pub &&
		    EVP_PKEY_eq(k->pub, X509_get0_pubkey(x)) != 1) {
			rc = kx_fail(KX_USAGE,
				     _("this certificate is not for key %s: "
				       "its public key is another"),
				     k->idhex);
			goto out;
		}
		if (k) {
			memcpy(id, k->id, k->idlen);
			idlen = k->idlen;
		}
	} else {
		for (i = 0; i < nkeys && !k; i++)
			if (keys[i].pub &&
			    EVP_PKEY_eq(keys[i].pub, X509_get0_pubkey(x)) == 1)
				k = &keys[i];
		if (!k) {
			rc = kx_fail(KX_NOT_FOUND, "%s",
				     _("no key on the token matches this "
				       "certificate; if it is for a new key, "
				       "give the key's id with --key ID"));
			goto out;
		}
		memcpy(id, k->id, k->idlen);
		idlen = k->idlen;
	}
	if (k && k->cert) {
		if (X509_cmp(k->cert, x) == 0) {
			printf(_("This certificate is already on the token "
				 "(key %s).\n"),
			       k->idhex);
			rc = KX_OK;
			goto out;
		}
		rc = kx_confirm(_("The key already has a certificate; the new "
				  "one replaces it."));
		if (rc != KX_OK)
			goto out;
	}
	derlen = i2d_X509(x, &der);
	subjlen = i2d_X509_NAME(X509_get_subject_name(x), &subj);
	isslen = i2d_X509_NAME(X509_get_issuer_name(x), &iss);
	snlen = i2d_ASN1_INTEGER(X509_get_serialNumber(x), &sn);
	if (derlen <= 0 || subjlen <= 0 || isslen <= 0 || snlen <= 0) {
		rc = kx_fail(KX_FAIL, "%s", _("cannot encode the certificate"));
		goto out;
	}
	rc = kx_login_admin(t);
	if (rc != KX_OK)
		goto out;
	tmpl[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)};
	tmpl[n++] = (CK_ATTRIBUTE){CKA_CERTIFICATE_TYPE, &ctype, sizeof(ctype)};
	tmpl[n++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
	tmpl[n++] = (CK_ATTRIBUTE){CKA_PRIVATE, &no, sizeof(no)};
	tmpl[n++] = (CK_ATTRIBUTE){CKA_ID, id, idlen};
	tmpl[n++] = (CK_ATTRIBUTE){CKA_VALUE, der, (CK_ULONG)derlen};
	tmpl[n++] = (CK_ATTRIBUTE){CKA_SUBJECT, subj, (CK_ULONG)subjlen};
	tmpl[n++] = (CK_ATTRIBUTE){CKA_ISSUER, iss, (CK_ULONG)isslen};
	tmpl[n++] = (CK_ATTRIBUTE){CKA_SERIAL_NUMBER, sn, (CK_ULONG)snlen};
	if (label)
		tmpl[n++] =
		    (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
	rv = kx_p11->C_CreateObject(t->sess, tmpl, n, &h);
	kx_p11->C_Logout(t->sess);
	if (rv != CKR_OK) {
		rc = kx_fail(kx_rv_exit(rv),
			     _("the card did not store the certificate: %s"),
			     kx_rv_text(rv));
		goto out;
	}
	name = kx_name(X509_get_subject_name(x));
	{
		char idhex[129];

		kx_hex(id, idlen, idhex, sizeof(idhex));
		printf(_("Certificate for %s stored next to key %s.\n"),
		       name ? name : "?", idhex);
	}
	rc = KX_OK;
out:
	free(name);
	OPENSSL_free(der);
	OPENSSL_free(subj);
	OPENSSL_free(iss);
	OPENSSL_free(sn);
	for (i = 0; i < nkeys; i++)
		kx_key_clear(&keys[i]);
	free(keys);
	return rc;
}

static int export(struct kx_token *t, const char *keyspec, const char *out,
		  int as_der)
{
	struct kx_key k;
	unsigned char *der = NULL;
	int rc, len;

	rc = kx_key_find(t, keyspec, &k);
	if (rc != KX_OK)
		return rc;
	if (!k.cert) {
		rc = kx_fail(KX_NOT_FOUND, _("key %s has no certificate"),
			     k.idhex);
		goto done;
	}
	if (as_der) {
		len = i2d_X509(k.cert, &der);
		rc = len > 0 ? kx_write_file(out, der, (size_t)len)
			     : kx_fail(KX_FAIL, "%s",
				       _("cannot encode the certificate"));
	} else {
		BIO *b = BIO_new(BIO_s_mem());
		char *p;
		long plen;

		if (!b || !PEM_write_bio_X509(b, k.cert)) {
			BIO_free(b);
			rc = kx_fail(KX_FAIL, "%s",
				     _("cannot encode the certificate"));
			goto done;
		}
		plen = BIO_get_mem_data(b, &p);
		rc = kx_write_file(out, (unsigned char *)p, (size_t)plen);
		BIO_free(b);
	}
done:
	OPENSSL_free(der);
	kx_key_clear(&k);
	return rc;
}

static int delete (struct kx_token *t, const char *keyspec)
{
	CK_OBJECT_HANDLE h;
	struct kx_key k;
	char q[512], *name;
	size_t n;
	int rc;
	CK_RV rv;

	rc = kx_key_find(t, keyspec, &k);
	if (rc != KX_OK)
		return rc;
	if (!k.cert) {
		rc = kx_fail(KX_NOT_FOUND, _("key %s has no certificate"),
			     k.idhex);
		goto done;
	}
	name = kx_name(X509_get_subject_name(k.cert));
	snprintf(q, sizeof(q),
		 _("The certificate for %s (key %s) will be deleted from the "
		   "token; the key stays."),
		 name ? name : "?", k.idhex);
	free(name);
	rc = kx_confirm(q);
	if (rc != KX_OK)
		goto done;
	rc = kx_login_admin(t);
	if (rc != KX_OK)
		goto done;
	rc = kx_find(t, CKO_CERTIFICATE, k.id, k.idlen, &h, 1, &n);
	if (rc == KX_OK && n == 1) {
		rv = kx_p11->C_DestroyObject(t->sess, h);
		if (rv != CKR_OK)
			rc = kx_fail(kx_rv_exit(rv),
				     _("the card did not delete the "
				       "certificate: %s"),
				     kx_rv_text(rv));
		else
			printf(_("The certificate of key %s was deleted.\n"),
			       k.idhex);
	} else if (rc == KX_OK) {
		rc = kx_fail(KX_NOT_FOUND, _("key %s has no certificate"),
			     k.idhex);
	}
	kx_p11->C_Logout(t->sess);
done:
	kx_key_clear(&k);
	return rc;
}

int kx_cmd_cert(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"out", required_argument, NULL, 'o'},
	    {"der", no_argument, NULL, 'd'},
	    {"label", required_argument, NULL, 'l'},
	    {NULL, 0, NULL, 0}};
	const char *keyspec = NULL, *out = "-", *label = NULL, *what, *file;
	struct kx_token t;
	X509 *x = NULL;
	int c, rc, as_der = 0;

	while ((c = kx_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'k':
			keyspec = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'd':
			as_der = 1;
			break;
		case 'l':
			label = optarg;
			break;
		default:
			return KX_USAGE;
		}
	}
	if (optind >= argc) {
		return kx_usage_fail(
		    "cert", "%s",
		    _("say what to do: \"kyso cert import\", \"export\" or "
		      "\"delete\""));
	}
	what = argv[optind++];
	if (strcmp(what, "import") == 0) {
		if (optind != argc - 1)
			return kx_usage_fail(
			    "cert", "%s",
			    _("cert import needs one certificate file"));
		file = argv[optind];
		x = kx_read_cert(file);
		if (!x)
			return KX_USAGE;
	} else if (strcmp(what, "export") == 0 || strcmp(what, "delete") == 0) {
		if (optind < argc)
			return kx_usage_fail("cert",
					     _("unexpected argument \"%s\""),
					     argv[optind]);
		if (!keyspec)
			return kx_usage_fail("cert",
					     _("cert %s needs --key ID"), what);
		file = NULL;
	} else {
		return kx_usage_fail("cert", _("unknown command \"cert %s\""),
				     what);
	}
	rc = kx_token_open(&t, strcmp(what, "export") != 0);
	if (rc != KX_OK) {
		X509_free(x);
		return rc;
	}
	if (x)
		rc = import(&t, x, keyspec, label);
	else if (strcmp(what, "export") == 0)
		rc = export(&t, keyspec, out, as_der);
	else
		rc = delete (&t, keyspec);
	X509_free(x);
	kx_token_close(&t);
	return rc;
}
