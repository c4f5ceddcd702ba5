/* t_rv.c: CK_RV and mechanism names, texts and the session-lost class. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/rv.h"
#include "../lib/tap.h"

/* Every CKR_* of p11-kit's pkcs11.h, listed independently of rv.c, so a
 * value missing there or a table out of order shows up here. */
#define RV(code) { code, #code }
static const struct {
    CK_RV rv;
    const char *name;
} all_rvs[] = {
    RV(CKR_OK), RV(CKR_CANCEL), RV(CKR_HOST_MEMORY), RV(CKR_SLOT_ID_INVALID),
    RV(CKR_GENERAL_ERROR), RV(CKR_FUNCTION_FAILED), RV(CKR_ARGUMENTS_BAD),
    RV(CKR_NO_EVENT), RV(CKR_NEED_TO_CREATE_THREADS), RV(CKR_CANT_LOCK),
    RV(CKR_ATTRIBUTE_READ_ONLY), RV(CKR_ATTRIBUTE_SENSITIVE),
    RV(CKR_ATTRIBUTE_TYPE_INVALID), RV(CKR_ATTRIBUTE_VALUE_INVALID),
    RV(CKR_ACTION_PROHIBITED), RV(CKR_DATA_INVALID), RV(CKR_DATA_LEN_RANGE),
    RV(CKR_DEVICE_ERROR), RV(CKR_DEVICE_MEMORY), RV(CKR_DEVICE_REMOVED),
    RV(CKR_ENCRYPTED_DATA_INVALID), RV(CKR_ENCRYPTED_DATA_LEN_RANGE),
    RV(CKR_FUNCTION_CANCELED), RV(CKR_FUNCTION_NOT_PARALLEL),
    RV(CKR_FUNCTION_NOT_SUPPORTED), RV(CKR_KEY_HANDLE_INVALID),
    RV(CKR_KEY_SIZE_RANGE), RV(CKR_KEY_TYPE_INCONSISTENT),
    RV(CKR_KEY_NOT_NEEDED), RV(CKR_KEY_CHANGED), RV(CKR_KEY_NEEDED),
    RV(CKR_KEY_INDIGESTIBLE), RV(CKR_KEY_FUNCTION_NOT_PERMITTED),
    RV(CKR_KEY_NOT_WRAPPABLE), RV(CKR_KEY_UNEXTRACTABLE),
    RV(CKR_MECHANISM_INVALID), RV(CKR_MECHANISM_PARAM_INVALID),
    RV(CKR_OBJECT_HANDLE_INVALID), RV(CKR_OPERATION_ACTIVE),
    RV(CKR_OPERATION_NOT_INITIALIZED), RV(CKR_PIN_INCORRECT),
    RV(CKR_PIN_INVALID), RV(CKR_PIN_LEN_RANGE), RV(CKR_PIN_EXPIRED),
    RV(CKR_PIN_LOCKED), RV(CKR_SESSION_CLOSED), RV(CKR_SESSION_COUNT),
    RV(CKR_SESSION_HANDLE_INVALID), RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    RV(CKR_SESSION_READ_ONLY), RV(CKR_SESSION_EXISTS),
    RV(CKR_SESSION_READ_ONLY_EXISTS), RV(CKR_SESSION_READ_WRITE_SO_EXISTS),
    RV(CKR_SIGNATURE_INVALID), RV(CKR_SIGNATURE_LEN_RANGE),
    RV(CKR_TEMPLATE_INCOMPLETE), RV(CKR_TEMPLATE_INCONSISTENT),
    RV(CKR_TOKEN_NOT_PRESENT), RV(CKR_TOKEN_NOT_RECOGNIZED),
    RV(CKR_TOKEN_WRITE_PROTECTED), RV(CKR_UNWRAPPING_KEY_HANDLE_INVALID),
    RV(CKR_UNWRAPPING_KEY_SIZE_RANGE),
    RV(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT), RV(CKR_USER_ALREADY_LOGGED_IN),
    RV(CKR_USER_NOT_LOGGED_IN), RV(CKR_USER_PIN_NOT_INITIALIZED),
    RV(CKR_USER_TYPE_INVALID), RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    RV(CKR_USER_TOO_MANY_TYPES), RV(CKR_WRAPPED_KEY_INVALID),
    RV(CKR_WRAPPED_KEY_LEN_RANGE), RV(CKR_WRAPPING_KEY_HANDLE_INVALID),
    RV(CKR_WRAPPING_KEY_SIZE_RANGE), RV(CKR_WRAPPING_KEY_TYPE_INCONSISTENT),
    RV(CKR_RANDOM_SEED_NOT_SUPPORTED), RV(CKR_RANDOM_NO_RNG),
    RV(CKR_DOMAIN_PARAMS_INVALID), RV(CKR_CURVE_NOT_SUPPORTED),
    RV(CKR_BUFFER_TOO_SMALL), RV(CKR_SAVED_STATE_INVALID),
    RV(CKR_INFORMATION_SENSITIVE), RV(CKR_STATE_UNSAVEABLE),
    RV(CKR_CRYPTOKI_NOT_INITIALIZED), RV(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    RV(CKR_MUTEX_BAD), RV(CKR_MUTEX_NOT_LOCKED), RV(CKR_NEW_PIN_MODE),
    RV(CKR_NEXT_OTP), RV(CKR_EXCEEDED_MAX_ITERATIONS),
    RV(CKR_FIPS_SELF_TEST_FAILED), RV(CKR_LIBRARY_LOAD_FAILED),
    RV(CKR_PIN_TOO_WEAK), RV(CKR_PUBLIC_KEY_INVALID),
    RV(CKR_FUNCTION_REJECTED),
};
#undef RV

static void test_all_names(void)
{
    size_t i;
    size_t bad_name = 0, bad_text = 0;

    for (i = 0; i < sizeof(all_rvs) / sizeof(all_rvs[0]); i++) {
        const char *name = p11id_rv_name(all_rvs[i].rv);
        const char *text = p11id_rv_text(all_rvs[i].rv);

        if (strcmp(name, all_rvs[i].name) != 0) {
            printf("# 0x%lx: got %s, want %s\n", (unsigned long)all_rvs[i].rv,
                   name, all_rvs[i].name);
            bad_name++;
        }
        if (text == NULL || text[0] == '\0'
            || strstr(text, "unknown error") != NULL) {
            printf("# %s has no text\n", all_rvs[i].name);
            bad_text++;
        }
    }
    ok(bad_name == 0, "all %zu CKR_* values of pkcs11.h have their name", i);
    ok(bad_text == 0, "all %zu CKR_* values have a text", i);
}

static void test_texts(void)
{
    is_str(p11id_rv_text(CKR_PIN_INCORRECT), "the PIN is incorrect",
           "text of CKR_PIN_INCORRECT");
    is_str(p11id_rv_text(CKR_PIN_LOCKED),
           "the PIN is locked: unblock it with the SO PIN",
           "text of CKR_PIN_LOCKED");
    is_str(p11id_rv_text(CKR_TOKEN_NOT_PRESENT), "the token is not present",
           "text of CKR_TOKEN_NOT_PRESENT");
    is_str(p11id_rv_text(CKR_KEY_FUNCTION_NOT_PERMITTED),
           "the key does not allow this operation "
           "(CKA_SIGN/CKA_DECRYPT/CKA_DERIVE false)",
           "text of CKR_KEY_FUNCTION_NOT_PERMITTED");
    is_str(p11id_rv_text(CKR_MECHANISM_INVALID),
           "the token does not support this mechanism",
           "text of CKR_MECHANISM_INVALID");
    ok(strstr(p11id_rv_text(CKR_VENDOR_DEFINED + 7), "vendor") != NULL,
       "a vendor value's text says vendor-defined");
    ok(strstr(p11id_rv_text(0x4), "unknown") != NULL,
       "an unknown value's text says unknown");
}

static void test_unknown_names(void)
{
    const char *a, *b, *c;

    is_str(p11id_rv_name(CKR_VENDOR_DEFINED + 0x42),
           "CKR_VENDOR_DEFINED+0x42", "name of vendor value 0x80000042");
    is_str(p11id_rv_name(CKR_VENDOR_DEFINED), "CKR_VENDOR_DEFINED+0x0",
           "name of CKR_VENDOR_DEFINED itself");
    is_str(p11id_rv_name(0x4), "CKR_0x4", "name of unassigned value 4");
    is_str(p11id_rv_name(0x7fffffffUL), "CKR_0x7FFFFFFF",
           "name of unassigned value 0x7fffffff");
    /* Several unknown names in one printf must not overwrite each other. */
    a = p11id_rv_name(0x11111UL);
    b = p11id_rv_name(0x22222UL);
    c = p11id_mech_name(0x33333UL);
    ok(strcmp(a, "CKR_0x11111") == 0 && strcmp(b, "CKR_0x22222") == 0
           && strcmp(c, "CKM_0x33333") == 0,
       "three unknown names in a row stay distinct (%s %s %s)", a, b, c);
}

static void *thread_names(void *arg)
{
    unsigned long base = *(const unsigned long *)arg;
    char want[32];
    int i;

    for (i = 0; i < 20000; i++) {
        unsigned long rv = base + (unsigned long)(i % 7);
        const char *got = p11id_rv_name(rv);

        snprintf(want, sizeof(want), "CKR_0x%lX", rv);
        if (strcmp(got, want) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_threads(void)
{
    unsigned long bases[2] = { 0x10000UL, 0x20000UL };
    pthread_t t[2];
    void *res[2] = { (void *)1, (void *)1 };
    int i;

    for (i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, thread_names, &bases[i]);
    for (i = 0; i < 2; i++)
        pthread_join(t[i], &res[i]);
    ok(res[0] == NULL && res[1] == NULL,
       "unknown names are per thread (two threads, no mix-up)");
}

static void test_session_lost(void)
{
    static const CK_RV lost[] = {
        CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED, CKR_DEVICE_REMOVED,
        CKR_TOKEN_NOT_PRESENT,      CKR_USER_NOT_LOGGED_IN,
        CKR_CRYPTOKI_NOT_INITIALIZED,
    };
    static const CK_RV kept[] = {
        CKR_OK,           CKR_DEVICE_ERROR,     CKR_TOKEN_NOT_RECOGNIZED,
        CKR_PIN_INCORRECT, CKR_GENERAL_ERROR,   CKR_FUNCTION_FAILED,
        CKR_PIN_LOCKED,   CKR_VENDOR_DEFINED + 1,
    };
    size_t i;

    for (i = 0; i < sizeof(lost) / sizeof(lost[0]); i++)
        ok(p11id_rv_is_session_lost(lost[i]) == 1, "%s: session lost",
           p11id_rv_name(lost[i]));
    for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        ok(p11id_rv_is_session_lost(kept[i]) == 0, "%s: not session lost",
           p11id_rv_name(kept[i]));
}

#define MECH(code) { code, #code }
static const struct {
    CK_MECHANISM_TYPE mech;
    const char *name;
} mechs[] = {
    MECH(CKM_RSA_PKCS_KEY_PAIR_GEN), MECH(CKM_RSA_PKCS),
    MECH(CKM_RSA_X_509),             MECH(CKM_RSA_PKCS_OAEP),
    MECH(CKM_RSA_PKCS_PSS),          MECH(CKM_SHA1_RSA_PKCS),
    MECH(CKM_SHA224_RSA_PKCS),       MECH(CKM_SHA256_RSA_PKCS),
    MECH(CKM_SHA384_RSA_PKCS),       MECH(CKM_SHA512_RSA_PKCS),
    MECH(CKM_SHA1_RSA_PKCS_PSS),     MECH(CKM_SHA224_RSA_PKCS_PSS),
    MECH(CKM_SHA256_RSA_PKCS_PSS),   MECH(CKM_SHA384_RSA_PKCS_PSS),
    MECH(CKM_SHA512_RSA_PKCS_PSS),   MECH(CKM_EC_KEY_PAIR_GEN),
    MECH(CKM_ECDSA),                 MECH(CKM_ECDSA_SHA1),
    MECH(CKM_ECDSA_SHA224),          MECH(CKM_ECDSA_SHA256),
    MECH(CKM_ECDSA_SHA384),          MECH(CKM_ECDSA_SHA512),
    MECH(CKM_ECDH1_DERIVE),          MECH(CKM_EC_EDWARDS_KEY_PAIR_GEN),
    MECH(CKM_EDDSA),                 MECH(CKM_SHA_1),
    MECH(CKM_SHA224),                MECH(CKM_SHA256),
    MECH(CKM_SHA384),                MECH(CKM_SHA512),
};
#undef MECH

static void test_mechs(void)
{
    size_t i, bad = 0;

    for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        const char *got = p11id_mech_name(mechs[i].mech);

        if (strcmp(got, mechs[i].name) != 0) {
            printf("# 0x%lx: got %s, want %s\n", (unsigned long)mechs[i].mech,
                   got, mechs[i].name);
            bad++;
        }
    }
    ok(bad == 0, "all %zu mechanisms we use have their name", i);
    is_str(p11id_mech_name(0x9999UL), "CKM_0x9999", "unknown mechanism");
    is_str(p11id_mech_name(CKM_VENDOR_DEFINED + 0x10),
           "CKM_VENDOR_DEFINED+0x10", "vendor mechanism");
}

int main(void)
{
    test_all_names();
    test_texts();
    test_unknown_names();
    test_threads();
    test_session_lost();
    test_mechs();
    printf("1..%d\n", n_tests);
    return n_failed == 0 ? 0 : 1;
}
