"""The smallest valid model the error tests break one field of at a time
(shared by test_errors.py and test_hostile.py)."""
import numpy as np

import gguf_writer as gw


def micro_writer(drop_key=None, key_override=None, vocab=260, tokens_vocab=None, arch="gpt2", extra=None,
                 nan=False, shape_bug=False, poke=None, ctx=8, extra_keys=(), tokenizer_model=None,
                 learned=True, dim=8):
    """A tiny valid gpt2 model (dim 8, 1 layer, synthetic vocabulary),
    with one thing optionally broken. extra_keys: (key, "s"|"u"|"f", value)
    added; tokenizer_model replaces tokenizer.ggml.model."""
    rng = np.random.default_rng(0)
    d, ff = dim, 2 * dim
    w = gw.GGUFWriter()
    keys = [("general.architecture", "s", arch), ("gpt2.context_length", "u", ctx), ("gpt2.embedding_length", "u", d),
            ("gpt2.block_count", "u", 1), ("gpt2.feed_forward_length", "u", ff),
            ("gpt2.attention.head_count", "u", 2), ("gpt2.attention.layer_norm_epsilon", "f", 1e-5)]
    for key, kind, val in keys:
        if key == drop_key:
            continue
        if key_override and key == key_override[0]:
            kind, val = key_override[1], key_override[2]
        {"s": w.add_string, "u": w.add_u32, "f": w.add_f32}[kind](key, val)
    for key, kind, val in extra_keys:
        {"s": w.add_string, "u": w.add_u32, "f": w.add_f32}[kind](key, val)
    gw.add_synthetic_tokenizer(w, tokens_vocab or vocab)
    if tokenizer_model is not None:
        w.kv = [(k, t, gw._string(tokenizer_model) if k == "tokenizer.ggml.model" else p) for k, t, p in w.kv]
    pos = {"position_embd.weight": rng.standard_normal((ctx, d))} if learned else {}
    t = {"token_embd.weight": rng.standard_normal((vocab, d)), **pos,
         "blk.0.attn_norm.weight": np.ones(d), "blk.0.attn_norm.bias": np.zeros(d),
         "blk.0.attn_qkv.weight": rng.standard_normal((3 * d, d)), "blk.0.attn_qkv.bias": np.zeros(3 * d),
         "blk.0.attn_output.weight": rng.standard_normal((d, d)), "blk.0.attn_output.bias": np.zeros(d),
         "blk.0.ffn_norm.weight": np.ones(d), "blk.0.ffn_norm.bias": np.zeros(d),
         "blk.0.ffn_up.weight": rng.standard_normal((ff, d)), "blk.0.ffn_up.bias": np.zeros(ff),
         "blk.0.ffn_down.weight": rng.standard_normal((d, ff)), "blk.0.ffn_down.bias": np.zeros(d),
         "output_norm.weight": np.ones(d), "output_norm.bias": np.zeros(d)}
    if nan:
        t["blk.0.ffn_up.weight"][3, 5] = np.nan
    if shape_bug:
        t["blk.0.ffn_up.weight"] = rng.standard_normal((ff + 1, d))
    if poke:  # (tensor, index, value): one weight set to a hostile value
        t[poke[0]][poke[1]] = poke[2]
    for name, arr in t.items():
        w.add_tensor(name, arr)
    for name, arr in (extra or {}).items():
        w.add_tensor(name, arr)
    return w
