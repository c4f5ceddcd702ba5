/* fuzz_csr.c: the CSR input of p11id ca sign (src/tool/x509util.c):
 * x509u_check_csr, which vets a request, and x509u_leaf_tbs, which builds
 * the certificate for it under a profile.
 *
 * The input is a CSR, PEM or DER, read as the tool reads one. It is checked
 * as it is (its signature rarely survives a mutation), and once more after
 * the harness put its own Ed25519 key in and signed it, so every check past
 * the signature sees fuzzed subjects, attributes and extensions. For each
 * accepted request and each profile (client, server, both), the leaf is
 * built, signed by a software CA (no token) and checked: it never grants
 * more than the profile: not a CA (basicConstraints CA:FALSE, critical, no
 * pathLen), no certificate or CRL signing, the profile's extendedKeyUsage,
 * no extension but basicConstraints, keyUsage, extendedKeyUsage,
 * subjectAltName, subject and authority key identifiers (each once), the
 * subject, names and key of the request unchanged, and it verifies under
 * the CA. A refused request leaves a message and nothing allocated. */
#include <string.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fuzz.h"
#include "tool/x509util.h"

static EVP_PKEY *ca_key;   /* the CA's key (software) */
static X509 *ca_cert;      /* its self-signed certificate */
static EVP_PKEY *req_key;  /* the key the harness re-signs requests with */
static ASN1_INTEGER *serial;

static EVP_PKEY *new_ed25519(void)
{
    EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

    FUZZ_ASSERT(pk != NULL);
    return pk;
}

static X509 *make_ca(EVP_PKEY *pk)
{
    STACK_OF(X509_EXTENSION) *exts = x509u_ca_exts();
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();

    FUZZ_ASSERT(x != NULL && name != NULL && exts != NULL);
    FUZZ_ASSERT(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                           (const unsigned char *)"fuzz CA",
                                           -1, -1, 0));
    FUZZ_ASSERT(X509_set_version(x, 2) && X509_set_serialNumber(x, serial)
                && X509_set_issuer_name(x, name)
                && X509_set_subject_name(x, name)
                && X509_gmtime_adj(X509_getm_notBefore(x), 0) != NULL
                && X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 3650)
                       != NULL
                && X509_set_pubkey(x, pk) && x509u_add_exts(x, exts)
                && x509u_add_key_ids(x, NULL) && X509_sign(x, pk, NULL) > 0);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    return x;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    serial = ASN1_INTEGER_new();
    FUZZ_ASSERT(serial != NULL && ASN1_INTEGER_set(serial, 0x1234));
    ca_key = new_ed25519();
    req_key = new_ed25519();
    ca_cert = make_ca(ca_key);
    return 0;
}

/* As tool_read_csr: PEM first, then DER. */
static X509_REQ *read_csr(const uint8_t *data, size_t size)
{
    BIO *bio = BIO_new_mem_buf(data, (int)size);
    const unsigned char *p = data;
    X509_REQ *req = NULL;

    if (bio != NULL)
        req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (req == NULL)
        req = d2i_X509_REQ(NULL, &p, (long)size);
    ERR_clear_error();
    return req;
}

static bool same_sans(const GENERAL_NAMES *a, const GENERAL_NAMES *b)
{
    int i, n = sk_GENERAL_NAME_num(a);

    if (n != sk_GENERAL_NAME_num(b))
        return false;
    for (i = 0; i < n; i++)
        if (GENERAL_NAME_cmp(sk_GENERAL_NAME_value(a, i),
                             sk_GENERAL_NAME_value(b, i))
            != 0)
            return false;
    return true;
}

/* The extensions a leaf may carry, each at most once. */
static const int allowed[] = {
    NID_basic_constraints,        NID_key_usage,
    NID_ext_key_usage,            NID_subject_alt_name,
    NID_subject_key_identifier,   NID_authority_key_identifier,
};
#define NALLOWED (sizeof(allowed) / sizeof(allowed[0]))

static void check_exts(X509 *x, const X509U_CSR_INFO *info)
{
    int seen[NALLOWED] = { 0 };
    int i, nid, crit = -1;
    size_t k;
    BASIC_CONSTRAINTS *bc;
    ASN1_BIT_STRING *ku;
    GENERAL_NAMES *sans;

    for (i = 0; i < X509_get_ext_count(x); i++) {
        nid = OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, i)));
        for (k = 0; k < NALLOWED && allowed[k] != nid; k++)
            ;
        FUZZ_ASSERT(k < NALLOWED);
        FUZZ_ASSERT(seen[k]++ == 0);
    }
    FUZZ_ASSERT(seen[0] && seen[1] && seen[2] && seen[4] && seen[5]);
    bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    FUZZ_ASSERT(bc != NULL && crit == 1 && !bc->ca && bc->pathlen == NULL);
    BASIC_CONSTRAINTS_free(bc);
    ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
    FUZZ_ASSERT(ku != NULL && crit == 1);
    FUZZ_ASSERT(ASN1_BIT_STRING_get_bit(ku, 0)); /* digitalSignature */
    for (i = 3; i < 9; i++)                      /* nothing past encipher */
        FUZZ_ASSERT(!ASN1_BIT_STRING_get_bit(ku, i));
    ASN1_BIT_STRING_free(ku);
    sans = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    if (info->sans == NULL) {
        FUZZ_ASSERT(sans == NULL);
    } else {
        FUZZ_ASSERT(sans != NULL && same_sans(sans, info->sans));
        FUZZ_ASSERT(crit
                    == (X509_NAME_entry_count(info->subject) == 0 ? 1 : 0));
    }
    GENERAL_NAMES_free(sans);
}

/* The leaf for info under usage: built, signed, checked. */
static void check_leaf(const X509U_CSR_INFO *info, X509U_USAGE usage,
                       unsigned flags)
{
    X509U_LEAF_TBS tbs;
    X509U_ERR err;
    X509 *x, *again;
    unsigned char *der = NULL;
    const unsigned char *p;
    GENERAL_NAMES *sans;
    char *text;
    int len;

    memset(&tbs, 0, sizeof(tbs));
    tbs.issuer = ca_cert;
    tbs.info = info;
    tbs.usage = usage;
    tbs.not_before = 1700000000;
    tbs.not_after = 1700000000 + 86400 * 30;
    tbs.serial = serial;
    x = x509u_leaf_tbs(&tbs);
    FUZZ_ASSERT(x != NULL);
    FUZZ_ASSERT(X509_sign(x, ca_key, NULL) > 0);
    /* What a relying party sees: the DER, parsed again. */
    len = i2d_X509(x, &der);
    FUZZ_ASSERT(len > 0);
    p = der;
    again = d2i_X509(NULL, &p, len);
    FUZZ_ASSERT(again != NULL && p == der + len);
    FUZZ_ASSERT(X509_verify(again, ca_key) == 1);
    FUZZ_ASSERT(X509_check_ca(again) == 0);
    FUZZ_ASSERT((X509_get_extension_flags(again) & EXFLAG_CA) == 0);
    FUZZ_ASSERT(X509_get_version(again) == 2);
    FUZZ_ASSERT(x509u_cert_usage(again) == usage);
    FUZZ_ASSERT(X509_NAME_cmp(X509_get_subject_name(again), info->subject)
                == 0);
    FUZZ_ASSERT(X509_NAME_cmp(X509_get_issuer_name(again),
                              X509_get_subject_name(ca_cert))
                == 0);
    FUZZ_ASSERT(EVP_PKEY_eq(X509_get0_pubkey(again), info->pub) == 1);
    FUZZ_ASSERT(X509_check_issued(ca_cert, again) == X509_V_OK);
    check_exts(again, info);
    sans = x509u_cert_sans(again);
    if (sans != NULL)
        FUZZ_ASSERT(x509u_check_sans(sans, flags, &err));
    text = x509u_sans_text(sans);
    FUZZ_ASSERT(text != NULL);
    OPENSSL_free(text);
    GENERAL_NAMES_free(sans);
    text = x509u_name_text(X509_get_subject_name(again));
    FUZZ_ASSERT(text != NULL);
    OPENSSL_free(text);
    OPENSSL_free(der);
    X509_free(again);
    X509_free(x);
    ERR_clear_error();
}

static void check_request(X509_REQ *req, unsigned flags)
{
    X509U_CSR_INFO info;
    X509U_ERR err;

    memset(&err, 0, sizeof(err));
    if (!x509u_check_csr(req, flags, &info, &err)) {
        FUZZ_ASSERT(err.msg[0] != '\0');
        FUZZ_ASSERT(info.subject == NULL && info.sans == NULL
                    && info.pub == NULL);
        FUZZ_ASSERT(ERR_peek_error() == 0);
        return;
    }
    FUZZ_ASSERT(info.subject != NULL && info.pub != NULL);
    FUZZ_ASSERT(x509u_check_name(info.subject, &err));
    FUZZ_ASSERT(x509u_check_key(info.pub, &err));
    FUZZ_ASSERT(info.sans == NULL || x509u_check_sans(info.sans, flags, &err));
    FUZZ_ASSERT(X509_NAME_entry_count(info.subject) > 0 || info.sans != NULL);
    FUZZ_ASSERT(memchr(info.ignored, '\0', sizeof(info.ignored)) != NULL);
    check_leaf(&info, X509U_USAGE_CLIENT, flags);
    check_leaf(&info, X509U_USAGE_SERVER, flags);
    check_leaf(&info, X509U_USAGE_BOTH, flags);
    x509u_csr_info_clear(&info);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    X509_REQ *req = read_csr(data, size), *ours;

    if (req == NULL)
        return 0;
    check_request(req, 0);
    /* The same request signed by the harness's key: past the signature. */
    ours = X509_REQ_dup(req);
    if (ours != NULL && X509_REQ_set_pubkey(ours, req_key)
        && X509_REQ_sign(ours, req_key, NULL) > 0) {
        check_request(ours, 0);
        check_request(ours, X509U_SAN_WILDCARD);
    }
    ERR_clear_error();
    X509_REQ_free(ours);
    X509_REQ_free(req);
    return 0;
}
