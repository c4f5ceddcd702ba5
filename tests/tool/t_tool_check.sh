#!/usr/bin/env bash
# t_tool_check.sh: p11id check diagnoses identities on a SoftHSM token: a good
# server identity (certificate on the token) passes every check; each broken
# part (host name, role, CA, another key's certificate, expiry soon, expired,
# not yet valid, no certificate, extractable key) gives its own line and the
# right exit status; --json says the same; a wrong PIN is exit 3.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/tool/diag_lib.sh
. "$(dirname "$0")/diag_lib.sh"
require_cmd openssl pkcs11-tool softhsm2-util python3
diag_setup

for k in ca srv cli; do
    key_gen "$k" ec256 || bail_out "cannot generate key $k on the token"
done
key_gen cli-rsa rsa2048 || bail_out "cannot generate an RSA key on the token"
ca_make "$(key_uri ca)" "$T/ca.crt" "/CN=p11id Check CA" \
    || bail_out "cannot make the CA certificate"
soft_ca_make "$T" otherca "/CN=Other CA" || bail_out "cannot make the other CA"

csr_make "$(key_uri srv)" /CN=localhost "$T/srv.csr" || bail_out "srv CSR"
csr_make "$(key_uri cli)" /CN=client "$T/cli.csr" || bail_out "cli CSR"
csr_make "$(key_uri cli-rsa)" /CN=client-rsa "$T/cli-rsa.csr" \
    || bail_out "cli-rsa CSR"
issue()
{
    cert_dated "$T/ca.crt" "$(key_uri ca)" "$T/$1.csr" "$2" "$T/$3.crt" \
        "$(days_from_now "$4")" "$(days_from_now "$5")" \
        || bail_out "cannot issue $3.crt"
}
issue srv server srv -1 90
issue cli client cli -1 90
issue cli-rsa client cli-rsa -1 90
issue cli client cli-soon -1 10
issue cli client cli-expired -60 -30
issue cli client cli-future 10 90

# The server's certificate lives on the token beside its key.
ossl_sw x509 -in "$T/srv.crt" -outform DER -out "$T/srv.der"
p11tool --token-label "$TOKEN" --login --pin "$PIN" --write-object "$T/srv.der" \
    --type cert --id "${KEY_ID[srv]}" --label srv
[ "$RUN_RC" -eq 0 ] || bail_out "cannot store srv.crt on the token"

P=(--pin-file "$T/pin.txt")

# --- a good identity ---------------------------------------------------------------

tool check "$(key_uri srv)" --ca "$T/ca.crt" --host localhost --usage server \
    "${P[@]}"
tool_rc 0 "good server identity: exit 0"
OUT=$RUN_OUT
file_like "$OUT" '^ok +key present: pkcs11:.*type=private.*\(EC P-256\)' \
    "key present, with its URI and type"
file_like "$OUT" '^ok +key protected: sensitive and not extractable' \
    "key is sensitive and not extractable"
file_like "$OUT" '^ok +key signs: a test signature made on the token verifies' \
    "key signs on the token, verified with the public key"
file_like "$OUT" '^ok +certificate: CN=localhost, issued by CN=p11id Check CA, from pkcs11:.*type=cert' \
    "certificate found on the token by CKA_ID"
file_like "$OUT" '^ok +certificate matches key' "certificate matches the key"
file_like "$OUT" '^ok +chain verifies: against .*ca.crt for TLS servers' \
    "chain verifies for the server purpose"
file_like "$OUT" '^ok +extended key usage: serverAuth: fits the server role' \
    "EKU fits the server role"
file_like "$OUT" '^ok +host name: localhost matches DNS:localhost' "host name matches"
file_like "$OUT" '^ok +validity: valid until .* \((89|90) days left\)' \
    "validity and days left"
file_like "$OUT" '^result: ok \(0 warnings\)' "summary: ok"

tool check "$(key_uri srv)" --host 127.0.0.1 "${P[@]}"
tool_rc 0 "an IP address in the SAN: exit 0"
file_like "$RUN_OUT" '^ok +host name: IP:127.0.0.1 is in the certificate' \
    "IP address checked against the IP SAN"
file_like "$RUN_OUT" '^skip chain verifies: not checked: give --ca' \
    "no --ca: the chain is skipped, saying how to check it"

tool check "$(key_uri cli-rsa)" --cert "$T/cli-rsa.crt" --ca "$T/ca.crt" \
    --usage client "${P[@]}"
tool_rc 0 "good RSA client identity with --cert: exit 0"
file_like "$RUN_OUT" '^ok +key signs' "RSA key signs on the token"
file_like "$RUN_OUT" '\(RSA 2048\)' "RSA key described"

# --- one broken part at a time --------------------------------------------------------

tool check "$(key_uri srv)" --host www.example.org "${P[@]}"
tool_rc 1 "host name not in the certificate: exit 1"
file_like "$RUN_OUT" '^FAIL host name: www.example.org is not among the certificate.s names \(DNS:localhost, IP:127.0.0.1\)' \
    "host mismatch names the certificate's names"
file_like "$RUN_OUT" '^result: FAIL \(1 of' "summary counts the failure"

tool check "$(key_uri cli)" --cert "$T/cli.crt" --usage server "${P[@]}"
tool_rc 1 "client certificate checked for the server role: exit 1"
file_like "$RUN_OUT" '^FAIL extended key usage: clientAuth, but the server role needs serverAuth' \
    "EKU mismatch says what the role needs"

tool check "$(key_uri cli)" --cert "$T/cli.crt" --ca "$T/otherca.crt" "${P[@]}"
tool_rc 1 "chain against another CA: exit 1"
file_like "$RUN_OUT" '^FAIL chain verifies: against .*otherca.crt: unable to get local issuer certificate.*not in --ca' \
    "chain failure says the issuer is not in --ca"

tool check "$(key_uri cli)" --cert "$T/srv.crt" "${P[@]}"
tool_rc 1 "another key's certificate: exit 1"
file_like "$RUN_OUT" '^FAIL certificate matches key: .*srv.crt certifies another key' \
    "certificate of another key detected"

tool check "$(key_uri cli)" --cert "$T/cli-soon.crt" "${P[@]}"
tool_rc 0 "10 days left: a warning, exit 0"
file_like "$RUN_OUT" '^warn validity: valid until .*: (9|10) days left, renew soon' \
    "warning under 30 days"
file_like "$RUN_OUT" '^result: ok \(1 warning\)' "summary counts the warning"

tool check "$(key_uri cli)" --cert "$T/cli-expired.crt" "${P[@]}"
tool_rc 1 "expired certificate: exit 1"
file_like "$RUN_OUT" '^FAIL validity: expired on .* \((29|30) days ago\): renew it' \
    "expired certificate: date and what to do"

tool check "$(key_uri cli)" --cert "$T/cli-future.crt" "${P[@]}"
tool_rc 1 "certificate not yet valid: exit 1"
file_like "$RUN_OUT" '^FAIL validity: not valid before .*check this machine.s clock' \
    "not yet valid: check the clock"

tool check "$(key_uri cli)" "${P[@]}"
tool_rc 1 "no certificate anywhere: exit 1"
file_like "$RUN_OUT" '^FAIL certificate: none on the token with the key.s CKA_ID: give --cert FILE' \
    "no certificate: says how to give one"

# --- JSON --------------------------------------------------------------------------

tool check "$(key_uri srv)" --ca "$T/ca.crt" --host localhost --usage server \
    --json "${P[@]}"
tool_rc 0 "--json, good identity: exit 0"
is "$(json_get "$RUN_OUT" 'd["ok"]')" true "--json: ok is true"
is "$(json_get "$RUN_OUT" '[c["check"] for c in d["checks"]]')" \
    '["key", "protection", "signature", "certificate", "match", "chain", "key_usage", "eku", "host", "validity"]' \
    "--json: every check, in order"
is "$(json_get "$RUN_OUT" 'sorted(set(c["status"] for c in d["checks"]))')" \
    '["ok"]' "--json: all ok"

tool check "$(key_uri cli)" --cert "$T/cli-expired.crt" --host localhost --json \
    "${P[@]}"
tool_rc 1 "--json, broken identity: exit 1"
is "$(json_get "$RUN_OUT" 'd["ok"]')" false "--json: ok is false"
is "$(check_status "$RUN_OUT" validity)" fail "--json: validity fails"
is "$(check_status "$RUN_OUT" host)" fail "--json: host fails"
is "$(check_status "$RUN_OUT" chain)" skip "--json: chain skipped without --ca"

# --- the key itself -----------------------------------------------------------------

tool check "pkcs11:token=$TOKEN;object=nosuchkey;type=private" "${P[@]}"
tool_rc 1 "missing key: exit 1"
run_err_like 'no private key matches .*object=nosuchkey' \
    "missing key: the error names the URI"
file_like "$RUN_OUT" '^FAIL key present' "missing key: FAIL line"

printf '9999\n' >"$T/wrong.pin"
tool check "$(key_uri srv)" --pin-file "$T/wrong.pin"
tool_rc 3 "wrong PIN: exit 3"
run_err_like 'PIN incorrect' "wrong PIN: says PIN incorrect"

# An extractable key: pkcs11-tool --extractable.
p11tool --token-label "$TOKEN" --login --pin "$PIN" --keypairgen \
    --key-type EC:prime256v1 --id 7e --label loose --extractable
if [ "$RUN_RC" -eq 0 ]; then
    tool check "pkcs11:token=$TOKEN;object=loose;type=private" "${P[@]}"
    file_like "$RUN_OUT" '^warn key protected: the key is CKA_EXTRACTABLE' \
        "extractable key: a warning"
else
    skip "pkcs11-tool cannot make an extractable key" "extractable key: a warning"
fi

tool check "$(key_uri srv)" --usage admin "${P[@]}"
tool_rc 2 "unknown --usage: exit 2"
tool check "${P[@]}"
tool_rc 2 "no KEY-URI: exit 2"

done_testing
