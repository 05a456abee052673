/* The explorer's what-if runs (explore_runs.c): the page's text run again
 * under one experiment each (no-scale, no-mask, ...), so the page can switch
 * between the model as trained and the model with one piece taken out. */
#ifndef TINYLLM_CLI_EXPLORE_RUNS_H
#define TINYLLM_CLI_EXPLORE_RUNS_H

#include <stdint.h>

#include "tinyllm.h"

#define EXPLORE_RUN_TOP 256 /* next-token logits kept per position in a what-if run */

/* The experiments the page offers as toggles by default, in page order. */
extern const char *const EXPLORE_TOGGLES_DEFAULT[];
extern const int EXPLORE_N_TOGGLES_DEFAULT;

typedef struct {
    char name[64];              /* the experiment, as tinyllm_experiments_describe says it */
    tinyllm_experiments exp;
    int square;                 /* attention kept as whole (n, n) rows: the mask was off, keys after
                                   the query have weight; else lower triangles as the base run's */
    uint16_t *attn;             /* (layers, heads, n, n or the triangle) float16 */
    size_t n_attn;
    int k;                      /* logits kept per position */
    uint16_t *logit_values;     /* (n, k) float16, minus each position's maximum, descending */
    uint32_t *logit_ids;        /* (n, k) */
    float *logit_max;           /* (n) */
    float *bits;                /* (n - 1): -log2 p(token p+1 | tokens up to p), the whole softmax */
    int n_nonfinite;            /* positions whose logits hold a NaN or an infinity */
    int *continuation;          /* the run's own tokens after the prompt (the page's sampler and seed) */
    int n_continuation;
    const char *stop;           /* why the continuation ended: "length", "end of text", "non-finite logits" */
} explore_run;

typedef struct {
    const tinyllm_model *m;
    int n_ctx, n_threads;
    const int *tokens;          /* the page's text: prompt + the base run's continuation */
    int n_tokens, n_prompt;
    const int *layers;          /* layers whose attention is kept, ascending */
    int n_layers;
    tinyllm_sampler_params sp;  /* for each run's own continuation */
    int n_gen;
} explore_runs_plan;

/* Bytes a run adds to the page for n tokens (base64 included), to check the
 * size limit before running anything. */
double explore_run_bytes(const explore_runs_plan *pl, const tinyllm_experiments *e, int n_vocab, int n_heads);

/* Runs the text under experiment e (one prefill, every position's logits
 * and the chosen layers' attention), then the run's own continuation from
 * the prompt. 0, or -1 with a one-line reason in why. */
int explore_run_build(explore_run *r, const explore_runs_plan *pl, const tinyllm_experiments *e, char *why,
                      size_t why_cap);
void explore_run_free(explore_run *r);

/* -log2 p(next) at each of n - 1 positions from n rows of n_vocab logits. */
void surprisal_bits(const float *const *rows, const int *tokens, int n, int n_vocab, float *bits);

/* The K largest logits of each of n rows as float16 minus the row's maximum
 * (ties by id; NaN last), their ids, and the maxima. -1 out of memory. */
int top_logits_f16(const float *const *rows, int n, int n_vocab, int k, uint16_t *values, uint32_t *ids, float *maxima);

#endif
