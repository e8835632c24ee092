/*
 * NULL arguments: every public pool, call and future function is safe on NULL. The ones that
 * return an int return KNIT_E_INVAL and a knit_errmsg() naming the function; the others return
 * the neutral value knit.h gives for them, or do nothing.
 */
#include "pool_testutil.h"

#include <stdlib.h>

static const knit_task_def_t tasks[] = {
    {.name = "add_one", .fn = pt_task_add_one},
    {.name = "echo", .fn = pt_task_echo},
};

/* rc is KNIT_E_INVAL and the message names `fn`. */
static void expect_inval(int rc, const char *fn)
{
    if (rc != KNIT_E_INVAL || !strstr(knit_errmsg(), fn))
        print_error("%s: got %d '%s', want KNIT_E_INVAL naming it\n", fn, rc, knit_errmsg());
    assert_int_equal(rc, KNIT_E_INVAL);
    assert_non_null(strstr(knit_errmsg(), fn));
}

/* The last message names `fn` (getters that return a neutral value record why). */
static void expect_msg(const char *fn)
{
    if (!strstr(knit_errmsg(), fn))
        print_error("%s: message '%s' does not name it\n", fn, knit_errmsg());
    assert_non_null(strstr(knit_errmsg(), fn));
}

/* --- pool ------------------------------------------------------------------------------------ */

static void test_task_index_null(void **state)
{
    (void)state;
    expect_inval(knit_task_index(NULL, "echo"), "knit_task_index");
    knit_pool_t *pool = pt_pool(NULL, tasks, 2);
    expect_inval(knit_task_index(pool, NULL), "knit_task_index");
    knit_pool_destroy(pool);
}

static void test_pool_lanes_null(void **state)
{
    (void)state;
    assert_int_equal(knit_pool_lanes(NULL), 0);
    expect_msg("knit_pool_lanes");
}

static void test_pool_stealing_null(void **state)
{
    (void)state;
    assert_false(knit_pool_stealing(NULL));
    expect_msg("knit_pool_stealing");
}

static void test_pool_dispatcher_null(void **state)
{
    (void)state;
    assert_int_equal(knit_pool_dispatcher(NULL), KNIT_DISPATCHER_DEFAULT);
    expect_msg("knit_pool_dispatcher");
}

static void test_pool_pending_null(void **state)
{
    (void)state;
    assert_int_equal(knit_pool_pending(NULL), 0);
    expect_msg("knit_pool_pending");
}

static void test_pool_worker_pid_null(void **state)
{
    (void)state;
    assert_int_equal(knit_pool_worker_pid(NULL, 0), 0);
    expect_msg("knit_pool_worker_pid");
}

static void test_pool_respawns_null(void **state)
{
    (void)state;
    assert_int_equal(knit_pool_respawns(NULL), 0);
    expect_msg("knit_pool_respawns");
}

static void test_pool_progress_null(void **state)
{
    (void)state;
    expect_inval(knit_pool_progress(NULL, 0), "knit_pool_progress");
    expect_inval(knit_pool_progress(NULL, -1), "knit_pool_progress");
}

static void test_pool_shutdown_null(void **state)
{
    (void)state;
    expect_inval(knit_pool_shutdown(NULL, KNIT_SHUTDOWN_DRAIN, 0), "knit_pool_shutdown");
}

static void test_pool_destroy_null(void **state)
{
    (void)state;
    knit_pool_destroy(NULL); /* does nothing, like free(NULL) */
}

static void test_dispatcher_parse_null(void **state)
{
    (void)state;
    knit_dispatcher_t d = KNIT_DISPATCHER_PER_THREAD;
    expect_inval(knit_dispatcher_parse("serial-channel", NULL), "knit_dispatcher_parse");
    expect_inval(knit_dispatcher_parse(NULL, &d), "dispatcher");
    assert_int_equal(d, KNIT_DISPATCHER_PER_THREAD);
}

/* --- calls ----------------------------------------------------------------------------------- */

static void test_call_null(void **state)
{
    (void)state;
    knit_value_t v = knit_v_int64(1);
    knit_future_t *f = (knit_future_t *)1;
    expect_inval(knit_call(NULL, 0, &v, &f), "knit_call");
    knit_pool_t *pool = pt_pool(NULL, tasks, 2);
    expect_inval(knit_call(pool, 0, &v, NULL), "knit_call");
    assert_int_equal(knit_pool_pending(pool), 0); /* nothing was left half-made */
    /* a NULL argument is UNDEFINED (documented), not an error */
    assert_int_equal(knit_call(pool, pt_task(pool, "echo"), NULL, &f), 0);
    assert_int_equal(knit_future_wait(f, -1), 0);
    assert_int_equal(knit_future_value(f)->kind, KNIT_KIND_UNDEFINED);
    knit_future_release(f);
    knit_pool_destroy(pool);
}

static void test_call_name_null(void **state)
{
    (void)state;
    knit_value_t v = knit_v_int64(1);
    knit_future_t *f;
    expect_inval(knit_call_name(NULL, "echo", &v, &f), "knit_call_name");
    knit_pool_t *pool = pt_pool(NULL, tasks, 2);
    expect_inval(knit_call_name(pool, NULL, &v, &f), "knit_call_name");
    expect_inval(knit_call_name(pool, "echo", &v, NULL), "knit_call_name");
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

static void test_call_after_null(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, 2);
    int add_one = pt_task(pool, "add_one");
    knit_future_t *in = pt_call_i64(pool, add_one, 1), *f;
    expect_inval(knit_call_after(NULL, add_one, in, &f), "knit_call_after");
    expect_inval(knit_call_after(pool, add_one, NULL, &f), "knit_call_after");
    expect_inval(knit_call_after(pool, add_one, in, NULL), "knit_call_after");
    assert_int_equal(pt_wait_i64(in), 2);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_future_release(in);
    knit_pool_destroy(pool);
}

static void test_call_batch_null(void **state)
{
    (void)state;
    knit_value_t args[2] = {knit_v_int64(1), knit_v_int64(2)};
    knit_future_t *outs[2];
    expect_inval(knit_call_batch(NULL, 0, args, 2, outs), "knit_call_batch");
    expect_inval(knit_call_batch(NULL, 0, NULL, 0, NULL), "knit_call_batch");
    knit_pool_t *pool = pt_pool(NULL, tasks, 2);
    expect_inval(knit_call_batch(pool, 0, NULL, 2, outs), "knit_call_batch");
    expect_inval(knit_call_batch(pool, 0, args, 2, NULL), "knit_call_batch");
    assert_int_equal(knit_call_batch(pool, 0, NULL, 0, NULL), 0); /* nothing to do */
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

/* --- futures --------------------------------------------------------------------------------- */

static void test_future_wait_null(void **state)
{
    (void)state;
    expect_inval(knit_future_wait(NULL, 0), "knit_future_wait");
    expect_inval(knit_future_wait(NULL, -1), "knit_future_wait");
}

static void test_future_poll_null(void **state)
{
    (void)state;
    assert_true(knit_future_poll(NULL)); /* nothing to wait for: a poll loop ends */
    expect_msg("knit_future_poll");
}

static void test_future_status_null(void **state)
{
    (void)state;
    expect_inval(knit_future_status(NULL), "knit_future_status");
}

static void test_future_value_null(void **state)
{
    (void)state;
    assert_null(knit_future_value(NULL));
    expect_msg("knit_future_value");
}

static void test_future_take_null(void **state)
{
    (void)state;
    knit_value_t v = knit_v_int64(7);
    expect_inval(knit_future_take(NULL, &v), "knit_future_take");
    assert_int_equal(v.kind, KNIT_KIND_INT64); /* untouched */
    knit_pool_t *pool = pt_pool(NULL, tasks, 2);
    knit_future_t *f = pt_call_i64(pool, pt_task(pool, "add_one"), 1);
    assert_int_equal(knit_future_wait(f, -1), 0);
    expect_inval(knit_future_take(f, NULL), "knit_future_take");
    assert_int_equal(knit_future_value(f)->u.i64, 2); /* still there */
    knit_future_release(f);
    knit_pool_destroy(pool);
}

static int settled_calls;

static void count_settle(knit_future_t *f, void *ctx)
{
    (void)f;
    (void)ctx;
    settled_calls++;
}

static void test_future_on_settle_null(void **state)
{
    (void)state;
    settled_calls = 0;
    knit_future_on_settle(NULL, count_settle, NULL);
    assert_int_equal(settled_calls, 0); /* nothing to settle: never called */
    expect_msg("knit_future_on_settle");
}

static void test_future_abort_null(void **state)
{
    (void)state;
    expect_inval(knit_future_abort(NULL), "knit_future_abort");
}

static void test_future_cancel_null(void **state)
{
    (void)state;
    expect_inval(knit_future_cancel(NULL), "knit_future_cancel");
}

static void test_future_task_null(void **state)
{
    (void)state;
    expect_inval(knit_future_task(NULL), "knit_future_task");
}

static void test_future_retain_null(void **state)
{
    (void)state;
    knit_future_retain(NULL);
    expect_msg("knit_future_retain");
}

static void test_future_release_null(void **state)
{
    (void)state;
    knit_future_release(NULL); /* does nothing, like free(NULL) */
}

int main(void)
{
    unsetenv("KNIT_DISPATCHER");
    unsetenv("KNIT_STEAL");
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_task_index_null),
        cmocka_unit_test(test_pool_lanes_null),
        cmocka_unit_test(test_pool_stealing_null),
        cmocka_unit_test(test_pool_dispatcher_null),
        cmocka_unit_test(test_pool_pending_null),
        cmocka_unit_test(test_pool_worker_pid_null),
        cmocka_unit_test(test_pool_respawns_null),
        cmocka_unit_test(test_pool_progress_null),
        cmocka_unit_test(test_pool_shutdown_null),
        cmocka_unit_test(test_pool_destroy_null),
        cmocka_unit_test(test_dispatcher_parse_null),
        cmocka_unit_test(test_call_null),
        cmocka_unit_test(test_call_name_null),
        cmocka_unit_test(test_call_after_null),
        cmocka_unit_test(test_call_batch_null),
        cmocka_unit_test(test_future_wait_null),
        cmocka_unit_test(test_future_poll_null),
        cmocka_unit_test(test_future_status_null),
        cmocka_unit_test(test_future_value_null),
        cmocka_unit_test(test_future_take_null),
        cmocka_unit_test(test_future_on_settle_null),
        cmocka_unit_test(test_future_abort_null),
        cmocka_unit_test(test_future_cancel_null),
        cmocka_unit_test(test_future_task_null),
        cmocka_unit_test(test_future_retain_null),
        cmocka_unit_test(test_future_release_null),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
