/* The kyso module's vendor interface (PKCS#11 3.0 C_GetInterface with the
 * name below): what standard PKCS#11 cannot tell, such as how many PIN tries
 * are left. A module without it is used through the token flags alone. */
#ifndef KYSO_VENDOR_H
#define KYSO_VENDOR_H

#include "kyso/pkcs11.h"

#define KYSO_VENDOR_INTERFACE "Vendor kyso"

/* Tries left for who (CKU_USER: the PIN; CKU_SO: the PUK or SO PIN) as the
 * card last told; CK_UNAVAILABLE_INFORMATION when it never did. Answers from
 * memory: no card I/O, no try spent. */
typedef CK_RV (*KYSO_C_GetPinTries)(CK_SLOT_ID slotID, CK_USER_TYPE who,
				    CK_ULONG_PTR pulLeft);

typedef struct KYSO_VENDOR_FUNCTION_LIST {
	CK_VERSION version; /* {1, 0} */
	KYSO_C_GetPinTries C_KysoGetPinTries;
} KYSO_VENDOR_FUNCTION_LIST;

#endif
