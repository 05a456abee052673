/* The CLI's one JSON writer: `step --json`, `bench -o json` and the
 * explorer's page data all write through it. It keeps the nesting and the
 * commas, escapes every string (json_write_string: valid UTF-8 whatever the
 * bytes) and writes non-finite numbers as null, so the output always
 * parses. */
#ifndef TINYLLM_CLI_JSON_H
#define TINYLLM_CLI_JSON_H

#include <stddef.h>
#include <stdio.h>

enum { JSON_MAX_DEPTH = 16 };

typedef struct {
    FILE *f;
    int html_safe; /* strings also escape '<', '>', '&' (data inside <script>) */
    int spaced;    /* ", " and ": " (output people read); else "," and ":" (the page: size) */
    int depth;     /* open objects and arrays */
    char kind[JSON_MAX_DEPTH];          /* '{' or '[' per open level */
    unsigned char has[JSON_MAX_DEPTH];  /* whether that level has a member yet */
} json_writer;

json_writer json_writer_to(FILE *f, int html_safe, int spaced);

/* Every value below is a member: key names it inside an object; key is
 * NULL inside an array and for the top-level value. */
void json_open(json_writer *w, const char *key, char kind); /* '{' or '[' */
void json_close(json_writer *w);                            /* the innermost open one */
void json_int(json_writer *w, const char *key, long long v);
void json_uint(json_writer *w, const char *key, unsigned long long v);
/* v as fmt (a printf double format; NULL: "%.9g"), or null when not finite */
void json_num(json_writer *w, const char *key, const char *fmt, double v);
void json_str(json_writer *w, const char *key, const char *s); /* NULL: "" */
void json_bool(json_writer *w, const char *key, int v);
void json_null(json_writer *w, const char *key);
void json_ints(json_writer *w, const char *key, const int *v, int n); /* an array */
/* n bytes as one base64 string (the explorer's typed arrays) */
void json_base64(json_writer *w, const char *key, const void *data, size_t n);

#endif
