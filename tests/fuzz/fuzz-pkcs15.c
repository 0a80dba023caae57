/* libFuzzer target: the PKCS#15 parser library (src/drivers/pkcs15.c) and
 * the ASN.1 reader under it (src/iso7816/asn1.c). The first input byte
 * picks what the rest is read as -- EF.DIR record, ODF, TokenInfo, a
 * directory file whose every object goes through the AODF, PrKDF, PuKDF
 * and CDF readers, a public key value -- and the file-extent check runs
 * on every input. Objects that parse are encoded again (encoders must take
 * whatever the parser gives) and read back. Seeds: the structures OpenSC's
 * pkcs15-init writes on an ePass2003, and SubjectPublicKeyInfos. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/pkcs15.h"
#include "iso7816/asn1.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void objects(const uint8_t *p, size_t len)
{
	struct kyso_cur c = kyso_cur_make(p, len);
	struct kyso_asn1 obj;
	struct kyso_p15_pin pin;
	struct kyso_p15_key key;
	struct kyso_p15_cert cert;
	struct kyso_pubkey pub;
	struct kyso_buf out = KYSO_BUF_INIT;
	int n = 0;

	while (n++ < 64 && kyso_p15_next(&c, &obj) == 1) {
		(void)kyso_p15_pin(&obj, &pin);
		if (kyso_p15_prkey(&obj, &key) == KYSO_P15_OK &&
		    key.path.len > 0) {
			kyso_buf_reset(&out);
			(void)kyso_p15_encode_prkey(&key, &out);
		}
		if (kyso_p15_pubkey(&obj, &key) == KYSO_P15_OK &&
		    key.direct != NULL) {
			memset(&pub, 0, sizeof(pub));
			(void)kyso_p15_decode_pubkey(key.direct, key.directlen,
						     &pub);
			kyso_pubkey_clear(&pub);
			kyso_buf_reset(&out);
			(void)kyso_p15_encode_pubkey(&key, &out);
		}
		if (kyso_p15_cert(&obj, &cert) == KYSO_P15_OK &&
		    cert.path.len > 0) {
			kyso_buf_reset(&out);
			if (kyso_p15_encode_cert(&cert, &out) == 0) {
				struct kyso_cur r =
				    kyso_cur_make(out.p, out.len);
				struct kyso_asn1 again;
				struct kyso_p15_cert back;

				if (kyso_p15_next(&r, &again) != 1 ||
				    kyso_p15_cert(&again, &back) != KYSO_P15_OK)
					abort(); /* our own encoding must read
						  */
			}
		}
	}
	kyso_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kyso_p15_app app;
	struct kyso_p15_odf odf;
	struct kyso_p15_tokeninfo ti;
	struct kyso_p15_path joined;
	struct kyso_pubkey pub;
	size_t used;
	const uint8_t *p;
	size_t len, i, k;

	if (size < 1)
		return 0;
	p = data + 1;
	len = size - 1;
	(void)kyso_asn1_extent(p, len, 0, &used);
	(void)kyso_asn1_extent(p, len, 1, &used);
	switch (data[0] % 5) {
	case 0:
		(void)kyso_p15_dir_entry(p, len, &app);
		break;
	case 1:
		if (kyso_p15_odf(p, len, &odf) == 0)
			for (k = 0; k < KYSO_P15_NDF; k++)
				for (i = 0; i < odf.n[k]; i++)
					(void)kyso_p15_path_join(&odf.df[k][0],
								 &odf.df[k][i],
								 &joined);
		break;
	case 2:
		(void)kyso_p15_tokeninfo(p, len, &ti);
		break;
	case 3:
		objects(p, len);
		break;
	default:
		memset(&pub, 0, sizeof(pub));
		(void)kyso_p15_decode_pubkey(p, len, &pub);
		kyso_pubkey_clear(&pub);
		break;
	}
	return 0;
}
