#!/usr/bin/env bash
# t_python_mtls.sh: Python 3 (Debian's, with python3-requests) does mutual
# TLS with private keys on a token through key reference files, p11id
# activated by OPENSSL_CONF: the ssl module's load_cert_chain() and
# requests' cert=(crt, key reference file) as clients (TLS 1.3 and 1.2), and
# an ssl server whose key is a key reference file, which verifies its
# clients and refuses those without a certificate or from another CA; a
# server that forks after loading its key serves from the child;
# load_cert_chain(password=) answers the PIN prompt. Runs
# conf/python-p11id.py, the sample the docs give.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/apps.sh
. "$(dirname "$0")/../lib/apps.sh"
require_cmd openssl curl pkcs11-tool softhsm2-util python3
if ! "$APP_PY" -c 'import ssl, sys; sys.exit(0 if ssl.OPENSSL_VERSION_INFO[0] >= 3 else 1)' 2>/dev/null; then
    echo "1..0 # SKIP $APP_PY has no ssl module on OpenSSL 3"
    exit 0
fi
HAVE_REQUESTS=yes
"$APP_PY" -c 'import requests' 2>/dev/null || HAVE_REQUESTS=no
SAMPLE=$TOP_SRCDIR/conf/python-p11id.py
require_file "$SAMPLE" "conf/python-p11id.py"
apps_setup
apps_pki ec256 ec256
diag "$("$APP_PY" -c 'import ssl, sys; print(sys.executable, sys.version.split()[0], ssl.OPENSSL_VERSION)')"

py() { run "$APP_PY" "$SAMPLE" "$@"; }
CLIENT=(--ca "$CA_CRT" --cert "$CLI_CRT" --key "$CLI_REF")

# --- clients, against openssl s_server -www (which shows the client's cert) -----------
PORT=$(free_port) || bail_out "no free port"
T_TIMEOUT=300 bg_start sserver openssl s_server -accept "127.0.0.1:$PORT" -www \
    -cert "$SRV_CRT" -key "$SRV_REF" -CAfile "$CA_CRT" -Verify 1 -verify_return_error
SPID=$BG_PID
wait_for_line "$T/sserver.out" '^ACCEPT' "$SPID" 60 || bail_out "s_server did not start"

py ssl "127.0.0.1:$PORT" "${CLIENT[@]}"
run_ok_like '^protocol=TLSv1\.3$' "ssl client, load_cert_chain(crt, key reference file): TLS 1.3"
file_like "$RUN_OUT" 'Subject: O *= *p11id Test, OU *= *apps, CN *= *client-1' \
    "ssl client: the server got the client's certificate"
py ssl "127.0.0.1:$PORT" "${CLIENT[@]}" --tls12
run_ok_like '^protocol=TLSv1\.2$' "ssl client: TLS 1.2"
file_like "$RUN_OUT" 'CN *= *client-1' "ssl client, TLS 1.2: the server got the client's certificate"

if [ "$HAVE_REQUESTS" = yes ]; then
    py requests "https://127.0.0.1:$PORT/" "${CLIENT[@]}"
    run_ok_like '^status=200$' "requests.get(cert=(crt, key reference file)): 200"
    file_like "$RUN_OUT" 'Subject: O *= *p11id Test, OU *= *apps, CN *= *client-1' \
        "requests: the server got the client's certificate"
    run "$APP_PY" -c 'import requests, sys
try:
    requests.get(sys.argv[1], verify=sys.argv[2], timeout=20)
except requests.exceptions.SSLError as e:
    print("SSLError", e)
    sys.exit(3)
print("no error")' "https://127.0.0.1:$PORT/" "$CA_CRT"
    if [ "$RUN_RC" -eq 3 ] && grep -q 'certificate required\|handshake failure' "$RUN_OUT"; then
        pass "requests without a client certificate: SSLError (certificate required)"
    else
        fail "requests without a client certificate: SSLError (certificate required)" \
            "exit $RUN_RC"
        diag_file "$RUN_OUT"
        diag_file "$RUN_ERR"
    fi
else
    skip_n 3 "no python3-requests for $APP_PY" "requests client"
fi
bg_stop "$SPID"

# --- an ssl server whose key is a key reference file ----------------------------------
PPORT=$(free_port) || bail_out "no free port"
T_TIMEOUT=300 bg_start pyserver "$APP_PY" -u "$SAMPLE" serve "127.0.0.1:$PPORT" \
    --ca "$CA_CRT" --cert "$SRV_CRT" --key "$SRV_REF"
PYPID=$BG_PID
if wait_for_line "$T/pyserver.out" '^listening on ' "$PYPID" 60; then
    pass "python ssl server starts, its key a key reference file"
else
    fail "python ssl server starts, its key a key reference file"
    diag_file "$T/pyserver.err"
fi
https_get_ok pycurl "https://127.0.0.1:$PPORT/" "curl (key on the token) to the python server: 200" \
    --cert "$CLI_CRT" --key "$CLI_REF"
is "$(body_value pycurl subject)/$(body_value pycurl serial)" "$CLI_DN/$CLI_SERIAL" \
    "python server: getpeercert() gives the client's subject and serial"
if [ "$HAVE_REQUESTS" = yes ]; then
    py requests "https://127.0.0.1:$PPORT/" "${CLIENT[@]}"
    run_ok_like '^subject=CN=client-1,OU=apps,O=p11id Test$' \
        "requests to the python server: both keys on tokens"
else
    skip "no python3-requests for $APP_PY" "requests to the python server"
fi
https_get pynocert "https://127.0.0.1:$PPORT/"
if [ "$HTTP_CODE" = 000 ] && wait_for_line "$T/pyserver.out" '^refused .*certificate' "$PYPID" 10; then
    pass "python server refuses a client without a certificate"
else
    fail "python server refuses a client without a certificate" "HTTP $HTTP_CODE"
    diag_file "$T/pyserver.out"
fi
https_get pyintruder "https://127.0.0.1:$PPORT/" --cert "$INTRUDER_CRT" --key "$INTRUDER_KEY"
if [ "$HTTP_CODE" = 000 ] && wait_for_line "$T/pyserver.out" '^refused .*(unknown ca|certificate verify failed)' "$PYPID" 10; then
    pass "python server refuses a certificate from another CA"
else
    fail "python server refuses a certificate from another CA" "HTTP $HTTP_CODE"
    diag_file "$T/pyserver.out"
fi
bg_stop "$PYPID"
file_unlike "$T/pyserver.err" 'Traceback|'"$CRASH_RE" "python server: no traceback, no crash"

# --- a server that loads its key, then forks the process that serves ------------------
FPORT=$(free_port) || bail_out "no free port"
cat >"$T/forked.py" <<'EOF2'
import os, socket, ssl, sys
port, ca, crt, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.load_cert_chain(crt, key)              # parent: loads the key, logs in
lsock = socket.create_server(("127.0.0.1", port))
print("listening", flush=True)
pid = os.fork()
if pid == 0:                               # child: signs on the token
    conn, _ = lsock.accept()
    with ctx.wrap_socket(conn, server_side=True) as s:
        s.recv(4096)
        body = "child=%d\n" % os.getpid()
        s.sendall(("HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
    os._exit(0)
lsock.close()
_, status = os.waitpid(pid, 0)
print("child exit", os.waitstatus_to_exitcode(status), flush=True)
EOF2
T_TIMEOUT=120 bg_start forked "$APP_PY" "$T/forked.py" "$FPORT" "$CA_CRT" "$SRV_CRT" "$SRV_REF"
FPID=$BG_PID
wait_for_line "$T/forked.out" '^listening' "$FPID" 60 || diag_file "$T/forked.err"
https_get_ok forked "https://127.0.0.1:$FPORT/" \
    "python server forked after loading its key: the child serves mutual TLS" \
    --cert "$CLI_CRT" --key "$CLI_REF"
bg_wait "$FPID" 30
file_like "$T/forked.out" '^child exit 0$' "python forked server: the child exited 0"

# --- no pin-source: load_cert_chain(password=PIN) answers the prompt -------------------
write_openssl_conf "$T/nopin.cnf" pin-source=
OPENSSL_CONF=$T/nopin.cnf APP_PIN=$PIN run "$APP_PY" -c 'import os, ssl, sys
ctx = ssl.create_default_context()
ctx.load_cert_chain(sys.argv[1], sys.argv[2], password=os.environ["APP_PIN"])
print("loaded")' "$CLI_CRT" "$CLI_REF"
run_ok_like '^loaded$' "no pin-source: load_cert_chain(password=...) gives the PIN"

# --- what failures look like -------------------------------------------------------------
OPENSSL_CONF=$T/default-only.cnf run "$APP_PY" -c 'import ssl, sys
ctx = ssl.create_default_context()
try:
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
except Exception as e:
    print(type(e).__name__, e)
    sys.exit(3)' "$CLI_CRT" "$CLI_REF"
if [ "$RUN_RC" -eq 3 ] && grep -q '^SSLError .*PEM lib' "$RUN_OUT"; then
    pass "provider not active: load_cert_chain raises SSLError 'PEM lib'"
else
    fail "provider not active: load_cert_chain raises SSLError 'PEM lib'" "exit $RUN_RC"
    diag_file "$RUN_OUT"
fi

printf 'wrong-pin-0000\n' >"$T/wrong.pin"
chmod 600 "$T/wrong.pin"
write_openssl_conf "$T/wrong.cnf" "pin-source=file:$T/wrong.pin"
OPENSSL_CONF=$T/wrong.cnf run "$APP_PY" -c 'import ssl, sys
ctx = ssl.create_default_context()
try:
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
except Exception as e:
    print(type(e).__name__, e)
    sys.exit(3)' "$CLI_CRT" "$CLI_REF"
cp "$RUN_OUT" "$T/wrongpin.out"
if [ "$RUN_RC" -eq 3 ] && ! run_crashed; then
    pass "wrong PIN: load_cert_chain raises, no prompt, no hang"
else
    fail "wrong PIN: load_cert_chain raises, no prompt, no hang" "exit $RUN_RC"
fi
diag "wrong PIN, Python says: $(cat "$T/wrongpin.out")"
# Python raises OSError from errno when it is set after a failed key load:
# SoftHSM's C_Initialize and C_Login leave ENOENT (a missing rdrand engine,
# syslog's /dev/log), so a wrong PIN reads "FileNotFoundError" unless the
# provider keeps the module's errno from the application.
grep -q '^SSLError ' "$T/wrongpin.out"
point_ok $? "wrong PIN: Python raises ssl.SSLError, not a misleading OSError"
OPENSSL_CONF=$T/wrong.cnf py ssl "127.0.0.1:$PORT" "${CLIENT[@]}"
run_err_like 'cannot load key .*openssl pkey -in' \
    "wrong PIN: the sample's error says how to see the provider's error"

pin_nowhere "the PIN is in no file but the PIN file"
done_testing
