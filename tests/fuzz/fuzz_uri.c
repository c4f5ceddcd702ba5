/* fuzz_uri.c: the pkcs11: URI parser, matcher and formatter (src/core/uri.c).
 *
 * Each input is used twice:
 * 1. as a URI (up to its first NUL byte): parse; a refusal raises an error
 *    and leaves the output alone; an accepted URI matches the token
 *    attributes it names itself, is matched against fixed module, slot and
 *    token infos, and formats back (p11id_uri_format_object) into a URI
 *    that parses to the same token fields, type, id and label;
 * 2. as raw token fields, a type, an id and a label: the formatted URI must
 *    parse and match that token, type, id and label (whatever bytes they
 *    hold), and so must the token-only URI. */
#include <stdbool.h>
#include <string.h>

#include "core/err.h"
#include "core/uri.h"
#include "fuzz.h"

#define URI_LIMIT (64 * 1024) /* what p11id_uri_parse accepts */

static int n_raised;

static void count_raise(void *arg, int reason, const char *file, int line,
                        const char *func, const char *msg)
{
    (void)arg;
    (void)reason;
    (void)file;
    (void)line;
    (void)func;
    (void)msg;
    n_raised++;
}

static CK_INFO fixed_module;
static CK_SLOT_INFO fixed_slot;
static CK_TOKEN_INFO fixed_token;

static void pad(unsigned char *field, size_t n, const char *text)
{
    memset(field, ' ', n);
    memcpy(field, text, strlen(text) < n ? strlen(text) : n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const P11ID_ERR_SINK sink = { count_raise, NULL, NULL, NULL,
                                         NULL };

    (void)argc;
    (void)argv;
    p11id_err_set_sink(&sink);
    pad(fixed_module.manufacturerID, sizeof(fixed_module.manufacturerID),
        "SoftHSM");
    pad(fixed_module.libraryDescription,
        sizeof(fixed_module.libraryDescription), "Implementation of PKCS11");
    fixed_module.libraryVersion.major = 2;
    fixed_module.libraryVersion.minor = 6;
    pad(fixed_slot.slotDescription, sizeof(fixed_slot.slotDescription),
        "SoftHSM slot ID 0x1");
    pad(fixed_slot.manufacturerID, sizeof(fixed_slot.manufacturerID),
        "SoftHSM project");
    pad(fixed_token.label, sizeof(fixed_token.label), "p11id test");
    pad(fixed_token.manufacturerID, sizeof(fixed_token.manufacturerID),
        "SoftHSM project");
    pad(fixed_token.model, sizeof(fixed_token.model), "SoftHSM v2");
    pad(fixed_token.serialNumber, sizeof(fixed_token.serialNumber),
        "1a2b3c4d5e6f7a8b");
    return 0;
}

/* Length of a token field without padding (spaces, or a NUL and junk). */
static size_t trimmed(const unsigned char *f, size_t n)
{
    const unsigned char *nul = memchr(f, '\0', n);

    if (nul != NULL)
        n = (size_t)(nul - f);
    while (n > 0 && f[n - 1] == ' ')
        n--;
    return n;
}

static bool same_field(const unsigned char *a, const unsigned char *b,
                       size_t n)
{
    size_t la = trimmed(a, n), lb = trimmed(b, n);

    return la == lb && memcmp(a, b, la) == 0;
}

#define SAME_FIELD(a, b, f) same_field((a)->f, (b)->f, sizeof((a)->f))

static bool same_token(const CK_TOKEN_INFO *a, const CK_TOKEN_INFO *b)
{
    return SAME_FIELD(a, b, label) && SAME_FIELD(a, b, manufacturerID)
           && SAME_FIELD(a, b, model) && SAME_FIELD(a, b, serialNumber);
}

/* Parses a URI that p11id itself formatted: it must be accepted (unless
 * longer than any URI is allowed to be). NULL when refused for length. */
static P11ID_URI *parse_ours(const char *s)
{
    P11ID_URI *uri = NULL;

    FUZZ_ASSERT(s != NULL);
    if (strlen(s) > URI_LIMIT)
        return NULL;
    FUZZ_ASSERT(p11id_uri_parse(s, &uri) == CKR_OK);
    FUZZ_ASSERT(uri != NULL);
    return uri;
}

/* The object attributes of got are what was formatted: class, id (an empty
 * one is left out) and label (likewise). */
static void check_object(const P11ID_URI *got, CK_OBJECT_CLASS cls,
                         const unsigned char *id, size_t idlen,
                         const char *label)
{
    const unsigned char *gid;
    const char *glabel = p11id_uri_get0_label(got);
    size_t gidlen = 0;

    FUZZ_ASSERT(p11id_uri_get_class(got) == cls);
    gid = p11id_uri_get0_id(got, &gidlen);
    if (id == NULL || idlen == 0)
        FUZZ_ASSERT(gid == NULL);
    else
        FUZZ_ASSERT(gid != NULL && gidlen == idlen
                    && memcmp(gid, id, idlen) == 0);
    if (label == NULL || label[0] == '\0')
        FUZZ_ASSERT(glabel == NULL);
    else
        FUZZ_ASSERT(glabel != NULL && strcmp(glabel, label) == 0);
}

/* Part 1: the input as a URI. */
static void fuzz_parse(const char *str)
{
    P11ID_URI *uri = NULL, *again;
    const CK_TOKEN_INFO *ti;
    const unsigned char *id;
    const char *label;
    size_t idlen = 0;
    char *formatted;
    CK_RV rv;

    n_raised = 0;
    rv = p11id_uri_parse(str, &uri);
    if (rv != CKR_OK) {
        FUZZ_ASSERT(uri == NULL);
        FUZZ_ASSERT(n_raised > 0);
        return;
    }
    FUZZ_ASSERT(uri != NULL);
    FUZZ_ASSERT(p11id_uri_get0_display(uri) != NULL);
    if (p11id_uri_get0_pin_value(uri) == NULL)
        FUZZ_ASSERT(strcmp(p11id_uri_get0_display(uri), str) == 0);
    else
        FUZZ_ASSERT(strstr(p11id_uri_get0_display(uri), "***") != NULL);
    (void)p11id_uri_get0_module_path(uri);
    (void)p11id_uri_get0_module_name(uri);
    (void)p11id_uri_get0_pin_source(uri);
    (void)p11id_uri_has_object_attrs(uri);
    (void)p11id_uri_match_module(uri, &fixed_module);
    (void)p11id_uri_match_module(uri, NULL);
    (void)p11id_uri_match_slot(uri, 1, &fixed_slot);
    (void)p11id_uri_match_slot(uri, 0, NULL);
    (void)p11id_uri_match_token(uri, &fixed_token);
    (void)p11id_uri_match_token(uri, NULL);

    ti = p11id_uri_get0_token_info(uri);
    FUZZ_ASSERT(ti != NULL);
    FUZZ_ASSERT(p11id_uri_match_token(uri, ti));

    id = p11id_uri_get0_id(uri, &idlen);
    label = p11id_uri_get0_label(uri);
    formatted = p11id_uri_format_object(ti, p11id_uri_get_class(uri), id,
                                        idlen, label);
    again = parse_ours(formatted);
    if (again != NULL) {
        FUZZ_ASSERT(same_token(p11id_uri_get0_token_info(again), ti));
        FUZZ_ASSERT(p11id_uri_match_token(again, ti));
        check_object(again, p11id_uri_get_class(uri), id, idlen, label);
    }
    p11id_uri_free(again);
    free(formatted);
    p11id_uri_free(uri);
}

/* The classes part 2 formats; the last is "no type". */
static const CK_OBJECT_CLASS classes[] = {
    CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE,
    CKO_SECRET_KEY,  CKO_DATA,       (CK_OBJECT_CLASS)-1,
};

/* Part 2: the input as token fields, type, id and label. */
static void fuzz_format(const uint8_t *data, size_t size)
{
    CK_TOKEN_INFO ti;
    unsigned char *fields[] = { ti.label, ti.manufacturerID, ti.model,
                                ti.serialNumber };
    size_t sizes[] = { sizeof(ti.label), sizeof(ti.manufacturerID),
                       sizeof(ti.model), sizeof(ti.serialNumber) };
    size_t i, n, off = 0, idlen = 0;
    CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
    const uint8_t *id = NULL;
    char *label, *s;
    P11ID_URI *uri;

    memset(&ti, 0, sizeof(ti));
    for (i = 0; i < 4; i++) {
        memset(fields[i], ' ', sizes[i]);
        n = size - off < sizes[i] ? size - off : sizes[i];
        memcpy(fields[i], data + off, n);
        off += n;
    }
    if (off < size)
        cls = classes[data[off++] % (sizeof(classes) / sizeof(classes[0]))];
    if (off < size) {
        idlen = data[off++] % 33;
        if (idlen > size - off)
            idlen = size - off;
        id = data + off;
        off += idlen;
    }
    label = strndup((const char *)data + off, size - off);
    FUZZ_ASSERT(label != NULL);

    s = p11id_uri_format_object(&ti, cls, id, idlen, label);
    uri = parse_ours(s);
    if (uri != NULL) {
        FUZZ_ASSERT(p11id_uri_match_token(uri, &ti));
        FUZZ_ASSERT(same_token(p11id_uri_get0_token_info(uri), &ti));
        check_object(uri, cls, id, idlen, label);
    }
    p11id_uri_free(uri);
    free(s);

    s = p11id_uri_format_token(&ti);
    uri = parse_ours(s);
    FUZZ_ASSERT(uri != NULL);
    FUZZ_ASSERT(p11id_uri_match_token(uri, &ti));
    FUZZ_ASSERT(!p11id_uri_has_object_attrs(uri));
    p11id_uri_free(uri);
    free(s);
    free(label);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *str = malloc(size + 1);

    FUZZ_ASSERT(str != NULL);
    memcpy(str, data, size);
    str[size] = '\0';
    fuzz_parse(str);
    free(str);
    fuzz_format(data, size);
    return 0;
}
