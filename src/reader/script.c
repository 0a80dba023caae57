/* A card that plays back a script, for unit tests and fuzzers: each command
 * must be the next one expected and gets the scripted answer; the raw variant
 * answers whatever comes with the next response of a list. */
#include "reader/reader.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/log.h"

struct script_step {
	uint8_t *cmd; /* NULL: any command */
	size_t cmdlen;
	uint8_t *resp;
	size_t resplen;
};

struct script {
	struct script_step *steps;
	size_t n, next;
	int raw;
	int mismatch;
	unsigned begins, ends;
};

static CK_RV script_transmit(struct kyso_card *c, const uint8_t *cmd,
			     size_t len, uint8_t *resp, size_t *resplen)
{
	struct script *s = c->priv;
	const struct script_step *st;
	char hex[2 * 64 + 1];

	if (s->next >= s->n) {
		if (!s->raw) {
			s->mismatch = 1;
			kyso_err("script: command after the last step");
		}
		*resplen = 0;
		return CKR_DEVICE_ERROR;
	}
	st = &s->steps[s->next];
	if (st->cmd && (st->cmdlen != len || memcmp(st->cmd, cmd, len) != 0)) {
		s->mismatch = 1;
		if (kyso_apdu_is_secret(cmd, len) || len > 64) {
			kyso_err("script: step %zu: unexpected command (%zu "
				 "bytes)",
				 s->next, len);
		} else {
			kyso_hex(cmd, len, hex);
			kyso_err("script: step %zu: unexpected command %s",
				 s->next, hex);
		}
		*resplen = 0;
		return CKR_DEVICE_ERROR;
	}
	s->next++;
	if (st->resplen)
		memcpy(resp, st->resp, st->resplen);
	*resplen = st->resplen;
	return CKR_OK;
}

static CK_RV script_begin(struct kyso_card *c)
{
	struct script *s = c->priv;

	s->begins++;
	return CKR_OK;
}

static CK_RV script_end(struct kyso_card *c)
{
	struct script *s = c->priv;

	s->ends++;
	return CKR_OK;
}

static void script_release(struct kyso_card *c)
{
	struct script *s = c->priv;
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->n; i++) {
		free(s->steps[i].cmd);
		free(s->steps[i].resp);
	}
	free(s->steps);
	free(s);
	c->priv = NULL;
}

static const struct kyso_card_ops script_ops = {
    .transmit = script_transmit,
    .begin = script_begin,
    .end = script_end,
    .release = script_release,
};

static struct kyso_card *card_new(const uint8_t *atr, size_t atrlen, size_t n,
				  int raw)
{
	struct kyso_card *c;
	struct script *s;

	if (atrlen > KYSO_MAX_ATR || (atrlen && !atr))
		return NULL;
	c = calloc(1, sizeof(*c));
	s = calloc(1, sizeof(*s));
	if (!c || !s)
		goto fail;
	if (n) {
		s->steps = calloc(n, sizeof(*s->steps));
		if (!s->steps)
			goto fail;
	}
	s->n = n;
	s->raw = raw;
	c->ops = &script_ops;
	c->priv = s;
	if (atrlen)
		memcpy(c->atr, atr, atrlen);
	c->atrlen = atrlen;
	return c;
fail:
	free(s);
	free(c);
	return NULL;
}

/* Parses hex into a malloc'd buffer; -1 on bad hex or no memory. */
static int parse_hex(const char *hex, uint8_t **out, size_t *len)
{
	size_t cap = strlen(hex) / 2 + 1;
	long n;

	*out = malloc(cap);
	if (!*out)
		return -1;
	n = kyso_unhex(hex, *out, cap);
	if (n < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	*len = (size_t)n;
	return 0;
}

static int is_wildcard(const char *s)
{
	while (*s == ' ')
		s++;
	if (*s != '*')
		return 0;
	for (s++; *s == ' '; s++)
		;
	return *s == '\0';
}

struct kyso_card *kyso_script_card(const uint8_t *atr, size_t atrlen,
				   const struct kyso_script_step *steps,
				   size_t n)
{
	struct kyso_card *c;
	struct script *s;
	size_t i;

	if (n && !steps)
		return NULL;
	c = card_new(atr, atrlen, n, 0);
	if (!c)
		return NULL;
	s = c->priv;
	for (i = 0; i < n; i++) {
		struct script_step *st = &s->steps[i];

		if (!steps[i].cmd || !steps[i].resp)
			goto bad;
		if (!is_wildcard(steps[i].cmd) &&
		    parse_hex(steps[i].cmd, &st->cmd, &st->cmdlen) < 0)
			goto bad;
		if (parse_hex(steps[i].resp, &st->resp, &st->resplen) < 0 ||
		    st->resplen > KYSO_MAX_RAPDU)
			goto bad;
	}
	return c;
bad:
	kyso_err("script: step %zu is not valid hex", i);
	kyso_card_free(c);
	return NULL;
}

struct kyso_card *kyso_script_card_raw(const uint8_t *atr, size_t atrlen,
				       const uint8_t *const *resp,
				       const size_t *resplen, size_t n)
{
	struct kyso_card *c;
	struct script *s;
	size_t i;

	if (n && (!resp || !resplen))
		return NULL;
	c = card_new(atr, atrlen, n, 1);
	if (!c)
		return NULL;
	s = c->priv;
	for (i = 0; i < n; i++) {
		struct script_step *st = &s->steps[i];

		if (resplen[i] > KYSO_MAX_RAPDU || (resplen[i] && !resp[i]))
			goto bad;
		if (resplen[i]) {
			st->resp = malloc(resplen[i]);
			if (!st->resp)
				goto bad;
			memcpy(st->resp, resp[i], resplen[i]);
		}
		st->resplen = resplen[i];
	}
	return c;
bad:
	kyso_card_free(c);
	return NULL;
}

size_t kyso_script_left(const struct kyso_card *c)
{
	const struct script *s;

	if (!c || c->ops != &script_ops)
		return 0;
	s = c->priv;
	return s->n - s->next;
}

int kyso_script_mismatch(const struct kyso_card *c)
{
	const struct script *s;

	if (!c || c->ops != &script_ops)
		return 1; /* not a script card: a test bug, make it fail */
	s = c->priv;
	return s->mismatch;
}
