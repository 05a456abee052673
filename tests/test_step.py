#!/usr/bin/python3
"""Scripted `tinyllm step` / `tinyllm attn` sessions whose outputs are checked:
attention rows, the logit lens against the real logits, PNGs decoded back with
libpng, head ablation, generation, and bad commands. Runs on stories260K
(../shared) and on the project's tiny Austen model (always present)."""
import json
import os
import subprocess

import numpy as np

from harness import BUILD, PYTHON, ROOT, STORIES, TINY_SIN, TINYLLM, Suite
import reference
from tolerance import assert_within, logits_and_spread

SUITE = Suite("step")
test = SUITE.test
TMP = SUITE.tmp
PROMPT = "Once upon a time, there was a little"


def models():
    """(name, path, n_layer) for each model the session tests run on."""
    out = [("austen-tiny-sin", TINY_SIN, 2)]
    stories = STORIES
    if os.path.isfile(os.path.join(stories, "stories260K.bin")):
        path = os.path.join(TMP, "stories260K.gguf")
        if not os.path.exists(path):
            subprocess.run([PYTHON, os.path.join(ROOT, "tools", "convert_llama2c.py"),
                            os.path.join(stories, "stories260K.bin"), os.path.join(stories, "tok512.model"), path],
                           check=True, capture_output=True)
        out.append(("stories260K", path, 5))
    return out


def step(model, script, json_out=True, prompt=PROMPT, extra=()):
    args = [TINYLLM, "step", "-m", model, "-p", prompt, "--script", script, *extra] + (["--json"] if json_out else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr)
    return [json.loads(line) for line in r.stdout.splitlines()] if json_out else r.stdout


@test
def attention_rows_sum_to_one_and_are_causal():
    for name, path, n_layer in models():
        files = [os.path.join(TMP, f"{name}_p{l}.npy") for l in range(n_layer)]
        out = step(path, "; ".join(f"dump {l}.attn_probs {f}" for l, f in enumerate(files)) + "; heads 1")
        assert all("error" not in o for o in out), out
        for f in files:
            p = np.load(f)  # (H, N, N)
            # a softmax row of L values sums to 1 within gamma(L + 10) (tests/README.md)
            assert np.all(np.abs(p.sum(-1) - 1) <= reference.gamma(p.shape[-1] + 10)), (name, f, p.sum(-1))
            assert np.all(np.triu(p, 1) == 0), (name, f)
            assert np.all(p >= 0)
        heads = out[-1]["heads"]
        # the same bound, plus 5e-7: the sum is printed with six decimals
        tol = reference.gamma(p.shape[-1] + 10) + 5e-7
        assert heads and all(abs(h["sum"] - 1) <= tol and h["entropy_bits"] >= 0 for h in heads), heads
        # each head's entropy, in bits (as the explorer), of its row at the current position (layer 1's dump)
        row = np.load(files[1]).astype(np.float64)[:, out[-1]["pos"], : out[-1]["pos"] + 1]
        bits = -np.sum(np.where(row > 0, row * np.log2(np.where(row > 0, row, 1)), 0), axis=-1)
        got = np.array([h["entropy_bits"] for h in heads])
        assert np.allclose(got, bits, atol=1e-5), (name, got, bits)  # six decimals; float32 probabilities


@test
def long_prompt_taps_match_reference():
    """A prompt of about 120 tokens runs its attention in several row blocks;
    with taps on, every head's full scores (masked with -inf) and
    probabilities must still equal the numpy reference's, and so must the
    logits of every position."""
    with open(os.path.join(ROOT, "tests", "data", "austen_heldout_excerpt.txt"), encoding="utf-8") as f:
        text = f.read()[:400]
    ref = reference.Model(TINY_SIN)
    toks = ref.tokenize(text)[:120]
    prompt = ref.sp().decode(toks[1:])
    files = {t: os.path.join(TMP, f"long_{t}.npy") for t in ("0.attn_scores", "1.attn_probs", "logits")}
    out = step(TINY_SIN, "tokens; " + "; ".join(f"dump {t} {f}" for t, f in files.items()), prompt=prompt)
    ids = [t["id"] for t in out[0]["tokens"]]
    assert len(ids) > 64, len(ids)  # at least two row blocks
    want, spread = {}, {}
    ref.forward(ids, want)
    ref.rounding_spread(ids, taps=spread)  # each tap's rounding spread (tests/tolerance.py)
    for tap, f in files.items():
        got = np.load(f)
        assert got.shape == want[tap].shape, (tap, got.shape, want[tap].shape)
        finite = np.isfinite(want[tap])
        assert np.array_equal(finite, np.isfinite(got)), f"{tap}: masked cells differ"
        assert_within(got[finite], want[tap][finite], spread[tap], tap)


@test
def logit_lens_at_last_layer_equals_logits():
    for name, path, n_layer in models():
        # from the layer's first tap to resid_ffn: 12 taps on, 14 where q and k are also tapped before RoPE
        n_next = 14 if name == "stories260K" else 12
        out = step(path, f"tokens; pos 4; layer {n_layer - 1}; next {n_next}; show; lens; top")
        ids = [t["id"] for t in out[0]["tokens"]]
        out = out[1:]
        assert out[3]["tap"] == f"{n_layer - 1}.resid_ffn", out[3]
        lens, top = out[4]["top"], out[5]["top"]
        assert [t["id"] for t in lens] == [t["id"] for t in top], (lens, top)
        # two float32 runs of the classifier (one row vs the prefill's rows):
        # logits within 2 x the spread, so p within p (e^(4 spread) - 1);
        # + 1e-6: both are printed with six decimals (each off by <= 5e-7)
        spread = logits_and_spread(path, ids[:5])[1]
        for a, b in zip(lens, top):
            assert_within(a["p"], b["p"], b["p"] * np.expm1(4 * spread) + 1e-6, "lens vs logits p")
        # and an early layer's lens is a different distribution
        early = step(path, "pos 4; layer 0; lens")[-1]["top"]
        assert [t["p"] for t in early] != [t["p"] for t in top]


@test
def gen_shows_pieces_of_any_length():
    """`gen` decoded into 64-byte slots while a piece may take up to
    TINYLLM_DETOK_MAX bytes: a 100-byte piece vanished from its text. A model
    whose classifier always picks the token with that piece shows it."""
    import sys
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import gguf_writer as gw
    from micro_model import micro_writer
    long_piece = "\u2581" + "long" * 25  # 103 bytes
    dim, vocab, target = 8, 260, 259
    out_w = np.zeros((vocab, dim))
    out_w[target] = 1.0  # final norm gives ones (weight 0, bias 1): logits = row sums
    w = micro_writer(extra={"output.weight": out_w})
    w.tensors = [(n, np.zeros_like(a) if n == "output_norm.weight" else np.ones_like(a) if n == "output_norm.bias"
                  else a, *rest) for n, a, *rest in w.tensors]
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + [long_piece]
    w.kv = [kv for kv in w.kv if kv[0] != "tokenizer.ggml.tokens"]
    w.add_array("tokenizer.ggml.tokens", gw.T_STRING, pieces)
    path = os.path.join(TMP, "long_piece.gguf")
    w.write(path)
    out = step(path, "gen 2", prompt="a")
    assert out[-1]["tokens"] == [target, target], out[-1]
    assert out[-1]["text"].count("long" * 25) == 2, out[-1]


@test
def gen_shifts_a_full_context():
    """`gen` past the end of the context shifts it (BOS and the newer half
    kept) and goes on; the recorded taps are then those of a fresh pass over
    the kept tokens (checked against the reference's logits)."""
    f = os.path.join(TMP, "shifted_logits.npy")
    out = step(TINY_SIN, f"gen 20; tokens; dump logits {f}", prompt="It is a truth", extra=["--ctx", "12"])
    gen, toks = out[0], [t["id"] for t in out[1]["tokens"]]
    assert len(gen["tokens"]) == 20 and gen["context_shifts"] >= 1, gen
    assert len(toks) <= 12 and toks[0] == 1 and toks[-len(gen["tokens"][-3:]):] == gen["tokens"][-3:], (toks, gen)
    want, spread = logits_and_spread(TINY_SIN, toks)
    assert_within(np.load(f)[-1], want[-1], spread, "logits after the shift")


def _drive_terminal(args, keys, timeout=60):
    """Runs args on a pseudo-terminal and types keys, each line only once the
    program shows its prompt again (so line editing is active when special
    keys like Ctrl-R arrive); returns (exit code, everything shown)."""
    import pty
    import select
    import time
    master, slave = pty.openpty()
    p = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=dict(os.environ, TERM="xterm"))
    os.close(slave)
    shown = b""

    def pump(seconds, until=None):
        nonlocal shown
        end = time.time() + seconds
        while time.time() < end:
            if until is not None and shown.rstrip(b" ").endswith(until):
                return
            if select.select([master], [], [], 0.05)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    return
                if not chunk:
                    return
                shown += chunk
    at_line_start = True
    for k in keys:
        if at_line_start:
            pump(30, until=b">")  # the prompt ("step> ", "> ") is back
        os.write(master, k)
        pump(0.3)
        at_line_start = k.endswith(b"\r")
    p.wait(timeout=timeout)
    pump(0.3)
    os.close(master)
    return p.returncode, shown


@test
def terminal_line_editing_history_and_completion():
    """At a terminal, step reads lines with libedit: the up arrow recalls the
    last command (it used to insert ^[[A), Ctrl-R searches the history, Tab
    completes command names, and
    Ctrl-D leaves the shell's prompt on a line of its own. generate -i reads
    its turns the same way."""
    rc, shown = _drive_terminal([TINYLLM, "step", "-m", TINY_SIN, "-p", "It is"],
                                [b"where\r", b"\x1b[A\r", b"whe\t\r", b"taps\r", b"\x12whe", b"\r", b"\x04"])
    assert rc == 0, (rc, shown[-300:])
    assert shown.count(b"at embed, position 3") == 4, shown[-600:]  # typed, recalled, completed, found by Ctrl-R
    assert b"unknown command" not in shown and shown.endswith(b"\r\n"), shown[-200:]
    rc, shown = _drive_terminal([TINYLLM, "generate", "-m", TINY_SIN, "-p", "It is", "-i", "-n", "3", "--temp", "0"],
                                [b"a truth\r", b"\x04"])
    assert rc == 0 and shown.count(b"> ") >= 2 and b"a truth" in shown, shown[-400:]


@test
def pictures_of_long_prompts_stay_readable():
    """A 114-token prompt: the attention picture keeps its labels (thinned,
    not dropped: the label band has ink) and a colour bar; `attn --last N`
    draws only the last N positions; the logit-lens picture stays under 2000
    px by showing the last positions it can (it was a 13126 px strip)."""
    with open(os.path.join(ROOT, "tests", "data", "austen_heldout_excerpt.txt"), encoding="utf-8") as f:
        prompt = f.read()[:240].replace("\n", " ")
    png_check = os.path.join(BUILD, "tests", "png_check")
    attn_png, lens_png, last_png = (os.path.join(TMP, n) for n in ("long_attn.png", "long_lens.png", "last.png"))
    out = step(TINY_SIN, f"attn 1 0 --png {attn_png}; lens --png {lens_png}", prompt=prompt)
    attn, lens = out[0], out[1]
    n, c, gx, gy = attn["tokens"], attn["cell"], attn["grid_x"], attn["grid_y"]
    assert n > 100 and c < 12, attn
    assert attn["width"] >= gx + n * c + 60, attn  # the colour bar beside the grid
    points = [str(v) for y in range(gy, gy + n * c, 2) for v in (gx - 8, y)]
    rgb = subprocess.run([png_check, attn_png, *points], capture_output=True, text=True).stdout.split("\n")[1:]
    ink = sum(1 for px in rgb if px.strip() and max(map(int, px.split())) < 128)
    assert ink >= n // 8, f"only {ink} dark pixels in the label band"  # labels drawn every few rows
    w, _ = map(int, subprocess.run([png_check, lens_png], capture_output=True, text=True).stdout.split()[:2])
    assert w <= 2000 and lens["from"] > 0 and lens["cols"] == lens["positions"] - lens["from"], (w, lens)
    r = subprocess.run([TINYLLM, "attn", "-m", TINY_SIN, "-p", prompt, "--layer", "1", "--head", "0", "--last", "24",
                        "--png", last_png], capture_output=True, text=True)
    assert r.returncode == 0 and "24 tokens" in r.stdout, r.stdout + r.stderr
    w_last, _ = map(int, subprocess.run([png_check, last_png], capture_output=True, text=True).stdout.split()[:2])
    assert w_last < attn["width"], (w_last, attn["width"])


@test
def byte_tokens_are_labelled_with_their_character():
    """Characters the vocabulary lacks arrive as byte tokens: their labels (in
    tokens, heads, pictures) show the character once and '+' for the other
    bytes, instead of <0xE6> <0xBC> <0xA2>."""
    out = step(TINY_SIN, "tokens", prompt="a \u6f22\U0001F642 b")
    labels = [t["text"] for t in out[0]["tokens"]]
    assert "\u6f22" in labels and "\U0001F642" in labels, labels
    i, j = labels.index("\u6f22"), labels.index("\U0001F642")
    assert labels[i + 1:i + 3] == ["+", "+"] and labels[j + 1:j + 4] == ["+", "+", "+"], labels
    assert not any(lb.startswith("<0x") for lb in labels), labels


@test
def attention_png_decodes_to_expected_size():
    png_check = os.path.join(BUILD, "tests", "png_check")
    for name, path, _ in models():
        png = os.path.join(TMP, f"{name}_attn.png")
        out = step(path, f"attn 1 0 --png {png}")[-1]
        r = subprocess.run([png_check, png], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        w, h = map(int, r.stdout.split()[:2])
        assert (w, h) == (out["width"], out["height"]), (w, h, out)
        n, c, gx, gy = out["tokens"], out["cell"], out["grid_x"], out["grid_y"]
        # a masked cell (row 0, last column) is grey; the first diagonal cell is coloured
        pix = subprocess.run([png_check, png, str(gx + (n - 1) * c + c // 2), str(gy + c // 2),
                              str(gx + c // 2), str(gy + c // 2)], capture_output=True, text=True).stdout.split("\n")
        grey = [int(v) for v in pix[1].split()]
        assert len(set(grey)) == 1 and 210 <= grey[0] <= 230, pix  # neutral light grey
        assert len(set(pix[2].split())) > 1, pix  # not grey: the diagonal of row 0 has probability 1
        grid = os.path.join(TMP, f"{name}_all.png")
        r = subprocess.run([TINYLLM, "attn", "-m", path, "-p", PROMPT, "--layer", "0", "--all", "--png", grid],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        w2, h2 = map(int, subprocess.run([png_check, grid], capture_output=True, text=True).stdout.split()[:2])
        assert w2 > w and h2 >= h, (w2, h2, w, h)


@test
def ablation_changes_only_from_the_head_on():
    for name, path, n_layer in models():
        f = lambda tag, tap: os.path.join(TMP, f"{name}_{tag}_{tap}.npy")  # noqa: E731
        taps = ["0.resid_ffn", "1.attn_probs", "1.attn_out", "1.resid_ffn", f"{n_layer - 1}.resid_ffn", "logits"]
        before = "; ".join(f"dump {t} {f('a', t)}" for t in taps)
        after = "; ".join(f"dump {t} {f('b', t)}" for t in taps)
        out = step(path, f"{before}; ablate 1 2; rerun; {after}")
        assert all("error" not in o for o in out), out
        a = {t: np.load(f("a", t)) for t in taps}
        b = {t: np.load(f("b", t)) for t in taps}
        assert np.array_equal(a["0.resid_ffn"], b["0.resid_ffn"]), "a layer before the ablation changed"
        assert np.array_equal(a["1.attn_probs"], b["1.attn_probs"]), "attention weights changed"
        hd = a["1.attn_out"].shape[1] // a["1.attn_probs"].shape[0]
        head = slice(2 * hd, 3 * hd)
        assert np.all(b["1.attn_out"][:, head] == 0), "ablated head still contributes"
        other = np.ones(a["1.attn_out"].shape[1], bool)
        other[head] = False
        assert np.array_equal(a["1.attn_out"][:, other], b["1.attn_out"][:, other]), "other heads changed"
        assert not np.allclose(a["1.resid_ffn"], b["1.resid_ffn"]), "no effect downstream"
        assert not np.allclose(a["logits"], b["logits"])
        rerun = [o for o in out if o.get("cmd") == "rerun"][0]
        assert rerun["before"] and rerun["after"]


@test
def gen_then_step_through_new_token():
    for name, path, _ in models():
        out = step(path, "tokens; gen 3; where; show 0.q; top")
        n_prompt = len(out[0]["tokens"])
        assert len(out[1]["tokens"]) == 3
        assert out[2]["pos"] == n_prompt + 2, out[2]
        assert out[3]["tap"] == "0.q" and out[3]["pos"] == n_prompt + 2


@test
def bad_commands_keep_the_session():
    for name, path, _ in models():
        out = step(path, "frobnicate; layer 99; pos -1; show nope; attn 0 99; gen 0; dump x; next 0; top 3")
        errors = [o for o in out if "error" in o]
        assert len(errors) == 8, out
        assert "unknown command 'frobnicate'" in errors[0]["error"]
        assert "layer" in errors[1]["error"] and "pos" in errors[2]["error"]
        assert out[-1]["cmd"] == "top" and len(out[-1]["top"]) == 3
        text = step(path, "frobnicate; top 2", json_out=False)
        assert "error: unknown command 'frobnicate' (try 'help')" in text and "next token after" in text


@test
def commands_from_stdin_when_not_a_terminal():
    path = models()[0][1]
    r = subprocess.run([TINYLLM, "step", "-m", path, "-p", PROMPT], input="where\ntop 2\nquit\nnever reached\n",
                       capture_output=True, text=True)
    assert r.returncode == 0 and "> where" in r.stdout and "next token after" in r.stdout, r.stdout
    assert "never reached" not in r.stdout


@test
def attn_cli_errors():
    path = models()[0][1]
    for args, needle in [(["--layer", "0", "--png", "x.png"], "--head H or --all"),
                         (["--layer", "9", "--head", "0", "--png", os.path.join(TMP, "x.png")], "--layer 9"),
                         (["--layer", "0", "--head", "0"], "--png")]:
        r = subprocess.run([TINYLLM, "attn", "-m", path, "-p", PROMPT, *args], capture_output=True, text=True)
        assert r.returncode == 2 and needle in r.stderr, (args, r.stderr)


if __name__ == "__main__":
    SUITE.main()
