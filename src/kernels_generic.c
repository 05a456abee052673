/* The kernels in plain C: the definitions, and the "scalar" kernel set (the
 * one every CPU runs, and TINYLLM_ISA=scalar). Each function is the
 * arithmetic the vector sets (kernels_isa.c, dots_isa.c) compute faster;
 * the unit tests hold every vector set against these. Weight formats are
 * read through their typed blocks (quants.h, formats.h): the block dots are
 * the formats' own definitions (quants.c). */
#include <math.h>
#include <string.h>

#include "half.h"
#include "kernels.h"

/* ------------------------------------------ weight-streaming products -- */

/* out[:, o0:o1] (T, OC) = in (T, C; rows in_stride apart) @ w^T + bias:
 * one dot product per (row, output), w's row o being C values at o * C */
static void stream_f32(float *out, const float *in, int in_stride, const void *w, const float *bias, int T, int C,
                       int OC, int o0, int o1) {
    for (int t = 0; t < T; t++)
        for (int o = o0; o < o1; o++) {
            const float *x = in + (size_t)t * in_stride, *r = (const float *)w + (size_t)o * C;
            float s = 0.0f;
            for (int c = 0; c < C; c++) s += r[c] * x[c];
            out[(size_t)t * OC + o] = s + (bias ? bias[o] : 0.0f);
        }
}

static void stream_f16(float *out, const float *in, int in_stride, const void *w, const float *bias, int T, int C,
                       int OC, int o0, int o1) {
    for (int t = 0; t < T; t++)
        for (int o = o0; o < o1; o++) {
            const float *x = in + (size_t)t * in_stride;
            const uint16_t *r = (const uint16_t *)w + (size_t)o * C;
            float s = 0.0f;
            for (int c = 0; c < C; c++) s += f16_to_f32(r[c]) * x[c];
            out[(size_t)t * OC + o] = s + (bias ? bias[o] : 0.0f);
        }
}

/* BF16: each weight widened to F32 (exact) as it is read */
static void stream_bf16(float *out, const float *in, int in_stride, const void *w, const float *bias, int T, int C,
                        int OC, int o0, int o1) {
    for (int t = 0; t < T; t++)
        for (int o = o0; o < o1; o++)
            out[(size_t)t * OC + o] = dot_bf16_f32((const uint8_t *)w + (size_t)o * C * 2, in + (size_t)t * in_stride, C) +
                                      (bias ? bias[o] : 0.0f);
}

/* ---------------------------------------------- quantized activations -- */

/* Rows [t0, t1) of in, in groups of x->group values (32, or 256 for the
 * K-quants) that share one scale d = max|x| / 127 over the group (NaN when
 * it holds a NaN: then so are the products), each value
 * round-to-even(x * 127 / max|x|) saturated to -128..127; per block of
 * QK_LEGACY values the scale and the sum of its codes (q8_act in quants.h). */
static void quantize_q8_act(const q8_act *x, const float *in, int in_stride, int t0, int t1) {
    int nb = x->C / QK_LEGACY;
    for (int t = t0; t < t1; t++)
        for (int g = 0; g < x->C / x->group; g++) {
            const float *xg = in + (size_t)t * in_stride + g * x->group;
            float amax = 0.0f;
            for (int i = 0; i < x->group; i++) {
                float a = fabsf(xg[i]);
                amax = isnan(a) || isnan(amax) ? NAN : a > amax ? a : amax;
            }
            float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
            for (int b = g * x->group / QK_LEGACY; b < (g + 1) * x->group / QK_LEGACY; b++) {
                const float *xb = in + (size_t)t * in_stride + b * QK_LEGACY;
                int8_t *q = x->q + (size_t)t * x->C + b * QK_LEGACY;
                int32_t sum = 0;
                for (int i = 0; i < QK_LEGACY; i++) {
                    long v = lrintf(xb[i] * inv); /* ties to even: the vector conversions' rounding */
                    q[i] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
                    sum += q[i];
                }
                x->d[(size_t)t * nb + b] = amax / 127.0f;
                x->s[(size_t)t * nb + b] = sum;
            }
        }
}

/* ---------------------------------------------- the 8-row layouts -- */

/* out[t0:t1, o0:o1] (rows OC apart) = x's rows [t0, t1) @ w^T + bias, w in
 * WEIGHT_Q4_0_X8 / WEIGHT_Q8_0_X8: per group of 8 weight rows and block b,
 * each row's integer block dot with x's block, times the row's scale and
 * x's. A Q4_0 code n is the value n - 8: the -8 comes in through x's sum. */
static void gemm_q4_0_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                         int o0, int o1) {
    int nb = x->C / QK_LEGACY;
    for (int o = o0; o < o1; o++) {
        const block_q4_0_x8 *g = (const block_q4_0_x8 *)w + (size_t)(o / X8_ROWS) * nb; /* o's group */
        int r = o % X8_ROWS;
        for (int t = t0; t < t1; t++) {
            const int8_t *xq = x->q + (size_t)t * x->C;
            float acc = 0.0f;
            for (int b = 0; b < nb; b++) {
                int32_t sum = -8 * x->s[(size_t)t * nb + b];
                for (int m = 0; m < 4; m++)
                    for (int j = 0; j < 4; j++) { /* value byte 4m + j: values 4m + j (low) and 16 + 4m + j (high) */
                        uint8_t byte = g[b].qs[m][r][j];
                        sum += (byte & 15) * xq[b * QK_LEGACY + 4 * m + j] + (byte >> 4) * xq[b * QK_LEGACY + 16 + 4 * m + j];
                    }
                acc += (float)sum * (f16_to_f32(g[b].d[r]) * x->d[(size_t)t * nb + b]);
            }
            out[(size_t)t * OC + o] = acc + (bias ? bias[o] : 0.0f);
        }
    }
}

static void gemm_q8_0_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                         int o0, int o1) {
    int nb = x->C / QK_LEGACY;
    for (int o = o0; o < o1; o++) {
        const block_q8_0_x8 *g = (const block_q8_0_x8 *)w + (size_t)(o / X8_ROWS) * nb;
        int r = o % X8_ROWS;
        for (int t = t0; t < t1; t++) {
            const int8_t *xq = x->q + (size_t)t * x->C;
            float acc = 0.0f;
            for (int b = 0; b < nb; b++) {
                int32_t sum = 0;
                for (int m = 0; m < 8; m++)
                    for (int j = 0; j < 4; j++) sum += g[b].qs[m][r][j] * xq[b * QK_LEGACY + 4 * m + j];
                acc += (float)sum * (f16_to_f32(g[b].d[r]) * x->d[(size_t)t * nb + b]);
            }
            out[(size_t)t * OC + o] = acc + (bias ? bias[o] : 0.0f);
        }
    }
}

/* ------------------------------------------------------ activations -- */

/* GELU, GPT-2's tanh approximation: x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
static void gelu(float *x, long N) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (long i = 0; i < N; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

/* SwiGLU: silu(gate) * up, silu(g) = g / (1 + e^-g) */
static void swiglu(float *gate, const float *up, long N) {
    for (long i = 0; i < N; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* ------------------------------------------------------- attention -- */

/* x = e^(x - max) / sum: the maximum subtracted first, so no term overflows */
static void softmax(float *x, int N) {
    float max = -INFINITY;
    for (int i = 0; i < N; i++)
        if (x[i] > max) max = x[i];
    double sum = 0.0;
    for (int i = 0; i < N; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < N; i++) x[i] *= inv;
}

/* out[j] = scale * (q . rows[j]): a query against each cached key */
static void dots(float *out, const float *q, const float *rows, int row_stride, float scale, int L, int C) {
    for (int j = 0; j < L; j++) {
        const float *r = rows + (size_t)j * row_stride;
        float d = 0.0f;
        for (int c = 0; c < C; c++) d += q[c] * r[c];
        out[j] = d * scale;
    }
}

/* out = sum_j p[j] rows[j]: the values mixed by the attention weights */
static void weighted_sum(float *out, const float *p, const float *rows, int row_stride, int L, int C) {
    memset(out, 0, (size_t)C * sizeof(float));
    for (int j = 0; j < L; j++) {
        const float *r = rows + (size_t)j * row_stride;
        for (int c = 0; c < C; c++) out[c] += p[j] * r[c];
    }
}

/* ---------------------------------------------------- memory reads -- */

/* The bytes folded 8 at a time into eight independent words: loads only,
 * as many in flight as the core allows */
static uint64_t read_bytes(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t s[8] = {0}, w;
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 8; k++) {
            memcpy(&w, b + i + 8 * k, sizeof w);
            s[k] ^= w;
        }
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, b + i, sizeof w);
        s[0] ^= w;
    }
    for (; i < n; i++) s[0] ^= b[i];
    return s[0] ^ s[1] ^ s[2] ^ s[3] ^ s[4] ^ s[5] ^ s[6] ^ s[7];
}

static const stream_fn STREAM[KERNEL_TYPES] = {
    [GGML_TYPE_F32] = stream_f32, [GGML_TYPE_F16] = stream_f16, [GGML_TYPE_BF16] = stream_bf16,
};
/* WEIGHT_Q4_K_X8 / WEIGHT_Q5_K_X8 (five: Q5_K's fifth bits), x quantized
 * in groups of 256 (one scale dx per super-block): per super-block,
 * d dx sum_k sc_k (q . x over sub-block k) - dmin dx sum_k min_k (x's sum
 * over sub-block k: its block sum s). */
static void gemm_k_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC, int o0,
                      int o1, int five) {
    int nb = x->C / QK_K, nb32 = x->C / QK_LEGACY;
    size_t group_bytes = five ? sizeof(block_q5_K_x8) : sizeof(block_q4_K_x8);
    for (int o = o0; o < o1; o++) {
        int r = o % X8_ROWS;
        for (int t = t0; t < t1; t++) {
            const int8_t *xq = x->q + (size_t)t * x->C;
            float acc = 0.0f;
            for (int b = 0; b < nb; b++) {
                const uint8_t *at = (const uint8_t *)w + ((size_t)(o / X8_ROWS) * nb + b) * group_bytes;
                const block_q4_K_x8 *g = (const block_q4_K_x8 *)at; /* the fields both layouts share */
                const block_q5_K_x8 *g5 = (const block_q5_K_x8 *)at;
                const int8_t *xb = xq + b * QK_K;
                int32_t sum = 0, mins = 0;
                for (int k = 0; k < 8; k++) { /* sub-block k: the low (k even) or high nibbles of chunk k / 2 */
                    int32_t sub = 0;
                    for (int m = 0; m < 8; m++)
                        for (int j = 0; j < 4; j++) {
                            uint8_t byte = five ? g5->qs[k / 2][m][r][j] : g->qs[k / 2][m][r][j];
                            int q = k % 2 ? byte >> 4 : byte & 15;
                            if (five) q += (g5->qh[m][r][j] >> k & 1) << 4;
                            sub += q * xb[32 * k + 4 * m + j];
                        }
                    sum += g->sc[k][r] * sub;
                    mins += g->mins[k][r] * x->s[(size_t)t * nb32 + 8 * b + k];
                }
                float dx = x->d[(size_t)t * nb32 + 8 * b];
                acc += (float)sum * (f16_to_f32(g->d[r]) * dx) - (float)mins * (f16_to_f32(g->dmin[r]) * dx);
            }
            out[(size_t)t * OC + o] = acc + (bias ? bias[o] : 0.0f);
        }
    }
}

static void gemm_q4_K_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                         int o0, int o1) {
    gemm_k_x8(out, x, w, bias, t0, t1, OC, o0, o1, 0);
}
static void gemm_q5_K_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                         int o0, int o1) {
    gemm_k_x8(out, x, w, bias, t0, t1, OC, o0, o1, 1);
}

/* WEIGHT_Q6_K_X8: per super-block, d dx sum_k sc_k ((q - 32) . x over
 * sub-block k of 16 values). */
static void gemm_q6_K_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                         int o0, int o1) {
    int nb = x->C / QK_K, nb32 = x->C / QK_LEGACY;
    for (int o = o0; o < o1; o++) {
        const block_q6_K_x8 *g = (const block_q6_K_x8 *)w + (size_t)(o / X8_ROWS) * nb; /* o's group */
        int r = o % X8_ROWS;
        for (int t = t0; t < t1; t++) {
            const int8_t *xq = x->q + (size_t)t * x->C;
            float acc = 0.0f;
            for (int b = 0; b < nb; b++) {
                const int8_t *xb = xq + b * QK_K;
                int32_t sub[16] = {0};
                for (int h = 0; h < 2; h++)
                    for (int p = 0; p < 2; p++)
                        for (int m = 0; m < 8; m++)
                            for (int j = 0; j < 4; j++) {
                                int low = g[b].half[h].ql[p][m][r][j], top = g[b].half[h].qh[m][r][j];
                                int v = 128 * h + 32 * p + 4 * m + j; /* the low nibble's value; the high one's is v + 64 */
                                sub[v / 16] += (((low & 15) | (top >> 2 * p & 3) << 4) - 32) * xb[v];
                                sub[(v + 64) / 16] += (((low >> 4) | (top >> (4 + 2 * p) & 3) << 4) - 32) * xb[v + 64];
                            }
                int32_t sum = 0;
                for (int k = 0; k < 16; k++) sum += g[b].sc[k][r] * sub[k];
                acc += (float)sum * (f16_to_f32(g[b].d[r]) * x->d[(size_t)t * nb32 + 8 * b]);
            }
            out[(size_t)t * OC + o] = acc + (bias ? bias[o] : 0.0f);
        }
    }
}

/* WEIGHT_Q2_K_X8 / WEIGHT_Q3_K_X8 (three): per super-block, the 2-bit code
 * of value v = 128h + 32p + 4m + j in bits 2p of qs[h][m][r][j] (Q3_K: plus
 * 4 when bit 4h + p of hmask[m][r][j] is set, minus 4 always); Q2_K:
 * d dx sum_k sc_k (q . x over sub-block k) - dmin dx sum_k min_k (x's sum
 * over sub-block k); Q3_K: d dx sum_k sc_k (q . x over sub-block k), sc_k signed
 * (q3_K_scales). */
static void gemm_k2_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC, int o0,
                       int o1, int three) {
    int nb = x->C / QK_K, nb32 = x->C / QK_LEGACY;
    size_t group_bytes = three ? sizeof(block_q3_K_x8) : sizeof(block_q2_K_x8);
    for (int o = o0; o < o1; o++) {
        int r = o % X8_ROWS;
        for (int t = t0; t < t1; t++) {
            const int8_t *xq = x->q + (size_t)t * x->C;
            float acc = 0.0f;
            for (int b = 0; b < nb; b++) {
                const uint8_t *at = (const uint8_t *)w + ((size_t)(o / X8_ROWS) * nb + b) * group_bytes;
                const block_q2_K_x8 *g2 = (const block_q2_K_x8 *)at;
                const block_q3_K_x8 *g3 = (const block_q3_K_x8 *)at;
                const int8_t *xb = xq + b * QK_K;
                int32_t sub[16] = {0}, xsum[16] = {0};
                for (int h = 0; h < 2; h++)
                    for (int p = 0; p < 4; p++)
                        for (int m = 0; m < 8; m++)
                            for (int j = 0; j < 4; j++) {
                                int v = 128 * h + 32 * p + 4 * m + j;
                                int q = (three ? g3->qs[h][m][r][j] : g2->qs[h][m][r][j]) >> 2 * p & 3;
                                if (three) q += 4 * (g3->hmask[m][r][j] >> (4 * h + p) & 1) - 4;
                                sub[v / 16] += q * xb[v];
                                xsum[v / 16] += xb[v];
                            }
                int32_t sum = 0, mins = 0;
                int8_t sc3[16]; /* Q3_K: the row's 12 stored scale bytes, decoded by the format's own reader */
                if (three) {
                    uint8_t packed[12];
                    for (int j = 0; j < 12; j++) packed[j] = g3->scales[j][r];
                    q3_K_scales(packed, sc3);
                }
                for (int k = 0; k < 16; k++) {
                    if (three) {
                        sum += sc3[k] * sub[k];
                    } else {
                        sum += (g2->scales[k][r] & 15) * sub[k];
                        mins += (g2->scales[k][r] >> 4) * xsum[k];
                    }
                }
                float dx = x->d[(size_t)t * nb32 + 8 * b];
                acc += (float)sum * (f16_to_f32(three ? g3->d[r] : g2->d[r]) * dx);
                if (!three) acc -= (float)mins * (f16_to_f32(g2->dmin[r]) * dx);
            }
            out[(size_t)t * OC + o] = acc + (bias ? bias[o] : 0.0f);
        }
    }
}

static void gemm_q2_K_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                         int o0, int o1) {
    gemm_k2_x8(out, x, w, bias, t0, t1, OC, o0, o1, 0);
}
static void gemm_q3_K_x8(float *out, const q8_act *x, const void *w, const float *bias, int t0, int t1, int OC,
                         int o0, int o1) {
    gemm_k2_x8(out, x, w, bias, t0, t1, OC, o0, o1, 1);
}

static const gemm_q8_fn GEMM[KERNEL_TYPES] = {
    [WEIGHT_Q4_0_X8] = gemm_q4_0_x8, [WEIGHT_Q8_0_X8] = gemm_q8_0_x8, [WEIGHT_Q4_K_X8] = gemm_q4_K_x8,
    [WEIGHT_Q5_K_X8] = gemm_q5_K_x8, [WEIGHT_Q6_K_X8] = gemm_q6_K_x8, [WEIGHT_Q2_K_X8] = gemm_q2_K_x8,
    [WEIGHT_Q3_K_X8] = gemm_q3_K_x8};
/* float formats: converted rows for sgemm (kernels.c) */
static const gemm_float_fn GEMM_FLOAT[KERNEL_TYPES];
/* the block formats' dots and every format's rows as F32: the formats' own
 * definitions (quants.c, formats.c) */
static const dot_q8_fn DEFINITIONS_DOT[KERNEL_TYPES];
static const to_f32_fn DEFINITIONS_TO_F32[KERNEL_TYPES];

const kernel_ops kernel_ops_scalar = {
    .name = "scalar",
    .stream = STREAM,
    .dot_q8 = DEFINITIONS_DOT,
    .gemm = GEMM,
    .gemm_float = GEMM_FLOAT,
    .to_f32 = DEFINITIONS_TO_F32,
    .quantize_q8_act = quantize_q8_act,
    .gelu = gelu,
    .swiglu = swiglu,
    .softmax = softmax,
    .dots = dots,
    .weighted_sum = weighted_sum,
    .read_bytes = read_bytes,
};
