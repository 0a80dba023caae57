/* kyso list: readers, tokens, keys and certificates, PIN state; warns about
 * certificates that expire within 30 days or have expired. */
#include "tool/kyso.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#define WARN_DAYS 30

static void print_serial(const ASN1_INTEGER *sn, char *buf, size_t cap)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;

	snprintf(buf, cap, "%s", hex ? hex : "?");
	OPENSSL_free(hex);
	BN_free(bn);
}

/* Prints one certificate; returns 1 when it needs the user's attention. */
static int print_cert(X509 *x)
{
	char *subj = kx_name(X509_get_subject_name(x));
	char *iss = kx_name(X509_get_issuer_name(x));
	char from[16], to[16], serial[128], key[64], left[64];
	EVP_PKEY *pk = X509_get0_pubkey(x);
	int days = kx_days_left(X509_get0_notAfter(x));
	int attention = 0;

	kx_date(X509_get0_notBefore(x), from, sizeof(from));
	kx_date(X509_get0_notAfter(x), to, sizeof(to));
	print_serial(X509_get0_serialNumber(x), serial, sizeof(serial));
	kx_key_desc(pk, key, sizeof(key));
	kx_field(stdout, 4, _("Subject:"), 14);
	printf("%s\n", subj ? subj : "?");
	kx_field(stdout, 4, _("Issuer:"), 14);
	printf("%s\n", iss ? iss : "?");
	kx_field(stdout, 4, _("Serial:"), 14);
	printf("%s\n", serial);
	if (days < 0)
		snprintf(left, sizeof(left), "%s", _("expired"));
	else if (days == 0)
		snprintf(left, sizeof(left), "%s", _("expires today"));
	else
		snprintf(left, sizeof(left),
			 ngettext("%d day left", "%d days left", days), days);
	/* TRANSLATORS: validity, "2026-01-01 to 2027-01-01 (300 days left)" */
	kx_field(stdout, 4, _("Valid:"), 14);
	printf(_("%s to %s (%s)"), from, to, left);
	printf("\n");
	kx_field(stdout, 4, _("Key:"), 14);
	printf("%s\n", key);
	if (days < 0) {
		printf("    %s\n",
		       _("! Warning: this certificate has EXPIRED; signatures "
			 "made with it are not valid. Ask your certificate "
			 "provider for a new one."));
		attention = 1;
	} else if (days <= WARN_DAYS) {
		printf("    ");
		printf(ngettext("! Warning: this certificate expires in %d "
				"day; ask your certificate provider to renew "
				"it.",
				"! Warning: this certificate expires in %d "
				"days; ask your certificate provider to renew "
				"it.",
				days),
		       days);
		printf("\n");
		attention = 1;
	}
	free(subj);
	free(iss);
	return attention;
}

static void list_token(struct kx_token *t)
{
	struct kx_key *keys;
	char buf[128], desc[64];
	const char *s;
	size_t n, i;

	kx_field(stdout, 2, _("Token:"), 12);
	printf("%s\n", t->label);
	kx_field(stdout, 2, _("Card type:"), 12);
	printf("%s %s\n", t->manufacturer, t->model);
	kx_field(stdout, 2, _("Serial:"), 12);
	printf("%s\n", t->serial);
	s = kx_pin_state_text(t, KX_CRED_PIN, buf, sizeof(buf));
	kx_field(stdout, 2, _("PIN:"), 12);
	printf("%s\n", s ? s : _("not known"));
	if (t->info.flags & (CKF_SO_PIN_LOCKED | CKF_SO_PIN_FINAL_TRY |
			     CKF_SO_PIN_COUNT_LOW) ||
	    kx_pin_tries(t, CKU_SO) >= 0) {
		s = kx_pin_state_text(t, KX_CRED_PUK, buf, sizeof(buf));
		if (s)
			kx_field(stdout, 2, _("PUK:"), 12);
		printf("%s\n", s);
	}
	if (kx_key_list(t, &keys, &n) != KX_OK)
		return;
	if (n == 0)
		printf("  %s\n", _("No keys or certificates on this token."));
	for (i = 0; i < n; i++) {
		if (keys[i].cert) {
			printf("  %s %s \"%s\"\n", _("Key"), keys[i].idhex,
			       keys[i].label);
			print_cert(keys[i].cert);
			if (keys[i].pub &&
			    EVP_PKEY_eq(keys[i].pub,
					X509_get0_pubkey(keys[i].cert)) != 1)
				printf("    %s\n",
				       _("! Warning: this certificate does not "
					 "belong to the key now on the card "
					 "(was a new key made?); import the "
					 "new certificate."));
		} else {
			kx_key_desc(keys[i].pub, desc, sizeof(desc));
			printf("  %s %s \"%s\": %s, %s\n", _("Key"),
			       keys[i].idhex, keys[i].label, desc,
			       _("no certificate"));
		}
		kx_key_clear(&keys[i]);
	}
	free(keys);
}

int kx_cmd_list(int argc, char **argv)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0, i;
	CK_SLOT_INFO si;
	char reader[65];
	int c, rc;
	CK_RV rv;

	while ((c = kx_getopt(argc, argv, "", NULL)) != -1)
		if (c == KX_OPT_BAD || c >= 0)
			return KX_USAGE;
	if (optind < argc)
		return kx_usage_fail("list", _("unexpected argument \"%s\""),
				     argv[optind]);
	rc = kx_p11_load();
	if (rc != KX_OK)
		return rc;
	rc = kx_p11_slots(&slots, &n);
	if (rc != KX_OK)
		return rc;
	for (i = 0; i < n; i++) {
		struct kx_token t;

		if (kx_opt.slot >= 0 && slots[i] != (CK_SLOT_ID)kx_opt.slot)
			continue;
		if (kx_p11->C_GetSlotInfo(slots[i], &si) != CKR_OK)
			continue;
		kx_trim(reader, sizeof(reader), si.slotDescription,
			sizeof(si.slotDescription));
		printf(_("Reader \"%s\" (slot %lu)\n"), reader,
		       (unsigned long)slots[i]);
		if (!(si.flags & CKF_TOKEN_PRESENT)) {
			printf("  %s\n", _("no card"));
			continue;
		}
		memset(&t, 0, sizeof(t));
		t.slot = slots[i];
		rv = kx_p11->C_GetTokenInfo(slots[i], &t.info);
		if (rv == CKR_TOKEN_NOT_RECOGNIZED) {
			printf("  %s\n", _("a card kyso does not know (run "
					   "\"kyso doctor\")"));
			continue;
		}
		if (rv != CKR_OK) {
			printf("  %s\n", kx_rv_text(rv));
			continue;
		}
		kx_trim(t.label, sizeof(t.label), t.info.label,
			sizeof(t.info.label));
		kx_trim(t.serial, sizeof(t.serial), t.info.serialNumber,
			sizeof(t.info.serialNumber));
		kx_trim(t.model, sizeof(t.model), t.info.model,
			sizeof(t.info.model));
		kx_trim(t.manufacturer, sizeof(t.manufacturer),
			t.info.manufacturerID, sizeof(t.info.manufacturerID));
		if (kx_opt.token && strcmp(kx_opt.token, t.label) != 0 &&
		    strcmp(kx_opt.token, t.serial) != 0) {
			printf("  %s\n", t.label);
			continue;
		}
		rv = kx_p11->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL,
					   NULL, &t.sess);
		if (rv != CKR_OK) {
			printf("  %s\n", kx_rv_text(rv));
			continue;
		}
		list_token(&t);
		kx_token_close(&t);
	}
	free(slots);
	return KX_OK;
}
