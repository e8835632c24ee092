/*
 * Pool options: bad options fail creation with a clear code and a knit_errmsg() that names the
 * problem; nothing is returned through `out`. Good edge values work.
 */
#include "pool_testutil.h"

#include <stdio.h>
#include <stdlib.h>

static const knit_task_def_t tasks[] = {
    {.name = "add_one", .fn = pt_task_add_one},
    {.name = "echo", .fn = pt_task_echo},
};

/* Creation fails with `code` and a message containing `needle`. */
static void expect_fail(
    const knit_pool_opts_t *o, const knit_task_def_t *t, size_t n, int code, const char *needle)
{
    knit_pool_t *pool = (knit_pool_t *)1;
    int rc = knit_pool_create(o, t, n, &pool);
    if (rc != code || !strstr(knit_errmsg(), needle))
        print_error("got %d '%s', want %d and '%s'\n", rc, knit_errmsg(), code, needle);
    assert_int_equal(rc, code);
    assert_null(pool);
    assert_non_null(strstr(knit_errmsg(), needle));
}

static void test_threads_range(void **state)
{
    (void)state;
    knit_pool_opts_t o = {0};
    o.threads = 1025;
    expect_fail(&o, tasks, 2, KNIT_E_RANGE, "1025");
    o.threads = UINT32_MAX;
    expect_fail(&o, tasks, 2, KNIT_E_RANGE, "threads");
}

static void test_payload_range(void **state)
{
    (void)state;
    knit_pool_opts_t o = {0};
    o.payload.max_byte_length = 1 << 20;
    o.payload.max_payload_bytes = (1 << 17) + 1; /* > max_byte_length >> 3 */
    expect_fail(&o, tasks, 2, KNIT_E_RANGE, "maxPayloadBytes");
    o.payload.max_byte_length = 0; /* default 64 MiB: at most 8 MiB */
    o.payload.max_payload_bytes = (8u << 20) + 1;
    expect_fail(&o, tasks, 2, KNIT_E_RANGE, "maxPayloadBytes");
    o.payload.max_payload_bytes = 0;
    o.payload.max_byte_length = 4;
    expect_fail(&o, tasks, 2, KNIT_E_RANGE, "payloadMaxByteLength");

    /* exactly at the limit is fine */
    o.payload.max_byte_length = 1 << 20;
    o.payload.max_payload_bytes = 1 << 17;
    knit_pool_t *pool = pt_pool(&o, tasks, 2);
    static uint8_t buf[1 << 17];
    knit_value_t v = knit_v_bytes(buf, sizeof buf - 64);
    knit_future_t *f = pt_call(pool, pt_task(pool, "echo"), v);
    assert_int_equal(knit_future_wait(f, -1), 0);
    assert_true(knit_value_equal(knit_future_value(f), &v));
    knit_future_release(f);
    knit_pool_destroy(pool);
}

static void test_duplicate_task_names(void **state)
{
    (void)state;
    const knit_task_def_t dup[] = {
        {.name = "echo", .fn = pt_task_echo},
        {.name = "add_one", .fn = pt_task_add_one},
        {.name = "echo", .fn = pt_task_add_one},
    };
    expect_fail(NULL, dup, 3, KNIT_E_INVAL, "'echo'");
    const knit_task_def_t dup_colon[] = {
        {.name = "math:add", .fn = pt_task_add_one},
        {.name = "math:add", .fn = pt_task_echo},
    };
    expect_fail(NULL, dup_colon, 2, KNIT_E_INVAL, "'math:add'");
}

static void test_no_tasks(void **state)
{
    (void)state;
    expect_fail(NULL, tasks, 0, KNIT_E_RANGE, "tasks");
    knit_pool_t *pool = (knit_pool_t *)1;
    assert_int_equal(knit_pool_create(NULL, NULL, 1, &pool), KNIT_E_INVAL);
    assert_int_equal(knit_pool_create(NULL, tasks, 2, NULL), KNIT_E_INVAL);
}

static void test_too_many_tasks(void **state)
{
    (void)state;
    enum { N = 65537 };
    knit_task_def_t *many = calloc(N, sizeof *many);
    char(*names)[8] = calloc(N, sizeof *names);
    assert_non_null(many);
    assert_non_null(names);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "t%05x", i);
        many[i].name = names[i];
        many[i].fn = pt_task_echo;
    }
    expect_fail(NULL, many, N, KNIT_E_RANGE, "65537");
    /* 65536 is the maximum */
    knit_pool_t *pool = pt_pool(NULL, many, N - 1);
    knit_future_t *f = pt_call_i64(pool, pt_task(pool, "t0ffff"), 8);
    assert_int_equal(pt_wait_i64(f), 8);
    knit_future_release(f);
    knit_pool_destroy(pool);
    free(many);
    free(names);
}

static void test_missing_fn_or_name(void **state)
{
    (void)state;
    const knit_task_def_t no_fn[] = {
        {.name = "echo", .fn = pt_task_echo},
        {.name = "nothing", .fn = NULL},
    };
    expect_fail(NULL, no_fn, 2, KNIT_E_INVAL, "task 1");
    const knit_task_def_t no_name[] = {{.name = NULL, .fn = pt_task_echo}};
    expect_fail(NULL, no_name, 1, KNIT_E_INVAL, "name");
    const knit_task_def_t empty_name[] = {{.name = "", .fn = pt_task_echo}};
    expect_fail(NULL, empty_name, 1, KNIT_E_INVAL, "name");
}

static void test_timeout_value_cannot_be_moved(void **state)
{
    (void)state;
    knit_moved_buf_t m = {0};
    knit_task_def_t bad[] = {
        {.name = "t", .fn = pt_task_echo, .timeout_ms = 5, .timeout_value = knit_v_moved(&m)},
    };
    expect_fail(NULL, bad, 1, KNIT_E_INVAL, "moved");
}

/* Message transports: stealing needs the shared lock and says so; an unknown transport is
 * refused; by default a pool on a message transport does not steal. */
static void test_transport_rules(void **state)
{
    (void)state;
    knit_pool_opts_t o = {0};
    o.transport = (knit_transport_t)99;
    expect_fail(&o, tasks, 2, KNIT_E_INVAL, "transport");
    o.transport = KNIT_TRANSPORT_TCP;
    o.threads = 2;
    o.steal = KNIT_STEAL_ON;
    expect_fail(&o, tasks, 2, KNIT_E_UNSUPPORTED, "tcp transport");
    o.steal = KNIT_STEAL_DEFAULT;
    knit_pool_t *pool = pt_pool(&o, tasks, 2);
    assert_false(knit_pool_stealing(pool));
    knit_pool_destroy(pool);
    /* the seq transport shares lane memory but has no shared request lock either */
    o.transport = KNIT_TRANSPORT_SEQ;
    o.steal = KNIT_STEAL_ON;
    expect_fail(&o, tasks, 2, KNIT_E_UNSUPPORTED, "seq transport");
    o.steal = KNIT_STEAL_DEFAULT;
    pool = pt_pool(&o, tasks, 2);
    assert_false(knit_pool_stealing(pool));
    knit_pool_destroy(pool);

    knit_transport_t t;
    for (int i = KNIT_TRANSPORT_KNIT; i <= KNIT_TRANSPORT_SEQ; i++) {
        assert_int_equal(knit_transport_parse(knit_transport_name((knit_transport_t)i), &t), 0);
        assert_int_equal(t, i);
    }
    assert_int_equal(knit_transport_parse("udp", &t), KNIT_E_INVAL);
    assert_non_null(strstr(knit_errmsg(), "seqpacket"));
    assert_non_null(strstr(knit_errmsg(), "seq)"));
    assert_string_equal(knit_transport_name((knit_transport_t)42), "unknown");
}

/* An enum field out of range fails creation with KNIT_E_INVAL and a message naming the field
 * and the value; `set` puts `value` into the field of zeroed options. */
static void expect_bad_enum(void (*set)(knit_pool_opts_t *o, int value), const char *field)
{
    const int values[] = {77, -1};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        knit_pool_opts_t o = {0};
        set(&o, values[i]);
        char value[16];
        snprintf(value, sizeof value, "%d", values[i]);
        expect_fail(&o, tasks, 2, KNIT_E_INVAL, field);
        if (!strstr(knit_errmsg(), value))
            print_error("'%s' does not name the value %s\n", knit_errmsg(), value);
        assert_non_null(strstr(knit_errmsg(), value));
    }
}

static void set_balancer(knit_pool_opts_t *o, int v)
{
    o->balancer = (knit_balancer_t)v;
}

static void test_balancer_out_of_range(void **state)
{
    (void)state;
    expect_bad_enum(set_balancer, "balancer");
}

static void set_dispatcher(knit_pool_opts_t *o, int v)
{
    o->dispatcher = (knit_dispatcher_t)v;
}

static void test_dispatcher_out_of_range(void **state)
{
    (void)state;
    expect_bad_enum(set_dispatcher, "dispatcher");
}

static void set_steal(knit_pool_opts_t *o, int v)
{
    o->steal = (knit_steal_t)v;
}

static void test_steal_out_of_range(void **state)
{
    (void)state;
    expect_bad_enum(set_steal, "steal");
}

static void set_inline_position(knit_pool_opts_t *o, int v)
{
    o->inliner.enabled = true;
    o->inliner.position = (knit_inline_position_t)v;
}

static void test_inline_position_out_of_range(void **state)
{
    (void)state;
    expect_bad_enum(set_inline_position, "inliner.position");
}

static void set_shared_memory(knit_pool_opts_t *o, int v)
{
    o->worker.process.shared_memory = (knit_shm_mode_t)v;
}

static void test_shared_memory_out_of_range(void **state)
{
    (void)state;
    expect_bad_enum(set_shared_memory, "worker.process.shared_memory");
}

static void set_runtime(knit_pool_opts_t *o, int v)
{
    o->runtime = (knit_runtime_t)v;
}

static void test_runtime_out_of_range(void **state)
{
    (void)state;
    expect_bad_enum(set_runtime, "runtime");
}

static void set_transport(knit_pool_opts_t *o, int v)
{
    o->transport = (knit_transport_t)v;
}

static void test_transport_out_of_range(void **state)
{
    (void)state;
    expect_bad_enum(set_transport, "transport");
}

static void test_on_timeout_out_of_range(void **state)
{
    (void)state;
    const int values[] = {77, -1};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        knit_task_def_t bad[] = {
            {.name = "echo", .fn = pt_task_echo},
            {.name = "slow", .fn = pt_task_echo, .timeout_ms = 5},
        };
        bad[1].on_timeout = (knit_timeout_action_t)values[i];
        char needle[32];
        snprintf(needle, sizeof needle, "%d", values[i]);
        expect_fail(NULL, bad, 2, KNIT_E_INVAL, "on_timeout");
        assert_non_null(strstr(knit_errmsg(), needle));
        assert_non_null(strstr(knit_errmsg(), "'slow'"));
    }
    /* every defined action is accepted */
    for (int a = KNIT_TIMEOUT_REJECT; a <= KNIT_TIMEOUT_MAYBE; a++) {
        knit_task_def_t good[] = {{.name = "echo", .fn = pt_task_echo, .timeout_ms = 5}};
        good[0].on_timeout = (knit_timeout_action_t)a;
        knit_pool_destroy(pt_pool(NULL, good, 1));
    }
}

/* Defaults and zero values: threads 0 means one worker; all-zero options work. */
/* Every wait policy on every message transport: blocking (the default), polling for a budget
 * before blocking, and polling only (spin_only). Calls one at a time and a burst that fills
 * the window settle with their values, whichever side waits how. */
static void test_message_transports_poll_when_asked(void **state)
{
    (void)state;
    const knit_transport_t ts[]
        = {KNIT_TRANSPORT_PIPE, KNIT_TRANSPORT_UNIX, KNIT_TRANSPORT_SEQPACKET, KNIT_TRANSPORT_TCP};
    const knit_wait_opts_t waits[] = {{0, false}, {200000, false}, {-1, false}, {0, true}};
    for (size_t t = 0; t < sizeof ts / sizeof ts[0]; t++) {
        for (size_t w = 0; w < sizeof waits / sizeof waits[0]; w++) {
            knit_pool_opts_t o = {.transport = ts[t], .wait = waits[w]};
            knit_pool_t *pool = pt_pool(&o, tasks, 2);
            int echo = pt_task(pool, "echo");
            pt_echo_each(pool, echo, 20, 1000);
            knit_future_t *fs[100];
            pt_call_range(pool, echo, fs, 100, 5000);
            pt_wait_range(fs, 100, 5000);
            knit_pool_destroy(pool);
        }
    }
}

static void test_defaults(void **state)
{
    (void)state;
    knit_pool_opts_t o = {0};
    knit_pool_t *pool = pt_pool(&o, tasks, 2);
    assert_int_equal(knit_pool_lanes(pool), 1);
    assert_false(knit_pool_stealing(pool));
    assert_int_equal(knit_pool_dispatcher(pool), KNIT_DISPATCHER_PER_THREAD);
    /* tasks are indexed in name order, whatever order they were given in */
    const knit_task_def_t rev[] = {
        {.name = "zeta", .fn = pt_task_echo},
        {.name = "alpha", .fn = pt_task_add_one},
    };
    knit_pool_t *p2 = pt_pool(NULL, rev, 2);
    assert_int_equal(knit_task_index(p2, "alpha"), 0);
    assert_int_equal(knit_task_index(p2, "zeta"), 1);
    knit_future_t *f = pt_call_i64(p2, 0, 1);
    assert_int_equal(pt_wait_i64(f), 2);
    knit_future_release(f);
    knit_pool_destroy(p2);
    knit_pool_destroy(pool);
    o.threads = 1024; /* the maximum; no spinning, so idle workers park at once */
    o.balancer = KNIT_BALANCER_ROUND_ROBIN;
    o.wait.spin_ns = -1;
    o.payload.max_byte_length = 1 << 16;
    pool = pt_pool(&o, tasks, 2);
    assert_int_equal(knit_pool_lanes(pool), 1024);
    f = pt_call_i64(pool, pt_task(pool, "add_one"), 1);
    assert_int_equal(pt_wait_i64(f), 2);
    knit_future_release(f);
    knit_pool_destroy(pool);
}

int main(void)
{
    unsetenv("KNIT_DISPATCHER");
    unsetenv("KNIT_STEAL");
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_threads_range),
        cmocka_unit_test(test_payload_range),
        cmocka_unit_test(test_duplicate_task_names),
        cmocka_unit_test(test_no_tasks),
        cmocka_unit_test(test_too_many_tasks),
        cmocka_unit_test(test_missing_fn_or_name),
        cmocka_unit_test(test_timeout_value_cannot_be_moved),
        cmocka_unit_test(test_transport_rules),
        cmocka_unit_test(test_balancer_out_of_range),
        cmocka_unit_test(test_dispatcher_out_of_range),
        cmocka_unit_test(test_steal_out_of_range),
        cmocka_unit_test(test_inline_position_out_of_range),
        cmocka_unit_test(test_shared_memory_out_of_range),
        cmocka_unit_test(test_runtime_out_of_range),
        cmocka_unit_test(test_transport_out_of_range),
        cmocka_unit_test(test_on_timeout_out_of_range),
        cmocka_unit_test(test_message_transports_poll_when_asked),
        cmocka_unit_test(test_defaults),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
