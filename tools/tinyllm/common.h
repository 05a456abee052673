/* Helpers shared by the CLI's commands. */
#ifndef TINYLLM_CLI_COMMON_H
#define TINYLLM_CLI_COMMON_H

#include "tinyllm.h"

double now_seconds(void);
/* The BLAS kernel OpenBLAS chose for this CPU (prefill's sgemm), e.g. "Haswell". */
const char *blas_core(void);
/* The model parameters the shared flags ask for (args.h). */
#include "args.h"
tinyllm_model_params model_params_from(const common_flags *c);
/* Sets --experiment's experiments on a context and, when there are any,
 * says so on `note` ("experiment: no-mask (...)"): a run under one must say
 * so in its output. EXIT_OK, or EXIT_USAGE after a message. */
int apply_experiments(const char *cmd, tinyllm_context *ctx, const tinyllm_experiments *e, FILE *note);

/* Loads a model; on failure prints "tinyllm CMD: <message>" and returns NULL
 * (NULL params: defaults). */
tinyllm_model *load_model_or_report(const char *cmd, const char *path, const tinyllm_model_params *params);
/* Reads a whole regular file of at most max_bytes into a NUL-terminated
 * malloc'd buffer (*len bytes before the NUL). Never blocks: a FIFO, device,
 * socket or directory is refused before any read (checked with stat, then
 * again with fstat on a non-blocking descriptor). NULL on failure, with the
 * reason (without the path) in why: "is a FIFO (expected a regular file)". */
char *read_regular_file(const char *path, size_t max_bytes, size_t *len, char *why, size_t why_cap);

/* Output files, written safely (src/outfile.h: a temporary beside the
 * target renamed over it once complete; FIFOs, devices, directories and
 * sockets refused and left untouched; symlinks written through; `input`, a
 * file the target must not be, or NULL). Every file the CLI writes goes
 * through these; the temporary is also removed when SIGINT, SIGTERM or
 * SIGHUP ends the process (cleanup_on_signals, installed by main). */
#include <stdio.h>
#include "outfile.h"
/* 0, or -1 with the reason (without the path) in why. */
int out_open(out_file *o, const char *path, const char *input, char *why, size_t why_cap);
/* Flushes, syncs and renames into place; 0, or -1 (temporary removed). */
int out_commit(out_file *o, char *why, size_t why_cap);
/* Abandons the write: the temporary is removed, the target untouched. */
void out_abort(out_file *o);
void cleanup_on_signals(void);

/* A one-line progress indicator for long work, on stderr when it is a
 * terminal (and not turned off): progress() rewrites the line, progress_end()
 * clears it. on = progress_wanted(no_progress_flag). */
int progress_wanted(int no_progress);
void progress(int on, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void progress_end(int on);

/* fprintf(stderr, ...) for the CLI's messages: control characters that
 * reach them from argv or files (a path with a newline or ESC) are escaped,
 * so a message stays one line (a leading and a trailing newline are kept). */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "tinyllm CMD: <message>" for a failed call (cmd: the command's name). */
void report(const char *cmd, const tinyllm_error *err);
/* Tokenizes a prompt (with BOS); returns a malloc'd array or NULL after
 * reporting "tinyllm CMD: -p: <why>". */
int *tokenize_prompt(const char *cmd, const tinyllm_model *m, const char *prompt, int *n_tokens);

int cmd_generate(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_step(int argc, char **argv);
int cmd_attn(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_explore(int argc, char **argv);

#endif
