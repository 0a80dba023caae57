/* Randomness from OpenSSL's DRBG and a comparison whose time does not
 * depend on the bytes compared. */
#include <limits.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "crypto/crypto.h"

CK_RV kyso_random(uint8_t *p, size_t n)
{
	CK_RV rv = CKR_OK;
	int chunk;

	if (p == NULL && n > 0)
		return CKR_ARGUMENTS_BAD;
	ERR_set_mark();
	while (n > 0) {
		chunk = n > INT_MAX ? INT_MAX : (int)n;
		if (RAND_bytes(p, chunk) != 1) {
			rv = CKR_FUNCTION_FAILED;
			break;
		}
		p += chunk;
		n -= (size_t)chunk;
	}
	ERR_pop_to_mark();
	return rv;
}

int kyso_ct_memcmp(const void *a, const void *b, size_t n)
{
	if (n == 0)
		return 0;
	return CRYPTO_memcmp(a, b, n) != 0;
}
