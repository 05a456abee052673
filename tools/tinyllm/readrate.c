/* The read-bandwidth bound of a decode step, measured on the model's own
 * bytes: every thread streams its contiguous part of the mapped file, eight
 * independent 64-bit sums in flight (enough loads to saturate the memory
 * system without vector code), and a pass ends when the slowest part does. */
#include "readrate.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define MAX_READ_THREADS 256

/* A timed pass reads at least this much (the file as many times as that
 * takes), so starting the threads costs little beside it. */
#define PASS_MIN_BYTES ((size_t)256 << 20)

typedef struct {
    const uint64_t *p;
    size_t n;   /* words */
    int times;  /* reads of them */
    uint64_t sum;
} read_part;

static void *read_words(void *arg) {
    read_part *r = arg;
    uint64_t s[8] = {0};
    for (int rep = 0; rep < r->times; rep++) {
        size_t i = 0;
        for (; i + 8 <= r->n; i += 8)
            for (int k = 0; k < 8; k++) s[k] += r->p[i + k];
        for (; i < r->n; i++) s[0] += r->p[i];
    }
    r->sum = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
    return NULL;
}

/* One pass: `threads` threads read their parts of words (n) `times` times
 * each; seconds, or -1. */
static double read_pass(const uint64_t *words, size_t n, int times, int threads) {
    pthread_t tid[MAX_READ_THREADS];
    read_part parts[MAX_READ_THREADS];
    size_t per = (n + (size_t)threads - 1) / (size_t)threads;
    double t0 = now_seconds();
    int started = 0, ok = 1;
    for (int t = 0; t < threads; t++) {
        size_t lo = (size_t)t * per < n ? (size_t)t * per : n, hi = lo + per < n ? lo + per : n;
        parts[t] = (read_part){words + lo, hi - lo, times, 0};
        if (t == 0) continue; /* the caller reads part 0 itself */
        if (pthread_create(&tid[t], NULL, read_words, &parts[t])) {
            ok = 0;
            break;
        }
        started = t;
    }
    read_words(&parts[0]);
    for (int t = 1; t <= started; t++) pthread_join(tid[t], NULL);
    double dt = now_seconds() - t0;
    volatile uint64_t sink = 0; /* the sums are used: the loads cannot be dropped */
    for (int t = 0; t <= started; t++) sink += parts[t].sum;
    (void)sink;
    return ok ? dt : -1;
}

double file_read_gb_s(const char *path, int threads, int passes) {
    if (threads < 1 || threads > MAX_READ_THREADS || passes < 1) return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0) return -1;
    if (fstat(fd, &sb) || sb.st_size < 4096) {
        close(fd);
        return -1;
    }
    size_t bytes = (size_t)sb.st_size;
    void *map = mmap(NULL, bytes, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return -1;
    double best = -1;
    int times = bytes >= PASS_MIN_BYTES ? 1 : (int)((PASS_MIN_BYTES + bytes - 1) / bytes);
    for (int pass = -1; pass < passes; pass++) { /* pass -1: warm (pages mapped in) */
        double dt = read_pass(map, bytes / sizeof(uint64_t), pass < 0 ? 1 : times, threads);
        if (dt <= 0) {
            best = -1;
            break;
        }
        double gbs = (double)bytes * (pass < 0 ? 1 : times) / dt / 1e9;
        if (pass >= 0 && gbs > best) best = gbs;
    }
    munmap(map, bytes);
    return best;
}
