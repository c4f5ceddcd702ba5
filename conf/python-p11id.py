#!/usr/bin/env python3
"""python-p11id.py: mutual TLS from Python with private keys on a PKCS#11
token, through the p11id OpenSSL provider.

Python's ssl module (and requests, urllib3, http.client on top of it) takes a
private key from a file only: give it a *key reference file*, the PEM file
that names the token key (write it with
`openssl pkey -in 'pkcs11:token=...;object=...;type=private' -out key.pem`).
p11id decodes it and signs on the token. The provider must be active in the
process: set OPENSSL_CONF before Python starts (OpenSSL reads its
configuration once), to a file such as conf/openssl-p11id.cnf whose
pin-source gives the PIN; nothing prompts.

    export OPENSSL_CONF=/etc/p11id/openssl-p11id.cnf
    python3 python-p11id.py requests https://www.example.com:8443/ \\
        --ca /etc/p11id/ca.crt --cert /etc/p11id/client.crt \\
        --key /etc/p11id/client.keyref.pem
    python3 python-p11id.py ssl www.example.com:8443 --ca ... --cert ... --key ...
    python3 python-p11id.py serve 127.0.0.1:8443 --ca /etc/p11id/ca.crt \\
        --cert /etc/p11id/server.crt --key /etc/p11id/server.keyref.pem

The three functions below are what to copy into an application:
requests_get(), ssl_get() and serve(). Use the Python that goes with the
distribution's OpenSSL 3 (Debian 12: /usr/bin/python3, python3-requests).
"""

import argparse
import os
import socket
import ssl
import sys


def load_key(ctx, cert, key):
    """ctx.load_cert_chain(cert, key) with an error that says where to look.
    Python reports a key that cannot be loaded as ssl.SSLError "PEM lib"
    (p11id not active) or, when a library left errno set, as an OSError
    such as FileNotFoundError even though the files exist (a wrong PIN, a
    missing token): `openssl pkey -in KEY -noout` with the same OPENSSL_CONF
    prints the provider's own error."""
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as e:
        raise RuntimeError(
            "cannot load key %s: %s: %s (is p11id active? OPENSSL_CONF=%s; "
            "`openssl pkey -in %s -noout` shows the provider's error)"
            % (key, type(e).__name__, e, os.environ.get("OPENSSL_CONF", "unset"), key)
        ) from e


def client_context(ca, cert, key, tls12=False):
    """A client SSLContext: verify the server against `ca`, present `cert`
    with the token key named by the key reference file `key`."""
    ctx = ssl.create_default_context(cafile=ca)
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    load_key(ctx, cert, key)
    return ctx


def requests_get(url, ca, cert, key):
    """GET with requests: cert=(certificate, key reference file)."""
    import requests  # python3-requests

    # requests loads the key itself (ctx.load_cert_chain): a key that cannot
    # be loaded surfaces as requests.exceptions.SSLError or OSError.
    r = requests.get(url, cert=(cert, key), verify=ca, timeout=30)
    return r.status_code, r.text


def ssl_get(host, port, ca, cert, key, tls12=False, path="/"):
    """GET with the ssl module alone; returns (protocol, response)."""
    ctx = client_context(ca, cert, key, tls12)
    with socket.create_connection((host, port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            s.sendall(("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, host)).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            return s.version(), data.decode("utf-8", "replace")


def peer_dn(cert):
    """The subject of a getpeercert() dict, RFC 2253 style (CN first)."""
    rdns = [",".join("%s=%s" % (_short(k), v) for k, v in rdn)
            for rdn in cert.get("subject", ())]
    return ",".join(reversed(rdns))


def _short(name):
    return {"commonName": "CN", "organizationName": "O",
            "organizationalUnitName": "OU", "countryName": "C",
            "localityName": "L", "stateOrProvinceName": "ST"}.get(name, name)


def serve(host, port, ca, cert, key, count=0):
    """A small HTTPS server whose key is on the token; it requires a client
    certificate from `ca` and answers with what it learnt about the client.
    Serves `count` connections (0: until killed)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    load_key(ctx, cert, key)                # the key reference file
    with socket.create_server((host, port)) as lsock:
        print("listening on %s:%d" % (host, lsock.getsockname()[1]), flush=True)
        served = 0
        while count == 0 or served < count:
            conn, addr = lsock.accept()
            served += 1
            try:
                with ctx.wrap_socket(conn, server_side=True) as s:
                    s.settimeout(30)
                    req = b""
                    while b"\r\n\r\n" not in req:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        req += chunk
                    peer = s.getpeercert()
                    body = "subject=%s\nserial=%s\nprotocol=%s\n" % (
                        peer_dn(peer), peer.get("serialNumber", ""), s.version())
                    s.sendall(("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                               "Content-Length: %d\r\n\r\n%s"
                               % (len(body), body)).encode())
                    print("served %s" % peer_dn(peer), flush=True)
            except (ssl.SSLError, OSError) as e:
                # A client without a certificate, or from another CA.
                print("refused %s:%d: %s" % (addr[0], addr[1], e), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=("requests", "ssl", "serve"))
    p.add_argument("where", help="URL (requests) or HOST:PORT (ssl, serve)")
    p.add_argument("--ca", required=True, help="CA certificate(s) to verify the peer")
    p.add_argument("--cert", required=True, help="own certificate")
    p.add_argument("--key", required=True, help="key reference file of the token key")
    p.add_argument("--tls12", action="store_true", help="TLS 1.2 at most (ssl)")
    p.add_argument("--count", type=int, default=0, help="connections to serve (serve)")
    a = p.parse_args()
    try:
        if a.mode == "requests":
            status, text = requests_get(a.where, a.ca, a.cert, a.key)
            print("status=%d" % status)
            sys.stdout.write(text)
        else:
            host, _, port = a.where.rpartition(":")
            if a.mode == "ssl":
                proto, text = ssl_get(host, int(port), a.ca, a.cert, a.key, a.tls12)
                print("protocol=%s" % proto)
                sys.stdout.write(text)
            else:
                serve(host, int(port), a.ca, a.cert, a.key, a.count)
    except Exception as e:  # one line, for scripts and logs
        print("error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
