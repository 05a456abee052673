#!/usr/bin/python3
"""Writes a golden file (docs/golden-format.md) from the independent numpy
reference: every tap of a prefill of PROMPT, the logits, and N greedy tokens.

Usage: tools/golden.py MODEL.gguf --prompt TEXT [-n 16] --out FILE.tlg [--tolerances]

--tolerances writes format version 2: each tap carries the tolerance a
correct float32 engine stays within (the reference's rounding spread for the
tap, which for Q8_0/Q4_0 models includes the quantized activations, plus the
float32 rounding of the stored golden value), and the count of leading
continuation tokens that are decisive (the reference's top two logits more
than twice the spread apart). Quantized models need it: their decode path
is within its derived tolerance, not within verify's float32 defaults.
"""
import argparse
import hashlib
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402
import safe_io  # noqa: E402

MAGIC = b"TLGOLD\0\0"
VERSION = 1


def write_golden(path, model_path, prompt, prompt_ids, cont_ids, taps, tolerances=None, n_decisive=None):
    """tolerances: {tap name: float} (format version 2, with n_decisive), or None (version 1)."""
    sha = hashlib.sha256(safe_io.read_input(model_path, "model")).hexdigest().encode()
    out = bytearray(MAGIC + struct.pack("<II", 2 if tolerances is not None else VERSION, 0) + sha)
    p = prompt.encode("utf-8")
    out += struct.pack("<I", len(p)) + p
    out += struct.pack("<I", len(prompt_ids)) + np.asarray(prompt_ids, dtype="<i4").tobytes()
    out += struct.pack("<I", len(cont_ids)) + np.asarray(cont_ids, dtype="<i4").tobytes()
    if tolerances is not None:
        out += struct.pack("<I", n_decisive)
    out += struct.pack("<I", len(taps))
    for name, arr in taps.items():
        n = name.encode()
        out += struct.pack("<I", len(n)) + n + struct.pack("<I", arr.ndim)
        out += struct.pack(f"<{arr.ndim}Q", *arr.shape)
        out += np.ascontiguousarray(arr, dtype="<f4").tobytes()
        if tolerances is not None:
            out += struct.pack("<d", tolerances[name])
    safe_io.write_file(path, bytes(out), inputs=(model_path,))


def read_golden(path):
    """For tests: (sha, prompt, prompt_ids, cont_ids, {name: array})."""
    raw = open(path, "rb").read()
    assert raw[:8] == MAGIC
    version = struct.unpack_from("<I", raw, 8)[0]
    pos = 16
    sha = raw[pos:pos + 64].decode()
    pos += 64

    def u32():
        nonlocal pos
        v = struct.unpack_from("<I", raw, pos)[0]
        pos += 4
        return v

    n = u32()
    prompt = raw[pos:pos + n].decode()
    pos += n
    n = u32()
    pids = list(np.frombuffer(raw, "<i4", n, pos))
    pos += 4 * n
    n = u32()
    cids = list(np.frombuffer(raw, "<i4", n, pos))
    pos += 4 * n
    if version == 2:
        u32()  # the decisive count
    taps = {}
    for _ in range(u32()):
        n = u32()
        name = raw[pos:pos + n].decode()
        pos += n
        nd = u32()
        dims = struct.unpack_from(f"<{nd}Q", raw, pos)
        pos += 8 * nd
        cnt = int(np.prod(dims))
        taps[name] = np.frombuffer(raw, "<f4", cnt, pos).reshape(dims)
        pos += 4 * cnt + (8 if version == 2 else 0)  # version 2: the tap's tolerance
    return sha, prompt, pids, cids, taps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--prompt", required=True)
    ap.add_argument("-n", type=int, default=16)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tolerances", action="store_true", help="format 2: per-tap derived tolerances")
    a = ap.parse_args()
    m = reference.Model(a.model)
    ids = m.tokenize(a.prompt)
    taps = {}
    m.forward(ids, taps)
    cont = m.greedy(ids, a.n)
    tolerances = n_decisive = None
    if a.tolerances:
        spreads = {}
        m.rounding_spread(ids, taps=spreads)
        # the golden holds float32 values: their own rounding (u |value|) on top
        tolerances = {name: spreads.get(name, 0.0) + 2.0 ** -23 * float(np.max(np.abs(v[np.isfinite(v)]), initial=0))
                      for name, v in taps.items()}
        full = ids + cont[:-1]
        exact, spread = m.rounding_spread(full)
        n_decisive = 0
        for i in range(len(cont)):
            top2 = np.sort(exact[len(ids) - 1 + i])[-2:]
            if top2[1] - top2[0] <= 2 * spread:
                break
            n_decisive += 1
    write_golden(a.out, a.model, a.prompt, ids, cont, taps, tolerances, n_decisive)
    print(f"{a.out}: {len(ids)} prompt tokens, {len(taps)} taps, {len(cont)} continuation tokens"
          + (f" ({n_decisive} decisive)" if n_decisive is not None else ""), file=sys.stderr)


if __name__ == "__main__":
    safe_io.main_guard("golden", main)
