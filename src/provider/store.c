/* store.c: OSSL_OP_STORE for the pkcs11: scheme: private keys, public keys
 * and certificates on tokens, honouring the expected type. */
#include <string.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/store.h>

#include <p11id/p11id.h>
#include "core/compat.h"
#include "core/err.h"
#include "core/object.h"
#include "core/uri.h"
#include "provider/key.h"

static OSSL_FUNC_store_open_fn store_open;
static OSSL_FUNC_store_set_ctx_params_fn store_set_ctx_params;
static OSSL_FUNC_store_settable_ctx_params_fn store_settable_ctx_params;
static OSSL_FUNC_store_load_fn store_load;
static OSSL_FUNC_store_eof_fn store_eof;
static OSSL_FUNC_store_close_fn store_close;

typedef struct store_ctx_st {
    P11ID_PROV *prov;      /* borrowed */
    P11ID_URI *uri;        /* parsed at open */
    int expect;            /* OSSL_STORE_INFO_* or 0 for anything */
    bool searched;         /* the search ran (at the first load) */
    P11ID_OBJECT **objs;   /* what it found */
    size_t nobjs, next;
} STORE_CTX;

typedef struct pin_adapter_st {
    OSSL_PASSPHRASE_CALLBACK *cb;
    void *arg;
} PIN_ADAPTER;

/* The core asks for a PIN through the application's passphrase callback. */
static int ask_pin(char *buf, size_t max, size_t *len, const char *prompt,
                   void *arg)
{
    PIN_ADAPTER *a = arg;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PASSPHRASE_PARAM_INFO,
                                         (char *)prompt, 0),
        OSSL_PARAM_END
    };

    if (a->cb == NULL)
        return 0;
    return a->cb(buf, max, len, params, a->arg);
}

static void *store_open(void *provctx, const char *uri)
{
    STORE_CTX *ctx = OPENSSL_zalloc(sizeof(*ctx));

    if (ctx == NULL)
        return NULL;
    ctx->prov = provctx;
    if (!p11id_prov_usable(ctx->prov)
        || p11id_uri_parse(uri, &ctx->uri) != CKR_OK) {
        OPENSSL_free(ctx);
        return NULL;
    }
    return ctx;
}

static int store_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    STORE_CTX *ctx = vctx;
    const OSSL_PARAM *p;

    if (params == NULL)
        return 1;
    p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);
    if (p != NULL && !OSSL_PARAM_get_int(p, &ctx->expect))
        return 0;
    return 1;
}

static const OSSL_PARAM *store_settable_ctx_params(void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
        OSSL_PARAM_END
    };

    return params;
}

static CK_OBJECT_CLASS class_for(int expect)
{
    switch (expect) {
    case 0:
        return P11ID_CLASS_ANY;
    case OSSL_STORE_INFO_PKEY:
        return CKO_PRIVATE_KEY;
    case OSSL_STORE_INFO_PUBKEY:
        return CKO_PUBLIC_KEY;
    case OSSL_STORE_INFO_CERT:
        return CKO_CERTIFICATE;
    }
    return CKO_VENDOR_DEFINED; /* params, CRLs: nothing here */
}

/* Lists the objects (URIs) of a class on the tokens a URI matches, for
 * error messages. Returns a new string or NULL. */
static char *list_candidates(P11ID_PROV *prov, const P11ID_URI *uri,
                             CK_OBJECT_CLASS cls)
{
    P11ID_FIND_REQ req = { uri, cls, true, true, NULL, NULL };
    P11ID_OBJECT **objs = NULL;
    size_t n = 0, i, len = 0;
    char *out = NULL, *grown;
    const char *u;

    p11id_err_set_mark();
    if (p11id_find_objects(prov->core, &req, &objs, &n) != CKR_OK)
        n = 0;
    p11id_err_pop_to_mark();
    for (i = 0; i < n && i < 16; i++) {
        u = p11id_object_get0_uri(objs[i]);
        grown = OPENSSL_realloc(out, len + strlen(u) + 3);
        if (grown == NULL)
            break;
        out = grown;
        len += (size_t)sprintf(out + len, "%s%s", i > 0 ? ", " : "", u);
    }
    p11id_objects_free(objs, n);
    return out;
}

static void raise_no_match(P11ID_PROV *prov, const P11ID_URI *uri,
                           CK_OBJECT_CLASS cls)
{
    const char *what = cls == CKO_PRIVATE_KEY  ? "private key"
                       : cls == CKO_PUBLIC_KEY ? "public key"
                                               : "certificate";
    char *cands = list_candidates(prov, uri, cls);
    char uninit[512];

    if (cands != NULL)
        p11id_raise(P11ID_R_NO_OBJECT, "no %s matches %s (the token has: %s)",
                    what, p11id_uri_get0_display(uri), cands);
    else
        p11id_raise(P11ID_R_NO_OBJECT,
                    "no %s matches %s (no matching token holds one; check "
                    "the token label, the module and the PIN%s%s)",
                    what, p11id_uri_get0_display(uri),
                    p11id_ctx_env_hint(prov->core),
                    p11id_ctx_uninit_hint(prov->core, uri, uninit,
                                          sizeof(uninit)));
    OPENSSL_free(cands);
}

static void raise_ambiguous(const P11ID_URI *uri, P11ID_OBJECT **objs,
                            size_t n)
{
    char list[2048];
    size_t len = 0, i;

    list[0] = '\0';
    for (i = 0; i < n && len < sizeof(list) - 1; i++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
                                i > 0 ? ", " : "",
                                p11id_object_get0_uri(objs[i]));
    p11id_raise(P11ID_R_AMBIGUOUS_URI,
                "ambiguous URI %s: %zu private keys match, name one with "
                "object= or id=: %s",
                p11id_uri_get0_display(uri), n, list);
}

/* Runs the search for a class. For private keys exactly one must match. */
static CK_RV find(P11ID_PROV *prov, const P11ID_URI *uri,
                  CK_OBJECT_CLASS cls, bool single, PIN_ADAPTER *pin,
                  P11ID_OBJECT ***objs, size_t *n)
{
    P11ID_FIND_REQ req = { uri, cls, true, false, ask_pin, pin };
    CK_RV rv;

    rv = p11id_find_objects(prov->core, &req, objs, n);
    if (rv != CKR_OK)
        return rv;
    /* A URI that names an object must name one private key; a URI that
     * names only a token is a listing. */
    if (cls == CKO_PRIVATE_KEY && *n > 1
        && (single || p11id_uri_has_object_attrs(uri))) {
        raise_ambiguous(uri, *objs, *n);
        p11id_objects_free(*objs, *n);
        *objs = NULL;
        *n = 0;
        return CKR_ARGUMENTS_BAD;
    }
    if (cls != P11ID_CLASS_ANY && *n == 0) {
        raise_no_match(prov, uri, cls);
        return CKR_ARGUMENTS_BAD;
    }
    return CKR_OK;
}

P11ID_KEY *p11id_key_load_uri(P11ID_PROV *prov, const char *uristr,
                              OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_arg)
{
    PIN_ADAPTER pin = { pw_cb, pw_arg };
    P11ID_OBJECT **objs = NULL;
    P11ID_URI *uri = NULL;
    P11ID_KEY *key = NULL;
    size_t n = 0;

    if (!p11id_prov_usable(prov) || p11id_uri_parse(uristr, &uri) != CKR_OK)
        return NULL;
    if (find(prov, uri, CKO_PRIVATE_KEY, true, &pin, &objs, &n) == CKR_OK)
        key = p11id_key_from_object(prov, objs[0]);
    p11id_objects_free(objs, n);
    p11id_uri_free(uri);
    return key;
}

static int pass_key(P11ID_KEY *key, OSSL_CALLBACK *cb, void *cbarg)
{
    int type = OSSL_OBJECT_PKEY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_int(OSSL_OBJECT_PARAM_TYPE, &type),
        OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE,
                                         (char *)p11id_keytype_name(key->type),
                                         0),
        OSSL_PARAM_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &key,
                                sizeof(key)),
        OSSL_PARAM_END
    };

    return cb(params, cbarg);
}

static int pass_cert(P11ID_OBJECT *obj, OSSL_CALLBACK *cb, void *cbarg)
{
    int type = OSSL_OBJECT_CERT;
    size_t len;
    const unsigned char *der = p11id_object_get0_attr(obj, CKA_VALUE, &len);
    OSSL_PARAM params[] = {
        OSSL_PARAM_int(OSSL_OBJECT_PARAM_TYPE, &type),
        OSSL_PARAM_octet_string(OSSL_OBJECT_PARAM_DATA, (void *)der, len),
        OSSL_PARAM_END
    };

    if (der == NULL)
        return 1; /* a certificate object without a value: nothing to give */
    return cb(params, cbarg);
}

static int store_load(void *vctx, OSSL_CALLBACK *object_cb,
                      void *object_cbarg, OSSL_PASSPHRASE_CALLBACK *pw_cb,
                      void *pw_cbarg)
{
    STORE_CTX *ctx = vctx;
    PIN_ADAPTER pin = { pw_cb, pw_cbarg };
    CK_OBJECT_CLASS cls = class_for(ctx->expect);
    P11ID_OBJECT *obj;
    P11ID_KEY *key;
    int ok;

    if (!ctx->searched) {
        ctx->searched = true;
        if (cls == CKO_VENDOR_DEFINED)
            return 1;
        if (find(ctx->prov, ctx->uri, cls, false, &pin, &ctx->objs,
                 &ctx->nobjs)
            != CKR_OK)
            return 0;
    }
    while (ctx->next < ctx->nobjs) {
        obj = ctx->objs[ctx->next++];
        if (p11id_object_get_class(obj) == CKO_CERTIFICATE)
            return pass_cert(obj, object_cb, object_cbarg);
        /* In a listing, a key of a type we do not handle is skipped. */
        if (cls == P11ID_CLASS_ANY)
            p11id_err_set_mark();
        key = p11id_key_from_object(ctx->prov, obj);
        if (cls == P11ID_CLASS_ANY)
            p11id_err_pop_to_mark();
        if (key == NULL) {
            if (cls == P11ID_CLASS_ANY)
                continue;
            return 0;
        }
        ok = pass_key(key, object_cb, object_cbarg);
        p11id_key_free(key);
        return ok;
    }
    return 1;
}

static int store_eof(void *vctx)
{
    STORE_CTX *ctx = vctx;

    return ctx->searched && ctx->next >= ctx->nobjs;
}

static int store_close(void *vctx)
{
    STORE_CTX *ctx = vctx;

    if (ctx == NULL)
        return 1;
    p11id_objects_free(ctx->objs, ctx->nobjs);
    p11id_uri_free(ctx->uri);
    OPENSSL_free(ctx);
    return 1;
}

const OSSL_DISPATCH p11id_store_functions[] = {
    { OSSL_FUNC_STORE_OPEN, (void (*)(void))store_open },
    { OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))store_set_ctx_params },
    { OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS,
      (void (*)(void))store_settable_ctx_params },
    { OSSL_FUNC_STORE_LOAD, (void (*)(void))store_load },
    { OSSL_FUNC_STORE_EOF, (void (*)(void))store_eof },
    { OSSL_FUNC_STORE_CLOSE, (void (*)(void))store_close },
    OSSL_DISPATCH_END
};
