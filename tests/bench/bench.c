/* bench: one benchmark scenario through a PKCS#11 module (kyso's, OpenSC's,
 * any) against a kyso-vcard PIV card, run inside tests/with-card. APDUs and
 * bytes are the card's own counters (KYSO_VCARD_STATS), read before and after
 * the measured part; time is CLOCK_MONOTONIC around that part only. Every
 * signature is checked with openssl against the public keys the card gave at
 * key generation, so a fast wrong answer fails the run.
 *
 * usage: bench [OPTION...] MODULE SCENARIO
 *   SCENARIO  cold | poll | sign-rsa | sign-pss | sign-ecdsa | sign-p384 |
 *             threads | readers   (see the table below)
 *   --name NAME          module name for the output line (default: MODULE)
 *   --pin PIN            user PIN (default 123456)
 *   --pubdir DIR         pub-9a.pem, pub-9c.pem, pub-9e.pem (from
 *                        tests/integration/piv-provision.sh); needed by
 *                        every scenario that signs
 *   --stats FILE         the card's counters (default $KYSO_VCARD_STATS)
 *   --count N            signatures (sign-*), polling rounds (poll)
 *   --threads N          threads (threads; default 4)
 *   --per-thread N       signatures per thread (default 25)
 *   --apdu-delay-ms N    the card's injected latencies, only to print the
 *   --privop-delay-ms N  time floor (default 10 and 150)
 *
 * Output: one line "RESULT key=value ..." (scenario, module, apdus,
 * cmd_bytes host->card, resp_bytes card->host, privops, ms, min_apdus,
 * min_ms, ops, verified); errors on stderr. Exit 0 only when every call
 * succeeded and every signature verified. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "kyso/pkcs11.h"

/* --- the protocol minimum ----------------------------------------------
 *
 * What any PIV module must send for each scenario, on this card (SP 800-73-4
 * Part 2; the card's ATR and SELECT answer offer extended Lc/Le, so one GET
 * DATA returns a whole container and one GENERAL AUTHENTICATE carries a
 * 2048-bit operand and its result). No host-side cache across processes:
 * every process starts cold, as both modules do here.
 *
 * The card is shared. Between two PC/SC transactions of a module, any other
 * program may select another application on the card, and PC/SC tells the
 * module nothing: no event, no counter (the reader state's event counter
 * counts insertions and removals only). A VERIFY with P2 80 sent to another
 * application is not harmless: 80 is ISO 7816-4's first application-
 * specific PIN reference, so another application may count it as a wrong
 * try of its own PIN, and it would receive the PIV PIN in clear. So every
 * PIN entry that starts a new transaction needs SELECT PIV before its
 * VERIFY; nothing cheaper can tell the module which application is
 * selected, since any probe is an APDU too. That SELECT is counted in the
 * minimum. Commands without a PIN need no SELECT: sent to another
 * application they are refused harmlessly, and the module selects and
 * repeats (tests/hardening/sharing.c checks both). A module that could
 * assume the card is its own would need one APDU less per PIN entry: 9 for
 * scenario 1 and 200 for 3c; README.md gives those figures too.
 *
 * 1 cold start (dlopen .. first C_Sign with 9A)       10 + retired certs
 *   SELECT PIV                               1  the card comes from power-on;
 *                                               the answer also lists the
 *                                               algorithms (mechanism sizes)
 *   GET DATA CHUID                           1  the token serial (GUID or
 *                                               FASC-N): the token's identity
 *                                               in CK_TOKEN_INFO
 *   GET DATA 9A, 9C, 9D, 9E containers       4  PIV has no directory: which
 *                                               keys exist, their type and
 *                                               size, are known only from the
 *                                               certificates; "find all
 *                                               objects" must list them all
 *   GET DATA Key History                     1  whether retired containers
 *                                               hold certificates (else 20
 *                                               blind GET DATAs)
 *   + one GET DATA per retired certificate      none on this card
 *   SELECT PIV + VERIFY PIN (C_Login)        2  a PIN entry (see above)
 *   GENERAL AUTHENTICATE (C_Sign)            1
 *   Not counted: VERIFY without data for the tries left (the PIN flags can
 *   be learnt at the first VERIFY), GET RESPONSE (extended Le).
 * 2 polling (C_GetSlotInfo, C_GetTokenInfo, C_GetSessionInfo): 0. All three
 *   answer from what the module already knows and from PC/SC's reader
 *   status, which tells card presence and insertions without an APDU.
 * 3 steady signing, per signature, login done:
 *   RSA-2048 PKCS#1 v1.5 (SHA-256 hashed on the host, 9A)   1 GA
 *   RSA-PSS (encoded on the host, raw RSA on the card, 9A)  1 GA
 *   ECDSA P-256 with 9C: its PIN policy is "always" (CKA_ALWAYS_AUTHENTICATE,
 *   SP 800-73-4 Part 1 3.3.2): the card takes one private-key operation per
 *   VERIFY, so C_Login(CKU_CONTEXT_SPECIFIC) before each signature is part of
 *   the scenario, a PIN entry each time          1 SELECT + 1 VERIFY + 1 GA
 *   ECDSA P-384 with 9E (card authentication, no PIN)       1 GA
 * 4 threads signing concurrently (RSA 9A): 1 GA per signature; the card
 *   does one at a time, so the time floor is the same as serial signing.
 * 5 C_Initialize + C_GetSlotList, 2 readers, one card: 0. Reader names and
 *   card presence come from PC/SC; "token present" needs no APDU, binding
 *   can wait for the first call that needs the token.
 */

#define DEFAULT_PIN "123456"

enum scenario {
	COLD,
	POLL,
	SIGN_RSA,
	SIGN_PSS,
	SIGN_ECDSA,
	SIGN_P384,
	THREADS,
	READERS
};

static const struct {
	const char *name;
	enum scenario sc;
} scenarios[] = {
    {"cold", COLD},
    {"poll", POLL},
    {"sign-rsa", SIGN_RSA},
    {"sign-pss", SIGN_PSS},
    {"sign-ecdsa", SIGN_ECDSA},
    {"sign-p384", SIGN_P384},
    {"threads", THREADS},
    {"readers", READERS},
};

/* The four kinds of signature: mechanism, key id, public key file. */
enum sigkind { SIG_RSA, SIG_PSS, SIG_ECDSA256, SIG_ECDSA384 };

struct opts {
	const char *module, *name, *pin, *pubdir, *stats, *scen;
	enum scenario sc;
	long count, threads, per_thread;
	long apdu_delay, privop_delay;
};

static struct opts o;
static CK_FUNCTION_LIST_PTR f;
static void *dl;

/* --- errors ---------------------------------------------------------- */

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

#define CK(call)                                                               \
	do {                                                                   \
		CK_RV rv_ = (call);                                            \
		if (rv_ != CKR_OK)                                             \
			die("%s: %s: rv 0x%lx", o.name, #call,                 \
			    (unsigned long)rv_);                               \
	} while (0)

/* --- time and the card's counters ------------------------------------ */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct stats {
	unsigned long apdus, bytes_in, bytes_out, privops;
};

static int stats_read_once(struct stats *s)
{
	char line[128];
	FILE *fp = fopen(o.stats, "r");

	memset(s, 0, sizeof(*s));
	if (!fp)
		return -1;
	while (fgets(line, sizeof(line), fp)) {
		unsigned long v;
		char name[32];

		if (sscanf(line, "%31[a-z_]=%lu", name, &v) != 2)
			continue;
		if (!strcmp(name, "apdus"))
			s->apdus = v;
		else if (!strcmp(name, "bytes_in"))
			s->bytes_in = v;
		else if (!strcmp(name, "bytes_out"))
			s->bytes_out = v;
		else if (!strcmp(name, "privops"))
			s->privops = v;
	}
	fclose(fp);
	return 0;
}

/* The card rewrites the file just after it sent its answer: the host can be
 * a step ahead. Read until two reads 10 ms apart agree. */
static void stats_read(struct stats *s)
{
	struct stats t;
	int i;

	if (stats_read_once(s) < 0)
		die("cannot read the card's counters %s: %s", o.stats,
		    strerror(errno));
	for (i = 0; i < 100; i++) {
		usleep(10000);
		if (stats_read_once(&t) < 0)
			die("cannot read %s", o.stats);
		if (!memcmp(&t, s, sizeof(t)))
			return;
		*s = t;
	}
	die("the card's counters do not settle: is something else using it?");
}

/* --- signature checks (openssl, keys from the card's key generation) -- */

static EVP_PKEY *load_pub(const char *slot)
{
	char path[4096];
	EVP_PKEY *pk;
	FILE *fp;

	if (!o.pubdir)
		die("--pubdir is needed to check signatures");
	snprintf(path, sizeof(path), "%s/pub-%s.pem", o.pubdir, slot);
	fp = fopen(path, "r");
	if (!fp)
		die("%s: %s", path, strerror(errno));
	pk = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
	fclose(fp);
	if (!pk)
		die("%s: not a PEM public key", path);
	return pk;
}

static int verify_rsa(EVP_PKEY *pk, int pss, const uint8_t *msg, size_t mlen,
		      const uint8_t *sig, size_t slen)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	int ok = 0;

	if (md && EVP_DigestVerifyInit(md, &pc, EVP_sha256(), NULL, pk) == 1 &&
	    (!pss ||
	     (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
	      EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, 32) == 1 &&
	      EVP_PKEY_CTX_set_rsa_mgf1_md(pc, EVP_sha256()) == 1)))
		ok = EVP_DigestVerify(md, sig, slen, msg, mlen) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

/* A PKCS#11 ECDSA signature is r||s; openssl wants DER. */
static int verify_ecdsa(EVP_PKEY *pk, const uint8_t *hash, size_t hlen,
			const uint8_t *sig, size_t slen)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r, *s;
	uint8_t *der = NULL;
	EVP_PKEY_CTX *pc = NULL;
	int derlen, ok = 0;

	if (!es || slen == 0 || slen % 2)
		goto out;
	r = BN_bin2bn(sig, (int)(slen / 2), NULL);
	s = BN_bin2bn(sig + slen / 2, (int)(slen / 2), NULL);
	if (!r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		goto out;
	}
	derlen = i2d_ECDSA_SIG(es, &der);
	if (derlen <= 0)
		goto out;
	pc = EVP_PKEY_CTX_new(pk, NULL);
	ok = pc && EVP_PKEY_verify_init(pc) == 1 &&
	     EVP_PKEY_verify(pc, der, (size_t)derlen, hash, hlen) == 1;
out:
	EVP_PKEY_CTX_free(pc);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	return ok;
}

/* --- PKCS#11 helpers ------------------------------------------------- */

static void load_module(void)
{
	CK_RV (*gfl)(CK_FUNCTION_LIST_PTR_PTR);

	dl = dlopen(o.module, RTLD_NOW | RTLD_LOCAL);
	if (!dl)
		die("dlopen %s: %s", o.module, dlerror());
	*(void **)&gfl = dlsym(dl, "C_GetFunctionList");
	if (!gfl)
		die("%s has no C_GetFunctionList", o.module);
	CK(gfl(&f));
}

static void initialize(void)
{
	CK_C_INITIALIZE_ARGS args;

	/* As NSS does: the module may use the OS's threads and locks. */
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	CK(f->C_Initialize(&args));
}

/* The first slot with a token. */
static CK_SLOT_ID first_token_slot(void)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n = 0;

	CK(f->C_GetSlotList(CK_TRUE, NULL, &n));
	if (n == 0)
		die("%s: no slot with a token", o.name);
	if (n > 16)
		n = 16;
	CK(f->C_GetSlotList(CK_TRUE, slots, &n));
	return slots[0];
}

static CK_OBJECT_HANDLE find_key(CK_SESSION_HANDLE s, uint8_t id)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[] = {
	    {CKA_CLASS, &cls, sizeof(cls)},
	    {CKA_ID, &id, 1},
	};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG n = 0;

	CK(f->C_FindObjectsInit(s, t, 2));
	CK(f->C_FindObjects(s, &h, 1, &n));
	CK(f->C_FindObjectsFinal(s));
	if (n != 1)
		die("%s: no private key with CKA_ID %02x", o.name, id);
	return h;
}

static int always_auth(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = {CKA_ALWAYS_AUTHENTICATE, &v, sizeof(v)};

	/* Not knowing the attribute means not needing it. */
	if (f->C_GetAttributeValue(s, k, &a, 1) != CKR_OK)
		return 0;
	return v == CK_TRUE;
}

/* Lists every object and reads what a consumer's object list shows.
 * Returns the number of objects; *retired counts certificates outside the
 * four main slots (CKA_ID 01..04). */
static unsigned find_all(CK_SESSION_HANDLE s, unsigned *retired)
{
	CK_OBJECT_HANDLE h[64];
	CK_ULONG n = 0, i;
	unsigned total = 0;

	*retired = 0;
	CK(f->C_FindObjectsInit(s, NULL, 0));
	do {
		CK(f->C_FindObjects(s, h, 64, &n));
		for (i = 0; i < n; i++) {
			CK_OBJECT_CLASS cls = 0;
			uint8_t id[64];
			char label[256];
			CK_ATTRIBUTE a[] = {
			    {CKA_CLASS, &cls, sizeof(cls)},
			    {CKA_ID, id, sizeof(id)},
			    {CKA_LABEL, label, sizeof(label)},
			};
			CK_RV rv = f->C_GetAttributeValue(s, h[i], a, 3);

			if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
			    rv != CKR_ATTRIBUTE_SENSITIVE &&
			    rv != CKR_BUFFER_TOO_SMALL)
				die("%s: C_GetAttributeValue: rv 0x%lx", o.name,
				    (unsigned long)rv);
			if (cls == CKO_CERTIFICATE && a[1].ulValueLen == 1 &&
			    (id[0] < 0x01 || id[0] > 0x04))
				(*retired)++;
		}
		total += n;
	} while (n > 0);
	CK(f->C_FindObjectsFinal(s));
	return total;
}

static void login(CK_SESSION_HANDLE s, CK_USER_TYPE who)
{
	CK_RV rv =
	    f->C_Login(s, who, (CK_UTF8CHAR_PTR)o.pin, (CK_ULONG)strlen(o.pin));

	if (rv != CKR_OK &&
	    !(who == CKU_USER && rv == CKR_USER_ALREADY_LOGGED_IN))
		die("%s: C_Login(%lu): rv 0x%lx", o.name, (unsigned long)who,
		    (unsigned long)rv);
}

/* --- signing ----------------------------------------------------------- */

struct signer {
	enum sigkind kind;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	int ctx_login; /* C_Login(CKU_CONTEXT_SPECIFIC) before each */
	EVP_PKEY *pub;
	unsigned long logins, signed_ok, verified;
	CK_RV err;
	const char *errcall;
};

static const struct {
	uint8_t id;
	const char *slot;
	const char *what;
} kinds[] = {
    [SIG_RSA] = {0x01, "9a", "RSA-2048 PKCS#1 SHA-256, 9A"},
    [SIG_PSS] = {0x01, "9a", "RSA-2048 PSS SHA-256, 9A"},
    [SIG_ECDSA256] = {0x02, "9c", "ECDSA P-256, 9C"},
    [SIG_ECDSA384] = {0x04, "9e", "ECDSA P-384, 9E"},
};

/* Numbers every message, across threads: no two signatures sign the same. */
static unsigned long msg_seq;

static void signer_init(struct signer *g, enum sigkind kind,
			CK_SESSION_HANDLE s)
{
	memset(g, 0, sizeof(*g));
	g->kind = kind;
	g->s = s;
	g->key = find_key(s, kinds[kind].id);
	g->ctx_login = always_auth(s, g->key);
	g->pub = load_pub(kinds[kind].slot);
}

/* One signature of a message no earlier call has seen, checked. Thread-safe
 * for distinct signers. Returns 0 or -1 (g->err says why). */
static int sign_one(struct signer *g, unsigned tag)
{
	CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA256, CKG_MGF1_SHA256, 32};
	CK_MECHANISM m = {0, NULL, 0};
	uint8_t msg[96], hash[EVP_MAX_MD_SIZE], sig[1024];
	unsigned hlen = 0;
	const uint8_t *in = msg;
	CK_ULONG inlen, siglen = sizeof(sig);
	CK_RV rv;
	int ok;

	inlen = (CK_ULONG)snprintf(
	    (char *)msg, sizeof(msg), "kyso bench %u %lu %ld", tag,
	    __atomic_fetch_add(&msg_seq, 1, __ATOMIC_RELAXED), (long)getpid());
	switch (g->kind) {
	case SIG_RSA:
		m.mechanism = CKM_SHA256_RSA_PKCS;
		break;
	case SIG_PSS:
		m.mechanism = CKM_SHA256_RSA_PKCS_PSS;
		m.pParameter = &pss;
		m.ulParameterLen = sizeof(pss);
		break;
	case SIG_ECDSA256:
	case SIG_ECDSA384:
		/* CKM_ECDSA over a host hash, as NSS and OpenSSL do */
		m.mechanism = CKM_ECDSA;
		EVP_Digest(msg, inlen, hash, &hlen,
			   g->kind == SIG_ECDSA256 ? EVP_sha256()
						   : EVP_sha384(),
			   NULL);
		in = hash;
		inlen = hlen;
		break;
	}
	rv = f->C_SignInit(g->s, &m, g->key);
	if (rv != CKR_OK) {
		g->errcall = "C_SignInit";
		goto fail;
	}
	if (g->ctx_login) {
		rv =
		    f->C_Login(g->s, CKU_CONTEXT_SPECIFIC,
			       (CK_UTF8CHAR_PTR)o.pin, (CK_ULONG)strlen(o.pin));
		if (rv != CKR_OK) {
			g->errcall = "C_Login(CKU_CONTEXT_SPECIFIC)";
			goto fail;
		}
		g->logins++;
	}
	rv = f->C_Sign(g->s, (CK_BYTE_PTR)in, inlen, sig, &siglen);
	if (rv != CKR_OK) {
		g->errcall = "C_Sign";
		goto fail;
	}
	g->signed_ok++;
	if (g->kind == SIG_RSA || g->kind == SIG_PSS)
		ok = verify_rsa(g->pub, g->kind == SIG_PSS, msg, inlen, sig,
				siglen);
	else
		ok = verify_ecdsa(g->pub, hash, hlen, sig, siglen);
	if (!ok) {
		g->errcall = "signature check (openssl)";
		rv = CKR_SIGNATURE_INVALID;
		goto fail;
	}
	g->verified++;
	return 0;
fail:
	g->err = rv;
	return -1;
}

static void sign_or_die(struct signer *g, unsigned tag)
{
	if (sign_one(g, tag) < 0)
		die("%s: %s (%s): rv 0x%lx", o.name, g->errcall,
		    kinds[g->kind].what, (unsigned long)g->err);
}

/* --- output -------------------------------------------------------------- */

static void report(const struct stats *a, const struct stats *b, double ms,
		   unsigned long min_apdus, unsigned long min_privops,
		   unsigned long ops, unsigned long verified, const char *extra)
{
	printf("RESULT scenario=%s module=%s apdus=%lu cmd_bytes=%lu "
	       "resp_bytes=%lu privops=%lu ms=%.1f min_apdus=%lu min_ms=%lu "
	       "ops=%lu verified=%lu%s%s\n",
	       o.scen, o.name, b->apdus - a->apdus, b->bytes_in - a->bytes_in,
	       b->bytes_out - a->bytes_out, b->privops - a->privops, ms,
	       min_apdus,
	       min_apdus * (unsigned long)o.apdu_delay +
		   min_privops * (unsigned long)o.privop_delay,
	       ops, verified, extra ? " " : "", extra ? extra : "");
	fflush(stdout);
}

static void finish(void)
{
	CK(f->C_Finalize(NULL));
	/* Not dlclose'd: a module's thread-local destructors may outlive it. */
}

/* --- scenarios ----------------------------------------------------------- */

static void run_cold(void)
{
	static const char msg[] = "kyso bench: first signature";
	CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
	struct stats a, b;
	CK_SLOT_ID slot;
	CK_TOKEN_INFO ti;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	uint8_t sig[512];
	CK_ULONG siglen = sizeof(sig);
	EVP_PKEY *pub;
	unsigned nobj, retired;
	unsigned long min;
	int ctx;
	double t0, t1;
	char extra[64];

	stats_read(&a);
	t0 = now_ms();
	load_module();
	initialize();
	slot = first_token_slot();
	CK(f->C_GetTokenInfo(slot, &ti));
	CK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
	nobj = find_all(s, &retired);
	login(s, CKU_USER);
	key = find_key(s, 0x01);
	ctx = always_auth(s, key);
	CK(f->C_SignInit(s, &m, key));
	if (ctx)
		login(s, CKU_CONTEXT_SPECIFIC);
	CK(f->C_Sign(s, (CK_BYTE_PTR)msg, sizeof(msg) - 1, sig, &siglen));
	t1 = now_ms();
	stats_read(&b);

	pub = load_pub("9a");
	if (!verify_rsa(pub, 0, (const uint8_t *)msg, sizeof(msg) - 1, sig,
			siglen))
		die("%s: the first signature does not verify", o.name);
	EVP_PKEY_free(pub);
	/* SELECT, CHUID, 4 containers, Key History, retired certificates,
	 * SELECT + VERIFY, GENERAL AUTHENTICATE, and SELECT + VERIFY again
	 * if the key wants its PIN at each use: see the top. */
	min = 1 + 1 + 4 + 1 + retired + 2 + 1 + (ctx ? 2 : 0);
	snprintf(extra, sizeof(extra), "objects=%u", nobj);
	report(&a, &b, t1 - t0, min, 1, 1, 1, extra);
	finish();
}

static void run_poll(void)
{
	struct stats a, b;
	CK_SLOT_ID slot;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_SESSION_INFO sei;
	CK_SESSION_HANDLE s;
	double t0, t1;
	long i;

	load_module();
	initialize();
	slot = first_token_slot();
	CK(f->C_GetTokenInfo(slot, &ti));
	CK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
	stats_read(&a);
	t0 = now_ms();
	for (i = 0; i < o.count; i++) {
		CK(f->C_GetSlotInfo(slot, &si));
		CK(f->C_GetTokenInfo(slot, &ti));
		CK(f->C_GetSessionInfo(s, &sei));
	}
	t1 = now_ms();
	stats_read(&b);
	if (!(si.flags & CKF_TOKEN_PRESENT))
		die("%s: the token vanished while polling", o.name);
	report(&a, &b, t1 - t0, 0, 0, (unsigned long)o.count * 3, 0, NULL);
	finish();
}

static void run_sign(enum sigkind kind)
{
	struct stats a, b;
	struct signer g;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s;
	double t0, t1;
	long i;
	char extra[96];

	load_module();
	initialize();
	slot = first_token_slot();
	CK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
	login(s, CKU_USER);
	signer_init(&g, kind, s);
	/* One untimed signature: first-use costs belong to "cold". */
	sign_or_die(&g, 0);
	g.signed_ok = g.verified = g.logins = 0;
	stats_read(&a);
	t0 = now_ms();
	for (i = 0; i < o.count; i++)
		sign_or_die(&g, 1);
	t1 = now_ms();
	stats_read(&b);
	snprintf(extra, sizeof(extra), "context_logins=%lu", g.logins);
	/* A PIN entry is SELECT + VERIFY: see the top. */
	report(&a, &b, t1 - t0, (unsigned long)o.count * (g.ctx_login ? 3 : 1),
	       (unsigned long)o.count, g.signed_ok, g.verified, extra);
	EVP_PKEY_free(g.pub);
	finish();
}

static void *thread_main(void *arg)
{
	struct signer *g = arg;
	long i;

	for (i = 0; i < o.per_thread; i++)
		if (sign_one(g, 2) < 0)
			break;
	return NULL;
}

static void run_threads(void)
{
	struct stats a, b;
	struct signer *g;
	pthread_t *th;
	CK_SLOT_ID slot;
	CK_SESSION_HANDLE s0;
	unsigned long done = 0, ok = 0;
	double t0, t1;
	long i;
	int bad = 0;

	g = calloc((size_t)o.threads, sizeof(*g));
	th = calloc((size_t)o.threads, sizeof(*th));
	if (!g || !th)
		die("out of memory");
	load_module();
	initialize();
	slot = first_token_slot();
	CK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s0));
	login(s0, CKU_USER);
	for (i = 0; i < o.threads; i++) {
		CK_SESSION_HANDLE s;

		CK(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
		signer_init(&g[i], SIG_RSA, s);
	}
	sign_or_die(&g[0], 0);
	g[0].signed_ok = g[0].verified = 0;
	stats_read(&a);
	t0 = now_ms();
	for (i = 0; i < o.threads; i++)
		if (pthread_create(&th[i], NULL, thread_main, &g[i]) != 0)
			die("pthread_create failed");
	for (i = 0; i < o.threads; i++)
		pthread_join(th[i], NULL);
	t1 = now_ms();
	stats_read(&b);
	for (i = 0; i < o.threads; i++) {
		done += g[i].signed_ok;
		ok += g[i].verified;
		if (g[i].err != CKR_OK) {
			fprintf(stderr, "bench: %s: thread %ld: %s: rv 0x%lx\n",
				o.name, i, g[i].errcall,
				(unsigned long)g[i].err);
			bad = 1;
		}
		EVP_PKEY_free(g[i].pub);
	}
	report(&a, &b, t1 - t0, (unsigned long)(o.threads * o.per_thread),
	       (unsigned long)(o.threads * o.per_thread), done, ok, NULL);
	free(g);
	free(th);
	if (bad)
		exit(1);
	finish();
}

static void run_readers(void)
{
	struct stats a, b;
	CK_SLOT_ID slots[16];
	CK_ULONG nall = 0, ntok = 0;
	double t0, t1;
	char extra[64];

	load_module();
	stats_read(&a);
	t0 = now_ms();
	initialize();
	/* What NSS does at load: every slot, then which have a token. */
	CK(f->C_GetSlotList(CK_FALSE, NULL, &nall));
	if (nall > 16)
		die("%s: %lu slots", o.name, (unsigned long)nall);
	CK(f->C_GetSlotList(CK_FALSE, slots, &nall));
	CK(f->C_GetSlotList(CK_TRUE, NULL, &ntok));
	if (ntok > 16)
		die("%s: %lu slots with a token", o.name, (unsigned long)ntok);
	CK(f->C_GetSlotList(CK_TRUE, slots, &ntok));
	t1 = now_ms();
	stats_read(&b);
	if (ntok != 1)
		die("%s: %lu slots with a token, not 1", o.name,
		    (unsigned long)ntok);
	snprintf(extra, sizeof(extra), "slots=%lu", (unsigned long)nall);
	report(&a, &b, t1 - t0, 0, 0, 0, 0, extra);
	finish();
}

/* --- main ------------------------------------------------------------- */

static long num_arg(const char *opt, const char *v)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n < 0 || n > 1000000)
		die("%s: not a number: %s", opt, v);
	return n;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench [--name N] [--pin PIN] [--pubdir DIR] "
		"[--stats FILE]\n"
		"             [--count N] [--threads N] [--per-thread N]\n"
		"             [--apdu-delay-ms N] [--privop-delay-ms N] "
		"MODULE SCENARIO\n"
		"scenarios: cold poll sign-rsa sign-pss sign-ecdsa sign-p384 "
		"threads readers\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *scen;
	long count = -1;
	size_t i;
	int k;

	o.pin = DEFAULT_PIN;
	o.stats = getenv("KYSO_VCARD_STATS");
	o.threads = 4;
	o.per_thread = 25;
	o.apdu_delay = 10;
	o.privop_delay = 150;
	for (k = 1; k < argc && argv[k][0] == '-' && argv[k][1] == '-'; k++) {
		const char *opt = argv[k],
			   *v = k + 1 < argc ? argv[k + 1] : NULL;

		if (!strcmp(opt, "--")) {
			k++;
			break;
		}
		if (!v)
			usage();
		k++;
		if (!strcmp(opt, "--name"))
			o.name = v;
		else if (!strcmp(opt, "--pin"))
			o.pin = v;
		else if (!strcmp(opt, "--pubdir"))
			o.pubdir = v;
		else if (!strcmp(opt, "--stats"))
			o.stats = v;
		else if (!strcmp(opt, "--count"))
			count = num_arg(opt, v);
		else if (!strcmp(opt, "--threads"))
			o.threads = num_arg(opt, v);
		else if (!strcmp(opt, "--per-thread"))
			o.per_thread = num_arg(opt, v);
		else if (!strcmp(opt, "--apdu-delay-ms"))
			o.apdu_delay = num_arg(opt, v);
		else if (!strcmp(opt, "--privop-delay-ms"))
			o.privop_delay = num_arg(opt, v);
		else
			usage();
	}
	if (argc - k != 2)
		usage();
	o.module = argv[k];
	scen = argv[k + 1];
	if (!o.name)
		o.name = o.module;
	if (!o.stats)
		die("no counters: set KYSO_VCARD_STATS (run inside "
		    "tests/with-card) or give --stats");
	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (!strcmp(scen, scenarios[i].name))
			break;
	if (i == sizeof(scenarios) / sizeof(scenarios[0]))
		usage();
	o.sc = scenarios[i].sc;
	o.scen = scenarios[i].name;
	o.count = count >= 0 ? count : o.sc == POLL ? 1000 : 100;
	if (o.threads < 1 || o.threads > 64)
		die("--threads: 1 to 64");

	switch (o.sc) {
	case COLD:
		run_cold();
		break;
	case POLL:
		run_poll();
		break;
	case SIGN_RSA:
		run_sign(SIG_RSA);
		break;
	case SIGN_PSS:
		run_sign(SIG_PSS);
		break;
	case SIGN_ECDSA:
		run_sign(SIG_ECDSA256);
		break;
	case SIGN_P384:
		run_sign(SIG_ECDSA384);
		break;
	case THREADS:
		run_threads();
		break;
	case READERS:
		run_readers();
		break;
	}
	return 0;
}
