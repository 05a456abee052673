/* tinyllm generate: prefill the prompt, then decode token by token,
 * streaming text as it is produced, with separate prefill/decode speeds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "common.h"
#include "textio.h"

/* the largest prompt read from a file or stdin */
#define PROMPT_MAX_BYTES ((size_t)64 << 20)

/* The next token, or -1 after one line on stderr: the model's logits after
 * position `pos` hold NaN or Inf (reported, never sampled from silently), or
 * nothing can be sampled. */
static int sample_checked(tinyllm_sampler *sampler, const float *logits, int n_vocab, const int *history,
                          int n_history, int pos) {
    for (int i = 0; i < n_vocab; i++)
        if (!isfinite(logits[i])) {
            fprintf(stderr,
                    "tinyllm generate: the logits after position %d are not finite (token %d is %s); "
                    "expected finite values: the model's weights or activations overflow (try --check-tensors)\n",
                    pos, i, isnan(logits[i]) ? "NaN" : logits[i] > 0 ? "+inf" : "-inf");
            return -1;
        }
    tinyllm_error err = {0};
    int next = tinyllm_sampler_sample(sampler, logits, history, n_history, &err);
    if (next < 0) fprintf(stderr, "tinyllm generate: after position %d: %s\n", pos, err.message);
    return next;
}

int cmd_generate(int argc, char **argv) {
    const char *prompt = NULL, *prompt_file = NULL;
    int n_predict = -2, ignore_eos = 0, seed_given = 0, escapes = 0, verbose_prompt = 0, no_display = 0;
    int keep = 0, no_shift = 0;
    string_list stops = {0};
    common_flags cf = {0};
    const unsigned common = CF_MODEL | CF_CTX | CF_THREADS | CF_CHECK_TENSORS | CF_NO_MMAP | CF_KEEP_F16;
    tinyllm_sampler_params sp = tinyllm_sampler_default_params();
    sp.top_p = 0.9f;
    sp.repeat_penalty = 1.0f;
    uint64_t seed = 0;
    const opt_spec own[] = {
        {"--prompt", "-p", OPT_STRING, &prompt, "TEXT", "prompt text (UTF-8; - reads stdin)", NULL},
        {"--file", "-f", OPT_STRING, &prompt_file, "FILE", "read the prompt from FILE (- = stdin)", NULL},
        {"--escape", "-e", OPT_FLAG, &escapes, "", "process \\n \\t \\\\ \\\" \\xNN in the prompt", NULL},
        {"--n-predict", "-n", OPT_INT, &n_predict, "N",
         "tokens to generate (shifting the context when it fills); -1 = until the end of text; -2 = until the end "
         "of text or a full context (default)", NULL},
        {"--keep", NULL, OPT_INT, &keep, "N", "prompt tokens (after BOS) a context shift keeps (default 0)", NULL},
        {"--no-context-shift", NULL, OPT_FLAG, &no_shift, "", "stop when the context is full instead of shifting it",
         NULL},
        {"--stop", NULL, OPT_STRING_LIST, &stops, "TEXT", "stop when TEXT is generated (not printed; repeatable)", NULL},
        {"--verbose-prompt", NULL, OPT_FLAG, &verbose_prompt, "", "print the prompt's tokens to stderr", NULL},
        {"--no-display-prompt", NULL, OPT_FLAG, &no_display, "", "do not echo the prompt", NULL},
        {"--temp", NULL, OPT_FLOAT, &sp.temperature, "T", "temperature; 0 = greedy (default 0.8)", NULL},
        {"--top-k", NULL, OPT_INT, &sp.top_k, "K", "keep the K most likely tokens; 0 = off (default 40)", NULL},
        {"--top-p", NULL, OPT_FLOAT, &sp.top_p, "P", "nucleus sampling in (0,1]; 1 = off (default 0.9)", NULL},
        {"--min-p", NULL, OPT_FLOAT, &sp.min_p, "P", "drop tokens below P x the top probability (default 0.05)", NULL},
        {"--repeat-penalty", NULL, OPT_FLOAT, &sp.repeat_penalty, "R", "penalise recent tokens; 1 = off (default 1)",
         NULL},
        {"--repeat-last-n", NULL, OPT_INT, &sp.repeat_last_n, "N", "recent tokens the penalty sees (default 64)", NULL},
        {"--seed", "-s", OPT_U64, &seed, "N", "random seed (default: from the clock, printed)", &seed_given},
        {"--ignore-eos", NULL, OPT_FLAG, &ignore_eos, "", "keep generating after the end-of-text token", NULL},
    };
    opt_spec opts[MAX_OPTS];
    int n_opts = with_common_flags(opts, common, &cf, own, (int)(sizeof own / sizeof own[0]));
    const command_spec cmd = {"generate", "-m MODEL.gguf -p PROMPT [options]",
                              "Generate text from a prompt, streaming it to stdout; stats go to stderr.", opts, n_opts};
    const char *pos[1];
    int n_pos, rc = parse_args(&cmd, argc, argv, pos, 0, &n_pos);
    if (rc >= 0) return rc;
    if ((rc = check_common_flags(&cmd, common, &cf)) >= 0) return rc;
    if (!prompt == !prompt_file) return usage_error(&cmd, "give the prompt with one of -p TEXT or -f FILE");
    if (n_predict == 0 || n_predict < -2)
        return usage_error(&cmd, "-n %d: expected a number of tokens >= 1, -1 (until the end of text) or -2 (until "
                                 "the end of text or a full context)", n_predict);
    if (keep < 0) return usage_error(&cmd, "--keep %d: expected >= 0", keep);
    for (int i = 0; i < stops.n; i++)
        if (!*stops.v[i]) return usage_error(&cmd, "--stop: empty string (expected some text)");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cf.n_threads > cores && cores > 0)
        fprintf(stderr, "tinyllm generate: warning: -t %d is more threads than this machine's %ld cores (slower)\n",
                cf.n_threads, cores);
    int *cache = NULL; /* freed at done */
    stop_filter stop;  /* freed at done */
    stop_filter_init(&stop, stops.v, stops.n);
    char *owned_prompt = NULL; /* from a file or stdin */
    const char *source = prompt_file ? prompt_file : prompt;
    if (prompt_file || !strcmp(prompt, "-")) {
        size_t len = 0;
        char why[256];
        owned_prompt = !strcmp(source, "-") ? read_stdin(PROMPT_MAX_BYTES, &len, why, sizeof why)
                                            : read_regular_file(source, PROMPT_MAX_BYTES, &len, why, sizeof why);
        if (!owned_prompt) return usage_error(&cmd, "%s %s: %s", prompt_file ? "-f" : "-p", source, why);
        if (strlen(owned_prompt) != len) {
            free(owned_prompt);
            return usage_error(&cmd, "%s %s: the text holds a NUL byte (expected UTF-8 text)", prompt_file ? "-f" : "-p",
                               source);
        }
        prompt = owned_prompt;
    } else if (escapes) {
        owned_prompt = strdup(prompt);
        prompt = owned_prompt;
    }
    if (escapes && owned_prompt && unescape(owned_prompt)) {
        free(owned_prompt);
        return usage_error(&cmd, "-e: a malformed escape in the prompt (expected \\n \\t \\r \\\\ \\\" \\' or \\xNN)");
    }
    if (!*prompt) {
        free(owned_prompt);
        return usage_error(&cmd, "%s: the prompt is empty (expected some text)", prompt_file ? "-f" : "-p");
    }
    if (!seed_given) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
    }
    sp.seed = seed;
    tinyllm_error err = {0};
    tinyllm_sampler *sampler = NULL;
    /* settings first: a bad --temp is a usage error before any loading */
    if (tinyllm_sampler_params_check(&sp, &err)) {
        free(owned_prompt);
        return usage_error(&cmd, "%s", err.message);
    }

    double t_load = now_seconds();
    tinyllm_model_params mp = model_params_from(&cf);
    tinyllm_model *model = load_model_or_report("generate", cf.model, &mp);
    if (!model) {
        free(owned_prompt);
        return EXIT_MODEL;
    }
    tinyllm_model_info info;
    tinyllm_model_info_get(model, &info, NULL);
    tinyllm_context_params cp = tinyllm_context_default_params();
    cp.n_ctx = cf.n_ctx;
    cp.n_threads = cf.n_threads;
    tinyllm_context *ctx = NULL;
    int exit_code = EXIT_OK;
    int *tokens = NULL, n_prompt = 0;
    if (tinyllm_context_create(model, &cp, &ctx, &err)) {
        fprintf(stderr, "tinyllm generate: %s\n", err.message);
        exit_code = err.code == TINYLLM_ERR_ARG ? EXIT_USAGE : EXIT_RUNTIME;
        goto done;
    }
    if (tinyllm_sampler_create(&sp, info.n_vocab, &sampler, &err)) {
        report("generate", &err);
        exit_code = EXIT_RUNTIME;
        goto done;
    }
    tokens = tokenize_prompt("generate", model, prompt, &n_prompt);
    if (!tokens) {
        exit_code = EXIT_USAGE;
        goto done;
    }
    int n_ctx_used = tinyllm_context_n_ctx(ctx);
    if (verbose_prompt) {
        fprintf(stderr, "prompt: %d tokens\n", n_prompt);
        for (int i = 0; i < n_prompt; i++) {
            const char *piece = tinyllm_token_piece(model, tokens[i]);
            char shown[96];
            fprintf(stderr, "%6d -> '%s'\n", tokens[i], tinyllm_printable(piece, strlen(piece), shown, sizeof shown));
        }
    }
    if (n_prompt >= n_ctx_used) {
        fprintf(stderr, "tinyllm generate: the prompt (%d tokens) does not fit the context of %d tokens; use a "
                        "shorter prompt or a larger --ctx (at most %d for this model)\n",
                n_prompt, n_ctx_used, info.n_ctx_train);
        exit_code = EXIT_USAGE;
        goto done;
    }
    /* Past the end of the context, a context shift keeps BOS and --keep
     * prompt tokens, forgets half of the rest and goes on (-n N and -1); -2
     * and --no-context-shift stop there instead. */
    int until_full = n_predict == -2, shift = !no_shift && !until_full;
    if (!shift && n_predict > 0 && (long long)n_prompt + n_predict > n_ctx_used) { /* no int overflow */
        fprintf(stderr,
                "tinyllm generate: the prompt (%d tokens) plus -n %d exceeds the context of %d tokens; "
                "use a smaller -n, a shorter prompt, a larger --ctx (at most %d for this model) or drop "
                "--no-context-shift\n",
                n_prompt, n_predict, n_ctx_used, info.n_ctx_train);
        exit_code = EXIT_USAGE;
        goto done;
    }
    int n_keep = 1 + keep < n_prompt ? 1 + keep : n_prompt; /* BOS and the first --keep prompt tokens */
    if (shift && n_keep > n_ctx_used - 2) {
        fprintf(stderr, "tinyllm generate: --keep %d: a context shift must forget something (expected at most %d "
                        "for a context of %d)\n", keep, n_ctx_used - 3, n_ctx_used);
        exit_code = EXIT_USAGE;
        goto done;
    }
    size_t cap = (size_t)n_prompt + 256; /* history: prompt + generated ids (grows); cache: the ids in the KV cache */
    int *history = realloc(tokens, cap * sizeof *tokens);
    if (!history || !(cache = malloc((size_t)n_ctx_used * sizeof *cache))) {
        if (history) tokens = history;
        fprintf(stderr, "tinyllm generate: out of memory\n");
        exit_code = EXIT_RUNTIME;
        goto done;
    }
    tokens = history;
    memcpy(cache, tokens, (size_t)n_prompt * sizeof *cache);
    int n_cache = n_prompt, n_shifts = 0;
    long shifted = 0;
    double shift_secs = 0;

    if (!seed_given && sp.temperature > 0) fprintf(stderr, "seed: %llu\n", (unsigned long long)seed);
    double t0 = now_seconds();
    if (tinyllm_context_prefill(ctx, tokens, n_prompt, &err)) {
        report("generate", &err);
        exit_code = EXIT_RUNTIME;
        goto done;
    }
    double t1 = now_seconds();
    if (!no_display) fputs(prompt, stdout);
    fflush(stdout);
    tinyllm_detok detok;
    tinyllm_detok_init(&detok, 0);
    char piece[TINYLLM_DETOK_MAX];
    int n_gen = 0, eos = tinyllm_token_eos(model);
    int next = sample_checked(sampler, tinyllm_context_logits(ctx), info.n_vocab, tokens, n_prompt, n_prompt - 1);
    if (next < 0) {
        exit_code = EXIT_RUNTIME;
        goto done;
    }
    double t_first = now_seconds();
    while (1) {
        if (next == eos && !ignore_eos) break;
        if ((size_t)(n_prompt + n_gen) == cap) {
            int *t = realloc(tokens, 2 * cap * sizeof *tokens);
            if (!t) {
                fprintf(stderr, "\ntinyllm generate: out of memory\n");
                exit_code = EXIT_RUNTIME;
                goto done;
            }
            tokens = t, cap *= 2;
        }
        tokens[n_prompt + n_gen++] = next;
        int n = tinyllm_detok_push(model, &detok, next, piece, sizeof piece, NULL);
        if (n > 0) {
            int r = stop_filter_feed(&stop, piece, (size_t)n, stdout);
            fflush(stdout);
            if (r) break; /* a stop string (or no memory to hold text back) */
        }
        if (n_gen == n_predict) break;
        if (n_cache == n_ctx_used) { /* no room for the next token */
            if (!shift) {
                fprintf(stderr, "\ntinyllm generate: stopped: the context of %d tokens is full%s\n", n_ctx_used,
                        no_shift ? " (--no-context-shift)" : " (-n -1 goes on by shifting it)");
                break;
            }
            int discard = (n_cache - n_keep) / 2;
            double ts = now_seconds();
            if (tinyllm_context_shift(ctx, cache, n_keep, discard, &err)) {
                report("generate", &err);
                exit_code = EXIT_RUNTIME;
                goto done;
            }
            shift_secs += now_seconds() - ts;
            shifted += n_cache - n_keep - discard;
            n_shifts++;
            memmove(cache + n_keep, cache + n_keep + discard, (size_t)(n_cache - n_keep - discard) * sizeof *cache);
            n_cache -= discard;
        }
        cache[n_cache++] = next;
        if (tinyllm_context_decode(ctx, next, &err)) {
            report("generate", &err);
            exit_code = EXIT_RUNTIME;
            goto done;
        }
        next = sample_checked(sampler, tinyllm_context_logits(ctx), info.n_vocab, tokens, n_prompt + n_gen,
                              n_prompt + n_gen - 1);
        if (next < 0) {
            exit_code = EXIT_RUNTIME;
            goto done;
        }
    }
    double t2 = now_seconds();
    int n = tinyllm_detok_flush(&detok, piece, sizeof piece);
    if (n > 0) stop_filter_feed(&stop, piece, (size_t)n, stdout);
    stop_filter_flush(&stop, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    /* decode speed counts the steps after the first sampled token */
    int n_decode = n_gen > 1 ? n_gen - 1 : 0;
    fprintf(stderr,
            "\nprefill: %d tokens in %.1f ms (%.1f tok/s) | decode: %d tokens in %.1f ms (%.1f tok/s) | "
            "load %.1f ms, first token %.1f ms\n",
            n_prompt, (t1 - t0) * 1e3, n_prompt / (t1 - t0), n_decode, (t2 - t_first) * 1e3,
            n_decode ? n_decode / (t2 - t_first) : 0.0, (t0 - t_load) * 1e3, (t_first - t_load) * 1e3);
    if (n_shifts) /* the cost of going past the context: the moved tokens run again */
        fprintf(stderr, "context shifts: %d (kept %d + the newer half each time; re-ran %ld tokens in %.1f ms)\n",
                n_shifts, n_keep, shifted, shift_secs * 1e3);
done:
    free(cache);
    stop_filter_free(&stop);
    free(owned_prompt);
    free(tokens);
    tinyllm_sampler_free(sampler);
    tinyllm_context_free(ctx);
    tinyllm_model_free(model);
    return exit_code;
}
