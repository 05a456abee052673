#!/usr/bin/python3
"""Turns bench_limits and `tinyllm bench -o json` results into one table:
pp tok/s with its % of the compute bound, tg tok/s with its % of the
bandwidth bound, and peak RSS against weights + KV cache + 32 MB.

Compute bound (pp): the measured large-square (2048^3) sgemm GFLOP/s at the
same thread count / (2 x layer matmul params per token + 2 x classifier params
/ prompt length): only the last prompt token needs logits. A second column
uses instead OpenBLAS's own measured rate on the model's layer shapes at
M = 512 (what sgemm itself reaches on exactly these products). The bounds
apply to rows whose matrices all multiply with sgemm (F32, F16, and BF16
but for the avx512bf16 kernel set, which multiplies BF16 with vdpbf16ps:
`matrix_formats` and `kernels` in the bench's JSON); the quantized formats
multiply in integers, so neither bound applies to them ("-").
Bandwidth bound (tg): the share of the rate at which the same threads read
the weights a decode reads, where the engine holds them (the file's mapping
or the copy made at load), just before and after each segment of a
repetition's decodes (at least 8 GiB of weights each; `of_read_rate` in the
bench's JSON: tok/s x bytes read per token, every weight matrix once plus
the KV cache, over that rate, median over the segments; paired in time
because this host's bandwidth moves by a fifth within a second). For results without it, bench_limits' DRAM figure /
bytes read per generated token.
When NAME.llama.json (llama-bench -o json on the same file, same run) lies
beside a result NAME.json, the pp512 and tg128 columns get the ratio
tinyllm / llama.cpp at the same thread count.

A model's result may be several rounds, comma-separated (NAME.r1.json,
NAME.r2.json: scripts/bench.sh alternates the engines): each engine's
speeds are its best round per thread count and test, the peak RSS the
highest, the start-up the lowest.

Limits may be given as several files (comma-separated: measured before and
after the models); every limit is the highest measured, so the ratios are
conservative.

Usage: bench_report.py LIMITS.json[,LIMITS.json] RESULT.json[,RESULT.json] ...
"""
import json
import os
import re
import sys


def prefill_by_sgemm(r, bytes_per_weight):
    """Whether every matrix of a bench result multiplies with sgemm in prefill
    (results from before `matrix_formats`: 2 or more bytes per weight)."""
    formats = r.get("matrix_formats")
    if formats is None:
        return bytes_per_weight >= 2
    return all(f in ("F32", "F16", "F32 (expanded)") or (f == "BF16" and r.get("kernels") != "avx512bf16")
               for f in formats)


def layer_params(r):
    d, ff, L = r["n_embd"], r["n_ff"], r["n_layer"]
    kv = d // r["n_head"] * r["n_head_kv"]
    if r["architecture"] == "llama":
        return L * (2 * d * d + 2 * d * kv + 3 * d * ff)
    return L * (4 * d * d + 2 * d * ff)


def layer_shapes(r):
    """(N, K, count) of the layer products per token at M = 512."""
    d, ff, L = r["n_embd"], r["n_ff"], r["n_layer"]
    kv = d // r["n_head"] * r["n_head_kv"]
    if r["architecture"] == "llama":
        return [(d, d, 2 * L), (kv, d, 2 * L), (ff, d, 2 * L), (d, ff, L)]
    return [(d, d, 4 * L), (ff, d, L), (d, ff, L)]


def shape_rate(r, lim):
    """OpenBLAS's own measured GFLOP/s on the model's layer shapes (time-
    weighted), or None when bench_limits did not measure them all."""
    rates = {(g["N"], g["K"]): g["gflops"] for g in lim["sgemm"] if g["M"] == 512}
    flops = secs = 0.0
    for n, k, count in layer_shapes(r):
        if (n, k) not in rates:
            return None
        f = 2.0 * 512 * n * k * count
        flops += f
        secs += f / (rates[(n, k)] * 1e9)
    return flops / secs / 1e9


def best_rounds(paths):
    """One tinyllm result and its llama.cpp tok/s by (threads, test) from
    the rounds in `paths`: the best speed of each, the highest RSS, the
    lowest start-up."""
    r, peer = None, {}
    for path in paths:
        x = json.load(open(path))
        if r is None:
            r = x
        else:
            r["peak_rss_mib"] = max(r["peak_rss_mib"], x["peak_rss_mib"])
            r["first_token_ms"] = min(r["first_token_ms"], x["first_token_ms"])
            best = {(y["threads"], y["test"]): y for y in r["results"]}
            for y in x["results"]:
                key = (y["threads"], y["test"])
                if key not in best:
                    r["results"].append(y)
                elif y["tok_s"] > best[key]["tok_s"]:
                    best[key].update(y)
        peer_path = path[:-5] + ".llama.json"
        if os.path.exists(peer_path):
            for y in json.load(open(peer_path)):
                test = f"pp{y['n_prompt']}" if y["n_gen"] == 0 else f"tg{y['n_gen']}"
                key = (y["n_threads"], test)
                peer[key] = max(peer.get(key, 0.0), y["avg_ts"])
    return r, peer


def main():
    limits = {}
    for path in sys.argv[1].split(","):
        for t in json.load(open(path))["threads"]:
            best = limits.setdefault(t["threads"], t)
            best["read_gb_s"] = max(best["read_gb_s"], t["read_gb_s"])
            rates = {(g["M"], g["N"], g["K"]): g for g in best["sgemm"]}
            for g in t["sgemm"]:
                key = (g["M"], g["N"], g["K"])
                if key in rates:
                    rates[key]["gflops"] = max(rates[key]["gflops"], g["gflops"])
    print("| model | params | thr | pp128 tok/s | pp512 tok/s | pp512 vs llama.cpp | pp512 % of sgemm peak "
          "| pp512 % of sgemm at its shapes | tg128 tok/s | tg128 vs llama.cpp | tg % of bandwidth bound "
          "| start-up ms | peak RSS MiB | RSS budget MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for arg in sys.argv[2:]:
        paths = arg.split(",")
        r, peer = best_rounds(paths)
        name = re.sub(r"\.r[0-9]+$", "", paths[0].rsplit("/", 1)[-1][:-5])
        lp, cls = layer_params(r), r["n_vocab"] * r["n_embd"]
        kv_dim = r["n_embd"] // r["n_head"] * r["n_head_kv"]
        weight_bytes = r.get("weight_bytes", 4 * r["params"])  # as held in memory
        bytes_per_weight = weight_bytes / r["params"]
        weights_mib = weight_bytes / 2**20
        by = {}
        for x in r["results"]:
            by.setdefault(x["threads"], {})[x["test"]] = x

        def vs(thr, test, tok_s):
            return f"{tok_s / peer[(thr, test)]:.2f}x" if (thr, test) in peer else "-"

        for thr, tests in sorted(by.items()):
            lim = limits.get(thr) or limits[max(limits)]
            peak = lim["sgemm"][0]["gflops"] * 1e9
            row = [name, f"{r['params'] / 1e6:.1f} M", str(thr)]
            for t in ("pp128", "pp512"):
                row.append(f"{tests[t]['tok_s']:.1f}" if t in tests else "-")
            row.append(vs(thr, "pp512", tests["pp512"]["tok_s"]) if "pp512" in tests else "-")
            if "pp512" in tests and prefill_by_sgemm(r, bytes_per_weight):
                flops_tok = 2 * lp + 2 * cls / 512
                row.append(f"{100 * tests['pp512']['tok_s'] / (peak / flops_tok):.0f}%")
                rate = shape_rate(r, lim)
                row.append(f"{100 * tests['pp512']['tok_s'] * flops_tok / (rate * 1e9):.0f}%" if rate else "-")
            else:
                row += ["-", "-"]
            tg = tests.get("tg128")
            if tg:
                n = tg["n_tokens"]
                if "of_read_rate" in tg:  # the best round's own pairing (best_rounds keeps its row whole)
                    share = tg["of_read_rate"]
                else:
                    bytes_tok = bytes_per_weight * (lp + cls) + 2 * r["n_layer"] * kv_dim * 4 * (n + 1) / 2
                    share = tg["tok_s"] * bytes_tok / (lim["read_gb_s"] * 1e9)
                row += [f"{tg['tok_s']:.1f}", vs(thr, "tg128", tg["tok_s"]), f"{100 * share:.0f}%"]
            else:
                row += ["-", "-", "-"]
            kv_mib = 2 * r["n_layer"] * kv_dim * 4 * 512 / 2**20
            row += [f"{r['first_token_ms']:.1f}", f"{r['peak_rss_mib']:.0f}", f"{weights_mib + kv_mib + 32:.0f}"]
            print("| " + " | ".join(row) + " |")
    for thr, lim in sorted(limits.items()):
        print(f"\nlimits, {thr} thread(s): sgemm {lim['sgemm'][0]['gflops']:.1f} GFLOP/s (2048^3), "
              f"read bandwidth {lim['read_gb_s']:.1f} GB/s", end="")
    print()


if __name__ == "__main__":
    main()
