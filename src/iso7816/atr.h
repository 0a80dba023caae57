/* Answer-to-reset parsing (ISO/IEC 7816-3 structure, 7816-4 historical
 * bytes): what a card tells about itself before the first APDU. */
#ifndef KYSO_ISO7816_ATR_H
#define KYSO_ISO7816_ATR_H

#include <stddef.h>
#include <stdint.h>

/* Finds the historical bytes of an ATR. Returns 0 and sets *hist / *histlen
 * (pointing into atr), or -1 when the ATR is malformed or truncated. */
int kyso_atr_historical(const uint8_t *atr, size_t len, const uint8_t **hist,
			size_t *histlen);

/* 1 when the card capabilities in the historical bytes (compact-TLV tag 7,
 * third software-function byte, bit 0x40) announce extended Lc/Le; 0 when
 * they do not, are absent, or the ATR cannot be parsed. */
int kyso_atr_ext_apdu(const uint8_t *atr, size_t len);

#endif
