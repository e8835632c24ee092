/* knit sched - the host's timers: a binary min-heap of calls ordered by their deadline. */
#include <stdlib.h>

#include "base/error.h"
#include "sched/timer.h"

#define AT(i) (p->heap[(i)])

static void place(knit_pool_t *p, uint32_t i, knit_future_t *f)
{
    p->heap[i] = f;
    f->heap_pos = i + 1;
}

static void sift_up(knit_pool_t *p, uint32_t i)
{
    knit_future_t *f = AT(i);
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (AT(parent)->deadline_ns <= f->deadline_ns)
            break;
        place(p, i, AT(parent));
        i = parent;
    }
    place(p, i, f);
}

static void sift_down(knit_pool_t *p, uint32_t i)
{
    knit_future_t *f = AT(i);
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= p->heap_len)
            break;
        if (c + 1 < p->heap_len && AT(c + 1)->deadline_ns < AT(c)->deadline_ns)
            c++;
        if (AT(c)->deadline_ns >= f->deadline_ns)
            break;
        place(p, i, AT(c));
        i = c;
    }
    place(p, i, f);
}

int knit__timer_add(knit_pool_t *p, knit_future_t *f)
{
    if (p->heap_len == p->heap_cap) {
        uint32_t cap = p->heap_cap ? p->heap_cap * 2 : 64;
        knit_future_t **h = realloc(p->heap, cap * sizeof *h);
        if (!h)
            return knit__err(KNIT_E_NOMEM, "timer heap of %u entries", cap);
        p->heap = h;
        p->heap_cap = cap;
    }
    place(p, p->heap_len++, f);
    sift_up(p, p->heap_len - 1);
    return 0;
}

void knit__timer_remove(knit_pool_t *p, knit_future_t *f)
{
    if (!f->heap_pos)
        return;
    uint32_t i = f->heap_pos - 1;
    f->heap_pos = 0;
    knit_future_t *last = p->heap[--p->heap_len];
    if (i == p->heap_len)
        return;
    place(p, i, last);
    sift_down(p, i);
    sift_up(p, last->heap_pos - 1);
}

knit_future_t *knit__timer_due(knit_pool_t *p, uint64_t now)
{
    if (p->heap_len == 0 || AT(0)->deadline_ns > now)
        return NULL;
    knit_future_t *f = AT(0);
    knit__timer_remove(p, f);
    return f;
}

uint64_t knit__timer_next(const knit_pool_t *p)
{
    return p->heap_len ? p->heap[0]->deadline_ns : 0;
}
