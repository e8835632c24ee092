/*
 * Balancers over four thread workers (knitting-internals 4.2): roundRobin (and its alias
 * robinRound) is exactly cyclic with one cursor per task; firstIdle takes the first idle lane
 * and falls back to its own round robin; randomLane spreads over every lane; firstIdleOrRandom
 * takes the first idle lane and falls back to random. Tasks record knit_task_worker().
 */
#include "pool_testutil.h"

#include <stdio.h>
#include <stdlib.h>

#define THREADS 4
#define MAXREC  8192

static pt_gate_t gate;
/* rec_a[i] / rec_b[i]: the worker that ran call i of task a / b (+1; 0 = not run) */
static _Atomic uint32_t rec_a[MAXREC], rec_b[MAXREC];

static int where(_Atomic uint32_t *rec, const knit_task_ctx_t *ctx, const knit_value_t *arg)
{
    int64_t i = arg->u.i64;
    if (i >= 0 && i < MAXREC)
        atomic_store_explicit(&rec[i], knit_task_worker(ctx) + 1, memory_order_relaxed);
    return 0;
}

static int task_a(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    *result = *arg;
    return where(rec_a, ctx, arg);
}

static int task_b(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    *result = *arg;
    return where(rec_b, ctx, arg);
}

/* Held at the gate; records its worker in rec_b. */
static int task_hold(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    where(rec_b, ctx, arg);
    pt_gate_pass(&gate);
    *result = *arg;
    return 0;
}

static const knit_task_def_t tasks[] = {
    {.name = "a", .fn = task_a},
    {.name = "b", .fn = task_b},
    {.name = "hold", .fn = task_hold},
};
#define NTASKS (sizeof tasks / sizeof tasks[0])

static void reset(void)
{
    for (int i = 0; i < MAXREC; i++) {
        atomic_store(&rec_a[i], 0);
        atomic_store(&rec_b[i], 0);
    }
}

static pt_fixture_t fixture = {.gate = &gate, .before = reset};

static knit_pool_t *pool_with(knit_balancer_t b)
{
    knit_pool_opts_t o = {0};
    o.threads = THREADS;
    o.balancer = b;
    knit_pool_t *pool = pt_pool(&o, tasks, NTASKS);
    assert_int_equal(knit_pool_lanes(pool), THREADS);
    assert_false(knit_pool_stealing(pool));
    return pool;
}

static uint32_t lane_of(_Atomic uint32_t *rec, int i)
{
    uint32_t w = atomic_load_explicit(&rec[i], memory_order_relaxed);
    assert_true(w >= 1 && w <= THREADS);
    return w - 1;
}

static void wait_all(knit_future_t **fs, int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(knit_future_wait(fs[i], -1), 0);
        knit_future_release(fs[i]);
    }
}

/* n calls of task a one after another, arguments 0..n-1: each comes back and ran on `lane`. */
static void one_at_a_time_on(knit_pool_t *pool, int n, uint32_t lane)
{
    int ta = pt_task(pool, "a");
    for (int i = 0; i < n; i++) {
        knit_future_t *f = pt_call_i64(pool, ta, i);
        assert_int_equal(pt_wait_i64(f), i);
        knit_future_release(f);
        assert_int_equal(lane_of(rec_a, i), lane);
    }
}

/* Hold a call of "hold" k on every lane from `first` on (held[k], argument k; the ones before
 * are held already), wait until all THREADS are at the gate: held call k ran on lane k. */
static void hold_every_lane(knit_pool_t *pool, knit_future_t **held, int first)
{
    int th = pt_task(pool, "hold");
    for (int k = first; k < THREADS; k++)
        held[k] = pt_call_i64(pool, th, k);
    pt_gate_wait_entered(&gate, THREADS);
    for (int k = 0; k < THREADS; k++)
        assert_int_equal(lane_of(rec_b, k), (uint32_t)k);
}

/* n calls of task a (arguments first, first + 1, ...) made while every lane is held; then the
 * gate opens and all of them settle, the held calls too. */
static void call_while_held(
    knit_pool_t *pool, knit_future_t **held, knit_future_t **fs, int n, int first)
{
    pt_call_range(pool, pt_task(pool, "a"), fs, n, first);
    pt_gate_open(&gate);
    wait_all(fs, n);
    wait_all(held, THREADS);
}

/* Two tasks interleaved irregularly: each task's calls go 0,1,2,3,0,... on its own. */
static void check_round_robin(knit_pool_t *pool)
{
    int ta = pt_task(pool, "a"), tb = pt_task(pool, "b");
    enum { NA = 403 };
    knit_future_t *fs[2 * NA];
    int n = 0, nb = 0;
    for (int i = 0; i < NA; i++) {
        fs[n++] = pt_call_i64(pool, ta, i);
        if (i % 3 != 1) /* b gets two calls out of every three of a */
            fs[n++] = pt_call_i64(pool, tb, nb++);
    }
    wait_all(fs, n);
    for (int i = 0; i < NA; i++)
        assert_int_equal(lane_of(rec_a, i), (uint32_t)(i % THREADS));
    for (int i = 0; i < nb; i++)
        assert_int_equal(lane_of(rec_b, i), (uint32_t)(i % THREADS));
}

static void test_round_robin_cyclic_per_task(void **state)
{
    (void)state;
    knit_pool_t *pool = pool_with(KNIT_BALANCER_ROUND_ROBIN);
    check_round_robin(pool);
    knit_pool_destroy(pool);
}

static void test_robin_round_alias(void **state)
{
    (void)state;
    knit_balancer_t b = KNIT_BALANCER_DEFAULT;
    assert_int_equal(knit_balancer_parse("robinRound", &b), 0);
    assert_int_equal(b, KNIT_BALANCER_ROUND_ROBIN);
    b = KNIT_BALANCER_DEFAULT;
    assert_int_equal(knit_balancer_parse("roundRobin", &b), 0);
    assert_int_equal(b, KNIT_BALANCER_ROUND_ROBIN);
    assert_string_equal(knit_balancer_name(KNIT_BALANCER_ROUND_ROBIN), "roundRobin");
    static const char *const names[]
        = {"roundRobin", "firstIdle", "randomLane", "firstIdleOrRandom"};
    static const knit_balancer_t ids[] = {KNIT_BALANCER_ROUND_ROBIN, KNIT_BALANCER_FIRST_IDLE,
        KNIT_BALANCER_RANDOM_LANE, KNIT_BALANCER_FIRST_IDLE_OR_RANDOM};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(knit_balancer_parse(names[i], &b), 0);
        assert_int_equal(b, ids[i]);
        assert_string_equal(knit_balancer_name(ids[i]), names[i]);
    }
    assert_int_equal(knit_balancer_parse("leastBusy", &b), KNIT_E_INVAL);
    assert_non_null(strstr(knit_errmsg(), "leastBusy"));
    assert_int_equal(knit_balancer_parse(NULL, &b), KNIT_E_INVAL);

    assert_int_equal(knit_balancer_parse("robinRound", &b), 0);
    knit_pool_t *pool = pool_with(b);
    check_round_robin(pool);
    knit_pool_destroy(pool);
}

/* All lanes idle: firstIdle always picks lane 0. */
static void test_first_idle_prefers_first_lane(void **state)
{
    (void)state;
    knit_pool_t *pool = pool_with(KNIT_BALANCER_FIRST_IDLE);
    one_at_a_time_on(pool, 50, 0);
    knit_pool_destroy(pool);
}

/* Busy lanes are skipped; with every lane busy the task's own round robin takes over. */
static void test_first_idle_skips_busy_then_round_robin(void **state)
{
    (void)state;
    knit_pool_t *pool = pool_with(KNIT_BALANCER_FIRST_IDLE);
    knit_future_t *held[THREADS];
    held[0] = pt_call_i64(pool, pt_task(pool, "hold"), 0); /* lane 0 busy */
    one_at_a_time_on(pool, 20, 1);
    hold_every_lane(pool, held, 1); /* the first idle lane each time: 1, 2, 3 */
    enum { FALLBACK = 9 };
    knit_future_t *fs[FALLBACK];
    call_while_held(pool, held, fs, FALLBACK, 100);
    for (int i = 0; i < FALLBACK; i++)
        assert_int_equal(lane_of(rec_a, 100 + i), (uint32_t)(i % THREADS));
    knit_pool_destroy(pool);
}

static void count_lanes(_Atomic uint32_t *rec, int from, int n, int counts[THREADS])
{
    for (int k = 0; k < THREADS; k++)
        counts[k] = 0;
    for (int i = from; i < from + n; i++)
        counts[lane_of(rec, i)]++;
}

/* 4000 calls: every lane gets a fair share (expected 1000 each; the bound is 18 standard
 * deviations wide, so it does not depend on the seed). */
static void test_random_lane_spreads(void **state)
{
    (void)state;
    knit_pool_t *pool = pool_with(KNIT_BALANCER_RANDOM_LANE);
    enum { N = 4000 };
    static knit_future_t *fs[N];
    pt_call_range(pool, pt_task(pool, "a"), fs, N, 0);
    wait_all(fs, N);
    int counts[THREADS];
    count_lanes(rec_a, 0, N, counts);
    for (int k = 0; k < THREADS; k++) {
        if (counts[k] < 500 || counts[k] > 1500)
            print_error("lane %d got %d of %d calls\n", k, counts[k], N);
        assert_true(counts[k] >= 500 && counts[k] <= 1500);
    }
    knit_pool_destroy(pool);
}

/* firstIdleOrRandom: lane 0 while everything is idle; random over all lanes when all busy. */
static void test_first_idle_or_random(void **state)
{
    (void)state;
    knit_pool_t *pool = pool_with(KNIT_BALANCER_FIRST_IDLE_OR_RANDOM);
    one_at_a_time_on(pool, 20, 0);
    knit_future_t *held[THREADS];
    hold_every_lane(pool, held, 0);
    enum { N = 400 };
    static knit_future_t *fs[N];
    call_while_held(pool, held, fs, N, 1000);
    int counts[THREADS];
    count_lanes(rec_a, 1000, N, counts);
    for (int k = 0; k < THREADS; k++) {
        if (counts[k] < 40)
            print_error("lane %d got %d of %d calls\n", k, counts[k], N);
        assert_true(counts[k] >= 40); /* expected 100 */
    }
    knit_pool_destroy(pool);
}

/* Two or more threads and no balancer, dispatcher or inliner: the default topology. Every call
 * still settles and every lane is used. */
static void test_default_balancer_serves_all_lanes(void **state)
{
    (void)state;
    knit_pool_opts_t o = {0};
    o.threads = THREADS;
    knit_pool_t *pool = pt_pool(&o, tasks, NTASKS);
    enum { N = 400 };
    static knit_future_t *fs[N];
    pt_call_range(pool, pt_task(pool, "a"), fs, N, 0);
    pt_wait_range(fs, N, 0);
    knit_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        PT_TEST(test_round_robin_cyclic_per_task, &fixture),
        PT_TEST(test_robin_round_alias, &fixture),
        PT_TEST(test_first_idle_prefers_first_lane, &fixture),
        PT_TEST(test_first_idle_skips_busy_then_round_robin, &fixture),
        PT_TEST(test_random_lane_spreads, &fixture),
        PT_TEST(test_first_idle_or_random, &fixture),
        PT_TEST(test_default_balancer_serves_all_lanes, &fixture),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
