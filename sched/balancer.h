/* knit sched - the balancers and the inliner gate (balancer.c). */
#ifndef KNIT_SCHED_BALANCER_H
#define KNIT_SCHED_BALANCER_H

#include "sched/state.h"

/* The lane a new call of task `t` goes to. */
uint32_t knit__balance(knit_pool_t *p, knit__task_t *t);

#endif
