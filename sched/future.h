/*
 * knit sched - a future's own life (future.c): the FIFOs futures wait in, completion
 * callbacks, references, and the getters of a settled future. Nothing here routes or settles.
 */
#ifndef KNIT_SCHED_FUTURE_H
#define KNIT_SCHED_FUTURE_H

#include "sched/state.h"

/* FIFOs of futures linked through ->next (inline: on every call's path). */
static inline void knit__fifo_push(knit__fifo_t *q, knit_future_t *f)
{
    f->next = NULL;
    if (q->tail)
        q->tail->next = f;
    else
        q->head = f;
    q->tail = f;
    q->len++;
}

static inline knit_future_t *knit__fifo_pop(knit__fifo_t *q)
{
    knit_future_t *f = q->head;
    if (f) {
        q->head = f->next;
        if (!q->head)
            q->tail = NULL;
        f->next = NULL;
        q->len--;
    }
    return f;
}

static inline bool knit__fifo_remove(knit__fifo_t *q, knit_future_t *f)
{
    knit_future_t *prev = NULL;
    for (knit_future_t *c = q->head; c; prev = c, c = c->next) {
        if (c != f)
            continue;
        if (prev)
            prev->next = c->next;
        else
            q->head = c->next;
        if (q->tail == c)
            q->tail = prev;
        c->next = NULL;
        q->len--;
        return true;
    }
    return false;
}

/* Run and forget a settled future's completion callbacks, in registration order. */
void knit__run_callbacks(knit_future_t *f);

/* Drop one reference; the last one frees the future and what it holds. */
void knit__future_unref(knit_future_t *f);

#endif
