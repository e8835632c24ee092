/*
 * knit sched - abort signal ids of one lane (knitting-internals 6.2). The host hands out ids from
 * a private in-use bitmap, scanning words cyclically from a cursor; the shared bitmap in lane
 * memory carries "aborted" bits to the worker. An id is released only when the worker's
 * response for its call has arrived (or the call never reached the worker), so an id is never
 * reused while a task may still poll it.
 */
#include <stdlib.h>

#include "base/error.h"
#include "sched/abort.h"

int knit__abort_init(knit__abort_ids_t *a, uint32_t capacity, _Atomic uint32_t *shared)
{
    a->capacity = capacity;
    a->words = (capacity + 31u) / 32u;
    a->cursor = 0;
    a->used = 0;
    a->shared = shared;
    a->in_use = calloc(a->words ? a->words : 1, sizeof(uint32_t));
    return a->in_use ? 0 : knit__err(KNIT_E_NOMEM, "abort id bitmap of %u ids", capacity);
}

void knit__abort_fini(knit__abort_ids_t *a)
{
    free(a->in_use);
    a->in_use = NULL;
}

/* Bits of word w that are valid ids. */
static uint32_t valid_mask(const knit__abort_ids_t *a, uint32_t w)
{
    uint32_t first = w * 32u;
    if (a->capacity >= first + 32u)
        return UINT32_MAX;
    return (1u << (a->capacity - first)) - 1u;
}

int knit__abort_alloc(knit__abort_ids_t *a)
{
    if (a->used >= a->capacity)
        return knit__err(KNIT_E_ABORT_EXHAUSTED, "all %u abort signal ids are in use", a->capacity);
    for (uint32_t k = 0; k < a->words; k++) {
        uint32_t w = (a->cursor + k) % a->words;
        uint32_t freebits = ~a->in_use[w] & valid_mask(a, w);
        if (!freebits)
            continue;
        uint32_t bit = (uint32_t)__builtin_ctz(freebits);
        a->in_use[w] |= 1u << bit;
        a->used++;
        a->cursor = (w + 1) % a->words;
        uint32_t id = w * 32u + bit;
        /* release: the cleared bit is visible before the request that carries this id (its
         * publication is a release store too, which orders this anyway). */
        if (a->shared)
            atomic_fetch_and_explicit(&a->shared[w], ~(1u << bit), memory_order_release);
        return (int)id;
    }
    return knit__err(KNIT_E_ABORT_EXHAUSTED, "all %u abort signal ids are in use", a->capacity);
}

void knit__abort_release(knit__abort_ids_t *a, uint32_t id)
{
    uint32_t w = id >> 5, bit = 1u << (id & 31u);
    if (w >= a->words || !(a->in_use[w] & bit))
        return;
    a->in_use[w] &= ~bit;
    a->used--;
    /* relaxed: the id is unused now; the next allocation clears it again with release. */
    if (a->shared)
        atomic_fetch_and_explicit(&a->shared[w], ~bit, memory_order_relaxed);
}

void knit__abort_signal(knit__abort_ids_t *a, uint32_t id)
{
    /* release: pairs with the task's acquire load in knit__abort_is_set. */
    if (a->shared)
        atomic_fetch_or_explicit(&a->shared[id >> 5], 1u << (id & 31u), memory_order_release);
}
