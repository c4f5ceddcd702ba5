#!/usr/bin/env bash
# t_nginx_mtls.sh: nginx 1.22 serves mutual TLS with its private key on a
# token, named by a key reference file in ssl_certificate_key. The master
# loads the key; 4 forked workers sign: 200 requests over new connections (no
# session resumption), and every worker serves some. The client (curl, its key
# on another token) is verified against ssl_client_certificate with
# ssl_verify_depth, and its subject DN, verification status and serial reach a
# backend in headers. Clients without a certificate, with one from another
# CA, or with a chain deeper than ssl_verify_depth are refused. The PIN comes
# from the provider's pin-source file and is written nowhere else.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/apps.sh
. "$(dirname "$0")/../lib/apps.sh"
require_cmd nginx curl openssl pkcs11-tool softhsm2-util python3
apps_setup
# Workers start SoftHSM afresh (as most tokens' modules do in a child) and
# need SOFTHSM2_CONF: the configuration keeps it with `env SOFTHSM2_CONF;`.
softhsm_reset_on_fork true
apps_pki rsa2048 ec256

# Two intermediate CAs under the token CA, and a client below them (software
# keys): leaf, inter2, inter1, root. OpenSSL counts levels from the leaf (0)
# to the trust anchor (3): ssl_verify_depth 2 takes this chain, 1 does not.
ossl_sw req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/inter1.key" -subj "/O=p11id Test/CN=p11id Intermediate 1" \
    -out "$T/inter1.csr"
[ "$RUN_RC" -eq 0 ] || bail_out "cannot make the intermediate CA's CSR"
cert_issue "$CA_CRT" "$(key_uri ca)" "$T/inter1.csr" ca "$T/inter1.crt" \
    || bail_out "cannot certify the intermediate CA"
ossl_sw req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/inter2.key" -subj "/O=p11id Test/CN=p11id Intermediate 2" \
    -out "$T/inter2.csr"
[ "$RUN_RC" -eq 0 ] || bail_out "cannot make the second intermediate's CSR"
ext_file ca "$T/inter2.ext"
ossl_sw x509 -req -in "$T/inter2.csr" -CA "$T/inter1.crt" -CAkey "$T/inter1.key" \
    -set_serial 776 -days 30 -extfile "$T/inter2.ext" -out "$T/inter2.crt"
[ "$RUN_RC" -eq 0 ] || bail_out "cannot certify the second intermediate"
ossl_sw req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/deep.key" -subj "/O=p11id Test/CN=deep-client" -out "$T/deep.csr"
[ "$RUN_RC" -eq 0 ] || bail_out "cannot make the deep client's CSR"
ext_file client "$T/deep.ext"
ossl_sw x509 -req -in "$T/deep.csr" -CA "$T/inter2.crt" -CAkey "$T/inter2.key" \
    -set_serial 777 -days 30 -extfile "$T/deep.ext" -out "$T/deep.crt"
[ "$RUN_RC" -eq 0 ] || bail_out "cannot certify the deep client"
cat "$T/deep.crt" "$T/inter2.crt" "$T/inter1.crt" >"$T/deep-chain.crt"

# --- nginx ----------------------------------------------------------------------------
D=$T/ngx
nginx_prefix "$D"
PORT=$(free_port) || bail_out "no free port"
PORT_D1=$(free_port) || bail_out "no free port"
PORT_BE=$(free_port) || bail_out "no free port"
WORKERS=4
{
    cat <<EOF
# nginx configuration of one p11id test run (see conf/nginx-p11id.conf).
worker_processes $WORKERS;
# The test runs as root and its token directory is root's: keep the workers
# root (production: a worker user that can read the token's files).
user root;
# SoftHSM reads SOFTHSM2_CONF when a worker initialises it again after fork.
env SOFTHSM2_CONF;
error_log $D/logs/error.log info;
events { worker_connections 256; }
http {
EOF
    nginx_http_paths "$D"
    cat <<EOF
    log_format mtls '\$pid \$status \$ssl_client_verify "\$ssl_client_s_dn" '
                    '\$ssl_client_serial \$ssl_session_reused \$server_port';
    access_log $D/logs/access.log mtls;

    # The backend: echoes what the TLS front passed on.
    server {
        listen 127.0.0.1:$PORT_BE;
        access_log $D/logs/backend.log;
        location / {
            default_type text/plain;
            return 200 "s_dn=\$http_x_ssl_client_s_dn\nverify=\$http_x_ssl_client_verify\nserial=\$http_x_ssl_client_serial\nworker=\$http_x_tls_worker\n";
        }
    }

    # The TLS front: key on the token, mutual TLS, up to 2 intermediate CAs.
    # reuseport: one listening socket per worker, so that the kernel spreads
    # the test's connections over all workers.
    server {
        listen 127.0.0.1:$PORT ssl reuseport;
        ssl_certificate        $SRV_CRT;
        ssl_certificate_key    $SRV_REF;
        ssl_client_certificate $CA_CRT;
        ssl_verify_client      on;
        ssl_verify_depth       2;
        # Every connection a full handshake: every request a signature.
        ssl_session_cache      off;
        ssl_session_tickets    off;
        location / {
            proxy_pass http://127.0.0.1:$PORT_BE;
            proxy_set_header X-SSL-Client-S-DN   \$ssl_client_s_dn;
            proxy_set_header X-SSL-Client-Verify \$ssl_client_verify;
            proxy_set_header X-SSL-Client-Serial \$ssl_client_serial;
            proxy_set_header X-TLS-Worker        \$pid;
        }
    }

    # The same identity, ssl_verify_depth 1: at most 1 intermediate CA.
    server {
        listen 127.0.0.1:$PORT_D1 ssl;
        ssl_certificate        $SRV_CRT;
        ssl_certificate_key    $SRV_REF;
        ssl_client_certificate $CA_CRT;
        ssl_verify_client      on;
        ssl_verify_depth       1;
        location / {
            default_type text/plain;
            return 200 "s_dn=\$ssl_client_s_dn\n";
        }
    }
}
EOF
} >"$D/nginx.conf"

if ! nginx_start "$D" "$WORKERS"; then
    fail "nginx starts with $WORKERS workers, its key a key reference file"
    bail_out "nginx did not start"
fi
pass "nginx starts with $WORKERS workers, its key a key reference file"
mapfile -t WPIDS < <(nginx_workers "$NGX_MASTER")
diag "master $NGX_MASTER, workers ${WPIDS[*]}"

URL=https://127.0.0.1:$PORT
CLIENT=(--cert "$CLI_CRT" --key "$CLI_REF")

# --- 200 requests, each on a new connection ------------------------------------------
N=200
: >"$D/logs/access.log"
run curl -sS --max-time 120 --cacert "$CA_CRT" "${CLIENT[@]}" --no-sessionid \
    -H 'Connection: close' -w 'status=%{http_code}\n' "$URL/req/[1-$N]"
cp "$RUN_OUT" "$T/many.out"
cp "$RUN_ERR" "$T/many.err"
ok200=$(grep -c '^status=200$' "$T/many.out")
is "$ok200" "$N" "$N requests over new connections: all answered 200"
[ "$ok200" = "$N" ] || { diag_file "$T/many.err"; diag_file "$D/logs/error.log"; }
is "$(grep -c ' \. [0-9]*$' "$D/logs/access.log")" "$N" \
    "no TLS session was resumed: every handshake signed on the token"
all_served "${WPIDS[@]}" -- "$D/logs/access.log" \
    "every one of the $WORKERS workers served mutual TLS"
diag "requests per worker: $(requests_by_pid "$D/logs/access.log" | tr '\n' ' ')"
is "$(awk '$3 == "SUCCESS"' "$D/logs/access.log" | wc -l)" "$N" \
    "\$ssl_client_verify is SUCCESS for all $N requests"

# Each worker initialised the module again after fork and logged in by itself
# (the PIN kept in memory: workers read no PIN file).
missing=
for p in "${WPIDS[@]}"; do
    grep -Eq "^[0-9.]+ \[$p\] .*fork detected: re-initialising" "$TRACE" \
        || missing="$missing $p"
done
if [ -z "$missing" ]; then
    pass "trace: every worker re-initialised the module after fork"
else
    fail "trace: every worker re-initialised the module after fork" \
        "no 'fork detected' line for:$missing"
    diag_file "$TRACE"
fi
if trace_pids 'key reference' | grep -qx "$NGX_MASTER"; then
    pass "trace: the master decoded the key reference file"
else
    fail "trace: the master decoded the key reference file"
    diag_file "$TRACE"
fi

# --- what reaches the backend ------------------------------------------------------------
https_get_ok hdrs "$URL/headers" "a request through the TLS front to the backend" \
    "${CLIENT[@]}"
is "$(body_value hdrs s_dn)" "$CLI_DN" "backend gets the client's subject DN"
is "$(body_value hdrs verify)" SUCCESS "backend gets the verification status"
is "$(body_value hdrs serial)" "$CLI_SERIAL" "backend gets the client's serial"
w=$(body_value hdrs worker)
if printf '%s\n' "${WPIDS[@]}" | grep -qx -- "$w"; then
    pass "backend gets the pid of the worker that did the TLS (a worker: $w)"
else
    fail "backend gets the pid of the worker that did the TLS" \
        "worker '$w' is not one of ${WPIDS[*]}"
fi

# --- refusals ----------------------------------------------------------------------------
https_get nocert "$URL/"
is "$HTTP_CODE" 400 "no client certificate: HTTP 400"
file_like "$T/nocert.body" 'No required SSL certificate was sent' \
    "no client certificate: 'No required SSL certificate was sent'"
file_like "$D/logs/error.log" 'client sent no required SSL certificate' \
    "no client certificate: nginx logs why"

https_get intruder "$URL/" --cert "$INTRUDER_CRT" --key "$INTRUDER_KEY"
is "$HTTP_CODE" 400 "certificate from another CA: HTTP 400"
file_like "$T/intruder.body" 'The SSL certificate error' \
    "certificate from another CA: 'The SSL certificate error'"
file_like "$D/logs/error.log" \
    'client SSL certificate verify error: \(2[01]:unable to (get local issuer certificate|verify the first certificate)\)' \
    "certificate from another CA: nginx logs that it cannot verify it"
file_like "$D/logs/access.log" '^[0-9]+ 400 FAILED:unable to (get local issuer|verify the first)' \
    "certificate from another CA: \$ssl_client_verify says FAILED"
file_unlike "$T/intruder.body" 's_dn=' "certificate from another CA: nothing reached the backend"

# --- ssl_verify_depth --------------------------------------------------------------------
https_get_ok deep2 "$URL/deep" \
    "chain through 2 intermediate CAs, ssl_verify_depth 2: accepted" \
    --cert "$T/deep-chain.crt" --key "$T/deep.key"
is "$(body_value deep2 s_dn)" "CN=deep-client,O=p11id Test" \
    "ssl_verify_depth 2: backend gets the deep client's DN"
https_get deep1 "https://127.0.0.1:$PORT_D1/deep" \
    --cert "$T/deep-chain.crt" --key "$T/deep.key"
is "$HTTP_CODE" 400 "the same chain, ssl_verify_depth 1: HTTP 400"
# OpenSSL stops building the chain at the depth limit, short of the root.
file_like "$D/logs/error.log" \
    'client SSL certificate verify error: \((20|22):(unable to get local issuer certificate|certificate chain too long)\).*GET /deep' \
    "ssl_verify_depth 1: nginx logs the verify error of the too long chain"
https_get_ok direct1 "https://127.0.0.1:$PORT_D1/" \
    "ssl_verify_depth 1: the client certified by the CA itself is accepted" \
    "${CLIENT[@]}"
is "$(body_value direct1 s_dn)" "$CLI_DN" "ssl_verify_depth 1: \$ssl_client_s_dn"

# --- logs, PIN, shutdown -------------------------------------------------------------------
file_unlike "$D/logs/error.log" 'p11id|\[(crit|alert|emerg)\]|SSL_do_handshake\(\) failed' \
    "error log: no p11id error and nothing critical"
pin_nowhere "the PIN is in no file but the PIN file (configs, logs, trace, outputs)"

mapfile -t KIDS < <(nginx_children "$NGX_MASTER")
nginx_signal "$D" quit
run_ok "nginx -s quit" || true
bg_wait "$NGX_BG" 30
is "$BG_RC" 0 "nginx master exits 0 after quit"
left=
for p in "${KIDS[@]}"; do
    kill -0 "$p" 2>/dev/null && left="$left $p"
done
is "$left" "" "no worker is left running"
NGX_MASTER=
file_unlike "$T/nginx-ngx.err" "$CRASH_RE" "nginx's stderr: no crash, no sanitizer report"

done_testing
