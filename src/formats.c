/* The weight-format table and what needs only it (formats.h). */
#include "formats.h"

#include <string.h>

#include "half.h"

/* Q4_0 and Q8_0 decode through the 8-row layouts (kernels.h) into which
 * load repacks their matrices; the other block formats run as stored. */
static const weight_format WEIGHT_FORMATS[] = {
    /* type             name      block  bytes  decode          repacked        files  writer */
    {GGML_TYPE_F32,    "F32",     1,     4,     NULL,           0,              1,     NULL},
    {GGML_TYPE_F16,    "F16",     1,     2,     NULL,           0,              1,     NULL},
    {GGML_TYPE_BF16,   "BF16",    1,     2,     NULL,           0,              1,     quantize_bf16},
    {GGML_TYPE_Q8_0,   "Q8_0",    32,    34,    decode_q8_0,    WEIGHT_Q8_0_X8, 1,     quantize_q8_0},
    {GGML_TYPE_Q4_0,   "Q4_0",    32,    18,    decode_q4_0,    WEIGHT_Q4_0_X8, 1,     quantize_q4_0},
    {GGML_TYPE_Q4_1,   "Q4_1",    32,    20,    decode_q4_1,    0,              1,     quantize_q4_1},
    {GGML_TYPE_Q5_0,   "Q5_0",    32,    22,    decode_q5_0,    0,              1,     quantize_q5_0},
    {GGML_TYPE_Q5_1,   "Q5_1",    32,    24,    decode_q5_1,    0,              1,     quantize_q5_1},
    {GGML_TYPE_IQ4_NL, "IQ4_NL",  32,    18,    decode_iq4_nl,  0,              1,     quantize_iq4_nl},
    {GGML_TYPE_Q2_K,   "Q2_K",    256,   84,    decode_q2_K,    0,              1,     NULL},
    {GGML_TYPE_Q3_K,   "Q3_K",    256,   110,   decode_q3_K,    0,              1,     NULL},
    {GGML_TYPE_Q4_K,   "Q4_K",    256,   144,   decode_q4_K,    0,              1,     quantize_q4_K},
    {GGML_TYPE_Q5_K,   "Q5_K",    256,   176,   decode_q5_K,    0,              1,     quantize_q5_K},
    {GGML_TYPE_Q6_K,   "Q6_K",    256,   210,   decode_q6_K,    0,              1,     quantize_q6_K},
    {WEIGHT_Q4_0_X8,   "Q4_0x8",  32,    18,    NULL,           0,              0,     NULL},
    {WEIGHT_Q8_0_X8,   "Q8_0x8",  32,    34,    NULL,           0,              0,     NULL},
};
#define N_WEIGHT_FORMATS (sizeof WEIGHT_FORMATS / sizeof WEIGHT_FORMATS[0])

const weight_format *weight_format_of(int type) {
    for (size_t i = 0; i < N_WEIGHT_FORMATS; i++)
        if (WEIGHT_FORMATS[i].type == type) return &WEIGHT_FORMATS[i];
    return NULL;
}

const char *weight_format_names(void) {
    return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K or Q6_K";
}

size_t weight_bytes(int type, size_t n) {
    const weight_format *f = weight_format_of(type);
    return n / (size_t)f->block * (size_t)f->block_bytes;
}

matrix matrix_at(matrix w, size_t offset) {
    matrix r = {(const char *)w.data + weight_bytes(w.type, offset), w.type};
    return r;
}

/* Both 8-row layouts: per group and block, the 8 rows' scales, then
 * vectors of 32 bytes where vector m holds bytes 4m..4m+3 of each row's
 * value bytes (row r at 4r); value_bytes is 16 (Q4_0) or 32 (Q8_0). */
static void repack_x8(uint8_t *dst, const uint8_t *src, long rows, long C, int value_bytes) {
    long nb = C / 32, block_bytes = 2 + value_bytes;
    for (long g = 0; g < (rows + Q4_0_X8_ROWS - 1) / Q4_0_X8_ROWS; g++)
        for (long b = 0; b < nb; b++, dst += Q4_0_X8_ROWS * block_bytes)
            for (int r = 0; r < Q4_0_X8_ROWS; r++) {
                long row = g * Q4_0_X8_ROWS + r;
                const uint8_t *blk = src + (row * nb + b) * block_bytes;
                static const uint8_t zero[34];
                if (row >= rows) blk = zero; /* padding: scale 0, values 0 */
                memcpy(dst + 2 * r, blk, 2); /* the scale */
                for (int m = 0; m < value_bytes / 4; m++) memcpy(dst + 16 + 32 * m + 4 * r, blk + 2 + 4 * m, 4);
            }
}

size_t x8_bytes(int type, long rows, long C) {
    long padded = (rows + Q4_0_X8_ROWS - 1) / Q4_0_X8_ROWS * Q4_0_X8_ROWS;
    return weight_bytes(type, (size_t)padded * (size_t)C);
}

void repack_q4_0_x8(uint8_t *dst, const uint8_t *src, long rows, long C) { repack_x8(dst, src, rows, C, 16); }

void repack_q8_0_x8(uint8_t *dst, const uint8_t *src, long rows, long C) { repack_x8(dst, src, rows, C, 32); }

/* dst (n_rows, C) = rows [row0, row0 + n_rows) of WEIGHT_Q4_0_X8 or
 * WEIGHT_Q8_0_X8 data (any rows: row r is lane r % 8 of group r / 8, its
 * scale at 2r and its values at 4r of each 32-byte vector). */
static void x8_rows(float *dst, const uint8_t *base, int q8, size_t row0, long n_rows, long C) {
    long nb = C / 32, group_bytes = q8 ? Q8_0_X8_GROUP_BYTES : Q4_0_X8_GROUP_BYTES;
    for (long k = 0; k < n_rows; k++) {
        size_t row = row0 + (size_t)k;
        int r = (int)(row % Q4_0_X8_ROWS);
        const uint8_t *src = base + row / Q4_0_X8_ROWS * (size_t)nb * group_bytes;
        for (long b = 0; b < nb; b++, src += group_bytes) {
            uint16_t h;
            memcpy(&h, src + 2 * r, 2);
            float d = f16_to_f32(h);
            float *y = dst + k * C + b * 32;
            for (int m = 0; m < (q8 ? 8 : 4); m++)
                for (int i = 0; i < 4; i++) {
                    uint8_t byte = src[16 + 32 * m + 4 * r + i];
                    if (q8) {
                        y[4 * m + i] = (float)(int8_t)byte * d;
                    } else { /* low nibbles are values 4m.., high ones 16 + 4m.. */
                        y[4 * m + i] = (float)((byte & 15) - 8) * d;
                        y[16 + 4 * m + i] = (float)((byte >> 4) - 8) * d;
                    }
                }
        }
    }
}

void matrix_rows(const kernel_ops *k, float *dst, matrix w, long C, size_t row0, long n_rows) {
    const weight_format *f = weight_format_of(w.type);
    const void *src = (const char *)w.data + weight_bytes(w.type, row0 * (size_t)C);
    long n = n_rows * C;
    if (f->decode && w.type < KERNEL_TYPES && k->to_f32[w.type]) {
        k->to_f32[w.type](dst, src, n);
        return;
    }
    if (f->decode) {
        dequantize_blocks(f->decode, f->block, f->block_bytes, dst, src, n);
        return;
    }
    switch (w.type) {
    case GGML_TYPE_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case GGML_TYPE_F16: k->f16_to_f32_row(dst, src, n); break;
    case GGML_TYPE_BF16: bf16_to_f32_row(dst, src, n); break;
    case WEIGHT_Q4_0_X8: x8_rows(dst, w.data, 0, row0, n_rows, C); break;
    case WEIGHT_Q8_0_X8: x8_rows(dst, w.data, 1, row0, n_rows, C); break;
    }
}
