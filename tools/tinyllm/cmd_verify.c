/* tinyllm verify: run a golden file's prompt through the engine's prefill
 * and, separately, token-by-token decode; compare every tap with the
 * reference's values; name the first tap that fails; compare the greedy
 * continuation token for token. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "common.h"
#include "probs.h"
#include "golden.h"
#include "sha256.h"

/* Tolerances per tap kind: pass when max|engine - reference| <= atol +
 * rtol * max|reference|. The engine computes in float32 and the reference in
 * float64. A float32 sum of K terms errs by about sqrt(K) * 2^-24 of its
 * terms' size (6e-6 relative at K = 16384), in any summation order, on any
 * CPU or kernel set; through a model's depth the shipped goldens show 1e-7 to
 * 1e-6 relative. rtol 1e-4 leaves a margin of 100 over that, while every
 * deliberate fault (TINYLLM_FAULT, tests/mutations.sh) moves a tap by 1e-2 or
 * more. The embedding is an exact copy (F16 -> F32 is exact): 1e-6. */
typedef struct {
    const char *kind;
    double atol, rtol;
} tolerance;

static const tolerance TOLERANCES[] = {
    {"embed", 1e-6, 1e-6},       {"pos", 1e-5, 1e-5},         {"attn_norm", 1e-4, 1e-4},
    {"q", 1e-4, 1e-4},           {"k", 1e-4, 1e-4},           {"v", 1e-4, 1e-4},
    {"attn_scores", 1e-4, 1e-4}, {"attn_probs", 1e-5, 1e-4},  {"attn_out", 1e-4, 1e-4},
    {"attn_proj", 1e-4, 1e-4},   {"resid_attn", 1e-4, 1e-4},  {"ffn_norm", 1e-4, 1e-4},
    {"ffn_hidden", 1e-4, 1e-4},  {"ffn_out", 1e-4, 1e-4},     {"resid_ffn", 1e-4, 1e-4},
    {"final_norm", 1e-4, 1e-4},  {"logits", 1e-4, 1e-4},
};

static tolerance tolerance_for(const char *name) {
    const char *dot = strchr(name, '.');
    const char *kind = dot ? dot + 1 : name;
    for (size_t i = 0; i < sizeof TOLERANCES / sizeof TOLERANCES[0]; i++)
        if (!strcmp(TOLERANCES[i].kind, kind)) return TOLERANCES[i];
    return (tolerance){kind, 1e-4, 1e-4};
}

/* Collects taps into buffers shaped like the golden's, placing rows by
 * position, so chunked prefill and one-token decode assemble alike. */
typedef struct {
    const golden *g;
    float **bufs;   /* per golden tap */
    int *rows_seen; /* token rows received */
    int bad_shape;  /* first tap whose shape did not fit */
    char bad_name[64];
} collector;

static int is_scores(const char *name) { return strstr(name, "attn_scores") != NULL; }

static int build_collector(collector *c, const golden *g) {
    memset(c, 0, sizeof *c);
    c->g = g;
    c->bufs = calloc((size_t)g->n_taps, sizeof *c->bufs);
    c->rows_seen = calloc((size_t)g->n_taps, sizeof *c->rows_seen);
    if (!c->bufs || !c->rows_seen) return -1;
    for (int i = 0; i < g->n_taps; i++) {
        const golden_tap *t = &g->taps[i];
        c->bufs[i] = malloc((size_t)t->n * sizeof(float));
        if (!c->bufs[i]) return -1;
        /* attention beyond the visible keys: -inf scores, 0 probabilities */
        float fill = t->n_dims == 3 ? (is_scores(t->name) ? -INFINITY : 0.0f) : NAN;
        for (int64_t j = 0; j < t->n; j++) c->bufs[i][j] = fill;
    }
    return 0;
}

static void free_collector(collector *c) {
    if (c->bufs)
        for (int i = 0; i < c->g->n_taps; i++) free(c->bufs[i]);
    free(c->bufs);
    free(c->rows_seen);
}

static void on_tap(const tinyllm_tap *tap, void *user) {
    collector *c = user;
    int i = golden_find(c->g, tap->name);
    if (i < 0) return;
    const golden_tap *t = &c->g->taps[i];
    float *dst = c->bufs[i];
    int ok = tap->n_dims == t->n_dims;
    if (ok && t->n_dims == 2) {
        ok = tap->shape[1] == t->dims[1] && tap->pos0 + tap->shape[0] <= t->dims[0];
        if (ok) memcpy(dst + (size_t)tap->pos0 * t->dims[1], tap->data, (size_t)(tap->shape[0] * tap->shape[1]) * 4);
    } else if (ok) { /* (H, T, L) into (H, N, N) */
        int64_t H = tap->shape[0], T = tap->shape[1], L = tap->shape[2], N = t->dims[1];
        ok = H == t->dims[0] && t->dims[2] == N && tap->pos0 + T <= N && L <= N;
        for (int64_t h = 0; ok && h < H; h++)
            for (int64_t r = 0; r < T; r++)
                memcpy(dst + (h * N + tap->pos0 + r) * N, tap->data + (h * T + r) * L, (size_t)L * 4);
    }
    if (!ok && !c->bad_shape) {
        c->bad_shape = 1;
        snprintf(c->bad_name, sizeof c->bad_name, "%s", tap->name);
    }
    if (ok) c->rows_seen[i] += (int)(t->n_dims == 2 ? tap->shape[0] : tap->shape[1]);
}

typedef struct {
    double max_abs, max_rel, nmse;
    int missing;
} tap_error;

static tap_error compare(const golden_tap *t, const float *got, int rows_seen) {
    tap_error e = {0, 0, 0, 0};
    int64_t rows = t->n_dims == 2 ? t->dims[0] : t->dims[1];
    if (rows_seen < rows) {
        e.missing = 1;
        e.max_abs = e.max_rel = e.nmse = INFINITY;
        return e;
    }
    double ref_max = 0, se = 0, sr = 0;
    for (int64_t j = 0; j < t->n; j++) {
        double a = got[j], b = t->data[j];
        if (isinf(b) && a == b) continue; /* both masked */
        double d = fabs(a - b);
        if (!isfinite(a) || !isfinite(b)) d = INFINITY;
        if (d > e.max_abs || d != d) e.max_abs = d != d ? INFINITY : d;
        if (isfinite(b)) {
            ref_max = fmax(ref_max, fabs(b));
            sr += b * b;
        }
        se += isfinite(d) ? d * d : INFINITY;
    }
    e.max_rel = e.max_abs / (ref_max > 1e-30 ? ref_max : 1e-30);
    e.nmse = sr > 0 ? se / sr : se;
    return e;
}

/* Runs the prompt through prefill (decode_path 0) or one token at a time. */
static int run_path(tinyllm_model *m, const golden *g, int decode_path, collector *c, int n_threads) {
    tinyllm_context_params cp = tinyllm_context_default_params();
    cp.n_ctx = g->n_prompt;
    cp.n_threads = n_threads;
    cp.logits_all = 1;
    tinyllm_context *ctx = NULL;
    tinyllm_error err = {0};
    if (tinyllm_context_create(m, &cp, &ctx, &err)) {
        report("verify", &err);
        return -1;
    }
    tinyllm_context_set_tap(ctx, on_tap, c, NULL);
    int rc = 0;
    if (!decode_path)
        rc = tinyllm_context_prefill(ctx, g->prompt_ids, g->n_prompt, &err);
    else
        for (int i = 0; i < g->n_prompt && !rc; i++) rc = tinyllm_context_decode(ctx, g->prompt_ids[i], &err);
    if (rc) report("verify", &err);
    tinyllm_context_free(ctx);
    return rc ? -1 : 0;
}

static int greedy_continuation(tinyllm_model *m, const golden *g, int *out, int n_threads) {
    tinyllm_context_params cp = tinyllm_context_default_params();
    cp.n_ctx = g->n_prompt + (g->n_cont > 1 ? g->n_cont - 1 : 0); /* the last token is never run */
    cp.n_threads = n_threads;
    tinyllm_context *ctx = NULL;
    tinyllm_error err = {0};
    tinyllm_model_info info;
    tinyllm_model_info_get(m, &info, NULL);
    if (tinyllm_context_create(m, &cp, &ctx, &err) || tinyllm_context_prefill(ctx, g->prompt_ids, g->n_prompt, &err)) {
        report("verify", &err);
        tinyllm_context_free(ctx);
        return -1;
    }
    for (int i = 0; i < g->n_cont; i++) {
        int best = argmax(tinyllm_context_logits(ctx), info.n_vocab);
        out[i] = best;
        if (i + 1 < g->n_cont && tinyllm_context_decode(ctx, best, &err)) {
            report("verify", &err);
            tinyllm_context_free(ctx);
            return -1;
        }
    }
    tinyllm_context_free(ctx);
    return 0;
}

static void shape_text(const golden_tap *t, char *buf, size_t cap) {
    if (t->n_dims == 2)
        snprintf(buf, cap, "(%lld, %lld)", (long long)t->dims[0], (long long)t->dims[1]);
    else if (t->n_dims == 3)
        snprintf(buf, cap, "(%lld, %lld, %lld)", (long long)t->dims[0], (long long)t->dims[1], (long long)t->dims[2]);
    else
        snprintf(buf, cap, "(%lld)", (long long)t->dims[0]);
}

/* The golden must be for this model: its SHA-256, token ids in the
 * vocabulary, and positions within the context (a longer one would cost
 * O(n^2) steps for nothing, and name a --ctx the user never gave).
 * EXIT_OK, or EXIT_MODEL said on stderr. */
static int check_golden_fits(const golden *g, const char *golden_path, const tinyllm_model *m,
                             const char *model_path) {
    char sha[65];
    if (sha256_file(model_path, sha) == 0 && strcmp(sha, g->sha256)) {
        say("tinyllm verify: %s was made for a model with SHA-256 %.12s..., but %s has %.12s... "
            "(wrong model, or regenerate the golden with make golden)\n",
            golden_path, g->sha256, model_path, sha);
        return EXIT_MODEL;
    }
    tinyllm_model_info info;
    tinyllm_model_info_get(m, &info, NULL);
    for (int i = 0; i < g->n_prompt + g->n_cont; i++) {
        int id = i < g->n_prompt ? g->prompt_ids[i] : g->cont_ids[i - g->n_prompt];
        if (id < 0 || id >= info.n_vocab) {
            say("tinyllm verify: %s: %s token %d is %d (expected an id below the model's %d)\n", golden_path,
                i < g->n_prompt ? "prompt" : "continuation", i < g->n_prompt ? i : i - g->n_prompt, id,
                info.n_vocab);
            return EXIT_MODEL;
        }
    }
    long long positions = (long long)g->n_prompt + (g->n_cont > 1 ? g->n_cont - 1 : 0);
    if (positions > info.n_ctx_train) {
        say("tinyllm verify: %s: %d prompt + %d continuation tokens need %lld positions, more than the model's "
            "context of %d (expected a golden made for this model)\n",
            golden_path, g->n_prompt, g->n_cont, positions, info.n_ctx_train);
        return EXIT_MODEL;
    }
    return EXIT_OK;
}

/* The table: each tap's errors on both paths against its tolerance (the
 * golden's own for version 2, else verify's per-kind defaults; --tol/--atol
 * override: NAN when not given). Returns the failing taps' count and the
 * first failing tap of each path in first_fail. */
static int print_tap_table(const golden *g, const collector paths[2], float rtol_override, float atol_override,
                           int quiet, const char *first_fail[2]) {
    printf("%-18s %-16s %-11s %-11s %-10s %-10s %-9s %s\n", "tap", "shape", "prefill", "decode", "max rel", "NMSE",
           "tol", "result");
    printf("%-18s %-16s %-11s %-11s\n", "", "", "max|err|", "max|err|");
    int n_fail = 0;
    for (int i = 0; i < g->n_taps; i++) {
        const golden_tap *t = &g->taps[i];
        tolerance tol = tolerance_for(t->name);
        if (!isnan(rtol_override)) tol.rtol = rtol_override;
        if (!isnan(atol_override)) tol.atol = atol_override;
        double ref_max = 0;
        for (int64_t j = 0; j < t->n; j++)
            if (isfinite(t->data[j])) ref_max = fmax(ref_max, fabs(t->data[j]));
        /* a version 2 golden carries each tap's tolerance, derived by the
         * reference for this model (quantized models: the activation
         * rounding); --tol/--atol still override */
        double limit = g->has_tolerances && isnan(rtol_override) && isnan(atol_override)
                           ? t->tol
                           : tol.atol + tol.rtol * ref_max;
        tap_error e[2];
        int ok = 1;
        for (int p = 0; p < 2; p++) {
            e[p] = compare(t, paths[p].bufs[i], paths[p].rows_seen[i]);
            if (!(e[p].max_abs <= limit)) {
                ok = 0;
                if (!first_fail[p]) first_fail[p] = t->name;
            }
        }
        n_fail += !ok;
        if (quiet && ok) continue;
        char shape[48], a[16], b[16];
        shape_text(t, shape, sizeof shape);
        snprintf(a, sizeof a, e[0].missing ? "missing" : "%.2e", e[0].max_abs);
        snprintf(b, sizeof b, e[1].missing ? "missing" : "%.2e", e[1].max_abs);
        printf("%-18s %-16s %-11s %-11s %-10.2e %-10.2e %-9.1e %s\n", t->name, shape, a, b,
               fmax(e[0].max_rel, e[1].max_rel), fmax(e[0].nmse, e[1].nmse), limit, ok ? "ok" : "FAIL");
    }
    for (int p = 0; p < 2; p++)
        if (paths[p].bad_shape)
            printf("\n%s: tap %s had a shape that does not fit the golden\n", p ? "decode" : "prefill",
                   paths[p].bad_name);
    return n_fail;
}

/* The greedy continuation against the golden's: 1 when they agree. A
 * version 2 golden says how many tokens are decisive: past the reference's
 * first near tie either choice is correct arithmetic. */
static int print_continuation(const golden *g, const int *cont) {
    int n_check = g->has_tolerances ? g->n_decisive : g->n_cont, first_diff = -1;
    for (int i = 0; i < n_check && first_diff < 0; i++)
        if (cont[i] != g->cont_ids[i]) first_diff = i;
    if (first_diff >= 0)
        printf("greedy continuation: FAIL, first difference at token %d (engine %d, reference %d)\n", first_diff,
               cont[first_diff], g->cont_ids[first_diff]);
    else if (n_check < g->n_cont)
        printf("greedy continuation: %d of %d tokens match (the %d decisive ones; then a near tie)\n", n_check,
               n_check, n_check);
    else
        printf("greedy continuation: %d of %d tokens match\n", g->n_cont, g->n_cont);
    return first_diff < 0;
}

/* Runs both paths and the continuation, prints the report: EXIT_OK,
 * EXIT_VERIFY or EXIT_RUNTIME. */
static int verify(tinyllm_model *m, const golden *g, const char *model_path, const char *golden_path, int n_threads,
                  float rtol_override, float atol_override, int quiet, int no_progress) {
    collector paths[2] = {0};
    int *cont = malloc(((size_t)g->n_cont + 1) * sizeof *cont), rc = EXIT_RUNTIME;
    if (!cont || build_collector(&paths[0], g) || build_collector(&paths[1], g)) {
        say("tinyllm verify: out of memory\n");
        goto done;
    }
    int show = progress_wanted(no_progress);
    progress(show, "verify: 1/3 prefill of %d tokens with every tap", g->n_prompt);
    int failed = run_path(m, g, 0, &paths[0], n_threads);
    progress(show, "verify: 2/3 token-by-token decode of %d tokens", g->n_prompt);
    failed = failed || run_path(m, g, 1, &paths[1], n_threads);
    progress(show, "verify: 3/3 greedy continuation of %d tokens", g->n_cont);
    failed = failed || greedy_continuation(m, g, cont, n_threads);
    progress_end(show);
    if (failed) goto done;
    char shown_prompt[256]; /* text from the golden file: one escaped line */
    printf("model:   %s\ngolden:  %s (%d prompt tokens, %d taps)\nprompt:  %s\n\n", model_path, golden_path,
           g->n_prompt, g->n_taps, tinyllm_printable(g->prompt, strlen(g->prompt), shown_prompt, sizeof shown_prompt));
    const char *first_fail[2] = {NULL, NULL};
    int n_fail = print_tap_table(g, paths, rtol_override, atol_override, quiet, first_fail);
    printf("\ntaps: %d of %d within tolerance\n", g->n_taps - n_fail, g->n_taps);
    if (first_fail[0]) printf("FIRST FAILING TAP (prefill): %s\n", first_fail[0]);
    if (first_fail[1]) printf("FIRST FAILING TAP (decode): %s\n", first_fail[1]);
    int cont_ok = print_continuation(g, cont);
    int pass = n_fail == 0 && cont_ok && !paths[0].bad_shape && !paths[1].bad_shape;
    printf("verify: %s\n", pass ? "PASS" : "FAIL");
    rc = pass ? EXIT_OK : EXIT_VERIFY;
done:
    free(cont);
    free_collector(&paths[0]);
    free_collector(&paths[1]);
    return rc;
}

int cmd_verify(int argc, char **argv) {
    const char *golden_path = NULL, *experiment = NULL;
    float rtol_override = NAN, atol_override = NAN; /* NAN: not given */
    int quiet = 0, no_progress = 0;
    common_flags cf = {0};
    const unsigned common = CF_MODEL | CF_THREADS | CF_WEIGHTS;
    const opt_spec own[] = {
        {"--golden", "-g", OPT_STRING, &golden_path, "FILE", "golden file from tools/golden.py (required)", NULL},
        {"--tol", NULL, OPT_FLOAT, &rtol_override, "R", "relative tolerance for every tap (default: per tap)", NULL},
        {"--atol", NULL, OPT_FLOAT, &atol_override, "A", "absolute tolerance for every tap (default: per tap)", NULL},
        {"--quiet", "-q", OPT_FLAG, &quiet, "", "print failures and the summary only", NULL},
        {"--no-progress", NULL, OPT_FLAG, &no_progress, "", "no progress line on a terminal's stderr", NULL},
        {"--experiment", NULL, OPT_STRING, &experiment, "NAME", "refused: a golden is the model as trained", NULL},
    };
    opt_spec opts[MAX_OPTS];
    command_spec cmd = {"verify", "-m MODEL.gguf --golden FILE.tlg [options]",
                        "Compare every tap of prefill and decode, and the greedy continuation, with a golden "
                        "file from the reference.",
                        opts, 0};
    int rc = parse_command(&cmd, opts, common, &cf, own, N_OPTS(own), argc, argv);
    if (rc >= 0) return rc;
    if (experiment)
        return usage_error(&cmd, "--experiment: refused (a golden holds the model as trained; run experiments with "
                                 "generate, perplexity, step, attn or explore)");
    if (!golden_path) return usage_error(&cmd, "missing --golden FILE");
    if (!isnan(rtol_override) && !(rtol_override >= 0 && isfinite(rtol_override)))
        return usage_error(&cmd, "--tol %g: expected a finite tolerance >= 0", rtol_override);
    if (!isnan(atol_override) && !(atol_override >= 0 && isfinite(atol_override)))
        return usage_error(&cmd, "--atol %g: expected a finite tolerance >= 0", atol_override);
    golden g;
    char msg[512];
    if (golden_load(golden_path, &g, msg, sizeof msg)) {
        say("tinyllm verify: %s\n", msg);
        return EXIT_MODEL;
    }
    /* the model first: its loader refuses FIFOs and devices, so hashing it cannot block */
    tinyllm_model_params mp = model_params_from(&cf);
    tinyllm_model *m = load_model_or_report("verify", cf.model, &mp);
    rc = !m ? EXIT_MODEL : check_golden_fits(&g, golden_path, m, cf.model);
    if (!rc)
        rc = verify(m, &g, cf.model, golden_path, cf.n_threads, rtol_override, atol_override, quiet, no_progress);
    tinyllm_model_free(m);
    golden_free(&g);
    return rc;
}
