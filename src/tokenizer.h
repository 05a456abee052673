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

#endif
