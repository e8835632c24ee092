/*
 * knit_pool_progress on an idle pool (nothing pending): it sleeps until its timeout instead of
 * returning at once, so an event loop that idles on it does not burn a core; it wakes early
 * for what it acts on (a process worker's death, which it replaces); -1 does not block
 * forever but returns KNIT_E_AGAIN at once.
 *
 * No timing targets: "it slept" is checked as the process CPU time spent in the call being a
 * small share of the wall time it took, and "it waited" as the monotonic clock having moved at
 * least the timeout.
 */
#include "pool_testutil.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#define IDLE_WAIT_NS (200 * PT_MS)

static const knit_task_def_t tasks[] = {
    {.name = "add_one", .fn = pt_task_add_one},
    {.name = "echo", .fn = pt_task_echo},
};

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One call through the pool, so that its workers are up and idle afterwards. */
static void one_call(knit_pool_t *pool)
{
    knit_future_t *f = pt_call_i64(pool, pt_task(pool, "add_one"), 41);
    assert_int_equal(pt_wait_i64(f), 42);
    knit_future_release(f);
    assert_int_equal(knit_pool_pending(pool), 0);
}

/* knit_pool_progress(pool, IDLE_WAIT_NS) on an idle pool returns 0 after at least the timeout,
 * having used well under a quarter of that time on a CPU. */
static void expect_idle_sleep(knit_pool_t *pool)
{
    knit_pool_progress(pool, 0); /* anything left over from start-up (worker reports) */
    uint64_t wall0 = pt_now_ns(), cpu0 = cpu_ns();
    int rc = knit_pool_progress(pool, IDLE_WAIT_NS);
    uint64_t cpu = cpu_ns() - cpu0, wall = pt_now_ns() - wall0;
    print_message("idle knit_pool_progress(%lld ns): rc %d, %.1f ms wall, %.1f ms CPU\n",
        IDLE_WAIT_NS, rc, (double)wall / 1e6, (double)cpu / 1e6);
    assert_int_equal(rc, 0);
    assert_true(wall >= (uint64_t)IDLE_WAIT_NS); /* it waited its timeout */
    assert_true(cpu * 4 < wall);                 /* ... and slept, not spun */
}

static void idle_sleep_with(const knit_pool_opts_t *o)
{
    knit_pool_t *pool = pt_pool(o, tasks, 2);
    one_call(pool);
    expect_idle_sleep(pool);
    one_call(pool); /* the pool still works after the idle wait */
    knit_pool_destroy(pool);
}

static void test_idle_progress_sleeps(void **state)
{
    (void)state;
    knit_pool_opts_t o = {.threads = 2};
    idle_sleep_with(&o);
}

static void test_idle_progress_sleeps_serial_channel(void **state)
{
    (void)state;
    knit_pool_opts_t o = {.threads = 2, .dispatcher = KNIT_DISPATCHER_SERIAL_CHANNEL};
    idle_sleep_with(&o);
}

static void test_idle_progress_sleeps_on_message_transport(void **state)
{
    (void)state;
    knit_pool_opts_t o = {.threads = 2, .transport = KNIT_TRANSPORT_PIPE};
    idle_sleep_with(&o);
}

static void test_idle_progress_sleeps_with_process_workers(void **state)
{
    (void)state;
    knit_pool_opts_t o = {.threads = 2, .runtime = KNIT_RUNTIME_PROCESS};
    idle_sleep_with(&o);
}

/* After shutdown nothing can ever be pending: a timed progress still sleeps it out. */
static void test_idle_progress_sleeps_after_shutdown(void **state)
{
    (void)state;
    knit_pool_opts_t o = {.threads = 2};
    knit_pool_t *pool = pt_pool(&o, tasks, 2);
    one_call(pool);
    assert_int_equal(knit_pool_shutdown(pool, KNIT_SHUTDOWN_IMMEDIATE, 0), 0);
    expect_idle_sleep(pool);
    knit_pool_destroy(pool);
}

/* -1 on an idle pool would wait for an event that may never come: KNIT_E_AGAIN at once. */
static void test_idle_progress_forever_returns_again(void **state)
{
    (void)state;
    knit_pool_opts_t o = {.threads = 2};
    knit_pool_t *pool = pt_pool(&o, tasks, 2);
    one_call(pool);
    knit_pool_progress(pool, 0);
    int rc = knit_pool_progress(pool, -1);
    assert_int_equal(rc, KNIT_E_AGAIN);
    assert_non_null(strstr(knit_errmsg(), "nothing is pending"));
    /* with a call pending, -1 waits for it as before */
    knit_future_t *f = pt_call_i64(pool, pt_task(pool, "add_one"), 1);
    while (knit_future_status(f) == KNIT_E_AGAIN)
        assert_true(knit_pool_progress(pool, -1) >= 0);
    assert_int_equal(pt_wait_i64(f), 2);
    knit_future_release(f);
    knit_pool_destroy(pool);
}

/* A helper thread kills a worker while the host idles in knit_pool_progress (it never asserts:
 * the main thread checks the outcome). */
typedef struct killer {
    pthread_t th;
    pid_t pid;
    int64_t delay_ns;
} killer_t;

static void *killer_main(void *arg)
{
    killer_t *k = arg;
    struct timespec ts = {(time_t)(k->delay_ns / 1000000000), (long)(k->delay_ns % 1000000000)};
    nanosleep(&ts, NULL);
    kill(k->pid, SIGKILL);
    return NULL;
}

/* The idle host wakes when a process worker dies, replaces it, and returns long before its
 * timeout; the new worker serves calls. */
static void death_wakes_idle_host(knit_transport_t transport)
{
    knit_pool_opts_t o = {.threads = 1, .runtime = KNIT_RUNTIME_PROCESS, .transport = transport};
    knit_pool_t *pool = pt_pool(&o, tasks, 2);
    one_call(pool);
    knit_pool_progress(pool, 0);
    killer_t k = {.pid = (pid_t)knit_pool_worker_pid(pool, 0), .delay_ns = 300 * PT_MS};
    assert_true(k.pid > 0);
    assert_int_equal(pthread_create(&k.th, NULL, killer_main, &k), 0);
    const int64_t timeout = 60000 * PT_MS; /* only the death can end the wait early */
    uint64_t t0 = pt_now_ns();
    int rc = knit_pool_progress(pool, timeout);
    uint64_t wall = pt_now_ns() - t0;
    pthread_join(k.th, NULL);
    print_message(
        "worker killed while idle: progress returned %d after %.1f ms\n", rc, (double)wall / 1e6);
    assert_true(rc >= 0);
    assert_true(wall < (uint64_t)timeout); /* woken by the death, not by the timeout */
    assert_int_equal(knit_pool_respawns(pool), 1);
    one_call(pool);
    assert_true(knit_pool_worker_pid(pool, 0) != k.pid);
    knit_pool_destroy(pool);
}

static void test_idle_progress_wakes_on_worker_death(void **state)
{
    (void)state;
    death_wakes_idle_host(KNIT_TRANSPORT_KNIT);
    death_wakes_idle_host(KNIT_TRANSPORT_SEQ);
}

static void test_idle_progress_wakes_on_worker_death_message_transport(void **state)
{
    (void)state;
    death_wakes_idle_host(KNIT_TRANSPORT_UNIX);
}

int main(void)
{
    int rc = knit_worker_process_main(tasks, 2, NULL, NULL);
    if (rc != KNIT_E_AGAIN)
        return rc;
    unsetenv("KNIT_DISPATCHER");
    unsetenv("KNIT_STEAL");
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_idle_progress_sleeps),
        cmocka_unit_test(test_idle_progress_sleeps_serial_channel),
        cmocka_unit_test(test_idle_progress_sleeps_on_message_transport),
        cmocka_unit_test(test_idle_progress_sleeps_with_process_workers),
        cmocka_unit_test(test_idle_progress_sleeps_after_shutdown),
        cmocka_unit_test(test_idle_progress_forever_returns_again),
        cmocka_unit_test(test_idle_progress_wakes_on_worker_death),
        cmocka_unit_test(test_idle_progress_wakes_on_worker_death_message_transport),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
