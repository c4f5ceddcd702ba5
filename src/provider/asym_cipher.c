/* asym_cipher.c: OSSL_OP_ASYM_CIPHER for RSA keys on tokens: decryption
 * (PKCS#1 v1.5, OAEP, raw) on the token; encryption with the public half.
 * Parameters are kept by a mirror context on the public half. */
#include <string.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rsa.h>

#include <p11id/p11id.h>
#include "core/compat.h"
#include "core/err.h"
#include "core/object.h"
#include "core/quirks.h"
#include "core/token.h"
#include "provider/key.h"

static OSSL_FUNC_asym_cipher_newctx_fn rsa_ac_newctx;
static OSSL_FUNC_asym_cipher_freectx_fn rsa_ac_freectx;
static OSSL_FUNC_asym_cipher_dupctx_fn rsa_ac_dupctx;
static OSSL_FUNC_asym_cipher_encrypt_init_fn rsa_ac_encrypt_init;
static OSSL_FUNC_asym_cipher_encrypt_fn rsa_ac_encrypt;
static OSSL_FUNC_asym_cipher_decrypt_init_fn rsa_ac_decrypt_init;
static OSSL_FUNC_asym_cipher_decrypt_fn rsa_ac_decrypt;
static OSSL_FUNC_asym_cipher_get_ctx_params_fn rsa_ac_get_ctx_params;
static OSSL_FUNC_asym_cipher_gettable_ctx_params_fn rsa_ac_gettable;
static OSSL_FUNC_asym_cipher_set_ctx_params_fn rsa_ac_set_ctx_params;
static OSSL_FUNC_asym_cipher_settable_ctx_params_fn rsa_ac_settable;

typedef struct rsa_ac_ctx_st {
    P11ID_PROV *prov;     /* borrowed */
    P11ID_KEY *key;       /* own reference */
    bool decrypting;
    EVP_PKEY_CTX *mirror; /* encrypt ctx on the public half: params */
} RSA_AC_CTX;

static void *rsa_ac_newctx(void *provctx)
{
    RSA_AC_CTX *ctx = OPENSSL_zalloc(sizeof(*ctx));

    if (ctx != NULL)
        ctx->prov = provctx;
    return ctx;
}

static void rsa_ac_freectx(void *vctx)
{
    RSA_AC_CTX *ctx = vctx;

    if (ctx == NULL)
        return;
    EVP_PKEY_CTX_free(ctx->mirror);
    p11id_key_free(ctx->key);
    OPENSSL_free(ctx);
}

static void *rsa_ac_dupctx(void *vctx)
{
    RSA_AC_CTX *src = vctx, *dst = OPENSSL_zalloc(sizeof(*dst));

    if (dst == NULL)
        return NULL;
    *dst = *src;
    dst->key = p11id_key_ref(src->key);
    dst->mirror = src->mirror != NULL ? EVP_PKEY_CTX_dup(src->mirror) : NULL;
    if (src->mirror != NULL && dst->mirror == NULL) {
        rsa_ac_freectx(dst);
        return NULL;
    }
    return dst;
}

static int rsa_ac_init(RSA_AC_CTX *ctx, P11ID_KEY *key, bool decrypting,
                       const OSSL_PARAM params[])
{
    if (ctx == NULL || key == NULL || key->pub == NULL)
        return 0;
    if (decrypting && key->priv == NULL) {
        p11id_raise(P11ID_R_NO_PRIVATE_KEY,
                    "cannot decrypt with a public key");
        return 0;
    }
    p11id_key_ref(key);
    p11id_key_free(ctx->key);
    EVP_PKEY_CTX_free(ctx->mirror);
    ctx->key = key;
    ctx->decrypting = decrypting;
    ctx->mirror = EVP_PKEY_CTX_new_from_pkey(p11id_prov_libctx(ctx->prov),
                                             key->pub, P11ID_SOFT_PROPQ);
    if (ctx->mirror == NULL || EVP_PKEY_encrypt_init(ctx->mirror) <= 0)
        return 0;
    return params == NULL || EVP_PKEY_CTX_set_params(ctx->mirror, params);
}

static int rsa_ac_encrypt_init(void *vctx, void *provkey,
                               const OSSL_PARAM params[])
{
    return rsa_ac_init(vctx, provkey, false, params);
}

static int rsa_ac_decrypt_init(void *vctx, void *provkey,
                               const OSSL_PARAM params[])
{
    return rsa_ac_init(vctx, provkey, true, params);
}

static int rsa_ac_encrypt(void *vctx, unsigned char *out, size_t *outlen,
                          size_t outsize, const unsigned char *in,
                          size_t inlen)
{
    RSA_AC_CTX *ctx = vctx;

    if (ctx == NULL || ctx->mirror == NULL)
        return 0;
    *outlen = outsize;
    return EVP_PKEY_encrypt(ctx->mirror, out, outlen, in, inlen);
}

/* The mechanism for the mirror's padding. oaep must outlive the call. */
static int decrypt_mech(RSA_AC_CTX *ctx, CK_MECHANISM *mech,
                        CK_RSA_PKCS_OAEP_PARAMS *oaep, unsigned char **label)
{
    char mdname[64] = "", mgfname[64] = "";
    int pad = RSA_PKCS1_PADDING;
    size_t llen = 0;
    OSSL_PARAM p[] = {
        OSSL_PARAM_int(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, &pad),
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, mdname,
                               sizeof(mdname)),
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, mgfname,
                               sizeof(mgfname)),
        OSSL_PARAM_END
    };
    OSSL_PARAM lp[] = {
        OSSL_PARAM_octet_ptr(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL,
                             (void **)label, 0),
        OSSL_PARAM_END
    };
    EVP_MD *md, *mgf;
    OSSL_LIB_CTX *lc = p11id_prov_libctx(ctx->prov);

    *label = NULL;
    if (!EVP_PKEY_CTX_get_params(ctx->mirror, p))
        return 0;
    memset(mech, 0, sizeof(*mech));
    if (pad == RSA_PKCS1_PADDING) {
        mech->mechanism = CKM_RSA_PKCS;
        return 1;
    }
    if (pad == RSA_NO_PADDING) {
        mech->mechanism = CKM_RSA_X_509;
        return 1;
    }
    if (pad != RSA_PKCS1_OAEP_PADDING) {
        p11id_raise(P11ID_R_UNSUPPORTED,
                    "RSA padding mode %d is not supported for decryption on "
                    "a token (pkcs1, oaep and none are)", pad);
        return 0;
    }
    if (EVP_PKEY_CTX_get_params(ctx->mirror, lp))
        llen = lp[0].return_size;
    md = EVP_MD_fetch(lc, mdname[0] ? mdname : "SHA1", P11ID_SOFT_PROPQ);
    mgf = EVP_MD_fetch(lc, mgfname[0] ? mgfname : (mdname[0] ? mdname
                                                              : "SHA1"),
                       P11ID_SOFT_PROPQ);
    memset(oaep, 0, sizeof(*oaep));
    oaep->hashAlg = p11id_md_to_ckm(md);
    oaep->mgf = p11id_md_to_mgf(mgf);
    EVP_MD_free(md);
    EVP_MD_free(mgf);
    if (oaep->hashAlg == CK_UNAVAILABLE_INFORMATION
        || oaep->mgf == CK_UNAVAILABLE_INFORMATION) {
        p11id_raise(P11ID_R_UNSUPPORTED,
                    "OAEP needs SHA-1 or SHA-2 digests on a token");
        return 0;
    }
    if ((oaep->hashAlg != CKM_SHA_1 || oaep->mgf != CKG_MGF1_SHA1)
        && (p11id_token_quirks(p11id_object_get0_token(ctx->key->priv))
            & P11ID_QUIRK_OAEP_SHA1_ONLY) != 0) {
        p11id_raise(P11ID_R_UNSUPPORTED,
                    "this token (token-label %s) does RSA-OAEP with SHA-1 "
                    "only: ask for rsa_oaep_md:sha1 and rsa_mgf1_md:sha1",
                    p11id_token_get0_label(
                        p11id_object_get0_token(ctx->key->priv)));
        return 0;
    }
    oaep->source = CKZ_DATA_SPECIFIED;
    oaep->pSourceData = llen > 0 ? *label : NULL;
    oaep->ulSourceDataLen = llen;
    mech->mechanism = CKM_RSA_PKCS_OAEP;
    mech->pParameter = oaep;
    mech->ulParameterLen = sizeof(*oaep);
    return 1;
}

static int rsa_ac_decrypt(void *vctx, unsigned char *out, size_t *outlen,
                          size_t outsize, const unsigned char *in,
                          size_t inlen)
{
    RSA_AC_CTX *ctx = vctx;
    CK_RSA_PKCS_OAEP_PARAMS oaep;
    CK_MECHANISM mech;
    unsigned char *label = NULL, *buf = NULL;
    size_t len;
    int ok = 0;

    if (ctx == NULL || ctx->key == NULL || !ctx->decrypting) {
        p11id_raise(P11ID_R_OPERATION_NOT_INITIALIZED,
                    "decryption was not initialised");
        return 0;
    }
    if (out == NULL) {
        *outlen = ctx->key->max_size;
        return 1;
    }
    if (!decrypt_mech(ctx, &mech, &oaep, &label))
        return 0;
    /* The plaintext's size is known only afterwards: decrypt into a
     * modulus-sized buffer and copy what fits. */
    len = ctx->key->max_size;
    buf = OPENSSL_malloc(len);
    if (buf == NULL)
        return 0;
    if (p11id_object_decrypt(ctx->key->priv, &mech, in, inlen, buf, &len)
        != CKR_OK)
        goto done;
    if (len > outsize) {
        p11id_raise(P11ID_R_BUFFER_TOO_SMALL,
                    "output buffer of %zu bytes, %zu needed", outsize, len);
        goto done;
    }
    memcpy(out, buf, len);
    *outlen = len;
    ok = 1;
done:
    OPENSSL_clear_free(buf, ctx->key->max_size);
    return ok;
}

static int rsa_ac_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    RSA_AC_CTX *ctx = vctx;

    return ctx != NULL && ctx->mirror != NULL
           && EVP_PKEY_CTX_get_params(ctx->mirror, params);
}

static int rsa_ac_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    RSA_AC_CTX *ctx = vctx;

    if (ctx == NULL)
        return 0;
    if (params == NULL || params[0].key == NULL)
        return 1;
    return ctx->mirror != NULL && EVP_PKEY_CTX_set_params(ctx->mirror, params);
}

static const OSSL_PARAM *rsa_ac_gettable(void *vctx, void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
        OSSL_PARAM_octet_ptr(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0),
        OSSL_PARAM_END
    };

    return params;
}

static const OSSL_PARAM *rsa_ac_settable(void *vctx, void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_PAD_MODE, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST_PROPS,
                               NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST_PROPS,
                               NULL, 0),
        OSSL_PARAM_octet_string(OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, NULL, 0),
        OSSL_PARAM_END
    };

    return params;
}

const OSSL_DISPATCH p11id_rsa_asym_cipher_functions[] = {
    { OSSL_FUNC_ASYM_CIPHER_NEWCTX, (void (*)(void))rsa_ac_newctx },
    { OSSL_FUNC_ASYM_CIPHER_FREECTX, (void (*)(void))rsa_ac_freectx },
    { OSSL_FUNC_ASYM_CIPHER_DUPCTX, (void (*)(void))rsa_ac_dupctx },
    { OSSL_FUNC_ASYM_CIPHER_ENCRYPT_INIT, (void (*)(void))rsa_ac_encrypt_init },
    { OSSL_FUNC_ASYM_CIPHER_ENCRYPT, (void (*)(void))rsa_ac_encrypt },
    { OSSL_FUNC_ASYM_CIPHER_DECRYPT_INIT, (void (*)(void))rsa_ac_decrypt_init },
    { OSSL_FUNC_ASYM_CIPHER_DECRYPT, (void (*)(void))rsa_ac_decrypt },
    { OSSL_FUNC_ASYM_CIPHER_GET_CTX_PARAMS,
      (void (*)(void))rsa_ac_get_ctx_params },
    { OSSL_FUNC_ASYM_CIPHER_GETTABLE_CTX_PARAMS,
      (void (*)(void))rsa_ac_gettable },
    { OSSL_FUNC_ASYM_CIPHER_SET_CTX_PARAMS,
      (void (*)(void))rsa_ac_set_ctx_params },
    { OSSL_FUNC_ASYM_CIPHER_SETTABLE_CTX_PARAMS,
      (void (*)(void))rsa_ac_settable },
    OSSL_DISPATCH_END
};
