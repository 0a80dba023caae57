/* kyso doctor: checks the chain from pcscd to the programs that sign, and
 * prints a report in plain words that a user can send to a help desk. It
 * holds public data only (ATRs, labels, certificates' names and dates):
 * no PIN is asked for and nothing secret is read. PC/SC is asked directly
 * for the service, the readers and the ATRs; the token through PKCS#11. */
#include "tool/nss.h"

#include <dirent.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <winscard.h>

struct report {
	FILE *f;
	int problems;
	int code; /* exit code of the first problem */
};

/* [ok] fine; [!!] a problem, with what to do; [??] worth a look; [--] for
 * information. The marks are the same in every language. */
static void say(struct report *r, const char *mark, int indent, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));

static void say(struct report *r, const char *mark, int indent, const char *fmt,
		...)
{
	va_list ap;

	fprintf(r->f, "%s %*s", mark, indent, "");
	va_start(ap, fmt);
	vfprintf(r->f, fmt, ap);
	va_end(ap);
	fputc('\n', r->f);
}

static void problem(struct report *r, int code)
{
	if (r->problems++ == 0)
		r->code = code;
}

static void hex(const unsigned char *p, size_t n, char *out, size_t cap)
{
	size_t i, w = 0;

	out[0] = '\0';
	for (i = 0; i < n && w + 4 < cap; i++)
		w += (size_t)snprintf(out + w, cap - w, i ? " %02X" : "%02X",
				      p[i]);
}

static void header(struct report *r)
{
	char when[64], os[1024] = "";
	struct utsname u;
	time_t now = time(NULL);
	FILE *f;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", gmtime(&now));
	f = fopen("/etc/os-release", "r");
	if (f) {
		char line[512];

		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "PRETTY_NAME=", 12) == 0) {
				char *v = line + 12;

				v[strcspn(v, "\n")] = '\0';
				if (*v == '"') {
					v++;
					v[strcspn(v, "\"")] = '\0';
				}
				snprintf(os, sizeof(os), "%s", v);
			}
		fclose(f);
	}
	if (uname(&u) == 0)
		snprintf(os + strlen(os), sizeof(os) - strlen(os), "%s%s %s %s",
			 os[0] ? "; " : "", u.sysname, u.release, u.machine);
	fprintf(r->f, "%s\n",
		_("kyso doctor: a report for your help desk. It holds no PIN "
		  "and no private data."));
	fprintf(r->f, "%s %s\n", _("Date:"), when);
	fprintf(r->f, "%s kyso %s; %s\n", _("System:"), PACKAGE_VERSION, os);
	fputc('\n', r->f);
}

/* The module, through PKCS#11: loads, and says who it is. */
static int check_module(struct report *r)
{
	const char *path = kx_module_path();
	CK_INFO info;
	char desc[33];

	if (kx_p11_load() != KX_OK) {
		say(r, "[!!]", 0,
		    _("The kyso module %s cannot be loaded. Reinstall kyso."),
		    path);
		problem(r, KX_MODULE);
		return 0;
	}
	if (kx_p11->C_GetInfo(&info) == CKR_OK) {
		kx_trim(desc, sizeof(desc), info.libraryDescription,
			sizeof(info.libraryDescription));
		say(r, "[ok]", 0, _("Module %s: %s %u.%u"), path, desc,
		    info.libraryVersion.major, info.libraryVersion.minor);
	} else {
		say(r, "[ok]", 0, _("Module %s loads"), path);
	}
	return 1;
}

/* The PKCS#11 slot of a PC/SC reader (the slot description is the reader's
 * name, cut to 64 bytes). */
static int slot_of(const char *reader, CK_SLOT_ID *out)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64, i;
	CK_SLOT_INFO si;
	char d[65];

	if (!kx_p11 || kx_p11->C_GetSlotList(CK_FALSE, slots, &n) != CKR_OK)
		return 0;
	for (i = 0; i < n; i++) {
		if (kx_p11->C_GetSlotInfo(slots[i], &si) != CKR_OK)
			continue;
		kx_trim(d, sizeof(d), si.slotDescription,
			sizeof(si.slotDescription));
		if (d[0] && strncmp(reader, d, strlen(d)) == 0) {
			*out = slots[i];
			return 1;
		}
	}
	return 0;
}

/* Harmless commands for a card kyso does not know, so that support for it
 * can be added: application selections and the chip's public production
 * data. No PIN, no write. */
static void probe(struct report *r, SCARDCONTEXT ctx, const char *reader)
{
	static const struct {
		const char *name;
		unsigned char apdu[24];
		size_t len;
	} cmds[] = {
	    {"SELECT PIV",
	     {0x00, 0xA4, 0x04, 0x00, 0x09, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00,
	      0x00, 0x10, 0x00, 0x00},
	     15},
	    {"SELECT OpenPGP",
	     {0x00, 0xA4, 0x04, 0x00, 0x06, 0xD2, 0x76, 0x00, 0x01, 0x24, 0x01,
	      0x00},
	     12},
	    {"SELECT PKCS#15",
	     {0x00, 0xA4, 0x04, 0x00, 0x0C, 0xA0, 0x00, 0x00, 0x00, 0x63, 0x50,
	      0x4B, 0x43, 0x53, 0x2D, 0x31, 0x35, 0x00},
	     18},
	    {"SELECT MF", {0x00, 0xA4, 0x00, 0x00, 0x02, 0x3F, 0x00}, 7},
	    {"GET DATA CPLC", {0x80, 0xCA, 0x9F, 0x7F, 0x00}, 5},
	};
	SCARDHANDLE h;
	DWORD proto, i;
	const SCARD_IO_REQUEST *pci;

	if (SCardConnect(ctx, reader, SCARD_SHARE_SHARED,
			 SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1, &h,
			 &proto) != SCARD_S_SUCCESS)
		return;
	pci = proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
	say(r, "[--]", 4, "%s",
	    _("What the card answers (for kyso's "
	      "developers):"));
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		unsigned char resp[258];
		char hx[200];
		DWORD rlen = sizeof(resp);

		if (SCardTransmit(h, pci, cmds[i].apdu, cmds[i].len, NULL, resp,
				  &rlen) != SCARD_S_SUCCESS ||
		    rlen < 2) {
			say(r, "[--]", 6, "%s: -", cmds[i].name);
			continue;
		}
		hex(resp, rlen - 2 > 48 ? 48 : rlen - 2, hx, sizeof(hx));
		say(r, "[--]", 6, "%s: %02X%02X%s%s", cmds[i].name,
		    resp[rlen - 2], resp[rlen - 1], hx[0] ? " " : "", hx);
	}
	SCardDisconnect(h, SCARD_LEAVE_CARD);
}

/* One token, through PKCS#11: what it is, its PIN state, its certificates. */
static void check_token(struct report *r, CK_SLOT_ID slot)
{
	struct kx_token t;
	struct kx_key *keys;
	char buf[128];
	const char *s;
	size_t n, i;
	CK_RV rv;

	memset(&t, 0, sizeof(t));
	t.slot = slot;
	rv = kx_p11->C_GetTokenInfo(slot, &t.info);
	if (rv == CKR_TOKEN_NOT_RECOGNIZED) {
		say(r, "[!!]", 4, "%s",
		    _("kyso does not know this card. Send this report to the "
		      "kyso project so that it can learn it."));
		problem(r, KX_NO_TOKEN);
		return;
	}
	if (rv != CKR_OK) {
		say(r, "[!!]", 4, _("The token does not answer: %s"),
		    kx_rv_text(rv));
		problem(r, kx_rv_exit(rv));
		return;
	}
	kx_trim(t.label, sizeof(t.label), t.info.label, sizeof(t.info.label));
	kx_trim(t.serial, sizeof(t.serial), t.info.serialNumber,
		sizeof(t.info.serialNumber));
	kx_trim(t.model, sizeof(t.model), t.info.model, sizeof(t.info.model));
	kx_trim(t.manufacturer, sizeof(t.manufacturer), t.info.manufacturerID,
		sizeof(t.info.manufacturerID));
	say(r, "[ok]", 4, _("Recognised: %s %s, token \"%s\", serial %s"),
	    t.manufacturer, t.model, t.label, t.serial);
	s = kx_pin_state_text(&t, KX_CRED_PIN, buf, sizeof(buf));
	if (t.info.flags & CKF_USER_PIN_LOCKED) {
		say(r, "[!!]", 4, "%s",
		    _("The PIN is locked. Unblock it with \"kyso pin "
		      "unblock\" and the PUK, or ask the certificate "
		      "provider."));
		problem(r, KX_PIN_LOCKED);
	} else if (s) {
		say(r,
		    t.info.flags &
			    (CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW)
			? "[??]"
			: "[ok]",
		    4, _("PIN: %s"), s);
	}
	if (kx_p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL,
				  &t.sess) != CKR_OK)
		return;
	if (kx_key_list(&t, &keys, &n) == KX_OK) {
		if (n == 0)
			say(r, "[??]", 4, "%s",
			    _("The token holds no key and no certificate."));
		for (i = 0; i < n; i++) {
			char *subj, to[16];
			int days;

			if (!keys[i].cert) {
				say(r, "[--]", 4, _("Key %s: no certificate"),
				    keys[i].idhex);
				kx_key_clear(&keys[i]);
				continue;
			}
			subj = kx_name(X509_get_subject_name(keys[i].cert));
			kx_date(X509_get0_notAfter(keys[i].cert), to,
				sizeof(to));
			days = kx_days_left(X509_get0_notAfter(keys[i].cert));
			if (days < 0) {
				say(r, "[!!]", 4,
				    _("Certificate %s (key %s) EXPIRED on %s: "
				      "ask the certificate provider for a "
				      "new one."),
				    subj ? subj : "?", keys[i].idhex, to);
				problem(r, KX_FAIL);
			} else if (days <= 30) {
				say(r, "[??]", 4,
				    _("Certificate %s (key %s) expires on %s, "
				      "in %d days: renew it soon."),
				    subj ? subj : "?", keys[i].idhex, to, days);
			} else {
				say(r, "[ok]", 4,
				    _("Certificate %s (key %s), valid until "
				      "%s"),
				    subj ? subj : "?", keys[i].idhex, to);
			}
			free(subj);
			kx_key_clear(&keys[i]);
		}
		free(keys);
	}
	kx_token_close(&t);
}

static void check_readers(struct report *r, int have_module)
{
	SCARDCONTEXT ctx;
	LPSTR names = NULL;
	DWORD len = SCARD_AUTOALLOCATE;
	LONG rv;
	char *p;
	int nreaders = 0, ncards = 0;

	rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
	if (rv != SCARD_S_SUCCESS) {
		say(r, "[!!]", 0, "%s",
		    _("The smart-card service (pcscd) is not running. Install "
		      "the pcscd package, then: sudo systemctl enable --now "
		      "pcscd.socket"));
		problem(r, KX_NO_READER);
		return;
	}
	say(r, "[ok]", 0, "%s", _("The smart-card service (pcscd) runs."));
	rv = SCardListReaders(ctx, NULL, (LPSTR)&names, &len);
	if (rv != SCARD_S_SUCCESS || !names || !*names) {
		say(r, "[!!]", 0, "%s",
		    _("No card reader or token is connected. Plug the token in "
		      "(try another USB port); a reader may also need the "
		      "libccid package."));
		problem(r, KX_NO_READER);
		if (names)
			SCardFreeMemory(ctx, names);
		SCardReleaseContext(ctx);
		return;
	}
	for (p = names; *p; p += strlen(p) + 1) {
		SCARD_READERSTATE st;
		char atr[3 * MAX_ATR_SIZE + 1];
		CK_SLOT_ID slot;

		nreaders++;
		memset(&st, 0, sizeof(st));
		st.szReader = p;
		st.dwCurrentState = SCARD_STATE_UNAWARE;
		if (SCardGetStatusChange(ctx, 0, &st, 1) != SCARD_S_SUCCESS ||
		    !(st.dwEventState & SCARD_STATE_PRESENT)) {
			say(r, "[--]", 0, _("Reader \"%s\": no card"), p);
			continue;
		}
		ncards++;
		hex(st.rgbAtr, st.cbAtr, atr, sizeof(atr));
		say(r, "[ok]", 0, _("Reader \"%s\": card present, ATR %s"), p,
		    atr);
		if (st.dwEventState & SCARD_STATE_MUTE) {
			say(r, "[!!]", 4, "%s",
			    _("The card does not answer (mute): take it out "
			      "and put it back."));
			problem(r, KX_NO_TOKEN);
			continue;
		}
		if (!have_module)
			continue;
		if (!slot_of(p, &slot)) {
			say(r, "[!!]", 4, "%s",
			    _("The kyso module does not show this reader."));
			problem(r, KX_NO_TOKEN);
			continue;
		}
		check_token(r, slot);
		{
			CK_TOKEN_INFO ti;

			if (kx_p11->C_GetTokenInfo(slot, &ti) ==
			    CKR_TOKEN_NOT_RECOGNIZED)
				probe(r, ctx, p);
		}
	}
	if (nreaders > 0 && ncards == 0) {
		say(r, "[!!]", 0, "%s",
		    _("No card in any reader: insert the card (or the "
		      "token)."));
		problem(r, KX_NO_TOKEN);
	}
	SCardFreeMemory(ctx, names);
	SCardReleaseContext(ctx);
}

/* kyso.module in one of p11-kit's module config directories. */
static void check_p11kit(struct report *r, const char *module)
{
	const char *dirs[3];
	char user[PATH_MAX], want[PATH_MAX];
	const char *x = getenv("XDG_CONFIG_HOME");
	size_t i;

	dirs[0] = P11_MODULE_CONFIGS;
	dirs[1] = "/etc/pkcs11/modules";
	if (x && *x)
		snprintf(user, sizeof(user), "%s/pkcs11/modules", x);
	else
		snprintf(user, sizeof(user), "%s/.config/pkcs11/modules",
			 kx_home());
	dirs[2] = user;
	if (!realpath(module, want))
		snprintf(want, sizeof(want), "%s", module);
	for (i = 0; i < 3; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *e;

		if (!d)
			continue;
		while ((e = readdir(d)) != NULL) {
			char path[PATH_MAX + 256], line[PATH_MAX + 16];
			size_t l = strlen(e->d_name);
			FILE *f;

			if (l < 8 || strcmp(e->d_name + l - 7, ".module") != 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dirs[i],
				 e->d_name);
			f = fopen(path, "r");
			if (!f)
				continue;
			while (fgets(line, sizeof(line), f)) {
				char *v, real[PATH_MAX];
				const char *base;

				if (strncmp(line, "module:", 7) != 0)
					continue;
				v = line + 7;
				v += strspn(v, " \t");
				v[strcspn(v, " \t\r\n")] = '\0';
				base = strrchr(want, '/');
				base = base ? base + 1 : want;
				if ((realpath(v, real) &&
				     strcmp(real, want) == 0) ||
				    (v[0] != '/' && strcmp(v, base) == 0)) {
					fclose(f);
					closedir(d);
					say(r, "[ok]", 0,
					    _("p11-kit: kyso is registered "
					      "(%s)"),
					    path);
					if (i == 2 && getuid() == 0)
						say(r, "[??]", 4, "%s",
						    _("p11-kit ignores a "
						      "user's own settings "
						      "for root."));
					return;
				}
			}
			fclose(f);
		}
		closedir(d);
	}
	say(r, "[!!]", 0,
	    _("p11-kit: kyso is not registered, so programs that use "
	      "p11-kit do not see the token. Reinstall kyso (it puts "
	      "kyso.module in %s)."),
	    P11_MODULE_CONFIGS);
	problem(r, KX_FAIL);
}

static void check_nss(struct report *r, const char *module)
{
	struct kx_nssdb *dbs, lo;
	enum kx_lo_source src;
	char name[256];
	size_t n, i;
	int in;

	kx_firefox_dbs(&dbs, &n);
	if (n == 0)
		say(r, "[--]", 0, "%s", _("Firefox: no profile found."));
	for (i = 0; i < n; i++) {
		in = kx_nssdb_module(dbs[i].dir, module, name, sizeof(name));
		if (in == 1) {
			say(r, "[ok]", 0,
			    _("Firefox, profile %s: kyso is registered."),
			    dbs[i].name);
		} else {
			say(r, "[!!]", 0,
			    _("Firefox, profile %s: kyso is not registered. "
			      "Close Firefox and run \"kyso register "
			      "--firefox\"."),
			    dbs[i].name);
			problem(r, KX_FAIL);
		}
	}
	kx_nssdb_free(dbs, n);

	src = kx_libreoffice_db(&lo);
	if (src == KX_LO_NONE) {
		say(r, "[??]", 0, "%s",
		    _("LibreOffice: no certificate folder, so it cannot sign "
		      "with the token. Run \"kyso register --libreoffice\"."));
	} else {
		const char *from =
		    src == KX_LO_ENV	       ? "MOZILLA_CERTIFICATE_FOLDER"
		    : src == KX_LO_CERTDIR     ? _("its Certificate Path")
		    : src == KX_LO_THUNDERBIRD ? _("the Thunderbird profile")
					       : _("the Firefox profile");

		in = kx_nssdb_module(lo.dir, module, name, sizeof(name));
		if (in == 1) {
			say(r, "[ok]", 0,
			    _("LibreOffice: kyso is registered in %s (%s)."),
			    from, lo.dir);
		} else {
			say(r, "[!!]", 0,
			    _("LibreOffice: kyso is not registered in %s (%s). "
			      "Close LibreOffice and run \"kyso register "
			      "--libreoffice\"."),
			    from, lo.dir);
			problem(r, KX_FAIL);
		}
	}
	free(lo.dir);
	free(lo.name);
}

int kx_cmd_doctor(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"out", required_argument, NULL, 'o'}, {NULL, 0, NULL, 0}};
	const char *out = NULL;
	struct report r = {stdout, 0, KX_OK};
	char module[PATH_MAX];
	int c, have;

	while ((c = kx_getopt(argc, argv, "", opts)) != -1) {
		if (c == 'o')
			out = optarg;
		else
			return KX_USAGE;
	}
	if (optind < argc)
		return kx_usage_fail("doctor", _("unexpected argument \"%s\""),
				     argv[optind]);
	if (out && strcmp(out, "-") != 0) {
		r.f = fopen(out, "w");
		if (!r.f)
			return kx_fail(KX_USAGE, _("cannot write %s"), out);
	}
	header(&r);
	have = check_module(&r);
	check_readers(&r, have);
	if (!realpath(kx_module_path(), module))
		snprintf(module, sizeof(module), "%s", kx_module_path());
	check_p11kit(&r, module);
	check_nss(&r, module);
	fputc('\n', r.f);
	if (r.problems == 0)
		fprintf(r.f, "%s\n", _("No problem found."));
	else
		fprintf(r.f,
			ngettext("%d problem found: the line marked [!!] says "
				 "what to do.\n",
				 "%d problems found: the lines marked [!!] say "
				 "what to do.\n",
				 r.problems),
			r.problems);
	if (r.f != stdout) {
		if (fclose(r.f) != 0)
			return kx_fail(KX_FAIL, _("cannot write %s"), out);
		printf(_("Report written to %s; send it to your help desk.\n"),
		       out);
	}
	return r.code;
}
