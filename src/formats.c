/* The weight-format table and what needs only it (formats.h). */
#include "formats.h"

#include <stdio.h>
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

const char *weight_format_names(char *buf, size_t cap) {
    size_t n_files = 0, used = 0, seen = 0;
    for (size_t i = 0; i < N_WEIGHT_FORMATS; i++) n_files += WEIGHT_FORMATS[i].in_files != 0;
    if (cap) buf[0] = 0;
    for (size_t i = 0; i < N_WEIGHT_FORMATS && used < cap; i++) {
        if (!WEIGHT_FORMATS[i].in_files) continue;
        const char *sep = seen == 0 ? "" : seen + 1 == n_files ? " or " : ", ";
        int w = snprintf(buf + used, cap - used, "%s%s", sep, WEIGHT_FORMATS[i].name);
        if (w < 0) break;
        used += (size_t)w, seen++;
    }
    return buf;
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

