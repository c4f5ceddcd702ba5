/* pkcs11.h: the one checked place for PKCS#11 calls. Each wrapper keeps the
 * spec's name, raises an error naming the call and the CK_RV on failure
 * (with the reason given), and returns the CK_RV. */
#ifndef P11ID_CORE_PKCS11_H
#define P11ID_CORE_PKCS11_H

#include <p11-kit/pkcs11.h>

#include "core/token.h"

CK_RV p11id_C_Initialize(CK_FUNCTION_LIST *fl, CK_C_INITIALIZE_ARGS *args);
CK_RV p11id_C_Finalize(CK_FUNCTION_LIST *fl);
CK_RV p11id_C_GetInfo(CK_FUNCTION_LIST *fl, CK_INFO *info);
CK_RV p11id_C_GetSlotList(CK_FUNCTION_LIST *fl, CK_SLOT_ID **slots,
                          CK_ULONG *n);
CK_RV p11id_C_GetSlotInfo(CK_FUNCTION_LIST *fl, CK_SLOT_ID slot,
                          CK_SLOT_INFO *info);
CK_RV p11id_C_GetTokenInfo(CK_FUNCTION_LIST *fl, CK_SLOT_ID slot,
                           CK_TOKEN_INFO *info);
CK_RV p11id_C_GetMechanismList(CK_FUNCTION_LIST *fl, CK_SLOT_ID slot,
                               CK_MECHANISM_TYPE **mechs, CK_ULONG *n);
CK_RV p11id_C_OpenSession(CK_FUNCTION_LIST *fl, CK_SLOT_ID slot,
                          CK_FLAGS flags, CK_SESSION_HANDLE *h);
CK_RV p11id_C_CloseSession(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h);
CK_RV p11id_C_Login(P11ID_SESSION *s, CK_USER_TYPE who, CK_UTF8CHAR_PTR pin,
                    CK_ULONG pinlen);
CK_RV p11id_C_FindObjectsInit(P11ID_SESSION *s, CK_ATTRIBUTE *tmpl,
                              CK_ULONG n);
CK_RV p11id_C_FindObjects(P11ID_SESSION *s, CK_OBJECT_HANDLE *objs,
                          CK_ULONG max, CK_ULONG *count);
CK_RV p11id_C_FindObjectsFinal(P11ID_SESSION *s);
/* Reads the attributes of tmpl (two-call pattern, values allocated with
 * malloc; an attribute the object lacks gets ulValueLen
 * CK_UNAVAILABLE_INFORMATION and pValue NULL: not an error). */
CK_RV p11id_C_GetAttributeValue(P11ID_SESSION *s, CK_OBJECT_HANDLE obj,
                                CK_ATTRIBUTE *tmpl, CK_ULONG n);
CK_RV p11id_C_SignInit(P11ID_SESSION *s, CK_MECHANISM *mech,
                       CK_OBJECT_HANDLE key);
CK_RV p11id_C_Sign(P11ID_SESSION *s, CK_BYTE *in, CK_ULONG inlen,
                   CK_BYTE *out, CK_ULONG *outlen);
CK_RV p11id_C_DecryptInit(P11ID_SESSION *s, CK_MECHANISM *mech,
                          CK_OBJECT_HANDLE key);
CK_RV p11id_C_Decrypt(P11ID_SESSION *s, CK_BYTE *in, CK_ULONG inlen,
                      CK_BYTE *out, CK_ULONG *outlen);
CK_RV p11id_C_DeriveKey(P11ID_SESSION *s, CK_MECHANISM *mech,
                        CK_OBJECT_HANDLE base, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                        CK_OBJECT_HANDLE *out);
CK_RV p11id_C_DestroyObject(P11ID_SESSION *s, CK_OBJECT_HANDLE obj);
CK_RV p11id_C_CopyObject(P11ID_SESSION *s, CK_OBJECT_HANDLE obj,
                         CK_ATTRIBUTE *tmpl, CK_ULONG n,
                         CK_OBJECT_HANDLE *out);

CK_RV p11id_C_GenerateKeyPair(P11ID_SESSION *s, CK_MECHANISM *mech,
                              CK_ATTRIBUTE *pub, CK_ULONG npub,
                              CK_ATTRIBUTE *priv, CK_ULONG npriv,
                              CK_OBJECT_HANDLE *hpub, CK_OBJECT_HANDLE *hpriv);
CK_RV p11id_C_CreateObject(P11ID_SESSION *s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                           CK_OBJECT_HANDLE *out);
CK_RV p11id_C_SetPIN(P11ID_SESSION *s, CK_UTF8CHAR_PTR oldpin,
                     CK_ULONG oldlen, CK_UTF8CHAR_PTR newpin,
                     CK_ULONG newlen);
CK_RV p11id_C_InitPIN(P11ID_SESSION *s, CK_UTF8CHAR_PTR pin, CK_ULONG len);
CK_RV p11id_C_Logout(P11ID_SESSION *s);
CK_RV p11id_C_GetSessionInfo(P11ID_SESSION *s, CK_SESSION_INFO *info);
CK_RV p11id_C_GetMechanismInfo(CK_FUNCTION_LIST *fl, CK_SLOT_ID slot,
                               CK_MECHANISM_TYPE mech,
                               CK_MECHANISM_INFO *info);
CK_RV p11id_C_GenerateRandom(P11ID_SESSION *s, CK_BYTE *buf, CK_ULONG len);

/* Frees the values p11id_C_GetAttributeValue allocated. */
void p11id_attrs_clear(CK_ATTRIBUTE *tmpl, CK_ULONG n);

#endif
