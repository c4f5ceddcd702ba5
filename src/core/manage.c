/* manage.c: changing tokens for the tool: key pairs generated on the token,
 * certificates stored beside their keys, PINs changed and unblocked. */
#include "core/manage.h"

#include <stdlib.h>
#include <string.h>

#include <p11id/p11id.h>
#include "core/err.h"
#include "core/internal.h"
#include "core/pkcs11.h"
#include "core/quirks.h"
#include "core/trace.h"

#define ATTR(t, v) { (t), (void *)&(v), sizeof(v) }
#define ATTRP(t, p, n) { (t), (void *)(p), (CK_ULONG)(n) }

/* A token that cannot take new objects says so, before any PIN is sent. */
static CK_RV check_writable(P11ID_TOKEN *tok, const char *what)
{
    if ((tok->info.flags & CKF_WRITE_PROTECTED) == 0
        && (tok->quirks & P11ID_QUIRK_READ_ONLY) == 0)
        return CKR_OK;
    p11id_raise(P11ID_R_UNSUPPORTED,
                "token \"%s\" is read-only: it cannot %s (use the keys and "
                "certificates already on it)", tok->label, what);
    return CKR_TOKEN_WRITE_PROTECTED;
}

/* Takes a read-write session, the user logged in. */
static CK_RV rw_session(P11ID_TOKEN *tok, P11ID_SESSION *s)
{
    CK_RV rv = p11id_token_login(tok, NULL, false);

    if (rv != CKR_OK)
        return rv;
    return p11id_session_take(tok, P11ID_SESSION_RW, s);
}

CK_RV p11id_generate_keypair(P11ID_TOKEN *tok, const P11ID_KEYGEN_REQ *req,
                             P11ID_OBJECT **priv)
{
    static const CK_BYTE f4[] = { 0x01, 0x00, 0x01 };
    CK_BBOOL t = CK_TRUE, f = CK_FALSE;
    CK_MECHANISM mech = { CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0 };
    CK_ATTRIBUTE pub[8], prv[10];
    CK_ULONG npub = 0, nprv = 0;
    CK_OBJECT_HANDLE hpub, hpriv;
    CK_ULONG bits = req->rsa_bits;
    P11ID_SESSION s;
    P11ID_OBJECT *obj;
    CK_RV rv;

    pub[npub++] = (CK_ATTRIBUTE)ATTR(CKA_TOKEN, t);
    pub[npub++] = (CK_ATTRIBUTE)ATTR(CKA_VERIFY, t);
    pub[npub++] = (CK_ATTRIBUTE)ATTRP(CKA_LABEL, req->label,
                                      strlen(req->label));
    pub[npub++] = (CK_ATTRIBUTE)ATTRP(CKA_ID, req->id, req->idlen);
    prv[nprv++] = (CK_ATTRIBUTE)ATTR(CKA_TOKEN, t);
    prv[nprv++] = (CK_ATTRIBUTE)ATTR(CKA_PRIVATE, t);
    prv[nprv++] = (CK_ATTRIBUTE)ATTR(CKA_SENSITIVE, t);
    prv[nprv++] = (CK_ATTRIBUTE)ATTR(CKA_EXTRACTABLE, f);
    prv[nprv++] = (CK_ATTRIBUTE)ATTR(CKA_SIGN, t);
    prv[nprv++] = (CK_ATTRIBUTE)ATTRP(CKA_LABEL, req->label,
                                      strlen(req->label));
    prv[nprv++] = (CK_ATTRIBUTE)ATTRP(CKA_ID, req->id, req->idlen);
    switch (req->kind) {
    case P11ID_GEN_RSA:
        pub[npub++] = (CK_ATTRIBUTE)ATTR(CKA_MODULUS_BITS, bits);
        pub[npub++] = (CK_ATTRIBUTE)ATTRP(CKA_PUBLIC_EXPONENT, f4,
                                          sizeof(f4));
        pub[npub++] = (CK_ATTRIBUTE)ATTR(CKA_ENCRYPT, t);
        prv[nprv++] = (CK_ATTRIBUTE)ATTR(CKA_DECRYPT, t);
        break;
    case P11ID_GEN_EC:
        mech.mechanism = CKM_EC_KEY_PAIR_GEN;
        pub[npub++] = (CK_ATTRIBUTE)ATTRP(CKA_EC_PARAMS, req->ec_params,
                                          req->ec_params_len);
        prv[nprv++] = (CK_ATTRIBUTE)ATTR(CKA_DERIVE, t);
        break;
    case P11ID_GEN_EDWARDS:
        mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN;
        pub[npub++] = (CK_ATTRIBUTE)ATTRP(CKA_EC_PARAMS, req->ec_params,
                                          req->ec_params_len);
        break;
    }
    rv = check_writable(tok, "generate keys");
    if (rv == CKR_OK)
        rv = rw_session(tok, &s);
    if (rv != CKR_OK)
        return rv;
    rv = p11id_C_GenerateKeyPair(&s, &mech, pub, npub, prv, nprv, &hpub,
                                 &hpriv);
    if (rv == CKR_OK) {
        obj = p11id_object_from_handle(&s, hpriv);
        if (obj == NULL)
            rv = CKR_GENERAL_ERROR;
        else
            *priv = obj;
        p11id_trace(1, "token \"%s\": generated a key pair \"%s\"",
                    tok->label, req->label);
    }
    p11id_session_return(&s);
    return rv;
}

CK_RV p11id_store_certificate(P11ID_TOKEN *tok, const P11ID_CERT_REQ *req,
                              P11ID_OBJECT **out)
{
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_CERTIFICATE_TYPE ct = CKC_X_509;
    CK_BBOOL t = CK_TRUE, f = CK_FALSE, trusted = req->trusted;
    CK_ATTRIBUTE tmpl[] = {
        ATTR(CKA_CLASS, cls),
        ATTR(CKA_CERTIFICATE_TYPE, ct),
        ATTR(CKA_TOKEN, t),
        ATTR(CKA_PRIVATE, f),
        ATTR(CKA_TRUSTED, trusted),
        ATTRP(CKA_VALUE, req->der, req->len),
        ATTRP(CKA_SUBJECT, req->subject, req->subject_len),
        ATTRP(CKA_ISSUER, req->issuer, req->issuer_len),
        ATTRP(CKA_SERIAL_NUMBER, req->serial, req->serial_len),
        ATTRP(CKA_LABEL, req->label, strlen(req->label)),
        ATTRP(CKA_ID, req->id, req->idlen),
    };
    CK_ULONG n = sizeof(tmpl) / sizeof(tmpl[0]);
    CK_OBJECT_HANDLE h;
    P11ID_SESSION s;
    CK_RV rv;

    /* CKA_TRUSTED can only be set by the SO on most tokens: leave it out
     * unless asked. */
    if (!req->trusted) {
        memmove(&tmpl[4], &tmpl[5], (n - 5) * sizeof(tmpl[0]));
        n--;
    }
    rv = check_writable(tok, "store certificates");
    if (rv == CKR_OK)
        rv = rw_session(tok, &s);
    if (rv != CKR_OK)
        return rv;
    rv = p11id_C_CreateObject(&s, tmpl, n, &h);
    if (rv == CKR_OK && out != NULL) {
        *out = p11id_object_from_handle(&s, h);
        if (*out == NULL)
            rv = CKR_GENERAL_ERROR;
    }
    p11id_session_return(&s);
    return rv;
}

CK_RV p11id_object_destroy(P11ID_OBJECT *obj)
{
    P11ID_SESSION s;
    CK_OBJECT_HANDLE h;
    CK_RV rv;

    rv = rw_session(obj->token, &s);
    if (rv != CKR_OK)
        return rv;
    rv = p11id_object_handle(obj, &s, &h);
    if (rv == CKR_OK)
        rv = p11id_C_DestroyObject(&s, h);
    p11id_session_return(&s);
    return rv;
}

CK_RV p11id_token_change_pin(P11ID_TOKEN *tok, const char *oldpin,
                             size_t oldlen, const char *newpin, size_t newlen)
{
    P11ID_SESSION s;
    CK_RV rv;

    rv = rw_session(tok, &s);
    if (rv != CKR_OK)
        return rv;
    rv = p11id_C_SetPIN(&s, (CK_UTF8CHAR_PTR)oldpin, oldlen,
                        (CK_UTF8CHAR_PTR)newpin, newlen);
    p11id_session_return(&s);
    return rv;
}

CK_RV p11id_token_unblock_pin(P11ID_TOKEN *tok, const char *sopin,
                              size_t solen, const char *newpin, size_t newlen)
{
    P11ID_SESSION s;
    CK_RV rv;

    rv = p11id_session_take(tok, P11ID_SESSION_RW, &s);
    if (rv != CKR_OK)
        return rv;
    rv = p11id_C_Login(&s, CKU_SO, (CK_UTF8CHAR_PTR)sopin, solen);
    if (rv == CKR_OK) {
        rv = p11id_C_InitPIN(&s, (CK_UTF8CHAR_PTR)newpin, newlen);
        p11id_C_Logout(&s);
    }
    p11id_session_discard(&s);
    return rv;
}

CK_RV p11id_token_refresh(P11ID_TOKEN *tok)
{
    CK_TOKEN_INFO ti;
    CK_RV rv;

    rv = p11id_C_GetTokenInfo(tok->module->fl, tok->slot, &ti);
    if (rv != CKR_OK)
        return rv;
    pthread_mutex_lock(&tok->lock);
    tok->info = ti;
    pthread_mutex_unlock(&tok->lock);
    return CKR_OK;
}

CK_RV p11id_token_mechanisms(P11ID_TOKEN *tok, CK_MECHANISM_TYPE **mechs,
                             CK_ULONG *n)
{
    return p11id_C_GetMechanismList(tok->module->fl, tok->slot, mechs, n);
}

CK_RV p11id_token_random(P11ID_TOKEN *tok, unsigned char *buf, size_t len)
{
    P11ID_SESSION s;
    CK_RV rv;

    rv = p11id_session_take(tok, 0, &s);
    if (rv != CKR_OK)
        return rv;
    rv = p11id_C_GenerateRandom(&s, buf, (CK_ULONG)len);
    p11id_session_return(&s);
    return rv;
}
