/* Minimal test harness for the C unit tests: each test prints one line,
 * PASS/FAIL/SKIP + name, which tests/run.sh counts. */
#ifndef TINYLLM_TEST_CHECK_H
#define TINYLLM_TEST_CHECK_H

#include <math.h>
#include <stdio.h>

typedef struct {
    int failed;
    char why[256];
} test_state;

#define CHECK(ts, cond, ...)                                                    \
    do {                                                                        \
        if (!(cond) && !(ts)->failed) {                                         \
            (ts)->failed = 1;                                                   \
            snprintf((ts)->why, sizeof (ts)->why, __VA_ARGS__);                 \
        }                                                                       \
    } while (0)

static inline void report_test(const char *name, const test_state *ts) {
    if (ts->failed)
        printf("FAIL %s: %s\n", name, ts->why);
    else
        printf("PASS %s\n", name);
}

/* max |a - b| over n values */
static inline double max_abs_diff(const float *a, const float *b, long n) {
    double m = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}

/* Float32 rounding bounds (tests/README.md, "Tolerances"). u is the unit
 * roundoff of float32. A sum of K terms computed in float32 in any order
 * (vector lanes, FMA or not, blocked, split over threads) is within
 * gamma(K) * sum |term_i| of the exact sum, gamma(K) = K u / (1 - K u)
 * (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., 3.1).
 * Elementwise functions get n_ops * u relative, n_ops counted per function. */
#define F32_U (1.0 / 16777216.0)
static inline double gamma_k(long K) { return K * F32_U / (1.0 - K * F32_U); }

/* The largest ratio |got - want| / bound over n values (<= 1 passes; NaN
 * counts as infinitely far). */
static inline double worst_ratio(const float *got, const double *want, const double *bound, long n) {
    double worst = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]), r = bound[i] > 0 ? d / bound[i] : (d > 0 ? INFINITY : 0);
        if (r != r || d != d) return INFINITY;
        if (r > worst) worst = r;
    }
    return worst;
}

#endif
