/* sigenc.h: the encodings around a token signature, written directly on
 * the signing path: the DER ECDSA-Sig-Value of a raw r || s, and the DER
 * DigestInfo that CKM_RSA_PKCS signs. */
#ifndef P11ID_PROVIDER_SIGENC_H
#define P11ID_PROVIDER_SIGENC_H

#include <stddef.h>

/* The largest DER ECDSA-Sig-Value of a curve of up to 66-byte scalars. */
#define P11ID_ECDSA_DER_MAX (3 + 2 * (3 + 66))

/* DER ECDSA-Sig-Value of rs (r || s, equal halves of at most 66 bytes) into
 * out. Returns its length, or 0 when rs is malformed or outsize too small. */
size_t p11id_ecdsa_der_from_rs(const unsigned char *rs, size_t rslen,
                               unsigned char *out, size_t outsize);

/* The largest DigestInfo p11id_digest_info_fast writes (SHA-512). */
#define P11ID_DIGEST_INFO_MAX (19 + 64)

/* DigestInfo for a SHA-1 or SHA-2 digest (nid: NID_sha1 ... NID_sha512)
 * into out. Returns its length, or 0 when the digest has no constant prefix
 * here (the caller then encodes it with ASN.1) or outsize is too small. */
size_t p11id_digest_info_fast(int nid, const unsigned char *dg, size_t dglen,
                              unsigned char *out, size_t outsize);

#endif
