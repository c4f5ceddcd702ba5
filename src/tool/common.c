/* common.c: what every p11id command shares: options, PINs (read once, never
 * from argv, wiped), tokens and objects, keys through the provider, files
 * written atomically and 0600 where secret, and output helpers. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/ui.h>

#include <p11id/p11id.h>
#include "core/err.h"
#include "tool/tool.h"

#define TOOL_MAX_FILE (16 * 1024 * 1024)

static TOOL *sink_tool; /* the tool the core's errors are printed for */
/* Providers the tool loaded itself (not from openssl.cnf): unloaded by
 * tool_cleanup, so that p11id's teardown wipes the PIN it keeps. A
 * provider loaded with OSSL_PROVIDER_load and never unloaded is not torn
 * down at exit, and its copy of the PIN would stay in memory. */
static OSSL_PROVIDER *own_default, *own_p11id;

static void sink_print(void *arg, int reason, const char *file, int line,
                       const char *func, const char *msg)
{
    TOOL *t = arg;

    fprintf(stderr, "p11id %s: %s\n", t->cmd != NULL ? t->cmd : "", msg);
}

void tool_err(TOOL *t, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "p11id %s: ", t->cmd != NULL ? t->cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int tool_usage(TOOL *t, const char *fmt, ...)
{
    va_list ap;
    char line[256];
    const char *nl;

    fprintf(stderr, "p11id %s: ", t->cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    /* the synopsis is the first line of the help */
    {
        FILE *mem = fmemopen(line, sizeof(line) - 1, "w");

        if (mem != NULL) {
            memset(line, 0, sizeof(line));
            tool_print_help(t->cmd, mem);
            fclose(mem);
            nl = strchr(line, '\n');
            fprintf(stderr, "%.*s\n(p11id help %s)\n",
                    nl != NULL ? (int)(nl - line) : (int)strlen(line), line,
                    t->cmd);
        }
    }
    return EXIT_USAGE;
}

int tool_common_option(TOOL *t, int id, const char *arg)
{
    switch (id) {
    case TOOL_OPT_MODULE:
        t->module = arg;
        return 1;
    case TOOL_OPT_PIN_FILE:
        t->pin_file = arg;
        return 1;
    case TOOL_OPT_PIN_ENV:
        t->pin_env = arg;
        return 1;
    case TOOL_OPT_JSON:
        t->json = true;
        return 1;
    case TOOL_OPT_FORCE:
        t->force = true;
        return 1;
    case TOOL_OPT_HELP:
        tool_print_help(t->cmd, stdout);
        tool_cleanup(t);
        exit(EXIT_OK);
    }
    return 0;
}

int tool_fail_code(const TOOL *t)
{
    return t->pin_failed || t->pin_missing ? EXIT_PIN : EXIT_FAIL;
}

void tool_print_ssl_errors(TOOL *t)
{
    unsigned long e;
    const char *data = NULL, *func = NULL;
    int flags = 0;
    char buf[256];

    while ((e = ERR_get_error_all(NULL, NULL, &func, &data, &flags)) != 0) {
        const char *lib = ERR_lib_error_string(e);

        /* p11id's own errors carry the facts in the data; others are
         * best shown by their reason. */
        if ((flags & ERR_TXT_STRING) != 0 && data != NULL && *data != '\0'
            && lib != NULL && strcmp(lib, "p11id") == 0) {
            tool_err(t, "%s", data);
        } else {
            ERR_error_string_n(e, buf, sizeof(buf));
            if ((flags & ERR_TXT_STRING) != 0 && data != NULL && *data)
                tool_err(t, "%s (%s)", buf, data);
            else
                tool_err(t, "%s", buf);
        }
    }
}

static void sink_set_mark(void *arg)
{
    ERR_set_mark();
}

static void sink_pop_to_mark(void *arg)
{
    ERR_pop_to_mark();
}

static void sink_clear_mark(void *arg)
{
    ERR_clear_last_mark();
}

P11ID_CTX *tool_core(TOOL *t)
{
    P11ID_ERR_SINK sink = { sink_print, sink_set_mark, sink_pop_to_mark,
                            sink_clear_mark, NULL };
    P11ID_CONFIG cfg;

    if (t->core != NULL)
        return t->core;
    sink_tool = t;
    sink.arg = t;
    p11id_err_set_sink(&sink);
    memset(&cfg, 0, sizeof(cfg));
    cfg.module_path = t->module;
    t->core = p11id_ctx_new(&cfg);
    if (t->core == NULL)
        tool_err(t, "out of memory");
    return t->core;
}

/* Appends "a, b, c" descriptions of tokens to buf. */
static void list_tokens(P11ID_TOKEN **toks, size_t n, char *buf, size_t len)
{
    size_t i, used = 0;
    char *u;

    buf[0] = '\0';
    for (i = 0; i < n && used < len; i++) {
        u = p11id_uri_format_token(p11id_token_get0_info(toks[i]));
        used += (size_t)snprintf(buf + used, len - used, "%s%s",
                                 i > 0 ? ", " : "", u != NULL ? u : "?");
        free(u);
    }
}

P11ID_TOKEN *tool_token(TOOL *t, const char *uristr)
{
    P11ID_MODULE **mods = NULL;
    P11ID_TOKEN **all = NULL, **toks = NULL, **grown, *found = NULL;
    size_t nmods = 0, nall = 0, ntoks = 0, i, j;
    P11ID_URI *uri = NULL;
    char list[2048];

    if (tool_core(t) == NULL || p11id_uri_parse(uristr, &uri) != CKR_OK)
        return NULL;
    if (p11id_ctx_modules_for_uri(t->core, uri, &mods, &nmods) != CKR_OK)
        goto done;
    for (i = 0; i < nmods; i++) {
        if (p11id_module_tokens(mods[i], uri, &toks, &ntoks) != CKR_OK)
            continue;
        grown = realloc(all, (nall + ntoks + 1) * sizeof(*all));
        if (grown != NULL) {
            all = grown;
            for (j = 0; j < ntoks; j++)
                all[nall++] = toks[j];
        }
        free(toks);
        toks = NULL;
    }
    if (nall == 1) {
        found = all[0];
    } else if (nall == 0) {
        tool_err(t, "no token matches %s (p11id tokens lists them%s%s)",
                 p11id_uri_get0_display(uri),
                 t->module == NULL ? "; --module names a PKCS#11 module" : "",
                 p11id_ctx_uninit_hint(t->core, uri, list, sizeof(list)));
    } else {
        list_tokens(all, nall, list, sizeof(list));
        tool_err(t, "%zu tokens match %s: %s; name one with token= or "
                    "serial=", nall, p11id_uri_get0_display(uri), list);
    }
done:
    free(all);
    free(mods);
    p11id_uri_free(uri);
    return found;
}

/* Reads a line from the terminal without echo. */
static int prompt_pin(TOOL *t, const char *label)
{
    struct termios old, noecho;
    FILE *tty = fopen("/dev/tty", "r+e");
    size_t n;
    int ok = 0;

    if (tty == NULL) {
        tool_err(t, "token \"%s\" needs its PIN: no terminal to ask on; give "
                    "--pin-file FILE or --pin-env NAME", label);
        return 0;
    }
    /* Unbuffered: stdio's buffer would keep a copy of the PIN that
     * fclose frees without wiping. */
    setvbuf(tty, NULL, _IONBF, 0);
    fprintf(tty, "PIN for token \"%s\": ", label);
    fflush(tty);
    if (tcgetattr(fileno(tty), &old) == 0) {
        noecho = old;
        noecho.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(fileno(tty), TCSAFLUSH, &noecho);
    }
    if (fgets(t->pin, sizeof(t->pin), tty) != NULL) {
        n = strcspn(t->pin, "\r\n");
        t->pin[n] = '\0';
        t->pinlen = n;
        ok = n > 0;
    }
    tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fputc('\n', tty);
    fclose(tty);
    if (!ok)
        tool_err(t, "no PIN given");
    return ok;
}

int tool_get_pin(TOOL *t, const char *label)
{
    char spec[1024];

    if (t->have_pin)
        return 1;
    if (t->pin_failed)
        return 0;
    if (t->pin_file != NULL || t->pin_env != NULL) {
        snprintf(spec, sizeof(spec), "%s%s",
                 t->pin_file != NULL ? "file:" : "env:",
                 t->pin_file != NULL ? t->pin_file : t->pin_env);
        if (tool_core(t) == NULL
            || p11id_pin_read_source(spec, false, t->pin, P11ID_PIN_MAX,
                                     &t->pinlen)
                   != CKR_OK) {
            t->pin_missing = true;
            return 0;
        }
        t->pin[t->pinlen] = '\0';
    } else if (!prompt_pin(t, label)) {
        t->pin_missing = true;
        return 0;
    }
    t->have_pin = true;
    return 1;
}

int tool_login(TOOL *t, P11ID_TOKEN *tok)
{
    P11ID_PIN_REQ req;

    if (!p11id_token_needs_login(tok))
        return 1;
    if (!tool_get_pin(t, p11id_token_get0_label(tok)))
        return 0;
    memset(&req, 0, sizeof(req));
    req.pin_value = t->pin;
    if (p11id_token_login(tok, &req, false) != CKR_OK) {
        t->pin_failed = true;
        return 0;
    }
    return 1;
}

/* The core asks for the PIN this way while searching. */
static int find_pin_cb(char *buf, size_t max, size_t *len, const char *prompt,
                       void *arg)
{
    TOOL *t = arg;
    const char *label = strchr(prompt, '"');
    char name[64] = "";

    if (label != NULL)
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(label + 1, "\""),
                 label + 1);
    if (!tool_get_pin(t, name) || t->pinlen > max)
        return 0;
    memcpy(buf, t->pin, t->pinlen);
    *len = t->pinlen;
    return 1;
}

int tool_find_all(TOOL *t, const char *uristr, CK_OBJECT_CLASS cls,
                  P11ID_OBJECT ***objs, size_t *n)
{
    P11ID_FIND_REQ req;
    P11ID_URI *uri = NULL;
    CK_RV rv;

    *objs = NULL;
    *n = 0;
    if (tool_core(t) == NULL || p11id_uri_parse(uristr, &uri) != CKR_OK)
        return 0;
    memset(&req, 0, sizeof(req));
    req.uri = uri;
    req.cls = cls;
    req.login = true;
    req.pin_cb = find_pin_cb;
    req.pin_arg = t;
    rv = p11id_find_objects(t->core, &req, objs, n);
    p11id_uri_free(uri);
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED
        || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE)
        t->pin_failed = true;
    return rv == CKR_OK;
}

static const char *class_name(CK_OBJECT_CLASS cls)
{
    switch (cls) {
    case CKO_PRIVATE_KEY:
        return "private key";
    case CKO_PUBLIC_KEY:
        return "public key";
    case CKO_CERTIFICATE:
        return "certificate";
    }
    return "object";
}

P11ID_OBJECT *tool_find_one(TOOL *t, const char *uristr, CK_OBJECT_CLASS cls)
{
    P11ID_OBJECT **objs = NULL, *one = NULL;
    size_t n = 0, i;

    if (!tool_find_all(t, uristr, cls, &objs, &n))
        return NULL;
    if (n == 1) {
        one = p11id_object_ref(objs[0]);
    } else if (n == 0) {
        tool_err(t, "no %s matches %s (p11id objects 'pkcs11:token=...' "
                    "lists what the token has)", class_name(cls), uristr);
    } else {
        tool_err(t, "%zu objects match %s; name one:", n, uristr);
        for (i = 0; i < n; i++)
            fprintf(stderr, "  %s\n", p11id_object_get0_uri(objs[i]));
    }
    p11id_objects_free(objs, n);
    return one;
}

int tool_providers(TOOL *t)
{
    const char *so = getenv("P11ID_PROVIDER_SO");
    char path[4096];

    if (t->providers_loaded)
        return 1;
    if (so == NULL || *so == '\0') {
        snprintf(path, sizeof(path), "%s/p11id.so", P11ID_MODULESDIR);
        so = path;
    }
    if (!OSSL_PROVIDER_available(NULL, "default")
        && (own_default = OSSL_PROVIDER_load(NULL, "default")) == NULL) {
        tool_print_ssl_errors(t);
        tool_err(t, "cannot load OpenSSL's default provider");
        return 0;
    }
    if (!OSSL_PROVIDER_available(NULL, P11ID_PROVIDER_NAME)
        && (own_p11id = OSSL_PROVIDER_load(NULL, so)) == NULL) {
        tool_print_ssl_errors(t);
        tool_err(t, "cannot load the p11id provider from %s (set "
                    "P11ID_PROVIDER_SO, or make install)", so);
        return 0;
    }
    t->providers_loaded = true;
    return 1;
}

char *tool_provider_uri(TOOL *t, const char *uri)
{
    size_t len = strlen(uri) + (t->module != NULL ? strlen(t->module) : 0)
                 + 32;
    char *out = OPENSSL_malloc(len);

    if (out == NULL)
        return NULL;
    if (t->module == NULL || strstr(uri, "module-path=") != NULL
        || strstr(uri, "module-name=") != NULL)
        snprintf(out, len, "%s", uri);
    else
        snprintf(out, len, "%s%cmodule-path=%s", uri,
                 strchr(uri, '?') != NULL ? '&' : '?', t->module);
    return out;
}

/* The provider asks for the PIN through the store's UI: answer with the
 * PIN the tool already checked with the token. */
static int ui_read(UI *ui, UI_STRING *uis)
{
    TOOL *t = UI_get0_user_data(ui);

    if (UI_get_string_type(uis) == UIT_PROMPT && t != NULL && t->have_pin)
        return UI_set_result(ui, uis, t->pin) == 0;
    return 0;
}

EVP_PKEY *tool_load_private_key(TOOL *t, const char *uri)
{
    P11ID_OBJECT *obj;
    OSSL_STORE_CTX *st = NULL;
    OSSL_STORE_INFO *info;
    UI_METHOD *ui = NULL;
    EVP_PKEY *pk = NULL;
    char *puri = NULL;

    /* Find the key with the core first: its errors list the candidates,
     * and the PIN is checked once before the provider sees it. */
    obj = tool_find_one(t, uri, CKO_PRIVATE_KEY);
    if (obj == NULL || !tool_providers(t))
        goto done;
    puri = tool_provider_uri(t, p11id_object_get0_uri(obj));
    ui = UI_create_method("p11id PIN");
    if (puri == NULL || ui == NULL)
        goto done;
    UI_method_set_reader(ui, ui_read);
    st = OSSL_STORE_open(puri, ui, t, NULL, NULL);
    if (st == NULL || !OSSL_STORE_expect(st, OSSL_STORE_INFO_PKEY))
        goto done;
    while (pk == NULL && !OSSL_STORE_eof(st)) {
        info = OSSL_STORE_load(st);
        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            pk = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
done:
    if (obj != NULL && pk == NULL) {
        tool_print_ssl_errors(t);
        tool_err(t, "cannot use the key %s through the p11id provider", uri);
    }
    OSSL_STORE_close(st);
    UI_destroy_method(ui);
    OPENSSL_free(puri);
    p11id_object_free(obj);
    return pk;
}

EVP_PKEY *tool_public_key(TOOL *t, P11ID_OBJECT *obj)
{
    EVP_PKEY *pk = NULL, *pub = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    int len;
    char *puri;
    OSSL_STORE_CTX *st;
    OSSL_STORE_INFO *info;
    UI_METHOD *ui;

    if (!tool_providers(t))
        return NULL;
    puri = tool_provider_uri(t, p11id_object_get0_uri(obj));
    ui = UI_create_method("p11id PIN");
    if (puri == NULL || ui == NULL) {
        OPENSSL_free(puri);
        UI_destroy_method(ui);
        return NULL;
    }
    UI_method_set_reader(ui, ui_read);
    st = OSSL_STORE_open(puri, ui, t, NULL, NULL);
    if (st != NULL) {
        OSSL_STORE_expect(st, p11id_object_get_class(obj) == CKO_PRIVATE_KEY
                                  ? OSSL_STORE_INFO_PKEY
                                  : OSSL_STORE_INFO_PUBKEY);
        while (pk == NULL && !OSSL_STORE_eof(st)) {
            info = OSSL_STORE_load(st);
            if (info == NULL)
                break;
            if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
                pk = OSSL_STORE_INFO_get1_PKEY(info);
            else if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PUBKEY)
                pk = OSSL_STORE_INFO_get1_PUBKEY(info);
            OSSL_STORE_INFO_free(info);
        }
        OSSL_STORE_close(st);
    }
    UI_destroy_method(ui);
    OPENSSL_free(puri);
    /* A software copy of the public half: SubjectPublicKeyInfo round trip
     * through the default provider. */
    if (pk != NULL && (len = i2d_PUBKEY(pk, &der)) > 0) {
        p = der;
        pub = d2i_PUBKEY_ex(NULL, &p, len, NULL, "provider=default");
    }
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
    if (pub == NULL) {
        tool_print_ssl_errors(t);
        tool_err(t, "cannot read the public key of %s",
                 p11id_object_get0_uri(obj));
    }
    return pub;
}

int tool_write_file(TOOL *t, const char *path, const void *data, size_t len,
                    mode_t mode)
{
    char *tmp = NULL, *dircopy = NULL;
    struct stat st;
    size_t off = 0;
    ssize_t w;
    int fd = -1, ok = 0;

    if (strcmp(path, "-") == 0)
        return fwrite(data, 1, len, stdout) == len && fflush(stdout) == 0;
    if (!t->force && lstat(path, &st) == 0) {
        tool_err(t, "%s exists: not overwritten (--force replaces it)", path);
        return 0;
    }
    dircopy = strdup(path);
    if (dircopy != NULL && stat(dirname(dircopy), &st) == 0
        && (st.st_mode & S_IWOTH) != 0 && (st.st_mode & S_ISVTX) == 0)
        tool_err(t, "warning: %s is in a world-writable directory", path);
    if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0) {
        tmp = NULL;
        goto done;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        tool_err(t, "cannot write %s: %s", path, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto done;
    }
    if (fchmod(fd, mode) != 0)
        goto io;
    while (off < len) {
        w = write(fd, (const char *)data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto io;
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        goto io;
    }
    fd = -1;
    /* link() never follows a symlink at path and fails if path exists:
     * O_EXCL semantics for the final name. --force replaces atomically. */
    if (t->force ? rename(tmp, path) != 0 : link(tmp, path) != 0)
        goto io;
    if (!t->force)
        unlink(tmp);
    free(tmp);
    tmp = NULL;
    ok = 1;
    goto done;
io:
    tool_err(t, "cannot write %s: %s", path, strerror(errno));
done:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    free(dircopy);
    return ok;
}

int tool_read_file(TOOL *t, const char *path, size_t max, unsigned char **buf,
                   size_t *len)
{
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rbe");
    unsigned char *b = NULL, *grown;
    size_t cap = 0, n = 0, got;

    if (fp == NULL) {
        tool_err(t, "cannot read %s: %s", path, strerror(errno));
        return 0;
    }
    if (max == 0 || max > TOOL_MAX_FILE)
        max = TOOL_MAX_FILE;
    for (;;) {
        if (n == cap) {
            if (cap >= max) {
                tool_err(t, "%s is larger than %zu bytes", path, max);
                free(b);
                if (fp != stdin)
                    fclose(fp);
                return 0;
            }
            cap = cap == 0 ? 8192 : cap * 2;
            grown = realloc(b, cap + 1);
            if (grown == NULL)
                break;
            b = grown;
        }
        got = fread(b + n, 1, cap - n, fp);
        if (got == 0)
            break;
        n += got;
    }
    if (fp != stdin)
        fclose(fp);
    if (b == NULL) {
        tool_err(t, "%s is empty", path);
        return 0;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 1;
}

/* One object from a PEM (label pem_name) or DER file, or NULL with an
 * error saying it is not WHAT. */
static void *read_pem_or_der(TOOL *t, const char *path, size_t max,
                             const char *pem_name, d2i_of_void *d2i,
                             const char *what)
{
    unsigned char *buf = NULL;
    const unsigned char *p;
    size_t len = 0;
    void *obj = NULL;
    BIO *bio;

    if (!tool_read_file(t, path, max, &buf, &len))
        return NULL;
    bio = BIO_new_mem_buf(buf, (int)len);
    if (bio != NULL)
        obj = PEM_ASN1_read_bio(d2i, pem_name, bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (obj == NULL) {
        p = buf;
        obj = d2i(NULL, &p, (long)len);
    }
    ERR_clear_error();
    if (obj == NULL)
        tool_err(t, "%s is not a %s (PEM or DER)", path, what);
    free(buf);
    return obj;
}

X509 *tool_read_cert(TOOL *t, const char *path)
{
    return read_pem_or_der(t, path, 0, PEM_STRING_X509,
                           (d2i_of_void *)d2i_X509, "certificate");
}

STACK_OF(X509) *tool_read_certs(TOOL *t, const char *path)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    STACK_OF(X509) *sk = sk_X509_new_null();
    X509 *x;
    BIO *bio;

    if (sk == NULL || !tool_read_file(t, path, 0, &buf, &len)) {
        sk_X509_free(sk);
        return NULL;
    }
    bio = BIO_new_mem_buf(buf, (int)len);
    while (bio != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))
                              != NULL)
        if (!sk_X509_push(sk, x))
            X509_free(x);
    ERR_clear_error();
    BIO_free(bio);
    free(buf);
    if (sk_X509_num(sk) == 0) {
        tool_err(t, "%s holds no PEM certificate", path);
        sk_X509_free(sk);
        return NULL;
    }
    return sk;
}

X509_REQ *tool_read_csr(TOOL *t, const char *path)
{
    return read_pem_or_der(t, path, 1024 * 1024, PEM_STRING_X509_REQ,
                           (d2i_of_void *)d2i_X509_REQ,
                           "certificate request");
}

/* PEM of any ASN.1 object into a new buffer (OPENSSL_free), via i2d. */
static char *pem_of(const char *label, i2d_of_void *i2d, void *obj,
                    size_t *len)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long n;

    if (mem != NULL && PEM_ASN1_write_bio(i2d, label, mem, obj, NULL, NULL,
                                          0, NULL, NULL)) {
        n = BIO_get_mem_data(mem, &data);
        if (n > 0 && (out = OPENSSL_strndup(data, (size_t)n)) != NULL)
            *len = (size_t)n;
    }
    BIO_free(mem);
    return out;
}

char *tool_pem_cert(X509 *x, size_t *len)
{
    return pem_of(PEM_STRING_X509, (i2d_of_void *)i2d_X509, x, len);
}

char *tool_pem_csr(X509_REQ *req, size_t *len)
{
    return pem_of(PEM_STRING_X509_REQ, (i2d_of_void *)i2d_X509_REQ, req, len);
}

char *tool_pem_crl(X509_CRL *crl, size_t *len)
{
    return pem_of(PEM_STRING_X509_CRL, (i2d_of_void *)i2d_X509_CRL, crl, len);
}

void tool_json_str(FILE *fp, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");

    fputc('"', fp);
    for (; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(fp, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(fp, "\\u%04x", *p);
        else
            fputc(*p, fp);
    }
    fputc('"', fp);
}

char *tool_hex(const unsigned char *p, size_t len)
{
    char *out = OPENSSL_malloc(len * 2 + 1);
    size_t i;

    if (out == NULL)
        return NULL;
    for (i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * len] = '\0';
    return out;
}

int tool_parse_hex(const char *s, unsigned char **out, size_t *len)
{
    size_t n = strlen(s), i;
    unsigned char *b;
    unsigned int v;

    if (n == 0 || n % 2 != 0 || n > 128)
        return 0;
    b = OPENSSL_malloc(n / 2);
    if (b == NULL)
        return 0;
    for (i = 0; i < n / 2; i++) {
        if (sscanf(s + 2 * i, "%2x", &v) != 1
            || strchr("0123456789abcdefABCDEF", s[2 * i]) == NULL
            || strchr("0123456789abcdefABCDEF", s[2 * i + 1]) == NULL) {
            OPENSSL_free(b);
            return 0;
        }
        b[i] = (unsigned char)v;
    }
    *out = b;
    *len = n / 2;
    return 1;
}

const char *tool_key_desc(EVP_PKEY *pk, char *buf, size_t len)
{
    char group[64] = "";

    if (pk == NULL) {
        snprintf(buf, len, "unknown");
    } else if (EVP_PKEY_is_a(pk, "RSA") || EVP_PKEY_is_a(pk, "RSA-PSS")) {
        snprintf(buf, len, "RSA %d", EVP_PKEY_get_bits(pk));
    } else if (EVP_PKEY_is_a(pk, "EC")) {
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                       sizeof(group), NULL);
        snprintf(buf, len, "EC %s",
                 strcmp(group, "prime256v1") == 0   ? "P-256"
                 : strcmp(group, "secp384r1") == 0 ? "P-384"
                 : strcmp(group, "secp521r1") == 0 ? "P-521"
                                                    : group);
    } else if (EVP_PKEY_is_a(pk, "ED25519")) {
        snprintf(buf, len, "Ed25519");
    } else if (EVP_PKEY_is_a(pk, "ED448")) {
        snprintf(buf, len, "Ed448");
    } else {
        snprintf(buf, len, "%s", EVP_PKEY_get0_type_name(pk));
    }
    return buf;
}

void tool_cleanup(TOOL *t)
{
    OPENSSL_cleanse(t->pin, sizeof(t->pin));
    t->have_pin = false;
    /* Keys still held elsewhere keep the provider until they go. */
    if (own_p11id != NULL) {
        OSSL_PROVIDER_unload(own_p11id);
        own_p11id = NULL;
    }
    if (own_default != NULL) {
        OSSL_PROVIDER_unload(own_default);
        own_default = NULL;
    }
    t->providers_loaded = false;
    if (t->core != NULL) {
        p11id_ctx_free(t->core);
        t->core = NULL;
    }
    if (sink_tool == t) {
        p11id_err_set_sink(NULL);
        sink_tool = NULL;
    }
}
