/*
 * knit runtimes - the runtime contract: how a lane's worker runs. A runtime is a table of
 * operations (knit__runtime_ops_t) with capability flags; the scheduler calls the operations
 * and tests the flags, never which runtime it holds. Each runtime keeps its state private:
 *
 *   thread   runtimes/thread/: the worker loop on a pthread of the host process;
 *   process  runtimes/process/: a child program (this executable by default, behind an
 *            optional command prefix) that maps the lane memory - inherited on fd 0 or opened
 *            by name - and runs the same loop. Its pid, pidfd, exit status, the lane memory's
 *            name and the monitor thread that reaps children are the process runtime's own.
 *
 * Either way the host talks to a worker only through its lane: the link for frames, the lane
 * memory's control words for the stop word, the start-up report and the doorbell. Every
 * operation is called from the pool's host thread.
 */
#ifndef KNIT_RUNTIMES_RUNTIME_H
#define KNIT_RUNTIMES_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "knit/knit.h"
#include "transports/shm/shm_lane.h"
#include "worker/worker.h"

enum knit__runtime_flag {
    /* Workers share the host's address space: a host function pointer (a bootstrap hook)
     * reaches them, values do not cross a process boundary, and they can consume a stealing
     * pool's shared request lock. */
    KNIT__RUNTIME_SHARED_ADDRESS = 1u << 0,
    /* A worker can end on its own (crash, kill, exit): exited() reports it and the scheduler
     * may start a replacement. A worker whose start-up fails ends too, so its failure is
     * handled when it has exited. Without it a worker lives until it is stopped and joined. */
    KNIT__RUNTIME_CAN_DIE = 1u << 1,
    /* kill() ends a worker stuck in a task at once (a hard timeout). */
    KNIT__RUNTIME_KILLABLE = 1u << 2,
};

typedef struct knit__runtime knit__runtime_t; /* one per pool, the runtime's own */
typedef struct knit__runner knit__runner_t;   /* one per running worker, the runtime's own */

/* What starting one lane's worker needs. */
typedef struct knit__runner_cfg {
    knit__worker_cfg_t worker;    /* what the worker loop needs; worker.fds are taken in every
                                     case (a process worker gets them as fds 3 and 4) */
    _Atomic uint32_t *death_bell; /* CAN_DIE: a word of the host's own memory, incremented and
                                     woken when the worker ends on its own (the lane's doorbell
                                     may be lane memory the worker made unusable) */
    int wake_fd;                  /* CAN_DIE: an eventfd also written when the worker ends on its
                                     own (a host waiting in poll()), or -1 */
} knit__runner_cfg_t;

/* How a worker ended (CAN_DIE). */
typedef struct knit__exit {
    int32_t pid;
    int code;   /* exit status, or -1 when a signal ended it */
    int signal; /* the signal that ended it, or 0 */
} knit__exit_t;

typedef struct knit__runtime_ops {
    const char *name; /* "thread", "process" */
    unsigned flags;   /* enum knit__runtime_flag */

    /* Check the options this runtime reads and set up its per-pool state for `workers`
     * workers. A clear KNIT_E_... error for options it cannot honour. */
    int (*open)(const knit_pool_opts_t *opts, uint32_t workers, knit__runtime_t **out);
    /* Release the per-pool state, once every runner has been joined or forgotten. */
    void (*close)(knit__runtime_t *rt);

    /* Acquire worker `worker`'s lane memory in the form its worker will reach it (a memfd
     * inherited or cached, or a named object), and release it (no worker uses it any more). */
    int (*memory)(
        knit__runtime_t *rt, uint32_t worker, const knit__lane_cfg_t *cfg, knit__shm_lane_t *mem);
    void (*memory_release)(knit__runtime_t *rt, uint32_t worker, knit__shm_lane_t *mem);
    /* Optional (NULL: nothing to do): worker `worker` reported a successful start-up, so it
     * has its own mapping of its lane memory; a name other processes could open it by is
     * not needed any more. */
    void (*attached)(knit__runtime_t *rt, uint32_t worker);

    /* Start a worker on its lane (the lane memory exists; its link's host side is open). The
     * worker reports start-up success or failure through the lane's boot word. */
    int (*start)(knit__runtime_t *rt, const knit__runner_cfg_t *cfg, knit__runner_t **out);
    /* The worker was asked to stop: wait for it to end (a process worker that does not is
     * killed after a grace period) and release the runner. Blocks. */
    void (*join)(knit__runtime_t *rt, knit__runner_t *r);
    /* KILLABLE only (else NULL): end the worker now; join() or exited() follows. */
    void (*kill)(knit__runner_t *r);
    /* CAN_DIE only (else NULL): has the worker ended? Once true, fills `how`, and nothing of
     * the runtime touches the lane memory any more. Cheap (a memory read until it is true). */
    bool (*exited)(knit__runtime_t *rt, knit__runner_t *r, knit__exit_t *how);
    /* CAN_DIE only: release the runner of a worker that exited(). */
    void (*forget)(knit__runtime_t *rt, knit__runner_t *r);
    /* The worker's process id, or 0 when it has none of its own. */
    int32_t (*pid)(const knit__runner_t *r);
} knit__runtime_ops_t;

/* The operations of a runtime, or NULL for an unknown one (runtimes/registry.c). */
const knit__runtime_ops_t *knit__runtime_ops(knit_runtime_t rt);

static inline bool knit__runtime_has(const knit__runtime_ops_t *ops, unsigned flag)
{
    return (ops->flags & flag) != 0;
}

#endif
