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

#if VW
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

/* Q4_K / Q5_K: sub-block i's 6-bit scale and min (quants.c, k_scale_min) */
ALWAYS_INLINE void k_scales8(const uint8_t *s, uint8_t *sc, uint8_t *m) {
    for (int i = 0; i < 4; i++) {
        sc[i] = s[i] & 63;
        m[i] = s[i + 4] & 63;
        sc[i + 4] = (uint8_t)((s[i + 8] & 15) | (s[i] >> 6) << 4);
        m[i + 4] = (uint8_t)((s[i + 8] >> 4) | (s[i + 4] >> 6) << 4);
    }
}

/* Q4_K, Q5_K: 8 sub-blocks of 32, each one activation block: chunk c's
 * bytes hold sub-block 2c (low nibbles) and 2c + 1 (high); Q5_K adds bit
 * 2c / 2c + 1 of qh[l] as 16. Codes 0..31 (pairs at most 2 * 31 * 127). */
ALWAYS_INLINE float dot_k_nibbles(const void *row, const q8_act *x, int t, const int five) {
    act_row a = act_at(x, t);
    const size_t bytes = five ? sizeof(block_q5_K) : sizeof(block_q4_K);
    const size_t at_scales = five ? offsetof(block_q5_K, scales) : offsetof(block_q4_K, scales);
    const size_t at_qs = five ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs);
    static_assert(offsetof(block_q5_K, d) == offsetof(block_q4_K, d) &&
                      offsetof(block_q5_K, dmin) == offsetof(block_q4_K, dmin), "Q4_K and Q5_K scales alike");
    const __m256i low4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.0f;
    for (int i = 0; i < x->C / QK_K; i++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)i * bytes;
        float d = half_at(blk + offsetof(block_q4_K, d)), dmin = half_at(blk + offsetof(block_q4_K, dmin));
        uint8_t sc[8], m[8];
        k_scales8(blk + at_scales, sc, m);
        const int8_t *xq = a.q + i * QK_K;
        const float *xd = a.d + i * 8;
        const int32_t *xs = a.s + i * 8;
        __m256i qh = five ? load32(blk + offsetof(block_q5_K, qh)) : _mm256_setzero_si256();
        float msum = 0.0f;
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m256i v = load32(blk + at_qs + 32 * c);
            __m256i lo = _mm256_and_si256(v, low4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
            if (five) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
                qh = _mm256_srli_epi16(qh, 2);
            }
            __m256i p0 = dot_u8_i8(lo, load32(xq + 64 * c)), p1 = dot_u8_i8(hi, load32(xq + 64 * c + 32));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[2 * c] * xd[2 * c]), _mm256_cvtepi32_ps(p0), acc);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * (float)sc[2 * c + 1] * xd[2 * c + 1]), _mm256_cvtepi32_ps(p1),
                                  acc);
            msum += (float)m[2 * c] * xd[2 * c] * (float)xs[2 * c] +
                    (float)m[2 * c + 1] * xd[2 * c + 1] * (float)xs[2 * c + 1];
        }
        mins += dmin * msum;
    }
    return hsum8(acc) - mins;
}

static float dot_q4_K(const void *row, const q8_act *x, int t) { return dot_k_nibbles(row, x, t, 0); }
static float dot_q5_K(const void *row, const q8_act *x, int t) { return dot_k_nibbles(row, x, t, 1); }

/* Sub-blocks of 16 (Q2_K, Q3_K, Q6_K): an activation block's 32 bytes are
 * two sub-blocks, bytes 0..15 in the low 128-bit half and 16..31 in the
 * high one, so vpmaddwd with [scale A x 8 | scale B x 8] applies both. */
ALWAYS_INLINE __m256i two_scales(int a, int b) {
    return _mm256_set_m128i(_mm_set1_epi16((short)b), _mm_set1_epi16((short)a));
}

/* Q6_K: codes q - 32 with q 0..63: sum (q - 32) x as two vpmaddubsw (q and
 * 32 against x) subtracted (pairs within 2 * 32 * 128), then the signed
 * 8-bit scales. */
static float dot_q6_K(const void *row, const q8_act *x, int t) {
    act_row a = act_at(x, t);
    const __m256i low4 = _mm256_set1_epi8(15), low2 = _mm256_set1_epi8(3), k32 = _mm256_set1_epi8(32);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < x->C / QK_K; i++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)i * sizeof(block_q6_K);
        const int8_t *sc = (const int8_t *)blk + offsetof(block_q6_K, scales);
        float d = half_at(blk + offsetof(block_q6_K, d));
        for (int h = 0; h < 2; h++) {
            __m256i l0 = load32(blk + offsetof(block_q6_K, ql) + 64 * h);
            __m256i l1 = load32(blk + offsetof(block_q6_K, ql) + 64 * h + 32);
            __m256i qh = load32(blk + offsetof(block_q6_K, qh) + 32 * h);
            __m256i q[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_slli_epi16(_mm256_and_si256(qh, low2), 4)),
                _mm256_or_si256(_mm256_and_si256(l1, low4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), low2), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), low2), 4)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), low2), 4)),
            };
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) { /* activation block 4h + j: sub-blocks 8h + 2j, + 1 */
                int blk32 = 4 * h + j;
                __m256i xv = load32(a.q + i * QK_K + 32 * blk32);
                __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q[j], xv), _mm256_maddubs_epi16(k32, xv));
                __m256i p = _mm256_madd_epi16(p16, two_scales(sc[2 * blk32], sc[2 * blk32 + 1]));
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d[i * 8 + blk32]), _mm256_cvtepi32_ps(p), acc);
            }
        }
    }
    return hsum8(acc);
}

/* Q2_K / Q3_K low bits of activation block 4h + p: bits 2p, 2p + 1 of the
 * 32 bytes qs[32h ..] */
ALWAYS_INLINE __m256i two_bits(__m256i qs, int p) {
    return _mm256_and_si256(_mm256_srl_epi16(qs, _mm_cvtsi32_si128(2 * p)), _mm256_set1_epi8(3));
}

/* Q2_K: value d (sc & 15) q - dmin (sc >> 4), q 0..3: the codes' sum with
 * the scales, and x's sums of 16 with the mins (pairs at most 2 * 128 * 3) */
static float dot_q2_K(const void *row, const q8_act *x, int t) {
    act_row a = act_at(x, t);
    const __m256i ones = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps(), accm = acc;
    for (int i = 0; i < x->C / QK_K; i++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)i * sizeof(block_q2_K);
        const uint8_t *sc = blk + offsetof(block_q2_K, scales);
        float d = half_at(blk + offsetof(block_q2_K, d)), dmin = half_at(blk + offsetof(block_q2_K, dmin));
        for (int h = 0; h < 2; h++) {
            __m256i qs = load32(blk + offsetof(block_q2_K, qs) + 32 * h);
            for (int p = 0; p < 4; p++) {
                int j = 4 * h + p;
                __m256i xv = load32(a.q + i * QK_K + 32 * j);
                __m256i codes = _mm256_madd_epi16(_mm256_maddubs_epi16(two_bits(qs, p), xv),
                                                  two_scales(sc[2 * j] & 15, sc[2 * j + 1] & 15));
                __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(ones, xv),
                                                 two_scales(sc[2 * j] >> 4, sc[2 * j + 1] >> 4));
                float dx = a.d[i * 8 + j];
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), _mm256_cvtepi32_ps(codes), acc);
                accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin * dx), _mm256_cvtepi32_ps(sums), accm);
            }
        }
    }
    return hsum8(acc) - hsum8(accm);
}

/* Q3_K: q = low 2 bits + 4 * (hmask bit) - 4 (-4..3): the codes 0..7
 * against x, minus 4 against x (pairs within 2 * 7 * 128), then the
 * signed 6-bit scales (quants.c, decode_q3_K) */
static float dot_q3_K(const void *row, const q8_act *x, int t) {
    act_row a = act_at(x, t);
    const __m256i one = _mm256_set1_epi8(1), k4 = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < x->C / QK_K; i++) {
        const uint8_t *blk = (const uint8_t *)row + (size_t)i * sizeof(block_q3_K);
        int8_t sc[16];
        q3_K_scales(blk + offsetof(block_q3_K, scales), sc);
        float d = half_at(blk + offsetof(block_q3_K, d));
        __m256i hm = load32(blk + offsetof(block_q3_K, hmask));
        for (int h = 0; h < 2; h++) {
            __m256i qs = load32(blk + offsetof(block_q3_K, qs) + 32 * h);
            for (int p = 0; p < 4; p++) {
                int j = 4 * h + p;
                __m256i hbit = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(4 * h + p)), one);
                __m256i q = _mm256_or_si256(two_bits(qs, p), _mm256_slli_epi16(hbit, 2));
                __m256i xv = load32(a.q + i * QK_K + 32 * j);
                __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(q, xv), _mm256_maddubs_epi16(k4, xv));
                __m256i s32 = _mm256_madd_epi16(p16, two_scales(sc[2 * j], sc[2 * j + 1]));
                acc = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d[i * 8 + j]), _mm256_cvtepi32_ps(s32), acc);
            }
        }
    }
    return hsum8(acc);
}
#endif /* VW */

/* kernel_ops.dot_q8 of this set: NULL where the definition runs */
const dot_q8_fn CAT(DOT_Q8_, KERNEL_ISA)[KERNEL_TYPES] = {
#if VW
    [GGML_TYPE_Q8_0] = dot_q8_0, [GGML_TYPE_Q4_0] = dot_q4_0, [GGML_TYPE_Q4_1] = dot_q4_1,
    [GGML_TYPE_Q5_0] = dot_q5_0, [GGML_TYPE_Q5_1] = dot_q5_1, [GGML_TYPE_IQ4_NL] = dot_iq4_nl,
    [GGML_TYPE_Q2_K] = dot_q2_K, [GGML_TYPE_Q3_K] = dot_q3_K, [GGML_TYPE_Q4_K] = dot_q4_K,
    [GGML_TYPE_Q5_K] = dot_q5_K, [GGML_TYPE_Q6_K] = dot_q6_K,
#endif
};
