#include "error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when it is
 * invalid (overlong, surrogate, past U+10FFFF, cut short) or a C1 control. */
static size_t utf8_char(const unsigned char *s, size_t n) {
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : 2;
    if (s[0] < 0xC2 || s[0] > 0xF4 || len > n) return 0;
    uint32_t cp = s[0] & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return cp >= 0x80 && cp <= 0x9F ? 0 : len; /* C1 controls (CSI, ...) act on terminals */
}

const char *tinyllm_printable(const char *s, size_t len, char *out, size_t cap) {
    if (!out || cap == 0) return out;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    if (!s) len = 0;
    size_t o = 0, i = 0;
    while (i < len) {
        size_t n = p[i] >= 0x20 && p[i] < 0x7F ? 1 : p[i] >= 0x80 ? utf8_char(p + i, len - i) : 0;
        size_t need = n ? n : 4; /* a character as it is, or \xNN */
        if (o + need + 1 > cap) break;
        if (n) {
            memcpy(out + o, p + i, n);
        } else {
            snprintf(out + o, 5, "\\x%02X", p[i]);
            n = 1;
        }
        o += need;
        i += n;
    }
    if (i < len && cap >= 4) { /* cut: mark it */
        while (o + 4 > cap) o--;
        while (o > 0 && ((unsigned char)out[o] & 0xC0) == 0x80) o--; /* not inside a character */
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
    return out;
}

tinyllm_status set_error(tinyllm_error *err, tinyllm_status code, const char *fmt, ...) {
    if (err) {
        err->code = code;
        char raw[2 * sizeof err->message];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        /* one line, whatever the file's strings hold: control bytes and
         * invalid UTF-8 escaped */
        size_t len = n < 0 ? 0 : (size_t)n < sizeof raw ? (size_t)n : sizeof raw - 1;
        tinyllm_printable(raw, len, err->message, sizeof err->message);
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

const char *tinyllm_version(void) { return TINYLLM_VERSION; }
