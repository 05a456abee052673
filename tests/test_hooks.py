#!/usr/bin/python3
"""Hooks that write (tinyllm_context_set_hook; Python run_with_hooks,
set_hooks, patch_activations): a hook that writes nothing changes nothing;
each writable point is the buffer the pass goes on from (a head's output
zeroed is that head ablated, written attention probabilities are what the
values are mixed by, a zeroed FFN hidden state leaves no FFN output, a
written key stays in the cache for later tokens); q and k before RoPE
against the reference; activation patching restores what it patches.

Prints one PASS/FAIL/SKIP line per test. Usage: test_hooks.py [NAME_SUBSTRING ...]
"""
import os
import subprocess
import tempfile

import numpy as np

from harness import BUILD, Suite
from fixtures import LIB, gpt2_learned, llama_gqa  # noqa: F401 - LIB loads this build's library
import reference
import tinyllm as tl
from tolerance import assert_runs_agree, assert_within

SUITE = Suite("hooks")
test = SUITE.test
TOKENS = [1] + list(range(40, 60))


def plain_logits(m, tokens):
    with tl.Context(m, logits_all=True) as c:
        c.prefill(tokens)
        return np.stack([c.logits_at(i) for i in range(len(tokens))])


@test
def hooks_that_write_nothing_change_nothing():
    """A hook on every writable point that leaves the tensor as it is: the
    logits equal a plain prefill's bit for bit (attention is recomputed only
    when its probabilities were written), and every hooked name was seen."""
    for path in (llama_gqa(), gpt2_learned()):
        with tl.Model(path) as m:
            names = [n for n in m.run_with_taps(TOKENS, None) if not n.endswith("attn_scores")]
            hooked = m.run_with_hooks(TOKENS, {n: (lambda x, pos0: None) for n in names})
            assert np.array_equal(hooked, plain_logits(m, TOKENS)), path


@test
def a_zeroed_head_output_is_that_head_ablated():
    """Zeroing head 1's columns of layer 0's attn_out gives exactly the
    logits of ablate_head(0, 1)."""
    path = llama_gqa()
    with tl.Model(path) as m:
        hd = m.info.n_embd // m.info.n_head

        def zero_head(x, pos0):
            x[:, hd:2 * hd] = 0

        hooked = m.run_with_hooks(TOKENS, {"0.attn_out": zero_head})
        ablated = m.run_with_taps(TOKENS, ["logits"], ablate=[(0, 1)])["logits"]
        assert np.array_equal(hooked, ablated)
        assert not np.array_equal(hooked, plain_logits(m, TOKENS)), "the head mattered"


@test
def written_attention_probabilities_are_followed():
    """Probabilities set to attend each token to itself only: every head's
    output is its own value row (grouped-query: its key/value head's), as
    the hooked run's attn_out shows; in decode as in prefill."""
    path = llama_gqa()
    with tl.Model(path) as m:
        H, KV, hd = m.info.n_head, m.info.n_head_kv, m.info.n_embd // m.info.n_head

        def self_only(p, pos0):  # (H, T, L): row t is position pos0 + t
            p[...] = 0
            for t in range(p.shape[1]):
                p[:, t, pos0 + t] = 1

        _, taps = m.run_with_hooks(TOKENS, {"0.attn_probs": self_only}, taps=True)
        v, out = taps["0.v"], taps["0.attn_out"]
        for h in range(H):
            g = h // (H // KV)
            assert np.array_equal(out[:, h * hd:(h + 1) * hd], v[:, g * hd:(g + 1) * hd]), h
        with tl.Context(m) as c:  # decode: one row at a time, the cache growing
            cache = {}
            c.set_hooks({"0.attn_probs": self_only}, cache)
            for t in TOKENS[:6]:
                c.decode(t)
            assert np.array_equal(cache["0.attn_out"][:, :hd], cache["0.v"][:, :hd])


@test
def a_zeroed_ffn_hidden_state_leaves_no_ffn_output():
    """ffn_hidden is the buffer the down projection reads (it was a copy, and
    writes were lost): zeroed, layer 0's ffn_out is zero (llama: no bias)
    and layer 0's residual stream after the FFN equals the one before it."""
    with tl.Model(llama_gqa()) as m:
        _, taps = m.run_with_hooks(TOKENS, {"0.ffn_hidden": lambda x, pos0: np.zeros_like(x)}, taps=True)
        assert not np.any(taps["0.ffn_out"]) and np.array_equal(taps["0.resid_ffn"], taps["0.resid_attn"])


@test
def a_written_key_stays_in_the_cache():
    """Keys are the cache's rows: zeroing position 0's key in layer 0 during
    a prefill, then decoding the last token with no hook, gives the logits
    of one prefill with the same key zeroed (within twice the spread), and
    not those of a run without the write."""
    path = llama_gqa()

    def zero_first_key(k, pos0):
        if pos0 == 0:
            k[0] = 0

    with tl.Model(path) as m:
        with tl.Context(m) as c:
            c.set_hooks({"0.k": zero_first_key})
            c.prefill(TOKENS[:-1])
            c.set_hooks(None)
            c.decode(TOKENS[-1])
            later = c.logits()
        at_once = m.run_with_hooks(TOKENS, {"0.k": zero_first_key})[-1]
        plain = plain_logits(m, TOKENS)[-1]
    assert_runs_agree(path, TOKENS, later[None], at_once[None], "written key: decode vs prefill")
    assert np.max(np.abs(later - plain)) > 1e-3, "the write changed nothing"


@test
def q_and_k_before_rope_match_the_reference():
    """The new taps q_pre_rope and k_pre_rope against the reference within
    their spreads, and rotating them gives q and k."""
    path = llama_gqa()
    ref = reference.Model(path)
    spreads, want = {}, {}
    ref.rounding_spread(TOKENS, taps=spreads)
    ref.forward(TOKENS, want)
    with tl.Model(path) as m:
        taps = m.run_with_taps(TOKENS, ["1.q_pre_rope", "1.k_pre_rope", "1.q", "1.k"])
    for name in ("1.q_pre_rope", "1.k_pre_rope"):
        assert_within(taps[name], want[name], spreads[name], name)
    assert_within(ref.rope(taps["1.q_pre_rope"].astype(np.float64), ref.n_head), want["1.q"],
                  spreads["1.q"] + spreads["1.q_pre_rope"], "rotated q_pre_rope")


@test
def activation_patching_restores_what_it_patches():
    """A run patched with its own cache: unchanged, bit for bit. The clean
    run's last-layer residual at every position, patched into a corrupted
    run: exactly the clean logits. Patched at one position only:
    the positions before it keep the corrupted logits exactly (causal),
    the patched position gets the clean ones."""
    path = llama_gqa()
    clean, corrupted = TOKENS, [TOKENS[0]] + [t + 100 for t in TOKENS[1:]]
    with tl.Model(path) as m:
        last = f"{m.info.n_layer - 1}.resid_ffn"
        assert np.array_equal(m.patch_activations(clean, corrupted, last), plain_logits(m, clean))
        same = m.patch_activations(clean, clean, "1.attn_norm")  # a run patched with its own cache
        assert np.array_equal(same, plain_logits(m, clean)), "self-patching changed the logits"
        p = 10
        one = m.patch_activations(clean, corrupted, last, positions=[p])
        assert np.array_equal(one[:p], plain_logits(m, corrupted)[:p])
        assert np.array_equal(one[p], plain_logits(m, clean)[p])


def c_patch(path, name, positions, clean, corrupted):
    """tests/tools/hook_patch.c: the same patching through the C API."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "logits.f32")
        pos = "all" if positions is None else ",".join(map(str, positions))
        subprocess.run([os.path.join(BUILD, "tests", "hook_patch"), path, name, pos, ",".join(map(str, clean)),
                        ",".join(map(str, corrupted)), out], check=True, capture_output=True, text=True)
        return np.fromfile(out, np.float32).reshape(len(clean), -1)


@test
def patching_from_another_prompt_moves_the_logits_as_the_reference_does():
    """The clean run's tensor patched into a corrupted run (a mid-layer
    head output at one position, the attention probabilities of a whole
    layer, a residual stream at two positions): the engine's logits, through
    the C API and through Python, equal each other bit for bit and the
    reference's patched run (tools/reference.py, the same patch, its donor
    moved by rounding as the patched run is) within its spread; and the
    patch moved them by more than that spread."""
    clean = TOKENS
    corrupted = [TOKENS[0]] + [t + 100 for t in TOKENS[1:]]
    for path, name, positions in ((llama_gqa(), "1.attn_out", [10]), (llama_gqa(), "0.attn_probs", None),
                                  (gpt2_learned(), "0.resid_attn", [3, 15])):
        with tl.Model(path) as m:
            py = m.patch_activations(clean, corrupted, name, positions=positions)
            unpatched = plain_logits(m, corrupted)
        c = c_patch(path, name, positions, clean, corrupted)
        assert np.array_equal(c, py), f"{name}: C and Python patching differ"
        want, spread = reference.Model(path).patch_activations(clean, corrupted, name, positions)
        assert_within(py, want, spread, f"{os.path.basename(path)} {name} patched")
        moved = float(np.max(np.abs(py - unpatched)))
        assert moved > 4 * spread, f"{name}: the patch moved the logits by {moved:.3g} only (spread {spread:.3g})"


@test
def weights_per_head_compute_the_taps():
    """attention_weights(layer): read-only arrays (a write raises); from the
    engine's own attn_norm tap, x @ W_Q[h] (+ b_Q[h]) gives head h's query
    before RoPE (llama) or its q (gpt2, stored q|k|v side by side), the
    same for keys and values, and the heads' outputs through W_O (+ b_O)
    sum to attn_proj; within float32 product rounding, K u sum|a||b|."""
    for path, before_rope in ((llama_gqa(), True), (gpt2_learned(), False)):
        with tl.Model(path) as m:
            W = m.attention_weights(1)
            for name, a in W.items():
                try:
                    a[(0,) * a.ndim] = 1.0
                except ValueError:
                    continue
                raise AssertionError(f"{name} is writable")
            assert m.tensor("blk.1.attn_output.weight") is m.tensor("blk.1.attn_output.weight"), "dequantized twice"
            names = ["1.attn_norm", "1.attn_out", "1.attn_proj"] + [f"1.{x}_pre_rope" if before_rope else f"1.{x}"
                                                                    for x in "qk"] + ["1.v"]
            taps = {k: v.astype(np.float64) for k, v in m.run_with_taps(TOKENS, names).items()}
        x, d = taps["1.attn_norm"], m.info.head_dim
        u = 2.0 ** -24
        for kind, key in (("q", "Q"), ("k", "K"), ("v", "V")):
            got = taps[f"1.{kind}_pre_rope" if before_rope and kind != "v" else f"1.{kind}"]
            w = W["W_" + key].astype(np.float64)
            for h in range(w.shape[0]):
                want = x @ w[h] + (W["b_" + key][h] if "b_" + key in W else 0)
                bound = x.shape[1] * u * (np.abs(x) @ np.abs(w[h])) + 1e-6
                assert np.all(np.abs(got[:, h * d:(h + 1) * d] - want) <= bound), (path, kind, h)
        att, wo = taps["1.attn_out"], W["W_O"].astype(np.float64)
        proj = sum(att[:, h * d:(h + 1) * d] @ wo[h] for h in range(wo.shape[0])) + W.get("b_O", 0)
        bound = att.shape[1] * u * sum(np.abs(att[:, h * d:(h + 1) * d]) @ np.abs(wo[h]) for h in range(wo.shape[0]))
        assert np.all(np.abs(taps["1.attn_proj"] - proj) <= bound + 1e-6), path


@test
def an_ablated_layer_passes_the_stream_unchanged():
    """Context.ablate_layer(1) (tinyllm_context_ablate_layer): layer 1's taps
    are absent and the logits are the reference's with layer 1's residual
    stream held at its input (hooks on 1.resid_attn and 1.resid_ffn), within
    the spread, and far from a plain run's; restored, the logits are a plain
    run's again, bit for bit. Bad layers raise."""
    for path in (llama_gqa(), gpt2_learned()):
        with tl.Model(path) as m:
            assert m.info.n_layer >= 2, path
            with tl.Context(m, n_ctx=len(TOKENS), logits_all=True) as c:
                c.ablate_layer(1)
                taps = c.prefill_with_taps(TOKENS)
                skipped = np.stack([c.logits_at(i) for i in range(len(TOKENS))])
                c.ablate_layer(1, on=False)
                c.rewind(0)
                c.prefill(TOKENS)
                restored = np.stack([c.logits_at(i) for i in range(len(TOKENS))])
                for bad in (-1, m.info.n_layer):
                    try:
                        c.ablate_layer(bad)
                    except tl.TinyLLMError:
                        continue
                    raise AssertionError(f"ablate_layer({bad}) did not raise")
            plain = plain_logits(m, TOKENS)
        assert not any(n.startswith("1.") for n in taps) and "0.resid_ffn" in taps, sorted(taps)
        assert np.array_equal(restored, plain), "restoring the layer did not restore the run"
        ref = reference.Model(path)
        held = {}

        def keep(x, pos0):
            held["x"] = x.copy()

        def put_back(x, pos0):
            x[:] = held["x"]

        want, spread = ref.rounding_spread(TOKENS, hooks={"0.resid_ffn": keep, "1.resid_attn": put_back,
                                                          "1.resid_ffn": put_back})
        assert_within(skipped, want, spread, f"{path}: layer 1 ablated")
        assert np.max(np.abs(skipped - plain)) > 10 * spread, "ablating the layer changed nothing"


@test
def hook_mistakes_are_errors():
    """A hook on a name that is not a writable tap, a hook returning the
    wrong shape, and an exception inside a hook: each raises in Python,
    after the C call returns."""
    with tl.Model(llama_gqa()) as m:
        for hooks, kind in (({"9.nope": lambda x, p: None}, tl.TinyLLMError),
                            ({"0.attn_scores": lambda x, p: None}, tl.TinyLLMError),
                            ({"0.q": lambda x, p: np.zeros(3)}, ValueError),
                            ({"0.q": lambda x, p: 1 / 0}, ZeroDivisionError)):
            try:
                m.run_with_hooks(TOKENS, hooks)
            except kind:
                continue
            raise AssertionError(f"{sorted(hooks)}: no {kind.__name__}")


if __name__ == "__main__":
    SUITE.main()
