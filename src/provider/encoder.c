/* encoder.c: OSSL_OP_ENCODER for token keys. Writing a private key gives
 * its key reference file, never key bytes; text output names the key's URI
 * and prints the public half. */
#include <string.h>
#include <openssl/bio.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <p11id/p11id.h>
#include "core/compat.h"
#include "core/err.h"
#include "provider/key.h"
#include "core/keyref.h"

static OSSL_FUNC_encoder_newctx_fn enc_newctx;
static OSSL_FUNC_encoder_freectx_fn enc_freectx;
static OSSL_FUNC_encoder_does_selection_fn enc_does_private;
static OSSL_FUNC_encoder_does_selection_fn enc_does_any;
static OSSL_FUNC_encoder_encode_fn enc_pem;
static OSSL_FUNC_encoder_encode_fn enc_text;

static void *enc_newctx(void *provctx)
{
    return provctx;
}

static void enc_freectx(void *vctx)
{
}

static int enc_does_private(void *provctx, int selection)
{
    return (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0;
}

static int enc_does_any(void *provctx, int selection)
{
    return 1;
}

/* Copies a memory BIO's contents to the core BIO. */
static int flush_mem(P11ID_PROV *prov, BIO *mem, OSSL_CORE_BIO *cout)
{
    char *data;
    long n = BIO_get_mem_data(mem, &data);

    return n >= 0 && p11id_prov_write_bio(prov, cout, data, (size_t)n);
}

static int enc_pem(void *vctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                   const OSSL_PARAM obj_abstract[], int selection,
                   OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    P11ID_PROV *prov = vctx;
    const P11ID_KEY *key = obj_raw;
    char *pem;
    size_t len = 0;
    int ok;

    if (key == NULL || key->priv == NULL) {
        p11id_raise(P11ID_R_NO_PRIVATE_KEY,
                    "only keys on a token have a key reference");
        return 0;
    }
    pem = p11id_keyref_to_pem(p11id_object_get0_uri(key->priv), &len);
    if (pem == NULL)
        return 0;
    ok = p11id_prov_write_bio(prov, cout, pem, len);
    OPENSSL_free(pem);
    return ok;
}

static int enc_text(void *vctx, OSSL_CORE_BIO *cout, const void *obj_raw,
                    const OSSL_PARAM obj_abstract[], int selection,
                    OSSL_PASSPHRASE_CALLBACK *cb, void *cbarg)
{
    P11ID_PROV *prov = vctx;
    const P11ID_KEY *key = obj_raw;
    BIO *mem = BIO_new(BIO_s_mem());
    int ok = 0;

    if (key == NULL || mem == NULL)
        goto done;
    if (key->priv != NULL)
        BIO_printf(mem, "PKCS#11 %s private key on a token (%d bit)\nURI: "
                   "%s\n",
                   p11id_keytype_name(key->type), key->bits,
                   p11id_object_get0_uri(key->priv));
    else if (key->pubobj != NULL)
        BIO_printf(mem, "PKCS#11 %s public key on a token (%d bit)\nURI: "
                   "%s\n",
                   p11id_keytype_name(key->type), key->bits,
                   p11id_object_get0_uri(key->pubobj));
    if (key->pub != NULL && EVP_PKEY_print_public(mem, key->pub, 0, NULL) <= 0)
        goto done;
    ok = flush_mem(prov, mem, cout);
done:
    BIO_free(mem);
    return ok;
}

const OSSL_DISPATCH p11id_keyref_encoder_functions[] = {
    { OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))enc_newctx },
    { OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))enc_freectx },
    { OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))enc_does_private },
    { OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))enc_pem },
    OSSL_DISPATCH_END
};

const OSSL_DISPATCH p11id_text_encoder_functions[] = {
    { OSSL_FUNC_ENCODER_NEWCTX, (void (*)(void))enc_newctx },
    { OSSL_FUNC_ENCODER_FREECTX, (void (*)(void))enc_freectx },
    { OSSL_FUNC_ENCODER_DOES_SELECTION, (void (*)(void))enc_does_any },
    { OSSL_FUNC_ENCODER_ENCODE, (void (*)(void))enc_text },
    OSSL_DISPATCH_END
};
