/* The PIV card edge (NIST SP 800-73-4 Part 2, algorithms of SP 800-78-4):
 * probe and bind, PIN and PUK, management-key authentication, signing,
 * decryption, on-card key generation and certificate writing.
 *
 * The SO credential. PIV has no SO PIN; C_Login(CKU_SO) takes one of:
 *  - the card management key (key reference 9B) in hex, optionally prefixed
 *    "3des:", "aes128:", "aes192:" or "aes256:" (without a prefix, 48 hex
 *    digits are 3DES -- AES-192 when the card lists only AES-192 in its
 *    application property template -- 32 are AES-128 and 64 AES-256). It is
 *    proven at once by mutual authentication (GENERAL AUTHENTICATE, witness
 *    then challenge); it is what key generation and certificate writing need.
 *  - the PUK, recognised by being 8 characters or fewer. A PIV card checks
 *    a PUK only inside RESET RETRY COUNTER, so login cannot verify it: the
 *    driver keeps it, padded, in memory wiped on logout, on unbind and right
 *    after its single use by unblock. A wrong PUK therefore shows up only at
 *    unblock time, as CKR_PIN_INCORRECT with the PUK's tries left.
 * Nothing here is ever retried: one wrong PIN, PUK or key costs one try.
 *
 * Everything the card answers is untrusted: every TLV is read through the
 * bounded readers and any surprise becomes CKR_DEVICE_ERROR (or, while
 * binding, a skipped object). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "iso7816/apdu.h"
#include "iso7816/atr.h"
#include "iso7816/tlv.h"
#include "token/token.h"
#include "util/buf.h"
#include "util/log.h"

/* --- card facts (SP 800-73-4 Part 1 tables 3 and 4, SP 800-78-4) ------- */

#define INS_VERIFY	0x20
#define INS_CHANGE_REF	0x24
#define INS_RESET_RETRY 0x2C
#define INS_GEN_ASYM	0x47
#define INS_GEN_AUTH	0x87
#define INS_SELECT	0xA4
#define INS_GET_DATA	0xCB
#define INS_PUT_DATA	0xDB

#define REF_PIN	 0x80
#define REF_PUK	 0x81
#define REF_MGMT 0x9B

#define TAG_CHUID	  0x5FC102
#define TAG_KEY_HISTORY	  0x5FC10C
#define TAG_RETIRED_FIRST 0x5FC10D
#define NUM_RETIRED	  20

#define ALG_3DES    0x03
#define ALG_AES128  0x08
#define ALG_AES192  0x0A
#define ALG_AES256  0x0C
#define ALG_RSA1024 0x06
#define ALG_RSA2048 0x07
#define ALG_RSA3072 0x05
#define ALG_RSA4096 0x16
#define ALG_P256    0x11
#define ALG_P384    0x14

#define PIN_MAX		  8
#define CERT_MAX_INFLATED 16384 /* bound for a compressed certificate */
#define CERT_MAX_WRITE	  16384 /* larger than any PIV container */
#define OBJ_MAX		  65536 /* bound for one GET DATA answer */

/* The application identifier, truncated to the version-independent part so
 * that any PIV version answers (SP 800-73-4 Part 1, 2.2). */
static const uint8_t piv_aid[] = {0xA0, 0x00, 0x00, 0x03, 0x08,
				  0x00, 0x00, 0x10, 0x00};

enum slot_kind {
	SLOT_AUTH,
	SLOT_SIGN,
	SLOT_KEYMGMT,
	SLOT_CARDAUTH,
	SLOT_RETIRED
};

/* One key slot with its certificate container. CKA_ID and labels are those
 * OpenSC's PIV emulation uses, so users see the same objects through both
 * modules (its ids "05".."24" for the retired keys are hex strings). */
struct piv_slot {
	uint32_t container;
	uint8_t ref;
	uint8_t id;
	enum slot_kind kind;
	char label[32];
};

static const struct piv_slot main_slots[] = {
    {0x5FC105, 0x9A, 0x01, SLOT_AUTH, "PIV AUTH key"},
    {0x5FC10A, 0x9C, 0x02, SLOT_SIGN, "SIGN key"},
    {0x5FC10B, 0x9D, 0x03, SLOT_KEYMGMT, "KEY MAN key"},
    {0x5FC101, 0x9E, 0x04, SLOT_CARDAUTH, "CARD AUTH key"},
};
#define NUM_MAIN (sizeof(main_slots) / sizeof(main_slots[0]))

/* Retired key i (0..19): reference 82+i, container 5FC10D+i. */
static void retired_slot(unsigned i, struct piv_slot *s)
{
	unsigned n = i + 5;

	memset(s, 0, sizeof(*s));
	s->container = TAG_RETIRED_FIRST + i;
	s->ref = (uint8_t)(0x82 + i);
	s->id = (uint8_t)(((n / 10) << 4) | (n % 10));
	s->kind = SLOT_RETIRED;
	snprintf(s->label, sizeof(s->label), "Retired KEY MAN %u", i + 1);
}

static int slot_by_ref(uint32_t ref, struct piv_slot *s)
{
	size_t i;

	for (i = 0; i < NUM_MAIN; i++) {
		if (main_slots[i].ref == ref) {
			*s = main_slots[i];
			return 0;
		}
	}
	if (ref >= 0x82 && ref < 0x82 + NUM_RETIRED) {
		retired_slot(ref - 0x82, s);
		return 0;
	}
	return -1;
}

static int slot_by_id(uint8_t id, struct piv_slot *s)
{
	unsigned i;

	for (i = 0; i < NUM_MAIN; i++) {
		if (main_slots[i].id == id) {
			*s = main_slots[i];
			return 0;
		}
	}
	for (i = 0; i < NUM_RETIRED; i++) {
		retired_slot(i, s);
		if (s->id == id)
			return 0;
	}
	return -1;
}

static int slot_by_container(uint32_t tag, struct piv_slot *s)
{
	size_t i;

	for (i = 0; i < NUM_MAIN; i++) {
		if (main_slots[i].container == tag) {
			*s = main_slots[i];
			return 0;
		}
	}
	if (tag >= TAG_RETIRED_FIRST && tag < TAG_RETIRED_FIRST + NUM_RETIRED) {
		retired_slot(tag - TAG_RETIRED_FIRST, s);
		return 0;
	}
	return -1;
}

static uint8_t key_alg(CK_KEY_TYPE type, CK_ULONG bits)
{
	if (type == CKK_RSA) {
		switch (bits) {
		case 1024:
			return ALG_RSA1024;
		case 2048:
			return ALG_RSA2048;
		case 3072:
			return ALG_RSA3072;
		case 4096:
			return ALG_RSA4096;
		}
	} else if (type == CKK_EC) {
		switch (bits) {
		case 256:
			return ALG_P256;
		case 384:
			return ALG_P384;
		}
	}
	return 0;
}

/* --- per-card state ------------------------------------------------------ */

struct piv_state {
	int mgmt_auth; /* 9B proven since the last logout */
	int have_puk;
	uint8_t puk[PIN_MAX]; /* padded with FF */
	int algs_known;	      /* the SELECT answer listed algorithms */
	uint64_t algs;	      /* bit n: algorithm identifier n */
};

static struct piv_state *state(struct kyso_card *card)
{
	if (card->drvdata == NULL)
		card->drvdata = calloc(1, sizeof(struct piv_state));
	return card->drvdata;
}

static void forget_puk(struct piv_state *st)
{
	kyso_wipe(st->puk, sizeof(st->puk));
	st->have_puk = 0;
}

static void piv_unbind(struct kyso_card *card)
{
	struct piv_state *st = card->drvdata;

	if (st == NULL)
		return;
	kyso_wipe(st, sizeof(*st));
	free(st);
	card->drvdata = NULL;
}

static int has_alg(const struct piv_state *st, uint8_t alg)
{
	return alg < 64 && (st->algs >> alg) & 1;
}

/* --- exchanges ----------------------------------------------------------- */

/* One command; resp (may be NULL) gets the answer's data. */
static CK_RV xmit(struct kyso_card *card, uint8_t ins, uint8_t p1, uint8_t p2,
		  const uint8_t *data, size_t lc, size_t le, unsigned flags,
		  struct kyso_buf *resp, uint16_t *sw)
{
	struct kyso_apdu a = {0};
	struct kyso_buf scratch = KYSO_BUF_INIT;
	CK_RV rv;

	a.cla = 0x00;
	a.ins = ins;
	a.p1 = p1;
	a.p2 = p2;
	a.data = data;
	a.lc = lc;
	a.le = le;
	a.flags = flags;
	if (resp == NULL) {
		scratch.max = 1024;
		scratch.secret = 1;
		resp = &scratch;
	}
	rv = kyso_apdu_transmit(card, &a, resp, sw);
	kyso_buf_free(&scratch);
	return rv;
}

static CK_RV select_aid(struct kyso_card *card, struct kyso_buf *resp,
			uint16_t *sw)
{
	/* Le 256 keeps the SELECT a short APDU whatever the card supports. */
	return xmit(card, INS_SELECT, 0x04, 0x00, piv_aid, sizeof(piv_aid), 256,
		    0, resp, sw);
}

static CK_RV get_data(struct kyso_card *card, uint32_t tag,
		      struct kyso_buf *resp, uint16_t *sw)
{
	uint8_t cmd[5] = {0x5C, 0x03, (uint8_t)(tag >> 16), (uint8_t)(tag >> 8),
			  (uint8_t)tag};

	return xmit(card, INS_GET_DATA, 0x3F, 0xFF, cmd, sizeof(cmd),
		    KYSO_LE_MAX, 0, resp, sw);
}

/* The answer to a PIN command: tries left from 63Cx, locked from 6983. */
static CK_RV pin_sw(uint16_t sw, int *tries)
{
	CK_RV rv;

	if (kyso_pin_sw(sw, &rv, tries))
		return rv;
	if (sw == 0x6A80) /* the card refuses the PIN's format */
		return CKR_PIN_INVALID;
	return kyso_sw_error(sw);
}

/* The body of an answer that must be exactly one TLV with this tag. */
static int only_tlv(const uint8_t *p, size_t len, uint32_t tag,
		    struct kyso_tlv *t)
{
	struct kyso_cur c = kyso_cur_make(p, len);

	if (kyso_tlv_next(&c, t) != 1 || t->tag != tag || c.len != 0)
		return -1;
	return 0;
}

/* A dynamic authentication template answer, 7C { want }, nothing else. */
static int dyn_auth_item(const uint8_t *p, size_t len, uint32_t want,
			 const uint8_t **v, size_t *vlen)
{
	struct kyso_tlv outer, inner;

	if (only_tlv(p, len, 0x7C, &outer) < 0)
		return -1;
	if (only_tlv(outer.val, outer.len, want, &inner) < 0)
		return -1;
	*v = inner.val;
	*vlen = inner.len;
	return 0;
}

/* Appends a TLV header; lengths here are bounded by the callers. */
static size_t put_hdr(uint8_t *p, size_t cap, uint32_t tag, size_t len)
{
	return kyso_tlv_put_header(tag, len, p, cap);
}

/* --- probe, select ------------------------------------------------------- */

/* Records the algorithms of the application property template
 * (61 { ... AC { 80 alg ... 06 oid } }); a malformed one is ignored. */
static void parse_apt(struct piv_state *st, const uint8_t *p, size_t len)
{
	struct kyso_tlv apt, ac, t;
	struct kyso_cur c;
	uint64_t algs = 0;
	int r;

	if (kyso_tlv_find(p, len, 0x61, &apt) != 1)
		return;
	if (kyso_tlv_find(apt.val, apt.len, 0xAC, &ac) != 1)
		return;
	c = kyso_cur_make(ac.val, ac.len);
	while ((r = kyso_tlv_next(&c, &t)) == 1) {
		if (t.tag == 0x80 && t.len == 1 && t.val[0] < 64)
			algs |= (uint64_t)1 << t.val[0];
	}
	if (r < 0)
		return;
	st->algs = algs;
	st->algs_known = 1;
}

static int piv_match(struct kyso_card *card)
{
	struct kyso_buf resp = KYSO_BUF_INIT;
	struct piv_state *st;
	int old_ext = card->ext_apdu;
	uint16_t sw = 0;
	CK_RV rv;

	card->ext_apdu = kyso_atr_ext_apdu(card->atr, card->atrlen);
	resp.max = 4096;
	rv = select_aid(card, &resp, &sw);
	if (rv != CKR_OK || sw != KYSO_SW_OK) {
		card->ext_apdu = old_ext;
		kyso_buf_free(&resp);
		return 0;
	}
	st = state(card);
	if (st != NULL)
		parse_apt(st, resp.p, resp.len);
	kyso_buf_free(&resp);
	return 1;
}

static CK_RV piv_select(struct kyso_card *card)
{
	uint16_t sw = 0;
	CK_RV rv;

	card->ext_apdu = kyso_atr_ext_apdu(card->atr, card->atrlen);
	rv = select_aid(card, NULL, &sw);
	if (rv != CKR_OK)
		return rv;
	if (sw != KYSO_SW_OK) {
		kyso_err("piv: SELECT answered %04X", sw);
		return CKR_DEVICE_ERROR;
	}
	return CKR_OK;
}

/* --- bind ---------------------------------------------------------------- */

static void hex_lower(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0F];
	}
	out[2 * n] = '\0';
}

/* The token serial from the CHUID (53 { 30 FASC-N, ..., 34 GUID, ... }):
 * the GUID when present and not zero, else the FASC-N, shown as OpenSC
 * shows it -- the last 16 hex digits. */
static int chuid_serial(const uint8_t *p, size_t len, char serial[17])
{
	struct kyso_tlv w, t;
	size_t i;
	int nonzero = 0;

	if (only_tlv(p, len, 0x53, &w) < 0)
		return -1;
	if (kyso_tlv_find(w.val, w.len, 0x34, &t) == 1 && t.len == 16) {
		for (i = 0; i < t.len; i++)
			nonzero |= t.val[i];
		if (nonzero) {
			hex_lower(t.val + 8, 8, serial);
			return 0;
		}
	}
	if (kyso_tlv_find(w.val, w.len, 0x30, &t) == 1 && t.len == 25) {
		hex_lower(t.val + 17, 8, serial);
		return 0;
	}
	return -1;
}

/* Key History (53 { C1 on-card, C2 off-card, F3 url, FE }): how many
 * retired containers hold certificates. -1 when malformed. */
static int key_history(const uint8_t *p, size_t len, unsigned *oncard)
{
	struct kyso_tlv w, t;
	struct kyso_cur c;
	unsigned on = 0, off = 0;
	int r;

	if (only_tlv(p, len, 0x53, &w) < 0)
		return -1;
	c = kyso_cur_make(w.val, w.len);
	while ((r = kyso_tlv_next(&c, &t)) == 1) {
		if (t.tag == 0xC1 || t.tag == 0xC2) {
			if (t.len != 1)
				return -1;
			if (t.tag == 0xC1)
				on = t.val[0];
			else
				off = t.val[0];
		}
	}
	if (r < 0 || on + off > NUM_RETIRED)
		return -1;
	*oncard = on;
	return 0;
}

/* A certificate container, 53 { 70 cert, 71 CertInfo, [72 MSCUID], FE }.
 * *der gets a malloc'd DER certificate, or NULL when the container is empty
 * (53 00, as a deleted one). CKR_DEVICE_ERROR when malformed. */
static CK_RV parse_container(const uint8_t *p, size_t len, uint8_t **der,
			     size_t *derlen)
{
	struct kyso_tlv w, t, cert = {0};
	struct kyso_cur c;
	int r, have_cert = 0, have_info = 0;
	uint8_t info = 0;

	*der = NULL;
	*derlen = 0;
	if (only_tlv(p, len, 0x53, &w) < 0)
		return CKR_DEVICE_ERROR;
	if (w.len == 0)
		return CKR_OK;
	c = kyso_cur_make(w.val, w.len);
	while ((r = kyso_tlv_next(&c, &t)) == 1) {
		if (t.tag == 0x70) {
			if (have_cert++)
				return CKR_DEVICE_ERROR;
			cert = t;
		} else if (t.tag == 0x71) {
			if (have_info++ || t.len != 1)
				return CKR_DEVICE_ERROR;
			info = t.val[0];
		}
	}
	if (r < 0 || !have_cert || cert.len == 0)
		return CKR_DEVICE_ERROR;
	if (info & 0x01) {
		/* gzip-compressed (CertInfo CompressionType 1) */
		if (kyso_inflate(cert.val, cert.len, der, derlen,
				 CERT_MAX_INFLATED) != CKR_OK ||
		    *der == NULL || *derlen == 0) {
			free(*der);
			*der = NULL;
			*derlen = 0;
			return CKR_DEVICE_ERROR;
		}
		return CKR_OK;
	}
	*der = malloc(cert.len);
	if (*der == NULL)
		return CKR_HOST_MEMORY;
	memcpy(*der, cert.val, cert.len);
	*derlen = cert.len;
	return CKR_OK;
}

/* The first commonName of a DER Name, for the token label: at most cap-1
 * bytes, cut at a character boundary, control characters replaced. */
static int name_cn(const uint8_t *p, size_t len, char *out, size_t cap)
{
	static const uint8_t cn_oid[] = {0x55, 0x04, 0x03};
	struct kyso_tlv name, rdn, atv, oid, val;
	struct kyso_cur rdns, set, c;
	size_t n, i;

	if (only_tlv(p, len, 0x30, &name) < 0)
		return -1;
	rdns = kyso_cur_make(name.val, name.len);
	while (kyso_tlv_next(&rdns, &rdn) == 1) {
		if (rdn.tag != 0x31)
			return -1;
		set = kyso_cur_make(rdn.val, rdn.len);
		while (kyso_tlv_next(&set, &atv) == 1) {
			if (atv.tag != 0x30)
				return -1;
			c = kyso_cur_make(atv.val, atv.len);
			if (kyso_tlv_next(&c, &oid) != 1 || oid.tag != 0x06 ||
			    kyso_tlv_next(&c, &val) != 1)
				return -1;
			if (oid.len != sizeof(cn_oid) ||
			    memcmp(oid.val, cn_oid, sizeof(cn_oid)) != 0)
				continue;
			/* UTF8String, PrintableString, T61String, IA5String */
			if (val.tag != 0x0C && val.tag != 0x13 &&
			    val.tag != 0x14 && val.tag != 0x16)
				return -1;
			n = val.len < cap - 1 ? val.len : cap - 1;
			if (n < val.len)
				while (n > 0 && (val.val[n] & 0xC0) == 0x80)
					n--;
			for (i = 0; i < n; i++) {
				uint8_t ch = val.val[i];

				if (ch < 0x20 || ch == 0x7F ||
				    (ch >= 0x80 && val.tag != 0x0C))
					ch = '?';
				out[i] = (char)ch;
			}
			out[n] = '\0';
			return n > 0 ? 0 : -1;
		}
	}
	return -1;
}

/* Reads one certificate container and adds its key and certificate.
 * A missing, empty or malformed container adds nothing; only transport
 * failures and running out of memory fail the bind. cn gets the subject's
 * common name when there is one (cn[0] stays '\0' otherwise). */
/* The private key a slot holds, with the slot's rules (SP 800-73-4 part 1,
 * 3.3): who may use it, for what, and whether it needs the PIN each time. */
static void slot_key(const struct piv_slot *s, CK_KEY_TYPE type, CK_ULONG bits,
		     struct kyso_key *key)
{
	memset(key, 0, sizeof(*key));
	key->type = type;
	key->bits = bits;
	key->ref = s->ref;
	key->id[0] = s->id;
	key->idlen = 1;
	snprintf(key->label, sizeof(key->label), "%s", s->label);
	switch (s->kind) {
	case SLOT_AUTH:
		key->can_sign = 1;
		key->can_decrypt = type == CKK_RSA;
		break;
	case SLOT_SIGN:
		key->can_sign = 1;
		key->always_auth = 1;
		break;
	case SLOT_CARDAUTH:
		key->can_sign = 1;
		key->no_pin = 1;
		break;
	case SLOT_KEYMGMT:
	case SLOT_RETIRED:
		/* key establishment keys: RSA key transport (EC: ECDH) */
		key->can_decrypt = type == CKK_RSA;
		break;
	}
}

static CK_RV bind_slot(struct kyso_card *card, struct kyso_token *tok,
		       const struct piv_slot *s, char *cn, size_t cncap)
{
	struct kyso_buf resp = KYSO_BUF_INIT;
	struct kyso_cert_info info;
	struct kyso_key key;
	uint8_t *der = NULL;
	size_t derlen = 0;
	uint16_t sw = 0;
	CK_RV rv;

	memset(&info, 0, sizeof(info));
	resp.max = OBJ_MAX;
	rv = get_data(card, s->container, &resp, &sw);
	if (rv != CKR_OK)
		goto out;
	if (sw != KYSO_SW_OK) {
		if (sw != 0x6A82)
			kyso_dbg("piv: container %06X: %04X",
				 (unsigned)s->container, sw);
		goto out;
	}
	rv = parse_container(resp.p, resp.len, &der, &derlen);
	if (rv == CKR_HOST_MEMORY)
		goto out;
	if (rv != CKR_OK) {
		kyso_err("piv: container %06X is malformed; skipped",
			 (unsigned)s->container);
		rv = CKR_OK;
		goto out;
	}
	if (der == NULL)
		goto out;
	if (kyso_cert_parse(der, derlen, &info) != CKR_OK) {
		kyso_err("piv: certificate in %06X does not parse; skipped",
			 (unsigned)s->container);
		goto out;
	}

	slot_key(s, info.pub.type, info.pub.bits, &key);
	/* key.pub stays empty: the certificate gives the public key. */
	if (key_alg(key.type, key.bits) != 0) {
		rv = kyso_token_add_key(tok, &key, NULL);
		if (rv != CKR_OK)
			goto out;
	} else {
		kyso_err("piv: key in %06X is not a PIV algorithm; certificate "
			 "only",
			 (unsigned)s->container);
	}
	rv = kyso_token_add_cert(tok, key.id, key.idlen, s->label, der, derlen,
				 s->container);
	if (rv != CKR_OK)
		goto out;
	if (cn != NULL && name_cn(info.subject, info.subjectlen, cn, cncap) < 0)
		cn[0] = '\0';
out:
	kyso_cert_info_clear(&info);
	free(der);
	kyso_buf_free(&resp);
	return rv;
}

/* VERIFY without data: the PIN's state without spending a try. Returns
 * the exchange's failure; *status gets what the card said. */
static CK_RV pin_query(struct kyso_card *card, int *tries, CK_RV *status)
{
	uint16_t sw = 0;
	CK_RV rv;

	*tries = -1;
	rv = xmit(card, INS_VERIFY, 0x00, REF_PIN, NULL, 0, KYSO_LE_NONE, 0,
		  NULL, &sw);
	if (rv != CKR_OK)
		return rv;
	*status = kyso_pin_state_sw(sw, tries);
	return CKR_OK;
}

static void set_caps(struct kyso_token *tok, const struct piv_state *st)
{
	static const struct {
		uint8_t alg;
		CK_ULONG bits;
		int rsa;
	} algs[] = {
	    {ALG_RSA1024, 1024, 1}, {ALG_RSA2048, 2048, 1},
	    {ALG_RSA3072, 3072, 1}, {ALG_RSA4096, 4096, 1},
	    {ALG_P256, 256, 0},	    {ALG_P384, 384, 0},
	};
	CK_ULONG rmin = 0, rmax = 0, emin = 0, emax = 0;
	size_t i;

	if (st != NULL && st->algs_known) {
		for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
			CK_ULONG *mn = algs[i].rsa ? &rmin : &emin;
			CK_ULONG *mx = algs[i].rsa ? &rmax : &emax;

			if (!has_alg(st, algs[i].alg))
				continue;
			if (*mn == 0 || algs[i].bits < *mn)
				*mn = algs[i].bits;
			if (algs[i].bits > *mx)
				*mx = algs[i].bits;
		}
	}
	if (rmax == 0 && emax == 0) {
		/* Not told, or nothing usable: what every PIV card does. */
		rmin = 1024;
		rmax = 2048;
		emin = 256;
		emax = 384;
	}
	tok->rsa_min = rmin;
	tok->rsa_max = rmax;
	tok->ec_min = emin;
	tok->ec_max = emax;
	tok->can_decrypt = rmax > 0;
}

static CK_RV piv_bind(struct kyso_card *card, struct kyso_token *tok)
{
	struct kyso_buf resp = KYSO_BUF_INIT;
	struct piv_state *st;
	struct piv_slot s;
	char cn_auth[33] = "", cn_sign[33] = "";
	unsigned oncard = 0, i;
	uint16_t sw = 0;
	int tries = -1;
	CK_RV rv, status = CKR_OK;

	st = state(card);
	if (st == NULL)
		return CKR_HOST_MEMORY;
	card->ext_apdu = kyso_atr_ext_apdu(card->atr, card->atrlen);

	snprintf(tok->manufacturer, sizeof(tok->manufacturer), "PIV");
	snprintf(tok->model, sizeof(tok->model), "PIV II");
	snprintf(tok->serial, sizeof(tok->serial), "00000000");
	tok->flags |= CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED |
		      CKF_TOKEN_INITIALIZED;
	/* SP 800-73-4 PINs are 6 to 8 digits; login still takes 1 to 8 for
	 * cards issued with shorter ones. */
	tok->min_pin = 6;
	tok->max_pin = PIN_MAX;
	set_caps(tok, st);
	tok->can_generate = 1;
	tok->can_write = 1;
	tok->so_pin = 1;

	resp.max = OBJ_MAX;
	rv = get_data(card, TAG_CHUID, &resp, &sw);
	if (rv != CKR_OK)
		goto out;
	if (sw == KYSO_SW_OK && chuid_serial(resp.p, resp.len, tok->serial) < 0)
		kyso_dbg("piv: CHUID gives no serial");

	/* Retired containers are read only when the Key History says they
	 * hold certificates: 20 blind GET DATAs would cost a second. */
	kyso_buf_reset(&resp);
	rv = get_data(card, TAG_KEY_HISTORY, &resp, &sw);
	if (rv != CKR_OK)
		goto out;
	if (sw == KYSO_SW_OK && key_history(resp.p, resp.len, &oncard) < 0) {
		kyso_err("piv: Key History is malformed; retired keys ignored");
		oncard = 0;
	}

	for (i = 0; i < NUM_MAIN; i++) {
		char *cn = NULL;

		if (main_slots[i].kind == SLOT_AUTH)
			cn = cn_auth;
		else if (main_slots[i].kind == SLOT_SIGN)
			cn = cn_sign;
		rv = bind_slot(card, tok, &main_slots[i], cn, sizeof(cn_auth));
		if (rv != CKR_OK)
			goto out;
	}
	for (i = 0; i < oncard; i++) {
		retired_slot(i, &s);
		rv = bind_slot(card, tok, &s, NULL, 0);
		if (rv != CKR_OK)
			goto out;
	}
	snprintf(tok->label, sizeof(tok->label), "%s",
		 cn_auth[0]   ? cn_auth
		 : cn_sign[0] ? cn_sign
			      : "PIV Card");

	rv = pin_query(card, &tries, &status);
	if (rv != CKR_OK)
		goto out;
	if (status == CKR_OK || status == CKR_PIN_LOCKED)
		kyso_token_note_tries(tok, CKU_USER, tries, status);
	else /* no PIV PIN status on this card: the tries stay unknown */
		kyso_dbg("piv: PIN status unknown (%lx)",
			 (unsigned long)status);
out:
	kyso_buf_free(&resp);
	if (rv != CKR_OK)
		piv_unbind(card);
	return rv;
}

/* --- PIN, PUK, management key ------------------------------------------- */

static int pad_pin(const uint8_t *pin, size_t len, uint8_t out[PIN_MAX])
{
	if (len < 1 || len > PIN_MAX || pin == NULL)
		return -1;
	memset(out, 0xFF, PIN_MAX);
	memcpy(out, pin, len);
	return 0;
}

static CK_RV verify_pin(struct kyso_card *card, const uint8_t *pin, size_t len,
			int *tries)
{
	uint8_t padded[PIN_MAX];
	uint16_t sw = 0;
	CK_RV rv;

	if (pad_pin(pin, len, padded) < 0)
		return CKR_PIN_LEN_RANGE;
	rv = xmit(card, INS_VERIFY, 0x00, REF_PIN, padded, sizeof(padded),
		  KYSO_LE_NONE, KYSO_APDU_SECRET, NULL, &sw);
	kyso_wipe(padded, sizeof(padded));
	if (rv != CKR_OK)
		return rv;
	return pin_sw(sw, tries);
}

static int unhex(const uint8_t *s, size_t len, uint8_t *out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		uint8_t c = s[i], v;

		if (c >= '0' && c <= '9')
			v = (uint8_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = (uint8_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = (uint8_t)(c - 'A' + 10);
		else
			return -1;
		if (i & 1)
			out[i / 2] |= v;
		else
			out[i / 2] = (uint8_t)(v << 4);
	}
	return 0;
}

static int has_prefix(const uint8_t *p, size_t len, const char *prefix)
{
	size_t i, n = strlen(prefix);

	if (len < n)
		return 0;
	for (i = 0; i < n; i++) {
		uint8_t c = p[i];

		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		if (c != (uint8_t)prefix[i])
			return 0;
	}
	return 1;
}

/* A refusal during management-key authentication. To the first step, 6A80
 * or 6A86 mean the card's key is of another algorithm; to the second,
 * 6982 means our decryption of its witness was wrong: a wrong key. */
static CK_RV mgmt_sw(uint16_t sw)
{
	switch (sw) {
	case 0x6983:
		return CKR_PIN_LOCKED;
	case 0x6982:
	case 0x6A80:
	case 0x6A86:
	case 0x6300:
		return CKR_PIN_INCORRECT;
	}
	return kyso_sw_error(sw);
}

/* Mutual authentication with the management key (SP 800-73-4 Part 2,
 * appendix A.1): the card proves itself by its witness, we prove
 * ourselves by decrypting it, and the card's answer to our challenge must
 * be our challenge under the key. */
static CK_RV mgmt_authenticate(struct kyso_card *card, struct piv_state *st,
			       enum kyso_cipher cipher, uint8_t alg,
			       const uint8_t *key, size_t keylen)
{
	static const uint8_t ask_witness[] = {0x7C, 0x02, 0x80, 0x00};
	struct kyso_buf resp = KYSO_BUF_INIT;
	uint8_t witness[16], challenge[16], expect[16], cmd[40];
	const uint8_t *v;
	size_t vlen, bs = kyso_cipher_block(cipher), n = 0;
	uint16_t sw = 0;
	CK_RV rv;

	if (bs != 8 && bs != 16)
		return CKR_GENERAL_ERROR;
	resp.max = 256;
	resp.secret = 1;
	rv = xmit(card, INS_GEN_AUTH, alg, REF_MGMT, ask_witness,
		  sizeof(ask_witness), 256, 0, &resp, &sw);
	if (rv != CKR_OK)
		goto out;
	if (sw != KYSO_SW_OK) {
		rv = mgmt_sw(sw);
		goto out;
	}
	if (dyn_auth_item(resp.p, resp.len, 0x80, &v, &vlen) < 0 ||
	    vlen != bs) {
		rv = CKR_DEVICE_ERROR;
		goto out;
	}
	rv = kyso_cipher_ecb(cipher, key, keylen, 0, v, bs, witness);
	if (rv != CKR_OK)
		goto out;
	rv = kyso_random(challenge, bs);
	if (rv != CKR_OK)
		goto out;
	rv = kyso_cipher_ecb(cipher, key, keylen, 1, challenge, bs, expect);
	if (rv != CKR_OK)
		goto out;

	cmd[n++] = 0x7C;
	cmd[n++] = (uint8_t)(4 + 2 * bs);
	cmd[n++] = 0x80;
	cmd[n++] = (uint8_t)bs;
	memcpy(cmd + n, witness, bs);
	n += bs;
	cmd[n++] = 0x81;
	cmd[n++] = (uint8_t)bs;
	memcpy(cmd + n, challenge, bs);
	n += bs;
	kyso_buf_reset(&resp);
	rv = xmit(card, INS_GEN_AUTH, alg, REF_MGMT, cmd, n, 256,
		  KYSO_APDU_SECRET, &resp, &sw);
	if (rv != CKR_OK)
		goto out;
	if (sw != KYSO_SW_OK) {
		rv = mgmt_sw(sw);
		goto out;
	}
	if (dyn_auth_item(resp.p, resp.len, 0x82, &v, &vlen) < 0 ||
	    vlen != bs || kyso_ct_memcmp(v, expect, bs) != 0) {
		kyso_err("piv: the card failed to prove the management key");
		rv = CKR_DEVICE_ERROR;
		goto out;
	}
	st->mgmt_auth = 1;
	forget_puk(st);
out:
	kyso_wipe(witness, sizeof(witness));
	kyso_wipe(challenge, sizeof(challenge));
	kyso_wipe(expect, sizeof(expect));
	kyso_wipe(cmd, sizeof(cmd));
	kyso_buf_free(&resp);
	return rv;
}

static CK_RV so_login(struct kyso_card *card, struct piv_state *st,
		      const uint8_t *cred, size_t len)
{
	static const struct {
		const char *prefix;
		enum kyso_cipher cipher;
		size_t keylen;
		uint8_t alg;
	} kinds[] = {
	    {"3des:", KYSO_DES3, 24, ALG_3DES},
	    {"aes128:", KYSO_AES, 16, ALG_AES128},
	    {"aes192:", KYSO_AES, 24, ALG_AES192},
	    {"aes256:", KYSO_AES, 32, ALG_AES256},
	};
	uint8_t key[32];
	enum kyso_cipher cipher = KYSO_DES3;
	size_t i, keylen = 0;
	uint8_t alg = 0;
	CK_RV rv;

	if (cred == NULL || len == 0)
		return CKR_PIN_LEN_RANGE;
	if (len <= PIN_MAX) {
		/* The PUK: kept for RESET RETRY COUNTER (see the top). */
		forget_puk(st);
		pad_pin(cred, len, st->puk);
		st->have_puk = 1;
		st->mgmt_auth = 0;
		return CKR_OK;
	}
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i].prefix);

		if (has_prefix(cred, len, kinds[i].prefix)) {
			cred += n;
			len -= n;
			cipher = kinds[i].cipher;
			keylen = kinds[i].keylen;
			alg = kinds[i].alg;
			if (len != 2 * keylen)
				return CKR_PIN_LEN_RANGE;
			break;
		}
	}
	if (alg == 0) {
		switch (len) {
		case 48:
			cipher = KYSO_DES3;
			alg = ALG_3DES;
			if (st->algs_known && has_alg(st, ALG_AES192) &&
			    !has_alg(st, ALG_3DES)) {
				cipher = KYSO_AES;
				alg = ALG_AES192;
			}
			break;
		case 32:
			cipher = KYSO_AES;
			alg = ALG_AES128;
			break;
		case 64:
			cipher = KYSO_AES;
			alg = ALG_AES256;
			break;
		default:
			return CKR_PIN_LEN_RANGE;
		}
		keylen = len / 2;
	}
	if (unhex(cred, len, key) < 0) {
		kyso_wipe(key, sizeof(key));
		return CKR_PIN_INVALID;
	}
	rv = mgmt_authenticate(card, st, cipher, alg, key, keylen);
	kyso_wipe(key, sizeof(key));
	return rv;
}

static CK_RV piv_login(struct kyso_card *card, CK_USER_TYPE who,
		       const uint8_t *pin, size_t len, int *tries_left)
{
	struct piv_state *st;
	int tries = -1;
	CK_RV rv;

	switch (who) {
	case CKU_USER:
	case CKU_CONTEXT_SPECIFIC:
		rv = verify_pin(card, pin, len, &tries);
		break;
	case CKU_SO:
		st = state(card);
		rv = st ? so_login(card, st, pin, len) : CKR_HOST_MEMORY;
		break;
	default:
		rv = CKR_USER_TYPE_INVALID;
	}
	if (tries_left != NULL)
		*tries_left = tries;
	return rv;
}

static CK_RV piv_logout(struct kyso_card *card)
{
	struct piv_state *st = card->drvdata;
	uint16_t sw = 0;
	CK_RV rv;

	if (st != NULL) {
		forget_puk(st);
		st->mgmt_auth = 0;
	}
	/* P1 = FF resets the PIN's security status (SP 800-73-4 Part 2,
	 * 3.2.1). The management key's lasts until a reset: nothing to do. */
	rv = xmit(card, INS_VERIFY, 0xFF, REF_PIN, NULL, 0, KYSO_LE_NONE, 0,
		  NULL, &sw);
	if (rv != CKR_OK)
		return rv;
	if (sw != KYSO_SW_OK)
		kyso_err("piv: the card did not reset the PIN status (%04X)",
			 sw);
	return CKR_OK;
}

static CK_RV piv_pin_status(struct kyso_card *card, CK_USER_TYPE who,
			    int *tries_left)
{
	int tries = -1;
	CK_RV rv, status = CKR_OK;

	/* The PUK can only be used, not queried, on a PIV card. */
	if (who != CKU_USER && who != CKU_CONTEXT_SPECIFIC)
		rv = who == CKU_SO ? CKR_FUNCTION_NOT_SUPPORTED
				   : CKR_USER_TYPE_INVALID;
	else if ((rv = pin_query(card, &tries, &status)) == CKR_OK)
		rv = status;
	if (tries_left != NULL)
		*tries_left = tries;
	return rv;
}

/* Sends old||new or puk||new, each padded to 8, as one secret APDU. */
static CK_RV pin_pair(struct kyso_card *card, uint8_t ins, uint8_t ref,
		      const uint8_t first[PIN_MAX], const uint8_t *newp,
		      size_t newlen, int *tries)
{
	uint8_t data[2 * PIN_MAX];
	uint16_t sw = 0;
	CK_RV rv;

	memcpy(data, first, PIN_MAX);
	if (pad_pin(newp, newlen, data + PIN_MAX) < 0) {
		kyso_wipe(data, sizeof(data));
		return CKR_PIN_LEN_RANGE;
	}
	rv = xmit(card, ins, 0x00, ref, data, sizeof(data), KYSO_LE_NONE,
		  KYSO_APDU_SECRET, NULL, &sw);
	kyso_wipe(data, sizeof(data));
	if (rv != CKR_OK)
		return rv;
	return pin_sw(sw, tries);
}

static CK_RV piv_change_pin(struct kyso_card *card, CK_USER_TYPE who,
			    const uint8_t *old, size_t oldlen,
			    const uint8_t *newp, size_t newlen, int *tries_left)
{
	struct piv_state *st = card->drvdata;
	uint8_t first[PIN_MAX];
	int tries = -1;
	uint8_t ref;
	CK_RV rv;

	if (tries_left != NULL)
		*tries_left = -1;
	if (who == CKU_USER || who == CKU_CONTEXT_SPECIFIC)
		ref = REF_PIN;
	else if (who == CKU_SO)
		ref = REF_PUK;
	else
		return CKR_USER_TYPE_INVALID;
	if (pad_pin(old, oldlen, first) < 0 || newlen < 1 || newlen > PIN_MAX)
		return CKR_PIN_LEN_RANGE;
	rv = pin_pair(card, INS_CHANGE_REF, ref, first, newp, newlen, &tries);
	kyso_wipe(first, sizeof(first));
	/* A held PUK that was just changed must follow, or unblock fails. */
	if (rv == CKR_OK && ref == REF_PUK && st != NULL && st->have_puk)
		pad_pin(newp, newlen, st->puk);
	if (tries_left != NULL)
		*tries_left = tries;
	return rv;
}

static CK_RV piv_unblock(struct kyso_card *card, const uint8_t *newp,
			 size_t newlen, int *tries_left)
{
	struct piv_state *st = card->drvdata;
	int tries = -1;
	CK_RV rv;

	if (tries_left != NULL)
		*tries_left = -1;
	if (st == NULL || !st->have_puk)
		return CKR_USER_NOT_LOGGED_IN;
	if (newlen < 1 || newlen > PIN_MAX || newp == NULL)
		return CKR_PIN_LEN_RANGE;
	rv = pin_pair(card, INS_RESET_RETRY, REF_PIN, st->puk, newp, newlen,
		      &tries);
	/* Used once: a wrong PUK is not sent again without a new login. */
	forget_puk(st);
	if (tries_left != NULL)
		*tries_left = tries;
	return rv;
}

/* --- private-key operations -------------------------------------------- */

/* GENERAL AUTHENTICATE 7C { 82 00, 81 in } with the key; *r points into
 * resp at the value of the answer's 7C { 82 r }, checked to be just that. */
static CK_RV key_op(struct kyso_card *card, const struct kyso_key *key,
		    uint8_t alg, const uint8_t *in, size_t inlen, int secret,
		    const uint8_t **r, size_t *rlen, struct kyso_buf *resp)
{
	uint8_t cmd[16 + 512];
	size_t n, h81, inner;
	uint16_t sw = 0;
	CK_RV rv;

	if (inlen > 512)
		return CKR_DATA_LEN_RANGE;
	/* BER length of 81: one byte below 128, else 81 xx or 82 xx xx */
	h81 = inlen < 0x80 ? 2 : inlen < 0x100 ? 3 : 4;
	inner = 2 + h81 + inlen;
	n = put_hdr(cmd, sizeof(cmd), 0x7C, inner);
	if (n == 0)
		return CKR_GENERAL_ERROR;
	cmd[n++] = 0x82;
	cmd[n++] = 0x00;
	h81 = put_hdr(cmd + n, sizeof(cmd) - n, 0x81, inlen);
	if (h81 == 0)
		return CKR_GENERAL_ERROR;
	n += h81;
	memcpy(cmd + n, in, inlen);
	n += inlen;

	resp->max = 2048;
	resp->secret = secret;
	rv = xmit(card, INS_GEN_AUTH, alg, (uint8_t)key->ref, cmd, n,
		  KYSO_LE_MAX, KYSO_APDU_CHAIN, resp, &sw);
	kyso_wipe(cmd, n);
	if (rv != CKR_OK)
		return rv;
	if (sw != KYSO_SW_OK)
		return kyso_sw_error(sw); /* 6982: CKR_USER_NOT_LOGGED_IN */
	if (dyn_auth_item(resp->p, resp->len, 0x82, r, rlen) < 0 ||
	    *rlen == 0) {
		kyso_err("piv: malformed GENERAL AUTHENTICATE answer");
		return CKR_DEVICE_ERROR;
	}
	return CKR_OK;
}

/* An RSA result is a number below the modulus: a card may drop leading
 * zero bytes, never give more than k. */
static CK_RV rsa_result(const uint8_t *r, size_t rlen, size_t k, uint8_t *out)
{
	if (rlen > k) {
		kyso_err("piv: RSA result longer than the modulus");
		return CKR_DEVICE_ERROR;
	}
	memset(out, 0, k - rlen);
	memcpy(out + (k - rlen), r, rlen);
	return CKR_OK;
}

static CK_RV piv_sign(struct kyso_card *card, const struct kyso_key *key,
		      const uint8_t *in, size_t inlen, uint8_t *out,
		      size_t *outlen)
{
	struct kyso_buf resp = KYSO_BUF_INIT;
	uint8_t alg = key_alg(key->type, key->bits);
	const uint8_t *r = NULL;
	size_t rlen = 0, k, need;
	CK_RV rv;

	if (alg == 0)
		return CKR_KEY_SIZE_RANGE;
	k = (key->bits + 7) / 8;
	need = key->type == CKK_EC ? 2 * k : k;
	if (inlen != k)
		return CKR_DATA_LEN_RANGE;
	if (out == NULL) {
		*outlen = need;
		return CKR_OK;
	}
	if (*outlen < need) {
		*outlen = need;
		return CKR_BUFFER_TOO_SMALL;
	}
	rv = key_op(card, key, alg, in, inlen, 0, &r, &rlen, &resp);
	if (rv != CKR_OK)
		goto out;
	if (key->type == CKK_RSA) {
		rv = rsa_result(r, rlen, k, out);
	} else {
		rv = kyso_ecdsa_der_to_raw(r, rlen, k, out);
		if (rv != CKR_OK) {
			kyso_err("piv: malformed ECDSA signature");
			rv = CKR_DEVICE_ERROR;
		}
	}
	if (rv == CKR_OK)
		*outlen = need;
out:
	kyso_buf_free(&resp);
	return rv;
}

static CK_RV piv_decrypt(struct kyso_card *card, const struct kyso_key *key,
			 const uint8_t *in, size_t inlen, uint8_t *out,
			 size_t *outlen)
{
	struct kyso_buf resp = KYSO_BUF_INIT;
	uint8_t alg = key_alg(key->type, key->bits);
	const uint8_t *r = NULL;
	size_t rlen = 0, k;
	CK_RV rv;

	if (key->type != CKK_RSA)
		return CKR_KEY_TYPE_INCONSISTENT;
	if (alg == 0)
		return CKR_KEY_SIZE_RANGE;
	k = key->bits / 8;
	if (inlen != k)
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	if (out == NULL) {
		*outlen = k;
		return CKR_OK;
	}
	if (*outlen < k) {
		*outlen = k;
		return CKR_BUFFER_TOO_SMALL;
	}
	rv = key_op(card, key, alg, in, inlen, 1, &r, &rlen, &resp);
	if (rv == CKR_OK)
		rv = rsa_result(r, rlen, k, out);
	if (rv == CKR_OK)
		*outlen = k;
	kyso_buf_free(&resp);
	return rv;
}

/* --- administration (management key) ---------------------------------- */

/* Whether the card still takes the management key; a 6982 answer tells the
 * key's status was lost (a reset, another program). */
static CK_RV admin_sw(struct piv_state *st, uint16_t sw)
{
	if (sw == KYSO_SW_OK)
		return CKR_OK;
	if (sw == 0x6982) {
		st->mgmt_auth = 0;
		return CKR_USER_NOT_LOGGED_IN;
	}
	return kyso_sw_error(sw); /* 6A84: CKR_DEVICE_MEMORY */
}

static const uint8_t *strip_zeros(const uint8_t *p, size_t *len)
{
	while (*len > 0 && *p == 0) {
		p++;
		(*len)--;
	}
	return p;
}

/* 7F49 { 81 n, 82 e } or 7F49 { 86 point }, nothing else. */
static CK_RV parse_genkey(const uint8_t *p, size_t len, CK_KEY_TYPE type,
			  CK_ULONG bits, struct kyso_pubkey *pub)
{
	struct kyso_tlv w, t, n = {0}, e = {0}, pt = {0};
	struct kyso_cur c;
	const uint8_t *nv, *ev;
	size_t nlen, elen, cb = (bits + 7) / 8, nbits;
	int r, hn = 0, he = 0, hp = 0;

	if (only_tlv(p, len, 0x7F49, &w) < 0)
		return CKR_DEVICE_ERROR;
	c = kyso_cur_make(w.val, w.len);
	while ((r = kyso_tlv_next(&c, &t)) == 1) {
		if (t.tag == 0x81 && !hn++)
			n = t;
		else if (t.tag == 0x82 && !he++)
			e = t;
		else if (t.tag == 0x86 && !hp++)
			pt = t;
		else
			return CKR_DEVICE_ERROR;
	}
	if (r < 0)
		return CKR_DEVICE_ERROR;
	if (type == CKK_RSA) {
		if (!hn || !he || hp)
			return CKR_DEVICE_ERROR;
		nlen = n.len;
		nv = strip_zeros(n.val, &nlen);
		elen = e.len;
		ev = strip_zeros(e.val, &elen);
		if (nlen == 0 || elen == 0 || elen > 8)
			return CKR_DEVICE_ERROR;
		nbits = (nlen - 1) * 8;
		for (r = nv[0]; r; r >>= 1)
			nbits++;
		if (nbits != bits)
			return CKR_DEVICE_ERROR;
		return kyso_pubkey_rsa(pub, nv, nlen, ev, elen);
	}
	if (!hp || hn || he || pt.len != 1 + 2 * cb || pt.val[0] != 0x04)
		return CKR_DEVICE_ERROR;
	return kyso_pubkey_ec(pub, bits, pt.val, pt.len);
}

static CK_RV piv_generate(struct kyso_card *card, struct kyso_token *tok,
			  struct kyso_keygen *req, struct kyso_pubkey *pub)
{
	struct piv_state *st = card->drvdata;
	struct kyso_buf resp = KYSO_BUF_INIT;
	struct piv_slot s;
	uint8_t cmd[5], alg;
	struct kyso_key key;
	uint16_t sw = 0;
	CK_RV rv;

	if (st == NULL || !st->mgmt_auth)
		return CKR_USER_NOT_LOGGED_IN;
	/* The slot: named by reference, else by CKA_ID, else 9A. An id that
	 * names no PIV slot is refused rather than landing in 9A. */
	if (req->ref) {
		if (slot_by_ref(req->ref, &s) < 0)
			return CKR_ATTRIBUTE_VALUE_INVALID;
	} else if (req->idlen) {
		if (req->idlen != 1 || slot_by_id(req->id[0], &s) < 0)
			return CKR_ATTRIBUTE_VALUE_INVALID;
	} else if (slot_by_ref(0x9A, &s) < 0) {
		return CKR_GENERAL_ERROR;
	}
	if (req->type != CKK_RSA && req->type != CKK_EC)
		return CKR_KEY_TYPE_INCONSISTENT;
	alg = key_alg(req->type, req->bits);
	if (alg == 0)
		return CKR_KEY_SIZE_RANGE;
	cmd[0] = 0xAC;
	cmd[1] = 0x03;
	cmd[2] = 0x80;
	cmd[3] = 0x01;
	cmd[4] = alg;
	resp.max = 2048;
	rv = xmit(card, INS_GEN_ASYM, 0x00, s.ref, cmd, sizeof(cmd),
		  KYSO_LE_MAX, 0, &resp, &sw);
	if (rv != CKR_OK)
		goto out;
	rv = admin_sw(st, sw);
	if (rv != CKR_OK)
		goto out;
	rv = parse_genkey(resp.p, resp.len, req->type, req->bits, pub);
	if (rv == CKR_DEVICE_ERROR)
		kyso_err("piv: malformed public key from GENERATE");
	if (rv != CKR_OK)
		goto out;
	req->ref = s.ref;
	req->id[0] = s.id;
	req->idlen = 1;
	snprintf(req->label, sizeof(req->label), "%s", s.label);
	/* The new key replaces whatever the token showed for this slot. Its
	 * label stays the slot's: certificate, public and private key of a
	 * slot share one label, whatever label the template asked for. */
	if (tok != NULL) {
		slot_key(&s, req->type, pub->bits, &key);
		key.pub = *pub;
		rv = kyso_token_add_key(tok, &key, NULL);
	}
out:
	kyso_buf_free(&resp);
	return rv;
}

/* PUT DATA 5C 03 <container> 53 { body }. */
static CK_RV put_container(struct kyso_card *card, struct piv_state *st,
			   uint32_t tag, const uint8_t *body, size_t bodylen)
{
	uint8_t *cmd;
	size_t n = 0, cap = bodylen + 16;
	uint16_t sw = 0;
	CK_RV rv;

	cmd = malloc(cap);
	if (cmd == NULL)
		return CKR_HOST_MEMORY;
	cmd[n++] = 0x5C;
	cmd[n++] = 0x03;
	cmd[n++] = (uint8_t)(tag >> 16);
	cmd[n++] = (uint8_t)(tag >> 8);
	cmd[n++] = (uint8_t)tag;
	n += put_hdr(cmd + n, cap - n, 0x53, bodylen);
	if (bodylen > 0)
		memcpy(cmd + n, body, bodylen);
	n += bodylen;
	rv = xmit(card, INS_PUT_DATA, 0x3F, 0xFF, cmd, n, KYSO_LE_NONE,
		  KYSO_APDU_CHAIN, NULL, &sw);
	free(cmd);
	if (rv != CKR_OK)
		return rv;
	return admin_sw(st, sw);
}

static CK_RV piv_write_cert(struct kyso_card *card, struct kyso_token *tok,
			    const uint8_t *id, size_t idlen, const uint8_t *der,
			    size_t len, uint32_t *drv_ref)
{
	struct piv_state *st = card->drvdata;
	struct kyso_key *key;
	struct piv_slot s;
	uint8_t *body;
	size_t n = 0;
	CK_RV rv;

	if (st == NULL || !st->mgmt_auth)
		return CKR_USER_NOT_LOGGED_IN;
	key = tok ? kyso_token_key_by_id(tok, id, idlen) : NULL;
	if (key != NULL) {
		if (slot_by_ref(key->ref, &s) < 0)
			return CKR_ATTRIBUTE_VALUE_INVALID;
	} else if (idlen != 1 || slot_by_id(id[0], &s) < 0) {
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if (der == NULL || len == 0 || len > CERT_MAX_WRITE)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	body = malloc(len + 16);
	if (body == NULL)
		return CKR_HOST_MEMORY;
	n += put_hdr(body, len + 16, 0x70, len);
	memcpy(body + n, der, len);
	n += len;
	body[n++] = 0x71; /* CertInfo: not compressed */
	body[n++] = 0x01;
	body[n++] = 0x00;
	body[n++] = 0xFE; /* error detection code, empty */
	body[n++] = 0x00;
	rv = put_container(card, st, s.container, body, n);
	free(body);
	if (rv == CKR_OK && drv_ref != NULL)
		*drv_ref = s.container;
	return rv;
}

static CK_RV piv_delete_object(struct kyso_card *card, struct kyso_token *tok,
			       const struct kyso_object *obj)
{
	struct piv_state *st = card->drvdata;
	struct piv_slot s;

	(void)tok;
	/* Keys cannot be deleted through the PIV card edge; only replaced. */
	if (obj->cls != CKO_CERTIFICATE ||
	    slot_by_container(obj->drv_ref, &s) < 0)
		return CKR_ACTION_PROHIBITED;
	if (st == NULL || !st->mgmt_auth)
		return CKR_USER_NOT_LOGGED_IN;
	return put_container(card, st, s.container, NULL, 0);
}

const struct kyso_driver kyso_driver_piv = {
    .name = "piv",
    .match = piv_match,
    .bind = piv_bind,
    .unbind = piv_unbind,
    .select = piv_select,
    .login = piv_login,
    .logout = piv_logout,
    .pin_status = piv_pin_status,
    .change_pin = piv_change_pin,
    .unblock = piv_unblock,
    .sign = piv_sign,
    .decrypt = piv_decrypt,
    .generate = piv_generate,
    .write_cert = piv_write_cert,
    .delete_object = piv_delete_object,
};
