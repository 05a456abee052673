/* The model's tokenizer: SentencePiece (through spm_wrapper) loaded from the
 * embedded .model bytes, or rebuilt from the tokenizer.ggml.* arrays, plus a
 * table of pieces and kinds for streaming detokenization. */
#ifndef TINYLLM_TOKENIZER_H
#define TINYLLM_TOKENIZER_H

#include "gguf.h"
#include "tinyllm.h"

typedef struct tokenizer tokenizer;

/* n_vocab: the model's vocabulary (token_embd rows); the tokenizer must match. */
tinyllm_status tokenizer_build(const gguf_file *f, int n_vocab, tokenizer **out, tinyllm_error *err);
void tokenizer_free(tokenizer *t);

#define TOKENIZER_MAX_PIECE_BYTES 256

/* The public tokenizer functions (tinyllm.h) on the tokenizer itself (src/
 * tokens.c hands them the model's): t NULL means the model was loaded with
 * skip_tokenizer. Same arguments, results and messages as the API's. */
int tokenizer_bos(const tokenizer *t);
int tokenizer_eos(const tokenizer *t);
const char *tokenizer_source(const tokenizer *t);
const char *tokenizer_piece(const tokenizer *t, int token);
int tokenizer_token_bytes(const tokenizer *t, int token, char *out, size_t cap);
tinyllm_status tokenizer_tokenize(const tokenizer *t, const char *text, size_t len, int add_bos, int *tokens, int cap,
                                  int *n_out, tinyllm_error *err);
tinyllm_status tokenizer_detokenize(const tokenizer *t, const int *tokens, int n, char *out, size_t cap,
                                    size_t *len_out, tinyllm_error *err);
int tokenizer_detok_push(const tokenizer *t, tinyllm_detok *d, int token, char *out, size_t cap, tinyllm_error *err);

#endif
