/*
 * knit sched - lanes (lanes.c): their memory and links, their workers' start and stop through
 * the runtime's operations, and their health - start-up reports, deaths, broken links and
 * replacement workers.
 */
#ifndef KNIT_SCHED_LANES_H
#define KNIT_SCHED_LANES_H

#include "sched/drain.h"
#include "sched/state.h"

/* Create every lane of a new pool (memory, link, abort ids) and start its workers. */
int knit__lanes_open(knit_pool_t *p);

/* A lane's link broke (knit__drain_lane's negative code): fail or replace its worker. */
void knit__lane_broke(knit_pool_t *p, knit__lane_t *lane, int rc);

/* Drain a lane and handle a broken link; the number of frames (1 for a broken link). */
static inline int knit__lane_service(knit_pool_t *p, knit__lane_t *lane)
{
    int n = knit__drain_lane(p, lane);
    if (n >= 0)
        return n;
    knit__lane_broke(p, lane, n);
    return 1;
}

/* Start-up reports and deaths of the workers (while p->lanes_unsettled). */
void knit__check_lanes(knit_pool_t *p);

/* A worker reported its start-up outcome or ended since the last check (cheap). */
bool knit__lanes_changed(knit_pool_t *p);

/* Close the pool: reject what is pending, ask the workers to stop (a hard timeout kills a
 * process worker now) and, with `join`, wait for them. */
void knit__pool_close(knit_pool_t *p, bool join);

/* Ask every worker to stop and wait for each. */
void knit__join_workers(knit_pool_t *p);

/* Release every lane: the frames still in their links, their memory, their abort ids. */
void knit__lanes_free(knit_pool_t *p);

#endif
