/* ledger.h: the CA's ledger of issued and revoked certificates, an SQLite
 * database next to the CA certificate ("ca.crt" -> "ca.crt.ledger").
 *
 * Every change runs in one transaction taken with BEGIN IMMEDIATE (the
 * write lock first, so two writers never both read the old state), in a
 * rollback journal with synchronous=FULL: a process killed at any point
 * leaves either the old or the new ledger, never a mix. Concurrent p11id
 * processes wait for the lock (busy timeout) instead of failing.
 *
 * How `ca sign` uses it (cmd_ca.c): BEGIN IMMEDIATE; draw serials until
 * one is not in the ledger; build and sign the certificate with the token
 * key; check it verifies under the CA certificate; INSERT it; COMMIT; and
 * only then write the certificate file. A sign killed before COMMIT leaves
 * no row and no file (the journal rolls the transaction back on next open);
 * killed after it, the row exists and `p11id ca show SERIAL` writes the
 * certificate again. No certificate leaves p11id unrecorded.
 *
 * Schema (version 1):
 *   meta(name TEXT PRIMARY KEY, value TEXT)
 *     schema = 1; ca_key = SHA-256 hex of the CA's SubjectPublicKeyInfo (a
 *     ledger is refused with another CA's certificate); ca_subject;
 *     crl_number = the number of the last CRL made (0 before the first).
 *   certs(serial TEXT PRIMARY KEY (upper-case hex, as openssl prints it),
 *         state 'issued' | 'revoked', subject (RFC 2253), sans
 *         ("DNS:a,IP:..."), profile (client | server | both | external),
 *         not_before, not_after, issued_at, revoked_at (seconds since the
 *         epoch), reason (CRL reason code), der BLOB (the certificate)) */
#ifndef P11ID_TOOL_LEDGER_H
#define P11ID_TOOL_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>

#include "tool/tool.h"
#include "tool/x509util.h"

typedef struct ledger_st LEDGER;

/* How long a p11id waits for another one holding the ledger's lock. */
#define LEDGER_BUSY_MS 120000

/* ledger_open flags. */
#define LEDGER_CREATE 1u    /* create the ledger when it does not exist */
#define LEDGER_EXCL 2u      /* create it; refuse one that exists (ca init) */

/* One certificate of the ledger (strings owned by the row). */
typedef struct ledger_row_st {
    char *serial;        /* upper-case hex */
    char *state;         /* "issued" or "revoked" */
    char *subject;       /* RFC 2253 */
    char *sans;          /* "DNS:a,IP:192.0.2.1", "" when none */
    char *profile;       /* client, server, both, external */
    int64_t not_before;  /* seconds since the epoch */
    int64_t not_after;
    int64_t issued_at;
    int64_t revoked_at;  /* 0 unless revoked */
    int reason;          /* CRL reason code, -1 unless revoked */
    unsigned char *der;  /* the certificate (only when asked for) */
    size_t derlen;
} LEDGER_ROW;

/* The ledger's path for a CA certificate path: "<ca-cert>.ledger". New
 * string (free()) or NULL. */
char *ledger_path_for(const char *ca_cert_path);

/* Opens (or with flags creates) the ledger at path for the CA whose
 * certificate is ca: an existing ledger must belong to ca's key. Returns
 * the ledger or NULL (error printed, naming the file and what to do). */
LEDGER *ledger_open(TOOL *t, const char *path, X509 *ca, unsigned flags);
void ledger_close(LEDGER *lg);
/* True when ledger_open created the file. */
bool ledger_created(const LEDGER *lg);
const char *ledger_get0_path(const LEDGER *lg);

/* BEGIN IMMEDIATE (waits for other writers), COMMIT, ROLLBACK. Return 1 or
 * 0 (error printed; rollback never fails visibly). */
int ledger_begin(LEDGER *lg);
int ledger_commit(LEDGER *lg);
void ledger_rollback(LEDGER *lg);

/* 1 when serial is in the ledger, 0 when not, -1 on error (printed). */
int ledger_has_serial(LEDGER *lg, const char *serial);
/* Records an issued certificate (inside a transaction). profile as in the
 * schema. Returns 1 or 0 (error printed; a repeated serial is an error). */
int ledger_add(LEDGER *lg, X509 *cert, const char *profile);
/* Marks serial revoked with a CRL reason code at time when (inside a
 * transaction). Returns 1, 0 on error (printed), -1 when the serial is not
 * in the ledger, -2 when it is revoked already. */
int ledger_revoke(LEDGER *lg, const char *serial, int reason, int64_t when);
/* Increments and returns the CRL number (inside a transaction). */
int ledger_next_crl_number(LEDGER *lg, uint64_t *number);

/* Calls fn for every certificate (state NULL) or those in one state,
 * oldest first; with der true the rows carry the certificate. Stops and
 * returns 0 when fn returns 0; returns 1 when all were seen. */
typedef int (*ledger_row_fn)(const LEDGER_ROW *row, void *arg);
int ledger_foreach(LEDGER *lg, const char *state, bool der, ledger_row_fn fn,
                   void *arg);
/* One row by serial, with its certificate. 1 found, 0 error, -1 absent. */
int ledger_get(LEDGER *lg, const char *serial, LEDGER_ROW *row);
void ledger_row_clear(LEDGER_ROW *row);

/* The CA's issuing path, in cmd_ca.c; renew uses it when the CA key is
 * reachable. */
typedef struct ca_issue_req_st {
    const char *ca_key_uri;   /* the CA's private key on a token */
    const char *ca_cert_path; /* the CA certificate file */
    const char *ledger_path;  /* NULL: ledger_path_for(ca_cert_path) */
    X509_REQ *csr;            /* the request, checked by ca_issue */
    const char *profile;      /* client, server, both */
    int days;                 /* validity */
    const char *md;           /* digest name or NULL */
    unsigned san_flags;       /* X509U_SAN_WILDCARD */
} CA_ISSUE_REQ;

/* The CA certificate at path can issue now: a CA, keyCertSign, valid.
 * Returns 1 or 0 (error printed). */
int ca_cert_usable(TOOL *t, const char *path);
/* Checks the CSR and the CA, issues and records the certificate. Returns
 * the certificate (new; it is in the ledger) or NULL with the error printed
 * and *rc set to the exit code (EXIT_PIN when the CA key needed a PIN it
 * did not get, else EXIT_FAIL). */
X509 *ca_issue(TOOL *t, const CA_ISSUE_REQ *req, int *rc);

/* --- shared by the csr, ca and renew commands -------------------------- */

/* 1 when path may be written: "-", a file that does not exist, or --force;
 * 0 with an error naming the file otherwise. Checked before any token work
 * so that a refusal costs no key and no PIN (cmd_ca.c). */
int output_is_free(TOOL *t, const char *path);
/* The request req describes, signed by req->signer (a token key): checks
 * the key is fit and sets req->md from the digest name mdname (NULL: the
 * key's default) first. Returns 1 with *out set, or 0 with the error
 * printed (cmd_csr.c). */
int csr_for_key(TOOL *t, X509U_CSR_REQ *req, const char *mdname,
                X509_REQ **out);

#endif
