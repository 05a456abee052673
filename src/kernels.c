#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"

/* ------------------------------------------------ kernel selection -- */
/* One table per instruction set, compiled from kernels_isa.c. x86-64 builds
 * have all five; a build for another architecture has the scalar one. */
extern const kernel_ops kernel_ops_scalar;
#if defined(__x86_64__) && !defined(TINYLLM_SCALAR_ONLY)
extern const kernel_ops kernel_ops_avx2, kernel_ops_avx512, kernel_ops_avx512vnni, kernel_ops_avx512bf16;
#define HAVE_X86_SETS 1
#endif

typedef struct {
    const kernel_ops *ops;
    int (*cpu_has)(void);
} kernel_set;

#ifdef HAVE_X86_SETS
#include <cpuid.h>

/* The CPU's features from CPUID, and whether the OS saves the registers they
 * use (XCR0: the YMM state for AVX, the ZMM/mask state for AVX-512). */
typedef struct {
    int avx2_fma_f16c, avx512, avx512vnni, avx512bf16;
} cpu_features;

static cpu_features cpu_detect(void) {
    cpu_features f = {0, 0, 0, 0};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c >> 27 & 1)) return f; /* no OSXSAVE: no AVX state */
    int fma = c >> 12 & 1, avx = c >> 28 & 1, f16c = c >> 29 & 1;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    uint64_t xcr0 = (uint64_t)hi << 32 | lo;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    int avx2 = b >> 5 & 1, avx512f = b >> 16 & 1, avx512dq = b >> 17 & 1;
    f.avx2_fma_f16c = avx && avx2 && fma && f16c && (xcr0 & 0x6) == 0x6;
    f.avx512 = f.avx2_fma_f16c && avx512f && avx512dq && (xcr0 & 0xe6) == 0xe6;
    /* the 256-bit vpdpbusd needs AVX512VL too (all of x86-64-v4) */
    f.avx512vnni = f.avx512 && (b >> 31 & 1) && (b >> 30 & 1) && (b >> 28 & 1) && (c >> 11 & 1);
    /* vdpbf16ps: leaf 7, sub-leaf 1, EAX bit 5 */
    f.avx512bf16 = f.avx512vnni && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 5 & 1);
    return f;
}
static int cpu_has_avx512bf16(void) { return cpu_detect().avx512bf16; }
static int cpu_has_avx512vnni(void) { return cpu_detect().avx512vnni; }
static int cpu_has_avx512(void) { return cpu_detect().avx512; }
static int cpu_has_avx2(void) { return cpu_detect().avx2_fma_f16c; }
#endif
static int cpu_has_any(void) { return 1; }

/* widest first: the first one the CPU has is the default */
static const kernel_set KERNEL_SETS[] = {
#ifdef HAVE_X86_SETS
    {&kernel_ops_avx512bf16, cpu_has_avx512bf16},
    {&kernel_ops_avx512vnni, cpu_has_avx512vnni},
    {&kernel_ops_avx512, cpu_has_avx512},
    {&kernel_ops_avx2, cpu_has_avx2},
#endif
    {&kernel_ops_scalar, cpu_has_any},
};
#define N_KERNEL_SETS ((int)(sizeof KERNEL_SETS / sizeof KERNEL_SETS[0]))

const char *kernels_built(int i) { return i >= 0 && i < N_KERNEL_SETS ? KERNEL_SETS[i].ops->name : NULL; }

const kernel_ops *kernels_named(const char *name) {
    for (int i = 0; name && i < N_KERNEL_SETS; i++)
        if (strcmp(KERNEL_SETS[i].ops->name, name) == 0) return KERNEL_SETS[i].cpu_has() ? KERNEL_SETS[i].ops : NULL;
    return NULL;
}

const kernel_ops *kernels_select(void) {
    const kernel_ops *forced = kernels_named(getenv("TINYLLM_ISA"));
    if (forced) return forced;
    for (int i = 0; i < N_KERNEL_SETS; i++)
        if (KERNEL_SETS[i].cpu_has()) return KERNEL_SETS[i].ops;
    return &kernel_ops_scalar;
}

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

/* A kernel set's entry for a format in one of its per-format tables, or
 * the scalar set's (the plain definitions) where it has none; NULL when
 * neither has one (the format's own definition runs). */
#define KERNEL_FOR(k, table, type) ((k)->table[type] ? (k)->table[type] : kernel_ops_scalar.table[type])

void matrix_rows(const kernel_ops *k, float *dst, matrix w, long C, size_t row0, long n_rows) {
    const weight_format *f = weight_format_of(w.type);
    if (f->layout_rows) { /* rows interleaved: not a contiguous run of values */
        f->layout_rows(dst, w.data, C, row0, n_rows);
        return;
    }
    const void *src = (const char *)w.data + weight_bytes(w.type, row0 * (size_t)C);
    long n = n_rows * C;
    to_f32_fn convert = KERNEL_FOR(k, to_f32, w.type);
    if (convert)
        convert(dst, src, n);
    else if (f->decode)
        dequantize_blocks(f->decode, f->block, f->block_bytes, dst, src, n);
    else
        f->to_f32(dst, src, n);
}

/* The values that share one activation scale in a block format's products:
 * 256 for the K-quants (as llama.cpp's Q8_K), else 32 */
static int act_group(const weight_format *f) { return f->block == QK_K ? QK_K : QK_LEGACY; }

/* Whether products of T rows with format f run as k's integer GEMM on
 * quantized activation rows: the 8-row layouts always; a block format as
 * stored in prefill where k has a GEMM for it (else its rows convert for
 * sgemm). */
static int runs_q8_gemm(const kernel_ops *k, const weight_format *f, int T) {
    return f->product == PRODUCT_Q8_GEMM ||
           (f->product == PRODUCT_Q8_DOTS && T > STREAM_MAX_ROWS && KERNEL_FOR(k, gemm, f->type));
}

int matmul_takes_q8_act(const kernel_ops *k, matrix w, int T) {
    return T > STREAM_MAX_ROWS && runs_q8_gemm(k, weight_format_of(w.type), T);
}

q8_act matmul_act_rows(void *buf, matrix w, int T, int C) {
    return q8_act_in(buf, T, C, act_group(weight_format_of(w.type)));
}

void matmul_quantize(const kernel_ops *k, const q8_act *x, const float *in, int in_stride, int t0, int t1) {
    k->quantize_q8_act(x, in, in_stride, t0, t1);
    if (x->group == QK_K) q8_act_sums16(x, t0, t1); /* the K-quants' offsets meet x's sums of 16 */
}

int matmul_quantizes(matrix w) { return weight_format_of(w.type)->product != PRODUCT_FLOAT; }

/* A quantized prefill's blocks: weight rows that stay in L2 (about 192 KiB)
 * meet chunks of activation rows that stay in L2 too (up to 64 rows, at
 * most 128 KiB), so each weight comes from memory once and each activation
 * chunk from L2 once per block. */
#define Q8_PREFILL_BLOCK_BYTES ((size_t)192 << 10)
#define Q8_PREFILL_CHUNK_BYTES ((size_t)128 << 10)

void matmul_q8_forward(const kernel_ops *k, float *out, const q8_act *x, matrix w, const float *bias, int T, int OC,
                       int o0, int o1) {
    gemm_q8_fn gemm = KERNEL_FOR(k, gemm, w.type);
    size_t row_bytes = weight_bytes(w.type, (size_t)x->C);
    int block = (int)(Q8_PREFILL_BLOCK_BYTES / row_bytes) & ~(X8_ROWS - 1);
    int chunk = (int)(Q8_PREFILL_CHUNK_BYTES / (size_t)x->C);
    if (block < X8_ROWS) block = X8_ROWS;
    if (T == 1) block = o1 - o0; /* decode: one stream the kernel can prefetch along */
    chunk = chunk < 8 ? 8 : chunk > 64 ? 64 : chunk;
    for (int b0 = o0; b0 < o1; b0 += block) {
        int b1 = b0 + block < o1 ? b0 + block : o1;
        for (int t0 = 0; t0 < T; t0 += chunk) gemm(out, x, w.data, bias, t0, t0 + chunk < T ? t0 + chunk : T, OC, b0, b1);
    }
}

/* out[:, o0:o1] (T, OC), T <= STREAM_MAX_ROWS, for a block format f: the
 * rows of in quantized once into qscratch (a q8_act), then each weight row
 * dotted with every activation row while it is in L1, by k's vector code
 * for f or else f's plain definition (quants.c). */
static void stream_blocks(const kernel_ops *k, const weight_format *f, float *out, const float *in, int in_stride,
                          const void *w, const float *bias, int T, int C, int OC, int o0, int o1, void *qscratch) {
    q8_act x = q8_act_in(qscratch, T, C, act_group(f));
    matmul_quantize(k, &x, in, in_stride, 0, T);
    size_t row_bytes = weight_bytes(f->type, (size_t)C);
    dot_q8_fn dot = KERNEL_FOR(k, dot_q8, f->type);
    for (int o = o0; o < o1; o++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)o * row_bytes;
        for (int t = 0; t < T; t++) {
            float s = dot ? dot(row, &x, t) : dot_blocks_q8(f->decode, f->block, f->block_bytes, row, &x, t);
            out[(size_t)t * OC + o] = s + (bias ? bias[o] : 0.0f);
        }
    }
}

void matmul_forward(const kernel_ops *k, float *out, const float *in, int in_stride, matrix w, const float *bias,
                    int T, int C, int OC, int o0, int o1, float *scratch, int scratch_rows) {
    if (o1 <= o0) return;
    const weight_format *f = weight_format_of(w.type);
    if (runs_q8_gemm(k, f, T)) {
        /* the activations quantized into scratch, as many rows at a time as
         * it holds (at least one) */
        size_t room = T <= STREAM_MAX_ROWS ? Q8_ACT_BYTES(T, C) : (size_t)scratch_rows * C * sizeof(float);
        int rows = (int)(room / Q8_ACT_BYTES(1, C));
        rows = rows < 1 ? 1 : rows;
        for (int t0 = 0; t0 < T; t0 += rows) {
            int n = T - t0 < rows ? T - t0 : rows;
            q8_act x = q8_act_in(scratch, n, C, act_group(f));
            matmul_quantize(k, &x, in + (size_t)t0 * in_stride, in_stride, 0, n);
            matmul_q8_forward(k, out + (size_t)t0 * OC, &x, w, bias, n, OC, o0, o1);
        }
        return;
    }
    if (T <= STREAM_MAX_ROWS && f->product == PRODUCT_Q8_DOTS) {
        stream_blocks(k, f, out, in, in_stride, w.data, bias, T, C, OC, o0, o1, scratch);
        return;
    }
    if (T <= STREAM_MAX_ROWS) {
        KERNEL_FOR(k, stream, w.type)(out, in, in_stride, w.data, bias, T, C, OC, o0, o1);
        return;
    }
    gemm_float_fn gemm_float = KERNEL_FOR(k, gemm_float, w.type);
    if (gemm_float && /* the set's own prefill for the format (BF16 with vdpbf16ps) */
        gemm_float(out, in, in_stride, w.data, bias, T, C, OC, o0, o1, scratch, (size_t)scratch_rows * C * sizeof(float)))
        return;
    if (w.type == GGML_TYPE_F32) {
        sgemm_columns(out, in, in_stride, (const float *)w.data + (size_t)o0 * C, bias, T, C, OC, o0, o1);
        return;
    }
    for (int c0 = o0; c0 < o1; c0 += scratch_rows) {
        int c1 = c0 + scratch_rows < o1 ? c0 + scratch_rows : o1;
        matrix_rows(k, scratch, w, C, (size_t)c0, c1 - c0); // (c1 - c0, C)
        sgemm_columns(out, in, in_stride, scratch, bias, T, C, OC, c0, c1);
    }
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
        for (int i = 0; i < C; i++) y[i] = (float)(x[i] - mean) * rstd * w[i] + (b ? b[i] : 0.0f);
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

void sinusoidal_table(float *out, int n_pos, int dim) {
    for (int p = 0; p < n_pos; p++)
        for (int i = 0; i < dim; i += 2) {
            double angle = p / pow(10000.0, (double)i / dim);
            out[(size_t)p * dim + i] = (float)sin(angle);
            if (i + 1 < dim) out[(size_t)p * dim + i + 1] = (float)cos(angle);
        }
}

void rope_halves_forward(float *x, int T, int row_stride, int n_heads, int head_dim, const float *cos,
                         const float *sin) {
    int half = head_dim / 2;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_heads; h++)
            for (int i = 0; i < half; i++) {
                float *p = x + (size_t)t * row_stride + h * head_dim, c = cos[t * half + i], s = sin[t * half + i];
                float a = p[i], b = p[i + half];
                p[i] = a * c - b * s;
                p[i + half] = a * s + b * c;
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

void residual_forward(float *x, const float *y, long N) {
    for (long i = 0; i < N; i++) x[i] += y[i];
}

void gelu_erf_forward(float *x, long N) {
    /* 1 + erf(z) is erfc(-z), which keeps its relative accuracy where
     * erf(z) approaches -1; in double the result is rounded once. Scalar on
     * purpose: N is the FFN width, small next to the product before it. */
    for (long i = 0; i < N; i++) x[i] = (float)(0.5 * x[i] * erfc(-(double)x[i] * M_SQRT1_2));
}
