#include "textio.h"

#include <stdlib.h>
#include <string.h>

char *read_stdin(size_t max_bytes, size_t *len, char *why, size_t why_cap) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (n > max_bytes) {
            snprintf(why, why_cap, "more than %zu bytes (expected at most that)", max_bytes);
            free(buf);
            return NULL;
        }
        if (got == 0) break;
        if (n == cap) {
            char *p = realloc(buf, 2 * cap + 1);
            if (!p) free(buf);
            buf = p, cap *= 2;
        }
    }
    if (!buf || ferror(stdin)) {
        snprintf(why, why_cap, buf ? "cannot read" : "out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static int hex(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int unescape(char *s) {
    char *o = s;
    for (; *s; s++) {
        if (*s != '\\') {
            *o++ = *s;
            continue;
        }
        switch (*++s) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case '\\': *o++ = '\\'; break;
        case '"': *o++ = '"'; break;
        case '\'': *o++ = '\''; break;
        case 'x':
            if (hex(s[1]) < 0 || hex(s[2]) < 0) return -1;
            if (hex(s[1]) == 0 && hex(s[2]) == 0) return -2; /* would end the text there */
            *o++ = (char)(hex(s[1]) * 16 + hex(s[2]));
            s += 2;
            break;
        default: return -1; /* a trailing backslash, or an escape we do not know */
        }
    }
    *o = 0;
    return 0;
}

void stop_filter_init(stop_filter *f, const char *const *stops, int n_stops) {
    memset(f, 0, sizeof *f);
    f->stops = stops;
    f->n_stops = n_stops;
}

/* the longest tail of held that is a beginning of a stop string */
static size_t pending_tail(const stop_filter *f) {
    size_t best = 0;
    for (int i = 0; i < f->n_stops; i++) {
        size_t m = strlen(f->stops[i]);
        if (!m) continue;
        for (size_t k = m - 1 < f->n_held ? m - 1 : f->n_held; k > best; k--)
            if (!memcmp(f->held + f->n_held - k, f->stops[i], k)) {
                best = k;
                break;
            }
    }
    return best;
}

int stop_filter_feed(stop_filter *f, const char *text, size_t n, FILE *out) {
    if (f->stopped) return 1;
    if (n == 0) return 0; /* nothing new (a control token): and held may still be NULL */
    if (f->n_held + n > f->cap) {
        size_t cap = (f->n_held + n) * 2 + 64;
        char *p = realloc(f->held, cap);
        if (!p) return -1;
        f->held = p, f->cap = cap;
    }
    memcpy(f->held + f->n_held, text, n);
    f->n_held += n;
    size_t first = (size_t)-1; /* the earliest stop string, if any */
    for (int i = 0; i < f->n_stops; i++) {
        size_t m = strlen(f->stops[i]);
        for (size_t at = 0; m && at + m <= f->n_held; at++)
            if (!memcmp(f->held + at, f->stops[i], m)) {
                if (at < first) first = at;
                break;
            }
    }
    if (first != (size_t)-1) {
        fwrite(f->held, 1, first, out);
        f->n_held = 0;
        f->stopped = 1;
        return 1;
    }
    size_t keep = pending_tail(f);
    fwrite(f->held, 1, f->n_held - keep, out);
    memmove(f->held, f->held + f->n_held - keep, keep);
    f->n_held = keep;
    return 0;
}

void stop_filter_flush(stop_filter *f, FILE *out) {
    if (!f->stopped && f->n_held) fwrite(f->held, 1, f->n_held, out); /* held is NULL until a first push */
    f->n_held = 0;
}

void stop_filter_reset(stop_filter *f) {
    f->n_held = 0;
    f->stopped = 0;
}

void stop_filter_free(stop_filter *f) {
    free(f->held);
    f->held = NULL;
}
