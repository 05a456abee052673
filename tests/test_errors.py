#!/usr/bin/python3
"""The error catalog: every kind of bad model file or argument, fed to the
CLI or the library, must give a one-line message naming the file or argument
and the problem, and the documented exit code — never a crash or a hang.
Prints one PASS/FAIL/SKIP line per test (see tests/run.sh)."""
import os
import re
import shutil
import struct
import subprocess

import numpy as np

from harness import BUILD, ROOT, TINYLLM, Skip, Suite
import tinyllm as tl  # noqa: E402
from micro_model import micro_writer  # noqa: E402

SUITE = Suite("errors")
test = SUITE.test
TMP = SUITE.tmp
LIB = tl.load_library(BUILD)


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def tensor_info_pos(data, name):
    """Offset just after a tensor's name in the header (n_dims follows)."""
    needle = struct.pack("<Q", len(name)) + name.encode()
    i = data.index(needle)
    return i + len(needle)


def expect(args, code, *needles, path=None):
    r = subprocess.run([TINYLLM, *args], capture_output=True, text=True, timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == code, (args, r.returncode, r.stderr)
    assert len(lines) == 1, f"expected a one-line error, got: {r.stderr!r}"
    for n in needles:
        assert n in r.stderr, (n, r.stderr)
    if path:
        assert path in r.stderr, (path, r.stderr)
    return r.stderr


def expect_model_error(name, data, *needles):
    path = write(name, data)
    return expect(["info", path], 1, *needles, path=path)


VALID = None


def valid_bytes():
    global VALID
    if VALID is None:
        VALID = micro_writer().to_bytes()
    return VALID


@test
def micro_model_is_valid():
    path = write("valid.gguf", valid_bytes())
    r = subprocess.run([TINYLLM, "info", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@test
def empty_file():
    expect_model_error("empty.gguf", b"", "empty file")


@test
def directory():
    expect(["info", TMP], 1, "is a directory", path=TMP)


@test
def missing_file():
    p = os.path.join(TMP, "nope.gguf")
    expect(["info", p], 1, "cannot open", "No such file", path=p)


@test
def unreadable_file():
    path = write("unreadable.gguf", valid_bytes())
    os.chmod(path, 0)
    if os.geteuid() == 0:  # root reads anything: run as nobody
        if not shutil.which("setpriv"):
            raise Skip("running as root without setpriv")
        os.chmod(TMP, 0o755)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", TINYLLM, "info", path],
                           capture_output=True, text=True)
    else:
        r = subprocess.run([TINYLLM, "info", path], capture_output=True, text=True)
    assert r.returncode == 1 and "Permission denied" in r.stderr and path in r.stderr, r.stderr


@test
def fifo_is_refused_without_hanging():
    path = os.path.join(TMP, "fifo.gguf")
    os.mkfifo(path)
    expect(["info", path], 1, "not a regular file", path=path)


@test
def wrong_magic():
    expect_model_error("magic.gguf", b"GGUX" + valid_bytes()[4:], "not a GGUF file", "expected \"GGUF\"")


@test
def html_page():
    expect_model_error("page.gguf", b"\n<!DOCTYPE html>\n<html><body>Not found</body></html>\n", "HTML page")


@test
def git_lfs_pointer():
    data = b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n"
    expect_model_error("lfs.gguf", data, "Git LFS pointer", "fetch the real file")


@test
def llama2c_checkpoint():
    dim, hidden, layers, heads, kv, vocab, seq = 8, 16, 1, 2, 2, 32, 4
    floats = vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * dim * dim + 3 * dim * hidden) + dim + seq * 4
    data = struct.pack("<7i", dim, hidden, layers, heads, kv, vocab, seq) + b"\0" * (4 * floats)
    expect_model_error("model.bin", data, "llama2.c checkpoint", "tools/convert_llama2c.py")


@test
def ggml_legacy_magic():
    expect_model_error("old.bin", b"tjgg" + b"\0" * 64, "pre-GGUF")


@test
def gguf_version_1_and_4():
    v = valid_bytes()
    expect_model_error("v1.gguf", v[:4] + struct.pack("<I", 1) + v[8:], "version 1", "expected version 3")
    expect_model_error("v4.gguf", v[:4] + struct.pack("<I", 4) + v[8:], "version 4", "expected version 3")


@test
def big_endian_gguf():
    v = valid_bytes()
    expect_model_error("be.gguf", v[:4] + struct.pack(">I", 3) + v[8:], "big-endian")


@test
def huge_counts():
    v = valid_bytes()
    expect_model_error("kvcount.gguf", v[:16] + struct.pack("<Q", 2**62) + v[24:], "metadata count",
                       "cannot fit")
    expect_model_error("tcount.gguf", v[:8] + struct.pack("<Q", 2**63 + 7) + v[16:], "tensor count", "cannot fit")
    # an array whose element count times element size overflows 64 bits
    i = v.index(b"tokenizer.ggml.scores") + len("tokenizer.ggml.scores") + 4 + 4
    expect_model_error("arrcount.gguf", v[:i] + struct.pack("<Q", 2**62 + 1) + v[i + 8:], "truncated or corrupt",
                       "tokenizer.ggml.scores")
    # tensor dims whose product overflows
    p = tensor_info_pos(v, "token_embd.weight")
    expect_model_error("dims.gguf", v[:p + 4] + struct.pack("<QQ", 2**33, 2**33) + v[p + 20:], "token_embd.weight",
                       "dimension")


@test
def string_length_past_end():
    v = valid_bytes()
    expect_model_error("strlen.gguf", v[:24] + struct.pack("<Q", len(v) * 2) + v[32:], "truncated or corrupt",
                       "metadata key")
    expect_model_error("strlen2.gguf", v[:24] + struct.pack("<Q", 2**64 - 1) + v[32:], "truncated or corrupt")


@test
def tensor_offset_past_end_or_misaligned():
    v = valid_bytes()
    p = tensor_info_pos(v, "output_norm.bias") + 4 + 8 + 4  # n_dims, one dim, type -> offset
    (off,) = struct.unpack_from("<Q", v, p)
    expect_model_error("offset.gguf", v[:p] + struct.pack("<Q", off + 32 * 1000) + v[p + 8:], "output_norm.bias",
                       "past the end")
    expect_model_error("align.gguf", v[:p] + struct.pack("<Q", off + 4) + v[p + 8:], "output_norm.bias",
                       "not a multiple of the alignment")
    expect_model_error("offset_huge.gguf", v[:p] + struct.pack("<Q", 2**64 - 32) + v[p + 8:], "past the end")


@test
def duplicate_key_and_tensor():
    w = micro_writer()
    w.kv.append(w.kv[1])
    expect_model_error("dupkey.gguf", w.to_bytes(), "duplicate metadata key", "gpt2.context_length")
    w = micro_writer()
    w.tensors.append(w.tensors[2])
    expect_model_error("duptensor.gguf", w.to_bytes(), "duplicate tensor name", "blk.0.attn_norm.weight")


@test
def unknown_tensor_type():
    v = valid_bytes()
    p = tensor_info_pos(v, "output_norm.bias") + 4 + 8
    expect_model_error("type.gguf", v[:p] + struct.pack("<I", 99) + v[p + 4:], "unknown type id 99")


@test
def unsupported_tensor_type():
    """The message lists every format the engine reads, in its table's order:
    exactly the types the numpy reference dequantizer defines."""
    import quants_reference as qr
    names = [qr.NAMES[t] for t in sorted(qr.BLOCK, key=lambda t: list(qr.NAMES).index(t))]
    v = valid_bytes()
    p = tensor_info_pos(v, "output_norm.bias") + 4 + 8
    err = expect_model_error("i32.gguf", v[:p] + struct.pack("<I", 26) + v[p + 4:], "output_norm.bias", "type I32",
                             "expected F32")
    listed = re.search(r"\(expected ([^)]*)\)", err).group(1).replace(" or ", ", ").split(", ")
    assert sorted(listed) == sorted(names), (listed, names)


@test
def missing_required_key():
    expect_model_error("nokey.gguf", micro_writer(drop_key="gpt2.block_count").to_bytes(),
                       "missing metadata key 'gpt2.block_count'")
    expect_model_error("noarch.gguf", micro_writer(drop_key="general.architecture").to_bytes(),
                       "general.architecture")


@test
def key_of_wrong_type():
    w = micro_writer(key_override=("gpt2.block_count", "s", "one"))
    expect_model_error("keytype.gguf", w.to_bytes(), "'gpt2.block_count' has type string", "expected an integer")


@test
def tensor_of_wrong_shape():
    expect_model_error("shape.gguf", micro_writer(shape_bug=True).to_bytes(), "blk.0.ffn_up.weight",
                       "shape [8, 17]", "expected [8, 16]")


@test
def missing_tensor():
    w = micro_writer()
    w.tensors = [t for t in w.tensors if t[0] != "blk.0.ffn_down.weight"]
    expect_model_error("notensor.gguf", w.to_bytes(), "missing tensor 'blk.0.ffn_down.weight'")


@test
def unsupported_architecture():
    w = micro_writer(arch="mamba")
    expect_model_error("arch.gguf", w.to_bytes(), "architecture 'mamba' is not supported")


@test
def tokenizer_vocabulary_mismatch():
    w = micro_writer(vocab=270, tokens_vocab=260)
    expect_model_error("vocab.gguf", w.to_bytes(), "260 pieces", "vocabulary", "270")


@test
def nan_weights_with_check_tensors():
    path = write("nan.gguf", micro_writer(nan=True).to_bytes())
    r = subprocess.run([TINYLLM, "info", path], capture_output=True, text=True)
    assert r.returncode == 0, "without --check-tensors the file loads"
    expect(["info", path, "--check-tensors"], 1, "blk.0.ffn_up.weight", "NaN", path=path)
    expect(["generate", "-m", path, "-p", "a", "--check-tensors"], 1, "NaN", path=path)


@test
def non_finite_logits_are_reported_not_sampled():
    """A NaN weight, or one finite but huge weight (3e38: passes
    --check-tensors, overflows to inf in the logits), used to crash the
    sampler (heap overflow, exit by signal). Now generate names the position
    and exits 3, whatever the sampler settings; a penalty that overflows a
    logit to +inf (2e-38) still samples."""
    for name, value in (("nan_out_norm.gguf", np.nan), ("huge_out_norm.gguf", 3e38)):
        path = write(name, micro_writer(poke=("output_norm.weight", 3, value)).to_bytes())
        for extra in (["--min-p", "0"], ["--temp", "0"], ["--top-k", "0", "--top-p", "1", "--min-p", "0"]):
            expect(["generate", "-m", path, "-p", "a", "-n", "3", "--seed", "1", *extra], 3, "not finite",
                   "after position")
    ok = subprocess.run([TINYLLM, "generate", "-m", write("ok.gguf", valid_bytes()), "-p", "a", "-n", "3",
                         "--repeat-penalty", "2e-38", "--min-p", "0", "--seed", "1"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, (ok.returncode, ok.stderr)


@test
def truncated_at_every_offset():
    """Every prefix that cuts into the header or the tensor data fails
    cleanly; only the trailing alignment padding may be dropped."""
    v = valid_bytes()
    path = os.path.join(TMP, "trunc.gguf")
    # the end of the last tensor's data: where the required bytes stop
    last = tensor_info_pos(v, "output_norm.bias")
    need = len(v) - (32 - (8 * 4) % 32) % 32  # the last tensor (8 floats) is padded to 32
    del last
    failures = 0
    for n in range(len(v)):
        with open(path, "wb") as f:
            f.write(v[:n])
        try:
            tl.Model(path).close()
            ok = True
        except tl.TinyLLMError as e:
            ok = False
            assert e.code in (2, 3, 4, 5), (n, e.code, str(e))
            assert path in str(e) and "\n" not in str(e), (n, str(e))
        if ok != (n >= need):
            failures += 1
            assert False, f"prefix of {n} bytes: loaded={ok} (file {len(v)} bytes, data ends at {need})"
    assert failures == 0


@test
def cli_argument_errors():
    path = write("valid.gguf", valid_bytes())
    cases = [(["generate", "-m", path, "-p", "hi", "--frobnicate"], "unknown option '--frobnicate'"),
             (["generate", "-m", path, "-p", "hi", "--temp"], "--temp needs a value"),
             (["generate", "-m", path, "-p", "hi", "--top-p", "1.5"], "--top-p 1.5"),
             (["generate", "-m", path, "-p", "hi", "--min-p", "2"], "--min-p 2"),
             (["generate", "-m", path, "-p", "hi", "--repeat-penalty", "0"], "--repeat-penalty 0"),
             (["generate", "-m", path, "-p", "hi", "-t", "-1"], "-t -1"),
             (["generate", "-m", path, "-p", "hi", "--seed", "-5"], "--seed '-5'"),
             (["generate", "-m", path], "one of -p TEXT or -f FILE"),
             (["generate", "-p", "hi"], "missing -m"),
             (["generate", "-m", path, "-p", "a b c d e f g h i j k l"], "does not fit the context"),
             (["perplexity", "-m", path], "missing -f"),
             (["verify", "-m", path], "missing --golden"),
             (["bench", "-m", path, "-o", "xml"], "-o xml"),
             (["bench", "-m", path, "-p", "1,x"], "comma-separated"),
             (["frobnicate"], "unknown command 'frobnicate'")]
    for args, needle in cases:
        expect(args, 2, needle)


@test
def library_rejects_bad_arguments():
    """Public functions check NULL and out-of-range arguments and return an
    error code instead of crashing."""
    err = tl.Error()
    out = tl.C.c_void_p()
    assert LIB.tinyllm_model_load(None, None, tl.C.byref(out), tl.C.byref(err)) == 6
    assert LIB.tinyllm_model_load(b"x", None, None, None) == 6
    assert LIB.tinyllm_context_create(None, None, tl.C.byref(out), tl.C.byref(err)) == 6
    assert LIB.tinyllm_context_prefill(None, None, 0, None) == 6
    assert LIB.tinyllm_context_decode(None, 1, None) == 6
    assert not LIB.tinyllm_context_logits(None)
    assert LIB.tinyllm_tokenize(None, b"x", 1, 1, None, 0, None, None) == 6
    path = write("valid.gguf", valid_bytes())
    with tl.Model(path) as m, tl.Context(m) as c:
        # the C checks themselves (the Python module now refuses these before C)
        for bad in (-1, 260, 1 << 30):
            err = tl.Error()
            assert LIB.tinyllm_context_decode(c.h, bad, tl.C.byref(err)) == 6, f"token {bad} accepted"
            assert b"out of range" in err.message, err.message
        err = tl.Error()
        arr = (tl.C.c_int * 3)(1, 2, 999)
        assert LIB.tinyllm_context_prefill(c.h, arr, 3, tl.C.byref(err)) != 0, "out-of-range prefill accepted"
        assert b"tokens[2] = 999" in err.message, err.message
        assert not LIB.tinyllm_context_logits_at(c.h, 0), "logits_at without logits_all"
        err = tl.Error()
        assert LIB.tinyllm_context_rewind(c.h, 5, tl.C.byref(err)) == 6, "rewind past n_past"
        assert b"n_keep 5" in err.message, err.message  # every failing call leaves a message
        assert LIB.tinyllm_token_piece(m.h, -1) is None and LIB.tinyllm_token_piece(m.h, 260) is None
        err = tl.Error()
        assert LIB.tinyllm_detok_push(m.h, None, 5, None, 0, tl.C.byref(err)) == -1
        assert err.code == 6 and b"detok_push" in err.message, err.message
        arr, out, n = (tl.C.c_int * 2)(1, 5000), tl.C.create_string_buffer(64), tl.C.c_size_t()
        assert LIB.tinyllm_detokenize(m.h, arr, 2, out, 64, tl.C.byref(n), tl.C.byref(err)) == 6, \
            "out-of-range detokenize accepted"


@test
def model_file_replaced_or_deleted_while_generating():
    """A loaded model keeps working when its file is deleted or replaced by
    rename (the documented safe ways to change it); with no_mmap even an
    in-place truncation cannot affect it."""
    src = os.path.join(ROOT, "tests", "models", "austen-tiny-sin.gguf")
    path = os.path.join(TMP, "live.gguf")
    for action in ("delete", "rename", "truncate_no_mmap"):
        shutil.copy(src, path)
        with tl.Model(path, no_mmap=action.endswith("no_mmap")) as m, tl.Context(m) as c:
            before = c.greedy([1, 50, 60, 70], 8)
            if action == "delete":
                os.unlink(path)
            elif action == "rename":
                other = path + ".new"
                shutil.copy(os.path.join(ROOT, "tests", "models", "gpt2-learned-tiny.gguf"), other)
                os.rename(other, path)
            else:
                with open(path, "r+b") as f:
                    f.truncate(100)
            c.rewind(0)
            after = c.greedy([1, 50, 60, 70], 8)
            assert before == after, action


if __name__ == "__main__":
    SUITE.main()
