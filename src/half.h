/* IEEE half precision <-> float, one exact definition (src/half.c) for
 * the library (F16 weights, the F16 quantize writer, block scales) and the
 * CLI (the explorer's float16 arrays). */
#ifndef TINYLLM_HALF_H
#define TINYLLM_HALF_H

#include <stdint.h>

/* Exact: every half is a float. */
float f16_to_f32(uint16_t h);
/* The nearest half: round to nearest even, overflow to inf, NaN kept a
 * (quiet) NaN, subnormals. */
uint16_t f32_to_f16(float x);

#endif
