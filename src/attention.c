#include "attention.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

int build_kv_cache(kv_cache *c, int n_layer, int n_ctx, int kv_dim) {
    size_t n = (size_t)n_layer * n_ctx * kv_dim;
    c->k = calloc(n, sizeof(float));
    c->v = calloc(n, sizeof(float));
    c->n_layer = n_layer;
    c->n_ctx = n_ctx;
    c->kv_dim = kv_dim;
    if (!c->k || !c->v) {
        free_kv_cache(c);
        return -1;
    }
    return 0;
}

void free_kv_cache(kv_cache *c) {
    free(c->k);
    free(c->v);
    c->k = c->v = NULL;
}

float *kv_cache_k(const kv_cache *c, int layer) { return c->k + (size_t)layer * c->n_ctx * c->kv_dim; }
float *kv_cache_v(const kv_cache *c, int layer) { return c->v + (size_t)layer * c->n_ctx * c->kv_dim; }

attention_rule attention_rule_for(int head_dim, const tinyllm_experiments *e) {
    attention_rule r = {1.0f / sqrtf((float)head_dim), ATT_MASK_CAUSAL, 0};
    unsigned f = e ? e->flags : 0;
    if (f & TINYLLM_EXP_NO_SCALE) r.scale = 1.0f;
    if (f & TINYLLM_EXP_ATTN_SCALE) r.scale = e->attn_scale;
    if (f & TINYLLM_EXP_NO_MASK) r.mask = ATT_MASK_NONE;
    if (f & TINYLLM_EXP_MASK_AFTER_SOFTMAX) r.mask = ATT_MASK_AFTER_SOFTMAX;
    r.naive_softmax = (f & TINYLLM_EXP_NAIVE_SOFTMAX) != 0;
    return r;
}

/* p (n) = softmax(p): the kernel's (the row's max subtracted first), or the
 * naive exp(s) / sum exp(s) an experiment asks for, which overflows. */
static void softmax_row(const kernel_ops *ops, float *p, int n, int naive) {
    if (!naive) {
        ops->softmax(p, n);
        return;
    }
    double sum = 0;
    for (int j = 0; j < n; j++) sum += (p[j] = expf(p[j]));
    for (int j = 0; j < n; j++) p[j] = (float)(p[j] / sum);
}

/* One new token against L cached keys (decode): no BLAS call overhead. Its
 * keys are all in the past, so the mask rules change nothing here. */
static void attention_one(const kernel_ops *ops, const attention_rule *rule, float *out, float *scores, float *probs,
                          size_t head_stride, const float *q, const float *k, const float *v, int L, int n_head,
                          int n_head_kv, int head_dim, int h0, int h1) {
    int kv_dim = n_head_kv * head_dim, group = n_head / n_head_kv;
    for (int h = h0; h < h1; h++) {
        int g = h / group;
        const float *qh = q + h * head_dim;
        float *S = scores + h * head_stride, *P = probs + h * head_stride, *o = out + h * head_dim; // (L), (L), (hd)
        ops->dots(S, qh, k + g * head_dim, kv_dim, rule->scale, L, head_dim);
        memcpy(P, S, (size_t)L * sizeof(float));
        softmax_row(ops, P, L, rule->naive_softmax);
        ops->weighted_sum(o, P, v + g * head_dim, kv_dim, L, head_dim);
    }
}

void attention_forward(const kernel_ops *ops, const attention_rule *rule, float *out, float *scores, float *probs,
                       size_t head_stride, const float *q, const float *k, const float *v, int T, int pos0,
                       int n_head, int n_head_kv, int head_dim, int h0, int h1) {
    int L = pos0 + T; /* visible keys for the last new token */
    if (T == 1) {
        attention_one(ops, rule, out, scores, probs, head_stride, q, k, v, L, n_head, n_head_kv, head_dim, h0, h1);
        return;
    }
    int dim = n_head * head_dim, kv_dim = n_head_kv * head_dim, group = n_head / n_head_kv;
    int causal = rule->mask == ATT_MASK_CAUSAL; /* else every row scores every key of the batch */
    for (int h = h0; h < h1; h++) {
        int g = h / group;
        /* Rows in blocks: block [t0, t1) sees keys 0..pos0+t1-1 only, so the
         * products skip the masked upper triangle except inside the block. */
        for (int t0 = 0; t0 < T; t0 += ATTENTION_ROW_BLOCK) {
            int t1 = t0 + ATTENTION_ROW_BLOCK < T ? t0 + ATTENTION_ROW_BLOCK : T, rows = t1 - t0;
            int Lb = causal ? pos0 + t1 : L; /* keys this block can see */
            int ld = head_stride ? L : Lb;   /* taps keep whole (T, L) heads */
            float *S = head_stride ? scores + h * head_stride + (size_t)t0 * L : scores; // (rows, Lb), rows ld apart
            float *P = head_stride ? probs + h * head_stride + (size_t)t0 * L : probs;   // same
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, Lb, head_dim, rule->scale,
                        q + (size_t)t0 * dim + h * head_dim, dim, k + g * head_dim, kv_dim, 0.0f, S, ld);
            for (int t = t0; t < t1; t++) {
                int past = pos0 + t + 1, visible = causal ? past : L; /* the causal mask, before softmax */
                float *srow = S + (size_t)(t - t0) * ld, *prow = P + (size_t)(t - t0) * ld;
                for (int j = visible; j < ld; j++) srow[j] = -INFINITY;
                memcpy(prow, srow, (size_t)visible * sizeof(float));
                softmax_row(ops, prow, visible, rule->naive_softmax);
                /* masked keys weigh 0; mask-after-softmax zeroes the future only now */
                int from = rule->mask == ATT_MASK_AFTER_SOFTMAX ? past : visible;
                memset(prow + from, 0, (size_t)(ld - from) * sizeof(float));
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, head_dim, Lb, 1.0f, P, ld,
                        v + g * head_dim, kv_dim, 0.0f, out + (size_t)t0 * dim + h * head_dim, dim);
        }
    }
}

void attention_apply_probs(const kernel_ops *ops, float *out, const float *probs, const float *v, int T, int pos0,
                           int n_head, int n_head_kv, int head_dim, int h0, int h1) {
    int L = pos0 + T, dim = n_head * head_dim, kv_dim = n_head_kv * head_dim, group = n_head / n_head_kv;
    for (int h = h0; h < h1; h++)
        for (int t = 0; t < T; t++) /* every key: the written rows may reach past the diagonal */
            ops->weighted_sum(out + (size_t)t * dim + h * head_dim, probs + ((size_t)h * T + t) * L,
                              v + (h / group) * head_dim, kv_dim, L, head_dim);
}
