/*
 * knit-bench - helpers shared by the scheduling scenarios (load, balance, startup, idle, cpu):
 * a seeded xorshift PRNG, tracked calls (each call's start time, settlement
 * time, status and int64 result, taken on the host thread by a settlement callback), a pool
 * created on a case's first round (so a failing start is reported by kb_run_case like any
 * other round error), medians of per-round figures, and plan sizing against a time budget.
 */
#ifndef KNIT_SCENARIOS_SCHED_UTIL_H
#define KNIT_SCENARIOS_SCHED_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "bench.h"

/* --- PRNG: xorshift64* (no libc rand, the same sequence on every machine) ------------------- */

typedef struct kb_rng {
    uint64_t s;
} kb_rng_t;

void kb_rng_seed(kb_rng_t *r, uint64_t seed);
uint64_t kb_rng_next(kb_rng_t *r);
double kb_rng_unit(kb_rng_t *r);             /* uniform in (0, 1] */
double kb_rng_exp(kb_rng_t *r, double mean); /* exponential with this mean */

/* --- tracked calls -------------------------------------------------------------------------- */

struct kb_tracker;

typedef struct kb_tracked {
    uint64_t t0;   /* the time latency is measured from (send, or intended send) */
    uint64_t t1;   /* settlement, seen on the host thread; 0 while pending */
    int64_t value; /* int64 result, or -1 when the call resolved with another kind */
    int status;    /* settlement status: 0 resolved, else a negative KNIT_E_... code */
    struct kb_tracker *set;
} kb_tracked_t;

typedef struct kb_tracker {
    kb_tracked_t *v;
    size_t cap, n, pending;
    uint64_t last_t1; /* latest settlement of the round */
} kb_tracker_t;

int kb_track_init(kb_tracker_t *s, size_t cap); /* 0 or KNIT_E_NOMEM */
void kb_track_free(kb_tracker_t *s);
void kb_track_reset(kb_tracker_t *s); /* start a round: no calls */

/* Call `task` with `arg`, timed from t0. Returns the call's index in s->v, or a negative code
 * (the set is full, or knit_call failed without a future). */
int kb_track_send(knit_pool_t *pool, kb_tracker_t *s, int task, knit_value_t *arg, uint64_t t0);

/* Drive the pool until every call of the set has settled. 0 or a negative code. */
int kb_track_drain(knit_pool_t *pool, kb_tracker_t *s);

/* --- a case's pool, created by its first round ---------------------------------------------- */

typedef struct kb_lazy_pool {
    const kb_case_t *c;
    knit_pool_opts_t opts; /* from kb_pool_opts; the scenario may change fields first */
    knit_pool_t *pool;
} kb_lazy_pool_t;

void kb_lazy_pool_init(kb_lazy_pool_t *lp, const kb_case_t *c);
int kb_lazy_pool_get(kb_lazy_pool_t *lp, knit_pool_t **out); /* 0 or the creation error */

/* One tracked round: get the pool, clear the tracker, note the start time, submit the round's
 * calls with `submit(st, pool, start)`, wait for all of them. 0 or the first error; `*start`
 * is the round's start for the caller's accounting. */
typedef int (*kb_submit_fn)(void *st, knit_pool_t *pool, uint64_t start);
int kb_tracked_round(
    kb_lazy_pool_t *lp, kb_tracker_t *calls, kb_submit_fn submit, void *st, uint64_t *start);
void kb_lazy_pool_close(kb_lazy_pool_t *lp); /* shutdown + destroy */

/* --- per-round figures ---------------------------------------------------------------------- */

typedef struct kb_samples {
    double *v;
    size_t n, cap;
} kb_samples_t;

int kb_samples_push(kb_samples_t *s, double x); /* 0 or KNIT_E_NOMEM */
double kb_samples_median(kb_samples_t *s);      /* 0 when empty; sorts the samples */
void kb_samples_free(kb_samples_t *s);

/* --- plans and entries ---------------------------------------------------------------------- */

/* A repetition's target time so that the run's repetitions together take about total_ns,
 * never below min_ns. */
uint64_t kb_rep_budget(const kb_ctx_t *ctx, uint64_t total_ns, uint64_t min_ns);

/* The plan of a slow case: at least one round; in a full run one warm-up round and
 * repetitions that together take about total_ns. */
kb_plan_t kb_slow_case_plan(const kb_ctx_t *ctx, uint64_t total_ns);

/* kb_run_case for a case whose rounds keep updating `extra`: the runner takes one reference,
 * the case keeps its own. */
int kb_run_updating_case(kb_ctx_t *ctx, const kb_case_t *c, const kb_plan_t *plan, kb_round_fn fn,
    void *state, json_t *extra);

/* Set a number field of an entry's extra object (which the case keeps a reference to). */
void kb_extra_real(json_t *extra, const char *key, double v);

#endif
