/* The smallest embedding of tinyllm: load a model, prefill a prompt, and
 * greedily decode a few tokens. Built against an installed copy by the tests:
 *   cc example.c $(pkg-config --cflags --libs tinyllm) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tinyllm.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: example MODEL.gguf PROMPT\n");
        return 2;
    }
    tinyllm_error err = {0};
    tinyllm_model *model = NULL;
    tinyllm_context *ctx = NULL;
    if (tinyllm_model_load(argv[1], NULL, &model, &err) || tinyllm_context_create(model, NULL, &ctx, &err)) {
        fprintf(stderr, "example: %s\n", err.message);
        tinyllm_model_free(model);
        return 1;
    }
    int tokens[256], n = 0;
    if (tinyllm_tokenize(model, argv[2], strlen(argv[2]), 1, tokens, 256, &n, &err) ||
        tinyllm_context_prefill(ctx, tokens, n, &err)) {
        fprintf(stderr, "example: %s\n", err.message);
        tinyllm_context_free(ctx);
        tinyllm_model_free(model);
        return 1;
    }
    tinyllm_sampler_params sp = tinyllm_sampler_default_params();
    sp.temperature = 0; /* greedy */
    tinyllm_sampler *sampler = NULL;
    tinyllm_model_info info;
    tinyllm_model_info_get(model, &info, NULL);
    tinyllm_sampler_create(&sp, info.n_vocab, &sampler, &err);
    tinyllm_detok detok;
    tinyllm_detok_init(&detok, 0);
    char text[1024];
    printf("%s", argv[2]);
    for (int i = 0; i < 10; i++) {
        int next = tinyllm_sampler_sample(sampler, tinyllm_context_logits(ctx), NULL, 0, NULL);
        int len = tinyllm_detok_push(model, &detok, next, text, sizeof text, NULL);
        if (len > 0) fwrite(text, 1, (size_t)len, stdout);
        if (tinyllm_context_decode(ctx, next, &err)) break;
    }
    printf("\n");
    tinyllm_sampler_free(sampler);
    tinyllm_context_free(ctx);
    tinyllm_model_free(model);
    return 0;
}
