#!/usr/bin/env bash
# t_bench_smoke.sh: the benchmark (`make bench`) end to end at a tiny size,
# so that a change that breaks it shows in `make check`: every signing path
# of every algorithm measures and verifies its first signatures, and what
# the benchmark checks without timing holds: exactly C_SignInit + C_Sign per
# signature and per handshake (pkcs11-spy), no memory growth, key loads
# reported. No rate or ratio is asserted (timing is the benchmark's to
# report, not a test's).
. "$(dirname "$0")/../lib/common.sh"
require_cmd openssl pkcs11-tool softhsm2-util python3
BIN=$TOP_BUILDDIR/tests/bench/p11id-bench
[ -x "$BIN" ] || { echo "1..0 # SKIP $BIN not built"; exit 0; }
t_setup

OUT=$T/results.json
TMPDIR=$T BENCH_ONLY="sign spy mem load" BENCH_ROUNDS=1 BENCH_SECONDS=0.2 \
    BENCH_WARMUP=0.05 BENCH_SPY_SIGS=300 BENCH_SPY_HANDSHAKES=20 \
    BENCH_MEM_N1=200 BENCH_MEM_N2=3000 BENCH_BIN=$BIN BENCH_OUT=$OUT \
    run bash "$TOP_SRCDIR/tests/bench/run-bench.sh"
is "$RUN_RC" 0 "the benchmark runs (sign, spy, mem, load sections)"
[ -s "$OUT" ] || bail_out "no $OUT"

# One line per check: "ok|not ok<TAB>description<TAB>diagnostic".
python3 - "$OUT" >"$T/checks.txt" <<'PY'
import json, sys

d = json.load(open(sys.argv[1]))
def say(ok, desc, diag=""):
    print(f"{'ok' if ok else 'not ok'}\t{desc}\t{diag}")

sig = d.get("signatures", {})
say(not sig.get("errors"), "no signing measurement failed",
    json.dumps(sig.get("errors", []))[:300])
got = {(r["alg"], r["threads"]): r["paths"] for r in sig.get("results", [])}
for alg in ("rsa", "pss", "p256", "p384", "ed25519"):
    for thr in (1, 2):
        paths = got.get((alg, thr), {})
        want = ["copy", "raw", "copyp", "p11id", "reuse", "soft"]
        bad = [p for p in want if not paths.get(p, {}).get("median", 0) > 0]
        say(not bad, f"{alg}, {thr} thread(s): every path signed (first signatures verified)",
            f"missing or zero: {bad}")

spy = d.get("pkcs11_calls", {}).get("results", [])
p11 = [e for e in spy if e["what"] == "signature" and e["path"] == "p11id"]
say(len(p11) == 5, "pkcs11-spy counted p11id signatures for the 5 algorithms",
    f"{len(p11)} counted")
for e in p11:
    per = e["per_op"]
    say(per.get("C_SignInit") == 1 and per.get("C_Sign") == 1 and e["only_sign_calls"],
        f"p11id {e['alg']}: exactly C_SignInit + C_Sign per signature", json.dumps(per))
hs = [e for e in spy if e["what"] == "handshake"]
say(len(hs) == 8, "pkcs11-spy counted handshakes (TLS 1.2/1.3, RSA/EC, both sides)",
    f"{len(hs)} counted")
for e in hs:
    per = e["per_op"]
    say(per.get("C_SignInit") == 1 and per.get("C_Sign") == 1 and e["only_sign_calls"],
        f"TLS {e['tls']} {e['kt']} {e['side']}: exactly C_SignInit + C_Sign per handshake",
        json.dumps(per))

mem = [m for m in d.get("memory", []) if m["path"] == "p11id"]
say(len(mem) >= 1, "memory measured for p11id", "")
for m in mem:
    say(m["within_1mib"], f"p11id {m['alg']}: resident size flat from {m['n1']} to {m['n2']} signatures",
        f"growth {m['rss_growth_kib']} KiB")

loads = [l for l in d.get("key_load", []) if l["path"] == "p11id"]
say(len(loads) == 2, "key load reported for p11id (p256, rsa)", json.dumps(loads)[:200])
for l in loads:
    say(l["first_ms"] > 0 and l["again_ms"] > 0,
        f"p11id {l['alg']}: first and repeated load times reported", json.dumps(l))
PY
[ -s "$T/checks.txt" ] || bail_out "cannot read $OUT"
while IFS=$'\t' read -r verdict desc why; do
    if [ "$verdict" = ok ]; then
        pass "$desc"
    else
        fail "$desc" "$why"
    fi
done <"$T/checks.txt"
done_testing
