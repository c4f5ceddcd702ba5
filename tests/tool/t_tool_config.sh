#!/usr/bin/env bash
# t_tool_config.sh: the snippets p11id config prints work as printed: the
# openssl.cnf (used by an openssl s_client whose key is on the token, the
# command taken from the snippet's own comment), the curl command line and
# the Python client against openssl s_server -www, and the nginx server
# block, started and then probed with p11id probe. Each snippet names the
# key as the application needs (key reference file or pkcs11: URI), says how
# to make the files that are missing, and never holds a PIN.
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
ca_make "$(key_uri ca)" "$T/ca.crt" "/CN=p11id Config CA" \
    || bail_out "cannot make the CA certificate"
csr_make "$(key_uri srv)" /CN=localhost "$T/srv.csr" || bail_out "srv CSR"
csr_make "$(key_uri cli)" /CN=client "$T/cli.csr" || bail_out "cli CSR"
cert_issue "$T/ca.crt" "$(key_uri ca)" "$T/srv.csr" server "$T/srv.crt" \
    || bail_out "cannot issue srv.crt"
cert_issue "$T/ca.crt" "$(key_uri ca)" "$T/cli.csr" client "$T/cli.crt" \
    || bail_out "cannot issue cli.crt"
keyref_build "$(key_uri cli)" "$T/cli.keyref.pem" || bail_out "cli keyref"
keyref_build "$(key_uri srv)" "$T/srv.keyref.pem" || bail_out "srv keyref"
CONF=$T/p11id.cnf
ALL_OUT=()
T_TIMEOUT=60
export T_TIMEOUT

# cfg APP KEY [ARGS...]: p11id config; its output is kept for the PIN check.
cfg()
{
    tool config "$@"
    ALL_OUT+=("$RUN_OUT" "$RUN_ERR")
}

# www NAME S_SERVER_ARGS...: openssl s_server -www (mutual TLS, key on the
# token) on a free port; PORT and SPID set.
www()
{
    local name=$1
    shift
    PORT=$(free_port) || bail_out "no free TCP port"
    bg_start "$name" openssl s_server -accept "127.0.0.1:$PORT" -naccept 1 \
        -www -cert "$T/srv.crt" -key "$(key_uri srv)" -CAfile "$T/ca.crt" \
        -Verify 1 -verify_return_error "$@"
    SPID=$BG_PID
    wait_for_line "$T/$name.out" '^ACCEPT' "$SPID" 60 && return 0
    diag_file "$T/$name.err"
    bg_stop "$SPID"
    return 1
}

# --- openssl ------------------------------------------------------------------------

# The server first: the snippet's example command names its port.
www ossl || bail_out "s_server does not start"
cfg openssl "$(key_uri cli)" --pin-file "$T/pin.txt" --cert "$T/cli.crt" \
    --ca "$T/ca.crt" --openssl-conf "$CONF" --host 127.0.0.1 --port "$PORT"
tool_rc 0 "config openssl: exit 0"
cp "$RUN_OUT" "$CONF"
file_like "$CONF" "^module = ${P11ID_PROVIDER_SO//./\\.}\$" \
    "openssl.cnf: the provider module"
file_like "$CONF" "^pkcs11-module-path = ${SOFTHSM_MODULE//./\\.}\$" \
    "openssl.cnf: the PKCS#11 module (from P11ID_MODULE)"
file_like "$CONF" "^pin-source = file:$T/pin\\.txt\$" \
    "openssl.cnf: pin-source names the PIN file"
file_like "$CONF" '^default = default_sect$' \
    "openssl.cnf: the default provider stays active"

OPENSSL_CONF=$CONF run openssl list -providers
run_ok_like 'name: *p11id' "the printed openssl.cnf activates p11id"

# The s_client command of the snippet's comment, run as printed.
cmd=$(sed -n 's/^#   \(OPENSSL_CONF=.* openssl s_client .*\)$/\1/p' "$CONF")
if [ -n "$cmd" ]; then
    run bash -c "$cmd -verify_return_error"
    bg_wait "$SPID" 20
    run_ok "the printed s_client command does mutual TLS with the token key"
    file_like "$T/ossl.err" '^depth=0 CN = client' \
        "s_server verified the client's certificate"
else
    bg_stop "$SPID"
    fail "the printed s_client command does mutual TLS with the token key" \
        "no s_client line in the snippet"
    skip "no handshake" "s_server verified the client's certificate"
fi

# --- curl -----------------------------------------------------------------------------

if command -v curl >/dev/null 2>&1 && www curl; then
    cfg curl "$(key_uri cli)" --cert "$T/cli.crt" --ca "$T/ca.crt" \
        --keyfile "$T/cli.keyref.pem" --openssl-conf "$CONF" --host localhost \
        --port "$PORT"
    tool_rc 0 "config curl: exit 0"
    file_unlike "$RUN_OUT" 'does not exist' \
        "curl: no note about missing files when they all exist"
    cmd=$(grep -v '^#' "$RUN_OUT" | grep 'curl ')
    run bash -c "$cmd --max-time 20 --silent --show-error"
    bg_wait "$SPID" 20
    run_ok_like 'Ciphers supported|s_server' \
        "the printed curl command fetches a page with the token key"
else
    skip_n 3 "no curl, or s_server did not start" "config curl"
fi

# --- python ---------------------------------------------------------------------------

if www python; then
    cfg python "$(key_uri cli)" --cert "$T/cli.crt" --ca "$T/ca.crt" \
        --keyfile "$T/cli.keyref.pem" --openssl-conf "$CONF" --host localhost \
        --port "$PORT"
    tool_rc 0 "config python: exit 0"
    cp "$RUN_OUT" "$T/client.py"
    OPENSSL_CONF=$CONF run "$APP_PY" "$T/client.py"
    bg_wait "$SPID" 20
    run_ok_like '^200$' "the printed Python client gets 200 with the token key"
else
    skip_n 2 "s_server did not start" "config python"
fi

# --- nginx, then probed ------------------------------------------------------------------

cfg nginx "$(key_uri srv)" --cert "$T/srv.crt" --ca "$T/ca.crt" \
    --keyfile "$T/srv.keyref.pem" --openssl-conf "$CONF" --host localhost
tool_rc 0 "config nginx: exit 0"
file_like "$RUN_OUT" "^    ssl_certificate_key +\"$T/srv\\.keyref\\.pem\";" \
    "nginx: ssl_certificate_key is the key reference file"
file_like "$RUN_OUT" '^env SOFTHSM2_CONF;' "nginx: env SOFTHSM2_CONF kept"
file_like "$RUN_OUT" '^    ssl_verify_client +on;' "nginx: client certificates required"
NGX_SNIPPET=$RUN_OUT

if command -v nginx >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    PORT=$(free_port) || bail_out "no free TCP port"
    cfg nginx "$(key_uri srv)" --cert "$T/srv.crt" --ca "$T/ca.crt" \
        --keyfile "$T/srv.keyref.pem" --openssl-conf "$CONF" --host localhost \
        --port "$PORT"
    D=$T/ngx
    nginx_prefix "$D"
    {
        printf 'worker_processes 1;\nuser root;\nerror_log %s/logs/error.log info;\n' "$D"
        awk '/^# --- main context/ { on = 1; next } /^# --- inside http/ { on = 0 } on' "$RUN_OUT"
        printf 'events { worker_connections 64; }\nhttp {\n'
        nginx_http_paths "$D"
        printf '    access_log %s/logs/access.log;\n' "$D"
        awk '/^# --- inside http/ { on = 1; next } on' "$RUN_OUT"
        printf '}\n'
    } >"$D/nginx.conf"
    mapfile -t cmd < <(nginx_cmd "$D" 'daemon off; master_process on;')
    bg_start nginx env OPENSSL_CONF="$CONF" "${cmd[@]}"
    NGX_BG=$BG_PID
    NGX_MASTER=
    for ((i = 0; i < 300; i++)); do
        [ -s "$D/nginx.pid" ] && [ -n "$(nginx_workers "$(cat "$D/nginx.pid")")" ] && break
        kill -0 "$NGX_BG" 2>/dev/null || break
        sleep 0.1
    done
    [ -s "$D/nginx.pid" ] && NGX_MASTER=$(cat "$D/nginx.pid")
    if [ -n "$NGX_MASTER" ]; then
        pass "nginx starts with the printed server block and openssl.cnf"
        tool probe "127.0.0.1:$PORT" --servername localhost --ca "$T/ca.crt" \
            --key "$(key_uri cli)" --cert "$T/cli.crt" --pin-file "$T/pin.txt"
        run_ok_like '^result: mutual TLS works' \
            "p11id probe: mutual TLS with that nginx works"
    else
        fail "nginx starts with the printed server block and openssl.cnf"
        diag_file "$D/nginx.conf" 40
        diag_file "$T/nginx.err"
        diag_file "$D/logs/error.log"
        skip "nginx did not start" "p11id probe: mutual TLS with that nginx works"
    fi
    nginx_stop
else
    skip_n 2 "no nginx, or not root (the test's token files are root's)" \
        "nginx with the printed configuration"
fi

# --- httpd, missing files, PINs, bad input -------------------------------------------------

cfg httpd "$(key_uri srv)" --cert "$T/srv.crt" --ca "$T/ca.crt" \
    --openssl-conf "$CONF"
tool_rc 0 "config httpd: exit 0"
file_like "$RUN_OUT" "^    SSLCertificateKeyFile \"pkcs11:token=$TOKEN;object=srv;type=private\"\$" \
    "httpd: SSLCertificateKeyFile takes the pkcs11: URI"
file_like "$RUN_OUT" '^    SSLVerifyClient require$' "httpd: client certificates required"

cfg curl "$(key_uri cli)" --keyfile "$T/nothere.keyref.pem"
tool_rc 0 "config curl with files that do not exist: exit 0"
file_like "$RUN_OUT" "^#   p11id keyfile 'pkcs11:token=$TOKEN;object=cli;type=private' -o $T/nothere\\.keyref\\.pem\$" \
    "a missing key reference file: the command that writes it"
file_like "$RUN_OUT" '^#   p11id config openssl .* > /etc/p11id/openssl-p11id\.cnf$' \
    "a missing openssl.cnf: the command that writes it"
file_like "$RUN_OUT" '/etc/p11id/cli\.crt does not exist' \
    "default paths are named after the key"

cfg openssl "$(key_uri cli)?pin-value=$PIN"
tool_rc 0 "a URI with pin-value: exit 0"
run_err_like "pin-value is left out" "pin-value: a warning says it is left out"
file_like "$RUN_OUT" '^pin-source = file:/etc/p11id/p11id-test\.pin$' \
    "no --pin-file: pin-source is a PIN file named after the token"

PINVAR=whatever cfg openssl "$(key_uri cli)" --pin-env PINVAR
file_like "$RUN_OUT" '^pin-source = env:PINVAR$' "--pin-env: pin-source env:"

cfg openssl "pkcs11:token=$TOKEN;object=cli;type=cert"
tool_rc 1 "a certificate URI: exit 1"
run_err_like 'does not name a private key' "a certificate URI: says why"
cfg apache2000 "$(key_uri cli)"
tool_rc 2 "an unknown application: exit 2"
cfg openssl "pkcs11:token=$TOKEN;bogus=1"
tool_rc 1 "a URI with an unknown attribute: exit 1"
run_err_like 'bogus' "an unknown attribute is named"

leaked=
for f in "${ALL_OUT[@]}"; do
    grep -qF -- "$PIN" "$f" 2>/dev/null && leaked="$leaked ${f##*/}"
done
is "$leaked" "" "no snippet or message holds the PIN"

done_testing
