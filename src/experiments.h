/* Experiments, the part a context needs (experiments.c). */
#ifndef TINYLLM_EXPERIMENTS_H
#define TINYLLM_EXPERIMENTS_H

#include "tinyllm.h"

/* TINYLLM_OK, or an error for experiments that contradict each other
 * (no-scale with attn-scale, no-mask with mask-after-softmax) or a bad factor. */
tinyllm_status experiments_check(const tinyllm_experiments *e, tinyllm_error *err);

#endif
