/*
 * The `seq` transport (transports/shm/seq/): its sequence ring in strict order, the 32-slot
 * bound, the hand-back count read only when the producer's cached view is full, laps never
 * mistaken for one another, every payload placement round-tripping through the link, and
 * discard releasing what both directions hold. A producer thread against the consumer on the
 * test's thread checks order and contents under real concurrency.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/futex.h"
#include "transports/link.h"
#include "transports/shm/seq/ring.h"

static knit_test_lane_t *lane_open(void)
{
    knit__lane_cfg_t cfg = {.payload_max_bytes = 1u << 20};
    return knit_test_lane_open(&cfg);
}

static knit__link_t *link_open(knit_test_lane_t *l, knit__side_t side)
{
    knit__link_params_t p = {
        .side = side,
        .mem = &l->lane,
        .codec = knit__shm_lane_codec(&l->lane),
        .fds = {-1, -1},
    };
    knit__link_t *out = NULL;
    assert_int_equal(knit__link_open(knit__transport_ops(KNIT_TRANSPORT_SEQ), &p, &out), 0);
    return out;
}

/* The ring alone on the request slab: 32 publications fill it, the producer does not read the
 * consumer's count again until its cached view says full, and a slot from the previous lap is
 * never taken for the next. */
static void test_ring_order_bound_and_laps(void **s)
{
    (void)s;
    knit_test_lane_t *l = lane_open();
    knit__ctrl_t *c = knit__shm_ctrl(&l->lane);
    knit__seq_prod_t p;
    knit__seq_cons_t q;
    knit__seq_prod_init(&p, c->req_slab, &c->req.q_worker.word);
    knit__seq_cons_init(&q, c->req_slab, &c->req.q_worker.word);
    assert_false(knit__seq_ready(&q));
    for (uint32_t lap = 0; lap < 3; lap++) {
        for (uint32_t i = 0; i < KNIT__SLOTS; i++) {
            assert_true(knit__seq_room(&p));
            assert_ptr_equal(knit__seq_slot(&p), &c->req_slab[i]);
            knit__seq_slot(&p)->hdr[KNIT__W_ID] = lap * 100 + i;
            knit__seq_publish(&p);
        }
        assert_false(knit__seq_room(&p)); /* all 32 taken */
        for (uint32_t i = 0; i < KNIT__SLOTS; i++) {
            assert_true(knit__seq_ready(&q));
            assert_int_equal(q.slab[q.next % KNIT__SLOTS].hdr[KNIT__W_ID], lap * 100 + i);
            q.next++;
            if (i == 0)
                knit__seq_cons_ack(&q);
        }
        /* the slot of the next publication still holds this lap's number: not ready */
        assert_false(knit__seq_ready(&q));
        assert_int_equal(atomic_load(&c->req.q_worker.word), lap * KNIT__SLOTS + 1);
        /* one slot handed back so far: room for one, read once when the view was full */
        assert_true(knit__seq_room(&p));
        assert_int_equal(p.seen_taken, lap * KNIT__SLOTS + 1);
        knit__seq_cons_ack(&q);
        uint32_t cached = p.seen_taken;
        assert_true(knit__seq_room(&p));
        assert_int_equal(p.seen_taken, cached); /* not full: no reload */
        assert_true(knit__seq_room(&p));
    }
    /* the bitmask words are not used */
    assert_int_equal(atomic_load(&c->req.q_host.word), 0);
    /* a producer opening on a slab that holds frames starts past them */
    knit__seq_slot(&p)->hdr[KNIT__W_ID] = 7;
    knit__seq_publish(&p);
    knit__seq_prod_t again;
    knit__seq_prod_init(&again, c->req_slab, &c->req.q_worker.word);
    assert_int_equal(again.next, p.next);
    knit_test_lane_close(l);
}

typedef struct frames {
    int n;
    uint32_t id[64], seq[64];
    knit_value_t v[64];
} frames_t;

static int keep(void *ctx, knit__msg_t *m)
{
    frames_t *f = ctx;
    assert_int_equal(m->status, 0);
    assert_true(f->n < 64);
    f->id[f->n] = m->id;
    f->seq[f->n] = m->seq;
    f->v[f->n++] = m->value;
    return 0;
}

static void frames_free(frames_t *f)
{
    for (int i = 0; i < f->n; i++)
        knit_value_free(&f->v[i]);
    f->n = 0;
}

/* Through the link: the window of 32, strict order with publication numbers, every payload
 * placement (inline, static area, arena region), and room again once the results are read. */
static void test_link_window_order_and_payloads(void **s)
{
    (void)s;
    knit_test_lane_t *l = lane_open();
    knit__link_t *host = link_open(l, KNIT__SIDE_HOST), *worker = link_open(l, KNIT__SIDE_WORKER);
    enum { BIG = 4096 };
    uint8_t *big = malloc(BIG);
    assert_non_null(big);
    for (int i = 0; i < BIG; i++)
        big[i] = (uint8_t)(i * 7);
    frames_t got = {0};
    for (int round = 0; round < 5; round++) {
        assert_true(knit__link_can_send(host));
        for (uint32_t i = 0; i < KNIT__LINK_WINDOW; i++) {
            knit_value_t v = i % 3 == 0 ? knit_v_int64(i)
                : i % 3 == 1            ? knit_v_str("a static string")
                                        : knit_v_bytes(big, BIG);
            assert_int_equal(knit__link_send(host, i, 1000 * round + i, 0, &v), 0);
        }
        knit_value_t extra = knit_v_int64(-1);
        assert_false(knit__link_can_send(host));
        assert_int_equal(knit__link_send(host, 0, 9, 0, &extra), KNIT_E_FULL);
        assert_true(knit__link_ready(worker));
        assert_int_equal(knit__link_drain(worker, keep, &got), (int)KNIT__LINK_WINDOW);
        assert_false(knit__link_ready(worker));
        for (int i = 0; i < got.n; i++) {
            assert_int_equal(got.id[i], 1000 * round + i);
            if (i)
                assert_int_equal(got.seq[i], got.seq[i - 1] + 1);
            knit_value_t want = i % 3 == 0 ? knit_v_int64(i)
                : i % 3 == 1               ? knit_v_str("a static string")
                                           : knit_v_bytes(big, BIG);
            assert_true(knit_value_equal(&got.v[i], &want));
            /* the result goes back the other way */
            assert_int_equal(knit__link_send(worker, 0, got.id[i], 0, &got.v[i]), 0);
        }
        frames_free(&got);
        /* the window is the host's: still full until the results are read */
        assert_false(knit__link_can_send(host));
        assert_true(knit__link_ready(host));
        assert_int_equal(knit__link_drain(host, keep, &got), (int)KNIT__LINK_WINDOW);
        for (int i = 0; i < got.n; i++)
            assert_int_equal(got.id[i], 1000 * round + i);
        frames_free(&got);
    }
    knit__link_close(&worker);
    knit__link_close(&host);
    free(big);
    knit_test_lane_close(l);
}

typedef struct refill {
    knit__link_t *peer;
    uint32_t seen, sent;
} refill_t;

/* Each frame the host takes makes the worker publish one more (room comes back every 8). */
static int take_and_refill(void *ctx, knit__msg_t *m)
{
    refill_t *r = ctx;
    r->seen++;
    knit_value_free(&m->value);
    knit_value_t v = knit_v_int64(r->sent);
    if (knit__link_send(r->peer, 0, r->sent, 0, &v) == 0)
        r->sent++;
    return 0;
}

/* A peer that keeps publishing while a drain runs cannot hold it: one drain takes at most one
 * ring's worth, and the rest waits for the next. */
static void test_drain_takes_one_ring_at_most(void **s)
{
    (void)s;
    knit_test_lane_t *l = lane_open();
    knit__link_t *host = link_open(l, KNIT__SIDE_HOST), *worker = link_open(l, KNIT__SIDE_WORKER);
    refill_t r = {.peer = worker};
    for (; r.sent < KNIT__SLOTS; r.sent++) {
        knit_value_t v = knit_v_int64(r.sent);
        assert_int_equal(knit__link_send(worker, 0, r.sent, 0, &v), 0);
    }
    assert_int_equal(knit__link_drain(host, take_and_refill, &r), (int)KNIT__SLOTS);
    assert_true(r.sent > KNIT__SLOTS); /* it did publish during the drain */
    assert_true(knit__link_ready(host));
    knit__link_close(&worker);
    knit__link_close(&host);
    knit_test_lane_close(l);
}

static int released;

static void count_release(void *data, void *ctx)
{
    (void)ctx;
    free(data);
    released++;
}

static knit_value_t moved(void)
{
    knit_moved_buf_t *m;
    assert_int_equal(knit_moved_new(malloc(32), 32, count_release, NULL, &m), 0);
    knit_value_t v = knit_v_moved(m);
    v.flags |= KNIT_VF_OWNED;
    return v;
}

/* The peer is gone: discard releases what it sent and we never took, and what we sent and it
 * never took (taken from its count on, not before). */
static void test_discard_releases_both_directions(void **s)
{
    (void)s;
    knit_test_lane_t *l = lane_open();
    knit__link_t *host = link_open(l, KNIT__SIDE_HOST), *worker = link_open(l, KNIT__SIDE_WORKER);
    released = 0;
    for (uint32_t i = 0; i < 3; i++) {
        knit_value_t v = moved();
        assert_int_equal(knit__link_send(host, 0, i, 0, &v), 0);
    }
    frames_t got = {0};
    assert_int_equal(knit__link_drain(worker, keep, &got), 3);
    frames_free(&got);
    assert_int_equal(released, 3);
    for (uint32_t i = 0; i < 4; i++) {
        knit_value_t v = moved();
        assert_int_equal(knit__link_send(host, 0, 10 + i, 0, &v), 0);
    }
    for (uint32_t i = 0; i < 2; i++) {
        knit_value_t v = moved();
        assert_int_equal(knit__link_send(worker, 0, i, 0, &v), 0);
    }
    host->ops->discard(host);
    assert_int_equal(released, 3 + 4 + 2);
    assert_false(knit__link_ready(host));
    /* the slab reads as consumed: a worker link opened now finds nothing to take */
    knit__link_close(&worker);
    worker = link_open(l, KNIT__SIDE_WORKER);
    assert_false(knit__link_ready(worker));
    knit__link_close(&worker);
    knit__link_close(&host);
    knit_test_lane_close(l);
}

/* --- a producer thread against the consumer ------------------------------------------------- */

/* The worker's direction (results) has no window, so a worker-side producer thread can run
 * the ring through every state: full, wrapping, the hand-back read only when full. */
typedef struct stress {
    knit__link_t *tx;
    uint32_t calls;
    _Atomic int failed; /* the producer's own failure (asserts stay on the test's thread) */
} stress_t;

static knit_value_t nth(uint32_t i, char *text, size_t cap)
{
    int len = snprintf(text, cap, "call %u", i);
    return i % 2 ? knit_v_int64(i) : knit_v_strn(text, (size_t)len);
}

static void *producer(void *arg)
{
    stress_t *x = arg;
    char text[40];
    for (uint32_t i = 0; i < x->calls;) {
        knit_value_t v = nth(i, text, sizeof text);
        int rc = knit__link_send(x->tx, 0, i, 0, &v);
        if (rc == KNIT_E_FULL) {
            knit__cpu_relax();
            continue;
        }
        if (rc != 0) {
            atomic_store(&x->failed, rc);
            return NULL;
        }
        i++;
    }
    return NULL;
}

typedef struct check {
    uint32_t next;
    uint32_t wrong;
} check_t;

static int check_frame(void *ctx, knit__msg_t *m)
{
    check_t *c = ctx;
    char text[40];
    knit_value_t want = nth(c->next, text, sizeof text);
    if (m->status != 0 || m->id != c->next || !knit_value_equal(&m->value, &want))
        c->wrong++;
    knit_value_free(&m->value);
    c->next++;
    return 0;
}

static void test_producer_thread_in_order(void **s)
{
    (void)s;
    knit_test_lane_t *l = lane_open();
    knit__link_t *tx = link_open(l, KNIT__SIDE_WORKER), *rx = link_open(l, KNIT__SIDE_HOST);
    stress_t x = {.tx = tx, .calls = (uint32_t)knit_test_iters(200000, 5000)};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, producer, &x), 0);
    check_t c = {0};
    while (c.next < x.calls && atomic_load(&x.failed) == 0) {
        int n = knit__link_drain(rx, check_frame, &c);
        assert_true(n >= 0);
        if (n == 0)
            knit__cpu_relax();
    }
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&x.failed), 0);
    assert_int_equal(c.wrong, 0);
    assert_int_equal(c.next, x.calls);
    knit__link_close(&rx);
    knit__link_close(&tx);
    knit_test_lane_close(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_order_bound_and_laps),
        cmocka_unit_test(test_link_window_order_and_payloads),
        cmocka_unit_test(test_drain_takes_one_ring_at_most),
        cmocka_unit_test(test_discard_releases_both_directions),
        cmocka_unit_test(test_producer_thread_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
