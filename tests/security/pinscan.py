#!/usr/bin/env python3
"""pinscan.py FILE SECRET: counts the copies of SECRET in FILE (a core dump,
a log, /proc/PID/environ), as ASCII and as UTF-16 (LE and BE).

Prints "ascii N utf16 M openssl K" and the offsets of the first hits. K
copies are left out of N: the ones inside the message OpenSSL's own file:
store loader records, "calling stat(<the URI>)", when an application opens a
pkcs11: URI (OpenSSL 3 tries every URI as a file first, and frees that
message unwiped). They are OpenSSL's, exist only for a pin-value typed into
a URI, and are shown separately so that the test can say so."""
import sys

OPENSSL_MSG = b"stat(pkcs11:"  # malloc may overwrite the start


def hits(buf, needle):
    found, start = [], 0
    while True:
        i = buf.find(needle, start)
        if i < 0:
            return found
        found.append(i)
        start = i + 1


def in_openssl_msg(buf, off):
    """The hit belongs to one NUL-terminated string that starts with
    OpenSSL's file loader message."""
    start = buf.rfind(b"\0", max(0, off - 8192), off) + 1
    return buf[start:off].find(OPENSSL_MSG) >= 0


def main():
    path, secret = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        buf = f.read()  # /proc files have no size: read, not mmap
    a = hits(buf, secret.encode())
    u = hits(buf, secret.encode("utf-16-le")) + hits(
        buf, secret.encode("utf-16-be"))
    known = [o for o in a if in_openssl_msg(buf, o)]
    a = [o for o in a if o not in known]
    print("ascii %d utf16 %d openssl %d" % (len(a), len(u), len(known)))
    for off in (a + u)[:8]:
        start = max(0, off - 80)
        print("  at 0x%x: %r" % (off, buf[start:off + len(secret) + 8]))


if __name__ == "__main__":
    main()
