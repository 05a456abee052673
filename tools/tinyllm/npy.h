/* Writes float32 arrays as NumPy .npy files (format version 1.0). */
#ifndef TINYLLM_CLI_NPY_H
#define TINYLLM_CLI_NPY_H

#include <stdint.h>

/* Returns 0, or -1 when the file cannot be written. */
int npy_write_f32(const char *path, const float *data, const int64_t *shape, int n_dims);

#endif
