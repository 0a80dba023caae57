/* libFuzzer target: the ENTERSAFE-ESPK parsers (src/drivers/espk.c) on
 * bytes as hostile as a token can send: the 6F01 index, a PKCS#11
 * attribute stream (every attribute's value read as a number too), the
 * container map and the DF name check. The input is handed to each
 * parser whole. Seeds: an index, a certificate/key stream and a container
 * map laid out as OpenSC PR #3835 describes them. */
#include <stdint.h>
#include <stdlib.h>

#include "drivers/espk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kyso_espk_entry ents[KYSO_ESPK_MAX_FILES];
	struct kyso_espk_attr attrs[64];
	struct kyso_espk_container cm[KYSO_ESPK_MAX_CONTAINERS];
	const struct kyso_espk_entry *e;
	uint64_t v;
	size_t n, i;
	volatile size_t sink = 0;

	if (kyso_espk_index(data, size, ents, KYSO_ESPK_MAX_FILES, &n) == 0) {
		for (i = 0; i < n; i++)
			sink += ents[i].used + ents[i].alloc + ents[i].fid;
		e = kyso_espk_find(ents, n, "tokeninfo");
		if (e != NULL)
			sink += e->fid;
	}
	if (kyso_espk_attrs(data, size, attrs, 64, &n) == 0) {
		for (i = 0; i < n; i++) {
			if (kyso_espk_ulong(&attrs[i], &v) == 0)
				sink += (size_t)v;
			if (attrs[i].len > 0)
				sink += attrs[i].val[attrs[i].len - 1];
		}
		(void)kyso_espk_attr(attrs, n,
				     (uint32_t)KYSO_ESPK_CKA_KEY_HANDLE);
	}
	if (kyso_espk_containermap(data, size, cm, KYSO_ESPK_MAX_CONTAINERS,
				   &n) == 0)
		for (i = 0; i < n; i++)
			sink += cm[i].priv + cm[i].pub;
	sink += (size_t)kyso_espk_is_name(data, size);
	(void)sink;
	return 0;
}
