/* tinyllm step: walk through a forward pass tap by tap and look — tensor
 * statistics, per-head attention, the logit lens, the next-token
 * distribution, head ablation, attention pictures — interactively or from a
 * script. Also `tinyllm attn`, the non-interactive attention picture.
 * Everything here comes from the public API (taps, logits, logit lens,
 * ablation, tokenizer). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "common.h"
#include "probs.h"
#include "npy.h"
#include "plot.h"
#include "tap_store.h"

#define MAX_ARGS 8

typedef struct {
    tinyllm_model *m;
    tinyllm_model_info info;
    tinyllm_context *ctx;
    tap_store store;
    int *tokens;     /* prompt + generated */
    int n_tokens, cap;
    int n_prompt;
    int cur_tap, cur_pos;
    int json, echo, top_k;
    char **labels;   /* display text per token */
    int errors;      /* say_error calls so far */
    const char *cli; /* a one-shot command ("attn"): errors go to stderr as "tinyllm attn: ..." */
} stepper;

/* The longest command line read from stdin (paths included). */
#define STEP_MAX_LINE 65536
#define STR_(x) #x
#define STR(x) STR_(x)

/* One line of f into buf (cap bytes): its length, -1 at the end of input, or
 * -2 for a line that does not fit (read to its end and dropped, so its tail
 * never runs as a command of its own). */
static long read_line(char *buf, size_t cap, FILE *f) {
    if (!fgets(buf, (int)cap, f)) return -1;
    size_t len = strlen(buf);
    if (len == cap - 1 && buf[len - 1] != '\n') {
        int ch;
        while ((ch = fgetc(f)) != EOF && ch != '\n') {
        }
        return -2;
    }
    return (long)len;
}

/* ---------------------------------------------------------- output -- */

/* A JSON string: quotes, backslashes and control characters escaped; bytes
 * that are not valid UTF-8 (a path may hold any) as \u00XX, so the line
 * always parses. */
static void json_string(const char *s) {
    putchar('"');
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2, ok = c < 0x80 || (c >= 0xC2 && c <= 0xF4);
        for (size_t i = 1; ok && i < n; i++) ok = (p[i] & 0xC0) == 0x80;
        if (!ok) {
            printf("\\u%04x", c);
            p++;
        } else if (n > 1) {
            fwrite(p, 1, n, stdout);
            p += n;
        } else {
            if (c == '"' || c == '\\')
                printf("\\%c", c);
            else if (c < 0x20 || c == 0x7f)
                printf("\\u%04x", c);
            else
                putchar(c);
            p++;
        }
    }
    putchar('"');
}

static void say_error(stepper *st, const char *fmt, const char *arg) {
    char buf[1024];
    snprintf(buf, sizeof buf, fmt, arg ? arg : "");
    st->errors++;
    if (st->cli) {
        char shown[1024];
        fprintf(stderr, "tinyllm %s: %s\n", st->cli, tinyllm_printable(buf, strlen(buf), shown, sizeof shown));
    } else if (st->json) {
        printf("{\"error\": ");
        json_string(buf);
        printf("}\n");
    } else {
        printf("error: %s\n", buf);
    }
}

/* A token as readable text: SentencePiece's ▁ shown as a space, bytes as
 * escapes, e.g. " time", "\n". */
static char *token_label(const tinyllm_model *m, int id) {
    const char *p = tinyllm_token_piece(m, id);
    char *out = malloc(strlen(p) * 2 + 8), *o = out;
    if (!out) return NULL;
    if (!strcmp(p, "<0x0A>")) {
        strcpy(out, "\\n");
        return out;
    }
    for (; *p; p++) {
        if ((unsigned char)p[0] == 0xe2 && (unsigned char)p[1] == 0x96 && (unsigned char)p[2] == 0x81) {
            *o++ = ' ';
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return out;
}

/* ---------------------------------------------------------- engine -- */

static int add_token(stepper *st, int id) {
    if (st->n_tokens == st->cap) {
        int cap = st->cap * 2;
        int *t = realloc(st->tokens, (size_t)cap * sizeof *t);
        char **l = realloc(st->labels, (size_t)cap * sizeof *l);
        if (t) st->tokens = t;
        if (l) st->labels = l;
        if (!t || !l) return -1;
        st->cap = cap;
    }
    st->tokens[st->n_tokens] = id;
    st->labels[st->n_tokens] = token_label(st->m, id);
    st->n_tokens++;
    return 0;
}

static int tap_index(const stepper *st, const char *name) {
    int i = tap_store_find(&st->store, name);
    return i;
}

static const float *logits_at(const stepper *st, int pos) {
    return tap_store_row(&st->store, tap_index(st, "logits"), pos);
}

static void print_ranked(const stepper *st, const ranked *r, int n) {
    if (st->json) {
        printf("[");
        for (int i = 0; i < n; i++) {
            char *l = token_label(st->m, r[i].id);
            printf("%s{\"id\": %d, \"text\": ", i ? ", " : "", r[i].id);
            json_string(l ? l : "");
            printf(", \"p\": %.6f}", r[i].p);
            free(l);
        }
        printf("]");
    } else {
        for (int i = 0; i < n; i++) {
            char *l = token_label(st->m, r[i].id);
            printf("  '%s' %.4f", l ? l : "", r[i].p);
            free(l);
        }
    }
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
    if (st->json) {
        printf("{\"cmd\": \"show\", \"tap\": \"%s\", \"layer\": %d, \"pos\": %d, \"shape\": ", t->name, t->layer,
               st->cur_pos);
        if (t->n_dims == 2)
            printf("[%d, %d], \"row_shape\": [%d]", st->store.n_pos, t->cols, t->cols);
        else
            printf("[%d, %d, %d], \"row_shape\": [%d, %d]", t->cols, st->store.n_pos, st->store.n_pos, t->cols,
                   st->cur_pos + 1);
        printf(", \"mean\": %.6g, \"std\": %.6g, \"min\": %.6g, \"max\": %.6g, \"l2\": %.6g, \"first\": [", mean, sd,
               mn, mx, sqrt(sq));
        for (long i = 0; i < n && i < 8; i++) printf(i ? ", %.6g" : "%.6g", isfinite(row[i]) ? row[i] : 0.0);
        printf("]}\n");
        return;
    }
    if (t->n_dims == 2)
        printf("%s  (%d, %d)  pos %d '%s'\n", t->name, st->store.n_pos, t->cols, st->cur_pos,
               st->labels[st->cur_pos]);
    else
        printf("%s  (%d heads, %d, %d)  pos %d '%s': row (%d, %d)\n", t->name, t->cols, st->store.n_pos,
               st->store.n_pos, st->cur_pos, st->labels[st->cur_pos], t->cols, st->cur_pos + 1);
    printf("  mean %.5g  std %.5g  min %.5g  max %.5g  L2 %.5g\n", mean, sd, mn, mx, sqrt(sq));
    if (brief) return;
    printf("  first:");
    for (long i = 0; i < n && i < 8; i++) printf(" %.4g", row[i]);
    printf("\n");
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
    if (st->json)
        printf("{\"cmd\": \"heads\", \"layer\": %d, \"pos\": %d, \"heads\": [", layer, st->cur_pos);
    else
        printf("layer %d, position %d '%s': what each head attends to\n", layer, st->cur_pos,
               st->labels[st->cur_pos]);
    for (int h = 0; h < H; h++) {
        const float *p = row + (size_t)h * L;
        double entropy = 0, sum = 0;
        for (int j = 0; j < L; j++) {
            sum += p[j];
            if (p[j] > 0) entropy -= p[j] * log(p[j]);
        }
        ranked best[3];
        int n_best = top_k_values(p, L, 3, best);
        if (st->json) {
            printf("%s{\"head\": %d, \"entropy\": %.6f, \"sum\": %.6f, \"top\": [", h ? ", " : "", h, entropy, sum);
            for (int k = 0; k < n_best; k++) {
                printf("%s{\"pos\": %d, \"text\": ", k ? ", " : "", best[k].id);
                json_string(st->labels[best[k].id]);
                printf(", \"p\": %.6f}", best[k].p);
            }
            printf("]}");
        } else {
            printf("  head %-2d entropy %.3f  ", h, entropy);
            for (int k = 0; k < n_best; k++) printf("  [%d]'%s' %.3f", best[k].id, st->labels[best[k].id], best[k].p);
            printf("\n");
        }
    }
    if (st->json) printf("]}\n");
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
        say_error(st, "out of memory%s", NULL);
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
    snprintf(title, sizeof title, "logit lens: top next token after each position, by layer");
    if (plot_lens(path, title, (const char *const *)row_labels, rows, (const char *const *)st->labels, N, texts, probs,
                  msg, sizeof msg))
        say_error(st, "%s", msg);
    else if (st->json) {
        printf("{\"cmd\": \"lens\", \"png\": ");
        json_string(path);
        printf(", \"rows\": %d, \"cols\": %d}\n", rows, N);
    } else
        printf("wrote %s (%d stages x %d positions)\n", path, rows, N);
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
        say_error(st, "no residual stream at this point%s", NULL);
    } else {
        int n = top_k_probs(logits, st->info.n_vocab, st->top_k, top);
        if (st->json) {
            printf("{\"cmd\": \"lens\", \"tap\": \"%s\", \"pos\": %d, \"top\": ", st->store.taps[tap].name, st->cur_pos);
            print_ranked(st, top, n);
            printf("}\n");
        } else {
            printf("logit lens at %s, position %d '%s':\n", st->store.taps[tap].name, st->cur_pos,
                   st->labels[st->cur_pos]);
            print_ranked(st, top, n);
            printf("\n");
        }
    }
    free(logits);
    free(top);
}

static void cmd_top(stepper *st, int k) {
    const float *l = logits_at(st, st->cur_pos);
    ranked *top = malloc((size_t)k * sizeof *top);
    if (!l || !top) {
        say_error(st, "no logits at this position%s", NULL);
        free(top);
        return;
    }
    int n = top_k_probs(l, st->info.n_vocab, k, top);
    if (st->json) {
        printf("{\"cmd\": \"top\", \"pos\": %d, \"top\": ", st->cur_pos);
        print_ranked(st, top, n);
        printf("}\n");
    } else {
        printf("next token after position %d '%s':\n", st->cur_pos, st->labels[st->cur_pos]);
        print_ranked(st, top, n);
        printf("\n");
    }
    free(top);
}

static void cmd_gen(stepper *st, int n) {
    tinyllm_error err = {0};
    int first = st->n_tokens;
    for (int i = 0; i < n; i++) {
        int best = argmax(logits_at(st, st->n_tokens - 1), st->info.n_vocab);
        if (tinyllm_context_decode(st->ctx, best, &err)) {
            say_error(st, "%s", err.message);
            break;
        }
        if (add_token(st, best)) {
            say_error(st, "out of memory%s", NULL);
            break;
        }
    }
    st->cur_pos = st->n_tokens - 1;
    st->cur_tap = 0;
    if (st->json) {
        printf("{\"cmd\": \"gen\", \"tokens\": [");
        for (int i = first; i < st->n_tokens; i++) printf(i > first ? ", %d" : "%d", st->tokens[i]);
        printf("], \"text\": ");
    } else {
        printf("generated %d token(s):", st->n_tokens - first);
    }
    /* every piece may need up to TINYLLM_DETOK_MAX bytes (tinyllm.h) */
    char *text = malloc(TINYLLM_DETOK_MAX * (size_t)(st->n_tokens - first + 1) + 1);
    if (text) {
        size_t len = 0;
        tinyllm_detok d;
        tinyllm_detok_init(&d, 0);
        for (int i = first; i < st->n_tokens; i++) {
            int k = tinyllm_detok_push(st->m, &d, st->tokens[i], text + len, TINYLLM_DETOK_MAX, NULL);
            if (k > 0) len += (size_t)k;
        }
        int k = tinyllm_detok_flush(&d, text + len, TINYLLM_DETOK_MAX);
        if (k > 0) len += (size_t)k;
        text[len] = 0;
        if (st->json)
            json_string(text);
        else
            printf(" %s\n", text);
        free(text);
    }
    if (st->json) printf("}\n");
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
        say_error(st, "out of memory%s", NULL);
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
    } else if (st->json) {
        printf("{\"cmd\": \"dump\", \"tap\": ");
        json_string(name);
        printf(", \"file\": ");
        json_string(path);
        printf("}\n");
    } else
        printf("wrote %s to %s\n", name, path);
    free(buf);
}

/* attention heatmap(s) of one layer: one head, or all heads in a grid */
static void cmd_attn_png(stepper *st, int layer, int head, const char *path) {
    char name[48];
    snprintf(name, sizeof name, "%d.attn_probs", layer);
    int tap = tap_index(st, name);
    if (tap < 0) {
        say_error(st, "no attention for layer %s", name);
        return;
    }
    int N = st->store.n_pos, H = st->store.taps[tap].cols, h0 = head < 0 ? 0 : head, h1 = head < 0 ? H : head + 1;
    if (head >= H) {
        say_error(st, "head out of range%s", NULL);
        return;
    }
    float *mats = calloc((size_t)(h1 - h0) * N * N, sizeof *mats);
    const float **ptrs = calloc((size_t)(h1 - h0), sizeof *ptrs);
    char (*titles)[32] = calloc((size_t)(h1 - h0), sizeof *titles);
    const char **tptrs = calloc((size_t)(h1 - h0), sizeof *tptrs);
    if (!mats || !ptrs || !titles || !tptrs) {
        say_error(st, "out of memory%s", NULL);
    } else {
        for (int h = h0; h < h1; h++) {
            float *m = mats + (size_t)(h - h0) * N * N;
            for (int i = 0; i < N; i++) {
                const float *row = tap_store_row(&st->store, tap, i);
                for (int j = 0; j <= i && row; j++) m[(size_t)i * N + j] = row[(size_t)h * (i + 1) + j];
            }
            ptrs[h - h0] = m;
            snprintf(titles[h - h0], sizeof titles[0], "head %d", h);
            tptrs[h - h0] = titles[h - h0];
        }
        char title[96], msg[256];
        plot_geometry g;
        snprintf(title, sizeof title, "attention, layer %d (rows: query tokens, columns: keys)", layer);
        if (plot_attention(path, title, ptrs, tptrs, h1 - h0, (const char *const *)st->labels, N, &g, msg, sizeof msg))
            say_error(st, "%s", msg);
        else if (st->json) {
            printf("{\"cmd\": \"attn\", \"layer\": %d, \"head\": %d, \"png\": ", layer, head);
            json_string(path);
            printf(", \"tokens\": %d, \"width\": %d, \"height\": %d, \"grid_x\": %d, \"grid_y\": %d, \"cell\": %d}\n", N,
                   g.width, g.height, g.grid_x, g.grid_y, g.cell);
        } else
            printf("wrote %s (layer %d, %s, %d tokens)\n", path, layer, head < 0 ? "all heads" : titles[0], N);
    }
    free(mats), free(ptrs), free(titles), free(tptrs);
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
        say_error(st, "nothing to rerun%s", NULL);
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
    if (st->json) {
        printf("{\"cmd\": \"rerun\", \"pos\": %d, \"before\": ", last);
        print_ranked(st, before, nb);
        printf(", \"after\": ");
        print_ranked(st, after, na);
        printf(", \"top_logit_change\": %.6f}\n", l[before[0].id] - before_logit);
    } else {
        printf("rerun of %d tokens; next token after position %d:\n  before:", st->n_tokens, last);
        print_ranked(st, before, nb);
        printf("\n  after: ");
        print_ranked(st, after, na);
        char *top = token_label(st->m, before[0].id);
        printf("\n  logit of '%s' (the top token before) changed by %+.4f\n", top ? top : "",
               l[before[0].id] - before_logit);
        free(top);
    }
    free(before), free(after);
}

static const char HELP[] =
    "commands:\n"
    "  next [N] | prev          move to the next (previous) tap of the forward pass\n"
    "  layer N | next layer     jump to layer N's first tap (or the next layer's)\n"
    "  pos T                    choose the token position to look at\n"
    "  show [TAP]               shape, mean, std, min, max, L2 norm and first values\n"
    "  heads [L]                per head: the most attended earlier tokens and the entropy\n"
    "  lens [--png FILE]        logit lens of the current residual stream (picture: all layers)\n"
    "  top [K]                  the K most likely next tokens at this position\n"
    "  gen N                    decode N tokens greedily, then keep stepping\n"
    "  attn L H|all [--png F]   attention of a head (or all heads) as a picture\n"
    "  ablate L H | unablate    zero a head's output from now on (unablate: all back)\n"
    "  rerun                    run all tokens again and show how the prediction changed\n"
    "  dump TAP FILE.npy        write a tap (all positions) as a NumPy file\n"
    "  taps | tokens | where    list the taps, the tokens, the current place\n"
    "  help | quit\n";

/* Runs one command line; returns 1 to quit. */
static int run_command(stepper *st, char *line) {
    char *argv[MAX_ARGS];
    int argc = 0;
    for (char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save); tok && argc < MAX_ARGS;
         tok = strtok_r(NULL, " \t\r\n", &save))
        argv[argc++] = tok;
    if (argc == 0) return 0;
    const char *c = argv[0];
    int v = 0, n_taps = st->store.n;
    if (!strcmp(c, "quit") || !strcmp(c, "exit") || !strcmp(c, "q")) return 1;
    if (!strcmp(c, "help") || !strcmp(c, "?")) {
        if (st->json) {
            printf("{\"cmd\": \"help\", \"text\": ");
            json_string(HELP);
            printf("}\n");
        } else {
            fputs(HELP, stdout);
        }
    } else if (!strcmp(c, "next") && argc == 2 && !strcmp(argv[1], "layer")) {
        int layer = st->store.taps[st->cur_tap].layer + 1;
        char name[48];
        snprintf(name, sizeof name, "%d.attn_norm", layer);
        int t = tap_index(st, name);
        if (t < 0) {
            say_error(st, "already at the last layer%s", NULL);
            return 0;
        }
        st->cur_tap = t;
        cmd_show(st, t, 1);
    } else if (!strcmp(c, "next") || !strcmp(c, "prev")) {
        int step = 1;
        if (argc > 1 && (parse_int_arg(argv[1], &step) || step < 1)) {
            say_error(st, "next: '%s' is not a positive count", argv[1]);
            return 0;
        }
        int t = st->cur_tap + (!strcmp(c, "next") ? step : -step);
        if (t < 0 || t >= n_taps) {
            say_error(st, "%s", t < 0 ? "already at the first tap" : "already at the last tap (logits); try 'gen 1'");
            return 0;
        }
        st->cur_tap = t;
        cmd_show(st, t, 1);
    } else if (!strcmp(c, "layer")) {
        char name[48];
        if (argc != 2 || parse_int_arg(argv[1], &v) || v < 0 || v >= st->info.n_layer) {
            char range[64];
            snprintf(range, sizeof range, "layer: expected a layer number 0..%d", st->info.n_layer - 1);
            say_error(st, "%s", range);
            return 0;
        }
        snprintf(name, sizeof name, "%d.attn_norm", v);
        st->cur_tap = tap_index(st, name);
        cmd_show(st, st->cur_tap, 1);
    } else if (!strcmp(c, "pos")) {
        if (argc != 2 || parse_int_arg(argv[1], &v) || v < 0 || v >= st->store.n_pos) {
            char range[64];
            snprintf(range, sizeof range, "pos: expected a position 0..%d", st->store.n_pos - 1);
            say_error(st, "%s", range);
            return 0;
        }
        st->cur_pos = v;
        if (st->json)
            printf("{\"cmd\": \"pos\", \"pos\": %d}\n", v);
        else
            printf("position %d '%s'\n", v, st->labels[v]);
    } else if (!strcmp(c, "show")) {
        int t = argc > 1 ? tap_index(st, argv[1]) : st->cur_tap;
        if (t < 0) {
            say_error(st, "unknown tap '%s' (try 'taps')", argv[1]);
            return 0;
        }
        cmd_show(st, t, 0);
    } else if (!strcmp(c, "heads")) {
        int layer = st->store.taps[st->cur_tap].layer;
        if (argc > 1 && (parse_int_arg(argv[1], &layer) || layer < 0 || layer >= st->info.n_layer)) {
            say_error(st, "heads: '%s' is not a layer number", argv[1]);
            return 0;
        }
        if (layer < 0) layer = 0;
        cmd_heads(st, layer);
    } else if (!strcmp(c, "lens")) {
        if (argc == 3 && !strcmp(argv[1], "--png"))
            cmd_lens_png(st, argv[2]);
        else if (argc == 1)
            cmd_lens(st);
        else
            say_error(st, "usage: lens [--png FILE]%s", NULL);
    } else if (!strcmp(c, "top")) {
        int k = st->top_k;
        if (argc > 1 && (parse_int_arg(argv[1], &k) || k < 1 || k > st->info.n_vocab)) {
            say_error(st, "top: '%s' is not a count of tokens", argv[1]);
            return 0;
        }
        cmd_top(st, k);
    } else if (!strcmp(c, "gen")) {
        if (argc != 2 || parse_int_arg(argv[1], &v) || v < 1) {
            say_error(st, "gen: expected a number of tokens >= 1%s", NULL);
            return 0;
        }
        if (st->n_tokens + v > tinyllm_context_n_ctx(st->ctx)) {
            say_error(st, "gen: that would pass the end of the context (use a larger --ctx)%s", NULL);
            return 0;
        }
        cmd_gen(st, v);
    } else if (!strcmp(c, "dump")) {
        if (argc != 3) {
            say_error(st, "usage: dump TAP FILE.npy%s", NULL);
            return 0;
        }
        cmd_dump(st, argv[1], argv[2]);
    } else if (!strcmp(c, "attn")) {
        int layer, head = -1;
        const char *png = argc == 5 && !strcmp(argv[3], "--png") ? argv[4] : NULL;
        if ((argc != 3 && argc != 5) || parse_int_arg(argv[1], &layer) || layer < 0 || layer >= st->info.n_layer ||
            (strcmp(argv[2], "all") && (parse_int_arg(argv[2], &head) || head < 0 || head >= st->info.n_head))) {
            say_error(st, "usage: attn LAYER HEAD|all [--png FILE] (layer and head in range)%s", NULL);
            return 0;
        }
        if (!png) { /* text: the head's rows (or a hint for all) */
            if (head < 0) {
                say_error(st, "attn L all needs --png FILE%s", NULL);
                return 0;
            }
            char name[48];
            snprintf(name, sizeof name, "%d.attn_probs", layer);
            int tap = tap_index(st, name);
            printf(st->json ? "{\"cmd\": \"attn\", \"layer\": %d, \"head\": %d, \"rows\": [" : "layer %d head %d\n",
                   layer, head);
            for (int i = 0; i < st->store.n_pos; i++) {
                const float *row = tap_store_row(&st->store, tap, i);
                if (st->json) printf("%s[", i ? ", " : "");
                else printf("  %3d %-10.10s", i, st->labels[i]);
                for (int j = 0; j <= i && row; j++)
                    printf(st->json ? (j ? ", %.6f" : "%.6f") : " %.2f", row[(size_t)head * (i + 1) + j]);
                printf(st->json ? "]" : "\n");
            }
            if (st->json) printf("]}\n");
        } else {
            cmd_attn_png(st, layer, head, png);
        }
    } else if (!strcmp(c, "ablate") || !strcmp(c, "unablate")) {
        int layer = -1, head = -1, on = !strcmp(c, "ablate");
        if ((on && argc != 3) || (argc == 3 && (parse_int_arg(argv[1], &layer) || parse_int_arg(argv[2], &head))) ||
            (argc != 1 && argc != 3)) {
            say_error(st, "usage: ablate LAYER HEAD | unablate [LAYER HEAD]%s", NULL);
            return 0;
        }
        if (tinyllm_context_ablate_head(st->ctx, layer, head, on, NULL)) {
            say_error(st, "%s: layer or head out of range", c);
            return 0;
        }
        if (st->json)
            printf("{\"cmd\": \"%s\", \"layer\": %d, \"head\": %d}\n", c, layer, head);
        else if (layer < 0)
            printf("all heads restored; 'rerun' to see the effect\n");
        else
            printf("head %d of layer %d %s; 'rerun' to see the effect\n", head, layer, on ? "ablated" : "restored");
    } else if (!strcmp(c, "rerun")) {
        cmd_rerun(st);
    } else if (!strcmp(c, "taps")) {
        if (st->json) printf("{\"cmd\": \"taps\", \"taps\": [");
        for (int i = 0; i < n_taps; i++)
            if (st->json) {
                printf("%s", i ? ", " : "");
                json_string(st->store.taps[i].name);
            } else {
                printf("%s%s", st->store.taps[i].name, i + 1 < n_taps ? (i % 8 == 7 ? "\n" : "  ") : "\n");
            }
        if (st->json) printf("]}\n");
    } else if (!strcmp(c, "tokens")) {
        if (st->json) printf("{\"cmd\": \"tokens\", \"tokens\": [");
        for (int i = 0; i < st->n_tokens; i++) {
            if (st->json) {
                printf("%s{\"pos\": %d, \"id\": %d, \"text\": ", i ? ", " : "", i, st->tokens[i]);
                json_string(st->labels[i]);
                printf("}");
            } else {
                printf("  %3d  %5d  '%s'%s\n", i, st->tokens[i], st->labels[i], i >= st->n_prompt ? "  (generated)" : "");
            }
        }
        if (st->json) printf("]}\n");
    } else if (!strcmp(c, "where")) {
        if (st->json)
            printf("{\"cmd\": \"where\", \"tap\": \"%s\", \"pos\": %d}\n", st->store.taps[st->cur_tap].name, st->cur_pos);
        else
            printf("at %s, position %d '%s'\n", st->store.taps[st->cur_tap].name, st->cur_pos, st->labels[st->cur_pos]);
    } else {
        say_error(st, "unknown command '%s' (try 'help')", c);
    }
    return 0;
}

/* ------------------------------------------------------------ setup -- */

static void free_stepper(stepper *st) {
    if (st->labels)
        for (int i = 0; i < st->n_tokens; i++) free(st->labels[i]);
    free(st->labels);
    free(st->tokens);
    tap_store_free(&st->store);
    tinyllm_context_free(st->ctx);
    tinyllm_model_free(st->m);
}

/* Loads the model and runs the prompt with every tap recorded. */
static int build_stepper(stepper *st, const char *model_path, const char *prompt, int n_ctx, int n_threads) {
    memset(st, 0, sizeof *st);
    tap_store_init(&st->store);
    st->top_k = 5;
    if (!(st->m = load_model_or_report(model_path, NULL))) return EXIT_MODEL;
    tinyllm_model_info_get(st->m, &st->info, NULL);
    int n = 0;
    int *ids = tokenize_prompt(st->m, prompt, &n);
    if (!ids) return EXIT_USAGE;
    st->cap = n + 16;
    st->tokens = malloc((size_t)st->cap * sizeof *st->tokens);
    st->labels = calloc((size_t)st->cap, sizeof *st->labels);
    if (!st->tokens || !st->labels) {
        free(ids);
        return EXIT_RUNTIME;
    }
    for (int i = 0; i < n; i++) add_token(st, ids[i]);
    free(ids);
    st->n_prompt = n;
    tinyllm_context_params cp = tinyllm_context_default_params();
    cp.n_ctx = n_ctx ? n_ctx : (st->info.n_ctx_train < 512 ? st->info.n_ctx_train : 512);
    cp.n_threads = n_threads;
    cp.logits_all = 1;
    tinyllm_error err = {0};
    if (n > cp.n_ctx) {
        fprintf(stderr, "tinyllm step: the prompt (%d tokens) is longer than the context (%d); use --ctx\n", n,
                cp.n_ctx);
        return EXIT_USAGE;
    }
    if (tinyllm_context_create(st->m, &cp, &st->ctx, &err) ||
        tinyllm_context_set_tap(st->ctx, tap_store_on_tap, &st->store, NULL) ||
        tinyllm_context_prefill(st->ctx, st->tokens, n, &err)) {
        fprintf(stderr, "tinyllm step: %s\n", *err.message ? err.message : "out of memory");
        return err.code == TINYLLM_ERR_ARG ? EXIT_USAGE : EXIT_RUNTIME;
    }
    st->cur_pos = n - 1;
    return EXIT_OK;
}

int cmd_step(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *script = NULL;
    int n_ctx = 0, n_threads = 1, json = 0, top_k = 5;
    const opt_spec opts[] = {
        {"--model", "-m", OPT_STRING, &model_path, "FILE", "GGUF model (required)", NULL},
        {"--prompt", "-p", OPT_STRING, &prompt, "TEXT", "prompt to step through (required)", NULL},
        {"--script", NULL, OPT_STRING, &script, "\"CMD; CMD\"", "run these commands instead of reading stdin", NULL},
        {"--json", NULL, OPT_FLAG, &json, "", "print each command's result as one JSON object per line", NULL},
        {"--top-k", NULL, OPT_INT, &top_k, "K", "tokens shown by top and lens (default 5)", NULL},
        {"--ctx", "-c", OPT_INT, &n_ctx, "N", "context length (default: the model's, at most 512)", NULL},
        {"--threads", "-t", OPT_INT, &n_threads, "N", "threads (default 1)", NULL},
    };
    const command_spec cmd = {"step", "-m MODEL.gguf -p PROMPT [--script \"cmd; cmd\"] [--json]",
                              "Step through the layers of a forward pass and look (type 'help' inside).", opts,
                              (int)(sizeof opts / sizeof opts[0])};
    const char *pos[1];
    int n_pos, rc = parse_args(&cmd, argc, argv, pos, 0, &n_pos);
    if (rc >= 0) return rc;
    if (!model_path) return usage_error(&cmd, "missing -m MODEL.gguf");
    if (!prompt || !*prompt) return usage_error(&cmd, "missing or empty -p PROMPT");
    if (top_k < 1 || top_k > 100) return usage_error(&cmd, "--top-k %d: expected 1 to 100", top_k);
    if (n_ctx < 0 || n_threads < 1 || n_threads > 256) return usage_error(&cmd, "--ctx/-t: expected positive values");
    stepper st;
    rc = build_stepper(&st, model_path, prompt, n_ctx, n_threads);
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
            if (interactive) {
                printf("step> ");
                fflush(stdout);
            }
            long n = line ? read_line(line, STEP_MAX_LINE + 2, stdin) : -1;
            if (n == -1) break;
            if (n == -2) { /* never cut into two commands */
                say_error(&st, "the line is longer than %s bytes and was skipped whole", STR(STEP_MAX_LINE));
                fflush(stdout);
                continue;
            }
            if (!interactive && !json && line[strspn(line, " \t\r\n")]) printf("> %s", line);
            if (run_command(&st, line)) break;
            fflush(stdout);
        }
        free(line);
    }
    if (st.store.oom) fprintf(stderr, "tinyllm step: out of memory recording taps; some rows are missing\n");
    free_stepper(&st);
    return EXIT_OK;
}

/* tinyllm attn: the attention picture without a session. */
int cmd_attn(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *png = NULL;
    int layer = -1, head = -1, all = 0;
    const opt_spec opts[] = {
        {"--model", "-m", OPT_STRING, &model_path, "FILE", "GGUF model (required)", NULL},
        {"--prompt", "-p", OPT_STRING, &prompt, "TEXT", "prompt (required)", NULL},
        {"--layer", "-l", OPT_INT, &layer, "L", "layer (required)", NULL},
        {"--head", NULL, OPT_INT, &head, "H", "head (or --all)", NULL},
        {"--all", NULL, OPT_FLAG, &all, "", "a grid of every head of the layer", NULL},
        {"--png", NULL, OPT_STRING, &png, "FILE", "output picture (required)", NULL},
    };
    const command_spec cmd = {"attn", "-m MODEL.gguf -p PROMPT --layer L (--head H | --all) --png FILE.png",
                              "Draw an attention heatmap with the tokens as labels.", opts,
                              (int)(sizeof opts / sizeof opts[0])};
    const char *pos[1];
    int n_pos, rc = parse_args(&cmd, argc, argv, pos, 0, &n_pos);
    if (rc >= 0) return rc;
    if (!model_path || !prompt || !*prompt || !png) return usage_error(&cmd, "-m, -p and --png are required");
    if (!*png) return usage_error(&cmd, "--png: empty file name (expected a path for the picture)");
    if (layer < 0 || (head < 0 && !all) || (head >= 0 && all))
        return usage_error(&cmd, "give --layer L and one of --head H or --all");
    stepper st;
    rc = build_stepper(&st, model_path, prompt, 0, 1);
    if (!rc && layer >= st.info.n_layer)
        rc = usage_error(&cmd, "--layer %d: the model has layers 0..%d", layer, st.info.n_layer - 1);
    if (!rc && head >= st.info.n_head)
        rc = usage_error(&cmd, "--head %d: the model has heads 0..%d", head, st.info.n_head - 1);
    if (!rc) {
        st.cli = "attn";
        cmd_attn_png(&st, layer, all ? -1 : head, png);
        if (st.errors) rc = EXIT_RUNTIME;
    }
    free_stepper(&st);
    return rc;
}
