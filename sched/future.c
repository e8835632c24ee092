/* knit sched - a future's own life: FIFOs, completion callbacks, references, getters. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "sched/future.h"

int knit_future_status(const knit_future_t *f)
{
    if (knit__null_arg(f, __func__, "future"))
        return KNIT_E_INVAL;
    return f->state == KNIT__CS_SETTLED ? f->status : KNIT_E_AGAIN;
}

const knit_value_t *knit_future_value(const knit_future_t *f)
{
    if (knit__null_arg(f, __func__, "future"))
        return NULL;
    return f->state == KNIT__CS_SETTLED ? &f->value : NULL;
}

int knit_future_take(knit_future_t *f, knit_value_t *out)
{
    if (knit__null_arg(f, __func__, "future") || knit__null_arg(out, __func__, "out"))
        return KNIT_E_INVAL;
    if (f->state != KNIT__CS_SETTLED)
        return KNIT_E_AGAIN;
    if (f->value.flags & KNIT_VF_LENT) {
        /* a small result lives in the future: the caller gets its own copy */
        knit_value_t lent = f->value;
        int rc = knit__value_keep(&lent, out);
        if (rc < 0)
            return rc;
    } else {
        *out = f->value;
    }
    f->value = knit_v_undefined();
    return 0;
}

int knit__fcache_new(knit__fcache_t **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : knit__err(KNIT_E_NOMEM, "the pool's future cache");
}

void knit__fcache_orphan(knit__fcache_t *c)
{
    if (!c)
        return;
    for (knit_future_t *f; (f = c->free);) {
        c->free = f->next;
        free(f);
    }
    c->nfree = 0;
    c->orphan = true;
    if (!c->live)
        free(c);
}

knit_future_t *knit__future_alloc(knit__fcache_t *c)
{
    knit_future_t *f = c->free;
    if (f) {
        c->free = f->next;
        c->nfree--;
    } else if (!(f = malloc(sizeof *f))) {
        return NULL;
    }
    c->live++;
    memset(f, 0, offsetof(knit_future_t, small));
    f->cache = c;
    return f;
}

/* A future whose last reference is gone goes back to its cache (or to the heap). */
static void future_recycle(knit_future_t *f)
{
    knit__fcache_t *c = f->cache;
    c->live--;
    if (c->orphan || c->nfree >= KNIT__FCACHE_MAX) {
        free(f);
        if (c->orphan && !c->live)
            free(c);
        return;
    }
    f->next = c->free;
    c->free = f;
    c->nfree++;
}

void knit_future_on_settle(knit_future_t *f, void (*cb)(knit_future_t *, void *), void *ctx)
{
    if (knit__null_arg(f, __func__, "future") || !cb)
        return;
    if (f->state == KNIT__CS_SETTLED && f->delivered && !f->queued) {
        cb(f, ctx); /* settled and delivered already: run it now */
        return;
    }
    if (!f->cb) {
        f->cb = cb;
        f->cb_ctx = ctx;
        return;
    }
    knit__cb_t *n = malloc(sizeof *n), **tail = &f->more_cbs;
    if (!n) {
        cb(f, ctx); /* out of memory: better early than never (documented as rare) */
        return;
    }
    *n = (knit__cb_t) {cb, ctx, NULL};
    while (*tail)
        tail = &(*tail)->next;
    *tail = n;
}

void knit__run_callbacks(knit_future_t *f)
{
    if (f->cb) {
        void (*cb)(knit_future_t *, void *) = f->cb;
        f->cb = NULL;
        cb(f, f->cb_ctx);
    }
    while (f->more_cbs) {
        knit__cb_t *n = f->more_cbs;
        f->more_cbs = n->next;
        n->fn(f, n->ctx);
        free(n);
    }
}

int knit_future_task(const knit_future_t *f)
{
    return knit__null_arg(f, __func__, "future") ? KNIT_E_INVAL : f->task;
}

void knit_future_retain(knit_future_t *f)
{
    if (!knit__null_arg(f, __func__, "future"))
        f->refs++;
}

void knit__future_unref(knit_future_t *f)
{
    if (--f->refs == 0) {
        while (f->more_cbs) { /* never ran: the future was never delivered */
            knit__cb_t *n = f->more_cbs;
            f->more_cbs = n->next;
            free(n);
        }
        knit_value_free(&f->value);
        if (f->has_arg)
            knit_value_free(&f->arg);
        future_recycle(f);
    }
}

void knit_future_release(knit_future_t *f)
{
    if (f)
        knit__future_unref(f);
}
