/*
 * knit-bench scenario `load`: latency under open-loop load.
 *
 * Calls of the empty task (an 8-byte bytes argument, one worker) arrive at a fixed offered
 * rate, evenly spaced ("constant") or with exponential inter-arrival times from a seeded
 * xorshift PRNG ("poisson"). A repetition is one round, and a round is one continuous arrival
 * schedule: rate x 200 ms worth of calls (--quick: 40 ms; the warm-up round: 20 ms), with no
 * pause anywhere in it. One host thread both sends and drives the pool: between sends it runs
 * knit_pool_progress(pool, 0), settling replies while the schedule goes on (a host that is
 * behind sends at most 32 overdue calls back to back before the next progress step), and when
 * the next send is more than 200 us away it parks in knit_pool_progress (calls in flight) or
 * sleeps (none), waking 100 us early. Each call is timed from its *intended* send time to its
 * settlement, so a host that falls behind, or a backlog that grows, counts its lateness (no
 * coordinated omission).
 *
 * After the last send the round drains for at most 100 ms (ten times the saturation p99).
 * Calls still pending then are cut off, never dropped: each is recorded in the histogram as the
 * time from its intended send to the limit (a lower bound of its latency), counted in
 * `censored`, and cancelled (knit_future_cancel). Calls that reject count as errors. Only
 * resolved calls count as operations; achieved throughput is resolved calls / (first intended
 * send to last settlement), over the measured rounds.
 *
 * The offered rate is swept upward (10k, 25k, 50k, ... 3.2M calls/s) and the sweep stops after
 * the first rate that saturates: achieved < 90 % of offered, or p99 above 10 ms.
 *
 * Cases: load/<transport>/<runtime>/w1/b1/p8/<arrival>-<rate>; knit and pipe on threads (full
 * run: also unix and tcp, and knit on processes). Extra fields: offered_per_s, achieved_per_s,
 * saturated, arrival, censored, censored_limit_ns.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/error.h"
#include "bench.h"
#include "sched_util.h"

#define LOAD_REP_NS         200000000ull /* a measured round's schedule */
#define LOAD_REP_QUICK_NS   40000000ull  /* ... with --quick */
#define LOAD_WARMUP_NS      20000000ull  /* the warm-up round's schedule */
#define LOAD_LIMIT_NS       100000000ull /* drain limit after the last send; then censored */
#define LOAD_SEND_BURST     32u          /* overdue sends, at most, between progress steps */
#define LOAD_PARK_MIN_NS    200000ull    /* a gap longer than this is parked or slept through */
#define LOAD_PARK_MARGIN_NS 100000ull    /* ... waking this early, then polling to the send */
#define LOAD_SAT_RATIO      0.9          /* saturated below this fraction of the offered rate */
#define LOAD_SAT_P99_NS     10000000.0   /* ... or above this p99 */
#define LOAD_PAYLOAD        8u

struct load_state;

/* One call of the schedule. */
typedef struct load_call {
    uint64_t t0;      /* intended send time */
    knit_future_t *f; /* the call's reference while it counts as pending; NULL once settled or
                         censored (its settle callback then only lets go of it) */
    struct load_state *st;
} load_call_t;

typedef struct load_state {
    kb_lazy_pool_t lp;
    kb_rng_t rng;
    bool poisson;
    double offered;             /* calls/s */
    double gap_ns;              /* mean inter-arrival time */
    size_t per_rep, per_warmup; /* arrivals of a measured round, of the warm-up round */
    load_call_t *calls;         /* the round's calls (max(per_rep, per_warmup) entries) */
    /* the round being run */
    kb_rep_t *rep;    /* NULL outside a round: late callbacks record nothing */
    size_t n;         /* calls sent */
    size_t pending;   /* calls whose settle callback has not run yet */
    uint64_t first;   /* first intended send */
    uint64_t last_t1; /* latest settlement of a resolved call */
    uint64_t resolved, censored;
    /* the measured rounds */
    knit_hist_t *lat;       /* latencies, censored calls included (the saturation test) */
    uint64_t done, span_ns; /* resolved calls and first-send-to-last-settle time */
    uint64_t censored_total;
    bool saturated;
    json_t *extra; /* the case's entry fields (a reference of our own) */
} load_state_t;

static const uint8_t load_payload[LOAD_PAYLOAD];

static double next_gap(load_state_t *st)
{
    return st->poisson ? kb_rng_exp(&st->rng, st->gap_ns) : st->gap_ns;
}

static void record(load_state_t *st, uint64_t ns)
{
    kb_record(st->rep, ns);
    if (!st->rep->warmup)
        knit_hist_record(st->lat, ns);
}

/* Settlement, on the host thread: a resolved call is recorded, a rejected one is an error. */
static void on_settle(knit_future_t *f, void *arg)
{
    load_call_t *call = arg;
    load_state_t *st = call->st;
    uint64_t t1 = kb_now_ns();
    int status = knit_future_status(f);
    knit_future_release(f);
    st->pending--;
    if (!call->f || !st->rep)
        return; /* censored (recorded at the limit), or its round was abandoned */
    call->f = NULL;
    if (status != 0) {
        st->rep->errors++;
        return;
    }
    record(st, t1 - call->t0);
    st->resolved++;
    if (t1 > st->last_t1)
        st->last_t1 = t1;
}

static int send_call(load_state_t *st, knit_pool_t *pool, uint64_t t0)
{
    load_call_t *call = &st->calls[st->n++];
    *call = (load_call_t) {.t0 = t0, .st = st};
    knit_value_t v = knit_v_bytes(load_payload, LOAD_PAYLOAD);
    knit_future_t *f;
    int rc = knit_call(pool, KB_TASK_EMPTY, &v, &f);
    if (rc < 0)
        return rc;
    call->f = f;
    st->pending++;
    knit_future_on_settle(f, on_settle, call);
    return 0;
}

/* Until the next send: nothing to do when it is near; else park (calls in flight) or sleep. */
static int wait_for_send(load_state_t *st, knit_pool_t *pool, uint64_t when)
{
    uint64_t now = kb_now_ns();
    if (when <= now + LOAD_PARK_MIN_NS)
        return 0;
    uint64_t span = when - now - LOAD_PARK_MARGIN_NS;
    if (st->pending) {
        int rc = knit_pool_progress(pool, (int64_t)span);
        return rc < 0 ? rc : 0;
    }
    kb_sleep_ns(span);
    return 0;
}

/* Send `n` arrivals on schedule from `base`, settling replies between sends (a host that is
 * behind sends at most LOAD_SEND_BURST overdue calls between two progress steps). */
static int send_schedule(load_state_t *st, knit_pool_t *pool, uint64_t base, size_t n)
{
    double next = (double)base + next_gap(st);
    st->first = (uint64_t)next;
    for (;;) {
        uint64_t now = kb_now_ns();
        for (unsigned k = 0; k < LOAD_SEND_BURST && st->n < n && (uint64_t)next <= now; k++) {
            int rc = send_call(st, pool, (uint64_t)next);
            if (rc < 0)
                return rc;
            next += next_gap(st);
        }
        if (st->n == n)
            return 0;
        int rc = knit_pool_progress(pool, 0);
        if (rc < 0)
            return rc;
        rc = wait_for_send(st, pool, (uint64_t)next);
        if (rc < 0)
            return rc;
    }
}

/* Cut off the calls still pending at `limit`: each is recorded as its time from its intended
 * send to the limit and counted as censored, then cancelled; their callbacks run before the
 * round ends (the pool settles a cancelled call at once, its callback on the next progress). */
static int censor(load_state_t *st, knit_pool_t *pool, uint64_t limit)
{
    for (size_t i = 0; i < st->n; i++) {
        load_call_t *call = &st->calls[i];
        knit_future_t *f = call->f;
        if (!f || knit_future_status(f) != KNIT_E_AGAIN)
            continue; /* settled (a settled one is recorded by its callback) */
        call->f = NULL;
        record(st, limit - call->t0);
        st->censored++;
        knit_future_cancel(f);
    }
    while (st->pending) {
        int rc = knit_pool_progress(pool, (int64_t)LOAD_PARK_MARGIN_NS);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* After the last send: settle replies until none is pending or the limit is reached. */
static int drain(load_state_t *st, knit_pool_t *pool)
{
    uint64_t limit = kb_now_ns() + LOAD_LIMIT_NS;
    while (st->pending) {
        uint64_t now = kb_now_ns();
        if (now >= limit)
            return censor(st, pool, limit);
        int rc = knit_pool_progress(pool, (int64_t)(limit - now));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void update_extra(load_state_t *st)
{
    double achieved = st->span_ns ? (double)st->done * 1e9 / (double)st->span_ns : 0;
    double p99 = (double)knit_hist_percentile(st->lat, 99.0);
    st->saturated = achieved < LOAD_SAT_RATIO * st->offered || p99 > LOAD_SAT_P99_NS;
    kb_extra_real(st->extra, "achieved_per_s", achieved);
    json_object_set_new(st->extra, "saturated", json_boolean(st->saturated));
    json_object_set_new(st->extra, "censored", json_integer((json_int_t)st->censored_total));
}

static void account(load_state_t *st, kb_rep_t *rep)
{
    rep->ops += st->resolved;
    rep->bytes += st->resolved * LOAD_PAYLOAD;
    if (rep->warmup)
        return;
    st->done += st->resolved;
    st->span_ns += st->last_t1 > st->first ? st->last_t1 - st->first : 1;
    st->censored_total += st->censored;
    update_extra(st);
}

static void round_reset(load_state_t *st, kb_rep_t *rep)
{
    st->rep = rep;
    st->n = 0;
    st->pending = 0;
    st->first = st->last_t1 = 0;
    st->resolved = st->censored = 0;
}

/* A round: the whole schedule of a repetition (a short one for the warm-up), then the drain. */
static int load_round(void *arg, kb_rep_t *rep)
{
    load_state_t *st = arg;
    knit_pool_t *pool;
    int rc = kb_lazy_pool_get(&st->lp, &pool);
    if (rc < 0)
        return rc;
    round_reset(st, rep);
    rc = send_schedule(st, pool, kb_now_ns(), rep->warmup ? st->per_warmup : st->per_rep);
    if (rc == 0)
        rc = drain(st, pool);
    st->rep = NULL;
    if (rc < 0)
        return rc;
    account(st, rep);
    return 0;
}

static size_t arrivals(uint64_t rate, uint64_t ns)
{
    size_t n = (size_t)((double)rate * (double)ns / 1e9);
    return n ? n : 1;
}

static void init_extra(load_state_t *st)
{
    kb_extra_real(st->extra, "offered_per_s", st->offered);
    kb_extra_real(st->extra, "achieved_per_s", 0);
    json_object_set_new(st->extra, "saturated", json_false());
    json_object_set_new(st->extra, "arrival", json_string(st->poisson ? "poisson" : "constant"));
    json_object_set_new(st->extra, "censored", json_integer(0));
    json_object_set_new(st->extra, "censored_limit_ns", json_integer((json_int_t)LOAD_LIMIT_NS));
}

static int load_state_init(
    load_state_t *st, const kb_case_t *c, bool poisson, uint64_t rate, uint64_t rep_ns)
{
    *st = (load_state_t) {.poisson = poisson, .offered = (double)rate};
    st->gap_ns = 1e9 / (double)rate;
    st->per_rep = arrivals(rate, rep_ns);
    st->per_warmup = arrivals(rate, LOAD_WARMUP_NS);
    size_t cap = st->per_rep > st->per_warmup ? st->per_rep : st->per_warmup;
    kb_rng_seed(&st->rng, 0x6c6f6164ull ^ rate); /* "load" */
    kb_lazy_pool_init(&st->lp, c);
    st->calls = calloc(cap, sizeof *st->calls);
    st->lat = malloc(sizeof *st->lat);
    st->extra = json_object();
    if (!st->calls || !st->lat || !st->extra) {
        free(st->calls);
        free(st->lat);
        json_decref(st->extra);
        return knit__err(KNIT_E_NOMEM, "load: no memory for a %zu-call round", cap);
    }
    knit_hist_init(st->lat);
    init_extra(st);
    return 0;
}

static void load_state_free(load_state_t *st)
{
    kb_lazy_pool_close(&st->lp); /* before the calls: settling runs their callbacks */
    free(st->calls);
    free(st->lat);
    json_decref(st->extra);
}

/* One case. *stop is set when the sweep must end here (saturated, or the case failed). */
static int load_case(kb_ctx_t *ctx, const kb_case_t *c, bool poisson, uint64_t rate, bool *stop)
{
    uint64_t rep_ns = kb_quick(ctx) ? LOAD_REP_QUICK_NS : LOAD_REP_NS;
    load_state_t st;
    int rc = load_state_init(&st, c, poisson, rate, rep_ns);
    if (rc < 0)
        return rc;
    /* one round per repetition, one short warm-up round */
    kb_plan_t plan = {.min_rounds = 1,
        .max_rounds = 1,
        .rep_ns = rep_ns,
        .warmup_ns = 1,
        .warmup_rounds = 1,
        .no_ref = "open-loop load: read by its saturation point (achieved_per_s, saturated) and "
                  "against the other transports at the same rate"};
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
