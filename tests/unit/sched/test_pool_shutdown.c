/*
 * Shutdown (knitting-internals 6.4): immediate (in-flight calls reject with KNIT_E_SHUTDOWN),
 * after a delay (calls keep being accepted and served meanwhile), draining (every submitted call
 * resolves with its real value first); calls after shutdown settle at once with
 * KNIT_E_SHUTDOWN; a second shutdown does nothing; destroy works without shutdown, and futures
 * outlive their pool.
 */
#include "pool_testutil.h"

#include <stdio.h>

static pt_gate_t gate;

/* A little work that ends by itself, then int64 + 1. */
static int work(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    volatile uint64_t x = 0;
    for (int i = 0; i < 20000; i++)
        x += (uint64_t)i;
    (void)x;
    return pt_task_add_one(ctx, arg, result);
}

/* Abort-aware: runs until told to stop (or until the test opens the gate as a hang guard). */
static int until_stopped(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)arg;
    while (!knit_task_aborted(ctx) && !pt_gate_is_open(&gate))
        sched_yield();
    *result = knit_v_str("stopped");
    return 0;
}

static const knit_task_def_t tasks[] = {
    {.name = "echo", .fn = pt_task_echo},
    {.name = "until_stopped", .fn = until_stopped, .abort_aware = true},
    {.name = "work", .fn = work},
};
#define NTASKS (sizeof tasks / sizeof tasks[0])

static pt_fixture_t fixture = {.gate = &gate};

static knit_pool_t *make(uint32_t threads, bool resolve_after_all)
{
    knit_pool_opts_t o = {0};
    o.threads = threads;
    if (threads > 1)
        o.balancer = KNIT_BALANCER_ROUND_ROBIN;
    o.worker.resolve_after_finishing_all = resolve_after_all;
    return pt_pool(&o, tasks, NTASKS);
}

/* --- immediate ------------------------------------------------------------------------------- */

static void test_immediate_rejects_in_flight(void **state)
{
    (void)state;
    knit_pool_t *pool = make(2, false);
    int w = pt_task(pool, "work");
    enum { N = 100 };
    knit_future_t *fs[N];
    pt_settle_count_t cs[N];
    pt_call_counted(pool, w, fs, cs, N);
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_IMMEDIATE, 0), 0);
    assert_int_equal(knit_pool_pending(pool), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(knit_future_status(fs[i]), KNIT_E_SHUTDOWN);
        assert_int_equal(cs[i].calls, 1);
        assert_int_equal(cs[i].status, KNIT_E_SHUTDOWN);
    }
    knit_pool_progress(pool, 0);
    knit_pool_destroy(pool);
    for (int i = 0; i < N; i++) {
        assert_int_equal(cs[i].calls, 1);
        knit_future_release(fs[i]);
    }
}

/* An abort-aware task still running at shutdown is told to stop, so shutdown can join it. */
static void test_immediate_stops_abort_aware_task(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1, false);
    knit_future_t *f = pt_call(pool, pt_task(pool, "until_stopped"), knit_v_null());
    pt_watchdog_t wd;
    pt_watchdog_start(&wd, PT_HANG_GUARD_NS, &gate);
    int rc = knit_pool_shutdown(pool, KNIT_SHUTDOWN_IMMEDIATE, 0);
    bool fired = pt_watchdog_stop(&wd);
    assert_int_equal(rc, 0);
    assert_false(fired);
    assert_int_equal(knit_future_status(f), KNIT_E_SHUTDOWN);
    knit_future_release(f);
    knit_pool_destroy(pool);
}

/* --- delay ----------------------------------------------------------------------------------- */

typedef struct chain {
    knit_pool_t *pool;
    int task;
    int n, max;
    int rc;
    knit_future_t *fs[32];
} chain_t;

/* Completion callback: submit the next call of the chain (on the host thread, during the
 * shutdown delay). */
static void chain_next(knit_future_t *f, void *ctx)
{
    (void)f;
    chain_t *c = ctx;
    if (c->n >= c->max)
        return;
    knit_value_t v = knit_v_int64(c->n * 10);
    int rc = knit_call(c->pool, c->task, &v, &c->fs[c->n]);
    if (rc != 0) {
        c->rc = rc;
        return;
    }
    knit_future_on_settle(c->fs[c->n++], chain_next, c);
}

static void test_delay_serves_calls_before_and_during(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1, false);
    int w = pt_task(pool, "work");
    enum { N = 10, DELAY_MS = 200 };
    knit_future_t *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = pt_call_i64(pool, w, i);
    chain_t c = {.pool = pool, .task = w, .max = 10};
    knit_future_on_settle(fs[N - 1], chain_next, &c);
    uint64_t t0 = pt_now_ns();
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_IMMEDIATE, DELAY_MS), 0);
    uint64_t elapsed = pt_now_ns() - t0;
    assert_true(elapsed >= DELAY_MS * 1000000ull);
    for (int i = 0; i < N; i++) {
        assert_int_equal(knit_future_status(fs[i]), 0);
        assert_int_equal(knit_future_value(fs[i])->u.i64, i + 1);
        knit_future_release(fs[i]);
    }
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.n, c.max);
    for (int i = 0; i < c.n; i++) {
        assert_int_equal(knit_future_status(c.fs[i]), 0);
        assert_int_equal(knit_future_value(c.fs[i])->u.i64, i * 10 + 1);
        knit_future_release(c.fs[i]);
    }
    knit_future_t *late = pt_call_i64(pool, w, 1);
    assert_int_equal(knit_future_status(late), KNIT_E_SHUTDOWN);
    knit_future_release(late);
    knit_pool_destroy(pool);
}

/* The delay elapses even when nothing is pending (a lower bound only). */
static void test_delay_elapses_when_idle(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1, false);
    uint64_t t0 = pt_now_ns();
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_IMMEDIATE, 60), 0);
    assert_true(pt_now_ns() - t0 >= 60 * 1000000ull);
    knit_pool_destroy(pool);
    pool = make(2, false);
    t0 = pt_now_ns();
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_DRAIN, 60), 0);
    assert_true(pt_now_ns() - t0 >= 60 * 1000000ull);
    knit_pool_destroy(pool);
}

/* --- drain ----------------------------------------------------------------------------------- */

static void check_drain(knit_pool_t *pool, knit_shutdown_mode_t mode)
{
    int w = pt_task(pool, "work");
    enum { N = 300, DEPS = 20 };
    knit_future_t *fs[N], *deps[DEPS];
    pt_settle_count_t cs[N];
    pt_call_counted(pool, w, fs, cs, N);
    for (int i = 0; i < DEPS; i++) /* dependents of the last calls: dispatched late */
        assert_int_equal(knit_call_after(pool, w, fs[N - 1 - i], &deps[i]), 0);
    assert_int_equal(knit_pool_shutdown(pool, mode, 0), 0);
    assert_int_equal(knit_pool_pending(pool), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(knit_future_status(fs[i]), 0);
        assert_int_equal(knit_future_value(fs[i])->u.i64, i + 1);
        assert_int_equal(cs[i].calls, 1);
        knit_future_release(fs[i]);
    }
    for (int i = 0; i < DEPS; i++) {
        assert_int_equal(knit_future_status(deps[i]), 0);
        assert_int_equal(knit_future_value(deps[i])->u.i64, N - 1 - i + 2);
        knit_future_release(deps[i]);
    }
    knit_future_t *late = pt_call_i64(pool, w, 1);
    assert_int_equal(knit_future_status(late), KNIT_E_SHUTDOWN);
    knit_future_release(late);
}

static void test_drain_mode(void **state)
{
    (void)state;
    knit_pool_t *pool = make(2, false);
    check_drain(pool, KNIT_SHUTDOWN_DRAIN);
    knit_pool_destroy(pool);
}

static void test_resolve_after_finishing_all(void **state)
{
    (void)state;
    knit_pool_t *pool = make(2, true);
    check_drain(pool, KNIT_SHUTDOWN_IMMEDIATE);
    knit_pool_destroy(pool);
}

/* --- after shutdown -------------------------------------------------------------------------- */

static void test_calls_after_shutdown(void **state)
{
    (void)state;
    knit_pool_t *pool = make(2, false);
    int w = pt_task(pool, "work");
    knit_future_t *before = pt_call_i64(pool, w, 1);
    assert_int_equal(pt_wait_i64(before), 2);
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_IMMEDIATE, 0), 0);

    pt_settle_count_t c = {0};
    knit_future_t *f = pt_call_i64(pool, w, 1);
    assert_int_equal(knit_future_status(f), KNIT_E_SHUTDOWN);
    knit_future_on_settle(f, pt_count_settle, &c);
    knit_pool_progress(pool, 0);
    assert_int_equal(c.calls, 1);
    knit_future_release(f);

    f = pt_call(pool, pt_task(pool, "until_stopped"), knit_v_null()); /* abort-aware */
    assert_int_equal(knit_future_status(f), KNIT_E_SHUTDOWN);
    knit_future_release(f);

    knit_value_t args[5];
    knit_future_t *outs[5];
    for (int i = 0; i < 5; i++)
        args[i] = knit_v_int64(i);
    assert_int_equal(knit_call_batch(pool, w, args, 5, outs), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(knit_future_status(outs[i]), KNIT_E_SHUTDOWN);
        knit_future_release(outs[i]);
    }

    knit_future_t *dep = NULL; /* its input resolved before the shutdown */
    assert_int_equal(knit_call_after(pool, w, before, &dep), 0);
    assert_int_equal(knit_future_wait(dep, -1), KNIT_E_SHUTDOWN);
    knit_future_release(dep);
    knit_future_release(before);
    assert_int_equal(knit_pool_pending(pool), 0);
    assert_true(knit_pool_progress(pool, 0) >= 0);
    knit_pool_destroy(pool);
}

static void test_shutdown_twice(void **state)
{
    (void)state;
    knit_pool_t *pool = make(2, false);
    knit_future_t *f = pt_call_i64(pool, pt_task(pool, "work"), 1);
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_DRAIN, 0), 0);
    assert_int_equal(knit_future_status(f), 0);
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_IMMEDIATE, 0), 0);
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_DRAIN, 100), 0);
    assert_int_equal(knit_future_status(f), 0);
    knit_future_release(f);
    knit_pool_destroy(pool);
    assert_int_equal(knit_pool_shutdown(NULL, KNIT_SHUTDOWN_IMMEDIATE, 0), KNIT_E_INVAL);
}

/* A shutdown requested from a completion callback during a delayed shutdown returns 0 and
 * does nothing: calls made after it are still served. */
typedef struct nested {
    knit_pool_t *pool;
    int rc;
    knit_future_t *next;
} nested_t;

static void nested_shutdown(knit_future_t *f, void *ctx)
{
    (void)f;
    nested_t *n = ctx;
    n->rc = knit_pool_shutdown(n->pool, KNIT_SHUTDOWN_IMMEDIATE, 0);
    knit_value_t v = knit_v_int64(41);
    if (knit_call(n->pool, knit_future_task(f), &v, &n->next) != 0)
        n->next = NULL;
}

static void test_shutdown_from_callback_during_delay(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1, false);
    nested_t n = {.pool = pool, .rc = 99};
    knit_future_t *f = pt_call_i64(pool, pt_task(pool, "work"), 1);
    knit_future_on_settle(f, nested_shutdown, &n);
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_IMMEDIATE, 100), 0);
    assert_int_equal(n.rc, 0);
    assert_non_null(n.next);
    assert_int_equal(knit_future_status(n.next), 0);
    assert_int_equal(knit_future_value(n.next)->u.i64, 42);
    knit_future_release(n.next);
    knit_future_release(f);
    knit_pool_destroy(pool);
}

/* --- destroy --------------------------------------------------------------------------------- */

static void test_destroy_without_shutdown(void **state)
{
    (void)state;
    knit_pool_destroy(NULL);
    knit_pool_t *pool = make(2, false);
    knit_pool_destroy(pool); /* nothing ever called */

    pool = make(2, false);
    int w = pt_task(pool, "work");
    enum { N = 80 };
    knit_future_t *fs[N];
    pt_settle_count_t cs[N];
    pt_call_counted(pool, w, fs, cs, N);
    knit_future_t *dropped = pt_call_i64(pool, w, -1);
    knit_future_release(dropped); /* only the pool holds it now */
    knit_pool_destroy(pool);
    for (int i = 0; i < N; i++) {
        assert_int_equal(cs[i].calls, 1);
        int s = knit_future_status(fs[i]);
        assert_true(s == 0 || s == KNIT_E_SHUTDOWN);
        if (s == 0)
            assert_int_equal(knit_future_value(fs[i])->u.i64, i + 1);
        knit_future_release(fs[i]);
    }
}

/* Futures the caller holds stay valid, settled, after the pool is destroyed. */
static void test_futures_outlive_pool(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1, false);
    int w = pt_task(pool, "work");
    knit_future_t *done = pt_call_i64(pool, w, 1);
    assert_int_equal(pt_wait_i64(done), 2);
    knit_future_t *cut = pt_call_i64(pool, w, 2);
    knit_pool_destroy(pool);

    assert_int_equal(knit_future_status(done), 0);
    assert_int_equal(knit_future_wait(done, -1), 0);
    assert_int_equal(knit_future_wait(done, 0), 0);
    assert_true(knit_future_poll(done));
    assert_int_equal(knit_future_task(done), w);
    assert_int_equal(knit_future_cancel(done), 0);
    assert_int_equal(knit_future_status(done), 0);
    pt_settle_count_t c = {0};
    knit_future_on_settle(done, pt_count_settle, &c);
    assert_int_equal(c.calls, 1);
    knit_future_retain(done);
    knit_future_release(done);
    knit_value_t v = knit_v_undefined();
    assert_int_equal(knit_future_take(done, &v), 0);
    assert_int_equal(v.kind, KNIT_KIND_INT64);
    assert_int_equal(v.u.i64, 2);
    knit_future_release(done);

    int s = knit_future_status(cut);
    assert_true(s == 0 || s == KNIT_E_SHUTDOWN);
    assert_int_equal(knit_future_wait(cut, -1), s);
    assert_non_null(knit_future_value(cut));
    knit_future_release(cut);
}

/* knit_future_abort on a future whose pool is gone: a settled future, so nothing to do. */
static void test_abort_after_destroy(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1, false);
    knit_future_t *f = pt_call(pool, pt_task(pool, "until_stopped"), knit_v_null());
    assert_int_equal(knit_future_abort(f), 0);
    assert_int_equal(knit_future_wait(f, -1), 0);
    knit_pool_destroy(pool);
    assert_int_equal(knit_future_abort(f), 0);
    assert_int_equal(knit_future_status(f), 0);
    knit_future_release(f);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        PT_TEST(test_immediate_rejects_in_flight, &fixture),
        PT_TEST(test_immediate_stops_abort_aware_task, &fixture),
        PT_TEST(test_delay_serves_calls_before_and_during, &fixture),
        PT_TEST(test_delay_elapses_when_idle, &fixture),
        PT_TEST(test_drain_mode, &fixture),
        PT_TEST(test_resolve_after_finishing_all, &fixture),
        PT_TEST(test_calls_after_shutdown, &fixture),
        PT_TEST(test_shutdown_twice, &fixture),
        PT_TEST(test_shutdown_from_callback_during_delay, &fixture),
        PT_TEST(test_destroy_without_shutdown, &fixture),
        PT_TEST(test_futures_outlive_pool, &fixture),
        PT_TEST(test_abort_after_destroy, &fixture),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
