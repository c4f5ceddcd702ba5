/* t_uri.c: pkcs11: URI parsing, refusals and their messages, matching,
 * formatting and the round trip format -> parse -> match. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/uri.h"
#include "p11id/p11id.h"
#include "../lib/tap.h"

/* The capturing sink: every raised error is appended to errs. */
static char errs[8192];
static int last_reason;
static int n_raised;

static void capture(void *arg, int reason, const char *file, int line,
                    const char *func, const char *msg)
{
    size_t used = strlen(errs);

    (void)arg;
    (void)file;
    (void)line;
    (void)func;
    snprintf(errs + used, sizeof(errs) - used, "%s\n", msg);
    last_reason = reason;
    n_raised++;
}

static void reset_errors(void)
{
    errs[0] = '\0';
    last_reason = 0;
    n_raised = 0;
}

/* Parses str, which must fail with reason and a message containing want.
 * secret, if not NULL, must appear in no message. */
static void refused(const char *str, int reason, const char *want,
                    const char *secret, const char *what)
{
    P11ID_URI *uri = NULL;
    CK_RV rv;

    reset_errors();
    rv = p11id_uri_parse(str, &uri);
    ok(rv == CKR_ARGUMENTS_BAD && uri == NULL && n_raised >= 1
           && last_reason == reason && strstr(errs, want) != NULL
           && (secret == NULL || strstr(errs, secret) == NULL),
       "refused: %s", what);
    if (rv == CKR_OK)
        printf("# parsed, but should not have\n");
    else
        printf("# rv 0x%lx reason %d: %s", (unsigned long)rv, last_reason,
               errs[0] != '\0' ? errs : "(no error raised)\n");
    p11id_uri_free(uri);
}

/* Parses str, which must succeed without raising anything. */
static P11ID_URI *parsed(const char *str, const char *what)
{
    P11ID_URI *uri = NULL;
    CK_RV rv;

    reset_errors();
    rv = p11id_uri_parse(str, &uri);
    ok(rv == CKR_OK && uri != NULL && n_raised == 0, "parses: %s", what);
    if (rv != CKR_OK)
        printf("# rv 0x%lx: %s", (unsigned long)rv, errs);
    return uri;
}

/* A CK_*_INFO string field as a token gives it: padded with spaces. */
static void pad(unsigned char *field, size_t n, const char *s)
{
    memset(field, ' ', n);
    memcpy(field, s, strlen(s));
}

static void token_info(CK_TOKEN_INFO *ti, const char *label,
                       const char *manuf, const char *model,
                       const char *serial)
{
    memset(ti, 0, sizeof(*ti));
    pad(ti->label, sizeof(ti->label), label);
    pad(ti->manufacturerID, sizeof(ti->manufacturerID), manuf);
    pad(ti->model, sizeof(ti->model), model);
    pad(ti->serialNumber, sizeof(ti->serialNumber), serial);
}

static void test_every_attribute(void)
{
    static const unsigned char want_id[] = { 0x01, 0x02, 0xff };
    const char *str =
        "pkcs11:token=My%20Token;manufacturer=ACME;model=M1;serial=0042;"
        "slot-description=Slot%201;slot-manufacturer=SlotCo;slot-id=7;"
        "library-description=Lib;library-manufacturer=LibCo;"
        "library-version=2.5;id=%01%02%ff;object=srv%3Bkey;type=private"
        "?pin-source=/tmp/pin&module-name=softhsm2"
        "&module-path=/usr/lib/softhsm/libsofthsm2.so";
    CK_TOKEN_INFO ti;
    CK_SLOT_INFO si;
    CK_INFO mi;
    P11ID_URI *uri = parsed(str, "every RFC 7512 attribute");
    const unsigned char *id;
    size_t idlen = 99;

    if (uri == NULL)
        return;
    ok(p11id_uri_get_class(uri) == CKO_PRIVATE_KEY, "type=private");
    id = p11id_uri_get0_id(uri, &idlen);
    ok(id != NULL && idlen == 3 && memcmp(id, want_id, 3) == 0,
       "id is the bytes 01 02 ff");
    is_str(p11id_uri_get0_label(uri), "srv;key", "object (with %3B)");
    is_str(p11id_uri_get0_pin_source(uri), "/tmp/pin", "pin-source");
    ok(p11id_uri_get0_pin_value(uri) == NULL, "no pin-value");
    is_str(p11id_uri_get0_module_name(uri), "softhsm2", "module-name");
    is_str(p11id_uri_get0_module_path(uri),
           "/usr/lib/softhsm/libsofthsm2.so", "module-path");
    is_str(p11id_uri_get0_display(uri), str, "display (nothing to mask)");
    ok(p11id_uri_has_object_attrs(uri), "has object attributes");

    token_info(&ti, "My Token", "ACME", "M1", "0042");
    ok(p11id_uri_match_token(uri, &ti), "matches the padded token info");
    pad(ti.serialNumber, sizeof(ti.serialNumber), "0043");
    ok(!p11id_uri_match_token(uri, &ti), "another serial does not match");
    token_info(&ti, "My Token2", "ACME", "M1", "0042");
    ok(!p11id_uri_match_token(uri, &ti), "a longer label does not match");
    /* Some tokens end their strings with a NUL instead of padding. */
    token_info(&ti, "My Token", "ACME", "M1", "0042");
    memset(ti.label + 8, 0, sizeof(ti.label) - 8);
    ok(p11id_uri_match_token(uri, &ti), "matches a NUL-padded label");

    memset(&si, 0, sizeof(si));
    pad(si.slotDescription, sizeof(si.slotDescription), "Slot 1");
    pad(si.manufacturerID, sizeof(si.manufacturerID), "SlotCo");
    ok(p11id_uri_match_slot(uri, 7, &si), "matches slot 7 and its info");
    ok(!p11id_uri_match_slot(uri, 8, &si), "slot 8 does not match");
    pad(si.slotDescription, sizeof(si.slotDescription), "Slot 2");
    ok(!p11id_uri_match_slot(uri, 7, &si), "another slot-description fails");

    memset(&mi, 0, sizeof(mi));
    pad(mi.libraryDescription, sizeof(mi.libraryDescription), "Lib");
    pad(mi.manufacturerID, sizeof(mi.manufacturerID), "LibCo");
    mi.libraryVersion.major = 2;
    mi.libraryVersion.minor = 5;
    ok(p11id_uri_match_module(uri, &mi), "matches module info 2.5");
    mi.libraryVersion.minor = 4;
    ok(!p11id_uri_match_module(uri, &mi), "library version 2.4 fails");
    p11id_uri_free(uri);
}

static void test_empty(void)
{
    CK_TOKEN_INFO ti;
    CK_SLOT_INFO si;
    CK_INFO mi;
    P11ID_URI *uri = parsed("pkcs11:", "empty pkcs11: URI");
    size_t idlen = 5;

    if (uri == NULL)
        return;
    token_info(&ti, "any", "one", "at", "all");
    memset(&si, 0, sizeof(si));
    memset(&mi, 0, sizeof(mi));
    ok(p11id_uri_match_token(uri, &ti) && p11id_uri_match_slot(uri, 3, &si)
           && p11id_uri_match_module(uri, &mi),
       "empty URI matches any token, slot and module");
    ok(p11id_uri_get_class(uri) == (CK_OBJECT_CLASS)-1
           && p11id_uri_get0_id(uri, &idlen) == NULL && idlen == 0
           && p11id_uri_get0_label(uri) == NULL
           && !p11id_uri_has_object_attrs(uri),
       "empty URI names no object attribute");
    is_str(p11id_uri_get0_display(uri), "pkcs11:", "display of empty URI");
    p11id_uri_free(uri);

    uri = parsed("pkcs11:?", "empty query");
    p11id_uri_free(uri);
}

static void test_encoding(void)
{
    CK_TOKEN_INFO ti;
    P11ID_URI *uri;
    size_t idlen = 9;

    uri = parsed("PKCS11:object=%41b%63%6a",
                 "upper-case scheme, hex digits in both cases");
    is_str(p11id_uri_get0_label(uri), "Abcj", "decoded object");
    is_str(p11id_uri_get0_display(uri), "PKCS11:object=%41b%63%6a",
           "display keeps the text as given");
    p11id_uri_free(uri);

    /* p11-kit would strip the space and look for "MyToken". */
    uri = parsed("pkcs11:token=My Token", "literal space in a value");
    token_info(&ti, "My Token", "m", "m", "s");
    ok(p11id_uri_match_token(uri, &ti), "literal space kept: matches");
    token_info(&ti, "MyToken", "m", "m", "s");
    ok(!p11id_uri_match_token(uri, &ti), "... and not \"MyToken\"");
    p11id_uri_free(uri);

    uri = parsed("pkcs11:TOKEN=abc;Object=k", "attribute names ignore case");
    token_info(&ti, "abc", "m", "m", "s");
    ok(p11id_uri_match_token(uri, &ti), "TOKEN= matches the label");
    is_str(p11id_uri_get0_label(uri), "k", "Object= is the label");
    p11id_uri_free(uri);

    uri = parsed("pkcs11:id=;object=;token=", "empty values");
    ok(p11id_uri_get0_id(uri, &idlen) != NULL && idlen == 0,
       "empty id is present with length 0");
    is_str(p11id_uri_get0_label(uri), "", "empty object");
    token_info(&ti, "", "m", "m", "s");
    ok(p11id_uri_match_token(uri, &ti), "token= matches a blank label");
    token_info(&ti, "x", "m", "m", "s");
    ok(!p11id_uri_match_token(uri, &ti), "token= does not match \"x\"");
    p11id_uri_free(uri);

    uri = parsed("pkcs11:object=a=b?module-name=x?y",
                 "'=' in a path value, '?' in a query value");
    is_str(p11id_uri_get0_label(uri), "a=b", "object with '='");
    is_str(p11id_uri_get0_module_name(uri), "x?y", "module-name with '?'");
    p11id_uri_free(uri);

    uri = parsed("pkcs11:object=%C3%A9t%C3%A9", "UTF-8 label");
    is_str(p11id_uri_get0_label(uri), "\xc3\xa9t\xc3\xa9", "UTF-8 decoded");
    p11id_uri_free(uri);
}

static void test_types(void)
{
    static const struct {
        const char *str;
        CK_OBJECT_CLASS cls;
    } types[] = {
        { "pkcs11:type=private", CKO_PRIVATE_KEY },
        { "pkcs11:type=public", CKO_PUBLIC_KEY },
        { "pkcs11:type=cert", CKO_CERTIFICATE },
        { "pkcs11:type=secret-key", CKO_SECRET_KEY },
        { "pkcs11:type=data", CKO_DATA },
    };
    size_t i;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        P11ID_URI *uri = parsed(types[i].str, types[i].str);

        ok(uri != NULL && p11id_uri_get_class(uri) == types[i].cls
               && p11id_uri_has_object_attrs(uri),
           "%s gives class 0x%lx", types[i].str,
           (unsigned long)types[i].cls);
        p11id_uri_free(uri);
    }
    refused("pkcs11:type=key", P11ID_R_URI_INVALID,
            "bad value \"key\" for attribute \"type\"", NULL, "type=key");
    refused("pkcs11:type=secretkey", P11ID_R_URI_INVALID, "secret-key", NULL,
            "type=secretkey (a p11-kit alias)");
    refused("pkcs11:type=Private", P11ID_R_URI_INVALID, "\"type\"", NULL,
            "type=Private (values are case-sensitive)");
}

static void test_unknown(void)
{
    refused("pkcs11:token=a;foo=bar", P11ID_R_URI_UNKNOWN_ATTRIBUTE,
            "unknown attribute \"foo\" in pkcs11: URI (known: token, "
            "manufacturer, model, serial",
            "bar", "unknown attribute named, known ones listed");
    refused("pkcs11:token=a;foo=bar", P11ID_R_URI_UNKNOWN_ATTRIBUTE,
            "module-name, module-path)", NULL, "known list is complete");
    refused("pkcs11:label=srv", P11ID_R_URI_UNKNOWN_ATTRIBUTE,
            "unknown attribute \"label\" in pkcs11: URI: did you mean "
            "\"object\"?",
            NULL, "label= hints at object=");
    refused("pkcs11:object-type=cert", P11ID_R_URI_UNKNOWN_ATTRIBUTE,
            "did you mean \"type\"?", NULL, "object-type= hints at type=");
    refused("pkcs11:?pinfile=/x", P11ID_R_URI_UNKNOWN_ATTRIBUTE,
            "did you mean \"pin-source\"?", NULL, "pinfile= hints");
    refused("pkcs11:x-vendor=1", P11ID_R_URI_UNKNOWN_ATTRIBUTE,
            "vendor attribute \"x-vendor\"", NULL, "vendor path attribute");
    refused("pkcs11:?x-foo=1", P11ID_R_URI_UNKNOWN_ATTRIBUTE,
            "vendor attribute \"x-foo\"", NULL, "vendor query attribute");
    refused("pkcs11:tok\x01n=a", P11ID_R_URI_UNKNOWN_ATTRIBUTE,
            "unknown attribute \"tok?n\"", NULL,
            "control bytes in a name are not printed");
}

static void test_syntax(void)
{
    static const char secret[] = "s3cr3tPIN";

    refused("pkcs11:token=a;token=b", P11ID_R_URI_INVALID,
            "duplicate attribute \"token\"", NULL, "duplicate token");
    refused("pkcs11:token=a;TOKEN=a", P11ID_R_URI_INVALID,
            "duplicate attribute \"token\"", NULL, "duplicate, other case");
    refused("pkcs11:token=a;pin-value=s3cr3tPIN?pin-value=other",
            P11ID_R_URI_INVALID, "duplicate attribute \"pin-value\"", secret,
            "duplicate pin-value (path and query)");
    refused("pkcs11:token", P11ID_R_URI_INVALID,
            "attribute \"token\" has no '='", NULL, "missing '=' on token");
    refused("pkcs11:token=a;s3cr3tPIN", P11ID_R_URI_INVALID,
            "attribute without '=' (character 16)", secret,
            "missing '=': position given, text not echoed");
    refused("pkcs11:=a", P11ID_R_URI_INVALID, "without a name", NULL,
            "attribute without a name");
    refused("pkcs11:token=a;", P11ID_R_URI_INVALID, "empty attribute", NULL,
            "trailing ';'");
    refused("pkcs11:;token=a", P11ID_R_URI_INVALID, "empty attribute", NULL,
            "leading ';'");
    refused("pkcs11:token=a;;object=b", P11ID_R_URI_INVALID,
            "empty attribute", NULL, "';;'");
    refused("pkcs11:?&pin-value=1", P11ID_R_URI_INVALID, "empty attribute",
            NULL, "empty query attribute");
    refused("pkcs11:?token=a", P11ID_R_URI_INVALID,
            "attribute \"token\" belongs in the path", NULL,
            "token in the query");
    refused("pkcs11:module-path=/x.so", P11ID_R_URI_INVALID,
            "attribute \"module-path\" belongs in the query", NULL,
            "module-path in the path");
    refused("pkcs12:token=a", P11ID_R_URI_INVALID, "not a pkcs11: URI", NULL,
            "other scheme");
    refused("pkcs11", P11ID_R_URI_INVALID, "not a pkcs11: URI", NULL,
            "no colon");
    refused("", P11ID_R_URI_INVALID, "not a pkcs11: URI", NULL, "empty text");
    refused(" pkcs11:token=a", P11ID_R_URI_INVALID, "not a pkcs11: URI",
            NULL, "leading space");
    refused("pkcs11:token=a\tb", P11ID_R_URI_INVALID,
            "control character in attribute \"token\"", NULL, "tab");
    refused("pkcs11:token=a\n", P11ID_R_URI_INVALID, "control character",
            NULL, "trailing newline");
    refused(NULL, P11ID_R_BAD_PARAMETER, "no pkcs11: URI", NULL, "NULL");
}

static void test_values(void)
{
    static const char secret[] = "12%3";
    char tok[64];
    P11ID_URI *uri;
    CK_TOKEN_INFO ti;

    refused("pkcs11:slot-id=abc", P11ID_R_URI_INVALID,
            "bad value \"abc\" for attribute \"slot-id\" in pkcs11: URI "
            "(a decimal number)",
            NULL, "slot-id=abc");
    refused("pkcs11:slot-id=", P11ID_R_URI_INVALID, "\"slot-id\"", NULL,
            "empty slot-id");
    refused("pkcs11:slot-id=-1", P11ID_R_URI_INVALID, "\"slot-id\"", NULL,
            "negative slot-id");
    refused("pkcs11:slot-id=0x10", P11ID_R_URI_INVALID, "\"slot-id\"", NULL,
            "hex slot-id");
    refused("pkcs11:slot-id=99999999999999999999999", P11ID_R_URI_INVALID,
            "\"slot-id\"", NULL, "slot-id overflowing CK_SLOT_ID");
    uri = parsed("pkcs11:slot-id=0", "slot-id=0");
    ok(p11id_uri_match_slot(uri, 0, NULL)
           && !p11id_uri_match_slot(uri, 1, NULL),
       "slot-id=0 matches slot 0 only");
    p11id_uri_free(uri);

    refused("pkcs11:object=%4", P11ID_R_URI_INVALID,
            "bad percent-encoding in attribute \"object\"", NULL,
            "truncated escape");
    refused("pkcs11:object=%zz", P11ID_R_URI_INVALID, "percent-encoding",
            NULL, "non-hex escape");
    refused("pkcs11:id=%", P11ID_R_URI_INVALID, "percent-encoding", NULL,
            "lone '%'");
    refused("pkcs11:token=a?pin-value=12%3", P11ID_R_URI_INVALID,
            "percent-encoding in attribute \"pin-value\"", secret,
            "bad escape in pin-value, value not echoed");
    refused("pkcs11:token=a%00b", P11ID_R_URI_INVALID, "NUL byte", NULL,
            "%00 in a text value");
    uri = parsed("pkcs11:id=%00%00", "%00 in an id");
    p11id_uri_free(uri);

    snprintf(tok, sizeof(tok), "pkcs11:token=%.32s",
             "0123456789abcdef0123456789abcdef");
    uri = parsed(tok, "32-byte token label");
    token_info(&ti, "0123456789abcdef0123456789abcdef", "m", "m", "s");
    ok(p11id_uri_match_token(uri, &ti), "32-byte label matches");
    p11id_uri_free(uri);
    refused("pkcs11:token=0123456789abcdef0123456789abcdefX",
            P11ID_R_URI_INVALID, "33 bytes long", NULL,
            "33-byte token label");

    uri = parsed("pkcs11:library-version=2", "library-version=2");
    {
        CK_INFO mi;

        memset(&mi, 0, sizeof(mi));
        mi.libraryVersion.major = 2;
        ok(p11id_uri_match_module(uri, &mi), "version 2 matches 2.0");
        mi.libraryVersion.minor = 1;
        ok(!p11id_uri_match_module(uri, &mi), "version 2 does not match 2.1");
    }
    p11id_uri_free(uri);
    refused("pkcs11:library-version=2.", P11ID_R_URI_INVALID,
            "\"library-version\"", NULL, "version \"2.\"");
    refused("pkcs11:library-version=1.2.3", P11ID_R_URI_INVALID,
            "\"library-version\"", NULL, "version \"1.2.3\"");
    refused("pkcs11:library-version=256", P11ID_R_URI_INVALID,
            "\"library-version\"", NULL, "version 256");
    refused("pkcs11:?module-name=", P11ID_R_URI_INVALID,
            "attribute \"module-name\" of pkcs11: URI is empty", NULL,
            "empty module-name");
}

static void test_pin_source(void)
{
    static const struct {
        const char *str;
        const char *path;
    } good[] = {
        { "pkcs11:?pin-source=/etc/pin", "/etc/pin" },
        { "pkcs11:?pin-source=file:/etc/pin", "/etc/pin" },
        { "pkcs11:?pin-source=file:///etc/pin", "/etc/pin" },
        { "pkcs11:?pin-source=file://localhost/etc/my%20pin", "/etc/my pin" },
        { "pkcs11:?pin-source=pins/a:b", "pins/a:b" },
        { "pkcs11:token=t;pin-source=/p", "/p" },
    };
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        P11ID_URI *uri = parsed(good[i].str, good[i].str);

        is_str(p11id_uri_get0_pin_source(uri), good[i].path,
               "pin-source path");
        p11id_uri_free(uri);
    }
    refused("pkcs11:?pin-source=env:PIN", P11ID_R_URI_INVALID,
            "not a \"env:\" URI", NULL, "pin-source=env:");
    refused("pkcs11:?pin-source=file://evil/etc/pin", P11ID_R_URI_INVALID,
            "absolute path on this host", NULL, "file: URI with a host");
    refused("pkcs11:?pin-source=file:pin", P11ID_R_URI_INVALID,
            "absolute path", NULL, "relative file: URI");
    refused("pkcs11:?pin-source=", P11ID_R_URI_INVALID, "must name a file",
            NULL, "empty pin-source");
}

static void test_pin_value(void)
{
    P11ID_URI *uri;

    uri = parsed("pkcs11:token=a?pin-value=s3cr3t%21&module-name=x",
                 "pin-value in the query");
    is_str(p11id_uri_get0_pin_value(uri), "s3cr3t!", "pin-value decoded");
    is_str(p11id_uri_get0_display(uri),
           "pkcs11:token=a?pin-value=***&module-name=x", "display masks it");
    p11id_uri_free(uri);

    uri = parsed("pkcs11:token=a;pin-value=s3cr3t;object=k",
                 "pin-value in the path (older tools)");
    is_str(p11id_uri_get0_pin_value(uri), "s3cr3t", "pin-value from path");
    is_str(p11id_uri_get0_display(uri),
           "pkcs11:token=a;pin-value=***;object=k", "display masks it");
    p11id_uri_free(uri);

    uri = parsed("pkcs11:?pin-value=", "empty pin-value");
    is_str(p11id_uri_get0_pin_value(uri), "", "empty pin-value kept");
    is_str(p11id_uri_get0_display(uri), "pkcs11:?pin-value=***",
           "display masks even an empty PIN");
    p11id_uri_free(uri);

    refused("pkcs11:foo=1?pin-value=s3cr3t", P11ID_R_URI_UNKNOWN_ATTRIBUTE,
            "\"foo\"", "s3cr3t", "error beside a PIN does not show it");
    refused("pkcs11:type=bad?pin-value=s3cr3t", P11ID_R_URI_INVALID,
            "\"type\"", "s3cr3t", "bad type beside a PIN does not show it");
    refused("pkcs11:?pin-value=s3%00cr3t", P11ID_R_URI_INVALID, "NUL byte",
            "s3", "NUL in pin-value, value not echoed");
    refused("pkcs11:?pin-value=s3cr3t\x7f", P11ID_R_URI_INVALID,
            "control character in attribute \"pin-value\"", "s3cr3t",
            "DEL in pin-value, value not echoed");
}

static void test_huge(void)
{
    size_t max = 64 * 1024;
    char *big = malloc(max + 2);
    P11ID_URI *uri;

    if (big == NULL) {
        ok(0, "allocate a 64 KiB URI");
        return;
    }
    memset(big, 'a', max + 1);
    memcpy(big, "pkcs11:object=", 14);
    big[max] = '\0';
    uri = parsed(big, "URI of exactly 64 KiB");
    ok(uri != NULL && strlen(p11id_uri_get0_label(uri)) == max - 14,
       "its label has all %zu bytes", max - 14);
    p11id_uri_free(uri);
    big[max] = 'a';
    big[max + 1] = '\0';
    refused(big, P11ID_R_URI_INVALID, "longer than 64 KiB", "aaaaaaaa",
            "URI of 64 KiB + 1");
    free(big);
}

static void test_format(void)
{
    static const unsigned char id[] = { 0x01, 0xab };
    static const char *label = "srv key;1?&=%\xc3\xa9";
    static const CK_OBJECT_CLASS classes[] = {
        CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_CERTIFICATE, CKO_SECRET_KEY,
        CKO_DATA,
    };
    CK_TOKEN_INFO ti, other;
    P11ID_URI *uri;
    char *s;
    size_t i, idlen = 0;
    const unsigned char *got;

    token_info(&ti, "web", "SoftHSM project", "SoftHSM v2", "1234abcd");
    s = p11id_uri_format_object(&ti, CKO_PRIVATE_KEY, id, sizeof(id), "srv");
    is_str(s, "pkcs11:token=web;manufacturer=SoftHSM%20project;"
              "model=SoftHSM%20v2;serial=1234abcd;object=srv;id=%01%AB;"
              "type=private",
           "formatted object URI");
    free(s);
    s = p11id_uri_format_token(&ti);
    is_str(s, "pkcs11:token=web;manufacturer=SoftHSM%20project;"
              "model=SoftHSM%20v2;serial=1234abcd",
           "formatted token URI");
    uri = parsed(s, "token URI parses again");
    ok(p11id_uri_match_token(uri, &ti), "token URI matches its token");
    p11id_uri_free(uri);
    free(s);

    token_info(&other, "web", "SoftHSM project", "SoftHSM v2", "1234abce");
    for (i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
        s = p11id_uri_format_object(&ti, classes[i], id, sizeof(id), label);
        uri = s != NULL ? parsed(s, "round trip: formatted URI parses") : NULL;
        got = p11id_uri_get0_id(uri, &idlen);
        ok(uri != NULL && p11id_uri_match_token(uri, &ti)
               && !p11id_uri_match_token(uri, &other)
               && p11id_uri_get_class(uri) == classes[i] && got != NULL
               && idlen == sizeof(id) && memcmp(got, id, idlen) == 0
               && strcmp(p11id_uri_get0_label(uri), label) == 0,
           "round trip of class 0x%lx: same token, class, id, label",
           (unsigned long)classes[i]);
        p11id_uri_free(uri);
        free(s);
    }

    s = p11id_uri_format_object(&ti, (CK_OBJECT_CLASS)-1, NULL, 0, NULL);
    is_str(s, "pkcs11:token=web;manufacturer=SoftHSM%20project;"
              "model=SoftHSM%20v2;serial=1234abcd",
           "no class, id or label: token attributes only");
    free(s);

    /* A full 32-byte label, a blank serial, NUL padding in the model. */
    token_info(&ti, "0123456789abcdef0123456789abcdef", "M", "", "");
    memset(ti.model, 0, sizeof(ti.model));
    memcpy(ti.model, "mod", 3);
    s = p11id_uri_format_token(&ti);
    is_str(s, "pkcs11:token=0123456789abcdef0123456789abcdef;manufacturer=M;"
              "model=mod",
           "full label kept, blank serial left out, NUL padding trimmed");
    uri = parsed(s, "it parses again");
    ok(p11id_uri_match_token(uri, &ti), "and matches its token");
    p11id_uri_free(uri);
    free(s);
}

static void test_trim(void)
{
    unsigned char field[8];
    char out[9];

    memcpy(field, "abc     ", 8);
    p11id_trim_copy(out, field, sizeof(field));
    is_str(out, "abc", "trim_copy drops the padding");
    memcpy(field, "        ", 8);
    p11id_trim_copy(out, field, sizeof(field));
    is_str(out, "", "trim_copy of a blank field");
    memcpy(field, "a b c de", 8);
    p11id_trim_copy(out, field, sizeof(field));
    is_str(out, "a b c de", "trim_copy of a full field");
}

static void test_null(void)
{
    size_t idlen = 3;

    ok(p11id_uri_get0_display(NULL) == NULL
           && p11id_uri_get0_pin_value(NULL) == NULL
           && p11id_uri_get0_id(NULL, &idlen) == NULL && idlen == 0
           && p11id_uri_get_class(NULL) == (CK_OBJECT_CLASS)-1
           && p11id_uri_match_token(NULL, NULL),
       "a NULL URI names nothing and matches everything");
    p11id_uri_free(NULL);
}

struct reader {
    const P11ID_URI *uri;
    const CK_TOKEN_INFO *yes;
    const CK_TOKEN_INFO *no;
    int bad;
};

static void *read_uri(void *arg)
{
    struct reader *r = arg;
    int i;

    for (i = 0; i < 20000; i++) {
        if (!p11id_uri_match_token(r->uri, r->yes)
            || p11id_uri_match_token(r->uri, r->no)
            || strcmp(p11id_uri_get0_label(r->uri), "k") != 0)
            r->bad++;
    }
    return NULL;
}

static void test_threads(void)
{
    CK_TOKEN_INFO yes, no;
    struct reader r[4];
    pthread_t t[4];
    P11ID_URI *uri = parsed("pkcs11:token=t;object=k", "URI for threads");
    int i, bad = 0;

    token_info(&yes, "t", "m", "m", "s");
    token_info(&no, "u", "m", "m", "s");
    for (i = 0; i < 4; i++) {
        r[i].uri = uri;
        r[i].yes = &yes;
        r[i].no = &no;
        r[i].bad = 0;
        pthread_create(&t[i], NULL, read_uri, &r[i]);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        bad += r[i].bad;
    }
    ok(uri != NULL && bad == 0, "four threads read one URI");
    p11id_uri_free(uri);
}

int main(void)
{
    P11ID_ERR_SINK sink = { capture, NULL, NULL, NULL, NULL };

    p11id_err_set_sink(&sink);
    test_every_attribute();
    test_empty();
    test_encoding();
    test_types();
    test_unknown();
    test_syntax();
    test_values();
    test_pin_source();
    test_pin_value();
    test_huge();
    test_format();
    test_trim();
    test_null();
    test_threads();
    p11id_err_set_sink(NULL);
    printf("1..%d\n", n_tests);
    return n_failed == 0 ? 0 : 1;
}
