#!/usr/bin/env python3
"""report.py: the table and the JSON file of `make bench`.

    report.py --raw RESULTS.jsonl --out results.json [--seconds S] [--meta k=v ...]

Reads the JSON lines run-bench.sh recorded (one per measurement), computes
medians, spreads and ratios, prints the tables and writes one JSON document.

Ratios are medians of per-round ratios: the paths of one round ran one
after another, so a ratio of one round cancels most of the machine's drift
(it is shared and noisy); absolute numbers move more than ratios do.
"""
import argparse
import datetime
import json
import os
import re
import statistics
import sys
from collections import defaultdict

ALGS = ["rsa", "pss", "p256", "p384", "ed25519"]
ALG_NAMES = {"rsa": "RSA-2048 PKCS#1 v1.5 SHA-256", "pss": "RSA-2048 PSS SHA-256",
             "p256": "ECDSA P-256 SHA-256", "p384": "ECDSA P-384 SHA-384",
             "ed25519": "Ed25519"}
PATHS = ["copy", "raw", "p11id", "libp11", "soft", "copyp", "reuse"]
# The main tables' columns; copyp (the limit in a process with p11id
# activated) and reuse (p11id, one context per thread initialised once) go
# to the table that says where the gap to the limit is.
MAIN_PATHS = ["copy", "raw", "p11id", "libp11", "soft"]
GAP_RATIOS = (("presence", "copyp", "copy"),
              ("p11id/limit", "p11id", "copy"),
              ("p11id/limit*", "p11id", "copyp"),
              ("reuse/limit", "reuse", "copy"),
              ("reuse/limit*", "reuse", "copyp"))
CONFIGS = ["files", "server", "client", "both"]
SPY_CALLS = ["C_SignInit", "C_Sign", "C_FindObjectsInit", "C_FindObjects",
             "C_FindObjectsFinal", "C_GetAttributeValue", "C_OpenSession",
             "C_CloseSession", "C_Login", "C_GetTokenInfo", "C_GetSessionInfo"]


def median(xs):
    return statistics.median(xs) if xs else None


def spread(xs):
    """(max - min) / median, in percent."""
    if not xs or len(xs) < 2:
        return 0.0
    m = statistics.median(xs)
    return 100.0 * (max(xs) - min(xs)) / m if m else 0.0


def fmt_rate(m, s):
    if m is None:
        return "-"
    return f"{m:,.0f} ±{s:.0f}%"


def fmt_ratio(x):
    return "-" if x is None else f"{x:.2f}"


def table(headers, rows, align=None):
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(str(c)))
    align = align or ["<"] + [">"] * (len(headers) - 1)
    def line(cells):
        return "  ".join(f"{str(c):{a}{w}}" for c, a, w in zip(cells, align, widths))
    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def paired_ratio(by_round, num, den):
    """Median over rounds of num/den, rounds where both were measured."""
    rs = [by_round[r][num] / by_round[r][den] for r in by_round
          if num in by_round[r] and den in by_round[r] and by_round[r][den] > 0]
    return median(rs), rs


def load_raw(path):
    lines = []
    with open(path, encoding="utf-8") as fp:
        for ln in fp:
            ln = ln.strip()
            if not ln:
                continue
            try:
                lines.append(json.loads(ln))
            except json.JSONDecodeError:
                lines.append({"section": "unparsed", "line": ln})
    return lines


def g2(entry, p):
    m = entry["paths"].get(p, {}).get("median")
    return "-" if m is None else f"{m:,.0f}"


def do_sign(lines, out, text):
    rates = defaultdict(list)          # (alg, thr, path) -> [rate]
    rounds = defaultdict(lambda: defaultdict(dict))  # (alg, thr) -> round -> path -> rate
    cpus = defaultdict(list)           # (alg, thr, path) -> [CPU us per signature]
    crounds = defaultdict(lambda: defaultdict(dict))
    errors = []
    for d in lines:
        if d.get("section") != "sign":
            continue
        if "error" in d:
            errors.append(d)
            continue
        key = (d["alg"], d["threads"])
        rates[key + (d["path"],)].append(d["rate"])
        rounds[key][d["round"]][d["path"]] = d["rate"]
        if d.get("cpu_us"):
            # CPU-time throughput: signatures per CPU-second.
            cpus[key + (d["path"],)].append(d["cpu_us"])
            crounds[key][d["round"]][d["path"]] = 1e6 / d["cpu_us"]
    if not rates:
        return
    res = []
    rows = []
    cpu_rows = []
    gap_rows = []
    bar_ok = True
    for alg in ALGS:
        for thr in (1, 2):
            key = (alg, thr)
            if key not in rounds:
                continue
            entry = {"alg": alg, "name": ALG_NAMES[alg], "threads": thr, "paths": {}}
            for p in PATHS:
                xs = rates.get(key + (p,), [])
                if xs:
                    entry["paths"][p] = {"median": round(median(xs), 1),
                                         "spread_pct": round(spread(xs), 1),
                                         "rounds": [round(x, 1) for x in xs]}
            ratios = {}
            for name, num, den in (("p11id/limit", "p11id", "copy"),
                                   ("p11id/raw", "p11id", "raw"),
                                   ("p11id/libp11", "p11id", "libp11"),
                                   ("limit/raw", "copy", "raw"),
                                   ("libp11/limit", "libp11", "copy"),
                                   ("presence", "copyp", "copy"),
                                   ("p11id/limit*", "p11id", "copyp"),
                                   ("reuse/limit", "reuse", "copy"),
                                   ("reuse/limit*", "reuse", "copyp")):
                m, rs = paired_ratio(rounds[key], num, den)
                if m is not None:
                    ratios[name] = {"median": round(m, 3),
                                    "rounds": [round(x, 3) for x in rs]}
            entry["ratios"] = ratios
            cratios = {}
            for p in PATHS:
                xs = cpus.get(key + (p,), [])
                if xs:
                    entry["paths"][p]["cpu_us_median"] = round(median(xs), 2)
                    entry["paths"][p]["cpu_us_rounds"] = [round(x, 2) for x in xs]
            for name, num, den in (("p11id/limit", "p11id", "copy"),
                                   ("p11id/raw", "p11id", "raw"),
                                   ("p11id/libp11", "p11id", "libp11"),
                                   ("presence", "copyp", "copy"),
                                   ("p11id/limit*", "p11id", "copyp"),
                                   ("reuse/limit", "reuse", "copy"),
                                   ("reuse/limit*", "reuse", "copyp")):
                m, rs = paired_ratio(crounds[key], num, den)
                if m is not None:
                    cratios[name] = {"median": round(m, 3),
                                     "rounds": [round(x, 3) for x in rs]}
            entry["cpu_ratios"] = cratios
            cpu_rows.append([alg, thr] + [
                (f"{entry['paths'][p]['cpu_us_median']:,.0f}"
                 if "cpu_us_median" in entry["paths"].get(p, {}) else "-")
                for p in MAIN_PATHS] + [fmt_ratio(cratios.get(n, {}).get("median"))
                                   for n in ("p11id/limit", "p11id/raw", "p11id/libp11")])
            if any(p in entry["paths"] for p in ("copyp", "reuse")):
                gap_rows.append(
                    [alg, thr] + [g2(entry, p) for p in ("copy", "copyp", "p11id", "reuse")]
                    + [fmt_ratio(ratios.get(n, {}).get("median")) for n, _, _ in GAP_RATIOS]
                    + [fmt_ratio(cratios.get(n, {}).get("median")) for n, _, _ in GAP_RATIOS])
            lim = ratios.get("p11id/limit", {}).get("median")
            lib = ratios.get("p11id/libp11", {}).get("median")
            entry["bar"] = {
                "p11id >= 0.95 x limit": None if lim is None else lim >= 0.95,
                "p11id > libp11": None if lib is None else lib > 1.0,
            }
            if lim is not None and lim < 0.95 or lib is not None and lib <= 1.0:
                bar_ok = False
            res.append(entry)
            g = lambda p: fmt_rate(entry["paths"].get(p, {}).get("median"),
                                   entry["paths"].get(p, {}).get("spread_pct", 0))
            r = lambda n: fmt_ratio(ratios.get(n, {}).get("median"))
            mark = ""
            if lim is not None and lim < 0.95:
                mark += " <limit"
            if lib is not None and lib <= 1.0:
                mark += " <libp11"
            rows.append([alg, thr, g("copy"), g("raw"), g("p11id"), g("libp11"), g("soft"),
                         r("p11id/limit"), r("p11id/raw"), r("p11id/libp11"),
                         mark.strip() or "ok"])
    out["signatures"] = {"results": res, "bar_met": bar_ok,
                         "errors": errors}
    text.append("Signatures per second (median of rounds, ±spread = (max-min)/median)\n"
                "limit = raw PKCS#11 on a session copy of the token key; raw = on the "
                "token key object;\nratios are medians of per-round ratios; bar: "
                "p11id/limit >= 0.95 and p11id/libp11 > 1")
    text.append(table(["alg", "thr", "limit(copy)", "raw token", "p11id", "libp11",
                       "software", "p11id/limit", "p11id/raw", "p11id/libp11", "bar"], rows))
    if cpu_rows:
        text.append("CPU time per signature, microseconds (all threads, user + system; "
                    "median of rounds), and the\nratios as CPU throughput "
                    "(signatures per CPU-second, per-round medians): other load on a "
                    "shared machine\ndisturbs these far less than wall-clock rates")
        text.append(table(["alg", "thr", "limit(copy)", "raw token", "p11id", "libp11",
                           "software", "p11id/limit", "p11id/raw", "p11id/libp11"],
                          cpu_rows))
    if gap_rows:
        text.append("Where the gap to the limit is (ratios of wall-clock rates, then of CPU throughput)\n"
                    "limit* = the limit measured in a process that has p11id activated but signs on\n"
                    "raw PKCS#11 (what p11id's presence costs the token's own work: SoftHSM decodes\n"
                    "keys with OpenSSL's decoders, p11id's among them); presence = limit*/limit;\n"
                    "reuse = p11id with one signing context per thread initialised once (what p11id\n"
                    "costs per signature without OpenSSL 3.0's per-context set-up, which libssl pays\n"
                    "for every CertificateVerify)")
        hdr = ["alg", "thr", "limit", "limit*", "p11id", "reuse"]
        hdr += [n for n, _, _ in GAP_RATIOS] + ["cpu " + n for n, _, _ in GAP_RATIOS]
        text.append(table(hdr, gap_rows))
    if errors:
        text.append(f"{len(errors)} signing measurements failed, e.g.: "
                    f"{errors[0].get('path')}/{errors[0].get('alg')}: {errors[0]['error']}")


def do_tls(lines, out, text):
    # CPU per signature of one thread, from the signature section.
    sig_cpu = {}
    for r in out.get("signatures", {}).get("results", []):
        if r["threads"] == 1:
            for p, v in r["paths"].items():
                if "cpu_us_median" in v:
                    sig_cpu[(r["alg"], p)] = v["cpu_us_median"]
    rates = defaultdict(list)
    rounds = defaultdict(lambda: defaultdict(dict))
    cpu = defaultdict(list)
    crounds = defaultdict(lambda: defaultdict(dict))
    cpu_rows = []
    errors = []
    for d in lines:
        if d.get("section") != "tls":
            continue
        if "error" in d:
            errors.append(d)
            continue
        key = (d["server"], d["tls"], d["kt"])
        rates[key + (d["config"],)].append(d["rate"])
        rounds[key][d["round"]][d["config"]] = d["rate"]
        for side in ("server", "client"):
            v = d.get(side + "_cpu_us")
            if v:
                cpu[key + (d["config"], side)].append(v)
                crounds[(key, side)][d["round"]][d["config"]] = 1e6 / v
    if not rates:
        if errors:
            out["handshakes"] = {"errors": errors}
            text.append(f"all {len(errors)} TLS measurements failed, e.g. {errors[0]['error']}")
        return
    res, rows = [], []
    bar_ok = True
    for srv in ("s_server", "nginx"):
        for v in ("1.3", "1.2"):
            for kt in ("rsa", "ec"):
                key = (srv, v, kt)
                if key not in rounds:
                    continue
                e = {"server": srv, "tls": v, "kt": kt, "configs": {}, "ratios": {}}
                for c in CONFIGS:
                    xs = rates.get(key + (c,), [])
                    if xs:
                        e["configs"][c] = {"median": round(median(xs), 1),
                                           "spread_pct": round(spread(xs), 1),
                                           "rounds": [round(x, 1) for x in xs]}
                for c in ("server", "client", "both"):
                    m, rs = paired_ratio(rounds[key], c, "files")
                    if m is not None:
                        e["ratios"][c + "/files"] = {"median": round(m, 3),
                                                     "rounds": [round(x, 3) for x in rs]}
                # CPU per handshake: the server's with its key on the token vs
                # in a file (client keys in files), the client's likewise.
                e["cpu_us"] = {}
                for c in CONFIGS:
                    for side in ("server", "client"):
                        xs = cpu.get(key + (c, side), [])
                        if xs:
                            e["cpu_us"].setdefault(c, {})[side] = round(median(xs), 1)
                sr, _ = paired_ratio(crounds[(key, "server")], "server", "files")
                cr, _ = paired_ratio(crounds[(key, "client")], "client", "files")
                br, _ = paired_ratio(crounds[(key, "server")], "both", "files")
                e["cpu_ratios"] = {"server/files": sr, "client/files": cr,
                                   "both/files (server side)": br}
                # What the token allows: the key-file handshake with its
                # software signature swapped for the token's (raw PKCS#11 on a
                # session copy, one thread; OpenSSL 3 signs RSA handshakes
                # with PSS). p11id/limit = measured ratio / that ratio.
                salg = "pss" if kt == "rsa" else "p256"
                lim = {}
                for side in ("server", "client"):
                    f = e["cpu_us"].get("files", {}).get(side)
                    ss, tt = sig_cpu.get((salg, "soft")), sig_cpu.get((salg, "copy"))
                    if f and ss and tt and f - ss + tt > 0:
                        lim[side] = f / (f - ss + tt)
                e["token_limit_ratio"] = {k: round(x, 3) for k, x in lim.items()}
                cu = lambda c, side: (f"{e['cpu_us'][c][side]:,.0f}"
                                      if side in e["cpu_us"].get(c, {}) else "-")
                pl = lambda r, side: (fmt_ratio(r / lim[side])
                                      if r is not None and side in lim else "-")
                cpu_rows.append([srv, v, kt, cu("files", "server"), cu("server", "server"),
                                 fmt_ratio(sr), fmt_ratio(lim.get("server")),
                                 pl(sr, "server"), cu("files", "client"),
                                 cu("client", "client"), fmt_ratio(cr),
                                 fmt_ratio(lim.get("client")), pl(cr, "client"),
                                 fmt_ratio(br)])
                want_srv = 0.95 if kt == "rsa" else 1.0
                s = e["ratios"].get("server/files", {}).get("median")
                b = e["ratios"].get("both/files", {}).get("median")
                e["bar"] = {f"server/files >= {want_srv}": None if s is None else s >= want_srv,
                            "both/files >= 0.90": None if b is None else b >= 0.90}
                mark = []
                if s is not None and s < want_srv:
                    mark.append("<server")
                if b is not None and b < 0.90:
                    mark.append("<both")
                if mark:
                    bar_ok = False
                res.append(e)
                g = lambda c: fmt_rate(e["configs"].get(c, {}).get("median"),
                                       e["configs"].get(c, {}).get("spread_pct", 0))
                r = lambda n: fmt_ratio(e["ratios"].get(n, {}).get("median"))
                rows.append([srv, v, kt, g("files"), g("server"), g("client"), g("both"),
                             r("server/files"), r("client/files"), r("both/files"),
                             " ".join(mark) or "ok"])
    out["handshakes"] = {"results": res, "bar_met": bar_ok, "errors": errors}
    text.append("Mutual-TLS full handshakes per second (new connection each, no resumption;\n"
                "s_server: 1 client connection at a time; nginx: 2 workers, 2 client threads)\n"
                "files = both keys in files; server/client/both = that key on the token "
                "(p11id); bar: server/files >= 0.95 (RSA), >= 1.0 (EC); both/files >= 0.90")
    text.append(table(["server", "tls", "key", "files", "server key on token",
                       "client key on token", "both on token", "server/files",
                       "client/files", "both/files", "bar"], rows))
    if cpu_rows:
        text.append("CPU time per handshake, microseconds (server processes from /proc, "
                    "10 ms ticks; the client's own),\nand ratios as CPU throughput "
                    "(files cost / token cost, per-round medians). limit = the same ratio "
                    "if the key-file\nhandshake's software signature cost what the "
                    "token's raw signature costs (session copy, from the signature\n"
                    "table): the best any provider can do on this token; "
                    "p11id/limit = how close p11id gets")
        text.append(table(["server", "tls", "key", "srv CPU files", "srv CPU token",
                           "srv/files", "limit", "p11id/limit", "cli CPU files",
                           "cli CPU token", "cli/files", "limit", "p11id/limit",
                           "both/files (srv)"], cpu_rows))
    if errors:
        text.append(f"{len(errors)} TLS measurements failed, e.g.: {errors[0]['error']}")


def diff_calls(big, small, n):
    names = sorted(set(big) | set(small))
    d = {k: big.get(k, 0) - small.get(k, 0) for k in names}
    return {k: v for k, v in d.items() if v}, {k: round(v / n, 4) for k, v in d.items() if v}


def do_spy(lines, out, text):
    runs = defaultdict(dict)
    for d in lines:
        if d.get("section") != "spy":
            continue
        if d["what"] == "sign":
            runs[("sign", d["path"], d["alg"])][d["n"]] = d["calls"]
        else:
            runs[("tls", d["side"], d["kt"], d["tls"])][d["n"]] = d["calls"]
    if not runs:
        return
    res, rows = [], []
    bar_ok = True
    for key in sorted(runs):
        ns = sorted(runs[key])
        if len(ns) < 2:
            continue
        small, big = ns[0], ns[-1]
        n = big - small
        total, per = diff_calls(runs[key][big], runs[key][small], n)
        extra = {k: v for k, v in per.items() if k not in ("C_SignInit", "C_Sign")}
        if key[0] == "sign":
            ok = per.get("C_SignInit") == 1 and per.get("C_Sign") == 1 and not extra
            label = f"{key[1]} {key[2]} signature"
            e = {"what": "signature", "path": key[1], "alg": key[2], "n": n}
        else:
            ok = per.get("C_SignInit", 0) <= 1 and per.get("C_Sign", 0) <= 1 and not extra
            label = f"TLS {key[3]} {key[2]} handshake, {key[1]}"
            e = {"what": "handshake", "side": key[1], "kt": key[2], "tls": key[3], "n": n}
        e.update({"calls": total, "per_op": per, "only_sign_calls": ok})
        if key[0] == "sign" and key[1] == "p11id" or key[0] == "tls":
            bar_ok = bar_ok and ok
        res.append(e)
        rows.append([label, n] + [f"{per.get(c, 0):g}" for c in
                                  ("C_SignInit", "C_Sign")]
                    + [f"{sum(v for k, v in per.items() if k.startswith('C_FindObjects')):g}",
                       f"{per.get('C_GetAttributeValue', 0):g}",
                       f"{per.get('C_OpenSession', 0):g}", f"{per.get('C_Login', 0):g}",
                       ", ".join(f"{k} {v:g}" for k, v in extra.items()
                                 if not k.startswith("C_FindObjects")
                                 and k not in ("C_GetAttributeValue", "C_OpenSession",
                                               "C_Login")) or "-",
                       "ok" if ok else "EXTRA"])
    out["pkcs11_calls"] = {"results": res, "bar_met": bar_ok}
    text.append("PKCS#11 calls per operation in steady state (pkcs11-spy; a run of "
                "warm-up + N minus a warm-up-only run)\nbar: exactly C_SignInit + C_Sign "
                "per signature, nothing else")
    text.append(table(["operation", "N", "C_SignInit", "C_Sign", "C_FindObjects*",
                       "C_GetAttributeValue", "C_OpenSession", "C_Login", "other", "bar"],
                      rows))


def do_mem(lines, out, text):
    res, rows = [], []
    for d in lines:
        if d.get("section") != "mem" or "error" in d:
            continue
        dr = d["rss2_kib"] - d["rss1_kib"]
        dh = d["heap2"] - d["heap1"]
        e = dict(d)
        e["rss_growth_kib"] = dr
        e["heap_growth_bytes"] = dh
        e["within_1mib"] = dr <= 1024
        res.append(e)
        rows.append([d["path"], d["alg"], f"{d['n1']:,}", f"{d['rss1_kib']:,}",
                     f"{d['n2']:,}", f"{d['rss2_kib']:,}", f"{dr:+,}", f"{dh:+,}",
                     "ok" if dr <= 1024 else "GROWS"])
    if not res:
        return
    out["memory"] = res
    text.append("Memory: resident size after n1 and after n2 signatures (one thread); "
                "bar: growth within 1 MiB")
    text.append(table(["path", "alg", "n1", "RSS KiB", "n2", "RSS KiB", "RSS growth KiB",
                       "heap growth B", "bar"], rows))


def do_load(lines, out, text):
    firsts = defaultdict(list)
    agains = defaultdict(list)
    for d in lines:
        if d.get("section") != "load" or "error" in d:
            continue
        firsts[(d["path"], d["alg"])].append(d["first_ms"])
        agains[(d["path"], d["alg"])].append(d["again_ms"])
    if not firsts:
        return
    res, rows = [], []
    for p in ("p11id", "libp11", "soft"):
        for a in ("p256", "rsa"):
            if (p, a) not in firsts:
                continue
            f, g = median(firsts[(p, a)]), median(agains[(p, a)])
            res.append({"path": p, "alg": a, "first_ms": round(f, 3),
                        "again_ms": round(g, 3), "processes": len(firsts[(p, a)])})
            rows.append([p, a, f"{f:.2f}", f"{g:.3f}"])
    out["key_load"] = res
    text.append("Key load, URI (or file) to EVP_PKEY: first in a process (module "
                "initialisation and login included), then again (median of 20)")
    text.append(table(["path", "key", "first ms", "again ms"], rows))


PERF_LINE = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s+\[\.\]\s+(.*?)\s*$")
PERF_DSO = re.compile(r"^\s*([\d.]+)%\s+(\S+)\s*$")


def parse_perf(sym_file, dso_file):
    syms, dsos = [], []
    try:
        with open(sym_file, encoding="utf-8", errors="replace") as fp:
            for ln in fp:
                m = PERF_LINE.match(ln)
                if m:
                    syms.append({"pct": float(m.group(1)), "dso": m.group(2),
                                 "sym": m.group(3)})
        with open(dso_file, encoding="utf-8", errors="replace") as fp:
            for ln in fp:
                m = PERF_DSO.match(ln)
                if m:
                    dsos.append({"pct": float(m.group(1)), "dso": m.group(2)})
    except OSError:
        pass
    return syms, dsos


def do_profile(lines, out, text):
    cg = {}
    for d in lines:
        if d.get("section") == "callgrind":
            try:
                with open(d["file"], encoding="utf-8") as fp:
                    cg[(d["path"], d["alg"])] = json.load(fp)
            except (OSError, json.JSONDecodeError):
                pass
    cgtls = {}
    for d in lines:
        if d.get("section") == "callgrind-tls":
            try:
                with open(d["file"], encoding="utf-8") as fp:
                    cgtls[d["kt"]] = json.load(fp)
                with open(d["loaded"], encoding="utf-8") as fp:
                    cgtls[d["kt"] + "-loaded"] = json.load(fp)
            except (OSError, json.JSONDecodeError, KeyError):
                pass
    perf = {}
    for d in lines:
        if d.get("section") == "perf":
            perf[(d["path"], d["alg"])] = parse_perf(d["sym"], d["dso"])
    if not cg and not perf and not cgtls:
        return
    prof = {"callgrind": {}, "perf": {}}
    rows = []
    for a in ALGS:
        p, s = cg.get(("p11id", a)), cg.get(("soft", a))
        for k, v in (("p11id", p), ("soft", s)):
            if v:
                prof["callgrind"].setdefault(a, {})[k] = v
        if not p:
            continue
        base = p.get("base", {})
        extra = (p["outside_token_ir_per_sig"] - base["outside_token_ir_per_sig"]
                 if base else None)
        rows.append([a, f"{p['ir_per_sig']:,}", f"{p['token_ir_per_sig']:,}",
                     f"{p['outside_token_ir_per_sig']:,}",
                     f"{base['outside_token_ir_per_sig']:,}" if base else "-",
                     f"{extra:,}" if extra is not None else "-",
                     f"{100.0 * extra / p['ir_per_sig']:.1f}%" if extra is not None else "-",
                     f"{s['ir_per_sig']:,}" if s else "-"])
    if rows:
        text.append("Instructions per signature (callgrind, one thread, signing loop only).\n"
                    "token = C_SignInit + C_Sign and all below them; raw = PKCS#11 "
                    "directly on a session copy of the key,\nas p11id signs by default "
                    "(its outside-token part is the software hash and DigestInfo/DER: "
                    "the floor);\nextra = p11id outside token - raw outside token: what "
                    "p11id and the EVP layer add to each signature")
        text.append(table(["alg", "p11id total", "token", "p11id outside token",
                           "raw outside token", "extra", "extra/total", "software total"],
                          rows))
        for a in ("p256", "pss", "ed25519"):
            p = cg.get(("p11id", a))
            if not p:
                continue
            if p.get("tree") and a != "ed25519":
                tl = []

                def walk(node, ind):
                    tl.append([("  " * ind) + node["fn"], node["calls_per_sig"],
                               f"{node['ir_per_sig']:,}"])
                    if ind < 3:
                        for c in node.get("children", []):
                            walk(c, ind + 1)
                walk(p["tree"], 0)
                text.append(f"{a}: p11id signing loop, call tree outside the token "
                            "(instructions per signature; below the first levels a "
                            "function's cost is shared among its callers)")
                text.append(table(["function", "calls/sig", "Ir/sig"], tl))
            ent = [[e["fn"], e["calls_per_sig"], f"{e['ir_per_sig_excl_token']:,}"]
                   for e in p["p11id_entry_points"] if e["ir_per_sig_excl_token"] >= 50]
            text.append(f"{a}: p11id entry points, instructions per signature "
                        "(token excluded; libcrypto work they call included)")
            text.append(table(["function", "calls/sig", "Ir/sig"], ent))
            ex = p.get("extra_calls_per_sig", {})
            calls = [[k, p["calls_per_sig"].get(k, 0), p.get("base", {}).get(
                "calls_per_sig", {}).get(k, 0), f"{v:+g}"] for k, v in ex.items() if abs(v) >= 0.5]
            if calls:
                text.append(f"{a}: calls per signature, p11id vs raw PKCS#11 on a "
                            "session copy (both include the token's own)")
                text.append(table(["function", "p11id", "raw", "extra"], calls))
            eo = p.get("extra_self_ir_per_sig_by_object", {})
            if eo:
                text.append(f"{a}: where the extra instructions run: " + ", ".join(
                    f"{o} {v:+,}" for o, v in eo.items() if abs(v) >= 200))
        loaded = []
        for a in ALGS:
            q = cg.get(("raw-p11id-loaded", a))
            if q and q.get("base"):
                prof["callgrind"].setdefault(a, {})["raw-p11id-loaded"] = q
                d = q["token_ir_per_sig"] - q["base"]["token_ir_per_sig"]
                loaded.append([a, f"{q['base']['token_ir_per_sig']:,}",
                               f"{q['token_ir_per_sig']:,}", f"{d:+,}",
                               f"{100.0 * d / q['base']['token_ir_per_sig']:+.1f}%",
                               f"{q.get('extra_calls_per_sig', {}).get('CRYPTO_THREAD_read_lock', 0):+g}"])
        if loaded:
            text.append("The token's own instructions per signature (raw PKCS#11 on a session "
                        "copy) without and with p11id\nloaded in the process (SoftHSM "
                        "decodes its keys with OpenSSL's decoders, p11id's among them)")
            text.append(table(["alg", "token, p11id not loaded", "token, p11id loaded",
                               "difference", "", "read locks/sig"], loaded))
    trows = []
    for kt, salg in (("ec", "p256"), ("rsa", "pss")):
        t, l = cgtls.get(kt), cgtls.get(kt + "-loaded")
        if not t or not l or not t.get("base") or not l.get("base"):
            continue
        prof.setdefault("callgrind_tls", {})[kt] = {"token_client": t, "p11id_loaded": l}
        plain = l["base"]["ir_per_sig"]          # key file, p11id not loaded
        loaded = l["ir_per_sig"]                 # key file, p11id loaded
        ssig = cg.get(("soft", salg), {}).get("ir_per_sig")
        extra = (t["outside_token_ir_per_sig"] - (loaded - ssig)) if ssig else None
        trows.append([kt, f"{plain:,}", f"{loaded:,}",
                      f"{loaded - plain:+,} ({100.0 * (loaded - plain) / plain:+.1f}%)",
                      f"{t['ir_per_sig']:,}", f"{t['token_ir_per_sig']:,}",
                      f"{t['outside_token_ir_per_sig']:,}",
                      f"{ssig:,}" if ssig else "-",
                      f"{extra:+,}" if extra is not None else "-"])
    if trows:
        text.append("Instructions per TLS 1.3 handshake, client side (callgrind, 40 "
                    "handshakes). file = client key in a file,\nwith p11id not loaded "
                    "and loaded (activated, unused); token = client key on the token.\n"
                    "signing extra = token client outside the token - (file client with "
                    "p11id loaded - one software signature)")
        text.append(table(["key", "file, p11id not loaded", "file, p11id loaded",
                           "cost of loading p11id", "token", "token part",
                           "token: outside token", "software signature",
                           "signing extra"], trows))
        for kt in ("ec", "rsa"):
            l = cgtls.get(kt + "-loaded")
            if not l:
                continue
            ex = {k: v for k, v in l.get("extra_calls_per_sig", {}).items() if abs(v) >= 0.5}
            ent = ", ".join(f"{e['fn']} x{e['calls_per_sig']}" for e in l["p11id_entry_points"])
            text.append(f"TLS 1.3 {kt}, key file, p11id loaded vs not: p11id functions "
                        f"called per handshake: {ent or 'none'}; extra calls: "
                        + ", ".join(f"{k} {v:+g}" for k, v in ex.items()))
        for kt in ("ec", "rsa"):
            t = cgtls.get(kt)
            if not t:
                continue
            ent = [[e["fn"], e["calls_per_sig"], f"{e['ir_per_sig_excl_token']:,}"]
                   for e in t["p11id_entry_points"] if e["ir_per_sig_excl_token"] >= 20]
            text.append(f"TLS 1.3 {kt} client: p11id entry points per handshake "
                        "(token excluded)")
            text.append(table(["function", "calls/handshake", "Ir/handshake"], ent))
    for (path, a), (syms, dsos) in sorted(perf.items()):
        prof["perf"][f"{path}-{a}"] = {"dso": dsos, "symbols": syms[:40]}
    if perf:
        for key in sorted(perf):
            syms, dsos = perf[key]
            top = ", ".join(f"{d['dso']} {d['pct']:.1f}%" for d in dsos[:6])
            text.append(f"perf, {key[0]} {key[1]} 2 threads, samples by object: {top}")
            text.append("  top symbols: " + ", ".join(
                f"{s['sym']} ({s['dso']}) {s['pct']:.1f}%" for s in syms[:8]))
            own = [s for s in syms if s["dso"] == "p11id.so"]
            if own:
                text.append("  p11id.so symbols: " + ", ".join(
                    f"{s['sym']} {s['pct']:.2f}%" for s in own[:8]))
    out["profile"] = prof


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("--meta", nargs="*", default=[])
    a = ap.parse_args()
    lines = load_raw(a.raw)
    meta = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "host_cpus": os.cpu_count(), "duration_s": a.seconds,
            "command": "make bench"}
    for kv in a.meta:
        k, _, v = kv.partition("=")
        meta[k] = v
    out = {"meta": meta}
    text = []
    for f in (do_sign, do_tls, do_spy, do_mem, do_load, do_profile):
        try:
            f(lines, out, text)
        except Exception as e:  # a broken section must not hide the others
            text.append(f"({f.__name__} failed: {e!r})")
            out.setdefault("report_errors", []).append(f"{f.__name__}: {e!r}")
    out["raw"] = lines
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fp:
        json.dump(out, fp, indent=1)
        fp.write("\n")
    os.replace(tmp, a.out)
    print(f"p11id benchmark, {meta['date']}, {meta.get('cpus', '?')} CPUs, OpenSSL "
          f"{meta.get('openssl', '?')}, SoftHSM {meta.get('softhsm', '?')}, libp11 "
          f"{meta.get('libp11', '?')}, commit {meta.get('commit', '?')}, "
          f"{a.seconds} s in all\n")
    print("\n\n".join(text))
    print(f"\nJSON: {a.out}")


if __name__ == "__main__":
    main()
