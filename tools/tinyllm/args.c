#include "args.h"
#include "tinyllm.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void print_usage(const command_spec *cmd, FILE *to) {
    fprintf(to, "usage: tinyllm %s %s\n  %s\n\noptions:\n", cmd->command, cmd->usage, cmd->about);
    for (int i = 0; i < cmd->n_opts; i++) {
        const opt_spec *o = &cmd->opts[i];
        char flag[64];
        snprintf(flag, sizeof flag, "%s%s%s %s", o->alias ? o->alias : "", o->alias ? ", " : "", o->name,
                 o->kind == OPT_FLAG ? "" : o->metavar);
        fprintf(to, "  %-28s %s\n", flag, o->help);
    }
    fprintf(to, "  %-28s %s\n", "-h, --help", "show this help");
}

int usage_error(const command_spec *cmd, const char *fmt, ...) {
    /* the message quotes argv (option values, paths): control characters
     * are escaped, so it stays one line and sends no escape sequences */
    char raw[1024], shown[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    fprintf(stderr, "tinyllm %s: %s (see 'tinyllm %s --help')\n", cmd->command,
            tinyllm_printable(raw, strlen(raw), shown, sizeof shown), cmd->command);
    return EXIT_USAGE;
}

static int parse_int(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < -2147483647L || v > 2147483647L) return -1;
    *out = (int)v;
    return 0;
}

static int parse_value(const command_spec *cmd, const opt_spec *o, const char *v) {
    switch (o->kind) {
    case OPT_STRING:
        *(const char **)o->dest = v;
        return 0;
    case OPT_STRING_LIST: {
        string_list *l = o->dest;
        if (l->n == MAX_LIST) return usage_error(cmd, "%s: at most %d values", o->name, MAX_LIST);
        l->v[l->n++] = v;
        return 0;
    }
    case OPT_INT:
        if (parse_int(v, o->dest)) return usage_error(cmd, "%s '%s': expected an integer", o->name, v);
        return 0;
    case OPT_FLOAT: {
        char *end;
        double d = strtod(v, &end); /* tiny values round to subnormals or 0: accepted */
        if (end == v || *end || isnan(d)) return usage_error(cmd, "%s '%s': expected a number", o->name, v);
        if (!(fabs(d) <= FLT_MAX)) return usage_error(cmd, "%s '%s': out of range (expected a finite number)", o->name, v);
        *(float *)o->dest = (float)d;
        return 0;
    }
    case OPT_U64: {
        char *end;
        errno = 0;
        if (*v == '-') return usage_error(cmd, "%s '%s': expected a non-negative integer", o->name, v);
        unsigned long long u = strtoull(v, &end, 10);
        if (errno || end == v || *end) return usage_error(cmd, "%s '%s': expected a non-negative integer", o->name, v);
        *(uint64_t *)o->dest = u;
        return 0;
    }
    case OPT_INT_LIST: {
        int_list *l = o->dest;
        l->n = 0;
        char buf[256];
        if (strlen(v) >= sizeof buf) return usage_error(cmd, "%s: the list is too long", o->name);
        snprintf(buf, sizeof buf, "%s", v);
        /* every field between commas must be an integer: "1,,2" and "1," are errors */
        for (char *field = buf;;) {
            char *comma = strchr(field, ',');
            if (comma) *comma = 0;
            if (l->n == MAX_LIST) return usage_error(cmd, "%s: at most %d values", o->name, MAX_LIST);
            if (parse_int(field, &l->v[l->n]))
                return usage_error(cmd, "%s '%s': expected comma-separated integers", o->name, v);
            l->n++;
            if (!comma) break;
            field = comma + 1;
        }
        return 0;
    }
    case OPT_FLAG:
        *(int *)o->dest = 1;
        return 0;
    }
    return 0;
}

int with_common_flags(opt_spec *opts, unsigned which, common_flags *c, const opt_spec *own, int n_own) {
    const struct {
        unsigned flag;
        opt_spec row;
    } rows[] = {
        {CF_MODEL, {"--model", "-m", OPT_STRING, &c->model, "FILE", "GGUF model (required)", NULL}},
        {CF_CTX, {"--ctx", "-c", OPT_INT, &c->n_ctx, "N", "context length in tokens (default: the model's)", NULL}},
        {CF_THREADS, {"--threads", "-t", OPT_INT, &c->n_threads, "N", "threads (default: all cores)", NULL}},
        {CF_WEIGHTS,
         {"--expand-f32", NULL, OPT_FLAG, &c->expand_f32, "",
          "expand every weight matrix to F32 at load (default: used in place as stored, F16/Q8_0/Q4_0 included)",
          NULL}},
        {CF_WEIGHTS,
         {"--keep-f16", NULL, OPT_FLAG, &c->keep_f16, "", "accepted for old scripts (no effect): weights stay as stored by default",
          NULL}},
        {CF_NO_MMAP, {"--no-mmap", NULL, OPT_FLAG, &c->no_mmap, "", "read the model into memory instead of mapping it",
                      NULL}},
        {CF_CHECK_TENSORS,
         {"--check-tensors", NULL, OPT_FLAG, &c->check_tensors, "", "check every weight for NaN/Inf while loading",
          NULL}},
        {CF_EXPERIMENT,
         {"--experiment", NULL, OPT_STRING, &c->experiment, "NAME[,NAME]",
          "switch a piece off to see why it is there: no-scale, attn-scale=F, no-mask, mask-after-softmax, "
          "naive-softmax, no-positions, no-norm", NULL}},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (which & rows[i].flag) opts[n++] = rows[i].row;
    for (int i = 0; i < n_own && n < MAX_OPTS; i++) opts[n++] = own[i];
    return n;
}

int parse_command(command_spec *cmd, opt_spec *opts, unsigned which, common_flags *cf, const opt_spec *own, int n_own,
                  int argc, char **argv) {
    cmd->opts = opts;
    cmd->n_opts = with_common_flags(opts, which, cf, own, n_own);
    const char *pos[1];
    int n_pos, rc = parse_args(cmd, argc, argv, pos, 0, &n_pos);
    return rc >= 0 ? rc : check_common_flags(cmd, which, cf);
}

int check_common_flags(const command_spec *cmd, unsigned which, common_flags *c) {
    if ((which & CF_MODEL) && !c->model) return usage_error(cmd, "missing -m MODEL.gguf");
    tinyllm_error err = {0};
    if (c->experiment && tinyllm_experiments_parse(c->experiment, &c->exp, &err))
        return usage_error(cmd, "--experiment: %s", err.message);
    if (c->n_ctx < 0) return usage_error(cmd, "--ctx %d: expected a positive length", c->n_ctx);
    if (c->n_threads < 0 || c->n_threads > 256) return usage_error(cmd, "-t %d: expected 1 to 256 threads", c->n_threads);
    warn_threads(cmd, c->n_threads);
    return -1;
}

void warn_threads(const command_spec *cmd, int n_threads) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores > 0 && n_threads > cores)
        fprintf(stderr, "tinyllm %s: warning: -t %d is more threads than this machine's %ld cores (slower)\n",
                cmd->command, n_threads, cores);
}

int parse_args(const command_spec *cmd, int argc, char **argv, const char **positional, int max_pos, int *n_pos) {
    *n_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_usage(cmd, stdout);
            return EXIT_OK;
        }
        if (a[0] != '-' || a[1] == 0) {
            if (*n_pos >= max_pos) return usage_error(cmd, "unexpected argument '%s'", a);
            positional[(*n_pos)++] = a;
            continue;
        }
        /* --name=value is accepted too */
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
        const opt_spec *o = NULL;
        for (int k = 0; k < cmd->n_opts && !o; k++) {
            const opt_spec *c = &cmd->opts[k];
            if ((strlen(c->name) == name_len && !strncmp(c->name, a, name_len)) ||
                (c->alias && strlen(c->alias) == name_len && !strncmp(c->alias, a, name_len)))
                o = c;
        }
        if (!o) return usage_error(cmd, "unknown option '%.*s'", (int)name_len, a);
        if (o->seen) *o->seen = 1;
        if (o->kind == OPT_FLAG) {
            if (eq) return usage_error(cmd, "%s takes no value", o->name);
            parse_value(cmd, o, NULL);
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) return usage_error(cmd, "option %s needs a value (%s)", o->name, o->metavar);
            v = argv[++i];
        }
        int rc = parse_value(cmd, o, v);
        if (rc) return rc;
    }
    return -1;
}
