/* provider.c: OSSL_provider_init for p11id: configuration, the algorithm
 * tables, error reasons, and the core's error sink. No token is touched at
 * load (unless load-behavior = early). */
#include "config.h"

#include "provider/provider.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>

#include <p11id/p11id.h>
#include "core/compat.h"
#include "core/err.h"
#include "core/module.h"
#include "core/trace.h"
#include "provider/conf.h"
#include "provider/key.h"

#define P11ID_ALG(op, names, props, fns) extern const OSSL_DISPATCH fns[];
#include "provider/algs.inc"
#undef P11ID_ALG

static OSSL_FUNC_provider_teardown_fn p11id_teardown;
static OSSL_FUNC_provider_gettable_params_fn p11id_gettable_params;
static OSSL_FUNC_provider_get_params_fn p11id_get_params;
static OSSL_FUNC_provider_query_operation_fn p11id_query;
static OSSL_FUNC_provider_get_reason_strings_fn p11id_reason_strings;

/* Every algorithm with its operation, from algs.inc. */
static const struct alg_row_st {
    int op;
    OSSL_ALGORITHM alg;
} all_algs[] = {
#define P11ID_ALG(op, names, props, fns) { OSSL_OP_##op, { names, props, fns, NULL } },
#include "provider/algs.inc"
#undef P11ID_ALG
};
#define NALGS (sizeof(all_algs) / sizeof(all_algs[0]))

/* The operations p11id offers, in the order of op_algs below. */
static const int ops[] = { OSSL_OP_KEYMGMT, OSSL_OP_SIGNATURE,
                           OSSL_OP_ASYM_CIPHER, OSSL_OP_KEYEXCH,
                           OSSL_OP_STORE, OSSL_OP_DECODER, OSSL_OP_ENCODER };
#define NOPS (sizeof(ops) / sizeof(ops[0]))

/* One NULL-terminated table per operation, filled once from all_algs. */
static OSSL_ALGORITHM op_algs[NOPS][NALGS + 1];
static pthread_once_t op_algs_once = PTHREAD_ONCE_INIT;

static void op_algs_fill(void)
{
    size_t i, j, n;

    for (i = 0; i < NOPS; i++) {
        for (j = 0, n = 0; j < NALGS; j++)
            if (all_algs[j].op == ops[i])
                op_algs[i][n++] = all_algs[j].alg;
        /* op_algs is static: the remaining rows are the NULL terminator */
    }
}

static const OSSL_ITEM reason_strings[] = {
    { P11ID_R_MODULE_LOAD_FAILED, "cannot load PKCS#11 module" },
    { P11ID_R_MODULE_INIT_FAILED, "cannot initialise PKCS#11 module" },
    { P11ID_R_URI_INVALID, "invalid pkcs11: URI" },
    { P11ID_R_URI_UNKNOWN_ATTRIBUTE, "unknown attribute in pkcs11: URI" },
    { P11ID_R_NO_TOKEN, "no token matches" },
    { P11ID_R_NO_OBJECT, "no object matches" },
    { P11ID_R_AMBIGUOUS_URI, "ambiguous URI: several objects match" },
    { P11ID_R_LOGIN_FAILED, "login failed" },
    { P11ID_R_PIN_INCORRECT, "PIN incorrect" },
    { P11ID_R_PIN_LOCKED, "PIN is locked" },
    { P11ID_R_PIN_FINAL_TRY, "PIN has one try left: not tried" },
    { P11ID_R_PIN_UNAVAILABLE, "no PIN available" },
    { P11ID_R_PIN_ALREADY_REJECTED, "PIN was rejected before: not retried" },
    { P11ID_R_TOKEN_CALL_FAILED, "PKCS#11 call failed" },
    { P11ID_R_SIGN_FAILED, "signing on the token failed" },
    { P11ID_R_DECRYPT_FAILED, "decryption on the token failed" },
    { P11ID_R_DERIVE_FAILED, "key derivation on the token failed" },
    { P11ID_R_SESSION_FAILED, "cannot open a session" },
    { P11ID_R_CONFIG_INVALID, "invalid provider configuration" },
    { P11ID_R_KEYFILE_INVALID, "invalid key reference file" },
    { P11ID_R_UNSUPPORTED, "not supported" },
    { P11ID_R_PUBLIC_KEY_UNAVAILABLE, "public key unavailable" },
    { P11ID_R_BAD_PARAMETER, "bad parameter" },
    { P11ID_R_OPERATION_NOT_INITIALIZED, "operation not initialised" },
    { P11ID_R_NO_PRIVATE_KEY, "not a private key on a token" },
    { P11ID_R_OUT_OF_MEMORY, "out of memory" },
    { P11ID_R_PIN_SOURCE_INVALID, "invalid PIN source" },
    { P11ID_R_BUFFER_TOO_SMALL, "output buffer too small" },
    { 0, NULL }
};

static void prov_vset(P11ID_PROV *prov, int reason, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    prov->c_vset_error(prov->handle, reason, fmt, ap);
    va_end(ap);
}

/* The core's errors become OpenSSL errors of this provider. */
static void sink_raise(void *arg, int reason, const char *file, int line,
                       const char *func, const char *msg)
{
    P11ID_PROV *prov = arg;

    prov->c_new_error(prov->handle);
    prov->c_set_error_debug(prov->handle, file, line, func);
    prov_vset(prov, reason, "%s", msg);
    p11id_trace(1, "error: %s", msg);
}

static void sink_set_mark(void *arg)
{
    P11ID_PROV *prov = arg;

    prov->c_set_error_mark(prov->handle);
}

static void sink_pop_to_mark(void *arg)
{
    P11ID_PROV *prov = arg;

    prov->c_pop_error_to_mark(prov->handle);
}

static void sink_clear_mark(void *arg)
{
    P11ID_PROV *prov = arg;

    prov->c_clear_last_error_mark(prov->handle);
}

int p11id_prov_usable(P11ID_PROV *prov)
{
    if (prov->config_error[0] == '\0')
        return 1;
    p11id_raise(P11ID_R_CONFIG_INVALID, "p11id's section of openssl.cnf: %s",
                prov->config_error);
    return 0;
}

OSSL_LIB_CTX *p11id_prov_libctx(P11ID_PROV *prov)
{
    OSSL_LIB_CTX *lc;

    pthread_mutex_lock(&prov->lock);
    if (prov->libctx == NULL) {
        /* A child of the application's context sees its providers. Made
         * here, not at init: our own instance in the child would otherwise
         * make a child of its own at its init, and so on. */
        lc = OSSL_LIB_CTX_new_child(prov->handle, prov->in);
        prov->child = lc != NULL;
        prov->libctx = lc;
    }
    lc = prov->libctx;
    pthread_mutex_unlock(&prov->lock);
    return lc;
}

EVP_MD *p11id_prov_md(P11ID_PROV *prov, const char *name)
{
    OSSL_LIB_CTX *lc = p11id_prov_libctx(prov);
    EVP_MD *md = NULL, *fetched;
    size_t i, n = sizeof(prov->mds) / sizeof(prov->mds[0]);

    if (strlen(name) >= sizeof(prov->mds[0].name)) {
        p11id_raise(P11ID_R_BAD_PARAMETER, "digest name \"%.40s\" is too "
                    "long", name);
        return NULL;
    }
    pthread_mutex_lock(&prov->lock);
    for (i = 0; i < n && prov->mds[i].md != NULL; i++)
        if (strcasecmp(prov->mds[i].name, name) == 0) {
            md = prov->mds[i].md;
            break;
        }
    pthread_mutex_unlock(&prov->lock);
    if (md != NULL)
        return md;
    fetched = EVP_MD_fetch(lc, name, P11ID_SOFT_PROPQ);
    if (fetched == NULL)
        return NULL; /* OpenSSL raised why */
    pthread_mutex_lock(&prov->lock);
    for (i = 0; i < n && prov->mds[i].md != NULL; i++)
        if (strcasecmp(prov->mds[i].name, name) == 0)
            break;
    if (i < n && prov->mds[i].md == NULL) {
        snprintf(prov->mds[i].name, sizeof(prov->mds[i].name), "%s", name);
        prov->mds[i].md = fetched;
        fetched = NULL;
    }
    md = i < n ? prov->mds[i].md : NULL;
    pthread_mutex_unlock(&prov->lock);
    EVP_MD_free(fetched); /* another thread cached it first */
    if (md == NULL)
        p11id_raise(P11ID_R_UNSUPPORTED, "more than %zu digest names in "
                    "use", n);
    return md;
}

int p11id_prov_read_bio(P11ID_PROV *prov, OSSL_CORE_BIO *cbio, size_t max,
                        unsigned char **out, size_t *outlen)
{
    unsigned char *buf = NULL, *grown;
    size_t len = 0, cap = 0, got;

    for (;;) {
        if (len == cap) {
            if (cap >= max) {
                OPENSSL_clear_free(buf, cap + 1);
                p11id_raise(P11ID_R_KEYFILE_INVALID,
                            "input larger than %zu bytes", max);
                return 0;
            }
            /* the input may be a key reference holding a pin-value:
             * no unwiped copy is left behind when the buffer grows */
            grown = OPENSSL_clear_realloc(buf, cap == 0 ? 0 : cap + 1,
                                          (cap == 0 ? 4096 : cap * 2) + 1);
            if (grown == NULL) {
                OPENSSL_clear_free(buf, cap == 0 ? 0 : cap + 1);
                return 0;
            }
            cap = cap == 0 ? 4096 : cap * 2;
            buf = grown;
        }
        got = 0;
        if (!prov->c_bio_read_ex(cbio, buf + len, cap - len, &got)
            || got == 0)
            break;
        len += got;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 1;
}

int p11id_prov_write_bio(P11ID_PROV *prov, OSSL_CORE_BIO *cbio,
                         const void *data, size_t len)
{
    size_t done = 0;

    return prov->c_bio_write_ex(cbio, data, len, &done) && done == len;
}

static const OSSL_PARAM *p11id_gettable_params(void *provctx)
{
    static const OSSL_PARAM params[] = {
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_NAME, OSSL_PARAM_UTF8_PTR, NULL, 0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_VERSION, OSSL_PARAM_UTF8_PTR, NULL,
                        0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_BUILDINFO, OSSL_PARAM_UTF8_PTR, NULL,
                        0),
        OSSL_PARAM_DEFN(OSSL_PROV_PARAM_STATUS, OSSL_PARAM_INTEGER, NULL, 0),
        OSSL_PARAM_END
    };

    return params;
}

static int p11id_get_params(void *provctx, OSSL_PARAM params[])
{
    OSSL_PARAM *p;

    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, "p11id: keys on PKCS#11 "
                                                 "tokens"))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, PACKAGE_VERSION))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO);
    if (p != NULL && !OSSL_PARAM_set_utf8_ptr(p, PACKAGE_STRING))
        return 0;
    p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS);
    if (p != NULL && !OSSL_PARAM_set_int(p, 1))
        return 0;
    return 1;
}

static const OSSL_ALGORITHM *p11id_query(void *provctx, int op,
                                         int *no_cache)
{
    size_t i;

    *no_cache = 0;
    pthread_once(&op_algs_once, op_algs_fill);
    for (i = 0; i < NOPS; i++)
        if (ops[i] == op)
            return op_algs[i];
    return NULL;
}

static const OSSL_ITEM *p11id_reason_strings(void *provctx)
{
    return reason_strings;
}

static void prov_free(P11ID_PROV *prov)
{
    if (prov == NULL)
        return;
    for (size_t i = 0; i < sizeof(prov->mds) / sizeof(prov->mds[0]); i++)
        EVP_MD_free(prov->mds[i].md);
    p11id_key_free(prov->decoded_key);
    if (prov->decoded_uri != NULL) /* may hold a pin-value */
        OPENSSL_clear_free(prov->decoded_uri, strlen(prov->decoded_uri));
    p11id_ctx_free(prov->core);
    if (prov->child)
        OSSL_LIB_CTX_free(prov->libctx);
    pthread_mutex_destroy(&prov->lock);
    free(prov->module_path);
    free(prov->module_name);
    free(prov->init_args);
    free(prov->pin_source);
    free(prov->log_file);
    OPENSSL_free(prov);
}

static void p11id_teardown(void *provctx)
{
    P11ID_PROV *prov = provctx;

    p11id_trace(1, "provider unloading");
    /* Another instance (a child library context's) may own the sink. */
    if (p11id_err_get0_sink_arg() == prov)
        p11id_err_set_sink(NULL);
    prov_free(prov);
    p11id_trace_close();
}

static const OSSL_DISPATCH p11id_dispatch[] = {
    { OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))p11id_teardown },
    { OSSL_FUNC_PROVIDER_GETTABLE_PARAMS,
      (void (*)(void))p11id_gettable_params },
    { OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))p11id_get_params },
    { OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))p11id_query },
    { OSSL_FUNC_PROVIDER_GET_REASON_STRINGS,
      (void (*)(void))p11id_reason_strings },
    OSSL_DISPATCH_END
};

static void take_upcalls(P11ID_PROV *prov, const OSSL_DISPATCH *in,
                         OSSL_FUNC_core_get_params_fn **get_params)
{
    for (; in->function_id != 0; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_GET_PARAMS:
            *get_params = OSSL_FUNC_core_get_params(in);
            break;
        case OSSL_FUNC_CORE_NEW_ERROR:
            prov->c_new_error = OSSL_FUNC_core_new_error(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR:
            prov->c_vset_error = OSSL_FUNC_core_vset_error(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            prov->c_set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_SET_ERROR_MARK:
            prov->c_set_error_mark = OSSL_FUNC_core_set_error_mark(in);
            break;
        case OSSL_FUNC_CORE_CLEAR_LAST_ERROR_MARK:
            prov->c_clear_last_error_mark =
                OSSL_FUNC_core_clear_last_error_mark(in);
            break;
        case OSSL_FUNC_CORE_POP_ERROR_TO_MARK:
            prov->c_pop_error_to_mark = OSSL_FUNC_core_pop_error_to_mark(in);
            break;
        case OSSL_FUNC_BIO_READ_EX:
            prov->c_bio_read_ex = OSSL_FUNC_BIO_read_ex(in);
            break;
        case OSSL_FUNC_BIO_WRITE_EX:
            prov->c_bio_write_ex = OSSL_FUNC_BIO_write_ex(in);
            break;
        }
    }
}

/* Reads [p11id_sect] (config.c checks it). Unknown keys are OpenSSL's
 * business (activate, ...). */
static int read_config(P11ID_PROV *prov,
                       OSSL_FUNC_core_get_params_fn *get_params)
{
    P11ID_CONF_IN in;
    P11ID_CONF conf;
    OSSL_PARAM params[] = {
        OSSL_PARAM_utf8_ptr(P11ID_CFG_MODULE_PATH, &in.module_path, 0),
        OSSL_PARAM_utf8_ptr(P11ID_CFG_MODULE_NAME, &in.module_name, 0),
        OSSL_PARAM_utf8_ptr(P11ID_CFG_INIT_ARGS, &in.init_args, 0),
        OSSL_PARAM_utf8_ptr(P11ID_CFG_PIN_SOURCE, &in.pin_source, 0),
        OSSL_PARAM_utf8_ptr(P11ID_CFG_LOAD, &in.load, 0),
        OSSL_PARAM_utf8_ptr(P11ID_CFG_LOG_FILE, &in.log_file, 0),
        OSSL_PARAM_utf8_ptr(P11ID_CFG_LOG_LEVEL, &in.log_level, 0),
        OSSL_PARAM_utf8_ptr(P11ID_CFG_SESSION_COPY, &in.session_copy, 0),
        OSSL_PARAM_END
    };
    int ok;

    memset(&in, 0, sizeof(in));
    if (get_params == NULL || !get_params(prov->handle, params))
        return 1;
    ok = p11id_conf_parse(&in, &conf);
    /* The strings move into prov, which frees them at teardown. */
    prov->module_path = conf.module_path;
    prov->module_name = conf.module_name;
    prov->init_args = conf.init_args;
    prov->pin_source = conf.pin_source;
    prov->log_file = conf.log_file;
    prov->log_level = conf.log_level;
    prov->load_early = conf.load_early;
    prov->no_session_copy = conf.no_session_copy;
    memcpy(prov->config_error, conf.error, sizeof(prov->config_error));
    return ok;
}

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle,
                       const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
                       void **provctx)
    __attribute__((visibility("default")));

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle,
                       const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
                       void **provctx)
{
    OSSL_FUNC_core_get_params_fn *get_params = NULL;
    P11ID_ERR_SINK sink;
    P11ID_CONFIG cfg;
    P11ID_PROV *prov;

    prov = OPENSSL_zalloc(sizeof(*prov));
    if (prov == NULL)
        return 0;
    prov->handle = handle;
    prov->in = in;
    pthread_mutex_init(&prov->lock, NULL);
    take_upcalls(prov, in, &get_params);
    if (prov->c_new_error == NULL || prov->c_vset_error == NULL
        || prov->c_set_error_debug == NULL || prov->c_set_error_mark == NULL
        || prov->c_pop_error_to_mark == NULL
        || prov->c_clear_last_error_mark == NULL
        || prov->c_bio_read_ex == NULL || prov->c_bio_write_ex == NULL)
        goto err;
    sink.raise = sink_raise;
    sink.set_mark = sink_set_mark;
    sink.pop_to_mark = sink_pop_to_mark;
    sink.clear_mark = sink_clear_mark;
    sink.arg = prov;
    /* The first instance keeps the sink; instances made for child library
     * contexts share it. */
    if (p11id_err_get0_sink_arg() == NULL)
        p11id_err_set_sink(&sink);
    /* OpenSSL 3.0 drops a provider whose init fails from openssl.cnf
     * without a word: load, and refuse every use with the reason. */
    if (!read_config(prov, get_params))
        p11id_trace(0, "configuration error: %s", prov->config_error);
    p11id_trace_open(prov->log_file, prov->log_level);
    cfg.module_path = prov->module_path;
    cfg.module_name = prov->module_name;
    cfg.init_args = prov->init_args;
    cfg.pin_source = prov->pin_source;
    cfg.no_session_copy = prov->no_session_copy;
    prov->core = p11id_ctx_new(&cfg);
    if (prov->core == NULL)
        goto err;
    /* early: open the module now; a failure is traced and reported again,
     * with its reason, at the first use (OpenSSL 3.0 would drop a provider
     * whose init fails from openssl.cnf without a word). */
    if (prov->load_early && prov->config_error[0] == '\0'
        && p11id_ctx_open_default(prov->core) != CKR_OK)
        p11id_trace(0, "load-behavior = early: the module did not open");
    p11id_trace(1, "provider loaded (module %s)",
                prov->module_path != NULL ? prov->module_path
                : prov->module_name != NULL ? prov->module_name
                                            : "p11-kit registered modules");
    *out = p11id_dispatch;
    *provctx = prov;
    return 1;
err:
    if (p11id_err_get0_sink_arg() == prov)
        p11id_err_set_sink(NULL);
    prov_free(prov);
    return 0;
}
