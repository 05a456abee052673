/* The writers of the weight formats: dst (n values of blocks) = the float
 * row x (n values, a multiple of the block) in that format. Each format's
 * entry in the weight-format table (formats.c) names its writer. */
#ifndef TINYLLM_QUANTIZERS_H
#define TINYLLM_QUANTIZERS_H

typedef void (*quantize_fn)(void *dst, const float *x, long n);

void quantize_q8_0(void *dst, const float *x, long n);
void quantize_q4_0(void *dst, const float *x, long n);
void quantize_q4_1(void *dst, const float *x, long n);
void quantize_q5_0(void *dst, const float *x, long n);
void quantize_q5_1(void *dst, const float *x, long n);
void quantize_iq4_nl(void *dst, const float *x, long n);
void quantize_q4_K(void *dst, const float *x, long n);
void quantize_q5_K(void *dst, const float *x, long n);
void quantize_q6_K(void *dst, const float *x, long n);
void quantize_bf16(void *dst, const float *x, long n);
void quantize_f16(void *dst, const float *x, long n);
void quantize_f32(void *dst, const float *x, long n);

#endif
