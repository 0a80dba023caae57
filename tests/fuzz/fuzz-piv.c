/* libFuzzer target: the PIV driver (src/drivers/piv.c) over a raw scripted
 * card (kyso_script_card_raw) that answers each command with the next
 * response of the input. kyso_driver_piv.match and .bind read the SELECT
 * answer, CHUID, Key History and the certificate containers (compressed or
 * not); when bind succeeds, every other operation that parses a card
 * answer runs too: PIN status and VERIFY, a signature and a decryption with
 * each key (GENERAL AUTHENTICATE, ECDSA DER), CHANGE REFERENCE DATA,
 * RESET RETRY COUNTER, management-key authentication, key generation
 * (7F49 public keys), certificate write and delete.
 *
 * Input: one byte of options (bit 0: an ATR without extended length, so
 * long commands are chained and long answers come by GET RESPONSE), then
 * the responses (split.h). Seeds are sessions recorded from kyso-vcard.
 *
 * The management-key exchange ends with the card encrypting a challenge
 * the host picked at random; the transport here answers that one command
 * itself (with the default 3DES key), so that generation and writes are
 * reached from fixed inputs.
 *
 * Built with -DFUZZ_RECORD instead, this file is the seed recorder: it runs
 * the same sequence against a real card (PC/SC reader KYSO_READER, e.g. a
 * provisioned kyso-vcard under tests/with-card) and writes the card's
 * answers as a seed; `make fuzz-seeds` does that. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "reader/reader.h"
#include "split.h"
#include "token/token.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* kyso-vcard's PIV ATR (extended Lc/Le), and one that only chains
 * (73 C0 21 80). */
#ifndef FUZZ_RECORD
static const uint8_t atr_ext[] = {
	0x3B, 0x9F, 0x96, 0x81, 0x31, 0xFE, 0x45, 0x80, 0x73, 0xC0, 0x21, 0xC0,
	0xF9, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x92};
#endif
static const uint8_t atr_short[] = {0x3B, 0x85, 0x80, 0x01, 0x80,
				    0x73, 0xC0, 0x21, 0x80, 0x1B};

static const uint8_t mgmt_key[24] = {
	1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8};
#define MGMT_CRED "3des:010203040506070801020304050607080102030405060708"

/* The transport underneath: the script card's (or PC/SC when recording). */
static const struct kyso_card_ops *inner_ops;
#ifdef FUZZ_RECORD
static FILE *record;
#endif

/* GENERAL AUTHENTICATE 9B with 7C { 80 8 witness 81 8 challenge }: the
 * card's proof, E(challenge), as a card holding the default key gives. */
static int mgmt_answer(const uint8_t *cmd, size_t len, uint8_t *resp,
		       size_t *resplen)
{
	const uint8_t *d = cmd + 5;

	if (len < 5 + 22 || cmd[1] != 0x87 || cmd[2] != 0x03 ||
	    cmd[3] != 0x9B || cmd[4] != 22 || d[0] != 0x7C || d[1] != 20 ||
	    d[2] != 0x80 || d[3] != 8 || d[12] != 0x81 || d[13] != 8)
		return 0;
	resp[0] = 0x7C;
	resp[1] = 10;
	resp[2] = 0x82;
	resp[3] = 8;
	if (kyso_cipher_ecb(KYSO_DES3, mgmt_key, sizeof(mgmt_key), 1, d + 14,
			    8, resp + 4) != CKR_OK)
		return 0;
	resp[12] = 0x90;
	resp[13] = 0x00;
	*resplen = 14;
	return 1;
}

static CK_RV card_transmit(struct kyso_card *c, const uint8_t *cmd,
			   size_t len, uint8_t *resp, size_t *resplen)
{
#ifdef FUZZ_RECORD
	uint8_t scratch[16];
	size_t n = sizeof(scratch);
	int ours = mgmt_answer(cmd, len, scratch, &n);
	CK_RV rv = inner_ops->transmit(c, cmd, len, resp, resplen);

	/* the answer the fuzzing transport computes itself is not input */
	if (rv == CKR_OK && !ours) {
		fputc((int)(*resplen >> 8), record);
		fputc((int)(*resplen & 0xFF), record);
		fwrite(resp, 1, *resplen, record);
	}
	return rv;
#else
	if (mgmt_answer(cmd, len, resp, resplen))
		return CKR_OK;
	return inner_ops->transmit(c, cmd, len, resp, resplen);
#endif
}

static CK_RV card_begin(struct kyso_card *c)
{
	return inner_ops->begin(c);
}

static CK_RV card_end(struct kyso_card *c)
{
	return inner_ops->end(c);
}

static void card_release(struct kyso_card *c)
{
	inner_ops->release(c);
}

static const struct kyso_card_ops fuzz_card_ops = {
	.transmit = card_transmit,
	.begin = card_begin,
	.end = card_end,
	.release = card_release,
};

static const struct kyso_driver *drv = &kyso_driver_piv;

/* The private-key operations of every key the bind found. */
static void use_keys(struct kyso_token *tok)
{
	uint8_t in[512], out[1024];
	size_t i, k, outlen;

	for (i = 0; i < tok->nkeys; i++) {
		const struct kyso_key *key = &tok->keys[i];

		k = (key->bits + 7) / 8;
		if (k == 0 || k > sizeof(in))
			continue;
		memset(in, 0x5A, k);
		in[0] = 0x00;
		in[1] = 0x01;
		outlen = sizeof(out);
		if (drv->sign(tok->card, key, in, k, out, &outlen) == CKR_OK &&
		    outlen != (key->type == CKK_EC ? 2 * k : k))
			abort();
		if (key->type == CKK_RSA) {
			outlen = sizeof(out);
			if (drv->decrypt(tok->card, key, in, k, out,
					 &outlen) == CKR_OK &&
			    outlen != k)
				abort();
		}
	}
}

static void administer(struct kyso_token *tok)
{
	static const uint8_t der[] = {0x30, 0x03, 0x02, 0x01, 0x01};
	struct kyso_keygen req;
	struct kyso_pubkey pub;
	uint32_t ref = 0;
	size_t i;
	int tries;

	if (drv->login(tok->card, CKU_SO, (const uint8_t *)MGMT_CRED,
		       strlen(MGMT_CRED), &tries) != CKR_OK)
		return;
	memset(&req, 0, sizeof(req));
	memset(&pub, 0, sizeof(pub));
	req.type = CKK_EC;
	req.bits = 256;
	req.ref = 0x9C;
	if (drv->generate(tok->card, tok, &req, &pub) == CKR_OK &&
	    (pub.type != CKK_EC || pub.pointlen != 65))
		abort();
	kyso_pubkey_clear(&pub);
	memset(&req, 0, sizeof(req));
	req.type = CKK_RSA;
	req.bits = 2048;
	if (drv->generate(tok->card, tok, &req, &pub) == CKR_OK &&
	    (pub.type != CKK_RSA || pub.nlen != 256))
		abort();
	kyso_pubkey_clear(&pub);
	(void)drv->write_cert(tok->card, tok, (const uint8_t *)"\x01", 1, der,
			      sizeof(der), &ref);
	for (i = 0; i < tok->nobjs; i++) {
		if (tok->objs[i]->cls == CKO_CERTIFICATE) {
			(void)drv->delete_object(tok->card, tok, tok->objs[i]);
			break;
		}
	}
}

/* Binds a card with the PIV driver and runs every operation on it. */
static void run(struct kyso_card *card)
{
	struct kyso_token *tok;
	int tries;
	CK_RV rv;

	inner_ops = card->ops;
	card->ops = &fuzz_card_ops;

	/* what kyso_token_bind does, with this one driver */
	tok = calloc(1, sizeof(*tok));
	if (tok == NULL) {
		kyso_card_free(card);
		return;
	}
	tok->user_tries = tok->user_max = tok->so_tries = tok->so_max = -1;
	tok->login = KYSO_NOBODY;
	if (kyso_card_begin(card) != CKR_OK)
		abort();
	if (!drv->match(card)) {
		kyso_card_end(card);
		drv->unbind(card);
		kyso_card_free(card);
		free(tok);
		return;
	}
	card->driver = drv;
	tok->drv = drv;
	tok->card = card;
	rv = drv->bind(card, tok);
	kyso_card_end(card);
	if (card->depth != 0)
		abort();
	if (rv != CKR_OK) {
		/* as kyso_token_bind: the card is the caller's again */
		tok->card = NULL;
		drv->unbind(card);
		kyso_token_free(tok);
		kyso_card_free(card);
		return;
	}
	if (tok->label[sizeof(tok->label) - 1] != '\0' ||
	    tok->serial[sizeof(tok->serial) - 1] != '\0')
		abort();

	(void)drv->pin_status(card, CKU_USER, &tries);
	(void)drv->login(card, CKU_USER, (const uint8_t *)"123456", 6, &tries);
	use_keys(tok);
	(void)drv->change_pin(card, CKU_USER, (const uint8_t *)"123456", 6,
			      (const uint8_t *)"654321", 6, &tries);
	(void)drv->logout(card);
	if (drv->login(card, CKU_SO, (const uint8_t *)"12345678", 8,
		       &tries) == CKR_OK)
		(void)drv->unblock(card, (const uint8_t *)"123456", 6, &tries);
	administer(tok);
	if (card->depth != 0)
		abort();
	kyso_token_free(tok); /* unbinds and frees the card */
}

#ifndef FUZZ_RECORD
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_resps r;
	struct kyso_card *card;

	if (size < 1)
		return 0;
	fuzz_split(data + 1, size - 1, &r);
	if (data[0] & 1)
		card = kyso_script_card_raw(atr_short, sizeof(atr_short), r.p,
					    r.len, r.n);
	else
		card = kyso_script_card_raw(atr_ext, sizeof(atr_ext), r.p,
					    r.len, r.n);
	if (card != NULL)
		run(card);
	return 0;
}
#else
/* usage: fuzz-piv-record OPTIONS-BYTE(0|1) OUT; the card in KYSO_READER */
int main(int argc, char **argv)
{
	const struct kyso_readers_ops *pcsc = &kyso_pcsc_readers;
	const char *reader = getenv("KYSO_READER");
	struct kyso_card *card = NULL;
	void *ctx = NULL;
	int opts;

	if (argc != 3 || reader == NULL) {
		fprintf(stderr, "usage: KYSO_READER=NAME %s 0|1 OUT\n", argv[0]);
		return 2;
	}
	opts = atoi(argv[1]);
	record = fopen(argv[2], "wb");
	if (record == NULL || pcsc->open(&ctx) != CKR_OK ||
	    pcsc->connect(ctx, reader, &card) != CKR_OK) {
		fprintf(stderr, "fuzz-piv-record: no card in '%s'\n", reader);
		return 1;
	}
	fputc(opts, record);
	if (opts & 1) {
		/* what a card without extended length says: chaining */
		memcpy(card->atr, atr_short, sizeof(atr_short));
		card->atrlen = sizeof(atr_short);
	}
	run(card);
	pcsc->close(ctx);
	return fclose(record) == 0 ? 0 : 1;
}
#endif
