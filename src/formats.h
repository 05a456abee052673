/* The weight-format table: what each storage format of a matrix is (block
 * size and bytes, its definition in quants.c, the layout load repacks it
 * into) and the operations that need only that: sizes, row offsets, rows as
 * F32, repacking. Adding a format is a row of WEIGHT_FORMATS (formats.c),
 * its decoder (quants.c), its writer (quantizers.c) and, for speed, its
 * vector dot product (dots_isa.c). Facts: docs/formats.md. */
#ifndef TINYLLM_FORMATS_H
#define TINYLLM_FORMATS_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "quantizers.h"
#include "quants.h"

typedef struct {
    int type;          /* enum ggml_type, WEIGHT_Q4_0_X8 or WEIGHT_Q8_0_X8 */
    const char *name;  /* as llama.cpp names it: "F32", "Q4_K", ...; "Q4_0x8" for the repacked layouts */
    int block, block_bytes;
    decode_fn decode;  /* blocks of integer codes (quants.h); NULL: F32, F16, BF16, the repacked layouts */
    int repacked;      /* the layout load repacks its matrices into (WEIGHT_Q4_0_X8, ...), or 0 */
    int in_files;      /* a GGUF tensor type (not one of the engine's own layouts) */
    quantize_fn quantize; /* its writer (quantizers.h), or NULL: F32 and F16 are written directly,
                             Q2_K and Q3_K are read only */
} weight_format;

/* The format of a type, or NULL when matrices cannot use it. */
const weight_format *weight_format_of(int type);
/* The names of the formats files may hold, "F32, F16, ..." (for messages). */
const char *weight_format_names(void);
/* Bytes of n values (n a multiple of the format's block). */
size_t weight_bytes(int type, size_t n);
/* The matrix from value `offset` on (a block of rows; offset a multiple of
 * the block, and of 8 rows for the X8 layouts). */
matrix matrix_at(matrix w, size_t offset);
/* dst (n_rows, C) = rows [row0, row0 + n_rows) of w (rows of C values) as
 * F32, exactly (any rows, the X8 layouts included: an embedding lookup). */
void matrix_rows(const kernel_ops *k, float *dst, matrix w, long C, size_t row0, long n_rows);

/* dst (ceil(rows / 8) groups: x8_bytes) = the Q4_0 rows of src (rows x C, C
 * a multiple of 32) in the WEIGHT_Q4_0_X8 layout (kernels.h); a last group
 * of fewer than 8 rows is padded with zero rows (scale 0), which products
 * compute and never store. */
void repack_q4_0_x8(uint8_t *dst, const uint8_t *src, long rows, long C);
/* the same for Q8_0 into WEIGHT_Q8_0_X8 */
void repack_q8_0_x8(uint8_t *dst, const uint8_t *src, long rows, long C);
/* Bytes of a WEIGHT_Q4_0_X8 / WEIGHT_Q8_0_X8 matrix of rows x C values, the
 * padding of its last group included. */
size_t x8_bytes(int type, long rows, long C);

#endif
