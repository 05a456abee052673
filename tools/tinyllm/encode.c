#include "encode.h"

#include <string.h>

void json_write_string(FILE *f, const char *s, int html_safe) {
    fputc('"', f);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p;
        size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2, ok = c < 0x80 || (c >= 0xC2 && c <= 0xF4);
        for (size_t i = 1; ok && i < n; i++) ok = (p[i] & 0xC0) == 0x80;
        if (!ok) {
            fprintf(f, "\\u%04x", c);
            p++;
        } else if (n > 1) {
            fwrite(p, 1, n, f);
            p += n;
        } else {
            if (c == '"' || c == '\\')
                fprintf(f, "\\%c", c);
            else if (c < 0x20 || c == 0x7f || (html_safe && (c == '<' || c == '>' || c == '&')))
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
            p++;
        }
    }
    fputc('"', f);
}

void html_write_text(FILE *f, const char *s) {
    for (; *s; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '"' ? "&quot;"
                      : *s == '\'' ? "&#39;" : NULL;
        if (e)
            fputs(e, f);
        else
            fputc(*s, f);
    }
}

void base64_write(FILE *f, const void *data, size_t n) {
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *b = data;
    char quad[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
        quad[0] = digits[v >> 18 & 63], quad[1] = digits[v >> 12 & 63];
        quad[2] = i + 1 < n ? digits[v >> 6 & 63] : '=';
        quad[3] = i + 2 < n ? digits[v & 63] : '=';
        fwrite(quad, 1, 4, f);
    }
}

uint16_t half_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    uint16_t sign = (uint16_t)(u >> 16 & 0x8000);
    uint32_t exp = u >> 23 & 0xff, mant = u & 0x7fffff;
    if (exp == 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); /* inf, NaN (quiet) */
    int e = (int)exp - 127 + 15;                             /* the half's biased exponent */
    if (e >= 31) return sign | 0x7c00;                       /* too large: inf */
    if (e <= 0) {                                            /* a half subnormal, or zero */
        if (e < -10) return sign;
        mant |= 0x800000;                                    /* the implicit bit */
        int shift = 14 - e;                                  /* 24-bit significand to 10 bits >> (1 - e) */
        uint32_t h = mant >> shift, rest = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (h & 1))) h++;
        return sign | (uint16_t)h;                            /* a carry into the exponent is right */
    }
    uint32_t h = (uint32_t)e << 10 | mant >> 13, rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;     /* may carry up to inf: right */
    return sign | (uint16_t)h;
}
