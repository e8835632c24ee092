/*
 * The bitmask queue of one lock (transports/shm/queue.h; knitting-internals 1.3, 1.6): slot
 * choice, fullness, consumer order, batched acknowledgement, the producer's stale shadow, two
 * locks side by side, randomised single-threaded stress over separate producer and consumer
 * instances, and a producer thread against a consumer on the main thread.
 */
#include "testutil.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/codec.h"
#include "codec/frame.h"
#include "transports/shm/layout.h"
#include "transports/shm/queue.h"
#include "transports/shm/shm_lane.h"

/* --- fixture: the request lock of a real shared lane --------------------------------------- */

typedef struct qfx {
    knit__shm_lane_t lane;
    knit__ctrl_t *c;
    _Atomic uint32_t *h, *w;
    knit__qprod_t p;
    knit__qcons_t q;
} qfx_t;

static qfx_t *qfx_open(void)
{
    qfx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    knit__lane_cfg_t cfg = {.payload_max_bytes = 64 << 10};
    assert_int_equal(knit__shm_lane_create(&f->lane, &cfg), 0);
    f->c = knit__shm_ctrl(&f->lane);
    f->h = &f->c->req.q_host.word;
    f->w = &f->c->req.q_worker.word;
    knit__qprod_init(&f->p, f->h, f->w);
    knit__qcons_init(&f->q, f->h, f->w);
    return f;
}

static void qfx_close(qfx_t *f)
{
    knit__shm_lane_close(&f->lane);
    free(f);
}

static uint32_t load_h(const qfx_t *f)
{
    return atomic_load(f->h);
}

static uint32_t load_w(const qfx_t *f)
{
    return atomic_load(f->w);
}

/* Claim a slot that must be free; returns its index. */
static unsigned claim_ok(knit__qprod_t *p)
{
    int s = knit__qprod_claim(p);
    if (s < 0 || s >= 32)
        fail_msg("claim returned %d", s);
    return (unsigned)s & 31u;
}

/* Claim and publish one slot; returns its index. */
static unsigned publish_one(knit__qprod_t *p)
{
    unsigned s = claim_ok(p);
    knit__qprod_publish(p, s);
    return s;
}

static void put_seq(knit__slot_t *slab, unsigned slot, uint64_t seq)
{
    memcpy(slab[slot].stat, &seq, sizeof seq);
}

static uint64_t get_seq(const knit__slot_t *slab, unsigned slot)
{
    uint64_t seq;
    memcpy(&seq, slab[slot].stat, sizeof seq);
    return seq;
}

/* --- slot choice and fullness -------------------------------------------------------------- */

static void test_claim_takes_highest_free_slot(void **state)
{
    (void)state;
    qfx_t *f = qfx_open();
    assert_int_equal(knit__qprod_claim(&f->p), 31);
    assert_int_equal(knit__qprod_claim(&f->p), 31); /* a claim reserves nothing until published */
    assert_int_equal(load_h(f), 0);
    for (int want = 31; want >= 28; want--)
        assert_int_equal(publish_one(&f->p), want);
    assert_int_equal(load_h(f), 0xF0000000u);
    assert_int_equal(knit__qprod_claim(&f->p), 27);

    /* the consumer hands back slot 30 only; a producer that reads W sees 30 as the highest
     * free slot, below the still busy 31 */
    knit__qcons_ack(&f->q, 1u << 30);
    knit__qprod_t fresh;
    knit__qprod_init(&fresh, f->h, f->w);
    assert_int_equal(knit__qprod_busy(&fresh), 0xB0000000u);
    assert_int_equal(publish_one(&fresh), 30);
    assert_int_equal(knit__qprod_claim(&fresh), 27);
    assert_int_equal(load_h(f) ^ load_w(f), 0xF0000000u);
    qfx_close(f);
}

static void test_33rd_claim_without_consumption_fails_full(void **state)
{
    (void)state;
    qfx_t *f = qfx_open();
    for (int k = 0; k < 32; k++)
        assert_int_equal(publish_one(&f->p), 31 - k);
    assert_int_equal(load_h(f), 0xFFFFFFFFu);
    assert_int_equal(load_w(f), 0);
    assert_int_equal(knit__qprod_claim(&f->p), KNIT_E_FULL);
    assert_int_equal(knit__qprod_claim(&f->p), KNIT_E_FULL);
    assert_int_equal(load_h(f), 0xFFFFFFFFu); /* a failed claim publishes nothing */
    assert_int_equal(knit__qprod_busy(&f->p), 0xFFFFFFFFu);
    /* once the consumer hands one slot back, the exhausted producer refreshes and finds it */
    uint32_t pending = knit__qcons_pending(&f->q);
    assert_int_equal(pending, 0xFFFFFFFFu);
    unsigned i = knit__qcons_next(&f->q, pending);
    assert_int_equal(i, 31);
    knit__qcons_ack(&f->q, 1u << i);
    assert_int_equal(knit__qprod_claim(&f->p), 31);
    qfx_close(f);
}

/* --- consumer side -------------------------------------------------------------------------- */

/* Takes every pending slot and returns them in the order taken, acknowledging once. */
static int take_all(knit__qcons_t *q, unsigned *order)
{
    uint32_t pending = knit__qcons_pending(q), taken = 0;
    int n = 0;
    while (pending) {
        unsigned i = knit__qcons_next(q, pending);
        pending &= ~(1u << i);
        taken |= 1u << i;
        order[n++] = i;
    }
    if (taken)
        knit__qcons_ack(q, taken);
    return n;
}

static void assert_order(const unsigned *got, int n, const unsigned *want, int wn)
{
    assert_int_equal(n, wn);
    for (int k = 0; k < n; k++)
        if (got[k] != want[k])
            fail_msg("take %d was slot %u, want %u", k, got[k], want[k]);
}

static void test_consumer_order_highest_first_then_below_last_wrapping(void **state)
{
    (void)state;
    qfx_t *f = qfx_open();
    unsigned got[32];
    assert_int_equal(f->q.last_take, 32);

    /* no slot taken yet: highest first, then downwards */
    knit__qprod_publish_mask(&f->p, (1u << 31) | (1u << 20) | (1u << 5));
    const unsigned w1[] = {31, 20, 5};
    assert_order(got, take_all(&f->q, got), w1, 3);

    /* continue below the last taken (5), then wrap to the highest */
    knit__qprod_publish_mask(&f->p, (1u << 31) | (1u << 25) | (1u << 3));
    const unsigned w2[] = {3, 31, 25};
    assert_order(got, take_all(&f->q, got), w2, 3);

    knit__qprod_publish_mask(&f->p, (1u << 24) | (1u << 0) | (1u << 26));
    const unsigned w3[] = {24, 0, 26};
    assert_order(got, take_all(&f->q, got), w3, 3);

    /* last taken was 26: nothing below it is pending, so wrap */
    knit__qprod_publish_mask(&f->p, (1u << 30) | (1u << 28));
    const unsigned w4[] = {30, 28};
    assert_order(got, take_all(&f->q, got), w4, 2);

    /* last taken 0 (nothing can be below it) wraps to the highest */
    knit__qprod_publish_mask(&f->p, 1u << 0);
    const unsigned w5[] = {0};
    assert_order(got, take_all(&f->q, got), w5, 1);
    knit__qprod_publish_mask(&f->p, (1u << 30) | (1u << 12) | (1u << 0));
    const unsigned w6[] = {30, 12, 0};
    assert_order(got, take_all(&f->q, got), w6, 3);
    assert_int_equal(load_h(f), load_w(f));
    qfx_close(f);
}

/* Publish `count` sequence numbers; returns how many were published before the lock was full. */
static int publish_seqs(qfx_t *f, int count, uint64_t *next)
{
    int k = 0;
    for (; k < count; k++) {
        int s = knit__qprod_claim(&f->p);
        if (s < 0)
            break;
        put_seq(f->c->req_slab, (unsigned)s, (*next)++);
        knit__qprod_publish(&f->p, (unsigned)s);
    }
    return k;
}

static void take_in_order(qfx_t *f, int want_n, uint64_t *expect)
{
    unsigned got[32];
    int n = take_all(&f->q, got);
    assert_int_equal(n, want_n);
    for (int k = 0; k < n; k++)
        assert_int_equal(get_seq(f->c->req_slab, got[k]), (*expect)++);
}

/* The producer's highest-free claim and the consumer's descending, wrapping scan together give
 * publication order when every round is drained: a fresh lock, a full lock twice over, and
 * bursts that run through slot 0 and wrap after the producer's refresh. (Only approximate FIFO
 * is promised in general: with partial drains a later burst can overtake.) */
static void test_drained_rounds_deliver_in_publication_order(void **state)
{
    (void)state;
    qfx_t *f = qfx_open();
    uint64_t next = 1, expect = 1;
    assert_int_equal(publish_seqs(f, 32, &next), 32);
    take_in_order(f, 32, &expect);
    assert_int_equal(publish_seqs(f, 32, &next), 32); /* refreshes at the first claim */
    take_in_order(f, 32, &expect);
    for (int burst = 0; burst < 6; burst++) { /* 31..27, 26..22, ..., 6..2 */
        assert_int_equal(publish_seqs(f, 5, &next), 5);
        take_in_order(f, 5, &expect);
    }
    /* 1 and 0 from the stale view, then a refresh and 31, 30, 29 */
    assert_int_equal(publish_seqs(f, 5, &next), 5);
    assert_int_equal(knit__qcons_pending(&f->q), 0xE0000003u);
    take_in_order(f, 5, &expect);
    assert_int_equal(expect, next);
    qfx_close(f);
}

static void test_nothing_published_means_nothing_pending_and_no_change(void **state)
{
    (void)state;
    qfx_t *f = qfx_open();
    assert_int_equal(knit__qcons_pending(&f->q), 0);
    assert_int_equal(load_w(f), 0);
    assert_int_equal(f->q.last_take, 32);
    assert_int_equal(f->q.last_worker, 0);

    publish_one(&f->p);
    publish_one(&f->p);
    unsigned got[32];
    assert_int_equal(take_all(&f->q, got), 2);
    uint32_t w = load_w(f), lw = f->q.last_worker, lt = f->q.last_take;
    assert_int_equal(knit__qcons_pending(&f->q), 0);
    assert_int_equal(take_all(&f->q, got), 0);
    assert_int_equal(load_w(f), w);
    assert_int_equal(f->q.last_worker, lw);
    assert_int_equal(f->q.last_take, lt);
    qfx_close(f);
}

static void test_one_ack_store_for_a_batch_leaves_w_equal_h(void **state)
{
    (void)state;
    qfx_t *f = qfx_open();
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < 7; k++)
            publish_one(&f->p);
        uint32_t w_before = load_w(f);
        uint32_t pending = knit__qcons_pending(&f->q), taken = 0;
        assert_int_equal(knit_test_popcount32(pending), 7);
        while (pending) {
            unsigned i = knit__qcons_next(&f->q, pending);
            pending &= ~(1u << i);
            taken |= 1u << i;
            assert_int_equal(load_w(f), w_before); /* taking a slot stores nothing */
        }
        knit__qcons_ack(&f->q, taken);
        assert_int_equal(load_w(f), load_h(f));
        assert_int_equal(load_w(f) ^ w_before, taken);
        assert_int_equal(knit__qcons_pending(&f->q), 0);
    }
    qfx_close(f);
}

/* --- the producer's shadow ------------------------------------------------------------------ */

static void test_sender_shadow_stale_view_then_refresh_on_exhaustion(void **state)
{
    (void)state;
    qfx_t *f = qfx_open();
    for (int want = 31; want >= 2; want--)
        assert_int_equal(publish_one(&f->p), want);
    /* the consumer acknowledges 31 and 30 in the real W */
    uint32_t pending = knit__qcons_pending(&f->q);
    unsigned a = knit__qcons_next(&f->q, pending);
    pending &= ~(1u << a);
    unsigned b = knit__qcons_next(&f->q, pending);
    assert_int_equal(a, 31);
    assert_int_equal(b, 30);
    knit__qcons_ack(&f->q, (1u << 31) | (1u << 30));
    assert_int_equal(load_w(f), 0xC0000000u);
    assert_int_equal(f->p.shadow, 0); /* the sender has not looked */

    /* stale view: the sender uses 1 and 0 */
    assert_int_equal(publish_one(&f->p), 1);
    assert_int_equal(publish_one(&f->p), 0);
    assert_int_equal(f->p.shadow, 0);
    assert_int_equal(knit__qprod_busy(&f->p), 0xFFFFFFFFu);
    /* exhausted: it refreshes and uses 31, then 30 */
    assert_int_equal(publish_one(&f->p), 31);
    assert_int_equal(f->p.shadow, 0xC0000000u);
    assert_int_equal(publish_one(&f->p), 30);
    assert_int_equal(knit__qprod_claim(&f->p), KNIT_E_FULL);
    assert_int_equal(load_h(f) ^ load_w(f), 0xFFFFFFFFu);
    qfx_close(f);
}

/* --- two locks, other parties ------------------------------------------------------------ */

static void test_two_locks_in_one_control_block_do_not_interfere(void **state)
{
    (void)state;
    qfx_t *f = qfx_open();
    knit__ctrl_t *c = f->c;
    knit__qprod_t rp; /* the return lock: worker produces, host consumes */
    knit__qcons_t rq;
    knit__qprod_init(&rp, &c->ret.q_host.word, &c->ret.q_worker.word);
    knit__qcons_init(&rq, &c->ret.q_host.word, &c->ret.q_worker.word);

    for (uint64_t k = 0; k < 32; k++) {
        unsigned s = claim_ok(&f->p);
        put_seq(c->req_slab, s, 1000 + k);
        knit__qprod_publish(&f->p, s);
        if (k % 2 == 0) { /* the return lock fills at half the pace */
            unsigned r = claim_ok(&rp);
            put_seq(c->ret_slab, r, 5000 + k);
            knit__qprod_publish(&rp, r);
        }
    }
    assert_int_equal(load_h(f), 0xFFFFFFFFu);
    assert_int_equal(atomic_load(&c->ret.q_host.word), 0xFFFF0000u);
    assert_int_equal(knit__qprod_claim(&f->p), KNIT_E_FULL);
    assert_int_equal(knit__qprod_claim(&rp), 15); /* the return lock is not full */

    unsigned got[32];
    int n = take_all(&rq, got);
    assert_int_equal(n, 16);
    for (int k = 0; k < n; k++)
        assert_int_equal(get_seq(c->ret_slab, got[k]), 5000 + 2 * (uint64_t)k);
    assert_int_equal(atomic_load(&c->ret.q_worker.word), 0xFFFF0000u);
    assert_int_equal(load_w(f), 0); /* acknowledging one lock leaves the other alone */
    assert_int_equal(knit__qcons_pending(&f->q), 0xFFFFFFFFu);
    n = take_all(&f->q, got);
    assert_int_equal(n, 32);
    for (int k = 0; k < n; k++)
        assert_int_equal(get_seq(c->req_slab, got[k]), 1000 + (uint64_t)k);
    assert_int_equal(knit__qcons_pending(&rq), 0);
    /* the allocator words of both sectors never moved */
    assert_int_equal(atomic_load(&c->req.alloc_host.word), 0);
    assert_int_equal(atomic_load(&c->req.alloc_free.word), 0);
    assert_int_equal(atomic_load(&c->ret.alloc_host.word), 0);
    assert_int_equal(atomic_load(&c->ret.alloc_free.word), 0);
    qfx_close(f);
}

static void test_changes_to_w_alone_produce_no_frames(void **state)
{
    (void)state;
    qfx_t *f = qfx_open();
    /* the consumer's own acknowledgement changes W: nothing new becomes pending */
    publish_one(&f->p);
    publish_one(&f->p);
    publish_one(&f->p);
    unsigned got[32];
    assert_int_equal(take_all(&f->q, got), 3);
    assert_int_equal(knit__qcons_pending(&f->q), 0);
    /* a foreign store to W is not a frame either: only H toggles publish */
    atomic_store(f->w, 0xA5A5A5A5u);
    assert_int_equal(knit__qcons_pending(&f->q), 0);
    assert_int_equal(take_all(&f->q, got), 0);
    atomic_store(f->w, f->q.last_worker);
    unsigned s = publish_one(&f->p);
    assert_int_equal(knit__qcons_pending(&f->q), 1u << s);
    qfx_close(f);
}

static void test_consumer_sees_toggles_of_another_producer_instance(void **state)
{
    (void)state;
    qfx_t *f = qfx_open();
    for (int k = 0; k < 3; k++)
        put_seq(f->c->req_slab, publish_one(&f->p), 10 + (uint64_t)k);
    /* a second producer instance over the same words continues where the first stopped */
    knit__qprod_t other;
    knit__qprod_init(&other, f->h, f->w);
    unsigned s = publish_one(&other);
    assert_int_equal(s, 28);
    put_seq(f->c->req_slab, s, 13);
    assert_int_equal(knit__qcons_pending(&f->q), 0xF0000000u);
    /* take two and acknowledge; a second consumer instance sees only the rest */
    uint32_t pending = knit__qcons_pending(&f->q);
    unsigned a = knit__qcons_next(&f->q, pending);
    unsigned b = knit__qcons_next(&f->q, pending & ~(1u << a));
    knit__qcons_ack(&f->q, (1u << a) | (1u << b));
    knit__qcons_t q2;
    knit__qcons_init(&q2, f->h, f->w);
    assert_int_equal(knit__qcons_pending(&q2), (1u << 29) | (1u << 28));
    unsigned got[32];
    assert_int_equal(take_all(&q2, got), 2);
    assert_int_equal(get_seq(f->c->req_slab, got[0]), 12);
    assert_int_equal(get_seq(f->c->req_slab, got[1]), 13);
    assert_int_equal(load_h(f), load_w(f));
    qfx_close(f);
}

/* --- randomised toggle-protocol stress ----------------------------------------------------- */

static void test_random_toggle_protocol_stress(void **state)
{
    (void)state;
    const uint64_t seed = 0x5EED1234ABCDull;
    knit_test_rng_t rng = {seed};
    qfx_t *f = qfx_open();
    knit__slot_t *slab = f->c->req_slab;
    uint64_t steps = knit_test_iters(1000000, 20000);
    uint64_t in_flight[32] = {0}; /* per slot: the sequence number published there, 0 = free */
    unsigned n_in_flight = 0;
    uint64_t next_seq = 1, delivered = 0, fulls = 0, reinits = 0;
    uint8_t *seen = calloc(steps + 2, 1);
    assert_non_null(seen);
    unsigned model_last_take = 32;

    for (uint64_t step = 0; step < steps; step++) {
        /* phases shift the balance so the lock runs both nearly empty and full */
        static const uint64_t produce_pct[3] = {70, 48, 30};
        uint64_t phase = (step >> 12) % 3;
        uint64_t r = knit_test_below(&rng, 100);
        if (r < produce_pct[phase]) {
            /* produce */
            uint32_t h0 = load_h(f), busy = h0 ^ load_w(f);
            int s = knit__qprod_claim(&f->p);
            if (s == KNIT_E_FULL) {
                KNIT_TEST_CHECK(seed, step, busy == 0xFFFFFFFFu && n_in_flight == 32,
                    "claim reported full with %u slots in flight (busy %#x)", n_in_flight, busy);
                fulls++;
                continue;
            }
            KNIT_TEST_CHECK(seed, step, s >= 0 && s < 32, "claim returned %d", s);
            s &= 31;
            KNIT_TEST_CHECK(seed, step, !(busy & (1u << s)) && in_flight[s] == 0,
                "claimed slot %d is in use (busy %#x)", s, busy);
            /* highest free in the producer's view, and that view never invents free slots */
            uint32_t view = knit__qprod_busy(&f->p);
            KNIT_TEST_CHECK(seed, step, (unsigned)s == 31u - (unsigned)__builtin_clz(~view),
                "claimed %d, highest free in view %#x", s, view);
            KNIT_TEST_CHECK(
                seed, step, (view & busy) == busy, "view %#x hides busy %#x", view, busy);
            put_seq(slab, (unsigned)s, next_seq);
            knit__qprod_publish(&f->p, (unsigned)s);
            uint32_t flipped = h0 ^ load_h(f);
            KNIT_TEST_CHECK(
                seed, step, flipped == 1u << s, "publish of %d flipped %#x", s, flipped);
            in_flight[s] = next_seq++;
            n_in_flight++;
        } else if (r < 90) {
            /* consume up to k slots, acknowledging per slot or as one batch */
            uint32_t pending = knit__qcons_pending(&f->q);
            uint32_t model_pending = 0;
            for (unsigned i = 0; i < 32; i++)
                if (in_flight[i])
                    model_pending |= 1u << i;
            KNIT_TEST_CHECK(seed, step, pending == model_pending, "pending %#x, model %#x", pending,
                model_pending);
            unsigned k = 1 + (unsigned)knit_test_below(&rng, phase == 0 ? 3 : 32);
            bool batch = knit_test_rand(&rng) & 1;
            uint32_t taken = 0;
            while (pending && k--) {
                unsigned i = knit__qcons_next(&f->q, pending);
                uint32_t below
                    = model_last_take >= 32 ? 0 : pending & ((1u << model_last_take) - 1u);
                unsigned want = 31u - (unsigned)__builtin_clz(below ? below : pending);
                KNIT_TEST_CHECK(
                    seed, step, i == want, "took %u, want %u (pending %#x)", i, want, pending);
                model_last_take = i;
                pending &= ~(1u << i);
                uint64_t seq = get_seq(slab, i);
                KNIT_TEST_CHECK(seed, step, seq == in_flight[i],
                    "slot %u holds %" PRIu64 ", published %" PRIu64, i, seq, in_flight[i]);
                KNIT_TEST_CHECK(
                    seed, step, !seen[seq], "sequence %" PRIu64 " delivered twice", seq);
                seen[seq] = 1;
                delivered++;
                in_flight[i] = 0;
                n_in_flight--;
                if (batch) {
                    taken |= 1u << i;
                } else {
                    knit__qcons_ack(&f->q, 1u << i);
                }
            }
            if (taken)
                knit__qcons_ack(&f->q, taken);
        } else if (r < 95) {
            /* a new producer instance over the same words */
            knit__qprod_init(&f->p, f->h, f->w);
            reinits++;
        } else {
            /* a new consumer instance over the same words */
            knit__qcons_init(&f->q, f->h, f->w);
            model_last_take = 32;
            reinits++;
        }
        uint32_t st = load_h(f) ^ load_w(f);
        KNIT_TEST_CHECK(seed, step, knit_test_popcount32(st) == n_in_flight,
            "H^W %#x, %u in flight", st, n_in_flight);
    }
    /* drain the rest */
    unsigned got[32];
    int n = take_all(&f->q, got);
    for (int k = 0; k < n; k++) {
        uint64_t seq = get_seq(slab, got[k]);
        KNIT_TEST_CHECK(seed, steps, seq == in_flight[got[k]] && !seen[seq],
            "final drain: slot %u holds %" PRIu64, got[k], seq);
        seen[seq] = 1;
        delivered++;
    }
    assert_int_equal(delivered, next_seq - 1);
    for (uint64_t q = 1; q < next_seq; q++)
        if (!seen[q])
            fail_msg("seed %#" PRIx64 ": sequence %" PRIu64 " never delivered", seed, q);
    assert_true(fulls > 0 && reinits > 0);
    assert_int_equal(load_h(f), load_w(f));
    free(seen);
    qfx_close(f);
}

/* --- a producer thread and a consumer on the main thread --------------------------------- */

typedef struct xthread {
    knit__ctrl_t *c;
    uint64_t n;
    atomic_bool stop;   /* main -> producer: give up (the main thread found a failure) */
    atomic_bool done;   /* producer -> main: every item published (or it failed) */
    atomic_bool failed; /* producer found a failure; `why` says which */
    char why[200];
} xthread_t;

#define X_MAGIC 0x9E3779B97F4A7C15ull

static void spin_pause(unsigned *spins)
{
    if ((++*spins & 63u) == 0)
        sched_yield();
}

static void *x_producer(void *arg)
{
    xthread_t *x = arg;
    knit__qprod_t p;
    knit__qprod_init(&p, &x->c->req.q_host.word, &x->c->req.q_worker.word);
    for (uint64_t seq = 1; seq <= x->n; seq++) {
        int s;
        unsigned spins = 0;
        while ((s = knit__qprod_claim(&p)) == KNIT_E_FULL) {
            if (atomic_load(&x->stop))
                goto out;
            spin_pause(&spins);
        }
        if (s < 0 || s >= 32) {
            snprintf(x->why, sizeof x->why, "claim returned %d at sequence %" PRIu64, s, seq);
            atomic_store(&x->failed, true);
            goto out;
        }
        knit__slot_t *slot = &x->c->req_slab[s];
        uint64_t prev;
        memcpy(&prev, slot->stat, sizeof prev);
        if (prev != 0) { /* the consumer clears the sequence before it acknowledges */
            snprintf(x->why, sizeof x->why,
                "claimed slot %d still holds unconsumed sequence %" PRIu64 " (now %" PRIu64 ")", s,
                prev, seq);
            atomic_store(&x->failed, true);
            goto out;
        }
        uint64_t inv = ~seq, mix = seq * X_MAGIC;
        memcpy(slot->stat, &seq, 8);
        memcpy(slot->stat + 8, &inv, 8);
        memcpy(slot->stat + KNIT__STATIC_BYTES - 8, &mix, 8);
        slot->hdr[KNIT__W_ID] = (uint32_t)seq;
        slot->hdr[KNIT__W_LEN] = (uint32_t)(seq >> 32);
        knit__qprod_publish(&p, (unsigned)s);
    }
out:
    atomic_store(&x->done, true);
    return NULL;
}

static void test_two_threads_nothing_lost_or_duplicated(void **state)
{
    (void)state;
    qfx_t *f = qfx_open();
    xthread_t *x = calloc(1, sizeof *x);
    assert_non_null(x);
    x->c = f->c;
    x->n = knit_test_iters(1000000, 10000);
    uint8_t *seen = calloc(x->n + 1, 1);
    assert_non_null(seen);
    char why[200] = "";
    uint64_t got = 0, batches = 0;

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, x_producer, x), 0);
    unsigned spins = 0;
    while (got < x->n && !why[0] && !atomic_load(&x->failed)) {
        uint32_t pending = knit__qcons_pending(&f->q);
        if (!pending) {
            if (atomic_load(&x->done) && knit__qcons_pending(&f->q) == 0)
                break; /* the producer finished and nothing more will appear */
            spin_pause(&spins);
            continue;
        }
        uint32_t taken = 0;
        while (pending && !why[0]) {
            unsigned i = knit__qcons_next(&f->q, pending);
            pending &= ~(1u << i);
            knit__slot_t *slot = &f->c->req_slab[i];
            uint64_t seq, inv, mix;
            memcpy(&seq, slot->stat, 8);
            memcpy(&inv, slot->stat + 8, 8);
            memcpy(&mix, slot->stat + KNIT__STATIC_BYTES - 8, 8);
            uint64_t hseq
                = (uint64_t)slot->hdr[KNIT__W_ID] | (uint64_t)slot->hdr[KNIT__W_LEN] << 32;
            if (seq == 0 || seq > x->n || inv != ~seq || mix != seq * X_MAGIC || hseq != seq)
                snprintf(why, sizeof why,
                    "slot %u: torn or stale frame (seq %" PRIu64 ", header %" PRIu64 ")", i, seq,
                    hseq);
            else if (seen[seq])
                snprintf(why, sizeof why, "sequence %" PRIu64 " delivered twice", seq);
            else
                seen[seq] = 1;
            memset(slot->stat, 0, 8); /* consumed: the producer checks this before reuse */
            taken |= 1u << i;
            got++;
        }
        knit__qcons_ack(&f->q, taken);
        batches++;
    }
    atomic_store(&x->stop, true);
    assert_int_equal(pthread_join(th, NULL), 0);

    /* every check happens here, on the main thread */
    if (atomic_load(&x->failed))
        fail_msg("producer thread: %s", x->why);
    if (why[0])
        fail_msg("consumer: %s", why);
    assert_int_equal(got, x->n);
    for (uint64_t s = 1; s <= x->n; s++)
        if (!seen[s])
            fail_msg("sequence %" PRIu64 " lost", s);
    assert_true(batches > 0 && batches <= x->n);
    assert_int_equal(load_h(f), load_w(f));
    free(seen);
    free(x);
    qfx_close(f);
}

/* --- through the endpoints: values in publication order, batch acknowledgement ----------- */

static knit_test_lane_t *epfx_open(void)
{
    knit__lane_cfg_t cfg = {.payload_max_bytes = 1 << 20};
    return knit_test_lane_open(&cfg);
}

static void test_inline_values_round_trip_in_publication_order(void **state)
{
    (void)state;
    knit_test_lane_t *e = epfx_open();
    static const uint8_t two_pow_70[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0x40};
    knit_value_t vals[] = {
        knit_v_f64(1.5),
        knit_v_f64(INFINITY),
        knit_v_f64(-INFINITY),
        knit_v_f64(NAN),
        knit_v_f64(-0.0),
        knit_v_bool(true),
        knit_v_bool(false),
        knit_v_null(),
        knit_v_undefined(),
        knit_v_int64(0),
        knit_v_int64(-7),
        knit_v_int64(INT64_MAX),
        knit_v_bigint(false, two_pow_70, sizeof two_pow_70),
        knit_v_f64(0.1),
    };
    const int n = (int)(sizeof vals / sizeof vals[0]);
    for (int k = 0; k < n; k++) {
        knit_value_t v = vals[k];
        assert_int_equal(knit__ep_send(&e->host, (uint32_t)k, 100 + (uint32_t)k, 0, &v), 0);
    }
    knit_test_capture_t cap = {0};
    assert_int_equal(knit__ep_drain(&e->worker, knit_test_capture_cb, &cap, 0, 0), n);
    for (int k = 0; k < n; k++) {
        knit__msg_t *m = &cap.msgs[k];
        assert_int_equal(m->status, 0);
        assert_int_equal(m->id, 100 + (uint32_t)k); /* publication order */
        assert_int_equal(m->w0, (uint32_t)k);
        if (!knit_value_equal(&m->value, &vals[k]))
            fail_msg("value %d did not round-trip (kind %u -> %u)", k, vals[k].kind, m->value.kind);
        knit_value_free(&m->value);
    }
    knit__ctrl_t *c = knit__shm_ctrl(&e->lane);
    assert_int_equal(atomic_load(&c->req.q_worker.word), atomic_load(&c->req.q_host.word));
    cap.n = 0;
    assert_int_equal(knit__ep_drain(&e->worker, knit_test_capture_cb, &cap, 0, 0), 0);
    knit_test_lane_close(e);
}

static void test_string_round_trips_through_one_lock(void **state)
{
    (void)state;
    knit_test_lane_t *e = epfx_open();
    char big[3000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    knit_value_t vals[] = {knit_v_str("hello, lock"), knit_v_strn(big, sizeof big)};
    for (int k = 0; k < 2; k++) {
        knit_value_t v = vals[k];
        assert_int_equal(knit__ep_send(&e->host, 0, (uint32_t)k, 0, &v), 0);
    }
    assert_int_equal(knit__arena_live(&e->host.tx_arena), 1); /* the long one took a region */
    knit_test_capture_t cap = {0};
    assert_int_equal(knit__ep_drain(&e->worker, knit_test_capture_cb, &cap, 0, 0), 2);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(cap.msgs[k].status, 0);
        assert_int_equal(cap.msgs[k].value.kind, KNIT_KIND_STRING);
        assert_true(knit_value_equal(&cap.msgs[k].value, &vals[k]));
        knit_value_free(&cap.msgs[k].value);
    }
    assert_int_equal(knit__arena_live(&e->host.tx_arena), 0); /* freed by the reader */
    knit_test_lane_close(e);
}

static void test_unknown_tag_slot_is_acked_with_its_batch(void **state)
{
    (void)state;
    knit_test_lane_t *e = epfx_open();
    knit_value_t v = knit_v_f64(2.5);
    assert_int_equal(knit__ep_send(&e->host, 0, 1, 0, &v), 0);
    /* a frame with an unknown tag that names a live region */
    uint32_t idx, start;
    assert_int_equal(knit__arena_alloc(&e->host.tx_arena, 100, &idx, &start), 0);
    unsigned s = claim_ok(&e->host.tx);
    uint32_t hdr[KNIT__HDR_WORDS] = {0};
    hdr[KNIT__W_ID] = 2;
    hdr[KNIT__W_TAG] = 0xBEEF;
    hdr[KNIT__W_START] = start;
    hdr[KNIT__W_LEN] = 100;
    knit__hdr_set_region(hdr, idx);
    memcpy(e->host.tx_slab[s].hdr, hdr, sizeof hdr);
    knit__qprod_publish(&e->host.tx, s);
    v = knit_v_bool(true);
    assert_int_equal(knit__ep_send(&e->host, 0, 3, 0, &v), 0);

    knit_test_capture_t cap = {0};
    assert_int_equal(knit__ep_drain(&e->worker, knit_test_capture_cb, &cap, 0, 0), 3);
    assert_int_equal(cap.msgs[0].id, 1);
    assert_int_equal(cap.msgs[0].status, 0);
    assert_int_equal(cap.msgs[1].id, 2);
    assert_int_equal(cap.msgs[1].status, KNIT_E_CORRUPT);
    assert_int_equal(cap.msgs[1].value.kind, KNIT_KIND_UNDEFINED);
    assert_int_equal(cap.msgs[2].id, 3);
    assert_int_equal(cap.msgs[2].status, 0);
    for (int k = 0; k < 3; k++)
        knit_value_free(&cap.msgs[k].value);
    knit__ctrl_t *c = knit__shm_ctrl(&e->lane);
    assert_int_equal(atomic_load(&c->req.q_worker.word), atomic_load(&c->req.q_host.word));
    assert_int_equal(knit__arena_live(&e->host.tx_arena), 1); /* its region was not freed */
    cap.n = 0;
    assert_int_equal(knit__ep_drain(&e->worker, knit_test_capture_cb, &cap, 0, 0), 0);
    knit_test_lane_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_takes_highest_free_slot),
        cmocka_unit_test(test_33rd_claim_without_consumption_fails_full),
        cmocka_unit_test(test_consumer_order_highest_first_then_below_last_wrapping),
        cmocka_unit_test(test_drained_rounds_deliver_in_publication_order),
        cmocka_unit_test(test_nothing_published_means_nothing_pending_and_no_change),
        cmocka_unit_test(test_one_ack_store_for_a_batch_leaves_w_equal_h),
        cmocka_unit_test(test_sender_shadow_stale_view_then_refresh_on_exhaustion),
        cmocka_unit_test(test_two_locks_in_one_control_block_do_not_interfere),
        cmocka_unit_test(test_changes_to_w_alone_produce_no_frames),
        cmocka_unit_test(test_consumer_sees_toggles_of_another_producer_instance),
        cmocka_unit_test(test_random_toggle_protocol_stress),
        cmocka_unit_test(test_two_threads_nothing_lost_or_duplicated),
        cmocka_unit_test(test_inline_values_round_trip_in_publication_order),
        cmocka_unit_test(test_string_round_trips_through_one_lock),
        cmocka_unit_test(test_unknown_tag_slot_is_acked_with_its_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
