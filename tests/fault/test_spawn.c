/*
 * Starting process workers when things go wrong: a program that does not exist, no
 * descriptors left (at creation and while replacing a dead worker), a host that dies before its
 * worker has armed its parent-death signal, and a task table too big for one environment
 * variable. After each: the host is up, every call settled, nothing left behind. This program
 * is its own worker (knit_worker_process_main).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "knit/knit.h"

enum { MANY = 5000 };

static int echo(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = *arg;
    *arg = knit_v_undefined();
    return 0;
}

static const knit_task_def_t one_task[] = {{.name = "echo", .fn = echo}};

/* MANY tasks, "t0000" to "t4999", all echoing: a boot payload of about 400 KiB. */
static knit_task_def_t many[MANY];
static char many_names[MANY][8];

static void make_many(void)
{
    for (int i = 0; i < MANY; i++) {
        snprintf(many_names[i], sizeof many_names[i], "t%04d", i);
        many[i] = (knit_task_def_t) {.name = many_names[i], .fn = echo};
    }
}

/* Bytes of address space this process maps now. */
static rlim_t vm_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %lu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return (rlim_t)kb << 10;
}

static void no_children(void)
{
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static knit_pool_opts_t process_opts(const char *program)
{
    return (knit_pool_opts_t) {
        .threads = 1, .runtime = KNIT_RUNTIME_PROCESS, .worker.process.program = program};
}

static int call_echo(knit_pool_t *p, int task, int64_t x)
{
    knit_value_t v = knit_v_int64(x);
    knit_future_t *f;
    assert_int_equal(knit_call(p, task, &v, &f), 0);
    int st = knit_future_wait(f, -1);
    if (st == 0)
        assert_int_equal(knit_future_value(f)->u.i64, x);
    knit_future_release(f);
    return st;
}

/* A worker program that does not exist: the pool is not created, and says why. */
static void test_missing_program(void **s)
{
    (void)s;
    int fds = knit_test_open_fds();
    knit_pool_opts_t o = process_opts("/nonexistent/knit-worker");
    knit_pool_t *p = NULL;
    int rc = knit_pool_create(&o, one_task, 1, &p);
    assert_int_equal(rc, KNIT_E_WORKER_STARTUP);
    assert_null(p);
    assert_non_null(strstr(knit_errmsg(), "/nonexistent/knit-worker"));
    no_children();
    assert_int_equal(knit_test_open_fds(), fds);
}

/* No descriptor left when the pool is created: a clean error, nothing leaked. */
static void test_emfile_at_create(void **s)
{
    (void)s;
    int fds = knit_test_open_fds();
    struct rlimit old;
    getrlimit(RLIMIT_NOFILE, &old);
    for (rlim_t room = 0; room < 8; room++) {
        struct rlimit low = {(rlim_t)fds + 3 + room, old.rlim_max};
        knit_pool_opts_t o = process_opts(NULL);
        knit_pool_t *p = NULL;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
        int rc = knit_pool_create(&o, one_task, 1, &p);
        setrlimit(RLIMIT_NOFILE, &old);
        if (rc == 0) {
            assert_int_equal(call_echo(p, 0, 7), 0);
            knit_pool_destroy(p);
        } else {
            assert_null(p);
            assert_true(rc == KNIT_E_SYS || rc == KNIT_E_WORKER_STARTUP);
        }
        no_children();
        assert_int_equal(knit_test_open_fds(), fds);
    }
}

/* Kill worker 0 of two while `resource` is limited to `limit` (so its replacement cannot get
 * what a new lane needs), and make calls: the dead lane's calls and every later one on it
 * settle with a clear error, the other lane serves, the host does not touch the lane memory
 * it gave up, and nothing leaks once the limit is lifted. */
static void respawn_under_limit(int resource, rlim_t limit, const char *what)
{
    int fds = knit_test_open_fds();
    knit_pool_opts_t o = process_opts(NULL);
    o.threads = 2;
    o.balancer = KNIT_BALANCER_ROUND_ROBIN;
    o.dispatcher = KNIT_DISPATCHER_PER_THREAD; /* every pass visits every lane */
    knit_pool_t *p;
    assert_int_equal(knit_pool_create(&o, one_task, 1, &p), 0);
    assert_int_equal(call_echo(p, 0, 1), 0);
    assert_int_equal(call_echo(p, 0, 2), 0);
    struct rlimit old, low;
    getrlimit(resource, &old);
    low = (struct rlimit) {limit, old.rlim_max};
    assert_int_equal(setrlimit(resource, &low), 0);
    kill(knit_pool_worker_pid(p, 0), SIGKILL);
    enum { N = 6 };
    int st[N];
    for (int i = 0; i < N; i++) { /* alternating lanes: the dead one and the live one */
        knit_value_t v = knit_v_int64(10 + i);
        knit_future_t *f;
        st[i] = knit_call(p, 0, &v, &f);
        if (st[i] == 0) {
            st[i] = knit_future_wait(f, -1);
            knit_future_release(f);
        }
    }
    knit_pool_progress(p, 0); /* a full pass over every lane, the failed one included */
    uint32_t respawns = knit_pool_respawns(p);
    setrlimit(resource, &old);
    int failed = 0;
    for (int i = 0; i < N; i++) {
        if (st[i] != 0 && st[i] != KNIT_E_WORKER_DIED && st[i] != KNIT_E_WORKER_STARTUP)
            fail_msg("%s: call %d settled with %d (%s)", what, i, st[i], knit_strerror(st[i]));
        failed += st[i] != 0;
    }
    assert_true(failed >= 1 && failed < N); /* the live lane still served */
    assert_int_equal(respawns, 0);          /* the replacement could not be made */
    assert_int_equal(knit_pool_pending(p), 0);
    knit_pool_destroy(p);
    no_children();
    assert_int_equal(knit_test_open_fds(), fds);
}

/* No descriptor left for the replacement's lane. */
static void test_emfile_during_respawn(void **s)
{
    (void)s;
    respawn_under_limit(RLIMIT_NOFILE, 3, "no descriptors");
}

/* No address space for the replacement's lane (standing in for memory exhaustion): 16 MiB more
 * than the process maps now, room for small allocations but not for a lane of 2 x 64 MiB
 * arenas. Not under the sanitizers, whose shadow memory needs the address space. */
static void test_no_memory_during_respawn(void **s)
{
    (void)s;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    (void)vm_size;
    skip();
#else
    respawn_under_limit(RLIMIT_AS, vm_size() + (16u << 20), "no memory");
#endif
}

/* The host dies right after starting its worker, before the worker could arm its parent-death
 * signal: the worker must not stay behind, orphaned. */
static void test_host_dies_before_worker_arms(void **s)
{
    (void)s;
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); /* orphans come to us */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t host = fork();
    assert_true(host >= 0);
    if (host == 0) {
        /* the worker starts only after this host has gone: a prefix that waits, then execs it */
        static const char *const slow_start[]
            = {"/bin/sh", "-c", "sleep 0.3; exec \"$0\" \"$@\"", NULL};
        knit_pool_opts_t o = process_opts(NULL);
        o.worker.process.prefix = slow_start;
        knit_pool_t *p;
        int32_t pid = knit_pool_create(&o, one_task, 1, &p) == 0 ? knit_pool_worker_pid(p, 0) : 0;
        if (write(pfd[1], &pid, sizeof pid) != sizeof pid)
            _exit(2);
        _exit(0); /* gone at once, the worker still starting */
    }
    close(pfd[1]);
    int32_t worker = 0;
    assert_int_equal(read(pfd[0], &worker, sizeof worker), sizeof worker);
    close(pfd[0]);
    assert_int_equal(waitpid(host, NULL, 0), host);
    assert_true(worker > 0);
    int pidfd = (int)syscall(SYS_pidfd_open, worker, 0);
    if (pidfd >= 0) {
        struct pollfd pf = {.fd = pidfd, .events = POLLIN};
        int ready = poll(&pf, 1, 30000); /* a hang guard: it should be gone within a moment */
        close(pidfd);
        if (ready != 1) {
            kill(worker, SIGKILL);
            waitpid(worker, NULL, 0);
            fail_msg("worker %d outlived its host", (int)worker);
        }
    }
    int wst = 0;
    waitpid(worker, &wst, 0);
    print_message("worker status %#x\n", wst);
    no_children();
    prctl(PR_SET_CHILD_SUBREAPER, 0);
}

/* A task table of thousands (its boot payload far over one environment string's 128 KiB). */
static void test_thousands_of_tasks(void **s)
{
    (void)s;
    knit_pool_opts_t o = process_opts(NULL);
    knit_pool_t *p;
    int rc = knit_pool_create(&o, many, MANY, &p);
    if (rc != 0)
        fail_msg("knit_pool_create with %d tasks: %s", MANY, knit_errmsg());
    int last = knit_task_index(p, "t4999");
    assert_int_equal(last, MANY - 1);
    assert_int_equal(call_echo(p, last, 4999), 0);
    assert_int_equal(call_echo(p, knit_task_index(p, "t0000"), 0), 0);
    knit_pool_destroy(p);
    no_children();
}

int main(int argc, char **argv)
{
    make_many();
    /* a worker serves whichever table its host runs: the host says how many tasks it has */
    const char *boot = getenv("KNIT_PROCESS_WORKER_BOOT");
    bool big = boot && (strstr(boot, "fd:") == boot || strstr(boot, "\"t0000\""));
    int rc = big ? knit_worker_process_main(many, MANY, NULL, NULL)
                 : knit_worker_process_main(one_task, 1, NULL, NULL);
    if (rc != KNIT_E_AGAIN)
        return rc;
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_program),
        cmocka_unit_test(test_emfile_at_create),
        cmocka_unit_test(test_emfile_during_respawn),
        cmocka_unit_test(test_no_memory_during_respawn),
        cmocka_unit_test(test_host_dies_before_worker_arms),
        cmocka_unit_test(test_thousands_of_tasks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
