/* Byte-level BPE (tokenizer.ggml.model = "gpt2": GPT-2, SmolLM, Llama 3,
 * Qwen2): GPT-2's byte alphabet, merges applied by rank, and the named
 * pre-tokenizer's regular expressions run by PCRE2. Facts: docs/formats.md
 * ("Byte-level BPE"). */
#ifndef TINYLLM_BPE_H
#define TINYLLM_BPE_H

#include <stddef.h>

#include "gguf.h"
#include "tinyllm.h"

typedef struct bpe bpe;

/* The vocabulary, merges and pre-tokenizer of f (n_vocab: the model's
 * token_embd rows, which the tokens must number). */
tinyllm_status bpe_build(const gguf_file *f, int n_vocab, bpe **out, tinyllm_error *err);
void bpe_free(bpe *b);

/* ids (*n of them, malloc'ed, the caller frees) = text (valid UTF-8) encoded:
 * control and user-defined tokens found literally split out first, then the
 * pre-tokenizer's pieces, each merged by rank. */
tinyllm_status bpe_encode(const bpe *b, const char *text, size_t len, int **ids, size_t *n, tinyllm_error *err);

/* The bytes token id stands for (its alphabet characters mapped back), and
 * their count in *len; NULL for an id out of range. */
const unsigned char *bpe_token_bytes(const bpe *b, int id, size_t *len);

/* The pre-tokenizer's name, as the file gives it ("gpt-2", "qwen2", ...). */
const char *bpe_pre_name(const bpe *b);

#endif
