/* libFuzzer target: the APDU exchange and status handling
 * (src/iso7816/apdu.c) over a raw scripted card (kyso_script_card_raw)
 * that answers each command with the next response of the input, whatever
 * it is: short answers, 61xx / 6Cxx loops, answers past every bound.
 *
 * Input: 12 bytes of command (CLA INS P1 P2, flags, Lc hi lo, Le hi lo,
 * card max_send, response bound hi lo), then the responses (split.h).
 * Checked on every exchange: the result is OK or an error with resp left
 * as it was; an OK answer stays within its bound and its final status word
 * is not 61xx (but for a chain cut short); the command data of a PIN command is sent at most once; the
 * number of commands is bounded by the answers given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iso7816/apdu.h"
#include "reader/reader.h"
#include "split.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HDR 12

/* A transport around the script card's, which watches what is sent. */
static const struct kyso_card_ops *script_ops;
static struct {
	unsigned sends;
	size_t secret_bytes; /* command data bytes sent with a PIN INS */
	uint8_t ins;
	uint8_t last_cla; /* of the last command sent */
} seen;

/* The data field length of an encoded command (0 if none). */
static size_t data_len(const uint8_t *cmd, size_t len)
{
	if (len <= 5)
		return 0;
	if (cmd[4] != 0)
		return cmd[4];
	if (len <= 7)
		return 0;
	return (size_t)cmd[5] << 8 | cmd[6];
}

static CK_RV watch_transmit(struct kyso_card *c, const uint8_t *cmd,
			    size_t len, uint8_t *resp, size_t *resplen)
{
	if (len < 4)
		abort(); /* kyso never builds a command without a header */
	seen.sends++;
	seen.last_cla = cmd[0];
	if (cmd[1] == seen.ins && kyso_apdu_is_secret(cmd, len))
		seen.secret_bytes += data_len(cmd, len);
	return script_ops->transmit(c, cmd, len, resp, resplen);
}

static CK_RV watch_begin(struct kyso_card *c)
{
	return script_ops->begin(c);
}

static CK_RV watch_end(struct kyso_card *c)
{
	return script_ops->end(c);
}

static void watch_release(struct kyso_card *c)
{
	script_ops->release(c);
}

static const struct kyso_card_ops watch_ops = {
	.transmit = watch_transmit,
	.begin = watch_begin,
	.end = watch_end,
	.release = watch_release,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t atr[] = {0x3B, 0x80, 0x80, 0x01, 0x01};
	static uint8_t cmddata[65535];
	struct fuzz_resps r;
	struct kyso_card *card;
	struct kyso_apdu a;
	struct kyso_buf resp = KYSO_BUF_INIT;
	uint16_t sw = 0xFFFF;
	size_t before, i;
	uint8_t flags, hdr[2];
	CK_RV rv;

	if (size < HDR)
		return 0;
	memset(&a, 0, sizeof(a));
	a.cla = data[0];
	a.ins = data[1];
	a.p1 = data[2];
	a.p2 = data[3];
	flags = data[4];
	a.flags = flags & (KYSO_APDU_SECRET | KYSO_APDU_CHAIN |
			   KYSO_APDU_SHORT);
	a.lc = (size_t)data[5] << 8 | data[6];
	a.le = (size_t)data[7] << 8 | data[8];
	if (flags & 0x80)
		a.le = KYSO_LE_MAX;
	if (a.lc) {
		for (i = 0; i < a.lc; i++)
			cmddata[i] = (uint8_t)i;
		a.data = cmddata;
	}
	resp.max = (size_t)data[10] << 8 | data[11];
	resp.secret = (flags & 0x40) != 0;

	fuzz_split(data + HDR, size - HDR, &r);
	card = kyso_script_card_raw(atr, sizeof(atr), r.p, r.len, r.n);
	if (card == NULL)
		return 0;
	card->ext_apdu = (flags & 0x20) != 0;
	card->max_send = data[9];
	script_ops = card->ops;
	card->ops = &watch_ops;
	memset(&seen, 0, sizeof(seen));
	seen.ins = a.ins;

	/* something already in the buffer must survive a failure */
	if (flags & 0x10)
		kyso_buf_append(&resp, "prefix", 6);
	before = resp.len;

	rv = kyso_apdu_transmit(card, &a, &resp, &sw);
	if (rv == CKR_OK) {
		size_t max = resp.max ? resp.max : (size_t)1 << 20;

		if (resp.len < before || resp.len > before + max)
			abort();
		/* 61xx is followed by GET RESPONSE, unless it answered a
		 * block of a chain: the chain stops there, sw tells why */
		if ((sw >> 8) == 0x61 && !(seen.last_cla & 0x10))
			abort();
		(void)kyso_sw_to_rv(sw);
	} else {
		if (resp.len != before || sw != 0)
			abort();
	}
	if (before && memcmp(resp.p, "prefix", 6) != 0)
		abort();
	/* a PIN is never sent twice, not even a part of it */
	hdr[0] = a.cla;
	hdr[1] = a.ins;
	if (kyso_apdu_is_secret(hdr, sizeof(hdr)) && seen.secret_bytes > a.lc)
		abort();
	/* every command but the first answered one by one: no loop past
	 * the script (the card fails the first command beyond it) */
	if (seen.sends > r.n + 1)
		abort();
	if (card->depth != 0)
		abort(); /* the transaction is closed whatever happened */

	kyso_buf_free(&resp);
	kyso_card_free(card);
	return 0;
}
