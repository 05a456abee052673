/* The forward pass, one function, top to bottom. Both families share it:
 * llama = RMSNorm, RoPE, GQA, SwiGLU; gpt2 = LayerNorm + bias, absolute
 * positions, fused QKV with bias, GELU MLP. */
#include <string.h>

#include "context.h"
#include "kernels.h"

/* norm(out, in) for the family: RMSNorm (llama) or LayerNorm (gpt2). */
static void norm_forward(const tinyllm_model *m, float *out, const float *in, const float *w, const float *b, int T) {
    if (m->arch == ARCH_LLAMA)
        rmsnorm_forward(out, in, w, T, m->info.n_embd, m->info.norm_eps);
    else
        layernorm_forward(out, in, w, b, T, m->info.n_embd, m->info.norm_eps);
}

void forward(tinyllm_context *ctx, const int *tokens, int T, int logits_row0) {
    const tinyllm_model *m = ctx->model;
    const tinyllm_model_info *h = &m->info;
    int dim = h->n_embd, kv_dim = m->kv_dim, ff = h->n_ff, hd = h->head_dim;
    int pos0 = ctx->n_past;
    float *x = ctx->x; // (T, dim)

    /* token embeddings (+ absolute positions for gpt2) */
    for (int t = 0; t < T; t++) {
        memcpy(x + (size_t)t * dim, m->tok_embd + (size_t)tokens[t] * dim, (size_t)dim * sizeof(float));
        if (m->pos_embd) residual_forward(x + (size_t)t * dim, m->pos_embd + (size_t)(pos0 + t) * dim, dim);
    }

    for (int l = 0; l < h->n_layer; l++) {
        const layer_weights *w = &m->layers[l];
        float *kc = kv_cache_k(&ctx->kv, l), *vc = kv_cache_v(&ctx->kv, l); // (n_ctx, kv_dim)
        float *k_new = kc + (size_t)pos0 * kv_dim, *v_new = vc + (size_t)pos0 * kv_dim; // (T, kv_dim)

        /* attention sublayer: keys and values go straight into the cache */
        norm_forward(m, ctx->xb, x, w->attn_norm_w, w->attn_norm_b, T);
        matmul_forward(ctx->q, ctx->xb, w->wq, w->bq, T, dim, dim);
        matmul_forward(k_new, ctx->xb, w->wk, w->bk, T, dim, kv_dim);
        matmul_forward(v_new, ctx->xb, w->wv, w->bv, T, dim, kv_dim);
        if (h->positions == TINYLLM_POS_ROPE) {
            rope_forward(ctx->q, T, dim, h->n_head, hd, pos0, h->rope_theta);
            rope_forward(k_new, T, kv_dim, h->n_head_kv, hd, pos0, h->rope_theta);
        }
        attention_forward(ctx->att_out, ctx->scores, ctx->probs, ctx->q, kc, vc, T, pos0, h->n_head, h->n_head_kv,
                          hd);
        matmul_forward(ctx->proj, ctx->att_out, w->wo, w->bo, T, dim, dim);
        residual_forward(x, ctx->proj, (long)T * dim);

        /* feed-forward sublayer */
        norm_forward(m, ctx->xb, x, w->ffn_norm_w, w->ffn_norm_b, T);
        if (m->arch == ARCH_LLAMA) {
            matmul_forward(ctx->hb, ctx->xb, w->w_gate, NULL, T, dim, ff);
            matmul_forward(ctx->hb2, ctx->xb, w->w_up, NULL, T, dim, ff);
            swiglu_forward(ctx->hb, ctx->hb2, (long)T * ff);
        } else {
            matmul_forward(ctx->hb, ctx->xb, w->w_up, w->b_up, T, dim, ff);
            gelu_forward(ctx->hb, (long)T * ff);
        }
        matmul_forward(ctx->proj, ctx->hb, w->w_down, w->b_down, T, ff, dim);
        residual_forward(x, ctx->proj, (long)T * dim);
    }

    /* final norm and classifier: every row with logits_all, else the last only */
    int first = ctx->logits_all ? 0 : T - 1, rows = T - first;
    float *xl = x + (size_t)first * dim;
    norm_forward(m, ctx->xb, xl, m->out_norm_w, m->out_norm_b, rows);
    matmul_forward(ctx->logits + (size_t)(ctx->logits_all ? logits_row0 : 0) * h->n_vocab, ctx->xb, m->output,
                   NULL, rows, dim, h->n_vocab);
    ctx->n_past += T;
}
