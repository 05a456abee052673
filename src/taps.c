#include "taps.h"

#include <stdio.h>
#include <stdlib.h>

#include "context.h"
#include "error.h"

static const char *const TAP_NAMES[TAP_COUNT] = {
    "embed",     "pos",        "attn_norm",  "q",       "k",         "v",          "attn_scores", "attn_probs",
    "attn_out",  "attn_proj",  "resid_attn", "ffn_norm", "ffn_hidden", "ffn_out",   "resid_ffn",   "final_norm",
    "logits",
};

const char *tinyllm_tap_kind(int i) {
    return i >= 0 && i < TAP_COUNT ? TAP_NAMES[i] : NULL;
}

void tap_emit(const tinyllm_context *ctx, tap_id id, int layer, int pos0, const float *data, int n_dims, int64_t d0,
              int64_t d1, int64_t d2) {
    char name[48];
    if (layer >= 0)
        snprintf(name, sizeof name, "%d.%s", layer, TAP_NAMES[id]);
    else
        snprintf(name, sizeof name, "%s", TAP_NAMES[id]);
    tinyllm_tap t = {name, TAP_NAMES[id], layer, pos0, n_dims, {d0, d1, d2}, data};
    ctx->tap_fn(&t, ctx->tap_user);
}

tinyllm_status tinyllm_context_set_tap(tinyllm_context *ctx, tinyllm_tap_fn fn, void *user, tinyllm_error *err) {
    if (!ctx) return set_error(err, TINYLLM_ERR_ARG, "context_set_tap: context is NULL");
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
    ctx->tap_fn = fn;
    ctx->tap_user = user;
    return TINYLLM_OK;
}
