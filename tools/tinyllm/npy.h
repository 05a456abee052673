/* Writes float32 arrays as NumPy .npy files (format version 1.0). */
#ifndef TINYLLM_CLI_NPY_H
#define TINYLLM_CLI_NPY_H

#include <stdint.h>

#include <stddef.h>

/* Returns 0, or -1 with a one-line message in msg when the file cannot be
 * written (written safely: common.h's out_open). */
int npy_write_f32(const char *path, const float *data, const int64_t *shape, int n_dims, char *msg, size_t cap);

#endif
