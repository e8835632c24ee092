/*
 * Results a task lends (knit_task_fn: memory valid until the task returns) reach their caller
 * intact even when they have to wait for a free return slot, on every runtime and transport.
 * This program is its own process worker.
 */
#include "testutil.h"

#include <string.h>

#include "knit/knit.h"

/* Returns 256 KiB from a buffer it reuses for every call - lent, not owned - holding the call's
 * number at both ends. That is more than a pipe or socket buffer takes at once, so results
 * queue up behind each other in the worker. */
#define LENT_BYTES (256u << 10)

static int lend(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    static _Thread_local int64_t buf[LENT_BYTES / sizeof(int64_t)];
    buf[0] = buf[LENT_BYTES / sizeof(int64_t) - 1] = arg->u.i64;
    *result = knit_v_bytes(buf, LENT_BYTES);
    return 0;
}

static const knit_task_def_t tasks[] = {{.name = "lend", .fn = lend}};

static void lent_results_survive_a_full_return_lock(knit_runtime_t rt, knit_transport_t t)
{
    enum { CALLS = 200 };
    knit_pool_opts_t o = {.threads = 1, .runtime = rt, .transport = t};
    knit_pool_t *p;
    assert_int_equal(knit_pool_create(&o, tasks, 1, &p), 0);
    static knit_future_t *f[CALLS];
    for (int i = 0; i < CALLS; i++) {
        knit_value_t v = knit_v_int64(i);
        assert_int_equal(knit_call(p, 0, &v, &f[i]), 0);
    }
    int wrong = 0;
    for (int i = 0; i < CALLS; i++) {
        assert_int_equal(knit_future_wait(f[i], -1), 0);
        const knit_value_t *v = knit_future_value(f[i]);
        int64_t head = -1, tail = -1;
        if (v->kind == KNIT_KIND_BYTES && v->len == LENT_BYTES) {
            memcpy(&head, v->u.ptr, sizeof head);
            memcpy(&tail, (const uint8_t *)v->u.ptr + LENT_BYTES - sizeof tail, sizeof tail);
        }
        wrong += head != i || tail != i;
        knit_future_release(f[i]);
    }
    knit_pool_destroy(p);
    if (wrong)
        fail_msg("%s/%s: %d of %d results carried another call's value",
            rt == KNIT_RUNTIME_THREAD ? "thread" : "process", knit_transport_name(t), wrong, CALLS);
}

static void test_lent_results_thread(void **s)
{
    (void)s;
    for (int t = KNIT_TRANSPORT_KNIT; t <= KNIT_TRANSPORT_TCP; t++)
        lent_results_survive_a_full_return_lock(KNIT_RUNTIME_THREAD, (knit_transport_t)t);
}

static void test_lent_results_process(void **s)
{
    (void)s;
    for (int t = KNIT_TRANSPORT_KNIT; t <= KNIT_TRANSPORT_TCP; t++)
        lent_results_survive_a_full_return_lock(KNIT_RUNTIME_PROCESS, (knit_transport_t)t);
}

int main(void)
{
    int rc = knit_worker_process_main(tasks, 1, NULL, NULL);
    if (rc != KNIT_E_AGAIN)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lent_results_thread),
        cmocka_unit_test(test_lent_results_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
