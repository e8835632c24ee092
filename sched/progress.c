/*
 * knit sched - the host's dispatcher pass and its waits: drain every lane, fire timers, run
 * the inline lane, deliver; between passes spin while an answer is likely soon, then park
 * until a worker rings, a timer is due or the caller's deadline.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/futex.h"
#include "base/spin.h"
#include "sched/future.h"
#include "sched/lanes.h"
#include "sched/route.h"
#include "sched/settle.h"
#include "sched/timer.h"

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
        if (expects_results(p, &p->lanes[i]) && knit__link_ready(p->lanes[i].link))
            return true;
    return false;
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
            kept = knit__errmsg_value();
        }
        knit_value_free(&result);
        knit__settle(p, f, status, &kept);
        n++;
    }
    return n;
}

/* One dispatcher pass. Returns the number of frames and calls handled. */
static int pass(knit_pool_t *p)
{
    int work = 0;
    if (p->lanes_unsettled)
        knit__check_lanes(p);
    for (uint32_t i = 0; i < p->nworkers; i++) {
        knit__lane_t *lane = &p->lanes[i];
        if (p->dispatcher == KNIT_DISPATCHER_SERIAL_CHANNEL && !lane->inflight
            && !expects_results(p, lane))
            continue; /* serial channel: sweep only the active lanes */
        work += knit__lane_service(p, lane);
    }
    if (p->stealing && p->lanes[p->submit].backlog.len)
        work += knit__flush_backlog(p, &p->lanes[p->submit]);
    if (p->heap_len)
        fire_timers(p, knit__now_ns());
    if (p->inline_q.len)
        work += run_inline(p);
    work += knit__run_settled(p);
    return work;
}

/* Nothing is pending and no callback is queued: no call can settle until this thread makes
 * one. */
static bool pool_idle(const knit_pool_t *p)
{
    return p->pending == 0 && p->settled_q.len == 0;
}

/* Grows whenever something the caller can see happens to a worker: it died and was replaced,
 * or its lane failed (death without replacement, failed start-up, broken link). */
static uint64_t worker_fates(const knit_pool_t *p)
{
    uint64_t n = p->respawns;
    for (uint32_t i = 0; i < p->nworkers; i++)
        n += p->lanes[i].failed != 0;
    return n;
}

/* The lanes whose doorbells the host parks on: those with responses due, and on an idle pool
 * every live worker's too - its death or failed start-up rings it (a closed pool has none). */
static bool park_on(const knit_pool_t *p, const knit__lane_t *lane, bool idle)
{
    return expects_results(p, lane) || (idle && !p->closed && !lane->failed && lane->runner);
}

/* Sleep until a worker rings a doorbell or `wake_at` (CLOCK_MONOTONIC ns; UINT64_MAX = none). */
static void park_host(knit_pool_t *p, uint64_t wake_at, bool idle)
{
    _Atomic uint32_t *words[128], *parked[128];
    uint32_t tokens[128];
    unsigned n = 0;
    for (uint32_t i = 0; i < p->nworkers && n < 127; i++) { /* one word left: the death bell */
        knit__lane_t *lane = &p->lanes[i];
        if (!park_on(p, lane, idle))
            continue;
        /* acquire: pairs with the release increments of a failing worker or of the monitor;
         * a token that includes their bump also shows what they wrote before it (the boot
         * state, the died flag), which the re-check below then sees. */
        tokens[n] = atomic_load_explicit(lane->bell.seq, memory_order_acquire);
        words[n] = lane->bell.seq;
        parked[n++] = lane->bell.parked;
        atomic_store_explicit(lane->bell.parked, 1, memory_order_relaxed);
    }
    unsigned nlanes = n;
    if (n && knit__runtime_has(p->rt_ops, KNIT__RUNTIME_CAN_DIE)) {
        /* acquire: pairs with the monitor's release increment (the died flag it set first) */
        tokens[n] = atomic_load_explicit(&p->death_bell, memory_order_acquire);
        words[n++] = &p->death_bell;
    }
    /* seq_cst fence: orders `parked` before the re-check of the return locks; pairs with the
     * fence in knit__ring_host (transports/shm/link.c). */
    atomic_thread_fence(memory_order_seq_cst);
    if (n && !results_waiting(p) && !knit__lanes_changed(p)) {
        /* more than 127 lanes: the others are polled at least every millisecond */
        uint64_t limit = p->nworkers > 127 ? knit__now_ns() + 1000000ull : UINT64_MAX;
        uint64_t until = wake_at < limit ? wake_at : limit;
        knit__futex_waitv(words, tokens, n, until == UINT64_MAX ? 0 : until);
    } else if (!n && wake_at != UINT64_MAX) {
        uint64_t now = knit__now_ns();
        if (wake_at > now) {
            /* nothing can answer: only a timer is due, or the idle caller's deadline */
            struct timespec ts = {
                (time_t)((wake_at - now) / 1000000000ull), (long)((wake_at - now) % 1000000000ull)};
            nanosleep(&ts, NULL);
        }
    }
    /* only the words set above: a lane skipped may have no memory (its replacement failed) */
    for (unsigned i = 0; i < nlanes; i++)
        atomic_store_explicit(parked[i], 0, memory_order_relaxed);
}

/* Message transports: sleep in poll() until a worker's frame (or end of stream) arrives, a
 * partly written frame can go on, the monitor reports a death, or `wake_at`. A closed pool's
 * links end with its workers: it only sleeps. */
static void park_host_fds(knit_pool_t *p, uint64_t wake_at)
{
    struct pollfd *fds = p->pfds;
    unsigned n = 0;
    for (uint32_t i = 0; i < p->nworkers && !p->closed; i++) {
        knit__lane_t *lane = &p->lanes[i];
        if (!lane->failed && !lane->link_down && lane->link)
            n += lane->link->ops->wait_fds(lane->link, &fds[n]);
    }
    unsigned efd = n;
    if (p->wake_fd >= 0 && !p->closed)
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

/* Park until a worker rings, the next timer, or the caller's deadline `wake_at` (UINT64_MAX =
 * none). */
static void park(knit_pool_t *p, uint64_t wake_at, bool idle)
{
    if (knit__link_has(p->link_ops, KNIT__LINK_USES_FDS))
        park_host_fds(p, wake_at);
    else
        park_host(p, wake_at, idle);
}

/* Spin while the workers are likely to answer soon; true when results came. */
static bool spin_for_results(knit_pool_t *p, uint64_t now, uint64_t start, int64_t timeout_ns)
{
    uint64_t end = now + (uint64_t)(p->spin_ns > 0 ? p->spin_ns : 0);
    for (unsigned i = 1;; i++) {
        if (results_waiting(p)) {
            knit__spin_calm(&p->spin);
            return true;
        }
        knit__cpu_relax();
        if ((i & 63u) == 0) {
            uint64_t t = knit__now_ns();
            if ((!p->opts.wait.spin_only && (t >= end || knit__spin_preempted(&p->spin, t)))
                || (timeout_ns >= 0 && t - start >= (uint64_t)timeout_ns)
                || (knit__timer_next(p) && t >= knit__timer_next(p)))
                return false;
        }
    }
}

int knit_pool_progress(knit_pool_t *p, int64_t timeout_ns)
{
    if (knit__null_arg(p, __func__, "pool"))
        return KNIT_E_INVAL;
    uint64_t start = 0; /* read after the first pass that found nothing: a pass that does
                           work returns without touching the clock */
    int settled = 0;
    /* Idle (nothing pending; it stays so, as only this thread can make a call): a pass settles
     * nothing, and what it handles - late responses of settled calls, a link that broke - is
     * the pool's own business, except a worker's death or failure, which is an event to return
     * for. Not tracked for a non-blocking call, which returns after one pass anyway. */
    bool idle = false;
    uint64_t fates = 0;
    for (;;) {
        if (!idle && timeout_ns != 0 && pool_idle(p)) {
            idle = true;
            fates = worker_fates(p);
        }
        int work = pass(p);
        settled += idle ? 0 : work;
        if (p->force_close) {
            knit__pool_close(p, false);
            settled += knit__run_settled(p);
            return settled;
        }
        if (timeout_ns == 0 || (idle ? worker_fates(p) != fates : work > 0))
            return settled;
        if (idle && timeout_ns < 0)
            return knit__err(KNIT_E_AGAIN,
                "knit_pool_progress: nothing is pending, so no call can settle until this "
                "thread makes one; waiting without a timeout would never return (pass a "
                "timeout to idle)");
        uint64_t now = knit__now_ns();
        if (!start)
            start = now;
        int64_t left = timeout_ns < 0 ? INT64_MAX : (int64_t)(start + (uint64_t)timeout_ns - now);
        if (left <= 0)
            return settled;
        if (!idle
            && (p->opts.wait.spin_only || (p->spin_ns > 0 && knit__spin_begin(&p->spin, now)))) {
            if (spin_for_results(p, now, start, timeout_ns) || p->opts.wait.spin_only)
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
        park(p, wake_at, idle);
    }
}
