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

/* A pool's cache of futures. A released future goes back to it (up to KNIT__FCACHE_MAX kept)
 * instead of the heap, so calls in steady state allocate none. The cache outlives its pool
 * while the caller still holds futures: once the pool is gone (knit__fcache_orphan), a
 * released future is freed, and the last one frees the cache. One thread: the pool's. */
#define KNIT__FCACHE_MAX 4096u

typedef struct knit__fcache {
    knit_future_t *free; /* linked through ->next */
    uint32_t nfree;
    uint32_t live; /* handed out and not back yet */
    bool orphan;   /* the pool is gone */
} knit__fcache_t;

/* A new cache; KNIT_E_NOMEM. */
int knit__fcache_new(knit__fcache_t **out);
/* The pool is being freed: free the kept futures, and the cache once none is out. */
void knit__fcache_orphan(knit__fcache_t *c);
/* A future from the cache (or the heap), cleared up to its small storage; NULL when out of
 * memory. */
knit_future_t *knit__future_alloc(knit__fcache_t *c);

/* Run and forget a settled future's completion callbacks, in registration order. */
void knit__run_callbacks(knit_future_t *f);

/* Drop one reference; the last one frees the future and what it holds. */
void knit__future_unref(knit_future_t *f);

#endif
