/* Layer operations, one function per op, every dimension explicit.
 * T = tokens (rows), C = channels (row length). All buffers row-major. */
#ifndef TINYLLM_KERNELS_H
#define TINYLLM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "formats.h" /* matrix, the weight formats; q8_act (quants.h) */
#include "gguf.h"      /* enum ggml_type */

/* Products of at most this many rows stream the weights once (decode, short
 * prompts); longer ones run as sgemm. */
#define STREAM_MAX_ROWS 8

/* Slots of the per-format tables of kernel_ops: every matrix type (the
 * GGUF types, enum ggml_type, and the engine's own layouts, formats.h) */
enum { KERNEL_TYPES = MATRIX_TYPES };

/* out[:, o0:o1] (T, OC) = in (T, C; rows in_stride apart) @ w (OC, C)^T
 * + bias (OC, may be NULL), for T <= STREAM_MAX_ROWS: each weight read
 * once (float formats: F16 or BF16 converted as they load) */
typedef void (*stream_fn)(float *out, const float *in, int in_stride, const void *w, const float *bias, int T, int C,
                          int OC, int o0, int o1);
/* one weight row in a block format . row t of the quantized activations x */
typedef float (*dot_q8_fn)(const void *row, const q8_act *x, int t);
/* out[t0:t1, o0:o1] (rows OC apart) = x's quantized rows [t0, t1) @ w^T
 * + bias (may be NULL): integer block dots, each group of weight rows
 * loaded once per tile of activation rows (up to 8). For the 8-row
 * layouts, o0 is a multiple of 8 (o1 too, or OC); formats as stored (the
 * K-quants' prefill) take any rows. */
typedef void (*gemm_q8_fn)(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                           int o0, int o1);
/* a gemm_q8_fn called `name`, declared or defined */
#define GEMM_Q8_FN(name)                                                                                             \
    void name(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC, int o0, int o1)

/* out[:, o0:o1] (T, OC) = in (T, C; rows in_stride apart) @ w (OC, C)^T +
 * bias (may be NULL) for a float format's prefill, with scratch_bytes of
 * scratch for the activations in its own form; 0 when that is too small
 * for one row (nothing done) */
typedef int (*gemm_float_fn)(float *out, const float *in, int in_stride, const void *w, const float *bias, int T,
                              int C, int OC, int o0, int o1, void *scratch, size_t scratch_bytes);

/* The kernels that have vector code, one table per instruction set: the
 * plain C definitions (kernels_generic.c, the "scalar" set) and the vector
 * sets (kernels_isa.c and dots_isa.c, compiled once per set). Every set
 * computes the same functions; only the order of the float additions differs. */
typedef struct kernel_ops {
    const char *name; /* "scalar", "avx2", "avx512", "avx512vnni", "avx512bf16" */
    /* Per matrix type (KERNEL_TYPES entries, indexed by the type), as the
     * format table's `product` says its products run (formats.h). NULL
     * where this set has no code of its own for the format: the scalar
     * set's entry runs, and where that is NULL too, the format's plain
     * definition (formats.h, quants.c). */
    const stream_fn *stream; /* PRODUCT_FLOAT formats */
    /* PRODUCT_Q8_DOTS formats (dots_isa.c): one weight row of x->C values
     * against row t of the quantized activations x: an integer sum per
     * (sub-)block, scaled once */
    const dot_q8_fn *dot_q8;
    /* PRODUCT_Q8_GEMM layouts, and PRODUCT_Q8_DOTS formats whose prefill
     * this set runs as an integer GEMM (else their rows convert for sgemm) */
    const gemm_q8_fn *gemm;
    /* PRODUCT_FLOAT formats whose prefill this set runs itself (else their
     * rows convert for sgemm): BF16 with vdpbf16ps, the activations rounded
     * to BF16 as llama.cpp rounds them (the avx512bf16 set) */
    const gemm_float_fn *gemm_float;
    /* rows of a contiguous format as F32, bit for bit the format's
     * definition (prefill converts weights for sgemm) */
    const to_f32_fn *to_f32;
    /* rows [t0, t1) of in (rows in_stride apart, C = x->C values) quantized
     * into x's rows [t0, t1) (see q8_act) */
    void (*quantize_q8_act)(const q8_act *x, const float *in, int in_stride, int t0, int t1);
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
    /* the n bytes at p (any address) folded by XOR: its n / 8 64-bit words
     * (native order) and then its last n % 8 bytes, each one. Memory read as
     * fast as this set's loads go, for decode's bandwidth bound
     * (tinyllm_context_read_weights). */
    uint64_t (*read_bytes)(const void *p, size_t n);
} kernel_ops;

/* The kernel set for this CPU: the widest it supports, or the one named by
 * the environment variable TINYLLM_ISA (scalar, avx2, avx512, avx512vnni, avx512bf16) when the CPU
 * supports that one (otherwise the variable is ignored). Never NULL. */
const kernel_ops *kernels_select(void);
/* The set called `name`, or NULL when it is unknown or this CPU lacks it. */
const kernel_ops *kernels_named(const char *name);
/* The names of the sets in this build, widest first: i = 0, 1, ... until
 * NULL (whether or not this CPU can run them). */
const char *kernels_built(int i);

/* dst (n_rows, C) = rows [row0, row0 + n_rows) of w (rows of C values) as
 * F32, exactly (any rows, the X8 layouts included: an embedding lookup),
 * with k's vector code where it has some for the format. */
void matrix_rows(const kernel_ops *k, float *dst, matrix w, long C, size_t row0, long n_rows);

/* out (T, OC) = in (T, C) @ w (OC, C)^T + bias (OC, may be NULL), for the
 * output columns [o0, o1) only (so threads can split a product by columns).
 * Rows of `in` are in_stride floats apart (C when packed). The way depends
 * on the format's `product` (formats.h):
 * - PRODUCT_Q8_GEMM (the 8-row layouts), and a longer product with a block
 *   format k has an integer GEMM for: the activations quantized, as many
 *   rows at a time as scratch holds (at least one), then matmul_q8_forward;
 * - T <= STREAM_MAX_ROWS: each weight read once, by k's stream kernel for
 *   the format (PRODUCT_FLOAT) or its block dot against the activations
 *   quantized into scratch, Q8_ACT_BYTES(T, C) bytes (PRODUCT_Q8_DOTS);
 * - longer: cblas_sgemm on the weights, F32 in place, any other format
 *   converted scratch_rows rows at a time into scratch (scratch_rows, C). */
void matmul_forward(const kernel_ops *k, float *out, const float *in, int in_stride, matrix w, const float *bias,
                    int T, int C, int OC, int o0, int o1, float *scratch, int scratch_rows);

/* Whether a product of T rows with w is better run as one quantization of
 * all its activation rows (matmul_quantize, which threads can split by
 * rows) followed by matmul_q8_forward (split by columns): prefill on the
 * repacked layouts, and on formats as stored where k has an integer GEMM
 * for them (the K-quants). */
int matmul_takes_q8_act(const kernel_ops *k, matrix w, int T);
/* The layout in buf (Q8_ACT_BYTES(T, C) bytes) of T activation rows
 * quantized as products with w take them (its group of values per scale) */
q8_act matmul_act_rows(void *buf, matrix w, int T, int C);
/* rows [t0, t1) of in quantized into x (matmul_act_rows), with the sums of
 * 16 where x's groups are the K-quants' */
void matmul_quantize(const kernel_ops *k, const q8_act *x, const float *in, int in_stride, int t0, int t1);
/* Whether products with w need scratch for quantized activations
 * (Q8_ACT_BYTES(T, C)) when T <= STREAM_MAX_ROWS */
int matmul_quantizes(matrix w);
/* out (T, OC) = x's T quantized rows @ w^T + bias, columns [o0, o1) only (o0
 * a multiple of 8), with k's integer GEMM for w's type (kernel_ops.gemm)
 * over blocks of weight rows and activation rows that fit L2. */
void matmul_q8_forward(const kernel_ops *k, float *out, const q8_act *x, matrix w, const float *bias, int T, int OC,
                       int o0, int o1);

#include "half.h"

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
/* The same rotation on the pairs (x[i], x[i + head_dim/2]) (GPT-NeoX's
 * "rotate half", as qwen2 files store q and k). */
void rope_halves_forward(float *x, int T, int row_stride, int n_heads, int head_dim, const float *cos,
                         const float *sin);

/* x (N) = GELU(x) = x / 2 * (1 + erf(x / sqrt 2)), the exact form (PyTorch's
 * nn.GELU() default, nanoGPT's), in place. */
void gelu_erf_forward(float *x, long N);

/* x (N) += y (N). */
void residual_forward(float *x, const float *y, long N);

#endif
