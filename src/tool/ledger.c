/* ledger.c: the CA's ledger in SQLite (see ledger.h for the schema and why
 * it survives crashes and concurrent signers). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>

#include "tool/ledger.h"
#include "tool/x509util.h"

#define LEDGER_SCHEMA "1"

struct ledger_st {
    TOOL *t;        /* for errors; borrowed */
    sqlite3 *db;    /* the connection */
    char *path;     /* the file, for messages */
    bool created;   /* this process made the file */
    bool in_txn;    /* between begin and commit/rollback */
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS certs ("
    "  serial TEXT PRIMARY KEY NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('issued', 'revoked')),"
    "  subject TEXT NOT NULL,"
    "  sans TEXT NOT NULL,"
    "  profile TEXT NOT NULL,"
    "  not_before INTEGER NOT NULL,"
    "  not_after INTEGER NOT NULL,"
    "  issued_at INTEGER NOT NULL,"
    "  revoked_at INTEGER,"
    "  reason INTEGER,"
    "  der BLOB NOT NULL);";

static void db_err(LEDGER *lg, const char *what)
{
    int code = sqlite3_extended_errcode(lg->db);

    if ((code & 0xff) == SQLITE_BUSY)
        tool_err(lg->t, "ledger %s: %s: another p11id held it locked for "
                        "more than %d s (try again; a hung process holds "
                        "it)",
                 lg->path, what, LEDGER_BUSY_MS / 1000);
    else if ((code & 0xff) == SQLITE_READONLY || (code & 0xff)
                                                     == SQLITE_CANTOPEN)
        tool_err(lg->t, "ledger %s: %s: %s (the ledger and its directory "
                        "must be writable: SQLite writes a journal beside "
                        "it)",
                 lg->path, what, sqlite3_errmsg(lg->db));
    else
        tool_err(lg->t, "ledger %s: %s: %s", lg->path, what,
                 sqlite3_errmsg(lg->db));
}

/* Runs one statement with up to two text parameters; rows are ignored.
 * Returns the SQLite result (SQLITE_DONE or SQLITE_ROW on success). */
static int exec2(LEDGER *lg, const char *sql, const char *a, const char *b)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(lg->db, sql, -1, &st, NULL);

    if (rc != SQLITE_OK)
        return rc;
    if (a != NULL)
        sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
    if (b != NULL)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc;
}

/* The value of a meta entry into a new string, or NULL (absent or no
 * table: *rc says which). */
static char *meta_get(LEDGER *lg, const char *name, int *rc)
{
    sqlite3_stmt *st = NULL;
    char *val = NULL;

    *rc = sqlite3_prepare_v2(lg->db, "SELECT value FROM meta WHERE name = ?",
                             -1, &st, NULL);
    if (*rc != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    *rc = sqlite3_step(st);
    if (*rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        val = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return val;
}

/* Creates the tables and the CA's meta entries in one transaction. Racing
 * creators are fine: IF NOT EXISTS and OR IGNORE keep the first. */
static int init_schema(LEDGER *lg, const char *ca_key, const char *subject)
{
    char *errmsg = NULL;

    if (!ledger_begin(lg))
        return 0;
    if (sqlite3_exec(lg->db, schema_sql, NULL, NULL, &errmsg) != SQLITE_OK
        || exec2(lg, "INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                 LEDGER_SCHEMA, NULL) != SQLITE_DONE
        || exec2(lg, "INSERT OR IGNORE INTO meta VALUES ('ca_key', ?)",
                 ca_key, NULL) != SQLITE_DONE
        || exec2(lg, "INSERT OR IGNORE INTO meta VALUES ('ca_subject', ?)",
                 subject, NULL) != SQLITE_DONE
        || exec2(lg, "INSERT OR IGNORE INTO meta VALUES ('crl_number', '0')",
                 NULL, NULL) != SQLITE_DONE) {
        db_err(lg, "cannot create the tables");
        sqlite3_free(errmsg);
        ledger_rollback(lg);
        return 0;
    }
    return ledger_commit(lg);
}

/* The ledger is one this p11id knows, made for this CA's key. */
static int check_meta(LEDGER *lg, X509 *ca, unsigned flags)
{
    char key[65], *subject = x509u_name_text(X509_get_subject_name(ca));
    char *schema = NULL, *owner = NULL, *owner_subject = NULL;
    int rc, ok = 0;

    if (subject == NULL || !x509u_key_sha256(X509_get0_pubkey(ca), key)) {
        tool_err(lg->t, "cannot read the CA certificate's key");
        goto done;
    }
    schema = meta_get(lg, "schema", &rc);
    if (schema == NULL && (flags & (LEDGER_CREATE | LEDGER_EXCL)) != 0
        && rc != SQLITE_NOTADB) {
        if (!init_schema(lg, key, subject))
            goto done;
        schema = meta_get(lg, "schema", &rc);
    }
    if (schema == NULL) {
        tool_err(lg->t, "%s is not a p11id CA ledger (%s)", lg->path,
                 rc == SQLITE_DONE ? "no schema entry"
                                   : sqlite3_errmsg(lg->db));
        goto done;
    }
    if (strcmp(schema, LEDGER_SCHEMA) != 0) {
        tool_err(lg->t, "ledger %s has schema version %s; this p11id knows "
                        "version %s (use a newer p11id)",
                 lg->path, schema, LEDGER_SCHEMA);
        goto done;
    }
    owner = meta_get(lg, "ca_key", &rc);
    owner_subject = meta_get(lg, "ca_subject", &rc);
    if (owner == NULL || strcmp(owner, key) != 0) {
        tool_err(lg->t, "ledger %s belongs to another CA (\"%s\"), not to "
                        "the key of \"%s\": give the CA certificate it was "
                        "made for, or another --ledger",
                 lg->path, owner_subject != NULL ? owner_subject : "?",
                 subject);
        goto done;
    }
    ok = 1;
done:
    free(schema);
    free(owner);
    free(owner_subject);
    OPENSSL_free(subject);
    return ok;
}

char *ledger_path_for(const char *ca_cert_path)
{
    char *p = NULL;

    if (asprintf(&p, "%s.ledger", ca_cert_path) < 0)
        return NULL;
    return p;
}

/* Creates the file exclusively: exactly one of racing creators makes it.
 * Returns 1 made, 0 existed, -1 error (printed). */
static int create_file(TOOL *t, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0644);

    if (fd >= 0) {
        close(fd);
        return 1;
    }
    if (errno == EEXIST)
        return 0;
    tool_err(t, "cannot create the ledger %s: %s", path, strerror(errno));
    return -1;
}

/* Makes or finds the file as flags ask. Returns 1 (lg->created set) or 0. */
static int ledger_file(LEDGER *lg, unsigned flags)
{
    int made;

    if (access(lg->path, F_OK) == 0 && (flags & LEDGER_EXCL) == 0)
        return 1;
    if ((flags & (LEDGER_CREATE | LEDGER_EXCL)) == 0) {
        tool_err(lg->t, "no CA ledger at %s (p11id ca init makes it, and "
                        "p11id ca sign when it is missing; --ledger names "
                        "another file)",
                 lg->path);
        return 0;
    }
    made = create_file(lg->t, lg->path);
    if (made == 0 && (flags & LEDGER_EXCL) != 0) {
        tool_err(lg->t, "%s exists: a CA was made here before (use another "
                        "-o, or remove the old ledger if that CA is gone)",
                 lg->path);
        return 0;
    }
    lg->created = made == 1;
    return made >= 0;
}

LEDGER *ledger_open(TOOL *t, const char *path, X509 *ca, unsigned flags)
{
    LEDGER *lg = calloc(1, sizeof(*lg));
    int oflags = SQLITE_OPEN_READWRITE;

    if (lg == NULL || (lg->path = strdup(path)) == NULL) {
        tool_err(t, "out of memory");
        free(lg);
        return NULL;
    }
    lg->t = t;
    if (!ledger_file(lg, flags))
        goto err;
#ifdef SQLITE_OPEN_NOFOLLOW
    oflags |= SQLITE_OPEN_NOFOLLOW;
#endif
    if (sqlite3_open_v2(path, &lg->db, oflags, NULL) != SQLITE_OK) {
        if (lg->db != NULL)
            db_err(lg, "cannot open");
        else
            tool_err(t, "cannot open the ledger %s: out of memory", path);
        goto err;
    }
    sqlite3_busy_timeout(lg->db, LEDGER_BUSY_MS);
    /* A rollback journal, written through before COMMIT returns. */
    if (sqlite3_exec(lg->db, "PRAGMA journal_mode = DELETE; "
                             "PRAGMA synchronous = FULL;",
                     NULL, NULL, NULL)
        != SQLITE_OK) {
        db_err(lg, "cannot set the journal mode");
        goto err;
    }
    if (!check_meta(lg, ca, flags))
        goto err;
    return lg;
err:
    if (lg->created)
        unlink(lg->path);
    lg->created = false;
    ledger_close(lg);
    return NULL;
}

void ledger_close(LEDGER *lg)
{
    if (lg == NULL)
        return;
    if (lg->in_txn)
        ledger_rollback(lg);
    sqlite3_close(lg->db);
    free(lg->path);
    free(lg);
}

bool ledger_created(const LEDGER *lg)
{
    return lg->created;
}

const char *ledger_get0_path(const LEDGER *lg)
{
    return lg->path;
}

int ledger_begin(LEDGER *lg)
{
    if (sqlite3_exec(lg->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)
        != SQLITE_OK) {
        db_err(lg, "cannot lock it for writing");
        return 0;
    }
    lg->in_txn = true;
    return 1;
}

int ledger_commit(LEDGER *lg)
{
    if (sqlite3_exec(lg->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        db_err(lg, "cannot commit");
        ledger_rollback(lg);
        return 0;
    }
    lg->in_txn = false;
    return 1;
}

void ledger_rollback(LEDGER *lg)
{
    if (sqlite3_get_autocommit(lg->db) == 0)
        sqlite3_exec(lg->db, "ROLLBACK", NULL, NULL, NULL);
    lg->in_txn = false;
}

int ledger_has_serial(LEDGER *lg, const char *serial)
{
    int rc = exec2(lg, "SELECT 1 FROM certs WHERE serial = ?", serial, NULL);

    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    db_err(lg, "cannot read");
    return -1;
}

/* The facts of a certificate the ledger keeps as text and times. */
typedef struct cert_facts_st {
    char *serial;
    char *subject;
    char *sans;
    int64_t not_before, not_after;
    unsigned char *der;
    int derlen;
} CERT_FACTS;

static void facts_clear(CERT_FACTS *f)
{
    OPENSSL_free(f->serial);
    OPENSSL_free(f->subject);
    OPENSSL_free(f->sans);
    OPENSSL_free(f->der);
    memset(f, 0, sizeof(*f));
}

static int facts_read(X509 *cert, CERT_FACTS *f)
{
    GENERAL_NAMES *sans = x509u_cert_sans(cert);

    memset(f, 0, sizeof(*f));
    f->serial = x509u_serial_hex(X509_get0_serialNumber(cert));
    f->subject = x509u_name_text(X509_get_subject_name(cert));
    f->sans = x509u_sans_text(sans);
    f->derlen = i2d_X509(cert, &f->der);
    GENERAL_NAMES_free(sans);
    if (f->serial != NULL && f->subject != NULL && f->sans != NULL
        && f->derlen > 0
        && x509u_time_unix(X509_get0_notBefore(cert), &f->not_before)
        && x509u_time_unix(X509_get0_notAfter(cert), &f->not_after))
        return 1;
    facts_clear(f);
    return 0;
}

int ledger_add(LEDGER *lg, X509 *cert, const char *profile)
{
    static const char sql[] =
        "INSERT INTO certs (serial, state, subject, sans, profile, "
        "not_before, not_after, issued_at, der) "
        "VALUES (?, 'issued', ?, ?, ?, ?, ?, ?, ?)";
    sqlite3_stmt *st = NULL;
    CERT_FACTS f;
    int rc;

    if (!facts_read(cert, &f)) {
        tool_err(lg->t, "cannot read the certificate for the ledger");
        return 0;
    }
    rc = sqlite3_prepare_v2(lg->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, f.serial, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, f.subject, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, f.sans, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, profile, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, f.not_before);
        sqlite3_bind_int64(st, 6, f.not_after);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)time(NULL));
        sqlite3_bind_blob(st, 8, f.der, f.derlen, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT)
        tool_err(lg->t, "ledger %s: serial %s is recorded already", lg->path,
                 f.serial);
    else if (rc != SQLITE_DONE)
        db_err(lg, "cannot record the certificate");
    facts_clear(&f);
    return rc == SQLITE_DONE;
}

int ledger_revoke(LEDGER *lg, const char *serial, int reason, int64_t when)
{
    static const char sql[] =
        "UPDATE certs SET state = 'revoked', revoked_at = ?, reason = ? "
        "WHERE serial = ? AND state = 'issued'";
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(lg->db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, when);
        sqlite3_bind_int(st, 2, reason);
        sqlite3_bind_text(st, 3, serial, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        db_err(lg, "cannot record the revocation");
        return 0;
    }
    if (sqlite3_changes(lg->db) == 1)
        return 1;
    rc = ledger_has_serial(lg, serial);
    return rc == 1 ? -2 : rc == 0 ? -1 : 0;
}

int ledger_next_crl_number(LEDGER *lg, uint64_t *number)
{
    char *val, *end = NULL, next[32];
    unsigned long long n;
    int rc;

    val = meta_get(lg, "crl_number", &rc);
    if (val == NULL) {
        db_err(lg, "cannot read the CRL number");
        return 0;
    }
    errno = 0;
    n = strtoull(val, &end, 10);
    if (errno != 0 || end == val || *end != '\0') {
        tool_err(lg->t, "ledger %s: the CRL number \"%s\" is damaged",
                 lg->path, val);
        free(val);
        return 0;
    }
    free(val);
    snprintf(next, sizeof(next), "%llu", n + 1);
    if (exec2(lg, "UPDATE meta SET value = ? WHERE name = 'crl_number'", next,
              NULL)
        != SQLITE_DONE) {
        db_err(lg, "cannot count the CRL");
        return 0;
    }
    *number = (uint64_t)(n + 1);
    return 1;
}

static char *col_str(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);

    return strdup(s != NULL ? (const char *)s : "");
}

/* Fills row from the current result of the select in rows_sql. */
static int row_read(sqlite3_stmt *st, bool der, LEDGER_ROW *row)
{
    const void *blob;

    memset(row, 0, sizeof(*row));
    row->serial = col_str(st, 0);
    row->state = col_str(st, 1);
    row->subject = col_str(st, 2);
    row->sans = col_str(st, 3);
    row->profile = col_str(st, 4);
    row->not_before = sqlite3_column_int64(st, 5);
    row->not_after = sqlite3_column_int64(st, 6);
    row->issued_at = sqlite3_column_int64(st, 7);
    row->revoked_at = sqlite3_column_int64(st, 8);
    row->reason = sqlite3_column_type(st, 9) == SQLITE_NULL
                      ? -1
                      : sqlite3_column_int(st, 9);
    if (der) {
        blob = sqlite3_column_blob(st, 10);
        row->derlen = (size_t)sqlite3_column_bytes(st, 10);
        row->der = malloc(row->derlen > 0 ? row->derlen : 1);
        if (row->der != NULL && blob != NULL)
            memcpy(row->der, blob, row->derlen);
    }
    if (row->serial != NULL && row->state != NULL && row->subject != NULL
        && row->sans != NULL && row->profile != NULL
        && (!der || row->der != NULL))
        return 1;
    ledger_row_clear(row);
    return 0;
}

#define ROWS_SQL                                                               \
    "SELECT serial, state, subject, sans, profile, not_before, not_after, "    \
    "issued_at, revoked_at, reason, der FROM certs "

int ledger_foreach(LEDGER *lg, const char *state, bool der, ledger_row_fn fn,
                   void *arg)
{
    sqlite3_stmt *st = NULL;
    LEDGER_ROW row;
    int rc, ok = 1;

    rc = sqlite3_prepare_v2(lg->db,
                            state != NULL
                                ? ROWS_SQL "WHERE state = ? "
                                           "ORDER BY issued_at, rowid"
                                : ROWS_SQL "ORDER BY issued_at, rowid",
                            -1, &st, NULL);
    if (rc == SQLITE_OK && state != NULL)
        sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
    while (rc == SQLITE_OK && ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        if (!row_read(st, der, &row)) {
            tool_err(lg->t, "out of memory");
            ok = 0;
            break;
        }
        ok = fn(&row, arg);
        ledger_row_clear(&row);
    }
    sqlite3_finalize(st);
    if (ok && rc != SQLITE_DONE && rc != SQLITE_OK) {
        db_err(lg, "cannot read");
        return 0;
    }
    return ok;
}

int ledger_get(LEDGER *lg, const char *serial, LEDGER_ROW *row)
{
    sqlite3_stmt *st = NULL;
    int rc, ret = 0;

    rc = sqlite3_prepare_v2(lg->db, ROWS_SQL "WHERE serial = ?", -1, &st,
                            NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW)
        ret = row_read(st, true, row);
    else if (rc == SQLITE_DONE)
        ret = -1;
    else
        db_err(lg, "cannot read");
    if (rc == SQLITE_ROW && ret == 0)
        tool_err(lg->t, "out of memory");
    sqlite3_finalize(st);
    return ret;
}

void ledger_row_clear(LEDGER_ROW *row)
{
    free(row->serial);
    free(row->state);
    free(row->subject);
    free(row->sans);
    free(row->profile);
    free(row->der);
    memset(row, 0, sizeof(*row));
}
