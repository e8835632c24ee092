/*
 * A hostile process worker (hostile_worker.c) against a real host: whatever the worker writes
 * into its lane memory or its stream, the host stays up, settles every call exactly once with
 * a sane status, settles no call the worker was not given, recovers by replacing the worker,
 * and leaks nothing (descriptors, children).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "knit/knit.h"
#include "sched/state.h"

/* The host's definition: the hostile worker answers every task index its own way. */
static int echo(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = *arg;
    *arg = knit_v_undefined();
    return 0;
}

static const knit_task_def_t echo_task[] = {{.name = "echo", .fn = echo}};
static const knit_task_def_t timed_task[] = {{.name = "echo", .fn = echo, .timeout_ms = 50}};

static const knit_transport_t all_transports[] = {KNIT_TRANSPORT_KNIT, KNIT_TRANSPORT_PIPE,
    KNIT_TRANSPORT_UNIX, KNIT_TRANSPORT_SEQPACKET, KNIT_TRANSPORT_TCP, KNIT_TRANSPORT_SEQ};
static const knit_transport_t shm_transports[] = {KNIT_TRANSPORT_KNIT, KNIT_TRANSPORT_SEQ};
static const knit_transport_t msg_transports[]
    = {KNIT_TRANSPORT_PIPE, KNIT_TRANSPORT_UNIX, KNIT_TRANSPORT_SEQPACKET, KNIT_TRANSPORT_TCP};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Per test: the descriptors open before it, and a fresh "misbehave once" marker path. */
typedef struct fixture {
    int fds;
    char once[64];
} fixture_t;

static fixture_t fx;

static void begin(const char *mode, bool once)
{
    setenv("KNIT_HOSTILE", mode, 1);
    unsetenv("KNIT_HOSTILE_0");
    unsetenv("KNIT_HOSTILE_1");
    snprintf(fx.once, sizeof fx.once, "/tmp/knit-hostile-%d-XXXXXX", (int)getpid());
    int fd = mkstemp(fx.once);
    assert_true(fd >= 0);
    close(fd);
    unlink(fx.once); /* the first worker creates it */
    if (once)
        setenv("KNIT_HOSTILE_ONCE", fx.once, 1);
    else
        unsetenv("KNIT_HOSTILE_ONCE");
    knit__lane_cache_clear();
    fx.fds = knit_test_open_fds();
}

/* After the pool is destroyed: nothing left behind. */
static void end(void)
{
    unlink(fx.once);
    knit__lane_cache_clear();
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* every child reaped */
    assert_int_equal(errno, ECHILD);
    assert_int_equal(knit_test_open_fds(), fx.fds);
}

static knit_pool_t *pool(knit_transport_t t, uint32_t workers, const knit_task_def_t *tasks)
{
    knit_pool_opts_t o = {
        .threads = workers,
        .runtime = KNIT_RUNTIME_PROCESS,
        .transport = t,
        .balancer = KNIT_BALANCER_ROUND_ROBIN,
        .steal = KNIT_STEAL_OFF,
        .worker.process.program = KNIT_HOSTILE_WORKER_PATH,
    };
    knit_pool_t *p = NULL;
    int rc = knit_pool_create(&o, tasks, 1, &p);
    if (rc != 0)
        fail_msg("knit_pool_create (%s): %s", knit_transport_name(t), knit_errmsg());
    return p;
}

static knit_future_t *call_str(knit_pool_t *p, const char *s)
{
    knit_value_t v = knit_v_str(s);
    knit_future_t *f = NULL;
    assert_int_equal(knit_call(p, 0, &v, &f), 0);
    return f;
}

static bool value_is(const knit_future_t *f, const char *s)
{
    const knit_value_t *v = knit_future_value(f);
    return v && v->kind == KNIT_KIND_STRING && v->len == strlen(s) && !memcmp(v->u.ptr, s, v->len);
}

/* A worker that answers the call ids it was not given settles no call of another lane. */
static void test_spray_settles_no_other_call(void **s)
{
    (void)s;
    for (size_t i = 0; i < NELEM(all_transports); i++) {
        begin("echo", false);
        setenv("KNIT_HOSTILE_0", "hold", 1); /* worker 0 keeps its call */
        setenv("KNIT_HOSTILE_1", "spray", 1);
        knit_pool_t *p = pool(all_transports[i], 2, echo_task);
        knit_future_t *held = call_str(p, "held");
        knit_future_t *sprayed = call_str(p, "sprayed");
        assert_int_equal(held->lane, 0); /* round robin from lane 0 */
        assert_int_equal(sprayed->lane, 1);
        /* worker 1 sends its forged results before its own: once its own call settled, the
         * host has read them all */
        assert_int_equal(knit_future_wait(sprayed, -1), 0);
        assert_true(value_is(sprayed, "sprayed"));
        if (knit_future_status(held) != KNIT_E_AGAIN)
            fail_msg("%s: lane 1's worker settled lane 0's call (%d)",
                knit_transport_name(all_transports[i]), knit_future_status(held));
        knit_future_release(sprayed);
        knit_pool_destroy(p);
        assert_int_equal(knit_future_status(held), KNIT_E_SHUTDOWN);
        knit_future_release(held);
        end();
    }
}

/* A response word that decodes to "pending" (or to a code only the host may give) does not
 * leave a settled future reading as pending. */
static void test_status_words_settle(void **s)
{
    (void)s;
    static const char *const modes[] = {
        "status:0x8000000b", /* KNIT_E_AGAIN */
        "status:0x8000000a", /* KNIT_E_FULL */
        "status:0x80000012", /* KNIT_E_WORKER_DIED: only the host knows that */
        "status:0x80007fff", /* no such code */
        "status:0xffffffff",
    };
    for (size_t i = 0; i < NELEM(all_transports); i++)
        for (size_t m = 0; m < NELEM(modes); m++) {
            begin(modes[m], false);
            knit_pool_t *p = pool(all_transports[i], 1, echo_task);
            knit_future_t *f = call_str(p, "x");
            int st = knit_future_wait(f, -1);
            if (st == KNIT_E_AGAIN || st == KNIT_E_FULL || st == KNIT_E_WORKER_DIED || st == 0)
                fail_msg("%s over %s settled with %d (%s)", modes[m],
                    knit_transport_name(all_transports[i]), st, knit_strerror(st));
            assert_int_not_equal(knit_future_status(f), KNIT_E_AGAIN);
            knit_future_release(f);
            knit_pool_destroy(p);
            end();
        }
}

/* A frame sent again later does not settle the newer call that got the same registry slot. */
static void test_replay_does_not_settle_newer_call(void **s)
{
    (void)s;
    for (size_t i = 0; i < NELEM(all_transports); i++) {
        begin("replay", false);
        knit_pool_t *p = pool(all_transports[i], 1, echo_task);
        for (int k = 0; k < 4; k++) {
            char arg[16];
            snprintf(arg, sizeof arg, "call %d", k);
            knit_future_t *f = call_str(p, arg);
            assert_int_equal(knit_future_wait(f, -1), 0);
            if (!value_is(f, arg))
                fail_msg("%s: call %d settled with another frame's value",
                    knit_transport_name(all_transports[i]), k);
            knit_future_release(f);
        }
        knit_pool_destroy(p);
        end();
    }
}

/* A worker cannot shrink the lane memory both sides map (the host would fault on it). */
static void test_truncate_lane_memory(void **s)
{
    (void)s;
    begin("truncate", false);
    knit_pool_t *p = pool(KNIT_TRANSPORT_KNIT, 1, echo_task);
    for (int k = 0; k < 3; k++) {
        knit_future_t *f = call_str(p, "still here");
        int st = knit_future_wait(f, -1);
        assert_true(st == 0 || st == KNIT_E_WORKER_DIED);
        knit_future_release(f);
    }
    knit_pool_destroy(p);
    end();
}

/* Named lane memory cannot be sealed: a worker that shrinks it makes the host's next access
 * fault. The host's guard turns that into a broken lane: the worker is replaced, the host
 * stays up, the next call is served. */
static void test_truncate_named_lane_memory(void **s)
{
    (void)s;
    begin("truncate", true);
    knit_pool_opts_t o = {
        .threads = 1,
        .runtime = KNIT_RUNTIME_PROCESS,
        .worker.process.program = KNIT_HOSTILE_WORKER_PATH,
        .worker.process.shared_memory = KNIT_SHM_NAMED,
    };
    knit_pool_t *p;
    assert_int_equal(knit_pool_create(&o, echo_task, 1, &p), 0);
    knit_future_t *f = call_str(p, "first");
    int st = knit_future_wait(f, -1);
    if (st != KNIT_E_CORRUPT && st != KNIT_E_WORKER_DIED)
        fail_msg("first call: %d (%s)", st, knit_strerror(st));
    knit_future_release(f);
    f = call_str(p, "second");
    assert_int_equal(knit_future_wait(f, -1), 0);
    assert_true(value_is(f, "second"));
    knit_future_release(f);
    assert_int_equal(knit_pool_respawns(p), 1);
    knit_pool_destroy(p);
    end();
}

/* Random bytes over the lane's shared words (slot header lines, with their sequence words,
 * included), in a loop, while the host keeps calling, on both shared-memory transports: every
 * call settles (answered, timed out or failed with its worker), the host stays up. */
static void test_scribble_lane_memory(void **s)
{
    (void)s;
    enum { CALLS = 200 };
    for (size_t i = 0; i < NELEM(shm_transports); i++) {
        begin("scribble", false);
        knit_pool_t *p = pool(shm_transports[i], 2, timed_task);
        knit_future_t *f[CALLS];
        for (int k = 0; k < CALLS; k++)
            f[k] = call_str(p, "x");
        for (int k = 0; k < CALLS; k++) {
            int st = knit_future_wait(f[k], -1);
            assert_true(st != KNIT_E_AGAIN);
            knit_future_release(f[k]);
        }
        assert_int_equal(knit_pool_pending(p), 0);
        knit_pool_destroy(p);
        end();
    }
}

/* A worker that takes its calls and never answers (a task that never returns): the hard timeout
 * settles every call, shuts the pool and kills the worker, on every transport. */
static void test_hard_timeout_settles_a_silent_worker(void **s)
{
    (void)s;
    enum { CALLS = 50 };
    for (size_t i = 0; i < NELEM(all_transports); i++) {
        begin("hold", false);
        knit_pool_opts_t o = {
            .threads = 2,
            .runtime = KNIT_RUNTIME_PROCESS,
            .transport = all_transports[i],
            .worker.hard_timeout_ms = 100,
            .worker.process.program = KNIT_HOSTILE_WORKER_PATH,
        };
        knit_pool_t *p;
        assert_int_equal(knit_pool_create(&o, echo_task, 1, &p), 0);
        knit_future_t *f[CALLS];
        for (int k = 0; k < CALLS; k++)
            f[k] = call_str(p, "never answered");
        int hard = 0;
        for (int k = 0; k < CALLS; k++) {
            int st = knit_future_wait(f[k], -1);
            if (st != KNIT_E_HARD_TIMEOUT && st != KNIT_E_SHUTDOWN)
                fail_msg("%s: call %d settled with %d (%s)", knit_transport_name(all_transports[i]),
                    k, st, knit_strerror(st));
            hard += st == KNIT_E_HARD_TIMEOUT;
            knit_future_release(f[k]);
        }
        assert_true(hard >= 1);
        assert_int_equal(knit_pool_pending(p), 0);
        knit_future_t *late = call_str(p, "after");
        assert_int_equal(knit_future_wait(late, -1), KNIT_E_SHUTDOWN);
        knit_future_release(late);
        knit_pool_destroy(p);
        end();
    }
}

/* One malformed frame from a worker on a message transport: its calls fail, the worker is
 * replaced (as after any death), and the replacement serves the next call. */
static void test_malformed_frames_respawn(void **s)
{
    (void)s;
    static const char *const modes[]
        = {"frame:truncated", "frame:oversized", "frame:forged", "frame:static"};
    for (size_t i = 0; i < NELEM(msg_transports); i++)
        for (size_t m = 0; m < NELEM(modes); m++) {
            begin(modes[m], true);
            print_message("%s over %s\n", modes[m], knit_transport_name(msg_transports[i]));
            knit_pool_t *p = pool(msg_transports[i], 1, echo_task);
            knit_future_t *f = call_str(p, "first");
            int st = knit_future_wait(f, -1);
            if (st != KNIT_E_WORKER_DIED && st != KNIT_E_CORRUPT)
                fail_msg("%s over %s: first call %d (%s)", modes[m],
                    knit_transport_name(msg_transports[i]), st, knit_strerror(st));
            knit_future_release(f);
            f = call_str(p, "second");
            st = knit_future_wait(f, -1);
            if (st != 0 || !value_is(f, "second"))
                fail_msg("%s over %s: after the bad frame, %d (%s): %s", modes[m],
                    knit_transport_name(msg_transports[i]), st, knit_strerror(st), knit_errmsg());
            knit_future_release(f);
            assert_int_equal(knit_pool_respawns(p), 1);
            knit_pool_destroy(p);
            end();
        }
}

/* kill -9 at each phase of a call, on every transport: the call settles (with its result when
 * the worker published it first), the next call is served by a replacement. */
static void test_kill_at_each_phase(void **s)
{
    (void)s;
    static const char *const phases[] = {"die:claim", "die:task", "die:result", "die:published"};
    for (size_t i = 0; i < NELEM(all_transports); i++)
        for (size_t m = 0; m < NELEM(phases); m++) {
            begin(phases[m], true);
            knit_pool_t *p = pool(all_transports[i], 1, echo_task);
            knit_future_t *f = call_str(p, "first");
            int st = knit_future_wait(f, -1);
            if (st != KNIT_E_WORKER_DIED && !(st == 0 && value_is(f, "first")))
                fail_msg("%s over %s: first call %d (%s)", phases[m],
                    knit_transport_name(all_transports[i]), st, knit_strerror(st));
            knit_future_release(f);
            /* a worker that answered and then died may not be known dead yet when the next
             * call goes out: that call dies with it; the one after it meets the replacement */
            for (int k = 0;; k++) {
                f = call_str(p, "next");
                st = knit_future_wait(f, -1);
                bool ok = st == 0 && value_is(f, "next");
                knit_future_release(f);
                if (ok)
                    break;
                if (st != KNIT_E_WORKER_DIED || k == 1 || strcmp(phases[m], "die:published"))
                    fail_msg("%s over %s: after the death, %d (%s)", phases[m],
                        knit_transport_name(all_transports[i]), st, knit_strerror(st));
            }
            assert_int_equal(knit_pool_respawns(p), 1);
            knit_pool_destroy(p);
            end();
        }
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]); /* one test by name (a glob) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spray_settles_no_other_call),
        cmocka_unit_test(test_status_words_settle),
        cmocka_unit_test(test_replay_does_not_settle_newer_call),
        cmocka_unit_test(test_truncate_lane_memory),
        cmocka_unit_test(test_truncate_named_lane_memory),
        cmocka_unit_test(test_scribble_lane_memory),
        cmocka_unit_test(test_hard_timeout_settles_a_silent_worker),
        cmocka_unit_test(test_malformed_frames_respawn),
        cmocka_unit_test(test_kill_at_each_phase),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
