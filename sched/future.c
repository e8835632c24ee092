/* knit sched - a future's own life: FIFOs, completion callbacks, references, getters. */
#include <stdlib.h>

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
    *out = f->value;
    f->value = knit_v_undefined();
    return 0;
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
        free(f);
    }
}

void knit_future_release(knit_future_t *f)
{
    if (f)
        knit__future_unref(f);
}
