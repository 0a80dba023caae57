/* NSS databases of Firefox profiles and LibreOffice (nss.c). */
#ifndef KYSO_TOOL_NSS_H
#define KYSO_TOOL_NSS_H

#include "tool/kyso.h"

struct kx_nssdb {
	char *dir;  /* real path of the database directory */
	char *name; /* profile name, for messages */
	int is_default;
};

/* $HOME, or "/". */
const char *kx_home(void);
/* Firefox profiles (profiles.ini and any profile with a cert9.db), under
 * ~/.mozilla/firefox and the snap and flatpak homes. */
void kx_firefox_dbs(struct kx_nssdb **dbs, size_t *n);
void kx_nssdb_free(struct kx_nssdb *dbs, size_t n);

/* Where LibreOffice takes its certificates from, in its own order. */
enum kx_lo_source {
	KX_LO_NONE,	   /* nothing: LibreOffice cannot sign */
	KX_LO_ENV,	   /* $MOZILLA_CERTIFICATE_FOLDER */
	KX_LO_CERTDIR,	   /* its Certificate Path setting */
	KX_LO_THUNDERBIRD, /* Thunderbird's default profile */
	KX_LO_FIREFOX,	   /* Firefox's default profile */
};
enum kx_lo_source kx_libreoffice_db(struct kx_nssdb *out);
/* LibreOffice's registrymodifications.xcu (may not exist). Caller frees. */
char *kx_lo_xcu(void);

/* 1 if dir's pkcs11.txt loads module (its NSS name into name), 0 if not,
 * -1 if there is no NSS database there. */
int kx_nssdb_module(const char *dir, const char *module, char *name,
		    size_t namecap);
/* Whether a module of that name is in the database. */
int kx_nssdb_has_name(const char *dir, const char *name);

/* Runs argv (stdin /dev/null), its output into out; the exit status, or -1
 * (127: not found). */
int kx_run(char *const argv[], char *out, size_t outcap);
int kx_have_program(const char *name);
/* Whether LibreOffice runs with the profile in lodir (the directory that
 * holds user/registrymodifications.xcu). */
int kx_lo_running(const char *lodir);

#endif
