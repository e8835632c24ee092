/*
 * Results a task lends (knit_task_fn: memory valid until the task returns) reach their caller
 * intact even when they have to wait for a free return slot, on every runtime and transport.
 * This program is its own process worker.
 */
#include "testutil.h"

#include <string.h>

#include "knit/knit.h"
#include "knit/shared_buffer.h"

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

static int echo(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = *arg;
    *arg = knit_v_undefined();
    return 0;
}

/* tasks are indexed in name order: echo 0, lend 1 */
static const knit_task_def_t tasks[] = {{.name = "lend", .fn = lend}, {.name = "echo", .fn = echo}};

static void lent_results_survive_a_full_return_lock(knit_runtime_t rt, knit_transport_t t)
{
    enum { CALLS = 200 };
    knit_pool_opts_t o = {.threads = 1, .runtime = rt, .transport = t};
    knit_pool_t *p;
    assert_int_equal(knit_pool_create(&o, tasks, 2, &p), 0);
    static knit_future_t *f[CALLS];
    for (int i = 0; i < CALLS; i++) {
        knit_value_t v = knit_v_int64(i);
        assert_int_equal(knit_call(p, knit_task_index(p, "lend"), &v, &f[i]), 0);
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
    for (int t = KNIT_TRANSPORT_KNIT; t <= KNIT_TRANSPORT_SEQ; t++)
        lent_results_survive_a_full_return_lock(KNIT_RUNTIME_THREAD, (knit_transport_t)t);
}

static void test_lent_results_process(void **s)
{
    (void)s;
    for (int t = KNIT_TRANSPORT_KNIT; t <= KNIT_TRANSPORT_SEQ; t++)
        lent_results_survive_a_full_return_lock(KNIT_RUNTIME_PROCESS, (knit_transport_t)t);
}

/* A buffer the host made, sent to a process worker and sent back, resolves to the host's own
 * buffer again; a worker cannot make the host open another of its descriptors this way (the
 * codec tests cover that refusal). */
static void test_psb_round_trip_through_a_process_worker(void **s)
{
    (void)s;
    knit_pool_opts_t o = {.threads = 1, .runtime = KNIT_RUNTIME_PROCESS};
    knit_pool_t *p;
    assert_int_equal(knit_pool_create(&o, tasks, 2, &p), 0);
    knit_psb_t *b;
    assert_int_equal(knit_psb_create(4096, &b), 0);
    memcpy(knit_psb_data(b), "round trip", 11);
    knit_psb_desc_t d;
    assert_int_equal(knit_psb_describe(b, 0, 4096, &d), 0);
    knit_value_t v = knit_v_psb(&d);
    knit_future_t *f;
    assert_int_equal(knit_call(p, knit_task_index(p, "echo"), &v, &f), 0);
    int st = knit_future_wait(f, -1);
    if (st != 0)
        fail_msg("the echo of a host buffer: %d (%s)", st, knit_strerror(st));
    const knit_value_t *r = knit_future_value(f);
    assert_int_equal(r->kind, KNIT_KIND_PSB);
    knit_psb_t *back;
    assert_int_equal(knit_psb_open(r->u.psb, &back), 0);
    assert_string_equal((const char *)knit_psb_data(back), "round trip");
    knit_psb_close(back);
    knit_future_release(f);
    knit_psb_close(b);
    knit_pool_destroy(p);
}

int main(void)
{
    int rc = knit_worker_process_main(tasks, 2, NULL, NULL);
    if (rc != KNIT_E_AGAIN)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lent_results_thread),
        cmocka_unit_test(test_lent_results_process),
        cmocka_unit_test(test_psb_round_trip_through_a_process_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
