#!/usr/bin/python3
"""Converts a Hugging Face LlamaForCausalLM directory into a GGUF v3 file of
architecture `llama`, with its SentencePiece tokenizer embedded.

Usage: tools/convert_hf_llama.py MODEL_DIR OUT.gguf [--outtype f32|f16|q8_0]

MODEL_DIR holds config.json, the weights and tokenizer.model:
  - weights: model.safetensors, or shards listed in
    model.safetensors.index.json (read here with a small reader of the
    safetensors layout: Debian has no safetensors package), or
    pytorch_model.bin (read by tools/torch_checkpoint.py without PyTorch;
    its unpickler resolves only what tensors need, so no code named by the
    file runs);
  - tokenizer: tokenizer.model (SentencePiece). A directory with only
    tokenizer.json (a BPE tokenizer) is refused: the engine's tokenizer is
    SentencePiece.

Hugging Face stores q/k projection rows for "rotate half" RoPE (a head's
pairs are (x[i], x[i + head_dim/2])); GGUF `llama` files pair adjacent
values (x[2i], x[2i+1]). The rows of q and k are permuted here so the
engine's RoPE rotates the same pairs.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_writer as gw  # noqa: E402
import torch_checkpoint  # noqa: E402

OUTTYPES = {"f32": gw.GGML_F32, "f16": gw.GGML_F16, "q8_0": gw.GGML_Q8_0}
SAFETENSORS_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
                      "F64": np.dtype("<f8")}
MAX_HEADER = 100 << 20  # a safetensors JSON header larger than this is not a real one


class ConvertError(Exception):
    pass


def read_safetensors(path):
    """{name: float32 array} from one .safetensors file: an 8-byte little-
    endian header length, a JSON header {name: {dtype, shape, data_offsets}},
    then the data (offsets relative to the end of the header)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ConvertError(f"{path}: {len(raw)} bytes is too short for safetensors (expected an 8-byte header length)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > min(MAX_HEADER, len(raw) - 8):
        raise ConvertError(f"{path}: header length {n} runs past the file's {len(raw)} bytes (not safetensors?)")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConvertError(f"{path}: the safetensors header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise ConvertError(f"{path}: the safetensors header is not a JSON object")
    data = memoryview(raw)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise ConvertError(f"{path}: tensor {name!r} lacks dtype/shape/data_offsets") from None
        if dtype not in SAFETENSORS_DTYPES:
            raise ConvertError(f"{path}: tensor {name!r} has dtype {dtype} (expected one of "
                               f"{', '.join(SAFETENSORS_DTYPES)})")
        np_dtype = SAFETENSORS_DTYPES[dtype]
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= begin <= end <= len(data)) or end - begin != count * np_dtype.itemsize:
            raise ConvertError(f"{path}: tensor {name!r} offsets {begin}..{end} do not fit shape {shape} of {dtype} "
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
        with open(index, encoding="utf-8") as f:
            try:
                weight_map = json.load(f)["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ConvertError(f"{index}: expected a JSON object with a \"weight_map\"") from None
        out = {}
        for shard in sorted(set(weight_map.values())):
            shard_path = os.path.join(model_dir, os.path.basename(shard))
            if not os.path.isfile(shard_path):
                raise ConvertError(f"{shard_path}: listed in {index} but missing")
            out.update(read_safetensors(shard_path))
        missing = [k for k in weight_map if k not in out]
        if missing:
            raise ConvertError(f"{index}: {missing[0]!r} is not in the shard the index names")
        return out
    if os.path.isfile(torch_bin):
        try:
            state = torch_checkpoint.load(torch_bin)
        except torch_checkpoint.CheckpointError as e:
            raise ConvertError(f"{e} (or give model.safetensors)") from None
        if not isinstance(state, dict) or not all(isinstance(v, torch_checkpoint.Tensor) for v in state.values()):
            raise ConvertError(f"{torch_bin}: expected a state dict of tensors")
        try:
            return {k: v.numpy().astype(np.float32) for k, v in state.items()}
        except torch_checkpoint.CheckpointError as e:
            raise ConvertError(str(e)) from None
    raise ConvertError(f"{model_dir}: no weights (expected model.safetensors, model.safetensors.index.json "
                       "or pytorch_model.bin)")


def read_config(model_dir):
    path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: missing (expected a Hugging Face model directory)")
    with open(path, encoding="utf-8") as f:
        try:
            cfg = json.load(f)
        except json.JSONDecodeError as e:
            raise ConvertError(f"{path}: not JSON ({e})") from None
    arch = cfg.get("architectures") or [cfg.get("model_type", "?")]
    if arch[0] != "LlamaForCausalLM" and cfg.get("model_type") != "llama":
        raise ConvertError(f"{path}: architecture {arch[0]} is not supported (expected LlamaForCausalLM)")
    if cfg.get("rope_scaling"):
        raise ConvertError(f"{path}: rope_scaling {cfg['rope_scaling']} is not supported (expected none)")
    for flag in ("attention_bias", "mlp_bias"):
        if cfg.get(flag):
            raise ConvertError(f"{path}: {flag} is true; llama-family files have no biases (expected false)")
    if cfg.get("hidden_act", "silu") != "silu":
        raise ConvertError(f"{path}: hidden_act {cfg['hidden_act']} is not supported (expected silu)")
    try:
        hp = {"n_embd": int(cfg["hidden_size"]), "n_ff": int(cfg["intermediate_size"]),
              "n_layer": int(cfg["num_hidden_layers"]), "n_head": int(cfg["num_attention_heads"]),
              "n_head_kv": int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"]),
              "eps": float(cfg.get("rms_norm_eps", 1e-6)), "rope_theta": float(cfg.get("rope_theta", 10000.0)),
              "n_ctx": int(cfg.get("max_position_embeddings", 2048)), "n_vocab": int(cfg["vocab_size"])}
    except KeyError as e:
        raise ConvertError(f"{path}: {e.args[0]} is missing") from None
    except (TypeError, ValueError) as e:
        raise ConvertError(f"{path}: a hyperparameter is not a number ({e})") from None
    if min(hp["n_embd"], hp["n_ff"], hp["n_layer"], hp["n_head"], hp["n_head_kv"], hp["n_ctx"], hp["n_vocab"]) <= 0 \
            or hp["n_embd"] % hp["n_head"] or hp["n_head"] % hp["n_head_kv"] or (hp["n_embd"] // hp["n_head"]) % 2:
        raise ConvertError(f"{path}: implausible sizes {hp}")
    head_dim = cfg.get("head_dim")
    if head_dim is not None and head_dim != hp["n_embd"] // hp["n_head"]:
        raise ConvertError(f"{path}: head_dim {head_dim} differs from hidden_size / num_attention_heads = "
                           f"{hp['n_embd'] // hp['n_head']} (not supported)")
    tied = bool(cfg.get("tie_word_embeddings", False))
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
        return a

    e, f, v = hp["n_embd"], hp["n_ff"], hp["n_vocab"]
    out = {"token_embd.weight": take("model.embed_tokens.weight", (v, e))}
    for i in range(hp["n_layer"]):
        s, p = f"model.layers.{i}.", f"blk.{i}."
        out[p + "attn_norm.weight"] = take(s + "input_layernorm.weight", (e,))
        out[p + "attn_q.weight"] = unpermute_rope(take(s + "self_attn.q_proj.weight", (e, e)), hp["n_head"])
        out[p + "attn_k.weight"] = unpermute_rope(take(s + "self_attn.k_proj.weight", (kv_dim, e)), hp["n_head_kv"])
        out[p + "attn_v.weight"] = take(s + "self_attn.v_proj.weight", (kv_dim, e))
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
        raise ConvertError(f"tensor {extra[0]} is not part of a Llama model (expected none besides the Llama "
                           f"weights; {len(extra)} such)")
    return out


def convert(model_dir, out, outtype):
    if not os.path.isdir(model_dir):
        raise ConvertError(f"{model_dir}: not a directory (expected a Hugging Face model directory)")
    hp, tied = read_config(model_dir)
    tok = os.path.join(model_dir, "tokenizer.model")
    if not os.path.isfile(tok):
        if os.path.isfile(os.path.join(model_dir, "tokenizer.json")):
            raise ConvertError(f"{model_dir}: only tokenizer.json (a Hugging Face BPE tokenizer); the engine reads "
                               "SentencePiece models (expected tokenizer.model)")
        raise ConvertError(f"{tok}: missing (expected the model's SentencePiece tokenizer)")
    weights = gguf_weights(read_weights(model_dir), hp, tied)
    if outtype == gw.GGML_Q8_0:
        bad = [n for n, a in weights.items() if a.ndim == 2 and a.shape[1] % gw.QK]
        if bad:
            raise ConvertError(f"--outtype q8_0: {bad[0]} rows of {weights[bad[0]].shape[1]} values are not "
                               f"whole blocks of {gw.QK}")
    name = os.path.basename(os.path.normpath(model_dir))
    tmp = out + ".part"  # renamed only when whole: a failed run leaves no half-written model
    try:
        gw.write_llama(tmp, hp, weights, tok, outtype, name)
        os.replace(tmp, out)
    except ValueError as e:
        raise ConvertError(str(e)) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main():
    ap = argparse.ArgumentParser(prog="convert_hf_llama.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--outtype", choices=sorted(OUTTYPES), default="f32")
    args = ap.parse_args()
    try:
        convert(args.model_dir, args.out, OUTTYPES[args.outtype])
    except ConvertError as e:
        print(f"convert_hf_llama: {e}", file=sys.stderr)
        sys.exit(1)
    except OSError as e:
        print(f"convert_hf_llama: {e.filename}: {e.strerror}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
