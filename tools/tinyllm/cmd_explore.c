/* tinyllm explore: runs a prompt (and a continuation) with every tap
 * recorded and writes one self-contained HTML page to look inside with:
 * attention per layer and head, the logit lens, the residual stream and tap
 * statistics, the next-token distribution under the sampler's rules, the
 * decode steps. The page's sources live in explore/ (compiled in as strings);
 * this file gathers the data and writes it into the page as JSON with
 * base64 arrays (float16 where 1e-3 is enough, float32 for statistics). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "explore_runs.h"
#include "json.h"
#include "half.h" /* the library's float16 conversion */
#include "probs.h"
#include "stepper.h"

/* explore/page.html, explore.css, explore.js (build/gen/explore_assets.c) */
extern const char explore_page_html[], explore_css[], explore_js[];

#define LENS_TOP 5                    /* tokens per logit-lens cell */
#define FULL_LOGITS_MAX_VOCAB 8192    /* larger vocabularies keep the top logits per position */
#define TOP_LOGITS_DEFAULT 1024
enum { STAT_MEAN, STAT_STD, STAT_MIN, STAT_MAX, STAT_RMS, N_STATS };
static const char *const STAT_NAMES[N_STATS] = {"mean", "std", "min", "max", "rms"};

typedef struct {
    int layers[MAX_LIST]; /* layers whose attention the page holds, ascending */
    int n_layers;
    int logits_k;         /* next-token logits kept per position (n_vocab: all) */
    float max_mb;         /* the page's size limit, megabytes */
    tinyllm_sampler_params sp;
    int n_gen;            /* continuation tokens asked for */
    const char *model_path, *prompt;
    tinyllm_experiments toggles[MAX_LIST]; /* the what-if runs the page switches between */
    int n_toggles;
    const char *toggles_left_out; /* why the default toggles were dropped, or NULL */
    explore_run *runs;    /* built: one per toggle */
    int n_runs;
} explore_plan;

#define POS_TABLE_CELLS 262144 /* position-table values kept (positions x dims), at most */
#define ROPE_HEADS 4           /* heads whose q before and after RoPE the page keeps */

/* ------------------------------------------------------------ sizes -- */

/* Bytes of the stored arrays and text for n tokens: what the page's size
 * grows with (the page's own sources are added by the caller). */
static double estimate_data_bytes(const stepper *st, const explore_plan *pl, int n) {
    double tri = (double)n * (n + 1) / 2, H = st->info.n_head, V = st->info.n_vocab, K = pl->logits_k;
    double attn = pl->n_layers * H * tri * 2;
    double logits = n * K * 2 + (K < V ? n * K * 4 : 0);
    double stats = (double)st->store.n * n * N_STATS * 4;
    double lens = (st->info.n_layer + 1.0) * n * LENS_TOP * 16;
    double vocab = 0;
    for (int i = 0; i < st->info.n_vocab; i++) vocab += strlen(tinyllm_token_piece(st->m, i)) + 4;
    double positions = st->info.positions == TINYLLM_POS_ROPE
                           ? 2.0 * n * (H < ROPE_HEADS ? H : ROPE_HEADS) * st->info.head_dim * 2
                           : fmin((double)n * st->info.n_embd, POS_TABLE_CELLS) * 2;
    return (attn + logits + stats + positions + n * 4.0) * 4 / 3 + lens + vocab + n * 32.0;
}

/* ------------------------------------------------------------- data -- */

/* Attention of the chosen layers: (layers, heads, n, n) lower triangles as
 * float16, row q holding keys 0..q. NULL when out of memory. */
static uint16_t *attention_f16(const stepper *st, const explore_plan *pl, int n, size_t *count) {
    int H = st->info.n_head;
    size_t tri = (size_t)n * (n + 1) / 2;
    *count = (size_t)pl->n_layers * H * tri;
    uint16_t *out = calloc(*count ? *count : 1, sizeof *out), *o = out;
    if (!out) return NULL;
    for (int li = 0; li < pl->n_layers; li++) {
        char name[48];
        snprintf(name, sizeof name, "%d.attn_probs", pl->layers[li]);
        int tap = tap_index(st, name);
        for (int h = 0; h < H; h++)
            for (int q = 0; q < n; q++) {
                const float *row = tap_store_row(&st->store, tap, q); /* (H, q + 1) */
                for (int k = 0; k <= q; k++) *o++ = row ? f32_to_f16(row[(size_t)h * (q + 1) + k]) : 0;
            }
    }
    return out;
}

/* The next-token logits of every position minus the position's maximum, as
 * float16 (exact near the top, where probabilities live): (n, K), with the
 * token ids (n, K) when K < n_vocab (the K largest, in descending order)
 * and the maxima (n). -1 when out of memory. */
static int logits_f16(const stepper *st, int n, int K, uint16_t **values, uint32_t **ids, float **maxima) {
    int V = st->info.n_vocab;
    *values = malloc((size_t)n * K * sizeof **values);
    *ids = K < V ? malloc((size_t)n * K * sizeof **ids) : NULL;
    *maxima = malloc((size_t)n * sizeof **maxima);
    const float **rows = malloc((size_t)n * sizeof *rows);
    int rc = !*values || !*maxima || (K < V && !*ids) || !rows ? -1 : 0;
    for (int p = 0; !rc && p < n; p++) rows[p] = logits_at(st, p);
    if (!rc) rc = top_logits_f16(rows, n, V, K, *values, *ids, *maxima);
    free(rows);
    return rc;
}

/* mean, std, min, max, rms of every tap at every position (finite values;
 * 3D taps over all heads' visible keys): (taps, n, N_STATS) float32. */
static float *tap_statistics(const stepper *st, int n) {
    float *out = malloc((size_t)st->store.n * n * N_STATS * sizeof *out);
    if (!out) return NULL;
    for (int t = 0; t < st->store.n; t++) {
        const stored_tap *tap = &st->store.taps[t];
        for (int p = 0; p < n; p++) {
            const float *row = tap_store_row(&st->store, t, p);
            long len = tap->n_dims == 2 ? tap->cols : (long)tap->cols * (p + 1), finite = 0;
            double sum = 0, sq = 0, mn = INFINITY, mx = -INFINITY;
            for (long i = 0; row && i < len; i++) {
                if (!isfinite(row[i])) continue;
                sum += row[i], sq += (double)row[i] * row[i], finite++;
                mn = fmin(mn, row[i]), mx = fmax(mx, row[i]);
            }
            float *s = out + ((size_t)t * n + p) * N_STATS;
            double mean = finite ? sum / finite : NAN;
            s[STAT_MEAN] = (float)mean;
            s[STAT_STD] = finite ? (float)sqrt(fmax(0, sq / finite - mean * mean)) : NAN;
            s[STAT_MIN] = finite ? (float)mn : NAN;
            s[STAT_MAX] = finite ? (float)mx : NAN;
            s[STAT_RMS] = finite ? (float)sqrt(sq / finite) : NAN;
        }
    }
    return out;
}

/* The logit lens: the residual stream entering the layers ("pos" or
 * "embed") and after each layer, through the final norm and classifier; the
 * LENS_TOP most likely tokens of every (row, position). */
static int write_lens(json_writer *w, const stepper *st, int n) {
    int V = st->info.n_vocab, L = st->info.n_layer, rows = 0;
    int *taps = malloc(((size_t)L + 1) * sizeof *taps);
    float *logits = malloc((size_t)V * sizeof *logits);
    ranked *top = malloc(((size_t)L + 1) * n * LENS_TOP * sizeof *top);
    if (!taps || !logits || !top) {
        free(taps), free(logits), free(top);
        return -1;
    }
    taps[rows++] = tap_index(st, "pos") >= 0 ? tap_index(st, "pos") : tap_index(st, "embed");
    for (int l = 0; l < L; l++) {
        char name[48];
        snprintf(name, sizeof name, "%d.resid_ffn", l);
        if ((taps[rows] = tap_index(st, name)) >= 0) rows++;
    }
    for (int r = 0; r < rows; r++)
        for (int p = 0; p < n; p++) {
            ranked *cell = top + ((size_t)r * n + p) * LENS_TOP;
            const float *x = tap_store_row(&st->store, taps[r], p);
            int got = x && !tinyllm_model_logit_lens(st->m, x, logits, NULL) ? top_k_probs(logits, V, LENS_TOP, cell) : 0;
            for (int i = got; i < LENS_TOP; i++) cell[i] = (ranked){-1, NAN};
        }
    json_open(w, "lens", '{');
    json_open(w, "rows", '[');
    for (int r = 0; r < rows; r++) json_str(w, NULL, st->store.taps[taps[r]].name);
    json_close(w);
    json_int(w, "k", LENS_TOP);
    json_open(w, "ids", '[');
    for (size_t i = 0; i < (size_t)rows * n * LENS_TOP; i++) json_int(w, NULL, top[i].id);
    json_close(w);
    json_open(w, "p", '[');
    for (size_t i = 0; i < (size_t)rows * n * LENS_TOP; i++) json_num(w, NULL, "%.5g", top[i].p);
    json_close(w);
    json_close(w);
    free(taps), free(logits), free(top);
    return 0;
}

/* Which elements RoPE turns together, read from the run itself rather
 * than the family's name: a rotation keeps each pair's length, so at
 * position 1 (turned by theta^(-2i/d) per pair) the right pairing leaves
 * every pair of head 0 as long as before. 1: the halves (i, i + d/2), as
 * qwen2 stores q; 0: adjacent (2i, 2i + 1), as llama. */
static int rope_pairs_are_halves(const float *pre, const float *post, int d) {
    double off[2] = {0, 0}; /* |change of pair length| summed, adjacent and halves */
    for (int i = 0; i < d / 2; i++)
        for (int halves = 0; halves < 2; halves++) {
            int a = halves ? i : 2 * i, b = halves ? i + d / 2 : 2 * i + 1;
            off[halves] += fabs(hypot(pre[a], pre[b]) - hypot(post[a], post[b]));
        }
    return off[1] < off[0];
}

/* The positions view's data. RoPE: q before and after the rotation for the
 * first ROPE_HEADS heads of the first stored layer, (n, heads, head_dim)
 * each. Absolute positions: the table's rows 0..n-1 (pos minus embed: what
 * was added), the first dims that fit POS_TABLE_CELLS. null where the run
 * had no positions (the no-positions experiment). */
static void write_positions(json_writer *w, const stepper *st, const explore_plan *pl, int n) {
    int rope = st->info.positions == TINYLLM_POS_ROPE;
    json_open(w, "positions", '{');
    json_str(w, "kind", rope ? "rope" : st->info.positions == TINYLLM_POS_LEARNED ? "learned" : "sinusoidal");
    if (rope) {
        int L = pl->layers[0], d = st->info.head_dim, nh = st->info.n_head < ROPE_HEADS ? st->info.n_head : ROPE_HEADS;
        char pre_name[48], post_name[48];
        snprintf(pre_name, sizeof pre_name, "%d.q_pre_rope", L), snprintf(post_name, sizeof post_name, "%d.q", L);
        int pre = tap_index(st, pre_name), post = tap_index(st, post_name);
        json_num(w, "theta", NULL, st->info.rope_theta);
        const float *pre1 = pre >= 0 && n > 1 ? tap_store_row(&st->store, pre, 1) : NULL;
        const float *post1 = post >= 0 && n > 1 ? tap_store_row(&st->store, post, 1) : NULL;
        json_str(w, "pairs", pre1 && post1 && rope_pairs_are_halves(pre1, post1, d) ? "halves" : "adjacent");
        json_int(w, "layer", L), json_int(w, "heads", nh), json_int(w, "head_dim", d);
        uint16_t *buf = pre >= 0 && post >= 0 ? malloc((size_t)n * nh * d * sizeof *buf) : NULL;
        for (int which = 0; which < 2; which++) {
            const char *name = which ? "q" : "q_pre";
            if (!buf) {
                json_null(w, name);
                continue;
            }
            for (int p = 0; p < n; p++) {
                const float *row = tap_store_row(&st->store, which ? post : pre, p);
                for (int i = 0; i < nh * d; i++) buf[(size_t)p * nh * d + i] = row ? f32_to_f16(row[i]) : 0;
            }
            json_base64(w, name, buf, (size_t)n * nh * d * sizeof *buf);
        }
        free(buf);
    } else {
        int C = st->info.n_embd, dims = (long)n * C > POS_TABLE_CELLS ? POS_TABLE_CELLS / n : C;
        int embed = tap_index(st, "embed"), pos = tap_index(st, "pos");
        uint16_t *buf = pos >= 0 && embed >= 0 ? malloc((size_t)n * dims * sizeof *buf) : NULL;
        json_int(w, "dims", dims), json_int(w, "n_embd", C);
        if (!buf) {
            json_null(w, "table");
        } else {
            for (int p = 0; p < n; p++) {
                const float *a = tap_store_row(&st->store, pos, p), *b = tap_store_row(&st->store, embed, p);
                for (int i = 0; i < dims; i++) buf[(size_t)p * dims + i] = a && b ? f32_to_f16(a[i] - b[i]) : 0;
            }
            json_base64(w, "table", buf, (size_t)n * dims * sizeof *buf);
        }
        free(buf);
    }
    json_close(w);
}

/* The next-token logits as the page stores them: {"k", "max", ["ids"], "values"} */
static void write_logits(json_writer *w, const char *key, int n, int k, const float *maxima, const uint32_t *ids,
                         const uint16_t *values) {
    json_open(w, key, '{');
    json_int(w, "k", k);
    json_str(w, "encoding", "f16");
    json_open(w, "max", '[');
    for (int p = 0; p < n; p++) json_num(w, NULL, NULL, maxima[p]);
    json_close(w);
    if (ids) json_base64(w, "ids", ids, (size_t)n * k * sizeof *ids);
    json_base64(w, "values", values, (size_t)n * k * sizeof *values);
    json_close(w);
}

/* The what-if runs: each toggle's attention, logits, surprisal and its own
 * continuation (see explore_runs.h). */
static void write_runs(json_writer *w, const stepper *st, const explore_plan *pl, int n) {
    json_open(w, "runs", '[');
    for (int i = 0; i < pl->n_runs; i++) {
        const explore_run *r = &pl->runs[i];
        json_open(w, NULL, '{');
        json_str(w, "name", r->name);
        json_bool(w, "square", r->square);
        json_int(w, "nonfinite", r->n_nonfinite);
        json_base64(w, "attention", r->attn, r->n_attn * sizeof *r->attn);
        json_base64(w, "bits", r->bits, (size_t)(n - 1) * sizeof *r->bits);
        write_logits(w, "logits", n, r->k, r->logit_max, r->logit_ids, r->logit_values);
        json_open(w, "continuation", '{');
        json_ints(w, "tokens", r->continuation, r->n_continuation);
        json_open(w, "labels", '[');
        for (int t = 0; t < r->n_continuation; t++) {
            char *l = token_label(st->m, r->continuation[t]);
            json_str(w, NULL, l);
            free(l);
        }
        json_close(w);
        json_str(w, "stop", r->stop);
        json_close(w);
        json_close(w);
    }
    json_close(w);
    json_str(w, "toggles_left_out", pl->toggles_left_out);
}

/* The model's facts, as the page's header and estimates use them */
static void write_model(json_writer *w, const stepper *st, const explore_plan *pl) {
    const tinyllm_model_info *in = &st->info;
    json_open(w, "model", '{');
    const char *base = strrchr(pl->model_path, '/');
    json_str(w, "file", base ? base + 1 : pl->model_path);
    json_str(w, "name", in->name), json_str(w, "architecture", in->architecture);
    json_str(w, "norm", in->norm), json_str(w, "activation", in->activation);
    json_int(w, "n_layer", in->n_layer), json_int(w, "n_head", in->n_head);
    json_int(w, "n_head_kv", in->n_head_kv), json_int(w, "n_embd", in->n_embd);
    json_int(w, "head_dim", in->head_dim), json_int(w, "n_ff", in->n_ff);
    json_int(w, "n_vocab", in->n_vocab), json_int(w, "n_ctx", tinyllm_context_n_ctx(st->ctx));
    json_str(w, "positions", in->positions == TINYLLM_POS_ROPE      ? "rope"
                             : in->positions == TINYLLM_POS_LEARNED ? "learned"
                                                                    : "sinusoidal");
    json_int(w, "n_params", in->n_params);
    json_close(w);
}

/* How the continuation was made, and the sampler's defaults (the page's
 * sampler panel starts from the run's own settings) */
static void write_generation(json_writer *w, const explore_plan *pl, int made, const char *stop_reason) {
    json_open(w, "generation", '{');
    json_int(w, "asked", pl->n_gen), json_int(w, "made", made);
    json_str(w, "stop", stop_reason);
    json_bool(w, "greedy", pl->sp.temperature == 0.0f);
    json_num(w, "temperature", NULL, pl->sp.temperature), json_int(w, "top_k", pl->sp.top_k);
    json_num(w, "top_p", NULL, pl->sp.top_p), json_num(w, "min_p", NULL, pl->sp.min_p);
    json_uint(w, "seed", pl->sp.seed);
    json_close(w);
    tinyllm_sampler_params dp = tinyllm_sampler_default_params();
    json_open(w, "sampler_defaults", '{');
    json_num(w, "temperature", NULL, dp.temperature), json_int(w, "top_k", dp.top_k);
    json_num(w, "top_p", NULL, dp.top_p), json_num(w, "min_p", NULL, dp.min_p);
    json_close(w);
}

/* The page's data: one JSON object (html_safe strings, so it can sit in a
 * <script> element). -1 when out of memory. */
static int write_data(FILE *f, const stepper *st, const explore_plan *pl, const char *stop_reason) {
    int n = st->n_tokens, V = st->info.n_vocab, rc = -1;
    size_t n_attn = 0;
    uint16_t *attn = attention_f16(st, pl, n, &n_attn), *lvals = NULL;
    uint32_t *lids = NULL;
    float *lmax = NULL, *stats = tap_statistics(st, n), *bits = malloc((size_t)n * sizeof *bits);
    const float **rows = malloc((size_t)n * sizeof *rows);
    if (!attn || !stats || !bits || !rows || logits_f16(st, n, pl->logits_k, &lvals, &lids, &lmax)) goto done;
    for (int p = 0; p < n; p++) rows[p] = logits_at(st, p);
    surprisal_bits(rows, st->tokens, n, V, bits);
    json_writer w = json_writer_to(f, 1, 0);
    json_open(&w, NULL, '{');
    json_str(&w, "format", "tinyllm-explore 1");
    json_str(&w, "version", TINYLLM_VERSION);
    write_model(&w, st, pl);
    json_str(&w, "prompt", pl->prompt);
    char experiments[256];
    tinyllm_experiments_describe(&st->exp, experiments, sizeof experiments);
    json_str(&w, "experiments", experiments); /* "none", or what the run switched off */
    json_int(&w, "n_prompt", st->n_prompt), json_int(&w, "n_tokens", n);
    write_generation(&w, pl, n - st->n_prompt, stop_reason);
    json_ints(&w, "tokens", st->tokens, n);
    json_open(&w, "labels", '[');
    for (int i = 0; i < n; i++) json_str(&w, NULL, st->labels[i]);
    json_close(&w);
    json_open(&w, "vocab", '[');
    for (int i = 0; i < V; i++) {
        char *l = token_label(st->m, i);
        json_str(&w, NULL, l);
        free(l);
    }
    json_close(&w);

    json_open(&w, "attention", '{');
    json_ints(&w, "layers", pl->layers, pl->n_layers);
    json_int(&w, "heads", st->info.n_head);
    json_str(&w, "encoding", "f16");
    json_base64(&w, "data", attn, n_attn * sizeof *attn);
    json_close(&w);

    write_logits(&w, "logits", n, pl->logits_k, lmax, lids, lvals);
    json_base64(&w, "bits", bits, (size_t)(n - 1) * sizeof *bits); /* -log2 p(next token), (n - 1) */
    json_open(&w, "kv", '{');
    json_int(&w, "bytes_per_token", (long long)tinyllm_model_kv_bytes(st->m, 1));
    json_int(&w, "n_ctx", tinyllm_context_n_ctx(st->ctx));
    json_int(&w, "bytes_context", (long long)tinyllm_model_kv_bytes(st->m, tinyllm_context_n_ctx(st->ctx)));
    json_close(&w);
    write_positions(&w, st, pl, n);
    write_runs(&w, st, pl, n);

    if (write_lens(&w, st, n)) goto done;

    json_open(&w, "stats", '{');
    json_open(&w, "fields", '[');
    for (int s = 0; s < N_STATS; s++) json_str(&w, NULL, STAT_NAMES[s]);
    json_close(&w);
    json_open(&w, "taps", '[');
    for (int t = 0; t < st->store.n; t++) {
        const stored_tap *tap = &st->store.taps[t];
        json_open(&w, NULL, '{');
        json_str(&w, "name", tap->name);
        json_str(&w, "kind", tap->kind);
        json_int(&w, "layer", tap->layer), json_int(&w, "dims", tap->n_dims), json_int(&w, "cols", tap->cols);
        json_close(&w);
    }
    json_close(&w);
    json_str(&w, "encoding", "f32");
    json_base64(&w, "data", stats, (size_t)st->store.n * n * N_STATS * sizeof *stats);
    json_close(&w);
    json_close(&w);
    rc = ferror(f) ? -1 : 0;
done:
    free(attn), free(stats), free(lvals), free(lids), free(lmax), free(bits), free(rows);
    return rc;
}

/* The page: the template with its <!--@NAME@--> markers filled. */
static int write_page(FILE *f, const stepper *st, const explore_plan *pl, const char *stop_reason) {
    const char *t = explore_page_html;
    while (*t) {
        const char *m = strstr(t, "<!--@");
        size_t lit = m ? (size_t)(m - t) : strlen(t);
        fwrite(t, 1, lit, f);
        if (!m) break;
        const char *end = strstr(m, "@-->");
        if (!end) break;
        size_t len = (size_t)(end - m - 5);
        if (len == 5 && !strncmp(m + 5, "TITLE", 5)) {
            html_write_text(f, *st->info.name ? st->info.name : pl->model_path);
            if (st->exp.flags) {
                char names[256];
                tinyllm_experiments_describe(&st->exp, names, sizeof names);
                fputs(" (experiment: ", f), html_write_text(f, names), fputc(')', f);
            }
        } else if (len == 3 && !strncmp(m + 5, "CSS", 3)) {
            fputs(explore_css, f);
        } else if (len == 2 && !strncmp(m + 5, "JS", 2)) {
            fputs(explore_js, f);
        } else if (len == 4 && !strncmp(m + 5, "DATA", 4)) {
            if (write_data(f, st, pl, stop_reason)) return -1;
        }
        t = end + 4;
    }
    return ferror(f) ? -1 : 0;
}

/* ---------------------------------------------------------- command -- */

/* The continuation: n_gen tokens chosen by the sampler (greedy at
 * temperature 0) and decoded one at a time through the KV cache, every tap
 * recorded. Stops early at the end-of-text token. Returns the reason it
 * stopped, or NULL after an error (printed). */
static const char *generate(stepper *st, const explore_plan *pl) {
    tinyllm_error err = {0};
    tinyllm_sampler *s = NULL;
    if (tinyllm_sampler_create(&pl->sp, st->info.n_vocab, &s, &err)) {
        report("explore", &err);
        return NULL;
    }
    const char *why = "length";
    for (int i = 0; i < pl->n_gen; i++) {
        int id = tinyllm_sampler_sample(s, logits_at(st, st->n_tokens - 1), st->tokens, st->n_tokens, &err);
        if (id < 0 || tinyllm_context_decode(st->ctx, id, &err)) {
            report("explore", &err);
            why = NULL;
            break;
        }
        if (add_token(st, id) || st->store.oom) {
            say("tinyllm explore: out of memory while recording the taps\n");
            why = NULL;
            break;
        }
        if (id == tinyllm_token_eos(st->m)) {
            why = "end of text";
            break;
        }
    }
    tinyllm_sampler_free(s);
    return why;
}

/* --toggles LIST: "none", or runs separated by commas, each one experiment
 * or several joined by '+' ("no-scale,no-mask+no-scale,attn-scale=0.5").
 * NULL (not given): the default set. 0, or -1 with the reason in why. */
static int parse_toggles(const char *spec, explore_plan *pl, char *why, size_t why_cap) {
    pl->n_toggles = 0;
    if (!spec) {
        for (int i = 0; i < EXPLORE_N_TOGGLES_DEFAULT; i++)
            tinyllm_experiments_parse(EXPLORE_TOGGLES_DEFAULT[i], &pl->toggles[pl->n_toggles++], NULL);
        return 0;
    }
    if (!strcmp(spec, "none")) return 0;
    const char *p = spec;
    for (;;) {
        size_t len = strcspn(p, ",");
        char item[128];
        if (len == 0 || len >= sizeof item) {
            snprintf(why, why_cap, "expected experiment names separated by commas, or none");
            return -1;
        }
        if (pl->n_toggles == MAX_LIST) {
            snprintf(why, why_cap, "at most %d runs", MAX_LIST);
            return -1;
        }
        memcpy(item, p, len), item[len] = 0;
        for (char *c = item; *c; c++)
            if (*c == '+') *c = ',';
        tinyllm_error err = {0};
        tinyllm_experiments *e = &pl->toggles[pl->n_toggles];
        if (tinyllm_experiments_parse(item, e, &err)) {
            snprintf(why, why_cap, "%s", err.message);
            return -1;
        }
        if (!e->flags) {
            snprintf(why, why_cap, "'%s' is no experiment (the page always holds the model as trained)", item);
            return -1;
        }
        pl->n_toggles++;
        if (!p[len]) return 0;
        p += len + 1;
    }
}

/* The what-if runs over the page's text; 0, or an exit code after a message. */
static int build_runs(stepper *st, explore_plan *pl, int n_threads) {
    pl->runs = calloc((size_t)pl->n_toggles + 1, sizeof *pl->runs);
    if (!pl->runs) return EXIT_RUNTIME;
    explore_runs_plan rp = {st->m,           tinyllm_context_n_ctx(st->ctx), n_threads,    st->tokens, st->n_tokens,
                            st->n_prompt,    pl->layers,                     pl->n_layers, pl->sp,     pl->n_gen};
    for (int i = 0; i < pl->n_toggles; i++) {
        char why[600];
        if (explore_run_build(&pl->runs[pl->n_runs], &rp, &pl->toggles[i], why, sizeof why)) {
            explore_run_free(&pl->runs[pl->n_runs]);
            say("tinyllm explore: the %s run: %s\n", pl->runs[pl->n_runs].name, why);
            return EXIT_RUNTIME;
        }
        pl->n_runs++;
    }
    return EXIT_OK;
}

static void free_runs(explore_plan *pl) {
    for (int i = 0; i < pl->n_runs; i++) explore_run_free(&pl->runs[i]);
    free(pl->runs);
}

/* The layers whose attention the page holds: --layers (checked, ascending)
 * or all of them when the model has at most MAX_LIST. 0 or an exit code. */
static int choose_layers(const command_spec *cmd, explore_plan *pl, const int_list *given, int L) {
    if (!given && L > MAX_LIST)
        return usage_error(cmd, "the model has %d layers; the page holds the attention of at most %d: choose them "
                                "with --layers", L, MAX_LIST);
    if (!given) {
        for (int l = 0; l < L; l++) pl->layers[pl->n_layers++] = l;
        return EXIT_OK;
    }
    for (int i = 0; i < given->n; i++) {
        if (given->v[i] < 0 || given->v[i] >= L)
            return usage_error(cmd, "--layers: layer %d is not in the model (it has layers 0..%d)", given->v[i], L - 1);
        for (int j = 0; j < i; j++)
            if (given->v[j] == given->v[i]) return usage_error(cmd, "--layers: layer %d given twice", given->v[i]);
    }
    for (int i = 0; i < given->n; i++) { /* ascending */
        int v = given->v[i], j = pl->n_layers;
        while (j > 0 && pl->layers[j - 1] > v) pl->layers[j] = pl->layers[j - 1], j--;
        pl->layers[j] = v, pl->n_layers++;
    }
    return EXIT_OK;
}

/* The size limit, checked on an estimate before anything runs: the default
 * toggles are dropped (and the page says so) where they would not fit;
 * asked-for ones, or a page too large without them, are refused. */
static int check_size(const command_spec *cmd, const stepper *st, explore_plan *pl, int n_final, int toggles_given) {
    double limit = pl->max_mb * 1e6, assets = strlen(explore_page_html) + strlen(explore_css) + strlen(explore_js);
    double estimate = assets + estimate_data_bytes(st, pl, n_final), runs_bytes = 0;
    explore_runs_plan sizing = {.n_tokens = n_final, .n_layers = pl->n_layers, .n_gen = pl->n_gen};
    for (int i = 0; i < pl->n_toggles; i++)
        runs_bytes += explore_run_bytes(&sizing, &pl->toggles[i], st->info.n_vocab, st->info.n_head);
    if (estimate + runs_bytes > limit && !toggles_given && pl->n_toggles) {
        pl->toggles_left_out = "the experiment toggles would take the page over --max-mb";
        pl->n_toggles = 0, runs_bytes = 0;
    }
    estimate += runs_bytes;
    if (estimate <= limit) return EXIT_OK;
    return usage_error(cmd, "the page would be about %.1f MB for %d tokens and the attention of %d layer(s) x %d heads%s, "
                            "over the %.1f MB limit (--max-mb): store fewer layers with --layers, use fewer tokens%s, "
                            "or raise --max-mb", estimate / 1e6, n_final, pl->n_layers, st->info.n_head,
                       pl->n_toggles ? " in each of its runs" : "", pl->max_mb, pl->n_toggles ? " or --toggles" : "");
}

/* Writes the page through the one safe writer (a temporary renamed over
 * out_path), enforcing the size limit on what was really written. */
static int save_page(const stepper *st, const explore_plan *pl, const char *out_path, const char *stop) {
    out_file o;
    char why[256];
    if (out_open(&o, out_path, pl->model_path, why, sizeof why)) {
        say("tinyllm explore: -o %s: %s\n", out_path, why);
        return EXIT_USAGE;
    }
    if (write_page(o.f, st, pl, stop)) {
        out_abort(&o);
        say("tinyllm explore: -o %s: out of memory or a write error while writing the page\n", out_path);
        return EXIT_RUNTIME;
    }
    long size = ftell(o.f);
    if (size > pl->max_mb * 1e6) { /* the estimate guards; this enforces */
        out_abort(&o);
        say("tinyllm explore: -o %s: the page came to %.1f MB, over the %.1f MB limit (--max-mb); nothing written\n",
            out_path, size / 1e6, pl->max_mb);
        return EXIT_RUNTIME;
    }
    if (out_commit(&o, why, sizeof why)) {
        say("tinyllm explore: -o %s: %s\n", out_path, why);
        return EXIT_RUNTIME;
    }
    printf("wrote %s: %.2f MB, %d tokens (%d prompt + %d generated, stopped at %s), attention of %d layer(s), %d "
           "what-if run(s)%s\n", out_path, size / 1e6, st->n_tokens, st->n_prompt, st->n_tokens - st->n_prompt, stop,
           pl->n_layers, pl->n_runs, pl->toggles_left_out ? " (toggles left out: over --max-mb)" : "");
    return EXIT_OK;
}

int cmd_explore(int argc, char **argv) {
    const char *out_path = "explore.html";
    int top_logits = 0, all_layers_given = 0, greedy = 0;
    const char *toggles = NULL;
    uint64_t seed = 1;
    int_list layers = {0};
    common_flags cf = {0};
    const unsigned common = CF_MODEL | CF_CTX | CF_THREADS | CF_EXPERIMENT;
    explore_plan pl = {.n_gen = 16, .max_mb = 8.0f};
    pl.sp = tinyllm_sampler_default_params(); /* a seeded sample: one page per seed; --greedy for argmax */
    pl.sp.repeat_penalty = 1.0f;
    const opt_spec own[] = {
        {"--prompt", "-p", OPT_STRING, &pl.prompt, "TEXT", "prompt text (required)", NULL},
        {"--n-predict", "-n", OPT_INT, &pl.n_gen, "N",
         "continuation tokens decoded one at a time through the KV cache (default 16; 0 = the prompt only)", NULL},
        {"--output", "-o", OPT_STRING, &out_path, "FILE.html", "the page to write (default explore.html)", NULL},
        {"--layers", NULL, OPT_INT_LIST, &layers, "L,L,...",
         "layers whose attention the page holds (default: all; for long prompts or deep models)", &all_layers_given},
        {"--max-mb", NULL, OPT_FLOAT, &pl.max_mb, "MB",
         "refuse to write a page larger than this (default 8; the estimate comes first)", NULL},
        {"--top-logits", NULL, OPT_INT, &top_logits, "K",
         "next-token logits kept per position (default: all for vocabularies up to 8192, else 1024)", NULL},
        {"--temp", NULL, OPT_FLOAT, &pl.sp.temperature, "T", "continuation temperature; 0 = greedy (default 0.8)", NULL},
        {"--greedy", NULL, OPT_FLAG, &greedy, NULL, "the most likely token every step (same as --temp 0)", NULL},
        {"--toggles", NULL, OPT_STRING, &toggles, "LIST",
         "what-if runs the page switches between: experiments separated by commas, '+' joins several into one "
         "run, or none (default: no-scale,no-mask,mask-after-softmax,naive-softmax,no-positions,no-norm, left out "
         "if over --max-mb)",
         NULL},
        {"--top-k", NULL, OPT_INT, &pl.sp.top_k, "K", "continuation top-k; 0 = off (default 40)", NULL},
        {"--top-p", NULL, OPT_FLOAT, &pl.sp.top_p, "P", "continuation top-p in (0,1] (default 0.95)", NULL},
        {"--min-p", NULL, OPT_FLOAT, &pl.sp.min_p, "P", "continuation min-p (default 0.05)", NULL},
        {"--seed", "-s", OPT_U64, &seed, "N", "sampling seed (default 1: the same page every run)", NULL},
    };
    opt_spec opts[MAX_OPTS];
    command_spec cmd = {"explore", "-m MODEL.gguf -p PROMPT [-n N] [-o FILE.html] [options]",
                        "Write one self-contained HTML page to look inside a forward pass: attention, logit "
                        "lens, residual stream, next-token distribution, decode steps.",
                        opts, 0};
    int rc = parse_command(&cmd, opts, common, &cf, own, N_OPTS(own), argc, argv);
    if (rc >= 0) return rc;
    pl.model_path = cf.model;
    if (!pl.prompt) return usage_error(&cmd, "missing -p PROMPT");
    if (!*pl.prompt) return usage_error(&cmd, "-p: the prompt is empty (expected some text)");
    if (!*out_path) return usage_error(&cmd, "-o: empty file name (expected a path for the page)");
    if (pl.n_gen < 0) return usage_error(&cmd, "-n %d: expected a number of tokens >= 0", pl.n_gen);
    if (!(pl.max_mb > 0) || !isfinite(pl.max_mb))
        return usage_error(&cmd, "--max-mb %g: expected a size in megabytes > 0", pl.max_mb);
    if (top_logits < 0) return usage_error(&cmd, "--top-logits %d: expected >= 1 (0 = the default)", top_logits);
    pl.sp.seed = seed;
    if (greedy) pl.sp.temperature = 0.0f;
    char why[600];
    if (parse_toggles(toggles, &pl, why, sizeof why)) return usage_error(&cmd, "--toggles %s: %s", toggles, why);
    if (toggles && cf.exp.flags)
        return usage_error(&cmd, "--toggles with --experiment: the toggles compare runs with the model as trained "
                                 "(use one or the other)");
    if (cf.exp.flags) pl.n_toggles = 0; /* the page is itself one experiment */
    tinyllm_error err = {0};
    if (tinyllm_sampler_params_check(&pl.sp, &err)) return usage_error(&cmd, "%s", err.message);

    stepper st;
    rc = build_stepper(&st, "explore", cf.model, pl.prompt, cf.n_ctx, cf.n_threads, &cf.exp);
    if (rc) {
        free_stepper(&st);
        return rc;
    }
    int L = st.info.n_layer, V = st.info.n_vocab;
    long long n_want = (long long)st.n_prompt + pl.n_gen; /* -n 2147483647 must not wrap */
    int n_final = n_want > tinyllm_context_n_ctx(st.ctx) ? tinyllm_context_n_ctx(st.ctx) + 1 : (int)n_want;
    if (!rc) rc = choose_layers(&cmd, &pl, all_layers_given ? &layers : NULL, L);
    pl.logits_k = top_logits ? (top_logits < V ? top_logits : V) : (V <= FULL_LOGITS_MAX_VOCAB ? V : TOP_LOGITS_DEFAULT);
    if (!rc && n_final > tinyllm_context_n_ctx(st.ctx))
        rc = usage_error(&cmd, "the prompt (%d tokens) and -n %d do not fit the context of %d tokens (use --ctx, a "
                               "shorter prompt or a smaller -n)", st.n_prompt, pl.n_gen, tinyllm_context_n_ctx(st.ctx));
    if (!rc) rc = check_size(&cmd, &st, &pl, n_final, toggles != NULL);
    const char *stop = rc ? NULL : generate(&st, &pl);
    if (!rc && !stop) rc = EXIT_RUNTIME;
    if (!rc) rc = build_runs(&st, &pl, cf.n_threads);
    if (!rc) rc = save_page(&st, &pl, out_path, stop);
    free_runs(&pl);
    free_stepper(&st);
    return rc;
}
