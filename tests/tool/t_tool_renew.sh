#!/usr/bin/env bash
# t_tool_renew.sh: p11id renew. With the CA key at hand: a new key of the
# same type beside the old one, a certificate with the old subject, names
# and usage, stored on the token while the old one stays; --same-key and
# --remove-old replace only after the new certificate is in place; a CA on
# another token with its own PIN. Without it: a request for a partner CA.
# Refusals (expired CA, no certificate to renew from, bad combinations)
# happen before any key is made.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/ca_lib.sh"
ca_lib_require
t_setup
ca_lib_setup

today=$(date -u +%Y%m%d)

tool_ok "ca init" ca init "$TOK" --subject "CN=Renew CA" --days 60 --type ec:P-256 -o "$CA"
tool_ok "keygen web" keygen "$TOK" --type ec:P-384 --label web
tool_ok "csr web" csr "pkcs11:token=$TOKEN;object=web" \
    --subject "CN=web.example,O=Example" --san DNS:web.example,IP:192.0.2.9 \
    --usage both -o "$T/web.csr"
tool_ok "ca sign web" ca sign --ca "$CAKEY" --ca-cert "$CA" "$T/web.csr" \
    --profile both --days 10 -o "$T/web.crt"
tool_ok "import web" import "pkcs11:token=$TOKEN;object=web" "$T/web.crt"

# --- a new key, issued at once ------------------------------------------------------
tool_ok "renew with the CA key: a new key and certificate" renew \
    "pkcs11:token=$TOKEN;object=web" --ca "$CAKEY" --ca-cert "$CA" --days 20 \
    -o "$T/web2.crt"
file_like "$RUN_OUT" "^new key: +pkcs11:token=$TOKEN;.*object=web-$today;.*type=private" \
    "renew prints the new key's URI (label with today's date)"
file_like "$RUN_OUT" "^new certificate: +pkcs11:.*object=web-$today;.*type=cert" \
    "renew prints the new certificate's URI"
cert_text "$T/web2.crt"
ossl_sw verify -CAfile "$CA" -purpose sslserver "$T/web2.crt"
run_ok_like ': OK$' "the renewed certificate verifies"
file_like "$T/web2.crt.txt" 'Subject: O *= *Example, CN *= *web\.example' "the old subject is kept"
file_like "$T/web2.crt.txt" 'DNS:web\.example, IP Address:192\.0\.2\.9' "the old names are kept"
file_like "$T/web2.crt.txt" 'TLS Web Server Authentication, TLS Web Client Authentication' \
    "the old usage (both) is kept"
file_like "$T/web2.crt.txt" 'NIST CURVE: P-384' "the new key has the old key's type"
ossl_sw x509 -in "$T/web.crt" -noout -pubkey -out "$T/web.pub"
ossl_sw x509 -in "$T/web2.crt" -noout -pubkey -out "$T/web2.pub"
if cmp -s "$T/web.pub" "$T/web2.pub"; then
    fail "the renewed certificate holds a new key"
else
    pass "the renewed certificate holds a new key"
fi
is "$(token_objects cert web)" 1 "the old certificate stays on the token"
is "$(token_objects cert "web-$today")" 1 "the new certificate is on the token"
is "$(token_objects privkey "web-$today")" 1 "beside its new key"
p11tool --token-label "$TOKEN" --read-object --type cert --label "web-$today" \
    -o "$T/web2-token.der"
ossl_sw x509 -inform DER -in "$T/web2-token.der" -out "$T/web2-token.pem"
files_equal "$T/web2.crt" "$T/web2-token.pem" "the token holds the certificate written to -o"
is "$(ledger_rows "$CA.ledger")" 2 "the renewal is in the ledger"

tool_ok "renew the renewed key: the date suffix is replaced, not stacked" renew \
    "pkcs11:token=$TOKEN;object=web-$today" --ca "$CAKEY" --ca-cert "$CA" --days 20
file_like "$RUN_OUT" "object=web-$today-2;" "a second renewal today is labelled web-$today-2"

# --- the same key; --remove-old -----------------------------------------------------
tool_ok "renew --same-key --remove-old" renew "pkcs11:token=$TOKEN;object=web" \
    --same-key --remove-old --ca "$CAKEY" --ca-cert "$CA" --days 15 --usage server \
    -o "$T/web3.crt"
file_like "$RUN_OUT" "^removed: +pkcs11:.*object=web;.*type=cert" "the old certificate is removed"
file_like "$RUN_OUT" "^new key: +pkcs11:.*object=web;" "the key is the same"
ossl_sw x509 -in "$T/web3.crt" -noout -pubkey -out "$T/web3.pub"
files_equal "$T/web.pub" "$T/web3.pub" "--same-key: the certificate holds the old key"
is "$(token_objects cert web)" 1 "the key has exactly one certificate: the new one"
p11tool --token-label "$TOKEN" --read-object --type cert --label web -o "$T/web3-token.der"
ossl_sw x509 -inform DER -in "$T/web3-token.der" -out "$T/web3-token.pem"
files_equal "$T/web3.crt" "$T/web3-token.pem" "and it is the renewed one"
cert_text "$T/web3.crt"
file_unlike "$T/web3.crt.txt" 'Client Authentication' "--usage server overrides the old usage"

tool_ok "renew a new key with --remove-old" renew "pkcs11:token=$TOKEN;object=web-$today" \
    --remove-old --label web-next --ca "$CAKEY" --ca-cert "$CA" --days 15
is "$(token_objects privkey "web-$today") $(token_objects pubkey "web-$today") $(token_objects cert "web-$today")" \
    "0 0 0" "--remove-old removes the replaced key pair and certificate"
is "$(token_objects privkey web-next) $(token_objects cert web-next)" "1 1" \
    "the new key and certificate are in place"

# --- a request for a partner -----------------------------------------------------
tool_ok "renew without a CA writes a request" renew "pkcs11:token=$TOKEN;object=web-next" \
    --label web-partner -o "$T/partner.csr"
file_like "$RUN_OUT" "^request: +$T/partner.csr" "renew says where the request is"
ossl_sw req -in "$T/partner.csr" -verify -noout -text
run_ok_like 'verify OK' "the request verifies"
file_like "$RUN_OUT" 'Subject: O *= *Example, CN *= *web\.example' "the request has the old subject"
is "$(token_objects privkey web-partner) $(token_objects cert web-partner)" "1 0" \
    "the new key waits on the token without a certificate"
tool_ok "the partner CA signs" ca sign --ca "$CAKEY" --ca-cert "$CA" "$T/partner.csr" \
    --profile server --days 5 -o "$T/partner.crt"
tool_ok "import installs the answer" import "pkcs11:token=$TOKEN;object=web-partner" \
    "$T/partner.crt"

# --- a CA on another token with another PIN ----------------------------------------
token_init ca2 5678 || bail_out "cannot make token ca2"
printf '5678' >"$T/ca2-pin.txt"
run "$P11ID_TOOL" ca init pkcs11:token=ca2 --subject "CN=Other CA" --days 30 \
    --type ec:P-256 -o "$T/ca2.crt" --pin-file "$T/ca2-pin.txt"
run_ok "a second CA on its own token with its own PIN"
tool_ok "renew with --ca-pin-file for the CA token" renew \
    "pkcs11:token=$TOKEN;object=web-partner" --same-key --ca "pkcs11:token=ca2;type=private" \
    --ca-cert "$T/ca2.crt" --ca-pin-file "$T/ca2-pin.txt" --days 5 -o "$T/other.crt"
ossl_sw verify -CAfile "$T/ca2.crt" "$T/other.crt"
run_ok_like ': OK$' "the certificate of the other CA verifies"

# --- refusals before any key is made -----------------------------------------------
keys_before=$(token_objects privkey 'web.*')
printf '%s\n' '[ca]' 'default_ca = old' '[old]' "database = $T/old-index.txt" \
    "new_certs_dir = $T" "serial = $T/old-serial" 'default_md = sha256' \
    'policy = pol' 'x509_extensions = ext' '[pol]' 'commonName = supplied' \
    '[ext]' 'basicConstraints = critical,CA:TRUE' \
    'keyUsage = critical,keyCertSign,cRLSign' >"$T/old-ca.cnf"
: >"$T/old-index.txt"
echo 01 >"$T/old-serial"
ossl req -new -key "$CAKEY" -subj "/CN=Expired CA" -out "$T/old.csr"
ossl ca -batch -config "$T/old-ca.cnf" -selfsign -keyfile "$CAKEY" -in "$T/old.csr" \
    -startdate 20200101000000Z -enddate 20200201000000Z -notext -out "$T/expired.crt"
tool_refuses "renew with an expired CA is refused" 1 'expired on 2020-02-01' \
    renew "pkcs11:token=$TOKEN;object=web" --ca "$CAKEY" --ca-cert "$T/expired.crt" --days 5
is "$(token_objects privkey 'web.*')" "$keys_before" "no key is made for an expired CA"
tool_ok "keygen a key without a certificate" keygen "$TOK" --type ec:P-256 --label bare
tool_refuses "renewing a key with no certificate needs --subject" 1 'give --usage|give --subject' \
    renew "pkcs11:token=$TOKEN;object=bare" --ca "$CAKEY" --ca-cert "$CA" --days 5
is "$(token_objects privkey 'bare.*')" 1 "no key is made when the subject is unknown"
tool_ok "with --subject and --usage it renews" renew "pkcs11:token=$TOKEN;object=bare" \
    --subject "CN=bare" --usage client --same-key --ca "$CAKEY" --ca-cert "$CA" --days 5
tool_refuses "--same-key with --label is a usage error" 2 'no --label or --type' \
    renew "pkcs11:token=$TOKEN;object=web" --same-key --label x
tool_refuses "--remove-old without --ca is a usage error" 2 'need --ca' \
    renew "pkcs11:token=$TOKEN;object=web" --remove-old
tool_refuses "--ca without --days is a usage error" 2 'needs --ca-cert and --days' \
    renew "pkcs11:token=$TOKEN;object=web" --ca "$CAKEY" --ca-cert "$CA"
tool_refuses "a malformed --san is refused" 1 'not an IPv4 or IPv6' \
    renew "pkcs11:token=$TOKEN;object=web" --san IP:1.2.3 --ca "$CAKEY" --ca-cert "$CA" \
    --days 5
run "$P11ID_TOOL" help renew
run_ok_like '^usage: p11id renew KEY-URI' "p11id help renew starts with the synopsis"

done_testing
