/*
 * tinyllm — a small, inspectable inference engine for decoder-only
 * transformers stored as GGUF v3 (architectures `llama` and `gpt2`).
 *
 * The whole public API is this header. Conventions:
 *  - Functions that can fail return a tinyllm_status (TINYLLM_OK == 0) and,
 *    when `err` is not NULL, fill it with a one-line message that names the
 *    file or argument, the problem and what was expected.
 *  - The library never prints, exits or aborts; it holds no global mutable
 *    state. Objects are freed with the matching *_free (NULL is allowed).
 *  - Names: tinyllm_<object>_<verb> for models, contexts and samplers
 *    (tinyllm_context_prefill); the tokenizer's functions take the model and
 *    are named for what they do (tinyllm_tokenize, tinyllm_detokenize,
 *    tinyllm_token_*, tinyllm_detok_*).
 *
 * Lifetimes and threads:
 *  - A model owns its weights (the mapped file), its tokenizer and every
 *    string it returns (names, pieces, info fields); they live until
 *    tinyllm_model_free. A model must outlive every context made from it.
 *  - A context owns its KV cache, scratch and thread pool. The logits
 *    pointers it returns stay valid until the next prefill, decode, rewind
 *    or free of that context. Tap data is valid only during the callback.
 *  - A model is read-only once loaded: any number of threads may use it at
 *    once (tokenize, detokenize, create contexts, logit lens). A context and
 *    a sampler belong to one thread at a time; different contexts may run
 *    concurrently (each has its own pool; mind the cores).
 *  - OpenBLAS's thread count is process-wide: creating a context sets it to
 *    1 (the context's pool owns the threads) unless blas_threads says
 *    otherwise (tinyllm_context_params).
 *
 * Compatibility: within a major version (the SONAME), functions are only
 * added and struct fields only appended; a field or function that loses its
 * meaning is marked TINYLLM_DEPRECATED (a compiler warning where it is used)
 * and removed at the next major version.
 */
#ifndef TINYLLM_H
#define TINYLLM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version, in this one place (the Makefile reads it from here). */
#define TINYLLM_VERSION_MAJOR 0
#define TINYLLM_VERSION_MINOR 3
#define TINYLLM_VERSION_PATCH 0
#define TINYLLM_STR_(x) #x
#define TINYLLM_XSTR_(x) TINYLLM_STR_(x)
#define TINYLLM_VERSION \
    TINYLLM_XSTR_(TINYLLM_VERSION_MAJOR) "." TINYLLM_XSTR_(TINYLLM_VERSION_MINOR) "." TINYLLM_XSTR_(TINYLLM_VERSION_PATCH)

/* Every function of this header is exported from the shared library; the
 * library's internals are not (built with -fvisibility=hidden and a version
 * script: `nm -D` lists tinyllm_* only). */
#if defined(__GNUC__)
#define TINYLLM_API __attribute__((visibility("default")))
#else
#define TINYLLM_API
#endif

#if defined(__GNUC__)
#define TINYLLM_DEPRECATED(why) __attribute__((deprecated(why)))
#else
#define TINYLLM_DEPRECATED(why)
#endif

/* The library's version ("MAJOR.MINOR.PATCH"), which may differ from the header's
 * TINYLLM_VERSION when a program runs against another build. */
TINYLLM_API const char *tinyllm_version(void);

typedef enum {
    TINYLLM_OK = 0,
    TINYLLM_ERR_IO = 1,           /* cannot open / read / map a file */
    TINYLLM_ERR_FORMAT = 2,       /* not a valid GGUF file, or a corrupt one */
    TINYLLM_ERR_UNSUPPORTED = 3,  /* valid, but an architecture/type we do not run */
    TINYLLM_ERR_MODEL = 4,        /* missing/mis-shaped tensor or metadata key */
    TINYLLM_ERR_TOKENIZER = 5,    /* tokenizer missing, invalid or mismatched */
    TINYLLM_ERR_ARG = 6,          /* bad argument (NULL, out of range, bad UTF-8) */
    TINYLLM_ERR_CONTEXT_FULL = 7, /* tokens would not fit in the context */
    TINYLLM_ERR_NOMEM = 8,        /* allocation failed */
    TINYLLM_ERR_NUMERIC = 9       /* NaN/Inf found by check_tensors */
} tinyllm_status;

typedef struct {
    tinyllm_status code;
    char message[512];
} tinyllm_error;

/* A short name for a status code ("format error", ...). Never NULL. */
TINYLLM_API const char *tinyllm_status_name(tinyllm_status code);

/* Copies len bytes of s into out (cap bytes, always NUL-terminated) fit for
 * one line of a message or a terminal: control characters (C0, DEL, C1),
 * NUL and invalid UTF-8 become \xNN; valid UTF-8 is kept; a string that does
 * not fit is cut at a character boundary and ends in "...". Every message in
 * tinyllm_error has been through it. Returns out. */
TINYLLM_API const char *tinyllm_printable(const char *s, size_t len, char *out, size_t cap);

/* ---------------------------------------------------------------- model -- */

typedef struct tinyllm_model tinyllm_model;

typedef struct {
    int check_tensors; /* scan every weight for NaN/Inf while loading */
    int no_mmap;       /* read the file into private memory instead of mapping it */
    int skip_tokenizer; /* token ids only (benchmarks): no tokenizer is built, saving its
                           memory; the tokenizer functions then fail or return -1/NULL */
    /* Deprecated: no effect since 0.3.0 (F16 matrices are used in place by
     * default). Kept, with a compiler warning where it is used, so programs
     * that set it still build; removed at the next major version. */
    int keep_f16 TINYLLM_DEPRECATED("no effect since 0.3.0: F16 matrices are used in place");
    int expand_f32;    /* expand every weight matrix to F32 at load, as engines without
                          quantized kernels do: F32 arithmetic throughout, at 2x (F16),
                          3.8x (Q8_0) or 7x (Q4_0) the memory and bytes read per token.
                          Default 0: matrices are used in their stored format: F32 and F16
                          in place from the mapping, Q8_0 and Q4_0 repacked 8 rows at a time
                          (same size); quantized products quantize the activations to 8 bits
                          per block of 32 and compute integer block dot products. */
} tinyllm_model_params;

TINYLLM_API tinyllm_model_params tinyllm_model_default_params(void);

/* Loads a GGUF model. By default the file is memory-mapped and F32 weights
 * are used in place. While a model is loaded, deleting the file or replacing
 * it by rename is safe (the mapping keeps the old contents); truncating or
 * rewriting it in place is not: pages past the new end fault with SIGBUS, as
 * in every mmap-based engine. Use no_mmap to be immune to that. */
TINYLLM_API tinyllm_status tinyllm_model_load(const char *path, const tinyllm_model_params *params,
                                              tinyllm_model **out, tinyllm_error *err);
TINYLLM_API void tinyllm_model_free(tinyllm_model *model);

typedef enum { TINYLLM_POS_ROPE = 0, TINYLLM_POS_LEARNED = 1, TINYLLM_POS_SINUSOIDAL = 2 } tinyllm_pos_kind;

typedef struct {
    const char *architecture; /* "llama" or "gpt2" */
    const char *name;         /* general.name, or "" */
    int n_vocab;
    int n_ctx_train;          /* context_length from the file */
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int n_ff;
    int head_dim;
    float norm_eps;
    float rope_theta;         /* llama only */
    tinyllm_pos_kind positions;
    int tied_output;          /* classifier shares token_embd */
    int64_t n_params;         /* parameters in the file's tensors (tied counted once) */
    uint64_t file_size;
    int file_type;            /* general.file_type, or -1 when absent */
    uint64_t weight_bytes;    /* memory the weights occupy as loaded (as stored or repacked, or F32 expanded) */
    const char *kernels;      /* the kernel set chosen for this CPU at load: "avx512vnni", "avx512", "avx2" or
                                 "scalar" (TINYLLM_ISA=NAME forces a set the CPU has) */
    const char *norm;         /* "RMSNorm" or "LayerNorm" */
    const char *activation;   /* the feed-forward's: "SwiGLU" or "GELU" */
} tinyllm_model_info;

TINYLLM_API tinyllm_status tinyllm_model_info_get(const tinyllm_model *model, tinyllm_model_info *out,
                                                  tinyllm_error *err);

/* Writes a copy of the GGUF model in_path to out_path with its weight
 * matrices in `format`: "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1",
 * "q5_0", "q5_1", "iq4_nl", "q4_k", "q5_k", "q6_k" (a matrix whose rows the
 * block does not divide falls back as llama.cpp's do, to F16 at last), or
 * llama.cpp's presets "q4_k_m" and "q5_k_m" (its per-tensor choices); any
 * case. Norms, biases and
 * position tables are written F32; every metadata entry is copied (the
 * tokenizer included) except general.file_type, which is set, and
 * general.quantization_version, added for quantized files. Sources may be
 * in any format the engine runs (docs/formats.md). The file appears only when complete (written as
 * out_path.part, then renamed). */
TINYLLM_API tinyllm_status tinyllm_quantize(const char *in_path, const char *out_path, const char *format,
                                            tinyllm_error *err);

/* Tensor table (file order) and metadata, for `tinyllm info` and tools. */
TINYLLM_API int tinyllm_model_n_tensors(const tinyllm_model *model);
typedef struct {
    const char *name;
    const char *type;   /* "F32", "F16", ... */
    int n_dims;
    int64_t dims[4];    /* GGUF order: dims[0] is the row length */
    uint64_t n_bytes;
    const char *in_use; /* how the engine holds it: its format's name, e.g. "F16", "Q4_K" (in
                           place, as stored), "Q4_0x8" / "Q8_0x8" (repacked 8 rows at a time), "F32
                           (expanded)" (converted at load), or "unused" (the engine does not
                           read it) */
} tinyllm_tensor_info;
TINYLLM_API tinyllm_status tinyllm_model_tensor(const tinyllm_model *model, int i, tinyllm_tensor_info *out,
                                                tinyllm_error *err);
/* out (n values: the tensor's element count) = tensor i's values as F32,
 * read from the file as its format defines them (docs/formats.md): what a
 * dequantizing reader must produce, bit for bit, whatever the engine holds
 * in memory. TINYLLM_ERR_UNSUPPORTED for types matrices cannot use. */
TINYLLM_API tinyllm_status tinyllm_model_tensor_f32(const tinyllm_model *model, int i, float *out, size_t n,
                                                    tinyllm_error *err);

TINYLLM_API int tinyllm_model_n_meta(const tinyllm_model *model);
/* Key i and its value rendered as short text (arrays summarised). */
TINYLLM_API tinyllm_status tinyllm_model_meta(const tinyllm_model *model, int i, const char **key,
                                              char *value, size_t value_cap, tinyllm_error *err);

/* ------------------------------------------------------------ tokenizer -- */

TINYLLM_API int tinyllm_token_bos(const tinyllm_model *model);
TINYLLM_API int tinyllm_token_eos(const tinyllm_model *model);
/* Where the tokenizer came from: SentencePiece's "embedded .model" or
 * "rebuilt from tokenizer.ggml arrays", or "byte-level BPE, pre-tokenizer
 * NAME". */
TINYLLM_API const char *tinyllm_tokenizer_source(const tinyllm_model *model);

/* Encodes UTF-8 text (len bytes; invalid UTF-8 is an error). With add_bos
 * the BOS id is prepended (a byte-level BPE model's only when its file's
 * tokenizer.ggml.add_bos_token says so: GPT-2's adds none; and its EOS
 * appended when tokenizer.ggml.add_eos_token says so). Control tokens
 * written literally in the text become their ids. Writes at most cap ids; *n_out is the full count,
 * so a call with cap 0 measures. Returns TINYLLM_ERR_ARG when cap is short. */
TINYLLM_API tinyllm_status tinyllm_tokenize(const tinyllm_model *model, const char *text, size_t len, int add_bos,
                                            int *tokens, int cap, int *n_out, tinyllm_error *err);

/* The raw piece of a token ("▁the", "<0x0A>"), or NULL when out of range. */
TINYLLM_API const char *tinyllm_token_piece(const tinyllm_model *model, int token);
/* The bytes a token stands for in text, as it would print alone: a
 * SentencePiece ▁ as a space and a byte piece <0xAB> as its byte, a
 * byte-level BPE token's characters mapped back to bytes; a control or
 * unknown token its piece text ("<s>", "<|endoftext|>"). The bytes may be
 * part of a UTF-8 character. Returns their count (out holds them and a NUL
 * when cap allows), or -1 for an id out of range or a model without its
 * tokenizer. */
TINYLLM_API int tinyllm_token_bytes(const tinyllm_model *model, int token, char *out, size_t cap);

/* Streaming detokenizer: turns ids into bytes as they come, keeps spaces
 * (SentencePiece's ▁), never splits a UTF-8 character (an incomplete one is
 * held back until it completes or becomes invalid), drops control tokens. */
typedef struct {
    unsigned char pending[4];
    int n_pending;
    int at_start; /* strip the dummy-prefix space of the very first piece */
} tinyllm_detok;

TINYLLM_API void tinyllm_detok_init(tinyllm_detok *d, int strip_leading_space);
/* A buffer of this many bytes always holds what one push or flush writes
 * (pieces are at most 256 bytes, plus held-back bytes). */
#define TINYLLM_DETOK_MAX 1024

/* Writes the text `token` completes into out (at most cap-1 bytes + NUL);
 * returns the number of bytes written, or -1 (with err) on a bad token or a
 * too small buffer (TINYLLM_DETOK_MAX is always enough). */
TINYLLM_API int tinyllm_detok_push(const tinyllm_model *model, tinyllm_detok *d, int token, char *out, size_t cap,
                                   tinyllm_error *err);
/* Flushes bytes still held back (as U+FFFD when incomplete). */
TINYLLM_API int tinyllm_detok_flush(tinyllm_detok *d, char *out, size_t cap);

/* Whole-sequence decode, like SentencePiece's DecodeIds. */
TINYLLM_API tinyllm_status tinyllm_detokenize(const tinyllm_model *model, const int *tokens, int n, char *out,
                                              size_t cap, size_t *len_out, tinyllm_error *err);

/* -------------------------------------------------------------- context -- */

typedef struct tinyllm_context tinyllm_context;

typedef struct {
    int n_ctx;      /* KV cache length in tokens; 0 = the model's context_length */
    int n_threads;  /* threads for the matrix products; 0 = all cores */
    int logits_all; /* keep logits for every position of a prefill (perplexity) */
    int blas_threads; /* OpenBLAS's (process-wide) thread count, set at creation: 0 = 1 (the
                         context's pool splits the work; OpenBLAS runs inside each part),
                         N > 0 = N, -1 = leave OpenBLAS's setting alone */
} tinyllm_context_params;

TINYLLM_API tinyllm_context_params tinyllm_context_default_params(void);

TINYLLM_API tinyllm_status tinyllm_context_create(const tinyllm_model *model, const tinyllm_context_params *params,
                                                  tinyllm_context **out, tinyllm_error *err);
TINYLLM_API void tinyllm_context_free(tinyllm_context *ctx);

TINYLLM_API int tinyllm_context_n_ctx(const tinyllm_context *ctx);
/* Bytes of the KV cache of a context of n_ctx tokens (0: the model's
 * context_length): keys and values, F32, for every layer and position:
 * 2 x n_layer x n_ctx x n_head_kv x head_dim x 4. 0 for a NULL model. */
TINYLLM_API uint64_t tinyllm_model_kv_bytes(const tinyllm_model *model, int n_ctx);

/* Tokens already in the KV cache (the position of the next token). */
TINYLLM_API int tinyllm_context_n_past(const tinyllm_context *ctx);
/* Forget the cache (keep the first n_keep tokens; 0 clears it). */
TINYLLM_API tinyllm_status tinyllm_context_rewind(tinyllm_context *ctx, int n_keep, tinyllm_error *err);

/* Context shift: makes room in a full context by forgetting the n_discard
 * tokens after the first n_keep; the tokens after them move down, as if the
 * forgotten ones had never been there. tokens holds the n_past ids now in
 * the cache (the context does not keep them). Exact for every family: the
 * moved tokens are run again at their new positions, so the cache then equals
 * a fresh prefill of the kept tokens (costs one prefill of n_past - n_keep -
 * n_discard tokens), and the logits are those of the last kept token. */
TINYLLM_API tinyllm_status tinyllm_context_shift(tinyllm_context *ctx, const int *tokens, int n_keep, int n_discard,
                                                 tinyllm_error *err);

/* Runs n tokens at positions n_past.. through the whole model at once
 * (batched: one sgemm per projection), appending them to the KV cache. */
TINYLLM_API tinyllm_status tinyllm_context_prefill(tinyllm_context *ctx, const int *tokens, int n,
                                                   tinyllm_error *err);
/* One token against the KV cache (the generation loop's step). */
TINYLLM_API tinyllm_status tinyllm_context_decode(tinyllm_context *ctx, int token, tinyllm_error *err);

/* Logits (n_vocab) after the last token of the last prefill/decode; NULL
 * before the first. Valid until the context's next prefill, decode, rewind
 * or free. */
TINYLLM_API const float *tinyllm_context_logits(const tinyllm_context *ctx);
/* With logits_all: logits of token i of the last prefill (0 <= i < n). */
TINYLLM_API const float *tinyllm_context_logits_at(const tinyllm_context *ctx, int i);

/* The memory a decode step must read, read once as fast as the machine
 * allows, for a decode's bandwidth bound (tinyllm bench): every weight
 * matrix a decode reads, where the engine holds it (the file's mapping or
 * the copy made at load), each split across the context's threads as a
 * product splits it, with plain wide loads and no arithmetic. *bytes = the
 * bytes read. The caller times the call: a decode's tokens/s x bytes per
 * token over bytes/seconds is the fraction of the bound it reached. */
TINYLLM_API tinyllm_status tinyllm_context_read_weights(tinyllm_context *ctx, uint64_t *bytes, tinyllm_error *err);

/* ----------------------------------------------------------------- taps -- */

/* Named tap points: the forward pass hands each intermediate tensor to a
 * callback the caller installs. With no callback the cost is one branch per
 * tap. Names and shapes, in forward order (T = tokens in this call, L =
 * pos0 + T visible keys, C = n_embd, KV = n_head_kv * head_dim, H = n_head):
 *
 *   embed              (T, C)      token embeddings
 *   pos                (T, C)      after absolute positions are added (gpt2 only)
 *   N.attn_norm        (T, C)      layer N's attention input norm
 *   N.q_pre_rope       (T, C)      queries before RoPE (rotary families only)
 *   N.k_pre_rope       (T, KV)     keys before RoPE (rotary families only)
 *   N.q                (T, C)      queries, after RoPE where it applies
 *   N.k                (T, KV)     keys, after RoPE where it applies
 *   N.v                (T, KV)     values
 *   N.attn_scores      (H, T, L)   scaled by 1/sqrt(head_dim), masked (-inf), pre-softmax
 *   N.attn_probs       (H, T, L)   softmax rows; 0 above the diagonal
 *   N.attn_out         (T, C)      heads concatenated, before the output projection
 *   N.attn_proj        (T, C)      after the output projection (+ bias)
 *   N.resid_attn       (T, C)      residual stream after attention
 *   N.ffn_norm         (T, C)      feed-forward input norm
 *   N.ffn_hidden       (T, n_ff)   after the activation (GELU) or gating (SwiGLU)
 *   N.ffn_out          (T, C)      after the down projection (+ bias)
 *   N.resid_ffn        (T, C)      residual stream after the layer
 *   final_norm         (R, C)      R = T with logits_all, else 1 (the last token)
 *   logits             (R, n_vocab)
 *
 * Row t of a tap is the token at position pos0 + t (final_norm/logits: the
 * last R tokens). Data is valid only during the callback. */
typedef struct {
    const char *name;  /* full name: "embed", "3.attn_probs", "logits" */
    const char *kind;  /* the name without its layer: "attn_probs" */
    int layer;         /* -1 outside the layers */
    int pos0;          /* position of row 0 */
    int n_dims;        /* 2 or 3 */
    int64_t shape[3];
    const float *data;
    float *writable;   /* hooks only (tinyllm_context_set_hook): data, which the hook may change in
                          place; NULL for taps, and for attn_scores (already used up) */
} tinyllm_tap;

typedef void (*tinyllm_tap_fn)(const tinyllm_tap *tap, void *user);

/* Installs (or with fn NULL removes) the tap callback of a context. */
TINYLLM_API tinyllm_status tinyllm_context_set_tap(tinyllm_context *ctx, tinyllm_tap_fn fn, void *user,
                                                   tinyllm_error *err);

/* Installs (or with fn NULL removes) a hook: a tap callback that may change
 * the tensor it is handed, through tap->writable, and the forward pass goes
 * on from what it leaves (activation patching, steering vectors, ablations
 * of any kind). It replaces a tap callback and vice versa. At each point the
 * buffer is the one the pass reads next:
 *   embed, pos, N.resid_attn, N.resid_ffn   the residual stream itself
 *   N.attn_norm, N.ffn_norm, final_norm     the inputs of the next products
 *   N.q_pre_rope, N.k_pre_rope              q and k before RoPE rotates them
 *   N.q, N.k, N.v                           after RoPE; k and v are the rows of
 *                                           the KV cache: a write stays there,
 *                                           and every later token attends to it
 *   N.attn_probs                            attention is recomputed from the
 *                                           written probabilities (attn_out)
 *   N.attn_out                              per head (head h: columns
 *                                           h*head_dim ..), before the projection
 *   N.attn_proj, N.ffn_out                  before the residual add
 *   N.ffn_hidden                            the rows the down projection reads
 *   logits                                  what the caller and sampler see
 * N.attn_scores is read-only (writable NULL). Costs nothing without a hook. */
TINYLLM_API tinyllm_status tinyllm_context_set_hook(tinyllm_context *ctx, tinyllm_tap_fn fn, void *user,
                                                    tinyllm_error *err);

/* Tap kinds in forward order ("embed", "pos", "attn_norm", ...); NULL past the end. */
TINYLLM_API const char *tinyllm_tap_kind(int i);

/* Logit lens: runs one residual-stream vector x (n_embd) through the
 * model's final norm and classifier into logits (n_vocab). */
TINYLLM_API tinyllm_status tinyllm_model_logit_lens(const tinyllm_model *model, const float *x, float *logits,
                                                    tinyllm_error *err);

/* Head ablation: with on != 0, head `head` of layer `layer` contributes zeros
 * to attn_out (before the output projection) in every later forward pass;
 * on == 0 restores it. layer -1 with on == 0 clears every ablation. */
TINYLLM_API tinyllm_status tinyllm_context_ablate_head(tinyllm_context *ctx, int layer, int head, int on,
                                                       tinyllm_error *err);

/* Layer ablation: with on != 0, layer `layer` is skipped in every later
 * forward pass (the residual stream passes it unchanged: its attention and
 * feed-forward add nothing, and its keys and values are not written);
 * on == 0 restores it. layer -1 with on == 0 clears every layer ablation. */
TINYLLM_API tinyllm_status tinyllm_context_ablate_layer(tinyllm_context *ctx, int layer, int on, tinyllm_error *err);

/* Experiments: one piece of the model switched off or changed, to see why
 * it is there. They apply to every forward pass after they are set (rewind
 * to rerun a prompt under them); an experiment never changes the weights.
 *   no-scale            scores = q.k, without the 1/sqrt(head_dim) scale
 *   attn-scale=F        scores = F * q.k (any finite F)
 *   no-mask             prefill: every token attends to every key of its
 *                       batch, the future too (decode then differs from
 *                       prefill: a decoded token has no future to see)
 *   mask-after-softmax  softmax over the future too, then its weights set to
 *                       0 (rows no longer sum to 1)
 *   naive-softmax       exp(s) / sum exp(s) without subtracting the row's
 *                       max: large scores overflow to inf/NaN
 *   no-positions        no positional information: no position embedding
 *                       (no "pos" tap), no RoPE
 *   no-norm             every norm (attention, feed-forward, final) the
 *                       identity: the residual stream goes in as it is */
enum {
    TINYLLM_EXP_NO_SCALE = 1 << 0,
    TINYLLM_EXP_ATTN_SCALE = 1 << 1,
    TINYLLM_EXP_NO_MASK = 1 << 2,
    TINYLLM_EXP_MASK_AFTER_SOFTMAX = 1 << 3,
    TINYLLM_EXP_NAIVE_SOFTMAX = 1 << 4,
    TINYLLM_EXP_NO_POSITIONS = 1 << 5,
    TINYLLM_EXP_NO_NORM = 1 << 6,
};

typedef struct {
    unsigned flags;   /* TINYLLM_EXP_*; 0: the model as it is */
    float attn_scale; /* the factor of TINYLLM_EXP_ATTN_SCALE */
} tinyllm_experiments;

/* "no-scale,attn-scale=0.5,..." (names above, comma-separated; "" or
 * "none": no experiment) into *out. Unknown names, a bad factor and
 * combinations that contradict each other (no-scale with attn-scale,
 * no-mask with mask-after-softmax) are errors. */
TINYLLM_API tinyllm_status tinyllm_experiments_parse(const char *spec, tinyllm_experiments *out, tinyllm_error *err);
/* The experiments as text ("no-mask,attn-scale=0.5", "none"), NUL-terminated
 * in buf (cut to cap); the length it needs. */
TINYLLM_API size_t tinyllm_experiments_describe(const tinyllm_experiments *e, char *buf, size_t cap);
/* Sets a context's experiments (NULL or flags 0: none). */
TINYLLM_API tinyllm_status tinyllm_context_set_experiments(tinyllm_context *ctx, const tinyllm_experiments *e,
                                                           tinyllm_error *err);

/* ------------------------------------------------------------- sampling -- */

typedef struct tinyllm_sampler tinyllm_sampler;

typedef struct {
    float temperature;    /* 0 = greedy (argmax) */
    int top_k;            /* 0 = off */
    float top_p;          /* 1 = off; (0, 1] */
    float min_p;          /* 0 = off; [0, 1] */
    float repeat_penalty; /* 1 = off; > 0 */
    int repeat_last_n;    /* how many recent tokens the penalty looks at */
    uint64_t seed;
} tinyllm_sampler_params;

TINYLLM_API tinyllm_sampler_params tinyllm_sampler_default_params(void);

/* Checks every setting without creating anything: a bad one is
 * TINYLLM_ERR_ARG with its flag's name (--temp, --top-p, ...). */
TINYLLM_API tinyllm_status tinyllm_sampler_params_check(const tinyllm_sampler_params *params, tinyllm_error *err);

/* Checks every parameter (as tinyllm_sampler_params_check); a bad one is
 * TINYLLM_ERR_ARG with its name. */
TINYLLM_API tinyllm_status tinyllm_sampler_create(const tinyllm_sampler_params *params, int n_vocab,
                                                  tinyllm_sampler **out, tinyllm_error *err);
TINYLLM_API void tinyllm_sampler_free(tinyllm_sampler *s);
/* Chooses the next token from logits (n_vocab); history (may be NULL) feeds
 * the repetition penalty. Never modifies logits. Total over all inputs: a NaN
 * logit is never chosen (it counts as -inf); +inf logits share all the
 * probability equally (softmax's limit). Returns the id, or -1 (with err) on bad
 * arguments or when no logit is above -inf (nothing can be chosen). Callers
 * that want non-finite logits reported should check them first (the CLI
 * does). */
TINYLLM_API int tinyllm_sampler_sample(tinyllm_sampler *s, const float *logits, const int *history, int n_history,
                                       tinyllm_error *err);

#ifdef __cplusplus
}
#endif

#endif /* TINYLLM_H */
