/* ATR parsing: walks the interface bytes to find the historical bytes, then
 * the compact-TLV objects in them. Only what drivers need: the card
 * capabilities' extended-length bit. An ATR is card data: every index is
 * checked against its length. */
#include "iso7816/atr.h"

/* Category indicators of the historical bytes (ISO/IEC 7816-4, 8.1.1). */
#define HIST_COMPACT_STATUS 0x00 /* compact-TLV, then 3 status bytes */
#define HIST_COMPACT	    0x80 /* compact-TLV (status may be a TLV) */

#define CTLV_CAPABILITIES   0x7 /* card capabilities: 1 to 3 bytes */
#define CAP3_EXTENDED_LC_LE 0x40

int kyso_atr_historical(const uint8_t *atr, size_t len, const uint8_t **hist,
			size_t *histlen)
{
	size_t i, k;
	uint8_t y;

	if (atr == NULL || len < 2)
		return -1;
	if (atr[0] != 0x3B && atr[0] != 0x3F)
		return -1;
	k = atr[1] & 0x0F;
	y = atr[1] >> 4;
	i = 2;
	/* Each TDi announces which of TA/TB/TC/TD(i+1) follow. */
	for (;;) {
		size_t n = (size_t)((y & 1) + ((y >> 1) & 1) + ((y >> 2) & 1));

		if (len - i < n)
			return -1;
		i += n;
		if (!(y & 0x8))
			break;
		if (i >= len)
			return -1;
		y = atr[i] >> 4;
		i++;
	}
	if (len - i < k)
		return -1;
	*hist = atr + i;
	*histlen = k;
	return 0;
}

int kyso_atr_ext_apdu(const uint8_t *atr, size_t len)
{
	const uint8_t *h;
	size_t hlen, i;

	if (kyso_atr_historical(atr, len, &h, &hlen) < 0 || hlen < 1)
		return 0;
	if (h[0] == HIST_COMPACT_STATUS) {
		if (hlen < 4)
			return 0;
		hlen -= 3; /* the mandatory status indicator at the end */
	} else if (h[0] != HIST_COMPACT) {
		return 0; /* proprietary, or a DIR data reference (0x10) */
	}
	for (i = 1; i < hlen;) {
		unsigned tag = h[i] >> 4;
		size_t l = h[i] & 0x0F;

		i++;
		if (hlen - i < l)
			return 0;
		if (tag == CTLV_CAPABILITIES && l >= 3)
			return (h[i + 2] & CAP3_EXTENDED_LC_LE) ? 1 : 0;
		i += l;
	}
	return 0;
}
