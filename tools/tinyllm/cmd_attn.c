/* tinyllm attn: the attention picture of a prompt without a session. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "stepper.h"

/* tinyllm attn: the attention picture without a session. */
int cmd_attn(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *png = NULL;
    int layer = -1, head = -1, all = 0, last = 0;
    common_flags cf = {0};
    const opt_spec own[] = {
        {"--model", "-m", OPT_STRING, &model_path, "FILE", "GGUF model (required)", NULL},
        {"--prompt", "-p", OPT_STRING, &prompt, "TEXT", "prompt (required)", NULL},
        {"--layer", "-l", OPT_INT, &layer, "L", "layer (required)", NULL},
        {"--head", NULL, OPT_INT, &head, "H", "head (or --all)", NULL},
        {"--all", NULL, OPT_FLAG, &all, "", "a grid of every head of the layer", NULL},
        {"--png", NULL, OPT_STRING, &png, "FILE", "output picture (required)", NULL},
        {"--last", NULL, OPT_INT, &last, "N", "only the last N positions (long prompts); 0 = all", NULL},
    };
    opt_spec opts[MAX_OPTS];
    command_spec cmd = {"attn", "-m MODEL.gguf -p PROMPT --layer L (--head H | --all) --png FILE.png",
                        "Draw an attention heatmap with the tokens as labels.", opts, 0};
    int rc = parse_command(&cmd, opts, CF_EXPERIMENT, &cf, own, N_OPTS(own), argc, argv);
    if (rc >= 0) return rc;
    if (!model_path || !prompt || !*prompt || !png) return usage_error(&cmd, "-m, -p and --png are required");
    if (!*png) return usage_error(&cmd, "--png: empty file name (expected a path for the picture)");
    size_t n = strlen(png);
    if (n < 4 || strcasecmp(png + n - 4, ".png"))
        return usage_error(&cmd, "--png %s: pictures are written as PNG (expected a name ending in .png)", png);
    if (last < 0) return usage_error(&cmd, "--last %d: expected a number of positions >= 1 (0 = all)", last);
    if (layer < 0 || (head < 0 && !all) || (head >= 0 && all))
        return usage_error(&cmd, "give --layer L and one of --head H or --all");
    stepper st;
    rc = build_stepper(&st, "attn", model_path, prompt, 0, 1, &cf.exp);
    if (!rc && layer >= st.info.n_layer)
        rc = usage_error(&cmd, "--layer %d: the model has layers 0..%d", layer, st.info.n_layer - 1);
    if (!rc && head >= st.info.n_head)
        rc = usage_error(&cmd, "--head %d: the model has heads 0..%d", head, st.info.n_head - 1);
    if (!rc) {
        st.cli = "attn";
        stepper_attn_png(&st, layer, all ? -1 : head, last, png);
        if (st.errors) rc = EXIT_RUNTIME;
    }
    free_stepper(&st);
    return rc;
}
