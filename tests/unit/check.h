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

#endif
