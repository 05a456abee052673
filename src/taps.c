#include "taps.h"

#include <stdio.h>
#include <stdlib.h>

#include "context.h"
#include "error.h"

static const char *const TAP_NAMES[TAP_COUNT] = {
    "embed",     "pos",        "attn_norm",  "q_pre_rope", "k_pre_rope", "q",  "k",   "v",  "attn_scores", "attn_probs",
    "attn_out",  "attn_proj",  "resid_attn", "ffn_norm", "ffn_hidden", "ffn_out",   "resid_ffn",   "final_norm",
    "logits",
};

const char *tinyllm_tap_kind(int i) {
    return i >= 0 && i < TAP_COUNT ? TAP_NAMES[i] : NULL;
}

void tap_emit(const tinyllm_context *ctx, tap_id id, int layer, int pos0, float *data, int n_dims, int64_t d0,
              int64_t d1, int64_t d2) {
    char name[48];
    if (layer >= 0)
        snprintf(name, sizeof name, "%d.%s", layer, TAP_NAMES[id]);
    else
        snprintf(name, sizeof name, "%s", TAP_NAMES[id]);
    float *writable = ctx->tap_writes && id != TAP_ATTN_SCORES ? data : NULL;
    tinyllm_tap t = {name, TAP_NAMES[id], layer, pos0, n_dims, {d0, d1, d2}, data, writable};
    ctx->tap_fn(&t, ctx->tap_user);
}

static tinyllm_status install(tinyllm_context *ctx, tinyllm_tap_fn fn, void *user, int writes, tinyllm_error *err) {
    if (fn && !ctx->att_all_heads) { /* the attention taps show every head at once */
        int per = ctx->model->info.n_head > ctx->n_threads ? ctx->model->info.n_head : ctx->n_threads;
        size_t n = (size_t)per * ctx->n_batch * ctx->n_ctx;
        float *s = realloc(ctx->scores, n * sizeof(float));
        if (s) ctx->scores = s;
        float *p = s ? realloc(ctx->probs, n * sizeof(float)) : NULL;
        if (!s || !p) return set_error(err, TINYLLM_ERR_NOMEM, "context_set_tap: out of memory for every head's scores");
        ctx->probs = p;
        ctx->att_all_heads = 1;
    }
    if (fn && !ctx->tap_rows) { /* packed FFN hidden rows for the tap, so taps never change hb */
        ctx->tap_rows = malloc((size_t)ctx->n_batch * ctx->model->info.n_ff * sizeof(float));
        if (!ctx->tap_rows) return set_error(err, TINYLLM_ERR_NOMEM, "context_set_tap: out of memory");
    }
    if (fn && writes && !ctx->probs_before) {
        size_t n = (size_t)ctx->model->info.n_head * ctx->n_batch * ctx->n_ctx;
        ctx->probs_before = malloc(n * sizeof(float));
        if (!ctx->probs_before) return set_error(err, TINYLLM_ERR_NOMEM, "context_set_hook: out of memory");
    }
    ctx->tap_fn = fn;
    ctx->tap_user = user;
    ctx->tap_writes = fn && writes;
    return TINYLLM_OK;
}

tinyllm_status tinyllm_context_set_tap(tinyllm_context *ctx, tinyllm_tap_fn fn, void *user, tinyllm_error *err) {
    if (!ctx) return set_error(err, TINYLLM_ERR_ARG, "context_set_tap: context is NULL");
    return install(ctx, fn, user, 0, err);
}

tinyllm_status tinyllm_context_set_hook(tinyllm_context *ctx, tinyllm_tap_fn fn, void *user, tinyllm_error *err) {
    if (!ctx) return set_error(err, TINYLLM_ERR_ARG, "context_set_hook: context is NULL");
    return install(ctx, fn, user, 1, err);
}
