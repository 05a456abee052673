/* The generation loop (generation.h). */
#include "generation.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "lineedit.h"

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
    if (!rev || !rev->n) return 0;
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

/* Room for `need` more tokens in the cache: a context shift (keep n_keep,
 * forget at least half of the rest) when it is full and shifting is allowed.
 * 0 when there is room; -1 when there is none (err set if a shift failed). */
static int make_room(generation *g, int need, tinyllm_error *err) {
    if (g->n_cache + need <= g->n_ctx) return 0;
    if (!g->shift) return -1;
    int discard = (g->n_cache - g->n_keep) / 2, over = g->n_cache + need - g->n_ctx;
    if (discard < over) discard = over;
    if (discard > g->n_cache - g->n_keep) return -1;
    double t = now_seconds();
    if (tinyllm_context_shift(g->ctx, g->cache, g->n_keep, discard, err)) return -1;
    g->shifts.secs += now_seconds() - t;
    g->shifts.rerun += g->n_cache - g->n_keep - discard;
    g->shifts.n++;
    memmove(g->cache + g->n_keep, g->cache + g->n_keep + discard,
            (size_t)(g->n_cache - g->n_keep - discard) * sizeof *g->cache);
    g->n_cache -= discard;
    return 0;
}

gen_status generation_start(generation *g, const int *prompt, int n, const string_list *stops, tinyllm_error *err) {
    tinyllm_model_info info;
    tinyllm_model_info_get(g->model, &info, NULL);
    g->n_vocab = info.n_vocab;
    g->n_ctx = tinyllm_context_n_ctx(g->ctx);
    g->eos = tinyllm_token_eos(g->model);
    g->pending = -1;
    stop_filter_init(&g->stop, stops->v, stops->n);
    tinyllm_detok_init(&g->detok, 0);
    g->cap = (size_t)n + 256;
    g->history = malloc(g->cap * sizeof *g->history);
    g->cache = malloc((size_t)g->n_ctx * sizeof *g->cache);
    if (!g->history || !g->cache) return GEN_NO_MEMORY;
    memcpy(g->history, prompt, (size_t)n * sizeof *prompt);
    memcpy(g->cache, prompt, (size_t)n * sizeof *prompt);
    g->n_hist = g->n_cache = n;
    return tinyllm_context_prefill(g->ctx, prompt, n, err) ? GEN_FAILED : GEN_OK;
}

/* The next token after position `pos`, or GEN_REPORTED after one line on
 * stderr: the logits hold NaN or Inf (reported, never sampled from
 * silently), or nothing can be sampled. */
gen_status generation_sample(generation *g) {
    const float *logits = tinyllm_context_logits(g->ctx);
    int pos = g->n_hist - 1;
    for (int i = 0; i < g->n_vocab; i++)
        if (!isfinite(logits[i])) {
            say("tinyllm generate: the logits after position %d are not finite (token %d is %s); expected finite "
                "values: %s\n",
                pos, i, isnan(logits[i]) ? "NaN" : logits[i] > 0 ? "+inf" : "-inf",
                g->experimenting ? "the experiment made the computation overflow"
                                 : "the model's weights or activations overflow (try --check-tensors)");
            return GEN_REPORTED;
        }
    tinyllm_error err = {0};
    g->next = tinyllm_sampler_sample(g->sampler, logits, g->history, g->n_hist, &err);
    if (g->next >= 0) return GEN_OK;
    say("tinyllm generate: after position %d: %s\n", pos, err.message);
    return GEN_REPORTED;
}

gen_status generation_reply(generation *g, int n_predict, volatile sig_atomic_t *interrupted, tinyllm_error *err) {
    double t0 = now_seconds();
    gen_status st = GEN_OK;
    char piece[TINYLLM_DETOK_MAX];
    g->pending = -1;
    for (int n_reply = 0; !st;) {
        if (interrupted && *interrupted) { /* Ctrl-C: back to the user */
            *interrupted = 0;
            break;
        }
        if (g->next == g->eos && !g->ignore_eos) break;
        if (grow_ids(&g->history, &g->cap, g->n_hist + 1)) {
            st = GEN_NO_MEMORY;
            break;
        }
        g->history[g->n_hist++] = g->next;
        g->n_gen++, n_reply++;
        g->pending = g->next;
        int n = tinyllm_detok_push(g->model, &g->detok, g->next, piece, sizeof piece, NULL);
        if (n > 0) {
            int r = stop_filter_feed(&g->stop, piece, (size_t)n, stdout);
            fflush(stdout);
            if (r) break; /* a stop string (or no memory to hold text back) */
            if (ends_with_reverse(g->tail, sizeof g->tail, piece, (size_t)n, g->reverse)) break;
        }
        if (n_reply == n_predict) break;
        if (make_room(g, 1, err)) {
            if (err->code) st = GEN_FAILED;
            else
                say("\ntinyllm generate: stopped: the context of %d tokens is full%s\n", g->n_ctx,
                    g->no_shift ? " (--no-context-shift)" : " (-n -1 goes on by shifting it)");
            break;
        }
        g->cache[g->n_cache++] = g->next;
        g->pending = -1;
        st = tinyllm_context_decode(g->ctx, g->next, err) ? GEN_FAILED : generation_sample(g);
    }
    g->reply_secs += now_seconds() - t0;
    return st;
}

/* One line from stdin with its newline (malloc'd; NULL at the end of input):
 * at a terminal through line editing and history, else echoed as a script
 * typed it. */
static char *read_user_line(size_t *len) {
    char *line = NULL;
    ssize_t got = -1;
    if (isatty(STDIN_FILENO)) {
        fputs("\n", stdout);
        fflush(stdout);
        if ((line = edit_line("> ", NULL, NULL))) {
            size_t n = strlen(line);
            char *with_nl = realloc(line, n + 2);
            if (with_nl) memcpy(with_nl + n, "\n", 2), line = with_nl, got = (ssize_t)n + 1;
        }
    } else {
        size_t cap = 0;
        fputs("\n> ", stdout);
        fflush(stdout);
        got = getline(&line, &cap, stdin);
        if (got >= 0) fputs(line, stdout); /* echo what a script typed */
    }
    if (got < 0) {
        free(line);
        return NULL;
    }
    *len = (size_t)got;
    return line;
}

/* The user's line as ids in in[1..*n_in] (in[0] free for the pending
 * token), or NULL after saying on stderr why it was refused: it does not
 * tokenize (the tokenizer's reason), or it does not fit. */
static int *user_line_ids(generation *g, const char *line, size_t len, int *n_in) {
    tinyllm_error err = {0};
    int *in = NULL;
    int failed = tinyllm_tokenize(g->model, line, len, 0, NULL, 0, n_in, &err) != 0;
    if (!failed && (in = malloc(((size_t)*n_in + 1) * sizeof *in)))
        failed = tinyllm_tokenize(g->model, line, len, 0, in + 1, *n_in, n_in, &err) != 0;
    if (failed || !in) {
        say("tinyllm generate: input: %s\n", failed ? err.message : "out of memory");
        free(in);
        return NULL;
    }
    int n_want = *n_in + (g->pending >= 0);
    const char *why = n_want >= g->n_ctx - g->n_keep ? "do not fit the context"
                      : !g->shift && g->n_cache + n_want > g->n_ctx
                          ? "do not fit the positions left (--no-context-shift)"
                          : NULL;
    if (why) { /* refused, and the next line is read: the session goes on */
        say("tinyllm generate: input: %d tokens %s; type a shorter line\n", n_want, why);
        free(in);
        return NULL;
    }
    return in;
}

gen_status generation_user_turn(generation *g, volatile sig_atomic_t *interrupted, int *quit, tinyllm_error *err) {
    stop_filter_flush(&g->stop, stdout);
    int n_in = 0, *in = NULL;
    *quit = 0;
    while (!in) { /* until a line that tokenizes and fits, or the end of input */
        size_t len = 0;
        char *line = read_user_line(&len);
        if (!line || (interrupted && *interrupted)) { /* Ctrl-D (end of input), or Ctrl-C at the prompt */
            free(line);
            *quit = 1;
            return GEN_OK;
        }
        in = user_line_ids(g, line, len, &n_in);
        free(line);
    }
    /* the line goes into the same cache, after the last printed token if it is not there yet */
    int n_add = 0, *add = in + 1;
    if (g->pending >= 0) add = in, in[0] = g->pending, n_add = 1;
    n_add += n_in;
    if (n_add == 0 || make_room(g, n_add, err) || grow_ids(&g->history, &g->cap, g->n_hist + n_add)) {
        free(in);
        *quit = 1;
        return err->code ? GEN_FAILED : GEN_OK;
    }
    memcpy(g->cache + g->n_cache, add, (size_t)n_add * sizeof *add);
    memcpy(g->history + g->n_hist, add, (size_t)n_add * sizeof *add);
    g->n_cache += n_add, g->n_hist += n_add;
    int failed = tinyllm_context_prefill(g->ctx, add, n_add, err) != 0;
    free(in);
    if (failed) return GEN_FAILED;
    stop_filter_reset(&g->stop);
    tinyllm_detok_init(&g->detok, 0);
    return generation_sample(g);
}

void generation_finish(generation *g) {
    char piece[TINYLLM_DETOK_MAX];
    int n = tinyllm_detok_flush(&g->detok, piece, sizeof piece);
    if (n > 0) stop_filter_feed(&g->stop, piece, (size_t)n, stdout);
    stop_filter_flush(&g->stop, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

void free_generation(generation *g) {
    free(g->history);
    free(g->cache);
    stop_filter_free(&g->stop);
    g->history = g->cache = NULL;
}
