#include "spm_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "names.h"

/* protobuf wire types */
enum { WIRE_VARINT = 0, WIRE_LEN = 2, WIRE_FIXED32 = 5 };
/* ModelProto / SentencePiece / TrainerSpec / NormalizerSpec field numbers */
enum { MP_PIECES = 1, MP_TRAINER = 2, MP_NORMALIZER = 3 };
enum { SP_PIECE = 1, SP_SCORE = 2, SP_TYPE = 3 };
enum { TS_MODEL_TYPE = 3, TS_VOCAB_SIZE = 4, TS_BYTE_FALLBACK = 35, TS_UNK = 45, TS_BOS = 46, TS_EOS = 47, TS_PAD = 48 };
enum { NS_NAME = 1, NS_ADD_DUMMY_PREFIX = 3, NS_REMOVE_EXTRA_WS = 4, NS_ESCAPE_WS = 5 };
enum { MODEL_TYPE_BPE = 2 };
enum { PIECE_NORMAL = 1, PIECE_BYTE = 6 };

typedef struct {
    unsigned char *p;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_varint(buf *b, uint64_t v) {
    unsigned char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(b, tmp, (size_t)n);
}

static void put_tag(buf *b, int field, int wire) { put_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void put_bytes(buf *b, int field, const void *s, size_t n) {
    put_tag(b, field, WIRE_LEN);
    put_varint(b, n);
    put(b, s, n);
}

static void put_uint(buf *b, int field, uint64_t v) {
    put_tag(b, field, WIRE_VARINT);
    put_varint(b, v);
}

static void put_float(buf *b, int field, float f) {
    put_tag(b, field, WIRE_FIXED32);
    put(b, &f, 4); /* little-endian host, like the rest of the engine */
}

static void put_message(buf *b, int field, buf *sub) {
    if (sub->oom) b->oom = 1;
    put_bytes(b, field, sub->p, sub->len);
    free(sub->p);
    *sub = (buf){0};
}

/* The piece at a special id, or the default name when the id is absent. */
static void special_piece(const gguf_file *f, const gguf_str *tokens, uint64_t n, const char *key, const char *def,
                          buf *b, int field) {
    int64_t id;
    if (gguf_get_int(f, key, &id) == 0 && id >= 0 && (uint64_t)id < n)
        put_bytes(b, field, tokens[id].ptr, tokens[id].len);
    else
        put_bytes(b, field, def, strlen(def));
}

tinyllm_status spm_proto_from_gguf(const gguf_file *f, unsigned char **out, size_t *out_len, tinyllm_error *err) {
    *out = NULL;
    *out_len = 0;
    const gguf_kv *tok = gguf_find_kv(f, KEY_TOK_TOKENS), *sc = gguf_find_kv(f, KEY_TOK_SCORES),
                  *ty = gguf_find_kv(f, KEY_TOK_TYPES);
    if (!tok || tok->type != GGUF_ARRAY || tok->elem_type != GGUF_STRING)
        return set_error(err, TINYLLM_ERR_TOKENIZER, "%s: '%s' is missing or not a string array (expected the vocabulary)",
                         f->path, KEY_TOK_TOKENS);
    uint64_t n = tok->n;
    if (n == 0 || n > (1u << 24))
        return set_error(err, TINYLLM_ERR_TOKENIZER, "%s: '%s' has %llu tokens (expected 1 to 16777216)", f->path,
                         KEY_TOK_TOKENS, (unsigned long long)n);
    if (sc && (sc->type != GGUF_ARRAY || (sc->elem_type != GGUF_F32 && sc->elem_type != GGUF_F64) || sc->n != n))
        return set_error(err, TINYLLM_ERR_TOKENIZER, "%s: '%s' must be a float array of %llu scores", f->path,
                         KEY_TOK_SCORES, (unsigned long long)n);
    if (ty && (ty->type != GGUF_ARRAY || !gguf_value_is_int(ty->elem_type) || ty->n != n))
        return set_error(err, TINYLLM_ERR_TOKENIZER, "%s: '%s' must be an integer array of %llu types", f->path,
                         KEY_TOK_TYPES, (unsigned long long)n);
    int add_prefix = 1;
    int rc = gguf_get_bool(f, KEY_TOK_ADD_SPACE_PREFIX, &add_prefix);
    if (rc == -2)
        return set_error(err, TINYLLM_ERR_TOKENIZER, "%s: '%s' must be a bool", f->path, KEY_TOK_ADD_SPACE_PREFIX);

    gguf_str *tokens = malloc(n * sizeof *tokens);
    if (!tokens) return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory for the vocabulary", f->path);
    gguf_array_strings(tok, tokens);

    buf model = {0}, piece = {0}, spec = {0};
    int n_bytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        int64_t type = ty ? gguf_array_int(ty, i) : PIECE_NORMAL;
        if (type == 0) type = PIECE_NORMAL; /* some writers leave it undefined */
        if (type < 1 || type > 6) {
            free(tokens);
            free(model.p);
            return set_error(err, TINYLLM_ERR_TOKENIZER, "%s: token %llu has type %lld (expected 1..6)", f->path,
                             (unsigned long long)i, (long long)type);
        }
        n_bytes += type == PIECE_BYTE;
        put_bytes(&piece, SP_PIECE, tokens[i].ptr, tokens[i].len);
        put_float(&piece, SP_SCORE, sc ? (float)gguf_array_float(sc, i) : 0.0f);
        put_uint(&piece, SP_TYPE, (uint64_t)type);
        put_message(&model, MP_PIECES, &piece);
    }
    put_uint(&spec, TS_MODEL_TYPE, MODEL_TYPE_BPE);
    put_uint(&spec, TS_VOCAB_SIZE, n);
    put_uint(&spec, TS_BYTE_FALLBACK, n_bytes == 256);
    special_piece(f, tokens, n, KEY_TOK_UNK, "<unk>", &spec, TS_UNK);
    special_piece(f, tokens, n, KEY_TOK_BOS, "<s>", &spec, TS_BOS);
    special_piece(f, tokens, n, KEY_TOK_EOS, "</s>", &spec, TS_EOS);
    special_piece(f, tokens, n, KEY_TOK_PAD, "<pad>", &spec, TS_PAD);
    put_message(&model, MP_TRAINER, &spec);
    put_bytes(&spec, NS_NAME, "identity", 8);
    put_uint(&spec, NS_ADD_DUMMY_PREFIX, (uint64_t)add_prefix);
    put_uint(&spec, NS_REMOVE_EXTRA_WS, 0);
    put_uint(&spec, NS_ESCAPE_WS, 1);
    put_message(&model, MP_NORMALIZER, &spec);
    free(tokens);
    if (model.oom) {
        free(model.p);
        return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory rebuilding the tokenizer", f->path);
    }
    *out = model.p;
    *out_len = model.len;
    return TINYLLM_OK;
}
