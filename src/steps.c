/* run_step: one forward-pass step split over the context's thread pool. */
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

typedef struct {
    tinyllm_context *ctx;
    const step *s;
} job;

/* [lo, hi) of n items for thread ith of nth; `align` rounds chunks up (whole
 * cache lines of output columns). */
static void slice(int n, int ith, int nth, int align, int *lo, int *hi) {
    int per = (n + nth - 1) / nth;
    per = (per + align - 1) / align * align;
    *lo = ith * per < n ? ith * per : n;
    *hi = *lo + per < n ? *lo + per : n;
}

/* Rows [t0, t1) of a row-wise step. */
static void rows_part(tinyllm_context *ctx, const step *s, int t0, int t1) {
    const tinyllm_model *m = ctx->model;
    const model_family *f = m->family;
    size_t dim = (size_t)m->info.n_embd, kv_dim = (size_t)m->kv_dim, hd = (size_t)m->info.head_dim;
    int n = t1 - t0;
    switch (s->op) {
    case OP_NORM:
        if (f->norm == NORM_RMS)
            rmsnorm_forward(s->out + t0 * dim, s->in + t0 * dim, s->norm_w, n, (int)dim, m->info.norm_eps);
        else
            layernorm_forward(s->out + t0 * dim, s->in + t0 * dim, s->norm_w, s->b, n, (int)dim, m->info.norm_eps);
        break;
    case OP_SPLIT_QKV:
        for (int t = t0; t < t1; t++) {
            const float *row = s->in + (size_t)t * (dim + 2 * kv_dim); // q | k | v
            memcpy(s->out + t * dim, row, dim * sizeof(float));
            memcpy(s->k + t * kv_dim, row + dim, kv_dim * sizeof(float));
            memcpy(s->v + t * kv_dim, row + dim + kv_dim, kv_dim * sizeof(float));
        }
        break;
    case OP_ROPE: { /* the table's rows from this call's first position on */
        const float *cos = ctx->rope_cos + (size_t)(s->pos0 + t0) * (hd / 2);
        const float *sin = ctx->rope_sin + (size_t)(s->pos0 + t0) * (hd / 2);
        ctx->rope(s->out + t0 * dim, n, (int)dim, m->info.n_head, (int)hd, cos, sin);
        ctx->rope(s->k + t0 * kv_dim, n, (int)kv_dim, m->info.n_head_kv, (int)hd, cos, sin);
        break;
    }
    case OP_GELU:
        for (int t = t0; t < t1; t++) {
            float *row = s->out + (size_t)t * s->out_stride;
            if (f->act == ACT_GELU_ERF)
                gelu_erf_forward(row, s->C);
            else
                m->kern->gelu(row, s->C);
        }
        break;
    case OP_SWIGLU:
        for (int t = t0; t < t1; t++)
            m->kern->swiglu(s->out + (size_t)t * s->out_stride, s->in + (size_t)t * s->in_stride, s->C);
        break;
    case OP_ADD:
        residual_forward(s->out + t0 * dim, s->in + t0 * dim, (long)n * (long)dim);
        break;
    case OP_QUANTIZE: {
        q8_act x = q8_act_in(ctx->q8_rows, s->T, s->C);
        m->kern->quantize_q8_act(&x, s->in, s->in_stride, t0, t1);
        break;
    }
    default:
        break;
    }
}

/* Output columns [o0, o1) of a product: from the activation rows quantized
 * by OP_QUANTIZE when the product takes them, else with this thread's
 * scratch (stored formats: weight rows converted for sgemm, or quantized
 * activations). */
static void matmul_part(tinyllm_context *ctx, const step *s, int ith, int o0, int o1) {
    const kernel_ops *k = ctx->model->kern;
    if (matmul_takes_q8_act(s->w, s->T)) {
        q8_act x = q8_act_in(ctx->q8_rows, s->T, s->C);
        matmul_q8_forward(k, s->out, &x, s->w, s->b, s->T, s->OC, o0, o1);
        return;
    }
    float *scratch = ctx->conv + (size_t)ith * ctx->conv_per_thread;
    matmul_forward(k, s->out, s->in, s->in_stride, s->w, s->b, s->T, s->C, s->OC, o0, o1, scratch, CONV_ROWS);
}

/* Heads [h0, h1) of attention, in this thread's scratch unless the taps
 * keep every head. */
static void attention_part(tinyllm_context *ctx, const step *s, int ith, int h0, int h1) {
    const tinyllm_model_info *h = &ctx->model->info;
    size_t head_stride = ctx->att_all_heads ? (size_t)s->T * (s->pos0 + s->T) : 0;
    size_t scratch = head_stride ? 0 : (size_t)ith * ctx->att_scratch;
    attention_forward(ctx->model->kern, &ctx->att_rule, s->out, ctx->scores + scratch, ctx->probs + scratch,
                      head_stride, s->in, s->k, s->v, s->T, s->pos0, h->n_head, h->n_head_kv, h->head_dim, h0, h1);
}

static void part(void *arg, int ith, int nth) {
    const job *j = arg;
    const step *s = j->s;
    int lo, hi;
    switch (s->op) {
    case OP_MATMUL:
        slice(s->OC, ith, nth, 16, &lo, &hi);
        if (lo < hi) matmul_part(j->ctx, s, ith, lo, hi);
        break;
    case OP_ATTENTION:
        slice(j->ctx->model->info.n_head, ith, nth, 1, &lo, &hi);
        if (lo < hi) attention_part(j->ctx, s, ith, lo, hi);
        break;
    default:
        slice(s->T, ith, nth, 1, &lo, &hi);
        if (lo < hi) rows_part(j->ctx, s, lo, hi);
        break;
    }
}

/* Threads the step is worth: 1 below the sizes above, else the pool. */
static int threads_for(const tinyllm_context *ctx, const step *s) {
    const tinyllm_model *m = ctx->model;
    long work;
    int small;
    switch (s->op) {
    case OP_MATMUL:
        small = s->T <= STREAM_MAX_ROWS ? (long)s->C * s->OC < PARALLEL_MIN_WEIGHTS
                                        : (long)s->T * s->C * s->OC < PARALLEL_MIN_WORK;
        break;
    case OP_ATTENTION: { /* decode streams the cached keys and values; prefill is arithmetic */
        long L = s->pos0 + s->T;
        small = s->T == 1 ? 2 * L * m->kv_dim < PARALLEL_MIN_WEIGHTS : s->T * L * m->info.n_embd < PARALLEL_MIN_WORK;
        break;
    }
    default:
        work = (long)s->T * (s->C ? s->C : m->info.n_embd);
        small = s->T == 1 || work < PARALLEL_MIN_ROWS_WORK;
        break;
    }
    return small ? 1 : thread_pool_size(ctx->pool);
}

void run_step(tinyllm_context *ctx, const step *s) {
    if (s->op == OP_MATMUL && matmul_takes_q8_act(s->w, s->T)) /* its input quantized once, rows split */
        run_step(ctx, &(step){OP_QUANTIZE, .in = s->in, .in_stride = s->in_stride, .T = s->T, .C = s->C});
    job j = {ctx, s};
    thread_pool_run(ctx->pool, part, &j, threads_for(ctx, s));
}
