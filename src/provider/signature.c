/* signature.c: OSSL_OP_SIGNATURE for RSA (PKCS#1 v1.5, PSS), ECDSA and EdDSA
 * keys that live on a token. Signing runs on the token; hashing runs in
 * software. Parameters, the AlgorithmIdentifier and verification are kept
 * by a "mirror": the same operation set up with another provider on the
 * key's public half, so they are exactly what OpenSSL itself would do. */
#include <string.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <p11id/p11id.h>
#include "core/compat.h"
#include "core/err.h"
#include "provider/key.h"
#include "provider/sigenc.h"

static OSSL_FUNC_signature_newctx_fn sig_newctx;
static OSSL_FUNC_signature_freectx_fn sig_freectx;
static OSSL_FUNC_signature_dupctx_fn sig_dupctx;
static OSSL_FUNC_signature_sign_init_fn sig_sign_init;
static OSSL_FUNC_signature_sign_fn sig_sign;
static OSSL_FUNC_signature_verify_init_fn sig_verify_init;
static OSSL_FUNC_signature_verify_fn sig_verify;
static OSSL_FUNC_signature_digest_sign_init_fn sig_digest_sign_init;
static OSSL_FUNC_signature_digest_sign_update_fn sig_digest_sign_update;
static OSSL_FUNC_signature_digest_sign_final_fn sig_digest_sign_final;
static OSSL_FUNC_signature_digest_sign_fn sig_digest_sign;
static OSSL_FUNC_signature_digest_verify_init_fn sig_digest_verify_init;
static OSSL_FUNC_signature_digest_verify_update_fn sig_digest_verify_update;
static OSSL_FUNC_signature_digest_verify_final_fn sig_digest_verify_final;
static OSSL_FUNC_signature_digest_verify_fn sig_digest_verify;
static OSSL_FUNC_signature_get_ctx_params_fn sig_get_ctx_params;
static OSSL_FUNC_signature_gettable_ctx_params_fn sig_gettable_ctx_params;
static OSSL_FUNC_signature_set_ctx_params_fn sig_set_ctx_params;
static OSSL_FUNC_signature_settable_ctx_params_fn sig_settable_ctx_params;

typedef struct sig_ctx_st {
    P11ID_PROV *prov;      /* borrowed: the provider outlives every op ctx */
    P11ID_KEY *key;        /* own reference, taken at init */
    bool signing;          /* sign (token) or verify (mirror) */
    bool digest;           /* digest-sign/verify */
    EVP_MD_CTX *mirror_md; /* digest ops: verify ctx on the public half */
    EVP_PKEY_CTX *mirror;  /* params, AlgorithmIdentifier, verification */
    EVP_MD_CTX *hash;      /* digest-sign: our own hashing */
    const EVP_MD *md;      /* digest-sign: the digest (provider cache) */
} SIG_CTX;

static void *sig_newctx(void *provctx, const char *propq)
{
    SIG_CTX *ctx = OPENSSL_zalloc(sizeof(*ctx));

    if (ctx != NULL)
        ctx->prov = provctx;
    return ctx;
}

static void sig_reset(SIG_CTX *ctx)
{
    if (ctx->mirror_md != NULL)
        EVP_MD_CTX_free(ctx->mirror_md); /* owns mirror */
    else
        EVP_PKEY_CTX_free(ctx->mirror);
    EVP_MD_CTX_free(ctx->hash);
    p11id_key_free(ctx->key);
    ctx->mirror_md = NULL;
    ctx->mirror = NULL;
    ctx->hash = NULL;
    ctx->md = NULL;
    ctx->key = NULL;
}

static void sig_freectx(void *vctx)
{
    SIG_CTX *ctx = vctx;

    if (ctx == NULL)
        return;
    sig_reset(ctx);
    OPENSSL_free(ctx);
}

static void *sig_dupctx(void *vctx)
{
    SIG_CTX *src = vctx, *dst;

    dst = OPENSSL_zalloc(sizeof(*dst));
    if (dst == NULL)
        return NULL;
    *dst = *src;
    dst->key = p11id_key_ref(src->key);
    dst->mirror_md = NULL;
    dst->mirror = NULL;
    dst->hash = NULL;
    if (src->mirror_md != NULL) {
        dst->mirror_md = EVP_MD_CTX_new();
        if (dst->mirror_md == NULL
            || !EVP_MD_CTX_copy_ex(dst->mirror_md, src->mirror_md))
            goto err;
        dst->mirror = EVP_MD_CTX_get_pkey_ctx(dst->mirror_md);
    } else if (src->mirror != NULL) {
        dst->mirror = EVP_PKEY_CTX_dup(src->mirror);
        if (dst->mirror == NULL)
            goto err;
    }
    if (src->hash != NULL) {
        dst->hash = EVP_MD_CTX_new();
        if (dst->hash == NULL || !EVP_MD_CTX_copy_ex(dst->hash, src->hash))
            goto err;
    }
    return dst;
err:
    sig_freectx(dst);
    return NULL;
}

/* Makes the mirror of a digest-sign context when first needed: a digest
 * verify context on the public half with the same digest, which keeps the
 * parameters and answers the AlgorithmIdentifier. */
static int ensure_mirror(SIG_CTX *ctx)
{
    const char *mdname = ctx->md != NULL ? EVP_MD_get0_name(ctx->md) : NULL;

    if (ctx->mirror != NULL)
        return 1;
    if (ctx->key == NULL)
        return 0;
    ctx->mirror_md = EVP_MD_CTX_new();
    if (ctx->mirror_md == NULL
        || EVP_DigestVerifyInit_ex(ctx->mirror_md, &ctx->mirror, mdname,
                                   p11id_prov_libctx(ctx->prov),
                                   P11ID_SOFT_PROPQ, ctx->key->pub, NULL)
               <= 0) {
        EVP_MD_CTX_free(ctx->mirror_md);
        ctx->mirror_md = NULL;
        ctx->mirror = NULL;
        return 0;
    }
    return 1;
}

/* Common init: key checks and the mirror. mdname NULL for non-digest ops. */
static int sig_init(SIG_CTX *ctx, void *provkey, bool signing, bool digest,
                    const char *mdname, const OSSL_PARAM params[])
{
    P11ID_KEY *key = provkey;
    OSSL_LIB_CTX *lc;
    int ok = 0;

    if (ctx == NULL)
        return 0;
    lc = p11id_prov_libctx(ctx->prov);
    if (key == NULL)
        key = ctx->key; /* re-init with the same key */
    if (key == NULL || key->pub == NULL) {
        p11id_raise(P11ID_R_OPERATION_NOT_INITIALIZED, "no key given");
        return 0;
    }
    if (signing && key->priv == NULL) {
        p11id_raise(P11ID_R_NO_PRIVATE_KEY,
                    "cannot sign with a public key: load the private key "
                    "(type=private in the pkcs11: URI)");
        return 0;
    }
    p11id_key_ref(key);
    sig_reset(ctx);
    ctx->key = key;
    ctx->signing = signing;
    ctx->digest = digest;
    if (digest && signing) {
        /* The hot path (every TLS handshake): our own hashing, and no
         * mirror until parameters are set or asked for. */
        if (key->type != P11ID_KT_ED25519 && key->type != P11ID_KT_ED448) {
            ctx->md = p11id_prov_md(ctx->prov,
                                    mdname != NULL ? mdname : "SHA256");
            ctx->hash = EVP_MD_CTX_new();
            if (ctx->md == NULL || ctx->hash == NULL
                || !EVP_DigestInit_ex2(ctx->hash, ctx->md, NULL))
                goto done;
        }
        if (params != NULL && params[0].key != NULL
            && (!ensure_mirror(ctx)
                || !EVP_PKEY_CTX_set_params(ctx->mirror, params)))
            goto done;
    } else if (digest) {
        ctx->mirror_md = EVP_MD_CTX_new();
        if (ctx->mirror_md == NULL
            || EVP_DigestVerifyInit_ex(ctx->mirror_md, &ctx->mirror, mdname,
                                       lc, P11ID_SOFT_PROPQ, key->pub, params)
                   <= 0)
            goto done;
    } else {
        ctx->mirror = EVP_PKEY_CTX_new_from_pkey(lc, key->pub,
                                                 P11ID_SOFT_PROPQ);
        if (ctx->mirror == NULL || EVP_PKEY_verify_init(ctx->mirror) <= 0
            || (params != NULL && !EVP_PKEY_CTX_set_params(ctx->mirror,
                                                           params)))
            goto done;
    }
    ok = 1;
done:
    return ok;
}

static int sig_sign_init(void *vctx, void *provkey, const OSSL_PARAM params[])
{
    return sig_init(vctx, provkey, true, false, NULL, params);
}

static int sig_verify_init(void *vctx, void *provkey,
                           const OSSL_PARAM params[])
{
    return sig_init(vctx, provkey, false, false, NULL, params);
}

static int sig_digest_sign_init(void *vctx, const char *mdname, void *provkey,
                                const OSSL_PARAM params[])
{
    return sig_init(vctx, provkey, true, true, mdname, params);
}

static int sig_digest_verify_init(void *vctx, const char *mdname,
                                  void *provkey, const OSSL_PARAM params[])
{
    return sig_init(vctx, provkey, false, true, mdname, params);
}

/* The digest the mirror settled on, or NULL. */
static EVP_MD *mirror_md(SIG_CTX *ctx)
{
    char name[64] = "";
    OSSL_PARAM p[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, name,
                               sizeof(name)),
        OSSL_PARAM_END
    };

    if (ctx->mirror == NULL) {
        if (ctx->md != NULL && EVP_MD_up_ref((EVP_MD *)ctx->md))
            return (EVP_MD *)ctx->md;
        return NULL;
    }
    if (!EVP_PKEY_CTX_get_params(ctx->mirror, p) || name[0] == '\0')
        return NULL;
    return EVP_MD_fetch(p11id_prov_libctx(ctx->prov), name, P11ID_SOFT_PROPQ);
}

/* DER DigestInfo of a digest without a constant prefix in sigenc.c
 * (SHA3 and the like), for CKM_RSA_PKCS: ASN.1 encoding, *der allocated. */
static int digest_info_asn1(const EVP_MD *md, const unsigned char *dg,
                            size_t dglen, unsigned char **der, int *derlen)
{
    X509_SIG *sig = X509_SIG_new();
    X509_ALGOR *alg;
    ASN1_OCTET_STRING *os;
    int ok = 0;

    *der = NULL;
    if (sig == NULL)
        return 0;
    X509_SIG_getm(sig, &alg, &os);
    if (X509_ALGOR_set0(alg, OBJ_nid2obj(EVP_MD_get_type(md)), V_ASN1_NULL,
                        NULL)
        && ASN1_OCTET_STRING_set(os, dg, (int)dglen)) {
        *derlen = i2d_X509_SIG(sig, der);
        ok = *derlen > 0;
    }
    X509_SIG_free(sig);
    return ok;
}

/* Reads pad mode, PSS salt length and MGF1 digest from the mirror. */
static int rsa_params(SIG_CTX *ctx, int *pad, int *saltlen, EVP_MD **mgf1)
{
    char mgfname[64] = "";
    OSSL_PARAM p[] = {
        OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_PAD_MODE, pad),
        OSSL_PARAM_int(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, saltlen),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, mgfname,
                               sizeof(mgfname)),
        OSSL_PARAM_END
    };

    *pad = RSA_PKCS1_PADDING;
    *saltlen = RSA_PSS_SALTLEN_AUTO;
    *mgf1 = NULL;
    if (ctx->mirror == NULL)
        return 1; /* nothing set: PKCS#1 v1.5 */
    if (!EVP_PKEY_CTX_get_params(ctx->mirror, p))
        return 0;
    if (*pad == RSA_PKCS1_PSS_PADDING && mgfname[0] != '\0')
        *mgf1 = EVP_MD_fetch(p11id_prov_libctx(ctx->prov), mgfname,
                             P11ID_SOFT_PROPQ);
    return 1;
}

static int rsa_sign_tbs(SIG_CTX *ctx, const EVP_MD *md,
                        const unsigned char *tbs, size_t tbslen,
                        unsigned char *sig, size_t *siglen)
{
    CK_RSA_PKCS_PSS_PARAMS pss;
    CK_MECHANISM mech = { CKM_RSA_PKCS, NULL, 0 };
    unsigned char *der = NULL, di[P11ID_DIGEST_INFO_MAX];
    size_t dilen;
    EVP_MD *mgf1 = NULL;
    int pad, saltlen, derlen = 0, hlen, emlen, ok = 0;

    if (!rsa_params(ctx, &pad, &saltlen, &mgf1))
        return 0;
    if (pad == RSA_PKCS1_PSS_PADDING) {
        if (md == NULL || p11id_md_to_ckm(md) == CK_UNAVAILABLE_INFORMATION) {
            p11id_raise(P11ID_R_UNSUPPORTED,
                        "RSA-PSS needs a SHA-1/SHA-2 digest");
            goto done;
        }
        hlen = EVP_MD_get_size(md);
        emlen = (ctx->key->bits - 1 + 7) / 8;
        if (saltlen == RSA_PSS_SALTLEN_DIGEST)
            saltlen = hlen;
        else if (saltlen < 0) /* max and auto: the largest that fits */
            saltlen = emlen - hlen - 2;
        if (saltlen < 0 || saltlen > emlen - hlen - 2
            || (size_t)hlen != tbslen) {
            p11id_raise(P11ID_R_BAD_PARAMETER,
                        "RSA-PSS: salt length %d or digest length does not "
                        "fit a %d-bit key", saltlen, ctx->key->bits);
            goto done;
        }
        pss.hashAlg = p11id_md_to_ckm(md);
        pss.mgf = p11id_md_to_mgf(mgf1 != NULL ? mgf1 : md);
        pss.sLen = (CK_ULONG)saltlen;
        mech.mechanism = CKM_RSA_PKCS_PSS;
        mech.pParameter = &pss;
        mech.ulParameterLen = sizeof(pss);
        ok = p11id_object_sign(ctx->key->priv, &mech, tbs, tbslen, sig,
                               siglen) == CKR_OK;
    } else if (pad == RSA_PKCS1_PADDING) {
        if (md != NULL) {
            if ((size_t)EVP_MD_get_size(md) != tbslen) {
                p11id_raise(P11ID_R_BAD_PARAMETER,
                            "input is %zu bytes, not a %s digest", tbslen,
                            EVP_MD_get0_name(md));
                goto done;
            }
            /* The usual digests: a constant prefix, on the stack. */
            dilen = p11id_digest_info_fast(EVP_MD_get_type(md), tbs, tbslen,
                                           di, sizeof(di));
            if (dilen > 0) {
                tbs = di;
                tbslen = dilen;
            } else {
                if (!digest_info_asn1(md, tbs, tbslen, &der, &derlen))
                    goto done;
                tbs = der;
                tbslen = (size_t)derlen;
            }
        }
        ok = p11id_object_sign(ctx->key->priv, &mech, tbs, tbslen, sig,
                               siglen) == CKR_OK;
    } else if (pad == RSA_NO_PADDING) {
        mech.mechanism = CKM_RSA_X_509;
        ok = p11id_object_sign(ctx->key->priv, &mech, tbs, tbslen, sig,
                               siglen) == CKR_OK;
    } else {
        p11id_raise(P11ID_R_UNSUPPORTED, "RSA padding mode %d", pad);
    }
done:
    OPENSSL_free(der);
    EVP_MD_free(mgf1);
    return ok;
}

/* CKM_ECDSA gives r || s; OpenSSL wants a DER ECDSA-Sig-Value, the
 * SEQUENCE of the two INTEGERs, written here directly (no BIGNUMs on the
 * signing path). */
static int ecdsa_sign_tbs(SIG_CTX *ctx, const unsigned char *tbs,
                          size_t tbslen, unsigned char *sig, size_t *siglen,
                          size_t sigsize)
{
    CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
    unsigned char raw[2 * 66 + 2];
    size_t rawlen = sizeof(raw);

    if (p11id_object_sign(ctx->key->priv, &mech, tbs, tbslen, raw, &rawlen)
        != CKR_OK)
        return 0;
    *siglen = p11id_ecdsa_der_from_rs(raw, rawlen, sig, sigsize);
    if (*siglen == 0) {
        p11id_raise(P11ID_R_SIGN_FAILED,
                    "cannot encode the token's %zu-byte ECDSA signature in "
                    "a %zu-byte buffer", rawlen, sigsize);
        return 0;
    }
    return 1;
}

static int eddsa_sign(SIG_CTX *ctx, const unsigned char *tbs, size_t tbslen,
                      unsigned char *sig, size_t *siglen)
{
    P11ID_EDDSA_PARAMS ed448 = { CK_FALSE, 0, NULL };
    CK_MECHANISM mech = { CKM_EDDSA, NULL, 0 };

    if (ctx->key->type == P11ID_KT_ED448) {
        mech.pParameter = &ed448;
        mech.ulParameterLen = sizeof(ed448);
    }
    return p11id_object_sign(ctx->key->priv, &mech, tbs, tbslen, sig, siglen)
           == CKR_OK;
}

/* Signs tbs (a digest, or the message for EdDSA) on the token. */
static int sign_tbs(SIG_CTX *ctx, const EVP_MD *md, unsigned char *sig,
                    size_t *siglen, size_t sigsize, const unsigned char *tbs,
                    size_t tbslen)
{
    size_t len = sigsize;

    if (ctx->key->type == P11ID_KT_EC)
        return ecdsa_sign_tbs(ctx, tbs, tbslen, sig, siglen, sigsize);
    if (ctx->key->type == P11ID_KT_ED25519 || ctx->key->type == P11ID_KT_ED448) {
        if (!eddsa_sign(ctx, tbs, tbslen, sig, &len))
            return 0;
        *siglen = len;
        return 1;
    }
    if (!rsa_sign_tbs(ctx, md, tbs, tbslen, sig, &len))
        return 0;
    *siglen = len;
    return 1;
}

static int check_sign(SIG_CTX *ctx, unsigned char *sig, size_t *siglen,
                      size_t sigsize)
{
    if (ctx == NULL || ctx->key == NULL || !ctx->signing) {
        p11id_raise(P11ID_R_OPERATION_NOT_INITIALIZED,
                    "signing was not initialised");
        return 0;
    }
    if (sig != NULL && sigsize < ctx->key->max_size) {
        p11id_raise(P11ID_R_BUFFER_TOO_SMALL,
                    "signature buffer of %zu bytes, %zu needed", sigsize,
                    ctx->key->max_size);
        return 0;
    }
    *siglen = ctx->key->max_size;
    return 1;
}

static int sig_sign(void *vctx, unsigned char *sig, size_t *siglen,
                    size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
    SIG_CTX *ctx = vctx;
    EVP_MD *md;
    int ok;

    if (!check_sign(ctx, sig, siglen, sigsize) || sig == NULL)
        return sig == NULL && ctx != NULL && ctx->key != NULL;
    md = ctx->key->type <= P11ID_KT_RSA_PSS ? mirror_md(ctx) : NULL;
    ok = sign_tbs(ctx, md, sig, siglen, sigsize, tbs, tbslen);
    EVP_MD_free(md);
    return ok;
}

static int sig_verify(void *vctx, const unsigned char *sig, size_t siglen,
                      const unsigned char *tbs, size_t tbslen)
{
    SIG_CTX *ctx = vctx;

    if (ctx == NULL || ctx->mirror == NULL || ctx->signing)
        return 0;
    return EVP_PKEY_verify(ctx->mirror, sig, siglen, tbs, tbslen);
}

static int sig_digest_sign_update(void *vctx, const unsigned char *data,
                                  size_t datalen)
{
    SIG_CTX *ctx = vctx;

    if (ctx == NULL || ctx->hash == NULL) {
        p11id_raise(P11ID_R_OPERATION_NOT_INITIALIZED,
                    "digest-sign was not initialised");
        return 0;
    }
    return EVP_DigestUpdate(ctx->hash, data, datalen);
}

/* Finishes the hash and signs the digest on the token. */
static int sign_hashed(SIG_CTX *ctx, unsigned char *sig, size_t *siglen,
                       size_t sigsize)
{
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned int dglen = 0;
    int ok;

    if (ctx->hash == NULL || !EVP_DigestFinal_ex(ctx->hash, dg, &dglen))
        return 0;
    ok = sign_tbs(ctx, EVP_MD_CTX_get0_md(ctx->hash), sig, siglen, sigsize,
                  dg, dglen);
    OPENSSL_cleanse(dg, dglen);
    return ok;
}

static int sig_digest_sign_final(void *vctx, unsigned char *sig,
                                 size_t *siglen, size_t sigsize)
{
    SIG_CTX *ctx = vctx;

    if (!check_sign(ctx, sig, siglen, sigsize) || sig == NULL)
        return sig == NULL && ctx != NULL && ctx->key != NULL;
    return sign_hashed(ctx, sig, siglen, sigsize);
}

/* One-shot EVP_DigestSign. EdDSA signs the whole message. RSA and ECDSA
 * hash it here and sign the digest: OpenSSL 3.0 then calls neither
 * digest_sign_update nor digest_sign_final, so it does not duplicate the
 * whole context to finalise a copy (libssl signs every CertificateVerify
 * this way). The hash starts afresh afterwards, so one initialised context
 * signs message after message. */
static int sig_digest_sign(void *vctx, unsigned char *sig, size_t *siglen,
                           size_t sigsize, const unsigned char *tbs,
                           size_t tbslen)
{
    SIG_CTX *ctx = vctx;
    int ok;

    if (!check_sign(ctx, sig, siglen, sigsize) || sig == NULL)
        return sig == NULL && ctx != NULL && ctx->key != NULL;
    if (ctx->hash == NULL)
        return sign_tbs(ctx, NULL, sig, siglen, sigsize, tbs, tbslen);
    ok = EVP_DigestUpdate(ctx->hash, tbs, tbslen)
         && sign_hashed(ctx, sig, siglen, sigsize);
    if (!EVP_DigestInit_ex2(ctx->hash, NULL, NULL))
        ok = 0;
    return ok;
}

static int sig_digest_verify_update(void *vctx, const unsigned char *data,
                                    size_t datalen)
{
    SIG_CTX *ctx = vctx;

    if (ctx == NULL || ctx->mirror_md == NULL || ctx->signing)
        return 0;
    return EVP_DigestVerifyUpdate(ctx->mirror_md, data, datalen);
}

static int sig_digest_verify_final(void *vctx, const unsigned char *sig,
                                   size_t siglen)
{
    SIG_CTX *ctx = vctx;

    if (ctx == NULL || ctx->mirror_md == NULL || ctx->signing)
        return 0;
    return EVP_DigestVerifyFinal(ctx->mirror_md, sig, siglen);
}

static int sig_digest_verify(void *vctx, const unsigned char *sig,
                             size_t siglen, const unsigned char *tbs,
                             size_t tbslen)
{
    SIG_CTX *ctx = vctx;

    if (ctx == NULL || ctx->mirror_md == NULL || ctx->signing)
        return 0;
    return EVP_DigestVerify(ctx->mirror_md, sig, siglen, tbs, tbslen);
}

static int sig_get_ctx_params(void *vctx, OSSL_PARAM params[])
{
    SIG_CTX *ctx = vctx;

    if (ctx == NULL || !ensure_mirror(ctx))
        return 0;
    return EVP_PKEY_CTX_get_params(ctx->mirror, params);
}

static int sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
    SIG_CTX *ctx = vctx;

    if (ctx == NULL)
        return 0;
    if (params == NULL || params[0].key == NULL)
        return 1;
    if (!ensure_mirror(ctx))
        return 0;
    return EVP_PKEY_CTX_set_params(ctx->mirror, params);
}

static const OSSL_PARAM *sig_gettable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
        OSSL_PARAM_END
    };

    return params;
}

static const OSSL_PARAM *sig_settable_ctx_params(void *vctx, void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL, 0),
        OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_PROPERTIES, NULL, 0),
        OSSL_PARAM_END
    };

    return params;
}

#define SIG_COMMON                                                             \
    { OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))sig_newctx },                \
        { OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))sig_freectx },          \
        { OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))sig_dupctx },            \
        { OSSL_FUNC_SIGNATURE_GET_CTX_PARAMS,                                  \
          (void (*)(void))sig_get_ctx_params },                                \
        { OSSL_FUNC_SIGNATURE_GETTABLE_CTX_PARAMS,                             \
          (void (*)(void))sig_gettable_ctx_params },                           \
        { OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS,                                  \
          (void (*)(void))sig_set_ctx_params },                                \
        { OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,                             \
          (void (*)(void))sig_settable_ctx_params }

/* RSA and ECDSA: hash in software, sign the digest on the token. */
#define SIG_HASHED                                                             \
    SIG_COMMON,                                                                \
        { OSSL_FUNC_SIGNATURE_SIGN_INIT, (void (*)(void))sig_sign_init },      \
        { OSSL_FUNC_SIGNATURE_SIGN, (void (*)(void))sig_sign },                \
        { OSSL_FUNC_SIGNATURE_VERIFY_INIT, (void (*)(void))sig_verify_init },  \
        { OSSL_FUNC_SIGNATURE_VERIFY, (void (*)(void))sig_verify },            \
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,                                \
          (void (*)(void))sig_digest_sign_init },                              \
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE,                              \
          (void (*)(void))sig_digest_sign_update },                            \
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL,                               \
          (void (*)(void))sig_digest_sign_final },                             \
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign },  \
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT,                              \
          (void (*)(void))sig_digest_verify_init },                            \
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_UPDATE,                            \
          (void (*)(void))sig_digest_verify_update },                          \
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_FINAL,                             \
          (void (*)(void))sig_digest_verify_final },                           \
        OSSL_DISPATCH_END

const OSSL_DISPATCH p11id_rsa_signature_functions[] = { SIG_HASHED };
const OSSL_DISPATCH p11id_ecdsa_signature_functions[] = { SIG_HASHED };

/* EdDSA: one-shot over the whole message. */
#define SIG_ED                                                                 \
    SIG_COMMON,                                                                \
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,                                \
          (void (*)(void))sig_digest_sign_init },                              \
        { OSSL_FUNC_SIGNATURE_DIGEST_SIGN, (void (*)(void))sig_digest_sign },  \
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY_INIT,                              \
          (void (*)(void))sig_digest_verify_init },                            \
        { OSSL_FUNC_SIGNATURE_DIGEST_VERIFY,                                   \
          (void (*)(void))sig_digest_verify },                                 \
        OSSL_DISPATCH_END

const OSSL_DISPATCH p11id_ed25519_signature_functions[] = { SIG_ED };
const OSSL_DISPATCH p11id_ed448_signature_functions[] = { SIG_ED };
