#!/usr/bin/python3
"""End-to-end tests of the engine: the C library (through ctypes) and the CLI
against the independent numpy reference (tools/reference.py) and the Python
GGUF writer/SentencePiece. Prints one PASS/FAIL/SKIP line per test.

Environment: BUILD (build dir), SHARED (../shared), PYTHON.
Usage: test_engine.py [NAME_SUBSTRING ...]
"""
import json
import os
import subprocess

import numpy as np

from harness import (BUILD, PYTHON, ROOT, SHARED, SP512, STORIES, TINY_SIN, TINYLLM,  # noqa: F401
                     Skip, Suite)
import golden as golden_file  # noqa: E402
import gguf_writer as gw  # noqa: E402
import reference  # noqa: E402
import tinyllm_py as tl  # noqa: E402
from tolerance import (assert_greedy_agree, assert_greedy_matches, assert_matches_reference,  # noqa: E402
                       assert_runs_agree, assert_within, logits_and_spread, reference_greedy)

SUITE = Suite("engine")
test = SUITE.test
TMP = SUITE.tmp
LIB = tl.load_library(BUILD)
EXCERPT = os.path.join(ROOT, "tests", "data", "austen_heldout_excerpt.txt")


def need_shared():
    if not os.path.isfile(os.path.join(STORIES, "stories260K.bin")):
        raise Skip(f"{STORIES} is absent")


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


_cache = {}


def stories_gguf():
    """stories260K converted by the project's own converter (once per run)."""
    need_shared()
    if "stories" not in _cache:
        out = os.path.join(TMP, "stories260K.gguf")
        r = run([PYTHON, os.path.join(ROOT, "tools", "convert_llama2c.py"), os.path.join(STORIES, "stories260K.bin"),
                 os.path.join(STORIES, "tok512.model"), out])
        assert r.returncode == 0, r.stderr
        _cache["stories"] = out
    return _cache["stories"]


def synthetic(name, *args):
    """A random-weight model written by tools/make_synthetic.py (cached)."""
    if name not in _cache:
        out = os.path.join(TMP, name + ".gguf")
        r = run([PYTHON, os.path.join(ROOT, "tools", "make_synthetic.py"), out, *args])
        assert r.returncode == 0, r.stderr
        _cache[name] = out
    return _cache[name]


def gpt2_learned():
    return synthetic("gpt2_learned", "--arch", "gpt2", "--positions", "learned", "--dim", "48", "--layers", "3",
                     "--heads", "4", "--ctx", "48", "--tokenizer", SP512, "--seed", "11")


def gpt2_sinusoidal():
    return synthetic("gpt2_sin", "--arch", "gpt2", "--positions", "sinusoidal", "--dim", "48", "--layers", "3",
                     "--heads", "6", "--ctx", "48", "--tokenizer", SP512, "--seed", "12")


def llama_gqa():
    return synthetic("llama_gqa", "--arch", "llama", "--dim", "64", "--layers", "3", "--heads", "8", "--kv-heads",
                     "2", "--ctx", "48", "--tokenizer", SP512, "--seed", "13")


def llama_long():
    """Context 700: prompts longer than one internal batch (512 tokens)."""
    return synthetic("llama_long", "--arch", "llama", "--dim", "32", "--layers", "2", "--heads", "4", "--kv-heads",
                     "2", "--ff", "64", "--ctx", "700", "--tokenizer", SP512, "--seed", "15")


def llama_f16():
    """F16 matrices; gate|up has 640 rows, so prefill converts several blocks."""
    return synthetic("llama_f16", "--arch", "llama", "--dim", "64", "--layers", "2", "--heads", "4", "--kv-heads",
                     "2", "--ff", "320", "--ctx", "64", "--dtype", "f16", "--tokenizer", SP512, "--seed", "16")


def llama_wide():
    """Large enough that products, attention and row work split over threads."""
    return synthetic("llama_wide", "--arch", "llama", "--dim", "256", "--layers", "2", "--heads", "8", "--kv-heads",
                     "4", "--ff", "768", "--ctx", "320", "--tokenizer", SP512, "--seed", "17")


def gpt2_f16():
    return synthetic("gpt2_f16", "--arch", "gpt2", "--dim", "32", "--layers", "2", "--heads", "4", "--ctx", "32",
                     "--dtype", "f16", "--tokenizer", SP512, "--seed", "14")


# ------------------------------------------------------------------ GGUF --

@test
def gguf_roundtrip_every_key_and_tensor():
    """The Python writer writes every value type; the C reader reads every
    key and tensor back equal (compared through build/tests/gguf_dump)."""
    path = os.path.join(TMP, "roundtrip.gguf")
    rng = np.random.default_rng(5)
    w = gw.GGUFWriter(alignment=64)
    scalars = [("t.u8", gw.T_U8, 200), ("t.i8", gw.T_I8, -100), ("t.u16", gw.T_U16, 60000), ("t.i16", gw.T_I16, -30000),
               ("t.u32", gw.T_U32, 4000000000), ("t.i32", gw.T_I32, -2000000000), ("t.f32", gw.T_F32, 1.5),
               ("t.bool", gw.T_BOOL, True), ("t.u64", gw.T_U64, 2 ** 63 + 5), ("t.i64", gw.T_I64, -2 ** 62),
               ("t.f64", gw.T_F64, 3.141592653589793)]
    for key, t, v in scalars:
        w.add_scalar(key, t, v)
    w.add_string("t.string", "héllo \"wörld\" ✓")
    w.add_string("t.empty", "")
    w.add_array("t.arr_i32", gw.T_I32, [1, -2, 3])
    w.add_array("t.arr_f32", gw.T_F32, [0.25, -1.5])
    w.add_array("t.arr_str", gw.T_STRING, ["a", "", "ü▁x"])
    w.add_array("t.arr_u8", gw.T_U8, bytes(range(7)))
    w.add_array("t.arr_empty", gw.T_I64, [])
    tensors = {"a.weight": (rng.standard_normal((3, 5)).astype(np.float32), gw.GGML_F32),
               "b.weight": (rng.standard_normal((2, 3, 7)).astype(np.float32), gw.GGML_F16),
               "c": (rng.standard_normal(9).astype(np.float32), gw.GGML_F32)}
    for name, (arr, t) in tensors.items():
        w.add_tensor(name, arr, t)
    w.write(path)
    r = run([os.path.join(BUILD, "tests", "gguf_dump"), path])
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["version"] == 3 and d["alignment"] == 64
    kv = d["kv"]
    for key, t, v in scalars:
        assert kv[key]["type"] == t, key
        got = kv[key]["value"]
        assert got == v, (key, got, v)  # exact: floats are printed with enough digits to round-trip
    assert kv["t.string"]["value"] == "héllo \"wörld\" ✓"
    assert kv["t.empty"]["value"] == ""
    assert kv["t.arr_i32"]["value"] == [1, -2, 3] and kv["t.arr_f32"]["value"] == [0.25, -1.5]
    assert kv["t.arr_str"]["value"] == ["a", "", "ü▁x"]
    assert kv["t.arr_u8"]["value"] == list(range(7)) and kv["t.arr_empty"]["value"] == []
    assert len(kv) == len(scalars) + 8  # + general.alignment
    for name, (arr, t) in tensors.items():
        info = d["tensors"][name]
        stored = arr.astype(np.float16 if t == gw.GGML_F16 else np.float32).tobytes()
        h = 1469598103934665603
        for byte in stored:
            h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
        assert info["dims"] == list(reversed(arr.shape)), (name, info["dims"])
        assert info["type"] == t and info["n_bytes"] == len(stored) and info["offset"] % 64 == 0
        assert info["fnv1a"] == f"{h:016x}", name


@test
def quantized_q8_0_and_q4_0_models_match_reference():
    """Q8_0 and Q4_0 blocks are expanded at load by the engine and, separately,
    by the reference's reader: the logits agree."""
    for dtype in ("q8_0", "q4_0"):
        path = synthetic("gpt2_" + dtype, "--arch", "gpt2", "--dim", "64", "--layers", "2", "--heads", "4", "--ctx", "32",
                         "--dtype", dtype, "--tokenizer", SP512, "--seed", "15")
        r = run([TINYLLM, "info", path])
        assert r.returncode == 0 and dtype.upper() in r.stdout, r.stdout[-300:]
        _compare_logits(path, [1, 20, 30, 40, 50, 60, 70])


@test
def gguf_model_tensors_equal_reference_reader():
    """Weights bound by the C model equal what the Python reader decodes:
    checked through logits of a one-token prompt per embedding row."""
    path = gpt2_f16()
    with tl.Model(LIB, path) as m, tl.Context(m) as c:
        c.prefill([5])
        assert_matches_reference(path, [5], c.logits()[None, :])


# ------------------------------------------------------------- tokenizer --

TOKENIZER_CASES = ["Hello world", "It is a truth universally acknowledged.", "  leading spaces",
                   "multiple   spaces  between", "trailing space ", "new\nlines\n\nand\ttabs",
                   "naïve café — Ünïcödé façade", "emoji 🙂🚀 and 漢字 and ελληνικά", "a", " ", "\n",
                   "Mr. Darcy's £10,000 a year!"]


def _check_tokenizer(m, sp, cases=TOKENIZER_CASES):
    for text in cases:
        ids = m.tokenize(text)
        want = [sp.bos_id()] + sp.encode(text)
        assert ids == want, (text, ids, want)
        assert m.detokenize(ids[1:]) == sp.decode(ids[1:]).encode(), text
        # the stream keeps every byte and space of the text
        assert m.stream(ids[1:], strip_leading_space=True) == text.encode(), (text, m.stream(ids[1:], True))


@test
def tokenizer_roundtrips_embedded_model():
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=SP512)
    with tl.Model(LIB, gpt2_learned()) as m:
        assert LIB.tinyllm_tokenizer_source(m.h) == b"embedded SentencePiece model"
        _check_tokenizer(m, sp)


@test
def tokenizer_rebuilt_from_arrays_matches_model():
    """A file with only tokenizer.ggml.* arrays (no .model bytes): the rebuilt
    SentencePiece encodes every line of held-out text like the original."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=SP512)
    path = os.path.join(TMP, "rebuilt.gguf")
    g = reference.GGUFFile(gpt2_learned())
    w = gw.GGUFWriter()
    for key, val in g.kv.items():
        if key == gw.KEY_SP_MODEL:
            continue
        t = g.kv_types[key]
        if t == gw.T_STRING:
            w.add_string(key, val)
        elif t == gw.T_ARRAY:
            etype = gw.T_STRING if isinstance(val, list) else {np.float32: gw.T_F32, np.int32: gw.T_I32}[val.dtype.type]
            w.add_array(key, etype, val)
        else:
            w.add_scalar(key, t, val)
    for name in g.tensors:
        w.add_tensor(name, g.tensor(name))
    w.write(path)
    with tl.Model(LIB, path) as m:
        assert LIB.tinyllm_tokenizer_source(m.h) == b"rebuilt from tokenizer.ggml arrays"
        _check_tokenizer(m, sp)
        with open(EXCERPT, encoding="utf-8") as f:
            lines = f.read().split("\n")
        for line in lines:
            assert m.tokenize(line) == [sp.bos_id()] + sp.encode(line), line


@test
def tokenizer_llamacpp_file_matches_tok512():
    """stories260K as llama.cpp wrote it (arrays only): the rebuilt tokenizer
    encodes like tok512.model. tok512 was trained with remove_extra_whitespaces,
    which GGUF arrays cannot carry (llama.cpp does not collapse spaces either),
    so the cases here have no leading, trailing or repeated spaces."""
    need_shared()
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(STORIES, "tok512.model"))
    with tl.Model(LIB, os.path.join(STORIES, "stories260K.llamacpp.gguf")) as m:
        _check_tokenizer(m, sp, [t for t in TOKENIZER_CASES if t == " ".join(t.split(" ")).strip(" ")
                                 and "  " not in t and t.strip(" ")])
        assert m.tokenize("Once upon a time") == [1, 403, 407, 261, 378]


@test
def tokenizer_rejects_invalid_utf8():
    with tl.Model(LIB, gpt2_learned()) as m:
        try:
            m.tokenize(b"ok \xff\xfe bad")
        except tl.TinyLLMError as e:
            assert e.code == 6 and "UTF-8" in str(e), str(e)
        else:
            raise AssertionError("invalid UTF-8 was accepted")


@test
def stream_holds_back_split_utf8():
    """A character split over byte-fallback tokens comes out whole, once."""
    with tl.Model(LIB, gpt2_learned()) as m:
        text = "漢🙂"
        ids = m.tokenize(text, add_bos=False)
        byte_ids = [i for i in ids if m.piece(i).startswith("<0x")]
        assert len(byte_ids) >= 4, "expected byte-fallback pieces"
        d = tl.Detok()
        LIB.tinyllm_detok_init(tl.C.byref(d), 1)
        buf = tl.C.create_string_buffer(64)
        outs = []
        for i in ids:
            n = LIB.tinyllm_detok_push(m.h, tl.C.byref(d), i, buf, 64, None)
            outs.append(buf.raw[:n])
        for o in outs:
            o.decode("utf-8")  # every chunk is valid UTF-8 on its own
        assert b"".join(outs) == text.encode()


# ---------------------------------------------------------------- models --

def _compare_logits(path, tokens):
    """Every position's logits against the reference, within its rounding
    spread (tests/tolerance.py)."""
    with tl.Model(LIB, path) as m, tl.Context(m, logits_all=True) as c:
        c.prefill(tokens)
        got = np.stack([c.logits_at(i) for i in range(len(tokens))])
    assert_matches_reference(path, tokens, got)


@test
def gpt2_learned_logits_match_reference():
    _compare_logits(gpt2_learned(), [1, 100, 200, 300, 7, 8, 9, 400, 33, 2, 5, 6])


@test
def gpt2_sinusoidal_logits_match_reference():
    _compare_logits(gpt2_sinusoidal(), [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130])


@test
def llama_gqa_logits_match_reference():
    _compare_logits(llama_gqa(), [1, 55, 66, 77, 88, 99, 111, 222, 333, 444])


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
    _compare_logits(path, toks)
    with tl.Model(LIB, path) as a, tl.Model(LIB, llama_gqa()) as b, tl.Context(a) as ca, tl.Context(b) as cb:
        assert_greedy_agree(path, toks, ca.greedy(toks, 8), cb.greedy(toks, 8))


@test
def austen_tiny_sinusoidal_logits_match_reference():
    with open(EXCERPT, encoding="utf-8") as f:
        text = f.read()[:300]
    with tl.Model(LIB, TINY_SIN) as m:
        toks = m.tokenize(text)[:m.info.n_ctx_train]
    _compare_logits(TINY_SIN, toks)


@test
def stories260k_greedy_matches_reference():
    """Greedy continuation of "Once upon a time", token for token (up to the
    reference's first near tie, if any)."""
    path = stories_gguf()
    prompt = reference.Model(path).tokenize("Once upon a time")
    assert prompt == [1, 403, 407, 261, 378]
    with tl.Model(LIB, path) as m, tl.Context(m) as c:
        got = c.greedy(prompt, 48)
    assert_greedy_matches(path, prompt, got, min_decisive=24)


@test
def stories260k_llamacpp_file_generates_same():
    """The llama.cpp-written GGUF of the same model gives the same greedy text."""
    need_shared()
    path = stories_gguf()
    with tl.Model(LIB, path) as m, tl.Context(m) as c:
        ours = c.greedy([1, 403, 407, 261, 378], 40)
    with tl.Model(LIB, os.path.join(STORIES, "stories260K.llamacpp.gguf")) as m, tl.Context(m) as c:
        theirs = c.greedy([1, 403, 407, 261, 378], 40)
    assert_greedy_agree(path, [1, 403, 407, 261, 378], ours, theirs, min_decisive=24)


def _prefill_vs_decode(path, tokens):
    with tl.Model(LIB, path) as m:
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
    with tl.Model(LIB, path) as m:
        toks = m.tokenize("Once upon a time, there was a little dog named Max. He liked to run.")
    _prefill_vs_decode(path, toks)


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
    with tl.Model(LIB, path) as m:
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
    _compare_logits(path, toks)
    with tl.Model(LIB, path) as m, tl.Context(m) as c:
        c.prefill(toks[:97])
        c.prefill(toks[97:])
        assert_matches_reference(path, toks, c.logits()[None, :], "split prefill")


@test
def keep_f16_matches_f32_expansion():
    """keep_f16 uses the file's F16 weights in place: the same values as the
    F32 expansion, so logits agree to float rounding (prefill with several
    conversion blocks, and decode), match the reference, and the weights take
    about half the memory. Greedy output follows the reference with 1 and 2
    threads."""
    toks = [1] + list(range(40, 80))
    for path in (llama_f16(), gpt2_f16()):
        n = min(len(toks), reference.Model(path).n_ctx)
        with tl.Model(LIB, path) as a, tl.Model(LIB, path, keep_f16=True) as b:
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
def one_and_two_threads_agree():
    """A model wide enough that the pool splits products by columns, attention
    by heads and norms/RoPE by rows: logits of a 280-token prefill match the
    reference and each other on 1 and 2 threads, and the greedy continuations
    (decode, split too) are identical."""
    path = llama_wide()
    rng = np.random.default_rng(9)
    toks = [1] + rng.integers(3, 512, 279).tolist()
    got, cont = {}, {}
    with tl.Model(LIB, path) as m:
        for n in (1, 2):
            with tl.Context(m, n_threads=n, logits_all=True) as c:
                c.prefill(toks)
                got[n] = np.stack([c.logits_at(i) for i in range(len(toks))])
            with tl.Context(m, n_threads=n) as c:
                cont[n] = c.greedy(toks, 24)
    for n in (1, 2):
        assert_matches_reference(path, toks, got[n], f"{n} thread(s)")
    assert_runs_agree(path, toks, got[1], got[2], "1 vs 2 threads")
    assert_greedy_agree(path, toks, cont[1], cont[2])


@test
def skip_tokenizer_runs_ids_only():
    """A model loaded with skip_tokenizer computes the same logits; its
    tokenizer functions fail with a clear error instead of crashing."""
    path = llama_gqa()
    toks = [1, 55, 66, 77, 88]
    with tl.Model(LIB, path) as a, tl.Model(LIB, path, skip_tokenizer=True) as b:
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
    with tl.Model(LIB, gpt2_learned()) as m, tl.Context(m, n_ctx=16) as c:
        c.prefill(list(range(1, 15)))
        c.decode(3)
        c.decode(4)
        try:
            c.decode(5)
        except tl.TinyLLMError as e:
            assert e.code == 7 and "do not fit" in str(e), str(e)
        else:
            raise AssertionError("decode past the context succeeded")
    with tl.Model(LIB, gpt2_learned()) as m:
        try:
            tl.Context(m, n_ctx=10000)
        except tl.TinyLLMError as e:
            assert "context_length" in str(e)
        else:
            raise AssertionError("a context past the learned position table was created")


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
             (["-m", path, "-p", "hi", "-n", "100", "--ctx", "40"], "exceeds the context"),
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
                   "tokenizer:     SentencePiece, 512 pieces", "tinyllm.position_encoding"]:
        assert needle in r.stdout, needle
    r = run([TINYLLM, "info", "--help"])
    assert r.returncode == 0 and "usage: tinyllm info" in r.stdout
    # the kernel set in use: the scalar set runs on every CPU, and forcing it works
    r = run([TINYLLM, "info", gpt2_sinusoidal()], env=dict(os.environ, TINYLLM_ISA="scalar"))
    assert "kernels:       scalar (forced by TINYLLM_ISA), sgemm: OpenBLAS " in r.stdout, r.stdout
    r = run([TINYLLM, "info", gpt2_sinusoidal()], env={k: v for k, v in os.environ.items() if k != "TINYLLM_ISA"})
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("kernels:"))
    assert line.split()[1] in ("avx512", "avx2", "scalar") and "widest" in line, line
    forced = os.environ.get("TINYLLM_ISA")
    with tl.Model(LIB, gpt2_sinusoidal()) as m:  # the library reports the same set
        if forced in (None, "scalar"):
            assert m.info.kernels.decode() == (forced or line.split()[1]), (m.info.kernels, line)
    # the weights' memory: F16 matrices expanded, or kept with --keep-f16
    mib = {}
    for flag in ([], ["--keep-f16"]):
        r = run([TINYLLM, "info", gpt2_f16()] + flag)
        line = next(ln for ln in r.stdout.splitlines() if ln.startswith("in memory:"))
        mib[bool(flag)] = float(line.split()[2])
        assert ("kept as stored" in line) == bool(flag), line
    # F16 halves every matrix; norm weights and biases stay F32 (a few percent)
    assert 0.45 < mib[True] / mib[False] < 0.6, mib


@test
def install_and_build_example_against_it():
    prefix = os.path.join(TMP, "prefix")
    r = run(["make", "-s", "install", f"PREFIX={prefix}", f"BUILD={BUILD}"], cwd=ROOT)
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
    flags = run(["pkg-config", "--cflags", "--libs", "tinyllm"], env=env)
    assert flags.returncode == 0, flags.stderr
    exe = os.path.join(TMP, "example")
    src = os.path.join(ROOT, "tests", "example", "example.c")
    extra = os.environ.get("TINYLLM_EXAMPLE_CFLAGS", "").split()
    r = run(["cc", "-std=c11", "-Wall", "-Wextra", *extra, "-o", exe, src, *flags.stdout.split()], env=env)
    assert r.returncode == 0, r.stderr
    # runs without LD_LIBRARY_PATH: the .pc's rpath finds the installed library by its SONAME
    clean_env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    r = run([exe, gpt2_learned(), "Hello"], env=clean_env)
    assert r.returncode == 0 and r.stdout.startswith("Hello"), (r.stdout, r.stderr)
    lib = os.path.join(prefix, "lib")
    assert os.readlink(os.path.join(lib, "libtinyllm.so")) == "libtinyllm.so.0", os.listdir(lib)
    soname = run(["readelf", "-d", os.path.join(lib, "libtinyllm.so")])
    assert "Library soname: [libtinyllm.so.0]" in soname.stdout, soname.stdout


@test
def python_bindings_match_the_header_layout():
    """Every struct the ctypes bindings mirror has the C compiler's size and
    field offsets (build/tests/struct_layout), so a header change that the
    bindings miss fails here instead of corrupting memory."""
    r = run([os.path.join(BUILD, "tests", "struct_layout")])
    assert r.returncode == 0, r.stderr
    layout = json.loads(r.stdout)
    mirrors = {"tinyllm_error": tl.Error, "tinyllm_model_params": tl.ModelParams,
               "tinyllm_context_params": tl.ContextParams, "tinyllm_model_info": tl.ModelInfo,
               "tinyllm_detok": tl.Detok}
    for name, cls in mirrors.items():
        c = layout[name]
        assert tl.C.sizeof(cls) == c["size"], (name, tl.C.sizeof(cls), c["size"])
        py_fields = [f[0] for f in cls._fields_]
        assert py_fields == list(c["fields"]), (name, py_fields, list(c["fields"]))
        for field, offset in c["fields"].items():
            assert getattr(cls, field).offset == offset, (name, field, getattr(cls, field).offset, offset)


@test
def shared_library_exports_the_api_only():
    """nm -D lists tinyllm_* symbols only (no internals, no C++ template
    instances); the version is the header's."""
    r = run(["nm", "-D", "--defined-only", os.path.join(BUILD, "libtinyllm.so")])
    assert r.returncode == 0, r.stderr
    names = [ln.split()[-1] for ln in r.stdout.splitlines() if ln.strip()]
    assert names and all(n.startswith("tinyllm_") for n in names), [n for n in names if not n.startswith("tinyllm_")]
    with open(os.path.join(ROOT, "include", "tinyllm.h")) as f:
        header = f.read()
    import re
    declared = set(re.findall(r"TINYLLM_API [^;]*?\b(tinyllm_\w+)\(", header))
    assert declared == set(names), (declared ^ set(names))
    LIB.tinyllm_version.restype = tl.C.c_char_p
    parts = [re.search(rf"#define TINYLLM_VERSION_{p} (\d+)", header).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    assert LIB.tinyllm_version().decode() == ".".join(parts)


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
def perplexity_definition_matches_reference():
    """Sliding windows score every token once: the engine's NLL equals the
    numpy reference's on a short text with overlapping windows."""
    path = os.path.join(TMP, "short.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
                "must be in want of a wife.\n")
    ref = reference.Model(TINY_SIN)
    toks = ref.tokenize(open(path, encoding="utf-8").read())
    ctx, stride = 16, 5
    total, scored_upto, start = 0.0, 1, 0
    while True:
        end = min(start + ctx, len(toks))
        logits = ref.forward(toks[start:end])
        for t in range(max(scored_upto, start + 1), end):
            row = logits[t - start - 1]
            total += np.log(np.exp(row - row.max()).sum()) + row.max() - row[toks[t]]
        scored_upto = end
        if end == len(toks):
            break
        start += stride
    nll, _ = _perplexity(TINY_SIN, path, ctx, stride)
    # each token's NLL moves by at most twice the largest logit error
    spread = max(logits_and_spread(TINY_SIN, toks[s:s + ctx])[1] for s in range(0, len(toks), stride))
    assert_within(nll, total / (len(toks) - 1), 2 * spread, "nll/token")


# ---------------------------------------------------------------- verify --

GOLDEN = os.path.join(ROOT, "tests", "golden")
GOLDEN_MODELS = [("gpt2-learned-tiny", lambda: os.path.join(ROOT, "tests", "models", "gpt2-learned-tiny.gguf")),
                 ("austen-tiny-sin", lambda: TINY_SIN), ("stories260K", stories_gguf),
                 ("austen", lambda: os.path.join(ROOT, "models", "austen.gguf"))]


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
def verify_default_model_with_keep_f16():
    """The default model stores F16 matrices; used in place (--keep-f16) it
    passes its golden at the same per-tap tolerances as the F32 expansion."""
    model = os.path.join(ROOT, "models", "austen.gguf")
    r = run([TINYLLM, "verify", "-m", model, "--golden", os.path.join(GOLDEN, "austen.tlg"), "--keep-f16"])
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
