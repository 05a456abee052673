/* The views of `tinyllm step`: what each session command shows (tensor
 * statistics, per-head attention, the logit lens, the next-token
 * distribution, generation, dumps, reruns), as text or JSON through the
 * stepper's emitter. Everything comes from the public API. */
#include "step_views.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"
#include "plot.h"
#include "probs.h"

/* ---------------------------------------------------------- output -- */

/* ---------------------------------------------------------- engine -- */

/* ranked tokens as "key": [{id, text, p}...], or '  'text' p' in text */
static void emit_ranked(stepper *st, const char *key, const ranked *r, int n) {
    emit_open(st, key, '[');
    for (int i = 0; i < n; i++) {
        char *l = token_label(st->m, r[i].id);
        emit_open(st, NULL, '{');
        emit_int(st, "id", r[i].id), emit_str(st, "text", l), emit_num(st, "p", "%.6f", r[i].p);
        emit_close(st);
        emit_text(st, "  '%s' %.4f", l ? l : "", r[i].p);
        free(l);
    }
    emit_close(st);
}

/* ------------------------------------------------------- commands -- */

void cmd_show(stepper *st, int tap, int brief) {
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
    emit_close(st);
    emit_open(st, "row_shape", '[');
    for (int d = 0; d < t->n_dims - 1; d++) emit_int(st, NULL, row_shape[d]);
    emit_close(st);
    emit_num(st, "mean", "%.6g", mean), emit_num(st, "std", "%.6g", sd), emit_num(st, "min", "%.6g", mn);
    emit_num(st, "max", "%.6g", mx), emit_num(st, "l2", "%.6g", sqrt(sq));
    emit_open(st, "first", '[');
    for (long i = 0; i < n && i < 8; i++) emit_num(st, NULL, "%.6g", isfinite(row[i]) ? row[i] : 0.0);
    emit_close(st);
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

void cmd_heads(stepper *st, int layer) {
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
            emit_close(st);
            emit_text(st, "  [%d]'%s' %.3f", best[k].id, st->labels[best[k].id], best[k].p);
        }
        emit_close(st);
        emit_close(st);
        emit_text(st, "\n");
    }
    emit_close(st);
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

void cmd_lens_png(stepper *st, const char *path) {
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

void cmd_lens(stepper *st) {
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

void cmd_top(stepper *st, int k) {
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

void cmd_gen(stepper *st, int n) {
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
    emit_close(st);
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

void cmd_dump(stepper *st, const char *name, const char *path) {
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

/* Reruns every token so far (with the current ablations) and shows how the
 * prediction at the last position changed. */
void cmd_rerun(stepper *st) {
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

