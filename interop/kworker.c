/* knit interop - the worker loop on a knitting lane (see interop/kworker.h). */
#include "interop/kworker.h"

#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/futex.h"

/* One call from its request slot to its response. */
typedef struct kcall {
    uint32_t id, meta; /* header words 1 and 6 (echoed) */
    int32_t abort_id;  /* knitting's abort signal id, -1: none */
    const knit_kx_task_t *task;
    const char *name; /* the host's task name */
    knit__kx_value_t arg;
    knit_kx_call_t c;
    uint64_t deadline_ns; /* a pending task's timeout; 0 = none */
    bool failed;          /* the argument could not be decoded: c.result is the rejection */
} kcall_t;

/* A FIFO of calls (run queue, results waiting for a return slot). */
typedef struct fifo {
    kcall_t **v;
    size_t head, n, cap;
} fifo_t;

typedef struct kw {
    _Atomic uint32_t *op, *rx_status, *tx_status;
    _Atomic uint32_t *req_h, *req_w, *ret_h, *ret_w;
    _Atomic uint32_t *abort_bits; /* the abort bitmap, NULL when the pool has none */
    uint32_t abort_words;
    uint8_t *req_slab, *ret_slab;
    knit__arena_t req_arena, ret_arena;
    uint32_t last_worker, last_take; /* request consumer */
    uint32_t last_local, shadow;     /* return producer */
    knit__kx_cfg_t cfg;
    const knit_kx_task_t **by_index; /* function index -> task (NULL: unknown name) */
    const char **index_name;
    size_t ntasks;
    fifo_t run, out;
    kcall_t **pending;
    size_t npending, cap_pending;
    int trace;
} kw_t;

/* --- the FIFO --------------------------------------------------------------------------------- */

static int fifo_push(fifo_t *f, kcall_t *c)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        kcall_t **v = malloc(cap * sizeof *v);
        if (!v)
            return knit__err(KNIT_E_NOMEM, "growing the worker's call queue");
        for (size_t i = 0; i < f->n; i++)
            v[i] = f->v[(f->head + i) % f->cap];
        free(f->v);
        f->v = v;
        f->cap = cap;
        f->head = 0;
    }
    f->v[(f->head + f->n++) % f->cap] = c;
    return 0;
}

static kcall_t *fifo_peek(const fifo_t *f)
{
    return f->n ? f->v[f->head] : NULL;
}

static kcall_t *fifo_pop(fifo_t *f)
{
    kcall_t *c = fifo_peek(f);
    if (c) {
        f->head = (f->head + 1) % f->cap;
        f->n--;
    }
    return c;
}

/* --- task names ----------------------------------------------------------------------------- */

static const knit_kx_task_t *find_task(const knit_kx_task_t *t, const char *name)
{
    for (; t && t->name; t++)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

static int resolve_tasks(kw_t *w, const knit__kw_boot_t *b, const knit__kw_opts_t *o)
{
    w->ntasks = b->ntasks;
    w->by_index = calloc(b->ntasks + 1, sizeof *w->by_index);
    w->index_name = calloc(b->ntasks + 1, sizeof *w->index_name);
    if (!w->by_index || !w->index_name)
        return knit__err(KNIT_E_NOMEM, "task table");
    memcpy(w->index_name, b->names, b->ntasks * sizeof *b->names);
    qsort(w->index_name, b->ntasks, sizeof *w->index_name, knit__kx_name_cmp);
    for (size_t i = 0; i < b->ntasks; i++) {
        const knit_kx_task_t *t = find_task(o->extra, w->index_name[i]);
        w->by_index[i] = t ? t : find_task(knit__kx_builtin_tasks, w->index_name[i]);
        if (!w->by_index[i])
            fprintf(stderr, "knit-knitting-worker: no C task named '%s': its calls reject\n",
                w->index_name[i]);
    }
    return 0;
}

/* --- attaching to the lane ------------------------------------------------------------------ */

static _Atomic uint32_t *word_at(uint8_t *base, uint64_t off)
{
    return (_Atomic uint32_t *)(base + off);
}

static void attach(kw_t *w, const knit__kw_boot_t *b, uint8_t *base)
{
    w->op = word_at(base, b->signals);
    w->rx_status = word_at(base, b->signals + 64);
    w->tx_status = word_at(base, b->signals + 128);
    w->req_h = word_at(base, b->req.sector);
    w->req_w = word_at(base, b->req.sector + 64);
    w->ret_h = word_at(base, b->ret.sector);
    w->ret_w = word_at(base, b->ret.sector + 64);
    w->abort_bits = b->abort_len >= 4 ? word_at(base, b->abort_off) : NULL;
    w->abort_words = (uint32_t)(b->abort_len / 4);
    w->req_slab = base + b->req.headers;
    w->ret_slab = base + b->ret.headers;
    knit__arena_init(&w->req_arena, base + b->req.arena, b->req.arena_len, b->req.arena_len,
        word_at(base, b->req.sector + 128), word_at(base, b->req.sector + 192));
    knit__arena_init(&w->ret_arena, base + b->ret.arena, b->ret.arena_len, b->ret.arena_len,
        word_at(base, b->ret.sector + 128), word_at(base, b->ret.sector + 192));
    /* relaxed: the worker's own words; the host reads them as hints */
    w->last_worker = atomic_load_explicit(w->req_w, memory_order_relaxed);
    w->last_local = atomic_load_explicit(w->ret_h, memory_order_relaxed);
    w->shadow = atomic_load_explicit(w->ret_w, memory_order_acquire);
    w->last_take = 32;
    uint64_t max = b->max_payload ? b->max_payload : b->req.arena_len >> 3;
    w->cfg = (knit__kx_cfg_t) {.codec = {.max_payload_bytes = max, .process_boundary = true},
        .peer_pid = (int32_t)getppid()};
}

static uint32_t *slot_hdr(uint8_t *slab, unsigned i)
{
    return (uint32_t *)(slab + (size_t)i * KNIT__KW_SLOT_BYTES + KNIT__STATIC_BYTES);
}

static uint8_t *slot_stat(uint8_t *slab, unsigned i)
{
    return slab + (size_t)i * KNIT__KW_SLOT_BYTES;
}

/* --- requests ------------------------------------------------------------------------------- */

/* knitting's consumer order: the highest pending slot first, then the highest below the last
 * one taken, wrapping to the overall highest. */
static unsigned next_slot(uint32_t pending, uint32_t last_take)
{
    uint32_t below = last_take >= 32 ? 0 : pending & ((1u << last_take) - 1u);
    uint32_t pick = below ? below : pending;
    return 31u - (unsigned)__builtin_clz(pick);
}

static int reject_text(kcall_t *k, const char *prefix)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s%s", prefix, knit__errmsg_detail());
    return knit__kx_reject_error(&k->c, "Error", msg);
}

static int take_request(kw_t *w, unsigned i, uint64_t now)
{
    uint32_t hdr[KNIT__HDR_WORDS];
    memcpy(hdr, slot_hdr(w->req_slab, i), 7 * sizeof *hdr);
    hdr[KNIT__W_SCRATCH] = 0; /* word 7 is the producer's scratch: never read from memory */
    kcall_t *k = calloc(1, sizeof *k);
    if (!k)
        return knit__err(KNIT_E_NOMEM, "a call");
    k->id = hdr[KNIT__W_ID];
    k->meta = hdr[KNIT__W_META];
    uint32_t fn = hdr[KNIT__W_FN] & 0xFFFFu;
    k->abort_id = (int32_t)(hdr[KNIT__W_FN] >> 16) - 1; /* knitting stores id + 1, 0 = none */
    k->task = fn < w->ntasks ? w->by_index[fn] : NULL;
    k->name = fn < w->ntasks ? w->index_name[fn] : "?";
    k->c.now_ns = now;
    int rc = knit__kx_decode(hdr, slot_stat(w->req_slab, i), &w->req_arena, &w->cfg, &k->arg);
    if (rc < 0) {
        k->failed = true;
        reject_text(k, "knit worker could not decode the argument: ");
    } else if (!k->task) {
        k->failed = true;
        char msg[200];
        snprintf(msg, sizeof msg, "knit worker has no C task named '%s'", k->name);
        knit__kx_reject_error(&k->c, "Error", msg);
    }
    k->c.arg = &k->arg;
    return k->failed ? fifo_push(&w->out, k) : fifo_push(&w->run, k);
}

/* Decode every published request into the run queue; acknowledge the batch with one store. */
static int claim_requests(kw_t *w, uint64_t now, bool *progress)
{
    uint32_t pending = atomic_load_explicit(w->req_h, memory_order_acquire) ^ w->last_worker;
    uint32_t taken = 0;
    int rc = 0;
    while (pending && rc == 0) {
        unsigned i = next_slot(pending, w->last_take);
        rc = take_request(w, i, now);
        pending &= ~(1u << i);
        taken |= 1u << i;
        w->last_take = i;
    }
    if (taken) {
        w->last_worker ^= taken;
        /* release: the copies out of these slots happen before the host may reuse them */
        atomic_store_explicit(w->req_w, w->last_worker, memory_order_release);
        *progress = true;
    }
    return rc;
}

/* --- running tasks ---------------------------------------------------------------------------- */

static void settle_failure(kcall_t *k, int rc)
{
    knit__kx_free(&k->c.result);
    if (rc == KNIT_E_NOMEM)
        knit__err(rc, "out of memory in the task");
    reject_text(k, "");
}

static void free_call(kcall_t *k)
{
    knit__kx_free(&k->c.result);
    knit__kx_free(&k->arg);
    free(k);
}

/* Start or poll a task: 1 settled, 0 still pending. */
/* Bit `id` of knitting's abort bitmap (the host sets it when the caller aborts). */
static bool aborted(const kw_t *w, int32_t id)
{
    if (id < 0 || !w->abort_bits || (uint32_t)id >> 5 >= w->abort_words)
        return false;
    /* relaxed: a flag the task polls; nothing else is ordered by it */
    uint32_t word = atomic_load_explicit(&w->abort_bits[(uint32_t)id >> 5], memory_order_relaxed);
    return (word >> (id & 31)) & 1u;
}

static int step(kw_t *w, kcall_t *k, uint64_t now)
{
    k->c.now_ns = now;
    k->c.aborted = aborted(w, k->abort_id);
    int rc = k->task->fn(&k->c);
    if (rc == KNIT_E_AGAIN) {
        if (k->task->timeout_ms >= 0 && !k->deadline_ns)
            k->deadline_ns = now + (uint64_t)k->task->timeout_ms * 1000000ull;
        return 0;
    }
    if (rc < 0)
        settle_failure(k, rc);
    return 1;
}

static int add_pending(kw_t *w, kcall_t *k)
{
    if (w->npending == w->cap_pending) {
        size_t cap = w->cap_pending ? w->cap_pending * 2 : 32;
        kcall_t **p = realloc(w->pending, cap * sizeof *p);
        if (!p)
            return knit__err(KNIT_E_NOMEM, "pending tasks");
        w->pending = p;
        w->cap_pending = cap;
    }
    w->pending[w->npending++] = k;
    return 0;
}

/* knitting's worker starts up to 5 tasks per pass. */
static int run_tasks(kw_t *w, uint64_t now, bool *progress)
{
    int rc = 0;
    for (int n = 0; n < 5 && rc == 0 && w->run.n; n++) {
        kcall_t *k = fifo_pop(&w->run);
        *progress = true;
        rc = step(w, k, now) ? fifo_push(&w->out, k) : add_pending(w, k);
    }
    return rc;
}

/* Poll pending tasks; a pending task past its timeout settles with knitting's outcome. */
static int poll_pending(kw_t *w, uint64_t now, bool *progress)
{
    int rc = 0;
    for (size_t i = 0; i < w->npending && rc == 0;) {
        kcall_t *k = w->pending[i];
        /* poll first: a task that finished while this process was descheduled is not a
         * timeout; then a still-pending task past its deadline gets knitting's outcome */
        bool settled = step(w, k, now);
        if (!settled && k->deadline_ns && now >= k->deadline_ns) {
            k->c.cancelled = true;
            k->task->fn(&k->c);
            knit__kx_free(&k->c.result);
            rc = knit__kx_reject_error(&k->c, "Error", "Task timeout");
            settled = true;
        }
        if (!settled) {
            i++;
            continue;
        }
        w->pending[i] = w->pending[--w->npending];
        *progress = true;
        if (rc == 0)
            rc = fifo_push(&w->out, k);
        else
            free_call(k);
    }
    return rc;
}

/* --- results -------------------------------------------------------------------------------- */

/* knitting's producer: the highest free slot; the shadow of W is reloaded only when full. */
static int claim_return_slot(kw_t *w)
{
    uint32_t free_bits = ~(w->last_local ^ w->shadow);
    if (!free_bits) {
        w->shadow = atomic_load_explicit(w->ret_w, memory_order_acquire);
        free_bits = ~(w->last_local ^ w->shadow);
    }
    return free_bits ? 31 - __builtin_clz(free_bits) : -1;
}

/* A result knitting cannot carry becomes the message string with the reject flag, as in
 * knitting's worker (KNT_ERROR_3). */
static int encode_result(kw_t *w, kcall_t *k, uint32_t *hdr, uint8_t *stat)
{
    hdr[KNIT__W_FN] = k->c.reject ? KNIT__FLAG_REJECT : KNIT__FLAG_RESOLVE;
    hdr[KNIT__W_ID] = k->id;
    hdr[KNIT__W_META] = k->meta & ~KNIT__META_REGION_MASK;
    hdr[KNIT__W_SCRATCH] = 0;
    int rc = knit__kx_encode(&k->c.result, hdr, stat, &w->ret_arena, &w->cfg);
    if (rc == 0)
        return 0;
    char msg[600];
    snprintf(msg, sizeof msg, "KNT_ERROR_3: Unsupported payload type; %s",
        rc == KNIT_E_ARENA_FULL ? "Dynamic payload buffer capacity exceeded."
                                : knit__errmsg_detail());
    knit__kx_value_t s = {.v = knit_v_str(msg)};
    hdr[KNIT__W_FN] = KNIT__FLAG_REJECT;
    hdr[KNIT__W_META] = k->meta & ~KNIT__META_REGION_MASK;
    return knit__kx_encode(&s, hdr, stat, &w->ret_arena, &w->cfg);
}

static int flush_results(kw_t *w, bool *progress)
{
    int published = 0;
    while (w->out.n) {
        int i = claim_return_slot(w);
        if (i < 0)
            break; /* every return slot is taken: the host has not drained yet */
        kcall_t *k = fifo_pop(&w->out);
        uint32_t hdr[KNIT__HDR_WORDS];
        int rc = encode_result(w, k, hdr, slot_stat(w->ret_slab, (unsigned)i));
        if (w->trace)
            fprintf(stderr, "knit-knitting-worker: %s id %u -> %s%s\n", k->name, k->id,
                knit__tag_name(hdr[KNIT__W_TAG]), hdr[KNIT__W_FN] ? " (reject)" : "");
        free_call(k);
        if (rc < 0)
            return rc; /* not even the message fits: the lane is unusable */
        memcpy(slot_hdr(w->ret_slab, (unsigned)i), hdr, sizeof hdr);
        w->last_local ^= 1u << i;
        /* release: header and payload are written before the host sees the toggle */
        atomic_store_explicit(w->ret_h, w->last_local, memory_order_release);
        published++;
    }
    if (published)
        *progress = true;
    return 0;
}

/* --- idling ----------------------------------------------------------------------------------- */

static bool work_waiting(kw_t *w)
{
    return (atomic_load_explicit(w->req_h, memory_order_acquire) ^ w->last_worker) != 0 || w->out.n
        || w->run.n;
}

/* knitting's idle wait: spin for the budget (or while the host drains), announce the sleep in
 * rxStatus, re-check (knit's fix of the missed-wake window), then park on `op` for parkMs. A
 * host that cannot notify (Bun, Deno: its mapping is not a SharedArrayBuffer) is seen at the
 * next park timeout, which is how knitting's own process workers behave. */
static void idle(kw_t *w, const knit__kw_boot_t *b, volatile int *stop)
{
    uint32_t token = atomic_load_explicit(w->op, memory_order_acquire);
    uint64_t start = knit__now_ns(), spin_ns = (uint64_t)(b->spin_us * 1000.0);
    for (unsigned n = 0; !*stop; n++) {
        if (work_waiting(w) || atomic_load_explicit(w->op, memory_order_acquire) != token)
            return;
        if (atomic_load_explicit(w->tx_status, memory_order_relaxed) == 1)
            start = knit__now_ns(); /* the host is draining: keep spinning */
        if ((n & 63) == 0 && knit__now_ns() - start >= spin_ns)
            break;
        knit__cpu_relax();
    }
    int64_t park_ns = (int64_t)(b->park_ms * 1e6);
    if (w->npending && (park_ns < 0 || park_ns > 200000))
        park_ns = 200000; /* pending tasks are polled at least every 200 us */
    atomic_store_explicit(w->rx_status, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (!work_waiting(w) && !*stop)
        knit__futex_wait(w->op, token, park_ns < 0 ? -1 : park_ns);
    atomic_store_explicit(w->rx_status, 1, memory_order_relaxed);
}

/* --- the loop --------------------------------------------------------------------------------- */

static void release_all(kw_t *w)
{
    kcall_t *k;
    while ((k = fifo_pop(&w->run)))
        free_call(k);
    while ((k = fifo_pop(&w->out)))
        free_call(k);
    for (size_t i = 0; i < w->npending; i++) {
        w->pending[i]->c.cancelled = true;
        w->pending[i]->task->fn(&w->pending[i]->c);
        free_call(w->pending[i]);
    }
    free(w->pending);
    free(w->run.v);
    free(w->out.v);
    free(w->by_index);
    free(w->index_name);
}

int knit__kw_serve(
    const knit__kw_boot_t *b, uint8_t *base, const knit__kw_opts_t *o, volatile int *stop)
{
    kw_t w = {0};
    w.trace = o->trace;
    attach(&w, b, base);
    int rc = resolve_tasks(&w, b, o);
    atomic_store_explicit(w.rx_status, 1, memory_order_relaxed);
    while (rc == 0 && !*stop) {
        bool progress = false;
        uint64_t now = knit__now_ns();
        rc = claim_requests(&w, now, &progress);
        if (rc == 0)
            rc = flush_results(&w, &progress);
        if (rc == 0)
            rc = run_tasks(&w, now, &progress);
        if (rc == 0 && w.npending)
            rc = poll_pending(&w, knit__now_ns(), &progress);
        if (rc == 0)
            rc = flush_results(&w, &progress);
        if (rc == 0 && !progress)
            idle(&w, b, stop);
    }
    release_all(&w);
    return rc;
}
