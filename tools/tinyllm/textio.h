/* Text in and out for generate: prompts from files or stdin, escape
 * sequences, and stop strings that never leak into the output. */
#ifndef TINYLLM_CLI_TEXTIO_H
#define TINYLLM_CLI_TEXTIO_H

#include <stddef.h>
#include <stdio.h>

/* The whole of stdin (at most max_bytes) as a NUL-terminated malloc'd
 * string; NULL with the reason in why. */
char *read_stdin(size_t max_bytes, size_t *len, char *why, size_t why_cap);

/* Replaces \n \t \r \\ \" \' and \xNN in s by the characters they stand for
 * (in place, as llama-cli's -e does). Returns -1 on a malformed \x or a
 * trailing backslash, -2 on \x00 (a NUL would silently cut the text); s is
 * then unchanged from that point. */
int unescape(char *s);

/* Streams generated text to out, holding back only what could still grow
 * into one of the stop strings, so a stop string (and all after it) is never
 * printed. */
typedef struct {
    const char *const *stops;
    int n_stops;
    char *held;
    size_t n_held, cap;
    int stopped;
} stop_filter;

void stop_filter_init(stop_filter *f, const char *const *stops, int n_stops);
/* Adds n bytes of text; returns 1 once a stop string has appeared (the text
 * before it is written, nothing after), 0 to go on, -1 out of memory. */
int stop_filter_feed(stop_filter *f, const char *text, size_t n, FILE *out);
/* Writes what is still held (the end of the text: no stop string came). */
void stop_filter_flush(stop_filter *f, FILE *out);
/* Ready for a new reply (keeps its buffer). */
void stop_filter_reset(stop_filter *f);
void stop_filter_free(stop_filter *f);

#endif
