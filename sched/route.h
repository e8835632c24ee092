/*
 * knit sched - dispatch (route.c): a call goes to a lane chosen by the balancer (or to the
 * shared request lock, or the inline lane), is published when the lane has room, and waits in
 * the lane's backlog otherwise; settled calls are delivered to callbacks and dependents.
 */
#ifndef KNIT_SCHED_ROUTE_H
#define KNIT_SCHED_ROUTE_H

#include "sched/state.h"

/* Route and publish a new call (or settle it at once: closed pool, failed lane, errors). */
int knit__route_and_send(knit_pool_t *p, knit_future_t *f);

/* Publish as much of a lane's backlog as fits, in order, and wake its worker; the number. */
int knit__flush_backlog(knit_pool_t *p, knit__lane_t *lane);

/* Deliver settled calls: dependents dispatched, callbacks run, the pool's reference dropped. */
int knit__run_settled(knit_pool_t *p);

#endif
