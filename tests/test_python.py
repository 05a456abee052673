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
from fixtures import gpt2_learned, llama_gqa, run
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
    if "TINYLLM_CHILD_ASAN_OPTIONS" in os.environ:  # make test-asan: the installed library is instrumented
        env["LD_PRELOAD"] = " ".join(subprocess.run(["cc", f"-print-file-name={so}"], capture_output=True,
                                                    text=True).stdout.strip() for so in ("libasan.so", "libubsan.so"))
        env["ASAN_OPTIONS"] = "detect_leaks=0"
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
