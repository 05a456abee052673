/* The forward pass, top to bottom: forward() embeds, runs each layer
 * (layer_forward: attention, then feed-forward) and the classifier. Both
 * families share it; what differs between them is read from the model's
 * family descriptor (model.h): llama = RMSNorm, RoPE, grouped-query
 * attention, SwiGLU; gpt2 = LayerNorm with bias, absolute positions, fused
 * QKV with bias, GELU MLP. Each step (steps.h) splits itself over the thread
 * pool. TAP(...) hands an intermediate tensor to a listener (taps.h); it
 * costs one branch when nobody listens. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "error.h"
#include "kernels.h"
#include "steps.h"
#include "taps.h"

/* x (T, dim) = the tokens' embedding rows (converted from the stored format) */
static void embed(const tinyllm_model *m, float *x, const int *tokens, int T) {
    int dim = m->info.n_embd;
    for (int t = 0; t < T; t++) matrix_rows(m->kern, x + (size_t)t * dim, m->tok_embd, dim, (size_t)tokens[t], 1);
}

/* out (T, OC) = in (T, C; rows in_stride apart) @ w^T + b */
static void matmul(tinyllm_context *ctx, float *out, const float *in, int in_stride, matrix w, const float *b, int T,
                   int C, int OC) {
    if (matmul_takes_q8_act(ctx->model->kern, w, T)) /* an integer prefill: the activations as 8-bit blocks, once */
        step_quantize(ctx, in, in_stride, w, T, C);
    step_matmul(ctx, out, in, in_stride, w, b, T, C, OC);
}

/* out (T, dim) = the family's norm of in (T, dim); the no-norm experiment: in as it is */
static void norm(tinyllm_context *ctx, float *out, const float *in, const float *w, const float *b, int T) {
    if (ctx->exp.flags & TINYLLM_EXP_NO_NORM) {
        memcpy(out, in, (size_t)T * ctx->model->info.n_embd * sizeof *out);
        return;
    }
    step_norm(ctx, out, in, w, b, T);
}

/* q (T, dim) and this call's cache rows k, v (T, kv_dim) from xb (T, dim):
 * three products, or one when the file stores q|k|v side by side (gpt2) */
static void qkv(tinyllm_context *ctx, const layer_weights *w, float *q, float *k, float *v, const float *xb, int T) {
    int dim = ctx->model->info.n_embd, kv_dim = ctx->model->kv_dim;
    if (w->qkv_adjacent) {
        matmul(ctx, ctx->qkv, xb, dim, w->wq, w->bq, T, dim, dim + 2 * kv_dim); // (T, dim + 2 kv_dim)
        step_split_qkv(ctx, q, k, v, ctx->qkv, T);
        return;
    }
    matmul(ctx, q, xb, dim, w->wq, w->bq, T, dim, dim);      // (T, dim)
    matmul(ctx, k, xb, dim, w->wk, w->bk, T, dim, kv_dim);   // (T, kv_dim)
    matmul(ctx, v, xb, dim, w->wv, w->bv, T, dim, kv_dim);   // (T, kv_dim)
}

/* The FFN's hidden state from xb (T, dim) into ctx->hb: GELU(up), or
 * SwiGLU silu(gate) * up (one product when the file stores gate|up side by
 * side). Returns the row stride of the (T, n_ff) hidden rows in hb. */
static int ffn_hidden(tinyllm_context *ctx, const layer_weights *w, const float *xb, int T) {
    int dim = ctx->model->info.n_embd, ff = ctx->model->info.n_ff;
    if (ctx->model->act != ACT_SWIGLU) {
        matmul(ctx, ctx->hb, xb, dim, w->w_up, w->b_up, T, dim, ff); // (T, ff)
        step_gelu(ctx, ctx->hb, ff, T, ff);
        return ff;
    }
    if (w->gate_up_adjacent) { /* rows gate | up */
        matmul(ctx, ctx->hb, xb, dim, w->w_gate, NULL, T, dim, 2 * ff); // (T, 2 ff)
        step_swiglu(ctx, ctx->hb, 2 * ff, ctx->hb + ff, 2 * ff, T, ff);
        return 2 * ff;
    }
    float *up = ctx->hb + (size_t)ctx->n_batch * ff;             // (T, ff)
    matmul(ctx, ctx->hb, xb, dim, w->w_gate, NULL, T, dim, ff);  // (T, ff)
    matmul(ctx, up, xb, dim, w->w_up, NULL, T, dim, ff);
    step_swiglu(ctx, ctx->hb, ff, up, ff, T, ff);
    return ff;
}

/* Layer l over the T tokens at positions n_past..: x (T, dim) += attention,
 * then += feed-forward. TAP(...) hands an intermediate tensor to a listener
 * (taps.h); a hook may write it, and the pass goes on from what it left. */
static void layer_forward(tinyllm_context *ctx, int l, int T) {
    const tinyllm_model *m = ctx->model;
    const tinyllm_model_info *h = &m->info;
    const layer_weights *w = &m->layers[l];
    int dim = h->n_embd, kv_dim = m->kv_dim, ff = h->n_ff, H = h->n_head;
    int pos0 = ctx->n_past, L = pos0 + T;
    float *x = ctx->x; // (T, dim) the residual stream
    float *kc = kv_cache_k(&ctx->kv, l), *vc = kv_cache_v(&ctx->kv, l);      // (n_ctx, kv_dim)
    float *k = kc + (size_t)pos0 * kv_dim, *v = vc + (size_t)pos0 * kv_dim; // (T, kv_dim): this call's rows

    /* attention sublayer; keys and values go straight into the cache */
    norm(ctx, ctx->xb, x, w->attn_norm_w, w->attn_norm_b, T); // (T, dim)
    TAP(ctx, TAP_ATTN_NORM, l, pos0, ctx->xb, 2, T, dim, 1);
    qkv(ctx, w, ctx->q, k, v, ctx->xb, T);
    if (m->family->rope && !(ctx->exp.flags & TINYLLM_EXP_NO_POSITIONS)) {
        TAP(ctx, TAP_Q_PRE_ROPE, l, pos0, ctx->q, 2, T, dim, 1);
        TAP(ctx, TAP_K_PRE_ROPE, l, pos0, k, 2, T, kv_dim, 1);
        step_rope(ctx, ctx->q, k, T, pos0);
    }
    TAP(ctx, TAP_Q, l, pos0, ctx->q, 2, T, dim, 1);
    TAP(ctx, TAP_K, l, pos0, k, 2, T, kv_dim, 1);
    TAP(ctx, TAP_V, l, pos0, v, 2, T, kv_dim, 1);
    step_attention(ctx, l, ctx->att_out, ctx->q, kc, vc, T, pos0); // (T, dim)
    TAP(ctx, TAP_ATTN_SCORES, l, pos0, ctx->scores, 3, H, T, L);
    size_t n_probs = (size_t)H * T * L;
    if (ctx->tap_writes) memcpy(ctx->probs_before, ctx->probs, n_probs * sizeof(float));
    TAP(ctx, TAP_ATTN_PROBS, l, pos0, ctx->probs, 3, H, T, L);
    if (ctx->tap_writes && memcmp(ctx->probs_before, ctx->probs, n_probs * sizeof(float)))
        step_attention_from_probs(ctx, l, ctx->att_out, vc, T, pos0); /* a hook wrote them: attention follows */
    TAP(ctx, TAP_ATTN_OUT, l, pos0, ctx->att_out, 2, T, dim, 1);
    matmul(ctx, ctx->proj, ctx->att_out, dim, w->wo, w->bo, T, dim, dim); // (T, dim)
    TAP(ctx, TAP_ATTN_PROJ, l, pos0, ctx->proj, 2, T, dim, 1);
    step_add(ctx, x, ctx->proj, T);
    TAP(ctx, TAP_RESID_ATTN, l, pos0, x, 2, T, dim, 1);

    /* feed-forward sublayer: hb holds the hidden state, rows `stride` apart */
    norm(ctx, ctx->xb, x, w->ffn_norm_w, w->ffn_norm_b, T); // (T, dim)
    TAP(ctx, TAP_FFN_NORM, l, pos0, ctx->xb, 2, T, dim, 1);
    int stride = ffn_hidden(ctx, w, ctx->xb, T); // (T, ff) in hb
    if (ctx->tap_fn) { /* the tap sees packed rows; a hook's writes go back into hb */
        for (int t = 0; t < T; t++)
            memcpy(ctx->tap_rows + (size_t)t * ff, ctx->hb + (size_t)t * stride, (size_t)ff * sizeof(float));
        TAP(ctx, TAP_FFN_HIDDEN, l, pos0, ctx->tap_rows, 2, T, ff, 1);
        for (int t = 0; ctx->tap_writes && t < T; t++)
            memcpy(ctx->hb + (size_t)t * stride, ctx->tap_rows + (size_t)t * ff, (size_t)ff * sizeof(float));
    }
    matmul(ctx, ctx->proj, ctx->hb, stride, w->w_down, w->b_down, T, ff, dim); // (T, dim)
    TAP(ctx, TAP_FFN_OUT, l, pos0, ctx->proj, 2, T, dim, 1);
    step_add(ctx, x, ctx->proj, T);
    TAP(ctx, TAP_RESID_FFN, l, pos0, x, 2, T, dim, 1);
}

void forward(tinyllm_context *ctx, const int *tokens, int T, int logits_row0) {
    const tinyllm_model *m = ctx->model;
    const tinyllm_model_info *h = &m->info;
    int dim = h->n_embd, pos0 = ctx->n_past;
    float *x = ctx->x; // (T, dim) the residual stream

    embed(m, x, tokens, T); // (T, dim)
    TAP(ctx, TAP_EMBED, -1, pos0, x, 2, T, dim, 1);
    if (!m->family->rope && !(ctx->exp.flags & TINYLLM_EXP_NO_POSITIONS)) {
        /* absolute positions: learned, or the sinusoidal table built for this context */
        const float *positions = m->pos_embd ? m->pos_embd : ctx->pos_sin; // (n_ctx, dim)
        step_add(ctx, x, positions + (size_t)pos0 * dim, T);
        TAP(ctx, TAP_POS, -1, pos0, x, 2, T, dim, 1);
    }

    for (int l = 0; l < h->n_layer; l++)
        if (!ctx->skipped[l]) layer_forward(ctx, l, T); /* an ablated layer: the stream passes it unchanged */

    /* final norm and classifier: every row with logits_all, else the last only */
    int first = ctx->logits_all ? 0 : T - 1, rows = T - first;
    float *logits = ctx->logits + (size_t)(ctx->logits_all ? logits_row0 : 0) * h->n_vocab; // (rows, vocab)
    norm(ctx, ctx->xb, x + (size_t)first * dim, m->out_norm_w, m->out_norm_b, rows); // (rows, dim)
    TAP(ctx, TAP_FINAL_NORM, -1, pos0 + first, ctx->xb, 2, rows, dim, 1);
    matmul(ctx, logits, ctx->xb, dim, m->output, NULL, rows, dim, h->n_vocab); // (rows, vocab)
    TAP(ctx, TAP_LOGITS, -1, pos0 + first, logits, 2, rows, h->n_vocab, 1);
    ctx->n_past += T;
}

tinyllm_status tinyllm_model_logit_lens(const tinyllm_model *m, const float *x, float *logits, tinyllm_error *err) {
    if (!m || !x || !logits) return set_error(err, TINYLLM_ERR_ARG, "model_logit_lens: NULL model, x or logits");
    int dim = m->info.n_embd;
    float *xn = malloc((size_t)dim * sizeof *xn); // (dim)
    if (!xn) return set_error(err, TINYLLM_ERR_NOMEM, "model_logit_lens: out of memory");
    if (m->family->norm == NORM_RMS)
        rmsnorm_forward(xn, x, m->out_norm_w, 1, dim, m->info.norm_eps);
    else
        layernorm_forward(xn, x, m->out_norm_w, m->out_norm_b, 1, dim, m->info.norm_eps);
    /* (1, vocab); a quantized classifier needs its activation scratch */
    void *qscratch = matmul_quantizes(m->output) ? malloc(Q8_ACT_BYTES(1, dim)) : NULL;
    if (matmul_quantizes(m->output) && !qscratch) {
        free(xn);
        return set_error(err, TINYLLM_ERR_NOMEM, "model_logit_lens: out of memory");
    }
    matmul_forward(m->kern, logits, xn, dim, m->output, NULL, 1, dim, m->info.n_vocab, 0, m->info.n_vocab, qscratch, 0);
    free(qscratch);
    free(xn);
    return TINYLLM_OK;
}

/* ------------------------------------------------ the API's entry points -- */

/* Prefill, decode and shift: the forward pass over the caller's tokens, in
 * batches of at most n_batch, after the checks a public call needs. */
tinyllm_status tinyllm_context_shift(tinyllm_context *ctx, const int *tokens, int n_keep, int n_discard,
                                    tinyllm_error *err) {
    if (!ctx || !tokens) return set_error(err, TINYLLM_ERR_ARG, "context_shift: NULL context or tokens");
    if (n_keep < 0 || n_discard < 1 || n_keep > ctx->n_past || n_discard > ctx->n_past - n_keep) /* no overflow */
        return set_error(err, TINYLLM_ERR_ARG,
                         "context_shift: keep %d and discard %d tokens of %d (expected keep >= 0, discard >= 1, "
                         "keep + discard <= the tokens in the cache)",
                         n_keep, n_discard, ctx->n_past);
    int n_past = ctx->n_past, n_tail = n_past - n_keep - n_discard;
    /* the first n_keep rows of the cache stay as they are (nothing before them
     * changed); the tail is run again at its new positions, so every key and
     * value it leaves equals a fresh prefill's */
    ctx->n_past = n_keep;
    ctx->n_logits = 0;
    return n_tail > 0 ? tinyllm_context_prefill(ctx, tokens + n_keep + n_discard, n_tail, err) : TINYLLM_OK;
}

static tinyllm_status check_tokens(const tinyllm_context *ctx, const int *tokens, int n, tinyllm_error *err) {
    if (n > ctx->n_ctx - ctx->n_past)
        return set_error(err, TINYLLM_ERR_CONTEXT_FULL,
                         "context: %d more tokens do not fit (%d of %d positions used); use a larger --ctx or a "
                         "shorter prompt/-n",
                         n, ctx->n_past, ctx->n_ctx);
    int n_vocab = ctx->model->info.n_vocab;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return set_error(err, TINYLLM_ERR_ARG, "tokens[%d] = %d is out of range (expected 0..%d)", i, tokens[i],
                             n_vocab - 1);
    return TINYLLM_OK;
}

tinyllm_status tinyllm_context_prefill(tinyllm_context *ctx, const int *tokens, int n, tinyllm_error *err) {
    if (!ctx || !tokens || n <= 0)
        return set_error(err, TINYLLM_ERR_ARG, "prefill: NULL context/tokens or no tokens (expected n >= 1)");
    tinyllm_status st = check_tokens(ctx, tokens, n, err);
    if (st) return st;
    for (int i = 0; i < n; i += ctx->n_batch) {
        int T = n - i < ctx->n_batch ? n - i : ctx->n_batch;
        forward(ctx, tokens + i, T, i);
    }
    ctx->n_logits = ctx->logits_all ? n : 1;
    return TINYLLM_OK;
}

tinyllm_status tinyllm_context_decode(tinyllm_context *ctx, int token, tinyllm_error *err) {
    if (!ctx) return set_error(err, TINYLLM_ERR_ARG, "decode: context is NULL");
    tinyllm_status st = check_tokens(ctx, &token, 1, err);
    if (st) return st;
    forward(ctx, &token, 1, 0);
    ctx->n_logits = 1;
    return TINYLLM_OK;
}
