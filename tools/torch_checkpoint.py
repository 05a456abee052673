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
import os
import pickle
import zipfile

import numpy as np

import safe_io

# storage type name -> element dtype (BFloat16 read as its 16 bits)
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"), "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"), "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"), "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class CheckpointError(safe_io.ToolError):
    pass


class Tensor:
    """A tensor of the checkpoint: shape, dtype name, and numpy() (float32
    for BFloat16) read from the archive on first use."""

    def __init__(self, storage, offset, shape, stride):
        if not isinstance(storage, _Storage):
            raise pickle.UnpicklingError("a tensor without a storage")
        shape, stride = _ints(shape, "shape"), _ints(stride, "stride")
        if len(shape) != len(stride) or len(shape) > 8 or not _is_int(offset) or offset < 0:
            raise pickle.UnpicklingError(f"a tensor of shape {shape}, stride {stride}, offset "
                                         f"{safe_io.printable(repr(offset), 30)} (expected non-negative integers, "
                                         "one stride per dimension)")
        # checked before anything is read or allocated: the elements must be
        # the storage's own (no stride-0 or overlapping view inflating a
        # small storage into a huge array), and lie inside it
        n = 1
        for d in shape:
            n *= d
        if n and (any(s == 0 for d, s in zip(shape, stride) if d > 1) or n > storage.numel
                  or offset + sum((d - 1) * s for d, s in zip(shape, stride)) >= storage.numel):
            raise CheckpointError(f"{storage.where}: a tensor of shape {shape} (stride {stride}, offset {offset}) "
                                  f"does not fit its storage of {storage.numel} elements without repeating them")
        self.storage, self.offset, self.shape, self.stride = storage, offset, shape, stride
        self.dtype = storage.type_name[:-len("Storage")]

    def numpy(self):
        n = int(np.prod(self.shape)) if self.shape else 1
        if n == 0:
            return np.zeros(self.shape, STORAGE_DTYPES[self.storage.type_name])
        flat = self.storage.array()
        a = np.lib.stride_tricks.as_strided(flat[self.offset:], self.shape,
                                            [s * flat.itemsize for s in self.stride]).copy()
        if self.storage.type_name == "BFloat16Storage":  # the top half of a float32
            a = (a.astype(np.uint32) << 16).view(np.float32)
        return a


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _ints(values, what):
    if not isinstance(values, (tuple, list)) or not all(_is_int(v) and 0 <= v < 1 << 48 for v in values):
        raise pickle.UnpicklingError(f"a tensor {what} of {safe_io.printable(repr(values), 60)} (expected "
                                     "non-negative integers)")
    return tuple(values)


class _Storage:
    def __init__(self, archive, key, type_name, numel):
        self.archive, self.key, self.type_name, self.numel = archive, key, type_name, numel
        self.where = f"{archive.path}: storage {safe_io.printable(key, 40)}"
        self._array = None

    def array(self):
        if self._array is None:
            size = self.archive.size(self.key)
            if size != self.numel * STORAGE_DTYPES[self.type_name].itemsize:
                raise CheckpointError(f"{self.where}: {size} bytes for {self.numel} elements of {self.type_name}")
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
        if not isinstance(key, str) or not _is_int(numel) or not 0 <= numel < 1 << 48:
            raise pickle.UnpicklingError(f"a storage key {safe_io.printable(repr(key), 40)} of "
                                         f"{safe_io.printable(repr(numel), 30)} elements (expected a name and a count)")
        return _Storage(self.archive, key, stype.name, numel)


class _Archive:
    def __init__(self, path, zf, file_size):
        self.path, self.zf, self.file_size = path, zf, file_size
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

    def size(self, key):
        """The uncompressed size of a storage's member, which must fit in the
        archive itself (torch.save stores members uncompressed: a member that
        would inflate past the file is a zip bomb, never read)."""
        try:
            info = self.zf.getinfo(f"{self.prefix}data/{key}")
        except KeyError:
            raise CheckpointError(f"{self.path}: storage {safe_io.printable(key, 40)} is missing from the "
                                  "archive") from None
        return self.member_size(info)

    def member_size(self, info):
        if info.file_size > self.file_size:
            raise CheckpointError(f"{self.path}: member {safe_io.printable(info.filename, 60)} would inflate to "
                                  f"{info.file_size} bytes, more than the whole file ({self.file_size}; torch.save "
                                  "does not compress)")
        return info.file_size

    def read(self, key):
        try:
            return self.zf.read(f"{self.prefix}data/{key}")
        except KeyError:
            raise CheckpointError(f"{self.path}: storage {safe_io.printable(key, 40)} is missing from the "
                                  "archive") from None


def load(path):
    """The checkpoint's object with tensors as Tensor (their bytes read from
    the archive, which stays open, when numpy() is first called: an
    optimizer state that is never used is never read). Raises CheckpointError
    (one line) when the file is not a torch.save zip or names anything beyond
    tensors and plain values."""
    f = safe_io.open_input(path, "checkpoint")  # a FIFO or device is refused, never read
    path = safe_io.printable(path)
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        f.seek(0)
        head = f.read(1)
        f.close()
        if head == b"\x80":  # a bare pickle: torch.save's format before PyTorch 1.6
            raise CheckpointError(f"{path}: the legacy (pre-1.6) PyTorch format is not read; re-save it with "
                                  "torch.save from a current PyTorch") from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (expected torch.save's zip archive)") from None
    archive = _Archive(path, zf, os.fstat(f.fileno()).st_size)
    try:
        archive.member_size(zf.getinfo(archive.prefix + "data.pkl"))
        return _Unpickler(io.BytesIO(zf.read(archive.prefix + "data.pkl")), archive).load()
    except _Refused as e:
        raise CheckpointError(f"{path}: not loaded: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            zipfile.BadZipFile, OverflowError, RecursionError) as e:
        raise CheckpointError(f"{path}: a damaged checkpoint ({safe_io.printable(e, 200)})") from None
