/*
 * knit transport - the bitmask queue of one lock (knitting-internals 1.6).
 *
 * 32 slots, two 32-bit words: H written only by the producer, W only by the consumer. Slot i is
 * in use iff bit i of H ^ W is set. The producer toggles bit i of H to publish slot i; the
 * consumer toggles it in W to hand the slot back. Single writers, so no CAS anywhere.
 *
 * Producer: claims the highest free slot from a cached shadow of W, reloading W only when the
 * cached view looks full (a stale shadow can hide free slots, never invent them).
 * Consumer: takes pending slots highest first, continuing below the last one taken and wrapping,
 * which with the producer's highest-free choice approximates FIFO; it acknowledges a whole batch
 * with one store.
 */
#ifndef KNIT_TRANSPORTS_SHM_QUEUE_H
#define KNIT_TRANSPORTS_SHM_QUEUE_H

#include <stdatomic.h>
#include <stdint.h>

#include "knit/error.h"

typedef struct knit__qprod {
    _Atomic uint32_t *h; /* ours */
    _Atomic uint32_t *w; /* the consumer's */
    uint32_t last_local; /* the value we last stored in *h */
    uint32_t shadow;     /* cached copy of *w */
} knit__qprod_t;

typedef struct knit__qcons {
    _Atomic uint32_t *h;  /* the producer's */
    _Atomic uint32_t *w;  /* ours */
    uint32_t last_worker; /* the value we last stored in *w */
    uint32_t last_take;   /* index taken last; 32 = none yet */
} knit__qcons_t;

static inline void knit__qprod_init(knit__qprod_t *p, _Atomic uint32_t *h, _Atomic uint32_t *w)
{
    p->h = h;
    p->w = w;
    /* relaxed: our own word; nobody else writes it. */
    p->last_local = atomic_load_explicit(h, memory_order_relaxed);
    /* acquire: pairs with the consumer's release store of W, as in knit__qprod_claim. */
    p->shadow = atomic_load_explicit(w, memory_order_acquire);
}

static inline void knit__qcons_init(knit__qcons_t *c, _Atomic uint32_t *h, _Atomic uint32_t *w)
{
    c->h = h;
    c->w = w;
    /* relaxed: our own word; nobody else writes it. */
    c->last_worker = atomic_load_explicit(w, memory_order_relaxed);
    c->last_take = 32;
}

/* Slots that look in use from the producer's side (may over-report until a refresh). */
static inline uint32_t knit__qprod_busy(const knit__qprod_t *p)
{
    return p->last_local ^ p->shadow;
}

/* Claim the highest free slot: its index, or KNIT_E_FULL. The slot is ours until published. */
static inline int knit__qprod_claim(knit__qprod_t *p)
{
    uint32_t state = p->last_local ^ p->shadow;
    if (state == UINT32_MAX) {
        /* acquire: pairs with the consumer's release store of W; its reads of every slot it
         * acknowledged happen before we overwrite those slots. */
        p->shadow = atomic_load_explicit(p->w, memory_order_acquire);
        state = p->last_local ^ p->shadow;
        if (state == UINT32_MAX)
            return KNIT_E_FULL;
    }
    return 31 - __builtin_clz(~state);
}

/* The slot the next claim will return, judged from the cached shadow (no load of W), or -1
 * when the cached view looks full. A hint: used only to prefetch. */
static inline int knit__qprod_peek(const knit__qprod_t *p)
{
    uint32_t state = p->last_local ^ p->shadow;
    return state == UINT32_MAX ? -1 : 31 - __builtin_clz(~state);
}

/* Publish the slots in `bits` (each claimed and written) with one store of H. */
static inline void knit__qprod_publish_mask(knit__qprod_t *p, uint32_t bits)
{
    p->last_local ^= bits;
    /* release: orders the header, static-area and arena-region writes of these slots before the
     * toggle the consumer acquires in knit__qcons_pending. */
    atomic_store_explicit(p->h, p->last_local, memory_order_release);
}

static inline void knit__qprod_publish(knit__qprod_t *p, unsigned slot)
{
    knit__qprod_publish_mask(p, 1u << slot);
}

/* Slots published and not yet consumed (bit set = take it). */
static inline uint32_t knit__qcons_pending(const knit__qcons_t *c)
{
    /* acquire: pairs with the producer's release store of H; the contents of every slot whose
     * bit we now see toggled are visible to us. */
    return atomic_load_explicit(c->h, memory_order_acquire) ^ c->last_worker;
}

/* Next slot to take from `pending` (non-zero): the highest set bit below the last slot taken,
 * wrapping to the highest overall. */
static inline unsigned knit__qcons_next(knit__qcons_t *c, uint32_t pending)
{
    uint32_t below = c->last_take >= 32 ? 0 : pending & ((1u << c->last_take) - 1u);
    unsigned i = 31u - (unsigned)__builtin_clz(below ? below : pending);
    c->last_take = i;
    return i;
}

/* Hand the slots in `bits` back to the producer with one store of W. */
static inline void knit__qcons_ack(knit__qcons_t *c, uint32_t bits)
{
    c->last_worker ^= bits;
    /* release: orders our reads of these slots (header and payload copies) before the producer
     * can see them free (its acquire load of W) and overwrite them. */
    atomic_store_explicit(c->w, c->last_worker, memory_order_release);
}

#endif
