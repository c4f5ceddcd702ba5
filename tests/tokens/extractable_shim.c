/* extractable_shim.c: test-only PKCS#11 module that wraps another one and
 * reports every key as CKA_EXTRACTABLE = TRUE, as a token that ignores the
 * key template would. It lets the tests see p11id keygen's warning for such
 * a token. C_Initialize (and its pReserved init string) passes through.
 * Compiled by the test that uses it:
 *   cc -shared -fPIC $(pkg-config --cflags p11-kit-1) extractable_shim.c -ldl
 * Environment:
 *   P11ID_SHIM_MODULE  the real module (required)
 */
#include <dlfcn.h>
#include <stdlib.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST shim_list;     /* the real list, one slot replaced */
static CK_FUNCTION_LIST_PTR real_list; /* borrowed from the real module */

static CK_RV shim_GetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                                    CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
    CK_RV rv = real_list->C_GetAttributeValue(s, o, tmpl, n);
    CK_ULONG i;

    if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID
        && rv != CKR_ATTRIBUTE_SENSITIVE)
        return rv;
    for (i = 0; i < n; i++)
        if (tmpl[i].type == CKA_EXTRACTABLE && tmpl[i].pValue != NULL
            && tmpl[i].ulValueLen == sizeof(CK_BBOOL))
            *(CK_BBOOL *)tmpl[i].pValue = CK_TRUE;
    return rv;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
    __attribute__((visibility("default")));

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    const char *path = getenv("P11ID_SHIM_MODULE");
    CK_C_GetFunctionList get;
    void *h;

    if (out == NULL)
        return CKR_ARGUMENTS_BAD;
    if (real_list == NULL) {
        if (path == NULL || (h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL)
            return CKR_GENERAL_ERROR;
        get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
        if (get == NULL || get(&real_list) != CKR_OK)
            return CKR_GENERAL_ERROR;
        shim_list = *real_list;
        shim_list.C_GetAttributeValue = shim_GetAttributeValue;
    }
    *out = &shim_list;
    return CKR_OK;
}
