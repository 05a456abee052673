/* The sampler's internals that tests reach (the API is in tinyllm.h). */
#ifndef TINYLLM_SAMPLER_H
#define TINYLLM_SAMPLER_H

/* One token and its probability (p >= 0, never NaN). */
typedef struct {
    float p;
    int id; /* >= 0 */
} candidate;

/* Orders c (n) by descending p, ties by ascending id: a total order, so the
 * result is the one permutation any correct sort gives (qsort's included).
 * Long lists take a radix sort in linear time (a sort of the whole
 * vocabulary runs on every token when no filter cuts the list); tmp holds n
 * candidates. */
void sort_by_prob(candidate *c, candidate *tmp, int n);

#endif
