/* Test helper: prints everything the C GGUF reader parsed as JSON (every key
 * with its full value, every tensor with dims, type, offset and an FNV-1a
 * hash of its bytes) so tests can compare with what the Python writer wrote. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"

static void json_str(const char *p, uint64_t n) {
    putchar('"');
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void scalar(uint32_t type, const uint8_t *p) {
    switch (type) {
    case GGUF_F32: { float f; memcpy(&f, p, 4); printf("%.9g", f); break; }
    case GGUF_F64: { double d; memcpy(&d, p, 8); printf("%.17g", d); break; }
    case GGUF_BOOL: printf("%s", *p ? "true" : "false"); break;
    case GGUF_U64: { uint64_t u; memcpy(&u, p, 8); printf("%" PRIu64, u); break; }
    default: {
        /* reuse the reader's integer path through a one-element view */
        gguf_kv kv = {.elem_type = type, .value = p, .n = 1};
        printf("%" PRId64, gguf_array_int(&kv, 0));
    }
    }
}

static uint64_t fnv1a(const uint8_t *p, uint64_t n) {
    uint64_t h = 1469598103934665603ull;
    for (uint64_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gguf_dump FILE.gguf\n");
        return 2;
    }
    gguf_file f;
    tinyllm_error err = {0};
    if (gguf_open(&f, argv[1], 1, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    printf("{\"version\": %u, \"alignment\": %" PRIu64 ", \"kv\": {", f.version, f.alignment);
    for (uint64_t i = 0; i < f.n_kv; i++) {
        const gguf_kv *kv = &f.kv[i];
        printf(i ? ",\n" : "\n");
        json_str(kv->key.ptr, kv->key.len);
        printf(": {\"type\": %u, ", kv->type);
        if (kv->type == GGUF_STRING) {
            gguf_str s;
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
            gguf_get_string(&f, key, &s);
            printf("\"value\": ");
            json_str(s.ptr, s.len);
        } else if (kv->type == GGUF_ARRAY) {
            printf("\"elem_type\": %u, \"value\": [", kv->elem_type);
            if (kv->elem_type == GGUF_STRING) {
                gguf_str *strs = malloc((kv->n + 1) * sizeof *strs);
                if (!strs) return 1;
                gguf_array_strings(kv, strs);
                for (uint64_t j = 0; j < kv->n; j++) {
                    if (j) printf(", ");
                    json_str(strs[j].ptr, strs[j].len);
                }
                free(strs);
            } else {
                for (uint64_t j = 0; j < kv->n; j++) {
                    if (j) printf(", ");
                    if (kv->elem_type == GGUF_F32 || kv->elem_type == GGUF_F64)
                        printf("%.9g", gguf_array_float(kv, j));
                    else if (kv->elem_type == GGUF_BOOL)
                        printf("%s", gguf_array_int(kv, j) ? "true" : "false");
                    else
                        printf("%" PRId64, gguf_array_int(kv, j));
                }
            }
            printf("]");
        } else {
            printf("\"value\": ");
            scalar(kv->type, kv->value);
        }
        printf("}");
    }
    printf("},\n\"tensors\": {");
    for (uint64_t i = 0; i < f.n_tensors; i++) {
        const gguf_tensor *t = &f.tensors[i];
        printf(i ? ",\n" : "\n");
        json_str(t->name.ptr, t->name.len);
        printf(": {\"type\": %u, \"dims\": [", t->type);
        for (uint32_t d = 0; d < t->n_dims; d++) printf(d ? ", %" PRIu64 : "%" PRIu64, t->dims[d]);
        printf("], \"offset\": %" PRIu64 ", \"n_bytes\": %" PRIu64 ", \"fnv1a\": \"%016" PRIx64 "\"}", t->offset,
               t->n_bytes, fnv1a(t->data, t->n_bytes));
    }
    printf("}}\n");
    gguf_close(&f);
    return 0;
}
