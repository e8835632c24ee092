/*
 * knit transports/shm/seq - the sequence ring of one slab: 32 slots taken in strict order, each
 * published by its own sequence word in its header line (word 12, KNIT__AUX_SEQ).
 *
 * Publication number n goes to slot n % 32. The producer writes the slot's header (and its
 * static area or arena region) with plain stores, then stores n + 1 in the slot's sequence
 * word with release; the consumer waits for exactly n + 1 there with acquire, so the header
 * arrives with the very line transfer that tells it the slot is ready. A stale word reads
 * n + 1 - 32 (or 0 before the first lap), never n + 1, so no lap can be mistaken for another.
 *
 * Hand-back: the consumer stores its count of slots taken, with release, once per batch in the
 * sector's W line (a line of its own). The producer keeps a cached copy and reloads it with
 * acquire only when its cached view says all 32 slots are taken, so the hand-back costs one
 * line transfer per 32 calls instead of one per call. Single writers, no CAS.
 */
#ifndef KNIT_TRANSPORTS_SHM_SEQ_RING_H
#define KNIT_TRANSPORTS_SHM_SEQ_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "knit/error.h"
#include "transports/shm/layout.h"

typedef struct knit__seq_prod {
    knit__slot_t *slab;
    _Atomic uint32_t *taken; /* the consumer's count of slots taken */
    uint32_t next;           /* publication number of the next frame */
    uint32_t seen_taken;     /* cached copy of *taken */
} knit__seq_prod_t;

typedef struct knit__seq_cons {
    knit__slot_t *slab;
    _Atomic uint32_t *taken; /* ours */
    uint32_t next;           /* publication number of the next frame to take */
    uint32_t acked;          /* the value we last stored in *taken */
} knit__seq_cons_t;

static inline _Atomic uint32_t *knit__seq_word(knit__slot_t *slab, uint32_t n)
{
    return &slab[n % KNIT__SLOTS].aux[KNIT__AUX_SEQ];
}

/* Published in slot n: its sequence word holds n + 1. acquire: pairs with the producer's
 * release store in knit__seq_publish; the slot's header, static area and arena region are
 * visible once this is true. */
static inline bool knit__seq_published(knit__slot_t *slab, uint32_t n)
{
    return atomic_load_explicit(knit__seq_word(slab, n), memory_order_acquire) == n + 1u;
}

/* The consumer's view of a slab that may already hold frames (a lane's memory is fresh for
 * every worker, but an endpoint may open after its peer published). */
static inline void knit__seq_cons_init(
    knit__seq_cons_t *c, knit__slot_t *slab, _Atomic uint32_t *taken)
{
    c->slab = slab;
    c->taken = taken;
    /* relaxed: our own word; nobody else writes it. */
    c->next = c->acked = atomic_load_explicit(taken, memory_order_relaxed);
}

/* The producer's view: from the consumer's count, past every frame still published. */
static inline void knit__seq_prod_init(
    knit__seq_prod_t *p, knit__slot_t *slab, _Atomic uint32_t *taken)
{
    p->slab = slab;
    p->taken = taken;
    /* acquire: pairs with the consumer's release store in knit__seq_cons_ack. */
    p->seen_taken = p->next = atomic_load_explicit(taken, memory_order_acquire);
    while (p->next - p->seen_taken < KNIT__SLOTS && knit__seq_published(slab, p->next))
        p->next++;
}

/* A slot is free for the next frame (reloads the consumer's count only when the cached view
 * says all 32 are taken). */
static inline bool knit__seq_room(knit__seq_prod_t *p)
{
    if (p->next - p->seen_taken < KNIT__SLOTS)
        return true;
    /* acquire: pairs with the consumer's release store of its count; its reads of every slot
     * it counted happen before we overwrite them. */
    p->seen_taken = atomic_load_explicit(p->taken, memory_order_acquire);
    return p->next - p->seen_taken < KNIT__SLOTS;
}

/* The slot the next frame goes to (after knit__seq_room said yes). */
static inline knit__slot_t *knit__seq_slot(const knit__seq_prod_t *p)
{
    return &p->slab[p->next % KNIT__SLOTS];
}

/* Publish the next frame (its slot written). */
static inline void knit__seq_publish(knit__seq_prod_t *p)
{
    /* release: orders the header, static-area and arena-region writes of this slot before the
     * sequence word the consumer acquires in knit__seq_published. */
    atomic_store_explicit(knit__seq_word(p->slab, p->next), p->next + 1u, memory_order_release);
    p->next++;
}

/* The next frame to take is published (a read of its header line). */
static inline bool knit__seq_ready(const knit__seq_cons_t *c)
{
    return knit__seq_published(c->slab, c->next);
}

/* Hand every slot taken so far back to the producer with one store. */
static inline void knit__seq_cons_ack(knit__seq_cons_t *c)
{
    if (c->acked == c->next)
        return;
    c->acked = c->next;
    /* release: orders our reads of the slots taken (header and payload copies) before the
     * producer can see them free (its acquire load in knit__seq_room) and overwrite them. */
    atomic_store_explicit(c->taken, c->acked, memory_order_release);
}

#endif
