/* kyso pin change / kyso pin unblock. Both show the tries left first, read
 * the new PIN twice, and send each secret to the card exactly once. */
#include "tool/kyso.h"

#include <getopt.h>
#include <string.h>

static int pin_change(struct kx_token *t)
{
	struct kx_secret old, new;
	CK_RV rv;
	int rc;

	rc = kx_pin_state(t, KX_CRED_PIN);
	if (rc != KX_OK)
		return rc;
	rc = kx_secret_read(_("Current PIN:"), &old);
	if (rc != KX_OK)
		return rc;
	rc = kx_secret_new(t, &new);
	if (rc != KX_OK) {
		kx_secret_wipe(&old);
		return rc;
	}
	rv = kx_p11->C_SetPIN(t->sess, (CK_UTF8CHAR_PTR)old.s, old.len,
			      (CK_UTF8CHAR_PTR) new.s, new.len);
	kx_secret_wipe(&old);
	kx_secret_wipe(&new);
	if (rv != CKR_OK)
		return kx_pin_failed(t, KX_CRED_PIN, rv);
	printf("%s\n", _("The PIN was changed."));
	return KX_OK;
}

static int pin_unblock(struct kx_token *t)
{
	struct kx_secret puk, new;
	CK_RV rv;
	int rc;

	rc = kx_pin_state(t, KX_CRED_PUK);
	if (rc != KX_OK)
		return rc;
	rc = kx_secret_read(_("PUK:"), &puk);
	if (rc != KX_OK)
		return rc;
	rc = kx_secret_new(t, &new);
	if (rc != KX_OK) {
		kx_secret_wipe(&puk);
		return rc;
	}
	/* PKCS#11's unblock: log in as SO with the PUK, then C_InitPIN. A PIV
	 * card checks the PUK only inside C_InitPIN (kyso-pkcs11(8)). */
	rv = kx_p11->C_Login(t->sess, CKU_SO, (CK_UTF8CHAR_PTR)puk.s, puk.len);
	kx_secret_wipe(&puk);
	if (rv == CKR_OK)
		rv = kx_p11->C_InitPIN(t->sess, (CK_UTF8CHAR_PTR) new.s,
				       new.len);
	kx_secret_wipe(&new);
	if (rv != CKR_OK)
		return kx_pin_failed(t, KX_CRED_PUK, rv);
	kx_p11->C_Logout(t->sess);
	printf("%s\n", _("The PIN was unblocked and set to the new PIN."));
	return KX_OK;
}

int kx_cmd_pin(int argc, char **argv)
{
	struct kx_token t;
	const char *what;
	int c, rc;

	while ((c = kx_getopt(argc, argv, "", NULL)) != -1)
		if (c == KX_OPT_BAD || c >= 0)
			return KX_USAGE;
	if (optind >= argc)
		return kx_usage_fail(
		    "pin", "%s",
		    _("say what to do: \"kyso pin change\" or \"kyso pin "
		      "unblock\""));
	what = argv[optind++];
	if (strcmp(what, "change") != 0 && strcmp(what, "unblock") != 0)
		return kx_usage_fail("pin", _("unknown command \"pin %s\""),
				     what);
	if (optind < argc) {
		/* A PIN on the command line would end up in shell history
		 * and in ps: refuse it outright. */
		kx_fail(KX_USAGE, "%s",
			_("PINs are never taken from the command line; kyso "
			  "asks for them (or reads them from --pin-fd N)"));
		return KX_USAGE;
	}
	rc = kx_token_open(&t, 1);
	if (rc != KX_OK)
		return rc;
	rc = strcmp(what, "change") == 0 ? pin_change(&t) : pin_unblock(&t);
	kx_token_close(&t);
	return rc;
}
