#include "error.h"

#include <stdarg.h>
#include <stdio.h>

tinyllm_status set_error(tinyllm_error *err, tinyllm_status code, const char *fmt, ...) {
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *tinyllm_status_name(tinyllm_status code) {
    switch (code) {
    case TINYLLM_OK: return "ok";
    case TINYLLM_ERR_IO: return "I/O error";
    case TINYLLM_ERR_FORMAT: return "format error";
    case TINYLLM_ERR_UNSUPPORTED: return "unsupported";
    case TINYLLM_ERR_MODEL: return "model error";
    case TINYLLM_ERR_TOKENIZER: return "tokenizer error";
    case TINYLLM_ERR_ARG: return "bad argument";
    case TINYLLM_ERR_CONTEXT_FULL: return "context full";
    case TINYLLM_ERR_NOMEM: return "out of memory";
    case TINYLLM_ERR_NUMERIC: return "bad numbers";
    }
    return "unknown error";
}
