#include "probs.h"

#include <math.h>

int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best] || (isnan(v[best]) && !isnan(v[i]))) best = i;
    return best;
}

double log_prob(const float *logits, int n, int token) {
    double max = logits[argmax(logits, n)], sum = 0;
    for (int i = 0; i < n; i++) sum += exp(logits[i] - max);
    return logits[token] - max - log(sum);
}

/* insert (id, p) into the sorted top list out[0..*n) of at most k */
static void keep_top(ranked *out, int *n, int k, int id, float p) {
    if (*n == k && !(p > out[*n - 1].p)) return;
    int j = *n < k ? (*n)++ : *n - 1;
    while (j > 0 && out[j - 1].p < p) {
        out[j] = out[j - 1];
        j--;
    }
    out[j] = (ranked){id, p};
}

int top_k_values(const float *v, int n, int k, ranked *out) {
    int m = 0;
    for (int i = 0; i < n && k > 0; i++) keep_top(out, &m, k, i, v[i]);
    return m;
}

int top_k_probs(const float *logits, int n, int k, ranked *out) {
    double max = logits[argmax(logits, n)], sum = 0;
    for (int i = 0; i < n; i++) sum += exp(logits[i] - max);
    int m = 0;
    for (int i = 0; i < n && k > 0; i++) keep_top(out, &m, k, i, (float)(exp(logits[i] - max) / sum));
    return m;
}
