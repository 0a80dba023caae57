/* ISO/IEC 7816-4 secure messaging: commands wrapped as 87 / 97 / 8E, answers
 * opened from 87 / 99 / 8E after their MAC was checked. All cryptography is
 * src/crypto/'s; this file only lays out bytes and checks them. */
#include "iso7816/sm.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define TAG_DATA 0x87
#define TAG_LE	 0x97
#define TAG_SW	 0x99
#define TAG_MAC	 0x8E
#define MAC_LEN	 8

size_t kyso_sm_wrapped_max(size_t lc)
{
	/* header, Lc, 87 header, data with a padding block, 97, 8E, Le */
	return 4 + 3 + 5 + lc + 16 + 4 + 2 + MAC_LEN + 2;
}

void kyso_sm_clear(struct kyso_sm *sm)
{
	kyso_wipe(sm->kenc, sizeof(sm->kenc));
	kyso_wipe(sm->kmac, sizeof(sm->kmac));
	kyso_wipe(sm->icv, sizeof(sm->icv));
}

static size_t block_size(const struct kyso_sm *sm)
{
	return kyso_cipher_block(sm->cipher);
}

static int valid_session(const struct kyso_sm *sm)
{
	size_t bs = block_size(sm);

	switch (sm->mac) {
	case KYSO_SM_RETAIL:
		return bs == 8;
	case KYSO_SM_CBCMAC:
	case KYSO_SM_CMAC:
		return bs == 16 && sm->cipher == KYSO_AES;
	}
	return 0;
}

static void icv_increment(uint8_t *icv, size_t bs)
{
	size_t i = bs;

	while (i-- > 0)
		if (++icv[i] != 0)
			break;
}

/* The MAC of m (the header block and data objects, not padded) under the
 * session's scheme, from its chaining value; out gets 8 bytes. */
static CK_RV compute_mac(const struct kyso_sm *sm, const uint8_t *m, size_t len,
			 uint8_t out[MAC_LEN])
{
	size_t bs = block_size(sm), padded;
	uint8_t tag[16], *buf;
	CK_RV rv;

	if (sm->mac == KYSO_SM_CMAC) {
		rv = kyso_mac_cmac(sm->kmac, 16, sm->icv, m, len, tag);
		if (rv == CKR_OK)
			memcpy(out, tag, MAC_LEN);
		kyso_wipe(tag, sizeof(tag));
		return rv;
	}
	padded = (len / bs + 1) * bs;
	buf = calloc(1, padded);
	if (buf == NULL)
		return CKR_HOST_MEMORY;
	memcpy(buf, m, len);
	buf[len] = 0x80;
	if (sm->mac == KYSO_SM_RETAIL)
		rv = kyso_mac_retail(sm->kmac, sm->icv, buf, padded, tag);
	else
		rv = kyso_mac_cbc(KYSO_AES, sm->kmac, 16, sm->icv, buf, padded,
				  tag);
	if (rv == CKR_OK)
		memcpy(out, tag, MAC_LEN);
	kyso_wipe(buf, padded);
	free(buf);
	kyso_wipe(tag, sizeof(tag));
	return rv;
}

/* The header block of the MAC input: CLA INS P1 P2, padded to a block.
 * When no data object follows, this block is the whole input and no
 * further padding is added. */
static size_t header_block(const struct kyso_sm *sm, const uint8_t hdr[4],
			   uint8_t *out)
{
	size_t bs = block_size(sm);

	memset(out, 0, bs);
	memcpy(out, hdr, 4);
	out[4] = 0x80;
	return bs;
}

CK_RV kyso_sm_wrap(struct kyso_sm *sm, const struct kyso_apdu *a, unsigned opts,
		   uint8_t *out, size_t cap, size_t *outlen)
{
	uint8_t hdr[4], mac[MAC_LEN], tag[16], *objs = NULL, *m = NULL;
	size_t bs, padlen = 0, nobj = 0, ncap, lcw, n = 0, mlen;
	int le2 = 0, ext;
	CK_RV rv;

	if (sm == NULL || a == NULL || out == NULL || outlen == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!valid_session(sm) || a->lc > 65000 || a->le > KYSO_LE_MAX ||
	    (a->lc > 0) != (a->data != NULL))
		return CKR_ARGUMENTS_BAD;
	if ((opts & KYSO_SM_MAC_HEADER_ONLY) &&
	    (a->lc > 0 || a->le != KYSO_LE_NONE || sm->mac != KYSO_SM_CMAC))
		return CKR_ARGUMENTS_BAD;
	bs = block_size(sm);

	hdr[0] = a->cla | 0x0C;
	hdr[1] = a->ins;
	hdr[2] = a->p1;
	hdr[3] = a->p2;

	if (a->lc > 0)
		padlen = (a->lc / bs + 1) * bs;
	ncap = padlen + 5 + 4;
	objs = malloc(ncap);
	if (objs == NULL)
		return CKR_HOST_MEMORY;

	if (a->lc > 0) {
		size_t l = padlen + 1, h;
		uint8_t *plain = calloc(1, padlen);

		if (plain == NULL) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		memcpy(plain, a->data, a->lc);
		plain[a->lc] = 0x80;
		objs[nobj++] = TAG_DATA;
		/* Two length bytes above 127, as the tokens were seen to take
		 * (82 xx xx is valid BER, if not the shortest). */
		if (l <= 0x7F) {
			objs[nobj++] = (uint8_t)l;
		} else {
			objs[nobj++] = 0x82;
			objs[nobj++] = (uint8_t)(l >> 8);
			objs[nobj++] = (uint8_t)l;
		}
		objs[nobj++] = 0x01; /* padding indicator: ISO padding */
		h = nobj;
		rv = kyso_cipher_cbc(sm->cipher, sm->kenc, 16, 1, NULL, plain,
				     padlen, objs + h);
		kyso_wipe(plain, padlen);
		free(plain);
		if (rv != CKR_OK)
			goto out;
		nobj += padlen;
	}
	if (a->le != KYSO_LE_NONE) {
		objs[nobj++] = TAG_LE;
		if (a->le <= 0x7F || a->le == 256) {
			objs[nobj++] = 1;
			objs[nobj++] = (uint8_t)a->le; /* 256 is 00 */
		} else {
			le2 = 1;
			objs[nobj++] = 2;
			objs[nobj++] = (uint8_t)(a->le >> 8); /* 65536: 00 00 */
			objs[nobj++] = (uint8_t)a->le;
		}
	}

	if (sm->flags & KYSO_SM_ICV_COUNTER)
		icv_increment(sm->icv, bs);

	if (opts & KYSO_SM_MAC_HEADER_ONLY) {
		rv =
		    kyso_mac_cmac(sm->kmac, 16, sm->icv, hdr, sizeof(hdr), tag);
		memcpy(mac, tag, MAC_LEN);
		kyso_wipe(tag, sizeof(tag));
	} else {
		m = malloc(bs + nobj);
		if (m == NULL) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
		mlen = header_block(sm, hdr, m);
		memcpy(m + mlen, objs, nobj);
		mlen += nobj;
		if (nobj == 0 && sm->mac != KYSO_SM_CMAC) {
			/* The header block alone, already padded. */
			if (sm->mac == KYSO_SM_RETAIL)
				rv = kyso_mac_retail(sm->kmac, sm->icv, m, bs,
						     mac);
			else {
				rv = kyso_mac_cbc(KYSO_AES, sm->kmac, 16,
						  sm->icv, m, bs, tag);
				memcpy(mac, tag, MAC_LEN);
				kyso_wipe(tag, sizeof(tag));
			}
		} else {
			rv = compute_mac(sm, m, mlen, mac);
		}
	}
	if (rv != CKR_OK)
		goto out;

	lcw = nobj + 2 + MAC_LEN;
	ext = lcw > 255 || le2;
	if (lcw > 65535) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	if (4 + (ext ? 3 : 1) + lcw + (ext ? 2 : 1) > cap) {
		rv = CKR_BUFFER_TOO_SMALL;
		goto out;
	}
	memcpy(out, hdr, 4);
	n = 4;
	if (ext) {
		out[n++] = 0x00;
		out[n++] = (uint8_t)(lcw >> 8);
	}
	out[n++] = (uint8_t)lcw;
	memcpy(out + n, objs, nobj);
	n += nobj;
	out[n++] = TAG_MAC;
	out[n++] = MAC_LEN;
	memcpy(out + n, mac, MAC_LEN);
	n += MAC_LEN;
	/* Le: the wrapped answer is longer than the plain one */
	if (ext)
		out[n++] = 0x00;
	out[n++] = 0x00;
	*outlen = n;
	rv = CKR_OK;
out:
	if (m != NULL) {
		kyso_wipe(m, bs + nobj);
		free(m);
	}
	kyso_wipe(objs, ncap);
	free(objs);
	kyso_wipe(mac, sizeof(mac));
	return rv;
}

/* Reads the 87 object's header at p[0..len): the length, with the quirk of
 * tokens that send a length from 80 to FF as one byte, without the 81
 * (87 LL 01 ..., OpenSC's card-epass2003.c works around the same). The
 * padding indicator 01 that follows is what tells the quirk apart: a real
 * 81 or 82 form is never followed by 01 at that place unless its length is
 * one of the values the quirk cannot produce. */
static int data_object(const uint8_t *p, size_t len, size_t *hdrlen,
		       size_t *vlen)
{
	uint8_t b1;

	if (len < 3 || p[0] != TAG_DATA)
		return -1;
	b1 = p[1];
	if (b1 < 0x80) {
		*hdrlen = 2;
		*vlen = b1;
	} else if (b1 == 0x82) {
		if (len < 4)
			return -1;
		*hdrlen = 4;
		*vlen = (size_t)p[2] << 8 | p[3];
	} else if (b1 == 0x81 && p[2] != 0x01) {
		*hdrlen = 3;
		*vlen = p[2];
	} else if (p[2] == 0x01) {
		*hdrlen = 2;
		*vlen = b1;
	} else {
		return -1;
	}
	if (*vlen > len - *hdrlen)
		return -1;
	return 0;
}

CK_RV kyso_sm_unwrap(struct kyso_sm *sm, const uint8_t *resp, size_t len,
		     struct kyso_buf *out, uint16_t *sw, int *plain)
{
	const uint8_t *body, *cipher = NULL;
	uint8_t mac[MAC_LEN], *dec = NULL;
	size_t blen, pos = 0, hdrlen = 0, vlen = 0, clen = 0, bs, i, n;
	uint16_t s;
	CK_RV rv;

	if (sm == NULL || resp == NULL || out == NULL || sw == NULL ||
	    plain == NULL || !valid_session(sm))
		return CKR_ARGUMENTS_BAD;
	*plain = 0;
	*sw = 0;
	if (len < 2)
		return CKR_DEVICE_ERROR;
	bs = block_size(sm);
	s = (uint16_t)(resp[len - 2] << 8 | resp[len - 1]);
	if (len == 2) {
		/* A bare status word cannot be trusted to say success. */
		if (s == KYSO_SW_OK || (s >> 8) == 0x61) {
			kyso_err("sm: unprotected %04X answer", s);
			return CKR_DEVICE_ERROR;
		}
		*sw = s;
		*plain = 1;
		return CKR_OK;
	}
	body = resp;
	blen = len - 2;
	if (blen < 4 + 2 + MAC_LEN)
		goto malformed;
	if (body[0] == TAG_DATA) {
		if (data_object(body, blen, &hdrlen, &vlen) < 0)
			goto malformed;
		if (vlen < 1 + bs || (vlen - 1) % bs != 0 ||
		    body[hdrlen] != 0x01)
			goto malformed;
		cipher = body + hdrlen + 1;
		clen = vlen - 1;
		pos = hdrlen + vlen;
	}
	if (blen - pos != 4 + 2 + MAC_LEN || body[pos] != TAG_SW ||
	    body[pos + 1] != 2 || body[pos + 2] != resp[len - 2] ||
	    body[pos + 3] != resp[len - 1] || body[pos + 4] != TAG_MAC ||
	    body[pos + 5] != MAC_LEN)
		goto malformed;

	rv = compute_mac(sm, body, pos + 4, mac);
	if (rv != CKR_OK)
		return rv;
	if (kyso_ct_memcmp(mac, body + pos + 6, MAC_LEN) != 0) {
		kyso_err("sm: the answer's MAC does not verify");
		kyso_wipe(mac, sizeof(mac));
		return CKR_DEVICE_ERROR;
	}
	kyso_wipe(mac, sizeof(mac));

	if (cipher != NULL) {
		dec = malloc(clen);
		if (dec == NULL)
			return CKR_HOST_MEMORY;
		rv = kyso_cipher_cbc(sm->cipher, sm->kenc, 16, 0, NULL, cipher,
				     clen, dec);
		if (rv != CKR_OK)
			goto out;
		/* ISO padding: zeros after 80, all within the last block */
		n = clen;
		for (i = 0; i < bs && n > 0 && dec[n - 1] == 0x00; i++)
			n--;
		if (n == 0 || dec[n - 1] != 0x80 || clen - n >= bs) {
			kyso_err("sm: bad padding in the answer");
			rv = CKR_DEVICE_ERROR;
			goto out;
		}
		n--;
		if (kyso_buf_append(out, dec, n) < 0) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
	}
	*sw = s;
	rv = CKR_OK;
out:
	if (dec != NULL) {
		kyso_wipe(dec, clen);
		free(dec);
	}
	return rv;

malformed:
	kyso_err("sm: malformed protected answer (%zu bytes)", len);
	return CKR_DEVICE_ERROR;
}
