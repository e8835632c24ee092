/*
 * The inline lane (knitting-internals 4.3): a lane that runs tasks on the host thread while it
 * drives the pool. Its position among the lanes, how many calls one progress step runs
 * (batch_size), and the dispatch threshold that keeps a task on the workers until it has enough
 * calls in flight. Inline calls are identified by knit_task_worker() == UINT32_MAX.
 */
#include "pool_testutil.h"

#include <stdio.h>

#define MAXREC 1024

static pthread_t host_thread;
#define INL 1000u                    /* rec[] code of the inline lane */
static _Atomic uint32_t rec[MAXREC]; /* worker index + 1 of call i, INL; 0 = not run */
static _Atomic int off_host[MAXREC]; /* an inline call ran on some other thread */
static atomic_uint inline_runs;

static int where(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    uint32_t w = knit_task_worker(ctx);
    int64_t i = arg->u.i64;
    if (w == UINT32_MAX)
        atomic_fetch_add_explicit(&inline_runs, 1, memory_order_relaxed);
    if (i >= 0 && i < MAXREC) {
        atomic_store_explicit(&rec[i], w == UINT32_MAX ? INL : w + 1, memory_order_relaxed);
        if (w == UINT32_MAX && !pthread_equal(pthread_self(), host_thread))
            atomic_store_explicit(&off_host[i], 1, memory_order_relaxed);
    }
    *result = *arg;
    return 0;
}

static int reject_str(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)arg;
    *result = knit_v_str("rejected here");
    return KNIT_TASK_REJECT;
}

static int aware(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)arg;
    *result = knit_v_bool(knit_task_aborted(ctx));
    return 0;
}

static const knit_task_def_t tasks[] = {
    {.name = "aware", .fn = aware, .abort_aware = true},
    {.name = "reject", .fn = reject_str},
    {.name = "where", .fn = where},
};
#define NTASKS (sizeof tasks / sizeof tasks[0])

static int setup(void **state)
{
    (void)state;
    host_thread = pthread_self();
    for (int i = 0; i < MAXREC; i++) {
        atomic_store(&rec[i], 0);
        atomic_store(&off_host[i], 0);
    }
    atomic_store(&inline_runs, 0);
    return 0;
}

static knit_pool_t *make(
    uint32_t threads, knit_inline_position_t pos, uint32_t batch, uint32_t threshold)
{
    knit_pool_opts_t o = {0};
    o.threads = threads;
    o.balancer = KNIT_BALANCER_ROUND_ROBIN;
    o.inliner.enabled = true;
    o.inliner.position = pos;
    o.inliner.batch_size = batch;
    o.inliner.dispatch_threshold = threshold;
    knit_pool_t *pool = pt_pool(&o, tasks, NTASKS);
    assert_int_equal(knit_pool_lanes(pool), threads + 1);
    assert_false(knit_pool_stealing(pool));
    return pool;
}

/* INL for the inline lane, k + 1 for worker k; asserts that call i ran. */
static uint32_t lane_code(int i)
{
    uint32_t r = atomic_load(&rec[i]);
    assert_int_not_equal(r, 0);
    return r;
}

/* Calls i = 0..n-1 that ran on the inline lane ran on the host thread. */
static void assert_inline_on_host(int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(atomic_load(&off_host[i]), 0);
}

/* n calls one after another through `pool`, which is then destroyed: call i runs on lane
 * want(i), `inline_want` of them inline and all of those on the host thread. */
static void check_lanes_in_turn(
    knit_pool_t *pool, int n, uint32_t (*want)(int i), unsigned inline_want)
{
    pt_echo_each(pool, pt_task(pool, "where"), n, 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(lane_code(i), want(i));
    assert_int_equal(atomic_load(&inline_runs), inline_want);
    assert_inline_on_host(n);
    knit_pool_destroy(pool);
}

/* Worker 0, then the inline lane, in turn. */
static uint32_t inline_last_of_two(int i)
{
    return i % 2 == 0 ? 1u : INL;
}

/* The inline lane, then workers 0 and 1, in turn. */
static uint32_t inline_first_of_three(int i)
{
    return i % 3 == 0 ? INL : (uint32_t)(i % 3);
}

static void test_position_last(void **state)
{
    (void)state;
    check_lanes_in_turn(make(1, KNIT_INLINE_LAST, 0, 0), 10, inline_last_of_two, 5);
}

static void test_position_first(void **state)
{
    (void)state;
    check_lanes_in_turn(make(2, KNIT_INLINE_FIRST, 0, 0), 12, inline_first_of_three, 4);
}

/* An inline call runs (and settles) only when the host drives the pool. */
static void test_inline_settles_during_progress(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1, KNIT_INLINE_FIRST, 0, 0);
    knit_future_t *f = pt_call_i64(pool, pt_task(pool, "where"), 0);
    assert_int_equal(knit_future_status(f), KNIT_E_AGAIN);
    assert_int_equal(atomic_load(&inline_runs), 0);
    pt_settle_count_t c = {0};
    knit_future_on_settle(f, pt_count_settle, &c);
    assert_true(knit_pool_progress(pool, 0) >= 1);
    assert_int_equal(atomic_load(&inline_runs), 1);
    assert_int_equal(knit_future_status(f), 0);
    assert_int_equal(knit_future_value(f)->u.i64, 0);
    assert_int_equal(c.calls, 1);
    knit_future_release(f);

    /* a rejection on the inline lane carries its value too */
    f = pt_call_i64(pool, pt_task(pool, "reject"), 1);                /* worker 0 */
    knit_future_t *g = pt_call_i64(pool, pt_task(pool, "reject"), 2); /* inline */
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_TASK);
    assert_int_equal(knit_future_wait(g, -1), KNIT_E_TASK);
    assert_true(pt_value_is_str(knit_future_value(f), "rejected here"));
    assert_true(pt_value_is_str(knit_future_value(g), "rejected here"));
    knit_future_release(f);
    knit_future_release(g);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

/* One progress step runs at most batch_size inline calls (0 means 1). */
static void check_batch(uint32_t batch)
{
    knit_pool_t *pool = make(1, KNIT_INLINE_FIRST, batch, 0);
    int t = pt_task(pool, "where");
    enum { N = 20 }; /* alternate lanes: 10 inline, 10 on the worker */
    knit_future_t *fs[N];
    atomic_store(&inline_runs, 0);
    pt_call_range(pool, t, fs, N, 0);
    uint32_t per = batch ? batch : 1, expect = 0;
    assert_int_equal(atomic_load(&inline_runs), 0);
    while (expect < N / 2) {
        knit_pool_progress(pool, 0);
        expect = expect + per < N / 2 ? expect + per : N / 2;
        assert_int_equal(atomic_load(&inline_runs), expect);
    }
    pt_wait_range(fs, N, 0);
    assert_int_equal(atomic_load(&inline_runs), N / 2);
    knit_pool_destroy(pool);
}

static void test_batch_size(void **state)
{
    (void)state;
    check_batch(0);
    check_batch(1);
    check_batch(3);
    check_batch(64);
}

/* Below the threshold of in-flight calls of a task, only worker lanes are used. */
static void test_threshold_keeps_calls_on_workers(void **state)
{
    (void)state;
    knit_pool_t *pool = make(2, KNIT_INLINE_LAST, 0, 32);
    int t = pt_task(pool, "where");
    enum { N = 12 };
    knit_future_t *fs[N];
    for (int round = 0; round < 3; round++) {
        pt_call_range(pool, t, fs, N, 0);
        pt_wait_range(fs, N, 0);
    }
    assert_int_equal(atomic_load(&inline_runs), 0);
    knit_pool_destroy(pool);
}

/* At or above the threshold the inline lane joins in. */
static void test_threshold_two_uses_inline_lane(void **state)
{
    (void)state;
    knit_pool_t *pool = make(2, KNIT_INLINE_LAST, 0, 2);
    int t = pt_task(pool, "where");
    enum { N = 12 };
    knit_future_t *fs[N];
    pt_call_range(pool, t, fs, N, 0);
    pt_wait_range(fs, N, 0);
    /* the first two calls had fewer than 2 calls in flight: workers only */
    assert_int_not_equal(lane_code(0), INL);
    assert_int_not_equal(lane_code(1), INL);
    unsigned inl = atomic_load(&inline_runs);
    assert_true(inl > 0);
    assert_true(inl < N);
    assert_inline_on_host(N);
    knit_pool_destroy(pool);
}

/* knit_future_abort on a queued inline call: the task sees knit_task_aborted() == true. */
static void test_inline_abort(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1, KNIT_INLINE_FIRST, 0, 0);
    int t = pt_task(pool, "aware");
    knit_future_t *f = pt_call(pool, t, knit_v_null()); /* inline */
    assert_int_equal(knit_future_abort(f), 0);
    assert_int_equal(knit_future_wait(f, -1), 0);
    assert_int_equal(knit_future_value(f)->kind, KNIT_KIND_BOOL);
    assert_true(knit_future_value(f)->u.b);
    knit_future_release(f);
    knit_future_t *w = pt_call(pool, t, knit_v_null()); /* worker 0 */
    knit_future_t *g = pt_call(pool, t, knit_v_null()); /* inline, not aborted */
    assert_int_equal(knit_future_wait(g, -1), 0);
    assert_false(knit_future_value(g)->u.b);
    assert_int_equal(knit_future_wait(w, -1), 0);
    assert_false(knit_future_value(w)->u.b);
    knit_future_release(g);
    knit_future_release(w);
    knit_pool_destroy(pool);
}

/* Inline calls still queued at shutdown reject with KNIT_E_SHUTDOWN; the task never runs. */
static void test_inline_queued_at_shutdown(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1, KNIT_INLINE_FIRST, 0, 0);
    int t = pt_task(pool, "where");
    knit_future_t *f = pt_call_i64(pool, t, 0); /* inline, queued */
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_IMMEDIATE, 0), 0);
    assert_int_equal(knit_future_status(f), KNIT_E_SHUTDOWN);
    assert_int_equal(atomic_load(&inline_runs), 0);
    knit_future_release(f);
    knit_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test_setup(test_position_last, setup),
        cmocka_unit_test_setup(test_position_first, setup),
        cmocka_unit_test_setup(test_inline_settles_during_progress, setup),
        cmocka_unit_test_setup(test_batch_size, setup),
        cmocka_unit_test_setup(test_threshold_keeps_calls_on_workers, setup),
        cmocka_unit_test_setup(test_threshold_two_uses_inline_lane, setup),
        cmocka_unit_test_setup(test_inline_abort, setup),
        cmocka_unit_test_setup(test_inline_queued_at_shutdown, setup),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
