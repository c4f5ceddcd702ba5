#!/usr/bin/env bash
# scripts/check.sh [--asan]: install dependencies, build, run `make check`, and
# end with one line "N passed, N failed, N skipped" counting TAP test points
# across all tests (a script that crashed or broke its plan counts as failed).
# Exits non-zero when anything failed. --asan: build with sanitizers.
set -u
cd "$(dirname "$0")/.." || exit 1

build_args=()
for a in "$@"; do
    case "$a" in
        --asan) build_args+=(--asan) ;;
        -h | --help)
            sed -n '2,6s/^# \{0,1\}//p' "$0"
            exit 0 ;;
        *)
            echo "check.sh: unknown option $a (try --help)" >&2
            exit 2 ;;
    esac
done

summary()
{
    echo "$1 passed, $2 failed, $3 skipped"
}

if ! bash scripts/build.sh "${build_args[@]}"; then
    echo "check.sh: the build failed; no test ran"
    summary 0 1 0
    exit 1
fi

rm -f test-suite.log
# P11ID_CHECK_EXCLUDE: test scripts (paths as in the Makefile's TESTS) that
# this run leaves out, e.g. the ASan pass of .ci/run. Everything else runs.
if [ -n "${P11ID_CHECK_EXCLUDE:-}" ]; then
    all=$(printf 'print-tests:\n\t@echo $(TESTS)\n' \
        | make -s -f Makefile -f - print-tests)
    keep=()
    for t in $all; do
        case " $P11ID_CHECK_EXCLUDE " in
            *" $t "*) echo "check.sh: not in this run: $t" ;;
            *) keep+=("$t") ;;
        esac
    done
    make -j"${JOBS:-2}" check TESTS="${keep[*]}"
else
    make -j"${JOBS:-2}" check
fi
check_rc=$?

# The automake TAP driver records one result per test point (and one ERROR
# per script whose exit status or plan was wrong) in test-suite.log's header.
field()
{
    sed -n "s/^# $1: *\\([0-9][0-9]*\\)\$/\\1/p" test-suite.log | head -n 1
}

if [ ! -f test-suite.log ]; then
    echo "check.sh: make check exited $check_rc without running the tests"
    summary 0 1 0
    exit 1
fi

pass=$(field PASS)
skip=$(field SKIP)
xfail=$(field XFAIL)
fail=$(field FAIL)
xpass=$(field XPASS)
error=$(field ERROR)
passed=${pass:-0}
failed=$((${fail:-0} + ${xpass:-0} + ${error:-0}))
skipped=$((${skip:-0} + ${xfail:-0}))

if [ "$failed" -gt 0 ]; then
    echo "check.sh: failures; the logs of the failing tests (test-suite.log):"
    head -n 3000 test-suite.log
fi
if [ "$check_rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    echo "check.sh: make check exited $check_rc although no test point failed"
    failed=1
fi

summary "$passed" "$failed" "$skipped"
[ "$failed" -eq 0 ]
