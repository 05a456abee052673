/* Sampling: repetition penalty, then greedy, or temperature with top-k,
 * top-p and min-p filters. Seeded PRNG state lives in the sampler, so a seed
 * reproduces a run bit for bit. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"

#include "error.h"
#include "tinyllm.h"

struct tinyllm_sampler {
    tinyllm_sampler_params params;
    int n_vocab;
    uint64_t rng;          // xorshift64* state
    float *work;           // (n_vocab) penalised, scaled logits
    candidate *cands;      // (n_vocab)
    candidate *sort_tmp;   // (n_vocab) the radix sort's other buffer
};

tinyllm_sampler_params tinyllm_sampler_default_params(void) {
    tinyllm_sampler_params p = {0.8f, 40, 0.95f, 0.05f, 1.0f, 64, 0};
    return p;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* uniform in [0, 1) from the top 24 bits */
static float next_uniform(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return (float)((*s * 0x2545f4914f6cdd1dull) >> 40) / 16777216.0f;
}

tinyllm_status tinyllm_sampler_params_check(const tinyllm_sampler_params *params, tinyllm_error *err) {
    if (!params) return set_error(err, TINYLLM_ERR_ARG, "sampler: params is NULL");
    tinyllm_sampler_params p = *params;
    if (!(p.temperature >= 0.0f) || !isfinite(p.temperature))
        return set_error(err, TINYLLM_ERR_ARG, "--temp %g: expected a finite number >= 0 (0 = greedy)", p.temperature);
    if (p.top_k < 0) return set_error(err, TINYLLM_ERR_ARG, "--top-k %d: expected >= 0 (0 = off)", p.top_k);
    if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
        return set_error(err, TINYLLM_ERR_ARG, "--top-p %.9g: expected a value in (0, 1] (1 = off)", p.top_p);
    if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
        return set_error(err, TINYLLM_ERR_ARG, "--min-p %.9g: expected a value in [0, 1] (0 = off)", p.min_p);
    if (!(p.repeat_penalty > 0.0f) || !isfinite(p.repeat_penalty))
        return set_error(err, TINYLLM_ERR_ARG, "--repeat-penalty %g: expected a finite number > 0 (1 = off)",
                         p.repeat_penalty);
    if (p.repeat_last_n < 0)
        return set_error(err, TINYLLM_ERR_ARG, "--repeat-last-n %d: expected >= 0", p.repeat_last_n);
    return TINYLLM_OK;
}

tinyllm_status tinyllm_sampler_create(const tinyllm_sampler_params *params, int n_vocab, tinyllm_sampler **out,
                                      tinyllm_error *err) {
    if (!out) return set_error(err, TINYLLM_ERR_ARG, "sampler: out is NULL");
    *out = NULL;
    tinyllm_sampler_params p = params ? *params : tinyllm_sampler_default_params();
    if (n_vocab <= 0) return set_error(err, TINYLLM_ERR_ARG, "sampler: n_vocab %d (expected > 0)", n_vocab);
    tinyllm_status st = tinyllm_sampler_params_check(&p, err);
    if (st) return st;
    tinyllm_sampler *s = calloc(1, sizeof *s);
    if (!s) return set_error(err, TINYLLM_ERR_NOMEM, "sampler: out of memory");
    s->work = malloc((size_t)n_vocab * sizeof *s->work);
    s->cands = malloc((size_t)n_vocab * sizeof *s->cands);
    s->sort_tmp = malloc((size_t)n_vocab * sizeof *s->sort_tmp);
    if (!s->work || !s->cands || !s->sort_tmp) {
        tinyllm_sampler_free(s);
        return set_error(err, TINYLLM_ERR_NOMEM, "sampler: out of memory");
    }
    s->params = p;
    s->n_vocab = n_vocab;
    s->rng = splitmix64(p.seed);
    if (!s->rng) s->rng = 1;
    *out = s;
    return TINYLLM_OK;
}

void tinyllm_sampler_free(tinyllm_sampler *s) {
    if (!s) return;
    free(s->work);
    free(s->cands);
    free(s->sort_tmp);
    free(s);
}

/* descending probability, ties by id: a total order, so runs reproduce */
static int by_prob_desc(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static int before(const candidate *x, const candidate *y) { return by_prob_desc(x, y) < 0; }

/* Below this many candidates qsort is as fast. */
#define RADIX_SORT_MIN 512

/* Byte `pass` (0..7) of the key (~bits(p) << 32 | id), whose ascending
 * order is by_prob_desc's: a float p >= 0 orders like its bits. */
static unsigned key_byte(const candidate *c, int pass) {
    uint32_t bits;
    memcpy(&bits, &c->p, sizeof bits);
    uint32_t half = pass < 4 ? (uint32_t)c->id : ~bits;
    return half >> (8 * (pass % 4)) & 0xff;
}

void sort_by_prob(candidate *c, candidate *tmp, int n) {
    if (n < RADIX_SORT_MIN) {
        qsort(c, (size_t)n, sizeof *c, by_prob_desc);
        return;
    }
    /* least significant byte first, each pass stable */
    candidate *from = c, *to = tmp;
    for (int pass = 0; pass < 8; pass++) {
        int start[257] = {0};
        for (int i = 0; i < n; i++) start[key_byte(&from[i], pass) + 1]++;
        if (start[key_byte(&from[0], pass) + 1] == n) continue; /* one byte value: nothing moves */
        for (int b = 0; b < 256; b++) start[b + 1] += start[b];
        for (int i = 0; i < n; i++) to[start[key_byte(&from[i], pass)]++] = from[i];
        candidate *t = from;
        from = to, to = t;
    }
    if (from != c) memcpy(c, from, (size_t)n * sizeof *c);
}

/* Reorders c[0..n) so that its k first are the k largest (in by_prob_desc's
 * total order), in linear expected time; the rest of the order is undefined. */
static void select_top(candidate *c, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        candidate pivot = c[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (before(&c[i], &pivot)) i++;
            while (before(&pivot, &c[j])) j--;
            if (i <= j) {
                candidate t = c[i];
                c[i++] = c[j];
                c[j--] = t;
            }
        }
        if (k - 1 <= j)
            hi = j;
        else if (k - 1 >= i)
            lo = i;
        else
            return;
    }
}

int tinyllm_sampler_sample(tinyllm_sampler *s, const float *logits, const int *history, int n_history,
                           tinyllm_error *err) {
    if (!s || !logits || n_history < 0 || (n_history && !history)) {
        set_error(err, TINYLLM_ERR_ARG, "sampler_sample: NULL sampler or logits, or a history of %d tokens without "
                                        "an array", n_history);
        return -1;
    }
    const tinyllm_sampler_params *p = &s->params;
    int n = s->n_vocab;
    float *w = s->work;
    memcpy(w, logits, (size_t)n * sizeof *w);

    /* NaN is never chosen: it counts as -inf */
    for (int i = 0; i < n; i++)
        if (isnan(w[i])) w[i] = -INFINITY;

    if (p->repeat_penalty != 1.0f && history) {
        int from = n_history > p->repeat_last_n ? n_history - p->repeat_last_n : 0;
        for (int i = from; i < n_history; i++) {
            int id = history[i];
            if (id < 0 || id >= n) continue;
            /* penalise each distinct token once */
            int seen = 0;
            for (int j = from; j < i && !seen; j++) seen = history[j] == id;
            if (seen) continue;
            w[id] = w[id] > 0 ? w[id] / p->repeat_penalty : w[id] * p->repeat_penalty;
        }
    }

    int best = 0;
    for (int i = 1; i < n; i++)
        if (w[i] > w[best]) best = i;
    float max = w[best];
    if (max == -INFINITY) { /* no token has a usable logit */
        set_error(err, TINYLLM_ERR_NUMERIC, "sampler_sample: every logit is NaN or -inf (nothing can be chosen)");
        return -1;
    }
    if (p->temperature == 0.0f) return best;

    /* e^((w - max) / T), each in [0, 1] and 1 at the maximum, so sum >= 1.
     * +inf logits (a logit can also overflow to +inf under a penalty) are
     * the limit of softmax: they share all the probability equally. */
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        float e = max == INFINITY ? (float)(w[i] == INFINITY) : expf((w[i] - max) / p->temperature);
        s->cands[i] = (candidate){e, i};
        sum += e;
    }
    /* Every filter keeps a prefix of the tokens sorted by probability, so
     * min-p and top-k can cut the list in linear time first; only the few
     * survivors are sorted (a full sort of 50K tokens would dominate). */
    float p_max = 0.0f;
    for (int i = 0; i < n; i++) {
        s->cands[i].p = (float)(s->cands[i].p / sum);
        if (s->cands[i].p > p_max) p_max = s->cands[i].p;
    }
    /* every filter below keeps at least the most likely token (p_max >=
     * min_p * p_max, top_k >= 1, the first token reaches any top_p or is
     * followed), so keep >= 1 and total > 0 */
    int keep = n;
    if (p->min_p > 0.0f) {
        float floor_p = p->min_p * p_max;
        keep = 0;
        for (int i = 0; i < n; i++)
            if (s->cands[i].p >= floor_p) s->cands[keep++] = s->cands[i];
    }
    if (p->top_k > 0 && p->top_k < keep) {
        select_top(s->cands, keep, p->top_k);
        keep = p->top_k;
    }
    sort_by_prob(s->cands, s->sort_tmp, keep);
    if (p->top_p < 1.0f) {
        double cum = 0.0;
        for (int i = 0; i < keep; i++) {
            cum += s->cands[i].p;
            if (cum >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
    }
    double total = 0.0;
    for (int i = 0; i < keep; i++) total += s->cands[i].p;
    double r = next_uniform(&s->rng) * total, acc = 0.0;
    for (int i = 0; i < keep; i++) {
        acc += s->cands[i].p;
        if (r < acc) return s->cands[i].id;
    }
    return s->cands[keep - 1].id;
}
