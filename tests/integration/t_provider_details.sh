#!/usr/bin/env bash
# t_provider_details.sh: provider behaviours not covered elsewhere: the PIN
# from the application's passphrase prompt (-passin), a private key whose
# public half comes from the certificate with the same CKA_ID, more digests
# and PSS salt lengths, DER public keys, load-behavior = early, and a module
# the application initialised before p11id.
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util
t_setup
key_gen rsa rsa2048
key_gen ec ec256
printf 'details\n' >"$T/data.txt"

# --- the PIN from the application's prompt ------------------------------
write_openssl_conf "$T/nopin.cnf" "pin-source="
OPENSSL_CONF="$T/nopin.cnf" run openssl pkey -in "$(key_uri ec)" -pubout -passin "pass:$PIN"
is "$RUN_RC" 0 "no pin-source: -passin answers the provider's PIN prompt"
files_equal "$RUN_OUT" "$T/keys/ec.pub.pem" "and the key is the token's"
OPENSSL_CONF="$T/nopin.cnf" run openssl pkey -in "$(key_uri ec)" -pubout -passin pass:wrong
run_fails "a wrong PIN through -passin fails cleanly"
run_err_like 'PIN incorrect' "and the error says the PIN is incorrect"
OPENSSL_CONF="$T/nopin.cnf" run openssl pkey -in "$(key_uri ec)" -pubout -passin "file:$T/pin.txt"
is "$RUN_RC" 0 "-passin file: works too"

# --- a private key without a public-key object ----------------------------
key_gen lone ec256
id=${KEY_ID[lone]}
ca_make "$(key_uri rsa)" "$T/ca.crt" "/CN=Details CA" || bail_out "no CA"
csr_make "$(key_uri lone)" /CN=lone "$T/lone.csr" || bail_out "no CSR"
ossl x509 -req -in "$T/lone.csr" -CA "$T/ca.crt" -CAkey "$(key_uri rsa)" -days 5 \
    -CAcreateserial -out "$T/lone.crt"
ossl_sw x509 -in "$T/lone.crt" -outform DER -out "$T/lone.der"
p11tool --token-label "$TOKEN" --login --pin "$PIN" --write-object "$T/lone.der" \
    --type cert --id "$id" --label lone
is "$RUN_RC" 0 "the certificate is stored with the key's CKA_ID"
p11tool --token-label "$TOKEN" --login --pin "$PIN" --delete-object --type pubkey --id "$id"
is "$RUN_RC" 0 "the key's public-key object is deleted"
ossl pkey -in "$(key_uri lone)" -pubout -out "$T/lone.pub"
is "$RUN_RC" 0 "the private key still loads: its public half comes from the certificate"
ossl_sw x509 -in "$T/lone.crt" -noout -pubkey -out "$T/lone.certpub"
files_equal "$T/lone.pub" "$T/lone.certpub" "and it is the certificate's public key"
ossl dgst -sha256 -sign "$(key_uri lone)" -out "$T/lone.sig" "$T/data.txt"
ossl_sw dgst -sha256 -verify "$T/lone.certpub" -signature "$T/lone.sig" "$T/data.txt"
is "$RUN_RC" 0 "and it signs on the token"

# --- digests and PSS salt lengths ------------------------------------------
for md in sha1 sha224; do
    ossl dgst "-$md" -sign "$(key_uri rsa)" -out "$T/$md.sig" "$T/data.txt"
    ossl_sw dgst "-$md" -verify "$T/keys/rsa.pub.pem" -signature "$T/$md.sig" "$T/data.txt"
    is "$RUN_RC" 0 "RSA PKCS#1 v1.5 with $md verifies"
done
for salt in max auto 0 20; do
    ossl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt "rsa_pss_saltlen:$salt" \
        -sign "$(key_uri rsa)" -out "$T/pss-$salt.sig" "$T/data.txt"
    ossl_sw dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:auto \
        -verify "$T/keys/rsa.pub.pem" -signature "$T/pss-$salt.sig" "$T/data.txt"
    is "$RUN_RC" 0 "RSA-PSS with salt length $salt verifies"
done
ossl dgst -sha384 -sign "$(key_uri ec)" -out "$T/ec384.sig" "$T/data.txt"
ossl_sw dgst -sha384 -verify "$T/keys/ec.pub.pem" -signature "$T/ec384.sig" "$T/data.txt"
is "$RUN_RC" 0 "ECDSA P-256 with SHA-384 verifies"

# --- public keys as DER and text ------------------------------------------
ossl pkey -in "$(key_uri ec)" -pubout -outform DER -out "$T/ec.pub.der"
ossl_sw pkey -pubin -in "$T/keys/ec.pub.pem" -outform DER -out "$T/ec.sw.der"
files_equal "$T/ec.pub.der" "$T/ec.sw.der" "a token public key encodes as SubjectPublicKeyInfo DER"
ossl pkey -in "$(key_uri ec)" -text -noout
file_like "$RUN_OUT" '^URI: pkcs11:token=' "-text names the key's URI"
file_like "$RUN_OUT" 'ASN1 OID: prime256v1' "-text prints the public half with its named curve"
file_unlike "$RUN_OUT" '^priv:' "-text prints no private component"

# --- load-behavior = early --------------------------------------------------
write_openssl_conf "$T/early.cnf" "load-behavior=early"
OPENSSL_CONF="$T/early.cnf" run openssl pkey -in "$(key_uri ec)" -pubout
is "$RUN_RC" 0 "load-behavior = early: keys load"
write_openssl_conf "$T/earlybad.cnf" "load-behavior=early" \
    "pkcs11-module-path=/nonexistent/module.so"
OPENSSL_CONF="$T/earlybad.cnf" run openssl list -providers
file_like "$RUN_OUT" 'p11id' "early with a missing module: the provider still loads (OpenSSL would drop it silently)"
OPENSSL_CONF="$T/earlybad.cnf" run openssl pkey -in "$(key_uri ec)" -pubout
run_fails "early with a missing module: using a key fails"
run_err_like 'cannot load PKCS#11 module /nonexistent/module.so' "and the error names the module"

# --- a module the application initialised first ---------------------------
PROG="$TOP_BUILDDIR/tests/integration/fork_threads"
if [ -x "$PROG" ]; then
    P11ID_TEST_PREINIT=$SOFTHSM_MODULE run "$PROG" threads "$(key_uri ec)" "$T/keys/ec.pub.pem" 2 10
    is "$RUN_RC" 0 "a module the application initialised first: p11id uses it"
    file_like "$RUN_OUT" 'initialised by the application first' "(it was initialised first)"
else
    skip_n 2 "$PROG not built" "preinit"
fi
# --- the key reference decoder's name ----------------------------------------
# Named P11ID-KEYREF, not RSA/EC/...: OpenSSL 3.0 instantiates every decoder
# named like the key type it decodes (each peer certificate's key), so a
# per-type name would tax every decoding in the process.
ossl list -decoders
file_like "$RUN_OUT" 'P11ID-KEYREF @ p11id' "the key reference decoder is listed as P11ID-KEYREF"
grep '@ p11id' "$RUN_OUT" | grep -E '\<(RSA|EC|ED25519|ED448|rsaEncryption|id-ecPublicKey)\>' >"$T/typed.txt"
is "$(wc -l <"$T/typed.txt")" 0 "no p11id decoder is named like a key type"
ossl list -key-managers
file_like "$RUN_OUT" 'P11ID-KEYREF @ p11id' "its key manager (which holds no keys) is listed"
done_testing
