/* The hot kernels in vector code, compiled once per vector instruction set:
 * the Makefile builds this file three times (KERNEL_ISA = avx2, avx512,
 * avx512vnni: AVX-512 plus the VNNI int8 dot products of the quantized
 * kernels) with that set's -march, and kernels.c picks one table at run time
 * from the CPU's features. Each function computes what its namesake in
 * kernels_generic.c (the plain C definitions, the scalar set) computes; the
 * unit tests hold them to it. Most code is written against the v_* macros of
 * isa.h (AVX2: 8 floats, AVX-512: 16); a loop's scalar tail handles the last
 * values of a row.
 *
 * Summation order differs between the sets (vector lanes, accumulators), so
 * their results differ by float rounding of sums, never by more: the tests
 * bound that difference (tests/README.md). */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "kernels.h"

#include "isa.h"

/* ------------------------------------------ weight-streaming products -- */
/* Decode (one row) and short prompts (a few rows) are bound by reading the
 * weights: these kernels read each weight once, as one forward stream (the
 * rows are adjacent; the hardware prefetcher follows that best), for F32,
 * F16 or BF16 storage alike (a 16-bit weight is converted as it is loaded). With few
 * rows, sgemm would copy (pack) every weight first and read it again. */

/* One row: four accumulators per weight row (the decode path). */
ALWAYS_INLINE void stream_one(float *out, const float *x, const void *w, enum weight_kind kind, const float *bias, int C, int o0,
                              int o1) {
#if VW == 16
    /* With AVX-512, the decode stream runs 256-bit loads and multiply-adds:
     * they stream faster from memory than 512-bit ones (measured on Zen 4,
     * which splits 512-bit operations in two; F16 decode at 110M, 1 thread:
     * 1.45x), so the rows take the AVX2-width loop. */
    for (int o = o0; o < o1; o++) {
        size_t r = (size_t)o * C;
        int c = 0;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (; c + 32 <= C; c += 32) {
            a0 = _mm256_fmadd_ps(load8_w(w, r + c, kind), _mm256_loadu_ps(x + c), a0);
            a1 = _mm256_fmadd_ps(load8_w(w, r + c + 8, kind), _mm256_loadu_ps(x + c + 8), a1);
            a2 = _mm256_fmadd_ps(load8_w(w, r + c + 16, kind), _mm256_loadu_ps(x + c + 16), a2);
            a3 = _mm256_fmadd_ps(load8_w(w, r + c + 24, kind), _mm256_loadu_ps(x + c + 24), a3);
        }
        for (; c + 8 <= C; c += 8) a0 = _mm256_fmadd_ps(load8_w(w, r + c, kind), _mm256_loadu_ps(x + c), a0);
        float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; c < C; c++) s += load1_w(w, r + c, kind) * x[c];
        out[o] = s + (bias ? bias[o] : 0.0f);
    }
#else
    for (int o = o0; o < o1; o++) {
        size_t r = (size_t)o * C;
        int c = 0;
        float s = 0.0f;
        vec a0 = v_zero(), a1 = a0, a2 = a0, a3 = a0;
        for (; c + 4 * VW <= C; c += 4 * VW) {
            a0 = v_fmadd(load_w(w, r + c, kind), v_load(x + c), a0);
            a1 = v_fmadd(load_w(w, r + c + VW, kind), v_load(x + c + VW), a1);
            a2 = v_fmadd(load_w(w, r + c + 2 * VW, kind), v_load(x + c + 2 * VW), a2);
            a3 = v_fmadd(load_w(w, r + c + 3 * VW, kind), v_load(x + c + 3 * VW), a3);
        }
        for (; c + VW <= C; c += VW) a0 = v_fmadd(load_w(w, r + c, kind), v_load(x + c), a0);
        s = v_hsum(v_add(v_add(a0, a1), v_add(a2, a3)));
        for (; c < C; c++) s += load1_w(w, r + c, kind) * x[c];
        out[o] = s + (bias ? bias[o] : 0.0f);
    }
#endif
}

/* R rows (a compile-time 2..4) against each weight row while it is in L1:
 * two accumulators per row. out rows are OC apart, x rows x_stride. */
ALWAYS_INLINE void stream_rows(float *out, int OC, const float *x, int x_stride, const int R, const void *w, enum weight_kind kind,
                               const float *bias, int C, int o0, int o1) {
    for (int o = o0; o < o1; o++) {
        size_t r = (size_t)o * C;
        float s[4] = {0};
        int c = 0;
        vec acc[4][2];
        for (int t = 0; t < R; t++) acc[t][0] = acc[t][1] = v_zero();
        for (; c + 2 * VW <= C; c += 2 * VW) {
            vec w0 = load_w(w, r + c, kind), w1 = load_w(w, r + c + VW, kind);
            for (int t = 0; t < R; t++) {
                const float *xt = x + (size_t)t * x_stride + c;
                acc[t][0] = v_fmadd(w0, v_load(xt), acc[t][0]);
                acc[t][1] = v_fmadd(w1, v_load(xt + VW), acc[t][1]);
            }
        }
        for (; c + VW <= C; c += VW) {
            vec w0 = load_w(w, r + c, kind);
            for (int t = 0; t < R; t++) acc[t][0] = v_fmadd(w0, v_load(x + (size_t)t * x_stride + c), acc[t][0]);
        }
        for (int t = 0; t < R; t++) s[t] = v_hsum(v_add(acc[t][0], acc[t][1]));
        for (int t = 0; t < R; t++) {
            const float *xt = x + (size_t)t * x_stride;
            for (int cc = c; cc < C; cc++) s[t] += load1_w(w, r + cc, kind) * xt[cc];
            out[(size_t)t * OC + o] = s[t] + (bias ? bias[o] : 0.0f);
        }
    }
}

/* out[:, o0:o1] (T, OC) for T <= STREAM_MAX_ROWS, four rows per pass. */
ALWAYS_INLINE void stream_product(float *out, const float *in, int in_stride, const void *w, enum weight_kind kind,
                                  const float *bias, int T, int C, int OC, int o0, int o1) {
    for (int t = 0; t < T; t += 4) {
        float *ot = out + (size_t)t * OC;
        const float *xt = in + (size_t)t * in_stride;
        switch (T - t < 4 ? T - t : 4) {
        case 1: stream_one(ot, xt, w, kind, bias, C, o0, o1); break;
        case 2: stream_rows(ot, OC, xt, in_stride, 2, w, kind, bias, C, o0, o1); break;
        case 3: stream_rows(ot, OC, xt, in_stride, 3, w, kind, bias, C, o0, o1); break;
        default: stream_rows(ot, OC, xt, in_stride, 4, w, kind, bias, C, o0, o1); break;
        }
    }
}

static void stream_f32(float *out, const float *in, int in_stride, const void *w, const float *bias, int T, int C,
                       int OC, int o0, int o1) {
    stream_product(out, in, in_stride, w, W_F32, bias, T, C, OC, o0, o1);
}

static void stream_f16(float *out, const float *in, int in_stride, const void *w, const float *bias, int T, int C,
                       int OC, int o0, int o1) {
    stream_product(out, in, in_stride, w, W_F16, bias, T, C, OC, o0, o1);
}

static void stream_bf16(float *out, const float *in, int in_stride, const void *w, const float *bias, int T, int C,
                        int OC, int o0, int o1) {
    stream_product(out, in, in_stride, w, W_BF16, bias, T, C, OC, o0, o1);
}

/* ------------------------------------------------ quantized weights -- */
/* Q8_0 and Q4_0 (GGUF): blocks of 32 weights, each an F16 scale d then the
 * values: Q8_0 32 int8 (w = d q), Q4_0 16 bytes holding value j in the low
 * nibble of byte j and value j + 16 in the high one (w = d (nibble - 8)).
 * Decode is bound by reading these bytes, so the activation row is quantized
 * once per product into the same blocks (8-bit, scale max|x| / 127 kept as a
 * float) and each block's dot product is an exact integer sum, scaled once by
 * d_w * d_x. The activation rounding is the only error beyond float sums:
 * at most d_x / 2 per element (tests/README.md derives the tolerance). */
enum { QK = 32, Q8_0_BYTES = 34, Q4_0_BYTES = 18 };

/* max |xb[i]| over 32 floats, NaN when the block holds one (then so is d,
 * and the products: a NaN activation never vanishes into a finite integer) */
ALWAYS_INLINE float block_amax(const float *xb) {
#if VW == 16
    __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
    __m512 m = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1));
    __mmask16 nan = _mm512_cmp_ps_mask(v0, v1, _CMP_UNORD_Q);
    return nan ? NAN : _mm512_reduce_max_ps(m);
#else
    __m256 v[4], m = _mm256_setzero_ps(), nan = m;
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_loadu_ps(xb + 8 * i);
        m = _mm256_max_ps(_mm256_and_ps(v[i], abs_mask), m);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[i], v[i], _CMP_UNORD_Q));
    }
    float amax = _mm256_movemask_ps(nan) ? NAN : v_hmax(m);
    return amax;
#endif
}

/* Block b of row t of x quantized from xb (32 floats) with the scale of
 * its group, amax / 127 (amax: the group's maximum, block_amax). The values
 * saturate to -128..127 (reached only by NaN or infinity, whose products
 * are not finite anyway), as the vector conversions do. */
ALWAYS_INLINE void quantize_block(const q8_act *x, int t, int b, const float *xb, float amax) {
    int nb = x->C / QK;
    int8_t *q = x->q + (size_t)t * x->C + b * QK;
#if VW == 16
    __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
#else
    __m256 v[4];
    for (int i = 0; i < 4; i++) v[i] = _mm256_loadu_ps(xb + 8 * i);
#endif
    float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    int32_t sum = 0;
#if VW == 16
    __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(inv)));
    __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(inv)));
    _mm_storeu_si128((__m128i *)q, _mm512_cvtsepi32_epi8(i0));
    _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtsepi32_epi8(i1));
    /* the sum of the saturated values */
    sum = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q)),
                                                   _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + 16)))));
#else
    __m256i i[4];
    for (int k = 0; k < 4; k++) i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], _mm256_set1_ps(inv)));
    /* saturating packs interleave the 128-bit halves: the permute restores value order */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)q, p);
    __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), p); /* pairs of values, then pairs of pairs */
    __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    sum = _mm_cvtsi128_si32(h);
#endif
    x->d[(size_t)t * nb + b] = amax / 127.0f;
    x->s[(size_t)t * nb + b] = sum;
}

/* rows [t0, t1) of in (in_stride apart) -> rows [t0, t1) of x. Every set
 * computes the same bytes: the maximum is exact, and x * (127 / amax) is one
 * float multiply rounded to even in each. */
static void quantize_q8_act(const q8_act *x, const float *in, int in_stride, int t0, int t1) {
    int per = x->group / QK; /* blocks of 32 sharing one scale */
    for (int t = t0; t < t1; t++)
        for (int b = 0; b < x->C / QK; b += per) {
            const float *xb = in + (size_t)t * in_stride + b * QK;
            float amax = block_amax(xb);
            for (int j = 1; j < per; j++) {
                float a = block_amax(xb + j * QK);
                amax = isnan(a) || isnan(amax) ? NAN : a > amax ? a : amax;
            }
            for (int j = 0; j < per; j++) quantize_block(x, t, b + j, xb + j * QK, amax);
        }
}

/* The 8-row layouts (kernels.h: WEIGHT_Q8_0_X8, WEIGHT_Q4_0_X8). Vector m
 * of a group's block holds 4 bytes of each of the 8 rows (row r at 4r):
 * Q8_0 values 4m..4m+3, Q4_0 the nibbles of values 4m.. (low) and 16 + 4m..
 * (high). x's matching 4 values, broadcast to all 8 lanes, meet each row's
 * values in that row's lane, so the 8 rows' block sums need no horizontal
 * adds. A tile of NT activation rows shares each weight vector's load and
 * unpacking and keeps one chain of integer sums per row; a tile of one row
 * (decode) splits its sums over two chains to hide the dot's latency.
 *
 * The integer products, per int32 lane (4 byte products each):
 * - VNNI, vpdpbusd takes unsigned x signed bytes straight into int32: Q8_0's
 *   w + 128 (w xor 0x80) is the unsigned side, so each block's sum starts
 *   at -128 sum(x); Q4_0's nibbles n are unsigned as they are (-8 sum(x)).
 * - Otherwise vpmaddubsw into int16 pairs, then vpmaddwd: Q8_0 moves w's sign
 *   onto x (|w| unsigned; a pair is at most 2 * 128 * 127, no saturation);
 *   Q4_0 adds its int16 pairs over the block (at most 8 * 2 * 15 * 127 =
 *   30480) before one vpmaddwd and the -8 sum(x). */

/* Activation rows per tile: a row keeps an int32 and a float accumulator in
 * registers (16 vector registers without AVX-512, 32 with). */
#if VW == 16
enum { TILE_MAX = 8 };
#else
enum { TILE_MAX = 4 };
#endif

/* vector m of a group's block: 4 value bytes of each of the 8 rows (qs[m]
 * of block_q4_0_x8 / block_q8_0_x8, formats.h); the 8 rows' F16 scales (d) */
ALWAYS_INLINE __m256i x8_values(const uint8_t *g, int q8, int m) {
    return _mm256_loadu_si256(q8 ? (const __m256i *)((const block_q8_0_x8 *)g)->qs[m]
                                 : (const __m256i *)((const block_q4_0_x8 *)g)->qs[m]);
}
ALWAYS_INLINE __m256 x8_scales(const uint8_t *g) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const block_q4_0_x8 *)g)->d));
}

ALWAYS_INLINE __m256i broadcast4(const int8_t *x) {
    int32_t v;
    memcpy(&v, x, 4);
    return _mm256_set1_epi32(v);
}

/* Decode over the 8-row layouts asks for the block `distance` blocks ahead
 * of the one it starts (g: block b of a group; `ahead`: blocks of the
 * product from the group's start on). With the hardware prefetcher alone a
 * thread streamed from memory at about 80% (K layouts) and 84-88% (Q4_0) of
 * the rate it reads the same bytes; asking 3-5 KiB ahead, 88-97% (1.1B, one
 * thread; half and twice those distances measured no better). */
enum {
    K_X8_PREFETCH = 4,     /* super-blocks: 4.6-6.6 KiB */
    Q4_0_X8_PREFETCH = 32, /* 4.5 KiB */
    Q8_0_X8_PREFETCH = 12  /* 3.2 KiB */
};
ALWAYS_INLINE void prefetch_ahead(const void *g, size_t bytes, int distance, int b, long ahead) {
    if (b + distance >= ahead) return;
    const char *p = (const char *)g + distance * bytes;
    for (size_t l = 0; l < bytes; l += 64) _mm_prefetch(p + l, _MM_HINT_T0);
}

#if VW == 16 && defined(__AVX512VNNI__)
/* Decode (one activation row) in 512-bit vectors: vectors m and m + 1 of a
 * block side by side, each half meeting its own 4 bytes of x (placed by
 * vpermd from x's block, once loaded), so a block takes half the
 * instructions of the 256-bit tile; the halves' sums of the 8 rows add up
 * once, at the end. In the caches this reads 1.6x the bytes per second, which
 * leaves room to keep more of the stream in flight. Q4_0's high nibbles stay
 * in place (16n: one and, not a shift and an and) in their own chain,
 * shifted back once per block. */
ALWAYS_INLINE void row_x8_512(float *r, const uint8_t *g, int q8, const q8_act *x, int t, int nb, long ahead) {
    const int8_t *xq = x->q + (size_t)t * x->C;
    const float *xd = x->d + (size_t)t * nb;
    const int32_t *xs = x->s + (size_t)t * nb;
    const size_t group_bytes = q8 ? Q8_0_X8_GROUP_BYTES : Q4_0_X8_GROUP_BYTES;
    const __m512i pair = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0); /* x's dword m, m + 1 */
    const __m512i nibble = _mm512_set1_epi8(15);
    __m512 acc = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++, g += group_bytes) {
        prefetch_ahead(g, group_bytes, q8 ? Q8_0_X8_PREFETCH : Q4_0_X8_PREFETCH, b, ahead);
        __m512i xb = _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(xq + b * QK)));
        /* the block's -128 or -8 sum(x) once, in the low half */
        __m512i p0 = _mm512_maskz_set1_epi32(0x00ff, (q8 ? -128 : -8) * xs[b]), p1 = _mm512_setzero_si512(), sum;
        if (q8) {
            const block_q8_0_x8 *blk = (const block_q8_0_x8 *)g;
#pragma GCC unroll 4
            for (int m = 0; m < 8; m += 2) {
                __m512i u = _mm512_xor_si512(_mm512_loadu_si512(blk->qs[m]), _mm512_set1_epi8((char)0x80));
                __m512i bx = _mm512_permutexvar_epi32(_mm512_add_epi32(pair, _mm512_set1_epi32(m)), xb);
                if (m % 4 == 0)
                    p0 = _mm512_dpbusd_epi32(p0, u, bx);
                else
                    p1 = _mm512_dpbusd_epi32(p1, u, bx);
            }
            sum = _mm512_add_epi32(p0, p1);
        } else {
            const block_q4_0_x8 *blk = (const block_q4_0_x8 *)g;
#pragma GCC unroll 2
            for (int m = 0; m < 4; m += 2) {
                __m512i v = _mm512_loadu_si512(blk->qs[m]);
                __m512i bx_lo = _mm512_permutexvar_epi32(_mm512_add_epi32(pair, _mm512_set1_epi32(m)), xb);
                __m512i bx_hi = _mm512_permutexvar_epi32(_mm512_add_epi32(pair, _mm512_set1_epi32(4 + m)), xb);
                p0 = _mm512_dpbusd_epi32(p0, _mm512_and_si512(v, nibble), bx_lo);
                p1 = _mm512_dpbusd_epi32(p1, _mm512_andnot_si512(nibble, v), bx_hi);
            }
            sum = _mm512_add_epi32(p0, _mm512_srai_epi32(p1, 4));
        }
        __m512 dw = _mm512_cvtph_ps(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)g)));
        acc = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(xd[b])), _mm512_cvtepi32_ps(sum), acc);
    }
    _mm256_storeu_ps(r, _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1)));
}
#endif

/* r (NT, 8) = the 8 rows of group g (nb blocks) dotted with the activation
 * rows t..t + NT - 1 of x. */
ALWAYS_INLINE void tile_x8(float *r, const uint8_t *g, int q8, const q8_act *x, int t, const int NT, int nb,
                           long ahead) {
    enum { CH_MAX = 2 };
    const int CH = NT == 1 ? 2 : 1; /* chains per row */
    const int8_t *xq[TILE_MAX];
    const float *xd[TILE_MAX];
    const int32_t *xs[TILE_MAX];
    __m256 acc[TILE_MAX];
#pragma GCC unroll 8
    for (int i = 0; i < NT; i++) {
        xq[i] = x->q + (size_t)(t + i) * x->C, xd[i] = x->d + (size_t)(t + i) * nb, xs[i] = x->s + (size_t)(t + i) * nb;
        acc[i] = _mm256_setzero_ps();
    }
    const size_t group_bytes = q8 ? Q8_0_X8_GROUP_BYTES : Q4_0_X8_GROUP_BYTES;
    const __m256i nibble = _mm256_set1_epi8(15);
    for (int b = 0; b < nb; b++, g += group_bytes) {
        __m256i p[CH_MAX][TILE_MAX];
        if (NT == 1) prefetch_ahead(g, group_bytes, q8 ? Q8_0_X8_PREFETCH : Q4_0_X8_PREFETCH, b, ahead);
#pragma GCC unroll 8
        for (int i = 0; i < NT; i++) {
#ifdef __AVX512VNNI__
            p[0][i] = _mm256_set1_epi32((q8 ? -128 : -8) * xs[i][b]);
#else
            p[0][i] = _mm256_setzero_si256();
#endif
            if (CH == 2) p[1][i] = _mm256_setzero_si256();
        }
        if (q8) {
#pragma GCC unroll 8
            for (int m = 0; m < 8; m++) {
                __m256i v = x8_values(g, q8, m);
#ifdef __AVX512VNNI__
                __m256i u = _mm256_xor_si256(v, _mm256_set1_epi8((char)0x80));
#else
                __m256i u = _mm256_sign_epi8(v, v);
#endif
#pragma GCC unroll 8
                for (int i = 0; i < NT; i++) {
                    __m256i bx = broadcast4(xq[i] + b * QK + 4 * m);
#ifdef __AVX512VNNI__
                    p[m % CH][i] = _mm256_dpbusd_epi32(p[m % CH][i], u, bx);
#else
                    p[m % CH][i] = _mm256_add_epi32(
                        p[m % CH][i],
                        _mm256_madd_epi16(_mm256_maddubs_epi16(u, _mm256_sign_epi8(bx, v)), _mm256_set1_epi16(1)));
#endif
                }
            }
        } else {
#pragma GCC unroll 4
            for (int m = 0; m < 4; m++) {
                __m256i v = x8_values(g, q8, m);
                __m256i lo = _mm256_and_si256(v, nibble), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
#pragma GCC unroll 8
                for (int i = 0; i < NT; i++) {
                    __m256i bx_lo = broadcast4(xq[i] + b * QK + 4 * m), bx_hi = broadcast4(xq[i] + b * QK + 16 + 4 * m);
#ifdef __AVX512VNNI__
                    p[0][i] = _mm256_dpbusd_epi32(p[0][i], lo, bx_lo);
                    p[CH - 1][i] = _mm256_dpbusd_epi32(p[CH - 1][i], hi, bx_hi);
#else
                    p[0][i] = _mm256_add_epi16(p[0][i], _mm256_maddubs_epi16(lo, bx_lo));
                    p[CH - 1][i] = _mm256_add_epi16(p[CH - 1][i], _mm256_maddubs_epi16(hi, bx_hi));
#endif
                }
            }
        }
        __m256 dw = x8_scales(g);
#pragma GCC unroll 8
        for (int i = 0; i < NT; i++) {
            __m256i sum;
#ifdef __AVX512VNNI__
            sum = CH == 2 ? _mm256_add_epi32(p[0][i], p[1][i]) : p[0][i];
#else
            if (q8) {
                sum = CH == 2 ? _mm256_add_epi32(p[0][i], p[1][i]) : p[0][i];
            } else {
                __m256i p16 = CH == 2 ? _mm256_add_epi16(p[0][i], p[1][i]) : p[0][i];
                sum = _mm256_sub_epi32(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)), _mm256_set1_epi32(8 * xs[i][b]));
            }
#endif
            acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(xd[i][b])), _mm256_cvtepi32_ps(sum), acc[i]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < NT; i++) _mm256_storeu_ps(r + 8 * i, acc[i]);
}

/* out[t0:t1, o0:o1] (rows OC apart): tiles of activation rows against
 * each group of 8 weight rows in turn (the group stays in L1). */
ALWAYS_INLINE void gemm_x8(float *out, const q8_act *x, const void *w, int q8, const float *bias, int t0, int t1,
                           int OC, int o0, int o1) {
    int nb = x->C / QK;
    size_t group_bytes = (size_t)nb * (q8 ? Q8_0_X8_GROUP_BYTES : Q4_0_X8_GROUP_BYTES);
    for (int o = o0; o < o1; o += X8_ROWS) {
        const uint8_t *g = (const uint8_t *)w + (size_t)(o / X8_ROWS) * group_bytes;
        int cols = o1 - o < X8_ROWS ? o1 - o : X8_ROWS;
        for (int t = t0; t < t1;) {
            float r[TILE_MAX * X8_ROWS];
            int n = t1 - t >= TILE_MAX ? TILE_MAX : t1 - t >= 4 ? 4 : 1;
            long ahead = (long)((o1 - o + X8_ROWS - 1) / X8_ROWS) * nb;
            if (n == TILE_MAX)
                tile_x8(r, g, q8, x, t, TILE_MAX, nb, ahead);
            else if (n == 4)
                tile_x8(r, g, q8, x, t, 4, nb, ahead);
            else
#if VW == 16 && defined(__AVX512VNNI__)
                row_x8_512(r, g, q8, x, t, nb, ahead);
#else
                tile_x8(r, g, q8, x, t, 1, nb, ahead);
#endif
            for (int i = 0; i < n; i++)
                for (int k = 0; k < cols; k++)
                    out[(size_t)(t + i) * OC + o + k] = r[X8_ROWS * i + k] + (bias ? bias[o + k] : 0.0f);
            t += n;
        }
    }
}

static void gemm_q4_0_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                         int o0, int o1) {
    gemm_x8(out, x, w, 0, bias, t0, t1, OC, o0, o1);
}

static void gemm_q8_0_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                         int o0, int o1) {
    gemm_x8(out, x, w, 1, bias, t0, t1, OC, o0, o1);
}

/* WEIGHT_Q4_K_X8 (formats.h): per super-block and chunk c, the 8 rows'
 * integer sums over sub-blocks 2c (low nibbles) and 2c + 1 (high) against
 * x's codes, formed as tile_x8 forms a Q4_0 block's, then times each row's
 * 6-bit sub-block scale in integers (vpmulld); the mins meet x's block sums
 * as vpmaddwd pairs; one float scaling per super-block (x's 256 values
 * share one scale: q8_act.group). The int16 sums without VNNI stay below
 * 8 x 2 x 15 x 128 = 30720. */
#if VW == 16
enum { K_X8_TILE = 4 };
#else
enum { K_X8_TILE = 2 };
#endif

/* low4 with bits of top moved into place (shift: left, or right when
 * negative) and kept by mask: the codes' upper bits (Q5_K, Q6_K) */
ALWAYS_INLINE __m256i with_top_bits(__m256i low4, __m256i top, int shift, char mask) {
    __m256i t = shift >= 0 ? _mm256_slli_epi16(top, shift) : _mm256_srli_epi16(top, -shift);
    return _mm256_or_si256(low4, _mm256_and_si256(t, _mm256_set1_epi8(mask)));
}

ALWAYS_INLINE void tile_k_x8(float *r, const uint8_t *at, const int five, const q8_act *x, int t, const int NT, int nb,
                             long ahead) {
    const size_t group_bytes = five ? sizeof(block_q5_K_x8) : sizeof(block_q4_K_x8);
    const int CH = NT == 1 ? 2 : 1; /* chains per sub-block */
    const int nb32 = x->C / QK;
    const int8_t *xq[K_X8_TILE];
    const float *xd[K_X8_TILE];
    const int32_t *xs[K_X8_TILE];
    __m256 acc[K_X8_TILE];
#pragma GCC unroll 4
    for (int i = 0; i < NT; i++) {
        xq[i] = x->q + (size_t)(t + i) * x->C, xd[i] = x->d + (size_t)(t + i) * nb32;
        xs[i] = x->s + (size_t)(t + i) * nb32, acc[i] = _mm256_setzero_ps();
    }
    const __m256i nibble = _mm256_set1_epi8(15);
    for (int b = 0; b < nb; b++, at += group_bytes) {
        const block_q4_K_x8 *g = (const block_q4_K_x8 *)at; /* the fields both layouts share */
        const uint8_t(*qs)[8][X8_ROWS][4] = five ? ((const block_q5_K_x8 *)at)->qs : g->qs;
        __m256i isum[K_X8_TILE];
        if (NT == 1) prefetch_ahead(at, group_bytes, K_X8_PREFETCH, b, ahead);
#pragma GCC unroll 4
        for (int i = 0; i < NT; i++) isum[i] = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m256i plo[2][K_X8_TILE], phi[2][K_X8_TILE];
#pragma GCC unroll 4
            for (int i = 0; i < NT; i++)
                plo[0][i] = plo[1][i] = phi[0][i] = phi[1][i] = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int m = 0; m < 8; m++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)qs[c][m]);
                __m256i lo = _mm256_and_si256(v, nibble), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
                if (five) { /* bit 2c of qh is the low nibble's fifth bit, 2c + 1 the high one's: to bit 4 */
                    __m256i top = _mm256_loadu_si256((const __m256i *)((const block_q5_K_x8 *)at)->qh[m]);
                    lo = with_top_bits(lo, top, 4 - 2 * c, 0x10);
                    hi = with_top_bits(hi, top, 3 - 2 * c, 0x10);
                }
#pragma GCC unroll 4
                for (int i = 0; i < NT; i++) {
                    const int8_t *xc = xq[i] + b * QK_K + 64 * c + 4 * m;
                    __m256i bl = broadcast4(xc), bh = broadcast4(xc + 32);
#ifdef __AVX512VNNI__
                    plo[m % CH][i] = _mm256_dpbusd_epi32(plo[m % CH][i], lo, bl);
                    phi[m % CH][i] = _mm256_dpbusd_epi32(phi[m % CH][i], hi, bh);
#else
                    if (five) { /* codes to 31: pairs to 2 x 31 x 128, to int32 at once */
                        const __m256i ones = _mm256_set1_epi16(1);
                        plo[m % CH][i] = _mm256_add_epi32(plo[m % CH][i], _mm256_madd_epi16(_mm256_maddubs_epi16(lo, bl), ones));
                        phi[m % CH][i] = _mm256_add_epi32(phi[m % CH][i], _mm256_madd_epi16(_mm256_maddubs_epi16(hi, bh), ones));
                    } else {
                        plo[m % CH][i] = _mm256_add_epi16(plo[m % CH][i], _mm256_maddubs_epi16(lo, bl));
                        phi[m % CH][i] = _mm256_add_epi16(phi[m % CH][i], _mm256_maddubs_epi16(hi, bh));
                    }
#endif
                }
            }
            __m256i sc_lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)g->sc[2 * c]));
            __m256i sc_hi = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)g->sc[2 * c + 1]));
#pragma GCC unroll 4
            for (int i = 0; i < NT; i++) {
                __m256i lo = CH == 2 ? _mm256_add_epi32(plo[0][i], plo[1][i]) : plo[0][i];
                __m256i hi = CH == 2 ? _mm256_add_epi32(phi[0][i], phi[1][i]) : phi[0][i];
#ifndef __AVX512VNNI__
                if (!five) {
                    lo = _mm256_madd_epi16(CH == 2 ? _mm256_add_epi16(plo[0][i], plo[1][i]) : plo[0][i],
                                           _mm256_set1_epi16(1));
                    hi = _mm256_madd_epi16(CH == 2 ? _mm256_add_epi16(phi[0][i], phi[1][i]) : phi[0][i],
                                           _mm256_set1_epi16(1));
                }
#endif
                isum[i] = _mm256_add_epi32(isum[i], _mm256_add_epi32(_mm256_mullo_epi32(lo, sc_lo),
                                                                     _mm256_mullo_epi32(hi, sc_hi)));
            }
        }
        /* mins of sub-blocks 2p, 2p + 1 side by side per row: [m0 m1] of row 0, of row 1, ... */
        __m256i mp[4];
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++)
            mp[p] = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)g->mins[2 * p]),
                                                           _mm_loadl_epi64((const __m128i *)g->mins[2 * p + 1])));
        __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g->d));
        __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g->dmin));
#pragma GCC unroll 4
        for (int i = 0; i < NT; i++) {
            const int32_t *s = xs[i] + 8 * b; /* x's sums over the 8 sub-blocks (|s| <= 4096: int16) */
            __m256i msum = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++)
                msum = _mm256_add_epi32(msum, _mm256_madd_epi16(mp[p], _mm256_set1_epi32((int)((uint32_t)s[2 * p] & 0xffff) |
                                                                                         (int)((uint32_t)s[2 * p + 1] << 16))));
            __m256 dx = _mm256_set1_ps(xd[i][8 * b]);
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i]), _mm256_mul_ps(d, dx), acc[i]);
            acc[i] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(dmin, dx), acc[i]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NT; i++) _mm256_storeu_ps(r + 8 * i, acc[i]);
}

/* The activation rows t .. t + NT - 1 of a K layout's tile (codes, scales
 * per 32, sums of 16) and their float accumulators, zeroed */
ALWAYS_INLINE void k_x8_act_rows(const q8_act *x, int t, const int NT, const int8_t **xq, const float **xd,
                                 const int16_t **s16, __m256 *acc) {
#pragma GCC unroll 4
    for (int i = 0; i < NT; i++) {
        xq[i] = x->q + (size_t)(t + i) * x->C, xd[i] = x->d + (size_t)(t + i) * (x->C / QK);
        s16[i] = x->s16 + (size_t)(t + i) * (x->C / 16), acc[i] = _mm256_setzero_ps();
    }
}

/* 8 rows' int8 multipliers of sub-blocks 2j, 2j + 1 (a[2j], a[2j + 1]) side
 * by side per row as int16 pairs, for vpmaddwd against x's sums of 16 */
ALWAYS_INLINE __m256i i8_pairs(const int8_t (*a)[X8_ROWS], int j) {
    return _mm256_cvtepi8_epi16(
        _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)a[2 * j]), _mm_loadl_epi64((const __m128i *)a[2 * j + 1])));
}

/* sum over j < 8 of pairs[j] . (s[2j], s[2j + 1]) per row: a super-block's 16
 * offsets against x's 16 sums of 16 (|s| <= 2048) */
ALWAYS_INLINE __m256i offsets16(const __m256i pairs[8], const int16_t *s) {
    __m256i off = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        int32_t pair;
        memcpy(&pair, s + 2 * j, 4);
        off = _mm256_add_epi32(off, _mm256_madd_epi16(pairs[j], _mm256_set1_epi32(pair)));
    }
    return off;
}

/* WEIGHT_Q6_K_X8 (formats.h): per super-block, half h and run p, the 8
 * rows' 6-bit codes put together from a nibble vector and the top bits
 * shifted into bits 4-5, then integer sums per sub-block of 16 values
 * against x's codes (four: the low nibbles' two sub-blocks and the high
 * ones'), times each row's int8 scale (vpmulld); the -32 of every code
 * meets x's sums of 16 as vpmaddwd pairs; one float scaling per
 * super-block. Without VNNI each vpmaddubsw pair (at most 2 x 63 x 128)
 * goes to int32 at once. */
ALWAYS_INLINE void tile_q6_k_x8(float *r, const block_q6_K_x8 *g, const q8_act *x, int t, const int NT, int nb,
                                long ahead) {
    const int8_t *xq[K_X8_TILE];
    const float *xd[K_X8_TILE];
    const int16_t *s16[K_X8_TILE];
    __m256 acc[K_X8_TILE];
    k_x8_act_rows(x, t, NT, xq, xd, s16, acc);
    const __m256i nibble = _mm256_set1_epi8(15);
    for (int b = 0; b < nb; b++, g++) {
        __m256i isum[K_X8_TILE];
        if (NT == 1) prefetch_ahead(g, sizeof *g, K_X8_PREFETCH, b, ahead);
#pragma GCC unroll 4
        for (int i = 0; i < NT; i++) isum[i] = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
#pragma GCC unroll 2
            for (int p = 0; p < 2; p++) {
                __m256i plo[2][K_X8_TILE], phi[2][K_X8_TILE]; /* [m >= 4]: the run's two sub-blocks */
#pragma GCC unroll 4
                for (int i = 0; i < NT; i++)
                    plo[0][i] = plo[1][i] = phi[0][i] = phi[1][i] = _mm256_setzero_si256();
#pragma GCC unroll 8
                for (int m = 0; m < 8; m++) {
                    __m256i v = _mm256_loadu_si256((const __m256i *)g->half[h].ql[p][m]);
                    __m256i top = _mm256_loadu_si256((const __m256i *)g->half[h].qh[m]);
                    __m256i lo = with_top_bits(_mm256_and_si256(v, nibble), top, 4 - 2 * p, 0x30);
                    __m256i hi = with_top_bits(_mm256_and_si256(_mm256_srli_epi16(v, 4), nibble), top, -2 * p, 0x30);
#pragma GCC unroll 4
                    for (int i = 0; i < NT; i++) {
                        const int8_t *xc = xq[i] + b * QK_K + 128 * h + 32 * p + 4 * m;
                        __m256i bl = broadcast4(xc), bh = broadcast4(xc + 64);
#ifdef __AVX512VNNI__
                        plo[m / 4][i] = _mm256_dpbusd_epi32(plo[m / 4][i], lo, bl);
                        phi[m / 4][i] = _mm256_dpbusd_epi32(phi[m / 4][i], hi, bh);
#else
                        const __m256i ones = _mm256_set1_epi16(1);
                        plo[m / 4][i] = _mm256_add_epi32(plo[m / 4][i], _mm256_madd_epi16(_mm256_maddubs_epi16(lo, bl), ones));
                        phi[m / 4][i] = _mm256_add_epi32(phi[m / 4][i], _mm256_madd_epi16(_mm256_maddubs_epi16(hi, bh), ones));
#endif
                    }
                }
                const int k = 8 * h + 2 * p; /* the low nibbles' sub-blocks k, k + 1; the high ones' k + 4, k + 5 */
                __m256i sc[4];
#pragma GCC unroll 4
                for (int q = 0; q < 4; q++)
                    sc[q] = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)g->sc[k + (q & 1) + (q & 2) * 2]));
#pragma GCC unroll 4
                for (int i = 0; i < NT; i++)
                    isum[i] = _mm256_add_epi32(
                        isum[i], _mm256_add_epi32(_mm256_add_epi32(_mm256_mullo_epi32(plo[0][i], sc[0]),
                                                                   _mm256_mullo_epi32(plo[1][i], sc[1])),
                                                  _mm256_add_epi32(_mm256_mullo_epi32(phi[0][i], sc[2]),
                                                                   _mm256_mullo_epi32(phi[1][i], sc[3]))));
            }
        /* scales of sub-blocks 2j, 2j + 1 side by side per row, against x's sums of 16 (|s| <= 2048) */
        __m256i sp[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) sp[j] = i8_pairs(g->sc, j);
        __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g->d));
#pragma GCC unroll 4
        for (int i = 0; i < NT; i++) {
            __m256i off = offsets16(sp, s16[i] + 16 * b);
            isum[i] = _mm256_sub_epi32(isum[i], _mm256_slli_epi32(off, 5)); /* - 32 sum sc s16 */
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i]), _mm256_mul_ps(d, _mm256_set1_ps(xd[i][8 * b])), acc[i]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NT; i++) _mm256_storeu_ps(r + 8 * i, acc[i]);
}

/* Q3_K's 16 sub-block scales of the 8 rows (sc[k][r], -32..31) from the 12
 * stored bytes of each (block_q3_K_x8): low 4 bits in a nibble of bytes
 * 0..7, top 2 bits in bytes 8..11, all 128 at once */
ALWAYS_INLINE void q3_k_x8_scales(const block_q3_K_x8 *g, int8_t sc[16][X8_ROWS]) {
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)g->scales[0]); /* bytes 0..3 of each row */
    const __m256i l1 = _mm256_loadu_si256((const __m256i *)g->scales[4]);
    const __m256i top = _mm256_loadu_si256((const __m256i *)g->scales[8]);
    const __m256i nibble = _mm256_set1_epi8(15), bits45 = _mm256_set1_epi8(0x30), bias = _mm256_set1_epi8(32);
    __m256i s[4] = {/* sub-blocks 0..3, 4..7, 8..11, 12..15: top bits 0-1, 2-3, 4-5, 6-7 moved to 4-5 */
                    _mm256_or_si256(_mm256_and_si256(l0, nibble), _mm256_and_si256(_mm256_slli_epi16(top, 4), bits45)),
                    _mm256_or_si256(_mm256_and_si256(l1, nibble), _mm256_and_si256(_mm256_slli_epi16(top, 2), bits45)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), nibble), _mm256_and_si256(top, bits45)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), nibble),
                                    _mm256_and_si256(_mm256_srli_epi16(top, 2), bits45))};
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) _mm256_storeu_si256((__m256i *)sc[4 * q], _mm256_sub_epi8(s[q], bias));
}

/* WEIGHT_Q2_K_X8 / WEIGHT_Q3_K_X8 (formats.h; three: Q3_K): per
 * super-block, half h and pass p, the 8 rows' 2-bit codes of values 128h +
 * 32p.. (Q3_K: plus 4 where its hmask bit is set), integer sums per
 * sub-block of 16 against x's codes, times each row's scale (vpmulld);
 * the offsets (Q2_K's mins, Q3_K's -4 of every code) meet x's sums of 16
 * as vpmaddwd pairs; one float scaling per super-block. Without VNNI a
 * sub-block's four vpmaddubsw pairs (each at most 2 x 7 x 128) add up in
 * int16. */
ALWAYS_INLINE void tile_k2_x8(float *r, const uint8_t *at, const int three, const q8_act *x, int t, const int NT,
                              int nb, long ahead) {
    const size_t group_bytes = three ? sizeof(block_q3_K_x8) : sizeof(block_q2_K_x8);
    const int8_t *xq[K_X8_TILE];
    const float *xd[K_X8_TILE];
    const int16_t *s16[K_X8_TILE];
    __m256 acc[K_X8_TILE];
    k_x8_act_rows(x, t, NT, xq, xd, s16, acc);
    const __m256i two_bits = _mm256_set1_epi8(3);
    for (int b = 0; b < nb; b++, at += group_bytes) {
        const block_q2_K_x8 *g2 = (const block_q2_K_x8 *)at;
        const block_q3_K_x8 *g3 = (const block_q3_K_x8 *)at;
        if (NT == 1) prefetch_ahead(at, group_bytes, K_X8_PREFETCH, b, ahead);
        int8_t sc[16][X8_ROWS]; /* sub-block k's scale per row: Q2_K's 0..15, Q3_K's -32..31 */
        if (three)
            q3_k_x8_scales(g3, sc);
        else
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                _mm256_storeu_si256((__m256i *)sc[4 * q],
                                    _mm256_and_si256(_mm256_loadu_si256((const __m256i *)g2->scales[4 * q]),
                                                     _mm256_set1_epi8(15)));
        __m256i isum[K_X8_TILE];
#pragma GCC unroll 4
        for (int i = 0; i < NT; i++) isum[i] = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++)
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                __m256i ps[2][K_X8_TILE]; /* [m >= 4]: the pass's two sub-blocks */
#pragma GCC unroll 4
                for (int i = 0; i < NT; i++) ps[0][i] = ps[1][i] = _mm256_setzero_si256();
#pragma GCC unroll 8
                for (int m = 0; m < 8; m++) {
                    __m256i v = _mm256_loadu_si256((const __m256i *)(three ? g3->qs[h][m] : g2->qs[h][m]));
                    __m256i q = _mm256_and_si256(_mm256_srli_epi16(v, 2 * p), two_bits);
                    if (three) /* bit 4h + p of hmask to bit 2 */
                        q = with_top_bits(q, _mm256_loadu_si256((const __m256i *)g3->hmask[m]), 2 - (4 * h + p), 0x04);
#pragma GCC unroll 4
                    for (int i = 0; i < NT; i++) {
                        __m256i bx = broadcast4(xq[i] + b * QK_K + 128 * h + 32 * p + 4 * m);
#ifdef __AVX512VNNI__
                        ps[m / 4][i] = _mm256_dpbusd_epi32(ps[m / 4][i], q, bx);
#else
                        ps[m / 4][i] = _mm256_add_epi16(ps[m / 4][i], _mm256_maddubs_epi16(q, bx));
#endif
                    }
                }
                const int k = 8 * h + 2 * p; /* values 128h + 32p.. are sub-blocks k and k + 1 */
                __m256i sc0 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)sc[k]));
                __m256i sc1 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)sc[k + 1]));
#pragma GCC unroll 4
                for (int i = 0; i < NT; i++) {
#ifdef __AVX512VNNI__
                    __m256i lo = ps[0][i], hi = ps[1][i];
#else
                    __m256i lo = _mm256_madd_epi16(ps[0][i], _mm256_set1_epi16(1));
                    __m256i hi = _mm256_madd_epi16(ps[1][i], _mm256_set1_epi16(1));
#endif
                    isum[i] = _mm256_add_epi32(isum[i],
                                               _mm256_add_epi32(_mm256_mullo_epi32(lo, sc0), _mm256_mullo_epi32(hi, sc1)));
                }
            }
        /* the offsets' multipliers of sub-blocks 2j, 2j + 1 side by side per
         * row, against x's sums of 16 (|s| <= 2048): Q3_K's scales (each
         * code's -4), Q2_K's mins */
        __m256i op[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++)
            op[j] = three ? i8_pairs((const int8_t(*)[X8_ROWS])sc, j)
                          : _mm256_srli_epi16(
                                _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)g2->scales[2 * j]),
                                                                       _mm_loadl_epi64((const __m128i *)g2->scales[2 * j + 1]))),
                                4);
        __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(three ? g3->d : g2->d)));
#pragma GCC unroll 4
        for (int i = 0; i < NT; i++) {
            __m256i off = offsets16(op, s16[i] + 16 * b);
            __m256 dx = _mm256_set1_ps(xd[i][8 * b]);
            if (three) {
                isum[i] = _mm256_sub_epi32(isum[i], _mm256_slli_epi32(off, 2)); /* - 4 sum sc s16 */
                acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i]), _mm256_mul_ps(d, dx), acc[i]);
            } else {
                __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)g2->dmin));
                acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i]), _mm256_mul_ps(d, dx), acc[i]);
                acc[i] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(off), _mm256_mul_ps(dmin, dx), acc[i]);
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < NT; i++) _mm256_storeu_ps(r + 8 * i, acc[i]);
}

/* The K layouts' GEMM: each group of 8 weight rows against tiles of
 * activation rows; kind: 2, 3, 4, 5 or 6 (Q2_K .. Q6_K) */
ALWAYS_INLINE void gemm_k_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                             int o0, int o1, const int kind) {
    int nb = x->C / QK_K;
    size_t group_bytes = kind == 6   ? sizeof(block_q6_K_x8)
                         : kind == 5 ? sizeof(block_q5_K_x8)
                         : kind == 4 ? sizeof(block_q4_K_x8)
                         : kind == 3 ? sizeof(block_q3_K_x8)
                                     : sizeof(block_q2_K_x8);
    for (int o = o0; o < o1; o += X8_ROWS) {
        const uint8_t *g = (const uint8_t *)w + (size_t)(o / X8_ROWS) * nb * group_bytes;
        int cols = o1 - o < X8_ROWS ? o1 - o : X8_ROWS;
        for (int t = t0; t < t1;) {
            float r[K_X8_TILE * X8_ROWS];
            int n = t1 - t >= K_X8_TILE ? K_X8_TILE : 1;
            long ahead = (long)((o1 - o + X8_ROWS - 1) / X8_ROWS) * nb;
            if (kind <= 3 && n == K_X8_TILE)
                tile_k2_x8(r, g, kind == 3, x, t, K_X8_TILE, nb, ahead);
            else if (kind <= 3)
                tile_k2_x8(r, g, kind == 3, x, t, 1, nb, ahead);
            else if (kind == 6 && n == K_X8_TILE)
                tile_q6_k_x8(r, (const block_q6_K_x8 *)g, x, t, K_X8_TILE, nb, ahead);
            else if (kind == 6)
                tile_q6_k_x8(r, (const block_q6_K_x8 *)g, x, t, 1, nb, ahead);
            else if (n == K_X8_TILE)
                tile_k_x8(r, g, kind == 5, x, t, K_X8_TILE, nb, ahead);
            else
                tile_k_x8(r, g, kind == 5, x, t, 1, nb, ahead);
            for (int i = 0; i < n; i++)
                for (int k = 0; k < cols; k++)
                    out[(size_t)(t + i) * OC + o + k] = r[X8_ROWS * i + k] + (bias ? bias[o + k] : 0.0f);
            t += n;
        }
    }
}

static void gemm_q4_K_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                         int o0, int o1) {
    gemm_k_x8(out, x, w, bias, t0, t1, OC, o0, o1, 4);
}

static void gemm_q5_K_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                         int o0, int o1) {
    gemm_k_x8(out, x, w, bias, t0, t1, OC, o0, o1, 5);
}

static void gemm_q6_K_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                         int o0, int o1) {
    gemm_k_x8(out, x, w, bias, t0, t1, OC, o0, o1, 6);
}

static void gemm_q2_K_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                         int o0, int o1) {
    gemm_k_x8(out, x, w, bias, t0, t1, OC, o0, o1, 2);
}

static void gemm_q3_K_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                         int o0, int o1) {
    gemm_k_x8(out, x, w, bias, t0, t1, OC, o0, o1, 3);
}

/* ------------------------------------------------------ activations -- */

static void gelu(float *x, long N) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    long i = 0;
    /* tanh(y) = 1 - 2 / (e^(2y) + 1) */
    for (; i + VW <= N; i += VW) {
        vec v = v_load(x + i), v3 = v_mul(v_mul(v, v), v);
        vec y = v_mul(v_set1(k), v_fmadd(v_set1(0.044715f), v3, v));
        vec e = v_exp(v_add(y, y));
        vec th = v_sub(v_set1(1.0f), v_div(v_set1(2.0f), v_add(e, v_set1(1.0f))));
        v_store(x + i, v_mul(v_mul(v_set1(0.5f), v), v_add(v_set1(1.0f), th)));
    }
    for (; i < N; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

static void swiglu(float *gate, const float *up, long N) {
    long i = 0;
    for (; i + VW <= N; i += VW) { /* silu(g) = g / (1 + e^-g) */
        vec g = v_load(gate + i);
        vec s = v_div(g, v_add(v_set1(1.0f), v_exp(v_sub(v_zero(), g))));
        v_store(gate + i, v_mul(s, v_load(up + i)));
    }
    for (; i < N; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* ------------------------------------------------------- attention -- */

static void softmax(float *x, int N) {
    float max = -INFINITY;
    int i = 0;
    vec vm = v_set1(-INFINITY);
    for (; i + VW <= N; i += VW) vm = v_max(vm, v_load(x + i));
    max = v_hmax(vm);
    for (; i < N; i++)
        if (x[i] > max) max = x[i];
    double sum = 0.0;
    i = 0;
    vec vsum = v_zero(), vmax = v_set1(max);
    for (; i + VW <= N; i += VW) {
        vec e = v_exp(v_sub(v_load(x + i), vmax));
        v_store(x + i, e);
        vsum = v_add(vsum, e);
    }
    sum = v_hsum(vsum);
    for (; i < N; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    i = 0;
    for (; i + VW <= N; i += VW) v_store(x + i, v_mul(v_load(x + i), v_set1(inv)));
    for (; i < N; i++) x[i] *= inv;
}

static void dots(float *out, const float *q, const float *rows, int row_stride, float scale, int L, int C) {
    for (int j = 0; j < L; j++) {
        const float *r = rows + (size_t)j * row_stride;
        int c = 0;
        float d = 0.0f;
        vec acc = v_zero();
        for (; c + VW <= C; c += VW) acc = v_fmadd(v_load(q + c), v_load(r + c), acc);
        d = v_hsum(acc);
        for (; c < C; c++) d += q[c] * r[c];
        out[j] = d * scale;
    }
}

/* The output held in registers, 4 vectors of columns at a time, with even
 * and odd rows in separate sums: each FMA waits on the one two rows back,
 * not on a store and reload of out (decode attention at 128 cached
 * positions: about 2x faster). */
static void weighted_sum(float *out, const float *p, const float *rows, int row_stride, int L, int C) {
    int c0 = 0;
    for (; c0 + 4 * VW <= C; c0 += 4 * VW) {
        vec e[4] = {v_zero(), v_zero(), v_zero(), v_zero()}, o[4] = {v_zero(), v_zero(), v_zero(), v_zero()};
        int j = 0;
        for (; j + 2 <= L; j += 2) {
            const float *r0 = rows + (size_t)j * row_stride + c0, *r1 = r0 + row_stride;
            vec p0 = v_set1(p[j]), p1 = v_set1(p[j + 1]);
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                e[k] = v_fmadd(p0, v_load(r0 + k * VW), e[k]);
                o[k] = v_fmadd(p1, v_load(r1 + k * VW), o[k]);
            }
        }
        if (j < L) {
            const float *r0 = rows + (size_t)j * row_stride + c0;
            vec p0 = v_set1(p[j]);
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) e[k] = v_fmadd(p0, v_load(r0 + k * VW), e[k]);
        }
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) v_store(out + c0 + k * VW, v_add(e[k], o[k]));
    }
    if (c0 == C) return;
    /* columns past the last 4 vectors: the plain row-by-row sum */
    for (int c = c0; c < C; c++) out[c] = 0.0f;
    for (int j = 0; j < L; j++) {
        const float *r = rows + (size_t)j * row_stride;
        int c = c0;
        vec pj = v_set1(p[j]);
        for (; c + VW <= C; c += VW) v_store(out + c, v_fmadd(pj, v_load(r + c), v_load(out + c)));
        for (; c < C; c++) out[c] += p[j] * r[c];
    }
}

/* ---------------------------------------------------- memory reads -- */

/* Four independent vector XORs a step, 256-bit loads in every set (on Zen 4
 * they stream from memory at least as fast as 512-bit ones: stream_one) */
static uint64_t read_bytes(const void *p, size_t n) {
    const unsigned char *b = p;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_loadu_si256((const __m256i *)(b + i)));
        a1 = _mm256_xor_si256(a1, _mm256_loadu_si256((const __m256i *)(b + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_loadu_si256((const __m256i *)(b + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_loadu_si256((const __m256i *)(b + i + 96)));
    }
    __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    uint64_t s = (uint64_t)_mm256_extract_epi64(a, 0) ^ (uint64_t)_mm256_extract_epi64(a, 1) ^
                 (uint64_t)_mm256_extract_epi64(a, 2) ^ (uint64_t)_mm256_extract_epi64(a, 3);
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, sizeof w);
        s ^= w;
    }
    for (; i < n; i++) s ^= b[i];
    return s;
}

extern const dot_q8_fn CAT(DOT_Q8_, KERNEL_ISA)[KERNEL_TYPES]; /* dots_isa.c */
extern const to_f32_fn CAT(TO_F32_, KERNEL_ISA)[KERNEL_TYPES];

#ifdef __AVX512BF16__
/* BF16 weights in a prefill (the avx512bf16 set): the activation rows
 * rounded to BF16 once per chunk (to nearest even, as llama.cpp rounds them
 * for these weights; the reference models it: tools/reference.py), then
 * vdpbf16ps, which adds the products of 16 pairs of BF16 values into 16 F32
 * lanes, at twice the multiply-adds per instruction of F32 FMAs. A tile of
 * 4 weight rows and 4 activation rows keeps 16 accumulators, each summed
 * once at the end of the row. Activation rows are padded with zeros to a
 * multiple of 32 values; a weight row's last values are loaded under a
 * mask. Chunks of activation rows stay in L2; each tile's weight rows in
 * L1 meet the whole chunk. */
enum { BF16_TILE = 4, BF16_CHUNK_BYTES = 256 << 10 };

ALWAYS_INLINE void bf16_tile(float *out, int OC, const uint16_t *w, int C, const uint16_t *xb, int Cp,
                             const float *bias, int o, int t, const int R, const int NT) {
    __m512 acc[BF16_TILE][BF16_TILE];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int n = 0; n < NT; n++) acc[r][n] = _mm512_setzero_ps();
    for (int c = 0; c < C; c += 32) {
        __mmask32 m = C - c >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << (C - c)) - 1);
        __m512i wv[BF16_TILE];
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) wv[r] = _mm512_maskz_loadu_epi16(m, w + (size_t)(o + r) * C + c);
#pragma GCC unroll 4
        for (int n = 0; n < NT; n++) {
            __m512i xv = _mm512_loadu_si512(xb + (size_t)(t + n) * Cp + c);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) acc[r][n] = _mm512_dpbf16_ps(acc[r][n], (__m512bh)wv[r], (__m512bh)xv);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int n = 0; n < NT; n++)
            out[(size_t)(t + n) * OC + o + r] = _mm512_reduce_add_ps(acc[r][n]) + (bias ? bias[o + r] : 0.0f);
}

/* x (C) rounded to BF16 into xb (Cp, zeros past C) */
static void row_to_bf16(uint16_t *xb, const float *x, int C, int Cp) {
    for (int c = 0; c < Cp; c += 32) {
        __mmask16 lo = (__mmask16)(C - c >= 16 ? 0xffff : C - c > 0 ? (1u << (C - c)) - 1 : 0);
        __mmask16 hi = (__mmask16)(C - c >= 32 ? 0xffff : C - c > 16 ? (1u << (C - c - 16)) - 1 : 0);
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, x + c + 16), _mm512_maskz_loadu_ps(lo, x + c));
        _mm512_storeu_si512(xb + c, (__m512i)v);
    }
}

static int gemm_bf16(float *out, const float *in, int in_stride, const void *w, const float *bias, int T, int C,
                     int OC, int o0, int o1, void *scratch, size_t scratch_bytes) {
    int Cp = (C + 31) / 32 * 32;
    size_t row_bytes = (size_t)Cp * sizeof(uint16_t);
    int chunk = (int)((scratch_bytes < BF16_CHUNK_BYTES ? scratch_bytes : BF16_CHUNK_BYTES) / row_bytes);
    if (chunk < 1) return 0; /* no room for one row: the caller converts for sgemm */
    uint16_t *xb = scratch; // (chunk, Cp)
    const uint16_t *wr = w;
    for (int t0 = 0; t0 < T; t0 += chunk) {
        int n = T - t0 < chunk ? T - t0 : chunk;
        for (int t = 0; t < n; t++) row_to_bf16(xb + (size_t)t * Cp, in + (size_t)(t0 + t) * in_stride, C, Cp);
        float *ot = out + (size_t)t0 * OC;
        for (int o = o0; o < o1;) {
            int R = o1 - o >= BF16_TILE ? BF16_TILE : 1;
            for (int t = 0; t < n;) {
                int NT = n - t >= BF16_TILE ? BF16_TILE : 1;
                if (R == BF16_TILE && NT == BF16_TILE)
                    bf16_tile(ot, OC, wr, C, xb, Cp, bias, o, t, BF16_TILE, BF16_TILE);
                else if (R == BF16_TILE)
                    bf16_tile(ot, OC, wr, C, xb, Cp, bias, o, t, BF16_TILE, 1);
                else if (NT == BF16_TILE)
                    bf16_tile(ot, OC, wr, C, xb, Cp, bias, o, t, 1, BF16_TILE);
                else
                    bf16_tile(ot, OC, wr, C, xb, Cp, bias, o, t, 1, 1);
                t += NT;
            }
            o += R;
        }
    }
    return 1;
}
static const gemm_float_fn GEMM_FLOAT[KERNEL_TYPES] = {[GGML_TYPE_BF16] = gemm_bf16};
#else
static const gemm_float_fn GEMM_FLOAT[KERNEL_TYPES];
#endif

static const stream_fn STREAM[KERNEL_TYPES] = {
    [GGML_TYPE_F32] = stream_f32, [GGML_TYPE_F16] = stream_f16, [GGML_TYPE_BF16] = stream_bf16};
/* The K-quants' prefill runs an integer GEMM (dots_isa.c) with AVX-512
 * only: with 256-bit registers it measured slower than converting their
 * rows for sgemm (110M Q4_K_M pp512, one thread: 447-473 against 520-544
 * tok/s), so the AVX2 set converts them. */
#if VW == 16
GEMM_Q8_FN(CAT(gemm_q2_K_, KERNEL_ISA));
GEMM_Q8_FN(CAT(gemm_q3_K_, KERNEL_ISA));
GEMM_Q8_FN(CAT(gemm_q4_K_, KERNEL_ISA));
GEMM_Q8_FN(CAT(gemm_q5_K_, KERNEL_ISA));
GEMM_Q8_FN(CAT(gemm_q6_K_, KERNEL_ISA));
#endif
static const gemm_q8_fn GEMM[KERNEL_TYPES] = {
    [WEIGHT_Q4_0_X8] = gemm_q4_0_x8, [WEIGHT_Q8_0_X8] = gemm_q8_0_x8, [WEIGHT_Q4_K_X8] = gemm_q4_K_x8,
    [WEIGHT_Q5_K_X8] = gemm_q5_K_x8, [WEIGHT_Q6_K_X8] = gemm_q6_K_x8, [WEIGHT_Q2_K_X8] = gemm_q2_K_x8,
    [WEIGHT_Q3_K_X8] = gemm_q3_K_x8,
#if VW == 16
    [GGML_TYPE_Q2_K] = CAT(gemm_q2_K_, KERNEL_ISA), [GGML_TYPE_Q3_K] = CAT(gemm_q3_K_, KERNEL_ISA),
    [GGML_TYPE_Q4_K] = CAT(gemm_q4_K_, KERNEL_ISA), [GGML_TYPE_Q5_K] = CAT(gemm_q5_K_, KERNEL_ISA),
    [GGML_TYPE_Q6_K] = CAT(gemm_q6_K_, KERNEL_ISA),
#endif
};

const kernel_ops CAT(kernel_ops_, KERNEL_ISA) = {
    .name = STR(KERNEL_ISA),
    .stream = STREAM,
    .dot_q8 = CAT(DOT_Q8_, KERNEL_ISA),
    .gemm = GEMM,
    .gemm_float = GEMM_FLOAT,
    .to_f32 = CAT(TO_F32_, KERNEL_ISA),
    .quantize_q8_act = quantize_q8_act,
    .gelu = gelu,
    .swiglu = swiglu,
    .softmax = softmax,
    .dots = dots,
    .weighted_sum = weighted_sum,
    .read_bytes = read_bytes,
};
