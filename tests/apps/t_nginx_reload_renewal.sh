#!/usr/bin/env bash
# t_nginx_reload_renewal.sh: a server identity renewed on the token (a new key
# generated on the token, a new certificate, a new key reference file moved
# over the old one) is picked up by `nginx -s reload` without dropping
# service: a client makes requests on new connections all through the
# renewal and the reload, and none fails; afterwards nginx serves the new
# certificate, signs with the new key in every new worker, and the old
# workers are gone.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/apps.sh
. "$(dirname "$0")/../lib/apps.sh"
require_cmd nginx curl openssl pkcs11-tool softhsm2-util python3
apps_setup
# SoftHSM's default: the renewal writes to the token while workers and the
# client run, and SoftHSM 2.6 with reset_on_fork = true can lose the token in
# a process that initialises while another writes (see t_httpd_mtls.sh).
softhsm_reset_on_fork false
apps_pki ec256 ec256

D=$T/ngx
nginx_prefix "$D"
PORT=$(free_port) || bail_out "no free port"
WORKERS=4
{
    cat <<EOF
worker_processes $WORKERS;
user root;
env SOFTHSM2_CONF;
error_log $D/logs/error.log info;
events { worker_connections 256; }
http {
EOF
    nginx_http_paths "$D"
    cat <<EOF
    log_format mtls '\$pid \$status \$ssl_client_verify \$ssl_session_reused';
    access_log $D/logs/access.log mtls;
    server {
        listen 127.0.0.1:$PORT ssl reuseport;
        ssl_certificate        $SRV_CRT;
        ssl_certificate_key    $SRV_REF;
        ssl_client_certificate $CA_CRT;
        ssl_verify_client      on;
        ssl_session_cache      off;
        ssl_session_tickets    off;
        location / {
            default_type text/plain;
            return 200 "worker=\$pid\nverify=\$ssl_client_verify\n";
        }
    }
}
EOF
} >"$D/nginx.conf"

nginx_start "$D" "$WORKERS" || bail_out "nginx did not start"
mapfile -t OLD < <(nginx_workers "$NGX_MASTER")
OLD_SERIAL=$(cert_serial "$SRV_CRT")
is "$(served_serial "$PORT")" "$OLD_SERIAL" "before: nginx serves the first certificate"

# --- the load: requests on new connections until told to stop ------------------------
# One curl per batch of 5 requests (each its own connection); one line per
# request: "status exitcode".
URL=https://127.0.0.1:$PORT
LOAD=$T/load.log
STOP=$T/load.stop
load_loop()
{
    local i=0
    while [ ! -e "$STOP" ] && [ $i -lt 2000 ]; do
        i=$((i + 1))
        LD_PRELOAD=${ASAN_PRELOAD:-${LD_PRELOAD:-}} \
            timeout 30 curl -s --max-time 10 --cacert "$CA_CRT" --cert "$CLI_CRT" \
                --key "$CLI_REF" --no-sessionid -H 'Connection: close' \
                -o /dev/null -w '%{http_code} %{exitcode}\n' "$URL/load/$i/[1-5]" \
                </dev/null >>"$LOAD" 2>>"$T/load.err"
    done
}
: >"$LOAD"
load_loop &
LOAD_PID=$!
T_PIDS+=("$LOAD_PID")

# wait_requests N: until the load made N requests in all (60 s at most).
wait_requests()
{
    local i
    for ((i = 0; i < 600; i++)); do
        [ "$(wc -l <"$LOAD")" -ge "$1" ] && return 0
        kill -0 "$LOAD_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
wait_requests 20 || diag "the load did not get going"

# --- renewal: new key on the token, new certificate, new key reference file -----------
key_gen srv2 ec256 "$TOKEN_WEB" || bail_out "cannot generate the new server key"
identity_issue srv2 server /CN=localhost "$T/srv2.crt" \
    || bail_out "cannot issue the new server certificate"
keyref_write srv2 "$T/srv2.keyref.pem" || bail_out "cannot write the new key reference"
NEW_SERIAL=$(cert_serial "$T/srv2.crt")
# In place of the old files (rename: nginx never reads a half-written file).
cp "$T/srv2.crt" "$SRV_CRT.new" && mv -f "$SRV_CRT.new" "$SRV_CRT"
cp "$T/srv2.keyref.pem" "$SRV_REF.new" && mv -f "$SRV_REF.new" "$SRV_REF"
ossl_sw asn1parse -in "$SRV_REF"
file_like "$RUN_OUT" 'object=srv2;' "the key reference file now names the new key"
before=$(wc -l <"$LOAD")

nginx_signal "$D" reload
run_ok "nginx -s reload"

# Until the master runs WORKERS new workers and the old ones have exited.
settled=no
for ((i = 0; i < 300; i++)); do
    olds=0
    for p in "${OLD[@]}"; do
        kill -0 "$p" 2>/dev/null && olds=$((olds + 1))
    done
    news=$(nginx_workers "$NGX_MASTER" | grep -cvxF -f <(printf '%s\n' "${OLD[@]}"))
    if [ "$olds" -eq 0 ] && [ "$news" -ge "$WORKERS" ]; then
        settled=yes
        break
    fi
    sleep 0.1
done
is "$settled" yes "after the reload: $WORKERS new workers, the old ones gone"
mapfile -t NEW < <(nginx_workers "$NGX_MASTER")
diag "old workers ${OLD[*]}; new workers ${NEW[*]}"
wait_requests $((before + 60)) || diag "the load slowed down"
touch "$STOP"
wait "$LOAD_PID"

total=$(wc -l <"$LOAD")
bad=$(grep -cv '^200 0$' "$LOAD")
diag "requests during the test: $total, of them during renewal and reload: $((total - before))"
if [ "$total" -ge $((before + 40)) ] && [ "$before" -ge 20 ]; then
    pass "the load ran before, during and after the reload ($total requests)"
else
    fail "the load ran before, during and after the reload" \
        "$before requests before the reload, $total in all"
fi
is "$bad" 0 "no request failed during the renewal and the reload"
[ "$bad" -eq 0 ] || { grep -v '^200 0$' "$LOAD" | sort | uniq -c | diag "$(cat)"; diag_file "$T/load.err"; }

# --- after: the new identity, in every new worker ---------------------------------------
is "$(served_serial "$PORT")" "$NEW_SERIAL" "after: nginx serves the new certificate"
[ "$NEW_SERIAL" != "$OLD_SERIAL" ] || fail "the renewal made a new serial"
: >"$D/logs/access.log"
run curl -sS --max-time 120 --cacert "$CA_CRT" --cert "$CLI_CRT" --key "$CLI_REF" \
    --no-sessionid -H 'Connection: close' -w 'status=%{http_code}\n' \
    "$URL/after/[1-100]"
is "$(grep -c '^status=200$' "$RUN_OUT")" 100 \
    "after: 100 requests on new connections, all 200 (the new key signs)"
all_served "${NEW[@]}" -- "$D/logs/access.log" \
    "after: every new worker served mutual TLS with the new key"
file_unlike "$D/logs/access.log" "^($(IFS='|'; echo "${OLD[*]}")) " \
    "after: no old worker served"
# The master decoded the key reference file again on reload; each new worker
# found the new key after fork.
n=$(grep -Ec "^[0-9.]+ \[$NGX_MASTER\] pem_decode: .*key reference" "$TRACE")
if [ "$n" -ge 2 ]; then
    pass "trace: the master read the key reference file again on reload"
else
    fail "trace: the master read the key reference file again on reload" \
        "$n pem_decode lines of the master ($NGX_MASTER)"
    diag_file "$TRACE"
fi
missing=
for p in "${NEW[@]}"; do
    grep -Eq "^[0-9.]+ \[$p\] .*object=srv2;" "$TRACE" || missing="$missing $p"
done
is "$missing" "" "trace: every new worker uses the new key (object=srv2)"
file_unlike "$D/logs/error.log" 'p11id|\[(crit|alert|emerg)\]' \
    "error log: no p11id error and nothing critical"
pin_nowhere "the PIN is in no file but the PIN file"

nginx_signal "$D" quit
bg_wait "$NGX_BG" 30
is "$BG_RC" 0 "nginx exits 0 after quit"
NGX_MASTER=
done_testing
