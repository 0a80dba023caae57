/* kyso keygen: a key pair made on the card (the private key never leaves
 * it), with a progress indicator on stderr while the card works. */
#include "tool/kyso.h"

#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const CK_BYTE oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
				   0xce, 0x3d, 0x03, 0x01, 0x07};

struct gen_job {
	struct kx_token *t;
	CK_MECHANISM mech;
	CK_ATTRIBUTE *pub, *priv;
	CK_ULONG npub, npriv;
	CK_OBJECT_HANDLE hpub, hpriv;
	CK_RV rv;
	int done;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void *gen_thread(void *arg)
{
	struct gen_job *j = arg;
	CK_RV rv;

	rv = kx_p11->C_GenerateKeyPair(j->t->sess, &j->mech, j->pub, j->npub,
				       j->priv, j->npriv, &j->hpub, &j->hpriv);
	pthread_mutex_lock(&j->lock);
	j->rv = rv;
	j->done = 1;
	pthread_cond_signal(&j->cond);
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the generation and shows that the card works, once it has taken
 * half a second (a card that refuses at once gives just its one-line
 * error): a spinner with the seconds on a terminal, a dot a second
 * otherwise (logs, scripts). */
static CK_RV generate(struct gen_job *j, int *secs)
{
	static const char spin[] = "|/-\\";
	int tty = isatty(2), frame = 0, dots = 0, shown = 0;
	double start = now(), t;
	struct timespec until;
	pthread_t th;

	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	fflush(stdout);
	if (pthread_create(&th, NULL, gen_thread, j) != 0)
		return CKR_HOST_MEMORY;
	pthread_mutex_lock(&j->lock);
	while (!j->done) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 250000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&j->cond, &j->lock, &until);
		t = now() - start;
		if (j->done || t < 0.5)
			continue;
		if (!shown) {
			fprintf(stderr, "%s",
				_("The card is making the key; this can take a "
				  "minute. Do not remove the token."));
			fputc(tty ? '\n' : ' ', stderr);
			shown = 1;
		}
		if (tty) {
			fprintf(stderr, "\r%c ", spin[frame++ % 4]);
			fprintf(stderr, _("working... %d s"), (int)t);
		} else if ((int)t > dots) {
			fputc('.', stderr);
			dots++;
		}
		fflush(stderr);
	}
	pthread_mutex_unlock(&j->lock);
	pthread_join(th, NULL);
	*secs = (int)(now() - start + 0.5);
	if (shown && tty)
		fprintf(stderr, "\r%60s\r", "");
	else if (shown)
		fputc('\n', stderr);
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->cond);
	return j->rv;
}

int kx_cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"type", required_argument, NULL, 't'},
	    {"label", required_argument, NULL, 'l'},
	    {"subject", required_argument, NULL, 's'},
	    {"out", required_argument, NULL, 'o'},
	    {"der", no_argument, NULL, 'd'},
	    {"pss", no_argument, NULL, 'p'},
	    {"hash", required_argument, NULL, 'H'},
	    {NULL, 0, NULL, 0}};
	CK_OBJECT_CLASS cpub = CKO_PUBLIC_KEY, cpriv = CKO_PRIVATE_KEY;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = 0;
	CK_BYTE f4[] = {0x01, 0x00, 0x01};
	CK_ATTRIBUTE pub[8], priv[8];
	const char *keyspec = NULL, *type = NULL, *label = NULL;
	const char *subject = NULL, *outpath = "-", *hash = NULL;
	enum kx_sigalg alg = KX_SIG_PKCS1;
	X509_NAME *name = NULL;
	const EVP_MD *md;
	int as_der = 0;
	unsigned char id[64];
	size_t idlen, n, i, nkeys = 0;
	struct kx_key *keys = NULL;
	struct gen_job job;
	struct kx_secret pin;
	struct kx_key k;
	struct kx_token t;
	char desc[64];
	int c, rc, secs = 0, is_ec, had_cert = 0;
	CK_RV rv;

	memset(&pin, 0, sizeof(pin));
	memset(&k, 0, sizeof(k));
	while ((c = kx_getopt(argc, argv, "", opts)) != -1) {
		switch (c) {
		case 'k':
			keyspec = optarg;
			break;
		case 't':
			type = optarg;
			break;
		case 'l':
			label = optarg;
			break;
		case 's':
			subject = optarg;
			break;
		case 'o':
			outpath = optarg;
			break;
		case 'd':
			as_der = 1;
			break;
		case 'p':
			alg = KX_SIG_PSS;
			break;
		case 'H':
			hash = optarg;
			break;
		default:
			return KX_USAGE;
		}
	}
	if (optind < argc)
		return kx_usage_fail("keygen", _("unexpected argument \"%s\""),
				     argv[optind]);
	if (!keyspec || !type)
		return kx_usage_fail("keygen", "%s",
				     _("keygen needs --key ID and --type"));
	if (kx_hex_id(keyspec, id, sizeof(id), &idlen) < 0)
		return kx_fail(KX_USAGE,
			       _("--key wants the key's id in hex (such as "
				 "02), not \"%s\""),
			       keyspec);
	if (strcmp(type, "rsa2048") == 0)
		bits = 2048;
	else if (strcmp(type, "rsa3072") == 0)
		bits = 3072;
	else if (strcmp(type, "p256") != 0)
		return kx_fail(KX_USAGE,
			       _("unknown key type \"%s\": use rsa2048, "
				 "rsa3072 or p256"),
			       type);
	is_ec = bits == 0;
	md = kx_md_by_name(hash);
	if (!md)
		return kx_fail(KX_USAGE,
			       _("unknown hash \"%s\": use sha256, sha384 or "
				 "sha512"),
			       hash);
	if (alg == KX_SIG_PSS && is_ec)
		return kx_fail(KX_USAGE, "%s",
			       _("--pss is for RSA keys; this key is EC"));
	if (subject) {
		rc = kx_parse_subject(subject, &name);
		if (rc != KX_OK)
			return rc;
	}

	rc = kx_token_open(&t, 1);
	if (rc != KX_OK) {
		X509_NAME_free(name);
		return rc;
	}
	rc = kx_key_list(&t, &keys, &nkeys);
	if (rc != KX_OK)
		goto out;
	for (i = 0; i < nkeys; i++) {
		char q[512];

		if (keys[i].idlen != idlen || memcmp(keys[i].id, id, idlen))
			continue;
		had_cert = keys[i].cert != NULL;
		if (keys[i].cert)
			snprintf(q, sizeof(q), "%s",
				 _("The token already has a key with this id, "
				   "and a certificate for it. A new key "
				   "replaces that key for good, and the "
				   "certificate stops working."));
		else
			snprintf(q, sizeof(q), "%s",
				 _("The token already has a key with this "
				   "id. A new key replaces it for good."));
		rc = kx_confirm(q);
		if (rc != KX_OK)
			goto out;
	}
	rc = kx_login_admin(&t);
	if (rc != KX_OK)
		goto out;

	memset(&job, 0, sizeof(job));
	n = 0;
	pub[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cpub, sizeof(cpub)};
	pub[n++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
	pub[n++] = (CK_ATTRIBUTE){CKA_ID, id, idlen};
	pub[n++] = (CK_ATTRIBUTE){CKA_VERIFY, &yes, sizeof(yes)};
	if (is_ec) {
		pub[n++] = (CK_ATTRIBUTE){CKA_EC_PARAMS, (void *)oid_p256,
					  sizeof(oid_p256)};
	} else {
		pub[n++] =
		    (CK_ATTRIBUTE){CKA_MODULUS_BITS, &bits, sizeof(bits)};
		pub[n++] = (CK_ATTRIBUTE){CKA_PUBLIC_EXPONENT, f4, sizeof(f4)};
	}
	if (label)
		pub[n++] =
		    (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
	job.npub = n;
	n = 0;
	priv[n++] = (CK_ATTRIBUTE){CKA_CLASS, &cpriv, sizeof(cpriv)};
	priv[n++] = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)};
	priv[n++] = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof(yes)};
	priv[n++] = (CK_ATTRIBUTE){CKA_SENSITIVE, &yes, sizeof(yes)};
	priv[n++] = (CK_ATTRIBUTE){CKA_EXTRACTABLE, &no, sizeof(no)};
	priv[n++] = (CK_ATTRIBUTE){CKA_ID, id, idlen};
	priv[n++] = (CK_ATTRIBUTE){CKA_SIGN, &yes, sizeof(yes)};
	if (label)
		priv[n++] =
		    (CK_ATTRIBUTE){CKA_LABEL, (void *)label, strlen(label)};
	job.npriv = n;
	job.t = &t;
	job.pub = pub;
	job.priv = priv;
	job.mech.mechanism =
	    is_ec ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN;
	rv = generate(&job, &secs);
	if (rv != CKR_OK) {
		rc = kx_fail(kx_rv_exit(rv),
			     _("the card could not make the key: %s"),
			     kx_rv_text(rv));
		goto out;
	}
	memset(&k, 0, sizeof(k));
	k.pub = kx_pubkey_of(&t, job.hpub);
	memcpy(k.id, id, idlen);
	k.idlen = idlen;
	kx_hex(id, idlen, k.idhex, sizeof(k.idhex));
	kx_key_desc(k.pub, desc, sizeof(desc));
	printf(_("New %s key %s made on the card in %d s.\n"), desc, k.idhex,
	       secs);
	kx_p11->C_Logout(t.sess);
	if (had_cert)
		printf(_("The certificate stored for key %s belongs to the old "
			 "key; import the new one with \"kyso cert import FILE "
			 "--key %s\" when it comes.\n"),
		       k.idhex, k.idhex);
	if (!name) {
		printf(_("Next: ask your certificate provider for a "
			 "certificate; \"kyso keygen\" with --subject makes "
			 "the request at once.\n"));
		rc = KX_OK;
		goto out;
	}
	if (!k.pub) {
		rc = kx_fail(KX_FAIL, "%s",
			     _("the token does not show the new public key"));
		goto out;
	}
	/* The request now, in this session: a card may not show a key
	 * that has no certificate yet to a later one (PIV). */
	rc = kx_login_user(&t, &pin);
	if (rc == KX_OK)
		rc = kx_csr_write(&t, &k, &pin, name, md, alg, outpath, as_der);
out:
	kx_secret_wipe(&pin);
	kx_key_clear(&k);
	X509_NAME_free(name);
	for (i = 0; i < nkeys; i++)
		kx_key_clear(&keys[i]);
	free(keys);
	kx_token_close(&t);
	return rc;
}
