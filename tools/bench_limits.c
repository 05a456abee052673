/* Measures this machine's limits for scripts/bench.sh, as JSON on stdout:
 *  - sgemm GFLOP/s through OpenBLAS at large square sizes and at the
 *    benchmark models' layer shapes, for 1..N threads;
 *  - memory read bandwidth (GB/s) over a buffer far larger than the caches,
 *    for 1..N threads.
 * Usage: bench_limits [max_threads] */
#include <cblas.h>
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double sgemm_gflops(int M, int N, int K, int threads) {
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * N * K), *c = malloc(sizeof(float) * M * N);
    for (long i = 0; i < (long)M * K; i++) a[i] = (float)(i % 7) * 0.1f;
    for (long i = 0; i < (long)N * K; i++) b[i] = (float)(i % 5) * 0.1f;
    openblas_set_num_threads(threads);
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        /* the engine's layout: activations (M, K) times weights (N, K)^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        double g = 2.0 * M * N * K / (now() - t0) / 1e9;
        if (g > best) best = g;
    }
    free(a), free(b), free(c);
    return best;
}

typedef struct {
    const float *p;
    size_t n;
    double sum;
} read_job;

static void *read_part(void *arg) {
    read_job *j = arg;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 32 <= j->n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(j->p + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(j->p + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(j->p + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(j->p + i + 24));
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    j->sum = t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
    return NULL;
}

static double read_bandwidth(const float *buf, size_t n, int threads) {
    double best = 0;
    for (int r = 0; r < 5; r++) {
        pthread_t tid[64];
        read_job jobs[64];
        double t0 = now();
        for (int t = 0; t < threads; t++) {
            jobs[t] = (read_job){buf + n / threads * t, n / threads, 0};
            pthread_create(&tid[t], NULL, read_part, &jobs[t]);
        }
        for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
        double gbs = n * sizeof(float) / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    return best;
}

int main(int argc, char **argv) {
    int max_threads = argc > 1 ? atoi(argv[1]) : 2;
    if (max_threads < 1 || max_threads > 64) max_threads = 2;
    size_t n = (size_t)1 << 28; /* 1 GiB of floats */
    float *buf = malloc(n * sizeof(float));
    if (!buf) return 1;
    for (size_t i = 0; i < n; i++) buf[i] = 1.0f;
    static const int SHAPES[][3] = {{2048, 2048, 2048}, {512, 288, 288}, {512, 768, 288}, {512, 512, 512},
                                    {512, 1376, 512},   {512, 768, 768}, {512, 2048, 768}, {512, 768, 2048},
                                    {512, 3072, 768}};
    printf("{\"threads\": [");
    for (int t = 1; t <= max_threads; t++) {
        printf("%s\n {\"threads\": %d, \"read_gb_s\": %.2f, \"sgemm\": [", t > 1 ? "," : "", t,
               read_bandwidth(buf, n, t));
        for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
            printf("%s{\"M\": %d, \"N\": %d, \"K\": %d, \"gflops\": %.2f}", s ? ", " : "", SHAPES[s][0],
                   SHAPES[s][1], SHAPES[s][2], sgemm_gflops(SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], t));
        printf("]}");
    }
    printf("]}\n");
    free(buf);
    return 0;
}
