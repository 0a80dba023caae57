/* libFuzzer target: answer-to-reset parsing (src/iso7816/atr.c). An ATR
 * comes from the reader before any APDU; whatever its bytes, the parser
 * must stay inside them and say yes or no. */
#include <stdint.h>
#include <stdlib.h>

#include "iso7816/atr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *hist = NULL;
	size_t histlen = 0, i;
	volatile uint8_t sink = 0;
	int ext;

	if (kyso_atr_historical(data, size, &hist, &histlen) == 0) {
		if (hist < data || histlen > size ||
		    (size_t)(hist - data) > size - histlen)
			abort();
		/* every byte it points at must be readable */
		for (i = 0; i < histlen; i++)
			sink ^= hist[i];
	}
	ext = kyso_atr_ext_apdu(data, size);
	if (ext != 0 && ext != 1)
		abort();
	(void)sink;
	return 0;
}
