/* The weight formats' definitions in plain C (quants.h): what each block
 * means, and the two things built on that alone, dequantizing and the dot
 * product with 8-bit activations. Written from docs/formats.md; the vector
 * kernels (kernels_isa.c) are tested against these. */
#include "quants.h"

#include <string.h>

#include "half.h"

/* A dequantized value is scale * q (+ offset), each operation rounded to
 * float32 as the format defines: no fused multiply-add here. */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

const int8_t IQ4_NL_LEVELS[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static void set_scale(block_codes *c, int k, float scale, float offset) {
    c->scale[k] = scale;
    c->offset[k] = offset;
}

/* ------------------------------------------------------ blocks of 32 -- */
/* The 4-bit layouts: byte j holds element j (low nibble) and j + 16 (high). */
static void nibbles(int8_t *q, const uint8_t *qs, int minus) {
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)((qs[j] & 15) - minus);
        q[j + 16] = (int8_t)((qs[j] >> 4) - minus);
    }
}

/* Q5: bit j of qh (read as a little-endian uint32) is bit 4 of element j. */
static void fifth_bits(int8_t *q, const uint8_t *qh, int minus) {
    uint32_t h = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    for (int j = 0; j < 32; j++) q[j] = (int8_t)(q[j] + (int)((h >> j & 1) << 4) - minus);
}

void decode_q8_0(const void *block, block_codes *c) {
    const block_q8_0 *b = block;
    *c = (block_codes){.n = 32, .sub = 32};
    memcpy(c->q, b->qs, 32);
    set_scale(c, 0, f16_to_f32(b->d), 0.0f);
}

void decode_q4_0(const void *block, block_codes *c) {
    const block_q4_0 *b = block;
    *c = (block_codes){.n = 32, .sub = 32};
    nibbles(c->q, b->qs, 8);
    set_scale(c, 0, f16_to_f32(b->d), 0.0f);
}

void decode_q4_1(const void *block, block_codes *c) {
    const block_q4_1 *b = block;
    *c = (block_codes){.n = 32, .sub = 32, .has_offset = 1};
    nibbles(c->q, b->qs, 0);
    set_scale(c, 0, f16_to_f32(b->d), f16_to_f32(b->m));
}

void decode_q5_0(const void *block, block_codes *c) {
    const block_q5_0 *b = block;
    *c = (block_codes){.n = 32, .sub = 32};
    nibbles(c->q, b->qs, 0);
    fifth_bits(c->q, b->qh, 16);
    set_scale(c, 0, f16_to_f32(b->d), 0.0f);
}

void decode_q5_1(const void *block, block_codes *c) {
    const block_q5_1 *b = block;
    *c = (block_codes){.n = 32, .sub = 32, .has_offset = 1};
    nibbles(c->q, b->qs, 0);
    fifth_bits(c->q, b->qh, 0);
    set_scale(c, 0, f16_to_f32(b->d), f16_to_f32(b->m));
}

void decode_iq4_nl(const void *block, block_codes *c) {
    const block_iq4_nl *b = block;
    *c = (block_codes){.n = 32, .sub = 32};
    for (int j = 0; j < 16; j++) {
        c->q[j] = IQ4_NL_LEVELS[b->qs[j] & 15];
        c->q[j + 16] = IQ4_NL_LEVELS[b->qs[j] >> 4];
    }
    set_scale(c, 0, f16_to_f32(b->d), 0.0f);
}

/* ----------------------------------------------- super-blocks of 256 -- */

/* Q2_K / Q3_K low bits: two halves of 128 elements; half h reads bytes
 * qs[32h ..]; pass p takes bits 2p, 2p + 1 of each byte, element
 * 128h + 32p + byte (bytes 0..15 one sub-block of 16, 16..31 the next). */
static void two_bit_codes(int8_t *q, const uint8_t *qs) {
    for (int h = 0; h < 2; h++)
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < 32; l++) q[128 * h + 32 * p + l] = (int8_t)(qs[32 * h + l] >> (2 * p) & 3);
}

void decode_q2_K(const void *block, block_codes *c) {
    const block_q2_K *b = block;
    *c = (block_codes){.n = 256, .sub = 16, .has_offset = 1};
    two_bit_codes(c->q, b->qs);
    float d = f16_to_f32(b->d), dmin = f16_to_f32(b->dmin);
    for (int k = 0; k < 16; k++) set_scale(c, k, d * (float)(b->scales[k] & 15), -(dmin * (float)(b->scales[k] >> 4)));
}

void q3_K_scales(const uint8_t *scales, int8_t *out) {
    /* low 4 bits from bytes 0..7, high 2 bits from bytes 8..11; stored + 32 */
    uint32_t a[3];
    for (int i = 0; i < 3; i++)
        a[i] = (uint32_t)scales[4 * i] | (uint32_t)scales[4 * i + 1] << 8 | (uint32_t)scales[4 * i + 2] << 16 |
               (uint32_t)scales[4 * i + 3] << 24;
    uint32_t words[4] = {
        (a[0] & 0x0f0f0f0f) | (a[2] & 0x03030303) << 4,
        (a[1] & 0x0f0f0f0f) | (a[2] >> 2 & 0x03030303) << 4,
        (a[0] >> 4 & 0x0f0f0f0f) | (a[2] >> 4 & 0x03030303) << 4,
        (a[1] >> 4 & 0x0f0f0f0f) | (a[2] >> 6 & 0x03030303) << 4,
    };
    for (int k = 0; k < 16; k++) out[k] = (int8_t)((int)(words[k / 4] >> (8 * (k % 4)) & 63) - 32);
}

void decode_q3_K(const void *block, block_codes *c) {
    const block_q3_K *b = block;
    *c = (block_codes){.n = 256, .sub = 16};
    two_bit_codes(c->q, b->qs);
    /* the third bit: element l of pass p in half h tests bit 4h + p of
     * hmask[l]; clear means minus 4 */
    for (int h = 0; h < 2; h++)
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < 32; l++)
                if (!(b->hmask[l] >> (4 * h + p) & 1)) c->q[128 * h + 32 * p + l] -= 4;
    int8_t sc[16];
    q3_K_scales(b->scales, sc);
    float d = f16_to_f32(b->d);
    for (int k = 0; k < 16; k++) set_scale(c, k, d * (float)sc[k], 0.0f);
}

/* Q4_K / Q5_K: 8 sub-blocks of 32, each a 6-bit scale and a 6-bit min in
 * scales[12] (sub-blocks 0..3 the low 6 bits of bytes 0..3 and 4..7; 4..7
 * a nibble of bytes 8..11 plus the top 2 bits of bytes 0..7). */
void k_scale_min(const uint8_t *s, int i, int *sc, int *m) {
    if (i < 4) {
        *sc = s[i] & 63;
        *m = s[i + 4] & 63;
    } else {
        *sc = (s[i + 4] & 15) | (s[i - 4] >> 6) << 4;
        *m = (s[i + 4] >> 4) | (s[i] >> 6) << 4;
    }
}

void k_pack_scales(uint8_t *s, const uint8_t *sc, const uint8_t *m) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)((m[j] & 63) | (m[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

/* Chunk c of 64 elements reads qs[32c ..]: low nibbles are sub-block 2c,
 * high nibbles 2c + 1. */
static void k_nibbles(block_codes *c, const uint8_t *qs, uint16_t d16, uint16_t dmin16, const uint8_t *scales) {
    float d = f16_to_f32(d16), dmin = f16_to_f32(dmin16);
    for (int ch = 0; ch < 4; ch++)
        for (int l = 0; l < 32; l++) {
            c->q[64 * ch + l] = (int8_t)(qs[32 * ch + l] & 15);
            c->q[64 * ch + 32 + l] = (int8_t)(qs[32 * ch + l] >> 4);
        }
    for (int k = 0; k < 8; k++) {
        int sc, m;
        k_scale_min(scales, k, &sc, &m);
        set_scale(c, k, d * (float)sc, -(dmin * (float)m));
    }
}

void decode_q4_K(const void *block, block_codes *c) {
    const block_q4_K *b = block;
    *c = (block_codes){.n = 256, .sub = 32, .has_offset = 1};
    k_nibbles(c, b->qs, b->d, b->dmin, b->scales);
}

void decode_q5_K(const void *block, block_codes *c) {
    const block_q5_K *b = block;
    *c = (block_codes){.n = 256, .sub = 32, .has_offset = 1};
    k_nibbles(c, b->qs, b->d, b->dmin, b->scales);
    /* the fifth bit: element l of chunk ch's low half is bit 2ch of qh[l], of its high half bit 2ch + 1 */
    for (int ch = 0; ch < 4; ch++)
        for (int l = 0; l < 32; l++) {
            c->q[64 * ch + l] = (int8_t)(c->q[64 * ch + l] + ((b->qh[l] >> (2 * ch) & 1) << 4));
            c->q[64 * ch + 32 + l] = (int8_t)(c->q[64 * ch + 32 + l] + ((b->qh[l] >> (2 * ch + 1) & 1) << 4));
        }
}

void decode_q6_K(const void *block, block_codes *c) {
    const block_q6_K *b = block;
    *c = (block_codes){.n = 256, .sub = 16};
    /* half h of 128: for l < 32, elements l, l + 32, l + 64, l + 96 take the
     * low nibble of ql[l], of ql[l + 32], the high nibble of ql[l], of
     * ql[l + 32], and bits 0-1, 2-3, 4-5, 6-7 of qh[l] on top; minus 32 */
    for (int h = 0; h < 2; h++) {
        const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        int8_t *q = c->q + 128 * h;
        for (int l = 0; l < 32; l++) {
            q[l] = (int8_t)(((ql[l] & 15) | (qh[l] & 3) << 4) - 32);
            q[l + 32] = (int8_t)(((ql[l + 32] & 15) | (qh[l] >> 2 & 3) << 4) - 32);
            q[l + 64] = (int8_t)(((ql[l] >> 4) | (qh[l] >> 4 & 3) << 4) - 32);
            q[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (qh[l] >> 6 & 3) << 4) - 32);
        }
    }
    float d = f16_to_f32(b->d);
    for (int k = 0; k < 16; k++) set_scale(c, k, d * (float)b->scales[k], 0.0f);
}

/* ---------------------------------------------- built on the decoders -- */

/* One block of src (which may be unaligned) decoded. */
static void decode_at(decode_fn decode, int block_bytes, const void *src, block_codes *c) {
    _Alignas(16) uint8_t copy[256];
    memcpy(copy, src, (size_t)block_bytes);
    decode(copy, c);
}

void dequantize_blocks(decode_fn decode, int block, int block_bytes, float *dst, const void *src, long n) {
    block_codes c;
    for (long b = 0; b < n / block; b++) {
        decode_at(decode, block_bytes, (const uint8_t *)src + b * block_bytes, &c);
        float *y = dst + b * block;
        for (int i = 0; i < c.n; i++) {
            int k = i / c.sub;
            y[i] = c.has_offset ? c.scale[k] * (float)c.q[i] + c.offset[k] : c.scale[k] * (float)c.q[i];
        }
    }
}

float dot_blocks_q8(decode_fn decode, int block, int block_bytes, const void *row, const q8_act *x, int t) {
    int nb = x->C / block, nb32 = x->C / 32;
    const int8_t *xq = x->q + (size_t)t * x->C;
    const float *xd = x->d + (size_t)t * nb32;
    block_codes c;
    float s = 0.0f;
    for (int b = 0; b < nb; b++) {
        decode_at(decode, block_bytes, (const uint8_t *)row + (size_t)b * block_bytes, &c);
        const int8_t *xb = xq + (size_t)b * block;
        for (int k = 0; k < c.n / c.sub; k++) {
            int32_t codes = 0, sum = 0; /* sum q x and sum x over the sub-block */
            for (int i = k * c.sub; i < (k + 1) * c.sub; i++) {
                codes += c.q[i] * xb[i];
                sum += xb[i];
            }
            float dx = xd[(b * block + k * c.sub) / 32];
            s += dx * (c.scale[k] * (float)codes + (c.has_offset ? c.offset[k] * (float)sum : 0.0f));
        }
    }
    return s;
}

void bf16_to_f32_row(float *dst, const void *src, long n) {
    for (long i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)src + 2 * i, 2); /* src may be unaligned */
        uint32_t bits = (uint32_t)h << 16;
        memcpy(dst + i, &bits, 4);
    }
}

float dot_bf16_f32(const void *row, const float *x, int C) {
    float s = 0.0f;
    for (int i = 0; i < C; i++) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)row + 2 * i, 2);
        uint32_t bits = (uint32_t)h << 16;
        float w;
        memcpy(&w, &bits, 4);
        s += w * x[i];
    }
    return s;
}

/* ----------------------------------------------- the activation rows -- */

q8_act q8_act_in(void *buf, int T, int C, int group) {
    q8_act x = {buf, NULL, NULL, NULL, C, group};
    x.d = (float *)(x.q + (size_t)T * C);
    x.s = (int32_t *)(x.d + (size_t)T * (C / 32));
    x.s16 = (int16_t *)(x.s + (size_t)T * (C / 32));
    return x;
}

void q8_act_sums16(const q8_act *x, int t0, int t1) {
    for (int t = t0; t < t1; t++)
        for (int b = 0; b < x->C / 16; b++) {
            const int8_t *q = x->q + (size_t)t * x->C + 16 * b;
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += q[i];
            x->s16[(size_t)t * (x->C / 16) + b] = (int16_t)sum;
        }
}
