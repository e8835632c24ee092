/*
 * knit transport - one lane in shared memory, and the two endpoints that use it.
 *
 * knit__shm_lane_create() makes a memfd (close-on-exec), sizes it to the layout of layout.h and
 * maps it once; the same fd can later be handed to a process worker, which maps it with
 * knit__shm_lane_attach(). An endpoint is one side's private view: the host produces on the
 * request lock and consumes the return lock; the worker the other way round. Each producer owns
 * the allocator of the arena that travels with its lock.
 */
#ifndef KNIT_TRANSPORTS_SHM_SHM_LANE_H
#define KNIT_TRANSPORTS_SHM_SHM_LANE_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/arena.h"
#include "codec/codec.h"
#include "knit/value.h"
#include "transports/link.h"
#include "transports/shm/layout.h"
#include "transports/shm/queue.h"

#define KNIT_PAYLOAD_DEFAULT_MAX_BYTES     (64ull << 20) /* payloadMaxByteLength */
#define KNIT_PAYLOAD_DEFAULT_INITIAL_BYTES (4ull << 20)  /* payloadInitialBytes */
#define KNIT_PAYLOAD_LIMIT_MAX_BYTES       (4ull << 30)  /* 32-bit region offsets */

typedef struct knit__lane_cfg {
    uint64_t payload_max_bytes;     /* 0 = 64 MiB; at least 8, at most 4 GiB */
    uint64_t payload_initial_bytes; /* 0 = 4 MiB; clamped to the maximum */
    uint64_t max_payload_bytes;     /* 0 = payload_max_bytes >> 3; at most that */
    uint32_t abort_capacity;        /* abort signals; 0 = no abort bitmap */
    bool process_boundary;          /* endpoints in different processes */
} knit__lane_cfg_t;

/* Fill defaults and check ranges (knitting's payload-config rules). */
int knit__lane_cfg_resolve(knit__lane_cfg_t *cfg);

typedef struct knit__sigbus_guard knit__sigbus_guard_t;

typedef struct knit__shm_lane {
    int fd;
    uint8_t *map;
    knit__sigbus_guard_t *guard; /* named lanes, host side: a worker can shrink the object */
    knit__layout_t layout;
    knit__lane_cfg_t cfg;
    uint32_t cache_epoch; /* lane_cache.c: 0 = never cached; else the epoch it was acquired in */
} knit__shm_lane_t;

int knit__shm_lane_create(knit__shm_lane_t *lane, const knit__lane_cfg_t *cfg);
/* Create the lane as a named POSIX shm object (O_CREAT|O_EXCL, mode 0600). The caller
 * unlinks it (shm_unlink) when it is no longer needed. */
int knit__shm_lane_create_named(
    knit__shm_lane_t *lane, const knit__lane_cfg_t *cfg, const char *name);
/* A named lane the host made was shrunk by a worker: its pages are private zeros now
 * (base/sigbus.h), and nothing in it can be trusted. */
bool knit__shm_lane_faulted(const knit__shm_lane_t *lane);

/* Open a named lane made by knit__shm_lane_create_named. */
int knit__shm_lane_open_named(
    knit__shm_lane_t *lane, const char *name, const knit__lane_cfg_t *cfg);
/* Map an existing lane fd (does not take ownership of fd unless the call succeeds). */
int knit__shm_lane_attach(knit__shm_lane_t *lane, int fd, const knit__lane_cfg_t *cfg);
void knit__shm_lane_close(knit__shm_lane_t *lane);

/*
 * Lane memory for a pool (transports/shm/lane_cache.c). A lane whose endpoints stay in this
 * process (cfg->process_boundary false: thread workers) may come from a small per-process cache
 * of released mappings of the same size instead of a new memfd: creating one and taking the
 * first-touch faults of its pages costs more than a thread start. A cached lane reads exactly
 * like a fresh one: every byte zero, the file the same size. Lanes for process workers are
 * always fresh, and knit__shm_lane_release closes them.
 */
#define KNIT__LANE_CACHE_SLOTS 8u /* released lanes kept per process */

int knit__shm_lane_acquire(knit__shm_lane_t *lane, const knit__lane_cfg_t *cfg);
/* Give an acquired lane back (no endpoint may use it any more): zeroed into the cache when it
 * is eligible and the cache has room, else closed. */
void knit__shm_lane_release(knit__shm_lane_t *lane);
/* Mappings held by the cache, and closing them all (tests). */
unsigned knit__lane_cache_size(void);
void knit__lane_cache_clear(void);

/* The codec limits of frames decoded from this lane (its payload limit and whether the
 * endpoints are in different processes). */
static inline knit__codec_cfg_t knit__shm_lane_codec(const knit__shm_lane_t *lane)
{
    return (knit__codec_cfg_t) {
        .max_payload_bytes = lane->cfg.max_payload_bytes,
        .process_boundary = lane->cfg.process_boundary,
    };
}

static inline knit__ctrl_t *knit__shm_ctrl(const knit__shm_lane_t *lane)
{
    return (knit__ctrl_t *)lane->map;
}

typedef struct knit__endpoint {
    knit__ctrl_t *ctrl;
    knit__slot_t *tx_slab;
    knit__slot_t *rx_slab;
    knit__qprod_t tx;
    knit__qcons_t rx;
    knit__arena_t tx_arena; /* ours to allocate in */
    knit__arena_t rx_arena; /* the peer's; we read and free */
    knit__codec_cfg_t codec;
    uint32_t tx_seq; /* publication counter written to header word 7 */
} knit__endpoint_t;

void knit__endpoint_init(knit__endpoint_t *ep, const knit__shm_lane_t *lane, knit__side_t side);

/* Encode `v` into slot `s` (already claimed) and write its header; publishes nothing. `seq` goes
 * to header word 7 (knitting writes 0 there): consumers order a batch by it, so calls run in
 * the order they were published even though the slot scan itself is only roughly FIFO. */
int knit__slot_fill(knit__slot_t *s, knit__arena_t *arena, const knit__codec_cfg_t *codec,
    uint32_t w0, uint32_t id, uint32_t stamp_ms, uint32_t seq, knit_value_t *v);

/* Decode slot `s` (published to us) into `m`, from a private copy of its header. */
void knit__slot_take(const knit__slot_t *s, const knit__arena_t *arena,
    const knit__codec_cfg_t *codec, knit__msg_t *m);

/*
 * Claim a slot, encode `v` into it and publish it. 0 on success; KNIT_E_FULL when all 32 slots
 * are in use; an encode error otherwise (then nothing is published and no region is held).
 */
int knit__ep_send(
    knit__endpoint_t *ep, uint32_t w0, uint32_t id, uint32_t stamp_ms, knit_value_t *v);

/* knit__ep_send that calls `before_publish(ctx)` once the value is encoded (copied into the
 * slot and arena) and before the frame is published: a worker hands an in-place argument's
 * region back there when the result was that very argument. */
int knit__ep_send_hook(knit__endpoint_t *ep, uint32_t w0, uint32_t id, uint32_t stamp_ms,
    knit_value_t *v, void (*before_publish)(void *ctx), void *ctx);

/*
 * Take the frames published so far, in the queue's order, handing each to `cb`; acknowledge
 * every `ack_every` frames (0 = once at the end) and always at the end. Stops after `max`
 * frames (0 = no limit). Returns the number of frames taken, or the first negative value `cb`
 * returned (the frames taken so far are still acknowledged). `cb` owns msg->value.
 */
int knit__ep_drain(knit__endpoint_t *ep, int (*cb)(void *ctx, knit__msg_t *msg), void *ctx,
    unsigned ack_every, unsigned max);

#endif
