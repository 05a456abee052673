/* Model loading: read hyperparameters, bind every tensor the architecture
 * needs by name (checking type and shape), expand non-F32 weights, build the
 * tokenizer. The binding is table-driven: one row per tensor. */
#include "model.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "error.h"
#include "kernels.h"
#include "names.h"

/* ------------------------------------------------- binding tables -- */

typedef enum { D_1, D_EMBD, D_VOCAB, D_FF, D_KV, D_QKV, D_CTX } dim_sym;

typedef struct tensor_spec {
    const char *name;  /* per-layer names contain %d */
    dim_sym d0, d1;    /* GGUF order: d0 is the row length (the "in" size) */
    int optional;
    int is_matrix;     /* the slot is a `matrix` (may stay F16), else a const float * */
    size_t offset;     /* into tinyllm_model, or layer_weights when per-layer */
} tensor_spec;

/* slots: vectors (norm weights, biases, position tables) and matrices */
#define M(f) 0, offsetof(struct tinyllm_model, f)
#define L(f) 0, offsetof(layer_weights, f)
#define MM(f) 1, offsetof(struct tinyllm_model, f)
#define LM(f) 1, offsetof(layer_weights, f)

static const tensor_spec LLAMA_GLOBAL[] = {
    {TN_TOKEN_EMBD, D_EMBD, D_VOCAB, 0, MM(tok_embd)},
    {TN_OUTPUT_NORM, D_EMBD, D_1, 0, M(out_norm_w)},
    {TN_OUTPUT, D_EMBD, D_VOCAB, 1, MM(output)},
};
static const tensor_spec LLAMA_LAYER[] = {
    {TN_ATTN_NORM, D_EMBD, D_1, 0, L(attn_norm_w)}, {TN_ATTN_Q, D_EMBD, D_EMBD, 0, LM(wq)},
    {TN_ATTN_K, D_EMBD, D_KV, 0, LM(wk)},            {TN_ATTN_V, D_EMBD, D_KV, 0, LM(wv)},
    {TN_ATTN_OUT, D_EMBD, D_EMBD, 0, LM(wo)},        {TN_FFN_NORM, D_EMBD, D_1, 0, L(ffn_norm_w)},
    {TN_FFN_GATE, D_EMBD, D_FF, 0, LM(w_gate)},      {TN_FFN_UP, D_EMBD, D_FF, 0, LM(w_up)},
    {TN_FFN_DOWN, D_FF, D_EMBD, 0, LM(w_down)},
};
static const tensor_spec QWEN2_LAYER[] = {
    {TN_ATTN_NORM, D_EMBD, D_1, 0, L(attn_norm_w)}, {TN_ATTN_Q, D_EMBD, D_EMBD, 0, LM(wq)},
    {TN_ATTN_Q_B, D_EMBD, D_1, 0, L(bq)},            {TN_ATTN_K, D_EMBD, D_KV, 0, LM(wk)},
    {TN_ATTN_K_B, D_KV, D_1, 0, L(bk)},              {TN_ATTN_V, D_EMBD, D_KV, 0, LM(wv)},
    {TN_ATTN_V_B, D_KV, D_1, 0, L(bv)},              {TN_ATTN_OUT, D_EMBD, D_EMBD, 0, LM(wo)},
    {TN_FFN_NORM, D_EMBD, D_1, 0, L(ffn_norm_w)},   {TN_FFN_GATE, D_EMBD, D_FF, 0, LM(w_gate)},
    {TN_FFN_UP, D_EMBD, D_FF, 0, LM(w_up)},          {TN_FFN_DOWN, D_FF, D_EMBD, 0, LM(w_down)},
};
/* gpt2 biases are optional, each on its own: models trained with bias=False
 * (nanoGPT's option) store none, and an absent bias adds nothing. */
static const tensor_spec GPT2_GLOBAL[] = {
    {TN_TOKEN_EMBD, D_EMBD, D_VOCAB, 0, MM(tok_embd)},
    {TN_OUTPUT_NORM, D_EMBD, D_1, 0, M(out_norm_w)},
    {TN_OUTPUT_NORM_B, D_EMBD, D_1, 1, M(out_norm_b)},
    {TN_OUTPUT, D_EMBD, D_VOCAB, 1, MM(output)},
};
/* any family with absolute positions, when they are learned */
static const tensor_spec LEARNED_POSITIONS = {TN_POS_EMBD, D_EMBD, D_CTX, 0, M(pos_embd)};
static const tensor_spec GPT2_LAYER[] = {
    {TN_ATTN_NORM, D_EMBD, D_1, 0, L(attn_norm_w)}, {TN_ATTN_NORM_B, D_EMBD, D_1, 1, L(attn_norm_b)},
    {TN_ATTN_QKV, D_EMBD, D_QKV, 0, LM(wqkv)},       {TN_ATTN_QKV_B, D_QKV, D_1, 1, L(bqkv)},
    {TN_ATTN_OUT, D_EMBD, D_EMBD, 0, LM(wo)},        {TN_ATTN_OUT_B, D_EMBD, D_1, 1, L(bo)},
    {TN_FFN_NORM, D_EMBD, D_1, 0, L(ffn_norm_w)},   {TN_FFN_NORM_B, D_EMBD, D_1, 1, L(ffn_norm_b)},
    {TN_FFN_UP, D_EMBD, D_FF, 0, LM(w_up)},          {TN_FFN_UP_B, D_FF, D_1, 1, L(b_up)},
    {TN_FFN_DOWN, D_FF, D_EMBD, 0, LM(w_down)},      {TN_FFN_DOWN_B, D_EMBD, D_1, 1, L(b_down)},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------- numeric conversion -- */

/* Expands one tensor's data to F32 (dst holds n_elements floats). F32 and
 * F16 data may sit at any address in a file: read bytewise when misaligned. */
static void to_f32(const kernel_ops *k, float *dst, const gguf_tensor *t) {
    const uint8_t *src = t->data;
    uint64_t n = t->n_elements;
    if (t->type == GGML_TYPE_F32) {
        memcpy(dst, src, n * 4);
    } else if (t->type == GGML_TYPE_F16 && ((uintptr_t)src & 1)) {
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = f16_to_f32(h);
        }
    } else {
        matrix w = {src, (int)t->type};
        matrix_rows(k, dst, w, (long)t->dims[0], 0, (long)(n / t->dims[0]));
    }
}

/* the formats of the weight-format table that files hold */
static int type_is_runnable(uint32_t type) {
    const weight_format *f = weight_format_of((int)type);
    return f && f->in_files;
}

/* F32 data that is 4-byte aligned is used in place (zero copy). */
static int needs_copy(const gguf_tensor *t) {
    return t->type != GGML_TYPE_F32 || ((uintptr_t)t->data & 3) != 0;
}

/* ------------------------------------------------- hyperparameters -- */

static tinyllm_status key_error(const tinyllm_model *m, const char *key, int rc, const char *expected,
                                tinyllm_error *err) {
    if (rc == -1)
        return set_error(err, TINYLLM_ERR_MODEL, "%s: missing metadata key '%s' (required for architecture %s)",
                         m->file.path, key, m->info.architecture);
    const gguf_kv *kv = gguf_find_kv(&m->file, key);
    return set_error(err, TINYLLM_ERR_MODEL, "%s: metadata key '%s' has type %s (expected %s)", m->file.path, key,
                     gguf_value_type_name(kv ? kv->type : 99), expected);
}

/* Reads an integer hyperparameter "<arch>.<suffix>" within [lo, hi]. */
static tinyllm_status get_hparam(const tinyllm_model *m, const char *fmt, int optional, int64_t def, int64_t lo,
                                 int64_t hi, int *out, tinyllm_error *err) {
    char key[128];
    snprintf(key, sizeof key, fmt, m->info.architecture);
    int64_t v = def;
    int rc = gguf_get_int(&m->file, key, &v);
    if (rc == -1 && optional) rc = 0;
    if (rc) return key_error(m, key, rc, "an integer", err);
    if (v < lo || v > hi)
        return set_error(err, TINYLLM_ERR_MODEL, "%s: metadata '%s' = %lld is out of range (expected %lld to %lld)",
                         m->file.path, key, (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return TINYLLM_OK;
}

static tinyllm_status get_fparam(const tinyllm_model *m, const char *fmt, int optional, double def, double lo,
                                 double hi, float *out, tinyllm_error *err) {
    char key[128];
    snprintf(key, sizeof key, fmt, m->info.architecture);
    double v = def;
    int rc = gguf_get_float(&m->file, key, &v);
    if (rc == -1 && optional) rc = 0;
    if (rc) return key_error(m, key, rc, "a number", err);
    if (!(v >= lo && v <= hi))
        return set_error(err, TINYLLM_ERR_MODEL, "%s: metadata '%s' = %g is out of range (expected %g to %g)",
                         m->file.path, key, v, lo, hi);
    *out = (float)v;
    return TINYLLM_OK;
}

/* The rotary families' own hyperparameters (llama, qwen2): grouped-query
 * heads, the RMS epsilon, the RoPE base; rotary over the whole head. */
static tinyllm_status read_rotary_hparams(tinyllm_model *m, tinyllm_error *err) {
    tinyllm_model_info *h = &m->info;
    const char *path = m->file.path;
    tinyllm_status st;
    if ((st = get_hparam(m, KEYF_HEAD_COUNT_KV, 1, h->n_head, 1, h->n_head, &h->n_head_kv, err))) return st;
    if (h->n_head % h->n_head_kv)
        return set_error(err, TINYLLM_ERR_MODEL, "%s: head_count %d is not a multiple of head_count_kv %d", path,
                         h->n_head, h->n_head_kv);
    if ((st = get_fparam(m, KEYF_RMS_EPS, 0, 0, 0, 1, &h->norm_eps, err))) return st;
    if ((st = get_fparam(m, KEYF_ROPE_FREQ_BASE, 1, 10000.0, 1.0, 1e12, &h->rope_theta, err))) return st;
    int rope_dims = h->head_dim;
    if ((st = get_hparam(m, KEYF_ROPE_DIMS, 1, h->head_dim, 1, 1 << 16, &rope_dims, err))) return st;
    if (rope_dims != h->head_dim)
        return set_error(err, TINYLLM_ERR_UNSUPPORTED,
                         "%s: rope.dimension_count %d differs from the head size %d (partial rotary "
                         "embedding is not supported)",
                         path, rope_dims, h->head_dim);
    if (h->head_dim % 2)
        return set_error(err, TINYLLM_ERR_MODEL, "%s: head size %d is odd (RoPE needs pairs)", path, h->head_dim);
    h->positions = TINYLLM_POS_ROPE;
    return TINYLLM_OK;
}

/* A string option of the file: 0 and *which = the index of its value in
 * `values` (NULL-terminated), or `def` when the key is absent. */
static tinyllm_status read_choice(const tinyllm_model *m, const char *key, const char *const *values, int def,
                                  int *which, tinyllm_error *err) {
    gguf_str v;
    int rc = gguf_get_string(&m->file, key, &v);
    *which = def;
    if (rc == -1) return TINYLLM_OK;
    if (rc) return key_error(m, key, rc, "a string", err);
    for (int i = 0; values[i]; i++)
        if (gguf_str_eq(v, values[i])) {
            *which = i;
            return TINYLLM_OK;
        }
    char shown[48];
    return set_error(err, TINYLLM_ERR_MODEL, "%s: %s = '%s' (expected \"%s\" or \"%s\")", m->file.path, key,
                     tinyllm_printable(v.ptr, v.len, shown, sizeof shown), values[0], values[1]);
}

/* gpt2's own: the LayerNorm epsilon, and the project's two options (keys in
 * names.h): learned or sinusoidal positions, GPT-2's tanh GELU or the exact
 * one (nanoGPT's and PyTorch's nn.GELU() default). */
static tinyllm_status read_gpt2_hparams(tinyllm_model *m, tinyllm_error *err) {
    tinyllm_model_info *h = &m->info;
    static const char *const POSITIONS[] = {"learned", "sinusoidal", NULL}, *const GELUS[] = {"tanh", "erf", NULL};
    tinyllm_status st;
    h->n_head_kv = h->n_head;
    if ((st = get_fparam(m, KEYF_NORM_EPS, 0, 0, 0, 1, &h->norm_eps, err))) return st;
    int pos, gelu;
    if ((st = read_choice(m, KEY_POSITION_ENCODING, POSITIONS, 0, &pos, err))) return st;
    if ((st = read_choice(m, KEY_GELU, GELUS, 0, &gelu, err))) return st;
    h->positions = pos ? TINYLLM_POS_SINUSOIDAL : TINYLLM_POS_LEARNED;
    if (gelu) m->act = ACT_GELU_ERF, h->activation = "GELU (erf)";
    return TINYLLM_OK;
}

/* The families: name, norm, activation, positions, storage, their tensors
 * and their own hyperparameters. */
static const model_family FAMILIES[] = {
    {"llama", NORM_RMS, ACT_SWIGLU, 1, rope_forward, 0, "RMSNorm", "SwiGLU", LLAMA_GLOBAL, LLAMA_LAYER,
     COUNT(LLAMA_GLOBAL), COUNT(LLAMA_LAYER), read_rotary_hparams},
    {"gpt2", NORM_LAYER, ACT_GELU, 0, NULL, 1, "LayerNorm", "GELU", GPT2_GLOBAL, GPT2_LAYER, COUNT(GPT2_GLOBAL),
     COUNT(GPT2_LAYER), read_gpt2_hparams},
    /* llama's block with biases on q, k and v, and q/k stored for the
     * rotate-half RoPE (llama.cpp's converter leaves Hugging Face's order) */
    {"qwen2", NORM_RMS, ACT_SWIGLU, 1, rope_halves_forward, 0, "RMSNorm", "SwiGLU", LLAMA_GLOBAL, QWEN2_LAYER,
     COUNT(LLAMA_GLOBAL), COUNT(QWEN2_LAYER), read_rotary_hparams},
};
#define N_FAMILIES (sizeof FAMILIES / sizeof FAMILIES[0])

/* The family named by general.architecture, the hyperparameters every
 * family has, then the family's own. */
static tinyllm_status read_hparams(tinyllm_model *m, tinyllm_error *err) {
    tinyllm_model_info *h = &m->info;
    const char *path = m->file.path;
    gguf_str arch;
    int rc = gguf_get_string(&m->file, KEY_ARCHITECTURE, &arch);
    if (rc == -1)
        return set_error(err, TINYLLM_ERR_MODEL,
                         "%s: missing metadata key '%s' (expected \"llama\", \"gpt2\" or \"qwen2\")", path,
                         KEY_ARCHITECTURE);
    if (rc) return key_error(m, KEY_ARCHITECTURE, rc, "a string", err);
    size_t a = 0;
    while (a < N_FAMILIES && !gguf_str_eq(arch, FAMILIES[a].name)) a++;
    if (a == N_FAMILIES) {
        char shown[72];
        return set_error(err, TINYLLM_ERR_UNSUPPORTED,
                         "%s: architecture '%s' is not supported (expected \"llama\", \"gpt2\" or \"qwen2\")", path,
                         tinyllm_printable(arch.ptr, arch.len, shown, sizeof shown));
    }
    m->family = &FAMILIES[a];
    m->act = m->family->act;
    h->architecture = m->family->name;
    h->norm = m->family->norm_name;
    h->activation = m->family->act_name;
    gguf_str name;
    if (gguf_get_string(&m->file, KEY_NAME, &name) == 0)
        tinyllm_printable(name.ptr, name.len, m->name, sizeof m->name);
    h->name = m->name;
    int64_t ft = -1;
    h->file_type = gguf_get_int(&m->file, KEY_FILE_TYPE, &ft) == 0 ? (int)ft : -1;

    tinyllm_status st;
    if ((st = get_hparam(m, KEYF_CONTEXT_LENGTH, 0, 0, 1, 1 << 20, &h->n_ctx_train, err))) return st;
    if ((st = get_hparam(m, KEYF_EMBEDDING_LENGTH, 0, 0, 1, 1 << 16, &h->n_embd, err))) return st;
    if ((st = get_hparam(m, KEYF_BLOCK_COUNT, 0, 0, 1, 1024, &h->n_layer, err))) return st;
    if ((st = get_hparam(m, KEYF_FEED_FORWARD_LENGTH, 0, 0, 1, 1 << 18, &h->n_ff, err))) return st;
    if ((st = get_hparam(m, KEYF_HEAD_COUNT, 0, 0, 1, h->n_embd, &h->n_head, err))) return st;
    if (h->n_embd % h->n_head)
        return set_error(err, TINYLLM_ERR_MODEL, "%s: embedding_length %d is not divisible by head_count %d", path,
                         h->n_embd, h->n_head);
    h->head_dim = h->n_embd / h->n_head;
    if ((st = m->family->read_hparams(m, err))) return st;
    m->kv_dim = h->n_head_kv * h->head_dim;
    return TINYLLM_OK;
}

/* ----------------------------------------------------------- binding -- */

static int64_t dim_value(const tinyllm_model *m, dim_sym d) {
    switch (d) {
    case D_1: return 1;
    case D_EMBD: return m->info.n_embd;
    case D_VOCAB: return m->info.n_vocab;
    case D_FF: return m->info.n_ff;
    case D_KV: return m->kv_dim;
    case D_QKV: return 3LL * m->info.n_embd;
    case D_CTX: return m->info.n_ctx_train;
    }
    return 0;
}

/* Finds and checks one tensor; *out is NULL for an absent optional one. */
static tinyllm_status find_checked(const tinyllm_model *m, const tensor_spec *s, int layer, const gguf_tensor **out,
                                   tinyllm_error *err) {
    char name[96];
    snprintf(name, sizeof name, s->name, layer);
    const gguf_tensor *t = gguf_find_tensor(&m->file, name);
    *out = t;
    if (!t) {
        if (s->optional) return TINYLLM_OK;
        return set_error(err, TINYLLM_ERR_MODEL, "%s: missing tensor '%s' (required for architecture %s)",
                         m->file.path, name, m->info.architecture);
    }
    if (!type_is_runnable(t->type))
        return set_error(err, TINYLLM_ERR_UNSUPPORTED,
                         "%s: tensor '%s' has type %s (expected %s)", m->file.path, name,
                         gguf_type_name(t->type), WEIGHT_FORMAT_LIST());
    int64_t d0 = dim_value(m, s->d0), d1 = dim_value(m, s->d1);
    int want_dims = s->d1 == D_1 ? 1 : 2;
    int ok = t->dims[0] == (uint64_t)d0 && t->dims[1] == (uint64_t)d1 && t->dims[2] == 1 && t->dims[3] == 1 &&
             ((int)t->n_dims == want_dims || (want_dims == 1 && t->n_dims == 2 && t->dims[1] == 1));
    if (!ok) {
        char got[96] = "", want[48];
        size_t n = 0;
        for (uint32_t i = 0; i < t->n_dims; i++)
            n += (size_t)snprintf(got + n, sizeof got - n, i ? ", %llu" : "%llu", (unsigned long long)t->dims[i]);
        if (want_dims == 1)
            snprintf(want, sizeof want, "[%lld]", (long long)d0);
        else
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)d0, (long long)d1);
        return set_error(err, TINYLLM_ERR_MODEL, "%s: tensor '%s' has shape [%s] (expected %s)", m->file.path, name,
                         got, want);
    }
    return TINYLLM_OK;
}

/* A converted tensor is not read from the file again: let the kernel drop
 * its mapped pages, so resident memory holds each weight once, even at peak. */
static void release_range(const tinyllm_model *m, const void *from, const void *to) {
    if (!m->file.file_backed) return;
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)from + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t hi = (uintptr_t)to & ~(uintptr_t)(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

static void release_source(const tinyllm_model *m, const gguf_tensor *t) {
    release_range(m, t->data, (const uint8_t *)t->data + t->n_bytes);
}

/* Repacks a matrix (Q4_0, Q8_0) into its format's repacked layout in dst, a few hundred
 * KiB at a time, releasing the source pages behind it: the copy and the
 * mapping are never both resident (a 32000-row embedding is 26 MiB in Q8_0). */
#define REPACK_CHUNK_ROWS 512
static void repack_releasing(const tinyllm_model *m, uint8_t *dst, const gguf_tensor *t) {
    long rows = (long)(t->n_elements / t->dims[0]), C = (long)t->dims[0];
    const weight_format *f = weight_format_of((int)t->type);
    size_t row_bytes = weight_bytes(f->type, (size_t)C), packed_row_bytes = weight_bytes(f->repacked, (size_t)C);
    const uint8_t *src = t->data;
    for (long r0 = 0; r0 < rows; r0 += REPACK_CHUNK_ROWS) {
        long n = rows - r0 < REPACK_CHUNK_ROWS ? rows - r0 : REPACK_CHUNK_ROWS; /* a multiple of 8 but the last */
        size_t at = (size_t)r0 * row_bytes;
        f->repack(dst + (size_t)r0 * packed_row_bytes, src + at, n, C); /* the layout may take more bytes a row */
        /* everything before this chunk's end is copied (whole pages only) */
        release_range(m, src, src + at + (size_t)n * row_bytes);
    }
}

/* Matrices are used in place, in the file's format, unless expand_f32 asks
 * for F32 copies. The data needs the format's alignment (F16: 2 bytes) and
 * rows of whole blocks (every file llama.cpp writes has both). */
static int used_in_place(const tinyllm_model *m, const tensor_spec *s, const gguf_tensor *t) {
    if (m->expand_f32 || !s->is_matrix || t->type == GGML_TYPE_F32) return 0;
    const weight_format *f = weight_format_of(t->type);
    if (!f) return 0;
    return (uintptr_t)t->data % (uintptr_t)f->align == 0 && t->dims[0] % (uint64_t)f->block == 0;
}

/* Memory that decode streams through once per token: 2 MiB aligned and
 * offered to transparent huge pages, so reading it costs fewer TLB misses
 * (Q4_0 decode on the 110M shape, 1 thread: about 12% faster here). */
static void *huge_alloc(size_t bytes) {
    if (bytes < ((size_t)4 << 20)) return malloc(bytes); /* small: not worth a huge page */
    void *p = NULL;
    if (posix_memalign(&p, (size_t)2 << 20, bytes)) return NULL;
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

/* Q4_0 and Q8_0 matrices multiplied as products are repacked 8 rows at a
 * time (WEIGHT_Q4_0_X8, WEIGHT_Q8_0_X8: kernels.h). The token embedding is
 * too when it doubles as the classifier (no output.weight: the largest
 * product of a small model); else it is only read by rows and keeps the
 * file's layout. The classifier's rows (the vocabulary: GPT-2's 50257) may
 * leave a last group short, padded; the other matrices need whole groups,
 * since fused products are split at row offsets (matrix_at). */
static int repacks(const tinyllm_model *m, const tensor_spec *s, const gguf_tensor *t) {
    if (!weight_format_of((int)t->type)->repacked) return 0;
    int embd = !strcmp(s->name, TN_TOKEN_EMBD);
    if (embd && gguf_find_tensor(&m->file, TN_OUTPUT)) return 0; /* read by rows only */
    int classifier = embd || !strcmp(s->name, TN_OUTPUT);
    return (t->n_elements / t->dims[0]) % X8_ROWS == 0 || classifier;
}

/* Binds one tensor into its slot, copying into the arena when needed. */
static tinyllm_status bind_one(tinyllm_model *m, const tensor_spec *s, int layer, void *base, size_t *arena_used,
                               int count_only, tinyllm_error *err) {
    const gguf_tensor *t;
    tinyllm_status st = find_checked(m, s, layer, &t, err);
    if (st || !t) return st;
    matrix w = {t->data, (int)t->type};
    if (used_in_place(m, s, t) && repacks(m, s, t)) {
        int layout = weight_format_of((int)t->type)->repacked;
        size_t bytes = x8_bytes(layout, (long)(t->n_elements / t->dims[0]), (long)t->dims[0]);
        if (!count_only) {
            uint8_t *dst = m->packed + m->packed_used;
            repack_releasing(m, dst, t);
            w.data = dst;
        }
        w.type = layout;
        m->packed_used += bytes;
        m->packed_extra += bytes - t->n_bytes;
    } else if (used_in_place(m, s, t)) {
        /* as stored */
    } else if (needs_copy(t) || !s->is_matrix) {
        /* vectors (norms, biases) are copied too, however small: one left in
         * the mapping keeps the whole large folio around it resident once the
         * matrices beside it are repacked and released (measured: 19 MiB of
         * the 110M Q8_0 file) */
        if (!count_only) {
            float *dst = m->arena + *arena_used;
            to_f32(m->kern, dst, t);
            release_source(m, t);
            w.data = dst;
        }
        w.type = GGML_TYPE_F32;
        *arena_used += t->n_elements;
    }
    if (count_only) return TINYLLM_OK;
    m->tensor_use[t - m->file.tensors] = w.type != (int)t->type && w.type == GGML_TYPE_F32
                                             ? "F32 (expanded)"
                                             : weight_format_of(w.type)->name;
    m->info.weight_bytes += weight_bytes(w.type, t->n_elements);
    m->has_stored |= w.type != GGML_TYPE_F32;
    m->prefill_q8 |= s->is_matrix && matmul_takes_q8_act(m->kern, w, STREAM_MAX_ROWS + 1);
    if (s->is_matrix)
        memcpy((char *)base + s->offset, &w, sizeof w);
    else
        memcpy((char *)base + s->offset, &w.data, sizeof w.data);
    return TINYLLM_OK;
}

void model_decode_matrices(const tinyllm_model *m, void (*fn)(void *user, const void *data, size_t bytes),
                           void *user) {
    const tinyllm_model_info *h = &m->info;
    size_t d = (size_t)h->n_embd, kv = (size_t)m->kv_dim, ff = (size_t)h->n_ff;
    for (int l = 0; l < h->n_layer; l++) {
        const layer_weights *w = &m->layers[l];
        const struct {
            matrix w;
            size_t n; /* values */
        } used[] = {{w->wq, d * d},    {w->wk, kv * d},     {w->wv, kv * d},     {w->wo, d * d},
                    {w->w_up, ff * d}, {w->w_gate, ff * d}, {w->w_down, d * ff}};
        for (size_t i = 0; i < COUNT(used); i++)
            if (used[i].w.data) fn(user, used[i].w.data, weight_bytes(used[i].w.type, used[i].n));
    }
    fn(user, m->output.data, weight_bytes(m->output.type, (size_t)h->n_vocab * d));
}

/* Two passes: count the floats to convert, then allocate once and bind. */
static tinyllm_status bind_tensors(tinyllm_model *m, tinyllm_error *err) {
    const model_family *f = m->family;
    const tinyllm_model_info *h = &m->info;
    int learned = h->positions == TINYLLM_POS_LEARNED;
    layer_weights scratch;
    for (int pass = 0; pass < 2; pass++) {
        int count_only = pass == 0;
        size_t used = 0;
        m->packed_used = m->packed_extra = 0;
        tinyllm_status st;
        for (int i = 0; i < f->n_global; i++)
            if ((st = bind_one(m, &f->global[i], 0, m, &used, count_only, err))) return st;
        if (learned && (st = bind_one(m, &LEARNED_POSITIONS, 0, m, &used, count_only, err))) return st;
        for (int l = 0; l < h->n_layer; l++)
            for (int i = 0; i < f->n_layer; i++) {
                void *base = count_only ? (void *)&scratch : (void *)&m->layers[l];
                if ((st = bind_one(m, &f->layer[i], l, base, &used, count_only, err))) return st;
            }
        if (count_only) {
            size_t total = used;
            m->arena = total ? huge_alloc(total * sizeof(float)) : NULL;
            m->packed = m->packed_used ? huge_alloc(m->packed_used) : NULL;
            if (m->packed_used && !m->packed)
                return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory for %zu bytes of repacked weights",
                                 m->file.path, m->packed_used);
            m->layers = calloc((size_t)h->n_layer, sizeof *m->layers);
            if ((total && !m->arena) || !m->layers)
                return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory for %zu converted weights",
                                 m->file.path, total);
        }
    }
    if (h->positions == TINYLLM_POS_SINUSOIDAL && gguf_find_tensor(&m->file, TN_POS_EMBD))
        return set_error(err, TINYLLM_ERR_MODEL, "%s: tensor '%s' present but %s says \"sinusoidal\" (expected one)",
                         m->file.path, TN_POS_EMBD, KEY_POSITION_ENCODING);
    /* Products whose weights lie back to back can run as one wider product
     * (fewer, larger sgemm calls); files usually store them that way. */
    for (int l = 0; l < h->n_layer; l++) {
        layer_weights *w = &m->layers[l];
        size_t dd = (size_t)h->n_embd * h->n_embd, kd = (size_t)m->kv_dim * h->n_embd;
        int biases = (!w->bq && !w->bk && !w->bv) ||
                     (w->bq && w->bk == w->bq + h->n_embd && w->bv == w->bk + m->kv_dim);
        w->qkv_adjacent = f->fused_qkv || (matrix_follows(w->wq, w->wk, dd) && matrix_follows(w->wk, w->wv, kd) &&
                                           biases);
        w->gate_up_adjacent = f->act == ACT_SWIGLU &&
                              matrix_follows(w->w_gate, w->w_up, (size_t)h->n_ff * h->n_embd);
    }
    m->info.tied_output = !m->output.data;
    if (m->info.tied_output) m->output = m->tok_embd;
    if (f->fused_qkv) { /* q, k, v are row blocks of the fused projection */
        size_t dd = (size_t)h->n_embd * h->n_embd;
        for (int l = 0; l < h->n_layer; l++) {
            layer_weights *w = &m->layers[l];
            w->wq = w->wqkv;
            w->wk = matrix_at(w->wqkv, dd);
            w->wv = matrix_at(w->wqkv, 2 * dd);
            if (!w->bqkv) continue; /* bias=False models (nanoGPT) store none */
            w->bq = w->bqkv;
            w->bk = w->bqkv + h->n_embd;
            w->bv = w->bqkv + 2 * h->n_embd;
        }
    }
    return TINYLLM_OK;
}

/* With check_tensors: every bound weight must be finite. */
static tinyllm_status check_finite(const tinyllm_model *m, tinyllm_error *err) {
    for (uint64_t i = 0; i < m->file.n_tensors; i++) {
        const gguf_tensor *t = &m->file.tensors[i];
        if (!type_is_runnable(t->type)) continue;
        float *tmp = malloc(t->n_elements * sizeof(float));
        if (!tmp) return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory checking tensors", m->file.path);
        to_f32(m->kern, tmp, t);
        for (uint64_t j = 0; j < t->n_elements; j++)
            if (!isfinite(tmp[j])) {
                tinyllm_status st = set_error(err, TINYLLM_ERR_NUMERIC,
                                              "%s: tensor '%.*s' element %llu is %s (expected finite weights)",
                                              m->file.path, (int)(t->name.len > 96 ? 96 : t->name.len), t->name.ptr,
                                              (unsigned long long)j, isnan(tmp[j]) ? "NaN" : "Inf");
                free(tmp);
                return st;
            }
        free(tmp);
    }
    return TINYLLM_OK;
}

/* NUL-terminated copies of every key and tensor name (the mapping's are not). */
static tinyllm_status build_names(tinyllm_model *m, tinyllm_error *err) {
    const gguf_file *f = &m->file;
    size_t bytes = 0;
    for (uint64_t i = 0; i < f->n_kv; i++) bytes += f->kv[i].key.len + 1;
    for (uint64_t i = 0; i < f->n_tensors; i++) bytes += f->tensors[i].name.len + 1;
    m->names_arena = malloc(bytes + 1);
    m->kv_keys = malloc((f->n_kv + 1) * sizeof *m->kv_keys);
    m->tensor_names = malloc((f->n_tensors + 1) * sizeof *m->tensor_names);
    m->tensor_use = calloc(f->n_tensors + 1, sizeof *m->tensor_use); /* NULL entries: not bound */
    if (!m->names_arena || !m->kv_keys || !m->tensor_names || !m->tensor_use)
        return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory for names", f->path);
    char *p = m->names_arena;
    for (uint64_t i = 0; i < f->n_kv + f->n_tensors; i++) {
        gguf_str s = i < f->n_kv ? f->kv[i].key : f->tensors[i - f->n_kv].name;
        memcpy(p, s.ptr, s.len);
        p[s.len] = 0;
        if (i < f->n_kv)
            m->kv_keys[i] = p;
        else
            m->tensor_names[i - f->n_kv] = p;
        p += s.len + 1;
    }
    return TINYLLM_OK;
}

/* ---------------------------------------------------------- public -- */

tinyllm_model_params tinyllm_model_default_params(void) {
    tinyllm_model_params p = {0};
    return p;
}

/* Everything after the file is indexed: hyperparameters, weights, tokenizer. */
static tinyllm_status model_build(tinyllm_model *m, const tinyllm_model_params *params, tinyllm_error *err) {
    const char *path = m->file.path;
    tinyllm_status st;
    /* the vocabulary size is the embedding's row count */
    const gguf_tensor *emb = gguf_find_tensor(&m->file, TN_TOKEN_EMBD);
    if ((st = build_names(m, err))) return st;
    if ((st = read_hparams(m, err))) return st;
    if (!emb)
        return set_error(err, TINYLLM_ERR_MODEL, "%s: missing tensor '%s' (required for architecture %s)", path,
                         TN_TOKEN_EMBD, m->info.architecture);
    if (emb->n_dims != 2 || emb->dims[1] > (1u << 24))
        return set_error(err, TINYLLM_ERR_MODEL, "%s: tensor '%s' must be 2-D [n_embd, n_vocab]", path, TN_TOKEN_EMBD);
    m->info.n_vocab = (int)emb->dims[1];
    m->expand_f32 = params && params->expand_f32;
    m->kern = kernels_select();
    m->info.kernels = m->kern->name;
    if ((st = bind_tensors(m, err))) return st;
    if (params && params->check_tensors && (st = check_finite(m, err))) return st;
    if (!(params && params->skip_tokenizer) && (st = tokenizer_build(&m->file, m->info.n_vocab, &m->tok, err)))
        return st;
    m->info.file_size = m->file.size;
    for (uint64_t i = 0; i < m->file.n_tensors; i++) m->info.n_params += (int64_t)m->file.tensors[i].n_elements;
    return TINYLLM_OK;
}

/* After the file is indexed (st: how that went): build the model or clean up. */
static tinyllm_status finish_load(tinyllm_model *m, tinyllm_status st, const tinyllm_model_params *params,
                                  tinyllm_model **out, tinyllm_error *err) {
    if (st) {
        free(m);
        return st;
    }
    if ((st = model_build(m, params, err))) {
        tinyllm_model_free(m);
        return st;
    }
    *out = m;
    return TINYLLM_OK;
}

tinyllm_status tinyllm_model_load(const char *path, const tinyllm_model_params *params, tinyllm_model **out,
                                  tinyllm_error *err) {
    if (!out) return set_error(err, TINYLLM_ERR_ARG, "tinyllm_model_load: out is NULL");
    *out = NULL;
    if (!path) return set_error(err, TINYLLM_ERR_ARG, "tinyllm_model_load: path is NULL");
    tinyllm_model *m = calloc(1, sizeof *m);
    if (!m) return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory", path);
    return finish_load(m, gguf_open(&m->file, path, !(params && params->no_mmap), err), params, out, err);
}

tinyllm_status model_load_buffer(const uint8_t *buf, size_t size, const char *name,
                                 const tinyllm_model_params *params, tinyllm_model **out, tinyllm_error *err) {
    *out = NULL;
    tinyllm_model *m = calloc(1, sizeof *m);
    if (!m) return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory", name);
    return finish_load(m, gguf_parse(&m->file, buf, size, name, err), params, out, err);
}

void tinyllm_model_free(tinyllm_model *m) {
    if (!m) return;
    tokenizer_free(m->tok);
    free(m->layers);
    free(m->arena);
    free(m->packed);
    free(m->names_arena);
    free(m->kv_keys);
    free(m->tensor_names);
    free(m->tensor_use);
    gguf_close(&m->file);
    free(m);
}

tinyllm_status tinyllm_model_info_get(const tinyllm_model *m, tinyllm_model_info *out, tinyllm_error *err) {
    if (!m || !out) return set_error(err, TINYLLM_ERR_ARG, "model_info_get: NULL model or out");
    *out = m->info;
    return TINYLLM_OK;
}

int tinyllm_model_n_tensors(const tinyllm_model *m) {
    return m ? (int)m->file.n_tensors : 0;
}

tinyllm_status tinyllm_model_tensor(const tinyllm_model *m, int i, tinyllm_tensor_info *out, tinyllm_error *err) {
    if (!m || !out) return set_error(err, TINYLLM_ERR_ARG, "model_tensor: NULL model or out");
    if (i < 0 || (uint64_t)i >= m->file.n_tensors)
        return set_error(err, TINYLLM_ERR_ARG, "model_tensor: index %d is out of range (the model has %llu tensors)", i,
                         (unsigned long long)m->file.n_tensors);
    const gguf_tensor *t = &m->file.tensors[i];
    out->name = m->tensor_names[i];
    out->type = gguf_type_name(t->type);
    out->n_dims = (int)t->n_dims;
    for (int d = 0; d < 4; d++) out->dims[d] = (int64_t)t->dims[d];
    out->n_bytes = t->n_bytes;
    out->in_use = m->tensor_use && m->tensor_use[i] ? m->tensor_use[i] : "unused";
    return TINYLLM_OK;
}

tinyllm_status tinyllm_model_tensor_f32(const tinyllm_model *m, int i, float *out, size_t n, tinyllm_error *err) {
    if (!m || !out) return set_error(err, TINYLLM_ERR_ARG, "model_tensor_f32: NULL model or out");
    if (i < 0 || (uint64_t)i >= m->file.n_tensors)
        return set_error(err, TINYLLM_ERR_ARG, "model_tensor_f32: index %d is out of range (the model has %llu tensors)",
                         i, (unsigned long long)m->file.n_tensors);
    const gguf_tensor *t = &m->file.tensors[i];
    if (!type_is_runnable(t->type))
        return set_error(err, TINYLLM_ERR_UNSUPPORTED, "model_tensor_f32: tensor '%s' has type %s (expected %s)",
                         m->tensor_names[i], gguf_type_name(t->type), WEIGHT_FORMAT_LIST());
    if (n != t->n_elements)
        return set_error(err, TINYLLM_ERR_ARG, "model_tensor_f32: tensor '%s' has %llu values (out holds %zu)",
                         m->tensor_names[i], (unsigned long long)t->n_elements, n);
    to_f32(m->kern, out, t);
    return TINYLLM_OK;
}

int tinyllm_model_n_meta(const tinyllm_model *m) {
    return m ? (int)m->file.n_kv : 0;
}

tinyllm_status tinyllm_model_meta(const tinyllm_model *m, int i, const char **key, char *value, size_t cap,
                                  tinyllm_error *err) {
    if (!m || !key || !value || cap == 0)
        return set_error(err, TINYLLM_ERR_ARG, "model_meta: NULL model, key or value, or a zero-size value buffer");
    if (i < 0 || (uint64_t)i >= m->file.n_kv)
        return set_error(err, TINYLLM_ERR_ARG, "model_meta: index %d is out of range (the model has %llu keys)", i,
                         (unsigned long long)m->file.n_kv);
    const gguf_kv *kv = &m->file.kv[i];
    *key = m->kv_keys[i];
    /* the value read from this entry itself (never looked up again by name) */
    if (kv->type == GGUF_STRING) {
        uint64_t len;
        memcpy(&len, kv->value, 8);
        char shown[204];
        snprintf(value, cap, "\"%s\"", tinyllm_printable((const char *)kv->value + 8, len, shown, sizeof shown));
    } else if (kv->type == GGUF_ARRAY) {
        snprintf(value, cap, "[%s x %llu]", gguf_value_type_name(kv->elem_type), (unsigned long long)kv->n);
    } else if (kv->type == GGUF_F32 || kv->type == GGUF_F64) {
        snprintf(value, cap, "%g", gguf_kv_float(kv));
    } else if (kv->type == GGUF_BOOL) {
        snprintf(value, cap, "%s", kv->value[0] ? "true" : "false");
    } else {
        snprintf(value, cap, "%lld", (long long)gguf_kv_int(kv));
    }
    return TINYLLM_OK;
}
