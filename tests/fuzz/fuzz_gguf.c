/* libFuzzer target: the whole model loader (GGUF parsing, tensor binding,
 * the tokenizer rebuilt from arrays or loaded from embedded bytes) on
 * arbitrary bytes. Any input must load or fail with an error; when it loads,
 * one token is run through it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy: the model may keep pointers into it */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    tinyllm_model *m = NULL;
    tinyllm_error err;
    tinyllm_model_params mp = tinyllm_model_default_params();
    if (model_load_buffer(buf, size, "fuzz.gguf", &mp, &m, &err) == TINYLLM_OK) {
        tinyllm_context_params cp = tinyllm_context_default_params();
        cp.n_ctx = 4;
        cp.n_threads = 1;
        tinyllm_context *ctx = NULL;
        if (m->info.n_ctx_train >= 1 && tinyllm_context_create(m, &cp, &ctx, &err) == TINYLLM_OK) {
            int ids[4];
            int n = 0;
            if (tinyllm_tokenize(m, "hi", 2, 1, ids, 4, &n, &err) == TINYLLM_OK && n > 0)
                tinyllm_context_prefill(ctx, ids, n, &err);
            tinyllm_context_free(ctx);
        }
        tinyllm_model_free(m);
    }
    free(buf);
    return 0;
}
