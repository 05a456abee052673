/* libFuzzer target, structure-aware: valid GGUF models are generated here
 * (llama with grouped-query attention, or gpt2 with learned or sinusoidal
 * positions; the tokenizer as tokenizer.ggml arrays, as an embedded
 * SentencePiece model, or as a byte-level BPE vocabulary with merges and a
 * pre-tokenizer; F32, F16 or Q8_0 matrices), each with a table of
 * every field's place in the file: every key, key type and value, every
 * string length and string, every array element type, count and element,
 * every tensor name, dimension count, dimension, type and offset, slices of
 * the embedded SentencePiece model and of the tensor data. Each input picks
 * a model, ONE field and how to change it; the file then goes through
 * load -> tokenize -> prefill -> decode -> sample. Byte-level fuzzing rarely
 * gets past the header's checks; this reaches the binding, tokenizer,
 * forward pass and sampler with one hostile value at a time.
 *
 * Input: [model][field lo][field hi][how][payload...]. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "model.h"
#include "names.h"

enum { DIM = 32, HEADS = 4, FF = 64, CTX = 16, LAYERS = 2 };
enum field_kind { FK_INT, FK_F32, FK_LEN, FK_BYTES };

typedef struct {
    size_t off, size;
    int kind;
} field;

typedef struct {
    uint8_t *b;
    size_t n, cap;
    field *f;
    int nf, fcap;
} gen;

static void grow(gen *g, size_t more) {
    if (g->n + more <= g->cap) return;
    while (g->n + more > g->cap) g->cap = g->cap ? 2 * g->cap : 1 << 16;
    if (!(g->b = realloc(g->b, g->cap))) abort();
}

static void add_field(gen *g, size_t off, size_t size, int kind) {
    if (g->nf == g->fcap && !(g->f = realloc(g->f, (size_t)(g->fcap = g->fcap ? 2 * g->fcap : 256) * sizeof *g->f)))
        abort();
    g->f[g->nf++] = (field){off, size, kind};
}

/* appends n bytes; kind >= 0 records them as one field */
static void put(gen *g, const void *p, size_t n, int kind) {
    grow(g, n);
    if (kind >= 0) add_field(g, g->n, n, kind);
    memcpy(g->b + g->n, p, n);
    g->n += n;
}
static void put_u32(gen *g, uint32_t v) { put(g, &v, 4, FK_INT); }
static void put_u64(gen *g, uint64_t v) { put(g, &v, 8, FK_INT); }
static void put_str(gen *g, const char *s, size_t len) {
    uint64_t n = len;
    put(g, &n, 8, FK_LEN);
    put(g, s, len, len ? FK_BYTES : -1);
}
static void key(gen *g, const char *k, uint32_t type) {
    put_str(g, k, strlen(k));
    put_u32(g, type);
}
static void kv_u32(gen *g, const char *k, uint32_t v) { key(g, k, GGUF_U32), put_u32(g, v); }
static void kv_f32(gen *g, const char *k, float v) { key(g, k, GGUF_F32), put(g, &v, 4, FK_F32); }
static void kv_str(gen *g, const char *k, const char *v) { key(g, k, GGUF_STRING), put_str(g, v, strlen(v)); }
static void arr_head(gen *g, const char *k, uint32_t elem, uint64_t n) {
    key(g, k, GGUF_ARRAY);
    put_u32(g, elem);
    put_u64(g, n);
}

static uint64_t rng = 1;
static float frand(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return ((float)(rng >> 40) / 16777216.0f - 0.5f) * 0.5f;
}

/* the SentencePiece model embedded by variants with it (512 pieces) */
static uint8_t *sp_blob;
static size_t sp_len;

typedef struct {
    const char *name;
    uint64_t dims[2];
    int n_dims, matrix;
} tensor;

/* GPT-2's byte alphabet: the UTF-8 of the character that stands for byte b */
static int byte_char(int b, char *out) {
    int own = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174, cp = b;
    if (!own) {
        cp = 256;
        for (int x = 0; x < b; x++) cp += !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174);
    }
    if (cp < 0x80) return out[0] = (char)cp, 1;
    out[0] = (char)(0xc0 | cp >> 6), out[1] = (char)(0x80 | (cp & 63));
    return 2;
}

/* One model: variant bit 0 = gpt2 (else llama), bit 1 = embedded
 * SentencePiece (else arrays), bit 3 = (with arrays) a byte-level BPE
 * vocabulary; gpt2 variants with bit 2 use sinusoidal positions; wtype =
 * the matrices' ggml type. */
static void build(gen *g, int variant, uint32_t wtype) {
    int gpt2 = variant & 1, sp = (variant & 2) && sp_blob, sinus = gpt2 && (variant & 4), bpe = !sp && (variant & 8);
    int vocab = sp ? 512 : 260, kv_heads = gpt2 ? HEADS : HEADS / 2, kv_dim = DIM / HEADS * kv_heads;
    const char *a = gpt2 ? "gpt2" : "llama";
    char names[64][48];
    tensor t[64];
    int nt = 0;
#define T(nd, d0, d1, mat, ...) \
    (snprintf(names[nt], sizeof names[nt], __VA_ARGS__), t[nt] = (tensor){names[nt], {d0, d1}, nd, mat}, nt++)
    T(2, DIM, vocab, 1, TN_TOKEN_EMBD);
    if (gpt2 && !sinus) T(2, DIM, CTX, 0, TN_POS_EMBD);
    for (int l = 0; l < LAYERS; l++) {
        T(1, DIM, 1, 0, TN_ATTN_NORM, l);
        if (gpt2) {
            T(1, DIM, 1, 0, TN_ATTN_NORM_B, l);
            T(2, DIM, 3 * DIM, 1, TN_ATTN_QKV, l);
            T(1, 3 * DIM, 1, 0, TN_ATTN_QKV_B, l);
        } else {
            T(2, DIM, DIM, 1, TN_ATTN_Q, l);
            T(2, DIM, kv_dim, 1, TN_ATTN_K, l);
            T(2, DIM, kv_dim, 1, TN_ATTN_V, l);
        }
        T(2, DIM, DIM, 1, TN_ATTN_OUT, l);
        if (gpt2) T(1, DIM, 1, 0, TN_ATTN_OUT_B, l);
        T(1, DIM, 1, 0, TN_FFN_NORM, l);
        if (gpt2) T(1, DIM, 1, 0, TN_FFN_NORM_B, l);
        if (!gpt2) T(2, DIM, FF, 1, TN_FFN_GATE, l);
        T(2, DIM, FF, 1, TN_FFN_UP, l);
        if (gpt2) T(1, FF, 1, 0, TN_FFN_UP_B, l);
        T(2, FF, DIM, 1, TN_FFN_DOWN, l);
        if (gpt2) T(1, DIM, 1, 0, TN_FFN_DOWN_B, l);
    }
    T(1, DIM, 1, 0, TN_OUTPUT_NORM);
    if (gpt2) T(1, DIM, 1, 0, TN_OUTPUT_NORM_B);
#undef T
    int n_kv = 8 + !gpt2 + sinus + (sp ? 1 : bpe ? 8 : 7);
    put(g, "GGUF", 4, -1);
    put_u32(g, 3);
    put_u64(g, (uint64_t)nt);
    put_u64(g, (uint64_t)n_kv);
    char k[96];
    kv_str(g, KEY_ARCHITECTURE, a);
    kv_str(g, KEY_NAME, "fuzz model");
#define KA(fmt) (snprintf(k, sizeof k, fmt, a), k)
    kv_u32(g, KA(KEYF_CONTEXT_LENGTH), CTX);
    kv_u32(g, KA(KEYF_EMBEDDING_LENGTH), DIM);
    kv_u32(g, KA(KEYF_BLOCK_COUNT), LAYERS);
    kv_u32(g, KA(KEYF_FEED_FORWARD_LENGTH), FF);
    kv_u32(g, KA(KEYF_HEAD_COUNT), HEADS);
    kv_f32(g, gpt2 ? KA(KEYF_NORM_EPS) : KA(KEYF_RMS_EPS), 1e-5f);
    if (!gpt2) kv_u32(g, KA(KEYF_HEAD_COUNT_KV), (uint32_t)kv_heads);
#undef KA
    if (sinus) kv_str(g, KEY_POSITION_ENCODING, "sinusoidal");
    if (sp) {
        arr_head(g, KEY_SP_MODEL, GGUF_U8, sp_len);
        for (size_t i = 0; i < sp_len; i += 16) put(g, sp_blob + i, sp_len - i < 16 ? sp_len - i : 16, FK_BYTES);
    } else if (bpe) { /* the 256 byte characters, three merges, a control token */
        kv_str(g, KEY_TOK_MODEL, "gpt2");
        kv_str(g, KEY_TOK_PRE, variant & 4 ? "qwen2" : "gpt-2");
        arr_head(g, KEY_TOK_TOKENS, GGUF_STRING, (uint64_t)vocab);
        static const char *const extra[4] = {"\xc4\xa0t", "he", "\xc4\xa0the", "<|endoftext|>"};
        for (int i = 0; i < vocab; i++) {
            char piece[16];
            int n = i < 256 ? byte_char(i, piece) : (int)strlen(extra[i - 256]);
            if (i >= 256) memcpy(piece, extra[i - 256], (size_t)n);
            put_str(g, piece, (size_t)n);
        }
        arr_head(g, KEY_TOK_TYPES, GGUF_I32, (uint64_t)vocab);
        for (int i = 0; i < vocab; i++) put_u32(g, i == vocab - 1 ? 3 : 1);
        static const char *const merges[3] = {"\xc4\xa0 t", "h e", "\xc4\xa0t he"};
        arr_head(g, KEY_TOK_MERGES, GGUF_STRING, 3);
        for (int i = 0; i < 3; i++) put_str(g, merges[i], strlen(merges[i]));
        kv_u32(g, KEY_TOK_BOS, (uint32_t)vocab - 1);
        kv_u32(g, KEY_TOK_EOS, (uint32_t)vocab - 1);
        key(g, KEY_TOK_ADD_BOS, GGUF_BOOL);
        put(g, "\0", 1, FK_INT);
    } else {
        kv_str(g, KEY_TOK_MODEL, "llama");
        arr_head(g, KEY_TOK_TOKENS, GGUF_STRING, (uint64_t)vocab);
        const char *special[3] = {"<unk>", "<s>", "</s>"};
        for (int i = 0; i < vocab; i++) {
            char piece[16];
            if (i < 3) snprintf(piece, sizeof piece, "%s", special[i]);
            else if (i < 259) snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
            else snprintf(piece, sizeof piece, "\xe2\x96\x81hi");
            put_str(g, piece, strlen(piece));
        }
        arr_head(g, KEY_TOK_SCORES, GGUF_F32, (uint64_t)vocab);
        for (int i = 0; i < vocab; i++) {
            float s = i < 259 ? 0.0f : -1.0f;
            put(g, &s, 4, FK_F32);
        }
        arr_head(g, KEY_TOK_TYPES, GGUF_I32, (uint64_t)vocab);
        for (int i = 0; i < vocab; i++) put_u32(g, i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1);
        kv_u32(g, KEY_TOK_BOS, 1);
        kv_u32(g, KEY_TOK_EOS, 2);
        key(g, KEY_TOK_ADD_BOS, GGUF_BOOL);
        put(g, "\1", 1, FK_INT);
    }
    /* tensor infos, then the data, each tensor aligned to 32 bytes */
    uint64_t offset = 0, sizes[64];
    for (int i = 0; i < nt; i++) {
        uint32_t type = t[i].matrix ? wtype : GGML_TYPE_F32;
        uint64_t n = t[i].dims[0] * t[i].dims[1];
        sizes[i] = type == GGML_TYPE_F32 ? 4 * n : type == GGML_TYPE_F16 ? 2 * n : n / 32 * 34;
        put_str(g, t[i].name, strlen(t[i].name));
        put_u32(g, (uint32_t)t[i].n_dims);
        for (int d = 0; d < t[i].n_dims; d++) put_u64(g, t[i].dims[d]);
        put_u32(g, type);
        put_u64(g, offset);
        offset += (sizes[i] + 31) & ~(uint64_t)31;
    }
    static const uint8_t zeros[32];
    put(g, zeros, (32 - g->n % 32) % 32, -1);
    rng = (uint64_t)variant * 977 + wtype;
    for (int i = 0; i < nt; i++) {
        uint32_t type = t[i].matrix ? wtype : GGML_TYPE_F32;
        size_t start = g->n;
        grow(g, sizes[i] + 32);
        for (uint64_t b = 0; b < sizes[i];) {
            if (type == GGML_TYPE_Q8_0) { /* F16 scale 1/64, then 32 small ints */
                uint16_t scale = 0x2400;
                put(g, &scale, 2, -1);
                for (int j = 0; j < 32; j++) {
                    int8_t q = (int8_t)(frand() * 200);
                    put(g, &q, 1, -1);
                }
                b += 34;
            } else if (type == GGML_TYPE_F16) {
                uint16_t h = (uint16_t)(0x3000 + (int)(frand() * 4096)) ^ (frand() > 0 ? 0x8000 : 0);
                put(g, &h, 2, -1);
                b += 2;
            } else {
                float f = t[i].n_dims == 1 && !strstr(t[i].name, "bias") ? 1.0f + frand() : frand();
                put(g, &f, 4, -1);
                b += 4;
            }
        }
        add_field(g, start, sizes[i] < 16 ? sizes[i] : 16, FK_BYTES); /* the data's first bytes */
        put(g, zeros, (32 - g->n % 32) % 32, -1);
    }
}

#define N_MODELS 16
#define N_WTYPES 3
static gen models[N_MODELS][N_WTYPES];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    FILE *f = fopen("tests/data/austen512.model", "rb");
    if (f) {
        sp_blob = malloc(1 << 16);
        sp_len = sp_blob ? fread(sp_blob, 1, 1 << 16, f) : 0;
        fclose(f);
    }
    if (!sp_len) fprintf(stderr, "fuzz_model_fields: tests/data/austen512.model not found (run from the repository root)\n");
    static const uint32_t wtypes[N_WTYPES] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_Q8_0};
    for (int v = 0; v < N_MODELS; v++)
        for (int w = 0; w < N_WTYPES; w++) build(&models[v][w], v, wtypes[w]);
    return 0;
}

/* one field of buf changed as `how` and the payload say */
static void mutate(uint8_t *buf, const field *f, uint8_t how, const uint8_t *pay, size_t n_pay) {
    uint8_t *p = buf + f->off;
    if (f->kind == FK_BYTES) {
        static const uint8_t hostile[] = {0, '\n', 0x1b, '[', '"', 0xff, 0xc3, 0x80};
        size_t at = n_pay ? pay[0] % f->size : 0;
        if (how % 3 == 0) p[at] = hostile[how / 3 % sizeof hostile];
        else for (size_t i = 0; i < f->size && i < n_pay; i++) p[i] = pay[i];
        return;
    }
    uint64_t v = 0;
    memcpy(&v, p, f->size);
    if (f->kind == FK_F32) {
        static const float specials[] = {NAN, INFINITY, -INFINITY, 3e38f, -3e38f, 1e-40f, 0.0f, -0.0f, 1e10f};
        float x = specials[how % 9];
        if (how >= 200 && n_pay >= 4) memcpy(&x, pay, 4);
        memcpy(p, &x, 4);
        return;
    }
    switch (how % 10) {
    case 0: v = 0; break;
    case 1: v = 1; break;
    case 2: v = ~(uint64_t)0; break;
    case 3: v = f->size == 4 ? 0x7fffffff : 0x7fffffffffffffffull; break;
    case 4: v = v + 1; break;
    case 5: v = v - 1; break;
    case 6: v = v * 2 + 1; break;
    case 7: v = (uint64_t)1 << (f->size == 4 ? 31 : 62); break;
    case 8: v ^= (uint64_t)1 << (n_pay ? pay[0] % (8 * f->size) : 0); break;
    default: memcpy(&v, pay, n_pay < f->size ? n_pay : f->size); break;
    }
    memcpy(p, &v, f->size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    const gen *g = &models[data[0] % N_MODELS][data[0] / N_MODELS % N_WTYPES];
    uint8_t *buf = malloc(g->n); /* a private copy: the model keeps pointers into it */
    if (!buf) return 0;
    memcpy(buf, g->b, g->n);
    const field *f = &g->f[(data[1] | data[2] << 8) % g->nf];
    mutate(buf, f, data[3], data + 4, size - 4);

    tinyllm_model *m = NULL;
    tinyllm_error err;
    tinyllm_model_params mp = tinyllm_model_default_params();
    if (model_load_buffer(buf, g->n, "fuzz.gguf", &mp, &m, &err) == TINYLLM_OK) {
        tinyllm_context_params cp = tinyllm_context_default_params();
        cp.n_ctx = 8;
        cp.n_threads = 1;
        tinyllm_context *ctx = NULL;
        tinyllm_sampler *s = NULL;
        tinyllm_sampler_params sp = tinyllm_sampler_default_params();
        sp.temperature = size & 1 ? 0.0f : 0.8f;
        sp.min_p = 0.0f;
        sp.seed = size;
        int ids[64], n = 0;
        if (tinyllm_context_create(m, &cp, &ctx, &err) == TINYLLM_OK &&
            tinyllm_sampler_create(&sp, m->info.n_vocab, &s, &err) == TINYLLM_OK &&
            tinyllm_tokenize(m, "hi w\xc3\xb6\n", 7, 1, ids, 64, &n, &err) == TINYLLM_OK && n > 0 &&
            tinyllm_context_prefill(ctx, ids, n < 6 ? n : 6, &err) == TINYLLM_OK) {
            n = n < 6 ? n : 6;
            int next = tinyllm_sampler_sample(s, tinyllm_context_logits(ctx), ids, n, NULL);
            if (next < -1 || next >= m->info.n_vocab) abort(); /* the sampler returned garbage */
            if (next >= 0 && tinyllm_context_decode(ctx, next, &err) == TINYLLM_OK) {
                next = tinyllm_sampler_sample(s, tinyllm_context_logits(ctx), ids, n, NULL);
                if (next < -1 || next >= m->info.n_vocab) abort();
            }
            char text[256];
            size_t len;
            tinyllm_detokenize(m, ids, n, text, sizeof text, &len, NULL);
        }
        tinyllm_sampler_free(s);
        tinyllm_context_free(ctx);
        tinyllm_model_free(m);
    }
    free(buf);
    return 0;
}
