#!/usr/bin/env python3
"""spki.py: a PEM SubjectPublicKeyInfo from a token's CKA_EC_PARAMS and CKA_EC_POINT.

Usage: spki.py EC_PARAMS_HEX EC_POINT_HEX

Independent of the provider (and of pkcs11-tool's --read-object, which in
OpenSC 0.23 fails on P-384 keys with "cannot create EVP_PKEY").
CKA_EC_PARAMS: a DER OID (named curve) or, as OpenSC 0.23 writes for
Ed25519/Ed448 keys, a PrintableString "edwards25519" / "edwards448".
CKA_EC_POINT: a DER OCTET STRING (SoftHSM 2.6) or the raw point.
Standard library only.
"""

import base64
import sys

OID_EC_PUBLIC_KEY = "2a8648ce3d0201"  # 1.2.840.10045.2.1
OID_ED25519 = "2b6570"                # 1.3.101.112
OID_ED448 = "2b6571"                  # 1.3.101.113
EDWARDS_NAMES = {b"edwards25519": OID_ED25519, b"edwards448": OID_ED448}


def der_len(n):
    if n < 0x80:
        return bytes([n])
    out = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(out)]) + out


def tlv(tag, value):
    return bytes([tag]) + der_len(len(value)) + value


def parse_tlv(data):
    """(tag, value) when data is exactly one DER TLV, else None."""
    if len(data) < 2:
        return None
    tag, n = data[0], data[1]
    pos = 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or len(data) < 2 + k:
            return None
        n = int.from_bytes(data[2:2 + k], "big")
        pos = 2 + k
    if pos + n != len(data):
        return None
    return tag, data[pos:]


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    params = bytes.fromhex(sys.argv[1])
    point = bytes.fromhex(sys.argv[2])

    wrapped = parse_tlv(point)
    if wrapped is not None and wrapped[0] == 0x04:
        point = wrapped[1]

    p = parse_tlv(params)
    if p is None:
        sys.stderr.write("spki.py: EC_PARAMS is not one DER value\n")
        return 1
    tag, value = p
    if tag == 0x13 and value in EDWARDS_NAMES:
        alg = tlv(0x30, tlv(0x06, bytes.fromhex(EDWARDS_NAMES[value])))
    elif tag == 0x06 and value.hex() in (OID_ED25519, OID_ED448):
        alg = tlv(0x30, params)
    elif tag == 0x06:
        alg = tlv(0x30, tlv(0x06, bytes.fromhex(OID_EC_PUBLIC_KEY)) + params)
    else:
        sys.stderr.write("spki.py: unsupported EC_PARAMS %s\n" % params.hex())
        return 1
    spki = tlv(0x30, alg + tlv(0x03, b"\x00" + point))

    b64 = base64.b64encode(spki).decode("ascii")
    sys.stdout.write("-----BEGIN PUBLIC KEY-----\n")
    for i in range(0, len(b64), 64):
        sys.stdout.write(b64[i:i + 64] + "\n")
    sys.stdout.write("-----END PUBLIC KEY-----\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
