/* decoder.c: OSSL_OP_DECODER for key reference files (PEM "PKCS#11 PROVIDER
 * URI"), so applications that take only a key file path (nginx, curl,
 * Python, httpd) load a token key. Two steps, as OpenSSL's chains want them:
 * PEM -> DER for our label only (announcing the structure "pkcs11"), then
 * DER -> key reference. One DER decoder serves every key type name: it
 * reports the type of the key it found. */
#include <string.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>

#include <p11id/p11id.h>
#include "core/compat.h"
#include "core/err.h"
#include "core/trace.h"
#include "core/uri.h"
#include "provider/key.h"
#include "core/keyref.h"

#define KEYREF_MAX_FILE (64 * 1024)

static OSSL_FUNC_decoder_newctx_fn kr_newctx;
static OSSL_FUNC_decoder_freectx_fn kr_freectx;
static OSSL_FUNC_decoder_does_selection_fn kr_does_selection;
static OSSL_FUNC_decoder_decode_fn kr_decode;
static OSSL_FUNC_decoder_set_ctx_params_fn kr_set_ctx_params;
static OSSL_FUNC_decoder_settable_ctx_params_fn kr_settable_ctx_params;

static P11ID_KEY *load_ref(P11ID_PROV *prov, const unsigned char *der,
                           size_t len, bool from_pem,
                           OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg);

/* Key reference contents may carry a pin-value: wiped before freed. */
static void str_clear_free(char *s)
{
    if (s != NULL)
        OPENSSL_clear_free(s, strlen(s));
}

static void *kr_newctx(void *provctx)
{
    return provctx; /* no state of its own */
}

static void kr_freectx(void *vctx)
{
}

/* OpenSSL asks a decoder to take the input structure its caller wants
 * (d2i_PUBKEY: "SubjectPublicKeyInfo"). A key reference has its own
 * structure: refusing the others keeps p11id's decoders out of every
 * generic DER decoding chain, where they would only cost time (each
 * instance adds a pass over all decoders in OSSL_DECODER_CTX_add_extra). */
static int kr_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;
    const char *s = NULL;

    p = OSSL_PARAM_locate_const(params, OSSL_OBJECT_PARAM_DATA_STRUCTURE);
    if (p == NULL)
        return 1;
    if (!OSSL_PARAM_get_utf8_string_ptr(p, &s))
        return 0;
    return s == NULL || OPENSSL_strcasecmp(s, P11ID_KEYREF_STRUCTURE) == 0;
}

static const OSSL_PARAM *kr_settable_ctx_params(void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE, NULL, 0),
        OSSL_PARAM_END
    };

    return settable;
}

static int kr_does_selection(void *provctx, int selection)
{
    /* A key reference names a private key (and so its key pair). */
    return selection == 0
           || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
}

static int kr_decode(void *vctx, OSSL_CORE_BIO *cbio, int selection,
                     OSSL_CALLBACK *data_cb, void *data_cbarg,
                     OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    P11ID_PROV *prov = vctx;
    unsigned char *buf = NULL;
    char *uri = NULL;
    size_t len = 0;
    P11ID_KEY *key = NULL;
    int type = OSSL_OBJECT_PKEY, r, ok = 1;

    if (!p11id_prov_read_bio(prov, cbio, KEYREF_MAX_FILE, &buf, &len))
        return 0;
    r = p11id_keyref_parse_der(buf, len, &uri);
    p11id_trace(2, "DER input of %zu bytes: %s", len,
                r < 0 ? "not a key reference" : "key reference");
    if (r < 0)
        goto done; /* not a key reference: let other decoders try */
    key = r == 1 ? load_ref(prov, buf, len, false, pw_cb, pw_cbarg) : NULL;
    if (key == NULL) {
        ok = 0;
        goto done;
    }
    {
        OSSL_PARAM params[] = {
            OSSL_PARAM_int(OSSL_OBJECT_PARAM_TYPE, &type),
            OSSL_PARAM_construct_utf8_string(
                OSSL_OBJECT_PARAM_DATA_TYPE,
                (char *)p11id_keytype_name(key->type), 0),
            OSSL_PARAM_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &key,
                                    sizeof(key)),
            OSSL_PARAM_END
        };

        ok = data_cb(params, data_cbarg);
    }
done:
    p11id_key_free(key);
    str_clear_free(uri);
    OPENSSL_clear_free(buf, len);
    return ok;
}

/* Loads the key a reference names. The PEM stage loads it, where errors
 * reach the user (errors raised in the file: store's nested DER stage are
 * dropped by OpenSSL), and leaves it for the DER stage that follows. */
static P11ID_KEY *load_ref(P11ID_PROV *prov, const unsigned char *der,
                           size_t len, bool from_pem,
                           OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    P11ID_KEY *key = NULL, *old = NULL;
    char *uri = NULL, *olduri = NULL;
    int r = p11id_keyref_parse_der(der, len, &uri);

    if (r < 0 && from_pem)
        p11id_raise(P11ID_R_KEYFILE_INVALID,
                    "key reference file: not a valid \"%s\" structure",
                    P11ID_KEYREF_PEM_LABEL);
    if (r != 1)
        return NULL;
    pthread_mutex_lock(&prov->lock);
    if (!from_pem && prov->decoded_uri != NULL
        && strcmp(prov->decoded_uri, uri) == 0) {
        key = prov->decoded_key;
        olduri = prov->decoded_uri;
        prov->decoded_key = NULL;
        prov->decoded_uri = NULL;
    }
    pthread_mutex_unlock(&prov->lock);
    if (key == NULL)
        key = p11id_key_load_uri(prov, uri, pw_cb, pw_cbarg);
    if (key != NULL && from_pem) {
        pthread_mutex_lock(&prov->lock);
        old = prov->decoded_key;
        olduri = prov->decoded_uri;
        prov->decoded_key = p11id_key_ref(key);
        prov->decoded_uri = uri;
        uri = NULL;
        pthread_mutex_unlock(&prov->lock);
    }
    p11id_key_free(old);
    str_clear_free(olduri);
    str_clear_free(uri);
    return key;
}

/* PEM -> DER for the key reference label only; anything else is left to
 * OpenSSL's own PEM decoder. */
static int pem_decode(void *vctx, OSSL_CORE_BIO *cbio, int selection,
                      OSSL_CALLBACK *data_cb, void *data_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    P11ID_PROV *prov = vctx;
    unsigned char *buf = NULL, *der = NULL;
    size_t len = 0, derlen = 0;
    P11ID_KEY *key = NULL;
    int r, ok = 1;

    if (!p11id_prov_read_bio(prov, cbio, KEYREF_MAX_FILE, &buf, &len))
        return 0;
    r = p11id_keyref_pem_to_der(buf, len, &der, &derlen);
    p11id_trace(2, "PEM input of %zu bytes: %s", len,
                r < 0 ? "not a key reference" : "key reference");
    if (r < 0)
        goto done; /* not ours */
    if (r == 0) {
        ok = 0;
        goto done;
    }
    key = load_ref(prov, der, derlen, true, pw_cb, pw_cbarg);
    if (key == NULL) {
        ok = 0;
        goto done;
    }
    {
        OSSL_PARAM params[] = {
            OSSL_PARAM_octet_string(OSSL_OBJECT_PARAM_DATA, der, derlen),
            OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_STRUCTURE,
                                             (char *)P11ID_KEYREF_STRUCTURE,
                                             0),
            OSSL_PARAM_END
        };

        ok = data_cb(params, data_cbarg);
    }
done:
    p11id_key_free(key);
    OPENSSL_clear_free(der, derlen);
    OPENSSL_clear_free(buf, len);
    return ok;
}

const OSSL_DISPATCH p11id_keyref_pem_decoder_functions[] = {
    { OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))kr_newctx },
    { OSSL_FUNC_DECODER_FREECTX, (void (*)(void))kr_freectx },
    { OSSL_FUNC_DECODER_DECODE, (void (*)(void))pem_decode },
    { OSSL_FUNC_DECODER_SET_CTX_PARAMS, (void (*)(void))kr_set_ctx_params },
    { OSSL_FUNC_DECODER_SETTABLE_CTX_PARAMS,
      (void (*)(void))kr_settable_ctx_params },
    OSSL_DISPATCH_END
};

const OSSL_DISPATCH p11id_keyref_decoder_functions[] = {
    { OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))kr_newctx },
    { OSSL_FUNC_DECODER_FREECTX, (void (*)(void))kr_freectx },
    { OSSL_FUNC_DECODER_DOES_SELECTION, (void (*)(void))kr_does_selection },
    { OSSL_FUNC_DECODER_DECODE, (void (*)(void))kr_decode },
    { OSSL_FUNC_DECODER_SET_CTX_PARAMS, (void (*)(void))kr_set_ctx_params },
    { OSSL_FUNC_DECODER_SETTABLE_CTX_PARAMS,
      (void (*)(void))kr_settable_ctx_params },
    OSSL_DISPATCH_END
};
