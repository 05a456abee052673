/* tinyllm step: walk through a forward pass tap by tap and look — tensor
 * statistics, per-head attention, the logit lens, the next-token
 * distribution, head ablation, attention pictures — interactively or from a
 * script. This file is the session: reading lines, the command table and
 * its argument checks; what each command shows is step_views.c, the shared
 * state stepper.c (the picture-only `tinyllm attn` is cmd_attn.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lineedit.h"
#include "step_views.h"

#define MAX_ARGS 8

/* The longest command line read from stdin (paths included). */
#define STEP_MAX_LINE 65536
#define STR_(x) #x
#define STR(x) STR_(x)

/* One line of f into buf (cap bytes, NUL-terminated): its length, -1 at
 * the end of input, -2 for a line that does not fit or holds a NUL byte
 * (read to its end and dropped, so no part of it ever runs as a command of
 * its own: fgets' strlen stopped at the NUL and left the tail for later). */
static long read_line(char *buf, size_t cap, FILE *f) {
    size_t n = 0;
    int ch, bad = 0;
    while ((ch = getc(f)) != EOF) {
        if (ch == 0) bad = 1;
        if (n + 1 < cap) buf[n++] = (char)ch;
        else bad = 1;
        if (ch == '\n') break;
    }
    buf[n] = 0;
    if (ch == EOF && n == 0) return -1;
    return bad ? -2 : (long)n;
}

/* Each session command: its handler gets the words of the line (argv[0] is
 * the command) and returns 1 to end the session. */
typedef int (*command_fn)(stepper *st, int argc, char **argv);

static int parse_int_arg(const char *s, int *v) {
    char *end;
    long x = strtol(s, &end, 10);
    if (!*s || *end || x < -1000000 || x > 1000000) return -1;
    *v = (int)x;
    return 0;
}

static int do_quit(stepper *st, int argc, char **argv) {
    (void)st, (void)argc, (void)argv;
    return 1;
}

static int do_help(stepper *st, int argc, char **argv);

static int do_next(stepper *st, int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "layer")) {
        char name[48];
        snprintf(name, sizeof name, "%d.attn_norm", st->store.taps[st->cur_tap].layer + 1);
        int t = tap_index(st, name);
        if (t < 0) {
            say_error(st, "already at the last layer");
            return 0;
        }
        st->cur_tap = t;
        cmd_show(st, t, 1);
        return 0;
    }
    int step = 1;
    if (argc > 1 && (parse_int_arg(argv[1], &step) || step < 1)) {
        say_error(st, "next: '%s' is not a positive count", argv[1]);
        return 0;
    }
    int t = st->cur_tap + (!strcmp(argv[0], "next") ? step : -step);
    if (t < 0 || t >= st->store.n) {
        say_error(st, "%s", t < 0 ? "already at the first tap" : "already at the last tap (logits); try 'gen 1'");
        return 0;
    }
    st->cur_tap = t;
    cmd_show(st, t, 1);
    return 0;
}

/* "WHAT 0..MAX" as the session's error. */
static void say_out_of_range(stepper *st, const char *what, int max) { say_error(st, "%s 0..%d", what, max); }

static int do_layer(stepper *st, int argc, char **argv) {
    int v = 0;
    if (argc != 2 || parse_int_arg(argv[1], &v) || v < 0 || v >= st->info.n_layer) {
        say_out_of_range(st, "layer: expected a layer number", st->info.n_layer - 1);
        return 0;
    }
    char name[48];
    snprintf(name, sizeof name, "%d.attn_norm", v);
    st->cur_tap = tap_index(st, name);
    cmd_show(st, st->cur_tap, 1);
    return 0;
}

static int do_pos(stepper *st, int argc, char **argv) {
    int v = 0;
    if (argc != 2 || parse_int_arg(argv[1], &v) || v < 0 || v >= st->store.n_pos) {
        say_out_of_range(st, "pos: expected a position", st->store.n_pos - 1);
        return 0;
    }
    st->cur_pos = v;
    emit_begin(st, "pos");
    emit_int(st, "pos", v);
    emit_text(st, "position %d '%s'\n", v, st->labels[v]);
    emit_end(st);
    return 0;
}

static int do_show(stepper *st, int argc, char **argv) {
    int t = argc > 1 ? tap_index(st, argv[1]) : st->cur_tap;
    if (t < 0)
        say_error(st, "unknown tap '%s' (try 'taps')", argv[1]);
    else
        cmd_show(st, t, 0);
    return 0;
}

static int do_heads(stepper *st, int argc, char **argv) {
    int layer = st->store.taps[st->cur_tap].layer;
    if (argc > 1 && (parse_int_arg(argv[1], &layer) || layer < 0 || layer >= st->info.n_layer)) {
        say_error(st, "heads: '%s' is not a layer number", argv[1]);
        return 0;
    }
    cmd_heads(st, layer < 0 ? 0 : layer);
    return 0;
}

static int do_lens(stepper *st, int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--png"))
        cmd_lens_png(st, argv[2]);
    else if (argc == 1)
        cmd_lens(st);
    else
        say_error(st, "usage: lens [--png FILE]");
    return 0;
}

static int do_top(stepper *st, int argc, char **argv) {
    int k = st->top_k;
    if (argc > 1 && (parse_int_arg(argv[1], &k) || k < 1 || k > st->info.n_vocab))
        say_error(st, "top: '%s' is not a count of tokens", argv[1]);
    else
        cmd_top(st, k);
    return 0;
}

static int do_gen(stepper *st, int argc, char **argv) {
    int v = 0;
    if (argc != 2 || parse_int_arg(argv[1], &v) || v < 1)
        say_error(st, "gen: expected a number of tokens >= 1");
    else
        cmd_gen(st, v);
    return 0;
}

static int do_dump(stepper *st, int argc, char **argv) {
    if (argc != 3)
        say_error(st, "usage: dump TAP FILE.npy");
    else
        cmd_dump(st, argv[1], argv[2]);
    return 0;
}

/* attn L H|all [--png FILE]: one head's rows as text, or a picture */
static int do_attn(stepper *st, int argc, char **argv) {
    int layer, head = -1;
    const char *png = argc == 5 && !strcmp(argv[3], "--png") ? argv[4] : NULL;
    if ((argc != 3 && argc != 5) || parse_int_arg(argv[1], &layer) || layer < 0 || layer >= st->info.n_layer ||
        (strcmp(argv[2], "all") && (parse_int_arg(argv[2], &head) || head < 0 || head >= st->info.n_head))) {
        say_error(st, "usage: attn LAYER HEAD|all [--png FILE] (layer and head in range)");
        return 0;
    }
    if (png) {
        stepper_attn_png(st, layer, head, 0, png);
        return 0;
    }
    if (head < 0) {
        say_error(st, "attn L all needs --png FILE");
        return 0;
    }
    char name[48];
    snprintf(name, sizeof name, "%d.attn_probs", layer);
    int tap = tap_index(st, name);
    emit_begin(st, "attn");
    emit_int(st, "layer", layer), emit_int(st, "head", head);
    emit_text(st, "layer %d head %d\n", layer, head);
    emit_open(st, "rows", '[');
    for (int i = 0; i < st->store.n_pos; i++) {
        const float *row = tap_store_row(&st->store, tap, i);
        emit_open(st, NULL, '[');
        emit_text(st, "  %3d %-10.10s", i, st->labels[i]);
        for (int j = 0; j <= i && row; j++) {
            emit_num(st, NULL, "%.6f", row[(size_t)head * (i + 1) + j]);
            emit_text(st, " %.2f", row[(size_t)head * (i + 1) + j]);
        }
        emit_close(st);
        emit_text(st, "\n");
    }
    emit_close(st);
    emit_end(st);
    return 0;
}

static int do_ablate(stepper *st, int argc, char **argv) {
    int layer = -1, head = -1, on = !strcmp(argv[0], "ablate");
    if ((on && argc != 3) || (argc == 3 && (parse_int_arg(argv[1], &layer) || parse_int_arg(argv[2], &head))) ||
        (argc != 1 && argc != 3)) {
        say_error(st, "usage: ablate LAYER HEAD | unablate [LAYER HEAD]");
        return 0;
    }
    tinyllm_error err = {0};
    if (tinyllm_context_ablate_head(st->ctx, layer, head, on, &err)) {
        say_error(st, "%s", err.message);
        return 0;
    }
    emit_begin(st, argv[0]);
    emit_int(st, "layer", layer), emit_int(st, "head", head);
    if (layer < 0)
        emit_text(st, "all heads restored; 'rerun' to see the effect\n");
    else
        emit_text(st, "head %d of layer %d %s; 'rerun' to see the effect\n", head, layer, on ? "ablated" : "restored");
    emit_end(st);
    return 0;
}

static int do_rerun(stepper *st, int argc, char **argv) {
    (void)argc, (void)argv;
    cmd_rerun(st);
    return 0;
}

static int do_taps(stepper *st, int argc, char **argv) {
    (void)argc, (void)argv;
    int n = st->store.n;
    emit_begin(st, "taps");
    emit_open(st, "taps", '[');
    for (int i = 0; i < n; i++) {
        emit_str(st, NULL, st->store.taps[i].name);
        emit_text(st, "%s%s", st->store.taps[i].name, i + 1 < n ? (i % 8 == 7 ? "\n" : "  ") : "\n");
    }
    emit_close(st);
    emit_end(st);
    return 0;
}

static int do_tokens(stepper *st, int argc, char **argv) {
    (void)argc, (void)argv;
    emit_begin(st, "tokens");
    emit_open(st, "tokens", '[');
    for (int i = 0; i < st->n_tokens; i++) {
        emit_open(st, NULL, '{');
        emit_int(st, "pos", i), emit_int(st, "id", st->tokens[i]), emit_str(st, "text", st->labels[i]);
        emit_close(st);
        emit_text(st, "  %3d  %5d  '%s'%s\n", i, st->tokens[i], st->labels[i], i >= st->n_prompt ? "  (generated)" : "");
    }
    emit_close(st);
    emit_end(st);
    return 0;
}

static int do_where(stepper *st, int argc, char **argv) {
    (void)argc, (void)argv;
    emit_begin(st, "where");
    emit_str(st, "tap", st->store.taps[st->cur_tap].name), emit_int(st, "pos", st->cur_pos);
    emit_text(st, "at %s, position %d '%s'\n", st->store.taps[st->cur_tap].name, st->cur_pos, st->labels[st->cur_pos]);
    emit_end(st);
    return 0;
}

/* The session's commands: name (and alias), arguments, help, handler. */
static const struct {
    const char *name, *alias, *args, *help;
    command_fn fn;
} COMMANDS[] = {
    {"next", NULL, "[N | layer]", "move to the next tap of the forward pass (or the next layer's first)", do_next},
    {"prev", NULL, "[N]", "move to the previous tap", do_next},
    {"layer", NULL, "N", "jump to layer N's first tap", do_layer},
    {"pos", NULL, "T", "choose the token position to look at", do_pos},
    {"show", NULL, "[TAP]", "shape, mean, std, min, max, L2 norm and first values", do_show},
    {"heads", NULL, "[L]", "per head: the most attended earlier tokens and the entropy (bits)", do_heads},
    {"lens", NULL, "[--png FILE]", "logit lens of the current residual stream (picture: all layers)", do_lens},
    {"top", NULL, "[K]", "the K most likely next tokens at this position", do_top},
    {"gen", NULL, "N", "decode N tokens greedily (shifting a full context), then keep stepping", do_gen},
    {"attn", NULL, "L H|all [--png F]", "attention of a head (or all heads) as a picture", do_attn},
    {"ablate", NULL, "L H", "zero a head's output from now on", do_ablate},
    {"unablate", NULL, "[L H]", "give a head (or every head) back", do_ablate},
    {"rerun", NULL, "", "run all tokens again and show how the prediction changed", do_rerun},
    {"dump", NULL, "TAP FILE.npy", "write a tap (all positions) as a NumPy file", do_dump},
    {"taps", NULL, "", "list the taps", do_taps},
    {"tokens", NULL, "", "list the tokens", do_tokens},
    {"where", NULL, "", "the current tap and position", do_where},
    {"help", "?", "", "this list", do_help},
    {"quit", "q", "", "end the session (also: exit)", do_quit},
    {"exit", NULL, "", NULL, do_quit},
};
#define N_COMMANDS ((int)(sizeof COMMANDS / sizeof COMMANDS[0]))

static int do_help(stepper *st, int argc, char **argv) {
    (void)argc, (void)argv;
    char text[4096];
    int n = snprintf(text, sizeof text, "commands:\n");
    for (int i = 0; i < N_COMMANDS && n < (int)sizeof text; i++) {
        if (!COMMANDS[i].help) continue; /* an alias of the one before */
        char head[48];
        snprintf(head, sizeof head, "%s %s", COMMANDS[i].name, COMMANDS[i].args);
        n += snprintf(text + n, sizeof text - (size_t)n, "  %-26s %s\n", head, COMMANDS[i].help);
    }
    emit_begin(st, "help");
    emit_str(st, "text", text);
    emit_text(st, "%s", text);
    emit_end(st);
    return 0;
}

/* Tab completion at the terminal: command names, then tap names. */
static const char *complete_word(void *user, const char *prefix, int i) {
    const stepper *st = user;
    (void)prefix;
    if (i < N_COMMANDS) return COMMANDS[i].name;
    i -= N_COMMANDS;
    return i < st->store.n ? st->store.taps[i].name : NULL;
}

/* Runs one command line; returns 1 to quit. */
static int run_command(stepper *st, char *line) {
    char *argv[MAX_ARGS];
    int argc = 0;
    for (char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save); tok && argc < MAX_ARGS;
         tok = strtok_r(NULL, " \t\r\n", &save))
        argv[argc++] = tok;
    if (argc == 0) return 0;
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[0], COMMANDS[i].name) || (COMMANDS[i].alias && !strcmp(argv[0], COMMANDS[i].alias)))
            return COMMANDS[i].fn(st, argc, argv);
    say_error(st, "unknown command '%s' (try 'help')", argv[0]);
    return 0;
}

/* ------------------------------------------------------------ setup -- */

int cmd_step(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *script = NULL;
    int n_ctx = 0, n_threads = 1, json = 0, top_k = 5;
    common_flags cf = {0};
    const opt_spec own[] = {
        {"--model", "-m", OPT_STRING, &model_path, "FILE", "GGUF model (required)", NULL},
        {"--prompt", "-p", OPT_STRING, &prompt, "TEXT", "prompt to step through (required)", NULL},
        {"--script", NULL, OPT_STRING, &script, "\"CMD; CMD\"", "run these commands instead of reading stdin", NULL},
        {"--json", NULL, OPT_FLAG, &json, "", "print each command's result as one JSON object per line", NULL},
        {"--top-k", NULL, OPT_INT, &top_k, "K", "tokens shown by top and lens (default 5)", NULL},
        {"--ctx", "-c", OPT_INT, &n_ctx, "N", "context length (default: the model's, at most 512)", NULL},
        {"--threads", "-t", OPT_INT, &n_threads, "N", "threads (default 1)", NULL},
    };
    opt_spec opts[MAX_OPTS];
    command_spec cmd = {"step", "-m MODEL.gguf -p PROMPT [--script \"cmd; cmd\"] [--json]",
                        "Step through the layers of a forward pass and look (type 'help' inside).", opts, 0};
    int rc = parse_command(&cmd, opts, CF_EXPERIMENT, &cf, own, N_OPTS(own), argc, argv);
    if (rc >= 0) return rc;
    if (!model_path) return usage_error(&cmd, "missing -m MODEL.gguf");
    if (!prompt || !*prompt) return usage_error(&cmd, "missing or empty -p PROMPT");
    if (top_k < 1 || top_k > 100) return usage_error(&cmd, "--top-k %d: expected 1 to 100", top_k);
    if (n_ctx < 0 || n_threads < 1 || n_threads > 256) return usage_error(&cmd, "--ctx/-t: expected positive values");
    stepper st;
    rc = build_stepper(&st, "step", model_path, prompt, n_ctx, n_threads, &cf.exp);
    if (rc) {
        free_stepper(&st);
        return rc;
    }
    st.json = json;
    st.top_k = top_k;
    int interactive = !script && isatty(STDIN_FILENO);
    if (interactive && !json)
        printf("%d prompt tokens, %d taps per pass. At %s, position %d. Type 'help'.\n", st.n_prompt, st.store.n,
               st.store.taps[0].name, st.cur_pos);
    if (script) {
        char *copy = strdup(script);
        for (char *save = NULL, *c = strtok_r(copy, ";", &save); c; c = strtok_r(NULL, ";", &save)) {
            while (*c == ' ') c++;
            if (!json && *c) printf("> %s\n", c);
            if (run_command(&st, c)) break;
        }
        free(copy);
    } else {
        char *line = malloc(STEP_MAX_LINE + 2);
        for (;;) {
            if (interactive) { /* at a terminal: line editing, history, Tab completes commands and taps */
                char *typed = edit_line("step> ", complete_word, &st);
                if (!typed) {
                    putchar('\n'); /* Ctrl-D: leave the shell's prompt on a line of its own */
                    break;
                }
                int quit = 0;
                if (strlen(typed) > STEP_MAX_LINE)
                    say_error(&st, "the line is longer than %s bytes", STR(STEP_MAX_LINE));
                else
                    quit = run_command(&st, typed);
                free(typed);
                fflush(stdout);
                if (quit) break;
                continue;
            }
            long n = line ? read_line(line, STEP_MAX_LINE + 2, stdin) : -1;
            if (n == -1) break;
            if (n == -2) { /* never cut into two commands */
                say_error(&st, "the line is longer than %s bytes or holds a NUL byte, and was skipped whole",
                          STR(STEP_MAX_LINE));
                fflush(stdout);
                continue;
            }
            if (!interactive && !json && line[strspn(line, " \t\r\n")]) printf("> %s", line);
            if (run_command(&st, line)) break;
            fflush(stdout);
        }
        free(line);
    }
    if (st.store.oom) say("tinyllm step: out of memory recording taps; some rows are missing\n");
    free_stepper(&st);
    return EXIT_OK;
}

