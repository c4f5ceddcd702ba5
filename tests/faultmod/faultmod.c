/* faultmod.c: the project's fault-injecting PKCS#11 module, for tests only.
 *
 * A real PKCS#11 v2.40 module (C_GetFunctionList) that loads another module
 * (SoftHSM in the tests) and forwards every call to it, while a small text
 * file, named by P11ID_FAULTMOD_CONF, says which faults to inject. The file
 * is read at C_Initialize and again whenever it changes (mtime, size or
 * inode), checked at every call, so a test changes faults while a server
 * runs. docs/faults.md describes the directives:
 *
 *   module PATH                  the real module (required)
 *   stats PATH                   call counts, rewritten after every call
 *                                (%p in PATH: the process id)
 *   log PATH                     one line per injected fault and action
 *   fail FUNC N RV               the Nth call of FUNC answers RV
 *   fail FUNC every RV           every call
 *   fail FUNC from N [times K] RV  calls N.. (K of them)
 *   delay FUNC 50ms              sleep before forwarding FUNC
 *   token-flags +CKF_X -CKF_Y    C_GetTokenInfo's flags changed
 *   remove-token | insert-token  the tokens are out / back (a state)
 *   invalidate-sessions [RV]     action: every open session dies
 *   logout                       action: the token logs out underneath
 *   restart [finalized]          action: the real module restarts
 *
 * Sessions are virtual: the caller sees handles of our own (never reused)
 * mapped to the real module's, so a session we declared dead stays dead
 * even when the real module hands out the same number again. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define FM_EXPORT __attribute__((visibility("default")))
#define FM_CONF_ENV "P11ID_FAULTMOD_CONF"

/* Every PKCS#11 v2.40 function, in the function list's order. */
#define FM_FUNCTIONS(X)                                                        \
    X(C_Initialize) X(C_Finalize) X(C_GetInfo) X(C_GetFunctionList)            \
    X(C_GetSlotList) X(C_GetSlotInfo) X(C_GetTokenInfo)                        \
    X(C_GetMechanismList) X(C_GetMechanismInfo) X(C_InitToken) X(C_InitPIN)    \
    X(C_SetPIN) X(C_OpenSession) X(C_CloseSession) X(C_CloseAllSessions)       \
    X(C_GetSessionInfo) X(C_GetOperationState) X(C_SetOperationState)          \
    X(C_Login) X(C_Logout) X(C_CreateObject) X(C_CopyObject)                   \
    X(C_DestroyObject) X(C_GetObjectSize) X(C_GetAttributeValue)               \
    X(C_SetAttributeValue) X(C_FindObjectsInit) X(C_FindObjects)               \
    X(C_FindObjectsFinal) X(C_EncryptInit) X(C_Encrypt) X(C_EncryptUpdate)     \
    X(C_EncryptFinal) X(C_DecryptInit) X(C_Decrypt) X(C_DecryptUpdate)         \
    X(C_DecryptFinal) X(C_DigestInit) X(C_Digest) X(C_DigestUpdate)            \
    X(C_DigestKey) X(C_DigestFinal) X(C_SignInit) X(C_Sign) X(C_SignUpdate)    \
    X(C_SignFinal) X(C_SignRecoverInit) X(C_SignRecover) X(C_VerifyInit)       \
    X(C_Verify) X(C_VerifyUpdate) X(C_VerifyFinal) X(C_VerifyRecoverInit)      \
    X(C_VerifyRecover) X(C_DigestEncryptUpdate) X(C_DecryptDigestUpdate)       \
    X(C_SignEncryptUpdate) X(C_DecryptVerifyUpdate) X(C_GenerateKey)           \
    X(C_GenerateKeyPair) X(C_WrapKey) X(C_UnwrapKey) X(C_DeriveKey)            \
    X(C_SeedRandom) X(C_GenerateRandom) X(C_GetFunctionStatus)                 \
    X(C_CancelFunction) X(C_WaitForSlotEvent)

#define FM_ENUM(n) FN_##n,
enum fm_fn { FM_FUNCTIONS(FM_ENUM) FN_COUNT };
#define FM_NAME(n) #n,
static const char *const fn_names[FN_COUNT] = { FM_FUNCTIONS(FM_NAME) };

/* The CK_RVs a configuration may name. */
#define RVN(n) { n, #n }
static const struct {
    CK_RV rv;
    const char *name;
} rv_names[] = {
    RVN(CKR_OK), RVN(CKR_HOST_MEMORY), RVN(CKR_SLOT_ID_INVALID),
    RVN(CKR_GENERAL_ERROR), RVN(CKR_FUNCTION_FAILED), RVN(CKR_ARGUMENTS_BAD),
    RVN(CKR_DATA_INVALID), RVN(CKR_DATA_LEN_RANGE), RVN(CKR_DEVICE_ERROR),
    RVN(CKR_DEVICE_MEMORY), RVN(CKR_DEVICE_REMOVED),
    RVN(CKR_FUNCTION_CANCELED), RVN(CKR_FUNCTION_NOT_SUPPORTED),
    RVN(CKR_KEY_HANDLE_INVALID), RVN(CKR_KEY_FUNCTION_NOT_PERMITTED),
    RVN(CKR_MECHANISM_INVALID), RVN(CKR_MECHANISM_PARAM_INVALID),
    RVN(CKR_OBJECT_HANDLE_INVALID), RVN(CKR_OPERATION_ACTIVE),
    RVN(CKR_OPERATION_NOT_INITIALIZED), RVN(CKR_PIN_INCORRECT),
    RVN(CKR_PIN_INVALID), RVN(CKR_PIN_LEN_RANGE), RVN(CKR_PIN_EXPIRED),
    RVN(CKR_PIN_LOCKED), RVN(CKR_SESSION_CLOSED), RVN(CKR_SESSION_COUNT),
    RVN(CKR_SESSION_HANDLE_INVALID), RVN(CKR_SESSION_READ_ONLY),
    RVN(CKR_TOKEN_NOT_PRESENT), RVN(CKR_TOKEN_NOT_RECOGNIZED),
    RVN(CKR_TOKEN_WRITE_PROTECTED), RVN(CKR_USER_ALREADY_LOGGED_IN),
    RVN(CKR_USER_NOT_LOGGED_IN), RVN(CKR_USER_PIN_NOT_INITIALIZED),
    RVN(CKR_USER_TYPE_INVALID), RVN(CKR_BUFFER_TOO_SMALL),
    RVN(CKR_CRYPTOKI_NOT_INITIALIZED), RVN(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    RVN(CKR_FUNCTION_REJECTED),
};

/* The token flags token-flags may set or clear. */
static const struct {
    CK_FLAGS flag;
    const char *name;
} flag_names[] = {
    RVN(CKF_WRITE_PROTECTED), RVN(CKF_LOGIN_REQUIRED),
    RVN(CKF_USER_PIN_INITIALIZED), RVN(CKF_PROTECTED_AUTHENTICATION_PATH),
    RVN(CKF_TOKEN_INITIALIZED), RVN(CKF_USER_PIN_COUNT_LOW),
    RVN(CKF_USER_PIN_FINAL_TRY), RVN(CKF_USER_PIN_LOCKED),
    RVN(CKF_USER_PIN_TO_BE_CHANGED), RVN(CKF_SO_PIN_COUNT_LOW),
    RVN(CKF_SO_PIN_FINAL_TRY), RVN(CKF_SO_PIN_LOCKED),
    RVN(CKF_SO_PIN_TO_BE_CHANGED),
};

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* One "fail" line. */
typedef struct fm_rule_st {
    int fn;              /* FN_* */
    unsigned long first; /* first failing call, counted from 1 */
    unsigned long last;  /* last failing call (ULONG_MAX: no end) */
    unsigned long seen;  /* calls of fn since the rule was read */
    CK_RV rv;            /* what the failing calls answer */
} FM_RULE;

#define FM_MAX_RULES 32

#define ACT_INVALIDATE 0x01u
#define ACT_LOGOUT 0x02u
#define ACT_RESTART 0x04u
#define ACT_RESTART_FIN 0x08u

/* What one read of the configuration file says. */
typedef struct fm_conf_st {
    char module[PATH_MAX];        /* the real module */
    char stats[PATH_MAX];         /* stats file pattern, or "" */
    char log[PATH_MAX];           /* log file, or "" */
    FM_RULE rules[FM_MAX_RULES];  /* fail lines */
    size_t nrules;
    unsigned long delay_ms[FN_COUNT]; /* delay lines */
    CK_FLAGS flags_set, flags_clear;  /* token-flags */
    bool removed;                 /* remove-token */
    unsigned int actions;         /* ACT_* lines */
    CK_RV invalidate_rv;          /* what invalidated sessions answer */
} FM_CONF;

/* A session the caller holds. */
typedef struct fm_session_st {
    CK_SESSION_HANDLE virt; /* the caller's handle */
    CK_SESSION_HANDLE real; /* the real module's */
    CK_SLOT_ID slot;
    CK_RV dead;             /* CKR_OK while alive, else what calls answer */
} FM_SESSION;

/* A count of answers: function and CK_RV. */
typedef struct fm_rvcount_st {
    int fn;
    CK_RV rv;
    unsigned long n;
} FM_RVCOUNT;

#define FM_MAX_RVCOUNTS 256

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
/* Guards everything below but the real module's calls. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
/* Forwarded calls hold it for reading; restarts and other actions that
 * pull state from under the callers hold it for writing. */
static pthread_rwlock_t gate;

static char conf_path[PATH_MAX];  /* from the environment, kept */
static struct stat conf_seen;     /* the file as last read */
static bool conf_read;            /* read at least once */
static FM_CONF conf;              /* in force */

static void *real_dl;                 /* dlopen handle of the real module */
static CK_FUNCTION_LIST *real;        /* its function list */
static CK_C_INITIALIZE_ARGS init_args; /* what the caller initialised with */
static bool init_args_null;
static bool real_finalized;  /* "restart finalized": caller must initialise */
static pid_t init_pid;       /* the process that initialised the real one */

static FM_SESSION *sessions;
static size_t nsessions, cap_sessions;
static CK_SESSION_HANDLE next_virt = 0x1000;

static unsigned long calls[FN_COUNT];
static FM_RVCOUNT rvcounts[FM_MAX_RVCOUNTS];
static size_t nrvcounts;
static unsigned long injected;

/* --- small helpers --------------------------------------------------------- */

static const char *rv_name(CK_RV rv, char *buf, size_t len)
{
    size_t i;

    for (i = 0; i < N_ELEMS(rv_names); i++)
        if (rv_names[i].rv == rv)
            return rv_names[i].name;
    snprintf(buf, len, "0x%lx", (unsigned long)rv);
    return buf;
}

static bool rv_parse(const char *s, CK_RV *rv)
{
    char *end;
    size_t i;

    for (i = 0; i < N_ELEMS(rv_names); i++)
        if (strcmp(rv_names[i].name, s) == 0) {
            *rv = rv_names[i].rv;
            return true;
        }
    if (strncmp(s, "0x", 2) != 0)
        return false;
    errno = 0;
    *rv = strtoul(s, &end, 16);
    return errno == 0 && *end == '\0' && end != s + 2;
}

static int fn_parse(const char *s)
{
    int i;

    for (i = 0; i < FN_COUNT; i++)
        if (strcmp(fn_names[i], s) == 0)
            return i;
    return -1;
}

static bool ulong_parse(const char *s, unsigned long *v)
{
    char *end;

    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    *v = strtoul(s, &end, 10);
    return errno == 0 && *end == '\0';
}

/* Appends one line to the log file (one write: lines of several processes
 * do not mix). */
static void fm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fm_log(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n, fd;

    if (conf.log[0] == '\0')
        return;
    n = snprintf(line, sizeof(line), "faultmod[%d]: ", (int)getpid());
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    fd = open(conf.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (write(fd, line, (size_t)n) < 0) {
        /* nothing to do: the log is a help, not a result */
    }
    close(fd);
}

/* --- the configuration file ------------------------------------------------- */

static void conf_warn(int lineno, const char *what, const char *word)
{
    fprintf(stderr, "faultmod: %s:%d: %s%s%s\n", conf_path, lineno, what,
            word != NULL ? ": " : "", word != NULL ? word : "");
}

/* "fail FUNC N|every|from N [times K] RV" */
static void parse_fail(FM_CONF *c, char **w, int nw, int lineno)
{
    FM_RULE r;
    int i = 2;
    unsigned long times;

    memset(&r, 0, sizeof(r));
    if (nw < 4 || (r.fn = fn_parse(w[1])) < 0) {
        conf_warn(lineno, "fail: unknown function or too few words", w[1]);
        return;
    }
    if (strcmp(w[i], "every") == 0) {
        r.first = 1;
        r.last = ULONG_MAX;
        i++;
    } else if (strcmp(w[i], "from") == 0 && ulong_parse(w[i + 1], &r.first)) {
        r.last = ULONG_MAX;
        i += 2;
    } else if (ulong_parse(w[i], &r.first)) {
        r.last = r.first;
        i++;
    } else {
        conf_warn(lineno, "fail: want N, every or from N", w[i]);
        return;
    }
    if (i + 1 < nw && strcmp(w[i], "times") == 0
        && ulong_parse(w[i + 1], &times) && times > 0) {
        r.last = r.first + times - 1;
        i += 2;
    }
    if (i != nw - 1 || !rv_parse(w[i], &r.rv) || r.first == 0) {
        conf_warn(lineno, "fail: bad call number or CK_RV", w[nw - 1]);
        return;
    }
    if (c->nrules == FM_MAX_RULES) {
        conf_warn(lineno, "too many fail lines", NULL);
        return;
    }
    c->rules[c->nrules++] = r;
}

static void parse_delay(FM_CONF *c, char **w, int nw, int lineno)
{
    unsigned long v;
    char num[32];
    size_t len;
    int fn;
    bool secs = false;

    if (nw != 3 || (fn = fn_parse(w[1])) < 0) {
        conf_warn(lineno, "delay FUNC TIME", NULL);
        return;
    }
    len = strlen(w[2]);
    if (len > 2 && strcmp(w[2] + len - 2, "ms") == 0) {
        len -= 2;
    } else if (len > 1 && w[2][len - 1] == 's') {
        len -= 1;
        secs = true;
    }
    if (len == 0 || len >= sizeof(num)) {
        conf_warn(lineno, "delay: bad time", w[2]);
        return;
    }
    memcpy(num, w[2], len);
    num[len] = '\0';
    if (!ulong_parse(num, &v)) {
        conf_warn(lineno, "delay: bad time", w[2]);
        return;
    }
    c->delay_ms[fn] = secs ? v * 1000 : v;
}

static void parse_flags(FM_CONF *c, char **w, int nw, int lineno)
{
    size_t j;
    int i;

    for (i = 1; i < nw; i++) {
        for (j = 0; j < N_ELEMS(flag_names); j++)
            if ((w[i][0] == '+' || w[i][0] == '-')
                && strcmp(w[i] + 1, flag_names[j].name) == 0)
                break;
        if (j == N_ELEMS(flag_names)) {
            conf_warn(lineno, "token-flags: want +CKF_NAME or -CKF_NAME", w[i]);
            continue;
        }
        if (w[i][0] == '+')
            c->flags_set |= flag_names[j].flag;
        else
            c->flags_clear |= flag_names[j].flag;
    }
}

static void parse_line(FM_CONF *c, char *line, int lineno)
{
    char *w[16], *save = NULL, *tok;
    int nw = 0;

    for (tok = strtok_r(line, " \t\r\n", &save); tok != NULL && nw < 16;
         tok = strtok_r(NULL, " \t\r\n", &save))
        w[nw++] = tok;
    if (nw == 0 || w[0][0] == '#')
        return;
    if (strcmp(w[0], "module") == 0 && nw == 2)
        snprintf(c->module, sizeof(c->module), "%s", w[1]);
    else if (strcmp(w[0], "stats") == 0 && nw == 2)
        snprintf(c->stats, sizeof(c->stats), "%s", w[1]);
    else if (strcmp(w[0], "log") == 0 && nw == 2)
        snprintf(c->log, sizeof(c->log), "%s", w[1]);
    else if (strcmp(w[0], "fail") == 0)
        parse_fail(c, w, nw, lineno);
    else if (strcmp(w[0], "delay") == 0)
        parse_delay(c, w, nw, lineno);
    else if (strcmp(w[0], "token-flags") == 0)
        parse_flags(c, w, nw, lineno);
    else if (strcmp(w[0], "remove-token") == 0 && nw == 1)
        c->removed = true;
    else if (strcmp(w[0], "insert-token") == 0 && nw == 1)
        c->removed = false;
    else if (strcmp(w[0], "invalidate-sessions") == 0 && nw <= 2) {
        c->actions |= ACT_INVALIDATE;
        if (nw == 2 && !rv_parse(w[1], &c->invalidate_rv))
            conf_warn(lineno, "invalidate-sessions: unknown CK_RV", w[1]);
    } else if (strcmp(w[0], "logout") == 0 && nw == 1)
        c->actions |= ACT_LOGOUT;
    else if (strcmp(w[0], "restart") == 0 && nw == 1)
        c->actions |= ACT_RESTART;
    else if (strcmp(w[0], "restart") == 0 && nw == 2
             && strcmp(w[1], "finalized") == 0)
        c->actions |= ACT_RESTART_FIN;
    else
        conf_warn(lineno, "unknown or malformed directive", w[0]);
}

/* Reads the file into *c. False when it cannot be read. */
static bool conf_load(FM_CONF *c, struct stat *st)
{
    char line[1024];
    FILE *f;
    int lineno = 0;

    memset(c, 0, sizeof(*c));
    c->invalidate_rv = CKR_SESSION_HANDLE_INVALID;
    f = fopen(conf_path, "re");
    if (f == NULL)
        return false;
    if (fstat(fileno(f), st) != 0) {
        fclose(f);
        return false;
    }
    while (fgets(line, sizeof(line), f) != NULL)
        parse_line(c, line, ++lineno);
    fclose(f);
    return true;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev
           && a->st_size == b->st_size
           && a->st_mtim.tv_sec == b->st_mtim.tv_sec
           && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* --- sessions ---------------------------------------------------------------- */

/* Caller holds mu. */
static FM_SESSION *session_find_locked(CK_SESSION_HANDLE virt)
{
    size_t i;

    for (i = 0; i < nsessions; i++)
        if (sessions[i].virt == virt)
            return &sessions[i];
    return NULL;
}

static void session_drop_locked(FM_SESSION *s)
{
    *s = sessions[--nsessions];
}

static bool session_add_locked(CK_SESSION_HANDLE real_h, CK_SLOT_ID slot,
                               CK_SESSION_HANDLE *virt)
{
    FM_SESSION *grown;

    if (nsessions == cap_sessions) {
        grown = realloc(sessions, (cap_sessions * 2 + 16) * sizeof(*grown));
        if (grown == NULL)
            return false;
        sessions = grown;
        cap_sessions = cap_sessions * 2 + 16;
    }
    sessions[nsessions].virt = next_virt++;
    sessions[nsessions].real = real_h;
    sessions[nsessions].slot = slot;
    sessions[nsessions].dead = CKR_OK;
    *virt = sessions[nsessions++].virt;
    return true;
}

/* Every live session dies with rv; close_real: close the real ones too. */
static void sessions_kill_locked(CK_RV rv, bool close_real)
{
    size_t i;

    for (i = 0; i < nsessions; i++) {
        if (sessions[i].dead != CKR_OK)
            continue;
        if (close_real)
            real->C_CloseSession(sessions[i].real);
        sessions[i].dead = rv;
    }
}

/* Closes the real sessions of every slot (the token logs out). */
static void close_all_real(void)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = N_ELEMS(slots), i;

    if (real->C_GetSlotList(CK_FALSE, slots, &n) != CKR_OK)
        return;
    for (i = 0; i < n; i++)
        real->C_CloseAllSessions(slots[i]);
}

/* --- actions ------------------------------------------------------------------ */

/* Runs what a changed configuration asks for. Caller holds gate for
 * writing and mu. */
static void run_actions_locked(unsigned int actions, bool was_removed)
{
    char b[32];
    CK_RV rv;
    size_t i;

    if (real == NULL || real_finalized || init_pid == 0)
        return;
    if (conf.removed && !was_removed) {
        sessions_kill_locked(CKR_DEVICE_REMOVED, false);
        close_all_real();
        fm_log("token removed");
    } else if (!conf.removed && was_removed) {
        /* Back in: the sessions of before are gone and the token is
         * logged out, as after a real reinsertion. */
        close_all_real();
        for (i = 0; i < nsessions; i++)
            if (sessions[i].dead == CKR_DEVICE_REMOVED)
                sessions[i].dead = CKR_SESSION_HANDLE_INVALID;
        fm_log("token inserted");
    }
    if (actions & ACT_LOGOUT) {
        rv = CKR_SESSION_HANDLE_INVALID;
        for (i = 0; i < nsessions && rv != CKR_OK; i++)
            if (sessions[i].dead == CKR_OK)
                rv = real->C_Logout(sessions[i].real);
        fm_log("logout underneath: %s", rv_name(rv, b, sizeof(b)));
    }
    if (actions & ACT_INVALIDATE) {
        sessions_kill_locked(conf.invalidate_rv, true);
        fm_log("sessions invalidated (%s)",
               rv_name(conf.invalidate_rv, b, sizeof(b)));
    }
    if (actions & (ACT_RESTART | ACT_RESTART_FIN)) {
        sessions_kill_locked(CKR_SESSION_HANDLE_INVALID, false);
        rv = real->C_Finalize(NULL);
        fm_log("restart: C_Finalize %s", rv_name(rv, b, sizeof(b)));
        if (actions & ACT_RESTART) {
            rv = real->C_Initialize(init_args_null ? NULL : &init_args);
            fm_log("restart: C_Initialize %s", rv_name(rv, b, sizeof(b)));
        } else {
            real_finalized = true;
        }
    }
}

/* Reads the configuration again if it changed, and runs its actions. */
static void conf_refresh(void)
{
    static FM_CONF fresh; /* under mu: too big for a thread's stack */
    struct stat st;
    unsigned int actions;
    bool was_removed, first;

    if (conf_path[0] == '\0')
        return;
    pthread_mutex_lock(&mu);
    if (stat(conf_path, &st) != 0 || (conf_read && same_file(&st, &conf_seen))
        || !conf_load(&fresh, &st)) {
        pthread_mutex_unlock(&mu);
        return;
    }
    first = !conf_read;
    was_removed = conf.removed;
    /* The real module is chosen once. */
    if (real != NULL)
        memcpy(fresh.module, conf.module, sizeof(fresh.module));
    conf = fresh;
    conf_seen = st;
    conf_read = true;
    actions = conf.actions;
    pthread_mutex_unlock(&mu);
    if (first || (actions == 0 && was_removed == conf.removed))
        return;
    pthread_rwlock_wrlock(&gate);
    pthread_mutex_lock(&mu);
    run_actions_locked(actions, was_removed);
    pthread_mutex_unlock(&mu);
    pthread_rwlock_unlock(&gate);
}

/* --- call counts ------------------------------------------------------------- */

static void count_rv_locked(int fn, CK_RV rv)
{
    size_t i;

    for (i = 0; i < nrvcounts; i++)
        if (rvcounts[i].fn == fn && rvcounts[i].rv == rv) {
            rvcounts[i].n++;
            return;
        }
    if (nrvcounts < FM_MAX_RVCOUNTS) {
        rvcounts[nrvcounts].fn = fn;
        rvcounts[nrvcounts].rv = rv;
        rvcounts[nrvcounts++].n = 1;
    }
}

/* The stats file's name: the pattern with %p replaced by the pid. */
static void stats_name(char *out, size_t len)
{
    const char *p = conf.stats;
    size_t n = 0;

    while (*p != '\0' && n + 12 < len) {
        if (p[0] == '%' && p[1] == 'p') {
            n += (size_t)snprintf(out + n, len - n, "%d", (int)getpid());
            p += 2;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
}

/* Rewrites the stats file: a temporary file renamed over it, so a reader
 * sees the counts before or after a call, never half of them. */
static void stats_write_locked(void)
{
    char name[PATH_MAX], tmp[PATH_MAX + 32], b[32];
    FILE *f;
    size_t i;
    int fn;

    if (conf.stats[0] == '\0')
        return;
    stats_name(name, sizeof(name));
    snprintf(tmp, sizeof(tmp), "%s.tmp%d", name, (int)getpid());
    f = fopen(tmp, "we");
    if (f == NULL)
        return;
    fprintf(f, "pid %d\ninjected %lu\n", (int)getpid(), injected);
    for (fn = 0; fn < FN_COUNT; fn++)
        if (calls[fn] > 0)
            fprintf(f, "%s %lu\n", fn_names[fn], calls[fn]);
    for (i = 0; i < nrvcounts; i++)
        fprintf(f, "%s=%s %lu\n", fn_names[rvcounts[i].fn],
                rv_name(rvcounts[i].rv, b, sizeof(b)), rvcounts[i].n);
    if (fclose(f) != 0 || rename(tmp, name) != 0)
        unlink(tmp);
}

/* --- set-up and fork -------------------------------------------------------- */

static void atfork_prepare(void)
{
    pthread_rwlock_wrlock(&gate);
    pthread_mutex_lock(&mu);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&mu);
    pthread_rwlock_unlock(&gate);
}

static void gate_init(void)
{
    pthread_rwlockattr_t attr;

    /* Writers first: a restart must not wait for a steady load to pause. */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr,
                                  PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&gate, &attr);
    pthread_rwlockattr_destroy(&attr);
}

/* The child counts its own calls (in its own stats file with %p). Its one
 * thread has another id than the parent's that took the locks, so they are
 * made anew (glibc would take the child's unlock of the parent's write lock
 * for a reader's). */
static void atfork_child(void)
{
    memset(calls, 0, sizeof(calls));
    nrvcounts = 0;
    injected = 0;
    pthread_mutex_init(&mu, NULL);
    gate_init();
}

static void setup(void)
{
    const char *p = getenv(FM_CONF_ENV);

    gate_init();
    if (p != NULL)
        snprintf(conf_path, sizeof(conf_path), "%s", p);
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* --- the common part of every call ---------------------------------------- */

/* One call in progress. */
typedef struct fm_call_st {
    int fn;                  /* FN_* */
    CK_SESSION_HANDLE real;  /* the real session, for session calls */
    CK_RV late;              /* injected after the real call ran */
    bool gated;              /* holds gate for reading */
} FM_CALL;

/* Functions that end an operation: an injected failure still runs the
 * real call, so the real operation ends as PKCS#11 says a failure ends it. */
static bool ends_operation(int fn)
{
    switch (fn) {
    case FN_C_Encrypt: case FN_C_EncryptFinal: case FN_C_Decrypt:
    case FN_C_DecryptFinal: case FN_C_Digest: case FN_C_DigestFinal:
    case FN_C_Sign: case FN_C_SignFinal: case FN_C_SignRecover:
    case FN_C_Verify: case FN_C_VerifyFinal: case FN_C_VerifyRecover:
        return true;
    default:
        return false;
    }
}

/* The fault a rule injects into this call, or CKR_OK. Caller holds mu. */
static CK_RV rule_check_locked(int fn)
{
    char b[32];
    size_t i;
    FM_RULE *r;

    for (i = 0; i < conf.nrules; i++) {
        r = &conf.rules[i];
        if (r->fn != fn)
            continue;
        r->seen++;
        if (r->seen >= r->first && r->seen <= r->last) {
            injected++;
            fm_log("%s call %lu: injected %s", fn_names[fn], r->seen,
                   rv_name(r->rv, b, sizeof(b)));
            return r->rv;
        }
    }
    return CKR_OK;
}

static void sleep_ms(unsigned long ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Starts a call: configuration, delay, count, gate, injected faults. */
static CK_RV call_begin(FM_CALL *c, int fn)
{
    unsigned long delay;
    CK_RV rv = CKR_OK;

    memset(c, 0, sizeof(*c));
    c->fn = fn;
    pthread_once(&setup_once, setup);
    conf_refresh();
    pthread_mutex_lock(&mu);
    calls[fn]++;
    delay = conf.delay_ms[fn];
    pthread_mutex_unlock(&mu);
    if (delay > 0)
        sleep_ms(delay);
    pthread_rwlock_rdlock(&gate);
    c->gated = true;
    pthread_mutex_lock(&mu);
    if (real == NULL
        || (real_finalized && fn != FN_C_Initialize && fn != FN_C_Finalize)) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
    } else {
        rv = rule_check_locked(fn);
        if (rv != CKR_OK && ends_operation(fn)) {
            c->late = rv;
            rv = CKR_OK;
        }
    }
    pthread_mutex_unlock(&mu);
    return rv;
}

/* Starts a call on a session: its real handle, or why there is none. */
static CK_RV call_begin_session(FM_CALL *c, int fn, CK_SESSION_HANDLE h)
{
    FM_SESSION *s;
    CK_RV rv = call_begin(c, fn);

    if (rv != CKR_OK)
        return rv;
    pthread_mutex_lock(&mu);
    s = session_find_locked(h);
    if (s == NULL)
        rv = CKR_SESSION_HANDLE_INVALID;
    else if (s->dead != CKR_OK)
        rv = s->dead;
    else if (conf.removed)
        rv = CKR_DEVICE_REMOVED;
    else
        c->real = s->real;
    pthread_mutex_unlock(&mu);
    if (rv != CKR_OK)
        c->late = CKR_OK; /* the real call does not run at all */
    return rv;
}

/* Starts a call about a slot's token. */
static CK_RV call_begin_token(FM_CALL *c, int fn)
{
    CK_RV rv = call_begin(c, fn);

    if (rv != CKR_OK)
        return rv;
    pthread_mutex_lock(&mu);
    if (conf.removed) {
        rv = CKR_TOKEN_NOT_PRESENT;
        c->late = CKR_OK;
    }
    pthread_mutex_unlock(&mu);
    return rv;
}

/* Ends a call: the injected answer, counts, stats file. */
static CK_RV call_end(FM_CALL *c, CK_RV rv)
{
    if (c->late != CKR_OK)
        rv = c->late;
    if (c->gated)
        pthread_rwlock_unlock(&gate);
    pthread_mutex_lock(&mu);
    count_rv_locked(c->fn, rv);
    stats_write_locked();
    pthread_mutex_unlock(&mu);
    return rv;
}

/* --- general and slot functions -------------------------------------------- */

static CK_RV load_real_locked(void)
{
    CK_C_GetFunctionList getfl;
    const char *why;

    if (real != NULL)
        return CKR_OK;
    if (conf.module[0] == '\0') {
        fprintf(stderr, "faultmod: no \"module PATH\" line in %s (set %s)\n",
                conf_path[0] != '\0' ? conf_path : "(no file)", FM_CONF_ENV);
        return CKR_GENERAL_ERROR;
    }
    real_dl = dlopen(conf.module, RTLD_NOW | RTLD_LOCAL);
    getfl = real_dl != NULL
                ? (CK_C_GetFunctionList)dlsym(real_dl, "C_GetFunctionList")
                : NULL;
    if (getfl == NULL || getfl(&real) != CKR_OK || real == NULL) {
        why = dlerror();
        fprintf(stderr, "faultmod: cannot load %s: %s\n", conf.module,
                why != NULL ? why : "no C_GetFunctionList");
        real = NULL;
        return CKR_GENERAL_ERROR;
    }
    return CKR_OK;
}

static CK_RV fm_C_Initialize(CK_VOID_PTR args)
{
    FM_CALL c;
    CK_RV rv;

    pthread_once(&setup_once, setup);
    conf_refresh();
    pthread_mutex_lock(&mu);
    rv = load_real_locked();
    pthread_mutex_unlock(&mu);
    if (rv != CKR_OK)
        return rv;
    rv = call_begin(&c, FN_C_Initialize);
    if (rv == CKR_OK)
        rv = real->C_Initialize(args);
    if (rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        pthread_mutex_lock(&mu);
        init_args_null = args == NULL;
        if (args != NULL)
            init_args = *(CK_C_INITIALIZE_ARGS *)args;
        /* A fresh real module in a forked child knows none of the
         * parent's sessions. */
        if (rv == CKR_OK && init_pid != getpid())
            nsessions = 0;
        if (rv == CKR_OK && real_finalized) {
            real_finalized = false;
            sessions_kill_locked(CKR_SESSION_HANDLE_INVALID, false);
        }
        init_pid = getpid();
        pthread_mutex_unlock(&mu);
    }
    return call_end(&c, rv);
}

static CK_RV fm_C_Finalize(CK_VOID_PTR reserved)
{
    FM_CALL c;
    CK_RV rv = call_begin(&c, FN_C_Finalize);

    if (rv == CKR_OK) {
        pthread_mutex_lock(&mu);
        if (real_finalized)
            rv = CKR_CRYPTOKI_NOT_INITIALIZED;
        pthread_mutex_unlock(&mu);
    }
    if (rv == CKR_OK)
        rv = real->C_Finalize(reserved);
    if (rv == CKR_OK) {
        pthread_mutex_lock(&mu);
        nsessions = 0;
        pthread_mutex_unlock(&mu);
    }
    return call_end(&c, rv);
}

static CK_RV fm_C_GetInfo(CK_INFO_PTR info)
{
    FM_CALL c;
    CK_RV rv = call_begin(&c, FN_C_GetInfo);

    if (rv == CKR_OK)
        rv = real->C_GetInfo(info);
    return call_end(&c, rv);
}

static CK_RV fm_C_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list,
                              CK_ULONG_PTR count)
{
    FM_CALL c;
    CK_RV rv = call_begin(&c, FN_C_GetSlotList);
    bool removed;

    if (rv != CKR_OK)
        return call_end(&c, rv);
    pthread_mutex_lock(&mu);
    removed = conf.removed;
    pthread_mutex_unlock(&mu);
    if (present && removed) {
        if (count == NULL)
            rv = CKR_ARGUMENTS_BAD;
        else
            *count = 0; /* every slot of the real module is empty now */
    } else {
        rv = real->C_GetSlotList(present, list, count);
    }
    return call_end(&c, rv);
}

static CK_RV fm_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
    FM_CALL c;
    CK_RV rv = call_begin(&c, FN_C_GetSlotInfo);

    if (rv == CKR_OK)
        rv = real->C_GetSlotInfo(slot, info);
    if (rv == CKR_OK) {
        pthread_mutex_lock(&mu);
        if (conf.removed)
            info->flags &= ~CKF_TOKEN_PRESENT;
        pthread_mutex_unlock(&mu);
    }
    return call_end(&c, rv);
}

static CK_RV fm_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    FM_CALL c;
    CK_RV rv = call_begin_token(&c, FN_C_GetTokenInfo);

    if (rv == CKR_OK)
        rv = real->C_GetTokenInfo(slot, info);
    if (rv == CKR_OK) {
        pthread_mutex_lock(&mu);
        info->flags = (info->flags | conf.flags_set) & ~conf.flags_clear;
        pthread_mutex_unlock(&mu);
    }
    return call_end(&c, rv);
}

static CK_RV fm_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR slot,
                                   CK_VOID_PTR reserved)
{
    FM_CALL c;
    CK_RV rv = call_begin(&c, FN_C_WaitForSlotEvent);

    if (rv == CKR_OK)
        rv = real->C_WaitForSlotEvent(flags, slot, reserved);
    return call_end(&c, rv);
}

static CK_RV fm_C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list,
                                   CK_ULONG_PTR count)
{
    FM_CALL c;
    CK_RV rv = call_begin_token(&c, FN_C_GetMechanismList);

    if (rv == CKR_OK)
        rv = real->C_GetMechanismList(slot, list, count);
    return call_end(&c, rv);
}

static CK_RV fm_C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type,
                                   CK_MECHANISM_INFO_PTR info)
{
    FM_CALL c;
    CK_RV rv = call_begin_token(&c, FN_C_GetMechanismInfo);

    if (rv == CKR_OK)
        rv = real->C_GetMechanismInfo(slot, type, info);
    return call_end(&c, rv);
}

static CK_RV fm_C_InitToken(CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin,
                            CK_ULONG len, CK_UTF8CHAR_PTR label)
{
    FM_CALL c;
    CK_RV rv = call_begin_token(&c, FN_C_InitToken);

    if (rv == CKR_OK)
        rv = real->C_InitToken(slot, pin, len, label);
    return call_end(&c, rv);
}

static CK_RV fm_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags,
                              CK_VOID_PTR app, CK_NOTIFY notify,
                              CK_SESSION_HANDLE_PTR ph)
{
    FM_CALL c;
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    CK_RV rv = call_begin_token(&c, FN_C_OpenSession);

    if (rv == CKR_OK && ph == NULL)
        rv = CKR_ARGUMENTS_BAD;
    if (rv == CKR_OK)
        rv = real->C_OpenSession(slot, flags, app, notify, &h);
    if (rv == CKR_OK) {
        pthread_mutex_lock(&mu);
        if (!session_add_locked(h, slot, ph))
            rv = CKR_HOST_MEMORY;
        pthread_mutex_unlock(&mu);
        if (rv != CKR_OK)
            real->C_CloseSession(h);
    }
    return call_end(&c, rv);
}

static CK_RV fm_C_CloseSession(CK_SESSION_HANDLE h)
{
    FM_CALL c;
    FM_SESSION *s;
    CK_RV rv = call_begin_session(&c, FN_C_CloseSession, h);

    if (rv == CKR_OK)
        rv = real->C_CloseSession(c.real);
    /* Closed, or dead already: either way the caller's handle is done
     * (an injected failure leaves it open). */
    if (c.late == CKR_OK && rv != CKR_CRYPTOKI_NOT_INITIALIZED) {
        pthread_mutex_lock(&mu);
        s = session_find_locked(h);
        if (s != NULL && (rv == CKR_OK || s->dead != CKR_OK))
            session_drop_locked(s);
        pthread_mutex_unlock(&mu);
    }
    return call_end(&c, rv);
}

static CK_RV fm_C_CloseAllSessions(CK_SLOT_ID slot)
{
    FM_CALL c;
    size_t i;
    CK_RV rv = call_begin_token(&c, FN_C_CloseAllSessions);

    if (rv == CKR_OK)
        rv = real->C_CloseAllSessions(slot);
    if (rv == CKR_OK || rv == CKR_TOKEN_NOT_PRESENT) {
        pthread_mutex_lock(&mu);
        for (i = 0; i < nsessions;) {
            if (sessions[i].slot == slot)
                session_drop_locked(&sessions[i]);
            else
                i++;
        }
        pthread_mutex_unlock(&mu);
    }
    return call_end(&c, rv);
}

/* --- session functions ------------------------------------------------------ */

/* Defines fm_<name>: the session's real handle replaces the caller's, then
 * the real function runs unless the call was failed before. */
#define SESSION_FN(name, params, args)                                         \
    static CK_RV fm_##name params                                              \
    {                                                                          \
        FM_CALL c;                                                             \
        CK_RV rv = call_begin_session(&c, FN_##name, h);                       \
                                                                               \
        if (rv == CKR_OK)                                                      \
            rv = real->name args;                                              \
        return call_end(&c, rv);                                               \
    }

SESSION_FN(C_InitPIN, (CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR p, CK_ULONG l),
           (c.real, p, l))
SESSION_FN(C_SetPIN,
           (CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR o, CK_ULONG ol,
            CK_UTF8CHAR_PTR n, CK_ULONG nl),
           (c.real, o, ol, n, nl))
SESSION_FN(C_GetSessionInfo, (CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR i),
           (c.real, i))
SESSION_FN(C_GetOperationState,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG_PTR l),
           (c.real, s, l))
SESSION_FN(C_SetOperationState,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG l,
            CK_OBJECT_HANDLE e, CK_OBJECT_HANDLE a),
           (c.real, s, l, e, a))
SESSION_FN(C_Login,
           (CK_SESSION_HANDLE h, CK_USER_TYPE u, CK_UTF8CHAR_PTR p,
            CK_ULONG l),
           (c.real, u, p, l))
SESSION_FN(C_Logout, (CK_SESSION_HANDLE h), (c.real))
SESSION_FN(C_CreateObject,
           (CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n,
            CK_OBJECT_HANDLE_PTR o),
           (c.real, t, n, o))
SESSION_FN(C_CopyObject,
           (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t,
            CK_ULONG n, CK_OBJECT_HANDLE_PTR no),
           (c.real, o, t, n, no))
SESSION_FN(C_DestroyObject, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o),
           (c.real, o))
SESSION_FN(C_GetObjectSize,
           (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ULONG_PTR s),
           (c.real, o, s))
SESSION_FN(C_GetAttributeValue,
           (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t,
            CK_ULONG n),
           (c.real, o, t, n))
SESSION_FN(C_SetAttributeValue,
           (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_PTR t,
            CK_ULONG n),
           (c.real, o, t, n))
SESSION_FN(C_FindObjectsInit,
           (CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n),
           (c.real, t, n))
SESSION_FN(C_FindObjects,
           (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR o, CK_ULONG m,
            CK_ULONG_PTR n),
           (c.real, o, m, n))
SESSION_FN(C_FindObjectsFinal, (CK_SESSION_HANDLE h), (c.real))
SESSION_FN(C_EncryptInit,
           (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
           (c.real, m, k))
SESSION_FN(C_Encrypt,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o,
            CK_ULONG_PTR ol),
           (c.real, d, dl, o, ol))
SESSION_FN(C_EncryptUpdate,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o,
            CK_ULONG_PTR ol),
           (c.real, d, dl, o, ol))
SESSION_FN(C_EncryptFinal,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol),
           (c.real, o, ol))
SESSION_FN(C_DecryptInit,
           (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
           (c.real, m, k))
SESSION_FN(C_Decrypt,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o,
            CK_ULONG_PTR ol),
           (c.real, d, dl, o, ol))
SESSION_FN(C_DecryptUpdate,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o,
            CK_ULONG_PTR ol),
           (c.real, d, dl, o, ol))
SESSION_FN(C_DecryptFinal,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol),
           (c.real, o, ol))
SESSION_FN(C_DigestInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m),
           (c.real, m))
SESSION_FN(C_Digest,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o,
            CK_ULONG_PTR ol),
           (c.real, d, dl, o, ol))
SESSION_FN(C_DigestUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl),
           (c.real, d, dl))
SESSION_FN(C_DigestKey, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE k),
           (c.real, k))
SESSION_FN(C_DigestFinal,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol),
           (c.real, o, ol))
SESSION_FN(C_SignInit,
           (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
           (c.real, m, k))
SESSION_FN(C_Sign,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o,
            CK_ULONG_PTR ol),
           (c.real, d, dl, o, ol))
SESSION_FN(C_SignUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl),
           (c.real, d, dl))
SESSION_FN(C_SignFinal,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG_PTR ol),
           (c.real, o, ol))
SESSION_FN(C_SignRecoverInit,
           (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
           (c.real, m, k))
SESSION_FN(C_SignRecover,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o,
            CK_ULONG_PTR ol),
           (c.real, d, dl, o, ol))
SESSION_FN(C_VerifyInit,
           (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
           (c.real, m, k))
SESSION_FN(C_Verify,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR s,
            CK_ULONG sl),
           (c.real, d, dl, s, sl))
SESSION_FN(C_VerifyUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl),
           (c.real, d, dl))
SESSION_FN(C_VerifyFinal, (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG sl),
           (c.real, s, sl))
SESSION_FN(C_VerifyRecoverInit,
           (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k),
           (c.real, m, k))
SESSION_FN(C_VerifyRecover,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG sl, CK_BYTE_PTR o,
            CK_ULONG_PTR ol),
           (c.real, s, sl, o, ol))
SESSION_FN(C_DigestEncryptUpdate,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o,
            CK_ULONG_PTR ol),
           (c.real, d, dl, o, ol))
SESSION_FN(C_DecryptDigestUpdate,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o,
            CK_ULONG_PTR ol),
           (c.real, d, dl, o, ol))
SESSION_FN(C_SignEncryptUpdate,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o,
            CK_ULONG_PTR ol),
           (c.real, d, dl, o, ol))
SESSION_FN(C_DecryptVerifyUpdate,
           (CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR o,
            CK_ULONG_PTR ol),
           (c.real, d, dl, o, ol))
SESSION_FN(C_GenerateKey,
           (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR t,
            CK_ULONG n, CK_OBJECT_HANDLE_PTR k),
           (c.real, m, t, n, k))
SESSION_FN(C_GenerateKeyPair,
           (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pt,
            CK_ULONG pn, CK_ATTRIBUTE_PTR st, CK_ULONG sn,
            CK_OBJECT_HANDLE_PTR pk, CK_OBJECT_HANDLE_PTR sk),
           (c.real, m, pt, pn, st, sn, pk, sk))
SESSION_FN(C_WrapKey,
           (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE w,
            CK_OBJECT_HANDLE k, CK_BYTE_PTR o, CK_ULONG_PTR ol),
           (c.real, m, w, k, o, ol))
SESSION_FN(C_UnwrapKey,
           (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE u,
            CK_BYTE_PTR w, CK_ULONG wl, CK_ATTRIBUTE_PTR t, CK_ULONG n,
            CK_OBJECT_HANDLE_PTR k),
           (c.real, m, u, w, wl, t, n, k))
SESSION_FN(C_DeriveKey,
           (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE b,
            CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR k),
           (c.real, m, b, t, n, k))
SESSION_FN(C_SeedRandom, (CK_SESSION_HANDLE h, CK_BYTE_PTR s, CK_ULONG l),
           (c.real, s, l))
SESSION_FN(C_GenerateRandom, (CK_SESSION_HANDLE h, CK_BYTE_PTR o, CK_ULONG l),
           (c.real, o, l))
SESSION_FN(C_GetFunctionStatus, (CK_SESSION_HANDLE h), (c.real))
SESSION_FN(C_CancelFunction, (CK_SESSION_HANDLE h), (c.real))

/* --- the function list --------------------------------------------------------- */

static CK_FUNCTION_LIST fm_list = {
    .version = { 2, 40 },
    .C_Initialize = fm_C_Initialize,
    .C_Finalize = fm_C_Finalize,
    .C_GetInfo = fm_C_GetInfo,
    .C_GetFunctionList = C_GetFunctionList,
    .C_GetSlotList = fm_C_GetSlotList,
    .C_GetSlotInfo = fm_C_GetSlotInfo,
    .C_GetTokenInfo = fm_C_GetTokenInfo,
    .C_GetMechanismList = fm_C_GetMechanismList,
    .C_GetMechanismInfo = fm_C_GetMechanismInfo,
    .C_InitToken = fm_C_InitToken,
    .C_InitPIN = fm_C_InitPIN,
    .C_SetPIN = fm_C_SetPIN,
    .C_OpenSession = fm_C_OpenSession,
    .C_CloseSession = fm_C_CloseSession,
    .C_CloseAllSessions = fm_C_CloseAllSessions,
    .C_GetSessionInfo = fm_C_GetSessionInfo,
    .C_GetOperationState = fm_C_GetOperationState,
    .C_SetOperationState = fm_C_SetOperationState,
    .C_Login = fm_C_Login,
    .C_Logout = fm_C_Logout,
    .C_CreateObject = fm_C_CreateObject,
    .C_CopyObject = fm_C_CopyObject,
    .C_DestroyObject = fm_C_DestroyObject,
    .C_GetObjectSize = fm_C_GetObjectSize,
    .C_GetAttributeValue = fm_C_GetAttributeValue,
    .C_SetAttributeValue = fm_C_SetAttributeValue,
    .C_FindObjectsInit = fm_C_FindObjectsInit,
    .C_FindObjects = fm_C_FindObjects,
    .C_FindObjectsFinal = fm_C_FindObjectsFinal,
    .C_EncryptInit = fm_C_EncryptInit,
    .C_Encrypt = fm_C_Encrypt,
    .C_EncryptUpdate = fm_C_EncryptUpdate,
    .C_EncryptFinal = fm_C_EncryptFinal,
    .C_DecryptInit = fm_C_DecryptInit,
    .C_Decrypt = fm_C_Decrypt,
    .C_DecryptUpdate = fm_C_DecryptUpdate,
    .C_DecryptFinal = fm_C_DecryptFinal,
    .C_DigestInit = fm_C_DigestInit,
    .C_Digest = fm_C_Digest,
    .C_DigestUpdate = fm_C_DigestUpdate,
    .C_DigestKey = fm_C_DigestKey,
    .C_DigestFinal = fm_C_DigestFinal,
    .C_SignInit = fm_C_SignInit,
    .C_Sign = fm_C_Sign,
    .C_SignUpdate = fm_C_SignUpdate,
    .C_SignFinal = fm_C_SignFinal,
    .C_SignRecoverInit = fm_C_SignRecoverInit,
    .C_SignRecover = fm_C_SignRecover,
    .C_VerifyInit = fm_C_VerifyInit,
    .C_Verify = fm_C_Verify,
    .C_VerifyUpdate = fm_C_VerifyUpdate,
    .C_VerifyFinal = fm_C_VerifyFinal,
    .C_VerifyRecoverInit = fm_C_VerifyRecoverInit,
    .C_VerifyRecover = fm_C_VerifyRecover,
    .C_DigestEncryptUpdate = fm_C_DigestEncryptUpdate,
    .C_DecryptDigestUpdate = fm_C_DecryptDigestUpdate,
    .C_SignEncryptUpdate = fm_C_SignEncryptUpdate,
    .C_DecryptVerifyUpdate = fm_C_DecryptVerifyUpdate,
    .C_GenerateKey = fm_C_GenerateKey,
    .C_GenerateKeyPair = fm_C_GenerateKeyPair,
    .C_WrapKey = fm_C_WrapKey,
    .C_UnwrapKey = fm_C_UnwrapKey,
    .C_DeriveKey = fm_C_DeriveKey,
    .C_SeedRandom = fm_C_SeedRandom,
    .C_GenerateRandom = fm_C_GenerateRandom,
    .C_GetFunctionStatus = fm_C_GetFunctionStatus,
    .C_CancelFunction = fm_C_CancelFunction,
    .C_WaitForSlotEvent = fm_C_WaitForSlotEvent,
};

FM_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
    pthread_once(&setup_once, setup);
    if (list == NULL)
        return CKR_ARGUMENTS_BAD;
    pthread_mutex_lock(&mu);
    calls[FN_C_GetFunctionList]++;
    pthread_mutex_unlock(&mu);
    *list = &fm_list;
    return CKR_OK;
}
