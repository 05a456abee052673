/* The views of `tinyllm step` (step_views.c): what each session command
 * shows, as text or JSON through the stepper's emitter. The REPL that reads
 * and parses the commands is cmd_step.c. */
#ifndef TINYLLM_CLI_STEP_VIEWS_H
#define TINYLLM_CLI_STEP_VIEWS_H

#include "stepper.h"

/* statistics of tap `tap` at the current position (brief: one line) */
void cmd_show(stepper *st, int tap, int brief);
/* each head of `layer` at the current position: most attended tokens, entropy in bits */
void cmd_heads(stepper *st, int layer);
/* the logit lens at the current position; as a picture of every position */
void cmd_lens(stepper *st);
void cmd_lens_png(stepper *st, const char *path);
/* the k most likely next tokens after the current position */
void cmd_top(stepper *st, int k);
/* n more tokens, greedy, each decoded through the KV cache with its taps */
void cmd_gen(stepper *st, int n);
/* tap `name` at every position as a .npy file */
void cmd_dump(stepper *st, const char *name, const char *path);
/* every token rerun (with the current ablations): how the last prediction changed */
void cmd_rerun(stepper *st);

#endif
