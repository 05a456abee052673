/* tinyllm: the command-line front end. Each command lives in cmd_*.c. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "args.h"
#include "common.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *about;
} command;

static const command COMMANDS[] = {
    {"generate", cmd_generate, "generate text from a prompt"},
    {"info", cmd_info, "show what a model file holds"},
    {"bench", cmd_bench, "measure prefill and generation speed"},
    {"perplexity", cmd_perplexity, "perplexity and bits per byte of a text file"},
    {"step", cmd_step, "step through the layers and look (interactive or scripted)"},
    {"attn", cmd_attn, "draw an attention heatmap as a PNG"},
    {"explore", cmd_explore, "write one HTML page to look inside: attention, logit lens, residual stream"},
    {"verify", cmd_verify, "compare every tap with a golden file from the reference"},
    {"quantize", cmd_quantize, "write a copy of a model with q8_0, q4_0, f16 or f32 matrices"},
};

static void usage(FILE *to) {
    fprintf(to, "usage: tinyllm COMMAND [options]   (tinyllm COMMAND --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(to, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].about);
}

/* Under an address-space limit (ulimit -v) OpenBLAS's own threads, which
 * each take a 128 MiB buffer when they start, may be retrying forever in
 * blas_memory_alloc; exit() would join them and never return. The output is
 * flushed and the process ends without them. */
static int finish(int rc) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        fflush(NULL);
        _exit(rc);
    }
    return rc;
}

int main(int argc, char **argv) {
    cleanup_on_signals();
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("tinyllm %s\n", TINYLLM_VERSION);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(argv[1], COMMANDS[i].name)) return finish(COMMANDS[i].run(argc - 2, argv + 2));
    say("tinyllm: unknown command '%s' (see 'tinyllm --help')\n", argv[1]); /* say escapes it */
    return finish(EXIT_USAGE);
}
