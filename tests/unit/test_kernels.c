/* Each kernel against a plain loop in double precision, for every kernel
 * set this CPU can run (scalar: kernels_generic.c, the plain definitions;
 * avx2, avx512, avx512vnni: kernels_isa.c and dots_isa.c), so every vector
 * path and the plain version are checked on every run. Tolerances are
 * float32 rounding bounds derived per computation (check.h, tests/README.md),
 * checked element by element. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "check.h"
#include "formats.h"
#include "quants.h"
#include "kernels.h"

static uint64_t rng_state = 42;
static float randn(void) { /* deterministic, roughly N(0,1) */
    double s = 0;
    for (int i = 0; i < 12; i++) {
        rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
        s += (double)(rng_state >> 11) / 9007199254740992.0;
    }
    return (float)(s - 6.0);
}
static float *rand_buf(long n, float scale) {
    float *p = malloc((size_t)n * sizeof *p);
    for (long i = 0; i < n; i++) p[i] = randn() * scale;
    return p;
}
static double *dbuf(long n) { return calloc((size_t)n, sizeof(double)); }

static void report_isa(const char *isa, const char *test, const test_state *ts) {
    char name[96];
    snprintf(name, sizeof name, "kernels.%s.%s", isa, test);
    report_test(name, ts);
}

/* C = 93 = 64 + 16 + 13: with AVX-512 (16 lanes) the 4-accumulator loop, the
 * 1-vector loop and a 13-wide scalar tail all run; with AVX2 (8 lanes) the
 * 32-wide, 8-wide and 5-wide parts; in the multi-row kernels the 2-vector
 * steps too. */
enum { MM_C = 93, MM_OC = 19 };

/* want (T, OC) = in @ w^T + b exactly; bound = gamma(C + 1) * (sum |in w| + |b|):
 * any float32 summation order of the C products and the bias. */
static void product_reference(double *want, double *bound, const float *in, const float *w, const float *b, int T,
                              int C, int OC) {
    for (int t = 0; t < T; t++)
        for (int o = 0; o < OC; o++) {
            double s = b ? b[o] : 0, a = b ? fabs(b[o]) : 0;
            for (int c = 0; c < C; c++) {
                double p = (double)in[t * C + c] * w[o * C + c];
                s += p, a += fabs(p);
            }
            want[t * OC + o] = s;
            bound[t * OC + o] = gamma_k(C + 1) * a;
        }
}

static void test_matmul_T(const kernel_ops *k, int T) {
    test_state ts = {0};
    int C = MM_C, OC = MM_OC;
    float *in = rand_buf((long)T * C, 1), *w = rand_buf((long)OC * C, 1), *b = rand_buf(OC, 1);
    float *out = malloc(sizeof(float) * T * OC);
    double *want = dbuf((long)T * OC), *bound = dbuf((long)T * OC);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        /* in two column ranges, as two threads would split it */
        matrix wm = {w, GGML_TYPE_F32};
        matmul_forward(k, out, in, C, wm, with_bias ? b : NULL, T, C, OC, 0, 6, NULL, 0);
        matmul_forward(k, out, in, C, wm, with_bias ? b : NULL, T, C, OC, 6, OC, NULL, 0);
        product_reference(want, bound, in, w, with_bias ? b : NULL, T, C, OC);
        double r = worst_ratio(out, want, bound, (long)T * OC);
        CHECK(&ts, r <= 1, "bias=%d: error %.3g x the rounding bound", with_bias, r);
    }
    char name[32];
    snprintf(name, sizeof name, T == 1 ? "matvec" : "matmul_T%d", T);
    report_isa(k->name, name, &ts);
    free(in), free(w), free(b), free(out), free(want), free(bound);
}

/* F16 -> F32 is exact: the vector conversion equals the scalar one for all
 * 65536 bit patterns. */
/* A 16-bit float's value by its definition: F16 (f16_to_f32), or BF16 (the
 * top half of an F32) */
static float half_value(int type, uint16_t h) {
    if (type == GGML_TYPE_F16) return f16_to_f32(h);
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Every bit pattern of F16 and BF16 through the set's conversion: the
 * definition's value, bit for bit (NaN stays NaN). */
static void test_half_convert(const kernel_ops *k, int type) {
    test_state ts = {0};
    uint16_t *all = malloc(65536 * sizeof *all);
    float *conv = malloc(65536 * sizeof *conv);
    for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    matrix_rows(k, conv, (matrix){all, type}, 65536, 0, 1); /* the set's conversion, or the definition */
    int bad = 0;
    for (int i = 0; i < 65536; i++) {
        float want = half_value(type, (uint16_t)i);
        bad += isnan(want) ? !isnan(conv[i]) : memcmp(&conv[i], &want, 4) != 0;
    }
    CHECK(&ts, bad == 0, "%d bit patterns convert differently", bad);
    report_isa(k->name, type == GGML_TYPE_F16 ? "f16_convert" : "bf16_convert", &ts);
    free(all), free(conv);
}

/* Products with F16 or BF16 weights (decode, streamed rows, sgemm on
 * converted blocks) against the exact product of the same (decoded)
 * weights. C = MM_C leaves a tail past the vectors. */
static void test_half_product(const kernel_ops *k, int type) {
    test_state ts = {0};
    int T = 9, C = MM_C, OC = 37;
    float *in = rand_buf((long)T * C, 1), *wf = malloc(sizeof(float) * OC * C), *b = rand_buf(OC, 1);
    uint16_t *wh = malloc(sizeof(uint16_t) * OC * C);
    for (int i = 0; i < OC * C; i++) { /* finite F16 around 1 (BF16: the same values' top halves) */
        int h = abs((int)(randn() * 3000) + 0x3000);
        wh[i] = (uint16_t)(h > 0x7bff ? 0x7bff : h);
    }
    if (type == GGML_TYPE_BF16)
        for (int i = 0; i < OC * C; i++) {
            float f = f16_to_f32(wh[i]) * (i % 2 ? -1.0f : 1.0f);
            uint32_t bits;
            memcpy(&bits, &f, 4);
            wh[i] = (uint16_t)(bits >> 16);
        }
    for (int i = 0; i < OC * C; i++) wf[i] = half_value(type, wh[i]);
    float *out = malloc(sizeof(float) * T * OC), *tmp = malloc(sizeof(float) * T * C);
    double *want = dbuf((long)T * OC), *bound = dbuf((long)T * OC);
    for (int t1 = 1; t1 <= T; t1 += 4) { /* 1 row, 5 rows streamed, 9 rows through sgemm */
        /* two column ranges, converted 8 rows at a time */
        matrix wm = {wh, type};
        matmul_forward(k, out, in, C, wm, b, t1, C, OC, 0, 13, tmp, 8);
        matmul_forward(k, out, in, C, wm, b, t1, C, OC, 13, OC, tmp, 8);
        product_reference(want, bound, in, wf, b, t1, C, OC);
        if (t1 > STREAM_MAX_ROWS && k->gemm_float[type]) /* x rounded to BF16: each term within 2^-8 of its value */
            for (int i = 0; i < t1 * OC; i++) bound[i] += 0x1p-8 * (1 + gamma_k(C + 1)) * (bound[i] / gamma_k(C + 1));
        double r = worst_ratio(out, want, bound, (long)t1 * OC);
        CHECK(&ts, r <= 1, "T=%d: error %.3g x the rounding bound", t1, r);
    }
    report_isa(k->name, type == GGML_TYPE_F16 ? "f16_product" : "bf16_product", &ts);
    free(in), free(wf), free(b), free(wh), free(out), free(tmp), free(want), free(bound);
}

static void test_f16_known_values(void) {
    test_state ts = {0};
    const struct { uint16_t h; float f; } known[] = {
        {0x3c00, 1.0f}, {0xc000, -2.0f}, {0x7bff, 65504.0f}, {0x0001, 5.9604645e-8f}, {0x0000, 0.0f}, {0x3555, 0.33325195f}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        CHECK(&ts, f16_to_f32(known[i].h) == known[i].f, "f16 %04x -> %g", known[i].h, f16_to_f32(known[i].h));
    CHECK(&ts, isinf(f16_to_f32(0x7c00)) && isnan(f16_to_f32(0x7e00)), "inf/nan");
    report_test("kernels.f16_known_values", &ts);
}

/* f32_to_f16 against its definition: every half maps back to itself, and a
 * float between two neighbouring halves goes to the nearer one, ties to the
 * even one (the midpoint of two halves is exact in float); past 65504's
 * midpoint with 65536, inf; NaN stays NaN. */
static void test_f32_to_f16(void) {
    test_state ts = {0};
    for (uint32_t h = 0; h < 0x10000; h++) {
        uint16_t v = (uint16_t)h;
        if ((v & 0x7c00) == 0x7c00 && (v & 0x3ff)) { /* NaN */
            uint16_t back = f32_to_f16(f16_to_f32(v));
            CHECK(&ts, (back & 0x7c00) == 0x7c00 && (back & 0x3ff), "NaN %04x -> %04x", v, back);
            continue;
        }
        CHECK(&ts, f32_to_f16(f16_to_f32(v)) == v, "%04x does not map back to itself (%04x)", v,
              f32_to_f16(f16_to_f32(v)));
        if ((v & 0x7fff) >= 0x7bff) continue; /* the largest finite and inf: no upper neighbour */
        uint16_t up = (uint16_t)(v + 1); /* the next half away from zero */
        float lo = f16_to_f32(v), hi = f16_to_f32(up), mid = (lo + hi) / 2;
        uint16_t even = (v & 1) ? up : v;
        CHECK(&ts, f32_to_f16(mid) == even, "midpoint of %04x and %04x -> %04x (expected %04x)", v, up,
              f32_to_f16(mid), even);
        CHECK(&ts, f32_to_f16(nextafterf(mid, lo)) == v && f32_to_f16(nextafterf(mid, hi)) == up,
              "beside the midpoint of %04x and %04x", v, up);
    }
    CHECK(&ts, f32_to_f16(65519.99f) == 0x7bff && f32_to_f16(65520.0f) == 0x7c00 && f32_to_f16(-1e30f) == 0xfc00,
          "overflow to inf");
    report_test("kernels.f32_to_f16", &ts);
}

/* Norms: sums in double, then per element three or four float roundings
 * (the scale, the products, the bias): bound 4u (RMSNorm) / 5u (LayerNorm)
 * of the terms' size. */
static void test_norms(void) {
    test_state ts = {0};
    int T = 5, C = 24;
    float *in = rand_buf((long)T * C, 3), *w = rand_buf(C, 1), *b = rand_buf(C, 1);
    float *out = malloc(sizeof(float) * T * C);
    double *want = dbuf((long)T * C), *bound = dbuf((long)T * C);
    rmsnorm_forward(out, in, w, T, C, 1e-5f);
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)in[t * C + c] * in[t * C + c];
        for (int c = 0; c < C; c++) {
            want[t * C + c] = in[t * C + c] / sqrt(ss / C + 1e-5) * w[c];
            bound[t * C + c] = 4 * F32_U * fabs(want[t * C + c]);
        }
    }
    double r = worst_ratio(out, want, bound, (long)T * C);
    CHECK(&ts, r <= 1, "rmsnorm: error %.3g x the rounding bound", r);
    report_test("kernels.rmsnorm", &ts);
    ts = (test_state){0};
    layernorm_forward(out, in, w, b, T, C, 1e-5f);
    for (int t = 0; t < T; t++) {
        double mu = 0, var = 0;
        for (int c = 0; c < C; c++) mu += (double)in[t * C + c] / C;
        for (int c = 0; c < C; c++) var += (in[t * C + c] - mu) * (in[t * C + c] - mu) / C;
        for (int c = 0; c < C; c++) {
            double nw = (in[t * C + c] - mu) / sqrt(var + 1e-5) * w[c];
            want[t * C + c] = nw + b[c];
            bound[t * C + c] = 5 * F32_U * (fabs(nw) + fabs(b[c]));
        }
    }
    r = worst_ratio(out, want, bound, (long)T * C);
    CHECK(&ts, r <= 1, "layernorm: error %.3g x the rounding bound", r);
    report_test("kernels.layernorm", &ts);
    free(in), free(w), free(b), free(out), free(want), free(bound);
}

/* GELU and SwiGLU: e^x from a polynomial (relative error <= 2u, see v_exp)
 * or libm (<= 1 ulp), then about six float operations: bound 12u relative
 * to the output plus, for GELU, 12u of |x| (tanh near 0 is computed as
 * 1 - 2 / (e^2y + 1), an absolute error of a few u, times x / 2). N = 101:
 * six AVX-512 vectors (or twelve AVX2) and a 5-wide tail. */
static void test_activations(const kernel_ops *k) {
    test_state ts = {0};
    int N = 101;
    float *x = rand_buf(N, 3), *up = rand_buf(N, 1), *y = malloc(sizeof(float) * N);
    double *want = dbuf(N), *bound = dbuf(N);
    memcpy(y, x, sizeof(float) * N);
    k->gelu(y, N);
    for (int i = 0; i < N; i++) {
        double v = x[i];
        want[i] = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        bound[i] = 12 * F32_U * (fabs(want[i]) + fabs(v));
    }
    double r = worst_ratio(y, want, bound, N);
    CHECK(&ts, r <= 1, "gelu: error %.3g x the rounding bound", r);
    report_isa(k->name, "gelu", &ts);
    ts = (test_state){0};
    memcpy(y, x, sizeof(float) * N);
    k->swiglu(y, up, N);
    for (int i = 0; i < N; i++) {
        want[i] = x[i] / (1 + exp(-(double)x[i])) * up[i];
        bound[i] = 12 * F32_U * fabs(want[i]);
    }
    r = worst_ratio(y, want, bound, N);
    CHECK(&ts, r <= 1, "swiglu: error %.3g x the rounding bound", r);
    report_isa(k->name, "swiglu", &ts);

    free(x), free(up), free(y), free(want), free(bound);
}

/* RoPE: cos/sin rounded to float (u each), two products and a sum: bound
 * 4u (|a| + |b|) for the pair (a, b). */
/* The activation quantization (q8_act) against its definition, computed
 * here: per group of values (32, or 256 for the K-quants) d = max|x| / 127
 * and q = x * (127 / max|x|) rounded to even, and per block of 32 its d and
 * s = sum q; the same bytes in every kernel set. A group holding a NaN
 * gets d = NaN (the NaN reaches the product instead of vanishing), an
 * all-zero group d = 0 and q = 0; a strided input and a row range [1, 3)
 * leave the other rows untouched. */
static void test_quantize_act(const kernel_ops *k) {
    test_state ts = {0};
    enum { T = 4, C = 768, NB = C / 32, STRIDE = C + 8 };
    float *in = rand_buf((long)T * STRIDE, 3);
    for (int j = 0; j < 256; j++) in[STRIDE + 256 + j] = 0.0f; /* row 1, values 256..511: zeros */
    in[2 * STRIDE + 37] = NAN;                                /* row 2, values 0..255: a NaN */
    in[2 * STRIDE + 300] = 1e30f;                             /* row 2, values 256..511: a huge value */
    unsigned char *buf = malloc(Q8_ACT_BYTES(T, C));
    static const int GROUPS[2] = {32, 256};
    for (int gi = 0; gi < 2; gi++) {
        int G = GROUPS[gi];
        memset(buf, 0x5a, Q8_ACT_BYTES(T, C));
        q8_act x = q8_act_in(buf, T, C, G);
        k->quantize_q8_act(&x, in, STRIDE, 1, 3);
        for (int t = 0; t < T; t++)
            for (int b = 0; b < NB; b++) {
                const float *xb = in + (size_t)t * STRIDE + b * 32, *xg = in + (size_t)t * STRIDE + b * 32 / G * G;
                const int8_t *q = x.q + (size_t)t * C + b * 32;
                float d = x.d[t * NB + b];
                int32_t s = x.s[t * NB + b];
                if (t == 0 || t == 3) { /* outside the range: untouched */
                    int same = 1;
                    for (int j = 0; j < 32; j++) same &= (unsigned char)q[j] == 0x5a;
                    CHECK(&ts, same, "groups of %d: row %d block %d was written outside rows [1, 3)", G, t, b);
                    continue;
                }
                float amax = 0.0f;
                int nan = 0;
                for (int j = 0; j < G; j++) nan |= isnan(xg[j]), amax = fmaxf(amax, fabsf(xg[j]));
                if (nan) {
                    CHECK(&ts, isnan(d), "groups of %d: row %d block %d's group holds a NaN but its scale is %g", G, t, b,
                          d);
                    continue;
                }
                float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
                int32_t sum = 0, ok = memcmp(&d, &(float){amax / 127.0f}, sizeof d) == 0;
                for (int j = 0; j < 32; j++) {
                    long v = lrintf(xb[j] * inv);
                    v = v < -128 ? -128 : v > 127 ? 127 : v;
                    ok &= q[j] == v;
                    sum += (int32_t)v;
                }
                CHECK(&ts, ok && s == sum, "groups of %d: row %d block %d: values, scale %g or sum %d differ from the "
                      "definition", G, t, b, d, s);
            }
    }
    report_isa(k->name, "quantize_act", &ts);
    free(in), free(buf);
}

/* Products with Q8_0 / Q4_0 weights: blocks of random scales (F16 bit
 * patterns, 0.008..0.03) and values, so the decoded weights are known
 * exactly. Against the exact product of the decoded weights: sgemm on
 * converted rows (T > 8; Q8_0 and Q4_0 as stored) within the float bound;
 * the integer paths (T <= 8, and every T for the repacked layouts) also
 * within each activation block's quantization error, at most d_x / 2 per
 * element (d_x = max|x| / 127 of the block; 1e-4 relative slack for the
 * rounding of d_x, 1 / d_x and x / d_x) times sum |w| over the block.
 * T = 1, 5, 9, .. 21 meet the repacked GEMM's tiles of 8, 4 and 1 rows (4
 * and 1 without AVX-512), and the second column range quantizes with room
 * for only 9 rows at a time. OC = 37: the repacked layout's last group of 8
 * is padded. C = 160: five blocks, so the two-block loop
 * has a tail. The large shape (repacked only: T = 40, C = 4096, OC = 64)
 * crosses matmul_q8_forward's blocks of weight rows and chunks of rows. */
static void test_quantized_product(const kernel_ops *k, enum ggml_type type, int x8, int large) {
    test_state ts = {0};
    int T = large ? 40 : 21, C = large ? 4096 : 160, OC = large ? 64 : 37, nb = C / 32;
    int bytes = type == GGML_TYPE_Q8_0 ? 34 : 18;
    float *in = rand_buf((long)T * C, 1), *wf = malloc(sizeof(float) * OC * C), *b = rand_buf(OC, 1);
    uint8_t *wq = malloc((size_t)OC * nb * bytes);
    int *wint = malloc(sizeof(int) * OC * C);         /* the weights' integers and block scales */
    float *wscale = malloc(sizeof(float) * OC * nb);
    for (int r = 0; r < OC * nb; r++) {
        uint8_t *blk = wq + (size_t)r * bytes;
        uint16_t d = (uint16_t)(0x2000 + (rand() % 0x400) + (rand() % 2) * 0x400);
        memcpy(blk, &d, 2);
        float df = f16_to_f32(d);
        wscale[r] = df;
        for (int j = 0; j < bytes - 2; j++) blk[2 + j] = (uint8_t)(rand() & 0xff);
        for (int j = 0; j < 32; j++) {
            int q = type == GGML_TYPE_Q8_0 ? (int8_t)blk[2 + j]
                    : j < 16 ? (blk[2 + j] & 15) - 8 : (blk[2 + j - 16] >> 4) - 8;
            if (type == GGML_TYPE_Q8_0 && q == -128) { /* quantizers write -127..127 */
                q = -127;
                blk[2 + j] = (uint8_t)(int8_t)q;
            }
            wf[(size_t)r * 32 + j] = (float)q * df;
            wint[(size_t)r * 32 + j] = q;
        }
    }
    float *out = malloc(sizeof(float) * T * OC), *tmp = malloc(sizeof(float) * T * C);
    double *want = dbuf((long)T * OC), *bound = dbuf((long)T * OC);
    matrix wm = {wq, type};
    uint8_t *packed = NULL;
    int split = 13;
    if (x8) { /* the 8-row interleaved layout; threads split on multiples of 8 */
        packed = malloc(x8_bytes(type == GGML_TYPE_Q8_0 ? WEIGHT_Q8_0_X8 : WEIGHT_Q4_0_X8, OC, C));
        if (type == GGML_TYPE_Q8_0)
            repack_q8_0_x8(packed, wq, OC, C);
        else
            repack_q4_0_x8(packed, wq, OC, C);
        wm = (matrix){packed, type == GGML_TYPE_Q8_0 ? WEIGHT_Q8_0_X8 : WEIGHT_Q4_0_X8};
        split = 16;
    }
    for (int t1 = large ? T : 1; t1 <= T; t1 += 4) {
        matmul_forward(k, out, in, C, wm, b, t1, C, OC, 0, split, tmp, T);
        matmul_forward(k, out, in, C, wm, b, t1, C, OC, split, OC, tmp, 3);
        product_reference(want, bound, in, wf, b, t1, C, OC);
        if (t1 <= STREAM_MAX_ROWS || x8) /* the integer kernels */
            for (int t = 0; t < t1; t++)
                for (int o = 0; o < OC; o++)
                    for (int blk = 0; blk < nb; blk++) {
                        double amax = 0, wsum = 0;
                        for (int j = 0; j < 32; j++) {
                            amax = fmax(amax, fabs(in[t * C + blk * 32 + j]));
                            wsum += fabs(wf[(size_t)o * C + blk * 32 + j]);
                        }
                        bound[t * OC + o] += amax / 127 * (0.5 + 1e-4) * wsum;
                    }
        double r = worst_ratio(out, want, bound, (long)t1 * OC);
        CHECK(&ts, r <= 1, "T=%d: error %.3g x the bound", t1, r);
        if (t1 > STREAM_MAX_ROWS && !x8) continue;
        /* Tighter: the streamed paths are exact integer block sums of the
         * quantized activations (quantized here as the kernels do: scale
         * max|x| / 127, x * (127 / max|x|) rounded to even), each scaled by
         * the float d_w * d_x; only the float sum over the blocks and the
         * bias rounds: (nb + 2) 2^-24 of the sum of magnitudes. */
        for (int t = 0; t < t1; t++)
            for (int o = 0; o < OC; o++) {
                double exact = b[o], mag = fabs(b[o]);
                for (int blk = 0; blk < nb; blk++) {
                    const float *x = in + (size_t)t * C + blk * 32;
                    float amax = 0.0f;
                    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
                    float dx = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
                    long isum = 0;
                    for (int j = 0; j < 32; j++) isum += (long)wint[((size_t)o * nb + blk) * 32 + j] * lrintf(x[j] * inv);
                    double term = (double)(wscale[(size_t)o * nb + blk] * dx) * (double)isum;
                    exact += term, mag += fabs(term);
                }
                double err = fabs(out[t * OC + o] - exact), tol = (nb + 2) * ldexp(1.0, -24) * mag;
                CHECK(&ts, err <= tol, "T=%d row %d col %d: %.9g vs the exact integer sums %.9g (tolerance %.3g)", t1,
                      t, o, out[t * OC + o], exact, tol);
            }
    }
    const char *name = type == GGML_TYPE_Q8_0 ? (x8 ? "q8_0x8" : "q8_0") : x8 ? "q4_0x8" : "q4_0";
    char test[32];
    snprintf(test, sizeof test, "%s_product%s", name, large ? "_blocks" : "");
    report_isa(k->name, test, &ts);
    if (large) {
        free(in), free(wf), free(b), free(wq), free(packed), free(out), free(tmp), free(want), free(bound);
        free(wint), free(wscale);
        return;
    }
    /* the row conversion (prefill) is exact: rows 8..15 */
    ts = (test_state){0};
    matrix_rows(k, tmp, wm, C, 8, 8);
    CHECK(&ts, memcmp(tmp, wf + 8 * C, sizeof(float) * 8 * C) == 0, "converted rows differ from the decoded weights");
    /* single rows anywhere (an embedding lookup), and a run across groups */
    for (int r = 0; r < OC; r += 3) {
        matrix_rows(k, tmp, wm, C, (size_t)r, 1);
        CHECK(&ts, memcmp(tmp, wf + (size_t)r * C, sizeof(float) * C) == 0, "row %d differs from the decoded weights", r);
    }
    matrix_rows(k, tmp, wm, C, 5, 6);
    CHECK(&ts, memcmp(tmp, wf + 5 * C, sizeof(float) * 6 * C) == 0, "rows 5..10 differ from the decoded weights");
    snprintf(test, sizeof test, "%s_convert", name);
    report_isa(k->name, test, &ts);
    free(in), free(wf), free(b), free(wq), free(packed), free(out), free(tmp), free(want), free(bound);
    free(wint), free(wscale);
}

/* The exact GELU (one function for every set): evaluated in double and
 * rounded once (u); 2u allowed. Inputs to -12 reach the tail where
 * 1 + erf(z) cancels. */
static void test_gelu_erf(void) {
    test_state ts = {0};
    int N = 101;
    float *y = rand_buf(N, 4);
    double *want = dbuf(N), *bound = dbuf(N);
    for (int i = 0; i < N; i++) y[i] *= 4;
    y[0] = -12.0f, y[1] = -5.5f, y[2] = 7.0f, y[3] = 0.0f;
    for (int i = 0; i < N; i++) {
        double v = y[i];
        want[i] = 0.5 * v * erfc(-v / sqrt(2.0)); /* = x/2 (1 + erf(x / sqrt 2)), no cancellation */
        bound[i] = 2 * F32_U * fabs(want[i]) + 1e-45;
    }
    gelu_erf_forward(y, N);
    double r = worst_ratio(y, want, bound, N);
    CHECK(&ts, r <= 1, "gelu (erf): error %.3g x the rounding bound", r);
    report_test("kernels.gelu_erf", &ts);
    free(y), free(want), free(bound);
}

static void test_rope(void) {
    test_state ts = {0};
    int T = 6, H = 3, D = 8, pos0 = 4, n = T * H * D;
    float *x = rand_buf(n, 1), *y = malloc(sizeof(float) * n);
    double *want = dbuf(n), *bound = dbuf(n);
    memcpy(y, x, sizeof(float) * n);
    float cs[16 * 4], sn[16 * 4]; /* (pos0 + T) x D/2 */
    rope_table(cs, sn, pos0 + T, D, 10000.0f);
    rope_forward(y, T, H * D, H, D, cs + pos0 * (D / 2), sn + pos0 * (D / 2));
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < D; i += 2) {
                double ang = (pos0 + t) / pow(10000.0, (double)i / D);
                int at = t * H * D + h * D + i;
                double a = x[at], b = x[at + 1];
                want[at] = a * cos(ang) - b * sin(ang);
                want[at + 1] = a * sin(ang) + b * cos(ang);
                bound[at] = bound[at + 1] = 4 * F32_U * (fabs(a) + fabs(b));
            }
    double r = worst_ratio(y, want, bound, n);
    CHECK(&ts, r <= 1, "rope: error %.3g x the rounding bound", r);
    report_test("kernels.rope", &ts);
    free(x), free(y), free(want), free(bound);
}

/* Softmax: each e^x within 8u relative (polynomial plus its operations),
 * the sum of N within gamma(N), then a reciprocal and a product. Inputs near
 * 1000 overflow e^x unless the maximum is subtracted; N = 37 runs the
 * vector loops and a tail in every set. */
static void test_softmax(const kernel_ops *k) {
    test_state ts = {0};
    enum { N = 37 };
    float x[N];
    double want[N], bound[N], sum = 0, got_sum = 0;
    for (int i = 0; i < N; i++) x[i] = 1000.0f + (float)((i * 13) % N) / 4.0f - (i == 5 ? 2000.0f : 0.0f);
    double mx = 1000.0 + (N - 1) / 4.0;
    for (int i = 0; i < N; i++) sum += exp((double)x[i] - mx);
    for (int i = 0; i < N; i++) {
        want[i] = exp((double)x[i] - mx) / sum;
        bound[i] = (8 * F32_U + gamma_k(N + 2)) * want[i];
    }
    k->softmax(x, N);
    for (int i = 0; i < N; i++) got_sum += x[i];
    double r = worst_ratio(x, want, bound, N);
    CHECK(&ts, r <= 1, "softmax: error %.3g x the rounding bound", r);
    CHECK(&ts, fabs(got_sum - 1) <= gamma_k(N + 10), "row sums to 1 %+g", got_sum - 1);
    report_isa(k->name, "softmax", &ts);
}

/* read_bytes (decode's bandwidth bound) against the fold it defines, at
 * every start alignment and lengths that end in each part of a set's loop:
 * every word and tail byte must be read once, or the fold differs. */
static void test_read_bytes(const kernel_ops *k) {
    test_state ts = {0};
    enum { N = 1000 };
    uint8_t buf[N + 8];
    for (int i = 0; i < N + 8; i++) buf[i] = (uint8_t)(randn() * 1000);
    for (int at = 0; at < 8; at++)
        for (int n = 0; n <= N - 8; n += 7) {
            uint64_t want = 0, w;
            int i = 0;
            for (; i + 8 <= n; i += 8) memcpy(&w, buf + at + i, 8), want ^= w;
            for (; i < n; i++) want ^= buf[at + i];
            uint64_t got = k->read_bytes(buf + at, (size_t)n);
            CHECK(&ts, got == want, "read_bytes(p + %d, %d) = %016llx, expected %016llx", at, n,
                  (unsigned long long)got, (unsigned long long)want);
        }
    report_isa(k->name, "read_bytes", &ts);
}

/* attention_forward against a loop, with GQA and a non-zero pos0 (the
 * decode case: new tokens attend to cached ones); head size D, pos0 + T
 * keys. Bound, per output element
 * (first order in u): a score s_j is within Es_j = gamma(D + 2) |q| . |k_j| / sqrt(D)
 * (D products, the scale); softmax turns score errors <= Es into
 * probability errors <= p_j (2 Es + eps_softmax); the weighted sum of L
 * values adds gamma(L) sum p_j |v_j|. D = 24: vector loops and tails;
 * D = 72 with an odd L: the weighted sum's 4-vector blocks of even and odd
 * rows, a last row alone, and tail columns. */
static void test_attention_T(const kernel_ops *k, int T, int D, int pos0) {
    test_state ts = {0};
    int H = 4, Hkv = 2, L = pos0 + T, dim = H * D, kvd = Hkv * D, n_ctx = 16;
    float *q = rand_buf((long)T * dim, 1), *kc = rand_buf((long)n_ctx * kvd, 1), *v = rand_buf((long)n_ctx * kvd, 1);
    float *out = malloc(sizeof(float) * T * dim);
    double *want = dbuf((long)T * dim), *bound = dbuf((long)T * dim);
    float *scores = malloc(sizeof(float) * H * T * L), *probs = malloc(sizeof(float) * H * T * L);
    attention_rule rule = attention_rule_for(D, NULL);
    attention_forward(k, &rule, out, scores, probs, (size_t)T * L, q, kc, v, T, pos0, H, Hkv, D, 0, 1);
    attention_forward(k, &rule, out, scores, probs, (size_t)T * L, q, kc, v, T, pos0, H, Hkv, D, 1, H); /* split like threads */
    double max_row_err = 0, max_upper = 0, row_bound = gamma_k(L + 10);
    for (int h = 0; h < H; h++) {
        int g = h / (H / Hkv);
        for (int t = 0; t < T; t++) {
            double s[16], m = -1e30, z = 0, rowsum = 0, Es = 0;
            for (int j = 0; j <= pos0 + t; j++) {
                double d = 0, a = 0;
                for (int i = 0; i < D; i++) {
                    double p = (double)q[t * dim + h * D + i] * kc[j * kvd + g * D + i];
                    d += p, a += fabs(p);
                }
                s[j] = d / sqrt(D);
                Es = fmax(Es, gamma_k(D + 2) * a / sqrt(D));
                if (s[j] > m) m = s[j];
            }
            for (int j = 0; j <= pos0 + t; j++) z += exp(s[j] - m);
            double eps_p = 2 * Es + 8 * F32_U + gamma_k(L + 2);
            for (int i = 0; i < D; i++) {
                double acc = 0, mag = 0;
                for (int j = 0; j <= pos0 + t; j++) {
                    double p = exp(s[j] - m) / z, vv = v[j * kvd + g * D + i];
                    acc += p * vv, mag += p * fabs(vv);
                }
                want[t * dim + h * D + i] = acc;
                bound[t * dim + h * D + i] = (eps_p + gamma_k(L)) * mag;
            }
            const float *prow = probs + ((size_t)h * T + t) * L;
            for (int j = 0; j < L; j++) {
                rowsum += prow[j];
                if (j > pos0 + t) max_upper = fmax(max_upper, fabs(prow[j]));
            }
            max_row_err = fmax(max_row_err, fabs(rowsum - 1));
        }
    }
    double r = worst_ratio(out, want, bound, (long)T * dim);
    CHECK(&ts, r <= 1, "output: error %.3g x the rounding bound", r);
    CHECK(&ts, max_row_err <= row_bound, "probability rows sum off by %g (bound %g)", max_row_err, row_bound);
    CHECK(&ts, max_upper == 0, "probability %g above the diagonal", max_upper); /* masked: exactly 0 */
    char name[48];
    snprintf(name, sizeof name, "%s_D%d_L%d", T == 1 ? "attention_decode" : "attention", D, L);
    report_isa(k->name, name, &ts);
    free(q), free(kc), free(v), free(out), free(want), free(bound), free(scores), free(probs);
}

/* Every built set is listed; the selection honours TINYLLM_ISA. */
static void test_selection(void) {
    test_state ts = {0};
    const kernel_ops *best = kernels_select();
    CHECK(&ts, best && kernels_named(best->name) == best, "selected set is not runnable");
    CHECK(&ts, kernels_named("scalar") != NULL, "the scalar set is missing");
    CHECK(&ts, kernels_named("no-such-isa") == NULL, "an unknown set was found");
    const char *forced = getenv("TINYLLM_ISA");
    if (forced && kernels_named(forced))
        CHECK(&ts, strcmp(best->name, forced) == 0, "TINYLLM_ISA=%s but %s was selected", forced, best->name);
    report_test("kernels.selection", &ts);
}

/* Each block format's F16 scale fields (the rest of a block is random
 * bytes): set to finite values so every product is finite. */
static const struct {
    int type;
    size_t halves[2];
    int n_halves;
} BLOCK_HALVES[] = {
    {GGML_TYPE_Q8_0, {offsetof(block_q8_0, d)}, 1},
    {GGML_TYPE_Q4_0, {offsetof(block_q4_0, d)}, 1},
    {GGML_TYPE_Q4_1, {offsetof(block_q4_1, d), offsetof(block_q4_1, m)}, 2},
    {GGML_TYPE_Q5_0, {offsetof(block_q5_0, d)}, 1},
    {GGML_TYPE_Q5_1, {offsetof(block_q5_1, d), offsetof(block_q5_1, m)}, 2},
    {GGML_TYPE_IQ4_NL, {offsetof(block_iq4_nl, d)}, 1},
    {GGML_TYPE_Q2_K, {offsetof(block_q2_K, d), offsetof(block_q2_K, dmin)}, 2},
    {GGML_TYPE_Q3_K, {offsetof(block_q3_K, d)}, 1},
    {GGML_TYPE_Q4_K, {offsetof(block_q4_K, d), offsetof(block_q4_K, dmin)}, 2},
    {GGML_TYPE_Q5_K, {offsetof(block_q5_K, d), offsetof(block_q5_K, dmin)}, 2},
    {GGML_TYPE_Q6_K, {offsetof(block_q6_K, d)}, 1},
};

/* rows random blocks of format f (C values each), scales finite */
static uint8_t *random_block_rows(const weight_format *f, size_t halves_at[2], int n_halves, int rows, int C) {
    size_t bytes = weight_bytes(f->type, (size_t)rows * C);
    uint8_t *w = malloc(bytes);
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)(randn() * 1000.0f);
    for (size_t b = 0; b < bytes / (size_t)f->block_bytes; b++)
        for (int h = 0; h < n_halves; h++) {
            uint16_t v = f32_to_f16((0.5f + fabsf(randn())) * (h ? -0.01f : 0.01f));
            memcpy(w + b * (size_t)f->block_bytes + halves_at[h], &v, 2);
        }
    return w;
}

/* The sum of |terms| of the definition's dot product (dot_blocks_q8): per
 * sub-block scale * sum(q x) * dx and offset * sum(x) * dx. */
static double dot_terms(const weight_format *f, const uint8_t *row, const q8_act *x, int t) {
    double a = 0;
    block_codes c;
    for (int b = 0; b < x->C / f->block; b++) {
        uint8_t blk[256];
        memcpy(blk, row + (size_t)b * f->block_bytes, (size_t)f->block_bytes);
        f->decode(blk, &c);
        const int8_t *xb = x->q + (size_t)t * x->C + (size_t)b * f->block;
        for (int k = 0; k < c.n / c.sub; k++) {
            double codes = 0, sum = 0;
            for (int i = k * c.sub; i < (k + 1) * c.sub; i++) codes += c.q[i] * xb[i], sum += xb[i];
            double dx = x->d[(size_t)t * (x->C / 32) + (b * f->block + k * c.sub) / 32];
            a += fabs(c.scale[k] * codes * dx) + (c.has_offset ? fabs(c.offset[k] * sum * dx) : 0);
        }
    }
    return a;
}

/* Every block format's vector dot product (k->dot_q8) against the plain
 * definition on random blocks: the same integer sums, so they differ only
 * by the float sums of the scaled terms (gamma(terms + 3): each term is two
 * products of three factors). */
static void test_block_dots(const kernel_ops *k) {
    test_state ts = {0};
    enum { C = 768, ROWS = 3, T = 2 };
    int tested = 0;
    for (size_t i = 0; i < sizeof BLOCK_HALVES / sizeof BLOCK_HALVES[0]; i++) {
        const weight_format *f = weight_format_of(BLOCK_HALVES[i].type);
        dot_q8_fn dot = k->dot_q8[f->type];
        if (!dot) continue;
        tested++;
        size_t halves[2] = {BLOCK_HALVES[i].halves[0], BLOCK_HALVES[i].halves[1]};
        uint8_t *w = random_block_rows(f, halves, BLOCK_HALVES[i].n_halves, ROWS, C);
        float *in = rand_buf((long)T * C, 1.0f);
        void *buf = malloc(Q8_ACT_BYTES(T, C));
        q8_act x = q8_act_in(buf, T, C, f->block == QK_K ? QK_K : 32); /* as the products quantize */
        k->quantize_q8_act(&x, in, C, 0, T);
        q8_act_sums16(&x, 0, T);
        size_t row_bytes = weight_bytes(f->type, C);
        for (int r = 0; r < ROWS; r++)
            for (int t = 0; t < T; t++) {
                const uint8_t *row = w + r * row_bytes;
                float got = dot(row, &x, t), want = dot_blocks_q8(f->decode, f->block, f->block_bytes, row, &x, t);
                double bound = gamma_k(C / 16 * 2 + 3) * dot_terms(f, row, &x, t);
                CHECK(&ts, fabs((double)got - want) <= bound, "%s row %d t %d: %.9g vs the definition's %.9g (bound %.3g)",
                      f->name, r, t, got, want, bound);
            }
        free(w), free(in), free(buf);
    }
    if (!tested) {
        printf("SKIP kernels.%s.block_dots: the %s set runs the plain definitions\n", k->name, k->name);
        return;
    }
    /* the rows as F32: bit for bit the definition */
    for (size_t i = 0; i < sizeof BLOCK_HALVES / sizeof BLOCK_HALVES[0]; i++) {
        const weight_format *f = weight_format_of(BLOCK_HALVES[i].type);
        if (!k->to_f32[f->type]) continue;
        size_t halves[2] = {BLOCK_HALVES[i].halves[0], BLOCK_HALVES[i].halves[1]};
        uint8_t *w = random_block_rows(f, halves, BLOCK_HALVES[i].n_halves, ROWS, C);
        float *got = malloc(sizeof(float) * ROWS * C), *want = malloc(sizeof(float) * ROWS * C);
        k->to_f32[f->type](got, w, (long)ROWS * C);
        dequantize_blocks(f->decode, f->block, f->block_bytes, want, w, (long)ROWS * C);
        CHECK(&ts, memcmp(got, want, sizeof(float) * ROWS * C) == 0, "%s rows to F32 differ from the definition", f->name);
        free(w), free(got), free(want);
    }
    report_isa(k->name, "block_dots", &ts);
}

/* Every block format's integer GEMM on its rows as stored (k->gemm: the
 * K-quants' prefill) against the plain definition: each output is the
 * definition's dot product plus the bias, within the dots' bound (one more
 * term: the bias). T = 13 rows: whole tiles (8 or 4 rows), a tile of 4 and
 * single rows; the columns in two ranges, as two threads split them; then
 * the same product through matmul_forward, quantizing into scratch a few
 * rows at a time. */
static void test_block_gemms(const kernel_ops *k) {
    test_state ts = {0};
    enum { C = 768, ROWS = 5, T = 13, SCRATCH_ROWS = 4 };
    int tested = 0;
    for (size_t i = 0; i < sizeof BLOCK_HALVES / sizeof BLOCK_HALVES[0]; i++) {
        const weight_format *f = weight_format_of(BLOCK_HALVES[i].type);
        gemm_q8_fn gemm = k->gemm[f->type];
        if (!gemm) continue;
        tested++;
        size_t halves[2] = {BLOCK_HALVES[i].halves[0], BLOCK_HALVES[i].halves[1]};
        uint8_t *w = random_block_rows(f, halves, BLOCK_HALVES[i].n_halves, ROWS, C);
        matrix wm = {w, f->type};
        float *in = rand_buf((long)T * C, 1.0f), *bias = rand_buf(ROWS, 1.0f);
        float *scratch = malloc(sizeof(float) * SCRATCH_ROWS * C);
        void *buf = malloc(Q8_ACT_BYTES(T, C));
        q8_act x = matmul_act_rows(buf, wm, T, C);
        matmul_quantize(k, &x, in, C, 0, T);
        float out[T * ROWS], via_matmul[T * ROWS];
        gemm(out, &x, w, bias, 0, T, ROWS, 0, 2);
        gemm(out, &x, w, bias, 0, T, ROWS, 2, ROWS);
        CHECK(&ts, matmul_takes_q8_act(k, wm, T), "%s: a %d-row product does not take the integer GEMM", f->name, T);
        matmul_forward(k, via_matmul, in, C, wm, bias, T, C, ROWS, 0, ROWS, scratch, SCRATCH_ROWS);
        size_t row_bytes = weight_bytes(f->type, C);
        for (int r = 0; r < ROWS; r++)
            for (int t = 0; t < T; t++) {
                const uint8_t *row = w + r * row_bytes;
                double want = (double)dot_blocks_q8(f->decode, f->block, f->block_bytes, row, &x, t) + bias[r];
                double bound = gamma_k(C / 16 * 2 + 4) * (dot_terms(f, row, &x, t) + fabs(bias[r]));
                CHECK(&ts, fabs(out[t * ROWS + r] - want) <= bound,
                      "%s gemm row %d t %d: %.9g vs the definition's %.9g (bound %.3g)", f->name, r, t,
                      out[t * ROWS + r], want, bound);
                CHECK(&ts, fabs(via_matmul[t * ROWS + r] - want) <= bound,
                      "%s matmul_forward row %d t %d: %.9g vs the definition's %.9g (bound %.3g)", f->name, r, t,
                      via_matmul[t * ROWS + r], want, bound);
            }
        free(w), free(in), free(bias), free(scratch), free(buf);
    }
    if (!tested) {
        printf("SKIP kernels.%s.block_gemms: the %s set converts these formats for sgemm\n", k->name, k->name);
        return;
    }
    report_isa(k->name, "block_gemms", &ts);
}

/* The K-quants repacked in 8-row groups (WEIGHT_Q4_K_X8, ...)
 * against the format's definition on the rows as stored: every product (decode T = 1, a tile
 * and single rows up to T = 13; columns split at 16 as two threads split
 * them; prefill quantizing 4 rows at a time) is the definition's dot product
 * plus the bias within the dots' bound; OC = 37 pads the last group; random
 * blocks (every scale and min bit) with C = 768; the rows as F32 (any rows:
 * an embedding lookup) bit for bit the stored rows' values. */
static void test_k_x8(const kernel_ops *k, int type) {
    test_state ts = {0};
    enum { C = 768, OC = 37, TMAX = 13, SCRATCH_ROWS = 4 };
    const weight_format *f = weight_format_of(type);
    size_t i = 0;
    while (BLOCK_HALVES[i].type != type) i++;
    size_t halves[2] = {BLOCK_HALVES[i].halves[0], BLOCK_HALVES[i].halves[1]};
    uint8_t *w = random_block_rows(f, halves, BLOCK_HALVES[i].n_halves, OC, C);
    uint8_t *packed = malloc(x8_bytes(f->repacked, OC, C));
    f->repack(packed, w, OC, C);
    matrix wm = {packed, f->repacked};
    float *in = rand_buf((long)TMAX * C, 1.0f), *bias = rand_buf(OC, 1.0f);
    float *scratch = malloc(sizeof(float) * SCRATCH_ROWS * C), *out = malloc(sizeof(float) * TMAX * OC);
    void *buf = malloc(Q8_ACT_BYTES(TMAX, C)), *qscratch = malloc(Q8_ACT_BYTES(STREAM_MAX_ROWS, C));
    size_t row_bytes = weight_bytes(f->type, C);
    for (int T = 1; T <= TMAX; T += T < 3 ? 1 : 4) {
        q8_act x = matmul_act_rows(buf, wm, T, C); /* as the product quantizes them */
        matmul_quantize(k, &x, in, C, 0, T);
        float *room = T <= STREAM_MAX_ROWS ? qscratch : scratch;
        matmul_forward(k, out, in, C, wm, bias, T, C, OC, 0, 16, room, SCRATCH_ROWS);
        matmul_forward(k, out, in, C, wm, bias, T, C, OC, 16, OC, room, SCRATCH_ROWS);
        for (int r = 0; r < OC; r++)
            for (int t = 0; t < T; t++) {
                const uint8_t *row = w + r * row_bytes;
                double want = (double)dot_blocks_q8(f->decode, f->block, f->block_bytes, row, &x, t) + bias[r];
                double bound = gamma_k(C / 16 * 2 + 4) * (dot_terms(f, row, &x, t) + fabs(bias[r]));
                CHECK(&ts, fabs(out[t * OC + r] - want) <= bound, "T=%d row %d t %d: %.9g vs the definition's %.9g",
                      T, r, t, out[t * OC + r], want);
            }
    }
    float *got = malloc(sizeof(float) * OC * C), *want = malloc(sizeof(float) * OC * C);
    dequantize_blocks(f->decode, f->block, f->block_bytes, want, w, (long)OC * C);
    matrix_rows(k, got, wm, C, 0, OC);
    CHECK(&ts, memcmp(got, want, sizeof(float) * OC * C) == 0, "rows as F32 differ from the stored rows' values");
    matrix_rows(k, got, wm, C, 13, 1);
    CHECK(&ts, memcmp(got, want + 13 * C, sizeof(float) * C) == 0, "row 13 differs from the stored row's values");
    char name[32];
    snprintf(name, sizeof name, "%s_product", weight_format_of(f->repacked)->name);
    report_isa(k->name, name, &ts);
    free(w), free(packed), free(in), free(bias), free(scratch), free(out), free(buf), free(qscratch), free(got);
    free(want);
}

void run_kernel_tests(void) {
    test_selection();
    test_f16_known_values();
    test_f32_to_f16();
    test_norms();
    test_rope();
    test_gelu_erf();
    for (int i = 0; kernels_built(i); i++) {
        const kernel_ops *k = kernels_named(kernels_built(i));
        if (!k) {
            printf("SKIP kernels.%s: this CPU cannot run the %s kernels\n", kernels_built(i), kernels_built(i));
            continue;
        }
        test_half_convert(k, GGML_TYPE_F16);
        test_half_convert(k, GGML_TYPE_BF16);
        test_half_product(k, GGML_TYPE_F16);
        test_half_product(k, GGML_TYPE_BF16);
        test_quantize_act(k);
        test_block_dots(k);
        test_block_gemms(k);
        test_k_x8(k, GGML_TYPE_Q4_K);
        test_k_x8(k, GGML_TYPE_Q5_K);
        test_k_x8(k, GGML_TYPE_Q6_K);
        test_k_x8(k, GGML_TYPE_Q2_K);
        test_k_x8(k, GGML_TYPE_Q3_K);
        test_quantized_product(k, GGML_TYPE_Q8_0, 0, 0);
        test_quantized_product(k, GGML_TYPE_Q4_0, 0, 0);
        test_quantized_product(k, GGML_TYPE_Q4_0, 1, 0);
        test_quantized_product(k, GGML_TYPE_Q8_0, 1, 0);
        test_quantized_product(k, GGML_TYPE_Q4_0, 1, 1);
        test_quantized_product(k, GGML_TYPE_Q8_0, 1, 1);
        /* decode, streamed passes of 2/3/4 rows, 4+3 rows, and sgemm */
        for (int T = 1; T <= 4; T++) test_matmul_T(k, T);
        test_matmul_T(k, 7);
        test_matmul_T(k, STREAM_MAX_ROWS + 5);
        test_activations(k);
        test_softmax(k);
        test_read_bytes(k);
        test_attention_T(k, 4, 24, 3);
        test_attention_T(k, 1, 24, 3);
        test_attention_T(k, 1, 72, 6);
    }
}
