/* Layer operations, one function per op, every dimension explicit.
 * T = tokens (rows), C = channels (row length). All buffers row-major. */
#ifndef TINYLLM_KERNELS_H
#define TINYLLM_KERNELS_H

#include <stdint.h>

/* Products of at most this many rows stream the weights once (decode, short
 * prompts); longer ones run as sgemm. */
#define STREAM_MAX_ROWS 8

/* The kernels that have vector code, one table per instruction set
 * (kernels_isa.c, compiled once per set). Every set computes the same
 * functions; only the order of the float additions differs. */
typedef struct kernel_ops {
    const char *name; /* "scalar", "avx2", "avx512" */
    /* dst (n) = the F16 values src (n) as F32 (exact) */
    void (*f16_to_f32_row)(float *dst, const uint16_t *src, long n);
    /* out[:, o0:o1] (T, OC) = in (T, C; rows in_stride apart) @ w (OC, C)^T
     * + bias (OC, may be NULL), for T <= STREAM_MAX_ROWS: each weight read
     * once (F32 weights, or F16 converted as they load) */
    void (*stream_f32)(float *out, const float *in, int in_stride, const float *w, const float *bias, int T, int C,
                       int OC, int o0, int o1);
    void (*stream_f16)(float *out, const float *in, int in_stride, const uint16_t *w, const float *bias, int T,
                       int C, int OC, int o0, int o1);
    /* x (N) = GELU(x), tanh approximation (GPT-2's), in place */
    void (*gelu)(float *x, long N);
    /* gate (N) = silu(gate) * up (SwiGLU), in place on gate */
    void (*swiglu)(float *gate, const float *up, long N);
    /* softmax of x (N) in place, the row maximum subtracted first */
    void (*softmax)(float *x, int N);
    /* out[j] = scale * (q . rows[j]) for j < L: q (C), rows L vectors of C
     * floats, row_stride apart (one query against the cached keys) */
    void (*dots)(float *out, const float *q, const float *rows, int row_stride, float scale, int L, int C);
    /* out (C) = sum over j < L of p[j] * rows[j] (rows as above: the values) */
    void (*weighted_sum)(float *out, const float *p, const float *rows, int row_stride, int L, int C);
} kernel_ops;

/* The kernel set for this CPU: the widest it supports, or the one named by
 * the environment variable TINYLLM_ISA (scalar, avx2, avx512) when the CPU
 * supports that one (otherwise the variable is ignored). Never NULL. */
const kernel_ops *kernels_select(void);
/* The set called `name`, or NULL when it is unknown or this CPU lacks it. */
const kernel_ops *kernels_named(const char *name);
/* The names of the sets in this build, widest first: i = 0, 1, ... until
 * NULL (whether or not this CPU can run them). */
const char *kernels_built(int i);

/* out (T, OC) = in (T, C) @ w (OC, C)^T + bias (OC, may be NULL), for the
 * output columns [o0, o1) only (so threads can split a product by columns).
 * Rows of `in` are in_stride floats apart (C when packed).
 * T > STREAM_MAX_ROWS: one cblas_sgemm (the prefill path); otherwise k's
 * streaming kernel. */
void matmul_forward(const kernel_ops *k, float *out, const float *in, int in_stride, const float *w,
                    const float *bias, int T, int C, int OC, int o0, int o1);

/* F16 weights kept as stored (keep_f16): the same products, each weight
 * converted on the fly. Decode reads half the bytes; prefill converts
 * conv_rows rows at a time into conv (conv_rows, C) and runs sgemm on them. */
float f16_to_f32(uint16_t h);
void matmul_f16_forward(const kernel_ops *k, float *out, const float *in, int in_stride, const uint16_t *w,
                        const float *bias, int T, int C, int OC, int o0, int o1, float *conv, int conv_rows);

/* out (T, C) = in / rms(in) * w, per row. */
void rmsnorm_forward(float *out, const float *in, const float *w, int T, int C, float eps);

/* out (T, C) = (in - mean) / sqrt(var + eps) * w + b, per row. */
void layernorm_forward(float *out, const float *in, const float *w, const float *b, int T, int C, float eps);

/* The rotation table: cos/sin (n_pos, head_dim / 2) of angle
 * pos * theta^(-2i / head_dim) for pair i. */
void rope_table(float *cos_out, float *sin_out, int n_pos, int head_dim, float theta);

/* The original Transformer's sinusoidal positions, out (n_pos, dim):
 * out[p, 2i] = sin(p / 10000^(2i / dim)), out[p, 2i + 1] = cos(same). */
void sinusoidal_table(float *out, int n_pos, int dim);

/* Rotary position embedding on x (T, n_heads * head_dim), in place: for each
 * head, the pair (x[2i], x[2i+1]) of row t is rotated by the angle in row t of
 * cos/sin (T, head_dim / 2) (the table's rows from position pos0 on).
 * row_stride is the distance between rows of x. */
void rope_forward(float *x, int T, int row_stride, int n_heads, int head_dim, const float *cos, const float *sin);
typedef void (*rope_fn)(float *x, int T, int row_stride, int n_heads, int head_dim, const float *cos,
                        const float *sin);
#ifdef TINYLLM_FAULT_INJECTION
/* rope_forward with a bug: rotates (x[i], x[i + d/2]) instead of adjacent pairs */
void rope_wrong_pairs(float *x, int T, int row_stride, int n_heads, int head_dim, const float *cos, const float *sin);
#endif

/* x (N) = GELU(x) = x / 2 * (1 + erf(x / sqrt 2)), the exact form (PyTorch's
 * nn.GELU() default, nanoGPT's), in place. */
void gelu_erf_forward(float *x, long N);

/* x (N) += y (N). */
void residual_forward(float *x, const float *y, long N);

#endif
