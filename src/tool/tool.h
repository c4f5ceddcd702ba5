/* tool.h: what every p11id command shares: options, PINs, tokens, keys
 * through the provider, files, output. One cmd_<name>.c per command. */
#ifndef P11ID_TOOL_TOOL_H
#define P11ID_TOOL_TOOL_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/module.h"
#include "core/object.h"
#include "core/pin.h"
#include "core/token.h"
#include "core/uri.h"

/* Exit codes (documented in p11id(1)). */
#define EXIT_OK 0
#define EXIT_FAIL 1   /* the operation failed, or a check did */
#define EXIT_USAGE 2  /* bad command line */
#define EXIT_PIN 3    /* no PIN, wrong PIN, PIN locked */

typedef struct tool_st {
    const char *cmd;            /* the command, for messages */
    P11ID_CTX *core;            /* token layer, made on first use */
    const char *module;         /* --module or $P11ID_MODULE, or NULL */
    const char *pin_file;       /* --pin-file */
    const char *pin_env;        /* --pin-env */
    bool json;                  /* --json */
    bool force;                 /* --force: overwrite files */
    char pin[P11ID_PIN_MAX + 1]; /* the user PIN once read (wiped) */
    size_t pinlen;
    bool have_pin;
    bool pin_failed;            /* a PIN was rejected: never ask again */
    bool pin_missing;           /* a PIN was needed and none was given */
    bool providers_loaded;
} TOOL;

/* Options every command takes. Command option tables end with
 * TOOL_COMMON_OPTIONS; ids >= TOOL_OPT_BASE go to tool_common_option. */
enum {
    TOOL_OPT_BASE = 1000,
    TOOL_OPT_MODULE,
    TOOL_OPT_PIN_FILE,
    TOOL_OPT_PIN_ENV,
    TOOL_OPT_JSON,
    TOOL_OPT_FORCE,
    TOOL_OPT_HELP
};
#define TOOL_COMMON_OPTIONS                                                    \
    { "module", required_argument, NULL, TOOL_OPT_MODULE },                    \
        { "pin-file", required_argument, NULL, TOOL_OPT_PIN_FILE },            \
        { "pin-env", required_argument, NULL, TOOL_OPT_PIN_ENV },              \
        { "json", no_argument, NULL, TOOL_OPT_JSON },                          \
        { "force", no_argument, NULL, TOOL_OPT_FORCE },                        \
        { "help", no_argument, NULL, TOOL_OPT_HELP },                          \
    {                                                                          \
        NULL, 0, NULL, 0                                                       \
    }

/* Handles a common option. Returns 1, or 0 after printing an error. For
 * TOOL_OPT_HELP it prints the command's help and exits 0. */
int tool_common_option(TOOL *t, int id, const char *arg);
/* Prints "p11id CMD: <msg>" to stderr. */
void tool_err(TOOL *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints the usage error and the command's synopsis; returns EXIT_USAGE. */
int tool_usage(TOOL *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The exit code of a failed command: EXIT_PIN when a PIN was missing or
 * rejected, else EXIT_FAIL. */
int tool_fail_code(const TOOL *t);
/* Prints the OpenSSL error queue in plain words (p11id's facts, others'
 * reasons) and empties it. */
void tool_print_ssl_errors(TOOL *t);

/* The token layer (made on first use with --module). NULL on failure. */
P11ID_CTX *tool_core(TOOL *t);
/* The one token a URI names. Errors list the tokens when none or several
 * match. The token lives as long as the core. */
P11ID_TOKEN *tool_token(TOOL *t, const char *uri);
/* Reads the user PIN (--pin-file, --pin-env, else a prompt without echo on
 * the terminal) once. Returns 1 or 0 (error printed). */
int tool_get_pin(TOOL *t, const char *token_label);
/* Logs in to the token with the PIN (tried once). Returns 1 or 0. */
int tool_login(TOOL *t, P11ID_TOKEN *tok);
/* Finds exactly one object of class cls (P11ID_CLASS_ANY for any) that the
 * URI names, logging in when private objects are wanted. NULL with an error
 * that lists candidates or matches. Returns a new reference. */
P11ID_OBJECT *tool_find_one(TOOL *t, const char *uri, CK_OBJECT_CLASS cls);
/* All objects a URI matches (login when a PIN is given or needed). */
int tool_find_all(TOOL *t, const char *uri, CK_OBJECT_CLASS cls,
                  P11ID_OBJECT ***objs, size_t *n);

/* Loads the default provider and p11id ($P11ID_PROVIDER_SO, else the
 * installed one) into the default library context. Returns 1 or 0. */
int tool_providers(TOOL *t);
/* The URI to give the provider: with module-path when --module is set. */
char *tool_provider_uri(TOOL *t, const char *uri);
/* A private key on a token as an EVP_PKEY of the p11id provider (for
 * every signature the tool makes). Returns a new key or NULL. */
EVP_PKEY *tool_load_private_key(TOOL *t, const char *uri);
/* The public key of a private key or public key object on a token, as a
 * software key (for comparisons and certificates). */
EVP_PKEY *tool_public_key(TOOL *t, P11ID_OBJECT *obj);

/* Files. Writes data to path ("-" is stdout) atomically: a temporary file in
 * the same directory, then linked into place, so nothing is half-written;
 * an existing file is refused unless --force. mode 0600 for secrets.
 * Returns 1 or 0 (error printed). */
int tool_write_file(TOOL *t, const char *path, const void *data, size_t len,
                    mode_t mode);
/* Reads a whole file (at most max bytes). Returns 1 or 0 (error printed). */
int tool_read_file(TOOL *t, const char *path, size_t max, unsigned char **buf,
                   size_t *len);
/* Certificates and CSRs from PEM or DER files. NULL with an error printed. */
X509 *tool_read_cert(TOOL *t, const char *path);
STACK_OF(X509) *tool_read_certs(TOOL *t, const char *path);
X509_REQ *tool_read_csr(TOOL *t, const char *path);
/* PEM of a certificate / CSR / CRL into a new buffer (OPENSSL_free). */
char *tool_pem_cert(X509 *x, size_t *len);
char *tool_pem_csr(X509_REQ *req, size_t *len);
char *tool_pem_crl(X509_CRL *crl, size_t *len);

/* Output helpers. */
/* Prints s as a JSON string (with quotes) to fp. */
void tool_json_str(FILE *fp, const char *s);
/* Hex of bytes, lower case, into a new string (OPENSSL_free). */
char *tool_hex(const unsigned char *p, size_t len);
/* "RSA 2048", "EC P-256", "Ed25519": a key's type and size (static). */
const char *tool_key_desc(EVP_PKEY *pk, char *buf, size_t len);
/* Parses a hex CKA_ID ("01", "0a1b"). Returns 1 or 0. */
int tool_parse_hex(const char *s, unsigned char **out, size_t *len);

/* Generates a key pair on tok (cmd_keygen.c). type: rsa:2048, rsa:3072,
 * rsa:4096, ec:P-256, ec:P-384, ec:P-521, ed25519. idhex NULL for a random
 * 8-byte CKA_ID shared by the pair. Refuses a label already used by a key on
 * the token. Returns a new reference to the private key, or NULL (error
 * printed). */
P11ID_OBJECT *tool_keygen(TOOL *t, P11ID_TOKEN *tok, const char *type,
                          const char *label, const char *idhex);
/* Stores a certificate on the key's token beside the key (cmd_import.c):
 * same CKA_ID and label as the key, subject, issuer and serial from the
 * certificate. Refuses a certificate whose public key is not the key's.
 * Returns 1 or 0 (error printed). */
int tool_store_cert(TOOL *t, P11ID_OBJECT *key, X509 *cert);
/* The certificate objects on the key's token with the key's CKA_ID. */
int tool_key_certs(TOOL *t, P11ID_OBJECT *key, P11ID_OBJECT ***certs,
                   size_t *n);

void tool_cleanup(TOOL *t);

/* One entry point per command. */
typedef int (*tool_cmd_fn)(TOOL *t, int argc, char **argv);
int cmd_tokens_main(TOOL *t, int argc, char **argv);
int cmd_objects_main(TOOL *t, int argc, char **argv);
int cmd_keygen_main(TOOL *t, int argc, char **argv);
int cmd_csr_main(TOOL *t, int argc, char **argv);
int cmd_ca_main(TOOL *t, int argc, char **argv);
int cmd_import_main(TOOL *t, int argc, char **argv);
int cmd_keyfile_main(TOOL *t, int argc, char **argv);
int cmd_check_main(TOOL *t, int argc, char **argv);
int cmd_probe_main(TOOL *t, int argc, char **argv);
int cmd_renew_main(TOOL *t, int argc, char **argv);
int cmd_pin_main(TOOL *t, int argc, char **argv);
int cmd_config_main(TOOL *t, int argc, char **argv);

/* Each command's help text, defined in its cmd_<name>.c: the synopsis
 * line first, then options and a sentence or two. */
extern const char cmd_tokens_help[], cmd_objects_help[], cmd_keygen_help[],
    cmd_csr_help[], cmd_ca_help[], cmd_import_help[], cmd_keyfile_help[],
    cmd_check_help[], cmd_probe_help[], cmd_renew_help[], cmd_pin_help[],
    cmd_config_help[];

/* The help text of a command (main.c's table). */
void tool_print_help(const char *cmd, FILE *fp);

#endif
