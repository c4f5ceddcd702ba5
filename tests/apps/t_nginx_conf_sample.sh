#!/usr/bin/env bash
# t_nginx_conf_sample.sh: conf/nginx-p11id.conf and conf/openssl-p11id-server.cnf
# work as shipped, with only their paths and ports replaced: `nginx -t`
# loads the key, the workers run as www-data (the token's files theirs, the
# PIN file root's, 0600) and serve mutual TLS, the backend gets the client's
# DN, verification status and serial, and a client without a certificate
# gets 400.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/apps.sh
. "$(dirname "$0")/../lib/apps.sh"
require_cmd nginx curl openssl pkcs11-tool softhsm2-util python3
require_file "$TOP_SRCDIR/conf/nginx-p11id.conf" "conf/nginx-p11id.conf"
WUSER=www-data
id "$WUSER" >/dev/null 2>&1 || { echo "1..0 # SKIP no user $WUSER"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP nginx's workers switch user: run as root"; exit 0; }
apps_setup
softhsm_reset_on_fork true
apps_pki rsa2048 ec256

# /etc/p11id of the sample, under $T.
E=$T/etc
mkdir -p "$E"
cp "$CA_CRT" "$E/ca.crt"
cp "$SRV_CRT" "$E/server.crt"
cp "$SRV_REF" "$E/server.keyref.pem"
install -m 0600 "$T/pin.txt" "$E/token.pin"
sed -e "s|/usr/lib/x86_64-linux-gnu/ossl-modules/p11id.so|$P11ID_PROVIDER_SO|" \
    -e "s|/usr/lib/softhsm/libsofthsm2.so|$SOFTHSM_MODULE|" \
    -e "s|/etc/p11id/|$E/|g" \
    -e "s|^# log-file = .*|log-file = $TRACE|" -e 's|^# log-level = 2|log-level = 2|' \
    "$TOP_SRCDIR/conf/openssl-p11id-server.cnf" >"$E/openssl-p11id-server.cnf"
cp "$E/openssl-p11id-server.cnf" "$T/server.cnf"    # what nginx_start hands nginx
# The workers (www-data) use the token's files.
chmod 711 "$T"
chown -R "$WUSER:" "$T/tokens"
chmod 644 "$SOFTHSM2_CONF"

D=$T/ngx
nginx_prefix "$D"
PORT=$(free_port) || bail_out "no free port"
PORT_BE=$(free_port) || bail_out "no free port"
# The sample, its paths and ports replaced; nginx's temp files and a
# backend that echoes the headers added to http{}.
awk -v d="$D" -v e="$E/" -v port="$PORT" -v be="$PORT_BE" '
    /^pid / { next }
    { gsub("/etc/p11id/", e); gsub("/var/log/nginx/error.log", d "/logs/error.log")
      gsub("/var/log/nginx/p11id-access.log", d "/logs/access.log")
      gsub("127.0.0.1:8080", "127.0.0.1:" be)
      sub("listen 443 ssl;", "listen 127.0.0.1:" port " ssl;") }
    { print }
    /^http {/ {
        print "    client_body_temp_path " d "/tmp/body;"
        print "    proxy_temp_path " d "/tmp/proxy;"
        print "    fastcgi_temp_path " d "/tmp/fastcgi;"
        print "    uwsgi_temp_path " d "/tmp/uwsgi;"
        print "    scgi_temp_path " d "/tmp/scgi;"
        print "    server {"
        print "        listen 127.0.0.1:" be ";"
        print "        location / {"
        print "            default_type text/plain;"
        print "            return 200 \"s_dn=$http_x_ssl_client_s_dn\\nverify=$http_x_ssl_client_verify\\nserial=$http_x_ssl_client_serial\\n\";"
        print "        }"
        print "    }"
    }' "$TOP_SRCDIR/conf/nginx-p11id.conf" >"$D/nginx.conf"
if grep -q '/etc/p11id\|/var/log/nginx\|listen 443' "$D/nginx.conf"; then
    bail_out "the sample still names system paths after replacement"
fi

mapfile -t CMD < <(nginx_cmd "$D" "" -t)
run env OPENSSL_CONF="$E/openssl-p11id-server.cnf" "${CMD[@]}"
run_ok_like 'test is successful' "nginx -t with the sample (loads the key through p11id)"

# --- what a key that does not load looks like (docs/nginx.md) ---------------------------
run env OPENSSL_CONF="$T/default-only.cnf" "${CMD[@]}"
run_err_like 'cannot load certificate key .*server\.keyref\.pem.*No supported data to decode' \
    "nginx -t without the provider: 'No supported data to decode'"
printf 'wrong-pin-0000\n' >"$E/wrong.pin"
sed "s|$E/token.pin|$E/wrong.pin|" "$E/openssl-p11id-server.cnf" >"$E/wrong.cnf"
run env OPENSSL_CONF="$E/wrong.cnf" "${CMD[@]}"
run_err_like 'cannot load certificate key .*p11id::PIN incorrect:C_Login: CKR_PIN_INCORRECT' \
    "nginx -t with a wrong PIN: 'p11id::PIN incorrect ... CKR_PIN_INCORRECT'"
# SoftHSM's own use of libcrypto (a missing rdrand engine, a failed decrypt
# with the wrong PIN) leaves errors in the queue that p11id hands on.
! grep -Eq 'rdrand|bad decrypt|DSO support' "$RUN_ERR"
point_ok $? "nginx -t with a wrong PIN: the error line carries p11id's errors, not the token module's internal OpenSSL noise"
sed '/^pin-source/d' "$E/openssl-p11id-server.cnf" >"$E/nopin.cnf"
run env OPENSSL_CONF="$E/nopin.cnf" "${CMD[@]}"
if [ "$RUN_RC" -ne 0 ] && ! run_crashed && grep -q 'cannot load certificate key' "$RUN_ERR"; then
    pass "nginx -t without pin-source and without a terminal: fails, does not hang"
else
    fail "nginx -t without pin-source and without a terminal: fails, does not hang" \
        "exit $RUN_RC"
    _run_diag
fi

WORKERS=$(nproc 2>/dev/null || echo 1)
nginx_start "$D" "$WORKERS" 120 || bail_out "nginx did not start with the sample"
pass "nginx starts with the sample configuration ($WORKERS workers: worker_processes auto)"
mapfile -t WPIDS < <(nginx_workers "$NGX_MASTER")
users=$(ps -o user= -p "$(IFS=,; echo "${WPIDS[*]}")" | sort -u | tr -d ' ')
is "$users" "$WUSER" "the workers run as $WUSER"
is "$(stat -c '%U %a' "$E/token.pin")" "root 600" "the PIN file is root's, mode 0600"

N=$((WORKERS * 20))
run curl -sS --max-time 60 --cacert "$CA_CRT" --cert "$CLI_CRT" --key "$CLI_REF" \
    --no-sessionid -H 'Connection: close' -w 'status=%{http_code}\n' \
    "https://127.0.0.1:$PORT/[1-$N]"
is "$(grep -c '^status=200$' "$RUN_OUT")" "$N" "$N requests with the client key on a token: all 200"
is "$(grep -c '^verify=SUCCESS$' "$RUN_OUT")" "$N" "the backend got X-SSL-Client-Verify SUCCESS"
is "$(grep -m1 '^s_dn=' "$RUN_OUT")" "s_dn=$CLI_DN" "the backend got the client's DN"
is "$(grep -m1 '^serial=' "$RUN_OUT")" "serial=$CLI_SERIAL" "the backend got the client's serial"
# (Without reuseport nginx may give a short burst to one worker; the
# worker tests of t_nginx_mtls.sh make every worker serve.)
diag "requests per worker: $(sed -n 's/.* pid=\([0-9]*\)$/\1/p' "$D/logs/access.log" | sort | uniq -c | tr -s ' \n' ' ')"
n=$(grep -c 'fork detected: re-initialising' "$TRACE")
if [ "$n" -ge 1 ]; then
    pass "trace: workers (as $WUSER) re-initialised the module and logged in ($n)"
else
    fail "trace: workers (as $WUSER) re-initialised the module and logged in"
    diag_file "$TRACE"
fi
file_like "$D/logs/access.log" 'verify=SUCCESS dn="CN=client-1,OU=apps,O=p11id Test" serial=' \
    "the access log of the sample records the client"

https_get nocert "https://127.0.0.1:$PORT/"
is "$HTTP_CODE" 400 "no client certificate: 400"
file_like "$T/nocert.body" 'No required SSL certificate was sent' \
    "no client certificate: 'No required SSL certificate was sent'"
file_unlike "$D/logs/error.log" 'p11id|\[(crit|alert|emerg)\]' "error log: no p11id error, nothing critical"
pin_nowhere "the PIN is only in the PIN file"

nginx_signal "$D" quit
bg_wait "$NGX_BG" 30
is "$BG_RC" 0 "nginx exits 0"
NGX_MASTER=
done_testing
