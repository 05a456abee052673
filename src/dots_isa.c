/* The dot products of weight rows in block formats with 8-bit activation
 * rows (kernel_ops.dot_q8), compiled once per instruction set like
 * kernels_isa.c (isa.h). Each computes exactly what the format's plain
 * definition computes (dot_blocks_q8 in quants.c: per (sub-)block an
 * integer sum of weight codes times activation codes, scaled by the
 * sub-block's scale and the activation block's), in vector registers; only
 * the order of the float additions differs, and the unit tests check each
 * against the definition. The scalar set has none: it runs the definitions.
 *
 * The integer sums: vpmaddubsw multiplies unsigned weight codes by signed
 * activations into int16 pairs (every format keeps a pair below 2^15: the
 * bound is given where it matters), vpmaddwd widens or scales them to int32;
 * with VNNI, vpdpbusd does both where no int16 scale is needed. */
#include <stddef.h>

#include "isa.h"
#include "kernels.h"
#include "quants.h"

enum { QK = 32 };
/* Q8_0 and Q4_0 keep their codes at the same place after the scale */
enum { QS_AT = offsetof(block_q8_0, qs) };
static_assert(offsetof(block_q4_0, qs) == QS_AT, "Q4_0 and Q8_0 codes start alike");

/* ------------------------------------------------------ Q8_0, Q4_0 -- */

/* Unsigned bytes u times signed bytes s, each 4 adjacent products summed
 * into an int32 lane (added to acc): one vpdpbusd with AVX-512 VNNI; else
 * vpmaddubsw (pairs into int16: callers keep |pair| < 2^15) then vpmaddwd. */
ALWAYS_INLINE __m256i dot_u8_i8_acc(__m256i acc, __m256i u, __m256i s) {
#ifdef __AVX512VNNI__
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}
ALWAYS_INLINE __m256i dot_u8_i8(__m256i u, __m256i s) { return dot_u8_i8_acc(_mm256_setzero_si256(), u, s); }

/* The 32 int8 products w[i] * x[i] summed in 8 int32 lanes. vpmaddubsw
 * multiplies unsigned by signed bytes: |w| is the unsigned side and w's sign
 * moves onto x (products unchanged; pairs of them fit int16 since x is
 * -127..127 and |w| <= 128). */
ALWAYS_INLINE __m256i dot_i8(__m256i w, __m256i x) {
    __m256i aw = _mm256_sign_epi8(w, w), sx = _mm256_sign_epi8(x, w);
    return dot_u8_i8(aw, sx);
}

/* Q4_0: the 32 unsigned nibbles n (0..15, value order) times x, summed in 8
 * int32 lanes; the caller subtracts 8 * sum(x). Nibbles are unsigned, so
 * vpmaddubsw takes them as they are (pairs fit int16: 2 * 15 * 127). */
ALWAYS_INLINE __m256i dot_q4(const uint8_t *p, __m256i x) {
    __m128i b = _mm_loadu_si128((const __m128i *)p);
    __m256i n = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(15));
    return dot_u8_i8(n, x);
}


/* Block b's 8 partial integer sums, as floats (exact: |sum| < 2^24). Q4_0
 * takes 8 sum(q_x) off as sum(q_x) from each of the 8 lanes (exact). */
ALWAYS_INLINE __m256 block_dot(const uint8_t *blk, int q4, const int8_t *xq, int32_t xsum) {
    __m256i x = _mm256_loadu_si256((const __m256i *)xq);
    __m256i p = q4 ? _mm256_sub_epi32(dot_q4(blk + QS_AT, x), _mm256_set1_epi32(xsum))
                   : dot_i8(_mm256_loadu_si256((const __m256i *)(blk + QS_AT)), x);
    return _mm256_cvtepi32_ps(p);
}

#if VW == 16
/* dot_u8_i8 on 64 bytes: 16 int32 lanes */
ALWAYS_INLINE __m512i dot_u8_i8_512(__m512i u, __m512i s) {
#ifdef __AVX512VNNI__
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
#else
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
#endif
}

/* AVX-512: blocks b and b + 1 at once against x (their 64 activations),
 * 16 int32 partial sums (8 per block) as floats; Q4_0 subtracts `sums`
 * (8 lanes of sum(q_x) of block b, then 8 of b + 1).
 * AVX-512 has no vpsignb: |w| by vpabsb, w's sign onto x by a masked
 * negation. */
ALWAYS_INLINE __m512 block_pair_dot(const uint8_t *w0, const uint8_t *w1, int q4, __m512i x, __m512i sums) {
    __m512i p;
    if (q4) {
        __m256i t = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(w1 + QS_AT)),
                                     _mm_loadu_si128((const __m128i *)(w0 + QS_AT)));   // b0 | b1
        __m512i u = _mm512_inserti64x4(_mm512_castsi256_si512(t), _mm256_srli_epi16(t, 4), 1);
        __m512i n = _mm512_and_si512(_mm512_shuffle_i64x2(u, u, _MM_SHUFFLE(3, 1, 2, 0)), _mm512_set1_epi8(15));
        p = _mm512_sub_epi32(dot_u8_i8_512(n, x), sums);
    } else {
        __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(w0 + QS_AT))),
                                       _mm256_loadu_si256((const __m256i *)(w1 + QS_AT)), 1);
        __m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x);
        p = dot_u8_i8_512(_mm512_abs_epi8(w), sx);
    }
    return _mm512_cvtepi32_ps(p);
}
#endif


/* One weight row (nb blocks) against one quantized activation row. */
ALWAYS_INLINE float row_dot_q(const uint8_t *w, int q4, const int8_t *xq, const float *xd, const int32_t *xs,
                              int nb) {
    const int bytes = q4 ? (int)sizeof(block_q4_0) : (int)sizeof(block_q8_0);
    int b = 0;
    float s = 0.0f;
#if VW == 16
    __m512 acc = _mm512_setzero_ps();
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *w0 = w + (size_t)b * bytes, *w1 = w0 + bytes;
        __m512 d = _mm512_insertf32x8(_mm512_set1_ps(block_scale(w0) * xd[b]),
                                      _mm256_set1_ps(block_scale(w1) * xd[b + 1]), 1);
        __m512i sums = _mm512_inserti64x4(_mm512_set1_epi32(xs[b]), _mm256_set1_epi32(xs[b + 1]), 1);
        acc = _mm512_fmadd_ps(d, block_pair_dot(w0, w1, q4, _mm512_loadu_si512((const void *)(xq + b * QK)), sums),
                              acc);
    }
    s = _mm512_reduce_add_ps(acc);
#endif
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *w0 = w + (size_t)b * bytes, *w1 = w0 + bytes;
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(block_scale(w0) * xd[b]), block_dot(w0, q4, xq + b * QK, xs[b]), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(block_scale(w1) * xd[b + 1]),
                               block_dot(w1, q4, xq + (b + 1) * QK, xs[b + 1]), acc1);
    }
    for (; b < nb; b++) {
        const uint8_t *w0 = w + (size_t)b * bytes;
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(block_scale(w0) * xd[b]), block_dot(w0, q4, xq + b * QK, xs[b]), acc0);
    }
    s += hsum8(_mm256_add_ps(acc0, acc1));
    return s;
}


static float dot_q8_0(const void *row, const q8_act *x, int t) {
    int nb = x->C / QK;
    return row_dot_q(row, 0, x->q + (size_t)t * x->C, x->d + (size_t)t * nb, x->s + (size_t)t * nb, nb);
}

static float dot_q4_0(const void *row, const q8_act *x, int t) {
    int nb = x->C / QK;
    return row_dot_q(row, 1, x->q + (size_t)t * x->C, x->d + (size_t)t * nb, x->s + (size_t)t * nb, nb);
}

/* ----------------------------------------------------- shared parts -- */

/* row t of x: its codes, block scales and block sums */
typedef struct {
    const int8_t *q;
    const float *d;
    const int32_t *s;
} act_row;

ALWAYS_INLINE act_row act_at(const q8_act *x, int t) {
    int nb = x->C / QK;
    return (act_row){x->q + (size_t)t * x->C, x->d + (size_t)t * nb, x->s + (size_t)t * nb};
}

ALWAYS_INLINE __m256i load32(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* the F16 at p (any alignment) */
ALWAYS_INLINE float half_at(const uint8_t *p) { return block_scale(p); }

/* 32 codes from 16 bytes of nibbles: byte j's low nibble is code j, its
 * high nibble code j + 16 (the legacy formats' layout) */
ALWAYS_INLINE __m256i nibbles32(const uint8_t *p) {
    __m128i b = _mm_loadu_si128((const __m128i *)p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(b, 4), b), _mm256_set1_epi8(15));
}

/* byte j = 16 where bit j of the little-endian uint32 at p is set, else 0 */
ALWAYS_INLINE __m256i bit4_from_bits(const uint8_t *p) {
    uint32_t h;
    memcpy(&h, p, 4);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h),
                                    _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                      0x0101010101010101, 0x0000000000000000));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(16));
}

/* ------------------------------------- Q4_1, Q5_0, Q5_1, IQ4_NL (32) -- */
/* Per block: the integer sum of codes (0..31, unsigned) times x, in 8 lanes
 * (pairs at most 2 * 31 * 127); Q5_0's -16 and the mins of Q4_1 / Q5_1
 * go through x's block sum. */

static float dot_q4_1(const void *row, const q8_act *x, int t) {
    act_row a = act_at(x, t);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int b = 0; b < x->C / QK; b++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)b * sizeof(block_q4_1);
        __m256i p = dot_u8_i8(nibbles32(blk + offsetof(block_q4_1, qs)), load32(a.q + b * QK));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(blk + offsetof(block_q4_1, d)) * a.d[b]), _mm256_cvtepi32_ps(p),
                              acc);
        mins += half_at(blk + offsetof(block_q4_1, m)) * a.d[b] * (float)a.s[b];
    }
    return hsum8(acc) + mins;
}

ALWAYS_INLINE __m256i q5_codes(const uint8_t *qh, const uint8_t *qs) {
    return _mm256_or_si256(nibbles32(qs), bit4_from_bits(qh));
}

static float dot_q5_0(const void *row, const q8_act *x, int t) {
    act_row a = act_at(x, t);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < x->C / QK; b++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)b * sizeof(block_q5_0);
        __m256i q = q5_codes(blk + offsetof(block_q5_0, qh), blk + offsetof(block_q5_0, qs));
        /* sum (q - 16) x = sum q x - 16 sum x: 8 lanes, the -16 sum(x) split over them (2 sum x each) */
        __m256i p = _mm256_sub_epi32(dot_u8_i8(q, load32(a.q + b * QK)), _mm256_set1_epi32(2 * a.s[b]));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(blk + offsetof(block_q5_0, d)) * a.d[b]), _mm256_cvtepi32_ps(p),
                              acc);
    }
    return hsum8(acc);
}

static float dot_q5_1(const void *row, const q8_act *x, int t) {
    act_row a = act_at(x, t);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int b = 0; b < x->C / QK; b++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)b * sizeof(block_q5_1);
        __m256i q = q5_codes(blk + offsetof(block_q5_1, qh), blk + offsetof(block_q5_1, qs));
        __m256i p = dot_u8_i8(q, load32(a.q + b * QK));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(blk + offsetof(block_q5_1, d)) * a.d[b]), _mm256_cvtepi32_ps(p),
                              acc);
        mins += half_at(blk + offsetof(block_q5_1, m)) * a.d[b] * (float)a.s[b];
    }
    return hsum8(acc) + mins;
}

/* IQ4_NL: each nibble looks its level up (vpshufb over the 16 levels);
 * levels are signed, so the sign moves onto x (pairs at most 2 * 127 * 127) */
static float dot_iq4_nl(const void *row, const q8_act *x, int t) {
    act_row a = act_at(x, t);
    const __m256i levels = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)IQ4_NL_LEVELS));
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < x->C / QK; b++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)b * sizeof(block_iq4_nl);
        __m256i w = _mm256_shuffle_epi8(levels, nibbles32(blk + offsetof(block_iq4_nl, qs)));
        __m256i p = dot_i8(w, load32(a.q + b * QK));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(blk + offsetof(block_iq4_nl, d)) * a.d[b]),
                              _mm256_cvtepi32_ps(p), acc);
    }
    return hsum8(acc);
}

/* --------------------------------------------- K-quants, blocks of 256 -- */

/* The 8 sums of v[0..7] (8 int32 lanes each), as lanes 0..7 of one vector:
 * pairwise horizontal adds, then the two 128-bit halves added. */
ALWAYS_INLINE __m256i lane_sums8(const __m256i *v) {
    __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    __m256i b = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

/* 8 bytes at p as 8 floats */
ALWAYS_INLINE __m256 u8x8_to_f32(uint64_t bytes) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)bytes)));
}

/* Q4_K / Q5_K: the 8 six-bit scales and the 8 mins (quants.c, k_scale_min)
 * as 8 bytes each: sub-blocks 0..3 from the low 6 bits of bytes 0..3 and
 * 4..7, sub-blocks 4..7 a nibble of bytes 8..11 and the top 2 bits of bytes
 * 0..3 (scales) or 4..7 (mins). */
ALWAYS_INLINE void k_scales8(const uint8_t *s, uint64_t *sc, uint64_t *m) {
    uint32_t a0, a1, a2;
    memcpy(&a0, s, 4), memcpy(&a1, s + 4, 4), memcpy(&a2, s + 8, 4);
    uint32_t sc_hi = (a2 & 0x0f0f0f0f) | (a0 >> 6 & 0x03030303) << 4;
    uint32_t m_hi = (a2 >> 4 & 0x0f0f0f0f) | (a1 >> 6 & 0x03030303) << 4;
    *sc = (uint64_t)(a0 & 0x3f3f3f3f) | (uint64_t)sc_hi << 32;
    *m = (uint64_t)(a1 & 0x3f3f3f3f) | (uint64_t)m_hi << 32;
}

/* Chunk c of a Q4_K / Q5_K block (its 32 bytes at qs): the codes of
 * sub-block 2c (low nibbles) and 2c + 1 (high), with Q5_K's fifth bits
 * from *qh (bits 0 and 1, then *qh moves on to the next chunk's). */
ALWAYS_INLINE void k_chunk_codes(const uint8_t *qs, const int five, __m256i *qh, __m256i *lo, __m256i *hi) {
    const __m256i low4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    __m256i v = load32(qs);
    *lo = _mm256_and_si256(v, low4), *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
    if (five) {
        *lo = _mm256_or_si256(*lo, _mm256_slli_epi16(_mm256_and_si256(*qh, one), 4));
        *hi = _mm256_or_si256(*hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(*qh, 1), one), 4));
        *qh = _mm256_srli_epi16(*qh, 2);
    }
}

#if VW == 16
/* The 8 scales and 8 mins of a Q4_K / Q5_K block (k_scales8's layout) as
 * 16 int16: [sc0 .. sc7, m0 .. m7], by byte shuffles instead of scalar
 * shifts (the 4 bytes after the 12 scale bytes are loaded and dropped) */
ALWAYS_INLINE __m256i k_scales16(const uint8_t *s) {
    __m128i v = _mm_loadu_si128((const __m128i *)s);
    /* a: bytes 0-3 | 8-11 | 4-7 | 8-11 (low parts), b: - | 0-3 | - | 4-7 (top 2 bits) */
    __m128i a = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    __m128i b = _mm_shuffle_epi8(v, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    __m128i lo6 = _mm_and_si128(a, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0));
    __m128i hi4 = _mm_and_si128(_mm_srli_epi16(a, 4), _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15));
    __m128i top = _mm_and_si128(_mm_srli_epi16(b, 2), _mm_set1_epi8(0x30)); /* (s >> 6) << 4 */
    return _mm256_cvtepu8_epi16(_mm_or_si128(_mm_or_si128(lo6, hi4), top));
}

/* Q4_K / Q5_K chunk c (its 32 bytes at qs + 32 c) as 64 codes: the bytes
 * broadcast to both 256-bit halves, the low half keeping the low nibbles
 * (sub-block 2c) and the high half the high ones (2c + 1), so one register
 * meets the 64 activations of both; Q5_K adds bit 2c / 2c + 1 of qh[l] (qh:
 * the 32 bytes in both halves) as 16. */
ALWAYS_INLINE __m512i k_nibble_pair(const uint8_t *qs, const int five, __m512i qh, int c) {
    __m512i v = _mm512_broadcast_i64x4(load32(qs + 32 * c));
    __m512i q = _mm512_and_si512(_mm512_mask_srli_epi16(v, 0xffff0000u, v, 4), _mm512_set1_epi8(15));
    if (five) {
        __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << 2 * c)), _mm256_set1_epi8((char)(1 << (2 * c + 1))), 1);
        q = _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(qh, bit), q, _mm512_set1_epi8(16));
    }
    return q;
}

/* the int16 multipliers for k_nibble_pair's chunk c: scale 2c | 2c + 1 from
 * k_scales16's vector, placed by vpermw */
ALWAYS_INLINE __m512i k_scale_pair(__m256i scm, int c) {
    __m512i b = _mm512_broadcast_i32x4(_mm256_castsi256_si128(scm));
    const char l0 = (char)(4 * c), l1 = (char)(4 * c + 1), h0 = (char)(4 * c + 2), h1 = (char)(4 * c + 3);
    __m512i idx = _mm512_set_epi8(h1, h0, h1, h0, h1, h0, h1, h0, h1, h0, h1, h0, h1, h0, h1, h0,
                                  h1, h0, h1, h0, h1, h0, h1, h0, h1, h0, h1, h0, h1, h0, h1, h0,
                                  l1, l0, l1, l0, l1, l0, l1, l0, l1, l0, l1, l0, l1, l0, l1, l0,
                                  l1, l0, l1, l0, l1, l0, l1, l0, l1, l0, l1, l0, l1, l0, l1, l0);
    return _mm512_shuffle_epi8(b, idx);
}

/* [m0 m0 m1 m1 .. m7 m7] from k_scales16's vector: against x's sums of 16,
 * lane j of vpmaddwd is m_j times the sum of sub-block j */
ALWAYS_INLINE __m256i k_min_pairs(__m256i scm) {
    return _mm256_permutexvar_epi16(_mm256_setr_epi16(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15), scm);
}

/* Q4_K, Q5_K with AVX-512: per chunk one register of codes (k_nibble_pair)
 * against 64 activations, each sub-block's sum scaled in integers
 * (vpmaddwd by k_scale_pair); the 16 lanes add up over the super-block
 * before one float scaling, the mins are one vpmaddwd against x's sums of
 * 16. About a third fewer instructions than the 256-bit dot, which a single
 * thread streaming from memory is bound by. */
ALWAYS_INLINE float dot_k_nibbles_512(const void *row, const q8_act *x, int t, const int five) {
    act_row a = act_at(x, t);
    const int16_t *s16 = x->s16 + (size_t)t * (x->C / 16);
    const size_t bytes = five ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const size_t at_scales = five ? offsetof(block_q5_K, scales) : offsetof(block_q4_K, scales);
    const size_t at_qs = five ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs);
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (int i = 0; i < x->C / QK_K; i++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)i * bytes;
        const int8_t *xq = a.q + i * QK_K;
        __m256i scm = k_scales16(blk + at_scales);
        __m512i qh = five ? _mm512_broadcast_i64x4(load32(blk + offsetof(block_q5_K, qh))) : _mm512_setzero_si512();
        __m512i sum = _mm512_setzero_si512();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++)
            sum = _mm512_add_epi32(sum, _mm512_madd_epi16(_mm512_maddubs_epi16(k_nibble_pair(blk + at_qs, five, qh, c),
                                                                               _mm512_loadu_si512(xq + 64 * c)),
                                                          k_scale_pair(scm, c)));
        float dx = a.d[i * 8]; /* x's 256 values share one scale (q8_act.group) */
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_set1_ps(half_at(blk + offsetof(block_q4_K, d)) * dx), acc);
        __m256i mins = _mm256_madd_epi16(k_min_pairs(scm), load32(s16 + i * 16));
        accm = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_set1_ps(half_at(blk + offsetof(block_q4_K, dmin)) * dx),
                               accm);
    }
    return _mm512_reduce_add_ps(acc) - hsum8(accm);
}
static float dot_q4_K(const void *row, const q8_act *x, int t) { return dot_k_nibbles_512(row, x, t, 0); }
static float dot_q5_K(const void *row, const q8_act *x, int t) { return dot_k_nibbles_512(row, x, t, 1); }
#else
/* Q4_K, Q5_K with AVX2: 8 sub-blocks of 32, each one activation block: chunk c's
 * bytes hold sub-block 2c (low nibbles) and 2c + 1 (high); Q5_K adds bit
 * 2c / 2c + 1 of qh[l] as 16. Codes 0..31 (pairs at most 2 * 31 * 127).
 * The 8 sub-block sums meet their 8 scale factors d sc_k dx in one
 * vector, the mins dmin m_k dx sum(x)_k in another (dx: x's one scale
 * for the 256 values, q8_act.group). */
ALWAYS_INLINE float dot_k_nibbles(const void *row, const q8_act *x, int t, const int five) {
    act_row a = act_at(x, t);
    const size_t bytes = five ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const size_t at_scales = five ? offsetof(block_q5_K, scales) : offsetof(block_q4_K, scales);
    const size_t at_qs = five ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs);
    static_assert(offsetof(block_q5_K, d) == offsetof(block_q4_K, d) &&
                      offsetof(block_q5_K, dmin) == offsetof(block_q4_K, dmin), "Q4_K and Q5_K scales alike");
    __m256 acc = _mm256_setzero_ps(), accm = acc;
    for (int i = 0; i < x->C / QK_K; i++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)i * bytes;
        const int8_t *xq = a.q + i * QK_K;
        __m256i qh = five ? load32(blk + offsetof(block_q5_K, qh)) : _mm256_setzero_si256();
        __m256i p[8];
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m256i lo, hi;
            k_chunk_codes(blk + at_qs + 32 * c, five, &qh, &lo, &hi);
            p[2 * c] = dot_u8_i8(lo, load32(xq + 64 * c));
            p[2 * c + 1] = dot_u8_i8(hi, load32(xq + 64 * c + 32));
        }
        uint64_t sc, m;
        k_scales8(blk + at_scales, &sc, &m);
        float dx = a.d[i * 8]; /* x's 256 values share one scale (q8_act.group) */
        __m256 scale = _mm256_mul_ps(_mm256_set1_ps(half_at(blk + offsetof(block_q4_K, d)) * dx), u8x8_to_f32(sc));
        acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(lane_sums8(p)), acc);
        __m256 min = _mm256_mul_ps(_mm256_set1_ps(half_at(blk + offsetof(block_q4_K, dmin)) * dx), u8x8_to_f32(m));
        accm = _mm256_fmadd_ps(min, _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(a.s + i * 8))), accm);
    }
    return hsum8(_mm256_sub_ps(acc, accm));
}

static float dot_q4_K(const void *row, const q8_act *x, int t) { return dot_k_nibbles(row, x, t, 0); }
static float dot_q5_K(const void *row, const q8_act *x, int t) { return dot_k_nibbles(row, x, t, 1); }
#endif

/* Sub-blocks of 16 (Q2_K, Q3_K, Q6_K): an activation block's 32 bytes are
 * two sub-blocks, bytes 0..15 in the low 128-bit half and 16..31 in the
 * high one. The 16 scales as int16 (s16 = [s0..s7 | s8..s15]) give block
 * j's pair [s_2j x 8 | s_2j+1 x 8] by one byte shuffle, for vpmaddwd. */
ALWAYS_INLINE __m256i scale_pair(__m256i lo_dup, __m256i hi_dup, int j) {
    /* int16 lane 2j' (low half) and 2j' + 1 (high half) of the duplicated 8 scales, j' = j % 4 */
    int k = 2 * (j % 4);
    __m256i mask = _mm256_set_m128i(_mm_set1_epi16((short)((2 * k + 3) << 8 | (2 * k + 2))),
                                    _mm_set1_epi16((short)((2 * k + 1) << 8 | (2 * k))));
    return _mm256_shuffle_epi8(j < 4 ? lo_dup : hi_dup, mask);
}

/* sum over sub-blocks of 16 of scale * (sum of x over it), per activation
 * block (8 int32 lanes: block j = sub-blocks 2j, 2j + 1), from the 16
 * scales (int16) and x's sums of 16 */
ALWAYS_INLINE __m256i scaled_sums16(__m256i scales16, const int16_t *s16) {
    return _mm256_madd_epi16(scales16, _mm256_loadu_si256((const __m256i *)s16));
}

/* The 128 codes (0..63) of half h of a Q6_K block, as 4 vectors of 32 in
 * element order: the low nibbles of ql[0..32) and ql[32..64) with qh's bits
 * 0-1 and 2-3 above them, then their high nibbles with bits 4-5 and 6-7
 * (quants.c, decode_q6_K). */
ALWAYS_INLINE void q6_codes(const uint8_t *blk, int h, __m256i q[4]) {
    const __m256i low4 = _mm256_set1_epi8(15), low2 = _mm256_set1_epi8(3);
    __m256i l0 = load32(blk + offsetof(block_q6_K, ql) + 64 * h);
    __m256i l1 = load32(blk + offsetof(block_q6_K, ql) + 64 * h + 32);
    __m256i qh = load32(blk + offsetof(block_q6_K, qh) + 32 * h);
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(qh, low2), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, low4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), low2), 4));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), low2), 4));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), low2), 4));
}

#if VW == 16
/* Half h of a Q6_K block with AVX-512: its ql bytes (64) in one register
 * give the low nibbles of activation blocks 4h, 4h + 1 (q01) and the high
 * nibbles of 4h + 2, 4h + 3 (q23); qh (32 bytes, in both halves) shifted
 * per half brings each block's 2 top bits to bits 4-5 (q6_codes' values). */
ALWAYS_INLINE void q6_half_512(const uint8_t *blk, int h, __m512i *q01, __m512i *q23) {
    const __m512i low4 = _mm512_set1_epi8(15), top2 = _mm512_set1_epi8(0x30);
    /* qh bits 0-1 | 2-3 up to bits 4-5 (shift left 4 | 2), bits 4-5 | 6-7 (right 0 | 2) */
    const __m512i up_lo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i down_hi = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    __m512i l = _mm512_loadu_si512(blk + offsetof(block_q6_K, ql) + 64 * h);
    __m512i qh = _mm512_broadcast_i64x4(load32(blk + offsetof(block_q6_K, qh) + 32 * h));
    *q01 = _mm512_or_si512(_mm512_and_si512(l, low4), _mm512_and_si512(_mm512_sllv_epi16(qh, up_lo), top2));
    *q23 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), low4),
                           _mm512_and_si512(_mm512_srlv_epi16(qh, down_hi), top2));
}

/* the int16 multipliers of activation blocks 4h + 2p, 4h + 2p + 1: lane k
 * takes sub-block 8h + 4p + k / 8's scale (sc: the 16 scales as int16) */
ALWAYS_INLINE __m512i q6_scale_pair(__m256i sc, int h, int p) {
    const int s0 = 8 * h + 4 * p;
    __m512i idx = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_setr_m128i(_mm_set1_epi16((short)s0), _mm_set1_epi16((short)(s0 + 1)))),
        _mm256_setr_m128i(_mm_set1_epi16((short)(s0 + 2)), _mm_set1_epi16((short)(s0 + 3))), 1);
    return _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(sc));
}

/* Q6_K with AVX-512: per half two registers of codes (q6_half_512), scaled
 * in vpmaddwd (q6_scale_pair); the 16 lanes add up over the super-block
 * before one float scaling (|lane| < 2^26). */
static float dot_q6_K(const void *row, const q8_act *x, int t) {
    act_row a = act_at(x, t);
    const int16_t *s16 = x->s16 + (size_t)t * (x->C / 16);
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < x->C / QK_K; i++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)i * sizeof(block_q6_K);
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + offsetof(block_q6_K, scales))));
        __m512i sum = _mm512_setzero_si512();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m512i q[2];
            q6_half_512(blk, h, &q[0], &q[1]);
#pragma GCC unroll 2
            for (int p = 0; p < 2; p++)
                sum = _mm512_add_epi32(
                    sum, _mm512_madd_epi16(_mm512_maddubs_epi16(q[p], _mm512_loadu_si512(a.q + i * QK_K + 128 * h + 64 * p)),
                                           q6_scale_pair(sc16, h, p)));
        }
        __m256i codes = _mm256_sub_epi32(_mm256_add_epi32(_mm512_castsi512_si256(sum), _mm512_extracti64x4_epi64(sum, 1)),
                                         _mm256_slli_epi32(scaled_sums16(sc16, s16 + i * 16), 5)); /* - 32 sum */
        __m512 scale = _mm512_set1_ps(half_at(blk + offsetof(block_q6_K, d)) * a.d[i * 8]);
        acc = _mm512_fmadd_ps(scale, _mm512_castps256_ps512(_mm256_cvtepi32_ps(codes)), acc);
    }
    return _mm512_reduce_add_ps(acc);
}
#else
/* Q6_K: codes q - 32 with q 0..63: sum q x per sub-block scaled (pairs at
 * most 2 * 63 * 127), minus 32 * sum(scale * sum16(x)). */
static float dot_q6_K(const void *row, const q8_act *x, int t) {
    act_row a = act_at(x, t);
    const int16_t *s16 = x->s16 + (size_t)t * (x->C / 16);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < x->C / QK_K; i++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)i * sizeof(block_q6_K);
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + offsetof(block_q6_K, scales))));
        __m256i lo_dup = _mm256_permute2x128_si256(sc16, sc16, 0x00), hi_dup = _mm256_permute2x128_si256(sc16, sc16, 0x11);
        __m256i p[8]; /* activation block j: sub-blocks 2j, 2j + 1 */
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            q6_codes(blk, h, q);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                int b = 4 * h + j;
                __m256i xv = load32(a.q + i * QK_K + 32 * b);
                p[b] = _mm256_madd_epi16(_mm256_maddubs_epi16(q[j], xv), scale_pair(lo_dup, hi_dup, b));
            }
        }
        /* x's 256 values share one scale (q8_act.group): the blocks' integer
         * sums add up lane by lane before the one scaling (|lane| < 2^26) */
        __m256i sum = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(p[0], p[1]), _mm256_add_epi32(p[2], p[3])),
                                       _mm256_add_epi32(_mm256_add_epi32(p[4], p[5]), _mm256_add_epi32(p[6], p[7])));
        __m256i codes = _mm256_sub_epi32(sum, _mm256_slli_epi32(scaled_sums16(sc16, s16 + i * 16), 5)); /* - 32 sum */
        __m256 scale = _mm256_set1_ps(half_at(blk + offsetof(block_q6_K, d)) * a.d[i * 8]);
        acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(codes), acc);
    }
    return hsum8(acc);
}
#endif

/* Q2_K: value d (sc & 15) q - dmin (sc >> 4), q 0..3: the codes' sums with
 * the scales (pairs at most 2 * 3 * 127), x's sums of 16 with the mins */
static float dot_q2_K(const void *row, const q8_act *x, int t) {
    act_row a = act_at(x, t);
    const int16_t *s16 = x->s16 + (size_t)t * (x->C / 16);
    __m256 acc = _mm256_setzero_ps(), accm = acc;
    for (int i = 0; i < x->C / QK_K; i++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)i * sizeof(block_q2_K);
        __m128i packed = _mm_loadu_si128((const __m128i *)(blk + offsetof(block_q2_K, scales)));
        __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(packed, _mm_set1_epi8(15)));
        __m256i min16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(15)));
        __m256i lo_dup = _mm256_permute2x128_si256(sc16, sc16, 0x00), hi_dup = _mm256_permute2x128_si256(sc16, sc16, 0x11);
        __m256i p[8];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i qs = load32(blk + offsetof(block_q2_K, qs) + 32 * h);
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                int j = 4 * h + k;
                __m256i q = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * k), _mm256_set1_epi8(3));
                p[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(q, load32(a.q + i * QK_K + 32 * j)),
                                         scale_pair(lo_dup, hi_dup, j));
            }
        }
        __m256 dx = _mm256_loadu_ps(a.d + i * 8);
        acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(half_at(blk + offsetof(block_q2_K, d))), dx),
                              _mm256_cvtepi32_ps(lane_sums8(p)), acc);
        accm = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(half_at(blk + offsetof(block_q2_K, dmin))), dx),
                               _mm256_cvtepi32_ps(scaled_sums16(min16, s16 + i * 16)), accm);
    }
    return hsum8(_mm256_sub_ps(acc, accm));
}

/* Q3_K: q = low 2 bits + 4 * (hmask bit) - 4 (-4..3): the codes 0..7
 * against x with the signed 6-bit scales (pairs at most 2 * 7 * 127),
 * minus 4 * sum(scale * sum16(x)) */
static float dot_q3_K(const void *row, const q8_act *x, int t) {
    act_row a = act_at(x, t);
    const int16_t *s16 = x->s16 + (size_t)t * (x->C / 16);
    const __m256i one = _mm256_set1_epi8(1), three = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < x->C / QK_K; i++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)i * sizeof(block_q3_K);
        int8_t sc[16];
        q3_K_scales(blk + offsetof(block_q3_K, scales), sc);
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        __m256i lo_dup = _mm256_permute2x128_si256(sc16, sc16, 0x00), hi_dup = _mm256_permute2x128_si256(sc16, sc16, 0x11);
        __m256i hm = load32(blk + offsetof(block_q3_K, hmask));
        __m256i p[8];
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i qs = load32(blk + offsetof(block_q3_K, qs) + 32 * h);
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                int j = 4 * h + k;
                __m256i hbit = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + k), one);
                __m256i q = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qs, 2 * k), three),
                                            _mm256_slli_epi16(hbit, 2));
                p[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(q, load32(a.q + i * QK_K + 32 * j)),
                                         scale_pair(lo_dup, hi_dup, j));
            }
        }
        __m256i codes = _mm256_sub_epi32(lane_sums8(p), _mm256_slli_epi32(scaled_sums16(sc16, s16 + i * 16), 2));
        __m256 scale = _mm256_mul_ps(_mm256_set1_ps(half_at(blk + offsetof(block_q3_K, d))), _mm256_loadu_ps(a.d + i * 8));
        acc = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(codes), acc);
    }
    return hsum8(acc);
}
/* ----------------------------------- K-quant prefill: integer GEMM -- */
#if VW == 16 /* the AVX2 set converts the K-quants for sgemm (kernels_isa.c) */
/* A prompt's rows against K-quant weights as stored: each super-block of a
 * weight row is unpacked once (its codes, and per activation block the
 * int16 multipliers of its sub-block scales) and serves a tile of
 * activation rows. Per activation row the blocks' sums are scaled in
 * integers (vpmaddubsw into pairs, vpmaddwd by the scale) and add up lane
 * by lane; the offset term (Q4_K/Q5_K's mins, Q6_K's -32) is one vpmaddwd
 * of int16 pairs against x's sums of 16. A super-block then contributes
 * dx (d sum(codes) - e sum(offsets)), with d, e its two float factors:
 * the same integer sums as the format's definition, scaled once. */

enum k_kind { K_Q2, K_Q3, K_Q4, K_Q5, K_Q6 };

typedef struct {
    __m512i q[4];   /* codes meeting x's bytes 64c .. 64c + 63 (two activation blocks) */
    __m512i mul[4]; /* their scales as int16, lane by lane for vpmaddwd */
    __m256i off;    /* int16 pairs against x's 16 sums of 16 values */
    float d, e;
} k_unpacked;

/* Q2_K / Q3_K: the 2-bit codes of activation blocks 2c, 2c + 1 (bits 2k,
 * 2k + 2 of the 32 bytes of half c / 2, k = 2 (c % 2)): the bytes in both
 * halves, shifted per half */
ALWAYS_INLINE __m512i low2_pair(const uint8_t *qs, int c) {
    const int k = 2 * (c % 2);
    __m512i v = _mm512_broadcast_i64x4(load32(qs + 32 * (c / 2)));
    __m512i shift = _mm512_inserti64x4(_mm512_set1_epi16((short)(2 * k)), _mm256_set1_epi16((short)(2 * k + 2)), 1);
    return _mm512_and_si512(_mm512_srlv_epi16(v, shift), _mm512_set1_epi8(3));
}

ALWAYS_INLINE void unpack_k(const uint8_t *blk, const enum k_kind kind, k_unpacked *u) {
    if (kind == K_Q2) { /* d (sc & 15) q - dmin (sc >> 4), q 0..3, per sub-block of 16 */
        __m128i packed = _mm_loadu_si128((const __m128i *)(blk + offsetof(block_q2_K, scales)));
        __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(packed, _mm_set1_epi8(15)));
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) u->q[c] = low2_pair(blk + offsetof(block_q2_K, qs), c), u->mul[c] = q6_scale_pair(sc16, c / 2, c % 2);
        u->off = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(15))); /* the mins */
        u->d = half_at(blk + offsetof(block_q2_K, d));
        u->e = half_at(blk + offsetof(block_q2_K, dmin));
        return;
    }
    if (kind == K_Q3) { /* d sc (q - 4), q = low 2 bits + 4 (hmask bit): 0..7 */
        int8_t sc[16];
        q3_K_scales(blk + offsetof(block_q3_K, scales), sc);
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
        __m512i hm = _mm512_broadcast_i64x4(load32(blk + offsetof(block_q3_K, hmask)));
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) { /* activation blocks 2c, 2c + 1: hmask bits 2c, 2c + 1 */
            __m512i bit = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << 2 * c)), _mm256_set1_epi8((char)(1 << (2 * c + 1))), 1);
            __m512i q = low2_pair(blk + offsetof(block_q3_K, qs), c);
            u->q[c] = _mm512_mask_add_epi8(q, _mm512_test_epi8_mask(hm, bit), q, _mm512_set1_epi8(4));
            u->mul[c] = q6_scale_pair(sc16, c / 2, c % 2);
        }
        u->off = sc16; /* each code's -4 */
        u->d = half_at(blk + offsetof(block_q3_K, d));
        u->e = 4.0f * u->d;
        return;
    }
    if (kind == K_Q6) {
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(blk + offsetof(block_q6_K, scales))));
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            q6_half_512(blk, h, &u->q[2 * h], &u->q[2 * h + 1]);
            u->mul[2 * h] = q6_scale_pair(sc16, h, 0), u->mul[2 * h + 1] = q6_scale_pair(sc16, h, 1);
        }
        u->off = sc16; /* lane j: sc_2j s16_2j + sc_2j+1 s16_2j+1, each code's -32 */
        u->d = half_at(blk + offsetof(block_q6_K, d));
        u->e = 32.0f * u->d;
        return;
    }
    const int five = kind == K_Q5;
    const size_t at_scales = five ? offsetof(block_q5_K, scales) : offsetof(block_q4_K, scales);
    const size_t at_qs = five ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs);
    __m256i scm = k_scales16(blk + at_scales);
    __m512i qh = five ? _mm512_broadcast_i64x4(load32(blk + offsetof(block_q5_K, qh))) : _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) u->q[c] = k_nibble_pair(blk + at_qs, five, qh, c), u->mul[c] = k_scale_pair(scm, c);
    u->off = k_min_pairs(scm);
    u->d = half_at(blk + offsetof(block_q4_K, d));
    u->e = half_at(blk + offsetof(block_q4_K, dmin));
}

ALWAYS_INLINE size_t k_block_bytes(const enum k_kind kind) {
    return kind == K_Q2   ? sizeof(block_q2_K)
           : kind == K_Q3 ? sizeof(block_q3_K)
           : kind == K_Q4 ? sizeof(block_q4_K)
           : kind == K_Q5 ? sizeof(block_q5_K)
                          : sizeof(block_q6_K);
}

/* Activation rows per tile: each keeps a float accumulator in a register
 * beside the unpacked super-block (32 vector registers with AVX-512) */
enum { K_TILE = 8 };

/* r[n] = weight row `row` (nsb super-blocks of sb_bytes) . x's row t + n, n < NT */
ALWAYS_INLINE void tile_k(float *r, const uint8_t *row, size_t sb_bytes, const enum k_kind kind, const q8_act *x,
                          int t, const int NT, int nsb) {
    const int8_t *xq[K_TILE];
    const float *xd[K_TILE];
    const int16_t *xs16[K_TILE];
    __m256 acc[K_TILE];
#pragma GCC unroll 8
    for (int n = 0; n < NT; n++) {
        act_row a = act_at(x, t + n);
        xq[n] = a.q, xd[n] = a.d, xs16[n] = x->s16 + (size_t)(t + n) * (x->C / 16);
        acc[n] = _mm256_setzero_ps();
    }
    for (int i = 0; i < nsb; i++) {
        k_unpacked u;
        unpack_k(row + (size_t)i * sb_bytes, kind, &u);
        const __m256 d = _mm256_set1_ps(u.d), e = _mm256_set1_ps(u.e);
#pragma GCC unroll 8
        for (int n = 0; n < NT; n++) {
            __m512i s2 = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++)
                s2 = _mm512_add_epi32(
                    s2, _mm512_madd_epi16(_mm512_maddubs_epi16(u.q[c], _mm512_loadu_si512(xq[n] + i * QK_K + 64 * c)),
                                          u.mul[c]));
            __m256i s = _mm256_add_epi32(_mm512_castsi512_si256(s2), _mm512_extracti64x4_epi64(s2, 1));
            __m256i o = _mm256_madd_epi16(u.off, load32(xs16[n] + i * 16));
            __m256 v = _mm256_fmsub_ps(_mm256_cvtepi32_ps(s), d, _mm256_mul_ps(_mm256_cvtepi32_ps(o), e));
            acc[n] = _mm256_fmadd_ps(v, _mm256_set1_ps(xd[n][i * 8]), acc[n]); /* x's one scale for the 256 */
        }
    }
#pragma GCC unroll 8
    for (int n = 0; n < NT; n++) r[n] = hsum8(acc[n]);
}

/* out[t0:t1, o0:o1] (rows OC apart): each weight row (in L1) against the
 * activation rows, a tile at a time */
ALWAYS_INLINE void gemm_k(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                          int o0, int o1, const enum k_kind kind) {
    const size_t sb_bytes = k_block_bytes(kind);
    int nsb = x->C / QK_K;
    for (int o = o0; o < o1; o++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)o * nsb * sb_bytes;
        for (int t = t0; t < t1;) {
            float r[K_TILE];
            int n = t1 - t >= K_TILE ? K_TILE : t1 - t >= 4 ? 4 : 1;
            if (n == K_TILE)
                tile_k(r, row, sb_bytes, kind, x, t, K_TILE, nsb);
            else if (n == 4)
                tile_k(r, row, sb_bytes, kind, x, t, 4, nsb);
            else
                tile_k(r, row, sb_bytes, kind, x, t, 1, nsb);
            for (int i = 0; i < n; i++) out[(size_t)(t + i) * OC + o] = r[i] + (bias ? bias[o] : 0.0f);
            t += n;
        }
    }
}

GEMM_Q8_FN(CAT(gemm_q2_K_, KERNEL_ISA)) {
    gemm_k(out, x, w, bias, t0, t1, OC, o0, o1, K_Q2);
}
GEMM_Q8_FN(CAT(gemm_q3_K_, KERNEL_ISA)) {
    gemm_k(out, x, w, bias, t0, t1, OC, o0, o1, K_Q3);
}
GEMM_Q8_FN(CAT(gemm_q4_K_, KERNEL_ISA)) {
    gemm_k(out, x, w, bias, t0, t1, OC, o0, o1, K_Q4);
}
GEMM_Q8_FN(CAT(gemm_q5_K_, KERNEL_ISA)) {
    gemm_k(out, x, w, bias, t0, t1, OC, o0, o1, K_Q5);
}
GEMM_Q8_FN(CAT(gemm_q6_K_, KERNEL_ISA)) {
    gemm_k(out, x, w, bias, t0, t1, OC, o0, o1, K_Q6);
}
#endif /* VW == 16 */

/* ------------------------------------------ rows to F32 (prefill) -- */
/* Dequantizing for sgemm, as the definition does it, bit for bit: each
 * sub-block's scale d * sc and offset -(dmin * m) in float32, then value =
 * scale * q + offset as a multiply and an add (never fused). */

/* 32 codes (bytes, as signed) to floats: scale * q (+ offset) */
ALWAYS_INLINE void put32(float *y, __m256i codes, float scale, float offset, int has_offset) {
    __m256 s = _mm256_set1_ps(scale), o = _mm256_set1_ps(offset);
    __m128i lo = _mm256_castsi256_si128(codes), hi = _mm256_extracti128_si256(codes, 1);
    __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; k++) {
        __m256 v = _mm256_mul_ps(s, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[k])));
        _mm256_storeu_ps(y + 8 * k, has_offset ? _mm256_add_ps(v, o) : v);
    }
}

ALWAYS_INLINE void to_f32_k_nibbles(float *dst, const void *src, long n, const int five) {
    const size_t bytes = five ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const size_t at_scales = five ? offsetof(block_q5_K, scales) : offsetof(block_q4_K, scales);
    const size_t at_qs = five ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs);
    for (long i = 0; i < n / QK_K; i++, dst += QK_K) {
        const uint8_t *blk = (const uint8_t *)src + (size_t)i * bytes;
        float d = half_at(blk + offsetof(block_q4_K, d)), dmin = half_at(blk + offsetof(block_q4_K, dmin));
        uint64_t sc64, m64;
        k_scales8(blk + at_scales, &sc64, &m64);
        __m256i qh = five ? load32(blk + offsetof(block_q5_K, qh)) : _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i lo, hi;
            k_chunk_codes(blk + at_qs + 32 * c, five, &qh, &lo, &hi);
            int j = 2 * c;
            float s0 = (float)(sc64 >> (8 * j) & 63), s1 = (float)(sc64 >> (8 * j + 8) & 63);
            float m0 = (float)(m64 >> (8 * j) & 63), m1 = (float)(m64 >> (8 * j + 8) & 63);
            put32(dst + 64 * c, lo, d * s0, -(dmin * m0), 1);
            put32(dst + 64 * c + 32, hi, d * s1, -(dmin * m1), 1);
        }
    }
}

static void to_f32_q4_K(float *dst, const void *src, long n) { to_f32_k_nibbles(dst, src, n, 0); }
static void to_f32_q5_K(float *dst, const void *src, long n) { to_f32_k_nibbles(dst, src, n, 1); }

/* Q6_K: codes 0..63 minus 32, 16 values per scale */
static void to_f32_q6_K(float *dst, const void *src, long n) {
    const __m256i k32 = _mm256_set1_epi8(32);
    for (long i = 0; i < n / QK_K; i++, dst += QK_K) {
        const uint8_t *blk = (const uint8_t *)src + (size_t)i * sizeof(block_q6_K);
        const int8_t *sc = (const int8_t *)blk + offsetof(block_q6_K, scales);
        float d = half_at(blk + offsetof(block_q6_K, d));
        for (int h = 0; h < 2; h++) {
            __m256i q[4];
            q6_codes(blk, h, q);
            for (int j = 0; j < 4; j++) { /* 32 values: sub-blocks 8h + 2j and + 1, 16 each */
                __m256i codes = _mm256_sub_epi8(q[j], k32);
                float *y = dst + 128 * h + 32 * j;
                int k = 8 * h + 2 * j;
                __m128i lo = _mm256_castsi256_si128(codes), hi = _mm256_extracti128_si256(codes, 1);
                __m256 s0 = _mm256_set1_ps(d * (float)sc[k]), s1 = _mm256_set1_ps(d * (float)sc[k + 1]);
                _mm256_storeu_ps(y, _mm256_mul_ps(s0, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
                _mm256_storeu_ps(y + 8, _mm256_mul_ps(s0, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
                _mm256_storeu_ps(y + 16, _mm256_mul_ps(s1, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
                _mm256_storeu_ps(y + 24, _mm256_mul_ps(s1, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
            }
        }
    }
}

/* F16: the hardware's conversion (F16C), exact */
static void to_f32_f16(float *dst, const void *src, long n) {
    const uint16_t *h = src;
    long i = 0;
    for (; i + VW <= n; i += VW) v_store(dst + i, v_load_f16(h + i));
    for (; i < n; i++) dst[i] = f16_to_f32(h[i]);
}

/* BF16: the top halves of F32s, widened by a shift, exact */
static void to_f32_bf16(float *dst, const void *src, long n) {
    const uint16_t *h = src;
    long i = 0;
    for (; i + VW <= n; i += VW) v_store(dst + i, v_load_bf16(h + i));
    for (; i < n; i++) {
        uint16_t v;
        memcpy(&v, h + i, 2);
        dst[i] = bf16_value(v);
    }
}

/* kernel_ops.to_f32 of this set: rows of a format as F32, exactly as the
 * definition (dequantize_blocks, or the format's to_f32); NULL where the
 * definition runs */
const to_f32_fn CAT(TO_F32_, KERNEL_ISA)[KERNEL_TYPES] = {
    [GGML_TYPE_F16] = to_f32_f16, [GGML_TYPE_BF16] = to_f32_bf16,
    [GGML_TYPE_Q4_K] = to_f32_q4_K, [GGML_TYPE_Q5_K] = to_f32_q5_K, [GGML_TYPE_Q6_K] = to_f32_q6_K,
};

/* kernel_ops.dot_q8 of this set: NULL where the definition runs */
const dot_q8_fn CAT(DOT_Q8_, KERNEL_ISA)[KERNEL_TYPES] = {
    [GGML_TYPE_Q8_0] = dot_q8_0, [GGML_TYPE_Q4_0] = dot_q4_0, [GGML_TYPE_Q4_1] = dot_q4_1,
    [GGML_TYPE_Q5_0] = dot_q5_0, [GGML_TYPE_Q5_1] = dot_q5_1, [GGML_TYPE_IQ4_NL] = dot_iq4_nl,
    [GGML_TYPE_Q2_K] = dot_q2_K, [GGML_TYPE_Q3_K] = dot_q3_K, [GGML_TYPE_Q4_K] = dot_q4_K,
    [GGML_TYPE_Q5_K] = dot_q5_K, [GGML_TYPE_Q6_K] = dot_q6_K,
};
