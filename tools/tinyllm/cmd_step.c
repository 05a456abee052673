/* tinyllm step: walk through a forward pass tap by tap and look — tensor
 * statistics, per-head attention, the logit lens, the next-token
 * distribution, head ablation, attention pictures — interactively or from a
 * script (the picture-only `tinyllm attn` is cmd_attn.c; the shared state
 * is stepper.c).
 * Everything here comes from the public API (taps, logits, logit lens,
 * ablation, tokenizer). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lineedit.h"
#include "npy.h"
#include "plot.h"
#include "probs.h"
#include "stepper.h"

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

/* ---------------------------------------------------------- output -- */

/* ---------------------------------------------------------- engine -- */

/* ranked tokens as "key": [{id, text, p}...], or '  'text' p' in text */
static void emit_ranked(stepper *st, const char *key, const ranked *r, int n) {
    emit_open(st, key, '[');
    for (int i = 0; i < n; i++) {
        char *l = token_label(st->m, r[i].id);
        emit_open(st, NULL, '{');
        emit_int(st, "id", r[i].id), emit_str(st, "text", l), emit_num(st, "p", "%.6f", r[i].p);
        emit_close(st, '{');
        emit_text(st, "  '%s' %.4f", l ? l : "", r[i].p);
        free(l);
    }
    emit_close(st, '[');
}

/* ------------------------------------------------------- commands -- */

static void cmd_show(stepper *st, int tap, int brief) {
    const stored_tap *t = &st->store.taps[tap];
    const float *row = tap_store_row(&st->store, tap, st->cur_pos);
    if (!row) {
        say_error(st, "tap %s has no row at this position", t->name);
        return;
    }
    long n = t->n_dims == 2 ? t->cols : (long)t->cols * (st->cur_pos + 1);
    double sum = 0, sq = 0, mn = INFINITY, mx = -INFINITY;
    long finite = 0;
    for (long i = 0; i < n; i++) {
        if (!isfinite(row[i])) continue;
        sum += row[i], sq += (double)row[i] * row[i], finite++;
        mn = fmin(mn, row[i]), mx = fmax(mx, row[i]);
    }
    double mean = finite ? sum / finite : 0, sd = finite ? sqrt(fmax(0, sq / finite - mean * mean)) : 0;
    /* the whole tap: (N, C) or (H, N, N); this position's row: (C) or (H, pos + 1) */
    int shape2[2] = {st->store.n_pos, t->cols}, shape3[3] = {t->cols, st->store.n_pos, st->store.n_pos};
    int row2[1] = {t->cols}, row3[2] = {t->cols, st->cur_pos + 1};
    const int *shape = t->n_dims == 2 ? shape2 : shape3, *row_shape = t->n_dims == 2 ? row2 : row3;
    emit_begin(st, "show");
    emit_str(st, "tap", t->name), emit_int(st, "layer", t->layer), emit_int(st, "pos", st->cur_pos);
    emit_open(st, "shape", '[');
    for (int d = 0; d < t->n_dims; d++) emit_int(st, NULL, shape[d]);
    emit_close(st, '[');
    emit_open(st, "row_shape", '[');
    for (int d = 0; d < t->n_dims - 1; d++) emit_int(st, NULL, row_shape[d]);
    emit_close(st, '[');
    emit_num(st, "mean", "%.6g", mean), emit_num(st, "std", "%.6g", sd), emit_num(st, "min", "%.6g", mn);
    emit_num(st, "max", "%.6g", mx), emit_num(st, "l2", "%.6g", sqrt(sq));
    emit_open(st, "first", '[');
    for (long i = 0; i < n && i < 8; i++) emit_num(st, NULL, "%.6g", isfinite(row[i]) ? row[i] : 0.0);
    emit_close(st, '[');
    if (t->n_dims == 2)
        emit_text(st, "%s  (%d, %d)  pos %d '%s'\n", t->name, st->store.n_pos, t->cols, st->cur_pos,
                  st->labels[st->cur_pos]);
    else
        emit_text(st, "%s  (%d heads, %d, %d)  pos %d '%s': row (%d, %d)\n", t->name, t->cols, st->store.n_pos,
                  st->store.n_pos, st->cur_pos, st->labels[st->cur_pos], t->cols, st->cur_pos + 1);
    emit_text(st, "  mean %.5g  std %.5g  min %.5g  max %.5g  L2 %.5g\n", mean, sd, mn, mx, sqrt(sq));
    if (!brief) {
        emit_text(st, "  first:");
        for (long i = 0; i < n && i < 8; i++) emit_text(st, " %.4g", row[i]);
        emit_text(st, "\n");
    }
    emit_end(st);
}

static void cmd_heads(stepper *st, int layer) {
    char name[48];
    snprintf(name, sizeof name, "%d.attn_probs", layer);
    int tap = tap_index(st, name);
    const float *row = tap_store_row(&st->store, tap, st->cur_pos);
    if (!row) {
        say_error(st, "no attention probabilities for layer %s", name);
        return;
    }
    int L = st->cur_pos + 1, H = st->store.taps[tap].cols;
    emit_begin(st, "heads");
    emit_int(st, "layer", layer), emit_int(st, "pos", st->cur_pos);
    emit_text(st, "layer %d, position %d '%s': what each head attends to\n", layer, st->cur_pos,
              st->labels[st->cur_pos]);
    emit_open(st, "heads", '[');
    for (int h = 0; h < H; h++) {
        const float *p = row + (size_t)h * L;
        double entropy = 0, sum = 0;
        for (int j = 0; j < L; j++) {
            sum += p[j];
            if (p[j] > 0) entropy -= p[j] * log2(p[j]); /* bits, as the explorer shows them */
        }
        ranked best[3];
        int n_best = top_k_values(p, L, 3, best);
        emit_open(st, NULL, '{');
        emit_int(st, "head", h), emit_num(st, "entropy_bits", "%.6f", entropy), emit_num(st, "sum", "%.6f", sum);
        emit_text(st, "  head %-2d entropy %.3f bits  ", h, entropy);
        emit_open(st, "top", '[');
        for (int k = 0; k < n_best; k++) {
            emit_open(st, NULL, '{');
            emit_int(st, "pos", best[k].id), emit_str(st, "text", st->labels[best[k].id]);
            emit_num(st, "p", "%.6f", best[k].p);
            emit_close(st, '{');
            emit_text(st, "  [%d]'%s' %.3f", best[k].id, st->labels[best[k].id], best[k].p);
        }
        emit_close(st, '[');
        emit_close(st, '{');
        emit_text(st, "\n");
    }
    emit_close(st, '[');
    emit_end(st);
}

/* The residual stream at or before the current tap (embed, pos, resid_*). */
static int residual_tap(const stepper *st, int from) {
    for (int i = from; i >= 0; i--) {
        const char *k = st->store.taps[i].kind;
        if (!strcmp(k, "embed") || !strcmp(k, "pos") || !strcmp(k, "resid_attn") || !strcmp(k, "resid_ffn")) return i;
    }
    return -1;
}

static void cmd_lens_png(stepper *st, const char *path) {
    /* rows: embed/pos, then every layer's output; columns: positions */
    int N = st->store.n_pos, rows = 0, n_vocab = st->info.n_vocab;
    int *taps = malloc(((size_t)st->info.n_layer + 2) * sizeof *taps);
    char **row_labels = calloc((size_t)st->info.n_layer + 2, sizeof *row_labels);
    const char **texts = calloc((size_t)(st->info.n_layer + 2) * N, sizeof *texts);
    float *probs = calloc((size_t)(st->info.n_layer + 2) * N, sizeof *probs), *logits = malloc(n_vocab * sizeof *logits);
    char **owned = calloc((size_t)(st->info.n_layer + 2) * N, sizeof *owned);
    if (!taps || !row_labels || !texts || !probs || !logits || !owned) {
        say_error(st, "out of memory");
        goto done;
    }
    int first = tap_index(st, "pos") >= 0 ? tap_index(st, "pos") : tap_index(st, "embed");
    taps[rows] = first;
    row_labels[rows++] = strdup(st->store.taps[first].name);
    for (int l = 0; l < st->info.n_layer; l++) {
        char name[48];
        snprintf(name, sizeof name, "%d.resid_ffn", l);
        if ((taps[rows] = tap_index(st, name)) < 0) continue;
        snprintf(name, sizeof name, "layer %d", l);
        row_labels[rows++] = strdup(name);
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < N; c++) {
            const float *x = tap_store_row(&st->store, taps[r], c);
            ranked top;
            if (!x || tinyllm_model_logit_lens(st->m, x, logits, NULL)) continue;
            top_k_probs(logits, n_vocab, 1, &top);
            owned[r * N + c] = token_label(st->m, top.id);
            texts[r * N + c] = owned[r * N + c] ? owned[r * N + c] : "";
            probs[r * N + c] = top.p;
        }
    char msg[256], title[160];
    int from = 0;
    snprintf(title, sizeof title, "logit lens: top next token after each position, by layer");
    if (plot_lens(path, title, (const char *const *)row_labels, rows, (const char *const *)st->labels, N, texts, probs,
                  &from, msg, sizeof msg))
        say_error(st, "%s", msg);
    else {
        emit_begin(st, "lens");
        emit_str(st, "png", path), emit_int(st, "rows", rows), emit_int(st, "cols", N - from);
        emit_int(st, "from", from), emit_int(st, "positions", N);
        emit_text(st, "wrote %s (%d stages x %d positions", path, rows, N - from);
        emit_text(st, from ? ": the last %d of %d)\n" : ")\n", N - from, N);
        emit_end(st);
    }
done:
    if (owned)
        for (int i = 0; i < (st->info.n_layer + 2) * N; i++) free(owned[i]);
    if (row_labels)
        for (int i = 0; i < st->info.n_layer + 2; i++) free(row_labels[i]);
    free(owned), free(taps), free(row_labels), free(texts), free(probs), free(logits);
}

static void cmd_lens(stepper *st) {
    int tap = residual_tap(st, st->cur_tap);
    const float *x = tap_store_row(&st->store, tap, st->cur_pos);
    float *logits = malloc((size_t)st->info.n_vocab * sizeof *logits);
    ranked *top = malloc((size_t)st->top_k * sizeof *top);
    if (!x || !logits || !top || tinyllm_model_logit_lens(st->m, x, logits, NULL)) {
        say_error(st, "no residual stream at this point");
    } else {
        int n = top_k_probs(logits, st->info.n_vocab, st->top_k, top);
        emit_begin(st, "lens");
        emit_str(st, "tap", st->store.taps[tap].name), emit_int(st, "pos", st->cur_pos);
        emit_text(st, "logit lens at %s, position %d '%s':\n", st->store.taps[tap].name, st->cur_pos,
                  st->labels[st->cur_pos]);
        emit_ranked(st, "top", top, n);
        emit_text(st, "\n");
        emit_end(st);
    }
    free(logits);
    free(top);
}

static void cmd_top(stepper *st, int k) {
    const float *l = logits_at(st, st->cur_pos);
    ranked *top = malloc((size_t)k * sizeof *top);
    if (!l || !top) {
        say_error(st, "no logits at this position");
        free(top);
        return;
    }
    int n = top_k_probs(l, st->info.n_vocab, k, top);
    emit_begin(st, "top");
    emit_int(st, "pos", st->cur_pos);
    emit_text(st, "next token after position %d '%s':\n", st->cur_pos, st->labels[st->cur_pos]);
    emit_ranked(st, "top", top, n);
    emit_text(st, "\n");
    emit_end(st);
    free(top);
}

/* Makes room for one more token (context shift): keeps BOS and the newer
 * half of the rest, then records every tap again from a fresh prefill of
 * what is kept (positions change, so every stored row does). 0 or -1. */
static int shift_stepper(stepper *st) {
    tinyllm_error err = {0};
    int n_keep = 1, discard = (st->n_tokens - n_keep) / 2;
    for (int i = n_keep; i < n_keep + discard; i++) free(st->labels[i]);
    memmove(st->tokens + n_keep, st->tokens + n_keep + discard, (size_t)(st->n_tokens - n_keep - discard) * sizeof(int));
    memmove(st->labels + n_keep, st->labels + n_keep + discard,
            (size_t)(st->n_tokens - n_keep - discard) * sizeof(char *));
    st->n_tokens -= discard;
    st->n_prompt = st->n_prompt > n_keep + discard ? st->n_prompt - discard : n_keep;
    tap_store_free(&st->store);
    tap_store_init(&st->store);
    if (tinyllm_context_rewind(st->ctx, 0, &err) || tinyllm_context_prefill(st->ctx, st->tokens, st->n_tokens, &err)) {
        say_error(st, "%s", err.message);
        return -1;
    }
    return 0;
}

static void cmd_gen(stepper *st, int n) {
    tinyllm_error err = {0};
    int *made = malloc((size_t)n * sizeof *made), n_made = 0, shifts = 0; /* the new ids, whatever is shifted out */
    if (!made) {
        say_error(st, "out of memory");
        return;
    }
    for (int i = 0; i < n; i++) {
        int best = argmax(logits_at(st, st->n_tokens - 1), st->info.n_vocab);
        if (st->n_tokens == tinyllm_context_n_ctx(st->ctx)) { /* full: shift, then decode */
            if (shift_stepper(st)) break;
            shifts++;
        }
        if (tinyllm_context_decode(st->ctx, best, &err)) {
            say_error(st, "%s", err.message);
            break;
        }
        if (add_token(st, best)) {
            say_error(st, "out of memory");
            break;
        }
        made[n_made++] = best;
    }
    st->cur_pos = st->n_tokens - 1;
    st->cur_tap = 0;
    emit_begin(st, "gen");
    emit_open(st, "tokens", '[');
    for (int i = 0; i < n_made; i++) emit_int(st, NULL, made[i]);
    emit_close(st, '[');
    emit_int(st, "context_shifts", shifts);
    emit_text(st, "generated %d token(s):", n_made);
    /* every piece may need up to TINYLLM_DETOK_MAX bytes (tinyllm.h) */
    char *text = malloc(TINYLLM_DETOK_MAX * (size_t)(n_made + 1) + 1);
    if (text) {
        size_t len = 0;
        tinyllm_detok d;
        tinyllm_detok_init(&d, 0);
        for (int i = 0; i < n_made; i++) {
            int k = tinyllm_detok_push(st->m, &d, made[i], text + len, TINYLLM_DETOK_MAX, NULL);
            if (k > 0) len += (size_t)k;
        }
        int k = tinyllm_detok_flush(&d, text + len, TINYLLM_DETOK_MAX);
        if (k > 0) len += (size_t)k;
        text[len] = 0;
        emit_str(st, "text", text);
        emit_text(st, " %s\n", text);
        free(text);
    }
    if (shifts) emit_text(st, "(the context filled: %d context shift(s) kept BOS and the newer half)\n", shifts);
    emit_end(st);
    free(made);
}

static void cmd_dump(stepper *st, const char *name, const char *path) {
    int tap = tap_index(st, name);
    if (tap < 0) {
        say_error(st, "unknown tap '%s' (try 'taps')", name);
        return;
    }
    const stored_tap *t = &st->store.taps[tap];
    int N = st->store.n_pos;
    int64_t shape[3];
    size_t count;
    if (t->n_dims == 2) {
        shape[0] = N, shape[1] = t->cols, count = (size_t)N * t->cols;
    } else {
        shape[0] = t->cols, shape[1] = N, shape[2] = N, count = (size_t)t->cols * N * N;
    }
    float *buf = malloc(count * sizeof *buf);
    if (!buf) {
        say_error(st, "out of memory");
        return;
    }
    float masked = strstr(t->kind, "scores") ? -INFINITY : 0.0f;
    for (int pos = 0; pos < N; pos++) {
        const float *row = tap_store_row(&st->store, tap, pos);
        if (t->n_dims == 2) {
            for (int c = 0; c < t->cols; c++) buf[(size_t)pos * t->cols + c] = row ? row[c] : NAN;
        } else {
            for (int h = 0; h < t->cols; h++)
                for (int j = 0; j < N; j++)
                    buf[((size_t)h * N + pos) * N + j] = row && j <= pos ? row[(size_t)h * (pos + 1) + j] : masked;
        }
    }
    char msg[512];
    if (npy_write_f32(path, buf, shape, t->n_dims, msg, sizeof msg)) {
        say_error(st, "%s", msg);
    } else {
        emit_begin(st, "dump");
        emit_str(st, "tap", name), emit_str(st, "file", path);
        emit_text(st, "wrote %s to %s\n", name, path);
        emit_end(st);
    }
    free(buf);
}

static int parse_int_arg(const char *s, int *v) {
    char *end;
    long x = strtol(s, &end, 10);
    if (!*s || *end || x < -1000000 || x > 1000000) return -1;
    *v = (int)x;
    return 0;
}

/* Reruns every token so far (with the current ablations) and shows how the
 * prediction at the last position changed. */
static void cmd_rerun(stepper *st) {
    int k = st->top_k, last = st->n_tokens - 1;
    ranked *before = malloc((size_t)k * sizeof *before), *after = malloc((size_t)k * sizeof *after);
    const float *l = logits_at(st, last);
    tinyllm_error err = {0};
    if (!before || !after || !l) {
        say_error(st, "nothing to rerun");
        free(before), free(after);
        return;
    }
    int nb = top_k_probs(l, st->info.n_vocab, k, before);
    float before_logit = l[before[0].id];
    tinyllm_context_rewind(st->ctx, 0, NULL);
    if (tinyllm_context_prefill(st->ctx, st->tokens, st->n_tokens, &err)) {
        say_error(st, "%s", err.message);
        free(before), free(after);
        return;
    }
    l = logits_at(st, last);
    int na = top_k_probs(l, st->info.n_vocab, k, after);
    char *top = token_label(st->m, before[0].id);
    emit_begin(st, "rerun");
    emit_int(st, "pos", last);
    emit_text(st, "rerun of %d tokens; next token after position %d:\n  before:", st->n_tokens, last);
    emit_ranked(st, "before", before, nb);
    emit_text(st, "\n  after: ");
    emit_ranked(st, "after", after, na);
    emit_num(st, "top_logit_change", "%.6f", l[before[0].id] - before_logit);
    emit_text(st, "\n  logit of '%s' (the top token before) changed by %+.4f\n", top ? top : "",
              l[before[0].id] - before_logit);
    emit_end(st);
    free(top);
    free(before), free(after);
}

/* Each session command: its handler gets the words of the line (argv[0] is
 * the command) and returns 1 to end the session. */
typedef int (*command_fn)(stepper *st, int argc, char **argv);

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
        emit_close(st, '[');
        emit_text(st, "\n");
    }
    emit_close(st, '[');
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
    emit_close(st, '[');
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
        emit_close(st, '{');
        emit_text(st, "  %3d  %5d  '%s'%s\n", i, st->tokens[i], st->labels[i], i >= st->n_prompt ? "  (generated)" : "");
    }
    emit_close(st, '[');
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

