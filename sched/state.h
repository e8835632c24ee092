/*
 * knit sched - the pool's internal state: the types every file of the scheduler shares (a
 * call and its future, a lane, the pool). Functions live with their files' own headers.
 */
#ifndef KNIT_SCHED_STATE_H
#define KNIT_SCHED_STATE_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/spin.h"
#include "codec/value_internal.h"
#include "knit/knit.h"
#include "runtimes/runtime.h"
#include "sched/abort.h"
#include "transports/link.h"
#include "transports/shm/shm_lane.h"
#include "worker/worker.h"

#define KNIT__MAX_TASKS       65536u
#define KNIT__DEFAULT_ABORTS  258u
#define KNIT__DEFAULT_SPIN_NS 50000 /* spin budget before parking, per lane (knitting: 50 us) */

/* Call states. */
enum knit__call_state {
    KNIT__CS_NEW = 0,    /* created, not routed yet */
    KNIT__CS_WAIT_INPUT, /* knit_call_after: waiting for the input future */
    KNIT__CS_BACKLOG,    /* waiting for a free slot on its lane */
    KNIT__CS_INLINE,     /* queued on the inline lane */
    KNIT__CS_INFLIGHT,   /* published to a worker */
    KNIT__CS_RUNNING,    /* running on the inline lane right now */
    KNIT__CS_SETTLED,
};

/* A call and its future are the same object. */
struct knit_future {
    knit_pool_t *pool;
    uint32_t refs; /* the caller's reference + the pool's while unsettled */
    int32_t task;
    int status;           /* KNIT_E_AGAIN while pending */
    uint8_t state;        /* enum knit__call_state */
    bool has_arg;         /* `arg` holds an owned copy to encode later */
    bool abort_requested; /* knit_future_abort was called */
    bool delivered;       /* settled and its callbacks/dependents have run */
    bool queued;          /* in the pool's settled queue */
    bool abort_aware;     /* the task is abort-aware (kept here: the pool may be gone) */
    uint32_t lane;        /* lane index (UINT32_MAX before routing) */
    uint32_t id;          /* registry id while in flight */
    int32_t abort_id;     /* -1 = none */
    uint64_t submit_ns;   /* when knit_call ran (timeouts count from here) */
    uint64_t deadline_ns; /* earliest of the soft and hard deadlines; 0 = none */
    uint32_t heap_pos;    /* index in the timer heap + 1; 0 = not in it */
    knit_value_t arg;
    knit_value_t value;
    void (*cb)(knit_future_t *, void *); /* first completion callback (no allocation) */
    void *cb_ctx;
    struct knit__cb *more_cbs; /* further callbacks, in registration order */
    knit_future_t *input;      /* knit_call_after: the future we wait for */
    knit_future_t *deps;       /* calls waiting for this one (linked by next_dep) */
    knit_future_t *next_dep;
    knit_future_t *next;        /* backlog / inline queue / free list link */
    struct knit__fcache *cache; /* where it goes back when released (future.c) */
    /* A small argument kept while the call waits in a backlog, then a small result: the
     * codec's storage for them (KNIT_VF_LENT), so a call allocates nothing. Last: a new
     * future clears only what comes before it. */
    _Alignas(16) uint8_t small[KNIT__SMALL_BYTES];
};

typedef struct knit__cb {
    void (*fn)(knit_future_t *, void *);
    void *ctx;
    struct knit__cb *next;
} knit__cb_t;

/* FIFO of futures linked through ->next. */
typedef struct knit__fifo {
    knit_future_t *head, *tail;
    size_t len;
} knit__fifo_t;

/* A lane's host doorbell, in its lane memory (see knit__bell_parked in layout.h). */
typedef struct knit__doorbell {
    _Atomic uint32_t *parked; /* host: 1 while it is (about to be) asleep */
    _Atomic uint32_t *seq;    /* the worker (or the runtime, when it ends) increments it */
} knit__doorbell_t;

typedef struct knit__lane {
    knit_pool_t *pool;
    uint32_t index;
    bool is_inline;
    bool is_submit; /* the shared request lock of a stealing pool (no worker of its own) */
    knit__shm_lane_t mem;
    knit__link_t *link;     /* host side of the data path */
    int worker_fds[2];      /* USES_FDS links: the worker's descriptors until it takes them */
    int link_down;          /* 0, or why the link broke (the lane's failure is handled apart) */
    knit__runner_t *runner; /* the running worker, the runtime's own */
    int failed;             /* 0, or why the lane's worker is gone (KNIT_E_WORKER_...) */
    char fail_msg[256];
    bool ready;        /* the worker reported a successful start-up */
    uint32_t inflight; /* routed here and not settled (backlog + published + inline queue) */
    uint32_t published;
    uint32_t zombies; /* settled early while in flight; their responses are still due */
    uint32_t strays;  /* responses that named no call of this lane, ignored */
    knit__fifo_t backlog;
    knit__abort_ids_t aborts;
    knit__doorbell_t bell;
    _Atomic uint32_t spare_bell[2]; /* the doorbell while the lane has no memory */
} knit__lane_t;

/* Registry entry for an id: the call in flight, or a zombie awaiting a late response.
 *
 * The id a worker answers by is the entry's index in the low KNIT__REG_INDEX_BITS bits and the
 * entry's generation above them; the generation moves on every time the entry is taken, so a
 * response is matched to the call it was sent for, never to a later call that reuses the
 * entry (a frame replayed or left behind by a worker settles nothing). */
#define KNIT__REG_INDEX_BITS 20u
#define KNIT__REG_INDEX_MASK ((1u << KNIT__REG_INDEX_BITS) - 1u)
#define KNIT__REG_MAX        (1u << KNIT__REG_INDEX_BITS)

typedef struct knit__slot_ref {
    knit_future_t *call; /* NULL when free or zombie */
    bool zombie;         /* settled early (timeout, cancel); the response is still to come */
    uint32_t lane;
    int32_t abort_id;
    uint32_t gen; /* generation of the id last handed out (kept while free) */
} knit__slot_ref_t;

struct knit_pool {
    knit_pool_opts_t opts;
    knit__task_t *tasks;
    uint32_t ntasks;
    bool any_abort_aware;

    knit__lane_t *lanes; /* worker lanes, then the inline lane or the submit lane if any */
    uint32_t nworkers;
    uint32_t nlanes;      /* nworkers + (inline ? 1 : 0) */
    uint32_t inline_lane; /* index in lanes, or UINT32_MAX */
    uint32_t *order;      /* balancer order of lanes (inline first or last) */
    uint32_t norder;
    knit_dispatcher_t dispatcher;
    bool stealing;
    uint32_t submit;      /* stealing: index of the submit lane in lanes */
    uint32_t steal_lanes; /* stealing: lanes per region */
    uint64_t rng;         /* xorshift64* state of the random balancers */

    knit__lane_cfg_t lane_cfg;
    const knit__runtime_ops_t *rt_ops; /* the runtime's */
    knit__runtime_t *rt;               /* its per-pool state */
    bool lanes_unsettled; /* some worker may still report start-up or die: check lanes */
    uint32_t respawns;    /* process workers replaced after dying */

    struct knit__fcache *fcache; /* released futures, kept for the next calls */

    /* call registry */
    knit__slot_ref_t *reg;
    uint32_t reg_cap;
    uint32_t *free_ids;
    uint32_t nfree;

    /* timers: binary min-heap of futures by deadline_ns */
    knit_future_t **heap;
    uint32_t heap_len, heap_cap;

    knit__fifo_t inline_q;
    knit__fifo_t settled_q; /* settled, callbacks still to run */
    size_t pending;         /* calls not settled */
    bool closed;
    bool shutting_down;
    bool force_close; /* a hard timeout fired: close at the end of this pass */
    bool joined;      /* worker threads joined */
    int64_t spin_ns;
    int64_t worker_spin_ns; /* the workers' budget (0 when they outnumber the free CPUs) */
    knit__spin_t spin;      /* the host's spinning backs off while it is being preempted */
    const knit__link_ops_t *link_ops; /* the transport's */
    int wake_fd; /* USES_FDS links with a CAN_DIE runtime: an eventfd written on a death */
    /* CAN_DIE runtimes: rung (incremented, woken) when a worker ends on its own; a host asleep
     * on its lanes' doorbells sleeps on it too - a doorbell in lane memory a worker shrank
     * before dying cannot wake it */
    _Atomic uint32_t death_bell;
    struct pollfd *pfds; /* USES_FDS links: the host's poll set */
};

/* Whether a call of task `task` has a deadline (a task timeout or the pool's hard timeout):
 * only then does it need its submission time, and only then is the clock read for it. */
static inline bool knit__call_timed(const knit_pool_t *p, int task)
{
    return p->tasks[task].def.timeout_ms || p->opts.worker.hard_timeout_ms;
}

/* The timeout outcome of a task as a status and value (borrowed from the definition). */
static inline int knit__timeout_outcome(const knit_task_def_t *d, knit_value_t *v)
{
    switch (d->on_timeout) {
    case KNIT_TIMEOUT_RESOLVE:
        *v = d->timeout_value;
        return 0;
    case KNIT_TIMEOUT_MAYBE:
        *v = knit_v_undefined();
        return 0;
    case KNIT_TIMEOUT_ERROR:
        *v = d->timeout_value;
        return KNIT_E_TASK;
    default:
        *v = knit_v_undefined();
        return KNIT_E_TIMEOUT;
    }
}

#endif
