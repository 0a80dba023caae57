/* libFuzzer target: secure messaging (src/iso7816/sm.c). The first input
 * byte picks the session kind (3DES with retail MAC, AES with CBC-MAC, AES
 * with CMAC) and whether the rest is an answer to open -- a token's
 * answer, hostile -- or a command to wrap. Keys and chaining value are
 * fixed, so seeds made with them (answers with a valid MAC) reach the
 * decryption and padding checks; anything that does not verify must be
 * refused without reading past the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iso7816/sm.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t kenc[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
				 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB,
				 0xCC, 0xDD, 0xEE, 0xFF};
static const uint8_t kmac[16] = {0x0F, 0x1E, 0x2D, 0x3C, 0x4B, 0x5A,
				 0x69, 0x78, 0x87, 0x96, 0xA5, 0xB4,
				 0xC3, 0xD2, 0xE1, 0xF0};
static const uint8_t icv[8] = {1, 2, 3, 4, 5, 6, 7, 8};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kyso_sm sm;
	struct kyso_buf out = KYSO_BUF_INIT;
	struct kyso_apdu a = {0};
	uint8_t *cmd;
	size_t n, cap;
	uint16_t sw;
	int plain, kind;

	if (size < 1)
		return 0;
	kind = data[0] % 3;
	memset(&sm, 0, sizeof(sm));
	sm.cipher = kind == 0 ? KYSO_DES3 : KYSO_AES;
	sm.mac = kind == 0   ? KYSO_SM_RETAIL
		 : kind == 1 ? KYSO_SM_CBCMAC
			     : KYSO_SM_CMAC;
	sm.flags = KYSO_SM_ICV_COUNTER;
	memcpy(sm.kenc, kenc, 16);
	memcpy(sm.kmac, kmac, 16);
	memcpy(sm.icv, icv, 8);
	out.max = 70000;
	if (!(data[0] & 0x80)) {
		if (kyso_sm_unwrap(&sm, data + 1, size - 1, &out, &sw,
				   &plain) == CKR_OK &&
		    (plain ? out.len != 0 : out.len > size))
			abort(); /* never more plain data than cipher */
		kyso_buf_free(&out);
		return 0;
	}
	/* a command: header, then data; Le from the header bytes */
	if (size < 6)
		return 0;
	a.cla = data[1];
	a.ins = data[2];
	a.p1 = data[3];
	a.p2 = data[4];
	a.lc = size - 6;
	a.data = a.lc ? data + 6 : NULL;
	a.le = data[5] == 0	? KYSO_LE_NONE
	       : data[5] <= 128 ? data[5]
				: (size_t)data[5] * 257;
	cap = kyso_sm_wrapped_max(a.lc);
	cmd = malloc(cap);
	if (cmd != NULL)
		(void)kyso_sm_wrap(&sm, &a, 0, cmd, cap, &n);
	free(cmd);
	return 0;
}
