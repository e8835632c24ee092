/* knit sched - calls and futures (include/knit/knit.h). */
#include <stdlib.h>

#include "base/clock.h"
#include "base/error.h"
#include "sched/future.h"
#include "sched/route.h"
#include "sched/settle.h"

/* The pool and the out pointer every call function takes; true (and a message naming `fn`)
 * when one is NULL. */
static bool call_args_null(const knit_pool_t *p, knit_future_t **out, const char *fn)
{
    return knit__null_arg(p, fn, "pool") || knit__null_arg(out, fn, "out");
}

static int new_future(knit_pool_t *p, int task, knit_future_t **out)
{
    if (task < 0 || (uint32_t)task >= p->ntasks)
        return knit__err(KNIT_E_NO_TASK, "task index %d is not in [0, %u)", task, p->ntasks);
    knit_future_t *f = knit__future_alloc(p->fcache);
    if (!f)
        return knit__err(KNIT_E_NOMEM, "a call");
    f->pool = p;
    f->refs = 2; /* the caller's and the pool's (dropped once settled and delivered) */
    f->task = task;
    f->status = KNIT_E_AGAIN;
    f->state = KNIT__CS_NEW;
    f->lane = UINT32_MAX;
    f->abort_id = -1;
    /* without a deadline the call skips the clock (a measurable share of a burst's cost) */
    if (knit__call_timed(p, task))
        f->submit_ns = knit__now_ns();
    f->abort_aware = p->tasks[task].def.abort_aware;
    f->arg = knit_v_undefined();
    f->value = knit_v_undefined();
    p->pending++;
    *out = f;
    return 0;
}

int knit_call(knit_pool_t *p, int task, knit_value_t *arg, knit_future_t **out)
{
    if (call_args_null(p, out, __func__))
        return KNIT_E_INVAL;
    knit_future_t *f = NULL;
    int rc = new_future(p, task, &f);
    if (rc < 0)
        return rc;
    f->arg = arg ? *arg : knit_v_undefined(); /* borrowed until published or kept */
    if (arg && arg->kind == KNIT_KIND_MOVED) {
        f->has_arg = true; /* the call owns the moved buffer from now on */
        *arg = knit_v_undefined();
    }
    knit__route_and_send(p, f);
    if (!f->has_arg)
        f->arg = knit_v_undefined(); /* never keep a pointer to the caller's memory */
    *out = f;
    return 0;
}

int knit_call_name(knit_pool_t *p, const char *task, knit_value_t *arg, knit_future_t **out)
{
    if (call_args_null(p, out, __func__) || knit__null_arg(task, __func__, "task"))
        return KNIT_E_INVAL;
    int t = knit_task_index(p, task);
    return t < 0 ? t : knit_call(p, t, arg, out);
}

int knit_call_after(knit_pool_t *p, int task, knit_future_t *input, knit_future_t **out)
{
    if (call_args_null(p, out, __func__) || knit__null_arg(input, __func__, "input"))
        return KNIT_E_INVAL;
    if (input->pool != p)
        return knit__err(KNIT_E_INVAL, "knit_call_after: the input future is not from this pool");
    knit_future_t *f = NULL;
    int rc = new_future(p, task, &f);
    if (rc < 0)
        return rc;
    f->state = KNIT__CS_WAIT_INPUT;
    f->input = input;
    input->refs++; /* held until the dependent is dispatched */
    f->next_dep = input->deps;
    input->deps = f;
    if (input->state == KNIT__CS_SETTLED && input->delivered && !input->queued) {
        /* already settled and delivered: queue it so the dependents run on the next pass (if
         * it is queued already, they run when it comes up) */
        input->refs++;
        input->queued = true;
        knit__fifo_push(&p->settled_q, input);
    }
    *out = f;
    return 0;
}

int knit_call_batch(knit_pool_t *p, int task, knit_value_t *args, size_t n, knit_future_t **outs)
{
    if (knit__null_arg(p, __func__, "pool"))
        return KNIT_E_INVAL;
    if (n && (!args || !outs))
        return knit__err(KNIT_E_INVAL, "knit_call_batch: args and outs must not be NULL");
    for (size_t i = 0; i < n; i++) {
        int rc = knit_call(p, task, &args[i], &outs[i]);
        if (rc < 0) {
            for (size_t k = i; k < n; k++)
                outs[k] = NULL;
            return rc;
        }
    }
    return 0;
}

int knit_future_wait(knit_future_t *f, int64_t timeout_ns)
{
    if (knit__null_arg(f, __func__, "future"))
        return KNIT_E_INVAL;
    knit_pool_t *p = f->pool;
    if (timeout_ns == 0) {
        if (f->state != KNIT__CS_SETTLED)
            knit_pool_progress(p, 0); /* one non-blocking step */
        return f->state == KNIT__CS_SETTLED ? f->status : KNIT_E_AGAIN;
    }
    uint64_t start = timeout_ns >= 0 ? knit__now_ns() : 0;
    while (f->state != KNIT__CS_SETTLED) {
        int64_t left = -1;
        if (timeout_ns >= 0) {
            uint64_t spent = knit__now_ns() - start;
            if (spent >= (uint64_t)timeout_ns)
                return KNIT_E_AGAIN;
            left = timeout_ns - (int64_t)spent;
        }
        int rc = knit_pool_progress(p, left);
        if (rc < 0)
            return rc;
    }
    return f->state == KNIT__CS_SETTLED ? f->status : KNIT_E_AGAIN;
}

bool knit_future_poll(knit_future_t *f)
{
    if (knit__null_arg(f, __func__, "future"))
        return true; /* nothing to wait for (documented): a polling loop ends */
    if (f->state != KNIT__CS_SETTLED)
        knit_pool_progress(f->pool, 0);
    return f->state == KNIT__CS_SETTLED;
}

int knit_future_abort(knit_future_t *f)
{
    if (knit__null_arg(f, __func__, "future"))
        return KNIT_E_INVAL;
    if (f->state == KNIT__CS_SETTLED) /* the pool may be gone: touch nothing else */
        return f->abort_aware ? 0 : knit__err(KNIT_E_INVAL, "the call's task is not abort-aware");
    knit_pool_t *p = f->pool;
    if (!f->abort_aware)
        return knit__err(KNIT_E_INVAL, "task '%s' is not abort-aware", p->tasks[f->task].name);
    f->abort_requested = true;
    if (f->abort_id >= 0 && f->lane != UINT32_MAX)
        knit__abort_signal(&p->lanes[f->lane].aborts, (uint32_t)f->abort_id);
    return 0;
}

int knit_future_cancel(knit_future_t *f)
{
    if (knit__null_arg(f, __func__, "future"))
        return KNIT_E_INVAL;
    knit_pool_t *p = f->pool;
    if (f->state == KNIT__CS_SETTLED || f->state == KNIT__CS_RUNNING)
        return 0;
    knit_value_t none = knit_v_undefined();
    knit__settle_early(p, f, KNIT_E_ABORTED, &none);
    return 0;
}
