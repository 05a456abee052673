/* The forward pass's steps: one function per op with explicit dimensions,
 * each split over the context's thread pool by one generic parallel-for
 * (steps.c): products by output columns, attention by heads, the rest by
 * rows. A step decides how many threads its size is worth; the arithmetic
 * is in the kernels (kernels.h, attention.h). forward.c is a list of them. */
#ifndef TINYLLM_STEPS_H
#define TINYLLM_STEPS_H

#include "context.h"

/* out (T, dim) = the family's norm (RMSNorm or LayerNorm) of in (T, dim) with weight w, bias b */
void step_norm(tinyllm_context *ctx, float *out, const float *in, const float *w, const float *b, int T);

/* The context's activation rows (q8_rows) = in (T, C; rows in_stride apart)
 * as 8-bit blocks, as the product with w that follows takes them, once for
 * every thread of it (only for products that take them: matmul_takes_q8_act). */
void step_quantize(tinyllm_context *ctx, const float *in, int in_stride, matrix w, int T, int C);

/* out (T, OC) = in (T, C; rows in_stride apart) @ w^T + b; from the
 * quantized rows of step_quantize when w takes them. */
void step_matmul(tinyllm_context *ctx, float *out, const float *in, int in_stride, matrix w, const float *b, int T,
                 int C, int OC);

/* q (T, dim), k and v (T, kv_dim) = the columns of a fused q|k|v product in (T, dim + 2 kv_dim) */
void step_split_qkv(tinyllm_context *ctx, float *q, float *k, float *v, const float *in, int T);

/* q (T, dim) and k (T, kv_dim) rotated in place, positions pos0.. (the context's rope: the family's pairs) */
void step_rope(tinyllm_context *ctx, float *q, float *k, int T, int pos0);

/* out (T, dim) = causal attention of q (T, dim) over the cache's first
 * pos0 + T rows kc, vc (n_ctx, kv_dim) for layer l; heads ablated in l give zeros. */
void step_attention(tinyllm_context *ctx, int l, float *out, const float *q, const float *kc, const float *vc, int T,
                    int pos0);

/* out (T, dim) = the context's probabilities (n_head, T, pos0 + T) @ vc per
 * head: attention's second half again, after a hook wrote them. */
void step_attention_from_probs(tinyllm_context *ctx, int l, float *out, const float *vc, int T, int pos0);

/* x (T, C; rows stride apart) = gelu(x) in place (the family's: tanh or exact) */
void step_gelu(tinyllm_context *ctx, float *x, int stride, int T, int C);

/* gate (T, C; rows gate_stride apart) = silu(gate) * up (T, C; rows up_stride apart) in place */
void step_swiglu(tinyllm_context *ctx, float *gate, int gate_stride, const float *up, int up_stride, int T, int C);

/* x (T, dim) += y (T, dim) */
void step_add(tinyllm_context *ctx, float *x, const float *y, int T);

#endif
