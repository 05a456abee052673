#!/usr/bin/python3
"""Hostile inputs, round three (issue 23): every output is written by one
safe writer (src/outfile.c for C, tools/safe_io.py for Python). Each test
reproduces a defect of the writers before it -- a FIFO, device or socket
replaced by a regular file, the input silently overwritten, a planted
symlink followed, a block forever on a FIFO, a temporary left by a signal or
a full disk -- and checks the fixed behaviour. Prints one PASS/FAIL/SKIP
line per test."""
import glob
import os
import shutil
import signal
import socket
import stat
import subprocess
import time

from harness import PYTHON, ROOT, SP512, TINY_SIN, TINYLLM, Suite
import tinyllm as tl
from fixtures import LIB

SUITE = Suite("writers")
test = SUITE.test
TMP = SUITE.tmp
CONVERT_LLAMA2C = os.path.join(ROOT, "tools", "convert_llama2c.py")
CONVERT_NANOGPT = os.path.join(ROOT, "tools", "convert_nanogpt.py")
CONVERT_HF = os.path.join(ROOT, "tools", "convert_hf_llama.py")


def run(args, timeout=60, **kw):
    """A deadline on every run: a block on a FIFO is a failure, not a stuck suite."""
    return subprocess.run(args, capture_output=True, timeout=timeout, **kw)


def one_line(r, code, *needles):
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == code, (r.returncode, code, err[-400:])
    assert len(err.strip().splitlines()) == 1, f"expected one line, got {err!r}"
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)
    return err


def fresh_dir(name):
    d = os.path.join(TMP, name)
    os.makedirs(d)
    return d


def specials(d):
    """A FIFO, a character device (/dev/null's numbers) and a socket in d."""
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    out = [(fifo, "FIFO", stat.S_ISFIFO)]
    dev = os.path.join(d, "null")
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        out.append((dev, "device", stat.S_ISCHR))
    except PermissionError:  # not root: the FIFO and socket still tell
        pass
    sock_path = os.path.join(d, "sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock_path)
    s.close()
    out.append((sock_path, "socket", stat.S_ISSOCK))
    return out


def leftovers(d):
    return glob.glob(os.path.join(d, ".tinyllm-tmp-*")) + glob.glob(os.path.join(d, "*.part"))


def quantize_lib(src, dst, fmt="q8_0"):
    err = tl.Error()
    rc = LIB.tinyllm_quantize(src.encode(), dst.encode(), fmt.encode(), err)
    return rc, err.message.decode()


@test
def quantize_never_replaces_a_fifo_device_or_socket():
    """OUT a FIFO, a character device or a socket was replaced by a regular
    file, exit 0 (as root, /dev/null itself)."""
    d = fresh_dir("specials")
    for path, kind, is_kind in specials(d):
        one_line(run([TINYLLM, "quantize", TINY_SIN, path, "q8_0"]), 2, path, kind, "left untouched")
        rc, msg = quantize_lib(TINY_SIN, path)
        assert rc != 0 and kind in msg and path in msg, (rc, msg)
        assert is_kind(os.lstat(path).st_mode), f"{path} was replaced"
    assert not leftovers(d), leftovers(d)


@test
def quantize_never_replaces_its_input():
    """`quantize m.gguf ./m.gguf`, OUT a symlink to IN, or a hard link of it:
    the input was silently replaced (the guard compared strings)."""
    d = fresh_dir("same")
    src = os.path.join(d, "m.gguf")
    shutil.copy(TINY_SIN, src)
    before = open(src, "rb").read()
    os.symlink("m.gguf", os.path.join(d, "link.gguf"))
    os.link(src, os.path.join(d, "hard.gguf"))
    for out in ("./m.gguf", "link.gguf", "hard.gguf", os.path.join(d, "m.gguf")):
        one_line(run([TINYLLM, "quantize", "m.gguf", out, "q4_0"], cwd=d), 2, "is the input file")
        rc, msg = quantize_lib(src, os.path.join(d, out))
        assert rc != 0 and "is the input file" in msg, (rc, msg)
    assert open(src, "rb").read() == before, "the input changed"
    assert os.path.islink(os.path.join(d, "link.gguf"))


@test
def quantize_writes_through_a_symlink():
    """OUT a symlink: the link itself was replaced; now the file it names is
    (as attn --png does), and the link stays."""
    d = fresh_dir("through")
    target = os.path.join(d, "real.gguf")
    with open(target, "wb") as f:
        f.write(b"old")
    link = os.path.join(d, "link.gguf")
    os.symlink("real.gguf", link)
    r = run([TINYLLM, "quantize", TINY_SIN, link, "q8_0"])
    assert r.returncode == 0, r.stderr
    assert os.path.islink(link) and open(target, "rb").read(4) == b"GGUF"
    assert not leftovers(d)


@test
def planted_temporaries_are_never_followed_or_blocked_on():
    """OUT.part a symlink: the file it named was overwritten with the model;
    OUT.part a FIFO: quantize blocked forever. Temporaries are now new,
    unique names (O_EXCL)."""
    d = fresh_dir("planted")
    victim = os.path.join(d, "victim.txt")
    with open(victim, "w") as f:
        f.write("keep me")
    out = os.path.join(d, "out.gguf")
    os.symlink(victim, out + ".part")
    r = run([TINYLLM, "quantize", TINY_SIN, out, "q8_0"], timeout=20)
    assert r.returncode == 0, r.stderr
    assert open(victim).read() == "keep me" and not os.path.islink(out)
    out2 = os.path.join(d, "out2.gguf")
    os.mkfifo(out2 + ".part")
    r = run([TINYLLM, "quantize", TINY_SIN, out2, "q8_0"], timeout=20)
    assert r.returncode == 0, r.stderr
    assert stat.S_ISFIFO(os.lstat(out2 + ".part").st_mode)


def big_model():
    """A 60 MB F32 model: quantizing it takes long enough to be interrupted."""
    path = os.path.join(TMP, "big.gguf")
    if not os.path.exists(path):
        r = run([PYTHON, os.path.join(ROOT, "tools", "make_synthetic.py"), path, "--arch", "llama", "--dim", "384",
                 "--layers", "8", "--vocab", "2048", "--ctx", "64"], timeout=300)
        assert r.returncode == 0, r.stderr
    return path


def interrupt_while_writing(args, d, sig):
    """Starts args, waits until its temporary exists, stops it there, sends
    sig and lets it run: (returncode, what is left in d)."""
    # (a job started in the background inherits SIGINT ignored: restore the default, as at a terminal)
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 60
    while not glob.glob(os.path.join(d, ".tinyllm-tmp-*")):
        assert p.poll() is None, ("finished before it could be interrupted", p.returncode, p.stderr.read())
        assert time.time() < deadline, "no temporary appeared"
        time.sleep(0.0005)
    p.send_signal(signal.SIGSTOP)  # held mid-write, so the signal lands there
    p.send_signal(sig)
    p.send_signal(signal.SIGCONT)
    p.communicate(timeout=60)
    return p.returncode, sorted(os.listdir(d))


@test
def a_signal_during_quantize_leaves_no_temporary():
    """SIGINT/SIGTERM during quantize left OUT.part behind."""
    src = big_model()
    for sig in (signal.SIGINT, signal.SIGTERM):
        d = fresh_dir(f"sig{int(sig)}")
        rc, left = interrupt_while_writing([TINYLLM, "quantize", src, os.path.join(d, "out.gguf"), "q4_0"], d, sig)
        assert rc == -sig, (rc, sig)
        assert left == [], left


@test
def a_file_size_limit_fails_cleanly():
    """Past `ulimit -f`, SIGXFSZ killed quantize and left OUT.part; now the
    write fails (EFBIG), one line, the old OUT kept and no temporary left."""
    d = fresh_dir("xfsz")
    out = os.path.join(d, "out.gguf")
    with open(out, "wb") as f:
        f.write(b"previous model")
    r = run(["bash", "-c", f'ulimit -f 64; exec "$0" quantize "$1" "$2" f32', TINYLLM, TINY_SIN, out])
    one_line(r, 1, "out.gguf", "too large")
    assert open(out, "rb").read() == b"previous model" and not leftovers(d)
    # the converters: the same, with no traceback (a checkpoint written here: ~50 kB of GGUF)
    r = run(["bash", "-c", 'ulimit -f 16; exec "$0" "$1" "$2" "$3" "$4"', PYTHON, CONVERT_LLAMA2C, tiny_llama2c(),
             SP512, out])
    one_line(r, 1, "out.gguf", "too large")
    assert open(out, "rb").read() == b"previous model" and not leftovers(d)


def tiny_llama2c():
    """A llama2.c checkpoint written here (no ../shared needed): the 7-int
    header and float32 weights, dims matching the 512-piece tokenizer."""
    import numpy as np
    path = os.path.join(TMP, "tiny.bin")
    if not os.path.exists(path):
        dim, hidden, layers, heads, kv, vocab, ctx = 16, 32, 1, 2, 2, 512, 8
        head = dim // heads
        n = (vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * dim * dim * kv // heads + 3 * hidden * dim) + dim
             + ctx * head)
        rng = np.random.default_rng(0)
        with open(path, "wb") as f:
            f.write(np.array([dim, hidden, layers, heads, kv, vocab, ctx], "<i4").tobytes())
            f.write((0.1 * rng.standard_normal(n)).astype("<f4").tobytes())
    return path


def nanogpt_zip(d):
    """A small valid nanoGPT checkpoint written without PyTorch."""
    import torch_zip
    return torch_zip.nanogpt(os.path.join(d, "ckpt.pt"))


@test
def converters_never_replace_or_block_on_special_files():
    """convert_llama2c/convert_nanogpt/convert_hf_llama: OUT a FIFO, device or
    socket was replaced (or blocked on); convert_llama2c's tokenizer a FIFO
    blocked; convert_nanogpt --meta a FIFO blocked."""
    d = fresh_dir("conv_specials")
    ckpt = tiny_llama2c()
    for path, kind, is_kind in specials(d):
        one_line(run([PYTHON, CONVERT_LLAMA2C, ckpt, SP512, path], timeout=30), 1, path, kind, "left untouched")
        one_line(run([PYTHON, CONVERT_HF, d, path], timeout=30), 1)  # no config.json: refused before writing
        assert is_kind(os.lstat(path).st_mode), f"{path} was replaced"
    fifo = os.path.join(d, "fifo")
    one_line(run([PYTHON, CONVERT_LLAMA2C, ckpt, fifo, os.path.join(d, "o.gguf")], timeout=30), 1, "FIFO",
             "tokenizer")
    one_line(run([PYTHON, CONVERT_LLAMA2C, fifo, SP512, os.path.join(d, "o.gguf")], timeout=30), 1, "FIFO",
             "checkpoint")
    one_line(run([PYTHON, CONVERT_NANOGPT, fifo, os.path.join(d, "o.gguf")], timeout=30), 1, "FIFO")
    one_line(run([PYTHON, CONVERT_NANOGPT, nanogpt_zip(d), os.path.join(d, "o.gguf"), "--meta", fifo], timeout=30),
             1, "FIFO", "meta.pkl")
    assert not os.path.exists(os.path.join(d, "o.gguf")) and not leftovers(d)


@test
def converters_never_replace_their_inputs_and_write_through_links():
    """The converters' OUT the checkpoint itself (through a symlink or ./):
    refused; OUT a symlink elsewhere: the file it names is written."""
    d = fresh_dir("conv_same")
    ckpt = os.path.join(d, "tiny.bin")
    shutil.copy(tiny_llama2c(), ckpt)
    before = open(ckpt, "rb").read()
    os.symlink("tiny.bin", os.path.join(d, "link.gguf"))
    for out in ("./tiny.bin", "link.gguf"):
        one_line(run([PYTHON, CONVERT_LLAMA2C, "tiny.bin", SP512, out], cwd=d), 1, "is the input file")
    assert open(ckpt, "rb").read() == before
    real = os.path.join(d, "real.gguf")
    with open(real, "w") as f:
        f.write("old")
    os.symlink("real.gguf", os.path.join(d, "to_real.gguf"))
    r = run([PYTHON, CONVERT_LLAMA2C, "tiny.bin", SP512, "to_real.gguf"], cwd=d)
    assert r.returncode == 0, r.stderr
    assert os.path.islink(os.path.join(d, "to_real.gguf")) and open(real, "rb").read(4) == b"GGUF"
    assert not leftovers(d)


@test
def convert_llama2c_keeps_the_old_file_when_it_fails():
    """convert_llama2c wrote OUT in place: a failure (here a tokenizer whose
    size does not match) destroyed the old file and left a partial one."""
    d = fresh_dir("conv_fail")
    out = os.path.join(d, "out.gguf")
    with open(out, "wb") as f:
        f.write(b"previous")
    bad_tok = os.path.join(d, "bad.model")
    with open(bad_tok, "wb") as f:
        f.write(b"\x0a\x05hello not a sentencepiece model")
    one_line(run([PYTHON, CONVERT_LLAMA2C, tiny_llama2c(), bad_tok, out]), 1, "bad.model", "SentencePiece")
    assert open(out, "rb").read() == b"previous" and not leftovers(d)


@test
def a_signal_during_a_conversion_leaves_no_temporary():
    """SIGTERM while the converter writes: the temporary is removed and the
    target never appears."""
    d = fresh_dir("conv_sig")
    src = TINY_SIN
    out = os.path.join(d, "g.tlg")
    # the writer every converter uses, fed slowly (about 1 KB per 10 ms) so it is caught mid-write
    args = [PYTHON, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]); import safe_io\n"
            "safe_io.write_file(sys.argv[2], (time.sleep(0.01) or b'x' * 1024 for _ in range(6000)), "
            "inputs=(sys.argv[3],))", os.path.join(ROOT, "tools"), out, src]
    rc, left = interrupt_while_writing(args, d, signal.SIGTERM)
    assert rc == -signal.SIGTERM, rc
    assert left == [], left


if __name__ == "__main__":
    SUITE.main()
