#include "common.h"

#include <cblas.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *blas_core(void) {
    const char *core = openblas_get_corename();
    return core ? core : "unknown";
}

static const char *file_kind(mode_t mode) {
    return S_ISDIR(mode)                     ? "a directory"
           : S_ISFIFO(mode)                  ? "a FIFO"
           : S_ISCHR(mode) || S_ISBLK(mode) ? "a device"
           : S_ISSOCK(mode)                  ? "a socket"
                                             : "not a regular file";
}

char *read_regular_file(const char *path, size_t max_bytes, size_t *len, char *why, size_t why_cap) {
    struct stat st;
    if (stat(path, &st)) {
        snprintf(why, why_cap, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) { /* refused before open: opening a FIFO or a device may block or act */
        snprintf(why, why_cap, "is %s (expected a regular file)", file_kind(st.st_mode));
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_cap, "cannot open: %s", strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) { /* replaced between stat and open */
        snprintf(why, why_cap, "is %s (expected a regular file)", file_kind(st.st_mode));
        goto fail;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        snprintf(why, why_cap, "is %lld bytes (expected at most %zu)", (long long)st.st_size, max_bytes);
        goto fail;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0; /* the file may still grow: read to EOF, up to max_bytes */
    buf = malloc(cap + 1);
    while (buf) {
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            snprintf(why, why_cap, "cannot read: %s", strerror(errno));
            goto fail;
        }
        if (got == 0) break;
        n += (size_t)got;
        if (n > max_bytes) {
            snprintf(why, why_cap, "grew past %zu bytes while being read (expected at most that)", max_bytes);
            goto fail;
        }
        if (n == cap) {
            char *p = realloc(buf, 2 * cap + 1);
            if (!p) free(buf);
            buf = p, cap *= 2;
        }
    }
    if (!buf) {
        snprintf(why, why_cap, "out of memory reading %zu bytes", cap);
        goto fail;
    }
    close(fd);
    buf[n] = 0;
    *len = n;
    return buf;
fail:
    free(buf);
    close(fd);
    return NULL;
}

static void out_free(out_file *o) {
    free(o->tmp_path);
    free(o->final_path);
    o->tmp_path = o->final_path = NULL;
    o->f = NULL;
}

int out_open(out_file *o, const char *path, char *why, size_t why_cap) {
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
        snprintf(why, why_cap, "is %s (expected a regular file or a new name; left untouched)", file_kind(st.st_mode));
        out_free(o);
        return -1;
    }
    /* the temporary lives in the target's directory, so the rename is atomic */
    const char *slash = strrchr(o->final_path, '/');
    size_t dir_len = slash ? (size_t)(slash - o->final_path) + 1 : 0;
    o->tmp_path = malloc(dir_len + 32);
    if (!o->tmp_path) {
        snprintf(why, why_cap, "out of memory");
        out_free(o);
        return -1;
    }
    memcpy(o->tmp_path, o->final_path, dir_len);
    strcpy(o->tmp_path + dir_len, ".tinyllm-tmp-XXXXXX");
    int fd = mkstemp(o->tmp_path);
    if (fd < 0) {
        snprintf(why, why_cap, "cannot write: %s", strerror(errno));
        out_free(o);
        return -1;
    }
    mode_t mask = umask(0); /* the mode a new file would get (or the old file's) */
    umask(mask);
    fchmod(fd, exists ? (st.st_mode & 07777) : (0666 & ~mask));
    if (!(o->f = fdopen(fd, "wb"))) {
        snprintf(why, why_cap, "cannot write: %s", strerror(errno));
        close(fd);
        unlink(o->tmp_path);
        out_free(o);
        return -1;
    }
    return 0;
}

int out_commit(out_file *o, char *why, size_t why_cap) {
    int bad = fflush(o->f) != 0 || ferror(o->f) || fsync(fileno(o->f)) != 0;
    int err = errno;
    bad |= fclose(o->f) != 0;
    o->f = NULL;
    if (!bad && rename(o->tmp_path, o->final_path) == 0) {
        out_free(o);
        return 0;
    }
    snprintf(why, why_cap, "cannot write: %s", strerror(bad ? (err ? err : EIO) : errno));
    unlink(o->tmp_path);
    out_free(o);
    return -1;
}

void out_abort(out_file *o) {
    if (o->f) fclose(o->f);
    if (o->tmp_path) unlink(o->tmp_path);
    out_free(o);
}

int progress_wanted(int no_progress) { return !no_progress && isatty(STDERR_FILENO); }

void progress(int on, const char *fmt, ...) {
    if (!on) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("\r\033[K", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fflush(stderr);
}

void progress_end(int on) {
    if (on) fputs("\r\033[K", stderr);
}

void report(const char *cmd, const tinyllm_error *err) {
    fprintf(stderr, "tinyllm %s: %s\n", cmd, err->message);
}

tinyllm_model_params model_params_from(const common_flags *c) {
    tinyllm_model_params mp = tinyllm_model_default_params();
    mp.expand_f32 = c->expand_f32;
    mp.no_mmap = c->no_mmap;
    mp.check_tensors = c->check_tensors;
    return mp;
}

tinyllm_model *load_model_or_report(const char *cmd, const char *path, const tinyllm_model_params *params) {
    tinyllm_model *m = NULL;
    tinyllm_error err = {0};
    if (tinyllm_model_load(path, params, &m, &err)) {
        report(cmd, &err);
        return NULL;
    }
    return m;
}

int *tokenize_prompt(const char *cmd, const tinyllm_model *m, const char *prompt, int *n_tokens) {
    tinyllm_error err = {0};
    size_t len = strlen(prompt);
    int n = 0;
    if (tinyllm_tokenize(m, prompt, len, 1, NULL, 0, &n, &err)) {
        fprintf(stderr, "tinyllm %s: -p: %s\n", cmd, err.message);
        return NULL;
    }
    int *toks = malloc((size_t)(n ? n : 1) * sizeof *toks);
    if (!toks || tinyllm_tokenize(m, prompt, len, 1, toks, n, &n, &err)) {
        fprintf(stderr, "tinyllm %s: -p: %s\n", cmd, toks ? err.message : "out of memory");
        free(toks);
        return NULL;
    }
    *n_tokens = n;
    return toks;
}
