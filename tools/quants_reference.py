"""Dequantizing reference for GGUF's block formats, in numpy, written from
their definitions in docs/formats.md (not from the C in src/quants.c).

dequantize(gtype, raw, n) -> float32 array of n values. Every scale is
computed in float32 in the order the format defines (scale = d * sc, then
value = scale * q, minus dmin * m where there is a min), so the result is
what a correct reader must produce, bit for bit."""
import numpy as np

F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 = 0, 1, 2, 3, 6, 7, 8
Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, BF16 = 10, 11, 12, 13, 14, 20, 30

# type -> (values per block, bytes per block)
BLOCK = {F32: (1, 4), F16: (1, 2), BF16: (1, 2), Q8_0: (32, 34), Q4_0: (32, 18), Q4_1: (32, 20),
         Q5_0: (32, 22), Q5_1: (32, 24), IQ4_NL: (32, 18), Q2_K: (256, 84), Q3_K: (256, 110),
         Q4_K: (256, 144), Q5_K: (256, 176), Q6_K: (256, 210)}
NAMES = {F32: "F32", F16: "F16", BF16: "BF16", Q8_0: "Q8_0", Q4_0: "Q4_0", Q4_1: "Q4_1", Q5_0: "Q5_0",
         Q5_1: "Q5_1", IQ4_NL: "IQ4_NL", Q2_K: "Q2_K", Q3_K: "Q3_K", Q4_K: "Q4_K", Q5_K: "Q5_K", Q6_K: "Q6_K"}
IQ4_NL_LEVELS = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.float32)


def _half(b):
    """(nblocks, 2) uint8 -> float32 (nblocks,)"""
    return np.ascontiguousarray(b).view("<f2").reshape(-1).astype(np.float32)


def _nibbles32(qs):
    """(nb, 16) bytes -> (nb, 32) codes: byte j is element j (low), j + 16 (high)"""
    return np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.int32)


def _fifth_bit(qh):
    """(nb, 4) bytes read as a little-endian uint32: bit j is element j's bit 4"""
    h = np.ascontiguousarray(qh).view("<u4").reshape(-1, 1)
    return ((h >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int32) << 4


def _blocks(raw, n, gtype):
    per, size = BLOCK[gtype]
    return np.frombuffer(raw, dtype=np.uint8, count=n // per * size).reshape(-1, size)


def _legacy(gtype, b):
    d = _half(b[:, 0:2])[:, None]
    if gtype == Q8_0:
        return b[:, 2:34].view(np.int8).astype(np.float32) * d
    if gtype == Q4_0:
        return (_nibbles32(b[:, 2:18]) - 8).astype(np.float32) * d
    if gtype == IQ4_NL:
        return IQ4_NL_LEVELS[_nibbles32(b[:, 2:18])] * d
    if gtype == Q4_1:
        m = _half(b[:, 2:4])[:, None]
        return _nibbles32(b[:, 4:20]).astype(np.float32) * d + m
    if gtype == Q5_0:
        q = _nibbles32(b[:, 6:22]) + _fifth_bit(b[:, 2:6]) - 16
        return q.astype(np.float32) * d
    if gtype == Q5_1:
        m = _half(b[:, 2:4])[:, None]
        q = _nibbles32(b[:, 8:24]) + _fifth_bit(b[:, 4:8])
        return q.astype(np.float32) * d + m
    raise ValueError(gtype)


def _two_bit(qs):
    """(nb, 64) bytes -> (nb, 256) codes 0..3: half h reads qs[32h:32h+32],
    pass p bits 2p..2p+1, element 128h + 32p + byte"""
    out = np.empty((qs.shape[0], 256), np.int32)
    for h in range(2):
        for p in range(4):
            out[:, 128 * h + 32 * p:128 * h + 32 * p + 32] = (qs[:, 32 * h:32 * h + 32] >> (2 * p)) & 3
    return out


def _k_scales(s):
    """(nb, 12) -> sc, m (nb, 8) for Q4_K / Q5_K"""
    s = s.astype(np.int32)
    sc = np.empty((s.shape[0], 8), np.int32)
    m = np.empty_like(sc)
    for i in range(8):
        if i < 4:
            sc[:, i] = s[:, i] & 63
            m[:, i] = s[:, i + 4] & 63
        else:
            sc[:, i] = (s[:, i + 4] & 15) | ((s[:, i - 4] >> 6) << 4)
            m[:, i] = (s[:, i + 4] >> 4) | ((s[:, i] >> 6) << 4)
    return sc, m


def _k_nibbles(qs):
    """(nb, 128) -> (nb, 256): chunk c of 64 = low nibbles of qs[32c:32c+32], then high"""
    out = np.empty((qs.shape[0], 256), np.int32)
    for c in range(4):
        out[:, 64 * c:64 * c + 32] = qs[:, 32 * c:32 * c + 32] & 15
        out[:, 64 * c + 32:64 * c + 64] = qs[:, 32 * c:32 * c + 32] >> 4
    return out


def _apply(q, scale, offset, sub):
    """value = scale * q (- offset), per sub-block of `sub` values, float32"""
    sc = np.repeat(scale.astype(np.float32), sub, axis=1)
    v = sc * q.astype(np.float32)
    if offset is not None:
        v = v - np.repeat(offset.astype(np.float32), sub, axis=1)
    return v


def _k_quant(gtype, b):
    if gtype == Q2_K:
        scales, qs = b[:, 0:16].astype(np.int32), b[:, 16:80]
        d, dmin = _half(b[:, 80:82])[:, None], _half(b[:, 82:84])[:, None]
        return _apply(_two_bit(qs), d * (scales & 15).astype(np.float32),
                      dmin * (scales >> 4).astype(np.float32), 16)
    if gtype == Q3_K:
        hmask, qs, sc12 = b[:, 0:32], b[:, 32:96], b[:, 96:108]
        d = _half(b[:, 108:110])[:, None]
        q = _two_bit(qs)
        for h in range(2):
            for p in range(4):
                bit = (hmask >> (4 * h + p)) & 1
                q[:, 128 * h + 32 * p:128 * h + 32 * p + 32] -= 4 * (1 - bit.astype(np.int32))
        a = np.ascontiguousarray(sc12).view("<u4").reshape(-1, 3).astype(np.uint32)
        a0, a1, a2 = a[:, 0], a[:, 1], a[:, 2]
        words = [(a0 & 0x0f0f0f0f) | ((a2 & 0x03030303) << 4),
                 (a1 & 0x0f0f0f0f) | (((a2 >> 2) & 0x03030303) << 4),
                 ((a0 >> 4) & 0x0f0f0f0f) | (((a2 >> 4) & 0x03030303) << 4),
                 ((a1 >> 4) & 0x0f0f0f0f) | (((a2 >> 6) & 0x03030303) << 4)]
        sc = np.stack([((words[k // 4] >> (8 * (k % 4))) & 63).astype(np.int32) - 32 for k in range(16)], axis=1)
        return _apply(q, d * sc.astype(np.float32), None, 16)
    if gtype in (Q4_K, Q5_K):
        d, dmin = _half(b[:, 0:2])[:, None], _half(b[:, 2:4])[:, None]
        sc, m = _k_scales(b[:, 4:16])
        if gtype == Q4_K:
            q = _k_nibbles(b[:, 16:144])
        else:
            qh, q = b[:, 16:48].astype(np.int32), _k_nibbles(b[:, 48:176])
            for c in range(4):
                q[:, 64 * c:64 * c + 32] += ((qh >> (2 * c)) & 1) << 4
                q[:, 64 * c + 32:64 * c + 64] += ((qh >> (2 * c + 1)) & 1) << 4
        return _apply(q, d * sc.astype(np.float32), dmin * m.astype(np.float32), 32)
    if gtype == Q6_K:
        ql, qh, sc = b[:, 0:128].astype(np.int32), b[:, 128:192].astype(np.int32), b[:, 192:208].view(np.int8)
        d = _half(b[:, 208:210])[:, None]
        q = np.empty((b.shape[0], 256), np.int32)
        for h in range(2):
            L, H, o = ql[:, 64 * h:64 * h + 64], qh[:, 32 * h:32 * h + 32], 128 * h
            q[:, o:o + 32] = (L[:, :32] & 15) | ((H & 3) << 4)
            q[:, o + 32:o + 64] = (L[:, 32:] & 15) | (((H >> 2) & 3) << 4)
            q[:, o + 64:o + 96] = (L[:, :32] >> 4) | (((H >> 4) & 3) << 4)
            q[:, o + 96:o + 128] = (L[:, 32:] >> 4) | (((H >> 6) & 3) << 4)
        return _apply(q - 32, d * sc.astype(np.float32), None, 16)
    raise ValueError(gtype)


def dequantize(gtype, raw, n):
    """The n values of a tensor of type gtype stored in raw, as float32."""
    if gtype == F32:
        return np.frombuffer(raw, dtype="<f4", count=n).copy()
    if gtype == F16:
        return np.frombuffer(raw, dtype="<f2", count=n).astype(np.float32)
    if gtype == BF16:
        return (np.frombuffer(raw, dtype="<u2", count=n).astype(np.uint32) << 16).view(np.float32)
    if gtype not in BLOCK:
        raise ValueError(f"tensor type {gtype} not supported by the reference reader")
    b = _blocks(raw, n, gtype)
    v = _legacy(gtype, b) if BLOCK[gtype][0] == 32 else _k_quant(gtype, b)
    return v.astype(np.float32).reshape(-1)
