/* Reader of golden files (format: docs/golden-format.md). Every length is
 * checked against the file size; a bad file is a one-line error. */
#ifndef TINYLLM_CLI_GOLDEN_H
#define TINYLLM_CLI_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *name;
    int n_dims;
    int64_t dims[3];
    int64_t n;     /* elements */
    float *data;   /* (dims) */
    double tol;    /* version 2: max |engine - reference| a correct engine stays within (the reference's spread) */
} golden_tap;

typedef struct {
    char sha256[65];
    char *prompt;
    int *prompt_ids;
    int n_prompt;
    int *cont_ids;
    int n_cont;
    int has_tolerances; /* version 2: taps carry tol; n_decisive set */
    int n_decisive;     /* version 2: leading continuation tokens beyond the engine's precision's near ties */
    golden_tap *taps;
    int n_taps;
    unsigned char *raw;
} golden;

/* 0 on success; else writes a one-line message into msg. A FIFO, device or
 * directory is refused without blocking. */
int golden_load(const char *path, golden *g, char *msg, size_t cap);
/* The same from raw (size bytes, malloc'd; the golden owns it from here on,
 * failure included); path names it in messages. */
int golden_parse(unsigned char *raw, size_t size, const char *path, golden *g, char *msg, size_t cap);
void golden_free(golden *g);
int golden_find(const golden *g, const char *name);

#endif
