#!/usr/bin/env python3
"""keyref.py: write a PKCS#11 key reference file without the provider.

The format (shared with the other OpenSSL PKCS#11 provider):
  -----BEGIN PKCS#11 PROVIDER URI-----   base64 of
  SEQUENCE { desc VisibleString "PKCS#11 Provider URI v1.0", uri UTF8String }

Options build the broken variants the tests feed to the provider's decoder.
With --decode it does the reverse: prints the URI of every such PEM block
found on standard input, one per line (exit 1 if there is none).
Standard library only.
"""

import argparse
import base64
import re
import sys

TAGS = {
    "sequence": 0x30,
    "set": 0x31,
    "visible": 0x1A,
    "utf8": 0x0C,
    "ia5": 0x16,
    "octet": 0x04,
    "integer": 0x02,
}


def der_len(n):
    if n < 0x80:
        return bytes([n])
    out = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(out)]) + out


def tlv(tag, value):
    return bytes([tag]) + der_len(len(value)) + value


def parse_tlv(data, pos):
    """(tag, value, next position) of the DER TLV at pos; ValueError if bad."""
    if pos + 2 > len(data):
        raise ValueError("truncated")
    tag, n = data[pos], data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or pos + k > len(data):
            raise ValueError("bad length")
        n = int.from_bytes(data[pos:pos + k], "big")
        pos += k
    if pos + n > len(data):
        raise ValueError("truncated")
    return tag, data[pos:pos + n], pos + n


def decode(text):
    blocks = re.findall(r"-----BEGIN PKCS#11 PROVIDER URI-----\s*(.*?)"
                        r"-----END PKCS#11 PROVIDER URI-----", text, re.S)
    for b in blocks:
        der = base64.b64decode("".join(b.split()))
        tag, body, _ = parse_tlv(der, 0)
        if tag != 0x30:
            raise ValueError("not a SEQUENCE")
        _, _, pos = parse_tlv(body, 0)
        tag, uri, _ = parse_tlv(body, pos)
        if tag != 0x0C:
            raise ValueError("URI is not a UTF8String")
        print(uri.decode("utf-8"))
    return 0 if blocks else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("uri", nargs="?", default="")
    ap.add_argument("--decode", action="store_true",
                    help="print the URIs of the key reference PEM blocks on stdin")
    ap.add_argument("--desc", default="PKCS#11 Provider URI v1.0")
    ap.add_argument("--desc-tag", choices=TAGS, default="visible")
    ap.add_argument("--uri-tag", choices=TAGS, default="utf8")
    ap.add_argument("--outer-tag", choices=TAGS, default="sequence")
    ap.add_argument("--no-desc", action="store_true",
                    help="leave the description out")
    ap.add_argument("--truncate", type=int, default=0,
                    help="drop this many bytes from the end of the DER")
    ap.add_argument("--trailing", default="",
                    help="hex bytes appended after the DER")
    ap.add_argument("--label", default="PKCS#11 PROVIDER URI")
    ap.add_argument("--bad-base64", action="store_true",
                    help="put characters outside base64 into the body")
    ap.add_argument("--der", action="store_true", help="write DER, not PEM")
    a = ap.parse_args()
    if a.decode:
        return decode(sys.stdin.read())

    body = b""
    if not a.no_desc:
        body += tlv(TAGS[a.desc_tag], a.desc.encode("utf-8"))
    body += tlv(TAGS[a.uri_tag], a.uri.encode("utf-8"))
    der = tlv(TAGS[a.outer_tag], body)
    if a.truncate:
        der = der[: len(der) - a.truncate]
    der += bytes.fromhex(a.trailing)

    if a.der:
        sys.stdout.buffer.write(der)
        return 0
    b64 = base64.b64encode(der).decode("ascii")
    if a.bad_base64:
        b64 = b64[:10] + "*!?@" + b64[14:]
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    sys.stdout.write("-----BEGIN %s-----\n" % a.label)
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.write("-----END %s-----\n" % a.label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
