/* key.h: the provider's key: a token object plus its public half as a
 * software EVP_PKEY of another provider, used for every public operation. */
#ifndef P11ID_PROVIDER_KEY_H
#define P11ID_PROVIDER_KEY_H

#include <openssl/evp.h>

#include "core/object.h"
#include "provider/provider.h"

typedef enum {
    P11ID_KT_RSA,
    P11ID_KT_RSA_PSS,
    P11ID_KT_EC,
    P11ID_KT_ED25519,
    P11ID_KT_ED448
} P11ID_KEYTYPE;

typedef struct p11id_key_st {
    int refs;               /* atomic */
    P11ID_PROV *prov;       /* borrowed: the provider outlives its keys */
    P11ID_KEYTYPE type;
    P11ID_OBJECT *priv;     /* the private key on the token, or NULL */
    P11ID_OBJECT *pubobj;   /* the public-key object it came from, or NULL */
    EVP_PKEY *pub;          /* public half (other provider), or NULL */
    size_t max_size;        /* EVP_PKEY_get_size(pub) */
    int bits;
} P11ID_KEY;

/* "RSA", "RSA-PSS", "EC", "ED25519", "ED448". */
const char *p11id_keytype_name(P11ID_KEYTYPE type);

P11ID_KEY *p11id_key_new(P11ID_PROV *prov, P11ID_KEYTYPE type);
P11ID_KEY *p11id_key_ref(P11ID_KEY *key);
void p11id_key_free(P11ID_KEY *key);
/* Sets pub (takes the reference). */
void p11id_key_set0_pub(P11ID_KEY *key, EVP_PKEY *pub);

/* A key for a token object (private or public key). The public half comes
 * from the object's attributes, else the public-key object or certificate
 * with the same CKA_ID. NULL with an error raised when the key type is not
 * supported or no public half can be found. */
P11ID_KEY *p11id_key_from_object(P11ID_PROV *prov, P11ID_OBJECT *obj);

/* Finds the one private key a URI names and builds its key (store.c).
 * Errors name the URI and list candidates when none or several match. */
P11ID_KEY *p11id_key_load_uri(P11ID_PROV *prov, const char *uri,
                              OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_arg);

/* PKCS#11 names of a SHA-1/SHA-2 digest: the mechanism (CKM_SHA256) and
 * the MGF1 generator (CKG_MGF1_SHA256). CK_UNAVAILABLE_INFORMATION for a
 * digest PKCS#11 2.40 has no name for. */
CK_MECHANISM_TYPE p11id_md_to_ckm(const EVP_MD *md);
CK_RSA_PKCS_MGF_TYPE p11id_md_to_mgf(const EVP_MD *md);

/* Public key from a certificate's DER (in our library context). */
EVP_PKEY *p11id_pub_from_cert(P11ID_PROV *prov, const unsigned char *der,
                              size_t len);

#endif
