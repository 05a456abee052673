/* The weight-format table and what needs only it (formats.h). */
#include "formats.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "half.h"

static void f32_to_f32(float *dst, const void *src, long n) { memcpy(dst, src, (size_t)n * sizeof(float)); }

static void f16_to_f32_values(float *dst, const void *src, long n) {
    const uint16_t *h = src;
    for (long i = 0; i < n; i++) dst[i] = f16_to_f32(h[i]);
}

static void q4_0_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows);
static void q8_0_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows);
static void q4_K_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows);
static void q5_K_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows);
static void q6_K_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows);
static void q2_K_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows);
static void q3_K_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows);

/* Q4_0, Q8_0 and the K-quants run through the 8-row layouts into which load
 * repacks their matrices; the other block formats run as stored. */
#define FLOAT PRODUCT_FLOAT
#define DOTS PRODUCT_Q8_DOTS
#define GEMM PRODUCT_Q8_GEMM
#define F16 GGML_TYPE_F16
static const weight_format WEIGHT_FORMATS[] = {
    /* type          name      block bytes align product decode         to_f32             layout_rows
     *               repacked  (how)           files writer           file_type fallback */
    {GGML_TYPE_F32,    "F32",    1,   4,   4,   FLOAT, NULL,          f32_to_f32,        NULL,
                     0,              NULL,           1,    quantize_f32,    0,  F16},
    {GGML_TYPE_F16,    "F16",    1,   2,   2,   FLOAT, NULL,          f16_to_f32_values, NULL,
                     0,              NULL,           1,    quantize_f16,    1,  F16},
    {GGML_TYPE_BF16,   "BF16",   1,   2,   1,   FLOAT, NULL,          bf16_to_f32_row,   NULL,
                     0,              NULL,           1,    quantize_bf16,   32, F16},
    {GGML_TYPE_Q8_0,   "Q8_0",   32,  34,  1,   DOTS,  decode_q8_0,   NULL,              NULL,
                     WEIGHT_Q8_0_X8, repack_q8_0_x8, 1,    quantize_q8_0,   7,  F16},
    {GGML_TYPE_Q4_0,   "Q4_0",   32,  18,  1,   DOTS,  decode_q4_0,   NULL,              NULL,
                     WEIGHT_Q4_0_X8, repack_q4_0_x8, 1,    quantize_q4_0,   2,  F16},
    {GGML_TYPE_Q4_1,   "Q4_1",   32,  20,  1,   DOTS,  decode_q4_1,   NULL,              NULL,
                     0,              NULL,           1,    quantize_q4_1,   3,  F16},
    {GGML_TYPE_Q5_0,   "Q5_0",   32,  22,  1,   DOTS,  decode_q5_0,   NULL,              NULL,
                     0,              NULL,           1,    quantize_q5_0,   8,  F16},
    {GGML_TYPE_Q5_1,   "Q5_1",   32,  24,  1,   DOTS,  decode_q5_1,   NULL,              NULL,
                     0,              NULL,           1,    quantize_q5_1,   9,  F16},
    {GGML_TYPE_IQ4_NL, "IQ4_NL", 32,  18,  1,   DOTS,  decode_iq4_nl, NULL,              NULL,
                     0,              NULL,           1,    quantize_iq4_nl, 25, F16},
    {GGML_TYPE_Q2_K,   "Q2_K",   256, 84,  1,   DOTS,  decode_q2_K,   NULL,              NULL,
                     WEIGHT_Q2_K_X8, repack_q2_K_x8, 1,    NULL,            -1, GGML_TYPE_IQ4_NL},
    {GGML_TYPE_Q3_K,   "Q3_K",   256, 110, 1,   DOTS,  decode_q3_K,   NULL,              NULL,
                     WEIGHT_Q3_K_X8, repack_q3_K_x8, 1,    NULL,            -1, GGML_TYPE_IQ4_NL},
    {GGML_TYPE_Q4_K,   "Q4_K",   256, 144, 1,   DOTS,  decode_q4_K,   NULL,              NULL,
                     WEIGHT_Q4_K_X8, repack_q4_K_x8, 1,    quantize_q4_K,   14, GGML_TYPE_Q5_0},
    {GGML_TYPE_Q5_K,   "Q5_K",   256, 176, 1,   DOTS,  decode_q5_K,   NULL,              NULL,
                     WEIGHT_Q5_K_X8, repack_q5_K_x8, 1,    quantize_q5_K,   16, GGML_TYPE_Q5_1},
    {GGML_TYPE_Q6_K,   "Q6_K",   256, 210, 1,   DOTS,  decode_q6_K,   NULL,              NULL,
                     WEIGHT_Q6_K_X8, repack_q6_K_x8, 1,    quantize_q6_K,   18, GGML_TYPE_Q8_0},
    {WEIGHT_Q4_0_X8,   "Q4_0x8", 32,  18,  1,   GEMM,  NULL,          NULL,              q4_0_x8_rows,
                     0,              NULL,           0,    NULL,            -1, F16},
    {WEIGHT_Q8_0_X8,   "Q8_0x8", 32,  34,  1,   GEMM,  NULL,          NULL,              q8_0_x8_rows,
                     0,              NULL,           0,    NULL,            -1, F16},
    {WEIGHT_Q4_K_X8,   "Q4_Kx8", 256, 148, 1,   GEMM,  NULL,          NULL,              q4_K_x8_rows,
                     0,              NULL,           0,    NULL,            -1, F16},
    {WEIGHT_Q5_K_X8,   "Q5_Kx8", 256, 180, 1,   GEMM,  NULL,          NULL,              q5_K_x8_rows,
                     0,              NULL,           0,    NULL,            -1, F16},
    {WEIGHT_Q6_K_X8,   "Q6_Kx8", 256, 210, 1,   GEMM,  NULL,          NULL,              q6_K_x8_rows,
                     0,              NULL,           0,    NULL,            -1, F16},
    {WEIGHT_Q2_K_X8,   "Q2_Kx8", 256, 84,  1,   GEMM,  NULL,          NULL,              q2_K_x8_rows,
                     0,              NULL,           0,    NULL,            -1, F16},
    {WEIGHT_Q3_K_X8,   "Q3_Kx8", 256, 110, 1,   GEMM,  NULL,          NULL,              q3_K_x8_rows,
                     0,              NULL,           0,    NULL,            -1, F16},
};
#undef FLOAT
#undef DOTS
#undef GEMM
#undef F16
#define N_WEIGHT_FORMATS (sizeof WEIGHT_FORMATS / sizeof WEIGHT_FORMATS[0])

const weight_format *weight_format_of(int type) {
    for (size_t i = 0; i < N_WEIGHT_FORMATS; i++)
        if (WEIGHT_FORMATS[i].type == type) return &WEIGHT_FORMATS[i];
    return NULL;
}

const weight_format *weight_format_at(size_t i) { return i < N_WEIGHT_FORMATS ? &WEIGHT_FORMATS[i] : NULL; }

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
    for (long g = 0; g < (rows + X8_ROWS - 1) / X8_ROWS; g++)
        for (long b = 0; b < nb; b++, dst += X8_ROWS * block_bytes)
            for (int r = 0; r < X8_ROWS; r++) {
                long row = g * X8_ROWS + r;
                const uint8_t *blk = src + (row * nb + b) * block_bytes;
                static const uint8_t zero[34];
                if (row >= rows) blk = zero; /* padding: scale 0, values 0 */
                memcpy(dst + 2 * r, blk, 2); /* the scale */
                for (int m = 0; m < value_bytes / 4; m++) memcpy(dst + 16 + 32 * m + 4 * r, blk + 2 + 4 * m, 4);
            }
}

size_t x8_bytes(int type, long rows, long C) {
    long padded = (rows + X8_ROWS - 1) / X8_ROWS * X8_ROWS;
    return weight_bytes(type, (size_t)padded * (size_t)C);
}

void repack_q4_0_x8(uint8_t *dst, const uint8_t *src, long rows, long C) { repack_x8(dst, src, rows, C, 16); }

/* Rows [row0, row0 + n_rows) of either 8-row layout as F32 (any rows: row r
 * is lane r % 8 of group r / 8, its scale d[r % 8] and its values at
 * qs[m][r % 8] of each block). */
static void q4_0_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows) {
    long nb = C / 32;
    for (long k = 0; k < n_rows; k++) {
        size_t row = row0 + (size_t)k;
        int r = (int)(row % X8_ROWS);
        const block_q4_0_x8 *g = (const block_q4_0_x8 *)data + row / X8_ROWS * (size_t)nb;
        for (long b = 0; b < nb; b++) {
            float d = f16_to_f32(g[b].d[r]), *y = dst + k * C + b * 32;
            for (int m = 0; m < 4; m++)
                for (int i = 0; i < 4; i++) { /* low nibbles are values 4m.., high ones 16 + 4m.. */
                    y[4 * m + i] = (float)((g[b].qs[m][r][i] & 15) - 8) * d;
                    y[16 + 4 * m + i] = (float)((g[b].qs[m][r][i] >> 4) - 8) * d;
                }
        }
    }
}

static void q8_0_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows) {
    long nb = C / 32;
    for (long k = 0; k < n_rows; k++) {
        size_t row = row0 + (size_t)k;
        int r = (int)(row % X8_ROWS);
        const block_q8_0_x8 *g = (const block_q8_0_x8 *)data + row / X8_ROWS * (size_t)nb;
        for (long b = 0; b < nb; b++) {
            float d = f16_to_f32(g[b].d[r]), *y = dst + k * C + b * 32;
            for (int m = 0; m < 8; m++)
                for (int i = 0; i < 4; i++) y[4 * m + i] = (float)g[b].qs[m][r][i] * d;
        }
    }
}

void repack_q8_0_x8(uint8_t *dst, const uint8_t *src, long rows, long C) { repack_x8(dst, src, rows, C, 32); }


/* Q4_K / Q5_K rows into WEIGHT_Q4_K_X8 / WEIGHT_Q5_K_X8 (formats.h): per
 * group of 8 rows and super-block, the rows' d and dmin, their scales and
 * mins unpacked, (Q5_K) their fifth bits and each chunk's bytes
 * interleaved 4 at a time; rows past the last are zero (scales 0). The two
 * layouts begin alike; `five` says which one. */
static void repack_k_x8(uint8_t *dst, const uint8_t *src, long rows, long C, int five) {
    long nb = C / 256;
    size_t in_bytes = five ? sizeof(block_q5_K) : sizeof(block_q4_K);
    size_t out_bytes = five ? sizeof(block_q5_K_x8) : sizeof(block_q4_K_x8);
    for (long g = 0; g < (rows + X8_ROWS - 1) / X8_ROWS; g++)
        for (long b = 0; b < nb; b++, dst += out_bytes) {
            block_q4_K_x8 *out = (block_q4_K_x8 *)dst; /* the fields both layouts share */
            uint8_t(*qs)[8][X8_ROWS][4] = five ? ((block_q5_K_x8 *)dst)->qs : out->qs;
            memset(dst, 0, out_bytes);
            for (int r = 0; r < X8_ROWS && g * X8_ROWS + r < rows; r++) {
                const uint8_t *blk = src + ((size_t)(g * X8_ROWS + r) * (size_t)nb + (size_t)b) * in_bytes;
                const uint8_t *scales = blk + (five ? offsetof(block_q5_K, scales) : offsetof(block_q4_K, scales));
                const uint8_t *codes = blk + (five ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs));
                memcpy(&out->d[r], blk + offsetof(block_q4_K, d), 2), memcpy(&out->dmin[r], blk + offsetof(block_q4_K, dmin), 2);
                for (int k = 0; k < 8; k++) {
                    int sc, m;
                    k_scale_min(scales, k, &sc, &m);
                    out->sc[k][r] = (uint8_t)sc, out->mins[k][r] = (uint8_t)m;
                }
                for (int c = 0; c < 4; c++)
                    for (int m = 0; m < 8; m++) memcpy(qs[c][m][r], codes + 32 * c + 4 * m, 4);
                if (five)
                    for (int m = 0; m < 8; m++)
                        memcpy(((block_q5_K_x8 *)dst)->qh[m][r], blk + offsetof(block_q5_K, qh) + 4 * m, 4);
            }
        }
}

void repack_q4_K_x8(uint8_t *dst, const uint8_t *src, long rows, long C) { repack_k_x8(dst, src, rows, C, 0); }
void repack_q5_K_x8(uint8_t *dst, const uint8_t *src, long rows, long C) { repack_k_x8(dst, src, rows, C, 1); }

/* Rows of WEIGHT_Q4_K_X8 / WEIGHT_Q5_K_X8 as F32: each row's super-block
 * put back as the block it came from and decoded by the format's
 * definition, so the values are the stored ones bit for bit. */
static void k_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows, int five) {
    long nb = C / 256;
    const weight_format *f = weight_format_of(five ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K);
    size_t group_bytes = five ? sizeof(block_q5_K_x8) : sizeof(block_q4_K_x8);
    for (long k = 0; k < n_rows; k++) {
        size_t row = row0 + (size_t)k;
        int r = (int)(row % X8_ROWS);
        for (long b = 0; b < nb; b++) {
            const uint8_t *at = (const uint8_t *)data + (row / X8_ROWS * (size_t)nb + (size_t)b) * group_bytes;
            const block_q4_K_x8 *g = (const block_q4_K_x8 *)at;
            const uint8_t(*qs)[8][X8_ROWS][4] = five ? ((const block_q5_K_x8 *)at)->qs : g->qs;
            uint8_t blk[sizeof(block_q5_K)], sc[8], m[8];
            uint8_t *scales = blk + (five ? offsetof(block_q5_K, scales) : offsetof(block_q4_K, scales));
            uint8_t *codes = blk + (five ? offsetof(block_q5_K, qs) : offsetof(block_q4_K, qs));
            memcpy(blk + offsetof(block_q4_K, d), &g->d[r], 2), memcpy(blk + offsetof(block_q4_K, dmin), &g->dmin[r], 2);
            for (int j = 0; j < 8; j++) sc[j] = g->sc[j][r], m[j] = g->mins[j][r];
            k_pack_scales(scales, sc, m);
            for (int c = 0; c < 4; c++)
                for (int v = 0; v < 8; v++) memcpy(codes + 32 * c + 4 * v, qs[c][v][r], 4);
            if (five)
                for (int v = 0; v < 8; v++)
                    memcpy(blk + offsetof(block_q5_K, qh) + 4 * v, ((const block_q5_K_x8 *)at)->qh[v][r], 4);
            dequantize_blocks(f->decode, f->block, f->block_bytes, dst + k * C + b * 256, blk, 256);
        }
    }
}

static void q4_K_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows) {
    k_x8_rows(dst, data, C, row0, n_rows, 0);
}
static void q5_K_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows) {
    k_x8_rows(dst, data, C, row0, n_rows, 1);
}

/* Q6_K rows into WEIGHT_Q6_K_X8 (formats.h): the same bytes, regrouped;
 * rows past the last are zero (scales 0). */
void repack_q6_K_x8(uint8_t *dst, const uint8_t *src, long rows, long C) {
    long nb = C / 256;
    block_q6_K_x8 *out = (block_q6_K_x8 *)dst;
    for (long g = 0; g < (rows + X8_ROWS - 1) / X8_ROWS; g++)
        for (long b = 0; b < nb; b++, out++) {
            memset(out, 0, sizeof *out);
            for (int r = 0; r < X8_ROWS && g * X8_ROWS + r < rows; r++) {
                block_q6_K blk;
                memcpy(&blk, src + ((g * X8_ROWS + r) * nb + b) * sizeof blk, sizeof blk);
                out->d[r] = blk.d;
                for (int k = 0; k < 16; k++) out->sc[k][r] = blk.scales[k];
                for (int h = 0; h < 2; h++)
                    for (int m = 0; m < 8; m++) {
                        for (int p = 0; p < 2; p++) memcpy(out->half[h].ql[p][m][r], blk.ql + 64 * h + 32 * p + 4 * m, 4);
                        memcpy(out->half[h].qh[m][r], blk.qh + 32 * h + 4 * m, 4);
                    }
            }
        }
}

/* Rows of WEIGHT_Q6_K_X8 as F32: each row's super-block put back as the
 * Q6_K block it came from and decoded by the format's definition. */
static void q6_K_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows) {
    long nb = C / 256;
    const weight_format *q6_K = weight_format_of(GGML_TYPE_Q6_K);
    for (long k = 0; k < n_rows; k++) {
        size_t row = row0 + (size_t)k;
        int r = (int)(row % X8_ROWS);
        const block_q6_K_x8 *g = (const block_q6_K_x8 *)data + row / X8_ROWS * (size_t)nb;
        for (long b = 0; b < nb; b++) {
            block_q6_K blk;
            blk.d = g[b].d[r];
            for (int j = 0; j < 16; j++) blk.scales[j] = g[b].sc[j][r];
            for (int h = 0; h < 2; h++)
                for (int m = 0; m < 8; m++) {
                    for (int p = 0; p < 2; p++) memcpy(blk.ql + 64 * h + 32 * p + 4 * m, g[b].half[h].ql[p][m][r], 4);
                    memcpy(blk.qh + 32 * h + 4 * m, g[b].half[h].qh[m][r], 4);
                }
            dequantize_blocks(q6_K->decode, q6_K->block, q6_K->block_bytes, dst + k * C + b * 256, &blk, 256);
        }
    }
}

/* Q2_K / Q3_K rows into WEIGHT_Q2_K_X8 / WEIGHT_Q3_K_X8 (formats.h): the
 * same bytes, regrouped; rows past the last are zero (scales 0). */
void repack_q2_K_x8(uint8_t *dst, const uint8_t *src, long rows, long C) {
    long nb = C / 256;
    block_q2_K_x8 *out = (block_q2_K_x8 *)dst;
    for (long g = 0; g < (rows + X8_ROWS - 1) / X8_ROWS; g++)
        for (long b = 0; b < nb; b++, out++) {
            memset(out, 0, sizeof *out);
            for (int r = 0; r < X8_ROWS && g * X8_ROWS + r < rows; r++) {
                block_q2_K blk;
                memcpy(&blk, src + ((g * X8_ROWS + r) * nb + b) * sizeof blk, sizeof blk);
                out->d[r] = blk.d, out->dmin[r] = blk.dmin;
                for (int k = 0; k < 16; k++) out->scales[k][r] = blk.scales[k];
                for (int h = 0; h < 2; h++)
                    for (int m = 0; m < 8; m++) memcpy(out->qs[h][m][r], blk.qs + 32 * h + 4 * m, 4);
            }
        }
}

void repack_q3_K_x8(uint8_t *dst, const uint8_t *src, long rows, long C) {
    long nb = C / 256;
    block_q3_K_x8 *out = (block_q3_K_x8 *)dst;
    for (long g = 0; g < (rows + X8_ROWS - 1) / X8_ROWS; g++)
        for (long b = 0; b < nb; b++, out++) {
            memset(out, 0, sizeof *out);
            for (int r = 0; r < X8_ROWS && g * X8_ROWS + r < rows; r++) {
                block_q3_K blk;
                memcpy(&blk, src + ((g * X8_ROWS + r) * nb + b) * sizeof blk, sizeof blk);
                out->d[r] = blk.d;
                for (int j = 0; j < 12; j++) out->scales[j][r] = blk.scales[j];
                for (int m = 0; m < 8; m++) memcpy(out->hmask[m][r], blk.hmask + 4 * m, 4);
                for (int h = 0; h < 2; h++)
                    for (int m = 0; m < 8; m++) memcpy(out->qs[h][m][r], blk.qs + 32 * h + 4 * m, 4);
            }
        }
}

/* Rows of WEIGHT_Q2_K_X8 / WEIGHT_Q3_K_X8 as F32: each row's super-block
 * put back as the block it came from and decoded by the format's
 * definition. */
static void q2_K_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows) {
    long nb = C / 256;
    const weight_format *q2_K = weight_format_of(GGML_TYPE_Q2_K);
    for (long k = 0; k < n_rows; k++) {
        size_t row = row0 + (size_t)k;
        int r = (int)(row % X8_ROWS);
        const block_q2_K_x8 *g = (const block_q2_K_x8 *)data + row / X8_ROWS * (size_t)nb;
        for (long b = 0; b < nb; b++) {
            block_q2_K blk;
            blk.d = g[b].d[r], blk.dmin = g[b].dmin[r];
            for (int j = 0; j < 16; j++) blk.scales[j] = g[b].scales[j][r];
            for (int h = 0; h < 2; h++)
                for (int m = 0; m < 8; m++) memcpy(blk.qs + 32 * h + 4 * m, g[b].qs[h][m][r], 4);
            dequantize_blocks(q2_K->decode, q2_K->block, q2_K->block_bytes, dst + k * C + b * 256, &blk, 256);
        }
    }
}

static void q3_K_x8_rows(float *dst, const void *data, long C, size_t row0, long n_rows) {
    long nb = C / 256;
    const weight_format *q3_K = weight_format_of(GGML_TYPE_Q3_K);
    for (long k = 0; k < n_rows; k++) {
        size_t row = row0 + (size_t)k;
        int r = (int)(row % X8_ROWS);
        const block_q3_K_x8 *g = (const block_q3_K_x8 *)data + row / X8_ROWS * (size_t)nb;
        for (long b = 0; b < nb; b++) {
            block_q3_K blk;
            blk.d = g[b].d[r];
            for (int j = 0; j < 12; j++) blk.scales[j] = g[b].scales[j][r];
            for (int m = 0; m < 8; m++) memcpy(blk.hmask + 4 * m, g[b].hmask[m][r], 4);
            for (int h = 0; h < 2; h++)
                for (int m = 0; m < 8; m++) memcpy(blk.qs + 32 * h + 4 * m, g[b].qs[h][m][r], 4);
            dequantize_blocks(q3_K->decode, q3_K->block, q3_K->block_bytes, dst + k * C + b * 256, &blk, 256);
        }
    }
}
