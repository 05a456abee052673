#include "npy.h"

#include <stdio.h>
#include <string.h>

#include "common.h"

int npy_write_f32(const char *path, const float *data, const int64_t *shape, int n_dims, char *msg, size_t cap) {
    char header[256];
    int n = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    int64_t count = 1;
    for (int d = 0; d < n_dims; d++) {
        n += snprintf(header + n, sizeof header - (size_t)n, "%lld,%s", (long long)shape[d], d + 1 < n_dims ? " " : "");
        count *= shape[d];
    }
    n += snprintf(header + n, sizeof header - (size_t)n, "), }");
    /* magic (6) + version (2) + header length (2) + header, padded with spaces to 64, ending in \n */
    int total = 10 + n + 1, pad = (64 - total % 64) % 64;
    out_file o;
    char why[200];
    if (out_open(&o, path, NULL, why, sizeof why)) {
        snprintf(msg, cap, "%s: %s", path, why);
        return -1;
    }
    FILE *f = o.f;
    unsigned short hlen = (unsigned short)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fwrite(&hlen, 2, 1, f);
    fwrite(header, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, sizeof(float), (size_t)count, f);
    if (out_commit(&o, why, sizeof why)) {
        snprintf(msg, cap, "%s: %s", path, why);
        return -1;
    }
    return 0;
}
