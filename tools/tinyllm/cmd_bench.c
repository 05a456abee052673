/* tinyllm bench: prompt processing (pp) and text generation (tg) speed on
 * random token ids, in the spirit of llama-bench: for each thread count and
 * prompt length, a warm-up run and then -r timed repetitions; median and
 * spread (min..max). No text or tokenizer is involved. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "args.h"
#include "common.h"
#include "json.h"

typedef struct {
    const char *test; /* "pp512", "tg128" */
    int n_tokens, threads;
    double median, min, max; /* tok/s */
    /* tg only: the weights' read rate between decode segments (median,
     * GB/s), and the median of each segment's share of it: its tok/s x
     * bytes read per token / the mean of the reads just before and after */
    double read_gb_s, of_read;
} bench_row;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* the median of v (n > 0), sorting it */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* A read of the weights lasts at least this many bytes (several passes
 * over a small model), so waking the threads costs little beside it */
#define READ_MIN_BYTES ((uint64_t)256 << 20)

/* The rate (GB/s) at which the context's threads read the weights a decode
 * reads (tinyllm_context_read_weights), now; *pass = the bytes of one pass.
 * -1 on an engine error (reported). */
static double read_rate(tinyllm_context *ctx, uint64_t *pass) {
    tinyllm_error err = {0};
    uint64_t total = 0;
    double t0 = now_seconds();
    do {
        if (tinyllm_context_read_weights(ctx, pass, &err)) {
            report("bench", &err);
            return -1;
        }
        total += *pass;
    } while (*pass && total < READ_MIN_BYTES);
    double dt = now_seconds() - t0;
    return dt > 0 ? total / dt / 1e9 : -1;
}

/* A tg repetition decodes in segments that each read at least this many
 * weight bytes (1.1B Q4_0: 15 tokens, about a third of a second on one
 * thread), with a read of the weights after each: this host's bandwidth
 * moves by a fifth within a second, so each segment is set against the
 * reads just before and after it. A model whose weights are small decodes
 * a whole repetition as one segment. */
#define SEGMENT_MIN_BYTES ((uint64_t)8 << 30)

/* Times one setting: pp runs prefill of n tokens, tg runs n single decodes,
 * both from an empty cache. kv_pos_bytes: the KV cache's bytes per
 * position (a decode at position p reads p + 1 of them). tg's row gets the
 * median read rate and the median of its segments' shares of the read rate
 * (read_every decodes, or 0: SEGMENT_MIN_BYTES). Returns -1 on an engine
 * error (reported). */
static int run_setting(tinyllm_context *ctx, const int *tokens, int n, int is_tg, int reps, uint64_t kv_pos_bytes,
                       int read_every, bench_row *row) {
    uint64_t pass = 0;
    double before = is_tg ? read_rate(ctx, &pass) : 0; /* also sizes the segments */
    if (before < 0) return -1;
    int segment = n;
    if (is_tg && read_every > 0 && read_every < n) segment = read_every;
    if (is_tg && !read_every && pass > 0 && SEGMENT_MIN_BYTES / pass < (uint64_t)n)
        segment = (int)((SEGMENT_MIN_BYTES + pass - 1) / pass);
    int per_rep = (n + segment - 1) / segment;
    double *rate = malloc((size_t)(reps + 2 * reps * per_rep) * sizeof *rate);
    double *reads = rate + reps, *shares = reads + (size_t)reps * per_rep;
    int n_shares = 0;
    tinyllm_error err = {0};
    if (!rate) return -1;
    for (int r = -1; r < reps; r++) { /* r == -1: warm-up */
        tinyllm_context_rewind(ctx, 0, NULL);
        double busy = 0;
        if (!is_tg) {
            double t0 = now_seconds();
            int rc = tinyllm_context_prefill(ctx, tokens, n, &err);
            busy = now_seconds() - t0;
            if (rc) goto engine_error;
        }
        for (int p0 = 0; is_tg && p0 < n; p0 += segment) {
            int p1 = p0 + segment < n ? p0 + segment : n, rc = 0;
            double t0 = now_seconds();
            for (int i = p0; i < p1 && !rc; i++) rc = tinyllm_context_decode(ctx, tokens[i], &err);
            double dt = now_seconds() - t0;
            if (rc) goto engine_error;
            busy += dt;
            double after = read_rate(ctx, &pass);
            if (after < 0) {
                free(rate);
                return -1;
            }
            if (r >= 0) {
                /* decodes at positions p0..p1-1 read p0 + 1 .. p1 cached positions */
                double bytes_per_token = (double)pass + (double)kv_pos_bytes * (p0 + p1 + 1) / 2.0;
                reads[n_shares] = 0.5 * (before + after);
                shares[n_shares] = (p1 - p0) / dt * bytes_per_token / (reads[n_shares] * 1e9);
                n_shares++;
            }
            before = after;
        }
        if (r >= 0) rate[r] = n / busy;
    }
    row->median = median(rate, reps);
    row->min = rate[0];
    row->max = rate[reps - 1];
    if (is_tg) row->read_gb_s = median(reads, n_shares), row->of_read = median(shares, n_shares);
    free(rate);
    return 0;
engine_error:
    report("bench", &err);
    free(rate);
    return -1;
}

/* RoPE models may be benchmarked past their trained context, up to this */
#define BENCH_MAX_CTX 32768

/* n token ids drawn uniformly from the vocabulary by the library's seeded
 * sampler (flat logits): the same ids for the same seed, and no second RNG. */
static int random_tokens(int *tokens, int n, int n_vocab, uint64_t seed) {
    tinyllm_sampler_params sp = tinyllm_sampler_default_params();
    sp.temperature = 1.0f, sp.top_k = 0, sp.top_p = 1.0f, sp.min_p = 0.0f, sp.repeat_penalty = 1.0f, sp.seed = seed;
    tinyllm_sampler *s = NULL;
    float *flat = calloc((size_t)n_vocab, sizeof *flat);
    int rc = !flat || tinyllm_sampler_create(&sp, n_vocab, &s, NULL);
    for (int i = 0; i < n && !rc; i++) rc = (tokens[i] = tinyllm_sampler_sample(s, flat, NULL, 0, NULL)) < 0;
    tinyllm_sampler_free(s);
    free(flat);
    return rc;
}

/* What a run measured, for the reports. */
typedef struct {
    const char *model_path;
    const tinyllm_model *model;
    tinyllm_model_info info;
    int expand_f32, reps, n_rows;
    double load_ms, first_token_ms, rss_mib;
    const bench_row *rows;
} bench_report;

static void print_json(const bench_report *r) {
    const tinyllm_model_info *info = &r->info;
    json_writer w = json_writer_to(stdout, 0, 1);
    json_open(&w, NULL, '{');
    json_str(&w, "model", r->model_path);
    json_str(&w, "architecture", info->architecture);
    json_int(&w, "file_bytes", (long long)info->file_size);
    json_int(&w, "params", info->n_params);
    json_int(&w, "weight_bytes", (long long)info->weight_bytes);
    json_int(&w, "n_embd", info->n_embd), json_int(&w, "n_layer", info->n_layer);
    json_int(&w, "n_ff", info->n_ff), json_int(&w, "n_vocab", info->n_vocab);
    json_int(&w, "n_head", info->n_head), json_int(&w, "n_head_kv", info->n_head_kv);
    json_int(&w, "kv_bytes_per_token", (long long)2 * info->n_layer * info->n_head_kv * info->head_dim * 4);
    json_str(&w, "kernels", info->kernels);
    /* the formats the matrices are held in (each once): what bounds a prefill */
    json_open(&w, "matrix_formats", '[');
    for (int i = 0; i < tinyllm_model_n_tensors(r->model); i++) {
        tinyllm_tensor_info t, u;
        if (tinyllm_model_tensor(r->model, i, &t, NULL) || t.n_dims < 2 || !strcmp(t.in_use, "unused")) continue;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = !tinyllm_model_tensor(r->model, j, &u, NULL) && u.n_dims >= 2 && !strcmp(u.in_use, t.in_use);
        if (!seen) json_str(&w, NULL, t.in_use);
    }
    json_close(&w);
    json_str(&w, "blas_core", blas_core());
    json_num(&w, "load_ms", "%.2f", r->load_ms);
    json_num(&w, "first_token_ms", "%.2f", r->first_token_ms);
    json_num(&w, "peak_rss_mib", "%.1f", r->rss_mib);
    json_open(&w, "results", '[');
    for (int i = 0; i < r->n_rows; i++) {
        json_open(&w, NULL, '{');
        json_str(&w, "test", r->rows[i].test);
        json_int(&w, "n_tokens", r->rows[i].n_tokens), json_int(&w, "threads", r->rows[i].threads);
        json_num(&w, "tok_s", "%.3f", r->rows[i].median);
        json_num(&w, "min", "%.3f", r->rows[i].min), json_num(&w, "max", "%.3f", r->rows[i].max);
        json_int(&w, "reps", r->reps);
        if (r->rows[i].read_gb_s > 0) {
            json_num(&w, "read_gb_s", "%.3f", r->rows[i].read_gb_s);
            json_num(&w, "of_read_rate", "%.4f", r->rows[i].of_read);
        }
        json_close(&w);
    }
    json_close(&w);
    json_close(&w);
    putchar('\n');
}

static void print_markdown(const bench_report *r) {
    const tinyllm_model_info *info = &r->info;
    printf("| model | size | params | threads | test | tok/s (median) | min .. max | of the read rate |\n");
    printf("|---|---:|---:|---:|---|---:|---:|---:|\n");
    for (int i = 0; i < r->n_rows; i++) {
        const bench_row *row = &r->rows[i];
        char share[32] = "-";
        if (row->read_gb_s > 0) snprintf(share, sizeof share, "%.0f%% of %.1f GB/s", 100 * row->of_read, row->read_gb_s);
        printf("| %s %s | %.1f MiB | %.2f M | %d | %s | %.1f | %.1f .. %.1f | %s |\n", info->architecture,
               *info->name ? info->name : "", info->file_size / 1048576.0, info->n_params / 1e6, row->threads,
               row->test, row->median, row->min, row->max, share);
    }
    printf("\nweights in memory %.1f MiB%s, load %.1f ms, load to first token %.1f ms, peak RSS %.1f MiB, %d "
           "repetitions after a warm-up; kernels %s, sgemm OpenBLAS %s\n",
           info->weight_bytes / 1048576.0, r->expand_f32 ? " (--expand-f32)" : "", r->load_ms, r->first_token_ms,
           r->rss_mib, r->reps, info->kernels, blas_core());
    if (r->n_rows && r->rows[r->n_rows - 1].read_gb_s > 0)
        printf("of the read rate: a decode's tok/s x bytes it reads per token (weights, KV cache) over the rate at "
               "which the same threads read those weights just before and after each segment of its decodes (median)\n");
}

/* The settings asked for. */
typedef struct {
    int_list prompts, threads;
    int n_gen, reps, no_progress;
    int read_every; /* tg: decodes between reads of the weights; 0: SEGMENT_MIN_BYTES */
} bench_plan;

/* Every setting on one context per thread count, into rows (names holds
 * their test names): EXIT_OK, or an exit code after a message. The first
 * context also times start-up: load + one token. */
static int run_plan(tinyllm_model *m, const tinyllm_model_info *info, const bench_plan *pl, const int *tokens,
                    int max_tokens, bench_row *rows, char (*names)[16], int *n_rows, double *first_token_ms) {
    int show = progress_wanted(pl->no_progress), n_settings = 0;
    for (int k = 0; k <= pl->prompts.n; k++) n_settings += (k == pl->prompts.n ? pl->n_gen : pl->prompts.v[k]) > 0;
    n_settings *= pl->threads.n;
    long cores = sysconf(_SC_NPROCESSORS_ONLN); /* the library's default: every core */
    int rc = EXIT_OK;
    for (int ti = 0; ti < pl->threads.n && !rc; ti++) {
        tinyllm_context_params cp = tinyllm_context_default_params();
        cp.n_ctx = max_tokens > info->n_ctx_train ? max_tokens : info->n_ctx_train;
        if (info->positions != TINYLLM_POS_ROPE && cp.n_ctx > info->n_ctx_train) cp.n_ctx = info->n_ctx_train;
        cp.n_ctx = max_tokens < cp.n_ctx ? (max_tokens > 0 ? max_tokens : 1) : cp.n_ctx;
        cp.n_threads = pl->threads.v[ti];
        tinyllm_context *ctx = NULL;
        tinyllm_error err = {0};
        if (tinyllm_context_create(m, &cp, &ctx, &err)) {
            say("tinyllm bench: %s\n", err.message);
            return err.code == TINYLLM_ERR_ARG ? EXIT_USAGE : EXIT_RUNTIME;
        }
        if (ti == 0) { /* start-up: load + one token, the first thing a user waits for */
            double t0 = now_seconds();
            tinyllm_context_decode(ctx, tokens[0], NULL);
            *first_token_ms += (now_seconds() - t0) * 1e3;
        }
        int nth = pl->threads.v[ti] ? pl->threads.v[ti] : (int)(cores > 0 ? cores : 1);
        for (int k = 0; k <= pl->prompts.n && !rc; k++) {
            int is_tg = k == pl->prompts.n, n = is_tg ? pl->n_gen : pl->prompts.v[k];
            if (n == 0) continue;
            progress(show, "bench: %s%d on %d thread(s) (setting %d of %d)", is_tg ? "tg" : "pp", n, nth,
                     *n_rows + 1, n_settings);
            bench_row *row = &rows[*n_rows];
            snprintf(names[*n_rows], sizeof names[0], "%s%d", is_tg ? "tg" : "pp", n);
            *row = (bench_row){.test = names[*n_rows], .n_tokens = n, .threads = nth};
            if (run_setting(ctx, tokens, n, is_tg, pl->reps, tinyllm_model_kv_bytes(m, 1), pl->read_every, row))
                rc = EXIT_RUNTIME;
            else
                (*n_rows)++;
        }
        tinyllm_context_free(ctx);
    }
    progress_end(show);
    return rc;
}

/* The model's context limit against the lengths asked for: EXIT_OK or a
 * usage error. RoPE models may run past their trained context, up to
 * BENCH_MAX_CTX, as other engines' benches do. */
static int check_lengths(const command_spec *cmd, const tinyllm_model_info *info, const bench_plan *pl) {
    int limit = info->positions == TINYLLM_POS_ROPE && info->n_ctx_train < BENCH_MAX_CTX ? BENCH_MAX_CTX
                                                                                         : info->n_ctx_train;
    for (int i = 0; i <= pl->prompts.n; i++) {
        int n = i < pl->prompts.n ? pl->prompts.v[i] : pl->n_gen;
        if (n > limit)
            return usage_error(cmd, "%s %d: longer than the %d tokens of context this model allows%s",
                               i < pl->prompts.n ? "-p" : "-n", n, limit,
                               info->positions == TINYLLM_POS_ROPE ? "" : " (its positions end there)");
    }
    return EXIT_OK;
}

/* Loads the model, runs the plan and prints the report. */
static int bench(const command_spec *cmd, const common_flags *cf, const bench_plan *pl, const char *format,
                 uint64_t seed) {
    double t_load = now_seconds();
    tinyllm_model_params mp = model_params_from(cf);
    mp.skip_tokenizer = 1; /* ids only: the tokenizer's memory is not the engine's */
    tinyllm_model *m = load_model_or_report("bench", cf->model, &mp);
    if (!m) return EXIT_MODEL;
    bench_report r = {.model_path = cf->model, .model = m, .expand_f32 = cf->expand_f32, .reps = pl->reps};
    r.load_ms = r.first_token_ms = (now_seconds() - t_load) * 1e3;
    tinyllm_model_info_get(m, &r.info, NULL);
    int rc = check_lengths(cmd, &r.info, pl); /* first: the lengths size what follows */
    int max_tokens = pl->n_gen, *tokens = NULL;
    for (int i = 0; i < pl->prompts.n; i++) max_tokens = pl->prompts.v[i] > max_tokens ? pl->prompts.v[i] : max_tokens;
    size_t n_settings = (size_t)pl->threads.n * (pl->prompts.n + 1);
    bench_row *rows = NULL;
    char (*names)[16] = NULL;
    if (!rc) {
        tokens = malloc(((size_t)max_tokens + 1) * sizeof *tokens);
        rows = calloc(n_settings, sizeof *rows);
        names = calloc(n_settings, sizeof *names);
    }
    if (!rc && (!tokens || !rows || !names || random_tokens(tokens, max_tokens, r.info.n_vocab, seed))) {
        say("tinyllm bench: out of memory\n");
        rc = EXIT_RUNTIME;
    }
    if (!rc) rc = run_plan(m, &r.info, pl, tokens, max_tokens, rows, names, &r.n_rows, &r.first_token_ms);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r.rss_mib = ru.ru_maxrss / 1024.0;
    if (!rc) {
        r.rows = rows;
        if (!strcmp(format, "json"))
            print_json(&r);
        else
            print_markdown(&r);
    }
    free(tokens);
    free(rows);
    free(names);
    tinyllm_model_free(m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    const char *format = "md";
    bench_plan pl = {.prompts = {2, {128, 512}}, .threads = {0, {0}}, .n_gen = 128, .reps = 5};
    uint64_t seed = 1;
    common_flags cf = {0};
    const unsigned common = CF_MODEL | CF_WEIGHTS | CF_NO_MMAP;
    const opt_spec own[] = { /* -t here is a list of thread counts */
        {"--n-prompt", "-p", OPT_INT_LIST, &pl.prompts, "N,N", "prompt lengths to time (default 128,512)", NULL},
        {"--n-gen", "-n", OPT_INT, &pl.n_gen, "N", "tokens to generate; 0 skips tg (default 128)", NULL},
        {"--threads", "-t", OPT_INT_LIST, &pl.threads, "N,N", "thread counts (default: all cores)", NULL},
        {"--reps", "-r", OPT_INT, &pl.reps, "N", "timed repetitions after one warm-up (default 5)", NULL},
        {"--output", "-o", OPT_STRING, &format, "md|json", "table format (default md)", NULL},
        {"--seed", NULL, OPT_U64, &seed, "N", "seed of the random token ids (default 1)", NULL},
        {"--read-every", NULL, OPT_INT, &pl.read_every, "N",
         "tg: read the weights (the bound) after every N decodes (default 0: every 8 GiB of weights decoded)", NULL},
        {"--no-progress", NULL, OPT_FLAG, &pl.no_progress, "", "no progress line on a terminal's stderr", NULL},
    };
    opt_spec opts[MAX_OPTS];
    command_spec cmd = {"bench", "-m MODEL.gguf [-p 128,512] [-n 128] [-t 1,2] [-r 5] [-o md|json]",
                        "Measure prompt processing (pp) and generation (tg) speed on random tokens.", opts, 0};
    int rc = parse_command(&cmd, opts, common, &cf, own, N_OPTS(own), argc, argv);
    if (rc >= 0) return rc;
    if (strcmp(format, "md") && strcmp(format, "json")) return usage_error(&cmd, "-o %s: expected md or json", format);
    if (pl.reps < 1 || pl.reps > 1000) return usage_error(&cmd, "-r %d: expected 1 to 1000 repetitions", pl.reps);
    if (pl.n_gen < 0) return usage_error(&cmd, "-n %d: expected >= 0", pl.n_gen);
    if (pl.read_every < 0) return usage_error(&cmd, "--read-every %d: expected decodes >= 1 (or 0: every 8 GiB)", pl.read_every);
    for (int i = 0; i < pl.prompts.n; i++)
        if (pl.prompts.v[i] < 0) return usage_error(&cmd, "-p %d: expected prompt lengths >= 0", pl.prompts.v[i]);
    int any = pl.n_gen > 0;
    for (int i = 0; i < pl.prompts.n; i++) any |= pl.prompts.v[i] > 0;
    if (!any) return usage_error(&cmd, "-p/-n: nothing to measure (expected a prompt length or -n above 0)");
    if (pl.threads.n == 0) pl.threads.n = 1;
    for (int i = 0; i < pl.threads.n; i++)
        if (pl.threads.v[i] < 0 || pl.threads.v[i] > 256)
            return usage_error(&cmd, "-t %d: expected 1 to 256", pl.threads.v[i]);
    for (int i = 0; i < pl.threads.n; i++) warn_threads(&cmd, pl.threads.v[i]);
    return bench(&cmd, &cf, &pl, format, seed);
}
