/* The KV cache and multi-head causal attention (grouped-query: n_head query
 * heads share n_head_kv key/value heads). */
#ifndef TINYLLM_ATTENTION_H
#define TINYLLM_ATTENTION_H

#include <stddef.h>

#include "kernels.h"

typedef struct {
    float *k;   // (n_layer, n_ctx, kv_dim)
    float *v;   // (n_layer, n_ctx, kv_dim)
    int n_layer, n_ctx, kv_dim;
} kv_cache;

/* Query rows per attention block in prefill: small enough that the masked
 * triangle inside a diagonal block costs little, large enough for sgemm. */
#define ATTENTION_ROW_BLOCK 64

int build_kv_cache(kv_cache *c, int n_layer, int n_ctx, int kv_dim); /* 0 or -1 (no memory) */
void free_kv_cache(kv_cache *c);
float *kv_cache_k(const kv_cache *c, int layer); // (n_ctx, kv_dim)
float *kv_cache_v(const kv_cache *c, int layer); // (n_ctx, kv_dim)

/* Causal attention of T new tokens at positions pos0..pos0+T-1 against the
 * cache rows 0..pos0+T-1 (which already hold the new tokens' keys/values).
 *   out    (T, n_head * head_dim)   heads concatenated
 *   q      (T, n_head * head_dim)
 *   k, v   (n_ctx, n_head_kv * head_dim)
 *   scores (n_head, T, pos0 + T)   scaled, masked (-inf), pre-softmax
 *   probs  (n_head, T, pos0 + T)   softmax rows, 0 above the diagonal
 * head_stride is the distance between heads in scores/probs: T * (pos0 + T)
 * to keep every head (taps), or 0 to reuse one scratch of
 * (ATTENTION_ROW_BLOCK, pos0 + T) floats each for scores and probs.
 * T > 1 (prefill): per head and block of ATTENTION_ROW_BLOCK rows, one sgemm
 * for Q_h @ K_g^T / sqrt(head_dim) over the keys the block can see and one
 * for P @ V_g; T == 1 (decode): dot products against the cache.
 * Only heads [h0, h1) are computed, so threads can split the heads; with
 * head_stride 0 each thread passes its own scratch. ops: the kernel set. */
void attention_forward(const kernel_ops *ops, float *out, float *scores, float *probs, size_t head_stride, const float *q, const float *k,
                       const float *v, int T, int pos0, int n_head, int n_head_kv, int head_dim, int h0, int h1);

/* Deliberate bugs for proving that `tinyllm verify` catches them. Compiled
 * in only with -DTINYLLM_FAULT_INJECTION; chosen by the TINYLLM_FAULT
 * environment variable when a context is created (two are attention's own,
 * so the list lives here, below the context that picks one). */
enum fault_kind { FAULT_NONE = 0, FAULT_MASK_AFTER_SOFTMAX, FAULT_ROPE_WRONG_PAIRS, FAULT_SOFTMAX_NO_MAX, FAULT_SKIP_LAYER };

#ifdef TINYLLM_FAULT_INJECTION
/* attention_forward with a deliberate bug (one of enum fault_kind). */
void attention_forward_faulty(const kernel_ops *ops, float *out, float *scores, float *probs, size_t head_stride, const float *q,
                              const float *k, const float *v, int T, int pos0, int n_head, int n_head_kv,
                              int head_dim, int fault);
#endif

#endif
