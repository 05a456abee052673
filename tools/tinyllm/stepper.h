/* The stepper shared by `tinyllm step` and `tinyllm attn` (stepper.c). */
#ifndef TINYLLM_CLI_STEPPER_H
#define TINYLLM_CLI_STEPPER_H

#include "args.h"
#include "common.h"
#include "json.h"
#include "tap_store.h"

typedef struct {
    tinyllm_model *m;
    tinyllm_model_info info;
    tinyllm_context *ctx;
    tap_store store;
    int *tokens;     /* prompt + generated */
    int n_tokens, cap;
    int n_prompt;
    int cur_tap, cur_pos;
    int json, echo, top_k;
    char **labels;   /* display text per token */
    int errors;      /* say_error calls so far */
    json_writer out; /* the emitter's JSON (--json) */
    const char *cli; /* a one-shot command ("attn"): errors go to stderr as "tinyllm attn: ..." */
    tinyllm_experiments exp; /* what --experiment switched off (flags 0: nothing) */
} stepper;

/* Loads the model and runs the prompt with every tap recorded (context
 * n_ctx, or the model's up to 512), under experiments exp (NULL: none; said
 * on stderr). 0, or an exit code after a message. */
int build_stepper(stepper *st, const char *cmd, const char *model_path, const char *prompt, int n_ctx, int n_threads,
                  const tinyllm_experiments *exp);
void free_stepper(stepper *st);
/* Appends a token (and its label) to the sequence; -1 out of memory. */
int add_token(stepper *st, int id);
/* A tap's index by name, or -1. */
int tap_index(const stepper *st, const char *name);
/* The logits row of position pos. */
const float *logits_at(const stepper *st, int pos);
/* A token as readable text (malloc'd): SentencePiece's space as ' ', "\\n". */
char *token_label(const tinyllm_model *m, int id);
/* An error: on stderr as "tinyllm CLI: ..." for one-shot commands, else in
 * the session's output (text, or {"error": ...}). Counted in st->errors. */
void say_error(stepper *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The emitter: every result of a session command goes through these, as
 * text or (--json) as one JSON object per line. In JSON mode emit_text is
 * silent; in text mode the keyed calls are. A result is emit_begin(cmd),
 * members, emit_end(); members may nest with emit_open/emit_close ('[' or '{';
 * key NULL inside an array; emit_close closes the innermost). */
void emit_begin(stepper *st, const char *cmd);
void emit_end(stepper *st);
void emit_open(stepper *st, const char *key, char kind);
void emit_close(stepper *st);
void emit_int(stepper *st, const char *key, long v);
void emit_num(stepper *st, const char *key, const char *fmt, double v); /* non-finite: null */
void emit_str(stepper *st, const char *key, const char *v);
void emit_text(stepper *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The attention picture of one head (head >= 0) or every head of a layer. */
/* The attention picture of one head (head >= 0) or every head of a layer;
 * last > 0: only the last `last` positions (queries and keys), for long
 * prompts. */
void stepper_attn_png(stepper *st, int layer, int head, int last, const char *path);

#endif
