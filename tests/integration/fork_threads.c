/* fork_threads.c: signs with one token key from a parent and its forked
 * children, or from several threads sharing one EVP_PKEY, and verifies every
 * signature with the public key file. Used by t_fork_threads.sh.
 *
 *   fork_threads fork|threads KEY-URI-OR-FILE PUB.pem N COUNT
 *
 * Prints one summary line "signed S verified V failed F" and exits 0 only
 * when every signature verified. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/store.h>
#include <p11-kit/pkcs11.h>

static EVP_PKEY *priv, *pub;
static int count;

static EVP_PKEY *load_private(const char *uri)
{
    OSSL_STORE_CTX *st = OSSL_STORE_open(uri, NULL, NULL, NULL, NULL);
    OSSL_STORE_INFO *info;
    EVP_PKEY *pk = NULL;

    if (st == NULL)
        return NULL;
    OSSL_STORE_expect(st, OSSL_STORE_INFO_PKEY);
    while (pk == NULL && !OSSL_STORE_eof(st)) {
        info = OSSL_STORE_load(st);
        if (info != NULL && OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pk = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
    return pk;
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

static void *thread_main(void *arg)
{
    return (void *)(long)sign_verify((int)(long)arg);
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

int main(int argc, char **argv)
{
    int n, i, status, failed = 0, signers = 0;
    BIO *b;

    if (argc != 6) {
        fprintf(stderr, "usage: %s fork|threads KEY PUB N COUNT\n", argv[0]);
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
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pub);
    return failed == 0 ? 0 : 1;
}
