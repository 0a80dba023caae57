/* The module's only exported symbols: C_GetFunctionList (2.40) and the
 * PKCS#11 3.0 interface calls, offering a 2.40 and a 3.0 function list. */
#include "config.h"

#include <string.h>

#include "pkcs11/internal.h"
#include "kyso/vendor.h"

#define EXPORT __attribute__((visibility("default")))

#define LIST_240                                                               \
	C_Initialize, C_Finalize, C_GetInfo, C_GetFunctionList,                \
		C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo,                  \
		C_GetMechanismList, C_GetMechanismInfo, C_InitToken,           \
		C_InitPIN, C_SetPIN, C_OpenSession, C_CloseSession,            \
		C_CloseAllSessions, C_GetSessionInfo, C_GetOperationState,     \
		C_SetOperationState, C_Login, C_Logout, C_CreateObject,        \
		C_CopyObject, C_DestroyObject, C_GetObjectSize,                \
		C_GetAttributeValue, C_SetAttributeValue, C_FindObjectsInit,   \
		C_FindObjects, C_FindObjectsFinal, C_EncryptInit, C_Encrypt,   \
		C_EncryptUpdate, C_EncryptFinal, C_DecryptInit, C_Decrypt,     \
		C_DecryptUpdate, C_DecryptFinal, C_DigestInit, C_Digest,       \
		C_DigestUpdate, C_DigestKey, C_DigestFinal, C_SignInit,        \
		C_Sign, C_SignUpdate, C_SignFinal, C_SignRecoverInit,          \
		C_SignRecover, C_VerifyInit, C_Verify, C_VerifyUpdate,         \
		C_VerifyFinal, C_VerifyRecoverInit, C_VerifyRecover,           \
		C_DigestEncryptUpdate, C_DecryptDigestUpdate,                  \
		C_SignEncryptUpdate, C_DecryptVerifyUpdate, C_GenerateKey,     \
		C_GenerateKeyPair, C_WrapKey, C_UnwrapKey, C_DeriveKey,        \
		C_SeedRandom, C_GenerateRandom, C_GetFunctionStatus,           \
		C_CancelFunction, C_WaitForSlotEvent

CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList,
			 CK_ULONG_PTR pulCount);
CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
		     CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags);

static CK_FUNCTION_LIST list_240 = {
	{2, 40},
	LIST_240,
};

static CK_FUNCTION_LIST_3_0 list_30 = {
	{3, 0},
	LIST_240,
	C_GetInterfaceList,
	C_GetInterface,
	kyso_C_LoginUser,
	kyso_C_SessionCancel,
	kyso_C_MessageInit,
	kyso_C_MessageOp,
	kyso_C_MessageBegin,
	kyso_C_MessageNext,
	kyso_C_MessageFinal,
	kyso_C_MessageInit,
	kyso_C_MessageOp,
	kyso_C_MessageBegin,
	kyso_C_MessageNext,
	kyso_C_MessageFinal,
	kyso_C_MessageInit,
	kyso_C_SignMessage,
	kyso_C_SignMessageBegin,
	(CK_C_SignMessageNext)kyso_C_SignMessage,
	kyso_C_MessageFinal,
	kyso_C_MessageInit,
	kyso_C_VerifyMessage,
	kyso_C_SignMessageBegin,
	(CK_C_VerifyMessageNext)kyso_C_VerifyMessage,
	kyso_C_MessageFinal,
};

static CK_CHAR iface_name[] = "PKCS 11";

/* What standard PKCS#11 cannot tell (include/kyso/vendor.h); kyso(1) uses it. */
static KYSO_VENDOR_FUNCTION_LIST list_vendor = {
	{1, 0},
	kyso_C_KysoGetPinTries,
};
static CK_CHAR vendor_name[] = KYSO_VENDOR_INTERFACE;

/* 3.0 first: callers that take the first entry get the newest list. */
static CK_INTERFACE interfaces[] = {
	{iface_name, &list_30, 0},
	{iface_name, &list_240, 0},
	{vendor_name, &list_vendor, 0},
};

#define NIFACES (sizeof(interfaces) / sizeof(interfaces[0]))

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
	if (!ppFunctionList)
		return CKR_ARGUMENTS_BAD;
	*ppFunctionList = &list_240;
	return CKR_OK;
}

EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList,
				CK_ULONG_PTR pulCount)
{
	if (!pulCount)
		return CKR_ARGUMENTS_BAD;
	if (!pInterfacesList) {
		*pulCount = NIFACES;
		return CKR_OK;
	}
	if (*pulCount < NIFACES) {
		*pulCount = NIFACES;
		return CKR_BUFFER_TOO_SMALL;
	}
	memcpy(pInterfacesList, interfaces, sizeof(interfaces));
	*pulCount = NIFACES;
	return CKR_OK;
}

EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName,
			    CK_VERSION_PTR pVersion,
			    CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
	size_t i;

	if (!ppInterface)
		return CKR_ARGUMENTS_BAD;
	for (i = 0; i < NIFACES; i++) {
		const CK_VERSION *v = interfaces[i].pFunctionList;

		/* No name: the standard interface only. */
		if (strcmp((const char *)(pInterfaceName ? pInterfaceName
							 : iface_name),
			   (const char *)interfaces[i].pInterfaceName) != 0)
			continue;

		if (pVersion && (v->major != pVersion->major ||
				 v->minor != pVersion->minor))
			continue;
		if ((interfaces[i].flags & flags) != flags)
			continue;
		*ppInterface = &interfaces[i];
		return CKR_OK;
	}
	return CKR_ARGUMENTS_BAD;
}
