/* The explorer's what-if runs: the page's text (prompt + continuation) run
 * once more under each experiment, in one prefill, recording only what the
 * page shows for it: the chosen layers' attention, the next-token logits
 * (the top EXPLORE_RUN_TOP), the surprisal of each actual next token, and
 * the run's own continuation from the prompt (same sampler, same seed). */
#include "explore_runs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "half.h"

const char *const EXPLORE_TOGGLES_DEFAULT[] = {"no-scale",      "no-mask",      "mask-after-softmax",
                                               "naive-softmax", "no-positions", "no-norm"};
const int EXPLORE_N_TOGGLES_DEFAULT = (int)(sizeof EXPLORE_TOGGLES_DEFAULT / sizeof *EXPLORE_TOGGLES_DEFAULT);

/* ------------------------------------------------------------ logits -- */

typedef struct {
    float v;
    int id;
} scored;

static int by_value_desc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    /* NaN sorts last; ties by id so the page is reproducible */
    int xn = isnan(x->v), yn = isnan(y->v);
    if (xn != yn) return xn - yn;
    if (x->v != y->v) return x->v < y->v ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

int top_logits_f16(const float *const *rows, int n, int n_vocab, int k, uint16_t *values, uint32_t *ids,
                   float *maxima) {
    scored *order = ids ? malloc((size_t)n_vocab * sizeof *order) : NULL;
    if (ids && !order) return -1;
    for (int p = 0; p < n; p++) {
        const float *l = rows[p];
        float max = -INFINITY;
        for (int i = 0; l && i < n_vocab; i++)
            if (l[i] > max) max = l[i];
        if (!isfinite(max)) max = 0; /* every logit -inf or NaN: stored as they are */
        maxima[p] = max;
        uint16_t *row = values + (size_t)p * k;
        if (!ids) { /* all of them, in id order */
            for (int i = 0; i < n_vocab; i++) row[i] = l ? f32_to_f16(l[i] - max) : 0;
            continue;
        }
        for (int i = 0; i < n_vocab; i++) order[i] = (scored){l ? l[i] : 0, i};
        qsort(order, (size_t)n_vocab, sizeof *order, by_value_desc);
        for (int i = 0; i < k; i++) {
            row[i] = f32_to_f16(order[i].v - max);
            ids[(size_t)p * k + i] = (uint32_t)order[i].id;
        }
    }
    free(order);
    return 0;
}

void surprisal_bits(const float *const *rows, const int *tokens, int n, int n_vocab, float *bits) {
    for (int p = 0; p + 1 < n; p++) {
        const float *l = rows[p];
        double max = -INFINITY, sum = 0;
        for (int i = 0; l && i < n_vocab; i++)
            if (l[i] > max) max = l[i];
        for (int i = 0; l && i < n_vocab; i++) sum += exp(l[i] - max);
        /* log2 sum exp(l) - l[next]; NaN when the logits are not finite (naive-softmax's overflow) */
        bits[p] = l && isfinite(max) ? (float)((max + log(sum) - l[tokens[p + 1]]) / M_LN2) : NAN;
    }
}

/* ---------------------------------------------------------- one run -- */

typedef struct {
    const explore_runs_plan *pl;
    float *attn; /* (layers, heads, n, n) */
    int heads;
} recorder;

static void record_attention(const tinyllm_tap *t, void *user) {
    recorder *rec = user;
    const explore_runs_plan *pl = rec->pl;
    if (strcmp(t->kind, "attn_probs") || t->pos0 != 0 || t->shape[1] != pl->n_tokens) return;
    for (int li = 0; li < pl->n_layers; li++)
        if (pl->layers[li] == t->layer) {
            size_t block = (size_t)rec->heads * pl->n_tokens * pl->n_tokens;
            memcpy(rec->attn + li * block, t->data, block * sizeof(float)); /* (H, T, T): keys = T in a prefill */
        }
}

static int square_of(const tinyllm_experiments *e) { return (e->flags & TINYLLM_EXP_NO_MASK) != 0; }

double explore_run_bytes(const explore_runs_plan *pl, const tinyllm_experiments *e, int n_vocab, int n_heads) {
    double n = pl->n_tokens, k = n_vocab < EXPLORE_RUN_TOP ? n_vocab : EXPLORE_RUN_TOP;
    double cells = square_of(e) ? n * n : n * (n + 1) / 2;
    double arrays = pl->n_layers * n_heads * cells * 2 + n * k * 6 + n * 8;
    return arrays * 4 / 3 + pl->n_gen * 48.0 + 256;
}

/* The continuation from the prompt under the run's experiment: rewind,
 * prefill the prompt, then sample and decode n_gen tokens. */
static int continue_from_prompt(explore_run *r, tinyllm_context *c, const explore_runs_plan *pl, int n_vocab,
                                char *why, size_t why_cap) {
    tinyllm_error err = {0};
    tinyllm_sampler *s = NULL;
    int *history = malloc(((size_t)pl->n_prompt + pl->n_gen + 1) * sizeof *history);
    r->continuation = malloc(((size_t)pl->n_gen + 1) * sizeof *r->continuation);
    int rc = !history || !r->continuation ? (snprintf(why, why_cap, "out of memory"), -1) : 0;
    if (!rc && (tinyllm_context_rewind(c, 0, &err) || tinyllm_context_prefill(c, pl->tokens, pl->n_prompt, &err) ||
                tinyllm_sampler_create(&pl->sp, n_vocab, &s, &err)))
        rc = (snprintf(why, why_cap, "%s", err.message), -1);
    if (!rc) memcpy(history, pl->tokens, (size_t)pl->n_prompt * sizeof *history);
    r->stop = "length";
    for (int i = 0; !rc && i < pl->n_gen; i++) {
        const float *l = tinyllm_context_logits(c);
        int finite = 1;
        for (int j = 0; j < n_vocab && finite; j++) finite = !isnan(l[j]) && l[j] != INFINITY;
        if (!finite) { /* the experiment broke the arithmetic: nothing sound to sample from */
            r->stop = "non-finite logits";
            break;
        }
        int id = tinyllm_sampler_sample(s, l, history, pl->n_prompt + i, &err);
        if (id < 0 || tinyllm_context_decode(c, id, &err)) {
            rc = (snprintf(why, why_cap, "%s", err.message), -1);
            break;
        }
        history[pl->n_prompt + i] = id;
        r->continuation[r->n_continuation++] = id;
        if (id == tinyllm_token_eos(pl->m)) {
            r->stop = "end of text";
            break;
        }
    }
    tinyllm_sampler_free(s);
    free(history);
    return rc;
}

int explore_run_build(explore_run *r, const explore_runs_plan *pl, const tinyllm_experiments *e, char *why,
                      size_t why_cap) {
    memset(r, 0, sizeof *r);
    r->exp = *e;
    tinyllm_experiments_describe(e, r->name, sizeof r->name);
    r->square = square_of(e);
    tinyllm_model_info info;
    tinyllm_error err = {0};
    tinyllm_model_info_get(pl->m, &info, NULL);
    int n = pl->n_tokens, V = info.n_vocab, H = info.n_head;
    r->k = V < EXPLORE_RUN_TOP ? V : EXPLORE_RUN_TOP;

    recorder rec = {pl, calloc((size_t)pl->n_layers * H * n * n + 1, sizeof(float)), H};
    float *logits = malloc((size_t)n * V * sizeof *logits);               /* (n, n_vocab) */
    const float **rows = malloc((size_t)n * sizeof *rows);
    r->logit_values = malloc((size_t)n * r->k * sizeof *r->logit_values);
    r->logit_ids = malloc((size_t)n * r->k * sizeof *r->logit_ids);
    r->logit_max = malloc((size_t)n * sizeof *r->logit_max);
    r->bits = malloc((size_t)n * sizeof *r->bits);
    tinyllm_context *c = NULL;
    int rc = 0;
    if (!rec.attn || !logits || !rows || !r->logit_values || !r->logit_ids || !r->logit_max || !r->bits)
        rc = (snprintf(why, why_cap, "out of memory"), -1);
    tinyllm_context_params cp = tinyllm_context_default_params();
    cp.n_ctx = pl->n_ctx, cp.n_threads = pl->n_threads, cp.logits_all = 1;
    if (!rc && (tinyllm_context_create(pl->m, &cp, &c, &err) || tinyllm_context_set_experiments(c, e, &err) ||
                tinyllm_context_set_tap(c, record_attention, &rec, &err) ||
                tinyllm_context_prefill(c, pl->tokens, n, &err)))
        rc = (snprintf(why, why_cap, "%s", err.message), -1);
    for (int p = 0; !rc && p < n; p++) {
        memcpy(logits + (size_t)p * V, tinyllm_context_logits_at(c, p), (size_t)V * sizeof *logits);
        rows[p] = logits + (size_t)p * V;
        for (int i = 0; i < V; i++)
            if (!isfinite(rows[p][i])) {
                r->n_nonfinite++;
                break;
            }
    }
    if (!rc) {
        surprisal_bits(rows, pl->tokens, n, V, r->bits);
        if (top_logits_f16(rows, n, V, r->k, r->logit_values, r->logit_ids, r->logit_max))
            rc = (snprintf(why, why_cap, "out of memory"), -1);
    }
    if (!rc) { /* (layers, H, n, n) -> float16, whole rows or the lower triangles */
        size_t cells = r->square ? (size_t)n * n : (size_t)n * (n + 1) / 2;
        r->n_attn = (size_t)pl->n_layers * H * cells;
        uint16_t *o = r->attn = malloc((r->n_attn ? r->n_attn : 1) * sizeof *r->attn);
        if (!o) rc = (snprintf(why, why_cap, "out of memory"), -1);
        for (size_t lh = 0; o && lh < (size_t)pl->n_layers * H; lh++)
            for (int q = 0; q < n; q++)
                for (int k = 0; k < (r->square ? n : q + 1); k++) *o++ = f32_to_f16(rec.attn[(lh * n + q) * n + k]);
    }
    if (!rc) tinyllm_context_set_tap(c, NULL, NULL, NULL);
    if (!rc) rc = continue_from_prompt(r, c, pl, V, why, why_cap);
    tinyllm_context_free(c);
    free(rec.attn), free(logits), free(rows);
    return rc;
}

void explore_run_free(explore_run *r) {
    free(r->attn), free(r->logit_values), free(r->logit_ids), free(r->logit_max), free(r->bits);
    free(r->continuation);
    memset(r, 0, sizeof *r);
}
