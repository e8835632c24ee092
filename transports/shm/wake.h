/*
 * knit transports/shm - waking a parked peer through the lane's control words: the worker's
 * op word (it parks there) and the host's doorbell (it parks there, on every lane at once).
 * Inline: both run on every call. The wait policy of every shared-memory transport (`knit` and
 * `seq`): only how frames are published differs between them, never how a side sleeps.
 */
#ifndef KNIT_TRANSPORTS_SHM_WAKE_H
#define KNIT_TRANSPORTS_SHM_WAKE_H

#include <stdbool.h>

#include "base/futex.h"
#include "transports/shm/shm_lane.h"

/* rxStatus: what the worker is doing: parked or about to (IDLE, whether it waits for calls or
 * for return slots: the host wakes it the same way) or AWAKE - knitting's two values. */
enum { KNIT__RX_IDLE = 0, KNIT__RX_AWAKE = 1 };

/* Host: wake the lane's worker if it is parked; true when it did. The caller issued a seq_cst
 * fence after its publication. Every publication or hand-back that finds the worker parked
 * makes its own futex call, and the host wakes a parked worker after every drain, idle or
 * not: waking once per sleep (a compare-and-swap to AWAKE) and only a FULL worker after a
 * drain cut the exact counts by a system call per round trip, but made bursts on a pool that
 * parks at once 15x slower at p50 (bursts of 10: 2-3 us -> 42-58 us; docs/PERFORMANCE.md):
 * the extra wake-ups keep the peer running into the next calls. */
static inline bool knit__ctrl_wake_worker(knit__ctrl_t *c)
{
    /* relaxed: rxStatus is a hint; the caller's seq_cst fence orders its publication before
     * this read (see knit__lane_park for the other half). */
    if (atomic_load_explicit(&c->sig.rx_status.word, memory_order_relaxed) == KNIT__RX_AWAKE)
        return false;
    atomic_fetch_add_explicit(&c->sig.op.word, 1, memory_order_relaxed);
    knit__futex_wake(&c->sig.op.word, 1);
    return true;
}

/* Worker: after publishing results, wake the host if it parked on this lane's doorbell. */
static inline void knit__ring_host(const knit__shm_lane_t *mem)
{
    _Atomic uint32_t *parked = knit__bell_parked(mem->map, &mem->layout);
    _Atomic uint32_t *seq = knit__bell_seq(mem->map, &mem->layout);
    /* seq_cst fence: orders our publication of results (release store of H) before the read of
     * `parked`; pairs with the host's fence between setting `parked` and re-checking. */
    atomic_thread_fence(memory_order_seq_cst);
    /* relaxed: the host's `parked` is a hint; the fence above ordered the publication. Each
     * ring of a parked host makes a futex call (see knit__ctrl_wake_worker for why not once
     * per sleep). */
    if (atomic_load_explicit(parked, memory_order_relaxed)) {
        atomic_fetch_add_explicit(seq, 1, memory_order_relaxed);
        knit__futex_wake(seq, 1);
    }
}

/* Host, after sends or after handing return slots back (the host half of the link op
 * wake_peer; the worker half is knit__ring_host): make a parked worker notice. */
static inline void knit__host_wake_worker(knit__ctrl_t *c)
{
    /* seq_cst fence: orders the release store that published the call (or handed return slots
     * back) before the read of rxStatus; pairs with the worker's fence between announcing its
     * sleep and its re-check in knit__lane_park. */
    atomic_thread_fence(memory_order_seq_cst);
    knit__ctrl_wake_worker(c);
}

/* Worker: park on the lane's op word until the host publishes, frees return slots or sets the
 * stop word, each of which is followed by the host's knit__host_wake_worker. `more(ctx)` is
 * the caller's re-check (the link op park). */
static inline void knit__lane_park(knit__ctrl_t *c, bool (*more)(void *ctx), void *ctx)
{
    /* relaxed: the futex compares the value; a later host increment makes the wait return. */
    uint32_t token = atomic_load_explicit(&c->sig.op.word, memory_order_relaxed);
    /* relaxed store + seq_cst fence: announces "about to sleep" before the re-check below;
     * pairs with the host's fence between publishing a call (or handing return slots back, or
     * setting the stop word) and reading rxStatus. */
    atomic_store_explicit(&c->sig.rx_status.word, KNIT__RX_IDLE, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (!more(ctx))
        knit__futex_wait(&c->sig.op.word, token, -1);
    /* relaxed: a hint for the host; losing it costs at most one extra futex_wake. */
    atomic_store_explicit(&c->sig.rx_status.word, KNIT__RX_AWAKE, memory_order_relaxed);
}

#endif
