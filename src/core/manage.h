/* manage.h: changing tokens: key pairs, certificates, PINs, objects. Used by
 * the tool; the provider never changes a token. */
#ifndef P11ID_CORE_MANAGE_H
#define P11ID_CORE_MANAGE_H

#include <stddef.h>
#include <p11-kit/pkcs11.h>

#include "core/object.h"
#include "core/token.h"

typedef enum {
    P11ID_GEN_RSA,
    P11ID_GEN_EC,      /* ec_params names the curve */
    P11ID_GEN_EDWARDS  /* ec_params names the curve (Ed25519, Ed448) */
} P11ID_GEN_KIND;

typedef struct p11id_keygen_req_st {
    P11ID_GEN_KIND kind;
    CK_ULONG rsa_bits;               /* RSA modulus size */
    const unsigned char *ec_params;  /* DER of the curve's OID */
    size_t ec_params_len;
    const char *label;               /* CKA_LABEL of both objects */
    const unsigned char *id;         /* CKA_ID shared by the pair */
    size_t idlen;
} P11ID_KEYGEN_REQ;

/* Generates a key pair on the token: the private key CKA_TOKEN, CKA_PRIVATE,
 * CKA_SENSITIVE and not CKA_EXTRACTABLE; the public key a token object.
 * The user must be logged in. *priv is a new reference to the private key. */
CK_RV p11id_generate_keypair(P11ID_TOKEN *tok, const P11ID_KEYGEN_REQ *req,
                             P11ID_OBJECT **priv);

typedef struct p11id_cert_req_st {
    const unsigned char *der;        /* the certificate */
    size_t len;
    const unsigned char *subject;    /* DER Name */
    size_t subject_len;
    const unsigned char *issuer;     /* DER Name */
    size_t issuer_len;
    const unsigned char *serial;     /* DER INTEGER */
    size_t serial_len;
    const char *label;
    const unsigned char *id;         /* the key's CKA_ID */
    size_t idlen;
    CK_BBOOL trusted;                /* a CA the token holder trusts */
} P11ID_CERT_REQ;

/* Stores an X.509 certificate as a public token object. *out (may be NULL)
 * gets a new reference to it. */
CK_RV p11id_store_certificate(P11ID_TOKEN *tok, const P11ID_CERT_REQ *req,
                              P11ID_OBJECT **out);

/* Destroys the object on its token. */
CK_RV p11id_object_destroy(P11ID_OBJECT *obj);

/* C_SetPIN as the logged-in user. */
CK_RV p11id_token_change_pin(P11ID_TOKEN *tok, const char *oldpin,
                             size_t oldlen, const char *newpin,
                             size_t newlen);
/* Logs in as SO, sets a new user PIN (clearing a lock), logs out. */
CK_RV p11id_token_unblock_pin(P11ID_TOKEN *tok, const char *sopin,
                              size_t solen, const char *newpin,
                              size_t newlen);
/* Re-reads the token's info (PIN flags change). */
CK_RV p11id_token_refresh(P11ID_TOKEN *tok);
/* The mechanisms of the token: a new array (free()). */
CK_RV p11id_token_mechanisms(P11ID_TOKEN *tok, CK_MECHANISM_TYPE **mechs,
                             CK_ULONG *n);
/* Random bytes from the token. */
CK_RV p11id_token_random(P11ID_TOKEN *tok, unsigned char *buf, size_t len);

#endif
