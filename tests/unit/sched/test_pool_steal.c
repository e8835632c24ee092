/* Work stealing: the region-Dekker claim protocol and stealing pools through the public API. */
#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "knit/knit.h"
#include "sched/state.h"
#include "transports/shm/steal.h"

/* --- protocol level ------------------------------------------------------------------------ */

/* A lane whose request lock is a stealing lock for `consumers`: its control block; the producer
 * side in *prod. */
static knit__ctrl_t *steal_lock(
    knit__shm_lane_t *lane, knit__steal_prod_t *prod, uint32_t consumers)
{
    knit__lane_cfg_t cfg = {.payload_max_bytes = 1 << 16};
    assert_int_equal(knit__shm_lane_create(lane, &cfg), 0);
    knit__ctrl_t *c = knit__shm_ctrl(lane);
    knit__steal_prod_init(prod, &c->req.q_host.word, c->req_slab, consumers);
    return c;
}

typedef struct steal_rig {
    knit__shm_lane_t lane;
    knit__ctrl_t *c;
    knit__steal_prod_t prod;
    uint32_t consumers, g;
    uint32_t total;
    uint32_t max;               /* slots per claim */
    _Atomic uint32_t *seen;     /* per task: times delivered */
    _Atomic uint32_t taken[31]; /* per consumer */
    _Atomic uint32_t done;
} steal_rig_t;

typedef struct consumer_arg {
    steal_rig_t *rig;
    uint32_t c;
} consumer_arg_t;

static void *consumer(void *arg)
{
    consumer_arg_t *a = arg;
    steal_rig_t *r = a->rig;
    knit__steal_cons_t sc;
    knit__steal_cons_init(&sc, &r->c->req.q_host.word, r->c->req_slab, a->c, r->consumers, r->g);
    while (atomic_load(&r->done) < r->total) {
        uint32_t take = knit__steal_claim(&sc, r->max);
        if (!take) {
            sched_yield();
            continue;
        }
        for (uint32_t left = take; left; left &= left - 1) {
            uint32_t seq;
            memcpy(&seq, r->c->req_slab[__builtin_ctz(left)].stat, sizeof seq);
            if (seq < r->total)
                atomic_fetch_add(&r->seen[seq], 1);
            atomic_fetch_add(&r->taken[a->c], 1);
            atomic_fetch_add(&r->done, 1);
        }
        knit__steal_release(&sc, take);
    }
    return NULL;
}

static void run_protocol(uint32_t consumers, uint32_t g, uint32_t total, uint32_t max)
{
    steal_rig_t r = {.consumers = consumers, .g = g, .total = total, .max = max};
    r.c = steal_lock(&r.lane, &r.prod, consumers);
    r.seen = calloc(total, sizeof *r.seen);
    pthread_t th[31];
    consumer_arg_t args[31];
    for (uint32_t c = 0; c < consumers; c++) {
        args[c] = (consumer_arg_t) {&r, c};
        pthread_create(&th[c], NULL, consumer, &args[c]);
    }
    for (uint32_t seq = 0; seq < total;) {
        int slot = knit__steal_prod_claim(&r.prod);
        if (slot < 0) {
            sched_yield();
            continue;
        }
        memcpy(r.c->req_slab[slot].stat, &seq, sizeof seq);
        knit__steal_prod_publish(&r.prod, (unsigned)slot);
        seq++;
    }
    for (uint32_t c = 0; c < consumers; c++)
        pthread_join(th[c], NULL);
    for (uint32_t i = 0; i < total; i++)
        assert_int_equal(atomic_load(&r.seen[i]), 1); /* exactly once */
    uint32_t sum = 0;
    for (uint32_t c = 0; c < consumers; c++)
        sum += atomic_load(&r.taken[c]);
    assert_int_equal(sum, total);
    free(r.seen);
    knit__shm_lane_close(&r.lane);
}

static void test_exactly_once_2_consumers_g8(void **s)
{
    (void)s;
    run_protocol(2, 8, (uint32_t)knit_test_iters(400000, 400), 32);
}

static void test_exactly_once_3_consumers_g8(void **s)
{
    (void)s;
    run_protocol(3, 8, (uint32_t)knit_test_iters(400000, 400), 32);
}

static void test_exactly_once_4_consumers_g4(void **s)
{
    (void)s;
    run_protocol(4, 4, (uint32_t)knit_test_iters(400000, 400), 32);
}

static void test_exactly_once_2_consumers_g16(void **s)
{
    (void)s;
    run_protocol(2, 16, (uint32_t)knit_test_iters(400000, 400), 32);
}

static void test_exactly_once_3_consumers_one_slot_claims(void **s)
{
    (void)s;
    run_protocol(3, 8, (uint32_t)knit_test_iters(200000, 400), 1);
}

/* Publish one call into a free slot of the stealing lock, numbered as the pool numbers them
 * (header word 7); returns the slot. */
static unsigned publish_numbered(knit__ctrl_t *c, knit__steal_prod_t *prod, uint32_t seq)
{
    int slot = knit__steal_prod_claim(prod);
    assert_true(slot >= 0);
    c->req_slab[slot].hdr[KNIT__W_SCRATCH] = seq;
    knit__steal_prod_publish(prod, (unsigned)slot);
    return (unsigned)slot;
}

/* Narrow claims take the oldest calls of their region even after a slot was refilled (the
 * producer refills the highest free slot, so the newest call can sit above old ones), and
 * move on to the next region. */
static void test_narrow_claims_take_the_oldest_calls(void **s)
{
    (void)s;
    knit__shm_lane_t lane;
    knit__steal_prod_t prod;
    knit__ctrl_t *c = steal_lock(&lane, &prod, 1);
    uint32_t seq = 0;
    for (; seq < 32; seq++)
        assert_int_equal(publish_numbered(c, &prod, seq), 31 - seq); /* highest free first */
    knit__steal_cons_t one;
    knit__steal_cons_init(&one, &c->req.q_host.word, c->req_slab, 0, 1, 16); /* regions 0, 1 */
    uint32_t first = knit__steal_claim(&one, 1);
    assert_int_equal(first, 1u << 15); /* region 0 (slots 0-15): slot 15 holds call 16 */
    knit__steal_release(&one, first);
    assert_int_equal(publish_numbered(c, &prod, seq++), 15); /* call 32 refills slot 15 */
    uint32_t second = knit__steal_claim(&one, 1);
    assert_int_equal(second, 1u << 31); /* the next region: call 0 */
    knit__steal_release(&one, second);
    uint32_t third = knit__steal_claim(&one, 1);
    assert_int_equal(third, 1u << 14); /* call 17, not the newer call 32 in slot 15 above it */
    knit__steal_release(&one, third);
    uint32_t rest1 = knit__steal_claim(&one, 32);       /* wide claims take what is left, */
    assert_int_equal(rest1, 0xFFFF0000u & ~(1u << 31)); /* region by region */
    knit__steal_release(&one, rest1);
    uint32_t rest0 = knit__steal_claim(&one, 32);
    assert_int_equal(rest0, 0xFFFFu & ~(1u << 14));
    knit__steal_release(&one, rest0);
    assert_int_equal(knit__steal_pending(&one), 0);
    knit__shm_lane_close(&lane);
}

static void test_region_width_rules(void **s)
{
    (void)s;
    uint32_t g = 0;
    assert_int_equal(knit__steal_default_region_lanes(1), 16);
    assert_int_equal(knit__steal_default_region_lanes(2), 8);
    assert_int_equal(knit__steal_default_region_lanes(3), 8);
    assert_int_equal(knit__steal_default_region_lanes(4), 4);
    assert_int_equal(knit__steal_default_region_lanes(7), 4);
    assert_int_equal(knit__steal_default_region_lanes(8), 2);
    assert_int_equal(knit__steal_default_region_lanes(16), 1);
    assert_int_equal(knit__steal_default_region_lanes(31), 1);
    assert_int_equal(knit__steal_region_lanes(4, 16, &g), 0);
    assert_int_equal(g, 4); /* clamped to the largest width that leaves a spare region */
    assert_int_equal(knit__steal_region_lanes(4, 3, &g), KNIT_E_RANGE);
    assert_non_null(strstr(knit_errmsg(), "power of two"));
    assert_int_equal(knit__steal_region_lanes(32, 1, &g), KNIT_E_RANGE);
}

static void test_stale_senior_want_blocks_until_retired(void **s)
{
    (void)s;
    knit__shm_lane_t lane;
    knit__steal_prod_t prod;
    knit__ctrl_t *c = steal_lock(&lane, &prod, 2);
    int slot = knit__steal_prod_claim(&prod);
    assert_true(slot >= 0);
    knit__steal_prod_publish(&prod, (unsigned)slot);
    /* consumer 0 (senior) died holding WANT for every region */
    atomic_store(&c->req_slab[0].aux[KNIT__AUX_STEAL_WANT], UINT32_MAX);
    knit__steal_cons_t junior;
    knit__steal_cons_init(&junior, &c->req.q_host.word, c->req_slab, 1, 2, 16);
    assert_int_equal(knit__steal_claim(&junior, 32), 0);
    knit__steal_prod_retire(&prod, 0);
    /* retiring does not touch the dead consumer's WANT word */
    assert_int_equal(atomic_load(&c->req_slab[0].aux[KNIT__AUX_STEAL_WANT]), UINT32_MAX);
    uint32_t take = knit__steal_claim(&junior, 32);
    assert_int_equal(take, 1u << slot);
    knit__steal_release(&junior, take);
    assert_int_equal(knit__steal_pending(&junior), 0);
    knit__shm_lane_close(&lane);
}

/* --- through the pool ---------------------------------------------------------------------- */

static _Atomic uint32_t worker_calls[32];

static int echo_count(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    uint32_t w = knit_task_worker(ctx);
    if (w < 32)
        atomic_fetch_add(&worker_calls[w], 1);
    *result = *arg;
    *arg = knit_v_undefined();
    return 0;
}

static int negate(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = knit_v_int64(-arg->u.i64);
    return 0;
}

static const knit_task_def_t tasks[] = {
    {.name = "echo", .fn = echo_count},
    {.name = "negate", .fn = negate},
};

static void test_defaults_pick_stealing(void **s)
{
    (void)s;
    knit_pool_t *p;
    knit_pool_opts_t o = {.threads = 2};
    assert_int_equal(knit_pool_create(&o, tasks, 2, &p), 0);
    assert_true(knit_pool_stealing(p));
    knit_pool_destroy(p);

    knit_pool_opts_t one = {.threads = 1};
    assert_int_equal(knit_pool_create(&one, tasks, 2, &p), 0);
    assert_false(knit_pool_stealing(p));
    knit_pool_destroy(p);

    knit_pool_opts_t off = {.threads = 2, .steal = KNIT_STEAL_OFF};
    assert_int_equal(knit_pool_create(&off, tasks, 2, &p), 0);
    assert_false(knit_pool_stealing(p));
    knit_pool_destroy(p);

    knit_pool_opts_t bal = {.threads = 2, .balancer = KNIT_BALANCER_ROUND_ROBIN};
    assert_int_equal(knit_pool_create(&bal, tasks, 2, &p), 0);
    assert_false(knit_pool_stealing(p));
    knit_pool_destroy(p);

    knit_pool_opts_t disp = {.threads = 2, .dispatcher = KNIT_DISPATCHER_SERIAL_CHANNEL};
    assert_int_equal(knit_pool_create(&disp, tasks, 2, &p), 0);
    assert_false(knit_pool_stealing(p));
    knit_pool_destroy(p);

    knit_pool_opts_t inl = {.threads = 2, .inliner = {.enabled = true}};
    assert_int_equal(knit_pool_create(&inl, tasks, 2, &p), 0);
    assert_false(knit_pool_stealing(p));
    knit_pool_destroy(p);

    knit_pool_opts_t too_many = {.threads = 32, .steal = KNIT_STEAL_ON};
    assert_int_equal(knit_pool_create(&too_many, tasks, 2, &p), KNIT_E_RANGE);
    assert_non_null(strstr(knit_errmsg(), "32 stealing workers need more than 32 lanes"));
}

/* Many calls of mixed sizes through a stealing pool: each settles once with its own value. */
static void run_pool_stress(uint32_t threads, uint32_t n)
{
    knit_pool_t *p;
    knit_pool_opts_t o = {.threads = threads, .steal = KNIT_STEAL_ON};
    assert_int_equal(knit_pool_create(&o, tasks, 2, &p), 0);
    assert_true(knit_pool_stealing(p));
    memset(worker_calls, 0, sizeof worker_calls);
    int echo = knit_task_index(p, "echo"), neg = knit_task_index(p, "negate");
    knit_future_t **fs = calloc(n, sizeof *fs);
    uint8_t *buf = malloc(8192);
    knit_test_rng_t rng = {0x5eed0000u + threads};
    for (uint32_t i = 0; i < n; i++) {
        if (i % 3 == 0) {
            knit_value_t v = knit_v_int64(i);
            assert_int_equal(knit_call(p, neg, &v, &fs[i]), 0);
        } else {
            size_t len = 8 + (size_t)knit_test_below(&rng, 4096); /* static and dynamic */
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t)(i * 31 + k);
            knit_value_t v = knit_v_bytes(buf, len);
            assert_int_equal(knit_call(p, echo, &v, &fs[i]), 0);
        }
    }
    rng.s = 0x5eed0000u + threads;
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(knit_future_wait(fs[i], -1), 0);
        const knit_value_t *v = knit_future_value(fs[i]);
        if (i % 3 == 0) {
            assert_int_equal(v->kind, KNIT_KIND_INT64);
            assert_int_equal(v->u.i64, -(int64_t)i);
        } else {
            size_t len = 8 + (size_t)knit_test_below(&rng, 4096);
            assert_int_equal(v->kind, KNIT_KIND_BYTES);
            assert_int_equal(v->len, len);
            const uint8_t *b = v->u.ptr;
            for (size_t k = 0; k < len; k++)
                assert_int_equal(b[k], (uint8_t)(i * 31 + k));
        }
        knit_future_release(fs[i]);
    }
    assert_int_equal(knit_pool_pending(p), 0);
    knit_pool_destroy(p);
    free(fs);
    free(buf);
}

static void test_stealing_2_workers(void **s)
{
    (void)s;
    run_pool_stress(2, (uint32_t)knit_test_iters(100000, 300));
}

static void test_stealing_3_workers(void **s)
{
    (void)s;
    run_pool_stress(3, (uint32_t)knit_test_iters(100000, 300));
}

static void test_stealing_4_workers(void **s)
{
    (void)s;
    run_pool_stress(4, (uint32_t)knit_test_iters(100000, 300));
}

/* After the work is done every stealing worker parks (knitting's stealing workers never did). */
static void test_idle_stealing_workers_park(void **s)
{
    (void)s;
    knit_pool_t *p;
    knit_pool_opts_t o = {.threads = 3, .steal = KNIT_STEAL_ON};
    assert_int_equal(knit_pool_create(&o, tasks, 2, &p), 0);
    knit_value_t v = knit_v_int64(5);
    knit_future_t *f;
    assert_int_equal(knit_call(p, knit_task_index(p, "negate"), &v, &f), 0);
    assert_int_equal(knit_future_wait(f, -1), 0);
    knit_future_release(f);
    for (uint32_t i = 0; i < 3; i++) {
        knit__ctrl_t *c = knit__shm_ctrl(&p->lanes[i].mem);
        /* waits for the condition itself; a worker that never parks fails by test timeout */
        while (atomic_load(&c->sig.rx_status.word) != 0)
            sched_yield();
    }
    /* and a parked pool still answers */
    v = knit_v_int64(6);
    assert_int_equal(knit_call(p, knit_task_index(p, "negate"), &v, &f), 0);
    assert_int_equal(knit_future_wait(f, -1), 0);
    assert_int_equal(knit_future_value(f)->u.i64, -6);
    knit_future_release(f);
    knit_pool_destroy(p);
}

static int fail_worker_0(void *ctx, uint32_t worker)
{
    (void)ctx;
    return worker == 0 ? 5 : 0;
}

/* A stealing worker that failed to start must not swallow the wake-ups: the others serve. */
static void test_stealing_survives_a_failed_worker(void **s)
{
    (void)s;
    knit_pool_t *p;
    knit_pool_opts_t o = {.threads = 4, .steal = KNIT_STEAL_ON, .wait = {.spin_ns = -1}};
    o.worker.bootstrap = fail_worker_0;
    assert_int_equal(knit_pool_create(&o, tasks, 2, &p), 0);
    int neg = knit_task_index(p, "negate");
    for (int round = 0; round < 50; round++) { /* one call at a time: each needs a wake-up */
        knit_value_t v = knit_v_int64(round);
        knit_future_t *f;
        assert_int_equal(knit_call(p, neg, &v, &f), 0);
        assert_int_equal(knit_future_wait(f, -1), 0);
        assert_int_equal(knit_future_value(f)->u.i64, -round);
        knit_future_release(f);
    }
    knit_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_stealing_survives_a_failed_worker),
        cmocka_unit_test(test_region_width_rules),
        cmocka_unit_test(test_exactly_once_2_consumers_g8),
        cmocka_unit_test(test_exactly_once_3_consumers_g8),
        cmocka_unit_test(test_exactly_once_4_consumers_g4),
        cmocka_unit_test(test_exactly_once_2_consumers_g16),
        cmocka_unit_test(test_exactly_once_3_consumers_one_slot_claims),
        cmocka_unit_test(test_narrow_claims_take_the_oldest_calls),
        cmocka_unit_test(test_stale_senior_want_blocks_until_retired),
        cmocka_unit_test(test_defaults_pick_stealing),
        cmocka_unit_test(test_stealing_2_workers),
        cmocka_unit_test(test_stealing_3_workers),
        cmocka_unit_test(test_stealing_4_workers),
        cmocka_unit_test(test_idle_stealing_workers_park),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
