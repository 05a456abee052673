"""ctypes binding of the public C API (include/tinyllm.h) for the tests."""
import ctypes as C
import os

import numpy as np


class Error(C.Structure):
    _fields_ = [("code", C.c_int), ("message", C.c_char * 512)]


class ModelParams(C.Structure):
    _fields_ = [("check_tensors", C.c_int), ("no_mmap", C.c_int), ("skip_tokenizer", C.c_int), ("keep_f16", C.c_int),
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


def load_library(build_dir):
    lib = C.CDLL(os.path.join(build_dir, "libtinyllm.so"))
    P = C.c_void_p
    sig = {
        "tinyllm_model_load": (C.c_int, [C.c_char_p, C.POINTER(ModelParams), C.POINTER(P), C.POINTER(Error)]),
        "tinyllm_model_free": (None, [P]),
        "tinyllm_model_info_get": (C.c_int, [P, C.POINTER(ModelInfo), C.POINTER(Error)]),
        "tinyllm_context_create": (C.c_int, [P, C.POINTER(ContextParams), C.POINTER(P), C.POINTER(Error)]),
        "tinyllm_context_free": (None, [P]),
        "tinyllm_context_n_past": (C.c_int, [P]),
        "tinyllm_context_rewind": (C.c_int, [P, C.c_int, C.POINTER(Error)]),
        "tinyllm_context_shift": (C.c_int, [P, C.POINTER(C.c_int), C.c_int, C.c_int, C.POINTER(Error)]),
        "tinyllm_context_prefill": (C.c_int, [P, C.POINTER(C.c_int), C.c_int, C.POINTER(Error)]),
        "tinyllm_context_decode": (C.c_int, [P, C.c_int, C.POINTER(Error)]),
        "tinyllm_context_logits": (C.POINTER(C.c_float), [P]),
        "tinyllm_context_logits_at": (C.POINTER(C.c_float), [P, C.c_int]),
        "tinyllm_tokenize": (C.c_int, [P, C.c_char_p, C.c_size_t, C.c_int, C.POINTER(C.c_int), C.c_int,
                                       C.POINTER(C.c_int), C.POINTER(Error)]),
        "tinyllm_detokenize": (C.c_int, [P, C.POINTER(C.c_int), C.c_int, C.c_char_p, C.c_size_t,
                                         C.POINTER(C.c_size_t), C.POINTER(Error)]),
        "tinyllm_detok_init": (None, [C.POINTER(Detok), C.c_int]),
        "tinyllm_detok_push": (C.c_int, [P, C.POINTER(Detok), C.c_int, C.c_char_p, C.c_size_t, C.POINTER(Error)]),
        "tinyllm_detok_flush": (C.c_int, [C.POINTER(Detok), C.c_char_p, C.c_size_t]),
        "tinyllm_token_bos": (C.c_int, [P]),
        "tinyllm_token_eos": (C.c_int, [P]),
        "tinyllm_token_piece": (C.c_char_p, [P, C.c_int]),
        "tinyllm_tokenizer_source": (C.c_char_p, [P]),
    }
    for name, (res, args) in sig.items():
        f = getattr(lib, name)
        f.restype = res
        f.argtypes = args
    return lib


class Model:
    def __init__(self, lib, path, check_tensors=False, no_mmap=False, skip_tokenizer=False, expand_f32=False):
        self.lib = lib
        self.h = C.c_void_p()
        err = Error()
        rc = lib.tinyllm_model_load(path.encode(), C.byref(ModelParams(int(check_tensors), int(no_mmap), int(skip_tokenizer), 0, int(expand_f32))),
                                    C.byref(self.h),
                                    C.byref(err))
        if rc:
            raise TinyLLMError(rc, err.message.decode())
        self.info = ModelInfo()
        lib.tinyllm_model_info_get(self.h, C.byref(self.info), None)
        self.n_vocab = self.info.n_vocab

    def close(self):
        if self.h:
            self.lib.tinyllm_model_free(self.h)
            self.h = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def tokenize(self, text, add_bos=True):
        b = text.encode("utf-8") if isinstance(text, str) else text
        n = C.c_int()
        err = Error()
        rc = self.lib.tinyllm_tokenize(self.h, b, len(b), int(add_bos), None, 0, C.byref(n), C.byref(err))
        if rc:
            raise TinyLLMError(rc, err.message.decode())
        buf = (C.c_int * max(n.value, 1))()
        rc = self.lib.tinyllm_tokenize(self.h, b, len(b), int(add_bos), buf, n.value, C.byref(n), C.byref(err))
        if rc:
            raise TinyLLMError(rc, err.message.decode())
        return list(buf[:n.value])

    def detokenize(self, ids):
        arr = (C.c_int * max(len(ids), 1))(*ids)
        out = C.create_string_buffer(16 * len(ids) + 64)
        n = C.c_size_t()
        err = Error()
        rc = self.lib.tinyllm_detokenize(self.h, arr, len(ids), out, len(out), C.byref(n), C.byref(err))
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
            n = self.lib.tinyllm_detok_push(self.h, C.byref(d), i, buf, len(buf), None)
            if n < 0:
                raise TinyLLMError(6, f"detok_push failed on {i}")
            out += buf.raw[:n]
        n = self.lib.tinyllm_detok_flush(C.byref(d), buf, len(buf))
        return out + buf.raw[:n]

    def piece(self, i):
        p = self.lib.tinyllm_token_piece(self.h, i)
        return None if p is None else p.decode("utf-8")


class Context:
    def __init__(self, model, n_ctx=0, n_threads=0, logits_all=False):
        self.m = model
        self.lib = model.lib
        self.h = C.c_void_p()
        err = Error()
        rc = self.lib.tinyllm_context_create(model.h, C.byref(ContextParams(n_ctx, n_threads, int(logits_all), 0)),
                                             C.byref(self.h), C.byref(err))
        if rc:
            raise TinyLLMError(rc, err.message.decode())

    def close(self):
        if self.h:
            self.lib.tinyllm_context_free(self.h)
            self.h = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def prefill(self, tokens):
        arr = (C.c_int * len(tokens))(*tokens)
        err = Error()
        rc = self.lib.tinyllm_context_prefill(self.h, arr, len(tokens), C.byref(err))
        if rc:
            raise TinyLLMError(rc, err.message.decode())

    def decode(self, token):
        err = Error()
        rc = self.lib.tinyllm_context_decode(self.h, token, C.byref(err))
        if rc:
            raise TinyLLMError(rc, err.message.decode())

    def logits(self):
        p = self.lib.tinyllm_context_logits(self.h)
        return np.ctypeslib.as_array(p, shape=(self.m.n_vocab,)).copy()

    def logits_at(self, i):
        p = self.lib.tinyllm_context_logits_at(self.h, i)
        return np.ctypeslib.as_array(p, shape=(self.m.n_vocab,)).copy()

    def rewind(self, n_keep=0):
        return self.lib.tinyllm_context_rewind(self.h, n_keep, None)

    def shift(self, tokens, n_keep, n_discard):
        err = Error()
        arr = (C.c_int * len(tokens))(*tokens)
        rc = self.lib.tinyllm_context_shift(self.h, arr, n_keep, n_discard, C.byref(err))
        if rc:
            raise TinyLLMError(rc, err.message.decode(errors="replace"))

    def greedy(self, prompt_tokens, n):
        self.prefill(prompt_tokens)
        out = []
        for i in range(n):
            nxt = int(np.argmax(self.logits()))
            out.append(nxt)
            if i + 1 < n:
                self.decode(nxt)
        return out
