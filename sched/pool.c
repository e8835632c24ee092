/*
 * knit sched - pool lifecycle and the host's dispatcher: routing and publishing calls, draining
 * results, back-pressure, timers, the inline lane, settlement and shutdown.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/futex.h"
#include "sched/pool.h"
#include "base/spin.h"
#include "runtimes/process/process.h"
#include "runtimes/runtime.h"

/* --- small helpers ------------------------------------------------------------------------- */

void knit__fifo_push(knit__fifo_t *q, knit_future_t *f)
{
    f->next = NULL;
    if (q->tail)
        q->tail->next = f;
    else
        q->head = f;
    q->tail = f;
    q->len++;
}

knit_future_t *knit__fifo_pop(knit__fifo_t *q)
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

bool knit__fifo_remove(knit__fifo_t *q, knit_future_t *f)
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

/* Stealing: any worker may take the work, so wake the first parked one, scanning round-robin
 * (knitting's wakeOne, minus waking a worker that is already awake). */
static void steal_wake(knit_pool_t *p)
{
    /* seq_cst fence: orders the publication (release store of H) before the reads of the
     * workers' rxStatus; pairs with each worker's fence before its re-check. */
    atomic_thread_fence(memory_order_seq_cst);
    for (uint32_t k = 0; k < p->nworkers; k++) {
        uint32_t i = (p->wake_cursor + k) % p->nworkers;
        if (knit__ctrl_wake_worker(p->lanes[i].link.ep.ctrl)) {
            p->wake_cursor = (i + 1) % p->nworkers;
            return;
        }
    }
}

void knit__lane_wake(knit__lane_t *lane)
{
    lane->link.ops->wake_peer(&lane->link);
}

static int discard_frame(void *ctx, knit__msg_t *m)
{
    (void)ctx;
    knit_value_free(&m->value);
    return 0;
}

/* Release what calls left in a stealing pool's shared lock hold (workers are gone). */
static void discard_submitted(knit__lane_t *lane)
{
    knit__endpoint_t view;
    knit__endpoint_init(&view, &lane->mem, KNIT__SIDE_WORKER);
    knit__steal_cons_t sc;
    knit__ctrl_t *c = knit__shm_ctrl(&lane->mem);
    knit__steal_cons_init(&sc, &c->req.q_host.word, c->req_slab, 0, lane->steal.consumers, 1);
    uint32_t left = knit__steal_pending(&sc);
    while (left) {
        unsigned i = (unsigned)__builtin_ctz(left);
        left &= left - 1;
        knit__msg_t m;
        knit__slot_take(&view.rx_slab[i], &view.rx_arena, &view.codec, &m);
        knit_value_free(&m.value);
    }
}

/* --- registry ------------------------------------------------------------------------------ */

static int reg_alloc(knit_pool_t *p, knit_future_t *f, uint32_t *id)
{
    if (p->nfree == 0) {
        uint32_t cap = p->reg_cap ? p->reg_cap * 2 : 64;
        knit__slot_ref_t *reg = realloc(p->reg, cap * sizeof *reg);
        if (!reg)
            return knit__err(KNIT_E_NOMEM, "call registry of %u entries", cap);
        uint32_t *ids = realloc(p->free_ids, cap * sizeof *ids);
        if (!ids) {
            p->reg = reg;
            return knit__err(KNIT_E_NOMEM, "call registry of %u entries", cap);
        }
        memset(reg + p->reg_cap, 0, (cap - p->reg_cap) * sizeof *reg);
        for (uint32_t i = cap; i > p->reg_cap; i--)
            ids[p->nfree++] = i - 1;
        p->reg = reg;
        p->free_ids = ids;
        p->reg_cap = cap;
    }
    *id = p->free_ids[--p->nfree];
    p->reg[*id] = (knit__slot_ref_t) {.call = f, .lane = f->lane, .abort_id = f->abort_id};
    return 0;
}

static void reg_free(knit_pool_t *p, uint32_t id)
{
    p->reg[id] = (knit__slot_ref_t) {0};
    p->free_ids[p->nfree++] = id;
}

/* --- settlement ---------------------------------------------------------------------------- */

static void release_abort_id(knit_pool_t *p, uint32_t lane, int32_t abort_id)
{
    if (abort_id >= 0)
        knit__abort_release(&p->lanes[lane].aborts, (uint32_t)abort_id);
}

/* A string value (owned) holding the current detailed error message. */
static knit_value_t errmsg_value(void)
{
    knit_value_t s = knit_v_str(knit_errmsg()), v = knit_v_undefined();
    knit__value_keep(&s, &v);
    return v;
}

static knit_value_t string_value(const char *msg)
{
    knit_value_t s = knit_v_str(msg), v = knit_v_undefined();
    knit__value_keep(&s, &v);
    return v;
}

/* Detach a call from wherever it waits before it settles early. */
static void detach(knit_pool_t *p, knit_future_t *f)
{
    knit__lane_t *lane = f->lane != UINT32_MAX ? &p->lanes[f->lane] : NULL;
    switch (f->state) {
    case KNIT__CS_NEW: /* routed, but failed before waiting anywhere */
        if (lane)
            release_abort_id(p, f->lane, f->abort_id);
        break;
    case KNIT__CS_WAIT_INPUT:
        if (f->input) {
            knit_future_t **pp = &f->input->deps;
            while (*pp && *pp != f)
                pp = &(*pp)->next_dep;
            if (*pp)
                *pp = f->next_dep;
            knit__future_unref(f->input);
            f->input = NULL;
        }
        break;
    case KNIT__CS_BACKLOG:
        knit__fifo_remove(&lane->backlog, f);
        release_abort_id(p, f->lane, f->abort_id);
        break;
    case KNIT__CS_INLINE:
        knit__fifo_remove(&p->inline_q, f);
        break;
    case KNIT__CS_INFLIGHT: {
        /* The worker still has it: keep the id as a zombie until the response arrives, and
         * ask an abort-aware task to stop. */
        knit__slot_ref_t *r = &p->reg[f->id];
        r->call = NULL;
        r->zombie = true;
        if (f->abort_id >= 0)
            knit__abort_signal(&lane->aborts, (uint32_t)f->abort_id);
        lane->published--;
        lane->zombies++;
        break;
    }
    default:
        break;
    }
}

void knit__settle(knit_pool_t *p, knit_future_t *f, int status, knit_value_t *value)
{
    if (f->state == KNIT__CS_SETTLED) {
        if (value)
            knit_value_free(value);
        return;
    }
    knit__timer_remove(p, f);
    f->status = status;
    f->value = value ? *value : knit_v_undefined();
    if (value)
        *value = knit_v_undefined();
    if (f->has_arg) {
        knit_value_free(&f->arg);
        f->has_arg = false;
    }
    if (f->lane != UINT32_MAX)
        p->lanes[f->lane].inflight--;
    if (f->task >= 0 && f->lane != UINT32_MAX)
        p->tasks[f->task].inflight--;
    f->state = KNIT__CS_SETTLED;
    p->pending--;
    f->queued = true;
    knit__fifo_push(&p->settled_q, f); /* callbacks and dependents run after this pass */
}

/* Settle a call that has not reached (or has left) the normal result path. */
void knit__settle_early(knit_pool_t *p, knit_future_t *f, int status, knit_value_t *value)
{
    detach(p, f);
    knit__settle(p, f, status, value);
}

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
            knit_value_t m = errmsg_value();
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

static int run_settled(knit_pool_t *p)
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

/* --- publishing ---------------------------------------------------------------------------- */

/* Keep an owned copy of the argument for a call that cannot be encoded right now. */
static int keep_arg(knit_pool_t *p, knit_future_t *f)
{
    if (f->has_arg)
        return 0;
    knit_value_t borrowed = f->arg;
    int rc = knit__value_keep(&borrowed, &f->arg);
    if (rc < 0) {
        knit_value_t m = errmsg_value();
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
    int rc = reg_alloc(p, f, &id);
    if (rc < 0)
        return rc;
    uint32_t w0 = (uint32_t)f->task | (f->abort_id >= 0 ? ((uint32_t)f->abort_id + 1) << 16 : 0);
    uint32_t stamp = t->def.timeout_ms ? knit__stamp_ms(f->submit_ns) : 0;
    if (lane->is_submit) {
        int slot = knit__steal_prod_claim(&lane->steal);
        rc = slot < 0 ? slot
                      : knit__slot_fill(&lane->link.ep.tx_slab[slot], &lane->link.ep.tx_arena,
                          &lane->link.ep.codec, w0, id, stamp, lane->link.ep.tx_seq, &f->arg);
        if (rc == 0) {
            lane->link.ep.tx_seq++;
            knit__steal_prod_publish(&lane->steal, (unsigned)slot);
        }
    } else {
        rc = knit__link_send(&lane->link, w0, id, stamp, &f->arg);
        if (rc == KNIT_E_WORKER_DIED)
            rc = KNIT_E_FULL; /* the worker's end is gone: the call waits in the backlog; the
                                 drain reads end-of-stream and handles the lane (a replacement
                                 worker takes the backlog, or it is rejected) */
    }
    if (rc < 0) {
        reg_free(p, id);
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

static void wake_lane(knit_pool_t *p, knit__lane_t *lane);

/* Publish as much of a lane's backlog as fits, in order. */
static int flush_backlog(knit_pool_t *p, knit__lane_t *lane)
{
    int n = 0;
    for (knit_future_t *f; (f = lane->backlog.head);) {
        int rc = publish(p, lane, f);
        if (rc == KNIT_E_FULL)
            break;
        if (rc < 0) {
            knit_value_t m = errmsg_value();
            knit__settle_early(p, f, rc, &m); /* leaves the backlog, returns its abort id */
        } else {
            knit__fifo_pop(&lane->backlog);
        }
        n++;
    }
    if (n)
        wake_lane(p, lane);
    return n;
}

static void wake_lane(knit_pool_t *p, knit__lane_t *lane)
{
    if (lane->is_submit)
        steal_wake(p);
    else
        knit__lane_wake(lane);
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
        knit_value_t m = string_value(lane->fail_msg);
        knit__settle(p, f, lane->failed, &m);
        return 0;
    }
    if (t->def.abort_aware && !lane->is_inline) {
        int id = knit__abort_alloc(&lane->aborts);
        if (id < 0) {
            knit_value_t m = errmsg_value();
            knit__settle(p, f, id, &m);
            return 0;
        }
        f->abort_id = id;
        if (f->abort_requested) /* knit_future_abort came before the call was dispatched */
            knit__abort_signal(&lane->aborts, (uint32_t)id);
    }
    if (arm_timers(p, f) < 0) {
        knit_value_t m = errmsg_value();
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
            wake_lane(p, lane);
            return 0;
        }
        if (rc != KNIT_E_FULL) {
            knit_value_t m = errmsg_value();
            release_abort_id(p, li, f->abort_id);
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

/* --- draining results ---------------------------------------------------------------------- */

static int status_of(uint32_t w0)
{
    if (w0 == KNIT__FLAG_RESOLVE)
        return 0;
    if (w0 & KNIT__FLAG_CODE) {
        int s = -(int)(w0 & ~KNIT__FLAG_CODE);
        return s < 0 && s >= KNIT_E_LAST ? s : KNIT_E_TASK;
    }
    return KNIT_E_TASK; /* knitting: any other non-zero flag word rejects */
}

typedef struct drain_ctx {
    knit_pool_t *p;
    knit__lane_t *lane;
} drain_ctx_t;

static int on_result(void *ctx, knit__msg_t *m)
{
    drain_ctx_t *d = ctx;
    knit_pool_t *p = d->p;
    if (m->id >= p->reg_cap || (!p->reg[m->id].call && !p->reg[m->id].zombie)) {
        knit_value_free(&m->value); /* a response for no call: ignore it */
        return 0;
    }
    knit__slot_ref_t r = p->reg[m->id];
    release_abort_id(p, r.lane, r.abort_id);
    reg_free(p, m->id);
    if (r.zombie) {
        p->lanes[r.lane].zombies--;
        knit_value_free(&m->value); /* settled early (timeout, cancel): discard late result */
        return 0;
    }
    knit_future_t *f = r.call;
    f->abort_id = -1;
    p->lanes[r.lane].published--;
    int status = m->status < 0 ? m->status : status_of(m->w0);
    if (status == KNIT_E_TIMEOUT) {
        /* the worker found the budget spent before running the task: the task's outcome */
        knit_value_t v, copy = knit_v_undefined();
        knit_value_free(&m->value);
        status = knit__timeout_outcome(&p->tasks[f->task].def, &v);
        knit__value_keep(&v, &copy);
        m->value = copy;
    }
    knit__settle(p, f, status, &m->value);
    return 0;
}

static void link_broke(knit_pool_t *p, knit__lane_t *lane, int rc);
static void check_lanes(knit_pool_t *p);

static int drain_lane(knit_pool_t *p, knit__lane_t *lane)
{
    if (lane->link_down)
        return 0; /* the lane's failure is being handled, or was */
    drain_ctx_t d = {p, lane};
    int n = knit__link_drain(&lane->link, on_result, &d);
    if (n < 0) {
        link_broke(p, lane, n);
        return 1;
    }
    if (lane->backlog.len)
        flush_backlog(p, lane); /* wakes the worker when it publishes */
    else if (n > 0)
        knit__lane_wake(lane); /* a worker parked on a full return lock can go on */
    return n;
}

static void fire_timers(knit_pool_t *p, uint64_t now)
{
    for (knit_future_t *f; (f = knit__timer_due(p, now));) {
        const knit__task_t *t = &p->tasks[f->task];
        uint64_t soft = t->def.timeout_ms ? f->submit_ns + t->def.timeout_ms * 1000000ull : 0;
        if (soft && soft <= now) {
            knit_value_t v, copy = knit_v_undefined();
            int status = knit__timeout_outcome(&t->def, &v);
            knit__value_keep(&v, &copy);
            knit__settle_early(p, f, status, &copy);
        } else {
            knit_value_t none = knit_v_undefined();
            knit__settle_early(p, f, KNIT_E_HARD_TIMEOUT, &none);
            p->shutting_down = true; /* force-shutdown: close once this pass is over */
            p->force_close = true;
        }
    }
}

static int run_inline(knit_pool_t *p)
{
    uint32_t batch = p->opts.inliner.batch_size ? p->opts.inliner.batch_size : 1;
    int n = 0;
    for (uint32_t i = 0; i < batch; i++) {
        knit_future_t *f = knit__fifo_pop(&p->inline_q);
        if (!f)
            break;
        f->state = KNIT__CS_RUNNING;
        knit_value_t result = knit_v_undefined(), kept = knit_v_undefined();
        int status
            = knit__run_task_inline(&p->tasks[f->task], &f->arg, &result, f->abort_requested);
        if (knit__value_keep(&result, &kept) < 0) {
            status = KNIT_E_NOMEM;
            kept = errmsg_value();
        }
        knit_value_free(&result);
        knit__settle(p, f, status, &kept);
        n++;
    }
    return n;
}

/* Responses are due on this worker lane (stealing: on every worker lane while the shared
 * lock has calls out). */
static bool expects_results(const knit_pool_t *p, const knit__lane_t *lane)
{
    const knit__lane_t *owner = p->stealing ? &p->lanes[p->submit] : lane;
    return owner->published || owner->zombies;
}

/* True when some worker lane has results waiting. */
static bool results_waiting(knit_pool_t *p)
{
    for (uint32_t i = 0; i < p->nworkers; i++)
        if (expects_results(p, &p->lanes[i]) && knit__link_ready(&p->lanes[i].link))
            return true;
    return false;
}

static int lane_memory(knit_pool_t *p, knit__lane_t *lane);
static void lane_memory_close(knit_pool_t *p, knit__lane_t *lane);

/* Settle every call published on a lane whose worker is gone; the backlog too unless a new
 * worker will take it. */
static void fail_lane(knit_pool_t *p, knit__lane_t *lane, int status, bool keep_backlog)
{
    for (uint32_t id = 0; id < p->reg_cap; id++) {
        knit__slot_ref_t r = p->reg[id];
        if (r.lane != lane->index || (!r.call && !r.zombie))
            continue;
        release_abort_id(p, r.lane, r.abort_id);
        reg_free(p, id);
        if (r.zombie) {
            lane->zombies--;
            continue;
        }
        r.call->abort_id = -1;
        lane->published--;
        knit_value_t m = string_value(lane->fail_msg);
        knit__settle(p, r.call, status, &m);
    }
    while (!keep_backlog && lane->backlog.head) {
        knit_value_t m = string_value(lane->fail_msg);
        knit__settle_early(p, lane->backlog.head, status, &m);
    }
}

static void worker_failed(knit_pool_t *p, knit__lane_t *lane, int status)
{
    lane->failed = status;
    if (p->stealing) {
        knit__lane_t *sub = &p->lanes[p->submit];
        knit__steal_prod_retire(&sub->steal, lane->index);
        bool any = false;
        for (uint32_t i = 0; i < p->nworkers; i++)
            any |= !p->lanes[i].failed;
        if (!any) { /* nobody is left to take the shared lock's calls */
            snprintf(sub->fail_msg, sizeof sub->fail_msg, "%s", lane->fail_msg);
            sub->failed = status;
            fail_lane(p, sub, status, false);
        }
        return;
    }
    fail_lane(p, lane, status, false);
}

/* A process worker exited: fail its calls, then replace it (unless it never started). */
static void worker_died(knit_pool_t *p, knit__lane_t *lane)
{
    knit__monitor_sync(p); /* the monitor is done with this lane */
    drain_lane(p, lane);   /* results it published before dying are real: deliver them */
    bool started = lane->ready;
    int status = started ? KNIT_E_WORKER_DIED : KNIT_E_WORKER_STARTUP;
    knit__layout_t *l = &lane->mem.layout;
    if (!started
        && atomic_load_explicit(knit__lane_boot(lane->mem.map, l), memory_order_acquire)
            == KNIT__BOOT_FAILED)
        snprintf(lane->fail_msg, sizeof lane->fail_msg, "worker %u start-up failed: %.*s",
            lane->index, (int)KNIT__BOOT_MSG_BYTES, knit__lane_boot_msg(lane->mem.map, l));
    else if (lane->exit_signal)
        snprintf(lane->fail_msg, sizeof lane->fail_msg, "worker %u (pid %d) was killed by %s",
            lane->index, (int)lane->pid, strsignal(lane->exit_signal));
    else
        snprintf(lane->fail_msg, sizeof lane->fail_msg,
            "worker %u (pid %d) exited with status %d%s", lane->index, (int)lane->pid,
            lane->exit_code, started ? "" : " during start-up (see its stderr)");
    knit__process_forget(p, lane);
    bool respawn = started && !p->opts.worker.process.no_respawn && !p->closed;
    fail_lane(p, lane, status, respawn);
    if (!respawn) {
        lane->failed = status;
        return;
    }
    lane_memory_close(p, lane);
    int rc = lane_memory(p, lane);
    if (rc == 0)
        rc = knit__process_start(p, lane);
    if (rc < 0) {
        snprintf(lane->fail_msg, sizeof lane->fail_msg, "replacing worker %u: %s", lane->index,
            knit_errmsg());
        lane->failed = KNIT_E_WORKER_STARTUP;
        fail_lane(p, lane, KNIT_E_WORKER_STARTUP, false);
        return;
    }
    p->respawns++;
    for (knit_future_t *f = lane->backlog.head; f; f = f->next)
        if (f->abort_requested && f->abort_id >= 0) /* set in the old memory: again */
            knit__abort_signal(&lane->aborts, (uint32_t)f->abort_id);
    if (lane->backlog.len)
        flush_backlog(p, lane);
}

/* A message transport's stream broke: the worker closed its end, or sent a malformed frame
 * (KNIT_E_CORRUPT: nothing after it can be trusted). A process worker that closed its end has
 * exited or is exiting: the monitor reports it and worker_died() handles it (respawn). */
static void link_broke(knit_pool_t *p, knit__lane_t *lane, int rc)
{
    char why[200];
    snprintf(why, sizeof why, "%s", knit_errmsg());
    lane->link_down = rc;
    if (lane->failed)
        return;
    bool process = p->opts.runtime == KNIT_RUNTIME_PROCESS;
    if (process && rc == KNIT_E_WORKER_DIED)
        return;
    if (!process) {
        check_lanes(p); /* a worker whose start-up failed closes its end after reporting */
        if (lane->failed)
            return;
    }
    snprintf(lane->fail_msg, sizeof lane->fail_msg, "worker %u: its %s stream broke: %s",
        lane->index, knit_transport_name(p->opts.transport), why);
    if (process)
        knit__process_kill(lane); /* it may still run: the lane is done with it */
    worker_failed(p, lane, rc == KNIT_E_WORKER_DIED ? rc : KNIT_E_CORRUPT);
}

/* Start-up reports and deaths of the workers. */
static void check_lanes(knit_pool_t *p)
{
    for (uint32_t i = 0; i < p->nworkers; i++) {
        knit__lane_t *lane = &p->lanes[i];
        if (lane->failed || !lane->mem.map)
            continue;
        if (!lane->ready) {
            /* acquire: pairs with the worker's release store; its message is visible. */
            uint32_t b = atomic_load_explicit(
                knit__lane_boot(lane->mem.map, &lane->mem.layout), memory_order_acquire);
            if (b == KNIT__BOOT_READY) {
                lane->ready = true;
            } else if (b == KNIT__BOOT_FAILED && p->opts.runtime == KNIT_RUNTIME_THREAD) {
                snprintf(lane->fail_msg, sizeof lane->fail_msg, "worker %u start-up failed: %.*s",
                    lane->index, (int)KNIT__BOOT_MSG_BYTES,
                    knit__lane_boot_msg(lane->mem.map, &lane->mem.layout));
                worker_failed(p, lane, KNIT_E_WORKER_STARTUP);
                continue;
            }
        }
        /* acquire: pairs with the monitor's release store; the exit status is visible. */
        if (p->opts.runtime == KNIT_RUNTIME_PROCESS
            && atomic_load_explicit(&lane->died, memory_order_acquire))
            worker_died(p, lane);
    }
    if (p->opts.runtime == KNIT_RUNTIME_THREAD) {
        bool settled = true; /* threads cannot die alone: once all reported, stop checking */
        for (uint32_t i = 0; i < p->nworkers; i++)
            settled &= p->lanes[i].ready || p->lanes[i].failed;
        p->lanes_unsettled = !settled;
    }
}

/* One dispatcher pass. Returns the number of frames and calls handled. */
static int pass(knit_pool_t *p)
{
    int work = 0;
    if (p->lanes_unsettled)
        check_lanes(p);
    for (uint32_t i = 0; i < p->nworkers; i++) {
        knit__lane_t *lane = &p->lanes[i];
        if (p->dispatcher == KNIT_DISPATCHER_SERIAL_CHANNEL && !lane->inflight
            && !expects_results(p, lane))
            continue; /* serial channel: sweep only the active lanes */
        work += drain_lane(p, lane);
    }
    if (p->stealing && p->lanes[p->submit].backlog.len)
        work += flush_backlog(p, &p->lanes[p->submit]);
    if (p->heap_len)
        fire_timers(p, knit__now_ns());
    if (p->inline_q.len)
        work += run_inline(p);
    work += run_settled(p);
    return work;
}

static void close_pool(knit_pool_t *p, bool join);

/* A worker reported its start-up outcome or died since the last check. */
static bool lanes_changed(knit_pool_t *p)
{
    if (!p->lanes_unsettled)
        return false;
    for (uint32_t i = 0; i < p->nworkers; i++) {
        knit__lane_t *lane = &p->lanes[i];
        if (lane->failed || !lane->mem.map)
            continue;
        if (!lane->ready
            && atomic_load_explicit(
                   knit__lane_boot(lane->mem.map, &lane->mem.layout), memory_order_acquire)
                != KNIT__BOOT_STARTING)
            return true;
        if (atomic_load_explicit(&lane->died, memory_order_acquire))
            return true;
    }
    return false;
}

/* Sleep until a worker rings a doorbell or `wake_at` (CLOCK_MONOTONIC ns; UINT64_MAX = none). */
static void park_host(knit_pool_t *p, uint64_t wake_at)
{
    _Atomic uint32_t *words[128];
    uint32_t tokens[128];
    unsigned n = 0;
    for (uint32_t i = 0; i < p->nworkers && n < 128; i++) {
        knit__lane_t *lane = &p->lanes[i];
        if (!expects_results(p, lane))
            continue;
        /* acquire: pairs with the release increments of a failing worker or of the monitor;
         * a token that includes their bump also shows what they wrote before it (the boot
         * state, the died flag), which the re-check below then sees. */
        tokens[n] = atomic_load_explicit(lane->bell.seq, memory_order_acquire);
        words[n++] = lane->bell.seq;
        atomic_store_explicit(lane->bell.parked, 1, memory_order_relaxed);
    }
    /* seq_cst fence: orders `parked` before the re-check of the return locks; pairs with the
     * fence in knit__doorbell_ring. */
    atomic_thread_fence(memory_order_seq_cst);
    if (n && !results_waiting(p) && !lanes_changed(p)) {
        /* more than 128 lanes: the others are polled at least every millisecond */
        uint64_t limit = p->nworkers > 128 ? knit__now_ns() + 1000000ull : UINT64_MAX;
        uint64_t until = wake_at < limit ? wake_at : limit;
        knit__futex_waitv(words, tokens, n, until == UINT64_MAX ? 0 : until);
    } else if (!n && wake_at != UINT64_MAX) {
        uint64_t now = knit__now_ns();
        if (wake_at > now) {
            /* nothing can answer: only a timer (or an inline call) is due */
            struct timespec ts = {
                (time_t)((wake_at - now) / 1000000000ull), (long)((wake_at - now) % 1000000000ull)};
            nanosleep(&ts, NULL);
        }
    }
    for (uint32_t i = 0; i < p->nworkers; i++)
        atomic_store_explicit(p->lanes[i].bell.parked, 0, memory_order_relaxed);
}

/* Message transports: sleep in poll() until a worker's frame (or end of stream) arrives, a
 * partly written frame can go on, the monitor reports a death, or `wake_at`. */
static void park_host_fds(knit_pool_t *p, uint64_t wake_at)
{
    struct pollfd *fds = p->pfds;
    unsigned n = 0;
    for (uint32_t i = 0; i < p->nworkers; i++) {
        knit__lane_t *lane = &p->lanes[i];
        if (!lane->failed && !lane->link_down && knit__link_open_p(&lane->link))
            n += lane->link.ops->wait_fds(&lane->link, &fds[n]);
    }
    unsigned efd = n;
    if (p->wake_fd >= 0)
        fds[n++] = (struct pollfd) {.fd = p->wake_fd, .events = POLLIN};
    if (n == 0 && wake_at == UINT64_MAX)
        return;
    struct timespec ts, *tp = NULL;
    if (wake_at != UINT64_MAX) {
        uint64_t now = knit__now_ns(), left = wake_at > now ? wake_at - now : 0;
        ts = (struct timespec) {(time_t)(left / 1000000000ull), (long)(left % 1000000000ull)};
        tp = &ts;
    }
    if (ppoll(fds, n, tp, NULL) > 0 && p->wake_fd >= 0 && fds[efd].revents) {
        uint64_t v;
        if (read(p->wake_fd, &v, sizeof v) < 0) { /* EAGAIN: somebody else read it */
        }
    }
}

int knit_pool_progress(knit_pool_t *p, int64_t timeout_ns)
{
    if (!p)
        return knit__err(KNIT_E_INVAL, "knit_pool_progress: pool is NULL");
    uint64_t start = 0; /* read after the first pass that found nothing: a pass that does
                           work returns without touching the clock */
    int settled = 0;
    for (;;) {
        int work = pass(p);
        settled += work;
        if (p->force_close) {
            close_pool(p, false);
            settled += run_settled(p);
            return settled;
        }
        if (work || timeout_ns == 0 || (p->pending == 0 && p->settled_q.len == 0))
            return settled;
        uint64_t now = knit__now_ns();
        if (!start)
            start = now;
        int64_t left = timeout_ns < 0 ? INT64_MAX : (int64_t)(start + (uint64_t)timeout_ns - now);
        if (left <= 0)
            return settled;
        /* Spin while the workers are likely to answer soon. */
        if (p->opts.wait.spin_only || (p->spin_ns > 0 && knit__spin_begin(&p->spin, now))) {
            uint64_t end = now + (uint64_t)(p->spin_ns > 0 ? p->spin_ns : 0);
            bool got = false;
            for (unsigned i = 1;; i++) {
                if (results_waiting(p)) {
                    got = true;
                    knit__spin_calm(&p->spin);
                    break;
                }
                knit__cpu_relax();
                if ((i & 63u) == 0) {
                    uint64_t t = knit__now_ns();
                    if ((!p->opts.wait.spin_only && (t >= end || knit__spin_preempted(&p->spin, t)))
                        || (timeout_ns >= 0 && t - start >= (uint64_t)timeout_ns)
                        || (knit__timer_next(p) && t >= knit__timer_next(p)))
                        break;
                }
            }
            if (got || p->opts.wait.spin_only)
                continue;
        }
        /* Park until a worker rings the doorbell, the next timer, or the caller's deadline. */
        now = knit__now_ns();
        uint64_t wake_at = timeout_ns < 0 ? UINT64_MAX : start + (uint64_t)timeout_ns;
        uint64_t tn = knit__timer_next(p);
        if (tn && tn < wake_at)
            wake_at = tn;
        if (p->inline_q.len || (tn && tn <= now))
            continue;
        if (p->link_ops->uses_fds)
            park_host_fds(p, wake_at);
        else
            park_host(p, wake_at);
    }
}

/* --- creation ------------------------------------------------------------------------------ */

static int cmp_task(const void *a, const void *b)
{
    return strcmp(((const knit__task_t *)a)->name, ((const knit__task_t *)b)->name);
}

static int copy_tasks(knit_pool_t *p, const knit_task_def_t *defs, size_t n)
{
    if (n == 0 || n > KNIT__MAX_TASKS)
        return knit__err(KNIT_E_RANGE, "a pool needs 1 to %u tasks; got %zu", KNIT__MAX_TASKS, n);
    p->tasks = calloc(n, sizeof *p->tasks);
    if (!p->tasks)
        return knit__err(KNIT_E_NOMEM, "%zu task definitions", n);
    p->ntasks = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        if (!defs[i].name || !defs[i].name[0] || (!defs[i].fn && !defs[i].import_path))
            return knit__err(KNIT_E_INVAL,
                "task %zu has no name, or neither a function nor an "
                "import path",
                i);
        if (defs[i].timeout_value.kind == KNIT_KIND_MOVED)
            return knit__err(
                KNIT_E_INVAL, "task '%s': a timeout value cannot be a moved buffer", defs[i].name);
        p->tasks[i].def = defs[i];
        p->tasks[i].name = strdup(defs[i].name);
        if (!p->tasks[i].name)
            return knit__err(KNIT_E_NOMEM, "task names");
        p->tasks[i].def.name = p->tasks[i].name;
        p->any_abort_aware |= defs[i].abort_aware;
    }
    qsort(p->tasks, n, sizeof *p->tasks, cmp_task);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(p->tasks[i - 1].name, p->tasks[i].name))
            return knit__err(KNIT_E_INVAL, "task name '%s' is used twice", p->tasks[i].name);
    return 0;
}

/* Topology (knitting-internals 4.1): dispatcher and stealing from options and environment. */
static int choose_topology(knit_pool_t *p)
{
    const knit_pool_opts_t *o = &p->opts;
    knit_dispatcher_t env_disp = KNIT_DISPATCHER_DEFAULT;
    const char *e = getenv("KNIT_DISPATCHER");
    if (e && *e && knit_dispatcher_parse(e, &env_disp) < 0)
        return knit__err(
            KNIT_E_INVAL, "KNIT_DISPATCHER='%s' is not per-thread or serial-channel", e);
    p->dispatcher = o->dispatcher != KNIT_DISPATCHER_DEFAULT ? o->dispatcher : env_disp;
    if (p->dispatcher == KNIT_DISPATCHER_DEFAULT)
        p->dispatcher
            = o->threads <= 1 ? KNIT_DISPATCHER_PER_THREAD : KNIT_DISPATCHER_SERIAL_CHANNEL;
    /* Stealing: requested by option or KNIT_STEAL, else the default for 2-31 thread workers
     * when no balancer, dispatcher (option or environment) or inliner was chosen. */
    knit_steal_t steal = o->steal;
    const char *se = getenv("KNIT_STEAL");
    if (steal == KNIT_STEAL_DEFAULT && se && *se) {
        if (!strcmp(se, "1") || !strcmp(se, "true"))
            steal = KNIT_STEAL_ON;
        else if (!strcmp(se, "0") || !strcmp(se, "false"))
            steal = KNIT_STEAL_OFF;
        else
            return knit__err(KNIT_E_INVAL, "KNIT_STEAL='%s' is not 1, true, 0 or false", se);
    }
    if (steal == KNIT_STEAL_DEFAULT)
        steal = o->balancer == KNIT_BALANCER_DEFAULT && o->dispatcher == KNIT_DISPATCHER_DEFAULT
                && env_disp == KNIT_DISPATCHER_DEFAULT && o->threads <= 31
            ? KNIT_STEAL_ON
            : KNIT_STEAL_OFF;
    p->stealing = steal == KNIT_STEAL_ON && o->threads > 1 && !o->inliner.enabled
        && o->runtime == KNIT_RUNTIME_THREAD && o->transport == KNIT_TRANSPORT_KNIT;
    if (steal == KNIT_STEAL_ON && o->threads > KNIT__STEAL_MAX_CONSUMERS
        && o->steal == KNIT_STEAL_ON)
        return knit__err(KNIT_E_RANGE, "%u stealing workers need more than 32 lanes", o->threads);
    if (p->stealing)
        return knit__steal_region_lanes(o->threads, o->steal_region_lanes, &p->steal_lanes);
    return 0;
}

/* The host's side of a lane's data path; a message transport's worker descriptors wait in
 * lane->worker_fds for the runtime to hand over. */
static int open_link(knit_pool_t *p, knit__lane_t *lane)
{
    int host[2] = {-1, -1};
    knit_transport_t t = lane->is_submit ? KNIT_TRANSPORT_KNIT : p->opts.transport;
    lane->link_down = 0;
    if (t != KNIT_TRANSPORT_KNIT) {
        int rc = knit__link_fds(t, host, lane->worker_fds);
        if (rc < 0)
            return rc;
    }
    return knit__link_open(&lane->link, t, KNIT__SIDE_HOST, &lane->mem, host);
}

/* Create a lane's memory (a memfd - for thread workers possibly a zeroed one a closed pool gave
 * back, see lane_cache.c - or a named object for named process workers) and the host's views
 * of it. Also used to replace the memory of a worker that died. */
static int lane_memory(knit_pool_t *p, knit__lane_t *lane)
{
    int rc;
    bool named = p->opts.runtime == KNIT_RUNTIME_PROCESS
        && p->opts.worker.process.shared_memory == KNIT_SHM_NAMED && !lane->is_submit;
    lane->shm_name[0] = 0;
    rc = named ? knit__process_named_memory(p, lane)
               : knit__shm_lane_acquire(&lane->mem, &p->lane_cfg);
    if (rc < 0)
        return rc;
    rc = open_link(p, lane);
    if (rc < 0)
        return rc;
    /* relaxed: before the worker exists. A worker that is not in its loop (starting, or
     * failed to start) must not look parked, or stealing wake-ups would go to it. */
    atomic_store_explicit(&knit__shm_ctrl(&lane->mem)->sig.rx_status.word, 1, memory_order_relaxed);
    lane->bell.parked = knit__bell_parked(lane->mem.map, &lane->mem.layout);
    lane->bell.seq = knit__bell_seq(lane->mem.map, &lane->mem.layout);
    lane->ready = false;
    if (lane->is_submit) {
        knit__ctrl_t *c = knit__shm_ctrl(&lane->mem);
        knit__steal_prod_init(&lane->steal, &c->req.q_host.word, c->req_slab, p->nworkers);
    }
    if (lane->mem.layout.abort_bytes)
        lane->aborts.shared = (_Atomic uint32_t *)(lane->mem.map + lane->mem.layout.abort_off);
    return 0;
}

static void lane_memory_close(knit_pool_t *p, knit__lane_t *lane)
{
    lane->aborts.shared = NULL; /* the bitmap lives in this memory */
    knit__link_close(&lane->link);
    knit__link_fds_close(lane->worker_fds);
    if (!lane->mem.map)
        return;
    knit__shm_lane_release(&lane->mem);
    if (lane->shm_name[0] && !p->opts.worker.process.keep_names)
        shm_unlink(lane->shm_name);
    lane->shm_name[0] = 0;
}

static int make_lanes(knit_pool_t *p)
{
    bool inl = p->opts.inliner.enabled;
    p->nlanes = p->nworkers + (inl ? 1 : 0);
    p->submit = p->stealing ? p->nlanes : UINT32_MAX;
    p->lanes = calloc(p->nlanes + (p->stealing ? 1 : 0), sizeof *p->lanes);
    p->order = calloc(p->nlanes, sizeof *p->order);
    if (!p->lanes || !p->order)
        return knit__err(KNIT_E_NOMEM, "%u lanes", p->nlanes);
    p->inline_lane = inl ? p->nworkers : UINT32_MAX;
    uint32_t k = 0;
    if (inl && p->opts.inliner.position == KNIT_INLINE_FIRST)
        p->order[k++] = p->inline_lane;
    for (uint32_t i = 0; i < p->nworkers; i++)
        p->order[k++] = i;
    if (inl && p->opts.inliner.position != KNIT_INLINE_FIRST)
        p->order[k++] = p->inline_lane;
    p->norder = k;
    for (uint32_t i = 0; i < p->nlanes + (p->stealing ? 1 : 0); i++) {
        knit__lane_t *lane = &p->lanes[i];
        lane->index = i;
        lane->mem.fd = -1;
        lane->is_inline = i == p->inline_lane;
        lane->is_submit = i == p->submit;
        lane->pidfd = -1;
        lane->wake_fd = p->wake_fd;
        lane->worker_fds[0] = lane->worker_fds[1] = -1;
        if (lane->is_inline)
            continue;
        int rc = lane_memory(p, lane);
        if (rc == 0 && p->lane_cfg.abort_capacity && (!p->stealing || lane->is_submit))
            rc = knit__abort_init(&lane->aborts, p->lane_cfg.abort_capacity, lane->aborts.shared);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int knit_pool_create(
    const knit_pool_opts_t *opts, const knit_task_def_t *tasks, size_t ntasks, knit_pool_t **out)
{
    if (!out || !tasks)
        return knit__err(KNIT_E_INVAL, "knit_pool_create: tasks and out must not be NULL");
    *out = NULL;
    knit_pool_t *p = calloc(1, sizeof *p);
    if (!p)
        return knit__err(KNIT_E_NOMEM, "pool");
    if (opts)
        p->opts = *opts;
    knit_pool_opts_t *o = &p->opts;
    int rc = 0;
    if (knit_is_worker_process())
        rc = knit__err(KNIT_E_INVAL,
            "knit_pool_create called inside a process worker: start main() with "
            "knit_worker_process_main() so worker processes do not run the host "
            "program");
    else if (o->runtime != KNIT_RUNTIME_THREAD && o->runtime != KNIT_RUNTIME_PROCESS)
        rc = knit__err(KNIT_E_INVAL, "unknown runtime %d", (int)o->runtime);
    else if (o->runtime == KNIT_RUNTIME_PROCESS && o->steal == KNIT_STEAL_ON)
        rc = knit__err(KNIT_E_UNSUPPORTED,
            "work stealing does not support process workers; use thread workers or "
            "disable stealing");
    else if (o->runtime == KNIT_RUNTIME_PROCESS && o->worker.bootstrap
        && !o->worker.bootstrap_import_path)
        rc = knit__err(KNIT_E_INVAL,
            "process workers cannot call a host function pointer as bootstrap: pass "
            "it to knit_worker_process_main() or set bootstrap_import_path");
    else if ((unsigned)o->transport > KNIT_TRANSPORT_TCP)
        rc = knit__err(KNIT_E_INVAL, "unknown transport %d", (int)o->transport);
    else if (o->transport != KNIT_TRANSPORT_KNIT && o->steal == KNIT_STEAL_ON)
        rc = knit__err(KNIT_E_UNSUPPORTED,
            "work stealing needs the knit transport (the %s transport has no shared request "
            "lock); disable stealing",
            knit_transport_name(o->transport));
    else if (o->transport != KNIT_TRANSPORT_KNIT && o->wait.spin_only)
        rc = knit__err(KNIT_E_UNSUPPORTED,
            "spin_only needs the knit transport: the %s transport blocks in poll()",
            knit_transport_name(o->transport));
    else if (o->threads > 1024)
        rc = knit__err(KNIT_E_RANGE, "threads must be at most 1024; got %u", o->threads);
    if (rc == 0)
        rc = copy_tasks(p, tasks, ntasks);
    if (rc == 0) {
        p->nworkers = o->threads ? o->threads : 1;
        if (o->threads == 0)
            o->threads = 1;
        rc = choose_topology(p);
    }
    if (rc == 0 && o->abort_capacity > 65535)
        rc = knit__err(KNIT_E_RANGE,
            "abort_capacity must be at most 65535 (ids travel in 16 bits); got %u",
            o->abort_capacity);
    if (rc == 0) {
        p->lane_cfg.payload_initial_bytes = o->payload.initial_bytes;
        p->lane_cfg.payload_max_bytes = o->payload.max_byte_length;
        p->lane_cfg.max_payload_bytes = o->payload.max_payload_bytes;
        p->lane_cfg.process_boundary = o->runtime == KNIT_RUNTIME_PROCESS;
        p->lane_cfg.abort_capacity = p->any_abort_aware
            ? (o->abort_capacity ? o->abort_capacity : KNIT__DEFAULT_ABORTS)
            : 0;
        rc = knit__lane_cfg_resolve(&p->lane_cfg);
    }
    if (rc == 0) {
        uint32_t lanes = p->nworkers + (o->inliner.enabled ? 1 : 0);
        p->spin_ns = o->wait.spin_ns < 0 ? 0
            : o->wait.spin_ns > 0        ? o->wait.spin_ns
                                         : (int64_t)KNIT__DEFAULT_SPIN_NS * lanes;
        /* Spinning pays only with a free core. With more workers than CPUs beside the host,
         * an idle worker's spin takes the CPU that the worker a call was routed to needs (on
         * 2 cores with 2 round-robin workers every call waited for a spin budget to run
         * out): by default such workers park at once and only the host spins. A stealing
         * pool is different - whichever worker spins takes the call - so its workers keep
         * spinning. An explicit budget is obeyed. */
        p->worker_spin_ns = p->spin_ns;
        if (o->wait.spin_ns == 0 && !p->stealing && p->nworkers + 1 > knit__cpus())
            p->worker_spin_ns = 0;
        if (getrandom(&p->rng, sizeof p->rng, 0) != (ssize_t)sizeof p->rng)
            p->rng = (uint64_t)knit__now_ns();
        p->rng |= 1;
    }
    p->wake_fd = -1;
    p->link_ops
        = o->transport == KNIT_TRANSPORT_KNIT ? &knit__link_knit_ops : &knit__link_stream_ops;
    if (rc == 0 && p->link_ops->uses_fds) {
        p->spin_ns = p->worker_spin_ns = 0; /* message transports block in poll(), both sides */
        p->pfds = calloc(2u * p->nworkers + 1u, sizeof *p->pfds);
        if (!p->pfds)
            rc = knit__err(KNIT_E_NOMEM, "poll set for %u workers", p->nworkers);
        if (rc == 0 && o->runtime == KNIT_RUNTIME_PROCESS) {
            p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
            if (p->wake_fd < 0)
                rc = knit__err(KNIT_E_SYS, "eventfd: %s", strerror(errno));
        }
    }
    if (rc == 0 && o->runtime == KNIT_RUNTIME_PROCESS && !o->worker.process.program) {
        p->self_exe = realpath("/proc/self/exe", NULL);
        if (!p->self_exe)
            rc = knit__err(KNIT_E_SYS, "cannot resolve this program's path: %s", strerror(errno));
    }
    if (rc == 0)
        rc = make_lanes(p);
    p->lanes_unsettled = true;
    for (uint32_t i = 0; rc == 0 && i < p->nworkers; i++)
        rc = knit__runner_start(p, &p->lanes[i]);
    if (rc < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", knit_errmsg());
        p->closed = true;
        knit_pool_destroy(p);
        knit__err(rc, "%s", strchr(msg, ':') ? strchr(msg, ':') + 2 : msg);
        return rc;
    }
    *out = p;
    return 0;
}

/* --- shutdown ------------------------------------------------------------------------------ */

static void reject_all(knit_pool_t *p)
{
    knit_value_t none;
    for (uint32_t id = 0; id < p->reg_cap; id++) {
        if (p->reg[id].call) {
            none = knit_v_undefined();
            knit__settle_early(p, p->reg[id].call, KNIT_E_SHUTDOWN, &none);
        }
    }
    for (uint32_t i = 0; p->lanes && i < p->nlanes + (p->stealing ? 1 : 0); i++)
        while (p->lanes[i].backlog.head) {
            none = knit_v_undefined();
            knit__settle_early(p, p->lanes[i].backlog.head, KNIT_E_SHUTDOWN, &none);
        }
    while (p->inline_q.head) {
        none = knit_v_undefined();
        knit__settle_early(p, p->inline_q.head, KNIT_E_SHUTDOWN, &none);
    }
}

static void join_workers(knit_pool_t *p)
{
    for (uint32_t i = 0; p->lanes && i < p->nworkers; i++)
        knit__runner_stop(&p->lanes[i]);
    for (uint32_t i = 0; p->lanes && i < p->nworkers; i++)
        knit__runner_join(p, &p->lanes[i]);
}

static void close_pool(knit_pool_t *p, bool join)
{
    bool forced = p->force_close;
    p->force_close = false;
    if (!p->closed) {
        p->closed = true;
        reject_all(p);
        for (uint32_t i = 0; p->lanes && i < p->nworkers; i++) {
            knit__runner_stop(&p->lanes[i]);
            /* a hard timeout: a process worker stuck in a task is killed now (a thread
             * cannot be; it is joined when its task returns) */
            if (forced && p->opts.runtime == KNIT_RUNTIME_PROCESS)
                knit__process_kill(&p->lanes[i]);
        }
    }
    if (join)
        join_workers(p);
}

int knit_pool_shutdown(knit_pool_t *p, knit_shutdown_mode_t mode, uint32_t delay_ms)
{
    if (!p)
        return knit__err(KNIT_E_INVAL, "knit_pool_shutdown: pool is NULL");
    if (p->closed || p->shutting_down) {
        if (p->closed && !p->joined) {
            join_workers(p);
            p->joined = true;
        }
        return 0;
    }
    p->shutting_down = true;
    uint64_t end = knit__now_ns() + (uint64_t)delay_ms * 1000000ull;
    for (uint64_t now; !p->closed && (now = knit__now_ns()) < end;) {
        if (p->pending == 0 && p->settled_q.len == 0) {
            /* nothing to serve: sleep out the delay (only callbacks could add calls, and
             * they run on this thread) */
            struct timespec ts
                = {(time_t)((end - now) / 1000000000ull), (long)((end - now) % 1000000000ull)};
            nanosleep(&ts, NULL);
            continue;
        }
        knit_pool_progress(p, (int64_t)(end - now));
    }
    if (mode == KNIT_SHUTDOWN_DRAIN || p->opts.worker.resolve_after_finishing_all)
        while (!p->closed && p->pending)
            knit_pool_progress(p, -1);
    close_pool(p, true);
    p->joined = true;
    run_settled(p);
    return 0;
}

void knit_pool_destroy(knit_pool_t *p)
{
    if (!p)
        return;
    close_pool(p, true);
    run_settled(p);
    for (uint32_t i = 0; p->lanes && i < p->nlanes + (p->stealing ? 1 : 0); i++) {
        knit__lane_t *lane = &p->lanes[i];
        if (lane->is_submit && lane->mem.map) {
            discard_submitted(lane);
        } else if (!lane->is_inline && lane->mem.map) {
            /* results nobody reads, and requests a worker that failed or died never took:
             * release what they hold (shared buffer references, moved buffers) */
            if (knit__link_open_p(&lane->link))
                knit__link_drain(&lane->link, discard_frame, NULL);
            if (!p->link_ops->uses_fds) {
                knit__endpoint_t view;
                knit__endpoint_init(&view, &lane->mem, KNIT__SIDE_WORKER);
                knit__ep_drain(&view, discard_frame, NULL, 0, 0);
            }
        }
        lane_memory_close(p, lane);
        knit__abort_fini(&lane->aborts);
    }
    knit__monitor_stop(p);
    if (p->wake_fd >= 0)
        close(p->wake_fd);
    free(p->pfds);
    free(p->self_exe);
    for (uint32_t i = 0; p->tasks && i < p->ntasks; i++)
        free(p->tasks[i].name);
    free(p->tasks);
    free(p->lanes);
    free(p->order);
    free(p->reg);
    free(p->free_ids);
    free(p->heap);
    free(p);
}

/* --- introspection ------------------------------------------------------------------------- */

int knit_task_index(const knit_pool_t *p, const char *name)
{
    if (!p || !name)
        return knit__err(KNIT_E_INVAL, "knit_task_index: pool and name must not be NULL");
    uint32_t lo = 0, hi = p->ntasks;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        int c = strcmp(p->tasks[mid].name, name);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return knit__err(KNIT_E_NO_TASK, "no task named '%s'", name);
}

uint32_t knit_pool_lanes(const knit_pool_t *p)
{
    return p->nlanes;
}

bool knit_pool_stealing(const knit_pool_t *p)
{
    return p->stealing;
}

knit_dispatcher_t knit_pool_dispatcher(const knit_pool_t *p)
{
    return p->dispatcher;
}

size_t knit_pool_pending(const knit_pool_t *p)
{
    return p->pending;
}

int32_t knit_pool_worker_pid(const knit_pool_t *p, uint32_t worker)
{
    return worker < p->nworkers ? p->lanes[worker].pid : 0;
}

uint32_t knit_pool_respawns(const knit_pool_t *p)
{
    return p->respawns;
}

const char *knit_dispatcher_name(knit_dispatcher_t d)
{
    switch (d) {
    case KNIT_DISPATCHER_PER_THREAD:
        return "per-thread";
    case KNIT_DISPATCHER_SERIAL_CHANNEL:
        return "serial-channel";
    default:
        return "default";
    }
}

int knit_dispatcher_parse(const char *name, knit_dispatcher_t *out)
{
    if (name && !strcmp(name, "per-thread"))
        *out = KNIT_DISPATCHER_PER_THREAD;
    else if (name && !strcmp(name, "serial-channel"))
        *out = KNIT_DISPATCHER_SERIAL_CHANNEL;
    else
        return knit__err(KNIT_E_INVAL, "unknown dispatcher '%s' (per-thread, serial-channel)",
            name ? name : "(null)");
    return 0;
}
