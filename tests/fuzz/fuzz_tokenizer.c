/* libFuzzer target: the tokenizer wrapper's inputs. The first byte picks a
 * mode: encode arbitrary bytes (valid or not as UTF-8) and decode the result
 * through both detokenizers, or feed arbitrary ids (in or out of range) to
 * the streaming and whole-sequence detokenizers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyllm.h"

static tinyllm_model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    const char *path = getenv("TINYLLM_FUZZ_MODEL");
    tinyllm_error err;
    if (tinyllm_model_load(path ? path : "tests/models/austen-tiny-sin.gguf", NULL, &model, &err)) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err.message);
        abort();
    }
    return 0;
}

static void decode_all(const int *ids, int n) {
    tinyllm_detok d;
    tinyllm_detok_init(&d, n & 1);
    char piece[1024];
    for (int i = 0; i < n; i++) tinyllm_detok_push(model, &d, ids[i], piece, sizeof piece, NULL);
    tinyllm_detok_flush(&d, piece, sizeof piece);
    size_t cap = 16 * (size_t)n + 64, len;
    char *out = malloc(cap);
    if (out) tinyllm_detokenize(model, ids, n, out, cap, &len, NULL);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (data[0] & 1) { /* arbitrary ids */
        int n = (int)((size - 1) / 4);
        int *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
        if (!ids) return 0;
        memcpy(ids, data + 1, (size_t)n * 4);
        for (int i = 0; i < n && (data[0] & 2); i++) ids[i] = (int)((unsigned)ids[i] % 600u); /* mostly in range */
        decode_all(ids, n);
        free(ids);
        return 0;
    }
    const char *text = (const char *)data + 1;
    int n = 0;
    if (tinyllm_tokenize(model, text, size - 1, 1, NULL, 0, &n, NULL) != TINYLLM_OK) return 0;
    int *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    if (!ids) return 0;
    if (tinyllm_tokenize(model, text, size - 1, data[0] & 2, ids, n, &n, NULL) == TINYLLM_OK) decode_all(ids, n);
    free(ids);
    return 0;
}
