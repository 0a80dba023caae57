/* kyso: the token manager's entry point. Sets up the language, reads the
 * options every subcommand shares and dispatches to the subcommand. */
#include "tool/kyso.h"

#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

struct kx_opts kx_opt = {NULL, NULL, -1, -1, 0};
const char *kx_prog = "kyso";

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis; /* command syntax: not translated */
} commands[] = {
    {"list", kx_cmd_list, "kyso list"},
    {"pin", kx_cmd_pin, "kyso pin change | kyso pin unblock"},
    {"keygen", kx_cmd_keygen,
     "kyso keygen --key ID --type rsa2048|rsa3072|p256 [--label TEXT] "
     "[--subject /C=VN/.../CN=... [--out FILE] [--der] [--pss]]"},
    {"csr", kx_cmd_csr,
     "kyso csr --key ID --subject /C=VN/O=.../CN=... [--out FILE] "
     "[--der] [--pss]"},
    {"cert", kx_cmd_cert,
     "kyso cert import FILE [--key ID] | kyso cert export --key ID "
     "[--out FILE] [--der] | kyso cert delete --key ID"},
    {"sign", kx_cmd_sign,
     "kyso sign FILE [--key ID] [--out FILE.p7s] [--pss] "
     "[--hash sha256|sha384|sha512]"},
    {"verify", kx_cmd_verify, "kyso verify FILE [SIGNATURE] [--ca CA.pem]"},
    {"doctor", kx_cmd_doctor, "kyso doctor [--out FILE]"},
    {"register", kx_cmd_register, "kyso register [--firefox] [--libreoffice]"},
    {"unregister", kx_cmd_unregister,
     "kyso unregister [--firefox] [--libreoffice]"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct option common_opts[] = {
    {"module", required_argument, NULL, KX_O_MODULE},
    {"token", required_argument, NULL, KX_O_TOKEN},
    {"slot", required_argument, NULL, KX_O_SLOT},
    {"pin-fd", required_argument, NULL, KX_O_PIN_FD},
    {"yes", no_argument, NULL, KX_O_YES},
    {"help", no_argument, NULL, KX_O_HELP},
};
#define NCOMMON (sizeof(common_opts) / sizeof(common_opts[0]))

int kx_fail(int code, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", kx_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int kx_usage_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", kx_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cmd)
		fprintf(stderr, _(" (see \"kyso %s --help\")\n"), cmd);
	else
		fprintf(stderr, "%s\n", _(" (see \"kyso --help\")"));
	return KX_USAGE;
}

void kx_warn(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", kx_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void kx_field(FILE *f, int indent, const char *label, int width)
{
	wchar_t w[256];
	size_t n = mbstowcs(w, label, 255);
	int cols = -1;

	if (n != (size_t)-1) {
		w[n] = 0;
		cols = wcswidth(w, n);
	}
	if (cols < 0)
		cols = (int)strlen(label);
	fprintf(f, "%*s%s", indent, "", label);
	for (; cols < width; cols++)
		fputc(' ', f);
	fputc(' ', f);
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Handles a common option; 0 if c is one, -1 on a bad value. */
static int common_option(int c, const char *arg)
{
	long v;

	switch (c) {
	case KX_O_MODULE:
		kx_opt.module = arg;
		return 0;
	case KX_O_TOKEN:
		kx_opt.token = arg;
		return 0;
	case KX_O_SLOT:
		if (parse_long(arg, 0, 0x7fffffffL, &v) < 0) {
			kx_fail(KX_USAGE,
				_("--slot wants a number, not \"%s\""), arg);
			return -1;
		}
		kx_opt.slot = v;
		return 0;
	case KX_O_PIN_FD:
		if (parse_long(arg, 0, 1 << 20, &v) < 0) {
			kx_fail(KX_USAGE,
				_("--pin-fd wants a file descriptor number, "
				  "not \"%s\""),
				arg);
			return -1;
		}
		kx_opt.pin_fd = (int)v;
		return 0;
	case KX_O_YES:
		kx_opt.yes = 1;
		return 0;
	}
	return 1;
}

static const char *current_cmd = NULL;

int kx_getopt(int argc, char **argv, const char *shortopts,
	      const struct option *own)
{
	static struct option all[64];
	size_t n = 0, i;
	int c;

	for (i = 0; own && own[i].name && n < 48; i++)
		all[n++] = own[i];
	for (i = 0; i < NCOMMON; i++)
		all[n++] = common_opts[i];
	memset(&all[n], 0, sizeof(all[n]));
	for (;;) {
		opterr = 0;
		c = getopt_long(argc, argv, shortopts, all, NULL);
		if (c == -1)
			return -1;
		if (c == '?' || c == ':') {
			if (optopt && optopt < 256)
				kx_usage_fail(current_cmd,
					      _("unknown option -%c"), optopt);
			else
				kx_usage_fail(current_cmd,
					      _("unknown option or missing "
						"value: %s"),
					      argv[optind - 1]);
			return KX_OPT_BAD;
		}
		if (c == KX_O_HELP) {
			kx_usage(current_cmd, KX_OK);
			exit(KX_OK);
		}
		switch (common_option(c, optarg)) {
		case 0:
			continue;
		case -1:
			return KX_OPT_BAD;
		}
		return c;
	}
}

int kx_usage(const char *cmd, int code)
{
	FILE *f = code == KX_OK ? stdout : stderr;
	size_t i;

	for (i = 0; i < NCOMMANDS; i++)
		if (cmd && strcmp(cmd, commands[i].name) == 0)
			break;
	if (i < NCOMMANDS) {
		fprintf(f, _("usage: %s\n"), commands[i].synopsis);
		if (code == KX_OK)
			fprintf(f, "%s\n",
				_("Common options: --module PATH, --token "
				  "LABEL|SERIAL, --slot N, --pin-fd N, --yes. "
				  "See kyso(1)."));
		return code;
	}

	fprintf(f, "%s\n\n", _("kyso: manage smart-card signing tokens"));
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s\n", commands[i].synopsis);
	fprintf(f, "\n%s\n",
		_("Common options: --module PATH, --token LABEL|SERIAL, --slot "
		  "N, --pin-fd N, --yes, --help. See kyso(1)."));
	return code;
}

/* The language: LANG=vi_VN.UTF-8 gives Vietnamese even when that locale was
 * never generated on this machine (a common state of fresh installs): the
 * messages then come in UTF-8 through LANGUAGE. */
static void setup_language(void)
{
	const char *want, *dir;

	if (setlocale(LC_ALL, "") == NULL) {
		want = getenv("LC_ALL");
		if (!want || !*want)
			want = getenv("LC_MESSAGES");
		if (!want || !*want)
			want = getenv("LANG");
		if (setlocale(LC_ALL, "C.UTF-8") != NULL && want && *want &&
		    strcmp(want, "C") != 0 && strcmp(want, "POSIX") != 0 &&
		    (!getenv("LANGUAGE") || !*getenv("LANGUAGE"))) {
			char lang[64];
			size_t n = strcspn(want, ".@");

			if (n < sizeof(lang)) {
				memcpy(lang, want, n);
				lang[n] = '\0';
				setenv("LANGUAGE", lang, 1);
			}
		}
	}
	dir = getenv("KYSO_LOCALEDIR");
	bindtextdomain(PACKAGE, dir && *dir ? dir : LOCALEDIR);
	textdomain(PACKAGE);
}

int main(int argc, char **argv)
{
	size_t i;
	int c, rc;
	static const struct option global[] = {
	    {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};

	setup_language();
	/* Global options before the subcommand. */
	optind = 1;
	while ((c = kx_getopt(argc, argv, "+hV", global)) != -1) {
		if (c == KX_OPT_BAD)
			return KX_USAGE;
		if (c == 'V') {
			printf("kyso %s\n", PACKAGE_VERSION);
			return KX_OK;
		}
		if (c == 'h')
			return kx_usage(NULL, KX_OK);
	}
	if (optind >= argc)
		return kx_usage_fail(NULL, "%s", _("no command given"));
	for (i = 0; i < NCOMMANDS; i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		current_cmd = commands[i].name;
		argc -= optind;
		argv += optind;
		optind = 0; /* getopt_long: start over on the new argv */
		rc = commands[i].run(argc, argv);
		kx_p11_unload();
		fflush(stdout);
		if (ferror(stdout) && rc == KX_OK)
			rc = kx_fail(KX_FAIL, _("cannot write the output"));
		return rc;
	}
	return kx_usage_fail(NULL, _("unknown command \"%s\""), argv[optind]);
}
