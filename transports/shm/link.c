/*
 * knit transports/shm - the `knit` transport: the link contract (transports/link.h) over the
 * lane memory itself. Frames travel in the shared slots and arenas; a parked peer is woken
 * through futex words in the lane's control block.
 */
#include <stdlib.h>

#include "base/error.h"
#include "base/futex.h"
#include "transports/shm/link.h"
#include "transports/shm/shared_lock.h"
#include "transports/shm/wake.h"

typedef struct shm_link {
    knit__link_t base;
    knit__endpoint_t ep;
    const knit__shm_lane_t *mem;
    /* Host: requests sent and not answered yet, at most KNIT__LINK_WINDOW. The 32 slots alone
     * do not bound them: a worker frees a request slot when it takes the call into its run
     * queue, not when it answers, and a worker that dies takes every call it holds with it. */
    uint32_t outstanding;
} shm_link_t;

static shm_link_t *shm(const knit__link_t *l)
{
    return (shm_link_t *)l;
}

static int shm_open(const knit__link_params_t *params, knit__link_t **out)
{
    shm_link_t *l = calloc(1, sizeof *l);
    if (!l)
        return knit__err(KNIT_E_NOMEM, "a knit link");
    l->base = (knit__link_t) {.ops = &knit__shm_link_ops, .side = params->side};
    l->mem = params->mem;
    knit__endpoint_init(&l->ep, params->mem, params->side);
    l->ep.codec.small = params->codec.small; /* the receiver's storage for small values */
    l->ep.codec.small_ctx = params->codec.small_ctx;
    *out = &l->base;
    return 0;
}

static bool window_full(const knit__link_t *l)
{
    return l->side == KNIT__SIDE_HOST && shm(l)->outstanding >= KNIT__LINK_WINDOW;
}

/* A host's send that went out counts against its window. */
static int sent(knit__link_t *l, int rc)
{
    if (rc == 0 && l->side == KNIT__SIDE_HOST)
        shm(l)->outstanding++;
    return rc;
}

static int shm_send(knit__link_t *l, uint32_t w0, uint32_t id, uint32_t stamp_ms, knit_value_t *v)
{
    if (window_full(l))
        return KNIT_E_FULL;
    return sent(l, knit__ep_send(&shm(l)->ep, w0, id, stamp_ms, v));
}

static int shm_send_hook(knit__link_t *l, uint32_t w0, uint32_t id, uint32_t stamp_ms,
    knit_value_t *v, void (*before_publish)(void *ctx), void *ctx)
{
    return sent(l, knit__ep_send_hook(&shm(l)->ep, w0, id, stamp_ms, v, before_publish, ctx));
}

static int shm_drain(knit__link_t *l, knit__frame_cb cb, void *ctx)
{
    /* The host acknowledges return slots every 8 frames so a busy worker can go on writing
     * while a long batch is being settled; the worker acknowledges its batch once. */
    int n = knit__ep_drain(&shm(l)->ep, cb, ctx, l->side == KNIT__SIDE_HOST ? 8u : 0u, 0);
    if (n > 0 && l->side == KNIT__SIDE_HOST) {
        uint32_t answered = (uint32_t)n;
        shm(l)->outstanding -= answered < shm(l)->outstanding ? answered : shm(l)->outstanding;
    }
    return n;
}

static bool shm_ready(const knit__link_t *l)
{
    return knit__qcons_pending(&shm(l)->ep.rx) != 0;
}

static bool shm_can_send(knit__link_t *l)
{
    /* a free slot (claiming takes nothing yet), and room in the window */
    return !window_full(l) && knit__qprod_claim(&shm(l)->ep.tx) >= 0;
}

static void shm_wake_peer(knit__link_t *l)
{
    if (l->side == KNIT__SIDE_WORKER) {
        knit__ring_host(shm(l)->mem);
        return;
    }
    knit__host_wake_worker(shm(l)->ep.ctrl);
}

unsigned knit__shm_wait_fds(const knit__link_t *l, struct pollfd *out)
{
    (void)l;
    (void)out;
    return 0;
}

static void shm_park(knit__link_t *l, bool (*more)(void *ctx), void *ctx)
{
    knit__lane_park(shm(l)->ep.ctrl, more, ctx);
}

void knit__shm_end_tx(knit__link_t *l)
{
    (void)l; /* the stop word in lane memory says it */
}

static void shm_set_in_place(knit__link_t *l, const bool *tasks, uint32_t ntasks)
{
    shm(l)->ep.codec.in_place = tasks;
    shm(l)->ep.codec.in_place_tasks = ntasks;
}

int knit__shm_release_frame(void *ctx, knit__msg_t *m)
{
    (void)ctx;
    knit_value_free(&m->value);
    return 0;
}

static void shm_discard(knit__link_t *l)
{
    /* what the peer sent and we never read, then what we sent and the peer never took */
    knit__ep_drain(&shm(l)->ep, knit__shm_release_frame, NULL, 0, 0);
    knit__endpoint_t peer;
    knit__endpoint_init(
        &peer, shm(l)->mem, l->side == KNIT__SIDE_HOST ? KNIT__SIDE_WORKER : KNIT__SIDE_HOST);
    knit__ep_drain(&peer, knit__shm_release_frame, NULL, 0, 0);
}

void knit__shm_close(knit__link_t *l)
{
    free(l); /* the lane memory belongs to the lane */
}

const knit__link_ops_t knit__shm_link_ops = {
    .name = "knit",
    .flags = KNIT__LINK_SHARED_MEMORY | KNIT__LINK_SPIN_CHEAP | KNIT__LINK_IN_PLACE,
    .pair = NULL,
    .open = shm_open,
    .send = shm_send,
    .send_hook = shm_send_hook,
    .drain = shm_drain,
    .ready = shm_ready,
    .can_send = shm_can_send,
    .wake_peer = shm_wake_peer,
    .wait_fds = knit__shm_wait_fds,
    .park = shm_park,
    .end_tx = knit__shm_end_tx,
    .set_in_place = shm_set_in_place,
    .set_claim = NULL,
    .retire = NULL,
    .discard = shm_discard,
    .close = knit__shm_close,
    .shared_lock = &knit__shm_lock_ops,
};
