#include "lineedit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <editline/readline.h>

/* libedit's completion callbacks take no user pointer: the one in use is
 * kept here while a line is being read (a single-threaded CLI). */
static complete_fn active_complete;
static void *active_user;

static char *generate(const char *text, int state) {
    static int i;
    if (!state) i = 0;
    for (const char *w; (w = active_complete(active_user, text, i++));)
        if (!strncmp(w, text, strlen(text))) return strdup(w);
    return NULL;
}

static char **complete(const char *text, int start, int end) {
    (void)start, (void)end;
    rl_attempted_completion_over = 1; /* no file names */
    return active_complete ? rl_completion_matches(text, generate) : NULL;
}

char *edit_line(const char *prompt, complete_fn fn, void *user) {
    active_complete = fn, active_user = user;
    rl_attempted_completion_function = complete;
    char *line = readline(prompt);
    active_complete = NULL, active_user = NULL;
    if (line && *line) add_history(line);
    return line;
}
