#!/usr/bin/env bash
# t_fuzz_replay.sh: every fuzz target, built with the normal compiler
# (replay.c instead of libFuzzer), runs over its seed corpus and its kept
# crash reproducers (tests/fuzz/corpus/<target>, tests/fuzz/regress/<target>):
# no crash, no broken property (under --enable-asan also no memory error or
# UB). One point per target.
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

FUZZ_DIR=$TOP_SRCDIR/tests/fuzz
OUT=$(mktemp -d "${TMPDIR:-/tmp}/p11id-fuzz-replay.XXXXXX") \
    || bail_out "mktemp failed"
trap 'rm -rf "$OUT"' EXIT
# The config target writes no file and loads no module, but keep any trace
# the provider might open out of the way.
unset P11ID_DEBUG OPENSSL_CONF

for t in uri keyref config csr; do
    exe=$TOP_BUILDDIR/tests/fuzz/replay_$t
    dirs=("$FUZZ_DIR/corpus/$t")
    [ -d "$FUZZ_DIR/regress/$t" ] && dirs+=("$FUZZ_DIR/regress/$t")
    if [ ! -x "$exe" ]; then
        fail "fuzz_$t replays its corpus" "$exe is not built"
        continue
    fi
    (cd "$OUT" && timeout 600 "$exe" "${dirs[@]}") >"$OUT/$t.out" 2>&1
    rc=$?
    n=$(sed -n 's/^\([0-9]*\) inputs$/\1/p' "$OUT/$t.out")
    if [ "$rc" -eq 0 ] && [ "${n:-0}" -gt 0 ]; then
        pass "fuzz_$t replays its corpus and reproducers (${n} inputs)"
    else
        fail "fuzz_$t replays its corpus and reproducers" \
            "exit $rc, ${n:-no} inputs: $(tail -n 20 "$OUT/$t.out")"
    fi
done
done_testing
