/* Table-driven option parsing for the CLI's commands. Every bad flag or
 * value is a one-line message naming the option, then exit code 2. */
#ifndef TINYLLM_CLI_ARGS_H
#define TINYLLM_CLI_ARGS_H

#include <stdint.h>
#include <stdio.h>

#include "tinyllm.h"

enum { EXIT_OK = 0, EXIT_MODEL = 1, EXIT_USAGE = 2, EXIT_RUNTIME = 3, EXIT_VERIFY = 4 };

typedef enum { OPT_STRING, OPT_INT, OPT_FLOAT, OPT_U64, OPT_FLAG, OPT_INT_LIST, OPT_STRING_LIST } opt_kind;

typedef struct {
    const char *name;   /* "--temp" */
    const char *alias;  /* "-t" or NULL */
    opt_kind kind;
    void *dest;         /* const char **, int *, float *, uint64_t *, int * (flag), int_list * */
    const char *metavar;
    const char *help;
    int *seen;          /* optional: set to 1 when given */
} opt_spec;

#define MAX_LIST 16
typedef struct {
    int n;
    int v[MAX_LIST];
} int_list;
typedef struct { /* a flag given several times: --stop A --stop B */
    int n;
    const char *v[MAX_LIST];
} string_list;

typedef struct {
    const char *command; /* "generate" */
    const char *usage;   /* "-m MODEL.gguf -p PROMPT [options]" */
    const char *about;   /* one line */
    const opt_spec *opts;
    int n_opts;
} command_spec;

/* The flags several commands share, each defined once (args.c): a command
 * asks for the ones it takes and reads them from one struct. */
typedef struct {
    const char *model; /* -m, --model */
    int n_ctx;         /* -c, --ctx (0: the model's) */
    int n_threads;     /* -t, --threads (0: all cores) */
    int keep_f16, expand_f32, no_mmap, check_tensors;
    const char *experiment;  /* --experiment NAME[,NAME] as given */
    tinyllm_experiments exp; /* ... parsed by check_common_flags */
} common_flags;
enum { CF_MODEL = 1 << 0, CF_CTX = 1 << 1, CF_THREADS = 1 << 2, CF_WEIGHTS = 1 << 3, CF_NO_MMAP = 1 << 4,
       CF_CHECK_TENSORS = 1 << 5, CF_EXPERIMENT = 1 << 6 };
#define MAX_OPTS 32

/* opts (room for MAX_OPTS rows) = the rows of the common flags in `which`
 * (writing into c), then the command's own n_own rows. Returns the count. */
int with_common_flags(opt_spec *opts, unsigned which, common_flags *c, const opt_spec *own, int n_own);
/* The checks every command makes of them: -m given (with CF_MODEL), --ctx
 * >= 0, 1 to 256 threads, --experiment's names (into c->exp). -1 to go on,
 * else the exit code (message printed). */
int check_common_flags(const command_spec *cmd, unsigned which, common_flags *c);

/* A warning on stderr when n_threads exceeds the machine's cores (allowed,
 * but slower); check_common_flags gives it for -t. */
void warn_threads(const command_spec *cmd, int n_threads);

/* The start every command with the common flags makes: opts (room for
 * MAX_OPTS) = the common flags in `which` then the command's own n_own rows,
 * set into cmd; argv parsed (no positional arguments) and the common flags
 * checked. -1 to go on, else the exit code (message printed). */
int parse_command(command_spec *cmd, opt_spec *opts, unsigned which, common_flags *cf, const opt_spec *own, int n_own,
                  int argc, char **argv);
#define N_OPTS(rows) ((int)(sizeof(rows) / sizeof((rows)[0])))

/* Parses argv (after the command word). Returns -1 to go on, or an exit code
 * (0 after --help, 2 after an error, both already printed). Positional
 * arguments are collected into positional[] (at most max_pos). */
int parse_args(const command_spec *cmd, int argc, char **argv, const char **positional, int max_pos, int *n_pos);
void print_usage(const command_spec *cmd, FILE *to);
/* One-line usage error: "tinyllm CMD: MESSAGE" + hint; returns EXIT_USAGE. */
int usage_error(const command_spec *cmd, const char *fmt, ...);

#endif
