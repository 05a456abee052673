"""Models and helpers the end-to-end suites share: the ctypes library, the
project's converter run on stories260K (once per run), random-weight models
from tools/make_synthetic.py (cached per run), and a subprocess helper."""
import atexit
import os
import shutil
import subprocess
import tempfile

from harness import PYTHON, ROOT, SP512, STORIES, BUILD, Skip
import numpy as np

import tinyllm as tl
from tolerance import assert_matches_reference, assert_runs_agree

LIB = tl.load_library(BUILD)
EXCERPT = os.path.join(ROOT, "tests", "data", "austen_heldout_excerpt.txt")
TMP = tempfile.mkdtemp(prefix="tinyllm-models-")
atexit.register(shutil.rmtree, TMP, True)


def need_shared():
    if not os.path.isfile(os.path.join(STORIES, "stories260K.bin")):
        raise Skip(f"{STORIES} is absent")


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


_cache = {}


def stories_gguf():
    """stories260K converted by the project's own converter (once per run)."""
    need_shared()
    if "stories" not in _cache:
        out = os.path.join(TMP, "stories260K.gguf")
        r = run([PYTHON, os.path.join(ROOT, "tools", "convert_llama2c.py"), os.path.join(STORIES, "stories260K.bin"),
                 os.path.join(STORIES, "tok512.model"), out])
        assert r.returncode == 0, r.stderr
        _cache["stories"] = out
    return _cache["stories"]


def synthetic(name, *args):
    """A random-weight model written by tools/make_synthetic.py (cached)."""
    if name not in _cache:
        out = os.path.join(TMP, name + ".gguf")
        r = run([PYTHON, os.path.join(ROOT, "tools", "make_synthetic.py"), out, *args])
        assert r.returncode == 0, r.stderr
        _cache[name] = out
    return _cache[name]


def gpt2_learned():
    return synthetic("gpt2_learned", "--arch", "gpt2", "--positions", "learned", "--dim", "48", "--layers", "3",
                     "--heads", "4", "--ctx", "48", "--tokenizer", SP512, "--seed", "11")


def gpt2_no_bias():
    """gpt2 with no bias tensors at all (nanoGPT's bias=False)."""
    return synthetic("gpt2_no_bias", "--arch", "gpt2", "--positions", "learned", "--dim", "48", "--layers", "2",
                     "--heads", "4", "--ctx", "48", "--tokenizer", SP512, "--seed", "13", "--no-bias")


def gpt2_exact_gelu():
    """gpt2 with the exact (erf) GELU and no biases: nanoGPT's model."""
    return synthetic("gpt2_exact_gelu", "--arch", "gpt2", "--positions", "learned", "--dim", "48", "--layers", "2",
                     "--heads", "4", "--ctx", "48", "--tokenizer", SP512, "--seed", "14", "--no-bias",
                     "--gelu", "erf")


def gpt2_sinusoidal():
    return synthetic("gpt2_sin", "--arch", "gpt2", "--positions", "sinusoidal", "--dim", "48", "--layers", "3",
                     "--heads", "6", "--ctx", "48", "--tokenizer", SP512, "--seed", "12")


def llama_gqa():
    return synthetic("llama_gqa", "--arch", "llama", "--dim", "64", "--layers", "3", "--heads", "8", "--kv-heads",
                     "2", "--ctx", "48", "--tokenizer", SP512, "--seed", "13")


def llama_long():
    """Context 700: prompts longer than one internal batch (512 tokens)."""
    return synthetic("llama_long", "--arch", "llama", "--dim", "32", "--layers", "2", "--heads", "4", "--kv-heads",
                     "2", "--ff", "64", "--ctx", "700", "--tokenizer", SP512, "--seed", "15")


def llama_f16():
    """F16 matrices; gate|up has 640 rows, so prefill converts several blocks."""
    return synthetic("llama_f16", "--arch", "llama", "--dim", "64", "--layers", "2", "--heads", "4", "--kv-heads",
                     "2", "--ff", "320", "--ctx", "64", "--dtype", "f16", "--tokenizer", SP512, "--seed", "16")


def llama_wide(dtype="f32"):
    """Large enough that products, attention and row work split over threads
    (and, quantized, the prefill's activation quantization by rows)."""
    return synthetic("llama_wide" + ("" if dtype == "f32" else "_" + dtype), "--arch", "llama", "--dim", "256",
                     "--layers", "2", "--heads", "8", "--kv-heads", "4", "--ff", "768", "--ctx", "320",
                     "--dtype", dtype, "--tokenizer", SP512, "--seed", "17")


def quantized(arch, dtype):
    """Q8_0 / Q4_0 matrices, used in place: llama with GQA and gate|up of 640
    rows (prefill converts several blocks), gpt2 with learned positions, or
    gpt2_odd_vocab: a vocabulary of 509 (GPT-2's 50257 is odd too), so the
    tied classifier's last group of 8 rows is padded."""
    if arch == "gpt2_odd_vocab":
        return synthetic(f"gpt2_{dtype}_vocab509", "--arch", "gpt2", "--dim", "64", "--layers", "2", "--heads", "4",
                         "--ctx", "48", "--dtype", dtype, "--vocab", "509", "--seed", "19")
    if arch == "llama":
        return synthetic(f"llama_{dtype}", "--arch", "llama", "--dim", "64", "--layers", "2", "--heads", "4",
                         "--kv-heads", "2", "--ff", "320", "--ctx", "64", "--dtype", dtype, "--tokenizer", SP512,
                         "--seed", "17")
    return synthetic(f"gpt2_{dtype}_learned", "--arch", "gpt2", "--dim", "64", "--layers", "2", "--heads", "4",
                     "--ctx", "48", "--dtype", dtype, "--tokenizer", SP512, "--seed", "18")


def gpt2_f16():
    return synthetic("gpt2_f16", "--arch", "gpt2", "--dim", "32", "--layers", "2", "--heads", "4", "--ctx", "32",
                     "--dtype", "f16", "--tokenizer", SP512, "--seed", "14")

def compare_logits(path, tokens):
    """Every position's logits against the reference, within its rounding
    spread (tests/tolerance.py)."""
    with tl.Model(path) as m, tl.Context(m, logits_all=True) as c:
        c.prefill(tokens)
        got = np.stack([c.logits_at(i) for i in range(len(tokens))])
    assert_matches_reference(path, tokens, got)


def assert_runs_within_spread(path, toks, what):
    """Prefill (every position) and token-by-token decode on 1 and 2
    threads against the reference; prefill vs decode and in place vs
    expand_f32 within twice the spread."""
    runs = {}
    with tl.Model(path) as m, tl.Model(path, expand_f32=True) as e:
        for name, model in (("prefill", m), ("expanded", e)):
            with tl.Context(model, logits_all=True) as c:
                c.prefill(toks)
                runs[name] = np.stack([c.logits_at(i) for i in range(len(toks))])
        for threads in (1, 2):
            with tl.Context(m, n_threads=threads) as c:
                steps = []
                for t in toks:
                    c.decode(t)
                    steps.append(c.logits())
                runs[f"decode t{threads}"] = np.stack(steps)
    for name, got in runs.items():
        assert np.all(np.isfinite(got)), (what, name)
        assert_matches_reference(path, toks, got, f"{what} {name}")
    assert_runs_agree(path, toks, runs["prefill"], runs["decode t1"], f"{what} prefill vs decode")
    assert_runs_agree(path, toks, runs["decode t1"], runs["decode t2"], f"{what} 1 vs 2 threads")
    assert_runs_agree(path, toks, runs["prefill"], runs["expanded"], f"{what} in place vs expand_f32")


def sanitizer_preload():
    """Under make test-asan the library is instrumented: a Python process
    that loads it needs the sanitizer runtimes preloaded (no leak checks)."""
    if "TINYLLM_CHILD_ASAN_OPTIONS" not in os.environ:
        return {}
    libs = (subprocess.run(["cc", f"-print-file-name={so}"], capture_output=True, text=True).stdout.strip()
            for so in ("libasan.so", "libubsan.so"))
    return {"LD_PRELOAD": " ".join(libs), "ASAN_OPTIONS": "detect_leaks=0"}
