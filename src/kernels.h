/* Layer operations, one function per op, every dimension explicit.
 * T = tokens (rows), C = channels (row length). All buffers row-major. */
#ifndef TINYLLM_KERNELS_H
#define TINYLLM_KERNELS_H

#include <stdint.h>

/* Products of at most this many rows stream the weights once (decode, short
 * prompts); longer ones run as sgemm. */
#define STREAM_MAX_ROWS 8

/* out (T, OC) = in (T, C) @ w (OC, C)^T + bias (OC, may be NULL), for the
 * output columns [o0, o1) only (so threads can split a product by columns).
 * Rows of `in` are in_stride floats apart (C when packed).
 * T > STREAM_MAX_ROWS: one cblas_sgemm (the prefill path); otherwise the
 * weights are streamed once per four rows (one forward stream over the rows,
 * a weight row reused from L1 for every input row). */
void matmul_forward(float *out, const float *in, int in_stride, const float *w, const float *bias, int T, int C, int OC,
                    int o0, int o1);

/* F16 weights kept as stored (keep_f16): the same products, each weight
 * converted on the fly (F16C). Decode reads half the bytes; prefill converts
 * conv_rows rows at a time into conv (conv_rows, C) and runs sgemm on them. */
float f16_to_f32(uint16_t h);
void f16_to_f32_row(float *dst, const uint16_t *src, long n);
void matmul_f16_forward(float *out, const float *in, int in_stride, const uint16_t *w, const float *bias, int T, int C,
                        int OC, int o0, int o1, float *conv, int conv_rows);

/* out (T, C) = in / rms(in) * w, per row. */
void rmsnorm_forward(float *out, const float *in, const float *w, int T, int C, float eps);

/* out (T, C) = (in - mean) / sqrt(var + eps) * w + b, per row. */
void layernorm_forward(float *out, const float *in, const float *w, const float *b, int T, int C, float eps);

/* x (N) = GELU(x), tanh approximation (GPT-2's). In place. */
void gelu_forward(float *x, long N);

/* gate (N) = silu(gate) * up (SwiGLU). In place on gate. */
void swiglu_forward(float *gate, const float *up, long N);

/* The rotation table: cos/sin (n_pos, head_dim / 2) of angle
 * pos * theta^(-2i / head_dim) for pair i. */
void rope_table(float *cos_out, float *sin_out, int n_pos, int head_dim, float theta);

/* Rotary position embedding on x (T, n_heads * head_dim), in place: for each
 * head, the pair (x[2i], x[2i+1]) of row t is rotated by the angle in row t of
 * cos/sin (T, head_dim / 2) (the table's rows from position pos0 on).
 * row_stride is the distance between rows of x. */
void rope_forward(float *x, int T, int row_stride, int n_heads, int head_dim, const float *cos, const float *sin);

/* Softmax of x (N) in place, the row maximum subtracted first. */
void softmax_forward(float *x, int N);

/* out[j] = scale * (q . rows[j]) for j < L: q (C), rows L vectors of C
 * floats, row_stride apart (one query against the cached keys). */
void dots_forward(float *out, const float *q, const float *rows, int row_stride, float scale, int L, int C);

/* out (C) = sum over j < L of p[j] * rows[j] (rows as above: the values). */
void weighted_sum_forward(float *out, const float *p, const float *rows, int row_stride, int L, int C);

/* x (N) += y (N). */
void residual_forward(float *x, const float *y, long N);

#endif
