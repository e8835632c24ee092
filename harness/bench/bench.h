/*
 * knit-bench - the interface between the runner (harness/bench/) and the scenario drivers
 * (scenarios/). Prefix kb_: the benchmark program is not part of libknit.
 *
 * A scenario enumerates its cases (a case = one row of the results: scenario, transport,
 * runtime, balancer, workers, batch, payload), skips those the command line filters out
 * (kb_want), and runs each with kb_run_case(): the runner calls the case's round function for
 * a warm-up (discarded, counted), then for `repetitions` measured blocks; the round function
 * runs one round (one call, one burst, one pool start...) and records per-operation times with
 * kb_record(). The runner keeps one log-linear histogram per repetition, computes statistics
 * after the run (never in the hot path), measures CPU time with getrusage plus the CPU of
 * child processes, and emits the JSON entry, the table row and the progress line.
 */
#ifndef KNIT_HARNESS_BENCH_H
#define KNIT_HARNESS_BENCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "hist.h"
#include "knit/knit.h"

#define KB_MAX_REPS 64

typedef struct kb_ctx kb_ctx_t; /* the run: options, filters, output, floor references */

/* One case: the parameters that name a row of the results. Its name is built by the runner:
 * scenario/transport/runtime/w<workers>/b<batch>/p<payload_bytes>, then /<balancer> unless
 * "-", /spin for spin-only waits, /<variant> when set - e.g. latency/knit/thread/w1/b1/p8. Strings
 * are short names as used on the command line and in the JSON; "-" where a field does not apply. */
typedef struct kb_case {
    const char *scenario;
    char transport[16]; /* knit, pipe, unix, seqpacket, tcp, seq; floor: spin, futex, ... */
    char runtime[8];    /* thread, process, "-" */
    char balancer[24];  /* as knit_balancer_name(), "steal", or "-" */
    uint32_t workers;
    uint32_t batch; /* calls in flight per round */
    uint64_t payload_bytes;
    char wait[16];    /* adaptive (spin or poll for a budget, then block), block (block at
                         once: futex for knit, poll() for the message transports), spin
                         (never block), "-" */
    char variant[48]; /* extra name part, e.g. "constant-200000" or "gap-1ms" ("" = none) */
} kb_case_t;

/* Names for loops over the matrix; NULL-terminated. */
extern const char *const kb_transport_names[]; /* knit, pipe, unix, seqpacket, tcp, seq */
extern const char *const kb_runtime_names[];   /* thread, process */

/* A case with the usual defaults: balancer "-", 1 worker, batch 1, 8-byte payload, the
 * transport's default wait (kb_default_wait), no variant. */
void kb_case_init(kb_case_t *c, const char *scenario, const char *transport, const char *runtime);

/* A transport's default wait policy: "adaptive" for the shared-memory transports (knit, seq),
 * "block" for the message transports. A case with another policy has it in its name (/block,
 * /adaptive, /spin). */
const char *kb_default_wait(const char *transport);
/* The transport carries frames in lane memory and waits like knit (knit, seq): its references
 * are knit's (spin, futex, ring), its "adaptive" wait is the pool's default spin. */
bool kb_shared_memory(const char *transport);
/* The poll budget of an "adaptive" message transport: what knit spins by default. */
int64_t kb_adaptive_spin_ns(uint32_t workers);

/* Per repetition: what the round function reports. */
typedef struct kb_rep {
    knit_hist_t *hist; /* per-operation latency (ns) */
    uint64_t ops;      /* operations (calls) completed */
    uint64_t bytes;    /* payload bytes moved, both directions counted */
    uint64_t errors;   /* operations that failed */
    bool warmup;       /* this round is warm-up: its records are discarded */
    uint64_t round;    /* round number within the block */
    /* A round that times its own throughput (bursts: the clock read per burst, never per
     * call) adds here; the runner then takes operations per second from these instead of
     * from the repetition's wall time, which also holds the rounds that sample latency. */
    uint64_t timed_ns, timed_ops;
} kb_rep_t;

/* Record one operation's time. */
static inline void kb_record(kb_rep_t *r, uint64_t ns)
{
    knit_hist_record(r->hist, ns);
}

/* Run one round. Returns 0, or a negative knit error code that ends the case (it is reported
 * with knit_errmsg(); the run goes on with the next case). */
typedef int (*kb_round_fn)(void *state, kb_rep_t *rep);

/* How the runner drives a case (zeros pick the defaults). */
typedef struct kb_plan {
    uint64_t min_rounds;    /* per repetition; default 1 */
    uint64_t max_rounds;    /* per repetition; default unlimited */
    uint64_t rep_ns;        /* target time per repetition; default 200 ms (quick: 40 ms) */
    uint64_t warmup_ns;     /* warm-up time; default 50 ms (quick: 10 ms) */
    uint64_t warmup_rounds; /* at least this many warm-up rounds; default 1 */
    uint32_t repetitions;   /* 0 = the run's --repetitions */
    const char *floor_ref;  /* the reference: the floor mechanism of this case's own kind
                               (harness/bench/floor.h: "spin", "pipe-poll", "ring-b1000",
                               "xcopy-<bytes>-b<n>", "futex-gap-<time>"...), measured just
                               before the first repetition and after each one; or NULL */
    const char *no_ref;     /* no floor_ref: why no mechanism applies (into the entry) */
    double floor_ref_scale; /* reference = floor p50 x this (e.g. copies per round trip);
                               0 = 1 */
    bool floor_ref_as_case; /* measure the reference with this plan (warm-up, repetitions,
                               rounds) instead of the short default run: for a reference whose
                               rounds are as slow as the case's (futex-gap-<time>), so the two
                               have as many samples */
} kb_plan_t;

/* The statistics of a finished case, and scenario-specific fields to add to its entry. */
typedef struct kb_result {
    const kb_case_t *c;
    uint64_t iterations, warmup_iterations;
    uint64_t samples; /* operations timed one by one (the histogram's count; kb_emit: 0 = as
                         many as iterations) */
    uint32_t repetitions;
    double min, p50, p90, p99, p999, max, mean, stddev; /* ns per operation */
    double rep_p50[KB_MAX_REPS], rep_p99[KB_MAX_REPS];
    double calls_per_s, bytes_per_s, cpu_ns_per_call, real_s;
    uint64_t errors;
    double floor_ns;                   /* the reference this case is read against: its p50, or for a
                                          throughput mechanism its ns per operation (0 = none) */
    double floor_p99_ns;               /* and its p99 */
    const char *floor_mech;            /* which mechanism (the plan's floor_ref), or NULL */
    const char *no_ref;                /* no mechanism: why */
    bool ref_throughput;               /* the reference and the ratios are by throughput */
    bool ref_bracketed;                /* measured before the first and after every repetition */
    uint32_t ref_samples;              /* reference measurements taken */
    double rep_ns_per_op[KB_MAX_REPS]; /* per repetition: real time / operations */
    double rep_cpu_per_op[KB_MAX_REPS]; /* per repetition: CPU time / operations */
    double rep_ref_ns[KB_MAX_REPS];     /* per repetition: the mean of the references around it */
    double rep_ratio[KB_MAX_REPS];      /* per repetition: case / reference (>= 1: slower) */
    double ratio;                       /* median of rep_ratio (0 = none) */
    json_t *extra; /* scenario fields added to the entry (owned by the runner) */
} kb_result_t;

/* Is this case selected by the filters (--scenario --transport --runtime --balancer
 * --workers)? Scenarios call it before setting anything up. */
bool kb_want(const kb_ctx_t *ctx, const kb_case_t *c);

/*
 * Run a case: warm-up, repetitions, statistics, output. `extra` (may be NULL; taken) holds
 * scenario-specific fields for the entry. `out` (may be NULL) receives the statistics, e.g.
 * for a scenario that derives further cases from them. Returns 0 or the round's error.
 */
int kb_run_case(kb_ctx_t *ctx, const kb_case_t *c, const kb_plan_t *plan, kb_round_fn fn,
    void *state, json_t *extra, kb_result_t *out);

/*
 * Emit a case whose figures the scenario computed itself (e.g. balance: makespan ratios;
 * idle: CPU per idle worker). `r` must have c set; the runner fills the Google Benchmark
 * fields and writes the entry and the table row. `r->extra` is taken.
 */
void kb_emit(kb_ctx_t *ctx, kb_result_t *r);

/* Report a case that could not run at all (its set-up failed with `rc`, message in
 * knit_errmsg()); the run goes on and ends with a failure status. */
void kb_fail(kb_ctx_t *ctx, const kb_case_t *c, int rc);

/* The run's settings. */
bool kb_quick(const kb_ctx_t *ctx);
uint32_t kb_repetitions(const kb_ctx_t *ctx);
unsigned kb_cpus(void);

/* Progress on stderr (a bar on a TTY, plain lines otherwise). */
void kb_progress(kb_ctx_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Floor references: measure mechanism `mech` now (a short run, about 30 ms, taken again for
 * every case because the spin floor flips between modes) and return its p50 and p99 in ns.
 * Returns 0 or a negative code.
 */
int kb_floor_ref(kb_ctx_t *ctx, const char *mech, double *p50, double *p99);

/* --- pools for scenarios ------------------------------------------------------------------- */

/* Tasks every knit-bench pool has (indices after knit_pool_create are by sorted name). */
enum kb_task {
    KB_TASK_BURN = 0,      /* arg int64 ns: busy-wait that long on CLOCK_MONOTONIC; resolves the
                              worker index (int64) */
    KB_TASK_ECHO,          /* returns its argument */
    KB_TASK_ECHO_IN_PLACE, /* the same, reading its argument in place (arg_in_place) */
    KB_TASK_EMPTY,         /* returns null */
    KB_TASK_PRIMES,        /* arg int64 (start << 32 | count): counts the primes in
                              [start, start + count) by trial division; resolves int64 */
    KB_TASK_WHO,           /* resolves the worker index */
    KB_TASK_COUNT_
};

/* Options for a pool of case `c`: transport, runtime, workers; balancer "-" = the pool's
 * default, "steal" = stealing on, else a balancer name (stealing off); wait "spin" =
 * spin-only, "block" = never spin, "adaptive" = spin (knit) or poll (message transports) for
 * knit's default budget. Scenarios may change more fields before kb_pool_create. */
void kb_pool_opts(const kb_case_t *c, knit_pool_opts_t *o);
/* Create the pool with the knit-bench task table. When there are more CPUs than workers the
 * host thread is pinned to CPU 0 and worker i to CPU 1 + i % (cpus - 1) (a bootstrap hook, in
 * thread and process workers alike); otherwise nothing is pinned. kb_placement() says which. */
int kb_pool_create(const kb_case_t *c, const knit_pool_opts_t *o, knit_pool_t **out);

/* What the current placement is: "host:cpu0,workers:cpu1" or "unpinned". */
const char *kb_placement(const kb_case_t *c);

/* Monotonic clock in ns. */
uint64_t kb_now_ns(void);
/* Sleep on the calling thread (nanosleep; EINTR resumes). In floor.c: the futex-gap-<time>
 * references sleep their gaps exactly as the idle scenario's host does. */
void kb_sleep_ns(uint64_t ns);
/* CPU time of this process (all threads) plus its child processes, reaped or live, in ns. */
uint64_t kb_cpu_ns(void);

/* --- the scenario table -------------------------------------------------------------------- */

typedef struct kb_scenario {
    const char *name;
    const char *summary;
    int (*run)(kb_ctx_t *ctx);
} kb_scenario_t;

extern const kb_scenario_t kb_scenarios[];
extern const unsigned kb_nscenarios;

/* Scenario entry points (one file each under scenarios/). */
int kb_scenario_floor(kb_ctx_t *ctx);
int kb_scenario_latency(kb_ctx_t *ctx);
int kb_scenario_batch(kb_ctx_t *ctx);
int kb_scenario_echo(kb_ctx_t *ctx);
int kb_scenario_types(kb_ctx_t *ctx);
int kb_scenario_payload(kb_ctx_t *ctx);
int kb_scenario_load(kb_ctx_t *ctx);
int kb_scenario_balance(kb_ctx_t *ctx);
int kb_scenario_startup(kb_ctx_t *ctx);
int kb_scenario_idle(kb_ctx_t *ctx);
int kb_scenario_cpu(kb_ctx_t *ctx);
int kb_scenario_dispatch(kb_ctx_t *ctx);
int kb_scenario_contended(kb_ctx_t *ctx);
/* The startup scenario's cold sample process (`knit-bench --startup-sample ...`): call it
 * first in main(), after the worker guard. Returns KNIT_E_AGAIN at once when argv[1] is not
 * --startup-sample; else runs one sample and returns the process exit status. */
int kb_startup_sample_main(int argc, char **argv);

#endif
