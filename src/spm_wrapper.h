/* The project's thin C wrapper over Debian's libsentencepiece (C++).
 * No exception crosses this boundary: every failure is a non-zero return
 * with a message in `msg`. */
#ifndef TINYLLM_SPM_WRAPPER_H
#define TINYLLM_SPM_WRAPPER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spm_processor spm_processor;

enum spm_piece_kind { SPM_NORMAL = 0, SPM_UNKNOWN, SPM_CONTROL, SPM_BYTE, SPM_UNUSED };

/* Loads a serialized ModelProto (the bytes of a .model file). */
int spm_load(const void *proto, size_t len, spm_processor **out, char *msg, size_t msg_cap);
void spm_free(spm_processor *p);

int spm_piece_count(const spm_processor *p);
int spm_bos_id(const spm_processor *p);
int spm_eos_id(const spm_processor *p);
int spm_unk_id(const spm_processor *p);
/* Copies piece `id` (NUL-terminated, malloc'd) into *out. */
int spm_piece(const spm_processor *p, int id, char **out);
int spm_piece_kind(const spm_processor *p, int id);

/* Encodes UTF-8 text into ids (malloc'd array in *ids, count in *n). */
int spm_encode(const spm_processor *p, const char *text, size_t len, int **ids, size_t *n, char *msg,
               size_t msg_cap);
/* The byte range [*begin, *end) of `text` that piece number `index` of its
 * encoding covers (for error messages that point at the input). */
int spm_piece_span(const spm_processor *p, const char *text, size_t len, size_t index, size_t *begin, size_t *end,
                   char *msg, size_t msg_cap);
/* Decodes ids into text (malloc'd, NUL-terminated, length in *len). */
int spm_decode(const spm_processor *p, const int *ids, size_t n, char **text, size_t *len, char *msg,
               size_t msg_cap);

#ifdef __cplusplus
}
#endif

#endif
