/* PKCS#15 entries in hex for the tests (p15-hex.h). */
#include "p15-hex.h"
#include "hexs.h"

char *p15_path(const char *p)
{
	return tlv(0x30, tlv(0x04, p));
}

char *p15_coa(const char *label, const char *auth)
{
	return tlv(0x30, cat(tlv(0x0C, utf8(label)), "030206C0",
			     auth ? tlv(0x04, auth) : "", NULL));
}

char *p15_pin(const char *label, unsigned ref, const char *flags,
	      const char *path)
{
	return tlv(
	    0x30,
	    cat(p15_coa(label, NULL), tlv(0x30, tlv(0x04, fmt("%02X", ref))),
		tlv(0xA1,
		    tlv(0x30, cat(flags, "0A0101", "020104", "020110", "020110",
				  tlv(0x80, fmt("%02X", ref)), "040100",
				  path ? p15_path(path) : "", NULL))),
		NULL));
}

char *p15_prkey(unsigned tag, const char *label, const char *id,
		const char *usage, const char *path, int ref, unsigned bits)
{
	return tlv(
	    tag,
	    cat(p15_coa(label, "01"),
		tlv(0x30,
		    cat(tlv(0x04, id), usage, "030203B8",
			ref >= 0 ? tlv(0x02, fmt("%02X", ref)) : "", NULL)),
		tlv(0xA1, tlv(0x30, cat(p15_path(path),
					tlv(0x02, fmt("%04X", bits)), NULL))),
		NULL));
}

char *p15_cert(const char *label, const char *id, const char *path)
{
	return tlv(0x30, cat(p15_coa(label, NULL), tlv(0x30, tlv(0x04, id)),
			     tlv(0xA1, tlv(0x30, p15_path(path))), NULL));
}
