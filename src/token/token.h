/* The token model: what a bound card looks like to the PKCS#11 face (labels,
 * flags, objects, private keys, PIN state) and the driver contract that fills
 * it. Drivers build objects with the kyso_token_add_* helpers; mechanisms the
 * card cannot do natively are composed in mech.c over a driver's raw ops. */
#ifndef KYSO_TOKEN_H
#define KYSO_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "kyso/pkcs11.h"
#include "reader/reader.h"

#define KYSO_MAX_ID 64

struct kyso_attr {
	CK_ATTRIBUTE_TYPE type;
	CK_ULONG len;
	void *val; /* owned; NULL when len == 0 */
};

struct kyso_object {
	CK_OBJECT_HANDLE handle; /* unique in the module's lifetime */
	CK_OBJECT_CLASS cls;
	struct kyso_attr *attrs;
	size_t nattrs;
	int priv;	  /* CKA_PRIVATE: listed only after C_Login */
	int key;	  /* index into token->keys, or -1 */
	uint32_t drv_ref; /* the driver's name for it (PIV: container tag) */
};

/* A private key the card holds. */
struct kyso_key {
	CK_KEY_TYPE type; /* CKK_RSA / CKK_EC */
	CK_ULONG bits;	  /* modulus bits, or curve bits */
	uint32_t ref;	  /* the driver's key reference (PIV: 9A, 9C, ...) */
	int always_auth;  /* PIN needed right before each use */
	int no_pin;	  /* usable without login (PIV 9E): CKA_PRIVATE false */
	int can_sign, can_decrypt;
	uint8_t id[KYSO_MAX_ID];
	size_t idlen;
	char label[64];
	struct kyso_pubkey pub; /* kyso_pubkey_present() when known */
};

/* What a key-pair generation asks of the driver. */
struct kyso_keygen {
	CK_KEY_TYPE type;
	CK_ULONG bits;	  /* RSA modulus bits or curve bits (256, 384) */
	uint32_t ref;	  /* key reference chosen by the driver if 0 */
	uint8_t id[KYSO_MAX_ID];
	size_t idlen;	  /* 0: the driver's default id for ref */
	char label[64];	  /* "" : the driver's default */
};

struct kyso_token {
	/* Filled by bind, NUL-terminated; padded with spaces when copied out. */
	char label[33];
	char manufacturer[33];
	char model[17];
	char serial[17];
	CK_FLAGS flags; /* CKF_LOGIN_REQUIRED, CKF_USER_PIN_INITIALIZED, ... */
	CK_ULONG min_pin, max_pin;
	/* What the card can do; the mechanism list is composed from these. */
	CK_ULONG rsa_min, rsa_max; /* 0 when no RSA */
	CK_ULONG ec_min, ec_max;   /* 0 when no EC */
	int can_decrypt, can_generate, can_write;
	int so_pin;		   /* the card has an SO credential (PUK, SO PIN) */

	/* PIN tries left as last answered by the card; -1 unknown. */
	int user_tries, user_max, so_tries, so_max;
	CK_USER_TYPE login; /* CKU_USER, CKU_SO, or KYSO_NOBODY */
	int ctx_login;	    /* CKU_CONTEXT_SPECIFIC done, for the next use */

	struct kyso_object **objs;
	size_t nobjs;
	struct kyso_key *keys;
	size_t nkeys;

	const struct kyso_driver *drv;
	struct kyso_card *card;
};

#define KYSO_NOBODY ((CK_USER_TYPE)-1)

/* The driver contract. All card I/O runs inside a transaction the token layer
 * opens (kyso_card_begin) and, when card->reset_seen, after driver->select.
 * Every function that gets a PIN must send it at most once and never retry;
 * tries_left gets the card's count after the attempt when it tells (-1 if it
 * does not). PINs arrive as given by the application. */
struct kyso_driver {
	const char *name;
	/* Cheap probe: ATR and/or SELECT; no PIN, no writes. 1 = mine. */
	int (*match)(struct kyso_card *card);
	/* Read public data; fill tok (labels, flags, objects, keys). */
	CK_RV (*bind)(struct kyso_card *card, struct kyso_token *tok);
	void (*unbind)(struct kyso_card *card);
	/* Re-select the application after a reset or another program's use. */
	CK_RV (*select)(struct kyso_card *card);

	/* who: CKU_USER, CKU_SO, CKU_CONTEXT_SPECIFIC (the user PIN again). */
	CK_RV (*login)(struct kyso_card *card, CK_USER_TYPE who,
		       const uint8_t *pin, size_t len, int *tries_left);
	CK_RV (*logout)(struct kyso_card *card);
	/* Tries left without spending one (VERIFY without data). */
	CK_RV (*pin_status)(struct kyso_card *card, CK_USER_TYPE who,
			    int *tries_left);
	CK_RV (*change_pin)(struct kyso_card *card, CK_USER_TYPE who,
			    const uint8_t *old, size_t oldlen,
			    const uint8_t *newp, size_t newlen,
			    int *tries_left);
	/* Unblock the user PIN and set it to newp, with the SO credential
	 * given to login(CKU_SO) (PIV: the PUK, which the card can only check
	 * inside RESET RETRY COUNTER, so login(CKU_SO) with a PUK keeps it in
	 * wiped memory until this call or logout). tries_left: the SO's. */
	CK_RV (*unblock)(struct kyso_card *card, const uint8_t *newp,
			 size_t newlen, int *tries_left);

	/* Raw private-key operations. RSA: in is k = modulus bytes, already
	 * padded; out gets k bytes. EC: in is the fitted hash (curve bytes);
	 * out gets r||s. */
	CK_RV (*sign)(struct kyso_card *card, const struct kyso_key *key,
		      const uint8_t *in, size_t inlen, uint8_t *out,
		      size_t *outlen);
	CK_RV (*decrypt)(struct kyso_card *card, const struct kyso_key *key,
			 const uint8_t *in, size_t inlen, uint8_t *out,
			 size_t *outlen);

	/* On-card key generation: picks the key reference (req->ref, else
	 * from req->id, else the driver's default; an id that names no key
	 * place is CKR_ATTRIBUTE_VALUE_INVALID), sets req->ref/id/label, fills
	 * pub, and adds the new key with kyso_token_add_key (it replaces what
	 * the token showed for that id) with the rules the card gives it. */
	CK_RV (*generate)(struct kyso_card *card, struct kyso_token *tok,
			  struct kyso_keygen *req, struct kyso_pubkey *pub);
	/* Store a certificate next to the key with this id; the token layer
	 * adds the object on success. *drv_ref gets the driver's name for it. */
	CK_RV (*write_cert)(struct kyso_card *card, struct kyso_token *tok,
			    const uint8_t *id, size_t idlen,
			    const uint8_t *der, size_t len, uint32_t *drv_ref);
	CK_RV (*delete_object)(struct kyso_card *card, struct kyso_token *tok,
			       const struct kyso_object *obj);
};

/* The driver table, in probing order. */
extern const struct kyso_driver *const kyso_drivers[];
extern const struct kyso_driver kyso_driver_piv;
extern const struct kyso_driver kyso_driver_epass2003;

/* Binds a connected card: probes drivers in order, binds the first that
 * matches. CKR_TOKEN_NOT_RECOGNIZED when none does. On success tok owns card. */
CK_RV kyso_token_bind(struct kyso_card *card, struct kyso_token **out);
void kyso_token_free(struct kyso_token *tok);

/* --- helpers drivers build their objects with ------------------------- */
/* A certificate (X.509, DER) with its public key object; subject, issuer,
 * serial and the key come from the certificate. Also fills the matching
 * kyso_key's pub and bits when a key with this id exists or comes later. */
CK_RV kyso_token_add_cert(struct kyso_token *tok, const uint8_t *id,
			  size_t idlen, const char *label, const uint8_t *der,
			  size_t len, uint32_t drv_ref);
/* A private key (and its public key object when no certificate gives one
 * and key->pub is known). Returns the key's index in *idx if idx != NULL. */
CK_RV kyso_token_add_key(struct kyso_token *tok, const struct kyso_key *key,
			 size_t *idx);
/* Looks up a key by id; NULL if none. */
struct kyso_key *kyso_token_key_by_id(struct kyso_token *tok,
				      const uint8_t *id, size_t idlen);
/* Removes an object (and nothing else) from the token's list. */
void kyso_token_remove_object(struct kyso_token *tok, CK_OBJECT_HANDLE h);
struct kyso_object *kyso_token_object(struct kyso_token *tok,
				      CK_OBJECT_HANDLE h);
/* An attribute of an object, or NULL. */
const struct kyso_attr *kyso_object_attr(const struct kyso_object *o,
					 CK_ATTRIBUTE_TYPE type);

/* --- card access, PIN state ------------------------------------------- */
/* Opens a transaction and re-selects when the card was reset. */
CK_RV kyso_token_begin(struct kyso_token *tok);
/* The same, but always selects: for operations that carry a PIN, so that a
 * PIN never reaches an application another program left selected. */
CK_RV kyso_token_begin_pin(struct kyso_token *tok);
/* After a driver operation answered rv: when rv looks like another program
 * left a different application selected (instruction or object unknown),
 * selects ours and returns 1 so the caller repeats the operation once.
 * Never used for operations that carry a PIN. */
int kyso_token_lost_app(struct kyso_token *tok, CK_RV rv);
void kyso_token_end(struct kyso_token *tok);
/* Record the card's answer to a PIN operation in the token flags
 * (CKF_USER_PIN_COUNT_LOW / FINAL_TRY / LOCKED and the SO ones). */
void kyso_token_note_tries(struct kyso_token *tok, CK_USER_TYPE who,
			   int tries_left, CK_RV rv);

#endif
