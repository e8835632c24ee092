/*
 * knit-bench scenario `idle`: what an idle pool costs, and what waking it costs.
 *
 * (a) CPU per idle worker (variant "cpu", one case per pool size 1 and 2): start the pool, make
 *     one call per worker so every worker is up, let the workers pass their spin budget (20 ms;
 *     the default budget is 50 us per lane), then read kb_cpu_ns() (this process and its live
 *     worker processes) across a 1 s window (quick: 200 ms) while the host sleeps in nanosleep.
 *     Emitted with kb_emit; extra: cpu_percent_per_worker (of one core), cpu_ns, window_ns.
 * (b) first-call latency after an idle gap (variants gap-10us, gap-100us, gap-1ms, gap-10ms,
 *     gap-100ms; one worker): a round sleeps the gap on the host (nanosleep, so the real gap is
 *     the timer's, a little longer for the short ones), then makes one call of the empty task
 *     (8-byte bytes argument) timed from send to settlement. The long gaps get few rounds so
 *     the scenario stays within its time budget. Read against the futex round trip after the
 *     same gap (floor mechanism futex-gap-<time>, e.g. futex-gap-100ms for gap-100ms: the
 *     same sleep, then one futex wake round trip with a parked peer), measured just before
 *     the case with the case's own plan, so both have as many samples and both wake CPUs
 *     that may have halted. The warm futex round trip (both CPUs busy) is measured before
 *     that and kept as extra field warm_futex_ns, for the ratio against a warm wake-up.
 *
 * knit transport on threads (full run: also process workers, and the pipe transport).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "sched_util.h"

#define IDLE_SETTLE_NS    20000000ull   /* past every worker's spin budget */
#define IDLE_WINDOW_NS    1000000000ull /* CPU window */
#define IDLE_WINDOW_QUICK 200000000ull
#define IDLE_PAYLOAD      8u

static const uint8_t idle_payload[IDLE_PAYLOAD];

/* --- (a) CPU per idle worker ---------------------------------------------------------------- */

/* One call per worker, all in flight together, so every worker has started and served. */
static int wake_workers(knit_pool_t *pool, kb_tracker_t *calls, uint32_t workers)
{
    knit_value_t v = knit_v_null();
    int rc = 0;
    for (uint32_t i = 0; rc >= 0 && i < workers; i++)
        rc = kb_track_send(pool, calls, KB_TASK_WHO, &v, kb_now_ns());
    int drained = kb_track_drain(pool, calls);
    rc = rc < 0 ? rc : drained;
    for (size_t i = 0; rc >= 0 && i < calls->n; i++)
        if (calls->v[i].status != 0)
            rc = calls->v[i].status;
    return rc < 0 ? rc : 0;
}

static void measure_idle_cpu(const kb_case_t *c, uint64_t window_ns, kb_result_t *r)
{
    kb_sleep_ns(IDLE_SETTLE_NS);
    uint64_t c0 = kb_cpu_ns(), t0 = kb_now_ns();
    kb_sleep_ns(window_ns);
    uint64_t c1 = kb_cpu_ns(), t1 = kb_now_ns();
    double cpu = (double)(c1 - c0), span = (double)(t1 - t0);
    kb_extra_real(r->extra, "cpu_percent_per_worker", cpu / span * 100.0 / c->workers);
    json_object_set_new(r->extra, "cpu_ns", json_integer((json_int_t)(c1 - c0)));
    json_object_set_new(r->extra, "window_ns", json_integer((json_int_t)(t1 - t0)));
    r->iterations = 1;
    r->real_s = span / 1e9;
}

static void idle_cpu_case(kb_ctx_t *ctx, const kb_case_t *c, uint64_t window_ns)
{
    kb_lazy_pool_t lp;
    kb_lazy_pool_init(&lp, c);
    kb_tracker_t calls;
    knit_pool_t *pool;
    int rc = kb_track_init(&calls, c->workers);
    if (rc == 0)
        rc = kb_lazy_pool_get(&lp, &pool);
    if (rc == 0)
        rc = wake_workers(pool, &calls, c->workers);
    kb_result_t r = {.c = c,
        .repetitions = 1,
        .no_ref = "CPU per idle worker: an absolute cost, no mechanism to compare with"};
    if (rc == 0) {
        r.extra = json_object();
        measure_idle_cpu(c, window_ns, &r);
    }
    kb_lazy_pool_close(&lp); /* before the calls: settling runs their callbacks */
    kb_track_free(&calls);
    if (rc == 0)
        kb_emit(ctx, &r);
    else
        kb_fail(ctx, c, rc);
}

/* --- (b) latency after an idle gap ---------------------------------------------------------- */

typedef struct gap_state {
    kb_lazy_pool_t lp;
    kb_tracker_t calls;
    uint64_t gap_ns;
} gap_state_t;

static int gap_round(void *arg, kb_rep_t *rep)
{
    gap_state_t *st = arg;
    knit_pool_t *pool;
    int rc = kb_lazy_pool_get(&st->lp, &pool);
    if (rc < 0)
        return rc;
    kb_track_reset(&st->calls);
    kb_sleep_ns(st->gap_ns);
    knit_value_t v = knit_v_bytes(idle_payload, IDLE_PAYLOAD);
    rc = kb_track_send(pool, &st->calls, KB_TASK_EMPTY, &v, kb_now_ns());
    if (rc >= 0)
        rc = kb_track_drain(pool, &st->calls);
    if (rc < 0)
        return rc;
    const kb_tracked_t *t = &st->calls.v[0];
    if (t->status != 0) {
        rep->errors++;
        return 0;
    }
    kb_record(rep, t->t1 - t->t0);
    rep->ops++;
    rep->bytes += IDLE_PAYLOAD;
    return 0;
}

/* Rounds per gap: the short gaps run for a time budget, the long ones a few rounds each. The
 * same-gap reference runs with this plan too. */
static kb_plan_t gap_plan(kb_ctx_t *ctx, uint64_t gap_ns, const char *floor_ref)
{
    kb_plan_t p = {.min_rounds = 1,
        .warmup_ns = 1,
        .warmup_rounds = 1,
        .floor_ref = floor_ref,
        .floor_ref_as_case = true};
    if (kb_quick(ctx)) {
        p.max_rounds = 3;
        return p;
    }
    if (gap_ns >= 100000000ull) {
        /* about 30 samples per side: the wake after a long gap spreads over 90-260 us here,
         * and a median of 10 moved the ratio 0.75-2.7x between runs */
        p.max_rounds = 6;
        p.rep_ns = kb_rep_budget(ctx, 3000000000ull, 1);
    } else if (gap_ns >= 10000000ull) {
        p.min_rounds = 3;
        p.max_rounds = 10;
        p.rep_ns = kb_rep_budget(ctx, 500000000ull, 1);
    } else {
        p.min_rounds = 3;
        p.rep_ns = kb_rep_budget(ctx, 400000000ull, 1);
    }
    return p;
}

/* The case's variant names its gap (gap-100ms) and its reference, the wake-up of its own
 * transport after the same gap: futex-gap-100ms for knit (its worker has parked on a futex by
 * then), pipe-gap-100ms for the pipe (blocked in read). */
static int gap_case(kb_ctx_t *ctx, const kb_case_t *c, uint64_t gap_ns)
{
    char floor_ref[sizeof c->variant + 16];
    snprintf(floor_ref, sizeof floor_ref, "%s-%s",
        strcmp(c->transport, "knit") ? c->transport : "futex", c->variant);
    gap_state_t st = {.gap_ns = gap_ns};
    kb_lazy_pool_init(&st.lp, c);
    int rc = kb_track_init(&st.calls, 1);
    if (rc < 0)
        return rc;
    double warm = 0;
    json_t *extra = json_object();
    if (kb_floor_ref(ctx, "futex", &warm, NULL) == 0)
        kb_extra_real(extra, "warm_futex_ns", warm);
    kb_plan_t plan = gap_plan(ctx, gap_ns, floor_ref);
    kb_run_case(ctx, c, &plan, gap_round, &st, extra, NULL);
    kb_lazy_pool_close(&st.lp); /* before the calls: settling runs their callbacks */
    kb_track_free(&st.calls);
    return 0;
}

/* --- the scenario --------------------------------------------------------------------------- */

static const struct {
    const char *transport, *runtime;
} idle_configs[] = {
    {"knit", "thread"},
    {"knit", "process"},
    {"pipe", "thread"},
    {"pipe", "process"},
};

static void idle_cpu_all(kb_ctx_t *ctx, size_t nconfigs)
{
    uint64_t window = kb_quick(ctx) ? IDLE_WINDOW_QUICK : IDLE_WINDOW_NS;
    for (size_t i = 0; i < nconfigs; i++) {
        for (uint32_t w = 1; w <= 2; w++) {
            kb_case_t c;
            kb_case_init(&c, "idle", idle_configs[i].transport, idle_configs[i].runtime);
            c.workers = w;
            snprintf(c.variant, sizeof c.variant, "cpu");
            if (kb_want(ctx, &c))
                idle_cpu_case(ctx, &c, window);
        }
    }
}

static int idle_gaps_all(kb_ctx_t *ctx, size_t nconfigs)
{
    static const struct {
        const char *name;
        uint64_t ns;
        bool full_only;
    } gaps[] = {
        {"gap-10us", 10000ull, false},
        {"gap-100us", 100000ull, true},
        {"gap-1ms", 1000000ull, false},
        {"gap-10ms", 10000000ull, true},
        {"gap-100ms", 100000000ull, false},
    };
    for (size_t i = 0; i < nconfigs; i++) {
        for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {
            if (kb_quick(ctx) && gaps[g].full_only)
                continue;
            kb_case_t c;
            kb_case_init(&c, "idle", idle_configs[i].transport, idle_configs[i].runtime);
            snprintf(c.variant, sizeof c.variant, "%s", gaps[g].name);
            if (!kb_want(ctx, &c))
                continue;
            int rc = gap_case(ctx, &c, gaps[g].ns);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int kb_scenario_idle(kb_ctx_t *ctx)
{
    size_t nconfigs = kb_quick(ctx) ? 1 : sizeof idle_configs / sizeof idle_configs[0];
    idle_cpu_all(ctx, nconfigs);
    return idle_gaps_all(ctx, nconfigs);
}
