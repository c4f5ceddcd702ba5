/* token.h: a token in a slot: its session pool and its login state. */
#ifndef P11ID_CORE_TOKEN_H
#define P11ID_CORE_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <p11-kit/pkcs11.h>

#include "core/module.h"
#include "core/pin.h"

/* A session taken from a token's pool; one operation at a time uses it. */
typedef struct p11id_session_st {
    P11ID_TOKEN *token;        /* borrowed: tokens live as long as the ctx */
    CK_SESSION_HANDLE handle;  /* valid while epoch matches the token's */
    unsigned long epoch;       /* token epoch the handle belongs to */
    bool rw;                   /* read-write session (not pooled) */
} P11ID_SESSION;

/* Where a PIN may come from when the token needs a login, in this order:
 * URI pin-value, URI pin-source, the configured source, the callback. */
typedef struct p11id_pin_req_st {
    const char *pin_value;   /* from the URI, or NULL */
    const char *pin_source;  /* from the URI, or NULL */
    const char *cfg_source;  /* from the provider config, or NULL */
    P11ID_PIN_CB cb;         /* ask the application, or NULL */
    void *cb_arg;
} P11ID_PIN_REQ;

#define P11ID_SESSION_RW 1u

/* Takes a session (opening one when the pool is empty). Handles a fork.
 * s->epoch is set even when it fails, for the caller's recovery. */
CK_RV p11id_session_take(P11ID_TOKEN *tok, unsigned int flags,
                         P11ID_SESSION *s);
/* Puts the session back for the next operation. */
void p11id_session_return(P11ID_SESSION *s);
/* Closes the session: after an error that may have left it unusable. */
void p11id_session_discard(P11ID_SESSION *s);

/* Logs the user in unless the token needs no login or is logged in already.
 * With req NULL only the PIN kept from an earlier login is used. Returns
 * CKR_PIN_LEN_RANGE with no error raised when no PIN source gave a PIN
 * (quiet == true) so listings can go on with public objects. */
CK_RV p11id_token_login(P11ID_TOKEN *tok, const P11ID_PIN_REQ *req,
                        bool quiet);
bool p11id_token_needs_login(P11ID_TOKEN *tok);

/* The session or token was lost: forget sessions and login state so the
 * next take opens new ones; object handles are found again (epoch bump). */
void p11id_token_reset(P11ID_TOKEN *tok, unsigned long seen_epoch);
unsigned long p11id_token_epoch(P11ID_TOKEN *tok);

/* P11ID_QUIRK_* flags of this token (core/quirks.h). */
unsigned int p11id_token_quirks(const P11ID_TOKEN *tok);
const CK_TOKEN_INFO *p11id_token_get0_info(const P11ID_TOKEN *tok);
const char *p11id_token_get0_label(const P11ID_TOKEN *tok);
CK_SLOT_ID p11id_token_get_slot(const P11ID_TOKEN *tok);
P11ID_MODULE *p11id_token_get0_module(const P11ID_TOKEN *tok);
bool p11id_token_has_mechanism(P11ID_TOKEN *tok, CK_MECHANISM_TYPE mech);

#endif
