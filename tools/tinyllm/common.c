#include "common.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *blas_core(void) {
    const char *core = openblas_get_corename();
    return core ? core : "unknown";
}

void report(const tinyllm_error *err) {
    fprintf(stderr, "tinyllm: %s\n", err->message);
}

tinyllm_model *load_model_or_report(const char *path, const tinyllm_model_params *params) {
    tinyllm_model *m = NULL;
    tinyllm_error err = {0};
    if (tinyllm_model_load(path, params, &m, &err)) {
        report(&err);
        return NULL;
    }
    return m;
}

int *tokenize_prompt(const tinyllm_model *m, const char *prompt, int *n_tokens) {
    tinyllm_error err = {0};
    size_t len = strlen(prompt);
    int n = 0;
    if (tinyllm_tokenize(m, prompt, len, 1, NULL, 0, &n, &err)) {
        fprintf(stderr, "tinyllm: prompt: %s\n", err.message);
        return NULL;
    }
    int *toks = malloc((size_t)(n ? n : 1) * sizeof *toks);
    if (!toks || tinyllm_tokenize(m, prompt, len, 1, toks, n, &n, &err)) {
        fprintf(stderr, "tinyllm: prompt: %s\n", toks ? err.message : "out of memory");
        free(toks);
        return NULL;
    }
    *n_tokens = n;
    return toks;
}
