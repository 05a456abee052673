/* Byte-level BPE (bpe.h). The vocabulary is read once into: each token's
 * bytes (its alphabet characters mapped back), a hash from bytes to id, and
 * a hash from an adjacent pair of ids to its merge (rank, merged id). Encoding
 * a piece starts from one symbol per byte and merges the pair of lowest rank
 * first, with a heap of candidate pairs: O(n log n) in the piece's length,
 * so one long word cannot stall it. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "bpe.h"

#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "names.h"

/* ------------------------------------------------- pre-tokenizers -- */
/* Each pre-tokenizer is a list of expressions (docs/formats.md): every
 * expression splits every current fragment into its matches and the text
 * between them. */
#define GPT2_SPLIT "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define LLAMA3_HEAD "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
#define LLAMA3_TAIL "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

typedef struct {
    const char *names;        /* the tokenizer.ggml.pre values, '|'-separated */
    const char *exprs[4];     /* NULL-terminated */
    int ignore_merges;        /* a piece that is a token is emitted whole */
} pre_tokenizer;

static const pre_tokenizer PRE_TOKENIZERS[] = {
    {"gpt-2|gpt2|phi-2|roberta-bpe|jina-v1-en|jina-v2-code|olmo|refact|starcoder", {GPT2_SPLIT}, 0},
    {"smollm|codeshell|exaone|minerva", {"\\p{N}", GPT2_SPLIT}, 0},
    {"llama-bpe|llama3|llama-v3|falcon3", {LLAMA3_HEAD "\\p{N}{1,3}" LLAMA3_TAIL}, 1},
    {"qwen2|stablelm2", {LLAMA3_HEAD "\\p{N}" LLAMA3_TAIL}, 0},
};
#define N_PRE (sizeof PRE_TOKENIZERS / sizeof PRE_TOKENIZERS[0])

static int name_in_list(const char *list, gguf_str name) {
    for (const char *p = list; *p;) {
        const char *end = strchr(p, '|');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == name.len && memcmp(p, name.ptr, n) == 0) return 1;
        p += n + (end != NULL);
    }
    return 0;
}

/* ------------------------------------------------------- hashing -- */

static uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static uint64_t hash_pair(int a, int b) {
    uint64_t x = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33, x *= 0xc4ceb9fe1a85ec53ull, x ^= x >> 33;
    return x;
}

typedef struct {
    int left, right, rank, merged; /* left < 0: an empty slot */
} merge_slot;

struct bpe {
    int n_vocab;
    unsigned char **bytes;    /* (n_vocab) each token's bytes */
    size_t *n_bytes;          /* (n_vocab) */
    int *token_slots;         /* (token_cap) open addressing: token id + 1, 0 empty */
    size_t token_cap;
    merge_slot *merges;       /* (merge_cap) open addressing */
    size_t merge_cap;
    int byte_token[256];      /* the token of each single byte, -1 if none */
    int *specials;            /* control and user-defined tokens, longest first */
    int n_specials;
    unsigned char special_first[32]; /* bit set: the first bytes of the specials */
    pcre2_code *exprs[4];
    int n_exprs, ignore_merges;
    char pre_name[48];
};

static int token_find(const bpe *b, const unsigned char *p, size_t n) {
    for (size_t i = hash_bytes(p, n) & (b->token_cap - 1);; i = (i + 1) & (b->token_cap - 1)) {
        int id = b->token_slots[i] - 1;
        if (id < 0) return -1;
        if (b->n_bytes[id] == n && memcmp(b->bytes[id], p, n) == 0) return id;
    }
}

static const merge_slot *merge_find(const bpe *b, int left, int right) {
    if (!b->merge_cap) return NULL;
    for (size_t i = hash_pair(left, right) & (b->merge_cap - 1);; i = (i + 1) & (b->merge_cap - 1)) {
        const merge_slot *s = &b->merges[i];
        if (s->left < 0) return NULL;
        if (s->left == left && s->right == right) return s;
    }
}

/* ------------------------------------------------- byte alphabet -- */
/* GPT-2's bytes-to-unicode: bytes 33-126, 161-172, 174-255 are their own
 * code points; the other 68, in order, are U+0100, U+0101, ... */
static int byte_of_codepoint(uint32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return (int)cp;
    if (cp < 256 || cp >= 256 + 68) return -1;
    int k = (int)cp - 256;
    for (int byte = 0; byte < 256; byte++) {
        int own = (byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255);
        if (!own && k-- == 0) return byte;
    }
    return -1;
}

/* A token string (UTF-8 of alphabet characters) to its bytes; -1 when it
 * holds a character outside the alphabet (added tokens keep their text). */
static long alphabet_to_bytes(const char *s, size_t len, unsigned char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        int k;
        if (c < 0x80) cp = c, k = 1;
        else if ((c & 0xe0) == 0xc0 && i + 1 < len) cp = (uint32_t)(c & 0x1f) << 6 | (s[i + 1] & 0x3f), k = 2;
        else return -1;
        int byte = byte_of_codepoint(cp);
        if (byte < 0) return -1;
        out[n++] = (unsigned char)byte;
        i += (size_t)k;
    }
    return (long)n;
}

/* ---------------------------------------------------------- build -- */

void bpe_free(bpe *b) {
    if (!b) return;
    if (b->bytes)
        for (int i = 0; i < b->n_vocab; i++) free(b->bytes[i]);
    free(b->bytes);
    free(b->n_bytes);
    free(b->token_slots);
    free(b->merges);
    free(b->specials);
    for (int i = 0; i < b->n_exprs; i++) pcre2_code_free(b->exprs[i]);
    free(b);
}

static size_t pow2_above(size_t n) {
    size_t c = 16;
    while (c < 2 * n) c *= 2;
    return c;
}

static int by_length_desc(const void *a, const void *b, void *ctx) {
    const bpe *v = ctx;
    size_t la = v->n_bytes[*(const int *)a], lb = v->n_bytes[*(const int *)b];
    return la < lb ? 1 : la > lb ? -1 : *(const int *)a - *(const int *)b;
}

static tinyllm_status build_vocab(bpe *b, const gguf_file *f, tinyllm_error *err) {
    const gguf_kv *tok = gguf_find_kv(f, KEY_TOK_TOKENS), *types = gguf_find_kv(f, KEY_TOK_TYPES);
    if (!tok || tok->type != GGUF_ARRAY || tok->elem_type != GGUF_STRING)
        return set_error(err, TINYLLM_ERR_TOKENIZER, "%s: '%s' is missing or not a string array (expected the vocabulary)",
                         f->path, KEY_TOK_TOKENS);
    if (tok->n != (uint64_t)b->n_vocab)
        return set_error(err, TINYLLM_ERR_TOKENIZER,
                         "%s: the tokenizer has %llu tokens but the model's vocabulary (token_embd rows) is %d "
                         "(expected equal)", f->path, (unsigned long long)tok->n, b->n_vocab);
    if (types && (types->type != GGUF_ARRAY || !gguf_value_is_int(types->elem_type) || types->n != tok->n))
        return set_error(err, TINYLLM_ERR_TOKENIZER, "%s: '%s' must be an integer array of %llu entries", f->path,
                         KEY_TOK_TYPES, (unsigned long long)tok->n);
    gguf_str *s = malloc((size_t)tok->n * sizeof *s);
    b->bytes = calloc((size_t)b->n_vocab, sizeof *b->bytes);
    b->n_bytes = calloc((size_t)b->n_vocab, sizeof *b->n_bytes);
    b->token_cap = pow2_above((size_t)b->n_vocab);
    b->token_slots = calloc(b->token_cap, sizeof *b->token_slots);
    b->specials = malloc((size_t)b->n_vocab * sizeof *b->specials);
    if (!s || !b->bytes || !b->n_bytes || !b->token_slots || !b->specials) {
        free(s);
        return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory for the vocabulary", f->path);
    }
    gguf_array_strings(tok, s);
    for (int i = 0; i < 256; i++) b->byte_token[i] = -1;
    for (int id = 0; id < b->n_vocab; id++) {
        int type = types ? (int)gguf_array_int(types, (uint64_t)id) : 1;
        int special = type == 3 || type == 4; /* control, user-defined: their text as it is */
        unsigned char *p = malloc(s[id].len ? s[id].len : 1);
        if (!p) {
            free(s);
            return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory for the vocabulary", f->path);
        }
        long n = special ? -1 : alphabet_to_bytes(s[id].ptr, s[id].len, p);
        if (n < 0 && !special) {
            char shown[48];
            tinyllm_printable(s[id].ptr, s[id].len, shown, sizeof shown);
            free(p), free(s);
            return set_error(err, TINYLLM_ERR_TOKENIZER,
                             "%s: '%s'[%d] = '%s' is not in GPT-2's byte alphabet (expected UTF-8 of the 256 byte "
                             "characters, or a control / user-defined token type)",
                             f->path, KEY_TOK_TOKENS, id, shown);
        }
        if (n < 0) { /* control and user-defined tokens: the text itself */
            memcpy(p, s[id].ptr, s[id].len);
            n = (long)s[id].len;
        }
        b->bytes[id] = p;
        b->n_bytes[id] = (size_t)n;
        if (special && n > 0) {
            b->specials[b->n_specials++] = id;
            b->special_first[p[0] >> 3] |= (unsigned char)(1u << (p[0] & 7));
        }
        if (special) continue; /* found only by the literal split */
        if (n == 1 && b->byte_token[p[0]] < 0) b->byte_token[p[0]] = id;
        size_t i = hash_bytes(p, (size_t)n) & (b->token_cap - 1);
        for (; b->token_slots[i]; i = (i + 1) & (b->token_cap - 1)) {
            int other = b->token_slots[i] - 1;
            if (b->n_bytes[other] == (size_t)n && memcmp(b->bytes[other], p, (size_t)n) == 0) {
                char shown[48];
                free(s);
                return set_error(err, TINYLLM_ERR_TOKENIZER, "%s: '%s'[%d] = '%s' repeats token %d (expected each once)",
                                 f->path, KEY_TOK_TOKENS, id,
                                 tinyllm_printable((const char *)p, (size_t)n, shown, sizeof shown), other);
            }
        }
        b->token_slots[i] = id + 1;
    }
    free(s);
    for (int byte = 0; byte < 256; byte++)
        if (b->byte_token[byte] < 0)
            return set_error(err, TINYLLM_ERR_TOKENIZER,
                             "%s: '%s' has no token for byte 0x%02X (expected all 256 bytes: a byte-level vocabulary)",
                             f->path, KEY_TOK_TOKENS, byte);
    qsort_r(b->specials, (size_t)b->n_specials, sizeof *b->specials, by_length_desc, b);
    return TINYLLM_OK;
}

static tinyllm_status build_merges(bpe *b, const gguf_file *f, tinyllm_error *err) {
    const gguf_kv *mk = gguf_find_kv(f, KEY_TOK_MERGES);
    if (!mk || mk->type != GGUF_ARRAY || mk->elem_type != GGUF_STRING)
        return set_error(err, TINYLLM_ERR_TOKENIZER, "%s: '%s' is missing or not a string array (expected \"a b\" merges)",
                         f->path, KEY_TOK_MERGES);
    if (mk->n > (1u << 24))
        return set_error(err, TINYLLM_ERR_TOKENIZER, "%s: '%s' has %llu merges (expected at most 16777216)", f->path,
                         KEY_TOK_MERGES, (unsigned long long)mk->n);
    gguf_str *s = malloc((size_t)(mk->n ? mk->n : 1) * sizeof *s);
    b->merge_cap = pow2_above((size_t)mk->n);
    b->merges = malloc(b->merge_cap * sizeof *b->merges);
    unsigned char *buf = malloc(2 * TINYLLM_DETOK_MAX + 8);
    if (!s || !b->merges || !buf) {
        free(s), free(buf);
        return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory for the merges", f->path);
    }
    for (size_t i = 0; i < b->merge_cap; i++) b->merges[i].left = -1;
    gguf_array_strings(mk, s);
    tinyllm_status st = TINYLLM_OK;
    for (uint64_t r = 0; r < mk->n; r++) {
        const char *sp = memchr(s[r].ptr, ' ', s[r].len);
        if (!sp || memchr(sp + 1, ' ', s[r].len - (size_t)(sp - s[r].ptr) - 1)) {
            char shown[48];
            st = set_error(err, TINYLLM_ERR_TOKENIZER, "%s: '%s'[%llu] = '%s' (expected \"left right\" with exactly one space)",
                           f->path, KEY_TOK_MERGES, (unsigned long long)r,
                           tinyllm_printable(s[r].ptr, s[r].len, shown, sizeof shown));
            break;
        }
        long nl = -1, nr = -1;
        if (s[r].len < 2 * TINYLLM_DETOK_MAX) {
            nl = alphabet_to_bytes(s[r].ptr, (size_t)(sp - s[r].ptr), buf);
            nr = nl < 0 ? -1 : alphabet_to_bytes(sp + 1, s[r].len - (size_t)(sp - s[r].ptr) - 1, buf + nl);
        }
        int left = nl > 0 ? token_find(b, buf, (size_t)nl) : -1;
        int right = nr > 0 ? token_find(b, buf + nl, (size_t)nr) : -1;
        int merged = left >= 0 && right >= 0 ? token_find(b, buf, (size_t)(nl + nr)) : -1;
        if (merged < 0) {
            char shown[48];
            st = set_error(err, TINYLLM_ERR_TOKENIZER,
                           "%s: '%s'[%llu] = '%s' is not two tokens whose concatenation is a token (expected \"a b\" "
                           "of the vocabulary)",
                           f->path, KEY_TOK_MERGES, (unsigned long long)r,
                           tinyllm_printable(s[r].ptr, s[r].len, shown, sizeof shown));
            break;
        }
        size_t i = hash_pair(left, right) & (b->merge_cap - 1);
        while (b->merges[i].left >= 0 && !(b->merges[i].left == left && b->merges[i].right == right))
            i = (i + 1) & (b->merge_cap - 1);
        if (b->merges[i].left < 0) b->merges[i] = (merge_slot){left, right, (int)r, merged}; /* lowest rank wins */
    }
    free(s), free(buf);
    return st;
}

static tinyllm_status build_pre(bpe *b, const gguf_file *f, tinyllm_error *err) {
    gguf_str name = {"gpt-2", 5};
    int rc = gguf_get_string(f, KEY_TOK_PRE, &name);
    if (rc == -2) return set_error(err, TINYLLM_ERR_TOKENIZER, "%s: '%s' must be a string", f->path, KEY_TOK_PRE);
    if (rc == -1) name = (gguf_str){"gpt-2", 5}; /* files from before the key: GPT-2's */
    const pre_tokenizer *pre = NULL;
    for (size_t i = 0; i < N_PRE && !pre; i++)
        if (name_in_list(PRE_TOKENIZERS[i].names, name)) pre = &PRE_TOKENIZERS[i];
    char shown[48];
    tinyllm_printable(name.ptr, name.len, shown, sizeof shown);
    if (!pre)
        return set_error(err, TINYLLM_ERR_UNSUPPORTED,
                         "%s: pre-tokenizer '%s' is not supported (expected gpt-2, smollm, llama-bpe or qwen2)", f->path,
                         shown);
    snprintf(b->pre_name, sizeof b->pre_name, "%s", shown);
    b->ignore_merges = pre->ignore_merges;
    for (int i = 0; pre->exprs[i]; i++) {
        int code;
        PCRE2_SIZE at;
        b->exprs[i] = pcre2_compile((PCRE2_SPTR)pre->exprs[i], PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code,
                                    &at, NULL);
        if (!b->exprs[i]) return set_error(err, TINYLLM_ERR_TOKENIZER, "pre-tokenizer '%s': PCRE2 error %d", shown, code);
        b->n_exprs = i + 1;
        pcre2_jit_compile(b->exprs[i], PCRE2_JIT_COMPLETE); /* without JIT (unsupported CPU) it still matches */
    }
    return TINYLLM_OK;
}

tinyllm_status bpe_build(const gguf_file *f, int n_vocab, bpe **out, tinyllm_error *err) {
    *out = NULL;
    bpe *b = calloc(1, sizeof *b);
    if (!b) return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory for the tokenizer", f->path);
    b->n_vocab = n_vocab;
    tinyllm_status st;
    if ((st = build_vocab(b, f, err)) || (st = build_merges(b, f, err)) || (st = build_pre(b, f, err))) {
        bpe_free(b);
        return st;
    }
    *out = b;
    return TINYLLM_OK;
}

const unsigned char *bpe_token_bytes(const bpe *b, int id, size_t *len) {
    if (!b || id < 0 || id >= b->n_vocab) return NULL;
    *len = b->n_bytes[id];
    return b->bytes[id];
}

const char *bpe_pre_name(const bpe *b) { return b ? b->pre_name : ""; }

/* -------------------------------------------------------- encoding -- */

typedef struct {
    int *ids;
    size_t n, cap;
    int failed;
} id_list;

static void push_id(id_list *l, int id) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        int *p = realloc(l->ids, cap * sizeof *p);
        if (!p) {
            l->failed = 1;
            return;
        }
        l->ids = p, l->cap = cap;
    }
    l->ids[l->n++] = id;
}

/* A candidate merge of symbol `left` with the symbol after it. */
typedef struct {
    int rank, left, right_id, left_id;
} candidate;

static int cand_less(const candidate *a, const candidate *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static void heap_push(candidate *h, size_t *n, candidate c) {
    size_t i = (*n)++;
    while (i && cand_less(&c, &h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static candidate heap_pop(candidate *h, size_t *n) {
    candidate top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(&h[c + 1], &h[c])) c++;
        if (!cand_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

/* The symbols of one piece (a linked list over its bytes) and the heap of
 * candidate merges, grown to the longest piece and reused. */
typedef struct {
    int *id, *next, *prev;
    candidate *heap;
    size_t cap;
} workspace;

static int workspace_fit(workspace *w, size_t n) {
    if (n <= w->cap) return 0;
    size_t cap = n < 256 ? 256 : 2 * n;
    free(w->id), free(w->next), free(w->prev), free(w->heap);
    w->id = malloc(cap * sizeof *w->id);
    w->next = malloc(cap * sizeof *w->next);
    w->prev = malloc(cap * sizeof *w->prev);
    w->heap = malloc(2 * cap * sizeof *w->heap); /* each merge adds at most two candidates */
    w->cap = w->id && w->next && w->prev && w->heap ? cap : 0;
    return w->cap ? 0 : -1;
}

static void workspace_free(workspace *w) { free(w->id), free(w->next), free(w->prev), free(w->heap); }

/* One pre-tokenized piece: its bytes as symbols, merged by rank. */
static void encode_piece(const bpe *b, const unsigned char *p, size_t n, workspace *w, id_list *out) {
    if (b->ignore_merges) {
        int whole = token_find(b, p, n);
        if (whole >= 0) {
            push_id(out, whole);
            return;
        }
    }
    if (workspace_fit(w, n)) {
        out->failed = 1;
        return;
    }
    int *id = w->id, *next = w->next, *prev = w->prev;
    candidate *heap = w->heap;
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) {
        id[i] = b->byte_token[p[i]];
        next[i] = i + 1 < n ? (int)i + 1 : -1;
        prev[i] = (int)i - 1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        const merge_slot *m = id[i] >= 0 && id[i + 1] >= 0 ? merge_find(b, id[i], id[i + 1]) : NULL;
        if (m) heap_push(heap, &nh, (candidate){m->rank, (int)i, id[i + 1], id[i]});
    }
    while (nh) {
        candidate c = heap_pop(heap, &nh);
        int l = c.left, r = next[l];
        /* stale: the left symbol or its neighbour changed since */
        if (id[l] != c.left_id || r < 0 || id[r] != c.right_id) continue;
        const merge_slot *m = merge_find(b, id[l], id[r]);
        if (!m || m->rank != c.rank) continue;
        id[l] = m->merged;
        id[r] = -2; /* gone */
        next[l] = next[r];
        if (next[r] >= 0) prev[next[r]] = l;
        if (prev[l] >= 0 && id[prev[l]] >= 0) {
            const merge_slot *pm = merge_find(b, id[prev[l]], id[l]);
            if (pm) heap_push(heap, &nh, (candidate){pm->rank, prev[l], id[l], id[prev[l]]});
        }
        if (next[l] >= 0 && id[next[l]] >= 0) {
            const merge_slot *nm = merge_find(b, id[l], id[next[l]]);
            if (nm) heap_push(heap, &nh, (candidate){nm->rank, l, id[next[l]], id[l]});
        }
    }
    for (int i = 0; i >= 0; i = next[i]) push_id(out, id[i]); /* -1: a byte without a token of its own */
}

/* Fragments [off, off + len) of the text, split by each expression in turn. */
typedef struct {
    size_t off, len;
} span;

typedef struct {
    span *v;
    size_t n, cap;
} span_list;

static int push_span(span_list *l, size_t off, size_t len) {
    if (!len) return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        span *p = realloc(l->v, cap * sizeof *p);
        if (!p) return -1;
        l->v = p, l->cap = cap;
    }
    l->v[l->n++] = (span){off, len};
    return 0;
}

static int split_by(const pcre2_code *re, pcre2_match_data *md, const char *text, const span_list *in,
                    span_list *out) {
    out->n = 0;
    for (size_t k = 0; k < in->n; k++) {
        const char *s = text + in->v[k].off;
        size_t len = in->v[k].len, at = 0, done = 0;
        while (at < len) {
            int rc = pcre2_match(re, (PCRE2_SPTR)s, len, at, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc < 0) break; /* no further match (or a resource limit: the rest stays one piece) */
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t m0 = ov[0], m1 = ov[1];
            if (m1 == m0) { /* an empty match: step one character */
                at = m0 + 1;
                while (at < len && ((unsigned char)s[at] & 0xc0) == 0x80) at++;
                continue;
            }
            if (push_span(out, in->v[k].off + done, m0 - done) || push_span(out, in->v[k].off + m0, m1 - m0))
                return -1;
            done = at = m1;
        }
        if (push_span(out, in->v[k].off + done, len - done)) return -1;
    }
    return 0;
}

/* The pre-tokenizer's pieces of text[off, off + len), each BPE-encoded. */
typedef struct {
    workspace w;
    span_list a, c;
    pcre2_match_data *md;
} encoder;

static int encode_fragment(const bpe *b, encoder *e, const char *text, size_t off, size_t len, id_list *out) {
    e->a.n = 0;
    if (push_span(&e->a, off, len)) return -1;
    for (int i = 0; i < b->n_exprs; i++) {
        if (split_by(b->exprs[i], e->md, text, &e->a, &e->c)) return -1;
        span_list t = e->a;
        e->a = e->c, e->c = t;
    }
    for (size_t k = 0; k < e->a.n && !out->failed; k++)
        encode_piece(b, (const unsigned char *)text + e->a.v[k].off, e->a.v[k].len, &e->w, out);
    return out->failed ? -1 : 0;
}

tinyllm_status bpe_encode(const bpe *b, const char *text, size_t len, int **ids, size_t *n, tinyllm_error *err) {
    id_list out = {0};
    encoder e = {0};
    /* one match block serves every expression: sized for the one with the most groups */
    uint32_t pairs = 1;
    for (int i = 0; i < b->n_exprs; i++) {
        uint32_t c = 0;
        pcre2_pattern_info(b->exprs[i], PCRE2_INFO_CAPTURECOUNT, &c);
        if (c + 1 > pairs) pairs = c + 1;
    }
    e.md = pcre2_match_data_create(pairs, NULL);
    int failed = !e.md;
    size_t start = 0;
    /* control and user-defined tokens found literally (longest first) split the text */
    for (size_t i = 0; i < len && !failed;) {
        int found = -1;
        if (b->special_first[(unsigned char)text[i] >> 3] >> ((unsigned char)text[i] & 7) & 1)
            for (int k = 0; k < b->n_specials && found < 0; k++) {
                int id = b->specials[k];
                size_t m = b->n_bytes[id];
                if (m <= len - i && memcmp(text + i, b->bytes[id], m) == 0) found = id;
            }
        if (found < 0) {
            i++;
            continue;
        }
        if (i > start) failed = encode_fragment(b, &e, text, start, i - start, &out);
        push_id(&out, found);
        i += b->n_bytes[found];
        start = i;
    }
    if (!failed && start < len) failed = encode_fragment(b, &e, text, start, len - start, &out);
    failed |= out.failed;
    pcre2_match_data_free(e.md);
    workspace_free(&e.w);
    free(e.a.v), free(e.c.v);
    tinyllm_status st = TINYLLM_OK;
    if (failed) st = set_error(err, TINYLLM_ERR_NOMEM, "tokenizer: out of memory encoding %zu bytes", len);
    for (size_t i = 0; !st && i < out.n; i++)
        if (out.ids[i] < 0)
            st = set_error(err, TINYLLM_ERR_TOKENIZER,
                           "tokenizer: a byte of the text has no token (expected a byte-level vocabulary of all 256)");
    if (st) {
        free(out.ids);
        return st;
    }
    *ids = out.ids;
    *n = out.n;
    return TINYLLM_OK;
}
