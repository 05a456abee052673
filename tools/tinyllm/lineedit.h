/* Lines typed at a terminal, with editing (libedit: cursor keys, history
 * with up/down and Ctrl-R, Tab completion); plain reads otherwise. */
#ifndef TINYLLM_CLI_LINEEDIT_H
#define TINYLLM_CLI_LINEEDIT_H

/* Completion candidates: the i-th word (i = 0, 1, ...) that could complete
 * `prefix`, or NULL when there are no more. user is the caller's. */
typedef const char *(*complete_fn)(void *user, const char *prefix, int i);

/* One line from the terminal (edited, added to the history) as a malloc'd
 * string without its newline; NULL at the end of input (Ctrl-D). complete
 * may be NULL. Only for a terminal stdin: scripts read with getline. */
char *edit_line(const char *prompt, complete_fn complete, void *user);

#endif
