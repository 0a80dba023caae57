/* The blank profile: a powered card with no application on it, for tests
 * of the harness itself and of how hosts treat a card they cannot use. It
 * knows no AID, supports no instruction and keeps no state. */
#include "vcard.h"

/* TS=3B direct convention; T0=88: TD1 follows, 8 historical bytes;
 * TD1=80: TD2 follows, T=0; TD2=01: T=1, so a TCK closes the ATR.
 * Historical bytes "KYSOBLNK" (proprietary format: first byte is not a
 * category indicator 00/10/80). TCK = XOR of T0 .. last historical. */
static const uint8_t blank_atr[] = {
    0x3B, 0x88, 0x80, 0x01, 'K', 'Y', 'S', 'O', 'B', 'L', 'N', 'K', 0x0C,
};

static size_t sw(uint8_t *resp, unsigned w)
{
	resp[0] = (uint8_t)(w >> 8);
	resp[1] = (uint8_t)w;
	return 2;
}

/* ISO 7816-4 interindustry classes are 000x xxxx and 01xx xxxx; the rest
 * is proprietary or RFU, which a card without applications cannot know. */
static int cla_interindustry(uint8_t cla)
{
	return (cla & 0xE0) == 0x00 || (cla & 0xC0) == 0x40;
}

static size_t blank_apdu(struct vcard *vc, const uint8_t *cmd, size_t len,
			 uint8_t *resp, size_t cap)
{
	(void)vc;
	(void)cap;
	if (len < 4)
		return sw(resp, 0x6700);
	if (!cla_interindustry(cmd[0]))
		return sw(resp, 0x6E00);
	switch (cmd[1]) {
	case 0xA4: /* SELECT: there is nothing to find */
		return sw(resp, 0x6A82);
	case 0xC0: /* GET RESPONSE: nothing is pending */
		return sw(resp, 0x6985);
	default:
		return sw(resp, 0x6D00);
	}
}

const struct vcard_profile vcard_profile_blank = {
    .name = "blank",
    .atr = blank_atr,
    .atrlen = sizeof(blank_atr),
    .apdu = blank_apdu,
};
