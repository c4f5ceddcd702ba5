/* rv.c: CK_RV and mechanism values by name, and return values in words. */
#include "core/rv.h"

#include <stddef.h>
#include <stdio.h>

/* One CK_RV: its name and a sentence a person can act on (NULL: none). */
struct rv_entry {
    CK_RV rv;
    const char *name;
    const char *text;
};

/* Sorted by value: looked up by binary search. */
#define RV(code, text) { code, #code, text }
static const struct rv_entry rv_table[] = {
    RV(CKR_OK, "success"),
    RV(CKR_CANCEL, "the operation was cancelled by the application"),
    RV(CKR_HOST_MEMORY, "the PKCS#11 module ran out of memory"),
    RV(CKR_SLOT_ID_INVALID, "the slot does not exist"),
    RV(CKR_GENERAL_ERROR,
       "the PKCS#11 module failed unrecoverably: restart the application"),
    RV(CKR_FUNCTION_FAILED, "the token could not carry out the operation"),
    RV(CKR_ARGUMENTS_BAD, "the PKCS#11 module rejected the call's arguments"),
    RV(CKR_NO_EVENT, "no slot event is pending"),
    RV(CKR_NEED_TO_CREATE_THREADS,
       "the PKCS#11 module needs to create threads but may not"),
    RV(CKR_CANT_LOCK, "the PKCS#11 module cannot lock as asked"),
    RV(CKR_ATTRIBUTE_READ_ONLY, "the attribute cannot be changed"),
    RV(CKR_ATTRIBUTE_SENSITIVE,
       "the attribute is sensitive and cannot be read"),
    RV(CKR_ATTRIBUTE_TYPE_INVALID,
       "the token does not know this attribute"),
    RV(CKR_ATTRIBUTE_VALUE_INVALID,
       "the token does not accept this attribute value"),
    RV(CKR_ACTION_PROHIBITED, "the token's policy forbids this action"),
    RV(CKR_DATA_INVALID, "the token rejected the input data"),
    RV(CKR_DATA_LEN_RANGE,
       "the input is too long or too short for this key and mechanism"),
    RV(CKR_DEVICE_ERROR,
       "the token reported a device error: check the reader and the token"),
    RV(CKR_DEVICE_MEMORY, "the token is out of memory (storage full?)"),
    RV(CKR_DEVICE_REMOVED, "the token was removed: insert it again"),
    RV(CKR_ENCRYPTED_DATA_INVALID, "the ciphertext is not valid"),
    RV(CKR_ENCRYPTED_DATA_LEN_RANGE,
       "the ciphertext has the wrong length for this key"),
    RV(CKR_FUNCTION_CANCELED, "the operation was cancelled"),
    RV(CKR_FUNCTION_NOT_PARALLEL, "no function is running in parallel"),
    RV(CKR_FUNCTION_NOT_SUPPORTED,
       "the PKCS#11 module does not implement this function"),
    RV(CKR_KEY_HANDLE_INVALID, "the key handle is not valid (any more)"),
    RV(CKR_KEY_SIZE_RANGE, "the token does not support this key size"),
    RV(CKR_KEY_TYPE_INCONSISTENT,
       "the key type does not fit the mechanism"),
    RV(CKR_KEY_NOT_NEEDED, "this operation takes no key"),
    RV(CKR_KEY_CHANGED, "the key changed since the state was saved"),
    RV(CKR_KEY_NEEDED, "this operation needs a key"),
    RV(CKR_KEY_INDIGESTIBLE, "the token cannot digest this key"),
    RV(CKR_KEY_FUNCTION_NOT_PERMITTED,
       "the key does not allow this operation "
       "(CKA_SIGN/CKA_DECRYPT/CKA_DERIVE false)"),
    RV(CKR_KEY_NOT_WRAPPABLE, "the key cannot be wrapped"),
    RV(CKR_KEY_UNEXTRACTABLE,
       "the key is not extractable: it stays on the token"),
    RV(CKR_MECHANISM_INVALID, "the token does not support this mechanism"),
    RV(CKR_MECHANISM_PARAM_INVALID,
       "the token does not accept these mechanism parameters"),
    RV(CKR_OBJECT_HANDLE_INVALID,
       "the object handle is not valid (object deleted?)"),
    RV(CKR_OPERATION_ACTIVE,
       "another operation is still active in this session"),
    RV(CKR_OPERATION_NOT_INITIALIZED, "the operation was not started"),
    RV(CKR_PIN_INCORRECT, "the PIN is incorrect"),
    RV(CKR_PIN_INVALID, "the PIN contains characters the token refuses"),
    RV(CKR_PIN_LEN_RANGE, "the PIN is too long or too short for the token"),
    RV(CKR_PIN_EXPIRED, "the PIN has expired: set a new one"),
    RV(CKR_PIN_LOCKED, "the PIN is locked: unblock it with the SO PIN"),
    RV(CKR_SESSION_CLOSED, "the session was closed"),
    RV(CKR_SESSION_COUNT, "the token has no more sessions free"),
    RV(CKR_SESSION_HANDLE_INVALID,
       "the session is not valid (any more): token reset or removed?"),
    RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED,
       "the token does not support parallel sessions"),
    RV(CKR_SESSION_READ_ONLY, "the session is read-only"),
    RV(CKR_SESSION_EXISTS, "a session is still open on the token"),
    RV(CKR_SESSION_READ_ONLY_EXISTS,
       "a read-only session is open: the SO cannot log in"),
    RV(CKR_SESSION_READ_WRITE_SO_EXISTS,
       "a read-write SO session is open on the token"),
    RV(CKR_SIGNATURE_INVALID, "the signature is not valid"),
    RV(CKR_SIGNATURE_LEN_RANGE, "the signature has the wrong length"),
    RV(CKR_TEMPLATE_INCOMPLETE,
       "an attribute the object needs is missing from the template"),
    RV(CKR_TEMPLATE_INCONSISTENT, "the template's attributes conflict"),
    RV(CKR_TOKEN_NOT_PRESENT, "the token is not present"),
    RV(CKR_TOKEN_NOT_RECOGNIZED, "the reader does not recognise the token"),
    RV(CKR_TOKEN_WRITE_PROTECTED, "the token is write-protected"),
    RV(CKR_UNWRAPPING_KEY_HANDLE_INVALID,
       "the unwrapping key handle is not valid"),
    RV(CKR_UNWRAPPING_KEY_SIZE_RANGE,
       "the unwrapping key has a size the token does not support"),
    RV(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
       "the unwrapping key type does not fit the mechanism"),
    RV(CKR_USER_ALREADY_LOGGED_IN, "the user is already logged in"),
    RV(CKR_USER_NOT_LOGGED_IN, "log in to the token first"),
    RV(CKR_USER_PIN_NOT_INITIALIZED,
       "the user PIN is not set: initialise it with the SO PIN"),
    RV(CKR_USER_TYPE_INVALID, "the token does not know this user type"),
    RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
       "another user is logged in: log out first"),
    RV(CKR_USER_TOO_MANY_TYPES,
       "the token allows no more users to log in at once"),
    RV(CKR_WRAPPED_KEY_INVALID, "the wrapped key is not valid"),
    RV(CKR_WRAPPED_KEY_LEN_RANGE, "the wrapped key has the wrong length"),
    RV(CKR_WRAPPING_KEY_HANDLE_INVALID,
       "the wrapping key handle is not valid"),
    RV(CKR_WRAPPING_KEY_SIZE_RANGE,
       "the wrapping key has a size the token does not support"),
    RV(CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
       "the wrapping key type does not fit the mechanism"),
    RV(CKR_RANDOM_SEED_NOT_SUPPORTED,
       "the token's generator cannot be seeded"),
    RV(CKR_RANDOM_NO_RNG, "the token has no random number generator"),
    RV(CKR_DOMAIN_PARAMS_INVALID,
       "the token does not accept these domain parameters"),
    RV(CKR_CURVE_NOT_SUPPORTED, "the token does not support this curve"),
    RV(CKR_BUFFER_TOO_SMALL, "the output buffer is too small"),
    RV(CKR_SAVED_STATE_INVALID, "the saved state is not valid"),
    RV(CKR_INFORMATION_SENSITIVE, "the information is sensitive"),
    RV(CKR_STATE_UNSAVEABLE, "the operation state cannot be saved"),
    RV(CKR_CRYPTOKI_NOT_INITIALIZED,
       "the PKCS#11 module is not initialised (after fork?)"),
    RV(CKR_CRYPTOKI_ALREADY_INITIALIZED,
       "the PKCS#11 module was already initialised"),
    RV(CKR_MUTEX_BAD, "the PKCS#11 module was given a bad mutex"),
    RV(CKR_MUTEX_NOT_LOCKED, "the mutex was not locked"),
    RV(CKR_NEW_PIN_MODE, "the token wants a new PIN to be set"),
    RV(CKR_NEXT_OTP, "the token wants the next one-time password"),
    RV(CKR_EXCEEDED_MAX_ITERATIONS,
       "the token gave up after too many iterations"),
    RV(CKR_FIPS_SELF_TEST_FAILED,
       "the token failed its FIPS self-test: it is unusable"),
    RV(CKR_LIBRARY_LOAD_FAILED,
       "the PKCS#11 module could not load a library it needs"),
    RV(CKR_PIN_TOO_WEAK, "the new PIN is too weak"),
    RV(CKR_PUBLIC_KEY_INVALID, "the public key is not valid"),
    RV(CKR_FUNCTION_REJECTED, "the user rejected the operation"),
};
#undef RV

/* One mechanism and its name. */
struct mech_entry {
    CK_MECHANISM_TYPE mech;
    const char *name;
};

/* Not in p11-kit 0.24's pkcs11.h (PKCS#11 3.0 values). */
#ifndef CKM_EC_MONTGOMERY_KEY_PAIR_GEN
#define CKM_EC_MONTGOMERY_KEY_PAIR_GEN 0x1056UL
#endif

/* Sorted by value: looked up by binary search. CKM_EC_KEY_PAIR_GEN has the
 * value of CKM_ECDSA_KEY_PAIR_GEN; the newer name is the one listed. */
#define MECH(code) { code, #code }
static const struct mech_entry mech_table[] = {
    MECH(CKM_RSA_PKCS_KEY_PAIR_GEN),
    MECH(CKM_RSA_PKCS),
    MECH(CKM_RSA_X_509),
    MECH(CKM_MD5_RSA_PKCS),
    MECH(CKM_SHA1_RSA_PKCS),
    MECH(CKM_RSA_PKCS_OAEP),
    MECH(CKM_RSA_PKCS_PSS),
    MECH(CKM_SHA1_RSA_PKCS_PSS),
    MECH(CKM_SHA256_RSA_PKCS),
    MECH(CKM_SHA384_RSA_PKCS),
    MECH(CKM_SHA512_RSA_PKCS),
    MECH(CKM_SHA256_RSA_PKCS_PSS),
    MECH(CKM_SHA384_RSA_PKCS_PSS),
    MECH(CKM_SHA512_RSA_PKCS_PSS),
    MECH(CKM_SHA224_RSA_PKCS),
    MECH(CKM_SHA224_RSA_PKCS_PSS),
    MECH(CKM_MD5),
    MECH(CKM_SHA_1),
    MECH(CKM_SHA256),
    MECH(CKM_SHA224),
    MECH(CKM_SHA384),
    MECH(CKM_SHA512),
    MECH(CKM_GENERIC_SECRET_KEY_GEN),
    MECH(CKM_EC_KEY_PAIR_GEN),
    MECH(CKM_ECDSA),
    MECH(CKM_ECDSA_SHA1),
    MECH(CKM_ECDSA_SHA224),
    MECH(CKM_ECDSA_SHA256),
    MECH(CKM_ECDSA_SHA384),
    MECH(CKM_ECDSA_SHA512),
    MECH(CKM_ECDH1_DERIVE),
    MECH(CKM_ECDH1_COFACTOR_DERIVE),
    MECH(CKM_EC_EDWARDS_KEY_PAIR_GEN),
    MECH(CKM_EC_MONTGOMERY_KEY_PAIR_GEN),
    MECH(CKM_EDDSA),
    MECH(CKM_AES_KEY_GEN),
};
#undef MECH

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Names of unknown values are formatted into a small per-thread ring, so a
 * few of them can appear in one printf without overwriting each other. */
#define UNKNOWN_RING 4
#define UNKNOWN_LEN 48

static char *unknown_buf(void)
{
    static __thread char ring[UNKNOWN_RING][UNKNOWN_LEN];
    static __thread unsigned int next;

    return ring[next++ % UNKNOWN_RING];
}

static const struct rv_entry *rv_find(CK_RV rv)
{
    size_t lo = 0;
    size_t hi = N_ELEMS(rv_table);

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (rv_table[mid].rv == rv)
            return &rv_table[mid];
        if (rv_table[mid].rv < rv)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *p11id_rv_name(CK_RV rv)
{
    const struct rv_entry *e = rv_find(rv);
    char *buf;

    if (e != NULL)
        return e->name;
    buf = unknown_buf();
    if (rv >= CKR_VENDOR_DEFINED)
        snprintf(buf, UNKNOWN_LEN, "CKR_VENDOR_DEFINED+0x%lX",
                 (unsigned long)(rv - CKR_VENDOR_DEFINED));
    else
        snprintf(buf, UNKNOWN_LEN, "CKR_0x%lX", (unsigned long)rv);
    return buf;
}

const char *p11id_rv_text(CK_RV rv)
{
    const struct rv_entry *e = rv_find(rv);

    if (e != NULL)
        return e->text;
    if (rv >= CKR_VENDOR_DEFINED)
        return "the PKCS#11 module returned a vendor-defined error: "
               "see the token's documentation";
    return "the PKCS#11 module returned an unknown error";
}

int p11id_rv_is_session_lost(CK_RV rv)
{
    /* After a token reset the token may forget the login but keep the
     * session (CKR_USER_NOT_LOGGED_IN); after a fork or a C_Finalize by
     * someone else the module is not initialised any more. Device errors
     * and unrecognised tokens are not cured by a new session. */
    switch (rv) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
        return 1;
    default:
        return 0;
    }
}

const char *p11id_mech_name(CK_MECHANISM_TYPE mech)
{
    size_t lo = 0;
    size_t hi = N_ELEMS(mech_table);
    char *buf;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (mech_table[mid].mech == mech)
            return mech_table[mid].name;
        if (mech_table[mid].mech < mech)
            lo = mid + 1;
        else
            hi = mid;
    }
    buf = unknown_buf();
    if (mech >= CKM_VENDOR_DEFINED)
        snprintf(buf, UNKNOWN_LEN, "CKM_VENDOR_DEFINED+0x%lX",
                 (unsigned long)(mech - CKM_VENDOR_DEFINED));
    else
        snprintf(buf, UNKNOWN_LEN, "CKM_0x%lX", (unsigned long)mech);
    return buf;
}
