/* tinyllm generate: prefill the prompt, then decode token by token,
 * streaming text as it is produced, with separate prefill/decode speeds. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "common.h"
#include "lineedit.h"
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
    if (next < 0) say("tinyllm generate: after position %d: %s\n", pos, err.message);
    return next;
}

/* Ctrl-C in interactive mode: the generation in progress stops and the user
 * gets the prompt back (the one piece of global state the CLI has: a signal
 * handler can reach nothing else). */
static volatile sig_atomic_t interrupted;
static void on_interrupt(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct {
    int n;        /* context shifts so far */
    long rerun;   /* tokens they ran again */
    double secs;  /* and the time that took */
} shift_stats;

/* Room for `need` more tokens in the cache: a context shift (keep n_keep,
 * forget at least half of the rest) when it is full and shifting is allowed.
 * 0 when there is room; -1 when there is none (err set if a shift failed). */
static int make_room(tinyllm_context *ctx, int *cache, int *n_cache, int n_ctx, int n_keep, int need, int shift,
                     shift_stats *st, tinyllm_error *err) {
    if (*n_cache + need <= n_ctx) return 0;
    if (!shift) return -1;
    int discard = (*n_cache - n_keep) / 2, over = *n_cache + need - n_ctx;
    if (discard < over) discard = over;
    if (discard > *n_cache - n_keep) return -1;
    double t = now_seconds();
    if (tinyllm_context_shift(ctx, cache, n_keep, discard, err)) return -1;
    st->secs += now_seconds() - t;
    st->rerun += *n_cache - n_keep - discard;
    st->n++;
    memmove(cache + n_keep, cache + n_keep + discard, (size_t)(*n_cache - n_keep - discard) * sizeof *cache);
    *n_cache -= discard;
    return 0;
}

/* ids (*cap entries) grown to hold at least n; -1 out of memory */
static int grow_ids(int **ids, size_t *cap, int n) {
    if ((size_t)n <= *cap) return 0;
    size_t c = *cap * 2 > (size_t)n ? *cap * 2 : (size_t)n;
    int *p = realloc(*ids, c * sizeof *p);
    if (!p) return -1;
    *ids = p, *cap = c;
    return 0;
}

/* Appends n printed bytes to the tail buffer (cap bytes, NUL-terminated);
 * 1 when the printed text now ends with a reverse prompt. */
static int ends_with_reverse(char *tail, size_t cap, const char *text, size_t n, const string_list *rev) {
    if (!rev->n) return 0;
    size_t len = strlen(tail);
    if (n >= cap - 1) {
        memcpy(tail, text + n - (cap - 1), cap - 1);
        len = cap - 1;
    } else {
        if (len + n > cap - 1) {
            memmove(tail, tail + (len + n - (cap - 1)), cap - 1 - n);
            len = cap - 1 - n;
        }
        memcpy(tail + len, text, n);
        len += n;
    }
    tail[len] = 0;
    for (int i = 0; i < rev->n; i++) {
        size_t m = strlen(rev->v[i]);
        if (m <= len && !memcmp(tail + len - m, rev->v[i], m)) return 1;
    }
    return 0;
}

int cmd_generate(int argc, char **argv) {
    const char *prompt = NULL, *prompt_file = NULL;
    int n_predict = -2, ignore_eos = 0, seed_given = 0, escapes = 0, verbose_prompt = 0, no_display = 0;
    int keep = 0, no_shift = 0, interactive = 0;
    string_list reverse = {0};
    string_list stops = {0};
    common_flags cf = {0};
    const unsigned common = CF_MODEL | CF_CTX | CF_THREADS | CF_CHECK_TENSORS | CF_NO_MMAP | CF_WEIGHTS;
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
        {"--interactive", "-i", OPT_FLAG, &interactive, "",
         "after each reply read a line from stdin and go on (Ctrl-C: back to input, Ctrl-D: quit)", NULL},
        {"--reverse-prompt", "-r", OPT_STRING_LIST, &reverse, "TEXT",
         "with -i: hand over to the user when TEXT is generated (printed; repeatable)", NULL},
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
    for (int i = 0; i < reverse.n; i++)
        if (!*reverse.v[i] || strlen(reverse.v[i]) > 200)
            return usage_error(&cmd, "-r: expected a non-empty reverse prompt of at most 200 bytes");
    if (reverse.n && !interactive) return usage_error(&cmd, "-r needs -i (the reverse prompt hands over to the user)");
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
    int bad_escape = escapes && owned_prompt ? unescape(owned_prompt) : 0;
    if (bad_escape) {
        free(owned_prompt);
        if (bad_escape == -2)
            return usage_error(&cmd, "-e: \\x00 in the prompt (expected text without NUL bytes, as -f requires)");
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
        say("tinyllm generate: %s\n", err.message);
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
        say("tinyllm generate: the prompt (%d tokens) does not fit the context of %d tokens; use a "
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
    int n_keep = keep < n_prompt - 1 ? 1 + keep : n_prompt; /* BOS and the first --keep prompt tokens (no overflow) */
    if (shift && n_keep > n_ctx_used - 2) {
        say("tinyllm generate: --keep %d: a context shift must forget something (expected at most %d "
            "for a context of %d)\n", keep, n_ctx_used - 3, n_ctx_used);
        exit_code = EXIT_USAGE;
        goto done;
    }
    size_t cap = (size_t)n_prompt + 256; /* history: prompt + generated ids (grows); cache: the ids in the KV cache */
    int *history = realloc(tokens, cap * sizeof *tokens);
    if (!history || !(cache = malloc((size_t)n_ctx_used * sizeof *cache))) {
        if (history) tokens = history;
        say("tinyllm generate: out of memory\n");
        exit_code = EXIT_RUNTIME;
        goto done;
    }
    tokens = history;
    memcpy(cache, tokens, (size_t)n_prompt * sizeof *cache);
    int n_cache = n_prompt;
    shift_stats shifts = {0};

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
    char tail[256] = {0}; /* the last bytes printed, for the reverse prompts */
    int n_gen = 0, eos = tinyllm_token_eos(model), n_hist = n_prompt;
    int next = sample_checked(sampler, tinyllm_context_logits(ctx), info.n_vocab, tokens, n_hist, n_hist - 1);
    if (next < 0) {
        exit_code = EXIT_RUNTIME;
        goto done;
    }
    double t_first = now_seconds();
    if (interactive) signal(SIGINT, on_interrupt);
    for (int turn = 0;; turn++) {
        int pending = -1, turn_gen = 0; /* pending: printed, not yet in the cache */
        while (1) {
            if (interactive && interrupted) { /* Ctrl-C: back to the user */
                interrupted = 0;
                break;
            }
            if (next == eos && !ignore_eos) break;
            if (grow_ids(&tokens, &cap, n_hist + 1)) goto oom;
            tokens[n_hist++] = next;
            n_gen++, turn_gen++;
            pending = next;
            int n = tinyllm_detok_push(model, &detok, next, piece, sizeof piece, NULL);
            if (n > 0) {
                int r = stop_filter_feed(&stop, piece, (size_t)n, stdout);
                fflush(stdout);
                if (r) break; /* a stop string (or no memory to hold text back) */
                if (ends_with_reverse(tail, sizeof tail, piece, (size_t)n, &reverse)) break;
            }
            if (turn_gen == n_predict) break;
            if (make_room(ctx, cache, &n_cache, n_ctx_used, n_keep, 1, shift, &shifts, &err)) {
                if (err.code) goto failed;
                say("\ntinyllm generate: stopped: the context of %d tokens is full%s\n", n_ctx_used,
                    no_shift ? " (--no-context-shift)" : " (-n -1 goes on by shifting it)");
                break;
            }
            cache[n_cache++] = next;
            pending = -1;
            if (tinyllm_context_decode(ctx, next, &err)) goto failed;
            next = sample_checked(sampler, tinyllm_context_logits(ctx), info.n_vocab, tokens, n_hist, n_hist - 1);
            if (next < 0) {
                exit_code = EXIT_RUNTIME;
                goto done;
            }
        }
        if (!interactive) break;
        /* the user's turn: a line from stdin goes into the same cache (with
         * the last printed token, if it is not there yet) */
        stop_filter_flush(&stop, stdout);
        int n_in = 0, *in = NULL, quit = 0;
        while (!in && !quit) { /* until a line that tokenizes, or the end of input */
            char *line = NULL;
            size_t line_cap = 0;
            ssize_t got = -1;
            if (isatty(STDIN_FILENO)) { /* a terminal: line editing and history */
                fputs("\n", stdout);
                fflush(stdout);
                if ((line = edit_line("> ", NULL, NULL))) { /* the line goes in with its newline */
                    size_t len = strlen(line);
                    char *with_nl = realloc(line, len + 2);
                    if (with_nl) memcpy(with_nl + len, "\n", 2), line = with_nl, got = (ssize_t)len + 1;
                }
            } else {
                fputs("\n> ", stdout);
                fflush(stdout);
                got = getline(&line, &line_cap, stdin);
            }
            if (got < 0 || interrupted) { /* Ctrl-D (end of input), or Ctrl-C at the prompt */
                free(line);
                quit = 1;
                break;
            }
            if (!isatty(STDIN_FILENO)) fputs(line, stdout); /* echo what a script typed */
            int failed_tokenize = tinyllm_tokenize(model, line, (size_t)got, 0, NULL, 0, &n_in, &err) != 0;
            if (!failed_tokenize && (in = malloc(((size_t)n_in + 1) * sizeof *in)))
                failed_tokenize = tinyllm_tokenize(model, line, (size_t)got, 0, in + 1, n_in, &n_in, &err) != 0;
            if (failed_tokenize || !in) { /* the tokenizer's own reason (invalid UTF-8, ...) */
                say("tinyllm generate: input: %s\n", failed_tokenize ? err.message : "out of memory");
                free(in);
                in = NULL;
                err = (tinyllm_error){0};
            }
            free(line);
            int n_want = n_in + (pending >= 0);
            const char *why = !in                                     ? NULL
                              : n_want >= n_ctx_used - n_keep         ? "do not fit the context"
                              : !shift && n_cache + n_want > n_ctx_used ? "do not fit the positions left (--no-context-shift)"
                                                                       : NULL;
            if (why) { /* refused, and the next line is read: the session goes on */
                say("tinyllm generate: input: %d tokens %s; type a shorter line\n", n_want, why);
                free(in);
                in = NULL;
            }
        }
        if (quit) break;
        int n_add = 0, *add = in + 1;
        if (pending >= 0) add = in, in[0] = pending, n_add = 1;
        n_add += n_in;
        if (n_add == 0 || make_room(ctx, cache, &n_cache, n_ctx_used, n_keep, n_add, shift, &shifts, &err) ||
            grow_ids(&tokens, &cap, n_hist + n_add)) {
            free(in);
            if (err.code) goto failed;
            break;
        }
        memcpy(cache + n_cache, add, (size_t)n_add * sizeof *add);
        memcpy(tokens + n_hist, add, (size_t)n_add * sizeof *add);
        n_cache += n_add, n_hist += n_add;
        int rc_in = tinyllm_context_prefill(ctx, add, n_add, &err);
        free(in);
        if (rc_in) goto failed;
        stop_filter_reset(&stop);
        tinyllm_detok_init(&detok, 0);
        next = sample_checked(sampler, tinyllm_context_logits(ctx), info.n_vocab, tokens, n_hist, n_hist - 1);
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
    if (shifts.n) /* the cost of going past the context: the moved tokens run again */
        fprintf(stderr, "context shifts: %d (kept %d + the newer half each time; re-ran %ld tokens in %.1f ms)\n",
                shifts.n, n_keep, shifts.rerun, shifts.secs * 1e3);
    goto done;
oom:
    say("\ntinyllm generate: out of memory\n");
    exit_code = EXIT_RUNTIME;
    goto done;
failed:
    report("generate", &err);
    exit_code = EXIT_RUNTIME;
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
