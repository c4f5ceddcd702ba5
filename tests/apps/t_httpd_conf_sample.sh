#!/usr/bin/env bash
# t_httpd_conf_sample.sh: conf/httpd-p11id.conf (a Debian virtual host) and
# conf/openssl-p11id-server.cnf work as shipped, with only their paths and
# ports replaced, included from a minimal httpd.conf with the event MPM
# (Debian's default): `apache2 -t`, then mutual TLS with the key on the
# token (key reference file), children as www-data, the client's DN in the
# response and the access log, and a client without a certificate refused.
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
require_file "$TOP_SRCDIR/conf/httpd-p11id.conf" "conf/httpd-p11id.conf"
for m in ssl mpm_event authz_core headers; do
    require_file "$HTTPD_MODULES/mod_$m.so" "httpd module mod_$m"
done
WUSER=www-data
id "$WUSER" >/dev/null 2>&1 || { echo "1..0 # SKIP no user $WUSER"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP httpd's children switch user: run as root"; exit 0; }
apps_setup
# SoftHSM's default (see t_httpd_mtls.sh for why not reset_on_fork = true).
softhsm_reset_on_fork false
apps_pki ec256 ec256

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
    "$TOP_SRCDIR/conf/openssl-p11id-server.cnf" >"$T/server.cnf"
chmod 711 "$T"
chown -R "$WUSER:" "$T/tokens"
chmod 644 "$SOFTHSM2_CONF"

D=$T/httpd
mkdir -p "$D/htdocs" "$D/run"
printf 'hello from the sample\n' >"$D/htdocs/index.html"
chmod 755 "$D" "$D/htdocs"
chmod 644 "$D/htdocs/index.html"
PORT=$(free_port) || bail_out "no free port"
sed -e "s|/etc/p11id/|$E/|g" -e "s|<VirtualHost \*:443>|<VirtualHost 127.0.0.1:$PORT>|" \
    -e "s|/var/www/html|$D/htdocs|" "$TOP_SRCDIR/conf/httpd-p11id.conf" >"$D/p11id.conf"
grep -q '/etc/p11id\|\*:443\|/var/www' "$D/p11id.conf" \
    && bail_out "the sample still names system paths after replacement"
M=$HTTPD_MODULES
cat >"$D/httpd.conf" <<EOF
# What Debian's apache2.conf, ports.conf and a2enmod provide, reduced.
ServerRoot "$D"
ServerName localhost
Listen 127.0.0.1:$PORT
PidFile "$D/httpd.pid"
DefaultRuntimeDir "$D/run"
ErrorLog "$D/error.log"
LogLevel info
LoadModule mpm_event_module $M/mod_mpm_event.so
LoadModule authz_core_module $M/mod_authz_core.so
LoadModule headers_module $M/mod_headers.so
LoadModule ssl_module $M/mod_ssl.so
User $WUSER
Group $(id -gn "$WUSER")
<Directory "$D/htdocs">
    Require all granted
</Directory>
Include "$D/p11id.conf"
EOF
# Debian's envvars: APACHE_LOG_DIR (used by the sample) and OPENSSL_CONF.
HTTPD_ENV=(APACHE_LOG_DIR="$D")
run env OPENSSL_CONF="$T/server.cnf" APACHE_LOG_DIR="$D" "$HTTPD_BIN" -f "$D/httpd.conf" -d "$D" -t
run_ok_like 'Syntax OK' "apache2 -t with the sample virtual host"

httpd_start "$D" 120 || bail_out "httpd did not start with the sample"
pass "httpd starts with the sample (event MPM, key reference file)"
mapfile -t kids < <(nginx_children "$HTTPD_MASTER")
is "$(ps -o user= -p "$(IFS=,; echo "${kids[*]}")" | sort -u | tr -d ' \n')" "$WUSER" \
    "the children run as $WUSER"

N=16
run curl -sS --max-time 60 --cacert "$CA_CRT" --cert "$CLI_CRT" --key "$CLI_REF" \
    --no-sessionid -H 'Connection: close' --parallel --parallel-max 4 \
    -D "$T/many.hdr" -o /dev/null -w 'status=%{http_code}\n' \
    "https://127.0.0.1:$PORT/index.html?n=[1-$N]"
is "$(grep -c '^status=200$' "$RUN_OUT")" "$N" "$N requests, 4 at a time, client key on a token: all 200"
is "$(tr -d '\r' <"$T/many.hdr" | sed -n 's/^X-Client-S-DN: //Ip' | sort -u)" "$CLI_DN" \
    "the response carries the client's DN (Header always set ... SSL_CLIENT_S_DN)"
file_like "$D/p11id-access.log" "verify=SUCCESS dn=\"CN=client-1,OU=apps,O=p11id Test\" serial=$CLI_SERIAL pid=" \
    "the sample's access log records the verified client"
if grep -q 'fork detected: re-initialising' "$TRACE"; then
    pass "trace: the children re-initialised the module after fork"
else
    fail "trace: the children re-initialised the module after fork"
    diag_file "$TRACE"
fi

https_get nocert "https://127.0.0.1:$PORT/index.html"
if [ "$RUN_RC" -ne 0 ] && [ "$HTTP_CODE" = 000 ]; then
    pass "no client certificate: refused in the handshake"
else
    fail "no client certificate: refused in the handshake" "curl $RUN_RC, HTTP $HTTP_CODE"
fi
file_like "$D/p11id-error.log" 'peer did not return a certificate' \
    "no client certificate: the sample's error log says why"
file_unlike "$D/p11id-error.log" 'p11id:|\[(ssl:)?(emerg|alert|crit)\]' \
    "error log: no p11id error, nothing critical"
httpd_stop
pin_nowhere "the PIN is only in the PIN file"
done_testing
