#!/usr/bin/python3
"""Experiments (include/tinyllm.h, --experiment): each piece of attention,
positions or normalization switched off changes exactly what it claims,
against the numpy reference running the same experiment (written there from
the definitions, not from the C), on gpt2 (learned and sinusoidal positions)
and llama (RoPE, grouped-query) models. Prints one PASS/FAIL/SKIP line per
test."""
import json
import math
import os
import subprocess

import numpy as np

from harness import ROOT, TINY_SIN, TINYLLM, Suite
from fixtures import gpt2_learned, llama_gqa
import reference
import tinyllm as tl
from tolerance import assert_within

SUITE = Suite("experiments")
test = SUITE.test
TMP = SUITE.tmp
EXPERIMENTS = ["no-scale", "attn-scale=3", "no-mask", "mask-after-softmax", "naive-softmax", "no-positions",
               "no-norm", "no-mask,no-scale"]
TOKENS = [1] + list(range(40, 56))


def models():
    return [("gpt2-sinusoidal", TINY_SIN), ("gpt2-learned", gpt2_learned()), ("llama-gqa", llama_gqa())]


def reference_run(path, experiments, tokens, taps=None):
    """The reference's logits and rounding spread under `experiments`."""
    r = reference.Model(path)
    r.set_experiments(experiments)
    exact_taps = {} if taps is not None else None
    exact, spread = r.rounding_spread(tokens)
    if taps is not None:
        r.forward(tokens, exact_taps)
        taps.update(exact_taps)
    return exact, spread


def run(args, **kw):
    return subprocess.run([TINYLLM, *args], capture_output=True, text=True, timeout=120, **kw)


@test
def every_experiment_matches_the_reference_and_changes_the_logits():
    """Logits of every position under each experiment equal the reference's
    under the same experiment (within its rounding spread), and differ from
    the model's own beyond it (naive-softmax: no overflow here, so equal)."""
    for name, path in models():
        base, base_spread = reference_run(path, "", TOKENS)
        with tl.Model(path) as m:
            for e in EXPERIMENTS:
                got = m.run_with_taps(TOKENS, ["logits"], experiments=e)["logits"]
                want, spread = reference_run(path, e, TOKENS)
                assert_within(got, want, spread, f"{name} {e}")
                moved = float(np.max(np.abs(want - base)))
                if e == "naive-softmax":  # the same arithmetic until a score overflows
                    assert moved <= spread + base_spread, (name, e, moved)
                else:
                    assert moved > 4 * (spread + base_spread), (name, e, moved, spread)


@test
def no_scale_multiplies_the_scores_by_sqrt_head_dim():
    """no-scale: layer 0's scores are sqrt(head_dim) times the model's (the
    same q and k, one scale less); attn-scale=F: F * sqrt(head_dim) times."""
    for name, path in models():
        with tl.Model(path) as m:
            d = m.info.head_dim
            base = m.run_with_taps(TOKENS, ["0.attn_scores"])["0.attn_scores"].astype(np.float64)
            low = np.tril(np.ones(base.shape[1:], dtype=bool))
            for e, factor in (("no-scale", math.sqrt(d)), ("attn-scale=0.3", 0.3 * math.sqrt(d))):
                got = m.run_with_taps(TOKENS, ["0.attn_scores"], experiments=e)["0.attn_scores"]
                want = factor * base
                err = np.abs(got[:, low] - want[:, low])
                assert np.all(err <= 1e-5 * (1 + np.abs(want[:, low]))), (name, e, float(err.max()))


@test
def no_mask_sees_the_future_and_decode_then_differs_from_prefill():
    """no-mask: prefill rows still sum to 1 but put weight on future keys;
    decode, which has no future to see, then gives other logits than the
    prefill of the same tokens (for the model itself they agree)."""
    for name, path in models():
        with tl.Model(path) as m:
            probs = m.run_with_taps(TOKENS, ["1.attn_probs"], experiments="no-mask")["1.attn_probs"]
            assert np.allclose(probs.sum(-1), 1, atol=1e-5), name
            assert np.all(np.triu(probs, 1)[:, :-1].sum(-1) > 0), f"{name}: no weight on the future"
            with tl.Context(m, logits_all=True, experiments="no-mask") as c:
                c.prefill(TOKENS)
                prefill = np.stack([c.logits_at(i) for i in range(len(TOKENS))])
            with tl.Context(m, experiments="no-mask") as c:
                decoded = []
                for t in TOKENS:
                    c.decode(t)
                    decoded.append(c.logits())
            _, spread = reference_run(path, "", TOKENS)
            assert float(np.max(np.abs(prefill[0] - decoded[0]))) > 10 * spread, name


@test
def mask_after_softmax_loses_the_future_mass():
    """mask-after-softmax: the future's weights are zero, but the softmax
    ran over them: every row but the last sums to less than 1, as the
    reference's."""
    for name, path in models():
        with tl.Model(path) as m:
            probs = m.run_with_taps(TOKENS, ["0.attn_probs"], experiments="mask-after-softmax")["0.attn_probs"]
        ref_taps = {}
        reference_run(path, "mask-after-softmax", TOKENS, ref_taps)
        assert np.all(np.triu(probs, 1) == 0), name
        sums = probs.sum(-1)
        assert np.all(sums[:, :-1] < 1 - 1e-4) and np.allclose(sums[:, -1], 1, atol=1e-5), (name, sums)
        assert np.allclose(sums, ref_taps["0.attn_probs"].sum(-1), atol=1e-5), name


@test
def naive_softmax_overflows_into_one_line_not_a_crash():
    """naive-softmax with large scores: exp overflows; the probabilities hold
    inf/NaN (Python gets them), and generate says so in one line (exit 3)."""
    with tl.Model(TINY_SIN) as m:
        probs = m.run_with_taps(TOKENS, ["0.attn_probs"], experiments="naive-softmax,attn-scale=1e4")["0.attn_probs"]
    assert not np.all(np.isfinite(probs))
    r = run(["generate", "-m", TINY_SIN, "-p", "It is a truth", "-n", "4", "--temp", "0", "--experiment",
             "naive-softmax,attn-scale=1e4"])
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 3 and "not finite" in lines[-1] and "experiment made" in lines[-1], r.stderr
    assert lines[0].startswith("experiment: attn-scale=10000,naive-softmax"), r.stderr


@test
def no_positions_drops_the_pos_tap_and_the_rotation():
    """no-positions: gpt2 has no "pos" tap (nothing was added); llama's q at
    position 0 is unchanged (RoPE turns position 0 by nothing) and at later
    positions is the unrotated projection."""
    for name, path in models():
        with tl.Model(path) as m:
            taps = m.run_with_taps(TOKENS, None, experiments="no-positions")
            base = m.run_with_taps(TOKENS, ["0.q", "pos"] if m.info.positions != 0 else ["0.q"])
        assert "pos" not in taps, name
        ref_taps = {}
        reference_run(path, "no-positions", TOKENS, ref_taps)
        assert_within(taps["0.q"], ref_taps["0.q"], 1e-4 * (1 + np.abs(ref_taps["0.q"]).max()), f"{name} 0.q")
        if name == "llama-gqa":
            assert np.allclose(taps["0.q"][0], base["0.q"][0], atol=1e-6)
            assert not np.allclose(taps["0.q"][1:], base["0.q"][1:], atol=1e-3)


@test
def no_norm_feeds_the_residual_stream_as_it_is():
    """no-norm: each norm tap is its input, bit for bit (layer 0's
    attn_norm is the embedding, plus positions on gpt2)."""
    for name, path in models():
        with tl.Model(path) as m:
            taps = m.run_with_taps(TOKENS, ["embed", "pos", "0.attn_norm", "0.resid_attn", "0.ffn_norm"]
                                   if "gpt2" in name else ["embed", "0.attn_norm", "0.resid_attn", "0.ffn_norm"],
                                   experiments="no-norm")
        first = taps.get("pos", taps["embed"])
        assert np.array_equal(taps["0.attn_norm"], first), name
        assert np.array_equal(taps["0.ffn_norm"], taps["0.resid_attn"]), name


@test
def runs_under_an_experiment_say_so():
    """generate and step say so on stderr, perplexity in its report, attn on
    stderr, explore in the page (title, data and the header line)."""
    model = os.path.join(ROOT, "models", "austen.gguf")
    flag = ["--experiment", "no-mask"]
    r = run(["generate", "-m", model, "-p", "It is", "-n", "3", "--temp", "0", *flag])
    assert r.returncode == 0 and "experiment: no-mask" in r.stderr, r.stderr
    text = os.path.join(TMP, "t.txt")
    with open(text, "w") as f:
        f.write("It is a truth universally acknowledged, that a single man")
    r = run(["perplexity", "-m", model, "-f", text, *flag])
    assert r.returncode == 0 and "experiment: no-mask" in r.stdout, r.stdout
    r = run(["step", "-m", model, "-p", "It is", "--script", "where", *flag])
    assert r.returncode == 0 and "experiment: no-mask" in r.stderr, r.stderr
    png = os.path.join(TMP, "a.png")
    r = run(["attn", "-m", model, "-p", "It is a truth", "--layer", "0", "--head", "0", "--png", png, *flag])
    assert r.returncode == 0 and "experiment: no-mask" in r.stderr and os.path.getsize(png) > 0, r.stderr
    page = os.path.join(TMP, "e.html")
    r = run(["explore", "-m", model, "-p", "It is", "-n", "2", "-o", page, *flag])
    assert r.returncode == 0, r.stderr
    html = open(page, encoding="utf-8").read()
    assert "(experiment: no-mask)</title>" in html and '"experiments":"no-mask"' in html, html[:300]


@test
def bad_experiments_are_one_line_errors_and_verify_refuses_them():
    """Unknown names, a bad factor, a name twice, contradictory pairs: exit
    2 in one line (an exception in Python); verify refuses any experiment."""
    for spec, needle in (("bogus", "'bogus'"), ("attn-scale", "attn-scale=F"), ("attn-scale=x", "a finite number"),
                         ("attn-scale=inf", "finite"), ("no-mask,no-mask", "twice"),
                         ("no-scale,attn-scale=2", "both set the scale"),
                         ("no-mask,mask-after-softmax", "both change the mask"), ("no-norm=1", "takes no value")):
        r = run(["generate", "-m", TINY_SIN, "-p", "x", "--experiment", spec])
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and needle in lines[0], (spec, r.stderr)
        with tl.Model(TINY_SIN) as m:
            try:
                tl.Context(m, experiments=spec)
                raise AssertionError(f"{spec} accepted")
            except tl.TinyLLMError as e:
                assert needle in str(e), (spec, e)
    r = run(["verify", "-m", TINY_SIN, "--golden", os.path.join(ROOT, "tests", "golden", "austen-tiny-sin.tlg"),
             "--experiment", "no-mask"])
    assert r.returncode == 2 and "refused" in r.stderr, r.stderr
    with tl.Model(TINY_SIN) as m, tl.Context(m, experiments="none") as c:
        assert c.experiments == "none"
        c.set_experiments("no-scale,no-positions")
        assert c.experiments == "no-scale,no-positions"


if __name__ == "__main__":
    SUITE.main()
