/* Unit tests of the ePass2003 driver (drivers/epass2003.c). A test card
 * answers the mode query and the mutual authentication itself and opens
 * every wrapped command with the reference in sm-ref.h (OpenSSL, no kyso
 * code); the plain commands inside are then a script of expected command
 * -> answer pairs, as kyso_script_card plays them, and the answers go back
 * wrapped by the reference. Plain-mode tokens use kyso_script_card itself.
 * Keys, certificates and signatures are made here with OpenSSL. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "certs.h"
#include "drivers/espk.h"
#include "espk-bytes.h"
#include "hexs.h"
#include "iso7816/asn1.h"
#include "p15-hex.h"
#include "reader/reader.h"
#include "rig.h"
#include "sm-ref.h"
#include "token/token.h"
#include "util/buf.h"

extern const struct kyso_driver kyso_driver_epass2003;
#define DRV kyso_driver_epass2003

/* --- the test card ---------------------------------------------------------
 */

static const uint8_t atr_2012[] = {
    0x3B, 0x9F, 0x95, 0x81, 0x31, 0xFE, 0x9F, 0x00, 0x66, 0x46, 0x53, 0x05,
    0x01, 0x00, 0x11, 0x71, 0xDF, 0x00, 0x00, 0x03, 0x90, 0x00, 0x80};
static const uint8_t atr_piv[] = {0x3B, 0x85, 0x80, 0x01, 0x80,
				  0x73, 0xC0, 0x21, 0x80, 0x1B};

enum kind { K_DES, K_AES, K_FIPS, K_PLAIN };

/* GET DATA 01 86 answers: the FIPS one is a real token's (OpenSC #2843). */
static const char *mode_answer(enum kind k)
{
	switch (k) {
	case K_DES:
		return "800100 81021DD4 820100 83020000 840101 850A05002E6F4550"
		       "001A0028 860100 870100";
	case K_AES:
		return "800101 81021DD4 820100 83020000 840101 850A05002E6F4550"
		       "001A0028 860100 870100";
	case K_FIPS:
		return "800101 81021DD4 820100 83020000 840101 850A056A2E6F44EB"
		       "001A0003 860100 870101";
	default:
		return "800100 81021DD4 820100 83020000 840100 850A05002E6F4550"
		       "001A0028 860100 870100";
	}
}

struct emu {
	enum kind kind;
	struct ref_sm sm;
	int session;
	uint8_t expect[16]; /* what 84 82 03 00 must carry */
	/* a plain command, or CHALLENGE, VERIFY, TRIES, SETPIN */
	const struct kyso_script_step *steps;
	size_t n, next;
	int mismatch;
	unsigned apdus, auths, verifies;
	/* PIN: its key, tries left and maximum */
	char pin[2][65];
	int tries[2], max[2];
	uint8_t chal[8];
	int wrong_card_cryptogram;
	char last[2 * 4200];
};

static struct emu *emu_of(struct kyso_card *c)
{
	return c->priv;
}

/* The plain command as the script writes it: header, Lc and data, then
 * the Le bytes of the 97 object as they were. */
static void canon(const struct ref_cmd *c, char *out)
{
	size_t n = 0, i;

	n += (size_t)sprintf(out + n, "%02X%02X%02X%02X", c->cla, c->ins, c->p1,
			     c->p2);
	if (c->lc) {
		if (c->lc <= 255)
			n += (size_t)sprintf(out + n, "%02zX", c->lc);
		else
			n += (size_t)sprintf(out + n, "00%04zX", c->lc);
		for (i = 0; i < c->lc; i++)
			n += (size_t)sprintf(out + n, "%02X", c->data[i]);
	}
	for (i = 0; c->has_le && i < c->lelen; i++)
		n += (size_t)sprintf(out + n, "%02X", c->le[i]);
}

static size_t plain_sw(uint8_t *resp, unsigned sw)
{
	resp[0] = (uint8_t)(sw >> 8);
	resp[1] = (uint8_t)sw;
	return 2;
}

/* Answers the special steps; 0 for a step the script answers. */
static int smart(struct emu *e, const char *what, const struct ref_cmd *c,
		 uint8_t *data, size_t *len, unsigned *sw)
{
	uint8_t key[24], exp[8];
	int kid, slot;

	*len = 0;
	if (strcmp(what, "CHALLENGE") == 0) {
		ck_assert_msg(c->ins == 0x84 && c->lc == 0 && c->has_le &&
				  c->lelen == 1 && c->le[0] == 8,
			      "GET CHALLENGE of 8 expected");
		RAND_bytes(e->chal, 8);
		memcpy(data, e->chal, 8);
		*len = 8;
		*sw = 0x9000;
		return 1;
	}
	if (sscanf(what, "VERIFY %d", &kid) == 1) {
		slot = kid - 1;
		ck_assert_msg(c->ins == 0x82 && c->p1 == 0x01 &&
				  c->p2 == (0x80 | kid) && c->lc == 8 &&
				  !c->has_le,
			      "VERIFY of kid %d expected", kid);
		e->verifies++;
		if (e->tries[slot] == 0) {
			*sw = 0x6983;
			return 1;
		}
		if (e->pin[slot][0] == '#')
			unhex(e->pin[slot] + 1, key, sizeof(key));
		else
			ref_pin_key(e->pin[slot], key);
		ref_crypt(REF_DES, key, 24, 0, NULL, 1, e->chal, 8, exp);
		if (memcmp(exp, c->data, 8) == 0) {
			e->tries[slot] = e->max[slot];
			*sw = 0x9000;
		} else {
			e->tries[slot]--;
			*sw = 0x63C0 | (unsigned)e->tries[slot];
		}
		return 1;
	}
	if (sscanf(what, "TRIES %d", &kid) == 1) {
		slot = kid - 1;
		ck_assert_msg(c->ins == 0x82 && c->p1 == 0x01 &&
				  c->p2 == (0x80 | kid) && c->lc == 0 &&
				  !c->has_le,
			      "PIN status of kid %d expected", kid);
		*sw = 0x63C0 | (unsigned)e->tries[slot];
		return 1;
	}
	if (sscanf(what, "SETPIN %d", &kid) == 1) {
		slot = kid - 1;
		ck_assert_msg(c->cla == 0x80 && c->ins == 0xE5 &&
				  c->p1 == 0x04 && c->p2 == kid && c->lc == 25,
			      "change of key %d expected", kid);
		/* the new key is kept as given; VERIFY checks it below */
		e->max[slot] = c->data[0] & 0x0F;
		ck_assert_uint_eq(c->data[0] >> 4, c->data[0] & 0x0F);
		e->tries[slot] = e->max[slot];
		snprintf(e->pin[slot], sizeof(e->pin[slot]), "#%s",
			 hx(c->data + 1, 24));
		*sw = 0x9000;
		return 1;
	}
	return 0;
}

/* Fuzz seeds (tests/fuzz/fuzz-epass2003): every answer, as a 2-byte
 * length and the bytes, when EPASS_FUZZ_SEEDS names a directory. */
static FILE *seed_out;

static CK_RV emu_answer(struct kyso_card *card, const uint8_t *cmd, size_t len,
			uint8_t *resp, size_t *resplen);

static CK_RV emu_transmit(struct kyso_card *card, const uint8_t *cmd,
			  size_t len, uint8_t *resp, size_t *resplen)
{
	CK_RV rv = emu_answer(card, cmd, len, resp, resplen);

	if (seed_out != NULL && rv == CKR_OK) {
		fputc((int)(*resplen >> 8), seed_out);
		fputc((int)(*resplen & 0xFF), seed_out);
		fwrite(resp, 1, *resplen, seed_out);
	}
	return rv;
}

static CK_RV emu_answer(struct kyso_card *card, const uint8_t *cmd, size_t len,
			uint8_t *resp, size_t *resplen)
{
	struct emu *e = emu_of(card);
	struct ref_cmd c;
	const struct kyso_script_step *st;
	uint8_t data[4200], out[4300];
	size_t dlen = 0, n;
	unsigned sw = 0x9000, err;
	const char *r;

	e->apdus++;
	/* the mode query, always plain */
	if (len == 5 && memcmp(cmd, "\x00\xCA\x01\x86\x00", 5) == 0) {
		n = unhex(mode_answer(e->kind), resp, 512);
		*resplen = n + plain_sw(resp + n, 0x9000);
		return CKR_OK;
	}
	if (e->kind != K_PLAIN && len == 14 && cmd[0] == 0x80 &&
	    cmd[1] == 0x50) {
		uint8_t cr[8];

		ck_assert_int_eq(cmd[4], 8);
		ck_assert_int_eq(cmd[13], e->kind == K_FIPS ? 29 : 28);
		RAND_bytes(cr, 8);
		e->sm.mode = e->kind == K_DES	? REF_DES
			     : e->kind == K_AES ? REF_AES
						: REF_FIPS;
		memcpy(e->sm.kenc, ref_static_key, 16); /* replaced below */
		n = ref_mutual1(&e->sm, cmd + 5, cr, resp, e->expect);
		if (e->wrong_card_cryptogram)
			resp[n - 1] ^= 0x01;
		*resplen = n + plain_sw(resp + n, 0x9000);
		e->session = 0;
		e->auths++;
		return CKR_OK;
	}
	if (e->kind != K_PLAIN && len == 21 && cmd[0] == 0x84 &&
	    cmd[1] == 0x82) {
		e->session = memcmp(cmd + 5, e->expect, 16) == 0;
		*resplen = plain_sw(resp, e->session ? 0x9000 : 0x6985);
		return CKR_OK;
	}
	if (e->kind == K_PLAIN) {
		/* raw commands: the script is in wire form */
		memset(&c, 0, sizeof(c));
		if (e->next >= e->n) {
			e->mismatch = 1;
			return CKR_DEVICE_ERROR;
		}
		st = &e->steps[e->next];
		if (len >= 4) {
			c.cla = cmd[0];
			c.ins = cmd[1];
			c.p1 = cmd[2];
			c.p2 = cmd[3];
			if (len > 5 && cmd[4] == len - 5) {
				c.lc = cmd[4];
				memcpy(c.data, cmd + 5, c.lc);
			} else if (len > 5 && cmd[4] == len - 6) {
				c.lc = cmd[4];
				memcpy(c.data, cmd + 5, c.lc);
				c.has_le = 1;
			} else if (len == 5) {
				c.has_le = 1;
				c.lelen = 1;
				c.le[0] = cmd[4];
			}
		}
		if (smart(e, st->cmd, &c, data, &dlen, &sw)) {
			e->next++;
			memcpy(resp, data, dlen);
			*resplen = dlen + plain_sw(resp + dlen, sw);
			return CKR_OK;
		}
		snprintf(e->last, sizeof(e->last), "%s", hx(cmd, len));
		if (strcmp(st->cmd, "*") != 0 &&
		    strcmp(st->cmd, e->last) != 0) {
			e->mismatch = 1;
			fprintf(stderr, "step %zu: got %s, want %s\n", e->next,
				e->last, st->cmd);
			return CKR_DEVICE_ERROR;
		}
		e->next++;
		*resplen = unhex(st->resp, resp, KYSO_MAX_RAPDU);
		return CKR_OK;
	}
	/* secure messaging */
	if (!e->session) {
		*resplen = plain_sw(resp, 0x6988);
		return CKR_OK;
	}
	err = ref_unwrap(&e->sm, cmd, len, &c);
	if (err) {
		e->session = 0;
		*resplen = plain_sw(resp, err);
		return CKR_OK;
	}
	canon(&c, e->last);
	if (e->next >= e->n) {
		e->mismatch = 1;
		fprintf(stderr, "after the last step: %s\n", e->last);
		return CKR_DEVICE_ERROR;
	}
	st = &e->steps[e->next];
	if (smart(e, st->cmd, &c, data, &dlen, &sw)) {
		e->next++;
		*resplen = ref_wrap_resp(&e->sm, data, dlen, sw, resp);
		return CKR_OK;
	}
	if (strcmp(st->cmd, "*") != 0 && strcmp(st->cmd, e->last) != 0) {
		e->mismatch = 1;
		fprintf(stderr, "step %zu: got %s, want %s\n", e->next, e->last,
			st->cmd);
		return CKR_DEVICE_ERROR;
	}
	e->next++;
	r = st->resp;
	if (strncmp(r, "PLAIN:", 6) == 0) {
		/* a bare status word; the card drops the session on 6988 */
		*resplen = unhex(r + 6, resp, 2);
		if (resp[0] == 0x69 && resp[1] == 0x88)
			e->session = 0;
		return CKR_OK;
	}
	if (strncmp(r, "RAW:", 4) == 0) {
		*resplen = unhex(r + 4, resp, KYSO_MAX_RAPDU);
		return CKR_OK;
	}
	n = unhex(strncmp(r, "BADMAC:", 7) == 0 ? r + 7 : r, out, sizeof(out));
	ck_assert_uint_ge(n, 2);
	sw = (unsigned)out[n - 2] << 8 | out[n - 1];
	*resplen = ref_wrap_resp(&e->sm, out, n - 2, sw, resp);
	if (strncmp(r, "BADMAC:", 7) == 0)
		resp[*resplen - 3] ^= 0x01; /* last MAC byte */
	return CKR_OK;
}

static void emu_release(struct kyso_card *card)
{
	free(card->priv);
	card->priv = NULL;
}

static const struct kyso_card_ops emu_ops = {
    .transmit = emu_transmit,
    .release = emu_release,
};

/* --- scripts -------------------------------------------------------------- */

struct rig {
	enum kind kind;
	struct kyso_script_step *v;
	size_t n;
	struct kyso_card *card;
	struct kyso_token *tok;
};

static void step(struct rig *r, const char *cmd, const char *resp)
{
	script_add(&r->v, &r->n, cmd, resp);
}

/* Le of a plain command as the script sees it: the 97 object's bytes
 * under secure messaging, the wire byte(s) otherwise. */
static const char *le(const struct rig *r, size_t ne)
{
	if (r->kind == K_PLAIN)
		return ne == 256 ? "00" : fmt("%02zX", ne & 0xFF);
	if (ne <= 0x7F || ne == 256)
		return fmt("%02zX", ne & 0xFF);
	return fmt("%04zX", ne);
}

static const char *fci(unsigned fid, size_t size, int df)
{
	return tlv(0x6F, cat(df ? "82023800" : fmt("8002%04zX820101", size),
			     fmt("8302%04X", fid), NULL));
}

static void sel(struct rig *r, unsigned fid, const char *fci_hex,
		const char *sw)
{
	step(r,
	     fci_hex ? cat(fmt("00A4000002%04X", fid), le(r, 256), NULL)
		     : fmt("00A4000002%04X", fid),
	     fci_hex ? cat(fci_hex, sw, NULL) : sw);
}

/* The READ BINARY steps of a file of `size` bytes holding content (the
 * rest padding), as the driver reads it: D8-byte pieces; with der, it
 * stops once the elements read are whole and padding follows (der 2: one
 * element). */
static void reads(struct rig *r, const uint8_t *content, size_t clen,
		  size_t size, int der)
{
	uint8_t *file = calloc(1, size + 1);
	size_t off = 0, chunk, used;
	int x;

	ck_assert_uint_le(clen, size);
	memcpy(file, content, clen);
	while (off < size) {
		chunk = size - off < 0xD8 ? size - off : 0xD8;
		step(r, cat(fmt("00B0%04zX", off), le(r, chunk), NULL),
		     cat(hx(file + off, chunk), "9000", NULL));
		off += chunk;
		if (der) {
			x = kyso_asn1_extent(file, off, off >= size, &used);
			if (x != 0 || (der == 2 && used > 0))
				break;
		}
	}
	free(file);
}

static void rig_start(struct rig *r, enum kind kind)
{
	memset(r, 0, sizeof(*r));
	r->kind = kind;
}

static struct emu *rig_card(struct rig *r, const uint8_t *atr, size_t atrlen)
{
	struct emu *e = calloc(1, sizeof(*e));

	ck_assert_ptr_nonnull(e);
	e->kind = r->kind;
	e->steps = r->v;
	e->n = r->n;
	snprintf(e->pin[0], sizeof(e->pin[0]), "12345678");
	snprintf(e->pin[1], sizeof(e->pin[1]), "87654321");
	e->tries[0] = e->max[0] = 6;
	e->tries[1] = e->max[1] = 6;
	r->card = calloc(1, sizeof(*r->card));
	ck_assert_ptr_nonnull(r->card);
	r->card->ops = &emu_ops;
	r->card->priv = e;
	memcpy(r->card->atr, atr, atrlen);
	r->card->atrlen = atrlen;
	r->tok = new_token();
	return e;
}

static void rig_done(struct rig *r)
{
	struct emu *e = emu_of(r->card);

	ck_assert_int_eq(e->mismatch, 0);
	ck_assert_uint_eq(e->next, e->n);
	DRV.unbind(r->card);
	ck_assert_ptr_null(r->card->drvdata);
	r->tok->drv = NULL;
	r->tok->card = NULL;
	kyso_token_free(r->tok);
	kyso_card_free(r->card);
	free(r->v);
}

/* --- fixtures: keys, certificates, the two layouts --------------------------
 */

static EVP_PKEY *rsa_key, *ec_key;
static uint8_t *rsa_cert, *ec_cert;
static size_t rsa_certlen, ec_certlen;

static void setup(void)
{
	if (rsa_key == NULL) {
		rsa_key = EVP_RSA_gen(2048);
		ec_key = EVP_EC_gen("P-256");
		ck_assert_ptr_nonnull(rsa_key);
		ck_assert_ptr_nonnull(ec_key);
		rsa_cert =
		    cert_der(rsa_key, NULL, "Nguyen Van A", &rsa_certlen);
		ec_cert = cert_der(ec_key, NULL, "Tran Thi B", &ec_certlen);
	}
}

/* The raw RSA private operation the token performs. */
static char *rsa_raw(const uint8_t *in, size_t len)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(rsa_key, NULL);
	uint8_t out[512];
	size_t outlen = sizeof(out);

	ck_assert_int_eq(EVP_PKEY_decrypt_init(ctx), 1);
	ck_assert_int_gt(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING), 0);
	ck_assert_int_eq(EVP_PKEY_decrypt(ctx, out, &outlen, in, len), 1);
	EVP_PKEY_CTX_free(ctx);
	return hx(out, outlen);
}

/* An ECDSA signature of a 32-byte input as r || s. */
static char *ec_raw(const uint8_t h[32])
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(ec_key, NULL);
	uint8_t der[80], rs[64];
	size_t derlen = sizeof(der);
	const uint8_t *p = der;
	ECDSA_SIG *sig;
	const BIGNUM *r, *s;

	ck_assert_int_eq(EVP_PKEY_sign_init(ctx), 1);
	ck_assert_int_eq(EVP_PKEY_sign(ctx, der, &derlen, h, 32), 1);
	sig = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	ECDSA_SIG_get0(sig, &r, &s);
	BN_bn2binpad(r, rs, 32);
	BN_bn2binpad(s, rs + 32, 32);
	ECDSA_SIG_free(sig);
	EVP_PKEY_CTX_free(ctx);
	return hx(rs, 64);
}

#define P15_PATH(f) "3F005015" f

static const char *p15_tokeninfo(void)
{
	return tlv(0x30, cat("020100", tlv(0x04, "2E6F4550001A0028"),
			     tlv(0x0C, utf8("EnterSafe")),
			     tlv(0x80, utf8("Chu ky so")), "03020420", NULL));
}

static const char *p15_odf(void)
{
	return cat(tlv(0xA8, p15_path(P15_PATH("4401"))),
		   tlv(0xA0, p15_path(P15_PATH("4402"))),
		   tlv(0xA1, p15_path(P15_PATH("4403"))),
		   tlv(0xA4, p15_path(P15_PATH("4404"))), NULL);
}

static const char *p15_aodf(void)
{
	return cat(p15_pin("User PIN", 1, P15_PIN_FLAGS, "3F005015"),
		   p15_pin("User PUK", 2, P15_PIN_FLAGS_SO, NULL), NULL);
}

static const char *p15_prkdf(void)
{
	/* RSA key index 0 (file 2900) and EC key index 1 (2901), usage sign,
	 * non-repudiation; the RSA one may also decrypt */
	return cat(p15_prkey(0x30, "Key RSA", "45", P15_USAGE_DECRYPT,
			     P15_PATH("2900"), 0, 2048),
		   p15_prkey(0xA0, "Key EC", "46", P15_USAGE_SIGN,
			     P15_PATH("2901"), 1, 256),
		   NULL);
}

static const char *p15_cdf(void)
{
	return cat(p15_cert("Cert RSA", "45", P15_PATH("3100")),
		   p15_cert("Cert EC", "46", P15_PATH("3101")), NULL);
}

static void file_steps(struct rig *r, unsigned fid, const char *content,
		       size_t size, int der)
{
	uint8_t buf[8192];
	size_t n = unhex(content, buf, sizeof(buf));

	sel(r, fid, fci(fid, size, 0), "9000");
	reads(r, buf, n, size, der);
}

/* Everything bind asks of a PKCS#15 token, after the mode query and the
 * authentication. */
static void p15_bind_steps(struct rig *r, int tries)
{
	sel(r, 0x3F00, NULL, "9000");
	sel(r, 0x2003, fci(0x2003, 0, 1), "6A82");
	sel(r, 0x5015, NULL, "9000");
	file_steps(r, 0x5032, p15_tokeninfo(), 128, 1);
	file_steps(r, 0x5031, p15_odf(), 512, 1);
	file_steps(r, 0x4401, p15_aodf(), 256, 1);
	file_steps(r, 0x4402, p15_prkdf(), 1024, 1);
	file_steps(r, 0x4404, p15_cdf(), 2048, 1);
	/* certificates: logical 3100 and 3101 are 3100 and 3120 on the card */
	sel(r, 0x3100, fci(0x3100, 2048, 0), "9000");
	reads(r, rsa_cert, rsa_certlen, 2048, 2);
	sel(r, 0x3120, fci(0x3120, 1024, 0), "9000");
	reads(r, ec_cert, ec_certlen, 1024, 2);
	step(r, "CHALLENGE", "");
	step(r, "TRIES 1", "");
	(void)tries;
}

struct espk_file {
	unsigned fid;
	const char *name;
	uint8_t data[4096];
	size_t len;
};

/* The ESPK fixture: tokeninfo, cardid, containermap, an RSA certificate
 * without CKA_ID, its public key and a private key file that holds
 * neither modulus nor handle (both come from pubk and the map). */
static size_t espk_files(struct espk_file *f, int with_handle)
{
	uint8_t mod[512], one = 1, h[4];
	BIGNUM *n = NULL;
	size_t k = 0, ml;

	EVP_PKEY_get_bn_param(rsa_key, "n", &n);
	ml = (size_t)BN_bn2bin(n, mod);
	BN_free(n);

	f[k].fid = 0x0101;
	f[k].name = "tokeninfo";
	memset(f[k].data, ' ', 64);
	memcpy(f[k].data, "VIETTEL-CA TOKEN", 16);
	f[k].len = 64;
	k++;
	f[k].fid = 0x0102;
	f[k].name = "cardid";
	memcpy(f[k].data, "\x11\x22\x33\x44\x55\x66\x77\x88\x99\xAA", 10);
	f[k].len = 10;
	k++;
	f[k].fid = 0x0103;
	f[k].name = "containermap";
	memset(f[k].data, 0, 0x20 + 0x18);
	put32le(f[k].data + 0x20, 0xA060);
	put32le(f[k].data + 0x24, 0x8060);
	f[k].len = 0x20 + 0x18;
	k++;
	f[k].fid = 0x0104;
	f[k].name = "cert0001";
	f[k].len = espk_put_attr(f[k].data, 0, CKA_LABEL, "Chung thu", 9);
	f[k].len = espk_put_attr(f[k].data, f[k].len, CKA_VALUE, rsa_cert,
				 (uint32_t)rsa_certlen);
	k++;
	f[k].fid = 0x0105;
	f[k].name = "pubk0001";
	put32le(h, 0x8060);
	f[k].len = espk_put_attr(f[k].data, 0, CKA_MODULUS, mod, (uint32_t)ml);
	f[k].len = espk_put_attr(f[k].data, f[k].len, CKA_PUBLIC_EXPONENT,
				 "\x01\x00\x01", 3);
	f[k].len = espk_put_attr(f[k].data, f[k].len,
				 (uint32_t)KYSO_ESPK_CKA_KEY_HANDLE, h, 4);
	k++;
	f[k].fid = 0x0106;
	f[k].name = "prvk0001";
	f[k].len = espk_put_attr(f[k].data, 0, CKA_LABEL, "Khoa ky", 7);
	f[k].len = espk_put_attr(f[k].data, f[k].len, CKA_SIGN, &one, 1);
	if (with_handle) {
		put32le(h, 0xA060);
		f[k].len =
		    espk_put_attr(f[k].data, f[k].len,
				  (uint32_t)KYSO_ESPK_CKA_KEY_HANDLE, h, 4);
		f[k].len =
		    espk_put_attr(f[k].data, f[k].len, CKA_ID, "\x42", 1);
	}
	k++;
	return k;
}

static void espk_index(const struct espk_file *f, size_t n, uint8_t *idx,
		       size_t *len)
{
	size_t i, k = KYSO_ESPK_RECLEN;

	/* a directory label first */
	espk_put_record(idx, 0xFFFF, "mscp", "", 0, 0);
	for (i = 0; i < n; i++, k += KYSO_ESPK_RECLEN)
		espk_put_record(idx + k, f[i].fid, "mscp", f[i].name,
				(unsigned)f[i].len, 4096);
	*len = k;
}

static void espk_bind_steps(struct rig *r, int with_handle)
{
	struct espk_file f[8];
	uint8_t idx[512];
	size_t n = espk_files(f, with_handle), idxlen, i;

	espk_index(f, n, idx, &idxlen);
	sel(r, 0x3F00, NULL, "9000");
	sel(r, 0x2003,
	    tlv(0x6F, cat("82023800", "83022003",
			  tlv(0x84, cat(utf8("ENTERSAFE-ESPK"), "0000", NULL)),
			  NULL)),
	    "9000");
	sel(r, 0x6F01, fci(0x6F01, 1024, 0), "9000");
	/* the index is read whole (FCI size, at most 64 records) */
	reads(r, idx, idxlen, 1024, 0);
	/* tokeninfo, cardid, containermap, then the objects in index order */
	for (i = 0; i < n; i++) {
		sel(r, f[i].fid, fci(f[i].fid, 4096, 0), "9000");
		reads(r, f[i].data, f[i].len,
		      f[i].fid == 0x0101 ? 64 : f[i].len, 0);
	}
	step(r, "CHALLENGE", "");
	step(r, "TRIES 1", "");
}

/* --- the tests -------------------------------------------------------------
 */

static const char *kind_name(enum kind k)
{
	static const char *n[] = {"3DES", "AES", "FIPS", "plain"};
	return n[k];
}

/* Match and bind; the emulator's APDU count is returned. */
static unsigned bind_ok(struct rig *r)
{
	struct emu *e = emu_of(r->card);

	ck_assert_int_eq(DRV.match(r->card), 1);
	ck_assert_int_eq(DRV.bind(r->card, r->tok), CKR_OK);
	r->tok->drv = &DRV;
	r->tok->card = r->card;
	ck_assert_int_eq(e->mismatch, 0);
	return e->apdus;
}

START_TEST(match_ignores_other_atrs_without_sending_anything)
{
	struct rig r;
	struct emu *e;

	rig_start(&r, K_DES);
	e = rig_card(&r, atr_piv, sizeof(atr_piv));
	ck_assert_int_eq(DRV.match(r.card), 0);
	ck_assert_uint_eq(e->apdus, 0);
	rig_done(&r);
}
END_TEST

START_TEST(match_asks_the_mode_once_for_every_variant)
{
	struct rig r;
	struct emu *e;

	rig_start(&r, (enum kind)_i);
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	ck_assert_int_eq(DRV.match(r.card), 1);
	ck_assert_uint_eq(e->apdus, 1);
	rig_done(&r);
}
END_TEST

START_TEST(match_declines_a_token_that_refuses_the_mode_query)
{
	static const struct kyso_script_step steps[] = {{"00CA018600", "6D00"}};
	static const struct kyso_script_step junk[] = {
	    {"00CA018600", "80019000"}};
	struct kyso_card *c;

	c = kyso_script_card(atr_2012, sizeof(atr_2012), steps, 1);
	ck_assert_int_eq(DRV.match(c), 0);
	ck_assert_ptr_null(c->drvdata);
	ck_assert_uint_eq(kyso_script_left(c), 0);
	kyso_card_free(c);
	/* a TLV running past the answer */
	c = kyso_script_card(atr_2012, sizeof(atr_2012), junk, 1);
	ck_assert_int_eq(DRV.match(c), 0);
	kyso_card_free(c);
}
END_TEST

START_TEST(bind_reads_keys_and_certificates_of_a_pkcs15_token)
{
	enum kind k = (enum kind)_i;
	struct rig r;
	struct kyso_token *t;
	unsigned n;

	rig_start(&r, k);
	p15_bind_steps(&r, 6);
	rig_card(&r, atr_2012, sizeof(atr_2012));
	n = bind_ok(&r);
	t = r.tok;
	ck_assert_uint_eq(t->nkeys, 2);
	ck_assert_uint_eq(t->keys[0].type, CKK_RSA);
	ck_assert_uint_eq(t->keys[0].bits, 2048);
	ck_assert_uint_eq(t->keys[0].ref, 0x2900);
	ck_assert_int_eq(t->keys[0].can_sign, 1);
	ck_assert_int_eq(t->keys[0].can_decrypt, 1);
	ck_assert_str_eq(t->keys[0].label, "Key RSA");
	ck_assert_uint_eq(t->keys[1].type, CKK_EC);
	ck_assert_uint_eq(t->keys[1].bits, 256);
	ck_assert_uint_eq(t->keys[1].ref, 0x2920);
	ck_assert_int_eq(t->keys[1].can_decrypt, 0);
	ck_assert(kyso_pubkey_present(&t->keys[0].pub));
	ck_assert(kyso_pubkey_present(&t->keys[1].pub));
	ck_assert_str_eq(t->label, "Chu ky so");
	ck_assert_str_eq(t->serial, "2e6f4550001a0028");
	ck_assert_str_eq(t->model, "ePass2003");
	ck_assert_int_eq(t->user_tries, 6);
	ck_assert_int_eq(t->can_generate, 1);
	ck_assert_int_eq(t->so_pin, 1);
	/* mode query + authentication + the steps, nothing else */
	ck_assert_uint_eq(n, 1 + (k == K_PLAIN ? 0 : 2) + r.n);
	fprintf(stderr, "pkcs15 bind, %s: %u APDUs\n", kind_name(k), n);
	rig_done(&r);
}
END_TEST

START_TEST(bind_reads_an_entersafe_espk_token)
{
	enum kind k = (enum kind)_i;
	struct rig r;
	struct kyso_token *t;
	size_t i, certs = 0;
	unsigned n;

	rig_start(&r, k);
	espk_bind_steps(&r, 0);
	rig_card(&r, atr_2012, sizeof(atr_2012));
	n = bind_ok(&r);
	t = r.tok;
	ck_assert_uint_eq(t->nkeys, 1);
	/* handle from the public key's pair in the container map */
	ck_assert_uint_eq(t->keys[0].ref, 0xA060);
	ck_assert_uint_eq(t->keys[0].bits, 2048);
	ck_assert_str_eq(t->keys[0].label, "Khoa ky");
	ck_assert_int_eq(t->keys[0].can_sign, 1);
	/* id-less key and certificate share a synthetic id */
	ck_assert_uint_eq(t->keys[0].idlen, 2);
	ck_assert_uint_eq(t->keys[0].id[0], 0xF0);
	ck_assert(kyso_pubkey_present(&t->keys[0].pub));
	for (i = 0; i < t->nobjs; i++)
		if (t->objs[i]->cls == CKO_CERTIFICATE) {
			const struct kyso_attr *id =
			    kyso_object_attr(t->objs[i], CKA_ID);

			certs++;
			ck_assert_uint_eq(id->len, 2);
			ck_assert_int_eq(memcmp(id->val, t->keys[0].id, 2), 0);
		}
	ck_assert_uint_eq(certs, 1);
	ck_assert_str_eq(t->label, "VIETTEL-CA TOKEN");
	ck_assert_str_eq(t->serial, "33445566778899aa");
	ck_assert_int_eq(t->can_generate, 0);
	ck_assert_int_eq(t->can_write, 0);
	ck_assert_int_eq(t->so_pin, 0);
	ck_assert_uint_eq(n, 1 + (k == K_PLAIN ? 0 : 2) + r.n);
	fprintf(stderr, "espk bind, %s: %u APDUs\n", kind_name(k), n);
	rig_done(&r);
}
END_TEST

START_TEST(an_espk_key_with_its_own_handle_and_id_keeps_them)
{
	struct rig r;

	rig_start(&r, K_AES);
	espk_bind_steps(&r, 1);
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_uint_eq(r.tok->nkeys, 1);
	ck_assert_uint_eq(r.tok->keys[0].ref, 0xA060);
	ck_assert_uint_eq(r.tok->keys[0].idlen, 1);
	ck_assert_uint_eq(r.tok->keys[0].id[0], 0x42);
	rig_done(&r);
}
END_TEST

START_TEST(a_wrong_card_cryptogram_means_an_untrusted_token)
{
	struct rig r;
	struct emu *e;

	rig_start(&r, K_DES);
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	e->wrong_card_cryptogram = 1;
	ck_assert_int_eq(DRV.match(r.card), 1);
	ck_assert_int_eq(DRV.bind(r.card, r.tok), CKR_DEVICE_ERROR);
	ck_assert_ptr_null(r.card->drvdata);
	/* the mode query and the first half of the authentication only */
	ck_assert_uint_eq(e->apdus, 2);
	rig_done(&r);
}
END_TEST

START_TEST(malformed_directory_files_lose_their_objects_not_the_token)
{
	struct rig r;
	uint8_t junk[40];

	memset(junk, 0x30, sizeof(junk)); /* 30 30 30 ...: runs past */
	rig_start(&r, K_DES);
	sel(&r, 0x3F00, NULL, "9000");
	sel(&r, 0x2003, NULL, "6A82");
	r.v[r.n - 1].cmd = cat(fmt("00A4000002%04X", 0x2003), "00", NULL);
	sel(&r, 0x5015, NULL, "9000");
	file_steps(&r, 0x5032, "3003020100", 128, 1); /* TokenInfo: short */
	file_steps(&r, 0x5031, p15_odf(), 512, 1);
	file_steps(&r, 0x4401, p15_aodf(), 256, 1);
	sel(&r, 0x4402, fci(0x4402, 40, 0), "9000"); /* PrKDF: junk */
	reads(&r, junk, sizeof(junk), 40, 1);
	file_steps(&r, 0x4404, p15_cdf(), 2048, 1);
	sel(&r, 0x3100, fci(0x3100, 2048, 0), "9000");
	reads(&r, rsa_cert, rsa_certlen, 2048, 2);
	sel(&r, 0x3120, fci(0x3120, 1024, 0), "6A82"); /* a missing file */
	/* no key without a certificate: the PuKDF is not read */
	step(&r, "CHALLENGE", "");
	step(&r, "TRIES 1", "");
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_uint_eq(r.tok->nkeys, 0);
	ck_assert_uint_eq(r.tok->nobjs, 2); /* certificate, public key */
	ck_assert_str_eq(r.tok->label, "ePass2003");
	rig_done(&r);
}
END_TEST

START_TEST(ef_dir_names_the_application_when_5015_is_missing)
{
	struct rig r;
	struct kyso_token *t;

	rig_start(&r, K_AES);
	sel(&r, 0x3F00, NULL, "9000");
	/* a DF 2003 of another name is not the vendor layout */
	sel(&r, 0x2003,
	    tlv(0x6F,
		cat("82023800",
		    tlv(0x84, cat(utf8("ENTERSAFE-ESPKX"), "00", NULL)), NULL)),
	    "9000");
	sel(&r, 0x5015, NULL, "6A82");
	sel(&r, 0x2F00, NULL, "9000");
	step(&r, cat("00B2010400", NULL),
	     cat(tlv(0x61, cat(tlv(0x4F, "A0000000039999"),
			       tlv(0x51, "3F004F01"), NULL)),
		 "9000", NULL));
	step(&r, "00B2020400",
	     cat(tlv(0x61, cat(tlv(0x4F, "A000000063504B43532D3135"),
			       tlv(0x50, utf8("PKCS#15")),
			       tlv(0x51, "3F004F00"), NULL)),
		 "9000", NULL));
	/* the application's files, from the MF down */
	sel(&r, 0x3F00, NULL, "9000");
	sel(&r, 0x4F00, NULL, "9000");
	sel(&r, 0x5032, fci(0x5032, 128, 0), "9000");
	{
		uint8_t ti[256];
		size_t n = unhex(p15_tokeninfo(), ti, sizeof(ti));

		reads(&r, ti, n, 128, 1);
	}
	sel(&r, 0x5031, fci(0x5031, 64, 0), "9000");
	/* an ODF with nothing kyso reads: no keys, no certificates */
	step(&r, cat("00B00000", le(&r, 64), NULL),
	     cat(tlv(0xA7, p15_path("3F004F004405")),
		 hx((uint8_t[64]){0}, 64 - 14), "9000", NULL));
	step(&r, "CHALLENGE", "");
	step(&r, "TRIES 1", "");
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	t = r.tok;
	ck_assert_str_eq(t->label, "Chu ky so");
	ck_assert_uint_eq(t->nkeys, 0);
	ck_assert_int_eq(t->can_generate, 0);
	ck_assert_int_eq(t->can_write, 0);
	rig_done(&r);
}
END_TEST

START_TEST(garbage_answers_during_bind_fail_it_cleanly)
{
	struct rig r;
	struct emu *e;

	rig_start(&r, K_AES);
	sel(&r, 0x3F00, NULL, "9000");
	/* an answer with a MAC that does not verify */
	step(&r, cat("00A4000002200300", NULL), "BADMAC:9000");
	rig_card(&r, atr_2012, sizeof(atr_2012));
	e = emu_of(r.card);
	ck_assert_int_eq(DRV.match(r.card), 1);
	ck_assert_int_eq(DRV.bind(r.card, r.tok), CKR_DEVICE_ERROR);
	ck_assert_ptr_null(r.card->drvdata);
	ck_assert_uint_eq(e->next, e->n);
	rig_done(&r);
}
END_TEST

/* A bound PKCS#15 token in a rig (SM kinds and plain). */
static void p15_bound(struct rig *r, enum kind k)
{
	rig_start(r, k);
	p15_bind_steps(r, 6);
}

static void espk_bound(struct rig *r, enum kind k)
{
	rig_start(r, k);
	espk_bind_steps(r, 1);
}

static const char *mse(struct rig *r, int ec, unsigned ref)
{
	(void)r;
	return fmt("002241%s078001%s8102%04X", ec ? "B6" : "B8",
		   ec ? "92" : "84", ref);
}

static const char *pso(struct rig *r, int ec, const uint8_t *in, size_t len)
{
	return cat(ec ? "002A9E9A" : "002A8086",
		   len > 255 ? fmt("00%04zX", len) : fmt("%02zX", len),
		   hx(in, len), r->kind == K_PLAIN && len > 255 ? "0100" : "00",
		   NULL);
}

START_TEST(rsa_sign_names_the_key_file_and_returns_the_card_result)
{
	enum kind k = (enum kind)_i;
	struct rig r;
	uint8_t block[256], out[256];
	size_t outlen = sizeof(out);
	unsigned before;
	struct emu *e;

	RAND_bytes(block, sizeof(block));
	block[0] = 0x00;
	block[1] = 0x01;
	p15_bound(&r, k);
	step(&r, mse(&r, 0, 0x2900), "9000");
	step(&r, pso(&r, 0, block, 256),
	     cat(rsa_raw(block, 256), "9000", NULL));
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	before = e->apdus;
	ck_assert_int_eq(
	    DRV.sign(r.card, &r.tok->keys[0], block, 256, out, &outlen),
	    CKR_OK);
	ck_assert_uint_eq(outlen, 256);
	ck_assert_str_eq(hx(out, 256), rsa_raw(block, 256));
	ck_assert_uint_eq(e->apdus - before, 2);
	rig_done(&r);
}
END_TEST

START_TEST(ec_sign_sends_the_fitted_hash_and_returns_r_and_s)
{
	enum kind k = (enum kind)_i;
	struct rig r;
	uint8_t h[32], out[64];
	size_t outlen = sizeof(out);
	const char *rs;

	RAND_bytes(h, sizeof(h));
	rs = ec_raw(h);
	p15_bound(&r, k);
	step(&r, mse(&r, 1, 0x2920), "9000");
	step(&r, pso(&r, 1, h, 32), cat(rs, "9000", NULL));
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_int_eq(DRV.sign(r.card, &r.tok->keys[1], h, 32, out, &outlen),
			 CKR_OK);
	ck_assert_uint_eq(outlen, 64);
	ck_assert_str_eq(hx(out, 64), rs);
	rig_done(&r);
}
END_TEST

START_TEST(espk_sign_names_the_vendor_key_handle)
{
	struct rig r;
	uint8_t block[256], out[256];
	size_t outlen = sizeof(out);

	RAND_bytes(block, sizeof(block));
	block[0] = 0;
	espk_bound(&r, K_DES);
	step(&r, mse(&r, 0, 0xA060), "9000");
	step(&r, pso(&r, 0, block, 256),
	     cat(rsa_raw(block, 256), "9000", NULL));
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_int_eq(
	    DRV.sign(r.card, &r.tok->keys[0], block, 256, out, &outlen),
	    CKR_OK);
	ck_assert_str_eq(hx(out, 256), rsa_raw(block, 256));
	rig_done(&r);
}
END_TEST

START_TEST(decrypt_gives_a_modulus_sized_block_with_leading_zeros)
{
	struct rig r;
	uint8_t ct[256], out[256];
	size_t outlen = sizeof(out);
	const char *pt;

	RAND_bytes(ct, sizeof(ct));
	ct[0] = 0x10;
	pt = rsa_raw(ct, 256);
	p15_bound(&r, K_AES);
	step(&r, mse(&r, 0, 0x2900), "9000");
	/* a card that drops a leading zero byte */
	step(&r, pso(&r, 0, ct, 256), cat("ABCD", "9000", NULL));
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	(void)pt;
	ck_assert_int_eq(
	    DRV.decrypt(r.card, &r.tok->keys[0], ct, 256, out, &outlen),
	    CKR_OK);
	ck_assert_uint_eq(outlen, 256);
	ck_assert_uint_eq(out[253], 0x00);
	ck_assert_uint_eq(out[254], 0xAB);
	ck_assert_uint_eq(out[255], 0xCD);
	rig_done(&r);
}
END_TEST

START_TEST(a_corrupted_mac_on_a_signature_is_rejected_and_not_used)
{
	enum kind k = (enum kind)_i;
	struct rig r;
	uint8_t block[256], out[256];
	size_t outlen = sizeof(out), i;

	RAND_bytes(block, sizeof(block));
	block[0] = 0;
	memset(out, 0xEE, sizeof(out));
	p15_bound(&r, k);
	step(&r, mse(&r, 0, 0x2900), "9000");
	step(&r, pso(&r, 0, block, 256),
	     cat("BADMAC:", rsa_raw(block, 256), "9000", NULL));
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_int_eq(
	    DRV.sign(r.card, &r.tok->keys[0], block, 256, out, &outlen),
	    CKR_DEVICE_ERROR);
	for (i = 0; i < sizeof(out); i++)
		ck_assert_uint_eq(out[i], 0xEE);
	rig_done(&r);
}
END_TEST

START_TEST(a_lost_session_is_authenticated_again_once_for_a_signature)
{
	struct rig r;
	struct emu *e;
	uint8_t h[32], out[64];
	size_t outlen = sizeof(out);
	const char *rs;

	RAND_bytes(h, sizeof(h));
	rs = ec_raw(h);
	p15_bound(&r, K_FIPS);
	/* another program authenticated: our MSE no longer verifies */
	step(&r, mse(&r, 1, 0x2920), "PLAIN:6988");
	sel(&r, 0x3F00, NULL, "9000");
	sel(&r, 0x5015, NULL, "9000");
	step(&r, mse(&r, 1, 0x2920), "9000");
	step(&r, pso(&r, 1, h, 32), cat(rs, "9000", NULL));
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_uint_eq(e->auths, 1);
	ck_assert_int_eq(DRV.sign(r.card, &r.tok->keys[1], h, 32, out, &outlen),
			 CKR_OK);
	ck_assert_uint_eq(e->auths, 2);
	ck_assert_str_eq(hx(out, 64), rs);
	rig_done(&r);
}
END_TEST

START_TEST(a_session_lost_twice_is_an_error_not_a_loop)
{
	struct rig r;
	struct emu *e;
	uint8_t h[32], out[64];
	size_t outlen = sizeof(out);

	RAND_bytes(h, sizeof(h));
	p15_bound(&r, K_DES);
	step(&r, mse(&r, 1, 0x2920), "PLAIN:6988");
	sel(&r, 0x3F00, NULL, "9000");
	sel(&r, 0x5015, NULL, "9000");
	step(&r, mse(&r, 1, 0x2920), "PLAIN:6988");
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_int_eq(DRV.sign(r.card, &r.tok->keys[1], h, 32, out, &outlen),
			 CKR_DEVICE_ERROR);
	ck_assert_uint_eq(e->auths, 2);
	rig_done(&r);
}
END_TEST

START_TEST(sign_without_login_reports_user_not_logged_in)
{
	struct rig r;
	uint8_t h[32], out[64];
	size_t outlen = sizeof(out);

	RAND_bytes(h, sizeof(h));
	p15_bound(&r, K_AES);
	step(&r, mse(&r, 1, 0x2920), "9000");
	step(&r, pso(&r, 1, h, 32), "6982");
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_int_eq(DRV.sign(r.card, &r.tok->keys[1], h, 32, out, &outlen),
			 CKR_USER_NOT_LOGGED_IN);
	rig_done(&r);
}
END_TEST

START_TEST(malformed_signature_answers_are_device_errors)
{
	static const char *answers[] = {
	    "9000",			    /* nothing */
	    "00112233445566778899AABB9000", /* not 64 bytes, not DER */
	};
	struct rig r;
	uint8_t h[32], out[64], blk[256], rout[256];
	size_t outlen, i;

	RAND_bytes(h, sizeof(h));
	RAND_bytes(blk, sizeof(blk));
	p15_bound(&r, K_AES);
	for (i = 0; i < 2; i++) {
		step(&r, mse(&r, 1, 0x2920), "9000");
		step(&r, pso(&r, 1, h, 32), answers[i]);
	}
	/* an RSA result longer than the modulus */
	step(&r, mse(&r, 0, 0x2900), "9000");
	step(&r, pso(&r, 0, blk, 256), cat("00", hx(blk, 256), "9000", NULL));
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	for (i = 0; i < 2; i++) {
		outlen = sizeof(out);
		ck_assert_int_eq(
		    DRV.sign(r.card, &r.tok->keys[1], h, 32, out, &outlen),
		    CKR_DEVICE_ERROR);
	}
	outlen = sizeof(rout);
	ck_assert_int_eq(
	    DRV.sign(r.card, &r.tok->keys[0], blk, 256, rout, &outlen),
	    CKR_DEVICE_ERROR);
	rig_done(&r);
}
END_TEST

/* --- PIN ------------------------------------------------------------------ */

/* What the token layer does first for a PIN operation: select. */
static void select_steps(struct rig *r, int espk)
{
	sel(r, 0x3F00, NULL, "9000");
	sel(r, espk ? 0x2003 : 0x5015, NULL, "9000");
}

START_TEST(login_sends_the_challenge_under_the_pin_key_once)
{
	enum kind k = (enum kind)_i;
	struct rig r;
	struct emu *e;
	int tries = 99;

	p15_bound(&r, k);
	select_steps(&r, 0);
	step(&r, "CHALLENGE", "");
	step(&r, "VERIFY 1", "");
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_int_eq(DRV.select(r.card), CKR_OK);
	ck_assert_int_eq(
	    DRV.login(r.card, CKU_USER, (const uint8_t *)"12345678", 8, &tries),
	    CKR_OK);
	ck_assert_uint_eq(e->verifies, 1);
	ck_assert_int_eq(tries, -1);
	rig_done(&r);
}
END_TEST

START_TEST(a_wrong_pin_is_sent_once_and_costs_exactly_one_try)
{
	enum kind k = (enum kind)_i;
	struct rig r;
	struct emu *e;
	int tries = 99;

	espk_bound(&r, k);
	step(&r, "CHALLENGE", "");
	step(&r, "VERIFY 1", "");
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_int_eq(
	    DRV.login(r.card, CKU_USER, (const uint8_t *)"00000000", 8, &tries),
	    CKR_PIN_INCORRECT);
	ck_assert_int_eq(tries, 5);
	ck_assert_int_eq(e->tries[0], 5);
	ck_assert_uint_eq(e->verifies, 1);
	rig_done(&r);
}
END_TEST

START_TEST(a_locked_pin_reports_locked_and_no_tries)
{
	struct rig r;
	struct emu *e;
	int tries = 99;

	p15_bound(&r, K_AES);
	step(&r, "CHALLENGE", "");
	step(&r, "VERIFY 1", "");
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	e->tries[0] = 0;
	ck_assert_int_eq(
	    DRV.login(r.card, CKU_USER, (const uint8_t *)"12345678", 8, &tries),
	    CKR_PIN_LOCKED);
	ck_assert_int_eq(tries, 0);
	rig_done(&r);
}
END_TEST

START_TEST(pin_status_reads_the_count_without_spending_a_try)
{
	enum kind k = (enum kind)_i;
	struct rig r;
	struct emu *e;
	int tries = 99;

	p15_bound(&r, k);
	step(&r, "CHALLENGE", "");
	step(&r, "TRIES 1", "");
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	e->tries[0] = 3;
	ck_assert_int_eq(DRV.pin_status(r.card, CKU_USER, &tries), CKR_OK);
	ck_assert_int_eq(tries, 3);
	ck_assert_uint_eq(e->verifies, 0);
	rig_done(&r);
}
END_TEST

START_TEST(an_unprotected_pin_answer_is_not_believed)
{
	struct rig r;
	int tries = 99;

	p15_bound(&r, K_DES);
	step(&r, "CHALLENGE", "");
	step(&r, "*", "PLAIN:63C0");
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_int_eq(
	    DRV.login(r.card, CKU_USER, (const uint8_t *)"12345678", 8, &tries),
	    CKR_DEVICE_ERROR);
	ck_assert_int_eq(tries, -1);
	rig_done(&r);
}
END_TEST

START_TEST(an_empty_or_overlong_pin_never_reaches_the_card)
{
	struct rig r;
	struct emu *e;
	uint8_t pin[65];
	int tries;
	unsigned before;

	memset(pin, '1', sizeof(pin));
	p15_bound(&r, K_DES);
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	before = e->apdus;
	ck_assert_int_eq(DRV.login(r.card, CKU_USER, pin, 0, &tries),
			 CKR_PIN_LEN_RANGE);
	ck_assert_int_eq(DRV.login(r.card, CKU_USER, pin, 65, &tries),
			 CKR_PIN_LEN_RANGE);
	ck_assert_uint_eq(e->apdus, before);
	rig_done(&r);
}
END_TEST

START_TEST(change_pin_checks_the_old_pin_then_keeps_the_try_limit)
{
	struct rig r;
	struct emu *e;
	int tries = 99;

	p15_bound(&r, K_AES);
	step(&r, "CHALLENGE", "");
	step(&r, "VERIFY 1", "");
	/* the try limits pkcs15-init wrote: user 5, SO 6 */
	sel(&r, 0x9F00, fci(0x9F00, 2, 0), "9000");
	step(&r, cat("00B00000", le(&r, 2), NULL), "05069000");
	step(&r, "SETPIN 1", "");
	/* the new PIN works */
	step(&r, "CHALLENGE", "");
	step(&r, "VERIFY 1", "");
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_int_eq(DRV.change_pin(r.card, CKU_USER,
					(const uint8_t *)"12345678", 8,
					(const uint8_t *)"24681357", 8, &tries),
			 CKR_OK);
	ck_assert_int_eq(e->max[0], 5);
	ck_assert_int_eq(
	    DRV.login(r.card, CKU_USER, (const uint8_t *)"24681357", 8, &tries),
	    CKR_OK);
	rig_done(&r);
}
END_TEST

START_TEST(change_pin_with_a_wrong_old_pin_writes_nothing)
{
	struct rig r;
	struct emu *e;
	int tries = 99;

	espk_bound(&r, K_DES);
	step(&r, "CHALLENGE", "");
	step(&r, "VERIFY 1", "");
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_int_eq(DRV.change_pin(r.card, CKU_USER,
					(const uint8_t *)"11111111", 8,
					(const uint8_t *)"24681357", 8, &tries),
			 CKR_PIN_INCORRECT);
	ck_assert_int_eq(tries, 5);
	ck_assert_uint_eq(e->verifies, 1);
	rig_done(&r);
}
END_TEST

START_TEST(espk_change_pin_takes_the_limit_from_the_count_after_the_check)
{
	struct rig r;
	struct emu *e;
	int tries = 99;

	espk_bound(&r, K_FIPS);
	step(&r, "CHALLENGE", "");
	step(&r, "VERIFY 1", "");
	step(&r, "CHALLENGE", "");
	step(&r, "TRIES 1", "");
	step(&r, "SETPIN 1", "");
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	e->tries[0] = 4; /* two failures before; the check resets it */
	ck_assert_int_eq(
	    DRV.change_pin(r.card, CKU_USER, (const uint8_t *)"12345678", 8,
			   (const uint8_t *)"viettel-ca-2026", 15, &tries),
	    CKR_OK);
	ck_assert_int_eq(e->max[0], 6);
	rig_done(&r);
}
END_TEST

START_TEST(a_doubtful_try_limit_stops_the_change_before_writing)
{
	struct rig r;
	struct emu *e;
	int tries = 99;

	espk_bound(&r, K_AES);
	step(&r, "CHALLENGE", "");
	step(&r, "VERIFY 1", "");
	step(&r, "CHALLENGE", "");
	step(&r, "TRIES 1", "");
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	e->max[0] = 2; /* a count of 2 right after a good PIN */
	ck_assert_int_eq(DRV.change_pin(r.card, CKU_USER,
					(const uint8_t *)"12345678", 8,
					(const uint8_t *)"24681357", 8, &tries),
			 CKR_FUNCTION_FAILED);
	ck_assert_str_eq(e->pin[0], "12345678");
	rig_done(&r);
}
END_TEST

START_TEST(unblock_after_so_login_sets_a_new_user_pin)
{
	struct rig r;
	struct emu *e;
	int tries = 99;

	p15_bound(&r, K_DES);
	step(&r, "CHALLENGE", "");
	step(&r, "VERIFY 2", "");
	sel(&r, 0x9F00, fci(0x9F00, 2, 0), "9000");
	step(&r, cat("00B00000", le(&r, 2), NULL), "06069000");
	step(&r, "SETPIN 1", "");
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	e->tries[0] = 0;
	ck_assert_int_eq(
	    DRV.login(r.card, CKU_SO, (const uint8_t *)"87654321", 8, &tries),
	    CKR_OK);
	ck_assert_int_eq(
	    DRV.unblock(r.card, (const uint8_t *)"11223344", 8, &tries),
	    CKR_OK);
	ck_assert_int_eq(e->tries[0], 6);
	rig_done(&r);
}
END_TEST

START_TEST(espk_tokens_offer_no_so_login_and_no_unblock)
{
	struct rig r;
	struct emu *e;
	int tries;
	unsigned before;

	espk_bound(&r, K_DES);
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	before = e->apdus;
	ck_assert_int_eq(
	    DRV.login(r.card, CKU_SO, (const uint8_t *)"87654321", 8, &tries),
	    CKR_USER_TYPE_INVALID);
	ck_assert_int_eq(
	    DRV.unblock(r.card, (const uint8_t *)"11223344", 8, &tries),
	    CKR_FUNCTION_NOT_SUPPORTED);
	ck_assert_uint_eq(e->apdus, before);
	rig_done(&r);
}
END_TEST

START_TEST(logout_opens_a_new_session)
{
	struct rig r;
	struct emu *e;

	p15_bound(&r, K_AES);
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_int_eq(DRV.logout(r.card), CKR_OK);
	ck_assert_uint_eq(e->auths, 2);
	rig_done(&r);
}
END_TEST

START_TEST(select_authenticates_again_only_when_the_session_is_gone)
{
	struct rig r;
	struct emu *e;

	p15_bound(&r, K_DES);
	select_steps(&r, 0);
	select_steps(&r, 0);
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	ck_assert_int_eq(DRV.select(r.card), CKR_OK);
	ck_assert_uint_eq(e->auths, 1);
	e->session = 0; /* the token was reset */
	ck_assert_int_eq(DRV.select(r.card), CKR_OK);
	ck_assert_uint_eq(e->auths, 2);
	rig_done(&r);
}
END_TEST

START_TEST(apdu_counts_for_bind_login_and_sign)
{
	static const struct {
		enum kind k;
		int espk;
	} cases[] = {{K_DES, 0}, {K_AES, 0}, {K_FIPS, 0}, {K_PLAIN, 0},
		     {K_DES, 1}, {K_AES, 1}, {K_FIPS, 1}, {K_PLAIN, 1}};
	size_t c;

	for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct rig r;
		struct emu *e;
		uint8_t blk[256], out[256];
		size_t outlen = sizeof(out);
		int tries;
		unsigned b, l, s;

		RAND_bytes(blk, sizeof(blk));
		blk[0] = 0;
		if (cases[c].espk)
			espk_bound(&r, cases[c].k);
		else
			p15_bound(&r, cases[c].k);
		select_steps(&r, cases[c].espk);
		step(&r, "CHALLENGE", "");
		step(&r, "VERIFY 1", "");
		step(&r, mse(&r, 0, cases[c].espk ? 0xA060 : 0x2900), "9000");
		step(&r, pso(&r, 0, blk, 256),
		     cat(rsa_raw(blk, 256), "9000", NULL));
		e = rig_card(&r, atr_2012, sizeof(atr_2012));
		if (cases[c].k == K_PLAIN && getenv("EPASS_FUZZ_SEEDS")) {
			seed_out =
			    fopen(fmt("%s/plain-%s", getenv("EPASS_FUZZ_SEEDS"),
				      cases[c].espk ? "espk" : "pkcs15"),
				  "wb");
			ck_assert_ptr_nonnull(seed_out);
		}
		b = bind_ok(&r);
		ck_assert_int_eq(DRV.select(r.card), CKR_OK);
		ck_assert_int_eq(DRV.login(r.card, CKU_USER,
					   (const uint8_t *)"12345678", 8,
					   &tries),
				 CKR_OK);
		l = e->apdus - b;
		ck_assert_int_eq(
		    DRV.sign(r.card, &r.tok->keys[0], blk, 256, out, &outlen),
		    CKR_OK);
		s = e->apdus - b - l;
		if (seed_out != NULL) {
			fclose(seed_out);
			seed_out = NULL;
		}
		fprintf(stderr,
			"%-6s %-6s: bind %u APDUs (2 certificates on PKCS#15, "
			"1 on ESPK), select+login %u, sign %u\n",
			cases[c].espk ? "ESPK" : "PKCS15",
			kind_name(cases[c].k), b, l, s);
		ck_assert_uint_eq(s, 2);
		ck_assert_uint_eq(l, 4);
		rig_done(&r);
	}
}
END_TEST

/* --- generation, certificates -------------------------------------------- */

static const char *pub_modulus_hex(EVP_PKEY *pk)
{
	BIGNUM *n = NULL;
	uint8_t m[512];
	int l;

	ck_assert_int_eq(EVP_PKEY_get_bn_param(pk, "n", &n), 1);
	l = BN_bn2bin(n, m);
	BN_free(n);
	return hx(m, (size_t)l);
}

/* UPDATE BINARY steps of data at off, in E8-byte pieces. */
static void updates(struct rig *r, size_t off, const char *hex)
{
	size_t n = strlen(hex) / 2, done = 0, c;

	while (done < n) {
		c = n - done < 0xE8 ? n - done : 0xE8;
		step(r,
		     cat(fmt("00D6%04zX%02zX", off + done, c),
			 sub(hex + 2 * done, 2 * c), NULL),
		     "9000");
		done += c;
	}
}

START_TEST(rsa_generation_writes_files_and_entries_as_pkcs15_init_does)
{
	struct rig r;
	struct kyso_keygen req;
	struct kyso_pubkey pub;
	const char *mod = pub_modulus_hex(rsa_key), *rsapub, *pukdf, *prkdf;
	uint8_t prk[2048];
	size_t prklen = unhex(p15_prkdf(), prk, sizeof(prk));

	/* the DER kept in the public key file: RSAPublicKey */
	rsapub =
	    tlv(0x30, cat(tlv(0x02, cat("00", mod, NULL)), "0203010001", NULL));
	pukdf = tlv(
	    0x30,
	    cat(tlv(0x30, cat(tlv(0x0C, utf8("kyso rsa")), "03020640", NULL)),
		tlv(0x30, "040144"
			  "03020102"
			  "010100"
			  "020100"),
		tlv(0xA1,
		    tlv(0x30, cat(p15_path("3F0050153002"), "02020800", NULL))),
		NULL));
	prkdf = tlv(0x30, cat(tlv(0x30, cat(tlv(0x0C, utf8("kyso rsa")),
					    "030206C0", "040101", NULL)),
			      tlv(0x30, "040144"
					"03020560"
					"030203B8"
					"020102"),
			      tlv(0xA1, tlv(0x30, cat(p15_path("3F0050152902"),
						      "02020800", NULL))),
			      NULL));
	p15_bound(&r, K_AES);
	/* key index 2: files 2940 and 3040 */
	step(&r, "00E000001862168202110083022940850208008608FF909090FFFFFFFF",
	     "9000");
	step(&r,
	     "00E000001C621A820212008302304085020800860890909090FFFFFFFF"
	     "87020066",
	     "6A89"); /* a leftover: deleted, made again */
	step(&r, "00E40000023040", "9000");
	step(&r,
	     "00E000001C621A820212008302304085020800860890909090FFFFFFFF"
	     "87020066",
	     "9000");
	step(&r,
	     "00460000070108002940"
	     "3040",
	     "9000");
	step(&r, cat("80B40200023040", "00", NULL), cat(mod, "9000", NULL));
	step(&r, "00E40000023040", "9000");
	step(&r,
	     cat("00E000001862168002", fmt("%04zX", strlen(rsapub) / 2),
		 "82020100830230408608"
		 "9090FF90FFFFFFFF",
		 NULL),
	     "9000");
	updates(&r, 0, rsapub);
	/* PuKDF (empty so far), then PrKDF after its two keys */
	sel(&r, 0x4403, fci(0x4403, 1024, 0), "9000");
	step(&r, cat("00B00000", le(&r, 0xD8), NULL),
	     cat(hx((uint8_t[0xD8]){0}, 0xD8), "9000", NULL));
	updates(&r, 0, pukdf);
	sel(&r, 0x4402, fci(0x4402, 1024, 0), "9000");
	reads(&r, prk, prklen, 1024, 1);
	updates(&r, prklen, prkdf);
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	memset(&req, 0, sizeof(req));
	memset(&pub, 0, sizeof(pub));
	req.type = CKK_RSA;
	req.bits = 2048;
	req.id[0] = 0x44;
	req.idlen = 1;
	snprintf(req.label, sizeof(req.label), "kyso rsa");
	/* the directory files need the user PIN */
	ck_assert_int_eq(DRV.generate(r.card, r.tok, &req, &pub),
			 CKR_USER_NOT_LOGGED_IN);
	r.tok->login = CKU_USER;
	ck_assert_int_eq(DRV.generate(r.card, r.tok, &req, &pub), CKR_OK);
	ck_assert_uint_eq(req.ref, 0x2940);
	ck_assert_uint_eq(pub.type, CKK_RSA);
	ck_assert_uint_eq(pub.bits, 2048);
	ck_assert_str_eq(hx(pub.n, pub.nlen), mod);
	kyso_pubkey_clear(&pub);
	rig_done(&r);
}
END_TEST

START_TEST(ec_generation_reads_the_point_and_takes_an_intrinsic_id)
{
	struct rig r;
	struct kyso_keygen req;
	struct kyso_pubkey pub;
	uint8_t point[65], id[20];
	size_t plen = sizeof(point);

	ck_assert_int_eq(
	    EVP_PKEY_get_octet_string_param(ec_key, "encoded-pub-key", point,
					    sizeof(point), &plen),
	    1);
	SHA1(point, 65, id);
	p15_bound(&r, K_FIPS);
	step(&r, "00E000001862168202130083022940850201008608FF909090FFFFFFFF",
	     "9000");
	step(&r,
	     "00E000001C621A820214008302304085020100860890909090FFFFFFFF"
	     "87020066",
	     "9000");
	step(&r,
	     "00460000070201002940"
	     "3040",
	     "9000");
	step(&r, "80B4000002304000",
	     cat("5820", hx(point + 1, 32), "5920", hx(point + 33, 32), "9000",
		 NULL));
	step(&r, "00E40000023040", "9000");
	step(&r, "*", "9000"); /* the transparent EF for the SPKI */
	step(&r, "*", "9000"); /* its content (91 bytes) */
	sel(&r, 0x4403, fci(0x4403, 1024, 0), "9000");
	step(&r, cat("00B00000", le(&r, 0xD8), NULL),
	     cat(hx((uint8_t[0xD8]){0}, 0xD8), "9000", NULL));
	step(&r, "*", "9000");
	sel(&r, 0x4402, fci(0x4402, 40, 0), "9000");
	/* a PrKDF with no room left */
	step(&r, cat("00B00000", le(&r, 40), NULL),
	     cat(hx((uint8_t[40]){0x30, 0x26}, 40), "9000", NULL));
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	r.tok->login = CKU_USER;
	memset(&req, 0, sizeof(req));
	memset(&pub, 0, sizeof(pub));
	req.type = CKK_EC;
	req.bits = 256;
	ck_assert_int_eq(DRV.generate(r.card, r.tok, &req, &pub),
			 CKR_DEVICE_MEMORY);
	ck_assert(!kyso_pubkey_present(&pub));
	/* the id was taken from the point before the full PrKDF stopped it */
	ck_assert_uint_eq(req.idlen, 20);
	ck_assert_str_eq(hx(req.id, 20), hx(id, 20));
	rig_done(&r);
}
END_TEST

START_TEST(a_malformed_generated_public_key_is_refused)
{
	struct rig r;
	struct kyso_keygen req;
	struct kyso_pubkey pub;

	p15_bound(&r, K_DES);
	step(&r, "*", "9000");
	step(&r, "*", "9000");
	step(&r, "*", "9000");
	step(&r, "80B4020002304000", "0102039000"); /* 3 bytes, not 128 */
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	r.tok->login = CKU_USER;
	memset(&req, 0, sizeof(req));
	memset(&pub, 0, sizeof(pub));
	req.type = CKK_RSA;
	req.bits = 1024;
	ck_assert_int_eq(DRV.generate(r.card, r.tok, &req, &pub),
			 CKR_DEVICE_ERROR);
	ck_assert(!kyso_pubkey_present(&pub));
	rig_done(&r);
}
END_TEST

START_TEST(a_certificate_is_written_next_to_its_key_or_in_a_free_file)
{
	struct rig r;
	uint8_t cdf[1024];
	size_t cdflen = unhex(p15_cdf(), cdf, sizeof(cdf));
	const char *c = hx(rsa_cert, rsa_certlen);
	const char *entry;
	uint32_t ref = 0;

	entry = tlv(0x30,
		    cat(tlv(0x30, cat(tlv(0x0C, utf8("Certificate")),
				      "03020640", NULL)),
			tlv(0x30, "040177"),
			tlv(0xA1, tlv(0x30, p15_path("3F0050153102"))), NULL));
	p15_bound(&r, K_DES);
	/* id 45: its key's certificate file 3100 is replaced */
	step(&r,
	     cat("00E00000186216", fmt("8002%04zX", rsa_certlen),
		 "82020100830231008608"
		 "9090FF90FFFFFFFF",
		 NULL),
	     "6A89");
	step(&r, "00E40000023100", "9000");
	step(&r,
	     cat("00E00000186216", fmt("8002%04zX", rsa_certlen),
		 "82020100830231008608"
		 "9090FF90FFFFFFFF",
		 NULL),
	     "9000");
	updates(&r, 0, c);
	/* id 77, no key: the first free file, 3102 (3140 on the card) */
	step(&r,
	     cat("00E00000186216", fmt("8002%04zX", rsa_certlen),
		 "82020100830231408608"
		 "9090FF90FFFFFFFF",
		 NULL),
	     "9000");
	updates(&r, 0, c);
	sel(&r, 0x4404, fci(0x4404, 2048, 0), "9000");
	reads(&r, cdf, cdflen, 2048, 1);
	updates(&r, cdflen, entry);
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	r.tok->login = CKU_USER;
	ck_assert_int_eq(DRV.write_cert(r.card, r.tok, (const uint8_t *)"\x45",
					1, rsa_cert, rsa_certlen, &ref),
			 CKR_OK);
	ck_assert_uint_eq(ref, 0x3100);
	ck_assert_int_eq(DRV.write_cert(r.card, r.tok, (const uint8_t *)"\x77",
					1, rsa_cert, rsa_certlen, &ref),
			 CKR_OK);
	ck_assert_uint_eq(ref, 0x3102);
	rig_done(&r);
}
END_TEST

START_TEST(deleting_a_certificate_takes_its_entry_out_and_the_file_away)
{
	struct rig r;
	uint8_t cdf[1024];
	size_t cdflen = unhex(p15_cdf(), cdf, sizeof(cdf)), first, i;
	const struct kyso_object *obj = NULL;
	struct kyso_asn1 t;
	struct kyso_cur c = kyso_cur_make(cdf, cdflen);

	ck_assert_int_eq(kyso_asn1_next(&c, &t), 1);
	first = t.rawlen; /* the second entry starts here */
	p15_bound(&r, K_AES);
	sel(&r, 0x4404, fci(0x4404, 2048, 0), "9000");
	reads(&r, cdf, cdflen, 2048, 1);
	/* the rest (nothing) moves up, the entry's bytes become zeros */
	updates(&r, first, hx((uint8_t[256]){0}, cdflen - first));
	step(&r, "00E40000023120", "9000");
	rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	for (i = 0; i < r.tok->nobjs; i++)
		if (r.tok->objs[i]->cls == CKO_CERTIFICATE &&
		    r.tok->objs[i]->drv_ref == 0x3101)
			obj = r.tok->objs[i];
	ck_assert_ptr_nonnull(obj);
	r.tok->login = CKU_USER;
	ck_assert_int_eq(DRV.delete_object(r.card, r.tok, obj), CKR_OK);
	rig_done(&r);
}
END_TEST

START_TEST(an_espk_token_is_never_written)
{
	struct rig r;
	struct emu *e;
	struct kyso_keygen req;
	struct kyso_pubkey pub;
	uint32_t ref;
	unsigned before;
	size_t i;

	espk_bound(&r, K_AES);
	e = rig_card(&r, atr_2012, sizeof(atr_2012));
	bind_ok(&r);
	r.tok->login = CKU_USER;
	before = e->apdus;
	memset(&req, 0, sizeof(req));
	memset(&pub, 0, sizeof(pub));
	req.type = CKK_RSA;
	req.bits = 2048;
	ck_assert_int_eq(DRV.generate(r.card, r.tok, &req, &pub),
			 CKR_FUNCTION_NOT_SUPPORTED);
	ck_assert_int_eq(DRV.write_cert(r.card, r.tok, (const uint8_t *)"\x42",
					1, rsa_cert, rsa_certlen, &ref),
			 CKR_FUNCTION_NOT_SUPPORTED);
	for (i = 0; i < r.tok->nobjs; i++)
		ck_assert_int_eq(
		    DRV.delete_object(r.card, r.tok, r.tok->objs[i]),
		    CKR_ACTION_PROHIBITED);
	ck_assert_uint_eq(e->apdus, before);
	rig_done(&r);
}
END_TEST

static Suite *epass_suite(void)
{
	Suite *s = suite_create("epass2003");
	TCase *t;

	t = tcase_create("match");
	tcase_add_checked_fixture(t, setup, arena_free);
	tcase_add_test(t, match_ignores_other_atrs_without_sending_anything);
	tcase_add_loop_test(t, match_asks_the_mode_once_for_every_variant, 0,
			    4);
	tcase_add_test(t, match_declines_a_token_that_refuses_the_mode_query);
	suite_add_tcase(s, t);

	t = tcase_create("bind");
	tcase_set_timeout(t, 60);
	tcase_add_checked_fixture(t, setup, arena_free);
	tcase_add_loop_test(
	    t, bind_reads_keys_and_certificates_of_a_pkcs15_token, 0, 4);
	tcase_add_loop_test(t, bind_reads_an_entersafe_espk_token, 0, 4);
	tcase_add_test(t, an_espk_key_with_its_own_handle_and_id_keeps_them);
	tcase_add_test(t, a_wrong_card_cryptogram_means_an_untrusted_token);
	tcase_add_test(
	    t, malformed_directory_files_lose_their_objects_not_the_token);
	tcase_add_test(t, ef_dir_names_the_application_when_5015_is_missing);
	tcase_add_test(t, garbage_answers_during_bind_fail_it_cleanly);
	suite_add_tcase(s, t);

	t = tcase_create("keys");
	tcase_set_timeout(t, 60);
	tcase_add_checked_fixture(t, setup, arena_free);
	tcase_add_loop_test(
	    t, rsa_sign_names_the_key_file_and_returns_the_card_result, 0, 4);
	tcase_add_loop_test(
	    t, ec_sign_sends_the_fitted_hash_and_returns_r_and_s, 0, 4);
	tcase_add_test(t, espk_sign_names_the_vendor_key_handle);
	tcase_add_test(t,
		       decrypt_gives_a_modulus_sized_block_with_leading_zeros);
	tcase_add_loop_test(
	    t, a_corrupted_mac_on_a_signature_is_rejected_and_not_used, 0, 3);
	tcase_add_test(
	    t, a_lost_session_is_authenticated_again_once_for_a_signature);
	tcase_add_test(t, a_session_lost_twice_is_an_error_not_a_loop);
	tcase_add_test(t, sign_without_login_reports_user_not_logged_in);
	tcase_add_test(t, malformed_signature_answers_are_device_errors);
	suite_add_tcase(s, t);

	t = tcase_create("pin");
	tcase_set_timeout(t, 60);
	tcase_add_checked_fixture(t, setup, arena_free);
	tcase_add_loop_test(t, login_sends_the_challenge_under_the_pin_key_once,
			    0, 4);
	tcase_add_loop_test(
	    t, a_wrong_pin_is_sent_once_and_costs_exactly_one_try, 0, 4);
	tcase_add_test(t, a_locked_pin_reports_locked_and_no_tries);
	tcase_add_loop_test(
	    t, pin_status_reads_the_count_without_spending_a_try, 0, 4);
	tcase_add_test(t, an_unprotected_pin_answer_is_not_believed);
	tcase_add_test(t, an_empty_or_overlong_pin_never_reaches_the_card);
	tcase_add_test(t,
		       change_pin_checks_the_old_pin_then_keeps_the_try_limit);
	tcase_add_test(t, change_pin_with_a_wrong_old_pin_writes_nothing);
	tcase_add_test(
	    t, espk_change_pin_takes_the_limit_from_the_count_after_the_check);
	tcase_add_test(t, a_doubtful_try_limit_stops_the_change_before_writing);
	tcase_add_test(t, unblock_after_so_login_sets_a_new_user_pin);
	tcase_add_test(t, espk_tokens_offer_no_so_login_and_no_unblock);
	tcase_add_test(t, logout_opens_a_new_session);
	tcase_add_test(
	    t, select_authenticates_again_only_when_the_session_is_gone);
	tcase_add_test(t, apdu_counts_for_bind_login_and_sign);
	suite_add_tcase(s, t);

	t = tcase_create("write");
	tcase_set_timeout(t, 60);
	tcase_add_checked_fixture(t, setup, arena_free);
	tcase_add_test(
	    t, rsa_generation_writes_files_and_entries_as_pkcs15_init_does);
	tcase_add_test(t,
		       ec_generation_reads_the_point_and_takes_an_intrinsic_id);
	tcase_add_test(t, a_malformed_generated_public_key_is_refused);
	tcase_add_test(
	    t, a_certificate_is_written_next_to_its_key_or_in_a_free_file);
	tcase_add_test(
	    t, deleting_a_certificate_takes_its_entry_out_and_the_file_away);
	tcase_add_test(t, an_espk_token_is_never_written);
	suite_add_tcase(s, t);
	return s;
}

int main(void)
{
	SRunner *r = srunner_create(epass_suite());
	int failed;

	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
