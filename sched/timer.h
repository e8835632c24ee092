/* knit sched - the pool's timers (timer.c): a binary min-heap of futures by deadline. */
#ifndef KNIT_SCHED_TIMER_H
#define KNIT_SCHED_TIMER_H

#include "sched/state.h"

int knit__timer_add(knit_pool_t *p, knit_future_t *f);
void knit__timer_remove(knit_pool_t *p, knit_future_t *f);
knit_future_t *knit__timer_due(knit_pool_t *p, uint64_t now);
uint64_t knit__timer_next(const knit_pool_t *p); /* 0 = none */

#endif
