#!/usr/bin/python3
"""GGUF reading and writing: every key and tensor type round trip between
the Python writer and the C reader, quantized blocks, the bound weights.

Prints one PASS/FAIL/SKIP line per test. Usage: test_gguf.py [NAME_SUBSTRING ...]
"""
import json
import os
import subprocess

import numpy as np

from harness import BUILD, SHARED, SP512, TINYLLM, Skip, Suite
from fixtures import LIB, gpt2_f16, gpt2_learned, llama_gqa, run, stories_gguf, synthetic, compare_logits
import gguf_reader
import gguf_writer as gw
import tinyllm as tl
from tolerance import assert_matches_reference, assert_within, logits_and_spread

SUITE = Suite("gguf")
test = SUITE.test
TMP = SUITE.tmp


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
        compare_logits(path, [1, 20, 30, 40, 50, 60, 70])


@test
def gguf_model_tensors_equal_reference_reader():
    """Weights bound by the C model equal what the Python reader decodes:
    checked through logits of a one-token prompt per embedding row."""
    path = gpt2_f16()
    with tl.Model(path) as m, tl.Context(m) as c:
        c.prefill([5])
        assert_matches_reference(path, [5], c.logits()[None, :])


# ------------------------------------------------------- tinyllm quantize --

LLAMA_CLI = os.path.join(SHARED, "peers", "llama.cpp", "llama-cli")


def quantize(src, fmt):
    out = os.path.join(TMP, os.path.basename(src).replace(".gguf", f"-{fmt}.gguf"))
    r = run([TINYLLM, "quantize", src, out, fmt])
    assert r.returncode == 0, r.stderr
    return out


def expected_values(a, fmt):
    """What the Python writer's own quantizers make of float32 values a,
    decoded by the reference reader."""
    if fmt == "f32":
        return a
    if fmt == "f16":
        return a.astype(np.float16).astype(np.float32)
    gtype = {"q8_0": gw.GGML_Q8_0, "q4_0": gw.GGML_Q4_0}[fmt]
    raw = gw._QUANTIZE[gtype](a)
    return gguf_reader._dequant(gtype, raw, a.size).reshape(a.shape)


@test
def quantize_round_trip():
    """tinyllm quantize IN OUT q8_0|q4_0|f16|f32 (the other formats:
    tests/test_formats.py) on F32 models (gpt2 with
    biases and learned positions, llama with GQA): every matrix decodes to
    exactly what the Python writer's quantizers make of the source (the
    reference reader decodes both); norms, biases and positions stay F32
    and equal; every metadata key is copied (general.file_type set,
    general.quantization_version added for quantized files); the new file's
    logits match the reference."""
    file_types = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7}
    for src in (gpt2_learned(), llama_gqa()):
        g = gguf_reader.GGUFFile(src)
        for fmt in ("q8_0", "q4_0", "f16", "f32"):
            out = quantize(src, fmt)
            q = gguf_reader.GGUFFile(out)
            assert q.kv["general.file_type"] == file_types[fmt], (fmt, q.kv["general.file_type"])
            for k, v in g.kv.items():
                if k != "general.file_type":
                    assert np.array_equal(np.asarray(q.kv[k]), np.asarray(v)), (fmt, k)
            extra = set(q.kv) - set(g.kv)
            assert extra == ({"general.quantization_version"} if fmt.startswith("q") else set()), extra
            assert list(q.tensors) == list(g.tensors)
            for name in g.tensors:
                a = g.tensor(name)
                matrix = a.ndim == 2 and name != "position_embd.weight"
                as_fmt = "f16" if fmt.startswith("q") and a.shape[-1] % 32 else fmt  # rows not whole blocks
                want_type = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 8}[as_fmt] if matrix else 0
                assert q.tensors[name][1] == want_type, (fmt, name, q.tensors[name][1])
                want = expected_values(a, as_fmt) if matrix else a
                assert np.array_equal(q.tensor(name), want), (fmt, name)
            with tl.Model(out) as m:
                toks = [1] + list(range(40, 52))
                with tl.Context(m, logits_all=True) as c:
                    c.prefill(toks)
                    got = np.stack([c.logits_at(i) for i in range(len(toks))])
            assert_matches_reference(out, toks, got, f"{os.path.basename(out)}")


@test
def quantize_stories260k_q8_0_follows_reference():
    """The real checkpoint in Q8_0 (rows of 64 and 172 values: the FFN
    down-projection's 172 are not whole blocks and stay F16), decoded token
    by token (the quantized-activation path): every position's logits within
    the reference's spread on the quantized file, and the predicted next
    token equal wherever the reference's top two are more than two spreads
    apart (at least 8 such positions, so the check bites)."""
    out = quantize(stories_gguf(), "q8_0")
    q = gguf_reader.GGUFFile(out)
    assert q.tensors["blk.0.attn_q.weight"][1] == 8 and q.tensors["blk.0.ffn_down.weight"][1] == 1
    with tl.Model(out) as m:
        toks = m.tokenize("Once upon a time, there was a little girl named Lily. She loved to play outside in the "
                          "sunshine. One day, she saw a big, red ball in the park.")
        with tl.Context(m) as c:
            got = []
            for t in toks:
                c.decode(t)
                got.append(c.logits())
    got = np.stack(got)
    want, spread = logits_and_spread(out, toks)
    assert_within(got, want, spread, "stories260K q8_0 decode")
    top2 = np.sort(want, axis=1)[:, -2:]
    decisive = top2[:, 1] - top2[:, 0] > 2 * spread
    assert decisive.sum() >= 8, f"only {decisive.sum()} decisive positions"
    assert np.array_equal(got.argmax(axis=1)[decisive], want.argmax(axis=1)[decisive])


@test
def quantize_refusals():
    """Bad arguments: exit 2 with one line; an unreadable input: exit 1; no
    file left behind."""
    out = os.path.join(TMP, "refused.gguf")
    for args, code, words in (([gpt2_f16(), out, "q3_k"], 2, ["q3_k", "expected f32, f16, bf16"]),
                              ([gpt2_f16(), out], 2, ["expected IN.gguf OUT.gguf FORMAT"]),
                              ([gpt2_f16(), gpt2_f16(), "q8_0"], 2, ["another file"]),
                              ([os.path.join(TMP, "absent.gguf"), out, "q8_0"], 1, ["absent.gguf", "cannot open"])):
        r = run([TINYLLM, "quantize", *args])
        assert r.returncode == code, (args, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tinyllm quantize: "), r.stderr
        assert all(w in lines[0] for w in words), (words, lines[0])
        assert not os.path.exists(out) and not os.path.exists(out + ".part")


@test
def quantized_files_load_in_llama_cpp():
    """Q8_0 and Q4_0 files written by tinyllm quantize run in llama.cpp's
    llama-cli (the peer in ../shared; skipped when absent)."""
    if not os.access(LLAMA_CLI, os.X_OK):
        raise Skip(f"{LLAMA_CLI} is absent")
    for fmt in ("q8_0", "q4_0"):
        out = quantize(llama_gqa(), fmt)
        r = run([LLAMA_CLI, "-m", out, "-p", "It is", "-n", "8", "--temp", "0", "-no-cnv", "--no-warmup",
                 "-t", "1"], stdin=subprocess.DEVNULL, timeout=120)
        assert r.returncode == 0 and "It is" in r.stdout, (fmt, r.returncode, r.stderr[-400:])


if __name__ == "__main__":
    SUITE.main()
