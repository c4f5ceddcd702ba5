/* module.c: the core context, PKCS#11 modules loaded through p11-kit, and
 * fork detection with lazy re-initialisation in the child. */
#include "core/module.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <p11-kit/p11-kit.h>

#include <p11id/p11id.h>
#include "core/err.h"
#include "core/internal.h"
#include "core/pkcs11.h"
#include "core/rv.h"
#include "core/trace.h"
#include "core/uri.h"

static unsigned long fork_gen;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;
static int exiting;

/* SoftHSM 2.6 (and other C++ modules) destroy their state in destructors
 * that run before OpenSSL's own exit handler tears the provider down: any
 * call into the module from there crashes. This handler, registered after
 * the first module is loaded, runs before those destructors and tells the
 * teardown to leave modules alone: the process is ending anyway. */
static void on_exit_handler(void)
{
    __atomic_store_n(&exiting, 1, __ATOMIC_RELEASE);
}

static void atexit_register(void)
{
    atexit(on_exit_handler);
}

bool p11id_process_exiting(void)
{
    return __atomic_load_n(&exiting, __ATOMIC_ACQUIRE) != 0;
}

static void atfork_child(void)
{
    __atomic_add_fetch(&fork_gen, 1, __ATOMIC_SEQ_CST);
}

static void atfork_register(void)
{
    pthread_atfork(NULL, NULL, atfork_child);
}

unsigned long p11id_fork_generation(void)
{
    return __atomic_load_n(&fork_gen, __ATOMIC_ACQUIRE);
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

P11ID_CTX *p11id_ctx_new(const P11ID_CONFIG *cfg)
{
    P11ID_CTX *ctx = calloc(1, sizeof(*ctx));

    pthread_once(&atfork_once, atfork_register);
    if (ctx == NULL)
        return NULL;
    pthread_mutex_init(&ctx->lock, NULL);
    ctx->module_path = dup_or_null(cfg->module_path);
    ctx->module_name = dup_or_null(cfg->module_name);
    ctx->init_args = dup_or_null(cfg->init_args);
    ctx->pin_source = dup_or_null(cfg->pin_source);
    ctx->session_copy = !cfg->no_session_copy;
    return ctx;
}

static void module_free(P11ID_MODULE *mod)
{
    size_t i;

    if (mod == NULL)
        return;
    if (p11id_process_exiting()) {
        /* see on_exit_handler: free our memory, touch nothing of theirs */
        for (i = 0; i < mod->ntokens; i++)
            p11id_token_free(mod->tokens[i]);
        free(mod->tokens);
        pthread_mutex_destroy(&mod->lock);
        free(mod->path);
        free(mod->name);
        free(mod->init_args);
        free(mod);
        return;
    }
    for (i = 0; i < mod->ntokens; i++)
        p11id_token_free(mod->tokens[i]);
    free(mod->tokens);
    /* Finalize only what we initialised, and never in a forked child whose
     * module state belongs to the parent. */
    if (mod->finalize && mod->fork_gen == p11id_fork_generation())
        p11id_C_Finalize(mod->fl);
    if (mod->fl != NULL)
        p11_kit_module_release(mod->fl);
    pthread_mutex_destroy(&mod->lock);
    free(mod->path);
    free(mod->name);
    free(mod->init_args);
    free(mod);
}

void p11id_ctx_free(P11ID_CTX *ctx)
{
    P11ID_MODULE *mod, *next;

    if (ctx == NULL)
        return;
    for (mod = ctx->modules; mod != NULL; mod = next) {
        next = mod->next;
        module_free(mod);
    }
    pthread_mutex_destroy(&ctx->lock);
    free(ctx->module_path);
    free(ctx->module_name);
    free(ctx->init_args);
    if (ctx->pin_source != NULL)
        free(ctx->pin_source);
    free(ctx);
}

const char *p11id_ctx_get0_pin_source(const P11ID_CTX *ctx)
{
    return ctx->pin_source;
}

CK_FUNCTION_LIST *p11id_module_get0_functions(const P11ID_MODULE *mod)
{
    return mod->fl;
}

const char *p11id_module_get0_path(const P11ID_MODULE *mod)
{
    return mod->path;
}

const CK_INFO *p11id_module_get0_info(const P11ID_MODULE *mod)
{
    return &mod->info;
}

const char *p11id_ctx_env_hint(P11ID_CTX *ctx)
{
    P11ID_MODULE *mod;
    bool softhsm = false;

    pthread_mutex_lock(&ctx->lock);
    for (mod = ctx->modules; mod != NULL; mod = mod->next)
        if (mod->path != NULL && strstr(mod->path, "softhsm") != NULL)
            softhsm = true;
    pthread_mutex_unlock(&ctx->lock);
    if (softhsm && getenv("SOFTHSM2_CONF") == NULL)
        return "; SOFTHSM2_CONF is not set in this process, so SoftHSM uses "
               "its system token directory (nginx empties its workers' "
               "environment: add \"env SOFTHSM2_CONF;\" to nginx.conf)";
    return "";
}

/* Modules that read their settings from the environment fail when a
 * process (an nginx worker) runs with an emptied one: say which variable. */
static void raise_init_failed(const P11ID_MODULE *mod, CK_RV rv)
{
    /* NSS softokn 3.x: CKR_ARGUMENTS_BAD without its init string. */
    if (rv == CKR_ARGUMENTS_BAD && mod->init_args == NULL)
        p11id_raise(P11ID_R_MODULE_INIT_FAILED,
                    "cannot initialise PKCS#11 module %s: it may want an "
                    "init string in C_Initialize's pReserved (NSS softokn: "
                    "configdir='sql:DIR' ...): give it with "
                    "pkcs11-module-init-args, or register the module with "
                    "p11-kit with x-init-reserved and name it by "
                    "module-name", mod->path);
    else if (mod->path != NULL && strstr(mod->path, "softhsm") != NULL
        && getenv("SOFTHSM2_CONF") == NULL)
        p11id_raise(P11ID_R_MODULE_INIT_FAILED,
                    "cannot initialise PKCS#11 module %s: SOFTHSM2_CONF is "
                    "not set in this process (nginx empties its workers' "
                    "environment: add \"env SOFTHSM2_CONF;\" to nginx.conf)",
                    mod->path);
    else
        p11id_raise(P11ID_R_MODULE_INIT_FAILED,
                    "cannot initialise PKCS#11 module %s in process %d "
                    "(uid %d): the process's user may lack access to the "
                    "token's files (nginx and httpd workers run as their "
                    "configured user), or a setting the module reads from "
                    "the environment is missing in this process",
                    mod->path, (int)getpid(), (int)getuid());
}

/* Forgets the sessions and login of every token: their handles belong to
 * a parent process or to a module instance that is gone. Caller holds
 * mod->lock. */
static void forget_tokens_locked(P11ID_MODULE *mod)
{
    size_t i;

    for (i = 0; i < mod->ntokens; i++) {
        pthread_mutex_lock(&mod->tokens[i]->lock);
        p11id_token_forget_locked(mod->tokens[i]);
        pthread_mutex_unlock(&mod->tokens[i]->lock);
    }
}

/* Calls C_Initialize with OS locking. A module the application initialised
 * already is fine: we use it and leave its finalisation to the owner.
 * Caller holds mod->lock. */
static CK_RV module_initialize_locked(P11ID_MODULE *mod)
{
    CK_C_INITIALIZE_ARGS args;
    CK_RV rv;

    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = mod->init_args;
    p11id_err_set_mark();
    rv = p11id_C_Initialize(mod->fl, &args);
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        p11id_err_pop_to_mark();
        mod->finalize = false;
        rv = CKR_OK;
    } else if (rv == CKR_OK) {
        p11id_err_clear_mark();
        mod->finalize = true;
    } else {
        p11id_err_clear_mark();
        raise_init_failed(mod, rv);
        return rv;
    }
    rv = p11id_C_GetInfo(mod->fl, &mod->info);
    if (rv != CKR_OK)
        return rv;
    mod->initialised = true;
    mod->fork_gen = p11id_fork_generation();
    pthread_once(&atexit_once, atexit_register);
    p11id_trace(1, "initialised module %s (%s)", mod->path,
                mod->finalize ? "ours" : "already initialised");
    return CKR_OK;
}

CK_RV p11id_module_check_fork(P11ID_MODULE *mod)
{
    unsigned long gen = p11id_fork_generation();
    bool ours;
    CK_RV rv = CKR_OK;

    if (mod->initialised && mod->fork_gen == gen)
        return CKR_OK;
    pthread_mutex_lock(&mod->lock);
    if (mod->initialised && mod->fork_gen != gen) {
        /* In a forked child the parent's sessions and login do not exist:
         * PKCS#11 wants C_Initialize again. A module that answers "already
         * initialised" (p11-kit or the module kept its state) is usable. */
        p11id_trace(1, "fork detected: re-initialising %s", mod->path);
        forget_tokens_locked(mod);
        ours = mod->finalize;
        mod->initialised = false;
        rv = module_initialize_locked(mod);
        /* who finalizes does not change with a fork */
        mod->finalize = ours;
    } else if (!mod->initialised) {
        rv = module_initialize_locked(mod);
    }
    pthread_mutex_unlock(&mod->lock);
    return rv;
}

CK_RV p11id_module_reinit(P11ID_MODULE *mod)
{
    CK_INFO info;
    CK_RV rv;

    pthread_mutex_lock(&mod->lock);
    /* Ask the module itself: another thread may have done it already. */
    p11id_err_set_mark();
    rv = mod->fl->C_GetInfo(&info);
    p11id_err_pop_to_mark();
    if (rv != CKR_CRYPTOKI_NOT_INITIALIZED) {
        pthread_mutex_unlock(&mod->lock);
        return CKR_OK;
    }
    p11id_trace(1, "module %s is not initialised any more (restarted, or "
                "finalized by another user): initialising it again",
                mod->path);
    forget_tokens_locked(mod);
    /* p11-kit keeps its own record of the initialisation: without a
     * C_Finalize first, its C_Initialize would answer "already
     * initialised" and never reach the module. */
    p11id_err_set_mark();
    mod->fl->C_Finalize(NULL);
    p11id_err_pop_to_mark();
    mod->initialised = false;
    rv = module_initialize_locked(mod);
    pthread_mutex_unlock(&mod->lock);
    return rv;
}

static P11ID_MODULE *module_new(P11ID_CTX *ctx, CK_FUNCTION_LIST *fl,
                                const char *init_args)
{
    P11ID_MODULE *mod = calloc(1, sizeof(*mod));
    char *name;

    if (mod == NULL)
        return NULL;
    mod->ctx = ctx;
    mod->fl = fl;
    pthread_mutex_init(&mod->lock, NULL);
    mod->path = p11_kit_module_get_filename(fl);
    name = p11_kit_module_get_name(fl);
    mod->name = name;
    if (init_args != NULL) {
        mod->init_args = strdup(init_args);
    } else {
        /* p11-kit's per-module option for modules such as NSS softokn. */
        mod->init_args = p11_kit_config_option(fl, "x-init-reserved");
    }
    mod->fork_gen = p11id_fork_generation();
    return mod;
}

/* Finds a loaded module by path. Caller holds ctx->lock. */
static P11ID_MODULE *find_by_path_locked(P11ID_CTX *ctx, const char *path)
{
    P11ID_MODULE *mod;

    for (mod = ctx->modules; mod != NULL; mod = mod->next)
        if (mod->path != NULL && strcmp(mod->path, path) == 0)
            return mod;
    return NULL;
}

static P11ID_MODULE *find_by_name_locked(P11ID_CTX *ctx, const char *name)
{
    P11ID_MODULE *mod;

    for (mod = ctx->modules; mod != NULL; mod = mod->next)
        if (mod->name != NULL && strcmp(mod->name, name) == 0)
            return mod;
    return NULL;
}

static void add_locked(P11ID_CTX *ctx, P11ID_MODULE *mod)
{
    P11ID_MODULE **pp = &ctx->modules;

    while (*pp != NULL)
        pp = &(*pp)->next;
    *pp = mod;
}

/* Loads one module by path. Caller holds ctx->lock. */
static CK_RV load_path_locked(P11ID_CTX *ctx, const char *path,
                              P11ID_MODULE **out)
{
    P11ID_MODULE *mod = find_by_path_locked(ctx, path);
    CK_FUNCTION_LIST *fl;

    if (mod == NULL) {
        fl = p11_kit_module_load(path, 0);
        if (fl == NULL) {
            p11id_raise(P11ID_R_MODULE_LOAD_FAILED,
                        "cannot load PKCS#11 module %s: %s", path,
                        p11_kit_message() != NULL ? p11_kit_message()
                                                  : "not found");
            return CKR_GENERAL_ERROR;
        }
        mod = module_new(ctx, fl, ctx->init_args);
        if (mod == NULL) {
            p11_kit_module_release(fl);
            p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory");
            return CKR_HOST_MEMORY;
        }
        if (mod->path == NULL)
            mod->path = strdup(path);
        add_locked(ctx, mod);
    }
    *out = mod;
    return CKR_OK;
}

/* Loads every module p11-kit has registered (once). Caller holds lock. */
static CK_RV load_registered_locked(P11ID_CTX *ctx)
{
    CK_FUNCTION_LIST **list;
    P11ID_MODULE *mod;
    size_t i;

    if (ctx->registered_loaded)
        return CKR_OK;
    list = p11_kit_modules_load(NULL, 0);
    if (list == NULL) {
        p11id_raise(P11ID_R_MODULE_LOAD_FAILED,
                    "cannot load the PKCS#11 modules registered with "
                    "p11-kit: %s",
                    p11_kit_message() != NULL ? p11_kit_message() : "?");
        return CKR_GENERAL_ERROR;
    }
    for (i = 0; list[i] != NULL; i++) {
        char *path = p11_kit_module_get_filename(list[i]);

        if (path != NULL && find_by_path_locked(ctx, path) != NULL) {
            p11_kit_module_release(list[i]);
        } else {
            mod = module_new(ctx, list[i], NULL);
            if (mod == NULL)
                p11_kit_module_release(list[i]);
            else
                add_locked(ctx, mod);
        }
        free(path);
    }
    free(list);
    ctx->registered_loaded = true;
    return CKR_OK;
}

static CK_RV push_module(P11ID_MODULE ***mods, size_t *n, P11ID_MODULE *m)
{
    P11ID_MODULE **grown = realloc(*mods, (*n + 1) * sizeof(**mods));

    if (grown == NULL) {
        p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory");
        return CKR_HOST_MEMORY;
    }
    grown[(*n)++] = m;
    *mods = grown;
    return CKR_OK;
}

/* "\"a\", \"b\"" for the registered modules' names, or "none". Caller
 * holds ctx->lock. */
static void registered_names_locked(P11ID_CTX *ctx, char *buf, size_t len)
{
    P11ID_MODULE *mod;
    size_t used = 0;

    snprintf(buf, len, "none");
    for (mod = ctx->modules; mod != NULL && used < len; mod = mod->next)
        if (mod->name != NULL)
            used += (size_t)snprintf(buf + used, len - used, "%s\"%s\"",
                                     used > 0 ? ", " : "", mod->name);
}

/* Collects the modules a request designates, loaded but maybe not yet
 * initialised. Caller holds ctx->lock. */
static CK_RV select_locked(P11ID_CTX *ctx, const char *path, const char *name,
                           P11ID_MODULE ***mods, size_t *n)
{
    P11ID_MODULE *mod = NULL;
    CK_RV rv;

    if (path != NULL) {
        rv = load_path_locked(ctx, path, &mod);
        return rv != CKR_OK ? rv : push_module(mods, n, mod);
    }
    if (name != NULL) {
        mod = find_by_name_locked(ctx, name);
        if (mod == NULL) {
            rv = load_registered_locked(ctx);
            if (rv != CKR_OK)
                return rv;
            mod = find_by_name_locked(ctx, name);
        }
        if (mod == NULL) {
            char known[512];

            registered_names_locked(ctx, known, sizeof(known));
            p11id_raise(P11ID_R_MODULE_LOAD_FAILED,
                        "no PKCS#11 module named \"%s\" is registered with "
                        "p11-kit; registered: %s (see "
                        "/usr/share/p11-kit/modules and /etc/pkcs11/modules)",
                        name, known);
            return CKR_GENERAL_ERROR;
        }
        return push_module(mods, n, mod);
    }
    rv = load_registered_locked(ctx);
    if (rv != CKR_OK)
        return rv;
    for (mod = ctx->modules; mod != NULL; mod = mod->next)
        if (mod->name != NULL) {
            rv = push_module(mods, n, mod);
            if (rv != CKR_OK)
                return rv;
        }
    return CKR_OK;
}

CK_RV p11id_ctx_modules_for_uri(P11ID_CTX *ctx, const P11ID_URI *uri,
                                P11ID_MODULE ***mods, size_t *nmods)
{
    const char *path = ctx->module_path, *name = ctx->module_name;
    P11ID_MODULE **list = NULL;
    size_t n = 0, i, kept = 0;
    CK_RV rv;

    if (uri != NULL && p11id_uri_get0_module_path(uri) != NULL) {
        path = p11id_uri_get0_module_path(uri);
        name = NULL;
    } else if (uri != NULL && p11id_uri_get0_module_name(uri) != NULL) {
        path = NULL;
        name = p11id_uri_get0_module_name(uri);
    }
    pthread_mutex_lock(&ctx->lock);
    rv = select_locked(ctx, path, name, &list, &n);
    pthread_mutex_unlock(&ctx->lock);
    if (rv != CKR_OK)
        goto err;
    for (i = 0; i < n; i++) {
        /* A registered module that fails to initialise (say, tpm2 without a
         * TPM) must not hide the others: skip it unless it was asked for. */
        if (path == NULL && name == NULL)
            p11id_err_set_mark();
        rv = p11id_module_check_fork(list[i]);
        if (path == NULL && name == NULL) {
            p11id_err_pop_to_mark();
            if (rv != CKR_OK)
                continue;
        } else if (rv != CKR_OK) {
            goto err;
        }
        if (uri != NULL && !p11id_uri_match_module(uri, &list[i]->info))
            continue;
        list[kept++] = list[i];
    }
    *mods = list;
    *nmods = kept;
    return CKR_OK;
err:
    free(list);
    return rv;
}

CK_RV p11id_ctx_open_default(P11ID_CTX *ctx)
{
    P11ID_MODULE **mods = NULL;
    size_t n = 0;
    CK_RV rv = p11id_ctx_modules_for_uri(ctx, NULL, &mods, &n);

    free(mods);
    return rv;
}

/* Finds or adds the token object for a slot. Caller holds mod->lock. */
static P11ID_TOKEN *token_for_slot_locked(P11ID_MODULE *mod, CK_SLOT_ID slot,
                                          const CK_SLOT_INFO *si,
                                          const CK_TOKEN_INFO *ti)
{
    P11ID_TOKEN **grown, *tok;
    size_t i;

    for (i = 0; i < mod->ntokens; i++) {
        tok = mod->tokens[i];
        /* Same slot and same token (a reinitialised token is a new one). */
        if (tok->slot == slot
            && memcmp(tok->info.serialNumber, ti->serialNumber,
                      sizeof(ti->serialNumber)) == 0
            && memcmp(tok->info.label, ti->label, sizeof(ti->label)) == 0)
            return tok;
    }
    tok = p11id_token_new(mod, slot, si, ti);
    if (tok == NULL)
        return NULL;
    grown = realloc(mod->tokens, (mod->ntokens + 1) * sizeof(*grown));
    if (grown == NULL) {
        p11id_token_free(tok);
        return NULL;
    }
    grown[mod->ntokens++] = tok;
    mod->tokens = grown;
    return tok;
}

/* A token this process saw in the slot that the URI matches: it was
 * there and is gone now. NULL if none. */
static P11ID_TOKEN *known_token(P11ID_MODULE *mod, CK_SLOT_ID slot,
                                const P11ID_URI *uri)
{
    P11ID_TOKEN *found = NULL;
    size_t i;

    pthread_mutex_lock(&mod->lock);
    for (i = 0; i < mod->ntokens && found == NULL; i++)
        if (mod->tokens[i]->slot == slot
            && (uri == NULL
                || p11id_uri_match_token(uri, &mod->tokens[i]->info)))
            found = mod->tokens[i];
    pthread_mutex_unlock(&mod->lock);
    return found;
}

/* The module's slots with a token present or not, after a fork check; a
 * module finalised underneath is initialised again once. */
static CK_RV slot_list(P11ID_MODULE *mod, CK_SLOT_ID **slots,
                       CK_ULONG *nslots)
{
    CK_RV rv;

    rv = p11id_module_check_fork(mod);
    if (rv != CKR_OK)
        return rv;
    p11id_err_set_mark();
    rv = p11id_C_GetSlotList(mod->fl, slots, nslots);
    if (rv == CKR_CRYPTOKI_NOT_INITIALIZED
        && p11id_module_reinit(mod) == CKR_OK) {
        p11id_err_pop_to_mark();
        p11id_err_set_mark();
        rv = p11id_C_GetSlotList(mod->fl, slots, nslots);
    }
    p11id_err_clear_mark();
    return rv;
}

CK_RV p11id_module_tokens(P11ID_MODULE *mod, const P11ID_URI *uri,
                          P11ID_TOKEN ***toks, size_t *ntoks)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG nslots = 0, i;
    P11ID_TOKEN **out = NULL, *tok, *gone = NULL;
    size_t n = 0;
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    CK_RV rv;

    rv = slot_list(mod, &slots, &nslots);
    if (rv != CKR_OK)
        return rv;
    out = calloc(nslots + 1, sizeof(*out));
    if (out == NULL) {
        rv = CKR_HOST_MEMORY;
        p11id_raise(P11ID_R_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (i = 0; i < nslots; i++) {
        if (p11id_C_GetSlotInfo(mod->fl, slots[i], &si) != CKR_OK)
            continue;
        if ((si.flags & CKF_TOKEN_PRESENT) == 0) {
            if (gone == NULL)
                gone = known_token(mod, slots[i], uri);
            continue;
        }
        if (uri != NULL && !p11id_uri_match_slot(uri, slots[i], &si))
            continue;
        if (p11id_C_GetTokenInfo(mod->fl, slots[i], &ti) != CKR_OK)
            continue;
        /* An uninitialised token has no objects to offer. */
        if ((ti.flags & CKF_TOKEN_INITIALIZED) == 0)
            continue;
        if (uri != NULL && !p11id_uri_match_token(uri, &ti))
            continue;
        pthread_mutex_lock(&mod->lock);
        tok = token_for_slot_locked(mod, slots[i], &si, &ti);
        pthread_mutex_unlock(&mod->lock);
        if (tok != NULL)
            out[n++] = tok;
    }
    if (n == 0 && gone != NULL) {
        p11id_raise(P11ID_R_NO_TOKEN,
                    "token \"%s\" is not present in its slot (%lu) any more: "
                    "it was removed; insert it again (p11id logs in and "
                    "finds its keys again when it is back)",
                    gone->label, (unsigned long)gone->slot);
        rv = CKR_TOKEN_NOT_PRESENT;
        goto done;
    }
    *toks = out;
    *ntoks = n;
    out = NULL;
done:
    free(out);
    free(slots);
    return rv;
}

CK_RV p11id_module_uninit_slots(P11ID_MODULE *mod, const P11ID_URI *uri,
                                CK_SLOT_ID **out, size_t *nout)
{
    CK_SLOT_ID *slots = NULL;
    CK_ULONG nslots = 0, i;
    size_t n = 0;
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    CK_RV rv;

    rv = slot_list(mod, &slots, &nslots);
    if (rv != CKR_OK)
        return rv;
    for (i = 0; i < nslots; i++) {
        if (p11id_C_GetSlotInfo(mod->fl, slots[i], &si) != CKR_OK
            || (si.flags & CKF_TOKEN_PRESENT) == 0
            || !p11id_uri_match_slot(uri, slots[i], &si)
            || p11id_C_GetTokenInfo(mod->fl, slots[i], &ti) != CKR_OK
            || (ti.flags & CKF_TOKEN_INITIALIZED) != 0
            || !p11id_uri_match_token(uri, &ti))
            continue;
        slots[n++] = slots[i]; /* n <= i: compacts in place */
    }
    *out = slots;
    *nout = n;
    return CKR_OK;
}

const char *p11id_ctx_uninit_hint(P11ID_CTX *ctx, const P11ID_URI *uri,
                                  char *buf, size_t len)
{
    P11ID_MODULE **mods = NULL;
    CK_SLOT_ID *slots = NULL;
    size_t nmods = 0, nslots = 0, i;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (!p11id_uri_names_slot(uri))
        return buf;
    p11id_err_set_mark();
    if (p11id_ctx_modules_for_uri(ctx, uri, &mods, &nmods) != CKR_OK)
        nmods = 0;
    for (i = 0; i < nmods && buf[0] == '\0'; i++) {
        if (p11id_module_uninit_slots(mods[i], uri, &slots, &nslots) == CKR_OK
            && nslots > 0)
            snprintf(buf, len,
                     "; slot %lu of %s holds a token that is not "
                     "initialised: p11id uses initialised tokens only",
                     (unsigned long)slots[0],
                     mods[i]->path != NULL ? mods[i]->path : "the module");
        free(slots);
        slots = NULL;
    }
    p11id_err_pop_to_mark();
    free(mods);
    return buf;
}
