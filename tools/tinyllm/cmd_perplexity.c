/* tinyllm perplexity: mean negative log-likelihood per token, perplexity and
 * bits per byte of a text file, computed by the engine with sliding windows.
 *
 * Definition (shared with scripts/train_model.py): tokens = [BOS] +
 * encode(text). Windows of --ctx tokens start at 0, stride, 2*stride, ...;
 * each window scores only the tokens no earlier window scored (the first
 * window scores all but BOS), each from all the context its window gives it.
 * bits/byte = total NLL / ln 2 / bytes of the file: tokenizer-independent. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "common.h"
#include "probs.h"

/* the largest text accepted: about a billion tokens' worth of work is more
 * than anyone waits for on a CPU; /dev/zero and the like are refused anyway */
#define TEXT_MAX_BYTES ((size_t)1 << 30)

/* NLL sums over the windows, and what they took. */
typedef struct {
    double nll, nll_sq, secs;
    long scored;
    int windows;
} window_scores;

/* Windows of n_ctx tokens every `stride`, each scoring the tokens no
 * earlier window scored (each from the ones before it in its window). -1
 * after an engine error (reported). */
static int score_windows(tinyllm_context *ctx, const int *tokens, int n_tok, int n_ctx, int stride, int per_window,
                         int progress, int n_vocab, window_scores *sc) {
    tinyllm_error err = {0};
    double t0 = now_seconds();
    int scored_upto = 1, total_windows = n_tok <= n_ctx ? 1 : 1 + (n_tok - n_ctx + stride - 1) / stride;
    for (int start = 0;; start += stride) {
        int end = start + n_ctx < n_tok ? start + n_ctx : n_tok;
        tinyllm_context_rewind(ctx, 0, NULL);
        if (tinyllm_context_prefill(ctx, tokens + start, end - start, &err)) {
            report("perplexity", &err);
            return -1;
        }
        sc->windows++;
        int first = scored_upto > start + 1 ? scored_upto : start + 1;
        double window_nll = 0;
        for (int t = first; t < end; t++) {
            double l = -log_prob(tinyllm_context_logits_at(ctx, t - start - 1), n_vocab, tokens[t]);
            window_nll += l, sc->nll_sq += l * l;
            sc->scored++;
        }
        sc->nll += window_nll;
        if (per_window)
            printf("window %d: tokens %d..%d, scored %d, nll/token %.6f\n", sc->windows, start, end - 1, end - first,
                   end > first ? window_nll / (end - first) : 0.0);
        if (progress) { /* one line, rewritten in place */
            double el = now_seconds() - t0;
            fprintf(stderr, "\rperplexity: window %d/%d, %.0f tok/s, about %.0f s left ", sc->windows,
                    total_windows, sc->windows * (double)n_ctx / el, el / sc->windows * (total_windows - sc->windows));
        }
        scored_upto = end;
        if (end == n_tok) break;
    }
    if (progress) fprintf(stderr, "\r\033[K");
    sc->secs = now_seconds() - t0;
    return 0;
}

/* The summary, with the standard error of the mean over tokens (as
 * llama-perplexity gives it), and through exp() for the perplexity. */
static void print_scores(const window_scores *sc, const char *text_path, size_t n_bytes, int n_tok, int n_ctx,
                         int stride) {
    double mean = sc->nll / sc->scored;
    double var = sc->scored > 1 ? (sc->nll_sq / sc->scored - mean * mean) * sc->scored / (sc->scored - 1) : 0;
    double se = sqrt(var > 0 ? var / sc->scored : 0);
    printf("file:        %s (%zu bytes, %d tokens + BOS)\n", text_path, n_bytes, n_tok - 1);
    printf("windows:     %d of %d tokens, stride %d (%.1f s, %.0f tok/s)\n", sc->windows, n_ctx, stride, sc->secs,
           (double)sc->windows * n_ctx / sc->secs);
    printf("nll/token:   %.6f\nperplexity:  %.4f\nbits/byte:   %.6f\n", mean, exp(mean),
           sc->nll / log(2.0) / (double)n_bytes);
    printf("std. error:  nll/token +/- %.6f, perplexity +/- %.4f (over %ld tokens)\n", se, exp(mean) * se, sc->scored);
}

int cmd_perplexity(int argc, char **argv) {
    const char *text_path = NULL;
    int stride = 0, per_window = 0, no_progress = 0;
    common_flags cf = {0};
    const unsigned common = CF_MODEL | CF_CTX | CF_THREADS | CF_WEIGHTS | CF_EXPERIMENT;
    const opt_spec own[] = {
        {"--file", "-f", OPT_STRING, &text_path, "TEXT", "UTF-8 text file (required)", NULL},
        {"--stride", NULL, OPT_INT, &stride, "S", "window step (default: ctx/2); windows are --ctx tokens long", NULL},
        {"--per-window", NULL, OPT_FLAG, &per_window, "", "print each window's tokens and NLL", NULL},
        {"--no-progress", NULL, OPT_FLAG, &no_progress, "", "no progress line on a terminal's stderr", NULL},
    };
    opt_spec opts[MAX_OPTS];
    command_spec cmd = {"perplexity", "-m MODEL.gguf -f TEXT [--ctx N] [--stride S]",
                        "Mean NLL per token, perplexity and bits per byte of a text.", opts, 0};
    int rc = parse_command(&cmd, opts, common, &cf, own, N_OPTS(own), argc, argv);
    if (rc >= 0) return rc;
    if (!text_path) return usage_error(&cmd, "missing -f TEXT");
    if (cf.n_ctx == 1) return usage_error(&cmd, "--ctx %d: expected at least 2", cf.n_ctx);
    if (stride < 0) return usage_error(&cmd, "--stride %d: expected a positive step", stride);
    size_t n_bytes = 0;
    char why[256];
    char *text = read_regular_file(text_path, TEXT_MAX_BYTES, &n_bytes, why, sizeof why);
    if (!text) {
        say("tinyllm perplexity: -f %s: %s\n", text_path, why);
        return EXIT_USAGE;
    }
    if (n_bytes == 0) {
        say("tinyllm perplexity: %s: empty file (expected some text)\n", text_path);
        free(text);
        return EXIT_USAGE;
    }
    tinyllm_model_params mp = model_params_from(&cf);
    tinyllm_model *m = load_model_or_report("perplexity", cf.model, &mp);
    if (!m) {
        free(text);
        return EXIT_MODEL;
    }
    int exit_code = EXIT_OK, n_tok = 0, *tokens = NULL;
    tinyllm_context *ctx = NULL;
    tinyllm_error err = {0};
    tinyllm_model_info info;
    tinyllm_model_info_get(m, &info, NULL);
    int n_ctx = cf.n_ctx ? cf.n_ctx : info.n_ctx_train;
    if (n_ctx < 2) { /* a one-token window scores nothing (and its default stride would be 0) */
        say("tinyllm perplexity: %s: the model's context is %d token(s) (expected at least 2 to score "
            "a token from the one before it)\n", cf.model, n_ctx);
        exit_code = EXIT_MODEL;
        goto done;
    }
    if (!stride) stride = n_ctx / 2; /* >= 1: every window advances */
    if (stride > n_ctx) {
        exit_code = usage_error(&cmd, "--stride %d: expected at most --ctx %d", stride, n_ctx);
        goto done;
    }
    if (tinyllm_tokenize(m, text, n_bytes, 1, NULL, 0, &n_tok, &err)) {
        say("tinyllm perplexity: -f %s: %s\n", text_path, err.message);
        exit_code = EXIT_USAGE;
        goto done;
    }
    if (!(tokens = malloc((size_t)n_tok * sizeof *tokens)) ||
        tinyllm_tokenize(m, text, n_bytes, 1, tokens, n_tok, &n_tok, &err)) {
        say("tinyllm perplexity: -f %s: %s\n", text_path, tokens ? err.message : "out of memory");
        exit_code = EXIT_RUNTIME;
        goto done;
    }
    if (n_tok < 2) {
        say("tinyllm perplexity: %s: too short (expected at least one token of text)\n", text_path);
        exit_code = EXIT_USAGE;
        goto done;
    }
    tinyllm_context_params cp = tinyllm_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = cf.n_threads;
    cp.logits_all = 1;
    if (tinyllm_context_create(m, &cp, &ctx, &err)) {
        say("tinyllm perplexity: %s\n", err.message);
        exit_code = err.code == TINYLLM_ERR_ARG ? EXIT_USAGE : EXIT_RUNTIME;
        goto done;
    }
    if ((exit_code = apply_experiments("perplexity", ctx, &cf.exp, stdout))) goto done;
    window_scores sc = {0};
    if (score_windows(ctx, tokens, n_tok, n_ctx, stride, per_window, !no_progress && isatty(STDERR_FILENO),
                      info.n_vocab, &sc)) {
        exit_code = EXIT_RUNTIME;
        goto done;
    }
    print_scores(&sc, text_path, n_bytes, n_tok, n_ctx, stride);
done:
    free(tokens);
    free(text);
    tinyllm_context_free(ctx);
    tinyllm_model_free(m);
    return exit_code;
}
