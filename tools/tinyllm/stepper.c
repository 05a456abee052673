/* The stepper: a model and a prompt run once with every tap recorded, plus
 * what `tinyllm step` and `tinyllm attn` share (token labels, errors, JSON
 * strings, the attention picture). */
#include "stepper.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "plot.h"

/* The emitter writes JSON through the CLI's one writer (json.h), one
 * object per result line. */
void emit_begin(stepper *st, const char *cmd) {
    if (!st->json) return;
    st->out = json_writer_to(stdout, 0, 1);
    json_open(&st->out, NULL, '{');
    json_str(&st->out, "cmd", cmd);
}

void emit_end(stepper *st) {
    if (!st->json) return;
    while (st->out.depth > 0) json_close(&st->out);
    putchar('\n');
}

void emit_open(stepper *st, const char *key, char kind) {
    if (st->json) json_open(&st->out, key, kind);
}

void emit_close(stepper *st) {
    if (st->json) json_close(&st->out);
}

void emit_int(stepper *st, const char *key, long v) {
    if (st->json) json_int(&st->out, key, v);
}

void emit_num(stepper *st, const char *key, const char *fmt, double v) {
    if (st->json) json_num(&st->out, key, fmt, v);
}

void emit_str(stepper *st, const char *key, const char *v) {
    if (st->json) json_str(&st->out, key, v);
}

void emit_text(stepper *st, const char *fmt, ...) {
    if (st->json) return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

void say_error(stepper *st, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    st->errors++;
    if (st->cli) {
        say("tinyllm %s: %s\n", st->cli, buf); /* say escapes control characters */
    } else if (st->json) {
        json_writer w = json_writer_to(stdout, 0, 1);
        json_open(&w, NULL, '{');
        json_str(&w, "error", buf);
        json_close(&w);
        putchar('\n');
    } else {
        printf("error: %s\n", buf);
    }
}

/* Length of the complete UTF-8 character at b[0..n), 0 when b starts with
 * an incomplete or invalid one. */
static int utf8_char(const unsigned char *b, int n) {
    int len = b[0] < 0x80 ? 1 : b[0] >= 0xF0 && b[0] <= 0xF4 ? 4 : b[0] >= 0xE0 ? 3 : b[0] >= 0xC2 ? 2 : 0;
    if (!len || len > n) return 0;
    for (int i = 1; i < len; i++)
        if ((b[i] & 0xC0) != 0x80) return 0;
    return len;
}

/* Bytes as a label: complete characters as they are, \n \t \r and other
 * control or broken bytes as escapes. */
static char *label_of_bytes(const unsigned char *b, int n) {
    char *out = malloc((size_t)n * 4 + 1), *o = out;
    if (!out) return NULL;
    for (int i = 0; i < n;) {
        int len = utf8_char(b + i, n - i);
        if (len && b[i] >= 0x20 && b[i] != 0x7f) {
            memcpy(o, b + i, (size_t)len);
            o += len, i += len;
        } else {
            const char *esc = b[i] == '\n' ? "\\n" : b[i] == '\t' ? "\\t" : b[i] == '\r' ? "\\r" : NULL;
            o += esc ? sprintf(o, "%s", esc) : sprintf(o, "\\x%02X", b[i]);
            i++;
        }
    }
    *o = 0;
    return out;
}

/* A token as readable text: the bytes it stands for (tinyllm_token_bytes:
 * SentencePiece's ▁ and BPE's Ġ as a space), escaped, e.g. " time", "\n". */
char *token_label(const tinyllm_model *m, int id) {
    unsigned char b[TINYLLM_DETOK_MAX + 1];
    int n = tinyllm_token_bytes(m, id, (char *)b, sizeof b);
    if (n < 0) return strdup("?");
    return label_of_bytes(b, n < (int)sizeof b ? n : (int)sizeof b - 1);
}

/* Where the incomplete character at the end of b[0..n) starts (n when b
 * ends with a complete one). */
static int incomplete_tail(const unsigned char *b, int n) {
    int i = n - 1;
    for (; i >= 0 && i >= n - 3; i--) {
        if ((b[i] & 0xC0) == 0x80) continue;
        int len = b[i] >= 0xF0 ? 4 : b[i] >= 0xE0 ? 3 : b[i] >= 0xC0 ? 2 : 1;
        return len > n - i ? i : n;
    }
    return i < 0 ? 0 : n; /* continuation bytes only: all of b continues a character */
}

/* When the token just added completes a UTF-8 character begun in the
 * tokens before it (byte pieces, or BPE tokens that split a character),
 * the token holding its first byte is labelled with its own whole
 * characters and this one, and the others with "+", instead of "\xE6"
 * "\xBC"... */
static void merge_byte_labels(stepper *st) {
    int last = st->n_tokens - 1;
    unsigned char cur[TINYLLM_DETOK_MAX + 1], text[TINYLLM_DETOK_MAX + 8];
    int n = tinyllm_token_bytes(st->m, st->tokens[last], (char *)cur, sizeof cur);
    if (n <= 0 || n > 3) return;
    for (int i = 0; i < n; i++)
        if ((cur[i] & 0xC0) != 0x80) return; /* continuation bytes only */
    int tail_len = n; /* the continuation bytes gathered so far, newest last */
    unsigned char tail[4];
    memcpy(tail, cur, (size_t)n);
    for (int k = last - 1; k >= 0 && k >= last - 3; k--) {
        int m = tinyllm_token_bytes(st->m, st->tokens[k], (char *)text, sizeof text);
        if (m <= 0 || m >= (int)sizeof text) return;
        int start = incomplete_tail(text, m);
        if (start == m || m - start + tail_len > 4) return;
        memmove(tail + (m - start), tail, (size_t)tail_len);
        memcpy(tail, text + start, (size_t)(m - start));
        tail_len += m - start;
        if ((tail[0] & 0xC0) == 0x80) { /* token k is all continuation bytes: look further back */
            if (start) return;
            continue;
        }
        if (utf8_char(tail, tail_len) != tail_len) return;
        memcpy(text + start, tail, (size_t)tail_len); /* k's whole characters, then the completed one */
        char *merged = label_of_bytes(text, start + tail_len);
        if (!merged) return;
        free(st->labels[k]);
        st->labels[k] = merged;
        for (int i = k + 1; i <= last; i++) {
            char *plus = strdup("+");
            if (!plus) return;
            free(st->labels[i]);
            st->labels[i] = plus;
        }
        return;
    }
}

int add_token(stepper *st, int id) {
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
    merge_byte_labels(st);
    return 0;
}

int tap_index(const stepper *st, const char *name) {
    int i = tap_store_find(&st->store, name);
    return i;
}

const float *logits_at(const stepper *st, int pos) {
    return tap_store_row(&st->store, tap_index(st, "logits"), pos);
}

void free_stepper(stepper *st) {
    if (st->labels)
        for (int i = 0; i < st->n_tokens; i++) free(st->labels[i]);
    free(st->labels);
    free(st->tokens);
    tap_store_free(&st->store);
    tinyllm_context_free(st->ctx);
    tinyllm_model_free(st->m);
}

/* Loads the model and runs the prompt with every tap recorded. */
int build_stepper(stepper *st, const char *cmd, const char *model_path, const char *prompt, int n_ctx, int n_threads,
                  const tinyllm_experiments *exp) {
    memset(st, 0, sizeof *st);
    tap_store_init(&st->store);
    st->top_k = 5;
    if (!(st->m = load_model_or_report(cmd, model_path, NULL))) return EXIT_MODEL;
    tinyllm_model_info_get(st->m, &st->info, NULL);
    int n = 0;
    int *ids = tokenize_prompt(cmd, st->m, prompt, &n);
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
        say("tinyllm %s: the prompt (%d tokens) is longer than the context (%d); use --ctx\n", cmd, n,
            cp.n_ctx);
        return EXIT_USAGE;
    }
    if (tinyllm_context_create(st->m, &cp, &st->ctx, &err)) {
        say("tinyllm %s: %s\n", cmd, err.message);
        return err.code == TINYLLM_ERR_ARG ? EXIT_USAGE : EXIT_RUNTIME;
    }
    int rc = exp ? apply_experiments(cmd, st->ctx, exp, stderr) : EXIT_OK;
    if (exp) st->exp = *exp;
    if (rc) return rc;
    if (tinyllm_context_set_tap(st->ctx, tap_store_on_tap, &st->store, NULL) ||
        tinyllm_context_prefill(st->ctx, st->tokens, n, &err)) {
        say("tinyllm %s: %s\n", cmd, *err.message ? err.message : "out of memory");
        return err.code == TINYLLM_ERR_ARG ? EXIT_USAGE : EXIT_RUNTIME;
    }
    st->cur_pos = n - 1;
    return EXIT_OK;
}

/* attention heatmap(s) of one layer: one head, or all heads in a grid */
void stepper_attn_png(stepper *st, int layer, int head, int last, const char *path) {
    char name[48];
    snprintf(name, sizeof name, "%d.attn_probs", layer);
    int tap = tap_index(st, name);
    if (tap < 0) {
        say_error(st, "no attention for layer %s", name);
        return;
    }
    int P = st->store.n_pos, H = st->store.taps[tap].cols, h0 = head < 0 ? 0 : head, h1 = head < 0 ? H : head + 1;
    int a = last > 0 && last < P ? P - last : 0, N = P - a; /* the window: positions a..P-1 */
    if (head >= H) {
        say_error(st, "head out of range");
        return;
    }
    float *mats = calloc((size_t)(h1 - h0) * N * N, sizeof *mats);
    const float **ptrs = calloc((size_t)(h1 - h0), sizeof *ptrs);
    char (*titles)[32] = calloc((size_t)(h1 - h0), sizeof *titles);
    const char **tptrs = calloc((size_t)(h1 - h0), sizeof *tptrs);
    if (!mats || !ptrs || !titles || !tptrs) {
        say_error(st, "out of memory");
    } else {
        for (int h = h0; h < h1; h++) {
            float *m = mats + (size_t)(h - h0) * N * N;
            for (int i = 0; i < N; i++) {
                const float *row = tap_store_row(&st->store, tap, a + i);
                for (int j = 0; j <= i && row; j++) m[(size_t)i * N + j] = row[(size_t)h * (a + i + 1) + a + j];
            }
            ptrs[h - h0] = m;
            snprintf(titles[h - h0], sizeof titles[0], "head %d", h);
            tptrs[h - h0] = titles[h - h0];
        }
        char title[128], msg[256];
        plot_geometry g;
        if (a)
            snprintf(title, sizeof title, "attention, layer %d, positions %d..%d of %d (rows: queries, columns: keys)",
                     layer, a, P - 1, P);
        else
            snprintf(title, sizeof title, "attention, layer %d (rows: query tokens, columns: keys)", layer);
        if (plot_attention(path, title, ptrs, tptrs, h1 - h0, (const char *const *)st->labels + a, N, &g, msg,
                           sizeof msg))
            say_error(st, "%s", msg);
        else {
            emit_begin(st, "attn");
            emit_int(st, "layer", layer), emit_int(st, "head", head), emit_str(st, "png", path), emit_int(st, "tokens", N);
            emit_int(st, "from", a);
            emit_int(st, "width", g.width), emit_int(st, "height", g.height), emit_int(st, "grid_x", g.grid_x);
            emit_int(st, "grid_y", g.grid_y), emit_int(st, "cell", g.cell);
            emit_text(st, "wrote %s (layer %d, %s, %d tokens)\n", path, layer, head < 0 ? "all heads" : titles[0], N);
            emit_end(st);
        }
    }
    free(mats), free(ptrs), free(titles), free(tptrs);
}
