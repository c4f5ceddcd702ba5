#!/usr/bin/env bash
# t_tool_keys.sh: p11id tokens, objects, keygen, keyfile and import on a fresh
# SoftHSM token, and interoperability: keys and certificates p11id makes are
# listed and used by pkcs11-tool, GnuTLS (p11tool, gnutls-cli) and the libp11
# engine; keys pkcs11-tool makes are used by p11id.
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util python3
[ -x "${P11ID_TOOL:-}" ] || { echo "1..0 # SKIP p11id tool not built"; exit 0; }
t_setup
export P11ID_MODULE=$SOFTHSM_MODULE
TOK="pkcs11:token=$TOKEN"

tool() { run "$P11ID_TOOL" "$@"; }
tool_ok() {
    local desc=$1
    shift
    tool "$@"
    is "$RUN_RC" 0 "$desc" || diag_file "$RUN_ERR"
}
json_ok() {
    run python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$1"
    is "$RUN_RC" 0 "$2"
}
# The CKA_ID of a URI, as hex for pkcs11-tool --id.
uri_id() { printf '%s' "$1" | sed -E 's/.*;id=([^;?]*).*/\1/; s/%//g' | tr A-F a-f; }

# --- tokens ---------------------------------------------------------------
tool_ok "tokens lists the modules and tokens" tokens
file_like "$RUN_OUT" "token \"$TOKEN\"" "tokens: the test token is listed"
file_like "$RUN_OUT" "uri: +pkcs11:token=$TOKEN;manufacturer=[^;]+;model=[^;]+;serial=" \
    "tokens: each token with a copy-pasteable URI"
tool_ok "tokens --json --mechanisms" tokens --json --mechanisms "$TOK"
file_like "$RUN_OUT" '"CKM_ECDSA"' "tokens --mechanisms names the mechanisms"
json_ok "$RUN_OUT" "tokens --json is valid JSON"

# --- keygen -----------------------------------------------------------------
declare -A URI=()
declare -A KIND=([rsa:2048]=rsa2048 [ec:P-256]=ec256 [ec:P-384]=ec384
    [ec:P-521]=ec521 [ed25519]=ed25519)
for spec in rsa:2048 ec:P-256 ec:P-384 ec:P-521 ed25519; do
    name=k-${spec//:/-}
    if ! token_supports "${KIND[$spec]}"; then
        skip_n 3 "the token has no ${KIND[$spec]} keys" "keygen $spec"
        continue
    fi
    tool keygen "$TOK" --type "$spec" --label "$name" --pin-file "$T/pin.txt"
    is "$RUN_RC" 0 "keygen $spec" || diag_file "$RUN_ERR"
    URI[$name]=$(head -n 1 "$RUN_OUT")
    file_like "$RUN_OUT" "^pkcs11:token=$TOKEN;.*object=$name;id=%[0-9A-F]{2}.*;type=private$" \
        "keygen $spec prints the private key's URI"
    id=$(uri_id "${URI[$name]}")
    access=$(token_key_access "$TOKEN" "$id")
    case "$access" in
        *sensitive*"always sensitive"*"never extractable"*) pass "keygen $spec: sensitive, never extractable ($access)" ;;
        *) fail "keygen $spec: sensitive, never extractable" "access: '$access'" ;;
    esac
done

tool keygen "$TOK" --type ec:P-256 --label k-ec-P-256 --pin-file "$T/pin.txt"
is "$RUN_RC" 1 "keygen refuses a label already used"
file_like "$RUN_ERR" 'already has a key labelled "k-ec-P-256"' "the refusal names the existing key"
tool keygen "$TOK" --type dsa:1024 --label nope --pin-file "$T/pin.txt"
is "$RUN_RC" 2 "keygen refuses an unknown type (usage error)"
file_like "$RUN_ERR" 'unknown key type "dsa:1024"' "the refusal lists the known types"
printf 'wrong-pin\n' >"$T/wrong.pin"
tool keygen "$TOK" --type ec:P-256 --label nope --pin-file "$T/wrong.pin"
is "$RUN_RC" 3 "keygen with a wrong PIN exits 3"
file_like "$RUN_ERR" 'PIN incorrect|CKR_PIN_INCORRECT' "the error says the PIN is incorrect"
tool keygen "$TOK" --type ec:P-256 --label nope --pin-value 1234
is "$RUN_RC" 2 "a PIN is never taken from the command line"

# --- objects ----------------------------------------------------------------
tool_ok "objects with the PIN" objects "$TOK" --pin-file "$T/pin.txt"
file_like "$RUN_OUT" '^private-key pkcs11:.*object=k-rsa-2048;' "objects lists private keys with URIs"
file_like "$RUN_OUT" 'type: +RSA 2048' "objects gives RSA key sizes"
file_like "$RUN_OUT" 'type: +EC P-384' "objects gives EC curves"
if token_supports ed25519; then
    file_like "$RUN_OUT" 'type: +Ed25519' "objects gives Ed25519"
else
    skip "this token has no Ed25519" "objects gives Ed25519"
fi
file_like "$RUN_OUT" 'access: +sensitive, not extractable' "objects shows the key's access"
tool_ok "objects without a PIN" objects "$TOK"
file_unlike "$RUN_OUT" '^private-key' "without a PIN: no private keys"
file_like "$RUN_OUT" '^public-key pkcs11:.*object=k-ec-P-256;' "without a PIN: public keys listed"
tool_ok "objects --json" objects "$TOK" --json --pin-file "$T/pin.txt"
json_ok "$RUN_OUT" "objects --json is valid JSON"

# --- keyfile ----------------------------------------------------------------
kf=$T/k-ec.keyref.pem
tool_ok "keyfile writes a key reference file" keyfile "${URI[k-ec-P-256]}" -o "$kf" --pin-file "$T/pin.txt"
is "$(stat -c %a "$kf")" 600 "the key reference file is mode 0600"
file_like "$kf" '^-----BEGIN PKCS#11 PROVIDER URI-----$' "it is a PKCS#11 PROVIDER URI PEM block"
run_in "$kf" python3 "$T_LIBDIR/keyref.py" --decode
file_like "$RUN_OUT" 'object=k-ec-P-256' "it names the key"
file_unlike "$RUN_OUT" 'pin-value|1234' "it holds no PIN"
tool keyfile "${URI[k-ec-P-256]}" -o "$kf" --pin-file "$T/pin.txt"
is "$RUN_RC" 1 "keyfile does not overwrite an existing file"
file_like "$RUN_ERR" 'exists: not overwritten \(--force' "and says how to overwrite"
tool_ok "keyfile --force overwrites" keyfile "${URI[k-ec-P-256]}" -o "$kf" --force --pin-file "$T/pin.txt"
ossl dgst -sha256 -sign "$kf" -out "$T/kf.sig" "$T/pin.txt"
is "$RUN_RC" 0 "openssl signs with the key reference file"
ossl pkey -in "$kf" -pubout -out "$T/kf.pub"
ossl_sw dgst -sha256 -verify "$T/kf.pub" -signature "$T/kf.sig" "$T/pin.txt"
is "$RUN_RC" 0 "the signature verifies with the key's public half"
tool_ok "keyfile --with-module --with-pin" keyfile "${URI[k-ec-P-256]}" -o "$T/withpin.pem" \
    --with-module --with-pin --pin-file "$T/pin.txt"
file_like "$RUN_ERR" 'holds the PIN' "--with-pin warns that the file holds the PIN"
run_in "$T/withpin.pem" python3 "$T_LIBDIR/keyref.py" --decode
file_like "$RUN_OUT" "module-path=$SOFTHSM_MODULE&pin-value=1234" "--with-module --with-pin put them in the URI"
OPENSSL_CONF="$T/default-only.cnf" run openssl dgst -sha256 -provider-path "$P11ID_PROVIDER_DIR" \
    -provider p11id -provider default -sign "$T/withpin.pem" -out /dev/null "$T/pin.txt"
is "$RUN_RC" 0 "that file works with -provider p11id alone, no configuration"

# --- import -----------------------------------------------------------------
ca_make "${URI[k-ec-P-384]}" "$T/ca.crt" "/CN=Keys Test CA" || bail_out "no CA"
csr_make "${URI[k-rsa-2048]}" /CN=rsa-srv "$T/rsa.csr" || bail_out "no CSR"
ossl x509 -req -in "$T/rsa.csr" -CA "$T/ca.crt" -CAkey "${URI[k-ec-P-384]}" -days 10 \
    -CAcreateserial -out "$T/rsa.crt"
is "$RUN_RC" 0 "a certificate for the RSA key, signed by the token CA key"
tool_ok "import stores the certificate beside its key" import "${URI[k-rsa-2048]}" "$T/rsa.crt" \
    --chain "$T/ca.crt" --pin-file "$T/pin.txt"
file_like "$RUN_OUT" "^pkcs11:token=$TOKEN;.*object=k-rsa-2048;id=.*;type=cert$" "import prints the certificate's URI"
tool import "${URI[k-ec-P-256]}" "$T/rsa.crt" --pin-file "$T/pin.txt"
is "$RUN_RC" 1 "import refuses a certificate of another key"
file_like "$RUN_ERR" 'not the public key of .*k-ec-P-256' "and says why"
tool_ok "objects after import" objects "$TOK" --pin-file "$T/pin.txt"
file_like "$RUN_OUT" '^certificate pkcs11:.*object=k-rsa-2048;.*type=cert$' "the certificate is listed with its URI"
file_like "$RUN_OUT" 'cert: +pkcs11:.*object=k-rsa-2048;.*type=cert' "the key names its certificate"
file_like "$RUN_OUT" 'key: +pkcs11:.*object=k-rsa-2048;.*type=private' "the certificate names its key"
file_like "$RUN_OUT" 'subject: +/CN=rsa-srv' "the certificate's subject"
file_like "$RUN_OUT" '\(9 days left\)|\(10 days left\)' "days left"
file_like "$RUN_OUT" '^certificate pkcs11:.*object=Keys%20Test%20CA;' "the chain's CA certificate, labelled by its CN"

# --- interoperability: pkcs11-tool -------------------------------------------
rid=$(uri_id "${URI[k-rsa-2048]}")
p11tool --token-label "$TOKEN" --read-object --type cert --id "$rid" -o "$T/rsa.from-token.der"
ossl_sw x509 -in "$T/rsa.crt" -outform DER -out "$T/rsa.der"
files_equal "$T/rsa.from-token.der" "$T/rsa.der" "pkcs11-tool reads the certificate p11id stored (same CKA_ID)"
printf 'interop data\n' >"$T/data.txt"
p11tool --token-label "$TOKEN" --login --pin "$PIN" --sign --id "$rid" -m SHA256-RSA-PKCS \
    -i "$T/data.txt" -o "$T/p11tool.sig"
is "$RUN_RC" 0 "pkcs11-tool signs with the key p11id generated"
ossl_sw x509 -in "$T/rsa.crt" -pubkey -noout -out "$T/rsa.pub"
ossl_sw dgst -sha256 -verify "$T/rsa.pub" -signature "$T/p11tool.sig" "$T/data.txt"
is "$RUN_RC" 0 "and the signature verifies with the certificate's key"

# Keys pkcs11-tool makes are used by p11id.
p11tool --token-label "$TOKEN" --login --pin "$PIN" --keypairgen --key-type EC:prime256v1 \
    --id 7e --label from-pkcs11-tool
tool_ok "p11id lists a key pkcs11-tool made" objects "$TOK;object=from-pkcs11-tool" --pin-file "$T/pin.txt"
file_like "$RUN_OUT" '^private-key pkcs11:.*object=from-pkcs11-tool;id=%7E;type=private' "with its URI"
tool_ok "p11id writes its key reference file" keyfile "$TOK;object=from-pkcs11-tool" -o "$T/pt.pem" --pin-file "$T/pin.txt"
ossl dgst -sha256 -sign "$T/pt.pem" -out "$T/pt.sig" "$T/data.txt"
is "$RUN_RC" 0 "and OpenSSL signs with it through p11id"

# --- interoperability: GnuTLS ------------------------------------------------
if command -v gnutls-cli >/dev/null 2>&1 && [ -x /usr/bin/p11tool ]; then
    # GnuTLS never loads p11id: run it (and the SoftHSM inside, which reads
    # OPENSSL_CONF) without p11id and without the ASan runtime an ASan build
    # preloads into the commands it tests (uninstrumented programs can hang
    # with it).
    ASAN_PRELOAD= OPENSSL_CONF="$T/default-only.cnf" run /usr/bin/p11tool --provider "$SOFTHSM_MODULE" --login \
        --set-pin="$PIN" --list-all "$TOK"
    is "$RUN_RC" 0 "GnuTLS p11tool lists the token"
    file_like "$RUN_OUT" 'object=k-rsa-2048' "GnuTLS p11tool sees the key p11id generated"
    file_like "$RUN_OUT" 'Type: X.509 Certificate' "and the certificate p11id stored"
    # mutual TLS: GnuTLS client with the p11id-made key, openssl s_server
    # with another p11id-made key through the provider.
    csr_make "${URI[k-ec-P-256]}" /CN=localhost "$T/srv.csr" || bail_out "no CSR"
    ossl x509 -req -in "$T/srv.csr" -CA "$T/ca.crt" -CAkey "${URI[k-ec-P-384]}" -days 10 \
        -CAcreateserial -out "$T/srv.crt"
    port=$(free_port)
    # -rev: s_server answers each line reversed and does not read its stdin
    bg_start gsrv openssl s_server -accept "127.0.0.1:$port" -naccept 1 -Verify 1 \
        -verify_return_error -rev -CAfile "$T/ca.crt" -cert "$T/srv.crt" \
        -key "${URI[k-ec-P-256]}"
    if wait_for_line "$T/gsrv.out" '^ACCEPT' "$BG_PID" 60; then
        printf 'hello from gnutls\n' >"$T/g.in"
        ASAN_PRELOAD= OPENSSL_CONF="$T/default-only.cnf" run_in "$T/g.in" gnutls-cli --port "$port" 127.0.0.1 \
            --x509cafile "$T/ca.crt" --verify-hostname localhost \
            --x509certfile "$T/rsa.crt" \
            --x509keyfile "$TOK;object=k-rsa-2048;type=private;pin-value=$PIN" \
            --provider "$SOFTHSM_MODULE"
        file_like "$RUN_OUT" 'sltung morf olleh' \
            "gnutls-cli does mutual TLS with the p11id-made key against s_server on p11id"
        bg_stop "$BG_PID"
        file_like "$T/gsrv.err" 'depth=0 CN = rsa-srv|verify return:1' \
            "s_server verified the GnuTLS client's certificate"
    else
        bg_stop "$BG_PID"
        fail "s_server for the GnuTLS test starts" "no ACCEPT"
        diag_file "$T/gsrv.err"
        skip_n 1 "s_server did not start" "gnutls-cli"
    fi
else
    skip_n 4 "GnuTLS tools (gnutls-bin) are not installed" "GnuTLS interoperability"
fi

# --- interoperability: the libp11 engine --------------------------------------
ENGINE_SO=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
if ! token_supports libp11-engine; then
    skip_n 6 "the libp11 engine cannot use this token" "libp11"
elif [ -f "$ENGINE_SO" ]; then
    # libp11 0.4.12 crashes enumerating a token that holds Ed25519 keys (any
    # key, even ones pkcs11-tool made): give the engine a token without them.
    token_init engine-test || bail_out "no second token"
    ETOK="pkcs11:token=engine-test"
    cat >"$T/engine.cnf" <<EOF
openssl_conf = init
[init]
engines = engines
[engines]
pkcs11 = pkcs11_sect
[pkcs11_sect]
engine_id = pkcs11
dynamic_path = $ENGINE_SO
MODULE_PATH = $SOFTHSM_MODULE
PIN = $PIN
init = 0
EOF
    chmod 600 "$T/engine.cnf"
    ossl_sw dgst -sha256 -binary -out "$T/data.sha256" "$T/data.txt"
    for spec in rsa:2048 ec:P-256; do
        name=e-${spec//:/-}
        tool keygen "$ETOK" --type "$spec" --label "$name" --pin-file "$T/pin.txt"
        is "$RUN_RC" 0 "keygen $spec for the engine test"
        ossl pkey -in "$ETOK;object=$name;type=private" -pubout -out "$T/$name.pub"
        OPENSSL_CONF="$T/engine.cnf" run openssl pkeyutl -engine pkcs11 -keyform engine \
            -inkey "$ETOK;object=$name;type=private" -sign -pkeyopt digest:sha256 \
            -in "$T/data.sha256" -out "$T/$name.sig"
        is "$RUN_RC" 0 "the libp11 engine signs with the $spec key p11id generated" \
            || diag_file "$RUN_ERR"
        ossl_sw dgst -sha256 -verify "$T/$name.pub" -signature "$T/$name.sig" "$T/data.txt"
        is "$RUN_RC" 0 "the engine's $spec signature verifies"
    done
else
    skip_n 6 "the libp11 engine (libengine-pkcs11-openssl) is not installed" "libp11"
fi

done_testing
