#!/usr/bin/env bash
# t_card_pull.sh: the smart card is pulled out of the reader and put back
# while openssl s_server holds its key (P11ID_TOKEN_KIND=card): handshakes
# fail cleanly with an error that says the card is gone while it is out, and
# the same server process signs again once the card is back (p11id resets
# its sessions, the module notices the new card, p11id logs in again with
# the PIN it kept). A command started while the card is out fails cleanly.
set -u
P11ID_TOKEN_KIND=card
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool python3
t_setup

key_gen srv rsa2048 || bail_out "cannot get the card's key"
ossl req -x509 -new -key "$(key_uri srv)" -subj /CN=localhost -days 2 \
    -out "$T/srv.crt"
[ "$RUN_RC" -eq 0 ] || { _run_diag; bail_out "cannot make the server certificate"; }

port=$(free_port) || bail_out "no free TCP port"
bg_start server openssl s_server -accept "127.0.0.1:$port" -rev \
    -cert "$T/srv.crt" -key "$(key_uri srv)"
spid=$BG_PID
wait_for_line "$T/server.out" '^ACCEPT' "$spid" 30 \
    || { diag_file "$T/server.err"; bail_out "s_server did not start"; }

N=0
# handshake DESC ok|fails: one TLS 1.3 session (the server signs on the card).
handshake()
{
    N=$((N + 1))
    printf 'ping-%s\nCLOSE\n' "$N" >"$T/hs$N.in"
    OPENSSL_CONF="$T/default-only.cnf" run_in "$T/hs$N.in" openssl s_client \
        -connect "127.0.0.1:$port" -tls1_3 -CAfile "$T/srv.crt" \
        -verify_return_error -ign_eof -brief
    if [ "$2" = ok ]; then
        if [ "$RUN_RC" -eq 0 ] && grep -qxF "$(printf 'ping-%s' "$N" | rev)" "$RUN_OUT"; then
            pass "$1"
        else
            fail "$1"
            _run_diag
            diag_file "$T/server.err"
        fi
    else
        run_fails "$1"
    fi
}

handshake "card in: handshake with the card's key" ok
card_pull || bail_out "the bridge did not pull the card"
handshake "card pulled: the handshake fails" fails
file_like "$T/server.err" 'card pulled out of its reader\? put it back' \
    "card pulled: the server's error says the card is gone"
if kill -0 "$spid" 2>/dev/null; then
    pass "card pulled: s_server is still running"
else
    fail "card pulled: s_server is still running"
fi
ossl pkeyutl -sign -inkey "$(key_uri srv)" -in "$T/srv.crt" -rawin -digest sha256 \
    -out "$T/out.sig"
run_fails "card pulled: a new openssl command fails cleanly"
run_err_like 'not present|no token|no private key|removed|token=' \
    "card pulled: the error names what is missing"

card_insert || bail_out "the card did not come back"
handshake "card back: the same server signs again" ok
handshake "card back: and again" ok

card_pull || bail_out "the bridge did not pull the card"
card_insert || bail_out "the card did not come back"
handshake "pulled and put back between two handshakes: the server signs" ok

grep -c 'C_Login' "$T/server.err" >/dev/null 2>&1
file_unlike "$T/server.err" "$CRASH_RE" "the server never crashed"
bg_stop "$spid"
done_testing
