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

/* How attention is computed: the model's rule, or an experiment's change
 * (tinyllm_experiments in tinyllm.h). */
enum attention_mask { ATT_MASK_CAUSAL, ATT_MASK_NONE, ATT_MASK_AFTER_SOFTMAX };
typedef struct {
    float scale;        /* scores = scale * q.k: 1/sqrt(head_dim) */
    int mask;           /* enum attention_mask: causal (before softmax) */
    int naive_softmax;  /* exp without subtracting the row's max */
} attention_rule;

/* The rule for heads of head_dim under experiments e (NULL: none). */
attention_rule attention_rule_for(int head_dim, const tinyllm_experiments *e);

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
 * for Q_h @ K_g^T * scale over the keys the block can see and one for
 * P @ V_g; T == 1 (decode): dot products against the cache. rule: the
 * scale, the mask and the softmax (the model's, or an experiment's; without
 * the causal mask a prefill row sees every key of its batch).
 * Only heads [h0, h1) are computed, so threads can split the heads; with
 * head_stride 0 each thread passes its own scratch. ops: the kernel set. */
void attention_forward(const kernel_ops *ops, const attention_rule *rule, float *out, float *scores, float *probs,
                       size_t head_stride, const float *q, const float *k, const float *v, int T, int pos0,
                       int n_head, int n_head_kv, int head_dim, int h0, int h1);

/* out (T, n_head * head_dim) = probs (n_head, T, pos0 + T) @ v per head,
 * heads [h0, h1) only: attention's second half again, from probabilities a
 * hook wrote. */
void attention_apply_probs(const kernel_ops *ops, float *out, const float *probs, const float *v, int T, int pos0,
                           int n_head, int n_head_kv, int head_dim, int h0, int h1);

#endif
