/* The transport-independent part of a card handle: nested transactions, the
 * traced exchange every APDU goes through, and the choice of reader back-end
 * (PC/SC, or whatever a test installs). */
#include "reader/reader.h"

#include <stdlib.h>

#include "util/log.h"

static const struct kyso_readers_ops *readers_backend;

void kyso_readers_set_backend(const struct kyso_readers_ops *ops)
{
	readers_backend = ops;
}

const struct kyso_readers_ops *kyso_readers_backend(void)
{
	return readers_backend ? readers_backend : &kyso_pcsc_readers;
}

CK_RV kyso_card_begin(struct kyso_card *c)
{
	CK_RV rv = CKR_OK;

	if (!c || !c->ops)
		return CKR_ARGUMENTS_BAD;
	if (c->depth > 0) {
		if (c->depth == (unsigned)-1)
			return CKR_GENERAL_ERROR;
		c->depth++;
		return CKR_OK;
	}
	if (c->ops->begin)
		rv = c->ops->begin(c);
	if (rv == CKR_OK)
		c->depth = 1;
	return rv;
}

CK_RV kyso_card_end(struct kyso_card *c)
{
	if (!c || !c->ops)
		return CKR_ARGUMENTS_BAD;
	if (c->depth == 0) {
		kyso_err("card: transaction end without begin");
		return CKR_GENERAL_ERROR;
	}
	if (--c->depth > 0)
		return CKR_OK;
	return c->ops->end ? c->ops->end(c) : CKR_OK;
}

CK_RV kyso_card_transmit_redact(struct kyso_card *c, const uint8_t *cmd,
				size_t len, uint8_t *resp, size_t *resplen,
				int redact)
{
	CK_RV rv;

	if (!c || !c->ops || !c->ops->transmit || !cmd || len == 0 || !resp ||
	    !resplen)
		return CKR_ARGUMENTS_BAD;

	c->apdus++;
	if (kyso_log_level >= KYSO_LOG_APDU)
		kyso_log_apdu(1, cmd, len,
			      redact || kyso_apdu_is_secret(cmd, len));

	/* the room resp has, for transports that ask (SCardTransmit) */
	*resplen = KYSO_MAX_RAPDU;
	rv = c->ops->transmit(c, cmd, len, resp, resplen);
	if (rv != CKR_OK) {
		kyso_err("card: transmit failed: rv 0x%lx", (unsigned long)rv);
		*resplen = 0;
		return rv;
	}
	if (*resplen > KYSO_MAX_RAPDU) {
		kyso_err("card: transport gave %zu bytes", *resplen);
		*resplen = 0;
		return CKR_DEVICE_ERROR;
	}
	if (kyso_log_level >= KYSO_LOG_APDU)
		kyso_log_apdu(0, resp, *resplen, 0);
	if (*resplen < 2) {
		kyso_err("card: response of %zu bytes has no status word",
			 *resplen);
		return CKR_DEVICE_ERROR;
	}
	return CKR_OK;
}

CK_RV kyso_card_transmit(struct kyso_card *c, const uint8_t *cmd, size_t len,
			 uint8_t *resp, size_t *resplen)
{
	return kyso_card_transmit_redact(c, cmd, len, resp, resplen, 0);
}

void kyso_card_free(struct kyso_card *c)
{
	if (!c)
		return;
	if (c->ops && c->ops->release)
		c->ops->release(c);
	free(c);
}

void kyso_strv_free(char **v, size_t n)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}
