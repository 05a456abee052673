"""tinyllm from Python: ctypes over the installed libtinyllm.so, numpy arrays
out. The C API is include/tinyllm.h; this module mirrors its structs (their
layout is checked against the C compiler by the test suite) and wraps it:

    import tinyllm
    m = tinyllm.Model("models/austen.gguf")
    ids = m.tokenize("It is a truth universally acknowledged")
    taps = m.run_with_taps(ids, ["3.attn_probs", "logits"])   # {name: ndarray}
    print(m.generate("It is a truth", n=40, temperature=0))

The library is found, in order: tinyllm.library(PATH) called first, the
TINYLLM_LIB environment variable, the directory `make install` recorded
(_install.py), the system's libtinyllm.so.0, and the source tree's build/.
"""
import ctypes as C
import operator
import os

import numpy as np

_lib = None


def library(path=None):
    """The loaded libtinyllm (loading it on first use; `path` chooses the file)."""
    global _lib
    if path is not None:
        _lib = _bind(C.CDLL(path))
    if _lib is None:
        _lib = _bind(C.CDLL(_find_library()))
    return _lib


def _find_library():
    if os.environ.get("TINYLLM_LIB"):
        return os.environ["TINYLLM_LIB"]
    try:
        from . import _install  # written by `make install`
        return os.path.join(_install.LIBDIR, "libtinyllm.so.0")
    except ImportError:
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    tree = os.path.join(here, "..", "..", "build", "libtinyllm.so")
    try:
        C.CDLL("libtinyllm.so.0")
        return "libtinyllm.so.0"
    except OSError:
        if os.path.exists(tree):
            return tree
    raise OSError("libtinyllm.so.0 not found: run `make install`, or set TINYLLM_LIB to the library's path")


def version():
    return library().tinyllm_version().decode()


class Error(C.Structure):
    _fields_ = [("code", C.c_int), ("message", C.c_char * 512)]


class ModelParams(C.Structure):
    _fields_ = [("check_tensors", C.c_int), ("no_mmap", C.c_int), ("skip_tokenizer", C.c_int), ("keep_f16", C.c_int),  # keep_f16: deprecated, no effect
                ("expand_f32", C.c_int)]


class ContextParams(C.Structure):
    _fields_ = [("n_ctx", C.c_int), ("n_threads", C.c_int), ("logits_all", C.c_int), ("blas_threads", C.c_int)]


class ModelInfo(C.Structure):
    _fields_ = [("architecture", C.c_char_p), ("name", C.c_char_p), ("n_vocab", C.c_int), ("n_ctx_train", C.c_int),
                ("n_embd", C.c_int), ("n_layer", C.c_int), ("n_head", C.c_int), ("n_head_kv", C.c_int),
                ("n_ff", C.c_int), ("head_dim", C.c_int), ("norm_eps", C.c_float), ("rope_theta", C.c_float),
                ("positions", C.c_int), ("tied_output", C.c_int), ("n_params", C.c_int64),
                ("file_size", C.c_uint64), ("file_type", C.c_int), ("weight_bytes", C.c_uint64),
                ("kernels", C.c_char_p), ("norm", C.c_char_p), ("activation", C.c_char_p)]


class Detok(C.Structure):
    _fields_ = [("pending", C.c_ubyte * 4), ("n_pending", C.c_int), ("at_start", C.c_int)]


class TinyLLMError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Tap(C.Structure):
    _fields_ = [("name", C.c_char_p), ("kind", C.c_char_p), ("layer", C.c_int), ("pos0", C.c_int),
                ("n_dims", C.c_int), ("shape", C.c_int64 * 3), ("data", C.POINTER(C.c_float)),
                ("writable", C.POINTER(C.c_float))]


class Experiments(C.Structure):
    _fields_ = [("flags", C.c_uint), ("attn_scale", C.c_float)]


class SamplerParams(C.Structure):
    _fields_ = [("temperature", C.c_float), ("top_k", C.c_int), ("top_p", C.c_float), ("min_p", C.c_float),
                ("repeat_penalty", C.c_float), ("repeat_last_n", C.c_int), ("seed", C.c_uint64)]


class TensorInfo(C.Structure):
    _fields_ = [("name", C.c_char_p), ("type", C.c_char_p), ("n_dims", C.c_int), ("dims", C.c_int64 * 4),
                ("n_bytes", C.c_uint64), ("in_use", C.c_char_p)]


TAP_FN = C.CFUNCTYPE(None, C.POINTER(Tap), C.c_void_p)


def load_library(build_dir):
    """The library in a build directory (the test suite's way in)."""
    return library(os.path.join(build_dir, "libtinyllm.so"))


def _bind(lib):
    P = C.c_void_p
    E = C.POINTER(Error)
    sig = {
        "tinyllm_version": (C.c_char_p, []),
        "tinyllm_model_load": (C.c_int, [C.c_char_p, C.POINTER(ModelParams), C.POINTER(P), E]),
        "tinyllm_model_free": (None, [P]),
        "tinyllm_model_info_get": (C.c_int, [P, C.POINTER(ModelInfo), E]),
        "tinyllm_model_n_tensors": (C.c_int, [P]),
        "tinyllm_model_tensor": (C.c_int, [P, C.c_int, C.POINTER(TensorInfo), E]),
        "tinyllm_model_tensor_f32": (C.c_int, [P, C.c_int, C.POINTER(C.c_float), C.c_size_t, E]),
        "tinyllm_model_kv_bytes": (C.c_uint64, [P, C.c_int]),
        "tinyllm_model_logit_lens": (C.c_int, [P, C.POINTER(C.c_float), C.POINTER(C.c_float), E]),
        "tinyllm_context_create": (C.c_int, [P, C.POINTER(ContextParams), C.POINTER(P), E]),
        "tinyllm_context_free": (None, [P]),
        "tinyllm_context_n_past": (C.c_int, [P]),
        "tinyllm_context_n_ctx": (C.c_int, [P]),
        "tinyllm_context_rewind": (C.c_int, [P, C.c_int, E]),
        "tinyllm_context_shift": (C.c_int, [P, C.POINTER(C.c_int), C.c_int, C.c_int, E]),
        "tinyllm_context_prefill": (C.c_int, [P, C.POINTER(C.c_int), C.c_int, E]),
        "tinyllm_context_decode": (C.c_int, [P, C.c_int, E]),
        "tinyllm_context_logits": (C.POINTER(C.c_float), [P]),
        "tinyllm_context_logits_at": (C.POINTER(C.c_float), [P, C.c_int]),
        "tinyllm_context_read_weights": (C.c_int, [P, C.POINTER(C.c_uint64), E]),
        "tinyllm_context_set_tap": (C.c_int, [P, TAP_FN, P, E]),
        "tinyllm_context_set_hook": (C.c_int, [P, TAP_FN, P, E]),
        "tinyllm_context_ablate_head": (C.c_int, [P, C.c_int, C.c_int, C.c_int, E]),
        "tinyllm_context_ablate_layer": (C.c_int, [P, C.c_int, C.c_int, E]),
        "tinyllm_tokenize": (C.c_int, [P, C.c_char_p, C.c_size_t, C.c_int, C.POINTER(C.c_int), C.c_int,
                                       C.POINTER(C.c_int), E]),
        "tinyllm_detokenize": (C.c_int, [P, C.POINTER(C.c_int), C.c_int, C.c_char_p, C.c_size_t,
                                         C.POINTER(C.c_size_t), E]),
        "tinyllm_detok_init": (None, [C.POINTER(Detok), C.c_int]),
        "tinyllm_detok_push": (C.c_int, [P, C.POINTER(Detok), C.c_int, C.c_char_p, C.c_size_t, E]),
        "tinyllm_detok_flush": (C.c_int, [C.POINTER(Detok), C.c_char_p, C.c_size_t]),
        "tinyllm_token_bos": (C.c_int, [P]),
        "tinyllm_token_eos": (C.c_int, [P]),
        "tinyllm_token_piece": (C.c_char_p, [P, C.c_int]),
        "tinyllm_token_bytes": (C.c_int, [P, C.c_int, C.c_char_p, C.c_size_t]),
        "tinyllm_tokenizer_source": (C.c_char_p, [P]),
        "tinyllm_sampler_default_params": (SamplerParams, []),
        "tinyllm_sampler_create": (C.c_int, [C.POINTER(SamplerParams), C.c_int, C.POINTER(P), E]),
        "tinyllm_sampler_free": (None, [P]),
        "tinyllm_sampler_sample": (C.c_int, [P, C.POINTER(C.c_float), C.POINTER(C.c_int), C.c_int, E]),
        "tinyllm_quantize": (C.c_int, [C.c_char_p, C.c_char_p, C.c_char_p, E]),
        "tinyllm_experiments_parse": (C.c_int, [C.c_char_p, C.POINTER(Experiments), E]),
        "tinyllm_experiments_describe": (C.c_size_t, [C.POINTER(Experiments), C.c_char_p, C.c_size_t]),
        "tinyllm_context_set_experiments": (C.c_int, [P, C.POINTER(Experiments), E]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib


def _check(rc, err):
    if rc:
        raise TinyLLMError(rc, err.message.decode(errors="replace"))


# Every integer that crosses into C is range-checked here: ctypes would
# silently keep the low 32 bits (2**32 + 5 would become token 5).
INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
TINYLLM_DETOK_MAX = 1024  # include/tinyllm.h: the most bytes one token stands for


def _int(v, what, lo=INT_MIN, hi=INT_MAX):
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError(f"{what}: {v!r} is not an integer") from None
    if not lo <= v <= hi:
        raise ValueError(f"{what} = {v} is out of range (expected {lo}..{hi})")
    return v


def _ids(ids, n_vocab, what="token ids"):
    """A ctypes int array of token ids, each checked against the vocabulary."""
    ids = list(ids)
    for i, t in enumerate(ids):
        _int(t, f"{what}[{i}]", 0, n_vocab - 1)
    return (C.c_int * max(len(ids), 1))(*ids), len(ids)


def _path(path):
    b = os.fsencode(path)
    if b"\0" in b:
        raise ValueError(f"path {path!r} contains a NUL byte")
    return b


class _Closable:
    """close() by a `with` block, or when garbage-collected."""

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class Model(_Closable):
    """A loaded GGUF model (tinyllm_model_load). Use as a context manager or
    call close(); the file stays mapped while the model lives."""

    def __init__(self, path, check_tensors=False, no_mmap=False, skip_tokenizer=False, expand_f32=False):
        lib = self.lib = library()
        self._h = C.c_void_p()
        self._users = 0  # open contexts and samplers: the C model outlives them
        self._closed = False
        err = Error()
        params = ModelParams(int(bool(check_tensors)), int(bool(no_mmap)), int(bool(skip_tokenizer)), 0,
                             int(bool(expand_f32)))
        rc = lib.tinyllm_model_load(_path(path), C.byref(params), C.byref(self._h), C.byref(err))
        if rc:
            raise TinyLLMError(rc, err.message.decode(errors="replace"))
        self.info = ModelInfo()
        lib.tinyllm_model_info_get(self._h, C.byref(self.info), None)
        self.n_vocab = self.info.n_vocab

    @property
    def h(self):
        """The C handle; ValueError once the model is closed."""
        if self._closed:
            raise ValueError("the model is closed")
        return self._h

    def close(self):
        """Closes the model. Contexts and samplers made from it stay usable:
        the C model is freed when the last of them closes."""
        if not self._closed:
            self._closed = True
            self._free_if_unused()

    def _free_if_unused(self):
        if self._closed and self._users == 0 and self._h:
            self.lib.tinyllm_model_free(self._h)
            self._h = None

    def _acquire(self):
        h = self.h  # raises when closed
        self._users += 1
        return h

    def _release(self):
        self._users -= 1
        self._free_if_unused()

    def kv_bytes(self, n_ctx=0):
        """Bytes of the KV cache of a context of n_ctx tokens (0: the
        model's context length): 2 x layers x n_ctx x kv heads x head size x 4."""
        return self.lib.tinyllm_model_kv_bytes(self.h, _int(n_ctx, "n_ctx", 0))

    def tensors(self):
        """{name: (type, in_use, shape)} in file order; shape in numpy order
        (rows first), type as stored, in_use as the engine holds it."""
        out = {}
        for i in range(self.lib.tinyllm_model_n_tensors(self.h)):
            t, err = TensorInfo(), Error()
            _check(self.lib.tinyllm_model_tensor(self.h, i, C.byref(t), C.byref(err)), err)
            shape = tuple(reversed(t.dims[:t.n_dims]))
            out[t.name.decode()] = (t.type.decode(), t.in_use.decode(), shape)
        return out

    def tensor(self, name):
        """The named tensor's values as a read-only float32 numpy array
        (numpy shape), dequantized from the file as its format defines
        them, on the first request (then kept: the same array every time)."""
        cache = self.__dict__.setdefault("_tensor_cache", {})
        if name in cache:
            return cache[name]
        names = list(self.tensors())
        if name not in names:
            raise KeyError(f"no tensor {name!r} in the model")
        i = names.index(name)
        shape = self.tensors()[name][2]
        out = np.empty(shape, np.float32)
        err = Error()
        _check(self.lib.tinyllm_model_tensor_f32(self.h, i, out.ctypes.data_as(C.POINTER(C.c_float)), out.size,
                                                 C.byref(err)), err)
        out.flags.writeable = False  # the model's weights: change the forward pass with hooks instead
        cache[name] = out
        return out

    def attention_weights(self, layer):
        """Layer `layer`'s attention matrices per head, as TransformerLens
        names and shapes them (C = n_embd, d = head_dim): W_Q (n_head, C, d),
        W_K and W_V (n_head_kv, C, d), W_O (n_head, d, C), and the biases
        b_Q, b_K, b_V (heads, d) and b_O (C) where the model has them.
        x @ W_Q[h] + b_Q[h] is head h's query (before RoPE); read-only."""
        layer = _int(layer, "layer", 0, self.info.n_layer - 1)
        H, Hkv, d = self.info.n_head, self.info.n_head_kv, self.info.head_dim
        names, p = self.tensors(), f"blk.{layer}."

        def per_head(w, heads):  # (heads * d, C) rows -> (heads, C, d)
            return w.reshape(heads, d, -1).transpose(0, 2, 1)

        if p + "attn_qkv.weight" in names:  # stored side by side (gpt2): q | k | v rows
            wq, wk, wv = np.split(self.tensor(p + "attn_qkv.weight"), [H * d, (H + Hkv) * d])
            b = self.tensor(p + "attn_qkv.bias") if p + "attn_qkv.bias" in names else None
            bq, bk, bv = np.split(b, [H * d, (H + Hkv) * d]) if b is not None else (None, None, None)
        else:
            wq, wk, wv = (self.tensor(p + f"attn_{x}.weight") for x in "qkv")
            bq, bk, bv = (self.tensor(p + f"attn_{x}.bias") if p + f"attn_{x}.bias" in names else None for x in "qkv")
        wo = self.tensor(p + "attn_output.weight")  # (C, H * d)
        out = {"W_Q": per_head(wq, H), "W_K": per_head(wk, Hkv), "W_V": per_head(wv, Hkv),
               "W_O": wo.reshape(-1, H, d).transpose(1, 2, 0)}
        for key, b, heads in (("b_Q", bq, H), ("b_K", bk, Hkv), ("b_V", bv, Hkv)):
            if b is not None:
                out[key] = b.reshape(heads, d)
        if p + "attn_output.bias" in names:
            out["b_O"] = self.tensor(p + "attn_output.bias")
        return out

    def tokenize(self, text, add_bos=True):
        b = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        n = C.c_int()
        err = Error()
        rc = self.lib.tinyllm_tokenize(self.h, b, len(b), int(bool(add_bos)), None, 0, C.byref(n), C.byref(err))
        if rc:
            raise TinyLLMError(rc, err.message.decode())
        buf = (C.c_int * max(n.value, 1))()
        rc = self.lib.tinyllm_tokenize(self.h, b, len(b), int(add_bos), buf, n.value, C.byref(n), C.byref(err))
        if rc:
            raise TinyLLMError(rc, err.message.decode())
        return list(buf[:n.value])

    def text(self, ids):
        """detokenize(ids) as str (invalid UTF-8 bytes replaced)."""
        return self.detokenize(ids).decode("utf-8", errors="replace")

    def detokenize(self, ids):
        arr, n_ids = _ids(ids, self.n_vocab)
        out = C.create_string_buffer(16 * n_ids + 64)
        n = C.c_size_t()
        err = Error()
        rc = self.lib.tinyllm_detokenize(self.h, arr, n_ids, out, len(out), C.byref(n), C.byref(err))
        if rc:
            raise TinyLLMError(rc, err.message.decode())
        return out.raw[:n.value]

    def stream(self, ids, strip_leading_space=False):
        """Bytes produced by the streaming detokenizer, one push per id."""
        d = Detok()
        self.lib.tinyllm_detok_init(C.byref(d), int(strip_leading_space))
        buf = C.create_string_buffer(1024)
        out = b""
        for i in ids:
            n = self.lib.tinyllm_detok_push(self.h, C.byref(d), _int(i, "token id", 0, self.n_vocab - 1), buf,
                                            len(buf), None)
            if n < 0:
                raise TinyLLMError(6, f"detok_push failed on {i}")
            out += buf.raw[:n]
        n = self.lib.tinyllm_detok_flush(C.byref(d), buf, len(buf))
        return out + buf.raw[:n]

    def token_bytes(self, i):
        """The bytes token i stands for in text (SentencePiece's ▁ and
        GPT-2's Ġ as spaces, byte tokens as their byte); may be part of a
        UTF-8 character."""
        buf = C.create_string_buffer(TINYLLM_DETOK_MAX + 1)
        n = self.lib.tinyllm_token_bytes(self.h, _int(i, "token id", 0, self.n_vocab - 1), buf, len(buf))
        if n < 0:
            raise TinyLLMError(6, f"token {i}: no tokenizer")
        return buf.raw[:min(n, len(buf) - 1)]

    def piece(self, i):
        p = self.lib.tinyllm_token_piece(self.h, _int(i, "token id"))
        return None if p is None else p.decode("utf-8")


    def logit_lens(self, x):
        """The final norm and classifier applied to residual-stream vectors
        x (..., n_embd): logits (..., n_vocab)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        flat = x.reshape(-1, self.info.n_embd)
        out = np.empty((flat.shape[0], self.n_vocab), np.float32)
        err = Error()
        for i in range(flat.shape[0]):
            _check(self.lib.tinyllm_model_logit_lens(self.h, flat[i].ctypes.data_as(C.POINTER(C.c_float)),
                                                     out[i].ctypes.data_as(C.POINTER(C.c_float)), C.byref(err)), err)
        return out.reshape(x.shape[:-1] + (self.n_vocab,))

    def run_with_taps(self, prompt, taps=None, ablate=(), experiments=None):
        """Runs the prompt (text or token ids) through one prefill and
        returns {tap name: ndarray} for the taps named (all when None), in
        the shapes of the tap table (include/tinyllm.h), in the spirit of
        TransformerLens' run_with_cache. ablate: (layer, head) pairs whose
        heads contribute zeros; experiments: e.g. "no-mask,no-scale" (see
        Context). Logits come for every position."""
        ids = self.tokenize(prompt) if isinstance(prompt, (str, bytes)) else list(prompt)
        with Context(self, n_ctx=len(ids), logits_all=True, experiments=experiments) as c:
            for layer, head in ablate:
                c.ablate_head(layer, head)
            return c.prefill_with_taps(ids, taps)

    def run_with_hooks(self, prompt, hooks, taps=False, experiments=None):
        """Runs the prompt (text or ids) through one prefill with hooks
        {tap name: fn(x, pos0)} that may change each tensor in place (see
        Context.set_hooks), as TransformerLens' run_with_hooks. Returns the
        logits of every position (T, n_vocab); with taps=True, also
        {tap name: array} of every tap as the hooks left it."""
        ids = self.tokenize(prompt) if isinstance(prompt, (str, bytes)) else list(prompt)
        cache = {} if taps else None
        with Context(self, n_ctx=len(ids), logits_all=True, experiments=experiments) as c:
            c.set_hooks(hooks, cache)
            c.prefill(ids)
            logits = np.stack([c.logits_at(i) for i in range(len(ids))])
            missing = sorted(set(hooks) - c._hook_seen)
        if missing:
            raise TinyLLMError(1, f"no writable tap named {missing[0]!r} (names: include/tinyllm.h's tap table)")
        return (logits, cache) if taps else logits

    def patch_activations(self, clean, corrupted, name, positions=None):
        """Activation patching: the logits (T, n_vocab) of `corrupted` with
        tap `name` at `positions` (all when None) replaced by its values in
        the run of `clean` (text or ids of the same length)."""
        a = self.tokenize(clean) if isinstance(clean, (str, bytes)) else list(clean)
        b = self.tokenize(corrupted) if isinstance(corrupted, (str, bytes)) else list(corrupted)
        if len(a) != len(b):
            raise ValueError(f"clean has {len(a)} tokens, corrupted {len(b)} (expected the same length)")
        donor = self.run_with_taps(a, [name])[name]
        rows = range(len(a)) if positions is None else [_int(p, "position", 0, len(a) - 1) for p in positions]

        def patch(x, pos0):
            for p in rows:
                if x.ndim == 2 and pos0 <= p < pos0 + x.shape[0]:
                    x[p - pos0] = donor[p]
                elif x.ndim == 3 and pos0 <= p < pos0 + x.shape[1]:
                    x[:, p - pos0] = donor[:, p]
        return self.run_with_hooks(b, {name: patch})

    def generate(self, prompt, n=64, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0,
                 seed=0, experiments=None, hooks=None):
        """Text continuing `prompt` (n tokens at most, stopping at the
        end-of-text token), sampled as `tinyllm generate` samples;
        experiments as for Context; hooks {tap name: fn(x, pos0)} change
        the forward pass of the prompt and of every new token (e.g. a
        steering vector added to a residual stream)."""
        ids = self.tokenize(prompt)
        n = _int(n, "n", 0)
        out = []
        with Context(self, n_ctx=min(self.info.n_ctx_train, len(ids) + n), experiments=experiments) as c, \
                Sampler(self, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                        repeat_penalty=repeat_penalty, seed=seed) as s:
            if hooks:
                c.set_hooks(hooks)
            c.prefill(ids)
            for i in range(n):
                t = s.sample(c.logits(), ids + out)
                if t == self.lib.tinyllm_token_eos(self.h):
                    break
                out.append(t)
                if i + 1 < n and len(ids) + len(out) < c.n_ctx:
                    c.decode(t)
                else:
                    break
        return self.text(out)


class _FromModel(_Closable):
    """A C object made from a Model (a sampler or a context): it holds the
    model open until it is closed (close(), a `with` block, or garbage
    collection), and raises ValueError when used after that."""
    _free = None  # the C function that frees it
    _what = "object"

    @property
    def h(self):
        if not getattr(self, "_h", None):
            raise ValueError(f"the {self._what} is closed")
        return self._h

    def close(self):
        if getattr(self, "_h", None):
            getattr(self.lib, self._free)(self._h)
            self._h = None
            self.m._release()


class Sampler(_FromModel):
    """tinyllm_sampler: temperature, top-k, top-p, min-p, repetition penalty, seed."""
    _free, _what = "tinyllm_sampler_free", "sampler"

    def __init__(self, model, temperature=0.8, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0,
                 repeat_last_n=64, seed=0):
        self.lib = model.lib
        p = self.lib.tinyllm_sampler_default_params()
        p.temperature, p.top_p, p.min_p = temperature, top_p, min_p
        p.top_k = _int(top_k, "top_k")  # 2**40 would have turned top-k off
        p.repeat_penalty, p.repeat_last_n = repeat_penalty, _int(repeat_last_n, "repeat_last_n")
        p.seed = _int(seed, "seed", 0, (1 << 64) - 1)
        self.m, self.n_vocab = model, model.n_vocab
        h = C.c_void_p()
        err = Error()
        model._acquire()  # the model stays alive while this sampler is open
        rc = self.lib.tinyllm_sampler_create(C.byref(p), model.n_vocab, C.byref(h), C.byref(err))
        if rc:
            model._release()
            _check(rc, err)
        self._h = h

    def sample(self, logits, history=()):
        logits = np.ascontiguousarray(logits, dtype=np.float32).ravel()
        if logits.shape != (self.n_vocab,):  # the C sampler reads n_vocab of them
            raise ValueError(f"logits: {logits.size} values (expected {self.n_vocab}, the vocabulary)")
        hist, n_hist = _ids(history, self.n_vocab, "history")
        err = Error()
        t = self.lib.tinyllm_sampler_sample(self.h, logits.ctypes.data_as(C.POINTER(C.c_float)), hist,
                                            n_hist, C.byref(err))
        if t < 0:
            raise TinyLLMError(1, err.message.decode(errors="replace"))
        return t


class Context(_FromModel):
    """A KV cache and scratch for one sequence (tinyllm_context_create).
    experiments: what to switch off, "no-scale,attn-scale=F,no-mask,
    mask-after-softmax,naive-softmax,no-positions,no-norm" (include/tinyllm.h);
    set_experiments changes them for what runs next."""
    _free, _what = "tinyllm_context_free", "context"

    def __init__(self, model, n_ctx=0, n_threads=0, logits_all=False, experiments=None):
        self.m = model
        self.lib = model.lib
        self.n_vocab = model.n_vocab
        params = ContextParams(_int(n_ctx, "n_ctx"), _int(n_threads, "n_threads"), int(bool(logits_all)), 0)
        h = C.c_void_p()
        err = Error()
        model_h = model._acquire()  # the model stays alive while this context is open
        rc = self.lib.tinyllm_context_create(model_h, C.byref(params), C.byref(h), C.byref(err))
        if rc:
            model._release()
            raise TinyLLMError(rc, err.message.decode(errors="replace"))
        self._h = h
        if experiments:
            self.set_experiments(experiments)

    def set_experiments(self, spec):
        """Experiments by name (a string as above; "" or None: none)."""
        if spec is not None and not isinstance(spec, str):
            raise TypeError(f"experiments: {spec!r} is not a string of names")
        e, err = Experiments(), Error()
        _check(self.lib.tinyllm_experiments_parse((spec or "").encode(), C.byref(e), C.byref(err)), err)
        _check(self.lib.tinyllm_context_set_experiments(self.h, C.byref(e), C.byref(err)), err)
        text = C.create_string_buffer(256)
        self.lib.tinyllm_experiments_describe(C.byref(e), text, len(text))
        self._experiments = text.value.decode()

    @property
    def experiments(self):
        """The experiments in force, as the library names them ("none")."""
        return getattr(self, "_experiments", "none")

    def prefill(self, tokens):
        arr, n = _ids(tokens, self.n_vocab)
        err = Error()
        rc = self.lib.tinyllm_context_prefill(self.h, arr, n, C.byref(err))
        self._hook_check()
        if rc:
            raise TinyLLMError(rc, err.message.decode())

    def decode(self, token):
        err = Error()
        rc = self.lib.tinyllm_context_decode(self.h, _int(token, "token id", 0, self.n_vocab - 1), C.byref(err))
        self._hook_check()
        if rc:
            raise TinyLLMError(rc, err.message.decode())

    def logits(self):
        p = self.lib.tinyllm_context_logits(self.h)
        if not p:
            raise ValueError("no logits yet (run prefill or decode first)")
        return np.ctypeslib.as_array(p, shape=(self.n_vocab,)).copy()

    def logits_at(self, i):
        p = self.lib.tinyllm_context_logits_at(self.h, _int(i, "position"))
        if not p:
            raise ValueError(f"no logits at position {i} (logits_all contexts keep one row per prefill token)")
        return np.ctypeslib.as_array(p, shape=(self.n_vocab,)).copy()

    @property
    def n_ctx(self):
        return self.lib.tinyllm_context_n_ctx(self.h)

    def ablate_head(self, layer, head, on=True):
        """Head `head` of layer `layer` contributes zeros (on) or is restored."""
        err = Error()
        _check(self.lib.tinyllm_context_ablate_head(self.h, _int(layer, "layer"), _int(head, "head"), 1 if on else 0,
                                                    C.byref(err)), err)

    def ablate_layer(self, layer, on=True):
        """Layer `layer` is skipped (on: the residual stream passes it
        unchanged) or restored, in every later forward pass."""
        err = Error()
        _check(self.lib.tinyllm_context_ablate_layer(self.h, _int(layer, "layer"), 1 if on else 0, C.byref(err)), err)

    def prefill_with_taps(self, tokens, names=None):
        """prefill(tokens), returning {tap name: ndarray copy} for the taps
        named (every tap when None). A prompt longer than the context's batch
        (512) runs in chunks: 2-D taps are joined along the token axis,
        attention taps keep the last chunk's."""
        want = None if names is None else set(names)
        got = {}

        def on_tap(tap_p, _user):
            t = tap_p.contents
            name = t.name.decode()
            if want is not None and name not in want:
                return
            shape = tuple(t.shape[i] for i in range(t.n_dims))
            a = np.ctypeslib.as_array(t.data, shape=shape).copy()
            axis = 1 if t.n_dims == 3 else 0
            got[name] = np.concatenate([got[name], a], axis=axis) if name in got and axis == 0 else a

        fn = TAP_FN(on_tap)
        err = Error()
        _check(self.lib.tinyllm_context_set_tap(self.h, fn, None, C.byref(err)), err)
        try:
            self.prefill(tokens)
        finally:
            self.lib.tinyllm_context_set_tap(self.h, TAP_FN(), None, None)
        missing = [] if want is None else sorted(want - set(got))
        if missing:
            raise TinyLLMError(1, f"no tap named {missing[0]!r} (names: include/tinyllm.h's tap table)")
        return got

    def set_hooks(self, hooks, cache=None):
        """Installs hooks {tap name: fn} (None or {} removes them) that run
        on every later prefill and decode: fn(x, pos0) gets the tensor as a
        writable float32 array (the tap table's shape; rows are positions
        pos0, pos0 + 1, ...) and may change it in place or return an array
        of its shape to put there; the pass goes on from that
        (include/tinyllm.h: tinyllm_context_set_hook says what a write
        means at each point). cache: a dict to fill with {tap name: copy}
        of every tap (2-D taps joined along the token axis), after the
        hooks ran."""
        hooks = dict(hooks or {})
        for name, fn in hooks.items():
            if not callable(fn):
                raise TypeError(f"hook {name!r}: {fn!r} is not callable")
        err = Error()
        if not hooks and cache is None:
            self._hook_fn = None
            _check(self.lib.tinyllm_context_set_hook(self.h, TAP_FN(), None, C.byref(err)), err)
            return
        seen = set()

        def on_tap(tap_p, _user):
            t = tap_p.contents
            name = t.name.decode()
            fn = hooks.get(name)
            shape = tuple(t.shape[i] for i in range(t.n_dims))
            if fn is not None and t.writable:
                seen.add(name)
                x = np.ctypeslib.as_array(t.writable, shape=shape)
                try:
                    out = fn(x, t.pos0)
                    if out is not None and out is not x:
                        out = np.asarray(out, dtype=np.float32)
                        if out.shape != shape:
                            raise ValueError(f"hook {name!r} returned shape {out.shape} (expected {shape})")
                        x[...] = out
                except BaseException as e:  # noqa: BLE001 - raised again after the C call returns
                    self._hook_error = self._hook_error or e
            if cache is not None:
                a = np.ctypeslib.as_array(t.data, shape=shape).copy()
                cache[name] = np.concatenate([cache[name], a]) if name in cache and t.n_dims == 2 else a

        self._hook_fn = TAP_FN(on_tap)  # kept alive while installed
        self._hook_seen, self._hook_error = seen, None
        _check(self.lib.tinyllm_context_set_hook(self.h, self._hook_fn, None, C.byref(err)), err)

    def _hook_check(self):
        e, self._hook_error = getattr(self, "_hook_error", None), None
        if e is not None:
            raise e

    def rewind(self, n_keep=0):
        return self.lib.tinyllm_context_rewind(self.h, _int(n_keep, "n_keep"), None)

    def shift(self, tokens, n_keep, n_discard):
        """tokens: the ids in the cache (at least n_past of them: the C call
        reads that many)."""
        n_past = self.lib.tinyllm_context_n_past(self.h)
        if len(tokens) < n_past:
            raise ValueError(f"tokens: {len(tokens)} ids (expected the {n_past} in the cache)")
        err = Error()
        arr, _ = _ids(tokens, self.n_vocab)
        rc = self.lib.tinyllm_context_shift(self.h, arr, _int(n_keep, "n_keep"), _int(n_discard, "n_discard"),
                                            C.byref(err))
        if rc:
            raise TinyLLMError(rc, err.message.decode(errors="replace"))

    def greedy(self, prompt_tokens, n):
        n = _int(n, "n", 0)
        self.prefill(prompt_tokens)
        out = []
        for i in range(n):
            nxt = int(np.argmax(self.logits()))
            out.append(nxt)
            if i + 1 < n:
                self.decode(nxt)
        return out
