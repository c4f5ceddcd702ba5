/* cmd_csr.c: p11id csr: a certificate request for a token key, signed on the
 * token through the provider, asking for the extensions of a usage. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>

#include "tool/ledger.h"
#include "tool/tool.h"
#include "tool/x509util.h"

const char cmd_csr_help[] =
    "usage: p11id csr KEY-URI --subject SUBJECT --usage client|server|both "
    "[--san LIST] [-o FILE] [--md DIGEST]\n"
    "\n"
    "Makes a certificate signing request (PKCS#10) for the key on the token\n"
    "and signs it there. It asks for basicConstraints CA:FALSE, keyUsage\n"
    "(digitalSignature; keyEncipherment too for an RSA server key), the\n"
    "extendedKeyUsage of --usage and the subjectAltNames of --san. A CA\n"
    "decides what it grants; p11id ca sign takes only the subject and the\n"
    "names from a request.\n"
    "\n"
    "  --subject SUBJECT  \"CN=web.example.com,O=Example,C=DE\" (most\n"
    "                     specific first) or\n"
    "                     \"/C=DE/O=Example/CN=web.example.com\";\n"
    "                     \\, or \\/ inside a value\n"
    "  --usage U          client (clientAuth), server (serverAuth) or both\n"
    "  --san LIST         DNS:name,IP:address,email:addr,URI:uri; may be\n"
    "                     repeated. Wildcards only as *.example.com. TLS\n"
    "                     clients match host names against these, not the CN\n"
    "  -o, --out FILE     write the PEM request to FILE (0644; default\n"
    "                     standard output); an existing FILE needs --force\n"
    "  --md DIGEST        sha256, sha384 or sha512 (default: sha256; sha384\n"
    "                     for P-384, sha512 for P-521 keys; none for Ed25519)\n"
    "\n"
    "The PIN comes from --pin-file, --pin-env or a prompt.\n";

/* The command line of csr. */
typedef struct csr_opts_st {
    const char *key;      /* KEY-URI */
    const char *subject;  /* --subject */
    char *sans;           /* --san, joined with commas (own) */
    const char *usage;    /* --usage */
    const char *out;      /* -o, "-" for stdout */
    const char *md;       /* --md or NULL */
} CSR_OPTS;

/* Appends a repeated --san to the list. Returns 1 or 0. */
static int add_san_arg(char **list, const char *arg)
{
    char *joined = NULL;

    if (*list == NULL) {
        *list = strdup(arg);
        return *list != NULL;
    }
    if (asprintf(&joined, "%s,%s", *list, arg) < 0)
        return 0;
    free(*list);
    *list = joined;
    return 1;
}

static int parse_opts(TOOL *t, int argc, char **argv, CSR_OPTS *o)
{
    static const struct option opts[] = {
        { "subject", required_argument, NULL, 's' },
        { "san", required_argument, NULL, 'a' },
        { "usage", required_argument, NULL, 'u' },
        { "out", required_argument, NULL, 'o' },
        { "md", required_argument, NULL, 'm' },
        TOOL_COMMON_OPTIONS
    };
    int c;

    memset(o, 0, sizeof(*o));
    o->out = "-";
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            o->subject = optarg;
            break;
        case 'a':
            if (!add_san_arg(&o->sans, optarg))
                return tool_usage(t, "out of memory");
            break;
        case 'u':
            o->usage = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'm':
            o->md = optarg;
            break;
        default:
            if (c < TOOL_OPT_BASE || !tool_common_option(t, c, optarg))
                return tool_usage(t, "unknown option");
        }
    }
    if (optind != argc - 1)
        return tool_usage(t, "give one KEY-URI");
    o->key = argv[optind];
    if (o->subject == NULL || o->usage == NULL)
        return tool_usage(t, "--subject and --usage are needed");
    return EXIT_OK;
}

/* Subject, names and usage from the command line, before any token work. */
static int parse_request(TOOL *t, const CSR_OPTS *o, X509_NAME **subject,
                         GENERAL_NAMES **sans, X509U_USAGE *usage)
{
    X509U_ERR err;

    if (!x509u_parse_usage(o->usage, usage, &err)
        || (*subject = x509u_parse_subject(o->subject, &err)) == NULL) {
        tool_err(t, "%s", err.msg);
        return 0;
    }
    if (o->sans != NULL
        && (*sans = x509u_parse_sans(o->sans, X509U_SAN_WILDCARD, &err))
               == NULL) {
        tool_err(t, "--san: %s", err.msg);
        return 0;
    }
    if ((*usage & X509U_USAGE_SERVER) != 0 && *sans == NULL)
        tool_err(t, "warning: a server request without --san: TLS clients "
                    "check the host name against subjectAltNames, not the "
                    "CN");
    return 1;
}

int csr_for_key(TOOL *t, X509U_CSR_REQ *req, const char *mdname,
                X509_REQ **out)
{
    X509U_ERR err;
    EVP_PKEY *pub = x509u_pubkey_copy(req->signer);
    int ok = 0;

    if (pub == NULL) {
        tool_print_ssl_errors(t);
        tool_err(t, "cannot read the key's public half");
        return 0;
    }
    if (!x509u_check_key(pub, &err)
        || !x509u_pick_md(req->signer, mdname, &req->md, &err)) {
        tool_err(t, "%s", err.msg);
        goto done;
    }
    *out = x509u_make_csr(req, &err);
    if (*out == NULL) {
        tool_print_ssl_errors(t);
        tool_err(t, "%s", err.msg);
        goto done;
    }
    ok = 1;
done:
    EVP_PKEY_free(pub);
    return ok;
}

/* Writes the request as PEM to path ("-" for stdout), 0644. */
static int write_csr(TOOL *t, X509_REQ *req, const char *path)
{
    size_t len = 0;
    char *pem = tool_pem_csr(req, &len);
    int ok;

    if (pem == NULL) {
        tool_err(t, "cannot encode the request");
        return 0;
    }
    ok = tool_write_file(t, path, pem, len, 0644);
    OPENSSL_free(pem);
    return ok;
}

int cmd_csr_main(TOOL *t, int argc, char **argv)
{
    CSR_OPTS o;
    X509U_CSR_REQ spec;
    X509_NAME *subject = NULL;
    GENERAL_NAMES *sans = NULL;
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    int rc = parse_opts(t, argc, argv, &o);

    memset(&spec, 0, sizeof(spec));
    if (rc != EXIT_OK)
        goto done;
    rc = EXIT_USAGE;
    if (!parse_request(t, &o, &subject, &sans, &spec.usage))
        goto done;
    rc = EXIT_FAIL;
    if (!output_is_free(t, o.out))
        goto done;
    key = tool_load_private_key(t, o.key);
    if (key == NULL) {
        rc = tool_fail_code(t);
        goto done;
    }
    spec.signer = key;
    spec.subject = subject;
    spec.sans = sans;
    if (csr_for_key(t, &spec, o.md, &req) && write_csr(t, req, o.out))
        rc = EXIT_OK;
done:
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    GENERAL_NAMES_free(sans);
    X509_NAME_free(subject);
    free(o.sans);
    return rc;
}
