/* x509util.h: X.509 helpers shared by the csr, ca, renew and check commands:
 * subjects and subjectAltNames (parsed and validated), usages and the
 * extensions they imply, random serials, key identifiers, digests, times.
 *
 * Self-contained: OpenSSL only, nothing about tokens or the tool, so any
 * command (or a unit test) can include it. Functions that judge user input
 * take an X509U_ERR and write into it one sentence naming what to fix; they
 * clear OpenSSL's error queue of what they caused. Pointers returned are new
 * objects the caller frees with the matching OpenSSL _free. */
#ifndef P11ID_TOOL_X509UTIL_H
#define P11ID_TOOL_X509UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* A CSR may ask for at most this many subjectAltNames. */
#define X509U_MAX_SANS 100
/* Longest subject attribute value and most attributes a subject may have. */
#define X509U_MAX_NAME_VALUE 256
#define X509U_MAX_NAME_ENTRIES 32

typedef struct x509u_err_st {
    char msg[512]; /* what went wrong and what to do, one sentence */
} X509U_ERR;

/* What a leaf certificate is for: its extendedKeyUsage. */
typedef enum {
    X509U_USAGE_NONE = 0,
    X509U_USAGE_CLIENT = 1, /* clientAuth */
    X509U_USAGE_SERVER = 2, /* serverAuth */
    X509U_USAGE_BOTH = 3    /* serverAuth and clientAuth */
} X509U_USAGE;

/* Flags for the subjectAltName checks. */
#define X509U_SAN_WILDCARD 1u /* allow "*.example.com" (leftmost label) */

/* --- usages ------------------------------------------------------------ */

/* "client", "server", "both". Returns 1, or 0 with err set. */
int x509u_parse_usage(const char *s, X509U_USAGE *out, X509U_ERR *err);
/* "client", "server", "both", or "none" (static). */
const char *x509u_usage_name(X509U_USAGE u);
/* The usage a certificate's extendedKeyUsage names (NONE if neither). */
X509U_USAGE x509u_cert_usage(X509 *x);

/* --- names ------------------------------------------------------------- */

/* Parses "/C=DE/O=Example/CN=web" (OpenSSL's form, in certificate order) or
 * "CN=web,O=Example,C=DE" (RFC 4514, most specific first); both give the
 * same name. A backslash escapes the next character ("\/", "\,").
 * Attribute names are OpenSSL's ("CN", "O", "OU", "C", "L", "ST", "DC",
 * "emailAddress", "serialNumber", ...). The result passes
 * x509u_check_name. NULL with err set. */
X509_NAME *x509u_parse_subject(const char *s, X509U_ERR *err);
/* A subject from elsewhere (a CSR) is sane: known attribute types, at most
 * X509U_MAX_NAME_ENTRIES entries, values that decode to UTF-8 of at most
 * X509U_MAX_NAME_VALUE bytes without NUL or control characters. */
int x509u_check_name(const X509_NAME *name, X509U_ERR *err);
/* The RFC 2253 string of a name, UTF-8 ("CN=web,O=Example,C=DE"). New
 * string (OPENSSL_free) or NULL. */
char *x509u_name_text(const X509_NAME *name);

/* --- subjectAltNames --------------------------------------------------- */

/* Parses "DNS:a.example,IP:192.0.2.1,email:ops@example.com,URI:https://x/"
 * (types case-insensitive; a comma that does not start a new "TYPE:" item
 * belongs to the current one, so URIs may hold commas). Every name is
 * checked as by x509u_check_sans. NULL with err set. */
GENERAL_NAMES *x509u_parse_sans(const char *list, unsigned flags,
                                X509U_ERR *err);
/* Names from elsewhere (a CSR) are well-formed: only DNS, IP, email and URI
 * names; at most X509U_MAX_SANS; no NUL or non-ASCII bytes; DNS names are
 * letters, digits and hyphens in labels of 1-63 characters, at most 253 in
 * all, a wildcard only as the whole leftmost label of a name with two more
 * labels and only with X509U_SAN_WILDCARD; IPs are 4 or 16 bytes; emails
 * are local@domain; URIs have a scheme and no spaces. */
int x509u_check_sans(const GENERAL_NAMES *sans, unsigned flags,
                     X509U_ERR *err);
/* "DNS:a,IP:192.0.2.1,...": new string (OPENSSL_free), "" when sans is
 * NULL or empty; NULL only when out of memory. */
char *x509u_sans_text(const GENERAL_NAMES *sans);
/* A copy of a certificate's subjectAltNames, or NULL when it has none. */
GENERAL_NAMES *x509u_cert_sans(X509 *x);

/* --- keys and digests -------------------------------------------------- */

/* A key fit for a certificate: RSA 2048-16384 bits, EC P-256/P-384/P-521,
 * Ed25519, Ed448. Returns 1, or 0 with err naming the key. */
int x509u_check_key(EVP_PKEY *pub, X509U_ERR *err);
/* A software copy of a key's public half (SubjectPublicKeyInfo round trip
 * through the default provider): for certificates, requests and
 * comparisons, whatever provider holds pk. New key or NULL. */
EVP_PKEY *x509u_pubkey_copy(EVP_PKEY *pk);
/* The digest that signer signs with: name ("sha256", ...) when given,
 * else SHA-256, SHA-384 for P-384 and SHA-512 for P-521. *md is NULL for
 * Ed25519/Ed448, which refuse a name. Returns 1, or 0 with err set. */
int x509u_pick_md(EVP_PKEY *signer, const char *name, const EVP_MD **md,
                  X509U_ERR *err);
/* Lower-case hex SHA-256 of the key's SubjectPublicKeyInfo, 64 characters
 * plus NUL into out. Returns 1 or 0. */
int x509u_key_sha256(EVP_PKEY *pub, char out[65]);

/* --- serials ----------------------------------------------------------- */

/* 128 random bits from RAND_bytes with the top bit cleared (a positive
 * INTEGER) and the next one set (always 16 bytes, so at least 126 bits of
 * entropy, above the 64 that RFC 5280 / CA/B ask for). New or NULL. */
ASN1_INTEGER *x509u_random_serial(void);
/* Upper-case hex of a serial, as "openssl x509 -serial" prints it. New
 * string (OPENSSL_free) or NULL. */
char *x509u_serial_hex(const ASN1_INTEGER *serial);
/* A serial typed by a user: hex, optional "0x", colons allowed, any case.
 * The canonical form of x509u_serial_hex into a new string, or NULL with
 * err set. */
char *x509u_parse_serial(const char *s, X509U_ERR *err);

/* --- extensions -------------------------------------------------------- */

/* What a leaf certificate (or a request for one) says about itself. */
typedef struct x509u_leaf_st {
    X509U_USAGE usage;          /* the EKU */
    EVP_PKEY *pub;              /* the subject key (key usage by type) */
    const GENERAL_NAMES *sans;  /* or NULL */
    bool subject_empty;         /* SAN is then critical (RFC 5280) */
} X509U_LEAF;

/* basicConstraints CA:FALSE (critical), keyUsage (critical:
 * digitalSignature, plus keyEncipherment for an RSA key used by a server),
 * extendedKeyUsage for the usage, subjectAltName when there are names.
 * A new stack (sk_X509_EXTENSION_pop_free) or NULL. */
STACK_OF(X509_EXTENSION) *x509u_leaf_exts(const X509U_LEAF *leaf);
/* basicConstraints CA:TRUE, pathlen:0 (critical) and keyUsage keyCertSign,
 * cRLSign (critical): a CA that issues only leaf certificates. */
STACK_OF(X509_EXTENSION) *x509u_ca_exts(void);
/* Adds every extension of exts to x. Returns 1 or 0. */
int x509u_add_exts(X509 *x, const STACK_OF(X509_EXTENSION) *exts);
/* Adds subjectKeyIdentifier (SHA-1 of the subject key, RFC 5280 method 1)
 * and authorityKeyIdentifier (the issuer's SKI, or its key's hash) to x;
 * issuer NULL for a self-signed certificate. x's key must be set. */
int x509u_add_key_ids(X509 *x, X509 *issuer);
/* The authorityKeyIdentifier naming issuer's key (for CRLs). */
AUTHORITY_KEYID *x509u_akid(X509 *issuer);

/* --- requests ---------------------------------------------------------- */

typedef struct x509u_csr_req_st {
    EVP_PKEY *signer;           /* the private key (any provider) */
    const X509_NAME *subject;
    const GENERAL_NAMES *sans;  /* or NULL */
    X509U_USAGE usage;
    const EVP_MD *md;           /* from x509u_pick_md */
} X509U_CSR_REQ;

/* A CSR for the request, signed by signer and checked against its public
 * key. New request or NULL with err set (OpenSSL's queue left for the
 * caller to print when the signature failed). */
X509_REQ *x509u_make_csr(const X509U_CSR_REQ *req, X509U_ERR *err);

/* What a CA takes from a CSR once it has checked it. */
typedef struct x509u_csr_info_st {
    X509_NAME *subject;         /* own copy, checked */
    GENERAL_NAMES *sans;        /* own copy, checked; NULL when none */
    EVP_PKEY *pub;              /* software copy of the CSR's key */
    char ignored[256];          /* asked-for extensions beyond a leaf's */
} X509U_CSR_INFO;

/* Checks a CSR as a CA must before it signs anything for it: version 1,
 * signature verifies under the CSR's own key, key fit (x509u_check_key),
 * subject sane (x509u_check_name), a single well-formed subjectAltName
 * extension (x509u_check_sans with flags), a non-empty subject or at least
 * one name. Requested extensions other than subjectAltName are never
 * obeyed; those asking for more than a leaf certificate gets (CA:TRUE,
 * certificate signing, name constraints, anything unknown) are named in
 * info->ignored for the caller to report. Returns 1 and fills info, or 0
 * with err set. */
int x509u_check_csr(X509_REQ *req, unsigned flags, X509U_CSR_INFO *info,
                    X509U_ERR *err);
void x509u_csr_info_clear(X509U_CSR_INFO *info);

/* What a leaf certificate is made of, all checked by the caller. */
typedef struct x509u_leaf_tbs_st {
    X509 *issuer;                /* the CA certificate */
    const X509U_CSR_INFO *info;  /* subject, names, key (x509u_check_csr) */
    X509U_USAGE usage;           /* from the profile */
    time_t not_before;           /* validity */
    time_t not_after;
    ASN1_INTEGER *serial;        /* copied into the certificate */
} X509U_LEAF_TBS;

/* The leaf certificate before its signature: version 3, the serial, the
 * issuer's subject, the validity, the CSR's subject and key, the
 * extensions of x509u_leaf_exts for the profile and the key identifiers.
 * Nothing else of the request is copied. New certificate or NULL. */
X509 *x509u_leaf_tbs(const X509U_LEAF_TBS *r);

/* --- times ------------------------------------------------------------- */

/* Seconds since the epoch of an ASN1_TIME. Returns 1 or 0. */
int x509u_time_unix(const ASN1_TIME *t, int64_t *out);
/* "2025-11-22T17:05:00Z" into buf (at least 21 bytes); returns buf. */
const char *x509u_time_iso(int64_t t, char *buf, size_t len);

#endif
