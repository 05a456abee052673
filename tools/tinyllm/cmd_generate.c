/* tinyllm generate: prefill the prompt, then decode token by token,
 * streaming text as it is produced, with separate prefill/decode speeds.
 * The options and the reporting are here; the loop is generation.c's. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "common.h"
#include "generation.h"
#include "textio.h"

/* the largest prompt read from a file or stdin */
#define PROMPT_MAX_BYTES ((size_t)64 << 20)

/* Ctrl-C in interactive mode: the reply in progress stops and the user gets
 * the prompt back (beside the writers' temporaries, the CLI's only global
 * state: a signal handler can reach nothing else). */
static volatile sig_atomic_t interrupted;
static void on_interrupt(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct {
    const char *prompt, *prompt_file;
    int n_predict, ignore_eos, seed_given, escapes, verbose_prompt, no_display, keep, no_shift, interactive;
    string_list reverse, stops;
    common_flags cf;
    tinyllm_sampler_params sp;
    uint64_t seed;
} generate_options;

/* The prompt's text in *prompt: -p TEXT, -f FILE, or stdin (-p - / -f -),
 * with -e's escapes turned into characters; *owned is what to free. -1, or
 * a usage error's exit code. */
static int read_prompt(const command_spec *cmd, const generate_options *o, const char **prompt, char **owned) {
    const char *source = o->prompt_file ? o->prompt_file : o->prompt, *flag = o->prompt_file ? "-f" : "-p";
    *prompt = o->prompt;
    *owned = NULL;
    if (o->prompt_file || !strcmp(o->prompt, "-")) {
        size_t len = 0;
        char why[256];
        *owned = !strcmp(source, "-") ? read_stdin(PROMPT_MAX_BYTES, &len, why, sizeof why)
                                      : read_regular_file(source, PROMPT_MAX_BYTES, &len, why, sizeof why);
        if (!*owned) return usage_error(cmd, "%s %s: %s", flag, source, why);
        if (strlen(*owned) != len)
            return usage_error(cmd, "%s %s: the text holds a NUL byte (expected UTF-8 text)", flag, source);
        *prompt = *owned;
    } else if (o->escapes) {
        if (!(*owned = strdup(o->prompt))) return usage_error(cmd, "out of memory");
        *prompt = *owned;
    }
    int bad_escape = o->escapes ? unescape(*owned) : 0;
    if (bad_escape == -2)
        return usage_error(cmd, "-e: \\x00 in the prompt (expected text without NUL bytes, as -f requires)");
    if (bad_escape)
        return usage_error(cmd, "-e: a malformed escape in the prompt (expected \\n \\t \\r \\\\ \\\" \\' or \\xNN)");
    if (!**prompt) return usage_error(cmd, "%s: the prompt is empty (expected some text)", flag);
    return -1;
}

/* --verbose-prompt: the prompt's ids and pieces on stderr. */
static void show_prompt_tokens(const tinyllm_model *model, const int *tokens, int n) {
    fprintf(stderr, "prompt: %d tokens\n", n);
    for (int i = 0; i < n; i++) {
        const char *piece = tinyllm_token_piece(model, tokens[i]);
        char shown[96];
        fprintf(stderr, "%6d -> '%s'\n", tokens[i], tinyllm_printable(piece, strlen(piece), shown, sizeof shown));
    }
}

/* The session's sizes against the context: EXIT_OK, or a usage error said
 * on stderr. Sets g's n_keep and shift. */
static int plan_context(const generate_options *o, generation *g, int n_prompt, int n_ctx, int n_ctx_train) {
    if (n_prompt >= n_ctx) {
        say("tinyllm generate: the prompt (%d tokens) does not fit the context of %d tokens; use a shorter prompt or "
            "a larger --ctx (at most %d for this model)\n", n_prompt, n_ctx, n_ctx_train);
        return EXIT_USAGE;
    }
    /* Past the end of the context, a context shift keeps BOS and --keep
     * prompt tokens, forgets half of the rest and goes on (-n N and -1); -2
     * and --no-context-shift stop there instead. */
    g->shift = !o->no_shift && o->n_predict != -2;
    g->no_shift = o->no_shift;
    if (!g->shift && o->n_predict > 0 && (long long)n_prompt + o->n_predict > n_ctx) { /* no int overflow */
        say("tinyllm generate: the prompt (%d tokens) plus -n %d exceeds the context of %d tokens; use a smaller -n, "
            "a shorter prompt, a larger --ctx (at most %d for this model) or drop --no-context-shift\n",
            n_prompt, o->n_predict, n_ctx, n_ctx_train);
        return EXIT_USAGE;
    }
    g->n_keep = o->keep < n_prompt - 1 ? 1 + o->keep : n_prompt; /* BOS and the first --keep tokens (no overflow) */
    if (g->shift && g->n_keep > n_ctx - 2) {
        say("tinyllm generate: --keep %d: a context shift must forget something (expected at most %d for a context "
            "of %d)\n", o->keep, n_ctx - 3, n_ctx);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* The exit code for a failed step, said on stderr. */
static int failure(gen_status st, const tinyllm_error *err) {
    if (st == GEN_FAILED) report("generate", err);
    if (st == GEN_NO_MEMORY) say("\ntinyllm generate: out of memory\n");
    return EXIT_RUNTIME;
}

/* Prefill, the replies (and the user's turns with -i), the stats line. */
static int run_session(const generate_options *o, generation *g, const char *prompt, const int *tokens, int n_prompt,
                       double t_load) {
    tinyllm_error err = {0};
    double t0 = now_seconds();
    gen_status st = generation_start(g, tokens, n_prompt, &o->stops, &err);
    if (st) return failure(st, &err);
    double t1 = now_seconds();
    if (!o->no_display) fputs(prompt, stdout);
    fflush(stdout);
    if ((st = generation_sample(g))) return failure(st, &err);
    double t_first = now_seconds();
    if (o->interactive) signal(SIGINT, on_interrupt);
    for (int quit = 0; !quit;) {
        if ((st = generation_reply(g, o->n_predict, o->interactive ? &interrupted : NULL, &err)))
            return failure(st, &err);
        if (!o->interactive) break;
        if ((st = generation_user_turn(g, &interrupted, &quit, &err))) return failure(st, &err);
    }
    generation_finish(g);
    /* decode speed counts the steps after the first sampled token, in the
     * replies only (not the time the user takes to type) */
    int n_decode = g->n_gen > 1 ? g->n_gen - 1 : 0;
    fprintf(stderr,
            "\nprefill: %d tokens in %.1f ms (%.1f tok/s) | decode: %d tokens in %.1f ms (%.1f tok/s) | "
            "load %.1f ms, first token %.1f ms\n",
            n_prompt, (t1 - t0) * 1e3, n_prompt / (t1 - t0), n_decode, g->reply_secs * 1e3,
            n_decode ? n_decode / g->reply_secs : 0.0, (t0 - t_load) * 1e3, (t_first - t_load) * 1e3);
    if (g->shifts.n) /* the cost of going past the context: the moved tokens run again */
        fprintf(stderr, "context shifts: %d (kept %d + the newer half each time; re-ran %ld tokens in %.1f ms)\n",
                g->shifts.n, g->n_keep, g->shifts.rerun, g->shifts.secs * 1e3);
    return EXIT_OK;
}

/* Loads the model, makes the context and sampler, tokenizes and runs. */
static int generate(const generate_options *o, const char *prompt) {
    double t_load = now_seconds();
    tinyllm_model_params mp = model_params_from(&o->cf);
    tinyllm_model *model = load_model_or_report("generate", o->cf.model, &mp);
    if (!model) return EXIT_MODEL;
    tinyllm_model_info info;
    tinyllm_model_info_get(model, &info, NULL);
    tinyllm_context_params cp = tinyllm_context_default_params();
    cp.n_ctx = o->cf.n_ctx;
    cp.n_threads = o->cf.n_threads;
    generation g = {.model = model, .ignore_eos = o->ignore_eos, .reverse = &o->reverse,
                    .experimenting = o->cf.exp.flags != 0};
    tinyllm_error err = {0};
    int rc = EXIT_OK, *tokens = NULL, n_prompt = 0;
    if (tinyllm_context_create(model, &cp, &g.ctx, &err)) {
        say("tinyllm generate: %s\n", err.message);
        rc = err.code == TINYLLM_ERR_ARG ? EXIT_USAGE : EXIT_RUNTIME;
    }
    if (!rc) rc = apply_experiments("generate", g.ctx, &o->cf.exp, stderr);
    if (!rc && tinyllm_sampler_create(&o->sp, info.n_vocab, &g.sampler, &err)) {
        report("generate", &err);
        rc = EXIT_RUNTIME;
    }
    if (!rc && !(tokens = tokenize_prompt("generate", model, prompt, &n_prompt))) rc = EXIT_USAGE;
    if (!rc && o->verbose_prompt) {
        show_prompt_tokens(model, tokens, n_prompt);
        int n_ctx = tinyllm_context_n_ctx(g.ctx);
        fprintf(stderr, "kv cache: %.2f MiB for a context of %d tokens\n", tinyllm_model_kv_bytes(model, n_ctx) / 1048576.0,
                n_ctx);
    }
    if (!rc) rc = plan_context(o, &g, n_prompt, tinyllm_context_n_ctx(g.ctx), info.n_ctx_train);
    if (!rc && !o->seed_given && o->sp.temperature > 0) fprintf(stderr, "seed: %llu\n", (unsigned long long)o->seed);
    if (!rc) rc = run_session(o, &g, prompt, tokens, n_prompt, t_load);
    free(tokens);
    free_generation(&g);
    tinyllm_sampler_free(g.sampler);
    tinyllm_context_free(g.ctx);
    tinyllm_model_free(model);
    return rc;
}

int cmd_generate(int argc, char **argv) {
    generate_options o = {.n_predict = -2, .sp = tinyllm_sampler_default_params()};
    o.sp.repeat_penalty = 1.0f;
    const unsigned common = CF_MODEL | CF_CTX | CF_THREADS | CF_CHECK_TENSORS | CF_NO_MMAP | CF_WEIGHTS | CF_EXPERIMENT;
    const opt_spec own[] = {
        {"--prompt", "-p", OPT_STRING, &o.prompt, "TEXT", "prompt text (UTF-8; - reads stdin)", NULL},
        {"--file", "-f", OPT_STRING, &o.prompt_file, "FILE", "read the prompt from FILE (- = stdin)", NULL},
        {"--escape", "-e", OPT_FLAG, &o.escapes, "", "process \\n \\t \\\\ \\\" \\xNN in the prompt", NULL},
        {"--n-predict", "-n", OPT_INT, &o.n_predict, "N",
         "tokens to generate (shifting the context when it fills); -1 = until the end of text; -2 = until the end "
         "of text or a full context (default)", NULL},
        {"--keep", NULL, OPT_INT, &o.keep, "N", "prompt tokens (after BOS) a context shift keeps (default 0)", NULL},
        {"--no-context-shift", NULL, OPT_FLAG, &o.no_shift, "", "stop when the context is full instead of shifting it",
         NULL},
        {"--interactive", "-i", OPT_FLAG, &o.interactive, "",
         "after each reply read a line from stdin and go on (Ctrl-C: back to input, Ctrl-D: quit)", NULL},
        {"--reverse-prompt", "-r", OPT_STRING_LIST, &o.reverse, "TEXT",
         "with -i: hand over to the user when TEXT is generated (printed; repeatable)", NULL},
        {"--stop", NULL, OPT_STRING_LIST, &o.stops, "TEXT", "stop when TEXT is generated (not printed; repeatable)", NULL},
        {"--verbose-prompt", NULL, OPT_FLAG, &o.verbose_prompt, "", "print the prompt's tokens to stderr", NULL},
        {"--no-display-prompt", NULL, OPT_FLAG, &o.no_display, "", "do not echo the prompt", NULL},
        {"--temp", NULL, OPT_FLOAT, &o.sp.temperature, "T", "temperature; 0 = greedy (default 0.8)", NULL},
        {"--top-k", NULL, OPT_INT, &o.sp.top_k, "K", "keep the K most likely tokens; 0 = off (default 40)", NULL},
        {"--top-p", NULL, OPT_FLOAT, &o.sp.top_p, "P", "nucleus sampling in (0,1]; 1 = off (default 0.95, the library's)", NULL},
        {"--min-p", NULL, OPT_FLOAT, &o.sp.min_p, "P", "drop tokens below P x the top probability (default 0.05)", NULL},
        {"--repeat-penalty", NULL, OPT_FLOAT, &o.sp.repeat_penalty, "R", "penalise recent tokens; 1 = off (default 1)",
         NULL},
        {"--repeat-last-n", NULL, OPT_INT, &o.sp.repeat_last_n, "N", "recent tokens the penalty sees (default 64)", NULL},
        {"--seed", "-s", OPT_U64, &o.seed, "N", "random seed (default: from the clock, printed)", &o.seed_given},
        {"--ignore-eos", NULL, OPT_FLAG, &o.ignore_eos, "", "keep generating after the end-of-text token", NULL},
    };
    opt_spec opts[MAX_OPTS];
    command_spec cmd = {"generate", "-m MODEL.gguf -p PROMPT [options]",
                        "Generate text from a prompt, streaming it to stdout; stats go to stderr.", opts, 0};
    int rc = parse_command(&cmd, opts, common, &o.cf, own, N_OPTS(own), argc, argv);
    if (rc >= 0) return rc;
    if (!o.prompt == !o.prompt_file) return usage_error(&cmd, "give the prompt with one of -p TEXT or -f FILE");
    if (o.n_predict == 0 || o.n_predict < -2)
        return usage_error(&cmd, "-n %d: expected a number of tokens >= 1, -1 (until the end of text) or -2 (until "
                                 "the end of text or a full context)", o.n_predict);
    if (o.keep < 0) return usage_error(&cmd, "--keep %d: expected >= 0", o.keep);
    for (int i = 0; i < o.stops.n; i++)
        if (!*o.stops.v[i]) return usage_error(&cmd, "--stop: empty string (expected some text)");
    for (int i = 0; i < o.reverse.n; i++)
        if (!*o.reverse.v[i] || strlen(o.reverse.v[i]) > 200)
            return usage_error(&cmd, "-r: expected a non-empty reverse prompt of at most 200 bytes");
    if (o.reverse.n && !o.interactive) return usage_error(&cmd, "-r needs -i (the reverse prompt hands over to the user)");
    if (!o.seed_given) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        o.seed = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec;
    }
    o.sp.seed = o.seed;
    const char *prompt;
    char *owned; /* from a file or stdin, or with -e */
    tinyllm_error err = {0};
    rc = read_prompt(&cmd, &o, &prompt, &owned);
    if (rc < 0 && tinyllm_sampler_params_check(&o.sp, &err)) /* a bad --temp fails before any loading */
        rc = usage_error(&cmd, "%s", err.message);
    if (rc < 0) rc = generate(&o, prompt);
    free(owned);
    return rc;
}
