/* Where Firefox and LibreOffice keep their NSS databases, whether the kyso
 * module is in one (read from its pkcs11.txt, no NSS call), and modutil to
 * add or remove it. Shared by kyso doctor, register and unregister. */
#include "tool/nss.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *join(const char *a, const char *b)
{
	char *s;

	if (asprintf(&s, "%s/%s", a, b) < 0)
		return NULL;
	return s;
}

/* Copies src into dst[cap], cut if need be. */
static void copy(char *dst, size_t cap, const char *src, size_t len)
{
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

static int is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

const char *kx_home(void)
{
	const char *h = getenv("HOME");

	return h && *h ? h : "/";
}

static void add_db(struct kx_nssdb **dbs, size_t *n, const char *dir,
		   const char *name, int is_default)
{
	char real[PATH_MAX];
	struct kx_nssdb *nd;
	size_t i;

	if (!realpath(dir, real))
		return;
	for (i = 0; i < *n; i++)
		if (strcmp((*dbs)[i].dir, real) == 0) {
			(*dbs)[i].is_default |= is_default;
			return;
		}
	nd = realloc(*dbs, (*n + 1) * sizeof(*nd));
	if (!nd)
		return;
	*dbs = nd;
	nd[*n].dir = strdup(real);
	nd[*n].name = strdup(name);
	nd[*n].is_default = is_default;
	if (nd[*n].dir && nd[*n].name)
		(*n)++;
}

/* Reads a Mozilla profiles.ini: [ProfileN] Path=, IsRelative=, Default=;
 * [Install...] Default= names the profile in use. */
static void read_profiles_ini(const char *base, struct kx_nssdb **dbs,
			      size_t *n)
{
	char *ini = join(base, "profiles.ini"), line[PATH_MAX + 64];
	char path[PATH_MAX] = "", install_default[PATH_MAX] = "";
	int relative = 1, is_def = 0, in_profile = 0;
	FILE *f = ini ? fopen(ini, "r") : NULL;

	free(ini);
	if (!f)
		return;
	for (;;) {
		int eof = !fgets(line, sizeof(line), f);

		line[strcspn(line, "\r\n")] = '\0';
		if (eof || line[0] == '[') {
			if (in_profile && path[0]) {
				char *dir =
				    relative ? join(base, path) : strdup(path);
				const char *nm = strrchr(path, '/');

				if (dir && is_dir(dir))
					add_db(dbs, n, dir, nm ? nm + 1 : path,
					       is_def);
				free(dir);
			}
			if (eof)
				break;
			in_profile = strncmp(line, "[Profile", 8) == 0;
			path[0] = '\0';
			relative = 1;
			is_def = 0;
			if (strncmp(line, "[Install", 8) == 0)
				in_profile = 0;
			continue;
		}
		if (strncmp(line, "Path=", 5) == 0 && in_profile)
			copy(path, sizeof(path), line + 5, strlen(line + 5));
		else if (strncmp(line, "IsRelative=", 11) == 0)
			relative = atoi(line + 11) != 0;
		else if (strcmp(line, "Default=1") == 0 && in_profile)
			is_def = 1;
		else if (strncmp(line, "Default=", 8) == 0 && !in_profile)
			copy(install_default, sizeof(install_default), line + 8,
			     strlen(line + 8));
	}
	fclose(f);
	if (install_default[0]) {
		char *dir = install_default[0] == '/'
				? strdup(install_default)
				: join(base, install_default);
		char real[PATH_MAX];
		size_t i;

		/* The installation's default beats the old Default=1. */
		if (dir && realpath(dir, real))
			for (i = 0; i < *n; i++)
				(*dbs)[i].is_default =
				    strcmp((*dbs)[i].dir, real) == 0;
		free(dir);
	}
}

/* Profiles profiles.ini does not name but that hold an NSS database. */
static void scan_profiles(const char *base, struct kx_nssdb **dbs, size_t *n)
{
	DIR *d = opendir(base);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		char *dir, *db;

		if (e->d_name[0] == '.')
			continue;
		dir = join(base, e->d_name);
		db = dir ? join(dir, "cert9.db") : NULL;
		if (db && exists(db))
			add_db(dbs, n, dir, e->d_name, 0);
		free(db);
		free(dir);
	}
	closedir(d);
}

static const char *const firefox_bases[] = {
    ".mozilla/firefox",
    "snap/firefox/common/.mozilla/firefox",
    ".var/app/org.mozilla.firefox/.mozilla/firefox",
};

void kx_firefox_dbs(struct kx_nssdb **dbs, size_t *n)
{
	size_t i;

	*dbs = NULL;
	*n = 0;
	for (i = 0; i < sizeof(firefox_bases) / sizeof(firefox_bases[0]); i++) {
		char *base = join(kx_home(), firefox_bases[i]);

		if (base && is_dir(base)) {
			read_profiles_ini(base, dbs, n);
			scan_profiles(base, dbs, n);
		}
		free(base);
	}
}

void kx_nssdb_free(struct kx_nssdb *dbs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(dbs[i].dir);
		free(dbs[i].name);
	}
	free(dbs);
}

char *kx_lo_xcu(void)
{
	const char *x = getenv("XDG_CONFIG_HOME");
	char *cfg, *p;

	if (x && *x)
		cfg = strdup(x);
	else
		cfg = join(kx_home(), ".config");
	if (!cfg)
		return NULL;
	p = join(cfg, "libreoffice/4/user/registrymodifications.xcu");
	free(cfg);
	return p;
}

/* The XML of a LibreOffice registrymodifications.xcu, or NULL. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0, len = 0, r;

	if (!f)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap = cap * 2 + 8192);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		r = fread(buf + len, 1, 4096, f);
		if (r == 0)
			break;
		len += r;
	}
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

static void xml_unescape(char *s)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = {{"&amp;", '&'},
		    {"&lt;", '<'},
		    {"&gt;", '>'},
		    {"&quot;", '"'},
		    {"&apos;", '\''}};
	char *r = s, *w = s;
	size_t i;

	while (*r) {
		for (i = 0; i < 5; i++)
			if (strncmp(r, ents[i].ent, strlen(ents[i].ent)) == 0)
				break;
		if (i < 5) {
			*w++ = ents[i].c;
			r += strlen(ents[i].ent);
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

/* The CertDir LibreOffice is told to use (Tools > Options > Security >
 * Certificate Path), or NULL. */
static char *lo_certdir(void)
{
	char *xcu = kx_lo_xcu(), *xml = xcu ? slurp(xcu) : NULL, *p, *e;
	char *out = NULL;

	free(xcu);
	if (!xml)
		return NULL;
	p = strstr(xml, "Security/Scripting\"><prop oor:name=\"CertDir\"");
	if (p && (p = strstr(p, "<value>")) != NULL &&
	    (e = strstr(p, "</value>")) != NULL && e < strstr(p, "</item>")) {
		p += 7;
		*e = '\0';
		xml_unescape(p);
		if (strncmp(p, "sql:", 4) == 0)
			p += 4;
		/* LibreOffice ignores a CertDir that does not exist. */
		if (*p && is_dir(p))
			out = strdup(p);
	}
	free(xml);
	return out;
}

static int default_profile(const char *base_rel, struct kx_nssdb *out)
{
	struct kx_nssdb *dbs = NULL;
	size_t n = 0, i;
	char *base = join(kx_home(), base_rel);
	int found = 0;

	if (base && is_dir(base))
		read_profiles_ini(base, &dbs, &n);
	free(base);
	for (i = 0; i < n && !found; i++)
		if (dbs[i].is_default || n == 1) {
			out->dir = strdup(dbs[i].dir);
			out->name = strdup(dbs[i].name);
			found = out->dir && out->name;
		}
	kx_nssdb_free(dbs, n);
	return found;
}

enum kx_lo_source kx_libreoffice_db(struct kx_nssdb *out)
{
	const char *env = getenv("MOZILLA_CERTIFICATE_FOLDER");
	char *dir;

	memset(out, 0, sizeof(*out));
	if (env && *env) {
		out->dir = strdup(strncmp(env, "sql:", 4) == 0 ? env + 4 : env);
		out->name = strdup("MOZILLA_CERTIFICATE_FOLDER");
		return KX_LO_ENV;
	}
	dir = lo_certdir();
	if (dir) {
		out->dir = dir;
		out->name = strdup("CertDir");
		return KX_LO_CERTDIR;
	}
	/* What LibreOffice looks for itself: Thunderbird's default profile,
	 * then Firefox's. */
	if (default_profile(".thunderbird", out))
		return KX_LO_THUNDERBIRD;
	if (default_profile(".mozilla/firefox", out))
		return KX_LO_FIREFOX;
	return KX_LO_NONE;
}

/* pkcs11.txt blocks: "library=" and "name=" lines, blank-line separated. */
int kx_nssdb_module(const char *dir, const char *module, char *name,
		    size_t namecap)
{
	char *path = join(dir, "pkcs11.txt"), line[PATH_MAX + 64];
	char lib[PATH_MAX] = "", nm[256] = "", want[PATH_MAX];
	FILE *f = path ? fopen(path, "r") : NULL;
	int found = 0;

	free(path);
	if (!f)
		return -1;
	if (!realpath(module, want))
		snprintf(want, sizeof(want), "%s", module);
	for (;;) {
		int eof = !fgets(line, sizeof(line), f);

		line[strcspn(line, "\r\n")] = '\0';
		if (eof || line[0] == '\0') {
			char real[PATH_MAX];

			if (lib[0] && (strcmp(lib, want) == 0 ||
				       (realpath(lib, real) &&
					strcmp(real, want) == 0))) {
				found = 1;
				snprintf(name, namecap, "%s", nm);
				break;
			}
			lib[0] = nm[0] = '\0';
			if (eof)
				break;
			continue;
		}
		if (strncmp(line, "library=", 8) == 0)
			copy(lib, sizeof(lib), line + 8, strlen(line + 8));
		else if (strncmp(line, "name=", 5) == 0) {
			const char *v = line + 5;
			size_t l = strlen(v);

			if (l >= 2 && v[0] == '"' && v[l - 1] == '"')
				copy(nm, sizeof(nm), v + 1, l - 2);
			else
				copy(nm, sizeof(nm), v, l);
		}
	}
	fclose(f);
	return found;
}

int kx_nssdb_has_name(const char *dir, const char *name)
{
	char *path = join(dir, "pkcs11.txt"), line[PATH_MAX + 64], want[300];
	FILE *f = path ? fopen(path, "r") : NULL;
	int found = 0;

	free(path);
	if (!f)
		return 0;
	snprintf(want, sizeof(want), "name=%s", name);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strcmp(line, want) == 0)
			found = 1;
	}
	fclose(f);
	return found;
}

int kx_run(char *const argv[], char *out, size_t outcap)
{
	int pfd[2], status = 0, devnull;
	size_t len = 0;
	ssize_t r;
	pid_t pid;

	if (out && outcap)
		out[0] = '\0';
	if (pipe(pfd) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		close(pfd[0]);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pfd[1]);
	for (;;) {
		char buf[1024];

		r = read(pfd[0], buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (out && len + 1 < outcap) {
			size_t k = (size_t)r < outcap - len - 1
				       ? (size_t)r
				       : outcap - len - 1;

			memcpy(out + len, buf, k);
			len += k;
			out[len] = '\0';
		}
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

int kx_have_program(const char *name)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save = NULL;
	int found = 0;

	if (!path)
		path = "/usr/bin:/bin";
	copy = strdup(path);
	for (dir = copy ? strtok_r(copy, ":", &save) : NULL; dir && !found;
	     dir = strtok_r(NULL, ":", &save)) {
		char *p = join(*dir ? dir : ".", name);

		found = p && access(p, X_OK) == 0;
		free(p);
	}
	free(copy);
	return found;
}

/* A NUL-separated /proc file, read whole (at most cap-1 bytes). */
static size_t read_proc(const char *pid, const char *what, char *buf,
			size_t cap)
{
	char path[300];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/%s", pid, what);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n;
}

/* The value of NAME=... in a NUL-separated list, or NULL. */
static const char *nul_find(const char *buf, size_t n, const char *prefix)
{
	size_t off = 0, pl = strlen(prefix);

	while (off < n) {
		const char *e = buf + off;

		if (strncmp(e, prefix, pl) == 0)
			return e + pl;
		off += strlen(e) + 1;
	}
	return NULL;
}

int kx_lo_running(const char *lodir)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	static char buf[65536];
	char comm[64], path[300], mine[PATH_MAX], theirs[PATH_MAX];
	const char *home = kx_home(), *v;
	int found = 0;
	uid_t me = getuid();

	if (!d)
		return 0;
	if (!realpath(lodir, mine))
		copy(mine, sizeof(mine), lodir, strlen(lodir));
	while (!found && (e = readdir(d)) != NULL) {
		struct stat st;
		size_t n;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s", e->d_name);
		if (stat(path, &st) < 0 || st.st_uid != me)
			continue;
		if (!read_proc(e->d_name, "comm", comm, sizeof(comm)))
			continue;
		comm[strcspn(comm, "\n")] = '\0';
		if (strcmp(comm, "soffice.bin") != 0)
			continue;
		/* Another LibreOffice profile (a private -env:UserInstallation,
		 * another HOME) keeps its own settings: not ours. */
		n = read_proc(e->d_name, "cmdline", buf, sizeof(buf));
		v = nul_find(buf, n, "-env:UserInstallation=file://");
		if (v) {
			if (!realpath(v, theirs))
				copy(theirs, sizeof(theirs), v, strlen(v));
			found = strcmp(theirs, mine) == 0;
			continue;
		}
		n = read_proc(e->d_name, "environ", buf, sizeof(buf));
		v = n ? nul_find(buf, n, "HOME=") : NULL;
		found = !v || strcmp(v, home) == 0;
	}
	closedir(d);
	return found;
}
