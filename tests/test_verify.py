#!/usr/bin/python3
"""tinyllm verify against the checked-in goldens, and the deliberate faults it
must catch at the right tap.

Prints one PASS/FAIL/SKIP line per test. Usage: test_verify.py [NAME_SUBSTRING ...]
"""
import os

import numpy as np

from harness import BUILD, PYTHON, ROOT, SP512, TINY_SIN, TINYLLM, Skip, Suite
from fixtures import run, stories_gguf, synthetic
import golden as golden_file

SUITE = Suite("verify")
test = SUITE.test
TMP = SUITE.tmp


# ---------------------------------------------------------------- verify --

GOLDEN = os.path.join(ROOT, "tests", "golden")
GOLDEN_MODELS = [("gpt2-learned-tiny", lambda: os.path.join(ROOT, "tests", "models", "gpt2-learned-tiny.gguf")),
                 ("austen-tiny-sin", lambda: TINY_SIN), ("stories260K", stories_gguf),
                 ("austen", lambda: os.path.join(ROOT, "models", "austen.gguf")),
                 ("austen-tiny-sin-q8_0", lambda: tiny_sin_q8_0())]


def tiny_sin_q8_0():
    """The tiny sinusoidal model in Q8_0, converted now by `tinyllm quantize`
    (deterministic: the golden records the file's SHA-256)."""
    out = os.path.join(TMP, "austen-tiny-sin-q8_0.gguf")
    if not os.path.exists(out):
        r = run([TINYLLM, "quantize", TINY_SIN, out, "q8_0"])
        assert r.returncode == 0, r.stderr
    return out


@test
def every_mutation_still_applies():
    """tests/mutations.py (make mutations) breaks the code one line at a time
    by replacing a string; a refactor that moves the string leaves the
    mutation testing nothing. Each must still be found in its file, but the
    one the mutation check has applied to this tree (TINYLLM_MUTANT): that
    one must be caught by the test that guards it, not by this one."""
    import mutations
    applied = os.environ.get("TINYLLM_MUTANT")
    stale = [name for name, path, old, _ in mutations.MUTATIONS
             if name != applied and old not in open(os.path.join(ROOT, path), encoding="utf-8").read()]
    assert not stale, f"mutations whose code moved (update tests/mutations.py): {stale}"


@test
def verify_all_goldens_pass():
    """`tinyllm verify` on every checked-in golden: all taps within tolerance
    on both paths, greedy continuation equal."""
    checked = 0
    for name, model in GOLDEN_MODELS:
        golden = os.path.join(GOLDEN, name + ".tlg")
        if not os.path.exists(golden):
            continue
        try:
            path = model()
        except Skip:
            continue
        r = run([TINYLLM, "verify", "-m", path, "--golden", golden])
        assert r.returncode == 0 and "verify: PASS" in r.stdout, (name, r.stdout[-800:], r.stderr)
        assert "FAIL" not in r.stdout and "tokens match" in r.stdout, name
        checked += 1
    assert checked >= 2, "fewer than two goldens were checked"


@test
def verify_default_model_expanded_to_f32():
    """The default model stores F16 matrices, used in place by default;
    expanded to F32 (--expand-f32) it passes its golden at the same per-tap
    tolerances."""
    model = os.path.join(ROOT, "models", "austen.gguf")
    r = run([TINYLLM, "verify", "-m", model, "--golden", os.path.join(GOLDEN, "austen.tlg"), "--expand-f32"])
    assert r.returncode == 0 and "verify: PASS" in r.stdout and "24 of 24" in r.stdout, (r.stdout[-800:], r.stderr)


def _verify_fault(fault, model, golden):
    env = dict(os.environ, TINYLLM_FAULT=fault)
    r = run([os.path.join(BUILD, "faults", "tinyllm"), "verify", "-m", model, "--golden", golden, "-q"], env=env)
    assert r.returncode == 4, (fault, r.returncode, r.stdout[-600:], r.stderr)
    first = [ln.split(": ", 1)[1] for ln in r.stdout.splitlines() if ln.startswith("FIRST FAILING TAP (prefill)")]
    return first[0] if first else None


@test
def verify_catches_mask_after_softmax():
    golden = os.path.join(GOLDEN, "gpt2-learned-tiny.tlg")
    model = os.path.join(ROOT, "tests", "models", "gpt2-learned-tiny.gguf")
    assert _verify_fault("mask_after_softmax", model, golden) == "0.attn_scores"


@test
def verify_catches_rope_on_wrong_pairs():
    assert _verify_fault("rope_wrong_pairs", stories_gguf(), os.path.join(GOLDEN, "stories260K.tlg")) == "0.q"


@test
def verify_catches_skipped_layer():
    golden = os.path.join(GOLDEN, "austen-tiny-sin.tlg")
    assert _verify_fault("skip_layer", TINY_SIN, golden) == "1.attn_norm"


@test
def verify_q8_0_golden_derived_tolerances():
    """A Q8_0 model's golden (format 2) carries each tap's tolerance derived
    by the reference, quantized activations included: the engine passes it
    on both paths, neither path is within verify's float32 defaults (both
    quantize the activations: decode, and prefill 8 tokens at a time on the
    repacked weights), so the derived tolerances are needed, and a fault is
    still caught at the right tap."""
    golden = os.path.join(GOLDEN, "austen-tiny-sin-q8_0.tlg")
    model = tiny_sin_q8_0()
    r = run([TINYLLM, "verify", "-m", model, "--golden", golden])
    assert r.returncode == 0 and "verify: PASS" in r.stdout and "24 of 24" in r.stdout, (r.stdout[-800:], r.stderr)
    strict = run([TINYLLM, "verify", "-m", model, "--golden", golden, "--tol", "1e-4", "--atol", "1e-4", "-q"])
    assert strict.returncode == 4 and "FIRST FAILING TAP (prefill)" in strict.stdout, strict.stdout[-600:]
    assert "FIRST FAILING TAP (decode)" in strict.stdout, strict.stdout[-600:]
    assert _verify_fault("skip_layer", model, golden) == "1.attn_norm"


@test
def verify_catches_softmax_without_max_subtraction():
    """Needs attention logits large enough to overflow exp(): a model with
    scaled-up query/key weights, and its golden made by the reference now."""
    model = synthetic("hot_qk", "--arch", "gpt2", "--dim", "48", "--layers", "2", "--heads", "4", "--ctx", "32",
                      "--qk-scale", "12", "--tokenizer", SP512, "--seed", "9")
    golden = os.path.join(TMP, "hot_qk.tlg")
    r = run([PYTHON, os.path.join(ROOT, "tools", "golden.py"), model, "--prompt", "It is a truth universally", "-n", "4",
             "--out", golden])
    assert r.returncode == 0, r.stderr
    _, _, _, _, taps = golden_file.read_golden(golden)
    assert np.nanmax(taps["0.attn_scores"]) > 100, "the model's attention logits are not large enough"
    ok = run([TINYLLM, "verify", "-m", model, "--golden", golden])
    assert ok.returncode == 0, ok.stdout[-500:]  # the real engine subtracts the max
    assert _verify_fault("softmax_no_max", model, golden) == "0.attn_probs"


@test
def verify_refuses_golden_of_another_model():
    r = run([TINYLLM, "verify", "-m", TINY_SIN, "--golden", os.path.join(GOLDEN, "gpt2-learned-tiny.tlg")])
    assert r.returncode == 1 and "SHA-256" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
    bad = os.path.join(TMP, "bad.tlg")
    with open(os.path.join(GOLDEN, "gpt2-learned-tiny.tlg"), "rb") as f:
        data = f.read()
    with open(bad, "wb") as f:
        f.write(data[:len(data) // 2])
    r = run([TINYLLM, "verify", "-m", TINY_SIN, "--golden", bad])
    assert r.returncode == 1 and bad in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr


@test
def verify_tolerance_override_can_fail():
    """--tol 0 --atol 0 demands bit equality with float64: it must fail."""
    r = run([TINYLLM, "verify", "-m", TINY_SIN, "--golden", os.path.join(GOLDEN, "austen-tiny-sin.tlg"), "--tol", "0",
             "--atol", "0", "-q"])
    assert r.returncode == 4 and "FIRST FAILING TAP" in r.stdout, r.stdout[-400:]



if __name__ == "__main__":
    SUITE.main()
