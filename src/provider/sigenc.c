/* sigenc.c: see sigenc.h. */
#include <string.h>
#include <openssl/obj_mac.h>

#include "provider/sigenc.h"

/* The DER DigestInfo prefixes of RFC 8017 (section 9.2, note 1): the
 * AlgorithmIdentifier with NULL parameters and the OCTET STRING header; the
 * last byte is the digest length. */
static const struct digest_info_prefix_st {
    int nid;
    unsigned char len;
    unsigned char der[19];
} prefixes[] = {
    { NID_sha1, 15, { 0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03,
                      0x02, 0x1a, 0x05, 0x00, 0x04, 0x14 } },
    { NID_sha224, 19, { 0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
                        0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04,
                        0x1c } },
    { NID_sha256, 19, { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
                        0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
                        0x20 } },
    { NID_sha384, 19, { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
                        0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04,
                        0x30 } },
    { NID_sha512, 19, { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
                        0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04,
                        0x40 } },
};

size_t p11id_digest_info_fast(int nid, const unsigned char *dg, size_t dglen,
                              unsigned char *out, size_t outsize)
{
    size_t i;

    for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        const struct digest_info_prefix_st *pf = &prefixes[i];

        if (pf->nid != nid)
            continue;
        if (pf->der[pf->len - 1] != dglen || outsize < pf->len + dglen)
            return 0;
        memcpy(out, pf->der, pf->len);
        memcpy(out + pf->len, dg, dglen);
        return pf->len + dglen;
    }
    return 0;
}

/* One DER INTEGER from a big-endian unsigned value: leading zero bytes
 * dropped (one kept for zero), 0x00 added when the top bit is set. Returns
 * its length; writes it when out is not NULL. */
static size_t der_uint(const unsigned char *v, size_t len, unsigned char *out)
{
    size_t pad;

    while (len > 1 && v[0] == 0) {
        v++;
        len--;
    }
    pad = (v[0] & 0x80) != 0;
    if (out != NULL) {
        out[0] = 0x02;
        out[1] = (unsigned char)(len + pad); /* at most 67: short form */
        out[2] = 0x00;
        memcpy(out + 2 + pad, v, len);
    }
    return 2 + pad + len;
}

size_t p11id_ecdsa_der_from_rs(const unsigned char *rs, size_t rslen,
                               unsigned char *out, size_t outsize)
{
    size_t half = rslen / 2, rlen, slen, body, hdr;

    if (half == 0 || rslen % 2 != 0 || half > 66)
        return 0;
    rlen = der_uint(rs, half, NULL);
    slen = der_uint(rs + half, half, NULL);
    body = rlen + slen;
    hdr = body < 0x80 ? 2 : 3;
    if (hdr + body > outsize)
        return 0;
    out[0] = 0x30;
    if (hdr == 2) {
        out[1] = (unsigned char)body;
    } else {
        out[1] = 0x81;
        out[2] = (unsigned char)body;
    }
    der_uint(rs, half, out + hdr);
    der_uint(rs + half, half, out + hdr + rlen);
    return hdr + body;
}
