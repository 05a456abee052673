#!/usr/bin/python3
"""Converts a nanoGPT checkpoint (out/ckpt.pt, written by nanoGPT's train.py)
into a GGUF v3 file of architecture `gpt2` with learned positions and its
character-level tokenizer embedded as an exact SentencePiece model.

Usage: tools/convert_nanogpt.py CKPT.pt OUT.gguf [--meta META.pkl] [--unk CHAR]
                                [--gelu erf|tanh] [--outtype f32|f16|q8_0]

What is read, and how:
  - CKPT.pt: the checkpoint dictionary {model, model_args, ...}, read by
    tools/torch_checkpoint.py (torch.save's zip layout; PyTorch is not
    needed) with an unpickler that resolves only what tensors and plain
    values need, so no code named by the file runs (a checkpoint holding
    anything else is refused). model_args gives n_layer,
    n_head, n_embd, block_size, bias, vocab_size; the `_orig_mod.` prefix that
    torch.compile leaves is removed; bias=False models (no LayerNorm or
    Linear biases) are kept without biases; lm_head tied to wte is stored
    once.
  - META.pkl: nanoGPT's character vocabulary {stoi, itos}; by default the
    meta.pkl beside the checkpoint, else data/<dataset>/meta.pkl as train.py
    left it. It is unpickled with every class lookup refused, so only dicts,
    strings and numbers can come out of it.
  - No meta.pkl: the checkpoint uses GPT-2's byte-level BPE, which is not a
    SentencePiece model: refused.

The tokenizer is a SentencePiece model of type CHAR: one piece per character
in id order, no normalization, no dummy prefix, whitespace kept as itself, so
tinyllm encodes any text exactly as nanoGPT's encode() does. SentencePiece
requires an <unk> piece; it is one past the model's vocabulary, and text
outside the vocabulary is an error in tinyllm, unless --unk CHAR names the
character such text becomes.

GELU: nanoGPT uses PyTorch's exact nn.GELU() (the default here, written as
tinyllm.gelu = "erf"); checkpoints from nanoGPT before 2023 used the tanh
approximation: --gelu tanh.
"""
import argparse
import os
import pickle
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402
import safe_io  # noqa: E402
import torch_checkpoint  # noqa: E402
from safe_io import printable  # noqa: E402

OUTTYPES = {"f32": gw.GGML_F32, "f16": gw.GGML_F16, "q8_0": gw.GGML_Q8_0}
COMPILED_PREFIX = "_orig_mod."
LN_EPS = 1e-5  # nanoGPT's LayerNorm: F.layer_norm(..., 1e-5)


class ConvertError(safe_io.ToolError):
    pass


def first_line(e):
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


# ------------------------------------------------------------ checkpoint --

def load_checkpoint(path):
    if not os.path.exists(path):
        raise ConvertError(f"{printable(path)}: missing (expected nanoGPT's out/ckpt.pt)")
    try:
        ck = torch_checkpoint.load(path)
    except torch_checkpoint.CheckpointError as e:
        raise ConvertError(str(e)) from None
    if not isinstance(ck, dict) or "model" not in ck or "model_args" not in ck:
        raise ConvertError(f"{path}: expected nanoGPT's checkpoint dictionary with 'model' and 'model_args' "
                           "(a bare state dict has no hyperparameters)")
    if not isinstance(ck["model"], dict) or not isinstance(ck["model_args"], dict):
        raise ConvertError(f"{path}: 'model' and 'model_args' must be dictionaries (got "
                           f"{type(ck['model']).__name__} and {type(ck['model_args']).__name__})")
    state = {}
    for k, v in ck["model"].items():
        if not isinstance(k, str):
            raise ConvertError(f"{path}: a model key is {type(k).__name__} (expected tensor names)")
        if not isinstance(v, torch_checkpoint.Tensor):
            raise ConvertError(f"{path}: model[{printable(k)!r}] is not a tensor")
        state[k[len(COMPILED_PREFIX):] if k.startswith(COMPILED_PREFIX) else k] = v
    return ck, state


def hyperparameters(path, ck):
    a = ck["model_args"]
    hp = {}
    for key, arg in (("n_layer", "n_layer"), ("n_head", "n_head"), ("n_embd", "n_embd"), ("n_ctx", "block_size"),
                     ("n_vocab", "vocab_size")):
        if arg not in a:
            raise ConvertError(f"{path}: model_args lacks {arg!r} (expected n_layer, n_head, n_embd, "
                               "block_size, vocab_size)")
        v = a[arg]
        if isinstance(v, bool) or not isinstance(v, int):  # 1e400 (inf), '12', 2.5: refused, not truncated
            raise ConvertError(f"{path}: model_args[{arg!r}] = {printable(repr(v), 40)} (expected an integer)")
        hp[key] = v
    hp.update(n_ff=4 * hp["n_embd"], eps=LN_EPS, positions="learned")
    try:
        gw.check_hparams("gpt2", hp)
    except ValueError as e:
        raise ConvertError(f"{path}: model_args: {e}") from None
    return hp


def gguf_weights(state, hp):
    """GGUF gpt2 tensor names from nanoGPT's state dict (nn.Linear weights
    are (out, in), as GGUF's (in, out) dims store them)."""
    e, v, f = hp["n_embd"], hp["n_vocab"], hp["n_ff"]
    used = set()

    def take(name, shape, optional=False):
        if name not in state:
            if optional:
                return None
            raise ConvertError(f"tensor {name} is missing from the checkpoint's model")
        a = state[name]
        if a.shape != shape:
            raise ConvertError(f"tensor {name} has shape {tuple(a.shape)} (expected {shape})")
        used.add(name)
        try:  # read only now, its shape known to be the model's
            return a.numpy().astype(np.float32)
        except torch_checkpoint.CheckpointError as e:
            raise ConvertError(str(e)) from None

    out = {}

    def put(gguf_name, name, shape, with_bias):
        out[gguf_name + ".weight"] = take(name + ".weight", shape)
        b = take(name + ".bias", shape[:1], optional=not with_bias)
        if b is not None:
            out[gguf_name + ".bias"] = b

    with_bias = "transformer.ln_f.bias" in state  # bias=False removes every bias
    out["token_embd.weight"] = take("transformer.wte.weight", (v, e))
    out["position_embd.weight"] = take("transformer.wpe.weight", (hp["n_ctx"], e))
    for i in range(hp["n_layer"]):
        s, p = f"transformer.h.{i}.", f"blk.{i}."
        put(p + "attn_norm", s + "ln_1", (e,), with_bias)
        put(p + "attn_qkv", s + "attn.c_attn", (3 * e, e), with_bias)  # rows q | k | v, as the engine splits them
        put(p + "attn_output", s + "attn.c_proj", (e, e), with_bias)
        put(p + "ffn_norm", s + "ln_2", (e,), with_bias)
        put(p + "ffn_up", s + "mlp.c_fc", (f, e), with_bias)
        put(p + "ffn_down", s + "mlp.c_proj", (e, f), with_bias)
        mask = s + "attn.bias"  # the causal-mask buffer of PyTorch < 2 (no flash attention): not a weight
        if mask in state and len(state[mask].shape) == 4:
            used.add(mask)
    put("output_norm", "transformer.ln_f", (e,), with_bias)
    head = take("lm_head.weight", (v, e), optional=True)
    if head is not None and not np.array_equal(head, out["token_embd.weight"]):
        out["output.weight"] = head  # untied: kept; tied (nanoGPT's): the engine reads token_embd
    extra = [k for k in state if k not in used and k != "lm_head.weight"]
    if extra:
        raise ConvertError(f"tensor {printable(extra[0])} is not part of a nanoGPT model ({len(extra)} such; expected "
                           "only GPT's transformer.* and lm_head weights)")
    return out


# ------------------------------------------------------------- tokenizer --

class _NoClasses(pickle.Unpickler):
    """Unpickles plain containers only: any class or function is refused,
    so loading runs no code named by the file."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"it names {module}.{name}; a meta.pkl holds only dicts of characters and ids")


def find_meta(ckpt_path, ck):
    here = os.path.dirname(os.path.abspath(ckpt_path))
    candidates = [os.path.join(here, "meta.pkl")]
    dataset = ck.get("config", {}).get("dataset") if isinstance(ck.get("config"), dict) else None
    if isinstance(dataset, str) and dataset and "/" not in dataset:
        candidates += [os.path.join(here, "..", "data", dataset, "meta.pkl"), os.path.join("data", dataset, "meta.pkl")]
    for c in candidates:
        if os.path.exists(c):
            return os.path.normpath(c)
    raise ConvertError(f"{ckpt_path}: no meta.pkl (looked for {', '.join(os.path.normpath(c) for c in candidates)}): "
                       "the model uses GPT-2's byte-level BPE, which is not SentencePiece and not supported; "
                       "supported are character-level checkpoints with their meta.pkl (--meta)")


def read_meta(path):
    """The characters in id order, from nanoGPT's {'itos': {id: char}, 'stoi': {char: id}}."""
    try:
        with safe_io.open_input(path, "meta.pkl") as f:  # a FIFO is refused, never read
            meta = _NoClasses(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise ConvertError(f"{path}: not a nanoGPT meta.pkl ({first_line(e)})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("itos"), dict):
        raise ConvertError(f"{path}: expected a dict with 'itos' (id -> character) and 'stoi'")
    itos, stoi = meta["itos"], meta.get("stoi")
    if sorted(itos) != list(range(len(itos))) or not itos:
        raise ConvertError(f"{path}: itos ids are not 0..{len(itos) - 1}")
    chars = [itos[i] for i in range(len(itos))]
    for i, c in enumerate(chars):
        if not isinstance(c, str) or len(c) != 1:
            raise ConvertError(f"{path}: token {i} is {c!r}; a character-level vocabulary has one character per id")
        if c == "\0":
            raise ConvertError(f"{path}: token {i} is U+0000, which a SentencePiece piece cannot hold")
        try:
            c.encode("utf-8")
        except UnicodeEncodeError:
            raise ConvertError(f"{path}: token {i} is a lone surrogate {c!r} (not UTF-8 text)") from None
    if len(set(chars)) != len(chars):
        raise ConvertError(f"{path}: a character appears twice in itos")
    if stoi is not None and stoi != {c: i for i, c in enumerate(chars)}:
        raise ConvertError(f"{path}: stoi is not the inverse of itos")
    return chars


# protobuf wire format (docs/formats.md: the ModelProto fields SentencePiece reads)
def _varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _uint(field, v):
    return _varint(field << 3) + _varint(v)


def _bytes(field, b):
    return _varint(field << 3 | 2) + _varint(len(b)) + b


def _float(field, x):
    return _varint(field << 3 | 5) + struct.pack("<f", x)


PIECE_NORMAL, PIECE_UNKNOWN, PIECE_CONTROL = 1, 2, 3
MODEL_TYPE_CHAR = 4


def char_sentencepiece(chars, n_vocab):
    """A serialized SentencePiece ModelProto of type CHAR: the characters as
    pieces 0..len-1, control pieces up to the model's vocabulary when it is
    padded past the characters, then the required <unk> at id n_vocab."""
    pieces = [(c, PIECE_NORMAL) for c in chars]
    pieces += [(f"<unused{i}>", PIECE_CONTROL) for i in range(len(chars), n_vocab)]
    pieces.append(("<unk>", PIECE_UNKNOWN))
    proto = b"".join(_bytes(1, _bytes(1, p.encode("utf-8")) + _float(2, 0.0) + _uint(3, t)) for p, t in pieces)
    trainer = (_uint(3, MODEL_TYPE_CHAR) + _uint(4, len(pieces)) + _uint(35, 0) + _bytes(45, b"<unk>")
               + _bytes(46, b"<s>") + _bytes(47, b"</s>") + _bytes(48, b"<pad>"))
    # identity normalization; the three flags default to true in the proto: all written
    normalizer = _bytes(1, b"identity") + _uint(3, 0) + _uint(4, 0) + _uint(5, 0)
    return proto + _bytes(2, trainer) + _bytes(3, normalizer)


def check_tokenizer(proto, chars):
    """SentencePiece itself must encode every character to its nanoGPT id."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(proto)
    text = "".join(chars) + "".join(reversed(chars))
    want = list(range(len(chars))) + list(reversed(range(len(chars))))
    got = sp.encode(text)
    if got != want:
        bad = next(i for i, (g, w) in enumerate(zip(got + [None] * len(want), want)) if g != w)
        raise ConvertError(f"SentencePiece encodes character {text[bad]!r} as {got[bad:bad + 1]} "
                           f"(expected [{want[bad]}]); the vocabulary cannot be represented exactly")


# ------------------------------------------------------------------ main --

def convert(ckpt_path, out, meta_path, unk, gelu, outtype):
    ck, state = load_checkpoint(ckpt_path)
    hp = hyperparameters(ckpt_path, ck)
    hp["gelu"] = gelu
    meta_path = meta_path or find_meta(ckpt_path, ck)
    chars = read_meta(meta_path)
    if len(chars) > hp["n_vocab"]:
        raise ConvertError(f"{meta_path}: {len(chars)} characters but the model's vocab_size is {hp['n_vocab']} "
                           "(expected at most that)")
    unk_id = None
    if unk is not None:
        if unk not in chars:
            raise ConvertError(f"--unk {unk!r}: not a character of the vocabulary (expected one of {''.join(chars)!r})")
        unk_id = chars.index(unk)
    weights = gguf_weights(state, hp)
    if outtype == gw.GGML_Q8_0:
        bad = [n for n, a in weights.items() if a.ndim == 2 and a.shape[1] % gw.QK]
        if bad:
            raise ConvertError(f"--outtype q8_0: {bad[0]} rows of {weights[bad[0]].shape[1]} values are not "
                               f"whole blocks of {gw.QK}")
    proto = char_sentencepiece(chars, hp["n_vocab"])
    check_tokenizer(proto, chars)
    config = ck.get("config") if isinstance(ck.get("config"), dict) else {}
    name = "nanogpt-" + str(config.get("dataset") or os.path.splitext(os.path.basename(ckpt_path))[0])
    try:  # written beside OUT and renamed over it only when whole (safe_io.write_file)
        gw.write_gpt2(out, hp, weights, gw.EmbeddedTokenizer(proto, unk_id), outtype, name, write_output=False,
                      inputs=(ckpt_path, meta_path))
    except ValueError as e:
        raise ConvertError(str(e)) from None


def main():
    ap = argparse.ArgumentParser(prog="convert_nanogpt.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("ckpt", help="nanoGPT checkpoint (out/ckpt.pt)")
    ap.add_argument("out", help="GGUF file to write")
    ap.add_argument("--meta", help="the character vocabulary (default: meta.pkl beside CKPT, or data/<dataset>/)")
    ap.add_argument("--unk", help="the character that text outside the vocabulary becomes (default: an error)")
    ap.add_argument("--gelu", choices=["erf", "tanh"], default="erf",
                    help="erf: nn.GELU() (nanoGPT since 2023); tanh: the approximation older nanoGPT used")
    ap.add_argument("--outtype", choices=sorted(OUTTYPES), default="f32")
    args = ap.parse_args()
    if args.unk is not None and len(args.unk) != 1:
        ap.error(f"--unk {args.unk!r}: expected one character")
    try:
        convert(args.ckpt, args.out, args.meta, args.unk, args.gelu, OUTTYPES[args.outtype])
    except OSError as e:
        raise ConvertError(f"{printable(e.filename)}: {e.strerror}") from None


if __name__ == "__main__":
    safe_io.main_guard("convert_nanogpt", main)
