/* Experiments (tinyllm.h): names, parsing, description and the combinations
 * that contradict each other; a context takes them in context.c. What each
 * one changes is done where that piece lives: attention.c (scale, mask,
 * softmax), forward.c (positions, norms). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiments.h"
#include "error.h"

/* The names, one per flag; attn-scale takes "=F". */
static const struct {
    const char *name;
    unsigned flag;
} EXPERIMENTS[] = {
    {"no-scale", TINYLLM_EXP_NO_SCALE},
    {"attn-scale", TINYLLM_EXP_ATTN_SCALE},
    {"no-mask", TINYLLM_EXP_NO_MASK},
    {"mask-after-softmax", TINYLLM_EXP_MASK_AFTER_SOFTMAX},
    {"naive-softmax", TINYLLM_EXP_NAIVE_SOFTMAX},
    {"no-positions", TINYLLM_EXP_NO_POSITIONS},
    {"no-norm", TINYLLM_EXP_NO_NORM},
};
#define N_EXPERIMENTS (sizeof EXPERIMENTS / sizeof EXPERIMENTS[0])
#define ALL_FLAGS ((1u << N_EXPERIMENTS) - 1)
#define EXPECTED "no-scale, attn-scale=F, no-mask, mask-after-softmax, naive-softmax, no-positions or no-norm"

/* Pairs that contradict each other. */
tinyllm_status experiments_check(const tinyllm_experiments *e, tinyllm_error *err) {
    if ((e->flags & TINYLLM_EXP_NO_SCALE) && (e->flags & TINYLLM_EXP_ATTN_SCALE))
        return set_error(err, TINYLLM_ERR_ARG, "experiments: no-scale and attn-scale both set the scale (expected one)");
    if ((e->flags & TINYLLM_EXP_NO_MASK) && (e->flags & TINYLLM_EXP_MASK_AFTER_SOFTMAX))
        return set_error(err, TINYLLM_ERR_ARG,
                         "experiments: no-mask and mask-after-softmax both change the mask (expected one)");
    if ((e->flags & TINYLLM_EXP_ATTN_SCALE) && !isfinite(e->attn_scale))
        return set_error(err, TINYLLM_ERR_ARG, "experiments: attn-scale=%g (expected a finite factor)", e->attn_scale);
    if (e->flags & ~ALL_FLAGS)
        return set_error(err, TINYLLM_ERR_ARG, "experiments: unknown flags 0x%x (expected TINYLLM_EXP_*)",
                         e->flags & ~ALL_FLAGS);
    return TINYLLM_OK;
}

tinyllm_status tinyllm_experiments_parse(const char *spec, tinyllm_experiments *out, tinyllm_error *err) {
    if (!spec || !out) return set_error(err, TINYLLM_ERR_ARG, "experiments_parse: NULL spec or out");
    tinyllm_experiments e = {0, 0.0f};
    if (!strcmp(spec, "none")) spec = "";
    for (const char *p = spec; *p;) {
        size_t n = strcspn(p, ",");
        const char *eq = memchr(p, '=', n);
        size_t name_len = eq ? (size_t)(eq - p) : n;
        char shown[64];
        tinyllm_printable(p, n, shown, sizeof shown);
        unsigned flag = 0;
        for (size_t i = 0; i < N_EXPERIMENTS && !flag; i++)
            if (strlen(EXPERIMENTS[i].name) == name_len && !memcmp(p, EXPERIMENTS[i].name, name_len))
                flag = EXPERIMENTS[i].flag;
        if (!flag) return set_error(err, TINYLLM_ERR_ARG, "experiment '%s' (expected " EXPECTED ")", shown);
        if (e.flags & flag) return set_error(err, TINYLLM_ERR_ARG, "experiment '%s' given twice", shown);
        if ((flag == TINYLLM_EXP_ATTN_SCALE) != (eq != NULL))
            return set_error(err, TINYLLM_ERR_ARG, "experiment '%s': %s", shown,
                             eq ? "takes no value" : "expected attn-scale=F, a factor for q.k");
        if (eq) {
            char num[64], *end;
            size_t len = n - name_len - 1;
            if (len == 0 || len >= sizeof num)
                return set_error(err, TINYLLM_ERR_ARG, "experiment '%s': expected attn-scale=F, a number", shown);
            memcpy(num, eq + 1, len);
            num[len] = 0;
            double v = strtod(num, &end);
            if (*end || !isfinite(v) || fabs(v) > 1e30)
                return set_error(err, TINYLLM_ERR_ARG, "experiment '%s': expected attn-scale=F, a finite number",
                                 shown);
            e.attn_scale = (float)v;
        }
        e.flags |= flag;
        p += n;
        if (*p == ',') p++;
    }
    tinyllm_status st = experiments_check(&e, err);
    if (!st) *out = e;
    return st;
}

size_t tinyllm_experiments_describe(const tinyllm_experiments *e, char *buf, size_t cap) {
    char text[256] = "";
    size_t n = 0;
    for (size_t i = 0; e && i < N_EXPERIMENTS; i++) {
        if (!(e->flags & EXPERIMENTS[i].flag)) continue;
        n += (size_t)snprintf(text + n, sizeof text - n, "%s%s", n ? "," : "", EXPERIMENTS[i].name);
        if (EXPERIMENTS[i].flag == TINYLLM_EXP_ATTN_SCALE)
            n += (size_t)snprintf(text + n, sizeof text - n, "=%g", e->attn_scale);
    }
    if (!n) n = (size_t)snprintf(text, sizeof text, "none");
    if (buf && cap) snprintf(buf, cap, "%s", text);
    return n;
}
