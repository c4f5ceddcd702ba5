#!/usr/bin/env bash
# scripts/demo.sh: mutual TLS with every private key on a PKCS#11 token.
#
# Builds p11id, then in a temporary directory: creates a fresh SoftHSM token,
# generates a CA key, a server key (RSA) and a client key (EC) on it, makes a
# CA certificate and lets the token-held CA key sign the server and client
# certificates, then runs openssl s_server and s_client doing mutual TLS with
# both private keys on the token. Says what it does and what happened at each
# step; cleans up after itself. Exits 0 when the TLS exchange worked.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)

SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
PIN=1234
TOKEN=p11id-demo
STEP=0
DIR=
SERVER_PID=

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
    if ! timeout -k 5 60 "$@" </dev/null >"$log" 2>&1; then
        sed 's/^/    | /' "$log" >&2
        return 1
    fi
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup()
{
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    [ -n "$DIR" ] && rm -rf -- "$DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------
step "build p11id (scripts/build.sh)"
mkdir -p "$ROOT/_build"
if ! bash scripts/build.sh >"$ROOT/_build/demo-build.log" 2>&1; then
    tail -n 30 "$ROOT/_build/demo-build.log" >&2
    die "the build failed (full log: _build/demo-build.log)"
fi
PROVIDER_SO=$ROOT/src/provider/.libs/p11id.so
[ -f "$PROVIDER_SO" ] || die "the build did not produce $PROVIDER_SO"
say "built the provider: $PROVIDER_SO"

DIR=$(mktemp -d "${TMPDIR:-/tmp}/p11id-demo.XXXXXX") || die "mktemp failed"
cd "$DIR" || die "cannot enter $DIR"

# ---------------------------------------------------------------------------------
step "create a fresh SoftHSM token \"$TOKEN\" in $DIR/tokens"
mkdir -p tokens
cat >softhsm2.conf <<EOF
directories.tokendir = $DIR/tokens
objectstore.backend = file
log.level = ERROR
EOF
export SOFTHSM2_CONF=$DIR/softhsm2.conf
quiet init.log softhsm2-util --init-token --free --label "$TOKEN" \
    --so-pin 12345678 --pin "$PIN" || die "softhsm2-util could not create the token"
say "token \"$TOKEN\" created (user PIN $PIN, kept in $DIR/pin.txt for the provider)"
printf '%s' "$PIN" >pin.txt
chmod 600 pin.txt

# ---------------------------------------------------------------------------------
keygen()
{
    local id=$1 label=$2 type=$3 what=$4
    quiet "keygen-$label.log" pkcs11-tool --module "$SOFTHSM_MODULE" \
        --token-label "$TOKEN" --login --pin "$PIN" --keypairgen \
        --key-type "$type" --id "$id" --label "$label" \
        || die "pkcs11-tool could not generate the $what"
    local access
    access=$(sed -n '/^Private Key Object/,/^Public Key Object/s/^ *Access: *//p' \
        "keygen-$label.log" | head -n 1)
    say "generated the $what on the token: label \"$label\", id $id ($access)"
}
step "generate three key pairs on the token; the private keys never leave it"
keygen 01 ca EC:prime256v1 "CA key (EC P-256)"
keygen 02 server rsa:2048 "server key (RSA 2048)"
keygen 03 client EC:prime256v1 "client key (EC P-256)"

URI_CA="pkcs11:token=$TOKEN;object=ca;type=private"
URI_SERVER="pkcs11:token=$TOKEN;object=server;type=private"
URI_CLIENT="pkcs11:token=$TOKEN;object=client;type=private"

# ---------------------------------------------------------------------------------
step "activate the p11id provider for openssl through OPENSSL_CONF"
cat >openssl.cnf <<EOF
openssl_conf = openssl_init

[openssl_init]
providers = provider_sect

[provider_sect]
default = default_sect
p11id = p11id_sect

[default_sect]
activate = 1

[p11id_sect]
module = $PROVIDER_SO
pkcs11-module-path = $SOFTHSM_MODULE
pin-source = file:$DIR/pin.txt
activate = 1

[req]
distinguished_name = req_dn

[req_dn]
EOF
export OPENSSL_CONF=$DIR/openssl.cnf
say "openssl now loads p11id (module $SOFTHSM_MODULE, PIN from pin.txt);"
say "keys are named by URI, e.g. $URI_SERVER"

# ---------------------------------------------------------------------------------
step "make a self-signed CA certificate; the CA key on the token signs it"
quiet ca.log openssl req -x509 -new -key "$URI_CA" -subj "/CN=p11id Demo CA" \
    -days 7 -out ca.crt -addext 'basicConstraints=critical,CA:TRUE' \
    -addext 'keyUsage=critical,keyCertSign,cRLSign' \
    || die "openssl req -x509 with the token CA key failed"
say "CA certificate: $(openssl x509 -in ca.crt -noout -subject)"

issue()
{
    local name=$1 uri=$2 cn=$3 eku=$4 san=${5:-}
    quiet "$name-csr.log" openssl req -new -key "$uri" -subj "/CN=$cn" \
        -out "$name.csr" || die "openssl req -new with the $name key failed"
    {
        echo 'basicConstraints = CA:FALSE'
        echo 'keyUsage = critical,digitalSignature,keyEncipherment'
        echo "extendedKeyUsage = $eku"
        [ -n "$san" ] && echo "subjectAltName = $san"
    } >"$name.ext"
    quiet "$name-crt.log" openssl x509 -req -in "$name.csr" -CA ca.crt \
        -CAkey "$URI_CA" -set_serial "0x$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" \
        -days 7 -extfile "$name.ext" -out "$name.crt" \
        || die "openssl x509 -req -CAkey <token CA key> failed for the $name"
    quiet "$name-verify.log" openssl verify -CAfile ca.crt "$name.crt" \
        || die "the $name certificate does not verify"
    say "$name certificate for CN=$cn signed by the token CA key: $(cat "$name-verify.log")"
}
step "the server and the client each make a CSR with their token key; the CA key signs them"
issue server "$URI_SERVER" localhost serverAuth 'DNS:localhost,IP:127.0.0.1'
issue client "$URI_CLIENT" "demo client" clientAuth

# ---------------------------------------------------------------------------------
step "start openssl s_server on 127.0.0.1 with the server key on the token; it demands a client certificate"
PORT=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null) || PORT=$((20000 + RANDOM % 40000))
timeout -k 5 60 openssl s_server -accept "127.0.0.1:$PORT" -naccept 1 -rev \
    -cert server.crt -key "$URI_SERVER" -CAfile ca.crt -Verify 1 \
    -verify_return_error -tls1_3 </dev/null >server.out 2>server.err &
SERVER_PID=$!
for ((i = 0; i < 100; i++)); do
    grep -q '^ACCEPT' server.out 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
grep -q '^ACCEPT' server.out 2>/dev/null || {
    sed 's/^/    | /' server.err >&2
    die "s_server did not start"
}
say "s_server (pid $SERVER_PID) listens on 127.0.0.1:$PORT"

# ---------------------------------------------------------------------------------
MESSAGE="hello from a client whose key lives on a token"
step "connect with openssl s_client using the client key on the token and send a line"
printf '%s\nCLOSE\n' "$MESSAGE" >client.in
timeout -k 5 60 openssl s_client -connect "127.0.0.1:$PORT" -cert client.crt \
    -key "$URI_CLIENT" -CAfile ca.crt -verify_return_error \
    -verify_hostname localhost -ign_eof -brief <client.in >client.out 2>client.err
client_rc=$?
for ((i = 0; i < 100; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=

field() { sed -n "s/^$2: *//p" "$1" | head -n 1; }
say "client side:"
say "  protocol:                $(field client.err 'Protocol version')"
say "  cipher suite:            $(field client.err Ciphersuite)"
say "  server certificate:      $(field client.err 'Peer certificate')"
say "  server signature:        $(field client.err 'Signature type') with $(field client.err 'Hash used')"
say "  verification:            $(field client.err Verification)"
say "server side:"
say "  client certificate:      $(field server.err 'Peer certificate')"
say "  client signature:        $(field server.err 'Signature type') with $(field server.err 'Hash used')"
say "  verification:            $(field server.err Verification)"
reply=$(head -n 1 client.out)
say "message sent:              \"$MESSAGE\""
say "reply from the server:     \"$reply\" (s_server -rev sends each line back reversed)"

expected=$(printf '%s' "$MESSAGE" | rev)
if [ "$client_rc" -ne 0 ] || [ "$reply" != "$expected" ] \
    || [ "$(field server.err Verification)" != OK ]; then
    sed 's/^/    client | /' client.err >&2
    sed 's/^/    server | /' server.err >&2
    die "the mutual TLS exchange did not work as expected"
fi

step "clean up"
say "s_server has exited; removing $DIR (token, certificates, PIN file)"
printf '\nDEMO OK: mutual TLS with the server, client and CA private keys on a PKCS#11 token.\n'
exit 0
