/* pkcs11.c: the one checked place for PKCS#11 calls. Every failure is raised
 * here, once, with the call's name and the CK_RV's name and meaning. */
#include "core/pkcs11.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <p11id/p11id.h>
#include "core/err.h"
#include "core/internal.h"
#include "core/rv.h"

static CK_FUNCTION_LIST *sfl(const P11ID_SESSION *s)
{
    return s->token->module->fl;
}

/* Modules (SoftHSM 2.6 among them) use libcrypto themselves and leave
 * errors in the thread's OpenSSL error queue, and errno set (ENOENT from a
 * missing engine or syslog socket), which applications then report instead
 * of ours (Python: FileNotFoundError for a wrong PIN). Every call runs
 * between a mark and a pop, with errno restored. */
static __thread int saved_errno;

static void quiet_begin(void)
{
    saved_errno = errno;
    p11id_err_set_mark();
}

static CK_RV quiet_end(CK_RV rv)
{
    p11id_err_pop_to_mark();
    errno = saved_errno;
    return rv;
}

#define QUIET(call) (quiet_begin(), quiet_end(call))

static CK_RV check(CK_RV rv, int reason, const char *call)
{
    if (rv != CKR_OK)
        p11id_raise_ckr(reason, call, rv);
    return rv;
}

CK_RV p11id_C_Initialize(CK_FUNCTION_LIST *fl, CK_C_INITIALIZE_ARGS *args)
{
    CK_RV rv = QUIET(fl->C_Initialize(args));

    return check(rv, P11ID_R_MODULE_INIT_FAILED, "C_Initialize");
}

CK_RV p11id_C_Finalize(CK_FUNCTION_LIST *fl)
{
    return check(QUIET(fl->C_Finalize(NULL)), P11ID_R_TOKEN_CALL_FAILED,
                 "C_Finalize");
}

CK_RV p11id_C_GetInfo(CK_FUNCTION_LIST *fl, CK_INFO *info)
{
    return check(QUIET(fl->C_GetInfo(info)), P11ID_R_MODULE_INIT_FAILED,
                 "C_GetInfo");
}

CK_RV p11id_C_GetSlotList(CK_FUNCTION_LIST *fl, CK_SLOT_ID **slots,
                          CK_ULONG *n)
{
    CK_SLOT_ID *list = NULL, *grown;
    CK_ULONG count = 0;
    CK_RV rv;
    int tries;

    /* Two-call pattern; slots may appear between the calls: retry. */
    for (tries = 0; tries < 4; tries++) {
        rv = QUIET(fl->C_GetSlotList(CK_FALSE, NULL, &count));
        if (rv != CKR_OK)
            break;
        grown = realloc(list, (count + 1) * sizeof(*list));
        if (grown == NULL) {
            free(list);
            p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory");
            return CKR_HOST_MEMORY;
        }
        list = grown;
        rv = QUIET(fl->C_GetSlotList(CK_FALSE, list, &count));
        if (rv != CKR_BUFFER_TOO_SMALL)
            break;
    }
    if (rv != CKR_OK) {
        free(list);
        return check(rv, P11ID_R_TOKEN_CALL_FAILED, "C_GetSlotList");
    }
    *slots = list;
    *n = count;
    return CKR_OK;
}

CK_RV p11id_C_GetSlotInfo(CK_FUNCTION_LIST *fl, CK_SLOT_ID slot,
                          CK_SLOT_INFO *info)
{
    return check(QUIET(fl->C_GetSlotInfo(slot, info)), P11ID_R_TOKEN_CALL_FAILED,
                 "C_GetSlotInfo");
}

CK_RV p11id_C_GetTokenInfo(CK_FUNCTION_LIST *fl, CK_SLOT_ID slot,
                           CK_TOKEN_INFO *info)
{
    return check(QUIET(fl->C_GetTokenInfo(slot, info)), P11ID_R_TOKEN_CALL_FAILED,
                 "C_GetTokenInfo");
}

CK_RV p11id_C_GetMechanismList(CK_FUNCTION_LIST *fl, CK_SLOT_ID slot,
                               CK_MECHANISM_TYPE **mechs, CK_ULONG *n)
{
    CK_MECHANISM_TYPE *list;
    CK_ULONG count = 0;
    CK_RV rv;

    rv = QUIET(fl->C_GetMechanismList(slot, NULL, &count));
    if (rv != CKR_OK)
        return check(rv, P11ID_R_TOKEN_CALL_FAILED, "C_GetMechanismList");
    list = calloc(count + 1, sizeof(*list));
    if (list == NULL) {
        p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory");
        return CKR_HOST_MEMORY;
    }
    rv = QUIET(fl->C_GetMechanismList(slot, list, &count));
    if (rv != CKR_OK) {
        free(list);
        return check(rv, P11ID_R_TOKEN_CALL_FAILED, "C_GetMechanismList");
    }
    *mechs = list;
    *n = count;
    return CKR_OK;
}

CK_RV p11id_C_OpenSession(CK_FUNCTION_LIST *fl, CK_SLOT_ID slot,
                          CK_FLAGS flags, CK_SESSION_HANDLE *h)
{
    return check(QUIET(fl->C_OpenSession(slot, flags | CKF_SERIAL_SESSION, NULL,
                                   NULL, h)),
                 P11ID_R_SESSION_FAILED, "C_OpenSession");
}

CK_RV p11id_C_CloseSession(CK_FUNCTION_LIST *fl, CK_SESSION_HANDLE h)
{
    return check(QUIET(fl->C_CloseSession(h)), P11ID_R_SESSION_FAILED,
                 "C_CloseSession");
}

CK_RV p11id_C_Login(P11ID_SESSION *s, CK_USER_TYPE who, CK_UTF8CHAR_PTR pin,
                    CK_ULONG pinlen)
{
    CK_RV rv = QUIET(sfl(s)->C_Login(s->handle, who, pin, pinlen));
    int reason = P11ID_R_LOGIN_FAILED;

    /* Login is per token and application: another session may have done it. */
    if (rv == CKR_USER_ALREADY_LOGGED_IN)
        return CKR_OK;
    if (rv == CKR_PIN_INCORRECT)
        reason = P11ID_R_PIN_INCORRECT;
    else if (rv == CKR_PIN_LOCKED)
        reason = P11ID_R_PIN_LOCKED;
    return check(rv, reason, "C_Login");
}

CK_RV p11id_C_FindObjectsInit(P11ID_SESSION *s, CK_ATTRIBUTE *tmpl,
                              CK_ULONG n)
{
    return check(QUIET(sfl(s)->C_FindObjectsInit(s->handle, tmpl, n)),
                 P11ID_R_TOKEN_CALL_FAILED, "C_FindObjectsInit");
}

CK_RV p11id_C_FindObjects(P11ID_SESSION *s, CK_OBJECT_HANDLE *objs,
                          CK_ULONG max, CK_ULONG *count)
{
    return check(QUIET(sfl(s)->C_FindObjects(s->handle, objs, max, count)),
                 P11ID_R_TOKEN_CALL_FAILED, "C_FindObjects");
}

CK_RV p11id_C_FindObjectsFinal(P11ID_SESSION *s)
{
    return check(QUIET(sfl(s)->C_FindObjectsFinal(s->handle)),
                 P11ID_R_TOKEN_CALL_FAILED, "C_FindObjectsFinal");
}

void p11id_attrs_clear(CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CK_ULONG i;

    for (i = 0; i < n; i++) {
        free(tmpl[i].pValue);
        tmpl[i].pValue = NULL;
        tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
    }
}

CK_RV p11id_C_GetAttributeValue(P11ID_SESSION *s, CK_OBJECT_HANDLE obj,
                                CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
    CK_ULONG i;
    CK_RV rv;

    for (i = 0; i < n; i++) {
        tmpl[i].pValue = NULL;
        tmpl[i].ulValueLen = 0;
    }
    /* Sizes first. Missing or sensitive attributes are not errors here. */
    rv = QUIET(sfl(s)->C_GetAttributeValue(s->handle, obj, tmpl, n));
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE
        && rv != CKR_ATTRIBUTE_TYPE_INVALID)
        return check(rv, P11ID_R_TOKEN_CALL_FAILED, "C_GetAttributeValue");
    for (i = 0; i < n; i++) {
        if (tmpl[i].ulValueLen == CK_UNAVAILABLE_INFORMATION
            || tmpl[i].ulValueLen > (1UL << 24))
            continue;
        tmpl[i].pValue = malloc(tmpl[i].ulValueLen + 1);
        if (tmpl[i].pValue == NULL) {
            p11id_attrs_clear(tmpl, n);
            p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory");
            return CKR_HOST_MEMORY;
        }
    }
    rv = QUIET(sfl(s)->C_GetAttributeValue(s->handle, obj, tmpl, n));
    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE
        && rv != CKR_ATTRIBUTE_TYPE_INVALID) {
        p11id_attrs_clear(tmpl, n);
        return check(rv, P11ID_R_TOKEN_CALL_FAILED, "C_GetAttributeValue");
    }
    for (i = 0; i < n; i++)
        if (tmpl[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
            free(tmpl[i].pValue);
            tmpl[i].pValue = NULL;
        }
    return CKR_OK;
}

CK_RV p11id_C_SignInit(P11ID_SESSION *s, CK_MECHANISM *mech,
                       CK_OBJECT_HANDLE key)
{
    return check(QUIET(sfl(s)->C_SignInit(s->handle, mech, key)),
                 P11ID_R_SIGN_FAILED, "C_SignInit");
}

CK_RV p11id_C_Sign(P11ID_SESSION *s, CK_BYTE *in, CK_ULONG inlen,
                   CK_BYTE *out, CK_ULONG *outlen)
{
    return check(QUIET(sfl(s)->C_Sign(s->handle, in, inlen, out, outlen)),
                 P11ID_R_SIGN_FAILED, "C_Sign");
}

CK_RV p11id_C_DecryptInit(P11ID_SESSION *s, CK_MECHANISM *mech,
                          CK_OBJECT_HANDLE key)
{
    return check(QUIET(sfl(s)->C_DecryptInit(s->handle, mech, key)),
                 P11ID_R_DECRYPT_FAILED, "C_DecryptInit");
}

CK_RV p11id_C_Decrypt(P11ID_SESSION *s, CK_BYTE *in, CK_ULONG inlen,
                      CK_BYTE *out, CK_ULONG *outlen)
{
    return check(QUIET(sfl(s)->C_Decrypt(s->handle, in, inlen, out, outlen)),
                 P11ID_R_DECRYPT_FAILED, "C_Decrypt");
}

CK_RV p11id_C_DeriveKey(P11ID_SESSION *s, CK_MECHANISM *mech,
                        CK_OBJECT_HANDLE base, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                        CK_OBJECT_HANDLE *out)
{
    return check(QUIET(sfl(s)->C_DeriveKey(s->handle, mech, base, tmpl, n, out)),
                 P11ID_R_DERIVE_FAILED, "C_DeriveKey");
}

CK_RV p11id_C_DestroyObject(P11ID_SESSION *s, CK_OBJECT_HANDLE obj)
{
    return check(QUIET(sfl(s)->C_DestroyObject(s->handle, obj)),
                 P11ID_R_TOKEN_CALL_FAILED, "C_DestroyObject");
}

CK_RV p11id_C_GenerateKeyPair(P11ID_SESSION *s, CK_MECHANISM *mech,
                              CK_ATTRIBUTE *pub, CK_ULONG npub,
                              CK_ATTRIBUTE *priv, CK_ULONG npriv,
                              CK_OBJECT_HANDLE *hpub, CK_OBJECT_HANDLE *hpriv)
{
    return check(QUIET(sfl(s)->C_GenerateKeyPair(s->handle, mech, pub, npub, priv,
                                           npriv, hpub, hpriv)),
                 P11ID_R_TOKEN_CALL_FAILED, "C_GenerateKeyPair");
}

CK_RV p11id_C_CreateObject(P11ID_SESSION *s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                           CK_OBJECT_HANDLE *out)
{
    return check(QUIET(sfl(s)->C_CreateObject(s->handle, tmpl, n, out)),
                 P11ID_R_TOKEN_CALL_FAILED, "C_CreateObject");
}

CK_RV p11id_C_SetPIN(P11ID_SESSION *s, CK_UTF8CHAR_PTR oldpin,
                     CK_ULONG oldlen, CK_UTF8CHAR_PTR newpin, CK_ULONG newlen)
{
    CK_RV rv = QUIET(sfl(s)->C_SetPIN(s->handle, oldpin, oldlen, newpin, newlen));

    return check(rv, rv == CKR_PIN_INCORRECT ? P11ID_R_PIN_INCORRECT
                                             : P11ID_R_LOGIN_FAILED,
                 "C_SetPIN");
}

CK_RV p11id_C_InitPIN(P11ID_SESSION *s, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    return check(QUIET(sfl(s)->C_InitPIN(s->handle, pin, len)),
                 P11ID_R_LOGIN_FAILED, "C_InitPIN");
}

CK_RV p11id_C_Logout(P11ID_SESSION *s)
{
    return check(QUIET(sfl(s)->C_Logout(s->handle)), P11ID_R_LOGIN_FAILED,
                 "C_Logout");
}

CK_RV p11id_C_GetSessionInfo(P11ID_SESSION *s, CK_SESSION_INFO *info)
{
    return check(QUIET(sfl(s)->C_GetSessionInfo(s->handle, info)),
                 P11ID_R_SESSION_FAILED, "C_GetSessionInfo");
}

CK_RV p11id_C_GetMechanismInfo(CK_FUNCTION_LIST *fl, CK_SLOT_ID slot,
                               CK_MECHANISM_TYPE mech,
                               CK_MECHANISM_INFO *info)
{
    return check(QUIET(fl->C_GetMechanismInfo(slot, mech, info)),
                 P11ID_R_TOKEN_CALL_FAILED, "C_GetMechanismInfo");
}

CK_RV p11id_C_GenerateRandom(P11ID_SESSION *s, CK_BYTE *buf, CK_ULONG len)
{
    return check(QUIET(sfl(s)->C_GenerateRandom(s->handle, buf, len)),
                 P11ID_R_TOKEN_CALL_FAILED, "C_GenerateRandom");
}

CK_RV p11id_C_CopyObject(P11ID_SESSION *s, CK_OBJECT_HANDLE obj,
                         CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_OBJECT_HANDLE *out)
{
    return check(QUIET(sfl(s)->C_CopyObject(s->handle, obj, tmpl, n, out)),
                 P11ID_R_TOKEN_CALL_FAILED, "C_CopyObject");
}
