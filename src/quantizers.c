/* The writers of the weight formats (quantizers.h): float rows to blocks,
 * each block laid out as its decoder in quants.c reads it back. Scales are
 * chosen to make the block's squared error small (a short search over
 * candidate scales, each refined by least squares), then stored in the
 * format's precision, and the codes recomputed against the stored scales:
 * the error is that of what a reader gets. Facts: docs/formats.md. */
#include "quantizers.h"

#include <math.h>
#include <string.h>

#include "half.h"
#include "quants.h"

static int nearest(float x) { return (int)lrintf(x); }
static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static uint16_t half_of(float x) { return f32_to_f16(x); }
static float stored(uint16_t h) { return f16_to_f32(h); }

/* the value of largest magnitude, with its sign */
static float signed_amax(const float *x, int n) {
    float best = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > fabsf(best)) best = x[i];
    return best;
}

/* ------------------------------------------------------ blocks of 32 -- */

/* Q8_0: d = max|x| / 127, q = round(x / d) */
void quantize_q8_0(void *dst, const float *x, long n) {
    block_q8_0 *b = dst;
    for (long k = 0; k < n / 32; k++, x += 32, b++) {
        float amax = fabsf(signed_amax(x, 32));
        b->d = half_of(amax / 127.0f);
        float d = stored(b->d), inv = d != 0.0f ? 1.0f / d : 0.0f;
        for (int i = 0; i < 32; i++) b->qs[i] = (int8_t)clampi(nearest(x[i] * inv), -127, 127);
    }
}

/* 4-bit codes into the legacy nibble layout: byte j holds j (low) and j + 16 */
static void pack_nibbles(uint8_t *qs, const uint8_t *q) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)(q[j] | q[j + 16] << 4);
}

/* Q4_0: d = max|x| / 7, q = round(x / d) in -8..7, stored + 8 */
void quantize_q4_0(void *dst, const float *x, long n) {
    block_q4_0 *b = dst;
    for (long k = 0; k < n / 32; k++, x += 32, b++) {
        float amax = fabsf(signed_amax(x, 32));
        b->d = half_of(amax / 7.0f);
        float d = stored(b->d), inv = d != 0.0f ? 1.0f / d : 0.0f;
        uint8_t q[32];
        for (int i = 0; i < 32; i++) q[i] = (uint8_t)(clampi(nearest(x[i] * inv), -8, 7) + 8);
        pack_nibbles(b->qs, q);
    }
}

/* Min and scale for codes 0..nmax over x (32 values): value = d q + m with
 * m = min x and d = (max - min) / nmax, both as stored (F16). */
static void min_scale(const float *x, int nmax, uint16_t *d16, uint16_t *m16, uint8_t *q) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < 32; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    *d16 = half_of((hi - lo) / (float)nmax);
    *m16 = half_of(lo);
    float d = stored(*d16), m = stored(*m16), inv = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < 32; i++) q[i] = (uint8_t)clampi(nearest((x[i] - m) * inv), 0, nmax);
}

void quantize_q4_1(void *dst, const float *x, long n) {
    block_q4_1 *b = dst;
    for (long k = 0; k < n / 32; k++, x += 32, b++) {
        uint8_t q[32];
        min_scale(x, 15, &b->d, &b->m, q);
        pack_nibbles(b->qs, q);
    }
}

/* 5-bit codes: the low 4 as nibbles, bit 4 of code j as bit j of qh */
static void pack_q5(uint8_t *qh, uint8_t *qs, const uint8_t *q) {
    uint32_t h = 0, lo[32];
    for (int j = 0; j < 32; j++) h |= (uint32_t)(q[j] >> 4) << j, lo[j] = q[j] & 15;
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)(lo[j] | lo[j + 16] << 4);
    for (int i = 0; i < 4; i++) qh[i] = (uint8_t)(h >> (8 * i));
}

/* Q5_0: d = (signed max) / -16, q = round(x / d) + 16 in 0..31 */
void quantize_q5_0(void *dst, const float *x, long n) {
    block_q5_0 *b = dst;
    for (long k = 0; k < n / 32; k++, x += 32, b++) {
        b->d = half_of(signed_amax(x, 32) / -16.0f);
        float d = stored(b->d), inv = d != 0.0f ? 1.0f / d : 0.0f;
        uint8_t q[32];
        for (int i = 0; i < 32; i++) q[i] = (uint8_t)clampi(nearest(x[i] * inv) + 16, 0, 31);
        pack_q5(b->qh, b->qs, q);
    }
}

void quantize_q5_1(void *dst, const float *x, long n) {
    block_q5_1 *b = dst;
    for (long k = 0; k < n / 32; k++, x += 32, b++) {
        uint8_t q[32];
        min_scale(x, 31, &b->d, &b->m, q);
        pack_q5(b->qh, b->qs, q);
    }
}

/* the IQ4_NL level nearest v */
static int nearest_level(float v) {
    int best = 0;
    for (int i = 1; i < 16; i++)
        if (fabsf(v - IQ4_NL_LEVELS[i]) < fabsf(v - IQ4_NL_LEVELS[best])) best = i;
    return best;
}

/* IQ4_NL: scales around (signed max) / -127 tried; for each, the nearest
 * levels, then the least-squares scale for them; the smallest error wins. */
void quantize_iq4_nl(void *dst, const float *x, long n) {
    block_iq4_nl *b = dst;
    for (long k = 0; k < n / 32; k++, x += 32, b++) {
        float vmax = signed_amax(x, 32), best_err = INFINITY, best_d = 0.0f;
        for (int step = -8; step <= 8 && vmax != 0.0f; step++) {
            float d = vmax / (-127.0f + 4.0f * (float)step);
            double num = 0, den = 0;
            for (int i = 0; i < 32; i++) {
                int l = IQ4_NL_LEVELS[nearest_level(x[i] / d)];
                num += (double)l * x[i], den += (double)l * l;
            }
            float fit = den > 0 ? (float)(num / den) : d;
            double err = 0;
            for (int i = 0; i < 32; i++) {
                float e = x[i] - fit * IQ4_NL_LEVELS[nearest_level(x[i] / fit)];
                err += (double)e * e;
            }
            if (err < best_err) best_err = (float)err, best_d = fit;
        }
        b->d = half_of(best_d);
        float d = stored(b->d);
        uint8_t q[32];
        for (int i = 0; i < 32; i++) q[i] = (uint8_t)(d != 0.0f ? nearest_level(x[i] / d) : nearest_level(0.0f));
        pack_nibbles(b->qs, q);
    }
}

/* -------------------------------------------------------- K-quants -- */

/* A sub-block's scale s >= 0 and min m >= 0 for value = s q - m, q in
 * 0..nmax (Q4_K, Q5_K): candidate scales around (max - min) / nmax, each
 * refined by least squares (m kept >= 0), the smallest squared error wins. */
static void fit_scale_min(const float *x, int n, int nmax, float *s_out, float *m_out) {
    float lo = 0.0f, hi = x[0];
    for (int i = 0; i < n; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    *s_out = 0.0f, *m_out = -lo;
    if (hi <= lo) return;
    double best = INFINITY;
    for (int step = -10; step <= 10; step++) {
        float iscale = ((float)nmax + 0.1f * (float)step) / (hi - lo);
        double sq = 0, sx = 0, sqq = 0, sqx = 0;
        int q[32];
        for (int i = 0; i < n; i++) {
            q[i] = clampi(nearest(iscale * (x[i] - lo)), 0, nmax);
            sq += q[i], sx += x[i], sqq += (double)q[i] * q[i], sqx += (double)q[i] * x[i];
        }
        double det = n * sqq - sq * sq, s, b; /* x ~ s q + b */
        if (det <= 0) continue;
        s = (n * sqx - sq * sx) / det;
        b = (sqq * sx - sq * sqx) / det;
        if (b > 0) b = 0, s = sqq > 0 ? sqx / sqq : 0; /* the min is subtracted: b = -m <= 0 */
        if (s <= 0) continue;
        double err = 0;
        for (int i = 0; i < n; i++) {
            double e = x[i] - (s * q[i] + b);
            err += e * e;
        }
        if (err < best) best = err, *s_out = (float)s, *m_out = (float)-b;
    }
}

/* Q4_K / Q5_K codes (0..nmax) of one super-block, with d, dmin and the
 * packed scales written: the 8 sub-block scales and mins in 6 bits of the
 * super-block's d and dmin, then every code against the stored values. */
static void k_codes(const float *x, int nmax, uint16_t *d16, uint16_t *dmin16, uint8_t *scales, uint8_t *q) {
    float s[8], m[8], smax = 0.0f, mmax = 0.0f;
    for (int j = 0; j < 8; j++) {
        fit_scale_min(x + 32 * j, 32, nmax, &s[j], &m[j]);
        smax = fmaxf(smax, s[j]), mmax = fmaxf(mmax, m[j]);
    }
    *d16 = half_of(smax / 63.0f), *dmin16 = half_of(mmax / 63.0f);
    float d = stored(*d16), dmin = stored(*dmin16);
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = (uint8_t)(d > 0 ? clampi(nearest(s[j] / d), 0, 63) : 0);
        mn[j] = (uint8_t)(dmin > 0 ? clampi(nearest(m[j] / dmin), 0, 63) : 0);
        float es = d * (float)sc[j], em = dmin * (float)mn[j]; /* what a reader gets */
        for (int i = 0; i < 32; i++)
            q[32 * j + i] = (uint8_t)(es > 0 ? clampi(nearest((x[32 * j + i] + em) / es), 0, nmax) : 0);
    }
    k_pack_scales(scales, sc, mn);
}

/* chunk c of 64 codes: the low 4 bits of sub-block 2c as low nibbles of
 * qs[32c ..], of sub-block 2c + 1 as high nibbles */
static void pack_k_nibbles(uint8_t *qs, const uint8_t *q) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) qs[32 * c + l] = (uint8_t)((q[64 * c + l] & 15) | (q[64 * c + 32 + l] & 15) << 4);
}

void quantize_q4_K(void *dst, const float *x, long n) {
    block_q4_K *b = dst;
    for (long k = 0; k < n / QK_K; k++, x += QK_K, b++) {
        uint8_t q[QK_K];
        k_codes(x, 15, &b->d, &b->dmin, b->scales, q);
        pack_k_nibbles(b->qs, q);
    }
}

void quantize_q5_K(void *dst, const float *x, long n) {
    block_q5_K *b = dst;
    for (long k = 0; k < n / QK_K; k++, x += QK_K, b++) {
        uint8_t q[QK_K];
        k_codes(x, 31, &b->d, &b->dmin, b->scales, q);
        pack_k_nibbles(b->qs, q);
        memset(b->qh, 0, sizeof b->qh); /* bit 4 of element l of chunk c: bit 2c (low half) or 2c + 1 of qh[l] */
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                b->qh[l] |= (uint8_t)((q[64 * c + l] >> 4) << (2 * c) | (q[64 * c + 32 + l] >> 4) << (2 * c + 1));
    }
}

/* A sub-block's signed scale for codes -32..31 (Q6_K): candidates around
 * (signed max) / -32, each refined by least squares. */
static float fit_signed_scale(const float *x, int n) {
    float vmax = signed_amax(x, n), best_s = 0.0f;
    if (vmax == 0.0f) return 0.0f;
    double best = INFINITY;
    for (int step = -9; step <= 9; step++) {
        float iscale = -(32.0f + 0.1f * (float)step) / vmax;
        double num = 0, den = 0;
        for (int i = 0; i < n; i++) {
            int q = clampi(nearest(iscale * x[i]), -32, 31);
            num += (double)q * x[i], den += (double)q * q;
        }
        if (den <= 0) continue;
        double s = num / den, err = 0;
        for (int i = 0; i < n; i++) {
            double e = x[i] - s * clampi(nearest(iscale * x[i]), -32, 31);
            err += e * e;
        }
        if (err < best) best = err, best_s = (float)s;
    }
    return best_s;
}

void quantize_q6_K(void *dst, const float *x, long n) {
    block_q6_K *b = dst;
    for (long k = 0; k < n / QK_K; k++, x += QK_K, b++) {
        float s[16], smax = 0.0f;
        for (int j = 0; j < 16; j++) {
            s[j] = fit_signed_scale(x + 16 * j, 16);
            if (fabsf(s[j]) > fabsf(smax)) smax = s[j];
        }
        /* the scales as int8 of d: the largest maps to -128 */
        b->d = half_of(smax / -128.0f);
        float d = stored(b->d);
        uint8_t q[QK_K];
        for (int j = 0; j < 16; j++) {
            b->scales[j] = (int8_t)(d != 0.0f ? clampi(nearest(s[j] / d), -128, 127) : 0);
            float es = d * (float)b->scales[j];
            for (int i = 0; i < 16; i++)
                q[16 * j + i] = (uint8_t)(clampi(es != 0.0f ? nearest(x[16 * j + i] / es) : 0, -32, 31) + 32);
        }
        /* half h: ql[64h + l] = q[l] | q[l + 64] << 4, ql[64h + l + 32] =
         * q[l + 32] | q[l + 96] << 4, qh[32h + l] = the four top pairs */
        for (int h = 0; h < 2; h++) {
            const uint8_t *qq = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                b->ql[64 * h + l] = (uint8_t)((qq[l] & 15) | (qq[l + 64] & 15) << 4);
                b->ql[64 * h + l + 32] = (uint8_t)((qq[l + 32] & 15) | (qq[l + 96] & 15) << 4);
                b->qh[32 * h + l] =
                    (uint8_t)(qq[l] >> 4 | (qq[l + 32] >> 4) << 2 | (qq[l + 64] >> 4) << 4 | (qq[l + 96] >> 4) << 6);
            }
        }
    }
}

/* ------------------------------------------------------------ BF16 -- */

/* the upper 16 bits, rounded to nearest even; NaN stays a (quiet) NaN */
void quantize_bf16(void *dst, const float *x, long n) {
    uint8_t *out = dst;
    for (long i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, 4);
        uint16_t h = (u & 0x7fffffff) > 0x7f800000 ? (uint16_t)(u >> 16 | 0x40)
                                                   : (uint16_t)((u + 0x7fff + (u >> 16 & 1)) >> 16);
        memcpy(out + 2 * i, &h, 2);
    }
}

/* F16: each value rounded to nearest even (half.c, the library's one
 * F32 -> F16) */
void quantize_f16(void *dst, const float *x, long n) {
    uint8_t *out = dst;
    for (long i = 0; i < n; i++) {
        uint16_t h = f32_to_f16(x[i]);
        memcpy(out + 2 * i, &h, 2);
    }
}

void quantize_f32(void *dst, const float *x, long n) { memcpy(dst, x, (size_t)n * sizeof(float)); }
