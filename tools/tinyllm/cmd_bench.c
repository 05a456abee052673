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
#include "encode.h"

typedef struct {
    const char *test; /* "pp512", "tg128" */
    int n_tokens, threads;
    double median, min, max; /* tok/s */
} bench_row;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Times one setting: pp runs prefill of n tokens, tg runs n single decodes,
 * both from an empty cache. Returns -1 on an engine error (reported). */
static int run_setting(tinyllm_context *ctx, const int *tokens, int n, int is_tg, int reps, bench_row *row) {
    double *rate = malloc((size_t)(reps + 1) * sizeof *rate);
    tinyllm_error err = {0};
    if (!rate) return -1;
    for (int r = -1; r < reps; r++) { /* r == -1: warm-up */
        tinyllm_context_rewind(ctx, 0, NULL);
        double t0 = now_seconds();
        int rc = 0;
        if (is_tg)
            for (int i = 0; i < n && !rc; i++) rc = tinyllm_context_decode(ctx, tokens[i], &err);
        else
            rc = tinyllm_context_prefill(ctx, tokens, n, &err);
        double dt = now_seconds() - t0;
        if (rc) {
            report("bench", &err);
            free(rate);
            return -1;
        }
        if (r >= 0) rate[r] = n / dt;
    }
    qsort(rate, (size_t)reps, sizeof *rate, cmp_double);
    row->median = reps % 2 ? rate[reps / 2] : 0.5 * (rate[reps / 2 - 1] + rate[reps / 2]);
    row->min = rate[0];
    row->max = rate[reps - 1];
    free(rate);
    return 0;
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

int cmd_bench(int argc, char **argv) {
    const char *format = "md";
    int_list prompts = {2, {128, 512}}, threads = {0, {0}};
    int n_gen = 128, reps = 5, no_progress = 0;
    uint64_t seed = 1;
    common_flags cf = {0};
    const unsigned common = CF_MODEL | CF_WEIGHTS | CF_NO_MMAP;
    const opt_spec own[] = { /* -t here is a list of thread counts */
        {"--n-prompt", "-p", OPT_INT_LIST, &prompts, "N,N", "prompt lengths to time (default 128,512)", NULL},
        {"--n-gen", "-n", OPT_INT, &n_gen, "N", "tokens to generate; 0 skips tg (default 128)", NULL},
        {"--threads", "-t", OPT_INT_LIST, &threads, "N,N", "thread counts (default: all cores)", NULL},
        {"--reps", "-r", OPT_INT, &reps, "N", "timed repetitions after one warm-up (default 5)", NULL},
        {"--output", "-o", OPT_STRING, &format, "md|json", "table format (default md)", NULL},
        {"--seed", NULL, OPT_U64, &seed, "N", "seed of the random token ids (default 1)", NULL},
        {"--no-progress", NULL, OPT_FLAG, &no_progress, "", "no progress line on a terminal's stderr", NULL},
    };
    opt_spec opts[MAX_OPTS];
    int n_opts = with_common_flags(opts, common, &cf, own, (int)(sizeof own / sizeof own[0]));
    const command_spec cmd = {"bench", "-m MODEL.gguf [-p 128,512] [-n 128] [-t 1,2] [-r 5] [-o md|json]",
                              "Measure prompt processing (pp) and generation (tg) speed on random tokens.", opts,
                              n_opts};
    const char *pos[1];
    int n_pos, rc = parse_args(&cmd, argc, argv, pos, 0, &n_pos);
    if (rc >= 0) return rc;
    if ((rc = check_common_flags(&cmd, common, &cf)) >= 0) return rc;
    const char *model_path = cf.model;
    int expand_f32 = cf.expand_f32;
    if (strcmp(format, "md") && strcmp(format, "json")) return usage_error(&cmd, "-o %s: expected md or json", format);
    if (reps < 1 || reps > 1000) return usage_error(&cmd, "-r %d: expected 1 to 1000 repetitions", reps);
    if (n_gen < 0) return usage_error(&cmd, "-n %d: expected >= 0", n_gen);
    for (int i = 0; i < prompts.n; i++)
        if (prompts.v[i] < 0) return usage_error(&cmd, "-p %d: expected prompt lengths >= 0", prompts.v[i]);
    int any = n_gen > 0;
    for (int i = 0; i < prompts.n; i++) any |= prompts.v[i] > 0;
    if (!any) return usage_error(&cmd, "-p/-n: nothing to measure (expected a prompt length or -n above 0)");
    if (threads.n == 0) threads.n = 1;
    for (int i = 0; i < threads.n; i++)
        if (threads.v[i] < 0 || threads.v[i] > 256) return usage_error(&cmd, "-t %d: expected 1 to 256", threads.v[i]);
    for (int i = 0; i < threads.n; i++) warn_threads(&cmd, threads.v[i]);

    double t_load = now_seconds();
    tinyllm_model_params mp = model_params_from(&cf);
    mp.skip_tokenizer = 1; /* ids only: the tokenizer's memory is not the engine's */
    tinyllm_model *m = load_model_or_report("bench", model_path, &mp);
    if (!m) return EXIT_MODEL;
    double load_ms = (now_seconds() - t_load) * 1e3;
    tinyllm_model_info info;
    tinyllm_model_info_get(m, &info, NULL);
    /* the context bench can give: the trained one (RoPE models may run past
     * it, up to BENCH_MAX_CTX, as other engines' benches do) */
    int limit = info.positions == TINYLLM_POS_ROPE && info.n_ctx_train < BENCH_MAX_CTX ? BENCH_MAX_CTX : info.n_ctx_train;
    for (int i = 0; i <= prompts.n; i++) {
        int n = i < prompts.n ? prompts.v[i] : n_gen;
        if (n > limit) {
            tinyllm_model_free(m);
            return usage_error(&cmd, "%s %d: longer than the %d tokens of context this model allows%s",
                               i < prompts.n ? "-p" : "-n", n, limit,
                               info.positions == TINYLLM_POS_ROPE ? "" : " (its positions end there)");
        }
    }
    int max_tokens = n_gen;
    for (int i = 0; i < prompts.n; i++) max_tokens = prompts.v[i] > max_tokens ? prompts.v[i] : max_tokens;
    int *tokens = malloc((size_t)(max_tokens + 1) * sizeof *tokens);
    bench_row *rows = calloc((size_t)threads.n * (prompts.n + 1), sizeof *rows);
    char (*names)[16] = calloc((size_t)threads.n * (prompts.n + 1), sizeof *names);
    int n_rows = 0, exit_code = EXIT_OK;
    double first_token_ms = 0;
    if (!tokens || !rows || !names) {
        say("tinyllm bench: out of memory\n");
        exit_code = EXIT_RUNTIME;
        goto done;
    }
    if (random_tokens(tokens, max_tokens, info.n_vocab, seed)) {
        say("tinyllm bench: out of memory\n");
        exit_code = EXIT_RUNTIME;
        goto done;
    }
    int show = progress_wanted(no_progress), n_settings = 0;
    for (int k = 0; k <= prompts.n; k++) n_settings += (k == prompts.n ? n_gen : prompts.v[k]) > 0;
    n_settings *= threads.n;
    for (int ti = 0; ti < threads.n; ti++) {
        tinyllm_context_params cp = tinyllm_context_default_params();
        cp.n_ctx = max_tokens > info.n_ctx_train ? max_tokens : info.n_ctx_train;
        if (info.positions != TINYLLM_POS_ROPE && cp.n_ctx > info.n_ctx_train) cp.n_ctx = info.n_ctx_train;
        cp.n_ctx = max_tokens < cp.n_ctx ? (max_tokens > 0 ? max_tokens : 1) : cp.n_ctx;
        cp.n_threads = threads.v[ti];
        tinyllm_context *ctx = NULL;
        tinyllm_error err = {0};
        if (tinyllm_context_create(m, &cp, &ctx, &err)) {
            say("tinyllm bench: %s\n", err.message);
            exit_code = err.code == TINYLLM_ERR_ARG ? EXIT_USAGE : EXIT_RUNTIME;
            goto done;
        }
        if (ti == 0) { /* start-up: load + one token, the first thing a user waits for */
            double t0 = now_seconds();
            tinyllm_context_decode(ctx, tokens[0], NULL);
            first_token_ms = load_ms + (now_seconds() - t0) * 1e3;
        }
        int nth = threads.v[ti];
        for (int k = 0; k <= prompts.n; k++) {
            int is_tg = k == prompts.n, n = is_tg ? n_gen : prompts.v[k];
            if (n == 0) continue;
            progress(show, "bench: %s%d on %d thread(s) (setting %d of %d)", is_tg ? "tg" : "pp", n,
                     threads.v[ti] ? threads.v[ti] : (int)sysconf(_SC_NPROCESSORS_ONLN), n_rows + 1, n_settings);
            bench_row *row = &rows[n_rows];
            snprintf(names[n_rows], sizeof names[0], "%s%d", is_tg ? "tg" : "pp", n);
            row->test = names[n_rows];
            row->n_tokens = n;
            long cores = sysconf(_SC_NPROCESSORS_ONLN); /* the library's default: every core */
            row->threads = nth ? nth : (int)(cores > 0 ? cores : 1);
            if (run_setting(ctx, tokens, n, is_tg, reps, row)) {
                tinyllm_context_free(ctx);
                exit_code = EXIT_RUNTIME;
                goto done;
            }
            n_rows++;
        }
        tinyllm_context_free(ctx);
    }
    progress_end(show);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mib = ru.ru_maxrss / 1024.0;
    if (!strcmp(format, "json")) {
        /* strings through the CLI's one JSON string writer: a path with a quote stays valid JSON */
        printf("{\"model\": ");
        json_write_string(stdout, model_path, 0);
        printf(", \"architecture\": ");
        json_write_string(stdout, info.architecture, 0);
        printf(", \"file_bytes\": %" PRIu64 ", \"params\": %" PRId64 ", \"weight_bytes\": %" PRIu64
               ", \"n_embd\": %d, \"n_layer\": %d, \"n_ff\": %d, \"n_vocab\": %d, \"n_head\": %d, \"n_head_kv\": %d, "
               "\"kernels\": \"%s\", \"blas_core\": ",
               info.file_size, info.n_params, info.weight_bytes, info.n_embd, info.n_layer, info.n_ff, info.n_vocab,
               info.n_head, info.n_head_kv, info.kernels);
        json_write_string(stdout, blas_core(), 0);
        printf(", \"load_ms\": %.2f, \"first_token_ms\": %.2f, \"peak_rss_mib\": %.1f, \"results\": [", load_ms,
               first_token_ms, rss_mib);
        for (int i = 0; i < n_rows; i++)
            printf("%s\n  {\"test\": \"%s\", \"n_tokens\": %d, \"threads\": %d, \"tok_s\": %.3f, \"min\": %.3f, "
                   "\"max\": %.3f, \"reps\": %d}",
                   i ? "," : "", rows[i].test, rows[i].n_tokens, rows[i].threads, rows[i].median, rows[i].min,
                   rows[i].max, reps);
        printf("]}\n");
    } else {
        printf("| model | size | params | threads | test | tok/s (median) | min .. max |\n");
        printf("|---|---:|---:|---:|---|---:|---:|\n");
        for (int i = 0; i < n_rows; i++)
            printf("| %s %s | %.1f MiB | %.2f M | %d | %s | %.1f | %.1f .. %.1f |\n", info.architecture,
                   *info.name ? info.name : "", info.file_size / 1048576.0, info.n_params / 1e6, rows[i].threads,
                   rows[i].test, rows[i].median, rows[i].min, rows[i].max);
        printf("\nweights in memory %.1f MiB%s, load %.1f ms, load to first token %.1f ms, peak RSS %.1f MiB, %d "
               "repetitions after a warm-up; kernels %s, sgemm OpenBLAS %s\n",
               info.weight_bytes / 1048576.0, expand_f32 ? " (--expand-f32)" : "", load_ms, first_token_ms, rss_mib, reps,
               info.kernels, blas_core());
    }
done:
    free(tokens);
    free(rows);
    free(names);
    tinyllm_model_free(m);
    return exit_code;
}
