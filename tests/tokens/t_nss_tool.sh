#!/usr/bin/env bash
# t_nss_tool.sh: the p11id tool and the provider on NSS softokn with NSS's own
# token label ("NSS Certificate DB"), and softokn's quirks: public RSA keys
# without CKA_MODULUS_BITS, keys extractable unless the template says
# otherwise, the internal crypto slot beside the database token, login with
# no retry counter, the init string in pReserved (pkcs11-module-init-args and
# x-init-reserved). keygen, csr, import, check and a wrong PIN.
P11ID_TOKEN_KIND=nss
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool python3
[ -x "${P11ID_TOOL:-}" ] || { echo "1..0 # SKIP p11id tool not built"; exit 0; }
TOKEN="NSS Certificate DB"
t_setup

TOKU="pkcs11:token=NSS%20Certificate%20DB"
REG="?module-name=nss"
tool() { run "$P11ID_TOOL" "$@"; }
tool_ok() {
    local desc=$1
    shift
    tool "$@"
    is "$RUN_RC" 0 "$desc" || _run_diag
}

# --- the registration and the two tokens -----------------------------------------
tool_ok "p11id tokens finds softokn registered as \"nss\" (x-init-reserved)" \
    tokens "pkcs11:$REG"
file_like "$RUN_OUT" 'token "NSS Certificate DB"' "the database token has NSS's label"
file_like "$RUN_OUT" "uri: +pkcs11:token=NSS%20Certificate%20DB;manufacturer=Mozilla%20Foundation;model=NSS%203;serial=0000000000000000" \
    "its URI encodes the spaces of the label"
file_like "$RUN_OUT" 'token "NSS Generic Crypto Services"' \
    "the internal crypto token (no login, no keys) is listed beside it"

# --- keygen: NSS honours CKA_EXTRACTABLE = false -------------------------------
declare -A URI=()
for spec in rsa:2048 ec:P-256 ec:P-384; do
    name=k-${spec//:/-}
    tool keygen "$TOKU$REG" --type "$spec" --label "$name" --pin-file "$T/pin.txt"
    is "$RUN_RC" 0 "keygen $spec on NSS" || _run_diag
    URI[$name]=$(head -n 1 "$RUN_OUT")
    file_unlike "$RUN_ERR" 'warning' "keygen $spec: no protection warning (softokn made it as asked)"
done
tool keygen "$TOKU$REG" --type ed25519 --label k-ed --pin-file "$T/pin.txt"
is "$RUN_RC" 1 "keygen ed25519 fails: softokn 3.87 has no Edwards curves"
file_like "$RUN_ERR" 'could not generate a ed25519 key.*mechanism' "and the error points at the mechanisms"

tool_ok "objects lists the keys" objects "$TOKU$REG" --pin-file "$T/pin.txt"
file_like "$RUN_OUT" 'access: +sensitive, not extractable' "p11id's keys are sensitive, not extractable"

# --- no CKA_MODULUS_BITS on public keys ------------------------------------------
rid=$(sed -E 's/.*;id=([^;?]*).*/\1/; s/%//g' <<<"${URI[k-rsa-2048]}" | tr A-F a-f)
p11tool --token-label "$TOKEN" --list-objects --type pubkey --id "$rid"
file_like "$RUN_ERR" 'MODULUS_BITS.*CKR_ATTRIBUTE_TYPE_INVALID' \
    "quirk: softokn's RSA public key has no CKA_MODULUS_BITS (pkcs11-tool)"
tool objects "$TOKU;object=k-rsa-2048;type=public$REG"
file_like "$RUN_OUT" 'type: +RSA 2048' "p11id objects takes the size from the modulus: RSA 2048"
ossl pkey -pubin -in "$(printf '%s;object=k-rsa-2048;type=public' "$TOKU")" -text -noout
run_ok_like 'Public-Key: \(2048 bit\)' "the provider's public key says 2048 bit"

# --- keys made without CKA_EXTRACTABLE in the template are extractable ----------
p11tool --token-label "$TOKEN" --login --pin "$PIN" --keypairgen \
    --key-type EC:prime256v1 --id 7e --label from-pkcs11-tool
is "$RUN_RC" 0 "pkcs11-tool (through p11-kit-proxy) makes a key on softokn"
file_like "$RUN_OUT" 'Access: +sensitive, always sensitive, extractable' \
    "quirk: softokn makes it extractable (the template did not say)"
tool_ok "objects shows it" objects "$TOKU;object=from-pkcs11-tool$REG" --pin-file "$T/pin.txt"
file_like "$RUN_OUT" 'access: +sensitive, EXTRACTABLE' "p11id objects: EXTRACTABLE"
tool check "$TOKU;object=from-pkcs11-tool$REG" --pin-file "$T/pin.txt"
file_like "$RUN_OUT" '^warn key protected: the key is CKA_EXTRACTABLE: it can be exported from token "NSS Certificate DB"' \
    "p11id check flags the extractable key and names the token"
file_like "$RUN_OUT" '^ok +key signs' "and the key still signs on the token"

# --- keygen warns when a token does not protect the key -------------------------
# softokn 3.87 honours the template; a shim reporting CKA_EXTRACTABLE = TRUE
# stands in for a token that does not, registered beside "nss".
SHIM=$T/extractable_shim.so
if run "${CC:-cc}" -shared -fPIC -o "$SHIM" $(pkg-config --cflags p11-kit-1) \
    "$TOP_SRCDIR/tests/tokens/extractable_shim.c" -ldl && [ "$RUN_RC" -eq 0 ]; then
    printf 'module: %s\nx-init-reserved: %s\n' "$SHIM" "$(nss_init_args)" \
        >"$P11ID_NSS_MODDIR/nss-shim.module"
    P11ID_SHIM_MODULE=$NSS_SOFTOKN tool keygen "$TOKU?module-name=nss-shim" \
        --type ec:P-256 --label k-shim --pin-file "$T/pin.txt"
    is "$RUN_RC" 0 "keygen through the shim makes the key"
    file_like "$RUN_ERR" 'warning: token "NSS Certificate DB" \(Mozilla Foundation NSS 3\) did not protect the new key as asked: CKA_EXTRACTABLE is true \(asked false\)' \
        "keygen warns, naming the token and the attribute"
    rm -f "$P11ID_NSS_MODDIR/nss-shim.module"
else
    _run_diag
    skip_n 2 "cannot compile the shim with ${CC:-cc}" "keygen warning"
fi

# --- csr, import, check ------------------------------------------------------------
tool_ok "csr for the RSA key on NSS" csr "${URI[k-rsa-2048]}$REG" --subject CN=nss-srv \
    --usage server --san DNS:localhost -o "$T/srv.csr" --pin-file "$T/pin.txt"
ossl_sw req -in "$T/srv.csr" -verify -noout
run_ok_like 'verify OK|Certificate request self-signature verify OK' \
    "the request's signature (made on softokn) verifies"
ca_make "${URI[k-ec-P-384]}" "$T/ca.crt" "/CN=NSS Test CA" || bail_out "no CA"
cert_issue "$T/ca.crt" "${URI[k-ec-P-384]}" "$T/srv.csr" server "$T/srv.crt" \
    || bail_out "no certificate"
pass "the CA key on softokn signs a certificate"
tool_ok "import stores the certificate beside the key" import \
    "${URI[k-rsa-2048]}$REG" "$T/srv.crt" --pin-file "$T/pin.txt"
tool check "${URI[k-rsa-2048]}$REG" --ca "$T/ca.crt" --host localhost \
    --usage server --pin-file "$T/pin.txt"
is "$RUN_RC" 0 "check passes for the key, its certificate and the CA" || _run_diag
file_like "$RUN_OUT" '^ok +key protected: sensitive and not extractable' "check: the key is protected"

# --- the internal slot and a URI without token= -----------------------------------
printf 'data\n' >"$T/d.txt"
ossl_ok "a URI naming only the object finds it past the internal crypto token" \
    dgst -sha256 -sign 'pkcs11:object=k-ec-P-256' -out "$T/d.sig" "$T/d.txt"
ossl pkey -pubin -in "$TOKU;object=k-ec-P-256;type=public" -out "$T/ec.pub"
ossl_sw dgst -sha256 -verify "$T/ec.pub" -signature "$T/d.sig" "$T/d.txt"
run_ok_like 'Verified OK' "its signature verifies"

# --- a wrong PIN; softokn has no retry counter -------------------------------------
printf 'wrong-pin\n' >"$T/wrong.pin"
tool keygen "$TOKU$REG" --type ec:P-256 --label nope --pin-file "$T/wrong.pin"
is "$RUN_RC" 3 "keygen with a wrong PIN exits 3"
file_like "$RUN_ERR" 'PIN incorrect|CKR_PIN_INCORRECT' "the error says the PIN is incorrect"
write_openssl_conf "$T/wrong.cnf" "pin-source=file:$T/wrong.pin"
OPENSSL_CONF=$T/wrong.cnf run openssl dgst -sha256 -sign "$TOKU;object=k-ec-P-256" \
    -out "$T/w.sig" "$T/d.txt"
run_fails "the provider with a wrong PIN fails cleanly"
run_err_like 'PIN incorrect|CKR_PIN_INCORRECT' "and says the PIN is incorrect"
for i in 1 2 3; do
    OPENSSL_CONF=$T/wrong.cnf run openssl dgst -sha256 -sign "$TOKU;object=k-ec-P-256" \
        -out "$T/w.sig" "$T/d.txt"
done
tool tokens "$TOKU$REG"
file_like "$RUN_OUT" 'user PIN: +ok' "after four wrong PINs softokn reports no low count or lock"
ossl_ok "and the right PIN still works" dgst -sha256 -sign "$TOKU;object=k-ec-P-256" \
    -out "$T/d2.sig" "$T/d.txt"

# --- init string: missing, and in a self-contained URI -----------------------------
write_openssl_conf "$T/noargs.cnf" "pkcs11-module-init-args="
OPENSSL_CONF=$T/noargs.cnf run openssl dgst -sha256 -sign "$TOKU;object=k-ec-P-256" \
    -out "$T/n.sig" "$T/d.txt"
run_fails "softokn without its init string: clean failure"
run_err_like 'C_Initialize.*CKR_ARGUMENTS_BAD' "the error names C_Initialize's refusal"
run_err_like 'pkcs11-module-init-args.*x-init-reserved' "and the two ways to give the init string"
OPENSSL_CONF="$T/default-only.cnf" run openssl dgst -sha256 \
    -provider-path "$P11ID_PROVIDER_DIR" -provider p11id -provider default \
    -sign "$TOKU;object=k-ec-P-256?module-name=nss&pin-value=$PIN" -out "$T/s.sig" "$T/d.txt"
run_ok "-provider p11id without configuration: module-name=nss brings x-init-reserved"

done_testing
