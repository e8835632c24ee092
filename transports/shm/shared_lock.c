/*
 * knit transports/shm - the shared request lock of a stealing pool as a link: the host
 * publishes calls into one lock (its own lane memory, no worker of its own) and every worker
 * claims regions of it (steal.c). Results go back on each worker's own lane link, so the host
 * side never receives and the worker side never sends.
 */
#include <stdlib.h>

#include "base/error.h"
#include "transports/shm/shared_lock.h"
#include "transports/shm/steal.h"
#include "transports/shm/wake.h"

typedef struct lock_link {
    knit__link_t base;
    const knit__shm_lane_t *mem;
    knit__endpoint_t ep; /* the host's producer view, or a worker's reader view */
    /* host side */
    knit__steal_prod_t prod;
    knit__ctrl_t **peers; /* the workers' lane control blocks, to wake a parked one */
    uint32_t npeers;
    uint32_t wake_cursor; /* where the next parked-worker scan starts */
    /* worker side */
    knit__steal_cons_t cons;
    uint32_t claim; /* slots per claim */
} lock_link_t;

static lock_link_t *lock(const knit__link_t *l)
{
    return (lock_link_t *)l;
}

static int lock_open(const knit__link_params_t *params, knit__link_t **out)
{
    if (params->consumers == 0 || params->consumers > KNIT__STEAL_MAX_CONSUMERS)
        return knit__err(KNIT_E_RANGE, "a shared request lock takes 1 to %u consumers, not %u",
            KNIT__STEAL_MAX_CONSUMERS, params->consumers);
    lock_link_t *l = calloc(1, sizeof *l);
    if (!l)
        return knit__err(KNIT_E_NOMEM, "a shared request lock");
    l->base = (knit__link_t) {.ops = &knit__shm_lock_ops, .side = params->side};
    l->mem = params->mem;
    knit__endpoint_init(&l->ep, params->mem, params->side);
    knit__ctrl_t *c = knit__shm_ctrl(params->mem);
    if (params->side == KNIT__SIDE_HOST) {
        l->peers = calloc(params->consumers, sizeof *l->peers);
        if (!l->peers) {
            free(l);
            return knit__err(KNIT_E_NOMEM, "a shared request lock");
        }
        for (uint32_t i = 0; params->peers && i < params->consumers; i++)
            l->peers[i] = knit__shm_ctrl(params->peers[i]);
        l->npeers = params->peers ? params->consumers : 0;
        knit__steal_prod_init(&l->prod, &c->req.q_host.word, c->req_slab, params->consumers);
    } else {
        knit__steal_cons_init(&l->cons, &c->req.q_host.word, c->req_slab, params->consumer,
            params->consumers, params->region_lanes);
        l->claim = KNIT__SLOTS;
    }
    *out = &l->base;
    return 0;
}

/* Host: claim a slot of the lock, fill it and publish it to every consumer. */
static int lock_send(knit__link_t *l, uint32_t w0, uint32_t id, uint32_t stamp_ms, knit_value_t *v)
{
    lock_link_t *k = lock(l);
    if (l->side != KNIT__SIDE_HOST)
        return knit__err(KNIT_E_INVAL, "a worker sends its results on its own lane");
    int slot = knit__steal_prod_claim(&k->prod);
    if (slot < 0)
        return slot; /* KNIT_E_FULL */
    int rc = knit__slot_fill(
        &k->ep.tx_slab[slot], &k->ep.tx_arena, &k->ep.codec, w0, id, stamp_ms, k->ep.tx_seq, v);
    if (rc < 0)
        return rc;
    k->ep.tx_seq++;
    knit__steal_prod_publish(&k->prod, (unsigned)slot);
    return 0;
}

/* Worker: claim one region (or `claim` slots of it) and hand what it holds to `cb`. */
static int lock_drain(knit__link_t *l, knit__frame_cb cb, void *ctx)
{
    lock_link_t *k = lock(l);
    if (l->side != KNIT__SIDE_WORKER)
        return 0; /* results come back on the workers' own lanes */
    uint32_t take = knit__steal_claim(&k->cons, k->claim);
    int n = 0, rc = 0;
    for (uint32_t left = take; left; left &= left - 1) {
        knit__msg_t m;
        knit__slot_take(&k->ep.rx_slab[__builtin_ctz(left)], &k->ep.rx_arena, &k->ep.codec, &m);
        n++;
        if (rc == 0)
            rc = cb(ctx, &m);
        else
            knit_value_free(&m.value);
    }
    if (take)
        knit__steal_release(&k->cons, take);
    return rc < 0 ? rc : n;
}

static bool lock_ready(const knit__link_t *l)
{
    return l->side == KNIT__SIDE_WORKER && knit__steal_pending(&lock(l)->cons) != 0;
}

static bool lock_can_send(knit__link_t *l)
{
    (void)l;
    return false; /* only the host sends, and it learns of room by trying */
}

/* Host: any worker may take the work, so wake the first parked one, scanning round-robin
 * (knitting's wakeOne, minus waking a worker that is already awake). */
static void lock_wake_peer(knit__link_t *l)
{
    lock_link_t *k = lock(l);
    if (l->side != KNIT__SIDE_HOST)
        return;
    /* seq_cst fence: orders the publication (release store of H) before the reads of the
     * workers' rxStatus; pairs with each worker's fence before its re-check (shm_park). */
    atomic_thread_fence(memory_order_seq_cst);
    for (uint32_t n = 0; n < k->npeers; n++) {
        uint32_t i = (k->wake_cursor + n) % k->npeers;
        if (knit__ctrl_wake_worker(k->peers[i])) {
            k->wake_cursor = (i + 1) % k->npeers;
            return;
        }
    }
}

static unsigned lock_wait_fds(const knit__link_t *l, struct pollfd *out)
{
    (void)l;
    (void)out;
    return 0;
}

static void lock_park(knit__link_t *l, bool (*more)(void *ctx), void *ctx)
{
    (void)l; /* a stealing worker parks on its own lane, which the host's wake-up targets */
    (void)more;
    (void)ctx;
}

static void lock_end_tx(knit__link_t *l)
{
    (void)l; /* the workers' stop words say it */
}

static void lock_set_in_place(knit__link_t *l, const bool *tasks, uint32_t ntasks)
{
    lock(l)->ep.codec.in_place = tasks;
    lock(l)->ep.codec.in_place_tasks = ntasks;
}

static void lock_set_claim(knit__link_t *l, uint32_t n)
{
    lock(l)->claim = n ? n : 1;
}

static void lock_retire(knit__link_t *l, uint32_t c)
{
    if (l->side == KNIT__SIDE_HOST)
        knit__steal_prod_retire(&lock(l)->prod, c);
}

/* Host, every worker gone: release what the calls left in the lock hold. */
static void lock_discard(knit__link_t *l)
{
    lock_link_t *k = lock(l);
    if (l->side != KNIT__SIDE_HOST)
        return;
    knit__endpoint_t view;
    knit__endpoint_init(&view, k->mem, KNIT__SIDE_WORKER);
    knit__steal_cons_t sc;
    knit__ctrl_t *c = knit__shm_ctrl(k->mem);
    knit__steal_cons_init(&sc, &c->req.q_host.word, c->req_slab, 0, k->prod.consumers, 1);
    for (uint32_t left = knit__steal_pending(&sc); left; left &= left - 1) {
        knit__msg_t m;
        knit__slot_take(&view.rx_slab[__builtin_ctz(left)], &view.rx_arena, &view.codec, &m);
        knit_value_free(&m.value);
    }
}

static void lock_close(knit__link_t *l)
{
    free(lock(l)->peers);
    free(lock(l));
}

const knit__link_ops_t knit__shm_lock_ops = {
    .name = "knit",
    .flags = KNIT__LINK_SHARED_MEMORY | KNIT__LINK_SPIN_CHEAP | KNIT__LINK_IN_PLACE,
    .pair = NULL,
    .open = lock_open,
    .send = lock_send,
    .send_hook = NULL,
    .drain = lock_drain,
    .ready = lock_ready,
    .can_send = lock_can_send,
    .wake_peer = lock_wake_peer,
    .wait_fds = lock_wait_fds,
    .park = lock_park,
    .end_tx = lock_end_tx,
    .set_in_place = lock_set_in_place,
    .set_claim = lock_set_claim,
    .retire = lock_retire,
    .discard = lock_discard,
    .close = lock_close,
    .shared_lock = NULL,
};
