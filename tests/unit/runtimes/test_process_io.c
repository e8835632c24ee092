/* Shared buffers, imported tasks and bootstrap hooks, on thread and on process workers. */
#include "pool_testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "knit/knit.h"
#include "knit/shared_buffer.h"

static int local_booted;

static int local_boot(void *ctx, uint32_t worker)
{
    (void)ctx;
    const char *fail = getenv("KNIT_TEST_BOOT_FAIL");
    if (fail && !strcmp(fail, "1"))
        return 7;
    local_booted = 500 + (int)worker;
    return 0;
}

static int task_local_booted(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)arg;
    *result = knit_v_int64(local_booted);
    return 0;
}

/* Double every u32 of the described range in place; return the new sum. */
static int psb_double_sum(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    const knit_psb_desc_t *d = arg->kind == KNIT_KIND_PSB ? arg->u.psb
        : arg->kind == KNIT_KIND_ENVELOPE && arg->u.env->body.kind == KNIT_KIND_PSB
        ? arg->u.env->body.u.psb
        : NULL;
    knit_psb_t *b;
    knit_psb_view_t v;
    if (!d || knit_psb_open(d, &b) < 0) {
        *result = knit_v_str(knit_errmsg());
        return KNIT_TASK_REJECT;
    }
    if (knit_psb_desc_view(b, d, KNIT_ELEM_U32, &v) < 0) {
        knit_psb_close(b);
        *result = knit_v_str(knit_errmsg());
        return KNIT_TASK_REJECT;
    }
    int64_t sum = 0;
    uint32_t *u = v.data;
    for (size_t i = 0; i < v.count; i++) {
        u[i] *= 2;
        sum += u[i];
    }
    knit_psb_close(b);
    *result = knit_v_int64(sum);
    return 0;
}

/* Make a named buffer of 4096 bytes (byte i = i & 0xFF) and return its descriptor. */
static int psb_make_named(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    static _Thread_local knit_psb_desc_t d;
    knit_psb_t *b;
    if (knit_psb_create_named((const char *)arg->u.ptr, 4096, &b) < 0) {
        *result = knit_v_str(knit_errmsg());
        return KNIT_TASK_REJECT;
    }
    uint8_t *p = knit_psb_data(b);
    for (int i = 0; i < 4096; i++)
        p[i] = (uint8_t)i;
    knit_psb_describe(b, 0, 4096, &d);
    knit_psb_close(b);
    *result = knit_v_psb(&d);
    return 0;
}

static const knit_task_def_t tasks[] = {
    {.name = "booted", .import_path = KNIT_TEST_TASKS_SO, .import_symbol = "knit_test_booted"},
    {.name = "local_booted", .fn = task_local_booted},
    {.name = "psb_double_sum", .fn = psb_double_sum},
    {.name = "psb_make_named", .fn = psb_make_named},
    {.name = "triple", .import_path = KNIT_TEST_TASKS_SO, .import_symbol = "knit_test_triple"},
};
#define NTASKS (sizeof tasks / sizeof tasks[0])

static knit_runtime_t thread_rt = KNIT_RUNTIME_THREAD, process_rt = KNIT_RUNTIME_PROCESS;

/* A pool on the runtime the test runs on; `o` NULL for one worker and nothing else. */
static knit_pool_t *make(void **state, knit_pool_opts_t *o)
{
    knit_pool_opts_t one = {.threads = 1};
    if (!o)
        o = &one;
    o->runtime = *(knit_runtime_t *)*state;
    if (o->runtime == KNIT_RUNTIME_THREAD && !o->worker.bootstrap_import_path)
        o->worker.bootstrap = local_boot; /* processes get it from knit_worker_process_main */
    return pt_pool(o, tasks, NTASKS);
}

static int call(knit_pool_t *p, const char *task, knit_value_t v, knit_value_t *out)
{
    knit_future_t *f;
    assert_int_equal(knit_call_name(p, task, &v, &f), 0);
    int rc = knit_future_wait(f, -1);
    knit_future_take(f, out);
    knit_future_release(f);
    return rc;
}

/* A pool made with `o` (see make): `task` called with `arg` resolves with the int64 `want`. */
static void expect_i64(
    void **state, knit_pool_opts_t *o, const char *task, knit_value_t arg, int64_t want)
{
    knit_pool_t *p = make(state, o);
    knit_value_t out;
    assert_int_equal(call(p, task, arg, &out), 0);
    assert_int_equal(out.u.i64, want);
    knit_pool_destroy(p);
}

static void test_imported_task(void **state)
{
    expect_i64(state, NULL, "triple", knit_v_int64(14), 42);
}

/* With an inline lane, imported tasks still run only on workers (never on the host). */
static void test_imported_task_never_inline(void **state)
{
    knit_pool_opts_t o = {.threads = 1, .inliner = {.enabled = true}};
    knit_pool_t *p = make(state, &o);
    for (int i = 0; i < 20; i++) {
        knit_value_t out;
        assert_int_equal(call(p, "triple", knit_v_int64(i), &out), 0);
        assert_int_equal(out.u.i64, 3 * i);
    }
    knit_pool_destroy(p);
}

static void test_bad_import_fails_startup(void **state)
{
    knit_task_def_t bad[] = {{.name = "nope", .import_path = "/nonexistent/libnope.so"}};
    knit_pool_opts_t o = {.threads = 1, .runtime = *(knit_runtime_t *)*state};
    knit_pool_t *p;
    if (o.runtime == KNIT_RUNTIME_PROCESS)
        o.worker.process.program = NULL; /* our own program: its task table differs */
    assert_int_equal(knit_pool_create(&o, bad, 1, &p), 0);
    knit_future_t *f;
    knit_value_t v = knit_v_null();
    assert_int_equal(knit_call(p, 0, &v, &f), 0);
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_WORKER_STARTUP);
    knit_future_release(f);
    knit_pool_destroy(p);
}

static void test_local_bootstrap_runs_first(void **state)
{
    expect_i64(state, NULL, "local_booted", knit_v_null(), 500);
}

static void test_imported_bootstrap(void **state)
{
    knit_pool_opts_t o = {.threads = 1};
    o.worker.bootstrap_import_path = KNIT_TEST_TASKS_SO;
    o.worker.bootstrap_import_symbol = "knit_test_boot";
    expect_i64(state, &o, "booted", knit_v_null(), 1000);
}

static void test_failing_bootstrap_rejects_calls(void **state)
{
    setenv("KNIT_TEST_BOOT_FAIL", "1", 1);
    knit_pool_t *p = make(state, NULL);
    knit_value_t out;
    assert_int_equal(call(p, "triple", knit_v_int64(1), &out), KNIT_E_WORKER_STARTUP);
    assert_int_equal(out.kind, KNIT_KIND_STRING);
    assert_non_null(strstr((const char *)out.u.ptr, "bootstrap hook returned 7"));
    knit_value_free(&out);
    knit_pool_destroy(p);
    unsetenv("KNIT_TEST_BOOT_FAIL");
}

/* A new anonymous buffer of `bytes` bytes, seen as u32 elements. */
static uint32_t *new_psb_u32(knit_psb_t **b, size_t bytes)
{
    assert_int_equal(knit_psb_create(bytes, b), 0);
    return knit_psb_data(*b);
}

static void test_anonymous_buffer_host_to_worker(void **state)
{
    knit_pool_t *p = make(state, NULL);
    knit_psb_t *b;
    uint32_t *u = new_psb_u32(&b, 4096);
    for (int i = 0; i < 1024; i++)
        u[i] = (uint32_t)i;
    knit_psb_desc_t d;
    assert_int_equal(knit_psb_describe(b, 64, 128, &d), 0); /* elements 16..47 */
    knit_value_t out;
    assert_int_equal(call(p, "psb_double_sum", knit_v_psb(&d), &out), 0);
    int64_t want = 0;
    for (int i = 16; i < 48; i++)
        want += 2 * i;
    assert_int_equal(out.u.i64, want);
    /* the worker's writes are visible here: shared, not copied */
    assert_int_equal(u[15], 15);
    assert_int_equal(u[16], 32);
    assert_int_equal(u[47], 94);
    assert_int_equal(u[48], 48);
    knit_psb_close(b);
    knit_pool_destroy(p);
}

static void test_buffer_as_envelope_body(void **state)
{
    knit_pool_t *p = make(state, NULL);
    knit_psb_t *b;
    uint32_t *u = new_psb_u32(&b, 256);
    for (int i = 0; i < 64; i++)
        u[i] = 1;
    knit_envelope_t env = {.header = "{\"op\":\"sum\"}", .header_len = 12};
    knit_psb_desc_t d;
    assert_int_equal(knit_psb_describe(b, 0, 256, &d), 0);
    env.body = knit_v_psb(&d);
    knit_value_t out;
    assert_int_equal(call(p, "psb_double_sum", knit_v_envelope(&env), &out), 0);
    assert_int_equal(out.u.i64, 128);
    knit_psb_close(b);
    knit_pool_destroy(p);
}

static void test_named_buffer_worker_to_host(void **state)
{
    knit_pool_t *p = make(state, NULL);
    char name[32];
    snprintf(name, sizeof name, "/knit-test-%d", (int)getpid());
    knit_value_t out;
    assert_int_equal(call(p, "psb_make_named", knit_v_str(name), &out), 0);
    assert_int_equal(out.kind, KNIT_KIND_PSB);
    assert_string_equal(out.u.psb->name, name);
    knit_psb_t *b;
    assert_int_equal(knit_psb_open(out.u.psb, &b), 0);
    const uint8_t *bytes = knit_psb_data(b);
    for (int i = 0; i < 4096; i++)
        assert_int_equal(bytes[i], (uint8_t)i);
    assert_int_equal(knit_psb_unlink(b), 0);
    knit_psb_close(b);
    knit_value_free(&out);
    knit_pool_destroy(p);
}

static void test_views_check_bounds_and_alignment(void **state)
{
    (void)state;
    knit_psb_t *b;
    knit_psb_view_t v;
    assert_int_equal(knit_psb_create(100, &b), 0);
    assert_int_equal(knit_psb_view(b, 0, 96, KNIT_ELEM_F64, &v), 0);
    assert_int_equal(v.count, 12);
    assert_int_equal(knit_psb_view(b, 4, 8, KNIT_ELEM_F64, &v), KNIT_E_INVAL);
    assert_int_equal(knit_psb_view(b, 96, 8, KNIT_ELEM_U32, &v), KNIT_E_INVAL);
    assert_int_equal(knit_psb_view(b, 0, 100, KNIT_ELEM_U8C, &v), 0);
    knit_psb_desc_t d;
    assert_int_equal(knit_psb_describe(b, 50, 51, &d), KNIT_E_INVAL);
    knit_psb_close(b);
    assert_int_equal(knit_psb_create_named("no-slash", 10, &b), KNIT_E_INVAL);
}

#define BOTH(fn)                                                                                   \
    cmocka_unit_test_prestate(fn, &thread_rt), cmocka_unit_test_prestate(fn, &process_rt)

int main(void)
{
    int rc = knit_worker_process_main(tasks, NTASKS, local_boot, NULL);
    if (rc != KNIT_E_AGAIN)
        return rc;
    const struct CMUnitTest t[] = {
        BOTH(test_imported_task),
        BOTH(test_imported_task_never_inline),
        BOTH(test_bad_import_fails_startup),
        BOTH(test_local_bootstrap_runs_first),
        BOTH(test_imported_bootstrap),
        BOTH(test_failing_bootstrap_rejects_calls),
        BOTH(test_anonymous_buffer_host_to_worker),
        BOTH(test_buffer_as_envelope_body),
        BOTH(test_named_buffer_worker_to_host),
        cmocka_unit_test(test_views_check_bounds_and_alignment),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
