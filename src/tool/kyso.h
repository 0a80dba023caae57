/* The kyso CLI: what its files share. The CLI reaches tokens only through the
 * kyso module's PKCS#11 interface (p11.c), like any other consumer; doctor.c
 * also asks PC/SC directly, and OpenSSL builds certificates, CSRs and CMS. */
#ifndef KYSO_TOOL_H
#define KYSO_TOOL_H

#include "config.h"

#include <libintl.h>
#include <stddef.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "kyso/pkcs11.h"

#define _(s)  gettext(s)
#define N_(s) (s)

/* Exit codes; kyso(1) documents them, tests/integration/tool.sh checks them. */
enum {
	KX_OK = 0,
	KX_FAIL = 1,	      /* the operation failed (card or system error) */
	KX_USAGE = 2,	      /* bad command line or input file */
	KX_NO_READER = 3,     /* no reader, or pcscd not reachable */
	KX_NO_TOKEN = 4,      /* no card, or a card kyso does not know */
	KX_PIN_INCORRECT = 5, /* wrong PIN, PUK or management key */
	KX_PIN_LOCKED = 6,    /* PIN (or PUK) blocked */
	KX_NOT_FOUND = 7,     /* no such key or certificate on the token */
	KX_BAD_SIGNATURE = 8, /* verify: signature or certificate not good */
	KX_MODULE = 9,	      /* the PKCS#11 module cannot be loaded */
	KX_CANCELLED = 10,    /* cancelled, or the new PINs did not match */
};

/* Options every subcommand may get. */
struct kx_opts {
	const char *module; /* --module, else $KYSO_MODULE, else installed */
	const char *token;  /* --token LABEL|SERIAL */
	long slot;	    /* --slot N; -1: any */
	int pin_fd;	    /* --pin-fd N; -1: the terminal */
	int yes;	    /* --yes: no confirmation questions */
};

extern struct kx_opts kx_opt;
extern const char *kx_prog;

/* One line "kyso: message" on stderr; returns code. */
int kx_fail(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void kx_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* One line "kyso: message (see "kyso CMD --help")"; returns KX_USAGE. */
int kx_usage_fail(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints indent spaces, label, then pads to width columns (UTF-8 aware)
 * and one space: the left column of a listing. */
void kx_field(FILE *f, int indent, const char *label, int width);

/* --- p11.c: the module through PKCS#11 --------------------------------- */
struct kx_token {
	CK_SLOT_ID slot;
	CK_TOKEN_INFO info;
	char label[33], serial[17], model[17], manufacturer[33]; /* trimmed */
	CK_SESSION_HANDLE sess;
};

extern CK_FUNCTION_LIST_PTR kx_p11;

/* Loads and initializes the module; KX_OK or an exit code (message shown). */
int kx_p11_load(void);
void kx_p11_unload(void);
/* Every slot of the module (*slots: free it); KX_NO_READER (said) when
 * there is none. */
int kx_p11_slots(CK_SLOT_ID **slots, CK_ULONG *n);
/* The module's path as it will be (or was) loaded. */
const char *kx_module_path(void);
/* Chooses the token (--token / --slot, or the only one) and opens a session.
 * rw: read-write session. */
int kx_token_open(struct kx_token *t, int rw);
void kx_token_close(struct kx_token *t);
/* Copies a blank-padded PKCS#11 string into a trimmed C string. */
void kx_trim(char *dst, size_t cap, const CK_UTF8CHAR *src, size_t len);
/* A one-line text for a return value, for messages. */
const char *kx_rv_text(CK_RV rv);
/* The exit code that fits rv. */
int kx_rv_exit(CK_RV rv);
/* PIN (CKU_USER) or PUK (CKU_SO) tries left as the module last heard from
 * the card, through its vendor interface; -1 when it cannot tell. */
int kx_pin_tries(struct kx_token *t, CK_USER_TYPE who);
/* Re-reads the token flags (after a PIN operation). */
void kx_token_refresh(struct kx_token *t);

/* Objects. */
int kx_find(struct kx_token *t, CK_OBJECT_CLASS cls, const CK_BYTE *id,
	    size_t idlen, CK_OBJECT_HANDLE *out, size_t max, size_t *n);
/* Reads one attribute into freshly allocated memory (NUL added past the
 * end); CKR_OK, or the module's error. */
CK_RV kx_attr(struct kx_token *t, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type,
	      unsigned char **val, size_t *len);
CK_RV kx_attr_ulong(struct kx_token *t, CK_OBJECT_HANDLE h,
		    CK_ATTRIBUTE_TYPE type, CK_ULONG *v);
CK_RV kx_attr_bool(struct kx_token *t, CK_OBJECT_HANDLE h,
		   CK_ATTRIBUTE_TYPE type, CK_BBOOL *v);

/* A key on the token, named on the command line by --key ID|LABEL. */
struct kx_key {
	unsigned char id[64];
	size_t idlen;
	char idhex[129];
	char label[65];
	EVP_PKEY *pub; /* from its public key object or certificate */
	X509 *cert;    /* NULL when no certificate */
	CK_OBJECT_HANDLE cert_h, pub_h;
};

/* Resolves --key (a CKA_ID in hex, or a label) to a key. spec NULL: the
 * one key a signature should use (see choose_default in p11.c). */
int kx_key_find(struct kx_token *t, const char *spec, struct kx_key *k);
void kx_key_clear(struct kx_key *k);
/* Every key (by CKA_ID) the token shows without login; *n entries. */
int kx_key_list(struct kx_token *t, struct kx_key **keys, size_t *n);
/* Parses a hex CKA_ID; -1 if not hex. */
int kx_hex_id(const char *s, unsigned char *id, size_t cap, size_t *len);
void kx_hex(const unsigned char *p, size_t n, char *out, size_t cap);
/* The public key of a public key object. */
EVP_PKEY *kx_pubkey_of(struct kx_token *t, CK_OBJECT_HANDLE h);

/* --- pin.c: secrets from the terminal or --pin-fd; PIN state --------- */
#define KX_SECRET_MAX 128
struct kx_secret {
	char s[KX_SECRET_MAX + 1];
	size_t len;
};
/* Reads one secret. KX_OK, or an exit code (message shown). */
int kx_secret_read(const char *prompt, struct kx_secret *out);
/* A new PIN: read twice from the terminal (once from --pin-fd) and checked
 * against the token's length limits. */
int kx_secret_new(struct kx_token *t, struct kx_secret *out);
void kx_secret_wipe(struct kx_secret *s);
/* The credentials the CLI asks for. */
enum kx_cred {
	KX_CRED_PIN,   /* CKU_USER */
	KX_CRED_PUK,   /* CKU_SO, to unblock the PIN */
	KX_CRED_ADMIN, /* CKU_SO: management key or SO PIN, for writes */
};
/* Tells how many tries the PIN or PUK has left; refuses (KX_PIN_LOCKED)
 * when it is blocked. Called before asking for it. */
int kx_pin_state(struct kx_token *t, enum kx_cred cred);
/* "3 tries left", "locked", ... for `kyso list`; NULL when unknown. */
const char *kx_pin_state_text(struct kx_token *t, enum kx_cred cred, char *buf,
			      size_t cap);
/* Logs in as the user: shows the tries, reads the PIN, sends it once. The
 * PIN is kept in *pin for a context-specific login (9C keys); wipe it. */
int kx_login_user(struct kx_token *t, struct kx_secret *pin);
/* Logs in as the security officer with the management key (for writes). */
int kx_login_admin(struct kx_token *t);
/* One message and the exit code for a PIN operation that failed with rv. */
int kx_pin_failed(struct kx_token *t, enum kx_cred cred, CK_RV rv);
/* Asks "yes" on the terminal unless --yes; KX_OK or KX_CANCELLED. */
int kx_confirm(const char *question);

/* --- x509.c: certificate helpers -------------------------------------- */
/* RFC 2253 with UTF-8 kept (Vietnamese names). Caller frees. */
char *kx_name(const X509_NAME *n);
/* "RSA 2048", "EC P-256". */
void kx_key_desc(EVP_PKEY *pk, char *buf, size_t cap);
/* YYYY-MM-DD. */
void kx_date(const ASN1_TIME *t, char *buf, size_t cap);
/* Whole days from now to t (negative when past). */
int kx_days_left(const ASN1_TIME *t);
/* Reads path ("-": standard input) as DER, else as PEM with the label
 * pem_name, with d2i (e.g. d2i_X509). NULL when it is neither; when the
 * file cannot be read at all, says so and sets *unreadable. */
void *kx_read_der_pem(const char *path, d2i_of_void *d2i,
		      const char *pem_name, int *unreadable);
/* Reads a certificate in PEM or DER. */
X509 *kx_read_cert(const char *path);
/* Writes DER or PEM bytes to path ("-": stdout), replacing it atomically. */
int kx_write_file(const char *path, const unsigned char *p, size_t n);
int kx_read_file(const char *path, unsigned char **p, size_t *n);
/* Signs tbs with the token key as `alg` says; returns the signature as an
 * X.509 signature value (DER ECDSA-Sig-Value for EC). */
enum kx_sigalg { KX_SIG_PKCS1, KX_SIG_PSS };
int kx_token_sign(struct kx_token *t, struct kx_key *k, struct kx_secret *pin,
		  const EVP_MD *md, enum kx_sigalg alg,
		  const unsigned char *tbs, size_t tbslen, unsigned char **sig,
		  size_t *siglen);
/* sha256 (also for NULL), sha384, sha512; NULL for anything else. */
const EVP_MD *kx_md_by_name(const char *name);
/* The AlgorithmIdentifier of such a signature. */
X509_ALGOR *kx_sig_algor(EVP_PKEY *pub, const EVP_MD *md, enum kx_sigalg alg);

/* --- csr.c ------------------------------------------------------------ */
/* "/C=VN/O=.../CN=..." into a name (UTF-8 values). */
int kx_parse_subject(const char *s, X509_NAME **out);
/* Builds a PKCS #10 request for k, has the token sign it (the user is
 * logged in; pin for a context-specific login), checks the signature and
 * writes it, PEM or DER, to outpath ("-": stdout). */
int kx_csr_write(struct kx_token *t, struct kx_key *k, struct kx_secret *pin,
		 const X509_NAME *name, const EVP_MD *md, enum kx_sigalg alg,
		 const char *outpath, int as_der);

/* --- subcommands ------------------------------------------------------ */
int kx_cmd_list(int argc, char **argv);
int kx_cmd_pin(int argc, char **argv);
int kx_cmd_keygen(int argc, char **argv);
int kx_cmd_csr(int argc, char **argv);
int kx_cmd_cert(int argc, char **argv);
int kx_cmd_sign(int argc, char **argv);
int kx_cmd_verify(int argc, char **argv);
int kx_cmd_doctor(int argc, char **argv);
int kx_cmd_register(int argc, char **argv);
int kx_cmd_unregister(int argc, char **argv);

/* Option parsing shared by the subcommands: a getopt_long over the common
 * options plus the subcommand's own. Returns the option, -1 at the end, or
 * KX_OPT_BAD after a message. */
struct option;
#define KX_OPT_BAD (-2)
int kx_getopt(int argc, char **argv, const char *shortopts,
	      const struct option *own);
/* Common long options' values start here (kept clear of subcommands'). */
enum {
	KX_O_MODULE = 1000,
	KX_O_TOKEN,
	KX_O_SLOT,
	KX_O_PIN_FD,
	KX_O_YES,
	KX_O_HELP,
};
/* The usage of a subcommand (cmd NULL: of kyso) on stdout, for --help. */
int kx_usage(const char *cmd, int code);

#endif
