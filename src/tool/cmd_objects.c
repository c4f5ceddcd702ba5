/* cmd_objects.c: p11id objects: keys and certificates with copy-pasteable
 * URIs, key types and sizes, certificate names and validity, and which
 * certificate belongs to which key (same CKA_ID). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/bn.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "tool/tool.h"

const char cmd_objects_help[] =
    "usage: p11id objects [URI] [--json]\n"
    "\n"
    "Lists the keys and certificates a URI matches (default: every token),\n"
    "each with its pkcs11: URI; keys with their type and size, certificates\n"
    "with subject, issuer, validity and days left, and the certificate that\n"
    "belongs to each key. Private keys are listed once logged in (--pin-file,\n"
    "--pin-env or the prompt); without a PIN, public objects only.\n";

/* "RSA 2048", "EC P-256", "Ed25519" from a key object's attributes. */
static void key_desc(P11ID_OBJECT *o, char *buf, size_t len)
{
    const unsigned char *p;
    size_t plen;
    ASN1_OBJECT *oid;
    BIGNUM *bn;
    int nid = NID_undef;

    if (p11id_object_get_key_type(o) == CKK_RSA) {
        p = p11id_object_get0_attr(o, CKA_MODULUS, &plen);
        bn = p != NULL ? BN_bin2bn(p, (int)plen, NULL) : NULL;
        if (bn != NULL)
            snprintf(buf, len, "RSA %d", BN_num_bits(bn));
        else
            snprintf(buf, len, "RSA");
        BN_free(bn);
        return;
    }
    p = p11id_object_get0_attr(o, CKA_EC_PARAMS, &plen);
    if (p != NULL && (oid = d2i_ASN1_OBJECT(NULL, &p, (long)plen)) != NULL) {
        nid = OBJ_obj2nid(oid);
        ASN1_OBJECT_free(oid);
    } else if (p != NULL && plen > 2 && memmem(p, plen, "edwards25519", 12)) {
        nid = NID_ED25519;
    }
    snprintf(buf, len, "%s",
             nid == NID_X9_62_prime256v1 ? "EC P-256"
             : nid == NID_secp384r1      ? "EC P-384"
             : nid == NID_secp521r1      ? "EC P-521"
             : nid == NID_ED25519        ? "Ed25519"
             : nid == NID_ED448          ? "Ed448"
             : p11id_object_get_key_type(o) == CKK_EC ? "EC"
                                                      : "other");
}

/* The object of class cls with the same token and CKA_ID, or NULL. */
static P11ID_OBJECT *partner(P11ID_OBJECT **objs, size_t n, P11ID_OBJECT *o,
                             CK_OBJECT_CLASS cls)
{
    const unsigned char *id, *id2;
    size_t idlen, id2len, i;

    id = p11id_object_get0_id(o, &idlen);
    for (i = 0; id != NULL && i < n; i++) {
        id2 = p11id_object_get0_id(objs[i], &id2len);
        if (p11id_object_get_class(objs[i]) == cls
            && p11id_object_get0_token(objs[i]) == p11id_object_get0_token(o)
            && id2 != NULL && id2len == idlen && memcmp(id, id2, idlen) == 0)
            return objs[i];
    }
    return NULL;
}

typedef struct cert_info_st {
    char subject[256], issuer[256], not_before[32], not_after[32];
    int days_left;
} CERT_INFO;

static int cert_info(P11ID_OBJECT *o, CERT_INFO *ci)
{
    const unsigned char *der, *p;
    size_t len;
    X509 *x;
    struct tm tm;
    int days = 0, secs = 0;

    memset(ci, 0, sizeof(*ci));
    der = p11id_object_get0_attr(o, CKA_VALUE, &len);
    p = der;
    x = der != NULL ? d2i_X509(NULL, &p, (long)len) : NULL;
    if (x == NULL)
        return 0;
    X509_NAME_oneline(X509_get_subject_name(x), ci->subject,
                      sizeof(ci->subject));
    X509_NAME_oneline(X509_get_issuer_name(x), ci->issuer,
                      sizeof(ci->issuer));
    if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm))
        strftime(ci->not_before, sizeof(ci->not_before), "%Y-%m-%dT%H:%M:%SZ",
                 &tm);
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm))
        strftime(ci->not_after, sizeof(ci->not_after), "%Y-%m-%dT%H:%M:%SZ",
                 &tm);
    if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)))
        ci->days_left = days;
    X509_free(x);
    return 1;
}

static const char *class_word(CK_OBJECT_CLASS c)
{
    return c == CKO_PRIVATE_KEY  ? "private-key"
           : c == CKO_PUBLIC_KEY ? "public-key"
                                 : "certificate";
}

static void print_text(P11ID_OBJECT **objs, size_t n, size_t i)
{
    P11ID_OBJECT *o = objs[i], *p;
    CK_OBJECT_CLASS c = p11id_object_get_class(o);
    char desc[64];
    CERT_INFO ci;

    printf("%s %s\n", class_word(c), p11id_object_get0_uri(o));
    if (c == CKO_CERTIFICATE) {
        if (cert_info(o, &ci))
            printf("  subject:   %s\n  issuer:    %s\n  valid:     %s to "
                   "%s (%d days left)\n",
                   ci.subject, ci.issuer, ci.not_before, ci.not_after,
                   ci.days_left);
        p = partner(objs, n, o, CKO_PRIVATE_KEY);
        if (p != NULL)
            printf("  key:       %s\n", p11id_object_get0_uri(p));
        return;
    }
    key_desc(o, desc, sizeof(desc));
    printf("  type:      %s\n", desc);
    if (c == CKO_PRIVATE_KEY) {
        printf("  access:    %s, %s\n",
               p11id_object_get_flag(o, CKA_SENSITIVE) ? "sensitive"
                                                       : "NOT sensitive",
               p11id_object_get_flag(o, CKA_EXTRACTABLE) ? "EXTRACTABLE"
                                                         : "not extractable");
        p = partner(objs, n, o, CKO_CERTIFICATE);
        printf("  cert:      %s\n",
               p != NULL ? p11id_object_get0_uri(p) : "(none on the token)");
    }
}

static void print_json(P11ID_OBJECT **objs, size_t n, size_t i)
{
    P11ID_OBJECT *o = objs[i], *p;
    CK_OBJECT_CLASS c = p11id_object_get_class(o);
    char desc[64];
    CERT_INFO ci;

    printf("%s  {\"class\": \"%s\", \"uri\": ", i > 0 ? ",\n" : "",
           class_word(c));
    tool_json_str(stdout, p11id_object_get0_uri(o));
    printf(", \"label\": ");
    tool_json_str(stdout, p11id_object_get0_label(o));
    if (c == CKO_CERTIFICATE) {
        if (cert_info(o, &ci)) {
            printf(", \"subject\": ");
            tool_json_str(stdout, ci.subject);
            printf(", \"issuer\": ");
            tool_json_str(stdout, ci.issuer);
            printf(", \"not_before\": \"%s\", \"not_after\": \"%s\", "
                   "\"days_left\": %d", ci.not_before, ci.not_after,
                   ci.days_left);
        }
        p = partner(objs, n, o, CKO_PRIVATE_KEY);
    } else {
        key_desc(o, desc, sizeof(desc));
        printf(", \"type\": ");
        tool_json_str(stdout, desc);
        if (c == CKO_PRIVATE_KEY)
            printf(", \"sensitive\": %s, \"extractable\": %s",
                   p11id_object_get_flag(o, CKA_SENSITIVE) ? "true" : "false",
                   p11id_object_get_flag(o, CKA_EXTRACTABLE) ? "true"
                                                             : "false");
        p = c == CKO_PRIVATE_KEY ? partner(objs, n, o, CKO_CERTIFICATE) : NULL;
    }
    if (p != NULL) {
        printf(", \"%s\": ", c == CKO_CERTIFICATE ? "key" : "certificate");
        tool_json_str(stdout, p11id_object_get0_uri(p));
    }
    printf("}");
}

/* A URI that names a slot whose token is not initialised finds nothing:
 * say so, as an error. */
static bool uninit_named(TOOL *t, const char *uristr)
{
    P11ID_URI *uri = NULL;
    char hint[512];

    if (uristr == NULL || p11id_uri_parse(uristr, &uri) != CKR_OK)
        return false;
    p11id_ctx_uninit_hint(t->core, uri, hint, sizeof(hint));
    if (hint[0] != '\0')
        tool_err(t, "no objects match %s%s", p11id_uri_get0_display(uri),
                 hint);
    p11id_uri_free(uri);
    return hint[0] != '\0';
}

int cmd_objects_main(TOOL *t, int argc, char **argv)
{
    static const struct option opts[] = { TOOL_COMMON_OPTIONS };
    P11ID_OBJECT **objs = NULL;
    size_t n = 0, i;
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
        if (c < TOOL_OPT_BASE || !tool_common_option(t, c, optarg))
            return tool_usage(t, "unknown option");
    if (optind < argc - 1)
        return tool_usage(t, "at most one URI");
    /* A listing without a PIN source and no terminal shows public objects
     * rather than failing. */
    if (t->pin_file == NULL && t->pin_env == NULL && !isatty(STDIN_FILENO))
        t->pin_failed = true;
    if (!tool_find_all(t, optind < argc ? argv[optind] : "pkcs11:",
                       P11ID_CLASS_ANY, &objs, &n))
        return EXIT_FAIL;
    if (t->json)
        printf("{\"objects\": [\n");
    for (i = 0; i < n; i++) {
        if (t->json)
            print_json(objs, n, i);
        else
            print_text(objs, n, i);
    }
    if (t->json)
        printf("\n]}\n");
    else if (n == 0 && uninit_named(t, optind < argc ? argv[optind] : NULL))
        return EXIT_FAIL;
    else if (n == 0)
        printf("no objects match (without a PIN, private keys are not "
               "listed)\n");
    p11id_objects_free(objs, n);
    return EXIT_OK;
}
