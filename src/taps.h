/* Tap points of the forward pass (names and shapes: include/tinyllm.h). */
#ifndef TINYLLM_TAPS_H
#define TINYLLM_TAPS_H

#include <stdint.h>

#include "tinyllm.h"

typedef enum {
    TAP_EMBED, TAP_POS, TAP_ATTN_NORM, TAP_Q_PRE_ROPE, TAP_K_PRE_ROPE, TAP_Q, TAP_K, TAP_V, TAP_ATTN_SCORES, TAP_ATTN_PROBS, TAP_ATTN_OUT,
    TAP_ATTN_PROJ, TAP_RESID_ATTN, TAP_FFN_NORM, TAP_FFN_HIDDEN, TAP_FFN_OUT, TAP_RESID_FFN, TAP_FINAL_NORM,
    TAP_LOGITS, TAP_COUNT
} tap_id;

/* Hands one tensor to the context's tap callback: with hooks on
 * (tinyllm_context_set_hook), writable, so the pass goes on from what the
 * hook leaves there (attn_scores excepted: it is already used up). */
void tap_emit(const tinyllm_context *ctx, tap_id id, int layer, int pos0, float *data, int n_dims, int64_t d0,
              int64_t d1, int64_t d2);

/* The branch that makes taps free when nobody listens. */
#define TAP(ctx, ...)                                   \
    do {                                                \
        if ((ctx)->tap_fn) tap_emit((ctx), __VA_ARGS__); \
    } while (0)

#endif
