/* cmd_check.c: p11id check: diagnoses an identity (a key on a token and its
 * certificate) one check per line: the key is there, protected and signs;
 * the certificate is the key's, chains to the CA, fits the role and the
 * host name, and is valid. Any failed check makes the exit code EXIT_FAIL. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tool/tool.h"

const char cmd_check_help[] =
    "usage: p11id check KEY-URI [--cert FILE] [--ca FILE] [--host NAME]\n"
    "                   [--usage client|server|both] [--json]\n"
    "\n"
    "Diagnoses an identity, one line per check (ok, warn, FAIL, skip):\n"
    "the private key is on the token, sensitive and not extractable, and\n"
    "signs (a test signature made on the token and verified with the public\n"
    "key); the certificate is the key's; it chains to a CA in --ca; its\n"
    "key usage and extended key usage fit the role; its names fit --host;\n"
    "it is valid now (a warning under 30 days left).\n"
    "\n"
    "  --cert FILE    the certificate (PEM or DER; a PEM file may add the\n"
    "                 intermediate CAs after it). Default: the certificate\n"
    "                 on the token with the key's CKA_ID\n"
    "  --ca FILE      trusted CA certificates (PEM) to verify the chain\n"
    "  --host NAME    a DNS name or IP address the certificate must name\n"
    "  --usage ROLE   client, server or both: the extended key usage and\n"
    "                 the chain's purpose are checked for that role\n"
    "  --json         one JSON object with every check\n"
    "\n"
    "Exit status: 0 when no check failed (warnings allowed), 1 when one\n"
    "did, 3 when the PIN was missing or wrong.\n";

#define WARN_DAYS 30
#define MAX_RESULTS 16

typedef enum { ST_OK, ST_WARN, ST_FAIL, ST_SKIP } STATUS;

enum { USAGE_NONE = 0, USAGE_CLIENT = 1, USAGE_SERVER = 2, USAGE_BOTH = 3 };

typedef struct result_st {
    STATUS status;
    const char *id;       /* stable name for --json */
    const char *name;     /* what was checked, for people */
    char detail[768];     /* the facts, or what to fix */
} RESULT;

typedef struct check_st {
    TOOL *t;
    const char *uri;            /* KEY-URI as given */
    const char *cert_path;      /* --cert, or NULL for the token's */
    const char *ca_path;        /* --ca, or NULL */
    const char *host;           /* --host, or NULL */
    int usage;                  /* USAGE_* from --usage */
    P11ID_OBJECT *key;          /* the private key object (own ref) */
    EVP_PKEY *pub;              /* its public half, a software key */
    X509 *cert;                 /* the identity's certificate */
    STACK_OF(X509) *chain;      /* intermediates after it in --cert */
    char cert_from[512];        /* where the certificate came from */
    RESULT res[MAX_RESULTS];
    size_t nres;
    bool pin_problem;           /* the key was not reached for a PIN */
} CHECK;

static const char *status_word(STATUS st)
{
    switch (st) {
    case ST_OK:
        return "ok";
    case ST_WARN:
        return "warn";
    case ST_FAIL:
        return "FAIL";
    case ST_SKIP:
        return "skip";
    }
    return "?";
}

static void add(CHECK *c, STATUS st, const char *id, const char *name,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Records one check. In human mode it is printed at once, so a slow token
 * shows how far the checks got. */
static void add(CHECK *c, STATUS st, const char *id, const char *name,
                const char *fmt, ...)
{
    RESULT *r;
    va_list ap;

    if (c->nres == MAX_RESULTS)
        return;
    r = &c->res[c->nres++];
    r->status = st;
    r->id = id;
    r->name = name;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
    va_end(ap);
    if (!c->t->json) {
        printf("%-4s %s: %s\n", status_word(st), name, r->detail);
        fflush(stdout);
    }
}

/* The last OpenSSL error in a few words (p11id's facts when it has them);
 * the queue is empty afterwards. */
static void last_ssl_error(char *buf, size_t len)
{
    unsigned long e, last = 0;
    const char *data = NULL, *lastdata = NULL;
    int flags = 0;

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        last = e;
        lastdata = NULL;
        if ((flags & ERR_TXT_STRING) != 0 && data != NULL && *data != '\0')
            lastdata = data;
        if (lastdata != NULL)
            snprintf(buf, len, "%s", lastdata);
        else
            ERR_error_string_n(last, buf, len);
    }
    if (last == 0)
        snprintf(buf, len, "no detail from OpenSSL");
}

/* RFC 2253 text of a name ("CN=www,O=Example"), a new string. */
static char *name_text(const X509_NAME *name)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *data = NULL, *out = NULL;
    long n;

    if (mem == NULL)
        return NULL;
    if (X509_NAME_print_ex(mem, name, 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_get_mem_data(mem, &data);
        out = OPENSSL_strndup(n > 0 ? data : "", n > 0 ? (size_t)n : 0);
    }
    BIO_free(mem);
    return out;
}

/* "2026-12-22 17:06 UTC" */
static void time_text(const ASN1_TIME *tm, char *buf, size_t len)
{
    struct tm t;

    if (ASN1_TIME_to_tm(tm, &t) != 1
        || strftime(buf, len, "%Y-%m-%d %H:%M UTC", &t) == 0)
        snprintf(buf, len, "(unreadable time)");
}

/* Whole days from now until tm (negative when past). */
static int days_until(const ASN1_TIME *tm)
{
    int days = 0, secs = 0;

    if (ASN1_TIME_diff(&days, &secs, NULL, tm) != 1)
        return 0;
    return days;
}

/* Appends one name of a subjectAltName to buf as "TYPE:value". */
static size_t san_one(const GENERAL_NAME *g, char *buf, size_t len)
{
    const unsigned char *ip;
    unsigned char *s = NULL;
    char addr[INET6_ADDRSTRLEN] = "?";
    size_t n = 0;
    int iplen;

    if (g->type == GEN_DNS || g->type == GEN_EMAIL || g->type == GEN_URI) {
        if (ASN1_STRING_to_UTF8(&s, g->d.ia5) < 0)
            return 0;
        n = (size_t)snprintf(buf, len, "%s:%s",
                             g->type == GEN_DNS     ? "DNS"
                             : g->type == GEN_EMAIL ? "email"
                                                    : "URI",
                             (char *)s);
        OPENSSL_free(s);
    } else if (g->type == GEN_IPADD) {
        ip = ASN1_STRING_get0_data(g->d.ip);
        iplen = ASN1_STRING_length(g->d.ip);
        if (iplen == 4 || iplen == 16)
            inet_ntop(iplen == 4 ? AF_INET : AF_INET6, ip, addr,
                      sizeof(addr));
        n = (size_t)snprintf(buf, len, "IP:%s", addr);
    }
    return n < len ? n : len - 1;
}

/* The certificate's subjectAltName entries: "DNS:a, IP:1.2.3.4". */
static void san_text(X509 *x, char *buf, size_t len)
{
    GENERAL_NAMES *gens;
    size_t used = 0, n;
    int i;

    buf[0] = '\0';
    gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        if (used > 0 && used + 2 < len) {
            memcpy(buf + used, ", ", 3);
            used += 2;
        }
        n = san_one(sk_GENERAL_NAME_value(gens, i), buf + used, len - used);
        used += n;
        if (used + 3 >= len)
            break;
    }
    GENERAL_NAMES_free(gens);
    if (buf[0] == '\0')
        snprintf(buf, len, "no subjectAltName");
}

/* --- the key ------------------------------------------------------------- */

static bool check_key_present(CHECK *c)
{
    char desc[64];

    c->key = tool_find_one(c->t, c->uri, CKO_PRIVATE_KEY);
    if (c->key == NULL) {
        c->pin_problem = c->t->pin_failed || c->t->pin_missing;
        add(c, ST_FAIL, "key", "key present",
            "no usable private key for %s (the error above says why)",
            c->uri);
        return false;
    }
    c->pub = tool_public_key(c->t, c->key);
    if (c->pub == NULL) {
        add(c, ST_FAIL, "key", "key present",
            "%s: its public key cannot be read (the token has no public "
            "key object or certificate with its CKA_ID)",
            p11id_object_get0_uri(c->key));
        return false;
    }
    add(c, ST_OK, "key", "key present", "%s (%s)",
        p11id_object_get0_uri(c->key), tool_key_desc(c->pub, desc,
                                                     sizeof(desc)));
    return true;
}

static void check_key_protected(CHECK *c)
{
    bool sensitive = p11id_object_get_flag(c->key, CKA_SENSITIVE);
    bool extractable = p11id_object_get_flag(c->key, CKA_EXTRACTABLE);

    if (sensitive && !extractable)
        add(c, ST_OK, "protection", "key protected",
            "sensitive and not extractable: it cannot leave the token");
    else if (extractable)
        add(c, ST_WARN, "protection", "key protected",
            "the key is CKA_EXTRACTABLE%s: it can be exported from token "
            "\"%s\" (wrapped%s); generate a new one with p11id keygen",
            sensitive ? "" : " and not CKA_SENSITIVE",
            p11id_token_get0_label(p11id_object_get0_token(c->key)),
            sensitive ? "" : " or in plain text");
    else
        add(c, ST_WARN, "protection", "key protected",
            "the key is not CKA_SENSITIVE: the token may reveal it; "
            "generate a new one with p11id keygen");
}

/* Signs 32 random bytes with the token key through the provider and
 * verifies the signature with the software public key. Returns 1, 0 when
 * the token did not sign (msg says why), -1 when the signature is wrong. */
static int sign_and_verify(EVP_PKEY *priv, EVP_PKEY *pub, char *msg,
                           size_t msglen)
{
    unsigned char tbs[32], *sig = NULL;
    const char *md = "SHA256";
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    size_t siglen = 0;
    int ret = 0;

    /* EdDSA hashes by itself: no digest may be named. */
    if (EVP_PKEY_is_a(pub, "ED25519") || EVP_PKEY_is_a(pub, "ED448"))
        md = NULL;
    if (mctx == NULL || RAND_bytes(tbs, sizeof(tbs)) != 1)
        goto err;
    if (EVP_DigestSignInit_ex(mctx, NULL, md, NULL, NULL, priv, NULL) != 1
        || EVP_DigestSign(mctx, NULL, &siglen, tbs, sizeof(tbs)) != 1
        || (sig = OPENSSL_malloc(siglen)) == NULL
        || EVP_DigestSign(mctx, sig, &siglen, tbs, sizeof(tbs)) != 1)
        goto err;
    EVP_MD_CTX_free(mctx);
    mctx = EVP_MD_CTX_new();
    ret = -1;
    if (mctx != NULL
        && EVP_DigestVerifyInit_ex(mctx, NULL, md, NULL, "provider=default",
                                   pub, NULL)
               == 1
        && EVP_DigestVerify(mctx, sig, siglen, tbs, sizeof(tbs)) == 1)
        ret = 1;
    if (ret == -1)
        last_ssl_error(msg, msglen);
    goto done;
err:
    last_ssl_error(msg, msglen);
done:
    EVP_MD_CTX_free(mctx);
    OPENSSL_free(sig);
    return ret;
}

static void check_key_signs(CHECK *c)
{
    EVP_PKEY *priv;
    char msg[512];
    int r;

    priv = tool_load_private_key(c->t, p11id_object_get0_uri(c->key));
    if (priv == NULL) {
        add(c, ST_FAIL, "signature", "key signs",
            "the p11id provider cannot load the key (the error above says "
            "why)");
        return;
    }
    r = sign_and_verify(priv, c->pub, msg, sizeof(msg));
    if (r == 1)
        add(c, ST_OK, "signature", "key signs",
            "a test signature made on the token verifies with the public key");
    else if (r == 0)
        add(c, ST_FAIL, "signature", "key signs",
            "the token did not sign: %s", msg);
    else
        add(c, ST_FAIL, "signature", "key signs",
            "the token signed, but the signature does not verify with the "
            "key's public key (a public key object of another key with the "
            "same CKA_ID?): %s", msg);
    EVP_PKEY_free(priv);
}

/* --- the certificate ----------------------------------------------------- */

/* The leaf and the certificates after it from a PEM file, or one DER
 * certificate. Returns 1 or 0 (error printed). */
static int read_cert_file(CHECK *c)
{
    unsigned char *buf = NULL;
    const unsigned char *p;
    size_t len = 0;
    BIO *bio;
    X509 *x;

    if (!tool_read_file(c->t, c->cert_path, 0, &buf, &len))
        return 0;
    c->chain = sk_X509_new_null();
    bio = BIO_new_mem_buf(buf, (int)len);
    while (bio != NULL && c->chain != NULL
           && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (c->cert == NULL)
            c->cert = x;
        else if (!sk_X509_push(c->chain, x))
            X509_free(x);
    }
    BIO_free(bio);
    if (c->cert == NULL) {
        p = buf;
        c->cert = d2i_X509(NULL, &p, (long)len);
    }
    ERR_clear_error();
    free(buf);
    if (c->cert == NULL)
        tool_err(c->t, "%s is not a certificate (PEM or DER)", c->cert_path);
    return c->cert != NULL;
}

static X509 *object_cert(P11ID_OBJECT *obj)
{
    const unsigned char *der;
    size_t len = 0;

    der = p11id_object_get0_attr(obj, CKA_VALUE, &len);
    if (der == NULL || len == 0)
        return NULL;
    return d2i_X509(NULL, &der, (long)len);
}

/* Of the token's certificates with the key's CKA_ID, the one that matches
 * the key and lasts longest (renewal leaves the old one beside it). */
static void token_cert(CHECK *c)
{
    P11ID_OBJECT **objs = NULL;
    size_t n = 0, i;
    X509 *x;
    const char *from = NULL;

    if (!tool_key_certs(c->t, c->key, &objs, &n))
        return;
    for (i = 0; i < n; i++) {
        x = object_cert(objs[i]);
        if (x == NULL)
            continue;
        if (c->cert == NULL
            || (EVP_PKEY_eq(X509_get0_pubkey(x), c->pub) == 1
                && (EVP_PKEY_eq(X509_get0_pubkey(c->cert), c->pub) != 1
                    || ASN1_TIME_compare(X509_get0_notAfter(x),
                                         X509_get0_notAfter(c->cert))
                           > 0))) {
            X509_free(c->cert);
            c->cert = x;
            from = p11id_object_get0_uri(objs[i]);
            snprintf(c->cert_from, sizeof(c->cert_from), "%s", from);
        } else {
            X509_free(x);
        }
    }
    if (n > 1 && c->cert != NULL) {
        size_t used = strlen(c->cert_from);

        snprintf(c->cert_from + used, sizeof(c->cert_from) - used,
                 " (the newest of %zu with the key's CKA_ID)", n);
    }
    p11id_objects_free(objs, n);
}

static bool check_cert_found(CHECK *c)
{
    char *subj, *iss;

    if (c->cert_path != NULL) {
        if (!read_cert_file(c)) {
            add(c, ST_FAIL, "certificate", "certificate",
                "cannot read %s", c->cert_path);
            return false;
        }
        snprintf(c->cert_from, sizeof(c->cert_from), "%s", c->cert_path);
    } else {
        token_cert(c);
        if (c->cert == NULL) {
            add(c, ST_FAIL, "certificate", "certificate",
                "none on the token with the key's CKA_ID: give --cert "
                "FILE, or store it beside the key (p11id import '%s' "
                "cert.pem)", p11id_object_get0_uri(c->key));
            return false;
        }
    }
    subj = name_text(X509_get_subject_name(c->cert));
    iss = name_text(X509_get_issuer_name(c->cert));
    add(c, ST_OK, "certificate", "certificate", "%s, issued by %s, from %s",
        subj != NULL ? subj : "?", iss != NULL ? iss : "?", c->cert_from);
    OPENSSL_free(subj);
    OPENSSL_free(iss);
    return true;
}

static void check_cert_matches(CHECK *c)
{
    char desc[64];

    if (EVP_PKEY_eq(X509_get0_pubkey(c->cert), c->pub) == 1) {
        add(c, ST_OK, "match", "certificate matches key",
            "the certificate's public key is the key's");
        return;
    }
    ERR_clear_error();
    add(c, ST_FAIL, "match", "certificate matches key",
        "%s certifies another key (%s): TLS peers will reject every "
        "handshake; use the certificate issued for this key, or make a CSR "
        "with it (p11id csr)",
        c->cert_from,
        tool_key_desc(X509_get0_pubkey(c->cert), desc, sizeof(desc)));
}

/* What to do about the usual verification errors. */
static const char *verify_hint(int err)
{
    switch (err) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        return "the CA that signed it is not in --ca: give that CA "
               "(and any intermediate after the certificate in --cert)";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        return "the certificate is self-signed: have a CA sign it";
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        return "the chain ends in a root that is not in --ca";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        return "a CA in --ca has the issuer's name but did not sign it "
               "(a CA certificate of the same name with another key?)";
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "see the validity check";
    case X509_V_ERR_INVALID_PURPOSE:
        return "see the extended key usage check";
    case X509_V_ERR_INVALID_CA:
        return "the issuer is not a CA (basicConstraints CA:TRUE missing)";
    }
    return NULL;
}

/* Verifies cert against the store for one purpose (0: none). Returns 1,
 * or 0 with the error, its depth and subject in msg. */
static int verify_for(CHECK *c, X509_STORE *store, int purpose, char *msg,
                      size_t len)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509 *bad;
    char *subj = NULL;
    const char *hint;
    int ok = 0, err;

    if (ctx == NULL || !X509_STORE_CTX_init(ctx, store, c->cert, c->chain)) {
        snprintf(msg, len, "out of memory");
        goto done;
    }
    if (purpose != 0)
        X509_STORE_CTX_set_purpose(ctx, purpose);
    if (X509_verify_cert(ctx) == 1) {
        ok = 1;
        goto done;
    }
    err = X509_STORE_CTX_get_error(ctx);
    bad = X509_STORE_CTX_get_current_cert(ctx);
    if (bad != NULL)
        subj = name_text(X509_get_subject_name(bad));
    hint = verify_hint(err);
    snprintf(msg, len, "%s (at depth %d, %s)%s%s",
             X509_verify_cert_error_string(err),
             X509_STORE_CTX_get_error_depth(ctx),
             subj != NULL ? subj : "?", hint != NULL ? ": " : "",
             hint != NULL ? hint : "");
done:
    OPENSSL_free(subj);
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

static void check_chain(CHECK *c)
{
    STACK_OF(X509) *cas;
    X509_STORE *store;
    char msg[600];
    int i, ok = 1;

    if (c->ca_path == NULL) {
        add(c, ST_SKIP, "chain", "chain verifies",
            "not checked: give --ca FILE (the CA certificates the peers "
            "trust)");
        return;
    }
    cas = tool_read_certs(c->t, c->ca_path);
    store = X509_STORE_new();
    if (cas == NULL || store == NULL) {
        add(c, ST_FAIL, "chain", "chain verifies", "cannot read --ca %s",
            c->ca_path);
        goto done;
    }
    for (i = 0; i < sk_X509_num(cas); i++)
        X509_STORE_add_cert(store, sk_X509_value(cas, i));
    if ((c->usage & USAGE_CLIENT) != 0)
        ok = verify_for(c, store, X509_PURPOSE_SSL_CLIENT, msg, sizeof(msg));
    if (ok && (c->usage & USAGE_SERVER) != 0)
        ok = verify_for(c, store, X509_PURPOSE_SSL_SERVER, msg, sizeof(msg));
    if (ok && c->usage == USAGE_NONE)
        ok = verify_for(c, store, 0, msg, sizeof(msg));
    if (ok)
        add(c, ST_OK, "chain", "chain verifies", "against %s%s", c->ca_path,
            c->usage == USAGE_BOTH     ? " for TLS clients and servers"
            : c->usage == USAGE_CLIENT ? " for TLS clients"
            : c->usage == USAGE_SERVER ? " for TLS servers"
                                       : "");
    else
        add(c, ST_FAIL, "chain", "chain verifies", "against %s: %s",
            c->ca_path, msg);
done:
    X509_STORE_free(store);
    sk_X509_pop_free(cas, X509_free);
}

/* --- role, names, time --------------------------------------------------- */

static void check_key_usage(CHECK *c)
{
    uint32_t ku = X509_get_key_usage(c->cert);
    bool rsa = EVP_PKEY_is_a(c->pub, "RSA") != 0;

    if ((X509_get_extension_flags(c->cert) & EXFLAG_KUSAGE) == 0) {
        add(c, ST_OK, "key_usage", "key usage",
            "no keyUsage extension: any use allowed");
    } else if ((ku & KU_DIGITAL_SIGNATURE) != 0) {
        add(c, ST_OK, "key_usage", "key usage",
            "digitalSignature: fit for TLS handshakes");
    } else if (rsa && (ku & KU_KEY_ENCIPHERMENT) != 0
               && c->usage == USAGE_SERVER) {
        add(c, ST_WARN, "key_usage", "key usage",
            "keyEncipherment without digitalSignature: only TLS 1.2 RSA key "
            "exchange works; TLS 1.3 and ECDHE need digitalSignature");
    } else {
        add(c, ST_FAIL, "key_usage", "key usage",
            "no digitalSignature in keyUsage: TLS peers refuse the "
            "certificate (alert unsupported_certificate); reissue it");
    }
}

static void eku_text(uint32_t xku, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s%s",
             (xku & XKU_SSL_SERVER) ? "serverAuth " : "",
             (xku & XKU_SSL_CLIENT) ? "clientAuth " : "",
             (xku & XKU_SMIME) ? "emailProtection " : "",
             (xku & XKU_CODE_SIGN) ? "codeSigning " : "",
             (xku & XKU_ANYEKU) ? "anyExtendedKeyUsage " : "");
    if (buf[0] == '\0')
        snprintf(buf, len, "other purposes only");
    else
        buf[strlen(buf) - 1] = '\0';
}

static void check_eku(CHECK *c)
{
    uint32_t xku = X509_get_extended_key_usage(c->cert);
    uint32_t want = 0;
    char have[128];

    if ((X509_get_extension_flags(c->cert) & EXFLAG_XKUSAGE) == 0) {
        add(c, ST_OK, "eku", "extended key usage",
            "no extendedKeyUsage extension: fit for clients and servers");
        return;
    }
    eku_text(xku, have, sizeof(have));
    if ((xku & XKU_ANYEKU) != 0)
        xku |= XKU_SSL_CLIENT | XKU_SSL_SERVER;
    if ((c->usage & USAGE_CLIENT) != 0)
        want |= XKU_SSL_CLIENT;
    if ((c->usage & USAGE_SERVER) != 0)
        want |= XKU_SSL_SERVER;
    if (want == 0) {
        add(c, ST_OK, "eku", "extended key usage",
            "%s (give --usage client|server to check a role)", have);
    } else if ((xku & want) == want) {
        add(c, ST_OK, "eku", "extended key usage", "%s: fits the %s role",
            have, c->usage == USAGE_BOTH ? "client and server"
                  : c->usage == USAGE_CLIENT ? "client"
                                             : "server");
    } else {
        add(c, ST_FAIL, "eku", "extended key usage",
            "%s, but the %s role needs %s: peers refuse it (TLS alert "
            "unsupported_certificate); have the CA issue it with the %s "
            "profile", have,
            (want & ~xku) == XKU_SSL_CLIENT ? "client" : "server",
            (want & ~xku) == XKU_SSL_CLIENT ? "clientAuth" : "serverAuth",
            c->usage == USAGE_BOTH ? "both" : (want & ~xku) == XKU_SSL_CLIENT
                                                  ? "client"
                                                  : "server");
    }
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

static void check_host(CHECK *c)
{
    char names[512];
    char *peer = NULL;

    san_text(c->cert, names, sizeof(names));
    if (c->host == NULL) {
        add(c, ST_SKIP, "host", "host name",
            "not checked: give --host NAME (the certificate names %s)",
            names);
        return;
    }
    if (is_ip(c->host)) {
        if (X509_check_ip_asc(c->cert, c->host, 0) == 1)
            add(c, ST_OK, "host", "host name", "IP:%s is in the certificate",
                c->host);
        else
            add(c, ST_FAIL, "host", "host name",
                "IP:%s is not in the certificate's subjectAltName (%s): "
                "clients connecting to that address refuse it",
                c->host, names);
        return;
    }
    if (X509_check_host(c->cert, c->host, 0,
                        X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, &peer)
        == 1) {
        add(c, ST_OK, "host", "host name", "%s matches DNS:%s", c->host,
            peer);
    } else if (X509_check_host(c->cert, c->host, 0, 0, NULL) == 1) {
        add(c, ST_WARN, "host", "host name",
            "%s matches only the subject's CN: many clients need it in "
            "subjectAltName (DNS:%s)", c->host, c->host);
    } else {
        add(c, ST_FAIL, "host", "host name",
            "%s is not among the certificate's names (%s): clients report "
            "a hostname mismatch", c->host, names);
    }
    OPENSSL_free(peer);
    ERR_clear_error();
}

static void check_validity(CHECK *c)
{
    const ASN1_TIME *nb = X509_get0_notBefore(c->cert);
    const ASN1_TIME *na = X509_get0_notAfter(c->cert);
    char from[40], until[40];
    int left = days_until(na);

    time_text(nb, from, sizeof(from));
    time_text(na, until, sizeof(until));
    if (X509_cmp_current_time(nb) > 0)
        add(c, ST_FAIL, "validity", "validity",
            "not valid before %s (%d days from now): check this machine's "
            "clock, or wait", from, days_until(nb));
    else if (X509_cmp_current_time(na) < 0)
        add(c, ST_FAIL, "validity", "validity",
            "expired on %s (%d days ago): renew it (p11id renew)", until,
            -left);
    else if (left < WARN_DAYS)
        add(c, ST_WARN, "validity", "validity",
            "valid until %s: %d days left, renew soon (p11id renew)", until,
            left);
    else
        add(c, ST_OK, "validity", "validity", "valid until %s (%d days left)",
            until, left);
}

/* --- output and the command ---------------------------------------------- */

static size_t count(const CHECK *c, STATUS st)
{
    size_t i, n = 0;

    for (i = 0; i < c->nres; i++)
        if (c->res[i].status == st)
            n++;
    return n;
}

static void print_json(const CHECK *c)
{
    const char *lower[] = { "ok", "warn", "fail", "skip" };
    size_t i;

    printf("{\"key\": ");
    tool_json_str(stdout, c->key != NULL ? p11id_object_get0_uri(c->key)
                                         : c->uri);
    printf(", \"ok\": %s, \"checks\": [", count(c, ST_FAIL) == 0 ? "true"
                                                               : "false");
    for (i = 0; i < c->nres; i++) {
        printf("%s\n  {\"check\": \"%s\", \"status\": \"%s\", \"name\": ",
               i > 0 ? "," : "", c->res[i].id, lower[c->res[i].status]);
        tool_json_str(stdout, c->res[i].name);
        printf(", \"detail\": ");
        tool_json_str(stdout, c->res[i].detail);
        printf("}");
    }
    printf("\n]}\n");
}

static void print_summary(const CHECK *c)
{
    size_t failed = count(c, ST_FAIL), warned = count(c, ST_WARN);

    if (failed > 0)
        printf("result: FAIL (%zu of %zu checks failed, %zu warning%s)\n",
               failed, c->nres, warned, warned == 1 ? "" : "s");
    else
        printf("result: ok (%zu warning%s)\n", warned, warned == 1 ? "" : "s");
}

static void run_checks(CHECK *c)
{
    if (!check_key_present(c))
        return;
    check_key_protected(c);
    check_key_signs(c);
    if (!check_cert_found(c))
        return;
    check_cert_matches(c);
    check_chain(c);
    check_key_usage(c);
    check_eku(c);
    check_host(c);
    check_validity(c);
}

static int parse_usage(const char *s)
{
    if (strcmp(s, "client") == 0)
        return USAGE_CLIENT;
    if (strcmp(s, "server") == 0)
        return USAGE_SERVER;
    if (strcmp(s, "both") == 0)
        return USAGE_BOTH;
    return -1;
}

int cmd_check_main(TOOL *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "cert", required_argument, NULL, 'c' },
        { "ca", required_argument, NULL, 'a' },
        { "host", required_argument, NULL, 'H' },
        { "usage", required_argument, NULL, 'u' },
        TOOL_COMMON_OPTIONS
    };
    CHECK c;
    int opt, rc;

    memset(&c, 0, sizeof(c));
    c.t = t;
    while ((opt = getopt_long(argc, argv, "c:a:H:u:", opts, NULL)) != -1) {
        if (opt == 'c') {
            c.cert_path = optarg;
        } else if (opt == 'a') {
            c.ca_path = optarg;
        } else if (opt == 'H') {
            c.host = optarg;
        } else if (opt == 'u') {
            c.usage = parse_usage(optarg);
            if (c.usage < 0)
                return tool_usage(t, "--usage is client, server or both, "
                                     "not \"%s\"", optarg);
        } else if (opt < TOOL_OPT_BASE || !tool_common_option(t, opt, optarg)) {
            return tool_usage(t, "unknown option");
        }
    }
    if (optind != argc - 1)
        return tool_usage(t, "give one KEY-URI");
    c.uri = argv[optind];
    run_checks(&c);
    if (t->json)
        print_json(&c);
    else
        print_summary(&c);
    rc = EXIT_OK;
    if (count(&c, ST_FAIL) > 0)
        rc = c.pin_problem ? EXIT_PIN : EXIT_FAIL;
    X509_free(c.cert);
    sk_X509_pop_free(c.chain, X509_free);
    EVP_PKEY_free(c.pub);
    p11id_object_free(c.key);
    return rc;
}
