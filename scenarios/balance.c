/*
 * knit-bench scenario `balance`: how the balancers and work stealing spread uneven work.
 *
 * A round submits a whole batch of busy-wait calls at once (KB_TASK_BURN with the task's cost
 * in ns; it resolves the index of the worker that ran it) and waits for all of them. Costs
 * follow one of four shapes, drawn from a fixed seed so every balancer gets the same sequence:
 *   flat          every task 50 us
 *   uniform       uniform in [10 us, 200 us]
 *   heavy-tailed  Pareto (x_m 20 us, alpha 1.2) capped at 5 ms: most near 20 us, a few in ms
 *   bimodal       90 % 10 us, 10 % 1 ms
 * 400 tasks per round (quick: 100). Every call's send-to-settle time is recorded. Per measured
 * round the scenario derives, from the worker indices the calls resolved with:
 *   makespan_over_ideal  (first send to last settlement) / (total cost / workers)
 *   utilisation          per worker: the costs of the tasks it ran / makespan
 *   jain_index           (sum x)^2 / (n sum x^2) over the workers' busy times
 * and reports their medians over the measured rounds, plus cheap_p99_ns: the p99 send-to-settle
 * time of the calls whose cost is at most the shape's median, over all measured rounds.
 *
 * Cases: balance/knit/<runtime>/w<workers>/b<tasks>/p8/<balancer>/<shape> for roundRobin,
 * firstIdle, randomLane, firstIdleOrRandom and steal, 2 workers (full run: also 4), threads
 * (full run: also processes for the four balancers; stealing is thread-only). Quick: roundRobin
 * and steal, flat and bimodal.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "bench.h"
#include "sched_util.h"

#define BAL_TASKS       400u
#define BAL_TASKS_QUICK 100u
#define BAL_MAX_WORKERS 4u
#define BAL_SEED        0x62616c616e6365ull /* "balance" */
#define BAL_ARG_BYTES   8u                  /* int64 argument, int64 result */

enum { SHAPE_FLAT, SHAPE_UNIFORM, SHAPE_HEAVY, SHAPE_BIMODAL, SHAPE_COUNT };

static const char *const shape_names[SHAPE_COUNT] = {"flat", "uniform", "heavy-tailed", "bimodal"};

/* One shape's cost sequence. */
typedef struct bal_shape {
    uint64_t *costs;
    size_t n;
    uint64_t median, total;
} bal_shape_t;

typedef struct bal_state {
    kb_lazy_pool_t lp;
    kb_tracker_t calls;
    const bal_shape_t *shape;
    uint32_t workers;
    kb_samples_t ratio, jain, util[BAL_MAX_WORKERS];
    knit_hist_t *cheap; /* send-to-settle of the cheap calls, measured rounds */
    json_t *extra;
} bal_state_t;

/* --- cost shapes ---------------------------------------------------------------------------- */

static uint64_t shape_cost(int shape, kb_rng_t *r)
{
    double u = kb_rng_unit(r);
    switch (shape) {
    case SHAPE_UNIFORM:
        return 10000 + (uint64_t)(u * 190000.0);
    case SHAPE_HEAVY: {
        double x = 20000.0 / pow(u, 1.0 / 1.2);
        return x > 5e6 ? 5000000 : (uint64_t)x;
    }
    case SHAPE_BIMODAL:
        return u <= 0.9 ? 10000 : 1000000;
    default:
        return 50000;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int shape_make(bal_shape_t *s, int shape, size_t n)
{
    *s = (bal_shape_t) {.n = n};
    s->costs = malloc(n * sizeof *s->costs);
    uint64_t *sorted = malloc(n * sizeof *sorted);
    if (!s->costs || !sorted) {
        free(s->costs);
        free(sorted);
        return knit__err(KNIT_E_NOMEM, "balance: no memory for %zu costs", n);
    }
    kb_rng_t r;
    kb_rng_seed(&r, BAL_SEED + (uint64_t)shape);
    for (size_t i = 0; i < n; i++) {
        s->costs[i] = shape_cost(shape, &r);
        sorted[i] = s->costs[i];
        s->total += s->costs[i];
    }
    qsort(sorted, n, sizeof *sorted, cmp_u64);
    s->median = sorted[(n - 1) / 2];
    free(sorted);
    return 0;
}

/* --- a round -------------------------------------------------------------------------------- */

static int submit_all(void *arg, knit_pool_t *pool, uint64_t start)
{
    bal_state_t *st = arg;
    (void)start;
    for (size_t i = 0; i < st->shape->n; i++) {
        knit_value_t v = knit_v_int64((int64_t)st->shape->costs[i]);
        int rc = kb_track_send(pool, &st->calls, KB_TASK_BURN, &v, kb_now_ns());
        if (rc < 0)
            return rc;
    }
    return 0;
}

static double jain_index(const double *x, uint32_t n)
{
    double sum = 0, sumsq = 0;
    for (uint32_t i = 0; i < n; i++) {
        sum += x[i];
        sumsq += x[i] * x[i];
    }
    return sumsq > 0 ? sum * sum / ((double)n * sumsq) : 0;
}

static void update_extra(bal_state_t *st)
{
    kb_extra_real(st->extra, "makespan_over_ideal", kb_samples_median(&st->ratio));
    kb_extra_real(st->extra, "jain_index", kb_samples_median(&st->jain));
    kb_extra_real(st->extra, "cheap_p99_ns", (double)knit_hist_percentile(st->cheap, 99.0));
    json_t *util = json_array();
    for (uint32_t w = 0; w < st->workers; w++)
        json_array_append_new(util, json_real(kb_samples_median(&st->util[w])));
    json_object_set_new(st->extra, "utilisation", util);
}

/* Per-call latencies and errors; busy[] receives each worker's share of the costs. */
static void account_calls(bal_state_t *st, kb_rep_t *rep, double *busy)
{
    for (size_t i = 0; i < st->calls.n; i++) {
        const kb_tracked_t *t = &st->calls.v[i];
        if (t->status != 0 || t->value < 0 || t->value >= (int64_t)st->workers) {
            rep->errors++;
            continue;
        }
        uint64_t cost = st->shape->costs[i], lat = t->t1 - t->t0;
        busy[t->value] += (double)cost;
        kb_record(rep, lat);
        if (!rep->warmup && cost <= st->shape->median)
            knit_hist_record(st->cheap, lat);
        rep->ops++;
        rep->bytes += 2 * BAL_ARG_BYTES;
    }
}

static int account(bal_state_t *st, kb_rep_t *rep, uint64_t start)
{
    double busy[BAL_MAX_WORKERS] = {0};
    account_calls(st, rep, busy);
    if (rep->warmup)
        return 0;
    double makespan = (double)(st->calls.last_t1 > start ? st->calls.last_t1 - start : 1);
    double ideal = (double)st->shape->total / st->workers;
    int rc = kb_samples_push(&st->ratio, makespan / ideal);
    if (rc == 0)
        rc = kb_samples_push(&st->jain, jain_index(busy, st->workers));
    for (uint32_t w = 0; rc == 0 && w < st->workers; w++)
        rc = kb_samples_push(&st->util[w], busy[w] / makespan);
    if (rc < 0)
        return rc;
    update_extra(st);
    return 0;
}

static int bal_round(void *arg, kb_rep_t *rep)
{
    bal_state_t *st = arg;
    uint64_t start;
    int rc = kb_tracked_round(&st->lp, &st->calls, submit_all, st, &start);
    return rc < 0 ? rc : account(st, rep, start);
}

/* --- cases ---------------------------------------------------------------------------------- */

static int bal_state_init(bal_state_t *st, const kb_case_t *c, const bal_shape_t *shape)
{
    *st = (bal_state_t) {.shape = shape, .workers = c->workers};
    kb_lazy_pool_init(&st->lp, c);
    st->cheap = malloc(sizeof *st->cheap);
    st->extra = json_object();
    if (!st->cheap || !st->extra || kb_track_init(&st->calls, shape->n) < 0) {
        free(st->cheap);
        json_decref(st->extra);
        kb_track_free(&st->calls);
        return knit__err(KNIT_E_NOMEM, "balance: no memory for a round");
    }
    knit_hist_init(st->cheap);
    json_object_set_new(st->extra, "shape", json_string(c->variant));
    json_object_set_new(st->extra, "tasks", json_integer((json_int_t)shape->n));
    json_object_set_new(st->extra, "total_cost_ns", json_integer((json_int_t)shape->total));
    json_object_set_new(st->extra, "cheap_max_ns", json_integer((json_int_t)shape->median));
    return 0;
}

static void bal_state_free(bal_state_t *st)
{
    kb_lazy_pool_close(&st->lp); /* before the calls: settling runs their callbacks */
    kb_track_free(&st->calls);
    kb_samples_free(&st->ratio);
    kb_samples_free(&st->jain);
    for (uint32_t w = 0; w < BAL_MAX_WORKERS; w++)
        kb_samples_free(&st->util[w]);
    free(st->cheap);
    json_decref(st->extra);
}

static int bal_case(kb_ctx_t *ctx, const kb_case_t *c, const bal_shape_t *shape)
{
    bal_state_t st;
    int rc = bal_state_init(&st, c, shape);
    if (rc < 0)
        return rc;
    kb_plan_t plan = kb_slow_case_plan(ctx, 700000000ull);
    plan.no_ref = "a schedule's quality: read by makespan over the ideal schedule (makespan_ratio)";
    kb_run_updating_case(ctx, c, &plan, bal_round, &st, st.extra);
    bal_state_free(&st);
    return 0;
}

static int bal_runtime(kb_ctx_t *ctx, const char *runtime, const bal_shape_t *shapes)
{
    static const uint32_t workers[] = {2, 4};
    bool quick = kb_quick(ctx), thread = !strcmp(runtime, "thread");
    const char *balancers[] = {knit_balancer_name(KNIT_BALANCER_ROUND_ROBIN),
        knit_balancer_name(KNIT_BALANCER_FIRST_IDLE), knit_balancer_name(KNIT_BALANCER_RANDOM_LANE),
        knit_balancer_name(KNIT_BALANCER_FIRST_IDLE_OR_RANDOM), "steal"};
    for (size_t w = 0; w < (quick ? 1 : 2); w++) {
        for (size_t b = 0; b < 5; b++) {
            bool is_steal = !strcmp(balancers[b], "steal");
            if ((quick && b != 0 && !is_steal) || (is_steal && !thread))
                continue;
            for (int s = 0; s < SHAPE_COUNT; s++) {
                if (quick && s != SHAPE_FLAT && s != SHAPE_BIMODAL)
                    continue;
                kb_case_t c;
                kb_case_init(&c, "balance", "knit", runtime);
                snprintf(c.balancer, sizeof c.balancer, "%s", balancers[b]);
                snprintf(c.variant, sizeof c.variant, "%s", shape_names[s]);
                c.workers = workers[w];
                c.batch = (uint32_t)shapes[s].n;
                if (!kb_want(ctx, &c))
                    continue;
                int rc = bal_case(ctx, &c, &shapes[s]);
                if (rc < 0)
                    return rc;
            }
        }
    }
    return 0;
}

int kb_scenario_balance(kb_ctx_t *ctx)
{
    size_t n = kb_quick(ctx) ? BAL_TASKS_QUICK : BAL_TASKS;
    bal_shape_t shapes[SHAPE_COUNT] = {0};
    int rc = 0;
    for (int s = 0; rc == 0 && s < SHAPE_COUNT; s++)
        rc = shape_make(&shapes[s], s, n);
    if (rc == 0)
        rc = bal_runtime(ctx, "thread", shapes);
    if (rc == 0 && !kb_quick(ctx))
        rc = bal_runtime(ctx, "process", shapes);
    for (int s = 0; s < SHAPE_COUNT; s++)
        free(shapes[s].costs);
    return rc;
}
