"""torch.save's zip layout written without PyTorch, for hostile checkpoints:
ARCHIVE/data.pkl (a pickle whose tensors are torch._utils._rebuild_tensor_v2
calls on persistent storage ids) and ARCHIVE/data/KEY (raw storage bytes).
Any field can be given a hostile value (shapes, strides, offsets, counts,
keys), which a real torch.save never writes. The pickle names torch's
functions through stand-in modules registered only while it is written."""
import collections
import io
import pickle
import sys
import types
import zipfile

import numpy as np


class StorageRef:
    def __init__(self, key, numel, type_name="FloatStorage"):
        self.key, self.numel, self.type_name = key, numel, type_name


class T:
    """A tensor: storage, offset, shape, stride exactly as given."""

    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride


def tensor(key, array):
    """A plain contiguous float32 tensor and its storage bytes."""
    a = np.ascontiguousarray(array, np.float32)
    stride, s = [], 1
    for d in reversed(a.shape):
        stride.insert(0, s)
        s *= d
    return T(StorageRef(key, a.size), 0, tuple(a.shape), tuple(stride)), a.tobytes()


def write(path, obj, storages, compress=False):
    """Writes obj (dicts, lists, numbers, strings, T) and storages {key: bytes}."""
    torch_mod, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    storage_types = {}
    for name in ("FloatStorage", "HalfStorage"):
        cls = type(name, (), {"__module__": "torch"})
        setattr(torch_mod, name, cls)
        storage_types[name] = cls
    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = torch_mod, utils

    class Pickler(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, StorageRef):
                return ("storage", storage_types[o.type_name], o.key, "cpu", o.numel)
            return None

        def reducer_override(self, o):
            if isinstance(o, T):
                return (_rebuild_tensor_v2, (o.storage, o.offset, o.shape, o.stride, False,
                                             collections.OrderedDict()))
            return NotImplemented

    try:
        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump(obj)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        for key, raw in storages.items():
            z.writestr(f"archive/data/{key}", raw)


def nanogpt(path, extra=None, **changes):
    """A small valid nanoGPT checkpoint (bias=False, 4 characters), plus
    `extra` {name: T} tensors (their storages: one float each, key = name)."""
    a = dict(n_layer=1, n_head=2, n_embd=8, block_size=8, vocab_size=4, bias=False, dropout=0.0)
    a.update(changes)
    e, rng = a["n_embd"], np.random.default_rng(0)
    shapes = {"transformer.wte.weight": (4, e), "transformer.wpe.weight": (8, e), "transformer.ln_f.weight": (e,)}
    p = "transformer.h.0."
    shapes.update({p + "ln_1.weight": (e,), p + "attn.c_attn.weight": (3 * e, e), p + "attn.c_proj.weight": (e, e),
                   p + "ln_2.weight": (e,), p + "mlp.c_fc.weight": (4 * e, e), p + "mlp.c_proj.weight": (e, 4 * e)})
    model, storages = {}, {}
    for k, (name, shape) in enumerate(shapes.items()):
        t, raw = tensor(str(k), rng.standard_normal(shape))
        model[name], storages[str(k)] = t, raw
    for name, t in (extra or {}).items():
        model[name], storages[t.storage.key] = t, bytes(4 * t.storage.numel)
    write(path, {"model": model, "model_args": a, "config": {}}, storages)
    return path
