#!/usr/bin/env bash
# t_partner_exchange.sh: the two certificate exchanges of mutual TLS, end to
# end with p11id, every private key (CAs included) on a token:
#  (1) one CA signs a server CSR and a client CSR;
#  (2) two organisations, each with its own CA on its own token, each signing
#      the partner's CSR: A's CA signs B's client, B's CA signs A's server.
# Each ends in a verified chain (openssl verify) and a real mutual-TLS
# handshake (s_server and s_client with their keys on tokens).
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util
[ -x "${P11ID_TOOL:-}" ] || { echo "1..0 # SKIP p11id tool not built"; exit 0; }
t_setup
export P11ID_MODULE=$SOFTHSM_MODULE

tool() { run "$P11ID_TOOL" "$@" --pin-file "$T/pin.txt"; }
step() {
    local desc=$1
    shift
    tool "$@"
    is "$RUN_RC" 0 "$desc" || diag_file "$RUN_ERR"
}

# mtls NAME SRV-CERT SRV-KEY SRV-TRUST CLI-CERT CLI-KEY CLI-TRUST [CHAIN-FILES]
mtls() {
    local name=$1 scert=$2 skey=$3 strust=$4 ccert=$5 ckey=$6 ctrust=$7 port
    port=$(free_port) || bail_out "no free port"
    bg_start "$name-srv" openssl s_server -accept "127.0.0.1:$port" -naccept 1 \
        -rev -Verify 2 -verify_return_error -CAfile "$strust" -cert "$scert" \
        -key "$skey" ${8:+-cert_chain "$8"}
    local spid=$BG_PID
    if ! wait_for_line "$T/$name-srv.out" '^ACCEPT' "$spid" 60; then
        bg_stop "$spid"
        fail "$name: s_server starts" "no ACCEPT"
        diag_file "$T/$name-srv.err"
        skip_n 2 "s_server did not start" "$name"
        return
    fi
    printf 'partner %s\nCLOSE\n' "$name" >"$T/$name.in"
    run_in "$T/$name.in" openssl s_client -connect "127.0.0.1:$port" \
        -verify_hostname "$name.example" -verify_return_error -ign_eof -CAfile "$ctrust" \
        -cert "$ccert" -key "$ckey" ${9:+-cert_chain "$9"} -brief
    file_like "$RUN_OUT" "$(printf 'partner %s' "$name" | rev)" \
        "$name: mutual TLS with every key on a token, data exchanged"
    bg_stop "$spid"
    file_like "$T/$name-srv.err" 'verify return:1' "$name: the server verified the client's chain"
}

# --- (1) one CA, server and client ------------------------------------------
token_init ca1 || bail_out "no token ca1"
token_init srv1 || bail_out "no token srv1"
token_init cli1 || bail_out "no token cli1"
step "ca init on its own token" ca init pkcs11:token=ca1 --subject "/O=One/CN=One CA" \
    --days 30 --type ec:P-384 -o "$T/ca1.crt"
file_like "$T/ca1.crt" 'BEGIN CERTIFICATE' "the CA certificate is written"
step "server key generated on its token" keygen pkcs11:token=srv1 --type rsa:2048 --label web
step "client key generated on its token" keygen pkcs11:token=cli1 --type ec:P-256 --label app
step "server CSR signed on the token" csr 'pkcs11:token=srv1;object=web' \
    --subject "/O=One/CN=one.example" --san DNS:one.example --usage server -o "$T/srv1.csr"
step "client CSR signed on the token" csr 'pkcs11:token=cli1;object=app' \
    --subject "/O=One/CN=app client" --usage client -o "$T/cli1.csr"
step "the CA signs the server CSR" ca sign --ca 'pkcs11:token=ca1;type=private' \
    --ca-cert "$T/ca1.crt" "$T/srv1.csr" --profile server --days 10 -o "$T/srv1.crt"
step "the CA signs the client CSR" ca sign --ca 'pkcs11:token=ca1;type=private' \
    --ca-cert "$T/ca1.crt" "$T/cli1.csr" --profile client --days 10 -o "$T/cli1.crt"
ossl_sw verify -CAfile "$T/ca1.crt" -purpose sslserver "$T/srv1.crt"
is "$RUN_RC" 0 "openssl verify: server chain, purpose sslserver"
ossl_sw verify -CAfile "$T/ca1.crt" -purpose sslclient "$T/cli1.crt"
is "$RUN_RC" 0 "openssl verify: client chain, purpose sslclient"
step "the server certificate installed beside its key" import 'pkcs11:token=srv1;object=web' "$T/srv1.crt"
step "the client certificate installed beside its key" import 'pkcs11:token=cli1;object=app' "$T/cli1.crt"
# The server's name for the handshake is one.example.
mtls one "$T/srv1.crt" 'pkcs11:token=srv1;object=web;type=private' "$T/ca1.crt" \
    "$T/cli1.crt" 'pkcs11:token=cli1;object=app;type=private' "$T/ca1.crt"

# --- (2) two organisations, each CA signing the partner's CSR ----------------
token_init caA || bail_out "no token caA"
token_init caB || bail_out "no token caB"
token_init srvA || bail_out "no token srvA"
token_init cliB || bail_out "no token cliB"
step "org A: CA on its token" ca init pkcs11:token=caA --subject "/O=Org A/CN=A CA" \
    --days 30 --type rsa:3072 -o "$T/caA.crt"
step "org B: CA on its token" ca init pkcs11:token=caB --subject "/O=Org B/CN=B CA" \
    --days 30 --type ec:P-256 -o "$T/caB.crt"
step "org A: server key on its token" keygen pkcs11:token=srvA --type ec:P-384 --label api
step "org B: client key on its token" keygen pkcs11:token=cliB --type rsa:2048 --label partner
step "org A: server CSR" csr 'pkcs11:token=srvA;object=api' --subject "/O=Org A/CN=two.example" \
    --san DNS:two.example --usage server -o "$T/srvA.csr"
step "org B: client CSR" csr 'pkcs11:token=cliB;object=partner' --subject "/O=Org B/CN=partner B" \
    --usage client -o "$T/cliB.csr"
# The exchange: A's CA signs B's client; B's CA signs A's server.
step "A's CA signs B's client CSR" ca sign --ca 'pkcs11:token=caA;type=private' \
    --ca-cert "$T/caA.crt" "$T/cliB.csr" --profile client --days 10 -o "$T/cliB.crt"
step "B's CA signs A's server CSR" ca sign --ca 'pkcs11:token=caB;type=private' \
    --ca-cert "$T/caB.crt" "$T/srvA.csr" --profile server --days 10 -o "$T/srvA.crt"
ossl_sw verify -CAfile "$T/caB.crt" -purpose sslserver "$T/srvA.crt"
is "$RUN_RC" 0 "openssl verify: A's server certificate chains to B's CA"
ossl_sw verify -CAfile "$T/caA.crt" -purpose sslclient "$T/cliB.crt"
is "$RUN_RC" 0 "openssl verify: B's client certificate chains to A's CA"
ossl_sw verify -CAfile "$T/caA.crt" -purpose sslserver "$T/srvA.crt"
isnt_ok=$RUN_RC
[ "$isnt_ok" -ne 0 ] && pass "A's server certificate does not chain to A's own CA" \
    || fail "A's server certificate does not chain to A's own CA" "it verified"
step "org A installs its server certificate on its token" import 'pkcs11:token=srvA;object=api' "$T/srvA.crt"
step "org B installs its client certificate on its token" import 'pkcs11:token=cliB;object=partner' "$T/cliB.crt"
# A's server trusts A's CA for the clients it signed; B's client trusts B's
# CA, which signed A's server.
mtls two "$T/srvA.crt" 'pkcs11:token=srvA;object=api;type=private' "$T/caA.crt" \
    "$T/cliB.crt" 'pkcs11:token=cliB;object=partner;type=private' "$T/caB.crt"

# --- a refusal: a client from the other scenario's CA ------------------------
port=$(free_port)
bg_start refuse-srv openssl s_server -accept "127.0.0.1:$port" -naccept 1 -rev -Verify 1 \
    -verify_return_error -CAfile "$T/caA.crt" -cert "$T/srvA.crt" \
    -key 'pkcs11:token=srvA;object=api;type=private'
rpid=$BG_PID
if wait_for_line "$T/refuse-srv.out" '^ACCEPT' "$rpid" 60; then
    printf 'intruder\n' >"$T/refuse.in"
    run_in "$T/refuse.in" openssl s_client -connect "127.0.0.1:$port" -CAfile "$T/caB.crt" \
        -cert "$T/cli1.crt" -key 'pkcs11:token=cli1;object=app;type=private' -brief
    file_unlike "$RUN_OUT" 'redurtni' "a client certified by another CA gets no service"
    bg_stop "$rpid"
    file_like "$T/refuse-srv.err" 'unable to get local issuer|certificate verify failed|unknown ca|verify error' \
        "the server refused the unknown issuer"
else
    bg_stop "$rpid"
    fail "refusal s_server starts" "no ACCEPT"
    skip_n 1 "s_server did not start" "refusal"
fi
done_testing
