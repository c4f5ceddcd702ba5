#!/usr/bin/env bash
# tests/fuzz/run-fuzz.sh: runs each libFuzzer target of make fuzz for
# FUZZ_SECONDS from its seed corpus and prints executions and crashes per
# target. New inputs go to FUZZ_WORK/<target>/corpus, never into the
# committed seeds; a crash, leak or broken property leaves its input in
# FUZZ_WORK/<target>/ (crash-*, leak-*, oom-*, timeout-*) and makes the run
# fail. Environment (make fuzz sets it): FUZZ_BIN, FUZZ_SRC, FUZZ_WORK,
# FUZZ_SECONDS (60), FUZZ_TARGETS ("uri keyref config csr"). Targets run
# one after another.
set -u
bin=${FUZZ_BIN:?} src=${FUZZ_SRC:?} work=${FUZZ_WORK:?}
secs=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-uri keyref config csr}

# Longest input per target: well past every seed, small enough to be fast.
max_len()
{
    case $1 in
        uri) echo 1024 ;;
        keyref) echo 12288 ;;
        config) echo 2048 ;;
        csr) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

failed=0
printf '%-12s %12s %8s %s\n' target executions crashes artifacts
for t in $targets; do
    exe="$bin/fuzz_$t"
    dir="$work/$t"
    mkdir -p "$dir/corpus"
    seeds=("$src/corpus/$t")
    [ -d "$src/regress/$t" ] && seeds+=("$src/regress/$t")
    dict=()
    [ -f "$src/dict/$t.dict" ] && dict=(-dict="$src/dict/$t.dict")
    rm -f "$dir"/crash-* "$dir"/leak-* "$dir"/oom-* "$dir"/timeout-*
    (cd "$dir" && "$exe" -max_total_time="$secs" -max_len="$(max_len "$t")" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$dir/" "${dict[@]}" "$dir/corpus" "${seeds[@]}" \
        >"$dir/fuzz.log" 2>&1)
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz.log" \
        | tail -n 1)
    crashes=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' \
        -o -name 'leak-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1 # died without an artifact: the log says why
    fi
    printf '%-12s %12s %8s %s\n' "fuzz_$t" "${execs:-?}" "$crashes" \
        "$([ "$crashes" -gt 0 ] && echo "$dir (fuzz.log)")"
    [ "$crashes" -gt 0 ] && failed=1
done
if [ "$failed" -ne 0 ]; then
    echo "run-fuzz.sh: a target crashed; reproduce with" \
        "$bin/fuzz_<target> <artifact>, keep the input in" \
        "tests/fuzz/regress/<target>/ once fixed" >&2
fi
exit "$failed"
