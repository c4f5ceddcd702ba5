#!/usr/bin/env bash
# t_httpd_mtls.sh: Apache httpd (mod_ssl) serves mutual TLS with its private
# key on a token, named in SSLCertificateKeyFile by a key reference file and
# by a pkcs11: URI (loaded through OSSL_STORE, httpd >= 2.4.62), under the
# prefork and the event MPM. The parent (root) loads the key and logs in; the
# children (User www-data, who cannot read the PIN file) sign after fork,
# the event MPM from several threads. SSLVerifyClient require: the client's
# subject DN, verification status and serial reach the application (response
# headers); clients without a certificate or from another CA are refused.
# With libp11's engine installed, mod_ssl hands pkcs11: URIs to that engine
# instead: the URI runs keep it out of reach (OPENSSL_ENGINES), and one run
# shows what happens without.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/apps.sh
. "$(dirname "$0")/../lib/apps.sh"
require_cmd curl openssl pkcs11-tool softhsm2-util python3
if [ -z "$HTTPD_BIN" ]; then
    echo "1..0 # SKIP no httpd (apache2)"
    exit 0
fi
for m in ssl mpm_prefork mpm_event authz_core headers; do
    require_file "$HTTPD_MODULES/mod_$m.so" "httpd module mod_$m"
done
HTTPD_USER=www-data
id "$HTTPD_USER" >/dev/null 2>&1 || HTTPD_USER=nobody
id "$HTTPD_USER" >/dev/null 2>&1 || { echo "1..0 # SKIP no user www-data or nobody for httpd's children"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP httpd's children switch user: run as root"; exit 0; }

apps_setup
# SoftHSM's default: a child keeps the SoftHSM state it inherited (p11id
# still initialises the module again and logs in again in each child). Not
# reset_on_fork = true: httpd starts its children together, and SoftHSM 2.6's
# file store loses the token in a process that initialises while another
# logs in (C_Login rewrites the token file), so a child would fail with
# CKR_SLOT_ID_INVALID now and then (see t_nginx_worker_env.sh for the fresh
# start after fork).
softhsm_reset_on_fork false
apps_pki rsa2048 ec256

# httpd's children run as $HTTPD_USER: they need the token's files (SoftHSM
# reads and locks them) but not the PIN file, which stays root's, mode 0600.
chmod 711 "$T"
chown -R "$HTTPD_USER:" "$T/tokens"
chmod 644 "$SOFTHSM2_CONF"

VERSION=$(httpd_version)
diag "httpd $VERSION ($HTTPD_BIN), children as $HTTPD_USER"
ENGINES_DIR=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')
P11_ENGINE=
[ -n "$ENGINES_DIR" ] && [ -f "$ENGINES_DIR/pkcs11.so" ] && P11_ENGINE=$ENGINES_DIR/pkcs11.so
mkdir -p "$T/no-engines"

# httpd_conf DIR MPM KEY: a minimal httpd.conf of our own.
httpd_conf()
{
    local d=$1 mpm=$2 key=$3 m=$HTTPD_MODULES
    mkdir -p "$d/htdocs" "$d/run"
    printf 'hello from httpd\n' >"$d/htdocs/index.html"
    chmod 755 "$d" "$d/htdocs"
    chmod 644 "$d/htdocs/index.html"
    {
        cat <<EOF
# httpd configuration of one p11id test run (see conf/httpd-p11id.conf).
ServerRoot "$d"
ServerName localhost
Listen 127.0.0.1:$PORT
PidFile "$d/httpd.pid"
DefaultRuntimeDir "$d/run"
ErrorLog "$d/error.log"
LogLevel info
LoadModule mpm_${mpm}_module $m/mod_mpm_${mpm}.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule headers_module $m/mod_headers.so
LoadModule ssl_module $m/mod_ssl.so
User $HTTPD_USER
Group $(id -gn "$HTTPD_USER")
EOF
        if [ "$mpm" = prefork ]; then
            printf '%s\n' 'StartServers 4' 'MinSpareServers 2' 'MaxSpareServers 6' \
                'MaxRequestWorkers 8'
        else
            printf '%s\n' 'StartServers 2' 'ServerLimit 2' 'ThreadLimit 8' \
                'ThreadsPerChild 8' 'MaxRequestWorkers 16' 'MinSpareThreads 4' \
                'MaxSpareThreads 16'
        fi
        cat <<EOF
DocumentRoot "$d/htdocs"
<Directory "$d/htdocs">
    Require all granted
</Directory>
LogFormat "%P %{tid}P %>s %{SSL_CLIENT_VERIFY}x \"%{SSL_CLIENT_S_DN}x\" %{SSL_CLIENT_M_SERIAL}x %{SSL_SESSION_RESUMED}x" mtls
CustomLog "$d/access.log" mtls

SSLEngine on
SSLCertificateFile "$SRV_CRT"
SSLCertificateKeyFile "$key"
SSLCACertificateFile "$CA_CRT"
SSLVerifyClient require
SSLVerifyDepth 2
# Every connection a full handshake: every request a signature on the token.
SSLSessionCache none
SSLSessionTickets off
# What the application learns about the client.
Header always set X-Client-S-DN "%{SSL_CLIENT_S_DN}s"
Header always set X-Client-Verify "%{SSL_CLIENT_VERIFY}s"
Header always set X-Client-Serial "%{SSL_CLIENT_M_SERIAL}s"
EOF
    } >"$d/httpd.conf"
}

# header NAME HDRFILE: a response header's value.
header()
{
    tr -d '\r' <"$2" | sed -n "s/^$1: //Ip" | head -n 1
}

N=24
# combo NAME MPM KEY DESC: 14 points.
combo()
{
    local name=$1 mpm=$2 key=$3 desc=$4 d=$T/$1
    PORT=$(free_port) || bail_out "no free port"
    httpd_conf "$d" "$mpm" "$key"
    : >"$TRACE"
    if ! httpd_start "$d" 120; then
        fail "$desc: httpd starts"
        skip_n 13 "httpd did not start" "$desc"
        return
    fi
    pass "$desc: httpd starts"
    local master=$HTTPD_MASTER
    file_like "$d/error.log" "AH02568: Certificate and private key .* configured from .* and $(printf '%s' "$key" | sed 's/[][\.*^$?+(){}|]/\\&/g')" \
        "$desc: mod_ssl configured the key"
    if grep -Eq "^[0-9.]+ \[$master\] p11id_token_login: token \"$TOKEN_WEB\": logged in\$" "$TRACE"; then
        pass "$desc: the parent loaded the key through p11id and logged in"
    else
        fail "$desc: the parent loaded the key through p11id and logged in"
        diag_file "$TRACE"
    fi

    local url=https://127.0.0.1:$PORT
    run curl -sS --max-time 60 --cacert "$CA_CRT" --cert "$CLI_CRT" --key "$CLI_REF" \
        --no-sessionid -H 'Connection: close' --parallel --parallel-max 8 \
        -o /dev/null -w 'status=%{http_code}\n' "$url/index.html?n=[1-$N]"
    local ok
    ok=$(grep -c '^status=200$' "$RUN_OUT")
    is "$ok" "$N" "$desc: $N requests, 8 at a time, new connections: all 200"
    [ "$ok" = "$N" ] || { diag_file "$RUN_ERR"; diag_file "$d/error.log"; }

    # Served by children (not the parent), several of them (prefork) or
    # several threads (event); each child re-initialised the module.
    local -a kids pids
    local tids p
    mapfile -t kids < <(nginx_children "$master")
    mapfile -t pids < <(awk '{ print $1 }' "$d/access.log" | sort -u)
    tids=$(awk '{ print $1 "/" $2 }' "$d/access.log" | sort -u | wc -l)
    local notkid=
    for p in "${pids[@]}"; do
        printf '%s\n' "${kids[@]}" | grep -qx "$p" || notkid="$notkid $p"
    done
    if [ ${#pids[@]} -gt 0 ] && [ -z "$notkid" ]; then
        pass "$desc: only children of the parent served"
    else
        fail "$desc: only children of the parent served" "pids not children:$notkid"
    fi
    if [ "$mpm" = prefork ]; then
        if [ ${#pids[@]} -ge 2 ]; then
            pass "$desc: several children served (${pids[*]})"
        else
            fail "$desc: several children served" "pids: ${pids[*]}"
        fi
    else
        if [ "$tids" -ge 2 ]; then
            pass "$desc: several threads served ($tids)"
        else
            fail "$desc: several threads served" "$tids pid/thread pairs"
        fi
    fi
    local noreinit=
    for p in "${pids[@]}"; do
        grep -Eq "^[0-9.]+ \[$p\] .*fork detected: re-initialising" "$TRACE" \
            || noreinit="$noreinit $p"
    done
    is "$noreinit" "" "$desc: trace: every serving child re-initialised the module after fork"
    local users
    users=$(ps -o user= -p "$(IFS=,; echo "${kids[*]}")" | sort -u | tr '\n' ' ')
    is "$users" "$HTTPD_USER " "$desc: the children run as $HTTPD_USER (the PIN file is root's, 0600)"

    https_get_ok "$name-hdr" "$url/index.html" "$desc: one request with its headers" \
        --cert "$CLI_CRT" --key "$CLI_REF"
    local dn verify serial
    dn=$(header X-Client-S-DN "$T/$name-hdr.hdr")
    verify=$(header X-Client-Verify "$T/$name-hdr.hdr")
    serial=$(header X-Client-Serial "$T/$name-hdr.hdr")
    is "$dn/$verify/$serial" "$CLI_DN/SUCCESS/$CLI_SERIAL" \
        "$desc: SSL_CLIENT_S_DN, SSL_CLIENT_VERIFY, SSL_CLIENT_M_SERIAL"

    https_get "$name-nocert" "$url/"
    if [ "$RUN_RC" -ne 0 ] && [ "$HTTP_CODE" = 000 ] \
        && grep -q 'peer did not return a certificate' "$d/error.log"; then
        pass "$desc: no client certificate: refused in the handshake"
    else
        fail "$desc: no client certificate: refused in the handshake" \
            "curl exit $RUN_RC, HTTP $HTTP_CODE"
        diag_file "$T/$name-nocert.err"
        diag_file "$d/error.log" 5
    fi
    https_get "$name-intruder" "$url/" --cert "$INTRUDER_CRT" --key "$INTRUDER_KEY"
    if [ "$RUN_RC" -ne 0 ] && [ "$HTTP_CODE" = 000 ] \
        && grep -q 'Certificate Verification: Error (20): unable to get local issuer certificate' "$d/error.log"; then
        pass "$desc: certificate from another CA: refused in the handshake"
    else
        fail "$desc: certificate from another CA: refused in the handshake" \
            "curl exit $RUN_RC, HTTP $HTTP_CODE"
        diag_file "$T/$name-intruder.err"
        diag_file "$d/error.log" 5
    fi

    mapfile -t KIDS < <(nginx_children "$master")
    httpd_stop
    local left=
    for p in "${KIDS[@]}"; do
        kill -0 "$p" 2>/dev/null && left="$left $p"
    done
    is "$left" "" "$desc: stopped, no child left"
    file_unlike "$d/error.log" "p11id:|\[(ssl:)?(emerg|alert|crit)\]|$CRASH_RE" \
        "$desc: error log: no p11id error, nothing critical, no crash"
}

# --- key reference file -------------------------------------------------------------
HTTPD_ENV=()
combo prefork-ref prefork "$SRV_REF" "prefork, key reference file"
combo event-ref event "$SRV_REF" "event, key reference file"

# --- pkcs11: URI --------------------------------------------------------------------------
SRV_URI=$(key_uri srv)
if ! version_ge "$VERSION" 2.4.62; then
    skip_n 29 "httpd $VERSION is older than 2.4.62: SSLCertificateKeyFile takes no pkcs11: URI through OSSL_STORE" \
        "SSLCertificateKeyFile pkcs11: URI"
else
    # mod_ssl first asks for an ENGINE named like the URI's scheme; only when
    # there is none does it open the URI with OSSL_STORE (p11id).
    [ -n "$P11_ENGINE" ] && HTTPD_ENV=(OPENSSL_ENGINES="$T/no-engines")
    combo prefork-uri prefork "$SRV_URI" "prefork, pkcs11: URI"
    combo event-uri event "$SRV_URI" "event, pkcs11: URI"
    HTTPD_ENV=()

    if [ -n "$P11_ENGINE" ]; then
        # What users of Debian with libengine-pkcs11-openssl get: the engine,
        # not p11id, is asked for the key (and here, without a PIN, fails).
        PORT=$(free_port) || bail_out "no free port"
        d=$T/engine-uri
        httpd_conf "$d" prefork "$SRV_URI"
        : >"$TRACE"
        if httpd_start "$d" 60 >"$d.start.diag"; then
            httpd_stop
            fail "libp11's engine installed: mod_ssl gives the pkcs11: URI to the engine" \
                "httpd started: mod_ssl no longer prefers the engine; update docs/httpd.md"
        else
            bg_wait "$HTTPD_BG" 20
            if grep -q 'engine routines' "$d/error.log" \
                && ! grep -q 'logged in$' "$TRACE"; then
                pass "libp11's engine installed: mod_ssl gives the pkcs11: URI to the engine, not to p11id"
            else
                fail "libp11's engine installed: mod_ssl gives the pkcs11: URI to the engine, not to p11id"
                diag_file "$d/error.log"
                diag_file "$TRACE"
            fi
        fi
    else
        skip "no ENGINE named pkcs11 in $ENGINES_DIR" \
            "libp11's engine installed: mod_ssl gives the pkcs11: URI to the engine"
    fi
fi

pin_nowhere "the PIN is in no file but the PIN file (configs, error and access logs, trace)"
done_testing
