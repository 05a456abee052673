#!/usr/bin/python3
"""The engine's numbers against the independent numpy reference
(tools/reference.py) within the tolerances of tests/README.md: logits of
every family, greedy text, prefill vs decode, chunked prefill, long prompts,
F16 in place; and the context's limits.

Prints one PASS/FAIL/SKIP line per test. Usage: test_numerics.py [NAME_SUBSTRING ...]
"""
import os

import numpy as np

from harness import STORIES, TINY_SIN, Suite
from fixtures import (EXCERPT, LIB, assert_runs_within_spread, compare_logits, gpt2_exact_gelu, gpt2_f16, gpt2_learned, gpt2_no_bias,
                      gpt2_sinusoidal, llama_f16, llama_gqa, quantized, llama_long, need_shared, stories_gguf)
import gguf_writer as gw
import reference
import tinyllm as tl
from tolerance import (assert_greedy_agree, assert_greedy_matches, assert_matches_reference, assert_runs_agree,
                       logits_and_spread)

SUITE = Suite("numerics")
test = SUITE.test
TMP = SUITE.tmp


# ---------------------------------------------------------------- models --



@test
def gpt2_learned_logits_match_reference():
    compare_logits(gpt2_learned(), [1, 100, 200, 300, 7, 8, 9, 400, 33, 2, 5, 6])


@test
def gpt2_without_biases_matches_reference():
    """Every gpt2 bias is optional (bias=False models store none): the
    file has no bias tensor, and prefill and decode match the reference."""
    path = gpt2_no_bias()
    assert not [n for n in reference.GGUFFile(path).tensors if n.endswith(".bias")]
    compare_logits(path, [1, 100, 200, 300, 7, 8, 9, 400, 33, 2, 5, 6])
    _prefill_vs_decode(path, list(range(1, 30)))


@test
def gpt2_exact_gelu_matches_reference():
    """tinyllm.gelu = "erf" selects the exact GELU (nanoGPT's): prefill and
    decode match the reference, and the tanh form is more than two spreads
    away on this model: an engine computing it would miss by more than one
    spread (its own rounding moves it by at most one), so the test tells the
    two apart."""
    path = gpt2_exact_gelu()
    tokens = [1, 100, 200, 300, 7, 8, 9, 400, 33, 2, 5, 6]
    compare_logits(path, tokens)
    _prefill_vs_decode(path, list(range(1, 30)))
    exact, spread = logits_and_spread(path, tokens)
    tanh = reference.Model(path)
    tanh.exact_gelu = False
    gap = float(np.max(np.abs(tanh.forward(tokens) - exact)))
    assert gap > 2 * spread, f"the two GELU forms differ by {gap:.3g}, under 2 x the spread {spread:.3g}"


@test
def gpt2_sinusoidal_logits_match_reference():
    compare_logits(gpt2_sinusoidal(), [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130])


@test
def llama_gqa_logits_match_reference():
    compare_logits(llama_gqa(), [1, 55, 66, 77, 88, 99, 111, 222, 333, 444])


@test
def llama_any_tensor_order_matches_reference():
    """Q/K/V and gate/up run as one product when a file stores them back to
    back; a file with the tensors in reverse order takes the separate path and
    must give the same logits."""
    g = reference.GGUFFile(llama_gqa())
    path = os.path.join(TMP, "llama_reversed.gguf")
    w = gw.GGUFWriter()
    for key, val in g.kv.items():
        t = g.kv_types[key]
        if t == gw.T_STRING:
            w.add_string(key, val)
        elif t == gw.T_ARRAY:
            etype = gw.T_STRING if isinstance(val, list) else {np.float32: gw.T_F32, np.int32: gw.T_I32,
                                                               np.uint8: gw.T_U8}[val.dtype.type]
            w.add_array(key, etype, bytes(val) if etype == gw.T_U8 else val)
        else:
            w.add_scalar(key, t, val)
    for name in reversed(list(g.tensors)):
        w.add_tensor(name, g.tensor(name))
    w.write(path)
    toks = [1, 55, 66, 77, 88, 99, 111, 222, 333, 444]
    compare_logits(path, toks)
    with tl.Model(path) as a, tl.Model(llama_gqa()) as b, tl.Context(a) as ca, tl.Context(b) as cb:
        assert_greedy_agree(path, toks, ca.greedy(toks, 8), cb.greedy(toks, 8))


@test
def austen_tiny_sinusoidal_logits_match_reference():
    with open(EXCERPT, encoding="utf-8") as f:
        text = f.read()[:300]
    with tl.Model(TINY_SIN) as m:
        toks = m.tokenize(text)[:m.info.n_ctx_train]
    compare_logits(TINY_SIN, toks)


@test
def stories260k_greedy_matches_reference():
    """Greedy continuation of "Once upon a time", token for token (up to the
    reference's first near tie, if any)."""
    path = stories_gguf()
    prompt = reference.Model(path).tokenize("Once upon a time")
    assert prompt == [1, 403, 407, 261, 378]
    with tl.Model(path) as m, tl.Context(m) as c:
        got = c.greedy(prompt, 48)
    assert_greedy_matches(path, prompt, got, min_decisive=24)


@test
def stories260k_llamacpp_file_generates_same():
    """The llama.cpp-written GGUF of the same model gives the same greedy text."""
    need_shared()
    path = stories_gguf()
    with tl.Model(path) as m, tl.Context(m) as c:
        ours = c.greedy([1, 403, 407, 261, 378], 40)
    with tl.Model(os.path.join(STORIES, "stories260K.llamacpp.gguf")) as m, tl.Context(m) as c:
        theirs = c.greedy([1, 403, 407, 261, 378], 40)
    assert_greedy_agree(path, [1, 403, 407, 261, 378], ours, theirs, min_decisive=24)


def _prefill_vs_decode(path, tokens):
    with tl.Model(path) as m:
        with tl.Context(m, logits_all=True) as c:
            c.prefill(tokens)
            batch = np.stack([c.logits_at(i) for i in range(len(tokens))])
        with tl.Context(m) as c:
            steps = []
            for t in tokens:
                c.decode(t)
                steps.append(c.logits())
    assert_runs_agree(path, tokens, batch, np.stack(steps), "prefill vs decode")


@test
def stories260k_prefill_equals_decode():
    path = stories_gguf()
    with tl.Model(path) as m:
        toks = m.tokenize("Once upon a time, there was a little dog named Max. He liked to run.")
    _prefill_vs_decode(path, toks)


@test
def quantized_weights_in_place_match_reference():
    """Q8_0 and Q4_0 matrices used as stored (llama GQA, gpt2), repacked 8
    rows at a time: prefill (the integer GEMM) and token-by-token decode
    (activations quantized to 8-bit blocks, integer block dots) against the
    reference on the same dequantized weights, within the spread that models
    the activation quantization (tools/reference.py mm); prefill vs decode,
    1 vs 2 threads and in place vs expand_f32 agree within twice that. The
    weights take their stored size: 34 / 18 bytes per 32. gpt2_odd_vocab's
    classifier (509 rows) ends in a padded group of 8."""
    toks = [1] + list(range(40, 70))
    for arch in ("llama", "gpt2", "gpt2_odd_vocab"):
        for dtype, ratio in (("q8_0", 34 / 128), ("q4_0", 18 / 128)):
            path = quantized(arch, dtype)
            what = f"{arch} {dtype}"
            with tl.Model(path) as m, tl.Model(path, expand_f32=True) as e:
                assert m.info.weight_bytes < (ratio + 0.1) * e.info.weight_bytes, (what, m.info.weight_bytes)
            assert_runs_within_spread(path, toks, what)


@test
def gpt2_prefill_equals_decode():
    _prefill_vs_decode(gpt2_learned(), list(range(1, 40)))
    _prefill_vs_decode(gpt2_sinusoidal(), list(range(3, 30)))


@test
def prefill_in_chunks_equals_one_prefill():
    """Prefill split over several calls (and the internal batching) gives the
    same last logits as one call."""
    path = llama_gqa()
    toks = list(range(1, 41))
    with tl.Model(path) as m:
        with tl.Context(m) as c:
            c.prefill(toks)
            one = c.logits()
        with tl.Context(m) as c:
            c.prefill(toks[:13])
            c.prefill(toks[13:30])
            c.prefill(toks[30:])
            three = c.logits()
            c.rewind(13)
            c.prefill(toks[13:])
            rewound = c.logits()
    assert_runs_agree(path, toks, one, three, "one prefill vs three")
    assert_runs_agree(path, toks, one, rewound, "one prefill vs rewound")


@test
def long_prompt_matches_reference_across_blocks_and_batches():
    """600 tokens: attention runs in row blocks (the masked triangle is
    skipped) and the prompt spans two internal batches; split over calls the
    blocks start at other positions. Every row's logits must match."""
    path = llama_long()
    rng = np.random.default_rng(5)
    toks = [1] + rng.integers(3, 512, 599).tolist()
    compare_logits(path, toks)
    with tl.Model(path) as m, tl.Context(m) as c:
        c.prefill(toks[:97])
        c.prefill(toks[97:])
        assert_matches_reference(path, toks, c.logits()[None, :], "split prefill")


@test
def f16_in_place_matches_f32_expansion():
    """F16 weights are used in place by default: the same values as the
    F32 expansion (expand_f32), so logits agree to float rounding (prefill with several
    conversion blocks, and decode), match the reference, and the weights take
    about half the memory. Greedy output follows the reference with 1 and 2
    threads."""
    toks = [1] + list(range(40, 80))
    for path in (llama_f16(), gpt2_f16()):
        n = min(len(toks), reference.Model(path).n_ctx)
        with tl.Model(path, expand_f32=True) as a, tl.Model(path) as b:
            # half the bytes for the matrices; F32 norms and biases add a little
            assert b.info.weight_bytes < 0.6 * a.info.weight_bytes, (a.info.weight_bytes, b.info.weight_bytes)
            got = {}
            for name, m in (("f32", a), ("f16", b)):
                with tl.Context(m, logits_all=True) as c:
                    c.prefill(toks[:n])
                    got[name] = np.stack([c.logits_at(i) for i in range(n)])
                with tl.Context(m) as c:
                    for t in toks[:n]:
                        c.decode(t)
                    got[name + "_decode"] = c.logits()
            assert_runs_agree(path, toks[:n], got["f16"], got["f32"], "F16 in place vs F32 (prefill)")
            assert_runs_agree(path, toks[:n], got["f16_decode"], got["f32_decode"], "F16 in place vs F32 (decode)")
            assert_matches_reference(path, toks[:n], got["f16"], "F16 in place")
            assert_runs_agree(path, toks[:n], got["f16"][-1], got["f16_decode"], "F16 prefill vs decode")
            with tl.Context(b, n_threads=1) as c1, tl.Context(b, n_threads=2) as c2:
                assert_greedy_agree(path, toks[:8], c1.greedy(toks[:8], 12), c2.greedy(toks[:8], 12))




@test
def skip_tokenizer_runs_ids_only():
    """A model loaded with skip_tokenizer computes the same logits; its
    tokenizer functions fail with a clear error instead of crashing."""
    path = llama_gqa()
    toks = [1, 55, 66, 77, 88]
    with tl.Model(path) as a, tl.Model(path, skip_tokenizer=True) as b:
        with tl.Context(a) as ca, tl.Context(b) as cb:
            ca.prefill(toks)
            cb.prefill(toks)
            assert np.array_equal(ca.logits(), cb.logits())
        try:
            b.tokenize("hello")
            raise AssertionError("tokenize worked without a tokenizer")
        except tl.TinyLLMError as e:
            assert "skip_tokenizer" in str(e), e
        assert b.piece(5) is None and LIB.tinyllm_token_bos(b.h) == -1
        assert a.piece(5) is not None


@test
def context_overflow_is_an_error():
    with tl.Model(gpt2_learned()) as m, tl.Context(m, n_ctx=16) as c:
        c.prefill(list(range(1, 15)))
        c.decode(3)
        c.decode(4)
        try:
            c.decode(5)
        except tl.TinyLLMError as e:
            assert e.code == 7 and "do not fit" in str(e), str(e)
        else:
            raise AssertionError("decode past the context succeeded")
    with tl.Model(gpt2_learned()) as m:
        try:
            tl.Context(m, n_ctx=10000)
        except tl.TinyLLMError as e:
            assert "context_length" in str(e)
        else:
            raise AssertionError("a context past the learned position table was created")


@test
def context_shift_equals_a_fresh_prefill_of_the_kept_tokens():
    """tinyllm_context_shift forgets tokens in the middle of a full cache: the
    logits after it (of the last kept token, and of the next decoded one)
    equal the reference's fresh forward pass over the kept tokens, for RoPE
    and for both absolute position kinds."""
    for path in (llama_gqa(), gpt2_learned(), gpt2_sinusoidal()):
        toks = [1] + list(range(40, 59))  # 20 tokens
        kept = toks[:3] + toks[11:]
        with tl.Model(path) as m, tl.Context(m, n_ctx=24) as c:
            c.prefill(toks)
            c.shift(toks, 3, 8)
            assert LIB.tinyllm_context_n_past(c.h) == len(kept)
            assert_matches_reference(path, kept, c.logits()[None, :], "after the shift")
            c.decode(77)
            assert_matches_reference(path, kept + [77], c.logits()[None, :], "decode after the shift")
            try:
                c.shift(toks, 3, 100)
                raise AssertionError("a shift past the cache was accepted")
            except tl.TinyLLMError as e:
                assert e.code == 6 and "context_shift" in str(e), str(e)


if __name__ == "__main__":
    SUITE.main()
