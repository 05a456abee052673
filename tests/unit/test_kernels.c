/* Each kernel against a plain, obviously-correct loop. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "check.h"
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

static void test_matmul_T(int T) {
    test_state ts = {0};
    int C = 45, OC = 19; /* 45: every tail (16-, 8- and 1-wide) of the streamed kernels runs */
    float *in = rand_buf((long)T * C, 1), *w = rand_buf((long)OC * C, 1), *b = rand_buf(OC, 1);
    float *out = malloc(sizeof(float) * T * OC), *ref = malloc(sizeof(float) * T * OC);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        /* in two column ranges, as two threads would split it */
        matmul_forward(out, in, C, w, with_bias ? b : NULL, T, C, OC, 0, 6);
        matmul_forward(out, in, C, w, with_bias ? b : NULL, T, C, OC, 6, OC);
        for (int t = 0; t < T; t++)
            for (int o = 0; o < OC; o++) {
                double s = with_bias ? b[o] : 0;
                for (int c = 0; c < C; c++) s += (double)in[t * C + c] * w[o * C + c];
                ref[t * OC + o] = (float)s;
            }
        double d = max_abs_diff(out, ref, (long)T * OC);
        CHECK(&ts, d < 1e-4, "bias=%d max diff %g", with_bias, d);
    }
    char name[32];
    snprintf(name, sizeof name, T == 1 ? "kernels.matvec" : "kernels.matmul_T%d", T);
    report_test(name, &ts);
    free(in), free(w), free(b), free(out), free(ref);
}

/* F16 conversion: known values, the vector path equal to the scalar one for
 * every bit pattern, and products with F16 weights equal to the same
 * products with the weights expanded to F32. */
static void test_f16(void) {
    test_state ts = {0};
    const struct { uint16_t h; float f; } known[] = {
        {0x3c00, 1.0f}, {0xc000, -2.0f}, {0x7bff, 65504.0f}, {0x0001, 5.9604645e-8f}, {0x0000, 0.0f}, {0x3555, 0.33325195f}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        CHECK(&ts, f16_to_f32(known[i].h) == known[i].f, "f16 %04x -> %g", known[i].h, f16_to_f32(known[i].h));
    CHECK(&ts, isinf(f16_to_f32(0x7c00)) && isnan(f16_to_f32(0x7e00)), "inf/nan");
    uint16_t *all = malloc(65536 * sizeof *all);
    float *conv = malloc(65536 * sizeof *conv);
    for (int i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    f16_to_f32_row(conv, all, 65536);
    int bad = 0;
    for (int i = 0; i < 65536; i++) {
        float want = f16_to_f32((uint16_t)i);
        bad += isnan(want) ? !isnan(conv[i]) : conv[i] != want;
    }
    CHECK(&ts, bad == 0, "%d bit patterns convert differently", bad);

    int T = 9, C = 45, OC = 37;
    float *in = rand_buf((long)T * C, 1), *wf = malloc(sizeof(float) * OC * C), *b = rand_buf(OC, 1);
    uint16_t *wh = malloc(sizeof(uint16_t) * OC * C);
    for (int i = 0; i < OC * C; i++) wh[i] = all[(int)(randn() * 3000 + 0x3000) & 0x7fff]; /* finite values */
    f16_to_f32_row(wf, wh, (long)OC * C);
    float *out = malloc(sizeof(float) * T * OC), *ref = malloc(sizeof(float) * T * OC), *tmp = malloc(sizeof(float) * 8 * C);
    for (int t1 = 1; t1 <= T; t1 += 4) { /* decode (one row), streamed rows and sgemm on converted blocks */
        matmul_forward(ref, in, C, wf, b, t1, C, OC, 0, OC);
        /* two column ranges, converted 8 rows at a time */
        matmul_f16_forward(out, in, C, wh, b, t1, C, OC, 0, 13, tmp, 8);
        matmul_f16_forward(out, in, C, wh, b, t1, C, OC, 13, OC, tmp, 8);
        double d = max_abs_diff(out, ref, (long)t1 * OC);
        CHECK(&ts, d < 1e-5, "T=%d: F16 product differs from F32 by %g", t1, d);
    }
    report_test("kernels.f16", &ts);
    free(all), free(conv), free(in), free(wf), free(b), free(wh), free(out), free(ref), free(tmp);
}

static void test_norms(void) {
    test_state ts = {0};
    int T = 5, C = 24;
    float *in = rand_buf((long)T * C, 3), *w = rand_buf(C, 1), *b = rand_buf(C, 1);
    float *out = malloc(sizeof(float) * T * C), *ref = malloc(sizeof(float) * T * C);
    rmsnorm_forward(out, in, w, T, C, 1e-5f);
    for (int t = 0; t < T; t++) {
        double ss = 0;
        for (int c = 0; c < C; c++) ss += in[t * C + c] * in[t * C + c];
        for (int c = 0; c < C; c++) ref[t * C + c] = (float)(in[t * C + c] / sqrt(ss / C + 1e-5) * w[c]);
    }
    CHECK(&ts, max_abs_diff(out, ref, T * C) < 1e-5, "rmsnorm diff %g", max_abs_diff(out, ref, T * C));
    report_test("kernels.rmsnorm", &ts);
    ts = (test_state){0};
    layernorm_forward(out, in, w, b, T, C, 1e-5f);
    for (int t = 0; t < T; t++) {
        double mu = 0, var = 0;
        for (int c = 0; c < C; c++) mu += in[t * C + c] / C;
        for (int c = 0; c < C; c++) var += (in[t * C + c] - mu) * (in[t * C + c] - mu) / C;
        for (int c = 0; c < C; c++) ref[t * C + c] = (float)((in[t * C + c] - mu) / sqrt(var + 1e-5) * w[c] + b[c]);
    }
    CHECK(&ts, max_abs_diff(out, ref, T * C) < 1e-5, "layernorm diff %g", max_abs_diff(out, ref, T * C));
    report_test("kernels.layernorm", &ts);
    free(in), free(w), free(b), free(out), free(ref);
}

static void test_activations(void) {
    test_state ts = {0};
    int N = 101;
    float *x = rand_buf(N, 3), *up = rand_buf(N, 1), *y = malloc(sizeof(float) * N), *ref = malloc(sizeof(float) * N);
    memcpy(y, x, sizeof(float) * N);
    gelu_forward(y, N);
    for (int i = 0; i < N; i++) {
        double v = x[i];
        ref[i] = (float)(0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
    }
    CHECK(&ts, max_abs_diff(y, ref, N) < 1e-5, "gelu diff %g", max_abs_diff(y, ref, N));
    report_test("kernels.gelu", &ts);
    ts = (test_state){0};
    memcpy(y, x, sizeof(float) * N);
    swiglu_forward(y, up, N);
    for (int i = 0; i < N; i++) ref[i] = (float)(x[i] / (1 + exp(-(double)x[i])) * up[i]);
    CHECK(&ts, max_abs_diff(y, ref, N) < 1e-5, "swiglu diff %g", max_abs_diff(y, ref, N));
    report_test("kernels.swiglu", &ts);
    free(x), free(up), free(y), free(ref);
}

static void test_rope(void) {
    test_state ts = {0};
    int T = 6, H = 3, D = 8, pos0 = 4;
    float *x = rand_buf((long)T * H * D, 1), *y = malloc(sizeof(float) * T * H * D);
    memcpy(y, x, sizeof(float) * T * H * D);
    float cs[16 * 4], sn[16 * 4]; /* (pos0 + T) x D/2 */
    rope_table(cs, sn, pos0 + T, D, 10000.0f);
    rope_forward(y, T, H * D, H, D, cs + pos0 * (D / 2), sn + pos0 * (D / 2));
    double maxd = 0;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < D; i += 2) {
                double ang = (pos0 + t) / pow(10000.0, (double)i / D);
                const float *p = x + t * H * D + h * D + i;
                double a = p[0] * cos(ang) - p[1] * sin(ang), b = p[0] * sin(ang) + p[1] * cos(ang);
                const float *q = y + t * H * D + h * D + i;
                maxd = fmax(maxd, fmax(fabs(a - q[0]), fabs(b - q[1])));
            }
    CHECK(&ts, maxd < 1e-5, "rope diff %g", maxd);
    /* rotation keeps each pair's length */
    report_test("kernels.rope", &ts);
    free(x), free(y);
}

static void test_softmax(void) {
    test_state ts = {0};
    float x[5] = {1000.0f, 1001.0f, 999.0f, -1000.0f, 1000.5f}; /* large: needs the max subtracted */
    float ref[5];
    double sum = 0;
    for (int i = 0; i < 5; i++) sum += exp((double)x[i] - 1001.0);
    for (int i = 0; i < 5; i++) ref[i] = (float)(exp((double)x[i] - 1001.0) / sum);
    softmax_forward(x, 5);
    double s = 0;
    for (int i = 0; i < 5; i++) s += x[i];
    CHECK(&ts, max_abs_diff(x, ref, 5) < 1e-6, "softmax diff %g", max_abs_diff(x, ref, 5));
    CHECK(&ts, fabs(s - 1) < 1e-6, "row sums to %g", s);
    report_test("kernels.softmax", &ts);
}

/* attention_forward against a loop, with GQA and a non-zero pos0 (the
 * decode case: new tokens attend to cached ones). */
static void test_attention_T(int T) {
    test_state ts = {0};
    int H = 4, Hkv = 2, D = 8, pos0 = 3, L = pos0 + T, dim = H * D, kvd = Hkv * D, n_ctx = 16;
    float *q = rand_buf((long)T * dim, 1), *k = rand_buf((long)n_ctx * kvd, 1), *v = rand_buf((long)n_ctx * kvd, 1);
    float *out = malloc(sizeof(float) * T * dim), *ref = malloc(sizeof(float) * T * dim);
    float *scores = malloc(sizeof(float) * H * T * L), *probs = malloc(sizeof(float) * H * T * L);
    attention_forward(out, scores, probs, (size_t)T * L, q, k, v, T, pos0, H, Hkv, D, 0, 1);
    attention_forward(out, scores, probs, (size_t)T * L, q, k, v, T, pos0, H, Hkv, D, 1, H); /* split like threads */
    double max_row_err = 0, max_upper = 0;
    for (int h = 0; h < H; h++) {
        int g = h / (H / Hkv);
        for (int t = 0; t < T; t++) {
            double s[16], m = -1e30, z = 0, rowsum = 0;
            for (int j = 0; j <= pos0 + t; j++) {
                double d = 0;
                for (int i = 0; i < D; i++) d += (double)q[t * dim + h * D + i] * k[j * kvd + g * D + i];
                s[j] = d / sqrt(D);
                if (s[j] > m) m = s[j];
            }
            for (int j = 0; j <= pos0 + t; j++) z += exp(s[j] - m);
            for (int i = 0; i < D; i++) {
                double acc = 0;
                for (int j = 0; j <= pos0 + t; j++) acc += exp(s[j] - m) / z * v[j * kvd + g * D + i];
                ref[t * dim + h * D + i] = (float)acc;
            }
            const float *prow = probs + ((size_t)h * T + t) * L;
            for (int j = 0; j < L; j++) {
                rowsum += prow[j];
                if (j > pos0 + t) max_upper = fmax(max_upper, fabs(prow[j]));
            }
            max_row_err = fmax(max_row_err, fabs(rowsum - 1));
        }
    }
    CHECK(&ts, max_abs_diff(out, ref, (long)T * dim) < 1e-5, "output diff %g", max_abs_diff(out, ref, (long)T * dim));
    CHECK(&ts, max_row_err < 1e-5, "probability rows sum off by %g", max_row_err);
    CHECK(&ts, max_upper == 0, "probability %g above the diagonal", max_upper);
    report_test(T == 1 ? "kernels.attention_decode" : "kernels.attention", &ts);
    free(q), free(k), free(v), free(out), free(ref), free(scores), free(probs);
}

void run_kernel_tests(void) {
    test_f16();
    /* decode, streamed passes of 2/3/4 rows, 4+3 rows, and sgemm */
    for (int T = 1; T <= 4; T++) test_matmul_T(T);
    test_matmul_T(7);
    test_matmul_T(STREAM_MAX_ROWS + 5);
    test_norms();
    test_activations();
    test_rope();
    test_softmax();
    test_attention_T(4);
    test_attention_T(1);
}
