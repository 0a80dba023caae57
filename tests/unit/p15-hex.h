/* PKCS#15 directory entries in hex as pkcs15-init writes them (ISO/IEC
 * 7816-15), built with hexs.h and kept in its arena. Paths, ids, usage
 * and flags are hex. */
#ifndef KYSO_TEST_P15_HEX_H
#define KYSO_TEST_P15_HEX_H

/* pinFlags: local, initialized, needs-padding (bits 1, 4, 5) */
#define P15_PIN_FLAGS "0302024C"
/* those and unblockingPin, soPin (bits 6, 7) */
#define P15_PIN_FLAGS_SO "0302004F"
/* keyUsage: sign, nonRepudiation (bits 2, 9) */
#define P15_USAGE_SIGN "0303062040"
/* keyUsage: decrypt, sign, nonRepudiation (bits 1, 2, 9) */
#define P15_USAGE_DECRYPT "0303066040"

/* Path ::= SEQUENCE { OCTET STRING p } */
char *p15_path(const char *p);
/* CommonObjectAttributes: label, flags private and modifiable, and the
 * authId when auth is not NULL. */
char *p15_coa(const char *label, const char *auth);
/* An AODF PIN entry: authId and reference ref, pinFlags (the whole BIT
 * STRING), ascii-numeric, 4 to 16 digits, padding 00, and the path of
 * the PIN's DF unless path is NULL. */
char *p15_pin(const char *label, unsigned ref, const char *flags,
	      const char *path);
/* A PrKDF entry under tag: authId 01, usage (the whole BIT STRING),
 * access flags sensitive, always-sensitive, never-extractable and local,
 * the key reference unless ref < 0; the key file's path and the size in
 * bits. */
char *p15_prkey(unsigned tag, const char *label, const char *id,
		const char *usage, const char *path, int ref, unsigned bits);
/* A CDF entry: the certificate with this id in the file at path. */
char *p15_cert(const char *label, const char *id, const char *path);

#endif
