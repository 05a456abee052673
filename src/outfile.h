/* Output files written so that nothing is ever destroyed: every file the
 * library and the CLI write (quantize, pictures, arrays, pages) goes into a
 * new, uniquely named temporary beside the target (mkstemp: O_EXCL, so a
 * planted name or symlink is never followed) and is renamed over the target
 * only once complete and synced.
 *   - the target must be a new name or a regular file: a FIFO, device,
 *     socket or directory is refused and left untouched (nothing is opened
 *     on it, so nothing blocks);
 *   - a symlink is written through: the file it names is replaced, the link
 *     stays (a link to nowhere is refused);
 *   - a target that is the same file as `input` (same device and inode:
 *     also through links and `./`) is refused;
 *   - a failed write leaves the target as it was and removes the temporary.
 * The caller that can be killed (the CLI) removes tmp_path on signals. */
#ifndef TINYLLM_OUTFILE_H
#define TINYLLM_OUTFILE_H

#include <stdio.h>

typedef struct {
    FILE *f;          /* write here between outfile_open and outfile_commit */
    char *tmp_path;   /* the temporary file */
    char *final_path; /* the target, symlinks resolved */
    unsigned mode;    /* the file's permissions once renamed */
} out_file;

/* 0, or -1 with the reason (without the path) in why, e.g. "is a FIFO
 * (expected a regular file or a new name; left untouched)". input: a file
 * the target must not be (NULL: none). */
int outfile_open(out_file *o, const char *path, const char *input, char *why, size_t why_cap);
/* outfile_open in two steps, for a caller that must know the temporary's
 * name before it exists (a signal handler in another thread removes it):
 * prepare checks the target and sets tmp_path to a template; create fills
 * in a unique name and creates the file. Each frees o on failure. */
int outfile_prepare(out_file *o, const char *path, const char *input, char *why, size_t why_cap);
int outfile_create(out_file *o, char *why, size_t why_cap);
/* Flushes, syncs and renames into place; 0, or -1 (temporary removed). */
int outfile_commit(out_file *o, char *why, size_t why_cap);
/* Abandons the write: the temporary is removed, the target untouched. */
void outfile_abort(out_file *o);

/* "a FIFO", "a directory", ...: what a non-regular file is, for messages. */
const char *file_kind_name(unsigned mode);

#endif
