#!/usr/bin/python3
"""Trains a gpt2-family model (LayerNorm, learned or sinusoidal positions,
GELU MLP, tied classifier) on the Austen corpus with Debian's PyTorch, and
writes it to GGUF through tools/gguf_writer.py.

Everything is seeded; the step count is fixed, so the same command gives the
same model. Logs train/validation loss to OUT.log.json; keeps the checkpoint
with the best validation loss; at the end writes OUT.gguf, a loss-curve PNG,
samples, and the evaluation facts (bits per byte on held-out text, and the
perplexity of a held-out excerpt that the C engine's test re-computes).

Example (the shipped default model; models/README.md has the exact command):
  scripts/train_model.py --corpus build/corpus --tokenizer build/austen4096 \
      --vocab 4096 --dim 256 --layers 6 --heads 8 --ctx 256 --steps 3000 \
      --out build/train/austen
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))


def train_tokenizer(corpus_dir, prefix, vocab):
    if os.path.exists(prefix + ".model"):
        return
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    subprocess.run([
        "spm_train", f"--input={corpus_dir}/train.txt", f"--model_prefix={prefix}",
        f"--vocab_size={vocab}", "--model_type=bpe", "--byte_fallback=true",
        "--character_coverage=1.0", "--normalization_rule_name=identity",
        "--remove_extra_whitespaces=false", "--add_dummy_prefix=true",
        "--max_sentence_length=16384", "--num_threads=2", "--minloglevel=1"], check=True)


def sinusoidal_table(n_ctx, dim):
    """The original Transformer's encoding: PE[p, 2i] = sin(p / 10000^(2i/d)),
    PE[p, 2i+1] = cos(same). Must match the engine (src/) and tools/reference.py."""
    pos = np.arange(n_ctx, dtype=np.float64)[:, None]
    i = np.arange(0, dim, 2, dtype=np.float64)[None, :]
    angle = pos / np.power(10000.0, i / dim)
    pe = np.zeros((n_ctx, dim), dtype=np.float64)
    pe[:, 0::2] = np.sin(angle)
    pe[:, 1::2] = np.cos(angle)
    return pe.astype(np.float32)


class Block(nn.Module):
    def __init__(self, dim, heads, ffn, dropout):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim, eps=1e-5)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim, eps=1e-5)
        self.up = nn.Linear(dim, ffn)
        self.down = nn.Linear(ffn, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask):
        B, T, C = x.shape
        hd = C // self.heads
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q = q.view(B, T, self.heads, hd).transpose(1, 2)
        k = k.view(B, T, self.heads, hd).transpose(1, 2)
        v = v.view(B, T, self.heads, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = att.masked_fill(mask[:T, :T], float("-inf")).softmax(dim=-1)
        y = (self.drop(att) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.drop(self.proj(y))
        x = x + self.drop(self.down(F.gelu(self.up(self.ln2(x)), approximate="tanh")))
        return x


class GPT(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a
        self.tok = nn.Embedding(a.vocab, a.dim)
        if a.positions == "learned":
            self.pos = nn.Parameter(torch.zeros(a.ctx, a.dim))
        else:
            self.register_buffer("pos", torch.from_numpy(sinusoidal_table(a.ctx, a.dim)))
        self.blocks = nn.ModuleList(Block(a.dim, a.heads, a.ffn, a.dropout) for _ in range(a.layers))
        self.ln_f = nn.LayerNorm(a.dim, eps=1e-5)
        self.drop = nn.Dropout(a.dropout)
        self.register_buffer("mask", torch.triu(torch.ones(a.ctx, a.ctx, dtype=torch.bool), 1))
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * a.layers) if name.endswith(("proj.weight", "down.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.drop(self.tok(idx) + self.pos[:T])
        for b in self.blocks:
            x = b(x, self.mask)
        return self.ln_f(x) @ self.tok.weight.t()

    def gguf_weights(self):
        sd = {k: v.detach().float().numpy() for k, v in self.state_dict().items()}
        w = {"token_embd.weight": sd["tok.weight"]}
        if self.a.positions == "learned":
            w["position_embd.weight"] = sd["pos"]
        for i in range(self.a.layers):
            p, g = f"blocks.{i}.", f"blk.{i}."
            for ours, theirs in (("ln1", "attn_norm"), ("qkv", "attn_qkv"), ("proj", "attn_output"),
                                 ("ln2", "ffn_norm"), ("up", "ffn_up"), ("down", "ffn_down")):
                w[g + theirs + ".weight"] = sd[p + ours + ".weight"]
                w[g + theirs + ".bias"] = sd[p + ours + ".bias"]
        w["output_norm.weight"] = sd["ln_f.weight"]
        w["output_norm.bias"] = sd["ln_f.bias"]
        return w


def encode_file(sp, path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return text, np.array([sp.bos_id()] + sp.encode(text), dtype=np.int64)


@torch.no_grad()
def sliding_nll(model, tokens, ctx, stride):
    """Sum of -log p over tokens[1:], scoring each token once, windows of ctx
    advanced by stride: the definition `tinyllm perplexity` implements."""
    model.eval()
    total, count, n = 0.0, 0, len(tokens)
    scored_upto = 1  # tokens[0] is BOS, never predicted
    start = 0
    while scored_upto < n:
        end = min(start + ctx, n)
        x = torch.from_numpy(tokens[start:end][None])
        logp = model(x)[0].double().log_softmax(-1)
        first = max(scored_upto, start + 1)
        targets = torch.from_numpy(tokens[first:end])
        total -= logp[first - start - 1:end - start - 1].gather(1, targets[:, None]).sum().item()
        count += end - first
        scored_upto = end
        if end == n:
            break
        start += stride
    return total, count


@torch.no_grad()
def eval_loss(model, data, ctx, max_windows=None):
    model.eval()
    n_win = (len(data) - 1) // ctx
    if max_windows:
        n_win = min(n_win, max_windows)
    losses = []
    for b in range(0, n_win, 16):
        idx = np.arange(b, min(b + 16, n_win)) * ctx
        x = torch.from_numpy(np.stack([data[i:i + ctx] for i in idx]))
        y = torch.from_numpy(np.stack([data[i + 1:i + ctx + 1] for i in idx]))
        losses.append(F.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction="sum").item())
    model.train()
    return sum(losses) / (n_win * ctx)


@torch.no_grad()
def sample(model, sp, prompt, n, temp, gen):
    model.eval()
    ids = [sp.bos_id()] + sp.encode(prompt)
    for _ in range(n):
        x = torch.tensor([ids[-model.a.ctx:]])
        probs = (model(x)[0, -1] / temp).softmax(-1)
        ids.append(int(torch.multinomial(probs, 1, generator=gen)))
    return sp.decode(ids[1:])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--tokenizer", required=True, help="SentencePiece prefix (trained if missing)")
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--ffn", type=int, default=0, help="default 4*dim")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--positions", choices=["learned", "sinusoidal"], default="learned")
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", choices=["f16", "f32"], default="f16")
    ap.add_argument("--name", default="tinyllm-austen")
    ap.add_argument("--excerpt", help="held-out excerpt whose perplexity the C test re-computes")
    ap.add_argument("--out", required=True, help="output prefix: OUT.gguf, OUT.log.json, OUT.pt, ...")
    ap.add_argument("--finish-only", action="store_true", help="skip training; export OUT.pt")
    a = ap.parse_args()
    a.ffn = a.ffn or 4 * a.dim

    import sentencepiece as spm
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    train_tokenizer(a.corpus, a.tokenizer, a.vocab)
    sp = spm.SentencePieceProcessor(model_file=a.tokenizer + ".model")
    assert sp.get_piece_size() == a.vocab
    _, train = encode_file(sp, os.path.join(a.corpus, "train.txt"))
    valid_text, valid = encode_file(sp, os.path.join(a.corpus, "valid.txt"))
    print(f"train {len(train)} tokens, valid {len(valid)} tokens "
          f"({len(valid_text.encode()) / len(valid):.2f} bytes/token)", flush=True)

    model = GPT(a)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{n_params} parameters", flush=True)
    log = {"args": vars(a), "params": n_params, "train_tokens": int(len(train)), "evals": []}

    if not a.finish_only:
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1)
        rng = np.random.default_rng(a.seed)
        best, t0, seen = float("inf"), time.time(), 0
        for step in range(1, a.steps + 1):
            lr = a.lr * step / a.warmup if step <= a.warmup else \
                a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * (step - a.warmup) / (a.steps - a.warmup)))
            for g in opt.param_groups:
                g["lr"] = lr
            starts = rng.integers(0, len(train) - a.ctx - 1, a.batch)
            x = torch.from_numpy(np.stack([train[s:s + a.ctx] for s in starts]))
            y = torch.from_numpy(np.stack([train[s + 1:s + a.ctx + 1] for s in starts]))
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            seen += a.batch * a.ctx
            if step % a.eval_every == 0 or step == a.steps:
                vl = eval_loss(model, valid, a.ctx, max_windows=128)
                tl = eval_loss(model, train[:len(valid)], a.ctx, max_windows=128)
                el = time.time() - t0
                log["evals"].append({"step": step, "tokens": seen, "seconds": el, "train_loss": tl,
                                     "valid_loss": vl, "lr": lr})
                print(f"step {step} tokens {seen} {el:.0f}s lr {lr:.2e} train {tl:.4f} valid {vl:.4f} "
                      f"({seen / el:.0f} tok/s)", flush=True)
                if vl < best:
                    best = vl
                    torch.save(model.state_dict(), a.out + ".pt")
                with open(a.out + ".log.json", "w") as f:
                    json.dump(log, f, indent=1)
        log["train_seconds"] = time.time() - t0
        log["tokens_seen"] = seen
    else:
        with open(a.out + ".log.json") as f:
            log = json.load(f)

    # -- finish: best checkpoint -> evaluation, GGUF, samples, picture --------
    model.load_state_dict(torch.load(a.out + ".pt"))
    model.eval()
    nll, cnt = sliding_nll(model, valid, a.ctx, a.ctx // 2)
    log["valid_bits_per_byte"] = nll / math.log(2) / len(valid_text.encode())
    log["valid_nll_per_token"] = nll / cnt
    print(f"held-out: {log['valid_nll_per_token']:.4f} nats/token, {log['valid_bits_per_byte']:.4f} bits/byte",
          flush=True)
    if a.excerpt:
        text, toks = encode_file(sp, a.excerpt)
        nll, cnt = sliding_nll(model, toks, a.ctx, a.ctx // 2)
        log["excerpt"] = {"file": os.path.basename(a.excerpt), "ctx": a.ctx, "stride": a.ctx // 2,
                          "tokens": cnt, "bytes": len(text.encode()), "nll_per_token": nll / cnt,
                          "perplexity": math.exp(nll / cnt),
                          "bits_per_byte": nll / math.log(2) / len(text.encode())}
    gen = torch.Generator().manual_seed(a.seed)
    log["samples"] = [sample(model, sp, p, 120, 0.8, gen) for p in
                      ("It is a truth universally acknowledged", "Mr. Darcy", "The weather was")]
    import gguf_writer
    hp = {"n_vocab": a.vocab, "n_ctx": a.ctx, "n_embd": a.dim, "n_layer": a.layers, "n_head": a.heads,
          "n_ff": a.ffn, "eps": 1e-5, "positions": a.positions}
    gguf_writer.write_gpt2(a.out + ".gguf", hp, model.gguf_weights(), a.tokenizer + ".model",
                           gguf_writer.GGML_F16 if a.dtype == "f16" else gguf_writer.GGML_F32, a.name)
    with open(a.out + ".log.json", "w") as f:
        json.dump(log, f, indent=1)
    if log["evals"]:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        ev = log["evals"]
        plt.figure(figsize=(7, 4))
        plt.plot([e["tokens"] / 1e6 for e in ev], [e["train_loss"] for e in ev], label="train")
        plt.plot([e["tokens"] / 1e6 for e in ev], [e["valid_loss"] for e in ev], label="validation")
        plt.xlabel("training tokens (millions)")
        plt.ylabel("loss (nats/token)")
        plt.title(f"{a.name}: {n_params / 1e6:.2f}M parameters")
        plt.legend()
        plt.grid(alpha=0.3)
        plt.tight_layout()
        plt.savefig(a.out + ".loss.png", dpi=100)
    print(f"wrote {a.out}.gguf ({os.path.getsize(a.out + '.gguf')} bytes)", flush=True)


if __name__ == "__main__":
    main()
