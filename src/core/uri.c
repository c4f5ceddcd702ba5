/* uri.c: pkcs11: URIs (RFC 7512): a strict scan of our own, p11-kit's parser
 * for the path attributes, and matching against token, slot and module info.
 *
 * Why the scan comes first: p11-kit 0.24 accepts attributes it does not know
 * (it only sets a flag that makes every match fail, silently), strips
 * whitespace out of values, reads slot-id into a long without an overflow
 * check, and keeps pin-value in memory it frees without wiping. So we check
 * and decode every attribute ourselves, keep the query attributes and the
 * slot-id ourselves, and hand p11-kit a canonical, fully encoded string of
 * the other path attributes. */
#include "core/uri.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <p11-kit/uri.h>

#include "core/err.h"
#include "p11id/p11id.h"

#define URI_MAX_LEN (64 * 1024)
#define URI_SCHEME "pkcs11:"
#define URI_SCHEME_LEN 7
#define CLASS_NONE ((CK_OBJECT_CLASS)-1)
#define VERSION_UNSET 0xff /* p11-kit: major and minor 0xff, not named */
#define MSG_NAME_MAX 40    /* longest name quoted in an error message */

struct p11id_uri_st {
    char *display;           /* the text with pin-value masked */
    CK_INFO module;          /* library-*: p11-kit's layout, unset = zero */
    CK_SLOT_INFO slot;       /* slot-description, slot-manufacturer */
    CK_TOKEN_INFO token;     /* token, manufacturer, model, serial */
    bool has_slot_id;        /* slot-id was given */
    CK_SLOT_ID slot_id;      /* its value (kept by us: see above) */
    CK_OBJECT_CLASS cls;     /* CLASS_NONE when type is absent */
    unsigned char *id;       /* NULL when absent; never NULL when present */
    size_t idlen;            /* may be 0 for a present, empty id */
    char *label;             /* object: NULL when absent */
    char *pin_value;         /* secret: wiped on free; NULL when absent */
    size_t pin_len;          /* its length, for the wipe */
    char *pin_source;        /* a file system path (file: scheme removed) */
    char *module_name;       /* p11-kit registered module name, or NULL */
    char *module_path;       /* module file, or NULL */
};

enum attr_id {
    A_TOKEN,
    A_MANUFACTURER,
    A_MODEL,
    A_SERIAL,
    A_SLOT_DESCRIPTION,
    A_SLOT_MANUFACTURER,
    A_SLOT_ID,
    A_LIBRARY_DESCRIPTION,
    A_LIBRARY_MANUFACTURER,
    A_LIBRARY_VERSION,
    A_ID,
    A_OBJECT,
    A_TYPE,
    A_PIN_SOURCE,
    A_PIN_VALUE,
    A_MODULE_NAME,
    A_MODULE_PATH,
    A_COUNT
};

#define IN_PATH 0x1u
#define IN_QUERY 0x2u

enum value_kind {
    V_TEXT,       /* text for a space-padded CK_*_INFO field */
    V_LABEL,      /* CKA_LABEL */
    V_ID,         /* CKA_ID: any bytes */
    V_TYPE,       /* an object class by name */
    V_SLOT_ID,    /* a decimal CK_SLOT_ID */
    V_VERSION,    /* "major" or "major.minor" */
    V_PIN,        /* pin-value: a secret, never printed */
    V_PIN_SOURCE, /* a path or a file: URI */
    V_STRING      /* module-name, module-path */
};

struct attr_def {
    const char *name;
    unsigned int where;   /* IN_PATH and/or IN_QUERY */
    enum value_kind kind;
    size_t maxlen;        /* V_TEXT: size of the CK_*_INFO field */
    bool to_p11kit;       /* goes into the string p11-kit parses */
};

#define FIELD_SIZE(type, field) sizeof(((type *)NULL)->field)

/* Indexed by enum attr_id; also the order of the list in error messages.
 * pin-source and pin-value are accepted in the path too, as p11-kit and
 * older tools (RFC 7512 drafts) put them there. */
static const struct attr_def attr_defs[A_COUNT] = {
    { "token", IN_PATH, V_TEXT, FIELD_SIZE(CK_TOKEN_INFO, label), true },
    { "manufacturer", IN_PATH, V_TEXT,
      FIELD_SIZE(CK_TOKEN_INFO, manufacturerID), true },
    { "model", IN_PATH, V_TEXT, FIELD_SIZE(CK_TOKEN_INFO, model), true },
    { "serial", IN_PATH, V_TEXT, FIELD_SIZE(CK_TOKEN_INFO, serialNumber),
      true },
    { "slot-description", IN_PATH, V_TEXT,
      FIELD_SIZE(CK_SLOT_INFO, slotDescription), true },
    { "slot-manufacturer", IN_PATH, V_TEXT,
      FIELD_SIZE(CK_SLOT_INFO, manufacturerID), true },
    { "slot-id", IN_PATH, V_SLOT_ID, 0, false },
    { "library-description", IN_PATH, V_TEXT,
      FIELD_SIZE(CK_INFO, libraryDescription), true },
    { "library-manufacturer", IN_PATH, V_TEXT,
      FIELD_SIZE(CK_INFO, manufacturerID), true },
    { "library-version", IN_PATH, V_VERSION, 0, true },
    { "id", IN_PATH, V_ID, 0, true },
    { "object", IN_PATH, V_LABEL, 0, true },
    { "type", IN_PATH, V_TYPE, 0, true },
    { "pin-source", IN_PATH | IN_QUERY, V_PIN_SOURCE, 0, false },
    { "pin-value", IN_PATH | IN_QUERY, V_PIN, 0, false },
    { "module-name", IN_QUERY, V_STRING, 0, false },
    { "module-path", IN_QUERY, V_STRING, 0, false },
};

/* Names people write by habit (other tools, RFC drafts): a hint, not a
 * synonym, so a URI means the same everywhere. */
static const struct {
    const char *name;
    const char *instead;
} attr_hints[] = {
    { "object-type", "type" }, { "objecttype", "type" },
    { "pinfile", "pin-source" }, { "label", "object" },
    { "slot", "slot-id" },
};

/* The type values and their classes. */
static const struct {
    const char *name;
    CK_OBJECT_CLASS cls;
} type_names[] = {
    { "private", CKO_PRIVATE_KEY }, { "public", CKO_PUBLIC_KEY },
    { "cert", CKO_CERTIFICATE },    { "secret-key", CKO_SECRET_KEY },
    { "data", CKO_DATA },
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* One decoded attribute value, NUL-terminated (len excludes the NUL). */
struct value {
    unsigned char *buf;   /* NULL: the attribute is absent */
    size_t len;           /* decoded bytes, without the NUL */
};

/* State of one parse. */
struct scan {
    struct value vals[A_COUNT]; /* decoded values (owned, wiped on free) */
    size_t pin_off;             /* raw pin-value in the input, for display */
    size_t pin_rawlen;          /* its length there, still encoded */
};

static void scan_clear(struct scan *sc)
{
    size_t i;

    for (i = 0; i < A_COUNT; i++) {
        if (sc->vals[i].buf != NULL) {
            OPENSSL_cleanse(sc->vals[i].buf, sc->vals[i].len);
            free(sc->vals[i].buf);
        }
        sc->vals[i].buf = NULL;
    }
}

/* Copies a name from the input into out for an error message: non-printable
 * bytes become '?', long names are cut, so the message stays one short line. */
static void msg_name(char *out, size_t outsz, const char *s, size_t n)
{
    size_t i;
    size_t max = n;

    if (max > MSG_NAME_MAX)
        max = MSG_NAME_MAX;
    if (max > outsz - 4)
        max = outsz - 4;
    for (i = 0; i < max; i++) {
        unsigned char c = (unsigned char)s[i];

        out[i] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
    }
    if (max < n) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

static int attr_lookup(const char *name, size_t n)
{
    int i;

    /* RFC 7512's grammar is ABNF, whose literals are case-insensitive. */
    for (i = 0; i < A_COUNT; i++) {
        if (strlen(attr_defs[i].name) == n
            && strncasecmp(attr_defs[i].name, name, n) == 0)
            return i;
    }
    return -1;
}

static void raise_unknown(const char *name, size_t n)
{
    char shown[MSG_NAME_MAX + 4];
    char known[400];
    const char *hint = NULL;
    size_t i;
    size_t off = 0;

    msg_name(shown, sizeof(shown), name, n);
    if (n >= 2 && strncasecmp(name, "x-", 2) == 0) {
        p11id_raise(P11ID_R_URI_UNKNOWN_ATTRIBUTE,
                    "vendor attribute \"%s\" in pkcs11: URI is not supported",
                    shown);
        return;
    }
    known[0] = '\0';
    for (i = 0; i < A_COUNT; i++) {
        int w = snprintf(known + off, sizeof(known) - off, "%s%s",
                         i == 0 ? "" : ", ", attr_defs[i].name);

        if (w < 0 || (size_t)w >= sizeof(known) - off)
            break;
        off += (size_t)w;
    }
    for (i = 0; i < N_ELEMS(attr_hints); i++) {
        if (strlen(attr_hints[i].name) == n
            && strncasecmp(attr_hints[i].name, name, n) == 0)
            hint = attr_hints[i].instead;
    }
    if (hint != NULL)
        p11id_raise(P11ID_R_URI_UNKNOWN_ATTRIBUTE,
                    "unknown attribute \"%s\" in pkcs11: URI: did you mean "
                    "\"%s\"? (known: %s)",
                    shown, hint, known);
    else
        p11id_raise(P11ID_R_URI_UNKNOWN_ATTRIBUTE,
                    "unknown attribute \"%s\" in pkcs11: URI (known: %s)",
                    shown, known);
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the raw value s[0..n) of attribute a into v. Literal spaces are
 * kept (people type "token=My Token"; p11-kit would drop the space). */
static CK_RV decode_value(int a, const char *s, size_t n, struct value *v)
{
    const char *name = attr_defs[a].name;
    unsigned char *buf;
    size_t i;
    size_t len = 0;

    buf = malloc(n + 1);
    if (buf == NULL) {
        p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory parsing a URI");
        return CKR_HOST_MEMORY;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int hi, lo;

        if (c < 0x20 || c == 0x7f) {
            p11id_raise(P11ID_R_URI_INVALID,
                        "control character in attribute \"%s\" of pkcs11: "
                        "URI (write it percent-encoded)", name);
            goto err;
        }
        if (c != '%') {
            buf[len++] = c;
            continue;
        }
        hi = -1;
        lo = -1;
        if (i + 2 < n) {
            hi = hex_value((unsigned char)s[i + 1]);
            lo = hex_value((unsigned char)s[i + 2]);
        }
        if (hi < 0 || lo < 0) {
            p11id_raise(P11ID_R_URI_INVALID,
                        "bad percent-encoding in attribute \"%s\" of pkcs11: "
                        "URI ('%%' must be followed by two hex digits)", name);
            goto err;
        }
        buf[len++] = (unsigned char)(hi << 4 | lo);
        i += 2;
    }
    buf[len] = '\0';
    v->buf = buf;
    v->len = len;
    return CKR_OK;
err:
    OPENSSL_cleanse(buf, n + 1);
    free(buf);
    return CKR_ARGUMENTS_BAD;
}

static bool has_nul(const struct value *v)
{
    return memchr(v->buf, '\0', v->len) != NULL;
}

/* A decimal number of 1..20 digits, at most max. */
static bool parse_decimal(const unsigned char *s, size_t n, unsigned long max,
                          unsigned long *out)
{
    unsigned long val = 0;
    size_t i;

    if (n == 0)
        return false;
    for (i = 0; i < n; i++) {
        unsigned long d;

        if (s[i] < '0' || s[i] > '9')
            return false;
        d = (unsigned long)(s[i] - '0');
        if (val > (max - d) / 10)
            return false;
        val = val * 10 + d;
    }
    *out = val;
    return true;
}

static CK_RV raise_bad_value(int a, const struct value *v, const char *want)
{
    char shown[MSG_NAME_MAX + 4];

    msg_name(shown, sizeof(shown), (const char *)v->buf, v->len);
    p11id_raise(P11ID_R_URI_INVALID,
                "bad value \"%s\" for attribute \"%s\" in pkcs11: URI (%s)",
                shown, attr_defs[a].name, want);
    return CKR_ARGUMENTS_BAD;
}

static CK_RV check_type(const struct value *v)
{
    size_t i;

    for (i = 0; i < N_ELEMS(type_names); i++) {
        if (strlen(type_names[i].name) == v->len
            && memcmp(type_names[i].name, v->buf, v->len) == 0)
            return CKR_OK;
    }
    return raise_bad_value(A_TYPE, v,
                           "one of: private, public, cert, secret-key, data");
}

static CK_RV check_version(const struct value *v)
{
    const unsigned char *dot = memchr(v->buf, '.', v->len);
    size_t majlen = dot != NULL ? (size_t)(dot - v->buf) : v->len;
    unsigned long num;

    /* p11-kit keeps 255.255 for "not named", so it refuses 255. */
    if (!parse_decimal(v->buf, majlen, 254, &num)
        || (dot != NULL
            && !parse_decimal(dot + 1, v->len - majlen - 1, 254, &num)))
        return raise_bad_value(A_LIBRARY_VERSION, v,
                               "major or major.minor, numbers below 255");
    return CKR_OK;
}

/* Length of a URI scheme ("env" in "env:X") at the start of s, 0 if none.
 * One letter is not a scheme, so "C:..." stays a path. */
static size_t scheme_len(const char *s)
{
    size_t i;

    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return 0;
    for (i = 1; s[i] != '\0' && s[i] != ':'; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))
            return 0;
    }
    return (s[i] == ':' && i >= 2) ? i : 0;
}

/* pin-source is a path or a file: URI (file:/p, file:///p,
 * file://localhost/p). Rewrites v to the plain path, which is what the PIN
 * reader opens. Other schemes are refused: a URI from a key file must not
 * make us run programs or read the environment. */
static CK_RV check_pin_source(struct value *v)
{
    char *s = (char *)v->buf;
    const char *path = s;
    size_t n;

    if (v->len == 0 || has_nul(v)) {
        p11id_raise(P11ID_R_URI_INVALID,
                    "attribute \"pin-source\" of pkcs11: URI must name a file");
        return CKR_ARGUMENTS_BAD;
    }
    if (strncasecmp(s, "file:", 5) != 0) {
        n = scheme_len(s);
        if (n == 0)
            return CKR_OK;
        p11id_raise(P11ID_R_URI_INVALID,
                    "attribute \"pin-source\" of pkcs11: URI must be a file "
                    "path or a file: URI, not a \"%.*s:\" URI",
                    (int)(n > MSG_NAME_MAX ? MSG_NAME_MAX : n), s);
        return CKR_ARGUMENTS_BAD;
    }
    path = s + 5;
    if (strncmp(path, "//", 2) == 0) {
        const char *host = path + 2;
        const char *slash = strchr(host, '/');

        n = slash != NULL ? (size_t)(slash - host) : strlen(host);
        if (n != 0 && !(n == 9 && strncasecmp(host, "localhost", 9) == 0))
            path = "";
        else
            path = slash != NULL ? slash : "";
    }
    if (path[0] != '/') {
        p11id_raise(P11ID_R_URI_INVALID,
                    "attribute \"pin-source\" of pkcs11: URI: a file: URI "
                    "must name an absolute path on this host");
        return CKR_ARGUMENTS_BAD;
    }
    n = strlen(path);
    memmove(s, path, n + 1);
    v->len = n;
    return CKR_OK;
}

/* Checks a decoded value against what its attribute allows. */
static CK_RV check_value(int a, struct value *v)
{
    const struct attr_def *d = &attr_defs[a];
    unsigned long num;

    switch (d->kind) {
    case V_ID:
        return CKR_OK;
    case V_TYPE:
        return check_type(v);
    case V_VERSION:
        return check_version(v);
    case V_PIN_SOURCE:
        return check_pin_source(v);
    case V_SLOT_ID:
        if (!parse_decimal(v->buf, v->len, (unsigned long)-1, &num))
            return raise_bad_value(a, v, "a decimal number");
        return CKR_OK;
    case V_TEXT:
    case V_LABEL:
    case V_PIN:
    case V_STRING:
        break;
    }
    /* Text: PKCS#11 strings and our C strings cannot hold a NUL. */
    if (has_nul(v)) {
        p11id_raise(P11ID_R_URI_INVALID,
                    "attribute \"%s\" of pkcs11: URI contains a NUL byte "
                    "(%%00)", d->name);
        return CKR_ARGUMENTS_BAD;
    }
    if (d->kind == V_STRING && v->len == 0) {
        p11id_raise(P11ID_R_URI_INVALID,
                    "attribute \"%s\" of pkcs11: URI is empty", d->name);
        return CKR_ARGUMENTS_BAD;
    }
    if (d->kind == V_TEXT && v->len > d->maxlen) {
        p11id_raise(P11ID_R_URI_INVALID,
                    "attribute \"%s\" of pkcs11: URI is %zu bytes long, but "
                    "PKCS#11 allows at most %zu: it can match nothing",
                    d->name, v->len, d->maxlen);
        return CKR_ARGUMENTS_BAD;
    }
    return CKR_OK;
}

/* One attribute: str[off..off+n), "name=value". */
static CK_RV scan_attr(struct scan *sc, const char *str, size_t off, size_t n,
                       unsigned int where)
{
    const char *seg = str + off;
    const char *eq = memchr(seg, '=', n);
    size_t namelen = eq != NULL ? (size_t)(eq - seg) : n;
    int a = attr_lookup(seg, namelen);
    CK_RV rv;

    if (eq == NULL && a >= 0) {
        p11id_raise(P11ID_R_URI_INVALID,
                    "attribute \"%s\" has no '=' in pkcs11: URI",
                    attr_defs[a].name);
        return CKR_ARGUMENTS_BAD;
    }
    if (eq == NULL || namelen == 0) {
        /* Not a name we know: it may be a PIN typed in the wrong place, so
         * say where it is, not what it is. */
        p11id_raise(P11ID_R_URI_INVALID,
                    "pkcs11: URI has an attribute without %s (character %zu)",
                    eq == NULL ? "'='" : "a name", off + 1);
        return CKR_ARGUMENTS_BAD;
    }
    if (a < 0) {
        raise_unknown(seg, namelen);
        return CKR_ARGUMENTS_BAD;
    }
    if ((attr_defs[a].where & where) == 0) {
        p11id_raise(P11ID_R_URI_INVALID,
                    "attribute \"%s\" belongs in the %s of a pkcs11: URI",
                    attr_defs[a].name,
                    where == IN_PATH ? "query (after '?')"
                                     : "path (before '?')");
        return CKR_ARGUMENTS_BAD;
    }
    if (sc->vals[a].buf != NULL) {
        p11id_raise(P11ID_R_URI_INVALID,
                    "duplicate attribute \"%s\" in pkcs11: URI",
                    attr_defs[a].name);
        return CKR_ARGUMENTS_BAD;
    }
    rv = decode_value(a, eq + 1, n - namelen - 1, &sc->vals[a]);
    if (rv != CKR_OK)
        return rv;
    if (a == A_PIN_VALUE) {
        sc->pin_off = off + namelen + 1;
        sc->pin_rawlen = n - namelen - 1;
    }
    return check_value(a, &sc->vals[a]);
}

/* The attributes in str[start..end), separated by sep. */
static CK_RV scan_part(struct scan *sc, const char *str, size_t start,
                       size_t end, char sep, unsigned int where)
{
    size_t pos = start;
    CK_RV rv;

    if (start == end)
        return CKR_OK;
    for (;;) {
        const char *p = memchr(str + pos, sep, end - pos);
        size_t segend = p != NULL ? (size_t)(p - str) : end;

        if (segend == pos) {
            p11id_raise(P11ID_R_URI_INVALID,
                        "empty attribute in pkcs11: URI (character %zu: "
                        "'%c' doubled, or at the start or end of the %s)",
                        pos + 1, sep, where == IN_PATH ? "path" : "query");
            return CKR_ARGUMENTS_BAD;
        }
        rv = scan_attr(sc, str, pos, segend - pos, where);
        if (rv != CKR_OK)
            return rv;
        if (p == NULL)
            return CKR_OK;
        pos = segend + 1;
    }
}

/* A string that grows; failed says an allocation failed along the way. */
struct sbuf {
    char *p;        /* NUL-terminated once anything was added */
    size_t len;     /* bytes used, without the NUL */
    size_t cap;     /* bytes allocated */
    bool failed;    /* an allocation failed: p is incomplete */
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 128 : b->cap;
        char *p;

        while (cap < b->len + n + 1)
            cap *= 2;
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
           || c == '~';
}

/* Adds ";name=value" (no ';' right after the scheme), value percent-encoded:
 * every byte when all is true (ids are bytes, not text), else every byte
 * outside RFC 3986's unreserved set. */
static void sb_attr(struct sbuf *b, const char *name, const unsigned char *v,
                    size_t n, bool all)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    if (b->len > URI_SCHEME_LEN)
        sb_add(b, ";", 1);
    sb_add(b, name, strlen(name));
    sb_add(b, "=", 1);
    for (i = 0; i < n; i++) {
        char enc[3];

        if (!all && is_unreserved(v[i])) {
            sb_add(b, (const char *)&v[i], 1);
            continue;
        }
        enc[0] = '%';
        enc[1] = hex[v[i] >> 4];
        enc[2] = hex[v[i] & 0x0f];
        sb_add(b, enc, 3);
    }
}

/* A copy of an attribute's bytes with a NUL after them: never NULL for a
 * present attribute, even an empty one. */
static void *copy_attr(const CK_ATTRIBUTE *attr)
{
    unsigned char *p = calloc(1, attr->ulValueLen + 1);

    if (p != NULL && attr->ulValueLen > 0)
        memcpy(p, attr->pValue, attr->ulValueLen);
    return p;
}

/* Copies what p11-kit parsed into uri. */
static CK_RV copy_from_p11kit(P11KitUri *pk, P11ID_URI *uri)
{
    CK_ATTRIBUTE *attr;

    uri->module = *p11_kit_uri_get_module_info(pk);
    uri->slot = *p11_kit_uri_get_slot_info(pk);
    uri->token = *p11_kit_uri_get_token_info(pk);
    attr = p11_kit_uri_get_attribute(pk, CKA_CLASS);
    if (attr != NULL && attr->pValue != NULL
        && attr->ulValueLen == sizeof(CK_OBJECT_CLASS))
        memcpy(&uri->cls, attr->pValue, sizeof(CK_OBJECT_CLASS));
    attr = p11_kit_uri_get_attribute(pk, CKA_ID);
    if (attr != NULL) {
        uri->id = copy_attr(attr);
        if (uri->id == NULL)
            goto oom;
        uri->idlen = attr->ulValueLen;
    }
    attr = p11_kit_uri_get_attribute(pk, CKA_LABEL);
    if (attr != NULL) {
        uri->label = copy_attr(attr);
        if (uri->label == NULL)
            goto oom;
    }
    return CKR_OK;
oom:
    p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory parsing a URI");
    return CKR_HOST_MEMORY;
}

/* Has p11-kit parse the path attributes it understands, from a canonical
 * string: every value fully percent-encoded, no pin-value, no slot-id. */
static CK_RV p11kit_parse(const struct scan *sc, P11ID_URI *uri)
{
    struct sbuf b = { NULL, 0, 0, false };
    P11KitUri *pk = NULL;
    CK_RV rv = CKR_ARGUMENTS_BAD;
    int i, ret;

    sb_add(&b, URI_SCHEME, URI_SCHEME_LEN);
    for (i = 0; i < A_COUNT; i++) {
        if (attr_defs[i].to_p11kit && sc->vals[i].buf != NULL)
            sb_attr(&b, attr_defs[i].name, sc->vals[i].buf, sc->vals[i].len,
                    false);
    }
    if (!b.failed)
        pk = p11_kit_uri_new();
    if (pk == NULL) {
        p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory parsing a URI");
        rv = CKR_HOST_MEMORY;
        goto done;
    }
    ret = p11_kit_uri_parse(b.p, P11_KIT_URI_FOR_ANY, pk);
    if (ret != P11_KIT_URI_OK) {
        p11id_raise(P11ID_R_URI_INVALID, "pkcs11: URI refused by p11-kit: %s",
                    p11_kit_uri_message(ret));
        goto done;
    }
    if (p11_kit_uri_any_unrecognized(pk)) {
        /* The scan refuses whatever p11-kit would not recognise. */
        p11id_raise(P11ID_R_URI_INVALID,
                    "p11-kit did not recognise part of the pkcs11: URI");
        goto done;
    }
    rv = copy_from_p11kit(pk, uri);
done:
    p11_kit_uri_free(pk);
    free(b.p);
    return rv;
}

/* Moves the attributes we keep ourselves from the scan into uri. */
static void take_own(struct scan *sc, P11ID_URI *uri)
{
    struct value *v = &sc->vals[A_SLOT_ID];
    unsigned long num;

    if (v->buf != NULL && parse_decimal(v->buf, v->len, (unsigned long)-1,
                                        &num)) {
        uri->has_slot_id = true;
        uri->slot_id = num;
    }
    uri->pin_value = (char *)sc->vals[A_PIN_VALUE].buf;
    uri->pin_len = sc->vals[A_PIN_VALUE].len;
    uri->pin_source = (char *)sc->vals[A_PIN_SOURCE].buf;
    uri->module_name = (char *)sc->vals[A_MODULE_NAME].buf;
    uri->module_path = (char *)sc->vals[A_MODULE_PATH].buf;
    sc->vals[A_PIN_VALUE].buf = NULL;
    sc->vals[A_PIN_SOURCE].buf = NULL;
    sc->vals[A_MODULE_NAME].buf = NULL;
    sc->vals[A_MODULE_PATH].buf = NULL;
}

/* The input with pin-value's value replaced by "***". Called before
 * take_own, which moves the PIN out of the scan. */
static char *make_display(const char *str, size_t len, const struct scan *sc)
{
    struct sbuf b = { NULL, 0, 0, false };

    if (sc->vals[A_PIN_VALUE].buf == NULL) {
        sb_add(&b, str, len);
    } else {
        sb_add(&b, str, sc->pin_off);
        sb_add(&b, "***", 3);
        sb_add(&b, str + sc->pin_off + sc->pin_rawlen,
               len - sc->pin_off - sc->pin_rawlen);
    }
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

CK_RV p11id_uri_parse(const char *str, P11ID_URI **out)
{
    struct scan sc;
    P11ID_URI *uri = NULL;
    const char *q;
    size_t len, qoff;
    CK_RV rv;

    memset(&sc, 0, sizeof(sc));
    if (str == NULL || out == NULL) {
        p11id_raise(P11ID_R_BAD_PARAMETER, "no pkcs11: URI given");
        return CKR_ARGUMENTS_BAD;
    }
    len = strnlen(str, URI_MAX_LEN + 1);
    if (len > URI_MAX_LEN) {
        p11id_raise(P11ID_R_URI_INVALID, "pkcs11: URI longer than 64 KiB");
        return CKR_ARGUMENTS_BAD;
    }
    if (len < URI_SCHEME_LEN
        || strncasecmp(str, URI_SCHEME, URI_SCHEME_LEN) != 0) {
        p11id_raise(P11ID_R_URI_INVALID,
                    "not a pkcs11: URI (it must start with \"pkcs11:\")");
        return CKR_ARGUMENTS_BAD;
    }
    q = memchr(str, '?', len);
    qoff = q != NULL ? (size_t)(q - str) : len;
    rv = scan_part(&sc, str, URI_SCHEME_LEN, qoff, ';', IN_PATH);
    if (rv == CKR_OK && q != NULL)
        rv = scan_part(&sc, str, qoff + 1, len, '&', IN_QUERY);
    if (rv != CKR_OK)
        goto done;
    rv = CKR_HOST_MEMORY;
    uri = calloc(1, sizeof(*uri));
    if (uri == NULL) {
        p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory parsing a URI");
        goto done;
    }
    uri->cls = CLASS_NONE;
    rv = p11kit_parse(&sc, uri);
    if (rv != CKR_OK)
        goto done;
    uri->display = make_display(str, len, &sc);
    if (uri->display == NULL) {
        p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory parsing a URI");
        rv = CKR_HOST_MEMORY;
        goto done;
    }
    take_own(&sc, uri);
    *out = uri;
    uri = NULL;
done:
    p11id_uri_free(uri);
    scan_clear(&sc);
    return rv;
}

void p11id_uri_free(P11ID_URI *uri)
{
    if (uri == NULL)
        return;
    if (uri->pin_value != NULL) {
        OPENSSL_cleanse(uri->pin_value, uri->pin_len);
        free(uri->pin_value);
    }
    free(uri->display);
    free(uri->id);
    free(uri->label);
    free(uri->pin_source);
    free(uri->module_name);
    free(uri->module_path);
    free(uri);
}

/* A NULL uri names nothing: the getters say "absent", the matches say yes. */

const char *p11id_uri_get0_display(const P11ID_URI *uri)
{
    return uri != NULL ? uri->display : NULL;
}

const char *p11id_uri_get0_module_path(const P11ID_URI *uri)
{
    return uri != NULL ? uri->module_path : NULL;
}

const char *p11id_uri_get0_module_name(const P11ID_URI *uri)
{
    return uri != NULL ? uri->module_name : NULL;
}

const char *p11id_uri_get0_pin_value(const P11ID_URI *uri)
{
    return uri != NULL ? uri->pin_value : NULL;
}

const char *p11id_uri_get0_pin_source(const P11ID_URI *uri)
{
    return uri != NULL ? uri->pin_source : NULL;
}

CK_OBJECT_CLASS p11id_uri_get_class(const P11ID_URI *uri)
{
    return uri != NULL ? uri->cls : CLASS_NONE;
}

const unsigned char *p11id_uri_get0_id(const P11ID_URI *uri, size_t *idlen)
{
    if (idlen != NULL)
        *idlen = (uri != NULL && uri->id != NULL) ? uri->idlen : 0;
    return uri != NULL ? uri->id : NULL;
}

const char *p11id_uri_get0_label(const P11ID_URI *uri)
{
    return uri != NULL ? uri->label : NULL;
}

const CK_TOKEN_INFO *p11id_uri_get0_token_info(const P11ID_URI *uri)
{
    return uri != NULL ? &uri->token : NULL;
}

bool p11id_uri_has_object_attrs(const P11ID_URI *uri)
{
    return uri != NULL
           && (uri->id != NULL || uri->label != NULL || uri->cls != CLASS_NONE);
}

/* Length of a PKCS#11 string field without its padding. The standard pads
 * with spaces; some tokens end the text with a NUL and leave junk after it. */
static size_t field_len(const unsigned char *field, size_t n)
{
    const unsigned char *nul = memchr(field, '\0', n);

    if (nul != NULL)
        n = (size_t)(nul - field);
    while (n > 0 && field[n - 1] == ' ')
        n--;
    return n;
}

/* inuri is p11-kit's copy of a URI value: all zero when the URI does not name
 * the field, space-padded text (maybe all spaces) when it does. */
static bool field_match(const unsigned char *inuri, const unsigned char *real,
                        size_t n)
{
    size_t a, b;

    if (inuri[0] == '\0')
        return true;
    if (real == NULL)
        return false;
    a = field_len(inuri, n);
    b = field_len(real, n);
    return a == b && memcmp(inuri, real, a) == 0;
}

#define MATCH_FIELD(uri_struct, info, field)                                   \
    field_match((uri_struct).field, (info) != NULL ? (info)->field : NULL,     \
                sizeof((uri_struct).field))

bool p11id_uri_match_module(const P11ID_URI *uri, const CK_INFO *info)
{
    const CK_VERSION *v;

    if (uri == NULL)
        return true;
    v = &uri->module.libraryVersion;
    if (!(v->major == VERSION_UNSET && v->minor == VERSION_UNSET)
        && (info == NULL || info->libraryVersion.major != v->major
            || info->libraryVersion.minor != v->minor))
        return false;
    return MATCH_FIELD(uri->module, info, libraryDescription)
           && MATCH_FIELD(uri->module, info, manufacturerID);
}

bool p11id_uri_match_slot(const P11ID_URI *uri, CK_SLOT_ID slot,
                          const CK_SLOT_INFO *info)
{
    if (uri == NULL)
        return true;
    if (uri->has_slot_id && uri->slot_id != slot)
        return false;
    return MATCH_FIELD(uri->slot, info, slotDescription)
           && MATCH_FIELD(uri->slot, info, manufacturerID);
}

bool p11id_uri_match_token(const P11ID_URI *uri, const CK_TOKEN_INFO *info)
{
    if (uri == NULL)
        return true;
    return MATCH_FIELD(uri->token, info, label)
           && MATCH_FIELD(uri->token, info, manufacturerID)
           && MATCH_FIELD(uri->token, info, model)
           && MATCH_FIELD(uri->token, info, serialNumber);
}

bool p11id_uri_names_slot(const P11ID_URI *uri)
{
    return uri != NULL
           && (uri->has_slot_id || uri->slot.slotDescription[0] != 0
               || uri->slot.manufacturerID[0] != 0);
}

/* Adds a token string field, trimmed; an empty one is left out (it would
 * only make the URI longer, not more precise). */
static void sb_field(struct sbuf *b, const char *name,
                     const unsigned char *field, size_t n)
{
    size_t len = field_len(field, n);

    if (len > 0)
        sb_attr(b, name, field, len, false);
}

static void sb_token(struct sbuf *b, const CK_TOKEN_INFO *ti)
{
    if (ti == NULL)
        return;
    sb_field(b, "token", ti->label, sizeof(ti->label));
    sb_field(b, "manufacturer", ti->manufacturerID,
             sizeof(ti->manufacturerID));
    sb_field(b, "model", ti->model, sizeof(ti->model));
    sb_field(b, "serial", ti->serialNumber, sizeof(ti->serialNumber));
}

static char *sb_finish(struct sbuf *b)
{
    if (!b->failed)
        return b->p;
    free(b->p);
    p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory formatting a URI");
    return NULL;
}

char *p11id_uri_format_object(const CK_TOKEN_INFO *ti, CK_OBJECT_CLASS cls,
                              const unsigned char *id, size_t idlen,
                              const char *label)
{
    struct sbuf b = { NULL, 0, 0, false };
    size_t i;

    sb_add(&b, URI_SCHEME, URI_SCHEME_LEN);
    sb_token(&b, ti);
    if (label != NULL && label[0] != '\0')
        sb_attr(&b, "object", (const unsigned char *)label, strlen(label),
                false);
    if (id != NULL && idlen > 0)
        sb_attr(&b, "id", id, idlen, true);
    for (i = 0; i < N_ELEMS(type_names); i++) {
        if (type_names[i].cls == cls)
            sb_attr(&b, "type", (const unsigned char *)type_names[i].name,
                    strlen(type_names[i].name), false);
    }
    return sb_finish(&b);
}

char *p11id_uri_format_token(const CK_TOKEN_INFO *ti)
{
    struct sbuf b = { NULL, 0, 0, false };

    sb_add(&b, URI_SCHEME, URI_SCHEME_LEN);
    sb_token(&b, ti);
    return sb_finish(&b);
}

void p11id_trim_copy(char *out, const unsigned char *field, size_t len)
{
    size_t n;

    if (out == NULL)
        return;
    n = field != NULL ? field_len(field, len) : 0;
    if (n > 0)
        memcpy(out, field, n);
    out[n] = '\0';
}
