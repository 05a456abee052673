/* The forward pass's steps (steps.h), each split over the context's thread
 * pool by parallel_for. */
#include "steps.h"

#include <string.h>

#include "kernels.h"

/* Below these sizes a step runs on one thread: waking the pool would cost
 * more than it saves (a sleeping worker takes tens of microseconds to wake).
 * Decode and short prompts (T <= STREAM_MAX_ROWS) are bound by reading the
 * weights (or the cache), so they split from 64K weights (256 KB) on;
 * prefill is bound by arithmetic and splits from 4M multiply-adds on; row
 * work (norms, adds, RoPE, activations) from 64K values. */
#define PARALLEL_MIN_WEIGHTS (1L << 16)
#define PARALLEL_MIN_WORK (1L << 22)
#define PARALLEL_MIN_ROWS_WORK (PARALLEL_MIN_WORK / 64)

/* ------------------------------------------------------ parallel-for -- */

/* One part of a step: items [lo, hi) on thread ith. */
typedef void (*part_fn)(tinyllm_context *ctx, const void *args, int ith, int lo, int hi);

typedef struct {
    tinyllm_context *ctx;
    const void *args;
    part_fn fn;
    int n, align;
} parallel_job;

static void parallel_part(void *arg, int ith, int nth) {
    const parallel_job *j = arg;
    int per = (j->n + nth - 1) / nth;
    per = (per + j->align - 1) / j->align * j->align; /* `align` items a chunk: whole cache lines of columns */
    int lo = ith * per < j->n ? ith * per : j->n, hi = lo + per < j->n ? lo + per : j->n;
    if (lo < hi) j->fn(j->ctx, j->args, ith, lo, hi);
}

/* fn over items [0, n) in chunks of `align`, on one thread when `small`
 * (not worth waking the pool), else on every thread of the pool. */
static void parallel_for(tinyllm_context *ctx, part_fn fn, const void *args, int n, int align, int small) {
    parallel_job j = {ctx, args, fn, n, align};
    thread_pool_run(ctx->pool, parallel_part, &j, small ? 1 : thread_pool_size(ctx->pool));
}

/* row work of T rows of C values: worth the pool from PARALLEL_MIN_ROWS_WORK on */
static int rows_small(int T, int C) { return T == 1 || (long)T * C < PARALLEL_MIN_ROWS_WORK; }

/* -------------------------------------------------------------- norm -- */

typedef struct {
    float *out;
    const float *in, *w, *b;
} norm_args;

static void norm_part(tinyllm_context *ctx, const void *p, int ith, int t0, int t1) {
    const norm_args *a = p;
    const tinyllm_model *m = ctx->model;
    size_t dim = (size_t)m->info.n_embd;
    (void)ith;
    if (m->family->norm == NORM_RMS)
        rmsnorm_forward(a->out + t0 * dim, a->in + t0 * dim, a->w, t1 - t0, (int)dim, m->info.norm_eps);
    else
        layernorm_forward(a->out + t0 * dim, a->in + t0 * dim, a->w, a->b, t1 - t0, (int)dim, m->info.norm_eps);
}

void step_norm(tinyllm_context *ctx, float *out, const float *in, const float *w, const float *b, int T) {
    norm_args a = {out, in, w, b};
    parallel_for(ctx, norm_part, &a, T, 1, rows_small(T, ctx->model->info.n_embd));
}

/* ---------------------------------------------------------- products -- */

typedef struct {
    float *out;
    const float *in;
    int in_stride, T, C, OC;
    matrix w;
    const float *b;
} matmul_args;

static void quantize_part(tinyllm_context *ctx, const void *p, int ith, int t0, int t1) {
    const matmul_args *a = p;
    q8_act x = matmul_act_rows(ctx->q8_rows, a->w, a->T, a->C);
    (void)ith;
    matmul_quantize(ctx->model->kern, &x, a->in, a->in_stride, t0, t1);
}

void step_quantize(tinyllm_context *ctx, const float *in, int in_stride, matrix w, int T, int C) {
    matmul_args a = {.in = in, .in_stride = in_stride, .T = T, .C = C, .w = w};
    parallel_for(ctx, quantize_part, &a, T, 1, rows_small(T, C));
}

/* Output columns [o0, o1): from the rows step_quantize left when the
 * product takes them, else with this thread's scratch (stored formats:
 * weight rows converted for sgemm, or quantized activations). */
static void matmul_part(tinyllm_context *ctx, const void *p, int ith, int o0, int o1) {
    const matmul_args *a = p;
    const kernel_ops *k = ctx->model->kern;
    if (matmul_takes_q8_act(k, a->w, a->T)) {
        q8_act x = matmul_act_rows(ctx->q8_rows, a->w, a->T, a->C);
        matmul_q8_forward(k, a->out, &x, a->w, a->b, a->T, a->OC, o0, o1);
        return;
    }
    float *scratch = ctx->conv + (size_t)ith * ctx->conv_per_thread;
    matmul_forward(k, a->out, a->in, a->in_stride, a->w, a->b, a->T, a->C, a->OC, o0, o1, scratch, CONV_ROWS);
}

void step_matmul(tinyllm_context *ctx, float *out, const float *in, int in_stride, matrix w, const float *b, int T,
                 int C, int OC) {
    matmul_args a = {out, in, in_stride, T, C, OC, w, b};
    /* decode streams the weights (worth the pool from 64K of them); prefill is arithmetic */
    int small = T <= STREAM_MAX_ROWS ? (long)C * OC < PARALLEL_MIN_WEIGHTS : (long)T * C * OC < PARALLEL_MIN_WORK;
    parallel_for(ctx, matmul_part, &a, OC, 16, small);
}

/* ------------------------------------------------ q|k|v and positions -- */

typedef struct {
    float *q, *k, *v;
    const float *in;
    int pos0;
} qkv_args;

static void split_part(tinyllm_context *ctx, const void *p, int ith, int t0, int t1) {
    const qkv_args *a = p;
    size_t dim = (size_t)ctx->model->info.n_embd, kv_dim = (size_t)ctx->model->kv_dim;
    (void)ith;
    for (int t = t0; t < t1; t++) {
        const float *row = a->in + (size_t)t * (dim + 2 * kv_dim); // q | k | v
        memcpy(a->q + t * dim, row, dim * sizeof(float));
        memcpy(a->k + t * kv_dim, row + dim, kv_dim * sizeof(float));
        memcpy(a->v + t * kv_dim, row + dim + kv_dim, kv_dim * sizeof(float));
    }
}

void step_split_qkv(tinyllm_context *ctx, float *q, float *k, float *v, const float *in, int T) {
    qkv_args a = {q, k, v, in, 0};
    parallel_for(ctx, split_part, &a, T, 1, rows_small(T, ctx->model->info.n_embd));
}

static void rope_part(tinyllm_context *ctx, const void *p, int ith, int t0, int t1) {
    const qkv_args *a = p;
    const tinyllm_model_info *h = &ctx->model->info;
    size_t dim = (size_t)h->n_embd, kv_dim = (size_t)ctx->model->kv_dim, half = (size_t)h->head_dim / 2;
    const float *cos = ctx->rope_cos + (size_t)(a->pos0 + t0) * half; /* the table's rows from this call's first position */
    const float *sin = ctx->rope_sin + (size_t)(a->pos0 + t0) * half;
    (void)ith;
    ctx->rope(a->q + t0 * dim, t1 - t0, (int)dim, h->n_head, h->head_dim, cos, sin);
    ctx->rope(a->k + t0 * kv_dim, t1 - t0, (int)kv_dim, h->n_head_kv, h->head_dim, cos, sin);
}

void step_rope(tinyllm_context *ctx, float *q, float *k, int T, int pos0) {
    qkv_args a = {q, k, NULL, NULL, pos0};
    parallel_for(ctx, rope_part, &a, T, 1, rows_small(T, ctx->model->info.n_embd));
}

/* --------------------------------------------------------- attention -- */

typedef struct {
    int l;
    float *out;
    const float *q, *kc, *vc;
    int T, pos0;
} attention_args;

/* head h of layer l ablated: its columns of out (T, dim) are zeros */
static void zero_ablated(const tinyllm_context *ctx, const attention_args *a, int h0, int h1) {
    const tinyllm_model_info *h = &ctx->model->info;
    for (int head = h0; head < h1; head++)
        if (ctx->ablated[a->l * h->n_head + head])
            for (int t = 0; t < a->T; t++)
                memset(a->out + (size_t)t * h->n_embd + (size_t)head * h->head_dim, 0, h->head_dim * sizeof(float));
}

/* Heads [h0, h1), in this thread's scratch unless the taps keep every head. */
static void attention_part(tinyllm_context *ctx, const void *p, int ith, int h0, int h1) {
    const attention_args *a = p;
    const tinyllm_model_info *h = &ctx->model->info;
    size_t head_stride = ctx->att_all_heads ? (size_t)a->T * (a->pos0 + a->T) : 0;
    size_t scratch = head_stride ? 0 : (size_t)ith * ctx->att_scratch;
    attention_forward(ctx->model->kern, &ctx->att_rule, a->out, ctx->scores + scratch, ctx->probs + scratch,
                      head_stride, a->q, a->kc, a->vc, a->T, a->pos0, h->n_head, h->n_head_kv, h->head_dim, h0, h1);
    zero_ablated(ctx, a, h0, h1);
}

/* decode streams the cached keys and values, and splits from a quarter of
 * the products' threshold on (16K cached values: the other threads would
 * otherwise wait through every layer's attention; measured +4-5% decode at
 * the 1.1B shape on two threads, the same at 42M and 110M); prefill is
 * arithmetic */
static int attention_small(const tinyllm_context *ctx, int T, int pos0) {
    long L = pos0 + T;
    return T == 1 ? 2 * L * ctx->model->kv_dim < PARALLEL_MIN_WEIGHTS / 4
                  : T * L * ctx->model->info.n_embd < PARALLEL_MIN_WORK;
}

void step_attention(tinyllm_context *ctx, int l, float *out, const float *q, const float *kc, const float *vc, int T,
                    int pos0) {
    attention_args a = {l, out, q, kc, vc, T, pos0};
    parallel_for(ctx, attention_part, &a, ctx->model->info.n_head, 1, attention_small(ctx, T, pos0));
}

static void from_probs_part(tinyllm_context *ctx, const void *p, int ith, int h0, int h1) {
    const attention_args *a = p;
    const tinyllm_model_info *h = &ctx->model->info;
    (void)ith;
    attention_apply_probs(ctx->model->kern, a->out, ctx->probs, a->vc, a->T, a->pos0, h->n_head, h->n_head_kv,
                          h->head_dim, h0, h1);
    zero_ablated(ctx, a, h0, h1);
}

void step_attention_from_probs(tinyllm_context *ctx, int l, float *out, const float *vc, int T, int pos0) {
    attention_args a = {l, out, NULL, NULL, vc, T, pos0};
    parallel_for(ctx, from_probs_part, &a, ctx->model->info.n_head, 1, attention_small(ctx, T, pos0));
}

/* -------------------------------------------------- elementwise rows -- */

typedef struct {
    float *x;
    const float *y;
    int x_stride, y_stride, C;
} rows_args;

static void gelu_part(tinyllm_context *ctx, const void *p, int ith, int t0, int t1) {
    const rows_args *a = p;
    (void)ith;
    for (int t = t0; t < t1; t++) {
        float *row = a->x + (size_t)t * a->x_stride;
        if (ctx->model->act == ACT_GELU_ERF)
            gelu_erf_forward(row, a->C);
        else
            ctx->model->kern->gelu(row, a->C);
    }
}

void step_gelu(tinyllm_context *ctx, float *x, int stride, int T, int C) {
    rows_args a = {x, NULL, stride, 0, C};
    parallel_for(ctx, gelu_part, &a, T, 1, rows_small(T, C));
}

static void swiglu_part(tinyllm_context *ctx, const void *p, int ith, int t0, int t1) {
    const rows_args *a = p;
    (void)ith;
    for (int t = t0; t < t1; t++)
        ctx->model->kern->swiglu(a->x + (size_t)t * a->x_stride, a->y + (size_t)t * a->y_stride, a->C);
}

void step_swiglu(tinyllm_context *ctx, float *gate, int gate_stride, const float *up, int up_stride, int T, int C) {
    rows_args a = {gate, up, gate_stride, up_stride, C};
    parallel_for(ctx, swiglu_part, &a, T, 1, rows_small(T, C));
}

static void add_part(tinyllm_context *ctx, const void *p, int ith, int t0, int t1) {
    const rows_args *a = p;
    size_t dim = (size_t)ctx->model->info.n_embd;
    (void)ith;
    residual_forward(a->x + t0 * dim, a->y + t0 * dim, (long)(t1 - t0) * (long)dim);
}

void step_add(tinyllm_context *ctx, float *x, const float *y, int T) {
    rows_args a = {x, y, 0, 0, ctx->model->info.n_embd};
    parallel_for(ctx, add_part, &a, T, 1, rows_small(T, ctx->model->info.n_embd));
}
