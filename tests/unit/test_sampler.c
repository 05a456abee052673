/* Sampler properties that must hold whatever the random draws. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sampler.h"
#include "tinyllm.h"

static int sample_with(tinyllm_sampler_params p, const float *logits, int n, const int *hist, int n_hist) {
    tinyllm_sampler *s = NULL;
    if (tinyllm_sampler_create(&p, n, &s, NULL)) return -2;
    int id = tinyllm_sampler_sample(s, logits, hist, n_hist, NULL);
    tinyllm_sampler_free(s);
    return id;
}

/* Brute force: sort every token by probability (ties by id), keep the
 * prefix the three filters allow; returns its length, ids in kept[]. */
static int naive_kept(const float *logits, int n, float temp, int top_k, float top_p, float min_p, int *kept) {
    double *pr = malloc(sizeof(double) * n), mx = -1e30, sum = 0;
    int *ord = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < n; i++) sum += (pr[i] = exp((logits[i] - mx) / temp));
    for (int i = 0; i < n; i++) pr[i] /= sum, ord[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort: p desc, id asc */
        for (int j = i; j > 0 && (pr[ord[j]] > pr[ord[j - 1]] || (pr[ord[j]] == pr[ord[j - 1]] && ord[j] < ord[j - 1])); j--) {
            int t = ord[j];
            ord[j] = ord[j - 1], ord[j - 1] = t;
        }
    int keep = top_k > 0 && top_k < n ? top_k : n;
    /* the sampler's p are float32 (exp, a sum of n, a division): within
     * gamma(n + 8) relative of these, so a threshold is met up to that */
    double slack = 1 - gamma_k(n + 8), cum = 0;
    for (int i = 0; i < keep && top_p < 1; i++)
        if ((cum += pr[ord[i]]) >= top_p * slack) { keep = i + 1; break; }
    int k = 1;
    while (k < keep && pr[ord[k]] >= min_p * pr[ord[0]] * slack) k++;
    keep = min_p > 0 ? k : keep;
    for (int i = 0; i < keep; i++) kept[i] = ord[i];
    free(pr), free(ord);
    return keep;
}

static void test_filters_against_brute_force(void) {
    enum { N = 300 };
    test_state ts = {0};
    float logits[N];
    int kept[N];
    for (int i = 0; i < N; i++) logits[i] = (float)((i * 7919) % 37) / 6.0f; /* many ties */
    const struct { int k; float p, mp; } cases[] = {{0, 1, 0}, {5, 1, 0}, {0, 0.5f, 0}, {0, 1, 0.3f}, {20, 0.7f, 0.1f}, {3, 0.2f, 0.5f}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int n_kept = naive_kept(logits, N, 0.7f, cases[c].k, cases[c].p, cases[c].mp, kept);
        tinyllm_sampler_params p = tinyllm_sampler_default_params();
        p.temperature = 0.7f, p.top_k = cases[c].k, p.top_p = cases[c].p, p.min_p = cases[c].mp, p.seed = c;
        tinyllm_sampler *s = NULL;
        tinyllm_sampler_create(&p, N, &s, NULL);
        int seen[N] = {0};
        for (int draw = 0; draw < 2000; draw++) {
            int x = tinyllm_sampler_sample(s, logits, NULL, 0, NULL), ok = 0;
            for (int i = 0; i < n_kept; i++) ok |= kept[i] == x;
            CHECK(&ts, ok, "case %zu: drew %d outside the %d allowed tokens", c, x, n_kept);
            if (x >= 0) seen[x] = 1;
        }
        int n_seen = 0;
        for (int i = 0; i < N; i++) n_seen += seen[i];
        CHECK(&ts, n_kept <= 3 ? n_seen == n_kept : n_seen > 1, "case %zu: %d distinct draws of %d kept", c, n_seen, n_kept);
        tinyllm_sampler_free(s);
    }
    report_test("sampler.filters_match_brute_force", &ts);
}

static int desc_p_asc_id(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The sort the draws walk: the radix sort (long lists) gives exactly
 * qsort's permutation under (p descending, id ascending), with many ties,
 * zeros, ids above 65535 (every key byte moves) and shuffled input, around
 * the length where it takes over from qsort. */
static void test_sort_by_prob(void) {
    test_state ts = {0};
    const int lengths[] = {1, 7, 511, 512, 513, 5000, 70000};
    srand(11);
    for (size_t L = 0; L < sizeof lengths / sizeof lengths[0]; L++) {
        int n = lengths[L];
        candidate *c = malloc(sizeof *c * n), *want = malloc(sizeof *want * n), *tmp = malloc(sizeof *tmp * n);
        for (int i = 0; i < n; i++) {
            int r = rand();
            c[i].p = r % 5 == 0 ? 0.0f : (float)(r % 97) / 97.0f * (r % 3 == 0 ? 1e-30f : 1.0f);
            c[i].id = (int)(((unsigned)i * 2654435761u) % 100003u); /* shuffled, some above 65535 */
        }
        memcpy(want, c, sizeof *c * n);
        qsort(want, (size_t)n, sizeof *want, desc_p_asc_id);
        sort_by_prob(c, tmp, n);
        int same = 1;
        for (int i = 0; i < n; i++) same &= c[i].id == want[i].id && c[i].p == want[i].p;
        CHECK(&ts, same, "n=%d: the order differs from qsort's", n);
        free(c), free(want), free(tmp);
    }
    report_test("sampler.sort_equals_qsort", &ts);
}

/* Draws `draws` tokens; returns a bit mask of the ids seen (ids < 64), or
 * bit 63 when an id >= 63 or an error came back. */
static uint64_t draw_set(tinyllm_sampler_params p, const float *logits, int n, const int *hist, int n_hist, int draws) {
    tinyllm_sampler *s = NULL;
    if (tinyllm_sampler_create(&p, n, &s, NULL)) return 1ull << 63;
    uint64_t seen = 0;
    for (int i = 0; i < draws; i++) {
        int x = tinyllm_sampler_sample(s, logits, hist, n_hist, NULL);
        seen |= x >= 0 && x < 63 ? 1ull << x : 1ull << 63;
    }
    tinyllm_sampler_free(s);
    return seen;
}

/* Each filter's exact boundary: a candidate exactly at the threshold, one
 * just above and one just below it, ties broken by id, and the token exactly
 * repeat_last_n back. Probabilities here are exact in float (ties: e^0 = 1),
 * or 2% away from the threshold, far beyond rounding. */
static void test_filter_boundaries(void) {
    test_state ts = {0};
    tinyllm_sampler_params p = tinyllm_sampler_default_params();
    p.temperature = 1.0f, p.top_k = 0, p.top_p = 1.0f, p.min_p = 0.0f, p.seed = 3;
    enum { N = 8 };
    /* ids 0..2 tied at the top; id 3 at 0.51 p_max, id 4 at 0.49 p_max, the rest far below */
    float lg[N] = {2.0f, 2.0f, 2.0f, 2.0f + logf(0.51f), 2.0f + logf(0.49f), -20.0f, -20.0f, -20.0f};

    p.min_p = 1.0f; /* p >= 1 * p_max: exactly the three tied tokens */
    uint64_t seen = draw_set(p, lg, N, NULL, 0, 600);
    CHECK(&ts, seen == 0x7, "min-p 1 with three tied at the top: drew set %#llx (expected 0x7)", (unsigned long long)seen);
    p.min_p = 0.5f; /* 0.51 p_max is in, 0.49 p_max is out */
    seen = draw_set(p, lg, N, NULL, 0, 2000);
    CHECK(&ts, seen == 0xf, "min-p 0.5: drew set %#llx (expected 0xf: ids 0-3)", (unsigned long long)seen);
    p.min_p = 0.0f;

    /* top-k 2 of three tied: the two lowest ids */
    p.top_k = 2;
    seen = draw_set(p, lg, N, NULL, 0, 600);
    CHECK(&ts, seen == 0x3, "top-k 2 with a three-way tie: drew set %#llx (expected 0x3)", (unsigned long long)seen);
    p.top_k = 0;

    /* top-p: four tokens at exactly 1/4 each; 0.5 is reached at the second */
    float quarter[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    p.top_p = 0.5f;
    seen = draw_set(p, quarter, 4, NULL, 0, 600);
    CHECK(&ts, seen == 0x3, "top-p 0.5 over four quarters: drew set %#llx (expected 0x3)", (unsigned long long)seen);
    p.top_p = 1.0f;

    /* repetition window: the last repeat_last_n tokens, the oldest included */
    float rl[3] = {5.0f, 4.9f, 0.0f}; /* id 0 wins unless penalised (5 / 2 < 4.9) */
    int hist[10] = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
    p.temperature = 0, p.repeat_penalty = 2.0f, p.repeat_last_n = 4;
    hist[6] = 0; /* exactly repeat_last_n back */
    CHECK(&ts, sample_with(p, rl, 3, hist, 10) == 1, "the token exactly repeat_last_n back was not penalised");
    hist[6] = 2, hist[5] = 0; /* one further back */
    CHECK(&ts, sample_with(p, rl, 3, hist, 10) == 0, "a token repeat_last_n + 1 back was penalised");
    hist[5] = 2, hist[9] = 0; /* the newest */
    CHECK(&ts, sample_with(p, rl, 3, hist, 10) == 1, "the newest token was not penalised");
    p.repeat_last_n = 0;
    CHECK(&ts, sample_with(p, rl, 3, hist, 10) == 0, "repeat_last_n 0 still penalised");
    p.repeat_last_n = 64; /* longer than the history: all of it */
    hist[9] = 2, hist[0] = 0;
    CHECK(&ts, sample_with(p, rl, 3, hist, 10) == 1, "repeat_last_n past the history missed its first token");
    /* negative logits are multiplied by the penalty (moved down, not up) */
    float neg[2] = {-1.0f, -1.5f};
    int h1[1] = {0};
    CHECK(&ts, sample_with(p, neg, 2, h1, 1) == 1, "a negative logit was not pushed down by the penalty");
    report_test("sampler.filter_boundaries", &ts);
}

static uint64_t prop_rng = 7;
static uint32_t prop_next(void) {
    prop_rng = prop_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(prop_rng >> 33);
}
static float prop_pick(const float *v, int n) { return v[prop_next() % (uint32_t)n]; }

/* The sampler is total: thousands of hostile logit vectors (NaN, +-inf,
 * huge, subnormal, all equal, all -inf) with random valid settings and
 * histories (ids out of range included). Every call returns a token whose
 * logit is not NaN, or -1 exactly when no logit can be chosen; under
 * `make test-asan` any read outside the arrays fails the run. */
static void test_total_on_hostile_logits(void) {
    test_state ts = {0};
    enum { MAXN = 40 };
    float lg[MAXN];
    int hist[8];
    const float temps[] = {0.0f, 1e-39f, 0.3f, 1.0f, 100.0f}, top_ps[] = {1e-6f, 0.5f, 0.95f, 1.0f};
    const float min_ps[] = {0.0f, 1e-30f, 0.5f, 1.0f}, penalties[] = {1.0f, 2e-38f, 0.5f, 1.3f, 1e30f};
    const float specials[] = {NAN, INFINITY, -INFINITY, 3e38f, -3e38f, 1e-40f, 0.0f, 88.0f, -1000.0f};
    for (int trial = 0; trial < 4000 && !ts.failed; trial++) {
        int n = 1 + (int)(prop_next() % MAXN), pattern = (int)(prop_next() % 6);
        for (int i = 0; i < n; i++) {
            float normal = (float)((int)(prop_next() % 2001) - 1000) / 100.0f;
            switch (pattern) {
            case 0: lg[i] = normal; break;                                                 /* ordinary */
            case 1: lg[i] = prop_next() % 4 ? normal : prop_pick(specials, 9); break;      /* some special */
            case 2: lg[i] = prop_pick(specials, 9); break;                                 /* all special */
            case 3: lg[i] = NAN; break;                                                    /* all NaN */
            case 4: lg[i] = -INFINITY; break;                                              /* all -inf */
            default: lg[i] = 1.5f; break;                                                  /* all equal */
            }
        }
        tinyllm_sampler_params p = tinyllm_sampler_default_params();
        p.temperature = prop_pick(temps, 5), p.top_p = prop_pick(top_ps, 4), p.min_p = prop_pick(min_ps, 4);
        p.repeat_penalty = prop_pick(penalties, 5), p.top_k = (int)(prop_next() % 6) * (n / 3 + 1);
        p.repeat_last_n = (int)(prop_next() % 10), p.seed = trial;
        int n_hist = (int)(prop_next() % 9);
        for (int i = 0; i < n_hist; i++) hist[i] = (int)(prop_next() % (MAXN + 10)) - 5;
        tinyllm_sampler *s = NULL;
        if (tinyllm_sampler_create(&p, n, &s, NULL)) {
            CHECK(&ts, 0, "trial %d: valid settings refused", trial);
            break;
        }
        int usable = 0, penalised = p.repeat_penalty != 1.0f && n_hist > 0 && p.repeat_last_n > 0;
        for (int i = 0; i < n; i++) usable |= !isnan(lg[i]) && lg[i] > -INFINITY;
        for (int draw = 0; draw < 3; draw++) {
            int x = tinyllm_sampler_sample(s, lg, n_hist ? hist : NULL, n_hist, NULL);
            CHECK(&ts, x >= -1 && x < n, "trial %d: returned %d for %d tokens", trial, x, n);
            if (x >= 0) CHECK(&ts, !isnan(lg[x]) && lg[x] > -INFINITY, "trial %d: chose token %d, logit %g", trial, x, lg[x]);
            /* without a penalty (which may push a huge logit to -inf) a usable logit is always found */
            if (!penalised) CHECK(&ts, (x >= 0) == usable, "trial %d: returned %d (usable logits: %d)", trial, x, usable);
        }
        tinyllm_sampler_free(s);
    }
    /* +inf logits share all the probability */
    float inf2[5] = {1.0f, INFINITY, 2.0f, INFINITY, NAN};
    tinyllm_sampler_params p = tinyllm_sampler_default_params();
    p.temperature = 1.0f, p.top_k = 0, p.top_p = 1.0f, p.min_p = 0.0f, p.seed = 9;
    uint64_t seen = draw_set(p, inf2, 5, NULL, 0, 300);
    CHECK(&ts, seen == 0xa, "two +inf logits: drew set %#llx (expected 0xa)", (unsigned long long)seen);
    report_test("sampler.total_on_hostile_logits", &ts);
}

void run_sampler_tests(void) {
    test_sort_by_prob();
    test_filters_against_brute_force();
    test_total_on_hostile_logits();
    test_filter_boundaries();
    enum { N = 50 };
    float logits[N];
    for (int i = 0; i < N; i++) logits[i] = (float)((i * 37) % N) / 10.0f; /* argmax at i where (i*37)%50 == 49 */
    int argmax = 0;
    for (int i = 1; i < N; i++)
        if (logits[i] > logits[argmax]) argmax = i;

    test_state ts = {0};
    tinyllm_sampler_params p = tinyllm_sampler_default_params();
    p.temperature = 0;
    CHECK(&ts, sample_with(p, logits, N, NULL, 0) == argmax, "greedy is not argmax");
    p = tinyllm_sampler_default_params();
    p.top_k = 1;
    for (uint64_t seed = 0; seed < 20; seed++) {
        p.seed = seed;
        CHECK(&ts, sample_with(p, logits, N, NULL, 0) == argmax, "top-k 1 is not argmax (seed %llu)",
              (unsigned long long)seed);
    }
    report_test("sampler.greedy_and_top_k1", &ts);

    ts = (test_state){0};
    p = tinyllm_sampler_default_params();
    p.top_k = 0;
    p.min_p = 0;
    p.top_p = 1;
    p.temperature = 1.0f;
    p.seed = 1234;
    tinyllm_sampler *a = NULL, *b = NULL;
    tinyllm_sampler_create(&p, N, &a, NULL);
    tinyllm_sampler_create(&p, N, &b, NULL);
    int differs = 0, distinct[N] = {0}, n_distinct = 0;
    for (int i = 0; i < 200; i++) {
        int x = tinyllm_sampler_sample(a, logits, NULL, 0, NULL), y = tinyllm_sampler_sample(b, logits, NULL, 0, NULL);
        differs |= x != y;
        if (x >= 0 && !distinct[x]++) n_distinct++;
    }
    CHECK(&ts, !differs, "same seed gave different draws");
    CHECK(&ts, n_distinct > 5, "temperature 1 drew only %d distinct tokens in 200", n_distinct);
    tinyllm_sampler_free(a);
    tinyllm_sampler_free(b);
    report_test("sampler.seed_reproducible", &ts);

    /* top-k 3 never leaves the three most likely tokens */
    ts = (test_state){0};
    p.top_k = 3;
    tinyllm_sampler_create(&p, N, &a, NULL);
    for (int i = 0; i < 300; i++) {
        int x = tinyllm_sampler_sample(a, logits, NULL, 0, NULL), rank = 0;
        for (int j = 0; j < N; j++) rank += logits[j] > logits[x];
        CHECK(&ts, rank < 3, "top-k 3 drew a token of rank %d", rank);
    }
    tinyllm_sampler_free(a);
    report_test("sampler.top_k", &ts);

    /* min-p 0.5: only tokens with p >= 0.5 p_max, i.e. logit >= max - ln 2 */
    ts = (test_state){0};
    p.top_k = 0;
    p.min_p = 0.5f;
    tinyllm_sampler_create(&p, N, &a, NULL);
    for (int i = 0; i < 300; i++) {
        int x = tinyllm_sampler_sample(a, logits, NULL, 0, NULL);
        CHECK(&ts, logits[x] >= logits[argmax] - 0.6932f, "min-p drew logit %g (max %g)", logits[x], logits[argmax]);
    }
    tinyllm_sampler_free(a);
    report_test("sampler.min_p", &ts);

    /* top-p: a tiny p keeps only the best token */
    ts = (test_state){0};
    p.min_p = 0;
    p.top_p = 0.01f;
    for (uint64_t seed = 0; seed < 20; seed++) {
        p.seed = seed;
        CHECK(&ts, sample_with(p, logits, N, NULL, 0) == argmax, "top-p 0.01 is not argmax");
    }
    report_test("sampler.top_p", &ts);

    /* repetition penalty can move greedy off a repeated token */
    ts = (test_state){0};
    p = tinyllm_sampler_default_params();
    p.temperature = 0;
    p.repeat_penalty = 100.0f;
    int hist[1] = {argmax};
    int x = sample_with(p, logits, N, hist, 1);
    CHECK(&ts, x != argmax && x >= 0, "penalised argmax was chosen again");
    report_test("sampler.repeat_penalty", &ts);

    /* every bad parameter is refused with its name */
    ts = (test_state){0};
    struct {
        const char *flag;
        tinyllm_sampler_params p;
    } bad[5];
    for (int i = 0; i < 5; i++) bad[i].p = tinyllm_sampler_default_params();
    bad[0].flag = "--temp", bad[0].p.temperature = -1;
    bad[1].flag = "--top-p", bad[1].p.top_p = 0;
    bad[2].flag = "--top-p", bad[2].p.top_p = 1.5f;
    bad[3].flag = "--top-k", bad[3].p.top_k = -2;
    bad[4].flag = "--min-p", bad[4].p.min_p = -0.1f;
    for (int i = 0; i < 5; i++) {
        tinyllm_error err = {0};
        tinyllm_sampler *s = NULL;
        tinyllm_status st = tinyllm_sampler_create(&bad[i].p, N, &s, &err);
        CHECK(&ts, st == TINYLLM_ERR_ARG && !s && strstr(err.message, bad[i].flag), "case %d: status %d '%.150s'", i, st,
              err.message);
    }
    report_test("sampler.bad_params", &ts);
}
