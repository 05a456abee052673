#!/usr/bin/python3
"""Converts a llama2.c checkpoint (legacy float32 .bin) and its SentencePiece
tokenizer into a GGUF v3 file of architecture `llama`.

Usage: tools/convert_llama2c.py CHECKPOINT.bin TOKENIZER.model OUT.gguf

Format of the .bin (llama2.c's legacy version 0): a header of seven int32
(dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size -- negative when
the classifier is not shared --, seq_len), then the float32 weights. llama2.c stores
q/k weights with RoPE pairs adjacent (x[2i], x[2i+1]), the same convention
GGUF `llama` files use, so no permutation is needed.
"""
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402
import safe_io  # noqa: E402
from safe_io import printable  # noqa: E402


def fail(msg):
    raise safe_io.ToolError(msg)


def read_checkpoint(path):
    raw = safe_io.read_input(path, "checkpoint")  # a FIFO or device is refused, never read
    path = printable(path)
    if len(raw) < 28:
        fail(f"{path}: {len(raw)} bytes is too short for a llama2.c checkpoint (expected a 28-byte header)")
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    if min(dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len) <= 0 or dim % n_heads or n_heads % n_kv_heads:
        fail(f"{path}: implausible header {dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len}")
    head = dim // n_heads
    kv_dim = dim * n_kv_heads // n_heads
    data = np.frombuffer(raw, dtype="<f4", offset=28)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        if pos + n > data.size:
            fail(f"{path}: truncated (weights end at float {data.size}, needed {pos + n})")
        a = data[pos:pos + n].reshape(shape)
        pos += n
        return a

    w = {"tok": take(vocab, dim), "rms_att": take(n_layers, dim), "wq": take(n_layers, dim, dim),
         "wk": take(n_layers, kv_dim, dim), "wv": take(n_layers, kv_dim, dim), "wo": take(n_layers, dim, dim),
         "rms_ffn": take(n_layers, dim), "w1": take(n_layers, hidden, dim), "w2": take(n_layers, dim, hidden),
         "w3": take(n_layers, hidden, dim), "rms_final": take(dim)}
    take(seq_len * head // 2)  # freq_cis_real (unused: RoPE is recomputed)
    take(seq_len * head // 2)  # freq_cis_imag
    if not shared:
        w["wcls"] = take(vocab, dim)
    if pos != data.size:
        fail(f"{path}: {data.size - pos} floats left over after the weights (expected none)")
    hp = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads, n_kv_heads=n_kv_heads, vocab=vocab,
              seq_len=seq_len)
    return hp, w


def main():
    if len(sys.argv) != 4 or sys.argv[1] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        sys.exit(0 if sys.argv[1:] in (["-h"], ["--help"]) else 2)
    ckpt, tok_model, out = sys.argv[1:]
    hp, w = read_checkpoint(ckpt)
    weights = {"token_embd.weight": w["tok"]}
    for i in range(hp["n_layers"]):
        p = f"blk.{i}."
        weights[p + "attn_norm.weight"] = w["rms_att"][i]
        weights[p + "attn_q.weight"] = w["wq"][i]
        weights[p + "attn_k.weight"] = w["wk"][i]
        weights[p + "attn_v.weight"] = w["wv"][i]
        weights[p + "attn_output.weight"] = w["wo"][i]
        weights[p + "ffn_norm.weight"] = w["rms_ffn"][i]
        weights[p + "ffn_gate.weight"] = w["w1"][i]
        weights[p + "ffn_down.weight"] = w["w2"][i]
        weights[p + "ffn_up.weight"] = w["w3"][i]
    weights["output_norm.weight"] = w["rms_final"]
    if "wcls" in w:
        weights["output.weight"] = w["wcls"]
    gguf_hp = {"n_vocab": hp["vocab"], "n_ctx": hp["seq_len"], "n_embd": hp["dim"], "n_layer": hp["n_layers"],
               "n_head": hp["n_heads"], "n_head_kv": hp["n_kv_heads"], "n_ff": hp["hidden"], "eps": 1e-5,
               "rope_theta": 10000.0}
    name = os.path.splitext(os.path.basename(ckpt))[0]
    try:  # written beside OUT and renamed over it only when whole (safe_io.write_file)
        gw.write_llama(out, gguf_hp, weights, tok_model, gw.GGML_F32, name, inputs=(ckpt, tok_model))
    except ValueError as e:
        fail(str(e))


if __name__ == "__main__":
    safe_io.main_guard("convert_llama2c", main)
