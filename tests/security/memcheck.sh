#!/usr/bin/env bash
# memcheck.sh: `make memcheck`. The unit tests and a few programs that drive
# the provider and the tool (fork_threads in thread and fork mode,
# export_probe, openssl pkeyutl -sign and -decrypt, p11id keygen/csr/ca
# sign) under valgrind --leak-check=full. A point passes when valgrind
# reports no error and no definite leak: tests/security/valgrind.supp may
# only name libcrypto, SoftHSM and p11-kit internals, each with its reason.
# TAP output; ends with "N passed, N failed".
. "$(dirname "$0")/../lib/common.sh"
require_cmd valgrind openssl pkcs11-tool softhsm2-util
if ldd "$P11ID_PROVIDER_SO" 2>/dev/null | grep -q libasan; then
    echo "1..0 # SKIP valgrind needs a build without AddressSanitizer"
    exit 0
fi
T_TIMEOUT=600
t_setup
SUPP="$TOP_SRCDIR/tests/security/valgrind.supp"
VG=(valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite
    --errors-for-leak-kinds=definite --num-callers=40 --suppressions="$SUPP")
START=$(date +%s)

# vg DESC CMD...: CMD under valgrind: exit status not 99 (no error, no
# definite leak) and no report in the log.
vg()
{
    local d=$1
    shift
    local log="$T/vg.$RUN_N.%p.log"
    run "${VG[@]}" --log-file="$log" "$@"
    local bad=0 f
    for f in "$T"/vg."$RUN_N".*.log; do
        [ -s "$f" ] && bad=1
    done
    if [ "$RUN_RC" -ne 99 ] && [ "$bad" = 0 ]; then
        pass "$d"
    else
        fail "$d" "valgrind reported (exit $RUN_RC)"
        for f in "$T"/vg."$RUN_N".*.log; do diag_file "$f" 80; done
    fi
}

FT="$TOP_BUILDDIR/tests/integration/fork_threads"
run "${VG[@]}" --log-file="$T/control.log" "$FT" leak
if [ "$RUN_RC" -eq 99 ] && grep -q 'definitely lost' "$T/control.log"; then
    pass "control: valgrind reports a deliberate leak"
else
    fail "control: valgrind reports a deliberate leak" "exit $RUN_RC"
fi
vg "unit: t_uri" "$TOP_BUILDDIR/tests/unit/t_uri"
vg "unit: t_rv" "$TOP_BUILDDIR/tests/unit/t_rv"
vg "unit: t_sigenc" "$TOP_BUILDDIR/tests/unit/t_sigenc"

key_gen rsa rsa2048 || bail_out "key generation failed"
key_gen ec ec256 || bail_out "key generation failed"
vg "fork_threads: 4 threads sign with one EC key" \
    "$FT" threads "$(key_uri ec)" "$(key_pub ec)" 4 10
vg "fork_threads: 4 threads sign and decrypt with one RSA key" \
    "$FT" threads "$(key_uri rsa)" "$(key_pub rsa)" 4 5
vg "fork_threads: 2 forked children and the parent sign" \
    "$FT" fork "$(key_uri ec)" "$(key_pub ec)" 2 10
vg "export_probe: every export path of an RSA token key" \
    "$TOP_BUILDDIR/tests/security/export_probe" "$(key_uri rsa)"
vg "export_probe: every export path of an EC token key" \
    "$TOP_BUILDDIR/tests/security/export_probe" "$(key_uri ec)"
printf 'hello' | openssl dgst -sha256 -binary >"$T/dgst"
vg "openssl pkeyutl -sign with a token key" \
    openssl pkeyutl -sign -inkey "$(key_uri ec)" -in "$T/dgst" -out "$T/sig"
printf 'secret' >"$T/pt"
ossl_sw pkeyutl -encrypt -pubin -inkey "$(key_pub rsa)" \
    -pkeyopt rsa_padding_mode:oaep -in "$T/pt" -out "$T/ct"
vg "openssl pkeyutl -decrypt with a token key" \
    openssl pkeyutl -decrypt -inkey "$(key_uri rsa)" \
    -pkeyopt rsa_padding_mode:oaep -in "$T/ct" -out "$T/pt2"
vg "openssl pkey -out (a key reference file)" \
    openssl pkey -in "$(key_uri ec)" -out "$T/ec.ref.pem"
vg "openssl pkeyutl -sign through the key reference file" \
    openssl pkeyutl -sign -inkey "$T/ec.ref.pem" -in "$T/dgst" -out "$T/sig2"
if [ -x "${P11ID_TOOL:-}" ]; then
    export P11ID_MODULE=$SOFTHSM_MODULE
    vg "p11id ca init" "$P11ID_TOOL" ca init "pkcs11:token=$TOKEN" \
        --subject "CN=VG CA" --days 5 --type ec:P-256 -o "$T/ca.crt" \
        --pin-file "$T/pin.txt"
    vg "p11id keygen" "$P11ID_TOOL" keygen "pkcs11:token=$TOKEN" \
        --type ec:P-256 --label vg --pin-file "$T/pin.txt"
    vg "p11id csr" "$P11ID_TOOL" csr "pkcs11:token=$TOKEN;object=vg" \
        --subject CN=vg --usage client -o "$T/vg.csr" --pin-file "$T/pin.txt"
    vg "p11id ca sign" "$P11ID_TOOL" ca sign "$T/vg.csr" \
        --ca "pkcs11:token=$TOKEN;object=ca;type=private" --ca-cert "$T/ca.crt" \
        --profile client --days 2 -o "$T/vg.crt" --pin-file "$T/pin.txt"
else
    skip_n 4 "p11id tool not built" "p11id under valgrind"
fi
diag "memcheck took $(($(date +%s) - START)) s"
echo "$((T_N - T_FAILED)) passed, $T_FAILED failed"
if [ "$T_FAILED" -ne 0 ]; then
    printf '1..%d\n' "$T_N"
    T_DONE=1
    exit 1
fi
done_testing
