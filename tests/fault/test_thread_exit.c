/*
 * A thread worker that leaves its loop without being asked to (its request stream ended or
 * broke under it) is noticed: its calls and every later call on its lane settle with
 * KNIT_E_WORKER_DIED instead of waiting forever, and the other lane goes on serving.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include "knit/knit.h"
#include "sched/state.h"

static int echo(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = *arg;
    *arg = knit_v_undefined();
    return 0;
}

static const knit_task_def_t tasks[] = {{.name = "echo", .fn = echo}};

static int call_wait(knit_pool_t *p, int64_t x)
{
    knit_value_t v = knit_v_int64(x);
    knit_future_t *f;
    assert_int_equal(knit_call(p, 0, &v, &f), 0);
    int st = knit_future_wait(f, -1);
    knit_future_release(f);
    return st;
}

static void worker_leaves_its_loop(knit_transport_t t)
{
    knit_pool_opts_t o = {.threads = 2,
        .transport = t,
        .balancer = KNIT_BALANCER_ROUND_ROBIN,
        .steal = KNIT_STEAL_OFF};
    knit_pool_t *p;
    assert_int_equal(knit_pool_create(&o, tasks, 1, &p), 0);
    assert_int_equal(call_wait(p, 1), 0);
    assert_int_equal(call_wait(p, 2), 0);
    /* end worker 0's request stream under it: it reads end-of-stream and leaves its loop (the
     * host's end is closed too, so a call sent there may fail as a write error) */
    p->lanes[0].link->ops->end_tx(p->lanes[0].link);
    int died = 0, served = 0;
    for (int i = 0; i < 8; i++) {
        int st = call_wait(p, 10 + i);
        if (st != 0 && st != KNIT_E_WORKER_DIED && st != KNIT_E_CORRUPT && st != KNIT_E_SYS)
            fail_msg("%s: call %d settled with %d (%s)", knit_transport_name(t), i, st,
                knit_strerror(st));
        died += st != 0;
        served += st == 0;
    }
    assert_true(served >= 4); /* lane 1, and every call once lane 0 is known gone */
    assert_int_equal(knit_pool_pending(p), 0);
    knit_pool_destroy(p);
    (void)died;
}

static void test_thread_worker_leaving_its_loop_is_noticed(void **s)
{
    (void)s;
    for (int t = KNIT_TRANSPORT_PIPE; t <= KNIT_TRANSPORT_TCP; t++)
        worker_leaves_its_loop((knit_transport_t)t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_worker_leaving_its_loop_is_noticed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
