/*
 * Host dispatchers (knitting-internals 4.1, 4.4, 4.5): per-thread and serial-channel, chosen by
 * option or by the KNIT_DISPATCHER environment variable; knit_pool_dispatcher() reports the
 * choice, and both drain bursts larger than the slot count over two lanes.
 */
#include "pool_testutil.h"

#include <stdlib.h>

static _Atomic uint32_t ran_on[2]; /* calls run per worker */

static int add_one_count(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    uint32_t w = knit_task_worker(ctx);
    if (w < 2)
        atomic_fetch_add_explicit(&ran_on[w], 1, memory_order_relaxed);
    return pt_task_add_one(ctx, arg, result);
}

static const knit_task_def_t tasks[] = {{.name = "add_one", .fn = add_one_count}};

static int setup(void **state)
{
    (void)state;
    unsetenv("KNIT_DISPATCHER");
    atomic_store(&ran_on[0], 0);
    atomic_store(&ran_on[1], 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unsetenv("KNIT_DISPATCHER");
    return 0;
}

static knit_pool_t *make(uint32_t threads, knit_dispatcher_t d)
{
    knit_pool_opts_t o = {0};
    o.threads = threads;
    o.balancer = KNIT_BALANCER_ROUND_ROBIN;
    o.dispatcher = d;
    return pt_pool(&o, tasks, 1);
}

/* 96 calls (three times the slot count) at once, then a second burst; all values come back and,
 * over two lanes, round robin gives each worker half. */
static void burst(knit_pool_t *pool)
{
    enum { N = 96 };
    knit_future_t *fs[N];
    atomic_store(&ran_on[0], 0);
    atomic_store(&ran_on[1], 0);
    for (int round = 0; round < 2; round++) {
        pt_call_range(pool, 0, fs, N, round * 1000);
        pt_wait_range(fs, N, round * 1000 + 1); /* add_one */
    }
    assert_int_equal(knit_pool_pending(pool), 0);
    if (knit_pool_lanes(pool) == 2) {
        assert_int_equal(atomic_load(&ran_on[0]), N);
        assert_int_equal(atomic_load(&ran_on[1]), N);
    }
}

/* A pool of `threads` workers made with dispatcher option `d` reports `want`; with `run_burst`
 * it also serves two bursts. */
static void expect_dispatcher(
    uint32_t threads, knit_dispatcher_t d, knit_dispatcher_t want, bool run_burst)
{
    knit_pool_t *pool = make(threads, d);
    assert_int_equal(knit_pool_dispatcher(pool), want);
    if (run_burst)
        burst(pool);
    knit_pool_destroy(pool);
}

static void test_per_thread_option(void **state)
{
    (void)state;
    expect_dispatcher(2, KNIT_DISPATCHER_PER_THREAD, KNIT_DISPATCHER_PER_THREAD, true);
}

static void test_serial_channel_option(void **state)
{
    (void)state;
    expect_dispatcher(2, KNIT_DISPATCHER_SERIAL_CHANNEL, KNIT_DISPATCHER_SERIAL_CHANNEL, true);
}

/* Without option or environment: per-thread for one worker, serial-channel for more. */
static void test_default_choice(void **state)
{
    (void)state;
    expect_dispatcher(1, KNIT_DISPATCHER_DEFAULT, KNIT_DISPATCHER_PER_THREAD, true);
    expect_dispatcher(2, KNIT_DISPATCHER_DEFAULT, KNIT_DISPATCHER_SERIAL_CHANNEL, false);
}

static void test_env_per_thread(void **state)
{
    (void)state;
    assert_int_equal(setenv("KNIT_DISPATCHER", "per-thread", 1), 0);
    expect_dispatcher(2, KNIT_DISPATCHER_DEFAULT, KNIT_DISPATCHER_PER_THREAD, true);
}

static void test_env_serial_channel(void **state)
{
    (void)state;
    assert_int_equal(setenv("KNIT_DISPATCHER", "serial-channel", 1), 0);
    expect_dispatcher(2, KNIT_DISPATCHER_DEFAULT, KNIT_DISPATCHER_SERIAL_CHANNEL, true);
    /* the variable also overrides the 1-worker default */
    expect_dispatcher(1, KNIT_DISPATCHER_DEFAULT, KNIT_DISPATCHER_SERIAL_CHANNEL, true);
}

/* An explicit option wins over the environment. */
static void test_option_beats_env(void **state)
{
    (void)state;
    assert_int_equal(setenv("KNIT_DISPATCHER", "serial-channel", 1), 0);
    expect_dispatcher(2, KNIT_DISPATCHER_PER_THREAD, KNIT_DISPATCHER_PER_THREAD, false);
    assert_int_equal(setenv("KNIT_DISPATCHER", "per-thread", 1), 0);
    expect_dispatcher(2, KNIT_DISPATCHER_SERIAL_CHANNEL, KNIT_DISPATCHER_SERIAL_CHANNEL, false);
}

static void test_env_bad_value_fails_creation(void **state)
{
    (void)state;
    assert_int_equal(setenv("KNIT_DISPATCHER", "round-robin", 1), 0);
    knit_pool_opts_t o = {0};
    o.threads = 2;
    o.balancer = KNIT_BALANCER_ROUND_ROBIN;
    knit_pool_t *pool = (knit_pool_t *)1;
    assert_int_equal(knit_pool_create(&o, tasks, 1, &pool), KNIT_E_INVAL);
    assert_null(pool);
    assert_non_null(strstr(knit_errmsg(), "KNIT_DISPATCHER"));
    assert_non_null(strstr(knit_errmsg(), "round-robin"));
    /* an empty value counts as unset */
    assert_int_equal(setenv("KNIT_DISPATCHER", "", 1), 0);
    expect_dispatcher(1, KNIT_DISPATCHER_DEFAULT, KNIT_DISPATCHER_PER_THREAD, false);
}

static void test_names(void **state)
{
    (void)state;
    knit_dispatcher_t d = KNIT_DISPATCHER_DEFAULT;
    assert_int_equal(knit_dispatcher_parse("per-thread", &d), 0);
    assert_int_equal(d, KNIT_DISPATCHER_PER_THREAD);
    assert_int_equal(knit_dispatcher_parse("serial-channel", &d), 0);
    assert_int_equal(d, KNIT_DISPATCHER_SERIAL_CHANNEL);
    assert_string_equal(knit_dispatcher_name(KNIT_DISPATCHER_PER_THREAD), "per-thread");
    assert_string_equal(knit_dispatcher_name(KNIT_DISPATCHER_SERIAL_CHANNEL), "serial-channel");
    assert_int_equal(knit_dispatcher_parse("serial", &d), KNIT_E_INVAL);
    assert_non_null(strstr(knit_errmsg(), "serial"));
    assert_int_equal(knit_dispatcher_parse(NULL, &d), KNIT_E_INVAL);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test_setup_teardown(test_per_thread_option, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serial_channel_option, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_choice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_per_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_serial_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_option_beats_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_bad_value_fails_creation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
