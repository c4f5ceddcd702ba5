/* key.c: building the provider's keys from token objects. */
#include "provider/key.h"

#include <string.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <p11id/p11id.h>
#include "core/err.h"

static const char *const type_names[] = { "RSA", "RSA-PSS", "EC", "ED25519",
                                          "ED448" };

const char *p11id_keytype_name(P11ID_KEYTYPE type)
{
    return type_names[type];
}

P11ID_KEY *p11id_key_new(P11ID_PROV *prov, P11ID_KEYTYPE type)
{
    P11ID_KEY *key = OPENSSL_zalloc(sizeof(*key));

    if (key == NULL)
        return NULL;
    key->refs = 1;
    key->prov = prov;
    key->type = type;
    return key;
}

P11ID_KEY *p11id_key_ref(P11ID_KEY *key)
{
    if (key != NULL)
        __atomic_add_fetch(&key->refs, 1, __ATOMIC_RELAXED);
    return key;
}

void p11id_key_free(P11ID_KEY *key)
{
    if (key == NULL || __atomic_sub_fetch(&key->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    p11id_object_free(key->priv);
    p11id_object_free(key->pubobj);
    EVP_PKEY_free(key->pub);
    OPENSSL_free(key);
}

void p11id_key_set0_pub(P11ID_KEY *key, EVP_PKEY *pub)
{
    EVP_PKEY_free(key->pub);
    key->pub = pub;
    key->max_size = pub != NULL ? (size_t)EVP_PKEY_get_size(pub) : 0;
    key->bits = pub != NULL ? EVP_PKEY_get_bits(pub) : 0;
}

static EVP_PKEY *pub_fromdata(P11ID_PROV *prov, const char *name,
                              OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pkey = NULL;

    if (params == NULL)
        return NULL;
    pctx = EVP_PKEY_CTX_new_from_name(p11id_prov_libctx(prov), name,
                                      P11ID_SOFT_PROPQ);
    if (pctx == NULL || EVP_PKEY_fromdata_init(pctx) <= 0
        || EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *rsa_pub(P11ID_PROV *prov, P11ID_OBJECT *obj)
{
    const unsigned char *n, *e;
    size_t nlen, elen;
    OSSL_PARAM_BLD *bld;
    BIGNUM *bn = NULL, *be = NULL;
    EVP_PKEY *pkey = NULL;

    n = p11id_object_get0_attr(obj, CKA_MODULUS, &nlen);
    e = p11id_object_get0_attr(obj, CKA_PUBLIC_EXPONENT, &elen);
    if (n == NULL || e == NULL || nlen == 0 || elen == 0)
        return NULL;
    bld = OSSL_PARAM_BLD_new();
    bn = BN_bin2bn(n, (int)nlen, NULL);
    be = BN_bin2bn(e, (int)elen, NULL);
    if (bld != NULL && bn != NULL && be != NULL
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn)
        && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pkey = pub_fromdata(prov, "RSA", bld);
    BN_free(bn);
    BN_free(be);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

/* CKA_EC_POINT is a DER OCTET STRING by the spec; some tokens give the raw
 * point. Returns the raw point inside attr. */
static const unsigned char *ec_point_raw(const unsigned char *p, size_t len,
                                         size_t *rawlen)
{
    const unsigned char *q = p;
    ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &q, (long)len);
    size_t inner;

    if (os != NULL && q == p + len) {
        inner = (size_t)ASN1_STRING_length(os);
        ASN1_OCTET_STRING_free(os);
        *rawlen = inner;
        return p + len - inner;
    }
    ASN1_OCTET_STRING_free(os);
    *rawlen = len;
    return p;
}

/* The curve of CKA_EC_PARAMS: an OID (or, for Edwards keys on some tokens,
 * a PrintableString curve name). Returns a NID or NID_undef. */
static int ec_params_nid(const unsigned char *p, size_t len)
{
    const unsigned char *q = p;
    ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &q, (long)len);
    ASN1_PRINTABLESTRING *ps;
    int nid = NID_undef;

    if (oid != NULL) {
        nid = OBJ_obj2nid(oid);
        ASN1_OBJECT_free(oid);
        return nid;
    }
    q = p;
    ps = d2i_ASN1_PRINTABLESTRING(NULL, &q, (long)len);
    if (ps != NULL) {
        if (ASN1_STRING_length(ps) == 12
            && memcmp(ASN1_STRING_get0_data(ps), "edwards25519", 12) == 0)
            nid = NID_ED25519;
        else if (ASN1_STRING_length(ps) == 10
                 && memcmp(ASN1_STRING_get0_data(ps), "edwards448", 10) == 0)
            nid = NID_ED448;
        ASN1_PRINTABLESTRING_free(ps);
    }
    return nid;
}

static EVP_PKEY *ec_pub(P11ID_PROV *prov, P11ID_OBJECT *obj, int nid)
{
    const unsigned char *pt, *raw;
    size_t ptlen, rawlen;
    const char *group;
    OSSL_PARAM_BLD *bld;
    EVP_PKEY *pkey = NULL;

    pt = p11id_object_get0_attr(obj, CKA_EC_POINT, &ptlen);
    if (pt == NULL)
        return NULL;
    raw = ec_point_raw(pt, ptlen, &rawlen);
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL)
        return NULL;
    if (nid == NID_ED25519 || nid == NID_ED448) {
        if (OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                             raw, rawlen))
            pkey = pub_fromdata(prov, nid == NID_ED25519 ? "ED25519"
                                                         : "ED448", bld);
    } else {
        /* Named curve only: explicit parameters make certificates that
         * TLS peers refuse. */
        group = OSSL_EC_curve_nid2name(nid);
        if (group == NULL)
            group = OBJ_nid2sn(nid);
        if (group != NULL
            && OSSL_PARAM_BLD_push_utf8_string(bld,
                                               OSSL_PKEY_PARAM_GROUP_NAME,
                                               group, 0)
            && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                                raw, rawlen))
            pkey = pub_fromdata(prov, "EC", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

EVP_PKEY *p11id_pub_from_cert(P11ID_PROV *prov, const unsigned char *der,
                              size_t len)
{
    const unsigned char *p = der;
    X509 *x = X509_new_ex(p11id_prov_libctx(prov), P11ID_SOFT_PROPQ);
    EVP_PKEY *pkey = NULL;

    if (x != NULL && d2i_X509(&x, &p, (long)len) != NULL) {
        pkey = X509_get_pubkey(x);
    }
    X509_free(x);
    return pkey;
}

/* Public half from the object itself. */
static EVP_PKEY *pub_from_attrs(P11ID_PROV *prov, P11ID_OBJECT *obj,
                                P11ID_KEYTYPE type, int nid)
{
    if (type == P11ID_KT_RSA)
        return rsa_pub(prov, obj);
    return ec_pub(prov, obj, nid);
}

static int keytype_of(P11ID_OBJECT *obj, P11ID_KEYTYPE *type, int *nid)
{
    const unsigned char *params;
    size_t plen;

    *nid = NID_undef;
    switch (p11id_object_get_key_type(obj)) {
    case CKK_RSA:
        *type = P11ID_KT_RSA;
        return 1;
    case CKK_EC:
    case CKK_EC_EDWARDS:
        params = p11id_object_get0_attr(obj, CKA_EC_PARAMS, &plen);
        if (params == NULL)
            return 0;
        *nid = ec_params_nid(params, plen);
        if (*nid == NID_ED25519)
            *type = P11ID_KT_ED25519;
        else if (*nid == NID_ED448)
            *type = P11ID_KT_ED448;
        else if (*nid != NID_undef)
            *type = P11ID_KT_EC;
        return *nid != NID_undef;
    }
    return 0;
}

P11ID_KEY *p11id_key_from_object(P11ID_PROV *prov, P11ID_OBJECT *obj)
{
    P11ID_OBJECT *rel;
    P11ID_KEYTYPE type;
    P11ID_KEY *key;
    EVP_PKEY *pub = NULL;
    const unsigned char *der;
    size_t len;
    int nid;

    if (!keytype_of(obj, &type, &nid)) {
        /* Maybe the token hides EC params on private keys: ask the
         * public key object. */
        rel = p11id_object_find_related(obj, CKO_PUBLIC_KEY);
        if (rel == NULL || !keytype_of(rel, &type, &nid)) {
            p11id_object_free(rel);
            p11id_raise(P11ID_R_UNSUPPORTED,
                        "%s: key type 0x%lx is not supported (RSA, EC "
                        "P-256/P-384/P-521, Ed25519, Ed448 are)",
                        p11id_object_get0_uri(obj),
                        (unsigned long)p11id_object_get_key_type(obj));
            return NULL;
        }
        pub = pub_from_attrs(prov, rel, type, nid);
        p11id_object_free(rel);
    }
    if (pub == NULL)
        pub = pub_from_attrs(prov, obj, type, nid);
    if (pub == NULL && p11id_object_get_class(obj) == CKO_PRIVATE_KEY) {
        rel = p11id_object_find_related(obj, CKO_PUBLIC_KEY);
        if (rel != NULL)
            pub = pub_from_attrs(prov, rel, type, nid);
        p11id_object_free(rel);
    }
    if (pub == NULL && p11id_object_get_class(obj) == CKO_PRIVATE_KEY) {
        rel = p11id_object_find_related(obj, CKO_CERTIFICATE);
        der = rel != NULL ? p11id_object_get0_attr(rel, CKA_VALUE, &len)
                          : NULL;
        if (der != NULL)
            pub = p11id_pub_from_cert(prov, der, len);
        p11id_object_free(rel);
    }
    if (pub == NULL) {
        p11id_raise(P11ID_R_PUBLIC_KEY_UNAVAILABLE,
                    "%s: cannot find the public half of the key (no "
                    "public attributes, no public-key object and no "
                    "certificate with the same CKA_ID)",
                    p11id_object_get0_uri(obj));
        return NULL;
    }
    key = p11id_key_new(prov, type);
    if (key == NULL) {
        EVP_PKEY_free(pub);
        return NULL;
    }
    p11id_key_set0_pub(key, pub);
    if (p11id_object_get_class(obj) == CKO_PRIVATE_KEY)
        key->priv = p11id_object_ref(obj);
    else
        key->pubobj = p11id_object_ref(obj);
    return key;
}

static const struct {
    int nid;
    CK_MECHANISM_TYPE ckm;
    CK_RSA_PKCS_MGF_TYPE mgf;
} md_names[] = {
    { NID_sha1, CKM_SHA_1, CKG_MGF1_SHA1 },
    { NID_sha224, CKM_SHA224, CKG_MGF1_SHA224 },
    { NID_sha256, CKM_SHA256, CKG_MGF1_SHA256 },
    { NID_sha384, CKM_SHA384, CKG_MGF1_SHA384 },
    { NID_sha512, CKM_SHA512, CKG_MGF1_SHA512 },
};

CK_MECHANISM_TYPE p11id_md_to_ckm(const EVP_MD *md)
{
    size_t i;

    for (i = 0; md != NULL && i < sizeof(md_names) / sizeof(md_names[0]); i++)
        if (md_names[i].nid == EVP_MD_get_type(md))
            return md_names[i].ckm;
    return CK_UNAVAILABLE_INFORMATION;
}

CK_RSA_PKCS_MGF_TYPE p11id_md_to_mgf(const EVP_MD *md)
{
    size_t i;

    for (i = 0; md != NULL && i < sizeof(md_names) / sizeof(md_names[0]); i++)
        if (md_names[i].nid == EVP_MD_get_type(md))
            return md_names[i].mgf;
    return CK_UNAVAILABLE_INFORMATION;
}
