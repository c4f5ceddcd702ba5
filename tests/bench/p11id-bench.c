/* p11id-bench.c: the measuring half of `make bench` (tests/bench/run-bench.sh
 * drives it). One invocation measures one thing and prints one JSON line.
 *
 *   p11id-bench sign  --path PATH --alg ALG [--threads N] [--seconds S]
 *                     [--warmup S] [--count N] KEY OPTIONS
 *       Signatures per second. PATH:
 *         raw     C_SignInit + C_Sign on the token key object (PKCS#11 directly)
 *         copy    the same on a session copy of it (C_CopyObject, CKA_TOKEN
 *                 false, still sensitive): the fastest any caller can go
 *         p11id   EVP_DigestSign on the EVP_PKEY loaded by URI (OSSL_STORE);
 *                 the process's OPENSSL_CONF activates p11id
 *         libp11  EVP_DigestSign on the key of the libp11 engine
 *         soft    EVP_DigestSign on a software key file (default provider)
 *       ALG: rsa (PKCS#1 v1.5 SHA-256), pss (RSA-PSS SHA-256, salt = digest),
 *       p256 (ECDSA SHA-256), p384 (ECDSA SHA-384), ed25519.
 *       EVP paths do what libssl does for each CertificateVerify: a new
 *       EVP_MD_CTX, EVP_DigestSignInit_ex, EVP_DigestSign(NULL) for the
 *       length, EVP_DigestSign. Raw paths hash in software and sign what the
 *       provider sends to the token (DigestInfo for CKM_RSA_PKCS, the digest
 *       with PSS parameters, the digest for CKM_ECDSA (r||s to DER), the
 *       message for CKM_EDDSA). One PKCS#11 session per thread.
 *       --count N: sign N times in one thread instead (profiling, call counts).
 *   p11id-bench mem   --path PATH --alg ALG --n1 N1 --n2 N2 KEY OPTIONS
 *       Resident size (and malloc'd bytes) after N1 and after N2 signatures.
 *   p11id-bench load  --key URI|FILE [--engine] [--repeat N]
 *       Time from URI to EVP_PKEY: the first load in the process, then N more.
 *   p11id-bench tls   --port P --ca CA --cert CRT --key KEY --tls 1.2|1.3
 *                     [--proto rev|http] [--threads N] [--seconds S] [--warmup S]
 *                     [--server-pids PID,PID...]
 *       Full mutual-TLS handshakes per second against a server on 127.0.0.1:
 *       a new connection and a new SSL each time, no session reuse; after the
 *       handshake one request/answer round trip (s_server -rev: "CLOSE";
 *       http: GET /), so the server has finished its side.
 *
 * KEY OPTIONS: --key URI|FILE (EVP paths; --engine with libp11),
 * --module SO --token LABEL --label LABEL --pin PIN (raw paths and libp11),
 * --pub PEM (public key: every path's first signature is verified with it).
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* the libp11 baseline is an ENGINE */
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_ZERO_STATS
#define CALLGRIND_ZERO_STATS
#endif

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/store.h>
#include <p11-kit/pkcs11.h>
#include "../lib/storekey.h"

#define MAX_THREADS 16
#define MSG_LEN 130 /* about a TLS 1.3 CertificateVerify input */

/* --- options ------------------------------------------------------------------ */

static struct {
    const char *mode, *path, *alg, *key, *pub, *module, *token, *label, *pin;
    const char *ca, *cert, *proto, *server_pids;
    bool engine;
    int threads, port, tls, repeat;
    double seconds, warmup;
    long count, n1, n2;
} opt = { .threads = 1, .seconds = 1.0, .warmup = 0.3, .repeat = 20,
          .proto = "rev", .tls = 13 };

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "p11id-bench: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this process, all threads, user and system. */
static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time (user + system) of other processes, from /proc/PID/stat. */
static double cpu_of_pids(const char *list)
{
    char buf[1024], path[64], *p, *end, *copy;
    double sum = 0, tick = (double)sysconf(_SC_CLK_TCK);
    unsigned long ut, st;
    FILE *fp;
    size_t n;

    if (list == NULL || *list == '\0')
        return 0;
    copy = strdup(list);
    if (copy == NULL)
        return 0;
    for (p = strtok(copy, ","); p != NULL; p = strtok(NULL, ",")) {
        snprintf(path, sizeof(path), "/proc/%s/stat", p);
        fp = fopen(path, "r");
        if (fp == NULL)
            continue;
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        /* after "(comm)": state ppid pgrp session tty tpgid flags minflt
         * cminflt majflt cmajflt utime stime */
        end = strrchr(buf, ')');
        if (end != NULL
            && sscanf(end + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                      &ut, &st) == 2)
            sum += (double)(ut + st) / tick;
    }
    free(copy);
    return sum;
}

static void sleep_s(double s)
{
    struct timespec ts;

    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* --- algorithms ----------------------------------------------------------------- */

typedef enum { ALG_RSA, ALG_PSS, ALG_P256, ALG_P384, ALG_ED25519 } ALG;

static const struct {
    const char *name;
    const char *md; /* NULL: EdDSA signs the message */
} algs[] = {
    [ALG_RSA] = { "rsa", "SHA256" },
    [ALG_PSS] = { "pss", "SHA256" },
    [ALG_P256] = { "p256", "SHA256" },
    [ALG_P384] = { "p384", "SHA384" },
    [ALG_ED25519] = { "ed25519", NULL },
};

static ALG alg;
static EVP_MD *soft_md; /* fetched once: the raw paths' hashing */
static unsigned char msg[MSG_LEN];

static ALG alg_by_name(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (strcmp(algs[i].name, name) == 0)
            return (ALG)i;
    die("unknown --alg %s (rsa, pss, p256, p384, ed25519)", name);
    return ALG_RSA;
}

/* --- keys through OpenSSL ---------------------------------------------------------- */

static ENGINE *engine;

static EVP_PKEY *load_store(const char *uri, bool private_key)
{
    return test_store_key(uri, NULL, NULL,
                          private_key ? OSSL_STORE_INFO_PKEY
                                      : OSSL_STORE_INFO_PUBKEY);
}

static void engine_start(void)
{
    if (engine != NULL)
        return;
    ENGINE_load_builtin_engines();
    engine = ENGINE_by_id("pkcs11");
    if (engine == NULL)
        die("no ENGINE pkcs11 (libengine-pkcs11-openssl)");
    if (opt.module != NULL
        && !ENGINE_ctrl_cmd_string(engine, "MODULE_PATH", opt.module, 0))
        die("libp11: MODULE_PATH %s refused", opt.module);
    if (opt.pin != NULL && !ENGINE_ctrl_cmd_string(engine, "PIN", opt.pin, 0))
        die("libp11: PIN refused");
    if (!ENGINE_init(engine))
        die("libp11: ENGINE_init failed");
}

static EVP_PKEY *load_key(const char *spec)
{
    if (opt.engine) {
        engine_start();
        return ENGINE_load_private_key(engine, spec, NULL, NULL);
    }
    return load_store(spec, true);
}

static EVP_PKEY *load_pub(const char *file)
{
    FILE *fp = fopen(file, "r");
    EVP_PKEY *pk;

    if (fp == NULL)
        die("cannot open %s", file);
    pk = PEM_read_PUBKEY(fp, NULL, NULL, NULL);
    fclose(fp);
    if (pk == NULL)
        die("cannot read public key %s", file);
    return pk;
}

/* --- raw PKCS#11 ------------------------------------------------------------------ */

static CK_FUNCTION_LIST *fl;
static CK_OBJECT_HANDLE raw_key;
static CK_SESSION_HANDLE holder; /* keeps the session copy alive */

static void ck(CK_RV rv, const char *what)
{
    if (rv != CKR_OK)
        die("%s: CK_RV 0x%lx", what, (unsigned long)rv);
}

static CK_SLOT_ID raw_slot(void)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = 64, i;
    CK_TOKEN_INFO ti;
    size_t len = strlen(opt.token);

    ck(fl->C_GetSlotList(CK_TRUE, slots, &n), "C_GetSlotList");
    for (i = 0; i < n; i++) {
        ck(fl->C_GetTokenInfo(slots[i], &ti), "C_GetTokenInfo");
        if (len <= sizeof(ti.label) && memcmp(ti.label, opt.token, len) == 0
            && (len == sizeof(ti.label) || ti.label[len] == ' '))
            return slots[i];
    }
    die("no token labelled %s", opt.token);
    return 0;
}

static CK_SLOT_ID slot;

static void raw_setup(bool copy)
{
    CK_RV (*get)(CK_FUNCTION_LIST **);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE t[] = {
        { CKA_CLASS, &cls, sizeof(cls) },
        { CKA_LABEL, (void *)opt.label, strlen(opt.label) },
    };
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE ct[] = { { CKA_TOKEN, &no, sizeof(no) } };
    CK_OBJECT_HANDLE h[2];
    CK_ULONG n = 0;
    void *dl;

    if (opt.module == NULL || opt.token == NULL || opt.label == NULL)
        die("raw paths need --module, --token and --label");
    dl = dlopen(opt.module, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL)
        die("dlopen %s: %s", opt.module, dlerror());
    get = (CK_RV(*)(CK_FUNCTION_LIST **))dlsym(dl, "C_GetFunctionList");
    if (get == NULL)
        die("%s has no C_GetFunctionList", opt.module);
    ck(get(&fl), "C_GetFunctionList");
    {
        CK_C_INITIALIZE_ARGS ia;

        memset(&ia, 0, sizeof(ia));
        ia.flags = CKF_OS_LOCKING_OK;
        ck(fl->C_Initialize(&ia), "C_Initialize");
    }
    slot = raw_slot();
    ck(fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &holder),
       "C_OpenSession");
    if (opt.pin != NULL)
        ck(fl->C_Login(holder, CKU_USER, (CK_UTF8CHAR *)opt.pin,
                       strlen(opt.pin)),
           "C_Login");
    ck(fl->C_FindObjectsInit(holder, t, 2), "C_FindObjectsInit");
    ck(fl->C_FindObjects(holder, h, 2, &n), "C_FindObjects");
    ck(fl->C_FindObjectsFinal(holder), "C_FindObjectsFinal");
    if (n != 1)
        die("%lu private keys labelled %s", (unsigned long)n, opt.label);
    raw_key = h[0];
    if (copy)
        ck(fl->C_CopyObject(holder, h[0], ct, 1, &raw_key), "C_CopyObject");
}

static const unsigned char sha256_prefix[] = {
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
    0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20
};

/* r||s (each half big-endian) to a DER ECDSA-Sig-Value. */
static size_t der_int(unsigned char *out, const unsigned char *v, size_t n)
{
    size_t o = 0;

    while (n > 1 && v[0] == 0) {
        v++;
        n--;
    }
    out[o++] = 0x02;
    out[o++] = (unsigned char)(n + (v[0] & 0x80 ? 1 : 0));
    if (v[0] & 0x80)
        out[o++] = 0;
    memcpy(out + o, v, n);
    return o + n;
}

static size_t rs_to_der(const unsigned char *rs, size_t len, unsigned char *out)
{
    unsigned char body[2 * 70];
    size_t b = 0, o = 0;

    b += der_int(body + b, rs, len / 2);
    b += der_int(body + b, rs + len / 2, len / 2);
    out[o++] = 0x30;
    if (b >= 128)
        out[o++] = 0x81;
    out[o++] = (unsigned char)b;
    memcpy(out + o, body, b);
    return o + b;
}

static int raw_sign(CK_SESSION_HANDLE s, unsigned char *sig, size_t *siglen)
{
    unsigned char in[64 + sizeof(sha256_prefix)], raw[512];
    unsigned int dlen = 0;
    CK_RSA_PKCS_PSS_PARAMS pss = { CKM_SHA256, CKG_MGF1_SHA256, 32 };
    CK_MECHANISM mech = { CKM_RSA_PKCS, NULL, 0 };
    CK_ULONG inlen, outlen = sizeof(raw);
    const unsigned char *tbs = in;

    switch (alg) {
    case ALG_RSA:
        memcpy(in, sha256_prefix, sizeof(sha256_prefix));
        if (!EVP_Digest(msg, MSG_LEN, in + sizeof(sha256_prefix), &dlen,
                        soft_md, NULL))
            return 0;
        inlen = sizeof(sha256_prefix) + dlen;
        break;
    case ALG_PSS:
        mech.mechanism = CKM_RSA_PKCS_PSS;
        mech.pParameter = &pss;
        mech.ulParameterLen = sizeof(pss);
        /* fall through */
    case ALG_P256:
    case ALG_P384:
        if (alg != ALG_PSS)
            mech.mechanism = CKM_ECDSA;
        if (!EVP_Digest(msg, MSG_LEN, in, &dlen, soft_md, NULL))
            return 0;
        inlen = dlen;
        break;
    default:
        mech.mechanism = CKM_EDDSA;
        tbs = msg;
        inlen = MSG_LEN;
        break;
    }
    if (fl->C_SignInit(s, &mech, raw_key) != CKR_OK
        || fl->C_Sign(s, (CK_BYTE *)tbs, inlen, raw, &outlen) != CKR_OK)
        return 0;
    if (alg == ALG_P256 || alg == ALG_P384) {
        *siglen = rs_to_der(raw, outlen, sig);
    } else {
        memcpy(sig, raw, outlen);
        *siglen = outlen;
    }
    return 1;
}

/* --- EVP signing, as libssl does it ---------------------------------------------------- */

static EVP_PKEY *pkey;

static int evp_sign(unsigned char *sig, size_t *siglen)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    size_t len = 0;
    int ok = 0;

    if (mctx == NULL
        || EVP_DigestSignInit_ex(mctx, &pctx, algs[alg].md, NULL, NULL, pkey,
                                 NULL) <= 0)
        goto done;
    if (alg == ALG_PSS
        && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
                   <= 0))
        goto done;
    if (EVP_DigestSign(mctx, NULL, &len, msg, MSG_LEN) <= 0 || len > 1024)
        goto done;
    ok = EVP_DigestSign(mctx, sig, &len, msg, MSG_LEN) > 0;
    *siglen = len;
done:
    EVP_MD_CTX_free(mctx);
    return ok;
}

/* One context initialised once (the "reuse" path): what p11id costs per
 * signature without OpenSSL's per-context set-up. EVP_DigestSign is one-shot
 * in p11id, so the context signs message after message. */
static EVP_MD_CTX *reuse_ctx_new(void)
{
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;

    if (mctx == NULL
        || EVP_DigestSignInit_ex(mctx, &pctx, algs[alg].md, NULL, NULL, pkey,
                                 NULL) <= 0
        || (alg == ALG_PSS
            && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0
                || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
                                                    RSA_PSS_SALTLEN_DIGEST)
                       <= 0)))
        die("%s/%s: cannot initialise the signing context", opt.path,
            opt.alg);
    return mctx;
}

static int evp_sign_reuse(EVP_MD_CTX *mctx, unsigned char *sig,
                          size_t *siglen)
{
    size_t len = 0;

    if (EVP_DigestSign(mctx, NULL, &len, msg, MSG_LEN) <= 0 || len > 1024)
        return 0;
    if (EVP_DigestSign(mctx, sig, &len, msg, MSG_LEN) <= 0)
        return 0;
    *siglen = len;
    return 1;
}

/* --- the path under test ------------------------------------------------------------- */

typedef enum { P_RAW, P_COPY, P_P11ID, P_REUSE, P_LIBP11, P_SOFT } PATH;
static PATH path;

static bool path_raw(void)
{
    return path == P_RAW || path == P_COPY;
}

static void path_setup(void)
{
    if (strcmp(opt.path, "raw") == 0)
        path = P_RAW;
    else if (strcmp(opt.path, "copy") == 0 || strcmp(opt.path, "copyp") == 0)
        path = P_COPY; /* copyp: the same, run with p11id activated */
    else if (strcmp(opt.path, "p11id") == 0)
        path = P_P11ID;
    else if (strcmp(opt.path, "reuse") == 0)
        path = P_REUSE;
    else if (strcmp(opt.path, "libp11") == 0)
        path = P_LIBP11;
    else if (strcmp(opt.path, "soft") == 0)
        path = P_SOFT;
    else
        die("unknown --path %s (raw, copy, copyp, p11id, reuse, libp11, soft)",
            opt.path);
    if (algs[alg].md != NULL) {
        /* Fetched once: no per-signature fetch in the raw paths. */
        soft_md = EVP_MD_fetch(NULL, algs[alg].md, "provider=default");
        if (soft_md == NULL)
            die("no digest %s", algs[alg].md);
    }
    if (path_raw()) {
        raw_setup(path == P_COPY);
        return;
    }
    if (opt.key == NULL)
        die("--path %s needs --key", opt.path);
    opt.engine = path == P_LIBP11;
    pkey = load_key(opt.key);
    if (pkey == NULL)
        die("cannot load key %s", opt.key);
}

typedef struct {
    CK_SESSION_HANDLE session;
    EVP_MD_CTX *reuse; /* the reuse path: this signer's context */
    unsigned char sig[1024];
    size_t siglen;
} SIGNER;

static void signer_init(SIGNER *s)
{
    memset(s, 0, sizeof(*s));
    if (path_raw())
        ck(fl->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL,
                             &s->session),
           "C_OpenSession");
    if (path == P_REUSE)
        s->reuse = reuse_ctx_new();
}

static int sign_once(SIGNER *s)
{
    s->siglen = 0;
    if (path_raw())
        return raw_sign(s->session, s->sig, &s->siglen);
    if (path == P_REUSE)
        return evp_sign_reuse(s->reuse, s->sig, &s->siglen);
    return evp_sign(s->sig, &s->siglen);
}

/* The first signature of every path is checked with the public key file. */
static void check_signature(const SIGNER *s)
{
    EVP_PKEY *pub;
    EVP_MD_CTX *v;
    EVP_PKEY_CTX *pctx = NULL;
    int ok;

    if (opt.pub == NULL)
        return;
    pub = load_pub(opt.pub);
    v = EVP_MD_CTX_new();
    ok = v != NULL
         && EVP_DigestVerifyInit_ex(v, &pctx, algs[alg].md, NULL,
                                    "provider=default", pub, NULL) > 0
         && (alg != ALG_PSS
             || (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0
                 && EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
                                                     RSA_PSS_SALTLEN_AUTO)
                        > 0))
         && EVP_DigestVerify(v, s->sig, s->siglen, msg, MSG_LEN) == 1;
    EVP_MD_CTX_free(v);
    EVP_PKEY_free(pub);
    if (!ok)
        die("%s/%s: the signature does not verify with %s", opt.path,
            opt.alg, opt.pub);
}

/* --- timed runs: every thread signs until told to stop; the counts are read
 * at the start and the end of the measured window ------------------------------------ */

typedef struct {
    pthread_t tid;
    SIGNER signer;
    long ops;      /* atomic */
    int failed;    /* atomic */
    char pad[64];
} WORKER;

static WORKER workers[MAX_THREADS];
static int stop; /* atomic */

static void *worker_main(void *arg)
{
    WORKER *w = arg;

    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        if (!sign_once(&w->signer)) {
            __atomic_store_n(&w->failed, 1, __ATOMIC_RELAXED);
            break;
        }
        __atomic_add_fetch(&w->ops, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static long ops_now(int n)
{
    long sum = 0;
    int i;

    for (i = 0; i < n; i++)
        sum += __atomic_load_n(&workers[i].ops, __ATOMIC_RELAXED);
    return sum;
}

static void rss_and_heap(long *rss_kib, long *heap)
{
    char line[256];
    FILE *fp = fopen("/proc/self/status", "r");
    struct mallinfo2 mi = mallinfo2();

    *rss_kib = -1;
    *heap = (long)mi.uordblks + (long)mi.hblkhd;
    if (fp == NULL)
        return;
    while (fgets(line, sizeof(line), fp) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kib = strtol(line + 6, NULL, 10);
    fclose(fp);
}

/* Fixed count in this thread: the loop that callgrind measures. */
__attribute__((noinline)) static long bench_count_loop(SIGNER *s, long n)
{
    long i;

    for (i = 0; i < n; i++)
        if (!sign_once(s))
            return i;
    return n;
}

static void json_head(const char *mode)
{
    printf("{\"mode\":\"%s\",\"path\":\"%s\",\"alg\":\"%s\"", mode, opt.path,
           opt.alg);
}

static int cmd_sign(void)
{
    SIGNER first;
    double t0, t1, u0, u1;
    long c0, c1, done;
    int i, n = opt.threads;

    path_setup();
    signer_init(&first);
    if (!sign_once(&first))
        die("%s/%s: the first signature failed", opt.path, opt.alg);
    check_signature(&first);
    /* And the second: the reuse path signs again with the same context. */
    if (!sign_once(&first))
        die("%s/%s: the second signature failed", opt.path, opt.alg);
    check_signature(&first);
    if (opt.count > 0) {
        /* Under callgrind (tests/bench/run-bench.sh), only the loop counts:
         * what the warm-up collected (the token's first signature when the
         * token's functions toggle collection) is dropped here. */
        for (i = 0; i < 3; i++)
            if (!sign_once(&first))
                die("%s/%s: a warm-up signature failed", opt.path, opt.alg);
        CALLGRIND_ZERO_STATS;
        t0 = now();
        done = bench_count_loop(&first, opt.count);
        t1 = now();
        if (done != opt.count)
            die("%s/%s: signature %ld failed", opt.path, opt.alg, done + 1);
        json_head("count");
        printf(",\"ops\":%ld,\"secs\":%.6f,\"rate\":%.2f}\n", done, t1 - t0,
               (double)done / (t1 - t0));
        return 0;
    }
    if (n < 1 || n > MAX_THREADS)
        die("--threads 1..%d", MAX_THREADS);
    for (i = 0; i < n; i++) {
        signer_init(&workers[i].signer);
        if (pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]))
            die("pthread_create");
    }
    sleep_s(opt.warmup);
    t0 = now();
    u0 = cpu_now();
    c0 = ops_now(n);
    sleep_s(opt.seconds);
    c1 = ops_now(n);
    u1 = cpu_now();
    t1 = now();
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (i = 0; i < n; i++) {
        pthread_join(workers[i].tid, NULL);
        if (workers[i].failed)
            die("%s/%s: a signature failed in thread %d", opt.path, opt.alg,
                i);
    }
    /* rate: signatures per second of wall time; cpu_us: CPU time (all
     * threads, user + system) per signature, which other load on a shared
     * machine disturbs much less. */
    json_head("sign");
    printf(",\"threads\":%d,\"ops\":%ld,\"secs\":%.6f,\"rate\":%.2f,"
           "\"cpu_us\":%.3f}\n",
           n, c1 - c0, t1 - t0, (double)(c1 - c0) / (t1 - t0),
           c1 > c0 ? (u1 - u0) * 1e6 / (double)(c1 - c0) : 0.0);
    return 0;
}

static int cmd_mem(void)
{
    SIGNER s;
    long rss1, heap1, rss2, heap2;

    path_setup();
    signer_init(&s);
    if (opt.n1 <= 0 || opt.n2 <= opt.n1)
        die("mem needs 0 < --n1 < --n2");
    if (bench_count_loop(&s, opt.n1) != opt.n1)
        die("signing failed");
    check_signature(&s);
    rss_and_heap(&rss1, &heap1);
    if (bench_count_loop(&s, opt.n2 - opt.n1) != opt.n2 - opt.n1)
        die("signing failed");
    rss_and_heap(&rss2, &heap2);
    json_head("mem");
    printf(",\"n1\":%ld,\"n2\":%ld,\"rss1_kib\":%ld,\"rss2_kib\":%ld,"
           "\"heap1\":%ld,\"heap2\":%ld}\n",
           opt.n1, opt.n2, rss1, rss2, heap1, heap2);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int cmd_load(void)
{
    double t0, first, *again;
    EVP_PKEY *pk;
    int i, n = opt.repeat;

    if (opt.key == NULL)
        die("load needs --key");
    /* Configuration and provider activation are not part of a key load. */
    OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL);
    /* The first load includes what the key's first use costs: the module's
     * C_Initialize and the login (p11id's default load-behavior is lazy:
     * the module is opened at the first key load; the engine opens it in
     * ENGINE_init). */
    t0 = now();
    pk = load_key(opt.key);
    first = now() - t0;
    if (pk == NULL)
        die("cannot load %s", opt.key);
    EVP_PKEY_free(pk);
    again = calloc((size_t)(n > 0 ? n : 1), sizeof(*again));
    if (again == NULL)
        die("out of memory");
    for (i = 0; i < n; i++) {
        t0 = now();
        pk = load_key(opt.key);
        again[i] = now() - t0;
        if (pk == NULL)
            die("cannot load %s again", opt.key);
        EVP_PKEY_free(pk);
    }
    qsort(again, (size_t)n, sizeof(*again), cmp_double);
    printf("{\"mode\":\"load\",\"path\":\"%s\",\"first_ms\":%.3f,"
           "\"again_ms\":%.3f,\"again_min_ms\":%.3f,\"repeat\":%d}\n",
           opt.path != NULL ? opt.path : (opt.engine ? "libp11" : "p11id"),
           first * 1e3, n > 0 ? again[n / 2] * 1e3 : 0.0,
           n > 0 ? again[0] * 1e3 : 0.0, n);
    free(again);
    return 0;
}

/* --- TLS handshakes -------------------------------------------------------------------- */

static SSL_CTX *tls_ctx;

static SSL_CTX *tls_ctx_new(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int v = opt.tls == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;

    if (ctx == NULL)
        die("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(ctx, v);
    SSL_CTX_set_max_proto_version(ctx, v);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, opt.ca, NULL) != 1)
        die("cannot load CA %s", opt.ca);
    if (SSL_CTX_use_certificate_chain_file(ctx, opt.cert) != 1)
        die("cannot load certificate %s", opt.cert);
    pkey = load_key(opt.key);
    if (pkey == NULL)
        die("cannot load key %s", opt.key);
    if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1
        || SSL_CTX_check_private_key(ctx) != 1)
        die("key %s does not go with %s", opt.key, opt.cert);
    return ctx;
}

/* One connection: handshake, one round trip, close. */
static int tls_once(void)
{
    static const char rev_req[] = "ping\nCLOSE\n";
    static const char http_req[] = "GET / HTTP/1.0\r\n\r\n";
    const char *req = strcmp(opt.proto, "http") == 0 ? http_req : rev_req;
    struct sockaddr_in sa;
    char buf[512];
    int fd, one = 1, ok = 0, r;
    SSL *ssl = NULL;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)opt.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto done;
    ssl = SSL_new(tls_ctx);
    if (ssl == NULL || !SSL_set_fd(ssl, fd) || SSL_connect(ssl) != 1)
        goto done;
    if (SSL_write(ssl, req, (int)strlen(req)) <= 0)
        goto done;
    /* Read the answer until the server closes: it has done its whole side
     * (in TLS 1.3 a refused client certificate shows up only here). */
    while ((r = SSL_read(ssl, buf, sizeof(buf))) > 0)
        ok = 1;
    if (ok && SSL_get_error(ssl, r) == SSL_ERROR_ZERO_RETURN)
        SSL_shutdown(ssl);
done:
    if (!ok)
        ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return ok;
}

/* Fixed number of handshakes in this thread: the loop callgrind measures. */
__attribute__((noinline)) static long bench_tls_count_loop(long n)
{
    long i;

    for (i = 0; i < n; i++)
        if (!tls_once())
            return i;
    return n;
}

static void *tls_worker(void *arg)
{
    WORKER *w = arg;
    int errors = 0;

    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        if (tls_once()) {
            __atomic_add_fetch(&w->ops, 1, __ATOMIC_RELAXED);
            errors = 0;
        } else if (++errors > 20) {
            __atomic_store_n(&w->failed, 1, __ATOMIC_RELAXED);
            break;
        }
    }
    return NULL;
}

static int cmd_tls(void)
{
    double t0, t1, u0, u1, s0, s1;
    long c0, c1;
    int i, n = opt.threads;

    if (opt.port <= 0 || opt.ca == NULL || opt.cert == NULL || opt.key == NULL)
        die("tls needs --port, --ca, --cert and --key");
    if (n < 1 || n > MAX_THREADS)
        die("--threads 1..%d", MAX_THREADS);
    signal(SIGPIPE, SIG_IGN);
    tls_ctx = tls_ctx_new();
    if (!tls_once()) {
        ERR_print_errors_fp(stderr);
        die("the first handshake with 127.0.0.1:%d failed", opt.port);
    }
    if (opt.count > 0) { /* fixed number of handshakes (call counts, profiles) */
        CALLGRIND_ZERO_STATS;
        if (bench_tls_count_loop(opt.count - 1) != opt.count - 1)
            die("a handshake failed");
        printf("{\"mode\":\"tls-count\",\"handshakes\":%ld}\n", opt.count);
        return 0;
    }
    for (i = 0; i < n; i++)
        if (pthread_create(&workers[i].tid, NULL, tls_worker, &workers[i]))
            die("pthread_create");
    sleep_s(opt.warmup);
    t0 = now();
    u0 = cpu_now();
    s0 = cpu_of_pids(opt.server_pids);
    c0 = ops_now(n);
    sleep_s(opt.seconds);
    c1 = ops_now(n);
    s1 = cpu_of_pids(opt.server_pids);
    u1 = cpu_now();
    t1 = now();
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (i = 0; i < n; i++) {
        pthread_join(workers[i].tid, NULL);
        if (workers[i].failed)
            die("handshakes keep failing (thread %d)", i);
    }
    /* CPU time per handshake of this client and of the server processes
     * (--server-pids; /proc accounting, 10 ms ticks). */
    printf("{\"mode\":\"tls\",\"tls\":\"1.%d\",\"threads\":%d,\"ops\":%ld,"
           "\"secs\":%.6f,\"rate\":%.2f,\"client_cpu_us\":%.1f,"
           "\"server_cpu_us\":%.1f}\n",
           opt.tls % 10, n, c1 - c0, t1 - t0, (double)(c1 - c0) / (t1 - t0),
           c1 > c0 ? (u1 - u0) * 1e6 / (double)(c1 - c0) : 0.0,
           c1 > c0 && opt.server_pids != NULL
               ? (s1 - s0) * 1e6 / (double)(c1 - c0) : 0.0);
    return 0;
}

/* --- main -------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "path", required_argument, NULL, 'P' },
        { "alg", required_argument, NULL, 'a' },
        { "threads", required_argument, NULL, 't' },
        { "seconds", required_argument, NULL, 's' },
        { "warmup", required_argument, NULL, 'w' },
        { "count", required_argument, NULL, 'c' },
        { "n1", required_argument, NULL, '1' },
        { "n2", required_argument, NULL, '2' },
        { "key", required_argument, NULL, 'k' },
        { "pub", required_argument, NULL, 'u' },
        { "engine", no_argument, NULL, 'e' },
        { "module", required_argument, NULL, 'm' },
        { "token", required_argument, NULL, 'T' },
        { "label", required_argument, NULL, 'l' },
        { "pin", required_argument, NULL, 'p' },
        { "repeat", required_argument, NULL, 'r' },
        { "port", required_argument, NULL, 'o' },
        { "ca", required_argument, NULL, 'C' },
        { "cert", required_argument, NULL, 'x' },
        { "tls", required_argument, NULL, 'v' },
        { "proto", required_argument, NULL, 'q' },
        { "server-pids", required_argument, NULL, 'S' },
        { NULL, 0, NULL, 0 }
    };
    int c;
    size_t i;

    if (argc < 2)
        die("usage: p11id-bench sign|mem|load|tls OPTIONS (see the source)");
    opt.mode = argv[1];
    optind = 2;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'P': opt.path = optarg; break;
        case 'a': opt.alg = optarg; break;
        case 't': opt.threads = atoi(optarg); break;
        case 's': opt.seconds = atof(optarg); break;
        case 'w': opt.warmup = atof(optarg); break;
        case 'c': opt.count = atol(optarg); break;
        case '1': opt.n1 = atol(optarg); break;
        case '2': opt.n2 = atol(optarg); break;
        case 'k': opt.key = optarg; break;
        case 'u': opt.pub = optarg; break;
        case 'e': opt.engine = true; break;
        case 'm': opt.module = optarg; break;
        case 'T': opt.token = optarg; break;
        case 'l': opt.label = optarg; break;
        case 'p': opt.pin = optarg; break;
        case 'r': opt.repeat = atoi(optarg); break;
        case 'o': opt.port = atoi(optarg); break;
        case 'C': opt.ca = optarg; break;
        case 'x': opt.cert = optarg; break;
        case 'v': opt.tls = strcmp(optarg, "1.2") == 0 ? 12 : 13; break;
        case 'q': opt.proto = optarg; break;
        case 'S': opt.server_pids = optarg; break;
        default: die("bad option");
        }
    }
    for (i = 0; i < sizeof(msg); i++)
        msg[i] = (unsigned char)(0x20 + i % 64);
    if (strcmp(opt.mode, "sign") == 0 || strcmp(opt.mode, "mem") == 0) {
        if (opt.path == NULL || opt.alg == NULL)
            die("%s needs --path and --alg", opt.mode);
        alg = alg_by_name(opt.alg);
        return opt.mode[0] == 's' ? cmd_sign() : cmd_mem();
    }
    if (strcmp(opt.mode, "load") == 0)
        return cmd_load();
    if (strcmp(opt.mode, "tls") == 0)
        return cmd_tls();
    die("unknown mode %s", opt.mode);
    return 2;
}
