/* Functions kyso does not offer: they answer like the rest (not initialized
 * first), then CKR_FUNCTION_NOT_SUPPORTED. Never a crash, never a stub that
 * pretends. */
#include "config.h"

#include <unistd.h>

#include "pkcs11/internal.h"

static CK_RV unsupported(void)
{
	kyso_lock();
	KYSO_CHECK_INIT();
	kyso_unlock();
	return CKR_FUNCTION_NOT_SUPPORTED;
}


static CK_RV refuse(CK_RV rv)
{
	kyso_lock();
	KYSO_CHECK_INIT();
	kyso_unlock();
	return rv;
}

#define UNSUPPORTED(name, args)                                                \
	CK_RV name args                                                        \
	{                                                                      \
		return unsupported();                                          \
	}

UNSUPPORTED(C_EncryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
			    CK_OBJECT_HANDLE c))
UNSUPPORTED(C_Encrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
			CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_EncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
			      CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_EncryptFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
			     CK_ULONG_PTR c))
UNSUPPORTED(C_SignRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
				CK_OBJECT_HANDLE c))
UNSUPPORTED(C_SignRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
			    CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_VerifyRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
				  CK_OBJECT_HANDLE c))
UNSUPPORTED(C_VerifyRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
			      CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_DigestEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
				    CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_DecryptDigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
				    CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_SignEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
				  CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
				    CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_GenerateKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
			    CK_ATTRIBUTE_PTR c, CK_ULONG d,
			    CK_OBJECT_HANDLE_PTR e))
UNSUPPORTED(C_WrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
			CK_OBJECT_HANDLE c, CK_OBJECT_HANDLE d, CK_BYTE_PTR e,
			CK_ULONG_PTR f))
UNSUPPORTED(C_UnwrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
			  CK_OBJECT_HANDLE c, CK_BYTE_PTR d, CK_ULONG e,
			  CK_ATTRIBUTE_PTR f, CK_ULONG g,
			  CK_OBJECT_HANDLE_PTR h))
UNSUPPORTED(C_DeriveKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
			  CK_OBJECT_HANDLE c, CK_ATTRIBUTE_PTR d, CK_ULONG e,
			  CK_OBJECT_HANDLE_PTR f))

UNSUPPORTED(C_GetOperationState, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
				  CK_ULONG_PTR c))
UNSUPPORTED(C_SetOperationState, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
				  CK_ULONG c, CK_OBJECT_HANDLE d,
				  CK_OBJECT_HANDLE e))
/* kyso never re-formats a token: CA-issued layouts must survive. */
UNSUPPORTED(C_InitToken, (CK_SLOT_ID a, CK_UTF8CHAR_PTR b, CK_ULONG c,
			  CK_UTF8CHAR_PTR d))
/* RSA decryption is single-part only. */
UNSUPPORTED(C_DecryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
			      CK_BYTE_PTR d, CK_ULONG_PTR e))
UNSUPPORTED(C_DecryptFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,
			     CK_ULONG_PTR c))


/* Card keys are never extractable, so never digestible. */
CK_RV C_DigestKey(CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b)
{
	return refuse(CKR_KEY_INDIGESTIBLE);
}

/* Randomness comes from the host's libcrypto, which seeds itself. */
CK_RV C_SeedRandom(CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c)
{
	return refuse(CKR_RANDOM_SEED_NOT_SUPPORTED);
}

CK_RV C_GetFunctionStatus(CK_SESSION_HANDLE a)
{
	return refuse(CKR_FUNCTION_NOT_PARALLEL);
}

CK_RV C_CancelFunction(CK_SESSION_HANDLE a)
{
	return refuse(CKR_FUNCTION_NOT_PARALLEL);
}

/* PKCS#11 3.0 additions. */
CK_RV kyso_C_LoginUser(CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_UTF8CHAR_PTR c,
		       CK_ULONG d, CK_UTF8CHAR_PTR e, CK_ULONG f)
{
	return unsupported();
}

CK_RV kyso_C_SessionCancel(CK_SESSION_HANDLE a, CK_FLAGS b)
{
	return unsupported();
}

CK_RV kyso_C_MessageInit(CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
			 CK_OBJECT_HANDLE c)
{
	return unsupported();
}

CK_RV kyso_C_MessageOp(CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c,
		       CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g,
		       CK_BYTE_PTR h, CK_ULONG_PTR i)
{
	return unsupported();
}

CK_RV kyso_C_MessageBegin(CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c,
			  CK_BYTE_PTR d, CK_ULONG e)
{
	return unsupported();
}

CK_RV kyso_C_MessageNext(CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c,
			 CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f,
			 CK_ULONG_PTR g, CK_FLAGS h)
{
	return unsupported();
}

CK_RV kyso_C_MessageFinal(CK_SESSION_HANDLE a)
{
	return unsupported();
}

CK_RV kyso_C_SignMessage(CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c,
			 CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f,
			 CK_ULONG_PTR g)
{
	return unsupported();
}

CK_RV kyso_C_SignMessageBegin(CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c)
{
	return unsupported();
}

CK_RV kyso_C_VerifyMessage(CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c,
			   CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g)
{
	return unsupported();
}
