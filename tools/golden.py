#!/usr/bin/python3
"""Writes a golden file (docs/golden-format.md) from the independent numpy
reference: every tap of a prefill of PROMPT, the logits, and N greedy tokens.

Usage: tools/golden.py MODEL.gguf --prompt TEXT [-n 16] --out FILE.tlg
"""
import argparse
import hashlib
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402

MAGIC = b"TLGOLD\0\0"
VERSION = 1


def write_golden(path, model_path, prompt, prompt_ids, cont_ids, taps):
    with open(model_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest().encode()
    out = bytearray(MAGIC + struct.pack("<II", VERSION, 0) + sha)
    p = prompt.encode("utf-8")
    out += struct.pack("<I", len(p)) + p
    out += struct.pack("<I", len(prompt_ids)) + np.asarray(prompt_ids, dtype="<i4").tobytes()
    out += struct.pack("<I", len(cont_ids)) + np.asarray(cont_ids, dtype="<i4").tobytes()
    out += struct.pack("<I", len(taps))
    for name, arr in taps.items():
        n = name.encode()
        out += struct.pack("<I", len(n)) + n + struct.pack("<I", arr.ndim)
        out += struct.pack(f"<{arr.ndim}Q", *arr.shape)
        out += np.ascontiguousarray(arr, dtype="<f4").tobytes()
    with open(path, "wb") as f:
        f.write(out)


def read_golden(path):
    """For tests: (sha, prompt, prompt_ids, cont_ids, {name: array})."""
    raw = open(path, "rb").read()
    assert raw[:8] == MAGIC
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
        pos += 4 * cnt
    return sha, prompt, pids, cids, taps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--prompt", required=True)
    ap.add_argument("-n", type=int, default=16)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    m = reference.Model(a.model)
    ids = m.tokenize(a.prompt)
    taps = {}
    m.forward(ids, taps)
    cont = m.greedy(ids, a.n)
    write_golden(a.out, a.model, a.prompt, ids, cont, taps)
    print(f"{a.out}: {len(ids)} prompt tokens, {len(taps)} taps, {len(cont)} continuation tokens", file=sys.stderr)


if __name__ == "__main__":
    main()
