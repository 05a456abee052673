#!/usr/bin/python3
"""Writes models/README.md, the default model's card, from measured facts:
the training log (scripts/train_model.py's OUT.log.json), the held-out text's
size under gzip -9, xz -9 and bzip2 -9, the engine's own perplexity run, and
the exact commands that made the files.

Usage: scripts/model_card.py LOG.json VALID.txt MODEL.gguf OUT.md
"""
import json
import os
import subprocess
import sys


def compressed_bits_per_byte(cmd, path):
    with open(path, "rb") as f:
        data = f.read()
    out = subprocess.run(cmd, input=data, capture_output=True, check=True).stdout
    return 8 * len(out) / len(data)


def main():
    log_path, valid, model, out = sys.argv[1:5]
    log = json.load(open(log_path))
    a = log["args"]
    n_bytes = os.path.getsize(valid)
    comp = {name: compressed_bits_per_byte(cmd, valid) for name, cmd in
            (("gzip -9", ["gzip", "-9", "-c"]), ("xz -9", ["xz", "-9", "-c"]), ("bzip2 -9", ["bzip2", "-9", "-c"]))}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ppl = subprocess.run([os.path.join(root, "build", "tinyllm"), "perplexity", "-m", model, "-f", valid, "--ctx",
                          str(a["ctx"]), "--stride", str(a["ctx"] // 2)], capture_output=True, text=True)
    engine = dict(ln.split(":", 1) for ln in ppl.stdout.splitlines() if ":" in ln) if ppl.returncode == 0 else {}
    ev = log["evals"]
    best = min(ev, key=lambda e: e["valid_loss"])
    ex = log.get("excerpt", {})
    size = os.path.getsize(model)
    samples = "\n\n".join(f"> {s.strip()}" for s in log.get("samples", []))
    lines = [
        "# The default model: `austen.gguf`",
        "",
        "The project's own pretrained checkpoint, trained here from Debian packages alone, so that `make run` works",
        "on a fresh machine with nothing but the repository. A gpt2-family model as the engine loads it: token",
        "embeddings plus learned absolute positions, pre-LayerNorm blocks of multi-head causal attention and a GELU",
        "MLP with residuals, a final LayerNorm, and a classifier tied to the embedding; SentencePiece BPE tokenizer.",
        "",
        "| fact | value |",
        "|---|---|",
        f"| file | `models/austen.gguf`, {size:,} bytes, GGUF v3, F16 matrices (norms and biases F32) |",
        f"| parameters | {log['params']:,} |",
        f"| shape | {a['layers']} layers, dim {a['dim']}, {a['heads']} heads, feed-forward {a['ffn']}, context {a['ctx']} |",
        f"| vocabulary | {a['vocab']} SentencePiece BPE pieces (byte fallback, identity normalization) |",
        f"| training tokens | {log['tokens_seen']:,} ({log['tokens_seen'] / log['train_tokens']:.1f} passes over "
        f"{log['train_tokens']:,} tokens) |",
        f"| training time | {log['train_seconds'] / 60:.0f} minutes on 2 cores (PyTorch {a.get('torch', '1.13')}, "
        "Debian's python3-torch) |",
        f"| best validation loss | {best['valid_loss']:.4f} nats/token at step {best['step']} |",
        f"| held-out bits per byte | **{log['valid_bits_per_byte']:.3f}** (PyTorch), "
        f"{float(engine.get('bits/byte', 'nan')):.3f} (this engine: `tinyllm perplexity`) |",
        "",
        "## Data",
        "",
        "Jane Austen's six novels from Debian's `r-cran-janeaustenr` (public domain), cleaned by",
        "`scripts/prepare_corpus.py`: wrapped lines joined into paragraphs, spaces folded, Gutenberg's `_italics_`",
        "underscores dropped. The last 5% of each novel's paragraphs is held-out validation text, never trained on",
        f"({n_bytes:,} bytes in all).",
        "",
        "## Tokenizer: why 4096 pieces",
        "",
        "The corpus is 3.75 MB. 4096 BPE pieces give about 4.1 bytes per token on held-out text, so the 256-token",
        "context spans about 1 KB of prose, while the embedding (and tied classifier) stays at 1M of the 5.85M",
        "parameters. Fewer pieces shorten the context in characters; more make the rare-piece embeddings",
        "undertrained on a corpus this small.",
        "",
        "## Quality, measured on the held-out text",
        "",
        "Bits per byte of the same held-out text (lower is better):",
        "",
        "| method | bits per byte |",
        "|---|---:|",
        f"| gzip -9 | {comp['gzip -9']:.3f} |",
        f"| xz -9 | {comp['xz -9']:.3f} |",
        f"| bzip2 -9 | {comp['bzip2 -9']:.3f} |",
        f"| **this model** (sliding windows of {a['ctx']}, stride {a['ctx'] // 2}) | **{log['valid_bits_per_byte']:.3f}** |",
        "",
        "![loss curve](austen.loss.png)",
        "",
        f"The test excerpt (`tests/data/{ex.get('file', '')}`, {ex.get('bytes', 0):,} bytes): PyTorch "
        f"{ex.get('nll_per_token', 0):.5f} nats/token, perplexity {ex.get('perplexity', 0):.2f}; `make test`",
        "checks that `tinyllm perplexity` agrees within 0.5%.",
        "",
        "## Samples (temperature 0.8, from PyTorch at the end of training)",
        "",
        samples,
        "",
        "## How it was made",
        "",
        "```sh",
        "scripts/train_default_model.sh default   # corpus + tokenizer + this model, then copies it here",
        "```",
        "",
        "which runs, after `scripts/setup.sh --train` and `scripts/prepare_corpus.py build/corpus`:",
        "",
        "```sh",
        "/usr/bin/python3 scripts/train_model.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in a.items()
            if k not in ("finish_only",) and v is not None and v is not False),
        "```",
        "",
        "Seeded (`--seed`), a fixed number of steps, AdamW with warm-up and cosine decay, dropout 0.1, weights",
        "initialised N(0, 0.02). The best checkpoint by validation loss is written through `tools/gguf_writer.py` with",
        "the standard `tokenizer.ggml.*` arrays, the embedded SentencePiece model",
        "(`tinyllm.tokenizer.sentencepiece_model`) and an explicit `output.weight` (a copy of the tied embedding, so",
        "llama.cpp opens the file too). The log with every evaluation is `austen.log.json`.",
        "",
    ]
    with open(out, "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
