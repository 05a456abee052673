"""Reads a PyTorch checkpoint (torch.save's zip format, PyTorch >= 1.6)
without PyTorch and without running code from it.

The format: a zip archive with ARCHIVE/data.pkl (a pickle of the saved
object, tensors referring to storages by persistent id ('storage', type,
key, location, numel)) and ARCHIVE/data/KEY (each storage's raw bytes,
little-endian unless ARCHIVE/byteorder says otherwise). The pickle is read
with an unpickler that resolves only the names a checkpoint of tensors and
plain values needs (OrderedDict, torch's tensor and parameter rebuild
functions, the storage types) to local stand-ins, and refuses every other
class or function the file names before anything is called. Tensors come
out as numpy arrays, read from the archive when first asked for.

(Debian's PyTorch 1.13 cannot do this job: its torch.load(weights_only=True)
rejects float values, which every nanoGPT checkpoint holds, and it ignores a
pickle_module passed without weights_only.)
"""
import collections
import io
import pickle
import zipfile

import numpy as np

# storage type name -> element dtype (BFloat16 read as its 16 bits)
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"), "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"), "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"), "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class CheckpointError(Exception):
    pass


class Tensor:
    """A tensor of the checkpoint: shape, dtype name, and numpy() (float32
    for BFloat16) read from the archive on first use."""

    def __init__(self, storage, offset, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)
        self.dtype = storage.type_name[:-len("Storage")]

    def numpy(self):
        flat = self.storage.array()
        n = int(np.prod(self.shape)) if self.shape else 1
        if n == 0:
            return np.zeros(self.shape, flat.dtype)
        last = self.offset + sum((d - 1) * s for d, s in zip(self.shape, self.stride))
        if self.offset < 0 or last >= len(flat) or min(self.stride, default=0) < 0:
            raise CheckpointError(f"{self.storage.where}: a tensor of shape {self.shape} runs past its storage")
        a = np.lib.stride_tricks.as_strided(flat[self.offset:], self.shape,
                                            [s * flat.itemsize for s in self.stride]).copy()
        if self.storage.type_name == "BFloat16Storage":  # the top half of a float32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        return a


class _Storage:
    def __init__(self, archive, key, type_name, numel):
        self.archive, self.key, self.type_name, self.numel = archive, key, type_name, numel
        self.where = f"{archive.path}: storage {key}"
        self._array = None

    def array(self):
        if self._array is None:
            raw = self.archive.read(self.key)
            dtype = STORAGE_DTYPES[self.type_name].newbyteorder(self.archive.byteorder)
            if len(raw) != self.numel * dtype.itemsize:
                raise CheckpointError(f"{self.where}: {len(raw)} bytes for {self.numel} elements of "
                                      f"{self.type_name}")
            self._array = np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))
        return self._array


class _StorageType:
    def __init__(self, name):
        self.name = name


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return Tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): tuple,
}


class _Refused(pickle.UnpicklingError):
    pass


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, archive):
        super().__init__(f, encoding="utf-8")
        self.archive = archive

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise _Refused(f"it names {module}.{name}, which is not a tensor or a plain value "
                       "(refused: unpickling it could run code)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {str(pid)[:60]}")
        _, stype, key, _location, numel = pid
        return _Storage(self.archive, str(key), stype.name, int(numel))


class _Archive:
    def __init__(self, path, zf):
        self.path, self.zf = path, zf
        pkls = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pkls) != 1:
            raise CheckpointError(f"{path}: a zip without one ARCHIVE/data.pkl (not a torch.save file)")
        self.prefix = pkls[0][:-len("data.pkl")]
        order = self.prefix + "byteorder"
        self.byteorder = "<"
        if order in zf.namelist():
            b = zf.read(order).decode("ascii", "replace").strip()
            if b not in ("little", "big"):
                raise CheckpointError(f"{path}: byteorder {b!r} (expected little or big)")
            self.byteorder = "<" if b == "little" else ">"

    def read(self, key):
        try:
            return self.zf.read(f"{self.prefix}data/{key}")
        except KeyError:
            raise CheckpointError(f"{self.path}: storage {key} is missing from the archive") from None


def load(path):
    """The checkpoint's object with tensors as Tensor (their bytes read from
    the archive, which stays open, when numpy() is first called: an
    optimizer state that is never used is never read). Raises CheckpointError
    (one line) when the file is not a torch.save zip or names anything beyond
    tensors and plain values."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        with open(path, "rb") as f:
            head = f.read(1)
        if head == b"\x80":  # a bare pickle: torch.save's format before PyTorch 1.6
            raise CheckpointError(f"{path}: the legacy (pre-1.6) PyTorch format is not read; re-save it with "
                                  "torch.save from a current PyTorch") from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (expected torch.save's zip archive)") from None
    archive = _Archive(path, zf)
    try:
        return _Unpickler(io.BytesIO(zf.read(archive.prefix + "data.pkl")), archive).load()
    except _Refused as e:
        raise CheckpointError(f"{path}: not loaded: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise CheckpointError(f"{path}: a damaged checkpoint ({e})") from None
