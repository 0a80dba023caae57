/* Self-signed certificates the driver tests put on their cards, made with
 * OpenSSL in the test, never by kyso. */
#ifndef KYSO_TEST_CERTS_H
#define KYSO_TEST_CERTS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* The DER of a version 3 certificate of pk, serial 7, valid for a day from
 * now, signed by pk with SHA-256, whose subject and issuer are O=org (left
 * out when org is NULL) and CN=cn. malloc'd: the caller frees it. */
uint8_t *cert_der(EVP_PKEY *pk, const char *org, const char *cn, size_t *len);

#endif
