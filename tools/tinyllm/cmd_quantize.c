/* tinyllm quantize: a copy of a model with its weight matrices in another
 * format (the library's tinyllm_quantize), and the two files' sizes. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "args.h"
#include "common.h"
#include "quantize.h" /* the library's writing half: the CLI owns the output file */

int cmd_quantize(int argc, char **argv) {
    const command_spec cmd = {"quantize", "IN.gguf OUT.gguf FORMAT",
                              "Write OUT.gguf: IN's weight matrices in FORMAT: f32, f16, bf16, q8_0, q4_0, q4_1, "
                              "q5_0, q5_1, iq4_nl, q4_k, q5_k, q6_k (rows a block does not divide fall back as "
                              "llama.cpp's do), or llama.cpp's presets q4_k_m and q5_k_m (its per-tensor choices); "
                              "norms, biases and positions F32, every metadata key and the tokenizer copied. The "
                              "file loads in llama.cpp too.",
                              NULL, 0};
    const char *pos[3];
    int n_pos, rc = parse_args(&cmd, argc, argv, pos, 3, &n_pos);
    if (rc >= 0) return rc;
    if (n_pos != 3) return usage_error(&cmd, "expected IN.gguf OUT.gguf FORMAT (got %d of the 3)", n_pos);
    const char *format = pos[2];
    char names[QUANTIZE_FORMAT_NAMES_CAP];
    if (!quantize_format_known(format))
        return usage_error(&cmd, "format '%s': expected %s", format, quantize_format_names(names, sizeof names));
    /* the library's writer, opened here so a signal removes its temporary */
    out_file o;
    char why[300];
    if (out_open(&o, pos[1], pos[0], why, sizeof why)) return usage_error(&cmd, "%s: %s", pos[1], why);
    tinyllm_error err = {0};
    if (quantize_into(pos[0], &o, pos[1], format, &err)) {
        out_abort(&o);
        report("quantize", &err);
        return EXIT_MODEL;
    }
    if (out_commit(&o, why, sizeof why)) {
        say("tinyllm quantize: %s: %s\n", pos[1], why);
        return EXIT_MODEL;
    }
    struct stat in_st, out_st;
    if (stat(pos[0], &in_st) == 0 && stat(pos[1], &out_st) == 0)
        printf("%s: %.2f MiB -> %s: %.2f MiB (%s matrices)\n", pos[0], in_st.st_size / 1048576.0, pos[1],
               out_st.st_size / 1048576.0, format);
    return EXIT_OK;
}
