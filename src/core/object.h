/* object.h: objects on tokens (keys, certificates): finding them, their
 * attributes, cached handles, and the operations run on private keys. */
#ifndef P11ID_CORE_OBJECT_H
#define P11ID_CORE_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <p11-kit/pkcs11.h>

#include "core/module.h"
#include "core/token.h"
#include "core/uri.h"

typedef struct p11id_object_st P11ID_OBJECT;

#define P11ID_CLASS_ANY ((CK_OBJECT_CLASS)-1)

typedef struct p11id_find_req_st {
    const P11ID_URI *uri;   /* what to match */
    CK_OBJECT_CLASS cls;    /* P11ID_CLASS_ANY or one class */
    bool login;             /* log in where private objects are wanted */
    bool token_only;        /* ignore the URI's object attributes */
    P11ID_PIN_CB pin_cb;    /* the application's prompt, or NULL */
    void *pin_arg;
} P11ID_FIND_REQ;

/* Finds the objects the request matches, over every matching token. Errors
 * that make the answer incomplete (module load, wrong PIN) are raised and
 * returned; finding nothing is CKR_OK with *n == 0. *objs is a new array of
 * new references (free with p11id_objects_free). */
CK_RV p11id_find_objects(P11ID_CTX *ctx, const P11ID_FIND_REQ *req,
                         P11ID_OBJECT ***objs, size_t *n);
void p11id_objects_free(P11ID_OBJECT **objs, size_t n);

/* Finds, on the object's token, an object of class cls with the same CKA_ID
 * (a private key's certificate or public key). Returns a new reference or
 * NULL (no error raised) when there is none. */
P11ID_OBJECT *p11id_object_find_related(P11ID_OBJECT *obj,
                                        CK_OBJECT_CLASS cls);

/* Reads an object found by handle on a session (new reference, or NULL
 * with an error raised). */
P11ID_OBJECT *p11id_object_from_handle(P11ID_SESSION *s, CK_OBJECT_HANDLE h);
/* The handle, found again if the token was reset (for changes). */
CK_RV p11id_object_handle(P11ID_OBJECT *obj, P11ID_SESSION *s,
                          CK_OBJECT_HANDLE *h);

P11ID_OBJECT *p11id_object_ref(P11ID_OBJECT *obj);
void p11id_object_free(P11ID_OBJECT *obj);

CK_OBJECT_CLASS p11id_object_get_class(const P11ID_OBJECT *obj);
CK_KEY_TYPE p11id_object_get_key_type(const P11ID_OBJECT *obj);
const char *p11id_object_get0_label(const P11ID_OBJECT *obj);
const unsigned char *p11id_object_get0_id(const P11ID_OBJECT *obj,
                                          size_t *len);
/* The object's copy-pasteable URI. Borrowed. */
const char *p11id_object_get0_uri(const P11ID_OBJECT *obj);
P11ID_TOKEN *p11id_object_get0_token(const P11ID_OBJECT *obj);
/* A public attribute read when the object was found: CKA_MODULUS,
 * CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS, CKA_EC_POINT, CKA_VALUE (certificates).
 * NULL when the token did not give it. Borrowed. */
const unsigned char *p11id_object_get0_attr(const P11ID_OBJECT *obj,
                                            CK_ATTRIBUTE_TYPE type,
                                            size_t *len);
/* CKA_SIGN, CKA_DECRYPT, CKA_DERIVE, CKA_PRIVATE, CKA_SENSITIVE,
 * CKA_EXTRACTABLE, CKA_ALWAYS_AUTHENTICATE as read (false when absent). */
bool p11id_object_get_flag(const P11ID_OBJECT *obj, CK_ATTRIBUTE_TYPE type);

/* Operations with a private key. They take a pooled session, log in again
 * with the kept PIN when needed, find the handle again after a fork or a
 * token reset, and recover once from a lost session or token. out has
 * *outlen bytes of room; *outlen is set to the length written. */
CK_RV p11id_object_sign(P11ID_OBJECT *key, const CK_MECHANISM *mech,
                        const unsigned char *in, size_t inlen,
                        unsigned char *out, size_t *outlen);
CK_RV p11id_object_decrypt(P11ID_OBJECT *key, const CK_MECHANISM *mech,
                           const unsigned char *in, size_t inlen,
                           unsigned char *out, size_t *outlen);
/* ECDH: derives a shared secret of *outlen bytes with the peer's point. */
CK_RV p11id_object_derive(P11ID_OBJECT *key, const CK_MECHANISM *mech,
                          unsigned char *out, size_t *outlen);

#endif
