#!/usr/bin/env bash
# t_tpm2_token.sh: what tpm2-pkcs11 on a software TPM does differently, seen
# through p11id: RSA 3072 (the TPM's largest) and its refusal of 4096, p11id
# keygen and csr on the TPM, the spare uninitialised slot the module always
# offers (listed, never used, a URI naming it gets a clear error), C_CopyObject
# unsupported (p11id signs with the token object, silently), a wrong PIN
# (tried once), keys made by tpm2_ptool, and the module's p11-kit registration.
set -u
: "${TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
P11ID_TOKEN_KIND=tpm2
# shellcheck source=tests/lib/common.sh
. "$TOP_SRCDIR/tests/lib/common.sh"
require_cmd openssl pkcs11-tool python3
[ -x "${P11ID_TOOL:-}" ] || { echo "1..0 # SKIP p11id tool not built"; exit 0; }
t_setup
export P11ID_MODULE=$SOFTHSM_MODULE
tool() { run "$P11ID_TOOL" "$@"; }

key_gen rsa3k rsa3072 || bail_out "cannot generate an RSA 3072 key on the TPM"
key_gen ec ec256 || bail_out "cannot generate a P-256 key on the TPM"
D=$T/data.txt
printf 'signed by a TPM\n' >"$D"
ossl_sw dgst -sha256 -binary -out "$T/data.sha256" "$D"

# --- RSA 3072, the largest RSA key the TPM has ------------------------------------
for pad in pkcs1 pss; do
    opts=(-pkeyopt digest:sha256)
    [ "$pad" = pss ] && opts+=(-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:digest)
    ossl_ok "RSA 3072 $pad: pkeyutl -sign on the TPM" pkeyutl -sign \
        -inkey "$(key_uri rsa3k)" -in "$T/data.sha256" -out "$T/rsa3k-$pad.sig" "${opts[@]}"
    ossl_sw pkeyutl -verify -pubin -inkey "$(key_pub rsa3k)" -in "$T/data.sha256" \
        -sigfile "$T/rsa3k-$pad.sig" "${opts[@]}"
    run_ok_like 'Signature Verified Successfully' "RSA 3072 $pad: verifies in software"
done

# The TPM's PSS salt is the digest length; a request for the longest salt is
# refused cleanly, not answered with a signature that does not verify.
ossl pkeyutl -sign -inkey "$(key_uri rsa3k)" -in "$T/data.sha256" -out "$T/max.sig" \
    -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:max
if [ "$RUN_RC" -eq 0 ]; then
    ossl_sw pkeyutl -verify -pubin -inkey "$(key_pub rsa3k)" -in "$T/data.sha256" \
        -sigfile "$T/max.sig" -pkeyopt digest:sha256 -pkeyopt rsa_padding_mode:pss \
        -pkeyopt rsa_pss_saltlen:max
    run_ok_like 'Signature Verified Successfully' "RSA-PSS with the longest salt: what the TPM signs verifies"
else
    run_fails "RSA-PSS with the longest salt, which the TPM cannot do: clean failure"
fi

# --- p11id keygen and csr on the TPM ---------------------------------------------
tool keygen "pkcs11:token=$TOKEN" --type rsa:3072 --label tool-rsa3k --pin-file "$T/pin.txt"
run_ok "p11id keygen rsa:3072 on the TPM"
uri=$(head -n 1 "$RUN_OUT")
tool csr "$uri" --subject "CN=tpm.example.com" --usage server \
    --san DNS:tpm.example.com -o "$T/tpm.csr" --pin-file "$T/pin.txt"
run_ok "p11id csr with the TPM's RSA 3072 key"
ossl_sw req -in "$T/tpm.csr" -verify -noout
run_ok_like 'verify OK|Certificate request self-signature verify OK' \
    "the CSR's self-signature verifies in software"
tool keygen "pkcs11:token=$TOKEN" --type rsa:4096 --label tool-rsa4k --pin-file "$T/pin.txt"
run_fails "p11id keygen rsa:4096, larger than the TPM does: clean failure"
run_err_like 'CKR_[A-Z_]+|not supported|unsupported|size' \
    "p11id keygen rsa:4096: the error says why"

# --- the uninitialised slot -------------------------------------------------------
p11tool -L
uninit=$(awk '/^Slot [0-9]+ \(0x[0-9a-f]+\)/ { s = $3 }
    /token state: +uninitialized/ { gsub(/[():]/, "", s); print s; exit }' "$RUN_OUT")
[ -n "$uninit" ] && uninit=$((uninit))
if [ -z "$uninit" ]; then
    fail "tpm2-pkcs11 offers a slot with an uninitialised token" "pkcs11-tool -L:"
    diag_file "$RUN_OUT"
    skip_n 5 "no uninitialised slot" "the uninitialised slot"
else
    pass "tpm2-pkcs11 offers a slot with an uninitialised token (slot $uninit)"
    tool tokens
    run_ok_like "slot $uninit: token not initialised \\(ignored\\)" \
        "p11id tokens lists slot $uninit as not initialised"
    file_like "$RUN_OUT" "token \"$TOKEN\"" "p11id tokens still lists the initialised token"
    tool objects "pkcs11:slot-id=$uninit" --pin-file "$T/pin.txt"
    run_fails "p11id objects with a URI naming the uninitialised slot: an error"
    run_err_like "slot $uninit of .*not initialised" "the error says the slot's token is not initialised"
    ossl pkey -in "pkcs11:slot-id=$uninit;object=rsa3k;type=private" -pubout
    run_err_like "slot $uninit of .*not initialised" \
        "openssl with a URI naming the uninitialised slot: the error says why"
fi

# --- C_CopyObject: not supported; signing uses the token object silently ----------
P11ID_DEBUG=$T/trace.log ossl pkeyutl -sign -inkey "$(key_uri ec)" \
    -in "$T/data.sha256" -out "$T/ec.sig" -pkeyopt digest:sha256
run_ok "ECDSA P-256 signs with session copies asked for (the default)"
if [ -s "$RUN_ERR" ]; then
    fail "nothing on stderr about the refused copy"
    diag_file "$RUN_ERR"
else
    pass "nothing on stderr about the refused copy"
fi
file_like "$T/trace.log" 'refused a session copy \(CKR_FUNCTION_NOT_SUPPORTED\)' \
    "the trace says the token refused C_CopyObject"
ossl_sw pkeyutl -verify -pubin -inkey "$(key_pub ec)" -in "$T/data.sha256" \
    -sigfile "$T/ec.sig" -pkeyopt digest:sha256
run_ok_like 'Signature Verified Successfully' "the token object's signature verifies"

# --- wrong PIN: tpm2-pkcs11 answers CKR_PIN_INCORRECT; tried once ----------------
printf '9999' >"$T/wrong.pin"
write_openssl_conf "$T/wrongpin.cnf" "pin-source=file:$T/wrong.pin" \
    "pkcs11-module-path=$PKCS11_SPY_MODULE"
if [ ! -f "$PKCS11_SPY_MODULE" ]; then
    skip_n 4 "no pkcs11-spy module at $PKCS11_SPY_MODULE" "wrong PIN counted"
else
    OPENSSL_CONF="$T/wrongpin.cnf" PKCS11SPY="$SOFTHSM_MODULE" \
        PKCS11SPY_OUTPUT="$T/spy.log" run openssl pkeyutl -sign -inkey "$(key_uri ec)" \
        -in "$T/data.sha256" -out "$T/wrong.sig" -pkeyopt digest:sha256
    run_fails "wrong PIN: clean failure"
    run_err_like 'PIN incorrect|CKR_PIN_INCORRECT' "wrong PIN: the error says the PIN is incorrect"
    is "$(grep -Ec '^[0-9]+: C_Login$' "$T/spy.log")" 1 "wrong PIN: exactly one C_Login (pkcs11-spy)"
    ossl_ok "the right PIN still works after one wrong try" pkeyutl -sign \
        -inkey "$(key_uri ec)" -in "$T/data.sha256" -out "$T/ec2.sig" -pkeyopt digest:sha256
fi

# --- a key made by tpm2_ptool ------------------------------------------------------
tpm2_run tpm2_ptool addkey --label="$TOKEN" --key-label=ptool-ec --userpin="$PIN" \
    --algorithm=ecc256 --path "$TPM2_PKCS11_STORE"
run_ok "tpm2_ptool addkey makes a P-256 key"
ossl_ok "p11id exports the public key of tpm2_ptool's key" \
    pkey -in "pkcs11:token=$TOKEN;object=ptool-ec;type=private" -pubout -out "$T/ptool.pub"
ossl_ok "p11id signs with tpm2_ptool's key" pkeyutl -sign \
    -inkey "pkcs11:token=$TOKEN;object=ptool-ec;type=private" \
    -in "$T/data.sha256" -out "$T/ptool.sig" -pkeyopt digest:sha256
ossl_sw pkeyutl -verify -pubin -inkey "$T/ptool.pub" -in "$T/data.sha256" \
    -sigfile "$T/ptool.sig" -pkeyopt digest:sha256
run_ok_like 'Signature Verified Successfully' "tpm2_ptool key: the signature verifies"

# --- the module's p11-kit registration (Debian installs tpm2_pkcs11.module) --------
if [ -f /usr/share/p11-kit/modules/tpm2_pkcs11.module ]; then
    write_openssl_conf "$T/registered.cnf" "pkcs11-module-path="
    OPENSSL_CONF="$T/registered.cnf" ossl pkeyutl -sign \
        -inkey "pkcs11:token=$TOKEN;object=rsa3k;type=private?module-name=tpm2_pkcs11" \
        -in "$T/data.sha256" -out "$T/reg.sig" -pkeyopt digest:sha256
    run_ok "module-name=tpm2_pkcs11 (p11-kit registration) selects the TPM token"
else
    skip "tpm2_pkcs11 is not registered with p11-kit" "module-name=tpm2_pkcs11"
fi

done_testing
