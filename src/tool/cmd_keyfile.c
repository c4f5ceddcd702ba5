/* cmd_keyfile.c: p11id keyfile: the key reference file for applications that
 * take only a key file path (nginx, curl, Python, httpd). */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "core/keyref.h"
#include "tool/tool.h"

const char cmd_keyfile_help[] =
    "usage: p11id keyfile KEY-URI -o FILE [--with-module] [--with-pin]\n"
    "\n"
    "Writes a key reference file (PEM \"PKCS#11 PROVIDER URI\") naming the\n"
    "key: applications that take only a key file load the token key through\n"
    "the p11id provider. The file is written 0600 and never holds a PIN\n"
    "unless --with-pin (then anyone who reads it can use the key).\n"
    "\n"
    "  -o FILE        where to write it (- for standard output)\n"
    "  --with-module  name the PKCS#11 module (--module) in the URI, so the\n"
    "                 file works without pkcs11-module-path in openssl.cnf\n"
    "  --with-pin     put the PIN in the URI (pin-value): avoid; prefer the\n"
    "                 provider's pin-source setting\n";

/* The URI the file names: the key's own, plus what was asked for. */
static char *file_uri(TOOL *t, P11ID_OBJECT *key, int with_module,
                      int with_pin)
{
    const char *base = p11id_object_get0_uri(key);
    char *uri = NULL, *pin = NULL;
    size_t i, o = 0;

    if (with_pin) {
        /* percent-encode everything but unreserved characters */
        pin = OPENSSL_zalloc(t->pinlen * 3 + 1);
        if (pin == NULL)
            return NULL;
        for (i = 0; i < t->pinlen; i++) {
            unsigned char ch = (unsigned char)t->pin[i];

            if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
                || (ch >= '0' && ch <= '9') || strchr("-._~", ch) != NULL)
                pin[o++] = (char)ch;
            else
                o += (size_t)sprintf(pin + o, "%%%02X", ch);
        }
    }
    if (asprintf(&uri, "%s%s%s%s%s%s", base,
                 with_module || with_pin ? "?" : "",
                 with_module ? "module-path=" : "",
                 with_module ? t->module : "",
                 with_module && with_pin ? "&" : "",
                 with_pin ? "pin-value=" : "")
        < 0)
        uri = NULL;
    if (uri != NULL && with_pin) {
        char *full = NULL;

        if (asprintf(&full, "%s%s", uri, pin) < 0)
            full = NULL;
        OPENSSL_cleanse(uri, strlen(uri));
        free(uri);
        uri = full;
    }
    if (pin != NULL)
        OPENSSL_clear_free(pin, t->pinlen * 3 + 1);
    return uri;
}

int cmd_keyfile_main(TOOL *t, int argc, char **argv)
{
    static const struct option opts[] = {
        { "out", required_argument, NULL, 'o' },
        { "with-module", no_argument, NULL, 'm' },
        { "with-pin", no_argument, NULL, 'p' },
        TOOL_COMMON_OPTIONS
    };
    const char *out = NULL;
    int with_module = 0, with_pin = 0, c, rc = EXIT_FAIL;
    P11ID_OBJECT *key = NULL;
    char *uri = NULL, *pem = NULL;
    size_t len = 0;

    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (c == 'o')
            out = optarg;
        else if (c == 'm')
            with_module = 1;
        else if (c == 'p')
            with_pin = 1;
        else if (c < TOOL_OPT_BASE || !tool_common_option(t, c, optarg))
            return tool_usage(t, "unknown option");
    }
    if (optind != argc - 1 || out == NULL)
        return tool_usage(t, "give KEY-URI and -o FILE");
    if (with_module && t->module == NULL)
        return tool_usage(t, "--with-module needs --module (or "
                             "$P11ID_MODULE)");
    key = tool_find_one(t, argv[optind], CKO_PRIVATE_KEY);
    if (key == NULL) {
        rc = tool_fail_code(t);
        goto done;
    }
    if (with_pin && !tool_get_pin(t, p11id_token_get0_label(
                                         p11id_object_get0_token(key)))) {
        rc = EXIT_PIN;
        goto done;
    }
    uri = file_uri(t, key, with_module, with_pin);
    pem = uri != NULL ? p11id_keyref_to_pem(uri, &len) : NULL;
    if (pem == NULL) {
        tool_err(t, "cannot encode the key reference");
        goto done;
    }
    if (!tool_write_file(t, out, pem, len, 0600))
        goto done;
    if (with_pin)
        tool_err(t, "warning: %s holds the PIN: keep it 0600 and out of "
                    "backups", out);
    if (strcmp(out, "-") != 0)
        printf("%s\n", p11id_object_get0_uri(key));
    rc = EXIT_OK;
done:
    if (uri != NULL) {
        OPENSSL_cleanse(uri, strlen(uri));
        free(uri); /* asprintf's */
    }
    if (pem != NULL)
        OPENSSL_clear_free(pem, len);
    p11id_object_free(key);
    return rc;
}
