/*
 * Pool calls on thread workers: every call settles exactly once, with the task's value or its
 * rejection; future accessors; completion callbacks; batches; calls whose argument is another
 * call's result; every value kind through a worker; payload limits and results that cannot be
 * encoded.
 */
#define _GNU_SOURCE
#include "pool_testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static pt_gate_t gate;
static atomic_uint count_add_runs;

static uint8_t big_static[16384]; /* results that point at static data */

static int count_add(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    atomic_fetch_add_explicit(&count_add_runs, 1, memory_order_relaxed);
    return pt_task_add_one(ctx, arg, result);
}

/* Reject with the argument as the rejection value. */
static int reject_arg(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = *arg;
    *arg = knit_v_undefined();
    return KNIT_TASK_REJECT;
}

/* Reject without setting a value. */
static int reject_bare(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)arg;
    (void)result;
    return KNIT_TASK_REJECT;
}

/* A result the worker cannot encode, chosen by the argument. */
static int bad_result(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    switch (arg->u.i64) {
    case 0: /* larger than maxPayloadBytes (the pools using this task set 4096) */
        *result = knit_v_bytes(big_static, 8192);
        break;
    case 1: /* no such kind */
        *result = knit_v_undefined();
        result->kind = 200;
        break;
    default: /* 3 bytes of int32 elements */
        *result = knit_v_typed(KNIT_ELEM_I32, big_static, 3);
        break;
    }
    return 0;
}

static const knit_task_def_t tasks[] = {
    {.name = "add_one", .fn = pt_task_add_one},
    {.name = "bad_result", .fn = bad_result},
    {.name = "count_add", .fn = count_add},
    {.name = "echo", .fn = pt_task_echo},
    {.name = "gated", .fn = pt_task_gated, .user_data = &gate},
    {.name = "reject_arg", .fn = reject_arg},
    {.name = "reject_bare", .fn = reject_bare},
};
#define NTASKS (sizeof tasks / sizeof tasks[0])

static void reset(void)
{
    atomic_store(&count_add_runs, 0);
}

static pt_fixture_t fixture = {.gate = &gate, .before = reset};

static knit_pool_t *small_payload_pool(void)
{
    knit_pool_opts_t o = {0};
    o.payload.max_payload_bytes = 4096;
    return pt_pool(&o, tasks, NTASKS);
}

/* --- settlement ------------------------------------------------------------------------------ */

static void test_resolve_with_value(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    knit_future_t *f = pt_call(pool, pt_task(pool, "echo"), knit_v_str("hello"));
    assert_int_equal(knit_future_task(f), pt_task(pool, "echo"));
    assert_int_equal(knit_future_wait(f, -1), 0);
    assert_int_equal(knit_future_status(f), 0);
    assert_true(pt_value_is_str(knit_future_value(f), "hello"));
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_future_release(f);
    knit_pool_destroy(pool);
}

static void test_task_rejection_carries_value(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    knit_value_t cause = knit_v_int64(7);
    knit_error_value_t err = {.name = "RangeError", .message = "bad input", .cause = &cause};
    knit_value_t ev = knit_v_error(&err);
    knit_future_t *f = pt_call(pool, pt_task(pool, "reject_arg"), ev);
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_TASK);
    assert_int_equal(knit_future_status(f), KNIT_E_TASK);
    const knit_value_t *v = knit_future_value(f);
    assert_non_null(v);
    assert_true(knit_value_equal(v, &ev));
    knit_future_release(f);

    /* A plain string rejection, and a rejection without a value (UNDEFINED). */
    f = pt_call(pool, pt_task(pool, "reject_arg"), knit_v_str("nope"));
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_TASK);
    assert_true(pt_value_is_str(knit_future_value(f), "nope"));
    knit_future_release(f);
    f = pt_call(pool, pt_task(pool, "reject_bare"), knit_v_int64(1));
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_TASK);
    assert_int_equal(knit_future_value(f)->kind, KNIT_KIND_UNDEFINED);
    knit_future_release(f);
    knit_pool_destroy(pool);
}

/* Status, value, take and bounded waits while the call is still running, then after. */
static void test_future_accessors_pending_and_settled(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    knit_future_t *f = pt_call(pool, pt_task(pool, "gated"), knit_v_str("held"));
    pt_gate_wait_entered(&gate, 1);
    assert_int_equal(knit_future_status(f), KNIT_E_AGAIN);
    assert_null(knit_future_value(f));
    knit_value_t out = knit_v_int64(99);
    assert_int_equal(knit_future_take(f, &out), KNIT_E_AGAIN);
    assert_int_equal(out.kind, KNIT_KIND_INT64); /* untouched */
    assert_false(knit_future_poll(f));
    assert_int_equal(knit_future_wait(f, 2 * PT_MS), KNIT_E_AGAIN);
    assert_int_equal(knit_pool_pending(pool), 1);

    pt_gate_open(&gate);
    assert_int_equal(knit_future_wait(f, -1), 0);
    assert_true(knit_future_poll(f));
    assert_int_equal(knit_future_wait(f, 0), 0);
    /* a small result lives in the future; taking it gives the caller an owned copy */
    assert_true(knit_future_value(f)->flags & KNIT_VF_LENT);
    assert_int_equal(knit_future_take(f, &out), 0);
    assert_true(pt_value_is_str(&out, "held"));
    assert_int_equal(out.flags & (KNIT_VF_OWNED | KNIT_VF_LENT), KNIT_VF_OWNED);
    /* The value moved out: the future now holds UNDEFINED, a second take gives UNDEFINED. */
    assert_int_equal(knit_future_value(f)->kind, KNIT_KIND_UNDEFINED);
    knit_value_t again = knit_v_int64(1);
    assert_int_equal(knit_future_take(f, &again), 0);
    assert_int_equal(again.kind, KNIT_KIND_UNDEFINED);
    knit_value_free(&out);
    knit_future_release(f);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

/* knit_future_wait with timeout 0 polls once and returns KNIT_E_AGAIN for a pending call. */
static void test_wait_zero_polls_once(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    knit_future_t *f = pt_call(pool, pt_task(pool, "gated"), knit_v_int64(3));
    pt_gate_wait_entered(&gate, 1);
    pt_watchdog_t wd;
    pt_watchdog_start(&wd, PT_HANG_GUARD_NS, &gate);
    int st = knit_future_wait(f, 0);
    bool fired = pt_watchdog_stop(&wd);
    pt_gate_open(&gate);
    assert_int_equal(pt_wait_i64(f), 3);
    knit_future_release(f);
    knit_pool_destroy(pool);
    assert_false(fired); /* the wait blocked until the watchdog released the task */
    assert_int_equal(st, KNIT_E_AGAIN);
}

/* --- completion callbacks -------------------------------------------------------------------- */

static void test_callback_runs_once(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    pt_settle_count_t c = {0};
    knit_future_t *f = pt_call(pool, pt_task(pool, "gated"), knit_v_int64(5));
    knit_future_on_settle(f, pt_count_settle, &c);
    assert_int_equal(knit_pool_progress(pool, 0) >= 0, 1);
    assert_int_equal(c.calls, 0);
    pt_gate_open(&gate);
    assert_int_equal(knit_future_wait(f, -1), 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.status, 0);
    assert_ptr_equal(c.seen, f);
    for (int i = 0; i < 3; i++)
        knit_pool_progress(pool, 0);
    knit_future_t *g = pt_call_i64(pool, pt_task(pool, "add_one"), 1);
    assert_int_equal(pt_wait_i64(g), 2);
    assert_int_equal(c.calls, 1);
    knit_future_release(g);
    knit_future_release(f);
    knit_pool_destroy(pool);
    assert_int_equal(c.calls, 1);
}

static void test_callback_registered_after_settlement_runs_at_once(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    knit_future_t *f = pt_call_i64(pool, pt_task(pool, "add_one"), 1);
    assert_int_equal(pt_wait_i64(f), 2);
    pt_settle_count_t c = {0};
    knit_future_on_settle(f, pt_count_settle, &c);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.status, 0);
    knit_pool_progress(pool, 0);
    assert_int_equal(c.calls, 1);
    knit_future_release(f);
    knit_pool_destroy(pool);
    assert_int_equal(c.calls, 1);
}

/* A call settled early (cancel) runs its callback once, whether registered before or after. */
static void test_callback_of_cancelled_call_runs_once(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    pt_settle_count_t before = {0}, after = {0};
    knit_future_t *f = pt_call(pool, pt_task(pool, "gated"), knit_v_int64(1));
    knit_future_on_settle(f, pt_count_settle, &before);
    assert_int_equal(knit_future_cancel(f), 0);
    assert_int_equal(knit_future_status(f), KNIT_E_ABORTED);
    knit_future_t *g = pt_call(pool, pt_task(pool, "gated"), knit_v_int64(2));
    assert_int_equal(knit_future_cancel(g), 0);
    knit_future_on_settle(g, pt_count_settle, &after);
    assert_int_equal(knit_future_cancel(g), 0); /* no effect on a settled future */
    knit_pool_progress(pool, 0);
    assert_int_equal(before.calls, 1);
    assert_int_equal(before.status, KNIT_E_ABORTED);
    assert_int_equal(after.calls, 1);
    assert_int_equal(after.status, KNIT_E_ABORTED);
    pt_gate_open(&gate);
    knit_future_t *h = pt_call_i64(pool, pt_task(pool, "add_one"), 10);
    assert_int_equal(pt_wait_i64(h), 11);
    knit_pool_progress(pool, 0);
    assert_int_equal(before.calls, 1);
    assert_int_equal(after.calls, 1);
    assert_int_equal(knit_future_status(f), KNIT_E_ABORTED); /* the late result is dropped */
    knit_future_release(f);
    knit_future_release(g);
    knit_future_release(h);
    knit_pool_destroy(pool);
}

/* Two callbacks on one future: each registration runs once. */
static void test_two_callbacks_both_run(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    pt_settle_count_t a = {0}, b = {0};
    knit_future_t *f = pt_call(pool, pt_task(pool, "gated"), knit_v_int64(1));
    knit_future_on_settle(f, pt_count_settle, &a);
    knit_future_on_settle(f, pt_count_settle, &b);
    pt_gate_open(&gate);
    assert_int_equal(knit_future_wait(f, -1), 0);
    knit_pool_progress(pool, 0);
    knit_future_release(f);
    knit_pool_destroy(pool);
    assert_int_equal(b.calls, 1);
    assert_int_equal(a.calls, 1);
}

/* --- batches ---------------------------------------------------------------------------------- */

static void test_call_batch(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    enum { N = 200 };
    knit_value_t args[N];
    knit_future_t *outs[N];
    for (int i = 0; i < N; i++)
        args[i] = knit_v_int64(i * 3);
    assert_int_equal(knit_call_batch(pool, pt_task(pool, "add_one"), args, N, outs), 0);
    for (int i = 0; i < N; i++) {
        assert_non_null(outs[i]);
        assert_int_equal(pt_wait_i64(outs[i]), i * 3 + 1);
        knit_future_release(outs[i]);
    }
    assert_int_equal(knit_call_batch(pool, pt_task(pool, "add_one"), NULL, 0, NULL), 0);
    knit_future_t *bad[2] = {(knit_future_t *)1, (knit_future_t *)1};
    assert_int_equal(knit_call_batch(pool, 999, args, 2, bad), KNIT_E_NO_TASK);
    assert_null(bad[0]);
    assert_null(bad[1]);
    assert_int_equal(knit_call_batch(pool, 0, NULL, 2, bad), KNIT_E_INVAL);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

static void test_call_invalid_arguments(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    knit_value_t v = knit_v_int64(1);
    knit_future_t *f = NULL;
    assert_int_equal(knit_call(pool, -1, &v, &f), KNIT_E_NO_TASK);
    assert_int_equal(knit_call(pool, (int)NTASKS, &v, &f), KNIT_E_NO_TASK);
    assert_int_equal(knit_call_name(pool, "missing", &v, &f), KNIT_E_NO_TASK);
    assert_int_equal(knit_task_index(pool, "missing"), KNIT_E_NO_TASK);
    assert_null(f);
    assert_int_equal(knit_call(NULL, 0, &v, &f), KNIT_E_INVAL);
    assert_int_equal(knit_call_after(pool, 0, NULL, &f), KNIT_E_INVAL);
    assert_int_equal(knit_pool_pending(pool), 0);
    /* by name */
    assert_int_equal(knit_call_name(pool, "add_one", &v, &f), 0);
    assert_int_equal(pt_wait_i64(f), 2);
    knit_future_release(f);
    knit_pool_destroy(pool);
}

/* A NULL `out` is an invalid argument: no call is made. */
static void test_call_null_out_is_inval(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    knit_value_t v = knit_v_int64(1);
    assert_int_equal(knit_call(pool, 0, &v, NULL), KNIT_E_INVAL);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_future_t *in = pt_call_i64(pool, pt_task(pool, "add_one"), 1);
    assert_int_equal(knit_call_after(pool, 0, in, NULL), KNIT_E_INVAL);
    assert_int_equal(pt_wait_i64(in), 2);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_future_release(in);
    knit_pool_destroy(pool);
}

/* --- knit_call_after ---------------------------------------------------------------------------
 */

static void test_call_after_gets_input_value(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    int add = pt_task(pool, "add_one");
    knit_future_t *in = pt_call(pool, pt_task(pool, "gated"), knit_v_int64(41));
    knit_future_t *dep = NULL;
    assert_int_equal(knit_call_after(pool, add, in, &dep), 0);
    assert_int_equal(knit_future_status(dep), KNIT_E_AGAIN);
    assert_int_equal(knit_future_task(dep), add);
    pt_gate_open(&gate);
    assert_int_equal(pt_wait_i64(dep), 42);
    assert_int_equal(pt_wait_i64(in), 41); /* the input keeps its own value */
    knit_future_release(in);
    knit_future_release(dep);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

static void test_call_after_rejection_propagates(void **state)
{
    (void)state;
    knit_pool_t *pool = small_payload_pool();
    int counted = pt_task(pool, "count_add");

    /* a task rejection: same status, same value, the dependent task never runs */
    knit_value_t cause = knit_v_str("root cause");
    knit_error_value_t err = {.name = "TypeError", .message = "bad 3", .cause = &cause};
    knit_value_t ev = knit_v_error(&err);
    knit_future_t *in = pt_call(pool, pt_task(pool, "reject_arg"), ev);
    knit_future_t *dep = NULL;
    assert_int_equal(knit_call_after(pool, counted, in, &dep), 0);
    assert_int_equal(knit_future_wait(dep, -1), KNIT_E_TASK);
    assert_true(knit_value_equal(knit_future_value(dep), &ev));
    assert_int_equal(knit_future_status(in), KNIT_E_TASK);
    knit_future_release(in);
    knit_future_release(dep);

    /* a library error settled at call time (payload too large) */
    in = pt_call(pool, pt_task(pool, "echo"), knit_v_bytes(big_static, 8192));
    assert_int_equal(knit_future_status(in), KNIT_E_PAYLOAD_TOO_LARGE);
    assert_int_equal(knit_call_after(pool, counted, in, &dep), 0);
    assert_int_equal(knit_future_wait(dep, -1), KNIT_E_PAYLOAD_TOO_LARGE);
    assert_true(knit_value_equal(knit_future_value(dep), knit_future_value(in)));
    knit_future_release(in);
    knit_future_release(dep);

    /* a cancelled input */
    in = pt_call(pool, pt_task(pool, "gated"), knit_v_int64(1));
    assert_int_equal(knit_call_after(pool, counted, in, &dep), 0);
    assert_int_equal(knit_future_cancel(in), 0);
    assert_int_equal(knit_future_wait(dep, -1), KNIT_E_ABORTED);
    knit_future_release(in);
    knit_future_release(dep);

    pt_gate_open(&gate);
    knit_pool_destroy(pool);
    assert_int_equal(atomic_load(&count_add_runs), 0);
}

/* Three dependents in a row; the caller drops the intermediate futures at once. */
static void test_call_after_chain_of_three(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    int add = pt_task(pool, "count_add");
    knit_future_t *f0 = pt_call_i64(pool, add, 10), *f1, *f2, *f3;
    assert_int_equal(knit_call_after(pool, add, f0, &f1), 0);
    assert_int_equal(knit_call_after(pool, add, f1, &f2), 0);
    assert_int_equal(knit_call_after(pool, add, f2, &f3), 0);
    knit_future_release(f0);
    knit_future_release(f1);
    knit_future_release(f2);
    assert_int_equal(pt_wait_i64(f3), 14);
    assert_int_equal(atomic_load(&count_add_runs), 4);
    knit_future_release(f3);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

static void test_call_after_input_already_settled(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    int add = pt_task(pool, "add_one");
    knit_future_t *in = pt_call_i64(pool, add, 1);
    assert_int_equal(pt_wait_i64(in), 2);
    knit_future_t *dep = NULL, *dep2 = NULL;
    assert_int_equal(knit_call_after(pool, add, in, &dep), 0);
    assert_int_equal(knit_call_after(pool, add, in, &dep2), 0);
    assert_int_equal(pt_wait_i64(dep), 3);
    assert_int_equal(pt_wait_i64(dep2), 3);
    knit_future_release(dep);
    knit_future_release(dep2);

    /* settled, its settlement not delivered yet (cancelled, no progress since) */
    knit_future_t *c = pt_call(pool, pt_task(pool, "gated"), knit_v_int64(1));
    assert_int_equal(knit_future_cancel(c), 0);
    assert_int_equal(knit_call_after(pool, add, c, &dep), 0);
    assert_int_equal(knit_future_wait(dep, -1), KNIT_E_ABORTED);
    knit_future_release(dep);
    knit_future_release(c);
    knit_future_release(in);
    pt_gate_open(&gate);
    knit_pool_destroy(pool);
}

/* Dependents on two different inputs that have both settled and been delivered: each
 * dependent must be dispatched, whatever order they were created in. */
static void test_call_after_several_settled_inputs(void **state)
{
    (void)state;
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    int add = pt_task(pool, "add_one");
    knit_future_t *a = pt_call_i64(pool, add, 100), *b = pt_call_i64(pool, add, 200);
    assert_int_equal(pt_wait_i64(a), 101);
    assert_int_equal(pt_wait_i64(b), 201);
    knit_future_t *d1, *d2, *d3;
    assert_int_equal(knit_call_after(pool, add, a, &d1), 0);
    assert_int_equal(knit_call_after(pool, add, b, &d2), 0);
    assert_int_equal(knit_call_after(pool, add, a, &d3), 0);
    int s1 = knit_future_wait(d1, PT_HANG_GUARD_NS);
    int s2 = knit_future_wait(d2, PT_HANG_GUARD_NS);
    int s3 = knit_future_wait(d3, PT_HANG_GUARD_NS);
    if (s2 == KNIT_E_AGAIN)
        knit_future_cancel(d2); /* unstick it so the pool can be torn down */
    knit_pool_destroy(pool);
    int64_t v1 = s1 == 0 ? knit_future_value(d1)->u.i64 : -1;
    int64_t v2 = s2 == 0 ? knit_future_value(d2)->u.i64 : -1;
    int64_t v3 = s3 == 0 ? knit_future_value(d3)->u.i64 : -1;
    knit_future_release(a);
    knit_future_release(b);
    knit_future_release(d1);
    knit_future_release(d2);
    knit_future_release(d3);
    assert_int_equal(s1, 0);
    assert_int_equal(s3, 0);
    assert_int_equal(s2, 0);
    assert_int_equal(v1, 102);
    assert_int_equal(v2, 202);
    assert_int_equal(v3, 102);
}

static void test_call_after_other_pool_input(void **state)
{
    (void)state;
    knit_pool_t *p1 = pt_pool(NULL, tasks, NTASKS), *p2 = pt_pool(NULL, tasks, NTASKS);
    knit_future_t *in = pt_call_i64(p1, pt_task(p1, "add_one"), 1), *dep = NULL;
    assert_int_equal(knit_call_after(p2, 0, in, &dep), KNIT_E_INVAL);
    assert_null(dep);
    assert_int_equal(knit_pool_pending(p2), 0);
    assert_int_equal(pt_wait_i64(in), 2);
    knit_future_release(in);
    knit_pool_destroy(p1);
    knit_pool_destroy(p2);
}

/* --- values through a worker ---------------------------------------------------------------- */

static uint8_t buf64[64];
static char text_big[3000];

static void test_every_value_kind_round_trips(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof buf64; i++)
        buf64[i] = (uint8_t)(i * 7 + 1);
    memset(text_big, 'k', sizeof text_big);
    static uint8_t big_bytes[2048];
    for (size_t i = 0; i < sizeof big_bytes; i++)
        big_bytes[i] = (uint8_t)(i ^ (i >> 8));
    static const uint8_t mag[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

    knit_value_t inner_cause = knit_v_json("{\"code\":7}");
    knit_error_value_t inner = {.name = "TypeError", .message = "inner", .cause = &inner_cause};
    knit_value_t inner_v = knit_v_error(&inner);
    knit_error_value_t outer = {.name = "Error", .message = "outer \xc3\xa9", .cause = &inner_v};
    knit_error_value_t plain = {.name = "RangeError", .message = "", .cause = NULL};
    knit_envelope_t env_json = {.header = "{\"a\":[1,2]}",
        .header_len = 11,
        .body = knit_v_bytes(buf64, sizeof buf64),
        .header_kind = KNIT_ENV_JSON};
    knit_envelope_t env_str = {.header = "plain header",
        .header_len = 12,
        .body = knit_v_bytes(big_bytes, sizeof big_bytes),
        .header_kind = KNIT_ENV_STRING};
    int fd = memfd_create("knit-test-psb", MFD_CLOEXEC);
    assert_true(fd >= 0);
    knit_psb_desc_t psb_fd = {.fd = fd, .name = "", .size = 4096, .offset = 128, .length = 256};
    knit_psb_desc_t psb_named
        = {.fd = -1, .name = "/knit-test-psb", .size = 1ull << 33, .offset = 5, .length = 6};

    knit_value_t vals[64];
    const char *names[64];
    size_t n = 0;
#define ADD(label, v)                                                                              \
    do {                                                                                           \
        names[n] = (label);                                                                        \
        vals[n++] = (v);                                                                           \
    } while (0)
    ADD("null", knit_v_null());
    ADD("undefined", knit_v_undefined());
    ADD("true", knit_v_bool(true));
    ADD("false", knit_v_bool(false));
    ADD("f64", knit_v_f64(1.5));
    ADD("-0", knit_v_f64(-0.0));
    ADD("nan", knit_v_f64(NAN));
    ADD("inf", knit_v_f64(-INFINITY));
    ADD("int64 min", knit_v_int64(INT64_MIN));
    ADD("int64 max", knit_v_int64(INT64_MAX));
    ADD("bigint +", knit_v_bigint(false, mag, sizeof mag));
    ADD("bigint -", knit_v_bigint(true, mag, sizeof mag));
    ADD("empty string", knit_v_strn("", 0));
    ADD("string", knit_v_str("h\xc3\xa9llo"));
    ADD("string with NUL", knit_v_strn("a\0b", 3));
    ADD("long string", knit_v_strn(text_big, sizeof text_big));
    ADD("json", knit_v_json("{\"k\":[1,2,{\"x\":null}]}"));
    ADD("empty bytes", knit_v_bytes(buf64, 0));
    ADD("bytes", knit_v_bytes(buf64, sizeof buf64));
    ADD("big bytes", knit_v_bytes(big_bytes, sizeof big_bytes));
    for (int e = 0; e < KNIT_ELEM_COUNT_; e++)
        ADD(knit_elem_name((knit_elem_t)e), knit_v_typed((knit_elem_t)e, buf64, sizeof buf64));
    ADD("big typed", knit_v_typed(KNIT_ELEM_F64, big_bytes, sizeof big_bytes));
    ADD("date", knit_v_date(1700000000123.0));
    ADD("invalid date", knit_v_date(NAN));
    ADD("error", knit_v_error(&outer));
    ADD("error no cause", knit_v_error(&plain));
    ADD("envelope json", knit_v_envelope(&env_json));
    ADD("envelope string", knit_v_envelope(&env_str));
    ADD("psb fd", knit_v_psb(&psb_fd));
    ADD("psb named", knit_v_psb(&psb_named));
#undef ADD

    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    int echo = pt_task(pool, "echo");
    knit_future_t *fs[64];
    for (size_t i = 0; i < n; i++)
        fs[i] = pt_call(pool, echo, vals[i]);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        int st = knit_future_wait(fs[i], -1);
        const knit_value_t *r = knit_future_value(fs[i]);
        if (st != 0 || !knit_value_equal(r, &vals[i])) {
            print_error("%s: status %d, kind %s\n", names[i], st,
                r ? knit_kind_name((knit_kind_t)r->kind) : "-");
            bad++;
        }
        knit_future_release(fs[i]);
    }
    knit_pool_destroy(pool);
    close(fd);
    assert_int_equal(bad, 0);
}

/* A shared buffer travels by reference: the worker sees the same memory; references balance. */
static void test_shared_buffer_round_trip(void **state)
{
    (void)state;
    knit_shared_buf_t *b = NULL;
    assert_int_equal(knit_shared_buf_new(256, &b), 0);
    memset(knit_shared_buf_data(b), 0x5a, 256);
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    knit_future_t *f = pt_call(pool, pt_task(pool, "echo"), knit_v_shared(b));
    assert_int_equal(knit_future_wait(f, -1), 0);
    const knit_value_t *r = knit_future_value(f);
    assert_int_equal(r->kind, KNIT_KIND_SHARED);
    assert_ptr_equal(r->u.shared, b);
    /* ours, the future's, and until it lets go of its result, the worker's */
    assert_true(knit_shared_buf_refs(b) >= 2);
    knit_future_release(f);
    knit_pool_destroy(pool); /* joins the worker */
    assert_int_equal(knit_shared_buf_refs(b), 1);
    knit_shared_buf_release(b);
}

static atomic_int moved_releases;

static void count_release(void *data, void *ctx)
{
    (void)ctx;
    free(data);
    atomic_fetch_add(&moved_releases, 1);
}

/* A moved buffer changes hands: the caller's value is consumed, the result owns it, and the
 * memory is released exactly once. */
static void test_moved_buffer_round_trip(void **state)
{
    (void)state;
    atomic_store(&moved_releases, 0);
    uint8_t *data = malloc(1000);
    assert_non_null(data);
    memset(data, 0x33, 1000);
    knit_moved_buf_t *m = NULL;
    assert_int_equal(knit_moved_new(data, 1000, count_release, NULL, &m), 0);
    knit_pool_t *pool = pt_pool(NULL, tasks, NTASKS);
    knit_value_t v = knit_v_moved(m);
    knit_future_t *f = NULL;
    assert_int_equal(knit_call(pool, pt_task(pool, "echo"), &v, &f), 0);
    assert_int_equal(v.kind, KNIT_KIND_UNDEFINED);
    assert_int_equal(knit_future_wait(f, -1), 0);
    const knit_value_t *r = knit_future_value(f);
    assert_int_equal(r->kind, KNIT_KIND_MOVED);
    assert_ptr_equal(r->u.moved->data, data);
    assert_int_equal(r->u.moved->len, 1000);
    assert_int_equal(atomic_load(&moved_releases), 0);
    knit_future_release(f);
    assert_int_equal(atomic_load(&moved_releases), 1);
    knit_pool_destroy(pool);
    assert_int_equal(atomic_load(&moved_releases), 1);
}

/* --- payload limits and encode failures ------------------------------------------------------ */

static void test_payload_too_large_rejects_that_call(void **state)
{
    (void)state;
    knit_pool_t *pool = small_payload_pool();
    int echo = pt_task(pool, "echo");
    knit_future_t *f = pt_call(pool, echo, knit_v_bytes(big_static, 4097));
    assert_int_equal(knit_future_status(f), KNIT_E_PAYLOAD_TOO_LARGE); /* at once */
    assert_true(pt_value_mentions(knit_future_value(f), "maxPayloadBytes"));
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_PAYLOAD_TOO_LARGE);
    knit_future_release(f);
    knit_value_t ok = knit_v_bytes(big_static, 4000);
    f = pt_call(pool, echo, ok);
    assert_int_equal(knit_future_wait(f, -1), 0);
    assert_true(knit_value_equal(knit_future_value(f), &ok));
    knit_future_release(f);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

/* The same limit for a call that waited in the host backlog first: it alone is rejected, the
 * calls around it are served in order. */
static void test_payload_too_large_from_backlog(void **state)
{
    (void)state;
    knit_pool_t *pool = small_payload_pool();
    int gated = pt_task(pool, "gated"), echo = pt_task(pool, "echo");
    enum { HELD = 70, AFTER = 10 }; /* > 64 = 32 slots + 32 decoded: some wait on the host */
    knit_future_t *held[HELD], *after[AFTER];
    pt_call_range(pool, gated, held, HELD, 0);
    knit_future_t *big = pt_call(pool, echo, knit_v_bytes(big_static, 5000));
    assert_int_equal(knit_future_status(big), KNIT_E_AGAIN); /* backlogged, not encoded yet */
    pt_call_range(pool, echo, after, AFTER, 1000);
    pt_gate_open(&gate);
    assert_int_equal(knit_future_wait(big, -1), KNIT_E_PAYLOAD_TOO_LARGE);
    assert_true(pt_value_mentions(knit_future_value(big), "maxPayloadBytes"));
    pt_wait_range(held, HELD, 0);
    pt_wait_range(after, AFTER, 1000);
    knit_future_release(big);
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
}

/* A worker result that cannot be encoded rejects the call with the encoder's code and its
 * message as a string; the worker goes on serving. */
static void test_unencodable_result(void **state)
{
    (void)state;
    knit_pool_t *pool = small_payload_pool();
    int bad = pt_task(pool, "bad_result"), add = pt_task(pool, "add_one");
    static const int expect[3] = {KNIT_E_PAYLOAD_TOO_LARGE, KNIT_E_UNSUPPORTED, KNIT_E_INVAL};
    int got[3], kind[3], next[3];
    size_t len[3];
    bool mentions = false;
    for (int k = 0; k < 3; k++) {
        knit_future_t *f = pt_call_i64(pool, bad, k);
        got[k] = knit_future_wait(f, -1);
        const knit_value_t *v = knit_future_value(f);
        kind[k] = v->kind;
        len[k] = v->len;
        if (k == 0)
            mentions = pt_value_mentions(v, "maxPayloadBytes");
        knit_future_release(f);
        f = pt_call_i64(pool, add, k); /* the worker goes on */
        next[k] = knit_future_wait(f, -1) == 0 ? (int)knit_future_value(f)->u.i64 : -1;
        knit_future_release(f);
    }
    knit_pool_destroy(pool);
    for (int k = 0; k < 3; k++) {
        if (got[k] != expect[k])
            print_error(
                "case %d: status %d (%s), want %d\n", k, got[k], knit_strerror(got[k]), expect[k]);
        assert_int_equal(kind[k], KNIT_KIND_STRING);
        assert_true(len[k] > 0);
        assert_int_equal(next[k], k + 1);
    }
    assert_true(mentions);
    for (int k = 0; k < 3; k++)
        assert_int_equal(got[k], expect[k]);
}

/* The request arena has room for a few large payloads while the worker is busy; the call that
 * finds it full is rejected at once with KNIT_E_ARENA_FULL; the others are served. */
static void test_arena_full_rejects_call(void **state)
{
    (void)state;
    knit_pool_opts_t o = {0};
    o.payload.max_byte_length = 65536; /* maxPayloadBytes 8192 */
    knit_pool_t *pool = pt_pool(&o, tasks, NTASKS);
    int echo = pt_task(pool, "echo");
    knit_future_t *hold = pt_call_i64(pool, pt_task(pool, "gated"), 0);
    pt_gate_wait_entered(&gate, 1); /* the worker decodes nothing more until the gate opens */
    enum { MAX = 40, SZ = 8000 };
    static uint8_t payloads[MAX][SZ];
    knit_future_t *fs[MAX];
    int full_at = -1;
    for (int i = 0; i < MAX && full_at < 0; i++) {
        memset(payloads[i], i + 1, SZ);
        fs[i] = pt_call(pool, echo, knit_v_bytes(payloads[i], SZ));
        int st = knit_future_status(fs[i]);
        if (st == KNIT_E_ARENA_FULL)
            full_at = i;
        else
            assert_int_equal(st, KNIT_E_AGAIN);
    }
    assert_true(full_at > 0);
    assert_int_equal(knit_future_value(fs[full_at])->kind, KNIT_KIND_STRING);
    pt_gate_open(&gate);
    assert_int_equal(pt_wait_i64(hold), 0);
    for (int i = 0; i < full_at; i++) {
        knit_value_t want = knit_v_bytes(payloads[i], SZ);
        assert_int_equal(knit_future_wait(fs[i], -1), 0);
        assert_true(knit_value_equal(knit_future_value(fs[i]), &want));
    }
    for (int i = 0; i <= full_at; i++)
        knit_future_release(fs[i]);
    /* the arena is reusable afterwards */
    knit_value_t again = knit_v_bytes(payloads[0], SZ);
    knit_future_t *f = pt_call(pool, echo, again);
    assert_int_equal(knit_future_wait(f, -1), 0);
    assert_true(knit_value_equal(knit_future_value(f), &again));
    knit_future_release(f);
    knit_future_release(hold);
    knit_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        PT_TEST(test_resolve_with_value, &fixture),
        PT_TEST(test_task_rejection_carries_value, &fixture),
        PT_TEST(test_future_accessors_pending_and_settled, &fixture),
        PT_TEST(test_wait_zero_polls_once, &fixture),
        PT_TEST(test_callback_runs_once, &fixture),
        PT_TEST(test_callback_registered_after_settlement_runs_at_once, &fixture),
        PT_TEST(test_callback_of_cancelled_call_runs_once, &fixture),
        PT_TEST(test_two_callbacks_both_run, &fixture),
        PT_TEST(test_call_batch, &fixture),
        PT_TEST(test_call_invalid_arguments, &fixture),
        PT_TEST(test_call_after_gets_input_value, &fixture),
        PT_TEST(test_call_after_rejection_propagates, &fixture),
        PT_TEST(test_call_after_chain_of_three, &fixture),
        PT_TEST(test_call_after_input_already_settled, &fixture),
        PT_TEST(test_call_after_several_settled_inputs, &fixture),
        PT_TEST(test_call_after_other_pool_input, &fixture),
        PT_TEST(test_every_value_kind_round_trips, &fixture),
        PT_TEST(test_shared_buffer_round_trip, &fixture),
        PT_TEST(test_moved_buffer_round_trip, &fixture),
        PT_TEST(test_payload_too_large_rejects_that_call, &fixture),
        PT_TEST(test_payload_too_large_from_backlog, &fixture),
        PT_TEST(test_unencodable_result, &fixture),
        PT_TEST(test_arena_full_rejects_call, &fixture),
        /* last: with UBSan the NULL store it provokes ends the program */
        PT_TEST(test_call_null_out_is_inval, &fixture),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
