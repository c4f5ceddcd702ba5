/* token.c: a token in a slot: the session pool, the login state and the
 * lockout guard (a PIN the token rejected is never sent again). */
#include "core/token.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include <p11id/p11id.h>
#include "core/err.h"
#include "core/internal.h"
#include "core/pkcs11.h"
#include "core/rv.h"
#include "core/quirks.h"
#include "core/trace.h"
#include "core/uri.h"

P11ID_TOKEN *p11id_token_new(P11ID_MODULE *mod, CK_SLOT_ID slot,
                             const CK_SLOT_INFO *si, const CK_TOKEN_INFO *ti)
{
    P11ID_TOKEN *tok = calloc(1, sizeof(*tok));

    if (tok == NULL)
        return NULL;
    tok->module = mod;
    tok->slot = slot;
    tok->slot_info = *si;
    tok->info = *ti;
    p11id_trim_copy(tok->label, ti->label, sizeof(ti->label));
    pthread_mutex_init(&tok->lock, NULL);
    tok->fork_gen = p11id_fork_generation();
    tok->epoch = 1;
    tok->quirks = p11id_quirks_lookup(p11id_module_get0_info(mod), ti);
    return tok;
}

static void forget_pin(P11ID_TOKEN *tok)
{
    if (tok->pin != NULL)
        OPENSSL_clear_free(tok->pin, tok->pinlen);
    tok->pin = NULL;
    tok->pinlen = 0;
}

void p11id_token_free(P11ID_TOKEN *tok)
{
    size_t i;

    if (tok == NULL)
        return;
    if (!p11id_process_exiting() && tok->fork_gen == p11id_fork_generation()
        && tok->module->fork_gen == tok->fork_gen) {
        for (i = 0; i < tok->nidle; i++)
            tok->module->fl->C_CloseSession(tok->idle[i]);
        if (tok->have_keep)
            tok->module->fl->C_CloseSession(tok->keep);
    }
    forget_pin(tok);
    free(tok->idle);
    free(tok->mechs);
    pthread_mutex_destroy(&tok->lock);
    free(tok);
}

void p11id_token_forget_locked(P11ID_TOKEN *tok)
{
    /* The handles belong to a parent process or a lost token: drop them
     * without closing. The kept PIN stays so we can log in again. */
    tok->nidle = 0;
    tok->have_keep = false;
    tok->logged_in = false;
    tok->epoch++;
    tok->fork_gen = p11id_fork_generation();
}

void p11id_token_reset(P11ID_TOKEN *tok, unsigned long seen_epoch)
{
    CK_FUNCTION_LIST *fl = tok->module->fl;
    CK_ULONG nslots;
    size_t i;

    pthread_mutex_lock(&tok->lock);
    /* Another thread may have reset already since this caller looked. */
    if (tok->epoch == seen_epoch) {
        p11id_trace(1, "token \"%s\": resetting sessions and login",
                    tok->label);
        for (i = 0; i < tok->nidle; i++)
            fl->C_CloseSession(tok->idle[i]);
        if (tok->have_keep)
            fl->C_CloseSession(tok->keep);
        p11id_token_forget_locked(tok);
        /* A card pulled and put back: modules such as OpenSC notice the new
         * card only when the slots are listed again. */
        fl->C_GetSlotList(CK_FALSE, NULL, &nslots);
    }
    pthread_mutex_unlock(&tok->lock);
}

unsigned long p11id_token_epoch(P11ID_TOKEN *tok)
{
    unsigned long e;

    pthread_mutex_lock(&tok->lock);
    e = tok->epoch;
    pthread_mutex_unlock(&tok->lock);
    return e;
}

/* Brings the token's state to this process. Caller holds tok->lock. */
static void sync_fork_locked(P11ID_TOKEN *tok)
{
    if (tok->fork_gen != p11id_fork_generation())
        p11id_token_forget_locked(tok);
}

/* The token this process knew is not there any more: after a fork, the
 * module may have started over with another view (SoftHSM with
 * reset_on_fork and no SOFTHSM2_CONF in an nginx worker). */
static void raise_token_gone(P11ID_TOKEN *tok, CK_RV rv)
{
    const char *hint = p11id_ctx_env_hint(tok->module->ctx);

    if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_REMOVED) {
        p11id_raise(P11ID_R_NO_TOKEN,
                    "token \"%s\" is not present in its slot (%lu): it was "
                    "removed (a card pulled out of its reader? put it "
                    "back): p11id logs in and finds its keys again when it "
                    "is back",
                    tok->label, (unsigned long)tok->slot);
        return;
    }
    p11id_raise(P11ID_R_NO_TOKEN,
                "token \"%s\" (slot %lu) is not there in this process%s%s",
                tok->label, (unsigned long)tok->slot,
                *hint != '\0' ? hint : "; if this is a server's worker "
                "process, it needs the token module's environment and read "
                "access to the token's files", "");
}

CK_RV p11id_session_take(P11ID_TOKEN *tok, unsigned int flags,
                         P11ID_SESSION *s)
{
    CK_SESSION_HANDLE h;
    CK_RV rv;

    rv = p11id_module_check_fork(tok->module);
    if (rv != CKR_OK) {
        /* The epoch still tells a caller's recovery what it saw. */
        pthread_mutex_lock(&tok->lock);
        s->epoch = tok->epoch;
        pthread_mutex_unlock(&tok->lock);
        s->token = NULL;
        return rv;
    }
    pthread_mutex_lock(&tok->lock);
    sync_fork_locked(tok);
    s->token = tok;
    s->epoch = tok->epoch;
    s->rw = (flags & P11ID_SESSION_RW) != 0;
    if (!s->rw && tok->nidle > 0) {
        s->handle = tok->idle[--tok->nidle];
        pthread_mutex_unlock(&tok->lock);
        return CKR_OK;
    }
    pthread_mutex_unlock(&tok->lock);
    rv = p11id_C_OpenSession(tok->module->fl, tok->slot,
                             s->rw ? CKF_RW_SESSION : 0, &h);
    if (rv == CKR_SLOT_ID_INVALID || rv == CKR_TOKEN_NOT_PRESENT
        || rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_RECOGNIZED)
        raise_token_gone(tok, rv);
    if (rv != CKR_OK) {
        s->token = NULL; /* nothing to return or discard */
        return rv;
    }
    s->handle = h;
    return CKR_OK;
}

void p11id_session_return(P11ID_SESSION *s)
{
    P11ID_TOKEN *tok = s->token;
    CK_SESSION_HANDLE *grown;

    if (tok == NULL)
        return;
    pthread_mutex_lock(&tok->lock);
    if (s->epoch != tok->epoch) {
        /* The token was reset meanwhile: this handle is stale. */
        pthread_mutex_unlock(&tok->lock);
        s->token = NULL;
        return;
    }
    if (!s->rw && tok->nidle == tok->idle_cap) {
        grown = realloc(tok->idle, (tok->idle_cap * 2 + 4) * sizeof(*grown));
        if (grown != NULL) {
            tok->idle = grown;
            tok->idle_cap = tok->idle_cap * 2 + 4;
        }
    }
    if (!s->rw && tok->nidle < tok->idle_cap) {
        tok->idle[tok->nidle++] = s->handle;
        pthread_mutex_unlock(&tok->lock);
        s->token = NULL;
        return;
    }
    pthread_mutex_unlock(&tok->lock);
    tok->module->fl->C_CloseSession(s->handle);
    s->token = NULL;
}

void p11id_session_discard(P11ID_SESSION *s)
{
    P11ID_TOKEN *tok = s->token;
    bool current;

    if (tok == NULL)
        return;
    pthread_mutex_lock(&tok->lock);
    current = s->epoch == tok->epoch;
    pthread_mutex_unlock(&tok->lock);
    if (current)
        tok->module->fl->C_CloseSession(s->handle);
    s->token = NULL;
}

bool p11id_token_needs_login(P11ID_TOKEN *tok)
{
    return (tok->info.flags & CKF_LOGIN_REQUIRED) != 0;
}

/* Finds a PIN in the request's sources, in order. CKR_PIN_LEN_RANGE (no
 * error raised) when none gave one. */
static CK_RV get_pin(P11ID_TOKEN *tok, const P11ID_PIN_REQ *req, char *buf,
                     size_t *len)
{
    char prompt[80];

    if (req == NULL)
        return CKR_PIN_LEN_RANGE;
    if (req->pin_value != NULL) {
        *len = strlen(req->pin_value);
        if (*len == 0 || *len > P11ID_PIN_MAX) {
            p11id_raise(P11ID_R_PIN_SOURCE_INVALID,
                        "the URI's pin-value is empty or too long");
            return CKR_ARGUMENTS_BAD;
        }
        memcpy(buf, req->pin_value, *len);
        return CKR_OK;
    }
    if (req->pin_source != NULL)
        return p11id_pin_read_source(req->pin_source, true, buf,
                                     P11ID_PIN_MAX, len);
    if (req->cfg_source != NULL)
        return p11id_pin_read_source(req->cfg_source, false, buf,
                                     P11ID_PIN_MAX, len);
    if (req->cb != NULL) {
        snprintf(prompt, sizeof(prompt), "PIN for token \"%s\"", tok->label);
        if (req->cb(buf, P11ID_PIN_MAX, len, prompt, req->cb_arg) == 1
            && *len > 0 && *len <= P11ID_PIN_MAX)
            return CKR_OK;
    }
    return CKR_PIN_LEN_RANGE;
}

/* Refuses a login the token's PIN flags say would be unwise. */
static CK_RV check_pin_flags(P11ID_TOKEN *tok)
{
    CK_TOKEN_INFO ti;

    if (p11id_C_GetTokenInfo(tok->module->fl, tok->slot, &ti) != CKR_OK)
        return CKR_GENERAL_ERROR;
    tok->info.flags = ti.flags;
    if (ti.flags & CKF_USER_PIN_LOCKED) {
        p11id_raise(P11ID_R_PIN_LOCKED,
                    "the user PIN of token \"%s\" is locked: unblock it "
                    "with the SO PIN (for example pkcs11-tool --init-pin "
                    "--login --login-type so)", tok->label);
        return CKR_PIN_LOCKED;
    }
    if (ti.flags & CKF_USER_PIN_FINAL_TRY) {
        p11id_raise(P11ID_R_PIN_FINAL_TRY,
                    "token \"%s\" is on its final PIN try "
                    "(CKF_USER_PIN_FINAL_TRY): p11id does not risk locking "
                    "it; log in once by hand with the right PIN "
                    "(pkcs11-tool --login --test)", tok->label);
        return CKR_PIN_INCORRECT;
    }
    return CKR_OK;
}

/* Logs in on the kept session. Caller holds tok->lock. */
static CK_RV login_locked(P11ID_TOKEN *tok, const unsigned char *pin,
                          size_t pinlen)
{
    P11ID_SESSION s = { tok, 0, tok->epoch, false };
    CK_RV rv;

    if (!tok->have_keep) {
        rv = p11id_C_OpenSession(tok->module->fl, tok->slot, 0, &tok->keep);
        if (rv != CKR_OK)
            return rv;
        tok->have_keep = true;
    }
    s.handle = tok->keep;
    rv = p11id_C_Login(&s, CKU_USER, (CK_UTF8CHAR_PTR)pin,
                       pin != NULL ? (CK_ULONG)pinlen : 0);
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED
        || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE
        || (rv == CKR_GENERAL_ERROR
            && (tok->quirks & P11ID_QUIRK_BAD_PIN_GENERAL_ERROR))) {
        tok->pin_rejected = true;
        forget_pin(tok);
        p11id_raise(P11ID_R_PIN_INCORRECT,
                    "PIN incorrect for token \"%s\": p11id will not try it "
                    "again in this process; fix the PIN source", tok->label);
        /* Callers see the card's rejection as what it is. */
        if (rv == CKR_GENERAL_ERROR)
            rv = CKR_PIN_INCORRECT;
    }
    if (rv == CKR_OK)
        tok->logged_in = true;
    return rv;
}

CK_RV p11id_token_login(P11ID_TOKEN *tok, const P11ID_PIN_REQ *req, bool quiet)
{
    char buf[P11ID_PIN_MAX + 1];
    unsigned char *kept;
    size_t len = 0;
    CK_RV rv;

    if (!p11id_token_needs_login(tok))
        return CKR_OK;
    pthread_mutex_lock(&tok->lock);
    sync_fork_locked(tok);
    if (tok->logged_in) {
        pthread_mutex_unlock(&tok->lock);
        return CKR_OK;
    }
    if (tok->pin_rejected) {
        pthread_mutex_unlock(&tok->lock);
        p11id_raise(P11ID_R_PIN_ALREADY_REJECTED,
                    "token \"%s\" rejected the PIN earlier in this process: "
                    "not trying again (fix the PIN source and restart)",
                    tok->label);
        return CKR_PIN_INCORRECT;
    }
    if (tok->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH) {
        rv = login_locked(tok, NULL, 0);
        pthread_mutex_unlock(&tok->lock);
        return rv;
    }
    if (tok->pin != NULL) {
        rv = login_locked(tok, tok->pin, tok->pinlen);
        p11id_trace(1, "token \"%s\": logged in again with the kept PIN: %s",
                    tok->label, p11id_rv_name(rv));
        pthread_mutex_unlock(&tok->lock);
        return rv;
    }
    rv = get_pin(tok, req, buf, &len);
    if (rv == CKR_PIN_LEN_RANGE) {
        if (!quiet)
            p11id_raise(P11ID_R_PIN_UNAVAILABLE,
                        "token \"%s\" needs a PIN and none was given: set "
                        "pin-source in the provider config, or pin-source "
                        "in the URI", tok->label);
        goto done;
    }
    if (rv != CKR_OK)
        goto done;
    rv = check_pin_flags(tok);
    if (rv != CKR_OK)
        goto done;
    rv = login_locked(tok, (unsigned char *)buf, len);
    if (rv == CKR_OK) {
        kept = OPENSSL_malloc(len);
        if (kept != NULL) {
            memcpy(kept, buf, len);
            tok->pin = kept;
            tok->pinlen = len;
        }
        p11id_trace(1, "token \"%s\": logged in", tok->label);
    }
done:
    OPENSSL_cleanse(buf, sizeof(buf));
    pthread_mutex_unlock(&tok->lock);
    return rv;
}

unsigned int p11id_token_quirks(const P11ID_TOKEN *tok)
{
    return tok->quirks;
}

const CK_TOKEN_INFO *p11id_token_get0_info(const P11ID_TOKEN *tok)
{
    return &tok->info;
}

const char *p11id_token_get0_label(const P11ID_TOKEN *tok)
{
    return tok->label;
}

CK_SLOT_ID p11id_token_get_slot(const P11ID_TOKEN *tok)
{
    return tok->slot;
}

P11ID_MODULE *p11id_token_get0_module(const P11ID_TOKEN *tok)
{
    return tok->module;
}

bool p11id_token_has_mechanism(P11ID_TOKEN *tok, CK_MECHANISM_TYPE mech)
{
    bool found = false;
    CK_ULONG i;

    pthread_mutex_lock(&tok->lock);
    if (!tok->mechs_read) {
        p11id_err_set_mark();
        if (p11id_C_GetMechanismList(tok->module->fl, tok->slot, &tok->mechs,
                                     &tok->nmechs) != CKR_OK)
            tok->nmechs = 0;
        p11id_err_pop_to_mark();
        tok->mechs_read = true;
    }
    for (i = 0; i < tok->nmechs; i++)
        if (tok->mechs[i] == mech)
            found = true;
    pthread_mutex_unlock(&tok->lock);
    return found;
}
