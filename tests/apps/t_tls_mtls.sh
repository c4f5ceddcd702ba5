#!/usr/bin/env bash
# t_tls_mtls.sh: mutual TLS between openssl s_server and s_client with both
# private keys (and the CA key that issued their certificates) on the token,
# reached by pkcs11: URI or by key reference file: RSA and EC, TLS 1.3 and 1.2,
# data both ways; clients without a certificate or from another CA are
# refused; the provider works loaded before or after the default provider.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util python3
t_setup

# A token without EC keys (token_supports) runs the RSA half: E names the
# keys that stand in where the key type does not matter.
E=ec
token_supports ec256 || E=rsa
key_gen ca "$([ $E = ec ] && echo ec256 || echo rsa2048)" \
    || bail_out "cannot generate the CA key on the token"
for k in srv-rsa cli-rsa; do
    key_gen "$k" rsa2048 || bail_out "cannot generate RSA key $k on the token"
done
for k in srv-ec cli-ec; do
    [ $E = ec ] || continue
    key_gen "$k" ec256 || bail_out "cannot generate EC key $k on the token"
done

# The CA key signs on the token; so do the certificates' subjects in TLS.
ca_make "$(key_uri ca)" "$T/ca.crt" "/CN=p11id Test CA" \
    || bail_out "cannot make the CA certificate with the token CA key"
for k in srv-rsa srv-$E cli-rsa cli-$E; do
    [ -f "$T/$k.crt" ] && continue
    kind=client
    [ "${k%%-*}" = srv ] && kind=server
    cn=$k
    [ "$kind" = server ] && cn=localhost
    csr_make "$(key_uri "$k")" "/CN=$cn/OU=$k" "$T/$k.csr" \
        || bail_out "cannot make a CSR for $k"
    cert_issue "$T/ca.crt" "$(key_uri ca)" "$T/$k.csr" "$kind" "$T/$k.crt" \
        || bail_out "cannot issue a certificate for $k"
done

# A client the server must refuse: software key, certificate from another CA.
soft_ca_make "$T" otherca "/CN=Other CA" || bail_out "cannot make the other CA"
ossl_sw req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$T/intruder.key" -subj "/CN=intruder" -out "$T/intruder.csr"
[ "$RUN_RC" -eq 0 ] || bail_out "cannot make the intruder's CSR"
ext_file client "$T/intruder.ext"
ossl_sw x509 -req -in "$T/intruder.csr" -CA "$T/otherca.crt" \
    -CAkey "$T/otherca.key" -set_serial 666 -days 30 -extfile "$T/intruder.ext" \
    -out "$T/intruder.crt"
[ "$RUN_RC" -eq 0 ] || bail_out "cannot certify the intruder"

# Key reference files for one server and one client key.
for k in srv-rsa cli-$E; do
    ossl pkey -in "$(key_uri "$k")" -out "$T/$k.ref.pem"
    [ "$RUN_RC" -eq 0 ] || _run_diag
done

# --- one TLS session ---------------------------------------------------------------
#
# tls NAME EXPECT DESC -- SERVER_ARGS... -- CLIENT_ARGS...
#   EXPECT ok: 5 points (client ok and got the reply, protocol, server saw the
#   client certificate verified, server saw the message, server exited 0).
#   EXPECT refused: 3 points (no reply, server says why, nothing crashed).
T_TIMEOUT=30    # per command (common.sh)
export T_TIMEOUT

tls()
{
    local name=$1 expect=$2 desc=$3 port
    shift 4
    local -a sargs=() cargs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        sargs+=("$1")
        shift
    done
    shift
    cargs=("$@")

    port=$(free_port) || bail_out "no free TCP port"
    bg_start "$name-server" openssl s_server \
        -accept "127.0.0.1:$port" -naccept 1 -rev -Verify 1 -verify_return_error \
        -CAfile "$T/ca.crt" "${sargs[@]}"
    local spid=$BG_PID
    # Generous: under AddressSanitizer on a loaded 2-core machine the
    # server's start (module load, login, key search) can take seconds.
    if ! wait_for_line "$T/$name-server.out" '^ACCEPT' "$spid" 60; then
        diag "s_server pid $spid still running: $(kill -0 "$spid" 2>/dev/null && echo yes || echo no)"
        bg_stop "$spid"
        fail "$desc: s_server starts and listens"
        diag_file "$T/$name-server.out"
        diag_file "$T/$name-server.err"
        [ "$expect" = ok ] && skip_n 4 "s_server did not start" "$desc"
        [ "$expect" = ok ] || skip_n 2 "s_server did not start" "$desc"
        return
    fi

    printf 'ping-%s\nCLOSE\n' "$name" >"$T/$name.in"
    run_in "$T/$name.in" openssl s_client \
        -connect "127.0.0.1:$port" -CAfile "$T/ca.crt" -verify_return_error \
        -verify_hostname localhost -ign_eof -brief "${cargs[@]}"
    local cout=$RUN_OUT cerr=$RUN_ERR crc=$RUN_RC
    bg_wait "$spid" 20
    local src=$BG_RC serr=$T/$name-server.err
    local reply
    reply=$(printf 'ping-%s' "$name" | rev)

    if [ "$expect" = ok ]; then
        if [ "$crc" -eq 0 ] && grep -qxF -- "$reply" "$cout"; then
            pass "$desc: client connects and gets its line back reversed"
        else
            fail "$desc: client connects and gets its line back reversed" \
                "client exit $crc, want line '$reply'"
            diag_file "$cerr"
            diag_file "$cout" 5
            diag_file "$serr"
        fi
        file_like "$cerr" "^Protocol version: ${PROTO_WANT//./\\.}\$" \
            "$desc: protocol $PROTO_WANT"
        if grep -q '^Peer certificate: .*CN *= *cli' "$serr" \
            && grep -q '^Verification: OK' "$serr"; then
            pass "$desc: server verified the client's certificate"
        else
            fail "$desc: server verified the client's certificate"
            diag_file "$serr"
        fi
        file_like "$serr" '^CONNECTION CLOSED' \
            "$desc: server read the client's data to the end"
        is "$src" 0 "$desc: s_server exited 0"
    else
        if ! grep -qxF -- "$reply" "$cout"; then
            pass "$desc: client gets no data"
        else
            fail "$desc: client gets no data"
        fi
        file_like "$serr" "$REFUSE_RE" "$desc: server says why (/$REFUSE_RE/)"
        if [ "$crc" -lt 124 ] && [ "$src" -lt 124 ] \
            && ! grep -Eq -- "$CRASH_RE" "$cerr" "$serr"; then
            pass "$desc: neither side crashed or hung"
        else
            fail "$desc: neither side crashed or hung" "client $crc, server $src"
        fi
    fi
}

# The certificate files and keys of each side.
srv() { printf '%s\n' -cert "$T/srv-$1.crt" -key "${2:-$(key_uri "srv-$1")}"; }
cli() { printf '%s\n' -cert "$T/cli-$1.crt" -key "${2:-$(key_uri "cli-$1")}"; }
mapfile -t SRV_RSA < <(srv rsa)
mapfile -t SRV_EC < <(srv $E)
mapfile -t CLI_RSA < <(cli rsa)
mapfile -t CLI_EC < <(cli $E)
# tls_ec ARGS...: tls with EC keys, skipped where the token has none.
tls_ec()
{
    if [ $E = ec ]; then
        tls "$@"
    else
        skip_n 5 "the token has no EC keys" "$3"
    fi
}

# --- URIs, provider from OPENSSL_CONF ---------------------------------------------------

PROTO_WANT=TLSv1.3
tls rsa13 ok "RSA keys, TLS 1.3" -- "${SRV_RSA[@]}" -tls1_3 -- "${CLI_RSA[@]}"
tls_ec ec13 ok "EC keys, TLS 1.3" -- "${SRV_EC[@]}" -tls1_3 -- "${CLI_EC[@]}"
PROTO_WANT=TLSv1.2
tls rsa12 ok "RSA keys, TLS 1.2" -- "${SRV_RSA[@]}" -tls1_2 -- "${CLI_RSA[@]}"
tls_ec ec12 ok "EC keys, TLS 1.2" -- "${SRV_EC[@]}" -tls1_2 -- "${CLI_EC[@]}"
tls rsapkcs1 ok "RSA keys, TLS 1.2, PKCS#1 v1.5 signatures" -- "${SRV_RSA[@]}" \
    -tls1_2 -sigalgs RSA+SHA256 -- "${CLI_RSA[@]}" -sigalgs RSA+SHA256
file_like "$T/rsapkcs1-server.err" '^Signature type: RSA$' \
    "PKCS#1 v1.5: the client signed with RSA PKCS#1 v1.5 (not PSS)"
PROTO_WANT=TLSv1.3
tls_ec mixed ok "RSA server key, EC client key, TLS 1.3" -- "${SRV_RSA[@]}" -tls1_3 \
    -- "${CLI_EC[@]}"

# --- key reference files --------------------------------------------------------------

mapfile -t SRV_REF < <(srv rsa "$T/srv-rsa.ref.pem")
mapfile -t CLI_REF < <(cli $E "$T/cli-$E.ref.pem")
tls ref13 ok "key reference files, TLS 1.3" -- "${SRV_REF[@]}" -tls1_3 \
    -- "${CLI_REF[@]}"
PROTO_WANT=TLSv1.2
tls ref12 ok "key reference files, TLS 1.2" -- "${SRV_REF[@]}" -tls1_2 \
    -- "${CLI_REF[@]}"

# --- refusals ---------------------------------------------------------------------------

REFUSE_RE='peer did not return a certificate|certificate required'
tls nocert13 refused "client without a certificate, TLS 1.3" -- "${SRV_EC[@]}" \
    -tls1_3 --
tls nocert12 refused "client without a certificate, TLS 1.2" -- "${SRV_EC[@]}" \
    -tls1_2 --
REFUSE_RE='unable to get local issuer|certificate verify failed|unknown ca'
tls otherca refused "client certified by another CA" -- "${SRV_RSA[@]}" -tls1_3 \
    -- -cert "$T/intruder.crt" -key "$T/intruder.key"

# --- provider loaded by -provider, in both orders, no config section -------------------

export OPENSSL_CONF="$T/default-only.cnf"
if t_softkeys; then
    PA=()
    PB=()
else
    PA=(-provider-path "$P11ID_PROVIDER_DIR" -provider p11id -provider default)
    PB=(-provider-path "$P11ID_PROVIDER_DIR" -provider default -provider p11id)
fi
mapfile -t SRV_SELF < <(srv $E "$(key_selfcontained_uri srv-$E)")
mapfile -t CLI_SELF < <(cli rsa "$(key_selfcontained_uri cli-rsa)")
PROTO_WANT=TLSv1.3
tls order1 ok "-provider p11id -provider default" -- "${PA[@]}" "${SRV_SELF[@]}" \
    -tls1_3 -- "${PA[@]}" "${CLI_SELF[@]}"
tls order2 ok "-provider default -provider p11id" -- "${PB[@]}" "${SRV_SELF[@]}" \
    -tls1_3 -- "${PB[@]}" "${CLI_SELF[@]}"

done_testing
