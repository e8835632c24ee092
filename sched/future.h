/*
 * knit sched - a future's own life (future.c): the FIFOs futures wait in, completion
 * callbacks, references, and the getters of a settled future. Nothing here routes or settles.
 */
#ifndef KNIT_SCHED_FUTURE_H
#define KNIT_SCHED_FUTURE_H

#include "sched/state.h"

void knit__fifo_push(knit__fifo_t *q, knit_future_t *f);
knit_future_t *knit__fifo_pop(knit__fifo_t *q);
bool knit__fifo_remove(knit__fifo_t *q, knit_future_t *f);

/* Run and forget a settled future's completion callbacks, in registration order. */
void knit__run_callbacks(knit_future_t *f);

/* Drop one reference; the last one frees the future and what it holds. */
void knit__future_unref(knit_future_t *f);

#endif
