/* pinflags_shim.c: test-only PKCS#11 module that wraps another one and makes
 * its tokens report a locked user PIN or a PIN on its final try.
 *
 * SoftHSM 2.6 never locks a PIN (it only sets CKF_USER_PIN_COUNT_LOW after a
 * failed C_Login), so the provider's "PIN is locked" and "final try" paths
 * need this. Compiled by the test that uses it:
 *   cc -shared -fPIC $(pkg-config --cflags p11-kit-1) pinflags_shim.c -ldl
 * Environment:
 *   P11ID_SHIM_MODULE     the real module (required)
 *   P11ID_SHIM_PIN_FLAGS  "locked" or "final_try" (anything else: no change)
 *   P11ID_SHIM_LOG        file that gets one line "C_Login" per C_Login call
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST shim_list;       /* the real list with two slots replaced */
static CK_FUNCTION_LIST_PTR real_list;   /* borrowed from the real module */

static int mode_is(const char *want)
{
    const char *mode = getenv("P11ID_SHIM_PIN_FLAGS");

    return mode != NULL && strcmp(mode, want) == 0;
}

static void log_call(const char *name)
{
    const char *path = getenv("P11ID_SHIM_LOG");
    FILE *f;

    if (path == NULL)
        return;
    f = fopen(path, "a");
    if (f == NULL)
        return;
    fprintf(f, "%s\n", name);
    fclose(f);
}

static CK_RV shim_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
    CK_RV rv = real_list->C_GetTokenInfo(slot, info);

    if (rv != CKR_OK)
        return rv;
    if (mode_is("locked"))
        info->flags |= CKF_USER_PIN_LOCKED;
    else if (mode_is("final_try"))
        info->flags |= CKF_USER_PIN_FINAL_TRY | CKF_USER_PIN_COUNT_LOW;
    return rv;
}

static CK_RV shim_Login(CK_SESSION_HANDLE session, CK_USER_TYPE who,
                        CK_UTF8CHAR_PTR pin, CK_ULONG pinlen)
{
    log_call("C_Login");
    /* What a real token answers once the PIN is locked. */
    if (who == CKU_USER && mode_is("locked"))
        return CKR_PIN_LOCKED;
    return real_list->C_Login(session, who, pin, pinlen);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out);

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    const char *path;
    void *lib;
    CK_C_GetFunctionList get;
    CK_RV rv;

    if (out == NULL)
        return CKR_ARGUMENTS_BAD;
    if (real_list == NULL) {
        path = getenv("P11ID_SHIM_MODULE");
        if (path == NULL)
            return CKR_GENERAL_ERROR;
        lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (lib == NULL)
            return CKR_GENERAL_ERROR;
        get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
        if (get == NULL)
            return CKR_GENERAL_ERROR;
        rv = get(&real_list);
        if (rv != CKR_OK)
            return rv;
        shim_list = *real_list;
        shim_list.C_GetTokenInfo = shim_GetTokenInfo;
        shim_list.C_Login = shim_Login;
    }
    *out = &shim_list;
    return CKR_OK;
}
