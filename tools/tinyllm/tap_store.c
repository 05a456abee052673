#include "tap_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tap_store_init(tap_store *s) { memset(s, 0, sizeof *s); }

void tap_store_free(tap_store *s) {
    for (int i = 0; i < s->n; i++) {
        for (int p = 0; p < s->taps[i].cap; p++) free(s->taps[i].rows[p]);
        free(s->taps[i].rows);
    }
    free(s->taps);
    memset(s, 0, sizeof *s);
}

int tap_store_find(const tap_store *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->taps[i].name, name)) return i;
    return -1;
}

const float *tap_store_row(const tap_store *s, int tap, int pos) {
    if (tap < 0 || tap >= s->n || pos < 0 || pos >= s->taps[tap].cap) return NULL;
    return s->taps[tap].rows[pos];
}

static stored_tap *entry_for(tap_store *s, const tinyllm_tap *tap) {
    int i = tap_store_find(s, tap->name);
    if (i >= 0) return &s->taps[i];
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        stored_tap *t = realloc(s->taps, (size_t)cap * sizeof *t);
        if (!t) return NULL;
        s->taps = t;
        s->cap = cap;
    }
    stored_tap *e = &s->taps[s->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", tap->name);
    snprintf(e->kind, sizeof e->kind, "%s", tap->kind);
    e->layer = tap->layer;
    e->n_dims = tap->n_dims;
    e->cols = (int)(tap->n_dims == 2 ? tap->shape[1] : tap->shape[0]);
    return e;
}

void tap_store_on_tap(const tinyllm_tap *tap, void *user) {
    tap_store *s = user;
    stored_tap *e = entry_for(s, tap);
    if (!e) {
        s->oom = 1;
        return;
    }
    int T = (int)(tap->n_dims == 2 ? tap->shape[0] : tap->shape[1]);
    int last = tap->pos0 + T;
    if (last > e->cap) {
        float **rows = realloc(e->rows, (size_t)last * sizeof *rows);
        if (!rows) {
            s->oom = 1;
            return;
        }
        memset(rows + e->cap, 0, (size_t)(last - e->cap) * sizeof *rows);
        e->rows = rows;
        e->cap = last;
    }
    for (int t = 0; t < T; t++) {
        int pos = tap->pos0 + t;
        size_t n = tap->n_dims == 2 ? (size_t)e->cols : (size_t)e->cols * (pos + 1);
        float *row = realloc(e->rows[pos], n * sizeof *row);
        if (!row) {
            s->oom = 1;
            return;
        }
        e->rows[pos] = row;
        if (tap->n_dims == 2) {
            memcpy(row, tap->data + (size_t)t * e->cols, n * sizeof *row);
        } else { /* (H, T, L): keep the visible keys 0..pos of each head */
            int64_t L = tap->shape[2];
            for (int h = 0; h < e->cols; h++)
                memcpy(row + (size_t)h * (pos + 1), tap->data + ((size_t)h * T + t) * L, (size_t)(pos + 1) * 4);
        }
    }
    if (last > s->n_pos) s->n_pos = last;
}
