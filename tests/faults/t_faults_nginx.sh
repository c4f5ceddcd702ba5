#!/usr/bin/env bash
# t_faults_nginx.sh: nginx serving mutual TLS with its key on a token behind
# the fault module, under steady load from a client loop (Python, sequential
# requests, a full handshake each: every request is a signature on the
# token), while faults are injected through the live faultmod
# configuration: every session invalidated, a logout underneath, a burst of
# device errors, the token removed and reinserted, module restarts (sessions
# gone; CKR_CRYPTOKI_NOT_INITIALIZED). The failed requests of each fault are
# counted: lost sessions, logouts and restarts cost none, a device-error
# burst at most its length per worker; after a recovery window (2 s after
# the fault ends) no request fails. Then a worker is killed: the re-spawned
# worker serves and no request fails after the window.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/apps.sh
. "$(dirname "$0")/../lib/apps.sh"
# shellcheck source=tests/faults/faults_lib.sh
. "$(dirname "$0")/faults_lib.sh"
require_cmd nginx openssl pkcs11-tool softhsm2-util python3
require_file "$FAULTMOD" "the fault module (make check builds it)"
apps_setup
# Workers start SoftHSM afresh, as most tokens' modules do in a child.
softhsm_reset_on_fork true
fm_setup
TRACE=$T/p11id.trace
write_openssl_conf "$T/server.cnf" "pkcs11-module-path=$FAULTMOD" \
    "log-file=$TRACE" log-level=1

# The CA and the server key on tokens; the client's key in software.
key_gen ca ec256 "$TOKEN_CA" || bail_out "cannot generate the CA key"
key_gen srv ec256 "$TOKEN_WEB" || bail_out "cannot generate the server key"
CA_CRT=$T/ca.crt
ca_make "$(key_uri ca)" "$CA_CRT" "/O=p11id Test/CN=p11id Fault CA" \
    || bail_out "cannot make the CA certificate"
SRV_CRT=$T/srv.crt
identity_issue srv server /CN=localhost "$SRV_CRT" \
    || bail_out "cannot issue the server certificate"
SRV_REF=$T/srv.keyref.pem
keyref_write srv "$SRV_REF" || bail_out "cannot write $SRV_REF"
ossl_sw req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/cli.key" -subj "/O=p11id Test/CN=load-client" -out "$T/cli.csr"
[ "$RUN_RC" -eq 0 ] || bail_out "cannot make the client's CSR"
cert_issue "$CA_CRT" "$(key_uri ca)" "$T/cli.csr" client "$T/cli.crt" \
    || bail_out "cannot certify the client"

D=$T/ngx
nginx_prefix "$D"
PORT=$(free_port) || bail_out "no free port"
{
    cat <<EOF
# nginx configuration of one p11id fault test run.
worker_processes 2;
user root;
# SoftHSM reads SOFTHSM2_CONF when a worker initialises it again after fork;
# the fault module reads its configuration's name from the environment.
env SOFTHSM2_CONF;
env P11ID_FAULTMOD_CONF;
error_log $D/logs/error.log info;
events { worker_connections 256; }
http {
EOF
    nginx_http_paths "$D"
    cat <<EOF
    log_format faults '\$pid \$status \$ssl_client_verify';
    access_log $D/logs/access.log faults;
    server {
        listen 127.0.0.1:$PORT ssl reuseport;
        ssl_certificate        $SRV_CRT;
        ssl_certificate_key    $SRV_REF;
        ssl_client_certificate $CA_CRT;
        ssl_verify_client      on;
        # Every connection a full handshake: every request a signature.
        ssl_session_cache      off;
        ssl_session_tickets    off;
        location / {
            default_type text/plain;
            return 200 "ok \$pid\n";
        }
    }
}
EOF
} >"$D/nginx.conf"

nginx_start "$D" 2 240 || bail_out "nginx did not start"
WORKERS_START=$(nginx_workers "$NGX_MASTER" | tr '\n' ' ')

# --- the load -------------------------------------------------------------------------
LOAD=$T/load.log
PHASE=$T/phase
set_phase()
{
    printf '%s\n' "$1" >"$PHASE.tmp"
    mv -f "$PHASE.tmp" "$PHASE"
}
set_phase warmup
OPENSSL_CONF="$T/default-only.cnf" T_TIMEOUT=200 bg_start load "$APP_PY" \
    "$TOP_SRCDIR/tests/faults/mtls_load.py" "$PORT" "$CA_CRT" "$T/cli.crt" \
    "$T/cli.key" "$PHASE" "$LOAD" "$T/stop" 180
LOAD_PID=$BG_PID
sleep 2

# count PHASE ok|fail: requests of a phase.
count()
{
    awk -v p="$1" -v r="$2" '$1 == p && $2 == r { n++ } END { print n + 0 }' \
        "$LOAD"
}

# reasons PHASE: the first failure reasons of a phase, for diagnostics.
reasons()
{
    awk -v p="$1" '$1 == p && $2 == "fail"' "$LOAD" | cut -d' ' -f4- \
        | sort | uniq -c | sort -rn | head -n 3
}

is "$(count warmup fail)" 0 "warmup: no request failed ($(count warmup ok) served)"

RESULTS=()
# fault NAME SECONDS END-LINE LINES...: the faults LINES for SECONDS, then
# the configuration END-LINE ("" for none); 2 s of recovery, then 2 s after
# which must see no failure. Records the failed requests per phase.
fault()
{
    local name=$1 secs=$2 endline=$3 f r a
    shift 3
    set_phase "$name:fault"
    fm_set "$@"
    sleep "$secs"
    if [ -n "$endline" ]; then fm_set "$endline"; else fm_set; fi
    set_phase "$name:recovery"
    sleep 2
    set_phase "$name:after"
    sleep 2
    f=$(count "$name:fault" fail)
    r=$(count "$name:recovery" fail)
    a=$(count "$name:after" fail)
    RESULTS+=("$name: failed during fault $f/$(($(count "$name:fault" ok) + f)), recovery window $r/$(($(count "$name:recovery" ok) + r)), after $a/$(($(count "$name:after" ok) + a))")
    if [ "$(count "$name:after" ok)" -gt 0 ] && [ "$a" -eq 0 ]; then
        pass "$name: no request fails 2 s after the fault ended ($f failed during it, $r in the window)"
    else
        fail "$name: no request fails 2 s after the fault ended" \
            "failed after: $a, served after: $(count "$name:after" ok)"
        reasons "$name:after" | diag "$(cat)"
    fi
    FAULT_FAILED=$((f + r))
}

# expect_failed NAME MAX: at most MAX requests failed around the fault.
expect_failed()
{
    if [ "$FAULT_FAILED" -le "$2" ]; then
        pass "$1: $FAULT_FAILED requests failed during the fault and its window (at most $2)"
    else
        fail "$1: at most $2 requests failed during the fault" \
            "$FAULT_FAILED failed"
        reasons "$1:fault" | diag "$(cat)"
        reasons "$1:recovery" | diag "$(cat)"
    fi
}

fault invalidate 1 '' invalidate-sessions
expect_failed invalidate 0
fault logout 1 '' logout
expect_failed logout 0
fault restart 1 '' restart
expect_failed restart 0
fault restart-finalized 1 '' 'restart finalized'
expect_failed restart-finalized 0
fault device-errors 1 '' 'fail C_Sign from 1 times 3 CKR_DEVICE_ERROR'
# 3 per worker that took a request during the fault, no more.
expect_failed device-errors 6
if grep -q 'C_Sign call .*: injected CKR_DEVICE_ERROR' "$T/faultmod.log"; then
    pass "device-errors: the fault module really failed C_Sign"
else
    fail "device-errors: the fault module really failed C_Sign"
fi
fault removed 1.5 insert-token remove-token
if [ "$(count removed:fault fail)" -gt 0 ]; then
    pass "removed: requests fail while the token is out ($(count removed:fault fail))"
else
    fail "removed: requests fail while the token is out" \
        "none failed: $(count removed:fault ok) served"
fi
if grep -q 'is not present in its slot.*removed' "$D/logs/error.log" "$TRACE" 2>/dev/null; then
    pass "removed: nginx's error log says the token was removed"
else
    fail "removed: nginx's error log says the token was removed"
    diag_file "$D/logs/error.log" 5
fi

# --- a worker killed ------------------------------------------------------------------
set_phase kill:fault
victim=$(nginx_workers "$NGX_MASTER" | head -n 1)
kill -KILL "$victim" 2>/dev/null
respawned=
for ((i = 0; i < 50; i++)); do
    respawned=$(nginx_workers "$NGX_MASTER" | grep -vx "$victim" \
        | grep -vxF -f <(tr ' ' '\n' <<<"$WORKERS_START" | sed '/^$/d'))
    [ -n "$respawned" ] && break
    sleep 0.1
done
if [ -n "$respawned" ]; then
    pass "a killed worker ($victim) is re-spawned ($respawned)"
else
    fail "a killed worker ($victim) is re-spawned"
fi
set_phase kill:recovery
sleep 2
set_phase kill:after
sleep 3
touch "$T/stop"
bg_wait "$LOAD_PID" 30
k=$(count kill:fault fail)
kr=$(count kill:recovery fail)
ka=$(count kill:after fail)
RESULTS+=("kill-worker: failed during fault $k, recovery window $kr, after $ka/$(($(count kill:after ok) + ka))")
if [ "$(count kill:after ok)" -gt 0 ] && [ "$ka" -eq 0 ]; then
    pass "kill-worker: no request fails 2 s after the kill ($((k + kr)) failed before)"
else
    fail "kill-worker: no request fails 2 s after the kill" "failed: $ka"
    reasons kill:after | diag "$(cat)"
fi
if [ -n "$respawned" ] && awk -v p="$respawned" '$1 == p && $2 == 200 { f = 1 } END { exit !f }' \
    "$D/logs/access.log"; then
    pass "the re-spawned worker serves mutual TLS with the token key"
else
    fail "the re-spawned worker serves mutual TLS with the token key"
    diag "requests per pid: $(requests_by_pid "$D/logs/access.log" | tr '\n' ' ')"
fi

# --- what it cost -----------------------------------------------------------------------
total=$(wc -l <"$LOAD")
diag "requests: $total; C_Login per process: $(for f in "$FM_STATS"/stats.*; do
    printf '%s=%s ' "${f##*.}" "$(awk '$1 == "C_Login" { print $2 }' "$f")"; done)"
for r in "${RESULTS[@]}"; do
    diag "$r"
done
n_sig=$(grep -c 'exited on signal' "$D/logs/error.log")
n_kill=$(grep -c 'exited on signal 9' "$D/logs/error.log")
if [ "$n_sig" -eq 1 ] && [ "$n_kill" -eq 1 ]; then
    pass "no worker crashed (only the one killed on purpose exited on a signal)"
else
    fail "no worker crashed" "$(grep 'exited on signal' "$D/logs/error.log" | head -n 3)"
fi
nginx_stop

done_testing
