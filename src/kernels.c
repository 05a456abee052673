#include "kernels.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>

void matmul_forward(float *out, const float *in, const float *w, const float *bias, int T, int C, int OC) {
    if (bias) {
        for (int t = 0; t < T; t++)
            for (int o = 0; o < OC; o++) out[(size_t)t * OC + o] = bias[o];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, OC, C, 1.0f, in, C, w, C, bias ? 1.0f : 0.0f, out, OC);
}

void rmsnorm_forward(float *out, const float *in, const float *w, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *x = in + (size_t)t * C;
        float *y = out + (size_t)t * C;
        double ss = 0.0;
        for (int i = 0; i < C; i++) ss += (double)x[i] * x[i];
        float scale = (float)(1.0 / sqrt(ss / C + eps));
        for (int i = 0; i < C; i++) y[i] = x[i] * scale * w[i];
    }
}

void layernorm_forward(float *out, const float *in, const float *w, const float *b, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *x = in + (size_t)t * C;
        float *y = out + (size_t)t * C;
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < C; i++) mean += x[i];
        mean /= C;
        for (int i = 0; i < C; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= C;
        float rstd = (float)(1.0 / sqrt(var + eps));
        for (int i = 0; i < C; i++) y[i] = (float)(x[i] - mean) * rstd * w[i] + b[i];
    }
}

void gelu_forward(float *x, long N) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (long i = 0; i < N; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

void swiglu_forward(float *gate, const float *up, long N) {
    for (long i = 0; i < N; i++) {
        float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void rope_forward(float *x, int T, int row_stride, int n_heads, int head_dim, int pos0, float theta) {
    for (int t = 0; t < T; t++) {
        float *row = x + (size_t)t * row_stride;
        int pos = pos0 + t;
        for (int i = 0; i < head_dim; i += 2) {
            double freq = pow((double)theta, -(double)i / head_dim);
            double angle = pos * freq;
            float c = (float)cos(angle), s = (float)sin(angle);
            for (int h = 0; h < n_heads; h++) {
                float *p = row + h * head_dim + i;
                float a = p[0], b = p[1];
                p[0] = a * c - b * s;
                p[1] = a * s + b * c;
            }
        }
    }
}

void softmax_forward(float *x, int N) {
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

void residual_forward(float *x, const float *y, long N) {
    for (long i = 0; i < N; i++) x[i] += y[i];
}
