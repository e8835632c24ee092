/*
 * A worker that has sent results rings a parked host before it starts its next task: a
 * caller never waits for a long task to end to see the results published before it.
 */
#include "testutil.h"

#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "knit/knit.h"

static _Atomic int gate_open[2];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Wait until gate `arg` opens (a safety limit of 20 s); true when it did. */
static int gate(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    uint64_t end = now_ns() + 20000000000ull;
    while (!atomic_load(&gate_open[arg->u.i64]) && now_ns() < end)
        sched_yield();
    *result = knit_v_bool(atomic_load(&gate_open[arg->u.i64]) != 0);
    return 0;
}

static int quick(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = *arg;
    return 0;
}

static const knit_task_def_t tasks[]
    = {{.name = "gate", .fn = gate}, {.name = "quick", .fn = quick}};

static knit_future_t *call(knit_pool_t *p, const char *task, int64_t x)
{
    knit_value_t v = knit_v_int64(x);
    knit_future_t *f;
    assert_int_equal(knit_call_name(p, task, &v, &f), 0);
    return f;
}

static void test_results_are_rung_before_a_long_task(void **s)
{
    (void)s;
    atomic_store(&gate_open[0], 0);
    atomic_store(&gate_open[1], 0);
    /* the host never spins: it sees a result only when the worker rings it */
    knit_pool_opts_t o = {.threads = 1, .wait.spin_ns = -1};
    knit_pool_t *p;
    assert_int_equal(knit_pool_create(&o, tasks, 2, &p), 0);
    knit_future_t *first = call(p, "gate", 0); /* holds the worker while the next two queue */
    knit_future_t *a = call(p, "quick", 7);
    knit_future_t *b = call(p, "gate", 1); /* runs right after a, in the same turn */
    atomic_store(&gate_open[0], 1);
    assert_int_equal(knit_future_wait(first, -1), 0);
    assert_int_equal(knit_future_wait(a, -1), 0);
    assert_int_equal(knit_future_value(a)->u.i64, 7);
    atomic_store(&gate_open[1], 1); /* b only ends once a was seen */
    assert_int_equal(knit_future_wait(b, -1), 0);
    if (!knit_future_value(b)->u.b)
        fail_msg("the result of a came only after the next task gave up waiting for it");
    knit_future_release(first);
    knit_future_release(a);
    knit_future_release(b);
    knit_pool_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_are_rung_before_a_long_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
