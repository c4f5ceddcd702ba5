/* quirks.h: what particular tokens do differently, in one place. Each quirk
 * is named by the token (manufacturer/model as C_GetTokenInfo reports them,
 * or the module's C_GetInfo) and the versions it was seen on, and each has a
 * test. Code elsewhere asks for a flag; it never compares token names. */
#ifndef P11ID_CORE_QUIRKS_H
#define P11ID_CORE_QUIRKS_H

#include <p11-kit/pkcs11.h>

/* One bit per quirk. */
#define P11ID_QUIRK_OAEP_SHA1_ONLY   0x0001u /* RSA-OAEP with SHA-1 MGF/hash only */
#define P11ID_QUIRK_BAD_PIN_GENERAL_ERROR 0x0002u /* C_Login: a wrong PIN is CKR_GENERAL_ERROR */
#define P11ID_QUIRK_READ_ONLY        0x0004u /* no new objects, CKF_WRITE_PROTECTED unset */

typedef struct p11id_quirk_st {
    const char *module_manufacturer; /* CK_INFO.manufacturerID prefix, or NULL */
    const char *token_manufacturer;  /* CK_TOKEN_INFO.manufacturerID prefix, or NULL */
    const char *token_model;         /* CK_TOKEN_INFO.model prefix, or NULL */
    CK_VERSION library_min;          /* CK_INFO.libraryVersion range, inclusive; */
    CK_VERSION library_max;          /* {0,0}..{255,255} for every version */
    unsigned int flags;              /* P11ID_QUIRK_* */
    const char *what;                /* one line: the token, versions, what it does */
} P11ID_QUIRK;

/* The quirk flags of a token of this module. Either argument may be NULL. */
unsigned int p11id_quirks_lookup(const CK_INFO *module,
                                 const CK_TOKEN_INFO *token);
/* The table itself, ending with an entry whose flags are 0 (for docs/tests). */
const P11ID_QUIRK *p11id_quirks_table(void);

#endif
