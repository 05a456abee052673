/* tinyllm_quantize's writing half, for a caller that owns the output file
 * (the CLI, which removes the temporary when a signal ends the process). */
#ifndef TINYLLM_QUANTIZE_H
#define TINYLLM_QUANTIZE_H

#include <stddef.h>

#include "outfile.h"
#include "tinyllm.h"

/* Writes IN's model, its matrices in `format`, to out->f (opened by
 * outfile_open with IN as its input); out_name names it in messages. The
 * caller commits or aborts `out`. */
tinyllm_status quantize_into(const char *in_path, out_file *out, const char *out_name, const char *format,
                             tinyllm_error *err);

/* Whether tinyllm_quantize knows `format` (a format or a preset, any case). */
int quantize_format_known(const char *format);
/* The formats and presets it writes, "f32, f16, ..., or a preset: q4_k_m or
 * q5_k_m" (from the weight-format table), into buf (cut to cap); returns buf. */
#define QUANTIZE_FORMAT_NAMES_CAP 200
const char *quantize_format_names(char *buf, size_t cap);

#endif
