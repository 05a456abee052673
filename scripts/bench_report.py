#!/usr/bin/python3
"""Turns bench_limits and `tinyllm bench -o json` results into one table:
pp tok/s with its % of the compute bound, tg tok/s with its % of the
bandwidth bound, and peak RSS against weights + KV cache + 32 MB.

Compute bound (pp): the measured large-square sgemm GFLOP/s at the same
thread count / (2 x layer matmul params per token + 2 x classifier params /
prompt length): only the last prompt token needs logits.
Bandwidth bound (tg): measured read GB/s at the same thread count / bytes
read per generated token: every weight matrix once (F32 in memory) plus the
KV cache (on average half of the generated length).

Usage: bench_report.py LIMITS.json RESULT.json [RESULT.json ...]
"""
import json
import sys


def layer_params(r):
    d, ff, L = r["n_embd"], r["n_ff"], r["n_layer"]
    kv = d // r["n_head"] * r["n_head_kv"]
    if r["architecture"] == "llama":
        return L * (2 * d * d + 2 * d * kv + 3 * d * ff)
    return L * (4 * d * d + 2 * d * ff)


def main():
    limits = {t["threads"]: t for t in json.load(open(sys.argv[1]))["threads"]}
    print("| model | params | thr | pp128 tok/s | pp512 tok/s | pp512 % of compute bound | tg128 tok/s | "
          "tg % of bandwidth bound | start-up ms | peak RSS MiB | RSS budget MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for path in sys.argv[2:]:
        r = json.load(open(path))
        name = path.rsplit("/", 1)[-1][:-5]
        lp, cls = layer_params(r), r["n_vocab"] * r["n_embd"]
        kv_dim = r["n_embd"] // r["n_head"] * r["n_head_kv"]
        weights_mib = 4 * (lp + cls + (0 if r["architecture"] == "llama" else 0)) / 2**20
        by = {}
        for x in r["results"]:
            by.setdefault(x["threads"], {})[x["test"]] = x
        for thr, tests in sorted(by.items()):
            lim = limits.get(thr) or limits[max(limits)]
            peak = lim["sgemm"][0]["gflops"] * 1e9
            row = [name, f"{r['params'] / 1e6:.1f} M", str(thr)]
            for t in ("pp128", "pp512"):
                row.append(f"{tests[t]['tok_s']:.1f}" if t in tests else "-")
            if "pp512" in tests:
                bound = peak / (2 * lp + 2 * cls / 512)
                row.append(f"{100 * tests['pp512']['tok_s'] / bound:.0f}%")
            else:
                row.append("-")
            tg = tests.get("tg128")
            if tg:
                n = tg["n_tokens"]
                bytes_tok = 4 * (lp + cls) + 2 * r["n_layer"] * kv_dim * 4 * (n - 1) / 2
                bound = lim["read_gb_s"] * 1e9 / bytes_tok
                row += [f"{tg['tok_s']:.1f}", f"{100 * tg['tok_s'] / bound:.0f}%"]
            else:
                row += ["-", "-"]
            kv_mib = 2 * r["n_layer"] * kv_dim * 4 * 512 / 2**20
            row += [f"{r['first_token_ms']:.1f}", f"{r['peak_rss_mib']:.0f}", f"{weights_mib + kv_mib + 32:.0f}"]
            print("| " + " | ".join(row) + " |")
    for thr, lim in sorted(limits.items()):
        print(f"\nlimits, {thr} thread(s): sgemm {lim['sgemm'][0]['gflops']:.1f} GFLOP/s (2048^3), "
              f"read bandwidth {lim['read_gb_s']:.1f} GB/s", end="")
    print()


if __name__ == "__main__":
    main()
