/* provider.h: the provider context shared by every operation family. */
#ifndef P11ID_PROVIDER_PROVIDER_H
#define P11ID_PROVIDER_PROVIDER_H

#include <pthread.h>
#include <stdbool.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/evp.h>

#include "core/module.h"

/* Property query for software work done on our behalf by other providers
 * (digests, public-key operations): never ourselves. */
#define P11ID_SOFT_PROPQ "provider!=p11id"

typedef struct p11id_prov_st {
    const OSSL_CORE_HANDLE *handle; /* the core's handle for this instance */
    const OSSL_DISPATCH *in;        /* the core's functions (static) */
    OSSL_LIB_CTX *libctx;           /* child library context, made lazily */
    P11ID_CTX *core;                /* token layer */
    pthread_mutex_t lock;           /* guards libctx creation */
    bool child;                     /* libctx is a child we own */
    /* configuration, owned copies */
    char *module_path, *module_name, *init_args, *pin_source, *log_file;
    int log_level;
    bool load_early;
    bool no_session_copy;           /* session-copy = no */
    char config_error[256];         /* why the configuration is refused */
    struct {
        char name[32];              /* as asked for */
        EVP_MD *md;                 /* fetched once, freed at teardown */
    } mds[16];                      /* digests fetched (guarded by lock) */
    /* The key the PEM stage of the key reference decoder loaded, for the
     * DER stage of the same decoding (one entry, guarded by lock). */
    char *decoded_uri;
    void *decoded_key;
    /* upcalls */
    OSSL_FUNC_core_new_error_fn *c_new_error;
    OSSL_FUNC_core_vset_error_fn *c_vset_error;
    OSSL_FUNC_core_set_error_debug_fn *c_set_error_debug;
    OSSL_FUNC_core_set_error_mark_fn *c_set_error_mark;
    OSSL_FUNC_core_clear_last_error_mark_fn *c_clear_last_error_mark;
    OSSL_FUNC_core_pop_error_to_mark_fn *c_pop_error_to_mark;
    OSSL_FUNC_BIO_read_ex_fn *c_bio_read_ex;
    OSSL_FUNC_BIO_write_ex_fn *c_bio_write_ex;
} P11ID_PROV;

/* 1 when the provider may be used; else raises the configuration error
 * (kept from load time) and returns 0. Entry points that reach tokens call
 * it first. */
int p11id_prov_usable(P11ID_PROV *prov);

/* The library context for software work (lazily made child of the
 * application's). Never NULL after the first call succeeds; falls back to
 * the default context. */
OSSL_LIB_CTX *p11id_prov_libctx(P11ID_PROV *prov);

/* The digest called name, fetched once per provider (EVP_MD_fetch costs as
 * much as a quarter of p11id's own work per signature). Borrowed: valid
 * until the provider unloads. NULL when unknown. */
EVP_MD *p11id_prov_md(P11ID_PROV *prov, const char *name);

/* Reads up to max bytes of a core BIO into a new buffer. Returns 0 with an
 * error raised when the input is larger than max. */
int p11id_prov_read_bio(P11ID_PROV *prov, OSSL_CORE_BIO *cbio, size_t max,
                        unsigned char **out, size_t *outlen);
int p11id_prov_write_bio(P11ID_PROV *prov, OSSL_CORE_BIO *cbio,
                         const void *data, size_t len);

#endif
