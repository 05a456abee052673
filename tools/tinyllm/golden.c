#include "golden.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* the largest golden accepted (a 512-token prompt of a 110M model is ~1 GB) */
#define GOLDEN_MAX_BYTES ((size_t)4 << 30)

typedef struct {
    const unsigned char *p;
    size_t size, pos;
} reader;

static int take(reader *r, void *dst, size_t n) {
    if (n > r->size - r->pos) return -1;
    if (dst) memcpy(dst, r->p + r->pos, n);
    r->pos += n;
    return 0;
}

static int take_u32(reader *r, uint32_t *v) { return take(r, v, 4); }

void golden_free(golden *g) {
    if (!g) return;
    for (int i = 0; i < g->n_taps; i++) {
        free(g->taps[i].name);
        free(g->taps[i].data);
    }
    free(g->taps);
    free(g->prompt);
    free(g->prompt_ids);
    free(g->cont_ids);
    free(g->raw);
    memset(g, 0, sizeof *g);
}

int golden_find(const golden *g, const char *name) {
    for (int i = 0; i < g->n_taps; i++)
        if (!strcmp(g->taps[i].name, name)) return i;
    return -1;
}

/* a one-line message (escaped: names and the path may hold anything), then fail */
#define BAD(...)                                                      \
    do {                                                              \
        char raw_msg_[768];                                           \
        snprintf(raw_msg_, sizeof raw_msg_, __VA_ARGS__);             \
        tinyllm_printable(raw_msg_, strlen(raw_msg_), msg, cap);      \
        golden_free(g);                                               \
        return -1;                                                    \
    } while (0)

/* tap names are engine names: "embed", "3.attn_probs" */
static int is_tap_name(const char *s) {
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_')) return 0;
    return 1;
}

int golden_load(const char *path, golden *g, char *msg, size_t cap) {
    memset(g, 0, sizeof *g);
    char why[256];
    size_t size = 0;
    char *raw = read_regular_file(path, GOLDEN_MAX_BYTES, &size, why, sizeof why);
    if (!raw) {
        snprintf(msg, cap, "%s: %s (expected a golden file from tools/golden.py)", path, why);
        return -1;
    }
    return golden_parse((unsigned char *)raw, size, path, g, msg, cap);
}

int golden_parse(unsigned char *raw, size_t size, const char *path, golden *g, char *msg, size_t cap) {
    memset(g, 0, sizeof *g);
    g->raw = raw;
    reader r = {g->raw, size, 0};
    char magic[8];
    uint32_t version, reserved, n;
    if (take(&r, magic, 8) || memcmp(magic, "TLGOLD\0\0", 8)) BAD("%s: not a golden file (expected magic TLGOLD)", path);
    if (take_u32(&r, &version) || take_u32(&r, &reserved)) BAD("%s: truncated header", path);
    if (version != 1 && version != 2)
        BAD("%s: golden format version %u (expected 1 or 2; regenerate with make golden)", path, version);
    g->has_tolerances = version == 2;
    if (take(&r, g->sha256, 64)) BAD("%s: truncated header", path);
    g->sha256[64] = 0;
    if (take_u32(&r, &n) || n > r.size - r.pos) BAD("%s: truncated prompt", path);
    g->prompt = malloc((size_t)n + 1);
    if (!g->prompt) BAD("%s: out of memory", path);
    take(&r, g->prompt, n);
    g->prompt[n] = 0;
    for (int which = 0; which < 2; which++) {
        if (take_u32(&r, &n) || n > (r.size - r.pos) / 4) BAD("%s: truncated token list", path);
        int *ids = malloc(((size_t)n + 1) * sizeof *ids);
        if (!ids) BAD("%s: out of memory", path);
        take(&r, ids, (size_t)n * 4);
        if (which == 0) g->prompt_ids = ids, g->n_prompt = (int)n;
        else g->cont_ids = ids, g->n_cont = (int)n;
    }
    if (g->n_prompt < 1) BAD("%s: empty prompt (expected at least one token)", path);
    if (g->has_tolerances) {
        if (take_u32(&r, &n)) BAD("%s: truncated decisive count", path);
        if (n > (uint32_t)g->n_cont)
            BAD("%s: %u decisive tokens of a %d-token continuation (expected at most that)", path, n, g->n_cont);
        g->n_decisive = (int)n;
    }
    if (take_u32(&r, &n) || n > (r.size - r.pos) / 8) BAD("%s: truncated tap count", path);
    g->taps = calloc((size_t)n + 1, sizeof *g->taps);
    if (!g->taps) BAD("%s: out of memory", path);
    for (uint32_t i = 0; i < n; i++) {
        golden_tap *t = &g->taps[i];
        uint32_t len, nd = 0;
        if (take_u32(&r, &len) || len > 255 || len > r.size - r.pos) BAD("%s: tap %u: bad name", path, i);
        t->name = malloc(len + 1);
        if (!t->name) BAD("%s: out of memory", path);
        g->n_taps = (int)i + 1;
        take(&r, t->name, len);
        t->name[len] = 0;
        if (!len || strlen(t->name) != len || !is_tap_name(t->name))
            BAD("%s: tap %u: '%s' is not a tap name (expected lower-case letters, digits, '.' and '_')", path, i,
                t->name);
        if (take_u32(&r, &nd) || nd < 1 || nd > 3) BAD("%s: tap %s: %u dims (expected 1 to 3)", path, t->name, nd);
        t->n_dims = (int)nd;
        t->n = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint64_t v;
            if (take(&r, &v, 8) || v == 0 || v > (1u << 30) || (uint64_t)t->n > (UINT64_C(1) << 34) / v)
                BAD("%s: tap %s: bad dimension", path, t->name);
            t->dims[d] = (int64_t)v;
            t->n *= (int64_t)v;
        }
        if ((uint64_t)t->n > (r.size - r.pos) / 4) BAD("%s: tap %s: data past the end of the file", path, t->name);
        t->data = malloc((size_t)t->n * sizeof(float));
        if (!t->data) BAD("%s: out of memory", path);
        take(&r, t->data, (size_t)t->n * 4);
        if (g->has_tolerances && (take(&r, &t->tol, 8) || !(t->tol >= 0 && t->tol < 1e30)))
            BAD("%s: tap %s: missing or bad tolerance (expected a finite value >= 0)", path, t->name);
    }
    g->n_taps = (int)n;
    if (r.pos != r.size) BAD("%s: %zu bytes after the last tap (expected none)", path, r.size - r.pos);
    if (g->n_taps == 0 && g->n_cont == 0)
        BAD("%s: no taps and no continuation tokens: it verifies nothing (expected at least one of them)", path);
    return 0;
}
