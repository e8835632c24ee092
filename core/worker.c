/*
 * knit core - the worker loop, and the thread runtime that runs one loop per pthread.
 *
 * A turn: flush results that found the return lock full, drain new requests into the run
 * queue (one acknowledgement for the batch), run up to 5 tasks, sending each result as soon as
 * it exists. With nothing to do the worker spins for its budget, then parks on the lane's `op`
 * futex word. Parking cannot lose a wake-up: the worker stores rxStatus = 0, issues a full
 * fence, and re-checks the request queue before it sleeps; the host publishes, issues a full
 * fence, then reads rxStatus and bumps `op` when it reads 0 (knit__lane_wake). With both fences
 * at least one side sees the other's store. An idle worker sleeps without a timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error_internal.h"
#include "core/futex.h"
#include "core/pool_internal.h"

struct knit_task_ctx {
    const knit__task_t *task;
    knit__worker_t *worker;
    _Atomic uint32_t *abort_bits; /* NULL: not abort-aware */
    uint32_t abort_id;
    uint32_t worker_index;
    bool local_abort; /* inline lane: knit_future_abort before the call ran */
};

bool knit_task_aborted(const knit_task_ctx_t *ctx)
{
    if (ctx->local_abort)
        return true;
    return ctx->abort_bits && knit__abort_is_set(ctx->abort_bits, ctx->abort_id);
}

void *knit_task_user_data(const knit_task_ctx_t *ctx)
{
    return ctx->task->def.user_data;
}

uint32_t knit_task_worker(const knit_task_ctx_t *ctx)
{
    return ctx->worker_index;
}

/* A request waiting to run, or a result waiting for a free return slot. */
typedef struct job {
    uint32_t w0, id, stamp;
    int status; /* decode status (run queue) or result status (backlog) */
    knit_value_t arg;
    knit_value_t result;
} job_t;

typedef struct ring {
    job_t *v;
    size_t cap, head, len;
} ring_t;

struct knit__worker {
    knit_pool_t *pool; /* read-only after start: tasks and options */
    knit__lane_t *lane;
    knit__endpoint_t ep;
    bool stealing;
    knit__steal_cons_t sc;   /* stealing: our side of the shared request lock */
    knit__endpoint_t sub_ep; /* stealing: reader view of the shared lock's slots and arena */
    _Atomic uint32_t *abort_bits;
    pthread_t thread;
    bool started;
    _Atomic uint32_t stop;
    int64_t spin_ns;
    bool spin_only;
    ring_t runq;
    ring_t backlog;
    bool sent; /* results published this turn: ring the host's doorbell */
    int error; /* a fatal error of the loop (out of memory) */
};

static int ring_push(ring_t *r, const job_t *j)
{
    if (r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        job_t *v = malloc(cap * sizeof *v);
        if (!v)
            return knit__err(KNIT_E_NOMEM, "worker queue of %zu entries", cap);
        for (size_t i = 0; i < r->len; i++)
            v[i] = r->v[(r->head + i) % r->cap];
        free(r->v);
        r->v = v;
        r->cap = cap;
        r->head = 0;
    }
    r->v[(r->head + r->len) % r->cap] = *j;
    r->len++;
    return 0;
}

static job_t *ring_front(ring_t *r)
{
    return r->len ? &r->v[r->head] : NULL;
}

static void ring_pop(ring_t *r)
{
    r->head = (r->head + 1) % r->cap;
    r->len--;
}

static void ring_free(ring_t *r)
{
    for (job_t *j; (j = ring_front(r)); ring_pop(r)) {
        knit_value_free(&j->result);
        knit_value_free(&j->arg);
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* The response word 0 for a status: 0 resolve, 1 task rejection (knitting's flag), else the
 * negated knit error code. */
static uint32_t status_word(int status)
{
    if (status == 0)
        return KNIT__FLAG_RESOLVE;
    if (status == KNIT_E_TASK)
        return KNIT__FLAG_REJECT;
    return (uint32_t)-status;
}

/* Try to publish one result. KNIT_E_FULL leaves it with the caller. An encode failure turns it
 * into a rejection carrying the encoder's message as a string. */
static int send_result(knit__worker_t *w, job_t *j)
{
    int rc = knit__ep_send(&w->ep, status_word(j->status), j->id, 0, &j->result);
    if (rc == KNIT_E_FULL)
        return rc;
    if (rc < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", knit_errmsg());
        knit_value_t s = knit_v_str(msg);
        int rc2 = knit__ep_send(&w->ep, status_word(rc), j->id, 0, &s);
        if (rc2 == KNIT_E_FULL) {
            knit_value_free(&j->result);
            j->status = rc;
            knit__value_keep(&s, &j->result); /* retried from the backlog */
            return rc2;
        }
    }
    w->sent = true;
    knit_value_free(&j->result);
    knit_value_free(&j->arg);
    return 0;
}

static bool flush_backlog(knit__worker_t *w)
{
    bool progressed = false;
    for (unsigned n = 0; n < KNIT__WRITE_MAX; n++) {
        job_t *j = ring_front(&w->backlog);
        if (!j || send_result(w, j) == KNIT_E_FULL)
            break;
        ring_pop(&w->backlog);
        progressed = true;
    }
    return progressed;
}

static int enqueue_request(void *ctx, knit__msg_t *m)
{
    knit__worker_t *w = ctx;
    job_t j = {.w0 = m->w0,
        .id = m->id,
        .stamp = m->stamp,
        .status = m->status,
        .arg = m->value,
        .result = knit_v_undefined()};
    int rc = ring_push(&w->runq, &j);
    if (rc < 0) {
        knit_value_free(&m->value);
        w->error = rc;
    }
    return 0;
}

/* Run one request; the result goes out now or into the backlog. */
static void run_one(knit__worker_t *w, job_t *j)
{
    knit_pool_t *p = w->pool;
    uint32_t fn = j->w0 & 0xFFFFu, abort_meta = j->w0 >> 16;
    if (j->status < 0) {
        /* the request could not be decoded: reject it with the decoder's status */
    } else if (fn >= p->ntasks) {
        j->status = KNIT_E_NO_TASK;
    } else {
        const knit__task_t *t = &p->tasks[fn];
        uint32_t tmo = t->def.timeout_ms;
        if (tmo && knit__stamp_elapsed(j->stamp, knit__stamp_ms(knit__now_ns())) >= tmo) {
            /* the budget was spent waiting in queues: the timeout outcome, without running */
            j->status = knit__timeout_outcome(&t->def, &j->result);
            j->result.flags &= (uint16_t)~KNIT_VF_OWNED;
        } else {
            knit_task_ctx_t ctx = {.task = t, .worker = w, .worker_index = w->lane->index};
            if (t->def.abort_aware && abort_meta && w->abort_bits) {
                ctx.abort_bits = w->abort_bits;
                ctx.abort_id = abort_meta - 1;
            }
            int rc = t->def.fn(&ctx, &j->arg, &j->result);
            j->status = rc == 0 ? 0 : rc > 0 ? KNIT_E_TASK : rc;
        }
    }
    if (send_result(w, j) == KNIT_E_FULL && ring_push(&w->backlog, j) < 0) {
        knit_value_free(&j->result);
        knit_value_free(&j->arg);
    }
}

/* Something to do: new requests, a stop request, or room for backlogged results. */
static bool has_work(knit__worker_t *w)
{
    if (w->stealing ? knit__steal_pending(&w->sc) != 0 : knit__qcons_pending(&w->ep.rx) != 0)
        return true;
    /* relaxed: a hint; the loop re-reads it with acquire. */
    if (atomic_load_explicit(&w->stop, memory_order_relaxed))
        return true;
    return w->backlog.len && knit__qprod_claim(&w->ep.tx) >= 0;
}

/* Spin, then park until the host publishes, frees return slots, or asks us to stop. */
static void idle_wait(knit__worker_t *w)
{
    knit__ctrl_t *c = w->ep.ctrl;
    if (w->spin_ns > 0 || w->spin_only) {
        uint64_t end = knit__now_ns() + (uint64_t)(w->spin_ns > 0 ? w->spin_ns : 0);
        for (unsigned i = 1;; i++) {
            if (has_work(w))
                return;
            knit__cpu_relax();
            if (!w->spin_only && (i & 63u) == 0 && knit__now_ns() >= end)
                break;
        }
    }
    /* relaxed: the futex compares the value; a later host increment makes the wait return. */
    uint32_t token = atomic_load_explicit(&c->sig.op.word, memory_order_relaxed);
    /* relaxed store + seq_cst fence: announces "about to sleep" before the re-check below;
     * pairs with the host's fence between publishing H (or acknowledging results, which frees
     * return slots) and reading rxStatus. */
    atomic_store_explicit(&c->sig.rx_status.word, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (!has_work(w))
        knit__futex_wait(&c->sig.op.word, token, -1);
    /* relaxed: a hint for the host; losing it costs at most one extra futex_wake. */
    atomic_store_explicit(&c->sig.rx_status.word, 1, memory_order_relaxed);
}

static int discard_request(void *ctx, knit__msg_t *m)
{
    (void)ctx;
    knit_value_free(&m->value);
    return 0;
}

/* Stealing: claim one region of the shared lock and queue what it holds. */
static bool steal_some(knit__worker_t *w)
{
    uint32_t take = knit__steal_claim(&w->sc);
    for (uint32_t left = take; left; left &= left - 1) {
        knit__msg_t m;
        knit__slot_take(
            &w->sub_ep.rx_slab[__builtin_ctz(left)], &w->sub_ep.rx_arena, &w->sub_ep.codec, &m);
        enqueue_request(w, &m);
    }
    if (take)
        knit__steal_release(&w->sc, take);
    return take != 0;
}

static void *worker_main(void *arg)
{
    knit__worker_t *w = arg;
    knit__ctrl_t *c = w->ep.ctrl;
    /* relaxed: a hint (see idle_wait). */
    atomic_store_explicit(&c->sig.rx_status.word, 1, memory_order_relaxed);
    /* acquire: pairs with the host's release store in knit__worker_stop. */
    while (!atomic_load_explicit(&w->stop, memory_order_acquire)) {
        bool progressed = false;
        w->sent = false;
        if (w->backlog.len)
            progressed |= flush_backlog(w);
        if (w->stealing ? (!w->runq.len && steal_some(w))
                        : knit__ep_drain(&w->ep, enqueue_request, w, 0, 0) > 0)
            progressed = true;
        for (unsigned n = 0; n < KNIT__RUN_PER_TURN && w->runq.len; n++) {
            job_t j = *ring_front(&w->runq);
            ring_pop(&w->runq);
            run_one(w, &j);
            progressed = true;
        }
        if (w->sent)
            knit__doorbell_ring(&w->lane->bell);
        if (!progressed && !w->runq.len)
            idle_wait(w);
    }
    /* Stopped: release whatever the frames still in our request lock hold (shared buffer
     * references, moved buffers); the host reads nothing more from this lane. (A stealing
     * pool's shared lock is cleared by the host once every worker is gone.) */
    if (!w->stealing)
        knit__ep_drain(&w->ep, discard_request, NULL, 0, 0);
    return NULL;
}

int knit__worker_start(knit_pool_t *p, knit__lane_t *lane)
{
    knit__worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return knit__err(KNIT_E_NOMEM, "worker state");
    w->pool = p;
    w->lane = lane;
    w->spin_ns = p->spin_ns;
    w->spin_only = p->opts.wait.spin_only;
    knit__endpoint_init(&w->ep, &lane->mem, KNIT__SIDE_WORKER);
    w->abort_bits = lane->aborts.shared;
    if (p->stealing) {
        knit__lane_t *sub = &p->lanes[p->submit];
        knit__ctrl_t *c = knit__shm_ctrl(&sub->mem);
        w->stealing = true;
        knit__endpoint_init(&w->sub_ep, &sub->mem, KNIT__SIDE_WORKER);
        knit__steal_cons_init(
            &w->sc, &c->req.q_host.word, c->req_slab, lane->index, p->nworkers, p->steal_lanes);
        w->abort_bits = sub->aborts.shared;
    }
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    if (rc != 0) {
        free(w);
        return knit__err(KNIT_E_SYS, "pthread_create for worker %u: %s", lane->index, strerror(rc));
    }
    w->started = true;
    lane->worker = w;
    return 0;
}

void knit__worker_stop(knit__lane_t *lane)
{
    knit__worker_t *w = lane->worker;
    if (!w)
        return;
    /* release: everything the host did before stopping is visible to the exiting worker. */
    atomic_store_explicit(&w->stop, 1, memory_order_release);
    knit__ctrl_t *c = w->ep.ctrl;
    /* seq_cst fence: orders the stop store before the increment the parked worker compares. */
    atomic_thread_fence(memory_order_seq_cst);
    atomic_fetch_add_explicit(&c->sig.op.word, 1, memory_order_relaxed);
    knit__futex_wake(&c->sig.op.word, 1);
}

void knit__worker_join(knit__lane_t *lane)
{
    knit__worker_t *w = lane->worker;
    if (!w)
        return;
    knit__worker_stop(lane);
    pthread_join(w->thread, NULL);
    ring_free(&w->runq);
    ring_free(&w->backlog);
    free(w);
    lane->worker = NULL;
}

/* Inline lane: run one call on the host thread. */
int knit__run_inline(knit_pool_t *p, knit_future_t *f, knit_value_t *result, bool aborted)
{
    const knit__task_t *t = &p->tasks[f->task];
    knit_task_ctx_t ctx = {.task = t, .worker_index = UINT32_MAX, .local_abort = aborted};
    int rc = t->def.fn(&ctx, &f->arg, result);
    return rc == 0 ? 0 : rc > 0 ? KNIT_E_TASK : rc;
}
