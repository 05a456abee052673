/* Test helper: activation patching written against the public C API only
 * (tinyllm_context_set_tap to record, tinyllm_context_set_hook to write).
 *
 *   hook_patch MODEL TAP POSITIONS CLEAN_IDS CORRUPTED_IDS OUT.f32
 *
 * Runs CLEAN_IDS (comma-separated token ids) in one prefill and records tap
 * TAP; then runs CORRUPTED_IDS (as many ids) with TAP's rows at POSITIONS
 * ("all", or comma-separated positions) replaced by the clean run's, and
 * writes the logits of every position, (T, n_vocab) float32, to OUT.f32.
 * 2-D taps are (T, cols); 3-D taps (heads, T, keys) are patched per head.
 * Exit 0 on success, 1 with a one-line message otherwise. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyllm.h"

#define MAX_TOKENS 4096

typedef struct {
    const char *name;
    float *copy;          /* the clean run's tap, as handed over */
    size_t n;             /* its element count */
    int64_t shape[3];
    int n_dims;
    const int *rows;      /* positions to patch */
    int n_rows;
    int seen;
} patch_state;

static int parse_ids(const char *s, int *out, int cap) {
    int n = 0;
    char *end;
    while (*s) {
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > 0x7fffffff || n == cap) return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static size_t tap_count(const tinyllm_tap *t) {
    size_t n = 1;
    for (int i = 0; i < t->n_dims; i++) n *= (size_t)t->shape[i];
    return n;
}

static void record(const tinyllm_tap *t, void *user) {
    patch_state *ps = user;
    if (strcmp(t->name, ps->name) || ps->copy) return;
    ps->n = tap_count(t);
    ps->copy = malloc(ps->n * sizeof *ps->copy);
    if (!ps->copy) return;
    memcpy(ps->copy, t->data, ps->n * sizeof *ps->copy);
    memcpy(ps->shape, t->shape, sizeof ps->shape);
    ps->n_dims = t->n_dims;
}

static void write_rows(const tinyllm_tap *t, void *user) {
    patch_state *ps = user;
    if (strcmp(t->name, ps->name) || !t->writable || tap_count(t) != ps->n) return;
    ps->seen = 1;
    /* a row is position p: (T, cols) row p, or row p of every head of (H, T, keys) */
    int64_t heads = t->n_dims == 3 ? t->shape[0] : 1, T = t->shape[t->n_dims - 2], cols = t->shape[t->n_dims - 1];
    for (int64_t h = 0; h < heads; h++)
        for (int i = 0; i < ps->n_rows; i++) {
            size_t at = ((size_t)h * T + (size_t)ps->rows[i]) * (size_t)cols;
            memcpy(t->writable + at, ps->copy + at, (size_t)cols * sizeof(float));
        }
}

static int fail(const char *what, const char *why) {
    fprintf(stderr, "hook_patch: %s: %s\n", what, why);
    return 1;
}

static int prefill_all(const tinyllm_model *m, const int *ids, int n, tinyllm_tap_fn fn, int hook, patch_state *ps,
                       float *logits_out, int n_vocab) {
    tinyllm_context_params cp = tinyllm_context_default_params();
    cp.n_ctx = n, cp.n_threads = 1, cp.logits_all = 1;
    tinyllm_context *c = NULL;
    tinyllm_error err = {0};
    if (tinyllm_context_create(m, &cp, &c, &err)) return fail("context", err.message);
    int rc = hook ? tinyllm_context_set_hook(c, fn, ps, &err) : tinyllm_context_set_tap(c, fn, ps, &err);
    if (!rc) rc = tinyllm_context_prefill(c, ids, n, &err);
    for (int i = 0; !rc && logits_out && i < n; i++)
        memcpy(logits_out + (size_t)i * n_vocab, tinyllm_context_logits_at(c, i), (size_t)n_vocab * sizeof(float));
    tinyllm_context_free(c);
    return rc ? fail("prefill", err.message) : 0;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: hook_patch MODEL TAP POSITIONS CLEAN_IDS CORRUPTED_IDS OUT.f32\n");
        return 1;
    }
    static int clean[MAX_TOKENS], corrupted[MAX_TOKENS], rows[MAX_TOKENS];
    int n = parse_ids(argv[4], clean, MAX_TOKENS), n2 = parse_ids(argv[5], corrupted, MAX_TOKENS);
    if (n <= 0 || n != n2) return fail("token ids", "expected two equally long comma-separated lists");
    int n_rows = 0;
    if (!strcmp(argv[3], "all"))
        for (; n_rows < n; n_rows++) rows[n_rows] = n_rows;
    else if ((n_rows = parse_ids(argv[3], rows, MAX_TOKENS)) <= 0)
        return fail("positions", "expected all or positions inside the prompt");
    for (int i = 0; i < n_rows; i++)
        if (rows[i] >= n) return fail("positions", "expected all or positions inside the prompt");

    tinyllm_model_params mp = tinyllm_model_default_params();
    tinyllm_model *m = NULL;
    tinyllm_error err = {0};
    if (tinyllm_model_load(argv[1], &mp, &m, &err)) return fail(argv[1], err.message);
    tinyllm_model_info info;
    if (tinyllm_model_info_get(m, &info, &err)) return tinyllm_model_free(m), fail("info", err.message);
    patch_state ps = {.name = argv[2], .rows = rows, .n_rows = n_rows};
    float *logits = malloc((size_t)n * info.n_vocab * sizeof *logits);
    int rc = logits ? 0 : fail("logits", "out of memory");
    if (!rc) rc = prefill_all(m, clean, n, record, 0, &ps, NULL, info.n_vocab);
    if (!rc && !ps.copy) rc = fail(argv[2], "no such tap in the clean run");
    if (!rc) rc = prefill_all(m, corrupted, n, write_rows, 1, &ps, logits, info.n_vocab);
    if (!rc && !ps.seen) rc = fail(argv[2], "not a writable tap");
    if (!rc) {
        FILE *f = fopen(argv[6], "wb");
        if (!f || fwrite(logits, sizeof *logits, (size_t)n * info.n_vocab, f) != (size_t)n * info.n_vocab)
            rc = fail(argv[6], "cannot write");
        if (f && fclose(f)) rc = fail(argv[6], "cannot write");
    }
    free(logits), free(ps.copy);
    tinyllm_model_free(m);
    return rc;
}
