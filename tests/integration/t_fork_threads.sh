#!/usr/bin/env bash
# t_fork_threads.sh: a token key loaded once signs correctly in forked
# children (the provider re-initialises the module and logs in again in each
# child) and from several threads sharing one EVP_PKEY; an RSA key decrypts
# from those threads at the same time. The ThreadSanitizer variant is
# tests/security/t_tsan_threads.sh.
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util
PROG="$TOP_BUILDDIR/tests/integration/fork_threads"
[ -x "$PROG" ] || { echo "1..0 # SKIP $PROG not built"; exit 0; }
t_setup
key_gen rsa rsa2048
key_gen ec ec256

for k in rsa ec; do
    run "$PROG" fork "$(key_uri "$k")" "$T/keys/$k.pub.pem" 4 50
    is "$RUN_RC" 0 "$k: parent and 4 forked children each sign 50 times, all verify"
    file_like "$RUN_OUT" '^signers 5 signatures 300 failed 0$' "$k: fork summary"
    run "$PROG" threads "$(key_uri "$k")" "$T/keys/$k.pub.pem" 8 50
    is "$RUN_RC" 0 "$k: 8 threads share one EVP_PKEY, 50 signatures each, all verify"
    file_like "$RUN_OUT" '^signers 8 signatures 450 failed 0$' "$k: threads summary"
    [ "$k" = rsa ] && file_like "$RUN_OUT" '^decryptions 400$' \
        "rsa: the 8 threads also decrypt 50 times each (OAEP), all plaintexts match"
done

# One signing context initialised once signs message after message
# (EVP_DigestSign is one-shot), and streaming Update/Final still works.
reuse_keys="rsa ec"
if token_supports ed25519; then
    key_gen ed ed25519
    reuse_keys="$reuse_keys ed"
fi
for k in $reuse_keys; do
    run "$PROG" reuse "$(key_uri "$k")" "$T/keys/$k.pub.pem" 1 20
    is "$RUN_RC" 0 "$k: one context initialised once signs 20 messages, each verifies"
    case $k in
        rsa) want='^reused 42 signatures failed 0$' ;;
        ec) want='^reused 21 signatures failed 0$' ;;
        ed) want='^reused 20 signatures failed 0$' ;;
    esac
    file_like "$RUN_OUT" "$want" "$k: reuse summary (PKCS#1, PSS, streaming as applicable)"
done

# Thousands of signatures in each of 4 children while the parent signs.
run "$PROG" fork "$(key_uri ec)" "$T/keys/ec.pub.pem" 4 2000
is "$RUN_RC" 0 "ec: 4 forked children sign 2000 times each while the parent signs, all verify"
file_like "$RUN_OUT" '^signers 5 signatures 12000 failed 0$' "ec: long fork summary"

# The same through a key reference file, as nginx loads it.
ossl pkey -in "$(key_uri ec)" -out "$T/ec.ref.pem"
is "$RUN_RC" 0 "key reference file written"
run "$PROG" fork "$T/ec.ref.pem" "$T/keys/ec.pub.pem" 3 30
is "$RUN_RC" 0 "key reference file: parent and 3 forked children sign and verify"
# The provider signs with a session copy of the token key (faster on
# SoftHSM), or with the token object itself when told so.
P11ID_DEBUG="$T/copy.trace" run "$PROG" fork "$(key_uri ec)" "$T/keys/ec.pub.pem" 2 10
is "$RUN_RC" 0 "session-copy default: parent and children sign and verify"
file_like "$T/copy.trace" 'signing with a session copy' "session-copy default: a session copy is used"
write_openssl_conf "$T/nocopy.cnf" "session-copy=no"
OPENSSL_CONF="$T/nocopy.cnf" P11ID_DEBUG="$T/nocopy.trace" \
    run "$PROG" fork "$(key_uri ec)" "$T/keys/ec.pub.pem" 2 10
is "$RUN_RC" 0 "session-copy = no: parent and children sign and verify"
file_unlike "$T/nocopy.trace" 'session copy' "session-copy = no: the token object is used"
write_openssl_conf "$T/badcopy.cnf" "session-copy=maybe"
OPENSSL_CONF="$T/badcopy.cnf" run openssl pkey -provider-path "$P11ID_PROVIDER_DIR" \
    -provider p11id -provider default -in "$(key_uri ec)" -pubout
isnt_zero=$RUN_RC
[ "$isnt_zero" -ne 0 ] && pass "session-copy = maybe is refused" \
    || fail "session-copy = maybe is refused" "exit 0"
run_err_like 'session-copy = maybe: use "yes" or "no"' "the error names the setting and its values"
done_testing
