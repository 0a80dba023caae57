/* What the driver tests set a card and a token up with: a token as the
 * slot layer hands it to a driver's bind, the steps of a scripted card
 * and the end check of a card from kyso_script_card. */
#ifndef KYSO_TEST_RIG_H
#define KYSO_TEST_RIG_H

#include "reader/reader.h"
#include "token/token.h"

/* A fresh token: nobody logged in, PIN tries unknown (-1). */
struct kyso_token *new_token(void);
/* Appends the step cmd -> resp (not copied) to the n steps at *v, which
 * grow with realloc: the caller frees *v. */
void script_add(struct kyso_script_step **v, size_t *n, const char *cmd,
		const char *resp);
/* Every step of the scripted card consumed, every command as expected. */
void script_done(const struct kyso_card *c);

#endif
