/* Pool basics: create, call, wait, bursts past the slot count, shutdown. */
#include "pool_testutil.h"

/* The pool API called directly, without the helpers of pool_testutil.h; only its tasks. */
static const knit_task_def_t tasks[] = {
    {.name = "echo", .fn = pt_task_echo},
    {.name = "add_one", .fn = pt_task_add_one},
};

static void test_one_call(void **state)
{
    (void)state;
    knit_pool_t *pool;
    assert_int_equal(knit_pool_create(NULL, tasks, 2, &pool), 0);
    int echo_i = knit_task_index(pool, "echo");
    assert_int_equal(echo_i, 1); /* name order: add_one, echo */
    knit_value_t v = knit_v_str("hello knit");
    knit_future_t *f;
    assert_int_equal(knit_call(pool, echo_i, &v, &f), 0);
    assert_int_equal(knit_future_wait(f, -1), 0);
    const knit_value_t *r = knit_future_value(f);
    assert_int_equal(r->kind, KNIT_KIND_STRING);
    assert_string_equal((const char *)r->u.ptr, "hello knit");
    knit_future_release(f);
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_IMMEDIATE, 0), 0);
    knit_pool_destroy(pool);
}

static void test_burst_in_order_values(void **state)
{
    (void)state;
    knit_pool_t *pool;
    assert_int_equal(knit_pool_create(NULL, tasks, 2, &pool), 0);
    int t = knit_task_index(pool, "add_one");
    enum { N = 1000 };
    knit_future_t *fs[N];
    for (int i = 0; i < N; i++) {
        knit_value_t v = knit_v_int64(i);
        assert_int_equal(knit_call(pool, t, &v, &fs[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(knit_future_wait(fs[i], -1), 0);
        assert_int_equal(knit_future_value(fs[i])->u.i64, i + 1);
        knit_future_release(fs[i]);
    }
    knit_value_t bad = knit_v_str("x");
    knit_future_t *f;
    assert_int_equal(knit_call(pool, t, &bad, &f), 0);
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_TASK);
    assert_string_equal((const char *)knit_future_value(f)->u.ptr, "add_one wants an int64");
    knit_future_release(f);
    knit_pool_destroy(pool);
}

static void test_after_shutdown(void **state)
{
    (void)state;
    knit_pool_t *pool;
    assert_int_equal(knit_pool_create(NULL, tasks, 2, &pool), 0);
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_DRAIN, 0), 0);
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_DRAIN, 0), 0);
    knit_value_t v = knit_v_int64(1);
    knit_future_t *f;
    assert_int_equal(knit_call(pool, 0, &v, &f), 0);
    assert_int_equal(knit_future_status(f), KNIT_E_SHUTDOWN);
    knit_future_release(f);
    knit_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_one_call),
        cmocka_unit_test(test_burst_in_order_values),
        cmocka_unit_test(test_after_shutdown),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
