#!/usr/bin/env bash
# t_tool_ca.sh: p11id ca init, sign, revoke, crl, list and show with the CA
# key on a SoftHSM token: the CA certificate and the certificates it issues
# carry exactly the extensions of the profile, verify with openssl, are
# recorded in the ledger; a wrong CA key, an expired CA, an outliving
# --days and an existing output are refused with nothing recorded; revoked
# certificates land in a CRL that openssl verifies and enforces.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/ca_lib.sh"
ca_lib_require
t_setup
ca_lib_setup

# --- init ---------------------------------------------------------------------
tool_ok "ca init: a CA key on the token and its certificate" ca init "$TOK" \
    --subject "CN=p11id Test CA,O=Example" --days 365 --type ec:P-384 -o "$CA"
file_like "$RUN_OUT" "^CA key: +pkcs11:token=$TOKEN;.*object=ca;.*type=private" \
    "ca init prints the CA key's URI"
file_like "$RUN_OUT" "^on the token: +pkcs11:.*object=ca;.*type=cert" \
    "ca init prints the stored certificate's URI"
cert_text "$CA"
file_like "$CA.txt" 'Basic Constraints: critical' "CA: basicConstraints is critical"
file_like "$CA.txt" 'CA:TRUE, pathlen:0' "CA: CA:TRUE, pathlen 0"
file_like "$CA.txt" 'Key Usage: critical' "CA: keyUsage is critical"
file_like "$CA.txt" '^ *Certificate Sign, CRL Sign$' "CA: keyUsage keyCertSign and cRLSign only"
file_like "$CA.txt" 'Subject Key Identifier' "CA: a subject key identifier"
file_like "$CA.txt" 'Subject: O *= *Example, CN *= *p11id Test CA' "CA: the subject"
file_like "$CA.txt" 'ecdsa-with-SHA384' "CA: a P-384 key signs with SHA-384"
ski=$(awk '/Subject Key Identifier/ { getline; gsub(/ /, ""); print }' "$CA.txt")
aki=$(awk '/Authority Key Identifier/ { getline; gsub(/ |keyid:/, ""); print }' "$CA.txt")
is "$aki" "$ski" "CA: the authority key identifier is its own key's"
serial=$(cert_serial "$CA")
if [ "${#serial}" -ge 16 ]; then
    pass "CA: a serial of at least 64 bits ($serial)"
else
    fail "CA: a serial of at least 64 bits" "serial $serial"
fi
ossl_sw verify -CAfile "$CA" "$CA"
run_ok_like ': OK$' "CA: the self-signed certificate verifies"
ossl_sw x509 -in "$CA" -noout -pubkey -out "$T/ca.pub"
p11tool --token-label "$TOKEN" --read-object --type cert --label ca -o "$T/ca-token.der"
ossl_sw x509 -inform DER -in "$T/ca-token.der" -out "$T/ca-token.pem"
files_equal "$CA" "$T/ca-token.pem" "CA: the same certificate is stored on the token"
p11tool --token-label "$TOKEN" --login --pin "$PIN" --list-objects --type privkey
file_like "$RUN_OUT" 'never extractable' "CA: the key is sensitive and never extractable"
[ -f "$LEDGER" ] && pass "CA: the ledger is created beside the certificate" \
    || fail "CA: the ledger is created beside the certificate"
is "$(sqlite3 "$LEDGER" 'PRAGMA integrity_check')" ok "CA: the ledger is a sound SQLite database"
is "$(ledger_rows "$LEDGER")" 0 "CA: the new ledger is empty"

tool_refuses "ca init refuses an existing certificate file" 1 'exists' \
    ca init "$TOK" --subject "CN=Again" --days 10 --type ec:P-256 --label ca2 -o "$CA"
is "$(token_objects privkey ca2)" 0 "no key is generated when ca init is refused"
tool_refuses "ca init refuses --type and --key together" 2 'not both' \
    ca init "$TOK" --subject "CN=x" --days 10 --type ec:P-256 --key "$CAKEY" -o "$T/x.crt"
tool_refuses "ca init refuses an absurd --days" 2 'from 1 to 10950' \
    ca init "$TOK" --subject "CN=x" --days 99999 --type ec:P-256 -o "$T/x.crt"
no_file "$T/x.crt" "nothing written for a refused ca init"

# --- sign: profiles --------------------------------------------------------------
key_gen srv rsa2048 || bail_out "cannot generate the server key"
key_gen cli ec256 || bail_out "cannot generate the client key"
key_gen dual ed25519 || bail_out "cannot generate the dual-use key"
tool_ok "csr: server" csr "$(key_uri srv)" --subject "CN=srv.example" \
    --san DNS:srv.example,DNS:localhost,IP:127.0.0.1 --usage server -o "$T/srv.csr"
tool_ok "csr: client" csr "$(key_uri cli)" --subject "/O=Example/CN=client one" \
    --san email:one@example.com --usage client -o "$T/cli.csr"
tool_ok "csr: dual" csr "$(key_uri dual)" --subject "CN=dual.example" \
    --san DNS:dual.example --usage both -o "$T/dual.csr"

tool_ok "ca sign: the server request" ca sign --ca "$CAKEY" --ca-cert "$CA" \
    "$T/srv.csr" --profile server --days 30 -o "$T/srv.crt"
file_like "$RUN_OUT" "^issued [0-9A-F]+ to \"CN=srv.example\"" "ca sign names the serial it issued"
cert_text "$T/srv.crt"
ossl_sw verify -CAfile "$CA" -purpose sslserver "$T/srv.crt"
run_ok_like ': OK$' "server: verifies for purpose sslserver"
file_like "$T/srv.crt.txt" 'TLS Web Server Authentication$' "server: extendedKeyUsage serverAuth only"
file_like "$T/srv.crt.txt" 'Digital Signature, Key Encipherment$' \
    "server: an RSA key gets digitalSignature and keyEncipherment"
file_like "$T/srv.crt.txt" 'Basic Constraints: critical' "server: basicConstraints critical"
file_like "$T/srv.crt.txt" 'CA:FALSE' "server: CA:FALSE"
file_like "$T/srv.crt.txt" 'DNS:srv.example, DNS:localhost, IP Address:127.0.0.1' \
    "server: the names of the request"
file_like "$T/srv.crt.txt" "keyid:$ski|^ *$ski\$" "server: the authority key identifier is the CA's"
file_like "$T/srv.crt.txt" 'Subject Key Identifier' "server: a subject key identifier"
file_like "$T/srv.crt.txt" 'Issuer: O *= *Example, CN *= *p11id Test CA' "server: issued by the CA"
ossl_sw x509 -in "$T/srv.crt" -noout -pubkey -out "$T/srv.crt.pub"
files_equal "$(key_pub srv)" "$T/srv.crt.pub" "server: the certificate holds the token key"
srv_serial=$(cert_serial "$T/srv.crt")
is "${#srv_serial}" 32 "server: a 128-bit serial"

tool_ok "ca sign: the client request" ca sign --ca "$CAKEY" --ca-cert "$CA" \
    "$T/cli.csr" --profile client --days 30 -o "$T/cli.crt"
cert_text "$T/cli.crt"
ossl_sw verify -CAfile "$CA" -purpose sslclient "$T/cli.crt"
run_ok_like ': OK$' "client: verifies for purpose sslclient"
ossl_sw verify -CAfile "$CA" -purpose sslserver "$T/cli.crt"
run_fails "client: does not verify as a server"
file_like "$T/cli.crt.txt" 'TLS Web Client Authentication$' "client: extendedKeyUsage clientAuth only"
file_like "$T/cli.crt.txt" '^ *Digital Signature$' "client: keyUsage digitalSignature only"
file_like "$T/cli.crt.txt" 'email:one@example.com' "client: the email name"

tool_ok "ca sign: the dual-use request to standard output" ca sign --ca "$CAKEY" \
    --ca-cert "$CA" "$T/dual.csr" --profile both --days 30
cp "$RUN_OUT" "$T/dual.crt"
cert_text "$T/dual.crt"
file_like "$T/dual.crt.txt" 'TLS Web Server Authentication, TLS Web Client Authentication' \
    "both: serverAuth and clientAuth"
ossl_sw verify -CAfile "$CA" -purpose sslclient "$T/dual.crt"
run_ok_like ': OK$' "both: an Ed25519 certificate verifies as a client"

# The profile, not the request, decides: a server request signed as client.
tool_ok "ca sign: a server request with the client profile" ca sign --ca "$CAKEY" \
    --ca-cert "$CA" "$T/srv.csr" --profile client --days 5 -o "$T/srv-as-client.crt"
cert_text "$T/srv-as-client.crt"
file_unlike "$T/srv-as-client.crt.txt" 'Server Authentication' \
    "the requested serverAuth is not granted under the client profile"

# --- the ledger --------------------------------------------------------------------
is "$(ledger_rows "$LEDGER" issued)" 4 "the ledger holds the four certificates"
ledger_has "$LEDGER" "$srv_serial" && pass "the server's serial is in the ledger" \
    || fail "the server's serial is in the ledger"
tool_ok "ca list" ca list --ca-cert "$CA"
file_like "$RUN_OUT" "^$srv_serial +issued +[0-9-]{10} +server +CN=srv.example +DNS:srv.example" \
    "ca list shows serial, state, expiry, profile, subject and names"
tool_ok "ca list --json" ca list --ca-cert "$CA" --json
run python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
c = d["certificates"]
print(len(c), c[0]["state"], c[0]["profile"], c[0]["sans"][2])' "$RUN_OUT"
is "$(cat "$RUN_OUT")" "4 issued server IP:127.0.0.1" "ca list --json: valid JSON with every certificate"
tool_ok "ca show writes a certificate from the ledger" ca show "$srv_serial" \
    --ca-cert "$CA" -o "$T/srv-again.crt"
files_equal "$T/srv.crt" "$T/srv-again.crt" "ca show gives the issued certificate"
tool_refuses "ca show of an unknown serial" 1 'no certificate with serial' \
    ca show 0A0B --ca-cert "$CA"

# --- refusals: nothing recorded, nothing written --------------------------------------
rows=$(ledger_rows "$LEDGER")
key_gen other ec256 || bail_out "cannot generate another key"
tool_refuses "a CA key that is not the CA certificate's is refused" 1 \
    'is not the key of the CA certificate' \
    ca sign --ca "$(key_uri other)" --ca-cert "$CA" "$T/srv.csr" --profile server \
    --days 5 -o "$T/wrongkey.crt"
no_file "$T/wrongkey.crt" "nothing written with the wrong CA key"
tool_refuses "--days beyond the CA certificate is refused with the maximum" 1 \
    'would outlive the CA certificate.*--days 36[0-9] or fewer' \
    ca sign --ca "$CAKEY" --ca-cert "$CA" "$T/srv.csr" --profile server --days 400 \
    -o "$T/long.crt"
tool_refuses "--days above 3650 is a usage error" 2 'from 1 to 3650' \
    ca sign --ca "$CAKEY" --ca-cert "$CA" "$T/srv.csr" --profile server --days 5000 \
    -o "$T/long.crt"
tool_refuses "an unknown profile is refused" 1 'client, server or both' \
    ca sign --ca "$CAKEY" --ca-cert "$CA" "$T/srv.csr" --profile admin --days 5 \
    -o "$T/long.crt"
no_file "$T/long.crt" "nothing written for refused --days or profile"
printf 'old\n' >"$T/taken.crt"
tool_refuses "an existing output is refused before signing" 1 'exists: not overwritten' \
    ca sign --ca "$CAKEY" --ca-cert "$CA" "$T/srv.csr" --profile server --days 5 \
    -o "$T/taken.crt"
is "$(cat "$T/taken.crt")" old "the existing output is untouched"
tool_refuses "a leaf certificate as CA is refused" 1 'not a CA certificate' \
    ca sign --ca "$(key_uri srv)" --ca-cert "$T/srv.crt" "$T/cli.csr" --profile client \
    --days 5 -o "$T/leafca.crt"
tool_refuses "ca sign does not take --reason" 2 'does not take --reason' \
    ca sign --ca "$CAKEY" --ca-cert "$CA" "$T/srv.csr" --profile server --days 5 \
    --reason superseded
printf '0000' >"$T/wrong-pin.txt"
run "$P11ID_TOOL" ca sign --ca "$CAKEY" --ca-cert "$CA" "$T/srv.csr" --profile server \
    --days 5 -o "$T/pin.crt" --pin-file "$T/wrong-pin.txt"
is "$RUN_RC" 3 "a wrong PIN for the CA key exits 3"
run "$P11ID_TOOL" ca sign --ca "$CAKEY" --ca-cert "$CA" "$T/srv.csr" --profile server \
    --days 5 -o "$T/pin.crt"
is "$RUN_RC" 3 "no PIN and no terminal exits 3"
run_err_like 'give --pin-file FILE or --pin-env NAME' "and says how to give the PIN"
no_file "$T/pin.crt" "nothing issued without the PIN"
is "$(ledger_rows "$LEDGER")" "$rows" "refused requests leave the ledger as it was"

# An expired CA certificate for the same token key (openssl ca, dates set).
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
if run_ok "an expired CA certificate for the token key (openssl ca)"; then
    tool_refuses "an expired CA certificate is refused, with its date" 1 \
        'expired on 2020-02-01' \
        ca sign --ca "$CAKEY" --ca-cert "$T/expired.crt" "$T/srv.csr" \
        --profile server --days 5 -o "$T/expired-leaf.crt"
    no_file "$T/expired-leaf.crt" "nothing issued by an expired CA"
    no_file "$T/expired.crt.ledger" "no ledger made for an expired CA"
else
    skip_n 3 "openssl ca failed" "expired CA refused"
fi

# The output cannot be written after the certificate was recorded: the
# error says how to get it, and ca show does.
rows=$(ledger_rows "$LEDGER")
tool_refuses "an unwritable output after signing names ca show" 1 'p11id ca show [0-9A-F]+' \
    ca sign --ca "$CAKEY" --ca-cert "$CA" "$T/srv.csr" --profile server --days 5 \
    -o "$T/nodir/srv.crt"
is "$(ledger_rows "$LEDGER")" $((rows + 1)) "the issued certificate is in the ledger"
lost=$(sed -nE 's/.*p11id ca show ([0-9A-F]+).*/\1/p' "$RUN_ERR" | head -n 1)
tool_ok "ca show recovers it" ca show "$lost" --ca-cert "$CA" -o "$T/recovered.crt"
ossl_sw verify -CAfile "$CA" "$T/recovered.crt"
run_ok_like ': OK$' "the recovered certificate verifies"

# --- revoke, crl ------------------------------------------------------------------
cli_serial=$(cert_serial "$T/cli.crt")
tool_ok "ca revoke a serial" ca revoke "$srv_serial" --ca-cert "$CA" --reason keyCompromise
file_like "$RUN_OUT" "revoked $srv_serial \(keyCompromise\)" "ca revoke says what it did"
tool_refuses "revoking twice is refused" 1 'revoked already' \
    ca revoke "$srv_serial" --ca-cert "$CA"
tool_refuses "revoking an unknown serial is refused" 1 'no certificate with serial DEAD ' \
    ca revoke 0DEAD --ca-cert "$CA"
tool_refuses "a malformed serial is refused" 1 'not a hexadecimal number' \
    ca revoke xyz --ca-cert "$CA"
tool_refuses "an unknown reason is refused" 2 'unknown --reason' \
    ca revoke "$cli_serial" --ca-cert "$CA" --reason because
tool_ok "ca revoke a certificate file (lower-case colon serials work too)" \
    ca revoke "$T/cli.crt" --ca-cert "$CA" --reason superseded
tool_refuses "a certificate of another CA is refused" 1 'not issued by this CA' \
    ca revoke "$CA" --ca-cert "$T/expired.crt"
is "$(ledger_rows "$LEDGER" revoked)" 2 "the ledger holds two revocations"
tool_ok "ca list shows revocations" ca list --ca-cert "$CA"
file_like "$RUN_OUT" "^$srv_serial +revoked .*keyCompromise" "ca list: revoked, with its reason"

tool_ok "ca crl" ca crl --ca "$CAKEY" --ca-cert "$CA" -o "$T/ca.crl"
ossl_sw crl -in "$T/ca.crl" -CAfile "$CA" -verify -noout -text
run_ok_like 'verify OK' "the CRL's signature verifies under the CA"
cp "$RUN_OUT" "$T/crl.txt"
file_like "$T/crl.txt" 'Version 2' "CRL version 2"
file_like "$T/crl.txt" 'X509v3 CRL Number:' "the CRL has a CRL number"
file_like "$T/crl.txt" 'Authority Key Identifier' "the CRL names the CA's key"
file_like "$T/crl.txt" "Serial Number: $srv_serial" "the revoked server certificate is listed"
file_like "$T/crl.txt" 'Key Compromise' "with its reason"
file_like "$T/crl.txt" "Serial Number: $cli_serial" "the revoked client certificate is listed"
crl1=$(awk '/CRL Number/ { getline; gsub(/ /, ""); print }' "$T/crl.txt")
tool_ok "a second CRL" ca crl --ca "$CAKEY" --ca-cert "$CA" --days 7 -o "$T/ca2.crl"
ossl_sw crl -in "$T/ca2.crl" -noout -text
crl2=$(awk '/CRL Number/ { getline; gsub(/ /, ""); print }' "$RUN_OUT")
is "$crl1 $crl2" "1 2" "CRL numbers count up from the ledger"
cat "$CA" "$T/ca.crl" >"$T/ca+crl.pem"
ossl_sw verify -crl_check -CAfile "$T/ca+crl.pem" "$T/srv.crt"
run_fails "openssl verify -crl_check refuses the revoked certificate"
run_err_like 'certificate revoked' "because it is revoked"
ossl_sw verify -crl_check -CAfile "$T/ca+crl.pem" "$T/dual.crt"
run_ok_like ': OK$' "a certificate not revoked still verifies with the CRL"
tool_refuses "ca crl with the wrong key is refused" 1 'is not the key of the CA' \
    ca crl --ca "$(key_uri other)" --ca-cert "$CA" -o "$T/bad.crl"
no_file "$T/bad.crl" "no CRL written with the wrong key"

# --- a ledger belongs to one CA ----------------------------------------------------
tool_refuses "another CA's ledger is refused" 1 'belongs to another CA' \
    ca list --ca-cert "$T/srv.crt" --ledger "$LEDGER"
tool_refuses "a missing ledger is named" 1 "no CA ledger at $T/nothere.ledger" \
    ca list --ca-cert "$CA" --ledger "$T/nothere.ledger"
printf 'not a database, just text that is long enough to be a header....' \
    >"$T/junk.ledger"
tool_refuses "a file that is not a ledger is refused" 1 'not a p11id CA ledger|not a database' \
    ca list --ca-cert "$CA" --ledger "$T/junk.ledger"
tool_refuses "an unknown subcommand is a usage error" 2 'unknown subcommand' ca frobnicate
run "$P11ID_TOOL" help ca
run_ok_like '^p11id ca sign CSR --ca KEY-URI' "p11id help ca describes ca sign"

done_testing
