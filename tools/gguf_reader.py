"""A small, independent GGUF v3 reader in Python (numpy), used by the numpy
reference and the tests. It shares no code with the C loader."""
import struct

import numpy as np

import quants_reference

_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_NP = {0: np.uint8, 1: np.int8, 2: np.uint16, 3: np.int16, 4: np.uint32, 5: np.int32, 6: np.float32,
       7: np.bool_, 10: np.uint64, 11: np.int64, 12: np.float64}


def _dequant(gtype, raw, n):
    return quants_reference.dequantize(gtype, raw, n)


_BLOCK = quants_reference.BLOCK


class GGUFFile:
    """kv: dict key -> python value (arrays as lists or numpy arrays);
    tensors: dict name -> (gguf dims, ggml type, raw bytes)."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.raw = f.read()
        self.pos = 0
        if self.raw[:4] != b"GGUF":
            raise ValueError(f"{path}: not GGUF")
        self.pos = 4
        self.version = self._u32()
        n_tensors, n_kv = self._u64(), self._u64()
        self.kv, self.kv_types = {}, {}
        for _ in range(n_kv):
            key = self._str()
            vtype = self._u32()
            self.kv[key] = self._value(vtype)
            self.kv_types[key] = vtype
        infos = []
        for _ in range(n_tensors):
            name = self._str()
            nd = self._u32()
            dims = [self._u64() for _ in range(nd)]
            gtype = self._u32()
            off = self._u64()
            infos.append((name, dims, gtype, off))
        align = int(self.kv.get("general.alignment", 32))
        data = self.pos + (align - self.pos % align) % align
        self.tensors = {}
        for name, dims, gtype, off in infos:
            n = int(np.prod(dims))
            blk, size = _BLOCK.get(gtype, (1, 0))
            nbytes = n // blk * size
            self.tensors[name] = (dims, gtype, self.raw[data + off:data + off + nbytes])

    def _u32(self):
        v = struct.unpack_from("<I", self.raw, self.pos)[0]
        self.pos += 4
        return v

    def _u64(self):
        v = struct.unpack_from("<Q", self.raw, self.pos)[0]
        self.pos += 8
        return v

    def _str(self):
        n = self._u64()
        s = self.raw[self.pos:self.pos + n]
        self.pos += n
        return s.decode("utf-8", errors="surrogateescape")

    def _value(self, vtype):
        if vtype == 8:
            return self._str()
        if vtype == 9:
            etype, n = self._u32(), self._u64()
            if etype == 8:
                return [self._str() for _ in range(n)]
            dt = np.dtype(_NP[etype]).newbyteorder("<")
            arr = np.frombuffer(self.raw, dtype=dt, count=n, offset=self.pos).copy()
            self.pos += n * dt.itemsize
            return arr
        fmt = _SCALAR[vtype]
        v = struct.unpack_from(fmt, self.raw, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def tensor(self, name):
        """The tensor as float32 numpy, shape in numpy order (dims reversed)."""
        dims, gtype, raw = self.tensors[name]
        n = int(np.prod(dims))
        return _dequant(gtype, raw, n).reshape(list(reversed(dims)))
