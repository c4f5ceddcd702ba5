/* cmd_import.c: p11id import: a certificate (and its chain) stored on the
 * token beside its key: same CKA_ID and label, subject, issuer, serial. */
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/manage.h"
#include "tool/tool.h"

const char cmd_import_help[] =
    "usage: p11id import KEY-URI CERT [--chain FILE]\n"
    "\n"
    "Stores the certificate on the key's token with the key's CKA_ID and\n"
    "label (and its subject, issuer and serial), so applications find the\n"
    "certificate that belongs to the key. A certificate whose public key is\n"
    "not the key's is refused. --chain stores the CA certificates of FILE\n"
    "(PEM) too, each labelled with its subject's CN.\n";

/* A certificate's DER pieces for the token. Buffers freed by the caller. */
typedef struct cert_der_st {
    unsigned char *der, *subject, *issuer, *serial;
    int len, subject_len, issuer_len, serial_len;
} CERT_DER;

static void cert_der_free(CERT_DER *d)
{
    OPENSSL_free(d->der);
    OPENSSL_free(d->subject);
    OPENSSL_free(d->issuer);
    OPENSSL_free(d->serial);
}

static int cert_der(X509 *x, CERT_DER *d)
{
    memset(d, 0, sizeof(*d));
    d->len = i2d_X509(x, &d->der);
    d->subject_len = i2d_X509_NAME(X509_get_subject_name(x), &d->subject);
    d->issuer_len = i2d_X509_NAME(X509_get_issuer_name(x), &d->issuer);
    d->serial_len = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &d->serial);
    return d->len > 0 && d->subject_len > 0 && d->issuer_len > 0
           && d->serial_len > 0;
}

/* The certificate request for the token from a certificate's pieces. */
static void cert_req(P11ID_CERT_REQ *req, const CERT_DER *d, const char *label,
                     const unsigned char *id, size_t idlen)
{
    memset(req, 0, sizeof(*req));
    req->der = d->der;
    req->len = (size_t)d->len;
    req->subject = d->subject;
    req->subject_len = (size_t)d->subject_len;
    req->issuer = d->issuer;
    req->issuer_len = (size_t)d->issuer_len;
    req->serial = d->serial;
    req->serial_len = (size_t)d->serial_len;
    req->label = label;
    req->id = id;
    req->idlen = idlen;
}

int tool_key_certs(TOOL *t, P11ID_OBJECT *key, P11ID_OBJECT ***certs,
                   size_t *n)
{
    const unsigned char *id;
    size_t idlen;
    char *uri;
    int ok;

    id = p11id_object_get0_id(key, &idlen);
    *certs = NULL;
    *n = 0;
    if (id == NULL)
        return 1;
    uri = p11id_uri_format_object(
        p11id_token_get0_info(p11id_object_get0_token(key)), CKO_CERTIFICATE,
        id, idlen, NULL);
    if (uri == NULL)
        return 0;
    ok = tool_find_all(t, uri, CKO_CERTIFICATE, certs, n);
    free(uri);
    return ok;
}

/* True when the token already holds exactly this certificate for the key. */
static int already_stored(TOOL *t, P11ID_OBJECT *key, const CERT_DER *d)
{
    P11ID_OBJECT **certs = NULL;
    const unsigned char *v;
    size_t n = 0, i, vlen;
    int found = 0;

    if (!tool_key_certs(t, key, &certs, &n))
        return 0;
    for (i = 0; i < n; i++) {
        v = p11id_object_get0_attr(certs[i], CKA_VALUE, &vlen);
        if (v != NULL && vlen == (size_t)d->len
            && memcmp(v, d->der, vlen) == 0)
            found = 1;
    }
    p11id_objects_free(certs, n);
    return found;
}

int tool_store_cert(TOOL *t, P11ID_OBJECT *key, X509 *cert)
{
    EVP_PKEY *pub = tool_public_key(t, key);
    P11ID_CERT_REQ req;
    CERT_DER d;
    const char *label = p11id_object_get0_label(key);
    const unsigned char *id;
    size_t idlen;
    int ok = 0;

    if (pub == NULL)
        return 0;
    if (EVP_PKEY_eq(pub, X509_get0_pubkey(cert)) != 1) {
        ERR_clear_error();
        tool_err(t, "the certificate's public key is not the public key of "
                    "%s: refused", p11id_object_get0_uri(key));
        EVP_PKEY_free(pub);
        return 0;
    }
    EVP_PKEY_free(pub);
    if (!cert_der(cert, &d)) {
        tool_err(t, "cannot encode the certificate");
        cert_der_free(&d);
        return 0;
    }
    if (already_stored(t, key, &d)) {
        cert_der_free(&d);
        return 1;
    }
    id = p11id_object_get0_id(key, &idlen);
    cert_req(&req, &d, label != NULL ? label : "", id, idlen);
    ok = p11id_store_certificate(p11id_object_get0_token(key), &req, NULL)
         == CKR_OK;
    cert_der_free(&d);
    return ok;
}

/* A chain certificate: CKA_ID from its subject key identifier (else a
 * hash of its public key), labelled with its CN. */
static int store_chain_cert(TOOL *t, P11ID_TOKEN *tok, X509 *x)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char cn[65] = "ca";
    P11ID_CERT_REQ req;
    CERT_DER d;
    int ok;

    if (!cert_der(x, &d)) {
        cert_der_free(&d);
        return 0;
    }
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
                              sizeof(cn));
    if (ski != NULL)
        cert_req(&req, &d, cn, ASN1_STRING_get0_data(ski),
                 (size_t)ASN1_STRING_length(ski));
    else if (X509_pubkey_digest(x, EVP_sha1(), md, &mdlen))
        cert_req(&req, &d, cn, md, mdlen);
    else
        req.der = NULL;
    ok = req.der != NULL
         && p11id_store_certificate(tok, &req, NULL) == CKR_OK;
    cert_der_free(&d);
    return ok;
}

/* The stored certificate's URI: the key's token, CKA_ID and label. */
static void print_cert_uri(P11ID_OBJECT *key)
{
    const unsigned char *id;
    size_t idlen;
    char *uri;

    id = p11id_object_get0_id(key, &idlen);
    uri = p11id_uri_format_object(
        p11id_token_get0_info(p11id_object_get0_token(key)), CKO_CERTIFICATE,
        id, idlen, p11id_object_get0_label(key));
    if (uri != NULL)
        printf("%s\n", uri);
    free(uri);
}

int cmd_import_main(TOOL *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "chain", required_argument, NULL, 'c' },
        TOOL_COMMON_OPTIONS
    };
    const char *chain = NULL;
    STACK_OF(X509) *sk = NULL;
    P11ID_OBJECT *key = NULL;
    X509 *cert = NULL;
    int c, i, rc = EXIT_FAIL;

    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        if (c == 'c')
            chain = optarg;
        else if (c < TOOL_OPT_BASE || !tool_common_option(t, c, optarg))
            return tool_usage(t, "unknown option");
    }
    if (optind != argc - 2)
        return tool_usage(t, "give KEY-URI and CERT");
    cert = tool_read_cert(t, argv[optind + 1]);
    if (cert == NULL
        || (chain != NULL && (sk = tool_read_certs(t, chain)) == NULL))
        goto done;
    key = tool_find_one(t, argv[optind], CKO_PRIVATE_KEY);
    if (key == NULL) {
        rc = tool_fail_code(t);
        goto done;
    }
    if (!tool_store_cert(t, key, cert))
        goto done;
    for (i = 0; sk != NULL && i < sk_X509_num(sk); i++)
        if (!store_chain_cert(t, p11id_object_get0_token(key),
                              sk_X509_value(sk, i))) {
            tool_err(t, "cannot store certificate %d of %s", i + 1, chain);
            goto done;
        }
    print_cert_uri(key);
    rc = EXIT_OK;
done:
    sk_X509_pop_free(sk, X509_free);
    X509_free(cert);
    p11id_object_free(key);
    return rc;
}
