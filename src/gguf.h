/* GGUF v3 reader: maps the file read-only and indexes its metadata and
 * tensor infos. Every count, length and offset is checked against the file
 * size with overflow-safe arithmetic before it is used; after gguf_open
 * succeeds every pointer in the index is inside the mapping.
 * Facts: docs/formats.md. */
#ifndef TINYLLM_GGUF_H
#define TINYLLM_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "tinyllm.h"

enum gguf_value_type {
    GGUF_U8 = 0, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL,
    GGUF_STRING, GGUF_ARRAY, GGUF_U64, GGUF_I64, GGUF_F64, GGUF_N_VALUE_TYPES
};

/* The tensor types tinyllm knows by name (docs/formats.md); gguf.c sizes more. */
enum ggml_type {
    GGML_TYPE_F32 = 0, GGML_TYPE_F16 = 1, GGML_TYPE_Q4_0 = 2, GGML_TYPE_Q4_1 = 3, GGML_TYPE_Q5_0 = 6,
    GGML_TYPE_Q5_1 = 7, GGML_TYPE_Q8_0 = 8, GGML_TYPE_Q2_K = 10, GGML_TYPE_Q3_K = 11, GGML_TYPE_Q4_K = 12,
    GGML_TYPE_Q5_K = 13, GGML_TYPE_Q6_K = 14, GGML_TYPE_IQ4_NL = 20, GGML_TYPE_BF16 = 30
};

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

typedef struct {
    const char *ptr; /* not NUL-terminated: points into the mapping */
    uint64_t len;
} gguf_str;

typedef struct {
    gguf_str key;
    uint32_t type;        /* enum gguf_value_type */
    uint32_t elem_type;   /* arrays: element type */
    uint64_t n;           /* arrays: element count; 1 otherwise */
    const uint8_t *value; /* scalars: the value; arrays: first element */
} gguf_kv;

typedef struct {
    gguf_str name;
    uint32_t n_dims;
    uint64_t dims[GGUF_MAX_DIMS];
    uint32_t type;   /* enum ggml_type */
    uint64_t offset; /* from the start of the data section */
    uint64_t n_elements;
    uint64_t n_bytes;
    const void *data;
} gguf_tensor;

/* A hash index of names (gguf.c): slots hold an entry's index + 1. */
typedef struct {
    uint64_t *slots;
    uint64_t mask, seed;
} name_index;

typedef struct {
    const char *path;
    const uint8_t *map;
    size_t size;
    uint32_t version;
    uint64_t n_kv;
    uint64_t n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
    name_index kv_index, tensor_index; /* lookups by name in O(1) */
    uint64_t alignment;
    uint64_t data_offset;
    int owns_map;    /* opened by gguf_open: gguf_close unmaps */
    int file_backed; /* the mapping is the file itself (not a private copy) */
} gguf_file;

/* Opens and indexes `path`: memory-mapped (use_mmap) or read into private
 * memory. On failure nothing is left open. */
tinyllm_status gguf_open(gguf_file *f, const char *path, int use_mmap, tinyllm_error *err);
/* Indexes a buffer the caller owns (fuzzing, tests); `name` is for messages. */
tinyllm_status gguf_parse(gguf_file *f, const uint8_t *buf, size_t size, const char *name, tinyllm_error *err);
/* Frees the index and, when gguf_open mapped the file, the mapping. */
void gguf_close(gguf_file *f);

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);
int gguf_str_eq(gguf_str s, const char *c);

/* Typed getters: return 0 on success, -1 when the key is absent, -2 when it
 * has the wrong type. Any integer type is accepted for an integer. */
int gguf_get_int(const gguf_file *f, const char *key, int64_t *out);
int gguf_get_float(const gguf_file *f, const char *key, double *out);
int gguf_get_bool(const gguf_file *f, const char *key, int *out);
int gguf_get_string(const gguf_file *f, const char *key, gguf_str *out);

/* A scalar entry's value: any integer type, or F32/F64 (others read as 0). */
int64_t gguf_kv_int(const gguf_kv *kv);
double gguf_kv_float(const gguf_kv *kv);
/* Elements of an array value (bounds were checked at open). */
int64_t gguf_array_int(const gguf_kv *kv, uint64_t i);
double gguf_array_float(const gguf_kv *kv, uint64_t i);
/* All strings of a string array, in order; `out` holds kv->n entries. */
void gguf_array_strings(const gguf_kv *kv, gguf_str *out);

/* Encoded bytes from kv->value to the end of the value (a string's length
 * field included; an array's elements without its type and count). */
uint64_t gguf_kv_value_bytes(const gguf_kv *kv);

const char *gguf_type_name(uint32_t ggml_type);
const char *gguf_value_type_name(uint32_t value_type);
int gguf_value_is_int(uint32_t value_type);

#endif
