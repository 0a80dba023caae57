/* ISO 7816-3/-4 command APDUs: the encoding of the seven cases, one exchange
 * with everything the card may ask for (command chaining, 61xx GET RESPONSE,
 * 6Cxx re-send), and what a final status word means to a PKCS#11 caller. */
#include "iso7816/apdu.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* buf.h: a kyso_buf with max 0 stops at 1 MiB */
#define BUF_DEFAULT_MAX ((size_t)1 << 20)
/* 61xx rounds after one command: 1024 x 256 bytes is far beyond any card
 * object; a card that keeps asking past that is broken or hostile. */
#define GET_RESPONSE_MAX_ROUNDS 1024
/* GET RESPONSE answers in a row that bring no data yet say 61xx */
#define GET_RESPONSE_MAX_STALLS 8

#define INS_GET_RESPONSE 0xC0
#define CLA_CHAIN	 0x10

static int valid_fields(const struct kyso_apdu *a)
{
	if (a->lc > 65535 || a->le > KYSO_LE_MAX)
		return 0;
	/* data without a length, or a length without data */
	if ((a->lc == 0) != (a->data == NULL))
		return 0;
	return 1;
}

CK_RV kyso_apdu_encode(const struct kyso_apdu *a, int extended, uint8_t *out,
		       size_t cap, size_t *outlen)
{
	size_t need = 4, n = 0;
	int ext;

	if (!a || !outlen || (!out && cap))
		return CKR_ARGUMENTS_BAD;
	if (!valid_fields(a))
		return CKR_ARGUMENTS_BAD;
	ext = extended || a->lc > 255 || a->le > 256;
	if (ext && (a->flags & KYSO_APDU_SHORT))
		return CKR_ARGUMENTS_BAD;

	if (a->lc)
		need += (ext ? 3 : 1) + a->lc;
	if (a->le != KYSO_LE_NONE)
		need += ext ? (a->lc ? 2 : 3) : 1;
	if (need > cap) {
		*outlen = need;
		return CKR_BUFFER_TOO_SMALL;
	}

	out[n++] = a->cla;
	out[n++] = a->ins;
	out[n++] = a->p1;
	out[n++] = a->p2;
	if (a->lc) {
		if (ext) {
			out[n++] = 0x00;
			out[n++] = (uint8_t)(a->lc >> 8);
		}
		out[n++] = (uint8_t)a->lc;
		memcpy(out + n, a->data, a->lc);
		n += a->lc;
	}
	if (a->le != KYSO_LE_NONE) {
		/* 256 is 00 short, 65536 is 0000 extended: both wrap to 0 */
		if (ext) {
			if (!a->lc)
				out[n++] = 0x00;
			out[n++] = (uint8_t)(a->le >> 8);
		}
		out[n++] = (uint8_t)a->le;
	}
	*outlen = n;
	return CKR_OK;
}

/* The state of one kyso_apdu_transmit. */
struct xfer {
	struct kyso_card *card;
	uint8_t *cmd; /* encoded command, cmdcap bytes */
	size_t cmdcap;
	uint8_t *rbuf; /* KYSO_MAX_RAPDU bytes */
	size_t rlen;
	size_t rused; /* high-water mark of rbuf, for the wipe */
	int redact;
};

static CK_RV send_one(struct xfer *x, const struct kyso_apdu *a)
{
	size_t n;
	CK_RV rv;

	rv = kyso_apdu_encode(a, 0, x->cmd, x->cmdcap, &n);
	if (rv != CKR_OK)
		return rv == CKR_BUFFER_TOO_SMALL ? CKR_GENERAL_ERROR : rv;
	x->rlen = 0;
	rv = kyso_card_transmit_redact(x->card, x->cmd, n, x->rbuf, &x->rlen,
				       x->redact);
	if (x->rlen > x->rused)
		x->rused = x->rlen;
	return rv;
}

static uint16_t last_sw(const struct xfer *x)
{
	return (uint16_t)(x->rbuf[x->rlen - 2] << 8 | x->rbuf[x->rlen - 1]);
}

/* The last (or only) command, then whatever 61xx / 6Cxx asks for. */
static CK_RV finish(struct xfer *x, const struct kyso_apdu *last,
		    struct kyso_buf *resp, uint16_t *sw)
{
	struct kyso_apdu cur = *last;
	size_t max = resp->max ? resp->max : BUF_DEFAULT_MAX;
	unsigned rounds = 0, stalls = 0;
	int resent, is_get_response = 0;
	const uint8_t hdr[2] = {last->cla, last->ins};
	uint16_t s;
	size_t n;
	CK_RV rv;

	/* A PIN is never sent twice: a card that said 6Cxx to a VERIFY (or to
	 * any command flagged secret, such as a vendor PIN check) may have
	 * counted the attempt all the same. */
	resent = kyso_apdu_is_secret(hdr, sizeof(hdr)) ||
		 (last->flags & KYSO_APDU_SECRET);
	rv = send_one(x, &cur);
	for (;;) {
		if (rv != CKR_OK)
			return rv;
		s = last_sw(x);
		n = x->rlen - 2;

		if ((s >> 8) == 0x6C && !resent) {
			/* wrong Le: the card tells the right one, ask again */
			resent = 1;
			cur.le = (s & 0xff) ? (s & 0xff) : 256;
			rv = send_one(x, &cur);
			continue;
		}

		if (resp->len > max || n > max - resp->len) {
			kyso_err("apdu: response longer than %zu bytes", max);
			return CKR_DEVICE_ERROR;
		}
		if (kyso_buf_append(resp, x->rbuf, n) < 0)
			return CKR_HOST_MEMORY;

		if ((s >> 8) != 0x61) {
			*sw = s;
			return CKR_OK;
		}
		if (++rounds > GET_RESPONSE_MAX_ROUNDS) {
			kyso_err("apdu: card keeps answering 61xx");
			return CKR_DEVICE_ERROR;
		}
		if (is_get_response && n == 0) {
			if (++stalls > GET_RESPONSE_MAX_STALLS) {
				kyso_err("apdu: GET RESPONSE brings no data");
				return CKR_DEVICE_ERROR;
			}
		} else {
			stalls = 0;
		}

		memset(&cur, 0, sizeof(cur));
		cur.cla = last->cla & (uint8_t)~CLA_CHAIN;
		cur.ins = INS_GET_RESPONSE;
		cur.le = (s & 0xff) ? (s & 0xff) : 256;
		is_get_response = 1;
		resent = 0;
		x->redact = 0; /* GET RESPONSE carries no data */
		rv = send_one(x, &cur);
	}
}

CK_RV kyso_apdu_transmit(struct kyso_card *card, const struct kyso_apdu *a,
			 struct kyso_buf *resp, uint16_t *sw)
{
	struct xfer x = {0};
	struct kyso_apdu blk;
	size_t limit, off = 0, start, chunk;
	int ext_ok;
	CK_RV rv, rv2;

	if (!card || !a || !resp || !sw)
		return CKR_ARGUMENTS_BAD;
	*sw = 0;
	if (!valid_fields(a))
		return CKR_ARGUMENTS_BAD;

	ext_ok = card->ext_apdu && !(a->flags & KYSO_APDU_SHORT);
	limit = card->max_send ? card->max_send : (ext_ok ? 65535 : 255);
	if (!ext_ok && limit > 255)
		limit = 255;
	if (limit > 65535)
		limit = 65535;
	if (a->lc > limit && !(a->flags & KYSO_APDU_CHAIN))
		return CKR_ARGUMENTS_BAD;

	chunk = a->lc < limit ? a->lc : limit;
	x.card = card;
	x.redact = (a->flags & KYSO_APDU_SECRET) != 0;
	x.cmdcap = 4 + 3 + chunk + 3;
	x.cmd = malloc(x.cmdcap);
	x.rbuf = malloc(KYSO_MAX_RAPDU);
	if (!x.cmd || !x.rbuf) {
		rv = CKR_HOST_MEMORY;
		goto out_free;
	}

	rv = kyso_card_begin(card);
	if (rv != CKR_OK)
		goto out_free;
	start = resp->len;

	/* all blocks but the last carry the chaining bit and no Le */
	while (a->lc - off > limit) {
		blk = *a;
		blk.cla |= CLA_CHAIN;
		blk.data = a->data + off;
		blk.lc = limit;
		blk.le = KYSO_LE_NONE;
		rv = send_one(&x, &blk);
		if (rv != CKR_OK)
			goto out;
		if (last_sw(&x) != KYSO_SW_OK) {
			*sw = last_sw(&x);
			goto out;
		}
		off += limit;
	}

	blk = *a;
	blk.lc = a->lc - off;
	blk.data = blk.lc ? a->data + off : NULL;
	/* a short-only card gets Le 00 (256) and sends the rest by 61xx */
	if (!ext_ok && blk.le > 256)
		blk.le = 256;
	rv = finish(&x, &blk, resp, sw);

out:
	if (rv != CKR_OK) {
		/* a failed exchange leaves resp as it was */
		if (resp->len > start) {
			if (resp->secret)
				kyso_wipe(resp->p + start, resp->len - start);
			resp->len = start;
		}
		*sw = 0;
	}
	rv2 = kyso_card_end(card);
	if (rv2 != CKR_OK)
		kyso_err("apdu: end of transaction: rv 0x%lx",
			 (unsigned long)rv2);
out_free:
	kyso_wipe(x.cmd, x.cmdcap);
	kyso_wipe(x.rbuf, x.rused);
	free(x.cmd);
	free(x.rbuf);
	return rv;
}

/* What a final status word means to a PKCS#11 caller. Only meanings that
 * hold whatever the command was are mapped here; a driver that knows better
 * for one command (6A82 on SELECT is "no such application", 6984 on VERIFY
 * may mean a PIN that was never set) checks the status word itself first.
 *
 * CKR_FUNCTION_FAILED: the card understood the request and refused it in
 *   this state or with this data (6985, 6986, 6A80, 6A89, 6A8A): the token
 *   works, the same call will fail again. Not CKR_ARGUMENTS_BAD, which would
 *   blame the caller's pointers for bytes the module built; not
 *   CKR_FUNCTION_REJECTED, which PKCS#11 reserves for a user's refusal.
 * CKR_DEVICE_ERROR: the card and kyso do not understand each other (wrong
 *   length, wrong P1-P2, SM objects missing), the card failed (64xx, 65xx,
 *   6Fxx), 6984 (reference data not usable: its meaning depends on the
 *   command), and every status word not listed. */
CK_RV kyso_sw_to_rv(uint16_t sw)
{
	uint8_t sw1 = sw >> 8, sw2 = sw & 0xff;

	if (sw == KYSO_SW_OK)
		return CKR_OK;
	/* 63Cx with x = 0 too: this attempt was wrong; that the PIN is now
	 * blocked shows in the next answer (6983) and in the token flags */
	if (sw == 0x6300 || (sw1 == 0x63 && (sw2 & 0xf0) == 0xc0))
		return CKR_PIN_INCORRECT;

	switch (sw) {
	case 0x6982: /* security status not satisfied */
		return CKR_USER_NOT_LOGGED_IN;
	case 0x6983: /* authentication method blocked */
		return CKR_PIN_LOCKED;
	case 0x6985: /* conditions of use not satisfied */
	case 0x6986: /* command not allowed (no current EF) */
	case 0x6A80: /* incorrect parameters in the data field */
	case 0x6A89: /* file already exists */
	case 0x6A8A: /* DF name already exists */
		return CKR_FUNCTION_FAILED;
	case 0x6A82: /* file or application not found */
	case 0x6A83: /* record not found */
	case 0x6A88: /* referenced data (key, PIN, object) not found */
		return CKR_OBJECT_HANDLE_INVALID;
	case 0x6A84: /* not enough memory space in the file */
		return CKR_DEVICE_MEMORY;
	case 0x6A81: /* function not supported */
	case 0x6D00: /* instruction not supported */
	case 0x6E00: /* class not supported */
		return CKR_FUNCTION_NOT_SUPPORTED;
	default:
		return CKR_DEVICE_ERROR;
	}
}

CK_RV kyso_sw_error(uint16_t sw)
{
	CK_RV rv = kyso_sw_to_rv(sw);

	return rv == CKR_OK ? CKR_DEVICE_ERROR : rv;
}

int kyso_pin_sw(uint16_t sw, CK_RV *rv, int *tries)
{
	*tries = -1;
	if (sw == KYSO_SW_OK) {
		*rv = CKR_OK;
	} else if ((sw & 0xFFF0) == 0x63C0) {
		*tries = sw & 0x0F;
		*rv = *tries ? CKR_PIN_INCORRECT : CKR_PIN_LOCKED;
	} else if (sw == 0x6983) {
		*tries = 0;
		*rv = CKR_PIN_LOCKED;
	} else if (sw == 0x6300) {
		*rv = CKR_PIN_INCORRECT;
	} else {
		return 0;
	}
	return 1;
}

CK_RV kyso_pin_state_sw(uint16_t sw, int *tries)
{
	CK_RV rv;

	if (!kyso_pin_sw(sw, &rv, tries))
		return kyso_sw_error(sw);
	/* 63Cx with tries left: not verified (yet), nothing wrong */
	return rv == CKR_PIN_INCORRECT && *tries > 0 ? CKR_OK : rv;
}
