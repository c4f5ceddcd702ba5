#!/usr/bin/env bash
# t_storeutl.sh: the provider's OSSL_STORE for pkcs11: URIs lists a token's
# private keys, public keys and certificates (each with its URI), honours the
# expected type (storeutl -keys, -certs), lists private keys only when it can
# log in, and returns a certificate imported with pkcs11-tool unchanged.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util python3
t_setup

if t_softkeys; then
    skip "P11ID_TEST_SOFTKEYS=1: every point here is about the provider's store" \
        "storeutl on pkcs11: URIs"
    done_testing
fi

key_gen srv rsa2048 || bail_out "cannot generate RSA key on the token"
key_gen cli ec256 || bail_out "cannot generate EC key on the token"

# A certificate for the token key "srv", made without the provider: a software
# CA certifies the public key read by pkcs11-tool (x509 -force_pubkey).
soft_ca_make "$T" softca "/CN=Soft CA" || bail_out "cannot make a software CA"
ossl_sw req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/dummy.key" -subj "/CN=srv.example" -out "$T/dummy.csr"
[ "$RUN_RC" -eq 0 ] || bail_out "cannot make a CSR"
ossl_sw x509 -req -in "$T/dummy.csr" -CA "$T/softca.crt" -CAkey "$T/softca.key" \
    -force_pubkey "$(key_pub srv)" -set_serial 77 -days 30 -out "$T/srv.crt"
[ "$RUN_RC" -eq 0 ] || { _run_diag; bail_out "cannot certify the srv key"; }
ossl_sw x509 -in "$T/srv.crt" -outform DER -out "$T/srv.der"
p11tool --token-label "$TOKEN" --login --pin "$PIN" --write-object "$T/srv.der" \
    --type cert --id "${KEY_ID[srv]}" --label srv
[ "$RUN_RC" -eq 0 ] || { _run_diag; bail_out "pkcs11-tool cannot import the certificate"; }

# count TYPE: how many objects of TYPE ("Pkey", "Public key", "Certificate")
# the last storeutl listed (its lines are "<n>: <type>", indented under -r).
count()
{
    grep -Ec "^ *[0-9]+: $1\$" "$RUN_OUT"
}

# --- everything on the token ----------------------------------------------------

ossl storeutl -r "pkcs11:token=$TOKEN"
run_ok "storeutl pkcs11:token=$TOKEN lists the token"
is "$(count Pkey)" 2 "all objects: 2 private keys"
is "$(count 'Public key')" 2 "all objects: 2 public keys"
is "$(count Certificate)" 1 "all objects: 1 certificate"
# A private key is printed as a key reference file: its URI names the key.
python3 "$T_LIBDIR/keyref.py" --decode <"$RUN_OUT" >"$T/listed-uris.txt" 2>&1
for k in srv cli; do
    file_like "$T/listed-uris.txt" "^pkcs11:.*object=$k(;|\$)" \
        "all objects: private key $k is listed by its URI (key reference block)"
done

# --- expected type honoured --------------------------------------------------------

ossl storeutl -r -keys "pkcs11:token=$TOKEN"
run_ok "storeutl -keys"
is "$(count Pkey)" 2 "-keys: both private keys"
is "$(( $(count Certificate) + $(count 'Public key') ))" 0 \
    "-keys: no certificate and no public key"

ossl storeutl -r -certs "pkcs11:token=$TOKEN"
run_ok "storeutl -certs"
is "$(count Certificate)" 1 "-certs: the certificate"
is "$(( $(count Pkey) + $(count 'Public key') ))" 0 "-certs: no keys"
sed -n '/^-----BEGIN CERTIFICATE-----$/,/^-----END CERTIFICATE-----$/p' "$RUN_OUT" \
    >"$T/listed.crt"
files_equal "$T/srv.crt" "$T/listed.crt" \
    "-certs: the certificate is the one imported with pkcs11-tool"

ossl storeutl -certs "pkcs11:token=$TOKEN;object=srv;type=cert"
run_ok "storeutl -certs with object=srv;type=cert"
is "$(count Certificate)" 1 "type=cert: one certificate"

ossl storeutl "pkcs11:token=$TOKEN;object=cli;type=public"
run_ok "storeutl with object=cli;type=public"
is "$(count 'Public key')" 1 "type=public: one public key"
is "$(count Pkey)" 0 "type=public: no private key"

# The certificate is usable where OpenSSL takes a certificate file.
ossl x509 -in "pkcs11:token=$TOKEN;object=srv;type=cert" -noout -subject
run_ok_like 'CN *= *srv\.example' "openssl x509 -in <certificate URI> reads the certificate"

# --- without a PIN no private key is listed ----------------------------------------

write_openssl_conf "$T/nopin.cnf" "pin-source="
OPENSSL_CONF="$T/nopin.cnf" ossl storeutl -r "pkcs11:token=$TOKEN"
if [ "$RUN_RC" -lt 124 ] && ! run_crashed; then
    pass "no PIN configured: storeutl ends without a crash or a prompt"
else
    fail "no PIN configured: storeutl ends without a crash or a prompt"
    _run_diag
fi
is "$(count Pkey)" 0 "no PIN: no private key listed"
is "$(count 'Public key')" 2 "no PIN: public keys listed"
is "$(count Certificate)" 1 "no PIN: certificate listed"

done_testing
