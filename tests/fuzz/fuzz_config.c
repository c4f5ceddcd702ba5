/* fuzz_config.c: the provider's configuration (src/provider/config.c and
 * the OSSL_provider_init that reads it).
 *
 * The input is a provider section as lines "key = value" (unknown keys are
 * ignored, as OpenSSL leaves them to us; a later line replaces an earlier
 * one). It goes to p11id_conf_parse, whose answer must be consistent: 1
 * exactly when no error is written, load-behavior early/lazy, session-copy
 * yes/no, pin-source file:/env: accepted and nothing else, strings copied
 * (empty ones dropped), and an error about pin-source that never depends on
 * (so never shows) its value. Then the same section goes to
 * OSSL_provider_init through a fake core whose get_params hands the values
 * over: the provider must load (a bad configuration is kept and refused at
 * use), hold what p11id_conf_parse said and unload cleanly. No module is
 * loaded: log-file is replaced by /dev/null and load-behavior = early gets a
 * module path that does not exist. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/params.h>

#include <p11id/p11id.h>
#include "fuzz.h"
#include "provider/conf.h"
#include "provider/provider.h"

#define NO_MODULE "/nonexistent/p11id-fuzz/no-module.so"

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle,
                       const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
                       void **provctx);

static const char *const keys[] = {
    P11ID_CFG_MODULE_PATH, P11ID_CFG_MODULE_NAME, P11ID_CFG_INIT_ARGS,
    P11ID_CFG_PIN_SOURCE,  P11ID_CFG_LOAD,        P11ID_CFG_LOG_FILE,
    P11ID_CFG_LOG_LEVEL,   P11ID_CFG_SESSION_COPY,
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* The section the fake core hands over: values[i] for keys[i] or NULL. */
static char *values[NKEYS];

static char **in_field(P11ID_CONF_IN *in, size_t i)
{
    char **fields[NKEYS] = { &in->module_path, &in->module_name,
                             &in->init_args,   &in->pin_source,
                             &in->load,        &in->log_file,
                             &in->log_level,   &in->session_copy };

    return fields[i];
}

static char *trim(char *s)
{
    size_t n;

    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Splits text (modified) into lines "key = value" and fills in. */
static void read_section(char *text, P11ID_CONF_IN *in)
{
    char *line, *next, *eq;
    size_t i;

    memset(in, 0, sizeof(*in));
    for (line = text; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        eq = strchr(line, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        for (i = 0; i < NKEYS; i++)
            if (strcmp(trim(line), keys[i]) == 0)
                *in_field(in, i) = trim(eq + 1);
    }
}

static bool same_copy(const char *got, const char *given)
{
    if (given == NULL || *given == '\0')
        return got == NULL;
    return got != NULL && strcmp(got, given) == 0;
}

static bool is_any(const char *s, const char *const *words)
{
    for (; *words != NULL; words++)
        if (strcmp(s, *words) == 0)
            return true;
    return false;
}

/* log-level as atoi reads it, out-of-range numbers clamped to int. */
static int expected_level(const char *s)
{
    long v;

    errno = 0;
    v = strtol(s, NULL, 10);
    if (errno == ERANGE || v > INT_MAX || v < INT_MIN)
        return v > 0 ? INT_MAX : INT_MIN;
    return (int)v;
}

static void check_conf(const P11ID_CONF_IN *in, const P11ID_CONF *c, int ok)
{
    static const char *const yes[] = { "yes", "1", "on", NULL };
    static const char *const no[] = { "no", "0", "off", NULL };
    P11ID_CONF_IN other = *in;
    P11ID_CONF c2;

    FUZZ_ASSERT(ok == 0 || ok == 1);
    FUZZ_ASSERT((ok == 1) == (c->error[0] == '\0'));
    FUZZ_ASSERT(memchr(c->error, '\0', sizeof(c->error)) != NULL);
    FUZZ_ASSERT(same_copy(c->module_path, in->module_path));
    FUZZ_ASSERT(same_copy(c->module_name, in->module_name));
    FUZZ_ASSERT(same_copy(c->init_args, in->init_args));
    FUZZ_ASSERT(same_copy(c->pin_source, in->pin_source));
    FUZZ_ASSERT(same_copy(c->log_file, in->log_file));
    FUZZ_ASSERT(c->load_early
                == (in->load != NULL && strcmp(in->load, "early") == 0));
    if (in->log_level == NULL)
        FUZZ_ASSERT(c->log_level == 1);
    else
        FUZZ_ASSERT(c->log_level == expected_level(in->log_level));
    if (!ok)
        return;
    FUZZ_ASSERT(in->load == NULL || in->load[0] == '\0'
                || strcmp(in->load, "early") == 0
                || strcmp(in->load, "lazy") == 0);
    FUZZ_ASSERT(in->session_copy == NULL || is_any(in->session_copy, yes)
                || is_any(in->session_copy, no));
    FUZZ_ASSERT(c->no_session_copy
                == (in->session_copy != NULL
                    && is_any(in->session_copy, no)));
    FUZZ_ASSERT(c->pin_source == NULL
                || strncmp(c->pin_source, "file:", 5) == 0
                || strncmp(c->pin_source, "env:", 4) == 0);
    /* The error about a bad pin-source must not depend on its value: the
     * same section with another bad value gives the same message. */
    if (c->pin_source == NULL)
        return;
    other.pin_source = (char *)"PIN-0000";
    FUZZ_ASSERT(p11id_conf_parse(&other, &c2) == 0);
    FUZZ_ASSERT(strstr(c2.error, "PIN-0000") == NULL);
    p11id_conf_clear(&c2);
}

/* A refused section gives the same message whatever its pin-source holds:
 * the value (maybe a PIN) is never shown. */
static void check_pin_error(const P11ID_CONF_IN *in, const P11ID_CONF *c)
{
    P11ID_CONF_IN other = *in;
    P11ID_CONF c2;

    if (in->pin_source == NULL || c->error[0] == '\0')
        return;
    other.pin_source = (char *)"PIN-0000";
    if (p11id_conf_parse(&other, &c2) == 0)
        FUZZ_ASSERT(strcmp(c->error, c2.error) == 0);
    p11id_conf_clear(&c2);
}

/* --- the fake core ------------------------------------------------------ */

static int fake_get_params(const OSSL_CORE_HANDLE *h, OSSL_PARAM params[])
{
    OSSL_PARAM *p;
    size_t i;

    (void)h;
    for (i = 0; i < NKEYS; i++) {
        p = OSSL_PARAM_locate(params, keys[i]);
        if (p != NULL && values[i] != NULL)
            FUZZ_ASSERT(OSSL_PARAM_set_utf8_ptr(p, values[i]));
    }
    return 1;
}

static int n_errors;

static void fake_new_error(const OSSL_CORE_HANDLE *h)
{
    (void)h;
    n_errors++;
}

static void fake_vset_error(const OSSL_CORE_HANDLE *h, uint32_t reason,
                            const char *fmt, va_list args)
{
    char buf[1024];

    (void)h;
    (void)reason;
    vsnprintf(buf, sizeof(buf), fmt, args);
}

static void fake_set_error_debug(const OSSL_CORE_HANDLE *h, const char *file,
                                 int line, const char *func)
{
    (void)h;
    (void)file;
    (void)line;
    (void)func;
}

static int fake_mark(const OSSL_CORE_HANDLE *h)
{
    (void)h;
    return 1;
}

static int fake_bio_read(OSSL_CORE_BIO *bio, void *data, size_t len,
                         size_t *got)
{
    (void)bio;
    (void)data;
    (void)len;
    *got = 0;
    return 0;
}

static int fake_bio_write(OSSL_CORE_BIO *bio, const void *data, size_t len,
                          size_t *done)
{
    (void)bio;
    (void)data;
    *done = len;
    return 1;
}

static const OSSL_DISPATCH fake_core[] = {
    { OSSL_FUNC_CORE_GET_PARAMS, (void (*)(void))fake_get_params },
    { OSSL_FUNC_CORE_NEW_ERROR, (void (*)(void))fake_new_error },
    { OSSL_FUNC_CORE_VSET_ERROR, (void (*)(void))fake_vset_error },
    { OSSL_FUNC_CORE_SET_ERROR_DEBUG, (void (*)(void))fake_set_error_debug },
    { OSSL_FUNC_CORE_SET_ERROR_MARK, (void (*)(void))fake_mark },
    { OSSL_FUNC_CORE_CLEAR_LAST_ERROR_MARK, (void (*)(void))fake_mark },
    { OSSL_FUNC_CORE_POP_ERROR_TO_MARK, (void (*)(void))fake_mark },
    { OSSL_FUNC_BIO_READ_EX, (void (*)(void))fake_bio_read },
    { OSSL_FUNC_BIO_WRITE_EX, (void (*)(void))fake_bio_write },
    { 0, NULL }
};

static void (*find_fn(const OSSL_DISPATCH *d, int id))(void)
{
    for (; d->function_id != 0; d++)
        if (d->function_id == id)
            return d->function;
    return NULL;
}

/* Loads and unloads the provider with the section in; c is what
 * p11id_conf_parse made of the same section. */
static void load_provider(const P11ID_CONF_IN *in, const P11ID_CONF *c)
{
    static int handle_storage;
    const OSSL_CORE_HANDLE *handle = (const OSSL_CORE_HANDLE *)&handle_storage;
    const OSSL_DISPATCH *out = NULL;
    OSSL_FUNC_provider_teardown_fn *teardown;
    OSSL_FUNC_provider_query_operation_fn *query;
    P11ID_PROV *prov = NULL;
    size_t i;
    int no_cache;

    for (i = 0; i < NKEYS; i++)
        values[i] = *in_field((P11ID_CONF_IN *)in, i);
    /* Nothing may be written or loaded: see the top of the file. */
    if (values[5] != NULL && values[5][0] != '\0')
        values[5] = (char *)"/dev/null";
    if (c->load_early) {
        values[0] = (char *)NO_MODULE;
        values[1] = NULL;
    }
    n_errors = 0;
    FUZZ_ASSERT(OSSL_provider_init(handle, fake_core, &out, (void **)&prov)
                == 1);
    FUZZ_ASSERT(out != NULL && prov != NULL);
    FUZZ_ASSERT(strcmp(prov->config_error, c->error) == 0);
    FUZZ_ASSERT(prov->no_session_copy == c->no_session_copy);
    FUZZ_ASSERT(prov->log_level == c->log_level);
    n_errors = 0;
    FUZZ_ASSERT(p11id_prov_usable(prov) == (c->error[0] == '\0'));
    FUZZ_ASSERT((n_errors > 0) == (c->error[0] != '\0'));
    query = (OSSL_FUNC_provider_query_operation_fn *)find_fn(
        out, OSSL_FUNC_PROVIDER_QUERY_OPERATION);
    FUZZ_ASSERT(query != NULL);
    FUZZ_ASSERT(query(prov, OSSL_OP_SIGNATURE, &no_cache) != NULL);
    teardown = (OSSL_FUNC_provider_teardown_fn *)find_fn(
        out, OSSL_FUNC_PROVIDER_TEARDOWN);
    FUZZ_ASSERT(teardown != NULL);
    teardown(prov);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    unsetenv(P11ID_ENV_DEBUG);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    P11ID_CONF_IN in;
    P11ID_CONF c;
    int ok;

    FUZZ_ASSERT(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    read_section(text, &in);
    ok = p11id_conf_parse(&in, &c);
    check_conf(&in, &c, ok);
    check_pin_error(&in, &c);
    load_provider(&in, &c);
    p11id_conf_clear(&c);
    free(text);
    return 0;
}
