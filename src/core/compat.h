/* compat.h: differences between OpenSSL 3.x releases and PKCS#11 header
 * versions, kept out of function bodies. */
#ifndef P11ID_CORE_COMPAT_H
#define P11ID_CORE_COMPAT_H

#include <openssl/opensslv.h>
#include <p11-kit/pkcs11.h>

/* OSSL_DISPATCH_END arrived in OpenSSL 3.1. */
#ifndef OSSL_DISPATCH_END
#define OSSL_DISPATCH_END { 0, NULL }
#endif

/* PKCS#11 3.0 CK_EDDSA_PARAMS: not in p11-kit 0.24's 2.40 header. */
typedef struct p11id_eddsa_params_st {
    CK_BBOOL phFlag;          /* prehashed (Ed25519ph/Ed448ph) */
    CK_ULONG ulContextDataLen;
    CK_BYTE_PTR pContextData;
} P11ID_EDDSA_PARAMS;

#endif
