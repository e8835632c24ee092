/* knit-bench - helpers shared by the scheduling scenarios (sched_util.h). */
#include "sched_util.h"

#include <math.h>
#include <stdlib.h>

#include "base/error.h"
#include "base/rand.h"

/* --- PRNG ----------------------------------------------------------------------------------- */

void kb_rng_seed(kb_rng_t *r, uint64_t seed)
{
    r->s = knit__rand_seed(seed); /* any seed, 0 included, gives a non-zero state */
}

uint64_t kb_rng_next(kb_rng_t *r)
{
    return knit__xorshift64s(&r->s);
}

double kb_rng_unit(kb_rng_t *r)
{
    return (double)((kb_rng_next(r) >> 11) + 1) * 0x1.0p-53;
}

double kb_rng_exp(kb_rng_t *r, double mean)
{
    return -mean * log(kb_rng_unit(r));
}

/* --- tracked calls -------------------------------------------------------------------------- */

int kb_track_init(kb_tracker_t *s, size_t cap)
{
    *s = (kb_tracker_t) {0};
    s->v = calloc(cap ? cap : 1, sizeof *s->v);
    if (!s->v)
        return knit__err(KNIT_E_NOMEM, "no memory for %zu tracked calls", cap);
    s->cap = cap;
    return 0;
}

void kb_track_free(kb_tracker_t *s)
{
    free(s->v);
    *s = (kb_tracker_t) {0};
}

void kb_track_reset(kb_tracker_t *s)
{
    s->n = 0;
    s->pending = 0;
    s->last_t1 = 0;
}

static void on_settle(knit_future_t *f, void *ctx)
{
    kb_tracked_t *t = ctx;
    t->t1 = kb_now_ns();
    t->status = knit_future_status(f);
    const knit_value_t *v = knit_future_value(f);
    t->value = t->status == 0 && v && v->kind == KNIT_KIND_INT64 ? v->u.i64 : -1;
    if (t->t1 > t->set->last_t1)
        t->set->last_t1 = t->t1;
    t->set->pending--;
    knit_future_release(f);
}

int kb_track_send(knit_pool_t *pool, kb_tracker_t *s, int task, knit_value_t *arg, uint64_t t0)
{
    if (s->n == s->cap)
        return knit__err(KNIT_E_RANGE, "more than %zu calls in one round", s->cap);
    kb_tracked_t *t = &s->v[s->n];
    *t = (kb_tracked_t) {.t0 = t0, .value = -1, .status = KNIT_E_AGAIN, .set = s};
    knit_future_t *f;
    int rc = knit_call(pool, task, arg, &f);
    if (rc < 0)
        return rc;
    s->pending++;
    knit_future_on_settle(f, on_settle, t);
    return (int)s->n++;
}

int kb_track_drain(knit_pool_t *pool, kb_tracker_t *s)
{
    while (s->pending) {
        int rc = knit_pool_progress(pool, -1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* --- lazy pool ------------------------------------------------------------------------------ */

void kb_lazy_pool_init(kb_lazy_pool_t *lp, const kb_case_t *c)
{
    lp->c = c;
    lp->pool = NULL;
    kb_pool_opts(c, &lp->opts);
}

int kb_lazy_pool_get(kb_lazy_pool_t *lp, knit_pool_t **out)
{
    if (!lp->pool) {
        int rc = kb_pool_create(lp->c, &lp->opts, &lp->pool);
        if (rc < 0) {
            lp->pool = NULL;
            return rc;
        }
    }
    *out = lp->pool;
    return 0;
}

void kb_lazy_pool_close(kb_lazy_pool_t *lp)
{
    if (!lp->pool)
        return;
    knit_pool_shutdown(lp->pool, KNIT_SHUTDOWN_IMMEDIATE, 0);
    knit_pool_destroy(lp->pool);
    lp->pool = NULL;
}

/* --- samples -------------------------------------------------------------------------------- */

int kb_samples_push(kb_samples_t *s, double x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        double *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return knit__err(KNIT_E_NOMEM, "no memory for %zu samples", cap);
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double kb_samples_median(kb_samples_t *s)
{
    if (!s->n)
        return 0;
    qsort(s->v, s->n, sizeof *s->v, cmp_double); /* the order of the samples does not matter */
    return s->n % 2 ? s->v[s->n / 2] : (s->v[s->n / 2 - 1] + s->v[s->n / 2]) / 2;
}

void kb_samples_free(kb_samples_t *s)
{
    free(s->v);
    *s = (kb_samples_t) {0};
}

/* --- plans and entries ---------------------------------------------------------------------- */

uint64_t kb_rep_budget(const kb_ctx_t *ctx, uint64_t total_ns, uint64_t min_ns)
{
    uint32_t reps = kb_repetitions(ctx);
    uint64_t ns = total_ns / (reps ? reps : 1);
    return ns > min_ns ? ns : min_ns;
}

kb_plan_t kb_slow_case_plan(const kb_ctx_t *ctx, uint64_t total_ns)
{
    kb_plan_t plan = {.min_rounds = 1};
    if (!kb_quick(ctx)) {
        plan.warmup_ns = 1; /* one round */
        plan.warmup_rounds = 1;
        plan.rep_ns = kb_rep_budget(ctx, total_ns, 1);
    }
    return plan;
}

int kb_run_updating_case(kb_ctx_t *ctx, const kb_case_t *c, const kb_plan_t *plan, kb_round_fn fn,
    void *state, json_t *extra)
{
    json_incref(extra); /* the runner takes one reference; rounds update the object */
    return kb_run_case(ctx, c, plan, fn, state, extra, NULL);
}

void kb_extra_real(json_t *extra, const char *key, double v)
{
    if (extra)
        json_object_set_new(extra, key, json_real(v));
}

int kb_tracked_round(
    kb_lazy_pool_t *lp, kb_tracker_t *calls, kb_submit_fn submit, void *st, uint64_t *start)
{
    knit_pool_t *pool;
    int rc = kb_lazy_pool_get(lp, &pool);
    if (rc < 0)
        return rc;
    kb_track_reset(calls);
    *start = kb_now_ns();
    rc = submit(st, pool, *start);
    return rc < 0 ? rc : kb_track_drain(pool, calls);
}
