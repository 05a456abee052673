#!/usr/bin/python3
"""Hostile inputs, round two (issue 12): each test reproduces one defect
found by a hostile-input hunt -- a crash, a hang, a deleted file, a
multi-line or garbage message -- and checks the fixed behaviour. Each one
failed on the code before the fix. Prints one PASS/FAIL/SKIP line per test."""
import json
import os
import stat
import subprocess

import numpy as np

from harness import BUILD, ROOT, TINY_SIN, TINYLLM, Suite
import golden as golden_file  # noqa: E402
import tinyllm as tl  # noqa: E402
from micro_model import micro_writer  # noqa: E402
import gguf_writer as gw  # noqa: E402

SUITE = Suite("hostile")
test = SUITE.test
TMP = SUITE.tmp
LIB = tl.load_library(BUILD)
GOLDEN = os.path.join(ROOT, "tests", "golden", "austen-tiny-sin.tlg")


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def run(args, timeout=30, **kw):
    """The CLI with a deadline: a hang is a failure, not a stuck suite."""
    return subprocess.run([TINYLLM, *args], capture_output=True, timeout=timeout, **kw)


def one_line(r, code, *needles):
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == code, (r.returncode, code, err[-400:])
    assert len(err.strip().splitlines()) == 1, f"expected one line, got {err!r}"
    assert "\x1b" not in err and "\r" not in err, f"control characters reached the terminal: {err!r}"
    for n in needles:
        assert n in err, (n, err)
    return err


@test
def perplexity_on_a_one_token_context_ends():
    """context_length 1: the default stride was ctx/2 = 0 and the window loop
    never advanced (100% CPU forever)."""
    path = write("ctx1.gguf", micro_writer(ctx=1).to_bytes())
    text = write("t.txt", b"some text to score")
    one_line(run(["perplexity", "-m", path, "-f", text]), 1, "context is 1 token", path)


@test
def readers_refuse_fifos_and_devices_without_blocking():
    """verify --golden FIFO blocked in fopen; perplexity -f /dev/zero grew
    until allocation failed; -f DIR said 'empty file'."""
    fifo = os.path.join(TMP, "golden.fifo")
    os.mkfifo(fifo)
    one_line(run(["verify", "-m", TINY_SIN, "--golden", fifo]), 1, "FIFO", fifo)
    for path, kind in ((fifo, "FIFO"), ("/dev/zero", "device"), (TMP, "directory")):
        one_line(run(["perplexity", "-m", TINY_SIN, "-f", path]), 2, kind, path)


@test
def perplexity_reports_the_tokenizers_own_error():
    """Invalid UTF-8 in the text said 'out of memory'."""
    text = write("bad.txt", b"valid start \xff\xfe then bytes")
    one_line(run(["perplexity", "-m", TINY_SIN, "-f", text]), 2, "UTF-8", text)


def _golden_variant(name, prompt_ids=None, cont_ids=None, taps=None):
    """The tiny model's golden with one part replaced."""
    g = golden_file.read_golden(GOLDEN)
    path = os.path.join(TMP, name)
    golden_file.write_golden(path, TINY_SIN, g[1], g[2] if prompt_ids is None else prompt_ids,
                             g[3] if cont_ids is None else cont_ids, g[4] if taps is None else taps)
    return path


@test
def goldens_that_verify_nothing_or_bad_ids_are_bad_files():
    """Out-of-range prompt ids gave exit 3 'tokens[1] = 999 is out of range';
    a golden with no taps and no continuation reported PASS."""
    bad = _golden_variant("ids.tlg", prompt_ids=[1, 99999, 5])
    one_line(run(["verify", "-m", TINY_SIN, "--golden", bad]), 1, "99999", bad)
    bad = _golden_variant("cont.tlg", cont_ids=[5, -3])
    one_line(run(["verify", "-m", TINY_SIN, "--golden", bad]), 1, "-3", bad)
    empty = _golden_variant("empty.tlg", cont_ids=[], taps={})
    one_line(run(["verify", "-m", TINY_SIN, "--golden", empty]), 1, "verifies nothing", empty)
    # found by fuzz_golden: a tap name with a newline made a two-line message
    odd = _golden_variant("odd.tlg", taps={"0.q\n\x1b[31m": np.zeros((2, 2), np.float32)})
    one_line(run(["verify", "-m", TINY_SIN, "--golden", odd]), 1, "not a tap name", odd)


@test
def strings_from_the_file_reach_messages_as_one_line():
    """A newline or an escape sequence in a string from the file made a
    two-line message or reached the terminal: architecture, tokenizer model,
    position encoding, tensor names, keys; and a NUL inside the architecture
    printed another name."""
    evil = "x\n\x1b[31mred\x1b[0m\r"
    cases = [
        ("arch.gguf", micro_writer(key_override=("general.architecture", "s", evil)), "not supported"),
        ("arch_nul.gguf", micro_writer(key_override=("general.architecture", "s", "gpt2\x00evil")), "gpt2\\x00evil"),
        ("pos.gguf", micro_writer(extra_keys=[("tinyllm.position_encoding", "s", evil)]), "tinyllm.position_encoding"),
        ("tok.gguf", micro_writer(tokenizer_model=evil), "tokenizer"),
        ("tensor.gguf", micro_writer(extra={"bad" + evil: np.zeros(3)}), None),
    ]
    for name, w, needle in cases:
        path = write(name, w.to_bytes())
        r = run(["info", path, "--metadata"])
        if needle is None:  # a valid model with a hostile tensor name: info lists it on one line
            out = r.stdout.decode("utf-8", "replace")
            assert r.returncode == 0 and "\x1b" not in out and "bad" in out, (r.returncode, out[-300:])
            assert any(ln.strip().startswith("badx\\x0A\\x1B[31mred") for ln in out.splitlines()), out[-600:]
            continue
        err = one_line(r, 1, needle)
        assert "\\x1B" in err or "\\x00" in err or name == "pos.gguf" or name == "tok.gguf", err


@test
def metadata_key_with_a_nul_is_refused():
    """'general.na\\0me' was looked up again by its truncated name: info
    --metadata printed stack garbage (valgrind: uninitialised read)."""
    path = write("nulkey.gguf", micro_writer(extra_keys=[("general.na\x00me", "f", 1.5)]).to_bytes())
    one_line(run(["info", path, "--metadata"]), 1, "NUL", "general.na\\x00me", path)


@test
def huge_counts_are_usage_errors_not_overflows():
    """generate -n 2147483647 overflowed (UBSan) and said 'out of memory';
    bench -p/-n 2147483647 overflowed too."""
    one_line(run(["generate", "-m", TINY_SIN, "-p", "Hi", "-n", "2147483647", "--seed", "1", "--no-context-shift"]), 2,
             "exceeds the context")
    one_line(run(["bench", "-m", TINY_SIN, "-p", "2147483647", "-n", "1"]), 2, "-p")
    one_line(run(["bench", "-m", TINY_SIN, "-p", "1", "-n", "2147483647"]), 2, "-n")


@test
def bench_edge_cases():
    """-p 0 -n 0 exited 0 with an empty table after decoding an uninitialised
    token; -p 1000 on a 256-context model pointed at a --ctx flag bench did
    not have."""
    one_line(run(["bench", "-m", TINY_SIN, "-p", "0", "-n", "0"]), 2, "nothing to measure")
    ctx = tl.Model(TINY_SIN)
    n_ctx = ctx.info.n_ctx_train
    ctx.close()
    one_line(run(["bench", "-m", TINY_SIN, "-p", str(n_ctx + 1), "-n", "1"]), 2, "-p", str(n_ctx))
    one_line(run(["bench", "-m", TINY_SIN, "-p", "1", "-t", "1,,2"]), 2, "-t")


@test
def numeric_flags_say_what_is_wrong():
    """--tol -1 silently meant the default; --temp 1e-39 said 'expected a
    number'; --top-p 1.0000001 printed '--top-p 1: expected (0, 1]'."""
    one_line(run(["verify", "-m", TINY_SIN, "--golden", GOLDEN, "--tol", "-1"]), 2, "--tol")
    r = run(["generate", "-m", TINY_SIN, "-p", "Hi", "-n", "2", "--temp", "1e-39", "--seed", "1"])
    assert r.returncode == 0, r.stderr
    one_line(run(["generate", "-m", TINY_SIN, "-p", "Hi", "--top-p", "1.0000001"]), 2, "--top-p 1.0000001")
    one_line(run(["generate", "-m", TINY_SIN, "-p", "Hi", "--temp", "1e39"]), 2, "--temp", "out of range")


def _attn(png, code=0):
    r = run(["attn", "-m", TINY_SIN, "-p", "It is a truth", "--layer", "0", "--head", "1", "--png", png])
    if code:
        return one_line(r, code)
    assert r.returncode == 0, r.stderr
    return r


@test
def output_files_are_written_safely():
    """attn --png PATH deleted what was at PATH (a device node was replaced
    by a regular file; as root, --png /dev/null would destroy it) and
    replaced symlinks. Now: a FIFO, directory or device is refused and left
    as it was; a symlink is written through; a failed write leaves the old
    file; no temporary file is left behind."""
    fifo = os.path.join(TMP, "fifo.png")
    os.mkfifo(fifo)
    _attn(fifo, 3)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the FIFO was replaced"
    d = os.path.join(TMP, "dir.png")
    os.mkdir(d)
    assert "directory" in _attn(d, 3) and os.path.isdir(d)
    dev = os.path.join(TMP, "null-dev.png")
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError:
        dev = None  # not allowed here: the FIFO and the directory cover the rule
    if dev:
        assert "device" in _attn(dev, 3) and stat.S_ISCHR(os.stat(dev).st_mode), "the device node was replaced"
    real = write("real.png", b"old contents")
    link = os.path.join(TMP, "link.png")
    os.symlink(real, link)
    _attn(link)
    assert os.path.islink(link), "the symlink was replaced"
    with open(real, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", "the file the symlink names was not written"
    dangling = os.path.join(TMP, "dangling.png")
    os.symlink(os.path.join(TMP, "nowhere", "x.png"), dangling)
    assert "symlink" in _attn(dangling, 3)
    leftovers = [n for n in os.listdir(TMP) if n.startswith(".tinyllm-tmp")]
    assert not leftovers, leftovers


@test
def attn_write_failures_are_reported_on_stderr():
    """--png /nonexistent/a.png or --png '' exited 3 with the message on
    stdout and nothing on stderr."""
    err = _attn("/nonexistent-dir/a.png", 3)
    assert "tinyllm attn:" in err and "/nonexistent-dir/a.png" in err, err
    one_line(run(["attn", "-m", TINY_SIN, "-p", "Hi", "--layer", "0", "--head", "0", "--png", ""]), 2, "--png")


@test
def step_never_splits_a_long_line():
    """Lines over 1023 bytes were cut and the rest ran as a separate command
    (dump logits <long path>.npy wrote a file with a truncated name)."""
    long_dir = os.path.join(TMP, "d" * 200)
    os.makedirs(long_dir, exist_ok=True)
    deep = os.path.join(long_dir, "x" * 200, "y" * 200, "z" * 200)
    os.makedirs(deep, exist_ok=True)
    target = os.path.join(deep, "w" * 150 + ".npy")
    too_long = "dump logits " + os.path.join(deep, "v" * 70000 + ".npy")
    script = f"dump logits {target}\n{too_long}\ntop 1\n"
    r = subprocess.run([TINYLLM, "step", "-m", TINY_SIN, "-p", "Hi", "--json"], input=script.encode(),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(ln) for ln in r.stdout.decode().splitlines()]
    assert len(lines) == 3, lines
    assert lines[0].get("file") == target and os.path.exists(target), lines[0]  # 1000+ bytes: read whole
    assert "error" in lines[1] and "longer than" in lines[1]["error"], lines[1]
    assert lines[2].get("cmd") == "top", lines[2]
    assert sorted(os.listdir(deep)) == [os.path.basename(target)], os.listdir(deep)


@test
def step_json_is_valid_json_for_any_path():
    """A path containing a double quote gave invalid JSON."""
    path = os.path.join(TMP, 'we"ird\\name.npy')  # no blanks: step's commands split on them
    r = subprocess.run([TINYLLM, "step", "-m", TINY_SIN, "-p", "Hi", "--json", "--script",
                        f"dump logits {path}; lens --png {path}.png; attn 0 0 --png {path}.a.png"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = [json.loads(ln) for ln in r.stdout.decode().splitlines()]
    assert out[0]["file"] == path and out[1]["png"] == path + ".png" and out[2]["png"] == path + ".a.png", out
    assert os.path.exists(path) and os.path.exists(path + ".png")


@test
def info_sizes_nothing_by_the_files_maximum_context():
    """A gpt2 file with sinusoidal positions and context_length 2^20 took
    8-10 s and 1 GB to `info`: the position table was built at load for the
    file's maximum context. Now it is built per context, for the length the
    context asks for. Checked by memory (peak RSS of `info`), not by time."""
    sinusoidal = [("tinyllm.position_encoding", "s", "sinusoidal")]
    path = write("long_ctx.gguf", micro_writer(ctx=1 << 20, dim=64, extra_keys=sinusoidal, learned=False).to_bytes())
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True); "
             "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    r = subprocess.run(["/usr/bin/python3", "-c", probe, TINYLLM, "info", path], capture_output=True, text=True,
                       timeout=60)
    code, rss_kib = map(int, r.stdout.split())
    assert code == 0, r.stderr
    assert rss_kib < 50 * 1024, f"info took {rss_kib / 1024:.0f} MiB"  # a 2^20 x 64 table alone is 256 MiB
    # a short context on the same file builds a short table and runs
    r = run(["generate", "-m", path, "-p", "a", "-n", "2", "--ctx", "16", "--seed", "1"])
    assert r.returncode == 0, r.stderr


@test
def quantize_reads_misaligned_tensors_and_files_that_are_not_models():
    """general.alignment 1 lets F16 data start at an odd address (the
    quantizer read it through a uint16_t pointer: undefined behaviour, which
    UBSan aborts on), and a GGUF that is not a runnable model is still a
    file quantize can convert (its summary loaded both files as models and
    failed after writing). Values read back equal the Python writer's."""
    import gguf_reader
    import gguf_writer as gw
    a = (np.random.default_rng(3).standard_normal((4, 64)) * 0.1).astype(np.float32)
    src = os.path.join(TMP, "odd.gguf")
    for name_pad in ("", "x"):  # the header's length decides where the data starts: make it odd
        w = gw.GGUFWriter(alignment=1)
        w.add_string("general.architecture", "not-a-model" + name_pad)
        w.add_tensor("odd.bias", np.arange(3, dtype=np.float32))
        w.add_tensor("blk.0.ffn_up.weight", a, gw.GGML_F16)
        w.add_tensor("blk.0.ffn_down.weight", a[:2, :35], gw.GGML_F16)  # a row tail for the scalar loop
        w.write(src)
        offsets = gguf_reader.GGUFFile(src)
        with open(src, "rb") as f:
            at = f.read().find(offsets.tensors["blk.0.ffn_up.weight"][2])
        if at % 2:
            break
    assert at % 2, "could not place the F16 tensor at an odd offset"
    out = os.path.join(TMP, "odd-q8_0.gguf")
    r = run(["quantize", src, out, "q8_0"])
    assert r.returncode == 0, r.stderr
    q = gguf_reader.GGUFFile(out)
    stored = a.astype(np.float16).astype(np.float32)
    want = gguf_reader._dequant(gw.GGML_Q8_0, gw.quantize_q8_0(stored), stored.size).reshape(stored.shape)
    assert q.tensors["blk.0.ffn_up.weight"][1] == gw.GGML_Q8_0
    assert np.array_equal(q.tensor("blk.0.ffn_up.weight"), want)
    assert np.array_equal(q.tensor("odd.bias"), np.arange(3, dtype=np.float32))
    assert q.tensors["blk.0.ffn_down.weight"][1] == gw.GGML_F16  # rows of 35: not whole blocks
    assert np.array_equal(q.tensor("blk.0.ffn_down.weight"), stored[:2, :35])
    assert q.kv["general.architecture"].startswith("not-a-model") and offsets.kv.get("general.alignment") == 1



# ------------------------------------------------------ round three (issue 23) --

@test
def a_million_tensor_entries_load_without_quadratic_lookups():
    """A GGUF with 1M tensor entries before a 1024-layer model's own: every
    lookup scanned the whole table (minutes); names are now hashed."""
    import struct as st
    path = os.path.join(TMP, "million.gguf")
    d, n_layer, n_extra = 8, 1024, 1_000_000
    w = gw.GGUFWriter()
    for key, kind, val in (("general.architecture", "s", "gpt2"), ("gpt2.context_length", "u", 8),
                           ("gpt2.embedding_length", "u", d), ("gpt2.block_count", "u", n_layer),
                           ("gpt2.feed_forward_length", "u", 2 * d), ("gpt2.attention.head_count", "u", 2),
                           ("gpt2.attention.layer_norm_epsilon", "f", 1e-5)):
        {"s": w.add_string, "u": w.add_u32, "f": w.add_f32}[kind](key, val)
    gw.add_synthetic_tokenizer(w, 260)
    # the tensor table written by hand: 1M one-float entries, then the model's
    shapes = [(f"extra.{i}", (1,)) for i in range(n_extra)]
    shapes += [("token_embd.weight", (260, d)), ("position_embd.weight", (8, d)), ("output_norm.weight", (d,)),
               ("output_norm.bias", (d,))]
    for i in range(n_layer):
        p = f"blk.{i}."
        shapes += [(p + "attn_norm.weight", (d,)), (p + "attn_norm.bias", (d,)), (p + "attn_qkv.weight", (3 * d, d)),
                   (p + "attn_qkv.bias", (3 * d,)), (p + "attn_output.weight", (d, d)), (p + "attn_output.bias", (d,)),
                   (p + "ffn_norm.weight", (d,)), (p + "ffn_norm.bias", (d,)), (p + "ffn_up.weight", (2 * d, d)),
                   (p + "ffn_up.bias", (2 * d,)), (p + "ffn_down.weight", (d, 2 * d)), (p + "ffn_down.bias", (d,))]
    head = bytearray(gw.GGUF_MAGIC + st.pack("<IQQ", gw.GGUF_VERSION, len(shapes), len(w.kv)))
    for key, vtype, payload in w.kv:
        head += gw._string(key) + st.pack("<I", vtype) + payload
    offset, sizes = 0, []
    for name, shape in shapes:
        nbytes = 4 * int(np.prod(shape))
        head += gw._string(name) + st.pack("<I", len(shape)) + st.pack(f"<{len(shape)}Q", *reversed(shape))
        head += st.pack("<IQ", 0, offset)
        sizes.append(nbytes)
        offset += nbytes + (-nbytes % 32)
    head += b"\0" * (-len(head) % 32)
    with open(path, "wb") as f:
        f.write(head)
        f.write(bytes(offset))  # zeros: valid weights
    r = run(["info", path], timeout=120)
    assert r.returncode == 0, r.stderr[-300:]
    assert b"blk.1023.ffn_down.bias" in r.stdout


@test
def overlapping_tensors_are_refused_so_outputs_stay_bounded():
    """general.alignment 2^20 and 200 tensors all at data offset 0: quantize
    wrote 200 MiB of padding from a 1 MiB file. Tensors must have their own
    bytes (as llama.cpp requires), so outputs stay bounded by the input."""
    import struct as st
    w = gw.GGUFWriter()
    w.add_u32("general.alignment", 1 << 20)
    w.add_string("general.architecture", "not-a-model")
    head = bytearray(gw.GGUF_MAGIC + st.pack("<IQQ", gw.GGUF_VERSION, 200, len(w.kv)))
    for key, vtype, payload in w.kv:
        head += gw._string(key) + st.pack("<I", vtype) + payload
    for i in range(200):
        head += gw._string(f"t{i}") + st.pack("<IQIQ", 1, 4, 0, 0)  # [4] F32 at data offset 0
    head += b"\0" * (-len(head) % (1 << 20))
    path = write("overlap.gguf", bytes(head) + bytes(16))
    out = os.path.join(TMP, "overlap-q8.gguf")
    one_line(run(["quantize", path, out, "q8_0"]), 1, "overlaps", "t1")
    assert not os.path.exists(out)



@test
def an_address_space_limit_ends_in_one_line_never_a_hang():
    """`ulimit -v 300000; tinyllm generate` hung at 100% CPU inside
    OpenBLAS's blas_memory_alloc (from cblas_sgemm) at limits between about
    150 and 350 MB. A context that could reach that now fails at creation:
    one line, "out of memory (N MiB needed)", exit 3 (a runtime failure);
    and since OpenBLAS's own threads may be retrying forever for their
    buffers, the CLI ends without joining them (exit() used to wait)."""
    if "TINYLLM_CHILD_ASAN_OPTIONS" in os.environ or os.environ.get("ASAN_OPTIONS"):
        from harness import Skip
        raise Skip("AddressSanitizer reserves terabytes of address space: no ulimit -v under it")
    model = os.path.join(ROOT, "models", "austen.gguf")
    text = write("ulimit.txt", b"It is a truth universally acknowledged, that a single man in possession")
    cases = [(kb, t) for kb in (100000, 150000, 200000, 250000, 300000, 350000, 450000, 600000) for t in (1, 2)]
    outcomes = set()
    for kb, threads in cases:
        for args in (["generate", "-m", model, "-p", "It is", "-n", "8", "--seed", "1", "-t", str(threads)],
                     ["perplexity", "-m", model, "-f", text, "-t", str(threads), "--no-progress"]):
            r = subprocess.run(["bash", "-c", f'ulimit -v {kb}; exec "$@"', "limited", TINYLLM, *args],
                               capture_output=True, timeout=60)
            if r.returncode == 0:
                outcomes.add("ran")
                continue
            # the context refused (a runtime failure: exit 3), or, lower still, the model's mapping (exit 1)
            one_line(r, r.returncode if r.returncode in (1, 3) else 3, "memory")
            outcomes.add("refused")
    assert outcomes == {"ran", "refused"}, outcomes  # the limits span both sides



@test
def verify_refuses_a_continuation_longer_than_the_models_context():
    """A golden whose continuation is 300,000 tokens ran for hours (O(n^2));
    on a gpt2 model it failed with "--ctx 1002 exceeds ...", a flag the user
    never gave. The golden is checked against the model's context first."""
    cont = [5] * 300_000
    path = _golden_variant("long-cont.tlg", cont_ids=cont)
    err = one_line(run(["verify", "-m", TINY_SIN, "--golden", path], timeout=30), 1, "long-cont.tlg",
                   "300000 continuation tokens", "model's context")
    assert "--ctx" not in err, err



@test
def step_never_runs_the_tail_of_a_line_with_a_nul():
    """A stdin line `where\\0` + 70,000 spaces + `tokens` ran `tokens` as a
    second command (fgets' length stopped at the NUL)."""
    data = b"where\x00" + b" " * 70000 + b"tokens\nwhere\n"
    r = run(["step", "-m", TINY_SIN, "-p", "It is", "--json"], input=data)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.decode().splitlines() if x.strip()]
    assert not any("tokens" in x for x in lines if isinstance(x, dict) and "error" not in x), lines
    errors = [x["error"] for x in lines if isinstance(x, dict) and "error" in x]
    assert len(errors) == 1 and "NUL" in errors[0], lines


@test
def huge_counts_and_nuls_in_generate_and_explore():
    """explore -n 2147483647 said "... for -2147483646 tokens"; generate
    --keep 2147483647 stopped after 2 tokens (signed overflow); -e turned
    \\x00 into a NUL that silently cut the prompt."""
    model = os.path.join(ROOT, "models", "austen.gguf")
    err = one_line(run(["explore", "-m", model, "-p", "It is", "-n", "2147483647", "--max-mb", "1e30", "-o",
                        os.path.join(TMP, "x.html")]),
                   2, "-n 2147483647", "do not fit")
    assert "-2147483646" not in err
    r = run(["generate", "-m", model, "-p", "It is a truth universally acknowledged", "-n", "12", "--temp", "0",
             "--keep", "2147483647", "--ctx", "32"])
    assert r.returncode == 0, r.stderr
    plain = run(["generate", "-m", model, "-p", "It is a truth universally acknowledged", "-n", "12", "--temp", "0",
                 "--ctx", "32"])
    assert r.stdout == plain.stdout and len(r.stdout.split()) > 8, (r.stdout, plain.stdout)
    one_line(run(["generate", "-m", model, "-e", "-p", "ab\\x00cd", "-n", "2"]), 2, "\\x00", "NUL")


@test
def interactive_input_errors_say_why_and_the_session_goes_on():
    """generate -i: an invalid UTF-8 line was reported as "out of memory";
    an over-long line printed an error and ended the session (exit 0);
    --no-context-shift was ignored for input lines."""
    model = os.path.join(ROOT, "models", "austen.gguf")
    base = ["generate", "-m", model, "-p", "It is", "-n", "4", "--temp", "0", "-i", "--ctx", "64"]
    r = run(base, input=b"bad \xff\xfe line\nShe said\n")
    err = r.stderr.decode()
    assert r.returncode == 0 and "UTF-8" in err and "out of memory" not in err, err
    assert r.stdout.decode("utf-8", "replace").count("She said") == 1, r.stdout  # the next line was read
    r = run(base, input=b"word " * 200 + b"\nShe said\n")
    err = r.stderr.decode()
    assert "do not fit" in err and r.stdout.decode("utf-8", "replace").count("She said") == 1, (err, r.stdout)
    # 27 tokens (26 + the pending one) after about 6 in a context of 32: they fit only by shifting
    r = run(base[:-1] + ["32", "--no-context-shift"], input=b"and then " * 12 + b"\n")
    err = r.stderr.decode()
    assert "context shift" not in err.replace("--no-context-shift", ""), err
    assert "--no-context-shift" in err, err


@test
def argv_reaches_messages_as_one_escaped_line():
    """Unknown options, option values, paths and format arguments with
    newline + ESC printed two lines with raw escapes."""
    evil = "x\n\x1b[31mred"
    for args in (["generate", "-m", TINY_SIN, "--" + evil], ["generate", "-m", TINY_SIN, "-p", "a", "-n", evil],
                 ["perplexity", "-m", TINY_SIN, "-f", os.path.join(TMP, evil)], ["quantize", TINY_SIN, "o.gguf", evil],
                 [evil]):
        r = run(args)
        err = one_line(r, 2)
        assert "\\x0A\\x1B" in err or "\\n" in err, err



@test
def bench_json_is_valid_for_any_path():
    """bench -o json printed the model path unescaped: a path with a quote
    gave invalid JSON."""
    import shutil
    path = os.path.join(TMP, 'a"b\\c.gguf')
    shutil.copy(TINY_SIN, path)
    r = run(["bench", "-m", path, "-p", "8", "-n", "2", "-r", "1", "-t", "1", "-o", "json", "--no-progress"])
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["model"] == path and d["results"], d


if __name__ == "__main__":
    SUITE.main()
