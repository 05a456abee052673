#!/usr/bin/python3
"""Converts a Hugging Face LlamaForCausalLM or Qwen2ForCausalLM directory
into a GGUF v3 file of architecture `llama` or `qwen2`, with its tokenizer.

Usage: tools/convert_hf_llama.py MODEL_DIR OUT.gguf [--outtype f32|f16|q8_0]

MODEL_DIR holds config.json, the weights and tokenizer.model:
  - weights: model.safetensors, or shards listed in
    model.safetensors.index.json (read here with a small reader of the
    safetensors layout: Debian has no safetensors package), or
    pytorch_model.bin (read by tools/torch_checkpoint.py without PyTorch;
    its unpickler resolves only what tensors need, so no code named by the
    file runs);
  - tokenizer: tokenizer.model (SentencePiece, embedded), or else
    tokenizer.json with a byte-level BPE model (Llama 3, SmolLM, Qwen2):
    written as llama.cpp's converter writes it (tokenizer.ggml.model "gpt2",
    tokens by id, ids the vocabulary lacks up to config.json's vocab_size as
    unused "[PADn]", merges, added tokens as control (special) or
    user-defined, the pre-tokenizer named from tokenizer.json's expression),
    with BOS/EOS and add_bos_token from tokenizer_config.json.

Hugging Face stores q/k projection rows for "rotate half" RoPE (a head's
pairs are (x[i], x[i + head_dim/2])); GGUF `llama` files pair adjacent
values (x[2i], x[2i+1]). The rows of q and k are permuted here so the
engine's RoPE rotates the same pairs. `qwen2` files keep Hugging Face's order
(the engine rotates the halves for them, as llama.cpp does), and q/k/v carry
biases.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402
import safe_io  # noqa: E402
import torch_checkpoint  # noqa: E402
from safe_io import printable  # noqa: E402

OUTTYPES = {"f32": gw.GGML_F32, "f16": gw.GGML_F16, "q8_0": gw.GGML_Q8_0}
SAFETENSORS_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
                      "F64": np.dtype("<f8")}
MAX_HEADER = 100 << 20  # a safetensors JSON header larger than this is not a real one
MAX_JSON = 64 << 20  # config.json, the shard index


class ConvertError(safe_io.ToolError):
    pass


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def read_json(path, what):
    """A JSON object from a regular file (never a FIFO), as one-line errors."""
    raw = safe_io.read_input(path, what, max_bytes=MAX_JSON)
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConvertError(f"{printable(path)}: not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ConvertError(f"{printable(path)}: not JSON ({printable(e, 120)})") from None
    except RecursionError:
        raise ConvertError(f"{printable(path)}: JSON nested too deeply (expected a flat {what})") from None
    if not isinstance(obj, dict):
        raise ConvertError(f"{printable(path)}: a JSON {type(obj).__name__} (expected an object)")
    return obj


def read_safetensors(path):
    """{name: float32 array} from one .safetensors file: an 8-byte little-
    endian header length, a JSON header {name: {dtype, shape, data_offsets}},
    then the data (offsets relative to the end of the header)."""
    raw = safe_io.read_input(path, "weights")
    path = printable(path)
    if len(raw) < 8:
        raise ConvertError(f"{path}: {len(raw)} bytes is too short for safetensors (expected an 8-byte header length)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > min(MAX_HEADER, len(raw) - 8):
        raise ConvertError(f"{path}: header length {n} runs past the file's {len(raw)} bytes (not safetensors?)")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConvertError(f"{path}: the safetensors header is not JSON ({printable(e, 120)})") from None
    except RecursionError:
        raise ConvertError(f"{path}: the safetensors header is nested too deeply (not safetensors)") from None
    if not isinstance(header, dict):
        raise ConvertError(f"{path}: the safetensors header is not a JSON object")
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        shown = printable(name, 80)
        if not isinstance(info, dict) or not all(k in info for k in ("dtype", "shape", "data_offsets")):
            raise ConvertError(f"{path}: tensor {shown!r} lacks dtype/shape/data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dtype, str) or dtype not in SAFETENSORS_DTYPES:
            raise ConvertError(f"{path}: tensor {shown!r} has dtype {printable(repr(dtype), 40)} (expected one of "
                               f"{', '.join(SAFETENSORS_DTYPES)})")
        if not isinstance(shape, list) or len(shape) > 8 or not all(_is_int(d) and d >= 0 for d in shape):
            raise ConvertError(f"{path}: tensor {shown!r} has shape {printable(repr(shape), 60)} (expected a list "
                               "of non-negative integers)")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
            raise ConvertError(f"{path}: tensor {shown!r} has data_offsets {printable(repr(offsets), 60)} "
                               "(expected two integers)")
        begin, end = offsets
        np_dtype = SAFETENSORS_DTYPES[dtype]
        count = 1
        for d in shape:  # Python integers: a 2^70 dimension cannot wrap around
            count *= d
        if not (0 <= begin <= end <= len(data)) or end - begin != count * np_dtype.itemsize:
            raise ConvertError(f"{path}: tensor {shown!r} offsets {begin}..{end} do not fit shape {shape} of {dtype} "
                               f"in {len(data)} data bytes")
        a = np.frombuffer(data[begin:end], dtype=np_dtype).reshape(shape)
        if dtype == "BF16":  # bfloat16 is the top half of a float32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = np.ascontiguousarray(a, dtype=np.float32)
    return out


def read_weights(model_dir):
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    torch_bin = os.path.join(model_dir, "pytorch_model.bin")
    if os.path.isfile(single):
        return read_safetensors(single)
    if os.path.isfile(index):
        weight_map = read_json(index, "shard index").get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise ConvertError(f"{printable(index)}: expected a JSON object with a \"weight_map\" of file names")
        out = {}
        for shard in sorted(set(weight_map.values())):
            shard_path = os.path.join(model_dir, os.path.basename(shard))
            if not os.path.exists(shard_path):
                raise ConvertError(f"{printable(shard_path)}: listed in {printable(index)} but missing")
            out.update(read_safetensors(shard_path))
        missing = [k for k in weight_map if k not in out]
        if missing:
            raise ConvertError(f"{printable(index)}: {printable(missing[0], 80)!r} is not in the shard the index names")
        return out
    if os.path.isfile(torch_bin):
        try:
            state = torch_checkpoint.load(torch_bin)
        except torch_checkpoint.CheckpointError as e:
            raise ConvertError(f"{e} (or give model.safetensors)") from None
        if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch_checkpoint.Tensor)
                                                  for k, v in state.items()):
            raise ConvertError(f"{printable(torch_bin)}: expected a state dict of tensors")
        return state  # read when taken, its shape checked first (gguf_weights)
    raise ConvertError(f"{model_dir}: no weights (expected model.safetensors, model.safetensors.index.json "
                       "or pytorch_model.bin)")


def read_config(model_dir):
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        raise ConvertError(f"{printable(path)}: missing (expected a Hugging Face model directory)")
    cfg = read_json(path, "config.json")
    path = printable(path)
    arch = cfg.get("architectures") or [cfg.get("model_type", "?")]
    if not isinstance(arch, list) or not arch:
        arch = ["?"]
    if arch[0] == "Qwen2ForCausalLM" or cfg.get("model_type") == "qwen2":
        family = "qwen2"
    elif arch[0] == "LlamaForCausalLM" or cfg.get("model_type") == "llama":
        family = "llama"
    else:
        raise ConvertError(f"{path}: architecture {printable(arch[0], 60)} is not supported (expected "
                           "LlamaForCausalLM or Qwen2ForCausalLM)")
    if family == "qwen2" and cfg.get("use_sliding_window"):
        raise ConvertError(f"{path}: use_sliding_window is true (sliding-window attention is not supported)")
    if cfg.get("rope_scaling"):
        raise ConvertError(f"{path}: rope_scaling {printable(cfg['rope_scaling'], 80)} is not supported (expected "
                           "none)")
    for flag in ("attention_bias", "mlp_bias") if family == "llama" else ("mlp_bias",):
        if cfg.get(flag):
            raise ConvertError(f"{path}: {flag} is true; {family} files have no such biases (expected false)")
    if cfg.get("hidden_act", "silu") != "silu":
        raise ConvertError(f"{path}: hidden_act {printable(cfg['hidden_act'], 40)} is not supported (expected silu)")

    def number(key, default=None, integer=True):
        v = cfg.get(key, default)
        if v is None:
            raise ConvertError(f"{path}: {key} is missing")
        ok = _is_int(v) if integer else (isinstance(v, (int, float)) and not isinstance(v, bool))
        if not ok:
            raise ConvertError(f"{path}: {key} = {printable(repr(v), 40)} (expected {'an integer' if integer else 'a number'})")
        return v

    hp = {"n_embd": number("hidden_size"), "n_ff": number("intermediate_size"),
          "n_layer": number("num_hidden_layers"), "n_head": number("num_attention_heads"),
          "n_head_kv": number("num_key_value_heads") if cfg.get("num_key_value_heads") is not None
          else number("num_attention_heads"),
          "eps": float(number("rms_norm_eps", 1e-6, integer=False)),
          "rope_theta": float(number("rope_theta", 10000.0, integer=False)),
          "n_ctx": number("max_position_embeddings", 2048), "n_vocab": number("vocab_size")}
    try:  # what the engine would refuse is refused here, before anything is written
        gw.check_hparams("llama", hp)
    except ValueError as e:
        raise ConvertError(f"{path}: {e}") from None
    head_dim = cfg.get("head_dim")
    if head_dim is not None and head_dim != hp["n_embd"] // hp["n_head"]:
        raise ConvertError(f"{path}: head_dim {printable(repr(head_dim), 30)} differs from hidden_size / num_attention_heads = "
                           f"{hp['n_embd'] // hp['n_head']} (not supported)")
    tied = bool(cfg.get("tie_word_embeddings", False))
    hp["arch"] = family
    return hp, tied


def unpermute_rope(w, n_heads):
    """Rows of one head go from rotate-half order (i, i + d/2) to adjacent
    pairs (2i, 2i+1): new row 2i+j of a head is old row j*d/2 + i."""
    rows, cols = w.shape
    d = rows // n_heads
    return w.reshape(n_heads, 2, d // 2, cols).transpose(0, 2, 1, 3).reshape(rows, cols)


def gguf_weights(state, hp, tied):
    """GGUF tensor names and layouts from the Hugging Face state dict."""
    kv_dim = hp["n_embd"] // hp["n_head"] * hp["n_head_kv"]
    expected = {}

    def take(name, shape):
        if name not in state:
            raise ConvertError(f"tensor {name} is missing from the weights")
        a = state[name]
        if tuple(a.shape) != shape:
            raise ConvertError(f"tensor {name} has shape {tuple(a.shape)} (expected {shape})")
        expected[name] = True
        if isinstance(a, torch_checkpoint.Tensor):  # read only now, its shape known to be the model's
            try:
                a = a.numpy().astype(np.float32)
            except torch_checkpoint.CheckpointError as e:
                raise ConvertError(str(e)) from None
        return a

    e, f, v = hp["n_embd"], hp["n_ff"], hp["n_vocab"]
    out = {"token_embd.weight": take("model.embed_tokens.weight", (v, e))}
    for i in range(hp["n_layer"]):
        s, p = f"model.layers.{i}.", f"blk.{i}."
        out[p + "attn_norm.weight"] = take(s + "input_layernorm.weight", (e,))
        q, k = take(s + "self_attn.q_proj.weight", (e, e)), take(s + "self_attn.k_proj.weight", (kv_dim, e))
        if hp["arch"] == "llama":  # adjacent pairs; qwen2 keeps the rotate-half order
            q, k = unpermute_rope(q, hp["n_head"]), unpermute_rope(k, hp["n_head_kv"])
        out[p + "attn_q.weight"], out[p + "attn_k.weight"] = q, k
        out[p + "attn_v.weight"] = take(s + "self_attn.v_proj.weight", (kv_dim, e))
        if hp["arch"] == "qwen2":
            out[p + "attn_q.bias"] = take(s + "self_attn.q_proj.bias", (e,))
            out[p + "attn_k.bias"] = take(s + "self_attn.k_proj.bias", (kv_dim,))
            out[p + "attn_v.bias"] = take(s + "self_attn.v_proj.bias", (kv_dim,))
        out[p + "attn_output.weight"] = take(s + "self_attn.o_proj.weight", (e, e))
        out[p + "ffn_norm.weight"] = take(s + "post_attention_layernorm.weight", (e,))
        out[p + "ffn_gate.weight"] = take(s + "mlp.gate_proj.weight", (f, e))
        out[p + "ffn_up.weight"] = take(s + "mlp.up_proj.weight", (f, e))
        out[p + "ffn_down.weight"] = take(s + "mlp.down_proj.weight", (e, f))
    out["output_norm.weight"] = take("model.norm.weight", (e,))
    if "lm_head.weight" in state and not tied:
        out["output.weight"] = take("lm_head.weight", (v, e))
    elif not tied:
        raise ConvertError("tensor lm_head.weight is missing and config.json says tie_word_embeddings is false")
    # rotary_emb.inv_freq buffers are recomputed by the engine
    extra = [k for k in state if k not in expected and not k.endswith("rotary_emb.inv_freq")
             and not (tied and k == "lm_head.weight")]
    if extra:
        raise ConvertError(f"tensor {printable(extra[0])} is not part of a {hp['arch']} model (expected none besides "
                           f"its weights; {len(extra)} such)")
    return out


# tokenizer.json's split expressions (pre_tokenizer) and the pre-tokenizer
# names llama.cpp gives them (docs/formats.md, "Byte-level BPE")
PRE_BY_PATTERN = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+": "llama-bpe",
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+": "qwen2",
}


def pre_tokenizer_name(pre, path):
    """llama.cpp's name for tokenizer.json's pre_tokenizer: ByteLevel alone
    (GPT-2's expression) is gpt-2; Digits (one by one) then ByteLevel is
    smollm; a Split by the Llama 3 or Qwen2 expression then ByteLevel is
    llama-bpe or qwen2."""
    steps = pre.get("pretokenizers", [pre]) if isinstance(pre, dict) and pre.get("type") == "Sequence" else [pre]
    kinds = [st.get("type") if isinstance(st, dict) else None for st in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits"):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        pattern = steps[0].get("pattern", {})
        name = PRE_BY_PATTERN.get(pattern.get("Regex") if isinstance(pattern, dict) else None)
        if name:
            return name
    raise ConvertError(f"{path}: pre_tokenizer {printable(json.dumps(pre), 100)} is not one of gpt-2, smollm, "
                       "llama-bpe (Llama 3) or qwen2 (expected one of those expressions)")


def read_bpe_tokenizer(model_dir, n_vocab):
    """tokenizer.json (+ tokenizer_config.json) as a gguf_writer.BPETokenizer."""
    path = os.path.join(model_dir, "tokenizer.json")
    tj = read_json(path, "tokenizer.json")
    path = printable(path)
    model = tj.get("model") if isinstance(tj, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE" or not isinstance(model.get("vocab"), dict):
        raise ConvertError(f"{path}: model is not a BPE vocabulary (expected model.type \"BPE\" with a vocab)")
    byte_alphabet = set(gw.bytes_to_unicode().values())
    tokens, types = [None] * n_vocab, [gw.TOKEN_NORMAL] * n_vocab

    def place(tok, i, kind, what):
        if not isinstance(tok, str) or not _is_int(i) or not 0 <= i < n_vocab:
            raise ConvertError(f"{path}: {what} {printable(repr(tok), 40)} has id {printable(repr(i), 20)} (expected a "
                               f"string and an id below config.json's vocab_size {n_vocab})")
        tokens[i], types[i] = tok, kind

    for tok, i in model["vocab"].items():
        if not all(c in byte_alphabet for c in tok):
            raise ConvertError(f"{path}: vocab token {printable(repr(tok), 40)} is not in GPT-2's byte alphabet "
                               "(expected a byte-level BPE vocabulary)")
        place(tok, i, gw.TOKEN_NORMAL, "vocab token")
    for added in tj.get("added_tokens") or []:
        if not isinstance(added, dict):
            raise ConvertError(f"{path}: added_tokens holds {printable(repr(added), 40)} (expected objects)")
        place(added.get("content"), added.get("id"), gw.TOKEN_CONTROL if added.get("special") else
              gw.TOKEN_USER_DEFINED, "added token")
    for i in range(n_vocab):  # ids the vocabulary lacks, as llama.cpp's converter fills them
        if tokens[i] is None:
            tokens[i], types[i] = f"[PAD{i}]", gw.TOKEN_UNUSED
    merges = []
    for m in model.get("merges") or []:
        if isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) for x in m):
            m = " ".join(m)
        if not isinstance(m, str) or m.count(" ") != 1:
            raise ConvertError(f"{path}: merge {printable(repr(m), 40)} is not two tokens (expected \"a b\" or [a, b])")
        merges.append(m)
    pre = pre_tokenizer_name(tj.get("pre_tokenizer"), path)
    cfg_path = os.path.join(model_dir, "tokenizer_config.json")
    tc = read_json(cfg_path, "tokenizer_config.json") if os.path.isfile(cfg_path) else {}
    ids = {t: i for i, t in enumerate(tokens)}

    def special(key):
        v = tc.get(key)
        v = v.get("content") if isinstance(v, dict) else v
        if v is None:
            return None
        if v not in ids:
            raise ConvertError(f"{printable(cfg_path)}: {key} {printable(repr(v), 40)} is not a token (expected one of "
                               "the vocabulary)")
        return ids[v]

    bos, eos = special("bos_token"), special("eos_token")
    add_bos = bool(tc.get("add_bos_token", False)) and bos is not None
    return gw.BPETokenizer(tokens, merges, types, pre, bos, eos, add_bos)


def convert(model_dir, out, outtype):
    if not os.path.isdir(model_dir):
        raise ConvertError(f"{printable(model_dir)}: not a directory (expected a Hugging Face model directory)")
    hp, tied = read_config(model_dir)
    tok = os.path.join(model_dir, "tokenizer.model")
    if not os.path.exists(tok):
        if not os.path.isfile(os.path.join(model_dir, "tokenizer.json")):
            raise ConvertError(f"{printable(tok)}: missing (expected the model's SentencePiece tokenizer.model or a "
                               "byte-level BPE tokenizer.json)")
        tok = read_bpe_tokenizer(model_dir, hp["n_vocab"])
    weights = gguf_weights(read_weights(model_dir), hp, tied)
    if outtype == gw.GGML_Q8_0:
        bad = [n for n, a in weights.items() if a.ndim == 2 and a.shape[1] % gw.QK]
        if bad:
            raise ConvertError(f"--outtype q8_0: {bad[0]} rows of {weights[bad[0]].shape[1]} values are not "
                               f"whole blocks of {gw.QK}")
    name = os.path.basename(os.path.normpath(model_dir))
    inputs = [os.path.join(model_dir, f) for f in os.listdir(model_dir)]
    try:  # written beside OUT and renamed over it only when whole (safe_io.write_file)
        gw.write_llama(out, hp, weights, tok, outtype, name, inputs=inputs, arch=hp["arch"])
    except ValueError as e:
        raise ConvertError(str(e)) from None


def main():
    ap = argparse.ArgumentParser(prog="convert_hf_llama.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--outtype", choices=sorted(OUTTYPES), default="f32")
    args = ap.parse_args()
    try:
        convert(args.model_dir, args.out, OUTTYPES[args.outtype])
    except OSError as e:
        raise ConvertError(f"{printable(e.filename)}: {e.strerror}") from None


if __name__ == "__main__":
    safe_io.main_guard("convert_hf_llama", main)
