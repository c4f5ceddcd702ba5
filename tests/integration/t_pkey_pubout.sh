#!/usr/bin/env bash
# t_pkey_pubout.sh: the public key the provider exports for a token key
# (openssl pkey -in pkcs11:... -pubout) is the token's public key object, byte
# for byte, for RSA, EC P-256/P-384/P-521 and Ed25519; EC keys carry a named
# curve, never explicit parameters.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util python3
t_setup

# name type  what "openssl pkey -pubin -text" must show
KEYS=(
    "rsa rsa2048 Public-Key: \\(2048 bit\\)"
    "ec256 ec256 ASN1 OID: prime256v1"
    "ec384 ec384 ASN1 OID: secp384r1"
    "ec521 ec521 ASN1 OID: secp521r1"
    "ed ed25519 ED25519 Public-Key"
)
declare -A NIST=([ec256]=P-256 [ec384]=P-384 [ec521]=P-521)
# A token without Ed25519 (NSS softokn) leaves it out.
token_supports ed25519 || unset 'KEYS[4]'

HAVE=()
for k in "${KEYS[@]}"; do
    read -r name type _ <<<"$k"
    if ! token_supports "$type"; then
        skip "the token has no $type keys" "$type: public key export"
        continue
    fi
    key_gen "$name" "$type" || bail_out "cannot generate $type key on the token"
    HAVE+=("$k")
done

for k in "${HAVE[@]}"; do
    read -r name type text <<<"$k"
    if ! token_supports "$type"; then
        skip "the token has no $type keys" "$type: public key export"
        continue
    fi
    out=$T/$name.from-private.pem
    ossl_ok "$type: openssl pkey -in <private key URI> -pubout" \
        pkey -in "$(key_uri "$name")" -pubout -out "$out"
    files_equal "$(key_pub "$name")" "$out" \
        "$type: exported public key equals the token's public key object"

    out2=$T/$name.from-public.pem
    ossl_ok "$type: openssl pkey -pubin -in <public key URI> -pubout" \
        pkey -pubin -in "$(key_uri "$name" public)" -pubout -out "$out2"
    files_equal "$(key_pub "$name")" "$out2" \
        "$type: public key object through the provider equals pkcs11-tool's"

    ossl_sw pkey -pubin -in "$out" -text -noout
    run_ok_like "$text" "$type: default provider reads the export: $text"
    if [ -n "${NIST[$name]:-}" ]; then
        file_like "$RUN_OUT" "NIST CURVE: ${NIST[$name]}" \
            "$type: named curve NIST ${NIST[$name]}"
        file_unlike "$RUN_OUT" 'Field Type|Polynomial|Prime:|Generator' \
            "$type: no explicit curve parameters"
    fi
done

# The export is deterministic and never a private key.
ossl pkey -in "$(key_uri rsa)" -pubout
run_ok "pkey -pubout to stdout"
file_unlike "$RUN_OUT" 'PRIVATE KEY' "pkey -pubout prints no private key block"

done_testing
