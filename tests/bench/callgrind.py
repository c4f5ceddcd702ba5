#!/usr/bin/env python3
"""callgrind.py: per-signature costs from a callgrind profile of
`p11id-bench sign --count N` (collection toggled on bench_count_loop).

    callgrind.py FILE N [--top K]   prints one JSON object

Instructions (Ir) per signature: total, inside the token (C_SignInit and
C_Sign of the PKCS#11 module, everything below them), and the rest: what the
caller's software stack costs around the token. For p11id.so it lists every
function with its cost per signature excluding the token, and counts calls
per signature of the functions that show where time goes (fetches,
allocations, locks, error marks).
"""
import json
import re
import sys
from collections import defaultdict

TOKEN_FNS = {"C_SignInit", "C_Sign"}
# Functions whose calls per signature are worth a line of the report.
WATCH = [
    "EVP_MD_fetch", "EVP_SIGNATURE_fetch", "EVP_KEYMGMT_fetch",
    "evp_generic_fetch", "ossl_method_store_fetch", "ossl_method_store_cache_get",
    "EVP_PKEY_CTX_new_from_pkey", "EVP_PKEY_CTX_dup", "EVP_MD_CTX_copy_ex",
    "EVP_DigestVerifyInit_ex", "EVP_PKEY_CTX_get_params", "evp_pkey_export_to_provider",
    "CRYPTO_malloc", "CRYPTO_zalloc", "CRYPTO_free", "malloc", "calloc", "realloc", "free",
    "pthread_mutex_lock", "pthread_rwlock_rdlock", "pthread_rwlock_wrlock",
    "p11id_session_take", "p11id_token_login", "p11id_err_set_mark",
    "CRYPTO_THREAD_read_lock", "CRYPTO_THREAD_write_lock",
    "ERR_set_mark", "ERR_clear_last_mark", "ERR_pop_to_mark",
    "ossl_property_parse", "ossl_parse_query", "ossl_property_match_count",
    "X509_SIG_new", "i2d_X509_SIG", "ECDSA_SIG_new", "i2d_ECDSA_SIG",
    "OBJ_nid2obj", "BN_bin2bn",
]


def parse(path):
    names = {"fn": {}, "fl": {}, "ob": {}}
    self_cost = defaultdict(int)
    edges = defaultdict(lambda: [0, 0])  # (caller, callee) -> [calls, incl]
    obj_of = {}
    cur_ob = cur_fn = None
    cfn = cob = None
    pending_calls = None
    ref = re.compile(r"^\((\d+)\)(?: (.*))?$")

    def resolve(kind, val):
        m = ref.match(val)
        if not m:
            return val
        idx, name = m.group(1), m.group(2)
        if name is not None:
            names[kind][idx] = name
            return name
        return names[kind].get(idx, "?" + idx)

    with open(path, encoding="utf-8", errors="replace") as fp:
        for line in fp:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 else 0
                if pending_calls is not None:
                    e = edges[(cur_fn, cfn)]
                    e[0] += pending_calls
                    e[1] += cost
                    # cob= names the callee's object for this call only;
                    # without it the callee is in the caller's object.
                    if cfn not in obj_of:
                        obj_of[cfn] = cob if cob is not None else cur_ob
                    pending_calls = None
                    cob = None
                else:
                    self_cost[cur_fn] += cost
                continue
            key, _, val = line.partition("=")
            if key == "ob":
                cur_ob = resolve("ob", val)
            elif key == "fn":
                cur_fn = resolve("fn", val)
                obj_of.setdefault(cur_fn, cur_ob)
                cob = None
            elif key == "cob":
                cob = resolve("ob", val)
            elif key == "cfn" or key == "cfi" or key == "cfl":
                if key == "cfn":
                    cfn = resolve("fn", val)
                else:
                    resolve("fl", val)
            elif key in ("fl", "fi", "fe"):
                resolve("fl", val)
            elif key == "calls":
                pending_calls = int(val.split()[0])
            elif key == "summary" or key == "totals":
                pass
    return self_cost, edges, obj_of


def analyse(path, n, top=25, root="sign_once", depth=4, min_ir=1500):
    self_cost, edges, obj_of = parse(path)
    out_edges = defaultdict(list)
    calls_in = defaultdict(int)
    for (a, b), (cnt, incl) in edges.items():
        out_edges[a].append((b, cnt, incl))
        calls_in[b] += cnt
    funcs = set(self_cost) | set(calls_in)
    total = sum(self_cost.values())

    def is_token(fn):
        return fn in TOKEN_FNS and "p11id" not in (obj_of.get(fn) or "")

    # Token cost under each function, attributed by call share.
    memo = {}

    def token_under(fn, depth=0):
        if fn in memo:
            return memo[fn]
        if depth > 200:
            return 0
        memo[fn] = 0  # cycle guard
        t = 0
        for b, cnt, incl in out_edges.get(fn, ()):
            if is_token(b):
                t += incl
            elif calls_in[b]:
                t += token_under(b, depth + 1) * cnt / calls_in[b]
        memo[fn] = t
        return t

    def incl(fn):
        return self_cost.get(fn, 0) + sum(i for _, _, i in out_edges.get(fn, ()))

    token = sum(incl_e for (a, b), (cnt, incl_e) in edges.items() if is_token(b))
    # Call counts are recorded even while collection is off (the warm-up
    # signatures before the loop): per signature they are divided by the
    # signatures the counts saw, the calls of C_Sign.
    n_calls = sum(cnt for (a, b), (cnt, i) in edges.items()
                  if b == "C_Sign" and is_token(b)) or n
    p11id = []
    for fn in funcs:
        ob = obj_of.get(fn) or ""
        if "p11id.so" in ob:
            ex = incl(fn) - token_under(fn)
            p11id.append({
                "fn": fn,
                "ir_per_sig_excl_token": round(ex / n),
                "self_ir_per_sig": round(self_cost.get(fn, 0) / n),
                "calls_per_sig": round(calls_in.get(fn, 0) / n_calls, 2),
            })
    p11id.sort(key=lambda d: -d["ir_per_sig_excl_token"])
    # Entry points: p11id.so functions called from outside p11id.so.
    entry = defaultdict(lambda: [0, 0])
    for (a, b), (cnt, incl_e) in edges.items():
        if "p11id.so" in (obj_of.get(b) or "") and "p11id.so" not in (obj_of.get(a) or ""):
            entry[b][0] += cnt
            entry[b][1] += incl_e
    # Which functions the loop reaches without entering the token, and which
    # only from inside it (SoftHSM's own use of OpenSSL, e.g. its decoders,
    # which include p11id's when p11id is loaded).
    def reach(starts, skip_token):
        seen, frontier = set(starts), list(starts)
        while frontier:
            f = frontier.pop()
            for b, _, _ in out_edges.get(f, ()):
                if b not in seen and not (skip_token and is_token(b)):
                    seen.add(b)
                    frontier.append(b)
        return seen

    roots0 = [f for f in funcs if f == root or f.startswith(root + ".")]
    outside_set = reach(roots0, True)
    inside_set = reach([f for f in funcs if is_token(f)], False)
    entries, inside_entries = [], []
    for fn, (cnt, incl_e) in entry.items():
        share = token_under(fn) * (cnt / calls_in[fn] if calls_in[fn] else 1)
        d = {"fn": fn, "calls_per_sig": round(cnt / n_calls, 2),
             "ir_per_sig_excl_token": round((incl_e - share) / n)}
        if fn in outside_set or fn not in inside_set:
            entries.append(d)
        else:
            d["ir_per_sig"] = d.pop("ir_per_sig_excl_token")
            inside_entries.append(d)
    entries.sort(key=lambda d: -d["ir_per_sig_excl_token"])
    inside_entries.sort(key=lambda d: -d["ir_per_sig"])
    # Symbol versions ("pthread_mutex_lock@@GLIBC_2.2.5") count as the name.
    calls_by_name = defaultdict(int)
    for fn, c in calls_in.items():
        calls_by_name[fn.split("@")[0]] += c
    watch = {}
    for w in WATCH:
        c = calls_by_name.get(w, 0)
        if c:
            watch[w] = round(c / n_calls, 2)
    by_obj = defaultdict(int)
    for fn, c in self_cost.items():
        ob = (obj_of.get(fn) or "?").rsplit("/", 1)[-1]
        by_obj[ob] += c
    # Top-down tree from the bench's sign_once, token excluded; below the
    # first levels a function's cost is shared among its callers by calls.
    def tree(fn, share, level, seen):
        node = {"fn": fn, "calls_per_sig": round(calls_in.get(fn, 0) * share / n_calls, 2),
                "ir_per_sig": round((incl(fn) - token_under(fn)) * share / n)}
        if level < depth:
            kids = []
            for b, cnt, inc in out_edges.get(fn, ()):
                if is_token(b) or b in seen:
                    continue
                sub = (inc - (token_under(b) * cnt / calls_in[b] if calls_in[b] else 0)) * share
                if sub / n >= min_ir:
                    kids.append(tree(b, share * cnt / calls_in[b], level + 1, seen | {b}))
            kids.sort(key=lambda d: -d["ir_per_sig"])
            if kids:
                node["children"] = kids
        return node

    roots = [f for f in funcs if f == root or f.startswith(root + ".")]
    call_tree = tree(roots[0], 1.0, 0, {roots[0]}) if roots else None

    return {
        "file": path,
        "signatures": n,
        "ir_per_sig": round(total / n),
        "token_ir_per_sig": round(token / n),
        "outside_token_ir_per_sig": round((total - token) / n),
        "self_ir_per_sig_by_object": {k: round(v / n) for k, v in
                                       sorted(by_obj.items(), key=lambda kv: -kv[1])
                                       if v / n >= 50},
        "p11id_entry_points": entries,
        "p11id_called_inside_token": inside_entries,
        "p11id_functions": p11id[:top],
        "calls_per_sig": watch,
        "tree": call_tree,
    }


def main():
    args = sys.argv[1:]
    kw = {}
    base = None
    if "--base" in args:
        i = args.index("--base")
        base = (args[i + 1], int(args[i + 2]))
        del args[i:i + 3]
    for flag, name, conv in (("--top", "top", int), ("--root", "root", str),
                             ("--depth", "depth", int), ("--min-ir", "min_ir", int)):
        if flag in args:
            i = args.index(flag)
            kw[name] = conv(args[i + 1])
            del args[i:i + 2]
    res = analyse(args[0], int(args[1]), **kw)
    if base is not None:
        # The same signatures through raw PKCS#11 on the same key object:
        # the token does the same work, so the differences are what this
        # path adds.
        b = analyse(base[0], base[1], top=0)
        res["base"] = {k: b[k] for k in ("file", "signatures", "ir_per_sig",
                                         "token_ir_per_sig",
                                         "outside_token_ir_per_sig",
                                         "calls_per_sig",
                                         "self_ir_per_sig_by_object")}
        names = set(res["calls_per_sig"]) | set(b["calls_per_sig"])
        res["extra_calls_per_sig"] = {
            k: round(res["calls_per_sig"].get(k, 0) - b["calls_per_sig"].get(k, 0), 2)
            for k in WATCH if k in names}
        objs = set(res["self_ir_per_sig_by_object"]) | set(b["self_ir_per_sig_by_object"])
        res["extra_self_ir_per_sig_by_object"] = dict(sorted(
            ((o, res["self_ir_per_sig_by_object"].get(o, 0)
              - b["self_ir_per_sig_by_object"].get(o, 0)) for o in objs
             if o != "p11id-bench"), key=lambda kv: -kv[1]))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
