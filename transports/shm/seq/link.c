/*
 * knit transports/shm/seq - the `seq` transport: the link contract (transports/link.h) over
 * the same lane memory, codec, arenas and wait policy as `knit`, with one sequence word per
 * slot in the slot's header line instead of the bitmask words (ring.h, README.md).
 */
#include <stdlib.h>

#include "base/error.h"
#include "base/futex.h"
#include "transports/shm/link.h"
#include "transports/shm/seq/link.h"
#include "transports/shm/seq/ring.h"
#include "transports/shm/shm_lane.h"
#include "transports/shm/wake.h"

typedef struct seq_link {
    knit__link_t base;
    /* The lane's slabs, arenas and codec limits, set up as for `knit`; its bitmask queue views
     * are unused: frames move through the two rings below. */
    knit__endpoint_t ep;
    knit__seq_prod_t tx;
    knit__seq_cons_t rx;
    const knit__shm_lane_t *mem;
    /* Host: requests sent and not answered yet, at most KNIT__LINK_WINDOW (a worker hands a
     * request slot back when it takes the call into its run queue, not when it answers). */
    uint32_t outstanding;
} seq_link_t;

static seq_link_t *seq(const knit__link_t *l)
{
    return (seq_link_t *)l;
}

/* The sector whose W line holds the count of slots taken from a side's outgoing slab. */
static knit__sector_t *tx_sector(knit__ctrl_t *c, knit__side_t side)
{
    return side == KNIT__SIDE_HOST ? &c->req : &c->ret;
}

static int seq_open(const knit__link_params_t *params, knit__link_t **out)
{
    seq_link_t *l = calloc(1, sizeof *l);
    if (!l)
        return knit__err(KNIT_E_NOMEM, "a seq link");
    knit__side_t side = params->side,
                 peer = side == KNIT__SIDE_HOST ? KNIT__SIDE_WORKER : KNIT__SIDE_HOST;
    l->base = (knit__link_t) {.ops = &knit__seq_link_ops, .side = side};
    l->mem = params->mem;
    knit__endpoint_init(&l->ep, params->mem, side);
    l->ep.codec.small = params->codec.small; /* the receiver's storage for small values */
    l->ep.codec.small_ctx = params->codec.small_ctx;
    knit__ctrl_t *c = l->ep.ctrl;
    knit__seq_prod_init(&l->tx, l->ep.tx_slab, &tx_sector(c, side)->q_worker.word);
    knit__seq_cons_init(&l->rx, l->ep.rx_slab, &tx_sector(c, peer)->q_worker.word);
    *out = &l->base;
    return 0;
}

static bool window_full(const knit__link_t *l)
{
    return l->side == KNIT__SIDE_HOST && seq(l)->outstanding >= KNIT__LINK_WINDOW;
}

static int seq_send_hook(knit__link_t *l, uint32_t w0, uint32_t id, uint32_t stamp_ms,
    knit_value_t *v, void (*before_publish)(void *ctx), void *ctx)
{
    seq_link_t *s = seq(l);
    if (window_full(l))
        return KNIT_E_FULL;
    if (!knit__seq_room(&s->tx))
        return KNIT_E_FULL;
    int rc = knit__slot_fill(
        knit__seq_slot(&s->tx), &s->ep.tx_arena, &s->ep.codec, w0, id, stamp_ms, s->tx.next, v);
    if (rc < 0)
        return rc; /* nothing published, no region held */
    if (before_publish)
        before_publish(ctx);
    knit__seq_publish(&s->tx);
    if (l->side == KNIT__SIDE_HOST)
        s->outstanding++;
    return 0;
}

static int seq_send(knit__link_t *l, uint32_t w0, uint32_t id, uint32_t stamp_ms, knit_value_t *v)
{
    return seq_send_hook(l, w0, id, stamp_ms, v, NULL, NULL);
}

/* Take the frames published on `c` in order, at most one ring's worth (32, as `knit` takes one
 * snapshot of its bitmask: a peer that keeps publishing cannot hold a drain forever), handing
 * each to `cb`; hand the slots back every `ack_every` frames (0: once) and at the end. The
 * count, or the first negative `cb` return. */
static int take(knit__seq_cons_t *c, const knit__arena_t *arena, const knit__codec_cfg_t *codec,
    knit__frame_cb cb, void *ctx, unsigned ack_every)
{
    int n = 0, rc = 0;
    unsigned since_ack = 0;
    while (n < (int)KNIT__SLOTS && knit__seq_ready(c)) {
        /* the next frame's header line, while this one is decoded (in a burst it is there) */
        __builtin_prefetch(knit__seq_word(c->slab, c->next + 1u));
        knit__msg_t m;
        knit__slot_take(&c->slab[c->next % KNIT__SLOTS], arena, codec, &m);
        c->next++;
        n++;
        rc = cb(ctx, &m);
        if (rc < 0)
            break;
        if (ack_every && ++since_ack == ack_every) {
            knit__seq_cons_ack(c);
            since_ack = 0;
        }
    }
    knit__seq_cons_ack(c);
    return rc < 0 ? rc : n;
}

static int seq_drain(knit__link_t *l, knit__frame_cb cb, void *ctx)
{
    seq_link_t *s = seq(l);
    bool host = l->side == KNIT__SIDE_HOST;
    /* as for `knit`: the host hands return slots back every 8 frames so a busy worker can go on
     * writing while a long batch is settled; the worker hands its batch back once */
    int n = take(&s->rx, &s->ep.rx_arena, &s->ep.codec, cb, ctx, host ? 8u : 0u);
    if (n <= 0)
        return n;
    if (host)
        s->outstanding -= (uint32_t)n < s->outstanding ? (uint32_t)n : s->outstanding;
    /* whoever received will most likely send next: ask for the next outgoing header line with
     * intent to write, so its transfer from the peer overlaps the work in between */
    knit__prefetch_w(knit__seq_word(s->tx.slab, s->tx.next));
    return n;
}

static bool seq_ready(const knit__link_t *l)
{
    return knit__seq_ready(&seq(l)->rx);
}

static bool seq_can_send(knit__link_t *l)
{
    return !window_full(l) && knit__seq_room(&seq(l)->tx);
}

static void seq_wake_peer(knit__link_t *l)
{
    if (l->side == KNIT__SIDE_WORKER) {
        knit__ring_host(seq(l)->mem);
        return;
    }
    knit__host_wake_worker(seq(l)->ep.ctrl);
}

static void seq_park(knit__link_t *l, bool (*more)(void *ctx), void *ctx)
{
    knit__lane_park(seq(l)->ep.ctrl, more, ctx);
}

static void seq_set_in_place(knit__link_t *l, const bool *tasks, uint32_t ntasks)
{
    seq(l)->ep.codec.in_place = tasks;
    seq(l)->ep.codec.in_place_tasks = ntasks;
}

static void seq_discard(knit__link_t *l)
{
    seq_link_t *s = seq(l);
    /* what the peer sent and we never took */
    take(&s->rx, &s->ep.rx_arena, &s->ep.codec, knit__shm_release_frame, NULL, 0);
    /* what we sent and the peer never took, read as the peer would (its arena view, no
     * in-place tasks), from the peer's count on */
    knit__endpoint_t peer;
    knit__side_t other = l->side == KNIT__SIDE_HOST ? KNIT__SIDE_WORKER : KNIT__SIDE_HOST;
    knit__endpoint_init(&peer, s->mem, other);
    knit__seq_cons_t c;
    knit__seq_cons_init(&c, s->tx.slab, s->tx.taken);
    take(&c, &peer.rx_arena, &peer.codec, knit__shm_release_frame, NULL, 0);
}

const knit__link_ops_t knit__seq_link_ops = {
    .name = "seq",
    .flags = KNIT__LINK_SHARED_MEMORY | KNIT__LINK_SPIN_CHEAP | KNIT__LINK_IN_PLACE,
    .pair = NULL,
    .open = seq_open,
    .send = seq_send,
    .send_hook = seq_send_hook,
    .drain = seq_drain,
    .ready = seq_ready,
    .can_send = seq_can_send,
    .wake_peer = seq_wake_peer,
    .wait_fds = knit__shm_wait_fds,
    .park = seq_park,
    .end_tx = knit__shm_end_tx,
    .set_in_place = seq_set_in_place,
    .set_claim = NULL,
    .retire = NULL,
    .discard = seq_discard,
    .close = knit__shm_close,
    .shared_lock = NULL, /* no shared request lock: a seq pool never steals */
};
