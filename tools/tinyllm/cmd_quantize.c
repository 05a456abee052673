/* tinyllm quantize: a copy of a model with its weight matrices in another
 * format (the library's tinyllm_quantize), then a summary read back from
 * the new file. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "common.h"

int cmd_quantize(int argc, char **argv) {
    const command_spec cmd = {"quantize", "IN.gguf OUT.gguf q8_0|q4_0|f16|f32",
                              "Write OUT.gguf: IN's weight matrices in the given format (GGUF blocks of 32 for "
                              "q8_0/q4_0), norms, biases and positions F32, every metadata key and the tokenizer "
                              "copied. The file loads in llama.cpp too.",
                              NULL, 0};
    const char *pos[3];
    int n_pos, rc = parse_args(&cmd, argc, argv, pos, 3, &n_pos);
    if (rc >= 0) return rc;
    if (n_pos != 3) return usage_error(&cmd, "expected IN.gguf OUT.gguf FORMAT (got %d of the 3)", n_pos);
    const char *format = pos[2];
    if (strcmp(format, "q8_0") && strcmp(format, "q4_0") && strcmp(format, "f16") && strcmp(format, "f32"))
        return usage_error(&cmd, "format '%s': expected q8_0, q4_0, f16 or f32", format);
    if (!strcmp(pos[0], pos[1])) return usage_error(&cmd, "OUT.gguf is IN.gguf: write to another file");
    tinyllm_error err = {0};
    if (tinyllm_quantize(pos[0], pos[1], format, &err)) {
        report("quantize", &err);
        return EXIT_MODEL;
    }
    tinyllm_model_params mp = tinyllm_model_default_params();
    mp.skip_tokenizer = 1;
    tinyllm_model *in = load_model_or_report("quantize", pos[0], &mp), *out = in ? load_model_or_report("quantize", pos[1], &mp) : NULL;
    if (!out) {
        tinyllm_model_free(in);
        return EXIT_MODEL;
    }
    tinyllm_model_info a, b;
    tinyllm_model_info_get(in, &a, NULL);
    tinyllm_model_info_get(out, &b, NULL);
    printf("%s: %.2f MiB -> %s: %.2f MiB (%s matrices; weights in memory %.2f -> %.2f MiB)\n", pos[0],
           a.file_size / 1048576.0, pos[1], b.file_size / 1048576.0, format, a.weight_bytes / 1048576.0,
           b.weight_bytes / 1048576.0);
    tinyllm_model_free(in);
    tinyllm_model_free(out);
    return EXIT_OK;
}
