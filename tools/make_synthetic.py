#!/usr/bin/python3
"""Writes a model with random weights (small normal values) through the GGUF
writer, for tests and benchmarks.

  make_synthetic.py OUT.gguf --arch gpt2|llama [--positions learned|sinusoidal]
      [--dim 64 --layers 2 --heads 4 --kv-heads 2 --ff 128 --vocab 512 --ctx 64]
      [--dtype f32|f16] [--tokenizer FILE.model] [--seed 0] [--std 0.02]
  make_synthetic.py OUT.gguf --preset llama-15m|llama-42m|llama-110m|gpt2-small

Without --tokenizer the file gets a synthetic SentencePiece-style vocabulary
(no .model bytes), which the engine rebuilds from the arrays.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw
import quants_reference as qr  # noqa: E402

# The TinyStories checkpoints' shapes (llama2.c) and GPT-2 small.
PRESETS = {
    "llama-15m": dict(arch="llama", dim=288, ff=768, layers=6, heads=6, kv_heads=6, vocab=32000, ctx=256),
    "llama-42m": dict(arch="llama", dim=512, ff=1376, layers=8, heads=8, kv_heads=8, vocab=32000, ctx=1024),
    "llama-110m": dict(arch="llama", dim=768, ff=2048, layers=12, heads=12, kv_heads=12, vocab=32000, ctx=1024),
    # TinyLlama-1.1B's shape: the one here that does not fit in cache
    "llama-1.1b": dict(arch="llama", dim=2048, ff=5632, layers=22, heads=32, kv_heads=4, vocab=32000, ctx=2048,
                       dtype="f16"),
    "gpt2-small": dict(arch="gpt2", dim=768, ff=3072, layers=12, heads=12, kv_heads=12, vocab=50257, ctx=1024,
                       output_copy=True),
}


def random_matrices(a, w, rng, gtype):
    """With --random-blocks, every matrix becomes random blocks of that type
    (standard deviation as its float values'); returns the file's type."""
    if not a.random_blocks:
        return gtype
    t = {v: k for k, v in qr.NAMES.items()}[a.random_blocks]
    for name, arr in w.items():
        if arr.ndim == 2:
            w[name] = gw.random_blocks(arr.shape, t, rng, float(np.std(arr)))
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--arch", choices=["llama", "gpt2", "qwen2"], default="gpt2",
                    help="qwen2: llama's block with q/k/v biases and the rotate-half RoPE")
    ap.add_argument("--positions", choices=["learned", "sinusoidal"], default="learned")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=0, help="llama: key/value heads (default: --heads)")
    ap.add_argument("--ff", type=int, default=0, help="default 4*dim (gpt2) or 3*dim (llama)")
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--ctx", type=int, default=64)
    ap.add_argument("--dtype", choices=["f32", "f16", "q8_0", "q4_0"], default="f32",
                    help="type of the weight matrices (norms and biases stay F32)")
    ap.add_argument("--random-blocks", metavar="TYPE", choices=[n for n in qr.NAMES.values() if n not in ("F32", "F16")],
                    help="matrices stored as random blocks of TYPE (Q4_K, BF16, ...) whose values have about the "
                         "size --dtype's would: test data for the weight formats (overrides --dtype)")
    ap.add_argument("--tokenizer", help="SentencePiece .model to embed (its size sets --vocab)")
    ap.add_argument("--gpt2-tokenizer", metavar="DIR",
                    help="a byte-level BPE vocabulary from OpenAI's GPT-2 files DIR/encoder.json and DIR/vocab.bpe "
                         "(its size sets --vocab)")
    ap.add_argument("--pre", default="gpt-2", help="with --gpt2-tokenizer: the pre-tokenizer name (default gpt-2)")
    ap.add_argument("--no-bias", action="store_true", help="gpt2: no bias tensors (nanoGPT's bias=False)")
    ap.add_argument("--gelu", choices=["tanh", "erf"], default="tanh",
                    help="gpt2: GELU form (tanh: GPT-2's approximation; erf: exact, nanoGPT's)")
    ap.add_argument("--output-copy", action="store_true",
                    help="gpt2: also store the tied embedding as output.weight (llama.cpp's GPT-2 loader needs it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--std", type=float, default=0.02)
    ap.add_argument("--qk-scale", type=float, default=1.0,
                    help="scale query/key weights (large values give large attention logits)")
    a = ap.parse_args()
    if a.preset:
        for k, v in PRESETS[a.preset].items():
            setattr(a, k, v)
    if a.gpt2_tokenizer:
        a.tokenizer = gw.BPETokenizer.from_openai(os.path.join(a.gpt2_tokenizer, "encoder.json"),
                                                  os.path.join(a.gpt2_tokenizer, "vocab.bpe"), a.pre)
        a.vocab = len(a.tokenizer.tokens)
    elif a.tokenizer:
        import sentencepiece as spm
        a.vocab = spm.SentencePieceProcessor(model_file=a.tokenizer).get_piece_size()
    a.kv_heads = a.kv_heads or a.heads
    a.ff = a.ff or (4 * a.dim if a.arch == "gpt2" else 3 * a.dim)
    rng = np.random.default_rng(a.seed)

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols), dtype=np.float32) * a.std)

    def vec(n, center=0.0, spread=0.1):
        return (center + rng.standard_normal(n, dtype=np.float32) * spread)

    gtype = {"f32": gw.GGML_F32, "f16": gw.GGML_F16, "q8_0": gw.GGML_Q8_0, "q4_0": gw.GGML_Q4_0}[a.dtype]
    d, kv = a.dim, a.dim // a.heads * a.kv_heads
    w = {"token_embd.weight": mat(a.vocab, d) * 25}  # embeddings of order 0.5
    if a.arch in ("llama", "qwen2"):
        for i in range(a.layers):
            p = f"blk.{i}."
            w[p + "attn_norm.weight"] = vec(d, 1.0)
            w[p + "attn_q.weight"] = mat(d, d) * 5 * a.qk_scale
            w[p + "attn_k.weight"] = mat(kv, d) * 5 * a.qk_scale
            w[p + "attn_v.weight"] = mat(kv, d) * 5
            w[p + "attn_output.weight"] = mat(d, d) * 5
            w[p + "ffn_norm.weight"] = vec(d, 1.0)
            w[p + "ffn_gate.weight"] = mat(a.ff, d) * 5
            w[p + "ffn_up.weight"] = mat(a.ff, d) * 5
            w[p + "ffn_down.weight"] = mat(d, a.ff) * 5
            if a.arch == "qwen2":
                w[p + "attn_q.bias"], w[p + "attn_k.bias"], w[p + "attn_v.bias"] = vec(d), vec(kv), vec(kv)
        w["output_norm.weight"] = vec(d, 1.0)
        hp = {"n_vocab": a.vocab, "n_ctx": a.ctx, "n_embd": d, "n_layer": a.layers, "n_head": a.heads,
              "n_head_kv": a.kv_heads, "n_ff": a.ff, "eps": 1e-5, "rope_theta": 10000.0}
        gtype = random_matrices(a, w, rng, gtype)
        gw.write_llama(a.out, hp, w, a.tokenizer, gtype, f"synthetic-{a.arch}-{a.preset or 'custom'}", arch=a.arch)
    else:
        if a.positions == "learned":
            w["position_embd.weight"] = mat(a.ctx, d) * 10
        for i in range(a.layers):
            p = f"blk.{i}."
            w[p + "attn_norm.weight"] = vec(d, 1.0)
            w[p + "attn_norm.bias"] = vec(d)
            w[p + "attn_qkv.weight"] = mat(3 * d, d) * 5
            w[p + "attn_qkv.weight"][:2 * d] *= a.qk_scale
            w[p + "attn_qkv.bias"] = vec(3 * d)
            w[p + "attn_output.weight"] = mat(d, d) * 5
            w[p + "attn_output.bias"] = vec(d)
            w[p + "ffn_norm.weight"] = vec(d, 1.0)
            w[p + "ffn_norm.bias"] = vec(d)
            w[p + "ffn_up.weight"] = mat(a.ff, d) * 5
            w[p + "ffn_up.bias"] = vec(a.ff)
            w[p + "ffn_down.weight"] = mat(d, a.ff) * 5
            w[p + "ffn_down.bias"] = vec(d)
        w["output_norm.weight"] = vec(d, 1.0)
        w["output_norm.bias"] = vec(d)
        if a.no_bias:
            w = {k: v for k, v in w.items() if not k.endswith(".bias")}
        hp = {"n_vocab": a.vocab, "n_ctx": a.ctx, "n_embd": d, "n_layer": a.layers, "n_head": a.heads,
              "n_ff": a.ff, "eps": 1e-5, "positions": a.positions, "gelu": a.gelu}
        gtype = random_matrices(a, w, rng, gtype)
        gw.write_gpt2(a.out, hp, w, a.tokenizer, gtype, f"synthetic-gpt2-{a.preset or a.positions}",
                      write_output=a.output_copy)


if __name__ == "__main__":
    main()
