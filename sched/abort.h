/*
 * knit sched - abort signal ids of one lane (abort.c): a private in-use bitmap on the host; the
 * shared bitmap that carries "aborted" bits to the worker lives in lane memory.
 */
#ifndef KNIT_SCHED_ABORT_H
#define KNIT_SCHED_ABORT_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct knit__abort_ids {
    uint32_t capacity;
    uint32_t words;
    uint32_t cursor;
    uint32_t used;
    uint32_t *in_use;         /* private */
    _Atomic uint32_t *shared; /* lane memory: bit set = aborted */
} knit__abort_ids_t;

int knit__abort_init(knit__abort_ids_t *a, uint32_t capacity, _Atomic uint32_t *shared);
void knit__abort_fini(knit__abort_ids_t *a);
int knit__abort_alloc(knit__abort_ids_t *a); /* id or KNIT_E_ABORT_EXHAUSTED */
void knit__abort_release(knit__abort_ids_t *a, uint32_t id);
void knit__abort_signal(knit__abort_ids_t *a, uint32_t id);

#endif
