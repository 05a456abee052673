/* The weight-format table: what each storage format of a matrix is (block
 * size and bytes, its definition in quants.c, the layout load repacks it
 * into) and the operations that need only that: sizes, row offsets,
 * repacking (rows as F32, which may use a kernel set's vector code:
 * matrix_rows in kernels.h). Adding a format is a row of WEIGHT_FORMATS (formats.c),
 * its decoder (quants.c), its writer (quantizers.c) and, for speed, its
 * vector dot product (dots_isa.c). Facts: docs/formats.md. */
#ifndef TINYLLM_FORMATS_H
#define TINYLLM_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h" /* enum ggml_type */
#include "quantizers.h"
#include "quants.h"

/* A weight matrix (OC, C), PyTorch layout (out, in), row-major, in one of
 * the storage formats of the weight-format table (formats.h): usually the
 * file's bytes used in place. */
typedef struct {
    const void *data;
    int type; /* enum ggml_type or one of the 8-row layouts (WEIGHT_Q4_0_X8, ...) */
} matrix;

/* The engine's own layout for Q4_0 matrices, made at load from the file's
 * rows (repack_q4_0_x8, formats.h): rows in groups of 8, and for each group
 * and block of 32 values, 144 bytes: the 8 rows' F16 scales, then 4 x 32
 * bytes where vector m holds bytes 4m..4m+3 of each row's 16 nibble bytes
 * (row r at 4r; low nibbles are values 4m.., high nibbles 16 + 4m..). A
 * decode product then computes 8 rows per activation block with no
 * horizontal sums: x's 4-value groups are broadcast against the 8 rows'
 * nibbles. The same for Q8_0 (repack_q8_0_x8): per group and block, 272
 * bytes: the 8 rows' F16 scales, then 8 x 32 bytes where vector m holds
 * values 4m..4m+3 of each row (row r at 4r). And for Q4_K
 * (repack_q4_K_x8), per group and super-block of 256 values, 1184 bytes:
 * the 8 rows' d and dmin, their 8 sub-block scales and mins as bytes, then
 * per chunk c of 64 values (sub-blocks 2c and 2c + 1) 8 x 32 bytes where
 * vector m holds bytes 4m..4m+3 of each row's 32 chunk bytes (low nibbles
 * values 64c + 4m.., high nibbles 64c + 32 + 4m..): 32 bytes more than the
 * 8 stored blocks, for scales the kernels read without unpacking; Q5_K
 * (repack_q5_K_x8) the same with each row's 32 bytes of fifth bits
 * interleaved 4 at a time before the nibbles (1440 bytes). Q6_K
 * (repack_q6_K_x8) keeps its 1680 bytes per group and super-block: the 8
 * rows' d, their 16 scales, then the low-nibble bytes and the 2-bit tops
 * interleaved 4 bytes at a time (block_q6_K_x8). Q2_K (repack_q2_K_x8,
 * 672 bytes) and Q3_K (repack_q3_K_x8, 880 bytes) keep their sizes too:
 * the same bytes regrouped (block_q2_K_x8, block_q3_K_x8).
 * The layouts are numbered after the file types, so that the kernel sets'
 * tables indexed by a matrix's type (kernels.h) cover both. */
enum { WEIGHT_Q4_0_X8 = GGML_TYPE_BF16 + 1, WEIGHT_Q8_0_X8, WEIGHT_Q4_K_X8, WEIGHT_Q5_K_X8, WEIGHT_Q6_K_X8, WEIGHT_Q2_K_X8, WEIGHT_Q3_K_X8,
       MATRIX_TYPES };
enum {
    X8_ROWS = 8,
    Q4_0_X8_GROUP_BYTES = 8 * 18,
    Q8_0_X8_GROUP_BYTES = 8 * 34,
    Q4_K_X8_GROUP_BYTES = 8 * 148,
    Q5_K_X8_GROUP_BYTES = 8 * 180,
    Q6_K_X8_GROUP_BYTES = 8 * 210,
    Q2_K_X8_GROUP_BYTES = 8 * 84,
    Q3_K_X8_GROUP_BYTES = 8 * 110
};

/* One block of a group of 8 rows in those layouts: qs[m][r][j] is byte
 * 4m + j of row r's value bytes (Q4_0: its values 4m + j in the low nibble,
 * 16 + 4m + j in the high one; Q8_0: value 4m + j). */
typedef struct {
    uint16_t d[X8_ROWS];          /* each row's F16 scale */
    uint8_t qs[4][X8_ROWS][4];
} block_q4_0_x8;
typedef struct {
    uint16_t d[X8_ROWS];
    int8_t qs[8][X8_ROWS][4];
} block_q8_0_x8;
/* Q4_K: row r's value 64c + 4m + j is the low nibble of qs[c][m][r][j],
 * value 64c + 32 + 4m + j its high nibble; sub-block k's scale sc[k][r]
 * and min mins[k][r] (6 bits each); value = d sc q - dmin min */
typedef struct {
    uint16_t d[X8_ROWS], dmin[X8_ROWS]; /* F16 */
    uint8_t sc[8][X8_ROWS];
    uint8_t mins[8][X8_ROWS];
    uint8_t qs[4][8][X8_ROWS][4];
} block_q4_K_x8;
/* Q5_K: as Q4_K, and qh[m][r][j] (stored qh[4m + j]) holds in bit 2c the
 * fifth bit of value 64c + 4m + j, in bit 2c + 1 that of value 64c + 32 +
 * 4m + j; value = d sc (q + 16 fifth bit) - dmin min */
typedef struct {
    uint16_t d[X8_ROWS], dmin[X8_ROWS]; /* F16 */
    uint8_t sc[8][X8_ROWS];
    uint8_t mins[8][X8_ROWS];
    uint8_t qh[8][X8_ROWS][4];
    uint8_t qs[4][8][X8_ROWS][4];
} block_q5_K_x8;
static_assert(offsetof(block_q5_K_x8, mins) == offsetof(block_q4_K_x8, mins), "Q4_K and Q5_K x8 start alike");

/* Q6_K: half h (values 128h..) of row r: half[h].ql[p][m][r][j] holds in
 * its low nibble value 128h + 32p + 4m + j, in its high nibble value 128h +
 * 64 + 32p + 4m + j (stored ql[64h + 32p + 4m + j]); half[h].qh[m][r][j]
 * their top 2 bits (stored qh[32h + 4m + j]: bits 2p for the low nibble's
 * value, 4 + 2p for the high one's); sub-block k's (16 values) scale
 * sc[k][r]; value = d sc (q - 32). A half's top bits come first: the
 * kernels read the group front to back (the hardware prefetcher follows a
 * forward stream; top bits after the nibbles halved the decode's rate). */
typedef struct {
    uint16_t d[X8_ROWS]; /* F16 */
    int8_t sc[16][X8_ROWS];
    struct {
        uint8_t qh[8][X8_ROWS][4];
        uint8_t ql[2][8][X8_ROWS][4];
    } half[2];
} block_q6_K_x8;
/* Q2_K: half h (values 128h..) of row r: qs[h][m][r][j] (stored qs[32h +
 * 4m + j]) holds in bits 2p, 2p + 1 the code (0..3) of value 128h + 32p +
 * 4m + j; scales[k][r] the stored byte of sub-block k (16 values): scale in
 * the low nibble, min in the high one; value = d scale q - dmin min. */
typedef struct {
    uint16_t d[X8_ROWS], dmin[X8_ROWS]; /* F16 */
    uint8_t scales[16][X8_ROWS];
    uint8_t qs[2][8][X8_ROWS][4];
} block_q2_K_x8;
/* Q3_K: as Q2_K's codes, plus hmask[m][r][j] (stored hmask[4m + j]), whose
 * bit 4h + p is the third bit of value 128h + 32p + 4m + j (clear: minus
 * 4); scales[j][r] the stored scale byte j of row r (byte k % 8 holds
 * sub-block k's low 4 bits in its low nibble for k < 8, else its high one;
 * byte 8 + k % 4 its top 2 bits at bit 2 (k / 4)); value = d (scale - 32)
 * (q + 4 bit - 4). The third bits come before the codes (front to back). */
typedef struct {
    uint16_t d[X8_ROWS]; /* F16 */
    uint8_t scales[12][X8_ROWS];
    uint8_t hmask[8][X8_ROWS][4];
    uint8_t qs[2][8][X8_ROWS][4];
} block_q3_K_x8;
static_assert(sizeof(block_q2_K_x8) == Q2_K_X8_GROUP_BYTES, "Q2_K x8 block");
static_assert(sizeof(block_q3_K_x8) == Q3_K_X8_GROUP_BYTES, "Q3_K x8 block");
static_assert(sizeof(block_q4_0_x8) == Q4_0_X8_GROUP_BYTES, "Q4_0 x8 block");
static_assert(sizeof(block_q6_K_x8) == Q6_K_X8_GROUP_BYTES, "Q6_K x8 block");
static_assert(sizeof(block_q5_K_x8) == Q5_K_X8_GROUP_BYTES, "Q5_K x8 block");
static_assert(sizeof(block_q8_0_x8) == Q8_0_X8_GROUP_BYTES, "Q8_0 x8 block");
static_assert(sizeof(block_q4_K_x8) == Q4_K_X8_GROUP_BYTES, "Q4_K x8 block");

/* How a format's products run (matmul_forward, kernels.c):
 * PRODUCT_FLOAT: weights read as floats, streamed for a few rows
 *   (kernel_ops.stream), converted rows for sgemm beyond;
 * PRODUCT_Q8_DOTS: the activations quantized to 8-bit blocks once, then a
 *   block dot per weight row (kernel_ops.dot_q8; the format's definition,
 *   dot_blocks_q8, where a set has none); beyond a few rows the set's
 *   integer GEMM on the rows as stored where it has one (kernel_ops.gemm:
 *   the K-quants), else converted rows for sgemm;
 * PRODUCT_Q8_GEMM: the activations quantized, then the integer GEMM over
 *   groups of 8 weight rows, decode and prefill alike (kernel_ops.gemm). */
enum weight_product { PRODUCT_FLOAT, PRODUCT_Q8_DOTS, PRODUCT_Q8_GEMM };

/* n values at src as F32, exactly (a row of a contiguous format) */
typedef void (*to_f32_fn)(float *dst, const void *src, long n);
/* dst (n_rows, C) = rows [row0, row0 + n_rows) of a matrix in a layout
 * that interleaves rows (the X8 layouts), as F32, exactly */
typedef void (*layout_rows_fn)(float *dst, const void *data, long C, size_t row0, long n_rows);
/* dst = the rows (rows x C) of src in another layout (its padding included) */
typedef void (*repack_fn)(uint8_t *dst, const uint8_t *src, long rows, long C);

typedef struct {
    int type;          /* enum ggml_type, WEIGHT_Q4_0_X8 or WEIGHT_Q8_0_X8 */
    const char *name;  /* as llama.cpp names it: "F32", "Q4_K", ...; "Q4_0x8" for the repacked layouts */
    int block, block_bytes;
    int align;         /* the address its data needs to be used in place (bytes) */
    enum weight_product product;
    decode_fn decode;  /* blocks of integer codes (quants.h); NULL: F32, F16, BF16, the repacked layouts */
    to_f32_fn to_f32;  /* the values as F32, for the formats without blocks of codes (else NULL) */
    layout_rows_fn layout_rows; /* the rows as F32, for the layouts that interleave rows (else NULL) */
    int repacked;      /* the layout load repacks its matrices into (WEIGHT_Q4_0_X8, ...), or 0 */
    repack_fn repack;  /* ... and how */
    int in_files;      /* a GGUF tensor type (not one of the engine's own layouts) */
    quantize_fn quantize; /* its writer (quantizers.h), or NULL: Q2_K and Q3_K are read only */
    int file_type;     /* llama.cpp's general.file_type of a file in this format, or -1 */
    int fallback;      /* the format llama-quantize writes where this one's block does not divide
                          the rows (a matrix of the block formats; F16 unless it says otherwise) */
} weight_format;

/* The format of a type, or NULL when matrices cannot use it. */
const weight_format *weight_format_of(int type);
/* The table's row i (i = 0, 1, ... in its order), NULL past the end. */
const weight_format *weight_format_at(size_t i);
/* The names of the formats files may hold, "F32, F16, ... or Q6_K", from
 * the table (for messages): written into buf (cut to cap), which it returns. */
#define WEIGHT_FORMAT_NAMES_CAP 160
const char *weight_format_names(char *buf, size_t cap);
/* ... in a buffer that lives to the end of the enclosing block (for messages) */
#define WEIGHT_FORMAT_LIST() weight_format_names((char[WEIGHT_FORMAT_NAMES_CAP]){0}, WEIGHT_FORMAT_NAMES_CAP)
/* Bytes of n values (n a multiple of the format's block). */
size_t weight_bytes(int type, size_t n);
/* The matrix from value `offset` on (a block of rows; offset a multiple of
 * the block, and of 8 rows for the X8 layouts). */
matrix matrix_at(matrix w, size_t offset);

/* dst (ceil(rows / 8) groups: x8_bytes) = the Q4_0 rows of src (rows x C, C
 * a multiple of 32) in the WEIGHT_Q4_0_X8 layout (above); a last group
 * of fewer than 8 rows is padded with zero rows (scale 0), which products
 * compute and never store. */
void repack_q4_0_x8(uint8_t *dst, const uint8_t *src, long rows, long C);
/* the same for Q8_0 into WEIGHT_Q8_0_X8, and Q4_K (C a multiple of 256)
 * into WEIGHT_Q4_K_X8 */
void repack_q8_0_x8(uint8_t *dst, const uint8_t *src, long rows, long C);
void repack_q4_K_x8(uint8_t *dst, const uint8_t *src, long rows, long C);
void repack_q5_K_x8(uint8_t *dst, const uint8_t *src, long rows, long C);
void repack_q6_K_x8(uint8_t *dst, const uint8_t *src, long rows, long C);
void repack_q2_K_x8(uint8_t *dst, const uint8_t *src, long rows, long C);
void repack_q3_K_x8(uint8_t *dst, const uint8_t *src, long rows, long C);
/* Bytes of a WEIGHT_Q4_0_X8 / WEIGHT_Q8_0_X8 matrix of rows x C values, the
 * padding of its last group included. */
size_t x8_bytes(int type, long rows, long C);

#endif
