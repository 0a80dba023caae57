/* libFuzzer target: certificate handling of card data (src/crypto/cert.c):
 * kyso_cert_parse of the input as DER, and kyso_inflate of the input as a
 * compressed certificate (PIV CertInfo 01) whose output is parsed in turn;
 * what a parsed certificate gives must be consistent (the public key's
 * SubjectPublicKeyInfo can be built, EC parameters name the curve). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INFLATE_MAX 16384 /* what the PIV driver allows */

static void check_cert(const uint8_t *der, size_t len)
{
	struct kyso_cert_info ci;
	uint8_t *spki = NULL;
	size_t spkilen = 0;
	CK_RV rv;

	rv = kyso_cert_parse(der, len, &ci);
	if (rv != CKR_OK) {
		if (rv != CKR_DEVICE_ERROR && rv != CKR_HOST_MEMORY)
			abort();
		/* a failed parse leaves nothing behind */
		if (ci.subject || ci.issuer || ci.serial ||
		    kyso_pubkey_present(&ci.pub))
			abort();
		return;
	}
	if (ci.subject == NULL || ci.subjectlen == 0 || ci.issuer == NULL ||
	    ci.serial == NULL)
		abort();
	if (kyso_pubkey_present(&ci.pub)) {
		if (ci.pub.type == CKK_EC &&
		    kyso_ec_params_bits(ci.pub.params, ci.pub.paramslen) !=
			ci.pub.bits)
			abort();
		if (ci.pub.type == CKK_EC &&
		    ci.pub.pointlen != 1 + 2 * ((ci.pub.bits + 7) / 8))
			abort();
		if (ci.pub.type == CKK_RSA &&
		    (ci.pub.elen == 0 || ci.pub.n[0] == 0))
			abort();
		if (kyso_pubkey_spki(&ci.pub, &spki, &spkilen) == CKR_OK &&
		    (spki == NULL || spkilen == 0))
			abort();
		free(spki);
	}
	kyso_cert_info_clear(&ci);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out = NULL;
	size_t outlen = 0;
	CK_RV rv;

	check_cert(data, size);

	rv = kyso_inflate(data, size, &out, &outlen, INFLATE_MAX);
	if (rv == CKR_OK) {
		if (outlen > INFLATE_MAX || (outlen && out == NULL))
			abort();
		if (outlen)
			check_cert(out, outlen);
	} else if (out != NULL || outlen != 0) {
		abort();
	}
	free(out);
	return 0;
}
