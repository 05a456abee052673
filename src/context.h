/* A context: one sequence's KV cache plus the scratch buffers of a forward
 * pass, sized once at creation for n_batch tokens at a time. */
#ifndef TINYLLM_CONTEXT_H
#define TINYLLM_CONTEXT_H

#include "attention.h"
#include "model.h"
#include "threadpool.h"

/* Prefill with weights stored in another format than F32 converts this many
 * weight rows at a time per thread: enough rows that repacking the input per
 * block costs little. */
#define CONV_ROWS 256

struct tinyllm_context {
    const tinyllm_model *model;
    int n_ctx;      // KV cache length
    int n_batch;    // tokens per forward chunk
    int n_threads;
    int logits_all;
    int n_past;     // tokens in the cache
    kv_cache kv;

    /* Scratch of one forward chunk. Three buffers are shared, each by two
     * tensors whose lives do not overlap within a layer:
     *   buffer | first holds                        | then holds
     *   xb     | the normed sublayer input          | att_out (after q|k|v is computed)
     *   q      | the queries                        | proj (after attention has read them)
     *   hb     | qkv, a fused q|k|v product          | the FFN hidden state (after the split) */
    float *x;       // (n_batch, dim)  residual stream
    float *xb;      // (n_batch, dim)  normed input of a sublayer
    float *q;       // (n_batch, dim)
    float *att_out; // (n_batch, dim)  heads concatenated: xb
    float *proj;    // (n_batch, dim)  sublayer output before the residual add: q
    float *hb;      // (n_batch, ff) gelu: up-projection; swiglu: (n_batch, 2 ff) gate|up
    float *qkv;     // (n_batch, dim + 2 kv_dim) a fused q|k|v product: hb
    float *tap_rows; // (n_batch, ff) the FFN hidden rows packed for the tap (taps on only)
    float *scores;  // (n_threads, att_scratch), or (n_head, n_batch, n_ctx) once taps are on
    size_t att_scratch; // floats of scores (and of probs) per thread: (ATTENTION_ROW_BLOCK, n_ctx)
    float *probs;   // same shape as scores
    int att_all_heads; // scores/probs keep every head (taps need them)
    float *rope_cos, *rope_sin; // (n_ctx, head_dim / 2), llama only
    float *pos_sin;             // (n_ctx, dim) sinusoidal positions (gpt2 with them only), built for this
                                // context's length, not the file's context_length
    float *logits;  // (n_ctx, vocab) with logits_all, else (1, vocab)
    float *conv;            // (n_threads, conv_per_thread): stored-format weights converted for sgemm
                            // (CONV_ROWS, max(dim, ff)), or quantized activation rows (Q8_ACT_BYTES)
    size_t conv_per_thread; // floats
    void *q8_rows;  // Q8_ACT_BYTES(n_batch, max(dim, ff)): a prefill's activation rows quantized once
                    // for every thread (integer prefill only; see matmul_takes_q8_act)
    int n_logits;   // rows of logits valid after the last call

    thread_pool *pool; // n_threads - 1 workers; the caller is thread 0
    unsigned char *ablated; // (n_layer, n_head): 1 = head's attn_out is zeroed
    unsigned char *skipped; // (n_layer): 1 = the layer is ablated: forward() passes the stream by it
    tinyllm_tap_fn tap_fn; // NULL: nobody listens
    void *tap_user;
    int tap_writes;        // the callback is a hook: it may change the tensors it is handed
    float *probs_before;   // (n_head, n_batch, n_ctx) hooks only: attn_probs as computed, to see a hook's writes
    /* The swappable ops: the real ones, or in fault builds
     * (-DTINYLLM_FAULT_INJECTION) with TINYLLM_FAULT=NAME a deliberate bug,
     * for tests that prove `verify` catches it (context.c). */
    rope_fn rope;         // the family's: rope_forward (adjacent pairs) or rope_halves_forward
    /* Experiments (tinyllm_context_set_experiments): what the user switched
     * off, and the attention rule that follows from it. */
    tinyllm_experiments exp;
    attention_rule att_rule;
};


/* Runs T tokens (T <= n_batch) at positions n_past.. through the model;
 * writes logits for the last token, or for all T at row `logits_row0`.. when
 * logits_all. Does not check arguments (callers do). */
void forward(tinyllm_context *ctx, const int *tokens, int T, int logits_row0);

#endif
