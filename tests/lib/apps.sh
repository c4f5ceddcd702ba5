# tests/lib/apps.sh: helpers for the tests with real applications (nginx,
# Apache httpd, curl, Python) doing mutual TLS with keys on a SoftHSM token.
# Source it after common.sh; do not run it.
#
#   . "$(dirname "$0")/../lib/common.sh"
#   . "$(dirname "$0")/../lib/apps.sh"
#   require_cmd nginx curl openssl pkcs11-tool softhsm2-util python3
#   apps_setup                   # t_setup with the tokens web, client and ca
#   apps_pki                     # CA, server and client identities on them
#   nginx_prefix "$T/ngx" ...    # then nginx_start, nginx_stop
#   done_testing
#
# Every server runs on 127.0.0.1 on a free port, as a process of the test,
# stopped by pid; every client runs under a timeout with no terminal.
#
# Variables set here for the scripts that source this file:
# shellcheck disable=SC2034

# A PIN that cannot turn up by chance in a log, a PEM file or a port number:
# the tests grep every file they made for it.
PIN=p11id-Wq7-pin-4711
SO_PIN=p11id-so-8823

# The Python that has Debian's python3-requests: /usr/bin/python3 when there
# is one (a python3 earlier in PATH, pyenv's say, may lack requests).
APP_PY=python3
[ -x /usr/bin/python3 ] && APP_PY=/usr/bin/python3

# apps_setup: t_setup, then three tokens: $TOKEN_WEB (server keys),
# $TOKEN_CLI (client keys), $TOKEN_CA (the CA key). Also writes
# $T/server.cnf: the provider configuration of the servers (PIN from
# $T/pin.txt, trace to $T/p11id.trace).
TOKEN_WEB=p11id-web
TOKEN_CLI=p11id-client
TOKEN_CA=p11id-ca
apps_setup()
{
    TOKEN=$TOKEN_WEB
    t_setup
    trap 'apps_cleanup; t_cleanup' EXIT
    token_init "$TOKEN_CLI" || bail_out "cannot create token $TOKEN_CLI"
    token_init "$TOKEN_CA" || bail_out "cannot create token $TOKEN_CA"
    TRACE=$T/p11id.trace
    write_openssl_conf "$T/server.cnf" "log-file=$TRACE" log-level=2
}

# apps_cleanup: servers (and their children) still running at exit.
apps_cleanup()
{
    nginx_stop >/dev/null 2>&1
    httpd_stop >/dev/null 2>&1
}

# softhsm_reset_on_fork true|false: SoftHSM's library.reset_on_fork. With
# true, a forked child that calls C_Initialize gets a fresh SoftHSM that reads
# its configuration (SOFTHSM2_CONF) again, as most hardware tokens' modules
# start afresh in a child; with false (SoftHSM's default), the child keeps the
# state inherited from its parent.
softhsm_reset_on_fork()
{
    sed -i '/^library\.reset_on_fork/d' "$SOFTHSM2_CONF"
    printf 'library.reset_on_fork = %s\n' "$1" >>"$SOFTHSM2_CONF"
}

# --- identities ------------------------------------------------------------------

# apps_pki [SERVER_TYPE] [CLIENT_TYPE]: on the tokens, the CA key "ca" (EC
# P-256), the server key "srv" (default rsa2048) and the client key "cli"
# (default ec256); certificates issued by the CA; key reference files. And
# an intruder: a client with a software key and a certificate from another CA.
# Sets CA_CRT SRV_CRT SRV_REF CLI_CRT CLI_REF CLI_SUBJ CLI_DN CLI_SERIAL
# INTRUDER_CRT INTRUDER_KEY.
apps_pki()
{
    local st=${1:-rsa2048} ct=${2:-ec256}
    key_gen ca ec256 "$TOKEN_CA" || bail_out "cannot generate the CA key"
    key_gen srv "$st" "$TOKEN_WEB" || bail_out "cannot generate the server key"
    key_gen cli "$ct" "$TOKEN_CLI" || bail_out "cannot generate the client key"
    CA_CRT=$T/ca.crt
    ca_make "$(key_uri ca)" "$CA_CRT" "/O=p11id Test/CN=p11id Test CA" \
        || bail_out "cannot make the CA certificate"
    SRV_CRT=$T/srv.crt
    identity_issue srv server /CN=localhost "$SRV_CRT" \
        || bail_out "cannot issue the server certificate"
    CLI_SUBJ="/O=p11id Test/OU=apps/CN=client-1"
    CLI_CRT=$T/cli.crt
    identity_issue cli client "$CLI_SUBJ" "$CLI_CRT" \
        || bail_out "cannot issue the client certificate"
    SRV_REF=$T/srv.keyref.pem
    CLI_REF=$T/cli.keyref.pem
    keyref_write srv "$SRV_REF" || bail_out "cannot write $SRV_REF"
    keyref_write cli "$CLI_REF" || bail_out "cannot write $CLI_REF"
    # What servers report about the client: RFC 2253 subject, serial in hex.
    ossl_sw x509 -in "$CLI_CRT" -noout -subject -nameopt RFC2253
    CLI_DN=$(sed -n 's/^subject=//p' "$RUN_OUT")
    ossl_sw x509 -in "$CLI_CRT" -noout -serial
    CLI_SERIAL=$(sed -n 's/^serial=//p' "$RUN_OUT")
    intruder_make || bail_out "cannot make the intruder's certificate"
}

# identity_issue KEY KIND SUBJECT OUT.crt: a CSR signed on the token by KEY,
# certified by the CA key on its token.
identity_issue()
{
    local key=$1 kind=$2 subj=$3 out=$4
    csr_make "$(key_uri "$key")" "$subj" "$out.csr" || return 1
    cert_issue "$CA_CRT" "$(key_uri ca)" "$out.csr" "$kind" "$out"
}

# keyref_write KEY OUT: the key reference file of a token key, written by the
# provider (openssl pkey), as users make them.
keyref_write()
{
    ossl pkey -in "$(key_uri "$1")" -out "$2"
    [ "$RUN_RC" -eq 0 ] && grep -q 'BEGIN PKCS#11 PROVIDER URI' "$2" && return 0
    _run_diag
    return 1
}

# intruder_make: $T/otherca.{key,crt} (software) and the client certificate
# it issued, $T/intruder.{key,crt}: same subject as the real client.
intruder_make()
{
    soft_ca_make "$T" otherca "/O=p11id Test/CN=Other CA" || return 1
    ossl_sw req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/intruder.key" -subj "$CLI_SUBJ" -out "$T/intruder.csr"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
    ext_file client "$T/intruder.ext"
    ossl_sw x509 -req -in "$T/intruder.csr" -CA "$T/otherca.crt" \
        -CAkey "$T/otherca.key" -set_serial 666 -days 30 \
        -extfile "$T/intruder.ext" -out "$T/intruder.crt"
    [ "$RUN_RC" -eq 0 ] || { _run_diag; return 1; }
    INTRUDER_CRT=$T/intruder.crt
    INTRUDER_KEY=$T/intruder.key
}

# served_serial PORT: the serial (hex) of the certificate the server on PORT
# presents, fetched with the default provider alone; empty if none.
served_serial()
{
    OPENSSL_CONF="$T/default-only.cnf" run openssl s_client \
        -connect "127.0.0.1:$1" -servername localhost -CAfile "$CA_CRT"
    openssl x509 -noout -serial -in "$RUN_OUT" 2>/dev/null \
        | sed -n 's/^serial=//p'
}

# cert_serial CRT: its serial in hex.
cert_serial()
{
    openssl x509 -noout -serial -in "$1" 2>/dev/null | sed -n 's/^serial=//p'
}

# --- HTTPS requests with curl ---------------------------------------------------------

# https_get NAME URL [curl options...]: one request; the body in $T/NAME.body,
# the response headers in $T/NAME.hdr, the status in HTTP_CODE ("000" when
# there was no HTTP response), curl's exit status in RUN_RC.
https_get()
{
    local name=$1 url=$2
    shift 2
    run curl -sS --max-time 20 --cacert "$CA_CRT" -o "$T/$name.body" \
        -D "$T/$name.hdr" -w '%{http_code}' "$@" "$url"
    HTTP_CODE=$(cat "$RUN_OUT")
    cp "$RUN_ERR" "$T/$name.err"
}

# https_get_ok NAME URL DESC [curl options...]: one point: status 200.
https_get_ok()
{
    local name=$1 url=$2 desc=$3
    shift 3
    https_get "$name" "$url" "$@"
    if [ "$RUN_RC" -eq 0 ] && [ "$HTTP_CODE" = 200 ] && ! run_crashed; then
        pass "$desc"
        return 0
    fi
    fail "$desc" "curl exit $RUN_RC, HTTP status $HTTP_CODE"
    diag_file "$T/$name.err"
    diag_file "$T/$name.body" 5
    return 1
}

# body_value NAME KEY: the value of a "KEY=value" line in $T/NAME.body.
body_value()
{
    sed -n "s/^$2=//p" "$T/$1.body" | head -n 1
}

# --- no PIN in files ----------------------------------------------------------------

# pin_nowhere DESC [FILE...]: no file under $T but the PIN files ($T/pin.txt,
# the samples' token.pin), nor any FILE given, holds the PIN.
pin_nowhere()
{
    local desc=$1 hits
    shift
    hits=$(grep -rlF --exclude=pin.txt --exclude=token.pin -- "$PIN" "$T" "$@" 2>/dev/null)
    if [ -z "$hits" ]; then
        pass "$desc"
    else
        fail "$desc" "the PIN is in: $hits"
    fi
}

# --- provider trace --------------------------------------------------------------------

# trace_pids ERE: the pids of the trace lines matching ERE, one per line.
trace_pids()
{
    grep -E -- "$1" "$TRACE" 2>/dev/null \
        | sed -n 's/^[0-9.]* \[\([0-9]*\)\].*/\1/p' | sort -u
}

# --- nginx ------------------------------------------------------------------------

# nginx_prefix DIR: the prefix directory of one nginx: logs, temp files.
nginx_prefix()
{
    mkdir -p "$1/logs" "$1/tmp" "$1/html"
}

# nginx_http_paths DIR: http{} lines that keep nginx's temp files under DIR
# (the Debian build's defaults are under /var/lib/nginx).
nginx_http_paths()
{
    local d=$1/tmp
    printf '    client_body_temp_path %s/body;\n' "$d"
    printf '    proxy_temp_path %s/proxy;\n' "$d"
    printf '    fastcgi_temp_path %s/fastcgi;\n' "$d"
    printf '    uwsgi_temp_path %s/uwsgi;\n' "$d"
    printf '    scgi_temp_path %s/scgi;\n' "$d"
}

# nginx_cmd DIR [GLOBAL] ARGS...: nginx on the prefix DIR with DIR/nginx.conf
# and the pid file DIR/nginx.pid (nginx takes one -g only: more global
# directives go in GLOBAL, e.g. 'daemon off;'; "" for none).
nginx_cmd()
{
    local d=$1 g=${2:-}
    shift
    [ $# -gt 0 ] && shift
    printf '%s\n' nginx -p "$d" -c "$d/nginx.conf" -g "pid $d/nginx.pid; $g" "$@"
}

# nginx_start DIR WORKERS [SECONDS]: nginx in the foreground (daemon off) with
# OPENSSL_CONF=$T/server.cnf, stopped after SECONDS (default 300) at the
# latest; with NGX_DECOY=1, under with_decoy_softhsm_conf. Waits until the master wrote its pid and WORKERS workers run; sets
# NGX_MASTER. Returns non-zero (with diagnostics) when it does not come up.
nginx_start()
{
    local d=$1 n=$2 secs=${3:-300} i cmd
    mapfile -t cmd < <(nginx_cmd "$d" 'daemon off; master_process on;')
    cmd=(env OPENSSL_CONF="$T/server.cnf" "${cmd[@]}")
    [ "${NGX_DECOY:-0}" = 1 ] && mapfile -t cmd < <(with_decoy_softhsm_conf "${cmd[@]}")
    rm -f "$d/nginx.pid"
    T_TIMEOUT=$secs bg_start "nginx-${d##*/}" "${cmd[@]}"
    NGX_BG=$BG_PID
    NGX_MASTER=
    for ((i = 0; i < 600; i++)); do
        if [ -s "$d/nginx.pid" ]; then
            NGX_MASTER=$(cat "$d/nginx.pid")
            [ "$(nginx_workers "$NGX_MASTER" | wc -l)" -ge "$n" ] && return 0
        fi
        kill -0 "$NGX_BG" 2>/dev/null || break
        sleep 0.1
    done
    diag "nginx did not start $n workers"
    diag_file "$T/nginx-${d##*/}.err"
    diag_file "$d/logs/error.log"
    return 1
}

# nginx_workers MASTER: the pids of its worker processes (not those shutting
# down after a reload), one per line.
nginx_workers()
{
    ps -o pid=,args= --ppid "$1" 2>/dev/null \
        | awk '$0 ~ /worker process$/ { print $1 }'
}

# nginx_children MASTER: the pids of all its children.
nginx_children()
{
    ps -o pid= --ppid "$1" 2>/dev/null | awk '{ print $1 }'
}

# nginx_signal DIR SIGNAL: nginx -s SIGNAL (reload, quit, stop) for the nginx
# on DIR, as an administrator runs it.
nginx_signal()
{
    local d=$1 sig=$2 cmd
    mapfile -t cmd < <(nginx_cmd "$d" "" -s "$sig")
    run env OPENSSL_CONF="$T/server.cnf" "${cmd[@]}"
}

# nginx_stop: stops the running nginx and its workers (by pid).
nginx_stop()
{
    local kids pid
    [ -n "${NGX_MASTER:-}" ] || return 0
    kids=$(nginx_children "$NGX_MASTER")
    bg_stop "$NGX_BG"
    for pid in $kids; do
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    NGX_MASTER=
}

# --- every worker --------------------------------------------------------------------

# requests_by_pid LOG: the access log's first field (the pid) counted:
# "COUNT PID" lines.
requests_by_pid()
{
    awk '{ print $1 }' "$1" | sort | uniq -c | awk '{ print $1, $2 }'
}

# all_served PIDS... -- LOG DESC: one point: every pid in PIDS has lines in LOG.
all_served()
{
    local -a pids=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        pids+=("$1")
        shift
    done
    shift
    local log=$1 desc=$2 p missing=
    for p in "${pids[@]}"; do
        awk -v p="$p" '$1 == p { found = 1 } END { exit !found }' "$log" \
            || missing="$missing $p"
    done
    if [ ${#pids[@]} -gt 0 ] && [ -z "$missing" ]; then
        pass "$desc"
    else
        fail "$desc" "pids that served nothing:${missing:- (no pids)}"
        diag "requests per pid: $(requests_by_pid "$log" | tr '\n' ' ')"
    fi
}

# --- Apache httpd ----------------------------------------------------------------------

HTTPD_BIN=
for _b in apache2 httpd /usr/sbin/apache2 /usr/sbin/httpd; do
    if command -v "$_b" >/dev/null 2>&1; then
        HTTPD_BIN=$(command -v "$_b")
        break
    fi
done
HTTPD_MODULES=${HTTPD_MODULES:-/usr/lib/apache2/modules}

# httpd_version: "2.4.71" or empty.
httpd_version()
{
    [ -n "$HTTPD_BIN" ] || return 0
    "$HTTPD_BIN" -v 2>/dev/null | sed -n 's|^Server version: Apache/\([0-9.]*\).*|\1|p'
}

# version_ge A B: version A >= B (dotted numbers).
version_ge()
{
    [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]
}

# httpd_start DIR [SECONDS]: httpd -f DIR/httpd.conf -d DIR in the foreground
# with OPENSSL_CONF=$T/server.cnf and the VAR=VALUE words of the array
# HTTPD_ENV in its environment; waits for its pid file and for a child
# process. Sets HTTPD_MASTER. Returns non-zero when httpd does not come up.
httpd_start()
{
    local d=$1 secs=${2:-300} i
    rm -f "$d/httpd.pid"
    T_TIMEOUT=$secs bg_start "httpd-${d##*/}" env OPENSSL_CONF="$T/server.cnf" \
        ${HTTPD_ENV[@]+"${HTTPD_ENV[@]}"} \
        "$HTTPD_BIN" -f "$d/httpd.conf" -d "$d" -DFOREGROUND
    HTTPD_BG=$BG_PID
    HTTPD_MASTER=
    for ((i = 0; i < 600; i++)); do
        if [ -s "$d/httpd.pid" ]; then
            HTTPD_MASTER=$(cat "$d/httpd.pid")
            [ -n "$(nginx_children "$HTTPD_MASTER")" ] && return 0
        fi
        kill -0 "$HTTPD_BG" 2>/dev/null || break
        sleep 0.1
    done
    diag "httpd did not start"
    diag_file "$T/httpd-${d##*/}.err"
    diag_file "$d/error.log"
    return 1
}

# httpd_stop: stops httpd and its children (by pid).
httpd_stop()
{
    local kids pid
    [ -n "${HTTPD_MASTER:-}" ] || return 0
    kids=$(nginx_children "$HTTPD_MASTER")
    bg_stop "$HTTPD_BG"
    for pid in $kids; do
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    HTTPD_MASTER=
}

# --- points from an exit status ----------------------------------------------------

# point_ok STATUS DESC: one TAP point, passing when STATUS is 0.
point_ok()
{
    if [ "$1" -eq 0 ]; then
        pass "$2"
    else
        fail "$2" "exit status $1"
    fi
}

# --- the default SoftHSM configuration, out of reach -------------------------------------

# with_decoy_softhsm_conf CMD...: print the command that runs CMD in a private
# mount namespace where SoftHSM's default configuration file
# (/etc/softhsm/softhsm2.conf, read when SOFTHSM2_CONF is unset) is
# $T/decoy/softhsm2.conf, whose token directory is empty: a process that lost
# SOFTHSM2_CONF finds no token there, and nothing touches the system's token
# directory. Without unshare (or its rights), or without that file, CMD alone.
DECOY_CONF=/etc/softhsm/softhsm2.conf
with_decoy_softhsm_conf()
{
    if [ -f "$DECOY_CONF" ] && command -v unshare >/dev/null 2>&1 \
        && unshare -m --propagation private true 2>/dev/null; then
        mkdir -p "$T/decoy/tokens"
        printf 'directories.tokendir = %s/decoy/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
            "$T" >"$T/decoy/softhsm2.conf"
        printf '%s\n' unshare -m --propagation private sh -c \
            "mount --bind '$T/decoy/softhsm2.conf' '$DECOY_CONF' && exec \"\$@\"" sh "$@"
    else
        printf '%s\n' "$@"
    fi
}
