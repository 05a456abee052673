/* The CLI's one copy of the arithmetic on logits and probabilities: greedy
 * choice, log-probabilities, top-k. (Random choices come from the library's
 * sampler.) */
#ifndef TINYLLM_CLI_PROBS_H
#define TINYLLM_CLI_PROBS_H

typedef struct {
    int id;
    float p;
} ranked;

/* The index of the largest of v (n values; the first on ties; NaN never
 * wins, so all-NaN gives 0). */
int argmax(const float *v, int n);

/* log softmax(logits)[token] over n logits, in double, the maximum
 * subtracted first. */
double log_prob(const float *logits, int n, int token);

/* The k largest of softmax(logits) (n values), highest first: returns how
 * many were written to out (min(k, n)). */
int top_k_probs(const float *logits, int n, int k, ranked *out);

/* The indices of the k largest of v (n values; probabilities already),
 * highest first, into out: returns how many. */
int top_k_values(const float *v, int n, int k, ranked *out);

#endif
