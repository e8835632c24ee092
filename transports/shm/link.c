/*
 * knit transport - the lane contract (transports/link.h) over the lane memory itself: frames
 * travel in the shared slots and arenas, and a parked peer is woken through futex words.
 */
#include "base/futex.h"
#include "transports/link.h"

bool knit__ctrl_wake_worker(knit__ctrl_t *c)
{
    /* relaxed: rxStatus is a hint; the caller's seq_cst fence orders its publication before
     * this read (see the worker's idle_wait for the other half). */
    if (atomic_load_explicit(&c->sig.rx_status.word, memory_order_relaxed) == 0) {
        atomic_fetch_add_explicit(&c->sig.op.word, 1, memory_order_relaxed);
        knit__futex_wake(&c->sig.op.word, 1);
        return true;
    }
    return false;
}

void knit__ring_host(const knit__shm_lane_t *mem)
{
    _Atomic uint32_t *parked = knit__bell_parked(mem->map, &mem->layout);
    _Atomic uint32_t *seq = knit__bell_seq(mem->map, &mem->layout);
    /* seq_cst fence: orders our publication of results (release store of H) before the read of
     * `parked`; pairs with the host's fence between setting `parked` and re-checking. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(parked, memory_order_relaxed)) {
        atomic_fetch_add_explicit(seq, 1, memory_order_relaxed);
        knit__futex_wake(seq, 1);
    }
}

static int knit_send(knit__link_t *l, uint32_t w0, uint32_t id, uint32_t stamp_ms, knit_value_t *v)
{
    return knit__ep_send(&l->ep, w0, id, stamp_ms, v);
}

static int knit_drain(knit__link_t *l, knit__frame_cb cb, void *ctx)
{
    /* The host acknowledges return slots every 8 frames so a busy worker can go on writing
     * while a long batch is being settled; the worker acknowledges its batch once. */
    return knit__ep_drain(&l->ep, cb, ctx, l->side == KNIT__SIDE_HOST ? 8u : 0u, 0);
}

static bool knit_ready(const knit__link_t *l)
{
    return knit__qcons_pending(&l->ep.rx) != 0;
}

static bool knit_can_send(knit__link_t *l)
{
    return knit__qprod_claim(&l->ep.tx) >= 0; /* a free slot (claiming takes nothing yet) */
}

static void knit_wake_peer(knit__link_t *l)
{
    if (l->side == KNIT__SIDE_WORKER) {
        knit__ring_host(l->mem);
        return;
    }
    /* seq_cst fence: orders the release store of H that published the call (or of W that freed
     * return slots) before the read of rxStatus; pairs with the worker's fence between
     * rxStatus = 0 and its re-check. */
    atomic_thread_fence(memory_order_seq_cst);
    knit__ctrl_wake_worker(l->ep.ctrl);
}

static unsigned knit_wait_fds(const knit__link_t *l, struct pollfd *out)
{
    (void)l;
    (void)out;
    return 0;
}

static void knit_end_tx(knit__link_t *l)
{
    (void)l; /* the stop word in lane memory says it */
}

static void knit_close(knit__link_t *l)
{
    (void)l; /* the lane memory belongs to the lane */
}

const knit__link_ops_t knit__link_knit_ops = {
    .name = "knit",
    .uses_fds = false,
    .send = knit_send,
    .drain = knit_drain,
    .ready = knit_ready,
    .can_send = knit_can_send,
    .wake_peer = knit_wake_peer,
    .wait_fds = knit_wait_fds,
    .end_tx = knit_end_tx,
    .close = knit_close,
};
