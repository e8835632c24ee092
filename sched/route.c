/*
 * knit sched - dispatch: routing a call to a lane, publishing it (or holding it back behind
 * earlier calls when the lane is full), and delivering settled calls to their callbacks and
 * dependents.
 */
#include <string.h>

#include "base/clock.h"
#include "base/error.h"
#include "sched/balancer.h"
#include "sched/future.h"
#include "sched/route.h"
#include "sched/settle.h"
#include "sched/timer.h"

/* Dependents of a settled call: dispatch them with its value, or pass its rejection on. */
static void run_dependents(knit_pool_t *p, knit_future_t *f)
{
    knit_future_t *d = f->deps;
    f->deps = NULL;
    while (d) {
        knit_future_t *next = d->next_dep;
        d->next_dep = NULL;
        d->input = NULL;
        knit_value_t copy = knit_v_undefined();
        int rc = knit__value_keep((knit_value_t *)&f->value, &copy);
        if (rc < 0) {
            knit_value_t m = knit__errmsg_value();
            knit__settle(p, d, rc, &m);
        } else if (f->status != 0) {
            knit__settle(p, d, f->status, &copy);
        } else {
            d->arg = copy;
            d->has_arg = true;
            if (knit__call_timed(p, d->task))
                d->submit_ns = knit__now_ns(); /* its timeout counts from dispatch (knitting) */
            knit__route_and_send(p, d);
        }
        knit__future_unref(f); /* the reference the dependent held on its input */
        d = next;
    }
}

int knit__run_settled(knit_pool_t *p)
{
    int n = 0;
    for (knit_future_t *f; (f = knit__fifo_pop(&p->settled_q));) {
        f->queued = false;
        f->delivered = true;
        if (f->deps)
            run_dependents(p, f);
        knit__run_callbacks(f);
        n++;
        knit__future_unref(f); /* the pool's reference */
    }
    return n;
}

/* A small buffer argument copied into the future's own storage (no allocation); false when
 * it does not fit or is not a buffer. */
static bool keep_small_arg(knit_future_t *f)
{
    knit_value_t *a = &f->arg;
    bool buffer = a->kind == KNIT_KIND_BYTES || a->kind == KNIT_KIND_STRING
        || a->kind == KNIT_KIND_JSON || a->kind == KNIT_KIND_TYPED || a->kind == KNIT_KIND_BIGINT;
    if (!buffer || a->len >= KNIT__SMALL_BYTES || (a->len && !a->u.ptr))
        return false;
    if (a->len)
        memcpy(f->small, a->u.ptr, a->len);
    f->small[a->len] = 0;
    a->u.ptr = f->small;
    a->flags = KNIT_VF_LENT;
    return true;
}

/* Keep an owned copy of the argument for a call that cannot be encoded right now. */
static int keep_arg(knit_pool_t *p, knit_future_t *f)
{
    if (f->has_arg)
        return 0;
    if (keep_small_arg(f)) {
        f->has_arg = true;
        return 0;
    }
    knit_value_t borrowed = f->arg;
    int rc = knit__value_keep(&borrowed, &f->arg);
    if (rc < 0) {
        knit_value_t m = knit__errmsg_value();
        knit__settle_early(p, f, rc, &m);
        return rc;
    }
    f->has_arg = true;
    return 0;
}

/* Publish one call on its lane: 0, KNIT_E_FULL (still ours), or settled with an error. */
static int publish(knit_pool_t *p, knit__lane_t *lane, knit_future_t *f)
{
    const knit__task_t *t = &p->tasks[f->task];
    uint32_t id = 0;
    int rc = knit__reg_alloc(p, f, &id);
    if (rc < 0)
        return rc;
    uint32_t w0 = (uint32_t)f->task | (f->abort_id >= 0 ? ((uint32_t)f->abort_id + 1) << 16 : 0);
    uint32_t stamp = t->def.timeout_ms ? knit__stamp_ms(f->submit_ns) : 0;
#if KNIT_INJECT_DELAY_NS > 0
    /* Test builds only (CMake -DKNIT_INJECT_DELAY_NS=N; compiled out of every normal build):
     * a known slowdown for the regression gate's evidence (docs/gate.md) - N ns of busy
     * waiting per call published on the transport KNIT_INJECT_TRANSPORT. */
    if (p->opts.transport == KNIT_INJECT_TRANSPORT)
        for (uint64_t until = knit__now_ns() + KNIT_INJECT_DELAY_NS; knit__now_ns() < until;)
            ;
#endif
    rc = knit__link_send(lane->link, w0, id, stamp, &f->arg);
    if (rc == KNIT_E_WORKER_DIED)
        rc = KNIT_E_FULL; /* the worker's end is gone: the call waits in the backlog; the drain
                             reads end-of-stream and handles the lane (a replacement worker
                             takes the backlog, or it is rejected) */
    if (rc < 0) {
        knit__reg_free(p, id);
        return rc;
    }
    f->id = id;
    f->state = KNIT__CS_INFLIGHT;
    lane->published++;
    if (f->has_arg) {
        knit_value_free(&f->arg);
        f->has_arg = false;
    }
    return 0;
}

int knit__flush_backlog(knit_pool_t *p, knit__lane_t *lane)
{
    int n = 0;
    for (knit_future_t *f; (f = lane->backlog.head);) {
        int rc = publish(p, lane, f);
        if (rc == KNIT_E_FULL)
            break;
        if (rc < 0) {
            knit_value_t m = knit__errmsg_value();
            knit__settle_early(p, f, rc, &m); /* leaves the backlog, returns its abort id */
        } else {
            knit__fifo_pop(&lane->backlog);
        }
        n++;
    }
    if (n)
        knit__link_wake_peer(lane->link); /* stealing: the shared lock wakes a parked worker */
    return n;
}

static int arm_timers(knit_pool_t *p, knit_future_t *f)
{
    const knit__task_t *t = &p->tasks[f->task];
    uint64_t soft = t->def.timeout_ms ? f->submit_ns + t->def.timeout_ms * 1000000ull : 0;
    uint64_t hard = p->opts.worker.hard_timeout_ms
        ? f->submit_ns + p->opts.worker.hard_timeout_ms * 1000000ull
        : 0;
    f->deadline_ns = soft && hard ? (soft < hard ? soft : hard) : soft | hard;
    return f->deadline_ns ? knit__timer_add(p, f) : 0;
}

int knit__route_and_send(knit_pool_t *p, knit_future_t *f)
{
    if (p->closed) {
        knit_value_t none = knit_v_undefined();
        knit__settle(p, f, KNIT_E_SHUTDOWN, &none);
        return 0;
    }
    knit__task_t *t = &p->tasks[f->task];
    uint32_t li = p->stealing ? p->submit : knit__balance(p, t);
    knit__lane_t *lane = &p->lanes[li];
    f->lane = li;
    lane->inflight++;
    t->inflight++;
    if (lane->failed) {
        knit_value_t m = knit__string_value(lane->fail_msg);
        knit__settle(p, f, lane->failed, &m);
        return 0;
    }
    if (t->def.abort_aware && !lane->is_inline) {
        int id = knit__abort_alloc(&lane->aborts);
        if (id < 0) {
            knit_value_t m = knit__errmsg_value();
            knit__settle(p, f, id, &m);
            return 0;
        }
        f->abort_id = id;
        if (f->abort_requested) /* knit_future_abort came before the call was dispatched */
            knit__abort_signal(&lane->aborts, (uint32_t)id);
    }
    if (arm_timers(p, f) < 0) {
        knit_value_t m = knit__errmsg_value();
        knit__settle_early(p, f, KNIT_E_NOMEM, &m);
        return 0;
    }
    if (lane->is_inline) {
        if (keep_arg(p, f) == 0) {
            f->state = KNIT__CS_INLINE;
            knit__fifo_push(&p->inline_q, f);
        }
        return 0;
    }
    if (lane->backlog.len == 0) {
        int rc = publish(p, lane, f);
        if (rc == 0) {
            knit__link_wake_peer(lane->link);
            return 0;
        }
        if (rc != KNIT_E_FULL) {
            knit_value_t m = knit__errmsg_value();
            knit__release_abort_id(p, li, f->abort_id);
            f->abort_id = -1;
            knit__settle(p, f, rc, &m);
            return 0;
        }
    }
    /* Back-pressure: wait behind earlier calls; a newer call never overtakes them. */
    if (keep_arg(p, f) == 0) {
        f->state = KNIT__CS_BACKLOG;
        knit__fifo_push(&lane->backlog, f);
    }
    return 0;
}
