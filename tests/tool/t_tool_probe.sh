#!/usr/bin/env bash
# t_tool_probe.sh: p11id probe makes real TLS handshakes against openssl
# s_server on 127.0.0.1 with a client key on a SoftHSM token, and explains
# each outcome: mutual TLS accepted (TLS 1.3, 1.2), a server that does not
# ask for a client certificate or does not require one, and one failure
# class per server: client certificate required, our CA not trusted, the
# server's CA not in --ca, hostname mismatch, expired server certificate,
# expired client certificate, client certificate without clientAuth, no
# common TLS version, port closed, a silent server, a server that does not
# speak TLS. Against nginx, which judges client certificates only at the
# first request, --http reads its HTTP 400 verdicts. --json names the
# failure class.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/apps.sh
. "$(dirname "$0")/../lib/apps.sh"
# shellcheck source=tests/tool/diag_lib.sh
. "$(dirname "$0")/diag_lib.sh"
require_cmd openssl pkcs11-tool softhsm2-util python3
diag_setup
trap 'nginx_stop; t_cleanup' EXIT

for k in ca srv cli; do
    key_gen "$k" ec256 || bail_out "cannot generate key $k on the token"
done
key_gen cli-rsa rsa2048 || bail_out "cannot generate an RSA key on the token"
ca_make "$(key_uri ca)" "$T/ca.crt" "/CN=p11id Probe CA" \
    || bail_out "cannot make the CA certificate"
soft_ca_make "$T" otherca "/CN=Other CA" || bail_out "cannot make the other CA"

csr_make "$(key_uri srv)" /CN=localhost "$T/srv.csr" || bail_out "srv CSR"
csr_make "$(key_uri cli)" /CN=client "$T/cli.csr" || bail_out "cli CSR"
csr_make "$(key_uri cli-rsa)" /CN=client-rsa "$T/cli-rsa.csr" \
    || bail_out "cli-rsa CSR"
issue()
{
    cert_dated "$T/ca.crt" "$(key_uri ca)" "$T/$1.csr" "$2" "$T/$3.crt" \
        "$(days_from_now "$4")" "$(days_from_now "$5")" \
        || bail_out "cannot issue $3.crt"
}
issue srv server srv -1 90
issue srv server srv-expired -60 -30
issue cli client cli -1 90
issue cli client cli-expired -60 -30
issue cli server cli-srvonly -1 90
issue cli-rsa client cli-rsa -1 90
# The server's key certified by a CA our --ca does not hold.
ext_file server "$T/srv-other.ext"
ossl_sw x509 -req -in "$T/srv.csr" -CA "$T/otherca.crt" -CAkey "$T/otherca.key" \
    -set_serial 77 -days 30 -extfile "$T/srv-other.ext" -out "$T/srv-other.crt"
[ "$RUN_RC" -eq 0 ] || bail_out "cannot certify the server by the other CA"
# Our key certified by a CA the servers do not trust.
ext_file client "$T/cli-other.ext"
ossl_sw x509 -req -in "$T/cli.csr" -CA "$T/otherca.crt" -CAkey "$T/otherca.key" \
    -set_serial 78 -days 30 -extfile "$T/cli-other.ext" -out "$T/cli-other.crt"
[ "$RUN_RC" -eq 0 ] || bail_out "cannot certify the client by the other CA"

P=(--pin-file "$T/pin.txt")
CLI=(--key "$(key_uri cli)" --cert "$T/cli.crt" "${P[@]}")
T_TIMEOUT=60
export T_TIMEOUT

# server NAME S_SERVER_ARGS...: s_server on a free port of 127.0.0.1 with the
# server key on the token; PORT and SPID set. Returns non-zero when it does
# not come up.
server()
{
    local name=$1
    shift
    PORT=$(free_port) || bail_out "no free TCP port"
    bg_start "$name" openssl s_server -accept "127.0.0.1:$PORT" -naccept 1 \
        -rev -key "$(key_uri srv)" "$@"
    SPID=$BG_PID
    if ! wait_for_line "$T/$name.out" '^ACCEPT' "$SPID" 60; then
        diag_file "$T/$name.err"
        bg_stop "$SPID"
        return 1
    fi
}

# probe NAME WANT_RC DESC [PROBE ARGS...] -- S_SERVER ARGS...: one server,
# one probe of it; one point for the exit status. RUN_OUT is the probe's.
probe()
{
    local name=$1 want=$2 desc=$3
    shift 3
    local -a pargs=() sargs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        pargs+=("$1")
        shift
    done
    shift
    sargs=("$@")
    if ! server "$name" "${sargs[@]}"; then
        fail "$desc: s_server starts"
        RUN_OUT=/dev/null
        return 1
    fi
    tool probe "127.0.0.1:$PORT" --servername localhost --timeout 10 \
        "${pargs[@]}"
    bg_stop "$SPID"
    if [ "$RUN_RC" -eq "$want" ] && ! run_crashed; then
        pass "$desc: exit $want"
    else
        fail "$desc: exit $want"
        _run_diag
        diag_file "$T/$name.err"
    fi
}

MTLS=(-cert "$T/srv.crt" -CAfile "$T/ca.crt" -Verify 1 -verify_return_error)

# --- it works -------------------------------------------------------------------------

probe ok13 0 "mTLS, TLS 1.3" --ca "$T/ca.crt" "${CLI[@]}" -- "${MTLS[@]}" -tls1_3
file_like "$RUN_OUT" '^ok +identity: CN=client, issued by CN=p11id Probe CA' \
    "TLS 1.3: our identity described"
file_like "$RUN_OUT" '^ok +connect: 127.0.0.1:[0-9]+' "TLS 1.3: TCP connect"
file_like "$RUN_OUT" '^ok +handshake: TLSv1.3, TLS_' "TLS 1.3: protocol and cipher"
file_like "$RUN_OUT" '^ok +server certificate: CN=localhost, issued by CN=p11id Probe CA; verified against .*ca.crt; localhost matches' \
    "TLS 1.3: server certificate verified with the host name"
file_like "$RUN_OUT" '^ok +client certificate: the server asked for one and accepted ours \(CN=client\)' \
    "TLS 1.3: the server asked and accepted our certificate"
file_like "$RUN_OUT" '^result: mutual TLS works' "TLS 1.3: result"

probe ok12 0 "mTLS, TLS 1.2, RSA client key" --ca "$T/ca.crt" --tls 1.2 \
    --key "$(key_uri cli-rsa)" --cert "$T/cli-rsa.crt" "${P[@]}" \
    -- "${MTLS[@]}"
file_like "$RUN_OUT" '^ok +handshake: TLSv1.2' "TLS 1.2: protocol"
file_like "$RUN_OUT" 'accepted ours \(CN=client-rsa\)' "TLS 1.2: accepted"

# Without --cert: the certificate stored on the token beside the key.
ossl_sw x509 -in "$T/cli.crt" -outform DER -out "$T/cli.der"
p11tool --token-label "$TOKEN" --login --pin "$PIN" --write-object "$T/cli.der" \
    --type cert --id "${KEY_ID[cli]}" --label cli
[ "$RUN_RC" -eq 0 ] || bail_out "cannot store cli.crt on the token"
probe tokencert 0 "mTLS with the token's certificate of the key" \
    --ca "$T/ca.crt" --key "$(key_uri cli)" "${P[@]}" -- "${MTLS[@]}"
file_like "$RUN_OUT" 'accepted ours \(CN=client\)' \
    "the token's certificate was sent and accepted"

probe noask 0 "server that does not ask for a client certificate" \
    --ca "$T/ca.crt" "${CLI[@]}" -- -cert "$T/srv.crt"
file_like "$RUN_OUT" '^warn client certificate: the server did not ask for one' \
    "no request: a warning that mutual TLS is not done"
file_like "$RUN_OUT" '^result: TLS works, but the server did not ask' \
    "no request: result says so"

probe optional 0 "server that asks but does not require (-verify)" \
    --ca "$T/ca.crt" -- -cert "$T/srv.crt" -CAfile "$T/ca.crt" -verify 1
file_like "$RUN_OUT" 'the server asked for one but does not require it in the handshake.*; we sent none' \
    "optional client certificate explained"

# --- the server refuses us -----------------------------------------------------------

probe noclient13 1 "required client certificate, none sent, TLS 1.3" \
    --ca "$T/ca.crt" -- "${MTLS[@]}" -tls1_3
file_like "$RUN_OUT" 'the server wants a client certificate and we sent none \(alert certificate_required, 116\)' \
    "TLS 1.3: certificate_required explained"
file_like "$RUN_OUT" 'fix: give --key KEY-URI' "TLS 1.3: says to give --key"

probe noclient12 1 "required client certificate, none sent, TLS 1.2" \
    --ca "$T/ca.crt" --tls 1.2 -- "${MTLS[@]}"
file_like "$RUN_OUT" 'the server wants a client certificate and we sent none \(alert handshake_failure, 40\)' \
    "TLS 1.2: handshake_failure read as a missing client certificate"

probe unknownca13 1 "server trusts another CA, TLS 1.3" --ca "$T/ca.crt" \
    "${CLI[@]}" -- -cert "$T/srv.crt" -CAfile "$T/otherca.crt" -Verify 1 \
    -verify_return_error -tls1_3
file_like "$RUN_OUT" 'the server does not trust the CA that signed our certificate \(alert unknown_ca, 48\)' \
    "TLS 1.3: unknown_ca after the handshake explained"
file_like "$RUN_OUT" 'the server accepts client certificates from: CN=Other CA' \
    "TLS 1.3: the CAs the server trusts are named"
file_like "$RUN_OUT" 'fix: give the server our CA' "TLS 1.3: says to give it our CA"

probe unknownca12 1 "server trusts another CA, TLS 1.2" --ca "$T/ca.crt" \
    --tls 1.2 "${CLI[@]}" -- -cert "$T/srv.crt" -CAfile "$T/otherca.crt" \
    -Verify 1 -verify_return_error
file_like "$RUN_OUT" '^FAIL handshake: the server does not trust the CA that signed our certificate' \
    "TLS 1.2: unknown_ca in the handshake explained"

probe cliexpired 1 "our certificate expired" --ca "$T/ca.crt" \
    --key "$(key_uri cli)" --cert "$T/cli-expired.crt" "${P[@]}" \
    -- "${MTLS[@]}"
file_like "$RUN_OUT" '^warn identity: CN=client expired on' \
    "expired client certificate: noticed before the handshake"
file_like "$RUN_OUT" 'our certificate is out of its validity period \(alert certificate_expired, 45\)' \
    "expired client certificate: certificate_expired explained"

probe cliusage 1 "our certificate has no clientAuth" --ca "$T/ca.crt" \
    --key "$(key_uri cli)" --cert "$T/cli-srvonly.crt" "${P[@]}" \
    -- "${MTLS[@]}"
file_like "$RUN_OUT" 'the server refuses our certificate for a client \(alert unsupported_certificate, 43\)' \
    "wrong key usage: unsupported_certificate explained"
file_like "$RUN_OUT" 'extendedKeyUsage: serverAuth' "wrong key usage: ours is named"

probe version 1 "no common TLS version" --ca "$T/ca.crt" --tls 1.3 \
    "${CLI[@]}" -- "${MTLS[@]}" -tls1_2
file_like "$RUN_OUT" 'no TLS version in common \(alert protocol_version, 70\)' \
    "protocol version mismatch explained"

# --- we refuse the server ------------------------------------------------------------

probe srvother 1 "server certificate from a CA not in --ca" --ca "$T/ca.crt" \
    "${CLI[@]}" -- -cert "$T/srv-other.crt" -CAfile "$T/ca.crt"
file_like "$RUN_OUT" "the server's certificate is not signed by a CA in --ca" \
    "untrusted server certificate explained"
file_like "$RUN_OUT" 'unable to get local issuer certificate.*issued by CN=Other CA' \
    "untrusted server certificate: OpenSSL's words and the issuer"

probe hostname 1 "hostname mismatch" --ca "$T/ca.crt" --servername \
    www.example.org "${CLI[@]}" -- -cert "$T/srv.crt"
file_like "$RUN_OUT" "the server's certificate is not for www.example.org \\(hostname mismatch\\)" \
    "hostname mismatch explained"
file_like "$RUN_OUT" 'names DNS:localhost, IP:127.0.0.1' \
    "hostname mismatch: the certificate's names"

probe srvexpired 1 "expired server certificate" --ca "$T/ca.crt" "${CLI[@]}" \
    -- -cert "$T/srv-expired.crt"
file_like "$RUN_OUT" "the server's certificate \\(CN=localhost\\) is expired" \
    "expired server certificate explained"

# --- no TLS server there ------------------------------------------------------------

PORT=$(free_port) || bail_out "no free TCP port"
tool probe "127.0.0.1:$PORT" --ca "$T/ca.crt" --timeout 5
tool_rc 1 "closed port: exit 1"
file_like "$RUN_OUT" "^FAIL connect: connection refused by 127.0.0.1:$PORT" \
    "closed port: connection refused"

# A server that accepts the connection and never answers.
PORT=$(free_port) || bail_out "no free TCP port"
bg_start silent python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
print("LISTEN", flush=True)
c, _ = s.accept()
time.sleep(30)' "$PORT"
SPID=$BG_PID
if wait_for_line "$T/silent.out" '^LISTEN' "$SPID" 20; then
    start=$SECONDS
    tool probe "127.0.0.1:$PORT" --ca "$T/ca.crt" --timeout 2
    took=$((SECONDS - start))
    tool_rc 1 "silent server: exit 1"
    file_like "$RUN_OUT" '^FAIL handshake: no TLS handshake within 2 s' \
        "silent server: handshake timeout explained"
    if [ "$took" -le 8 ]; then
        pass "silent server: the probe gives up after its timeout (${took}s)"
    else
        fail "silent server: the probe gives up after its timeout" "took ${took}s"
    fi
else
    skip_n 3 "the silent test server did not start" "silent server"
fi
bg_stop "$SPID"

# A server that answers in plain HTTP.
PORT=$(free_port) || bail_out "no free TCP port"
bg_start http python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
print("LISTEN", flush=True)
c, _ = s.accept()
c.recv(4096)
c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
c.close()' "$PORT"
SPID=$BG_PID
if wait_for_line "$T/http.out" '^LISTEN' "$SPID" 20; then
    tool probe "127.0.0.1:$PORT" --ca "$T/ca.crt"
    tool_rc 1 "plain HTTP server: exit 1"
    file_like "$RUN_OUT" "the server does not speak TLS on port $PORT" \
        "plain HTTP server: not TLS"
else
    skip_n 2 "the HTTP test server did not start" "plain HTTP server"
fi
bg_stop "$SPID"

# --- nginx: the verdict comes with the first request ----------------------------------

if command -v nginx >/dev/null 2>&1 && [ "$(id -u)" = 0 ] \
    && keyref_build "$(key_uri srv)" "$T/srv.keyref.pem"; then
    D=$T/ngx
    nginx_prefix "$D"
    NPORT=$(free_port) || bail_out "no free TCP port"
    {
        printf 'worker_processes 1;\nuser root;\nenv SOFTHSM2_CONF;\n'
        printf 'error_log %s/logs/error.log info;\n' "$D"
        printf 'events { worker_connections 64; }\nhttp {\n'
        nginx_http_paths "$D"
        cat <<EOF
    access_log $D/logs/access.log;
    server {
        listen 127.0.0.1:$NPORT ssl;
        ssl_certificate        $T/srv.crt;
        ssl_certificate_key    $T/srv.keyref.pem;
        ssl_client_certificate $T/ca.crt;
        ssl_verify_client      on;
        location / { return 200 "hello\n"; }
    }
}
EOF
    } >"$D/nginx.conf"
    mapfile -t cmd < <(nginx_cmd "$D" 'daemon off; master_process on;')
    bg_start nginx env OPENSSL_CONF="$T/openssl.cnf" "${cmd[@]}"
    NGX_BG=$BG_PID
    NGX_MASTER=
    for ((i = 0; i < 300; i++)); do
        [ -s "$D/nginx.pid" ] && [ -n "$(nginx_workers "$(cat "$D/nginx.pid")")" ] && break
        kill -0 "$NGX_BG" 2>/dev/null || break
        sleep 0.1
    done
    [ -s "$D/nginx.pid" ] && NGX_MASTER=$(cat "$D/nginx.pid")
fi
if [ -n "${NGX_MASTER:-}" ]; then
    NG=("127.0.0.1:$NPORT" --servername localhost --ca "$T/ca.crt" --timeout 10)
    tool probe "${NG[@]}" --http "${CLI[@]}"
    tool_rc 0 "nginx, --http, our certificate: exit 0"
    file_like "$RUN_OUT" '^ok +http: HTTP/1.1 200 OK' "nginx: the request is served"

    OTHER=(--key "$(key_uri cli)" --cert "$T/cli-other.crt" "${P[@]}")
    tool probe "${NG[@]}" "${OTHER[@]}"
    tool_rc 0 "nginx, a certificate of another CA, no --http: exit 0 (a warning)"
    file_like "$RUN_OUT" '^warn client certificate: .*ours is issued by CN=Other CA; the server accepts client certificates from: CN=p11id Probe CA' \
        "nginx, another CA: the CA names of the request betray it"

    tool probe "${NG[@]}" --http "${OTHER[@]}"
    tool_rc 1 "nginx, a certificate of another CA, --http: exit 1"
    file_like "$RUN_OUT" 'FAIL http: the server does not trust the CA that signed our certificate \(HTTP 400 "The SSL certificate error"\)' \
        "nginx, another CA: HTTP 400 explained"

    tool probe "${NG[@]}" --http
    tool_rc 1 "nginx, no client certificate, --http: exit 1"
    file_like "$RUN_OUT" 'we sent none \(HTTP 400 "No required SSL certificate was sent"\)' \
        "nginx, no certificate: HTTP 400 explained"
else
    skip_n 8 "no nginx, not root, or nginx did not start" "probe against nginx"
fi
nginx_stop

# --- JSON, usage, PIN ----------------------------------------------------------------

probe json 1 "--json of a failure" --json --ca "$T/ca.crt" "${CLI[@]}" \
    -- -cert "$T/srv.crt" -CAfile "$T/otherca.crt" -Verify 1 \
    -verify_return_error -tls1_3
is "$(json_get "$RUN_OUT" 'd["failure"]')" client-ca-unknown \
    "--json: the failure class"
is "$(json_get "$RUN_OUT" 'd["alert_received"]')" 48 "--json: the alert"
is "$(json_get "$RUN_OUT" 'd["ok"]')" false "--json: ok is false"

probe jsonok 0 "--json of a success" --json --ca "$T/ca.crt" "${CLI[@]}" \
    -- "${MTLS[@]}"
is "$(json_get "$RUN_OUT" '[d["ok"], d["accepted"], d["failure"]]')" \
    '[true, true, null]' "--json: accepted, no failure"

tool probe 127.0.0.1:1 --cert "$T/cli.crt"
tool_rc 2 "--cert without --key: exit 2"
tool probe 127.0.0.1:1 --tls 1.1
tool_rc 2 "--tls 1.1: exit 2"
tool probe 127.0.0.1:notaport
tool_rc 2 "a port that is not a number: exit 2"

printf '9999\n' >"$T/wrong.pin"
tool probe 127.0.0.1:1 --key "$(key_uri cli)" --cert "$T/cli.crt" \
    --pin-file "$T/wrong.pin"
tool_rc 3 "wrong PIN for our key: exit 3"
run_err_like 'PIN incorrect' "wrong PIN: says PIN incorrect"

done_testing
