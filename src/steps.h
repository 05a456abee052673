/* The forward pass's steps and the one helper that splits any of them over
 * the context's thread pool. A step names its op and operands; run_step
 * decides how many threads the work is worth and gives each thread its slice:
 * output columns for products, heads for attention, rows for the rest. The
 * ops themselves are the kernels (kernels.h, attention.h); forward.c is a
 * list of steps. */
#ifndef TINYLLM_STEPS_H
#define TINYLLM_STEPS_H

#include "context.h"

typedef enum {
    OP_NORM,      // out (T, dim) = norm(in) with w, b: the family's RMSNorm or LayerNorm
    OP_MATMUL,    // out (T, OC) = in (T, C; rows in_stride apart) @ w^T + b
    OP_SPLIT_QKV, // a fused q|k|v product in (T, dim + 2 kv_dim) -> out (q), k, v
    OP_ROPE,      // rotate q (out) and k (k) in place, positions from pos0
    OP_ATTENTION, // out (T, dim) = causal attention of q (in) over the cache k, v
    OP_GELU,      // out (T, C; rows out_stride apart) = gelu(out), in place
    OP_SWIGLU,    // out (gate rows) = silu(gate) * up (in), in place; rows out_stride / in_stride apart
    OP_ADD,       // out (T, dim) += in
    OP_QUANTIZE,  // the context's q8_rows (T, C) = in (T, C; rows in_stride apart) as 8-bit blocks (q8_act)
} op_kind;

typedef struct {
    op_kind op;
    float *out;
    const float *in;
    int out_stride, in_stride; // row strides in floats (0: packed)
    matrix w;                  // OP_MATMUL
    const float *norm_w, *b;   // OP_NORM weight and bias; OP_MATMUL bias
    float *k, *v;              // OP_SPLIT_QKV, OP_ROPE, OP_ATTENTION: this layer's cache rows
    int T, C, OC;              // tokens, input columns, output columns
    int pos0;                  // OP_ROPE, OP_ATTENTION: position of row 0
} step;

/* Runs one step on as many of the pool's threads as its size is worth. */
void run_step(tinyllm_context *ctx, const step *s);

#endif
