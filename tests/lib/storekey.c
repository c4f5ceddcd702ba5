/* storekey.c: see storekey.h. */
#include "storekey.h"

EVP_PKEY *test_store_key(const char *uri, OSSL_LIB_CTX *lib,
                         const UI_METHOD *ui, int want)
{
    OSSL_STORE_CTX *st;
    OSSL_STORE_INFO *info;
    EVP_PKEY *pk = NULL;

    st = OSSL_STORE_open_ex(uri, lib, NULL, ui, NULL, NULL, NULL, NULL);
    if (st == NULL)
        return NULL;
    OSSL_STORE_expect(st, want);
    while (pk == NULL && !OSSL_STORE_eof(st)) {
        info = OSSL_STORE_load(st);
        if (info != NULL && OSSL_STORE_INFO_get_type(info) == want)
            pk = want == OSSL_STORE_INFO_PKEY ? OSSL_STORE_INFO_get1_PKEY(info)
                                              : OSSL_STORE_INFO_get1_PUBKEY(info);
        OSSL_STORE_INFO_free(info);
        if (info == NULL && OSSL_STORE_error(st))
            break;
    }
    OSSL_STORE_close(st);
    return pk;
}
