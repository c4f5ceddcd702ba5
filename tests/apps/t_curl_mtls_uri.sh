#!/usr/bin/env bash
# t_curl_mtls_uri.sh: curl 8.12 or newer takes the client key as a pkcs11:
# URI (`--key 'pkcs11:...'`) and loads it through the OpenSSL provider;
# mutual TLS with the key on the token, the PIN from the provider's
# pin-source. Older curl hands pkcs11: values to the ENGINE API: skipped.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/lib/apps.sh
. "$(dirname "$0")/../lib/apps.sh"
require_cmd curl openssl pkcs11-tool softhsm2-util python3
CURL_VERSION=$(curl --version | sed -n '1s/^curl \([0-9][0-9.]*\).*/\1/p')
if ! version_ge "${CURL_VERSION:-0}" 8.12; then
    echo "1..0 # SKIP curl $CURL_VERSION is older than 8.12: it hands --key pkcs11: URIs to an OpenSSL ENGINE, not to providers (use a key reference file)"
    exit 0
fi
if ! curl --version | grep -q 'OpenSSL/3'; then
    echo "1..0 # SKIP curl is not built with OpenSSL 3 ($(curl --version | head -n 1))"
    exit 0
fi
apps_setup
apps_pki rsa2048 ec256

PORT=$(free_port) || bail_out "no free port"
T_TIMEOUT=120 bg_start server openssl s_server -accept "127.0.0.1:$PORT" -www \
    -cert "$SRV_CRT" -key "$SRV_REF" -CAfile "$CA_CRT" -Verify 1 -verify_return_error
SPID=$BG_PID
wait_for_line "$T/server.out" '^ACCEPT' "$SPID" 60 || bail_out "s_server did not start"
URL=https://127.0.0.1:$PORT/

P11ID_DEBUG=$T/curl.trace https_get_ok uri "$URL" "client key by pkcs11: URI" \
    --cert "$CLI_CRT" --key "$(key_uri cli)"
file_like "$T/uri.body" 'Subject: O *= *p11id Test, OU *= *apps, CN *= *client-1' \
    "the server got the client's certificate"
file_like "$T/curl.trace" "p11id_token_login: token \"$TOKEN_CLI\": logged in\$" \
    "trace: p11id (not an engine) logged in to the client token"
https_get_ok uri12 "$URL" "client key by pkcs11: URI, TLS 1.2" --tls-max 1.2 \
    --cert "$CLI_CRT" --key "$(key_uri cli)"
bg_stop "$SPID"
pin_nowhere "the PIN is in no file but the PIN file"
done_testing
