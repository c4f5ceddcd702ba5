/* module.h: the core context, PKCS#11 modules (loaded through p11-kit) and
 * fork detection. */
#ifndef P11ID_CORE_MODULE_H
#define P11ID_CORE_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <p11-kit/pkcs11.h>

typedef struct p11id_ctx_st P11ID_CTX;
typedef struct p11id_module_st P11ID_MODULE;
typedef struct p11id_token_st P11ID_TOKEN;

typedef struct p11id_config_st {
    const char *module_path; /* explicit module, or NULL */
    const char *module_name; /* p11-kit registered module name, or NULL */
    const char *init_args;   /* C_Initialize pReserved string, or NULL */
    const char *pin_source;  /* "file:PATH" / "env:NAME", or NULL */
    bool no_session_copy;    /* sign with the token object itself */
} P11ID_CONFIG;

/* A new context holding copies of cfg's strings. Loads nothing yet. */
P11ID_CTX *p11id_ctx_new(const P11ID_CONFIG *cfg);
/* Finalizes the modules this context initialised and frees everything. */
void p11id_ctx_free(P11ID_CTX *ctx);
/* The configured PIN source (borrowed, may be NULL). */
const char *p11id_ctx_get0_pin_source(const P11ID_CTX *ctx);

/* Loads and initialises the configured module(s) now (load-behavior=early). */
CK_RV p11id_ctx_open_default(P11ID_CTX *ctx);

/* The modules a URI designates: its module-path or module-name, else the
 * configured module, else every module registered with p11-kit. Modules are
 * loaded and initialised on first use and kept. *mods is a new array of
 * borrowed pointers (free() it). */
typedef struct p11id_uri_st P11ID_URI;
CK_RV p11id_ctx_modules_for_uri(P11ID_CTX *ctx, const P11ID_URI *uri,
                                P11ID_MODULE ***mods, size_t *nmods);

/* The tokens of a module matching the URI (slot and token attributes), with
 * a token present. *toks is a new array of borrowed pointers. */
CK_RV p11id_module_tokens(P11ID_MODULE *mod, const P11ID_URI *uri,
                          P11ID_TOKEN ***toks, size_t *ntoks);

/* The slots of a module matching the URI (slot and token attributes) whose
 * token is present but not initialised (tpm2-pkcs11 always offers one):
 * p11id_module_tokens leaves them out. *slots is a new array (free() it). */
CK_RV p11id_module_uninit_slots(P11ID_MODULE *mod, const P11ID_URI *uri,
                                CK_SLOT_ID **slots, size_t *nslots);

/* For "not found" errors: when the URI names a slot (slot-id,
 * slot-description, slot-manufacturer) whose token is not initialised,
 * writes "; slot N of MODULE holds a token that is not initialised ..." to
 * buf, else "". Never raises. Returns buf. */
const char *p11id_ctx_uninit_hint(P11ID_CTX *ctx, const P11ID_URI *uri,
                                  char *buf, size_t len);

/* Re-initialises the module in a forked child before first use there.
 * Cheap when nothing forked. */
CK_RV p11id_module_check_fork(P11ID_MODULE *mod);

/* After CKR_CRYPTOKI_NOT_INITIALIZED outside a fork (the module restarted,
 * or another user of it in this process called C_Finalize): initialises it
 * again, once however many threads ask, and forgets every token's sessions,
 * login and handles. CKR_OK when the module works (again). */
CK_RV p11id_module_reinit(P11ID_MODULE *mod);

CK_FUNCTION_LIST *p11id_module_get0_functions(const P11ID_MODULE *mod);
const char *p11id_module_get0_path(const P11ID_MODULE *mod);
const CK_INFO *p11id_module_get0_info(const P11ID_MODULE *mod);
/* A hint for "not found" errors when a loaded module reads its settings
 * from an environment variable this process lacks (SoftHSM's SOFTHSM2_CONF
 * in an nginx worker), else "". Static string. */
const char *p11id_ctx_env_hint(P11ID_CTX *ctx);

/* True once the process runs its exit handlers: modules must not be
 * called any more (their own destructors may have run). */
bool p11id_process_exiting(void);
/* Incremented in every forked child. */
unsigned long p11id_fork_generation(void);

#endif
