/* Encodings for data embedded in text: JSON strings, base64, IEEE half
 * precision (the explorer's page stores its arrays as base64 of float16:
 * src/half.h's f32_to_f16). */
#ifndef TINYLLM_CLI_ENCODE_H
#define TINYLLM_CLI_ENCODE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* s as a JSON string: quotes, backslashes and control characters escaped;
 * bytes that are not valid UTF-8 as \u00XX, so the result always parses.
 * html_safe also escapes '<', '>' and '&' (a string inside <script> can then
 * never close it). */
void json_write_string(FILE *f, const char *s, int html_safe);

/* s as HTML text (also fit for an attribute value): & < > " ' escaped. */
void html_write_text(FILE *f, const char *s);

/* n bytes as base64 (RFC 4648, padded, no line breaks). */
void base64_write(FILE *f, const void *data, size_t n);
/* The length base64_write writes for n bytes. */
static inline size_t base64_len(size_t n) { return (n + 2) / 3 * 4; }

#endif
