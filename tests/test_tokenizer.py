#!/usr/bin/python3
"""The tokenizer against Python SentencePiece: embedded and rebuilt models,
llama.cpp-written files, invalid UTF-8, the streaming detokenizer.

Prints one PASS/FAIL/SKIP line per test. Usage: test_tokenizer.py [NAME_SUBSTRING ...]
"""
import os

import numpy as np

from harness import SP512, STORIES, Suite
from fixtures import EXCERPT, LIB, gpt2_learned, need_shared
import gguf_writer as gw
import reference
import tinyllm as tl

SUITE = Suite("tokenizer")
test = SUITE.test
TMP = SUITE.tmp


# ------------------------------------------------------------- tokenizer --

TOKENIZER_CASES = ["Hello world", "It is a truth universally acknowledged.", "  leading spaces",
                   "multiple   spaces  between", "trailing space ", "new\nlines\n\nand\ttabs",
                   "naïve café — Ünïcödé façade", "emoji 🙂🚀 and 漢字 and ελληνικά", "a", " ", "\n",
                   "Mr. Darcy's £10,000 a year!"]


def _check_tokenizer(m, sp, cases=TOKENIZER_CASES):
    for text in cases:
        ids = m.tokenize(text)
        want = [sp.bos_id()] + sp.encode(text)
        assert ids == want, (text, ids, want)
        assert m.detokenize(ids[1:]) == sp.decode(ids[1:]).encode(), text
        # the stream keeps every byte and space of the text
        assert m.stream(ids[1:], strip_leading_space=True) == text.encode(), (text, m.stream(ids[1:], True))


@test
def tokenizer_roundtrips_embedded_model():
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=SP512)
    with tl.Model(gpt2_learned()) as m:
        assert LIB.tinyllm_tokenizer_source(m.h) == b"embedded SentencePiece model"
        _check_tokenizer(m, sp)


@test
def tokenizer_rebuilt_from_arrays_matches_model():
    """A file with only tokenizer.ggml.* arrays (no .model bytes): the rebuilt
    SentencePiece encodes every line of held-out text like the original."""
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=SP512)
    path = os.path.join(TMP, "rebuilt.gguf")
    g = reference.GGUFFile(gpt2_learned())
    w = gw.GGUFWriter()
    for key, val in g.kv.items():
        if key == gw.KEY_SP_MODEL:
            continue
        t = g.kv_types[key]
        if t == gw.T_STRING:
            w.add_string(key, val)
        elif t == gw.T_ARRAY:
            etype = gw.T_STRING if isinstance(val, list) else {np.float32: gw.T_F32, np.int32: gw.T_I32}[val.dtype.type]
            w.add_array(key, etype, val)
        else:
            w.add_scalar(key, t, val)
    for name in g.tensors:
        w.add_tensor(name, g.tensor(name))
    w.write(path)
    with tl.Model(path) as m:
        assert LIB.tinyllm_tokenizer_source(m.h) == b"rebuilt from tokenizer.ggml arrays"
        _check_tokenizer(m, sp)
        with open(EXCERPT, encoding="utf-8") as f:
            lines = f.read().split("\n")
        for line in lines:
            assert m.tokenize(line) == [sp.bos_id()] + sp.encode(line), line


@test
def tokenizer_llamacpp_file_matches_tok512():
    """stories260K as llama.cpp wrote it (arrays only): the rebuilt tokenizer
    encodes like tok512.model. tok512 was trained with remove_extra_whitespaces,
    which GGUF arrays cannot carry (llama.cpp does not collapse spaces either),
    so the cases here have no leading, trailing or repeated spaces."""
    need_shared()
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(STORIES, "tok512.model"))
    with tl.Model(os.path.join(STORIES, "stories260K.llamacpp.gguf")) as m:
        _check_tokenizer(m, sp, [t for t in TOKENIZER_CASES if t == " ".join(t.split(" ")).strip(" ")
                                 and "  " not in t and t.strip(" ")])
        assert m.tokenize("Once upon a time") == [1, 403, 407, 261, 378]


@test
def tokenizer_rejects_invalid_utf8():
    with tl.Model(gpt2_learned()) as m:
        try:
            m.tokenize(b"ok \xff\xfe bad")
        except tl.TinyLLMError as e:
            assert e.code == 6 and "UTF-8" in str(e), str(e)
        else:
            raise AssertionError("invalid UTF-8 was accepted")


@test
def stream_holds_back_split_utf8():
    """A character split over byte-fallback tokens comes out whole, once."""
    with tl.Model(gpt2_learned()) as m:
        text = "漢🙂"
        ids = m.tokenize(text, add_bos=False)
        byte_ids = [i for i in ids if m.piece(i).startswith("<0x")]
        assert len(byte_ids) >= 4, "expected byte-fallback pieces"
        d = tl.Detok()
        LIB.tinyllm_detok_init(tl.C.byref(d), 1)
        buf = tl.C.create_string_buffer(64)
        outs = []
        for i in ids:
            n = LIB.tinyllm_detok_push(m.h, tl.C.byref(d), i, buf, 64, None)
            outs.append(buf.raw[:n])
        for o in outs:
            o.decode("utf-8")  # every chunk is valid UTF-8 on its own
        assert b"".join(outs) == text.encode()


if __name__ == "__main__":
    SUITE.main()
