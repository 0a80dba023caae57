/* The driver tests' token and scripted cards (rig.h). */
#include <check.h>
#include <stdlib.h>

#include "rig.h"

struct kyso_token *new_token(void)
{
	struct kyso_token *tok = calloc(1, sizeof(*tok));

	ck_assert_ptr_nonnull(tok);
	tok->user_tries = tok->user_max = tok->so_tries = tok->so_max = -1;
	tok->login = KYSO_NOBODY;
	return tok;
}

void script_add(struct kyso_script_step **v, size_t *n, const char *cmd,
		const char *resp)
{
	struct kyso_script_step *nv = realloc(*v, (*n + 1) * sizeof(*nv));

	ck_assert_ptr_nonnull(nv);
	nv[*n].cmd = cmd;
	nv[*n].resp = resp;
	*v = nv;
	(*n)++;
}

void script_done(const struct kyso_card *c)
{
	ck_assert_int_eq(kyso_script_mismatch(c), 0);
	ck_assert_uint_eq(kyso_script_left(c), 0);
}
