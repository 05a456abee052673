/* GGUF v3 reader. See gguf.h for the contract. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

/* ggml type table: name, values per block, bytes per block. Types we do not
 * run are still sized, so a file that has them parses and the model binding
 * can name the type it does not support. */
typedef struct {
    uint32_t id;
    const char *name;
    uint32_t block;
    uint32_t block_bytes;
} ggml_type_info;

static const ggml_type_info GGML_TYPES[] = {
    {0, "F32", 1, 4},      {1, "F16", 1, 2},       {2, "Q4_0", 32, 18},   {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},   {7, "Q5_1", 32, 24},    {8, "Q8_0", 32, 34},   {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84}, {11, "Q3_K", 256, 110}, {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210}, {15, "Q8_K", 256, 292}, {20, "IQ4_NL", 32, 18}, {24, "I8", 1, 1},     {25, "I16", 1, 2},
    {26, "I32", 1, 4},     {27, "I64", 1, 8},      {28, "F64", 1, 8},     {30, "BF16", 1, 2},
};

static const ggml_type_info *type_info(uint32_t id) {
    for (size_t i = 0; i < sizeof GGML_TYPES / sizeof GGML_TYPES[0]; i++)
        if (GGML_TYPES[i].id == id) return &GGML_TYPES[i];
    return NULL;
}

const char *gguf_type_name(uint32_t id) {
    const ggml_type_info *t = type_info(id);
    return t ? t->name : "unknown";
}

static const char *const VALUE_TYPE_NAMES[GGUF_N_VALUE_TYPES] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};

const char *gguf_value_type_name(uint32_t t) {
    return t < GGUF_N_VALUE_TYPES ? VALUE_TYPE_NAMES[t] : "unknown";
}

/* Bytes of a fixed-size value type, 0 for string/array/unknown. */
static uint64_t scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    default: return 0;
    }
}

int gguf_value_is_int(uint32_t t) {
    return t == GGUF_U8 || t == GGUF_I8 || t == GGUF_U16 || t == GGUF_I16 || t == GGUF_U32 ||
           t == GGUF_I32 || t == GGUF_U64 || t == GGUF_I64;
}

/* ------------------------------------------------------------ cursor -- */

typedef struct {
    const uint8_t *buf;
    uint64_t size;
    uint64_t pos;
    const char *name;
    tinyllm_error *err;
} cursor;

/* Fails unless n more bytes exist at the cursor. */
static tinyllm_status need(cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos)
        return set_error(c->err, TINYLLM_ERR_FORMAT,
                         "%s: truncated or corrupt: %s at offset %llu needs %llu bytes, but the file ends at %llu "
                         "(expected a complete GGUF file; re-download it?)",
                         c->name, what, (unsigned long long)c->pos, (unsigned long long)n,
                         (unsigned long long)c->size);
    return TINYLLM_OK;
}

static uint32_t rd_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t rd_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static tinyllm_status take_u32(cursor *c, uint32_t *v, const char *what) {
    tinyllm_status st = need(c, 4, what);
    if (st) return st;
    *v = rd_u32(c->buf + c->pos);
    c->pos += 4;
    return TINYLLM_OK;
}

static tinyllm_status take_u64(cursor *c, uint64_t *v, const char *what) {
    tinyllm_status st = need(c, 8, what);
    if (st) return st;
    *v = rd_u64(c->buf + c->pos);
    c->pos += 8;
    return TINYLLM_OK;
}

static tinyllm_status take_str(cursor *c, gguf_str *s, const char *what) {
    uint64_t len;
    tinyllm_status st = take_u64(c, &len, what);
    if (st) return st;
    if ((st = need(c, len, what))) return st;
    s->ptr = (const char *)c->buf + c->pos;
    s->len = len;
    c->pos += len;
    return TINYLLM_OK;
}

/* A key or tensor name: text, so no NUL byte (names become C strings). */
static tinyllm_status take_name(cursor *c, gguf_str *s, const char *what, uint64_t index) {
    tinyllm_status st = take_str(c, s, what);
    if (st || !memchr(s->ptr, 0, s->len)) return st;
    char shown[80];
    return set_error(c->err, TINYLLM_ERR_FORMAT, "%s: %s %llu '%s' contains a NUL byte (expected text)", c->name, what,
                     (unsigned long long)index, tinyllm_printable(s->ptr, s->len, shown, sizeof shown));
}

/* ----------------------------------------------- other formats, named -- */

static int starts_with(const uint8_t *buf, size_t size, const char *prefix) {
    size_t n = strlen(prefix);
    return size >= n && memcmp(buf, prefix, n) == 0;
}

static int looks_like_html(const uint8_t *buf, size_t size) {
    size_t i = 0;
    while (i < size && i < 64 && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t')) i++;
    if (i + 5 > size) return 0;
    return strncasecmp((const char *)buf + i, "<!doc", 5) == 0 || strncasecmp((const char *)buf + i, "<html", 5) == 0;
}

/* llama2.c legacy checkpoint: 7 int32 header, then float32 weights whose
 * total size follows from the header. */
static int looks_like_llama2c(const uint8_t *buf, size_t size) {
    if (size < 28) return 0;
    int32_t h[7];
    memcpy(h, buf, sizeof h);
    int64_t dim = h[0], hidden = h[1], layers = h[2], heads = h[3], kv = h[4], vocab = llabs(h[5]), seq = h[6];
    if (dim <= 0 || hidden <= 0 || layers <= 0 || heads <= 0 || kv <= 0 || vocab <= 0 || seq <= 0) return 0;
    if (dim > 65536 || hidden > 262144 || layers > 1024 || heads > dim || kv > heads || vocab > 1000000 ||
        seq > 1000000 || dim % heads)
        return 0;
    int64_t kv_dim = dim * kv / heads, hs = dim / heads;
    int64_t floats = vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * dim * hidden) + dim +
                     seq * hs + (h[5] < 0 ? vocab * dim : 0);
    return (int64_t)size == 28 + 4 * floats;
}

static tinyllm_status check_magic(const uint8_t *buf, size_t size, const char *name, tinyllm_error *err) {
    if (size == 0)
        return set_error(err, TINYLLM_ERR_FORMAT, "%s: empty file (expected a GGUF model)", name);
    if (starts_with(buf, size, "GGUF")) return TINYLLM_OK;
    if (starts_with(buf, size, "version https://git-lfs"))
        return set_error(err, TINYLLM_ERR_FORMAT,
                         "%s: this is a Git LFS pointer, not the model; fetch the real file (git lfs pull)", name);
    if (looks_like_html(buf, size))
        return set_error(err, TINYLLM_ERR_FORMAT,
                         "%s: this is an HTML page, not a model (a download saved a web page?); expected GGUF", name);
    if (looks_like_llama2c(buf, size))
        return set_error(err, TINYLLM_ERR_FORMAT,
                         "%s: this is a llama2.c checkpoint, not GGUF; convert it with tools/convert_llama2c.py",
                         name);
    if (starts_with(buf, size, "lmgg") || starts_with(buf, size, "fmgg") || starts_with(buf, size, "tjgg") ||
        starts_with(buf, size, "algg"))
        return set_error(err, TINYLLM_ERR_FORMAT,
                         "%s: this is a pre-GGUF ggml/ggjt file; convert it to GGUF v3 with llama.cpp's tools", name);
    if (size < 4)
        return set_error(err, TINYLLM_ERR_FORMAT, "%s: file of %zu bytes is too short to be GGUF", name, size);
    return set_error(err, TINYLLM_ERR_FORMAT,
                     "%s: not a GGUF file (magic bytes %02x %02x %02x %02x, expected \"GGUF\")", name, buf[0],
                     buf[1], buf[2], buf[3]);
}

/* ----------------------------------------------------------- parsing -- */

/* ----------------------------------------------------- name index -- */

/* Names are found through an open-addressing hash table (slot = index + 1,
 * 0 empty), at most half full: lookups cost O(1) however many entries a
 * file declares (1M tensors index in well under a second). The hash is
 * seeded from the mapping's address, so a file cannot be crafted offline
 * to make every name collide. Duplicates are found while inserting. */
static uint64_t name_hash(uint64_t seed, const char *p, uint64_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ seed; /* FNV-1a, then a splitmix64 finish */
    for (uint64_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ h >> 31;
}

static int str_same(gguf_str a, const char *p, uint64_t n) { return a.len == n && memcmp(a.ptr, p, n) == 0; }

/* Builds index->slots for n names (name_at(base, i, stride)); fails on the
 * first name that occurs twice. */
static tinyllm_status build_index(name_index *ix, uint64_t seed, const gguf_str *first, size_t stride, uint64_t n,
                                  const char *what, const char *file, tinyllm_error *err) {
    uint64_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    ix->slots = calloc(cap, sizeof *ix->slots);
    if (!ix->slots) return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory indexing %llu names", file,
                                     (unsigned long long)n);
    ix->mask = cap - 1;
    ix->seed = seed;
    for (uint64_t i = 0; i < n; i++) {
        const gguf_str *s = (const gguf_str *)((const uint8_t *)first + i * stride);
        uint64_t at = name_hash(seed, s->ptr, s->len) & ix->mask;
        for (; ix->slots[at]; at = (at + 1) & ix->mask) {
            const gguf_str *o = (const gguf_str *)((const uint8_t *)first + (ix->slots[at] - 1) * stride);
            if (str_same(*o, s->ptr, s->len))
                return set_error(err, TINYLLM_ERR_FORMAT, "%s: duplicate %s '%.*s' (each must occur once)", file,
                                 what, (int)(s->len > 200 ? 200 : s->len), s->ptr);
        }
        ix->slots[at] = i + 1;
    }
    return TINYLLM_OK;
}

/* The index of `name` among the indexed names, or -1. */
static int64_t index_find(const name_index *ix, const gguf_str *first, size_t stride, const char *name) {
    if (!ix->slots) return -1;
    uint64_t n = strlen(name);
    for (uint64_t at = name_hash(ix->seed, name, n) & ix->mask; ix->slots[at]; at = (at + 1) & ix->mask) {
        uint64_t i = ix->slots[at] - 1;
        if (str_same(*(const gguf_str *)((const uint8_t *)first + i * stride), name, n)) return (int64_t)i;
    }
    return -1;
}

typedef struct {
    uint64_t begin, end, i;
} extent;

static int cmp_extent(const void *a, const void *b) {
    const extent *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
}

/* Each tensor's bytes must be its own (as llama.cpp requires): overlapping
 * data would let a small file stand for many large tensors, and a
 * quantize of it write far more than the file holds. */
static tinyllm_status check_no_overlap(const gguf_file *f, const char *file, tinyllm_error *err) {
    extent *e = malloc((f->n_tensors ? f->n_tensors : 1) * sizeof *e);
    if (!e) return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory indexing the file", file);
    uint64_t n = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].n_bytes) e[n++] = (extent){f->tensors[i].offset, f->tensors[i].offset + f->tensors[i].n_bytes, i};
    qsort(e, n, sizeof *e, cmp_extent);
    tinyllm_status st = TINYLLM_OK;
    for (uint64_t k = 1; k < n && !st; k++)
        if (e[k].begin < e[k - 1].end) {
            const gguf_str *a = &f->tensors[e[k - 1].i].name, *b = &f->tensors[e[k].i].name;
            st = set_error(err, TINYLLM_ERR_FORMAT,
                           "%s: tensor '%.*s' (data offset %llu) overlaps tensor '%.*s' (each tensor needs its own "
                           "bytes); the file is corrupt",
                           file, (int)(b->len > 100 ? 100 : b->len), b->ptr, (unsigned long long)e[k].begin,
                           (int)(a->len > 100 ? 100 : a->len), a->ptr);
        }
    free(e);
    return st;
}

static tinyllm_status parse_value(cursor *c, gguf_kv *kv) {
    char what[160];
    snprintf(what, sizeof what, "value of '%.*s'", (int)(kv->key.len > 100 ? 100 : kv->key.len), kv->key.ptr);
    tinyllm_status st;
    if (kv->type == GGUF_STRING) {
        gguf_str s;
        kv->value = c->buf + c->pos;
        kv->n = 1;
        return take_str(c, &s, what);
    }
    if (kv->type == GGUF_ARRAY) {
        if ((st = take_u32(c, &kv->elem_type, what))) return st;
        if ((st = take_u64(c, &kv->n, what))) return st;
        kv->value = c->buf + c->pos;
        if (kv->elem_type == GGUF_STRING) {
            /* each string needs at least its 8-byte length */
            if (kv->n > (c->size - c->pos) / 8) return need(c, UINT64_MAX, what);
            for (uint64_t i = 0; i < kv->n; i++) {
                gguf_str s;
                if ((st = take_str(c, &s, what))) return st;
            }
            return TINYLLM_OK;
        }
        uint64_t es = scalar_size(kv->elem_type);
        if (!es)
            return set_error(c->err, TINYLLM_ERR_FORMAT,
                             "%s: %s has array element type %u (expected a scalar or string type 0..12 but 9)",
                             c->name, what, kv->elem_type);
        if (kv->n > (c->size - c->pos) / es) return need(c, UINT64_MAX, what);
        c->pos += kv->n * es;
        return TINYLLM_OK;
    }
    uint64_t sz = scalar_size(kv->type);
    if (!sz)
        return set_error(c->err, TINYLLM_ERR_FORMAT, "%s: %s has unknown value type %u (expected 0..12)", c->name,
                         what, kv->type);
    if ((st = need(c, sz, what))) return st;
    kv->value = c->buf + c->pos;
    kv->n = 1;
    c->pos += sz;
    return TINYLLM_OK;
}

static tinyllm_status parse_tensor_info(cursor *c, gguf_tensor *t, uint64_t index) {
    tinyllm_status st;
    if ((st = take_name(c, &t->name, "tensor name", index))) return st;
    int nl = (int)(t->name.len > 100 ? 100 : t->name.len);
    if ((st = take_u32(c, &t->n_dims, "tensor dimension count"))) return st;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS)
        return set_error(c->err, TINYLLM_ERR_FORMAT, "%s: tensor '%.*s' has %u dimensions (expected 1 to 4)",
                         c->name, nl, t->name.ptr, t->n_dims);
    t->n_elements = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if ((st = take_u64(c, &t->dims[d], "tensor dimension"))) return st;
        if (t->dims[d] == 0 || t->dims[d] > (UINT64_C(1) << 40) || t->n_elements > (UINT64_C(1) << 48) / t->dims[d])
            return set_error(c->err, TINYLLM_ERR_FORMAT,
                             "%s: tensor '%.*s' dimension %u is %llu (expected 1 .. 2^40, product below 2^48)",
                             c->name, nl, t->name.ptr, d, (unsigned long long)t->dims[d]);
        t->n_elements *= t->dims[d];
    }
    for (uint32_t d = t->n_dims; d < GGUF_MAX_DIMS; d++) t->dims[d] = 1;
    if ((st = take_u32(c, &t->type, "tensor type"))) return st;
    const ggml_type_info *ti = type_info(t->type);
    if (!ti)
        return set_error(c->err, TINYLLM_ERR_FORMAT, "%s: tensor '%.*s' has unknown type id %u (expected a ggml type)",
                         c->name, nl, t->name.ptr, t->type);
    if (t->dims[0] % ti->block)
        return set_error(c->err, TINYLLM_ERR_FORMAT,
                         "%s: tensor '%.*s' of type %s has rows of %llu values (expected a multiple of %u)", c->name,
                         nl, t->name.ptr, ti->name, (unsigned long long)t->dims[0], ti->block);
    t->n_bytes = t->n_elements / ti->block * ti->block_bytes;
    return take_u64(c, &t->offset, "tensor offset");
}

tinyllm_status gguf_parse(gguf_file *f, const uint8_t *buf, size_t size, const char *name, tinyllm_error *err) {
    memset(f, 0, sizeof *f);
    f->path = name;
    tinyllm_status st = check_magic(buf, size, name, err);
    if (st) return st;
    cursor c = {buf, size, 4, name, err};
    if ((st = take_u32(&c, &f->version, "version"))) return st;
    if (f->version != 2 && f->version != 3) {
        if (f->version == 1)
            return set_error(err, TINYLLM_ERR_UNSUPPORTED,
                             "%s: GGUF version 1 is obsolete (expected version 3); re-convert the model", name);
        if ((f->version & 0xffff) == 0 && f->version)
            return set_error(err, TINYLLM_ERR_UNSUPPORTED,
                             "%s: big-endian GGUF is not supported (expected little-endian version 3)", name);
        return set_error(err, TINYLLM_ERR_UNSUPPORTED, "%s: GGUF version %u is not supported (expected version 3)",
                         name, f->version);
    }
    if ((st = take_u64(&c, &f->n_tensors, "tensor count"))) return st;
    if ((st = take_u64(&c, &f->n_kv, "metadata count"))) return st;
    /* smallest possible entries: kv 8+4+1 bytes, tensor info 8+4+8+4+8 */
    if (f->n_kv > (size - c.pos) / 13)
        return set_error(err, TINYLLM_ERR_FORMAT,
                         "%s: metadata count %llu cannot fit in a file of %zu bytes (the file is truncated or corrupt)", name,
                         (unsigned long long)f->n_kv, size);
    if (f->n_tensors > (size - c.pos) / 32)
        return set_error(err, TINYLLM_ERR_FORMAT,
                         "%s: tensor count %llu cannot fit in a file of %zu bytes (the file is truncated or corrupt)", name,
                         (unsigned long long)f->n_tensors, size);

    f->kv = calloc(f->n_kv ? f->n_kv : 1, sizeof *f->kv);
    f->tensors = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *f->tensors);
    if (!f->kv || !f->tensors) {
        st = set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory indexing the file", name);
        goto fail;
    }
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        if ((st = take_name(&c, &kv->key, "metadata key", i))) goto fail;
        if ((st = take_u32(&c, &kv->type, "metadata value type"))) goto fail;
        if ((st = parse_value(&c, kv))) goto fail;
    }
    uint64_t seed = (uint64_t)(uintptr_t)buf ^ (uint64_t)size;
    if ((st = build_index(&f->kv_index, seed, &f->kv[0].key, sizeof *f->kv, f->n_kv, "metadata key", name, err)))
        goto fail;

    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *al = gguf_find_kv(f, "general.alignment");
    if (al) {
        int64_t a = 0;
        if (gguf_get_int(f, "general.alignment", &a) != 0 || a <= 0 || a > (1 << 30) || (a & (a - 1))) {
            st = set_error(err, TINYLLM_ERR_FORMAT, "%s: general.alignment must be a power of two integer", name);
            goto fail;
        }
        f->alignment = (uint64_t)a;
    }

    for (uint64_t i = 0; i < f->n_tensors; i++) {
        if ((st = parse_tensor_info(&c, &f->tensors[i], i))) goto fail;
    }
    if ((st = build_index(&f->tensor_index, seed, &f->tensors[0].name, sizeof *f->tensors, f->n_tensors,
                          "tensor name", name, err)))
        goto fail;

    f->data_offset = c.pos + (f->alignment - c.pos % f->alignment) % f->alignment;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        int nl = (int)(t->name.len > 100 ? 100 : t->name.len);
        if (t->offset % f->alignment) {
            st = set_error(err, TINYLLM_ERR_FORMAT, "%s: tensor '%.*s' offset %llu is not a multiple of the alignment %llu",
                           name, nl, t->name.ptr, (unsigned long long)t->offset, (unsigned long long)f->alignment);
            goto fail;
        }
        if (f->data_offset > size || t->offset > size - f->data_offset ||
            t->n_bytes > size - f->data_offset - t->offset) {
            st = set_error(err, TINYLLM_ERR_FORMAT,
                           "%s: tensor '%.*s' (%llu bytes at data offset %llu) extends past the end of the file "
                           "(%zu bytes); the file is truncated or corrupt",
                           name, nl, t->name.ptr, (unsigned long long)t->n_bytes, (unsigned long long)t->offset, size);
            goto fail;
        }
        t->data = buf + f->data_offset + t->offset;
    }
    if ((st = check_no_overlap(f, name, err))) goto fail;
    f->map = buf;
    f->size = size;
    return TINYLLM_OK;
fail:
    free(f->kv);
    free(f->tensors);
    free(f->kv_index.slots);
    free(f->tensor_index.slots);
    f->kv = NULL;
    f->tensors = NULL;
    f->kv_index.slots = f->tensor_index.slots = NULL;
    return st;
}

tinyllm_status gguf_open(gguf_file *f, const char *path, int use_mmap, tinyllm_error *err) {
    memset(f, 0, sizeof *f);
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return set_error(err, TINYLLM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return set_error(err, TINYLLM_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return set_error(err, TINYLLM_ERR_IO, "%s: is a directory (expected a .gguf model file)", path);
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return set_error(err, TINYLLM_ERR_IO, "%s: not a regular file (expected a .gguf model file)", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return set_error(err, TINYLLM_ERR_FORMAT, "%s: empty file (expected a GGUF model)", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map;
    if (use_mmap) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        int e = errno;
        close(fd);
        if (map == MAP_FAILED) return set_error(err, TINYLLM_ERR_IO, "%s: cannot map: %s", path, strerror(e));
    } else { /* a private copy: immune to the file changing later */
        map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (map == MAP_FAILED) {
            close(fd);
            return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, size);
        }
        madvise(map, size, MADV_HUGEPAGE); /* fewer TLB misses while decode streams the weights */
        size_t got = 0;
        while (got < size) {
            ssize_t n = pread(fd, (char *)map + got, size - got, (off_t)got);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                int e = n < 0 ? errno : EIO;
                close(fd);
                munmap(map, size);
                return set_error(err, TINYLLM_ERR_IO, "%s: read failed at byte %zu: %s", path, got, strerror(e));
            }
            got += (size_t)n;
        }
        close(fd);
    }
    tinyllm_status st = gguf_parse(f, map, size, path, err);
    if (st) {
        munmap(map, size);
        memset(f, 0, sizeof *f);
        return st;
    }
    f->owns_map = 1;
    f->file_backed = use_mmap;
    return TINYLLM_OK;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    free(f->kv);
    free(f->tensors);
    free(f->kv_index.slots);
    free(f->tensor_index.slots);
    if (f->owns_map && f->map) munmap((void *)f->map, f->size);
    memset(f, 0, sizeof *f);
}

int gguf_str_eq(gguf_str s, const char *c) {
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    int64_t i = index_find(&f->kv_index, &f->kv[0].key, sizeof *f->kv, key);
    return i < 0 ? NULL : &f->kv[i];
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    int64_t i = index_find(&f->tensor_index, &f->tensors[0].name, sizeof *f->tensors, name);
    return i < 0 ? NULL : &f->tensors[i];
}

static int64_t read_int(uint32_t type, const uint8_t *p) {
    switch (type) {
    case GGUF_U8: return *p;
    case GGUF_I8: return (int8_t)*p;
    case GGUF_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case GGUF_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case GGUF_U32: return rd_u32(p);
    case GGUF_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case GGUF_U64: { uint64_t v = rd_u64(p); return v > INT64_MAX ? INT64_MAX : (int64_t)v; }
    case GGUF_I64: { int64_t v; memcpy(&v, p, 8); return v; }
    case GGUF_BOOL: return *p != 0;
    default: return 0;
    }
}

static double read_float(uint32_t type, const uint8_t *p) {
    if (type == GGUF_F32) { float v; memcpy(&v, p, 4); return v; }
    if (type == GGUF_F64) { double v; memcpy(&v, p, 8); return v; }
    return (double)read_int(type, p);
}

int64_t gguf_kv_int(const gguf_kv *kv) { return gguf_value_is_int(kv->type) ? read_int(kv->type, kv->value) : 0; }

double gguf_kv_float(const gguf_kv *kv) {
    return kv->type == GGUF_F32 || kv->type == GGUF_F64 || gguf_value_is_int(kv->type) ? read_float(kv->type, kv->value)
                                                                                        : 0.0;
}

int gguf_get_int(const gguf_file *f, const char *key, int64_t *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return -1;
    if (!gguf_value_is_int(kv->type)) return -2;
    *out = read_int(kv->type, kv->value);
    return 0;
}

int gguf_get_float(const gguf_file *f, const char *key, double *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return -1;
    if (kv->type != GGUF_F32 && kv->type != GGUF_F64 && !gguf_value_is_int(kv->type)) return -2;
    *out = read_float(kv->type, kv->value);
    return 0;
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return -1;
    if (kv->type != GGUF_BOOL && !gguf_value_is_int(kv->type)) return -2;
    *out = read_int(kv->type, kv->value) != 0;
    return 0;
}

int gguf_get_string(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return -1;
    if (kv->type != GGUF_STRING) return -2;
    out->len = rd_u64(kv->value);
    out->ptr = (const char *)kv->value + 8;
    return 0;
}

int64_t gguf_array_int(const gguf_kv *kv, uint64_t i) {
    return read_int(kv->elem_type, kv->value + i * scalar_size(kv->elem_type));
}

double gguf_array_float(const gguf_kv *kv, uint64_t i) {
    return read_float(kv->elem_type, kv->value + i * scalar_size(kv->elem_type));
}

void gguf_array_strings(const gguf_kv *kv, gguf_str *out) {
    const uint8_t *p = kv->value;
    for (uint64_t i = 0; i < kv->n; i++) {
        out[i].len = rd_u64(p);
        out[i].ptr = (const char *)p + 8;
        p += 8 + out[i].len;
    }
}

uint64_t gguf_kv_value_bytes(const gguf_kv *kv) {
    if (kv->type == GGUF_STRING) return 8 + rd_u64(kv->value);
    if (kv->type != GGUF_ARRAY) return scalar_size(kv->type);
    if (kv->elem_type != GGUF_STRING) return kv->n * scalar_size(kv->elem_type);
    uint64_t off = 0;
    for (uint64_t i = 0; i < kv->n; i++) off += 8 + rd_u64(kv->value + off);
    return off;
}
