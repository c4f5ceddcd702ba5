/* fork_threads.c: signs with one token key from a parent and its forked
 * children, or from several threads sharing one EVP_PKEY, and verifies every
 * signature with the public key file. Used by t_fork_threads.sh and the
 * ThreadSanitizer test (tests/security/t_tsan_threads.sh).
 *
 *   fork_threads fork|threads KEY-URI-OR-FILE PUB.pem N COUNT
 *
 * fork: the process signs once (logged in, handles cached), forks N
 * children that each sign COUNT times while the parent signs COUNT times
 * too. threads: N threads share the one EVP_PKEY and each signs COUNT
 * times; with an RSA key each also decrypts COUNT messages encrypted to the
 * public key (OAEP), at the same time. Every signature is verified and every
 * plaintext compared. Prints "signers S signatures N failed F" (and
 * "decryptions D" for RSA threads) and exits 0 only when nothing failed.
 * reuse: one signing context initialised once signs COUNT messages with
 * EVP_DigestSign (one-shot), then one message in two EVP_DigestSignUpdate
 * calls and EVP_DigestSignFinal; an RSA key does the same with PSS too.
 * Prints "reused S signatures failed F" (N is ignored).
 * "fork_threads race" races on purpose (a ThreadSanitizer control);
 * "fork_threads leak" leaks on purpose (valgrind's control). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/store.h>
#include <p11-kit/pkcs11.h>
#include "../lib/storekey.h"

static EVP_PKEY *priv, *pub;
static int count;
static int decrypt; /* threads mode with an RSA key: decrypt too */

static EVP_PKEY *load_private(const char *uri)
{
    return test_store_key(uri, NULL, NULL, OSSL_STORE_INFO_PKEY);
}

/* Signs COUNT distinct messages and verifies each; returns failures. */
static int sign_verify(int tag)
{
    unsigned char sig[1024];
    char msg[64];
    size_t siglen;
    int i, failed = 0;

    for (i = 0; i < count; i++) {
        EVP_MD_CTX *s = EVP_MD_CTX_new(), *v = EVP_MD_CTX_new();

        snprintf(msg, sizeof(msg), "message %d of %d/%d", i, tag, (int)getpid());
        siglen = sizeof(sig);
        if (s == NULL || v == NULL
            || EVP_DigestSignInit(s, NULL, EVP_sha256(), NULL, priv) <= 0
            || EVP_DigestSign(s, sig, &siglen, (unsigned char *)msg,
                              strlen(msg)) <= 0
            || EVP_DigestVerifyInit(v, NULL, EVP_sha256(), NULL, pub) <= 0
            || EVP_DigestVerify(v, sig, siglen, (unsigned char *)msg,
                                strlen(msg)) != 1) {
            failed++;
            ERR_print_errors_fp(stderr);
        }
        EVP_MD_CTX_free(s);
        EVP_MD_CTX_free(v);
    }
    return failed;
}

static int verify(const unsigned char *sig, size_t siglen, const char *msg,
                  bool pss)
{
    EVP_MD_CTX *v = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    const EVP_MD *md = EVP_PKEY_is_a(pub, "ED25519") ? NULL : EVP_sha256();
    int ok;

    ok = v != NULL && EVP_DigestVerifyInit(v, &pc, md, NULL, pub) > 0
         && (!pss
             || (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) > 0
                 && EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST)
                        > 0))
         && EVP_DigestVerify(v, sig, siglen, (const unsigned char *)msg,
                             strlen(msg)) == 1;
    EVP_MD_CTX_free(v);
    return ok;
}

/* One context, initialised once, signs message after message. Returns
 * failures; *signed_n counts the signatures made. */
static int reuse_one(bool pss, int *signed_n)
{
    unsigned char sig[1024];
    char msg[64];
    size_t siglen;
    const EVP_MD *md = EVP_PKEY_is_a(pub, "ED25519") ? NULL : EVP_sha256();
    EVP_MD_CTX *s = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    int i, failed = 0;

    if (s == NULL || EVP_DigestSignInit(s, &pc, md, NULL, priv) <= 0
        || (pss
            && (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) <= 0
                || EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST)
                       <= 0))) {
        ERR_print_errors_fp(stderr);
        EVP_MD_CTX_free(s);
        return 1;
    }
    for (i = 0; i < count; i++) {
        snprintf(msg, sizeof(msg), "reused context, message %d%s", i,
                 pss ? " (PSS)" : "");
        siglen = 0;
        if (EVP_DigestSign(s, NULL, &siglen, (unsigned char *)msg,
                           strlen(msg)) <= 0
            || siglen > sizeof(sig)
            || EVP_DigestSign(s, sig, &siglen, (unsigned char *)msg,
                              strlen(msg)) <= 0
            || !verify(sig, siglen, msg, pss)) {
            fprintf(stderr, "reused context: signature %d does not verify\n", i);
            ERR_print_errors_fp(stderr);
            failed++;
        }
        (*signed_n)++;
    }
    EVP_MD_CTX_free(s);
    if (md == NULL)
        return failed; /* EdDSA has no streaming */
    /* Streaming on a fresh context: two updates and the final. */
    s = EVP_MD_CTX_new();
    siglen = sizeof(sig);
    if (s == NULL || EVP_DigestSignInit(s, &pc, md, NULL, priv) <= 0
        || (pss
            && (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) <= 0
                || EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST)
                       <= 0))
        || EVP_DigestSignUpdate(s, "streamed in ", 12) <= 0
        || EVP_DigestSignUpdate(s, "two parts", 9) <= 0
        || EVP_DigestSignFinal(s, sig, &siglen) <= 0
        || !verify(sig, siglen, "streamed in two parts", pss)) {
        fprintf(stderr, "streamed signature does not verify\n");
        ERR_print_errors_fp(stderr);
        failed++;
    }
    (*signed_n)++;
    EVP_MD_CTX_free(s);
    return failed;
}

/* Encrypts COUNT distinct messages to the public key and decrypts each with
 * the token key (OAEP; SoftHSM 2.6 takes only SHA-1 for it); returns
 * failures. */
static int encrypt_decrypt(int tag)
{
    unsigned char ct[1024], pt[1024];
    char msg[64];
    size_t ctlen, ptlen;
    int i, failed = 0;

    for (i = 0; i < count; i++) {
        EVP_PKEY_CTX *e = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
        EVP_PKEY_CTX *d = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);

        snprintf(msg, sizeof(msg), "secret %d of %d/%d", i, tag, (int)getpid());
        ctlen = sizeof(ct);
        ptlen = sizeof(pt);
        if (e == NULL || d == NULL || EVP_PKEY_encrypt_init(e) <= 0
            || EVP_PKEY_CTX_set_rsa_padding(e, RSA_PKCS1_OAEP_PADDING) <= 0
            || EVP_PKEY_encrypt(e, ct, &ctlen, (unsigned char *)msg,
                                strlen(msg)) <= 0
            || EVP_PKEY_decrypt_init(d) <= 0
            || EVP_PKEY_CTX_set_rsa_padding(d, RSA_PKCS1_OAEP_PADDING) <= 0
            || EVP_PKEY_decrypt(d, pt, &ptlen, ct, ctlen) <= 0
            || ptlen != strlen(msg) || memcmp(pt, msg, ptlen) != 0) {
            failed++;
            ERR_print_errors_fp(stderr);
        }
        EVP_PKEY_CTX_free(e);
        EVP_PKEY_CTX_free(d);
    }
    return failed;
}

/* Even threads sign first, odd ones decrypt first: signing and decryption
 * run at the same time on the one key. */
static void *thread_main(void *arg)
{
    int tag = (int)(long)arg, failed = 0;

    if (decrypt && tag % 2 == 1)
        failed += encrypt_decrypt(tag);
    failed += sign_verify(tag);
    if (decrypt && tag % 2 == 0)
        failed += encrypt_decrypt(tag);
    return (void *)(long)failed;
}

/* P11ID_TEST_PREINIT=<module>: the application initialises the module
 * itself before p11id sees it (p11id must accept "already initialised"). */
static int preinit(void)
{
    const char *path = getenv("P11ID_TEST_PREINIT");
    CK_C_GetFunctionList getfl;
    CK_FUNCTION_LIST *fl = NULL;
    CK_C_INITIALIZE_ARGS args;
    void *h;

    if (path == NULL || *path == '\0')
        return 1;
    h = dlopen(path, RTLD_NOW);
    getfl = h != NULL ? (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList")
                      : NULL;
    /* A threaded application asks for locking; C_Initialize(NULL) would
     * tell the module no thread ever shares it. */
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    if (getfl == NULL || getfl(&fl) != CKR_OK
        || fl->C_Initialize(&args) != CKR_OK) {
        fprintf(stderr, "cannot initialise %s first\n", path);
        return 0;
    }
    printf("module initialised by the application first\n");
    return 1;
}

/* race mode: a deliberate data race in this file, the control that shows
 * ThreadSanitizer is watching (t_tsan_threads.sh). */
static int racy;
static void *volatile lost; /* leak mode: the pointer valgrind sees lost */

static void *race_main(void *arg)
{
    int i;

    for (i = 0; i < 1000; i++)
        racy++;
    return arg;
}

static int race(void)
{
    pthread_t a, b;

    pthread_create(&a, NULL, race_main, NULL);
    pthread_create(&b, NULL, race_main, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    printf("raced %d\n", racy);
    return 0;
}

int main(int argc, char **argv)
{
    int n, i, status, failed = 0, signers = 0;
    BIO *b;

    if (argc == 2 && strcmp(argv[1], "race") == 0)
        return race();
    if (argc == 2 && strcmp(argv[1], "leak") == 0) { /* valgrind's control */
        lost = malloc(64);
        lost = NULL;
        return 0;
    }
    if (argc != 6) {
        fprintf(stderr, "usage: %s fork|threads|reuse KEY PUB N COUNT\n", argv[0]);
        return 2;
    }
    n = atoi(argv[4]);
    count = atoi(argv[5]);
    if (!preinit())
        return 2;
    priv = load_private(argv[2]);
    b = BIO_new_file(argv[3], "r");
    pub = b != NULL ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (priv == NULL || pub == NULL || n < 1 || count < 1) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "cannot load the key or the public key\n");
        return 2;
    }
    if (strcmp(argv[1], "reuse") == 0) {
        int made = 0;

        failed += reuse_one(false, &made);
        if (EVP_PKEY_is_a(priv, "RSA"))
            failed += reuse_one(true, &made);
        printf("reused %d signatures failed %d\n", made, failed);
        EVP_PKEY_free(priv);
        EVP_PKEY_free(pub);
        return failed == 0 ? 0 : 1;
    }
    /* Sign once first: the parent is logged in with handles cached, as an
     * nginx master is when it forks its workers. */
    failed += sign_verify(-1);
    if (strcmp(argv[1], "fork") == 0) {
        for (i = 0; i < n; i++) {
            pid_t pid = fork();

            if (pid == 0)
                _exit(sign_verify(i) == 0 ? 0 : 1);
            if (pid < 0)
                failed++;
        }
        failed += sign_verify(n); /* the parent keeps signing meanwhile */
        while (wait(&status) > 0)
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                failed++;
        signers = n + 1;
    } else {
        pthread_t th[64];

        if (n > 64)
            n = 64;
        decrypt = EVP_PKEY_is_a(priv, "RSA");
        for (i = 0; i < n; i++)
            pthread_create(&th[i], NULL, thread_main, (void *)(long)i);
        for (i = 0; i < n; i++) {
            void *r;

            pthread_join(th[i], &r);
            failed += (int)(long)r;
        }
        signers = n;
    }
    printf("signers %d signatures %d failed %d\n", signers,
           signers * count + count, failed);
    if (decrypt)
        printf("decryptions %d\n", n * count);
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pub);
    return failed == 0 ? 0 : 1;
}
