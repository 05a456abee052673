/* A small pool of worker threads owned by a context: the one owner of
 * threads in the engine (OpenBLAS is kept single-threaded, and every matrix
 * product is split across this pool), so the cores are never oversubscribed.
 * Workers sleep on a condition variable between jobs, after a short spin. */
#ifndef TINYLLM_THREADPOOL_H
#define TINYLLM_THREADPOOL_H

/* fn(arg, ith, nth): do part ith of nth. */
typedef void (*parallel_fn)(void *arg, int ith, int nth);

typedef struct thread_pool thread_pool;

/* n_threads includes the calling thread; 1 means no workers. NULL on failure. */
thread_pool *build_thread_pool(int n_threads);
void free_thread_pool(thread_pool *p);
int thread_pool_size(const thread_pool *p);

/* Runs fn on nth threads (1 <= nth <= pool size; the caller is thread 0)
 * and returns when all parts are done. */
void thread_pool_run(thread_pool *p, parallel_fn fn, void *arg, int nth);

#endif
