/* Helpers shared by the CLI's commands. */
#ifndef TINYLLM_CLI_COMMON_H
#define TINYLLM_CLI_COMMON_H

#include "tinyllm.h"

double now_seconds(void);
/* The BLAS kernel OpenBLAS chose for this CPU (prefill's sgemm), e.g. "Haswell". */
const char *blas_core(void);
/* Loads a model; on failure prints "tinyllm: <message>" and returns NULL. */
tinyllm_model *load_model_or_report(const char *path, const tinyllm_model_params *params); /* NULL params: defaults */
/* Prints "tinyllm: <message>" for a failed call. */
void report(const tinyllm_error *err);
/* Tokenizes a prompt (with BOS); returns a malloc'd array or NULL after
 * reporting. */
int *tokenize_prompt(const tinyllm_model *m, const char *prompt, int *n_tokens);

int cmd_generate(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_step(int argc, char **argv);
int cmd_attn(int argc, char **argv);

#endif
