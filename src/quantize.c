/* tinyllm_quantize: a copy of a GGUF model with its weight matrices stored in
 * another format (any with a writer in the weight-format table), or by one
 * of llama.cpp's mixed presets (Q4_K_M, Q5_K_M: its per-tensor choices and
 * fallbacks). Matrices are the 2-D tensors other than the learned position
 * table; norms, biases and positions stay (or become) F32. Every metadata entry is copied byte for byte except
 * general.file_type (and general.quantization_version, written for quantized
 * files as llama.cpp does), so the tokenizer and any key the engine does not
 * know survive. Facts: docs/formats.md (GGUF, Q8_0/Q4_0 blocks). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "gguf.h"
#include "formats.h"
#include "kernels.h"
#include "names.h"
#include "outfile.h"
#include "quantize.h"

#define KEY_QUANT_VERSION "general.quantization_version"

/* ---------------------------------------------------------- writing -- */

/* The GGUF stream being written: bytes so far and the first write error. */
typedef struct {
    FILE *f;
    const char *path;
    uint64_t written;
    int failed;
} gguf_out;

static void put(gguf_out *o, const void *p, size_t n) {
    if (o->failed || !n) return;
    if (fwrite(p, 1, n, o->f) != n) o->failed = errno ? errno : EIO;
    o->written += n;
}
static void put_u32(gguf_out *o, uint32_t v) { put(o, &v, 4); }
static void put_u64(gguf_out *o, uint64_t v) { put(o, &v, 8); }
static void put_str(gguf_out *o, gguf_str s) {
    put_u64(o, s.len);
    put(o, s.ptr, s.len);
}
static void put_padding(gguf_out *o, uint64_t alignment) {
    static const uint8_t zeros[64];
    uint64_t pad = (alignment - o->written % alignment) % alignment;
    while (pad) {
        size_t n = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        put(o, zeros, n);
        pad -= n;
    }
}

/* What `format` asks for: one format for every matrix (a row of the
 * weight-format table with a writer and a file type), or a preset. */
typedef struct {
    const char *name;
    enum ggml_type base;
    int preset;        /* 0, or the layers that get more bits (see tensor_type) */
    int file_type;     /* general.file_type, llama.cpp's numbering */
} target;

enum { PRESET_K_M = 1 };
static const target PRESETS[] = {
    {"q4_k_m", GGML_TYPE_Q4_K, PRESET_K_M, 15},
    {"q5_k_m", GGML_TYPE_Q5_K, PRESET_K_M, 17},
};
#define N_PRESETS (sizeof PRESETS / sizeof PRESETS[0])

/* the formats tinyllm_quantize writes: every matrix in that one format */
static int writable(const weight_format *f) { return f && f->in_files && f->quantize && f->file_type >= 0; }

/* llama.cpp's choice of the layers that get more bits in its _M presets */
static int use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* A format whose block does not divide the rows falls back as llama.cpp's
 * does (the table's `fallback`: Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0),
 * then F16. */
static enum ggml_type fitting(enum ggml_type type, uint64_t row) {
    const weight_format *f = weight_format_of(type);
    if (row % (uint64_t)f->block == 0) return type;
    return fitting((enum ggml_type)f->fallback, row);
}

/* The format a tensor gets: F32 for all but matrices; a matrix the target's
 * format, or with a preset llama.cpp's choice: the classifier Q6_K,
 * attn_v / ffn_down of the use_more_bits layers Q6_K, a fused attn_qkv Q5_K
 * (Q4_K_M) or Q6_K (Q5_K_M); each then fitted to its rows. */
static enum ggml_type tensor_type(const gguf_file *in, const gguf_tensor *t, const target *tg, int n_layer) {
    int matrix = t->n_dims == 2 && !gguf_str_eq(t->name, TN_POS_EMBD);
    if (!matrix) return GGML_TYPE_F32;
    enum ggml_type type = tg->base;
    if (tg->preset == PRESET_K_M) {
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(t->name.len < 127 ? t->name.len : 127), t->name.ptr);
        int layer = -1;
        sscanf(name, "blk.%d.", &layer);
        int classifier = !strcmp(name, TN_OUTPUT) || (!strcmp(name, TN_TOKEN_EMBD) && !gguf_find_tensor(in, TN_OUTPUT));
        if (classifier) type = GGML_TYPE_Q6_K;
        else if (strstr(name, ".attn_qkv.")) type = tg->base == GGML_TYPE_Q4_K ? GGML_TYPE_Q5_K : GGML_TYPE_Q6_K;
        else if ((strstr(name, ".attn_v.") || strstr(name, ".ffn_down.")) && layer >= 0 &&
                 use_more_bits(layer, n_layer))
            type = GGML_TYPE_Q6_K;
    }
    return fitting(type, t->dims[0]);
}

/* One tensor's data in its new format. */
static tinyllm_status write_tensor(gguf_out *o, const kernel_ops *k, const gguf_tensor *t, int type,
                                   float *row, uint8_t *packed, tinyllm_error *err) {
    size_t C = (size_t)t->dims[0], rows = (size_t)(t->n_elements / C);
    size_t in_row = weight_bytes((int)t->type, C);
    for (size_t r = 0; r < rows; r++) {
        /* the row's bytes copied first: a file with general.alignment 1 may
         * place F16/F32 data at any address */
        memcpy(packed, (const uint8_t *)t->data + r * in_row, in_row);
        matrix src = {packed, (int)t->type};
        matrix_rows(k, row, src, (long)C, 0, 1); // (C)
        size_t n = weight_bytes(type, C);
        weight_format_of(type)->quantize(packed, row, (long)C);
        put(o, packed, n);
    }
    if (o->failed)
        return set_error(err, TINYLLM_ERR_IO, "%s: write failed: %s", o->path, strerror(o->failed));
    return TINYLLM_OK;
}

/* The number of blocks: the largest N in "blk.N." plus one. */
static int layer_count(const gguf_file *in) {
    int n = 0;
    for (uint64_t i = 0; i < in->n_tensors; i++) {
        int l = -1;
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)(in->tensors[i].name.len < 31 ? in->tensors[i].name.len : 31),
                 in->tensors[i].name.ptr);
        if (sscanf(name, "blk.%d.", &l) == 1 && l + 1 > n) n = l + 1;
    }
    return n;
}

static tinyllm_status quantize_file(const gguf_file *in, gguf_out *o, const target *tg, tinyllm_error *err) {
    int n_layer = layer_count(in);
    const kernel_ops *k = kernels_select();
    /* every tensor must be readable as values */
    size_t max_row = 1;
    for (uint64_t i = 0; i < in->n_tensors; i++) {
        const gguf_tensor *t = &in->tensors[i];
        const weight_format *f = weight_format_of((int)t->type);
        if (!f || !f->in_files)
            return set_error(err, TINYLLM_ERR_UNSUPPORTED, "%s: tensor '%.*s' is %s (expected %s to convert from)",
                             in->path, (int)(t->name.len > 100 ? 100 : t->name.len), t->name.ptr,
                             gguf_type_name(t->type), WEIGHT_FORMAT_LIST());
        if (t->dims[0] > max_row) max_row = (size_t)t->dims[0];
    }
    int quantized = weight_format_of(tg->base)->block > 1;
    uint64_t n_kv = in->n_kv + (quantized && !gguf_find_kv(in, KEY_QUANT_VERSION));
    int has_file_type = gguf_find_kv(in, KEY_FILE_TYPE) != NULL;
    n_kv += !has_file_type;

    put(o, "GGUF", 4);
    put_u32(o, 3);
    put_u64(o, in->n_tensors);
    put_u64(o, n_kv);
    /* metadata: copied, file_type replaced */
    for (uint64_t i = 0; i < in->n_kv; i++) {
        const gguf_kv *kv = &in->kv[i];
        put_str(o, kv->key);
        if (gguf_str_eq(kv->key, KEY_FILE_TYPE)) {
            put_u32(o, GGUF_U32);
            put_u32(o, (uint32_t)tg->file_type);
            continue;
        }
        put_u32(o, kv->type);
        if (kv->type == GGUF_ARRAY) {
            put_u32(o, kv->elem_type);
            put_u64(o, kv->n);
        }
        put(o, kv->value, (size_t)gguf_kv_value_bytes(kv));
    }
    if (!has_file_type) {
        put_str(o, (gguf_str){KEY_FILE_TYPE, strlen(KEY_FILE_TYPE)});
        put_u32(o, GGUF_U32);
        put_u32(o, (uint32_t)tg->file_type);
    }
    if (quantized && !gguf_find_kv(in, KEY_QUANT_VERSION)) {
        put_str(o, (gguf_str){KEY_QUANT_VERSION, strlen(KEY_QUANT_VERSION)});
        put_u32(o, GGUF_U32);
        put_u32(o, 2);
    }
    /* tensor infos: offsets of the new sizes, each aligned */
    uint64_t offset = 0, a = in->alignment;
    for (uint64_t i = 0; i < in->n_tensors; i++) {
        const gguf_tensor *t = &in->tensors[i];
        enum ggml_type type = tensor_type(in, t, tg, n_layer);
        put_str(o, t->name);
        put_u32(o, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) put_u64(o, t->dims[d]);
        put_u32(o, type);
        put_u64(o, offset);
        offset += weight_bytes(type, t->n_elements);
        offset += (a - offset % a) % a;
    }
    put_padding(o, a);
    float *row = malloc(max_row * sizeof(float));
    uint8_t *packed = malloc(max_row * sizeof(float));
    if (!row || !packed) {
        free(row), free(packed);
        return set_error(err, TINYLLM_ERR_NOMEM, "quantize: out of memory for a row of %zu values", max_row);
    }
    tinyllm_status st = TINYLLM_OK;
    for (uint64_t i = 0; i < in->n_tensors && !st; i++) {
        const gguf_tensor *t = &in->tensors[i];
        st = write_tensor(o, k, t, tensor_type(in, t, tg, n_layer), row, packed, err);
        if (!st && i + 1 < in->n_tensors) put_padding(o, a);
    }
    free(row), free(packed);
    if (!st && o->failed) st = set_error(err, TINYLLM_ERR_IO, "%s: write failed: %s", o->path, strerror(o->failed));
    return st;
}

const char *quantize_format_names(char *buf, size_t cap) {
    size_t used = 0, n = 0;
    if (cap) buf[0] = 0;
    const weight_format *f;
    for (size_t i = 0; (f = weight_format_at(i)); i++) {
        if (!writable(f)) continue;
        char lower[16] = {0};
        for (size_t c = 0; f->name[c] && c + 1 < sizeof lower; c++) lower[c] = (char)tolower((unsigned char)f->name[c]);
        int w = used < cap ? snprintf(buf + used, cap - used, "%s%s", n++ ? ", " : "", lower) : -1;
        if (w < 0) return buf;
        used += (size_t)w;
    }
    for (size_t i = 0; i < N_PRESETS; i++) {
        int w = used < cap ? snprintf(buf + used, cap - used, "%s%s", i ? " or " : ", or a preset: ", PRESETS[i].name) : -1;
        if (w < 0) return buf;
        used += (size_t)w;
    }
    return buf;
}

/* The target called `format` (any case): a writable format's name, or a
 * preset's; *scratch holds a plain format's target. */
static tinyllm_status parse_format(const char *format, target *scratch, const target **tg, tinyllm_error *err) {
    const weight_format *f;
    for (size_t i = 0; format && (f = weight_format_at(i)); i++) {
        if (writable(f) && !strcasecmp(format, f->name)) {
            *scratch = (target){f->name, (enum ggml_type)f->type, 0, f->file_type};
            *tg = scratch;
            return TINYLLM_OK;
        }
    }
    for (size_t i = 0; format && i < N_PRESETS; i++)
        if (!strcasecmp(format, PRESETS[i].name)) {
            *tg = &PRESETS[i];
            return TINYLLM_OK;
        }
    char names[QUANTIZE_FORMAT_NAMES_CAP];
    return set_error(err, TINYLLM_ERR_ARG, "quantize: format '%.32s' (expected %s)", format ? format : "",
                     quantize_format_names(names, sizeof names));
}

int quantize_format_known(const char *format) {
    const target *tg;
    target scratch;
    return format && parse_format(format, &scratch, &tg, NULL) == TINYLLM_OK;
}

tinyllm_status quantize_into(const char *in_path, out_file *out, const char *out_name, const char *format,
                             tinyllm_error *err) {
    const target *tg = NULL;
    target scratch;
    tinyllm_status st = parse_format(format, &scratch, &tg, err);
    if (st) return st;
    gguf_file in;
    if ((st = gguf_open(&in, in_path, 1, err))) return st;
    gguf_out o = {out->f, out_name, 0, 0};
    st = quantize_file(&in, &o, tg, err);
    gguf_close(&in);
    return st;
}

tinyllm_status tinyllm_quantize(const char *in_path, const char *out_path, const char *format, tinyllm_error *err) {
    if (!in_path || !out_path || !format)
        return set_error(err, TINYLLM_ERR_ARG, "quantize: NULL path or format");
    const target *tg = NULL;
    target scratch;
    tinyllm_status st = parse_format(format, &scratch, &tg, err);
    if (st) return st;
    out_file o;
    char why[300];
    if (outfile_open(&o, out_path, in_path, why, sizeof why))
        return set_error(err, TINYLLM_ERR_IO, "%s: %s", out_path, why);
    /* renamed over OUT only when whole: a failed run leaves no half-written model */
    st = quantize_into(in_path, &o, out_path, format, err);
    if (st) {
        outfile_abort(&o);
        return st;
    }
    if (outfile_commit(&o, why, sizeof why)) return set_error(err, TINYLLM_ERR_IO, "%s: %s", out_path, why);
    return TINYLLM_OK;
}
