/* Secrets: PINs, PUKs and management keys come from the terminal with echo
 * off, or one a line from --pin-fd N; never from the command line. Each is
 * sent to the card once: a wrong one is reported, never tried again. */
#include "tool/kyso.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

void kx_secret_wipe(struct kx_secret *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
}

/* What to say on the terminal before the next prompt (tries left). */
static char notice[256];

/* The terminal's settings while echo is off, for the signal handler. */
static struct termios saved_tio;
static volatile sig_atomic_t tty_raw_fd = -1;

static void restore_tty(int sig)
{
	if (tty_raw_fd >= 0)
		tcsetattr(tty_raw_fd, TCSAFLUSH, &saved_tio);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Reads up to a newline, one byte at a time so that the next secret on the
 * same descriptor stays unread. 1: a line; 0: end of file first; -1: too
 * long or a read error. */
static int read_line(int fd, struct kx_secret *out)
{
	char c;
	ssize_t r;
	int any = 0;

	out->len = 0;
	for (;;) {
		r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		any = 1;
		if (c == '\n')
			break;
		if (out->len >= KX_SECRET_MAX) {
			kx_secret_wipe(out);
			return -1;
		}
		out->s[out->len++] = c;
	}
	c = 0;
	if (out->len > 0 && out->s[out->len - 1] == '\r')
		out->len--;
	out->s[out->len] = '\0';
	return any;
}

int kx_secret_read(const char *prompt, struct kx_secret *out)
{
	struct sigaction sa, old[4];
	static const int sigs[4] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP};
	struct termios tio;
	int fd, r, i, echo_off = 0;

	memset(out, 0, sizeof(*out));
	if (kx_opt.pin_fd >= 0) {
		notice[0] = '\0';
		r = read_line(kx_opt.pin_fd, out);
		if (r < 0)
			return kx_fail(KX_USAGE,
				       _("cannot read a secret from file "
					 "descriptor %d"),
				       kx_opt.pin_fd);
		if (r == 0 || out->len == 0)
			return kx_fail(KX_USAGE,
				       _("file descriptor %d gave no line for "
					 "\"%s\""),
				       kx_opt.pin_fd, prompt);
		return KX_OK;
	}
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return kx_fail(KX_USAGE,
			       _("no terminal to ask for the secret; give it "
				 "on a file descriptor with --pin-fd N"));
	if (tcgetattr(fd, &tio) == 0) {
		saved_tio = tio;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = restore_tty;
		for (i = 0; i < 4; i++)
			sigaction(sigs[i], &sa, &old[i]);
		tty_raw_fd = fd;
		tio.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
		tio.c_lflag |= ICANON;
		echo_off = tcsetattr(fd, TCSAFLUSH, &tio) == 0;
	}
	if ((notice[0] && write(fd, notice, strlen(notice)) < 0) ||
	    write(fd, prompt, strlen(prompt)) < 0 || write(fd, " ", 1) < 0)
		r = -1;
	else
		r = read_line(fd, out);
	if (echo_off) {
		tcsetattr(fd, TCSAFLUSH, &saved_tio);
		if (write(fd, "\n", 1) < 0)
			r = -1;
	}
	if (tty_raw_fd >= 0) {
		tty_raw_fd = -1;
		for (i = 0; i < 4; i++)
			sigaction(sigs[i], &old[i], NULL);
	}
	close(fd);
	notice[0] = '\0';
	if (r < 0) {
		kx_secret_wipe(out);
		return kx_fail(KX_USAGE, _("cannot read from the terminal"));
	}
	if (out->len == 0) {
		kx_secret_wipe(out);
		return kx_fail(KX_CANCELLED,
			       _("cancelled: nothing was entered"));
	}
	return KX_OK;
}

int kx_secret_new(struct kx_token *t, struct kx_secret *out)
{
	struct kx_secret again;
	CK_ULONG min = t->info.ulMinPinLen, max = t->info.ulMaxPinLen;
	int rc;

	rc = kx_secret_read(_("New PIN:"), out);
	if (rc != KX_OK)
		return rc;
	if (max && max != CK_UNAVAILABLE_INFORMATION &&
	    (out->len < min || out->len > max)) {
		kx_secret_wipe(out);
		return kx_fail(KX_USAGE,
			       _("the new PIN must have %lu to %lu "
				 "characters; nothing was changed"),
			       (unsigned long)min, (unsigned long)max);
	}
	if (kx_opt.pin_fd >= 0)
		return KX_OK; /* scripts give it once */
	rc = kx_secret_read(_("New PIN again:"), &again);
	if (rc != KX_OK) {
		kx_secret_wipe(out);
		return rc;
	}
	if (again.len != out->len || CRYPTO_memcmp(again.s, out->s, out->len)) {
		kx_secret_wipe(&again);
		kx_secret_wipe(out);
		return kx_fail(KX_CANCELLED,
			       _("the two new PINs differ; nothing was "
				 "changed"));
	}
	kx_secret_wipe(&again);
	return KX_OK;
}

static CK_USER_TYPE cred_user(enum kx_cred cred)
{
	return cred == KX_CRED_PIN ? CKU_USER : CKU_SO;
}

const char *kx_pin_state_text(struct kx_token *t, enum kx_cred cred, char *buf,
			      size_t cap)
{
	CK_FLAGS f = t->info.flags;
	int so = cred != KX_CRED_PIN;
	int tries = kx_pin_tries(t, cred_user(cred));

	if (f & (so ? CKF_SO_PIN_LOCKED : CKF_USER_PIN_LOCKED) || tries == 0)
		snprintf(buf, cap, "%s", _("locked"));
	else if (tries == 1 ||
		 f & (so ? CKF_SO_PIN_FINAL_TRY : CKF_USER_PIN_FINAL_TRY))
		snprintf(buf, cap, "%s",
			 _("1 try left: one more wrong entry locks it"));
	else if (tries > 1)
		snprintf(buf, cap,
			 ngettext("%d try left", "%d tries left", tries),
			 tries);
	else if (f & (so ? CKF_SO_PIN_COUNT_LOW : CKF_USER_PIN_COUNT_LOW))
		snprintf(buf, cap, "%s",
			 _("a wrong entry was made; few tries are left"));
	else
		return NULL;
	return buf;
}

static int locked_msg(enum kx_cred cred)
{
	if (cred == KX_CRED_PIN)
		return kx_fail(KX_PIN_LOCKED,
			       _("the PIN is locked after too many wrong "
				 "tries; unblock it with \"kyso pin "
				 "unblock\" and the PUK, or ask your "
				 "certificate provider"));
	return kx_fail(KX_PIN_LOCKED,
		       _("the PUK is locked too; only your certificate "
			 "provider can reset the token"));
}

int kx_pin_state(struct kx_token *t, enum kx_cred cred)
{
	char buf[128];
	const char *s;

	if (cred == KX_CRED_ADMIN)
		return KX_OK;
	kx_token_refresh(t);
	s = kx_pin_state_text(t, cred, buf, sizeof(buf));
	if (!s)
		return KX_OK;
	if ((t->info.flags &
	     (cred == KX_CRED_PIN ? CKF_USER_PIN_LOCKED : CKF_SO_PIN_LOCKED)) ||
	    kx_pin_tries(t, cred_user(cred)) == 0)
		return locked_msg(cred);
	/* Said on the terminal right before the prompt; a script that gives
	 * its PINs on --pin-fd is not asked, so not told either. */
	if (cred == KX_CRED_PIN)
		snprintf(notice, sizeof(notice), _("PIN: %s.\n"), s);
	else
		snprintf(notice, sizeof(notice), _("PUK: %s.\n"), s);
	return KX_OK;
}

int kx_pin_failed(struct kx_token *t, enum kx_cred cred, CK_RV rv)
{
	char buf[128];
	const char *s;

	kx_token_refresh(t);
	if (rv == CKR_PIN_INCORRECT) {
		if (cred == KX_CRED_ADMIN)
			return kx_fail(KX_PIN_INCORRECT,
				       _("wrong management key (or SO PIN); "
					 "nothing was changed"));
		s = kx_pin_state_text(t, cred, buf, sizeof(buf));
		if ((t->info.flags &
		     (cred == KX_CRED_PIN ? CKF_USER_PIN_LOCKED
					  : CKF_SO_PIN_LOCKED)) ||
		    kx_pin_tries(t, cred_user(cred)) == 0) {
			if (cred == KX_CRED_PIN)
				return kx_fail(KX_PIN_LOCKED,
					       _("wrong PIN: the PIN is now "
						 "locked; unblock it with "
						 "\"kyso pin unblock\" and "
						 "the PUK"));
			return kx_fail(KX_PIN_LOCKED,
				       _("wrong PUK: the PUK is now locked; "
					 "only your certificate provider can "
					 "reset the token"));
		}
		if (cred == KX_CRED_PIN)
			return s ? kx_fail(KX_PIN_INCORRECT, _("wrong PIN: %s"),
					   s)
				 : kx_fail(KX_PIN_INCORRECT, _("wrong PIN"));
		return s ? kx_fail(KX_PIN_INCORRECT, _("wrong PUK: %s"), s)
			 : kx_fail(KX_PIN_INCORRECT, _("wrong PUK"));
	}
	if (rv == CKR_PIN_LOCKED)
		return locked_msg(cred);
	if (rv == CKR_PIN_LEN_RANGE) {
		if (cred == KX_CRED_PIN && t->info.ulMaxPinLen &&
		    t->info.ulMaxPinLen != CK_UNAVAILABLE_INFORMATION)
			return kx_fail(KX_USAGE,
				       _("a PIN of this token has %lu to %lu "
					 "characters; the card was not asked "
					 "and no try was spent"),
				       (unsigned long)t->info.ulMinPinLen,
				       (unsigned long)t->info.ulMaxPinLen);
		return kx_fail(KX_USAGE,
			       _("the secret has the wrong length; the card "
				 "was not asked"));
	}
	return kx_fail(kx_rv_exit(rv), "%s", kx_rv_text(rv));
}

static int pinpad(struct kx_token *t)
{
	return (t->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) != 0;
}

int kx_login_user(struct kx_token *t, struct kx_secret *pin)
{
	CK_RV rv;
	int rc;

	memset(pin, 0, sizeof(*pin));
	rc = kx_pin_state(t, KX_CRED_PIN);
	if (rc != KX_OK)
		return rc;
	if (pinpad(t)) {
		fprintf(stderr, "%s%s\n", notice,
			_("Enter the PIN on the reader."));
		notice[0] = '\0';
		rv = kx_p11->C_Login(t->sess, CKU_USER, NULL, 0);
	} else {
		rc = kx_secret_read(_("PIN:"), pin);
		if (rc != KX_OK)
			return rc;
		rv = kx_p11->C_Login(t->sess, CKU_USER, (CK_UTF8CHAR_PTR)pin->s,
				     pin->len);
	}
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return KX_OK;
	kx_secret_wipe(pin);
	return kx_pin_failed(t, KX_CRED_PIN, rv);
}

int kx_login_admin(struct kx_token *t)
{
	struct kx_secret key;
	CK_RV rv;
	int rc;

	rc = kx_secret_read(_("Management key (hex) or SO PIN:"), &key);
	if (rc != KX_OK)
		return rc;
	rv = kx_p11->C_Login(t->sess, CKU_SO, (CK_UTF8CHAR_PTR)key.s, key.len);
	kx_secret_wipe(&key);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return KX_OK;
	if (rv == CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
		return kx_fail(KX_FAIL,
			       _("another program is logged in to the token; "
				 "close it and try again"));
	return kx_pin_failed(t, KX_CRED_ADMIN, rv);
}

int kx_confirm(const char *question)
{
	struct kx_secret ans;
	char prompt[512];
	int fd, r;

	if (kx_opt.yes)
		return KX_OK;
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return kx_fail(KX_USAGE,
			       _("%s Confirm with --yes (no terminal to ask)."),
			       question);
	/* TRANSLATORS: the answers are "y" and the translation of "y". */
	snprintf(prompt, sizeof(prompt), _("%s Go on? [y/N] "), question);
	r = write(fd, prompt, strlen(prompt)) < 0 ? -1 : read_line(fd, &ans);
	close(fd);
	if (r > 0 && ans.len > 0 &&
	    (ans.s[0] == 'y' || ans.s[0] == 'Y' ||
	     strncmp(ans.s, _("y"), strlen(_("y"))) == 0))
		return KX_OK;
	return kx_fail(KX_CANCELLED, _("cancelled; nothing was changed"));
}
