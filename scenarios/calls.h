/*
 * knit-bench - calls for the scenarios that time round trips (latency, batch, echo, types,
 * payload, dispatch, contended): a pool for a case, prepared arguments, and the two round
 * functions.
 *
 *   single  one call in flight: timed from just before knit_call to just after
 *           knit_future_wait returns.
 *   burst   `batch` calls submitted back to back, then waited for. One burst in four is
 *           sampled: each call timed from just before its knit_call to its settlement (a
 *           kb_now_ns() in a knit_future_on_settle callback). The other bursts read the clock
 *           only at their start and end, and their time gives the case's throughput, so the
 *           clock reads and callbacks of the sampled ones are not charged to it.
 *
 * Per round: ops += calls made; bytes += argument + result bytes of each resolved call;
 * errors += calls that did not resolve (rejected, or still pending when the round's time
 * limit ran out: those are cancelled). Only resolved calls are recorded in the histogram.
 * Arguments are built before the case starts; the timed path allocates only what knit_call
 * needs.
 */
#ifndef KNIT_SCENARIOS_CALLS_H
#define KNIT_SCENARIOS_CALLS_H

#include "bench.h"

/* What the calls of a case are. */
typedef struct kb_calls_spec {
    int task;                 /* enum kb_task */
    const knit_value_t *args; /* call i of a round gets args[i % nargs]; must outlive the case */
    uint32_t nargs;
    uint64_t bytes_per_call; /* argument + result bytes of one resolved call */
    int64_t round_limit_ns;  /* a round's time limit from its first call; 0 = none */
    bool single;             /* batch 1 timed around knit_future_wait (the latency form) */
} kb_calls_spec_t;

typedef struct kb_calls kb_calls_t;

/* Create the pool of case `c` (options `o`, or kb_pool_opts(c) when NULL) and the per-call
 * state for c->batch calls in flight. 0 or a negative code, message in knit_errmsg(). */
int kb_calls_open(
    const kb_case_t *c, const knit_pool_opts_t *o, const kb_calls_spec_t *spec, kb_calls_t **out);

knit_pool_t *kb_calls_pool(const kb_calls_t *k);

/* The same-mechanism reference of a calls case (harness/bench/floor.h), by its transport, wait,
 * burst and payload: one call in flight - knit spinning: spin, knit blocking: futex, a message
 * transport: its raw descriptors (<t>, or <t>-poll when it polls); a burst - knit: ring-b<n>,
 * a message transport: <t>[-poll]-b<n> (at most 32 in flight, a lane's window); a payload
 * beyond a slot's static area: xcopy-<bytes>[-b<n>] (the copies and allocations of an echo
 * across two cores, the same working set). */
void kb_calls_reference(const kb_case_t *c, char *out, size_t n);

/* Run case `c` on the calls (kb_run_case; `extra` is taken). Without a floor_ref or no_ref in
 * the plan, the case is read against kb_calls_reference. */
int kb_calls_run(
    kb_ctx_t *ctx, const kb_case_t *c, const kb_plan_t *plan, kb_calls_t *k, json_t *extra);

/* Destroy the pool (calls still pending are rejected), then free the state. NULL is fine. */
void kb_calls_close(kb_calls_t *k);

/* open + run + close. A case whose pool cannot be created is reported with kb_fail and
 * `extra` is released; the scenario goes on. Returns 0 or the case's error. */
int kb_calls_case(kb_ctx_t *ctx, const kb_case_t *c, const kb_plan_t *plan,
    const knit_pool_opts_t *o, const kb_calls_spec_t *spec, json_t *extra);

/* The 8-byte bytes argument of the empty-call scenarios (latency, batch, dispatch,
 * contended): a spec for KB_TASK_EMPTY (8 bytes out, null back). */
kb_calls_spec_t kb_empty_spec(void);

/* A nanosecond plan figure: `full_ms` in a full run, `quick_ms` with --quick (0 = runner
 * default). */
uint64_t kb_ms(const kb_ctx_t *ctx, uint64_t full_ms, uint64_t quick_ms);

#endif
