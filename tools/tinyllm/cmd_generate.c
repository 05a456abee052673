/* tinyllm generate: prefill the prompt, then decode token by token,
 * streaming text as it is produced, with separate prefill/decode speeds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "common.h"

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
    const char *prompt = NULL;
    int n_predict = 256, ignore_eos = 0, seed_given = 0;
    common_flags cf = {0};
    const unsigned common = CF_MODEL | CF_CTX | CF_THREADS | CF_CHECK_TENSORS | CF_NO_MMAP | CF_KEEP_F16;
    tinyllm_sampler_params sp = tinyllm_sampler_default_params();
    sp.top_p = 0.9f;
    sp.repeat_penalty = 1.0f;
    uint64_t seed = 0;
    const opt_spec own[] = {
        {"--prompt", "-p", OPT_STRING, &prompt, "TEXT", "prompt text (required, UTF-8)", NULL},
        {"--n-predict", "-n", OPT_INT, &n_predict, "N", "tokens to generate (default 256)", NULL},
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
    if (!prompt) return usage_error(&cmd, "missing -p PROMPT");
    if (!*prompt) return usage_error(&cmd, "-p: the prompt is empty (expected some text)");
    if (n_predict < 1) return usage_error(&cmd, "-n %d: expected at least 1 token to generate", n_predict);
    if (!seed_given) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
    }
    sp.seed = seed;
    tinyllm_error err = {0};
    tinyllm_sampler *sampler = NULL;
    /* settings first: a bad --temp is a usage error before any loading */
    if (tinyllm_sampler_params_check(&sp, &err)) return usage_error(&cmd, "%s", err.message);

    double t_load = now_seconds();
    tinyllm_model_params mp = model_params_from(&cf);
    tinyllm_model *model = load_model_or_report(cf.model, &mp);
    if (!model) return EXIT_MODEL;
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
        report(&err);
        exit_code = EXIT_RUNTIME;
        goto done;
    }
    tokens = tokenize_prompt(model, prompt, &n_prompt);
    if (!tokens) {
        exit_code = EXIT_USAGE;
        goto done;
    }
    int n_ctx_used = tinyllm_context_n_ctx(ctx);
    if ((long long)n_prompt + n_predict > n_ctx_used) { /* no int overflow at -n 2147483647 */
        fprintf(stderr,
                "tinyllm generate: the prompt (%d tokens) plus -n %d exceeds the context of %d tokens; "
                "use a smaller -n, a shorter prompt or a larger --ctx (at most %d for this model)\n",
                n_prompt, n_predict, n_ctx_used, info.n_ctx_train);
        exit_code = EXIT_USAGE;
        goto done;
    }
    int *history = realloc(tokens, (size_t)(n_prompt + n_predict) * sizeof *tokens);
    if (!history) {
        fprintf(stderr, "tinyllm: out of memory\n");
        exit_code = EXIT_RUNTIME;
        goto done;
    }
    tokens = history;

    if (!seed_given && sp.temperature > 0) fprintf(stderr, "seed: %llu\n", (unsigned long long)seed);
    double t0 = now_seconds();
    if (tinyllm_context_prefill(ctx, tokens, n_prompt, &err)) {
        report(&err);
        exit_code = EXIT_RUNTIME;
        goto done;
    }
    double t1 = now_seconds();
    fputs(prompt, stdout);
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
        tokens[n_prompt + n_gen++] = next;
        int n = tinyllm_detok_push(model, &detok, next, piece, sizeof piece, NULL);
        if (n > 0) {
            fwrite(piece, 1, (size_t)n, stdout);
            fflush(stdout);
        }
        if (n_gen == n_predict) break;
        if (tinyllm_context_decode(ctx, next, &err)) {
            report(&err);
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
    if (n > 0) fwrite(piece, 1, (size_t)n, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    /* decode speed counts the steps after the first sampled token */
    int n_decode = n_gen > 1 ? n_gen - 1 : 0;
    fprintf(stderr,
            "\nprefill: %d tokens in %.1f ms (%.1f tok/s) | decode: %d tokens in %.1f ms (%.1f tok/s) | "
            "load %.1f ms, first token %.1f ms\n",
            n_prompt, (t1 - t0) * 1e3, n_prompt / (t1 - t0), n_decode, (t2 - t_first) * 1e3,
            n_decode ? n_decode / (t2 - t_first) : 0.0, (t0 - t_load) * 1e3, (t_first - t_load) * 1e3);
done:
    free(tokens);
    tinyllm_sampler_free(sampler);
    tinyllm_context_free(ctx);
    tinyllm_model_free(model);
    return exit_code;
}
