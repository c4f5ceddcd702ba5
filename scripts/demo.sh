#!/usr/bin/env bash
# scripts/demo.sh: the whole mutual-TLS story with every private key on a
# PKCS#11 token (SoftHSM), README's first command.
#
# Builds p11id (installing missing Debian packages when root), then in a
# temporary directory: a fresh token; a CA whose key is generated on it
# (p11id ca init); a server and a client identity made with p11id (keygen,
# csr, ca sign, import, keyfile); nginx serving HTTPS with its key on the
# token and demanding client certificates; curl calling it with its key on
# the token, and the response printed; then the two refusals: no client
# certificate, and a certificate from another CA. Cleans up and leaves
# nothing running. Exits 0 when every step did what it should.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
TOKEN=p11id-demo
PIN=4321
SO_PIN=87654321
STEP=0
DIR=
NGINX_PID=

say() { printf '%s\n' "$*"; }
step()
{
    STEP=$((STEP + 1))
    printf '\n== Step %d: %s\n' "$STEP" "$*"
}
die()
{
    printf '\nDEMO FAILED: %s\n' "$*" >&2
    exit 1
}
# quiet LOG CMD...: run CMD with a timeout, output to LOG; show LOG if it fails.
quiet()
{
    local log=$1
    shift
    if ! timeout -k 5 120 "$@" </dev/null >"$log" 2>&1; then
        sed 's/^/    | /' "$log" >&2
        return 1
    fi
}
p11id() { "$ROOT/src/tool/p11id" "$@" --pin-file "$DIR/pin.txt"; }

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup()
{
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$NGINX_PID" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL "$NGINX_PID" 2>/dev/null
        wait "$NGINX_PID" 2>/dev/null
    fi
    [ -n "$DIR" ] && rm -rf -- "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------
step "build p11id (scripts/build.sh installs what is missing)"
mkdir -p "$ROOT/_build"
if ! bash scripts/build.sh >"$ROOT/_build/demo-build.log" 2>&1; then
    tail -n 30 "$ROOT/_build/demo-build.log" >&2
    die "the build failed (full log: _build/demo-build.log)"
fi
for cmd in nginx curl softhsm2-util openssl python3; do
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd is missing (bash scripts/deps.sh as root)"
done
say "built src/provider/.libs/p11id.so (the provider) and src/tool/p11id (the tool)"
export P11ID_PROVIDER_SO=$ROOT/src/provider/.libs/p11id.so
export P11ID_MODULE=$SOFTHSM_MODULE

step "a fresh SoftHSM token \"$TOKEN\" in a private directory"
DIR=$(mktemp -d "${TMPDIR:-/tmp}/p11id-demo.XXXXXX") || die "mktemp failed"
chmod 700 "$DIR"
mkdir "$DIR/tokens" "$DIR/nginx"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$DIR" >"$DIR/softhsm2.conf"
export SOFTHSM2_CONF=$DIR/softhsm2.conf
(umask 077; printf '%s\n' "$PIN" >"$DIR/pin.txt")
quiet "$DIR/init.log" softhsm2-util --init-token --free --label "$TOKEN" \
    --so-pin "$SO_PIN" --pin "$PIN" || die "softhsm2-util could not create the token"
say "token \"$TOKEN\" created; its user PIN is in pin.txt (0600), never on a command line"

step "a CA whose key is generated on the token (p11id ca init)"
p11id ca init "pkcs11:token=$TOKEN" --subject "/O=p11id demo/CN=Demo CA" \
    --days 30 --type ec:P-384 --label demo-ca -o "$DIR/ca.crt" >"$DIR/ca.log" 2>&1 \
    || { cat "$DIR/ca.log" >&2; die "p11id ca init failed"; }
say "CA certificate ca.crt: $(openssl x509 -in "$DIR/ca.crt" -noout -subject)"
say "its key stays on the token: pkcs11:token=$TOKEN;object=demo-ca;type=private"

make_identity()
{
    local label=$1 type=$2 subject=$3 usage=$4 san=$5 uri
    uri=$(p11id keygen "pkcs11:token=$TOKEN" --type "$type" --label "$label" 2>"$DIR/$label.err") \
        || { cat "$DIR/$label.err" >&2; die "p11id keygen $label failed"; }
    say "  key generated on the token (sensitive, never extractable): $uri"
    p11id csr "pkcs11:token=$TOKEN;object=$label" --subject "$subject" ${san:+--san "$san"} \
        --usage "$usage" -o "$DIR/$label.csr" >/dev/null 2>"$DIR/$label.err" \
        || { cat "$DIR/$label.err" >&2; die "p11id csr $label failed"; }
    p11id ca sign --ca "pkcs11:token=$TOKEN;object=demo-ca;type=private" \
        --ca-cert "$DIR/ca.crt" "$DIR/$label.csr" --profile "$usage" --days 7 \
        -o "$DIR/$label.crt" >/dev/null 2>"$DIR/$label.err" \
        || { cat "$DIR/$label.err" >&2; die "p11id ca sign $label failed"; }
    say "  CSR signed on the token, certificate signed by the token CA key: $(openssl x509 -in "$DIR/$label.crt" -noout -subject)"
    p11id import "pkcs11:token=$TOKEN;object=$label" "$DIR/$label.crt" >/dev/null 2>"$DIR/$label.err" \
        || { cat "$DIR/$label.err" >&2; die "p11id import $label failed"; }
    say "  certificate stored on the token beside its key"
    p11id keyfile "pkcs11:token=$TOKEN;object=$label" -o "$DIR/$label.keyref.pem" \
        >/dev/null 2>"$DIR/$label.err" || { cat "$DIR/$label.err" >&2; die "p11id keyfile $label failed"; }
    say "  key reference file $label.keyref.pem (names the key, holds no key bytes, no PIN)"
}

step "the server identity (EC P-256) made with p11id"
make_identity web ec:P-256 /CN=localhost server DNS:localhost
step "the client identity (RSA 2048) made with p11id"
make_identity app rsa:2048 "/O=partner/CN=demo client" client ""

step "p11id check: is the server identity ready?"
p11id check "pkcs11:token=$TOKEN;object=web" --cert "$DIR/web.crt" --ca "$DIR/ca.crt" \
    --host localhost --usage server 2>&1 | sed 's/^/  /'
[ "${PIPESTATUS[0]}" -eq 0 ] || die "p11id check found a problem"

step "activate the p11id provider for nginx and curl (OPENSSL_CONF)"
cat >"$DIR/openssl.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
p11id = p11id_sect
[default_sect]
activate = 1
[p11id_sect]
module = $P11ID_PROVIDER_SO
pkcs11-module-path = $SOFTHSM_MODULE
pin-source = file:$DIR/pin.txt
activate = 1
EOF
export OPENSSL_CONF=$DIR/openssl.cnf
say "openssl.cnf names the module and the PIN file; the PIN itself is in no config"

step "nginx with its key on the token, 2 workers, client certificates required"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$DIR/nginx/nginx.conf" <<EOF
worker_processes 2;
user root;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log;
env SOFTHSM2_CONF;
env OPENSSL_CONF;
events { worker_connections 64; }
http {
    access_log $DIR/nginx/access.log;
    client_body_temp_path $DIR/nginx/body;
    proxy_temp_path $DIR/nginx/proxy;
    fastcgi_temp_path $DIR/nginx/fastcgi;
    uwsgi_temp_path $DIR/nginx/uwsgi;
    scgi_temp_path $DIR/nginx/scgi;
    server {
        listen 127.0.0.1:$PORT ssl;
        server_name localhost;
        ssl_certificate        $DIR/web.crt;
        ssl_certificate_key    $DIR/web.keyref.pem;
        ssl_client_certificate $DIR/ca.crt;
        ssl_verify_client      on;
        location / {
            default_type text/plain;
            return 200 "hello \$ssl_client_s_dn: nginx (pid \$pid) answered with its key on the token; your certificate verified: \$ssl_client_verify\n";
        }
    }
}
EOF
nginx -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -g 'daemon off;' \
    >"$DIR/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.2
done
kill -0 "$NGINX_PID" 2>/dev/null || { cat "$DIR/nginx/stdout.log" "$DIR/nginx/error.log" >&2; die "nginx did not start"; }
say "nginx (master pid $NGINX_PID) listens on https://localhost:$PORT/ with ssl_certificate_key web.keyref.pem"

step "curl with the client key on the token (--key app.keyref.pem)"
out=$(timeout 30 curl -sS --cacert "$DIR/ca.crt" --cert "$DIR/app.crt" \
    --key "$DIR/app.keyref.pem" "https://localhost:$PORT/" 2>&1) \
    || die "curl failed: $out"
say "response: $out"
case "$out" in
    *"SUCCESS"*) ;;
    *) die "nginx did not verify the client certificate" ;;
esac

step "refusal 1: a client without a certificate"
out=$(timeout 30 curl -sS --cacert "$DIR/ca.crt" "https://localhost:$PORT/" 2>&1)
title=$(printf '%s' "$out" | sed -n 's/.*<title>\(.*\)<\/title>.*/\1/p' | head -n 1)
code=${title%% *}
say "nginx refused it: HTTP ${title:-no answer ($out)}"
[ "$code" = 400 ] || die "a client without a certificate was not refused"

step "refusal 2: a client certificate from another CA (software keys)"
OPENSSL_CONF=/dev/null openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$DIR/other-ca.key" -out "$DIR/other-ca.crt" -subj "/CN=Some Other CA" -days 2 \
    -addext basicConstraints=critical,CA:TRUE >/dev/null 2>&1 || die "cannot make the other CA"
OPENSSL_CONF=/dev/null openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$DIR/intruder.key" -subj "/CN=intruder" -out "$DIR/intruder.csr" >/dev/null 2>&1
OPENSSL_CONF=/dev/null openssl x509 -req -in "$DIR/intruder.csr" -CA "$DIR/other-ca.crt" \
    -CAkey "$DIR/other-ca.key" -CAcreateserial -days 2 -out "$DIR/intruder.crt" >/dev/null 2>&1
out=$(OPENSSL_CONF=/dev/null timeout 30 curl -sS --cacert "$DIR/ca.crt" --cert "$DIR/intruder.crt" \
    --key "$DIR/intruder.key" "https://localhost:$PORT/" 2>&1)
title=$(printf '%s' "$out" | sed -n 's/.*<title>\(.*\)<\/title>.*/\1/p' | head -n 1)
code=${title%% *}
say "nginx refused it: HTTP ${title:-no answer ($out)}"
[ "$code" = 400 ] || die "a certificate from another CA was not refused"

step "what is on the token (p11id objects)"
p11id objects "pkcs11:token=$TOKEN" 2>&1 | grep -E '^(private-key|certificate)' | sed 's/^/  /'

step "clean up"
kill -QUIT "$NGINX_PID" 2>/dev/null
for _ in $(seq 1 20); do
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.5
done
if kill -0 "$NGINX_PID" 2>/dev/null; then
    kill -KILL "$NGINX_PID" 2>/dev/null
fi
wait "$NGINX_PID" 2>/dev/null
NGINX_PID=
pgrep -f "$DIR/nginx" >/dev/null && die "an nginx process is still running"
say "nginx stopped; removing $DIR (token, certificates, PIN file)"
printf '\nDEMO OK: a CA, nginx and curl doing mutual TLS, every private key on a PKCS#11 token.\n'
