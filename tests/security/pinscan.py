#!/usr/bin/env python3
"""pinscan.py SECRET FILE...: counts the copies of SECRET in each FILE (a
core dump, a log, /proc/PID/environ), as ASCII and as UTF-16 (LE and BE).

Prints "ascii N utf16 M openssl K FILE" and the first hits of each file
that has any, then "total N+M openssl K" over all files (missing files
count nothing). K
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


def scan(path, secret):
    try:
        with open(path, "rb") as f:
            buf = f.read()  # /proc files have no size: read, not mmap
    except FileNotFoundError:
        return 0, 0, 0
    a = hits(buf, secret.encode())
    u = hits(buf, secret.encode("utf-16-le")) + hits(
        buf, secret.encode("utf-16-be"))
    known = [o for o in a if in_openssl_msg(buf, o)]
    a = [o for o in a if o not in known]
    if a or u or known:
        print("ascii %d utf16 %d openssl %d %s" % (len(a), len(u), len(known),
                                                   path))
    for off in (a + u)[:4]:
        start = max(0, off - 80)
        print("  at 0x%x: %r" % (off, buf[start:off + len(secret) + 8]))
    return len(a), len(u), len(known)


def main():
    secret, total, known = sys.argv[1], 0, 0
    for path in sys.argv[2:]:
        a, u, k = scan(path, secret)
        total += a + u
        known += k
    print("total %d openssl %d" % (total, known))


if __name__ == "__main__":
    main()
