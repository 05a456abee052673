/* Error reporting shared by every source file: fill a tinyllm_error (when
 * the caller gave one) and return the code, so `return set_error(...)` reads
 * as one line at the failure site. */
#ifndef TINYLLM_ERROR_H
#define TINYLLM_ERROR_H

#include "tinyllm.h"

#if defined(__GNUC__)
#define TL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TL_PRINTF(a, b)
#endif

tinyllm_status set_error(tinyllm_error *err, tinyllm_status code, const char *fmt, ...) TL_PRINTF(3, 4);

#endif
