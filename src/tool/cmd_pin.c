/* cmd_pin.c: p11id pin status|change|unblock: a token's PIN state, changing
 * the user PIN, and setting a new one with the SO PIN. PINs come from files,
 * variables or a prompt without echo, never argv; each is tried once and
 * wiped after use. */
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <openssl/crypto.h>

#include "core/manage.h"
#include "tool/tool.h"

const char cmd_pin_help[] =
    "usage: p11id pin status|change|unblock TOKEN-URI [options]\n"
    "\n"
    "  p11id pin status TOKEN-URI [--json]\n"
    "      the PIN flags of the token: user PIN set, count low, final try,\n"
    "      locked, to be changed; the same for the SO PIN; PIN lengths\n"
    "  p11id pin change TOKEN-URI [--pin-file F | --pin-env V]\n"
    "                  [--new-pin-file F | --new-pin-env V]\n"
    "      logs in with the current user PIN (tried once) and sets a new\n"
    "      one; asked twice on the terminal unless a source is given\n"
    "  p11id pin unblock TOKEN-URI [--so-pin-file F | --so-pin-env V]\n"
    "                  [--new-pin-file F | --new-pin-env V]\n"
    "      logs in as security officer and sets a new user PIN, which\n"
    "      clears a locked one\n"
    "\n"
    "A PIN file holds the PIN on its first line; --*-env names a variable.\n"
    "A wrong PIN is not tried again, and a PIN on its final try is not\n"
    "tried at all. Exit status 3 for a missing, wrong or locked PIN.\n";

typedef struct secret_st {
    char buf[P11ID_PIN_MAX + 1];  /* the PIN, NUL-terminated (wiped) */
    size_t len;
} SECRET;

typedef struct pinopts_st {
    const char *new_file;   /* --new-pin-file */
    const char *new_env;    /* --new-pin-env */
    const char *so_file;    /* --so-pin-file */
    const char *so_env;     /* --so-pin-env */
} PINOPTS;

enum {
    OPT_NEW_FILE = 1,
    OPT_NEW_ENV,
    OPT_SO_FILE,
    OPT_SO_ENV
};

/* --- reading PINs -------------------------------------------------------- */

/* Reads a PIN from "file:PATH" or "env:NAME". Returns 1 or 0 (error
 * printed by the core's sink, naming the source and never the PIN). */
static int secret_from_source(TOOL *t, const char *file, const char *env,
                              SECRET *s)
{
    char spec[1024];

    snprintf(spec, sizeof(spec), "%s%s", file != NULL ? "file:" : "env:",
             file != NULL ? file : env);
    if (tool_core(t) == NULL
        || p11id_pin_read_source(spec, false, s->buf, P11ID_PIN_MAX, &s->len)
               != CKR_OK)
        return 0;
    s->buf[s->len] = '\0';
    if (s->len == 0) {
        tool_err(t, "%s %s holds an empty PIN", file != NULL ? "file"
                                                             : "variable",
                 file != NULL ? file : env);
        return 0;
    }
    return 1;
}

/* Asks on the terminal without echo. Returns 1 or 0 (error printed). */
static int secret_from_tty(TOOL *t, const char *prompt, const char *hint,
                           SECRET *s)
{
    struct termios old, noecho;
    FILE *tty = fopen("/dev/tty", "r+e");
    bool restore = false;
    int ok = 0;

    if (tty == NULL) {
        tool_err(t, "%s: no terminal to ask on; give %s", prompt, hint);
        return 0;
    }
    fprintf(tty, "%s: ", prompt);
    fflush(tty);
    if (tcgetattr(fileno(tty), &old) == 0) {
        noecho = old;
        noecho.c_lflag &= ~(tcflag_t)ECHO;
        restore = tcsetattr(fileno(tty), TCSAFLUSH, &noecho) == 0;
    }
    if (fgets(s->buf, sizeof(s->buf), tty) != NULL) {
        s->len = strcspn(s->buf, "\r\n");
        s->buf[s->len] = '\0';
        ok = s->len > 0;
    }
    if (restore)
        tcsetattr(fileno(tty), TCSAFLUSH, &old);
    fputc('\n', tty);
    fclose(tty);
    if (!ok)
        tool_err(t, "%s: nothing entered", prompt);
    return ok;
}

/* The new user PIN: from its source, or asked twice. Its length must fit
 * the token's limits. */
static int read_new_pin(TOOL *t, const PINOPTS *o, const CK_TOKEN_INFO *ti,
                        SECRET *s)
{
    SECRET again;
    int ok;

    if (o->new_file != NULL || o->new_env != NULL) {
        if (!secret_from_source(t, o->new_file, o->new_env, s))
            return 0;
    } else {
        if (!secret_from_tty(t, "new user PIN", "--new-pin-file FILE or "
                                                "--new-pin-env NAME", s))
            return 0;
        memset(&again, 0, sizeof(again));
        ok = secret_from_tty(t, "new user PIN again", "--new-pin-file",
                             &again);
        if (ok && (again.len != s->len
                   || CRYPTO_memcmp(again.buf, s->buf, s->len) != 0)) {
            tool_err(t, "the two new PINs differ: nothing changed");
            ok = 0;
        }
        OPENSSL_cleanse(&again, sizeof(again));
        if (!ok)
            return 0;
    }
    if ((ti->ulMinPinLen > 0 && s->len < ti->ulMinPinLen)
        || (ti->ulMaxPinLen > 0 && ti->ulMaxPinLen < P11ID_PIN_MAX
            && s->len > ti->ulMaxPinLen)) {
        tool_err(t, "the new PIN has %zu characters; this token takes %lu "
                    "to %lu: nothing changed", s->len, ti->ulMinPinLen,
                 ti->ulMaxPinLen);
        return 0;
    }
    return 1;
}

/* --- status -------------------------------------------------------------- */

/* One word for a retry counter's state, worst first. */
static const char *retries(CK_FLAGS f, CK_FLAGS locked, CK_FLAGS final,
                           CK_FLAGS low)
{
    if (f & locked)
        return "locked";
    if (f & final)
        return "final try";
    if (f & low)
        return "count low";
    return "ok";
}

static const char *user_advice(CK_FLAGS f)
{
    if (!(f & CKF_USER_PIN_INITIALIZED))
        return "no user PIN is set: set one with the SO PIN (p11id pin "
               "unblock)";
    if (f & CKF_USER_PIN_LOCKED)
        return "locked: set a new one with the SO PIN (p11id pin unblock)";
    if (f & CKF_USER_PIN_FINAL_TRY)
        return "one more wrong PIN locks it; p11id will not try it: log in "
               "once by hand with the right PIN";
    if (f & CKF_USER_PIN_COUNT_LOW)
        return "a wrong PIN was entered since the last good login";
    if (f & CKF_USER_PIN_TO_BE_CHANGED)
        return "the token wants it changed (p11id pin change)";
    return "set";
}

static const char *so_advice(CK_FLAGS f)
{
    if (f & CKF_SO_PIN_LOCKED)
        return "locked: only re-initialising the token (losing its keys) "
               "helps";
    if (f & CKF_SO_PIN_FINAL_TRY)
        return "one more wrong SO PIN locks it for good";
    if (f & CKF_SO_PIN_COUNT_LOW)
        return "a wrong SO PIN was entered since the last good login";
    if (f & CKF_SO_PIN_TO_BE_CHANGED)
        return "the token wants it changed";
    return "set";
}

/* Prints ", \"name\": true|false": every object starts with a string. */
static void json_bool(const char *name, bool v)
{
    printf(", \"%s\": %s", name, v ? "true" : "false");
}

static void status_json(const CK_TOKEN_INFO *ti, const char *label,
                        const char *uri)
{
    CK_FLAGS f = ti->flags;

    printf("{\"token\": ");
    tool_json_str(stdout, label);
    printf(", \"uri\": ");
    tool_json_str(stdout, uri);
    json_bool("login_required", f & CKF_LOGIN_REQUIRED);
    json_bool("protected_path", f & CKF_PROTECTED_AUTHENTICATION_PATH);
    printf(", \"min_len\": %lu, \"max_len\": %lu,\n \"user_pin\": {",
           ti->ulMinPinLen, ti->ulMaxPinLen);
    printf("\"retries\": \"%s\"", retries(f, CKF_USER_PIN_LOCKED,
                                          CKF_USER_PIN_FINAL_TRY,
                                          CKF_USER_PIN_COUNT_LOW));
    json_bool("initialized", f & CKF_USER_PIN_INITIALIZED);
    json_bool("count_low", f & CKF_USER_PIN_COUNT_LOW);
    json_bool("final_try", f & CKF_USER_PIN_FINAL_TRY);
    json_bool("locked", f & CKF_USER_PIN_LOCKED);
    json_bool("to_be_changed", f & CKF_USER_PIN_TO_BE_CHANGED);
    printf("},\n \"so_pin\": {\"retries\": \"%s\"",
           retries(f, CKF_SO_PIN_LOCKED, CKF_SO_PIN_FINAL_TRY,
                   CKF_SO_PIN_COUNT_LOW));
    json_bool("count_low", f & CKF_SO_PIN_COUNT_LOW);
    json_bool("final_try", f & CKF_SO_PIN_FINAL_TRY);
    json_bool("locked", f & CKF_SO_PIN_LOCKED);
    json_bool("to_be_changed", f & CKF_SO_PIN_TO_BE_CHANGED);
    printf("}}\n");
}

static void status_text(const CK_TOKEN_INFO *ti, const char *label,
                        const char *uri)
{
    CK_FLAGS f = ti->flags;

    printf("token:      %s\n", label);
    printf("uri:        %s\n", uri);
    printf("login:      %s\n",
           (f & CKF_PROTECTED_AUTHENTICATION_PATH)
               ? "on the reader's PIN pad"
           : (f & CKF_LOGIN_REQUIRED) ? "required for private objects"
                                      : "not required");
    printf("user PIN:   retries %s; %s\n",
           retries(f, CKF_USER_PIN_LOCKED, CKF_USER_PIN_FINAL_TRY,
                   CKF_USER_PIN_COUNT_LOW),
           user_advice(f));
    printf("SO PIN:     retries %s; %s\n",
           retries(f, CKF_SO_PIN_LOCKED, CKF_SO_PIN_FINAL_TRY,
                   CKF_SO_PIN_COUNT_LOW),
           so_advice(f));
    printf("PIN length: %lu to %lu characters\n", ti->ulMinPinLen,
           ti->ulMaxPinLen);
}

static int pin_status(TOOL *t, P11ID_TOKEN *tok)
{
    const CK_TOKEN_INFO *ti = p11id_token_get0_info(tok);
    char *uri = p11id_uri_format_token(ti);

    if (uri == NULL) {
        tool_err(t, "out of memory");
        return EXIT_FAIL;
    }
    if (t->json)
        status_json(ti, p11id_token_get0_label(tok), uri);
    else
        status_text(ti, p11id_token_get0_label(tok), uri);
    free(uri);
    return EXIT_OK;
}

/* --- change and unblock -------------------------------------------------- */

static int pin_change(TOOL *t, P11ID_TOKEN *tok, const PINOPTS *o)
{
    const CK_TOKEN_INFO *ti = p11id_token_get0_info(tok);
    const char *label = p11id_token_get0_label(tok);
    SECRET newpin;
    int rc = EXIT_PIN;
    CK_RV rv;

    if (ti->flags & CKF_USER_PIN_LOCKED) {
        tool_err(t, "the user PIN of token \"%s\" is locked: set a new one "
                    "with the SO PIN (p11id pin unblock)", label);
        return EXIT_PIN;
    }
    if (!(ti->flags & CKF_USER_PIN_INITIALIZED)) {
        tool_err(t, "token \"%s\" has no user PIN yet: set one with the SO "
                    "PIN (p11id pin unblock)", label);
        return EXIT_PIN;
    }
    memset(&newpin, 0, sizeof(newpin));
    /* The current PIN first: a wrong one ends this before anything else is
     * asked. tool_login tries it once. */
    if (!tool_get_pin(t, label) || !tool_login(t, tok))
        goto done;
    if (!read_new_pin(t, o, ti, &newpin)) {
        rc = EXIT_FAIL;
        goto done;
    }
    rv = p11id_token_change_pin(tok, t->pin, t->pinlen, newpin.buf,
                                newpin.len);
    if (rv == CKR_PIN_INCORRECT) {
        tool_err(t, "PIN incorrect for token \"%s\": nothing changed", label);
        goto done;
    }
    if (rv != CKR_OK) {
        tool_err(t, "token \"%s\" did not take the new PIN%s", label,
                 rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE
                     ? " (its length or characters)" : "");
        rc = EXIT_FAIL;
        goto done;
    }
    printf("the user PIN of token \"%s\" is changed: update the PIN files "
           "and pin-source settings that hold the old one\n", label);
    rc = EXIT_OK;
done:
    OPENSSL_cleanse(&newpin, sizeof(newpin));
    return rc;
}

static int read_so_pin(TOOL *t, const PINOPTS *o, const char *label,
                       SECRET *so)
{
    char prompt[160];

    if (o->so_file != NULL || o->so_env != NULL)
        return secret_from_source(t, o->so_file, o->so_env, so);
    snprintf(prompt, sizeof(prompt), "SO PIN for token \"%s\"", label);
    return secret_from_tty(t, prompt, "--so-pin-file FILE or --so-pin-env "
                                      "NAME", so);
}

static int pin_unblock(TOOL *t, P11ID_TOKEN *tok, const PINOPTS *o)
{
    const CK_TOKEN_INFO *ti = p11id_token_get0_info(tok);
    const char *label = p11id_token_get0_label(tok);
    SECRET so, newpin;
    int rc = EXIT_PIN;
    CK_RV rv;

    if (ti->flags & CKF_SO_PIN_LOCKED) {
        tool_err(t, "the SO PIN of token \"%s\" is locked: only "
                    "re-initialising the token (losing its keys) helps", label);
        return EXIT_PIN;
    }
    if (ti->flags & CKF_SO_PIN_FINAL_TRY) {
        tool_err(t, "the SO PIN of token \"%s\" is on its final try: p11id "
                    "does not risk locking it for good; use the token "
                    "vendor's tool", label);
        return EXIT_PIN;
    }
    memset(&so, 0, sizeof(so));
    memset(&newpin, 0, sizeof(newpin));
    if (!read_so_pin(t, o, label, &so))
        goto done;
    if (!read_new_pin(t, o, ti, &newpin)) {
        rc = EXIT_FAIL;
        goto done;
    }
    rv = p11id_token_unblock_pin(tok, so.buf, so.len, newpin.buf, newpin.len);
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED) {
        tool_err(t, "SO PIN incorrect for token \"%s\": not tried again; "
                    "nothing changed", label);
        goto done;
    }
    if (rv != CKR_OK) {
        tool_err(t, "token \"%s\" did not set the new user PIN", label);
        rc = EXIT_FAIL;
        goto done;
    }
    printf("the user PIN of token \"%s\" is set: log in with the new PIN\n",
           label);
    rc = EXIT_OK;
done:
    OPENSSL_cleanse(&so, sizeof(so));
    OPENSSL_cleanse(&newpin, sizeof(newpin));
    return rc;
}

/* --- the command --------------------------------------------------------- */

static int parse_opts(TOOL *t, int argc, char **argv, PINOPTS *o)
{
    static const struct option opts[] = {
        { "new-pin-file", required_argument, NULL, OPT_NEW_FILE },
        { "new-pin-env", required_argument, NULL, OPT_NEW_ENV },
        { "so-pin-file", required_argument, NULL, OPT_SO_FILE },
        { "so-pin-env", required_argument, NULL, OPT_SO_ENV },
        TOOL_COMMON_OPTIONS
    };
    int c;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == OPT_NEW_FILE)
            o->new_file = optarg;
        else if (c == OPT_NEW_ENV)
            o->new_env = optarg;
        else if (c == OPT_SO_FILE)
            o->so_file = optarg;
        else if (c == OPT_SO_ENV)
            o->so_env = optarg;
        else if (c < TOOL_OPT_BASE || !tool_common_option(t, c, optarg))
            return 0;
    }
    return 1;
}

int cmd_pin_main(TOOL *t, int argc, char **argv)
{
    PINOPTS o;
    P11ID_TOKEN *tok;
    const char *action;

    memset(&o, 0, sizeof(o));
    if (!parse_opts(t, argc, argv, &o))
        return tool_usage(t, "unknown option");
    if (optind != argc - 2)
        return tool_usage(t, "give status, change or unblock, and one "
                             "TOKEN-URI");
    action = argv[optind];
    if ((o.new_file != NULL && o.new_env != NULL)
        || (o.so_file != NULL && o.so_env != NULL))
        return tool_usage(t, "one source per PIN: a file or a variable");
    if (strcmp(action, "status") != 0 && strcmp(action, "change") != 0
        && strcmp(action, "unblock") != 0)
        return tool_usage(t, "unknown action \"%s\"", action);
    if (strcmp(action, "unblock") == 0
        && (t->pin_file != NULL || t->pin_env != NULL))
        return tool_usage(t, "unblock needs the SO PIN, not the user PIN: "
                             "--so-pin-file or --so-pin-env");
    tok = tool_token(t, argv[optind + 1]);
    if (tok == NULL)
        return EXIT_FAIL;
    /* The flags change with every login attempt, by us or others. */
    if (p11id_token_refresh(tok) != CKR_OK)
        return EXIT_FAIL;
    if (strcmp(action, "status") == 0)
        return pin_status(t, tok);
    if (p11id_token_get0_info(tok)->flags
        & CKF_PROTECTED_AUTHENTICATION_PATH) {
        tool_err(t, "token \"%s\" takes PINs on its reader's PIN pad: "
                    "change them there", p11id_token_get0_label(tok));
        return EXIT_FAIL;
    }
    if (strcmp(action, "change") == 0)
        return pin_change(t, tok, &o);
    return pin_unblock(t, tok, &o);
}
