/* Process workers that die in other ways than kill -9: a crash inside a task, and exit(). */
#include "testutil.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "knit/knit.h"

static int crash(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)result;
    if (arg->kind == KNIT_KIND_STRING && !strcmp((const char *)arg->u.ptr, "segv"))
        raise(SIGSEGV);
    if (arg->kind == KNIT_KIND_STRING && !strcmp((const char *)arg->u.ptr, "exit"))
        exit(3);
    *result = knit_v_int64(getpid());
    return 0;
}

static const knit_task_def_t tasks[] = {{.name = "crash", .fn = crash}};

static int64_t pid_of_worker(knit_pool_t *p)
{
    knit_value_t v = knit_v_null();
    knit_future_t *f;
    assert_int_equal(knit_call(p, 0, &v, &f), 0);
    assert_int_equal(knit_future_wait(f, -1), 0);
    int64_t pid = knit_future_value(f)->u.i64;
    knit_future_release(f);
    return pid;
}

/* The call that kills its worker rejects with KNIT_E_WORKER_DIED and a message saying how the
 * worker ended; a new worker serves the next call. */
static void die_and_recover(const char *how, const char *expect)
{
    knit_pool_opts_t o = {.threads = 1, .runtime = KNIT_RUNTIME_PROCESS};
    knit_pool_t *p;
    assert_int_equal(knit_pool_create(&o, tasks, 1, &p), 0);
    int64_t first = pid_of_worker(p);
    knit_value_t v = knit_v_str(how);
    knit_future_t *f;
    assert_int_equal(knit_call(p, 0, &v, &f), 0);
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_WORKER_DIED);
    const knit_value_t *msg = knit_future_value(f);
    assert_int_equal(msg->kind, KNIT_KIND_STRING);
    if (!strstr((const char *)msg->u.ptr, expect))
        print_error("message: %s\n", (const char *)msg->u.ptr);
    assert_non_null(strstr((const char *)msg->u.ptr, expect));
    knit_future_release(f);
    int64_t second = pid_of_worker(p);
    assert_true(second != first);
    assert_int_equal(knit_pool_respawns(p), 1);
    knit_pool_destroy(p);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* every child reaped */
}

static void test_segfault_in_task(void **s)
{
    (void)s;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    /* the sanitizers catch SIGSEGV themselves and end the process their own way */
    die_and_recover("segv", "worker 0 (pid");
#else
    die_and_recover("segv", "Segmentation fault");
#endif
}

static void test_exit_in_task(void **s)
{
    (void)s;
    die_and_recover("exit", "exited with status 3");
}

static void test_no_respawn_fails_the_lane(void **s)
{
    (void)s;
    knit_pool_opts_t o = {.threads = 1, .runtime = KNIT_RUNTIME_PROCESS};
    o.worker.process.no_respawn = true;
    knit_pool_t *p;
    assert_int_equal(knit_pool_create(&o, tasks, 1, &p), 0);
    knit_value_t v = knit_v_str("exit");
    knit_future_t *f;
    assert_int_equal(knit_call(p, 0, &v, &f), 0);
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_WORKER_DIED);
    knit_future_release(f);
    /* the lane stays dead: later calls reject at once with the same code */
    v = knit_v_null();
    assert_int_equal(knit_call(p, 0, &v, &f), 0);
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_WORKER_DIED);
    knit_future_release(f);
    assert_int_equal(knit_pool_respawns(p), 0);
    knit_pool_destroy(p);
}

/* Results a worker published before it died are delivered, not failed with it. */
static void test_results_published_before_death_are_kept(void **s)
{
    (void)s;
    knit_pool_opts_t o = {.threads = 1, .runtime = KNIT_RUNTIME_PROCESS};
    knit_pool_t *p;
    assert_int_equal(knit_pool_create(&o, tasks, 1, &p), 0);
    pid_of_worker(p); /* started */
    knit_value_t a = knit_v_null(), b = knit_v_str("exit");
    knit_future_t *fa, *fb;
    assert_int_equal(knit_call(p, 0, &a, &fa), 0);
    assert_int_equal(knit_call(p, 0, &b, &fb), 0);
    /* give the worker time to answer A and die on B before the host looks (the outcome below
     * holds either way; the pause only makes the interesting order likely) */
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    assert_int_equal(knit_future_wait(fa, -1), 0);
    assert_int_equal(knit_future_wait(fb, -1), KNIT_E_WORKER_DIED);
    knit_future_release(fa);
    knit_future_release(fb);
    knit_pool_destroy(p);
}

static void test_abort_capacity_above_16_bits_is_refused(void **s)
{
    (void)s;
    knit_task_def_t aware[] = {{.name = "crash", .fn = crash, .abort_aware = true}};
    knit_pool_opts_t o = {.threads = 1, .abort_capacity = 70000};
    knit_pool_t *p;
    assert_int_equal(knit_pool_create(&o, aware, 1, &p), KNIT_E_RANGE);
    assert_non_null(strstr(knit_errmsg(), "65535"));
}

int main(void)
{
    int rc = knit_worker_process_main(tasks, 1, NULL, NULL);
    if (rc != KNIT_E_AGAIN)
        return rc;
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_segfault_in_task),
        cmocka_unit_test(test_exit_in_task),
        cmocka_unit_test(test_no_respawn_fails_the_lane),
        cmocka_unit_test(test_results_published_before_death_are_kept),
        cmocka_unit_test(test_abort_capacity_above_16_bits_is_refused),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
