/* libFuzzer target: the sampler on arbitrary logits (any bit pattern: NaN,
 * infinities, subnormals), settings and histories. It must return a token id
 * in range, or -1; never read outside its arrays (ASan), never hang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tinyllm.h"

static float take_float(const uint8_t **p, size_t *n) {
    float f = 0;
    if (*n >= 4) {
        memcpy(&f, *p, 4);
        *p += 4, *n -= 4;
    }
    return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 24) return 0;
    const uint8_t *p = data;
    size_t n = size;
    tinyllm_sampler_params sp = tinyllm_sampler_default_params();
    sp.temperature = take_float(&p, &n);
    sp.top_p = take_float(&p, &n);
    sp.min_p = take_float(&p, &n);
    sp.repeat_penalty = take_float(&p, &n);
    sp.top_k = (int)(p[0] % 64) - 2;
    sp.repeat_last_n = p[1] % 16;
    int n_vocab = 1 + (p[2] | p[3] << 8) % 2048, n_hist = p[4] % 8;
    sp.seed = p[5];
    p += 6, n -= 6;
    int hist[8];
    for (int i = 0; i < n_hist; i++) hist[i] = n ? (int)(int8_t)p[i % n] * 37 : 0;
    float *logits = malloc((size_t)n_vocab * sizeof *logits); /* exactly n_vocab: ASan sees any overrun */
    if (!logits) return 0;
    for (int i = 0; i < n_vocab; i++) {
        size_t at = n ? (size_t)i * 4 % (n - n % 4 ? n - n % 4 : 1) : 0;
        logits[i] = 0;
        if (n >= 4) memcpy(&logits[i], p + at, 4);
    }
    tinyllm_sampler *s = NULL;
    if (tinyllm_sampler_create(&sp, n_vocab, &s, NULL) == TINYLLM_OK) {
        for (int draw = 0; draw < 3; draw++) {
            int id = tinyllm_sampler_sample(s, logits, n_hist ? hist : NULL, n_hist, NULL);
            if (id < -1 || id >= n_vocab) abort();
        }
        tinyllm_sampler_free(s);
    }
    free(logits);
    return 0;
}
