#!/usr/bin/python3
"""The command line: generate, info, usage and model errors, perplexity.

Prints one PASS/FAIL/SKIP line per test. Usage: test_cli.py [NAME_SUBSTRING ...]
"""
import json
import os
import re
import subprocess

import numpy as np

from harness import ROOT, TINY_SIN, TINYLLM, Suite
from fixtures import LIB, gpt2_f16, gpt2_learned, gpt2_sinusoidal, quantized, run, stories_gguf
import reference
import tinyllm as tl
from tolerance import assert_within, logits_and_spread, reference_greedy

SUITE = Suite("cli")
test = SUITE.test
TMP = SUITE.tmp


# ------------------------------------------------------------------- CLI --

@test
def cli_generate_greedy_matches_reference_text():
    path = stories_gguf()
    ref = reference.Model(path)
    want_ids, decisive = reference_greedy(path, ref.tokenize("Once upon a time"), 30)
    assert decisive >= 24, decisive
    want = "Once upon a time" + ref.sp().decode([403, 407, 261, 378] + want_ids[:decisive])[len("Once upon a time"):]
    r = run([TINYLLM, "generate", "-m", path, "-p", "Once upon a time", "-n", "30", "--temp", "0", "--ignore-eos"])
    assert r.returncode == 0, r.stderr
    # past the reference's first near tie (if any) either continuation is right
    assert r.stdout.rstrip("\n") == want if decisive == 30 else r.stdout.startswith(want), (r.stdout, want)
    assert "prefill: 5 tokens" in r.stderr and "decode: 29 tokens" in r.stderr and "tok/s" in r.stderr, r.stderr


@test
def cli_seeded_sampling_reproducible():
    args = [TINYLLM, "generate", "-m", TINY_SIN, "-p", "She was", "-n", "40", "--temp", "1.0", "--ignore-eos"]
    a = run(args + ["--seed", "7"])
    b = run(args + ["--seed", "7"])
    c = run(args + ["--seed", "8"])
    assert a.returncode == 0 and a.stdout == b.stdout, "same seed, different text"
    assert a.stdout != c.stdout, "different seeds gave the same 40 tokens"
    d = run(args)  # no seed: the one used is printed and reproduces the run
    seed = [ln for ln in d.stderr.splitlines() if ln.startswith("seed: ")]
    assert seed, d.stderr
    e = run(args + ["--seed", seed[0].split()[1]])
    assert d.stdout == e.stdout


@test
def cli_usage_errors_exit_2():
    path = gpt2_learned()
    cases = [(["--bogus"], "unknown option"), (["-m", path, "-p"], "needs a value"),
             (["-m", path, "-p", "hi", "-n", "0"], "-n 0"), (["-m", path, "-p", ""], "empty"),
             (["-m", path, "-p", "hi", "--temp", "-1"], "--temp"), (["-m", path, "-p", "hi", "--top-p", "0"], "--top-p"),
             (["-m", path, "-p", "hi", "--top-k", "-3"], "--top-k"), (["-m", path, "-p", "hi", "-n", "abc"], "integer"),
             (["-m", path, "-p", "hi", "-n", "100", "--ctx", "40", "--no-context-shift"], "exceeds the context"),
             (["-m", path, "-p", b"bad \xff utf-8"], "UTF-8")]
    for args, needle in cases:
        r = run([TINYLLM, "generate", *args])
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


@test
def cli_bad_model_exits_1_naming_file():
    bad = os.path.join(TMP, "not_a_model.gguf")
    with open(bad, "w") as f:
        f.write("<!DOCTYPE html><html>oops</html>")
    for path, needle in [(bad, "HTML"), (os.path.join(TMP, "missing.gguf"), "cannot open"), (TMP, "directory")]:
        r = run([TINYLLM, "generate", "-m", path, "-p", "hi"])
        assert r.returncode == 1 and path in r.stderr and needle in r.stderr, (path, r.returncode, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


@test
def cli_info_lists_model():
    r = run([TINYLLM, "info", gpt2_sinusoidal(), "--metadata"])
    assert r.returncode == 0, r.stderr
    for needle in ["architecture:  gpt2", "sinusoidal", "layers:        3", "blk.2.ffn_down.bias",
                   "tokenizer:     512 pieces, ", "tinyllm.position_encoding"]:
        assert needle in r.stdout, needle
    r = run([TINYLLM, "info", "--help"])
    assert r.returncode == 0 and "usage: tinyllm info" in r.stdout
    # the kernel set in use: the scalar set runs on every CPU, and forcing it works
    r = run([TINYLLM, "info", gpt2_sinusoidal()], env=dict(os.environ, TINYLLM_ISA="scalar"))
    assert "kernels:       scalar (forced by TINYLLM_ISA), sgemm: OpenBLAS " in r.stdout, r.stdout
    r = run([TINYLLM, "info", gpt2_sinusoidal()], env={k: v for k, v in os.environ.items() if k != "TINYLLM_ISA"})
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("kernels:"))
    assert line.split()[1] in ("avx512bf16", "avx512vnni", "avx512", "avx2", "scalar") and "widest" in line, line
    forced = os.environ.get("TINYLLM_ISA")
    with tl.Model(gpt2_sinusoidal()) as m:  # the library reports the same set
        if forced in (None, "scalar"):
            assert m.info.kernels.decode() == (forced or line.split()[1]), (m.info.kernels, line)
    # the weights' memory: F16 matrices used as stored, or expanded with --expand-f32
    mib = {}
    for flag in ([], ["--expand-f32"]):
        r = run([TINYLLM, "info", gpt2_f16()] + flag)
        line = next(ln for ln in r.stdout.splitlines() if ln.startswith("in memory:"))
        mib[bool(flag)] = float(line.split()[2])
        assert ("expanded to F32" in line) == bool(flag), line
    # F16 halves every matrix; norm weights and biases stay F32 (a few percent)
    assert 0.45 < mib[False] / mib[True] < 0.6, mib
    # each tensor's format in use: as stored, expanded, or repacked
    def in_use(path, *flags):
        r = run([TINYLLM, "info", path, *flags])
        rows = [ln.split("[")[0].split() for ln in r.stdout.split("\ntensors")[1].splitlines()[2:] if ln.strip()]
        return {row[0]: " ".join(row[2:]) for row in rows}
    use = in_use(gpt2_f16())
    assert use["blk.0.ffn_up.weight"] == "F16" and use["blk.0.ffn_norm.weight"] == "F32", use
    assert in_use(gpt2_f16(), "--expand-f32")["blk.0.ffn_up.weight"] == "F32 (expanded)"
    use = in_use(quantized("llama", "q4_0"))
    # the token embedding is repacked only when it is also the classifier (no output.weight)
    tied = "output.weight" not in use
    assert use["blk.0.attn_q.weight"] == "Q4_0x8" and use["token_embd.weight"] == ("Q4_0x8" if tied else "Q4_0"), use




# ------------------------------------------------------------ perplexity --

def _perplexity(model, text, ctx, stride):
    r = run([TINYLLM, "perplexity", "-m", model, "-f", text, "--ctx", str(ctx), "--stride", str(stride)])
    assert r.returncode == 0, r.stderr
    vals = dict(ln.split(":", 1) for ln in r.stdout.splitlines() if ":" in ln)
    return float(vals["nll/token"]), float(vals["bits/byte"])


@test
def perplexity_matches_pytorch_evaluation():
    """The engine's perplexity of held-out text agrees with the PyTorch
    evaluation that the training script recorded. PyTorch ran the F32
    checkpoint; the GGUF may hold it as F16. Each token's NLL (logsumexp
    minus one logit) moves by at most twice the largest logit change, and
    the logits of the two runs differ by at most twice the reference's
    spread with the weights' F16 storage rounding modelled: tolerance
    4 x that spread (of the first window) per token."""
    checked = 0
    for model in (TINY_SIN, os.path.join(ROOT, "models", "austen.gguf")):
        log = os.path.splitext(model)[0] + ".log.json"
        if not os.path.exists(log):
            continue
        with open(log) as f:
            ex = json.load(f)["excerpt"]
        text = os.path.join(ROOT, "tests", "data", ex["file"])
        ref = reference.Model(model)
        with open(text, encoding="utf-8") as f:
            first_window = ref.tokenize(f.read())[:ex["ctx"]]
        _, spread = ref.rounding_spread(first_window, storage=True)
        nll, bpb = _perplexity(model, text, ex["ctx"], ex["stride"])
        assert_within(nll, ex["nll_per_token"], 4 * spread, f"{model}: nll/token")
        assert_within(bpb, ex["bits_per_byte"], 4 * spread * ex["tokens"] / ex["bytes"] / np.log(2),
                      f"{model}: bits/byte")
        checked += 1
    assert checked >= 1


@test
def default_model_q8_0_loses_at_most_002_bits_per_byte():
    """The default model (F16) quantized by `tinyllm quantize` to Q8_0 and
    Q4_0: bits/byte on the held-out excerpt, against the F16 file's, at the
    evaluation's own context and stride. Q8_0 may lose at most 0.02 bits/byte
    (what a user may trade for half the bytes of F16); Q4_0 at most 0.05.
    Measured on AMD EPYC (Zen 4): F16 1.35759 bits/byte, Q8_0 1.35766
    (+0.00007), Q4_0 1.35920 (+0.0016). Perplexity runs windows through
    prefill, which on the repacked layouts also quantizes the activations
    (8 bits per block of 32), so this is the whole quantized path."""
    model = os.path.join(ROOT, "models", "austen.gguf")
    with open(os.path.splitext(model)[0] + ".log.json") as f:
        ex = json.load(f)["excerpt"]
    text = os.path.join(ROOT, "tests", "data", ex["file"])
    _, base = _perplexity(model, text, ex["ctx"], ex["stride"])
    for fmt, bound in (("q8_0", 0.02), ("q4_0", 0.05)):
        out = os.path.join(TMP, f"austen-{fmt}.gguf")
        r = run([TINYLLM, "quantize", model, out, fmt])
        assert r.returncode == 0, r.stderr
        _, bpb = _perplexity(out, text, ex["ctx"], ex["stride"])
        assert bpb - base <= bound, f"{fmt}: {bpb:.4f} bits/byte vs {base:.4f} (F16): lost {bpb - base:.4f} > {bound}"


def _reference_window_nlls(path, ctx, stride):
    """The tiny model's tokens of the text at path and the reference's NLL
    of each token after the first, scored once by sliding windows of ctx
    tokens moved by stride (each token in the first window that sees it)."""
    ref = reference.Model(TINY_SIN)
    toks = ref.tokenize(open(path, encoding="utf-8").read())
    nlls, scored_upto, start = [], 1, 0
    while True:
        end = min(start + ctx, len(toks))
        logits = ref.forward(toks[start:end])
        for t in range(max(scored_upto, start + 1), end):
            row = logits[t - start - 1]
            nlls.append(np.log(np.exp(row - row.max()).sum()) + row.max() - row[toks[t]])
        scored_upto = end
        if end == len(toks):
            return toks, np.array(nlls)
        start += stride


@test
def perplexity_definition_matches_reference():
    """Sliding windows score every token once: the engine's NLL equals the
    numpy reference's on a short text with overlapping windows."""
    path = os.path.join(TMP, "short.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
                "must be in want of a wife.\n")
    ctx, stride = 16, 5
    toks, nlls = _reference_window_nlls(path, ctx, stride)
    nll, _ = _perplexity(TINY_SIN, path, ctx, stride)
    # each token's NLL moves by at most twice the largest logit error
    spread = max(logits_and_spread(TINY_SIN, toks[s:s + ctx])[1] for s in range(0, len(toks), stride))
    assert_within(nll, nlls.sum() / (len(toks) - 1), 2 * spread, "nll/token")


@test
def info_takes_m_and_says_what_it_counts_bench_names_its_threads():
    """`info -m MODEL` works like `info MODEL`; the parameter count says it is
    the file's tensors and, with an untied classifier, the count without it;
    bench reports the threads it ran with, never 0."""
    model = os.path.join(ROOT, "models", "austen.gguf")
    a, b = run([TINYLLM, "info", model]), run([TINYLLM, "info", "-m", model])
    assert a.returncode == 0 and a.stdout == b.stdout, (a.stderr, b.stderr)
    line = next(ln for ln in a.stdout.splitlines() if ln.startswith("parameters:"))
    assert "in the file's tensors" in line and "output.weight included (5.85 M without it)" in line, line
    r = run([TINYLLM, "bench", "-m", TINY_SIN, "-p", "4", "-n", "4", "-r", "1", "-t", "1,2", "-o", "json"])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert all(row["threads"] >= 1 for row in out["results"]), r.stdout
    # the formats the matrices are held in: info's in-use column for the 2-D tensors, each once
    info = run([TINYLLM, "info", "-m", TINY_SIN]).stdout
    in_use = []
    for ln in info.splitlines():
        m = re.match(r"\s+\S+\s+\S+\s+(.+?)\s+\[(\d+), (\d+)\]$", ln)
        if m and m.group(1) != "unused" and m.group(1) not in in_use:
            in_use.append(m.group(1))
    assert in_use and out["matrix_formats"] == in_use, (out["matrix_formats"], in_use)
    # the decode bound: the weights read around each tg repetition with its threads, and the share of it reached
    tg = [row for row in out["results"] if row["test"].startswith("tg")]
    assert [row["threads"] for row in tg] == [1, 2] and all(row["read_gb_s"] > 0.1 for row in tg), tg
    assert all(0 < row["of_read_rate"] < 10 for row in tg), tg
    assert all("read_gb_s" not in row for row in out["results"] if row["test"].startswith("pp")), out["results"]
    # --read-every N pairs each segment of N decodes with its own reads: the share is still a decode's
    # tok/s x bytes per token over a read rate (within a factor of the whole run's), the rate still timed
    # on the decodes alone
    r = run([TINYLLM, "bench", "-m", TINY_SIN, "-p", "0", "-n", "7", "-r", "2", "-t", "1", "--read-every", "2",
             "-o", "json"])
    assert r.returncode == 0, r.stderr
    seg = json.loads(r.stdout)["results"]
    assert len(seg) == 1 and seg[0]["test"] == "tg7" and seg[0]["read_gb_s"] > 0.1, seg
    assert 0 < seg[0]["of_read_rate"] < 10 and seg[0]["min"] <= seg[0]["tok_s"] <= seg[0]["max"], seg
    for key in ("read_gb_s", "of_read_rate", "tok_s"):
        assert 0.2 < seg[0][key] / tg[0][key] < 5, (key, seg, tg)
    bad = run([TINYLLM, "bench", "-m", TINY_SIN, "--read-every", "-1"])
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--read-every -1" in bad.stderr, bad.stderr


@test
def generate_defaults_and_prompt_input():
    """The plainest command works (-n defaults to 'until the end of text or a
    full context'); the prompt comes from -p, -f FILE, -f - or -p - (stdin);
    -e turns escapes into characters (seen in --verbose-prompt's tokens);
    --no-display-prompt leaves it out of stdout."""
    base = [TINYLLM, "generate", "-m", TINY_SIN, "--temp", "0"]
    r = run(base + ["-p", "It is"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("It is") and len(r.stdout) > 20, r.stdout
    want = run(base + ["-p", "She was", "-n", "12"])
    assert want.returncode == 0, want.stderr
    path = os.path.join(TMP, "prompt.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("She was")
    for args, stdin in ((["-f", path], None), (["-f", "-"], "She was"), (["-p", "-"], "She was")):
        got = run(base + args + ["-n", "12"], input=stdin)
        assert got.returncode == 0 and got.stdout == want.stdout, (args, got.stdout, want.stdout, got.stderr)
    quiet = run(base + ["-p", "She was", "-n", "12", "--no-display-prompt"])
    assert quiet.stdout == want.stdout[len("She was"):], (quiet.stdout, want.stdout)
    esc = run(base + ["-p", "a\\nb\\x41c", "-e", "-n", "1", "--verbose-prompt"])
    assert esc.returncode == 0 and esc.stdout.startswith("a\nbAc"), (esc.stdout, esc.stderr)  # both digits used
    assert "<0x0A>" in esc.stderr and "prompt: " in esc.stderr, esc.stderr
    for args, needle in ((["-p", "x", "-f", path], "one of -p"), (["-p", "bad\\q", "-e"], "-e"),
                         (["-f", os.path.join(TMP, "missing.txt")], "-f"), (["-p", "x", "-n", "-3"], "-n -3"),
                         (["-p", "x", "--stop", ""], "--stop")):
        bad = run(base + args)
        assert bad.returncode == 2 and needle in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, (args, bad.stderr)
    warn = run(base + ["-p", "x", "-n", "1", "-t", "64"])
    assert warn.returncode == 0 and "warning: -t 64" in warn.stderr, warn.stderr


@test
def generate_stops_at_a_stop_string_without_printing_it():
    """--stop TEXT ends generation where TEXT appears; neither it nor any
    part of it is printed, even when it arrives split over several tokens."""
    base = [TINYLLM, "generate", "-m", TINY_SIN, "--temp", "0", "-p", "It is", "-n", "40", "--ignore-eos"]
    full = run(base)
    assert full.returncode == 0, full.stderr
    generated = full.stdout[len("It is"):].rstrip("\n")
    assert len(generated) > 12, generated
    stop = generated[5:9]  # four characters from the middle: usually more than one token
    cut = run(base + ["--stop", stop, "--stop", "zzzz-never"])
    assert cut.returncode == 0, cut.stderr
    assert cut.stdout.rstrip("\n") == "It is" + generated[:generated.index(stop)], (cut.stdout, stop, generated)


def _greedy_pieces(model, prompt, n):
    """The engine's greedy continuation through the Python module: the
    continuation's ids and each one's text."""
    with tl.Model(model) as m, tl.Context(m) as c:
        ids = c.greedy(m.tokenize(prompt), n)
        return ids, [m.stream([i]).decode("utf-8") for i in ids]


@test
def generate_finds_a_stop_string_split_over_two_tokens():
    """A stop string made of the end of one token and the start of the next
    (on the default model, whose text varies): the text before it is
    printed, it and everything after are not. (With the held-back prefix
    compared against the stop string's suffix, it was never found.)"""
    model = os.path.join(ROOT, "models", "austen.gguf")
    prompt = "It is a truth universally acknowledged, that"
    ids, pieces = _greedy_pieces(model, prompt, 40)
    text = "".join(pieces)
    full = run([TINYLLM, "generate", "-m", model, "-p", prompt, "-n", "40", "--temp", "0", "--ignore-eos"])
    assert full.returncode == 0 and full.stdout.rstrip("\n") == prompt + text, (full.stdout, text)
    at = 0
    for k in range(len(pieces) - 1):
        a, b = pieces[k], pieces[k + 1]
        stop = a[-2:] + b[:2]
        if len(a) >= 2 and len(b) >= 2 and text.find(stop) == at + len(a) - 2:
            break
        at += len(a)
    else:
        raise AssertionError(f"no two neighbouring pieces of two characters: {pieces}")
    cut = run([TINYLLM, "generate", "-m", model, "-p", prompt, "-n", "40", "--temp", "0", "--ignore-eos",
               "--stop", stop])
    assert cut.returncode == 0, cut.stderr
    assert cut.stdout.rstrip("\n") == prompt + text[:text.find(stop)], (cut.stdout, stop, text)


@test
def context_shifts_rerun_exactly_the_kept_tokens():
    """Several context shifts on the default model: the text equals a greedy
    run that shifts the same way through the Python module (keep BOS and
    --keep tokens, forget half of the rest, the cache list moved the same
    way). An off-by-one in the CLI's moved cache re-ran wrong ids from the
    second shift on."""
    model = os.path.join(ROOT, "models", "austen.gguf")
    prompt, n, n_ctx, keep = "It is a truth universally acknowledged, that", 60, 24, 3
    sampling = dict(temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.1, seed=7)
    r = run([TINYLLM, "generate", "-m", model, "-p", prompt, "-n", str(n), "--ignore-eos", "--ctx", str(n_ctx),
             "--keep", str(keep), "--temp", "0.8", "--top-k", "40", "--top-p", "0.95", "--min-p", "0.05",
             "--repeat-penalty", "1.1", "--seed", "7"])
    assert r.returncode == 0, r.stderr
    shifts = int(r.stderr.split("context shifts: ")[1].split()[0])
    assert shifts >= 3, r.stderr
    with tl.Model(model) as m, tl.Context(m, n_ctx=n_ctx) as c, tl.Sampler(m, **sampling) as smp:
        cache = m.tokenize(prompt)
        history, n_keep = list(cache), min(1 + keep, len(cache))
        c.prefill(cache)
        out = []
        for i in range(n):
            t = smp.sample(c.logits(), history)
            out.append(t)
            history.append(t)
            if i + 1 == n:
                break
            if len(cache) + 1 > n_ctx:  # the CLI's make_room: forget half of what is not kept
                discard = (len(cache) - n_keep) // 2
                c.shift(cache, n_keep, discard)
                cache = cache[:n_keep] + cache[n_keep + discard:]
            cache.append(t)
            c.decode(t)
        want = m.stream(out).decode("utf-8", "replace")
    assert len(set(out)) > 20, out  # text that varies, so a wrong re-run shows
    assert r.stdout.rstrip("\n") == prompt + want, (r.stdout, want)


@test
def generate_samples_with_the_librarys_defaults():
    """One top-p default everywhere: generate used 0.9 while the library,
    Python and the explorer used 0.95. With the same seed, generate's text is
    the Python module's (which samples with the library's defaults)."""
    model = os.path.join(ROOT, "models", "austen.gguf")
    # top-p left at its default; the other filters off and a high temperature, so the nucleus decides
    r = run([TINYLLM, "generate", "-m", model, "-p", "It is a truth", "-n", "30", "--seed", "11", "--ignore-eos",
             "--repeat-penalty", "1", "--temp", "1.5", "--top-k", "0", "--min-p", "0", "--no-display-prompt"])
    assert r.returncode == 0, r.stderr
    d = tl.library().tinyllm_sampler_default_params()
    with tl.Model(model) as m, tl.Context(m) as c, \
            tl.Sampler(m, temperature=1.5, top_k=0, top_p=d.top_p, min_p=0.0, repeat_penalty=1.0, seed=11) as s:
        ids = m.tokenize("It is a truth")
        c.prefill(ids)
        out = []
        for i in range(30):
            t = s.sample(c.logits(), ids + out)
            out.append(t)
            if i < 29:
                c.decode(t)
        want = m.stream(out).decode()
    assert abs(d.top_p - 0.95) < 1e-6 and r.stdout.rstrip("\n") == want, (r.stdout, want)


@test
def interactive_statistics_leave_out_the_time_the_user_takes():
    """generate -i: the decode speed counted the time spent waiting for the
    user's next line (75 tok/s reported for a 2500 tok/s model). A user who
    takes 2 s to answer does not move it: the replies take far less."""
    model = os.path.join(ROOT, "models", "austen.gguf")
    feeder = subprocess.Popen(["bash", "-c", "sleep 2; echo 'She said'"], stdout=subprocess.PIPE)
    r = run([TINYLLM, "generate", "-m", model, "-p", "It is", "-i", "-n", "8", "--temp", "0"], stdin=feeder.stdout)
    feeder.wait()
    assert r.returncode == 0, r.stderr
    stats = next(ln for ln in r.stderr.splitlines() if ln.startswith("prefill:"))
    decode_ms = float(stats.split("decode: ")[1].split(" in ")[1].split(" ms")[0])
    assert "decode: 15 tokens" in stats and decode_ms < 1500, stats


@test
def perplexity_reports_its_standard_error_windows_and_progress():
    """The standard error of the mean NLL over tokens (llama-perplexity's
    +/-), equal to the one computed from the reference's per-token NLLs
    within twice the NLL tolerance; --per-window lines that add up; a progress
    line only when stderr is a terminal."""
    path = os.path.join(TMP, "se.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
                "must be in want of a wife.\n")
    ctx, stride = 16, 5
    toks, nlls = _reference_window_nlls(path, ctx, stride)
    se_ref = nlls.std(ddof=1) / np.sqrt(len(nlls))
    r = run([TINYLLM, "perplexity", "-m", TINY_SIN, "-f", path, "--ctx", str(ctx), "--stride", str(stride),
             "--per-window"])
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("std. error:"))
    se = float(line.split("+/-")[1].split(",")[0])
    # each NLL moves by at most 2 x spread, the standard error by at most twice that / sqrt(n) (+ printing)
    spread = max(logits_and_spread(TINY_SIN, toks[s:s + ctx])[1] for s in range(0, len(toks), stride))
    assert_within(se, se_ref, 4 * spread / np.sqrt(len(nlls)) + 1e-6, "standard error")
    windows = [ln for ln in r.stdout.splitlines() if ln.startswith("window ")]
    assert sum(int(w.split("scored ")[1].split(",")[0]) for w in windows) == len(toks) - 1, windows
    assert "window" not in r.stderr, r.stderr  # not a terminal: no progress line
    code, seen = _stderr_on_terminal([TINYLLM, "perplexity", "-m", TINY_SIN, "-f", path, "--ctx", str(ctx),
                                      "--stride", str(stride)])
    assert code == 0 and b"perplexity: window 1/" in seen, seen[:200]


@test
def generate_goes_past_the_context_by_shifting_it():
    """-n larger than the context: the context is shifted (BOS and --keep
    prompt tokens kept, half the rest forgotten) and generation goes on, the
    cost said on stderr; -2 (the default) and --no-context-shift stop at a
    full context instead."""
    base = [TINYLLM, "generate", "-m", TINY_SIN, "-p", "It is a truth", "--ctx", "16", "--temp", "0", "--ignore-eos"]
    r = run(base + ["-n", "40", "--keep", "2"])
    assert r.returncode == 0, r.stderr
    assert "decode: 39 tokens" in r.stderr and "context shifts: " in r.stderr and "kept 3" in r.stderr, r.stderr
    r = run(base)
    assert r.returncode == 0 and "the context of 16 tokens is full" in r.stderr, r.stderr
    r = run(base + ["-n", "40", "--keep", "20"])  # kept: at most the prompt (9 tokens)
    assert r.returncode == 0 and "kept 9" in r.stderr, r.stderr
    r = run([TINYLLM, "generate", "-m", TINY_SIN, "-p", "It is a truth", "--ctx", "10", "-n", "20", "--keep", "8"])
    # (that would keep all 9 prompt tokens of a 10-token context: nothing to forget)
    assert r.returncode == 2 and "--keep 8" in r.stderr, r.stderr


@test
def generate_interactive_turns_reverse_prompts_and_ctrl_c():
    """-i: after each reply a line from stdin joins the same cache and the
    model goes on; -r hands over when its text appears (printed); end of
    input quits cleanly; Ctrl-C stops a reply in progress and gives the
    prompt back instead of killing the program."""
    model = os.path.join(ROOT, "models", "austen.gguf")
    r = run([TINYLLM, "generate", "-m", model, "-p", "She said", "-i", "-n", "30", "--temp", "0", "-r", "."],
            input="Mr. Darcy\n")
    assert r.returncode == 0, r.stderr
    turns = r.stdout.split("\n> ")
    assert len(turns) == 3 and turns[1].startswith("Mr. Darcy\n") and turns[2] == "\n", turns
    assert turns[0].rstrip("\n").endswith(".") and turns[1].rstrip("\n").endswith("."), turns  # -r: printed, handed over
    bad = run([TINYLLM, "generate", "-m", model, "-p", "x", "-r", "."])
    assert bad.returncode == 2 and "-r needs -i" in bad.stderr, bad.stderr
    import signal
    import time
    p = subprocess.Popen([TINYLLM, "generate", "-m", model, "-p", "It is", "-i", "-n", "100000", "--ignore-eos",
                          "--seed", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen, t0 = b"", time.time()
    while len(seen) < 40 and time.time() - t0 < 30:  # the reply is streaming
        seen += os.read(p.stdout.fileno(), 4096)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(input=b"", timeout=60)  # then the end of input
    assert p.returncode == 0, (p.returncode, err[-300:])
    assert b"\n> " in seen + out, (seen + out)[-200:]


@test
def every_error_names_its_command():
    """Errors printed as 'tinyllm: ...' or 'tinyllm: prompt: ...' now start
    with 'tinyllm COMMAND:' like the rest."""
    missing = os.path.join(TMP, "missing.gguf")
    for args, prefix in (([TINYLLM, "generate", "-m", missing, "-p", "x"], "tinyllm generate: "),
                         ([TINYLLM, "generate", "-m", TINY_SIN, "-p", b"\xff"], "tinyllm generate: -p: "),
                         ([TINYLLM, "perplexity", "-m", missing, "-f", missing], "tinyllm perplexity: "),
                         ([TINYLLM, "bench", "-m", missing], "tinyllm bench: "),
                         ([TINYLLM, "info", missing], "tinyllm info: "),
                         ([TINYLLM, "verify", "-m", missing, "--golden", missing], "tinyllm verify: "),
                         ([TINYLLM, "attn", "-m", missing, "-p", "x", "--layer", "0", "--head", "0", "--png", "a.png"],
                          "tinyllm attn: "),
                         ([TINYLLM, "step", "-m", missing, "-p", "x", "--script", "where"], "tinyllm step: ")):
        r = run(args)
        assert r.returncode in (1, 2) and r.stderr.startswith(prefix), (args, r.stderr)


def _stderr_on_terminal(args):
    """Runs args with stderr on a pseudo-terminal; returns (code, what it showed there)."""
    import pty
    master, slave = pty.openpty()
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=slave, timeout=120)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return p.returncode, shown


@test
def bench_and_verify_show_progress_on_a_terminal_only():
    """Long commands show a one-line progress indicator on a terminal's stderr
    (and clear it), never in a pipe or with --no-progress."""
    golden = os.path.join(ROOT, "tests", "golden", "austen-tiny-sin.tlg")
    for args, needle in (([TINYLLM, "bench", "-m", TINY_SIN, "-p", "8", "-n", "8", "-r", "1"], b"bench: pp8"),
                         ([TINYLLM, "verify", "-m", TINY_SIN, "--golden", golden, "-q"], b"verify: 2/3")):
        code, shown = _stderr_on_terminal(args)
        assert code == 0 and needle in shown and b"\033[K" in shown, shown[-200:]
        code, shown = _stderr_on_terminal(args + ["--no-progress"])
        assert code == 0 and needle not in shown, shown[-200:]
        piped = run(args)
        assert piped.returncode == 0 and needle.decode() not in piped.stderr, piped.stderr


@test
def pictures_are_png_by_name():
    """A .jpg name got PNG bytes; now the picture's name must end in .png."""
    r = run([TINYLLM, "attn", "-m", TINY_SIN, "-p", "Hi", "--layer", "0", "--head", "0", "--png",
             os.path.join(TMP, "x.jpg")])
    assert r.returncode == 2 and ".png" in r.stderr and not os.path.exists(os.path.join(TMP, "x.jpg")), r.stderr


@test
def kernel_sets_are_named_alike_everywhere():
    """The kernel sets the Makefile compiles are the ones kernels.h, `info`'s
    hint, README.md and docs/architecture.md name (a new set, or one
    dropped, must be written in all of them), and each is one the library
    can be forced to (TINYLLM_ISA), or, on a CPU without it, passes over
    for the widest set the CPU runs."""
    make = open(os.path.join(ROOT, "Makefile")).read()
    sets = re.search(r"^KERNEL_ISAS = (.*)$", make, re.M).group(1).split()
    header = open(os.path.join(ROOT, "src", "kernels.h")).read()
    assert re.search(r"TINYLLM_ISA \(([^)]*)\)", header).group(1).split(", ") == sets
    info = open(os.path.join(ROOT, "tools", "tinyllm", "cmd_info.c")).read()
    assert "TINYLLM_ISA=" + "|".join(sets) + " forces one" in info
    # the scalar set is plain C (kernels_generic.c); the vector files are compiled once per other set
    generic = open(os.path.join(ROOT, "src", "kernels_generic.c")).read()
    assert sets[0] == "scalar" and "const kernel_ops kernel_ops_scalar" in generic
    count = {2: "twice", 3: "three times", 4: "four times", 5: "five times"}[len(sets) - 1]
    readme = " ".join(open(os.path.join(ROOT, "README.md")).read().split())
    arch = " ".join(open(os.path.join(ROOT, "docs", "architecture.md")).read().split())
    assert f"come in {['three', 'four', 'five'][len(sets) - 3]} sets" in readme, len(sets)
    assert f"compiled {count}" in readme and f"compiles each {count}" in arch, count
    names = {"avx2": "AVX2", "avx512": "AVX-512", "avx512vnni": "VNNI", "avx512bf16": "BF16"}
    for s in sets[1:]:
        assert names[s] in readme and names[s] in arch, s
    for s in sets:
        r = run([TINYLLM, "info", gpt2_sinusoidal()], env=dict(os.environ, TINYLLM_ISA=s))
        assert r.returncode == 0, r.stderr
        assert f"kernels:       {s} (forced by TINYLLM_ISA)" in r.stdout or "the widest set this CPU runs" in r.stdout, \
            (s, r.stdout)



@test
def formats_are_known_in_their_own_files():
    """What a weight format is lives in the format table and the files that
    define, read, write or multiply formats (docs/architecture.md, "Adding a
    format"); no other source in src/ or tools/tinyllm/ names a quantized
    format, its blocks or the engine's repacked layouts (F32 and F16 are the
    engine's own floats; quantize.c's presets choose among formats). A new
    format then touches those files only."""
    own = {"formats.c", "formats.h", "quants.c", "quants.h", "quantizers.c", "quantizers.h", "dots_isa.c",
           "kernels_generic.c", "kernels_isa.c", "gguf.c", "gguf.h", "quantize.c"}
    names = re.compile(r"\b(GGML_TYPE_(?:Q\w+|IQ\w+|BF16)|WEIGHT_Q\w+|block_(?:q|iq)\w+|Q[0-9]_[0-9K]\w*)\b")
    offenders = []
    for d in ("src", os.path.join("tools", "tinyllm")):
        for name in sorted(os.listdir(os.path.join(ROOT, d))):
            if not name.endswith((".c", ".h")) or name in own:
                continue
            text = open(os.path.join(ROOT, d, name), encoding="utf-8").read()
            text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
            text = re.sub(r"//[^\n]*", "", text)
            text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)  # messages and help may name formats
            offenders += [f"{d}/{name}: {m.group(1)}" for m in names.finditer(text)]
    assert not offenders, offenders

if __name__ == "__main__":
    SUITE.main()
