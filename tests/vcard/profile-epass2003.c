/* kyso-vcard ePass2003 profiles: a Feitian ePass2003 (FTCOS) as OpenSC's
 * card-epass2003.c and pkcs15-epass2003.c drive it — secure messaging,
 * file system, challenge-based PIN keys, RSA/EC key pairs — in four
 * variants:
 *
 *   epass2003       3DES SM (SCP01-like), OpenSC pkcs15-init layout
 *   epass2003-aes   AES SM (AES CBC-MAC), OpenSC pkcs15-init layout
 *   epass2003-fips  FIPS unit: AES SM, AES-CMAC, SCP03-style KDF
 *   epass2003-espk  AES SM, CA-issued "ENTERSAFE-ESPK" vendor layout (the
 *                   state comes from tests/fixtures/epass2003/espk-build)
 *
 * ---------------------------------------------------------------------
 * Protocol notes for the host driver (every byte below is what OpenSC
 * 0.23..0.27 sends or checks; "(vcard)" marks choices no public source
 * pins down)
 *
 * Mode: GET DATA 00 CA 01 86 00, always plain. FIPS when the answer
 *   starts 80 01 01 and has 87 01 01 at offset 32; byte [2] = 01 -> AES
 *   SM, else 3DES (vcard answers 80 01 02 for the 3DES unit); byte [14] =
 *   84 and [16] = 00 would mean no SM (none of our variants).
 *   GET DATA 01 80: 8-byte serial (wrapped once SM is up).
 * Mutual authentication (plain APDUs):
 *   80 50 00 00 08 <host challenge> Le: 28 bytes (29 FIPS) = 10 bytes
 *   diversification, key version, SCP id [, i], card challenge (at 12;
 *   13 FIPS), card cryptogram (at 20; 21 FIPS).
 *   Keys: static ENC = MAC = 01 02 .. 10 unless changed by 80 E3 type
 *   01/02. Non-FIPS: d = card[4..8] host[0..4] card[0..4] host[4..8];
 *   S-ENC = E(Kenc, d), S-MAC = E(Kmac, d), E = 2-key 3DES-ECB or AES-ECB.
 *   Card cryptogram = CBC(S-ENC, 0, host||card||80 00..)[16..24]; the host
 *   sends CBC(S-ENC, 0, card||host||80..)[16..24]. FIPS: SCP03 KDF block
 *   (11 zero bytes, constant, 00, L=0080, 01, host, card) through
 *   AES-CMAC: constant 04 -> S-ENC, 06 -> S-MAC (static keys); constant
 *   00 / L=0040 under S-ENC -> card cryptogram, 01 -> host cryptogram.
 *   84 82 03 00 10 <host cryptogram> <MAC>: MAC over 84 82 03 00 10 ||
 *   cryptogram (|| 80 00 00): 3DES-CBC(S-MAC, 0)[8..16], AES-CBC[0..8],
 *   or FIPS AES-CMAC of the 13 bytes [0..8]. That MAC, zero-extended, is
 *   the ICV. Both steps reset the security state (OpenSC's logout is a
 *   new mutual authentication).
 * Wrapped command: CLA |= 0C. Data = [87 L 01 <CBC(S-ENC, 0, data||80..)>]
 *   [97 01|02 Le] 8E 08 <MAC>. Before each command the ICV (8-byte
 *   counter for DES, 16 for AES) is incremented; MAC input = CLA INS P1 P2
 *   80 00.. (one block) || 87.. || 97.. (|| 80 00.. unless CMAC):
 *   3DES retail MAC from IV = ICV; AES CBC-MAC from IV = ICV; FIPS CMAC
 *   with the ICV XORed into the first block. FIPS special case: 0C 82 01
 *   8x without data is MACed as AES-CMAC(S-MAC, 0C 82 01 8x) with the
 *   ICV as CBC IV (what OpenSC 0.23 sends and real FIPS units accept;
 *   OpenSC >= 0.24 drops the ICV and fails there, #3034).
 *   A wrong MAC, a missing session or a broken cryptogram: plain 6988,
 *   and the session is closed (OpenSC then re-authenticates and resends
 *   once). Plain commands other than GET DATA and the two mutual-auth
 *   ones while SM is on: 6982 (vcard).
 * Wrapped response: [87 L 01 <CBC(S-ENC, 0, data||80..)>] 99 02 SW 8E 08
 *   MAC, outer SW = SW, also for errors. MAC = same algorithm over
 *   87..99 || 80 00.., IV = the command's ICV (not bumped again). As the
 *   real firmware does (OpenSC's comment in
 *   epass2003_check_response_mac_and_sw), 87's length 80..FF is written
 *   as ONE byte (87 89 01 ..), not 87 81 89; above FF as 82 hi lo. FIPS
 *   response MAC: AES-CMAC from IV = ICV (vcard: OpenSC does not check
 *   it, no public source says what the card does). Responses are never
 *   split: no 61xx, no GET RESPONSE; up to 0xD8 plain bytes per READ
 *   BINARY is what OpenSC asks for, RSA-2048 goes over extended APDUs.
 *
 * File system: SELECT 00 A4 00 00 02 FID (child of the current DF, the DF
 *   itself, its parent or a sibling; 3F00 from anywhere) or 00 A4 04 00
 *   <DF name>; P2 00 -> FCI 6F .. (the FCP the file was created with:
 *   80 size, 82 type, 83 FID, 84 name, 85, 86 eight ACL bytes, 87), P2 0C
 *   -> none. Private-key files (82 = 11/13) cannot be selected (6982);
 *   OpenSC fakes their FCI. Types: 38 DF, 01 transparent EF, 04 linear
 *   variable EF (records, 82 05 04 00 00 40 nn with nn the record
 *   count), 10 BSO, 11 RSA private, 12 RSA public, 13 EC private, 14 EC
 *   public key. READ/UPDATE BINARY 00 B0/D6 (short read past the end:
 *   the bytes there are, 9000), READ/UPDATE/APPEND RECORD 00 B2/DC/E2
 *   (P2 04), CREATE FILE 00 E0 00 00 62.., DELETE FILE 00 E4 00 00 02 FID
 *   (FID 3F00 = everything), LIST 80 34.
 *   ACL bytes, per file type (OpenSC's sec_attr_to_acl_entry): DF
 *   [0]=list [1]=create [3]=delete; EF [0]=read [1]=update [2]=append
 *   [3]=delete; private key [1]=update [2]=use [3]=delete; public key
 *   [0]=read [1]=update [2]=use [3]=delete. FF = never; otherwise high
 *   nibble 8 (!=), 9 (>=), A (<), B (==) compares the card's security
 *   level with the low nibble. A PIN key grants the level in byte 7 of
 *   its E3 header (OpenSC: user 06, SO 08, erase "magic PIN" 0F). Level
 *   0 after reset and after mutual authentication.
 * PIN keys: 80 E3 00 00 <type kid useAC modifyAC xx xx xx level FF
 *   (max<<4|max)> <value>: type 04 = 24-byte SHA-1(PIN)||len32be, type 06
 *   = raw PIN (ISO VERIFY 00 20 00 kid), 01/02 = static SM ENC/MAC key.
 *   A new kid installs freely (OpenSC's erase depends on it); replacing
 *   one needs its modifyAC. Keys live in the current DF; a check looks in
 *   the current DF, then its ancestors.
 *   Check: 00 84 00 00 08 (challenge, one use), then 00 82 01 (80|kid) 08
 *   3DES-CBC(key, 0, challenge): 9000 (counter back to max) or 63Cx with
 *   x tries left, 6983 once blocked. 00 82 01 (80|kid) without data:
 *   always 63Cx (x = tries left, also right after a good PIN: OpenSC
 *   reads it then). Change/unblock: 80 E5 04 kid 19 (max<<4|max) ||
 *   24-byte key, needs the key's modifyAC (a good old PIN, or the SO /
 *   PUK key whose level satisfies it), and resets the counter.
 * Keys: 00 46 00 00 07 <01 RSA|02 EC> <bits:2> <private FID:2> <public
 *   FID:2> (both files created before, 82 = 11/12 or 13/14; private
 *   file's update ACL); 80 B4 02 00 02 <pub FID> 00 -> RSA modulus, 80 B4
 *   00 00 .. -> 58 20 X 59 20 Y. Import: 80 E7 02|03 00 <FID:2> n|d.
 *   MSE 00 22 41 B8 (RSA) / B6 (EC) 07 80 01 {84|91|92} 81 02 <FID>:
 *   OpenSC names key n as 2900 + 20*n; on the ESPK layout the raw key
 *   handle A0xx. PSO 00 2A 80 86 <modulus-sized input> (extended) ->
 *   raw RSA; 00 2A 9E 9A <hash> -> ECDSA r||s, 64 bytes (vcard: OpenSC
 *   passes the card's bytes through as PKCS#11 raw r||s). Key use checks
 *   the private file's use ACL; the security environment survives until
 *   reset or the next MSE.
 *
 * ENTERSAFE-ESPK layout (PR OpenSC#3835): DF 3F00/2003, FCI name
 * "ENTERSAFE-ESPK" zero-padded to 16; EF 6F01 = 30-byte records: FID
 * (LE, FFFF = directory label), directory[10], name[13], ACL, used (LE),
 * allocated (LE); files certNNNN/pubkNNNN/prvkNNNN = PKCS#11 attribute
 * streams (u32 LE type, u32 LE length, value); attribute 0x80000100 =
 * key handle (u32 LE, A0xx private, 80xx public); containermap = 32-byte
 * header then 24-byte records {private handle LE32, public handle LE32,
 * zeros}; tokeninfo starts with the 32-byte blank-padded label; cardid =
 * serial bytes. Private keys are internal objects named by their handle
 * (not selectable). PIN = kid 1 in DF 2003. The FIDs of the files, the
 * index's ACL byte, the directory names and everything in tokeninfo past
 * the label are the fixture's inventions; PR #3835 reads CKA_SIGN as
 * 0x107 and CKA_SIGN_RECOVER as 0x108, the fixture writes the PKCS#11
 * values (0x108, 0x109).
 *
 * OpenSC 0.23 (Debian 12) against these cards, measured:
 *   - pkcs15-init only with -p pkcs15+onepin after -E: the default
 *     profile gives the MF create ACL 9F, which only the erase "magic
 *     PIN" (level F) meets; OpenSC itself says "ePass2003 doesn't support
 *     SO-PIN and SO-PUK" (#1669). The PUK (kid 02) is the SO-level key.
 *   - 3DES SM needs OpenSSL's legacy provider on the host (single DES);
 *     without it OpenSC's SM wrap fails and opensc-tool crashes.
 *   - pkcs15-tool --change-pin sends 80 E5 without checking the old PIN:
 *     6982 (fixed upstream by Feitian in #2759); unblock only checks the
 *     PUK and sets no new PIN.
 *   - FIPS: about one session in 64 OpenSC's CMAC subkeys are wrong
 *     (#2734): its 0C 82 01 8x gets 6988, OpenSC re-authenticates and
 *     is logged out.
 *   - One pkcs11-tool signature (a whole process: bind, login, sign):
 *     86 APDUs.
 *
 * ---------------------------------------------------------------------
 * State file (name=value, hex unless noted), for tests to read:
 *   serial                 8-byte serial (GET DATA 01 80)
 *   getdata_86             the mode answer
 *   sm_kenc, sm_kmac       static SM keys
 *   files                  comma-separated paths, parents first; a path
 *                          is the FIDs from 3F00, e.g. 3F0050152F00
 *   f.PATH.fcp             the FCP contents (what follows 62 L)
 *   f.PATH.data            transparent content / raw public key
 *   f.PATH.recs            records, each as one length byte and the bytes
 *   f.PATH.rsa_n/.rsa_e/.rsa_d, f.PATH.ec (DER)  key material
 *   f.PATH.internal        1: an internal object (ESPK key handle)
 *   keys                   comma-separated DFPATH.KID (KID two hex digits)
 *   k.DFPATH.KID.hdr       the 10-byte E3 header as installed
 *   k.DFPATH.KID.value     the key (24-byte PIN hash for type 04)
 *   k.DFPATH.KID.tries     tries left (decimal)
 *   k.DFPATH.KID.max       tries allowed (decimal)
 * After OpenSC's pkcs15-init the user PIN is usually k.3F005015.01 or
 * .02 (its PUK the next kid); grep "^k\..*\.tries=" for counters.
 */
#include "epass2003-sm.h"
#include "vcard.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* ATRs of real units (OpenSC issues #2572, #2843, #3834) */

/* 2012 unit, COS 01 00 11, OpenSC-initialised (... 03 90 00). */
static const uint8_t atr_des[] = {
    0x3B, 0x9F, 0x95, 0x81, 0x31, 0xFE, 0x9F, 0x00, 0x66, 0x46, 0x53, 0x05,
    0x01, 0x00, 0x11, 0x71, 0xDF, 0x00, 0x00, 0x03, 0x90, 0x00, 0x80};
/* 2022 unit, COS 23 00 25, OpenSC-initialised. */
static const uint8_t atr_aes[] = {
    0x3B, 0x9F, 0x95, 0x81, 0x31, 0xFE, 0x9F, 0x00, 0x66, 0x46, 0x53, 0x05,
    0x23, 0x00, 0x25, 0x71, 0xDF, 0x00, 0x00, 0x03, 0x90, 0x00, 0x96};
/* FIPS unit, COS 10 11 31 (#2843). */
static const uint8_t atr_fips[] = {
    0x3B, 0x9F, 0x95, 0x81, 0x31, 0xFE, 0x9F, 0x00, 0x66, 0x46, 0x53, 0x05,
    0x10, 0x11, 0x31, 0x71, 0xDF, 0x00, 0x00, 0x03, 0x90, 0x00, 0xA0};
/* CA-personalised ENTERSAFE-ESPK unit (#3834). */
static const uint8_t atr_espk[] = {
    0x3B, 0x9F, 0x95, 0x81, 0x31, 0xFE, 0x9F, 0x00, 0x66, 0x46, 0x53, 0x05,
    0x01, 0x00, 0x11, 0x71, 0xDF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x13};

enum variant { V_DES, V_AES, V_FIPS, V_ESPK };

#define SW_OK		0x9000
#define SW_WRONG_LENGTH 0x6700
#define SW_SECURITY	0x6982
#define SW_BLOCKED	0x6983
#define SW_CONDITIONS	0x6985
#define SW_SM_WRONG	0x6988
#define SW_WRONG_DATA	0x6A80
#define SW_FUNC		0x6A81
#define SW_NOT_FOUND	0x6A82
#define SW_NO_RECORD	0x6A83
#define SW_NO_SPACE	0x6A84
#define SW_WRONG_P1P2	0x6A86
#define SW_REF_MISSING	0x6A88
#define SW_FILE_EXISTS	0x6A89
#define SW_NAME_EXISTS	0x6A8A
#define SW_OFFSET	0x6B00
#define SW_INS		0x6D00
#define SW_CLA		0x6E00
#define SW_UNKNOWN	0x6F00

#define FT_DF	  0x38
#define FT_EF	  0x01
#define FT_BSO	  0x10
#define FT_RSA	  0x11
#define FT_RSAPUB 0x12
#define FT_EC	  0x13
#define FT_ECPUB  0x14

#define MAX_FCP	   128
#define MAX_EF	   32768
#define MAX_RECS   64
#define MAX_KEYVAL 64
#define MAX_DEPTH  6
#define RESP_MAX   4096
#define STATIC_KEY                                                             \
	"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0A\x0B\x0C\x0D\x0E\x0F\x10"

struct ep_key {
	uint8_t hdr[10];
	uint8_t val[MAX_KEYVAL];
	size_t vlen;
	int tries, max;
	struct ep_key *next;
};

struct ep_file {
	uint16_t fid;
	uint8_t type;
	uint8_t fcp[MAX_FCP];
	size_t fcplen;
	uint8_t acl[8];
	uint8_t name[16];
	size_t namelen;
	size_t size; /* transparent EF: bytes; key files: bits */
	uint8_t *data;
	size_t datalen;
	uint8_t *rec[MAX_RECS];
	size_t reclen[MAX_RECS];
	unsigned nrec;
	size_t recmax;
	BIGNUM *n, *e, *d;
	EVP_PKEY *ec;
	int internal;
	struct ep_key *keys;
	struct ep_file *parent, *child, *next;
};

struct ep {
	enum variant var;
	/* persistent */
	uint8_t serial[8];
	uint8_t gd86[64];
	size_t gd86len;
	uint8_t kenc[16], kmac[16];
	struct ep_file *mf;
	/* volatile */
	struct ep_session sm;
	int auth_pending;
	uint8_t host_chal[8], card_chal[8];
	int level;
	uint8_t chal[8];
	int have_chal;
	struct ep_file *cur_df, *cur_ef;
	struct ep_file *env_key;
	uint8_t env_alg, env_tmpl;
};

/* ------------------------------------------------------------------ */
/* response buffer */

/* ------------------------------------------------------------------ */
/* file tree */

static void key_free_list(struct ep_key *k)
{
	while (k) {
		struct ep_key *n = k->next;

		OPENSSL_clear_free(k, sizeof(*k));
		k = n;
	}
}

static void file_free(struct ep_file *f)
{
	struct ep_file *c, *n;
	unsigned i;

	if (!f)
		return;
	for (c = f->child; c; c = n) {
		n = c->next;
		file_free(c);
	}
	if (f->data)
		OPENSSL_clear_free(f->data, f->datalen);
	for (i = 0; i < f->nrec; i++)
		free(f->rec[i]);
	BN_free(f->n);
	BN_free(f->e);
	BN_clear_free(f->d);
	EVP_PKEY_free(f->ec);
	key_free_list(f->keys);
	free(f);
}

static struct ep_file *child_of(const struct ep_file *df, uint16_t fid)
{
	struct ep_file *c;

	if (!df)
		return NULL;
	for (c = df->child; c; c = c->next)
		if (c->fid == fid)
			return c;
	return NULL;
}

static void attach(struct ep_file *parent, struct ep_file *f)
{
	struct ep_file **pp = &parent->child;

	while (*pp)
		pp = &(*pp)->next;
	*pp = f;
	f->parent = parent;
}

static void detach(struct ep_file *f)
{
	struct ep_file **pp;

	if (!f->parent)
		return;
	for (pp = &f->parent->child; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	f->next = NULL;
	f->parent = NULL;
}

static int is_ancestor(const struct ep_file *a, const struct ep_file *f)
{
	for (; f; f = f->parent)
		if (f == a)
			return 1;
	return 0;
}

static int is_key_type(uint8_t t)
{
	return t == FT_RSA || t == FT_EC;
}

static int is_pub_type(uint8_t t)
{
	return t == FT_RSAPUB || t == FT_ECPUB;
}

/* Finds tag in a flat TLV list (one-byte tags and lengths, as FTCOS FCPs
 * are); NULL if absent or malformed. */
static const uint8_t *fcp_tag(const uint8_t *p, size_t n, uint8_t tag,
			      size_t *len)
{
	size_t i = 0;

	while (i + 2 <= n) {
		uint8_t t = p[i], l = p[i + 1];

		if (l & 0x80 || i + 2 + l > n)
			return NULL;
		if (t == tag) {
			*len = l;
			return p + i + 2;
		}
		i += 2 + (size_t)l;
	}
	return NULL;
}

/* Fills a file's fields from its FCP. 0, or an SW. */
static uint16_t parse_fcp(struct ep_file *f, const uint8_t *p, size_t n)
{
	const uint8_t *v;
	size_t l;

	/* answered inside 6F L: one length byte, short form */
	if (n >= 0x80 || n > MAX_FCP)
		return SW_WRONG_LENGTH;
	memcpy(f->fcp, p, n);
	f->fcplen = n;
	v = fcp_tag(p, n, 0x82, &l);
	if (!v || l < 1)
		return SW_WRONG_DATA;
	f->type = v[0];
	switch (f->type) {
	case FT_DF:
	case FT_EF:
	case FT_BSO:
	case FT_RSA:
	case FT_RSAPUB:
	case FT_EC:
	case FT_ECPUB:
		break;
	case 0x02:
	case 0x04:
	case 0x06:
		/* record EF: 82 05 ty 00 <max record length:2> <count> */
		f->recmax = l >= 4 ? (size_t)v[2] << 8 | v[3] : 0xFF;
		if (!f->recmax || f->recmax > 0xFF)
			f->recmax = 0xFF;
		break;
	default:
		return SW_WRONG_DATA;
	}
	v = fcp_tag(p, n, 0x83, &l);
	if (!v || l != 2)
		return SW_WRONG_DATA;
	f->fid = (uint16_t)(v[0] << 8 | v[1]);
	memset(f->acl, 0xFF, sizeof(f->acl));
	v = fcp_tag(p, n, 0x86, &l);
	if (v && l)
		memcpy(f->acl, v, l > 8 ? 8 : l);
	v = fcp_tag(p, n, 0x84, &l);
	if (v && l <= sizeof(f->name)) {
		memcpy(f->name, v, l);
		f->namelen = l;
	}
	f->size = 0;
	if (f->type == FT_EF) {
		v = fcp_tag(p, n, 0x80, &l);
		if (!v || l < 1 || l > 2)
			return SW_WRONG_DATA;
		f->size = l == 2 ? (size_t)v[0] << 8 | v[1] : v[0];
		if (f->size > MAX_EF)
			return SW_NO_SPACE;
	} else if (is_key_type(f->type) || is_pub_type(f->type)) {
		v = fcp_tag(p, n, 0x85, &l);
		if (v && l == 2)
			f->size = (size_t)v[0] << 8 | v[1];
	}
	return 0;
}

static int rec_type(uint8_t t)
{
	return t == 0x02 || t == 0x04 || t == 0x06;
}

/* ------------------------------------------------------------------ */
/* security state */

static int ac_ok(const struct ep *s, uint8_t ac)
{
	int want = ac & 0x0F, cur = s->level;

	if (ac == 0xFF)
		return 0;
	switch (ac >> 4) {
	case 0x8:
		return cur != want;
	case 0xA:
		return cur < want;
	case 0xB:
		return cur == want;
	default:
		return cur >= want;
	}
}

/* ACL index of an operation on a file of this type; -1 none. */
enum op { OP_READ, OP_UPDATE, OP_APPEND, OP_DELETE, OP_CREATE, OP_USE };

static int acl_index(uint8_t type, enum op op)
{
	if (type == FT_DF)
		return op == OP_CREATE ? 1 : op == OP_DELETE ? 3 : -1;
	if (type == FT_BSO)
		return op == OP_UPDATE ? 0 : op == OP_DELETE ? 3 : -1;
	if (is_key_type(type))
		return op == OP_UPDATE	 ? 1
		       : op == OP_USE	 ? 2
		       : op == OP_DELETE ? 3
					 : -1;
	switch (op) {
	case OP_READ:
		return 0;
	case OP_UPDATE:
		return 1;
	case OP_APPEND:
	case OP_USE:
		return 2;
	case OP_DELETE:
		return 3;
	default:
		return -1;
	}
}

static int allowed(const struct ep *s, const struct ep_file *f, enum op op)
{
	int i = acl_index(f->type, op);

	return i >= 0 && ac_ok(s, f->acl[i]);
}

/* ------------------------------------------------------------------ */
/* persistence */

static void path_of(const struct ep_file *f, char *out, size_t cap)
{
	const struct ep_file *chain[MAX_DEPTH + 1];
	size_t n = 0, i, off = 0;

	for (; f && n <= MAX_DEPTH; f = f->parent)
		chain[n++] = f;
	out[0] = 0;
	for (i = n; i-- > 0 && off + 5 <= cap;)
		off += (size_t)snprintf(out + off, cap - off, "%04X",
					chain[i]->fid);
}

static int depth(const struct ep_file *f)
{
	int d = 0;

	for (; f->parent; f = f->parent)
		d++;
	return d;
}

static const char *const file_suffixes[] = {
    "fcp", "data", "recs", "rsa_n", "rsa_e", "rsa_d", "ec", "internal"};
static const char *const key_suffixes[] = {"hdr", "value", "tries", "max"};

/* Deletes every entry listed under "files" and "keys": the tree is
 * rewritten whole. */
static void kv_clear_tree(struct vcard_kv *kv)
{
	char name[96], *list, *tok, *save = NULL;
	const char *v;
	size_t i;

	v = vcard_kv_get(kv, "files");
	if (v && (list = strdup(v))) {
		for (tok = strtok_r(list, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save))
			for (i = 0; i < sizeof(file_suffixes) /
					    sizeof(file_suffixes[0]);
			     i++) {
				snprintf(name, sizeof(name), "f.%s.%s", tok,
					 file_suffixes[i]);
				vcard_kv_del(kv, name);
			}
		free(list);
	}
	save = NULL;
	v = vcard_kv_get(kv, "keys");
	if (v && (list = strdup(v))) {
		for (tok = strtok_r(list, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save))
			for (i = 0;
			     i < sizeof(key_suffixes) / sizeof(key_suffixes[0]);
			     i++) {
				snprintf(name, sizeof(name), "k.%s.%s", tok,
					 key_suffixes[i]);
				vcard_kv_del(kv, name);
			}
		free(list);
	}
}

struct strbuf {
	char *p;
	size_t len, cap;
};

static void sb_add(struct strbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->len + n + 2 > b->cap) {
		size_t cap = (b->cap + n + 2) * 2;
		char *p = realloc(b->p, cap);

		if (!p)
			return;
		b->p = p;
		b->cap = cap;
	}
	if (b->len)
		b->p[b->len++] = ',';
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
}

static void set_bn(struct vcard_kv *kv, const char *name, const BIGNUM *bn)
{
	int n = BN_num_bytes(bn);
	uint8_t *p = OPENSSL_malloc(n ? (size_t)n : 1);

	if (!p)
		return;
	BN_bn2bin(bn, p);
	vcard_kv_set_hex(kv, name, p, (size_t)n);
	OPENSSL_clear_free(p, n ? (size_t)n : 1);
}

static void save_file(struct vcard_kv *kv, const struct ep_file *f,
		      struct strbuf *files, struct strbuf *keys)
{
	char path[4 * (MAX_DEPTH + 1) + 1], name[96];
	const struct ep_file *c;
	const struct ep_key *k;

	path_of(f, path, sizeof(path));
	sb_add(files, path);
	snprintf(name, sizeof(name), "f.%s.fcp", path);
	vcard_kv_set_hex(kv, name, f->fcp, f->fcplen);
	if (f->data) {
		snprintf(name, sizeof(name), "f.%s.data", path);
		vcard_kv_set_hex(kv, name, f->data, f->datalen);
	}
	if (f->nrec) {
		uint8_t *buf = malloc(f->nrec * 256);
		size_t off = 0;
		unsigned i;

		if (buf) {
			for (i = 0; i < f->nrec; i++) {
				buf[off++] = (uint8_t)f->reclen[i];
				memcpy(buf + off, f->rec[i], f->reclen[i]);
				off += f->reclen[i];
			}
			snprintf(name, sizeof(name), "f.%s.recs", path);
			vcard_kv_set_hex(kv, name, buf, off);
			free(buf);
		}
	}
	if (f->n) {
		snprintf(name, sizeof(name), "f.%s.rsa_n", path);
		set_bn(kv, name, f->n);
	}
	if (f->e) {
		snprintf(name, sizeof(name), "f.%s.rsa_e", path);
		set_bn(kv, name, f->e);
	}
	if (f->d) {
		snprintf(name, sizeof(name), "f.%s.rsa_d", path);
		set_bn(kv, name, f->d);
	}
	if (f->ec) {
		unsigned char *der = NULL;
		int n = i2d_PrivateKey(f->ec, &der);

		if (n > 0) {
			snprintf(name, sizeof(name), "f.%s.ec", path);
			vcard_kv_set_hex(kv, name, der, (size_t)n);
			OPENSSL_clear_free(der, (size_t)n);
		}
	}
	if (f->internal) {
		snprintf(name, sizeof(name), "f.%s.internal", path);
		vcard_kv_set_int(kv, name, 1);
	}
	for (k = f->keys; k; k = k->next) {
		char id[sizeof(path) + 4];

		snprintf(id, sizeof(id), "%s.%02X", path, k->hdr[1]);
		sb_add(keys, id);
		snprintf(name, sizeof(name), "k.%s.hdr", id);
		vcard_kv_set_hex(kv, name, k->hdr, sizeof(k->hdr));
		snprintf(name, sizeof(name), "k.%s.value", id);
		vcard_kv_set_hex(kv, name, k->val, k->vlen);
		snprintf(name, sizeof(name), "k.%s.tries", id);
		vcard_kv_set_int(kv, name, k->tries);
		snprintf(name, sizeof(name), "k.%s.max", id);
		vcard_kv_set_int(kv, name, k->max);
	}
	for (c = f->child; c; c = c->next)
		save_file(kv, c, files, keys);
}

static void ep_save(struct vcard *vc, struct vcard_kv *kv)
{
	struct ep *s = vc->pstate;
	struct strbuf files = {0}, keys = {0};

	vcard_kv_set_hex(kv, "serial", s->serial, sizeof(s->serial));
	vcard_kv_set_hex(kv, "getdata_86", s->gd86, s->gd86len);
	vcard_kv_set_hex(kv, "sm_kenc", s->kenc, sizeof(s->kenc));
	vcard_kv_set_hex(kv, "sm_kmac", s->kmac, sizeof(s->kmac));
	kv_clear_tree(kv);
	if (s->mf)
		save_file(kv, s->mf, &files, &keys);
	vcard_kv_set(kv, "files", files.p ? files.p : "");
	vcard_kv_set(kv, "keys", keys.p ? keys.p : "");
	free(files.p);
	free(keys.p);
}

static int get_hex_max(const struct vcard_kv *kv, const char *name,
		       uint8_t *out, size_t max, size_t *got)
{
	uint8_t *p = NULL;
	size_t n = 0;

	if (vcard_kv_get_hex(kv, name, &p, &n) < 0)
		return -1;
	if (n > max) {
		OPENSSL_clear_free(p, n);
		return -1;
	}
	memcpy(out, p, n);
	OPENSSL_clear_free(p, n);
	*got = n;
	return 0;
}

static BIGNUM *get_bn(const struct vcard_kv *kv, const char *name)
{
	uint8_t *p = NULL;
	size_t n = 0;
	BIGNUM *bn;

	if (vcard_kv_get_hex(kv, name, &p, &n) < 0)
		return NULL;
	bn = BN_bin2bn(p, (int)n, NULL);
	OPENSSL_clear_free(p, n);
	return bn;
}

/* The path's parent, by dropping its last FID. */
static struct ep_file *find_path(struct ep_file *mf, const char *path)
{
	size_t n = strlen(path), i;
	struct ep_file *f = mf;

	if (!mf || n < 4 || n % 4 || strncmp(path, "3F00", 4) != 0)
		return NULL;
	for (i = 4; i < n && f; i += 4) {
		char fid[5];

		memcpy(fid, path + i, 4);
		fid[4] = 0;
		f = child_of(f, (uint16_t)strtoul(fid, NULL, 16));
	}
	return f;
}

static int load_file(struct ep *s, const struct vcard_kv *kv, const char *path)
{
	char name[96], parent[4 * (MAX_DEPTH + 1) + 1];
	struct ep_file *f = calloc(1, sizeof(*f)), *par = NULL;
	uint8_t fcp[MAX_FCP], *p = NULL;
	size_t n = 0, plen = strlen(path);

	if (!f)
		return -1;
	snprintf(name, sizeof(name), "f.%s.fcp", path);
	if (plen < 4 || plen > 4 * (MAX_DEPTH + 1) ||
	    get_hex_max(kv, name, fcp, sizeof(fcp), &n) < 0 ||
	    parse_fcp(f, fcp, n) != 0)
		goto fail;
	if (plen == 4) {
		if (s->mf || f->fid != 0x3F00)
			goto fail;
	} else {
		memcpy(parent, path, plen - 4);
		parent[plen - 4] = 0;
		par = find_path(s->mf, parent);
		if (!par || par->type != FT_DF || child_of(par, f->fid))
			goto fail;
	}
	snprintf(name, sizeof(name), "f.%s.data", path);
	if (vcard_kv_get(kv, name)) {
		if (vcard_kv_get_hex(kv, name, &p, &n) < 0 || n > MAX_EF)
			goto fail;
		f->data = p;
		f->datalen = n;
		p = NULL;
	}
	if (f->type == FT_EF && f->datalen != f->size) {
		uint8_t *d = calloc(1, f->size ? f->size : 1);

		if (!d)
			goto fail;
		memcpy(d, f->data ? f->data : d,
		       f->datalen < f->size ? f->datalen : f->size);
		free(f->data);
		f->data = d;
		f->datalen = f->size;
	}
	snprintf(name, sizeof(name), "f.%s.recs", path);
	if (vcard_kv_get(kv, name)) {
		size_t off = 0;

		if (vcard_kv_get_hex(kv, name, &p, &n) < 0)
			goto fail;
		while (off < n && f->nrec < MAX_RECS) {
			size_t l = p[off++];

			if (off + l > n)
				break;
			f->rec[f->nrec] = malloc(l ? l : 1);
			if (!f->rec[f->nrec])
				break;
			memcpy(f->rec[f->nrec], p + off, l);
			f->reclen[f->nrec++] = l;
			off += l;
		}
		free(p);
		p = NULL;
	}
	snprintf(name, sizeof(name), "f.%s.rsa_n", path);
	f->n = get_bn(kv, name);
	snprintf(name, sizeof(name), "f.%s.rsa_e", path);
	f->e = get_bn(kv, name);
	snprintf(name, sizeof(name), "f.%s.rsa_d", path);
	f->d = get_bn(kv, name);
	snprintf(name, sizeof(name), "f.%s.ec", path);
	if (vcard_kv_get(kv, name)) {
		const unsigned char *q;

		if (vcard_kv_get_hex(kv, name, &p, &n) < 0)
			goto fail;
		q = p;
		f->ec = d2i_AutoPrivateKey(NULL, &q, (long)n);
		OPENSSL_clear_free(p, n);
		p = NULL;
		if (!f->ec)
			goto fail;
	}
	snprintf(name, sizeof(name), "f.%s.internal", path);
	f->internal = vcard_kv_get_int(kv, name, 0) != 0;
	if (par)
		attach(par, f);
	else
		s->mf = f;
	return 0;
fail:
	fprintf(stderr, "kyso-vcard: epass2003: bad file %s in state\n", path);
	free(p);
	file_free(f);
	return -1;
}

static int load_key(struct ep *s, const struct vcard_kv *kv, const char *id)
{
	char name[96], dfpath[4 * (MAX_DEPTH + 1) + 1];
	const char *dot = strrchr(id, '.');
	struct ep_file *df;
	struct ep_key *k, **pp;
	size_t n = 0;

	if (!dot || (size_t)(dot - id) >= sizeof(dfpath))
		return -1;
	memcpy(dfpath, id, (size_t)(dot - id));
	dfpath[dot - id] = 0;
	df = find_path(s->mf, dfpath);
	if (!df || df->type != FT_DF)
		return -1;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -1;
	snprintf(name, sizeof(name), "k.%s.hdr", id);
	if (get_hex_max(kv, name, k->hdr, sizeof(k->hdr), &n) < 0 ||
	    n != sizeof(k->hdr))
		goto fail;
	snprintf(name, sizeof(name), "k.%s.value", id);
	if (get_hex_max(kv, name, k->val, sizeof(k->val), &k->vlen) < 0)
		goto fail;
	snprintf(name, sizeof(name), "k.%s.max", id);
	k->max = (int)vcard_kv_get_int(kv, name, k->hdr[9] >> 4);
	snprintf(name, sizeof(name), "k.%s.tries", id);
	k->tries = (int)vcard_kv_get_int(kv, name, k->max);
	if (k->max < 0 || k->max > 15 || k->tries < 0 || k->tries > k->max)
		goto fail;
	for (pp = &df->keys; *pp; pp = &(*pp)->next)
		;
	*pp = k;
	return 0;
fail:
	fprintf(stderr, "kyso-vcard: epass2003: bad key %s in state\n", id);
	OPENSSL_clear_free(k, sizeof(*k));
	return -1;
}

/* ------------------------------------------------------------------ */
/* factory state */

/* Mode answers (get_data.txt in popovec/epass2003_sim and the dumps in
 * OpenSC #2843): 80 = SM cipher (01 AES), 84 01 01 = SM on, 85 = ten
 * bytes with the serial, 87 01 01 at offset 32 = FIPS. The 3DES unit's
 * answer is not public: 80 01 02 is OpenSC's KEY_TYPE_DES. */
static void make_gd86(struct ep *s)
{
	struct vcard_wbuf w = {s->gd86, 0, sizeof(s->gd86), 0};
	uint8_t cipher = s->var == V_DES ? 0x02 : 0x01;

	vcard_put(&w, "\x80\x01", 2);
	vcard_put_u8(&w, cipher);
	vcard_put(&w, s->var == V_FIPS ? "\x81\x02\x1D\xD4" : "\x81\x02\x01\xD5", 4);
	vcard_put(&w, s->var == V_FIPS ? "\x82\x01\x00" : "\x82\x01\x03", 3);
	vcard_put(&w, "\x83\x02\x00\x00", 4);
	vcard_put(&w, "\x84\x01\x01", 3);
	vcard_put(&w, "\x85\x0A\x00", 3);
	vcard_put(&w, s->serial, 8);
	vcard_put_u8(&w, 0x00);
	vcard_put(&w, "\x86\x01\x00", 3);
	if (s->var == V_FIPS)
		vcard_put(&w, "\x87\x01\x01", 3);
	s->gd86len = w.len;
}

/* A blank token (the state after OpenSC's erase): no MF; pkcs15-init
 * builds the rest. The ESPK variant without a fixture gets the empty
 * skeleton of its layout (see tests/fixtures/epass2003/espk-build.c for
 * the full one). */
static struct ep_file *new_file(const uint8_t *fcp, size_t n)
{
	struct ep_file *f = calloc(1, sizeof(*f));

	if (!f || parse_fcp(f, fcp, n) != 0) {
		free(f);
		return NULL;
	}
	if (f->type == FT_EF) {
		f->data = calloc(1, f->size ? f->size : 1);
		f->datalen = f->size;
		if (!f->data) {
			free(f);
			return NULL;
		}
	}
	return f;
}

static int espk_skeleton(struct ep *s)
{
	static const uint8_t mf[] = {
	    0x82, 0x02, 0x38, 0x00, 0x83, 0x02, 0x3F, 0x00, 0x85, 0x02, 0x00,
	    0x7F, 0x86, 0x08, 0x90, 0x98, 0xFF, 0x98, 0xFF, 0xFF, 0xFF, 0xFF};
	static const uint8_t df[] = {
	    0x82, 0x02, 0x38, 0x00, 0x83, 0x02, 0x20, 0x03, 0x84, 0x10,
	    'E',  'N',	'T',  'E',  'R',  'S',	'A',  'F',  'E',  '-',
	    'E',  'S',	'P',  'K',  0x00, 0x00, 0x85, 0x02, 0x00, 0x7F,
	    0x86, 0x08, 0x90, 0x98, 0xFF, 0x98, 0xFF, 0xFF, 0xFF, 0xFF};
	static const uint8_t idx[] = {
	    0x80, 0x02, 0x00, 0x00, 0x82, 0x02, 0x01, 0x00, 0x83, 0x02, 0x6F,
	    0x01, 0x86, 0x08, 0x90, 0x98, 0xFF, 0x98, 0xFF, 0xFF, 0xFF, 0xFF};
	struct ep_file *m = new_file(mf, sizeof(mf)), *d, *i;

	if (!m)
		return -1;
	s->mf = m;
	d = new_file(df, sizeof(df));
	i = new_file(idx, sizeof(idx));
	if (!d || !i) {
		file_free(d);
		file_free(i);
		return -1;
	}
	attach(m, d);
	attach(d, i);
	return 0;
}

static void ep_free(struct vcard *vc)
{
	struct ep *s = vc->pstate;

	if (!s)
		return;
	file_free(s->mf);
	OPENSSL_clear_free(s, sizeof(*s));
	vc->pstate = NULL;
}

static void volatile_reset(struct ep *s)
{
	memset(&s->sm, 0, sizeof(s->sm));
	s->sm.mode = s->var == V_DES	? EP_SM_DES
		     : s->var == V_FIPS ? EP_SM_FIPS
					: EP_SM_AES;
	s->auth_pending = 0;
	s->level = 0;
	s->have_chal = 0;
	OPENSSL_cleanse(s->chal, sizeof(s->chal));
	s->cur_df = s->mf;
	s->cur_ef = NULL;
	s->env_key = NULL;
	s->env_alg = s->env_tmpl = 0;
}

static enum variant variant_of(const struct vcard *vc)
{
	const char *n = vc->profile->name;

	if (!strcmp(n, "epass2003-aes"))
		return V_AES;
	if (!strcmp(n, "epass2003-fips"))
		return V_FIPS;
	if (!strcmp(n, "epass2003-espk"))
		return V_ESPK;
	return V_DES;
}

static int load_list(struct ep *s, const struct vcard_kv *kv,
		     const char *listname, int files)
{
	const char *v = vcard_kv_get(kv, listname);
	char *list, *tok, *save = NULL;
	int r = 0;

	if (!v || !*v)
		return 0;
	list = strdup(v);
	if (!list)
		return -1;
	for (tok = strtok_r(list, ",", &save); tok && r == 0;
	     tok = strtok_r(NULL, ",", &save))
		r = files ? load_file(s, kv, tok) : load_key(s, kv, tok);
	free(list);
	return r;
}

static int ep_load(struct vcard *vc, struct vcard_kv *kv)
{
	struct ep *s = calloc(1, sizeof(*s));
	size_t n = 0;

	if (!s)
		return -1;
	vc->pstate = s;
	s->var = variant_of(vc);

	if (!vcard_kv_get(kv, "serial")) {
		if (RAND_bytes(s->serial, sizeof(s->serial)) != 1)
			goto fail;
		memcpy(s->kenc, STATIC_KEY, 16);
		memcpy(s->kmac, STATIC_KEY, 16);
		make_gd86(s);
		if (s->var == V_ESPK && espk_skeleton(s) < 0)
			goto fail;
		volatile_reset(s);
		ep_save(vc, kv);
		vc->dirty = 1;
		return 0;
	}
	if (get_hex_max(kv, "serial", s->serial, 8, &n) < 0 || n != 8)
		goto fail;
	if (vcard_kv_get(kv, "getdata_86")) {
		if (get_hex_max(kv, "getdata_86", s->gd86, sizeof(s->gd86),
				&s->gd86len) < 0)
			goto fail;
	} else {
		make_gd86(s);
	}
	memcpy(s->kenc, STATIC_KEY, 16);
	memcpy(s->kmac, STATIC_KEY, 16);
	if (vcard_kv_get(kv, "sm_kenc") &&
	    (get_hex_max(kv, "sm_kenc", s->kenc, 16, &n) < 0 || n != 16))
		goto fail;
	if (vcard_kv_get(kv, "sm_kmac") &&
	    (get_hex_max(kv, "sm_kmac", s->kmac, 16, &n) < 0 || n != 16))
		goto fail;
	if (load_list(s, kv, "files", 1) < 0 || load_list(s, kv, "keys", 0) < 0)
		goto fail;
	volatile_reset(s);
	return 0;
fail:
	ep_free(vc);
	return -1;
}

static void ep_reset(struct vcard *vc)
{
	struct ep *s = vc->pstate;

	if (s)
		volatile_reset(s);
}

/* ------------------------------------------------------------------ */
/* file commands */

/* FCI of a selected file: the FCP it was created with, the record count
 * brought up to date (the real token corrects it the same way). */
static void put_fci(const struct ep_file *f, struct vcard_wbuf *w)
{
	uint8_t buf[MAX_FCP];
	const uint8_t *v;
	size_t l;

	memcpy(buf, f->fcp, f->fcplen);
	v = fcp_tag(buf, f->fcplen, 0x82, &l);
	if (v && rec_type(f->type) && l >= 5)
		buf[(size_t)(v - buf) + 4] = (uint8_t)f->nrec;
	vcard_put_u8(w, 0x6F);
	vcard_put_u8(w, (uint8_t)f->fcplen);
	vcard_put(w, buf, f->fcplen);
}

static void select_file(struct ep *s, struct ep_file *f)
{
	if (f->type == FT_DF) {
		s->cur_df = f;
		s->cur_ef = NULL;
	} else {
		s->cur_df = f->parent;
		s->cur_ef = f;
	}
}

static struct ep_file *find_name(struct ep_file *f, const uint8_t *name,
				 size_t n)
{
	struct ep_file *c, *r;

	if (!f)
		return NULL;
	if (f->type == FT_DF && f->namelen == n && n &&
	    !memcmp(f->name, name, n))
		return f;
	for (c = f->child; c; c = c->next)
		if ((r = find_name(c, name, n)))
			return r;
	return NULL;
}

static struct ep_file *lookup_fid(struct ep *s, uint16_t fid)
{
	struct ep_file *df = s->cur_df, *f;

	if (!s->mf)
		return NULL;
	if (fid == 0x3F00)
		return s->mf;
	if (!df)
		df = s->mf;
	if ((f = child_of(df, fid)))
		return f;
	if (df->fid == fid)
		return df;
	if (df->parent) {
		if (df->parent->fid == fid)
			return df->parent;
		return child_of(df->parent, fid);
	}
	return NULL;
}

static uint16_t cmd_select(struct ep *s, uint8_t p1, uint8_t p2,
			   const uint8_t *d, size_t n, struct vcard_wbuf *w)
{
	struct ep_file *f;

	if (p2 != 0x00 && p2 != 0x0C)
		return SW_WRONG_P1P2;
	if (p1 == 0x00) {
		if (n == 0)
			f = s->mf;
		else if (n == 2)
			f = lookup_fid(s, (uint16_t)(d[0] << 8 | d[1]));
		else
			return SW_WRONG_LENGTH;
	} else if (p1 == 0x04) {
		if (n == 0 || n > 16)
			return SW_WRONG_LENGTH;
		f = find_name(s->mf, d, n);
	} else {
		return SW_WRONG_P1P2;
	}
	if (!f || f->internal)
		return SW_NOT_FOUND;
	if (is_key_type(f->type))
		return SW_SECURITY;
	select_file(s, f);
	if (p2 == 0x00)
		put_fci(f, w);
	return SW_OK;
}

static uint16_t cmd_read_binary(struct ep *s, uint8_t p1, uint8_t p2, size_t ne,
				struct vcard_wbuf *w)
{
	struct ep_file *f = s->cur_ef;
	size_t off = (size_t)(p1 & 0x7F) << 8 | p2, n;

	if (p1 & 0x80)
		return SW_FUNC;
	if (!f)
		return SW_CONDITIONS;
	if (f->type != FT_EF && !is_pub_type(f->type))
		return 0x6981;
	if (!allowed(s, f, OP_READ))
		return SW_SECURITY;
	if (off > f->datalen)
		return SW_OFFSET;
	n = f->datalen - off;
	if (n > ne)
		n = ne;
	vcard_put(w, f->data + off, n);
	return SW_OK;
}

static uint16_t cmd_update_binary(struct vcard *vc, struct ep *s, uint8_t p1,
				  uint8_t p2, const uint8_t *d, size_t n)
{
	struct ep_file *f = s->cur_ef;
	size_t off = (size_t)(p1 & 0x7F) << 8 | p2;

	if (p1 & 0x80)
		return SW_FUNC;
	if (!f)
		return SW_CONDITIONS;
	if (f->type != FT_EF)
		return 0x6981;
	if (!allowed(s, f, OP_UPDATE))
		return SW_SECURITY;
	if (off > f->datalen || n > f->datalen - off)
		return SW_NO_SPACE;
	memcpy(f->data + off, d, n);
	vc->dirty = 1;
	return SW_OK;
}

static uint16_t cmd_read_record(struct ep *s, uint8_t p1, uint8_t p2, size_t ne,
				struct vcard_wbuf *w)
{
	struct ep_file *f = s->cur_ef;
	size_t n;

	if (!f || !rec_type(f->type))
		return f ? 0x6981 : SW_CONDITIONS;
	if ((p2 & 0x07) != 0x04 || p2 >> 3)
		return SW_WRONG_P1P2;
	if (!allowed(s, f, OP_READ))
		return SW_SECURITY;
	if (p1 == 0 || p1 > f->nrec)
		return SW_NO_RECORD;
	n = f->reclen[p1 - 1];
	vcard_put(w, f->rec[p1 - 1], n < ne ? n : ne);
	return SW_OK;
}

static uint16_t cmd_write_record(struct vcard *vc, struct ep *s, uint8_t ins,
				 uint8_t p1, uint8_t p2, const uint8_t *d,
				 size_t n)
{
	struct ep_file *f = s->cur_ef;
	uint8_t *copy;
	unsigned i;

	if (!f || !rec_type(f->type))
		return f ? 0x6981 : SW_CONDITIONS;
	if (n == 0 || n > f->recmax)
		return SW_WRONG_LENGTH;
	if (!allowed(s, f, ins == 0xE2 ? OP_APPEND : OP_UPDATE))
		return SW_SECURITY;
	if (ins == 0xE2) {
		if (p1 != 0 || (p2 & 0x07) || p2 >> 3)
			return SW_WRONG_P1P2;
		if (f->nrec == MAX_RECS)
			return SW_NO_SPACE;
		i = f->nrec;
	} else {
		if ((p2 & 0x07) != 0x04 || p2 >> 3)
			return SW_WRONG_P1P2;
		if (p1 == 0 || p1 > f->nrec)
			return SW_NO_RECORD;
		i = p1 - 1u;
	}
	copy = malloc(n);
	if (!copy)
		return SW_UNKNOWN;
	memcpy(copy, d, n);
	if (i == f->nrec)
		f->nrec++;
	else
		free(f->rec[i]);
	f->rec[i] = copy;
	f->reclen[i] = n;
	vc->dirty = 1;
	return SW_OK;
}

static uint16_t cmd_create(struct vcard *vc, struct ep *s, uint8_t p1,
			   uint8_t p2, const uint8_t *d, size_t n)
{
	struct ep_file *f, *par = s->cur_df;
	uint16_t sw;

	if (p1 || p2)
		return SW_WRONG_P1P2;
	if (n < 2 || d[0] != 0x62 || d[1] != n - 2)
		return SW_WRONG_DATA;
	f = calloc(1, sizeof(*f));
	if (!f)
		return SW_UNKNOWN;
	sw = parse_fcp(f, d + 2, n - 2);
	if (sw)
		goto fail;
	if (!s->mf) {
		/* A blank token takes an MF and nothing else. */
		sw = SW_NOT_FOUND;
		if (f->fid != 0x3F00 || f->type != FT_DF)
			goto fail;
	} else {
		sw = SW_FILE_EXISTS;
		if (f->fid == 0x3F00 || !par || child_of(par, f->fid) ||
		    par->fid == f->fid)
			goto fail;
		sw = SW_NAME_EXISTS;
		if (f->type == FT_DF && f->namelen &&
		    find_name(s->mf, f->name, f->namelen))
			goto fail;
		sw = SW_SECURITY;
		if (!allowed(s, par, OP_CREATE))
			goto fail;
		if (depth(par) >= MAX_DEPTH - 1) {
			sw = SW_NO_SPACE;
			goto fail;
		}
	}
	if (f->type == FT_EF) {
		f->data = calloc(1, f->size ? f->size : 1);
		if (!f->data) {
			sw = SW_NO_SPACE;
			goto fail;
		}
		f->datalen = f->size;
	}
	if (s->mf)
		attach(par, f);
	else
		s->mf = f;
	select_file(s, f);
	vc->dirty = 1;
	return SW_OK;
fail:
	free(f);
	return sw;
}

static uint16_t cmd_delete(struct vcard *vc, struct ep *s, uint8_t p1,
			   uint8_t p2, const uint8_t *d, size_t n)
{
	struct ep_file *f;
	uint16_t fid;

	if (p1 || p2)
		return SW_WRONG_P1P2;
	if (n != 2)
		return SW_WRONG_LENGTH;
	fid = (uint16_t)(d[0] << 8 | d[1]);
	if (!s->mf)
		return SW_NOT_FOUND;
	f = fid == 0x3F00 ? s->mf : child_of(s->cur_df, fid);
	if (!f)
		return SW_NOT_FOUND;
	if (!allowed(s, f, OP_DELETE))
		return SW_SECURITY;
	if (s->env_key && is_ancestor(f, s->env_key))
		s->env_key = NULL;
	if (f == s->mf) {
		file_free(s->mf);
		s->mf = NULL;
		s->cur_df = s->cur_ef = NULL;
	} else {
		if (is_ancestor(f, s->cur_df) ||
		    (s->cur_ef && is_ancestor(f, s->cur_ef))) {
			s->cur_df = f->parent;
			s->cur_ef = NULL;
		}
		detach(f);
		file_free(f);
	}
	vc->dirty = 1;
	return SW_OK;
}

static uint16_t cmd_list(struct ep *s, struct vcard_wbuf *w)
{
	struct ep_file *c;

	if (!s->cur_df)
		return SW_NOT_FOUND;
	for (c = s->cur_df->child; c; c = c->next) {
		if (c->internal)
			continue;
		vcard_put_u8(w, (uint8_t)(c->fid >> 8));
		vcard_put_u8(w, (uint8_t)c->fid);
	}
	return SW_OK;
}

/* ------------------------------------------------------------------ */
/* PIN keys */

static struct ep_key *key_in(struct ep_file *df, uint8_t kid)
{
	struct ep_key *k;

	for (k = df ? df->keys : NULL; k; k = k->next)
		if (k->hdr[1] == kid)
			return k;
	return NULL;
}

static struct ep_key *find_key(struct ep *s, uint8_t kid)
{
	struct ep_file *df;
	struct ep_key *k;

	for (df = s->cur_df; df; df = df->parent)
		if ((k = key_in(df, kid)))
			return k;
	return NULL;
}

static uint16_t tries_sw(int tries)
{
	return (uint16_t)(0x63C0 | (tries & 0x0F));
}

/* A check against a key with a retry counter: success restores the
 * counter and grants the key's level. */
static uint16_t key_check(struct vcard *vc, struct ep *s, struct ep_key *k,
			  int match)
{
	if (!match) {
		k->tries--;
		vc->dirty = 1;
		return tries_sw(k->tries);
	}
	if (k->tries != k->max) {
		k->tries = k->max;
		vc->dirty = 1;
	}
	s->level = k->hdr[7] & 0x0F;
	return SW_OK;
}

static uint16_t cmd_get_challenge(struct ep *s, uint8_t p1, uint8_t p2,
				  size_t ne, struct vcard_wbuf *w)
{
	uint8_t r[16];
	size_t n = ne >= 1 && ne <= 16 ? ne : 8;

	if (p1 || p2)
		return SW_WRONG_P1P2;
	if (RAND_bytes(r, (int)n) != 1)
		return SW_UNKNOWN;
	memset(s->chal, 0, sizeof(s->chal));
	memcpy(s->chal, r, n < 8 ? n : 8);
	s->have_chal = 1;
	vcard_put(w, r, n);
	return SW_OK;
}

static uint16_t cmd_external_auth(struct vcard *vc, struct ep *s, uint8_t p1,
				  uint8_t p2, const uint8_t *d, size_t n)
{
	struct ep_key *k;
	uint8_t want[8];
	int match;

	if (p1 != 0x01 || !(p2 & 0x80))
		return SW_WRONG_P1P2;
	k = find_key(s, p2 & 0x7F);
	if (!k || k->hdr[0] != 0x04 || k->vlen != 24)
		return SW_REF_MISSING;
	if (n == 0)
		return tries_sw(k->tries);
	if (n != 8)
		return SW_WRONG_LENGTH;
	if (k->tries <= 0)
		return SW_BLOCKED;
	if (!s->have_chal)
		return SW_CONDITIONS;
	s->have_chal = 0;
	if (ep_pin_response(k->val, s->chal, want) < 0)
		return SW_UNKNOWN;
	OPENSSL_cleanse(s->chal, sizeof(s->chal));
	match = CRYPTO_memcmp(want, d, 8) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return key_check(vc, s, k, match);
}

/* ISO VERIFY against a raw-PIN key (type 06): what OpenSC's erase uses. */
static uint16_t cmd_verify(struct vcard *vc, struct ep *s, uint8_t p1,
			   uint8_t p2, const uint8_t *d, size_t n)
{
	struct ep_key *k;

	if (p1)
		return SW_WRONG_P1P2;
	k = find_key(s, p2);
	if (!k || k->hdr[0] != 0x06)
		return SW_REF_MISSING;
	if (n == 0)
		return tries_sw(k->tries);
	if (k->tries <= 0)
		return SW_BLOCKED;
	return key_check(vc, s, k,
			 n == k->vlen && CRYPTO_memcmp(d, k->val, n) == 0);
}

static uint16_t cmd_install_key(struct vcard *vc, struct ep *s, uint8_t p1,
				uint8_t p2, const uint8_t *d, size_t n)
{
	struct ep_key *k, **pp;
	size_t vlen;

	if (p2)
		return SW_WRONG_P1P2;
	(void)p1; /* 00: not appendable; the card keeps keys either way */
	if (n < 11)
		return SW_WRONG_LENGTH;
	vlen = n - 10;
	if (vlen > MAX_KEYVAL)
		return SW_WRONG_LENGTH;
	if (d[0] == 0x01 || d[0] == 0x02) {
		/* static SM keys, used from the next mutual authentication */
		if (vlen != 16)
			return SW_WRONG_LENGTH;
		memcpy(d[0] == 0x01 ? s->kenc : s->kmac, d + 10, 16);
		vc->dirty = 1;
		return SW_OK;
	}
	if (d[0] != 0x04 && d[0] != 0x06)
		return SW_WRONG_DATA;
	if (d[0] == 0x04 && vlen != 24)
		return SW_WRONG_LENGTH;
	if (!s->cur_df)
		return SW_NOT_FOUND;
	k = key_in(s->cur_df, d[1]);
	if (k) {
		if (!ac_ok(s, k->hdr[3]))
			return SW_SECURITY;
	} else {
		k = calloc(1, sizeof(*k));
		if (!k)
			return SW_UNKNOWN;
		for (pp = &s->cur_df->keys; *pp; pp = &(*pp)->next)
			;
		*pp = k;
	}
	memcpy(k->hdr, d, 10);
	memcpy(k->val, d + 10, vlen);
	k->vlen = vlen;
	k->max = d[9] >> 4;
	k->tries = d[9] & 0x0F;
	if (k->tries > k->max)
		k->tries = k->max;
	vc->dirty = 1;
	return SW_OK;
}

static uint16_t cmd_update_key(struct vcard *vc, struct ep *s, uint8_t p1,
			       uint8_t p2, const uint8_t *d, size_t n)
{
	struct ep_key *k = find_key(s, p2);

	if (!k || k->hdr[0] != p1)
		return SW_REF_MISSING;
	if (n < 2 || n - 1 > MAX_KEYVAL || (p1 == 0x04 && n != 25))
		return SW_WRONG_LENGTH;
	if (!ac_ok(s, k->hdr[3]))
		return SW_SECURITY;
	k->max = d[0] >> 4;
	k->tries = d[0] & 0x0F;
	if (k->tries > k->max)
		k->tries = k->max;
	k->hdr[9] = d[0];
	memcpy(k->val, d + 1, n - 1);
	k->vlen = n - 1;
	vc->dirty = 1;
	return SW_OK;
}

/* ------------------------------------------------------------------ */
/* keys */

static int rsa_set(struct ep_file *f, EVP_PKEY *pk)
{
	BIGNUM *n = NULL, *e = NULL, *d = NULL;

	if (EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
	    EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &e) != 1 ||
	    EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_D, &d) != 1) {
		BN_free(n);
		BN_free(e);
		BN_clear_free(d);
		return -1;
	}
	BN_free(f->n);
	BN_free(f->e);
	BN_clear_free(f->d);
	f->n = n;
	f->e = e;
	f->d = d;
	return 0;
}

static int ec_point(EVP_PKEY *pk, uint8_t out[65])
{
	size_t l = 0;

	return EVP_PKEY_get_octet_string_param(
		   pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, out, 65, &l) == 1 &&
		       l == 65 && out[0] == 0x04
		   ? 0
		   : -1;
}

static uint16_t cmd_generate(struct vcard *vc, struct ep *s, uint8_t p1,
			     uint8_t p2, const uint8_t *d, size_t n)
{
	struct ep_file *prv, *pub;
	EVP_PKEY *pk;
	unsigned bits;
	uint8_t pt[65];

	if (p1 || p2)
		return SW_WRONG_P1P2;
	if (n != 7)
		return SW_WRONG_LENGTH;
	bits = (unsigned)d[1] << 8 | d[2];
	prv = child_of(s->cur_df, (uint16_t)(d[3] << 8 | d[4]));
	pub = child_of(s->cur_df, (uint16_t)(d[5] << 8 | d[6]));
	if (!prv || !pub)
		return SW_NOT_FOUND;
	if (d[0] == 0x01) {
		if (prv->type != FT_RSA || pub->type != FT_RSAPUB)
			return 0x6981;
		if (bits < 512 || bits > 2048 || bits % 64)
			return SW_WRONG_DATA;
	} else if (d[0] == 0x02) {
		if (prv->type != FT_EC || pub->type != FT_ECPUB)
			return 0x6981;
		if (bits != 256)
			return SW_WRONG_DATA;
	} else {
		return SW_WRONG_DATA;
	}
	if (!allowed(s, prv, OP_UPDATE) || !allowed(s, pub, OP_UPDATE))
		return SW_SECURITY;
	pk = d[0] == 0x01 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits)
			  : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!pk)
		return SW_UNKNOWN;
	free(pub->data);
	pub->data = NULL;
	pub->datalen = 0;
	if (d[0] == 0x01) {
		int nb;

		if (rsa_set(prv, pk) < 0)
			goto fail;
		nb = BN_num_bytes(prv->n);
		pub->data = calloc(1, bits / 8);
		if (!pub->data || nb > (int)(bits / 8))
			goto fail;
		BN_bn2binpad(prv->n, pub->data, (int)(bits / 8));
		pub->datalen = bits / 8;
		EVP_PKEY_free(pk);
	} else {
		if (ec_point(pk, pt) < 0)
			goto fail;
		pub->data = malloc(68);
		if (!pub->data)
			goto fail;
		pub->data[0] = 0x58;
		pub->data[1] = 0x20;
		memcpy(pub->data + 2, pt + 1, 32);
		pub->data[34] = 0x59;
		pub->data[35] = 0x20;
		memcpy(pub->data + 36, pt + 33, 32);
		pub->datalen = 68;
		EVP_PKEY_free(prv->ec);
		prv->ec = pk;
	}
	prv->size = bits;
	vc->dirty = 1;
	return SW_OK;
fail:
	EVP_PKEY_free(pk);
	return SW_UNKNOWN;
}

static uint16_t cmd_read_pubkey(struct ep *s, uint8_t p1, uint8_t p2,
				const uint8_t *d, size_t n, struct vcard_wbuf *w)
{
	struct ep_file *pub;

	if ((p1 != 0x02 && p1 != 0x00) || p2)
		return SW_WRONG_P1P2;
	if (n != 2)
		return SW_WRONG_LENGTH;
	pub = child_of(s->cur_df, (uint16_t)(d[0] << 8 | d[1]));
	if (!pub)
		return SW_NOT_FOUND;
	if (!is_pub_type(pub->type) || !pub->data ||
	    (p1 == 0x02) != (pub->type == FT_RSAPUB))
		return 0x6981;
	if (!allowed(s, pub, OP_READ))
		return SW_SECURITY;
	vcard_put(w, pub->data, pub->datalen);
	return SW_OK;
}

/* 80 E7: private key import, one factor at a time (02 n, 03 d). */
static uint16_t cmd_write_factor(struct vcard *vc, struct ep *s, uint8_t p1,
				 uint8_t p2, const uint8_t *d, size_t n)
{
	struct ep_file *prv;
	BIGNUM *bn;

	if ((p1 != 0x02 && p1 != 0x03) || p2)
		return SW_WRONG_P1P2;
	if (n < 3 || n - 2 > 256)
		return SW_WRONG_LENGTH;
	prv = child_of(s->cur_df, (uint16_t)(d[0] << 8 | d[1]));
	if (!prv)
		return SW_NOT_FOUND;
	if (prv->type != FT_RSA)
		return 0x6981;
	if (!allowed(s, prv, OP_UPDATE))
		return SW_SECURITY;
	bn = BN_bin2bn(d + 2, (int)(n - 2), NULL);
	if (!bn)
		return SW_UNKNOWN;
	if (p1 == 0x02) {
		BN_free(prv->n);
		prv->n = bn;
		if (!prv->e) {
			prv->e = BN_new();
			if (prv->e)
				BN_set_word(prv->e, 65537);
		}
	} else {
		BN_clear_free(prv->d);
		prv->d = bn;
	}
	vc->dirty = 1;
	return SW_OK;
}

/* A key named in MSE: a private-key object of the current DF, else
 * anywhere on the card (the ESPK handles live in DF 2003 whatever the
 * host selected last). */
static struct ep_file *find_keyfile(struct ep_file *f, uint16_t fid)
{
	struct ep_file *c, *r;

	if (!f)
		return NULL;
	if (f->fid == fid && is_key_type(f->type))
		return f;
	for (c = f->child; c; c = c->next)
		if ((r = find_keyfile(c, fid)))
			return r;
	return NULL;
}

static uint16_t cmd_mse(struct ep *s, uint8_t p1, uint8_t p2, const uint8_t *d,
			size_t n)
{
	const uint8_t *alg, *ref;
	size_t la, lr;
	struct ep_file *k;

	s->env_key = NULL;
	if (p1 == 0xF3)
		return SW_OK;
	if (p1 != 0x41 || (p2 != 0xB8 && p2 != 0xB6))
		return SW_WRONG_P1P2;
	alg = fcp_tag(d, n, 0x80, &la);
	ref = fcp_tag(d, n, 0x81, &lr);
	if (!alg || la != 1 || !ref || lr != 2)
		return SW_WRONG_DATA;
	if (p2 == 0xB8 ? alg[0] != 0x84 : alg[0] != 0x91 && alg[0] != 0x92)
		return SW_WRONG_DATA;
	k = child_of(s->cur_df, (uint16_t)(ref[0] << 8 | ref[1]));
	if (!k || !is_key_type(k->type))
		k = find_keyfile(s->mf, (uint16_t)(ref[0] << 8 | ref[1]));
	if (!k)
		return SW_REF_MISSING;
	if ((p2 == 0xB8) != (k->type == FT_RSA))
		return SW_WRONG_DATA;
	s->env_key = k;
	s->env_alg = alg[0];
	s->env_tmpl = p2;
	return SW_OK;
}

static uint16_t op_rsa(struct vcard *vc, struct ep_file *k, const uint8_t *in,
		       size_t n, struct vcard_wbuf *w)
{
	size_t mod = (size_t)BN_num_bytes(k->n);
	BIGNUM *x = NULL, *y = NULL;
	BN_CTX *ctx = NULL;
	uint8_t out[256];
	uint16_t sw = SW_WRONG_DATA;

	if (!k->d || mod > sizeof(out) || n != mod)
		return SW_WRONG_LENGTH;
	x = BN_bin2bn(in, (int)n, NULL);
	y = BN_new();
	ctx = BN_CTX_new();
	if (!x || !y || !ctx) {
		sw = SW_UNKNOWN;
		goto out;
	}
	if (BN_cmp(x, k->n) >= 0)
		goto out;
	vcard_privop(vc);
	BN_set_flags(k->d, BN_FLG_CONSTTIME);
	if (BN_mod_exp_mont_consttime(y, x, k->d, k->n, ctx, NULL) != 1 ||
	    BN_bn2binpad(y, out, (int)mod) != (int)mod) {
		sw = SW_UNKNOWN;
		goto out;
	}
	vcard_put(w, out, mod);
	sw = SW_OK;
out:
	OPENSSL_cleanse(out, sizeof(out));
	BN_clear_free(x);
	BN_clear_free(y);
	BN_CTX_free(ctx);
	return sw;
}

static uint16_t op_ecdsa(struct vcard *vc, struct ep_file *k, const uint8_t *in,
			 size_t n, struct vcard_wbuf *w)
{
	uint8_t der[80], rs[64];
	size_t dl = sizeof(der);
	const unsigned char *q = der;
	EVP_PKEY_CTX *ctx;
	ECDSA_SIG *sig = NULL;
	const BIGNUM *r, *sv;
	int ok;

	if (!k->ec || n == 0 || n > 64)
		return SW_WRONG_LENGTH;
	vcard_privop(vc);
	ctx = EVP_PKEY_CTX_new(k->ec, NULL);
	if (!ctx)
		return SW_UNKNOWN;
	ok = EVP_PKEY_sign_init(ctx) == 1 &&
	     EVP_PKEY_sign(ctx, der, &dl, in, n) == 1;
	EVP_PKEY_CTX_free(ctx);
	if (!ok || !(sig = d2i_ECDSA_SIG(NULL, &q, (long)dl)))
		return SW_UNKNOWN;
	ECDSA_SIG_get0(sig, &r, &sv);
	ok = BN_bn2binpad(r, rs, 32) == 32 &&
	     BN_bn2binpad(sv, rs + 32, 32) == 32;
	ECDSA_SIG_free(sig);
	if (!ok)
		return SW_UNKNOWN;
	vcard_put(w, rs, sizeof(rs));
	return SW_OK;
}

static uint16_t cmd_pso(struct vcard *vc, struct ep *s, uint8_t p1, uint8_t p2,
			const uint8_t *d, size_t n, struct vcard_wbuf *w)
{
	struct ep_file *k = s->env_key;

	if (!((p1 == 0x80 && p2 == 0x86) || (p1 == 0x9E && p2 == 0x9A)))
		return SW_WRONG_P1P2;
	if (!k)
		return SW_REF_MISSING;
	if ((p1 == 0x80) != (k->type == FT_RSA))
		return SW_REF_MISSING;
	if (!allowed(s, k, OP_USE))
		return SW_SECURITY;
	if (p1 == 0x80)
		return op_rsa(vc, k, d, n, w);
	return op_ecdsa(vc, k, d, n, w);
}

static uint16_t cmd_get_data(struct ep *s, uint8_t p1, uint8_t p2,
			     struct vcard_wbuf *w)
{
	if (p1 != 0x01)
		return SW_WRONG_P1P2;
	if (p2 == 0x86) {
		vcard_put(w, s->gd86, s->gd86len);
		return SW_OK;
	}
	if (p2 == 0x80) {
		vcard_put(w, s->serial, sizeof(s->serial));
		return SW_OK;
	}
	return SW_REF_MISSING;
}

/* ------------------------------------------------------------------ */
/* mutual authentication (plain) */

static uint16_t cmd_init_update(struct ep *s, uint8_t p1, uint8_t p2,
				const uint8_t *d, size_t n, struct vcard_wbuf *w)
{
	uint8_t crypto[8];
	int fips = s->var == V_FIPS;

	s->level = 0;
	s->auth_pending = 0;
	s->sm.open = 0;
	if (p1 || p2)
		return SW_WRONG_P1P2;
	if (n != 8)
		return SW_WRONG_LENGTH;
	memcpy(s->host_chal, d, 8);
	if (RAND_bytes(s->card_chal, 8) != 1 ||
	    ep_sm_derive(&s->sm, s->kenc, s->kmac, s->host_chal, s->card_chal,
			 crypto) < 0)
		return SW_UNKNOWN;
	/* key diversification data: the serial, padded */
	vcard_put(w, s->serial, 8);
	vcard_put(w, "\x00\x00", 2);
	vcard_put_u8(w, 0x01);	       /* key version */
	vcard_put_u8(w, fips ? 0x03 : 0x01); /* SCP */
	if (fips)
		vcard_put_u8(w, 0x00);
	vcard_put(w, s->card_chal, 8);
	vcard_put(w, crypto, 8);
	s->auth_pending = 1;
	return SW_OK;
}

static uint16_t cmd_ext_auth_sm(struct ep *s, uint8_t p1, uint8_t p2,
				const uint8_t *d, size_t n)
{
	int pending = s->auth_pending;

	s->auth_pending = 0;
	s->level = 0;
	if (p1 != 0x03 || p2 != 0x00)
		return SW_WRONG_P1P2;
	if (n != 16)
		return SW_WRONG_LENGTH;
	if (!pending ||
	    ep_sm_verify_host(&s->sm, s->host_chal, s->card_chal, d) < 0) {
		memset(&s->sm.enc, 0, sizeof(s->sm.enc));
		memset(&s->sm.mac, 0, sizeof(s->sm.mac));
		s->sm.open = 0;
		return SW_SECURITY;
	}
	return SW_OK;
}

/* ------------------------------------------------------------------ */
/* dispatch */

static uint16_t dispatch(struct vcard *vc, struct ep *s, uint8_t cla,
			 uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *d,
			 size_t n, size_t ne, struct vcard_wbuf *w)
{
	if (cla == 0x80) {
		switch (ins) {
		case 0xE3:
			return cmd_install_key(vc, s, p1, p2, d, n);
		case 0xE5:
			return cmd_update_key(vc, s, p1, p2, d, n);
		case 0xB4:
			return cmd_read_pubkey(s, p1, p2, d, n, w);
		case 0xE7:
			return cmd_write_factor(vc, s, p1, p2, d, n);
		case 0x34:
			return cmd_list(s, w);
		default:
			return SW_INS;
		}
	}
	if (cla != 0x00)
		return SW_CLA;
	switch (ins) {
	case 0xA4:
		return cmd_select(s, p1, p2, d, n, w);
	case 0xB0:
		return cmd_read_binary(s, p1, p2, ne, w);
	case 0xD6:
		return cmd_update_binary(vc, s, p1, p2, d, n);
	case 0xB2:
		return cmd_read_record(s, p1, p2, ne, w);
	case 0xDC:
	case 0xE2:
		return cmd_write_record(vc, s, ins, p1, p2, d, n);
	case 0xE0:
		return cmd_create(vc, s, p1, p2, d, n);
	case 0xE4:
		return cmd_delete(vc, s, p1, p2, d, n);
	case 0x84:
		return cmd_get_challenge(s, p1, p2, ne, w);
	case 0x82:
		return cmd_external_auth(vc, s, p1, p2, d, n);
	case 0x20:
		return cmd_verify(vc, s, p1, p2, d, n);
	case 0x46:
		return cmd_generate(vc, s, p1, p2, d, n);
	case 0x22:
		return cmd_mse(s, p1, p2, d, n);
	case 0x2A:
		return cmd_pso(vc, s, p1, p2, d, n, w);
	case 0xCA:
		return cmd_get_data(s, p1, p2, w);
	default:
		return SW_INS;
	}
}

/* One BER length at p (short, 81, 82); -1 if malformed. */
static int ber_len(const uint8_t *p, size_t avail, size_t *len, size_t *hl)
{
	if (avail < 1)
		return -1;
	if (p[0] < 0x80) {
		*len = p[0];
		*hl = 1;
	} else if (p[0] == 0x81 && avail >= 2) {
		*len = p[1];
		*hl = 2;
	} else if (p[0] == 0x82 && avail >= 3) {
		*len = (size_t)p[1] << 8 | p[2];
		*hl = 3;
	} else {
		return -1;
	}
	return 0;
}

static size_t sm_fail(struct ep *s, uint8_t *resp, size_t cap)
{
	s->sm.open = 0;
	return vcard_finish(resp, cap, NULL, 0, SW_SM_WRONG);
}

/* Wraps the inner answer: 87 (data), 99 (SW), 8E (MAC). */
static size_t sm_wrap(struct ep *s, const uint8_t *data, size_t n, uint16_t sw,
		      uint8_t *resp, size_t cap)
{
	size_t bs = ep_sm_block(s->sm.mode), padded, off = 0, clen;
	uint8_t *plain = NULL, mac[8];

	if (n) {
		padded = (n / bs + 1) * bs;
		clen = padded + 1;
		if (padded + 32 > cap)
			return vcard_finish(resp, cap, NULL, 0, SW_UNKNOWN);
		plain = OPENSSL_zalloc(padded);
		if (!plain)
			return vcard_finish(resp, cap, NULL, 0, SW_UNKNOWN);
		memcpy(plain, data, n);
		plain[n] = 0x80;
		resp[off++] = 0x87;
		/* The firmware's own length coding: one byte up to FF. */
		if (clen > 0xFF) {
			resp[off++] = 0x82;
			resp[off++] = (uint8_t)(clen >> 8);
		}
		resp[off++] = (uint8_t)clen;
		resp[off++] = 0x01;
		if (ep_sm_crypt(&s->sm, 1, plain, padded, resp + off) < 0) {
			OPENSSL_clear_free(plain, padded);
			return vcard_finish(resp, cap, NULL, 0, SW_UNKNOWN);
		}
		OPENSSL_clear_free(plain, padded);
		off += padded;
	}
	resp[off++] = 0x99;
	resp[off++] = 0x02;
	resp[off++] = (uint8_t)(sw >> 8);
	resp[off++] = (uint8_t)sw;
	if (ep_sm_resp_mac(&s->sm, resp, off, mac) < 0)
		return vcard_finish(resp, cap, NULL, 0, SW_UNKNOWN);
	resp[off++] = 0x8E;
	resp[off++] = 0x08;
	memcpy(resp + off, mac, 8);
	off += 8;
	resp[off++] = (uint8_t)(sw >> 8);
	resp[off++] = (uint8_t)sw;
	return off;
}

static size_t sm_apdu(struct vcard *vc, struct ep *s, const struct vcard_apdu *a,
		      uint8_t *resp, size_t cap)
{
	const uint8_t *p = a->data, *end = a->data + a->lc, *tlv = a->data;
	const uint8_t *cdata = NULL, *mac = NULL;
	uint8_t hdr[4] = {a->cla, a->ins, a->p1, a->p2}, want[8];
	size_t clen = 0, ne = 0, tlvlen = 0, l, hl, alloc = 0;
	uint8_t *plain = NULL, out[RESP_MAX];
	struct vcard_wbuf w = {out, 0, sizeof(out), 0};
	int has_le = 0, case1;
	uint16_t sw;
	size_t r;

	if (!s->sm.open)
		return sm_fail(s, resp, cap);
	ep_sm_bump_icv(&s->sm);
	if (!a->lc)
		return sm_fail(s, resp, cap);
	while (p < end) {
		uint8_t tag = *p++;

		if (ber_len(p, (size_t)(end - p), &l, &hl) < 0 ||
		    l > (size_t)(end - p) - hl)
			return sm_fail(s, resp, cap);
		p += hl;
		if (tag == 0x87 && !cdata && !has_le && !mac) {
			if (l < 1 || p[0] != 0x01)
				return sm_fail(s, resp, cap);
			cdata = p + 1;
			clen = l - 1;
		} else if (tag == 0x97 && !has_le && !mac) {
			if (l == 1)
				ne = p[0] ? p[0] : 256;
			else if (l == 2)
				ne = ((size_t)p[0] << 8 | p[1])
					 ? ((size_t)p[0] << 8 | p[1])
					 : 65536;
			else if (l != 0)
				return sm_fail(s, resp, cap);
			has_le = 1;
		} else if (tag == 0x8E && !mac && l == 8) {
			mac = p;
			tlvlen = (size_t)(p - 2 - tlv);
		} else {
			return sm_fail(s, resp, cap);
		}
		p += l;
	}
	if (!mac || mac + 8 != end)
		return sm_fail(s, resp, cap);
	case1 = s->sm.mode == EP_SM_FIPS && !cdata && !has_le &&
		a->ins == 0x82 && a->p1 == 0x01;
	if (ep_sm_cmd_mac(&s->sm, hdr, tlv, tlvlen, case1, want) < 0 ||
	    CRYPTO_memcmp(want, mac, 8) != 0)
		return sm_fail(s, resp, cap);

	if (cdata) {
		size_t bs = ep_sm_block(s->sm.mode);

		if (!clen || clen % bs)
			return sm_fail(s, resp, cap);
		alloc = clen;
		plain = OPENSSL_malloc(clen);
		if (!plain || ep_sm_crypt(&s->sm, 0, cdata, clen, plain) < 0) {
			OPENSSL_free(plain);
			return sm_fail(s, resp, cap);
		}
		/* ISO padding: the last 80, zeros after it */
		for (l = clen; l > 0 && plain[l - 1] == 0x00; l--)
			;
		if (l == 0 || plain[l - 1] != 0x80) {
			OPENSSL_clear_free(plain, clen);
			return sm_fail(s, resp, cap);
		}
		clen = l - 1;
	}
	if (!has_le)
		ne = 256;
	sw = dispatch(vc, s, (uint8_t)(a->cla & ~0x0C), a->ins, a->p1, a->p2,
		      plain, cdata ? clen : 0, ne, &w);
	if (plain)
		OPENSSL_clear_free(plain, alloc);
	if (w.overflow) {
		w.len = 0;
		sw = SW_UNKNOWN;
	}
	if (sw != SW_OK)
		w.len = 0;
	r = sm_wrap(s, out, w.len, sw, resp, cap);
	OPENSSL_cleanse(out, w.len);
	return r;
}

static size_t ep_apdu(struct vcard *vc, const uint8_t *cmd, size_t len,
		      uint8_t *resp, size_t cap)
{
	struct ep *s = vc->pstate;
	uint8_t out[RESP_MAX];
	struct vcard_wbuf w = {out, 0, sizeof(out), 0};
	struct vcard_apdu a;
	uint16_t sw;
	size_t r;

	if (vcard_parse_apdu(cmd, len, &a) < 0)
		return vcard_finish(resp, cap, NULL, 0, SW_WRONG_LENGTH);
	if ((a.cla & 0x0C) == 0x0C)
		return sm_apdu(vc, s, &a, resp, cap);

	if (a.cla == 0x00 && a.ins == 0xCA)
		sw = cmd_get_data(s, a.p1, a.p2, &w);
	else if (a.cla == 0x80 && a.ins == 0x50)
		sw = cmd_init_update(s, a.p1, a.p2, a.data, a.lc, &w);
	else if (a.cla == 0x84 && a.ins == 0x82)
		sw = cmd_ext_auth_sm(s, a.p1, a.p2, a.data, a.lc);
	else if (a.cla != 0x00 && a.cla != 0x80)
		sw = SW_CLA;
	else
		sw = SW_SECURITY; /* SM is mandatory on these units */
	if (w.overflow || sw != SW_OK)
		w.len = 0;
	r = vcard_finish(resp, cap, out, w.len, sw);
	OPENSSL_cleanse(out, w.len);
	return r;
}

#define EPASS2003_PROFILE(sym, pname, atrbytes)                                \
	const struct vcard_profile sym = {                                     \
	    .name = pname,                                                     \
	    .atr = atrbytes,                                                   \
	    .atrlen = sizeof(atrbytes),                                        \
	    .load = ep_load,                                                   \
	    .save = ep_save,                                                   \
	    .reset = ep_reset,                                                 \
	    .apdu = ep_apdu,                                                   \
	    .free = ep_free,                                                   \
	}

EPASS2003_PROFILE(vcard_profile_epass2003, "epass2003", atr_des);
EPASS2003_PROFILE(vcard_profile_epass2003_aes, "epass2003-aes", atr_aes);
EPASS2003_PROFILE(vcard_profile_epass2003_fips, "epass2003-fips", atr_fips);
EPASS2003_PROFILE(vcard_profile_epass2003_espk, "epass2003-espk", atr_espk);
