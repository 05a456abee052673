#!/usr/bin/python3
"""The independent numpy reference implementation of tinyllm's two model
families. It is written from the architecture descriptions, not from the C
code, shares no code with it, computes in float64, and recomputes the whole
sequence for every step (no KV cache). Golden values for the tests come from
here, never from the engine.

Usage:
  reference.py greedy MODEL.gguf (--prompt TEXT | --tokens 1,2,3) -n N   -> token ids
  reference.py logits MODEL.gguf --tokens 1,2,3 --out logits.npy        -> (T, vocab)
  reference.py tokenize MODEL.gguf --prompt TEXT                        -> token ids (with BOS)
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_reader import GGUFFile  # noqa: E402
import quants_reference  # noqa: E402

SP_KEY = "tinyllm.tokenizer.sentencepiece_model"
U32 = 2.0 ** -24  # unit roundoff of float32


def gamma(k):
    """Bound on the relative error of a float32 sum of k terms in any order
    (Higham, Accuracy and Stability of Numerical Algorithms, 3.1)."""
    return k * U32 / (1 - k * U32)


def _erf(x):
    """float64 erf, elementwise (numpy has none)."""
    return np.frompyfunc(math.erf, 1, 1)(x).astype(np.float64)


class Model:
    def __init__(self, path):
        g = GGUFFile(path)
        self.g = g
        a = g.kv["general.architecture"]
        self.arch = a
        self.n_ctx = int(g.kv[f"{a}.context_length"])
        self.dim = int(g.kv[f"{a}.embedding_length"])
        self.n_layer = int(g.kv[f"{a}.block_count"])
        self.n_ff = int(g.kv[f"{a}.feed_forward_length"])
        self.n_head = int(g.kv[f"{a}.attention.head_count"])
        self.head_dim = self.dim // self.n_head
        # llama and qwen2: rotary positions (qwen2 rotates the halves of each head, GPT-NeoX style)
        self.rotary, self.rope_halves = a in ("llama", "qwen2"), a == "qwen2"
        if self.rotary:
            self.n_head_kv = int(g.kv.get(f"{a}.attention.head_count_kv", self.n_head))
            self.eps = float(g.kv[f"{a}.attention.layer_norm_rms_epsilon"])
            self.theta = float(g.kv.get(f"{a}.rope.freq_base", 10000.0))
        else:
            self.n_head_kv = self.n_head
            self.eps = float(g.kv[f"{a}.attention.layer_norm_epsilon"])
            self.positions = g.kv.get("tinyllm.position_encoding", "learned")
            self.exact_gelu = g.kv.get("tinyllm.gelu", "tanh") == "erf"
        self.w = {name: g.tensor(name).astype(np.float64) for name in g.tensors}
        self.vocab = self.w["token_embd.weight"].shape[0]
        self.out_w = self.w.get("output.weight", self.w["token_embd.weight"])
        self._sp = None
        self.rounding = None  # a numpy Generator while forward() models float32 rounding
        self.storage = False  # ... and also the rounding of F16-stored weights (2^-11 each)
        # unit roundoff of each weight as stored: F16 2^-11; F32 0 (exact)
        self.storage_u = {name: (2.0 ** -11 if g.tensors[name][1] == 1 else 0.0) for name in g.tensors}
        # matrices in block formats (Q8_0, Q4_0, the K-quants, ...): the engine's products may
        # quantize the activations
        self.quantized = {name for name in g.tensors if quants_reference.BLOCK.get(g.tensors[name][1], (1,))[0] > 1}
        self.experiments = {}  # name -> value (attn-scale: the factor); see set_experiments
        self.types = {name: g.tensors[name][1] for name in g.tensors}
        # whose activation rounding mm models: "tinyllm" (8-bit blocks of 32 for the blocks of
        # 32, of 256 for the K-quants, as llama.cpp's Q8_K; BF16 for BF16 weights, which a CPU
        # with AVX512_BF16 multiplies in BF16 in prefill) or "llama.cpp" (the same for block
        # formats; activations also rounded to F16 / BF16 for F16 / BF16 weights)
        self.activations = "tinyllm"

    def set_experiments(self, spec):
        """The experiments of include/tinyllm.h, written here from their
        definitions: "no-scale,attn-scale=F,no-mask,mask-after-softmax,
        naive-softmax,no-positions,no-norm" (comma-separated; "" none)."""
        names = {"no-scale", "attn-scale", "no-mask", "mask-after-softmax", "naive-softmax", "no-positions", "no-norm"}
        exp = {}
        for item in filter(None, spec.split(",")):
            name, _, value = item.partition("=")
            if name not in names:
                raise ValueError(f"unknown experiment {item!r}")
            exp[name] = float(value) if name == "attn-scale" else True
        self.experiments = exp

    # -- float32 rounding, modelled (see rounding_spread) ---------------------
    def mm(self, a, b, weight=None):
        """a @ b; while modelling rounding, each of the K-term sums moves by
        its float32 worst case gamma(K) * sum |a_i b_i|, with a random sign.
        With self.storage, also by the effect of the weight `weight` having
        been rounded to its storage type (unit roundoff u_w): those roundings
        are of independent values, errors within u_w |w| each, so the sum's
        error has a standard deviation of at most u_w / sqrt(3) * ||a * b||_2;
        six of those (a 1e-9 chance to be exceeded) are added.
        For a weight in a block format, the engine's decode products quantize each
        group of 32 activations (256 for the K-quants) to 8 bits (scale d = max|a| / 127): element i
        moves by e_i, |e_i| <= d / 2, rounding errors of independent values
        (uniform, variance d^2 / 12), so the sum moves with a standard
        deviation of sqrt(sum_i b_i^2 d_i^2 / 12); six of those are added.
        For a BF16 weight (and, modelling llama.cpp, an F16 one), the
        activations may be rounded to BF16 (F16), unit roundoff u_a: six
        standard deviations u_a / sqrt(3) * ||a * b||_2, as for storage."""
        out = a @ b
        if self.rounding is None:
            return out
        err = gamma(a.shape[-1]) * (np.abs(a) @ np.abs(b))
        u_w = self.storage_u.get(weight, 0.0) if self.storage else 0.0
        if u_w:
            err = err + 6 / math.sqrt(3) * u_w * np.sqrt((a * a) @ (b * b))
        peer = self.activations == "llama.cpp"
        if weight in self.quantized:
            K = a.shape[-1]
            blk = 256 if quants_reference.BLOCK[self.types[weight]][0] == 256 else 32
            d = np.abs(a).reshape(a.shape[:-1] + (K // blk, blk)).max(axis=-1) / 127  # (..., K / blk)
            d2 = np.repeat(d * d, blk, axis=-1)                                         # (..., K)
            err = err + 6 * np.sqrt(d2 @ (b * b) / 12)
        elif self.types.get(weight) == quants_reference.BF16 or (peer and self.types.get(weight) == quants_reference.F16):
            u_a = 2.0 ** -11 if self.types[weight] == quants_reference.F16 else 2.0 ** -8
            err = err + 6 / math.sqrt(3) * u_a * np.sqrt((a * a) @ (b * b))
        return out + err * self.rounding.choice((-1.0, 1.0), size=out.shape)

    def rnd(self, x, n_ops):
        """x after n_ops float32 operations per element (elementwise work:
        norms, activations, softmax): relative n_ops * u, random sign."""
        if self.rounding is None:
            return x
        return x * (1 + n_ops * U32 * self.rounding.choice((-1.0, 1.0), size=np.shape(x)))

    def rounding_spread(self, tokens, trials=2, taps=None, storage=False, activations="tinyllm", hooks=None):
        """How far float32 rounding can legitimately move this computation:
        the forward pass rerun with every sum and elementwise result moved by
        its worst-case rounding error (random signs, `trials` seeds). Returns
        the exact logits and the largest |change| seen; with a dict `taps`,
        fills it with each tap's largest |change|. Any correct float32
        implementation, whatever its summation order, lies well inside this
        (its sums err by about sqrt(K) u, not K u). With storage, the F16
        weights' own rounding is modelled too: how far the logits of the
        original (F32) weights may lie from those of the stored ones.
        activations="llama.cpp" models llama.cpp's activation rounding
        instead of tinyllm's (see __init__). hooks: as forward's, or a
        function returning them, called before each run under that run's
        rounding (so a patch taken from another run of the reference is
        moved as that run is: see patch_activations)."""
        self.activations = activations
        exact_taps = {} if taps is not None else None
        hooks_of = hooks if callable(hooks) else (lambda: hooks)
        exact = self.forward(tokens, exact_taps, hooks_of())
        worst = 0.0
        for seed in range(trials):
            self.rounding, self.storage = np.random.default_rng(seed), storage
            try:
                moved_taps = {} if taps is not None else None
                moved = self.forward(tokens, moved_taps, hooks_of())
            finally:
                self.rounding, self.storage, self.activations = None, False, "tinyllm"
            worst = max(worst, float(np.max(np.abs(moved - exact))))
            for name in (moved_taps or {}):
                with np.errstate(invalid="ignore"):  # masked scores: -inf - -inf
                    d = np.abs(moved_taps[name] - exact_taps[name])
                d = float(np.max(d[np.isfinite(d)])) if np.isfinite(d).any() else 0.0
                taps[name] = max(taps.get(name, 0.0), d)
        return exact, worst

    # -- tokenizer (the Python SentencePiece binding) ------------------------
    def sp(self):
        if self._sp is None:
            import sentencepiece as spm
            if SP_KEY not in self.g.kv:
                raise SystemExit("reference: the model has no embedded SentencePiece model")
            self._sp = spm.SentencePieceProcessor(model_proto=bytes(self.g.kv[SP_KEY]))
        return self._sp

    def tokenize(self, text):
        sp = self.sp()
        return [sp.bos_id()] + sp.encode(text)

    # -- the forward pass ----------------------------------------------------
    def forward(self, tokens, taps=None, hooks=None):
        """Logits (T, vocab) for every position. taps: dict filled with the
        named intermediate tensors (names and shapes: the tap table in
        include/tinyllm.h). hooks: {tap name: fn(x, pos0)}, as the engine's
        (tinyllm_context_set_hook): fn gets the tensor (float64, writable;
        pos0 is 0: one prefill) and may change it in place or return an
        array of its shape; the pass goes on from that."""
        T = len(tokens)
        w = self.w

        def tap(name, v):
            fn = hooks.get(name) if hooks else None
            if fn is not None:
                x = np.array(v, dtype=np.float64)
                r = fn(x, 0)
                v = x if r is None else np.asarray(r, dtype=np.float64).reshape(x.shape)
            if taps is not None:
                taps[name] = np.array(v)
            return v

        x = w["token_embd.weight"][tokens]
        if self.rounding is not None and self.storage:  # the embedding rows' own storage rounding
            x = x * (1 + self.storage_u["token_embd.weight"] * self.rounding.choice((-1.0, 1.0), size=x.shape))
        x = tap("embed", x)
        positions = "no-positions" not in self.experiments
        if self.arch == "gpt2" and positions:
            x = tap("pos", x + self.position_table()[:T])
        for l in range(self.n_layer):
            p = f"blk.{l}."
            h = tap(f"{l}.attn_norm", self.norm(x, p + "attn_norm"))
            if self.rotary:  # qwen2 adds biases
                q = self.mm(h, w[p + "attn_q.weight"].T, p + "attn_q.weight") + self.bias(p + "attn_q.bias")
                k = self.mm(h, w[p + "attn_k.weight"].T, p + "attn_k.weight") + self.bias(p + "attn_k.bias")
                v = self.mm(h, w[p + "attn_v.weight"].T, p + "attn_v.weight") + self.bias(p + "attn_v.bias")
                if positions:
                    q = tap(f"{l}.q_pre_rope", q)
                    k = tap(f"{l}.k_pre_rope", k)
                    q = self.rnd(self.rope(q, self.n_head), 4)
                    k = self.rnd(self.rope(k, self.n_head_kv), 4)
            else:
                qkv = self.mm(h, w[p + "attn_qkv.weight"].T, p + "attn_qkv.weight") + self.bias(p + "attn_qkv.bias")
                q, k, v = np.split(qkv, 3, axis=1)
            q, k, v = tap(f"{l}.q", q), tap(f"{l}.k", k), tap(f"{l}.v", v)
            att, scores, probs = self.attention(q, k, v, lambda pr, l=l: tap(f"{l}.attn_probs", pr))
            tap(f"{l}.attn_scores", scores)
            att = tap(f"{l}.attn_out", att)
            proj = self.mm(att, w[p + "attn_output.weight"].T, p + "attn_output.weight")
            if self.arch == "gpt2":
                proj = proj + self.bias(p + "attn_output.bias")
            proj = tap(f"{l}.attn_proj", proj)
            x = tap(f"{l}.resid_attn", self.rnd(x + proj, 1))
            h = tap(f"{l}.ffn_norm", self.norm(x, p + "ffn_norm"))
            if self.rotary:
                gate = self.mm(h, w[p + "ffn_gate.weight"].T, p + "ffn_gate.weight")
                up = self.mm(h, w[p + "ffn_up.weight"].T, p + "ffn_up.weight")
                hidden = tap(f"{l}.ffn_hidden", self.rnd(gate / (1.0 + np.exp(-gate)) * up, 12))
                out = self.mm(hidden, w[p + "ffn_down.weight"].T, p + "ffn_down.weight")
            else:
                u = self.mm(h, w[p + "ffn_up.weight"].T, p + "ffn_up.weight") + self.bias(p + "ffn_up.bias")
                hidden = tap(f"{l}.ffn_hidden", self.gelu(u))
                out = self.mm(hidden, w[p + "ffn_down.weight"].T, p + "ffn_down.weight") + self.bias(p + "ffn_down.bias")
            out = tap(f"{l}.ffn_out", out)
            x = tap(f"{l}.resid_ffn", self.rnd(x + out, 1))
        h = tap("final_norm", self.norm(x, "output_norm"))
        logits = self.mm(h, self.out_w.T, "output.weight" if "output.weight" in self.w else "token_embd.weight")
        return tap("logits", logits)

    def gelu(self, u):
        """GELU: GPT-2's tanh approximation, or (tinyllm.gelu = "erf") the
        exact x/2 (1 + erf(x / sqrt 2)) nanoGPT and PyTorch's nn.GELU() use.
        Rounding: about six float32 operations on the tanh form; the exact
        form is evaluated in double and rounded once (2 u, with margin)."""
        if self.exact_gelu:
            return self.rnd(0.5 * u * (1.0 + _erf(u / math.sqrt(2.0))), 2)
        return self.rnd(0.5 * u * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (u + 0.044715 * u ** 3))), 12)

    def bias(self, name):
        """A bias (gpt2's, qwen2's q/k/v), or 0 when the file has none (models trained with bias=False)."""
        return self.w.get(name, 0.0)

    def norm(self, x, name):
        if "no-norm" in self.experiments:  # the experiment: the stream goes in as it is
            return x
        w = self.w[name + ".weight"]
        if self.rotary:
            return self.rnd(x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w, 4)
        mu = x.mean(axis=-1, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
        return self.rnd((x - mu) / np.sqrt(var + self.eps) * w + self.bias(name + ".bias"), 5)

    def rope(self, x, n_heads):
        """Rotate pair i of each head by pos * theta^(-2i/d): the adjacent
        pairs (x[2i], x[2i+1]) (llama), or (x[i], x[i + d/2]) (qwen2)."""
        T = x.shape[0]
        d = self.head_dim
        inv = self.theta ** (-np.arange(0, d, 2) / d)               # (d/2)
        ang = np.arange(T)[:, None] * inv[None, :]                 # (T, d/2)
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        if self.rope_halves:
            xh = x.reshape(T, n_heads, 2, d // 2)
            a, b = xh[:, :, 0], xh[:, :, 1]
            return np.concatenate([a * c - b * s, a * s + b * c], axis=-1).reshape(T, n_heads * d)
        xh = x.reshape(T, n_heads, d // 2, 2)
        a, b = xh[..., 0], xh[..., 1]
        out = np.stack([a * c - b * s, a * s + b * c], axis=-1)
        return out.reshape(T, n_heads * d)

    def position_table(self):
        if self.positions == "learned":
            return self.w["position_embd.weight"]
        pos = np.arange(self.n_ctx)[:, None]
        i = np.arange(0, self.dim, 2)[None, :]
        ang = pos / np.power(10000.0, i / self.dim)
        pe = np.zeros((self.n_ctx, self.dim))
        pe[:, 0::2] = np.sin(ang)
        pe[:, 1::2] = np.cos(ang)
        return pe

    def attention(self, q, k, v, probs_hook=None):
        """Causal multi-head attention with grouped K/V heads. Returns the
        concatenated head outputs (T, dim), scores (H, T, T) scaled and masked
        with -inf, and probabilities (H, T, T). probs_hook(probs) -> probs:
        what the values are mixed by (a hook on attn_probs)."""
        T, d, H = q.shape[0], self.head_dim, self.n_head
        group = H // self.n_head_kv
        qh = q.reshape(T, H, d).transpose(1, 0, 2)                       # (H, T, d)
        kh = np.repeat(k.reshape(T, self.n_head_kv, d).transpose(1, 0, 2), group, axis=0)
        vh = np.repeat(v.reshape(T, self.n_head_kv, d).transpose(1, 0, 2), group, axis=0)
        exp = self.experiments
        scale = exp.get("attn-scale", 1.0 if "no-scale" in exp else 1.0 / math.sqrt(d))
        scores = self.mm(qh, kh.transpose(0, 2, 1)) * scale             # (H, T, T)
        future = np.triu(np.ones((T, T), dtype=bool), 1)
        if "no-mask" not in exp and "mask-after-softmax" not in exp:  # the causal mask, before softmax
            scores = np.where(future[None], -np.inf, scores)
        with np.errstate(over="ignore", invalid="ignore"):  # naive-softmax may overflow: inf/NaN, as the engine
            shift = 0.0 if "naive-softmax" in exp else scores.max(axis=-1, keepdims=True)
            e = np.exp(scores - shift)
            probs = self.rnd(e / e.sum(axis=-1, keepdims=True), 8 + T)
        if "mask-after-softmax" in exp:  # softmax over the future too, its weights zeroed afterwards
            probs = np.where(future[None], 0.0, probs)
        if probs_hook is not None:
            probs = probs_hook(probs)
        out = self.mm(probs, vh).transpose(1, 0, 2).reshape(T, H * d)
        return out, scores, probs

    def patch_activations(self, clean, corrupted, name, positions=None, trials=2):
        """Activation patching, as the engine's Python module does it: the
        run of `corrupted` with tap `name` at `positions` (all when None)
        replaced by its values in the run of `clean`. Returns the logits
        (T, vocab) and their rounding spread (the donor run moved by
        rounding as the patched one is)."""
        if len(clean) != len(corrupted):
            raise ValueError(f"clean has {len(clean)} tokens, corrupted {len(corrupted)} (expected the same length)")
        rows = list(range(len(clean))) if positions is None else list(positions)

        def hooks():
            donor = {}
            self.forward(clean, donor)
            d = donor[name]

            def patch(x, pos0):
                if x.ndim == 2:
                    x[rows] = d[rows]
                else:
                    x[:, rows] = d[:, rows]
            return {name: patch}
        return self.rounding_spread(corrupted, trials=trials, hooks=hooks)

    def greedy(self, tokens, n):
        tokens = list(tokens)
        out = []
        for _ in range(n):
            nxt = int(np.argmax(self.forward(tokens)[-1]))
            out.append(nxt)
            tokens.append(nxt)
        return out


def parse_tokens(s):
    return [int(t) for t in s.split(",") if t.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["greedy", "logits", "tokenize"])
    ap.add_argument("model")
    ap.add_argument("--prompt")
    ap.add_argument("--tokens")
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("--out")
    a = ap.parse_args()
    m = Model(a.model)
    toks = parse_tokens(a.tokens) if a.tokens else m.tokenize(a.prompt) if a.prompt is not None else None
    if a.command == "tokenize":
        print(" ".join(map(str, toks)))
    elif a.command == "greedy":
        print(" ".join(map(str, m.greedy(toks, a.n))))
    else:
        logits = m.forward(toks)
        if a.out:
            np.save(a.out, logits.astype(np.float32))
        else:
            print(logits[-1])


if __name__ == "__main__":
    main()
