"""The one GGUF v3 writer every tinyllm tool uses (converters, the trainer,
synthetic test and benchmark models).

Facts: docs/formats.md. dims are written innermost first, so a numpy
array of shape (out, in) is stored with dims [in, out]. Metadata is written
in insertion order; tensors are aligned to `alignment` (general.alignment is
written whenever it is not the default 32).
"""
import math
import struct

import numpy as np

import quants_reference as qr

import safe_io

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
DEFAULT_ALIGNMENT = 32

# metadata value types
T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STRING, T_ARRAY, T_U64, T_I64, T_F64 = range(13)
_SCALAR_FMT = {T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I", T_I32: "<i",
               T_F32: "<f", T_BOOL: "<?", T_U64: "<Q", T_I64: "<q", T_F64: "<d"}

# tensor types
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0 = 0, 1, 2, 8
_NP_DTYPE = {GGML_F32: np.float32, GGML_F16: np.float16}
QK = 32  # values per Q8_0 / Q4_0 block


def quantize_q8_0(arr):
    """Blocks of 32 along each row: fp16 scale d = max|x| / 127, then 32 int8 (x = q d)."""
    x = np.asarray(arr, dtype=np.float32).reshape(-1, QK)
    d = (np.abs(x).max(axis=1) / 127.0).astype(np.float16)
    inv = np.divide(1.0, d.astype(np.float32), out=np.zeros(len(d), np.float32), where=d != 0)
    q = np.clip(np.rint(x * inv[:, None]), -127, 127).astype(np.int8)
    return np.concatenate([d.view(np.uint8).reshape(-1, 2), q.view(np.uint8)], axis=1).tobytes()


def quantize_q4_0(arr):
    """Blocks of 32: fp16 scale d, then 16 bytes; value j in the low nibble of
    byte j, value j+16 in the high nibble; x = (nibble - 8) d."""
    x = np.asarray(arr, dtype=np.float32).reshape(-1, QK)
    d = (np.abs(x).max(axis=1) / 7.0).astype(np.float16)
    inv = np.divide(1.0, d.astype(np.float32), out=np.zeros(len(d), np.float32), where=d != 0)
    q = (np.clip(np.rint(x * inv[:, None]), -8, 7) + 8).astype(np.uint8)
    packed = q[:, :16] | (q[:, 16:] << 4)
    return np.concatenate([d.view(np.uint8).reshape(-1, 2), packed], axis=1).tobytes()


_QUANTIZE = {GGML_Q8_0: quantize_q8_0, GGML_Q4_0: quantize_q4_0}

# general.file_type ("mostly X", llama.cpp's numbering) of a file whose matrices are X
FILE_TYPE = {GGML_F32: 0, GGML_F16: 1, GGML_Q4_0: 2, qr.Q4_1: 3, GGML_Q8_0: 7, qr.Q5_0: 8, qr.Q5_1: 9,
             qr.Q2_K: 10, qr.Q3_K: 12, qr.Q4_K: 15, qr.Q5_K: 17, qr.Q6_K: 18, qr.IQ4_NL: 25, qr.BF16: 32}
# byte offsets of each block's F16 scales (d, and the min where there is one)
_SCALE_FIELDS = {GGML_Q8_0: (0,), GGML_Q4_0: (0,), qr.Q4_1: (0, 2), qr.Q5_0: (0,), qr.Q5_1: (0, 2),
                 qr.IQ4_NL: (0,), qr.Q2_K: (80, 82), qr.Q3_K: (108,), qr.Q4_K: (0, 2), qr.Q5_K: (0, 2),
                 qr.Q6_K: (208,)}


def random_blocks(shape, gtype, rng, std):
    """A matrix of `shape` stored as random blocks of gtype (every code and
    sub-block scale random), its F16 scales set so the values' standard
    deviation is about std: test data that reaches every bit of a format."""
    n = int(np.prod(shape))
    if gtype == qr.BF16:
        x = (rng.standard_normal(n) * std).astype(np.float32)
        return _Quantized(shape, (x.view(np.uint32) >> 16).astype("<u2").tobytes())
    per, size = qr.BLOCK[gtype]
    if shape[-1] % per:
        raise ValueError(f"rows of {shape[-1]} values do not fill blocks of {per}")
    b = rng.integers(0, 256, (n // per, size), dtype=np.uint8)
    fields = _SCALE_FIELDS[gtype]
    for i, off in enumerate(fields):
        # a Q4_1 / Q5_1 min is added (either sign); a K-quant min is subtracted (kept positive)
        signed = i == 1 and gtype in (qr.Q4_1, qr.Q5_1)
        v = rng.uniform(0.5, 1.5, len(b)) * (rng.choice((-1, 1), len(b)) if signed else 1)
        b[:, off:off + 2] = v.astype("<f2").view(np.uint8).reshape(-1, 2)
    k = std / float(np.std(qr.dequantize(gtype, b.tobytes(), n)))
    for off in fields:
        h = b[:, off:off + 2].copy().view("<f2").reshape(-1).astype(np.float32) * k
        b[:, off:off + 2] = h.astype("<f2").view(np.uint8).reshape(-1, 2)
    return _Quantized(shape, b.tobytes())

# tokenizer.ggml.token_type values
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6

# the project's own key: the SentencePiece .model bytes, so one file is the whole model
KEY_SP_MODEL = "tinyllm.tokenizer.sentencepiece_model"
# the project's own key: "learned" (position_embd tensor) or "sinusoidal" (fixed, no tensor)
KEY_POSITION_ENCODING = "tinyllm.position_encoding"
KEY_GELU = "tinyllm.gelu"  # gpt2: "tanh" (default) or "erf"


class _Quantized:
    """Packed blocks standing in for an array: shape, ndim, nbytes, tobytes()."""

    def __init__(self, shape, data):
        self.shape, self.ndim, self.nbytes, self._data = tuple(shape), len(shape), len(data), data

    def tobytes(self):
        return self._data


def _string(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b


class GGUFWriter:
    def __init__(self, alignment=DEFAULT_ALIGNMENT):
        if alignment <= 0 or alignment & (alignment - 1):
            raise ValueError(f"alignment {alignment} is not a power of two")
        self.alignment = alignment
        self.kv = []        # (key, type, payload bytes)
        self.tensors = []   # (name, array, ggml_type)
        if alignment != DEFAULT_ALIGNMENT:
            self.add_u32("general.alignment", alignment)

    # -- metadata -----------------------------------------------------------
    def _add(self, key, vtype, payload):
        if any(k == key for k, _, _ in self.kv):
            raise ValueError(f"duplicate metadata key {key}")
        self.kv.append((key, vtype, payload))

    def add_scalar(self, key, vtype, value):
        self._add(key, vtype, struct.pack(_SCALAR_FMT[vtype], value))

    def add_u32(self, key, v): self.add_scalar(key, T_U32, v)
    def add_i32(self, key, v): self.add_scalar(key, T_I32, v)
    def add_u64(self, key, v): self.add_scalar(key, T_U64, v)
    def add_f32(self, key, v): self.add_scalar(key, T_F32, v)
    def add_bool(self, key, v): self.add_scalar(key, T_BOOL, v)

    def add_string(self, key, s):
        self._add(key, T_STRING, _string(s))

    def add_array(self, key, elem_type, values):
        head = struct.pack("<IQ", elem_type, len(values))
        if elem_type == T_STRING:
            body = b"".join(_string(v) for v in values)
        elif elem_type == T_U8 and isinstance(values, (bytes, bytearray)):
            body = bytes(values)
        else:
            body = np.asarray(values, dtype=np.dtype(_SCALAR_FMT[elem_type])).tobytes()
        self._add(key, T_ARRAY, head + body)

    # -- tensors ------------------------------------------------------------
    def add_tensor(self, name, array, ggml_type=GGML_F32):
        """array: numpy values (stored as ggml_type), or random_blocks' output."""
        if any(n == name for n, _, _ in self.tensors):
            raise ValueError(f"duplicate tensor {name}")
        if isinstance(array, _Quantized):
            self.tensors.append((name, array, ggml_type))
            return
        if ggml_type in _QUANTIZE:
            arr = np.asarray(array, dtype=np.float32)
            if arr.shape[-1] % QK:
                raise ValueError(f"tensor {name}: rows of {arr.shape[-1]} values (quantized types need multiples of 32)")
            self.tensors.append((name, _Quantized(arr.shape, _QUANTIZE[ggml_type](arr)), ggml_type))
            return
        arr = np.ascontiguousarray(array, dtype=_NP_DTYPE[ggml_type])
        if not 1 <= arr.ndim <= 4:
            raise ValueError(f"tensor {name}: {arr.ndim} dims (expected 1..4)")
        self.tensors.append((name, arr, ggml_type))

    # -- output -------------------------------------------------------------
    def _pad(self, n):
        return (self.alignment - n % self.alignment) % self.alignment

    def to_bytes(self):
        out = bytearray()
        out += GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(self.tensors), len(self.kv))
        for key, vtype, payload in self.kv:
            out += _string(key) + struct.pack("<I", vtype) + payload
        offset = 0
        for name, arr, gtype in self.tensors:
            out += _string(name) + struct.pack("<I", arr.ndim)
            out += struct.pack(f"<{arr.ndim}Q", *reversed(arr.shape))
            out += struct.pack("<IQ", gtype, offset)
            offset += arr.nbytes + self._pad(arr.nbytes)
        out += b"\0" * self._pad(len(out))
        for _, arr, _ in self.tensors:
            out += arr.tobytes() + b"\0" * self._pad(arr.nbytes)
        return bytes(out)

    def write(self, path, inputs=()):
        """Writes the file safely (tools/safe_io.py): never over a FIFO,
        device or one of `inputs`, never half-written."""
        safe_io.write_file(path, self.to_bytes(), inputs)


# The engine's limits on hyperparameters (src/model.c, load_hparams): a
# converter refuses a model the engine would refuse, instead of writing it.
HPARAM_LIMITS = {"n_ctx": (1, 1 << 20), "n_embd": (1, 1 << 16), "n_layer": (1, 1024), "n_ff": (1, 1 << 18),
                 "n_vocab": (1, (1 << 31) - 1)}


def check_hparams(arch, hp):
    """ValueError naming the first hyperparameter the engine would refuse."""
    def int_in(key, lo, hi):
        v = hp[key]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise ValueError(f"{key} = {safe_io.printable(v, 40)} is out of range (expected an integer {lo} to {hi})")

    for key, (lo, hi) in HPARAM_LIMITS.items():
        int_in(key, lo, hi)
    int_in("n_head", 1, hp["n_embd"])
    if hp["n_embd"] % hp["n_head"]:
        raise ValueError(f"n_embd {hp['n_embd']} is not a multiple of n_head {hp['n_head']}")
    eps = hp["eps"]
    if not isinstance(eps, (int, float)) or not 0 <= eps <= 1:
        raise ValueError(f"norm epsilon {eps!r} is out of range (expected a number 0 to 1)")
    if arch == "llama":
        int_in("n_head_kv", 1, hp["n_head"])
        if hp["n_head"] % hp["n_head_kv"]:
            raise ValueError(f"n_head {hp['n_head']} is not a multiple of n_head_kv {hp['n_head_kv']}")
        if (hp["n_embd"] // hp["n_head"]) % 2:
            raise ValueError(f"head size {hp['n_embd'] // hp['n_head']} is odd (RoPE needs pairs)")
        theta = hp.get("rope_theta", 10000.0)
        if not isinstance(theta, (int, float)) or not 1.0 <= theta <= 1e12 or math.isnan(theta):
            raise ValueError(f"rope_theta {theta!r} is out of range (expected a number 1 to 1e12)")


def add_sentencepiece_tokenizer(writer, model_path, embed_model=True):
    """Writes the standard tokenizer.ggml.* arrays for a SentencePiece model,
    and (embed_model) the .model bytes under KEY_SP_MODEL."""
    import sentencepiece as spm
    proto = safe_io.read_input(model_path, "tokenizer", max_bytes=1 << 30)  # never blocks on a FIFO
    try:
        sp = spm.SentencePieceProcessor(model_proto=proto)
    except (RuntimeError, TypeError, ValueError) as e:
        raise ValueError(f"{safe_io.printable(model_path)}: not a SentencePiece model "
                         f"({safe_io.printable(str(e).splitlines()[0] if str(e) else type(e).__name__, 120)})") from None
    n = sp.get_piece_size()
    tokens, scores, types = [], [], []
    for i in range(n):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            types.append(TOKEN_UNKNOWN)
        elif sp.is_control(i):
            types.append(TOKEN_CONTROL)
        elif sp.is_unused(i):
            types.append(TOKEN_UNUSED)
        elif sp.is_byte(i):
            types.append(TOKEN_BYTE)
        else:
            types.append(TOKEN_NORMAL)
    writer.add_string("tokenizer.ggml.model", "llama")
    writer.add_array("tokenizer.ggml.tokens", T_STRING, tokens)
    writer.add_array("tokenizer.ggml.scores", T_F32, scores)
    writer.add_array("tokenizer.ggml.token_type", T_I32, types)
    for key, tid in (("bos", sp.bos_id()), ("eos", sp.eos_id()), ("unknown", sp.unk_id()),
                     ("padding", sp.pad_id())):
        if tid >= 0:
            writer.add_u32(f"tokenizer.ggml.{key}_token_id", tid)
    writer.add_bool("tokenizer.ggml.add_bos_token", True)
    writer.add_bool("tokenizer.ggml.add_space_prefix", True)
    if embed_model:
        writer.add_array(KEY_SP_MODEL, T_U8, proto)
    return n


def add_synthetic_tokenizer(writer, n_vocab):
    """A SentencePiece-style vocabulary of any size with no .model bytes
    (engines rebuild it from the arrays): <unk>, <s>, </s>, the 256 byte
    pieces, then made-up pieces. For benchmark and test models."""
    if n_vocab < 259 + 1:
        raise ValueError("a synthetic vocabulary needs at least 260 pieces")
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL] + [TOKEN_BYTE] * 256
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    i = 0
    while len(tokens) < n_vocab:
        j, word = i, ""
        while True:
            word += letters[j % 26]
            j //= 26
            if j == 0:
                break
        tokens.append("\u2581" + word)
        types.append(TOKEN_NORMAL)
        i += 1
    writer.add_string("tokenizer.ggml.model", "llama")
    writer.add_array("tokenizer.ggml.tokens", T_STRING, tokens)
    writer.add_array("tokenizer.ggml.scores", T_F32, [0.0] * 259 + [-float(k) for k in range(n_vocab - 259)])
    writer.add_array("tokenizer.ggml.token_type", T_I32, types)
    writer.add_u32("tokenizer.ggml.bos_token_id", 1)
    writer.add_u32("tokenizer.ggml.eos_token_id", 2)
    writer.add_u32("tokenizer.ggml.unknown_token_id", 0)


class EmbeddedTokenizer:
    """A serialized SentencePiece model built by a converter (the character
    vocabulary of convert_nanogpt.py): embedded as is, with the id unknown
    text becomes (None: unknown text is an error in the engine)."""

    def __init__(self, proto, unknown_token_id=None):
        self.proto = bytes(proto)
        self.unknown_token_id = unknown_token_id


def bytes_to_unicode():
    """GPT-2's byte alphabet: byte -> the character that stands for it
    (bytes 33-126, 161-172, 174-255 themselves; the other 68, in order,
    U+0100 on)."""
    own = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, k = {}, 0
    for b in range(256):
        if b in own:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + k)
            k += 1
    return table


class BPETokenizer:
    """A byte-level BPE vocabulary as GGUF stores it (llama.cpp's keys):
    tokens in the byte alphabet (id = index), merges "a b" by rank, the
    token types, the pre-tokenizer's name and the special ids."""

    def __init__(self, tokens, merges, types=None, pre="gpt-2", bos=None, eos=None, add_bos=False):
        self.tokens, self.merges = list(tokens), list(merges)
        self.types = list(types) if types is not None else [TOKEN_NORMAL] * len(self.tokens)
        self.pre, self.bos, self.eos, self.add_bos = pre, bos, eos, add_bos

    @classmethod
    def from_openai(cls, encoder_json, vocab_bpe, pre="gpt-2"):
        """OpenAI's GPT-2 files (encoder.json: token -> id; vocab.bpe: a
        version line, then one merge per line). <|endoftext|> is control."""
        import json
        enc = json.loads(safe_io.read_input(encoder_json, "encoder.json", max_bytes=1 << 28))
        tokens = [None] * len(enc)
        for tok, i in enc.items():
            tokens[i] = tok
        lines = safe_io.read_input(vocab_bpe, "vocab.bpe", max_bytes=1 << 28).decode("utf-8").split("\n")
        merges = [ln for ln in lines[1:] if ln]  # line 0 is "#version: ..."
        types = [TOKEN_CONTROL if t == "<|endoftext|>" else TOKEN_NORMAL for t in tokens]
        eot = enc.get("<|endoftext|>")
        return cls(tokens, merges, types, pre, eot, eot, False)

    def add_to(self, writer):
        writer.add_string("tokenizer.ggml.model", "gpt2")
        writer.add_string("tokenizer.ggml.pre", self.pre)
        writer.add_array("tokenizer.ggml.tokens", T_STRING, self.tokens)
        writer.add_array("tokenizer.ggml.token_type", T_I32, self.types)
        writer.add_array("tokenizer.ggml.merges", T_STRING, self.merges)
        if self.bos is not None:
            writer.add_u32("tokenizer.ggml.bos_token_id", self.bos)
        if self.eos is not None:
            writer.add_u32("tokenizer.ggml.eos_token_id", self.eos)
        writer.add_bool("tokenizer.ggml.add_bos_token", self.add_bos)


def _add_tokenizer(writer, tokenizer, n_vocab):
    """tokenizer: path of a SentencePiece .model, an EmbeddedTokenizer, a
    BPETokenizer, or None for a synthetic one."""
    if isinstance(tokenizer, BPETokenizer):
        if len(tokenizer.tokens) != n_vocab:
            raise ValueError(f"{len(tokenizer.tokens)} tokens, but the model's vocabulary is {n_vocab} (expected equal)")
        tokenizer.add_to(writer)
    elif isinstance(tokenizer, EmbeddedTokenizer):
        writer.add_array(KEY_SP_MODEL, T_U8, tokenizer.proto)
        if tokenizer.unknown_token_id is not None:
            writer.add_u32("tokenizer.ggml.unknown_token_id", tokenizer.unknown_token_id)
        writer.add_bool("tokenizer.ggml.add_bos_token", False)
    elif tokenizer is None:
        add_synthetic_tokenizer(writer, n_vocab)
    else:
        n = add_sentencepiece_tokenizer(writer, tokenizer)
        if n != n_vocab:
            raise ValueError(f"{tokenizer}: {n} pieces, but the model's vocabulary is {n_vocab} (expected equal)")


def _general(arch, name, ggml_type, hp):
    """A writer with the general keys and the first hyperparameters both
    families share (key order is part of a file's bytes: keep it stable)."""
    w = GGUFWriter()
    w.add_string("general.architecture", arch)
    w.add_string("general.name", name)
    w.add_u32("general.file_type", FILE_TYPE[ggml_type])
    if ggml_type not in (GGML_F32, GGML_F16, qr.BF16):
        w.add_u32("general.quantization_version", 2)
    w.add_u32(f"{arch}.context_length", hp["n_ctx"])
    w.add_u32(f"{arch}.embedding_length", hp["n_embd"])
    w.add_u32(f"{arch}.block_count", hp["n_layer"])
    w.add_u32(f"{arch}.feed_forward_length", hp["n_ff"])
    return w


def write_llama(path, hp, weights, tokenizer, ggml_type=GGML_F32, name="tinyllm-llama", inputs=(), arch="llama"):
    """Writes a llama-family model. hp: n_vocab, n_ctx, n_embd, n_layer,
    n_head, n_head_kv, n_ff, eps, rope_theta. weights: numpy arrays by GGUF
    tensor name, PyTorch (out, in) layout, q/k rows with RoPE pairs adjacent
    (arch "qwen2": the rotate-half order, and q/k/v biases).
    inputs: files the output must not replace."""
    check_hparams("llama", hp)
    w = _general(arch, name, ggml_type, hp)
    w.add_u32(f"{arch}.rope.dimension_count", hp["n_embd"] // hp["n_head"])
    w.add_u32(f"{arch}.attention.head_count", hp["n_head"])
    w.add_u32(f"{arch}.attention.head_count_kv", hp["n_head_kv"])
    w.add_f32(f"{arch}.attention.layer_norm_rms_epsilon", hp["eps"])
    w.add_f32(f"{arch}.rope.freq_base", hp.get("rope_theta", 10000.0))
    _add_tokenizer(w, tokenizer, hp["n_vocab"])
    for tname, arr in weights.items():
        w.add_tensor(tname, arr, ggml_type if arr.ndim == 2 else GGML_F32)
    w.write(path, inputs)


def write_gpt2(path, hp, weights, tokenizer, ggml_type=GGML_F16, name="tinyllm-gpt2",
               write_output=True, inputs=()):
    """Writes a gpt2-family model. hp: dict with n_vocab, n_ctx, n_embd, n_layer,
    n_head, n_ff, eps, positions ("learned"|"sinusoidal"), optionally gelu
    ("tanh", the default, or "erf": the exact GELU). weights: dict of
    numpy arrays named by GGUF tensor name, PyTorch (out, in) layout.
    tokenizer: a SentencePiece .model path, or None for a synthetic vocabulary.
    write_output copies the tied embedding to output.weight, which llama.cpp
    requires to open a gpt2 file. inputs: files the output must not replace."""
    check_hparams("gpt2", hp)
    w = _general("gpt2", name, ggml_type, hp)
    w.add_u32("gpt2.attention.head_count", hp["n_head"])
    w.add_f32("gpt2.attention.layer_norm_epsilon", hp["eps"])
    w.add_string(KEY_POSITION_ENCODING, hp["positions"])
    if hp.get("gelu", "tanh") != "tanh":
        w.add_string(KEY_GELU, hp["gelu"])
    _add_tokenizer(w, tokenizer, hp["n_vocab"])
    for tname, arr in weights.items():
        # norms and biases stay F32: they are tiny and precision-sensitive
        w.add_tensor(tname, arr, ggml_type if arr.ndim == 2 else GGML_F32)
    if write_output and "output.weight" not in weights:
        w.add_tensor("output.weight", weights["token_embd.weight"], ggml_type)
    w.write(path, inputs)
