#!/usr/bin/env bash
# t_pkeyutl.sh: signing, decryption and ECDH derivation run on the token through
# the provider, and what they produce checks out with software (default provider
# alone): openssl pkeyutl -sign/-verify/-decrypt/-derive and openssl dgst -sign.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util python3
t_setup

key_gen rsa rsa2048 || bail_out "cannot generate RSA key on the token"
for k in ec256:ec256 ec384:ec384 ec521:ec521 ed:ed25519; do
    token_supports "${k#*:}" || continue
    key_gen "${k%%:*}" "${k#*:}" || bail_out "cannot generate ${k#*:} key on the token"
done
# have_key NAME: the key was made (the token has its type: token_supports).
have_key() { [ -n "${KEY_TYPE[$1]:-}" ]; }

D=$T/data.txt
printf 'p11id signs this line on a PKCS#11 token\n' >"$D"
for md in sha256 sha384 sha512; do
    ossl_sw dgst -"$md" -binary -out "$T/data.$md" "$D"
    [ "$RUN_RC" -eq 0 ] || bail_out "openssl dgst -$md failed"
done

# sign_verify NAME KEY MD DESC [pkeyopt...]: sign the digest on the token,
# verify it in software, and verify it through the provider with the
# token's public key object.
sign_verify()
{
    local name=$1 key=$2 md=$3 desc=$4
    shift 4
    have_key "$key" || { skip_n 3 "the token has no such key" "$desc"; return; }
    local -a opts=(-pkeyopt "digest:$md")
    local o
    for o in "$@"; do
        opts+=(-pkeyopt "$o")
    done
    ossl_ok "$desc: pkeyutl -sign with the token key" \
        pkeyutl -sign -inkey "$(key_uri "$key")" -in "$T/data.$md" \
        -out "$T/$name.sig" "${opts[@]}"
    ossl_sw pkeyutl -verify -pubin -inkey "$(key_pub "$key")" \
        -in "$T/data.$md" -sigfile "$T/$name.sig" "${opts[@]}"
    run_ok_like 'Signature Verified Successfully' \
        "$desc: signature verifies with the public key, default provider only"
    ossl_ok "$desc: pkeyutl -verify through the provider with the token's public key" \
        pkeyutl -verify -pubin -inkey "$(key_uri "$key" public)" \
        -in "$T/data.$md" -sigfile "$T/$name.sig" "${opts[@]}"
}

sign_verify rsa-pkcs1 rsa sha256 "RSA PKCS#1 v1.5 SHA-256"
sign_verify rsa-pss rsa sha256 "RSA-PSS SHA-256" rsa_padding_mode:pss \
    rsa_pss_saltlen:digest
sign_verify rsa-pss384 rsa sha384 "RSA-PSS SHA-384 MGF1-SHA-384" \
    rsa_padding_mode:pss rsa_pss_saltlen:digest rsa_mgf1_md:sha384
sign_verify ecdsa256 ec256 sha256 "ECDSA P-256 SHA-256"
sign_verify ecdsa384 ec384 sha384 "ECDSA P-384 SHA-384"
if token_supports ec521; then
    sign_verify ecdsa521 ec521 sha512 "ECDSA P-521 SHA-512"
else
    skip_n 3 "the token has no P-521 keys" "ECDSA P-521 SHA-512"
fi

# The software check can fail: a signature over other data is refused.
printf 'other data' >"$T/other.txt"
ossl_sw dgst -sha256 -binary -out "$T/other.sha256" "$T/other.txt"
ossl_sw pkeyutl -verify -pubin -inkey "$(key_pub rsa)" -in "$T/other.sha256" \
    -sigfile "$T/rsa-pkcs1.sig" -pkeyopt digest:sha256
run_fails "control: the RSA signature does not verify over other data"

# A PKCS#1 v1.5 signature is deterministic: the same input signed twice on the
# token gives the same bytes (the token really signs, no cache of garbage).
ossl pkeyutl -sign -inkey "$(key_uri rsa)" -in "$T/data.sha256" \
    -out "$T/rsa-pkcs1-again.sig" -pkeyopt digest:sha256
run_ok "RSA PKCS#1 v1.5: second signature of the same digest"
files_equal "$T/rsa-pkcs1.sig" "$T/rsa-pkcs1-again.sig" \
    "RSA PKCS#1 v1.5: both signatures are identical"

# Ed25519 signs the message itself (-rawin).
if ! have_key ed; then
    skip_n 3 "the token has no Ed25519 keys" "Ed25519 signatures"
else
ossl_ok "Ed25519: pkeyutl -sign -rawin with the token key" \
    pkeyutl -sign -rawin -inkey "$(key_uri ed)" -in "$D" -out "$T/ed.sig"
ossl_sw pkeyutl -verify -rawin -pubin -inkey "$(key_pub ed)" -in "$D" \
    -sigfile "$T/ed.sig"
run_ok_like 'Signature Verified Successfully' \
    "Ed25519: signature verifies with the public key, default provider only"
ossl_sw pkeyutl -verify -rawin -pubin -inkey "$(key_pub ed)" \
    -in "$T/other.sha256" -sigfile "$T/ed.sig"
run_fails "control: the Ed25519 signature does not verify over other data"
fi

# --- RSA decryption on the token of data encrypted in software ---------------------

head -c 32 /dev/urandom >"$T/secret.bin"

# decrypt_check NAME DESC [pkeyopt...]
decrypt_check()
{
    local name=$1 desc=$2
    shift 2
    local -a opts=()
    local o
    for o in "$@"; do
        opts+=(-pkeyopt "$o")
    done
    ossl_sw pkeyutl -encrypt -pubin -inkey "$(key_pub rsa)" -in "$T/secret.bin" \
        -out "$T/$name.ct" "${opts[@]}"
    [ "$RUN_RC" -eq 0 ] || bail_out "software encryption for $desc failed"
    ossl_ok "$desc: pkeyutl -decrypt with the token key" \
        pkeyutl -decrypt -inkey "$(key_uri rsa)" -in "$T/$name.ct" \
        -out "$T/$name.pt" "${opts[@]}"
    files_equal "$T/secret.bin" "$T/$name.pt" "$desc: plaintext recovered"
}

decrypt_check pkcs1 "RSA PKCS#1 v1.5 decryption"
decrypt_check oaep1 "RSA OAEP SHA-1 decryption" rsa_padding_mode:oaep

# SoftHSM 2.6 does OAEP with SHA-1 only (C_DecryptInit: CKR_ARGUMENTS_BAD for
# other hashes). Ask the token directly with pkcs11-tool; where it refuses,
# the provider must refuse cleanly too and say why.
OAEP256=(rsa_padding_mode:oaep rsa_oaep_md:sha256 rsa_mgf1_md:sha256)
# A driver that knows its token does it sets TOKEN_OAEP_SHA256=yes and skips
# the probe (NSS softokn refuses pkcs11-tool's OAEP parameters, not p11id's).
oaep256_ok=yes
if ! t_softkeys && [ "${TOKEN_OAEP_SHA256:-}" != yes ]; then
    ossl_sw pkeyutl -encrypt -pubin -inkey "$(key_pub rsa)" -in "$T/secret.bin" \
        -out "$T/probe.ct" -pkeyopt rsa_padding_mode:oaep \
        -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
    p11tool --token-label "$TOKEN" --login --pin "$PIN" --decrypt \
        --id "${KEY_ID[rsa]}" -m RSA-PKCS-OAEP --hash-algorithm SHA256 \
        --mgf MGF1-SHA256 -i "$T/probe.ct" -o "$T/probe.pt"
    if [ "$RUN_RC" -ne 0 ] && grep -q 'CKR_ARGUMENTS_BAD\|CKR_MECHANISM' "$RUN_ERR"; then
        oaep256_ok=no
        diag "the token refuses RSA OAEP with SHA-256 (pkcs11-tool: $(grep -o 'CKR_[A-Z_]*' "$RUN_ERR" | head -n 1))"
    fi
fi
if [ "$oaep256_ok" = yes ]; then
    decrypt_check oaep256 "RSA OAEP SHA-256 decryption" "${OAEP256[@]}"
else
    ossl_sw pkeyutl -encrypt -pubin -inkey "$(key_pub rsa)" -in "$T/secret.bin" \
        -out "$T/oaep256.ct" -pkeyopt "${OAEP256[0]}" -pkeyopt "${OAEP256[1]}" \
        -pkeyopt "${OAEP256[2]}"
    ossl pkeyutl -decrypt -inkey "$(key_uri rsa)" -in "$T/oaep256.ct" \
        -out "$T/oaep256.pt" -pkeyopt "${OAEP256[0]}" -pkeyopt "${OAEP256[1]}" \
        -pkeyopt "${OAEP256[2]}"
    run_fails "RSA OAEP SHA-256 decryption, which this token refuses: clean failure"
    run_err_like 'CKR_ARGUMENTS_BAD|CKR_MECHANISM|not supported|unsupported' \
        "RSA OAEP SHA-256 decryption, which this token refuses: the error says why"
    if [ "${P11ID_TOKEN_KIND:-softhsm}" = softhsm ]; then
        # The SoftHSM quirk (src/core/quirks.c) refuses before the token does.
        run_err_like 'does RSA-OAEP with SHA-1 only' \
            "SoftHSM's OAEP quirk: the error names the digests that work"
    fi
fi

# OAEP ciphertext with a label the decrypter does not use must be refused.
ossl_sw pkeyutl -encrypt -pubin -inkey "$(key_pub rsa)" -in "$T/secret.bin" \
    -out "$T/oaep-label.ct" -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_label:0102030405
[ "$RUN_RC" -eq 0 ] || bail_out "software OAEP encryption with a label failed"
ossl pkeyutl -decrypt -inkey "$(key_uri rsa)" -in "$T/oaep-label.ct" \
    -out "$T/oaep-label.pt" -pkeyopt rsa_padding_mode:oaep
run_fails "OAEP ciphertext with another label is refused cleanly"

# --- ECDH -----------------------------------------------------------------------------

# derive_check KEY CURVE DESC: the token derives with a software peer key; the
# peer derives with the token's public key; both secrets are equal.
derive_check()
{
    local key=$1 curve=$2 desc=$3
    if ! have_key "$key" || ! token_supports ecdh; then
        skip_n 2 "the token has no $curve key or no ECDH" "$desc"
        return
    fi
    ossl_sw genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$curve" \
        -out "$T/peer-$key.key"
    [ "$RUN_RC" -eq 0 ] || bail_out "cannot make a software $curve key"
    ossl_sw pkey -in "$T/peer-$key.key" -pubout -out "$T/peer-$key.pub"
    ossl_ok "$desc: pkeyutl -derive with the token key and a software peer" \
        pkeyutl -derive -inkey "$(key_uri "$key")" -peerkey "$T/peer-$key.pub" \
        -out "$T/ecdh-$key.token"
    ossl_sw pkeyutl -derive -inkey "$T/peer-$key.key" \
        -peerkey "$(key_pub "$key")" -out "$T/ecdh-$key.soft"
    [ "$RUN_RC" -eq 0 ] || bail_out "software ECDH derivation failed"
    files_equal "$T/ecdh-$key.soft" "$T/ecdh-$key.token" \
        "$desc: the token's shared secret equals the peer's"
}

if token_supports ecdh; then
    derive_check ec256 P-256 "ECDH P-256"
    derive_check ec384 P-384 "ECDH P-384"
else
    skip_n 4 "this token (or its transport) has no ECDH1-DERIVE" "ECDH"
fi

# --- openssl dgst -sign ----------------------------------------------------------------

# dgst_check KEY MD DESC [-sigopt ...]
dgst_check()
{
    local key=$1 md=$2 desc=$3
    shift 3
    have_key "$key" || { skip_n 2 "the token has no such key" "$desc"; return; }
    ossl_ok "$desc: openssl dgst -$md -sign with the token key" \
        dgst -"$md" -sign "$(key_uri "$key")" -out "$T/dgst-$key-$md.sig" "$@" "$D"
    ossl_sw dgst -"$md" -verify "$(key_pub "$key")" \
        -signature "$T/dgst-$key-$md.sig" "$@" "$D"
    run_ok_like '^Verified OK' \
        "$desc: openssl dgst -verify with the public key accepts it"
}

dgst_check rsa sha1 "RSA SHA-1"
dgst_check rsa sha224 "RSA SHA-224"
dgst_check rsa sha256 "RSA SHA-256"
dgst_check rsa sha384 "RSA SHA-384"
dgst_check rsa sha512 "RSA SHA-512"
dgst_check rsa sha3-256 "RSA SHA3-256 (DigestInfo by ASN.1)"
dgst_check ec256 sha256 "ECDSA P-256 SHA-256"
dgst_check ec384 sha384 "ECDSA P-384 SHA-384"
if token_supports ec521; then
    dgst_check ec521 sha512 "ECDSA P-521 SHA-512"
else
    skip_n 2 "the token has no P-521 keys" "ECDSA P-521 SHA-512 dgst"
fi
ossl_ok "RSA-PSS: openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sign" \
    dgst -sha256 -sign "$(key_uri rsa)" -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:32 -out "$T/dgst-pss.sig" "$D"
ossl_sw dgst -sha256 -verify "$(key_pub rsa)" -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:32 -signature "$T/dgst-pss.sig" "$D"
run_ok_like '^Verified OK' \
    "RSA-PSS: openssl dgst -verify with the public key accepts it"

done_testing
