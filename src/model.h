/* The loaded model: hyperparameters, weight pointers bound by name from the
 * GGUF file (matrices used in place from the mapping in their stored format,
 * F32/F16/Q8_0/Q4_0, or all expanded once to F32 with expand_f32; other
 * tensors as F32), and the tokenizer. Read-only after load. */
#ifndef TINYLLM_MODEL_H
#define TINYLLM_MODEL_H

#include "gguf.h"
#include "formats.h"
#include "kernels.h"
#include "tinyllm.h"
#include "tokenizer.h"

/* What distinguishes one family from another, all of it in its row of
 * FAMILIES (model.c): its tensor tables, the reader of its own
 * hyperparameters and options, its norm, activation and positions.
 * forward.c, the context and `info` read this, never the architecture's
 * name. A new family is one more row, its tensor names (names.h) and any
 * new op (docs/architecture.md). */
typedef enum { NORM_RMS, NORM_LAYER } norm_kind;
typedef enum { ACT_SWIGLU, ACT_GELU, ACT_GELU_ERF } act_kind;
struct tensor_spec;
typedef struct model_family {
    const char *name;      // "llama", "gpt2", "qwen2"
    norm_kind norm;        // RMSNorm, or LayerNorm with a bias
    act_kind act;          // SwiGLU: down(silu(gate) * up); GELU: down(gelu(up)) (a file may ask for the exact form)
    int rope;              // rotary positions on q and k; else absolute positions added to the embedding
    rope_fn rotate;        // with rope: which pairs rotate: adjacent (llama), or halves (qwen2: GPT-NeoX style)
    int fused_qkv;         // q, k, v stored as one attn_qkv tensor (gpt2)
    const char *norm_name, *act_name; // "RMSNorm"/"LayerNorm", "SwiGLU"/"GELU" (for info)
    const struct tensor_spec *global, *layer; // the tensors it binds: once, and per layer
    int n_global, n_layer;
    /* its own hyperparameters and options, after the ones every family has */
    tinyllm_status (*read_hparams)(struct tinyllm_model *m, tinyllm_error *err);
} model_family;

/* b starts exactly `offset` elements after a, in the same storage. */
static inline int matrix_follows(matrix a, matrix b, size_t offset) {
    return a.data && b.data && a.type == b.type && b.data == matrix_at(a, offset).data;
}

typedef struct {
    const float *attn_norm_w, *attn_norm_b; // (dim), bias gpt2 only
    matrix wqkv; const float *bqkv;         // gpt2: (3*dim, dim), (3*dim)
    matrix wq, wk, wv;                      // (dim, dim), (kv_dim, dim), (kv_dim, dim)
    const float *bq, *bk, *bv;              // gpt2: slices of bqkv
    matrix wo; const float *bo;             // (dim, dim), (dim)
    const float *ffn_norm_w, *ffn_norm_b;   // (dim)
    matrix w_gate;                          // llama: (ff, dim)
    matrix w_up; const float *b_up;         // (ff, dim), (ff)
    matrix w_down; const float *b_down;     // (dim, ff), (dim)
    int qkv_adjacent;      // wq, wk, wv (and their biases) are one (dim + 2 kv_dim, dim) block
    int gate_up_adjacent;  // llama: w_gate, w_up are one (2 ff, dim) block
} layer_weights;

struct tinyllm_model {
    gguf_file file;
    const model_family *family; // the row of FAMILIES named by general.architecture
    act_kind act;               // the family's activation, or the exact GELU a gpt2 file asks for
    tinyllm_model_info info;
    char name[128];
    int kv_dim; // n_head_kv * head_dim

    matrix tok_embd;                        // (vocab, dim)
    const float *pos_embd;                  // (n_ctx_train, dim): learned positions (sinusoidal: per context)
    layer_weights *layers;                  // (n_layer)
    const float *out_norm_w, *out_norm_b;   // (dim)
    matrix output;                          // (vocab, dim): token_embd when tied
    int expand_f32;                         // the load parameter: every matrix expanded to F32
    int has_stored;                         // some matrix is used in a format other than F32
    int prefill_q8;                         // some matrix's prefill runs an integer GEMM (matmul_takes_q8_act)
    const kernel_ops *kern;                 // the kernel set for this CPU (kernels_select)

    float *arena; // owned F32 copies (converted tensors, sinusoidal table)
    uint8_t *packed;    // owned repacked matrices (WEIGHT_Q4_0_X8, WEIGHT_Q8_0_X8)
    size_t packed_used; // its bytes (counted in the first binding pass)
    size_t packed_extra; // what the repacked layouts hold beyond the file's bytes of the same matrices
    char *names_arena;          // NUL-terminated key and tensor names
    const char **kv_keys;       // (n_kv)
    const char **tensor_names;  // (n_tensors)
    const char **tensor_use;    // (n_tensors) how each is held (tinyllm_tensor_info.in_use)
    tokenizer *tok;
};

/* The weight matrices a decode step reads in full, each once, in forward
 * order, as the model holds them (in the mapping, repacked or expanded):
 * fn(user, data, bytes) for each. The token embedding is one only as the
 * classifier (a decode reads one row of it). */
void model_decode_matrices(const tinyllm_model *m, void (*fn)(void *user, const void *data, size_t bytes),
                           void *user);

/* Loads a model from a GGUF image in memory that outlives the model (the
 * fuzzer's entry point; `name` is used in messages). */
tinyllm_status model_load_buffer(const uint8_t *buf, size_t size, const char *name,
                                 const tinyllm_model_params *params, tinyllm_model **out, tinyllm_error *err);

#endif
