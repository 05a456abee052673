#!/usr/bin/python3
"""The Python module (python/tinyllm, installed by make install): taps as
numpy arrays against the reference, the logit lens, head ablation,
generation, and `import tinyllm` from an installed prefix.

Prints one PASS/FAIL/SKIP line per test. Usage: test_python.py [NAME_SUBSTRING ...]
"""
import os
import subprocess

import numpy as np

from harness import BUILD, ROOT, Suite
from fixtures import gpt2_learned, llama_gqa, quantized, run, sanitizer_preload
import reference
import tinyllm as tl
from tolerance import assert_within, logits_and_spread

SUITE = Suite("python")
test = SUITE.test
TMP = SUITE.tmp


@test
def run_with_taps_matches_the_reference():
    """run_with_taps hands back the named taps as arrays in the tap table's
    shapes: attention probabilities and the residual stream within the
    reference's per-tap spread, probability rows summing to one, and the
    logits equal to a plain prefill's."""
    for path in (gpt2_learned(), llama_gqa()):
        ref = reference.Model(path)
        tokens = [1] + list(range(40, 60))
        names = ["0.attn_probs", "1.resid_ffn", "logits"]
        with tl.Model(path) as m:
            taps = m.run_with_taps(tokens, names)
            with tl.Context(m, logits_all=True) as c:
                c.prefill(tokens)
                plain = np.stack([c.logits_at(i) for i in range(len(tokens))])
        assert sorted(taps) == sorted(names), sorted(taps)
        assert taps["0.attn_probs"].shape == (m.info.n_head, len(tokens), len(tokens))
        assert np.allclose(taps["0.attn_probs"].sum(axis=-1), 1, atol=1e-5)
        spreads, want = {}, {}
        ref.rounding_spread(tokens, taps=spreads)
        ref.forward(tokens, want)
        for name in names:
            assert_within(taps[name], want[name], spreads[name], f"{path}: {name}")
        assert np.array_equal(taps["logits"], plain)


@test
def logit_lens_of_the_last_layer_is_the_logits():
    """The lens applied to the last layer's residual stream gives the
    model's logits (the same final norm and classifier) within float32
    rounding of two runs."""
    path = llama_gqa()
    tokens = [1, 5, 9, 300, 301, 7]
    with tl.Model(path) as m:
        taps = m.run_with_taps(tokens, [f"{m.info.n_layer - 1}.resid_ffn", "logits"])
        lens = m.logit_lens(taps[f"{m.info.n_layer - 1}.resid_ffn"])
    _, spread = logits_and_spread(path, tokens)
    assert lens.shape == taps["logits"].shape
    assert_within(lens, taps["logits"], 2 * spread, "logit lens vs logits")


@test
def ablating_a_head_zeroes_its_output_and_moves_the_logits():
    path = gpt2_learned()
    tokens = [1] + list(range(100, 116))
    with tl.Model(path) as m:
        hd = m.info.head_dim
        base = m.run_with_taps(tokens, ["0.attn_out", "logits"])
        cut = m.run_with_taps(tokens, ["0.attn_out", "logits"], ablate=[(0, 1)])
    assert np.all(cut["0.attn_out"][:, hd:2 * hd] == 0)
    assert np.array_equal(cut["0.attn_out"][:, :hd], base["0.attn_out"][:, :hd])
    assert np.max(np.abs(cut["logits"] - base["logits"])) > 1e-3


@test
def generate_greedy_is_the_contexts_greedy():
    path = llama_gqa()
    with tl.Model(path) as m:
        text = m.generate("It is a truth", n=12, temperature=0)
        ids = m.tokenize("It is a truth")
        with tl.Context(m) as c:
            greedy = c.greedy(ids, 12)
        assert text == m.text(greedy), (text, m.text(greedy))
        assert m.generate("It is a truth", n=12, temperature=0.9, seed=3) == \
            m.generate("It is a truth", n=12, temperature=0.9, seed=3)


@test
def bad_tap_names_and_model_paths_raise():
    with tl.Model(gpt2_learned()) as m:
        try:
            m.run_with_taps([1, 2, 3], ["0.attn_prob"])
            raise AssertionError("an unknown tap name was accepted")
        except tl.TinyLLMError as e:
            assert "0.attn_prob" in str(e)
    try:
        tl.Model(os.path.join(TMP, "absent.gguf"))
        raise AssertionError("a missing model loaded")
    except tl.TinyLLMError as e:
        assert "absent.gguf" in str(e) and "cannot open" in str(e)


@test
def a_context_outlives_a_closed_model():
    """A Context used after Model.close() (after a `with` block) was a heap
    use-after-free (ASan, context.c): the C model now lives until its last
    context and sampler close, and the closed Model itself raises."""
    path = gpt2_learned()
    with tl.Model(path) as m:
        want = m.run_with_taps([1, 5, 6], ["logits"])["logits"][-1]
        c = tl.Context(m, logits_all=True)
        s = tl.Sampler(m, temperature=0)
    c.prefill([1, 5, 6])  # the model is closed here; its memory must still be there
    assert np.array_equal(c.logits(), want)
    assert s.sample(c.logits()) == int(np.argmax(want))
    for call in (lambda: m.tokenize("x"), lambda: tl.Context(m), lambda: tl.Sampler(m)):
        try:
            call()
            raise AssertionError("a closed model was used")
        except ValueError as e:
            assert "closed" in str(e), e
    c.close()
    s.close()
    for call in (lambda: c.prefill([1]), lambda: s.sample(want)):
        try:
            call()
            raise AssertionError("a closed context or sampler was used")
        except ValueError as e:
            assert "closed" in str(e), e


# the weight matrices a decode step reads in full (the classifier: output,
# or the token embedding when there is none)
DECODE_READ = ("attn_q", "attn_k", "attn_v", "attn_qkv", "attn_output", "ffn_up", "ffn_gate", "ffn_down")


@test
def reading_the_weights_reads_what_a_decode_reads():
    """tinyllm_context_read_weights (bench's decode bound) reads every
    matrix a decode reads, once, in the bytes the engine holds it in: the
    tensor table's bytes, F32 sizes where expanded; F32, the Q4_0 matrices
    repacked in 8-row groups, a fused q|k|v (gpt2), tied and untied
    classifiers; the same bytes on 1 and 3 threads."""
    for path in (llama_gqa(), gpt2_learned(), quantized("llama", "q4_0"), quantized("gpt2_odd_vocab", "q8_0")):
        with tl.Model(path) as m:
            lib, tensors = m.lib, m.tensors()
            classifier = "output.weight" if "output.weight" in tensors else "token_embd.weight"
            want = 0
            for name, (_, in_use, shape) in tensors.items():
                if name == classifier or name.split(".")[-2] in DECODE_READ and name.endswith(".weight"):
                    t = tl.TensorInfo()
                    i = list(tensors).index(name)
                    assert lib.tinyllm_model_tensor(m.h, i, tl.C.byref(t), None) == 0
                    want += int(np.prod(shape)) * 4 if in_use == "F32 (expanded)" else t.n_bytes
            for threads in (1, 3):
                with tl.Context(m, n_threads=threads) as c:
                    got, err = tl.C.c_uint64(), tl.Error()
                    assert lib.tinyllm_context_read_weights(c.h, tl.C.byref(got), tl.C.byref(err)) == 0, err.message
                    assert got.value == want, (path, threads, got.value, want)
    err = tl.Error()
    assert lib.tinyllm_context_read_weights(None, None, tl.C.byref(err)) == 6 and b"context" in err.message


def _raises(call, exc, *words):
    try:
        call()
    except exc as e:
        for w in words:
            assert w in str(e), (w, str(e))
        return
    raise AssertionError(f"expected {exc.__name__}")


@test
def lengths_and_integers_are_checked_before_they_reach_c():
    """Sampler.sample() given fewer logits than the vocabulary read past
    them; Context.shift() with a short list read past it; ctypes kept the low
    32 bits: prefill([1, 2**32 + 5]) ran token 5, decode(2**32 + 6) was
    accepted, ablate_head(on=2**32) ablated nothing, top_k=2**40 turned
    top-k off; a path with a NUL loaded its prefix."""
    path = gpt2_learned()
    with tl.Model(path) as m, tl.Context(m) as c, tl.Sampler(m) as s:
        _raises(lambda: s.sample(np.zeros(m.n_vocab - 1, np.float32)), ValueError, "expected", str(m.n_vocab))
        _raises(lambda: s.sample(np.zeros(m.n_vocab), [2 ** 32 + 1]), ValueError, "history")
        _raises(lambda: c.prefill([1, 2 ** 32 + 5]), ValueError, "4294967301")
        c.prefill([1, 5, 6, 7])
        _raises(lambda: c.shift([1, 5], 1, 1), ValueError, "expected the 4")
        # the C API: keep + discard overflowed int and was accepted (n_past became INT_MAX)
        err = tl.Error()
        arr = (tl.C.c_int * 4)(1, 5, 6, 7)
        assert c.lib.tinyllm_context_shift(c.h, arr, 2 ** 31 - 1, 1, tl.C.byref(err)) != 0
        assert c.lib.tinyllm_context_n_past(c.h) == 4 and c.rewind(5) != 0
        _raises(lambda: c.decode(2 ** 32 + 6), ValueError, "out of range")
        _raises(lambda: c.ablate_head(0, 2 ** 32), ValueError, "head")
        _raises(lambda: tl.Sampler(m, top_k=2 ** 40), ValueError, "top_k")
        _raises(lambda: tl.Sampler(m, seed=-1), ValueError, "seed")
        c.ablate_head(0, 0, on=2 ** 32)  # any true value ablates
        c.rewind(0)
        c.prefill([1, 5, 6, 7])
        ablated = c.logits()
        c.ablate_head(0, 0, on=False)
        c.rewind(0)
        c.prefill([1, 5, 6, 7])
        assert not np.array_equal(ablated, c.logits()), "on=2**32 ablated nothing"
    _raises(lambda: tl.Model(path + "\0.ignored"), ValueError, "NUL")


@test
def sampler_seeds_are_mixed_before_use():
    """The sampler's generator starts from splitmix64(seed): with the raw
    seed, seeds 0 and 1 both became state 1 and gave the same text. Eight
    seeds drawing 16 tokens each from a flat distribution must give eight
    different sequences, and the same seed the same one."""
    with tl.Model(gpt2_learned()) as m:
        flat = np.zeros(m.n_vocab, np.float32)

        def draws(seed):
            with tl.Sampler(m, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=seed) as s:
                return tuple(s.sample(flat) for _ in range(16))

        seqs = [draws(seed) for seed in range(8)]
        assert len(set(seqs)) == 8, seqs
        assert draws(3) == seqs[3]


@test
def the_readmes_python_example_runs():
    """The README's Python example, as a user copies it: it imported
    matplotlib, which set-up did not install (ModuleNotFoundError). It runs
    from a scratch directory that sees the default model, and draws."""
    import re
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    code = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "import tinyllm" in b)
    work = os.path.join(TMP, "readme")
    os.makedirs(work, exist_ok=True)
    if not os.path.exists(os.path.join(work, "models")):
        os.symlink(os.path.join(ROOT, "models"), os.path.join(work, "models"))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), MPLBACKEND="Agg",
               TINYLLM_LIB=os.path.join(BUILD, "libtinyllm.so"))
    env.update(sanitizer_preload())
    r = subprocess.run(["/usr/bin/python3", "-c", code], cwd=work, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-600:]
    assert os.path.getsize(os.path.join(work, "head.png")) > 1000
    assert len(r.stdout.strip().splitlines()) >= 2, r.stdout


@test
def import_after_make_install():
    """make install puts the module in PREFIX's dist-packages with the
    library's directory recorded: a Python with only that directory on its
    path imports it and runs a model, without TINYLLM_LIB or the tree."""
    prefix = os.path.join(TMP, "prefix")
    r = run(["make", "-s", "install", f"PREFIX={prefix}", f"BUILD={BUILD}"], cwd=ROOT)
    assert r.returncode == 0, r.stderr
    ver = subprocess.run(["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True).stdout.strip()
    path = os.path.join(prefix, "lib", f"python{ver}", "dist-packages")
    assert os.path.exists(os.path.join(path, "tinyllm", "_install.py")), os.listdir(prefix)
    env = {k: v for k, v in os.environ.items() if k not in ("TINYLLM_LIB", "LD_LIBRARY_PATH")}
    env["PYTHONPATH"] = path
    env.update(sanitizer_preload())
    code = ("import tinyllm, sys; m = tinyllm.Model(sys.argv[1]); "
            "print(tinyllm.version(), tinyllm.__file__, m.info.n_layer)")
    r = run(["/usr/bin/python3", "-c", code, gpt2_learned()], env=env, cwd=TMP)
    assert r.returncode == 0, r.stderr
    version, where, layers = r.stdout.split()
    assert where.startswith(path) and int(layers) == 3, r.stdout
    r = run(["make", "-s", "uninstall", f"PREFIX={prefix}"], cwd=ROOT)
    assert r.returncode == 0 and not os.path.exists(os.path.join(path, "tinyllm")), r.stderr


if __name__ == "__main__":
    SUITE.main()
