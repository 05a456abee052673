#include "common.h"

#include <cblas.h>
#include <errno.h>
#include <signal.h>
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

char *read_regular_file(const char *path, size_t max_bytes, size_t *len, char *why, size_t why_cap) {
    struct stat st;
    if (stat(path, &st)) {
        snprintf(why, why_cap, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) { /* refused before open: opening a FIFO or a device may block or act */
        snprintf(why, why_cap, "is %s (expected a regular file)", file_kind_name(st.st_mode));
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_cap, "cannot open: %s", strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) { /* replaced between stat and open */
        snprintf(why, why_cap, "is %s (expected a regular file)", file_kind_name(st.st_mode));
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

/* Temporaries of the writes in progress, removed when a signal ends the
 * process (beside generate -i's interrupt flag, the CLI's only global state:
 * a signal handler has nowhere else to look). */
#define MAX_PENDING 4
static char *volatile pending_tmp[MAX_PENDING];

static void remove_pending_and_die(int sig) {
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending_tmp[i]) unlink(pending_tmp[i]); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

void cleanup_on_signals(void) {
    static const int SIGNALS[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof SIGNALS / sizeof *SIGNALS; i++) {
        struct sigaction old;
        if (sigaction(SIGNALS[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue; /* nohup's choice stays */
        signal(SIGNALS[i], remove_pending_and_die);
    }
    /* past `ulimit -f` a write fails with EFBIG (reported, temporary removed)
     * instead of the process dying with the temporary left behind */
    signal(SIGXFSZ, SIG_IGN);
}

static void track(char *tmp, char *untrack) {
    for (int i = 0; i < MAX_PENDING; i++)
        if (pending_tmp[i] == untrack) {
            pending_tmp[i] = tmp;
            return;
        }
}

/* Signals wait while a temporary is renamed (or removed) and forgotten. A
 * signal may also be handled by another thread (OpenBLAS's), which no mask
 * of this one holds back: so the temporary's name is recorded before the
 * file is created, and the handler can always find it. */
static void block_signals(sigset_t *old) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, old);
}

int out_open(out_file *o, const char *path, const char *input, char *why, size_t why_cap) {
    if (outfile_prepare(o, path, input, why, why_cap)) return -1;
    char *tmp = o->tmp_path;
    track(tmp, NULL);
    if (outfile_create(o, why, why_cap)) {
        track(NULL, tmp);
        return -1;
    }
    return 0;
}

int out_commit(out_file *o, char *why, size_t why_cap) {
    sigset_t old;
    block_signals(&old);
    char *tmp = o->tmp_path;
    int rc = outfile_commit(o, why, why_cap); /* renamed into place (or removed): a signal now leaves OUT whole */
    track(NULL, tmp);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}

void out_abort(out_file *o) {
    sigset_t old;
    block_signals(&old);
    char *tmp = o->tmp_path;
    outfile_abort(o);
    track(NULL, tmp);
    sigprocmask(SIG_SETMASK, &old, NULL);
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

void say(const char *fmt, ...) {
    char raw[2048], shown[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    size_t n = strlen(raw);
    int lead = raw[0] == '\n', trail = n > (size_t)lead && raw[n - 1] == '\n';
    tinyllm_printable(raw + lead, n - (size_t)lead - (size_t)trail, shown, sizeof shown);
    fprintf(stderr, "%s%s%s", lead ? "\n" : "", shown, trail ? "\n" : "");
}

void report(const char *cmd, const tinyllm_error *err) {
    say("tinyllm %s: %s\n", cmd, err->message);
}

int apply_experiments(const char *cmd, tinyllm_context *ctx, const tinyllm_experiments *e, FILE *note) {
    tinyllm_error err = {0};
    if (tinyllm_context_set_experiments(ctx, e, &err)) {
        report(cmd, &err);
        return EXIT_USAGE;
    }
    if (e->flags && note) {
        char names[256];
        tinyllm_experiments_describe(e, names, sizeof names);
        fprintf(note, "experiment: %s (the model with that changed, not as trained)\n", names);
    }
    return EXIT_OK;
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
        say("tinyllm %s: -p: %s\n", cmd, err.message);
        return NULL;
    }
    int *toks = malloc((size_t)(n ? n : 1) * sizeof *toks);
    if (!toks || tinyllm_tokenize(m, prompt, len, 1, toks, n, &n, &err)) {
        say("tinyllm %s: -p: %s\n", cmd, toks ? err.message : "out of memory");
        free(toks);
        return NULL;
    }
    *n_tokens = n;
    return toks;
}
