/* Context lifetime: create (KV cache, scratch, tables, pool), free, rewind,
 * head ablation and the logits. Running it is forward.c's. */
#include "context.h"

#include <cblas.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "experiments.h"
#include "kernels.h"

/* A prompt runs in chunks of at most DEFAULT_BATCH tokens, fewer where its
 * rows are wide: a chunk's activations (x, xb, q, the hidden state and the
 * quantized rows) stay within CHUNK_ACT_BYTES, half the 32 MiB that peak
 * memory may add to the file and the KV cache, less what the repacked
 * layouts hold beyond the file (the K-quants' unpacked scales). The
 * TinyLlama-1.1B shape takes 64 to 192 tokens a chunk (Q4_K_M: 64); the
 * smaller shapes keep 512. Chunks are multiples of 64 tokens (attention's
 * query blocks) and at least 64. */
#define DEFAULT_BATCH 512
#define CHUNK_ACT_BYTES ((size_t)16 << 20)
#define CHUNK_STEP 64

static int chunk_tokens(const tinyllm_model *m, int n_ctx) {
    const tinyllm_model_info *h = &m->info;
    size_t dim = (size_t)h->n_embd, ff = (size_t)h->n_ff, cols = dim > ff ? dim : ff;
    size_t hb = ff * (m->family->act == ACT_SWIGLU ? 2 : 1), qkv = dim + 2 * (size_t)m->kv_dim;
    size_t per_token = (3 * dim + (hb > qkv ? hb : qkv)) * sizeof(float) + (m->prefill_q8 ? Q8_ACT_BYTES(1, cols) : 0);
    size_t room = CHUNK_ACT_BYTES > m->packed_extra ? CHUNK_ACT_BYTES - m->packed_extra : 0;
    size_t fit = room / per_token / CHUNK_STEP * CHUNK_STEP;
    int B = fit >= DEFAULT_BATCH ? DEFAULT_BATCH : fit >= CHUNK_STEP ? (int)fit : CHUNK_STEP;
    return n_ctx < B ? n_ctx : B;
}

tinyllm_context_params tinyllm_context_default_params(void) {
    tinyllm_context_params p = {0, 0, 0, 0};
    return p;
}

static void free_buffers(tinyllm_context *c) {
    /* proj, att_out and qkv alias q, xb and hb */
    float **bufs[] = {&c->x,     &c->xb,       &c->q,        &c->hb,      &c->scores,
                      &c->probs, &c->logits,   &c->rope_cos, &c->rope_sin, &c->conv, &c->pos_sin,
                      &c->tap_rows, &c->probs_before};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        free(*bufs[i]);
        *bufs[i] = NULL;
    }
    free(c->q8_rows);
    c->q8_rows = NULL;
}

void tinyllm_context_free(tinyllm_context *ctx) {
    if (!ctx) return;
    free_thread_pool(ctx->pool);
    free(ctx->ablated);
    free(ctx->skipped);
    free_kv_cache(&ctx->kv);
    free_buffers(ctx);
    free(ctx);
}

/* OpenBLAS takes a 128 MiB work buffer (BUFFER_SIZE in its x86-64 builds)
 * for each sgemm running at once, and each pool thread's first malloc a
 * 64 MiB glibc arena; when OpenBLAS cannot get its buffer it retries
 * forever (blas_memory_alloc). Under an address-space limit (ulimit -v) the
 * failure cannot be caught after the fact, so a context that could reach it
 * is refused here, with the size it needs. */
#define BLAS_BUFFER_BYTES ((128ull << 20) + 4096)
#define THREAD_ARENA_BYTES (64ull << 20)

static tinyllm_status check_address_space(int n_threads, tinyllm_error *err) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return TINYLLM_OK;
    unsigned long long pages = 0, page = (unsigned long long)sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return TINYLLM_OK; /* no way to tell: nothing refused */
    int got = fscanf(f, "%llu", &pages);
    fclose(f);
    if (got != 1) return TINYLLM_OK;
    unsigned long long used = pages * page, limit = (unsigned long long)rl.rlim_cur;
    unsigned long long need = (unsigned long long)n_threads * BLAS_BUFFER_BYTES +
                              (unsigned long long)(n_threads - 1) * THREAD_ARENA_BYTES;
    if (used + need <= limit) return TINYLLM_OK;
    return set_error(err, TINYLLM_ERR_NOMEM,
                     "context: out of memory (%llu MiB needed): OpenBLAS's sgemm takes a 128 MiB buffer per thread "
                     "(%d) and the address-space limit (ulimit -v) leaves %llu MiB; use fewer threads or raise the "
                     "limit",
                     (need + (1 << 20) - 1) >> 20, n_threads, limit > used ? (limit - used) >> 20 : 0);
}

tinyllm_status tinyllm_context_create(const tinyllm_model *m, const tinyllm_context_params *params,
                                      tinyllm_context **out, tinyllm_error *err) {
    if (!out) return set_error(err, TINYLLM_ERR_ARG, "tinyllm_context_create: out is NULL");
    *out = NULL;
    if (!m) return set_error(err, TINYLLM_ERR_ARG, "tinyllm_context_create: model is NULL");
    tinyllm_context_params p = params ? *params : tinyllm_context_default_params();
    const tinyllm_model_info *h = &m->info;
    if (p.n_ctx < 0 || p.n_threads < 0)
        return set_error(err, TINYLLM_ERR_ARG, "context: n_ctx %d / n_threads %d must not be negative", p.n_ctx,
                         p.n_threads);
    int n_ctx = p.n_ctx ? p.n_ctx : h->n_ctx_train;
    /* learned and sinusoidal tables end at the training context */
    if (h->positions != TINYLLM_POS_ROPE && n_ctx > h->n_ctx_train)
        return set_error(err, TINYLLM_ERR_ARG,
                         "context: --ctx %d exceeds the model's context_length %d (its position table ends there)",
                         n_ctx, h->n_ctx_train);
    if (p.blas_threads < -1 || p.blas_threads > 256)
        return set_error(err, TINYLLM_ERR_ARG, "context: blas_threads %d (expected -1, 0 or 1..256)", p.blas_threads);
    if (p.n_threads > 256)
        return set_error(err, TINYLLM_ERR_ARG, "context: n_threads %d is too many (expected at most 256)", p.n_threads);
    if (n_ctx > (1 << 20))
        return set_error(err, TINYLLM_ERR_ARG, "context: --ctx %d is too large (expected at most %d)", n_ctx, 1 << 20);
    tinyllm_context *c = calloc(1, sizeof *c);
    if (!c) return set_error(err, TINYLLM_ERR_NOMEM, "context: out of memory");
    c->model = m;
    c->rope = m->family->rope ? m->family->rotate : rope_forward;
    c->att_rule = attention_rule_for(h->head_dim, NULL);
    c->n_ctx = n_ctx;
    c->n_batch = chunk_tokens(m, n_ctx);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    c->n_threads = p.n_threads ? p.n_threads : (int)(cores > 0 ? cores : 1);
    c->logits_all = p.logits_all != 0;
    size_t B = (size_t)c->n_batch, dim = (size_t)h->n_embd, ff = (size_t)h->n_ff;
    /* attention scores and probabilities: a block of rows per thread until
     * taps need every head at once (taps.c) */
    size_t rows = B < ATTENTION_ROW_BLOCK ? B : ATTENTION_ROW_BLOCK;
    c->att_scratch = rows * (size_t)n_ctx;
    size_t att = (size_t)c->n_threads * c->att_scratch;
    c->x = malloc(B * dim * sizeof(float));
    c->xb = malloc(B * dim * sizeof(float));
    c->q = malloc(B * dim * sizeof(float));
    size_t hb = B * ff * (m->family->act == ACT_SWIGLU ? 2 : 1), qkv = B * (dim + 2 * (size_t)m->kv_dim);
    size_t rope = h->positions == TINYLLM_POS_ROPE ? (size_t)n_ctx * (h->head_dim / 2) : 1;
    c->rope_cos = malloc(rope * sizeof(float));
    c->rope_sin = malloc(rope * sizeof(float));
    size_t sin_table = h->positions == TINYLLM_POS_SINUSOIDAL ? (size_t)n_ctx * dim : 1;
    c->pos_sin = malloc(sin_table * sizeof(float));
    c->hb = malloc((hb > qkv ? hb : qkv) * sizeof(float));
    c->qkv = c->hb;
    c->proj = c->q;
    c->att_out = c->xb;
    c->scores = malloc(att * sizeof(float));
    c->probs = malloc(att * sizeof(float));
    c->logits = calloc((c->logits_all ? (size_t)n_ctx : 1) * (size_t)h->n_vocab, sizeof(float));
    size_t cols = dim > ff ? dim : ff, conv_rows = B > STREAM_MAX_ROWS ? CONV_ROWS : 0;
    size_t q8 = (Q8_ACT_BYTES(B < STREAM_MAX_ROWS ? B : STREAM_MAX_ROWS, cols) + sizeof(float) - 1) / sizeof(float);
    c->conv_per_thread = m->has_stored ? (conv_rows * cols > q8 ? conv_rows * cols : q8) : 1;
    c->conv = malloc((size_t)c->n_threads * c->conv_per_thread * sizeof(float));
    int q8_prefill = m->prefill_q8 && B > STREAM_MAX_ROWS;
    c->q8_rows = q8_prefill ? malloc(Q8_ACT_BYTES(B, cols)) : NULL;
    if (!c->x || !c->xb || !c->q || !c->hb || !c->rope_cos || !c->pos_sin ||
        !c->rope_sin || !c->scores || !c->probs || !c->conv || (q8_prefill && !c->q8_rows) ||
        !c->logits || build_kv_cache(&c->kv, h->n_layer, n_ctx, m->kv_dim) ||
        !(c->ablated = calloc((size_t)h->n_layer * h->n_head, 1)) || !(c->skipped = calloc((size_t)h->n_layer, 1)) ||
        !(c->pool = build_thread_pool(c->n_threads))) {
        tinyllm_context_free(c);
        return set_error(err, TINYLLM_ERR_NOMEM, "context: out of memory for a %d-token context", n_ctx);
    }
    tinyllm_status st = check_address_space(c->n_threads, err);
    if (st) {
        tinyllm_context_free(c);
        return st;
    }
    if (h->positions == TINYLLM_POS_ROPE) rope_table(c->rope_cos, c->rope_sin, n_ctx, h->head_dim, h->rope_theta);
    if (h->positions == TINYLLM_POS_SINUSOIDAL) sinusoidal_table(c->pos_sin, n_ctx, h->n_embd);
#ifdef TINYLLM_FAULT_INJECTION
    /* Deliberate bugs for proving that `tinyllm verify` catches them, chosen
     * by TINYLLM_FAULT: a swapped RoPE, a skipped layer, or two of the
     * experiments set without a word (one mechanism for both). */
    const char *fault = getenv("TINYLLM_FAULT");
    if (fault && !strcmp(fault, "rope_wrong_pairs")) /* the other family's pairs */
        c->rope = c->rope == rope_forward ? rope_halves_forward : rope_forward;
    if (fault && !strcmp(fault, "skip_layer") && h->n_layer > 1) c->skipped[1] = 1; /* layer 1 ablated, unsaid */
    if (fault && !strcmp(fault, "mask_after_softmax"))
        tinyllm_context_set_experiments(c, &(tinyllm_experiments){TINYLLM_EXP_MASK_AFTER_SOFTMAX, 0}, NULL);
    if (fault && !strcmp(fault, "softmax_no_max"))
        tinyllm_context_set_experiments(c, &(tinyllm_experiments){TINYLLM_EXP_NAIVE_SOFTMAX, 0}, NULL);
#endif
    /* This context's pool owns the threads: OpenBLAS runs single-threaded
     * inside each part, so the cores are never oversubscribed. (The setting
     * is process-wide in OpenBLAS.) */
    if (p.blas_threads >= 0) openblas_set_num_threads(p.blas_threads ? p.blas_threads : 1);
    *out = c;
    return TINYLLM_OK;
}

tinyllm_status tinyllm_context_set_experiments(tinyllm_context *ctx, const tinyllm_experiments *e, tinyllm_error *err) {
    if (!ctx) return set_error(err, TINYLLM_ERR_ARG, "context_set_experiments: context is NULL");
    tinyllm_experiments none = {0, 0.0f};
    if (!e) e = &none;
    tinyllm_status st = experiments_check(e, err);
    if (st) return st;
    ctx->exp = *e;
    ctx->att_rule = attention_rule_for(ctx->model->info.head_dim, e);
    return TINYLLM_OK;
}

int tinyllm_context_n_ctx(const tinyllm_context *ctx) { return ctx ? ctx->n_ctx : 0; }
int tinyllm_context_n_past(const tinyllm_context *ctx) { return ctx ? ctx->n_past : 0; }

/* One thread's share of tinyllm_context_read_weights */
typedef struct {
    const kernel_ops *k;
    int ith, nth;
    uint64_t folded, bytes;
} weight_read;

/* Part ith of nth of a matrix's bytes (cache lines apart), as a decode
 * product gives each thread its part of the rows */
static void read_share(void *user, const void *data, size_t bytes) {
    weight_read *r = user;
    size_t lo = bytes / 64 * (size_t)r->ith / (size_t)r->nth * 64;
    size_t hi = r->ith + 1 == r->nth ? bytes : bytes / 64 * (size_t)(r->ith + 1) / (size_t)r->nth * 64;
    r->folded ^= r->k->read_bytes((const char *)data + lo, hi - lo);
    r->bytes += bytes;
}

typedef struct {
    const tinyllm_context *ctx;
    _Atomic uint64_t folded; /* every thread's XOR: the loads have a use */
    uint64_t bytes;
} weights_read_job;

static void read_part(void *arg, int ith, int nth) {
    weights_read_job *j = arg;
    weight_read r = {j->ctx->model->kern, ith, nth, 0, 0};
    model_decode_matrices(j->ctx->model, read_share, &r);
    atomic_fetch_xor(&j->folded, r.folded);
    if (ith == 0) j->bytes = r.bytes;
}

tinyllm_status tinyllm_context_read_weights(tinyllm_context *ctx, uint64_t *bytes, tinyllm_error *err) {
    if (!ctx || !bytes)
        return set_error(err, TINYLLM_ERR_ARG, "context_read_weights: %s is NULL", ctx ? "bytes" : "context");
    weights_read_job j = {ctx, 0, 0};
    thread_pool_run(ctx->pool, read_part, &j, thread_pool_size(ctx->pool));
    *bytes = j.bytes;
    return TINYLLM_OK;
}

tinyllm_status tinyllm_context_rewind(tinyllm_context *ctx, int n_keep, tinyllm_error *err) {
    if (!ctx) return set_error(err, TINYLLM_ERR_ARG, "context_rewind: context is NULL");
    if (n_keep < 0 || n_keep > ctx->n_past)
        return set_error(err, TINYLLM_ERR_ARG, "context_rewind: n_keep %d (expected 0..%d, the tokens in the cache)",
                         n_keep, ctx->n_past);
    ctx->n_past = n_keep; /* rows past n_keep are overwritten by the next tokens */
    ctx->n_logits = 0;
    return TINYLLM_OK;
}

tinyllm_status tinyllm_context_ablate_head(tinyllm_context *ctx, int layer, int head, int on, tinyllm_error *err) {
    if (!ctx) return set_error(err, TINYLLM_ERR_ARG, "context_ablate_head: context is NULL");
    const tinyllm_model_info *h = &ctx->model->info;
    if (layer == -1 && !on) {
        memset(ctx->ablated, 0, (size_t)h->n_layer * h->n_head);
        return TINYLLM_OK;
    }
    if (layer < 0 || layer >= h->n_layer || head < 0 || head >= h->n_head)
        return set_error(err, TINYLLM_ERR_ARG, "context_ablate_head: layer %d head %d (expected 0..%d and 0..%d)",
                         layer, head, h->n_layer - 1, h->n_head - 1);
    ctx->ablated[layer * h->n_head + head] = on != 0;
    return TINYLLM_OK;
}

tinyllm_status tinyllm_context_ablate_layer(tinyllm_context *ctx, int layer, int on, tinyllm_error *err) {
    if (!ctx) return set_error(err, TINYLLM_ERR_ARG, "context_ablate_layer: context is NULL");
    int n_layer = ctx->model->info.n_layer;
    if (layer == -1 && !on) {
        memset(ctx->skipped, 0, (size_t)n_layer);
        return TINYLLM_OK;
    }
    if (layer < 0 || layer >= n_layer)
        return set_error(err, TINYLLM_ERR_ARG, "context_ablate_layer: layer %d (expected 0..%d)", layer, n_layer - 1);
    ctx->skipped[layer] = on != 0;
    return TINYLLM_OK;
}

const float *tinyllm_context_logits(const tinyllm_context *ctx) {
    if (!ctx || ctx->n_logits == 0) return NULL;
    return ctx->logits + (size_t)(ctx->n_logits - 1) * ctx->model->info.n_vocab;
}

const float *tinyllm_context_logits_at(const tinyllm_context *ctx, int i) {
    if (!ctx || !ctx->logits_all || i < 0 || i >= ctx->n_logits) return NULL;
    return ctx->logits + (size_t)i * ctx->model->info.n_vocab;
}

uint64_t tinyllm_model_kv_bytes(const tinyllm_model *m, int n_ctx) {
    if (!m) return 0;
    uint64_t ctx = n_ctx > 0 ? (uint64_t)n_ctx : (uint64_t)m->info.n_ctx_train;
    return 2 * (uint64_t)m->info.n_layer * ctx * (uint64_t)m->kv_dim * sizeof(float);
}
