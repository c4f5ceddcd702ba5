/* storekey.h: the test programs' one key loader, through OSSL_STORE as
 * applications load keys (a pkcs11: URI or a key reference file). */
#ifndef P11ID_TESTS_STOREKEY_H
#define P11ID_TESTS_STOREKEY_H

#include <openssl/evp.h>
#include <openssl/store.h>
#include <openssl/ui.h>

/* The first key of kind want (OSSL_STORE_INFO_PKEY or _PUBKEY) that uri
 * gives, in library context lib (NULL: the default), asking for a PIN
 * through ui (NULL: none). NULL when there is none; OpenSSL's errors stay
 * queued. */
EVP_PKEY *test_store_key(const char *uri, OSSL_LIB_CTX *lib,
                         const UI_METHOD *ui, int want);

#endif
