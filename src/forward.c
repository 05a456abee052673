/* The forward pass, one function, top to bottom. Both families share it:
 * llama = RMSNorm, RoPE, GQA, SwiGLU; gpt2 = LayerNorm + bias, absolute
 * positions, fused QKV with bias, GELU MLP. TAP(...) hands intermediate
 * tensors to a listener (taps.h); it costs one branch when nobody listens. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "kernels.h"
#include "taps.h"

/* norm(out, in) for the family: RMSNorm (llama) or LayerNorm (gpt2). */
static void norm_forward(const tinyllm_model *m, float *out, const float *in, const float *w, const float *b, int T) {
    if (m->arch == ARCH_LLAMA)
        rmsnorm_forward(out, in, w, T, m->info.n_embd, m->info.norm_eps);
    else
        layernorm_forward(out, in, w, b, T, m->info.n_embd, m->info.norm_eps);
}

/* out[:, o0:o1] (T, OC) = in @ w^T + bias for either storage of w; conv is
 * this thread's (F16_CONV_ROWS, C) scratch for F16 weights in prefill. */
static void matrix_product(const tinyllm_model *m, float *out, const float *in, int in_stride, matrix w, const float *bias, int T, int C,
                           int OC, int o0, int o1, float *conv) {
    if (w.f16)
        matmul_f16_forward(m->kern, out, in, in_stride, w.f16, bias, T, C, OC, o0, o1, conv, F16_CONV_ROWS);
    else
        matmul_forward(m->kern, out, in, in_stride, w.f32, bias, T, C, OC, o0, o1);
}

tinyllm_status tinyllm_logit_lens(const tinyllm_model *m, const float *x, float *logits) {
    if (!m || !x || !logits) return TINYLLM_ERR_ARG;
    int dim = m->info.n_embd;
    float *xn = malloc((size_t)dim * sizeof *xn);
    if (!xn) return TINYLLM_ERR_NOMEM;
    norm_forward(m, xn, x, m->out_norm_w, m->out_norm_b, 1);
    matrix_product(m, logits, xn, dim, m->output, NULL, 1, dim, m->info.n_vocab, 0, m->info.n_vocab, NULL);
    free(xn);
    return TINYLLM_OK;
}

/* Below these sizes a product runs on one thread: waking the pool would cost
 * more than it saves (a sleeping worker takes tens of microseconds to wake).
 * Decode and short prompts (T <= STREAM_MAX_ROWS) are bound by reading the
 * weights, so they split from 64K weights (256 KB) on; prefill is bound by
 * arithmetic and splits from 4M multiply-adds on. */
#define PARALLEL_MIN_WEIGHTS (1L << 16)
#define PARALLEL_MIN_WORK (1L << 22)

typedef struct {
    tinyllm_context *ctx;
    float *out;
    const float *in, *bias;
    matrix w;
    int in_stride, T, C, OC;
} matmul_job;

static void matmul_part(void *arg, int ith, int nth) {
    const matmul_job *j = arg;
    int chunk = ((j->OC + nth - 1) / nth + 15) & ~15; /* whole cache lines of output */
    int o0 = ith * chunk, o1 = o0 + chunk < j->OC ? o0 + chunk : j->OC;
    /* the conversion scratch exists only for models with F16 matrices */
    float *conv = j->w.f16 && j->T > 1 ? j->ctx->f16_conv + (size_t)ith * F16_CONV_ROWS * j->ctx->f16_conv_cols : NULL;
    matrix_product(j->ctx->model, j->out, j->in, j->in_stride, j->w, j->bias, j->T, j->C, j->OC, o0, o1, conv);
}

/* out (T, OC) = in (T, C; rows in_stride apart) @ w (OC, C)^T + bias, split
 * by columns over the pool. */
static void matmul_strided(tinyllm_context *ctx, float *out, const float *in, int in_stride, matrix w,
                           const float *bias, int T, int C, int OC) {
    matmul_job j = {ctx, out, in, bias, w, in_stride, T, C, OC};
    int small = T <= STREAM_MAX_ROWS ? (long)C * OC < PARALLEL_MIN_WEIGHTS : (long)T * C * OC < PARALLEL_MIN_WORK;
    thread_pool_run(ctx->pool, matmul_part, &j, small ? 1 : thread_pool_size(ctx->pool));
}

static void matmul(tinyllm_context *ctx, float *out, const float *in, matrix w, const float *bias, int T, int C,
                   int OC) {
    matmul_strided(ctx, out, in, C, w, bias, T, C, OC);
}

typedef struct {
    tinyllm_context *ctx;
    const float *k, *v;
    int T, pos0;
    size_t head_stride;
} attention_job;

/* Heads split over the pool; with one shared scratch per thread unless the
 * taps keep every head. */
static void attention_part(void *arg, int ith, int nth) {
    const attention_job *j = arg;
    const tinyllm_model_info *h = &j->ctx->model->info;
    int per = (h->n_head + nth - 1) / nth, h0 = ith * per, h1 = h0 + per < h->n_head ? h0 + per : h->n_head;
    size_t scratch = j->head_stride ? 0 : (size_t)ith * j->ctx->att_scratch;
    if (h0 < h1)
        attention_forward(j->ctx->model->kern, j->ctx->att_out, j->ctx->scores + scratch, j->ctx->probs + scratch, j->head_stride,
                          j->ctx->q, j->k, j->v, j->T, j->pos0, h->n_head, h->n_head_kv, h->head_dim, h0, h1);
}

static void attention(tinyllm_context *ctx, const float *k, const float *v, int T, int pos0) {
    attention_job j = {ctx, k, v, T, pos0, ctx->att_all_heads ? (size_t)T * (pos0 + T) : 0};
    /* decode streams the cached keys and values (bound by reading them, like
     * a matrix-vector product); prefill is bound by arithmetic */
    int small = T == 1 ? 2L * (pos0 + T) * ctx->model->kv_dim < PARALLEL_MIN_WEIGHTS
                       : (long)T * (pos0 + T) * ctx->model->info.n_embd < PARALLEL_MIN_WORK;
    int nth = small ? 1 : thread_pool_size(ctx->pool);
    thread_pool_run(ctx->pool, attention_part, &j, nth);
}

/* Row-wise work (norms, residual adds, splitting q|k|v, RoPE) split over the
 * pool by rows; a single decode row stays on the calling thread. */
typedef void (*rows_fn)(tinyllm_context *ctx, void *arg, int t0, int t1);

typedef struct {
    tinyllm_context *ctx;
    rows_fn fn;
    void *arg;
    int T;
} rows_job;

static void rows_part(void *arg, int ith, int nth) {
    const rows_job *j = arg;
    int per = (j->T + nth - 1) / nth, t0 = ith * per, t1 = t0 + per < j->T ? t0 + per : j->T;
    if (t0 < t1) j->fn(j->ctx, j->arg, t0, t1);
}

static void parallel_rows(tinyllm_context *ctx, rows_fn fn, void *arg, int T) {
    rows_job j = {ctx, fn, arg, T};
    int small = (long)T * ctx->model->info.n_embd < PARALLEL_MIN_WORK / 64;
    thread_pool_run(ctx->pool, rows_part, &j, small ? 1 : thread_pool_size(ctx->pool));
}

/* The feed-forward activation on rows [t0, t1) of this call's tokens, in
 * place in hb: GELU, or SwiGLU into the gate half of each fused gate|up row
 * (or, unfused, gate rows at hb and up rows at hb + n_batch * ff). */
static void activation_rows(tinyllm_context *ctx, void *arg, int t0, int t1) {
    const layer_weights *w = arg;
    int ff = ctx->model->info.n_ff;
    if (ctx->model->arch != ARCH_LLAMA) {
        ctx->model->kern->gelu(ctx->hb + (size_t)t0 * ff, (long)(t1 - t0) * ff);
    } else if (w->gate_up_adjacent) {
        for (int t = t0; t < t1; t++) {
            float *row = ctx->hb + (size_t)t * 2 * ff; // gate | up
            ctx->model->kern->swiglu(row, row + ff, ff);
        }
    } else {
        float *up = ctx->hb + (size_t)ctx->n_batch * ff;
        ctx->model->kern->swiglu(ctx->hb + (size_t)t0 * ff, up + (size_t)t0 * ff, (long)(t1 - t0) * ff);
    }
}

/* SwiGLU or GELU on hb (T rows), in place */
static void activation(tinyllm_context *ctx, const layer_weights *w, int T) {
    parallel_rows(ctx, activation_rows, (void *)w, T);
}

typedef struct {
    float *out;
    const float *in, *w, *b;
} norm_args;

static void norm_rows(tinyllm_context *ctx, void *arg, int t0, int t1) {
    const norm_args *a = arg;
    size_t dim = (size_t)ctx->model->info.n_embd;
    norm_forward(ctx->model, a->out + t0 * dim, a->in + t0 * dim, a->w, a->b, t1 - t0);
}

/* out (T, dim) = norm(in (T, dim)) with weight w and bias b (gpt2) */
static void norm(tinyllm_context *ctx, float *out, const float *in, const float *w, const float *b, int T) {
    norm_args a = {out, in, w, b};
    parallel_rows(ctx, norm_rows, &a, T);
}

static void residual_rows(tinyllm_context *ctx, void *arg, int t0, int t1) {
    size_t dim = (size_t)ctx->model->info.n_embd;
    residual_forward(ctx->x + t0 * dim, (const float *)arg + t0 * dim, (long)(t1 - t0) * dim);
}

/* x (T, dim) += y (T, dim) */
static void residual(tinyllm_context *ctx, const float *y, int T) { parallel_rows(ctx, residual_rows, (void *)y, T); }

#ifdef TINYLLM_FAULT_INJECTION
/* bug: rotate (x[i], x[i + d/2]) instead of adjacent pairs */
static void rope_wrong_pairs(float *x, int T, int stride, int n_heads, int hd, const float *cos, const float *sin) {
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_heads; h++)
            for (int i = 0; i < hd / 2; i++) {
                float *p = x + (size_t)t * stride + h * hd, c = cos[t * (hd / 2) + i], s = sin[t * (hd / 2) + i];
                float a = p[i], b = p[i + hd / 2];
                p[i] = a * c - b * s;
                p[i + hd / 2] = a * s + b * c;
            }
}
#define ROPE(ctx, ...) ((ctx)->fault == FAULT_ROPE_WRONG_PAIRS ? rope_wrong_pairs(__VA_ARGS__) : rope_forward(__VA_ARGS__))
#define ATTENTION(ctx, k, v, T, pos0)                                                               \
    ((ctx)->fault == FAULT_MASK_AFTER_SOFTMAX || (ctx)->fault == FAULT_SOFTMAX_NO_MAX                \
         ? attention_forward_faulty((ctx)->model->kern, (ctx)->att_out, (ctx)->scores, (ctx)->probs,                     \
                                    (ctx)->att_all_heads ? (size_t)(T) * ((pos0) + (T)) : 0, (ctx)->q, \
                                    k, v, T, pos0, H, h->n_head_kv, hd, (ctx)->fault)                 \
         : attention(ctx, k, v, T, pos0))
#define SKIP_LAYER(ctx, l) ((ctx)->fault == FAULT_SKIP_LAYER && (l) == 1)
#else
#define ROPE(ctx, ...) rope_forward(__VA_ARGS__)
#define ATTENTION(ctx, k, v, T, pos0) attention(ctx, k, v, T, pos0)
#define SKIP_LAYER(ctx, l) 0
#endif

typedef struct {
    float *k_new, *v_new;      // (T, kv_dim) this call's rows of the cache
    const float *cos, *sin;    // (T, head_dim / 2) from position pos0
    int fused;                 // q|k|v came as one product in ctx->qkv
} qkv_args;

/* Rows [t0, t1): a fused q|k|v product split into q and the cache, then
 * RoPE on q and k (llama). */
static void qkv_rows(tinyllm_context *ctx, void *arg, int t0, int t1) {
    const qkv_args *a = arg;
    const tinyllm_model *m = ctx->model;
    int dim = m->info.n_embd, kv_dim = m->kv_dim, hd = m->info.head_dim, qkv_dim = dim + 2 * kv_dim;
    for (int t = t0; a->fused && t < t1; t++) {
        const float *row = ctx->qkv + (size_t)t * qkv_dim;
        memcpy(ctx->q + (size_t)t * dim, row, (size_t)dim * sizeof(float));
        memcpy(a->k_new + (size_t)t * kv_dim, row + dim, (size_t)kv_dim * sizeof(float));
        memcpy(a->v_new + (size_t)t * kv_dim, row + dim + kv_dim, (size_t)kv_dim * sizeof(float));
    }
    if (m->info.positions == TINYLLM_POS_ROPE) {
        const float *cos = a->cos + (size_t)t0 * (hd / 2), *sin = a->sin + (size_t)t0 * (hd / 2);
        ROPE(ctx, ctx->q + (size_t)t0 * dim, t1 - t0, dim, m->info.n_head, hd, cos, sin);
        ROPE(ctx, a->k_new + (size_t)t0 * kv_dim, t1 - t0, kv_dim, m->info.n_head_kv, hd, cos, sin);
    }
}

void forward(tinyllm_context *ctx, const int *tokens, int T, int logits_row0) {
    const tinyllm_model *m = ctx->model;
    const tinyllm_model_info *h = &m->info;
    int dim = h->n_embd, kv_dim = m->kv_dim, ff = h->n_ff, hd = h->head_dim, H = h->n_head;
    int pos0 = ctx->n_past, L = pos0 + T;
    float *x = ctx->x; // (T, dim)

    /* token embeddings (+ absolute positions for gpt2) */
    for (int t = 0; t < T; t++) {
        size_t row = (size_t)tokens[t] * dim;
        if (m->tok_embd.f16)
            m->kern->f16_to_f32_row(x + (size_t)t * dim, m->tok_embd.f16 + row, dim);
        else
            memcpy(x + (size_t)t * dim, m->tok_embd.f32 + row, (size_t)dim * sizeof(float));
    }
    TAP(ctx, TAP_EMBED, -1, pos0, x, 2, T, dim, 1);
    const float *positions = m->pos_embd ? m->pos_embd : ctx->pos_sin; // (n_ctx, dim): learned, or sinusoidal
    if (m->arch == ARCH_GPT2) {
        residual_forward(x, positions + (size_t)pos0 * dim, (long)T * dim);
        TAP(ctx, TAP_POS, -1, pos0, x, 2, T, dim, 1);
    }

    for (int l = 0; l < h->n_layer; l++) {
        if (SKIP_LAYER(ctx, l)) continue;
        const layer_weights *w = &m->layers[l];
        float *kc = kv_cache_k(&ctx->kv, l), *vc = kv_cache_v(&ctx->kv, l); // (n_ctx, kv_dim)
        float *k_new = kc + (size_t)pos0 * kv_dim, *v_new = vc + (size_t)pos0 * kv_dim; // (T, kv_dim)

        /* attention sublayer: keys and values go straight into the cache */
        norm(ctx, ctx->xb, x, w->attn_norm_w, w->attn_norm_b, T);
        TAP(ctx, TAP_ATTN_NORM, l, pos0, ctx->xb, 2, T, dim, 1);
        if (w->qkv_adjacent) { /* one product; rows are split into q and the cache below */
            matmul(ctx, ctx->qkv, ctx->xb, w->wq, w->bq, T, dim, dim + 2 * kv_dim); // (T, dim + 2 kv_dim)
        } else {
            matmul(ctx, ctx->q, ctx->xb, w->wq, w->bq, T, dim, dim);
            matmul(ctx, k_new, ctx->xb, w->wk, w->bk, T, dim, kv_dim);
            matmul(ctx, v_new, ctx->xb, w->wv, w->bv, T, dim, kv_dim);
        }
        int rope = h->positions == TINYLLM_POS_ROPE;
        qkv_args qa = {k_new, v_new, rope ? ctx->rope_cos + (size_t)pos0 * (hd / 2) : NULL,
                       rope ? ctx->rope_sin + (size_t)pos0 * (hd / 2) : NULL, w->qkv_adjacent};
        parallel_rows(ctx, qkv_rows, &qa, T);
        TAP(ctx, TAP_Q, l, pos0, ctx->q, 2, T, dim, 1);
        TAP(ctx, TAP_K, l, pos0, k_new, 2, T, kv_dim, 1);
        TAP(ctx, TAP_V, l, pos0, v_new, 2, T, kv_dim, 1);
        ATTENTION(ctx, kc, vc, T, pos0);
        for (int head = 0; head < H; head++) /* ablated heads contribute nothing */
            if (ctx->ablated[l * H + head])
                for (int t = 0; t < T; t++) memset(ctx->att_out + (size_t)t * dim + head * hd, 0, hd * sizeof(float));
        TAP(ctx, TAP_ATTN_SCORES, l, pos0, ctx->scores, 3, H, T, L);
        TAP(ctx, TAP_ATTN_PROBS, l, pos0, ctx->probs, 3, H, T, L);
        TAP(ctx, TAP_ATTN_OUT, l, pos0, ctx->att_out, 2, T, dim, 1);
        matmul(ctx, ctx->proj, ctx->att_out, w->wo, w->bo, T, dim, dim);
        TAP(ctx, TAP_ATTN_PROJ, l, pos0, ctx->proj, 2, T, dim, 1);
        residual(ctx, ctx->proj, T);
        TAP(ctx, TAP_RESID_ATTN, l, pos0, x, 2, T, dim, 1);

        /* feed-forward sublayer */
        norm(ctx, ctx->xb, x, w->ffn_norm_w, w->ffn_norm_b, T);
        TAP(ctx, TAP_FFN_NORM, l, pos0, ctx->xb, 2, T, dim, 1);
        int hidden_stride = ff; // hb holds the hidden state (T, ff), rows this far apart
        if (m->arch == ARCH_LLAMA && w->gate_up_adjacent) {
            matmul(ctx, ctx->hb, ctx->xb, w->w_gate, NULL, T, dim, 2 * ff); // (T, 2 ff): gate | up
            hidden_stride = 2 * ff; // the gated values stay in the gate halves
        } else if (m->arch == ARCH_LLAMA) {
            matmul(ctx, ctx->hb, ctx->xb, w->w_gate, NULL, T, dim, ff);
            matmul(ctx, ctx->hb + (size_t)ctx->n_batch * ff, ctx->xb, w->w_up, NULL, T, dim, ff);
        } else {
            matmul(ctx, ctx->hb, ctx->xb, w->w_up, w->b_up, T, dim, ff);
        }
        activation(ctx, w, T); // SwiGLU or GELU, in place
        if (ctx->tap_fn && hidden_stride != ff) { /* taps show packed rows: close the gaps (in order, in place) */
            for (int t = 1; t < T; t++)
                memmove(ctx->hb + (size_t)t * ff, ctx->hb + (size_t)t * hidden_stride, (size_t)ff * sizeof(float));
            hidden_stride = ff;
        }
        TAP(ctx, TAP_FFN_HIDDEN, l, pos0, ctx->hb, 2, T, ff, 1);
        matmul_strided(ctx, ctx->proj, ctx->hb, hidden_stride, w->w_down, w->b_down, T, ff, dim);
        TAP(ctx, TAP_FFN_OUT, l, pos0, ctx->proj, 2, T, dim, 1);
        residual(ctx, ctx->proj, T);
        TAP(ctx, TAP_RESID_FFN, l, pos0, x, 2, T, dim, 1);
    }

    /* final norm and classifier: every row with logits_all, else the last only */
    int first = ctx->logits_all ? 0 : T - 1, rows = T - first;
    float *logits = ctx->logits + (size_t)(ctx->logits_all ? logits_row0 : 0) * h->n_vocab; // (rows, vocab)
    norm_forward(m, ctx->xb, x + (size_t)first * dim, m->out_norm_w, m->out_norm_b, rows);
    TAP(ctx, TAP_FINAL_NORM, -1, pos0 + first, ctx->xb, 2, rows, dim, 1);
    matmul(ctx, logits, ctx->xb, m->output, NULL, rows, dim, h->n_vocab);
    TAP(ctx, TAP_LOGITS, -1, pos0 + first, logits, 2, rows, h->n_vocab, 1);
    ctx->n_past += T;
}
