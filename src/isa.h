/* The instruction-set layer the vector kernel files are written against
 * (kernels_isa.c, dots_isa.c): each is compiled once per vector set with
 * that set's -march and -DKERNEL_ISA (the Makefile), and this header maps
 * VW-wide v_* float vectors to AVX-512 (16) or AVX2 (8). The scalar set is
 * the plain C of kernels_generic.c, not compiled from these files. */
#ifndef TINYLLM_ISA_H
#define TINYLLM_ISA_H

#include <stdint.h>
#include <string.h>

#include "half.h"

#ifndef KERNEL_ISA
#error "compile with -DKERNEL_ISA=avx2|avx512|avx512vnni|avx512bf16 (see the Makefile)"
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define STR_(a) #a
#define STR(a) STR_(a)

#define ALWAYS_INLINE static inline __attribute__((always_inline))

#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
#define VW 16
typedef __m512 vec;
#define v_zero() _mm512_setzero_ps()
#define v_load(p) _mm512_loadu_ps(p)
#define v_store(p, v) _mm512_storeu_ps(p, v)
#define v_set1(x) _mm512_set1_ps(x)
#define v_add(a, b) _mm512_add_ps(a, b)
#define v_sub(a, b) _mm512_sub_ps(a, b)
#define v_mul(a, b) _mm512_mul_ps(a, b)
#define v_div(a, b) _mm512_div_ps(a, b)
#define v_min(a, b) _mm512_min_ps(a, b)
#define v_max(a, b) _mm512_max_ps(a, b)
#define v_fmadd(a, b, c) _mm512_fmadd_ps(a, b, c)
#define v_fnmadd(a, b, c) _mm512_fnmadd_ps(a, b, c)
#define v_floor(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
#define v_load_f16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
/* BF16 is the top half of an F32: widening is a shift */
#define v_load_bf16(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
/* 2^n for whole numbers n (as floats) in the normal range */
#define v_pow2(n) \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127)), 23))
#define v_hsum(v) _mm512_reduce_add_ps(v)
#define v_hmax(v) _mm512_reduce_max_ps(v)
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define VW 8
typedef __m256 vec;
#define v_zero() _mm256_setzero_ps()
#define v_load(p) _mm256_loadu_ps(p)
#define v_store(p, v) _mm256_storeu_ps(p, v)
#define v_set1(x) _mm256_set1_ps(x)
#define v_add(a, b) _mm256_add_ps(a, b)
#define v_sub(a, b) _mm256_sub_ps(a, b)
#define v_mul(a, b) _mm256_mul_ps(a, b)
#define v_div(a, b) _mm256_div_ps(a, b)
#define v_min(a, b) _mm256_min_ps(a, b)
#define v_max(a, b) _mm256_max_ps(a, b)
#define v_fmadd(a, b, c) _mm256_fmadd_ps(a, b, c)
#define v_fnmadd(a, b, c) _mm256_fnmadd_ps(a, b, c)
#define v_floor(x) _mm256_floor_ps(x)
#define v_load_f16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define v_load_bf16(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
#define v_pow2(n) \
    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23))
ALWAYS_INLINE float v_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
ALWAYS_INLINE float v_hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#else
#error "the vector kernels need AVX2 or AVX-512 (the scalar set is kernels_generic.c)"
#endif

/* e^x for VW floats: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two parts
 * for accuracy), e^r by a degree-6 polynomial, 2^n put into the exponent
 * bits. Relative error about 1e-7; inputs clamped to +-88.37 (float range). */
ALWAYS_INLINE vec v_exp(vec x) {
    x = v_min(v_max(x, v_set1(-88.3762626647949f)), v_set1(88.3762626647949f));
    vec n = v_floor(v_fmadd(x, v_set1(1.44269504088896341f), v_set1(0.5f)));
    vec r = v_fnmadd(n, v_set1(0.693359375f), x);
    r = v_fnmadd(n, v_set1(-2.12194440e-4f), r);
    vec p = v_set1(1.9875691500e-4f);
    p = v_fmadd(p, r, v_set1(1.3981999507e-3f));
    p = v_fmadd(p, r, v_set1(8.3334519073e-3f));
    p = v_fmadd(p, r, v_set1(4.1665795894e-2f));
    p = v_fmadd(p, r, v_set1(1.6666665459e-1f));
    p = v_fmadd(p, r, v_set1(5.0000001201e-1f));
    p = v_fmadd(p, v_mul(r, r), v_add(r, v_set1(1.0f)));
    return v_mul(p, v_pow2(n));
}

/* the sum of 8 floats */
ALWAYS_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* The float formats a weight stream reads (converted as loaded) */
enum weight_kind { W_F32, W_F16, W_BF16 };

ALWAYS_INLINE float bf16_value(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* 8 weights from element i of an F32, F16 or BF16 row */
ALWAYS_INLINE __m256 load8_w(const void *w, size_t i, enum weight_kind kind) {
    return kind == W_F16    ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)))
           : kind == W_BF16 ? _mm256_castsi256_ps(_mm256_slli_epi32(
                                  _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i))), 16))
                            : _mm256_loadu_ps((const float *)w + i);
}

/* VW weights from element i of an F32, F16 or BF16 row */
ALWAYS_INLINE vec load_w(const void *w, size_t i, enum weight_kind kind) {
    return kind == W_F16    ? v_load_f16((const uint16_t *)w + i)
           : kind == W_BF16 ? v_load_bf16((const uint16_t *)w + i)
                            : v_load((const float *)w + i);
}

ALWAYS_INLINE float load1_w(const void *w, size_t i, enum weight_kind kind) {
    uint16_t h;
    if (kind == W_F32) return ((const float *)w)[i];
    memcpy(&h, (const uint16_t *)w + i, 2);
    return kind == W_F16 ? f16_to_f32(h) : bf16_value(h);
}

/* a block's F16 scale, read from its first bytes (blocks may be unaligned) */
ALWAYS_INLINE float block_scale(const uint8_t *blk) {
    uint16_t h;
    memcpy(&h, blk, 2);
    return _cvtsh_ss(h); /* F16C */
}

#endif
