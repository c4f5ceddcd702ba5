#!/usr/bin/env bash
# t_remote_smoke.sh: sign/verify and one mutual-TLS session with s_server and
# s_client, all keys on a SoftHSM token reached through p11-kit remoting over
# the transport P11ID_REMOTE_TRANSPORT names (tests/tokens/drv_remote.sh):
# t_remote_exec.sh and t_remote_tcp.sh run it. Also shows that the transport
# was the one used (p11-kit remote child; TCP connections on the veth).
set -u
: "${P11ID_REMOTE_TRANSPORT:=unix}"
P11ID_TOKEN_KIND=remote
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util python3
t_setup
diag "transport: $P11ID_REMOTE_TRANSPORT"

key_gen ca ec256 || bail_out "cannot generate the CA key on the token"
key_gen srv ec256 || bail_out "cannot generate the server key"
key_gen cli rsa2048 || bail_out "cannot generate the client key"

# --- sign and verify ----------------------------------------------------------------
D=$T/data.txt
printf 'signed through p11-kit remoting\n' >"$D"
for k in srv cli; do
    ossl_ok "$k (${KEY_TYPE[$k]}): openssl dgst -sha256 -sign over $P11ID_REMOTE_TRANSPORT" \
        dgst -sha256 -sign "$(key_uri "$k")" -out "$T/$k.sig" "$D"
    ossl_sw dgst -sha256 -verify "$(key_pub "$k")" -signature "$T/$k.sig" "$D"
    run_ok_like '^Verified OK' "$k: the signature verifies in software"
done
ossl_ok "RSA-PSS over $P11ID_REMOTE_TRANSPORT" dgst -sha256 -sign "$(key_uri cli)" \
    -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -out "$T/pss.sig" "$D"
ossl_sw dgst -sha256 -verify "$(key_pub cli)" -sigopt rsa_padding_mode:pss \
    -sigopt rsa_pss_saltlen:32 -signature "$T/pss.sig" "$D"
run_ok_like '^Verified OK' "RSA-PSS: the signature verifies in software"

# --- mutual TLS ---------------------------------------------------------------------
ca_make "$(key_uri ca)" "$T/ca.crt" "/CN=Remote Test CA" || bail_out "no CA certificate"
csr_make "$(key_uri srv)" /CN=localhost "$T/srv.csr" || bail_out "no server CSR"
cert_issue "$T/ca.crt" "$(key_uri ca)" "$T/srv.csr" server "$T/srv.crt" || bail_out "no server cert"
csr_make "$(key_uri cli)" /CN=cli "$T/cli.csr" || bail_out "no client CSR"
cert_issue "$T/ca.crt" "$(key_uri ca)" "$T/cli.csr" client "$T/cli.crt" || bail_out "no client cert"
pass "the CA key signs certificates over $P11ID_REMOTE_TRANSPORT"

port=$(free_port) || bail_out "no free TCP port"
bg_start s_server openssl s_server -accept "127.0.0.1:$port" -naccept 1 -rev \
    -Verify 1 -verify_return_error -CAfile "$T/ca.crt" \
    -cert "$T/srv.crt" -key "$(key_uri srv)"
spid=$BG_PID
if wait_for_line "$T/s_server.out" '^ACCEPT' "$spid" 60; then
    pass "s_server with the token key listens"
    # exec transport: p11-kit started a p11-kit-remote process (detached,
    # so found by name and by this test's SOFTHSM2_CONF in its environment).
    REMOTE_CHILD=no
    for pid in $(pgrep -x p11-kit-remote); do
        tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null \
            | grep -qxF "SOFTHSM2_CONF=$SOFTHSM2_CONF" && REMOTE_CHILD=yes
    done
    printf 'ping-remote\nCLOSE\n' >"$T/c.in"
    run_in "$T/c.in" openssl s_client -connect "127.0.0.1:$port" -CAfile "$T/ca.crt" \
        -verify_return_error -verify_hostname localhost -ign_eof -brief \
        -cert "$T/cli.crt" -key "$(key_uri cli)"
    crc=$RUN_RC cout=$RUN_OUT
    bg_wait "$spid" 20
    if [ "$crc" -eq 0 ] && grep -qxF 'etomer-gnip' "$cout"; then
        pass "mTLS: the client gets its line back reversed"
    else
        fail "mTLS: the client gets its line back reversed" "client exit $crc"
        _run_diag
        diag_file "$T/s_server.err"
    fi
    if grep -q '^Peer certificate: .*CN *= *cli' "$T/s_server.err" \
        && grep -q '^Verification: OK' "$T/s_server.err"; then
        pass "mTLS: the server verified the client's certificate"
    else
        fail "mTLS: the server verified the client's certificate"
        diag_file "$T/s_server.err"
    fi
    is "$BG_RC" 0 "mTLS: s_server exited 0"
else
    fail "s_server with the token key listens"
    diag_file "$T/s_server.err"
    skip_n 3 "s_server did not start" "mTLS"
    REMOTE_CHILD="s_server did not start"
fi

# --- the transport was used -----------------------------------------------------------
case "$P11ID_REMOTE_TRANSPORT" in
    exec)
        is "$REMOTE_CHILD" yes "exec transport: a p11-kit-remote process of this test serves the keys"
        ;;
    tcp)
        n=$(grep -c 'accepting connection from AF=2 10\.231\.' "$T/socat-srv.err" 2>/dev/null)
        if [ "${n:-0}" -gt 0 ]; then
            pass "tcp transport: $n connections crossed the veth pair into the server's namespace"
        else
            fail "tcp transport: connections crossed the veth pair into the server's namespace"
            diag_file "$T/socat-srv.err"
        fi
        ;;
    unix)
        file_like "$T/p11kit-server.out" 'P11_KIT_SERVER_ADDRESS=unix:path=' \
            "unix transport: p11-kit server announced its socket"
        ;;
esac

done_testing
