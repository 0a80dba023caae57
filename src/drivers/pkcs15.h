/* PKCS#15 (ISO/IEC 7816-15) structures as a parser library: EF.DIR records,
 * the ODF, TokenInfo, and the objects of the AODF, PrKDF, PuKDF and CDF.
 * Pure functions over bytes a driver has read; values that are byte strings
 * point into those bytes. Every entry is checked against its span; an entry
 * of a kind kyso does not use is reported as such, not as an error. */
#ifndef KYSO_DRIVERS_PKCS15_H
#define KYSO_DRIVERS_PKCS15_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "iso7816/asn1.h"
#include "util/buf.h"

#define KYSO_P15_PATH_MAX  16 /* bytes: MF and up to seven levels */
#define KYSO_P15_ID_MAX	   64
#define KYSO_P15_LABEL_MAX 63

/* The PKCS#15 application identifier (ISO/IEC 7816-15). */
extern const uint8_t kyso_p15_aid[12];

struct kyso_p15_path {
	uint8_t v[KYSO_P15_PATH_MAX];
	size_t len;	       /* even, or 0 when absent */
	int has_range;	       /* index and length given */
	uint32_t index, count; /* the object is at [index, index+count) */
};

/* Path of a child: absolute (3F00...) as it is, else under app. -1 when the
 * result would be odd or too long. */
int kyso_p15_path_join(const struct kyso_p15_path *app,
		       const struct kyso_p15_path *p,
		       struct kyso_p15_path *out);

/* --- EF.DIR ------------------------------------------------------------ */
struct kyso_p15_app {
	uint8_t aid[16];
	size_t aidlen;
	char label[33];
	struct kyso_p15_path path;
};
/* One record (or one element of a transparent EF.DIR): 61 { 4F AID,
 * [50 label], [51 path] }. 0, or -1 when malformed. */
int kyso_p15_dir_entry(const uint8_t *p, size_t len, struct kyso_p15_app *app);

/* --- ODF --------------------------------------------------------------- */
enum kyso_p15_df {
	KYSO_P15_PRKDF = 0,
	KYSO_P15_PUKDF = 1,
	KYSO_P15_PUKDF_TRUSTED = 2,
	KYSO_P15_SKDF = 3,
	KYSO_P15_CDF = 4,
	KYSO_P15_CDF_TRUSTED = 5,
	KYSO_P15_CDF_USEFUL = 6,
	KYSO_P15_DODF = 7,
	KYSO_P15_AODF = 8,
	KYSO_P15_NDF = 9
};
#define KYSO_P15_ODF_MAX 4 /* files of one kind that are kept */
struct kyso_p15_odf {
	struct kyso_p15_path df[KYSO_P15_NDF][KYSO_P15_ODF_MAX];
	size_t n[KYSO_P15_NDF];
};
/* Parses the ODF: [n] { Path } entries, then padding. Kinds beyond 8 and
 * entries beyond KYSO_P15_ODF_MAX per kind are ignored. 0 or -1. */
int kyso_p15_odf(const uint8_t *p, size_t len, struct kyso_p15_odf *odf);

/* --- TokenInfo --------------------------------------------------------- */
enum {
	KYSO_P15_TOKEN_READONLY = 1 << 0,
	KYSO_P15_TOKEN_LOGIN_REQUIRED = 1 << 1,
	KYSO_P15_TOKEN_PRN = 1 << 2,
	KYSO_P15_TOKEN_EID = 1 << 3,
};
struct kyso_p15_tokeninfo {
	uint32_t version;
	uint8_t serial[32];
	size_t seriallen;
	char manufacturer[33];
	char label[33];
	uint32_t flags;
};
int kyso_p15_tokeninfo(const uint8_t *p, size_t len,
		       struct kyso_p15_tokeninfo *ti);

/* --- objects of the directory files ------------------------------------ */
/* The next object of a directory file; 0 at the end or at padding, -1 when
 * malformed. */
int kyso_p15_next(struct kyso_cur *c, struct kyso_asn1 *obj);

enum {
	KYSO_P15_OK = 0,
	KYSO_P15_OTHER = 1, /* a well-formed object of a kind not handled */
	KYSO_P15_BAD = -1,
};

struct kyso_p15_common {
	char label[KYSO_P15_LABEL_MAX + 1]; /* UTF-8, control chars as '?' */
	uint32_t flags;			    /* private(0), modifiable(1) */
	uint8_t auth_id[KYSO_P15_ID_MAX];
	size_t auth_idlen;
};

/* PinFlags (ISO/IEC 7816-15) */
enum {
	KYSO_P15_PIN_CASE_SENSITIVE = 1 << 0,
	KYSO_P15_PIN_LOCAL = 1 << 1,
	KYSO_P15_PIN_CHANGE_DISABLED = 1 << 2,
	KYSO_P15_PIN_UNBLOCK_DISABLED = 1 << 3,
	KYSO_P15_PIN_INITIALIZED = 1 << 4,
	KYSO_P15_PIN_NEEDS_PADDING = 1 << 5,
	KYSO_P15_PIN_UNBLOCKING = 1 << 6,
	KYSO_P15_PIN_SO = 1 << 7,
};
struct kyso_p15_pin {
	struct kyso_p15_common c;
	uint8_t auth_id[KYSO_P15_ID_MAX]; /* this PIN's id */
	size_t auth_idlen;
	uint32_t flags;
	uint32_t type; /* bcd(0), ascii-numeric(1), utf8(2), ... */
	uint32_t min_len, stored_len, max_len; /* max_len 0: not given */
	uint32_t reference;		       /* pinReference, default 0 */
	int pad_char;			       /* -1: not given */
	struct kyso_p15_path path;
};
/* An AODF object: KYSO_P15_OK for a PIN, KYSO_P15_OTHER for other
 * authentication objects, KYSO_P15_BAD when malformed. */
int kyso_p15_pin(const struct kyso_asn1 *obj, struct kyso_p15_pin *pin);

/* KeyUsageFlags */
enum {
	KYSO_P15_USE_ENCRYPT = 1 << 0,
	KYSO_P15_USE_DECRYPT = 1 << 1,
	KYSO_P15_USE_SIGN = 1 << 2,
	KYSO_P15_USE_SIGN_RECOVER = 1 << 3,
	KYSO_P15_USE_WRAP = 1 << 4,
	KYSO_P15_USE_UNWRAP = 1 << 5,
	KYSO_P15_USE_VERIFY = 1 << 6,
	KYSO_P15_USE_VERIFY_RECOVER = 1 << 7,
	KYSO_P15_USE_DERIVE = 1 << 8,
	KYSO_P15_USE_NONREPUDIATION = 1 << 9,
};
enum kyso_p15_keytype { KYSO_P15_KEY_RSA = 1, KYSO_P15_KEY_EC = 2 };
struct kyso_p15_key {
	struct kyso_p15_common c;
	enum kyso_p15_keytype type;
	uint8_t id[KYSO_P15_ID_MAX];
	size_t idlen;
	uint32_t usage;
	int native;	 /* default true */
	uint32_t access; /* KeyAccessFlags */
	int has_ref;
	uint32_t ref;		   /* keyReference */
	struct kyso_p15_path path; /* len 0 when the value is direct */
	uint32_t bits; /* modulusLength / field size; 0 when not given */
	const uint8_t *direct; /* public keys: the direct value's element */
	size_t directlen;
};
/* A PrKDF object: RSA or EC private key. */
int kyso_p15_prkey(const struct kyso_asn1 *obj, struct kyso_p15_key *key);
/* A PuKDF object: RSA or EC public key, by path or direct value. */
int kyso_p15_pubkey(const struct kyso_asn1 *obj, struct kyso_p15_key *key);

struct kyso_p15_cert {
	struct kyso_p15_common c;
	uint8_t id[KYSO_P15_ID_MAX];
	size_t idlen;
	int authority;
	struct kyso_p15_path path; /* len 0 when the value is direct */
	const uint8_t *direct;	   /* the certificate, when direct */
	size_t directlen;
};
/* A CDF object: X.509 certificate. */
int kyso_p15_cert(const struct kyso_asn1 *obj, struct kyso_p15_cert *cert);

/* A public key value as PKCS#15 files and direct values hold it: an
 * RSAPublicKey, a SubjectPublicKeyInfo, or one under [1] (RSAPublicKeyChoice
 * spki). RSA and named-curve EC only. CKR_OK, CKR_DEVICE_ERROR when
 * malformed or unsupported, CKR_HOST_MEMORY. */
CK_RV kyso_p15_decode_pubkey(const uint8_t *p, size_t len,
			     struct kyso_pubkey *pub);

/* --- encoders, for the objects kyso writes ------------------------------ */
/* DER of a PrKDF entry for an on-card key: label, flags private|modifiable,
 * authId, id, usage, native, accessFlags (sensitive, alwaysSensitive,
 * neverExtractable, local), keyReference, path and size. Appends to out. */
int kyso_p15_encode_prkey(const struct kyso_p15_key *key, struct kyso_buf *out);
/* DER of a PuKDF entry: the value by key->path when it has one, else
 * direct (the SubjectPublicKeyInfo or RSAPublicKey in key->direct). */
int kyso_p15_encode_pubkey(const struct kyso_p15_key *key,
			   struct kyso_buf *out);
/* DER of a CDF entry: label, id, path. */
int kyso_p15_encode_cert(const struct kyso_p15_cert *cert,
			 struct kyso_buf *out);

#endif
