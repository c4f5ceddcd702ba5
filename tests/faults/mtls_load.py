#!/usr/bin/env python3
"""mtls_load.py: steady, sequential mutual-TLS load on one server.

    mtls_load.py PORT CA CERT KEY PHASEFILE OUTLOG STOPFILE MAXSECONDS

Makes one HTTPS request after another to https://127.0.0.1:PORT/, each on a
new connection with a full handshake (no session resumption), with a client
certificate and key from files (software keys). Before each request it reads
the current phase name from PHASEFILE (the test writes it); after each it
appends "PHASE ok|fail SECONDS [reason]" to OUTLOG. Stops when STOPFILE
exists or after MAXSECONDS. Standard library only."""
import http.client
import os
import ssl
import sys
import time


def main():
    port, ca, cert, key, phasefile, outlog, stopfile, maxsecs = sys.argv[1:9]
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    end = time.monotonic() + float(maxsecs)
    with open(outlog, "a", buffering=1) as out:
        while time.monotonic() < end and not os.path.exists(stopfile):
            try:
                with open(phasefile) as f:
                    phase = f.read().strip() or "-"
            except OSError:
                phase = "-"
            t0 = time.monotonic()
            reason = ""
            conn = http.client.HTTPSConnection(
                "127.0.0.1", int(port), context=ctx, timeout=10)
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
                if not ok:
                    reason = "HTTP %d" % resp.status
            except Exception as exc:  # every failure counts, none stops us
                ok = False
                reason = type(exc).__name__ + ": " + str(exc)
            finally:
                conn.close()
            out.write("%s %s %.3f %s\n" % (
                phase, "ok" if ok else "fail", time.monotonic() - t0,
                reason.replace("\n", " ")[:200]))
            if not ok:
                time.sleep(0.02)  # a failing server is not hammered
    return 0


if __name__ == "__main__":
    sys.exit(main())
