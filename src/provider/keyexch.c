/* keyexch.c: OSSL_OP_KEYEXCH ECDH with the private key on the token
 * (CKM_ECDH1_DERIVE, no KDF): the shared secret comes back, the key stays. */
#include <string.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <p11id/p11id.h>
#include "core/compat.h"
#include "core/err.h"
#include "provider/key.h"

static OSSL_FUNC_keyexch_newctx_fn ecdh_newctx;
static OSSL_FUNC_keyexch_freectx_fn ecdh_freectx;
static OSSL_FUNC_keyexch_dupctx_fn ecdh_dupctx;
static OSSL_FUNC_keyexch_init_fn ecdh_init;
static OSSL_FUNC_keyexch_set_peer_fn ecdh_set_peer;
static OSSL_FUNC_keyexch_derive_fn ecdh_derive;
static OSSL_FUNC_keyexch_set_ctx_params_fn ecdh_set_ctx_params;
static OSSL_FUNC_keyexch_settable_ctx_params_fn ecdh_settable;

typedef struct ecdh_ctx_st {
    P11ID_PROV *prov; /* borrowed */
    P11ID_KEY *key;   /* own reference: the private key on the token */
    P11ID_KEY *peer;  /* own reference: the peer's public key */
} ECDH_CTX;

static void *ecdh_newctx(void *provctx)
{
    ECDH_CTX *ctx = OPENSSL_zalloc(sizeof(*ctx));

    if (ctx != NULL)
        ctx->prov = provctx;
    return ctx;
}

static void ecdh_freectx(void *vctx)
{
    ECDH_CTX *ctx = vctx;

    if (ctx == NULL)
        return;
    p11id_key_free(ctx->key);
    p11id_key_free(ctx->peer);
    OPENSSL_free(ctx);
}

static void *ecdh_dupctx(void *vctx)
{
    ECDH_CTX *src = vctx, *dst = OPENSSL_zalloc(sizeof(*dst));

    if (dst == NULL)
        return NULL;
    dst->prov = src->prov;
    dst->key = p11id_key_ref(src->key);
    dst->peer = p11id_key_ref(src->peer);
    return dst;
}

static int ecdh_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    ECDH_CTX *ctx = vctx;
    P11ID_KEY *key = provkey;

    if (ctx == NULL || key == NULL)
        return 0;
    if (key->priv == NULL || key->type != P11ID_KT_EC) {
        p11id_raise(P11ID_R_NO_PRIVATE_KEY,
                    "ECDH needs an EC private key on a token");
        return 0;
    }
    p11id_key_free(ctx->key);
    ctx->key = p11id_key_ref(key);
    return ecdh_set_ctx_params(ctx, params);
}

static int ecdh_set_peer(void *vctx, void *provkey)
{
    ECDH_CTX *ctx = vctx;
    P11ID_KEY *peer = provkey;

    if (ctx == NULL || peer == NULL || peer->pub == NULL)
        return 0;
    p11id_key_free(ctx->peer);
    ctx->peer = p11id_key_ref(peer);
    return 1;
}

static int ecdh_derive(void *vctx, unsigned char *secret, size_t *secretlen,
                       size_t outlen)
{
    ECDH_CTX *ctx = vctx;
    CK_ECDH1_DERIVE_PARAMS dp;
    CK_MECHANISM mech = { CKM_ECDH1_DERIVE, &dp, sizeof(dp) };
    unsigned char point[160];
    size_t plen = 0, len;
    int ok = 0;

    if (ctx == NULL || ctx->key == NULL || ctx->peer == NULL) {
        p11id_raise(P11ID_R_OPERATION_NOT_INITIALIZED,
                    "ECDH needs a key and a peer key");
        return 0;
    }
    len = (size_t)(ctx->key->bits + 7) / 8;
    if (secret == NULL) {
        *secretlen = len;
        return 1;
    }
    if (outlen < len) {
        p11id_raise(P11ID_R_BUFFER_TOO_SMALL,
                    "secret buffer of %zu bytes, %zu needed", outlen, len);
        return 0;
    }
    if (!EVP_PKEY_get_octet_string_param(ctx->peer->pub,
                                         OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                         point, sizeof(point), &plen)) {
        p11id_raise(P11ID_R_BAD_PARAMETER, "cannot read the peer's point");
        return 0;
    }
    memset(&dp, 0, sizeof(dp));
    dp.kdf = CKD_NULL;
    dp.pPublicData = point;
    dp.ulPublicDataLen = plen;
    if (p11id_object_derive(ctx->key->priv, &mech, secret, &len) == CKR_OK) {
        *secretlen = len;
        ok = 1;
    }
    return ok;
}

static int ecdh_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    const OSSL_PARAM *p;

    /* Only the plain derivation: a KDF or cofactor mode is refused rather
     * than ignored. */
    if (params == NULL)
        return 1;
    for (p = params; p->key != NULL; p++) {
        p11id_raise(P11ID_R_UNSUPPORTED,
                    "ECDH parameter \"%s\" is not supported with a token key",
                    p->key);
        return 0;
    }
    return 1;
}

static const OSSL_PARAM *ecdh_settable(void *vctx, void *provctx)
{
    static const OSSL_PARAM params[] = { OSSL_PARAM_END };

    return params;
}

const OSSL_DISPATCH p11id_ecdh_keyexch_functions[] = {
    { OSSL_FUNC_KEYEXCH_NEWCTX, (void (*)(void))ecdh_newctx },
    { OSSL_FUNC_KEYEXCH_FREECTX, (void (*)(void))ecdh_freectx },
    { OSSL_FUNC_KEYEXCH_DUPCTX, (void (*)(void))ecdh_dupctx },
    { OSSL_FUNC_KEYEXCH_INIT, (void (*)(void))ecdh_init },
    { OSSL_FUNC_KEYEXCH_SET_PEER, (void (*)(void))ecdh_set_peer },
    { OSSL_FUNC_KEYEXCH_DERIVE, (void (*)(void))ecdh_derive },
    { OSSL_FUNC_KEYEXCH_SET_CTX_PARAMS, (void (*)(void))ecdh_set_ctx_params },
    { OSSL_FUNC_KEYEXCH_SETTABLE_CTX_PARAMS, (void (*)(void))ecdh_settable },
    OSSL_DISPATCH_END
};
