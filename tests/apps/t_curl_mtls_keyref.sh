#!/usr/bin/env bash
# t_curl_mtls_keyref.sh: curl (OpenSSL backend) does mutual TLS with its
# private key on a token, named by a key reference file (`--key
# client.keyref.pem`), the provider activated by OPENSSL_CONF and the PIN
# from its pin-source file: EC and RSA client keys, TLS 1.3 and 1.2, and the
# server sees the client's certificate. Without the provider, with a wrong
# PIN, or without a client certificate, curl fails cleanly with the errors
# docs/curl.md explains; --pass answers the PIN prompt when there is no
# pin-source.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/apps.sh
. "$(dirname "$0")/../lib/apps.sh"
require_cmd curl openssl pkcs11-tool softhsm2-util python3
if ! curl --version | grep -q 'OpenSSL/3'; then
    echo "1..0 # SKIP curl is not built with OpenSSL 3 ($(curl --version | head -n 1))"
    exit 0
fi
apps_setup
apps_pki rsa2048 ec256
key_gen cli-rsa rsa2048 "$TOKEN_CLI" || bail_out "cannot generate the RSA client key"
identity_issue cli-rsa client "/O=p11id Test/OU=apps/CN=client-rsa" "$T/cli-rsa.crt" \
    || bail_out "cannot issue the RSA client certificate"
keyref_write cli-rsa "$T/cli-rsa.keyref.pem" || bail_out "cannot write the RSA key reference"
diag "$(curl --version | head -n 1)"

# The server: openssl s_server -www (its key on the token too), requiring a
# client certificate; its status page shows the client's certificate.
PORT=$(free_port) || bail_out "no free port"
T_TIMEOUT=300 bg_start server openssl s_server -accept "127.0.0.1:$PORT" -www \
    -cert "$SRV_CRT" -key "$SRV_REF" -CAfile "$CA_CRT" -Verify 1 -verify_return_error
SPID=$BG_PID
wait_for_line "$T/server.out" '^ACCEPT' "$SPID" 60 || {
    diag_file "$T/server.err"
    bail_out "s_server did not start"
}
URL=https://127.0.0.1:$PORT/

# page_like NAME ERE DESC: the s_server status page has a line matching ERE.
page_like()
{
    file_like "$T/$1.body" "$2" "$3"
}

# --- EC and RSA client keys, TLS 1.3 and 1.2 -----------------------------------------
https_get_ok ec13 "$URL" "EC client key by key reference file, TLS 1.3" \
    --cert "$CLI_CRT" --key "$CLI_REF"
page_like ec13 '^Client certificate' "EC, TLS 1.3: the server got the client's certificate"
page_like ec13 'Subject: O *= *p11id Test, OU *= *apps, CN *= *client-1' \
    "EC, TLS 1.3: it is the client's certificate"
page_like ec13 'Protocol *: TLSv1\.3' "EC, TLS 1.3: protocol TLSv1.3"

https_get_ok ec12 "$URL" "EC client key by key reference file, TLS 1.2" \
    --tls-max 1.2 --cert "$CLI_CRT" --key "$CLI_REF"
page_like ec12 'Protocol *: TLSv1\.2' "EC, TLS 1.2: protocol TLSv1.2"
page_like ec12 'CN *= *client-1' "EC, TLS 1.2: the server got the client's certificate"

https_get_ok rsa13 "$URL" "RSA client key by key reference file, TLS 1.3 (RSA-PSS)" \
    --cert "$T/cli-rsa.crt" --key "$T/cli-rsa.keyref.pem"
page_like rsa13 'CN *= *client-rsa' "RSA, TLS 1.3: the server got the client's certificate"
https_get_ok rsa12 "$URL" "RSA client key by key reference file, TLS 1.2" \
    --tls-max 1.2 --cert "$T/cli-rsa.crt" --key "$T/cli-rsa.keyref.pem"
page_like rsa12 'Protocol *: TLSv1\.2' "RSA, TLS 1.2: protocol TLSv1.2"

https_get_ok types "$URL" "--cert-type PEM --key-type PEM (what curl assumes anyway)" \
    --cert-type PEM --cert "$CLI_CRT" --key-type PEM --key "$CLI_REF"

# curl itself signed on the token, with the PIN of the pin-source file.
P11ID_DEBUG=$T/curl.trace https_get traced "$URL" --cert "$CLI_CRT" --key "$CLI_REF"
file_like "$T/curl.trace" "p11id_token_login: token \"$TOKEN_CLI\": logged in\$" \
    "trace: curl logged in to the client token (PIN from pin-source, no prompt)"

# The sample wrapper of conf/, as shipped, its paths from the environment.
P11ID_OPENSSL_CONF=$OPENSSL_CONF P11ID_CA=$CA_CRT P11ID_CERT=$CLI_CRT P11ID_KEY=$CLI_REF \
    run sh "$TOP_SRCDIR/conf/curl-p11id.sh" -sS --max-time 20 -o "$T/sample.body" \
    -w '%{http_code}' "$URL"
is "$(cat "$RUN_OUT")" 200 "conf/curl-p11id.sh: 200"
file_like "$T/sample.body" 'CN *= *client-1' "conf/curl-p11id.sh: the server got the client's certificate"

# --- failures, and what they look like ---------------------------------------------------
# Without the provider the key reference file is not a key to OpenSSL.
OPENSSL_CONF=$T/default-only.cnf https_get noprov "$URL" --cert "$CLI_CRT" --key "$CLI_REF"
is "$RUN_RC" 58 "provider not active: curl exits 58"
file_like "$T/noprov.err" "unable to set private key file: '.*cli\.keyref\.pem' type PEM" \
    "provider not active: 'unable to set private key file'"

# A wrong PIN: the same curl message; the provider's error is in the trace.
printf 'wrong-pin-0000\n' >"$T/wrong.pin"
chmod 600 "$T/wrong.pin"
write_openssl_conf "$T/wrong.cnf" "pin-source=file:$T/wrong.pin"
OPENSSL_CONF=$T/wrong.cnf P11ID_DEBUG=$T/wrong.trace https_get wrongpin "$URL" \
    --cert "$CLI_CRT" --key "$CLI_REF"
is "$RUN_RC" 58 "wrong PIN: curl exits 58"
file_like "$T/wrong.trace" 'C_Login: CKR_PIN_INCORRECT' \
    "wrong PIN: the trace says CKR_PIN_INCORRECT"
is "$(grep -c 'C_Login' "$T/wrong.trace")" 1 "wrong PIN: one C_Login only"
OPENSSL_CONF=$T/wrong.cnf ossl pkey -in "$CLI_REF" -noout
run_err_like 'PIN incorrect for token "p11id-client"' \
    "wrong PIN: 'openssl pkey -in KEYREF -noout' shows why"

# No pin-source: the provider asks curl's passphrase prompt; --pass answers it.
write_openssl_conf "$T/nopin.cnf" pin-source=
OPENSSL_CONF=$T/nopin.cnf https_get nopin "$URL" --cert "$CLI_CRT" --key "$CLI_REF"
if [ "$RUN_RC" -eq 58 ] && ! run_crashed; then
    pass "no pin-source, no terminal: curl fails cleanly (58), it does not hang"
else
    fail "no pin-source, no terminal: curl fails cleanly (58), it does not hang" \
        "curl exit $RUN_RC"
fi
printf 'pass = "%s"\n' "$PIN" >"$T/pass.curlrc"
chmod 600 "$T/pass.curlrc"
OPENSSL_CONF=$T/nopin.cnf https_get_ok pass "$URL" \
    "no pin-source: curl --pass (from a curl config file) gives the PIN" \
    -K "$T/pass.curlrc" --cert "$CLI_CRT" --key "$CLI_REF"
rm -f "$T/pass.curlrc"

https_get nocert "$URL"
if [ "$RUN_RC" -ne 0 ] && [ "$HTTP_CODE" = 000 ]; then
    pass "no client certificate: the server refuses the handshake"
else
    fail "no client certificate: the server refuses the handshake" \
        "curl exit $RUN_RC, HTTP $HTTP_CODE"
fi
file_like "$T/nocert.err" 'alert certificate required|alert handshake failure' \
    "no client certificate: curl reports the server's alert"

https_get intruder "$URL" --cert "$INTRUDER_CRT" --key "$INTRUDER_KEY"
if [ "$RUN_RC" -ne 0 ] && [ "$HTTP_CODE" = 000 ]; then
    pass "certificate from another CA: the server refuses the handshake"
else
    fail "certificate from another CA: the server refuses the handshake" \
        "curl exit $RUN_RC, HTTP $HTTP_CODE"
fi

bg_stop "$SPID"
file_unlike "$T/server.err" "$CRASH_RE" "s_server: no crash"
pin_nowhere "the PIN is in no file but the PIN file"
done_testing
