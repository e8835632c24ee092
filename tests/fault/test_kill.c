/*
 * kill -9 of a process worker while many calls are in flight, on every transport: only the
 * calls the dead worker held fail (at most the lane's window), every other call settles on the
 * surviving or the replacement worker, and nothing is left behind. This program is its own
 * worker (knit_worker_process_main).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "knit/knit.h"
#include "transports/link.h"

/* Long enough that a burst queues up behind the workers. */
static int slow_echo(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
    *result = *arg;
    *arg = knit_v_undefined();
    return 0;
}

static const knit_task_def_t tasks[] = {{.name = "slow_echo", .fn = slow_echo}};

static const knit_transport_t transports[] = {KNIT_TRANSPORT_KNIT, KNIT_TRANSPORT_PIPE,
    KNIT_TRANSPORT_UNIX, KNIT_TRANSPORT_SEQPACKET, KNIT_TRANSPORT_TCP, KNIT_TRANSPORT_SEQ};

static void kill_one_of_two(knit_transport_t t)
{
    enum { CALLS = 1000 };
    knit_pool_opts_t o = {.threads = 2, .runtime = KNIT_RUNTIME_PROCESS, .transport = t};
    knit_pool_t *p;
    assert_int_equal(knit_pool_create(&o, tasks, 1, &p), 0);
    static knit_future_t *f[CALLS];
    for (int i = 0; i < CALLS; i++) {
        knit_value_t v = knit_v_int64(i);
        assert_int_equal(knit_call(p, 0, &v, &f[i]), 0);
    }
    assert_int_equal(knit_future_wait(f[0], -1), 0); /* the workers are serving */
    int32_t victim = knit_pool_worker_pid(p, 0);
    assert_true(victim > 0);
    assert_int_equal(kill(victim, SIGKILL), 0);
    int resolved = 0, died = 0;
    for (int i = 0; i < CALLS; i++) {
        int st = knit_future_wait(f[i], -1);
        if (st == 0) {
            const knit_value_t *v = knit_future_value(f[i]);
            assert_int_equal(v->kind, KNIT_KIND_INT64);
            assert_int_equal(v->u.i64, i);
            resolved++;
        } else {
            if (st != KNIT_E_WORKER_DIED)
                fail_msg("%s: call %d settled with %d (%s)", knit_transport_name(t), i, st,
                    knit_strerror(st));
            died++;
        }
        knit_future_release(f[i]);
    }
    print_message(
        "%s: %d of %d calls failed with the killed worker\n", knit_transport_name(t), died, CALLS);
    assert_int_equal(resolved + died, CALLS);
    /* the calls the worker held; the ones still waiting on the host went to its replacement */
    if (died > (int)KNIT__LINK_WINDOW)
        fail_msg("%s: %d calls failed with the killed worker; it never held more than %u",
            knit_transport_name(t), died, KNIT__LINK_WINDOW);
    assert_int_equal(knit_pool_respawns(p), 1);
    knit_pool_destroy(p);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static void test_kill_one_of_two_workers(void **s)
{
    (void)s;
    for (size_t i = 0; i < sizeof transports / sizeof *transports; i++)
        kill_one_of_two(transports[i]);
}

int main(int argc, char **argv)
{
    int rc = knit_worker_process_main(tasks, 1, NULL, NULL);
    if (rc != KNIT_E_AGAIN)
        return rc;
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_one_of_two_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
