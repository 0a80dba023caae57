/* Certificates, files, and signatures made by the token: the host hashes and
 * builds the structure with OpenSSL, the card signs through C_Sign. Nothing
 * here holds a private key. */
#include "tool/kyso.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

char *kx_name(const X509_NAME *n)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL, *p;
	long len;

	if (!b)
		return NULL;
	/* RFC 2253 order, UTF-8 kept as is: Vietnamese names stay readable. */
	if (X509_NAME_print_ex(b, n, 0,
			       XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		len = BIO_get_mem_data(b, &p);
		out = malloc((size_t)len + 1);
		if (out) {
			memcpy(out, p, (size_t)len);
			out[len] = '\0';
		}
	}
	BIO_free(b);
	return out;
}

void kx_key_desc(EVP_PKEY *pk, char *buf, size_t cap)
{
	char group[64] = "";
	size_t glen = 0;
	int nid;

	if (!pk) {
		snprintf(buf, cap, "%s", _("unknown key"));
		return;
	}
	if (EVP_PKEY_is_a(pk, "RSA")) {
		snprintf(buf, cap, "RSA %d", EVP_PKEY_get_bits(pk));
	} else if (EVP_PKEY_is_a(pk, "EC") &&
		   EVP_PKEY_get_utf8_string_param(
		       pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
		       &glen)) {
		const char *nist;

		nid = OBJ_sn2nid(group);
		nist = nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
		snprintf(buf, cap, "EC %s", nist ? nist : group);
	} else {
		snprintf(buf, cap, "%s %d", EVP_PKEY_get0_type_name(pk),
			 EVP_PKEY_get_bits(pk));
	}
}

void kx_date(const ASN1_TIME *t, char *buf, size_t cap)
{
	struct tm tm;

	if (!t || !ASN1_TIME_to_tm(t, &tm)) {
		snprintf(buf, cap, "?");
		return;
	}
	snprintf(buf, cap, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday);
}

int kx_days_left(const ASN1_TIME *t)
{
	int days = 0, secs = 0;

	if (!ASN1_TIME_diff(&days, &secs, NULL, t))
		return 0;
	/* A part of a day left counts as a day, a part of a day past as
	 * one day past. */
	if (secs > 0)
		days++;
	else if (secs < 0 && days == 0)
		days = -1;
	return days;
}

int kx_read_file(const char *path, unsigned char **p, size_t *n)
{
	unsigned char *buf = NULL, *nb;
	size_t len = 0, cap = 0;
	ssize_t r;
	int fd;

	*p = NULL;
	*n = 0;
	fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (!nb) {
				errno = ENOMEM;
				goto fail;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (fd != 0)
		close(fd);
	*p = buf;
	*n = len;
	return 0;
fail:
	if (fd != 0)
		close(fd);
	free(buf);
	return -1;
}

int kx_write_file(const char *path, const unsigned char *p, size_t n)
{
	char tmp[4096];
	size_t off = 0;
	ssize_t w;
	int fd;

	if (strcmp(path, "-") == 0) {
		if (fwrite(p, 1, n, stdout) != n || fflush(stdout) != 0)
			return kx_fail(KX_FAIL, _("cannot write the output"));
		return KX_OK;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.kyso-XXXXXX", path) >=
	    (int)sizeof(tmp))
		return kx_fail(KX_USAGE, _("file name too long: %s"), path);
	fd = mkstemp(tmp);
	if (fd < 0)
		return kx_fail(KX_FAIL, _("cannot write %s: %s"), path,
			       strerror(errno));
	fchmod(fd, 0644);
	while (off < n) {
		w = write(fd, p + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			break;
		off += (size_t)w;
	}
	if (off < n || fsync(fd) < 0 || close(fd) < 0 ||
	    rename(tmp, path) < 0) {
		int e = errno;

		unlink(tmp);
		return kx_fail(KX_FAIL, _("cannot write %s: %s"), path,
			       strerror(e));
	}
	return KX_OK;
}

void *kx_read_der_pem(const char *path, d2i_of_void *d2i, const char *pem_name,
		      int *unreadable)
{
	unsigned char *buf;
	const unsigned char *p;
	size_t n;
	void *obj;
	BIO *b;

	*unreadable = 0;
	if (kx_read_file(path, &buf, &n) < 0) {
		kx_fail(KX_USAGE, _("cannot read %s: %s"), path,
			strerror(errno));
		*unreadable = 1;
		return NULL;
	}
	if (n > INT_MAX) { /* BIO_new_mem_buf takes an int */
		free(buf);
		return NULL;
	}
	p = buf;
	obj = d2i(NULL, &p, (long)n);
	if (!obj) {
		b = BIO_new_mem_buf(buf, (int)n);
		if (b)
			obj = PEM_ASN1_read_bio(d2i, pem_name, b, NULL, NULL,
						NULL);
		BIO_free(b);
	}
	free(buf);
	ERR_clear_error();
	return obj;
}

X509 *kx_read_cert(const char *path)
{
	int unreadable;
	X509 *x = kx_read_der_pem(path, (d2i_of_void *)d2i_X509,
				  PEM_STRING_X509, &unreadable);

	if (!x && !unreadable)
		kx_fail(KX_USAGE,
			_("%s is not a certificate (PEM or DER expected)"),
			path);
	return x;
}

/* DigestInfo prefixes (RFC 8017, 9.2 note 1). */
static const unsigned char di_sha256[] = {
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};
static const unsigned char di_sha384[] = {
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30};
static const unsigned char di_sha512[] = {
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40};

static int md_params(const EVP_MD *md, const unsigned char **prefix,
		     size_t *plen, CK_MECHANISM_TYPE *hash,
		     CK_RSA_PKCS_MGF_TYPE *mgf)
{
	switch (EVP_MD_get_type(md)) {
	case NID_sha256:
		*prefix = di_sha256;
		*plen = sizeof(di_sha256);
		*hash = CKM_SHA256;
		*mgf = CKG_MGF1_SHA256;
		return 0;
	case NID_sha384:
		*prefix = di_sha384;
		*plen = sizeof(di_sha384);
		*hash = CKM_SHA384;
		*mgf = CKG_MGF1_SHA384;
		return 0;
	case NID_sha512:
		*prefix = di_sha512;
		*plen = sizeof(di_sha512);
		*hash = CKM_SHA512;
		*mgf = CKG_MGF1_SHA512;
		return 0;
	}
	return -1;
}

/* r||s (each half of the buffer) to a DER ECDSA-Sig-Value. */
static int ecdsa_der(const unsigned char *rs, size_t n, unsigned char **der,
		     size_t *derlen)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r, *s;
	unsigned char *p = NULL;
	int len;

	if (!sig || n == 0 || n % 2) {
		ECDSA_SIG_free(sig);
		return -1;
	}
	r = BN_bin2bn(rs, (int)(n / 2), NULL);
	s = BN_bin2bn(rs + n / 2, (int)(n / 2), NULL);
	if (!r || !s || !ECDSA_SIG_set0(sig, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(sig);
		return -1;
	}
	len = i2d_ECDSA_SIG(sig, &p);
	ECDSA_SIG_free(sig);
	if (len <= 0)
		return -1;
	*der = p;
	*derlen = (size_t)len;
	return 0;
}

int kx_token_sign(struct kx_token *t, struct kx_key *k, struct kx_secret *pin,
		  const EVP_MD *md, enum kx_sigalg alg,
		  const unsigned char *tbs, size_t tbslen, unsigned char **sig,
		  size_t *siglen)
{
	unsigned char hash[EVP_MAX_MD_SIZE], in[EVP_MAX_MD_SIZE + 32];
	unsigned char out[1024];
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_MECHANISM mech = {0, NULL, 0};
	CK_OBJECT_HANDLE priv;
	CK_ULONG outlen = sizeof(out);
	CK_BBOOL always = CK_FALSE;
	const unsigned char *prefix;
	unsigned int hlen = 0;
	size_t plen, inlen, n;
	CK_MECHANISM_TYPE hmech;
	CK_RSA_PKCS_MGF_TYPE mgf;
	int rc, is_ec;
	CK_RV rv;

	*sig = NULL;
	*siglen = 0;
	if (!k->pub || md_params(md, &prefix, &plen, &hmech, &mgf) < 0)
		return kx_fail(KX_FAIL, "%s",
			       _("the key's type or hash is not supported"));
	is_ec = EVP_PKEY_is_a(k->pub, "EC");
	if (!is_ec && !EVP_PKEY_is_a(k->pub, "RSA"))
		return kx_fail(KX_FAIL, "%s",
			       _("the key's type or hash is not supported"));
	if (is_ec && alg == KX_SIG_PSS)
		return kx_fail(KX_USAGE, "%s",
			       _("--pss is for RSA keys; this key is EC"));
	rc = kx_find(t, CKO_PRIVATE_KEY, k->id, k->idlen, &priv, 1, &n);
	if (rc != KX_OK)
		return rc;
	if (n == 0)
		return kx_fail(KX_NOT_FOUND,
			       _("the token shows no private key with id %s"),
			       k->idhex);
	/* The card only ever sees the hash (DigestInfo for PKCS #1). */
	if (!EVP_Digest(tbs, tbslen, hash, &hlen, md, NULL))
		return kx_fail(KX_FAIL, "%s", _("hashing failed"));
	if (is_ec) {
		mech.mechanism = CKM_ECDSA;
		memcpy(in, hash, hlen);
		inlen = hlen;
	} else if (alg == KX_SIG_PSS) {
		pss.hashAlg = hmech;
		pss.mgf = mgf;
		pss.sLen = hlen;
		mech.mechanism = CKM_RSA_PKCS_PSS;
		mech.pParameter = &pss;
		mech.ulParameterLen = sizeof(pss);
		memcpy(in, hash, hlen);
		inlen = hlen;
	} else {
		mech.mechanism = CKM_RSA_PKCS;
		memcpy(in, prefix, plen);
		memcpy(in + plen, hash, hlen);
		inlen = plen + hlen;
	}
	rv = kx_p11->C_SignInit(t->sess, &mech, priv);
	if (rv != CKR_OK)
		return kx_fail(kx_rv_exit(rv), _("the card cannot sign: %s"),
			       kx_rv_text(rv));
	kx_attr_bool(t, priv, CKA_ALWAYS_AUTHENTICATE, &always);
	if (always) {
		/* This key wants the PIN right before each use: the same
		 * PIN the user just gave, not a second try. */
		if (pin && pin->len)
			rv = kx_p11->C_Login(t->sess, CKU_CONTEXT_SPECIFIC,
					     (CK_UTF8CHAR_PTR)pin->s, pin->len);
		else
			rv = kx_p11->C_Login(t->sess, CKU_CONTEXT_SPECIFIC,
					     NULL, 0);
		if (rv != CKR_OK)
			return kx_pin_failed(t, KX_CRED_PIN, rv);
	}
	rv = kx_p11->C_Sign(t->sess, in, inlen, out, &outlen);
	OPENSSL_cleanse(in, sizeof(in));
	if (rv != CKR_OK)
		return kx_fail(kx_rv_exit(rv), _("the card did not sign: %s"),
			       kx_rv_text(rv));
	if (is_ec) {
		if (ecdsa_der(out, outlen, sig, siglen) < 0)
			return kx_fail(KX_FAIL, "%s",
				       _("the card gave a malformed "
					 "signature"));
		return KX_OK;
	}
	*sig = OPENSSL_malloc(outlen);
	if (!*sig)
		return kx_fail(KX_FAIL, "%s", kx_rv_text(CKR_HOST_MEMORY));
	memcpy(*sig, out, outlen);
	*siglen = outlen;
	return KX_OK;
}

X509_ALGOR *kx_sig_algor(EVP_PKEY *pub, const EVP_MD *md, enum kx_sigalg alg)
{
	X509_ALGOR *a = X509_ALGOR_new(), *h = NULL, *mgf = NULL;
	RSA_PSS_PARAMS *pss = NULL;
	ASN1_STRING *hs = NULL, *ps = NULL;
	int signid;

	if (!a)
		return NULL;
	if (alg != KX_SIG_PSS) {
		if (!OBJ_find_sigid_by_algs(&signid, EVP_MD_get_type(md),
					    EVP_PKEY_get_base_id(pub)))
			goto fail;
		/* RSA: NULL parameters; ECDSA: none (RFC 5758). */
		X509_ALGOR_set0(a, OBJ_nid2obj(signid),
				EVP_PKEY_is_a(pub, "RSA") ? V_ASN1_NULL
							  : V_ASN1_UNDEF,
				NULL);
		return a;
	}
	/* RSASSA-PSS, RFC 4055: hash, MGF1 with the same hash, salt = hash
	 * length, trailer 1 (the default, left out). */
	pss = RSA_PSS_PARAMS_new();
	h = X509_ALGOR_new();
	mgf = X509_ALGOR_new();
	if (!pss || !h || !mgf)
		goto fail;
	X509_ALGOR_set_md(h, md);
	if (!ASN1_item_pack(h, ASN1_ITEM_rptr(X509_ALGOR), &hs))
		goto fail;
	X509_ALGOR_set0(mgf, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE, hs);
	hs = NULL;
	pss->hashAlgorithm = h;
	pss->maskGenAlgorithm = mgf;
	h = mgf = NULL;
	pss->saltLength = ASN1_INTEGER_new();
	if (!pss->saltLength ||
	    !ASN1_INTEGER_set(pss->saltLength, EVP_MD_get_size(md)) ||
	    !ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), &ps))
		goto fail;
	X509_ALGOR_set0(a, OBJ_nid2obj(NID_rsassaPss), V_ASN1_SEQUENCE, ps);
	RSA_PSS_PARAMS_free(pss);
	return a;
fail:
	RSA_PSS_PARAMS_free(pss);
	X509_ALGOR_free(h);
	X509_ALGOR_free(mgf);
	X509_ALGOR_free(a);
	return NULL;
}
