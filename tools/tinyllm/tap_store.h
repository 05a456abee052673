/* Keeps every tap of every token position a context has run, through the
 * public tap callback: the stepper's memory. A rerun overwrites rows. */
#ifndef TINYLLM_CLI_TAP_STORE_H
#define TINYLLM_CLI_TAP_STORE_H

#include "tinyllm.h"

typedef struct {
    char name[48];  /* "3.attn_probs" */
    char kind[24];  /* "attn_probs" */
    int layer;      /* -1 outside the layers */
    int n_dims;     /* 2: rows of `cols` values; 3: rows of (heads, pos + 1) */
    int cols;       /* 2D: row length; 3D: heads */
    float **rows;   /* per position; NULL where not seen */
    int cap;
} stored_tap;

typedef struct {
    stored_tap *taps; /* in forward order of first appearance */
    int n, cap;
    int n_pos;        /* positions seen: 0 .. n_pos-1 */
    int oom;
} tap_store;

void tap_store_init(tap_store *s);
void tap_store_free(tap_store *s);
/* The tinyllm_tap_fn to install with tinyllm_context_set_tap (user = store). */
void tap_store_on_tap(const tinyllm_tap *tap, void *user);
int tap_store_find(const tap_store *s, const char *name);
/* Row of a tap at a position, or NULL. 3D rows hold heads x (pos + 1). */
const float *tap_store_row(const tap_store *s, int tap, int pos);

#endif
