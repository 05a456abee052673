/* The loaded model: hyperparameters, weight pointers bound by name from the
 * GGUF file (F32 tensors used in place from the mapping; F16/Q8_0/Q4_0
 * expanded once to F32), and the tokenizer. Read-only after load. */
#ifndef TINYLLM_MODEL_H
#define TINYLLM_MODEL_H

#include "gguf.h"
#include "tinyllm.h"
#include "tokenizer.h"

typedef enum { ARCH_LLAMA = 0, ARCH_GPT2 = 1 } model_arch;

/* Weight matrices are PyTorch layout (out, in), row-major. */
typedef struct {
    const float *attn_norm_w, *attn_norm_b; // (dim), bias gpt2 only
    const float *wqkv, *bqkv;               // gpt2: (3*dim, dim), (3*dim)
    const float *wq, *wk, *wv;              // (dim, dim), (kv_dim, dim), (kv_dim, dim)
    const float *bq, *bk, *bv;              // gpt2: slices of bqkv
    const float *wo, *bo;                   // (dim, dim), (dim)
    const float *ffn_norm_w, *ffn_norm_b;   // (dim)
    const float *w_gate;                    // llama: (ff, dim)
    const float *w_up, *b_up;               // (ff, dim), (ff)
    const float *w_down, *b_down;           // (dim, ff), (dim)
    int qkv_adjacent;      // wq, wk, wv (and their biases) are one (dim + 2 kv_dim, dim) block
    int gate_up_adjacent;  // llama: w_gate, w_up are one (2 ff, dim) block
} layer_weights;

struct tinyllm_model {
    gguf_file file;
    model_arch arch;
    tinyllm_model_info info;
    char name[128];
    int kv_dim; // n_head_kv * head_dim

    const float *tok_embd;                  // (vocab, dim)
    const float *pos_embd;                  // (n_ctx_train, dim): learned or sinusoidal
    layer_weights *layers;                  // (n_layer)
    const float *out_norm_w, *out_norm_b;   // (dim)
    const float *output;                    // (vocab, dim): token_embd when tied

    float *arena; // owned F32 copies (converted tensors, sinusoidal table)
    char *names_arena;          // NUL-terminated key and tensor names
    const char **kv_keys;       // (n_kv)
    const char **tensor_names;  // (n_tensors)
    tokenizer *tok;
};

/* Loads a model from a GGUF image in memory that outlives the model (the
 * fuzzer's entry point; `name` is used in messages). */
tinyllm_status model_load_buffer(const uint8_t *buf, size_t size, const char *name, tinyllm_model **out,
                                 tinyllm_error *err);

#endif
