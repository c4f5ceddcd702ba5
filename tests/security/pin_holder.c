/* pin_holder.c: a process that uses a token key with a PIN, then waits so
 * that t_pin_safety.sh can dump its memory and look for the PIN: once while
 * the provider is loaded and logged in (the kept PIN is expected there), and
 * once after the provider was unloaded (no copy may remain).
 *
 *   pin_holder CONF KEY-FILE [PIN-FILE]
 *
 * CONF: an OpenSSL configuration activating p11id, loaded into a library
 * context of our own (so that freeing it unloads the provider). KEY-FILE:
 * either a file whose first line is a pkcs11: URI, or a key reference PEM
 * file (opened through OSSL_STORE as a path). PIN-FILE: when given, the
 * application answers the provider's PIN prompt with the first line of this
 * file (a passphrase callback), and wipes its own buffer.
 *
 * Prints "stage loaded <pid>", waits for SIGUSR1, unloads, prints
 * "stage unloaded", waits for SIGUSR1 again and exits 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/ui.h>
#include "../lib/storekey.h"

static const char *pin_file; /* PIN-FILE, or NULL */

/* Reads the first line of path into buf (NUL-terminated); returns length or
 * -1. */
static int read_line(const char *path, char *buf, size_t max)
{
    FILE *f = fopen(path, "re");
    size_t n;

    if (f == NULL)
        return -1;
    setvbuf(f, NULL, _IONBF, 0); /* no stdio buffer keeps a copy */
    if (fgets(buf, (int)max, f) == NULL) {
        fclose(f);
        return -1;
    }
    fclose(f);
    n = strcspn(buf, "\r\n");
    buf[n] = '\0';
    return (int)n;
}

/* The application's passphrase prompt: answers with the PIN file. */
static int ui_read(UI *ui, UI_STRING *uis)
{
    char pin[256];
    int ok;

    if (UI_get_string_type(uis) != UIT_PROMPT || pin_file == NULL)
        return 0;
    if (read_line(pin_file, pin, sizeof(pin)) <= 0)
        return 0;
    ok = UI_set_result(ui, uis, pin) == 0;
    OPENSSL_cleanse(pin, sizeof(pin));
    return ok;
}

static void wait_usr1(const char *stage)
{
    sigset_t set;
    int sig;

    printf("stage %s %d\n", stage, (int)getpid());
    fflush(stdout);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigwait(&set, &sig);
}

static EVP_PKEY *load_key(OSSL_LIB_CTX *lib, const char *what, UI_METHOD *ui)
{
    return test_store_key(what, lib, ui, OSSL_STORE_INFO_PKEY);
}

static int sign_once(OSSL_LIB_CTX *lib, EVP_PKEY *pk)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    int ok;

    ok = md != NULL
         && EVP_DigestSignInit_ex(md, NULL, "SHA256", lib, NULL, pk, NULL) > 0
         && EVP_DigestSign(md, sig, &siglen, (const unsigned char *)"x", 1)
                > 0;
    EVP_MD_CTX_free(md);
    return ok;
}

int main(int argc, char **argv)
{
    OSSL_LIB_CTX *lib;
    UI_METHOD *ui = NULL;
    EVP_PKEY *pk = NULL;
    char what[4096];
    sigset_t set;
    int rc = 1;

    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s CONF KEY-FILE [PIN-FILE]\n", argv[0]);
        return 2;
    }
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    pin_file = argc == 4 ? argv[3] : NULL;
    lib = OSSL_LIB_CTX_new();
    if (lib == NULL || !OSSL_LIB_CTX_load_config(lib, argv[1]))
        goto done;
    /* A key reference file is opened by its path; a URI file is read. */
    if (strstr(argv[2], ".pem") != NULL) {
        snprintf(what, sizeof(what), "%s", argv[2]);
    } else if (read_line(argv[2], what, sizeof(what)) <= 0) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        goto done;
    }
    ui = UI_create_method("pin_holder");
    if (ui == NULL)
        goto done;
    UI_method_set_reader(ui, ui_read);
    pk = load_key(lib, what, ui);
    OPENSSL_cleanse(what, sizeof(what)); /* the URI may hold pin-value */
    if (pk == NULL || !sign_once(lib, pk)) {
        fprintf(stderr, "cannot load or sign with the key\n");
        goto done;
    }
    wait_usr1("loaded");
    EVP_PKEY_free(pk);
    pk = NULL;
    OSSL_LIB_CTX_free(lib); /* unloads p11id: its teardown drops the PIN */
    lib = NULL;
    wait_usr1("unloaded");
    rc = 0;
done:
    if (rc != 0)
        ERR_print_errors_fp(stderr);
    EVP_PKEY_free(pk);
    UI_destroy_method(ui);
    OSSL_LIB_CTX_free(lib);
    return rc;
}
