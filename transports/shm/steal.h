/*
 * knit transport - the work-stealing request lock (knitting-internals 1.8, "region Dekker").
 *
 * One shared request lock, published by the host and consumed by up to 31 workers. The
 * consumer word W is not used: consumer c owns ACK[c] (header-line word 8 of slot c) and the
 * pending set is H ^ ACK[0] ^ ... ^ ACK[N-1]. The 32 slots are cut into R = 32/g regions of g
 * lanes; a consumer claims one region at a time by announcing WANT[c] = 1 << region (word 9 of
 * slot c), then re-reading its live peers' WANT words: a senior (lower index) wanting the same
 * region wins, the junior backs off; a senior that sees a junior's claim waits until the junior
 * drops it. A consumer acknowledges what it took (ACK[c]) before it drops WANT[c], so a waiting
 * peer that sees the drop also sees the acknowledgement. LIVE (word 11 of slot 0, host-owned)
 * masks consumers that died, so their stale WANT never blocks anyone.
 */
#ifndef KNIT_TRANSPORTS_SHM_STEAL_H
#define KNIT_TRANSPORTS_SHM_STEAL_H

#include <stdbool.h>
#include <stdint.h>

#include "transports/shm/layout.h"

#define KNIT__STEAL_MAX_CONSUMERS 31u

/* The largest power of two g <= 32 with 32/g >= n+1 (one spare region for a late claimant). */
uint32_t knit__steal_default_region_lanes(uint32_t consumers);

/* Check a user region width: power of two, clamped to [1, default]; KNIT_E_RANGE when it leaves
 * fewer regions than consumers. Writes the width to use. */
int knit__steal_region_lanes(uint32_t consumers, uint32_t requested, uint32_t *out);

typedef struct knit__steal_prod {
    _Atomic uint32_t *h;
    knit__slot_t *slab;
    uint32_t consumers;
    uint32_t last_local;
    uint32_t shadow; /* XOR of the consumers' ACK words, refreshed when the slots look full */
} knit__steal_prod_t;

/* `h` is the lock's H word, `slab` its header slab. Sets LIVE to every consumer. */
void knit__steal_prod_init(
    knit__steal_prod_t *p, _Atomic uint32_t *h, knit__slot_t *slab, uint32_t consumers);
int knit__steal_prod_claim(knit__steal_prod_t *p); /* slot, or KNIT_E_FULL */
void knit__steal_prod_publish(knit__steal_prod_t *p, unsigned slot);
/* The host marks consumer c dead: peers stop waiting for its WANT. */
void knit__steal_prod_retire(knit__steal_prod_t *p, uint32_t c);

typedef struct knit__steal_cons {
    _Atomic uint32_t *h;
    knit__slot_t *slab;
    uint32_t c, consumers;
    uint32_t lanes_per_region, regions;
    uint32_t own_ack;
    uint32_t cursor;
    uint32_t region; /* the region of the current claim */
} knit__steal_cons_t;

void knit__steal_cons_init(knit__steal_cons_t *s, _Atomic uint32_t *h, knit__slot_t *slab,
    uint32_t c, uint32_t consumers, uint32_t lanes_per_region);

/* Slots published and not acknowledged by anyone (a hint: another consumer may take them). */
uint32_t knit__steal_pending(const knit__steal_cons_t *s);

/* Claim a region: the mask of slots now ours (0 = nothing to take right now), at most `max`
 * of the region's pending slots (the earliest published first, by header word 7; 32 = all of
 * them). The caller reads them and then calls knit__steal_release with the same mask; the next
 * claim starts at the next region. */
uint32_t knit__steal_claim(knit__steal_cons_t *s, uint32_t max);
void knit__steal_release(knit__steal_cons_t *s, uint32_t taken);

#endif
