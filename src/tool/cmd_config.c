/* cmd_config.c: p11id config: prints a working configuration snippet for
 * one identity and one application (nginx, httpd, curl, python, openssl):
 * the key by key reference file or pkcs11: URI, the provider from an
 * openssl.cnf, the PIN by pin-source. It never prints a PIN, and touches
 * no token. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool/tool.h"

const char cmd_config_help[] =
    "usage: p11id config nginx|httpd|curl|python|openssl KEY-URI\n"
    "                    [--cert FILE] [--ca FILE] [--keyfile PATH]\n"
    "                    [--openssl-conf PATH] [--host NAME] [--port N]\n"
    "\n"
    "Prints a configuration for an application that uses the key KEY-URI\n"
    "through the p11id provider:\n"
    "  nginx    a server block (the key by its key reference file) and the\n"
    "           env lines that keep the token module's variables\n"
    "  httpd    a VirtualHost (SSLCertificateKeyFile takes the pkcs11: URI)\n"
    "  curl     a command line (--key takes the key reference file)\n"
    "  python   ssl / requests code (load_cert_chain takes the key\n"
    "           reference file)\n"
    "  openssl  an openssl.cnf that activates p11id beside the default\n"
    "           provider, with the PIN from pin-source\n"
    "\n"
    "  --cert FILE          the identity's certificate\n"
    "  --ca FILE            the CA certificates that verify the peer\n"
    "  --keyfile PATH       the key reference file (p11id keyfile writes it)\n"
    "  --openssl-conf PATH  where the openssl.cnf of 'p11id config openssl'\n"
    "                       is kept\n"
    "  --host NAME          the server's name\n"
    "  --port N             the server's port\n"
    "  --pin-file FILE, --pin-env NAME  become the provider's pin-source\n"
    "  --module PATH        becomes its pkcs11-module-path\n"
    "\n"
    "Paths not given are written as " "/etc/p11id/...; a comment says how\n"
    "to create each file that does not exist. A pin-value in KEY-URI is\n"
    "left out: PINs do not belong in configuration files.\n";

#define CONF_DIR "/etc/p11id"

typedef struct snippet_st {
    TOOL *t;
    char *uri;                  /* KEY-URI without pin-value (OPENSSL_free) */
    const char *cert;           /* --cert or a default path */
    const char *ca;             /* --ca or a default path */
    const char *keyfile;        /* --keyfile or a default path */
    const char *osslconf;       /* --openssl-conf or a default path */
    const char *host;           /* --host or a placeholder */
    const char *port;           /* --port, or NULL: the usual one */
    const char *pin_file;       /* the PIN file of pin-source, or NULL */
    char pin_source[1100];      /* file:... or env:... */
    char provider[1100];        /* path of p11id.so */
    char defcert[300];          /* storage of default paths */
    char defkeyfile[300];
    char defpin[300];
    bool softhsm;               /* the token module reads SOFTHSM2_CONF */
} SNIPPET;

/* --- quoting ------------------------------------------------------------- */

/* A word for sh: bare when safe, else in single quotes. */
static void put_sh(const char *s)
{
    static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "abcdefghijklmnopqrstuvwxyz0123456789_./:=,+@-";

    if (*s != '\0' && strspn(s, safe) == strlen(s)) {
        fputs(s, stdout);
        return;
    }
    putchar('\'');
    for (; *s != '\0'; s++) {
        if (*s == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*s);
    }
    putchar('\'');
}

/* A double-quoted string with \ and " escaped (nginx, httpd, Python). */
static void put_dq(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

/* An openssl.cnf value: '#' starts a comment and '$' a variable there. */
static void put_cnf(const char *s)
{
    for (; *s != '\0'; s++) {
        if (strchr("#$\\\"'", *s) != NULL)
            putchar('\\');
        putchar(*s);
    }
}

/* --- the identity's names ------------------------------------------------ */

/* A copy of the URI without its pin-value query attribute. */
static char *uri_without_pin(const char *uri, bool *had_pin)
{
    const char *q = strchr(uri, '?'), *a, *end;
    char *out = OPENSSL_malloc(strlen(uri) + 1);
    size_t used;
    bool first = true;

    *had_pin = false;
    if (out == NULL)
        return NULL;
    used = q != NULL ? (size_t)(q - uri) : strlen(uri);
    memcpy(out, uri, used);
    for (a = q != NULL ? q + 1 : ""; *a != '\0'; a = end) {
        end = a + strcspn(a, "&");
        if (strncmp(a, "pin-value=", 10) == 0) {
            *had_pin = true;
        } else if (end > a) {
            out[used++] = first ? '?' : '&';
            first = false;
            memcpy(out + used, a, (size_t)(end - a));
            used += (size_t)(end - a);
        }
        if (*end == '&')
            end++;
    }
    out[used] = '\0';
    return out;
}

/* The decoded value of a path attribute of the URI ("token", "object"),
 * made fit for a file name; fallback when absent. */
static void uri_name(const char *uri, const char *attr, const char *fallback,
                     char *buf, size_t len)
{
    size_t alen = strlen(attr), n = 0, pathlen;
    const char *p = uri + strlen("pkcs11:"), *v = NULL;
    unsigned int hex;

    pathlen = strcspn(p, "?");
    while (p < uri + 7 + pathlen && v == NULL) {
        if (strncmp(p, attr, alen) == 0 && p[alen] == '=')
            v = p + alen + 1;
        p += strcspn(p, ";?");
        if (*p == ';')
            p++;
        else
            break;
    }
    for (; v != NULL && *v != '\0' && *v != ';' && *v != '?' && n + 1 < len;
         v++) {
        if (*v == '%' && sscanf(v + 1, "%2x", &hex) == 1) {
            v += 2;
            buf[n++] = isalnum(hex) || hex == '.' || hex == '_' ? (char)hex
                                                                : '-';
        } else {
            buf[n++] = isalnum((unsigned char)*v) || *v == '.' || *v == '_'
                               || *v == '-'
                           ? *v
                           : '-';
        }
    }
    buf[n] = '\0';
    if (n == 0)
        snprintf(buf, len, "%s", fallback);
}

/* Checks the URI names a private key (or leaves the type open), and fills
 * in the paths the command line did not give. Returns 1 or 0. */
static int set_identity(SNIPPET *c)
{
    P11ID_URI *uri = NULL;
    CK_OBJECT_CLASS cls;
    char label[128], token[128];
    const char *so = getenv("P11ID_PROVIDER_SO");

    if (tool_core(c->t) == NULL || p11id_uri_parse(c->uri, &uri) != CKR_OK)
        return 0;
    cls = p11id_uri_get_class(uri);
    p11id_uri_free(uri);
    if (cls != (CK_OBJECT_CLASS)-1 && cls != CKO_PRIVATE_KEY) {
        tool_err(c->t, "%s does not name a private key (type=private, or "
                       "no type)", c->uri);
        return 0;
    }
    uri_name(c->uri, "object", "key", label, sizeof(label));
    uri_name(c->uri, "token", "token", token, sizeof(token));
    snprintf(c->defcert, sizeof(c->defcert), CONF_DIR "/%s.crt", label);
    snprintf(c->defkeyfile, sizeof(c->defkeyfile), CONF_DIR "/%s.keyref.pem",
             label);
    snprintf(c->defpin, sizeof(c->defpin), CONF_DIR "/%s.pin", token);
    if (c->cert == NULL)
        c->cert = c->defcert;
    if (c->keyfile == NULL)
        c->keyfile = c->defkeyfile;
    if (c->ca == NULL)
        c->ca = CONF_DIR "/ca.crt";
    if (c->osslconf == NULL)
        c->osslconf = CONF_DIR "/openssl-p11id.cnf";
    if (c->host == NULL)
        c->host = "server.example.com";
    snprintf(c->provider, sizeof(c->provider), "%s",
             so != NULL && *so != '\0' ? so : P11ID_MODULESDIR "/p11id.so");
    return 1;
}

/* pin-source from --pin-file / --pin-env, else a PIN file beside the
 * other files. The PIN itself is never read here. */
static void set_pin_source(SNIPPET *c)
{
    if (c->t->pin_env != NULL) {
        snprintf(c->pin_source, sizeof(c->pin_source), "env:%s",
                 c->t->pin_env);
        return;
    }
    c->pin_file = c->t->pin_file != NULL ? c->t->pin_file : c->defpin;
    snprintf(c->pin_source, sizeof(c->pin_source), "file:%s", c->pin_file);
}

static bool missing(const char *path)
{
    return access(path, F_OK) != 0;
}

/* Which files a snippet names besides the certificates. */
enum { NOTE_KEYFILE = 1, NOTE_OSSLCONF = 2 };

/* Comment lines that say how to make the files that do not exist yet. */
static void print_missing(const SNIPPET *c, unsigned int notes)
{
    if ((notes & NOTE_KEYFILE) != 0 && missing(c->keyfile)) {
        printf("# %s does not exist; write it with:\n#   p11id keyfile ",
               c->keyfile);
        put_sh(c->uri);
        printf(" -o ");
        put_sh(c->keyfile);
        printf("\n");
    }
    if ((notes & NOTE_OSSLCONF) != 0 && missing(c->osslconf)) {
        printf("# %s does not exist; write it with:\n#   p11id config "
               "openssl ", c->osslconf);
        put_sh(c->uri);
        if (c->t->module != NULL) {
            printf(" --module ");
            put_sh(c->t->module);
        }
        if (c->t->pin_env != NULL) {
            printf(" --pin-env ");
            put_sh(c->t->pin_env);
        } else {
            printf(" --pin-file ");
            put_sh(c->pin_file);
        }
        printf(" > ");
        put_sh(c->osslconf);
        printf("\n");
    }
    if (missing(c->cert))
        printf("# %s does not exist: the certificate of the key (p11id csr, "
               "then p11id ca sign or your CA)\n", c->cert);
    if (missing(c->ca))
        printf("# %s does not exist: the CA certificates that verify the "
               "peer\n", c->ca);
}

/* --- the snippets -------------------------------------------------------- */

static void print_openssl(const SNIPPET *c)
{
    printf("# OpenSSL configuration: the p11id provider beside the default "
           "one, for\n#   %s\n", c->uri);
    printf("# Use it with OPENSSL_CONF=%s, e.g.\n#   OPENSSL_CONF=",
           c->osslconf);
    put_sh(c->osslconf);
    printf(" openssl s_client -connect %s:%s -cert ", c->host,
           c->port != NULL ? c->port : "443");
    put_sh(c->cert);
    printf(" -key ");
    put_sh(c->uri);
    printf(" -CAfile ");
    put_sh(c->ca);
    printf("\n");
    if (c->pin_file != NULL && missing(c->pin_file))
        printf("# %s does not exist: put the user PIN on its first line, "
               "readable only by the\n# application's user:\n#   (umask "
               "077; printf '%%s\\n' 'the PIN' > %s)\n", c->pin_file,
               c->pin_file);
    printf("openssl_conf = openssl_init\n\n[openssl_init]\n"
           "providers = provider_sect\n\n[provider_sect]\n"
           "default = default_sect\np11id = p11id_sect\n\n"
           "[default_sect]\nactivate = 1\n\n[p11id_sect]\nmodule = ");
    put_cnf(c->provider);
    printf("\n");
    if (c->t->module != NULL) {
        printf("pkcs11-module-path = ");
        put_cnf(c->t->module);
        printf("\n");
    } else {
        printf("# pkcs11-module-path: unset, the modules registered with "
               "p11-kit are used\n");
    }
    printf("pin-source = ");
    put_cnf(c->pin_source);
    printf("\nactivate = 1\n");
}

static void print_nginx(const SNIPPET *c)
{
    printf("# nginx: TLS server with the key %s\n", c->uri);
    printf("# Start nginx with OPENSSL_CONF=%s in its environment\n"
           "# (systemd: systemctl edit nginx; [Service] "
           "Environment=OPENSSL_CONF=%s).\n", c->osslconf, c->osslconf);
    printf("# The workers log in to the token again by themselves: the "
           "token's files and\n# the PIN file must be readable by the "
           "worker user.\n");
    print_missing(c, NOTE_KEYFILE | NOTE_OSSLCONF);
    printf("\n# --- main context (top level of nginx.conf) ---\n"
           "env OPENSSL_CONF;\n");
    if (c->softhsm)
        printf("env SOFTHSM2_CONF;\n");
    else
        printf("# env VARIABLE; for each variable the token's module "
               "reads\n");
    printf("\n# --- inside http { } ---\nserver {\n    listen %s ssl;\n"
           "    server_name %s;\n\n    ssl_certificate        ",
           c->port != NULL ? c->port : "443", c->host);
    put_dq(c->cert);
    printf(";\n    ssl_certificate_key    ");
    put_dq(c->keyfile);
    printf(";\n    ssl_client_certificate ");
    put_dq(c->ca);
    printf(";\n    ssl_verify_client      on;\n"
           "    ssl_verify_depth       2;\n"
           "    ssl_protocols          TLSv1.2 TLSv1.3;\n}\n");
}

static void print_httpd(const SNIPPET *c)
{
    const char *port = c->port != NULL ? c->port : "443";

    printf("# Apache httpd 2.4.62 or later: TLS server with the key %s\n",
           c->uri);
    printf("# Start httpd with OPENSSL_CONF=%s in its environment (Debian: "
           "add\n#   export OPENSSL_CONF=%s\n# to /etc/apache2/envvars)%s.\n",
           c->osslconf, c->osslconf,
           c->softhsm ? ", and SOFTHSM2_CONF" : "");
    print_missing(c, NOTE_OSSLCONF);
    printf("Listen %s\n<VirtualHost *:%s>\n    ServerName %s\n"
           "    SSLEngine on\n    SSLProtocol -all +TLSv1.2 +TLSv1.3\n"
           "    SSLCertificateFile ", port, port, c->host);
    put_dq(c->cert);
    printf("\n    SSLCertificateKeyFile ");
    put_dq(c->uri);
    printf("\n    SSLCACertificateFile ");
    put_dq(c->ca);
    printf("\n    SSLVerifyClient require\n    SSLVerifyDepth 2\n"
           "</VirtualHost>\n");
}

static void print_url(const SNIPPET *c)
{
    printf("https://%s%s%s/", c->host, c->port != NULL ? ":" : "",
           c->port != NULL ? c->port : "");
}

static void print_curl(const SNIPPET *c)
{
    printf("# curl: TLS client with the key %s\n", c->uri);
    printf("# curl 7.88 takes the key as a key reference file (a pkcs11: "
           "value would ask for\n# an OpenSSL ENGINE); the provider comes "
           "from OPENSSL_CONF.\n");
    print_missing(c, NOTE_KEYFILE | NOTE_OSSLCONF);
    printf("OPENSSL_CONF=");
    put_sh(c->osslconf);
    printf(" curl --cert ");
    put_sh(c->cert);
    printf(" --key ");
    put_sh(c->keyfile);
    printf(" --cacert ");
    put_sh(c->ca);
    printf(" ");
    print_url(c);
    printf("\n");
}

static void print_python(const SNIPPET *c)
{
    printf("# Python ssl: TLS client with the key %s\n", c->uri);
    printf("# load_cert_chain() takes the key as a key reference file; the "
           "provider comes\n# from OPENSSL_CONF: run as\n#   "
           "OPENSSL_CONF=%s python3 client.py\n", c->osslconf);
    print_missing(c, NOTE_KEYFILE | NOTE_OSSLCONF);
    printf("import http.client\nimport ssl\n\n"
           "ctx = ssl.create_default_context(cafile=");
    put_dq(c->ca);
    printf(")\nctx.load_cert_chain(");
    put_dq(c->cert);
    printf(", ");
    put_dq(c->keyfile);
    printf(")\nconn = http.client.HTTPSConnection(");
    put_dq(c->host);
    printf(", %s, context=ctx)\nconn.request(\"GET\", \"/\")\n"
           "print(conn.getresponse().status)\n\n"
           "# with requests:\n#   requests.get(\"", c->port != NULL
                                                     ? c->port : "443");
    print_url(c);
    printf("\", cert=(\"%s\", \"%s\"), verify=\"%s\")\n", c->cert,
           c->keyfile, c->ca);
}

/* --- the command --------------------------------------------------------- */

static const struct app_st {
    const char *name;
    void (*print)(const SNIPPET *c);
} apps[] = {
    { "nginx", print_nginx },   { "httpd", print_httpd },
    { "apache", print_httpd },  { "curl", print_curl },
    { "python", print_python }, { "openssl", print_openssl },
};

static int parse_opts(SNIPPET *c, int argc, char **argv)
{
    static const struct option opts[] = {
        { "cert", required_argument, NULL, 'c' },
        { "ca", required_argument, NULL, 'a' },
        { "keyfile", required_argument, NULL, 'k' },
        { "openssl-conf", required_argument, NULL, 'o' },
        { "host", required_argument, NULL, 'H' },
        { "port", required_argument, NULL, 'p' },
        TOOL_COMMON_OPTIONS
    };
    int opt;

    while ((opt = getopt_long(argc, argv, "c:a:k:o:H:p:", opts, NULL)) != -1) {
        if (opt == 'c')
            c->cert = optarg;
        else if (opt == 'a')
            c->ca = optarg;
        else if (opt == 'k')
            c->keyfile = optarg;
        else if (opt == 'o')
            c->osslconf = optarg;
        else if (opt == 'H')
            c->host = optarg;
        else if (opt == 'p')
            c->port = optarg;
        else if (opt < TOOL_OPT_BASE || !tool_common_option(c->t, opt, optarg))
            return 0;
    }
    return 1;
}

int cmd_config_main(TOOL *t, int argc, char **argv)
{
    const struct app_st *app = NULL;
    const char *sh = getenv("SOFTHSM2_CONF");
    SNIPPET c;
    bool had_pin;
    size_t i;

    memset(&c, 0, sizeof(c));
    c.t = t;
    if (!parse_opts(&c, argc, argv))
        return tool_usage(t, "unknown option");
    if (optind != argc - 2)
        return tool_usage(t, "give the application and one KEY-URI");
    for (i = 0; i < sizeof(apps) / sizeof(apps[0]); i++)
        if (strcmp(apps[i].name, argv[optind]) == 0)
            app = &apps[i];
    if (app == NULL)
        return tool_usage(t, "no configuration for \"%s\" (nginx, httpd, "
                             "curl, python, openssl)", argv[optind]);
    if (c.port != NULL && strspn(c.port, "0123456789") != strlen(c.port))
        return tool_usage(t, "--port takes a number");
    if (strncmp(argv[optind + 1], "pkcs11:", 7) != 0)
        return tool_usage(t, "KEY-URI is a pkcs11: URI");
    c.uri = uri_without_pin(argv[optind + 1], &had_pin);
    if (c.uri == NULL || !set_identity(&c)) {
        OPENSSL_free(c.uri);
        return EXIT_FAIL;
    }
    if (had_pin)
        tool_err(t, "warning: the URI's pin-value is left out; the PIN "
                    "comes from pin-source");
    set_pin_source(&c);
    c.softhsm = (sh != NULL && *sh != '\0')
                || (t->module != NULL && strstr(t->module, "softhsm") != NULL);
    app->print(&c);
    OPENSSL_free(c.uri);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}
