/* quirks.c: the table of token quirks (see quirks.h). */
#include <string.h>

#include "core/quirks.h"

static const P11ID_QUIRK quirks[] = {
    /* SoftHSM 2.6: C_Decrypt with CKM_RSA_PKCS_OAEP accepts CKM_SHA_1 and
     * CKG_MGF1_SHA1 only (CKR_ARGUMENTS_BAD otherwise). Matched on the token
     * alone: through p11-kit's remoting the module's version is p11-kit's. */
    { NULL, "SoftHSM", "SoftHSM", { 0, 0 }, { 255, 255 },
      P11ID_QUIRK_OAEP_SHA1_ONLY,
      "SoftHSM 2.x: RSA-OAEP with SHA-1 only" },
    /* OpenSC 0.23, CAC cards (tested on libcacard 2.8's virtual CAC): the
     * card answers VERIFY with a wrong PIN by 6985 (conditions not
     * satisfied), not 63Cx, and C_Login returns CKR_GENERAL_ERROR. It must
     * count as a rejected PIN, or every later operation would send it
     * again. */
    { "OpenSC", "Common Access Card", NULL, { 0, 20 }, { 0, 255 },
      P11ID_QUIRK_BAD_PIN_GENERAL_ERROR,
      "OpenSC 0.2x CAC: a wrong PIN answers C_Login with CKR_GENERAL_ERROR" },
    /* OpenSC 0.23, CAC cards: OpenSC cannot write a CAC card (no
     * C_GenerateKeyPair, no C_CreateObject), yet the token does not set
     * CKF_WRITE_PROTECTED. */
    { "OpenSC", "Common Access Card", NULL, { 0, 20 }, { 0, 255 },
      P11ID_QUIRK_READ_ONLY,
      "OpenSC 0.2x CAC: read-only, though CKF_WRITE_PROTECTED is not set" },
    { NULL, NULL, NULL, { 0, 0 }, { 0, 0 }, 0, NULL }
};

/* A blank-padded PKCS#11 field starts with prefix. */
static int field_has_prefix(const CK_UTF8CHAR *field, size_t len,
                            const char *prefix)
{
    size_t n;

    if (prefix == NULL)
        return 1;
    n = strlen(prefix);
    return n <= len && memcmp(field, prefix, n) == 0;
}

static int version_le(CK_VERSION a, CK_VERSION b)
{
    return a.major < b.major || (a.major == b.major && a.minor <= b.minor);
}

static int quirk_matches(const P11ID_QUIRK *q, const CK_INFO *module,
                         const CK_TOKEN_INFO *token)
{
    if (q->module_manufacturer != NULL
        && (module == NULL
            || !field_has_prefix(module->manufacturerID,
                                 sizeof(module->manufacturerID),
                                 q->module_manufacturer)))
        return 0;
    if (module != NULL
        && (!version_le(q->library_min, module->libraryVersion)
            || !version_le(module->libraryVersion, q->library_max)))
        return 0;
    if (q->token_manufacturer == NULL && q->token_model == NULL)
        return 1;
    if (token == NULL)
        return 0;
    return field_has_prefix(token->manufacturerID,
                            sizeof(token->manufacturerID),
                            q->token_manufacturer)
           && field_has_prefix(token->model, sizeof(token->model),
                               q->token_model);
}

unsigned int p11id_quirks_lookup(const CK_INFO *module,
                                 const CK_TOKEN_INFO *token)
{
    unsigned int flags = 0;
    const P11ID_QUIRK *q;

    for (q = quirks; q->flags != 0; q++)
        if (quirk_matches(q, module, token))
            flags |= q->flags;
    return flags;
}

const P11ID_QUIRK *p11id_quirks_table(void)
{
    return quirks;
}
