/*
 * knit-bench scenario `load`: latency under open-loop load.
 *
 * Calls of the empty task (an 8-byte bytes argument, one worker) arrive at a fixed offered
 * rate, evenly spaced ("constant") or with exponential inter-arrival times from a seeded
 * xorshift PRNG ("poisson"). One host thread both sends and drives the pool: between sends it
 * runs knit_pool_progress(pool, 0), and when the next send is more than 200 us away it parks
 * in knit_pool_progress (calls in flight) or sleeps (none), waking 100 us early. Each call is
 * timed from its *intended* send time to its settlement, so a host that falls behind counts
 * its lateness (no coordinated omission). A round is 20 ms worth of arrivals, drained at the
 * end; achieved throughput is calls / (first intended send to last settlement) over the
 * measured rounds.
 *
 * The offered rate is swept upward (10k, 25k, 50k, ... 3.2M calls/s) and the sweep stops after
 * the first rate that saturates: achieved < 90 % of offered, or p99 above 10 ms.
 *
 * Cases: load/<transport>/<runtime>/w1/b1/p8/<arrival>-<rate>; knit and pipe on threads (full
 * run: also unix and tcp, and knit on processes). Extra fields: offered_per_s, achieved_per_s,
 * saturated, arrival.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "base/error.h"
#include "sched_util.h"

#define LOAD_WINDOW_NS      20000000ull /* a round: this much time worth of arrivals */
#define LOAD_PARK_MIN_NS    200000ull   /* a gap longer than this is parked or slept through */
#define LOAD_PARK_MARGIN_NS 100000ull   /* ... waking this early, then polling to the send */
#define LOAD_SAT_RATIO      0.9         /* saturated below this fraction of the offered rate */
#define LOAD_SAT_P99_NS     10000000.0  /* ... or above this p99 */
#define LOAD_PAYLOAD        8u

typedef struct load_state {
    kb_lazy_pool_t lp;
    kb_tracker_t calls;
    kb_rng_t rng;
    bool poisson;
    double offered; /* calls/s */
    double gap_ns;  /* mean inter-arrival time */
    size_t per_round;
    knit_hist_t *lat;       /* latencies of the measured rounds (the saturation test) */
    uint64_t done, span_ns; /* calls and first-send-to-last-settle time, measured rounds */
    bool saturated;
    json_t *extra; /* the case's entry fields (a reference of our own) */
} load_state_t;

static const uint8_t load_payload[LOAD_PAYLOAD];

static double next_gap(load_state_t *st)
{
    return st->poisson ? kb_rng_exp(&st->rng, st->gap_ns) : st->gap_ns;
}

/* Until the next send: nothing to do when it is near; else park (calls in flight) or sleep. */
static int wait_for_send(knit_pool_t *pool, uint64_t when)
{
    uint64_t now = kb_now_ns();
    if (when <= now + LOAD_PARK_MIN_NS)
        return 0;
    uint64_t span = when - now - LOAD_PARK_MARGIN_NS;
    if (knit_pool_pending(pool)) {
        int rc = knit_pool_progress(pool, (int64_t)span);
        return rc < 0 ? rc : 0;
    }
    kb_sleep_ns(span);
    return 0;
}

/* Send the round's arrivals on schedule, driving the pool between sends. */
static int send_arrivals(void *arg, knit_pool_t *pool, uint64_t base)
{
    load_state_t *st = arg;
    double next = (double)base + next_gap(st);
    size_t i = 0;
    for (;;) {
        uint64_t now = kb_now_ns();
        while (i < st->per_round && (uint64_t)next <= now) {
            knit_value_t v = knit_v_bytes(load_payload, LOAD_PAYLOAD);
            int rc = kb_track_send(pool, &st->calls, KB_TASK_EMPTY, &v, (uint64_t)next);
            if (rc < 0)
                return rc;
            i++;
            next += next_gap(st);
        }
        if (i == st->per_round)
            return 0;
        int rc = knit_pool_progress(pool, 0);
        if (rc < 0)
            return rc;
        rc = wait_for_send(pool, (uint64_t)next);
        if (rc < 0)
            return rc;
    }
}

static void update_extra(load_state_t *st)
{
    double achieved = st->span_ns ? (double)st->done * 1e9 / (double)st->span_ns : 0;
    double p99 = (double)knit_hist_percentile(st->lat, 99.0);
    st->saturated = achieved < LOAD_SAT_RATIO * st->offered || p99 > LOAD_SAT_P99_NS;
    kb_extra_real(st->extra, "achieved_per_s", achieved);
    json_object_set_new(st->extra, "saturated", json_boolean(st->saturated));
}

static void account(load_state_t *st, kb_rep_t *rep, uint64_t base)
{
    uint64_t ok = 0;
    for (size_t i = 0; i < st->calls.n; i++) {
        const kb_tracked_t *t = &st->calls.v[i];
        if (t->status != 0) {
            rep->errors++;
            continue;
        }
        kb_record(rep, t->t1 - t->t0);
        if (!rep->warmup)
            knit_hist_record(st->lat, t->t1 - t->t0);
        ok++;
    }
    rep->ops += ok;
    rep->bytes += ok * LOAD_PAYLOAD;
    if (rep->warmup)
        return;
    st->done += ok;
    st->span_ns += st->calls.last_t1 > base ? st->calls.last_t1 - base : 1;
    update_extra(st);
}

static int load_round(void *arg, kb_rep_t *rep)
{
    load_state_t *st = arg;
    uint64_t base;
    int rc = kb_tracked_round(&st->lp, &st->calls, send_arrivals, st, &base);
    if (rc < 0)
        return rc;
    account(st, rep, base);
    return 0;
}

static int load_state_init(load_state_t *st, const kb_case_t *c, bool poisson, uint64_t rate)
{
    *st = (load_state_t) {.poisson = poisson, .offered = (double)rate};
    st->gap_ns = 1e9 / (double)rate;
    st->per_round = (size_t)((double)rate * (double)LOAD_WINDOW_NS / 1e9);
    if (st->per_round == 0)
        st->per_round = 1;
    kb_rng_seed(&st->rng, 0x6c6f6164ull ^ rate); /* "load" */
    kb_lazy_pool_init(&st->lp, c);
    st->lat = malloc(sizeof *st->lat);
    st->extra = json_object();
    if (!st->lat || !st->extra || kb_track_init(&st->calls, st->per_round) < 0) {
        free(st->lat);
        json_decref(st->extra);
        kb_track_free(&st->calls);
        return knit__err(KNIT_E_NOMEM, "load: no memory for a %zu-call round", st->per_round);
    }
    knit_hist_init(st->lat);
    kb_extra_real(st->extra, "offered_per_s", st->offered);
    kb_extra_real(st->extra, "achieved_per_s", 0);
    json_object_set_new(st->extra, "saturated", json_false());
    json_object_set_new(st->extra, "arrival", json_string(poisson ? "poisson" : "constant"));
    return 0;
}

static void load_state_free(load_state_t *st)
{
    kb_lazy_pool_close(&st->lp); /* before the calls: settling runs their callbacks */
    kb_track_free(&st->calls);
    free(st->lat);
    json_decref(st->extra);
}

/* One case. *stop is set when the sweep must end here (saturated, or the case failed). */
static int load_case(kb_ctx_t *ctx, const kb_case_t *c, bool poisson, uint64_t rate, bool *stop)
{
    load_state_t st;
    int rc = load_state_init(&st, c, poisson, rate);
    if (rc < 0)
        return rc;
    kb_plan_t plan = {.min_rounds = 1, .warmup_ns = LOAD_WINDOW_NS, .warmup_rounds = 1};
    if (!kb_quick(ctx))
        plan.rep_ns = kb_rep_budget(ctx, 400000000ull, LOAD_WINDOW_NS);
    rc = kb_run_updating_case(ctx, c, &plan, load_round, &st, st.extra);
    *stop = rc < 0 || st.saturated || st.done == 0;
    load_state_free(&st);
    return 0;
}

static int load_sweep(kb_ctx_t *ctx, const char *transport, const char *runtime, bool poisson)
{
    static const uint64_t full[]
        = {10000, 25000, 50000, 100000, 200000, 400000, 800000, 1600000, 3200000, 0};
    static const uint64_t quick[] = {10000, 100000, 400000, 0};
    const uint64_t *rates = kb_quick(ctx) ? quick : full;
    for (const uint64_t *r = rates; *r; r++) {
        kb_case_t c;
        kb_case_init(&c, "load", transport, runtime);
        snprintf(c.variant, sizeof c.variant, "%s-%llu", poisson ? "poisson" : "constant",
            (unsigned long long)*r);
        if (!kb_want(ctx, &c))
            return 0;
        bool stop = false;
        int rc = load_case(ctx, &c, poisson, *r, &stop);
        if (rc < 0)
            return rc;
        if (stop)
            return 0;
    }
    return 0;
}

int kb_scenario_load(kb_ctx_t *ctx)
{
    static const struct {
        const char *transport, *runtime;
        bool full_only;
    } configs[] = {
        {"knit", "thread", false},
        {"pipe", "thread", false},
        {"unix", "thread", true},
        {"tcp", "thread", true},
        {"knit", "process", true},
    };
    bool quick = kb_quick(ctx);
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        if (quick && configs[i].full_only)
            continue;
        for (int poisson = 0; poisson <= (quick ? 0 : 1); poisson++) {
            int rc = load_sweep(ctx, configs[i].transport, configs[i].runtime, poisson);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}
