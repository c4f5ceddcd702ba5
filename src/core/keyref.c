/* keyref.c: reading and writing key reference files: PEM label
 * "PKCS#11 PROVIDER URI", DER SEQUENCE { desc VisibleString, uri UTF8String },
 * the format of the other widely deployed PKCS#11 provider. */
#include "core/keyref.h"

#include <limits.h>
#include <string.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <p11id/p11id.h>
#include "core/err.h"

#define KEYREF_MAX_URI 8192

/* A URI may carry a pin-value: the strings of a key reference are wiped
 * before they are freed, like every other copy of a PIN. */
static void type_clear_free(ASN1_TYPE *t)
{
    if (t != NULL
        && (ASN1_TYPE_get(t) == V_ASN1_UTF8STRING
            || ASN1_TYPE_get(t) == V_ASN1_VISIBLESTRING)
        && t->value.asn1_string != NULL)
        OPENSSL_cleanse(t->value.asn1_string->data,
                        (size_t)t->value.asn1_string->length);
    ASN1_TYPE_free(t);
}

static void seq_clear_free(ASN1_SEQUENCE_ANY *seq)
{
    sk_ASN1_TYPE_pop_free(seq, type_clear_free);
}

static int parse_der(const unsigned char *der, long len, char **uri)
{
    const unsigned char *p = der;
    ASN1_SEQUENCE_ANY *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, len);
    ASN1_TYPE *desc, *val;
    int ulen, ok = 0;

    if (seq == NULL || p != der + len || sk_ASN1_TYPE_num(seq) != 2) {
        p11id_raise(P11ID_R_KEYFILE_INVALID,
                    "key reference file: the DER is not a SEQUENCE of a "
                    "description and a URI");
        goto done;
    }
    desc = sk_ASN1_TYPE_value(seq, 0);
    val = sk_ASN1_TYPE_value(seq, 1);
    if (ASN1_TYPE_get(desc) != V_ASN1_VISIBLESTRING
        || ASN1_TYPE_get(val) != V_ASN1_UTF8STRING) {
        p11id_raise(P11ID_R_KEYFILE_INVALID,
                    "key reference file: expected VisibleString and "
                    "UTF8String, found ASN.1 types %d and %d",
                    ASN1_TYPE_get(desc), ASN1_TYPE_get(val));
        goto done;
    }
    ulen = ASN1_STRING_length(val->value.utf8string);
    if (ulen <= 0 || ulen > KEYREF_MAX_URI
        || memchr(ASN1_STRING_get0_data(val->value.utf8string), '\0',
                  (size_t)ulen) != NULL) {
        p11id_raise(P11ID_R_KEYFILE_INVALID,
                    "key reference file: the URI is empty, too long or "
                    "holds a NUL byte");
        goto done;
    }
    *uri = OPENSSL_strndup(
        (const char *)ASN1_STRING_get0_data(val->value.utf8string),
        (size_t)ulen);
    ok = *uri != NULL;
    if (!ok)
        p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory reading a key "
                    "reference file");
done:
    seq_clear_free(seq);
    return ok;
}

int p11id_keyref_pem_to_der(const unsigned char *buf, size_t len,
                            unsigned char **der, size_t *derlen)
{
    static const char begin[] = "-----BEGIN " P11ID_KEYREF_PEM_LABEL "-----";
    BIO *bio;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long dlen = 0;
    int ret = 0;

    if (len == 0 || memmem(buf, len, begin, sizeof(begin) - 1) == NULL)
        return -1;
    /* A length that does not fit BIO_new_mem_buf's int would turn negative
     * there, and a negative length means "up to the NUL". */
    if (len > INT_MAX) {
        p11id_raise(P11ID_R_KEYFILE_INVALID,
                    "key reference file: larger than %d bytes", INT_MAX);
        return 0;
    }
    bio = BIO_new_mem_buf(buf, (int)len);
    if (bio == NULL) {
        p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory reading a key "
                    "reference file");
        return 0;
    }
    ERR_set_mark();
    while (PEM_read_bio(bio, &name, &header, &data, &dlen) == 1) {
        if (strcmp(name, P11ID_KEYREF_PEM_LABEL) == 0)
            break;
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_clear_free(data, dlen > 0 ? (size_t)dlen : 0);
        name = header = NULL;
        data = NULL;
    }
    ERR_pop_to_mark();
    if (name == NULL) {
        p11id_raise(P11ID_R_KEYFILE_INVALID,
                    "key reference file: the \"%s\" block is not valid PEM "
                    "(bad base64 or a missing END line)",
                    P11ID_KEYREF_PEM_LABEL);
    } else if (dlen <= 0) {
        p11id_raise(P11ID_R_KEYFILE_INVALID,
                    "key reference file: the \"%s\" block is empty",
                    P11ID_KEYREF_PEM_LABEL);
    } else {
        *der = data;
        *derlen = (size_t)dlen;
        data = NULL;
        ret = 1;
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_clear_free(data, dlen > 0 ? (size_t)dlen : 0);
    BIO_free(bio);
    return ret;
}

int p11id_keyref_parse_pem(const unsigned char *buf, size_t len, char **uri)
{
    unsigned char *der = NULL;
    size_t derlen = 0;
    int r = p11id_keyref_pem_to_der(buf, len, &der, &derlen);

    if (r != 1)
        return r;
    r = parse_der(der, (long)derlen, uri);
    OPENSSL_clear_free(der, derlen);
    return r;
}

int p11id_keyref_parse_der(const unsigned char *der, size_t len, char **uri)
{
    static const char desc[] = "PKCS#11 Provider URI";
    int ok;

    if (len < 8 || len > 64 * 1024 || der[0] != 0x30)
        return -1;
    if (memmem(der, len < 64 ? len : 64, desc, sizeof(desc) - 1) == NULL
        && memmem(der, len, "pkcs11:", 7) == NULL)
        return -1;
    ERR_set_mark();
    ok = parse_der(der, (long)len, uri);
    ERR_clear_last_mark();
    return ok;
}

char *p11id_keyref_to_pem(const char *uri, size_t *len)
{
    ASN1_SEQUENCE_ANY *seq = sk_ASN1_TYPE_new_null();
    ASN1_TYPE *desc = ASN1_TYPE_new(), *val = ASN1_TYPE_new();
    ASN1_STRING *ds = ASN1_STRING_type_new(V_ASN1_VISIBLESTRING);
    ASN1_STRING *us = ASN1_STRING_type_new(V_ASN1_UTF8STRING);
    unsigned char *der = NULL;
    char *out = NULL, *data;
    BIO *mem = NULL;
    long n;
    int derlen = 0;

    if (seq == NULL || desc == NULL || val == NULL || ds == NULL || us == NULL
        || !ASN1_STRING_set(ds, P11ID_KEYREF_DESC, -1)
        || !ASN1_STRING_set(us, uri, -1))
        goto done;
    ASN1_TYPE_set(desc, V_ASN1_VISIBLESTRING, ds);
    ds = NULL;
    ASN1_TYPE_set(val, V_ASN1_UTF8STRING, us);
    us = NULL;
    if (!sk_ASN1_TYPE_push(seq, desc))
        goto done;
    desc = NULL;
    if (!sk_ASN1_TYPE_push(seq, val))
        goto done;
    val = NULL;
    derlen = i2d_ASN1_SEQUENCE_ANY(seq, &der);
    mem = BIO_new(BIO_s_mem());
    if (derlen <= 0 || mem == NULL
        || !PEM_write_bio(mem, P11ID_KEYREF_PEM_LABEL, "", der, derlen))
        goto done;
    n = BIO_get_mem_data(mem, &data);
    out = OPENSSL_strndup(data, (size_t)n);
    if (out != NULL)
        *len = (size_t)n;
done:
    ASN1_STRING_free(ds);
    ASN1_STRING_clear_free(us);
    ASN1_TYPE_free(desc);
    type_clear_free(val);
    seq_clear_free(seq);
    OPENSSL_clear_free(der, derlen > 0 ? (size_t)derlen : 0);
    BIO_free(mem); /* a mem BIO's buffer is wiped when freed */
    return out;
}
