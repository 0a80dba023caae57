/* kyso-vcard PIV profile: the card edge of NIST SP 800-73-4 with the
 * algorithm identifiers of SP 800-78 — data objects, PIN and PUK, the card
 * management key (9B), on-card key generation and private-key operations,
 * over short APDUs with chaining and GET RESPONSE, or extended APDUs. */
#include "vcard.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* T=1 only (TD1 = 81), and historical bytes in compact-TLV form: card
 * capabilities 73 {C0 21 C0} (selection by full or partial DF name;
 * command chaining and extended Lc/Le) and the application identifier F9 {PIV
 * AID}: the PIV application is selected at reset. Not a YubiKey ATR, so host
 * stacks take the plain SP 800-73-4 paths; the AID makes OpenSC treat the card
 * as a PIV card with no known issues. The last byte is TCK, the XOR of T0 ..
 * the last historical byte. */
static const uint8_t piv_atr[] = {
    0x3B, 0x9F, 0x96, 0x81, 0x31, 0xFE, 0x45, 0x80, 0x73, 0xC0, 0x21, 0xC0,
    0xF9, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x92,
};

static const uint8_t piv_aid[] = {0xA0, 0x00, 0x00, 0x03, 0x08, 0x00,
				  0x00, 0x10, 0x00, 0x01, 0x00};
#define PIV_RID_LEN 5

/* Status words */
#define SW_OK		   0x9000
#define SW_WRONG_LENGTH	   0x6700
#define SW_SECURITY	   0x6982
#define SW_BLOCKED	   0x6983
#define SW_CONDITIONS	   0x6985
#define SW_WRONG_DATA	   0x6A80
#define SW_NOT_FOUND	   0x6A82
#define SW_NO_SPACE	   0x6A84
#define SW_WRONG_P1P2	   0x6A86
#define SW_REF_NOT_FOUND   0x6A88
#define SW_INS_UNSUPPORTED 0x6D00
#define SW_CLA_UNSUPPORTED 0x6E00
#define SW_UNKNOWN	   0x6F00

/* SP 800-78-4 algorithm identifiers (0x16, RSA 4096, is a later addition
 * host stacks already know). */
#define ALG_3DES_ECB_OLD 0x00
#define ALG_3DES	 0x03
#define ALG_RSA3072	 0x05
#define ALG_RSA1024	 0x06
#define ALG_RSA2048	 0x07
#define ALG_AES128	 0x08
#define ALG_AES192	 0x0A
#define ALG_AES256	 0x0C
#define ALG_ECCP256	 0x11
#define ALG_ECCP384	 0x14
#define ALG_RSA4096	 0x16

#define KEY_MGM 0x9B
#define REF_PIN 0x80
#define REF_PUK 0x81

#define PIN_TRIES 3
#define PUK_TRIES 3

/* Data objects live in 5FC101 .. 5FC123; index = last byte. */
#define OBJ_FIRST     0x5FC101u
#define OBJ_LAST      0x5FC123u
#define OBJ_CHUID     0x5FC102u
#define OBJ_CCC	      0x5FC107u
#define OBJ_HISTORY   0x5FC10Cu
#define OBJ_DISCOVERY 0x7Eu
#define OBJ_RETIRED_1 0x5FC10Du
#define NOBJ	      (OBJ_LAST - OBJ_FIRST + 1)
#define OBJ_MAX	      16384 /* more than the largest SP 800-73-4 container */

#define NKEYS	   24 /* 9A 9C 9D 9E and the twenty retired 82..95 */
#define NRETIRED   20
#define CHAIN_MAX  (OBJ_MAX + 64)
#define RESP_MAX   65536
#define SHORT_LE   256
#define EXT_LE_MAX 65536

struct piv_key {
	uint8_t alg; /* 0 = empty slot */
	EVP_PKEY *pk;
};

enum auth_step { AUTH_IDLE, AUTH_WITNESS_SENT, AUTH_CHALLENGE_SENT };

struct piv {
	/* persistent */
	uint8_t pin[8], puk[8]; /* as sent: digits padded with FF */
	int pin_tries, puk_tries;
	uint8_t mgm_alg;
	uint8_t mgm_key[32];
	size_t mgm_len;
	uint8_t *obj[NOBJ]; /* contents of the 53 template; NULL = absent */
	size_t obj_len[NOBJ];
	struct piv_key key[NKEYS];

	/* volatile security status */
	int pin_ok;	/* PIN verified in this session: 9A, 9D, 82..95 */
	int pin_always; /* VERIFY just before, only reads since: 9C */
	int mgm_ok;	/* 9B authenticated */
	enum auth_step auth;
	uint8_t auth_alg;
	uint8_t auth_secret[16]; /* witness or challenge we sent */
	size_t auth_len;

	/* transport */
	uint8_t *chain;
	size_t chain_len;
	int chaining;
	uint8_t chain_hdr[3]; /* INS P1 P2 of the chain */
	uint8_t *out;	      /* response being served through GET RESPONSE */
	size_t out_len, out_off;
};

/* ------------------------------------------------------------------ */
/* BER-TLV */

static size_t len_size(size_t n)
{
	return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 4;
}

static void put_hdr(struct vcard_wbuf *w, unsigned tag, size_t n)
{
	if (tag > 0xFFFF)
		vcard_put_u8(w, (uint8_t)(tag >> 16));
	if (tag > 0xFF)
		vcard_put_u8(w, (uint8_t)(tag >> 8));
	vcard_put_u8(w, (uint8_t)tag);
	if (n < 0x80) {
		vcard_put_u8(w, (uint8_t)n);
	} else if (n < 0x100) {
		vcard_put_u8(w, 0x81);
		vcard_put_u8(w, (uint8_t)n);
	} else if (n < 0x10000) {
		vcard_put_u8(w, 0x82);
		vcard_put_u8(w, (uint8_t)(n >> 8));
		vcard_put_u8(w, (uint8_t)n);
	} else {
		vcard_put_u8(w, 0x83);
		vcard_put_u8(w, (uint8_t)(n >> 16));
		vcard_put_u8(w, (uint8_t)(n >> 8));
		vcard_put_u8(w, (uint8_t)n);
	}
}

static void put_tlv(struct vcard_wbuf *w, unsigned tag, const void *v, size_t n)
{
	put_hdr(w, tag, n);
	vcard_put(w, v, n);
}

static size_t tlv_size(unsigned tag, size_t n)
{
	return (tag > 0xFFFF ? 3 : tag > 0xFF ? 2 : 1) + len_size(n) + n;
}

/* Reads one BER-TLV from [*p, end): tags up to 3 bytes, definite lengths up
 * to 3 bytes. 0, or -1 if malformed or running past end. */
static int tlv_next(const uint8_t **p, const uint8_t *end, unsigned *tag,
		    const uint8_t **val, size_t *len)
{
	const uint8_t *q = *p;
	unsigned t;
	size_t n, i, nb;

	if (q >= end)
		return -1;
	t = *q++;
	if ((t & 0x1F) == 0x1F) {
		for (i = 0;; i++) {
			if (q >= end || i == 2)
				return -1;
			t = t << 8 | *q;
			if (!(*q++ & 0x80))
				break;
		}
	}
	if (q >= end)
		return -1;
	n = *q++;
	if (n & 0x80) {
		nb = n & 0x7F;
		if (nb == 0 || nb > 3 || (size_t)(end - q) < nb)
			return -1;
		for (n = 0, i = 0; i < nb; i++)
			n = n << 8 | *q++;
	}
	if ((size_t)(end - q) < n)
		return -1;
	*tag = t;
	*val = q;
	*len = n;
	*p = q + n;
	return 0;
}

/* Finds tag among the TLVs directly inside [p, p+n). 1 found, 0 absent,
 * -1 malformed. */
static int tlv_find(const uint8_t *p, size_t n, unsigned want,
		    const uint8_t **val, size_t *len)
{
	const uint8_t *end = p + n;
	unsigned tag;
	const uint8_t *v;
	size_t l;

	while (p < end) {
		if (tlv_next(&p, end, &tag, &v, &l) < 0)
			return -1;
		if (tag == want) {
			*val = v;
			*len = l;
			return 1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* keys, slots and objects */

static int slot_index(uint8_t ref)
{
	switch (ref) {
	case 0x9A:
		return 0;
	case 0x9C:
		return 1;
	case 0x9D:
		return 2;
	case 0x9E:
		return 3;
	default:
		if (ref >= 0x82 && ref <= 0x95)
			return 4 + (ref - 0x82);
		return -1;
	}
}

static uint8_t slot_ref(int i)
{
	static const uint8_t first[4] = {0x9A, 0x9C, 0x9D, 0x9E};

	return i < 4 ? first[i] : (uint8_t)(0x82 + i - 4);
}

static unsigned obj_index(unsigned tag)
{
	return tag - OBJ_FIRST;
}

/* Objects read only after VERIFY (SP 800-73-4 part 1, table 2). */
static int obj_needs_pin(unsigned tag)
{
	return tag == 0x5FC103 || tag == 0x5FC108 || tag == 0x5FC109 ||
	       tag == 0x5FC121 || tag == 0x5FC123;
}

static int is_rsa(uint8_t alg)
{
	return alg == ALG_RSA1024 || alg == ALG_RSA2048 || alg == ALG_RSA3072 ||
	       alg == ALG_RSA4096;
}

static int rsa_bits(uint8_t alg)
{
	switch (alg) {
	case ALG_RSA1024:
		return 1024;
	case ALG_RSA2048:
		return 2048;
	case ALG_RSA3072:
		return 3072;
	case ALG_RSA4096:
		return 4096;
	}
	return 0;
}

static size_t ec_size(uint8_t alg)
{
	return alg == ALG_ECCP256 ? 32 : alg == ALG_ECCP384 ? 48 : 0;
}

static const EVP_CIPHER *mgm_cipher(uint8_t alg, size_t *keylen, size_t *block)
{
	switch (alg) {
	case ALG_3DES_ECB_OLD:
	case ALG_3DES:
		*keylen = 24;
		*block = 8;
		return EVP_des_ede3_ecb();
	case ALG_AES128:
		*keylen = 16;
		*block = 16;
		return EVP_aes_128_ecb();
	case ALG_AES192:
		*keylen = 24;
		*block = 16;
		return EVP_aes_192_ecb();
	case ALG_AES256:
		*keylen = 32;
		*block = 16;
		return EVP_aes_256_ecb();
	}
	return NULL;
}

/* One ECB pass under the management key, no padding (n is a whole number of
 * blocks). 0 or -1. */
static int mgm_crypt(const struct piv *s, int enc, const uint8_t *in, size_t n,
		     uint8_t *out)
{
	size_t keylen, block;
	const EVP_CIPHER *c = mgm_cipher(s->mgm_alg, &keylen, &block);
	EVP_CIPHER_CTX *ctx;
	int l1 = 0, l2 = 0, ok;

	if (!c || s->mgm_len != keylen || n % block || n > 64)
		return -1;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -1;
	ok = EVP_CipherInit_ex(ctx, c, NULL, s->mgm_key, NULL, enc) == 1 &&
	     EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
	     EVP_CipherUpdate(ctx, out, &l1, in, (int)n) == 1 &&
	     EVP_CipherFinal_ex(ctx, out + l1, &l2) == 1 &&
	     (size_t)(l1 + l2) == n;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* factory state */

static const uint8_t default_mgm[24] = {1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4,
					5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8};

static void pad_ref(const char *digits, uint8_t out[8])
{
	size_t n = strlen(digits);

	memset(out, 0xFF, 8);
	memcpy(out, digits, n);
}

static int obj_set(struct piv *s, unsigned tag, const uint8_t *p, size_t n)
{
	unsigned i = obj_index(tag);
	uint8_t *copy = NULL;

	if (n) {
		copy = malloc(n);
		if (!copy)
			return -1;
		memcpy(copy, p, n);
	}
	free(s->obj[i]);
	s->obj[i] = copy;
	s->obj_len[i] = n;
	return 0;
}

/* CHUID (SP 800-73-4 part 1, 3.1.2) with a FASC-N of agency code 9999 (a
 * non-federal issuer) and the card's random GUID, which host stacks take as
 * the serial number. The signature is empty: this card has no issuer. */
static int make_chuid(struct piv *s)
{
	static const uint8_t fascn[25] = {
	    0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE,
	    0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08, 0x42, 0x10,
	    0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB};
	uint8_t guid[16], buf[96];
	struct vcard_wbuf w = {buf, 0, sizeof(buf), 0};

	if (RAND_bytes(guid, sizeof(guid)) != 1)
		return -1;
	guid[6] = (uint8_t)((guid[6] & 0x0F) | 0x40); /* RFC 4122 v4 */
	guid[8] = (uint8_t)((guid[8] & 0x3F) | 0x80);
	put_tlv(&w, 0x30, fascn, sizeof(fascn));
	put_tlv(&w, 0x34, guid, sizeof(guid));
	put_tlv(&w, 0x35, "20401231", 8);
	put_tlv(&w, 0x3E, NULL, 0);
	put_tlv(&w, 0xFE, NULL, 0);
	if (w.overflow)
		return -1;
	return obj_set(s, OBJ_CHUID, buf, w.len);
}

/* CCC (part 1, 3.1.1): card identifier = GSC-RID, manufacturer FF, card type
 * 02 (Java Card), 14 random bytes; versions 21; data model 10 (PIV). */
static int make_ccc(struct piv *s)
{
	uint8_t id[21] = {0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02};
	uint8_t buf[96];
	struct vcard_wbuf w = {buf, 0, sizeof(buf), 0};
	static const uint8_t v21 = 0x21, pkcs15 = 0x00, model = 0x10;

	if (RAND_bytes(id + 7, 14) != 1)
		return -1;
	put_tlv(&w, 0xF0, id, sizeof(id));
	put_tlv(&w, 0xF1, &v21, 1);
	put_tlv(&w, 0xF2, &v21, 1);
	put_tlv(&w, 0xF3, NULL, 0);
	put_tlv(&w, 0xF4, &pkcs15, 1);
	put_tlv(&w, 0xF5, &model, 1);
	put_tlv(&w, 0xF6, NULL, 0);
	put_tlv(&w, 0xF7, NULL, 0);
	put_tlv(&w, 0xFA, NULL, 0);
	put_tlv(&w, 0xFB, NULL, 0);
	put_tlv(&w, 0xFC, NULL, 0);
	put_tlv(&w, 0xFD, NULL, 0);
	put_tlv(&w, 0xFE, NULL, 0);
	if (w.overflow)
		return -1;
	return obj_set(s, OBJ_CCC, buf, w.len);
}

static int factory(struct piv *s)
{
	pad_ref("123456", s->pin);
	pad_ref("12345678", s->puk);
	s->pin_tries = PIN_TRIES;
	s->puk_tries = PUK_TRIES;
	s->mgm_alg = ALG_3DES;
	memcpy(s->mgm_key, default_mgm, sizeof(default_mgm));
	s->mgm_len = sizeof(default_mgm);
	if (make_chuid(s) < 0 || make_ccc(s) < 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* persistence through the core, one entry a line, for tests to read or
 * preset: pin, puk (hex, FF-padded), pin_tries, puk_tries, mgm_alg (03, 08,
 * 0A or 0C as decimal) and mgm_key (hex), obj_5fc1xx (hex contents of the
 * 53 template), key_XX (hex DER private key) and key_XX_alg. */

/* Chained blocks may hold a PIN: wiped before they go. */
static void chain_drop(struct piv *s)
{
	if (s->chain)
		OPENSSL_clear_free(s->chain, s->chain_len);
	s->chain = NULL;
	s->chain_len = 0;
	s->chaining = 0;
}

static void free_volatile(struct piv *s)
{
	chain_drop(s);
	s->out_len = s->out_off = 0;
	s->pin_ok = s->pin_always = s->mgm_ok = 0;
	s->auth = AUTH_IDLE;
	OPENSSL_cleanse(s->auth_secret, sizeof(s->auth_secret));
}

static int get_fixed(const struct vcard_kv *kv, const char *name, uint8_t *out,
		     size_t want_min, size_t want_max, size_t *got)
{
	uint8_t *p = NULL;
	size_t n = 0;

	if (vcard_kv_get_hex(kv, name, &p, &n) < 0)
		return -1;
	if (n < want_min || n > want_max) {
		OPENSSL_clear_free(p, n);
		return -1;
	}
	memcpy(out, p, n);
	OPENSSL_clear_free(p, n);
	if (got)
		*got = n;
	return 0;
}

static int load_keys(struct piv *s, const struct vcard_kv *kv)
{
	char name[32];
	int i;

	for (i = 0; i < NKEYS; i++) {
		uint8_t *der = NULL;
		size_t n = 0;
		const unsigned char *q;
		long alg;

		snprintf(name, sizeof(name), "key_%02x_alg", slot_ref(i));
		alg = vcard_kv_get_int(kv, name, 0);
		if (alg == 0)
			continue;
		if (!is_rsa((uint8_t)alg) && !ec_size((uint8_t)alg))
			return -1;
		snprintf(name, sizeof(name), "key_%02x", slot_ref(i));
		if (vcard_kv_get_hex(kv, name, &der, &n) < 0)
			return -1;
		q = der;
		s->key[i].pk = d2i_AutoPrivateKey(NULL, &q, (long)n);
		OPENSSL_clear_free(der, n);
		if (!s->key[i].pk)
			return -1;
		s->key[i].alg = (uint8_t)alg;
	}
	return 0;
}

static void piv_save(struct vcard *vc, struct vcard_kv *kv)
{
	struct piv *s = vc->pstate;
	char name[32];
	unsigned t;
	int i;

	if (!s)
		return;
	vcard_kv_set_hex(kv, "pin", s->pin, sizeof(s->pin));
	vcard_kv_set_hex(kv, "puk", s->puk, sizeof(s->puk));
	vcard_kv_set_int(kv, "pin_tries", s->pin_tries);
	vcard_kv_set_int(kv, "puk_tries", s->puk_tries);
	vcard_kv_set_int(kv, "mgm_alg", s->mgm_alg);
	vcard_kv_set_hex(kv, "mgm_key", s->mgm_key, s->mgm_len);

	for (t = OBJ_FIRST; t <= OBJ_LAST; t++) {
		unsigned i2 = obj_index(t);

		snprintf(name, sizeof(name), "obj_%06x", t);
		if (s->obj[i2])
			vcard_kv_set_hex(kv, name, s->obj[i2], s->obj_len[i2]);
		else
			vcard_kv_del(kv, name);
	}

	for (i = 0; i < NKEYS; i++) {
		unsigned char *der = NULL;
		int n;

		snprintf(name, sizeof(name), "key_%02x", slot_ref(i));
		if (!s->key[i].pk) {
			vcard_kv_del(kv, name);
			snprintf(name, sizeof(name), "key_%02x_alg",
				 slot_ref(i));
			vcard_kv_del(kv, name);
			continue;
		}
		n = i2d_PrivateKey(s->key[i].pk, &der);
		if (n <= 0)
			continue; /* keeps the previous value */
		vcard_kv_set_hex(kv, name, der, (size_t)n);
		OPENSSL_clear_free(der, (size_t)n);
		snprintf(name, sizeof(name), "key_%02x_alg", slot_ref(i));
		vcard_kv_set_int(kv, name, s->key[i].alg);
	}
}

static void piv_free(struct vcard *vc)
{
	struct piv *s = vc->pstate;
	unsigned i;

	if (!s)
		return;
	free_volatile(s);
	free(s->out);
	for (i = 0; i < NOBJ; i++)
		free(s->obj[i]);
	for (i = 0; i < NKEYS; i++)
		EVP_PKEY_free(s->key[i].pk);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
	vc->pstate = NULL;
}

static int piv_load(struct vcard *vc, struct vcard_kv *kv)
{
	struct piv *s = calloc(1, sizeof(*s));
	char name[32];
	size_t keylen, block;
	unsigned t;

	if (!s)
		return -1;
	vc->pstate = s;
	s->out = malloc(RESP_MAX);
	if (!s->out)
		goto fail;

	if (!vcard_kv_get(kv, "pin")) {
		if (factory(s) < 0)
			goto fail;
		piv_save(vc, kv);
		vc->dirty = 1;
		return 0;
	}

	if (get_fixed(kv, "pin", s->pin, 8, 8, NULL) < 0 ||
	    get_fixed(kv, "puk", s->puk, 8, 8, NULL) < 0)
		goto fail;
	s->pin_tries = (int)vcard_kv_get_int(kv, "pin_tries", PIN_TRIES);
	s->puk_tries = (int)vcard_kv_get_int(kv, "puk_tries", PUK_TRIES);
	if (s->pin_tries < 0 || s->pin_tries > 15 || s->puk_tries < 0 ||
	    s->puk_tries > 15)
		goto fail;
	s->mgm_alg = (uint8_t)vcard_kv_get_int(kv, "mgm_alg", ALG_3DES);
	if (get_fixed(kv, "mgm_key", s->mgm_key, 16, 32, &s->mgm_len) < 0 ||
	    !mgm_cipher(s->mgm_alg, &keylen, &block) || keylen != s->mgm_len)
		goto fail;

	for (t = OBJ_FIRST; t <= OBJ_LAST; t++) {
		uint8_t *p = NULL;
		size_t n = 0;

		snprintf(name, sizeof(name), "obj_%06x", t);
		if (!vcard_kv_get(kv, name))
			continue;
		if (vcard_kv_get_hex(kv, name, &p, &n) < 0 || n > OBJ_MAX) {
			free(p);
			goto fail;
		}
		if (n == 0) {
			free(p);
			continue;
		}
		s->obj[obj_index(t)] = p;
		s->obj_len[obj_index(t)] = n;
	}
	if (load_keys(s, kv) < 0)
		goto fail;
	return 0;

fail:
	piv_free(vc);
	return -1;
}

static void piv_reset(struct vcard *vc)
{
	struct piv *s = vc->pstate;

	if (s)
		free_volatile(s);
}

/* ------------------------------------------------------------------ */
/* SELECT */

/* Answers only the PIV AID, selected by any prefix of at least the RID
 * (what cards do for partial names): others get 6A82, and the PIV
 * application stays selected (it is the default application). */
static uint16_t cmd_select(uint8_t p1, uint8_t p2, const uint8_t *d, size_t n,
			   struct vcard_wbuf *w)
{
	static const uint8_t pix[] = {0x00, 0x00, 0x10, 0x00, 0x01, 0x00};
	static const char label[] = "kyso virtual PIV";
	static const uint8_t algs[] = {
	    ALG_3DES,	 ALG_AES128,  ALG_AES192,  ALG_AES256,	ALG_RSA1024,
	    ALG_RSA2048, ALG_RSA3072, ALG_RSA4096, ALG_ECCP256, ALG_ECCP384};
	size_t inner, ac, i;

	if (p1 != 0x04 || n < PIV_RID_LEN || n > sizeof(piv_aid) ||
	    memcmp(d, piv_aid, n) != 0)
		return SW_NOT_FOUND;
	if (p2 != 0x00)
		return SW_WRONG_P1P2;

	ac = sizeof(algs) * 3 + 2;
	inner = tlv_size(0x4F, sizeof(pix)) +
		tlv_size(0x79, tlv_size(0x4F, PIV_RID_LEN)) +
		tlv_size(0x50, strlen(label)) + tlv_size(0xAC, ac);
	put_hdr(w, 0x61, inner);
	put_tlv(w, 0x4F, pix, sizeof(pix));
	put_hdr(w, 0x79, tlv_size(0x4F, PIV_RID_LEN));
	put_tlv(w, 0x4F, piv_aid, PIV_RID_LEN);
	put_tlv(w, 0x50, label, strlen(label));
	put_hdr(w, 0xAC, ac);
	for (i = 0; i < sizeof(algs); i++)
		put_tlv(w, 0x80, &algs[i], 1);
	put_tlv(w, 0x06, NULL, 0);
	return SW_OK;
}

/* ------------------------------------------------------------------ */
/* GET DATA / PUT DATA */

/* Parses "5C len tag" at the start of d; returns the tag, sets *rest.
 * 0 on a malformed or unknown tag list. */
static unsigned parse_tag_list(const uint8_t *d, size_t n, const uint8_t **rest)
{
	const uint8_t *p = d, *v;
	unsigned tag, t = 0;
	size_t l, i;

	if (tlv_next(&p, d + n, &tag, &v, &l) < 0 || tag != 0x5C || l < 1 ||
	    l > 3)
		return 0;
	for (i = 0; i < l; i++)
		t = t << 8 | v[i];
	*rest = p;
	return t;
}

static unsigned retired_certs(const struct piv *s)
{
	unsigned i, n = 0;

	/* Hosts read retired containers 1..C1: count up to the highest one
	 * in use, so none is hidden by a gap. */
	for (i = 0; i < NRETIRED; i++)
		if (s->obj[obj_index(OBJ_RETIRED_1 + i)])
			n = i + 1;
	return n;
}

static uint16_t cmd_get_data(struct piv *s, uint8_t p1, uint8_t p2,
			     const uint8_t *d, size_t n, struct vcard_wbuf *w)
{
	const uint8_t *rest;
	unsigned tag;

	if (p1 != 0x3F || p2 != 0xFF)
		return SW_WRONG_P1P2;
	tag = parse_tag_list(d, n, &rest);
	if (!tag || rest != d + n)
		return SW_WRONG_DATA;

	if (tag == OBJ_DISCOVERY) {
		static const uint8_t policy[2] = {0x40, 0x00}; /* PIV PIN */

		put_hdr(w, 0x7E,
			tlv_size(0x4F, sizeof(piv_aid)) + tlv_size(0x5F2F, 2));
		put_tlv(w, 0x4F, piv_aid, sizeof(piv_aid));
		put_tlv(w, 0x5F2F, policy, sizeof(policy));
		return SW_OK;
	}
	if (tag == OBJ_HISTORY) {
		uint8_t on = (uint8_t)retired_certs(s), off = 0;

		put_hdr(w, 0x53, 3 + 3 + 2);
		put_tlv(w, 0xC1, &on, 1);
		put_tlv(w, 0xC2, &off, 1);
		put_tlv(w, 0xFE, NULL, 0);
		return SW_OK;
	}
	if (tag < OBJ_FIRST || tag > OBJ_LAST)
		return SW_NOT_FOUND;
	if (obj_needs_pin(tag) && !s->pin_ok)
		return SW_SECURITY;
	if (!s->obj[obj_index(tag)])
		return SW_NOT_FOUND;
	put_tlv(w, 0x53, s->obj[obj_index(tag)], s->obj_len[obj_index(tag)]);
	return SW_OK;
}

static uint16_t cmd_put_data(struct vcard *vc, struct piv *s, uint8_t p1,
			     uint8_t p2, const uint8_t *d, size_t n)
{
	const uint8_t *rest, *v;
	unsigned tag, t53;
	size_t l;

	if (p1 != 0x3F || p2 != 0xFF)
		return SW_WRONG_P1P2;
	if (!s->mgm_ok)
		return SW_SECURITY;
	tag = parse_tag_list(d, n, &rest);
	if (!tag)
		return SW_WRONG_DATA;
	/* Key History is the card's own account of its retired certs. */
	if (tag < OBJ_FIRST || tag > OBJ_LAST || tag == OBJ_HISTORY)
		return SW_WRONG_DATA;
	if (tlv_next(&rest, d + n, &t53, &v, &l) < 0 || t53 != 0x53 ||
	    rest != d + n)
		return SW_WRONG_DATA;
	if (l > OBJ_MAX)
		return SW_NO_SPACE;
	if (obj_set(s, tag, v, l) < 0)
		return SW_NO_SPACE;
	vc->dirty = 1;
	return SW_OK;
}

/* ------------------------------------------------------------------ */
/* PIN and PUK */

/* PIN: 6..8 ASCII digits, padded with FF to 8 bytes. */
static int pin_format_ok(const uint8_t *p)
{
	size_t i, n = 0;

	while (n < 8 && p[n] != 0xFF)
		n++;
	if (n < 6)
		return 0;
	for (i = 0; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	for (i = n; i < 8; i++)
		if (p[i] != 0xFF)
			return 0;
	return 1;
}

/* PUK: 6..8 bytes of any value but FF, padded with FF. */
static int puk_format_ok(const uint8_t *p)
{
	size_t i, n = 0;

	while (n < 8 && p[n] != 0xFF)
		n++;
	for (i = n; i < 8; i++)
		if (p[i] != 0xFF)
			return 0;
	return n >= 6;
}

static uint16_t tries_sw(int tries)
{
	return (uint16_t)(0x63C0 | (tries & 0x0F));
}

/* Compares against a reference with a retry counter. SW_OK on match (the
 * counter is reset), 63Cx or 6983 otherwise. */
static uint16_t check_ref(struct vcard *vc, const uint8_t *ref, int *tries,
			  int max, const uint8_t *given)
{
	if (*tries <= 0)
		return SW_BLOCKED;
	if (CRYPTO_memcmp(ref, given, 8) != 0) {
		(*tries)--;
		vc->dirty = 1;
		return tries_sw(*tries);
	}
	if (*tries != max) {
		*tries = max;
		vc->dirty = 1;
	}
	return SW_OK;
}

static uint16_t cmd_verify(struct vcard *vc, struct piv *s, uint8_t p1,
			   uint8_t p2, const uint8_t *d, size_t n)
{
	uint16_t sw;

	if (p2 != REF_PIN)
		return (p2 == REF_PUK || p2 == 0x00) ? SW_REF_NOT_FOUND
						     : SW_WRONG_P1P2;
	if (p1 == 0xFF) {
		if (n != 0)
			return SW_WRONG_LENGTH;
		s->pin_ok = s->pin_always = 0;
		return SW_OK;
	}
	if (p1 != 0x00)
		return SW_WRONG_P1P2;
	if (n == 0) {
		if (s->pin_ok)
			return SW_OK;
		return s->pin_tries > 0 ? tries_sw(s->pin_tries) : SW_BLOCKED;
	}
	if (n != 8)
		return SW_WRONG_DATA;
	if (s->pin_tries <= 0)
		return SW_BLOCKED;
	if (!pin_format_ok(d)) {
		s->pin_ok = s->pin_always = 0;
		return SW_WRONG_DATA;
	}
	sw = check_ref(vc, s->pin, &s->pin_tries, PIN_TRIES, d);
	s->pin_ok = s->pin_always = sw == SW_OK;
	return sw;
}

static uint16_t cmd_change_ref(struct vcard *vc, struct piv *s, uint8_t p1,
			       uint8_t p2, const uint8_t *d, size_t n)
{
	int is_pin = p2 == REF_PIN;
	uint8_t *ref;
	int *tries;
	uint16_t sw;

	if (p1 != 0x00 || (p2 != REF_PIN && p2 != REF_PUK))
		return p2 == 0x00 ? SW_REF_NOT_FOUND : SW_WRONG_P1P2;
	if (n != 16)
		return SW_WRONG_DATA;
	ref = is_pin ? s->pin : s->puk;
	tries = is_pin ? &s->pin_tries : &s->puk_tries;
	if (*tries <= 0)
		return SW_BLOCKED;
	if (is_pin ? !pin_format_ok(d + 8) : !puk_format_ok(d + 8))
		return SW_WRONG_DATA;
	sw = check_ref(vc, ref, tries, is_pin ? PIN_TRIES : PUK_TRIES, d);
	if (is_pin)
		s->pin_ok = sw == SW_OK;
	if (sw != SW_OK) {
		if (is_pin)
			s->pin_always = 0;
		return sw;
	}
	memcpy(ref, d + 8, 8);
	vc->dirty = 1;
	return SW_OK;
}

static uint16_t cmd_reset_retry(struct vcard *vc, struct piv *s, uint8_t p1,
				uint8_t p2, const uint8_t *d, size_t n)
{
	uint16_t sw;

	if (p1 != 0x00 || p2 != REF_PIN)
		return SW_WRONG_P1P2;
	if (n != 16)
		return SW_WRONG_DATA;
	if (s->puk_tries <= 0)
		return SW_BLOCKED;
	if (!pin_format_ok(d + 8))
		return SW_WRONG_DATA;
	sw = check_ref(vc, s->puk, &s->puk_tries, PUK_TRIES, d);
	if (sw != SW_OK)
		return sw;
	memcpy(s->pin, d + 8, 8);
	s->pin_tries = PIN_TRIES;
	s->pin_ok = s->pin_always = 0;
	vc->dirty = 1;
	return SW_OK;
}

/* ------------------------------------------------------------------ */
/* GENERAL AUTHENTICATE */

struct dyn_auth {
	const uint8_t *v[6]; /* tags 80..85 */
	size_t l[6];
	int has[6];
};

/* Parses 7C { 80..85 } (each at most once); 0 or -1. */
static int parse_dyn_auth(const uint8_t *d, size_t n, struct dyn_auth *a)
{
	const uint8_t *p = d, *v, *end;
	unsigned tag;
	size_t l;

	memset(a, 0, sizeof(*a));
	if (tlv_next(&p, d + n, &tag, &v, &l) < 0 || tag != 0x7C || p != d + n)
		return -1;
	p = v;
	end = v + l;
	while (p < end) {
		const uint8_t *iv;
		size_t il;

		if (tlv_next(&p, end, &tag, &iv, &il) < 0)
			return -1;
		if (tag < 0x80 || tag > 0x85 || a->has[tag - 0x80])
			return -1;
		a->has[tag - 0x80] = 1;
		a->v[tag - 0x80] = iv;
		a->l[tag - 0x80] = il;
	}
	return 0;
}

static void put_dyn_auth(struct vcard_wbuf *w, unsigned tag, const uint8_t *v,
			 size_t n)
{
	put_hdr(w, 0x7C, tlv_size(tag, n));
	put_tlv(w, tag, v, n);
}

static uint16_t auth_fail(struct piv *s)
{
	s->auth = AUTH_IDLE;
	s->mgm_ok = 0;
	OPENSSL_cleanse(s->auth_secret, sizeof(s->auth_secret));
	return SW_SECURITY;
}

/* Card management key: the single-step witness flow (7C{80 00}, then
 * 7C{80 witness [, 81 challenge]}) and the external-authenticate flow
 * (7C{81 00}, then 7C{82 response}); a bare 7C{81 00} also serves hosts
 * that use it as GET CHALLENGE. */
static uint16_t auth_mgm(struct piv *s, uint8_t alg, const struct dyn_auth *a,
			 struct vcard_wbuf *w)
{
	size_t keylen, block;
	uint8_t buf[64];
	enum auth_step prev = s->auth;

	if (alg == ALG_3DES_ECB_OLD && s->mgm_alg == ALG_3DES)
		alg = ALG_3DES;
	if (alg != s->mgm_alg || !mgm_cipher(alg, &keylen, &block))
		return SW_WRONG_P1P2;
	s->auth = AUTH_IDLE;

	/* step 1 of the witness flow */
	if (a->has[0] && a->l[0] == 0 && !a->has[1] && !a->has[2]) {
		if (RAND_bytes(s->auth_secret, (int)block) != 1 ||
		    mgm_crypt(s, 1, s->auth_secret, block, buf) < 0)
			return SW_UNKNOWN;
		s->auth_len = block;
		s->auth = AUTH_WITNESS_SENT;
		s->mgm_ok = 0;
		put_dyn_auth(w, 0x80, buf, block);
		return SW_OK;
	}
	/* step 2: decrypted witness, optionally a challenge for the card */
	if (a->has[0] && a->l[0] > 0) {
		if (prev != AUTH_WITNESS_SENT || a->l[0] != s->auth_len ||
		    CRYPTO_memcmp(a->v[0], s->auth_secret, s->auth_len) != 0)
			return auth_fail(s);
		OPENSSL_cleanse(s->auth_secret, sizeof(s->auth_secret));
		if (a->has[1]) {
			if (a->l[1] == 0 || a->l[1] % block ||
			    a->l[1] > sizeof(buf) ||
			    mgm_crypt(s, 1, a->v[1], a->l[1], buf) < 0) {
				s->mgm_ok = 0;
				return SW_WRONG_DATA;
			}
			put_dyn_auth(w, 0x82, buf, a->l[1]);
		}
		s->mgm_ok = 1;
		return SW_OK;
	}
	/* challenge request */
	if (a->has[1] && a->l[1] == 0 && !a->has[0] && !a->has[2]) {
		if (RAND_bytes(s->auth_secret, (int)block) != 1)
			return SW_UNKNOWN;
		s->auth_len = block;
		s->auth = AUTH_CHALLENGE_SENT;
		s->mgm_ok = 0;
		put_dyn_auth(w, 0x81, s->auth_secret, block);
		return SW_OK;
	}
	/* response to our challenge */
	if (a->has[2] && a->l[2] > 0 && !a->has[0] && !a->has[1]) {
		if (prev != AUTH_CHALLENGE_SENT || a->l[2] != s->auth_len ||
		    mgm_crypt(s, 1, s->auth_secret, s->auth_len, buf) < 0 ||
		    CRYPTO_memcmp(buf, a->v[2], s->auth_len) != 0)
			return auth_fail(s);
		OPENSSL_cleanse(s->auth_secret, sizeof(s->auth_secret));
		s->mgm_ok = 1;
		return SW_OK;
	}
	return SW_WRONG_DATA;
}

/* RSA: the raw private-key operation on a modulus-sized input. */
static uint16_t op_rsa(struct piv_key *k, const uint8_t *in, size_t n,
		       struct vcard_wbuf *w)
{
	size_t mod = (size_t)rsa_bits(k->alg) / 8, outlen = mod;
	uint8_t out[512];
	EVP_PKEY_CTX *ctx;
	int ok;

	if (n != mod)
		return SW_WRONG_DATA;
	ctx = EVP_PKEY_CTX_new(k->pk, NULL);
	if (!ctx)
		return SW_UNKNOWN;
	ok = EVP_PKEY_decrypt_init(ctx) == 1 &&
	     EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) == 1 &&
	     EVP_PKEY_decrypt(ctx, out, &outlen, in, n) == 1 && outlen == mod;
	EVP_PKEY_CTX_free(ctx);
	if (!ok)
		return SW_WRONG_DATA; /* input not below the modulus */
	put_dyn_auth(w, 0x82, out, outlen);
	OPENSSL_cleanse(out, sizeof(out));
	return SW_OK;
}

/* ECDSA over the input as the digest, which must be exactly the field size;
 * the answer is a DER Ecdsa-Sig-Value. */
static uint16_t op_ecdsa(struct piv_key *k, const uint8_t *in, size_t n,
			 struct vcard_wbuf *w)
{
	uint8_t sig[128];
	size_t siglen = sizeof(sig);
	EVP_PKEY_CTX *ctx;
	int ok;

	if (n != ec_size(k->alg))
		return SW_WRONG_DATA;
	ctx = EVP_PKEY_CTX_new(k->pk, NULL);
	if (!ctx)
		return SW_UNKNOWN;
	ok = EVP_PKEY_sign_init(ctx) == 1 &&
	     EVP_PKEY_sign(ctx, sig, &siglen, in, n) == 1;
	EVP_PKEY_CTX_free(ctx);
	if (!ok)
		return SW_UNKNOWN;
	put_dyn_auth(w, 0x82, sig, siglen);
	return SW_OK;
}

/* ECDH (key establishment): the x-coordinate of d * Q for the host's point
 * 04||X||Y. */
static uint16_t op_ecdh(struct piv_key *k, const uint8_t *pt, size_t n,
			struct vcard_wbuf *w)
{
	uint8_t z[64];
	size_t zlen = sizeof(z);
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	uint16_t sw = SW_WRONG_DATA;

	if (n != 1 + 2 * ec_size(k->alg) || pt[0] != 0x04)
		return SW_WRONG_DATA;
	peer = EVP_PKEY_new();
	if (!peer || EVP_PKEY_copy_parameters(peer, k->pk) != 1 ||
	    EVP_PKEY_set1_encoded_public_key(peer, pt, n) != 1)
		goto out;
	ctx = EVP_PKEY_CTX_new(k->pk, NULL);
	if (!ctx || EVP_PKEY_derive_init(ctx) != 1 ||
	    EVP_PKEY_derive_set_peer(ctx, peer) != 1 ||
	    EVP_PKEY_derive(ctx, z, &zlen) != 1)
		goto out;
	put_dyn_auth(w, 0x82, z, zlen);
	sw = SW_OK;
out:
	OPENSSL_cleanse(z, sizeof(z));
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	return sw;
}

/* Sign or decrypt with an asymmetric key: 7C { 82 00, 81 input } or, for EC
 * key agreement, 7C { 82 00, 85 point }. Security status per key: 9E none,
 * 9C a VERIFY right before, good for one use ("PIN always"), others the
 * PIN verified in this session. */
static uint16_t auth_key(struct vcard *vc, struct piv *s, uint8_t alg,
			 uint8_t ref, const struct dyn_auth *a, struct vcard_wbuf *w)
{
	int i = slot_index(ref);
	struct piv_key *k;

	if (i < 0)
		return SW_WRONG_P1P2;
	k = &s->key[i];
	if (!k->pk)
		return SW_REF_NOT_FOUND;
	if (alg != k->alg)
		return SW_WRONG_P1P2;
	if (ref == 0x9C) {
		if (!s->pin_always)
			return SW_SECURITY;
		s->pin_always = 0;
	} else if (ref != 0x9E && !s->pin_ok) {
		return SW_SECURITY;
	}
	if (!a->has[2] || a->l[2] != 0 || a->has[0] || a->has[3] || a->has[4] ||
	    a->has[1] == a->has[5])
		return SW_WRONG_DATA;

	if (a->has[1]) {
		if (is_rsa(k->alg)) {
			if (a->l[1] != (size_t)rsa_bits(k->alg) / 8)
				return SW_WRONG_DATA;
			vcard_privop(vc);
			return op_rsa(k, a->v[1], a->l[1], w);
		}
		if (a->l[1] != ec_size(k->alg))
			return SW_WRONG_DATA;
		vcard_privop(vc);
		return op_ecdsa(k, a->v[1], a->l[1], w);
	}
	if (is_rsa(k->alg))
		return SW_WRONG_DATA;
	vcard_privop(vc);
	return op_ecdh(k, a->v[5], a->l[5], w);
}

static uint16_t cmd_general_auth(struct vcard *vc, struct piv *s, uint8_t p1,
				 uint8_t p2, const uint8_t *d, size_t n,
				 struct vcard_wbuf *w)
{
	struct dyn_auth a;

	if (parse_dyn_auth(d, n, &a) < 0) {
		s->auth = AUTH_IDLE;
		return SW_WRONG_DATA;
	}
	if (p2 == KEY_MGM)
		return auth_mgm(s, p1, &a, w);
	s->auth = AUTH_IDLE;
	return auth_key(vc, s, p1, p2, &a, w);
}

/* ------------------------------------------------------------------ */
/* GENERATE ASYMMETRIC KEY PAIR */

static uint16_t put_public(struct piv_key *k, struct vcard_wbuf *w)
{
	uint16_t sw = SW_UNKNOWN;

	if (is_rsa(k->alg)) {
		BIGNUM *bn = NULL, *be = NULL;
		uint8_t nb[512], eb[8];
		int nl, el;

		if (EVP_PKEY_get_bn_param(k->pk, OSSL_PKEY_PARAM_RSA_N, &bn) !=
			1 ||
		    EVP_PKEY_get_bn_param(k->pk, OSSL_PKEY_PARAM_RSA_E, &be) !=
			1 ||
		    BN_num_bytes(bn) > (int)sizeof(nb) ||
		    BN_num_bytes(be) > (int)sizeof(eb))
			goto rsa_out;
		nl = BN_bn2bin(bn, nb);
		el = BN_bn2bin(be, eb);
		put_hdr(w, 0x7F49,
			tlv_size(0x81, (size_t)nl) +
			    tlv_size(0x82, (size_t)el));
		put_tlv(w, 0x81, nb, (size_t)nl);
		put_tlv(w, 0x82, eb, (size_t)el);
		sw = SW_OK;
	rsa_out:
		BN_free(bn);
		BN_free(be);
	} else {
		uint8_t pt[1 + 2 * 48];
		size_t pl = 0;

		if (EVP_PKEY_get_octet_string_param(
			k->pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt,
			sizeof(pt), &pl) != 1 ||
		    pl != 1 + 2 * ec_size(k->alg))
			return SW_UNKNOWN;
		put_hdr(w, 0x7F49, tlv_size(0x86, pl));
		put_tlv(w, 0x86, pt, pl);
		sw = SW_OK;
	}
	return sw;
}

static uint16_t cmd_generate(struct vcard *vc, struct piv *s, uint8_t p1,
			     uint8_t p2, const uint8_t *d, size_t n,
			     struct vcard_wbuf *w)
{
	const uint8_t *p = d, *v, *algp;
	unsigned tag;
	size_t l, algl;
	int i = slot_index(p2);
	uint8_t alg;
	EVP_PKEY *pk;

	if (p1 != 0x00 || i < 0)
		return SW_WRONG_P1P2;
	if (!s->mgm_ok)
		return SW_SECURITY;
	/* AC { 80 alg [, AA pin policy, AB touch policy] }: policies are a
	 * vendor's; a plain PIV card ignores them. */
	if (tlv_next(&p, d + n, &tag, &v, &l) < 0 || tag != 0xAC ||
	    p != d + n || tlv_find(v, l, 0x80, &algp, &algl) != 1 || algl != 1)
		return SW_WRONG_DATA;
	alg = algp[0];
	if (is_rsa(alg))
		pk =
		    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)rsa_bits(alg));
	else if (alg == ALG_ECCP256)
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else if (alg == ALG_ECCP384)
		pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	else
		return SW_WRONG_DATA;
	if (!pk)
		return SW_UNKNOWN;
	EVP_PKEY_free(s->key[i].pk);
	s->key[i].pk = pk;
	s->key[i].alg = alg;
	vc->dirty = 1;
	return put_public(&s->key[i], w);
}

/* ------------------------------------------------------------------ */
/* dispatch and transport */

static uint16_t dispatch(struct vcard *vc, struct piv *s, const uint8_t *hdr,
			 const uint8_t *d, size_t n, struct vcard_wbuf *w)
{
	uint8_t ins = hdr[1], p1 = hdr[2], p2 = hdr[3];

	/* A pending management-key exchange survives only its own next
	 * step. "PIN always" survives only reads between the VERIFY and the
	 * 9C operation: OpenSC reads the Discovery object at the start of
	 * every transaction, but any other key use, write or selection in
	 * between ends it. */
	if (ins != 0x87)
		s->auth = AUTH_IDLE;
	if (ins != 0x20 && ins != 0xCB && !(ins == 0x87 && p2 == 0x9C))
		s->pin_always = 0;

	switch (ins) {
	case 0xA4:
		return cmd_select(p1, p2, d, n, w);
	case 0xCB:
		return cmd_get_data(s, p1, p2, d, n, w);
	case 0xDB:
		return cmd_put_data(vc, s, p1, p2, d, n);
	case 0x20:
		return cmd_verify(vc, s, p1, p2, d, n);
	case 0x24:
		return cmd_change_ref(vc, s, p1, p2, d, n);
	case 0x2C:
		return cmd_reset_retry(vc, s, p1, p2, d, n);
	case 0x87:
		return cmd_general_auth(vc, s, p1, p2, d, n, w);
	case 0x47:
		return cmd_generate(vc, s, p1, p2, d, n, w);
	default:
		/* YubiKey extensions (FD version, F8 serial, F7 metadata,
		 * FB reset, FE import, FF set management key, F9 attest,
		 * FA retries) included: this is a plain PIV card. */
		return SW_INS_UNSUPPORTED;
	}
}

/* Serves from s->out: at most le bytes now, 61xx while more remain. */
static size_t serve(struct piv *s, size_t le, uint8_t *resp, size_t cap)
{
	size_t left = s->out_len - s->out_off, n = left < le ? left : le;
	size_t rest = left - n;
	const uint8_t *p = s->out + s->out_off;
	uint16_t sw = SW_OK;

	s->out_off += n;
	if (rest)
		sw = (uint16_t)(0x6100 | (rest >= 256 ? 0 : rest));
	else
		s->out_len = s->out_off = 0;
	return vcard_finish(resp, cap, p, n, sw);
}

static size_t piv_apdu(struct vcard *vc, const uint8_t *cmd, size_t len,
		       uint8_t *resp, size_t cap)
{
	struct piv *s = vc->pstate;
	struct vcard_apdu a;
	struct vcard_wbuf w;
	const uint8_t *data;
	size_t n;
	uint16_t sw;

	if (vcard_parse_apdu(cmd, len, &a) < 0) {
		s->out_len = s->out_off = 0;
		return vcard_finish(resp, cap, NULL, 0, SW_WRONG_LENGTH);
	}
	if (a.cla != 0x00 && a.cla != 0x10) {
		s->out_len = s->out_off = 0;
		return vcard_finish(resp, cap, NULL, 0, SW_CLA_UNSUPPORTED);
	}

	if (a.ins == 0xC0 && a.cla == 0x00) {
		if (a.p1 || a.p2)
			return vcard_finish(resp, cap, NULL, 0, SW_WRONG_P1P2);
		if (s->out_len == 0)
			return vcard_finish(resp, cap, NULL, 0, SW_CONDITIONS);
		return serve(s, a.has_le ? a.le : SHORT_LE, resp, cap);
	}
	s->out_len = s->out_off = 0;

	/* Command chaining (ISO 7816-4 5.1.1.1): CLA bit 0x10 on every block
	 * but the last; the card acknowledges each and acts on the whole. */
	if (s->chaining && memcmp(s->chain_hdr, cmd + 1, 3) != 0)
		chain_drop(s);
	if (a.cla & 0x10) {
		uint8_t *p;

		if (s->chain_len + a.lc > CHAIN_MAX) {
			chain_drop(s);
			return vcard_finish(resp, cap, NULL, 0, SW_WRONG_LENGTH);
		}
		p = realloc(s->chain, s->chain_len + a.lc + 1);
		if (!p)
			return vcard_finish(resp, cap, NULL, 0, SW_UNKNOWN);
		s->chain = p;
		if (a.lc)
			memcpy(p + s->chain_len, a.data, a.lc);
		s->chain_len += a.lc;
		s->chaining = 1;
		memcpy(s->chain_hdr, cmd + 1, 3);
		return vcard_finish(resp, cap, NULL, 0, SW_OK);
	}
	data = a.data;
	n = a.lc;
	if (s->chaining) {
		uint8_t *p;

		if (s->chain_len + a.lc > CHAIN_MAX)
			p = NULL;
		else
			p = realloc(s->chain, s->chain_len + a.lc + 1);
		if (!p) {
			chain_drop(s);
			return vcard_finish(resp, cap, NULL, 0, SW_WRONG_LENGTH);
		}
		s->chain = p;
		if (a.lc)
			memcpy(p + s->chain_len, a.data, a.lc);
		s->chain_len += a.lc;
		data = s->chain;
		n = s->chain_len;
	}

	w.p = s->out;
	w.len = 0;
	w.cap = RESP_MAX;
	w.overflow = 0;
	sw = dispatch(vc, s, cmd, data, n, &w);

	if (s->chaining)
		chain_drop(s);
	if (w.overflow)
		return vcard_finish(resp, cap, NULL, 0, SW_UNKNOWN);
	if (sw != SW_OK || w.len == 0)
		return vcard_finish(resp, cap, NULL, 0, sw);

	/* A short command without Le still gets its answer: as much as a
	 * short Le could ask for, the rest through GET RESPONSE. */
	s->out_len = w.len;
	s->out_off = 0;
	return serve(s, a.has_le ? a.le : SHORT_LE, resp, cap);
}

const struct vcard_profile vcard_profile_piv = {
    .name = "piv",
    .atr = piv_atr,
    .atrlen = sizeof(piv_atr),
    .load = piv_load,
    .save = piv_save,
    .reset = piv_reset,
    .apdu = piv_apdu,
    .free = piv_free,
};
