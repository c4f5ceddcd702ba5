/* cmd_ca.c: p11id ca: a certification authority whose key stays on a token.
 * init makes the key and the self-signed certificate; sign issues leaf
 * certificates whose extensions the CA decides (never the request); revoke,
 * crl, list and show work on the ledger (ledger.c) beside the CA
 * certificate. Every signature is made by the token key through the
 * provider and checked under the CA certificate before it is kept. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/bn.h>
#include <openssl/err.h>

#include "tool/ledger.h"
#include "tool/tool.h"
#include "tool/x509util.h"

const char cmd_ca_help[] =
    "usage: p11id ca init|sign|revoke|crl|list|show ARGS [options]\n"
    "\n"
    "A certification authority whose private key stays on a token. Beside\n"
    "the CA certificate CA-CERT, the ledger CA-CERT.ledger (SQLite) records\n"
    "every certificate issued and revoked; --ledger FILE names another.\n"
    "\n"
    "p11id ca init TOKEN-URI --subject SUBJECT --days N --type TYPE\n"
    "              [--label LABEL] [--key KEY-URI] [-o CA-CERT] [--md DIGEST]\n"
    "  Generates the CA key on the token (--type rsa:2048, rsa:3072,\n"
    "  rsa:4096, ec:P-256, ec:P-384, ec:P-521, ed25519; labelled \"ca\"\n"
    "  unless --label), or takes the key --key names, and makes the\n"
    "  self-signed CA certificate: basicConstraints CA:TRUE, pathlen:0 and\n"
    "  keyUsage keyCertSign, cRLSign (both critical), subject and authority\n"
    "  key identifiers, a random serial. It is written to CA-CERT (default\n"
    "  ca.crt; 0644), stored on the token beside the key, and the empty\n"
    "  ledger is created. --days 1 to 10950.\n"
    "\n"
    "p11id ca sign CSR --ca KEY-URI --ca-cert CA-CERT --profile PROFILE\n"
    "              --days N [-o FILE] [--allow-wildcard] [--md DIGEST]\n"
    "  Issues a certificate for the request in CSR (PEM or DER). The\n"
    "  request's signature, key (RSA >= 2048 bits, EC P-256/384/521,\n"
    "  Ed25519, Ed448), subject and subjectAltNames are checked first; only\n"
    "  the subject and the names are taken. PROFILE decides the rest:\n"
    "    server  extendedKeyUsage serverAuth\n"
    "    client  extendedKeyUsage clientAuth\n"
    "    both    serverAuth and clientAuth\n"
    "  and always basicConstraints CA:FALSE and keyUsage digitalSignature\n"
    "  (plus keyEncipherment for an RSA server key), both critical, subject\n"
    "  and authority key identifiers, and a random 126-bit serial unique in\n"
    "  the ledger. Extensions the request asks for (CA:TRUE, name\n"
    "  constraints, anything else) are never copied; they are named on\n"
    "  standard error. Refused: a bad signature, more than 100 names, names\n"
    "  with NUL or non-ASCII bytes, malformed DNS names, IPs, emails or\n"
    "  URIs, names of other types, wildcards (unless --allow-wildcard, and\n"
    "  then only *.example.com), an expired CA certificate, a CA key that is\n"
    "  not the CA certificate's, and --days (1 to 3650) that would outlive\n"
    "  the CA. The certificate is recorded in the ledger before it is\n"
    "  written to FILE (default standard output).\n"
    "\n"
    "p11id ca revoke SERIAL|CERT --ca-cert CA-CERT [--reason REASON]\n"
    "  Marks a certificate revoked in the ledger, by its serial (hex, as\n"
    "  ca list prints it) or its certificate file (one this CA signed that\n"
    "  is not in the ledger is added). REASON: unspecified (default),\n"
    "  keyCompromise, caCompromise, affiliationChanged, superseded,\n"
    "  cessationOfOperation, privilegeWithdrawn. Publish with ca crl.\n"
    "\n"
    "p11id ca crl --ca KEY-URI --ca-cert CA-CERT [--days N] [-o FILE]\n"
    "             [--md DIGEST]\n"
    "  A version 2 CRL of every revoked certificate, signed by the CA key on\n"
    "  the token, with the next CRL number from the ledger and the authority\n"
    "  key identifier. nextUpdate in N days (default 30; 1 to 366).\n"
    "\n"
    "p11id ca list --ca-cert CA-CERT [--json]\n"
    "  The ledger: serial, state (issued, expired, revoked), expiry,\n"
    "  profile, subject and names of each certificate, oldest first.\n"
    "\n"
    "p11id ca show SERIAL --ca-cert CA-CERT [-o FILE]\n"
    "  The certificate with that serial from the ledger, as PEM.\n"
    "\n"
    "  --md DIGEST  sha256, sha384 or sha512 (default by key: sha256,\n"
    "               sha384 for P-384, sha512 for P-521; none for Ed25519)\n"
    "  -o, --out    existing files are replaced only with --force\n"
    "The PIN of the CA token comes from --pin-file, --pin-env or a prompt.\n";

#define INIT_MAX_DAYS 10950
#define SIGN_MAX_DAYS 3650
#define CRL_MAX_DAYS 366
#define CRL_DEFAULT_DAYS 30
/* Clock skew: certificates are valid from a little before they are made. */
#define BACKDATE_SECONDS 300
#define DAY 86400

/* Options of the ca subcommands (one table; each subcommand allows some). */
enum {
    O_CA = 300,
    O_CA_CERT,
    O_LEDGER,
    O_SUBJECT,
    O_TYPE,
    O_LABEL,
    O_KEY,
    O_PROFILE,
    O_REASON,
    O_MD,
    O_DAYS,
    O_WILDCARD,
    O_OUT
};
#define BIT(o) (1u << ((o) - O_CA))

typedef struct ca_opts_st {
    const char *sub;        /* the subcommand */
    const char *arg;        /* its positional argument, or NULL */
    const char *ca_key;     /* --ca */
    const char *ca_cert;    /* --ca-cert */
    const char *ledger;     /* --ledger */
    const char *subject;    /* --subject */
    const char *type;       /* --type */
    const char *label;      /* --label */
    const char *key;        /* --key */
    const char *profile;    /* --profile */
    const char *reason;     /* --reason */
    const char *md;         /* --md */
    const char *days;       /* --days as given */
    const char *out;        /* -o */
    bool wildcard;          /* --allow-wildcard */
} CA_OPTS;

static const struct reason {
    const char *name;
    int code; /* RFC 5280 CRLReason */
} reasons[] = {
    { "unspecified", 0 },        { "keyCompromise", 1 },
    { "caCompromise", 2 },       { "affiliationChanged", 3 },
    { "superseded", 4 },         { "cessationOfOperation", 5 },
    { "privilegeWithdrawn", 9 },
};
#define N_REASONS (sizeof(reasons) / sizeof(reasons[0]))

static const char *reason_name(int code)
{
    size_t i;

    for (i = 0; i < N_REASONS; i++)
        if (reasons[i].code == code)
            return reasons[i].name;
    return "unknown";
}

/* The exit code after a token key could not be loaded: a PIN problem
 * unless a PIN was accepted (then the key is missing or unusable). */
static int key_exit(TOOL *t)
{
    return tool_fail_code(t);
}

/* --- shared helpers ---------------------------------------------------- */

int output_is_free(TOOL *t, const char *path)
{
    struct stat st;

    if (strcmp(path, "-") == 0 || t->force || lstat(path, &st) != 0)
        return 1;
    tool_err(t, "%s exists: not overwritten (--force replaces it)", path);
    return 0;
}

/* Parses --days: 1..max. Returns the number or 0 (error printed). */
static int parse_days(TOOL *t, const char *s, int max)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = s != NULL ? strtol(s, &end, 10) : 0;
    if (s == NULL || errno != 0 || end == s || *end != '\0' || v < 1
        || v > max) {
        tool_err(t, "--days %s: give a number of days from 1 to %d",
                 s != NULL ? s : "", max);
        return 0;
    }
    return (int)v;
}

static int write_cert(TOOL *t, X509 *x, const char *path)
{
    size_t len = 0;
    char *pem = tool_pem_cert(x, &len);
    int ok;

    if (pem == NULL) {
        tool_err(t, "cannot encode the certificate");
        return 0;
    }
    ok = tool_write_file(t, path, pem, len, 0644);
    OPENSSL_free(pem);
    return ok;
}

static void set_validity(X509 *x, time_t not_before, time_t not_after)
{
    ASN1_TIME_set(X509_getm_notBefore(x), not_before);
    ASN1_TIME_set(X509_getm_notAfter(x), not_after);
}

/* Signs x with the token key and checks the signature under verify_key
 * (the CA certificate's key), so nothing unverifiable is ever kept. */
static int sign_cert(TOOL *t, X509 *x, EVP_PKEY *pk, const EVP_MD *md,
                     EVP_PKEY *verify_key)
{
    if (X509_sign(x, pk, md) <= 0) {
        tool_print_ssl_errors(t);
        tool_err(t, "the CA key did not sign the certificate");
        return 0;
    }
    if (X509_verify(x, verify_key) != 1) {
        tool_print_ssl_errors(t);
        tool_err(t, "the signature made on the token does not verify under "
                    "the CA certificate's key: refused");
        return 0;
    }
    return 1;
}

/* The CA certificate must be a CA, valid now, allowed to sign what we
 * make with it (ku: KU_KEY_CERT_SIGN or KU_CRL_SIGN). */
static int check_ca_cert(TOOL *t, X509 *ca, const char *path, uint32_t ku)
{
    char when[32];
    int64_t ts = 0;

    if ((X509_get_extension_flags(ca) & EXFLAG_CA) == 0) {
        tool_err(t, "%s is not a CA certificate (no basicConstraints "
                    "CA:TRUE)", path);
        return 0;
    }
    if ((X509_get_key_usage(ca) & ku) == 0) {
        tool_err(t, "%s may not sign %s (its keyUsage lacks %s)", path,
                 ku == KU_CRL_SIGN ? "CRLs" : "certificates",
                 ku == KU_CRL_SIGN ? "cRLSign" : "keyCertSign");
        return 0;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(ca)) <= 0) {
        x509u_time_unix(X509_get0_notAfter(ca), &ts);
        tool_err(t, "the CA certificate %s expired on %s: make a new CA "
                    "certificate (p11id ca init --key KEY-URI) first",
                 path, x509u_time_iso(ts, when, sizeof(when)));
        return 0;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(ca)) > 0) {
        x509u_time_unix(X509_get0_notBefore(ca), &ts);
        tool_err(t, "the CA certificate %s is not valid before %s (is the "
                    "clock right?)",
                 path, x509u_time_iso(ts, when, sizeof(when)));
        return 0;
    }
    return 1;
}

int ca_cert_usable(TOOL *t, const char *path)
{
    X509 *ca = tool_read_cert(t, path);
    int ok = ca != NULL && check_ca_cert(t, ca, path, KU_KEY_CERT_SIGN);

    X509_free(ca);
    return ok;
}

/* The CA's token key, refused unless it is the CA certificate's key. */
static EVP_PKEY *load_ca_key(TOOL *t, const char *uri, X509 *ca,
                             const char *ca_path)
{
    EVP_PKEY *pk = tool_load_private_key(t, uri);
    EVP_PKEY *pub = x509u_pubkey_copy(pk);

    if (pk == NULL)
        return NULL;
    if (pub == NULL || EVP_PKEY_eq(pub, X509_get0_pubkey(ca)) != 1) {
        ERR_clear_error();
        tool_err(t, "the key %s is not the key of the CA certificate %s: "
                    "give the CA's own key with --ca",
                 uri, ca_path);
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    EVP_PKEY_free(pub);
    return pk;
}

/* The digest for the CA key, error printed. */
static int ca_md(TOOL *t, EVP_PKEY *pk, const char *name, const EVP_MD **md)
{
    X509U_ERR err;

    if (x509u_pick_md(pk, name, md, &err))
        return 1;
    tool_err(t, "%s", err.msg);
    return 0;
}

static LEDGER *open_ledger(TOOL *t, const CA_OPTS *o, X509 *ca,
                           unsigned flags)
{
    char *path = o->ledger != NULL ? strdup(o->ledger)
                                   : ledger_path_for(o->ca_cert);
    LEDGER *lg;

    if (path == NULL) {
        tool_err(t, "out of memory");
        return NULL;
    }
    lg = ledger_open(t, path, ca, flags);
    if (lg != NULL && ledger_created(lg))
        tool_err(t, "note: created the CA ledger %s", path);
    free(path);
    return lg;
}

/* --- init -------------------------------------------------------------- */

/* The CA key: generated on the token, or the existing one --key names. */
static P11ID_OBJECT *init_key(TOOL *t, const CA_OPTS *o)
{
    P11ID_TOKEN *tok;

    if (o->key != NULL)
        return tool_find_one(t, o->key, CKO_PRIVATE_KEY);
    tok = tool_token(t, o->arg);
    if (tok == NULL)
        return NULL;
    return tool_keygen(t, tok, o->type,
                       o->label != NULL ? o->label : "ca", NULL);
}

/* The self-signed CA certificate for the token key pk. */
static X509 *make_ca_cert(TOOL *t, EVP_PKEY *pk, const X509_NAME *subject,
                          int days, const char *mdname)
{
    EVP_PKEY *pub = x509u_pubkey_copy(pk);
    STACK_OF(X509_EXTENSION) *exts = x509u_ca_exts();
    ASN1_INTEGER *serial = x509u_random_serial();
    const EVP_MD *md = NULL;
    X509 *x = X509_new();
    X509U_ERR err;
    time_t now = time(NULL);
    int ok = 0;

    if (pub == NULL || exts == NULL || serial == NULL || x == NULL) {
        tool_print_ssl_errors(t);
        tool_err(t, "cannot read the CA key or build the certificate");
        goto done;
    }
    if (!x509u_check_key(pub, &err)) {
        tool_err(t, "the CA key is %s", err.msg);
        goto done;
    }
    if (!ca_md(t, pk, mdname, &md))
        goto done;
    set_validity(x, now - BACKDATE_SECONDS, now + (time_t)days * DAY);
    if (!X509_set_version(x, 2) || !X509_set_serialNumber(x, serial)
        || !X509_set_subject_name(x, subject)
        || !X509_set_issuer_name(x, subject) || !X509_set_pubkey(x, pub)
        || !x509u_add_exts(x, exts) || !x509u_add_key_ids(x, NULL)) {
        tool_err(t, "cannot build the CA certificate");
        goto done;
    }
    ok = sign_cert(t, x, pk, md, pub);
done:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ASN1_INTEGER_free(serial);
    EVP_PKEY_free(pub);
    if (!ok) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

static void print_init(TOOL *t, P11ID_OBJECT *key, const char *out,
                       const char *lpath)
{
    P11ID_OBJECT **certs = NULL;
    size_t n = 0;
    const char *cert_uri;

    tool_key_certs(t, key, &certs, &n);
    cert_uri = n > 0 ? p11id_object_get0_uri(certs[0]) : "";
    if (t->json) {
        printf("{\"key\": ");
        tool_json_str(stdout, p11id_object_get0_uri(key));
        printf(", \"certificate\": ");
        tool_json_str(stdout, out);
        printf(", \"token_certificate\": ");
        tool_json_str(stdout, cert_uri);
        printf(", \"ledger\": ");
        tool_json_str(stdout, lpath);
        printf("}\n");
    } else {
        printf("CA key:         %s\n", p11id_object_get0_uri(key));
        printf("CA certificate: %s\n", out);
        if (n > 0)
            printf("on the token:   %s\n", cert_uri);
        printf("ledger:         %s\n", lpath);
    }
    p11id_objects_free(certs, n);
}

/* The command line of init is complete and the files are free. */
static int init_check(TOOL *t, const CA_OPTS *o, const char *out,
                      const char *lpath)
{
    if (o->subject == NULL || o->days == NULL)
        return tool_usage(t, "ca init needs --subject and --days");
    if ((o->type == NULL) == (o->key == NULL))
        return tool_usage(t, "ca init needs --type (a new key) or --key (a "
                             "key on the token already), not both");
    if (o->key != NULL && o->label != NULL)
        return tool_usage(t, "--label names a new key: not with --key");
    if (strcmp(out, "-") == 0)
        return tool_usage(t, "ca init writes the CA certificate to a file "
                             "(-o): its ledger lives beside it");
    if (!output_is_free(t, out))
        return EXIT_FAIL;
    if (access(lpath, F_OK) == 0) {
        tool_err(t, "%s exists: a CA was made here before (use another -o, "
                    "or remove the old ledger if that CA is gone)", lpath);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

/* Makes, stores and writes the CA certificate and its ledger. */
static int init_finish(TOOL *t, P11ID_OBJECT *key, X509 *cert,
                       const char *out, const char *lpath)
{
    LEDGER *lg;

    if (!tool_store_cert(t, key, cert)) {
        tool_err(t, "cannot store the CA certificate on the token");
        return 0;
    }
    lg = ledger_open(t, lpath, cert, LEDGER_EXCL);
    if (lg == NULL)
        return 0;
    ledger_close(lg);
    if (!write_cert(t, cert, out)) {
        unlink(lpath);
        return 0;
    }
    return 1;
}

static int ca_init(TOOL *t, const CA_OPTS *o)
{
    const char *out = o->out != NULL ? o->out : "ca.crt";
    char *lpath = o->ledger != NULL ? strdup(o->ledger) : ledger_path_for(out);
    X509_NAME *subject = NULL;
    P11ID_OBJECT *key = NULL;
    EVP_PKEY *pk = NULL;
    X509 *cert = NULL;
    X509U_ERR err;
    int days, rc;

    if (lpath == NULL)
        return EXIT_FAIL;
    rc = init_check(t, o, out, lpath);
    if (rc != EXIT_OK)
        goto done;
    rc = EXIT_USAGE;
    if ((days = parse_days(t, o->days, INIT_MAX_DAYS)) == 0)
        goto done;
    if ((subject = x509u_parse_subject(o->subject, &err)) == NULL) {
        tool_err(t, "%s", err.msg);
        goto done;
    }
    rc = EXIT_FAIL;
    key = init_key(t, o);
    if (key == NULL) {
        rc = key_exit(t);
        goto done;
    }
    pk = tool_load_private_key(t, p11id_object_get0_uri(key));
    if (pk == NULL)
        rc = key_exit(t);
    if (pk != NULL && (cert = make_ca_cert(t, pk, subject, days, o->md))
        != NULL && init_finish(t, key, cert, out, lpath)) {
        print_init(t, key, out, lpath);
        rc = EXIT_OK;
    } else if (o->key == NULL) {
        tool_err(t, "the new CA key stays on the token: %s (p11id ca init "
                    "--key URI uses it)", p11id_object_get0_uri(key));
    }
done:
    X509_free(cert);
    EVP_PKEY_free(pk);
    p11id_object_free(key);
    X509_NAME_free(subject);
    free(lpath);
    return rc;
}

/* --- sign -------------------------------------------------------------- */

/* What a leaf certificate is made of, all checked. */
typedef struct leaf_plan_st {
    X509 *ca;                    /* the issuer */
    EVP_PKEY *ca_key;            /* its key on the token */
    const EVP_MD *md;            /* signature digest (NULL: EdDSA) */
    const X509U_CSR_INFO *info;  /* subject, names, key from the CSR */
    X509U_USAGE usage;           /* from the profile */
    time_t not_before, not_after;
} LEAF_PLAN;

static X509 *leaf_build(TOOL *t, const LEAF_PLAN *p, ASN1_INTEGER *serial)
{
    X509U_LEAF_TBS tbs;
    X509 *x;

    memset(&tbs, 0, sizeof(tbs));
    tbs.issuer = p->ca;
    tbs.info = p->info;
    tbs.usage = p->usage;
    tbs.not_before = p->not_before;
    tbs.not_after = p->not_after;
    tbs.serial = serial;
    x = x509u_leaf_tbs(&tbs);
    if (x == NULL)
        tool_err(t, "cannot build the certificate");
    if (x == NULL
        || !sign_cert(t, x, p->ca_key, p->md, X509_get0_pubkey(p->ca))) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* Draws a serial the ledger does not have, builds and signs the
 * certificate and records it, all in one transaction: the write lock is
 * held from the serial's choice to the record, so concurrent signers
 * never share a serial, and a crash before COMMIT leaves nothing. */
static X509 *issue_recorded(TOOL *t, LEDGER *lg, const LEAF_PLAN *p,
                            const char *profile)
{
    ASN1_INTEGER *serial;
    X509 *cert = NULL;
    char *hex;
    int tries, has = 1;

    if (!ledger_begin(lg))
        return NULL;
    for (tries = 0; tries < 16 && has == 1; tries++) {
        serial = x509u_random_serial();
        hex = serial != NULL ? x509u_serial_hex(serial) : NULL;
        has = hex != NULL ? ledger_has_serial(lg, hex) : -1;
        if (has == 0)
            cert = leaf_build(t, p, serial);
        ASN1_INTEGER_free(serial);
        OPENSSL_free(hex);
    }
    if (has == 1)
        tool_err(t, "16 random serials were all taken: the ledger or the "
                    "random generator is broken");
    if (cert != NULL && ledger_add(lg, cert, profile) && ledger_commit(lg))
        return cert;
    ledger_rollback(lg);
    X509_free(cert);
    return NULL;
}

/* Checks the CSR; notes what it asked for and does not get. */
static int check_request(TOOL *t, const CA_ISSUE_REQ *r, X509U_USAGE usage,
                         X509U_CSR_INFO *info)
{
    X509U_ERR err;
    int i, named = 0, type;

    if (!x509u_check_csr(r->csr, r->san_flags, info, &err)) {
        tool_err(t, "CSR refused: %s", err.msg);
        return 0;
    }
    if (info->ignored[0] != '\0')
        tool_err(t, "note: the CSR asks for %s: not granted (the profile "
                    "decides the extensions)", info->ignored);
    for (i = 0; i < sk_GENERAL_NAME_num(info->sans); i++) {
        type = sk_GENERAL_NAME_value(info->sans, i)->type;
        named += type == GEN_DNS || type == GEN_IPADD;
    }
    if ((usage & X509U_USAGE_SERVER) != 0 && named == 0)
        tool_err(t, "warning: a server certificate without DNS or IP "
                    "names: TLS clients will not accept it for any host");
    return 1;
}

/* notBefore and notAfter for --days, inside the CA's own validity. */
static int leaf_validity(TOOL *t, X509 *ca, int days, LEAF_PLAN *p)
{
    int64_t ca_nb = 0, ca_na = 0;
    time_t now = time(NULL);
    char when[32];

    if (!x509u_time_unix(X509_get0_notBefore(ca), &ca_nb)
        || !x509u_time_unix(X509_get0_notAfter(ca), &ca_na)) {
        tool_err(t, "cannot read the CA certificate's validity");
        return 0;
    }
    p->not_before = now - BACKDATE_SECONDS;
    if (p->not_before < (time_t)ca_nb)
        p->not_before = (time_t)ca_nb;
    p->not_after = now + (time_t)days * DAY;
    if (p->not_after > (time_t)ca_na) {
        tool_err(t, "--days %d would outlive the CA certificate (valid "
                    "until %s): give --days %lld or fewer",
                 days, x509u_time_iso(ca_na, when, sizeof(when)),
                 (long long)((ca_na - now) / DAY));
        return 0;
    }
    return 1;
}

/* The CA's side of issuing, before any ledger work: the CA certificate,
 * the request and the key. */
static int issue_plan(TOOL *t, const CA_ISSUE_REQ *r, LEAF_PLAN *p,
                      X509U_CSR_INFO *info, int *rc)
{
    p->ca = tool_read_cert(t, r->ca_cert_path);
    if (p->ca == NULL
        || !check_ca_cert(t, p->ca, r->ca_cert_path, KU_KEY_CERT_SIGN)
        || !check_request(t, r, p->usage, info)
        || !leaf_validity(t, p->ca, r->days, p))
        return 0;
    if (EVP_PKEY_eq(info->pub, X509_get0_pubkey(p->ca)) == 1) {
        tool_err(t, "CSR refused: it holds the CA's own key");
        return 0;
    }
    ERR_clear_error();
    p->info = info;
    p->ca_key = load_ca_key(t, r->ca_key_uri, p->ca, r->ca_cert_path);
    if (p->ca_key == NULL)
        *rc = key_exit(t);
    return p->ca_key != NULL && ca_md(t, p->ca_key, r->md, &p->md);
}

X509 *ca_issue(TOOL *t, const CA_ISSUE_REQ *r, int *rc)
{
    X509U_CSR_INFO info;
    LEAF_PLAN plan;
    X509U_ERR err;
    CA_OPTS lo;
    LEDGER *lg = NULL;
    X509 *cert = NULL;

    memset(&info, 0, sizeof(info));
    memset(&plan, 0, sizeof(plan));
    *rc = EXIT_FAIL;
    if (!x509u_parse_usage(r->profile, &plan.usage, &err)) {
        tool_err(t, "--profile: %s", err.msg);
        return NULL;
    }
    if (r->days < 1 || r->days > SIGN_MAX_DAYS) {
        tool_err(t, "--days %d: give a number of days from 1 to %d", r->days,
                 SIGN_MAX_DAYS);
        return NULL;
    }
    if (!issue_plan(t, r, &plan, &info, rc))
        goto done;
    memset(&lo, 0, sizeof(lo));
    lo.ca_cert = r->ca_cert_path;
    lo.ledger = r->ledger_path;
    lg = open_ledger(t, &lo, plan.ca, LEDGER_CREATE);
    if (lg != NULL)
        cert = issue_recorded(t, lg, &plan, r->profile);
done:
    ledger_close(lg);
    x509u_csr_info_clear(&info);
    EVP_PKEY_free(plan.ca_key);
    X509_free(plan.ca);
    return cert;
}

static void print_issued(X509 *cert, const char *out)
{
    char *serial = x509u_serial_hex(X509_get0_serialNumber(cert));
    char *subject = x509u_name_text(X509_get_subject_name(cert));
    char when[32];
    int64_t na = 0;

    x509u_time_unix(X509_get0_notAfter(cert), &na);
    printf("issued %s to \"%s\", valid until %s: %s\n",
           serial != NULL ? serial : "?", subject != NULL ? subject : "?",
           x509u_time_iso(na, when, sizeof(when)), out);
    OPENSSL_free(serial);
    OPENSSL_free(subject);
}

static int ca_sign(TOOL *t, const CA_OPTS *o)
{
    const char *out = o->out != NULL ? o->out : "-";
    CA_ISSUE_REQ req;
    X509 *cert = NULL;
    char *serial;
    int rc = EXIT_FAIL;

    if (o->ca_key == NULL || o->ca_cert == NULL || o->profile == NULL
        || o->days == NULL)
        return tool_usage(t, "ca sign needs --ca, --ca-cert, --profile and "
                             "--days");
    memset(&req, 0, sizeof(req));
    if ((req.days = parse_days(t, o->days, SIGN_MAX_DAYS)) == 0)
        return EXIT_USAGE;
    if (!output_is_free(t, out))
        return EXIT_FAIL;
    req.csr = tool_read_csr(t, o->arg);
    if (req.csr == NULL)
        return EXIT_FAIL;
    req.ca_key_uri = o->ca_key;
    req.ca_cert_path = o->ca_cert;
    req.ledger_path = o->ledger;
    req.profile = o->profile;
    req.md = o->md;
    req.san_flags = o->wildcard ? X509U_SAN_WILDCARD : 0;
    cert = ca_issue(t, &req, &rc);
    if (cert == NULL) {
        /* rc says why */
    } else if (write_cert(t, cert, out)) {
        if (strcmp(out, "-") != 0)
            print_issued(cert, out);
        rc = EXIT_OK;
    } else {
        serial = x509u_serial_hex(X509_get0_serialNumber(cert));
        tool_err(t, "certificate %s is issued and in the ledger; write it "
                    "again with: p11id ca show %s --ca-cert %s -o FILE",
                 serial, serial, o->ca_cert);
        OPENSSL_free(serial);
    }
    X509_free(cert);
    X509_REQ_free(req.csr);
    return rc;
}

/* --- revoke ------------------------------------------------------------ */

static int parse_reason(TOOL *t, const char *s, int *code)
{
    size_t i;

    for (i = 0; i < N_REASONS; i++)
        if (strcasecmp(s, reasons[i].name) == 0) {
            *code = reasons[i].code;
            return 1;
        }
    tool_usage(t, "unknown --reason %s (unspecified, keyCompromise, "
                  "caCompromise, affiliationChanged, superseded, "
                  "cessationOfOperation, privilegeWithdrawn)", s);
    return 0;
}

/* What revoke names: a serial, or a certificate file this CA signed. */
static char *revoke_target(TOOL *t, const char *arg, X509 *ca, X509 **cert)
{
    struct stat st;
    X509U_ERR err;
    char *serial;

    *cert = NULL;
    if (stat(arg, &st) != 0 || !S_ISREG(st.st_mode)) {
        serial = x509u_parse_serial(arg, &err);
        if (serial == NULL)
            tool_err(t, "%s (or name a certificate file)", err.msg);
        return serial;
    }
    *cert = tool_read_cert(t, arg);
    if (*cert == NULL)
        return NULL;
    if (X509_check_issued(ca, *cert) != X509_V_OK
        || X509_verify(*cert, X509_get0_pubkey(ca)) != 1) {
        ERR_clear_error();
        tool_err(t, "%s was not issued by this CA: refused", arg);
        X509_free(*cert);
        *cert = NULL;
        return NULL;
    }
    return x509u_serial_hex(X509_get0_serialNumber(*cert));
}

/* The revocation in one transaction. Returns an exit code. */
static int revoke_in(TOOL *t, LEDGER *lg, const char *serial, X509 *cert,
                     int reason)
{
    int r;

    if (!ledger_begin(lg))
        return EXIT_FAIL;
    r = ledger_revoke(lg, serial, reason, (int64_t)time(NULL));
    /* A certificate of this CA made elsewhere: recorded, then revoked. */
    if (r == -1 && cert != NULL && ledger_add(lg, cert, "external"))
        r = ledger_revoke(lg, serial, reason, (int64_t)time(NULL));
    if (r == 1 && ledger_commit(lg))
        return EXIT_OK;
    ledger_rollback(lg);
    if (r == -1)
        tool_err(t, "no certificate with serial %s in the ledger %s (p11id "
                    "ca list shows them; a certificate this CA signed "
                    "elsewhere can be given as a file)",
                 serial, ledger_get0_path(lg));
    else if (r == -2)
        tool_err(t, "certificate %s is revoked already", serial);
    return EXIT_FAIL;
}

static int ca_revoke(TOOL *t, const CA_OPTS *o)
{
    X509 *ca = NULL, *cert = NULL;
    LEDGER *lg = NULL;
    char *serial = NULL;
    int reason = 0, rc = EXIT_FAIL;

    if (o->ca_cert == NULL)
        return tool_usage(t, "ca revoke needs --ca-cert");
    if (o->reason != NULL && !parse_reason(t, o->reason, &reason))
        return EXIT_USAGE;
    ca = tool_read_cert(t, o->ca_cert);
    if (ca == NULL)
        goto done;
    serial = revoke_target(t, o->arg, ca, &cert);
    if (serial == NULL || (lg = open_ledger(t, o, ca, 0)) == NULL)
        goto done;
    rc = revoke_in(t, lg, serial, cert, reason);
    if (rc == EXIT_OK)
        printf("revoked %s (%s); p11id ca crl publishes it\n", serial,
               reason_name(reason));
done:
    ledger_close(lg);
    OPENSSL_free(serial);
    X509_free(cert);
    X509_free(ca);
    return rc;
}

/* --- crl --------------------------------------------------------------- */

/* Adds one revoked certificate of the ledger to the CRL (arg). */
static int add_revoked(const LEDGER_ROW *row, void *arg)
{
    X509_CRL *crl = arg;
    X509_REVOKED *rev = X509_REVOKED_new();
    ASN1_ENUMERATED *why = ASN1_ENUMERATED_new();
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)row->revoked_at);
    BIGNUM *bn = NULL;
    int ok = 0;

    if (rev == NULL || why == NULL || when == NULL
        || BN_hex2bn(&bn, row->serial) == 0
        || (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL
        || !X509_REVOKED_set_serialNumber(rev, serial)
        || !X509_REVOKED_set_revocationDate(rev, when))
        goto done;
    /* RFC 5280 5.3.1: leave the reason out rather than say unspecified. */
    if (row->reason > 0
        && (!ASN1_ENUMERATED_set(why, row->reason)
            || !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, why, 0, 0)))
        goto done;
    if (X509_CRL_add0_revoked(crl, rev)) {
        rev = NULL;
        ok = 1;
    }
done:
    X509_REVOKED_free(rev);
    ASN1_ENUMERATED_free(why);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(when);
    BN_free(bn);
    return ok;
}

/* The CRL's fields and extensions, not yet signed. */
static X509_CRL *crl_build(TOOL *t, LEDGER *lg, X509 *ca, uint64_t number,
                           int days)
{
    X509_CRL *crl = X509_CRL_new();
    AUTHORITY_KEYID *akid = x509u_akid(ca);
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    ASN1_TIME *last = ASN1_TIME_set(NULL, time(NULL));
    ASN1_TIME *next = ASN1_TIME_set(NULL, time(NULL) + (time_t)days * DAY);
    int ok = 0;

    if (crl == NULL || akid == NULL || num == NULL || last == NULL
        || next == NULL || !ASN1_INTEGER_set_uint64(num, number)
        || !X509_CRL_set_version(crl, 1)
        || !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca))
        || !X509_CRL_set1_lastUpdate(crl, last)
        || !X509_CRL_set1_nextUpdate(crl, next))
        goto done;
    if (!ledger_foreach(lg, "revoked", false, add_revoked, crl))
        goto done;
    if (X509_CRL_sort(crl)
        && X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0,
                                 0)
        && X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0))
        ok = 1;
done:
    if (!ok)
        tool_err(t, "cannot build the CRL");
    AUTHORITY_KEYID_free(akid);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    if (!ok) {
        X509_CRL_free(crl);
        crl = NULL;
    }
    return crl;
}

/* Numbers, builds and signs the CRL in one transaction. */
static X509_CRL *crl_make(TOOL *t, LEDGER *lg, X509 *ca, EVP_PKEY *pk,
                          const CA_OPTS *o)
{
    X509_CRL *crl = NULL;
    const EVP_MD *md = NULL;
    uint64_t number = 0;
    int days = CRL_DEFAULT_DAYS;

    if (o->days != NULL && (days = parse_days(t, o->days, CRL_MAX_DAYS)) == 0)
        return NULL;
    if (!ca_md(t, pk, o->md, &md) || !ledger_begin(lg))
        return NULL;
    if (!ledger_next_crl_number(lg, &number)
        || (crl = crl_build(t, lg, ca, number, days)) == NULL)
        goto err;
    if (X509_CRL_sign(crl, pk, md) <= 0) {
        tool_print_ssl_errors(t);
        tool_err(t, "the CA key did not sign the CRL");
        goto err;
    }
    if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1) {
        tool_err(t, "the CRL's signature does not verify under the CA "
                    "certificate");
        goto err;
    }
    if (ledger_commit(lg))
        return crl;
err:
    ledger_rollback(lg);
    X509_CRL_free(crl);
    return NULL;
}

static int ca_crl(TOOL *t, const CA_OPTS *o)
{
    const char *out = o->out != NULL ? o->out : "-";
    X509 *ca = NULL;
    EVP_PKEY *pk = NULL;
    LEDGER *lg = NULL;
    X509_CRL *crl = NULL;
    char *pem = NULL;
    size_t len = 0;
    int rc = EXIT_FAIL;

    if (o->ca_key == NULL || o->ca_cert == NULL)
        return tool_usage(t, "ca crl needs --ca and --ca-cert");
    if (!output_is_free(t, out) || (ca = tool_read_cert(t, o->ca_cert))
                                       == NULL)
        return EXIT_FAIL;
    if (!check_ca_cert(t, ca, o->ca_cert, KU_CRL_SIGN)
        || (lg = open_ledger(t, o, ca, 0)) == NULL)
        goto done;
    pk = load_ca_key(t, o->ca_key, ca, o->ca_cert);
    if (pk == NULL) {
        rc = key_exit(t);
        goto done;
    }
    crl = crl_make(t, lg, ca, pk, o);
    if (crl != NULL && (pem = tool_pem_crl(crl, &len)) != NULL
        && tool_write_file(t, out, pem, len, 0644))
        rc = EXIT_OK;
done:
    OPENSSL_free(pem);
    X509_CRL_free(crl);
    ledger_close(lg);
    EVP_PKEY_free(pk);
    X509_free(ca);
    return rc;
}

/* --- list and show ----------------------------------------------------- */

static const char *row_state(const LEDGER_ROW *row)
{
    if (strcmp(row->state, "issued") == 0 && row->not_after < time(NULL))
        return "expired";
    return row->state;
}

static int list_text(const LEDGER_ROW *row, void *arg)
{
    char date[32], rdate[32];

    x509u_time_iso(row->not_after, date, sizeof(date));
    date[10] = '\0';
    printf("%-32s  %-7s  %-10s  %-7s  %s%s%s", row->serial, row_state(row),
           date, row->profile, row->subject, row->sans[0] != '\0' ? "  " : "",
           row->sans);
    if (row->reason >= 0)
        printf("  (revoked %s: %s)",
               x509u_time_iso(row->revoked_at, rdate, sizeof(rdate)),
               reason_name(row->reason));
    putchar('\n');
    return 1;
}

/* The names of the certificate as a JSON array, one string each. */
static void json_sans(const LEDGER_ROW *row)
{
    const unsigned char *p = row->der;
    X509 *x = d2i_X509(NULL, &p, (long)row->derlen);
    GENERAL_NAMES *sans = x != NULL ? x509u_cert_sans(x) : NULL;
    GENERAL_NAMES *one = sk_GENERAL_NAME_new_null();
    char *s;
    int i;

    printf("[");
    for (i = 0; one != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
        sk_GENERAL_NAME_zero(one);
        sk_GENERAL_NAME_push(one, sk_GENERAL_NAME_value(sans, i));
        s = x509u_sans_text(one);
        printf("%s", i > 0 ? ", " : "");
        tool_json_str(stdout, s);
        OPENSSL_free(s);
    }
    printf("]");
    sk_GENERAL_NAME_free(one);
    GENERAL_NAMES_free(sans);
    X509_free(x);
}

static void json_time(const char *key, int64_t t)
{
    char buf[32];

    printf(", \"%s\": ", key);
    if (t == 0)
        printf("null");
    else
        tool_json_str(stdout, x509u_time_iso(t, buf, sizeof(buf)));
}

static int list_json(const LEDGER_ROW *row, void *arg)
{
    int *n = arg;

    printf("%s\n    {\"serial\": ", (*n)++ > 0 ? "," : "");
    tool_json_str(stdout, row->serial);
    printf(", \"state\": ");
    tool_json_str(stdout, row_state(row));
    printf(", \"subject\": ");
    tool_json_str(stdout, row->subject);
    printf(", \"sans\": ");
    json_sans(row);
    printf(", \"profile\": ");
    tool_json_str(stdout, row->profile);
    json_time("not_before", row->not_before);
    json_time("not_after", row->not_after);
    json_time("issued_at", row->issued_at);
    json_time("revoked_at", row->revoked_at);
    printf(", \"reason\": ");
    if (row->reason >= 0)
        tool_json_str(stdout, reason_name(row->reason));
    else
        printf("null");
    printf("}");
    return 1;
}

static int ca_list(TOOL *t, const CA_OPTS *o)
{
    X509 *ca;
    LEDGER *lg;
    char *subject;
    int ok, n = 0;

    if (o->ca_cert == NULL)
        return tool_usage(t, "ca list needs --ca-cert");
    ca = tool_read_cert(t, o->ca_cert);
    lg = ca != NULL ? open_ledger(t, o, ca, 0) : NULL;
    if (lg == NULL) {
        X509_free(ca);
        return EXIT_FAIL;
    }
    if (t->json) {
        subject = x509u_name_text(X509_get_subject_name(ca));
        printf("{\"ca\": ");
        tool_json_str(stdout, subject);
        printf(", \"ledger\": ");
        tool_json_str(stdout, ledger_get0_path(lg));
        printf(", \"certificates\": [");
        OPENSSL_free(subject);
        ok = ledger_foreach(lg, NULL, true, list_json, &n);
        printf("%s]}\n", n > 0 ? "\n  " : "");
    } else {
        printf("%-32s  %-7s  %-10s  %-7s  %s\n", "SERIAL", "STATE",
               "NOT AFTER", "PROFILE", "SUBJECT  NAMES");
        ok = ledger_foreach(lg, NULL, false, list_text, NULL);
    }
    ledger_close(lg);
    X509_free(ca);
    return ok ? EXIT_OK : EXIT_FAIL;
}

static int ca_show(TOOL *t, const CA_OPTS *o)
{
    const char *out = o->out != NULL ? o->out : "-";
    X509 *ca = NULL, *x = NULL;
    LEDGER *lg = NULL;
    LEDGER_ROW row;
    X509U_ERR err;
    const unsigned char *p;
    char *serial = NULL;
    int rc = EXIT_FAIL, found;

    memset(&row, 0, sizeof(row));
    if (o->ca_cert == NULL)
        return tool_usage(t, "ca show needs --ca-cert");
    if ((serial = x509u_parse_serial(o->arg, &err)) == NULL) {
        tool_err(t, "%s", err.msg);
        return EXIT_USAGE;
    }
    if (!output_is_free(t, out) || (ca = tool_read_cert(t, o->ca_cert)) == NULL
        || (lg = open_ledger(t, o, ca, 0)) == NULL)
        goto done;
    found = ledger_get(lg, serial, &row);
    if (found == -1)
        tool_err(t, "no certificate with serial %s in the ledger %s", serial,
                 ledger_get0_path(lg));
    p = row.der;
    if (found == 1 && (x = d2i_X509(NULL, &p, (long)row.derlen)) == NULL)
        tool_err(t, "the ledger's copy of %s is damaged", serial);
    if (x != NULL && write_cert(t, x, out))
        rc = EXIT_OK;
done:
    X509_free(x);
    ledger_row_clear(&row);
    ledger_close(lg);
    X509_free(ca);
    OPENSSL_free(serial);
    return rc;
}

/* --- dispatch ---------------------------------------------------------- */

static const struct ca_sub {
    const char *name;
    int (*fn)(TOOL *t, const CA_OPTS *o);
    unsigned allowed; /* BIT(O_...) of the options it takes */
    bool takes_arg;   /* one positional argument */
    const char *arg;  /* its name, for usage errors */
} subs[] = {
    { "init", ca_init,
      BIT(O_SUBJECT) | BIT(O_DAYS) | BIT(O_TYPE) | BIT(O_LABEL) | BIT(O_KEY)
          | BIT(O_OUT) | BIT(O_MD) | BIT(O_LEDGER),
      true, "TOKEN-URI" },
    { "sign", ca_sign,
      BIT(O_CA) | BIT(O_CA_CERT) | BIT(O_PROFILE) | BIT(O_DAYS) | BIT(O_OUT)
          | BIT(O_MD) | BIT(O_WILDCARD) | BIT(O_LEDGER),
      true, "CSR" },
    { "revoke", ca_revoke, BIT(O_CA_CERT) | BIT(O_REASON) | BIT(O_LEDGER),
      true, "SERIAL or CERT" },
    { "crl", ca_crl,
      BIT(O_CA) | BIT(O_CA_CERT) | BIT(O_DAYS) | BIT(O_OUT) | BIT(O_MD)
          | BIT(O_LEDGER),
      false, NULL },
    { "list", ca_list, BIT(O_CA_CERT) | BIT(O_LEDGER), false, NULL },
    { "show", ca_show, BIT(O_CA_CERT) | BIT(O_OUT) | BIT(O_LEDGER), true,
      "SERIAL" },
};
#define N_SUBS (sizeof(subs) / sizeof(subs[0]))

static void set_opt(CA_OPTS *o, int id, const char *arg)
{
    const char **slot[] = {
        [O_CA - O_CA] = &o->ca_key,       [O_CA_CERT - O_CA] = &o->ca_cert,
        [O_LEDGER - O_CA] = &o->ledger,   [O_SUBJECT - O_CA] = &o->subject,
        [O_TYPE - O_CA] = &o->type,       [O_LABEL - O_CA] = &o->label,
        [O_KEY - O_CA] = &o->key,         [O_PROFILE - O_CA] = &o->profile,
        [O_REASON - O_CA] = &o->reason,   [O_MD - O_CA] = &o->md,
        [O_DAYS - O_CA] = &o->days,       [O_WILDCARD - O_CA] = NULL,
        [O_OUT - O_CA] = &o->out,
    };

    if (id == O_WILDCARD)
        o->wildcard = true;
    else
        *slot[id - O_CA] = arg;
}

static int parse_opts(TOOL *t, const struct ca_sub *sub, int argc,
                      char **argv, CA_OPTS *o)
{
    static const struct option opts[] = {
        { "ca", required_argument, NULL, O_CA },
        { "ca-cert", required_argument, NULL, O_CA_CERT },
        { "ledger", required_argument, NULL, O_LEDGER },
        { "subject", required_argument, NULL, O_SUBJECT },
        { "type", required_argument, NULL, O_TYPE },
        { "label", required_argument, NULL, O_LABEL },
        { "key", required_argument, NULL, O_KEY },
        { "profile", required_argument, NULL, O_PROFILE },
        { "reason", required_argument, NULL, O_REASON },
        { "md", required_argument, NULL, O_MD },
        { "days", required_argument, NULL, O_DAYS },
        { "allow-wildcard", no_argument, NULL, O_WILDCARD },
        { "out", required_argument, NULL, O_OUT },
        TOOL_COMMON_OPTIONS
    };
    int c, idx;

    while ((c = getopt_long(argc, argv, "o:", opts, &idx)) != -1) {
        if (c == 'o')
            c = O_OUT;
        if (c >= TOOL_OPT_BASE) {
            if (!tool_common_option(t, c, optarg))
                return tool_usage(t, "bad option");
        } else if (c >= O_CA && c <= O_OUT && (sub->allowed & BIT(c)) != 0) {
            set_opt(o, c, optarg);
        } else if (c >= O_CA && c <= O_OUT) {
            return tool_usage(t, "ca %s does not take --%s", sub->name,
                              c == O_OUT ? "out" : opts[idx].name);
        } else {
            return tool_usage(t, "unknown option");
        }
    }
    if (sub->takes_arg && optind != argc - 1)
        return tool_usage(t, "ca %s takes one %s", sub->name, sub->arg);
    if (!sub->takes_arg && optind != argc)
        return tool_usage(t, "ca %s takes no argument besides options",
                          sub->name);
    o->arg = sub->takes_arg ? argv[optind] : NULL;
    return EXIT_OK;
}

int cmd_ca_main(TOOL *t, int argc, char **argv)
{
    CA_OPTS o;
    size_t i;
    int rc;

    if (argc < 2)
        return tool_usage(t, "give a subcommand: init, sign, revoke, crl, "
                             "list or show");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0
        || strcmp(argv[1], "help") == 0) {
        tool_print_help(t->cmd, stdout);
        return EXIT_OK;
    }
    for (i = 0; i < N_SUBS && strcmp(subs[i].name, argv[1]) != 0; i++)
        ;
    if (i == N_SUBS)
        return tool_usage(t, "unknown subcommand \"%s\" (init, sign, revoke, "
                             "crl, list, show)", argv[1]);
    memset(&o, 0, sizeof(o));
    o.sub = subs[i].name;
    rc = parse_opts(t, &subs[i], argc - 1, argv + 1, &o);
    if (rc != EXIT_OK)
        return rc;
    return subs[i].fn(t, &o);
}
