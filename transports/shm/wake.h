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

/* rxStatus: what the worker is doing. A worker parks IDLE when it has nothing to do, and FULL
 * when its results wait for return slots: only that sleep ends when the host frees some. */
enum { KNIT__RX_IDLE = 0, KNIT__RX_AWAKE = 1, KNIT__RX_FULL = 2 };

/* Wake a worker whose rxStatus read `seen` (not AWAKE), once: the host that swaps it to AWAKE
 * makes the futex call, and publications that follow before the worker runs again see AWAKE
 * and make none (a burst would otherwise pay one system call per call while the worker
 * wakes up). The worker stores its own status from then on; a status it stored after being
 * woken (parking again) fails the swap, so a later wake is never lost. True when woken. */
static inline bool knit__ctrl_wake_from(knit__ctrl_t *c, uint32_t seen)
{
    /* relaxed: the swap only decides who calls futex_wake; the caller's seq_cst fence ordered
     * its publication before the read of `seen`. */
    if (!atomic_compare_exchange_strong_explicit(&c->sig.rx_status.word, &seen, KNIT__RX_AWAKE,
            memory_order_relaxed, memory_order_relaxed))
        return false; /* the worker is awake, or another wake got there first */
    atomic_fetch_add_explicit(&c->sig.op.word, 1, memory_order_relaxed);
    knit__futex_wake(&c->sig.op.word, 1);
    return true;
}

/* Host, after publishing requests: wake the lane's worker if it is parked, for whichever
 * reason; true when it did. The caller issued a seq_cst fence after its publication. */
static inline bool knit__ctrl_wake_worker(knit__ctrl_t *c)
{
    /* relaxed: rxStatus is a hint; the caller's seq_cst fence orders its publication before
     * this read (see knit__lane_park for the other half). */
    uint32_t s = atomic_load_explicit(&c->sig.rx_status.word, memory_order_relaxed);
    return s != KNIT__RX_AWAKE && knit__ctrl_wake_from(c, s);
}

/* Host, after freeing return slots only: wake the worker if it parked waiting for them (an
 * idle worker has no result to write: waking it would cost a system call and two context
 * switches for nothing). The caller issued a seq_cst fence after freeing them. */
static inline void knit__ctrl_wake_full_worker(knit__ctrl_t *c)
{
    /* relaxed: as in knit__ctrl_wake_worker; the fence orders the release store of W first. */
    if (atomic_load_explicit(&c->sig.rx_status.word, memory_order_relaxed) == KNIT__RX_FULL)
        knit__ctrl_wake_from(c, KNIT__RX_FULL);
}

/* Worker: after publishing results, wake the host if it parked on this lane's doorbell. */
static inline void knit__ring_host(const knit__shm_lane_t *mem)
{
    _Atomic uint32_t *parked = knit__bell_parked(mem->map, &mem->layout);
    _Atomic uint32_t *seq = knit__bell_seq(mem->map, &mem->layout);
    /* seq_cst fence: orders our publication of results (release store of H) before the read of
     * `parked`; pairs with the host's fence between setting `parked` and re-checking. */
    atomic_thread_fence(memory_order_seq_cst);
    /* relaxed: the swap only decides who rings; the fence above ordered the publication. The
     * worker that swaps `parked` back to 0 rings once, and the results it publishes while the
     * host wakes up (a cross-CPU wake-up takes tens of microseconds here) ring no more: each
     * further task of a burst would otherwise make a futex call. The host sets `parked` again
     * before it next sleeps. */
    uint32_t one = 1;
    if (atomic_load_explicit(parked, memory_order_relaxed)
        && atomic_compare_exchange_strong_explicit(
            parked, &one, 0, memory_order_relaxed, memory_order_relaxed)) {
        atomic_fetch_add_explicit(seq, 1, memory_order_relaxed);
        knit__futex_wake(seq, 1);
    }
}

/* Host, after sends or after handing return slots back (the host half of the link op
 * wake_peer; the worker half is knit__ring_host): make a parked worker notice. `*published`
 * (the link's flag, cleared here): requests went out since the last wake-up, which any parked
 * worker wants; otherwise only room was freed, which only a worker parked FULL wants. */
static inline void knit__host_wake_worker(knit__ctrl_t *c, bool *published)
{
    /* seq_cst fence: orders the release store that published the call (or handed return slots
     * back) before the read of rxStatus; pairs with the worker's fence between announcing its
     * sleep and its re-check in knit__lane_park. */
    atomic_thread_fence(memory_order_seq_cst);
    if (*published)
        knit__ctrl_wake_worker(c);
    else
        knit__ctrl_wake_full_worker(c); /* only room was freed */
    *published = false;
}

/* Worker: park on the lane's op word until the host publishes, frees return slots (when
 * `tx_full`: our last send found none) or sets the stop word, each of which is followed by
 * the host's knit__host_wake_worker. `more(ctx)` is the caller's re-check (the link op park). */
static inline void knit__lane_park(
    knit__ctrl_t *c, bool tx_full, bool (*more)(void *ctx), void *ctx)
{
    /* relaxed: the futex compares the value; a later host increment makes the wait return. */
    uint32_t token = atomic_load_explicit(&c->sig.op.word, memory_order_relaxed);
    /* relaxed store + seq_cst fence: announces "about to sleep" (and whether for return slots)
     * before the re-check below; pairs with the host's fence between publishing a call (or
     * handing return slots back, or setting the stop word) and reading rxStatus. A worker whose
     * results wait for room says FULL, the only sleep the host's freeing of return slots ends. */
    atomic_store_explicit(
        &c->sig.rx_status.word, tx_full ? KNIT__RX_FULL : KNIT__RX_IDLE, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
    if (!more(ctx))
        knit__futex_wait(&c->sig.op.word, token, -1);
    /* relaxed: a hint for the host; losing it costs at most one extra futex_wake. */
    atomic_store_explicit(&c->sig.rx_status.word, KNIT__RX_AWAKE, memory_order_relaxed);
}

#endif
