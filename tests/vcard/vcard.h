/* kyso-vcard: a virtual card for vsmartcard's vpcd. The core (vcard.c) speaks
 * vpcd's protocol, keeps the state file, the APDU log and counters, injects
 * latency and faults; each profile (profile-*.c) answers APDUs as one kind
 * of card would. */
#ifndef KYSO_VCARD_H
#define KYSO_VCARD_H

#include <stddef.h>
#include <stdint.h>

struct vcard;

/* The state file is text: one "name=value" per line, values in hex or
 * decimal, so tests can read counters with grep. A profile stores its
 * persistent state (keys, PINs, retry counters, files) through these. */
struct vcard_kv;
const char *vcard_kv_get(const struct vcard_kv *kv, const char *name);
/* Hex value into a malloc'd buffer; -1 if absent or not hex. */
int vcard_kv_get_hex(const struct vcard_kv *kv, const char *name,
		     uint8_t **out, size_t *len);
long vcard_kv_get_int(const struct vcard_kv *kv, const char *name, long def);
void vcard_kv_set(struct vcard_kv *kv, const char *name, const char *value);
void vcard_kv_set_hex(struct vcard_kv *kv, const char *name, const uint8_t *p,
		      size_t len);
void vcard_kv_set_int(struct vcard_kv *kv, const char *name, long v);
void vcard_kv_del(struct vcard_kv *kv, const char *name);

struct vcard_profile {
	const char *name;
	const uint8_t *atr;
	size_t atrlen;
	/* Builds the profile's state from kv (empty on first start: factory
	 * defaults, which the profile writes into kv). 0 or -1. */
	int (*load)(struct vcard *vc, struct vcard_kv *kv);
	/* Writes the persistent state into kv before the core saves it. */
	void (*save)(struct vcard *vc, struct vcard_kv *kv);
	/* Power off / on / reset: drop volatile state (selection, PIN
	 * verified, authentications). */
	void (*reset)(struct vcard *vc);
	/* Answers one command APDU (short or extended); writes response data
	 * and SW1 SW2 into resp (cap >= 65538) and returns its length. Sets
	 * vc->dirty when persistent state changed. */
	size_t (*apdu)(struct vcard *vc, const uint8_t *cmd, size_t len,
		       uint8_t *resp, size_t cap);
	void (*free)(struct vcard *vc);
};

struct vcard {
	const struct vcard_profile *profile;
	void *pstate; /* the profile's */
	int dirty;    /* persistent state changed: the core saves it */
	unsigned privop_delay_ms;
	/* Statistics the core keeps, written to the stats file. */
	unsigned long apdus, bytes_in, bytes_out, privops;
	unsigned long verify_fail; /* VERIFY answers 63Cx/6983, any profile */
};

/* A command APDU as the profiles see it (ISO 7816-3 cases 1 to 4, short
 * and extended); le is 1..65536 when has_le. */
struct vcard_apdu {
	uint8_t cla, ins, p1, p2;
	const uint8_t *data;
	size_t lc;
	size_t le;
	int has_le;
};
/* 0, or -1 for a malformed command. Never reads past len. */
int vcard_parse_apdu(const uint8_t *c, size_t len, struct vcard_apdu *a);

/* Writes data d (n bytes) and the status word into resp (cap bytes) and
 * returns the length; an answer that does not fit becomes a bare 6F00. */
size_t vcard_finish(uint8_t *resp, size_t cap, const uint8_t *d, size_t n,
		    uint16_t sw);

/* A response under construction, shared by the profiles; overflow is
 * sticky, so a profile checks it once at the end. */
struct vcard_wbuf {
	uint8_t *p;
	size_t len, cap;
	int overflow;
};
void vcard_put(struct vcard_wbuf *w, const void *p, size_t n);
void vcard_put_u8(struct vcard_wbuf *w, uint8_t v);

/* Profiles call this right before each private-key operation: it sleeps the
 * configured private-key latency and counts the operation. */
void vcard_privop(struct vcard *vc);

extern const struct vcard_profile vcard_profile_blank;
extern const struct vcard_profile vcard_profile_piv;
extern const struct vcard_profile vcard_profile_epass2003,
    vcard_profile_epass2003_aes, vcard_profile_epass2003_fips,
    vcard_profile_epass2003_espk;

#endif
