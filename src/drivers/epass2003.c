/* Feitian ePass2003 (FTCOS) tokens: mode detection, secure messaging with
 * the transport keys, the challenge-based PIN, signing and decryption, and
 * the two file layouts found on them -- OpenSC's pkcs15-init layout (DF
 * 5015, read as PKCS#15, where kyso also generates keys and writes
 * certificates) and Feitian's ENTERSAFE-ESPK layout that Vietnamese CAs
 * issue (DF 2003, read only: kyso never erases or re-formats such a token).
 *
 * Protocol facts come from OpenSC's card-epass2003.c, pkcs15-epass2003.c
 * and the ESPK description of OpenSC #3834 / PR #3835; see
 * shared/cards/epass2003.md. What the token answers is untrusted: every
 * answer under secure messaging must carry a MAC that verifies, and every
 * length is checked before use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "drivers/espk.h"
#include "drivers/pkcs15.h"
#include "iso7816/apdu.h"
#include "iso7816/asn1.h"
#include "iso7816/sm.h"
#include "iso7816/tlv.h"
#include "token/token.h"
#include "util/buf.h"
#include "util/log.h"

/* --- card facts ---------------------------------------------------------- */

/* 3B 9F 95 81 31 FE 9F 00 66 46 53 05 vv vv vv 71 DF 00 00 xx xx xx xx:
 * the chip OS version and the last four bytes vary. */
static const uint8_t ep_atr[23] = {
    0x3B, 0x9F, 0x95, 0x81, 0x31, 0xFE, 0x9F, 0x00, 0x66, 0x46, 0x53, 0x05,
    0x00, 0x00, 0x00, 0x71, 0xDF, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
static const uint8_t ep_atr_mask[23] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00};

/* The transport keys every token was seen to use, CA-personalised ones
 * included (OpenSC #3834). */
static const uint8_t static_key[16] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
				       0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C,
				       0x0D, 0x0E, 0x0F, 0x10};

#define MAX_RECV 0xD8 /* plain bytes per READ BINARY answer */

#define INS_MSE	       0x22
#define INS_PSO	       0x2A
#define INS_GEN_KEY    0x46
#define INS_MUTUAL     0x50
#define INS_PIN	       0x82
#define INS_CHALLENGE  0x84
#define INS_SELECT     0xA4
#define INS_READ_BIN   0xB0
#define INS_READ_REC   0xB2
#define INS_READ_PUB   0xB4
#define INS_GET_DATA   0xCA
#define INS_UPDATE_BIN 0xD6
#define INS_CREATE     0xE0
#define INS_DELETE     0xE4
#define INS_CHANGE_KEY 0xE5

#define KID_USER 1 /* OpenSC's ENTERSAFE_USER_PIN_ID */
#define KID_SO	 2 /* ENTERSAFE_SO_PIN_ID: the user PIN's unblocker */

#define FID_MF	    0x3F00
#define FID_DIR	    0x2F00
#define FID_P15	    0x5015
#define FID_ODF	    0x5031
#define FID_TINFO   0x5032
#define FID_MAXPIN  0x9F00 /* pkcs15-init: user and SO maximum tries */
#define FID_STEP    0x20   /* the COS takes FID low bits as SFI */
#define KEY_FID(r)  (0x2900 + FID_STEP * (r))
#define PIN_MAX_LEN 64 /* the PIN is hashed: any length works */

#define FILE_MAX  16384 /* bound for any file kyso reads */
#define CERT_MAX  8192
#define FILES_MAX 64 /* objects of one layout */

/* Internal result: the card no longer knows our session keys (reset,
 * another program authenticated); never leaves this file. */
#define RV_SESSION_LOST (CKR_VENDOR_DEFINED | 0x4B590001UL)

enum layout { LAYOUT_NONE, LAYOUT_PKCS15, LAYOUT_ESPK };

struct ep_state {
	int sm;	     /* secure messaging in use (not a plain-mode token) */
	int aes;     /* AES session keys, else 3DES */
	int fips;    /* FIPS mode: AES-CMAC derivation and MACs */
	int session; /* session keys established */
	struct kyso_sm s;
	char serial[17]; /* from GET DATA 01 86 */
	enum layout layout;
	struct kyso_p15_path app; /* the application DF */
	uint8_t cur[KYSO_P15_PATH_MAX];
	size_t curlen; /* DF selected as far as we know; 0: unknown */
	uint8_t user_kid, so_kid;
	int last_plain; /* the last answer was a bare status word */
	/* PKCS#15 layout: where kyso adds objects, and the user PIN's id */
	struct kyso_p15_path prkdf, pukdf, cdf;
	uint8_t auth_id[KYSO_P15_ID_MAX];
	size_t auth_idlen;
};

/* Flags of one exchange. */
enum {
	X_SECRET = 1 << 0,  /* data is PIN material: redacted in traces */
	X_HDR_MAC = 1 << 1, /* FIPS: header-only MAC (82 01 without data) */
	X_PLAIN = 1 << 2,   /* never wrapped (mode query, authentication) */
};

static struct ep_state *state(struct kyso_card *card)
{
	if (card->drvdata == NULL)
		card->drvdata = calloc(1, sizeof(struct ep_state));
	return card->drvdata;
}

static void ep_unbind(struct kyso_card *card)
{
	struct ep_state *st = card->drvdata;

	if (st == NULL)
		return;
	kyso_sm_clear(&st->s);
	kyso_wipe(st, sizeof(*st));
	free(st);
	card->drvdata = NULL;
}

/* Whatever a driver entry point may return: the internal code is a
 * device error to the outside. */
static CK_RV outward(CK_RV rv)
{
	return rv == RV_SESSION_LOST ? CKR_DEVICE_ERROR : rv;
}

/* --- exchanges ----------------------------------------------------------- */

/* One command. Under secure messaging it is wrapped and the answer is
 * checked and opened; resp (may be NULL) gets the plain answer data, *sw
 * the status word. A bare status word under secure messaging sets
 * st->last_plain: it only ever means failure and its tries count is not
 * believed. RV_SESSION_LOST when the card says the session is gone. */
static CK_RV xmit(struct kyso_card *card, struct ep_state *st, uint8_t cla,
		  uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *data,
		  size_t lc, size_t le, unsigned flags, struct kyso_buf *resp,
		  uint16_t *sw)
{
	struct kyso_apdu a = {0};
	struct kyso_buf scratch = KYSO_BUF_INIT;
	uint8_t *cmd = NULL, *rbuf = NULL;
	size_t cmdlen = 0, cap, rlen = 0;
	int plain = 0;
	CK_RV rv;

	a.cla = cla;
	a.ins = ins;
	a.p1 = p1;
	a.p2 = p2;
	a.data = lc ? data : NULL;
	a.lc = lc;
	a.le = le;
	*sw = 0;
	st->last_plain = 0;
	if (resp == NULL) {
		scratch.max = 4096;
		scratch.secret = 1;
		resp = &scratch;
	}
	if ((!st->sm || (flags & X_PLAIN)) && !(flags & X_SECRET)) {
		rv = kyso_apdu_transmit(card, &a, resp, sw);
		goto out;
	}
	if (!st->sm || (flags & X_PLAIN)) {
		/* PIN material goes in one exchange: no 6Cxx re-send, no
		 * GET RESPONSE (kyso_apdu_transmit re-sends on 6Cxx unless
		 * the INS is an ISO PIN command; this one is not). */
		cap = 4 + 3 + lc + 3;
		cmd = malloc(cap);
		rbuf = malloc(KYSO_MAX_RAPDU);
		if (cmd == NULL || rbuf == NULL) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		a.flags = KYSO_APDU_SECRET;
		rv = kyso_apdu_encode(&a, lc > 255, cmd, cap, &cmdlen);
		if (rv == CKR_OK)
			rv = kyso_card_transmit_redact(card, cmd, cmdlen, rbuf,
						       &rlen, 1);
		if (rv != CKR_OK)
			goto out;
		if (kyso_buf_append(resp, rbuf, rlen - 2) < 0) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		*sw = (uint16_t)(rbuf[rlen - 2] << 8 | rbuf[rlen - 1]);
		goto out;
	}
	if (!st->session) {
		rv = RV_SESSION_LOST;
		goto out;
	}
	cap = kyso_sm_wrapped_max(lc);
	cmd = malloc(cap);
	rbuf = malloc(KYSO_MAX_RAPDU);
	if (cmd == NULL || rbuf == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	rv = kyso_sm_wrap(
	    &st->s, &a,
	    (flags & X_HDR_MAC) && st->fips ? KYSO_SM_MAC_HEADER_ONLY : 0, cmd,
	    cap, &cmdlen);
	if (rv != CKR_OK)
		goto out;
	rv = kyso_card_transmit_redact(card, cmd, cmdlen, rbuf, &rlen,
				       (flags & X_SECRET) != 0);
	if (rv != CKR_OK)
		goto out;
	rv = kyso_sm_unwrap(&st->s, rbuf, rlen, resp, sw, &plain);
	if (rv != CKR_OK) {
		/* Never used: the session cannot be trusted any more. */
		st->session = 0;
		st->curlen = 0;
		goto out;
	}
	if (plain) {
		st->last_plain = 1;
		kyso_dbg("epass2003: unprotected answer %04X", *sw);
		/* 6987/6988: SM objects missing or wrong, i.e. our MAC did
		 * not verify on the card; 6985 is what OpenSC renews its
		 * session on as well. */
		if (*sw == 0x6987 || *sw == 0x6988 || *sw == 0x6985) {
			st->session = 0;
			st->curlen = 0;
			rv = RV_SESSION_LOST;
		}
	}
out:
	if (cmd != NULL) {
		kyso_wipe(cmd, cmdlen);
		free(cmd);
	}
	if (rbuf != NULL) {
		kyso_wipe(rbuf, rlen);
		free(rbuf);
	}
	kyso_buf_free(&scratch);
	return rv;
}

/* --- mode detection and session ----------------------------------------- */

static int atr_matches(const struct kyso_card *card)
{
	size_t i;

	if (card->atrlen != sizeof(ep_atr))
		return 0;
	for (i = 0; i < sizeof(ep_atr); i++)
		if ((card->atr[i] & ep_atr_mask[i]) != ep_atr[i])
			return 0;
	return 1;
}

/* The answer to GET DATA 01 86 (OpenSC reads it at fixed offsets; it is a
 * list of TLVs): 80 = 01 for AES secure messaging, else 3DES; 87 = 01 with
 * 80 = 01 for FIPS mode; 84 = 00 for a token without secure messaging;
 * 85 with the serial number in bytes 2..9. */
static int parse_mode(struct ep_state *st, const uint8_t *p, size_t len)
{
	struct kyso_cur c = kyso_cur_make(p, len);
	struct kyso_tlv t;
	int r, alg = -1, fips = 0, plain = 0;
	size_t i;

	st->serial[0] = '\0';
	while ((r = kyso_tlv_next(&c, &t)) == 1) {
		switch (t.tag) {
		case 0x80:
			if (t.len != 1)
				return -1;
			alg = t.val[0];
			break;
		case 0x84:
			if (t.len >= 1 && t.val[0] == 0x00)
				plain = 1;
			break;
		case 0x85:
			if (t.len >= 10) {
				for (i = 0; i < 8; i++)
					snprintf(st->serial + 2 * i, 3, "%02x",
						 t.val[2 + i]);
			}
			break;
		case 0x87:
			if (t.len == 1 && t.val[0] == 0x01)
				fips = 1;
			break;
		default:
			break;
		}
	}
	if (r < 0 || alg < 0)
		return -1;
	st->aes = alg == 0x01;
	st->fips = st->aes && fips;
	st->sm = !plain;
	return 0;
}

static int ep_match(struct kyso_card *card)
{
	struct kyso_buf resp = KYSO_BUF_INIT;
	struct ep_state tmp, *st;
	int old_ext = card->ext_apdu;
	uint16_t sw = 0;
	CK_RV rv;

	if (!atr_matches(card))
		return 0;
	memset(&tmp, 0, sizeof(tmp));
	card->ext_apdu = 1;
	resp.max = 512;
	rv = xmit(card, &tmp, 0x00, INS_GET_DATA, 0x01, 0x86, NULL, 0, 256,
		  X_PLAIN, &resp, &sw);
	if (rv != CKR_OK || sw != KYSO_SW_OK ||
	    parse_mode(&tmp, resp.p, resp.len) < 0) {
		kyso_dbg("epass2003: ATR matches but GET DATA 01 86 does not "
			 "(%04X)",
			 sw);
		kyso_buf_free(&resp);
		card->ext_apdu = old_ext;
		return 0;
	}
	kyso_buf_free(&resp);
	st = state(card);
	if (st == NULL) {
		card->ext_apdu = old_ext;
		return 0;
	}
	st->sm = tmp.sm;
	st->aes = tmp.aes;
	st->fips = tmp.fips;
	memcpy(st->serial, tmp.serial, sizeof(st->serial));
	kyso_dbg("epass2003: %s", !st->sm    ? "no secure messaging"
				  : st->fips ? "FIPS mode, AES secure messaging"
				  : st->aes  ? "AES secure messaging"
					     : "3DES secure messaging");
	return 1;
}

/* Session-key derivation, card and host cryptograms and the first chaining
 * value, as OpenSC's gen_init_key / verify_init_key compute them:
 * - non-FIPS: keys = ECB(static key, cr[4..7] hr[0..3] cr[0..3] hr[4..7]);
 *   cryptograms = the third 8-byte piece of CBC(S-ENC, a || b || 80 00..)
 *   with (a, b) = (host, card) for the card's, (card, host) for ours;
 *   chaining value = CBC-MAC(S-MAC) of 84 82 03 00 10 || ours || 80 00 00,
 *   full 3DES for 3DES sessions.
 * - FIPS: keys = AES-CMAC(static key, 00*11 || c || 00 00 80 01 || hr ||
 *   cr) with c = 04 (S-ENC), 06 (S-MAC); cryptograms = AES-CMAC(S-ENC, the
 *   same with c = 00 (card) or 01 (host) and 00 40 01); chaining value =
 *   AES-CMAC(S-MAC, 84 82 03 00 10 || ours). */
static CK_RV derive(struct ep_state *st, const uint8_t hr[8],
		    const uint8_t cr[8], uint8_t card_crypt[8],
		    uint8_t host_crypt[8], uint8_t icv_mac[8])
{
	enum kyso_cipher alg = st->aes ? KYSO_AES : KYSO_DES3;
	size_t bs = kyso_cipher_block(alg);
	uint8_t d[32], m[32], out[32], tag[16], hdr[16];
	CK_RV rv;

	memset(d, 0, sizeof(d));
	memset(hdr, 0, sizeof(hdr));
	hdr[0] = 0x84;
	hdr[1] = INS_PIN;
	hdr[2] = 0x03;
	hdr[3] = 0x00;
	hdr[4] = 0x10;
	if (st->fips) {
		d[11] = 0x04;
		d[14] = 0x80;
		d[15] = 0x01;
		memcpy(d + 16, hr, 8);
		memcpy(d + 24, cr, 8);
		rv = kyso_mac_cmac(static_key, 16, NULL, d, 32, st->s.kenc);
		if (rv != CKR_OK)
			goto out;
		d[11] = 0x06;
		rv = kyso_mac_cmac(static_key, 16, NULL, d, 32, st->s.kmac);
		if (rv != CKR_OK)
			goto out;
		d[11] = 0x00;
		d[14] = 0x40;
		rv = kyso_mac_cmac(st->s.kenc, 16, NULL, d, 32, tag);
		if (rv != CKR_OK)
			goto out;
		memcpy(card_crypt, tag, 8);
		d[11] = 0x01;
		rv = kyso_mac_cmac(st->s.kenc, 16, NULL, d, 32, tag);
		if (rv != CKR_OK)
			goto out;
		memcpy(host_crypt, tag, 8);
		memcpy(hdr + 5, host_crypt, 8);
		rv = kyso_mac_cmac(st->s.kmac, 16, NULL, hdr, 13, tag);
		if (rv != CKR_OK)
			goto out;
		memcpy(icv_mac, tag, 8);
		goto out;
	}
	memcpy(d, cr + 4, 4);
	memcpy(d + 4, hr, 4);
	memcpy(d + 8, cr, 4);
	memcpy(d + 12, hr + 4, 4);
	rv = kyso_cipher_ecb(alg, static_key, 16, 1, d, 16, st->s.kenc);
	if (rv != CKR_OK)
		goto out;
	rv = kyso_cipher_ecb(alg, static_key, 16, 1, d, 16, st->s.kmac);
	if (rv != CKR_OK)
		goto out;
	memset(m, 0, sizeof(m));
	memcpy(m, hr, 8);
	memcpy(m + 8, cr, 8);
	m[16] = 0x80;
	rv = kyso_cipher_cbc(alg, st->s.kenc, 16, 1, NULL, m, 16 + bs, out);
	if (rv != CKR_OK)
		goto out;
	memcpy(card_crypt, out + 16, 8);
	memcpy(m, cr, 8);
	memcpy(m + 8, hr, 8);
	rv = kyso_cipher_cbc(alg, st->s.kenc, 16, 1, NULL, m, 16 + bs, out);
	if (rv != CKR_OK)
		goto out;
	memcpy(host_crypt, out + 16, 8);
	memcpy(hdr + 5, host_crypt, 8);
	hdr[13] = 0x80;
	rv = kyso_cipher_cbc(alg, st->s.kmac, 16, 1, NULL, hdr, 16, out);
	if (rv != CKR_OK)
		goto out;
	memcpy(icv_mac, st->aes ? out : out + 8, 8);
out:
	kyso_wipe(d, sizeof(d));
	kyso_wipe(m, sizeof(m));
	kyso_wipe(out, sizeof(out));
	kyso_wipe(tag, sizeof(tag));
	return rv;
}

/* Mutual authentication with the transport keys: a fresh session. */
static CK_RV open_session(struct kyso_card *card, struct ep_state *st)
{
	struct kyso_buf resp = KYSO_BUF_INIT;
	uint8_t hr[8], cr[8], card_crypt[8], host_crypt[8], icv[8], cmd[16];
	size_t want = st->fips ? 29 : 28, off = st->fips ? 13 : 12;
	uint16_t sw = 0;
	CK_RV rv;

	if (!st->sm)
		return CKR_OK;
	st->session = 0;
	st->curlen = 0;
	kyso_sm_clear(&st->s);
	rv = kyso_random(hr, sizeof(hr));
	if (rv != CKR_OK)
		return rv;
	resp.max = 256;
	rv = xmit(card, st, 0x80, INS_MUTUAL, 0x00, 0x00, hr, sizeof(hr), want,
		  X_PLAIN, &resp, &sw);
	if (rv != CKR_OK)
		goto out;
	if (sw != KYSO_SW_OK || resp.len < want) {
		kyso_err("epass2003: mutual authentication refused (%04X, %zu "
			 "bytes)",
			 sw, resp.len);
		rv = CKR_DEVICE_ERROR;
		goto out;
	}
	memcpy(cr, resp.p + off, 8);
	rv = derive(st, hr, cr, card_crypt, host_crypt, icv);
	if (rv != CKR_OK)
		goto out;
	if (kyso_ct_memcmp(card_crypt, resp.p + off + 8, 8) != 0) {
		kyso_err("epass2003: the card's cryptogram is wrong: not the "
			 "transport keys");
		rv = CKR_DEVICE_ERROR;
		goto out;
	}
	memcpy(cmd, host_crypt, 8);
	memcpy(cmd + 8, icv, 8);
	rv = xmit(card, st, 0x84, INS_PIN, 0x03, 0x00, cmd, sizeof(cmd),
		  KYSO_LE_NONE, X_PLAIN, NULL, &sw);
	if (rv != CKR_OK)
		goto out;
	if (sw != KYSO_SW_OK) {
		kyso_err("epass2003: the card refused our cryptogram (%04X)",
			 sw);
		rv = CKR_DEVICE_ERROR;
		goto out;
	}
	st->s.cipher = st->aes ? KYSO_AES : KYSO_DES3;
	st->s.mac = st->fips  ? KYSO_SM_CMAC
		    : st->aes ? KYSO_SM_CBCMAC
			      : KYSO_SM_RETAIL;
	st->s.flags = KYSO_SM_ICV_COUNTER;
	memset(st->s.icv, 0, sizeof(st->s.icv));
	memcpy(st->s.icv, icv, 8);
	st->session = 1;
	kyso_dbg("epass2003: secure messaging session open");
out:
	if (rv != CKR_OK)
		kyso_sm_clear(&st->s);
	kyso_wipe(hr, sizeof(hr));
	kyso_wipe(cr, sizeof(cr));
	kyso_wipe(card_crypt, sizeof(card_crypt));
	kyso_wipe(host_crypt, sizeof(host_crypt));
	kyso_wipe(icv, sizeof(icv));
	kyso_wipe(cmd, sizeof(cmd));
	kyso_buf_free(&resp);
	return rv;
}

/* --- files --------------------------------------------------------------- */

/* FID as the COS stores it: pkcs15-init's FIDs 29xx..34xx name index xx,
 * which the COS keeps as xx * 0x20 (OpenSC's epass2003_hook_path, byte
 * arithmetic included). */
static uint16_t hook_fid(const struct ep_state *st, uint16_t fid)
{
	uint8_t hi = (uint8_t)(fid >> 8), lo = (uint8_t)fid;

	if (st->layout != LAYOUT_PKCS15)
		return fid;
	if (hi >= 0x29 && hi <= 0x34 && !(hi >= 0x2A && hi <= 0x2F))
		return (uint16_t)(hi << 8 | (uint8_t)(lo * FID_STEP));
	return fid;
}

struct fci {
	size_t size; /* 0 when not told */
	int is_df;
	uint8_t name[16];
	size_t namelen;
};

static void parse_fci(const uint8_t *p, size_t len, struct fci *f)
{
	struct kyso_tlv t, e;

	memset(f, 0, sizeof(*f));
	if (kyso_tlv_find(p, len, 0x6F, &t) != 1 &&
	    kyso_tlv_find(p, len, 0x62, &t) != 1)
		return;
	if (kyso_tlv_find(t.val, t.len, 0x80, &e) == 1 && e.len >= 1 &&
	    e.len <= 2)
		f->size =
		    e.len == 2 ? (size_t)e.val[0] << 8 | e.val[1] : e.val[0];
	else if (kyso_tlv_find(t.val, t.len, 0x81, &e) == 1 && e.len >= 2)
		f->size = (size_t)e.val[0] << 8 | e.val[1];
	if (kyso_tlv_find(t.val, t.len, 0x82, &e) == 1 && e.len >= 1)
		f->is_df = e.val[0] == 0x38;
	if (kyso_tlv_find(t.val, t.len, 0x84, &e) == 1 && e.len >= 1 &&
	    e.len <= sizeof(f->name)) {
		memcpy(f->name, e.val, e.len);
		f->namelen = e.len;
	}
}

/* SELECT by FID (P1 00), with the FCI when f != NULL. *sw gets the status
 * word; CKR_OK whatever it is. */
static CK_RV select_fid(struct kyso_card *card, struct ep_state *st,
			uint16_t fid, struct fci *f, uint16_t *sw)
{
	struct kyso_buf resp = KYSO_BUF_INIT;
	uint8_t d[2];
	CK_RV rv;

	fid = hook_fid(st, fid);
	d[0] = (uint8_t)(fid >> 8);
	d[1] = (uint8_t)fid;
	resp.max = 512;
	rv = xmit(card, st, 0x00, INS_SELECT, 0x00, 0x00, d, 2,
		  f != NULL ? 256 : KYSO_LE_NONE, 0, &resp, sw);
	if (rv == CKR_OK && f != NULL) {
		if (*sw == KYSO_SW_OK)
			parse_fci(resp.p, resp.len, f);
		else
			memset(f, 0, sizeof(*f));
	}
	kyso_buf_free(&resp);
	return rv;
}

/* Selects a path of FIDs from the MF, skipping the DFs already selected.
 * The last FID is selected with its FCI into *f (may be NULL). CKR_OK with
 * *sw = 9000, or the failing status word. */
static CK_RV select_path(struct kyso_card *card, struct ep_state *st,
			 const uint8_t *path, size_t len, struct fci *f,
			 uint16_t *sw)
{
	size_t i = 0;
	uint16_t fid;
	CK_RV rv;

	*sw = 0;
	if (len < 2 || len % 2)
		return CKR_ARGUMENTS_BAD;
	if (st->curlen > 0 && st->curlen < len &&
	    memcmp(st->cur, path, st->curlen) == 0)
		i = st->curlen;
	for (; i < len; i += 2) {
		fid = (uint16_t)(path[i] << 8 | path[i + 1]);
		rv = select_fid(card, st, fid, i + 2 == len ? f : NULL, sw);
		if (rv != CKR_OK) {
			st->curlen = 0;
			return rv;
		}
		/* a refused SELECT leaves the current DF as it was */
		if (*sw != KYSO_SW_OK)
			return CKR_OK;
		/* every FID but the last is a DF */
		if (i + 2 < len) {
			memcpy(st->cur, path, i + 2);
			st->curlen = i + 2;
		}
	}
	return CKR_OK;
}

/* Selects the application DF (and makes it the current DF). */
static CK_RV select_app(struct kyso_card *card, struct ep_state *st,
			uint16_t *sw)
{
	CK_RV rv;

	if (st->curlen == st->app.len &&
	    memcmp(st->cur, st->app.v, st->app.len) == 0) {
		*sw = KYSO_SW_OK;
		return CKR_OK;
	}
	rv = select_path(card, st, st->app.v, st->app.len, NULL, sw);
	if (rv == CKR_OK && *sw == KYSO_SW_OK) {
		memcpy(st->cur, st->app.v, st->app.len);
		st->curlen = st->app.len;
	}
	return rv;
}

/* Reads the selected transparent EF: up to max bytes (the file's size when
 * known), in pieces of MAX_RECV. With der != 0 the reading stops as soon
 * as the elements read so far are whole and followed by padding (one
 * element only when der == 2): directory files are allocated much larger
 * than what they hold. */
static CK_RV read_binary(struct kyso_card *card, struct ep_state *st,
			 size_t size, size_t max, int der, struct kyso_buf *out)
{
	size_t off = 0, chunk, before, used = 0;
	uint16_t sw = 0;
	int r;
	CK_RV rv;

	if (size == 0 || size > max)
		size = max;
	if (size > 0x7FFF)
		size = 0x7FFF; /* READ BINARY offsets are 15 bits */
	out->max = max + MAX_RECV;
	while (off < size) {
		chunk = size - off < MAX_RECV ? size - off : MAX_RECV;
		before = out->len;
		rv = xmit(card, st, 0x00, INS_READ_BIN, (uint8_t)(off >> 8),
			  (uint8_t)off, NULL, 0, chunk, 0, out, &sw);
		if (rv != CKR_OK)
			return rv;
		if (sw == 0x6282 || sw == 0x6B00)
			break; /* end of the file */
		if (sw != KYSO_SW_OK)
			return kyso_sw_error(sw);
		if (out->len - before > chunk) {
			kyso_err("epass2003: READ BINARY gave more than asked");
			return CKR_DEVICE_ERROR;
		}
		off += out->len - before;
		if (out->len - before < chunk)
			break;
		if (der) {
			r = kyso_asn1_extent(out->p, out->len, off >= size,
					     &used);
			if (r != 0 || (der == 2 && used > 0))
				break;
		}
	}
	return CKR_OK;
}

/* Selects a file by path and reads it (see read_binary). *sw gets the
 * SELECT's status word: a missing file is CKR_OK with *sw 6A82. */
static CK_RV read_file(struct kyso_card *card, struct ep_state *st,
		       const uint8_t *path, size_t len, size_t max, int der,
		       struct kyso_buf *out, uint16_t *sw)
{
	struct fci f;
	CK_RV rv;

	rv = select_path(card, st, path, len, &f, sw);
	if (rv != CKR_OK || *sw != KYSO_SW_OK)
		return rv;
	return read_binary(card, st, f.size, max, der, out);
}

/* A file of the application DF by FID. */
static CK_RV read_app_file(struct kyso_card *card, struct ep_state *st,
			   uint16_t fid, size_t max, int der,
			   struct kyso_buf *out, uint16_t *sw)
{
	uint8_t path[KYSO_P15_PATH_MAX];

	if (st->app.len + 2 > sizeof(path))
		return CKR_GENERAL_ERROR;
	memcpy(path, st->app.v, st->app.len);
	path[st->app.len] = (uint8_t)(fid >> 8);
	path[st->app.len + 1] = (uint8_t)fid;
	return read_file(card, st, path, st->app.len + 2, max, der, out, sw);
}

/* --- PIN ----------------------------------------------------------------- */

/* The PIN's key: SHA-1(PIN) || PIN length (4 bytes, big-endian), used as
 * three-key 3DES (OpenSC's hash_data with SHA-1). */
static CK_RV pin_key(const uint8_t *pin, size_t len, uint8_t key[24])
{
	CK_RV rv = kyso_digest_once(CKM_SHA_1, pin, len, key);

	key[20] = (uint8_t)(len >> 24);
	key[21] = (uint8_t)(len >> 16);
	key[22] = (uint8_t)(len >> 8);
	key[23] = (uint8_t)len;
	return rv;
}

static CK_RV get_challenge(struct kyso_card *card, struct ep_state *st,
			   uint8_t out[8])
{
	struct kyso_buf resp = KYSO_BUF_INIT;
	uint16_t sw = 0;
	CK_RV rv;

	resp.max = 64;
	resp.secret = 1;
	rv = xmit(card, st, 0x00, INS_CHALLENGE, 0x00, 0x00, NULL, 0, 8, 0,
		  &resp, &sw);
	if (rv == CKR_OK && sw != KYSO_SW_OK)
		rv = kyso_sw_error(sw);
	if (rv == CKR_OK && resp.len < 8) {
		kyso_err("epass2003: short challenge");
		rv = CKR_DEVICE_ERROR;
	}
	if (rv == CKR_OK)
		memcpy(out, resp.p, 8);
	kyso_buf_free(&resp);
	return rv;
}

/* What an answer to a PIN command means. An unprotected status word under
 * secure messaging is a failure, never a count of tries. */
static CK_RV pin_sw(const struct ep_state *st, uint16_t sw, int *tries)
{
	CK_RV rv;

	*tries = -1;
	if (st->last_plain) {
		rv = kyso_sw_error(sw);
		return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED
			   ? CKR_DEVICE_ERROR
			   : rv;
	}
	if (kyso_pin_sw(sw, &rv, tries))
		return rv;
	return kyso_sw_error(sw);
}

/* The PIN check: GET CHALLENGE, then 00 82 01 (80|kid) with the challenge
 * encrypted under the PIN's key. Sent once. */
static CK_RV verify_pin(struct kyso_card *card, struct ep_state *st,
			uint8_t kid, const uint8_t *pin, size_t len, int *tries)
{
	uint8_t chal[8], key[24], crypt[8];
	uint16_t sw = 0;
	CK_RV rv;

	*tries = -1;
	if (pin == NULL || len == 0 || len > PIN_MAX_LEN)
		return CKR_PIN_LEN_RANGE;
	rv = get_challenge(card, st, chal);
	if (rv != CKR_OK)
		return rv;
	rv = pin_key(pin, len, key);
	if (rv == CKR_OK)
		rv = kyso_cipher_ecb(KYSO_DES3, key, sizeof(key), 1, chal, 8,
				     crypt);
	kyso_wipe(key, sizeof(key));
	if (rv != CKR_OK)
		goto out;
	rv = xmit(card, st, 0x00, INS_PIN, 0x01, (uint8_t)(0x80 | kid), crypt,
		  sizeof(crypt), KYSO_LE_NONE, X_SECRET, NULL, &sw);
	if (rv == CKR_OK)
		rv = pin_sw(st, sw, tries);
out:
	kyso_wipe(chal, sizeof(chal));
	kyso_wipe(crypt, sizeof(crypt));
	return rv;
}

/* Tries left without spending one: the same command without data answers
 * 63Cx. *status gets what the card said (CKR_OK, CKR_PIN_LOCKED, or an
 * error when it said something else). */
static CK_RV pin_query(struct kyso_card *card, struct ep_state *st, uint8_t kid,
		       int *tries, CK_RV *status)
{
	uint8_t chal[8];
	uint16_t sw = 0;
	CK_RV rv;

	*tries = -1;
	*status = CKR_DEVICE_ERROR;
	/* OpenSC asks for a challenge first; the token may expect it. */
	rv = get_challenge(card, st, chal);
	kyso_wipe(chal, sizeof(chal));
	if (rv != CKR_OK)
		return rv;
	rv = xmit(card, st, 0x00, INS_PIN, 0x01, (uint8_t)(0x80 | kid), NULL, 0,
		  KYSO_LE_NONE, X_HDR_MAC, NULL, &sw);
	if (rv != CKR_OK)
		return rv;
	if (st->last_plain)
		*status = kyso_sw_error(sw);
	else
		*status = kyso_pin_state_sw(sw, tries);
	return CKR_OK;
}

/* --- bind: PKCS#15 layout ------------------------------------------------ */

static void hex_lower(const uint8_t *p, size_t n, char *out, size_t cap)
{
	static const char digits[] = "0123456789abcdef";
	size_t i, k = 0;

	for (i = 0; i < n && k + 2 < cap; i++) {
		out[k++] = digits[p[i] >> 4];
		out[k++] = digits[p[i] & 0x0F];
	}
	out[k] = '\0';
}

/* The serial in CK_TOKEN_INFO's 16 characters: the last 16 hex digits. */
static void set_serial(struct kyso_token *tok, const uint8_t *p, size_t n)
{
	char hex[2 * 32 + 1];
	size_t l;

	if (n > 32)
		n = 32;
	hex_lower(p, n, hex, sizeof(hex));
	l = strlen(hex);
	if (l > 16)
		memmove(hex, hex + l - 16, 17);
	memcpy(tok->serial, hex, strlen(hex) + 1);
}

static uint16_t path_fid(const struct kyso_p15_path *p)
{
	return p->len >= 2
		   ? (uint16_t)(p->v[p->len - 2] << 8 | p->v[p->len - 1])
		   : 0;
}

/* Reads the directory files of one kind and hands each object to fn. A
 * missing or malformed file is skipped (logged); transport failures and
 * memory exhaustion stop the bind. */
typedef CK_RV (*p15_fn)(struct kyso_card *, struct ep_state *,
			struct kyso_token *, const struct kyso_asn1 *, void *);

static CK_RV each_object(struct kyso_card *card, struct ep_state *st,
			 struct kyso_token *tok, const struct kyso_p15_odf *odf,
			 enum kyso_p15_df kind, p15_fn fn, void *arg)
{
	struct kyso_buf buf = KYSO_BUF_INIT;
	struct kyso_p15_path path;
	struct kyso_asn1 obj;
	struct kyso_cur c;
	uint16_t sw = 0;
	size_t i;
	int r;
	CK_RV rv = CKR_OK;

	for (i = 0; i < odf->n[kind]; i++) {
		kyso_buf_reset(&buf);
		if (kyso_p15_path_join(&st->app, &odf->df[kind][i], &path) < 0)
			continue;
		rv = read_file(card, st, path.v, path.len, FILE_MAX, 1, &buf,
			       &sw);
		if (rv != CKR_OK)
			goto out;
		if (sw != KYSO_SW_OK) {
			kyso_dbg("epass2003: directory file %04X: %04X",
				 path_fid(&path), sw);
			continue;
		}
		c = kyso_cur_make(buf.p, buf.len);
		while ((r = kyso_p15_next(&c, &obj)) == 1) {
			rv = fn(card, st, tok, &obj, arg);
			if (rv != CKR_OK)
				goto out;
		}
		if (r < 0)
			kyso_err("epass2003: directory file %04X is malformed "
				 "after some objects",
				 path_fid(&path));
	}
out:
	kyso_buf_free(&buf);
	return rv;
}

struct p15_pins {
	int have_user, have_so;
	struct kyso_p15_pin user, so;
};

static CK_RV on_pin(struct kyso_card *card, struct ep_state *st,
		    struct kyso_token *tok, const struct kyso_asn1 *obj,
		    void *arg)
{
	struct p15_pins *pins = arg;
	struct kyso_p15_pin pin;
	int r = kyso_p15_pin(obj, &pin);

	(void)card;
	(void)st;
	(void)tok;
	if (r == KYSO_P15_BAD)
		kyso_err("epass2003: malformed AODF entry skipped");
	if (r != KYSO_P15_OK)
		return CKR_OK;
	if (pin.flags & (KYSO_P15_PIN_SO | KYSO_P15_PIN_UNBLOCKING)) {
		if (!pins->have_so++)
			pins->so = pin;
	} else if (!pins->have_user++) {
		pins->user = pin;
	}
	return CKR_OK;
}

#define MAX_KEYS 16

struct p15_list {
	struct kyso_key keys[MAX_KEYS];
	size_t nkeys;
	uint8_t cert_ids[MAX_KEYS][KYSO_MAX_ID];
	size_t cert_idlen[MAX_KEYS];
	size_t ncerts;
};

static CK_RV on_prkey(struct kyso_card *card, struct ep_state *st,
		      struct kyso_token *tok, const struct kyso_asn1 *obj,
		      void *arg)
{
	struct p15_list *l = arg;
	struct kyso_p15_key k;
	struct kyso_key key;
	uint32_t ref;
	int r = kyso_p15_prkey(obj, &k);

	(void)card;
	(void)st;
	(void)tok;
	if (r == KYSO_P15_BAD)
		kyso_err("epass2003: malformed PrKDF entry skipped");
	if (r != KYSO_P15_OK || l->nkeys == MAX_KEYS)
		return CKR_OK;
	/* pkcs15-init writes the key index as keyReference and as the last
	 * byte of the path; MSE names file 2900 + 0x20 * index. */
	ref = k.has_ref ? k.ref : k.path.len ? k.path.v[k.path.len - 1] : 0;
	if (ref > 7 || k.idlen == 0 || k.idlen > KYSO_MAX_ID) {
		kyso_err("epass2003: private key with reference %u or id of "
			 "%zu bytes skipped",
			 (unsigned)ref, k.idlen);
		return CKR_OK;
	}
	memset(&key, 0, sizeof(key));
	key.type = k.type == KYSO_P15_KEY_EC ? CKK_EC : CKK_RSA;
	key.bits = k.bits ? k.bits : key.type == CKK_EC ? 256 : 0;
	if (key.type == CKK_EC && key.bits != 256) {
		kyso_err("epass2003: EC key of %u bits skipped",
			 (unsigned)key.bits);
		return CKR_OK;
	}
	key.ref = KEY_FID(ref);
	memcpy(key.id, k.id, k.idlen);
	key.idlen = k.idlen;
	snprintf(key.label, sizeof(key.label), "%s",
		 k.c.label[0] ? k.c.label : "Private Key");
	key.can_sign =
	    (k.usage & (KYSO_P15_USE_SIGN | KYSO_P15_USE_SIGN_RECOVER |
			KYSO_P15_USE_NONREPUDIATION)) != 0;
	key.can_decrypt =
	    key.type == CKK_RSA &&
	    (k.usage & (KYSO_P15_USE_DECRYPT | KYSO_P15_USE_UNWRAP)) != 0;
	l->keys[l->nkeys++] = key;
	return CKR_OK;
}

/* Reads a certificate file by path: one DER element. */
static CK_RV read_cert(struct kyso_card *card, struct ep_state *st,
		       const struct kyso_p15_path *rel, struct kyso_buf *der,
		       uint16_t *sw)
{
	struct kyso_p15_path path;
	struct kyso_asn1 t;
	struct kyso_cur c;
	CK_RV rv;

	if (kyso_p15_path_join(&st->app, rel, &path) < 0) {
		*sw = 0x6A82;
		return CKR_OK;
	}
	rv = read_file(card, st, path.v, path.len, CERT_MAX, 2, der, sw);
	if (rv != CKR_OK || *sw != KYSO_SW_OK)
		return rv;
	if (rel->has_range) {
		if (rel->index > der->len || rel->count > der->len - rel->index)
			return CKR_DEVICE_ERROR;
		memmove(der->p, der->p + rel->index, rel->count);
		der->len = rel->count;
	}
	c = kyso_cur_make(der->p, der->len);
	if (kyso_asn1_get(&c, KYSO_ASN1_SEQUENCE, &t) < 0)
		return CKR_DEVICE_ERROR;
	der->len = t.rawlen; /* what follows is padding */
	return CKR_OK;
}

static CK_RV on_cert(struct kyso_card *card, struct ep_state *st,
		     struct kyso_token *tok, const struct kyso_asn1 *obj,
		     void *arg)
{
	struct p15_list *l = arg;
	struct kyso_buf der = KYSO_BUF_INIT;
	struct kyso_p15_cert cert;
	const uint8_t *v;
	size_t vlen;
	uint16_t sw = 0;
	int r = kyso_p15_cert(obj, &cert);
	CK_RV rv = CKR_OK;

	if (r == KYSO_P15_BAD)
		kyso_err("epass2003: malformed CDF entry skipped");
	if (r != KYSO_P15_OK || cert.idlen > KYSO_MAX_ID)
		return CKR_OK;
	if (cert.direct != NULL) {
		v = cert.direct;
		vlen = cert.directlen;
	} else {
		rv = read_cert(card, st, &cert.path, &der, &sw);
		if (rv == CKR_HOST_MEMORY ||
		    (rv != CKR_OK && rv != CKR_DEVICE_ERROR))
			goto out;
		if (rv != CKR_OK || sw != KYSO_SW_OK) {
			kyso_err("epass2003: certificate %04X unreadable; "
				 "skipped",
				 path_fid(&cert.path));
			rv = CKR_OK;
			goto out;
		}
		v = der.p;
		vlen = der.len;
	}
	rv = kyso_token_add_cert(tok, cert.id, cert.idlen,
				 cert.c.label[0] ? cert.c.label : "Certificate",
				 v, vlen, path_fid(&cert.path));
	if (rv == CKR_DEVICE_ERROR) {
		kyso_err("epass2003: certificate does not parse; skipped");
		rv = CKR_OK;
		goto out;
	}
	if (rv == CKR_OK && l->ncerts < MAX_KEYS) {
		memcpy(l->cert_ids[l->ncerts], cert.id, cert.idlen);
		l->cert_idlen[l->ncerts++] = cert.idlen;
	}
out:
	kyso_buf_free(&der);
	return rv;
}

static int has_cert(const struct p15_list *l, const struct kyso_key *k)
{
	size_t i;

	for (i = 0; i < l->ncerts; i++)
		if (l->cert_idlen[i] == k->idlen &&
		    memcmp(l->cert_ids[i], k->id, k->idlen) == 0)
			return 1;
	return 0;
}

static CK_RV on_pubkey(struct kyso_card *card, struct ep_state *st,
		       struct kyso_token *tok, const struct kyso_asn1 *obj,
		       void *arg)
{
	struct p15_list *l = arg;
	struct kyso_buf buf = KYSO_BUF_INIT;
	struct kyso_p15_path path;
	struct kyso_p15_key k;
	struct kyso_pubkey pub;
	struct kyso_key *key = NULL;
	const uint8_t *v;
	size_t vlen, i;
	uint16_t sw = 0;
	int r = kyso_p15_pubkey(obj, &k);
	CK_RV rv = CKR_OK;

	(void)tok;
	memset(&pub, 0, sizeof(pub));
	if (r == KYSO_P15_BAD)
		kyso_err("epass2003: malformed PuKDF entry skipped");
	if (r != KYSO_P15_OK)
		return CKR_OK;
	for (i = 0; i < l->nkeys; i++)
		if (l->keys[i].idlen == k.idlen &&
		    memcmp(l->keys[i].id, k.id, k.idlen) == 0 &&
		    !kyso_pubkey_present(&l->keys[i].pub) &&
		    !has_cert(l, &l->keys[i]))
			key = &l->keys[i];
	if (key == NULL)
		return CKR_OK;
	if (k.direct != NULL) {
		v = k.direct;
		vlen = k.directlen;
	} else {
		if (kyso_p15_path_join(&st->app, &k.path, &path) < 0)
			return CKR_OK;
		rv = read_file(card, st, path.v, path.len, 2048, 1, &buf, &sw);
		if (rv != CKR_OK)
			goto out;
		if (sw != KYSO_SW_OK)
			goto out;
		v = buf.p;
		vlen = buf.len;
	}
	rv = kyso_p15_decode_pubkey(v, vlen, &pub);
	if (rv == CKR_OK && pub.type == key->type) {
		key->pub = pub;
		key->bits = pub.bits;
		memset(&pub, 0, sizeof(pub));
	} else if (rv != CKR_HOST_MEMORY) {
		kyso_dbg("epass2003: public key %04X not usable",
			 path_fid(&k.path));
		rv = CKR_OK;
	}
out:
	kyso_pubkey_clear(&pub);
	kyso_buf_free(&buf);
	return rv;
}

static CK_RV bind_pkcs15(struct kyso_card *card, struct ep_state *st,
			 struct kyso_token *tok)
{
	struct kyso_buf buf = KYSO_BUF_INIT;
	struct kyso_p15_tokeninfo ti;
	struct kyso_p15_odf odf;
	struct p15_pins pins;
	struct p15_list *l;
	uint16_t sw = 0;
	size_t i;
	int need_pub = 0;
	CK_RV rv;

	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return CKR_HOST_MEMORY;
	memset(&pins, 0, sizeof(pins));

	rv = read_app_file(card, st, FID_TINFO, 1024, 1, &buf, &sw);
	if (rv != CKR_OK)
		goto out;
	if (sw == KYSO_SW_OK && kyso_p15_tokeninfo(buf.p, buf.len, &ti) == 0) {
		if (ti.label[0])
			snprintf(tok->label, sizeof(tok->label), "%s",
				 ti.label);
		if (ti.seriallen)
			set_serial(tok, ti.serial, ti.seriallen);
	} else {
		kyso_dbg("epass2003: no usable TokenInfo (%04X)", sw);
	}

	kyso_buf_reset(&buf);
	rv = read_app_file(card, st, FID_ODF, 2048, 1, &buf, &sw);
	if (rv != CKR_OK)
		goto out;
	if (sw != KYSO_SW_OK || kyso_p15_odf(buf.p, buf.len, &odf) < 0) {
		kyso_err("epass2003: no usable ODF (%04X)", sw);
		rv = CKR_TOKEN_NOT_RECOGNIZED;
		goto out;
	}

	memset(&st->prkdf, 0, sizeof(st->prkdf));
	memset(&st->pukdf, 0, sizeof(st->pukdf));
	memset(&st->cdf, 0, sizeof(st->cdf));
	if (odf.n[KYSO_P15_PRKDF] > 0)
		kyso_p15_path_join(&st->app, &odf.df[KYSO_P15_PRKDF][0],
				   &st->prkdf);
	if (odf.n[KYSO_P15_PUKDF] > 0)
		kyso_p15_path_join(&st->app, &odf.df[KYSO_P15_PUKDF][0],
				   &st->pukdf);
	if (odf.n[KYSO_P15_CDF] > 0)
		kyso_p15_path_join(&st->app, &odf.df[KYSO_P15_CDF][0],
				   &st->cdf);

	rv = each_object(card, st, tok, &odf, KYSO_P15_AODF, on_pin, &pins);
	if (rv != CKR_OK)
		goto out;
	st->auth_idlen = 0;
	if (pins.have_user && pins.user.auth_idlen <= sizeof(st->auth_id)) {
		memcpy(st->auth_id, pins.user.auth_id, pins.user.auth_idlen);
		st->auth_idlen = pins.user.auth_idlen;
	}
	st->user_kid = KID_USER;
	if (pins.have_user && pins.user.reference > 0 &&
	    pins.user.reference < 0x7F)
		st->user_kid = (uint8_t)pins.user.reference;
	/* pkcs15-init puts the unblocking PIN right after the user's */
	st->so_kid = (uint8_t)(st->user_kid + 1);
	if (pins.have_so && pins.so.reference > 0 && pins.so.reference < 0x7F)
		st->so_kid = (uint8_t)pins.so.reference;
	if (pins.have_user) {
		tok->min_pin = pins.user.min_len ? pins.user.min_len : 4;
		tok->max_pin = pins.user.max_len ? pins.user.max_len : 16;
		if (tok->max_pin > PIN_MAX_LEN)
			tok->max_pin = PIN_MAX_LEN;
		if (tok->min_pin > tok->max_pin)
			tok->min_pin = 1;
	}

	rv = each_object(card, st, tok, &odf, KYSO_P15_PRKDF, on_prkey, l);
	if (rv != CKR_OK)
		goto out;
	rv = each_object(card, st, tok, &odf, KYSO_P15_CDF, on_cert, l);
	if (rv != CKR_OK)
		goto out;
	/* The PuKDF matters only for keys without a certificate (just
	 * generated ones): reading it otherwise costs two APDUs a file. */
	for (i = 0; i < l->nkeys; i++)
		if (!has_cert(l, &l->keys[i]))
			need_pub = 1;
	if (need_pub) {
		rv = each_object(card, st, tok, &odf, KYSO_P15_PUKDF, on_pubkey,
				 l);
		if (rv != CKR_OK)
			goto out;
	}
	for (i = 0; i < l->nkeys; i++) {
		if (l->keys[i].type == CKK_RSA && l->keys[i].bits == 0 &&
		    !has_cert(l, &l->keys[i])) {
			kyso_err("epass2003: RSA key of unknown size skipped");
			continue;
		}
		rv = kyso_token_add_key(tok, &l->keys[i], NULL);
		if (rv != CKR_OK)
			goto out;
	}
	/* objects can be added where the ODF names the files for them */
	tok->can_generate = st->prkdf.len > 0 && st->pukdf.len > 0;
	tok->can_write = st->cdf.len > 0;
	tok->so_pin = 1;
out:
	for (i = 0; i < l->nkeys; i++)
		kyso_pubkey_clear(&l->keys[i].pub);
	free(l);
	kyso_buf_free(&buf);
	return rv;
}

/* --- bind: ENTERSAFE-ESPK layout ----------------------------------------- */

struct espk_key {
	struct kyso_key k;
	uint16_t pub_handle;
	uint8_t *modulus; /* copy, for pairing id-less objects */
	size_t modlen;
	char suffix[10];
};

struct espk_cert {
	uint8_t *der;
	size_t len;
	uint8_t id[KYSO_MAX_ID];
	size_t idlen;
	char label[64];
	uint16_t fid;
	uint8_t *modulus; /* points into info.pub.n */
	size_t modlen;
	struct kyso_cert_info info;
};

struct espk_pub {
	uint16_t handle;
	uint8_t id[KYSO_MAX_ID];
	size_t idlen;
	struct kyso_pubkey pub;
	char suffix[10];
};

struct espk_ctx {
	struct espk_key keys[MAX_KEYS];
	size_t nkeys;
	struct espk_cert certs[MAX_KEYS];
	size_t ncerts;
	struct espk_pub pubs[MAX_KEYS];
	size_t npubs;
	struct kyso_espk_container cm[KYSO_ESPK_MAX_CONTAINERS];
	size_t ncm;
	uint8_t next_synthetic;
};

/* Reads one ESPK file: its used size, bounded by the FCI and max. */
static CK_RV read_espk(struct kyso_card *card, struct ep_state *st,
		       const struct kyso_espk_entry *e, size_t max,
		       struct kyso_buf *out, uint16_t *sw)
{
	struct fci f;
	size_t size = e->used;
	CK_RV rv;

	rv = select_app(card, st, sw);
	if (rv != CKR_OK || *sw != KYSO_SW_OK)
		return rv;
	rv = select_fid(card, st, e->fid, &f, sw);
	if (rv != CKR_OK || *sw != KYSO_SW_OK)
		return rv;
	if (f.size != 0 && f.size < size)
		size = f.size;
	if (size > max)
		size = max;
	return read_binary(card, st, size, max, 0, out);
}

static void copy_attr_id(const struct kyso_espk_attr *a, size_t n, uint8_t *id,
			 size_t *idlen)
{
	const struct kyso_espk_attr *x = kyso_espk_attr(a, n, CKA_ID);

	*idlen = 0;
	if (x != NULL && x->len > 0 && x->len <= KYSO_MAX_ID) {
		memcpy(id, x->val, x->len);
		*idlen = x->len;
	}
}

static void copy_attr_label(const struct kyso_espk_attr *a, size_t n, char *out,
			    size_t cap, const char *def)
{
	const struct kyso_espk_attr *x = kyso_espk_attr(a, n, CKA_LABEL);
	size_t len, i;

	if (x == NULL || x->len == 0) {
		snprintf(out, cap, "%s", def);
		return;
	}
	len = x->len < cap - 1 ? x->len : cap - 1;
	while (len > 0 && len < x->len && (x->val[len] & 0xC0) == 0x80)
		len--;
	for (i = 0; i < len; i++)
		out[i] =
		    (char)(x->val[i] < 0x20 || x->val[i] == 0x7F ? '?'
								 : x->val[i]);
	out[len] = '\0';
	while (len > 0 && (out[len - 1] == ' ' || out[len - 1] == '\0'))
		out[--len] = '\0';
	if (len == 0)
		snprintf(out, cap, "%s", def);
}

static int attr_handle(const struct kyso_espk_attr *a, size_t n, uint16_t *h)
{
	const struct kyso_espk_attr *x =
	    kyso_espk_attr(a, n, (uint32_t)KYSO_ESPK_CKA_KEY_HANDLE);
	uint64_t v;

	if (x == NULL || x->len != 4 || kyso_espk_ulong(x, &v) < 0 ||
	    v > 0xFFFF)
		return -1;
	*h = (uint16_t)v;
	return 0;
}

static int attr_bool(const struct kyso_espk_attr *a, size_t n, uint32_t type)
{
	const struct kyso_espk_attr *x = kyso_espk_attr(a, n, type);
	uint64_t v;

	if (x == NULL || kyso_espk_ulong(x, &v) < 0)
		return -1;
	return v != 0;
}

static CK_RV espk_cert(struct espk_ctx *x, const struct kyso_espk_entry *e,
		       const struct kyso_espk_attr *a, size_t n)
{
	const struct kyso_espk_attr *v = kyso_espk_attr(a, n, CKA_VALUE);
	struct espk_cert *c;

	if (v == NULL || v->len == 0 || x->ncerts == MAX_KEYS)
		return CKR_OK;
	c = &x->certs[x->ncerts];
	memset(c, 0, sizeof(*c));
	if (kyso_cert_parse(v->val, v->len, &c->info) != CKR_OK) {
		kyso_err("epass2003: %s does not parse; skipped", e->name);
		return CKR_OK;
	}
	c->der = malloc(v->len);
	if (c->der == NULL) {
		kyso_cert_info_clear(&c->info);
		return CKR_HOST_MEMORY;
	}
	memcpy(c->der, v->val, v->len);
	c->len = v->len;
	copy_attr_id(a, n, c->id, &c->idlen);
	copy_attr_label(a, n, c->label, sizeof(c->label), e->name);
	c->fid = e->fid;
	if (c->info.pub.type == CKK_RSA) {
		c->modulus = c->info.pub.n;
		c->modlen = c->info.pub.nlen;
	}
	x->ncerts++;
	return CKR_OK;
}

static CK_RV espk_pub(struct espk_ctx *x, const struct kyso_espk_entry *e,
		      const struct kyso_espk_attr *a, size_t n)
{
	const struct kyso_espk_attr *m = kyso_espk_attr(a, n, CKA_MODULUS);
	const struct kyso_espk_attr *ex =
	    kyso_espk_attr(a, n, CKA_PUBLIC_EXPONENT);
	struct espk_pub *p;
	CK_RV rv;

	if (x->npubs == MAX_KEYS)
		return CKR_OK;
	p = &x->pubs[x->npubs];
	memset(p, 0, sizeof(*p));
	if (m == NULL || ex == NULL || m->len == 0 || ex->len == 0)
		return CKR_OK; /* only RSA public keys are known here */
	rv = kyso_pubkey_rsa(&p->pub, m->val, m->len, ex->val, ex->len);
	if (rv == CKR_HOST_MEMORY)
		return rv;
	if (rv != CKR_OK) {
		kyso_err("epass2003: %s holds no usable key; skipped", e->name);
		return CKR_OK;
	}
	if (attr_handle(a, n, &p->handle) < 0)
		p->handle = 0;
	copy_attr_id(a, n, p->id, &p->idlen);
	snprintf(p->suffix, sizeof(p->suffix), "%s", e->name + 4);
	x->npubs++;
	return CKR_OK;
}

static CK_RV espk_prv(struct espk_ctx *x, const struct kyso_espk_entry *e,
		      const struct kyso_espk_attr *a, size_t n)
{
	const struct kyso_espk_attr *m = kyso_espk_attr(a, n, CKA_MODULUS);
	struct espk_key *k;
	uint16_t h = 0;
	int sign, dec;

	if (x->nkeys == MAX_KEYS)
		return CKR_OK;
	k = &x->keys[x->nkeys];
	memset(k, 0, sizeof(*k));
	k->k.type = CKK_RSA;
	if (attr_handle(a, n, &h) == 0)
		k->k.ref = h;
	if (m != NULL && m->len > 0) {
		k->modulus = malloc(m->len);
		if (k->modulus == NULL)
			return CKR_HOST_MEMORY;
		memcpy(k->modulus, m->val, m->len);
		k->modlen = m->len;
	}
	copy_attr_id(a, n, k->k.id, &k->k.idlen);
	copy_attr_label(a, n, k->k.label, sizeof(k->k.label), e->name);
	sign = attr_bool(a, n, CKA_SIGN);
	dec = attr_bool(a, n, CKA_DECRYPT);
	/* Without the flags the key is for signing, as OpenSC's reading of
	 * the layout assumes. */
	k->k.can_sign = sign > 0 || (sign < 0 && dec < 0);
	k->k.can_decrypt = dec > 0;
	snprintf(k->suffix, sizeof(k->suffix), "%s", e->name + 4);
	x->nkeys++;
	return CKR_OK;
}

static void strip_modulus(const uint8_t **p, size_t *len)
{
	while (*len > 1 && **p == 0) {
		(*p)++;
		(*len)--;
	}
}

static int same_modulus(const uint8_t *a, size_t alen, const uint8_t *b,
			size_t blen)
{
	if (a == NULL || b == NULL)
		return 0;
	strip_modulus(&a, &alen);
	strip_modulus(&b, &blen);
	return alen == blen && alen > 0 && memcmp(a, b, alen) == 0;
}

/* Completes what a private key file may leave out -- modulus and handle
 * come from the public key of the same number, the handle through the
 * container map -- and gives id-less objects the id of their pair (same
 * modulus), else a synthetic one (F0 nn), as OpenSC PR #3835 does. */
static void espk_resolve(struct espk_ctx *x)
{
	size_t i, j;

	for (i = 0; i < x->nkeys; i++) {
		struct espk_key *k = &x->keys[i];
		struct espk_pub *p = NULL;

		for (j = 0; j < x->npubs; j++)
			if (strcmp(x->pubs[j].suffix, k->suffix) == 0)
				p = &x->pubs[j];
		if (k->modulus == NULL && p != NULL) {
			k->modulus = malloc(p->pub.nlen);
			if (k->modulus != NULL) {
				memcpy(k->modulus, p->pub.n, p->pub.nlen);
				k->modlen = p->pub.nlen;
			}
		}
		if (k->k.ref == 0 && p != NULL && p->handle != 0)
			for (j = 0; j < x->ncm; j++)
				if (x->cm[j].pub == p->handle)
					k->k.ref = x->cm[j].priv;
		if (k->k.idlen == 0 && p != NULL && p->idlen != 0) {
			memcpy(k->k.id, p->id, p->idlen);
			k->k.idlen = p->idlen;
		}
	}
	for (i = 0; i < x->nkeys; i++) {
		struct espk_key *k = &x->keys[i];

		for (j = 0; j < x->ncerts && k->k.idlen == 0; j++)
			if (x->certs[j].idlen != 0 &&
			    same_modulus(k->modulus, k->modlen,
					 x->certs[j].modulus,
					 x->certs[j].modlen)) {
				memcpy(k->k.id, x->certs[j].id,
				       x->certs[j].idlen);
				k->k.idlen = x->certs[j].idlen;
			}
		if (k->k.idlen == 0) {
			k->k.id[0] = 0xF0;
			k->k.id[1] = ++x->next_synthetic;
			k->k.idlen = 2;
		}
	}
	for (j = 0; j < x->ncerts; j++) {
		struct espk_cert *c = &x->certs[j];

		for (i = 0; i < x->nkeys && c->idlen == 0; i++)
			if (same_modulus(c->modulus, c->modlen,
					 x->keys[i].modulus,
					 x->keys[i].modlen)) {
				memcpy(c->id, x->keys[i].k.id,
				       x->keys[i].k.idlen);
				c->idlen = x->keys[i].k.idlen;
			}
		if (c->idlen == 0) {
			c->id[0] = 0xF0;
			c->id[1] = ++x->next_synthetic;
			c->idlen = 2;
		}
	}
}

static void espk_free(struct espk_ctx *x)
{
	size_t i;

	for (i = 0; i < x->nkeys; i++) {
		free(x->keys[i].modulus);
		kyso_pubkey_clear(&x->keys[i].k.pub);
	}
	for (i = 0; i < x->ncerts; i++) {
		free(x->certs[i].der);
		kyso_cert_info_clear(&x->certs[i].info);
	}
	for (i = 0; i < x->npubs; i++)
		kyso_pubkey_clear(&x->pubs[i].pub);
	free(x);
}

/* tokeninfo: the first 32 bytes are the label, space-padded. */
static void espk_label(struct kyso_token *tok, const uint8_t *p, size_t len)
{
	size_t n = len < 32 ? len : 32, i;
	char s[33];

	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == 0))
		n--;
	for (i = 0; i < n; i++)
		s[i] = (char)(p[i] < 0x20 || p[i] == 0x7F ? '?' : p[i]);
	s[n] = '\0';
	if (n > 0)
		snprintf(tok->label, sizeof(tok->label), "%s", s);
}

static CK_RV bind_espk(struct kyso_card *card, struct ep_state *st,
		       struct kyso_token *tok)
{
	struct kyso_espk_entry *ents = NULL;
	struct kyso_espk_attr *attrs = NULL;
	struct kyso_buf buf = KYSO_BUF_INIT;
	const struct kyso_espk_entry *e;
	struct espk_ctx *x;
	struct fci f;
	size_t nents = 0, na = 0, i;
	uint16_t sw = 0;
	CK_RV rv;

	x = calloc(1, sizeof(*x));
	ents = calloc(KYSO_ESPK_MAX_FILES, sizeof(*ents));
	attrs = calloc(256, sizeof(*attrs));
	if (x == NULL || ents == NULL || attrs == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	rv = select_app(card, st, &sw);
	if (rv != CKR_OK)
		goto out;
	rv = select_fid(card, st, KYSO_ESPK_INDEX, &f, &sw);
	if (rv != CKR_OK)
		goto out;
	if (sw != KYSO_SW_OK) {
		kyso_err("epass2003: ESPK index missing (%04X)", sw);
		rv = CKR_TOKEN_NOT_RECOGNIZED;
		goto out;
	}
	rv = read_binary(card, st, f.size,
			 KYSO_ESPK_MAX_FILES * 2 * KYSO_ESPK_RECLEN, 0, &buf);
	if (rv != CKR_OK)
		goto out;
	if (kyso_espk_index(buf.p, buf.len, ents, KYSO_ESPK_MAX_FILES, &nents) <
	    0) {
		kyso_err("epass2003: ESPK index is empty");
		rv = CKR_TOKEN_NOT_RECOGNIZED;
		goto out;
	}

	e = kyso_espk_find(ents, nents, "tokeninfo");
	if (e != NULL) {
		kyso_buf_reset(&buf);
		rv = read_espk(card, st, e, 64, &buf, &sw);
		if (rv != CKR_OK)
			goto out;
		if (sw == KYSO_SW_OK)
			espk_label(tok, buf.p, buf.len);
	}
	e = kyso_espk_find(ents, nents, "cardid");
	if (e != NULL) {
		kyso_buf_reset(&buf);
		rv = read_espk(card, st, e, 32, &buf, &sw);
		if (rv != CKR_OK)
			goto out;
		if (sw == KYSO_SW_OK && buf.len > 0)
			set_serial(tok, buf.p, buf.len);
	}
	e = kyso_espk_find(ents, nents, "containermap");
	if (e != NULL) {
		kyso_buf_reset(&buf);
		rv = read_espk(card, st, e, 1024, &buf, &sw);
		if (rv != CKR_OK)
			goto out;
		if (sw == KYSO_SW_OK)
			kyso_espk_containermap(buf.p, buf.len, x->cm,
					       KYSO_ESPK_MAX_CONTAINERS,
					       &x->ncm);
	}

	for (i = 0; i < nents; i++) {
		const char *name = ents[i].name;
		int cert = strncmp(name, "cert", 4) == 0;
		int pub = strncmp(name, "pubk", 4) == 0;
		int prv = strncmp(name, "prvk", 4) == 0;

		if (!cert && !pub && !prv)
			continue;
		kyso_buf_reset(&buf);
		rv = read_espk(card, st, &ents[i], cert ? CERT_MAX : 4096, &buf,
			       &sw);
		if (rv != CKR_OK)
			goto out;
		if (sw != KYSO_SW_OK) {
			kyso_dbg("epass2003: %s: %04X", name, sw);
			continue;
		}
		if (kyso_espk_attrs(buf.p, buf.len, attrs, 256, &na) < 0) {
			kyso_err("epass2003: %s is not an attribute stream; "
				 "skipped",
				 name);
			continue;
		}
		if (cert)
			rv = espk_cert(x, &ents[i], attrs, na);
		else if (pub)
			rv = espk_pub(x, &ents[i], attrs, na);
		else
			rv = espk_prv(x, &ents[i], attrs, na);
		if (rv != CKR_OK)
			goto out;
	}
	espk_resolve(x);

	for (i = 0; i < x->nkeys; i++) {
		struct espk_key *k = &x->keys[i];

		if (k->k.ref < 0xA000 || k->k.ref > 0xAFFF) {
			kyso_err("epass2003: private key without a key handle "
				 "skipped");
			continue;
		}
		if (k->modulus != NULL) {
			const uint8_t *mp = k->modulus;
			size_t ml = k->modlen;

			strip_modulus(&mp, &ml);
			k->k.bits = (CK_ULONG)ml * 8;
		}
		rv = kyso_token_add_key(tok, &k->k, NULL);
		if (rv != CKR_OK)
			goto out;
	}
	for (i = 0; i < x->ncerts; i++) {
		rv = kyso_token_add_cert(tok, x->certs[i].id, x->certs[i].idlen,
					 x->certs[i].label, x->certs[i].der,
					 x->certs[i].len, x->certs[i].fid);
		if (rv != CKR_OK)
			goto out;
	}
	tok->min_pin = 4;
	tok->max_pin = PIN_MAX_LEN;
	st->user_kid = KID_USER;
	st->so_kid = 0;
	rv = CKR_OK;
out:
	if (x != NULL)
		espk_free(x);
	free(ents);
	free(attrs);
	kyso_buf_free(&buf);
	return rv;
}

/* --- bind ---------------------------------------------------------------- */

/* The PKCS#15 application through EF.DIR (linear records 61 {...}). */
static int find_p15_by_dir(struct kyso_card *card, struct ep_state *st,
			   struct kyso_p15_path *app, CK_RV *rv)
{
	struct kyso_buf rec = KYSO_BUF_INIT;
	struct kyso_p15_app a;
	uint8_t path[4] = {0x3F, 0x00, 0x2F, 0x00};
	uint16_t sw = 0;
	unsigned i;
	int found = 0;

	*rv = select_path(card, st, path, sizeof(path), NULL, &sw);
	if (*rv != CKR_OK || sw != KYSO_SW_OK)
		return 0;
	rec.max = 256;
	for (i = 1; i <= 8 && !found; i++) {
		kyso_buf_reset(&rec);
		*rv = xmit(card, st, 0x00, INS_READ_REC, (uint8_t)i, 0x04, NULL,
			   0, 256, 0, &rec, &sw);
		if (*rv != CKR_OK || sw != KYSO_SW_OK)
			break;
		if (kyso_p15_dir_entry(rec.p, rec.len, &a) == 0 &&
		    a.aidlen == sizeof(kyso_p15_aid) &&
		    memcmp(a.aid, kyso_p15_aid, a.aidlen) == 0 &&
		    a.path.len >= 2) {
			if (kyso_p15_path_join(NULL, &a.path, app) == 0 &&
			    app->v[0] == 0x3F && app->v[1] == 0x00)
				found = 1;
		}
	}
	kyso_buf_free(&rec);
	return found;
}

/* Which layout the token carries: ESPK first (what CAs issue), then DF
 * 5015, then the PKCS#15 application EF.DIR names. */
static CK_RV find_layout(struct kyso_card *card, struct ep_state *st)
{
	static const uint8_t mf[2] = {0x3F, 0x00};
	struct kyso_p15_path app;
	struct fci f;
	uint16_t sw = 0;
	CK_RV rv;

	st->layout = LAYOUT_NONE;
	st->curlen = 0;
	rv = select_path(card, st, mf, sizeof(mf), NULL, &sw);
	if (rv != CKR_OK)
		return rv;
	if (sw != KYSO_SW_OK) {
		kyso_err("epass2003: no MF (%04X): a blank token", sw);
		return CKR_TOKEN_NOT_RECOGNIZED;
	}
	memcpy(st->cur, mf, 2);
	st->curlen = 2;
	rv = select_fid(card, st, KYSO_ESPK_DF, &f, &sw);
	if (rv != CKR_OK)
		return rv;
	if (sw == KYSO_SW_OK && kyso_espk_is_name(f.name, f.namelen)) {
		st->layout = LAYOUT_ESPK;
		memset(&st->app, 0, sizeof(st->app));
		st->app.v[0] = 0x3F;
		st->app.v[1] = 0x00;
		st->app.v[2] = 0x20;
		st->app.v[3] = 0x03;
		st->app.len = 4;
		memcpy(st->cur, st->app.v, 4);
		st->curlen = 4;
		return CKR_OK;
	}
	/* a failed SELECT leaves the MF current */
	memset(&app, 0, sizeof(app));
	app.v[0] = 0x3F;
	app.v[1] = 0x00;
	app.v[2] = 0x50;
	app.v[3] = 0x15;
	app.len = 4;
	rv = select_path(card, st, app.v, app.len, NULL, &sw);
	if (rv != CKR_OK)
		return rv;
	if (sw != KYSO_SW_OK && !find_p15_by_dir(card, st, &app, &rv)) {
		if (rv != CKR_OK)
			return rv;
		kyso_err("epass2003: neither ENTERSAFE-ESPK nor PKCS#15");
		return CKR_TOKEN_NOT_RECOGNIZED;
	}
	st->layout = LAYOUT_PKCS15;
	st->app = app;
	/* DF 5015 was just selected; through EF.DIR, nothing is */
	st->curlen = 0;
	if (sw == KYSO_SW_OK) {
		memcpy(st->cur, app.v, app.len);
		st->curlen = app.len;
	}
	return CKR_OK;
}

static CK_RV ep_bind(struct kyso_card *card, struct kyso_token *tok)
{
	struct ep_state *st = state(card);
	uint16_t sw = 0;
	int tries = -1;
	CK_RV rv, status = CKR_OK;

	if (st == NULL)
		return CKR_HOST_MEMORY;
	card->ext_apdu = 1;
	snprintf(tok->manufacturer, sizeof(tok->manufacturer), "Feitian");
	snprintf(tok->model, sizeof(tok->model), "ePass2003");
	snprintf(tok->label, sizeof(tok->label), "ePass2003");
	snprintf(tok->serial, sizeof(tok->serial), "%s",
		 st->serial[0] ? st->serial : "0000000000000000");
	tok->flags |= CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED |
		      CKF_TOKEN_INITIALIZED;
	tok->min_pin = 4;
	tok->max_pin = 16;
	tok->rsa_min = 1024;
	tok->rsa_max = 2048;
	tok->ec_min = 256;
	tok->ec_max = 256;
	tok->can_decrypt = 1;

	rv = open_session(card, st);
	if (rv != CKR_OK)
		goto out;
	rv = find_layout(card, st);
	if (rv != CKR_OK)
		goto out;
	rv = st->layout == LAYOUT_ESPK ? bind_espk(card, st, tok)
				       : bind_pkcs15(card, st, tok);
	if (rv != CKR_OK)
		goto out;
	rv = select_app(card, st, &sw);
	if (rv == CKR_OK && sw != KYSO_SW_OK)
		rv = CKR_DEVICE_ERROR;
	if (rv != CKR_OK)
		goto out;
	rv = pin_query(card, st, st->user_kid, &tries, &status);
	if (rv == RV_SESSION_LOST || rv == CKR_DEVICE_ERROR) {
		/* The count is a nicety: the token stays usable, and the
		 * next operation opens a new session if this one is gone. */
		kyso_err("epass2003: the PIN status query failed");
		rv = CKR_OK;
		status = CKR_DEVICE_ERROR;
	}
	if (rv != CKR_OK)
		goto out;
	if (status == CKR_OK || status == CKR_PIN_LOCKED)
		kyso_token_note_tries(tok, CKU_USER, tries, status);
	else
		kyso_dbg("epass2003: PIN status unknown (%lx)",
			 (unsigned long)status);
out:
	rv = outward(rv);
	if (rv != CKR_OK)
		ep_unbind(card);
	return rv;
}

/* After a reset or another program's use: the selection is unknown and
 * the session may be gone. A protected SELECT that verifies proves the
 * session; otherwise a new one is opened. */
static CK_RV ep_select(struct kyso_card *card)
{
	struct ep_state *st = card->drvdata;
	uint16_t sw = 0;
	CK_RV rv;

	if (st == NULL)
		return CKR_DEVICE_ERROR;
	st->curlen = 0;
	if (st->sm && st->session) {
		rv = select_app(card, st, &sw);
		if (rv == CKR_OK && sw == KYSO_SW_OK && !st->last_plain)
			return CKR_OK;
		if (rv != CKR_OK && rv != RV_SESSION_LOST &&
		    rv != CKR_DEVICE_ERROR)
			return rv;
		kyso_dbg("epass2003: session lost; authenticating again");
	}
	rv = open_session(card, st);
	if (rv == CKR_OK)
		rv = select_app(card, st, &sw);
	if (rv == CKR_OK && sw != KYSO_SW_OK) {
		kyso_err("epass2003: application DF not selectable (%04X)", sw);
		rv = CKR_DEVICE_ERROR;
	}
	return outward(rv);
}

/* Runs op, and once more on a fresh session if the card lost ours. */
static CK_RV with_session(struct kyso_card *card, struct ep_state *st,
			  CK_RV (*op)(struct kyso_card *, struct ep_state *,
				      void *),
			  void *arg)
{
	uint16_t sw = 0;
	CK_RV rv;

	rv = select_app(card, st, &sw);
	if (rv == CKR_OK && sw != KYSO_SW_OK)
		rv = kyso_sw_error(sw);
	if (rv == CKR_OK)
		rv = op(card, st, arg);
	if (rv == RV_SESSION_LOST && st->sm) {
		kyso_dbg("epass2003: session lost; authenticating again");
		rv = open_session(card, st);
		if (rv == CKR_OK)
			rv = select_app(card, st, &sw);
		if (rv == CKR_OK && sw != KYSO_SW_OK)
			rv = kyso_sw_error(sw);
		if (rv == CKR_OK)
			rv = op(card, st, arg);
	}
	return outward(rv);
}

/* --- PIN entry points ----------------------------------------------------- */

static CK_RV ep_login(struct kyso_card *card, CK_USER_TYPE who,
		      const uint8_t *pin, size_t len, int *tries_left)
{
	struct ep_state *st = card->drvdata;
	int tries = -1;
	uint8_t kid;
	CK_RV rv;

	if (tries_left != NULL)
		*tries_left = -1;
	if (st == NULL)
		return CKR_DEVICE_ERROR;
	switch (who) {
	case CKU_USER:
	case CKU_CONTEXT_SPECIFIC:
		kid = st->user_kid;
		break;
	case CKU_SO:
		if (st->layout != LAYOUT_PKCS15 || st->so_kid == 0)
			return CKR_USER_TYPE_INVALID;
		kid = st->so_kid;
		break;
	default:
		return CKR_USER_TYPE_INVALID;
	}
	rv = verify_pin(card, st, kid, pin, len, &tries);
	if (tries_left != NULL)
		*tries_left = tries;
	return outward(rv);
}

/* Logging out is a new session: the card forgets what was verified in the
 * old one (OpenSC's epass2003_logout does the same). A token without
 * secure messaging keeps the PIN status until it is reset. */
static CK_RV ep_logout(struct kyso_card *card)
{
	struct ep_state *st = card->drvdata;
	CK_RV rv;

	if (st == NULL || !st->sm)
		return CKR_OK;
	rv = open_session(card, st);
	return outward(rv);
}

static CK_RV ep_pin_status(struct kyso_card *card, CK_USER_TYPE who,
			   int *tries_left)
{
	struct ep_state *st = card->drvdata;
	int tries = -1;
	CK_RV rv, status = CKR_OK;
	uint8_t kid;

	if (tries_left != NULL)
		*tries_left = -1;
	if (st == NULL)
		return CKR_DEVICE_ERROR;
	if (who == CKU_USER || who == CKU_CONTEXT_SPECIFIC)
		kid = st->user_kid;
	else if (who == CKU_SO && st->so_kid != 0)
		kid = st->so_kid;
	else
		return CKR_USER_TYPE_INVALID;
	rv = pin_query(card, st, kid, &tries, &status);
	if (rv == CKR_OK)
		rv = status;
	if (tries_left != NULL)
		*tries_left = tries;
	return outward(rv);
}

/* The most tries a PIN has: the MAXPIN file pkcs15-init writes (user,
 * SO), else the card's count right after a successful check, which has
 * just reset it. 0 when neither tells. */
static CK_RV max_tries(struct kyso_card *card, struct ep_state *st, uint8_t kid,
		       int verified, unsigned *max)
{
	struct kyso_buf buf = KYSO_BUF_INIT;
	uint16_t sw = 0;
	int tries = -1;
	CK_RV rv = CKR_OK, status;

	*max = 0;
	if (st->layout == LAYOUT_PKCS15) {
		rv = read_app_file(card, st, FID_MAXPIN, 2, 0, &buf, &sw);
		if (rv != CKR_OK)
			goto out;
		if (sw == KYSO_SW_OK && buf.len == 2)
			*max = kid == st->so_kid ? buf.p[1] : buf.p[0];
	}
	if ((*max == 0 || *max > 15) && verified) {
		rv = pin_query(card, st, kid, &tries, &status);
		if (rv != CKR_OK)
			goto out;
		/* Written back as the new limit: a count that looks like
		 * anything but a full counter is not trusted with that. */
		*max = tries >= 3 ? (unsigned)tries : 0;
	}
	if (*max > 15)
		*max = 0;
out:
	kyso_buf_free(&buf);
	return rv;
}

/* A status word of a write, as a return value: kyso_sw_to_rv (6982 is
 * CKR_USER_NOT_LOGGED_IN, 6A84 CKR_DEVICE_MEMORY), but a bare word under
 * secure messaging is always a failure. */
static CK_RV write_sw(const struct ep_state *st, uint16_t sw)
{
	return st->last_plain ? kyso_sw_error(sw) : kyso_sw_to_rv(sw);
}

/* 80 E5 04 kid: (max << 4 | max) || the new PIN's key. */
static CK_RV set_pin_key(struct kyso_card *card, struct ep_state *st,
			 uint8_t kid, unsigned max, const uint8_t *pin,
			 size_t len)
{
	uint8_t d[25];
	uint16_t sw = 0;
	CK_RV rv;

	d[0] = (uint8_t)(max << 4 | max);
	rv = pin_key(pin, len, d + 1);
	if (rv == CKR_OK)
		rv = xmit(card, st, 0x80, INS_CHANGE_KEY, 0x04, kid, d,
			  sizeof(d), KYSO_LE_NONE, X_SECRET, NULL, &sw);
	kyso_wipe(d, sizeof(d));
	if (rv != CKR_OK)
		return rv;
	return write_sw(st, sw);
}

static CK_RV ep_change_pin(struct kyso_card *card, CK_USER_TYPE who,
			   const uint8_t *old, size_t oldlen,
			   const uint8_t *newp, size_t newlen, int *tries_left)
{
	struct ep_state *st = card->drvdata;
	unsigned max = 0;
	int tries = -1;
	uint8_t kid;
	CK_RV rv;

	if (tries_left != NULL)
		*tries_left = -1;
	if (st == NULL)
		return CKR_DEVICE_ERROR;
	if (who == CKU_USER || who == CKU_CONTEXT_SPECIFIC)
		kid = st->user_kid;
	else if (who == CKU_SO && st->layout == LAYOUT_PKCS15 &&
		 st->so_kid != 0)
		kid = st->so_kid;
	else
		return CKR_USER_TYPE_INVALID;
	if (newp == NULL || newlen == 0 || newlen > PIN_MAX_LEN)
		return CKR_PIN_LEN_RANGE;
	rv = verify_pin(card, st, kid, old, oldlen, &tries);
	if (tries_left != NULL)
		*tries_left = tries;
	if (rv != CKR_OK)
		return outward(rv);
	rv = max_tries(card, st, kid, 1, &max);
	if (rv != CKR_OK)
		return outward(rv);
	if (max == 0) {
		kyso_err("epass2003: the PIN's try limit is unknown; not "
			 "changed");
		return CKR_FUNCTION_FAILED;
	}
	rv = set_pin_key(card, st, kid, max, newp, newlen);
	return outward(rv);
}

/* Sets a new user PIN, and with it a full try counter, under the SO PIN
 * verified by login(CKU_SO): the user PIN's key may be changed by the SO
 * (pkcs15-init gives it "modify: at least user", and the SO is more). */
static CK_RV ep_unblock(struct kyso_card *card, const uint8_t *newp,
			size_t newlen, int *tries_left)
{
	struct ep_state *st = card->drvdata;
	unsigned max = 0;
	CK_RV rv;

	if (tries_left != NULL)
		*tries_left = -1;
	if (st == NULL)
		return CKR_DEVICE_ERROR;
	if (st->layout != LAYOUT_PKCS15)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (newp == NULL || newlen == 0 || newlen > PIN_MAX_LEN)
		return CKR_PIN_LEN_RANGE;
	rv = max_tries(card, st, st->user_kid, 0, &max);
	if (rv != CKR_OK)
		return outward(rv);
	if (max == 0) {
		kyso_err("epass2003: the user PIN's try limit is unknown");
		return CKR_FUNCTION_FAILED;
	}
	rv = set_pin_key(card, st, st->user_kid, max, newp, newlen);
	return outward(rv);
}

/* --- private-key operations ---------------------------------------------- */

struct key_op {
	const struct kyso_key *key;
	const uint8_t *in;
	size_t inlen;
	uint8_t *out;
	size_t outlen; /* in: room, out: written */
};

/* MSE SET then PSO: RSA as a decipherment (CT, 80 01 84; PSO 80 86) for
 * both signing and decryption, the card doing raw RSA; EC as a signature
 * (DST, 80 01 92; PSO 9E 9A) over the fitted hash. */
static CK_RV key_op_run(struct kyso_card *card, struct ep_state *st, void *arg)
{
	struct key_op *o = arg;
	struct kyso_buf resp = KYSO_BUF_INIT;
	int ec = o->key->type == CKK_EC;
	size_t k = (o->key->bits + 7) / 8;
	uint8_t mse[7];
	uint16_t sw = 0;
	CK_RV rv;

	mse[0] = 0x80;
	mse[1] = 0x01;
	mse[2] = ec ? 0x92 : 0x84;
	mse[3] = 0x81;
	mse[4] = 0x02;
	mse[5] = (uint8_t)(o->key->ref >> 8);
	mse[6] = (uint8_t)o->key->ref;
	rv = xmit(card, st, 0x00, INS_MSE, 0x41, ec ? 0xB6 : 0xB8, mse,
		  sizeof(mse), KYSO_LE_NONE, 0, NULL, &sw);
	if (rv != CKR_OK)
		return rv;
	if (sw != KYSO_SW_OK)
		return kyso_sw_error(sw); /* 6982: CKR_USER_NOT_LOGGED_IN */
	resp.max = 1024;
	resp.secret = !ec;
	rv = xmit(card, st, 0x00, INS_PSO, ec ? 0x9E : 0x80, ec ? 0x9A : 0x86,
		  o->in, o->inlen, 256, 0, &resp, &sw);
	if (rv != CKR_OK)
		goto out;
	if (sw != KYSO_SW_OK) {
		rv = kyso_sw_error(sw);
		goto out;
	}
	if (ec) {
		if (resp.len == 2 * k) {
			memcpy(o->out, resp.p, 2 * k);
		} else if (kyso_ecdsa_der_to_raw(resp.p, resp.len, k, o->out) !=
			   CKR_OK) {
			kyso_err("epass2003: malformed ECDSA signature");
			rv = CKR_DEVICE_ERROR;
			goto out;
		}
		o->outlen = 2 * k;
	} else {
		/* a number below the modulus: leading zeros may be dropped */
		if (resp.len == 0 || resp.len > k) {
			kyso_err("epass2003: RSA result of %zu bytes for a "
				 "%zu-byte modulus",
				 resp.len, k);
			rv = CKR_DEVICE_ERROR;
			goto out;
		}
		memset(o->out, 0, k - resp.len);
		memcpy(o->out + (k - resp.len), resp.p, resp.len);
		o->outlen = k;
	}
out:
	kyso_buf_free(&resp);
	return rv;
}

/* The size query (out NULL), the room check against need, then the
 * operation in a secure-messaging session. */
static CK_RV key_op(struct kyso_card *card, struct ep_state *st,
		    const struct kyso_key *key, const uint8_t *in, size_t inlen,
		    size_t need, uint8_t *out, size_t *outlen)
{
	struct key_op o;
	CK_RV rv;

	if (out == NULL) {
		*outlen = need;
		return CKR_OK;
	}
	if (*outlen < need) {
		*outlen = need;
		return CKR_BUFFER_TOO_SMALL;
	}
	memset(&o, 0, sizeof(o));
	o.key = key;
	o.in = in;
	o.inlen = inlen;
	o.out = out;
	o.outlen = *outlen;
	rv = with_session(card, st, key_op_run, &o);
	if (rv == CKR_OK)
		*outlen = o.outlen;
	return rv;
}

static CK_RV ep_sign(struct kyso_card *card, const struct kyso_key *key,
		     const uint8_t *in, size_t inlen, uint8_t *out,
		     size_t *outlen)
{
	struct ep_state *st = card->drvdata;
	size_t k, need;

	if (st == NULL)
		return CKR_DEVICE_ERROR;
	if (key->type != CKK_RSA && key->type != CKK_EC)
		return CKR_KEY_TYPE_INCONSISTENT;
	if ((key->type == CKK_RSA && (key->bits < 512 || key->bits > 2048)) ||
	    (key->type == CKK_EC && key->bits != 256))
		return CKR_KEY_SIZE_RANGE;
	k = (key->bits + 7) / 8;
	need = key->type == CKK_EC ? 2 * k : k;
	if (inlen != k)
		return CKR_DATA_LEN_RANGE;
	return key_op(card, st, key, in, inlen, need, out, outlen);
}

static CK_RV ep_decrypt(struct kyso_card *card, const struct kyso_key *key,
			const uint8_t *in, size_t inlen, uint8_t *out,
			size_t *outlen)
{
	struct ep_state *st = card->drvdata;
	size_t k;

	if (st == NULL)
		return CKR_DEVICE_ERROR;
	if (key->type != CKK_RSA)
		return CKR_KEY_TYPE_INCONSISTENT;
	if (key->bits < 512 || key->bits > 2048)
		return CKR_KEY_SIZE_RANGE;
	k = (key->bits + 7) / 8;
	if (inlen != k)
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	return key_op(card, st, key, in, inlen, k, out, outlen);
}

/* --- writing on the PKCS#15 layout -----------------------------------------
 */

/* What pkcs15-init leaves on the token is the model (OpenSC's
 * pkcs15-epass2003.c, and its files as a provisioned token holds them):
 * key pair n in internal files 2900 + 20h*n (private) and 3000 + 20h*n
 * (public, made on the card), the public key then kept as a transparent EF
 * with its DER at that FID, the certificate for key n in EF 3100 + 20h*n;
 * directory entries name the files by their logical FIDs 29n, 30n, 31n.
 * Nothing is ever written on an ENTERSAFE-ESPK token. */

#define WRITE_CHUNK 0xE8 /* data per UPDATE BINARY (OpenSC max_send_size) */
#define MAX_INDEX   7	 /* 20h * index must stay within the FID's byte */

/* Access bytes: 90 = security level at least 0 (anyone), FF = never.
 * EF: read, update, append, delete; private key: -, update, use, delete;
 * public key: read, update, use, delete. */
static const uint8_t acl_ef[8] = {0x90, 0x90, 0xFF, 0x90,
				  0xFF, 0xFF, 0xFF, 0xFF};
static const uint8_t acl_prv[8] = {0xFF, 0x90, 0x90, 0x90,
				   0xFF, 0xFF, 0xFF, 0xFF};
static const uint8_t acl_pub[8] = {0x90, 0x90, 0x90, 0x90,
				   0xFF, 0xFF, 0xFF, 0xFF};

/* FCP of a transparent EF of size bytes. */
static size_t fcp_ef(uint8_t *p, uint16_t fid, size_t size)
{
	size_t n = 0;

	p[n++] = 0x80;
	p[n++] = 2;
	p[n++] = (uint8_t)(size >> 8);
	p[n++] = (uint8_t)size;
	p[n++] = 0x82;
	p[n++] = 2;
	p[n++] = 0x01;
	p[n++] = 0x00;
	p[n++] = 0x83;
	p[n++] = 2;
	p[n++] = (uint8_t)(fid >> 8);
	p[n++] = (uint8_t)fid;
	p[n++] = 0x86;
	p[n++] = 8;
	memcpy(p + n, acl_ef, 8);
	return n + 8;
}

/* FCP of a key file: type 11 / 13 (RSA / EC private), 12 / 14 (public),
 * size in bits; a public one carries 87 02 00 66 as OpenSC's do. */
static size_t fcp_key(uint8_t *p, int private, int ec, uint16_t fid,
		      size_t bits)
{
	size_t n = 0;

	p[n++] = 0x82;
	p[n++] = 2;
	p[n++] = private ? (ec ? 0x13 : 0x11) : (ec ? 0x14 : 0x12);
	p[n++] = 0x00;
	p[n++] = 0x83;
	p[n++] = 2;
	p[n++] = (uint8_t)(fid >> 8);
	p[n++] = (uint8_t)fid;
	p[n++] = 0x85;
	p[n++] = 2;
	p[n++] = (uint8_t)(bits >> 8);
	p[n++] = (uint8_t)bits;
	p[n++] = 0x86;
	p[n++] = 8;
	memcpy(p + n, private ? acl_prv : acl_pub, 8);
	n += 8;
	if (!private) {
		p[n++] = 0x87;
		p[n++] = 2;
		p[n++] = 0x00;
		p[n++] = 0x66;
	}
	return n;
}

static CK_RV delete_fid(struct kyso_card *card, struct ep_state *st,
			uint16_t fid, uint16_t *sw)
{
	uint8_t d[2] = {(uint8_t)(fid >> 8), (uint8_t)fid};

	return xmit(card, st, 0x00, INS_DELETE, 0x00, 0x00, d, 2, KYSO_LE_NONE,
		    0, NULL, sw);
}

/* CREATE FILE 62 { fcp } in the current DF; a FID already taken (a
 * leftover of an interrupted run) is deleted and created again. */
static CK_RV create_fresh(struct kyso_card *card, struct ep_state *st,
			  const uint8_t *fcp, size_t len, uint16_t fid)
{
	uint8_t d[64];
	uint16_t sw = 0;
	CK_RV rv;

	if (len + 2 > sizeof(d))
		return CKR_GENERAL_ERROR;
	d[0] = 0x62;
	d[1] = (uint8_t)len;
	memcpy(d + 2, fcp, len);
	rv = xmit(card, st, 0x00, INS_CREATE, 0x00, 0x00, d, len + 2,
		  KYSO_LE_NONE, 0, NULL, &sw);
	if (rv == CKR_OK && sw == 0x6A89 && !st->last_plain) {
		kyso_dbg("epass2003: file %04X exists; replacing it",
			 (unsigned)fid);
		rv = delete_fid(card, st, fid, &sw);
		if (rv == CKR_OK && sw == KYSO_SW_OK)
			rv = xmit(card, st, 0x00, INS_CREATE, 0x00, 0x00, d,
				  len + 2, KYSO_LE_NONE, 0, NULL, &sw);
	}
	if (rv != CKR_OK)
		return rv;
	return write_sw(st, sw);
}

/* UPDATE BINARY of the selected EF, in pieces. */
static CK_RV update_binary(struct kyso_card *card, struct ep_state *st,
			   size_t off, const uint8_t *p, size_t len)
{
	size_t done = 0, chunk;
	uint16_t sw = 0;
	CK_RV rv;

	if (off + len > 0x7FFF)
		return CKR_DEVICE_MEMORY;
	while (done < len) {
		chunk = len - done < WRITE_CHUNK ? len - done : WRITE_CHUNK;
		rv = xmit(card, st, 0x00, INS_UPDATE_BIN,
			  (uint8_t)((off + done) >> 8), (uint8_t)(off + done),
			  p + done, chunk, KYSO_LE_NONE, 0, NULL, &sw);
		if (rv != CKR_OK)
			return rv;
		rv = write_sw(st, sw);
		if (rv != CKR_OK)
			return rv;
		done += chunk;
	}
	return CKR_OK;
}

/* Reads a directory file whole enough: its bytes up to the padding (*used)
 * and its size. CKR_DEVICE_ERROR when it does not parse: kyso does not
 * write into a file it cannot read. */
static CK_RV read_df(struct kyso_card *card, struct ep_state *st,
		     const struct kyso_p15_path *path, struct kyso_buf *buf,
		     size_t *used, size_t *size)
{
	struct fci f;
	uint16_t sw = 0;
	CK_RV rv;

	rv = select_path(card, st, path->v, path->len, &f, &sw);
	if (rv != CKR_OK)
		return rv;
	if (sw != KYSO_SW_OK)
		return write_sw(st, sw);
	rv = read_binary(card, st, f.size, FILE_MAX, 1, buf);
	if (rv != CKR_OK)
		return rv;
	if (kyso_asn1_extent(buf->p, buf->len, 1, used) != 1) {
		kyso_err("epass2003: directory file %04X does not parse; not "
			 "written",
			 path_fid(path));
		return CKR_DEVICE_ERROR;
	}
	*size = f.size ? f.size : buf->len;
	return CKR_OK;
}

/* Appends one DER entry after the last object of a directory file. */
static CK_RV df_append(struct kyso_card *card, struct ep_state *st,
		       const struct kyso_p15_path *path,
		       const struct kyso_buf *entry)
{
	struct kyso_buf buf = KYSO_BUF_INIT;
	size_t used = 0, size = 0;
	CK_RV rv;

	rv = read_df(card, st, path, &buf, &used, &size);
	if (rv == CKR_OK && used + entry->len > size) {
		kyso_err("epass2003: directory file %04X is full",
			 path_fid(path));
		rv = CKR_DEVICE_MEMORY;
	}
	if (rv == CKR_OK)
		rv = update_binary(card, st, used, entry->p, entry->len);
	kyso_buf_free(&buf);
	return rv;
}

/* Takes the certificate entry whose value is the file fid (logical) out of
 * the CDF: what follows moves up, zeros fill the end. 0 when found. */
static CK_RV cdf_remove(struct kyso_card *card, struct ep_state *st,
			uint16_t fid)
{
	struct kyso_buf buf = KYSO_BUF_INIT, rest = KYSO_BUF_INIT;
	struct kyso_p15_cert c;
	struct kyso_asn1 obj;
	struct kyso_cur cur;
	size_t used = 0, size = 0, off;
	CK_RV rv;

	rv = read_df(card, st, &st->cdf, &buf, &used, &size);
	if (rv != CKR_OK)
		goto out;
	cur = kyso_cur_make(buf.p, used);
	rv = CKR_OBJECT_HANDLE_INVALID;
	while (kyso_p15_next(&cur, &obj) == 1) {
		if (kyso_p15_cert(&obj, &c) != KYSO_P15_OK ||
		    path_fid(&c.path) != fid)
			continue;
		off = (size_t)(obj.raw - buf.p);
		if (kyso_buf_append(&rest, obj.raw + obj.rawlen,
				    used - off - obj.rawlen) < 0 ||
		    kyso_buf_reserve(&rest, obj.rawlen) < 0) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		memset(rest.p + rest.len, 0, obj.rawlen);
		rest.len += obj.rawlen;
		rv = update_binary(card, st, off, rest.p, rest.len);
		break;
	}
out:
	kyso_buf_free(&rest);
	kyso_buf_free(&buf);
	return rv;
}

static int logged_in(const struct kyso_token *tok)
{
	return tok != NULL && (tok->login == CKU_USER || tok->login == CKU_SO);
}

/* The key index (0..7) of a key reference 2900 + 20h * n. */
static int key_index(uint32_t ref)
{
	if (ref < KEY_FID(0) || ref > KEY_FID(MAX_INDEX) ||
	    (ref - KEY_FID(0)) % FID_STEP)
		return -1;
	return (int)((ref - KEY_FID(0)) / FID_STEP);
}

/* A path 3F00 5015 .. || FID (logical) under the application. */
static void app_path(const struct ep_state *st, uint16_t fid,
		     struct kyso_p15_path *p)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->v, st->app.v, st->app.len);
	p->v[st->app.len] = (uint8_t)(fid >> 8);
	p->v[st->app.len + 1] = (uint8_t)fid;
	p->len = st->app.len + 2;
}

/* The public key as the token gives it after generation: RSA, the modulus
 * (the exponent is 65537); EC, 58 20 X 59 20 Y. */
static CK_RV read_generated(struct kyso_card *card, struct ep_state *st, int ec,
			    size_t bits, uint16_t pub_fid,
			    struct kyso_pubkey *pub)
{
	static const uint8_t f4[3] = {0x01, 0x00, 0x01};
	struct kyso_buf resp = KYSO_BUF_INIT;
	struct kyso_tlv x, y;
	struct kyso_cur c;
	uint8_t d[2] = {(uint8_t)(pub_fid >> 8), (uint8_t)pub_fid};
	uint8_t point[65];
	uint16_t sw = 0;
	CK_RV rv;

	resp.max = 1024;
	rv = xmit(card, st, 0x80, INS_READ_PUB, ec ? 0x00 : 0x02, 0x00, d, 2,
		  256, 0, &resp, &sw);
	if (rv == CKR_OK)
		rv = write_sw(st, sw);
	if (rv != CKR_OK)
		goto out;
	rv = CKR_DEVICE_ERROR;
	if (!ec) {
		if (resp.len != bits / 8 || (resp.p[0] & 0x80) == 0)
			goto bad;
		rv = kyso_pubkey_rsa(pub, resp.p, resp.len, f4, sizeof(f4));
		if (rv == CKR_OK && pub->bits != bits)
			rv = CKR_DEVICE_ERROR;
		goto out;
	}
	c = kyso_cur_make(resp.p, resp.len);
	if (kyso_tlv_next(&c, &x) != 1 || x.tag != 0x58 || x.len != 32 ||
	    kyso_tlv_next(&c, &y) != 1 || y.tag != 0x59 || y.len != 32 ||
	    c.len != 0)
		goto bad;
	point[0] = 0x04;
	memcpy(point + 1, x.val, 32);
	memcpy(point + 33, y.val, 32);
	rv = kyso_pubkey_ec(pub, 256, point, sizeof(point));
	if (rv != CKR_OK && rv != CKR_HOST_MEMORY)
		rv = CKR_DEVICE_ERROR;
	goto out;
bad:
	kyso_err("epass2003: malformed public key from key generation");
out:
	if (rv != CKR_OK)
		kyso_pubkey_clear(pub);
	kyso_buf_free(&resp);
	return rv;
}

/* What pkcs15-init keeps in the public key file: the RSAPublicKey of an
 * RSA key, the SubjectPublicKeyInfo of an EC one. */
static CK_RV pub_file_der(const struct kyso_pubkey *pub, uint8_t **der,
			  size_t *len)
{
	struct kyso_asn1 spki, alg, bits;
	struct kyso_cur c;
	uint8_t *s = NULL, *r;
	size_t slen = 0;
	CK_RV rv;

	rv = kyso_pubkey_spki(pub, &s, &slen);
	if (rv != CKR_OK)
		return rv;
	if (pub->type != CKK_RSA) {
		*der = s;
		*len = slen;
		return CKR_OK;
	}
	c = kyso_cur_make(s, slen);
	rv = CKR_GENERAL_ERROR;
	if (kyso_asn1_get(&c, KYSO_ASN1_SEQUENCE, &spki) == 0) {
		c = kyso_asn1_inner(&spki);
		if (kyso_asn1_get(&c, KYSO_ASN1_SEQUENCE, &alg) == 0 &&
		    kyso_asn1_get(&c, KYSO_ASN1_BIT_STRING, &bits) == 0 &&
		    bits.len > 1) {
			r = malloc(bits.len - 1);
			rv = CKR_HOST_MEMORY;
			if (r != NULL) {
				memcpy(r, bits.val + 1, bits.len - 1);
				*der = r;
				*len = bits.len - 1;
				rv = CKR_OK;
			}
		}
	}
	free(s);
	return rv;
}

struct gen_op {
	struct kyso_token *tok;
	struct kyso_keygen *req;
	struct kyso_pubkey *pub;
};

static CK_RV generate_run(struct kyso_card *card, struct ep_state *st,
			  void *arg)
{
	struct gen_op *g = arg;
	struct kyso_keygen *req = g->req;
	struct kyso_buf entry = KYSO_BUF_INIT;
	struct kyso_p15_key k;
	uint8_t fcp[40], gen[7], *der = NULL;
	int ec = req->type == CKK_EC, n = -1, i, used;
	uint16_t prv, pubf, sw = 0;
	size_t bits = req->bits, derlen = 0, j, len;
	CK_RV rv;

	/* the lowest index no key of the token uses */
	for (i = 0; i <= MAX_INDEX && n < 0; i++) {
		used = 0;
		for (j = 0; j < g->tok->nkeys; j++)
			if (key_index(g->tok->keys[j].ref) == i)
				used = 1;
		if (!used)
			n = i;
	}
	if (n < 0)
		return CKR_DEVICE_MEMORY;
	prv = (uint16_t)KEY_FID(n);
	pubf = (uint16_t)(0x3000 + FID_STEP * n);

	len = fcp_key(fcp, 1, ec, prv, bits);
	rv = create_fresh(card, st, fcp, len, prv);
	if (rv != CKR_OK)
		return rv;
	len = fcp_key(fcp, 0, ec, pubf, bits);
	rv = create_fresh(card, st, fcp, len, pubf);
	if (rv != CKR_OK)
		return rv;
	gen[0] = ec ? 0x02 : 0x01;
	gen[1] = (uint8_t)(bits >> 8);
	gen[2] = (uint8_t)bits;
	gen[3] = (uint8_t)(prv >> 8);
	gen[4] = (uint8_t)prv;
	gen[5] = (uint8_t)(pubf >> 8);
	gen[6] = (uint8_t)pubf;
	rv = xmit(card, st, 0x00, INS_GEN_KEY, 0x00, 0x00, gen, sizeof(gen),
		  KYSO_LE_NONE, 0, NULL, &sw);
	if (rv == CKR_OK)
		rv = write_sw(st, sw);
	if (rv != CKR_OK)
		return rv;
	rv = read_generated(card, st, ec, bits, pubf, g->pub);
	if (rv != CKR_OK)
		return rv;

	/* the public key file becomes a transparent EF with the DER */
	rv = pub_file_der(g->pub, &der, &derlen);
	if (rv != CKR_OK)
		goto out;
	rv = delete_fid(card, st, pubf, &sw);
	if (rv == CKR_OK)
		rv = write_sw(st, sw);
	if (rv != CKR_OK)
		goto out;
	len = fcp_ef(fcp, pubf, derlen);
	rv = create_fresh(card, st, fcp, len, pubf);
	if (rv == CKR_OK)
		rv = update_binary(card, st, 0, der, derlen);
	if (rv != CKR_OK)
		goto out;

	if (req->idlen == 0) {
		/* OpenSC's intrinsic id: SHA-1 of the modulus or the point */
		rv = ec ? kyso_digest_once(CKM_SHA_1, g->pub->point,
					   g->pub->pointlen, req->id)
			: kyso_digest_once(CKM_SHA_1, g->pub->n, g->pub->nlen,
					   req->id);
		if (rv != CKR_OK)
			goto out;
		req->idlen = 20;
	}
	if (req->label[0] == '\0')
		snprintf(req->label, sizeof(req->label), "%s",
			 ec ? "EC Key" : "RSA Key");

	/* PuKDF: path to the file, verify; then PrKDF: private, the PIN's
	 * id, sign (and decrypt for RSA), sensitive and local */
	memset(&k, 0, sizeof(k));
	snprintf(k.c.label, sizeof(k.c.label), "%s", req->label);
	k.c.flags = 0x02;
	k.type = ec ? KYSO_P15_KEY_EC : KYSO_P15_KEY_RSA;
	memcpy(k.id, req->id, req->idlen);
	k.idlen = req->idlen;
	k.usage = KYSO_P15_USE_VERIFY;
	k.native = 0;
	k.has_ref = 1;
	k.ref = 0;
	app_path(st, (uint16_t)(0x3000 + n), &k.path);
	k.bits = ec ? 0 : (uint32_t)bits;
	if (kyso_p15_encode_pubkey(&k, &entry) < 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	rv = df_append(card, st, &st->pukdf, &entry);
	if (rv != CKR_OK)
		goto out;
	kyso_buf_reset(&entry);
	k.c.flags = 0x03;
	memcpy(k.c.auth_id, st->auth_id, st->auth_idlen);
	k.c.auth_idlen = st->auth_idlen;
	k.usage =
	    ec ? KYSO_P15_USE_SIGN : KYSO_P15_USE_SIGN | KYSO_P15_USE_DECRYPT;
	k.native = 1;
	k.access = 0x1D; /* sensitive, alwaysSensitive, neverExtractable,
			    local */
	k.ref = (uint32_t)n;
	app_path(st, (uint16_t)(0x2900 + n), &k.path);
	k.bits = (uint32_t)bits;
	if (kyso_p15_encode_prkey(&k, &entry) < 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	rv = df_append(card, st, &st->prkdf, &entry);
	if (rv != CKR_OK)
		goto out;
	req->ref = prv;
out:
	free(der);
	kyso_buf_free(&entry);
	return rv;
}

static CK_RV ep_generate(struct kyso_card *card, struct kyso_token *tok,
			 struct kyso_keygen *req, struct kyso_pubkey *pub)
{
	struct ep_state *st = card->drvdata;
	struct gen_op g;
	uint16_t sw = 0;
	CK_RV rv;

	if (st == NULL)
		return CKR_DEVICE_ERROR;
	if (st->layout != LAYOUT_PKCS15 || st->prkdf.len == 0 ||
	    st->pukdf.len == 0)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if ((req->type == CKK_RSA &&
	     (req->bits < 1024 || req->bits > 2048 || req->bits % 32)) ||
	    (req->type == CKK_EC && req->bits != 256))
		return CKR_KEY_SIZE_RANGE;
	if (req->type != CKK_RSA && req->type != CKK_EC)
		return CKR_KEY_TYPE_INCONSISTENT;
	/* the directory files take the user PIN's security level */
	if (!logged_in(tok))
		return CKR_USER_NOT_LOGGED_IN;
	g.tok = tok;
	g.req = req;
	g.pub = pub;
	/* A write is not repeated on a new session: half of it may be done. */
	rv = select_app(card, st, &sw);
	if (rv == CKR_OK && sw != KYSO_SW_OK)
		rv = kyso_sw_error(sw);
	if (rv == CKR_OK)
		rv = generate_run(card, st, &g);
	if (rv != CKR_OK)
		kyso_pubkey_clear(pub);
	return outward(rv);
}

static CK_RV ep_write_cert(struct kyso_card *card, struct kyso_token *tok,
			   const uint8_t *id, size_t idlen, const uint8_t *der,
			   size_t len, uint32_t *drv_ref)
{
	struct ep_state *st = card->drvdata;
	struct kyso_buf entry = KYSO_BUF_INIT;
	struct kyso_p15_cert c;
	struct kyso_key *key;
	const struct kyso_attr *a;
	uint16_t logical = 0, sw = 0;
	uint8_t fcp[32];
	size_t i, fl;
	int n = -1, existing = 0, taken;
	CK_RV rv;

	if (st == NULL)
		return CKR_DEVICE_ERROR;
	if (st->layout != LAYOUT_PKCS15 || st->cdf.len == 0)
		return CKR_FUNCTION_NOT_SUPPORTED;
	if (der == NULL || len == 0 || len > CERT_MAX || idlen == 0 ||
	    idlen > KYSO_P15_ID_MAX)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	if (!logged_in(tok))
		return CKR_USER_NOT_LOGGED_IN;
	/* a certificate with this id already: its file is replaced */
	for (i = 0; i < tok->nobjs; i++) {
		a = kyso_object_attr(tok->objs[i], CKA_ID);
		if (tok->objs[i]->cls == CKO_CERTIFICATE && a != NULL &&
		    a->len == idlen && memcmp(a->val, id, idlen) == 0 &&
		    (tok->objs[i]->drv_ref & 0xFF00) == 0x3100) {
			logical = (uint16_t)tok->objs[i]->drv_ref;
			existing = 1;
		}
	}
	key = kyso_token_key_by_id(tok, id, idlen);
	if (!existing && key != NULL && key_index(key->ref) >= 0)
		n = key_index(key->ref);
	/* else the lowest index no certificate file uses */
	for (i = 0; !existing && n < 0 && i <= MAX_INDEX; i++) {
		size_t k;

		taken = 0;
		for (k = 0; k < tok->nobjs; k++)
			if (tok->objs[k]->cls == CKO_CERTIFICATE &&
			    tok->objs[k]->drv_ref == (0x3100 | i))
				taken = 1;
		if (!taken)
			n = (int)i;
	}
	if (!existing && n < 0)
		return CKR_DEVICE_MEMORY;
	if (!existing)
		logical = (uint16_t)(0x3100 | n);

	rv = select_app(card, st, &sw);
	if (rv == CKR_OK && sw != KYSO_SW_OK)
		rv = kyso_sw_error(sw);
	if (rv != CKR_OK)
		goto out;
	fl = fcp_ef(fcp, hook_fid(st, logical), len);
	rv = create_fresh(card, st, fcp, fl, hook_fid(st, logical));
	if (rv == CKR_OK)
		rv = update_binary(card, st, 0, der, len);
	if (rv != CKR_OK || existing)
		goto out;
	memset(&c, 0, sizeof(c));
	snprintf(c.c.label, sizeof(c.c.label), "%s",
		 key != NULL ? key->label : "Certificate");
	c.c.flags = 0x02;
	memcpy(c.id, id, idlen);
	c.idlen = idlen;
	app_path(st, logical, &c.path);
	if (kyso_p15_encode_cert(&c, &entry) < 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	rv = df_append(card, st, &st->cdf, &entry);
out:
	kyso_buf_free(&entry);
	if (rv == CKR_OK && drv_ref != NULL)
		*drv_ref = logical;
	return outward(rv);
}

static CK_RV ep_delete_object(struct kyso_card *card, struct kyso_token *tok,
			      const struct kyso_object *obj)
{
	struct ep_state *st = card->drvdata;
	uint16_t logical = (uint16_t)obj->drv_ref, sw = 0;
	CK_RV rv;

	if (st == NULL)
		return CKR_DEVICE_ERROR;
	/* keys stay (as on every card kyso knows); ESPK is never written */
	if (st->layout != LAYOUT_PKCS15 || obj->cls != CKO_CERTIFICATE ||
	    (logical & 0xFF00) != 0x3100 || st->cdf.len == 0)
		return CKR_ACTION_PROHIBITED;
	if (!logged_in(tok))
		return CKR_USER_NOT_LOGGED_IN;
	rv = cdf_remove(card, st, logical);
	if (rv == CKR_OK) {
		rv = select_app(card, st, &sw);
		if (rv == CKR_OK && sw == KYSO_SW_OK)
			rv = delete_fid(card, st, hook_fid(st, logical), &sw);
		if (rv == CKR_OK && sw != KYSO_SW_OK)
			kyso_err("epass2003: certificate file %04X not deleted "
				 "(%04X); its entry is gone",
				 (unsigned)logical, sw);
	}
	return outward(rv);
}

const struct kyso_driver kyso_driver_epass2003 = {
    .name = "epass2003",
    .match = ep_match,
    .bind = ep_bind,
    .unbind = ep_unbind,
    .select = ep_select,
    .login = ep_login,
    .logout = ep_logout,
    .pin_status = ep_pin_status,
    .change_pin = ep_change_pin,
    .unblock = ep_unblock,
    .sign = ep_sign,
    .decrypt = ep_decrypt,
    .generate = ep_generate,
    .write_cert = ep_write_cert,
    .delete_object = ep_delete_object,
};
