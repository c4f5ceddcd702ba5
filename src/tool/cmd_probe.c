/* cmd_probe.c: p11id probe: a real mutual-TLS handshake with an identity
 * whose key is on a token (it signs through the p11id provider), and what
 * the outcome means in plain words. Each failure class has an id, a
 * headline, why and fix; docs/troubleshooting.md is their long form, one
 * section per id. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tool/tool.h"

const char cmd_probe_help[] =
    "usage: p11id probe HOST[:PORT] [--key KEY-URI [--cert FILE]] [--ca FILE]\n"
    "                   [--servername NAME] [--tls 1.2|1.3] [--http]\n"
    "                   [--timeout SECONDS] [--usage client] [--json]\n"
    "\n"
    "Makes a real TLS handshake with the server as a client whose private\n"
    "key stays on the token, and explains the outcome: the protocol and\n"
    "cipher, the server's certificate, whether the server asked for a\n"
    "client certificate and accepted ours; or why the handshake failed and\n"
    "what to fix (docs/troubleshooting.md has each explanation at length).\n"
    "\n"
    "  --key KEY-URI      our private key; without it no client certificate\n"
    "                     is sent\n"
    "  --cert FILE        our certificate (PEM; intermediates after it).\n"
    "                     Default: the token's certificate of the key\n"
    "  --ca FILE          the CAs that may sign the server's certificate.\n"
    "                     Default: the system's trusted CAs\n"
    "  --servername NAME  the name sent (SNI) and looked for in the server's\n"
    "                     certificate. Default: HOST\n"
    "  --tls VERSION      offer only TLS 1.2 or only TLS 1.3\n"
    "  --timeout SECONDS  for the TCP connection, and for the handshake\n"
    "                     (default 10)\n"
    "  --http             after the handshake, send GET / and read the\n"
    "                     answer: nginx judges the client certificate only\n"
    "                     there (HTTP 400)\n"
    "  --usage client     our role (the only one a probe plays)\n"
    "  --json             one JSON object\n"
    "\n"
    "PORT defaults to 443. Exit status: 0 when the handshake succeeded (a\n"
    "server that did not ask for a client certificate is a warning), 1 when\n"
    "it failed, 2 for a bad command line, 3 for a PIN problem.\n";

#define DEFAULT_TIMEOUT_S 10
/* TLS 1.3 servers judge the client certificate after the handshake; an
 * objection arrives within a round trip, acceptance often as a session
 * ticket. Longer silence counts as acceptance. */
#define VERDICT_WAIT_MS 3000
#define MAX_STEPS 12

typedef enum { ST_OK, ST_WARN, ST_FAIL, ST_SKIP } STATUS;

typedef struct step_st {
    STATUS status;
    const char *id;       /* stable name for --json */
    char detail[768];
} STEP;

/* What we know of a certificate, for the report and the explanations. */
typedef struct certinfo_st {
    char subject[256];
    char issuer[256];
    char names[512];      /* subjectAltName entries */
    char until[40];       /* notAfter */
    char from[40];        /* notBefore */
    int days_left;
    bool expired;
    bool not_yet_valid;
    bool has_eku;         /* an extendedKeyUsage extension is present */
    uint32_t xku;         /* its XKU_* flags */
} CERTINFO;

typedef struct probe_st {
    TOOL *t;
    char host[256];             /* from HOST[:PORT] */
    char port[32];
    char addr[INET6_ADDRSTRLEN]; /* the address that answered */
    const char *servername;     /* --servername, else host */
    const char *key_uri;        /* --key */
    const char *cert_path;      /* --cert */
    const char *ca_path;        /* --ca */
    int timeout_ms;             /* --timeout */
    int version;                /* --tls: 0 or TLS1_x_VERSION */
    bool http;                  /* --http: a GET / after the handshake */
    EVP_PKEY *key;              /* our key (p11id provider) */
    X509 *cert;                 /* our certificate */
    STACK_OF(X509) *chain;      /* intermediates sent after it */
    CERTINFO ours;              /* facts of our certificate */
    CERTINFO server;            /* facts of the server's leaf */
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    /* What the handshake showed (message callback). */
    bool cert_requested;        /* the server sent a CertificateRequest */
    bool cert_sent;             /* our Certificate message was not empty */
    bool ticket_seen;           /* a TLS 1.3 NewSessionTicket came */
    int alert_recv;             /* alert from the server, -1 none */
    int alert_sent;             /* alert we sent, -1 none */
    int verify_err;             /* first error verifying the server */
    int verify_depth;
    char verify_subject[256];   /* the certificate it was found at */
    int ssl_reason;             /* first libssl reason code */
    char ssl_error[512];        /* first error in words */
    char key_error[512];        /* a p11id error: our key failed */
    bool pin_problem;
    /* The outcome. */
    STEP steps[MAX_STEPS];
    size_t nsteps;
    bool failed;
    bool accepted;              /* the server accepted our certificate */
    const char *failure;        /* failure class id, NULL when none */
    char headline[512];
    char why[1024];
    char fix[1024];
} PROBE;

/* --- output -------------------------------------------------------------- */

static const char *status_word(STATUS st)
{
    static const char *words[] = { "ok", "warn", "FAIL", "skip" };

    return words[st];
}

static void step(PROBE *p, STATUS st, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records one step; printed at once in human mode, so a slow server shows
 * where the probe waits. */
static void step(PROBE *p, STATUS st, const char *id, const char *fmt, ...)
{
    STEP *s;
    va_list ap;

    if (st == ST_FAIL)
        p->failed = true;
    if (p->nsteps == MAX_STEPS)
        return;
    s = &p->steps[p->nsteps++];
    s->status = st;
    s->id = id;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
    va_end(ap);
    if (!p->t->json) {
        printf("%-4s ", status_word(st));
        for (; *id != '\0'; id++)
            putchar(*id == '_' ? ' ' : *id);
        printf(": %s\n", s->detail);
        fflush(stdout);
    }
}

/* Names the failure class; why and fix are filled in by the caller. */
static void failure(PROBE *p, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void failure(PROBE *p, const char *id, const char *fmt, ...)
{
    va_list ap;

    p->failed = true;
    p->failure = id;
    va_start(ap, fmt);
    vsnprintf(p->headline, sizeof(p->headline), fmt, ap);
    va_end(ap);
}

static void json_opt_int(const char *name, int v)
{
    if (v < 0)
        printf(", \"%s\": null", name);
    else
        printf(", \"%s\": %d", name, v);
}

static void print_json(const PROBE *p, const char *target)
{
    const char *lower[] = { "ok", "warn", "fail", "skip" };
    size_t i;

    printf("{\"target\": ");
    tool_json_str(stdout, target);
    printf(", \"ok\": %s, \"failure\": ", p->failed ? "false" : "true");
    if (p->failure == NULL)
        printf("null");
    else
        tool_json_str(stdout, p->failure);
    printf(", \"headline\": ");
    tool_json_str(stdout, p->headline);
    printf(", \"why\": ");
    tool_json_str(stdout, p->why);
    printf(", \"fix\": ");
    tool_json_str(stdout, p->fix);
    printf(", \"protocol\": ");
    tool_json_str(stdout, p->ssl != NULL && SSL_is_init_finished(p->ssl)
                              ? SSL_get_version(p->ssl) : "");
    printf(", \"cert_requested\": %s, \"cert_sent\": %s, \"accepted\": %s",
           p->cert_requested ? "true" : "false",
           p->cert_sent ? "true" : "false", p->accepted ? "true" : "false");
    json_opt_int("alert_received", p->alert_recv);
    json_opt_int("alert_sent", p->alert_sent);
    printf(", \"steps\": [");
    for (i = 0; i < p->nsteps; i++) {
        printf("%s\n  {\"step\": \"%s\", \"status\": \"%s\", \"detail\": ",
               i > 0 ? "," : "", p->steps[i].id, lower[p->steps[i].status]);
        tool_json_str(stdout, p->steps[i].detail);
        printf("}");
    }
    printf("\n]}\n");
}

static void print_outcome(const PROBE *p)
{
    if (p->failure != NULL) {
        printf("     why: %s\n", p->why);
        printf("     fix: %s\n", p->fix);
        printf("     see: docs/troubleshooting.md#%s\n", p->failure);
        printf("result: FAIL: %s\n", p->headline);
    } else if (p->failed) {
        printf("result: FAIL\n");
    } else {
        printf("result: %s\n", p->headline);
    }
}

/* --- certificates -------------------------------------------------------- */

static void name_text(const X509_NAME *name, char *buf, size_t len)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n = 0;

    buf[0] = '\0';
    if (mem != NULL && X509_NAME_print_ex(mem, name, 0, XN_FLAG_RFC2253) >= 0)
        n = BIO_get_mem_data(mem, &data);
    if (n > 0)
        snprintf(buf, len, "%.*s", (int)n, data);
    BIO_free(mem);
}

static void time_text(const ASN1_TIME *tm, char *buf, size_t len)
{
    struct tm t;

    if (ASN1_TIME_to_tm(tm, &t) != 1
        || strftime(buf, len, "%Y-%m-%d %H:%M UTC", &t) == 0)
        snprintf(buf, len, "(unreadable time)");
}

/* Appends the DNS and IP names of the subjectAltName to buf. */
static void san_text(X509 *x, char *buf, size_t len)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
                                           NULL);
    const GENERAL_NAME *g;
    char addr[INET6_ADDRSTRLEN];
    size_t used = 0;
    int i, iplen;

    buf[0] = '\0';
    for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens) && used < len;
         i++) {
        g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS) {
            used += (size_t)snprintf(buf + used, len - used, "%sDNS:%.*s",
                                     used > 0 ? ", " : "",
                                     ASN1_STRING_length(g->d.ia5),
                                     ASN1_STRING_get0_data(g->d.ia5));
        } else if (g->type == GEN_IPADD) {
            iplen = ASN1_STRING_length(g->d.ip);
            if ((iplen != 4 && iplen != 16)
                || inet_ntop(iplen == 4 ? AF_INET : AF_INET6,
                             ASN1_STRING_get0_data(g->d.ip), addr,
                             sizeof(addr))
                       == NULL)
                continue;
            used += (size_t)snprintf(buf + used, len - used, "%sIP:%s",
                                     used > 0 ? ", " : "", addr);
        }
    }
    GENERAL_NAMES_free(gens);
    if (buf[0] == '\0')
        snprintf(buf, len, "no DNS or IP names");
}

static void cert_facts(X509 *x, CERTINFO *ci)
{
    int days = 0, secs = 0;

    memset(ci, 0, sizeof(*ci));
    name_text(X509_get_subject_name(x), ci->subject, sizeof(ci->subject));
    name_text(X509_get_issuer_name(x), ci->issuer, sizeof(ci->issuer));
    san_text(x, ci->names, sizeof(ci->names));
    time_text(X509_get0_notBefore(x), ci->from, sizeof(ci->from));
    time_text(X509_get0_notAfter(x), ci->until, sizeof(ci->until));
    if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) == 1)
        ci->days_left = days;
    ci->expired = X509_cmp_current_time(X509_get0_notAfter(x)) < 0;
    ci->not_yet_valid = X509_cmp_current_time(X509_get0_notBefore(x)) > 0;
    ci->has_eku = (X509_get_extension_flags(x) & EXFLAG_XKUSAGE) != 0;
    ci->xku = X509_get_extended_key_usage(x);
    ERR_clear_error();
}

static bool eku_allows(const CERTINFO *ci, uint32_t want)
{
    return !ci->has_eku || (ci->xku & (want | XKU_ANYEKU)) != 0;
}

/* Our certificate (and chain) from --cert. Returns 1 or 0 (error
 * printed). */
static int read_cert_file(PROBE *p)
{
    STACK_OF(X509) *all = tool_read_certs(p->t, p->cert_path);

    if (all == NULL)
        return 0;
    p->cert = sk_X509_shift(all);
    p->chain = all;
    return 1;
}

/* The newest of the token's certificates with the key's CKA_ID. */
static X509 *token_cert(PROBE *p, P11ID_OBJECT *key)
{
    P11ID_OBJECT **objs = NULL;
    const unsigned char *der;
    size_t n = 0, i, len;
    X509 *best = NULL, *x;

    if (!tool_key_certs(p->t, key, &objs, &n))
        return NULL;
    for (i = 0; i < n; i++) {
        der = p11id_object_get0_attr(objs[i], CKA_VALUE, &len);
        x = der != NULL ? d2i_X509(NULL, &der, (long)len) : NULL;
        if (x == NULL)
            continue;
        if (best == NULL
            || ASN1_TIME_compare(X509_get0_notAfter(x),
                                 X509_get0_notAfter(best))
                   > 0) {
            X509_free(best);
            best = x;
        } else {
            X509_free(x);
        }
    }
    p11id_objects_free(objs, n);
    ERR_clear_error();
    return best;
}

/* Loads our key through the provider and finds our certificate. Returns
 * false (with a failed step) when the probe cannot go on. */
static bool load_identity(PROBE *p)
{
    P11ID_OBJECT *obj;

    if (p->key_uri == NULL) {
        step(p, ST_SKIP, "identity", "none given: no client certificate "
                                     "will be sent (--key gives one)");
        return true;
    }
    if (p->cert_path != NULL && !read_cert_file(p)) {
        step(p, ST_FAIL, "identity", "cannot read --cert %s", p->cert_path);
        return false;
    }
    obj = tool_find_one(p->t, p->key_uri, CKO_PRIVATE_KEY);
    if (obj == NULL) {
        p->pin_problem = p->t->pin_failed || p->t->pin_missing;
        step(p, ST_FAIL, "identity", "no usable private key for %s (the "
                                     "error above says why)", p->key_uri);
        return false;
    }
    if (p->cert == NULL)
        p->cert = token_cert(p, obj);
    if (p->cert == NULL) {
        step(p, ST_FAIL, "identity", "no certificate for %s: give --cert "
                                     "FILE, or store it on the token (p11id "
                                     "import)", p11id_object_get0_uri(obj));
        p11id_object_free(obj);
        return false;
    }
    p->key = tool_load_private_key(p->t, p11id_object_get0_uri(obj));
    if (p->key == NULL)
        step(p, ST_FAIL, "identity", "the p11id provider cannot load %s",
             p11id_object_get0_uri(obj));
    p11id_object_free(obj);
    return p->key != NULL;
}

/* Says what a server will think of our certificate before we ask it. */
static void report_identity(PROBE *p)
{
    CERTINFO *o = &p->ours;

    if (p->cert == NULL)
        return;
    cert_facts(p->cert, o);
    if (o->expired)
        step(p, ST_WARN, "identity", "%s expired on %s: servers refuse it",
             o->subject, o->until);
    else if (o->not_yet_valid)
        step(p, ST_WARN, "identity", "%s is not valid before %s: servers "
                                     "refuse it", o->subject, o->from);
    else if (!eku_allows(o, XKU_SSL_CLIENT))
        step(p, ST_WARN, "identity", "%s has no clientAuth in its "
                                     "extendedKeyUsage: servers refuse it "
                                     "as a client certificate", o->subject);
    else
        step(p, ST_OK, "identity", "%s, issued by %s, valid until %s (%d "
                                   "days left)", o->subject, o->issuer,
             o->until, o->days_left);
}

/* --- TCP ----------------------------------------------------------------- */

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events: 1 ready, 0 deadline passed, -1
 * error. */
static int wait_fd(int fd, short events, long long deadline)
{
    struct pollfd pfd = { fd, events, 0 };
    long long left;
    int r;

    for (;;) {
        left = deadline - now_ms();
        if (left <= 0)
            return 0;
        r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (r > 0)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* A non-blocking connect to one address. Returns the socket, or -1 with
 * errno set (ETIMEDOUT when the deadline passed). */
static int connect_one(const struct addrinfo *ai, long long deadline)
{
    socklen_t sl = sizeof(int);
    int fd, err = 0, r;

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        err = errno;
        goto fail;
    }
    r = wait_fd(fd, POLLOUT, deadline);
    if (r == 0)
        err = ETIMEDOUT;
    else if (r < 0)
        err = errno;
    else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0)
        err = errno;
    if (err == 0)
        return fd;
fail:
    close(fd);
    errno = err;
    return -1;
}

static void explain_connect(PROBE *p, int err)
{
    if (err == ECONNREFUSED) {
        failure(p, "connect-refused", "connection refused by %s:%s",
                p->host, p->port);
        snprintf(p->why, sizeof(p->why), "nothing listens on port %s of %s, "
                 "or a firewall rejects the connection", p->port, p->addr);
        snprintf(p->fix, sizeof(p->fix), "start the server, or check the "
                 "port (on the server: ss -ltnp)");
    } else if (err == ETIMEDOUT) {
        failure(p, "connect-timeout", "no answer from %s:%s within %d s",
                p->host, p->port, p->timeout_ms / 1000);
        snprintf(p->why, sizeof(p->why), "the connection attempt was neither "
                 "accepted nor refused: a firewall drops it, the address is "
                 "wrong, or the host is down");
        snprintf(p->fix, sizeof(p->fix), "check the address and the "
                 "firewalls between us and the server");
    } else {
        failure(p, "connect-unreachable", "cannot connect to %s:%s: %s",
                p->host, p->port, strerror(err));
        snprintf(p->why, sizeof(p->why), "the network says the host cannot "
                 "be reached (%s)", strerror(err));
        snprintf(p->fix, sizeof(p->fix), "check the address, the route and "
                 "the firewalls");
    }
}

static bool tcp_connect(PROBE *p)
{
    struct addrinfo hints, *res = NULL, *ai;
    long long deadline = now_ms() + p->timeout_ms;
    int rc, err = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(p->host, p->port, &hints, &res);
    if (rc != 0) {
        failure(p, "dns", "cannot resolve %s", p->host);
        snprintf(p->why, sizeof(p->why), "the name lookup failed: %s",
                 gai_strerror(rc));
        snprintf(p->fix, sizeof(p->fix), "check the host name, or give the "
                 "address and --servername NAME");
        step(p, ST_FAIL, "connect", "%s", p->headline);
        return false;
    }
    p->fd = -1;
    for (ai = res; ai != NULL && p->fd < 0; ai = ai->ai_next) {
        getnameinfo(ai->ai_addr, ai->ai_addrlen, p->addr, sizeof(p->addr),
                    NULL, 0, NI_NUMERICHOST);
        p->fd = connect_one(ai, deadline);
        if (p->fd < 0)
            err = errno;
    }
    freeaddrinfo(res);
    if (p->fd < 0) {
        explain_connect(p, err);
        step(p, ST_FAIL, "connect", "%s", p->headline);
        return false;
    }
    step(p, ST_OK, "connect", "%s:%s (%s)", p->host, p->port, p->addr);
    return true;
}

/* --- TLS ----------------------------------------------------------------- */

/* True when our Certificate message carries a certificate: TLS 1.3 puts a
 * request context before the list. */
static bool cert_msg_nonempty(const unsigned char *b, size_t len, int version)
{
    size_t off = 4;

    if (version == TLS1_3_VERSION) {
        if (len < 5)
            return false;
        off = 5 + b[4];
    }
    if (len < off + 3)
        return false;
    return (b[off] | b[off + 1] | b[off + 2]) != 0;
}

/* Watches the handshake: the alerts each side sends, whether the server
 * asks for a certificate, whether we send one, and session tickets. */
static void msg_cb(int write_p, int version, int content_type,
                   const void *buf, size_t len, SSL *ssl, void *arg)
{
    PROBE *p = arg;
    const unsigned char *b = buf;

    if (content_type == SSL3_RT_ALERT && len >= 2 && b[1] != 0) {
        if (write_p && p->alert_sent < 0)
            p->alert_sent = b[1];
        else if (!write_p && p->alert_recv < 0)
            p->alert_recv = b[1];
        return;
    }
    if (content_type != SSL3_RT_HANDSHAKE || len < 4)
        return;
    if (!write_p && b[0] == SSL3_MT_CERTIFICATE_REQUEST)
        p->cert_requested = true;
    else if (!write_p && b[0] == SSL3_MT_NEWSESSION_TICKET)
        p->ticket_seen = true;
    else if (write_p && b[0] == SSL3_MT_CERTIFICATE)
        p->cert_sent = cert_msg_nonempty(b, len, SSL_version(ssl));
}

/* Keeps the first problem found with the server's certificate; libssl's
 * verdict stays the one it reached. */
static int verify_cb(int ok, X509_STORE_CTX *ctx)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(ctx,
                                          SSL_get_ex_data_X509_STORE_CTX_idx());
    PROBE *p = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    X509 *leaf = X509_STORE_CTX_get0_cert(ctx);
    X509 *cur = X509_STORE_CTX_get_current_cert(ctx);

    if (p == NULL)
        return ok;
    if (p->server.subject[0] == '\0' && leaf != NULL)
        cert_facts(leaf, &p->server);
    if (!ok && p->verify_err == X509_V_OK) {
        p->verify_err = X509_STORE_CTX_get_error(ctx);
        p->verify_depth = X509_STORE_CTX_get_error_depth(ctx);
        if (cur != NULL)
            name_text(X509_get_subject_name(cur), p->verify_subject,
                      sizeof(p->verify_subject));
    }
    return ok;
}

static bool is_ip(const char *s)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s);

    ERR_clear_error();
    if (ip == NULL)
        return false;
    ASN1_OCTET_STRING_free(ip);
    return true;
}

/* The client context: our identity, the CAs for the server, versions. */
static bool make_ctx(PROBE *p)
{
    int i;

    p->ctx = SSL_CTX_new_ex(NULL, NULL, TLS_client_method());
    if (p->ctx == NULL) {
        tool_print_ssl_errors(p->t);
        step(p, ST_FAIL, "tls", "cannot make a TLS context");
        return false;
    }
    if (p->version != 0)
        SSL_CTX_set_min_proto_version(p->ctx, p->version);
    if (p->version != 0)
        SSL_CTX_set_max_proto_version(p->ctx, p->version);
    SSL_CTX_set_verify(p->ctx, SSL_VERIFY_PEER, verify_cb);
    if (p->ca_path != NULL
            ? SSL_CTX_load_verify_file(p->ctx, p->ca_path) != 1
            : SSL_CTX_set_default_verify_paths(p->ctx) != 1) {
        tool_print_ssl_errors(p->t);
        step(p, ST_FAIL, "tls", "cannot load the CA certificates of %s",
             p->ca_path != NULL ? p->ca_path : "the system");
        return false;
    }
    if (p->key == NULL)
        return true;
    if (SSL_CTX_use_certificate(p->ctx, p->cert) != 1
        || SSL_CTX_use_PrivateKey(p->ctx, p->key) != 1) {
        ERR_clear_error();
        failure(p, "cert-key-mismatch", "our certificate is not the key's");
        snprintf(p->why, sizeof(p->why), "the public key in %s (%s) is not "
                 "the public half of %s", p->cert_path != NULL ? p->cert_path
                 : "the token's certificate", p->ours.subject, p->key_uri);
        snprintf(p->fix, sizeof(p->fix), "give the certificate issued for "
                 "this key (p11id check KEY-URI --cert FILE tells)");
        step(p, ST_FAIL, "identity", "%s", p->headline);
        return false;
    }
    for (i = 0; i < sk_X509_num(p->chain); i++)
        SSL_CTX_add1_chain_cert(p->ctx, sk_X509_value(p->chain, i));
    return true;
}

static bool make_ssl(PROBE *p)
{
    const char *name = p->servername;

    p->ssl = SSL_new(p->ctx);
    if (p->ssl == NULL || SSL_set_fd(p->ssl, p->fd) != 1)
        return false;
    SSL_set_app_data(p->ssl, p);
    SSL_set_msg_callback(p->ssl, msg_cb);
    SSL_set_msg_callback_arg(p->ssl, p);
    if (is_ip(name))
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p->ssl), name)
               == 1;
    return SSL_set_tlsext_host_name(p->ssl, name) == 1
           && SSL_set1_host(p->ssl, name) == 1;
}

/* Keeps what the error queue says: a p11id error means our key failed;
 * the first libssl reason classifies the rest. Empties the queue. */
static void collect_errors(PROBE *p)
{
    const char *data = NULL, *lib;
    unsigned long e;
    int flags = 0;

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        lib = ERR_lib_error_string(e);
        if (lib != NULL && strcmp(lib, "p11id") == 0
            && p->key_error[0] == '\0')
            snprintf(p->key_error, sizeof(p->key_error), "%s",
                     (flags & ERR_TXT_STRING) != 0 && data != NULL ? data
                     : ERR_reason_error_string(e));
        if (ERR_GET_LIB(e) == ERR_LIB_SSL && p->ssl_reason == 0)
            p->ssl_reason = ERR_GET_REASON(e);
        if (p->ssl_error[0] == '\0')
            ERR_error_string_n(e, p->ssl_error, sizeof(p->ssl_error));
    }
}

/* Runs fn (SSL_connect, or a one-byte SSL_peek) until it completes, fails
 * or the deadline passes. Returns 1 done, 0 failed (*sslerr set), -1 timed
 * out. */
static int drive(PROBE *p, int peek, long long deadline, int *sslerr)
{
    char byte;
    int r, e, w;

    for (;;) {
        ERR_clear_error();
        r = peek ? SSL_peek(p->ssl, &byte, 1) : SSL_connect(p->ssl);
        if (r > 0)
            return 1;
        e = SSL_get_error(p->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            *sslerr = e;
            collect_errors(p);
            return 0;
        }
        if (peek && p->ticket_seen)
            return 1;
        w = wait_fd(p->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                    deadline);
        if (w == 0)
            return -1;
        if (w < 0) {
            *sslerr = SSL_ERROR_SYSCALL;
            return 0;
        }
    }
}

/* --- explanations -------------------------------------------------------- */

static const char *alert_name(int a)
{
    switch (a) {
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 40: return "handshake_failure";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 86: return "inappropriate_fallback";
    case 90: return "user_canceled";
    case 109: return "missing_extension";
    case 110: return "unsupported_extension";
    case 112: return "unrecognized_name";
    case 116: return "certificate_required";
    case 120: return "no_application_protocol";
    }
    return "unknown alert";
}

/* "; the server accepts client certificates from: CN=A; CN=B" when it
 * named its CAs in the request. */
static void server_ca_list(PROBE *p, char *buf, size_t len)
{
    const STACK_OF(X509_NAME) *names = SSL_get0_peer_CA_list(p->ssl);
    char one[256];
    size_t used;
    int i;

    buf[0] = '\0';
    if (names == NULL || sk_X509_NAME_num(names) == 0)
        return;
    used = (size_t)snprintf(buf, len, "; the server accepts client "
                                      "certificates from: ");
    for (i = 0; i < sk_X509_NAME_num(names) && i < 4 && used < len; i++) {
        name_text(sk_X509_NAME_value(names, i), one, sizeof(one));
        used += (size_t)snprintf(buf + used, len - used, "%s%s",
                                 i > 0 ? " | " : "", one);
    }
}

static void explain_client_ca(PROBE *p)
{
    char cas[400];

    server_ca_list(p, cas, sizeof(cas));
    failure(p, "client-ca-unknown", "the server does not trust the CA that "
            "signed our certificate (alert unknown_ca, 48)");
    snprintf(p->why, sizeof(p->why), "our certificate %s is issued by %s, "
             "which is not among the CAs the server trusts for client "
             "certificates%s", p->ours.subject, p->ours.issuer, cas);
    snprintf(p->fix, sizeof(p->fix), "give the server our CA (the "
             "certificate of %s: nginx ssl_client_certificate, httpd "
             "SSLCACertificateFile, openssl s_server -CAfile), or have our "
             "key certified by a CA the server trusts", p->ours.issuer);
}

static void explain_cert_required(PROBE *p, int alert)
{
    failure(p, "client-cert-required", "the server wants a client "
            "certificate and we sent none (alert %s, %d)", alert_name(alert),
            alert);
    if (alert < 0 && p->key == NULL) {
        snprintf(p->why, sizeof(p->why), "the server requires mutual TLS "
                 "(it let the handshake finish and refused the request); "
                 "this probe had no identity");
        snprintf(p->fix, sizeof(p->fix), "give --key KEY-URI (and --cert "
                 "FILE): the client identity the server expects");
        return;
    }
    if (p->key == NULL) {
        snprintf(p->why, sizeof(p->why), "the server requires mutual TLS; "
                 "this probe had no identity");
        snprintf(p->fix, sizeof(p->fix), "give --key KEY-URI (and --cert "
                 "FILE): the client identity the server expects");
    } else {
        snprintf(p->why, sizeof(p->why), "we had %s but libssl found it "
                 "unfit for the server's request (its signature algorithms)",
                 p->ours.subject);
        snprintf(p->fix, sizeof(p->fix), "compare the key type with what "
                 "the server accepts (openssl s_client -connect ... -msg "
                 "shows its CertificateRequest)");
    }
}

static void explain_usage(PROBE *p, int alert)
{
    char eku[64];

    snprintf(eku, sizeof(eku), "%s%s%s%s", p->ours.has_eku ? "" : "none",
             (p->ours.xku & XKU_SSL_SERVER) ? "serverAuth" : "",
             (p->ours.xku & XKU_SSL_SERVER) && (p->ours.xku & XKU_SSL_CLIENT)
                 ? ", " : "",
             (p->ours.xku & XKU_SSL_CLIENT) ? "clientAuth" : "");
    if (eku[0] == '\0')
        snprintf(eku, sizeof(eku), "neither serverAuth nor clientAuth");
    failure(p, "client-cert-usage", "the server refuses our certificate "
            "for a client (alert %s, %d)", alert_name(alert), alert);
    snprintf(p->why, sizeof(p->why), "a client certificate needs "
             "extendedKeyUsage clientAuth (or none) and keyUsage "
             "digitalSignature; ours, %s, has extendedKeyUsage: %s",
             p->ours.subject, eku);
    snprintf(p->fix, sizeof(p->fix), "have the CA issue our certificate with "
             "the client profile (p11id ca sign --profile client, or both)");
}

/* The server's verdict on our certificate, read from its alert. */
static bool explain_client_cert_alert(PROBE *p, int a)
{
    if (a == SSL_AD_UNKNOWN_CA && p->cert_sent) {
        explain_client_ca(p);
    } else if (a == SSL_AD_CERTIFICATE_REQUIRED
               || (a == SSL_AD_HANDSHAKE_FAILURE && p->cert_requested
                   && !p->cert_sent)) {
        explain_cert_required(p, a);
    } else if (a == SSL_AD_CERTIFICATE_EXPIRED
               || (a == SSL_AD_BAD_CERTIFICATE && p->ours.not_yet_valid)) {
        failure(p, "client-cert-expired", "the server says our certificate "
                "is out of its validity period (alert %s, %d)",
                alert_name(a), a);
        snprintf(p->why, sizeof(p->why), "our certificate %s is valid from "
                 "%s until %s", p->ours.subject, p->ours.from, p->ours.until);
        snprintf(p->fix, sizeof(p->fix), "renew it (p11id renew); if it is "
                 "still valid, the server's clock is wrong");
    } else if (a == SSL_AD_UNSUPPORTED_CERTIFICATE
               || (a == SSL_AD_BAD_CERTIFICATE
                   && !eku_allows(&p->ours, XKU_SSL_CLIENT))) {
        explain_usage(p, a);
    } else if (a == SSL_AD_CERTIFICATE_REVOKED) {
        failure(p, "client-cert-revoked", "the server says our certificate "
                "is revoked (alert certificate_revoked, 44)");
        snprintf(p->why, sizeof(p->why), "%s is on the CRL (or OCSP answer) "
                 "the server checks", p->ours.subject);
        snprintf(p->fix, sizeof(p->fix), "get a new certificate (p11id "
                 "renew); if it should not be revoked, ask the CA");
    } else if ((a == SSL_AD_BAD_CERTIFICATE || a == SSL_AD_CERTIFICATE_UNKNOWN
                || a == SSL_AD_DECRYPT_ERROR)
               && p->cert_sent) {
        failure(p, "client-cert-bad", "the server rejected our certificate "
                "(alert %s, %d)", alert_name(a), a);
        snprintf(p->why, sizeof(p->why), "it did not accept %s for a reason "
                 "the alert does not name: a weak signature or key, a "
                 "broken chain, a signature that does not verify, or its "
                 "policy", p->ours.subject);
        snprintf(p->fix, sizeof(p->fix), "run p11id check on our key with "
                 "the server's CA file, and read the server's error log");
    } else {
        return false;
    }
    return true;
}

/* Alerts that are not about our certificate. */
static void explain_other_alert(PROBE *p, int a)
{
    if (a == SSL_AD_PROTOCOL_VERSION) {
        failure(p, "protocol-version", "no TLS version in common (alert "
                "protocol_version, 70)");
        snprintf(p->why, sizeof(p->why), "we offered %s; the server accepts "
                 "none of it", p->version == TLS1_3_VERSION ? "TLS 1.3 only"
                 : p->version == TLS1_2_VERSION ? "TLS 1.2 only"
                                                : "TLS 1.2 and 1.3");
        snprintf(p->fix, sizeof(p->fix), "enable TLS 1.2 or 1.3 on the "
                 "server (nginx ssl_protocols, httpd SSLProtocol), or probe "
                 "with the other --tls version");
    } else if (a == SSL_AD_UNRECOGNIZED_NAME) {
        failure(p, "sni-unknown", "the server does not serve the name %s "
                "(alert unrecognized_name, 112)", p->servername);
        snprintf(p->why, sizeof(p->why), "we asked for %s (SNI) and the "
                 "server has no site of that name", p->servername);
        snprintf(p->fix, sizeof(p->fix), "give --servername a name the "
                 "server serves (nginx server_name, httpd ServerName)");
    } else if (a == SSL_AD_HANDSHAKE_FAILURE
               || a == SSL_AD_INSUFFICIENT_SECURITY) {
        failure(p, "handshake-failure", "the server ended the handshake "
                "(alert %s, %d)", alert_name(a), a);
        snprintf(p->why, sizeof(p->why), "it found no cipher suite, group or "
                 "signature algorithm we both accept%s",
                 p->cert_sent ? ", or refused our certificate without "
                                "saying why" : "");
        snprintf(p->fix, sizeof(p->fix), "compare the server's TLS settings "
                 "with ours (openssl s_client -connect HOST:PORT shows what "
                 "it picks) and read the server's error log");
    } else {
        failure(p, "alert-other", "the server ended the handshake with "
                "alert %s (%d)", alert_name(a), a);
        snprintf(p->why, sizeof(p->why), "%s", a == SSL_AD_INTERNAL_ERROR
                 ? "the server failed internally (its own key, token or "
                   "configuration)"
                 : "the server found something wrong in the handshake");
        snprintf(p->fix, sizeof(p->fix), "read the server's error log");
    }
}

static void explain_untrusted(PROBE *p)
{
    const char *what = p->verify_err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
                           ? "the server's certificate is self-signed and "
                             "not in --ca"
                       : p->verify_err == X509_V_ERR_CERT_SIGNATURE_FAILURE
                           ? "a CA in --ca has the issuer's name but did "
                             "not sign the server's certificate"
                           : "the server's certificate is not signed by a "
                             "CA in --ca";

    failure(p, "server-untrusted", "%s", what);
    snprintf(p->why, sizeof(p->why), "%s (at depth %d, %s); the server's "
             "certificate %s is issued by %s", X509_verify_cert_error_string(
                 p->verify_err), p->verify_depth, p->verify_subject,
             p->server.subject, p->server.issuer);
    snprintf(p->fix, sizeof(p->fix), "%s the CA that signed the server's "
             "certificate (ask its operator for it), or have the server "
             "send its intermediate CA certificates too",
             p->ca_path != NULL ? "add to --ca" : "give --ca FILE with");
}

/* We did not accept the server's certificate. */
static void explain_verify(PROBE *p)
{
    int e = p->verify_err;
    const char *whose = p->verify_depth == 0 ? "the server's certificate"
                                             : "a CA in the server's chain";

    if (e == X509_V_ERR_HOSTNAME_MISMATCH
        || e == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        failure(p, "server-hostname", "the server's certificate is not for "
                "%s (hostname mismatch)", p->servername);
        snprintf(p->why, sizeof(p->why), "we connected to %s; the "
                 "certificate %s names %s", p->servername, p->server.subject,
                 p->server.names);
        snprintf(p->fix, sizeof(p->fix), "connect with a name the "
                 "certificate has (or --servername NAME), or have the "
                 "server's certificate reissued with DNS:%s in its "
                 "subjectAltName", p->servername);
    } else if (e == X509_V_ERR_CERT_HAS_EXPIRED
               || e == X509_V_ERR_CERT_NOT_YET_VALID) {
        failure(p, "server-expired", "%s (%s) is %s", whose,
                p->verify_subject, e == X509_V_ERR_CERT_HAS_EXPIRED
                ? "expired" : "not valid yet");
        snprintf(p->why, sizeof(p->why), "%s; the server's certificate is "
                 "valid from %s until %s", X509_verify_cert_error_string(e),
                 p->server.from, p->server.until);
        snprintf(p->fix, sizeof(p->fix), "the server must renew its "
                 "certificate; if the dates look right, check this "
                 "machine's clock");
    } else if (e == X509_V_ERR_INVALID_PURPOSE) {
        failure(p, "server-purpose", "%s is not for TLS servers", whose);
        snprintf(p->why, sizeof(p->why), "its extendedKeyUsage lacks "
                 "serverAuth (%s)", p->verify_subject);
        snprintf(p->fix, sizeof(p->fix), "the server needs a certificate "
                 "issued with the server profile (p11id ca sign --profile "
                 "server)");
    } else if (e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
               || e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
               || e == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
               || e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
               || e == X509_V_ERR_CERT_SIGNATURE_FAILURE
               || e == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
               || e == X509_V_ERR_CERT_UNTRUSTED) {
        explain_untrusted(p);
    } else {
        failure(p, "server-verify", "we do not accept the server's "
                "certificate: %s", X509_verify_cert_error_string(e));
        snprintf(p->why, sizeof(p->why), "at depth %d (%s)", p->verify_depth,
                 p->verify_subject);
        snprintf(p->fix, sizeof(p->fix), "openssl verify -CAfile CA "
                 "server.crt shows the same error with details");
    }
}

static bool reason_is_version(int r)
{
    return r == SSL_R_UNSUPPORTED_PROTOCOL || r == SSL_R_NO_PROTOCOLS_AVAILABLE
           || r == SSL_R_VERSION_TOO_LOW || r == SSL_R_VERSION_TOO_HIGH;
}

static bool reason_is_not_tls(int r)
{
    return r == SSL_R_WRONG_VERSION_NUMBER || r == SSL_R_PACKET_LENGTH_TOO_LONG
           || r == SSL_R_RECORD_LENGTH_MISMATCH;
}

/* Failures seen on our side with no alert from the server. */
static void explain_local(PROBE *p, int sslerr, bool after)
{
    if (p->key_error[0] != '\0') {
        failure(p, "key-failed", "our key on the token could not sign the "
                "handshake");
        snprintf(p->why, sizeof(p->why), "%s", p->key_error);
        snprintf(p->fix, sizeof(p->fix), "run p11id check %s: it signs a "
                 "test message and says what the token answers", p->key_uri);
    } else if (reason_is_version(p->ssl_reason)
               || p->alert_sent == SSL_AD_PROTOCOL_VERSION) {
        explain_other_alert(p, SSL_AD_PROTOCOL_VERSION);
    } else if (reason_is_not_tls(p->ssl_reason)) {
        failure(p, "not-tls", "the server does not speak TLS on port %s",
                p->port);
        snprintf(p->why, sizeof(p->why), "its answer is not a TLS record "
                 "(%s): plain HTTP, or another protocol", p->ssl_error);
        snprintf(p->fix, sizeof(p->fix), "use the server's TLS port");
    } else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN
               || p->ssl_reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        failure(p, "closed", "the server closed the connection %s without "
                "a TLS alert", after ? "after the handshake" : "during the "
                "handshake");
        snprintf(p->why, sizeof(p->why), "%s", after
                 ? "servers that check client certificates after the "
                   "handshake do this when they reject one silently"
                 : "a proxy or a server that refuses our handshake without "
                   "saying why (wrong port, SNI, access rules)");
        snprintf(p->fix, sizeof(p->fix), "read the server's error log");
    } else {
        failure(p, "local-error", "the handshake failed on our side");
        snprintf(p->why, sizeof(p->why), "%s", p->ssl_error[0] != '\0'
                 ? p->ssl_error : "no detail from OpenSSL");
        snprintf(p->fix, sizeof(p->fix), "openssl s_client -connect "
                 "HOST:PORT with the same files shows the same error");
    }
}

static void explain_failure(PROBE *p, int sslerr, bool after)
{
    if (p->alert_recv >= 0) {
        if (!explain_client_cert_alert(p, p->alert_recv))
            explain_other_alert(p, p->alert_recv);
    } else if (p->verify_err != X509_V_OK) {
        explain_verify(p);
    } else {
        explain_local(p, sslerr, after);
    }
}

/* --- the handshake ------------------------------------------------------- */

static void report_session(PROBE *p)
{
    X509 *peer = SSL_get0_peer_certificate(p->ssl);

    step(p, ST_OK, "handshake", "%s, %s", SSL_get_version(p->ssl),
         SSL_get_cipher_name(p->ssl));
    if (peer != NULL)
        cert_facts(peer, &p->server);
    step(p, ST_OK, "server_certificate", "%s, issued by %s; verified "
         "against %s; %s matches; %d days left", p->server.subject,
         p->server.issuer, p->ca_path != NULL ? p->ca_path : "the system's CAs",
         p->servername, p->server.days_left);
}

/* TLS 1.3 servers judge our certificate after the handshake: wait a
 * moment for their alert (or a ticket, or data, that says yes). */
static bool await_verdict(PROBE *p)
{
    long long deadline = now_ms() + (VERDICT_WAIT_MS < p->timeout_ms
                                         ? VERDICT_WAIT_MS
                                         : p->timeout_ms);
    int sslerr = 0;

    if (drive(p, 1, deadline, &sslerr) != 0)
        return true;
    explain_failure(p, sslerr, true);
    return false;
}

/* True when the server named the CAs it takes for client certificates and
 * the issuer of ours is not one of them. */
static bool issuer_not_named(PROBE *p)
{
    const STACK_OF(X509_NAME) *names = SSL_get0_peer_CA_list(p->ssl);
    int i;

    if (p->cert == NULL || names == NULL || sk_X509_NAME_num(names) == 0)
        return false;
    for (i = 0; i < sk_X509_NAME_num(names); i++)
        if (X509_NAME_cmp(sk_X509_NAME_value(names, i),
                          X509_get_issuer_name(p->cert))
            == 0)
            return false;
    return true;
}

static void report_client_cert(PROBE *p)
{
    char cas[400];

    if (!p->cert_requested) {
        step(p, ST_WARN, "client_certificate", "the server did not ask for "
             "one: it does not do mutual TLS here%s",
             p->key != NULL ? ", so our identity was not used" : "");
        snprintf(p->headline, sizeof(p->headline), "TLS works, but the "
                 "server did not ask for a client certificate");
        return;
    }
    if (!p->cert_sent) {
        step(p, p->key != NULL ? ST_WARN : ST_OK, "client_certificate",
             "the server asked for one but %s; we sent none", p->http
             ? "did not require it in the handshake"
             : "does not require it in the handshake (--http sends a "
               "request, which some servers refuse without one)");
        snprintf(p->headline, sizeof(p->headline), "TLS works without a "
                 "client certificate (the server asked for one but let us "
                 "in)");
        return;
    }
    p->accepted = true;
    if (issuer_not_named(p)) {
        server_ca_list(p, cas, sizeof(cas));
        step(p, ST_WARN, "client_certificate", "the server took ours (%s) "
             "in the handshake, but ours is issued by %s%s: servers such as "
             "nginx refuse it at the first request%s", p->ours.subject,
             p->ours.issuer, cas, p->http ? "" : " (--http sends one)");
    } else {
        step(p, ST_OK, "client_certificate", "the server asked for one and "
             "accepted ours (%s)%s", p->ours.subject, p->http ? ""
             : "; servers such as nginx judge it only at the first request "
               "(--http sends one)");
    }
    snprintf(p->headline, sizeof(p->headline), "mutual TLS works: the "
             "server accepted %s", p->ours.subject);
}

/* --- HTTP ---------------------------------------------------------------- */

/* Sends "GET /" and reads the answer until the server closes, a short
 * pause after the headers, 8 KiB, or the deadline. Returns the length read,
 * -1 when TLS failed (*sslerr set), -2 when nothing came in time. */
static int http_exchange(PROBE *p, char *resp, size_t max, int *sslerr)
{
    long long deadline = now_ms() + p->timeout_ms;
    char req[600];
    size_t len, off = 0;
    int r, e;

    len = (size_t)snprintf(req, sizeof(req),
                           "GET / HTTP/1.1\r\nHost: %.255s\r\n"
                           "User-Agent: p11id-probe\r\nConnection: close"
                           "\r\n\r\n", p->servername);
    while (off < len) {
        ERR_clear_error();
        r = SSL_write(p->ssl, req + off, (int)(len - off));
        if (r > 0) {
            off += (size_t)r;
            continue;
        }
        e = SSL_get_error(p->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            *sslerr = e;
            collect_errors(p);
            return -1;
        }
        if (wait_fd(p->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                    deadline)
            <= 0)
            return -2;
    }
    off = 0;
    while (off + 1 < max) {
        ERR_clear_error();
        r = SSL_read(p->ssl, resp + off, (int)(max - 1 - off));
        if (r > 0) {
            off += (size_t)r;
            resp[off] = '\0';
            /* A server that ignores "Connection: close" is not waited for
             * once its headers are in. */
            if (strstr(resp, "\r\n\r\n") != NULL
                && deadline > now_ms() + 500)
                deadline = now_ms() + 500;
            continue;
        }
        e = SSL_get_error(p->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(p->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                        deadline)
                > 0)
                continue;
            break;
        }
        if (off == 0 && e != SSL_ERROR_ZERO_RETURN) {
            *sslerr = e;
            collect_errors(p);
            return -1;
        }
        ERR_clear_error();
        break;
    }
    resp[off] = '\0';
    return off > 0 ? (int)off : -2;
}

/* nginx takes any client certificate in the handshake and answers 400
 * with one of these pages when its check failed. */
static bool explain_http_refusal(PROBE *p, const char *resp)
{
    if (strstr(resp, "No required SSL certificate was sent") != NULL) {
        explain_cert_required(p, -1);
        snprintf(p->headline, sizeof(p->headline), "the server wants a "
                 "client certificate and we sent none (HTTP 400 \"No "
                 "required SSL certificate was sent\")");
        return true;
    }
    if (strstr(resp, "The SSL certificate error") == NULL)
        return false;
    if (issuer_not_named(p)) {
        explain_client_ca(p);
        snprintf(p->headline, sizeof(p->headline), "the server does not "
                 "trust the CA that signed our certificate (HTTP 400 \"The "
                 "SSL certificate error\")");
        return true;
    }
    failure(p, "client-cert-bad", "the server rejected our certificate "
            "(HTTP 400 \"The SSL certificate error\")");
    snprintf(p->why, sizeof(p->why), "it finished the handshake and then "
             "found %s unacceptable%s", p->ours.subject, p->ours.expired
             ? ": it has expired" : !eku_allows(&p->ours, XKU_SSL_CLIENT)
             ? ": it has no clientAuth" : "");
    snprintf(p->fix, sizeof(p->fix), "the server's error log names the "
             "reason (nginx: \"client SSL certificate verify error\")");
    return true;
}

static bool http_probe(PROBE *p)
{
    char resp[8192], status[128];
    int n, sslerr = 0, code = 0;

    n = http_exchange(p, resp, sizeof(resp), &sslerr);
    if (n == -1) {
        explain_failure(p, sslerr, true);
        step(p, ST_FAIL, "http", "%s", p->headline);
        return false;
    }
    if (n == -2) {
        step(p, ST_WARN, "http", "no answer to GET / within %d s",
             p->timeout_ms / 1000);
        return true;
    }
    snprintf(status, sizeof(status), "%.*s", (int)strcspn(resp, "\r\n"),
             resp);
    if (sscanf(resp, "HTTP/%*d.%*d %d", &code) != 1) {
        step(p, ST_WARN, "http", "the answer is not HTTP: %.60s", status);
        return true;
    }
    if (code == 400 && explain_http_refusal(p, resp)) {
        p->accepted = false;
        step(p, ST_FAIL, "http", "%s", p->headline);
        return false;
    }
    step(p, code < 400 ? ST_OK : ST_WARN, "http", "%s%s", status,
         code < 400 ? "" : " (TLS and the certificates are fine; the "
                           "answer is the application's)");
    return true;
}

static bool handshake(PROBE *p)
{
    long long deadline = now_ms() + p->timeout_ms;
    int r, sslerr = 0;

    if (!make_ssl(p)) {
        tool_print_ssl_errors(p->t);
        step(p, ST_FAIL, "handshake", "cannot set up TLS for %s",
             p->servername);
        return false;
    }
    r = drive(p, 0, deadline, &sslerr);
    if (r < 0) {
        failure(p, "handshake-timeout", "no TLS handshake within %d s",
                p->timeout_ms / 1000);
        snprintf(p->why, sizeof(p->why), "the server accepted the TCP "
                 "connection but did not answer our TLS hello: not a TLS "
                 "port, a protocol where the client waits for a greeting, "
                 "or a stuck server");
        snprintf(p->fix, sizeof(p->fix), "check that port %s is the "
                 "server's TLS port", p->port);
    } else if (r == 0) {
        explain_failure(p, sslerr, false);
    }
    if (r != 1) {
        step(p, ST_FAIL, "handshake", "%s", p->headline);
        return false;
    }
    report_session(p);
    if (p->cert_requested && SSL_version(p->ssl) == TLS1_3_VERSION
        && !await_verdict(p)) {
        step(p, ST_FAIL, "client_certificate", "%s", p->headline);
        return false;
    }
    report_client_cert(p);
    if (p->http && !http_probe(p))
        return false;
    return true;
}

/* --- the command --------------------------------------------------------- */

/* HOST, HOST:PORT or [V6]:PORT. Returns 1 or 0. */
static int parse_target(PROBE *p, const char *s)
{
    const char *colon, *end;
    size_t hlen;

    snprintf(p->port, sizeof(p->port), "443");
    if (s[0] == '[') {
        end = strchr(s, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return 0;
        hlen = (size_t)(end - s - 1);
        s++;
        colon = end[1] == ':' ? end + 1 : NULL;
    } else {
        colon = strrchr(s, ':');
        if (colon != NULL && strchr(s, ':') != colon)
            colon = NULL; /* a bare IPv6 address */
        hlen = colon != NULL ? (size_t)(colon - s) : strlen(s);
    }
    if (hlen == 0 || hlen >= sizeof(p->host))
        return 0;
    memcpy(p->host, s, hlen);
    p->host[hlen] = '\0';
    if (colon != NULL) {
        if (colon[1] == '\0' || strlen(colon + 1) >= sizeof(p->port)
            || strspn(colon + 1, "0123456789") != strlen(colon + 1))
            return 0;
        snprintf(p->port, sizeof(p->port), "%s", colon + 1);
    }
    return 1;
}

static int parse_opt(PROBE *p, int opt, const char *arg)
{
    char *end;
    long n;

    switch (opt) {
    case 'k':
        p->key_uri = arg;
        return 1;
    case 'c':
        p->cert_path = arg;
        return 1;
    case 'a':
        p->ca_path = arg;
        return 1;
    case 's':
        p->servername = arg;
        return 1;
    case 'v':
        p->version = strcmp(arg, "1.2") == 0   ? TLS1_2_VERSION
                     : strcmp(arg, "1.3") == 0 ? TLS1_3_VERSION
                                               : -1;
        return p->version > 0;
    case 'T':
        n = strtol(arg, &end, 10);
        if (*end != '\0' || n < 1 || n > 600)
            return 0;
        p->timeout_ms = (int)n * 1000;
        return 1;
    case 'u':
        return strcmp(arg, "client") == 0;
    case 'W':
        p->http = true;
        return 1;
    }
    return opt >= TOOL_OPT_BASE && tool_common_option(p->t, opt, arg);
}

static void probe_free(PROBE *p)
{
    /* SSL_set_fd's BIO does not own the socket. */
    if (p->ssl != NULL && !p->failed)
        SSL_shutdown(p->ssl);
    SSL_free(p->ssl);
    if (p->fd >= 0)
        close(p->fd);
    SSL_CTX_free(p->ctx);
    EVP_PKEY_free(p->key);
    X509_free(p->cert);
    sk_X509_pop_free(p->chain, X509_free);
}

static void run_probe(PROBE *p)
{
    if (!load_identity(p))
        return;
    report_identity(p);
    if (!make_ctx(p) || !tcp_connect(p))
        return;
    handshake(p);
}

int cmd_probe_main(TOOL *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "key", required_argument, NULL, 'k' },
        { "cert", required_argument, NULL, 'c' },
        { "ca", required_argument, NULL, 'a' },
        { "servername", required_argument, NULL, 's' },
        { "tls", required_argument, NULL, 'v' },
        { "timeout", required_argument, NULL, 'T' },
        { "usage", required_argument, NULL, 'u' },
        { "http", no_argument, NULL, 'W' },
        TOOL_COMMON_OPTIONS
    };
    PROBE p;
    int opt;

    memset(&p, 0, sizeof(p));
    p.t = t;
    p.fd = -1;
    p.alert_recv = p.alert_sent = -1;
    p.timeout_ms = DEFAULT_TIMEOUT_S * 1000;
    while ((opt = getopt_long(argc, argv, "k:c:a:s:v:T:u:W", opts, NULL))
           != -1)
        if (!parse_opt(&p, opt, optarg))
            return tool_usage(t, "bad option%s%s (--tls 1.2|1.3, --timeout "
                                 "1-600, --usage client)",
                              optarg != NULL ? " value " : "",
                              optarg != NULL ? optarg : "");
    if (optind != argc - 1 || !parse_target(&p, argv[optind]))
        return tool_usage(t, "give one HOST[:PORT]");
    if (p.cert_path != NULL && p.key_uri == NULL)
        return tool_usage(t, "--cert needs --key (the key stays on the "
                             "token; name it by its pkcs11: URI)");
    if (p.servername == NULL)
        p.servername = p.host;
    /* A server that hangs up must not kill us while we write. */
    signal(SIGPIPE, SIG_IGN);
    run_probe(&p);
    if (t->json)
        print_json(&p, argv[optind]);
    else
        print_outcome(&p);
    probe_free(&p);
    if (!p.failed)
        return EXIT_OK;
    return p.pin_problem ? EXIT_PIN : EXIT_FAIL;
}
