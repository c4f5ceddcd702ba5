#!/usr/bin/env bash
# t_x509_signing.sh: X.509 objects signed by token keys through the provider
# verify in software: CSRs (openssl req -new), self-signed CA certificates
# (req -x509), certificates issued by a token CA key (x509 -req -CAkey, also
# RSA-PSS, and openssl ca), and CRLs (openssl ca -gencrl) that revoke.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util python3
t_setup

key_gen carsa rsa2048 || bail_out "cannot generate RSA CA key on the token"
key_gen caec ec384 || bail_out "cannot generate EC CA key on the token"
key_gen rsa rsa2048 || bail_out "cannot generate RSA key on the token"
key_gen ec ec256 || bail_out "cannot generate EC key on the token"
key_gen ed ed25519 || bail_out "cannot generate Ed25519 key on the token"

# cert_matches_key CERT KEYNAME DESC: the certificate's public key is the
# token key's (openssl x509 -pubkey equals the token's public key object).
cert_matches_key()
{
    ossl_sw x509 -in "$1" -noout -pubkey -out "$1.pub"
    if [ "$RUN_RC" -ne 0 ]; then
        fail "$3"
        _run_diag
        return
    fi
    files_equal "$(key_pub "$2")" "$1.pub" "$3"
}

# verify_cert CA CERT DESC: openssl verify (default provider) says OK.
verify_cert()
{
    ossl_sw verify -CAfile "$1" "$2"
    run_ok_like ': OK$' "$3"
}

# --- self-signed CA certificates --------------------------------------------------------

for ca in carsa caec; do
    ca_make "$(key_uri "$ca")" "$T/$ca.crt" "/CN=Test CA $ca" \
        -addext 'subjectKeyIdentifier=hash'
    run_ok "$ca: openssl req -x509 -new -key <token URI> makes a CA certificate"
    verify_cert "$T/$ca.crt" "$T/$ca.crt" \
        "$ca: self-signed CA certificate verifies"
    cert_matches_key "$T/$ca.crt" "$ca" "$ca: CA certificate holds the token key"
done
ossl_sw x509 -in "$T/carsa.crt" -noout -text
file_like "$RUN_OUT" 'CA:TRUE' "carsa: CA certificate has basicConstraints CA:TRUE"

# --- CSRs --------------------------------------------------------------------------------

for k in rsa ec ed; do
    csr_make "$(key_uri "$k")" "/CN=leaf-$k/O=p11id test" "$T/$k.csr"
    run_ok "$k: openssl req -new -key <token URI> makes a CSR"
    ossl_sw req -in "$T/$k.csr" -verify -noout
    run_ok_like 'verify OK' "$k: CSR self-signature verifies (default provider)"
    ossl_sw req -in "$T/$k.csr" -noout -pubkey -out "$T/$k.csr.pub"
    files_equal "$(key_pub "$k")" "$T/$k.csr.pub" "$k: CSR holds the token key"
done

ossl req -new -key "$(key_uri rsa)" -subj "/CN=leaf-rsa-pss" -out "$T/rsa-pss.csr" \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
run_ok "RSA-PSS: openssl req -new -sigopt rsa_padding_mode:pss"
ossl_sw req -in "$T/rsa-pss.csr" -verify -noout -text
run_ok_like 'verify OK' "RSA-PSS: CSR self-signature verifies"
file_like "$RUN_OUT" 'Signature Algorithm: rsassaPss' \
    "RSA-PSS: CSR signature algorithm is rsassaPss"

# --- certificates issued by the token CA keys ------------------------------------------

# issue CA KEYNAME KIND DESC [x509 options]
issue()
{
    local ca=$1 k=$2 kind=$3 desc=$4
    shift 4
    cert_issue "$T/$ca.crt" "$(key_uri "$ca")" "$T/$k.csr" "$kind" \
        "$T/$k-by-$ca.crt" "$@"
    run_ok "$desc: openssl x509 -req -CAkey <token URI> issues the certificate"
    verify_cert "$T/$ca.crt" "$T/$k-by-$ca.crt" "$desc: certificate verifies"
    cert_matches_key "$T/$k-by-$ca.crt" "$k" \
        "$desc: certificate holds the subject's token key"
}

issue carsa rsa server "RSA CA, RSA server certificate"
issue carsa ed client "RSA CA, Ed25519 client certificate"
issue caec ec client "EC P-384 CA, EC client certificate"
issue caec rsa server "EC P-384 CA, RSA server certificate"
issue carsa ec client "RSA CA with RSA-PSS, EC client certificate" \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
ossl_sw x509 -in "$T/ec-by-carsa.crt" -noout -text
file_like "$RUN_OUT" 'Signature Algorithm: rsassaPss' \
    "RSA-PSS: issued certificate's signature algorithm is rsassaPss"

# A certificate from another (software) CA does not verify against the token CA:
# the verification checks above can fail.
soft_ca_make "$T" other "/CN=Other CA" || bail_out "cannot make a software CA"
ossl_sw verify -CAfile "$T/other.crt" "$T/rsa-by-carsa.crt"
run_fails "control: a token-CA certificate does not verify against another CA"

# --- openssl ca: issue, revoke, CRL ------------------------------------------------------

mkdir -p "$T/ca/newcerts"
: >"$T/ca/index.txt"
echo 1000 >"$T/ca/serial"
echo 01 >"$T/ca/crlnumber"
cat >"$T/ca.cnf" <<EOF
# openssl ca configuration of one p11id test run (providers: OPENSSL_CONF)
[ca]
default_ca = ca_default

[ca_default]
dir = $T/ca
database = \$dir/index.txt
new_certs_dir = \$dir/newcerts
serial = \$dir/serial
crlnumber = \$dir/crlnumber
default_md = sha256
default_days = 30
default_crl_days = 7
policy = policy_any
unique_subject = no
x509_extensions = leaf_ext
crl_extensions = crl_ext

[policy_any]
commonName = supplied
organizationName = optional

[leaf_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid:always

[crl_ext]
authorityKeyIdentifier = keyid:always
EOF

ossl ca -batch -config "$T/ca.cnf" -cert "$T/carsa.crt" \
    -keyfile "$(key_uri carsa)" -in "$T/ed.csr" -out "$T/ed-by-ca.crt"
run_ok "openssl ca -keyfile <token URI> issues a certificate"
verify_cert "$T/carsa.crt" "$T/ed-by-ca.crt" "openssl ca: certificate verifies"

ossl ca -batch -config "$T/ca.cnf" -cert "$T/carsa.crt" \
    -keyfile "$(key_uri carsa)" -revoke "$T/ed-by-ca.crt" -crl_reason keyCompromise
run_ok "openssl ca -revoke records the revocation"

ossl ca -batch -config "$T/ca.cnf" -cert "$T/carsa.crt" \
    -keyfile "$(key_uri carsa)" -gencrl -out "$T/crl.pem"
run_ok "openssl ca -gencrl -keyfile <token URI> signs a CRL"
ossl_sw crl -in "$T/crl.pem" -CAfile "$T/carsa.crt" -noout
run_ok_like 'verify OK' "CRL signature verifies with the CA certificate"
ossl_sw crl -in "$T/crl.pem" -noout -text
file_like "$RUN_OUT" "Serial Number: 1000" "CRL lists the revoked serial 1000"
ossl_sw verify -crl_check -CRLfile "$T/crl.pem" -CAfile "$T/carsa.crt" \
    "$T/ed-by-ca.crt"
run_fails "verify -crl_check refuses the revoked certificate"
run_err_like 'revoked' "verify names the certificate revoked"
ossl_sw verify -crl_check -CRLfile "$T/crl.pem" -CAfile "$T/carsa.crt" \
    "$T/rsa-by-carsa.crt"
run_ok_like ': OK$' "verify -crl_check accepts a certificate that is not revoked"

done_testing
