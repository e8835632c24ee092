/*
 * knit worker - the worker loop, the same for thread and process workers.
 *
 * A turn: flush results that found the return lock full, take new requests into the run queue
 * (one acknowledgement for the batch; a stealing worker claims one region of the shared lock,
 * only when its run queue is empty, and takes one call per claim while its tasks run long),
 * run up to 5 tasks, sending each result as soon as it
 * exists, then ring the host's doorbell if results went out. With nothing to do the worker
 * spins for its budget (less when it finds itself preempted: base/spin.h), then parks on the
 * lane's `op` futex word. Parking cannot lose a wake-up:
 * the worker stores rxStatus = 0, issues a full fence, and re-checks for work before it sleeps;
 * the host publishes (or frees return slots, or sets the stop word), issues a full fence, then
 * reads rxStatus and bumps `op` when it reads 0. An idle worker sleeps without a timeout.
 *
 * The loop knows nothing of the pool: it gets its task table, its lane memory and its wait
 * settings in a knit__worker_cfg_t, so a process worker builds one from its boot payload.
 */
#include <dlfcn.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/futex.h"
#include "base/spin.h"
#include "codec/value_internal.h"
#include "worker/worker.h"

struct knit_task_ctx {
    const knit__task_t *task;
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
    uint32_t w0, id, stamp, seq;
    int status;                    /* decode status (run queue) or result status (backlog) */
    int32_t region;                /* an in-place argument's arena region, or -1 */
    _Atomic uint32_t *region_free; /* the free word of that region's arena */
    const uint8_t *view;           /* that argument's bytes in the region */
    size_t view_len;
    knit_value_t arg;
    knit_value_t result;
    uint8_t *blk; /* the small-argument block `arg` lives in (blocks_t), or NULL */
} job_t;

/* Small arguments (knit__codec_cfg_t.small) are decoded into blocks of KNIT__SMALL_BYTES that
 * a job holds until its result is sent, not into the heap: after the first calls, a worker
 * allocates nothing per call. Blocks come in chunks, kept for the worker's life. */
#define BLOCKS_PER_CHUNK 32u

typedef struct blocks {
    uint8_t **free; /* stack of free blocks */
    size_t nfree;
    uint8_t **chunks; /* every chunk, freed with the worker */
    size_t nchunks;
} blocks_t;

typedef struct ring {
    job_t *v;
    size_t cap, head, len; /* cap: 0 or a power of two */
} ring_t;

/* The ring's i-th job from its head. */
static job_t *ring_at(ring_t *r, size_t i)
{
    return &r->v[(r->head + i) & (r->cap - 1)];
}

struct knit__worker {
    knit__worker_cfg_t cfg;
    knit_task_fn *fns; /* resolved task functions (imports loaded here) */
    void **handles;    /* dlopen handles to close */
    uint32_t nhandles;
    knit__link_t *link; /* our lane's data path: results out (and requests in, unless...) */
    knit__link_t *rx;   /* ...we steal: then requests come from the shared request lock */
    bool stealing;      /* rx is the shared lock's worker side */
    _Atomic uint32_t *abort_bits;
    _Atomic uint32_t *stop;
    bool host_gone;    /* the host closed its end of a message transport */
    knit__spin_t spin; /* spinning backs off while this worker is being preempted */
    bool *in_place;    /* per task: its argument is read in place (knit transport only) */
    ring_t runq;
    ring_t backlog;
    blocks_t blocks;
    bool sent;           /* results published this turn: ring the host's doorbell */
    uint64_t turn_ns[2]; /* stealing: time per task of the last two turns (note_run_time) */
};

/* Stealing: tasks at least this long are claimed one at a time. A claim (the WANT handshake,
 * then the acknowledgement) costs well under a microsecond even when peers contend, so above
 * 20 us per task one claim per call costs under 5 %; taking a whole region of long tasks
 * instead leaves a peer that frees up idle while one worker still holds up to a region of
 * them (the `cpu` scenario: 2 workers gave 1.78x one worker with region claims). */
#define KNIT__STEAL_ONE_NS 20000u

/* A free small-argument block, or NULL (the codec then uses the heap). */
static void *block_get(void *ctx, const uint32_t *hdr)
{
    (void)hdr;
    blocks_t *b = ctx;
    if (!b->nfree) {
        uint8_t **chunks = realloc(b->chunks, (b->nchunks + 1) * sizeof *chunks);
        if (!chunks)
            return NULL;
        b->chunks = chunks;
        uint8_t **stack = realloc(b->free, (b->nchunks + 1) * BLOCKS_PER_CHUNK * sizeof *stack);
        if (!stack)
            return NULL;
        b->free = stack;
        uint8_t *chunk = aligned_alloc(16, BLOCKS_PER_CHUNK * KNIT__SMALL_BYTES);
        if (!chunk)
            return NULL;
        b->chunks[b->nchunks++] = chunk;
        for (unsigned i = 0; i < BLOCKS_PER_CHUNK; i++)
            b->free[b->nfree++] = chunk + i * KNIT__SMALL_BYTES;
    }
    return b->free[--b->nfree];
}

static void block_put(blocks_t *b, uint8_t *blk)
{
    if (blk)
        b->free[b->nfree++] = blk; /* room: the stack holds every block of every chunk */
}

static void blocks_free(blocks_t *b)
{
    for (size_t i = 0; i < b->nchunks; i++)
        free(b->chunks[i]);
    free(b->chunks);
    free(b->free);
    memset(b, 0, sizeof *b);
}

/* The block a decoded argument lives in, if the codec put it in one. */
static uint8_t *arg_block(const knit_value_t *v)
{
    return v->flags & KNIT_VF_LENT ? (uint8_t *)v->u.ptr : NULL;
}

static int ring_push(ring_t *r, const job_t *j)
{
    if (r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        job_t *v = malloc(cap * sizeof *v);
        if (!v)
            return knit__err(KNIT_E_NOMEM, "worker queue of %zu entries", cap);
        for (size_t i = 0; i < r->len; i++)
            v[i] = *ring_at(r, i);
        free(r->v);
        r->v = v;
        r->cap = cap;
        r->head = 0;
    }
    *ring_at(r, r->len) = *j;
    r->len++;
    return 0;
}

static job_t *ring_front(ring_t *r)
{
    return r->len ? &r->v[r->head] : NULL;
}

static void ring_pop(ring_t *r)
{
    r->head = (r->head + 1) & (r->cap - 1);
    r->len--;
}

/* An in-place argument's region goes back to the host (once). */
static void drop_region(job_t *j)
{
    if (j->region >= 0)
        knit__arena_free(j->region_free, (uint32_t)j->region);
    j->region = -1;
}

/* The job is done with its argument and result. */
static void job_release(knit__worker_t *w, job_t *j)
{
    knit_value_free(&j->result);
    knit_value_free(&j->arg);
    drop_region(j);
    block_put(&w->blocks, j->blk);
    j->blk = NULL;
}

static void ring_free(knit__worker_t *w, ring_t *r)
{
    for (job_t *j; (j = ring_front(r)); ring_pop(r))
        job_release(w, j);
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* The response word 0 for a status: 0 resolve, 1 task rejection (knitting's flag), else the
 * negated knit error code with the top bit set. */
static uint32_t status_word(int status)
{
    if (status == 0)
        return KNIT__FLAG_RESOLVE;
    if (status == KNIT_E_TASK)
        return KNIT__FLAG_REJECT;
    return KNIT__FLAG_CODE | (uint32_t)-status;
}

/* Try to publish one result. KNIT_E_FULL leaves it with the caller. An encode failure turns it
 * into a rejection carrying the encoder's message as a string. */
static int send_result(knit__worker_t *w, job_t *j)
{
    int rc = knit__link_send(w->link, status_word(j->status), j->id, 0, &j->result);
    if (rc == KNIT_E_FULL)
        return rc;
    if (rc == KNIT_E_WORKER_DIED || rc == KNIT_E_SYS) {
        w->host_gone = true; /* nobody reads results any more: drop it */
    } else if (rc < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", knit_errmsg());
        knit_value_t s = knit_v_str(msg);
        int rc2 = knit__link_send(w->link, status_word(rc), j->id, 0, &s);
        if (rc2 == KNIT_E_FULL) {
            knit_value_free(&j->result);
            j->status = rc;
            knit__value_keep(&s, &j->result); /* retried from the backlog */
            return rc2;
        }
    }
    w->sent = true;
    job_release(w, j);
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

/* The batch's sequence numbers are `n` consecutive ones (each publication takes the next):
 * put each job straight at its place, in one pass. False when they are not (a stealing
 * worker's claims, a peer that numbers frames its own way): sort_new then sorts. */
static bool place_batch(ring_t *r, size_t from, size_t n)
{
    job_t tmp[KNIT__SLOTS];
    if (n > KNIT__SLOTS)
        return false;
    uint32_t lo = ring_at(r, from)->seq;
    bool in_order = true; /* as message transports deliver them */
    for (size_t i = 1; i < n; i++) {
        uint32_t seq = ring_at(r, from + i)->seq;
        in_order &= seq == lo + (uint32_t)i;
        if ((int32_t)(seq - lo) < 0) /* wrap-safe minimum of 32-bit sequence numbers */
            lo = seq;
    }
    if (in_order)
        return true;
    uint64_t seen = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t at = ring_at(r, from + i)->seq - lo;
        if (at >= n || (seen >> at & 1u))
            return false;
        seen |= 1ull << at;
        tmp[at] = *ring_at(r, from + i);
    }
    for (size_t i = 0; i < n; i++)
        *ring_at(r, from + i) = tmp[i];
    return true;
}

/* Put the jobs queued since `from` in publication order. A drain takes every frame published
 * so far, so ordering each batch by the producer's sequence number gives exact FIFO. */
static void sort_new(ring_t *r, size_t from)
{
    if (r->len - from < 2 || place_batch(r, from, r->len - from))
        return;
    for (size_t i = from + 1; i < r->len; i++) {
        job_t cur = *ring_at(r, i);
        size_t k = i;
        /* wrap-safe comparison of 32-bit sequence numbers */
        while (k > from && (int32_t)(ring_at(r, k - 1)->seq - cur.seq) > 0) {
            *ring_at(r, k) = *ring_at(r, k - 1);
            k--;
        }
        *ring_at(r, k) = cur;
    }
}

static int enqueue_request(void *ctx, knit__msg_t *m)
{
    knit__worker_t *w = ctx;
    job_t j = {.w0 = m->w0,
        .id = m->id,
        .stamp = m->stamp,
        .seq = m->seq,
        .status = m->status,
        .region = m->region,
        .region_free = m->region_free,
        .view = m->region >= 0 ? m->value.u.ptr : NULL,
        .view_len = m->region >= 0 ? m->value.len : 0,
        .arg = m->value,
        .result = knit_v_undefined(),
        .blk = arg_block(&m->value)};
    if (ring_push(&w->runq, &j) < 0) {
        /* out of memory: reject the call now rather than let it hang (best effort: if the
         * return lock is full too, only a timeout or shutdown settles it) */
        knit_value_free(&m->value);
        j.arg = knit_v_undefined();
        j.status = KNIT_E_NOMEM;
        if (send_result(w, &j) == KNIT_E_FULL)
            job_release(w, &j);
    }
    return 0;
}

static bool points_into(const knit_value_t *v, const uint8_t *base, size_t len)
{
    bool buffer = v->kind == KNIT_KIND_BYTES || v->kind == KNIT_KIND_STRING
        || v->kind == KNIT_KIND_JSON || v->kind == KNIT_KIND_TYPED;
    const uint8_t *p = v->u.ptr;
    return buffer && !(v->flags & KNIT_VF_OWNED) && p >= base && p <= base + len;
}

static void free_view_region(void *ctx)
{
    drop_region(ctx);
}

/* The task returned its in-place argument as its result: encode it straight from the view
 * and hand the region back before the frame is published (no copy beyond the encode). 0 when
 * sent; otherwise release_view() copies the result out and it goes the usual way. */
static int send_view_result(knit__worker_t *w, job_t *j)
{
    if (j->region < 0 || j->status != 0 || !points_into(&j->result, j->view, j->view_len))
        return KNIT_E_AGAIN;
    int rc = w->link->ops->send_hook(
        w->link, KNIT__FLAG_RESOLVE, j->id, 0, &j->result, free_view_region, j);
    if (rc < 0)
        return rc;
    w->sent = true;
    j->result = knit_v_undefined();
    j->arg = knit_v_undefined();
    return 0;
}

/* The task has returned: hand an in-place argument's region back before the result goes out
 * (a host that sees the result may need that region for its next call). A result that still
 * points into the region (the task returned the view) is copied out first. */
static void release_view(job_t *j)
{
    if (j->region < 0)
        return;
    if (points_into(&j->result, j->view, j->view_len)) {
        knit_value_t view = j->result;
        if (knit__value_keep(&view, &j->result) < 0) {
            j->result = knit_v_str("out of memory copying an in-place result");
            j->status = KNIT_E_NOMEM;
        }
    }
    if (points_into(&j->arg, j->view, j->view_len))
        j->arg = knit_v_undefined(); /* a view owns nothing */
    drop_region(j);
}

/* A result that has to wait for a return slot outlives its task's turn, but a task may return
 * memory it only lends until it returns (knit_task_fn): keep a copy of what it did not hand
 * over, or the next task could overwrite it before it is sent. */
static void keep_result(job_t *j)
{
    if (j->result.flags & KNIT_VF_OWNED)
        return;
    knit_value_t lent = j->result;
    if (knit__value_keep(&lent, &j->result) < 0) {
        j->result = knit_v_str("out of memory keeping a result until the return lock has room");
        j->status = KNIT_E_NOMEM;
    }
}

/* Run one request; the result goes out now or into the backlog. */
static void run_one(knit__worker_t *w, job_t *j)
{
    uint32_t fn = j->w0 & 0xFFFFu, abort_meta = j->w0 >> 16;
    if (j->status < 0) {
        /* the request could not be decoded: reject it with the decoder's status */
    } else if (fn >= w->cfg.ntasks || !w->fns[fn]) {
        j->status = KNIT_E_NO_TASK;
    } else {
        const knit__task_t *t = &w->cfg.tasks[fn];
        uint32_t tmo = t->def.timeout_ms;
        if (tmo && knit__stamp_elapsed(j->stamp, knit__stamp_ms(knit__now_ns())) >= tmo) {
            /* the budget was spent waiting in queues: the host applies the timeout outcome */
            j->status = KNIT_E_TIMEOUT;
        } else {
            knit_task_ctx_t ctx = {.task = t, .worker_index = w->cfg.index};
            if (t->def.abort_aware && abort_meta && w->abort_bits) {
                ctx.abort_bits = w->abort_bits;
                ctx.abort_id = abort_meta - 1;
            }
            j->status = knit__task_status(w->fns[fn](&ctx, &j->arg, &j->result));
        }
    }
    if (send_view_result(w, j) == 0)
        return;
    release_view(j);
    if (send_result(w, j) == KNIT_E_FULL) {
        keep_result(j);
        if (ring_push(&w->backlog, j) < 0)
            job_release(w, j);
    }
}

static bool stopping(const knit__worker_t *w)
{
    /* acquire: pairs with the host's release store; what it did before is visible. */
    return atomic_load_explicit(w->stop, memory_order_acquire) != 0;
}

/* Something to do: new requests, a stop request, or room for backlogged results. */
static bool has_work(knit__worker_t *w)
{
    if (knit__link_ready(w->rx))
        return true;
    if (stopping(w))
        return true;
    return w->backlog.len && knit__link_can_send(w->link);
}

/* Spin, then park until the host publishes, frees return slots, or asks us to stop. */
static bool has_work_cb(void *w)
{
    return has_work(w);
}

static void idle_wait(knit__worker_t *w)
{
    uint64_t now = knit__now_ns();
    if (w->cfg.spin_only || (w->cfg.spin_ns > 0 && knit__spin_begin(&w->spin, now))) {
        uint64_t end = now + (uint64_t)(w->cfg.spin_ns > 0 ? w->cfg.spin_ns : 0);
        for (unsigned i = 1;; i++) {
            if (has_work(w)) {
                knit__spin_calm(&w->spin);
                return;
            }
            knit__cpu_relax();
            if (w->cfg.spin_only || (i & 63u) != 0)
                continue;
            now = knit__now_ns();
            if (now >= end || knit__spin_preempted(&w->spin, now))
                break; /* budget spent, or sharing the CPU: park */
        }
    }
    /* the link re-checks has_work after announcing the sleep, so no wake-up is lost */
    w->link->ops->park(w->link, has_work_cb, w);
}

/* A stealing worker's time per task in this turn, kept with the turn before it. */
static void note_run_time(knit__worker_t *w, uint64_t ns, unsigned ran)
{
    w->turn_ns[0] = w->turn_ns[1];
    w->turn_ns[1] = ns / ran;
    /* the shorter of the last two turns: one turn stretched by a preemption (common with more
     * threads than cores) does not narrow the claims; two turns of long tasks do */
    uint64_t task_ns = w->turn_ns[0] < w->turn_ns[1] ? w->turn_ns[0] : w->turn_ns[1];
    w->rx->ops->set_claim(w->rx, task_ns >= KNIT__STEAL_ONE_NS ? 1u : KNIT__SLOTS);
}

/* Run up to KNIT__RUN_PER_TURN queued tasks; true when any ran. */
static bool run_turn(knit__worker_t *w)
{
    if (!w->runq.len)
        return false;
    uint64_t t0 = w->stealing ? knit__now_ns() : 0;
    unsigned n = 0;
    for (; n < KNIT__RUN_PER_TURN && w->runq.len; n++) {
        if (w->sent) {
            /* results are out: ring a parked host before the next task, which may run long -
             * its caller must not wait for that task to see them */
            knit__link_wake_peer(w->link);
            w->sent = false;
        }
        job_t j = *ring_front(&w->runq);
        ring_pop(&w->runq);
        run_one(w, &j);
    }
    if (w->stealing)
        note_run_time(w, knit__now_ns() - t0, n);
    return true;
}

static int discard_request(void *ctx, knit__msg_t *m)
{
    knit__worker_t *w = ctx;
    block_put(&w->blocks, arg_block(&m->value));
    knit_value_free(&m->value);
    return 0;
}

void knit__worker_run(knit__worker_t *w)
{
    knit__ctrl_t *c = knit__shm_ctrl(w->cfg.lane);
    /* relaxed: a hint (see idle_wait). */
    atomic_store_explicit(&c->sig.rx_status.word, 1, memory_order_relaxed);
    while (!stopping(w) && !w->host_gone) {
        bool progressed = false;
        w->sent = false;
        if (w->backlog.len)
            progressed |= flush_backlog(w);
        size_t before = w->runq.len;
        /* a stealing worker claims more only once it has run what it holds */
        int got = w->stealing && w->runq.len ? 0 : knit__link_drain(w->rx, enqueue_request, w);
        if (got < 0) {
            /* end of the request stream (the host stopped us or is gone), or a malformed
             * frame: nothing more can be read; leaving closes our end, which the host sees */
            break;
        }
        if (got > 0) {
            sort_new(&w->runq, before);
            progressed = true;
        }
        progressed |= run_turn(w);
        if (w->sent)
            knit__link_wake_peer(w->link);
        if (!progressed && !w->runq.len)
            idle_wait(w);
    }
    /* Stopped: release whatever the frames still in our request lock hold (shared buffer
     * references, moved buffers); the host reads nothing more from this lane. (A stealing
     * pool's shared lock is cleared by the host once every worker is gone.) */
    if (!w->stealing)
        knit__link_drain(w->link, discard_request, w);
}

/* Resolve task functions: built-in ones, or imported from a shared object (dlopen here, in
 * the worker, never on the host). */
static int resolve_tasks(knit__worker_t *w)
{
    w->fns = calloc(w->cfg.ntasks ? w->cfg.ntasks : 1, sizeof *w->fns);
    w->handles = calloc(w->cfg.ntasks ? w->cfg.ntasks : 1, sizeof *w->handles);
    if (!w->fns || !w->handles)
        return knit__err(KNIT_E_NOMEM, "task table of %u entries", w->cfg.ntasks);
    for (uint32_t i = 0; i < w->cfg.ntasks; i++) {
        const knit_task_def_t *d = &w->cfg.tasks[i].def;
        if (!d->import_path) {
            w->fns[i] = d->fn;
            continue;
        }
        void *h = dlopen(d->import_path, RTLD_NOW | RTLD_LOCAL);
        if (!h)
            return knit__err(KNIT_E_WORKER_STARTUP, "task '%s': dlopen %s: %s", d->name,
                d->import_path, dlerror());
        w->handles[w->nhandles++] = h;
        const char *sym = d->import_symbol ? d->import_symbol : d->name;
        void *f = dlsym(h, sym);
        if (!f)
            return knit__err(KNIT_E_WORKER_STARTUP, "task '%s': no symbol '%s' in %s", d->name, sym,
                d->import_path);
        memcpy(&w->fns[i], &f, sizeof f);
    }
    return 0;
}

/* Tasks that read their argument in place get views into the request arena (the knit
 * transport's; a stream's buffer is reused at once, so message transports copy). */
static int in_place_tasks(knit__worker_t *w)
{
    bool any = false;
    for (uint32_t i = 0; i < w->cfg.ntasks; i++)
        any |= w->cfg.tasks[i].def.arg_in_place;
    if (!any || !knit__link_has(w->rx->ops, KNIT__LINK_IN_PLACE))
        return 0;
    w->in_place = calloc(w->cfg.ntasks, sizeof *w->in_place);
    if (!w->in_place)
        return knit__err(KNIT_E_NOMEM, "task table of %u entries", w->cfg.ntasks);
    for (uint32_t i = 0; i < w->cfg.ntasks; i++)
        w->in_place[i] = w->cfg.tasks[i].def.arg_in_place;
    w->rx->ops->set_in_place(w->rx, w->in_place, w->cfg.ntasks);
    return 0;
}

/* Run the bootstrap hook: a function, or one imported from a shared object. */
static int run_bootstrap(const knit__worker_cfg_t *cfg, void ***handles, uint32_t *nhandles)
{
    knit_bootstrap_fn fn = cfg->bootstrap;
    if (cfg->bootstrap_path) {
        void *h = dlopen(cfg->bootstrap_path, RTLD_NOW | RTLD_LOCAL);
        if (!h)
            return knit__err(
                KNIT_E_WORKER_STARTUP, "bootstrap: dlopen %s: %s", cfg->bootstrap_path, dlerror());
        void **hs = realloc(*handles, (*nhandles + 1) * sizeof *hs);
        if (!hs) {
            dlclose(h);
            return knit__err(KNIT_E_NOMEM, "bootstrap handle");
        }
        *handles = hs;
        hs[(*nhandles)++] = h;
        void *f = dlsym(h, cfg->bootstrap_symbol ? cfg->bootstrap_symbol : "knit_bootstrap");
        if (!f)
            return knit__err(KNIT_E_WORKER_STARTUP, "bootstrap: no symbol '%s' in %s",
                cfg->bootstrap_symbol ? cfg->bootstrap_symbol : "knit_bootstrap",
                cfg->bootstrap_path);
        memcpy(&fn, &f, sizeof f);
    }
    if (!fn)
        return 0;
    int rc = fn(cfg->bootstrap_ctx, cfg->index);
    return rc == 0 ? 0 : knit__err(KNIT_E_WORKER_STARTUP, "bootstrap hook returned %d", rc);
}

/* Our lane's link, and the worker side of a stealing pool's shared request lock. Takes
 * cfg->fds in every case. */
static int open_links(knit__worker_t *w, const knit__worker_cfg_t *cfg)
{
    const knit__link_ops_t *ops = knit__transport_ops(cfg->transport);
    int fds[2] = {cfg->fds[0], cfg->fds[1]};
    if (!ops) {
        knit__link_fds_close(fds);
        return knit__err(KNIT_E_INVAL, "unknown transport %d", (int)cfg->transport);
    }
    knit__link_params_t own = {
        .side = KNIT__SIDE_WORKER,
        .mem = cfg->lane,
        .codec = knit__shm_lane_codec(cfg->lane),
        .fds = {fds[0], fds[1]},
    };
    own.codec.small = block_get;
    own.codec.small_ctx = &w->blocks;
    int rc = knit__link_open(ops, &own, &w->link);
    if (rc < 0 || !cfg->submit) {
        w->rx = w->link;
        return rc;
    }
    if (!ops->shared_lock)
        return knit__err(
            KNIT_E_UNSUPPORTED, "the %s transport has no shared request lock", ops->name);
    knit__link_params_t lock = {
        .side = KNIT__SIDE_WORKER,
        .mem = cfg->submit,
        .codec = knit__shm_lane_codec(cfg->submit),
        .fds = {-1, -1},
        .consumers = cfg->consumers,
        .consumer = cfg->index,
        .region_lanes = cfg->steal_lanes,
    };
    rc = knit__link_open(ops->shared_lock, &lock, &w->rx);
    w->stealing = rc == 0;
    if (rc < 0)
        w->rx = w->link;
    return rc;
}

int knit__worker_new(const knit__worker_cfg_t *cfg, knit__worker_t **out)
{
    knit__worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return knit__err(KNIT_E_NOMEM, "worker state");
    w->cfg = *cfg;
    const knit__shm_lane_t *lane = cfg->lane;
    int rc = open_links(w, cfg);
    if (rc < 0) {
        knit__worker_free(w);
        knit__worker_report_boot(lane, rc);
        return rc;
    }
    w->stop = knit__lane_stop(lane->map, &lane->layout);
    const knit__shm_lane_t *aborts = cfg->submit ? cfg->submit : lane;
    if (aborts->layout.abort_bytes)
        w->abort_bits = (_Atomic uint32_t *)(aborts->map + aborts->layout.abort_off);
    rc = in_place_tasks(w);
    if (rc == 0)
        rc = run_bootstrap(cfg, &w->handles, &w->nhandles);
    void **boot_handles = w->handles;
    uint32_t nboot = w->nhandles;
    w->handles = NULL;
    w->nhandles = 0;
    if (rc == 0)
        rc = resolve_tasks(w);
    if (boot_handles) {
        /* keep the bootstrap's objects loaded for the worker's life */
        void **hs = realloc(w->handles, (w->nhandles + nboot + 1) * sizeof *hs);
        if (hs) {
            memcpy(hs + w->nhandles, boot_handles, nboot * sizeof *hs);
            w->handles = hs;
            w->nhandles += nboot;
        }
        free(boot_handles);
    }
    /* last, so the lock-down covers every call and nothing of the start-up */
    if (rc == 0 && cfg->lockdown)
        rc = cfg->lockdown(cfg->lockdown_ctx);
    /* reported before a failed worker closes its link: a host that reads end-of-stream from
     * it already sees why */
    knit__worker_report_boot(lane, rc);
    if (rc < 0) {
        knit__worker_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void knit__worker_free(knit__worker_t *w)
{
    if (!w)
        return;
    ring_free(w, &w->runq);
    ring_free(w, &w->backlog);
    if (w->rx != w->link)
        knit__link_close(&w->rx);
    knit__link_close(&w->link);
    blocks_free(&w->blocks);
    for (uint32_t i = 0; i < w->nhandles; i++)
        if (w->handles[i])
            dlclose(w->handles[i]);
    free(w->handles);
    free(w->fns);
    free(w->in_place);
    free(w);
}

void knit__worker_report_boot(const knit__shm_lane_t *lane, int rc)
{
    if (!lane->map)
        return;
    if (rc < 0)
        snprintf(knit__lane_boot_msg(lane->map, &lane->layout), KNIT__BOOT_MSG_BYTES, "%s",
            knit__errmsg_detail());
    /* release: the message is written before the state the host acquires. */
    atomic_store_explicit(knit__lane_boot(lane->map, &lane->layout),
        rc < 0 ? KNIT__BOOT_FAILED : KNIT__BOOT_READY, memory_order_release);
    if (rc < 0) {
        /* A host waiting for this lane's results must learn that none will come. release:
         * a host whose token includes this bump also sees the state stored above. */
        _Atomic uint32_t *seq = knit__bell_seq(lane->map, &lane->layout);
        atomic_fetch_add_explicit(seq, 1, memory_order_release);
        knit__futex_wake(seq, 1);
    }
}

void knit__worker_signal_stop(const knit__shm_lane_t *lane)
{
    knit__ctrl_t *c = knit__shm_ctrl(lane);
    /* release: everything the host did before stopping is visible to the exiting worker. */
    atomic_store_explicit(knit__lane_stop(lane->map, &lane->layout), 1, memory_order_release);
    /* seq_cst fence: orders the stop store before the increment the parked worker compares
     * (pairs with the worker's fence before its re-check). */
    atomic_thread_fence(memory_order_seq_cst);
    atomic_fetch_add_explicit(&c->sig.op.word, 1, memory_order_relaxed);
    knit__futex_wake(&c->sig.op.word, 1);
}

int knit__run_task_inline(
    const knit__task_t *t, knit_value_t *arg, knit_value_t *result, bool aborted)
{
    knit_task_ctx_t ctx = {.task = t, .worker_index = UINT32_MAX, .local_abort = aborted};
    return knit__task_status(t->def.fn(&ctx, arg, result));
}
