/* t_sigenc.c: the hand-written signature encodings against OpenSSL's own
 * ASN.1 encoders: ECDSA-Sig-Value for every scalar size and the edge values
 * (zero, leading zero bytes, top bit set), DigestInfo for every digest. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "provider/sigenc.h"
#include "../lib/tap.h"

/* OpenSSL's encoding of r || s, or 0. */
static int ref_ecdsa(const unsigned char *rs, size_t half, unsigned char *out)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, (int)half, NULL);
    BIGNUM *s = BN_bin2bn(rs + half, (int)half, NULL);
    unsigned char *p = out;
    int len = 0;

    if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s)) {
        r = s = NULL;
        len = i2d_ECDSA_SIG(es, &p);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return len;
}

/* Every size of interest, random values with their first bytes forced to
 * each pattern: all agree with OpenSSL byte for byte. */
static void ecdsa_cases(void)
{
    static const size_t halves[] = { 1, 20, 28, 32, 48, 66 };
    static const unsigned char firsts[][2] = {
        { 0x00, 0x00 }, { 0x00, 0x01 }, { 0x00, 0x80 }, { 0x01, 0x00 },
        { 0x7f, 0xff }, { 0x80, 0x00 }, { 0xff, 0xff },
    };
    unsigned char rs[132], got[P11ID_ECDSA_DER_MAX], want[256];
    size_t h, fr, fs, gotlen, bad = 0, n = 0;
    int wantlen, round;

    for (h = 0; h < sizeof(halves) / sizeof(halves[0]); h++) {
        size_t half = halves[h];

        for (fr = 0; fr < sizeof(firsts) / sizeof(firsts[0]); fr++)
            for (fs = 0; fs < sizeof(firsts) / sizeof(firsts[0]); fs++)
                for (round = 0; round < 8; round++) {
                    RAND_bytes(rs, (int)(2 * half));
                    memcpy(rs, firsts[fr], half < 2 ? half : 2);
                    memcpy(rs + half, firsts[fs], half < 2 ? half : 2);
                    if (round == 7) { /* whole halves of zero */
                        memset(rs, 0, half);
                        memset(rs + half, 0, half);
                    }
                    gotlen = p11id_ecdsa_der_from_rs(rs, 2 * half, got,
                                                     sizeof(got));
                    wantlen = ref_ecdsa(rs, half, want);
                    n++;
                    if (wantlen <= 0 || gotlen != (size_t)wantlen
                        || memcmp(got, want, gotlen) != 0)
                        bad++;
                }
        ok(bad == 0, "ECDSA-Sig-Value of %zu-byte scalars: %zu encodings "
           "equal OpenSSL's", half, n);
        n = bad = 0;
    }
    memset(rs, 0xff, sizeof(rs));
    ok(p11id_ecdsa_der_from_rs(rs, 132, got, 10) == 0,
       "a buffer too small is refused");
    ok(p11id_ecdsa_der_from_rs(rs, 133, got, sizeof(got)) == 0,
       "an odd r || s length is refused");
    ok(p11id_ecdsa_der_from_rs(rs, 0, got, sizeof(got)) == 0,
       "an empty r || s is refused");
    ok(p11id_ecdsa_der_from_rs(rs, 134, got, sizeof(got)) == 0,
       "scalars longer than P-521's are refused");
    ok(p11id_ecdsa_der_from_rs(rs, 132, got, sizeof(got)) == P11ID_ECDSA_DER_MAX,
       "P-521 with both top bits set: long-form length, the maximum of 141 bytes");
}

/* OpenSSL's DigestInfo. */
static int ref_digest_info(int nid, const unsigned char *dg, size_t dglen,
                           unsigned char **der)
{
    X509_SIG *sig = X509_SIG_new();
    X509_ALGOR *alg;
    ASN1_OCTET_STRING *os;
    int len = 0;

    *der = NULL;
    if (sig == NULL)
        return 0;
    X509_SIG_getm(sig, &alg, &os);
    if (X509_ALGOR_set0(alg, OBJ_nid2obj(nid), V_ASN1_NULL, NULL)
        && ASN1_OCTET_STRING_set(os, dg, (int)dglen))
        len = i2d_X509_SIG(sig, der);
    X509_SIG_free(sig);
    return len;
}

static void digest_info_cases(void)
{
    static const int nids[] = { NID_sha1, NID_sha224, NID_sha256, NID_sha384,
                                NID_sha512 };
    unsigned char dg[64], out[128], *want = NULL;
    size_t i, len, dglen;
    int wantlen;

    RAND_bytes(dg, sizeof(dg));
    for (i = 0; i < sizeof(nids) / sizeof(nids[0]); i++) {
        dglen = (size_t)EVP_MD_get_size(EVP_get_digestbynid(nids[i]));
        len = p11id_digest_info_fast(nids[i], dg, dglen, out, sizeof(out));
        wantlen = ref_digest_info(nids[i], dg, dglen, &want);
        ok(wantlen > 0 && len == (size_t)wantlen
           && memcmp(out, want, len) == 0,
           "DigestInfo of %s equals OpenSSL's", OBJ_nid2sn(nids[i]));
        OPENSSL_free(want);
        ok(p11id_digest_info_fast(nids[i], dg, dglen - 1, out, sizeof(out))
           == 0, "%s with a digest of the wrong length is refused",
           OBJ_nid2sn(nids[i]));
    }
    ok(p11id_digest_info_fast(NID_sha3_256, dg, 32, out, sizeof(out)) == 0,
       "SHA3-256 is left to the ASN.1 encoder");
    ok(p11id_digest_info_fast(NID_sha512, dg, 64, out, P11ID_DIGEST_INFO_MAX)
       == P11ID_DIGEST_INFO_MAX,
       "P11ID_DIGEST_INFO_MAX holds the largest (SHA-512) exactly");
    ok(p11id_digest_info_fast(NID_sha256, dg, 32, out, 50) == 0,
       "a buffer too small is refused");
}

int main(void)
{
    ecdsa_cases();
    digest_info_cases();
    printf("1..%d\n", n_tests);
    return n_failed != 0;
}
