/* Prints the public structs' layouts as the C compiler lays them out (JSON:
 * struct -> {"size": n, "fields": {name: offset}}), so the ctypes bindings
 * in python/tinyllm/__init__.py can be checked against the header: a field added,
 * moved or resized in tinyllm.h without the bindings fails a test. */
#include <stddef.h>
#include <stdio.h>

#include "tinyllm.h"

#define FIELD(T, f) printf("%s\"%s\": %zu", first ? "" : ", ", #f, offsetof(T, f)), first = 0
#define BEGIN(T) printf("%s\"%s\": {\"size\": %zu, \"fields\": {", n++ ? ", " : "", #T, sizeof(T)), first = 1
#define END() printf("}}")

int main(void) {
    int n = 0, first;
    printf("{");
    BEGIN(tinyllm_error);
    FIELD(tinyllm_error, code), FIELD(tinyllm_error, message);
    END();
    BEGIN(tinyllm_model_params);
    FIELD(tinyllm_model_params, check_tensors), FIELD(tinyllm_model_params, no_mmap);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* the layout still holds the deprecated field */
    FIELD(tinyllm_model_params, skip_tokenizer), FIELD(tinyllm_model_params, keep_f16);
#pragma GCC diagnostic pop
    FIELD(tinyllm_model_params, expand_f32);
    END();
    BEGIN(tinyllm_context_params);
    FIELD(tinyllm_context_params, n_ctx), FIELD(tinyllm_context_params, n_threads);
    FIELD(tinyllm_context_params, logits_all), FIELD(tinyllm_context_params, blas_threads);
    END();
    BEGIN(tinyllm_model_info);
    FIELD(tinyllm_model_info, architecture), FIELD(tinyllm_model_info, name), FIELD(tinyllm_model_info, n_vocab);
    FIELD(tinyllm_model_info, n_ctx_train), FIELD(tinyllm_model_info, n_embd), FIELD(tinyllm_model_info, n_layer);
    FIELD(tinyllm_model_info, n_head), FIELD(tinyllm_model_info, n_head_kv), FIELD(tinyllm_model_info, n_ff);
    FIELD(tinyllm_model_info, head_dim), FIELD(tinyllm_model_info, norm_eps), FIELD(tinyllm_model_info, rope_theta);
    FIELD(tinyllm_model_info, positions), FIELD(tinyllm_model_info, tied_output), FIELD(tinyllm_model_info, n_params);
    FIELD(tinyllm_model_info, file_size), FIELD(tinyllm_model_info, file_type), FIELD(tinyllm_model_info, weight_bytes);
    FIELD(tinyllm_model_info, kernels), FIELD(tinyllm_model_info, norm), FIELD(tinyllm_model_info, activation);
    END();
    BEGIN(tinyllm_detok);
    FIELD(tinyllm_detok, pending), FIELD(tinyllm_detok, n_pending), FIELD(tinyllm_detok, at_start);
    END();
    BEGIN(tinyllm_tap);
    FIELD(tinyllm_tap, name), FIELD(tinyllm_tap, kind), FIELD(tinyllm_tap, layer), FIELD(tinyllm_tap, pos0);
    FIELD(tinyllm_tap, n_dims), FIELD(tinyllm_tap, shape), FIELD(tinyllm_tap, data), FIELD(tinyllm_tap, writable);
    END();
    BEGIN(tinyllm_tensor_info);
    FIELD(tinyllm_tensor_info, name), FIELD(tinyllm_tensor_info, type), FIELD(tinyllm_tensor_info, n_dims);
    FIELD(tinyllm_tensor_info, dims), FIELD(tinyllm_tensor_info, n_bytes), FIELD(tinyllm_tensor_info, in_use);
    END();
    BEGIN(tinyllm_sampler_params);
    FIELD(tinyllm_sampler_params, temperature), FIELD(tinyllm_sampler_params, top_k);
    FIELD(tinyllm_sampler_params, top_p), FIELD(tinyllm_sampler_params, min_p);
    FIELD(tinyllm_sampler_params, repeat_penalty), FIELD(tinyllm_sampler_params, repeat_last_n);
    FIELD(tinyllm_sampler_params, seed);
    END();
    printf("}\n");
    return 0;
}
