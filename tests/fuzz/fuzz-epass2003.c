/* libFuzzer target: the ePass2003 driver (src/drivers/epass2003.c) over a
 * raw scripted card (kyso_script_card_raw) that answers each command with
 * the next response of the input (split.h), the token's ATR in front. The
 * first response answers the mode query: a token without secure messaging
 * lets every later answer reach the parsers (EF.DIR, ODF, TokenInfo, the
 * directory files, certificates, the ESPK index, attribute streams and
 * container map, FCIs, PIN answers, signatures); one with secure messaging
 * exercises the authentication and the refusal of unprotected answers.
 * When bind succeeds: select, login, a signature and a decryption with
 * each key, key generation, certificate writing and deletion, PIN status,
 * PIN change, SO login and unblock, logout.
 * Seeds: plain-mode sessions recorded from the unit tests' token
 * (tests/unit/test-epass2003 with EPASS_FUZZ_SEEDS=DIR). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reader/reader.h"
#include "split.h"
#include "token/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern const struct kyso_driver kyso_driver_epass2003;

static const uint8_t atr[] = {0x3B, 0x9F, 0x95, 0x81, 0x31, 0xFE, 0x9F, 0x00,
			      0x66, 0x46, 0x53, 0x05, 0x01, 0x00, 0x11, 0x71,
			      0xDF, 0x00, 0x00, 0x03, 0x90, 0x00, 0x80};

static const uint8_t pin[] = "12345678";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct kyso_driver *d = &kyso_driver_epass2003;
	struct fuzz_resps r;
	struct kyso_card *card;
	struct kyso_token *tok;
	uint8_t in[256], out[256];
	size_t i, outlen, k;
	int tries;

	fuzz_split(data, size, &r);
	card = kyso_script_card_raw(atr, sizeof(atr), r.p, r.len, r.n);
	if (card == NULL)
		return 0;
	tok = calloc(1, sizeof(*tok));
	if (tok == NULL) {
		kyso_card_free(card);
		return 0;
	}
	tok->user_tries = tok->user_max = tok->so_tries = tok->so_max = -1;
	tok->login = KYSO_NOBODY;
	if (kyso_card_begin(card) != CKR_OK)
		goto out;
	if (!d->match(card)) {
		kyso_card_end(card);
		goto out;
	}
	if (d->bind(card, tok) == CKR_OK) {
		tok->drv = d;
		tok->card = card;
		(void)d->select(card);
		(void)d->login(card, CKU_USER, pin, 8, &tries);
		memset(in, 0x5A, sizeof(in));
		in[0] = 0x00;
		for (i = 0; i < tok->nkeys; i++) {
			k = (tok->keys[i].bits + 7) / 8;
			if (k == 0 || k > sizeof(in))
				continue;
			outlen = sizeof(out);
			(void)d->sign(card, &tok->keys[i], in, k, out, &outlen);
			outlen = sizeof(out);
			(void)d->decrypt(card, &tok->keys[i], in, k, out,
					 &outlen);
		}
		tok->login = CKU_USER;
		{
			struct kyso_keygen req;
			struct kyso_pubkey pub;
			uint32_t ref;

			memset(&req, 0, sizeof(req));
			memset(&pub, 0, sizeof(pub));
			req.type = (data[size > 0 ? size - 1 : 0] & 1)
				       ? CKK_EC
				       : CKK_RSA;
			req.bits = req.type == CKK_EC ? 256 : 1024;
			(void)d->generate(card, tok, &req, &pub);
			kyso_pubkey_clear(&pub);
			(void)d->write_cert(card, tok, in, 1, in, 64, &ref);
			for (i = 0; i < tok->nobjs; i++)
				if (tok->objs[i]->cls == CKO_CERTIFICATE)
					(void)d->delete_object(card, tok,
							       tok->objs[i]);
		}
		(void)d->pin_status(card, CKU_USER, &tries);
		(void)d->change_pin(card, CKU_USER, pin, 8, pin, 8, &tries);
		(void)d->login(card, CKU_SO, pin, 8, &tries);
		(void)d->unblock(card, pin, 8, &tries);
		(void)d->logout(card);
		d->unbind(card);
		tok->drv = NULL;
		tok->card = NULL;
	}
	kyso_card_end(card);
out:
	kyso_token_free(tok);
	kyso_card_free(card);
	return 0;
}
