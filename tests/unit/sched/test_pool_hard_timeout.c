/*
 * worker.hard_timeout_ms (knitting-internals 6.3): a call that outlives it rejects with
 * KNIT_E_HARD_TIMEOUT and the whole pool is shut down at once: other in-flight calls reject
 * with KNIT_E_SHUTDOWN, later calls settle at once with KNIT_E_SHUTDOWN.
 */
#include "pool_testutil.h"

#include <stdio.h>

#define HARD_MS 300

static pt_gate_t gate;

static const knit_task_def_t tasks[] = {
    {.name = "echo", .fn = pt_task_echo},
    {.name = "gated", .fn = pt_task_gated, .user_data = &gate},
};

static pt_fixture_t fixture = {.gate = &gate};

static knit_pool_t *make(uint32_t hard_ms)
{
    knit_pool_opts_t o = {0};
    o.threads = 2;
    o.balancer = KNIT_BALANCER_ROUND_ROBIN;
    o.worker.hard_timeout_ms = hard_ms;
    return pt_pool(&o, tasks, 2);
}

static void test_hard_timeout_shuts_the_pool(void **state)
{
    (void)state;
    knit_pool_t *pool = make(HARD_MS);
    int gated = pt_task(pool, "gated"), echo = pt_task(pool, "echo");
    uint64_t t_a = pt_now_ns();
    knit_future_t *a = pt_call_i64(pool, gated, 1); /* lane 0, blocks */
    /* Let half the budget pass, so the calls below have later deadlines than a's. */
    assert_int_equal(knit_future_wait(a, HARD_MS / 2 * PT_MS), KNIT_E_AGAIN);
    uint64_t t_b = pt_now_ns();
    knit_future_t *b = pt_call_i64(pool, gated, 2); /* lane 1, blocks */
    enum { N = 60 };
    knit_future_t *others[N]; /* behind a and b; more than the slots: some in the backlog */
    for (int i = 0; i < N; i++)
        others[i] = pt_call_i64(pool, echo, i);
    pt_settle_count_t ca = {0}, cb = {0};
    knit_future_on_settle(a, pt_count_settle, &ca);
    knit_future_on_settle(b, pt_count_settle, &cb);

    assert_int_equal(knit_future_wait(a, -1), KNIT_E_HARD_TIMEOUT);
    uint64_t t_fired = pt_now_ns();
    assert_true(t_fired - t_a >= HARD_MS * 1000000ull); /* never early */
    /* b's own deadline had not passed when a's fired (unless the host was stalled for half
     * the budget, in which case b may legitimately have expired too) */
    bool b_expired = t_fired - t_b >= HARD_MS * 1000000ull;
    int sb = knit_future_status(b);
    if (b_expired)
        assert_true(sb == KNIT_E_SHUTDOWN || sb == KNIT_E_HARD_TIMEOUT);
    else
        assert_int_equal(sb, KNIT_E_SHUTDOWN);
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        int s = knit_future_status(others[i]);
        /* even calls wait on lane 0 behind a, odd ones on lane 1 behind b */
        if (s != KNIT_E_SHUTDOWN && !(b_expired && s == KNIT_E_HARD_TIMEOUT))
            wrong++;
    }
    assert_int_equal(wrong, 0);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_progress(pool, 0);
    assert_int_equal(ca.calls, 1);
    assert_int_equal(cb.calls, 1);

    /* later calls settle at once */
    knit_future_t *late = pt_call_i64(pool, echo, 5);
    assert_int_equal(knit_future_status(late), KNIT_E_SHUTDOWN);
    knit_future_t *dep = NULL;
    assert_int_equal(knit_call_after(pool, echo, late, &dep), 0);
    assert_int_equal(knit_future_wait(dep, -1), KNIT_E_SHUTDOWN);

    pt_gate_open(&gate);
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_IMMEDIATE, 0), 0);
    assert_int_equal(knit_future_status(a), KNIT_E_HARD_TIMEOUT); /* the late result is dropped */
    for (int i = 0; i < N; i++)
        knit_future_release(others[i]);
    knit_future_release(a);
    knit_future_release(b);
    knit_future_release(late);
    knit_future_release(dep);
    knit_pool_destroy(pool);
}

/* The same, torn down with knit_pool_destroy alone once the task is released. */
static void test_hard_timeout_then_destroy(void **state)
{
    (void)state;
    knit_pool_t *pool = make(50);
    knit_future_t *a = pt_call_i64(pool, pt_task(pool, "gated"), 1);
    assert_int_equal(knit_future_wait(a, -1), KNIT_E_HARD_TIMEOUT);
    knit_future_t *late = pt_call_i64(pool, pt_task(pool, "echo"), 5);
    assert_int_equal(knit_future_status(late), KNIT_E_SHUTDOWN);
    pt_gate_open(&gate);
    knit_pool_destroy(pool);
    assert_int_equal(knit_future_status(a), KNIT_E_HARD_TIMEOUT);
    knit_future_release(a);
    knit_future_release(late);
}

/* Calls that finish within the hard timeout are unaffected, and the pool stays open. */
static void test_hard_timeout_not_reached(void **state)
{
    (void)state;
    knit_pool_t *pool = make(5000);
    int echo = pt_task(pool, "echo");
    enum { N = 500 };
    knit_future_t *fs[N];
    pt_call_range(pool, echo, fs, N, 0);
    pt_wait_range(fs, N, 0);
    pt_echo_each(pool, echo, 1, 1);
    assert_int_equal(knit_pool_progress(pool, 0), 0);
    knit_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        PT_TEST(test_hard_timeout_shuts_the_pool, &fixture),
        PT_TEST(test_hard_timeout_then_destroy, &fixture),
        PT_TEST(test_hard_timeout_not_reached, &fixture),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
