/* keymgmt.c: OSSL_OP_KEYMGMT for RSA, RSA-PSS, EC, Ed25519 and Ed448 keys on
 * tokens: load by reference, public params, has/match, public export and
 * import. Private components never leave: export of a private key fails. */
#include <string.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <p11id/p11id.h>
#include "core/compat.h"
#include "core/err.h"
#include "provider/key.h"

static OSSL_FUNC_keymgmt_free_fn km_free;
static OSSL_FUNC_keymgmt_load_fn km_load;
static OSSL_FUNC_keymgmt_has_fn km_has;
static OSSL_FUNC_keymgmt_match_fn km_match;
static OSSL_FUNC_keymgmt_validate_fn km_validate;
static OSSL_FUNC_keymgmt_export_fn km_export;
static OSSL_FUNC_keymgmt_get_params_fn km_get_params;
static OSSL_FUNC_keymgmt_dup_fn km_dup;

static void km_free(void *keydata)
{
    p11id_key_free(keydata);
}

/* The reference is a P11ID_KEY pointer made by our store or decoder, valid
 * for the duration of this call: take our own reference. */
static void *km_load(const void *reference, size_t reference_sz)
{
    P11ID_KEY *key;

    if (reference == NULL || reference_sz != sizeof(key))
        return NULL;
    memcpy(&key, reference, sizeof(key));
    return p11id_key_ref(key);
}

static int km_has(const void *keydata, int selection)
{
    const P11ID_KEY *key = keydata;

    if (key == NULL)
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0
        && key->priv == NULL)
        return 0;
    if ((selection & (OSSL_KEYMGMT_SELECT_PUBLIC_KEY
                      | OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS))
            != 0
        && key->pub == NULL)
        return 0;
    return 1;
}

static int km_validate(const void *keydata, int selection, int checktype)
{
    return km_has(keydata, selection);
}

static int km_match(const void *a, const void *b, int selection)
{
    const P11ID_KEY *k1 = a, *k2 = b;

    if (k1->type != k2->type && !(k1->type <= P11ID_KT_RSA_PSS
                                  && k2->type <= P11ID_KT_RSA_PSS))
        return 0;
    if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0
        && (k1->priv == NULL || k1->priv != k2->priv))
        return 0;
    if (k1->pub == NULL || k2->pub == NULL)
        return 0;
    return EVP_PKEY_eq(k1->pub, k2->pub) == 1;
}

static int km_export(void *keydata, int selection, OSSL_CALLBACK *cb,
                     void *cbarg)
{
    P11ID_KEY *key = keydata;

    /* Keys stay on the token: a request that includes the private half is
     * refused quietly (libcrypto then uses our own operations). */
    if (key == NULL || key->pub == NULL
        || (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0)
        return 0;
    return EVP_PKEY_export(key->pub, selection, cb, cbarg);
}

static int km_get_params(void *keydata, OSSL_PARAM params[])
{
    P11ID_KEY *key = keydata;

    if (key == NULL || key->pub == NULL)
        return 0;
    /* bits, security-bits, max-size, group, encoded public key, default
     * digest...: all public facts, answered by the public half. */
    return EVP_PKEY_get_params(key->pub, params);
}

static void *km_dup(const void *keydata, int selection)
{
    /* Keys are immutable once built: a new reference is a copy. */
    return p11id_key_ref((P11ID_KEY *)keydata);
}

/* Per key type: new, import, import_types, export_types, gettable params
 * and the operation names. */
#define KM_TYPE(lc, TYPE, NAME, SIGNAME, KXNAME)                               \
    static OSSL_FUNC_keymgmt_new_fn lc##_km_new;                               \
    static OSSL_FUNC_keymgmt_import_fn lc##_km_import;                         \
    static OSSL_FUNC_keymgmt_import_types_fn lc##_km_types;                    \
    static OSSL_FUNC_keymgmt_gettable_params_fn lc##_km_gettable;              \
    static OSSL_FUNC_keymgmt_query_operation_name_fn lc##_km_opname;           \
    static void *lc##_km_new(void *provctx)                                    \
    {                                                                          \
        return p11id_key_new(provctx, TYPE);                                   \
    }                                                                          \
    static int lc##_km_import(void *keydata, int selection,                    \
                              const OSSL_PARAM params[])                       \
    {                                                                          \
        return km_import_common(keydata, selection, params, NAME);             \
    }                                                                          \
    static const OSSL_PARAM *lc##_km_types(int selection)                      \
    {                                                                          \
        return km_types_common(NAME, selection);                               \
    }                                                                          \
    static const OSSL_PARAM *lc##_km_gettable(void *provctx)                   \
    {                                                                          \
        return km_gettable_common(provctx, NAME);                              \
    }                                                                          \
    static const char *lc##_km_opname(int op)                                  \
    {                                                                          \
        return op == OSSL_OP_SIGNATURE ? SIGNAME                               \
               : op == OSSL_OP_KEYEXCH ? KXNAME                                \
               : op == OSSL_OP_ASYM_CIPHER ? SIGNAME                           \
                                       : NULL;                                 \
    }                                                                          \
    const OSSL_DISPATCH p11id_##lc##_keymgmt_functions[] = {                   \
        { OSSL_FUNC_KEYMGMT_NEW, (void (*)(void))lc##_km_new },                \
        { OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free },                   \
        { OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))km_load },                   \
        { OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))km_has },                     \
        { OSSL_FUNC_KEYMGMT_MATCH, (void (*)(void))km_match },                 \
        { OSSL_FUNC_KEYMGMT_VALIDATE, (void (*)(void))km_validate },           \
        { OSSL_FUNC_KEYMGMT_IMPORT, (void (*)(void))lc##_km_import },          \
        { OSSL_FUNC_KEYMGMT_IMPORT_TYPES, (void (*)(void))lc##_km_types },     \
        { OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))km_export },               \
        { OSSL_FUNC_KEYMGMT_EXPORT_TYPES, (void (*)(void))lc##_km_types },     \
        { OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))km_get_params },       \
        { OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS,                                   \
          (void (*)(void))lc##_km_gettable },                                  \
        { OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,                              \
          (void (*)(void))lc##_km_opname },                                    \
        { OSSL_FUNC_KEYMGMT_DUP, (void (*)(void))km_dup },                     \
        OSSL_DISPATCH_END                                                      \
    };

/* True when params carry private material (software private keys). */
static int has_private_part(const OSSL_PARAM params[])
{
    static const char *const priv[] = {
        OSSL_PKEY_PARAM_PRIV_KEY, OSSL_PKEY_PARAM_RSA_D,
        OSSL_PKEY_PARAM_RSA_FACTOR1, OSSL_PKEY_PARAM_RSA_EXPONENT1,
    };
    size_t i;

    for (i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
        if (OSSL_PARAM_locate_const(params, priv[i]) != NULL)
            return 1;
    return 0;
}

/* Imports a public key (so EVP_PKEY_eq and ECDH peers work across
 * providers). A private half is never taken: such keys belong to software
 * providers, and refusing them keeps us from claiming them. */
static int km_import_common(void *keydata, int selection,
                            const OSSL_PARAM params[], const char *name)
{
    P11ID_KEY *key = keydata;
    EVP_PKEY_CTX *pctx;
    EVP_PKEY *pub = NULL;
    int ok = 0;

    /* libcrypto exports peers with selection "all" even when they are
     * public keys: look at what the parameters hold, not at the bits. */
    if (key == NULL || (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0
        || has_private_part(params))
        return 0;
    pctx = EVP_PKEY_CTX_new_from_name(p11id_prov_libctx(key->prov), name,
                                      P11ID_SOFT_PROPQ);
    if (pctx != NULL && EVP_PKEY_fromdata_init(pctx) > 0
        && EVP_PKEY_fromdata(pctx, &pub, EVP_PKEY_PUBLIC_KEY,
                             (OSSL_PARAM *)params) > 0) {
        p11id_key_set0_pub(key, pub);
        ok = 1;
    }
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

static const OSSL_PARAM *km_types_common(const char *name, int selection)
{
    static const OSSL_PARAM rsa[] = {
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_MASKGENFUNC, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_RSA_MGF1_DIGEST, NULL, 0),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_RSA_PSS_SALTLEN, NULL),
        OSSL_PARAM_END
    };
    static const OSSL_PARAM ec[] = {
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                               NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_END
    };
    static const OSSL_PARAM ed[] = {
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_END
    };

    if (strncmp(name, "RSA", 3) == 0)
        return rsa;
    return strcmp(name, "EC") == 0 ? ec : ed;
}

static const OSSL_PARAM *km_gettable_common(void *provctx, const char *name)
{
    static const OSSL_PARAM common[] = {
        OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
        OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, NULL, 0),
        OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                               NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_X, NULL, 0),
        OSSL_PARAM_BN(OSSL_PKEY_PARAM_EC_PUB_Y, NULL, 0),
        OSSL_PARAM_END
    };

    return common;
}

KM_TYPE(rsa, P11ID_KT_RSA, "RSA", "RSA", NULL)
KM_TYPE(rsapss, P11ID_KT_RSA_PSS, "RSA-PSS", "RSA", NULL)
KM_TYPE(ec, P11ID_KT_EC, "EC", "ECDSA", "ECDH")
KM_TYPE(ed25519, P11ID_KT_ED25519, "ED25519", "ED25519", NULL)
KM_TYPE(ed448, P11ID_KT_ED448, "ED448", "ED448", NULL)

/* The key manager of the name P11ID-KEYREF (see algs.inc): it exists so
 * that the key reference decoder can have a name no key type decodes with.
 * It holds no keys: the decoder hands its keys to the key manager of their
 * real type. */
static void *keyref_km_load(const void *reference, size_t reference_sz)
{
    return NULL;
}

static int keyref_km_has(const void *keydata, int selection)
{
    return 0;
}

const OSSL_DISPATCH p11id_keyref_keymgmt_functions[] = {
    { OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))km_free },
    { OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))keyref_km_load },
    { OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))keyref_km_has },
    OSSL_DISPATCH_END
};
