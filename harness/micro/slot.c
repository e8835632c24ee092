/*
 * knit-micro: slot benchmarks (slot/..., queue/...).
 *
 * slot/publish_consume/8: knit__ep_send() of an 8-byte bytes value on the host endpoint of a
 * lane, then knit__ep_drain() on the worker endpoint of the same lane, in one thread: claim,
 * encode into the slot, publish, discover, decode, free, acknowledge. The _batch32 variant
 * sends 32 values (every slot) and drains them with one acknowledgement, as a busy lane does.
 *
 * queue/claim_publish_ack: the bare bitmask queue of transports/shm/queue.h on the lane's
 * request words, without the codec: claim, publish, pending, next, ack. Same _batch32 variant.
 *
 * Both run on one thread, so they show the protocol's own cost (atomics, header copies, codec)
 * without any cache-line transfer between cores; items_per_second counts values moved.
 */
#include <stdio.h>
#include <string.h>

#include "gbench/gbench.h"
#include "knit/error.h"
#include "knit/value.h"
#include "micro.h"
#include "transports/shm/queue.h"
#include "transports/shm/shm_lane.h"

typedef struct lane_pair {
    knit__shm_lane_t lane;
    knit__endpoint_t host;
    knit__endpoint_t worker;
} lane_pair_t;

/* What the drain callback saw. */
typedef struct drained {
    unsigned frames;
    int status; /* first decode error, 0 when none */
    uint32_t bad_id;
} drained_t;

static const uint8_t payload8[8] = {1, 2, 3, 4, 5, 6, 7, 8};

/* The worker's side of a call: take the value (and drop it, as a task would after use). */
static int on_frame(void *ctx, knit__msg_t *msg)
{
    drained_t *d = ctx;
    d->frames++;
    int status = msg->status;
    if (status == 0 && (msg->value.kind != KNIT_KIND_BYTES || msg->value.len != 8))
        status = KNIT_E_CORRUPT;
    knit_value_free(&msg->value);
    if (status < 0) {
        d->status = status;
        d->bad_id = msg->id;
        return status;
    }
    return 0;
}

/* Send `n` values, then drain them all: 0 or a negative knit error (reported). */
static int send_then_drain(lane_pair_t *p, unsigned n, knit_gbench_state_t *st)
{
    for (unsigned i = 0; i < n; i++) {
        knit_value_t v = knit_v_bytes(payload8, sizeof payload8);
        int rc = knit__ep_send(&p->host, 0, i, 0, &v);
        if (rc < 0) {
            knit_micro_fail(st, "knit__ep_send", rc);
            return rc;
        }
    }
    drained_t d = {0, 0, 0};
    int got = knit__ep_drain(&p->worker, on_frame, &d, 0, 0);
    if (got < 0) {
        knit_gbench_skip_with_errorf(st, "frame %u did not decode as 8 bytes: %s (%s)", d.bad_id,
            knit_strerror(d.status), knit_errmsg());
        return got;
    }
    if ((unsigned)got != n) {
        knit_gbench_skip_with_errorf(st, "drained %d frames, expected %u", got, n);
        return KNIT_E_CORRUPT;
    }
    return 0;
}

/* def->arg: values per round (1 or 32; at most the 32 slots of a lock). */
static int bm_publish_consume(const knit_gbench_def_t *def, knit_gbench_state_t *st)
{
    unsigned batch = (unsigned)def->arg;
    lane_pair_t p;
    int rc = knit_micro_lane_open(st, &p.lane, &p.host, &p.worker);
    if (rc < 0)
        return rc;
    while (rc == 0 && knit_gbench_keep_running(st, batch))
        rc = send_then_drain(&p, batch, st);
    if (rc == 0)
        knit_gbench_set_items_processed(st, (int64_t)knit_gbench_iterations(st));
    knit__shm_lane_close(&p.lane);
    return rc;
}

/* One round of the bare queue: claim and publish `n` slots, then take and ack them all. */
static int queue_round(
    knit__qprod_t *prod, knit__qcons_t *cons, unsigned n, knit_gbench_state_t *st)
{
    for (unsigned i = 0; i < n; i++) {
        int slot = knit__qprod_claim(prod);
        if (slot < 0) {
            knit_micro_fail(st, "knit__qprod_claim", slot);
            return slot;
        }
        knit__qprod_publish(prod, (unsigned)slot);
    }
    uint32_t pending = knit__qcons_pending(cons), taken = 0;
    for (unsigned i = 0; i < n && pending; i++) {
        unsigned slot = knit__qcons_next(cons, pending);
        pending &= ~(1u << slot);
        taken |= 1u << slot;
    }
    if ((unsigned)__builtin_popcount(taken) != n || pending) {
        knit_gbench_skip_with_errorf(st, "consumer saw %d slots pending, expected %u",
            __builtin_popcount(taken | pending), n);
        return KNIT_E_CORRUPT;
    }
    knit__qcons_ack(cons, taken);
    return 0;
}

static int bm_queue(const knit_gbench_def_t *def, knit_gbench_state_t *st)
{
    unsigned batch = (unsigned)def->arg;
    knit__shm_lane_t lane;
    int rc = knit_micro_lane_open(st, &lane, NULL, NULL);
    if (rc < 0)
        return rc;
    knit__sector_t *req = &knit__shm_ctrl(&lane)->req;
    knit__qprod_t prod;
    knit__qcons_t cons;
    knit__qprod_init(&prod, &req->q_host.word, &req->q_worker.word);
    knit__qcons_init(&cons, &req->q_host.word, &req->q_worker.word);
    while (rc == 0 && knit_gbench_keep_running(st, batch))
        rc = queue_round(&prod, &cons, batch, st);
    if (rc == 0)
        knit_gbench_set_items_processed(st, (int64_t)knit_gbench_iterations(st));
    knit__shm_lane_close(&lane);
    return rc;
}

int knit_micro_register_slot(void)
{
    static const knit_micro_bench_t benches[] = {
        /* arg: values per round */
        {"slot/publish_consume/8", bm_publish_consume, 1},
        {"slot/publish_consume_batch32/8", bm_publish_consume, 32},
        {"queue/claim_publish_ack", bm_queue, 1},
        {"queue/claim_publish_ack_batch32", bm_queue, 32},
    };
    return knit_micro_register_table(benches, sizeof benches / sizeof benches[0], 0);
}
