#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define SPIN_ITERATIONS 20000 /* ~tens of microseconds: covers back-to-back matmuls in decode */

typedef struct {
    thread_pool *pool;
    int ith;
    pthread_t tid;
} worker;

struct thread_pool {
    int n_threads;
    worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint generation; /* bumped once per job */
    atomic_int pending;     /* workers still running the current job */
    atomic_int quit;
    parallel_fn fn;
    void *arg;
    int nth;
};

static void *worker_main(void *p) {
    worker *w = p;
    thread_pool *pool = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
               !atomic_load(&pool->quit) && spins < SPIN_ITERATIONS)
            if (++spins % 1024 == 0) sched_yield(); /* let a thread without a core run */
        if (gen == seen && !atomic_load(&pool->quit)) {
            pthread_mutex_lock(&pool->mu);
            while ((gen = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->quit))
                pthread_cond_wait(&pool->wake, &pool->mu);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->quit)) return NULL;
        seen = gen;
        if (w->ith < pool->nth) pool->fn(pool->arg, w->ith, pool->nth);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_release);
    }
}

thread_pool *build_thread_pool(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    thread_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->workers) {
        free_thread_pool(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        p->workers[i] = (worker){p, i, 0};
        if (pthread_create(&p->workers[i].tid, NULL, worker_main, &p->workers[i])) {
            p->n_threads = i; /* join the ones that started */
            free_thread_pool(p);
            return NULL;
        }
    }
    return p;
}

void free_thread_pool(thread_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads && p->workers; i++) pthread_join(p->workers[i].tid, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p->workers);
    free(p);
}

int thread_pool_size(const thread_pool *p) { return p ? p->n_threads : 1; }

void thread_pool_run(thread_pool *p, parallel_fn fn, void *arg, int nth) {
    if (!p || nth <= 1 || p->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    if (nth > p->n_threads) nth = p->n_threads;
    p->fn = fn;
    p->arg = arg;
    p->nth = nth;
    atomic_store(&p->pending, p->n_threads - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, nth);
    /* The other parts take about as long as ours: spin briefly, then yield, so
     * a worker that has no core of its own (more threads than cores, or
     * valgrind running one thread at a time) gets to finish. */
    for (int spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++)
        if (spins > 1000) sched_yield();
}
