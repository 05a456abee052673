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
import numpy as np

from harness import Suite
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
