#!/usr/bin/python3
"""A nanoGPT checkpoint written with PyTorch in the layout of nanoGPT's
train.py, and that model's forward pass in PyTorch (float64) written from
the architecture's definition: token + learned position embeddings; per
block x += attn(ln_1(x)), x += mlp(ln_2(x)) with causal multi-head attention
from one q|k|v projection and mlp = c_proj(gelu(c_fc(x))) (exact GELU, as
nn.GELU()); ln_f; logits = x @ wte^T (lm_head tied to wte).

Runs in its own process (test_convert.py starts it) so PyTorch never loads
into the test process.

Usage: nanogpt_torch.py SPEC.json OUT_DIR
SPEC: chars (the vocabulary, in id order), n_layer, n_head, n_embd,
block_size, bias, vocab_size (>= len(chars)), seed, compiled (prefix the
state dict with _orig_mod.), meta ("beside": OUT_DIR/meta.pkl; "dataset":
OUT_DIR/data/<dataset>/meta.pkl with the checkpoint in OUT_DIR/out/),
prompt, n_greedy.
Writes the checkpoint and meta.pkl, and OUT_DIR/expected.npz: logits
(T, vocab) of the prompt, greedy (n_greedy continuation ids) and
greedy_logits (the logits each greedy step chose from).
"""
import json
import math
import os
import pickle
import sys

import numpy as np
import torch
import torch.nn.functional as F


def random_state(spec):
    """Random weights named and shaped as nanoGPT's GPT.state_dict(); scales
    chosen so logits are far from uniform (greedy tokens are decisive)."""
    g = torch.Generator().manual_seed(spec["seed"])
    e, v, n_ctx = spec["n_embd"], spec["vocab_size"], spec["block_size"]

    def mat(rows, cols, scale=1.0):
        return torch.randn(rows, cols, generator=g) * (scale / math.sqrt(cols))

    def vec(n, center=0.0):
        return center + 0.1 * torch.randn(n, generator=g)

    s = {"transformer.wte.weight": torch.randn(v, e, generator=g),
         "transformer.wpe.weight": 0.5 * torch.randn(n_ctx, e, generator=g)}
    for i in range(spec["n_layer"]):
        p = f"transformer.h.{i}."
        s[p + "ln_1.weight"] = vec(e, 1.0)
        s[p + "attn.c_attn.weight"] = mat(3 * e, e, 2.0)
        s[p + "attn.c_proj.weight"] = mat(e, e)
        s[p + "ln_2.weight"] = vec(e, 1.0)
        s[p + "mlp.c_fc.weight"] = mat(4 * e, e, 2.0)
        s[p + "mlp.c_proj.weight"] = mat(e, 4 * e)
        if spec["bias"]:
            for name, n in (("ln_1", e), ("attn.c_attn", 3 * e), ("attn.c_proj", e), ("ln_2", e),
                            ("mlp.c_fc", 4 * e), ("mlp.c_proj", e)):
                s[p + name + ".bias"] = vec(n)
        # the causal-mask buffer nanoGPT registers when PyTorch has no flash attention
        s[p + "attn.bias"] = torch.tril(torch.ones(n_ctx, n_ctx)).view(1, 1, n_ctx, n_ctx)
    s["transformer.ln_f.weight"] = vec(e, 1.0)
    if spec["bias"]:
        s["transformer.ln_f.bias"] = vec(e)
    s["lm_head.weight"] = s["transformer.wte.weight"]  # tied, as nanoGPT's GPT ties them
    return s


def forward(spec, s, tokens):
    """Logits (T, vocab), float64."""
    w = {k: v.double() for k, v in s.items()}
    e, nh = spec["n_embd"], spec["n_head"]
    hd, T = e // nh, len(tokens)

    def b(name):
        return w.get(name + ".bias")

    def ln(x, name):
        return F.layer_norm(x, (e,), w[name + ".weight"], b(name), 1e-5)

    def linear(x, name):
        return F.linear(x, w[name + ".weight"], b(name))

    idx = torch.tensor(tokens)
    x = w["transformer.wte.weight"][idx] + w["transformer.wpe.weight"][:T]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(spec["n_layer"]):
        p = f"transformer.h.{i}."
        q, k, v = linear(ln(x, p + "ln_1"), p + "attn.c_attn").split(e, dim=1)
        q, k, v = (t.view(T, nh, hd).transpose(0, 1) for t in (q, k, v))  # (nh, T, hd)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = torch.softmax(att.masked_fill(~causal, float("-inf")), dim=-1)
        y = (att @ v).transpose(0, 1).reshape(T, e)
        x = x + linear(y, p + "attn.c_proj")
        x = x + linear(F.gelu(linear(ln(x, p + "ln_2"), p + "mlp.c_fc")), p + "mlp.c_proj")
    x = ln(x, "transformer.ln_f")
    return (x @ w["lm_head.weight"].T).numpy()


def optimizer_state(params):
    """An AdamW state dict after one step, as train.py saves it."""
    ps = [torch.nn.Parameter(p.clone()) for p in params]
    opt = torch.optim.AdamW(ps, lr=1e-3)
    sum((p * p).sum() for p in ps).backward()
    opt.step()
    return opt.state_dict()


def main():
    spec_path, out_dir = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = json.load(f)
    chars = spec["chars"]
    stoi = {c: i for i, c in enumerate(chars)}
    state = random_state(spec)
    model_args = {k: spec[k] for k in ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size")}
    model_args["dropout"] = 0.0
    saved = {(("_orig_mod." + k) if spec["compiled"] else k): v for k, v in state.items()}
    ckpt = {"model": saved, "optimizer": optimizer_state(list(state.values())[:2]), "model_args": model_args,
            "iter_num": 250, "best_val_loss": torch.tensor(1.4697),
            "config": {"dataset": spec["dataset"], "batch_size": 64, "learning_rate": 1e-3, "compile": True,
                       "dtype": "float32", "device": "cpu", "bias": spec["bias"]}}
    meta = {"vocab_size": len(chars), "itos": dict(enumerate(chars)), "stoi": stoi}
    if spec["meta"] == "beside":
        ckpt_dir, meta_dir = out_dir, out_dir
    else:
        ckpt_dir, meta_dir = os.path.join(out_dir, "out"), os.path.join(out_dir, "data", spec["dataset"])
    os.makedirs(ckpt_dir, exist_ok=True)
    os.makedirs(meta_dir, exist_ok=True)
    torch.save(ckpt, os.path.join(ckpt_dir, "ckpt.pt"))
    with open(os.path.join(meta_dir, "meta.pkl"), "wb") as f:
        pickle.dump(meta, f)

    prompt = [stoi[c] for c in spec["prompt"]]
    toks, chosen_from = list(prompt), []
    for _ in range(spec["n_greedy"]):
        last = forward(spec, state, toks)[-1]
        chosen_from.append(last)
        toks.append(int(np.argmax(last)))
    np.savez(os.path.join(out_dir, "expected.npz"), logits=forward(spec, state, prompt),
             greedy=np.array(toks[len(prompt):]), greedy_logits=np.array(chosen_from))


if __name__ == "__main__":
    main()
