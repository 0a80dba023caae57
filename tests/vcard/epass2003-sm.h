/* The ePass2003's secure-messaging arithmetic, card side: session-key
 * derivation and cryptograms of the mutual authentication, command MAC
 * checking, response wrapping. Pure functions over libcrypto; the APDU
 * flow around them is profile-epass2003.c's. */
#ifndef KYSO_VCARD_EPASS2003_SM_H
#define KYSO_VCARD_EPASS2003_SM_H

#include <stddef.h>
#include <stdint.h>

/* How the card protects its SM: GET DATA 01 86 announces which. */
enum ep_sm_mode {
	EP_SM_DES,  /* 2-key 3DES encryption, retail (ISO 9797-1 alg 3) MAC */
	EP_SM_AES,  /* AES-128 encryption, AES CBC-MAC */
	EP_SM_FIPS, /* AES-128 encryption, AES-CMAC, SCP03-style KDF */
};

struct ep_session {
	enum ep_sm_mode mode;
	int open;
	uint8_t enc[16], mac[16];
	uint8_t icv[16]; /* 8 bytes used with DES */
};

/* Block size of the mode: 8 for DES, 16 otherwise. */
size_t ep_sm_block(enum ep_sm_mode mode);

/* Mutual authentication, step 1 (80 50): derives the session keys from
 * the static keys and both challenges, and computes the card cryptogram
 * (8 bytes) the host checks. 0 or -1. */
int ep_sm_derive(struct ep_session *s, const uint8_t kenc[16],
		 const uint8_t kmac[16], const uint8_t host[8],
		 const uint8_t card[8], uint8_t card_crypto[8]);

/* Step 2 (84 82 03 00): checks the host cryptogram and its MAC over the
 * command header; on success opens the session and sets the ICV. 0 ok,
 * -1 mismatch. */
int ep_sm_verify_host(struct ep_session *s, const uint8_t host[8],
		      const uint8_t card[8], const uint8_t *cmd16);

/* The host's side of step 2, for test probes: the 16 data bytes of
 * 84 82 03 00 (host cryptogram, MAC); opens the session like the card's
 * ep_sm_verify_host does. 0 or -1. */
int ep_sm_host_auth(struct ep_session *s, const uint8_t host[8],
		    const uint8_t card[8], uint8_t out16[16]);

/* The ICV is a big-endian counter bumped before every wrapped command. */
void ep_sm_bump_icv(struct ep_session *s);

/* MAC of a wrapped command: hdr is CLA INS P1 P2 as sent, tlv the 87/97
 * objects as sent (may be empty). case1 selects the FIPS special form
 * for INS 82 P1 01 without data. 0 or -1. */
int ep_sm_cmd_mac(const struct ep_session *s, const uint8_t hdr[4],
		  const uint8_t *tlv, size_t tlvlen, int case1, uint8_t mac[8]);

/* MAC of a response over its 87 and 99 objects. 0 or -1. */
int ep_sm_resp_mac(const struct ep_session *s, const uint8_t *tlv,
		   size_t tlvlen, uint8_t mac[8]);

/* CBC with a zero IV under the session encryption key, no padding (n is
 * a whole number of blocks). 0 or -1. */
int ep_sm_crypt(const struct ep_session *s, int enc, const uint8_t *in,
		size_t n, uint8_t *out);

/* 3DES-CBC (3-key, zero IV) of the 8-byte challenge under
 * SHA-1(PIN) || PIN length (4 bytes big-endian): what the host sends in
 * 00 82 01 8x and what E3/E5 install as the key. */
int ep_pin_key(const uint8_t *pin, size_t len, uint8_t key[24]);
int ep_pin_response(const uint8_t key[24], const uint8_t chal[8],
		    uint8_t out[8]);

#endif
