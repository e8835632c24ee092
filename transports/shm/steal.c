/* knit transport - the work-stealing request lock (see transports/shm/steal.h). */
#include "transports/shm/steal.h"

#include <sched.h>

#include "base/error.h"
#include "base/futex.h"

static inline _Atomic uint32_t *ack_word(knit__slot_t *slab, uint32_t c)
{
    return &slab[c].aux[KNIT__AUX_STEAL_ACK];
}

static inline _Atomic uint32_t *want_word(knit__slot_t *slab, uint32_t c)
{
    return &slab[c].aux[KNIT__AUX_STEAL_WANT];
}

static inline _Atomic uint32_t *live_word(knit__slot_t *slab)
{
    return &slab[0].aux[KNIT__AUX_STEAL_LIVE];
}

uint32_t knit__steal_default_region_lanes(uint32_t consumers)
{
    uint32_t g = 32;
    while (g > 1 && 32 / g < consumers + 1)
        g >>= 1;
    return g;
}

int knit__steal_region_lanes(uint32_t consumers, uint32_t requested, uint32_t *out)
{
    if (consumers == 0 || consumers > KNIT__STEAL_MAX_CONSUMERS)
        return knit__err(KNIT_E_RANGE, "%u stealing workers need more than 32 lanes", consumers);
    uint32_t max = knit__steal_default_region_lanes(consumers);
    uint32_t g = requested ? requested : max;
    if (g & (g - 1))
        return knit__err(KNIT_E_RANGE, "regionLanes must be a power of two; got %u", g);
    if (g > max)
        g = max;
    if (32 / g < consumers)
        return knit__err(KNIT_E_RANGE, "regionLanes=%u yields %u regions, too few for %u consumers",
            g, 32 / g, consumers);
    *out = g;
    return 0;
}

/* XOR of the ACK words of consumers in [0, n) except `skip`. */
static uint32_t acks_xor(knit__slot_t *slab, uint32_t n, uint32_t skip)
{
    uint32_t x = 0;
    for (uint32_t c = 0; c < n; c++)
        if (c != skip)
            /* acquire: pairs with consumer c's release store of its ACK; its reads of the
             * slots it acknowledged happen before anyone reuses them. */
            x ^= atomic_load_explicit(ack_word(slab, c), memory_order_acquire);
    return x;
}

void knit__steal_prod_init(
    knit__steal_prod_t *p, _Atomic uint32_t *h, knit__slot_t *slab, uint32_t consumers)
{
    p->h = h;
    p->slab = slab;
    p->consumers = consumers;
    /* relaxed: our own word. */
    p->last_local = atomic_load_explicit(h, memory_order_relaxed);
    p->shadow = acks_xor(slab, consumers, UINT32_MAX);
    /* release: the consumers start after this (thread creation orders it too). */
    atomic_store_explicit(live_word(slab), consumers >= 32 ? UINT32_MAX : (1u << consumers) - 1,
        memory_order_release);
}

int knit__steal_prod_claim(knit__steal_prod_t *p)
{
    uint32_t state = p->last_local ^ p->shadow;
    if (state == UINT32_MAX) {
        p->shadow = acks_xor(p->slab, p->consumers, UINT32_MAX);
        state = p->last_local ^ p->shadow;
        if (state == UINT32_MAX)
            return KNIT_E_FULL;
    }
    return 31 - __builtin_clz(~state);
}

void knit__steal_prod_publish(knit__steal_prod_t *p, unsigned slot)
{
    p->last_local ^= 1u << slot;
    /* release: orders the slot's header and payload writes before the toggle consumers acquire
     * in knit__steal_pending / knit__steal_claim. */
    atomic_store_explicit(p->h, p->last_local, memory_order_release);
}

void knit__steal_prod_retire(knit__steal_prod_t *p, uint32_t c)
{
    /* release: a peer that sees the bit cleared stops waiting for c's WANT. */
    atomic_fetch_and_explicit(live_word(p->slab), ~(1u << c), memory_order_release);
}

void knit__steal_cons_init(knit__steal_cons_t *s, _Atomic uint32_t *h, knit__slot_t *slab,
    uint32_t c, uint32_t consumers, uint32_t lanes_per_region)
{
    s->h = h;
    s->slab = slab;
    s->c = c;
    s->consumers = consumers;
    s->lanes_per_region = lanes_per_region;
    s->regions = 32 / lanes_per_region;
    /* relaxed: our own word. */
    s->own_ack = atomic_load_explicit(ack_word(slab, c), memory_order_relaxed);
    s->cursor = s->regions * c / consumers;
    s->region = 0;
}

static uint32_t pending_now(const knit__steal_cons_t *s)
{
    /* acquire: pairs with the producer's release store of H (slot contents visible). */
    uint32_t h = atomic_load_explicit(s->h, memory_order_acquire);
    return h ^ s->own_ack ^ acks_xor(s->slab, s->consumers, s->c);
}

uint32_t knit__steal_pending(const knit__steal_cons_t *s)
{
    return pending_now(s);
}

static uint32_t region_mask(const knit__steal_cons_t *s, uint32_t r)
{
    uint32_t g = s->lanes_per_region;
    return (g == 32 ? UINT32_MAX : ((1u << g) - 1)) << (r * g);
}

/* The `max` slots of `take` published first, by the producer's publication number (header
 * word 7). Slot order says nothing once slots are reused: the producer refills the highest
 * free slot, so a freshly refilled slot can sit above calls that have waited for long. The
 * slots are published (acquired through H) and cannot be rewritten until acknowledged. */
static uint32_t oldest(const knit__slot_t *slab, uint32_t take, uint32_t max)
{
    if ((uint32_t)__builtin_popcount(take) <= max)
        return take;
    uint32_t kept = 0;
    for (uint32_t n = 0; n < max; n++) {
        uint32_t best = 0, best_seq = 0;
        for (uint32_t left = take & ~kept; left; left &= left - 1) {
            unsigned i = (unsigned)__builtin_ctz(left);
            uint32_t seq = slab[i].hdr[KNIT__W_SCRATCH];
            if (!best || (int32_t)(seq - best_seq) < 0) { /* wrap-safe "older" */
                best = 1u << i;
                best_seq = seq;
            }
        }
        kept |= best;
    }
    return kept;
}

uint32_t knit__steal_claim(knit__steal_cons_t *s, uint32_t max)
{
    uint32_t pending = pending_now(s);
    if (!pending)
        return 0;
    uint32_t pregions = 0;
    for (uint32_t r = 0; r < s->regions; r++)
        if (pending & region_mask(s, r))
            pregions |= 1u << r;
    /* acquire: pairs with the host's release update of LIVE. */
    uint32_t live = atomic_load_explicit(live_word(s->slab), memory_order_acquire);
    uint32_t peer = 0, senior = 0;
    for (uint32_t p = 0; p < s->consumers; p++) {
        if (p == s->c || !(live & (1u << p)))
            continue;
        /* acquire: a peer's WANT; pairs with its seq_cst/release stores. */
        uint32_t w = atomic_load_explicit(want_word(s->slab, p), memory_order_acquire);
        peer |= w;
        if (p < s->c)
            senior |= w;
    }
    uint32_t not_senior = pregions & ~senior;
    if (!not_senior)
        return 0;
    uint32_t cand = (pregions & ~peer) ? (pregions & ~peer) : not_senior;
    uint32_t region = s->cursor;
    for (uint32_t k = 0; k < s->regions; k++) {
        uint32_t r = (s->cursor + k) % s->regions;
        if (cand & (1u << r)) {
            region = r;
            break;
        }
    }
    uint32_t bit = 1u << region;
    _Atomic uint32_t *mine = want_word(s->slab, s->c);
    /* seq_cst store + seq_cst loads of the peers' WANT below: the Dekker handshake. Of two
     * consumers announcing the same region, at least one sees the other's announcement. */
    atomic_store_explicit(mine, bit, memory_order_seq_cst);
    for (uint32_t p = 0; p < s->c; p++) {
        if ((live & (1u << p))
            && (atomic_load_explicit(want_word(s->slab, p), memory_order_seq_cst) & bit)) {
            /* release: nothing was taken; the drop only needs to become visible. */
            atomic_store_explicit(mine, 0, memory_order_release);
            return 0; /* a senior wants it: try again later */
        }
    }
    for (uint32_t p = s->c + 1; p < s->consumers; p++) {
        /* a junior that announced first finishes its claim; wait for it to drop the bit (its
         * ACK store comes first, so the pending set read below already excludes its take) */
        for (unsigned spins = 1;
             (atomic_load_explicit(live_word(s->slab), memory_order_acquire) & (1u << p))
             && (atomic_load_explicit(want_word(s->slab, p), memory_order_seq_cst) & bit);
             spins++) {
            knit__cpu_relax();
            if ((spins & 63u) == 0)
                sched_yield(); /* the junior may be waiting for our CPU (more workers than cores) */
        }
    }
    uint32_t take = oldest(s->slab, pending_now(s) & region_mask(s, region), max);
    if (!take) {
        atomic_store_explicit(mine, 0, memory_order_release);
        return 0;
    }
    s->region = region;
    return take;
}

void knit__steal_release(knit__steal_cons_t *s, uint32_t taken)
{
    s->own_ack ^= taken;
    /* release: our reads of the taken slots happen before anyone sees them acknowledged; and
     * the ACK is visible before the WANT drop below (a waiting senior acquires the drop). */
    atomic_store_explicit(ack_word(s->slab, s->c), s->own_ack, memory_order_release);
    atomic_store_explicit(want_word(s->slab, s->c), 0, memory_order_release);
    s->cursor = (s->region + 1) % s->regions;
}
