/* Builds a SentencePiece ModelProto (serialized protobuf) from the GGUF
 * tokenizer.ggml.* arrays, for files that carry no .model bytes.
 * Field numbers: docs/formats.md. */
#ifndef TINYLLM_SPM_PROTO_H
#define TINYLLM_SPM_PROTO_H

#include <stddef.h>

#include "gguf.h"

/* On success *out is a malloc'd buffer of *len bytes. */
tinyllm_status spm_proto_from_gguf(const gguf_file *f, unsigned char **out, size_t *len, tinyllm_error *err);

#endif
