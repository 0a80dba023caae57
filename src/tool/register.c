/* kyso register / unregister: adds the module to (or removes it from) the
 * NSS databases of Firefox profiles and the one LibreOffice uses, with
 * modutil. Running it twice changes nothing the second time. */
#include "tool/nss.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NSS_NAME "kyso"

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX], *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -1;
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

static int run_tool(const char *what, char *const argv[])
{
	char out[4096];
	int st = kx_run(argv, out, sizeof(out));

	if (st == 0)
		return KX_OK;
	out[strcspn(out, "\n")] = '\0';
	return kx_fail(KX_FAIL, _("%s: %s failed: %s"), what, argv[0],
		       out[0] ? out : "?");
}

/* Adds (add=1) or removes the module in the NSS database in dir. create:
 * make the database when there is none. */
static int one_db(const char *what, const char *dir, const char *module,
		  int add, int create)
{
	char name[256] = "", db[PATH_MAX + 8];
	int r = kx_nssdb_module(dir, module, name, sizeof(name)), rc;

	snprintf(db, sizeof(db), "sql:%s", dir);
	if (r < 0) {
		if (!add) {
			printf(_("%s: kyso is not registered\n"), what);
			return KX_OK;
		}
		if (!create)
			return kx_fail(KX_NOT_FOUND,
				       _("%s: no certificate database in %s "
					 "(start the program once first)"),
				       what, dir);
		if (mkdir_p(dir) < 0)
			return kx_fail(KX_FAIL, _("cannot create %s: %s"), dir,
				       strerror(errno));
		{
			char *argv[] = {"certutil",	    "-N", "-d", db,
					"--empty-password", NULL};

			rc = run_tool(what, argv);
			if (rc != KX_OK)
				return rc;
		}
		r = 0;
	}
	if (add) {
		if (r == 1) {
			printf(_("%s: kyso is already registered\n"), what);
			return KX_OK;
		}
		if (kx_nssdb_has_name(dir, NSS_NAME)) {
			/* Our name, another library (an old install). */
			char *argv[] = {"modutil", "-dbdir", db,  "-delete",
					NSS_NAME,  "-force", NULL};

			rc = run_tool(what, argv);
			if (rc != KX_OK)
				return rc;
		}
		{
			char *argv[] = {"modutil",	"-dbdir", db,
					"-add",		NSS_NAME, "-libfile",
					(char *)module, "-force", NULL};

			rc = run_tool(what, argv);
			if (rc != KX_OK)
				return rc;
		}
		if (kx_nssdb_module(dir, module, name, sizeof(name)) != 1)
			return kx_fail(KX_FAIL,
				       _("%s: modutil did not register the "
					 "module"),
				       what);
		printf(_("%s: kyso registered\n"), what);
		return KX_OK;
	}
	if (r != 1) {
		printf(_("%s: kyso is not registered\n"), what);
		return KX_OK;
	}
	{
		char *argv[] = {"modutil", "-dbdir", db,  "-delete",
				name,	   "-force", NULL};

		rc = run_tool(what, argv);
		if (rc != KX_OK)
			return rc;
	}
	if (kx_nssdb_module(dir, module, name, sizeof(name)) == 1)
		return kx_fail(
		    KX_FAIL, _("%s: modutil did not remove the module"), what);
	printf(_("%s: kyso removed\n"), what);
	return KX_OK;
}

static int firefox(const char *module, int add, int explicit)
{
	struct kx_nssdb *dbs;
	size_t n, i;
	int rc = KX_OK, r;
	char what[512];

	kx_firefox_dbs(&dbs, &n);
	if (n == 0) {
		if (explicit && add)
			return kx_fail(KX_NOT_FOUND, "%s",
				       _("Firefox: no profile found; start "
					 "Firefox once, close it, and run "
					 "this again"));
		printf("%s\n", _("Firefox: no profile found"));
		return KX_OK;
	}
	for (i = 0; i < n; i++) {
		char lock[PATH_MAX + 8];
		struct stat st;

		snprintf(what, sizeof(what), _("Firefox, profile %s"),
			 dbs[i].name);
		r = one_db(what, dbs[i].dir, module, add, 0);
		if (r != KX_OK && rc == KX_OK)
			rc = r;
		snprintf(lock, sizeof(lock), "%s/lock", dbs[i].dir);
		if (r == KX_OK && lstat(lock, &st) == 0)
			printf(_("%s: Firefox is running; restart it to see "
				 "the change\n"),
			       what);
	}
	kx_nssdb_free(dbs, n);
	return rc;
}

static char *kyso_db_dir(void)
{
	const char *x = getenv("XDG_DATA_HOME");
	char *p;

	if (x && *x) {
		if (asprintf(&p, "%s/kyso/nssdb", x) < 0)
			return NULL;
	} else if (asprintf(&p, "%s/.local/share/kyso/nssdb", kx_home()) < 0) {
		return NULL;
	}
	return p;
}

static char *xml_escape(const char *s)
{
	size_t n = 0, i;
	char *out, *w;

	for (i = 0; s[i]; i++)
		n += strchr("&<>\"'", s[i]) ? 6 : 1;
	out = malloc(n + 1);
	if (!out)
		return NULL;
	for (w = out, i = 0; s[i]; i++) {
		switch (s[i]) {
		case '&':
			w += sprintf(w, "&amp;");
			break;
		case '<':
			w += sprintf(w, "&lt;");
			break;
		case '>':
			w += sprintf(w, "&gt;");
			break;
		case '"':
			w += sprintf(w, "&quot;");
			break;
		case '\'':
			w += sprintf(w, "&apos;");
			break;
		default:
			*w++ = s[i];
		}
	}
	*w = '\0';
	return out;
}

/* Points LibreOffice's Certificate Path at dir, in its user profile. */
static int lo_set_certdir(const char *dir)
{
	static const char end[] = "</oor:items>";
	char *xcu = kx_lo_xcu(), *esc = NULL, *buf = NULL, *pos, *xml = NULL;
	unsigned char *old = NULL;
	size_t n = 0;
	char lodir[PATH_MAX];
	int rc = KX_FAIL, i;

	if (!xcu || kx_read_file(xcu, &old, &n) < 0) {
		printf("%s\n",
		       _("LibreOffice: start it once, or set Tools > Options > "
			 "Security > Certificate Path to this folder:"));
		printf("  %s\n", dir);
		rc = KX_OK;
		goto out;
	}
	/* .../libreoffice/4/user/registrymodifications.xcu: the profile is
	 * .../libreoffice/4. */
	snprintf(lodir, sizeof(lodir), "%s", xcu);
	for (i = 0; i < 2 && (pos = strrchr(lodir, '/')) != NULL; i++)
		*pos = '\0';
	if (kx_lo_running(lodir)) {
		rc = kx_fail(KX_FAIL, "%s",
			     _("LibreOffice: close LibreOffice and run this "
			       "again (it rewrites its settings when it "
			       "quits)"));
		goto out;
	}
	xml = malloc(n + 1);
	esc = xml_escape(dir);
	if (!xml || !esc)
		goto out;
	memcpy(xml, old, n);
	xml[n] = '\0';
	pos = strstr(xml, end);
	if (!pos) {
		rc = kx_fail(KX_FAIL,
			     _("LibreOffice: %s is not a settings "
			       "file kyso understands"),
			     xcu);
		goto out;
	}
	*pos = '\0';
	if (asprintf(&buf,
		     "%s<item oor:path=\"/org.openoffice.Office.Common/"
		     "Security/Scripting\"><prop oor:name=\"CertDir\" "
		     "oor:op=\"fuse\"><value>%s</value></prop></item>\n%s%s",
		     xml, esc, end, pos + strlen(end)) < 0) {
		buf = NULL;
		goto out;
	}
	rc = kx_write_file(xcu, (unsigned char *)buf, strlen(buf));
	if (rc == KX_OK)
		printf(_("LibreOffice: its Certificate Path is now %s\n"), dir);
out:
	free(xcu);
	free(esc);
	free(buf);
	free(xml);
	free(old);
	return rc;
}

static int libreoffice(const char *module, int add)
{
	struct kx_nssdb db;
	enum kx_lo_source src = kx_libreoffice_db(&db);
	char what[PATH_MAX + 64];
	char *own = kyso_db_dir();
	int rc;

	switch (src) {
	case KX_LO_ENV:
		snprintf(what, sizeof(what),
			 _("LibreOffice ($MOZILLA_CERTIFICATE_FOLDER %s)"),
			 db.dir);
		rc = one_db(what, db.dir, module, add, 1);
		break;
	case KX_LO_CERTDIR:
		snprintf(what, sizeof(what),
			 _("LibreOffice (Certificate Path %s)"), db.dir);
		rc = one_db(what, db.dir, module, add, 1);
		break;
	case KX_LO_THUNDERBIRD:
		snprintf(what, sizeof(what),
			 _("LibreOffice (Thunderbird profile %s)"), db.name);
		rc = one_db(what, db.dir, module, add, 0);
		break;
	case KX_LO_FIREFOX:
		snprintf(what, sizeof(what),
			 _("LibreOffice (Firefox profile %s)"), db.name);
		rc = one_db(what, db.dir, module, add, 0);
		break;
	default:
		/* No certificates anywhere: a database of our own, and
		 * LibreOffice's Certificate Path pointed at it. */
		if (!own) {
			rc =
			    kx_fail(KX_FAIL, "%s", kx_rv_text(CKR_HOST_MEMORY));
			break;
		}
		snprintf(what, sizeof(what), _("LibreOffice (%s)"), own);
		rc = one_db(what, own, module, add, add);
		if (rc == KX_OK && add)
			rc = lo_set_certdir(own);
		break;
	}
	free(db.dir);
	free(db.name);
	free(own);
	return rc;
}

static int reg(int argc, char **argv, int add)
{
	static const struct option opts[] = {
	    {"firefox", no_argument, NULL, 'f'},
	    {"libreoffice", no_argument, NULL, 'l'},
	    {NULL, 0, NULL, 0}};
	char module[PATH_MAX];
	int c, ff = 0, lo = 0, rc = KX_OK, r, explicit;

	while ((c = kx_getopt(argc, argv, "", opts)) != -1) {
		if (c == 'f')
			ff = 1;
		else if (c == 'l')
			lo = 1;
		else
			return KX_USAGE;
	}
	if (optind < argc)
		return kx_usage_fail(add ? "register" : "unregister",
				     _("unexpected argument \"%s\""),
				     argv[optind]);
	explicit = ff || lo;
	if (!explicit)
		ff = lo = 1;
	if (!realpath(kx_module_path(), module))
		return kx_fail(KX_MODULE, _("the PKCS#11 module %s is missing"),
			       kx_module_path());
	if (!kx_have_program("modutil"))
		return kx_fail(KX_FAIL, "%s",
			       _("modutil is missing: install the "
				 "libnss3-tools package"));
	if (ff) {
		r = firefox(module, add, explicit);
		if (r != KX_OK && rc == KX_OK)
			rc = r;
	}
	if (lo) {
		r = libreoffice(module, add);
		if (r != KX_OK && rc == KX_OK)
			rc = r;
	}
	return rc;
}

int kx_cmd_register(int argc, char **argv)
{
	return reg(argc, argv, 1);
}

int kx_cmd_unregister(int argc, char **argv)
{
	return reg(argc, argv, 0);
}
