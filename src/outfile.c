/* Output files written safely (see outfile.h for the rules). */
#include "outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *file_kind_name(unsigned mode) {
    return S_ISDIR(mode)                    ? "a directory"
           : S_ISFIFO(mode)                 ? "a FIFO"
           : S_ISCHR(mode) || S_ISBLK(mode) ? "a device"
           : S_ISSOCK(mode)                 ? "a socket"
           : S_ISLNK(mode)                  ? "a symlink"
                                            : "not a regular file";
}

/* The process's umask, read without changing it: umask(2) can only be read
 * by setting it, which would briefly change it for every thread. */
static mode_t current_umask(void) {
    mode_t mask = 022; /* the usual one, where /proc cannot tell */
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return mask;
    char line[128];
    unsigned m;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Umask: %o", &m) == 1) {
            mask = (mode_t)m;
            break;
        }
    fclose(f);
    return mask;
}

static void outfile_free(out_file *o) {
    free(o->tmp_path);
    free(o->final_path);
    o->tmp_path = o->final_path = NULL;
    o->f = NULL;
}

int outfile_prepare(out_file *o, const char *path, const char *input, char *why, size_t why_cap) {
    memset(o, 0, sizeof *o);
    if (!path || !*path) {
        snprintf(why, why_cap, "empty file name (expected a path to write)");
        return -1;
    }
    struct stat st;
    int exists = lstat(path, &st) == 0;
    if (exists && S_ISLNK(st.st_mode)) { /* written through: the file the link names */
        o->final_path = realpath(path, NULL);
        if (!o->final_path) {
            snprintf(why, why_cap, "is a symlink to a missing file (expected a regular file or a new name)");
            return -1;
        }
        exists = stat(o->final_path, &st) == 0;
    } else {
        o->final_path = strdup(path);
    }
    if (!o->final_path) {
        snprintf(why, why_cap, "out of memory");
        return -1;
    }
    if (exists && !S_ISREG(st.st_mode)) {
        snprintf(why, why_cap, "is %s (expected a regular file or a new name; left untouched)",
                 file_kind_name(st.st_mode));
        outfile_free(o);
        return -1;
    }
    struct stat in_st;
    if (exists && input && stat(input, &in_st) == 0 && in_st.st_dev == st.st_dev && in_st.st_ino == st.st_ino) {
        snprintf(why, why_cap, "is the input file %.200s (expected another file: writing would replace it)", input);
        outfile_free(o);
        return -1;
    }
    /* the temporary lives in the target's directory, so the rename is atomic */
    const char *slash = strrchr(o->final_path, '/');
    size_t dir_len = slash ? (size_t)(slash - o->final_path) + 1 : 0;
    o->tmp_path = malloc(dir_len + 32);
    if (!o->tmp_path) {
        snprintf(why, why_cap, "out of memory");
        outfile_free(o);
        return -1;
    }
    memcpy(o->tmp_path, o->final_path, dir_len);
    strcpy(o->tmp_path + dir_len, ".tinyllm-tmp-XXXXXX");
    o->mode = exists ? (st.st_mode & 07777) : (0666 & ~current_umask()); /* the old file's, or a new file's */
    return 0;
}

int outfile_create(out_file *o, char *why, size_t why_cap) {
    int fd = mkostemp(o->tmp_path, O_CLOEXEC); /* a new name, O_EXCL: a planted file or link is never opened */
    if (fd < 0) {
        snprintf(why, why_cap, "cannot write: %s", strerror(errno));
        outfile_free(o);
        return -1;
    }
    fchmod(fd, (mode_t)o->mode); /* on failure mkstemp's 0600 stays: safe */
    if (!(o->f = fdopen(fd, "wb"))) {
        snprintf(why, why_cap, "cannot write: %s", strerror(errno));
        close(fd);
        unlink(o->tmp_path);
        outfile_free(o);
        return -1;
    }
    return 0;
}

int outfile_open(out_file *o, const char *path, const char *input, char *why, size_t why_cap) {
    return outfile_prepare(o, path, input, why, why_cap) || outfile_create(o, why, why_cap) ? -1 : 0;
}

int outfile_commit(out_file *o, char *why, size_t why_cap) {
    int bad = fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0;
    int err = errno;
    bad |= fclose(o->f) != 0;
    o->f = NULL;
    if (!bad && rename(o->tmp_path, o->final_path) == 0) {
        outfile_free(o);
        return 0;
    }
    snprintf(why, why_cap, "cannot write: %s", strerror(bad ? (err ? err : EIO) : errno));
    unlink(o->tmp_path);
    outfile_free(o);
    return -1;
}

void outfile_abort(out_file *o) {
    if (o->f) fclose(o->f);
    if (o->tmp_path) unlink(o->tmp_path);
    outfile_free(o);
}
