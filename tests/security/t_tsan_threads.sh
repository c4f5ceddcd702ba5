#!/usr/bin/env bash
# t_tsan_threads.sh: the provider under ThreadSanitizer. fork_threads and
# p11id.so built with -fsanitize=thread (tests/security/security.am) sign
# and decrypt with one shared EVP_PKEY from several threads, and sign from
# forked children while the parent signs; every result is verified, and the
# test passes only when TSan reports nothing about p11id code: a report with
# a frame in p11id-tsan.so (or in fork_threads) fails it. libcrypto,
# p11-kit and SoftHSM are not instrumented; a report entirely inside them is
# shown as a diagnostic, and tests/security/tsan.supp may name such
# internals (never p11id functions).
#
# Counts (TSAN_THREADS, TSAN_COUNT, TSAN_FORKS, TSAN_FORK_COUNT) are kept
# small enough for make check on two cores; raise them for a longer run.
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util
TSAN_SO="$TOP_BUILDDIR/tests/security/.libs/p11id-tsan.so"
PROG="$TOP_BUILDDIR/tests/security/fork_threads_tsan"
[ -x "$PROG" ] && [ -f "$TSAN_SO" ] \
    || { echo "1..0 # SKIP the ThreadSanitizer build is missing ($PROG, $TSAN_SO)"; exit 0; }
: "${TSAN_THREADS:=8}" "${TSAN_COUNT:=100}" "${TSAN_FORKS:=4}" "${TSAN_FORK_COUNT:=2000}"
T_TIMEOUT=300
t_setup
key_gen rsa rsa2048 || bail_out "key generation failed"
key_gen ec ec256 || bail_out "key generation failed"
write_openssl_conf "$T/tsan.cnf" "module=$TSAN_SO"
# An --enable-asan build's runtime must not be preloaded into TSan programs
# (the TSan programs load only the TSan provider, never the ASan one).
ASAN_PRELOAD=

# Some kernels place mappings where TSan's fixed layout does not expect
# them; without address randomisation it always fits.
NORAND=()
command -v setarch >/dev/null 2>&1 && NORAND=(setarch "$(uname -m)" -R)

# tsan NAME ARGS...: fork_threads_tsan ARGS, reports in $T/NAME.tsan.*.
tsan()
{
    local name=$1
    shift
    TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1 log_path=$T/$name.tsan suppressions=$TOP_SRCDIR/tests/security/tsan.supp" \
        OPENSSL_CONF="$T/tsan.cnf" run "${NORAND[@]}" "$PROG" "$@"
}

# tsan_count NAME: "ALL OURS": the TSan reports of the run, and those with
# a frame in p11id code (the provider's sources or the test program).
tsan_count()
{
    local f all=0 ours=0
    for f in "$T/$1".tsan.*; do
        [ -f "$f" ] || continue
        all=$((all + $(grep -c 'WARNING: ThreadSanitizer' "$f")))
        ours=$((ours + $(awk '
            /WARNING: ThreadSanitizer/ { if (inrep && mine) n++; inrep = 1; mine = 0 }
            inrep && /(p11id-tsan\.so|fork_threads\.c|src\/core\/|src\/provider\/)/ { mine = 1 }
            END { if (inrep && mine) n++; print n + 0 }' "$f")))
    done
    echo "$all $ours"
}

# reports NAME DESC: no TSan report of the run names p11id code.
reports()
{
    local name=$1 d=$2 all ours f
    read -r all ours < <(tsan_count "$name")
    if [ "$ours" -eq 0 ]; then
        pass "$d: no ThreadSanitizer report about p11id code"
    else
        fail "$d: no ThreadSanitizer report about p11id code" "$ours reports"
        for f in "$T/$name".tsan.*; do diag_file "$f" 60; done
    fi
    [ "$all" -gt "$ours" ] && diag "$d: $((all - ours)) reports inside libcrypto/SoftHSM only"
    return 0
}

LD_DEBUG=files LD_DEBUG_OUTPUT="$T/smoke.ld" tsan smoke threads "$(key_uri ec)" "$(key_pub ec)" 1 1
cat "$T"/smoke.ld* >"$T/smoke.maps" 2>/dev/null
if [ "$RUN_RC" -ne 0 ] && grep -q 'unexpected memory mapping\|FATAL: ThreadSanitizer' "$RUN_ERR"; then
    skip_n 9 "ThreadSanitizer cannot run here: $(head -n 1 "$RUN_ERR")" "tsan"
    done_testing
    exit 0
fi
run_ok "the TSan build signs once"
if grep -q "p11id-tsan.so" "$T/smoke.maps" 2>/dev/null; then
    pass "the process ran the TSan build of the provider"
else
    fail "the process ran the TSan build of the provider"
fi
tsan race race
read -r _ ours < <(tsan_count race)
if [ "$ours" -ge 1 ]; then
    pass "control: ThreadSanitizer reports a deliberate race in the test program"
else
    fail "control: ThreadSanitizer reports a deliberate race in the test program"
fi

total_threads=$((TSAN_THREADS * TSAN_COUNT))
tsan rsa-threads threads "$(key_uri rsa)" "$(key_pub rsa)" "$TSAN_THREADS" "$TSAN_COUNT"
run_ok_like "^decryptions $total_threads\$" \
    "RSA: $TSAN_THREADS threads share one EVP_PKEY, each signs and decrypts $TSAN_COUNT times, all verified"
reports rsa-threads "RSA threads"
tsan ec-threads threads "$(key_uri ec)" "$(key_pub ec)" "$TSAN_THREADS" "$TSAN_COUNT"
run_ok_like "^signers $TSAN_THREADS signatures $((total_threads + TSAN_COUNT)) failed 0\$" \
    "EC: $TSAN_THREADS threads share one EVP_PKEY, $TSAN_COUNT signatures each, all verified"
reports ec-threads "EC threads"
tsan ec-fork fork "$(key_uri ec)" "$(key_pub ec)" "$TSAN_FORKS" "$TSAN_FORK_COUNT"
run_ok_like "^signers $((TSAN_FORKS + 1)) signatures $(((TSAN_FORKS + 2) * TSAN_FORK_COUNT)) failed 0\$" \
    "EC: $TSAN_FORKS forked children sign $TSAN_FORK_COUNT times each while the parent signs, all verified"
reports ec-fork "EC fork"
done_testing
