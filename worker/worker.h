/*
 * knit worker - the worker loop's interface (worker/worker.c). Thread workers run it on a pthread
 * (runtimes/thread/), process workers in a child program (runtimes/process/).
 */
#ifndef KNIT_WORKER_WORKER_H
#define KNIT_WORKER_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include "knit/knit.h"
#include "transports/link.h"
#include "transports/shm/shm_lane.h"

#define KNIT__RUN_PER_TURN 5u  /* tasks a worker starts per loop turn (knitting's value) */
#define KNIT__WRITE_MAX    64u /* backlogged results a worker retries per turn */

/* A task as both sides know it: the definition (names owned by the table's owner). */
typedef struct knit__task {
    knit_task_def_t def;
    char *name;         /* owned copy (host) */
    uint32_t inflight;  /* host: calls of this task not settled (inliner gate) */
    uint32_t rr_cursor; /* host: balancer state, per task */
} knit__task_t;

typedef struct knit__worker_cfg {
    const knit__task_t *tasks; /* read-only for the worker's life */
    uint32_t ntasks;
    uint32_t index;                 /* worker index (knit_task_worker) */
    const knit__shm_lane_t *lane;   /* its lane: return lock, signals, doorbell, stop word */
    knit_transport_t transport;     /* what carries its frames */
    int fds[2];                     /* message transports: {rx, tx}, taken by knit__worker_new */
    const knit__shm_lane_t *submit; /* stealing: the shared request lock's lane, else NULL */
    uint32_t consumers;             /* stealing: number of workers */
    uint32_t steal_lanes;           /* stealing: lanes per region */
    int64_t spin_ns;                /* spin budget before parking (0: park at once) */
    bool spin_only;
    knit_bootstrap_fn bootstrap; /* run first, in the worker */
    void *bootstrap_ctx;
    const char *bootstrap_path; /* or imported from a shared object */
    const char *bootstrap_symbol;
    /* Run once start-up (bootstrap, imports) has succeeded, before the worker reports ready:
     * a process worker's sandbox. Negative fails start-up like a failing import. */
    int (*lockdown)(void *ctx);
    void *lockdown_ctx;
} knit__worker_cfg_t;

/* Has the host set abort bit `id`? (the shared bitmap lives in lane memory) */
static inline bool knit__abort_is_set(_Atomic uint32_t *shared, uint32_t id)
{
    /* acquire: a task that sees its bit also sees what the host wrote before setting it. */
    return (atomic_load_explicit(&shared[id >> 5], memory_order_acquire) >> (id & 31u)) & 1u;
}

typedef struct knit__worker knit__worker_t;

/* Set up a worker: its link, the bootstrap hook, then the task functions (imports are
 * dlopen'ed here), then the lockdown hook, and report the outcome in the lane's boot word.
 * KNIT_E_WORKER_STARTUP when the hook or an import fails. cfg->fds are taken in every case. */
int knit__worker_new(const knit__worker_cfg_t *cfg, knit__worker_t **out);

/* Run the loop until the host sets the lane's stop word. */
void knit__worker_run(knit__worker_t *w);

void knit__worker_free(knit__worker_t *w);

/* Worker side: record start-up success or failure (with knit_errmsg()) in lane memory and,
 * on failure, wake a host that waits for this lane. */
void knit__worker_report_boot(const knit__shm_lane_t *lane, int rc);

/* Host side: ask the lane's worker to stop, and wake it. */
void knit__worker_signal_stop(const knit__shm_lane_t *lane);

/* The rejection codes a worker may report for a call: its task's, its codec's, its own
 * (no such task, the timeout spent before the task ran). Not the ones only the host can know
 * (a worker's death, shutdown, a hard timeout, start-up) nor KNIT_E_AGAIN or KNIT_E_FULL,
 * which would leave a settled call reading as pending. */
static inline bool knit__worker_status_valid(int s)
{
    switch (s) {
    case KNIT_E_INVAL:
    case KNIT_E_NOMEM:
    case KNIT_E_RANGE:
    case KNIT_E_SYS:
    case KNIT_E_PAYLOAD_TOO_LARGE:
    case KNIT_E_ARENA_FULL:
    case KNIT_E_UNSUPPORTED:
    case KNIT_E_PROCESS_BOUNDARY:
    case KNIT_E_CORRUPT:
    case KNIT_E_TASK:
    case KNIT_E_TIMEOUT:
    case KNIT_E_ABORTED:
    case KNIT_E_ABORT_EXHAUSTED:
    case KNIT_E_NO_TASK:
        return true;
    default:
        return false;
    }
}

/* A task's return value as a settlement status: 0 resolves, a knit code a worker may report
 * (knit__worker_status_valid) rejects with that code, anything else (a positive value,
 * KNIT_E_AGAIN, a code only the host gives) rejects with KNIT_E_TASK. */
static inline int knit__task_status(int rc)
{
    return rc == 0 ? 0 : knit__worker_status_valid(rc) ? rc : KNIT_E_TASK;
}

/* Run a task on the calling thread (the inline lane); returns the settlement status. */
int knit__run_task_inline(
    const knit__task_t *t, knit_value_t *arg, knit_value_t *result, bool aborted);

#endif
