/* rv.h: CK_RV values by name and in words. */
#ifndef P11ID_CORE_RV_H
#define P11ID_CORE_RV_H

#include <p11-kit/pkcs11.h>

/* "CKR_PIN_INCORRECT"; for an unknown (vendor) value "CKR_VENDOR_DEFINED+0x.."
 * or "CKR_0x...". Never NULL; the string is static (thread-safe: no buffer
 * shared between calls for unknown values, those use a small set of static
 * strings or a thread-local buffer). */
const char *p11id_rv_name(CK_RV rv);

/* One short sentence a person can act on: "the PIN is incorrect". Never NULL. */
const char *p11id_rv_text(CK_RV rv);

/* True for return values after which the session or the login state is lost
 * and one recovery and one retry make sense. */
int p11id_rv_is_session_lost(CK_RV rv);

/* Name of a mechanism ("CKM_ECDSA") for trace lines and errors. Never NULL. */
const char *p11id_mech_name(CK_MECHANISM_TYPE mech);

#endif
