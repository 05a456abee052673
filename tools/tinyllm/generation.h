/* The generation loop behind `tinyllm generate`: a prompt prefilled, then
 * replies decoded token by token and streamed (stop strings held back,
 * reverse prompts handing over), the context shifted when it fills, and in
 * interactive mode the user's lines added to the same KV cache between
 * replies. cmd_generate.c parses the options and reports; this runs. */
#ifndef TINYLLM_CLI_GENERATION_H
#define TINYLLM_CLI_GENERATION_H

#include <signal.h>
#include <stddef.h>

#include "args.h"
#include "textio.h"
#include "tinyllm.h"

typedef struct {
    int n;       /* context shifts so far */
    long rerun;  /* tokens they ran again */
    double secs; /* and the time that took */
} shift_stats;

/* How a step ended: on with the session, or how it failed. */
typedef enum {
    GEN_OK = 0,
    GEN_FAILED,   /* an engine call failed: err holds its message */
    GEN_REPORTED, /* already said on stderr (logits not finite, nothing to sample) */
    GEN_NO_MEMORY,
} gen_status;

typedef struct {
    /* the caller's: set before generation_start */
    tinyllm_model *model;
    tinyllm_context *ctx;
    tinyllm_sampler *sampler;
    int n_keep;      /* BOS and the --keep prompt tokens a shift keeps */
    int shift;       /* shift the context when it fills (else a reply stops there) */
    int no_shift;    /* --no-context-shift was given (for the message) */
    int ignore_eos;  /* go on past the end-of-text token */
    int experimenting; /* experiments are on: non-finite logits are theirs, not the weights' */
    const string_list *reverse; /* -i: hand over when one of these is printed */
    /* the loop's */
    int n_vocab, n_ctx, eos;
    int *history;   /* (cap) every id so far: prompt, replies, the user's lines */
    size_t cap;
    int n_hist;
    int *cache;     /* (n_ctx) the ids in the KV cache, in order */
    int n_cache;
    int next;       /* sampled, not printed yet */
    int pending;    /* printed, not yet in the cache; -1: none */
    int n_gen;      /* tokens generated in all replies */
    double reply_secs; /* time spent in replies (not waiting for the user) */
    shift_stats shifts;
    stop_filter stop;
    tinyllm_detok detok;
    char tail[256]; /* the last bytes printed, for the reverse prompts */
} generation;

/* Allocates the history and cache and prefills the prompt (n tokens). */
gen_status generation_start(generation *g, const int *prompt, int n, const string_list *stops, tinyllm_error *err);
/* Samples the token after the last one run. */
gen_status generation_sample(generation *g);
/* One reply: prints tokens until the end of text, a stop string, a reverse
 * prompt, n_predict tokens (-1/-2: no limit), a full context (said on stderr)
 * or *interrupted (then cleared). */
gen_status generation_reply(generation *g, int n_predict, volatile sig_atomic_t *interrupted, tinyllm_error *err);
/* The user's turn: reads lines from stdin until one tokenizes and fits (the
 * others are refused on stderr), runs it and samples what follows; *quit at
 * the end of input or Ctrl-C at the prompt. */
gen_status generation_user_turn(generation *g, volatile sig_atomic_t *interrupted, int *quit, tinyllm_error *err);
/* Prints what is still held back (the text ended without a stop string). */
void generation_finish(generation *g);
void free_generation(generation *g);

#endif
