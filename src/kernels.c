#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define HAVE_F16C 1
#endif

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

static float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* e^x for 8 floats: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two parts
 * for accuracy), e^r by a degree-6 polynomial, 2^n put into the exponent
 * bits. Relative error about 1e-7; inputs clamped to +-88.37 (float range). */
static __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-88.3762626647949f)), _mm256_set1_ps(88.3762626647949f));
    __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i pow2n = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(pow2n));
}
#define HAVE_EXP8 1
#define HAVE_AVX2 1

#endif

/* ------------------------------------------------------------ F16 -- */

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 113;
            while (!(man & 1024)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 1023) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}


void f16_to_f32_row(float *dst, const uint16_t *src, long n) {
    long i = 0;
#ifdef HAVE_F16C
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
#endif
    for (; i < n; i++) dst[i] = f16_to_f32(src[i]);
}

/* ------------------------------------------ weight-streaming products -- */
/* Decode (one row) and short prompts (a few rows) are bound by reading the
 * weights: these kernels read each weight once, as one forward stream (the
 * rows are adjacent; the hardware prefetcher follows that best), for F32 or
 * F16 storage alike (an F16 weight is converted as it is loaded). With few
 * rows, sgemm would copy (pack) every weight first and read it again. */

#ifdef HAVE_F16C
#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE __m256 load8w(const void *w, size_t i, int f16) {
    return f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)))
               : _mm256_loadu_ps((const float *)w + i);
}

ALWAYS_INLINE float load1w(const void *w, size_t i, int f16) {
    return f16 ? f16_to_f32(((const uint16_t *)w)[i]) : ((const float *)w)[i];
}

/* One row: four accumulators per weight row (the decode path). */
ALWAYS_INLINE void stream_one(float *out, const float *x, const void *w, int f16, const float *bias, int C, int o0,
                              int o1) {
    int C8 = C & ~7, C32 = C & ~31;
    for (int o = o0; o < o1; o++) {
        size_t r = (size_t)o * C;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int c = 0;
        for (; c < C32; c += 32) {
            a0 = _mm256_fmadd_ps(load8w(w, r + c, f16), _mm256_loadu_ps(x + c), a0);
            a1 = _mm256_fmadd_ps(load8w(w, r + c + 8, f16), _mm256_loadu_ps(x + c + 8), a1);
            a2 = _mm256_fmadd_ps(load8w(w, r + c + 16, f16), _mm256_loadu_ps(x + c + 16), a2);
            a3 = _mm256_fmadd_ps(load8w(w, r + c + 24, f16), _mm256_loadu_ps(x + c + 24), a3);
        }
        for (; c < C8; c += 8) a0 = _mm256_fmadd_ps(load8w(w, r + c, f16), _mm256_loadu_ps(x + c), a0);
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; c < C; c++) s += load1w(w, r + c, f16) * x[c];
        out[o] = s + (bias ? bias[o] : 0.0f);
    }
}

/* R rows (a compile-time 2..4) against each weight row while it is in L1:
 * two accumulators per row. out rows are OC apart, x rows x_stride. */
ALWAYS_INLINE void stream_rows(float *out, int OC, const float *x, int x_stride, const int R, const void *w, int f16,
                               const float *bias, int C, int o0, int o1) {
    int C8 = C & ~7, C16 = C & ~15;
    for (int o = o0; o < o1; o++) {
        size_t r = (size_t)o * C;
        __m256 acc[4][2];
        for (int t = 0; t < R; t++) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
        int c = 0;
        for (; c < C16; c += 16) {
            __m256 w0 = load8w(w, r + c, f16), w1 = load8w(w, r + c + 8, f16);
            for (int t = 0; t < R; t++) {
                const float *xt = x + (size_t)t * x_stride + c;
                acc[t][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xt), acc[t][0]);
                acc[t][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xt + 8), acc[t][1]);
            }
        }
        for (; c < C8; c += 8) {
            __m256 w0 = load8w(w, r + c, f16);
            for (int t = 0; t < R; t++)
                acc[t][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + (size_t)t * x_stride + c), acc[t][0]);
        }
        for (int t = 0; t < R; t++) {
            const float *xt = x + (size_t)t * x_stride;
            float s = hsum256(_mm256_add_ps(acc[t][0], acc[t][1]));
            for (int cc = c; cc < C; cc++) s += load1w(w, r + cc, f16) * xt[cc];
            out[(size_t)t * OC + o] = s + (bias ? bias[o] : 0.0f);
        }
    }
}

/* out[:, o0:o1] (T, OC) for T <= STREAM_MAX_ROWS, four rows per pass. */
ALWAYS_INLINE void stream_product(float *out, const float *in, int in_stride, const void *w, int f16,
                                  const float *bias, int T, int C, int OC, int o0, int o1) {
    for (int t = 0; t < T; t += 4) {
        float *ot = out + (size_t)t * OC;
        const float *xt = in + (size_t)t * in_stride;
        switch (T - t < 4 ? T - t : 4) {
        case 1: stream_one(ot, xt, w, f16, bias, C, o0, o1); break;
        case 2: stream_rows(ot, OC, xt, in_stride, 2, w, f16, bias, C, o0, o1); break;
        case 3: stream_rows(ot, OC, xt, in_stride, 3, w, f16, bias, C, o0, o1); break;
        default: stream_rows(ot, OC, xt, in_stride, 4, w, f16, bias, C, o0, o1); break;
        }
    }
}

static void stream_f32(float *out, const float *in, int in_stride, const float *w, const float *bias, int T, int C,
                       int OC, int o0, int o1) {
    stream_product(out, in, in_stride, w, 0, bias, T, C, OC, o0, o1);
}

static void stream_f16(float *out, const float *in, int in_stride, const uint16_t *w, const float *bias, int T, int C,
                       int OC, int o0, int o1) {
    stream_product(out, in, in_stride, w, 1, bias, T, C, OC, o0, o1);
}
#else
static void stream_f32(float *out, const float *in, int in_stride, const float *w, const float *bias, int T, int C,
                       int OC, int o0, int o1) {
    for (int t = 0; t < T; t++)
        for (int o = o0; o < o1; o++) {
            const float *wr = w + (size_t)o * C, *x = in + (size_t)t * in_stride;
            float s = 0.0f;
            for (int c = 0; c < C; c++) s += wr[c] * x[c];
            out[(size_t)t * OC + o] = s + (bias ? bias[o] : 0.0f);
        }
}

static void stream_f16(float *out, const float *in, int in_stride, const uint16_t *w, const float *bias, int T, int C,
                       int OC, int o0, int o1) {
    for (int t = 0; t < T; t++)
        for (int o = o0; o < o1; o++) {
            const uint16_t *wr = w + (size_t)o * C;
            const float *x = in + (size_t)t * in_stride;
            float s = 0.0f;
            for (int c = 0; c < C; c++) s += f16_to_f32(wr[c]) * x[c];
            out[(size_t)t * OC + o] = s + (bias ? bias[o] : 0.0f);
        }
}
#endif

/* out[:, o0:o1] = in @ w_rows^T (+ bias), w_rows holding rows o0..o1-1. */
static void sgemm_columns(float *out, const float *in, int in_stride, const float *w_rows, const float *bias, int T,
                          int C, int OC, int o0, int o1) {
    if (bias) {
        for (int t = 0; t < T; t++)
            for (int o = o0; o < o1; o++) out[(size_t)t * OC + o] = bias[o];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, o1 - o0, C, 1.0f, in, in_stride, w_rows, C,
                bias ? 1.0f : 0.0f, out + o0, OC);
}

void matmul_f16_forward(float *out, const float *in, int in_stride, const uint16_t *w, const float *bias, int T, int C,
                        int OC, int o0, int o1, float *conv, int conv_rows) {
    if (o1 <= o0) return;
    if (T <= STREAM_MAX_ROWS) {
        stream_f16(out, in, in_stride, w, bias, T, C, OC, o0, o1);
        return;
    }
    for (int c0 = o0; c0 < o1; c0 += conv_rows) {
        int c1 = c0 + conv_rows < o1 ? c0 + conv_rows : o1;
        f16_to_f32_row(conv, w + (size_t)c0 * C, (long)(c1 - c0) * C); // (c1 - c0, C)
        sgemm_columns(out, in, in_stride, conv, bias, T, C, OC, c0, c1);
    }
}

void matmul_forward(float *out, const float *in, int in_stride, const float *w, const float *bias, int T, int C, int OC,
                    int o0, int o1) {
    if (o1 <= o0) return;
    if (T <= STREAM_MAX_ROWS) {
        stream_f32(out, in, in_stride, w, bias, T, C, OC, o0, o1);
        return;
    }
    sgemm_columns(out, in, in_stride, w + (size_t)o0 * C, bias, T, C, OC, o0, o1);
}

void rmsnorm_forward(float *out, const float *in, const float *w, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *x = in + (size_t)t * C;
        float *y = out + (size_t)t * C;
        double ss = 0.0;
        for (int i = 0; i < C; i++) ss += (double)x[i] * x[i];
        float scale = (float)(1.0 / sqrt(ss / C + eps));
        for (int i = 0; i < C; i++) y[i] = x[i] * scale * w[i];
    }
}

void layernorm_forward(float *out, const float *in, const float *w, const float *b, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *x = in + (size_t)t * C;
        float *y = out + (size_t)t * C;
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < C; i++) mean += x[i];
        mean /= C;
        for (int i = 0; i < C; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= C;
        float rstd = (float)(1.0 / sqrt(var + eps));
        for (int i = 0; i < C; i++) y[i] = (float)(x[i] - mean) * rstd * w[i] + b[i];
    }
}

void gelu_forward(float *x, long N) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    long i = 0;
#ifdef HAVE_EXP8
    /* tanh(y) = 1 - 2 / (e^(2y) + 1) */
    for (; i + 8 <= N; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
        __m256 y = _mm256_mul_ps(_mm256_set1_ps(k), _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), v3, v));
        __m256 e = exp8(_mm256_add_ps(y, y));
        __m256 th = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                                  _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v),
                                              _mm256_add_ps(_mm256_set1_ps(1.0f), th)));
    }
#endif
    for (; i < N; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

void swiglu_forward(float *gate, const float *up, long N) {
    long i = 0;
#ifdef HAVE_EXP8
    for (; i + 8 <= N; i += 8) { /* silu(g) = g / (1 + e^-g) */
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
        __m256 s = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
    }
#endif
    for (; i < N; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void rope_table(float *cos_out, float *sin_out, int n_pos, int head_dim, float theta) {
    for (int i = 0; i < head_dim; i += 2) {
        double freq = pow((double)theta, -(double)i / head_dim);
        for (int p = 0; p < n_pos; p++) {
            double angle = p * freq;
            cos_out[(size_t)p * (head_dim / 2) + i / 2] = (float)cos(angle);
            sin_out[(size_t)p * (head_dim / 2) + i / 2] = (float)sin(angle);
        }
    }
}

void rope_forward(float *x, int T, int row_stride, int n_heads, int head_dim, const float *cos, const float *sin) {
    int half = head_dim / 2;
    for (int t = 0; t < T; t++) {
        float *row = x + (size_t)t * row_stride;
        const float *c = cos + (size_t)t * half, *s = sin + (size_t)t * half;
        for (int h = 0; h < n_heads; h++) {
            float *p = row + h * head_dim;
            for (int i = 0; i < half; i++) {
                float a = p[2 * i], b = p[2 * i + 1];
                p[2 * i] = a * c[i] - b * s[i];
                p[2 * i + 1] = a * s[i] + b * c[i];
            }
        }
    }
}

void softmax_forward(float *x, int N) {
    float max = -INFINITY;
    int i = 0;
#ifdef HAVE_EXP8
    __m256 vm = _mm256_set1_ps(-INFINITY);
    for (; i + 8 <= N; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    float lm[8];
    _mm256_storeu_ps(lm, vm);
    for (int k = 0; k < 8; k++) max = lm[k] > max ? lm[k] : max;
#endif
    for (; i < N; i++)
        if (x[i] > max) max = x[i];
    double sum = 0.0;
    i = 0;
#ifdef HAVE_EXP8
    __m256 vsum = _mm256_setzero_ps(), vmax = _mm256_set1_ps(max);
    for (; i + 8 <= N; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        _mm256_storeu_ps(x + i, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, vsum);
    for (int k = 0; k < 8; k++) sum += lanes[k];
#endif
    for (; i < N; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    i = 0;
#ifdef HAVE_EXP8
    for (; i + 8 <= N; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(inv)));
#endif
    for (; i < N; i++) x[i] *= inv;
}

void dots_forward(float *out, const float *q, const float *rows, int row_stride, float scale, int L, int C) {
    for (int j = 0; j < L; j++) {
        const float *r = rows + (size_t)j * row_stride;
        int c = 0;
        float d = 0.0f;
#ifdef HAVE_AVX2
        __m256 acc = _mm256_setzero_ps();
        for (; c + 8 <= C; c += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + c), _mm256_loadu_ps(r + c), acc);
        d = hsum256(acc);
#endif
        for (; c < C; c++) d += q[c] * r[c];
        out[j] = d * scale;
    }
}

void weighted_sum_forward(float *out, const float *p, const float *rows, int row_stride, int L, int C) {
    memset(out, 0, (size_t)C * sizeof(float));
    for (int j = 0; j < L; j++) {
        const float *r = rows + (size_t)j * row_stride;
        int c = 0;
#ifdef HAVE_AVX2
        __m256 pj = _mm256_set1_ps(p[j]);
        for (; c + 8 <= C; c += 8)
            _mm256_storeu_ps(out + c, _mm256_fmadd_ps(pj, _mm256_loadu_ps(r + c), _mm256_loadu_ps(out + c)));
#endif
        for (; c < C; c++) out[c] += p[j] * r[c];
    }
}

void residual_forward(float *x, const float *y, long N) {
    for (long i = 0; i < N; i++) x[i] += y[i];
}
