/* Test certificates made with OpenSSL (certs.h). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "certs.h"

uint8_t *cert_der(EVP_PKEY *pk, const char *org, const char *cn, size_t *len)
{
	X509 *x = X509_new();
	X509_NAME *name;
	unsigned char *der = NULL;
	uint8_t *copy;
	int n;

	ck_assert_ptr_nonnull(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	name = X509_get_subject_name(x);
	if (org != NULL)
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
					   (const unsigned char *)org, -1, -1,
					   0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, pk);
	ck_assert_int_gt(X509_sign(x, pk, EVP_sha256()), 0);
	n = i2d_X509(x, &der);
	ck_assert_int_gt(n, 0);
	copy = malloc((size_t)n);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, der, (size_t)n);
	OPENSSL_free(der);
	X509_free(x);
	*len = (size_t)n;
	return copy;
}
