/* The CLI's JSON writer (json.h). */
#include "json.h"

#include <math.h>

#include "encode.h"

json_writer json_writer_to(FILE *f, int html_safe, int spaced) {
    json_writer w = {.f = f, .html_safe = html_safe, .spaced = spaced};
    return w;
}

/* the separator and key before a member's value */
static void member(json_writer *w, const char *key) {
    if (w->depth > 0) {
        unsigned char *has = &w->has[w->depth - 1];
        if (*has) fputs(w->spaced ? ", " : ",", w->f);
        *has = 1;
    }
    if (key && w->depth > 0 && w->kind[w->depth - 1] == '{') {
        json_write_string(w->f, key, w->html_safe);
        fputs(w->spaced ? ": " : ":", w->f);
    }
}

void json_open(json_writer *w, const char *key, char kind) {
    member(w, key);
    fputc(kind == '[' ? '[' : '{', w->f);
    /* past the deepest level the writer tracks, commas stop being right:
     * no output nests that deep */
    if (w->depth < JSON_MAX_DEPTH) {
        w->kind[w->depth] = kind == '[' ? '[' : '{';
        w->has[w->depth] = 0;
    }
    w->depth++;
}

void json_close(json_writer *w) {
    if (w->depth <= 0) return;
    w->depth--;
    fputc(w->depth < JSON_MAX_DEPTH && w->kind[w->depth] == '[' ? ']' : '}', w->f);
}

void json_int(json_writer *w, const char *key, long long v) {
    member(w, key);
    fprintf(w->f, "%lld", v);
}

void json_uint(json_writer *w, const char *key, unsigned long long v) {
    member(w, key);
    fprintf(w->f, "%llu", v);
}

void json_num(json_writer *w, const char *key, const char *fmt, double v) {
    member(w, key);
    if (isfinite(v))
        fprintf(w->f, fmt ? fmt : "%.9g", v);
    else
        fputs("null", w->f);
}

void json_str(json_writer *w, const char *key, const char *s) {
    member(w, key);
    json_write_string(w->f, s ? s : "", w->html_safe);
}

void json_bool(json_writer *w, const char *key, int v) {
    member(w, key);
    fputs(v ? "true" : "false", w->f);
}

void json_null(json_writer *w, const char *key) {
    member(w, key);
    fputs("null", w->f);
}

void json_ints(json_writer *w, const char *key, const int *v, int n) {
    json_open(w, key, '[');
    for (int i = 0; i < n; i++) json_int(w, NULL, v[i]);
    json_close(w);
}

void json_base64(json_writer *w, const char *key, const void *data, size_t n) {
    member(w, key);
    fputc('"', w->f);
    base64_write(w->f, data, n);
    fputc('"', w->f);
}
