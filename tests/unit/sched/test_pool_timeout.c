/*
 * Task timeouts, enforced by the host even for synchronous tasks that run too long: the reject
 * flavour (KNIT_E_TIMEOUT), resolve with a default value, reject with a custom error; time spent
 * waiting in queues counts against the budget; the late result of a timed-out call is dropped
 * and later calls (which may reuse its id) settle with their own values.
 *
 * Slow tasks spin until the test releases them, and the test releases them only after the
 * timeout has fired, so no outcome depends on how fast anything runs.
 */
#include "pool_testutil.h"

#include <stdio.h>

#define TMO_MS 40

static atomic_bool release;     /* slow tasks return once this is set */
static atomic_uint queued_runs; /* runs of the "queued" task */
static pt_gate_t gate;

static int slow(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    while (!atomic_load_explicit(&release, memory_order_acquire))
        sched_yield();
    *result = *arg; /* the late result */
    *arg = knit_v_undefined();
    return 0;
}

static int queued(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    atomic_fetch_add_explicit(&queued_runs, 1, memory_order_relaxed);
    return pt_task_echo(ctx, arg, result);
}

static const knit_error_value_t custom_err = {.name = "TimeoutError", .message = "took too long"};

static const knit_task_def_t tasks[] = {
    {.name = "echo", .fn = pt_task_echo},
    {.name = "gated", .fn = pt_task_gated, .user_data = &gate},
    {.name = "queued", .fn = queued, .timeout_ms = TMO_MS},
    {.name = "slow_error",
        .fn = slow,
        .timeout_ms = TMO_MS,
        .on_timeout = KNIT_TIMEOUT_ERROR,
        .timeout_value = {.kind = KNIT_KIND_ERROR, .u = {.err = &custom_err}}},
    {.name = "slow_maybe", .fn = slow, .timeout_ms = TMO_MS, .on_timeout = KNIT_TIMEOUT_MAYBE},
    {.name = "slow_reject", .fn = slow, .timeout_ms = TMO_MS},
    {.name = "slow_resolve",
        .fn = slow,
        .timeout_ms = TMO_MS,
        .on_timeout = KNIT_TIMEOUT_RESOLVE,
        .timeout_value = {.kind = KNIT_KIND_STRING, .len = 8, .u = {.ptr = "fallback"}}},
    {.name = "t20", .fn = slow, .timeout_ms = 20},
    {.name = "t60", .fn = slow, .timeout_ms = 60},
    {.name = "t100", .fn = slow, .timeout_ms = 100},
    {.name = "fast_with_timeout", .fn = pt_task_echo, .timeout_ms = 10000},
};
#define NTASKS (sizeof tasks / sizeof tasks[0])

static void reset(void)
{
    atomic_store(&release, false);
    atomic_store(&queued_runs, 0);
}

static void release_slow_tasks(void)
{
    atomic_store(&release, true);
}

static pt_fixture_t fixture = {.gate = &gate, .before = reset, .after = release_slow_tasks};

static knit_pool_t *make(uint32_t threads)
{
    knit_pool_opts_t o = {0};
    o.threads = threads;
    if (threads > 1)
        o.balancer = KNIT_BALANCER_ROUND_ROBIN;
    return pt_pool(&o, tasks, NTASKS);
}

/* After the slow task is released, the worker serves later calls with their own values. */
static void check_later_calls(knit_pool_t *pool)
{
    atomic_store_explicit(&release, true, memory_order_release);
    pt_echo_each(pool, pt_task(pool, "echo"), 50, 7000);
    assert_int_equal(knit_pool_pending(pool), 0);
}

static void test_timeout_reject(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1);
    uint64_t t0 = pt_now_ns();
    knit_future_t *f = pt_call_i64(pool, pt_task(pool, "slow_reject"), 1);
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_TIMEOUT);
    assert_true(pt_now_ns() - t0 >= TMO_MS * 1000000ull); /* never early */
    assert_non_null(knit_future_value(f));
    check_later_calls(pool);
    assert_int_equal(knit_future_status(f), KNIT_E_TIMEOUT);
    knit_future_release(f);
    knit_pool_destroy(pool);
}

static void test_timeout_resolve_with_default(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1);
    knit_future_t *f = pt_call_i64(pool, pt_task(pool, "slow_resolve"), 1);
    assert_int_equal(knit_future_wait(f, -1), 0);
    assert_true(pt_value_is_str(knit_future_value(f), "fallback"));
    check_later_calls(pool);
    assert_true(pt_value_is_str(knit_future_value(f), "fallback"));
    knit_future_release(f);
    knit_pool_destroy(pool);
}

/* KNIT_TIMEOUT_MAYBE (knitting's "maybe: true"): resolves with UNDEFINED. */
static void test_timeout_resolve_maybe_is_undefined(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1);
    knit_future_t *f = pt_call_i64(pool, pt_task(pool, "slow_maybe"), 1);
    assert_int_equal(knit_future_wait(f, -1), 0);
    int kind = knit_future_value(f)->kind;
    check_later_calls(pool);
    knit_future_release(f);
    knit_pool_destroy(pool);
    if (kind != KNIT_KIND_UNDEFINED)
        print_error("resolved with kind %s\n", knit_kind_name((knit_kind_t)kind));
    assert_int_equal(kind, KNIT_KIND_UNDEFINED);
}

static void test_timeout_custom_error(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1);
    knit_future_t *f = pt_call_i64(pool, pt_task(pool, "slow_error"), 1);
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_TASK);
    knit_value_t want = knit_v_error(&custom_err);
    assert_true(knit_value_equal(knit_future_value(f), &want));
    check_later_calls(pool);
    knit_future_release(f);
    knit_pool_destroy(pool);
}

/* A call stuck behind a long task times out although its own task never started; when the
 * worker reaches it the budget is spent, so it does not run at all. */
static void test_queue_wait_counts(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1);
    knit_future_t *busy = pt_call_i64(pool, pt_task(pool, "gated"), 1);
    pt_gate_wait_entered(&gate, 1);
    knit_future_t *q = pt_call_i64(pool, pt_task(pool, "queued"), 2);
    assert_int_equal(knit_future_wait(q, -1), KNIT_E_TIMEOUT);
    assert_int_equal(knit_future_status(busy), KNIT_E_AGAIN);
    pt_gate_open(&gate);
    assert_int_equal(pt_wait_i64(busy), 1);
    check_later_calls(pool);
    assert_int_equal(atomic_load(&queued_runs), 0);
    assert_int_equal(knit_future_status(q), KNIT_E_TIMEOUT);
    knit_future_release(busy);
    knit_future_release(q);
    knit_pool_destroy(pool);
}

/* The same for calls that never left the host backlog (more calls than slots). */
static void test_queue_wait_counts_in_backlog(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1);
    knit_future_t *busy = pt_call_i64(pool, pt_task(pool, "gated"), 1);
    pt_gate_wait_entered(&gate, 1);
    enum { N = 80 };
    knit_future_t *fs[N];
    pt_settle_count_t counts[N];
    pt_call_counted(pool, pt_task(pool, "queued"), fs, counts, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(knit_future_wait(fs[i], -1), KNIT_E_TIMEOUT);
    pt_gate_open(&gate);
    assert_int_equal(pt_wait_i64(busy), 1);
    check_later_calls(pool);
    for (int i = 0; i < N; i++) {
        assert_int_equal(counts[i].calls, 1);
        assert_int_equal(counts[i].status, KNIT_E_TIMEOUT);
        knit_future_release(fs[i]);
    }
    assert_int_equal(atomic_load(&queued_runs), 0);
    knit_future_release(busy);
    knit_pool_destroy(pool);
}

/* The late result of a timed-out call is discarded; the calls that follow (one queued behind
 * it while it still ran, then many that may reuse its id) get their own values. */
static void test_late_result_discarded(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1);
    int echo = pt_task(pool, "echo");
    pt_settle_count_t c = {0};
    knit_future_t *slow_f = pt_call(pool, pt_task(pool, "slow_reject"), knit_v_str("late"));
    knit_future_on_settle(slow_f, pt_count_settle, &c);
    assert_int_equal(knit_future_wait(slow_f, -1), KNIT_E_TIMEOUT);
    knit_future_t *behind = pt_call(pool, echo, knit_v_str("mine"));
    atomic_store_explicit(&release, true, memory_order_release);
    assert_int_equal(knit_future_wait(behind, -1), 0);
    assert_true(pt_value_is_str(knit_future_value(behind), "mine"));
    knit_future_release(behind);
    pt_echo_each(pool, echo, 200, 0);
    /* and again, many times: timeouts with late results interleaved with normal calls */
    int slow_t = pt_task(pool, "slow_reject");
    for (int r = 0; r < 5; r++) {
        atomic_store(&release, false);
        knit_future_t *s = pt_call_i64(pool, slow_t, -1);
        assert_int_equal(knit_future_wait(s, -1), KNIT_E_TIMEOUT);
        knit_future_t *fs[40];
        pt_call_range(pool, echo, fs, 40, r * 100);
        atomic_store(&release, true);
        pt_wait_range(fs, 40, r * 100);
        assert_int_equal(knit_future_status(s), KNIT_E_TIMEOUT);
        knit_future_release(s);
    }
    knit_pool_progress(pool, 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(knit_future_status(slow_f), KNIT_E_TIMEOUT);
    knit_future_release(slow_f);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

/* A call that finishes in time is not touched by its timeout. */
static void test_fast_call_unaffected(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1);
    pt_echo_each(pool, pt_task(pool, "fast_with_timeout"), 500, 0);
    assert_int_equal(knit_pool_progress(pool, 0), 0);
    knit_pool_destroy(pool);
}

static int order[32], norder;

static void note_order(knit_future_t *f, void *ctx)
{
    (void)f;
    order[norder++] = (int)(intptr_t)ctx;
}

/* Timeouts of different lengths submitted out of order fire in deadline order. */
static void test_timeouts_fire_in_deadline_order(void **state)
{
    (void)state;
    knit_pool_t *pool = make(1);
    static const char *const names[] = {"t100", "t20", "t60", "t20", "t100", "t60", "t20"};
    enum { N = 7 };
    knit_future_t *fs[N];
    norder = 0;
    for (int i = 0; i < N; i++) {
        fs[i] = pt_call_i64(pool, pt_task(pool, names[i]), i);
        knit_future_on_settle(fs[i], note_order, (void *)(intptr_t)i);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(knit_future_wait(fs[i], -1), KNIT_E_TIMEOUT);
    check_later_calls(pool);
    static const int want[N] = {1, 3, 6, 2, 5, 0, 4};
    assert_int_equal(norder, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(order[i], want[i]);
    for (int i = 0; i < N; i++)
        knit_future_release(fs[i]);
    knit_pool_destroy(pool);
}

/* A timeout on one lane does not disturb calls on another. */
static void test_timeout_other_lane_unaffected(void **state)
{
    (void)state;
    knit_pool_t *pool = make(2);
    int echo = pt_task(pool, "echo");
    knit_future_t *s = pt_call_i64(pool, pt_task(pool, "slow_reject"), 1); /* lane 0 */
    enum { N = 100 };
    knit_future_t *fs[N];
    for (int i = 0; i < N; i++) {
        fs[i] = pt_call_i64(pool, echo, i); /* echo's own cursor: lanes 0, 1, 0, ... */
        if (i % 2 == 1)
            assert_int_equal(pt_wait_i64(fs[i]), i); /* lane 1 is not held up */
    }
    assert_int_equal(knit_future_wait(s, -1), KNIT_E_TIMEOUT);
    atomic_store_explicit(&release, true, memory_order_release);
    pt_wait_range(fs, N, 0);
    check_later_calls(pool);
    knit_future_release(s);
    knit_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        PT_TEST(test_timeout_reject, &fixture),
        PT_TEST(test_timeout_resolve_with_default, &fixture),
        PT_TEST(test_timeout_resolve_maybe_is_undefined, &fixture),
        PT_TEST(test_timeout_custom_error, &fixture),
        PT_TEST(test_queue_wait_counts, &fixture),
        PT_TEST(test_queue_wait_counts_in_backlog, &fixture),
        PT_TEST(test_late_result_discarded, &fixture),
        PT_TEST(test_fast_call_unaffected, &fixture),
        PT_TEST(test_timeouts_fire_in_deadline_order, &fixture),
        PT_TEST(test_timeout_other_lane_unaffected, &fixture),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
