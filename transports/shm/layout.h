/*
 * knit transport - the byte layout of one lane's shared memory.
 *
 * One lane = one memfd mapping holding, in this order, the signal words, the request and
 * return lock sectors, the request and return header slabs, the optional abort bitmap and the
 * two payload arenas. Offsets are knitting's split "byte carpet" (knitting-internals 1.2, 1.9);
 * transports/shm/README.md has the table, and every offset is pinned below with
 * _Static_assert so a change of a struct cannot move a word silently.
 */
#ifndef KNIT_TRANSPORTS_SHM_LAYOUT_H
#define KNIT_TRANSPORTS_SHM_LAYOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "codec/frame.h"

#define KNIT__CACHE_LINE 64u

/* One 32-bit word alone on its cache line (so its writer never shares a line with a reader's
 * writes: false sharing would add a line transfer to every toggle). */
typedef struct knit__line {
    _Atomic uint32_t word;
    uint8_t pad_[KNIT__CACHE_LINE - sizeof(_Atomic uint32_t)];
} __attribute__((aligned(64))) knit__line_t;

/* Signal words (knitting-internals 2.1). */
typedef struct knit__signals {
    knit__line_t op;        /* futex word the worker parks on; the host increments it */
    knit__line_t rx_status; /* worker: 1 awake, 0 about to park */
    knit__line_t tx_status; /* host: 1 while it drains (a hint: keep spinning) */
} knit__signals_t;

/* Lock sector: 4 cache lines (knitting-internals 1.3). */
typedef struct knit__sector {
    knit__line_t q_host;     /* H: toggled by the producer, once per published slot */
    knit__line_t q_worker;   /* W: toggled by the consumer, once per consumed slot */
    knit__line_t alloc_host; /* mirror of the arena writer's allocation toggles */
    knit__line_t alloc_free; /* toggled by whoever frees a region (atomic XOR) */
} knit__sector_t;

/* One slot: 512-byte static payload, then the 64-byte header line: the 8-word task header
 * (plain words, ordered by the queue's H/W toggles, or by the seq transport's sequence word)
 * and 8 auxiliary words used atomically by the stealing protocol and the seq transport
 * (KNIT__AUX_...). */
typedef struct knit__slot {
    uint8_t stat[KNIT__STATIC_BYTES];
    uint32_t hdr[KNIT__HDR_WORDS];
    _Atomic uint32_t aux[KNIT__HDR_LINE_WORDS - KNIT__HDR_WORDS];
} knit__slot_t;

/* The fixed part of a lane ("control block"). */
typedef struct knit__ctrl {
    knit__signals_t sig;
    knit__sector_t req;
    knit__sector_t ret;
    knit__slot_t req_slab[KNIT__SLOTS];
    knit__slot_t ret_slab[KNIT__SLOTS];
} knit__ctrl_t;

/* Offsets, pinned: these are knitting's numbers. */
_Static_assert(sizeof(knit__line_t) == 64, "one word per cache line");
_Static_assert(sizeof(knit__signals_t) == 192, "signal area is 192 bytes");
_Static_assert(offsetof(knit__signals_t, op) == 0, "op at +0");
_Static_assert(offsetof(knit__signals_t, rx_status) == 64, "rxStatus at +64");
_Static_assert(offsetof(knit__signals_t, tx_status) == 128, "txStatus at +128");
_Static_assert(sizeof(knit__sector_t) == 256, "lock sector is 256 bytes");
_Static_assert(offsetof(knit__sector_t, q_host) == 0, "H at sector +0");
_Static_assert(offsetof(knit__sector_t, q_worker) == 64, "W at sector +64");
_Static_assert(offsetof(knit__sector_t, alloc_host) == 128, "allocator hostBits at +128");
_Static_assert(offsetof(knit__sector_t, alloc_free) == 192, "allocator free word at +192");
_Static_assert(sizeof(knit__slot_t) == 576, "slot stride is 576 bytes (9 lines)");
_Static_assert(offsetof(knit__slot_t, hdr) == 512, "header line follows the static area");
_Static_assert(offsetof(knit__slot_t, aux) == 512 + 32, "word 8 of the header line");
_Static_assert(offsetof(knit__ctrl_t, sig) == 0, "signals at 0");
_Static_assert(offsetof(knit__ctrl_t, req) == 192, "request sector at 192");
_Static_assert(offsetof(knit__ctrl_t, ret) == 448, "return sector at 448");
_Static_assert(offsetof(knit__ctrl_t, req_slab) == 704, "request slab at 704");
_Static_assert(offsetof(knit__ctrl_t, ret_slab) == 19136, "return slab at 19136");
_Static_assert(sizeof(knit__ctrl_t) == 37568, "control block is 37568 bytes");
_Static_assert(offsetof(knit__ctrl_t, req_slab) % 64 == 0, "header lines are line-aligned");

/* Auxiliary words: header-line words 8-11 (knitting-internals 1.4; stealing only). */
enum {
    KNIT__AUX_STEAL_ACK = 0,   /* word 8 of slot c: consumer c's ACK */
    KNIT__AUX_STEAL_WANT = 1,  /* word 9 of slot c: consumer c's WANT */
    KNIT__AUX_PAYLOAD_ACK = 2, /* word 10: reserved, unused (as in knitting) */
    KNIT__AUX_STEAL_LIVE = 3,  /* word 11, slot 0 only: live consumers (host) */
    KNIT__AUX_SEQ = 4,         /* word 12: the seq transport's sequence word (shm/seq/ring.h) */
};

/* Bytes of the abort bitmap for `capacity` signals: 0 when no task is abort-aware, else one
 * bit per signal rounded up to 32-bit words and then to a cache line (258 -> 64). */
static inline uint64_t knit__abort_bytes(uint32_t capacity)
{
    if (capacity == 0)
        return 0;
    uint64_t words = (capacity + 31u) / 32u;
    return (words * 4u + 63u) & ~(uint64_t)63u;
}

/* Where everything sits in a lane mapping. */
typedef struct knit__layout {
    uint64_t abort_off;   /* 37568 */
    uint64_t abort_bytes; /* see knit__abort_bytes */
    uint64_t req_arena_off;
    uint64_t ret_arena_off;
    uint64_t arena_bytes; /* payloadMaxByteLength rounded up to 64 */
    uint64_t total;       /* bytes of the whole mapping */
} knit__layout_t;

static inline knit__layout_t knit__layout_make(uint64_t payload_max_bytes, uint32_t abort_capacity)
{
    knit__layout_t l;
    l.abort_off = sizeof(knit__ctrl_t);
    l.abort_bytes = knit__abort_bytes(abort_capacity);
    l.arena_bytes = (payload_max_bytes + 63u) & ~(uint64_t)63u;
    l.req_arena_off = l.abort_off + l.abort_bytes;
    l.ret_arena_off = l.req_arena_off + l.arena_bytes;
    l.total = l.ret_arena_off + l.arena_bytes;
    return l;
}

/*
 * The host's doorbell, a knit addition kept inside knitting's layout: the first word of each
 * payload arena's reserved 64-byte header. Request arena: `parked`, written by the host (1 while
 * it is about to sleep). Return arena: `seq`, incremented by the worker after it published
 * results while the host was parked; the host sleeps on it (futex_waitv over all lanes).
 */
static inline _Atomic uint32_t *knit__bell_parked(uint8_t *map, const knit__layout_t *l)
{
    return (_Atomic uint32_t *)(map + l->req_arena_off);
}

static inline _Atomic uint32_t *knit__bell_seq(uint8_t *map, const knit__layout_t *l)
{
    return (_Atomic uint32_t *)(map + l->ret_arena_off);
}

/* Second word of the request arena header: the host sets it to 1 to stop the worker. */
static inline _Atomic uint32_t *knit__lane_stop(uint8_t *map, const knit__layout_t *l)
{
    return (_Atomic uint32_t *)(map + l->req_arena_off + 4);
}

/* Worker start-up state, second word of the return arena header (worker-written), followed
 * by a NUL-terminated message of at most 55 bytes when start-up failed. */
enum { KNIT__BOOT_STARTING = 0, KNIT__BOOT_READY = 1, KNIT__BOOT_FAILED = 2 };
#define KNIT__BOOT_MSG_BYTES 56u

static inline _Atomic uint32_t *knit__lane_boot(uint8_t *map, const knit__layout_t *l)
{
    return (_Atomic uint32_t *)(map + l->ret_arena_off + 4);
}

static inline char *knit__lane_boot_msg(uint8_t *map, const knit__layout_t *l)
{
    return (char *)(map + l->ret_arena_off + 8);
}

#endif
