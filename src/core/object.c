/* object.c: finding objects on tokens, their attributes, cached handles, and
 * the private-key operations with one recovery from a lost session/token. */
#include "core/object.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include <p11id/p11id.h>
#include "core/err.h"
#include "core/internal.h"
#include "core/pkcs11.h"
#include "core/rv.h"
#include "core/trace.h"

/* The public attributes kept with an object, in P11ID_OBJECT.pub order. */
static const CK_ATTRIBUTE_TYPE pub_types[5] = {
    CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS, CKA_EC_POINT, CKA_VALUE
};

static const struct {
    CK_ATTRIBUTE_TYPE type;
    CK_ULONG flag;
} flag_types[] = {
    { CKA_SIGN, P11ID_OF_SIGN },
    { CKA_DECRYPT, P11ID_OF_DECRYPT },
    { CKA_DERIVE, P11ID_OF_DERIVE },
    { CKA_PRIVATE, P11ID_OF_PRIVATE },
    { CKA_SENSITIVE, P11ID_OF_SENSITIVE },
    { CKA_EXTRACTABLE, P11ID_OF_EXTRACTABLE },
    { CKA_ALWAYS_AUTHENTICATE, P11ID_OF_ALWAYS_AUTH },
};
#define NFLAGS (sizeof(flag_types) / sizeof(flag_types[0]))

P11ID_OBJECT *p11id_object_ref(P11ID_OBJECT *obj)
{
    if (obj != NULL)
        __atomic_add_fetch(&obj->refs, 1, __ATOMIC_RELAXED);
    return obj;
}

void p11id_object_free(P11ID_OBJECT *obj)
{
    size_t i;

    if (obj == NULL || __atomic_sub_fetch(&obj->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (i = 0; i < 5; i++)
        free(obj->pub[i].pValue);
    free(obj->id);
    free(obj->label);
    free(obj->uri);
    pthread_mutex_destroy(&obj->lock);
    free(obj);
}

void p11id_objects_free(P11ID_OBJECT **objs, size_t n)
{
    size_t i;

    if (objs == NULL)
        return;
    for (i = 0; i < n; i++)
        p11id_object_free(objs[i]);
    free(objs);
}

CK_OBJECT_CLASS p11id_object_get_class(const P11ID_OBJECT *obj)
{
    return obj->cls;
}

CK_KEY_TYPE p11id_object_get_key_type(const P11ID_OBJECT *obj)
{
    return obj->key_type;
}

const char *p11id_object_get0_label(const P11ID_OBJECT *obj)
{
    return obj->label;
}

const unsigned char *p11id_object_get0_id(const P11ID_OBJECT *obj,
                                          size_t *len)
{
    *len = obj->idlen;
    return obj->id;
}

const char *p11id_object_get0_uri(const P11ID_OBJECT *obj)
{
    return obj->uri;
}

P11ID_TOKEN *p11id_object_get0_token(const P11ID_OBJECT *obj)
{
    return obj->token;
}

const unsigned char *p11id_object_get0_attr(const P11ID_OBJECT *obj,
                                            CK_ATTRIBUTE_TYPE type,
                                            size_t *len)
{
    size_t i;

    for (i = 0; i < 5; i++)
        if (pub_types[i] == type && obj->pub[i].pValue != NULL) {
            *len = obj->pub[i].ulValueLen;
            return obj->pub[i].pValue;
        }
    *len = 0;
    return NULL;
}

bool p11id_object_get_flag(const P11ID_OBJECT *obj, CK_ATTRIBUTE_TYPE type)
{
    size_t i;

    for (i = 0; i < NFLAGS; i++)
        if (flag_types[i].type == type)
            return (obj->flags & flag_types[i].flag) != 0;
    return false;
}

static CK_ULONG attr_ulong(const CK_ATTRIBUTE *a, CK_ULONG dflt)
{
    CK_ULONG v;

    if (a->pValue == NULL || a->ulValueLen != sizeof(CK_ULONG))
        return dflt;
    memcpy(&v, a->pValue, sizeof(v));
    return v;
}

static bool attr_bool(const CK_ATTRIBUTE *a)
{
    return a->pValue != NULL && a->ulValueLen == sizeof(CK_BBOOL)
           && *(CK_BBOOL *)a->pValue == CK_TRUE;
}

/* Reads what p11id keeps of an object: class, type, id, label, flags and
 * the public attributes. Returns a new object or NULL (error raised). */
static P11ID_OBJECT *object_read(P11ID_SESSION *s, CK_OBJECT_HANDLE h)
{
    CK_ATTRIBUTE a[4 + NFLAGS];
    P11ID_OBJECT *obj = NULL;
    CK_ULONG i, n = 0;

    a[n++].type = CKA_CLASS;
    a[n++].type = CKA_KEY_TYPE;
    a[n++].type = CKA_ID;
    a[n++].type = CKA_LABEL;
    for (i = 0; i < NFLAGS; i++)
        a[n++].type = flag_types[i].type;
    if (p11id_C_GetAttributeValue(s, h, a, n) != CKR_OK)
        return NULL;
    obj = calloc(1, sizeof(*obj));
    if (obj == NULL)
        goto done;
    obj->refs = 1;
    pthread_mutex_init(&obj->lock, NULL);
    obj->token = s->token;
    obj->handle = h;
    obj->epoch = s->epoch;
    obj->cls = attr_ulong(&a[0], CK_UNAVAILABLE_INFORMATION);
    obj->key_type = attr_ulong(&a[1], CK_UNAVAILABLE_INFORMATION);
    if (a[2].pValue != NULL && a[2].ulValueLen > 0) {
        obj->id = a[2].pValue;
        obj->idlen = a[2].ulValueLen;
        a[2].pValue = NULL;
    }
    if (a[3].pValue != NULL) {
        ((char *)a[3].pValue)[a[3].ulValueLen] = '\0';
        obj->label = a[3].pValue;
        a[3].pValue = NULL;
    }
    for (i = 0; i < NFLAGS; i++)
        if (attr_bool(&a[4 + i]))
            obj->flags |= flag_types[i].flag;
    for (i = 0; i < 5; i++)
        obj->pub[i].type = pub_types[i];
    /* Certificates: the DER; keys: the public components. Never CKA_VALUE
     * of a key (secret material). */
    if (obj->cls == CKO_CERTIFICATE) {
        if (p11id_C_GetAttributeValue(s, h, &obj->pub[4], 1) != CKR_OK)
            goto fail;
    } else if (obj->cls == CKO_PRIVATE_KEY || obj->cls == CKO_PUBLIC_KEY) {
        if (p11id_C_GetAttributeValue(s, h, obj->pub, 4) != CKR_OK)
            goto fail;
    }
    obj->uri = p11id_uri_format_object(&s->token->info, obj->cls, obj->id,
                                       obj->idlen, obj->label);
    if (obj->uri == NULL)
        goto fail;
    goto done;
fail:
    p11id_object_free(obj);
    obj = NULL;
done:
    if (obj == NULL)
        p11id_raise(P11ID_R_TOKEN_CALL_FAILED, "cannot read an object of "
                    "token \"%s\"", s->token->label);
    p11id_attrs_clear(a, n);
    return obj;
}

P11ID_OBJECT *p11id_object_from_handle(P11ID_SESSION *s, CK_OBJECT_HANDLE h)
{
    return object_read(s, h);
}

/* Builds the search template from the request. */
/* Only token objects: our own session copies of keys (and other session
 * objects) are never what a URI names. */
static CK_BBOOL token_true = CK_TRUE;

static CK_ULONG build_template(const P11ID_FIND_REQ *req, CK_ATTRIBUTE *t,
                               CK_OBJECT_CLASS *cls)
{
    const unsigned char *id;
    const char *label;
    size_t idlen = 0;
    CK_ULONG n = 0;

    t[n].type = CKA_TOKEN;
    t[n].pValue = &token_true;
    t[n++].ulValueLen = sizeof(token_true);
    *cls = req->cls;
    if (*cls == P11ID_CLASS_ANY && req->uri != NULL && !req->token_only)
        *cls = p11id_uri_get_class(req->uri);
    if (*cls != P11ID_CLASS_ANY) {
        t[n].type = CKA_CLASS;
        t[n].pValue = cls;
        t[n++].ulValueLen = sizeof(*cls);
    }
    if (req->uri == NULL || req->token_only)
        return n;
    id = p11id_uri_get0_id(req->uri, &idlen);
    if (id != NULL) {
        t[n].type = CKA_ID;
        t[n].pValue = (void *)id;
        t[n++].ulValueLen = idlen;
    }
    label = p11id_uri_get0_label(req->uri);
    if (label != NULL) {
        t[n].type = CKA_LABEL;
        t[n].pValue = (void *)label;
        t[n++].ulValueLen = strlen(label);
    }
    return n;
}

static bool class_listed(CK_OBJECT_CLASS c)
{
    return c == CKO_PRIVATE_KEY || c == CKO_PUBLIC_KEY || c == CKO_CERTIFICATE;
}

static CK_RV push_object(P11ID_OBJECT ***objs, size_t *n, P11ID_OBJECT *o)
{
    P11ID_OBJECT **grown = realloc(*objs, (*n + 1) * sizeof(**objs));

    if (grown == NULL) {
        p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory");
        return CKR_HOST_MEMORY;
    }
    grown[(*n)++] = o;
    *objs = grown;
    return CKR_OK;
}

/* Runs one search on a session and appends what it finds. */
static CK_RV search(P11ID_SESSION *s, CK_ATTRIBUTE *t, CK_ULONG nt,
                    bool any_class, P11ID_OBJECT ***objs, size_t *n)
{
    CK_OBJECT_HANDLE hs[64];
    CK_ULONG count = 0, i;
    P11ID_OBJECT *obj;
    CK_RV rv;

    rv = p11id_C_FindObjectsInit(s, t, nt);
    if (rv != CKR_OK)
        return rv;
    do {
        rv = p11id_C_FindObjects(s, hs, 64, &count);
        for (i = 0; rv == CKR_OK && i < count; i++) {
            obj = object_read(s, hs[i]);
            if (obj == NULL) {
                rv = CKR_GENERAL_ERROR;
            } else if (any_class && !class_listed(obj->cls)) {
                p11id_object_free(obj);
            } else {
                rv = push_object(objs, n, obj);
                if (rv != CKR_OK)
                    p11id_object_free(obj);
            }
        }
    } while (rv == CKR_OK && count == 64);
    /* Always end the search so the session can be reused. */
    if (rv == CKR_OK)
        rv = p11id_C_FindObjectsFinal(s);
    else
        s->token->module->fl->C_FindObjectsFinal(s->handle);
    return rv;
}

/* An operation's failure that says the handles we hold are stale, not
 * that the key is unusable: SoftHSM 2.6 invalidates every handle to a
 * private object (and destroys private session objects, our session copy)
 * when the token is logged out underneath, and then answers
 * CKR_OBJECT_HANDLE_INVALID, not CKR_USER_NOT_LOGGED_IN. */
static bool handle_lost(CK_RV rv)
{
    return rv == CKR_OBJECT_HANDLE_INVALID || rv == CKR_KEY_HANDLE_INVALID;
}

/* Gets the token back after a lost session, login, handle or module:
 * the module initialised again if it forgot us, then the token's sessions
 * and login dropped so that the retry opens, logs in and finds anew. */
static void recover(P11ID_TOKEN *tok, unsigned long seen_epoch, CK_RV rv)
{
    if (rv == CKR_CRYPTOKI_NOT_INITIALIZED)
        p11id_module_reinit(tok->module);
    p11id_token_reset(tok, seen_epoch);
}

/* True when the session says nobody is logged in: the token logged out
 * underneath (a reset, another user's C_Logout) although this process
 * logged in. A token that cannot tell is taken at its word. */
static bool logged_out_underneath(P11ID_SESSION *s)
{
    CK_SESSION_INFO si;
    CK_RV rv;

    p11id_err_set_mark();
    rv = p11id_C_GetSessionInfo(s, &si);
    p11id_err_pop_to_mark();
    return rv == CKR_OK
           && (si.state == CKS_RO_PUBLIC_SESSION
               || si.state == CKS_RW_PUBLIC_SESSION);
}

/* Drops the objects a failed search appended after the first "keep". */
static void objects_truncate(P11ID_OBJECT **objs, size_t *n, size_t keep)
{
    while (*n > keep)
        p11id_object_free(objs[--*n]);
}

/* One search on the token: logs in where private objects are wanted, then
 * searches on a pooled session. A private search that finds nothing on a
 * token that logged out underneath answers CKR_USER_NOT_LOGGED_IN. */
static CK_RV find_once(P11ID_TOKEN *tok, const P11ID_FIND_REQ *req,
                       const P11ID_PIN_REQ *pin, unsigned long *epoch,
                       P11ID_OBJECT ***objs, size_t *n)
{
    CK_ATTRIBUTE t[4];
    CK_OBJECT_CLASS cls;
    CK_ULONG nt = build_template(req, t, &cls);
    P11ID_SESSION s;
    bool wants_private = cls == P11ID_CLASS_ANY || cls == CKO_PRIVATE_KEY
                         || cls == CKO_SECRET_KEY || cls == CKO_DATA;
    bool logged_in = false;
    size_t before = *n;
    CK_RV rv;

    /* Public objects never ask for a PIN. */
    if (req->login && wants_private && p11id_token_needs_login(tok)) {
        rv = p11id_token_login(tok, pin, cls == P11ID_CLASS_ANY);
        if (rv == CKR_PIN_LEN_RANGE && cls == P11ID_CLASS_ANY)
            rv = CKR_OK; /* a listing without a PIN shows public objects */
        else if (rv == CKR_OK)
            logged_in = true;
        if (rv != CKR_OK)
            return rv;
    }
    rv = p11id_session_take(tok, 0, &s);
    if (rv != CKR_OK)
        return rv;
    *epoch = s.epoch;
    rv = search(&s, t, nt, cls == P11ID_CLASS_ANY, objs, n);
    if (rv == CKR_OK && logged_in && *n == before
        && logged_out_underneath(&s))
        rv = CKR_USER_NOT_LOGGED_IN;
    if (rv == CKR_OK)
        p11id_session_return(&s);
    else
        p11id_session_discard(&s);
    return rv;
}

/* Searches the token; after a lost session, login or token it recovers
 * once and searches again. */
static CK_RV find_on_token(P11ID_TOKEN *tok, const P11ID_FIND_REQ *req,
                           const P11ID_PIN_REQ *pin, P11ID_OBJECT ***objs,
                           size_t *n)
{
    size_t before = *n;
    unsigned long epoch;
    CK_RV rv;

    p11id_err_set_mark();
    epoch = p11id_token_epoch(tok);
    rv = find_once(tok, req, pin, &epoch, objs, n);
    if (rv == CKR_OK || !p11id_rv_is_session_lost(rv)) {
        if (rv != CKR_OK)
            objects_truncate(*objs, n, before);
        p11id_err_clear_mark();
        return rv;
    }
    objects_truncate(*objs, n, before);
    p11id_trace(1, "token \"%s\": %s while searching, recovering once",
                tok->label, p11id_rv_name(rv));
    recover(tok, epoch, rv);
    p11id_err_pop_to_mark();
    rv = find_once(tok, req, pin, &epoch, objs, n);
    if (rv != CKR_OK)
        objects_truncate(*objs, n, before);
    if (rv == CKR_USER_NOT_LOGGED_IN)
        p11id_raise(P11ID_R_LOGIN_FAILED,
                    "token \"%s\" logged out again right after p11id "
                    "logged in: is another program resetting it?",
                    tok->label);
    return rv;
}

CK_RV p11id_find_objects(P11ID_CTX *ctx, const P11ID_FIND_REQ *req,
                         P11ID_OBJECT ***objs, size_t *n)
{
    P11ID_MODULE **mods = NULL;
    P11ID_TOKEN **toks = NULL;
    P11ID_OBJECT **found = NULL;
    size_t nmods = 0, ntoks = 0, nfound = 0, i, j;
    P11ID_PIN_REQ pin;
    CK_RV rv;

    memset(&pin, 0, sizeof(pin));
    if (req->uri != NULL) {
        pin.pin_value = p11id_uri_get0_pin_value(req->uri);
        pin.pin_source = p11id_uri_get0_pin_source(req->uri);
    }
    pin.cfg_source = p11id_ctx_get0_pin_source(ctx);
    pin.cb = req->pin_cb;
    pin.cb_arg = req->pin_arg;
    rv = p11id_ctx_modules_for_uri(ctx, req->uri, &mods, &nmods);
    for (i = 0; rv == CKR_OK && i < nmods; i++) {
        rv = p11id_module_tokens(mods[i], req->uri, &toks, &ntoks);
        for (j = 0; rv == CKR_OK && j < ntoks; j++)
            rv = find_on_token(toks[j], req, &pin, &found, &nfound);
        free(toks);
        toks = NULL;
    }
    free(mods);
    if (rv != CKR_OK) {
        p11id_objects_free(found, nfound);
        return rv;
    }
    *objs = found;
    *n = nfound;
    return CKR_OK;
}

P11ID_OBJECT *p11id_object_find_related(P11ID_OBJECT *obj,
                                        CK_OBJECT_CLASS cls)
{
    CK_ATTRIBUTE t[3];
    P11ID_OBJECT **found = NULL, *ret = NULL;
    P11ID_SESSION s;
    size_t n = 0, i;

    if (obj->id == NULL)
        return NULL;
    t[0].type = CKA_CLASS;
    t[0].pValue = &cls;
    t[0].ulValueLen = sizeof(cls);
    t[1].type = CKA_ID;
    t[1].pValue = obj->id;
    t[1].ulValueLen = obj->idlen;
    t[2].type = CKA_TOKEN;
    t[2].pValue = &token_true;
    t[2].ulValueLen = sizeof(token_true);
    p11id_err_set_mark();
    if (p11id_session_take(obj->token, 0, &s) != CKR_OK) {
        p11id_err_pop_to_mark();
        return NULL;
    }
    if (search(&s, t, 3, false, &found, &n) == CKR_OK)
        p11id_session_return(&s);
    else
        p11id_session_discard(&s);
    p11id_err_pop_to_mark();
    if (n > 0)
        ret = p11id_object_ref(found[0]);
    for (i = 0; i < n; i++)
        p11id_object_free(found[i]);
    free(found);
    return ret;
}

/* Finds the object's handle again after a fork or a token reset: same
 * class, key type, id and label. */
static CK_RV refresh_handle(P11ID_OBJECT *obj, P11ID_SESSION *s,
                            CK_OBJECT_HANDLE *h)
{
    CK_ATTRIBUTE t[5];
    CK_OBJECT_HANDLE hs[2];
    CK_ULONG nt = 0, count = 0;
    CK_RV rv;

    pthread_mutex_lock(&obj->lock);
    if (obj->epoch == s->epoch) {
        *h = obj->handle;
        pthread_mutex_unlock(&obj->lock);
        return CKR_OK;
    }
    t[nt].type = CKA_TOKEN;
    t[nt].pValue = &token_true;
    t[nt++].ulValueLen = sizeof(token_true);
    t[nt].type = CKA_CLASS;
    t[nt].pValue = &obj->cls;
    t[nt++].ulValueLen = sizeof(obj->cls);
    if (obj->key_type != CK_UNAVAILABLE_INFORMATION) {
        t[nt].type = CKA_KEY_TYPE;
        t[nt].pValue = &obj->key_type;
        t[nt++].ulValueLen = sizeof(obj->key_type);
    }
    if (obj->id != NULL) {
        t[nt].type = CKA_ID;
        t[nt].pValue = obj->id;
        t[nt++].ulValueLen = obj->idlen;
    }
    if (obj->label != NULL) {
        t[nt].type = CKA_LABEL;
        t[nt].pValue = obj->label;
        t[nt++].ulValueLen = strlen(obj->label);
    }
    rv = p11id_C_FindObjectsInit(s, t, nt);
    if (rv == CKR_OK) {
        rv = p11id_C_FindObjects(s, hs, 2, &count);
        s->token->module->fl->C_FindObjectsFinal(s->handle);
    }
    if (rv == CKR_OK && count != 1) {
        p11id_raise(P11ID_R_NO_OBJECT,
                    "%s: the object is no longer on the token (found %lu)",
                    obj->uri, (unsigned long)count);
        rv = CKR_OBJECT_HANDLE_INVALID;
    }
    if (rv == CKR_OK) {
        obj->handle = hs[0];
        obj->epoch = s->epoch;
        *h = hs[0];
        p11id_trace(2, "%s: handle found again", obj->uri);
    }
    pthread_mutex_unlock(&obj->lock);
    return rv;
}

CK_RV p11id_object_handle(P11ID_OBJECT *obj, P11ID_SESSION *s,
                          CK_OBJECT_HANDLE *h)
{
    return refresh_handle(obj, s, h);
}

/* The handle to sign or decrypt with. SoftHSM 2.6 decrypts a token key's
 * value on every use and is about 1.6x faster with a session copy; the copy
 * is CKA_TOKEN false and keeps the key's CKA_SENSITIVE and CKA_EXTRACTABLE
 * (PKCS#11 lets a copy only tighten them). It lives in the token's kept
 * session, so it is visible to every pooled session and goes away with the
 * process, a token reset or a fork (epoch). A token that refuses copies is
 * not asked again. */
static CK_RV key_handle(P11ID_OBJECT *key, P11ID_SESSION *s,
                        CK_OBJECT_HANDLE *h)
{
    P11ID_TOKEN *tok = key->token;
    CK_BBOOL f = CK_FALSE;
    CK_ATTRIBUTE tmpl[] = { { CKA_TOKEN, &f, sizeof(f) } };
    P11ID_SESSION keep;
    CK_OBJECT_HANDLE copy;
    CK_RV rv;

    rv = refresh_handle(key, s, h);
    if (rv != CKR_OK || !tok->module->ctx->session_copy
        || key->cls != CKO_PRIVATE_KEY)
        return rv;
    pthread_mutex_lock(&key->lock);
    if (key->copy_epoch == s->epoch) {
        *h = key->copy;
    } else if (!key->copy_failed) {
        /* The kept session is the token's: hold its lock while using it. */
        pthread_mutex_lock(&tok->lock);
        rv = CKR_SESSION_HANDLE_INVALID; /* no kept session: not now */
        if (tok->have_keep && tok->epoch == s->epoch) {
            keep.token = tok;
            keep.handle = tok->keep;
            keep.epoch = tok->epoch;
            keep.rw = false;
            p11id_err_set_mark();
            rv = p11id_C_CopyObject(&keep, *h, tmpl, 1, &copy);
            p11id_err_pop_to_mark();
        }
        pthread_mutex_unlock(&tok->lock);
        if (rv == CKR_OK) {
            key->copy = copy;
            key->copy_epoch = s->epoch;
            *h = copy;
            p11id_trace(2, "%s: signing with a session copy", key->uri);
        } else if (rv != CKR_SESSION_HANDLE_INVALID) {
            key->copy_failed = true;
            p11id_trace(1, "%s: the token refused a session copy (%s): "
                        "using the token object", key->uri,
                        p11id_rv_name(rv));
        }
    }
    pthread_mutex_unlock(&key->lock);
    return CKR_OK;
}

typedef CK_RV (*op_fn)(P11ID_SESSION *s, P11ID_OBJECT *key,
                       CK_OBJECT_HANDLE h, void *arg);

/* Runs op on the key with a pooled session; after a lost session or token
 * it resets the token, logs in again and retries once. */
static CK_RV run_op(P11ID_OBJECT *key, op_fn op, void *arg)
{
    P11ID_TOKEN *tok = key->token;
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    P11ID_SESSION s;
    int attempt;
    bool op_failed;
    CK_RV rv = CKR_GENERAL_ERROR;

    for (attempt = 0; attempt < 2; attempt++) {
        if (attempt == 0)
            p11id_err_set_mark();
        s.token = NULL; /* session_take sets the epoch, even failing */
        op_failed = false;
        rv = p11id_session_take(tok, 0, &s);
        if (rv == CKR_OK && (key->flags & P11ID_OF_PRIVATE) != 0)
            rv = p11id_token_login(tok, NULL, false);
        if (rv == CKR_OK)
            rv = key_handle(key, &s, &h);
        if (rv == CKR_OK) {
            rv = op(&s, key, h, arg);
            op_failed = rv != CKR_OK;
        }
        if (rv == CKR_OK) {
            p11id_session_return(&s);
            if (attempt == 0)
                p11id_err_clear_mark();
            return CKR_OK;
        }
        p11id_session_discard(&s);
        if (attempt == 0
            && (p11id_rv_is_session_lost(rv) || (op_failed && handle_lost(rv)))) {
            p11id_trace(1, "%s: %s, recovering once", key->uri,
                        p11id_rv_name(rv));
            recover(tok, s.epoch, rv);
            p11id_err_pop_to_mark();
            continue;
        }
        if (attempt == 0)
            p11id_err_clear_mark();
        break;
    }
    return rv;
}

/* Context-specific login for keys that want the PIN per use (smart cards). */
static CK_RV context_login(P11ID_SESSION *s, P11ID_OBJECT *key)
{
    P11ID_TOKEN *tok = key->token;
    CK_RV rv;

    if ((key->flags & P11ID_OF_ALWAYS_AUTH) == 0)
        return CKR_OK;
    pthread_mutex_lock(&tok->lock);
    rv = p11id_C_Login(s, CKU_CONTEXT_SPECIFIC, tok->pin, tok->pinlen);
    pthread_mutex_unlock(&tok->lock);
    return rv;
}

typedef struct {
    const CK_MECHANISM *mech;
    const unsigned char *in;
    size_t inlen;
    unsigned char *out;
    size_t *outlen;
    CK_ATTRIBUTE *tmpl;
    CK_ULONG ntmpl;
} op_args;

static CK_RV sign_op(P11ID_SESSION *s, P11ID_OBJECT *key, CK_OBJECT_HANDLE h,
                     void *arg)
{
    op_args *a = arg;
    CK_ULONG len = *a->outlen;
    CK_RV rv;

    rv = p11id_C_SignInit(s, (CK_MECHANISM *)a->mech, h);
    if (rv == CKR_OK)
        rv = context_login(s, key);
    if (rv == CKR_OK)
        rv = p11id_C_Sign(s, (CK_BYTE *)a->in, a->inlen, a->out, &len);
    if (rv == CKR_OK)
        *a->outlen = len;
    return rv;
}

static CK_RV decrypt_op(P11ID_SESSION *s, P11ID_OBJECT *key,
                        CK_OBJECT_HANDLE h, void *arg)
{
    op_args *a = arg;
    CK_ULONG len = *a->outlen;
    CK_RV rv;

    rv = p11id_C_DecryptInit(s, (CK_MECHANISM *)a->mech, h);
    if (rv == CKR_OK)
        rv = context_login(s, key);
    if (rv == CKR_OK)
        rv = p11id_C_Decrypt(s, (CK_BYTE *)a->in, a->inlen, a->out, &len);
    if (rv == CKR_OK)
        *a->outlen = len;
    return rv;
}

static CK_RV derive_op(P11ID_SESSION *s, P11ID_OBJECT *key,
                       CK_OBJECT_HANDLE h, void *arg)
{
    op_args *a = arg;
    CK_OBJECT_HANDLE secret = CK_INVALID_HANDLE;
    CK_ATTRIBUTE val = { CKA_VALUE, NULL, 0 };
    CK_RV rv;

    rv = p11id_C_DeriveKey(s, (CK_MECHANISM *)a->mech, h, a->tmpl, a->ntmpl,
                           &secret);
    if (rv != CKR_OK)
        return rv;
    rv = p11id_C_GetAttributeValue(s, secret, &val, 1);
    if (rv == CKR_OK && (val.pValue == NULL || val.ulValueLen > *a->outlen)) {
        p11id_raise(P11ID_R_DERIVE_FAILED,
                    "%s: the token did not give the derived secret",
                    key->uri);
        rv = CKR_GENERAL_ERROR;
    }
    if (rv == CKR_OK) {
        memcpy(a->out, val.pValue, val.ulValueLen);
        *a->outlen = val.ulValueLen;
    }
    if (val.pValue != NULL)
        OPENSSL_cleanse(val.pValue, val.ulValueLen);
    p11id_attrs_clear(&val, 1);
    s->token->module->fl->C_DestroyObject(s->handle, secret);
    return rv;
}

CK_RV p11id_object_sign(P11ID_OBJECT *key, const CK_MECHANISM *mech,
                        const unsigned char *in, size_t inlen,
                        unsigned char *out, size_t *outlen)
{
    op_args a = { mech, in, inlen, out, outlen, NULL, 0 };

    return run_op(key, sign_op, &a);
}

CK_RV p11id_object_decrypt(P11ID_OBJECT *key, const CK_MECHANISM *mech,
                           const unsigned char *in, size_t inlen,
                           unsigned char *out, size_t *outlen)
{
    op_args a = { mech, in, inlen, out, outlen, NULL, 0 };

    return run_op(key, decrypt_op, &a);
}

CK_RV p11id_object_derive(P11ID_OBJECT *key, const CK_MECHANISM *mech,
                          unsigned char *out, size_t *outlen)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL f = CK_FALSE, t = CK_TRUE;
    CK_ULONG vlen = *outlen;
    CK_ATTRIBUTE tmpl[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_KEY_TYPE, &kt, sizeof(kt) },
        { CKA_TOKEN, &f, sizeof(f) },
        { CKA_SENSITIVE, &f, sizeof(f) },
        { CKA_EXTRACTABLE, &t, sizeof(t) },
        { CKA_VALUE_LEN, &vlen, sizeof(vlen) },
    };
    op_args a = { mech, NULL, 0, out, outlen, tmpl, 6 };

    return run_op(key, derive_op, &a);
}
