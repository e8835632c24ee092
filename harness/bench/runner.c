/*
 * knit-bench - running a case: filters, warm-up, repetitions, statistics after the run, CPU
 * time, floor references, progress and ETA on stderr.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floor.h"
#include "run.h"

#define MS 1000000ull

bool kb_quick(const kb_ctx_t *ctx)
{
    return ctx->quick;
}

uint32_t kb_repetitions(const kb_ctx_t *ctx)
{
    return ctx->reps;
}

bool kb_in_filter(const kb_filter_t *f, const char *v)
{
    if (f->n == 0)
        return true;
    for (unsigned i = 0; i < f->n; i++)
        if (!strcmp(f->v[i], v))
            return true;
    return false;
}

bool kb_want(const kb_ctx_t *ctx, const kb_case_t *c)
{
    if (!kb_in_filter(&ctx->scenarios, c->scenario) || !kb_in_filter(&ctx->transports, c->transport)
        || !kb_in_filter(&ctx->runtimes, c->runtime) || !kb_in_filter(&ctx->balancers, c->balancer))
        return false;
    if (ctx->nworkers == 0)
        return true;
    for (unsigned i = 0; i < ctx->nworkers; i++)
        if (ctx->workers[i] == c->workers)
            return true;
    return false;
}

/* --- progress ------------------------------------------------------------------------------ */

/* Seconds left: the remaining scenarios' budgets, scaled by how the finished part compared
 * with its budget. */
static double eta_s(const kb_ctx_t *ctx)
{
    double elapsed = (double)(kb_now_ns() - ctx->start_ns) / 1e9;
    double cur = kb_budget_s(ctx->scenario ? ctx->scenario : "", ctx->quick);
    double in_cur = (double)(kb_now_ns() - ctx->scenario_start_ns) / 1e9;
    double done = ctx->budget_done + (in_cur < cur ? in_cur : cur);
    double left = ctx->budget_total - done;
    double pace = done > 1.0 ? elapsed / done : 1.0;
    return left > 0 ? left * pace : 0;
}

void kb_progress(kb_ctx_t *ctx, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    double eta = eta_s(ctx);
    if (ctx->tty) {
        double frac = ctx->budget_total > 0
            ? 1.0 - eta / (eta + (double)(kb_now_ns() - ctx->start_ns) / 1e9)
            : 0;
        int fill = (int)(frac * 20.0 + 0.5);
        fprintf(stderr, "\r\033[K[%-20.*s] %u/%u %s  ETA %.0f s", fill, "####################",
            ctx->scenario_index + 1, ctx->scenario_count, msg, eta);
    } else {
        fprintf(stderr, "knit-bench: [%u/%u] %s (ETA %.0f s)\n", ctx->scenario_index + 1,
            ctx->scenario_count, msg, eta);
    }
    fflush(stderr);
}

void kb_progress_done(kb_ctx_t *ctx)
{
    if (ctx->tty)
        fprintf(stderr, "\r\033[K");
}

/* --- running a case ------------------------------------------------------------------------ */

typedef struct plan_eff {
    uint32_t reps;
    uint64_t min_rounds, max_rounds, rep_ns, warmup_ns, warmup_rounds;
} plan_eff_t;

static plan_eff_t effective(const kb_ctx_t *ctx, const kb_plan_t *p)
{
    static const kb_plan_t none = {0};
    if (!p)
        p = &none;
    plan_eff_t e = {
        .reps = p->repetitions ? p->repetitions : ctx->reps,
        .min_rounds = p->min_rounds ? p->min_rounds : 1,
        .max_rounds = p->max_rounds ? p->max_rounds : UINT64_MAX,
        .rep_ns = p->rep_ns ? p->rep_ns : (ctx->quick ? 40 : 200) * MS,
        .warmup_ns = p->warmup_ns ? p->warmup_ns : (ctx->quick ? 10 : 50) * MS,
        .warmup_rounds = p->warmup_rounds ? p->warmup_rounds : 1,
    };
    if (e.reps > KB_MAX_REPS)
        e.reps = KB_MAX_REPS;
    if (e.reps == 0)
        e.reps = 1;
    if (e.max_rounds < e.min_rounds)
        e.max_rounds = e.min_rounds;
    return e;
}

/* Warm-up: rounds until both the time and the round count are reached; their records go to a
 * scratch histogram that is dropped. */
static int warm_up(
    const plan_eff_t *e, kb_round_fn fn, void *state, knit_hist_t *scratch, uint64_t *iterations)
{
    kb_rep_t rep = {.hist = scratch, .warmup = true};
    uint64_t end = kb_now_ns() + e->warmup_ns;
    int rc = 0;
    for (; rc == 0 && (rep.round < e->warmup_rounds || kb_now_ns() < end); rep.round++)
        rc = fn(state, &rep);
    *iterations = rep.ops;
    return rc;
}

typedef struct totals {
    uint64_t ops, bytes, errors, real_ns, cpu_ns;
    uint64_t timed_ns, timed_ops; /* rounds that timed their own throughput (kb_rep_t) */
} totals_t;

/* One measured repetition into `h` (cleared first). */
static int repetition(const plan_eff_t *e, kb_round_fn fn, void *state, knit_hist_t *h, totals_t *t)
{
    knit_hist_init(h);
    kb_rep_t rep = {.hist = h};
    uint64_t cpu0 = kb_cpu_ns(), t0 = kb_now_ns(), end = t0 + e->rep_ns;
    int rc = 0;
    while (
        rc == 0 && rep.round < e->max_rounds && (rep.round < e->min_rounds || kb_now_ns() < end)) {
        rc = fn(state, &rep);
        rep.round++;
    }
    t->real_ns += kb_now_ns() - t0;
    uint64_t cpu1 = kb_cpu_ns();
    t->cpu_ns += cpu1 > cpu0 ? cpu1 - cpu0 : 0; /* a child's CPU in flight between counts */
    t->ops += rep.ops;
    t->bytes += rep.bytes;
    t->errors += rep.errors;
    t->timed_ns += rep.timed_ns;
    t->timed_ops += rep.timed_ops;
    return rc;
}

/* A reference measured around the repetitions: called before the first and after each. */
typedef struct bracket {
    const char *mech;
    bool throughput;
    bool quick;
    uint32_t n;                 /* samples taken */
    double ns[KB_MAX_REPS + 1]; /* p50, or ns per operation for a throughput mechanism */
    double p99[KB_MAX_REPS + 1];
} bracket_t;

static int bracket_sample(bracket_t *b);

/* What a plan measured: all repetitions pooled, the last one, and per-repetition figures. */
typedef struct measured {
    knit_hist_t all, h;
    totals_t t;
    uint64_t warmup_ops;
    double rep_p50[KB_MAX_REPS], rep_p99[KB_MAX_REPS], rep_ns_per_op[KB_MAX_REPS];
    double rep_cpu_per_op[KB_MAX_REPS];
} measured_t;

/* Warm-up, then e->reps repetitions pooled into m->all; with `b`, its reference is measured
 * before the first repetition and after each (a reference that fails ends the bracket). */
static int measure(const plan_eff_t *e, kb_round_fn fn, void *state, measured_t *m, bracket_t *b)
{
    int rc = warm_up(e, fn, state, &m->h, &m->warmup_ops);
    knit_hist_init(&m->all);
    if (rc == 0 && b && bracket_sample(b) < 0)
        b = NULL;
    for (uint32_t i = 0; rc == 0 && i < e->reps; i++) {
        totals_t before = m->t;
        rc = repetition(e, fn, state, &m->h, &m->t);
        uint64_t ops = m->t.ops - before.ops, ns = m->t.real_ns - before.real_ns;
        if (m->t.timed_ops > before.timed_ops) { /* the rounds timed their own throughput */
            ops = m->t.timed_ops - before.timed_ops;
            ns = m->t.timed_ns - before.timed_ns;
        }
        m->rep_cpu_per_op[i] = ops ? (double)(m->t.cpu_ns - before.cpu_ns) / (double)ops : 0;
        m->rep_p50[i] = (double)knit_hist_percentile(&m->h, 50);
        m->rep_p99[i] = (double)knit_hist_percentile(&m->h, 99);
        m->rep_ns_per_op[i] = ops ? (double)ns / (double)ops : 0;
        knit_hist_add(&m->all, &m->h);
        if (rc == 0 && b && bracket_sample(b) < 0)
            b = NULL;
    }
    return rc;
}

/* --- floor references ---------------------------------------------------------------------- */

/* Mechanism `mech` measured now with plan `e`: p50 and p99 of all its repetitions, and the
 * mean time per operation (real time / operations: a throughput mechanism's figure, never
 * rounded to whole ns). */
static int floor_measure(
    const plan_eff_t *e, const char *mech, double *p50, double *p99, double *ns_per_op)
{
    kb_floor_t *f;
    int rc = kb_floor_open(mech, &f);
    if (rc < 0)
        return rc;
    measured_t *m = calloc(1, sizeof *m);
    rc = m ? measure(e, kb_floor_round, f, m, NULL) : KNIT_E_NOMEM;
    kb_floor_close(f);
    if (rc == 0 && p50)
        *p50 = (double)knit_hist_percentile(&m->all, 50);
    if (rc == 0 && p99)
        *p99 = (double)knit_hist_percentile(&m->all, 99);
    if (rc == 0 && ns_per_op)
        *ns_per_op = m->t.ops ? (double)m->t.real_ns / (double)m->t.ops : 0;
    free(m);
    return rc;
}

/* One reference sample around a repetition: short (10 ms after 2 ms of warm-up; --quick: 4 ms
 * after 1 ms), taken with the case's pool idle (its workers park after their spin budget). */
static int bracket_sample(bracket_t *b)
{
    if (b->n > KB_MAX_REPS)
        return 0;
    plan_eff_t e = {.reps = 1,
        .min_rounds = 3,
        .max_rounds = UINT64_MAX,
        .rep_ns = (b->quick ? 4 : 10) * MS,
        .warmup_ns = (b->quick ? 1 : 2) * MS,
        .warmup_rounds = 1};
    double p50 = 0, p99 = 0, per_op = 0;
    int rc = floor_measure(&e, b->mech, &p50, &p99, &per_op);
    if (rc < 0)
        return rc;
    b->ns[b->n] = b->throughput ? per_op : p50;
    b->p99[b->n] = p99;
    b->n++;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n-1] (0 when n is 0); v is left sorted. */
static double median(double *v, uint32_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int kb_floor_ref(kb_ctx_t *ctx, const char *mech, double *p50, double *p99)
{
    /* short, because it is taken next to every case that names it; the warm-up settles
     * caches, wake-up paths and the CPU frequency */
    plan_eff_t e = {.reps = 1,
        .min_rounds = 3,
        .max_rounds = UINT64_MAX,
        .rep_ns = (ctx->quick ? 10 : 25) * MS,
        .warmup_ns = (ctx->quick ? 2 : 5) * MS,
        .warmup_rounds = 1};
    return floor_measure(&e, mech, p50, p99, NULL);
}

/* A reference as slow as its case (floor_ref_as_case: futex-gap-<time>), measured once with
 * the case's own plan before the case, so the two have as many samples. Unset on failure. */
static void case_floor_ref(const kb_plan_t *plan, const plan_eff_t *e, kb_result_t *r)
{
    double p50 = 0, p99 = 0, scale = plan->floor_ref_scale > 0 ? plan->floor_ref_scale : 1.0;
    if (floor_measure(e, plan->floor_ref, &p50, &p99, NULL) == 0) {
        r->floor_ns = p50 * scale;
        r->floor_p99_ns = p99 * scale;
        r->floor_mech = plan->floor_ref;
        r->ref_samples = 1;
    }
}

/* The case's figure in a repetition, as its reference reads it. */
static double rep_figure(const kb_result_t *r, uint32_t i)
{
    return r->ref_throughput ? r->rep_ns_per_op[i] : r->rep_p50[i];
}

/* Per-repetition ratios against the mean of the references just before and just after it. */
static void bracket_ratios(const kb_plan_t *plan, bracket_t *b, kb_result_t *r)
{
    double scale = plan->floor_ref_scale > 0 ? plan->floor_ref_scale : 1.0;
    r->floor_mech = plan->floor_ref;
    r->ref_throughput = b->throughput;
    r->ref_bracketed = true;
    r->ref_samples = b->n;
    if (b->n < r->repetitions + 1)
        return; /* a reference failed: the entry says so with its sample count */
    double ratios[KB_MAX_REPS];
    uint32_t k = 0;
    for (uint32_t i = 0; i < r->repetitions; i++) {
        r->rep_ref_ns[i] = (b->ns[i] + b->ns[i + 1]) / 2 * scale;
        double fig = rep_figure(r, i);
        r->rep_ratio[i] = r->rep_ref_ns[i] > 0 && fig > 0 ? fig / r->rep_ref_ns[i] : 0;
        if (r->rep_ratio[i] > 0)
            ratios[k++] = r->rep_ratio[i];
    }
    r->ratio = median(ratios, k);
    r->floor_ns = median(b->ns, b->n) * scale;
    r->floor_p99_ns = median(b->p99, b->n) * scale;
}

static void fill_stats(kb_result_t *r, const knit_hist_t *all, const totals_t *t)
{
    r->min = (double)all->min;
    r->p50 = (double)knit_hist_percentile(all, 50);
    r->p90 = (double)knit_hist_percentile(all, 90);
    r->p99 = (double)knit_hist_percentile(all, 99);
    r->p999 = (double)knit_hist_percentile(all, 99.9);
    r->max = (double)all->max;
    r->mean = knit_hist_mean(all);
    r->stddev = knit_hist_stddev(all);
    r->iterations = t->ops;
    r->samples = all->total;
    r->errors = t->errors;
    r->real_s = (double)t->real_ns / 1e9;
    r->calls_per_s = t->real_ns ? (double)t->ops * 1e9 / (double)t->real_ns : 0;
    if (t->timed_ns && t->timed_ops)
        r->calls_per_s = (double)t->timed_ops * 1e9 / (double)t->timed_ns;
    r->bytes_per_s = t->ops ? r->calls_per_s * (double)t->bytes / (double)t->ops : 0;
    r->cpu_ns_per_call = t->ops ? (double)t->cpu_ns / (double)t->ops : 0;
}

int kb_run_case(kb_ctx_t *ctx, const kb_case_t *c, const kb_plan_t *plan, kb_round_fn fn,
    void *state, json_t *extra, kb_result_t *out)
{
    char name[256];
    kb_case_name(c, name, sizeof name);
    kb_progress(ctx, "%s", name);
    plan_eff_t e = effective(ctx, plan);
    kb_result_t r = {.c = c, .extra = extra, .repetitions = e.reps};
    r.no_ref = plan ? plan->no_ref : NULL;
    bracket_t *b = NULL;
    if (plan && plan->floor_ref && plan->floor_ref_as_case) {
        case_floor_ref(plan, &e, &r);
    } else if (plan && plan->floor_ref) {
        b = calloc(1, sizeof *b);
        if (b)
            *b = (bracket_t) {.mech = plan->floor_ref,
                .throughput = kb_floor_is_throughput(plan->floor_ref),
                .quick = ctx->quick};
    }
    measured_t *m = calloc(1, sizeof *m);
    int rc = m ? measure(&e, fn, state, m, b) : KNIT_E_NOMEM;
    if (rc < 0) {
        kb_fail(ctx, c, rc);
        json_decref(extra);
    } else {
        fill_stats(&r, &m->all, &m->t);
        r.warmup_iterations = m->warmup_ops;
        memcpy(r.rep_p50, m->rep_p50, sizeof r.rep_p50);
        memcpy(r.rep_p99, m->rep_p99, sizeof r.rep_p99);
        memcpy(r.rep_ns_per_op, m->rep_ns_per_op, sizeof r.rep_ns_per_op);
        memcpy(r.rep_cpu_per_op, m->rep_cpu_per_op, sizeof r.rep_cpu_per_op);
        if (b)
            bracket_ratios(plan, b, &r);
        else if (r.floor_ns > 0)
            r.ratio = r.ref_throughput ? 0 : r.p50 / r.floor_ns;
        if (out) {
            *out = r;
            out->extra = NULL;
        }
        kb_emit(ctx, &r);
    }
    free(m);
    free(b);
    return rc;
}

void kb_fail(kb_ctx_t *ctx, const kb_case_t *c, int rc)
{
    char name[256];
    kb_case_name(c, name, sizeof name);
    ctx->failed++;
    fprintf(stderr, "%sknit-bench: %s failed: %s (%s)\n", ctx->tty ? "\r\033[K" : "", name,
        knit_strerror(rc), knit_errmsg());
}

void kb_emit(kb_ctx_t *ctx, kb_result_t *r)
{
    char name[256];
    kb_case_name(r->c, name, sizeof name);
    json_t *entry = kb_entry_json(r, name);
    if (entry)
        json_array_append_new(ctx->entries, entry);
    kb_gbench_entries(ctx->benchmarks, r, name);
    kb_peak_rss_reset(); /* the next case's peak starts here */
    if (ctx->table)
        kb_table_row(ctx, r, name);
    json_decref(r->extra);
    r->extra = NULL;
    ctx->cases++;
}

/* --- budgets ------------------------------------------------------------------------------- */

double kb_budget_s(const char *scenario, bool quick)
{
    static const struct {
        const char *name;
        double full, quick;
    } b[] = {
        {"floor", 15, 2},
        {"latency", 30, 3},
        {"batch", 90, 4},
        {"echo", 30, 3},
        {"types", 60, 3},
        {"payload", 120, 4},
        {"load", 90, 4},
        {"balance", 90, 4},
        {"startup", 45, 3},
        {"idle", 60, 3},
        {"cpu", 40, 3},
        {"dispatch", 30, 3},
        {"contended", 60, 4},
    };
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
        if (!strcmp(b[i].name, scenario))
            return quick ? b[i].quick : b[i].full;
    return quick ? 3 : 30;
}
