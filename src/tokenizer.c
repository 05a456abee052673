/* Tokenizer: building it from a GGUF file, encoding, and the public
 * tokenize / detokenize / streaming API. */
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "error.h"
#include "names.h"
#include "spm_proto.h"
#include "spm_wrapper.h"

struct tokenizer {
    spm_processor *sp;    // SentencePiece, or
    bpe *bpe;             // byte-level BPE (tokenizer.ggml.model "gpt2")
    int n_vocab;          // the model's vocabulary: ids the tokenizer may hand out
    int n_pieces;         // SentencePiece's: n_vocab, or n_vocab + 1 (an <unk> outside the vocabulary)
    int unk_substitute;   // with an <unk> outside: the id unknown text becomes, or -1 for an error
    int bos, eos;
    int add_bos;
    int add_eos;          // byte-level BPE: the file's add_eos_token (an EOS after the text)
    char **pieces;        // (n_pieces) NUL-terminated
    unsigned char *kinds; // (n_pieces) enum spm_piece_kind
    const char *source;
    char source_buf[64];
};

void tokenizer_free(tokenizer *t) {
    if (!t) return;
    if (t->pieces)
        for (int i = 0; i < t->n_pieces; i++) free(t->pieces[i]);
    free(t->pieces);
    free(t->kinds);
    spm_free(t->sp);
    bpe_free(t->bpe);
    free(t);
}

/* tokenizer.ggml.token_type (1 normal, 2 unknown, 3 control, 4 user-defined,
 * 5 unused, 6 byte) as the kinds the detokenizer knows */
static unsigned char kind_of_type(int64_t type) {
    switch (type) {
    case 2: return SPM_UNKNOWN;
    case 3: return SPM_CONTROL;
    case 5: return SPM_UNUSED;
    default: return SPM_NORMAL;
    }
}

/* A byte-level BPE vocabulary: pieces are the file's token strings. */
static tinyllm_status build_bpe(const gguf_file *f, int n_vocab, tokenizer *t, tinyllm_error *err) {
    tinyllm_status st = bpe_build(f, n_vocab, &t->bpe, err);
    if (st) return st;
    const gguf_kv *tok = gguf_find_kv(f, KEY_TOK_TOKENS), *types = gguf_find_kv(f, KEY_TOK_TYPES);
    t->n_vocab = t->n_pieces = n_vocab;
    t->unk_substitute = -1;
    t->pieces = calloc((size_t)n_vocab, sizeof *t->pieces);
    t->kinds = malloc((size_t)n_vocab);
    gguf_str *s = malloc((size_t)n_vocab * sizeof *s);
    if (!t->pieces || !t->kinds || !s) {
        free(s);
        return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory for the vocabulary", f->path);
    }
    gguf_array_strings(tok, s);
    for (int i = 0; i < n_vocab; i++) {
        if (s[i].len > TOKENIZER_MAX_PIECE_BYTES) {
            free(s);
            return set_error(err, TINYLLM_ERR_TOKENIZER, "%s: token %d is %llu bytes long (expected at most %d)",
                             f->path, i, (unsigned long long)s[i].len, TOKENIZER_MAX_PIECE_BYTES);
        }
        t->pieces[i] = strndup(s[i].ptr, s[i].len);
        if (!t->pieces[i]) {
            free(s);
            return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory for the vocabulary", f->path);
        }
        t->kinds[i] = kind_of_type(types ? gguf_array_int(types, (uint64_t)i) : 1);
    }
    free(s);
    int64_t id;
    t->bos = t->eos = -1;
    if (gguf_get_int(f, KEY_TOK_BOS, &id) == 0 && id >= 0 && id < n_vocab) t->bos = (int)id;
    if (gguf_get_int(f, KEY_TOK_EOS, &id) == 0 && id >= 0 && id < n_vocab) t->eos = (int)id;
    t->add_bos = 0; /* byte-level BPE adds none unless the file says so (Llama 3 does) */
    if (gguf_get_bool(f, KEY_TOK_ADD_BOS, &t->add_bos) == -2) t->add_bos = 0;
    if (gguf_get_bool(f, KEY_TOK_ADD_EOS, &t->add_eos) == -2) t->add_eos = 0;
    snprintf(t->source_buf, sizeof t->source_buf, "byte-level BPE, pre-tokenizer %s", bpe_pre_name(t->bpe));
    t->source = t->source_buf;
    return TINYLLM_OK;
}

tinyllm_status tokenizer_build(const gguf_file *f, int n_vocab, tokenizer **out, tinyllm_error *err) {
    *out = NULL;
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) return set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory for the tokenizer", f->path);
    tinyllm_status st = TINYLLM_OK;
    unsigned char *rebuilt = NULL;
    const void *proto;
    size_t proto_len;
    const gguf_kv *emb = gguf_find_kv(f, KEY_SP_MODEL);
    if (emb) {
        if (emb->type != GGUF_ARRAY || (emb->elem_type != GGUF_U8 && emb->elem_type != GGUF_I8)) {
            st = set_error(err, TINYLLM_ERR_TOKENIZER, "%s: '%s' must be a u8 array (the .model bytes)", f->path,
                           KEY_SP_MODEL);
            goto fail;
        }
        proto = emb->value;
        proto_len = emb->n;
        t->source = "embedded SentencePiece model";
    } else {
        gguf_str kind;
        int rc = gguf_get_string(f, KEY_TOK_MODEL, &kind);
        if (rc == -1) {
            st = set_error(err, TINYLLM_ERR_TOKENIZER,
                           "%s: no tokenizer (neither '%s' nor '%s'); expected a SentencePiece vocabulary", f->path,
                           KEY_SP_MODEL, KEY_TOK_MODEL);
            goto fail;
        }
        if (rc == 0 && gguf_str_eq(kind, "gpt2")) {
            if ((st = build_bpe(f, n_vocab, t, err))) goto fail;
            *out = t;
            return TINYLLM_OK;
        }
        if (rc || !gguf_str_eq(kind, "llama")) {
            char shown[48];
            st = set_error(err, TINYLLM_ERR_UNSUPPORTED,
                           "%s: tokenizer '%s' is not supported (expected \"llama\", SentencePiece BPE, or \"gpt2\", "
                           "byte-level BPE)",
                           f->path, rc ? "" : tinyllm_printable(kind.ptr, kind.len, shown, sizeof shown));
            goto fail;
        }
        if ((st = spm_proto_from_gguf(f, &rebuilt, &proto_len, err))) goto fail;
        proto = rebuilt;
        t->source = "rebuilt from tokenizer.ggml arrays";
    }
    char msg[256] = "";
    if (spm_load(proto, proto_len, &t->sp, msg, sizeof msg)) {
        st = set_error(err, TINYLLM_ERR_TOKENIZER, "%s: SentencePiece rejected the tokenizer: %s", f->path, msg);
        goto fail;
    }
    free(rebuilt);
    rebuilt = NULL;
    /* A character-level vocabulary (convert_nanogpt.py) has no unknown
     * token of its own: SentencePiece's required <unk> is one piece past the
     * model's rows, and text it would cover is an error (or, when the file
     * names an unknown token inside the vocabulary, becomes that token). */
    int n = spm_piece_count(t->sp);
    int unk_outside = n == n_vocab + 1 && spm_unk_id(t->sp) == n_vocab;
    if (n != n_vocab && !unk_outside) {
        st = set_error(err, TINYLLM_ERR_TOKENIZER,
                       "%s: the tokenizer has %d pieces but the model's vocabulary (token_embd rows) is %d "
                       "(expected equal, or one more when the last is <unk>)",
                       f->path, n, n_vocab);
        goto fail;
    }
    t->n_vocab = n_vocab;
    t->n_pieces = n;
    t->unk_substitute = -1;
    t->pieces = calloc((size_t)n, sizeof *t->pieces);
    t->kinds = malloc((size_t)n);
    if (!t->pieces || !t->kinds) {
        st = set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory for the vocabulary", f->path);
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        if (spm_piece(t->sp, i, &t->pieces[i])) {
            st = set_error(err, TINYLLM_ERR_NOMEM, "%s: out of memory for the vocabulary", f->path);
            goto fail;
        }
        if (strlen(t->pieces[i]) > TOKENIZER_MAX_PIECE_BYTES) {
            st = set_error(err, TINYLLM_ERR_TOKENIZER, "%s: token %d is %zu bytes long (expected at most %d)",
                           f->path, i, strlen(t->pieces[i]), TOKENIZER_MAX_PIECE_BYTES);
            goto fail;
        }
        t->kinds[i] = (unsigned char)spm_piece_kind(t->sp, i);
    }
    t->bos = spm_bos_id(t->sp);
    t->eos = spm_eos_id(t->sp);
    int64_t id;
    if (t->bos < 0 && gguf_get_int(f, KEY_TOK_BOS, &id) == 0 && id >= 0 && id < n) t->bos = (int)id;
    if (t->eos < 0 && gguf_get_int(f, KEY_TOK_EOS, &id) == 0 && id >= 0 && id < n) t->eos = (int)id;
    if (unk_outside && gguf_get_int(f, KEY_TOK_UNK, &id) == 0 && id >= 0 && id < n_vocab) t->unk_substitute = (int)id;
    t->add_bos = 1;
    if (gguf_get_bool(f, KEY_TOK_ADD_BOS, &t->add_bos) == -2) t->add_bos = 1;
    *out = t;
    return TINYLLM_OK;
fail:
    free(rebuilt);
    tokenizer_free(t);
    return st;
}

static int hexval(char c);

/* ----------------------------------------------------------- UTF-8 -- */

/* Length of the UTF-8 sequence a lead byte starts, 0 when it cannot lead. */
static int utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return 2;
    if (c >= 0xe0 && c <= 0xef) return 3;
    if (c >= 0xf0 && c <= 0xf4) return 4;
    return 0;
}

/* Offset of the first invalid byte, or -1 when all of s is valid UTF-8. */
static long utf8_first_invalid(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        int n = utf8_len(u[i]);
        if (!n || i + (size_t)n > len) return (long)i;
        for (int k = 1; k < n; k++)
            if ((u[i + k] & 0xc0) != 0x80) return (long)i;
        /* overlong 3/4-byte forms, surrogates, > U+10FFFF */
        if ((u[i] == 0xe0 && u[i + 1] < 0xa0) || (u[i] == 0xed && u[i + 1] >= 0xa0) ||
            (u[i] == 0xf0 && u[i + 1] < 0x90) || (u[i] == 0xf4 && u[i + 1] >= 0x90))
            return (long)i;
        i += (size_t)n;
    }
    return -1;
}

/* -------------------------------------------------------- encoding -- */

/* t is NULL when the model was loaded with skip_tokenizer. */
int tokenizer_bos(const tokenizer *t) { return t ? t->bos : -1; }
int tokenizer_eos(const tokenizer *t) { return t ? t->eos : -1; }
const char *tokenizer_source(const tokenizer *t) { return t ? t->source : "none"; }

static tinyllm_status no_tokenizer(tinyllm_error *err) {
    return set_error(err, TINYLLM_ERR_TOKENIZER, "tokenizer: the model was loaded with skip_tokenizer (token ids only)");
}

/* Ids past the model's vocabulary (the <unk> of a character-level
 * vocabulary) become the file's unknown token, or an error naming the first
 * text they cover. */
static tinyllm_status unknown_text(const tokenizer *t, const char *text, size_t len, int *ids, size_t n,
                                   tinyllm_error *err) {
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < t->n_vocab) continue;
        if (t->unk_substitute >= 0) {
            ids[i] = t->unk_substitute;
            continue;
        }
        size_t begin = 0, end = 0;
        char msg[128], shown[48];
        if (spm_piece_span(t->sp, text, len, i, &begin, &end, msg, sizeof msg) || end <= begin || end > len)
            return set_error(err, TINYLLM_ERR_TOKENIZER, "text: token %zu is not in the model's vocabulary", i);
        return set_error(err, TINYLLM_ERR_TOKENIZER,
                         "text: '%s' at byte %zu is not in the model's vocabulary of %d (a character-level "
                         "vocabulary without an unknown token; expected only its characters)",
                         tinyllm_printable(text + begin, end - begin, shown, sizeof shown), begin, t->n_vocab);
    }
    return TINYLLM_OK;
}

const char *tokenizer_piece(const tokenizer *t, int token) {
    if (!t || token < 0 || token >= t->n_vocab) return NULL;
    return t->pieces[token];
}

int tokenizer_token_bytes(const tokenizer *t, int token, char *out, size_t cap) {
    if (!t || token < 0 || token >= t->n_vocab) return -1;
    const char *piece = t->pieces[token];
    unsigned char buf[TOKENIZER_MAX_PIECE_BYTES + 1];
    const unsigned char *bytes = (const unsigned char *)piece;
    size_t n = strlen(piece);
    int kind = t->kinds[token];
    if (kind == SPM_CONTROL || kind == SPM_UNKNOWN || kind == SPM_UNUSED) {
        /* the piece text as it is */
    } else if (t->bpe) {
        bytes = bpe_token_bytes(t->bpe, token, &n);
    } else if (kind == SPM_BYTE) {
        int hi = n == 6 ? hexval(piece[3]) : -1, lo = hi >= 0 ? hexval(piece[4]) : -1;
        if (hi >= 0 && lo >= 0) buf[0] = (unsigned char)(hi * 16 + lo), bytes = buf, n = 1;
    } else {
        size_t k = 0;
        for (const char *p = piece; *p && k < sizeof buf; p++) {
            if ((unsigned char)p[0] == 0xe2 && (unsigned char)p[1] == 0x96 && (unsigned char)p[2] == 0x81) {
                buf[k++] = ' '; /* ▁ */
                p += 2;
            } else {
                buf[k++] = (unsigned char)*p;
            }
        }
        bytes = buf, n = k;
    }
    if (out && cap) {
        size_t m = n < cap - 1 ? n : cap - 1;
        memcpy(out, bytes, m);
        out[m] = 0;
    }
    return (int)n;
}

tinyllm_status tokenizer_tokenize(const tokenizer *t, const char *text, size_t len, int add_bos, int *tokens, int cap,
                                  int *n_out, tinyllm_error *err) {
    if (!n_out || (!text && len) || (cap > 0 && !tokens) || cap < 0)
        return set_error(err, TINYLLM_ERR_ARG, "tinyllm_tokenize: NULL or negative argument");
    *n_out = 0;
    long bad = utf8_first_invalid(text ? text : "", len);
    if (bad >= 0)
        return set_error(err, TINYLLM_ERR_ARG, "text: invalid UTF-8 at byte %ld (expected UTF-8 text)", bad);
    if (!t) return no_tokenizer(err);
    tinyllm_status st;
    int *ids = NULL;
    size_t n = 0;
    char msg[256] = "";
    if (t->bpe) {
        if (len && (st = bpe_encode(t->bpe, text, len, &ids, &n, err))) return st;
    } else if (len && spm_encode(t->sp, text, len, &ids, &n, msg, sizeof msg)) {
        return set_error(err, TINYLLM_ERR_TOKENIZER, "tokenizer: %s", msg);
    }
    if (!t->bpe && (st = unknown_text(t, text, len, ids, n, err))) {
        free(ids);
        return st;
    }
    /* byte-level BPE files say whether a BOS goes first (GPT-2: no; Llama 3: yes) */
    int bos = add_bos && t->bos >= 0 && (!t->bpe || t->add_bos);
    int eos = add_bos && t->eos >= 0 && t->bpe && t->add_eos; /* and whether an EOS goes last */
    if (n + (size_t)bos + (size_t)eos > (size_t)1 << 30) {
        free(ids);
        return set_error(err, TINYLLM_ERR_ARG, "text: too long to tokenize");
    }
    int total = (int)n + bos + eos;
    *n_out = total;
    if (total > cap) {
        free(ids);
        if (cap == 0 && !tokens) return TINYLLM_OK; /* a measuring call */
        return set_error(err, TINYLLM_ERR_ARG, "tinyllm_tokenize: %d tokens do not fit in %d", total, cap);
    }
    if (bos) tokens[0] = t->bos;
    if (n) memcpy(tokens + bos, ids, n * sizeof(int));
    if (eos) tokens[total - 1] = t->eos;
    free(ids);
    return TINYLLM_OK;
}

/* The bytes of tokens (control tokens leave none), NUL-terminated, malloc'ed. */
static int bpe_decode(const tokenizer *t, const int *tokens, int n, char **text, size_t *len) {
    size_t total = 0, k;
    for (int i = 0; i < n; i++)
        if (t->kinds[tokens[i]] != SPM_CONTROL) total += (bpe_token_bytes(t->bpe, tokens[i], &k), k);
    char *p = malloc(total + 1);
    if (!p) return -1;
    *len = 0;
    for (int i = 0; i < n; i++) {
        if (t->kinds[tokens[i]] == SPM_CONTROL) continue;
        const unsigned char *b = bpe_token_bytes(t->bpe, tokens[i], &k);
        memcpy(p + *len, b, k);
        *len += k;
    }
    p[*len] = 0;
    *text = p;
    return 0;
}

tinyllm_status tokenizer_detokenize(const tokenizer *t, const int *tokens, int n, char *out, size_t cap,
                                    size_t *len_out, tinyllm_error *err) {
    if ((!tokens && n) || n < 0 || !out || !cap)
        return set_error(err, TINYLLM_ERR_ARG, "tinyllm_detokenize: NULL or out-of-range argument");
    if (!t) return no_tokenizer(err);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= t->n_vocab)
            return set_error(err, TINYLLM_ERR_ARG, "tokens[%d] = %d is out of range (expected 0..%d)", i, tokens[i],
                             t->n_vocab - 1);
    char *text = NULL, msg[256] = "";
    size_t len = 0;
    if (t->bpe) {
        if (bpe_decode(t, tokens, n, &text, &len))
            return set_error(err, TINYLLM_ERR_NOMEM, "tinyllm_detokenize: out of memory for %d tokens", n);
    } else if (spm_decode(t->sp, tokens, (size_t)n, &text, &len, msg, sizeof msg)) {
        return set_error(err, TINYLLM_ERR_TOKENIZER, "tokenizer: %s", msg);
    }
    if (len_out) *len_out = len;
    if (len + 1 > cap) {
        free(text);
        return set_error(err, TINYLLM_ERR_ARG, "tinyllm_detokenize: %zu bytes do not fit in %zu", len + 1, cap);
    }
    memcpy(out, text, len + 1);
    free(text);
    return TINYLLM_OK;
}

void tinyllm_detok_init(tinyllm_detok *d, int strip_leading_space) {
    if (!d) return;
    memset(d, 0, sizeof *d);
    d->at_start = strip_leading_space != 0;
}

static const char REPLACEMENT[] = "\xef\xbf\xbd"; /* U+FFFD */

typedef struct {
    char *out;
    size_t cap, len;
    int overflow;
} sink;

static void emit(sink *s, const void *p, size_t n) {
    if (s->len + n + 1 > s->cap) {
        s->overflow = 1;
        return;
    }
    memcpy(s->out + s->len, p, n);
    s->len += n;
}

/* Feeds one byte through the UTF-8 hold-back: complete characters go out,
 * an incomplete one waits, a broken one becomes U+FFFD. */
static void push_byte(tinyllm_detok *d, sink *s, unsigned char c) {
    if (d->n_pending) {
        if ((c & 0xc0) == 0x80) {
            d->pending[d->n_pending++] = c;
            if (d->n_pending == utf8_len(d->pending[0])) {
                emit(s, d->pending, (size_t)d->n_pending);
                d->n_pending = 0;
            }
            return;
        }
        emit(s, REPLACEMENT, 3);
        d->n_pending = 0;
    }
    int n = utf8_len(c);
    if (n == 1)
        emit(s, &c, 1);
    else if (n == 0)
        emit(s, REPLACEMENT, 3);
    else {
        d->pending[0] = c;
        d->n_pending = 1;
    }
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int tokenizer_detok_push(const tokenizer *t, tinyllm_detok *d, int token, char *out, size_t cap,
                         tinyllm_error *err) {
    if (!d || !out || cap == 0) {
        set_error(err, TINYLLM_ERR_ARG, "detok_push: NULL model, state or buffer, or a zero-size buffer");
        return -1;
    }
    if (!t) {
        set_error(err, TINYLLM_ERR_TOKENIZER, "detok_push: the model was loaded without its tokenizer (skip_tokenizer)");
        return -1;
    }
    if (token < 0 || token >= t->n_vocab) {
        set_error(err, TINYLLM_ERR_ARG, "detok_push: token %d is out of range (expected 0..%d)", token, t->n_vocab - 1);
        return -1;
    }
    sink s = {out, cap, 0, 0};
    const char *piece = t->pieces[token];
    if (t->bpe) { /* the token's bytes, whatever they are; control tokens none */
        size_t k;
        const unsigned char *b = bpe_token_bytes(t->bpe, token, &k);
        if (t->kinds[token] != SPM_CONTROL)
            for (size_t i = 0; i < k; i++) push_byte(d, &s, b[i]);
        d->at_start = 0;
    } else switch (t->kinds[token]) {
    case SPM_CONTROL:
    case SPM_UNUSED:
        break;
    case SPM_BYTE: { /* "<0xAB>" */
        int hi = strlen(piece) == 6 ? hexval(piece[3]) : -1, lo = hi >= 0 ? hexval(piece[4]) : -1;
        if (hi >= 0 && lo >= 0) push_byte(d, &s, (unsigned char)(hi * 16 + lo));
        d->at_start = 0;
        break;
    }
    case SPM_UNKNOWN:
        for (const char *p = " \xe2\x81\x87 "; *p; p++) push_byte(d, &s, (unsigned char)*p);
        d->at_start = 0;
        break;
    default:
        for (const char *p = piece; *p; p++) {
            if ((unsigned char)p[0] == 0xe2 && (unsigned char)p[1] == 0x96 && (unsigned char)p[2] == 0x81) {
                if (!d->at_start) push_byte(d, &s, ' '); /* ▁ is a space */
                p += 2;
            } else {
                push_byte(d, &s, (unsigned char)*p);
            }
            d->at_start = 0;
        }
    }
    if (s.overflow) {
        set_error(err, TINYLLM_ERR_ARG, "detok_push: a buffer of %zu bytes is too small for token %d (expected %d)",
                  cap, token, TINYLLM_DETOK_MAX);
        return -1;
    }
    out[s.len] = 0;
    return (int)s.len;
}

int tinyllm_detok_flush(tinyllm_detok *d, char *out, size_t cap) {
    if (!d || !out || cap < 4) return -1;
    int n = 0;
    if (d->n_pending) {
        memcpy(out, REPLACEMENT, 3);
        n = 3;
    }
    d->n_pending = 0;
    out[n] = 0;
    return n;
}
