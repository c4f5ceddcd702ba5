/* faultdrv.c: a long-running process that loads a token key once by URI
 * and signs with it on command, verifying every signature in software, while
 * a test changes the faults of tests/faultmod underneath. Used by
 * tests/faults/t_faults_*.sh.
 *
 *   faultdrv KEY-URI PUB.pem
 *
 * Reads one command per line on stdin and answers each with one line:
 *   load          load the key (again): "load ok" or "load fail err=..."
 *   sign N        N signatures: "sign ok=A fail=F bad=B err=..."
 *   run T MS      T threads sign for MS milliseconds: "run ok=A fail=F bad=B err=..."
 *   quit          exit 0
 * ok: signed and verified; fail: the signature call failed (err= gives the
 * OpenSSL error queue of the last failure on one line, or "-"); bad: a
 * signature that does not verify (never acceptable). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/store.h>
#include "../lib/storekey.h"

static EVP_PKEY *priv, *pub;
static const char *uri;

/* Results of one command. */
static pthread_mutex_t res_lock = PTHREAD_MUTEX_INITIALIZER;
static long n_ok, n_fail, n_bad;
static char last_err[2048];
static unsigned long msg_seq;

static int err_cb(const char *str, size_t len, void *arg)
{
    char *buf = arg;
    size_t have = strlen(buf), i;

    if (have > 0 && have + 3 < 2048) {
        memcpy(buf + have, " | ", 3);
        have += 3;
    }
    for (i = 0; i < len && have + 1 < 2048; i++)
        if (str[i] != '\n' && str[i] != '\r')
            buf[have++] = str[i];
    buf[have] = '\0';
    return 1;
}

/* The thread's OpenSSL errors as one line (the queue is emptied). */
static void take_errors(char *buf)
{
    buf[0] = '\0';
    ERR_print_errors_cb(err_cb, buf);
    if (buf[0] == '\0')
        strcpy(buf, "(no error queued)");
}

static EVP_PKEY *load_private(void)
{
    return test_store_key(uri, NULL, NULL, OSSL_STORE_INFO_PKEY);
}

/* One signature and its check; updates the counts. */
static void sign_one(EVP_PKEY *key)
{
    unsigned char sig[1024];
    char msg[96], err[2048];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *s = EVP_MD_CTX_new(), *v = EVP_MD_CTX_new();
    unsigned long seq;
    int signed_ok, verified = 0;

    pthread_mutex_lock(&res_lock);
    seq = ++msg_seq;
    pthread_mutex_unlock(&res_lock);
    snprintf(msg, sizeof(msg), "faultdrv message %lu from %d", seq,
             (int)getpid());
    signed_ok = s != NULL && v != NULL
                && EVP_DigestSignInit(s, NULL, EVP_sha256(), NULL, key) > 0
                && EVP_DigestSign(s, sig, &siglen, (unsigned char *)msg,
                                  strlen(msg)) > 0;
    if (signed_ok)
        verified = EVP_DigestVerifyInit(v, NULL, EVP_sha256(), NULL, pub) > 0
                   && EVP_DigestVerify(v, sig, siglen, (unsigned char *)msg,
                                       strlen(msg)) == 1;
    if (!signed_ok || !verified)
        take_errors(err);
    pthread_mutex_lock(&res_lock);
    if (!signed_ok) {
        n_fail++;
        memcpy(last_err, err, sizeof(last_err));
    } else if (!verified) {
        n_bad++;
        snprintf(last_err, sizeof(last_err), "BAD SIGNATURE: %s", err);
    } else {
        n_ok++;
    }
    pthread_mutex_unlock(&res_lock);
    EVP_MD_CTX_free(s);
    EVP_MD_CTX_free(v);
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static long run_ms;

static void *run_thread(void *arg)
{
    double end = now_ms() + (double)run_ms;

    (void)arg;
    while (now_ms() < end)
        sign_one(priv);
    return NULL;
}

static void reset_counts(void)
{
    n_ok = n_fail = n_bad = 0;
    strcpy(last_err, "-");
}

static void report(const char *what)
{
    printf("%s ok=%ld fail=%ld bad=%ld err=%s\n", what, n_ok, n_fail, n_bad,
           last_err);
    fflush(stdout);
}

static void cmd_load(void)
{
    EVP_PKEY *pk = load_private();
    char err[2048];

    if (pk == NULL) {
        take_errors(err);
        printf("load fail err=%s\n", err);
    } else {
        EVP_PKEY_free(priv);
        priv = pk;
        printf("load ok\n");
    }
    fflush(stdout);
}

static void cmd_run(long threads, long ms)
{
    pthread_t th[32];
    long i, started = 0;

    run_ms = ms;
    reset_counts();
    for (i = 0; i < threads && i < 32; i++)
        if (pthread_create(&th[started], NULL, run_thread, NULL) == 0)
            started++;
    for (i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    report("run");
}

int main(int argc, char **argv)
{
    char line[256];
    long a, b, i;
    BIO *bio;

    if (argc != 3) {
        fprintf(stderr, "usage: %s KEY-URI PUB.pem\n", argv[0]);
        return 2;
    }
    uri = argv[1];
    bio = BIO_new_file(argv[2], "r");
    pub = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (pub == NULL) {
        fprintf(stderr, "faultdrv: cannot read %s\n", argv[2]);
        return 2;
    }
    printf("ready\n");
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin) != NULL) {
        if (strncmp(line, "quit", 4) == 0)
            break;
        if (strncmp(line, "load", 4) == 0) {
            cmd_load();
        } else if (sscanf(line, "sign %ld", &a) == 1) {
            reset_counts();
            for (i = 0; i < a; i++) {
                if (priv == NULL) {
                    n_fail++;
                    strcpy(last_err, "no key loaded");
                    continue;
                }
                sign_one(priv);
            }
            report("sign");
        } else if (sscanf(line, "run %ld %ld", &a, &b) == 2 && priv != NULL) {
            cmd_run(a, b);
        } else {
            printf("error unknown command or no key: %s", line);
            fflush(stdout);
        }
    }
    EVP_PKEY_free(priv);
    EVP_PKEY_free(pub);
    return 0;
}
