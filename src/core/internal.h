/* internal.h: the core's structures, shared by the core's .c files only. */
#ifndef P11ID_CORE_INTERNAL_H
#define P11ID_CORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <p11-kit/pkcs11.h>

#include "core/module.h"
#include "core/object.h"
#include "core/pin.h"

struct p11id_module_st {
    P11ID_CTX *ctx;            /* borrowed: the context owns its modules */
    CK_FUNCTION_LIST *fl;      /* from p11-kit */
    char *path;                /* the file it was loaded from */
    char *name;                /* p11-kit registered name, or NULL */
    char *init_args;           /* pReserved string, or NULL */
    bool initialised;          /* C_Initialize succeeded for us */
    bool finalize;             /* we own the initialisation: finalize it */
    CK_INFO info;              /* C_GetInfo, read at initialisation */
    unsigned long fork_gen;    /* fork generation of the initialisation */
    pthread_mutex_t lock;      /* guards initialisation and tokens */
    P11ID_TOKEN **tokens;      /* tokens seen so far (owned) */
    size_t ntokens;
    P11ID_MODULE *next;        /* the context's list */
};

struct p11id_ctx_st {
    pthread_mutex_t lock;      /* guards the module list */
    P11ID_MODULE *modules;     /* loaded so far (owned) */
    bool registered_loaded;    /* p11-kit's registered modules are loaded */
    char *module_path;         /* configuration (owned copies) */
    char *module_name;
    char *init_args;
    char *pin_source;
    bool session_copy;         /* sign with session copies of token keys */
};

struct p11id_token_st {
    P11ID_MODULE *module;      /* borrowed: the module owns its tokens */
    CK_SLOT_ID slot;
    CK_SLOT_INFO slot_info;
    CK_TOKEN_INFO info;        /* as read when the token was found */
    char label[33];            /* info.label without padding */
    pthread_mutex_t lock;      /* guards everything below */
    unsigned long epoch;       /* bumped when sessions and handles are lost */
    unsigned long fork_gen;    /* fork generation the sessions belong to */
    CK_SESSION_HANDLE *idle;   /* pooled sessions */
    size_t nidle, idle_cap;
    CK_SESSION_HANDLE keep;    /* kept open so the login state survives */
    bool have_keep;
    bool logged_in;
    bool pin_rejected;         /* the token said no: never send a PIN again */
    unsigned char *pin;        /* kept for logging in again (wiped) */
    size_t pinlen;
    CK_MECHANISM_TYPE *mechs;  /* mechanism list, read once */
    CK_ULONG nmechs;
    bool mechs_read;
    unsigned int quirks;       /* P11ID_QUIRK_* (core/quirks.h) */
};

struct p11id_object_st {
    int refs;                  /* atomic reference count */
    P11ID_TOKEN *token;        /* borrowed */
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE key_type;      /* CK_UNAVAILABLE_INFORMATION if not a key */
    unsigned char *id;         /* CKA_ID (owned), may be NULL */
    size_t idlen;
    char *label;               /* CKA_LABEL (owned), may be NULL */
    char *uri;                 /* formatted URI (owned) */
    CK_OBJECT_HANDLE handle;   /* valid while epoch matches the token's */
    unsigned long epoch;
    CK_OBJECT_HANDLE copy;     /* session copy for signing, or none */
    unsigned long copy_epoch;  /* 0: no copy made in this epoch yet */
    bool copy_failed;          /* the token refused copies: do not retry */
    pthread_mutex_t lock;      /* guards handle and epoch */
    CK_ULONG flags;            /* P11ID_OF_* bits */
    CK_ATTRIBUTE pub[5];       /* public attributes read at find time */
};

#define P11ID_OF_SIGN 0x01u
#define P11ID_OF_DECRYPT 0x02u
#define P11ID_OF_DERIVE 0x04u
#define P11ID_OF_PRIVATE 0x08u
#define P11ID_OF_SENSITIVE 0x10u
#define P11ID_OF_EXTRACTABLE 0x20u
#define P11ID_OF_ALWAYS_AUTH 0x40u

P11ID_TOKEN *p11id_token_new(P11ID_MODULE *mod, CK_SLOT_ID slot,
                             const CK_SLOT_INFO *si, const CK_TOKEN_INFO *ti);
void p11id_token_free(P11ID_TOKEN *tok);
/* Forgets sessions and login after a fork (handles belong to the parent). */
void p11id_token_forget_locked(P11ID_TOKEN *tok);

#endif
