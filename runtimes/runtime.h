/*
 * knit runtimes - how a lane's worker runs. The thread runtime runs the worker loop on a
 * pthread of the host process; the process runtime starts a child program that maps the lane
 * memory and runs the same loop. Either way the host talks to the worker only through lane
 * memory: requests, results, the stop word, the start-up state and the doorbell.
 */
#ifndef KNIT_RUNTIMES_RUNTIME_H
#define KNIT_RUNTIMES_RUNTIME_H

#include "sched/pool.h"

/* Start the lane's worker (the lane memory exists). The worker reports start-up success or
 * failure through the lane's boot word. */
int knit__runner_start(knit_pool_t *p, knit__lane_t *lane);

/* Ask the worker to stop (it finishes the task it is running). */
void knit__runner_stop(knit__lane_t *lane);

/* Wait for the worker to be gone and release what the runner holds. */
void knit__runner_join(knit_pool_t *p, knit__lane_t *lane);

/* Thread runtime (runtimes/thread/thread.c). */
int knit__thread_start(knit_pool_t *p, knit__lane_t *lane);
void knit__thread_join(knit__lane_t *lane);

#endif
