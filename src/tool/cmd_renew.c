/* cmd_renew.c: p11id renew: a new certificate for an identity on a token,
 * with a new key (or the same one on request): a CSR signed on the token,
 * issued at once when the CA key is reachable, installed beside its key
 * before anything old is removed. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/err.h>

#include "core/manage.h"
#include "tool/ledger.h"
#include "tool/tool.h"
#include "tool/x509util.h"

const char cmd_renew_help[] =
    "usage: p11id renew KEY-URI [--same-key | --label LABEL] [--ca KEY-URI "
    "--ca-cert CA-CERT --days N] [options]\n"
    "\n"
    "Renews the identity of the key KEY-URI. Unless --same-key, a new key\n"
    "pair of the same type (or --type) is generated on the same token,\n"
    "labelled LABEL, default the old label with the date (\"web\" ->\n"
    "\"web-20260115\"). A request for it is signed on the token with the\n"
    "subject, names and usage of the key's current certificate unless\n"
    "given.\n"
    "\n"
    "With --ca, the CA key is reachable: the request is issued at once as\n"
    "p11id ca sign does (same checks, same ledger), and the new certificate\n"
    "is stored on the token beside its key. The old certificate and key\n"
    "stay (applications still use them) unless --remove-old, which removes\n"
    "them only after the new certificate is in place: with --same-key the\n"
    "key's other certificates; otherwise the old certificates and the old\n"
    "key pair. Without --ca the request is written for a partner CA to\n"
    "sign (install the answer with p11id import NEW-KEY-URI cert.pem).\n"
    "Prints the new key's and certificate's URIs.\n"
    "\n"
    "  --same-key           keep the key, renew only the certificate\n"
    "  --label LABEL        label of the new key\n"
    "  --type TYPE          type of the new key (rsa:2048, rsa:3072,\n"
    "                       rsa:4096, ec:P-256, ec:P-384, ec:P-521, ed25519)\n"
    "  --subject SUBJECT    as in p11id csr (default: the current one's)\n"
    "  --san LIST           as in p11id csr (default: the current one's)\n"
    "  --usage U            client, server or both (default: from the\n"
    "                       current certificate's extendedKeyUsage)\n"
    "  --md DIGEST          digest of the request's signature\n"
    "  --ca KEY-URI         the CA's key: issue now\n"
    "  --ca-cert CA-CERT    the CA certificate (its ledger beside it)\n"
    "  --ledger FILE        another ledger\n"
    "  --profile P          client, server or both (default: the usage)\n"
    "  --days N             validity of the new certificate (1 to 3650)\n"
    "  --ca-pin-file FILE   the CA token's PIN, when it is not --pin-file's\n"
    "  --ca-pin-env NAME    the CA token's PIN from variable NAME\n"
    "  --remove-old         remove what the new certificate replaces\n"
    "  -o, --out FILE       the new certificate (with --ca) or the request\n"
    "                       (without; default standard output), 0644\n";

typedef struct renew_opts_st {
    const char *key;          /* KEY-URI */
    bool same_key;            /* --same-key */
    bool remove_old;          /* --remove-old */
    const char *label;        /* --label */
    const char *type;         /* --type */
    const char *subject;      /* --subject */
    const char *sans;         /* --san */
    const char *usage;        /* --usage */
    const char *md;           /* --md */
    const char *ca_key;       /* --ca */
    const char *ca_cert;      /* --ca-cert */
    const char *ledger;       /* --ledger */
    const char *profile;      /* --profile */
    const char *days;         /* --days */
    const char *ca_pin_file;  /* --ca-pin-file */
    const char *ca_pin_env;   /* --ca-pin-env */
    const char *out;          /* -o */
} RENEW_OPTS;

/* What the renewal is for, settled before any key is made. */
typedef struct renew_plan_st {
    P11ID_OBJECT *old;        /* the key being renewed (own ref) */
    X509 *current;            /* its newest certificate, or NULL */
    X509_NAME *subject;       /* of the new certificate */
    GENERAL_NAMES *sans;      /* or NULL */
    X509U_USAGE usage;
    P11ID_OBJECT *key;        /* the key of the new certificate (own) */
    bool key_is_new;          /* key was generated here */
} RENEW_PLAN;

enum {
    R_SAME_KEY = 400,
    R_REMOVE_OLD,
    R_LABEL,
    R_TYPE,
    R_SUBJECT,
    R_SAN,
    R_USAGE,
    R_MD,
    R_CA,
    R_CA_CERT,
    R_LEDGER,
    R_PROFILE,
    R_DAYS,
    R_CA_PIN_FILE,
    R_CA_PIN_ENV,
    R_OUT
};

static void set_opt(RENEW_OPTS *o, int id, const char *arg)
{
    const char **slot[] = {
        [R_LABEL - R_LABEL] = &o->label,
        [R_TYPE - R_LABEL] = &o->type,
        [R_SUBJECT - R_LABEL] = &o->subject,
        [R_SAN - R_LABEL] = &o->sans,
        [R_USAGE - R_LABEL] = &o->usage,
        [R_MD - R_LABEL] = &o->md,
        [R_CA - R_LABEL] = &o->ca_key,
        [R_CA_CERT - R_LABEL] = &o->ca_cert,
        [R_LEDGER - R_LABEL] = &o->ledger,
        [R_PROFILE - R_LABEL] = &o->profile,
        [R_DAYS - R_LABEL] = &o->days,
        [R_CA_PIN_FILE - R_LABEL] = &o->ca_pin_file,
        [R_CA_PIN_ENV - R_LABEL] = &o->ca_pin_env,
        [R_OUT - R_LABEL] = &o->out,
    };

    if (id == R_SAME_KEY)
        o->same_key = true;
    else if (id == R_REMOVE_OLD)
        o->remove_old = true;
    else
        *slot[id - R_LABEL] = arg;
}

/* --days of a leaf certificate, or 0 when it is not 1..3650. */
static int parse_days(const char *s)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);

    return end != s && *end == '\0' && v >= 1 && v <= 3650 ? (int)v : 0;
}

/* Combinations that cannot work, refused before any token work. */
static int check_opts(TOOL *t, const RENEW_OPTS *o)
{
    if (o->same_key && (o->label != NULL || o->type != NULL))
        return tool_usage(t, "--same-key keeps the key: no --label or --type");
    if (o->ca_key == NULL
        && (o->ca_cert != NULL || o->days != NULL || o->profile != NULL
            || o->remove_old || o->ledger != NULL))
        return tool_usage(t, "--ca-cert, --days, --profile, --ledger and "
                             "--remove-old need --ca (the CA key issues at "
                             "once)");
    if (o->ca_key != NULL && (o->ca_cert == NULL || o->days == NULL))
        return tool_usage(t, "--ca needs --ca-cert and --days");
    if (o->ca_pin_file != NULL && o->ca_pin_env != NULL)
        return tool_usage(t, "--ca-pin-file or --ca-pin-env, not both");
    if (o->days != NULL && parse_days(o->days) == 0)
        return tool_usage(t, "--days %s: give a number of days from 1 to "
                             "3650", o->days);
    return EXIT_OK;
}

static int parse_opts(TOOL *t, int argc, char **argv, RENEW_OPTS *o)
{
    static const struct option opts[] = {
        { "same-key", no_argument, NULL, R_SAME_KEY },
        { "remove-old", no_argument, NULL, R_REMOVE_OLD },
        { "label", required_argument, NULL, R_LABEL },
        { "type", required_argument, NULL, R_TYPE },
        { "subject", required_argument, NULL, R_SUBJECT },
        { "san", required_argument, NULL, R_SAN },
        { "usage", required_argument, NULL, R_USAGE },
        { "md", required_argument, NULL, R_MD },
        { "ca", required_argument, NULL, R_CA },
        { "ca-cert", required_argument, NULL, R_CA_CERT },
        { "ledger", required_argument, NULL, R_LEDGER },
        { "profile", required_argument, NULL, R_PROFILE },
        { "days", required_argument, NULL, R_DAYS },
        { "ca-pin-file", required_argument, NULL, R_CA_PIN_FILE },
        { "ca-pin-env", required_argument, NULL, R_CA_PIN_ENV },
        { "out", required_argument, NULL, R_OUT },
        TOOL_COMMON_OPTIONS
    };
    int c;

    memset(o, 0, sizeof(*o));
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (c == 'o')
            c = R_OUT;
        if (c >= R_SAME_KEY && c <= R_OUT)
            set_opt(o, c, optarg);
        else if (c < TOOL_OPT_BASE || !tool_common_option(t, c, optarg))
            return tool_usage(t, "unknown option");
    }
    if (optind != argc - 1)
        return tool_usage(t, "give one KEY-URI");
    o->key = argv[optind];
    return check_opts(t, o);
}

/* --- the plan ---------------------------------------------------------- */

/* The key's certificate that expires last, or NULL when it has none. */
static X509 *current_cert(TOOL *t, P11ID_OBJECT *key)
{
    P11ID_OBJECT **certs = NULL;
    const unsigned char *der, *p;
    X509 *best = NULL, *x;
    size_t n = 0, i, len;

    if (!tool_key_certs(t, key, &certs, &n))
        return NULL;
    for (i = 0; i < n; i++) {
        der = p11id_object_get0_attr(certs[i], CKA_VALUE, &len);
        p = der;
        x = der != NULL ? d2i_X509(NULL, &p, (long)len) : NULL;
        if (x != NULL && (best == NULL
                          || ASN1_TIME_compare(X509_get0_notAfter(x),
                                               X509_get0_notAfter(best))
                                 > 0)) {
            X509_free(best);
            best = x;
        } else {
            X509_free(x);
        }
    }
    ERR_clear_error();
    p11id_objects_free(certs, n);
    return best;
}

/* Subject, names and usage: given, else the current certificate's. */
static int plan_identity(TOOL *t, const RENEW_OPTS *o, RENEW_PLAN *p)
{
    X509U_ERR err;

    if (o->usage != NULL && !x509u_parse_usage(o->usage, &p->usage, &err)) {
        tool_err(t, "%s", err.msg);
        return 0;
    }
    if (o->usage == NULL && p->current != NULL)
        p->usage = x509u_cert_usage(p->current);
    if ((o->subject == NULL && p->current == NULL)
        || p->usage == X509U_USAGE_NONE) {
        tool_err(t, "%s has no certificate that says %s: give %s", o->key,
                 p->usage == X509U_USAGE_NONE ? "its usage" : "its subject",
                 p->usage == X509U_USAGE_NONE ? "--usage" : "--subject");
        return 0;
    }
    p->subject = o->subject != NULL
                     ? x509u_parse_subject(o->subject, &err)
                     : X509_NAME_dup(X509_get_subject_name(p->current));
    if (p->subject == NULL) {
        tool_err(t, "%s", o->subject != NULL ? err.msg : "out of memory");
        return 0;
    }
    if (o->sans != NULL) {
        p->sans = x509u_parse_sans(o->sans, X509U_SAN_WILDCARD, &err);
        if (p->sans == NULL) {
            tool_err(t, "--san: %s", err.msg);
            return 0;
        }
    } else if (p->current != NULL) {
        p->sans = x509u_cert_sans(p->current);
    }
    return 1;
}

/* "rsa:3072", "ec:P-256", "ed25519": the old key's type for keygen. */
static int key_type(TOOL *t, P11ID_OBJECT *key, char *buf, size_t len)
{
    EVP_PKEY *pub = tool_public_key(t, key);
    char desc[40];

    if (pub == NULL)
        return 0;
    tool_key_desc(pub, desc, sizeof(desc));
    EVP_PKEY_free(pub);
    if (strncmp(desc, "RSA ", 4) == 0)
        snprintf(buf, len, "rsa:%s", desc + 4);
    else if (strncmp(desc, "EC ", 3) == 0)
        snprintf(buf, len, "ec:%s", desc + 3);
    else if (strcmp(desc, "Ed25519") == 0)
        snprintf(buf, len, "ed25519");
    else {
        tool_err(t, "cannot make another %s key: give --type", desc);
        return 0;
    }
    return 1;
}

/* 1 when a key or certificate on tok has this label, 0 when none, -1 on
 * error. */
static int label_taken(TOOL *t, P11ID_TOKEN *tok, const char *label)
{
    P11ID_OBJECT **objs = NULL;
    size_t n = 0;
    char *uri = p11id_uri_format_object(p11id_token_get0_info(tok),
                                        P11ID_CLASS_ANY, NULL, 0, label);
    int ok = uri != NULL && tool_find_all(t, uri, P11ID_CLASS_ANY, &objs, &n);

    free(uri);
    p11id_objects_free(objs, n);
    return ok ? n > 0 : -1;
}

/* The length of label without a "-YYYYMMDD" or "-YYYYMMDD-N" date suffix
 * an earlier renewal added. */
static size_t label_base(const char *label)
{
    size_t n = strlen(label), i = n;

    while (i > 0 && isdigit((unsigned char)label[i - 1]))
        i--;
    if (i > 0 && i < n && n - i <= 2 && label[i - 1] == '-')
        n = i - 1;
    for (i = n; i > 0 && isdigit((unsigned char)label[i - 1]); i--)
        ;
    if (n - i == 8 && i > 0 && label[i - 1] == '-')
        return i - 1;
    return strlen(label);
}

/* "<base>-<today>", then "-2", "-3"... until the token has no such label. */
static int new_label(TOOL *t, P11ID_OBJECT *old, char *buf, size_t len)
{
    const char *label = p11id_object_get0_label(old);
    P11ID_TOKEN *tok = p11id_object_get0_token(old);
    char date[16];
    time_t now = time(NULL);
    struct tm tm;
    int i, taken;

    if (label == NULL || *label == '\0')
        label = "key";
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%Y%m%d", &tm);
    for (i = 1; i < 100; i++) {
        if (i == 1)
            snprintf(buf, len, "%.*s-%s", (int)label_base(label), label,
                     date);
        else
            snprintf(buf, len, "%.*s-%s-%d", (int)label_base(label), label,
                     date, i);
        taken = label_taken(t, tok, buf);
        if (taken <= 0)
            return taken == 0;
    }
    tool_err(t, "no free label for the new key: give --label");
    return 0;
}

/* The key of the new certificate: the old one, or a new pair beside it. */
static int plan_key(TOOL *t, const RENEW_OPTS *o, RENEW_PLAN *p)
{
    char type[80], label[160];

    if (o->same_key) {
        p->key = p11id_object_ref(p->old);
        return 1;
    }
    if (o->type != NULL)
        snprintf(type, sizeof(type), "%s", o->type);
    else if (!key_type(t, p->old, type, sizeof(type)))
        return 0;
    if (o->label != NULL)
        snprintf(label, sizeof(label), "%s", o->label);
    else if (!new_label(t, p->old, label, sizeof(label)))
        return 0;
    p->key = tool_keygen(t, p11id_object_get0_token(p->old), type, label,
                         NULL);
    p->key_is_new = p->key != NULL;
    return p->key != NULL;
}

static void plan_clear(RENEW_PLAN *p)
{
    p11id_object_free(p->old);
    p11id_object_free(p->key);
    X509_free(p->current);
    X509_NAME_free(p->subject);
    GENERAL_NAMES_free(p->sans);
    memset(p, 0, sizeof(*p));
}

/* --- issuing and installing -------------------------------------------- */

/* The PIN state of the tool, kept while the CA token's PIN is in use. */
typedef struct pin_state_st {
    char pin[P11ID_PIN_MAX + 1];
    size_t pinlen;
    bool have_pin, pin_failed;
    const char *pin_file, *pin_env;
} PIN_STATE;

static void pin_swap(TOOL *t, PIN_STATE *keep, const PIN_STATE *use)
{
    memcpy(keep->pin, t->pin, sizeof(t->pin));
    keep->pinlen = t->pinlen;
    keep->have_pin = t->have_pin;
    keep->pin_failed = t->pin_failed;
    keep->pin_file = t->pin_file;
    keep->pin_env = t->pin_env;
    memcpy(t->pin, use->pin, sizeof(t->pin));
    t->pinlen = use->pinlen;
    t->have_pin = use->have_pin;
    t->pin_failed = use->pin_failed;
    t->pin_file = use->pin_file;
    t->pin_env = use->pin_env;
}

/* Issues the request with the CA key, with the CA token's own PIN source
 * when one was given (the first token's PIN is put back after). *rc is
 * the exit code on failure. */
static X509 *issue(TOOL *t, const RENEW_OPTS *o, const RENEW_PLAN *p,
                   X509_REQ *csr, int *rc)
{
    PIN_STATE ca_pin, kept;
    CA_ISSUE_REQ req;
    X509 *cert;
    bool swap = o->ca_pin_file != NULL || o->ca_pin_env != NULL;

    memset(&req, 0, sizeof(req));
    memset(&ca_pin, 0, sizeof(ca_pin));
    req.ca_key_uri = o->ca_key;
    req.ca_cert_path = o->ca_cert;
    req.ledger_path = o->ledger;
    req.csr = csr;
    req.profile = o->profile != NULL ? o->profile : x509u_usage_name(p->usage);
    req.md = NULL;
    req.san_flags = X509U_SAN_WILDCARD;
    req.days = parse_days(o->days);
    ca_pin.pin_file = o->ca_pin_file;
    ca_pin.pin_env = o->ca_pin_env;
    if (swap)
        pin_swap(t, &kept, &ca_pin);
    cert = ca_issue(t, &req, rc);
    if (swap) {
        pin_swap(t, &ca_pin, &kept);
        /* A rejected CA PIN still decides the exit code. */
        t->pin_failed = t->pin_failed || ca_pin.pin_failed;
        OPENSSL_cleanse(&ca_pin, sizeof(ca_pin));
        OPENSSL_cleanse(&kept, sizeof(kept));
    }
    if (cert == NULL && *rc == EXIT_PIN && !swap)
        tool_err(t, "the CA key's token wants its PIN: --ca-pin-file or "
                    "--ca-pin-env give it when it is not --pin-file's");
    return cert;
}

/* True when the certificate object holds exactly cert. */
static bool same_cert(P11ID_OBJECT *obj, const unsigned char *der,
                      size_t len)
{
    size_t vlen = 0;
    const unsigned char *v = p11id_object_get0_attr(obj, CKA_VALUE, &vlen);

    return v != NULL && vlen == len && memcmp(v, der, len) == 0;
}

/* Destroys obj, saying so. Returns 1 or 0. */
static int remove_obj(TOOL *t, P11ID_OBJECT *obj)
{
    if (p11id_object_destroy(obj) != CKR_OK) {
        tool_err(t, "could not remove %s", p11id_object_get0_uri(obj));
        return 0;
    }
    printf("removed:         %s\n", p11id_object_get0_uri(obj));
    return 1;
}

/* After the new certificate is on the token: the old key's certificates
 * other than the new one, and with a new key the old key pair too. */
static int remove_old(TOOL *t, const RENEW_PLAN *p, X509 *cert)
{
    P11ID_OBJECT **certs = NULL, *pub;
    unsigned char *der = NULL;
    size_t n = 0, i;
    int len = i2d_X509(cert, &der), ok = len > 0;

    if (!ok || !tool_key_certs(t, p->old, &certs, &n)) {
        OPENSSL_free(der);
        return 0;
    }
    for (i = 0; i < n; i++)
        if (!same_cert(certs[i], der, (size_t)len))
            ok = remove_obj(t, certs[i]) && ok;
    p11id_objects_free(certs, n);
    OPENSSL_free(der);
    if (!p->key_is_new || !ok)
        return ok;
    pub = p11id_object_find_related(p->old, CKO_PUBLIC_KEY);
    if (pub != NULL)
        ok = remove_obj(t, pub);
    p11id_object_free(pub);
    return ok && remove_obj(t, p->old);
}

/* The new certificate's URI on the token (first match), printed. */
static void print_cert_uri(TOOL *t, P11ID_OBJECT *key, X509 *cert)
{
    P11ID_OBJECT **certs = NULL;
    unsigned char *der = NULL;
    size_t n = 0, i;
    int len = i2d_X509(cert, &der);

    if (len > 0 && tool_key_certs(t, key, &certs, &n))
        for (i = 0; i < n; i++)
            if (same_cert(certs[i], der, (size_t)len)) {
                printf("new certificate: %s\n",
                       p11id_object_get0_uri(certs[i]));
                break;
            }
    p11id_objects_free(certs, n);
    OPENSSL_free(der);
}

/* With the CA: issue, store beside the key, write -o, remove the old.
 * Returns an exit code. */
static int renew_issued(TOOL *t, const RENEW_OPTS *o, const RENEW_PLAN *p,
                        X509_REQ *csr)
{
    int rc = EXIT_FAIL;
    X509 *cert = issue(t, o, p, csr, &rc);
    char *pem = NULL;
    size_t len = 0;

    if (cert == NULL)
        return rc;
    rc = EXIT_FAIL;
    if (!tool_store_cert(t, p->key, cert)) {
        tool_err(t, "the certificate is issued (in the ledger) but could "
                    "not be stored on the token; the old one stays. Store "
                    "it with p11id import %s", p11id_object_get0_uri(p->key));
        goto done;
    }
    printf("new key:         %s\n", p11id_object_get0_uri(p->key));
    print_cert_uri(t, p->key, cert);
    if (o->out != NULL && ((pem = tool_pem_cert(cert, &len)) == NULL
                           || !tool_write_file(t, o->out, pem, len, 0644)))
        goto done;
    if (!o->remove_old || remove_old(t, p, cert))
        rc = EXIT_OK;
done:
    OPENSSL_free(pem);
    X509_free(cert);
    return rc;
}

/* Without the CA: the request goes to a file or standard output. */
static int renew_request(TOOL *t, const RENEW_OPTS *o, const RENEW_PLAN *p,
                         X509_REQ *csr)
{
    const char *out = o->out != NULL ? o->out : "-";
    FILE *info = strcmp(out, "-") == 0 ? stderr : stdout;
    size_t len = 0;
    char *pem = tool_pem_csr(csr, &len);
    int ok = pem != NULL && tool_write_file(t, out, pem, len, 0644);

    OPENSSL_free(pem);
    if (!ok)
        return 0;
    fprintf(info, "new key:         %s\n", p11id_object_get0_uri(p->key));
    fprintf(info, "request:         %s (p11id import %s CERT installs the "
                  "answer)\n",
            strcmp(out, "-") == 0 ? "standard output" : out,
            p11id_object_get0_uri(p->key));
    return 1;
}

/* The request for the new key. */
static X509_REQ *renew_csr(TOOL *t, const RENEW_OPTS *o, const RENEW_PLAN *p)
{
    EVP_PKEY *pk = tool_load_private_key(t, p11id_object_get0_uri(p->key));
    X509U_CSR_REQ spec;
    X509_REQ *csr = NULL;

    if (pk == NULL)
        return NULL;
    memset(&spec, 0, sizeof(spec));
    spec.signer = pk;
    spec.subject = p->subject;
    spec.sans = p->sans;
    spec.usage = p->usage;
    if (!csr_for_key(t, &spec, o->md, &csr))
        csr = NULL;
    EVP_PKEY_free(pk);
    return csr;
}

int cmd_renew_main(TOOL *t, int argc, char **argv)
{
    RENEW_OPTS o;
    RENEW_PLAN p;
    X509_REQ *csr = NULL;
    int rc = parse_opts(t, argc, argv, &o);

    memset(&p, 0, sizeof(p));
    if (rc != EXIT_OK)
        return rc;
    if (o.out != NULL && !output_is_free(t, o.out))
        return EXIT_FAIL;
    p.old = tool_find_one(t, o.key, CKO_PRIVATE_KEY);
    if (p.old == NULL)
        return tool_fail_code(t);
    p.current = current_cert(t, p.old);
    rc = EXIT_FAIL;
    /* The CA certificate is checked before a key is made for it. */
    if (plan_identity(t, &o, &p)
        && (o.ca_cert == NULL || ca_cert_usable(t, o.ca_cert))
        && plan_key(t, &o, &p) && (csr = renew_csr(t, &o, &p)) != NULL)
        rc = o.ca_key != NULL ? renew_issued(t, &o, &p, csr)
             : renew_request(t, &o, &p, csr) ? EXIT_OK
                                               : EXIT_FAIL;
    if (rc != EXIT_OK && p.key_is_new)
        tool_err(t, "the new key stays on the token: %s",
                 p11id_object_get0_uri(p.key));
    if (rc == EXIT_FAIL && t->pin_failed)
        rc = EXIT_PIN;
    X509_REQ_free(csr);
    plan_clear(&p);
    return rc;
}
