#!/usr/bin/python3
"""GGUF reading and writing: every key and tensor type round trip between
the Python writer and the C reader, quantized blocks, the bound weights.

Prints one PASS/FAIL/SKIP line per test. Usage: test_gguf.py [NAME_SUBSTRING ...]
"""
import json
import os

import numpy as np

from harness import BUILD, SP512, TINYLLM, Suite
from fixtures import LIB, gpt2_f16, run, synthetic, compare_logits
import gguf_writer as gw
import tinyllm_py as tl
from tolerance import assert_matches_reference

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
    with tl.Model(LIB, path) as m, tl.Context(m) as c:
        c.prefill([5])
        assert_matches_reference(path, [5], c.logits()[None, :])


if __name__ == "__main__":
    SUITE.main()
