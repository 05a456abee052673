/* The block formats of GGUF weights, defined: one typed struct per block
 * (its size checked at compile time), and for each format the function that
 * says what a block means, decode_<format>: the integer code of every
 * element and, per sub-block, the scale (and offset) that turn codes into
 * values. Everything else (dequantizing, the plain block dot products) is
 * written once on top of that (quants.c). Facts: docs/formats.md. */
#ifndef TINYLLM_QUANTS_H
#define TINYLLM_QUANTS_H

#include <assert.h>
#include <stdint.h>


enum { QK_LEGACY = 32, QK_K = 256 };

/* Activation rows quantized to 8-bit blocks, as the integer kernels take
 * them (Q8_ACT): each block of 32 values x gets the scale d = max|x| / 127
 * (a float) and the values round(x * 127 / max|x|), ties to even; s is the
 * sum of a block's values (Q4_0 weights are nibbles n - 8: sum (n - 8) q =
 * sum n q - 8 s). Every kernel set quantizes identically. s16 holds the
 * sums of each 16 values, for the formats with sub-blocks of 16 (filled by
 * q8_act_sums16 where those run). */
typedef struct q8_act {
    int8_t *q;    // (T, C)
    float *d;     // (T, C / 32)
    int32_t *s;   // (T, C / 32)
    int16_t *s16; // (T, C / 16)
    int C;
    int group;    // values that share one scale: 32, or 256 for the K-quants (as llama.cpp's
                  // Q8_K: their super-block's integer sums add up before one scaling); d holds
                  // that scale for each of the group's blocks of 32
} q8_act;

/* Bytes of a q8_act of T rows of C values: the int8 values, then per block
 * of 32 a float scale and an int32 sum, then per 16 values an int16 sum. */
#define Q8_ACT_BYTES(T, C) \
    ((size_t)(T) * (size_t)(C) + (size_t)(T) * ((size_t)(C) / 32) * 8 + (size_t)(T) * ((size_t)(C) / 16) * 2)
/* The q8_act of T rows of C values laid out in buf (Q8_ACT_BYTES(T, C) bytes,
 * float-aligned), in groups of `group` values (32, or 256 with C a multiple of it). */
q8_act q8_act_in(void *buf, int T, int C, int group);
/* x's s16 for rows [t0, t1), from its values */
void q8_act_sums16(const q8_act *x, int t0, int t1);



/* ---- blocks of 32 ---- */
typedef struct { uint16_t d; int8_t qs[32]; } block_q8_0;                      /* d q */
typedef struct { uint16_t d; uint8_t qs[16]; } block_q4_0;                     /* d (nibble - 8) */
typedef struct { uint16_t d, m; uint8_t qs[16]; } block_q4_1;                  /* d nibble + m */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } block_q5_0;      /* d (q5 - 16) */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } block_q5_1;   /* d q5 + m */
typedef struct { uint16_t d; uint8_t qs[16]; } block_iq4_nl;                   /* d T[nibble] */
/* ---- super-blocks of 256 (K-quants) ---- */
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } block_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } block_q3_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } block_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } block_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } block_q6_K;

static_assert(sizeof(block_q8_0) == 34, "Q8_0 block");
static_assert(sizeof(block_q4_0) == 18, "Q4_0 block");
static_assert(sizeof(block_q4_1) == 20, "Q4_1 block");
static_assert(sizeof(block_q5_0) == 22, "Q5_0 block");
static_assert(sizeof(block_q5_1) == 24, "Q5_1 block");
static_assert(sizeof(block_iq4_nl) == 18, "IQ4_NL block");
static_assert(sizeof(block_q2_K) == 84, "Q2_K block");
static_assert(sizeof(block_q3_K) == 110, "Q3_K block");
static_assert(sizeof(block_q4_K) == 144, "Q4_K block");
static_assert(sizeof(block_q5_K) == 176, "Q5_K block");
static_assert(sizeof(block_q6_K) == 210, "Q6_K block");

/* IQ4_NL's 16 non-linear levels */
extern const int8_t IQ4_NL_LEVELS[16];

/* One block, decoded: element i is worth scale[i / sub] * q[i], plus
 * offset[i / sub] when has_offset (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K). Each
 * scale and offset is computed as the format defines it (float32, in its
 * order), so dequantizing is exact. */
typedef struct {
    int8_t q[QK_K];                /* (n) the integer codes, element order */
    float scale[QK_K / 16];        /* (n / sub) */
    float offset[QK_K / 16];       /* (n / sub) */
    int n, sub, has_offset;        /* values, values per sub-block */
} block_codes;

typedef void (*decode_fn)(const void *block, block_codes *c);

/* Q4_K / Q5_K: sub-block i's 6-bit scale and min from the 12 packed bytes
 * s, and the 12 bytes packed from the 8 scales and mins (each < 64) */
void k_scale_min(const uint8_t *s, int i, int *sc, int *m);
void k_pack_scales(uint8_t *s, const uint8_t *sc, const uint8_t *m);

/* Q3_K's 16 sub-block scales (-32..31) from its 12 packed bytes */
void q3_K_scales(const uint8_t *scales, int8_t *out);

void decode_q8_0(const void *block, block_codes *c);
void decode_q4_0(const void *block, block_codes *c);
void decode_q4_1(const void *block, block_codes *c);
void decode_q5_0(const void *block, block_codes *c);
void decode_q5_1(const void *block, block_codes *c);
void decode_iq4_nl(const void *block, block_codes *c);
void decode_q2_K(const void *block, block_codes *c);
void decode_q3_K(const void *block, block_codes *c);
void decode_q4_K(const void *block, block_codes *c);
void decode_q5_K(const void *block, block_codes *c);
void decode_q6_K(const void *block, block_codes *c);

/* dst (n) = the n values of the blocks at src (n a multiple of the block),
 * exactly as the format defines them. src need not be aligned. */
void dequantize_blocks(decode_fn decode, int block, int block_bytes, float *dst, const void *src, long n);

/* The plain dot product of one weight row (nb32 * 32 values, blocks of the
 * format) with row t of the quantized activations x: per sub-block, the
 * integer sum of codes times activation codes, scaled by the sub-block's
 * scale and x's block scale, plus the offset times x's block sum. The
 * definition the vector kernels are tested against. */
float dot_blocks_q8(decode_fn decode, int block, int block_bytes, const void *row, const q8_act *x, int t);

/* BF16: the upper 16 bits of a float32 */
void bf16_to_f32_row(float *dst, const void *src, long n);
/* the dot product of a BF16 row (C) with x (C) */
float dot_bf16_f32(const void *row, const float *x, int C);

#endif
