/* x509util.c: X.509 helpers shared by the csr, ca, renew and check commands
 * (see x509util.h): names, subjectAltNames, usages, keys, serials,
 * extensions, requests. Anything read from a CSR is hostile until checked
 * here, so every check bounds lengths and counts before it looks inside. */
#include "config.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>

#include "tool/x509util.h"

#define MAX_DNS_LEN 253
#define MAX_LABEL_LEN 63
#define MAX_EMAIL_LEN 254
#define MAX_LOCAL_LEN 64
#define MAX_URI_LEN 2048

static int fail(X509U_ERR *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sets err and returns 0. OpenSSL's queue holds nothing the caller should
 * see about bad input, so it is emptied here. */
static int fail(X509U_ERR *err, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    ERR_clear_error();
    return 0;
}

/* A printable excerpt of hostile bytes for messages: at most 60 characters,
 * anything not printable ASCII shown as '?'. */
static const char *shown(const unsigned char *s, size_t len, char *buf,
                         size_t size)
{
    size_t i, n = len < size - 4 ? len : size - 4;

    if (n > 60)
        n = 60;
    for (i = 0; i < n; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    if (n < len) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* --- usages ------------------------------------------------------------ */

int x509u_parse_usage(const char *s, X509U_USAGE *out, X509U_ERR *err)
{
    if (s != NULL && strcmp(s, "client") == 0)
        *out = X509U_USAGE_CLIENT;
    else if (s != NULL && strcmp(s, "server") == 0)
        *out = X509U_USAGE_SERVER;
    else if (s != NULL && strcmp(s, "both") == 0)
        *out = X509U_USAGE_BOTH;
    else
        return fail(err, "unknown usage \"%s\": use client, server or both",
                    s != NULL ? s : "");
    return 1;
}

const char *x509u_usage_name(X509U_USAGE u)
{
    switch (u) {
    case X509U_USAGE_CLIENT:
        return "client";
    case X509U_USAGE_SERVER:
        return "server";
    case X509U_USAGE_BOTH:
        return "both";
    case X509U_USAGE_NONE:
        break;
    }
    return "none";
}

X509U_USAGE x509u_cert_usage(X509 *x)
{
    EXTENDED_KEY_USAGE *eku;
    unsigned int u = X509U_USAGE_NONE;
    int i, nid;

    eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
    for (i = 0; eku != NULL && i < sk_ASN1_OBJECT_num(eku); i++) {
        nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
        if (nid == NID_server_auth)
            u |= X509U_USAGE_SERVER;
        else if (nid == NID_client_auth)
            u |= X509U_USAGE_CLIENT;
    }
    EXTENDED_KEY_USAGE_free(eku);
    ERR_clear_error();
    return (X509U_USAGE)u;
}

/* --- names ------------------------------------------------------------- */

static char *trim(char *s)
{
    size_t n;

    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Splits s at unescaped sep into keys[i]=vals[i] inside buf (unescaped,
 * NUL-terminated). vals[i] is NULL when an item has no '='. */
static int split_subject(const char *s, char sep, char *buf, char **keys,
                         char **vals, size_t *n, X509U_ERR *err)
{
    const char *p = s;
    char *w = buf;

    *n = 0;
    for (;;) {
        if (*n == X509U_MAX_NAME_ENTRIES)
            return fail(err, "subject has more than %d attributes",
                        X509U_MAX_NAME_ENTRIES);
        keys[*n] = w;
        vals[*n] = NULL;
        while (*p != '\0' && *p != sep) {
            if (*p == '\\' && p[1] != '\0') {
                *w++ = p[1];
                p += 2;
            } else if (*p == '=' && vals[*n] == NULL) {
                *w++ = '\0';
                vals[*n] = w;
                p++;
            } else {
                *w++ = *p++;
            }
        }
        *w++ = '\0';
        (*n)++;
        if (*p == '\0')
            return 1;
        p++;
    }
}

/* Adds key=val to name, refusing what OpenSSL or we would not put in a
 * certificate. */
static int add_subject_entry(X509_NAME *name, char *key, char *val,
                             X509U_ERR *err)
{
    const unsigned char *c;
    int nid;

    key = trim(key);
    val = trim(val);
    nid = OBJ_txt2nid(key);
    if (*key == '\0' || nid == NID_undef)
        return fail(err, "subject: unknown attribute \"%s\" (use CN, O, OU, "
                         "C, L, ST, DC, emailAddress, serialNumber ...)",
                    key);
    if (*val == '\0')
        return fail(err, "subject: %s has an empty value", key);
    for (c = (const unsigned char *)val; *c != '\0'; c++)
        if (*c < 0x20 || *c == 0x7f)
            return fail(err, "subject: %s holds a control character", key);
    if (strlen(val) > X509U_MAX_NAME_VALUE)
        return fail(err, "subject: %s is longer than %d bytes", key,
                    X509U_MAX_NAME_VALUE);
    if (!X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
                                    (const unsigned char *)val, -1, -1, 0))
        return fail(err, "subject: \"%s\" is not a valid %s (too long, or "
                         "characters it cannot hold; C is two letters, CN "
                         "at most 64 characters)",
                    val, key);
    return 1;
}

X509_NAME *x509u_parse_subject(const char *s, X509U_ERR *err)
{
    char *keys[X509U_MAX_NAME_ENTRIES], *vals[X509U_MAX_NAME_ENTRIES];
    char *buf = NULL;
    X509_NAME *name = NULL;
    size_t n = 0, i, k;
    char sep;
    int ok = 0;

    if (s == NULL || *s == '\0' || strcmp(s, "/") == 0) {
        fail(err, "the subject is empty: give e.g. \"CN=web.example.com,"
                  "O=Example\" or \"/O=Example/CN=web.example.com\"");
        return NULL;
    }
    sep = *s == '/' ? '/' : ',';
    buf = malloc(strlen(s) + 2);
    name = X509_NAME_new();
    if (buf == NULL || name == NULL) {
        fail(err, "out of memory");
        goto done;
    }
    if (!split_subject(sep == '/' ? s + 1 : s, sep, buf, keys, vals, &n,
                       err))
        goto done;
    /* The comma form lists the most specific attribute first (RFC 4514);
     * certificates hold it last. */
    for (i = 0; i < n; i++) {
        k = sep == '/' ? i : n - 1 - i;
        if (vals[k] == NULL) {
            fail(err, "subject: \"%s\" is not ATTRIBUTE=value (a \"%c\" "
                      "inside a value is written \"\\%c\")",
                 keys[k], sep, sep);
            goto done;
        }
        if (!add_subject_entry(name, keys[k], vals[k], err))
            goto done;
    }
    ok = x509u_check_name(name, err);
done:
    free(buf);
    if (!ok) {
        X509_NAME_free(name);
        name = NULL;
    }
    return name;
}

/* One entry of a name from elsewhere: known type, readable, bounded. */
static int check_name_entry(const X509_NAME_ENTRY *e, X509U_ERR *err)
{
    unsigned char *utf8 = NULL;
    char oid[80], show[80];
    int len, i, ok = 0;
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));

    OBJ_obj2txt(oid, sizeof(oid), X509_NAME_ENTRY_get_object(e), 0);
    if (nid == NID_undef)
        return fail(err, "subject holds an unknown attribute type %s", oid);
    len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
    if (len < 0)
        return fail(err, "subject attribute %s cannot be read as text", oid);
    if (len == 0) {
        fail(err, "subject attribute %s is empty", oid);
    } else if (len > X509U_MAX_NAME_VALUE) {
        fail(err, "subject attribute %s is longer than %d bytes", oid,
             X509U_MAX_NAME_VALUE);
    } else if (memchr(utf8, '\0', (size_t)len) != NULL) {
        fail(err, "subject attribute %s holds a NUL byte (\"%s\"): a name "
                  "that hides another is refused",
             oid, shown(utf8, (size_t)len, show, sizeof(show)));
    } else {
        for (i = 0; i < len && utf8[i] >= 0x20 && utf8[i] != 0x7f; i++)
            ;
        if (i < len)
            fail(err, "subject attribute %s holds a control character "
                      "(\"%s\")",
                 oid, shown(utf8, (size_t)len, show, sizeof(show)));
        else
            ok = 1;
    }
    OPENSSL_free(utf8);
    return ok;
}

int x509u_check_name(const X509_NAME *name, X509U_ERR *err)
{
    int i, n = X509_NAME_entry_count(name);

    if (n > X509U_MAX_NAME_ENTRIES)
        return fail(err, "subject has %d attributes: at most %d are taken", n,
                    X509U_MAX_NAME_ENTRIES);
    for (i = 0; i < n; i++)
        if (!check_name_entry(X509_NAME_get_entry(name, i), err))
            return 0;
    return 1;
}

/* Takes a memory BIO's contents as a new NUL-terminated string. */
static char *bio_string(BIO *mem)
{
    char *data = NULL, *out;
    long n = BIO_get_mem_data(mem, &data);

    out = OPENSSL_strndup(n > 0 ? data : "", n > 0 ? (size_t)n : 0);
    BIO_free(mem);
    return out;
}

char *x509u_name_text(const X509_NAME *name)
{
    /* RFC 2253, with UTF-8 left as it is rather than escaped. */
    unsigned long flags = XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB;
    BIO *mem = BIO_new(BIO_s_mem());

    if (mem == NULL)
        return NULL;
    if (X509_NAME_print_ex(mem, name, 0, flags) < 0) {
        BIO_free(mem);
        return NULL;
    }
    return bio_string(mem);
}

/* --- subjectAltNames --------------------------------------------------- */

static const struct san_type {
    const char *prefix; /* as the user writes it */
    int type;           /* GEN_* */
} san_types[] = {
    { "DNS:", GEN_DNS },
    { "IP:", GEN_IPADD },
    { "email:", GEN_EMAIL },
    { "URI:", GEN_URI },
};
#define N_SAN_TYPES (sizeof(san_types) / sizeof(san_types[0]))

/* The index of the type prefix p starts with, or -1. */
static int san_prefix(const char *p)
{
    size_t i;

    for (i = 0; i < N_SAN_TYPES; i++)
        if (strncasecmp(p, san_types[i].prefix, strlen(san_types[i].prefix))
            == 0)
            return (int)i;
    return -1;
}

/* One DNS label (or the labels after a wildcard) of a name. */
static int check_labels(const unsigned char *s, size_t len, const char *what,
                        const char *full, X509U_ERR *err)
{
    size_t i, start = 0;
    bool digits_only = true;

    for (i = 0; i <= len; i++) {
        if (i < len && s[i] != '.') {
            if (s[i] == '*')
                return fail(err, "%s%s: a wildcard is allowed only as the "
                                 "whole leftmost label (*.example.com)",
                            what, full);
            if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
                  || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
                return fail(err, "%s%s: '%c' is not allowed in a host name "
                                 "(letters, digits, '-' and '.')",
                            what, full,
                            s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?');
            digits_only = digits_only && s[i] >= '0' && s[i] <= '9';
            continue;
        }
        if (i == start)
            return fail(err, "%s%s: empty label (leading, trailing or double "
                             "dot)",
                        what, full);
        if (i - start > MAX_LABEL_LEN)
            return fail(err, "%s%s: a label is longer than %d characters",
                        what, full, MAX_LABEL_LEN);
        if (s[start] == '-' || s[i - 1] == '-')
            return fail(err, "%s%s: a label starts or ends with '-'", what,
                        full);
        if (i < len)
            digits_only = true;
        start = i + 1;
    }
    if (digits_only)
        return fail(err, "%s%s looks like an IP address: write IP:%s", what,
                    full, full);
    return 1;
}

static int check_dns(const unsigned char *s, size_t len, unsigned flags,
                     const char *what, X509U_ERR *err)
{
    char show[80];

    shown(s, len, show, sizeof(show));
    if (len == 0)
        return fail(err, "%s is empty", what);
    if (len > MAX_DNS_LEN)
        return fail(err, "%s%s is longer than %d characters", what, show,
                    MAX_DNS_LEN);
    if (len >= 2 && s[0] == '*' && s[1] == '.') {
        if ((flags & X509U_SAN_WILDCARD) == 0)
            return fail(err, "%s%s is a wildcard name: not issued here "
                             "(p11id ca sign --allow-wildcard issues them)",
                        what, show);
        if (memchr(s + 2, '.', len - 2) == NULL)
            return fail(err, "%s%s: a wildcard needs at least two labels "
                             "after it (*.example.com, not *.com)",
                        what, show);
        return check_labels(s + 2, len - 2, what, show, err);
    }
    return check_labels(s, len, what, show, err);
}

static int check_email(const unsigned char *s, size_t len, X509U_ERR *err)
{
    const unsigned char *at = NULL;
    char show[80];
    size_t i;

    shown(s, len, show, sizeof(show));
    if (len > MAX_EMAIL_LEN)
        return fail(err, "email:%s is longer than %d characters", show,
                    MAX_EMAIL_LEN);
    for (i = 0; i < len; i++)
        if (s[i] == '@')
            at = s + i;
    if (at == NULL || at == s || (size_t)(at - s) > MAX_LOCAL_LEN)
        return fail(err, "email:%s is not local@domain", show);
    for (i = 0; s + i < at; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f || strchr("@()<>[]:;,\\\"", s[i]))
            return fail(err, "email:%s: the part before '@' holds a "
                             "character not allowed in an address",
                        show);
    return check_dns(at + 1, len - (size_t)(at + 1 - s), 0, "email domain ",
                     err);
}

static int check_uri(const unsigned char *s, size_t len, X509U_ERR *err)
{
    char show[80];
    size_t i, colon = 0, auth;

    shown(s, len, show, sizeof(show));
    if (len > MAX_URI_LEN)
        return fail(err, "URI:%s is longer than %d characters", show,
                    MAX_URI_LEN);
    for (i = 0; i < len; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f || strchr("<>\"{}|\\^`", s[i]))
            return fail(err, "URI:%s holds a space, a control character or "
                             "a character URIs do not allow (percent-encode "
                             "it)",
                        show);
    while (colon < len
           && ((s[colon] >= 'a' && s[colon] <= 'z')
               || (s[colon] >= 'A' && s[colon] <= 'Z')
               || (colon > 0 && strchr("0123456789+-.", s[colon]))))
        colon++;
    if (colon == 0 || colon >= len || s[colon] != ':' || colon + 1 == len)
        return fail(err, "URI:%s has no scheme (write e.g. "
                         "URI:https://example.com/ or URI:spiffe://td/w)",
                    show);
    if (len - colon > 2 && s[colon + 1] == '/' && s[colon + 2] == '/') {
        auth = colon + 3;
        if (auth == len || strchr("/?#", s[auth]) != NULL)
            return fail(err, "URI:%s has an empty host", show);
    }
    return 1;
}

/* One name of any type, from the user or a CSR. */
static int check_san(const GENERAL_NAME *gen, unsigned flags, X509U_ERR *err)
{
    const ASN1_STRING *str;
    const unsigned char *d;
    size_t len;
    char show[80];

    switch (gen->type) {
    case GEN_DNS:
    case GEN_EMAIL:
    case GEN_URI:
        str = gen->d.ia5;
        break;
    case GEN_IPADD:
        len = (size_t)ASN1_STRING_length(gen->d.ip);
        if (len != 4 && len != 16)
            return fail(err, "an IP subjectAltName of %zu bytes (IPv4 has "
                             "4, IPv6 16)",
                        len);
        return 1;
    case GEN_OTHERNAME:
        return fail(err, "an otherName subjectAltName: only DNS, IP, email "
                         "and URI names are issued");
    case GEN_DIRNAME:
        return fail(err, "a directoryName subjectAltName: only DNS, IP, "
                         "email and URI names are issued");
    default:
        return fail(err, "a subjectAltName of type %d (x400, EDI party or "
                         "registeredID): only DNS, IP, email and URI names "
                         "are issued",
                    gen->type);
    }
    d = ASN1_STRING_get0_data(str);
    len = (size_t)ASN1_STRING_length(str);
    if (memchr(d, '\0', len) != NULL)
        return fail(err, "a subjectAltName holds a NUL byte (\"%s\"): a name "
                         "that hides another is refused",
                    shown(d, len, show, sizeof(show)));
    if (gen->type == GEN_DNS)
        return check_dns(d, len, flags, "DNS:", err);
    if (gen->type == GEN_EMAIL)
        return check_email(d, len, err);
    return check_uri(d, len, err);
}

int x509u_check_sans(const GENERAL_NAMES *sans, unsigned flags,
                     X509U_ERR *err)
{
    int i, j, n = sk_GENERAL_NAME_num(sans);

    if (n <= 0)
        return fail(err, "the subjectAltName extension holds no name");
    if (n > X509U_MAX_SANS)
        return fail(err, "%d subjectAltNames: at most %d are issued", n,
                    X509U_MAX_SANS);
    for (i = 0; i < n; i++) {
        if (!check_san(sk_GENERAL_NAME_value(sans, i), flags, err))
            return 0;
        for (j = 0; j < i; j++) {
            if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(sans, i),
                                 sk_GENERAL_NAME_value(sans, j))
                != 0)
                continue;
            return fail(err, "subjectAltName number %d repeats number %d",
                        i + 1, j + 1);
        }
    }
    return 1;
}

/* A GENERAL_NAME of type from the user's text. */
static GENERAL_NAME *make_san(int type, const char *val, X509U_ERR *err)
{
    GENERAL_NAME *gen = GENERAL_NAME_new();
    ASN1_STRING *str = type == GEN_IPADD ? ASN1_OCTET_STRING_new()
                                         : ASN1_IA5STRING_new();
    unsigned char ip[16];
    int iplen = 0;

    if (gen == NULL || str == NULL) {
        fail(err, "out of memory");
        goto err;
    }
    if (type == GEN_IPADD) {
        if (inet_pton(AF_INET, val, ip) == 1) {
            iplen = 4;
        } else if (inet_pton(AF_INET6, val, ip) == 1) {
            iplen = 16;
        } else {
            fail(err, "IP:%s is not an IPv4 or IPv6 address", val);
            goto err;
        }
    }
    if (!(type == GEN_IPADD ? ASN1_STRING_set(str, ip, iplen)
                            : ASN1_STRING_set(str, val, -1))) {
        fail(err, "out of memory");
        goto err;
    }
    GENERAL_NAME_set0_value(gen, type, str);
    return gen;
err:
    ASN1_STRING_free(str);
    GENERAL_NAME_free(gen);
    return NULL;
}

/* The end of the item starting at p: the next comma followed (after
 * blanks) by a type prefix, or the end of the list. */
static const char *san_item_end(const char *p)
{
    const char *c = p, *q;

    while ((c = strchr(c, ',')) != NULL) {
        for (q = c + 1; *q == ' ' || *q == '\t'; q++)
            ;
        if (san_prefix(q) >= 0)
            return c;
        c++;
    }
    return p + strlen(p);
}

GENERAL_NAMES *x509u_parse_sans(const char *list, unsigned flags,
                                X509U_ERR *err)
{
    GENERAL_NAMES *sans = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gen;
    const char *p = list, *end;
    char *item = NULL;
    int ti;

    if (sans == NULL) {
        fail(err, "out of memory");
        return NULL;
    }
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        ti = san_prefix(p);
        end = san_item_end(p);
        if (ti < 0) {
            fail(err, "subjectAltName \"%.*s\" has no type: write DNS:, IP:, "
                      "email: or URI: before each name",
                 (int)(end - p), p);
            goto err;
        }
        p += strlen(san_types[ti].prefix);
        item = OPENSSL_strndup(p, (size_t)(end - p));
        if (item == NULL) {
            fail(err, "out of memory");
            goto err;
        }
        gen = make_san(san_types[ti].type, trim(item), err);
        OPENSSL_free(item);
        if (gen == NULL)
            goto err;
        if (!sk_GENERAL_NAME_push(sans, gen)) {
            GENERAL_NAME_free(gen);
            fail(err, "out of memory");
            goto err;
        }
        p = end;
    }
    if (sk_GENERAL_NAME_num(sans) == 0) {
        fail(err, "the subjectAltName list \"%s\" names nothing", list);
        goto err;
    }
    if (x509u_check_sans(sans, flags, err))
        return sans;
err:
    GENERAL_NAMES_free(sans);
    return NULL;
}

char *x509u_sans_text(const GENERAL_NAMES *sans)
{
    BIO *mem = BIO_new(BIO_s_mem());
    const GENERAL_NAME *gen;
    const unsigned char *d;
    char ip[INET6_ADDRSTRLEN];
    int i, len;

    if (mem == NULL)
        return NULL;
    for (i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        gen = sk_GENERAL_NAME_value(sans, i);
        if (i > 0)
            BIO_puts(mem, ",");
        if (gen->type == GEN_IPADD) {
            d = ASN1_STRING_get0_data(gen->d.ip);
            len = ASN1_STRING_length(gen->d.ip);
            if (inet_ntop(len == 4 ? AF_INET : AF_INET6, d, ip, sizeof(ip))
                == NULL || (len != 4 && len != 16))
                snprintf(ip, sizeof(ip), "?");
            BIO_printf(mem, "IP:%s", ip);
        } else if (gen->type == GEN_DNS || gen->type == GEN_EMAIL
                   || gen->type == GEN_URI) {
            BIO_printf(mem, "%s%.*s",
                       gen->type == GEN_DNS     ? "DNS:"
                       : gen->type == GEN_EMAIL ? "email:"
                                                : "URI:",
                       ASN1_STRING_length(gen->d.ia5),
                       (const char *)ASN1_STRING_get0_data(gen->d.ia5));
        } else {
            BIO_printf(mem, "type%d:?", gen->type);
        }
    }
    return bio_string(mem);
}

GENERAL_NAMES *x509u_cert_sans(X509 *x)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL,
                                           NULL);

    ERR_clear_error();
    return sans;
}

/* --- keys and digests -------------------------------------------------- */

static int ec_group(EVP_PKEY *pk, char *buf, size_t len)
{
    buf[0] = '\0';
    return EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, buf,
                                          len, NULL);
}

int x509u_check_key(EVP_PKEY *pub, X509U_ERR *err)
{
    char group[64];
    int bits;

    if (pub == NULL)
        return fail(err, "no public key");
    if (EVP_PKEY_is_a(pub, "RSA") || EVP_PKEY_is_a(pub, "RSA-PSS")) {
        bits = EVP_PKEY_get_bits(pub);
        if (bits < 2048)
            return fail(err, "an RSA key of %d bits: at least 2048 are "
                             "needed",
                        bits);
        if (bits > 16384)
            return fail(err, "an RSA key of %d bits: at most 16384 are "
                             "taken",
                        bits);
        return 1;
    }
    if (EVP_PKEY_is_a(pub, "EC")) {
        if (!ec_group(pub, group, sizeof(group)))
            return fail(err, "an EC key with explicit curve parameters: "
                             "use P-256, P-384 or P-521");
        if (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0
            && strcmp(group, "secp521r1") != 0)
            return fail(err, "an EC key on curve %s: use P-256, P-384 or "
                             "P-521",
                        group);
        return 1;
    }
    if (EVP_PKEY_is_a(pub, "ED25519") || EVP_PKEY_is_a(pub, "ED448"))
        return 1;
    return fail(err, "a %s key: certificates are made for RSA, EC (P-256, "
                     "P-384, P-521), Ed25519 and Ed448 keys",
                EVP_PKEY_get0_type_name(pub) != NULL
                    ? EVP_PKEY_get0_type_name(pub)
                    : "unknown");
}

EVP_PKEY *x509u_pubkey_copy(EVP_PKEY *pk)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    EVP_PKEY *pub = NULL;
    int len;

    if (pk == NULL)
        return NULL;
    len = i2d_PUBKEY(pk, &der);
    if (len > 0) {
        p = der;
        pub = d2i_PUBKEY_ex(NULL, &p, len, NULL, "provider=default");
    }
    OPENSSL_free(der);
    return pub;
}

int x509u_pick_md(EVP_PKEY *signer, const char *name, const EVP_MD **md,
                  X509U_ERR *err)
{
    char group[64];
    const EVP_MD *m;
    int nid;

    if (EVP_PKEY_is_a(signer, "ED25519") || EVP_PKEY_is_a(signer, "ED448")) {
        if (name != NULL)
            return fail(err, "%s keys sign without a separate digest: drop "
                             "--md",
                        EVP_PKEY_is_a(signer, "ED25519") ? "Ed25519"
                                                         : "Ed448");
        *md = NULL;
        return 1;
    }
    if (name == NULL) {
        m = EVP_sha256();
        if (EVP_PKEY_is_a(signer, "EC") && ec_group(signer, group,
                                                    sizeof(group))) {
            if (strcmp(group, "secp384r1") == 0)
                m = EVP_sha384();
            else if (strcmp(group, "secp521r1") == 0)
                m = EVP_sha512();
        }
        ERR_clear_error();
        *md = m;
        return 1;
    }
    m = EVP_get_digestbyname(name);
    nid = m != NULL ? EVP_MD_get_type(m) : NID_undef;
    if (nid != NID_sha256 && nid != NID_sha384 && nid != NID_sha512)
        return fail(err, "digest \"%s\" is not offered: use sha256, sha384 "
                         "or sha512",
                    name);
    *md = m;
    return 1;
}

int x509u_key_sha256(EVP_PKEY *pub, char out[65])
{
    unsigned char *der = NULL, md[32];
    unsigned int mdlen = 0;
    int len, i, ok = 0;

    len = i2d_PUBKEY(pub, &der);
    if (len > 0 && EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(),
                              NULL)
        && mdlen == sizeof(md)) {
        for (i = 0; i < 32; i++)
            snprintf(out + 2 * i, 3, "%02x", md[i]);
        ok = 1;
    }
    OPENSSL_free(der);
    return ok;
}

/* --- serials ----------------------------------------------------------- */

ASN1_INTEGER *x509u_random_serial(void)
{
    unsigned char buf[16];
    ASN1_INTEGER *serial = NULL;
    BIGNUM *bn = NULL;

    if (RAND_bytes(buf, sizeof(buf)) != 1)
        return NULL;
    /* Positive, and always 16 bytes long. */
    buf[0] = (unsigned char)((buf[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(buf, sizeof(buf), NULL);
    if (bn != NULL)
        serial = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    OPENSSL_cleanse(buf, sizeof(buf));
    return serial;
}

char *x509u_serial_hex(const ASN1_INTEGER *serial)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex = NULL;

    if (bn != NULL)
        hex = BN_bn2hex(bn);
    BN_free(bn);
    return hex;
}

char *x509u_parse_serial(const char *s, X509U_ERR *err)
{
    char digits[96];
    const char *p = s;
    BIGNUM *bn = NULL;
    char *hex = NULL;
    size_t n = 0;

    if (strncasecmp(p, "0x", 2) == 0)
        p += 2;
    for (; *p != '\0'; p++) {
        if (*p == ':')
            continue;
        if (strchr("0123456789abcdefABCDEF", *p) == NULL || n + 1 >= 82) {
            fail(err, "serial \"%s\" is not a hexadecimal number of at most "
                      "40 digits (as p11id ca list prints it)",
                 s);
            return NULL;
        }
        digits[n++] = *p;
    }
    digits[n] = '\0';
    if (n == 0 || BN_hex2bn(&bn, digits) == 0) {
        fail(err, "serial \"%s\" is not a hexadecimal number", s);
        return NULL;
    }
    hex = BN_bn2hex(bn);
    BN_free(bn);
    if (hex == NULL)
        fail(err, "out of memory");
    return hex;
}

/* --- extensions -------------------------------------------------------- */

static X509_EXTENSION *key_usage_ext(const int *bits, size_t n)
{
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    X509_EXTENSION *ext = NULL;
    size_t i;

    for (i = 0; ku != NULL && i < n; i++)
        if (!ASN1_BIT_STRING_set_bit(ku, bits[i], 1))
            goto done;
    if (ku != NULL)
        ext = X509V3_EXT_i2d(NID_key_usage, 1, ku);
done:
    ASN1_BIT_STRING_free(ku);
    return ext;
}

static X509_EXTENSION *basic_constraints_ext(bool ca)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    X509_EXTENSION *ext = NULL;

    if (bc == NULL)
        return NULL;
    bc->ca = ca ? 0xff : 0;
    if (ca) {
        bc->pathlen = ASN1_INTEGER_new();
        if (bc->pathlen == NULL || !ASN1_INTEGER_set(bc->pathlen, 0))
            goto done;
    }
    ext = X509V3_EXT_i2d(NID_basic_constraints, 1, bc);
done:
    BASIC_CONSTRAINTS_free(bc);
    return ext;
}

static X509_EXTENSION *eku_ext(X509U_USAGE usage)
{
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    X509_EXTENSION *ext = NULL;

    if (eku == NULL)
        return NULL;
    /* OBJ_nid2obj gives static objects: freeing the stack leaves them. */
    if ((usage & X509U_USAGE_SERVER) != 0
        && !sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)))
        goto done;
    if ((usage & X509U_USAGE_CLIENT) != 0
        && !sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)))
        goto done;
    ext = X509V3_EXT_i2d(NID_ext_key_usage, 0, eku);
done:
    EXTENDED_KEY_USAGE_free(eku);
    return ext;
}

/* Pushes ext (taking it); NULL ext (a failed constructor) fails. */
static int push_ext(STACK_OF(X509_EXTENSION) *exts, X509_EXTENSION *ext)
{
    if (ext != NULL && sk_X509_EXTENSION_push(exts, ext))
        return 1;
    X509_EXTENSION_free(ext);
    return 0;
}

STACK_OF(X509_EXTENSION) *x509u_leaf_exts(const X509U_LEAF *leaf)
{
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    int bits[2] = { 0 /* digitalSignature */, 2 /* keyEncipherment */ };
    /* TLS 1.2 RSA key exchange encrypts to a server's RSA key. */
    bool encipher = (leaf->usage & X509U_USAGE_SERVER) != 0
                    && leaf->pub != NULL && EVP_PKEY_is_a(leaf->pub, "RSA");
    X509_EXTENSION *san = NULL;

    if (exts == NULL)
        return NULL;
    if (!push_ext(exts, basic_constraints_ext(false))
        || !push_ext(exts, key_usage_ext(bits, encipher ? 2 : 1))
        || !push_ext(exts, eku_ext(leaf->usage)))
        goto err;
    if (leaf->sans != NULL && sk_GENERAL_NAME_num(leaf->sans) > 0) {
        san = X509V3_EXT_i2d(NID_subject_alt_name, leaf->subject_empty,
                             (void *)leaf->sans);
        if (!push_ext(exts, san))
            goto err;
    }
    return exts;
err:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return NULL;
}

STACK_OF(X509_EXTENSION) *x509u_ca_exts(void)
{
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    int bits[2] = { 5 /* keyCertSign */, 6 /* cRLSign */ };

    if (exts == NULL)
        return NULL;
    if (push_ext(exts, basic_constraints_ext(true))
        && push_ext(exts, key_usage_ext(bits, 2)))
        return exts;
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return NULL;
}

int x509u_add_exts(X509 *x, const STACK_OF(X509_EXTENSION) *exts)
{
    int i;

    for (i = 0; i < sk_X509_EXTENSION_num(exts); i++)
        if (!X509_add_ext(x, sk_X509_EXTENSION_value(exts, i), -1))
            return 0;
    return 1;
}

/* SHA-1 of a key's subjectPublicKey BIT STRING (RFC 5280 4.2.1.2 (1)). */
static ASN1_OCTET_STRING *key_id(X509_PUBKEY *xpk)
{
    const unsigned char *pk = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ASN1_OCTET_STRING *id;
    int pklen = 0;

    if (xpk == NULL || !X509_PUBKEY_get0_param(NULL, &pk, &pklen, NULL, xpk)
        || !EVP_Digest(pk, (size_t)pklen, md, &mdlen, EVP_sha1(), NULL))
        return NULL;
    id = ASN1_OCTET_STRING_new();
    if (id != NULL && !ASN1_OCTET_STRING_set(id, md, (int)mdlen)) {
        ASN1_OCTET_STRING_free(id);
        id = NULL;
    }
    return id;
}

AUTHORITY_KEYID *x509u_akid(X509 *issuer)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();

    if (akid == NULL)
        return NULL;
    akid->keyid = ski != NULL ? ASN1_OCTET_STRING_dup(ski)
                              : key_id(X509_get_X509_PUBKEY(issuer));
    if (akid->keyid == NULL) {
        AUTHORITY_KEYID_free(akid);
        return NULL;
    }
    return akid;
}

int x509u_add_key_ids(X509 *x, X509 *issuer)
{
    ASN1_OCTET_STRING *ski = key_id(X509_get_X509_PUBKEY(x));
    AUTHORITY_KEYID *akid = NULL;
    int ok = 0;

    if (ski == NULL)
        return 0;
    if (issuer != NULL) {
        akid = x509u_akid(issuer);
    } else if ((akid = AUTHORITY_KEYID_new()) != NULL) {
        akid->keyid = ASN1_OCTET_STRING_dup(ski);
    }
    if (akid != NULL && akid->keyid != NULL
        && X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0,
                             X509V3_ADD_REPLACE)
        && X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0,
                             X509V3_ADD_REPLACE))
        ok = 1;
    ASN1_OCTET_STRING_free(ski);
    AUTHORITY_KEYID_free(akid);
    return ok;
}

/* --- requests ---------------------------------------------------------- */

X509_REQ *x509u_make_csr(const X509U_CSR_REQ *r, X509U_ERR *err)
{
    EVP_PKEY *pub = x509u_pubkey_copy(r->signer);
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509_REQ *req = X509_REQ_new();
    X509U_LEAF leaf;
    int ok = 0;

    if (pub == NULL || req == NULL) {
        fail(err, "cannot read the key's public half");
        goto done;
    }
    memset(&leaf, 0, sizeof(leaf));
    leaf.usage = r->usage;
    leaf.pub = pub;
    leaf.sans = r->sans;
    leaf.subject_empty = X509_NAME_entry_count(r->subject) == 0;
    exts = x509u_leaf_exts(&leaf);
    if (exts == NULL || !X509_REQ_set_version(req, 0)
        || !X509_REQ_set_subject_name(req, r->subject)
        || !X509_REQ_set_pubkey(req, pub)
        || !X509_REQ_add_extensions(req, exts)) {
        fail(err, "cannot build the request");
        goto done;
    }
    if (X509_REQ_sign(req, r->signer, r->md) <= 0) {
        snprintf(err->msg, sizeof(err->msg), "the token did not sign the "
                                             "request");
        goto done;
    }
    if (X509_REQ_verify(req, pub) != 1) {
        fail(err, "the request's signature does not verify with the key's "
                  "public half");
        goto done;
    }
    ok = 1;
done:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    EVP_PKEY_free(pub);
    if (!ok) {
        X509_REQ_free(req);
        req = NULL;
    }
    return req;
}

/* Appends "what" to the ignored list, truncating with "...". */
static void note_ignored(X509U_CSR_INFO *info, const char *what)
{
    size_t used = strlen(info->ignored), room = sizeof(info->ignored) - used;

    if (room < 5)
        return;
    if ((size_t)snprintf(info->ignored + used, room, "%s%s",
                         used > 0 ? ", " : "", what)
        >= room)
        memcpy(info->ignored + sizeof(info->ignored) - 4, "...", 4);
}

/* A requested extension that asks for nothing a leaf certificate does not
 * get anyway: CA:FALSE, a keyUsage without certificate or CRL signing, an
 * extendedKeyUsage (the profile decides it), a subjectKeyIdentifier. */
static bool ext_is_plain(X509_EXTENSION *ext)
{
    int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
    BASIC_CONSTRAINTS *bc;
    ASN1_BIT_STRING *ku;
    bool plain = false;

    if (nid == NID_ext_key_usage || nid == NID_subject_key_identifier)
        return true;
    if (nid == NID_basic_constraints) {
        bc = X509V3_EXT_d2i(ext);
        plain = bc != NULL && !bc->ca && bc->pathlen == NULL;
        BASIC_CONSTRAINTS_free(bc);
    } else if (nid == NID_key_usage) {
        ku = X509V3_EXT_d2i(ext);
        plain = ku != NULL && !ASN1_BIT_STRING_get_bit(ku, 5)
                && !ASN1_BIT_STRING_get_bit(ku, 6);
        ASN1_BIT_STRING_free(ku);
    }
    ERR_clear_error();
    return plain;
}

/* Records, by name, a requested extension that asks for more than the CA
 * gives (it is never obeyed either way). */
static void ignore_ext(X509U_CSR_INFO *info, X509_EXTENSION *ext)
{
    ASN1_OBJECT *obj = X509_EXTENSION_get_object(ext);
    BASIC_CONSTRAINTS *bc;
    char name[96], what[128];
    int nid = OBJ_obj2nid(obj);

    if (ext_is_plain(ext))
        return;
    if (nid != NID_undef)
        snprintf(name, sizeof(name), "%s", OBJ_nid2sn(nid));
    else
        OBJ_obj2txt(name, sizeof(name), obj, 1);
    if (nid == NID_basic_constraints) {
        bc = X509V3_EXT_d2i(ext);
        if (bc != NULL && bc->ca)
            snprintf(name, sizeof(name), "basicConstraints CA:TRUE");
        BASIC_CONSTRAINTS_free(bc);
    } else if (nid == NID_key_usage) {
        snprintf(name, sizeof(name), "keyUsage keyCertSign/cRLSign");
    }
    snprintf(what, sizeof(what), "%s%s", name,
             X509_EXTENSION_get_critical(ext) ? " (critical)" : "");
    note_ignored(info, what);
    ERR_clear_error();
}

/* The requested extensions: the subjectAltName taken and checked, the rest
 * only named. */
static int csr_exts(X509_REQ *req, unsigned flags, X509U_CSR_INFO *info,
                    X509U_ERR *err)
{
    STACK_OF(X509_EXTENSION) *exts;
    X509_EXTENSION *ext, *san = NULL;
    int i, nattr = 0, ok = 0;

    for (i = -1; (i = X509_REQ_get_attr_by_NID(req, NID_ext_req, i)) >= 0;)
        nattr++;
    for (i = -1; (i = X509_REQ_get_attr_by_NID(req, NID_ms_ext_req, i)) >= 0;)
        nattr++;
    if (nattr > 1)
        return fail(err, "the CSR has %d extension requests: one is taken",
                    nattr);
    exts = X509_REQ_get_extensions(req);
    if (exts == NULL)
        return fail(err, "the CSR's extension request cannot be decoded");
    for (i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
        ext = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(ext))
            != NID_subject_alt_name) {
            ignore_ext(info, ext);
        } else if (san != NULL) {
            fail(err, "the CSR asks for two subjectAltName extensions");
            goto done;
        } else {
            san = ext;
        }
    }
    if (san != NULL) {
        info->sans = X509V3_EXT_d2i(san);
        if (info->sans == NULL) {
            fail(err, "the CSR's subjectAltName cannot be decoded");
            goto done;
        }
        if (!x509u_check_sans(info->sans, flags, err))
            goto done;
    }
    ok = 1;
done:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return ok;
}

int x509u_check_csr(X509_REQ *req, unsigned flags, X509U_CSR_INFO *info,
                    X509U_ERR *err)
{
    EVP_PKEY *pub;
    const X509_NAME *subject;

    memset(info, 0, sizeof(*info));
    if (X509_REQ_get_version(req) != 0)
        return fail(err, "the CSR has version %ld: only version 1 requests "
                         "are taken",
                    X509_REQ_get_version(req) + 1);
    pub = X509_REQ_get0_pubkey(req);
    if (pub == NULL)
        return fail(err, "the CSR's public key cannot be read");
    if (X509_REQ_verify(req, pub) != 1)
        return fail(err, "the CSR's signature does not verify: it was "
                         "altered, or not signed by the key it holds; ask "
                         "for a new CSR");
    if (!x509u_check_key(pub, err))
        goto err;
    subject = X509_REQ_get_subject_name(req);
    if (!x509u_check_name(subject, err) || !csr_exts(req, flags, info, err))
        goto err;
    if (X509_NAME_entry_count(subject) == 0 && info->sans == NULL) {
        fail(err, "the CSR names nobody: no subject and no subjectAltName");
        goto err;
    }
    info->subject = X509_NAME_dup(subject);
    info->pub = x509u_pubkey_copy(pub);
    if (info->subject != NULL && info->pub != NULL)
        return 1;
    fail(err, "out of memory");
err:
    x509u_csr_info_clear(info);
    return 0;
}

void x509u_csr_info_clear(X509U_CSR_INFO *info)
{
    X509_NAME_free(info->subject);
    GENERAL_NAMES_free(info->sans);
    EVP_PKEY_free(info->pub);
    memset(info, 0, sizeof(*info));
}

X509 *x509u_leaf_tbs(const X509U_LEAF_TBS *r)
{
    STACK_OF(X509_EXTENSION) *exts;
    X509U_LEAF leaf;
    X509 *x = X509_new();
    int ok;

    memset(&leaf, 0, sizeof(leaf));
    leaf.usage = r->usage;
    leaf.pub = r->info->pub;
    leaf.sans = r->info->sans;
    leaf.subject_empty = X509_NAME_entry_count(r->info->subject) == 0;
    exts = x509u_leaf_exts(&leaf);
    ok = x != NULL && exts != NULL && X509_set_version(x, 2)
         && ASN1_TIME_set(X509_getm_notBefore(x), r->not_before) != NULL
         && ASN1_TIME_set(X509_getm_notAfter(x), r->not_after) != NULL
         && X509_set_serialNumber(x, r->serial)
         && X509_set_issuer_name(x, X509_get_subject_name(r->issuer))
         && X509_set_subject_name(x, r->info->subject)
         && X509_set_pubkey(x, r->info->pub) && x509u_add_exts(x, exts)
         && x509u_add_key_ids(x, r->issuer);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/* --- times ------------------------------------------------------------- */

int x509u_time_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    *out = (int64_t)timegm(&tm);
    return 1;
}

const char *x509u_time_iso(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (gmtime_r(&tt, &tm) == NULL
        || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "?");
    return buf;
}
