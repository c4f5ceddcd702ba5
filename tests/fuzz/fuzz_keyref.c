/* fuzz_keyref.c: the key reference decoder (src/core/keyref.c), PEM and DER.
 *
 * The input goes to p11id_keyref_parse_pem and p11id_keyref_parse_der, as
 * the provider's decoders give it. Properties: each answers -1 (not ours,
 * no error raised), 0 (malformed, an error raised) or 1 with a URI of 1 to
 * 8192 bytes without NUL; a URI decoded is encoded again
 * (p11id_keyref_to_pem) and decodes, as PEM and as its DER, to the same
 * URI; and the URI goes through the URI parser, as the store would. */
#include <string.h>

#include "core/err.h"
#include "core/keyref.h"
#include "core/uri.h"
#include "fuzz.h"

#include <openssl/crypto.h>
#include <openssl/err.h>

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

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const P11ID_ERR_SINK sink = { count_raise, NULL, NULL, NULL,
                                         NULL };

    (void)argc;
    (void)argv;
    p11id_err_set_sink(&sink);
    return 0;
}

/* A decoded URI, and the round trip through the encoder. */
static void check_uri(const char *uri)
{
    unsigned char *der = NULL;
    size_t len = strlen(uri), pemlen = 0, derlen = 0;
    char *pem, *again = NULL;
    P11ID_URI *parsed = NULL;

    FUZZ_ASSERT(len >= 1 && len <= 8192);
    pem = p11id_keyref_to_pem(uri, &pemlen);
    FUZZ_ASSERT(pem != NULL && pemlen == strlen(pem));
    FUZZ_ASSERT(p11id_keyref_parse_pem((const unsigned char *)pem, pemlen,
                                       &again)
                == 1);
    FUZZ_ASSERT(strcmp(again, uri) == 0);
    OPENSSL_free(again);
    again = NULL;
    FUZZ_ASSERT(p11id_keyref_pem_to_der((const unsigned char *)pem, pemlen,
                                        &der, &derlen)
                == 1);
    FUZZ_ASSERT(p11id_keyref_parse_der(der, derlen, &again) == 1);
    FUZZ_ASSERT(strcmp(again, uri) == 0);
    OPENSSL_free(again);
    OPENSSL_free(der);
    OPENSSL_free(pem);
    if (p11id_uri_parse(uri, &parsed) == CKR_OK)
        FUZZ_ASSERT(p11id_uri_get0_display(parsed) != NULL);
    p11id_uri_free(parsed);
}

/* One decoder's answer r: its contract on errors and on the URI. */
static void check_answer(int r, char *uri)
{
    FUZZ_ASSERT(r == -1 || r == 0 || r == 1);
    if (r == -1)
        FUZZ_ASSERT(n_raised == 0);
    if (r == 0)
        FUZZ_ASSERT(n_raised > 0);
    if (r != 1) {
        FUZZ_ASSERT(uri == NULL);
        return;
    }
    FUZZ_ASSERT(uri != NULL);
    check_uri(uri);
    OPENSSL_free(uri);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *uri = NULL;
    int r;

    n_raised = 0;
    r = p11id_keyref_parse_pem(data, size, &uri);
    check_answer(r, uri);
    uri = NULL;
    n_raised = 0;
    r = p11id_keyref_parse_der(data, size, &uri);
    check_answer(r, uri);
    ERR_clear_error();
    return 0;
}
