/* tinyllm_quantize: a copy of a GGUF model with its weight matrices stored in
 * another format (F32, F16, Q8_0, Q4_0). Matrices are the 2-D tensors other
 * than the learned position table; norms, biases and positions stay (or
 * become) F32. Every metadata entry is copied byte for byte except
 * general.file_type (and general.quantization_version, written for quantized
 * files as llama.cpp does), so the tokenizer and any key the engine does not
 * know survive. Facts: docs/formats.md (GGUF, Q8_0/Q4_0 blocks). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "gguf.h"
#include "formats.h"
#include "kernels.h"
#include "names.h"
#include "outfile.h"
#include "quantize.h"

#define KEY_QUANT_VERSION "general.quantization_version"

/* -------------------------------------------------------- quantizers -- */

/* A block's F16 scale d = max|x| / qmax (32 values at x) written at dst;
 * returns 1 / d as the quantizers divide by it (0 for an all-zero block). */
static float put_block_scale(uint8_t *dst, const float *x, float qmax) {
    float amax = 0.0f;
    for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
    uint16_t d = f32_to_f16(amax / qmax);
    memcpy(dst, &d, 2);
    float df = f16_to_f32(d);
    return df != 0.0f ? 1.0f / df : 0.0f;
}

/* Blocks of 32: F16 scale d = max|x| / 127, values round(x / d) (half to even). */
static void quantize_q8_0(uint8_t *dst, const float *x, size_t n) {
    for (size_t b = 0; b < n / 32; b++, x += 32, dst += 34) {
        float inv = put_block_scale(dst, x, 127.0f);
        for (int i = 0; i < 32; i++) {
            long q = lrintf(x[i] * inv);
            dst[2 + i] = (uint8_t)(int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
        }
    }
}

/* Blocks of 32: F16 scale d = max|x| / 7, values round(x / d) clamped to
 * -8..7 and stored + 8, value j in the low nibble of byte j, j + 16 high. */
static void quantize_q4_0(uint8_t *dst, const float *x, size_t n) {
    for (size_t b = 0; b < n / 32; b++, x += 32, dst += 18) {
        float inv = put_block_scale(dst, x, 7.0f);
        uint8_t q[32];
        for (int i = 0; i < 32; i++) {
            long v = lrintf(x[i] * inv);
            q[i] = (uint8_t)((v > 7 ? 7 : v < -8 ? -8 : v) + 8);
        }
        for (int j = 0; j < 16; j++) dst[2 + j] = (uint8_t)(q[j] | q[j + 16] << 4);
    }
}

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

/* The format a tensor gets: matrices the requested one (F16 when their rows
 * are not whole blocks), everything else F32. */
static enum ggml_type target_type(const gguf_tensor *t, enum ggml_type want) {
    int matrix = t->n_dims == 2 && !gguf_str_eq(t->name, TN_POS_EMBD);
    if (!matrix) return GGML_TYPE_F32;
    if ((want == GGML_TYPE_Q8_0 || want == GGML_TYPE_Q4_0) && t->dims[0] % 32) return GGML_TYPE_F16;
    return want;
}

static const int FILE_TYPE_OF[] = {[GGML_TYPE_F32] = 0, [GGML_TYPE_F16] = 1, [GGML_TYPE_Q4_0] = 2,
                                   [GGML_TYPE_Q8_0] = 7};

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
        switch (type) {
        case GGML_TYPE_F32: memcpy(packed, row, n); break;
        case GGML_TYPE_F16:
            for (size_t i = 0; i < C; i++) {
                uint16_t h = f32_to_f16(row[i]);
                memcpy(packed + 2 * i, &h, 2);
            }
            break;
        case GGML_TYPE_Q8_0: quantize_q8_0(packed, row, C); break;
        case GGML_TYPE_Q4_0: quantize_q4_0(packed, row, C); break;
        }
        put(o, packed, n);
    }
    if (o->failed)
        return set_error(err, TINYLLM_ERR_IO, "%s: write failed: %s", o->path, strerror(o->failed));
    return TINYLLM_OK;
}

static tinyllm_status quantize_file(const gguf_file *in, gguf_out *o, enum ggml_type want, tinyllm_error *err) {
    const kernel_ops *k = kernels_select();
    /* every tensor must be readable as values */
    size_t max_row = 1;
    for (uint64_t i = 0; i < in->n_tensors; i++) {
        const gguf_tensor *t = &in->tensors[i];
        const weight_format *f = weight_format_of((int)t->type);
        if (!f || !f->in_files)
            return set_error(err, TINYLLM_ERR_UNSUPPORTED, "%s: tensor '%.*s' is %s (expected %s to convert from)",
                             in->path, (int)(t->name.len > 100 ? 100 : t->name.len), t->name.ptr,
                             gguf_type_name(t->type), weight_format_names());
        if (t->dims[0] > max_row) max_row = (size_t)t->dims[0];
    }
    int quantized = want == GGML_TYPE_Q8_0 || want == GGML_TYPE_Q4_0;
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
            put_u32(o, (uint32_t)FILE_TYPE_OF[want]);
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
        put_u32(o, (uint32_t)FILE_TYPE_OF[want]);
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
        enum ggml_type type = target_type(t, want);
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
        st = write_tensor(o, k, t, target_type(t, want), row, packed, err);
        if (!st && i + 1 < in->n_tensors) put_padding(o, a);
    }
    free(row), free(packed);
    if (!st && o->failed) st = set_error(err, TINYLLM_ERR_IO, "%s: write failed: %s", o->path, strerror(o->failed));
    return st;
}

static tinyllm_status parse_format(const char *format, enum ggml_type *want, tinyllm_error *err) {
    static const struct {
        const char *name;
        enum ggml_type type;
    } FORMATS[] = {{"f32", GGML_TYPE_F32}, {"f16", GGML_TYPE_F16}, {"q8_0", GGML_TYPE_Q8_0}, {"q4_0", GGML_TYPE_Q4_0}};
    for (size_t i = 0; i < sizeof FORMATS / sizeof *FORMATS; i++)
        if (!strcmp(format, FORMATS[i].name)) {
            *want = FORMATS[i].type;
            return TINYLLM_OK;
        }
    return set_error(err, TINYLLM_ERR_ARG, "quantize: format '%.32s' (expected f32, f16, q8_0 or q4_0)", format);
}

tinyllm_status quantize_into(const char *in_path, out_file *out, const char *out_name, const char *format,
                             tinyllm_error *err) {
    enum ggml_type want;
    tinyllm_status st = parse_format(format, &want, err);
    if (st) return st;
    gguf_file in;
    if ((st = gguf_open(&in, in_path, 1, err))) return st;
    gguf_out o = {out->f, out_name, 0, 0};
    st = quantize_file(&in, &o, want, err);
    gguf_close(&in);
    return st;
}

tinyllm_status tinyllm_quantize(const char *in_path, const char *out_path, const char *format, tinyllm_error *err) {
    if (!in_path || !out_path || !format)
        return set_error(err, TINYLLM_ERR_ARG, "quantize: NULL path or format");
    enum ggml_type want;
    tinyllm_status st = parse_format(format, &want, err);
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
