/*
 * Abort-aware tasks (knitting-internals 6.2): knit_future_abort sets the call's abort bit, the
 * task polling knit_task_aborted() sees it and the call settles with what the task returns;
 * knit_future_cancel rejects at once with KNIT_E_ABORTED (and signals an abort-aware task);
 * aborting a task that is not abort-aware is KNIT_E_INVAL; abort ids are a per-lane capacity
 * whose exhaustion rejects calls with KNIT_E_ABORT_EXHAUSTED without leaking anything.
 */
#include "pool_testutil.h"

#include <stdio.h>

static pt_gate_t gate;
static atomic_uint stopped;     /* abort-aware tasks that saw their abort and returned */
static atomic_uint saw_aborted; /* "aware_echo" runs that started with the abort bit set */

/* Poll until aborted, then resolve with "stopped". */
static int until_aborted(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)arg;
    while (!knit_task_aborted(ctx))
        sched_yield();
    atomic_fetch_add_explicit(&stopped, 1, memory_order_relaxed);
    *result = knit_v_str("stopped");
    return 0;
}

/* Poll until aborted, then reject with "aborted by caller". */
static int until_aborted_reject(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)arg;
    while (!knit_task_aborted(ctx))
        sched_yield();
    *result = knit_v_str("aborted by caller");
    return KNIT_TASK_REJECT;
}

/* Abort-aware, returns at once; notes whether its abort bit was already set. */
static int aware_echo(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    if (knit_task_aborted(ctx))
        atomic_fetch_add_explicit(&saw_aborted, 1, memory_order_relaxed);
    return pt_task_echo(ctx, arg, result);
}

static const knit_task_def_t tasks[] = {
    {.name = "aware_echo", .fn = aware_echo, .abort_aware = true},
    {.name = "echo", .fn = pt_task_echo},
    {.name = "gated", .fn = pt_task_gated, .user_data = &gate},
    {.name = "until_aborted", .fn = until_aborted, .abort_aware = true},
    {.name = "until_aborted_reject", .fn = until_aborted_reject, .abort_aware = true},
};
#define NTASKS (sizeof tasks / sizeof tasks[0])

static void reset(void)
{
    atomic_store(&stopped, 0);
    atomic_store(&saw_aborted, 0);
}

static pt_fixture_t fixture = {.gate = &gate, .before = reset};

static knit_pool_t *make(uint32_t abort_capacity)
{
    knit_pool_opts_t o = {0};
    o.abort_capacity = abort_capacity;
    return pt_pool(&o, tasks, NTASKS);
}

static void test_abort_observed_by_task(void **state)
{
    (void)state;
    knit_pool_t *pool = make(0);
    knit_future_t *f = pt_call(pool, pt_task(pool, "until_aborted"), knit_v_null());
    assert_int_equal(knit_future_wait(f, 2 * PT_MS), KNIT_E_AGAIN); /* it keeps running */
    assert_int_equal(knit_future_abort(f), 0);
    assert_int_equal(knit_future_wait(f, -1), 0);
    assert_true(pt_value_is_str(knit_future_value(f), "stopped"));
    assert_int_equal(atomic_load(&stopped), 1);
    assert_int_equal(knit_future_abort(f), 0); /* settled: nothing to do */
    knit_future_release(f);

    /* the task decides the outcome: here a rejection */
    f = pt_call(pool, pt_task(pool, "until_aborted_reject"), knit_v_null());
    assert_int_equal(knit_future_abort(f), 0);
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_TASK);
    assert_true(pt_value_is_str(knit_future_value(f), "aborted by caller"));
    knit_future_release(f);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

/* Abort requested while the call still waits behind others (in the worker's queue and in the
 * host backlog): each task sees it as soon as it starts. */
static void test_abort_before_the_task_starts(void **state)
{
    (void)state;
    knit_pool_t *pool = make(0);
    knit_future_t *busy = pt_call_i64(pool, pt_task(pool, "gated"), 0);
    enum { N = 80 };
    knit_future_t *fs[N];
    int t = pt_task(pool, "until_aborted");
    for (int i = 0; i < N; i++)
        fs[i] = pt_call(pool, t, knit_v_null());
    for (int i = 0; i < N; i++)
        assert_int_equal(knit_future_abort(fs[i]), 0);
    pt_gate_open(&gate);
    for (int i = 0; i < N; i++) {
        assert_int_equal(knit_future_wait(fs[i], -1), 0);
        assert_true(pt_value_is_str(knit_future_value(fs[i]), "stopped"));
        knit_future_release(fs[i]);
    }
    assert_int_equal(atomic_load(&stopped), N);
    assert_int_equal(pt_wait_i64(busy), 0);
    knit_future_release(busy);
    knit_pool_destroy(pool);
}

/* Abort requested while the call waits for its input (knit_call_after). */
static void test_abort_of_dependent_before_dispatch(void **state)
{
    (void)state;
    knit_pool_t *pool = make(0);
    knit_future_t *in = pt_call_i64(pool, pt_task(pool, "gated"), 0), *dep = NULL;
    assert_int_equal(knit_call_after(pool, pt_task(pool, "until_aborted"), in, &dep), 0);
    assert_int_equal(knit_future_abort(dep), 0);
    pt_gate_open(&gate);
    int st = knit_future_wait(dep, PT_HANG_GUARD_NS);
    if (st == KNIT_E_AGAIN)
        knit_future_cancel(dep); /* the task never saw the abort: stop it to tear down */
    knit_pool_destroy(pool);
    bool stopped_value = pt_value_is_str(knit_future_value(dep), "stopped");
    knit_future_release(in);
    knit_future_release(dep);
    assert_int_equal(st, 0);
    assert_true(stopped_value);
}

/* Cancel: rejected at once; an abort-aware task is told to stop; its late result is dropped. */
static void test_cancel_rejects_at_once(void **state)
{
    (void)state;
    knit_pool_t *pool = make(0);
    pt_settle_count_t c = {0};
    knit_future_t *f = pt_call(pool, pt_task(pool, "until_aborted"), knit_v_null());
    knit_future_on_settle(f, pt_count_settle, &c);
    assert_int_equal(knit_future_cancel(f), 0);
    assert_int_equal(knit_future_status(f), KNIT_E_ABORTED); /* before any progress */
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_ABORTED);
    /* one worker: this call runs only once the cancelled task has returned */
    knit_future_t *next = pt_call(pool, pt_task(pool, "echo"), knit_v_str("next"));
    assert_int_equal(knit_future_wait(next, -1), 0);
    assert_true(pt_value_is_str(knit_future_value(next), "next"));
    assert_int_equal(atomic_load(&stopped), 1);
    knit_pool_progress(pool, 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(knit_future_status(f), KNIT_E_ABORTED);
    assert_int_equal(knit_future_cancel(f), 0); /* settled: no effect */
    assert_int_equal(knit_future_status(f), KNIT_E_ABORTED);
    knit_future_release(f);
    knit_future_release(next);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

/* Cancel works on tasks that are not abort-aware too: the task runs on, its result is dropped. */
static void test_cancel_plain_task(void **state)
{
    (void)state;
    knit_pool_t *pool = make(0);
    knit_future_t *f = pt_call(pool, pt_task(pool, "gated"), knit_v_str("late"));
    pt_gate_wait_entered(&gate, 1);
    assert_int_equal(knit_future_cancel(f), 0);
    assert_int_equal(knit_future_status(f), KNIT_E_ABORTED);
    knit_future_t *next = pt_call(pool, pt_task(pool, "echo"), knit_v_str("next"));
    pt_gate_open(&gate);
    assert_int_equal(knit_future_wait(next, -1), 0);
    assert_true(pt_value_is_str(knit_future_value(next), "next"));
    assert_int_equal(knit_future_status(f), KNIT_E_ABORTED);
    knit_future_release(f);
    knit_future_release(next);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

static void test_abort_not_abort_aware_is_inval(void **state)
{
    (void)state;
    knit_pool_t *pool = make(0);
    knit_future_t *f = pt_call(pool, pt_task(pool, "gated"), knit_v_int64(4));
    assert_int_equal(knit_future_abort(f), KNIT_E_INVAL);
    assert_non_null(strstr(knit_errmsg(), "gated"));
    assert_int_equal(knit_future_status(f), KNIT_E_AGAIN); /* untouched */
    pt_gate_open(&gate);
    assert_int_equal(pt_wait_i64(f), 4);
    assert_int_equal(knit_future_abort(f), KNIT_E_INVAL);
    knit_future_release(f);
    knit_pool_destroy(pool);
}

/* Capacity 2: two abort-aware calls in flight, the third is rejected at once; other tasks are
 * not affected; once the two settle, abort-aware calls work again. */
static void test_abort_capacity_exhausted(void **state)
{
    (void)state;
    knit_pool_t *pool = make(2);
    int ua = pt_task(pool, "until_aborted");
    knit_future_t *a = pt_call(pool, ua, knit_v_null()), *b = pt_call(pool, ua, knit_v_null());
    knit_future_t *c = pt_call(pool, ua, knit_v_null());
    assert_int_equal(knit_future_status(c), KNIT_E_ABORT_EXHAUSTED);
    assert_int_equal(knit_future_value(c)->kind, KNIT_KIND_STRING);
    knit_future_t *plain = pt_call(pool, pt_task(pool, "echo"), knit_v_int64(9));
    assert_int_equal(knit_future_status(plain), KNIT_E_AGAIN); /* queued behind a, not refused */
    assert_int_equal(knit_future_abort(a), 0);
    assert_int_equal(knit_future_abort(b), 0);
    assert_int_equal(knit_future_wait(a, -1), 0);
    assert_int_equal(knit_future_wait(b, -1), 0);
    assert_int_equal(pt_wait_i64(plain), 9);
    knit_future_t *d = pt_call(pool, pt_task(pool, "aware_echo"), knit_v_int64(1));
    knit_future_t *e = pt_call(pool, pt_task(pool, "aware_echo"), knit_v_int64(2));
    assert_int_equal(pt_wait_i64(d), 1);
    assert_int_equal(pt_wait_i64(e), 2);
    assert_int_equal(atomic_load(&saw_aborted), 0); /* recycled ids start un-aborted */
    knit_future_release(a);
    knit_future_release(b);
    knit_future_release(c);
    knit_future_release(d);
    knit_future_release(e);
    knit_future_release(plain);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

/* 10,000 exhaustions in a row leak nothing: normal and abort-aware calls work afterwards. */
static void test_abort_exhaustion_does_not_leak(void **state)
{
    (void)state;
    knit_pool_t *pool = make(2);
    int ua = pt_task(pool, "until_aborted"), echo = pt_task(pool, "echo");
    int aware = pt_task(pool, "aware_echo");
    knit_future_t *a = pt_call(pool, ua, knit_v_null()), *b = pt_call(pool, ua, knit_v_null());
    const uint64_t n = knit_test_iters(10000, 200);
    uint64_t wrong = 0;
    for (uint64_t i = 0; i < n; i++) {
        knit_future_t *f = pt_call(pool, i % 2 ? aware : ua, knit_v_int64((int64_t)i));
        if (knit_future_status(f) != KNIT_E_ABORT_EXHAUSTED)
            wrong++;
        knit_future_release(f);
        if (i % 1000 == 0)
            knit_pool_progress(pool, 0);
    }
    assert_int_equal(wrong, 0);
    assert_int_equal(knit_pool_pending(pool), 2);
    assert_int_equal(knit_future_abort(a), 0);
    assert_int_equal(knit_future_abort(b), 0);
    assert_int_equal(knit_future_wait(a, -1), 0);
    assert_int_equal(knit_future_wait(b, -1), 0);
    for (int i = 0; i < 300; i++) {
        knit_future_t *f = pt_call_i64(pool, echo, i);
        assert_int_equal(pt_wait_i64(f), i);
        knit_future_release(f);
    }
    for (int i = 0; i < 300; i++) { /* two abort-aware calls in flight at a time */
        knit_future_t *x = pt_call_i64(pool, aware, i), *y = pt_call_i64(pool, aware, -i);
        assert_int_equal(pt_wait_i64(x), i);
        assert_int_equal(pt_wait_i64(y), -i);
        knit_future_release(x);
        knit_future_release(y);
    }
    assert_int_equal(atomic_load(&saw_aborted), 0);
    knit_future_release(a);
    knit_future_release(b);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

/* A cancelled abort-aware call keeps its abort id until the worker has answered, so the id is
 * never handed to a new call while the old task may still poll it. */
static void test_cancelled_call_id_not_reused_early(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1);
    int ua = pt_task(pool, "until_aborted"), aware = pt_task(pool, "aware_echo");
    knit_future_t *f = pt_call(pool, ua, knit_v_null());
    assert_int_equal(knit_future_cancel(f), 0);
    /* The old task may still be running (it stops once it sees its abort): either the new call
     * finds no free id, or - if the response already arrived - it gets the recycled id clean. */
    knit_future_t *g = pt_call_i64(pool, aware, 1);
    int st = knit_future_wait(g, -1);
    assert_true(st == KNIT_E_ABORT_EXHAUSTED || st == 0);
    /* a plain call after it proves the old task has answered */
    knit_future_t *h = pt_call_i64(pool, pt_task(pool, "echo"), 2);
    assert_int_equal(pt_wait_i64(h), 2);
    knit_future_t *k = pt_call_i64(pool, aware, 3);
    assert_int_equal(pt_wait_i64(k), 3);
    assert_int_equal(atomic_load(&saw_aborted), 0);
    knit_future_release(f);
    knit_future_release(g);
    knit_future_release(h);
    knit_future_release(k);
    knit_pool_destroy(pool);
}

/* Abort ids are per lane: with two workers and capacity 1, each lane holds one. */
static void test_abort_capacity_per_lane(void **state)
{
    (void)state;
    knit_pool_opts_t o = {0};
    o.threads = 2;
    o.balancer = KNIT_BALANCER_ROUND_ROBIN;
    o.abort_capacity = 1;
    knit_pool_t *pool = pt_pool(&o, tasks, NTASKS);
    int ua = pt_task(pool, "until_aborted");
    knit_future_t *a = pt_call(pool, ua, knit_v_null()); /* lane 0 */
    knit_future_t *b = pt_call(pool, ua, knit_v_null()); /* lane 1 */
    knit_future_t *c = pt_call(pool, ua, knit_v_null()); /* lane 0 again: exhausted */
    assert_int_equal(knit_future_status(a), KNIT_E_AGAIN);
    assert_int_equal(knit_future_status(b), KNIT_E_AGAIN);
    assert_int_equal(knit_future_status(c), KNIT_E_ABORT_EXHAUSTED);
    knit_future_abort(a);
    knit_future_abort(b);
    assert_int_equal(knit_future_wait(a, -1), 0);
    assert_int_equal(knit_future_wait(b, -1), 0);
    knit_future_release(a);
    knit_future_release(b);
    knit_future_release(c);
    knit_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        PT_TEST(test_abort_observed_by_task, &fixture),
        PT_TEST(test_abort_before_the_task_starts, &fixture),
        PT_TEST(test_abort_of_dependent_before_dispatch, &fixture),
        PT_TEST(test_cancel_rejects_at_once, &fixture),
        PT_TEST(test_cancel_plain_task, &fixture),
        PT_TEST(test_abort_not_abort_aware_is_inval, &fixture),
        PT_TEST(test_abort_capacity_exhausted, &fixture),
        PT_TEST(test_abort_exhaustion_does_not_leak, &fixture),
        PT_TEST(test_cancelled_call_id_not_reused_early, &fixture),
        PT_TEST(test_abort_capacity_per_lane, &fixture),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
