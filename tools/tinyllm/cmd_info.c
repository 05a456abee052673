/* tinyllm info: what a model file holds. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "common.h"

static const char *positions_name(tinyllm_pos_kind k) {
    return k == TINYLLM_POS_ROPE ? "rotary (RoPE)" : k == TINYLLM_POS_LEARNED ? "learned" : "sinusoidal (fixed)";
}

int cmd_info(int argc, char **argv) {
    int show_meta = 0;
    common_flags cf = {0};
    const unsigned common = CF_MODEL | CF_CHECK_TENSORS | CF_WEIGHTS; /* MODEL.gguf or -m MODEL.gguf */
    const opt_spec own[] = {
        {"--metadata", NULL, OPT_FLAG, &show_meta, "", "list every metadata key", NULL},
    };
    opt_spec opts[MAX_OPTS];
    int n_opts = with_common_flags(opts, common, &cf, own, (int)(sizeof own / sizeof own[0]));
    const command_spec cmd = {"info", "MODEL.gguf | -m MODEL.gguf [options]",
                              "Show a model's architecture, hyperparameters, tokenizer and tensors.", opts, n_opts};
    const char *pos[1];
    int n_pos, rc = parse_args(&cmd, argc, argv, pos, 1, &n_pos);
    if (rc >= 0) return rc;
    if (n_pos + (cf.model != NULL) != 1) return usage_error(&cmd, "give one model: MODEL.gguf or -m MODEL.gguf");
    const char *path = cf.model ? cf.model : pos[0];
    if ((rc = check_common_flags(&cmd, common & ~CF_MODEL, &cf)) >= 0) return rc;
    tinyllm_model_params mp = model_params_from(&cf);
    tinyllm_model *m = load_model_or_report("info", path, &mp);
    if (!m) return EXIT_MODEL;
    tinyllm_model_info h;
    tinyllm_model_info_get(m, &h, NULL);
    static const char *const FILE_TYPES[] = {"all F32", "mostly F16", "mostly Q4_0", "mostly Q4_1"};
    printf("file:          %s (%" PRIu64 " bytes)\n", path, h.file_size);
    printf("architecture:  %s\n", h.architecture);
    if (*h.name) printf("name:          %s\n", h.name);
    if (h.file_type >= 0)
        printf("file type:     %d (%s)\n", h.file_type,
               h.file_type < 4 ? FILE_TYPES[h.file_type] : h.file_type == 7 ? "mostly Q8_0" : "other");
    printf("parameters:    %" PRId64 " (%.2f M) in the file's tensors", h.n_params, h.n_params / 1e6);
    if (!h.tied_output) /* a classifier stored apart from the embedding counts on its own */
        printf(", output.weight included (%.2f M without it)",
               (h.n_params - (int64_t)h.n_vocab * h.n_embd) / 1e6);
    printf("\n");
    printf("in memory:     %.1f MiB of weights (%s)\n", h.weight_bytes / 1048576.0,
           cf.expand_f32 ? "matrices expanded to F32 by --expand-f32" : "matrices used as stored, in their format");
    const char *forced = getenv("TINYLLM_ISA");
    printf("kernels:       %s (%s), sgemm: OpenBLAS %s\n", h.kernels,
           forced && !strcmp(forced, h.kernels) ? "forced by TINYLLM_ISA"
                                                 : "the widest set this CPU runs; TINYLLM_ISA=scalar|avx2|avx512|avx512vnni|avx512bf16 forces one",
           blas_core());
    printf("context:       %d\n", h.n_ctx_train);
    printf("embedding:     %d\n", h.n_embd);
    printf("layers:        %d\n", h.n_layer);
    printf("heads:         %d (kv heads %d, head size %d)\n", h.n_head, h.n_head_kv, h.head_dim);
    printf("feed-forward:  %d (%s)\n", h.n_ff, h.activation);
    printf("norm:          %s, eps %g\n", h.norm, h.norm_eps);
    printf("positions:     %s", positions_name(h.positions));
    if (h.positions == TINYLLM_POS_ROPE) printf(", theta %g", h.rope_theta);
    printf("\nclassifier:    %s\n", h.tied_output ? "tied to token_embd" : "output.weight");
    printf("kv cache:      %.2f MiB at the full context of %d tokens (2 x %d layers x %d x %d kv heads x %d x 4 bytes)\n",
           tinyllm_model_kv_bytes(m, 0) / 1048576.0, h.n_ctx_train, h.n_layer, h.n_ctx_train, h.n_head_kv, h.head_dim);
    int bos = tinyllm_token_bos(m), eos = tinyllm_token_eos(m);
    printf("tokenizer:     %d pieces, %s; bos %d '%s', eos %d '%s'\n", h.n_vocab,
           tinyllm_tokenizer_source(m), bos, bos >= 0 ? tinyllm_token_piece(m, bos) : "", eos,
           eos >= 0 ? tinyllm_token_piece(m, eos) : "");
    if (show_meta) {
        printf("\nmetadata (%d keys):\n", tinyllm_model_n_meta(m));
        for (int i = 0; i < tinyllm_model_n_meta(m); i++) {
            const char *key;
            char value[256];
            char shown[96]; /* keys come from the file: printed as one escaped line */
            if (tinyllm_model_meta(m, i, &key, value, sizeof value, NULL) == TINYLLM_OK)
                printf("  %-44s %s\n", tinyllm_printable(key, strlen(key), shown, sizeof shown), value);
        }
    }
    printf("\ntensors (%d):\n  %-36s %-5s %-22s %s\n", tinyllm_model_n_tensors(m), "name", "type", "in use",
           "shape (GGUF order)");
    for (int i = 0; i < tinyllm_model_n_tensors(m); i++) {
        tinyllm_tensor_info t;
        if (tinyllm_model_tensor(m, i, &t, NULL)) continue;
        char shape[96];
        int n = 0;
        for (int d = 0; d < t.n_dims; d++) n += snprintf(shape + n, sizeof shape - (size_t)n, d ? ", %" PRId64 : "%" PRId64, t.dims[d]);
        char shown[96];
        printf("  %-36s %-5s %-22s [%s]\n", tinyllm_printable(t.name, strlen(t.name), shown, sizeof shown), t.type,
               t.in_use, shape);
    }
    tinyllm_model_free(m);
    return EXIT_OK;
}
