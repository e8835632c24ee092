/* Process workers: spawning, fd 0 and named memory, wrappers, start-up failures. */
#include "pool_testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "knit/knit.h"

static int whoami(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)arg;
    *result = knit_v_int64(getpid());
    return 0;
}

static const knit_task_def_t tasks[] = {
    {.name = "echo", .fn = pt_task_echo},
    {.name = "whoami", .fn = whoami},
};
#define NTASKS (sizeof tasks / sizeof tasks[0])

static knit_pool_t *make(knit_pool_opts_t *o)
{
    o->runtime = KNIT_RUNTIME_PROCESS;
    return pt_pool(o, tasks, NTASKS);
}

/* n echo calls of distinct strings; all must come back intact. */
static void echo_many(knit_pool_t *p, int n)
{
    knit_future_t **fs = calloc((size_t)n, sizeof *fs);
    char buf[64];
    for (int i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "call %d", i);
        knit_value_t v = knit_v_str(buf);
        assert_int_equal(knit_call(p, knit_task_index(p, "echo"), &v, &fs[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        int rc = knit_future_wait(fs[i], -1);
        if (rc != 0)
            print_error("call %d: %s: %s\n", i, knit_strerror(rc),
                knit_future_value(fs[i])->kind == KNIT_KIND_STRING
                    ? (const char *)knit_future_value(fs[i])->u.ptr
                    : "");
        assert_int_equal(rc, 0);
        snprintf(buf, sizeof buf, "call %d", i);
        assert_string_equal((const char *)knit_future_value(fs[i])->u.ptr, buf);
        knit_future_release(fs[i]);
    }
    free(fs);
}

static int64_t worker_pid_by_call(knit_pool_t *p)
{
    knit_future_t *f;
    knit_value_t none = knit_v_undefined();
    assert_int_equal(knit_call(p, knit_task_index(p, "whoami"), &none, &f), 0);
    assert_int_equal(knit_future_wait(f, -1), 0);
    int64_t pid = knit_future_value(f)->u.i64;
    knit_future_release(f);
    return pid;
}

static void test_inherit_fd0_round_trips(void **s)
{
    (void)s;
    knit_pool_opts_t o = {.threads = 1};
    knit_pool_t *p = make(&o);
    int64_t pid = worker_pid_by_call(p);
    assert_true(pid > 0 && pid != getpid());
    assert_int_equal(pid, knit_pool_worker_pid(p, 0));
    echo_many(p, 1000);
    assert_int_equal(knit_pool_shutdown(p, KNIT_SHUTDOWN_DRAIN, 0), 0);
    knit_pool_destroy(p);
}

static int count_shm(const char *prefix)
{
    DIR *d = opendir("/dev/shm");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void test_named_memory_is_unlinked(void **s)
{
    (void)s;
    char prefix[16];
    snprintf(prefix, sizeof prefix, "kt%05d", (int)(getpid() % 100000));
    knit_pool_opts_t o = {.threads = 2, .balancer = KNIT_BALANCER_ROUND_ROBIN};
    o.worker.process.shared_memory = KNIT_SHM_NAMED;
    o.worker.process.name_prefix = prefix;
    knit_pool_t *p = make(&o);
    assert_int_equal(count_shm(prefix), 2); /* linked while the workers start */
    echo_many(p, 200);
    /* both workers have answered, so both mapped their lane: no other process of the user
     * can open it by name any more */
    assert_int_equal(count_shm(prefix), 0);
    knit_pool_destroy(p);
    assert_int_equal(count_shm(prefix), 0);
}

/* Which descriptors are open now (fd < 1024). */
static void open_set(bool set[1024])
{
    DIR *d = opendir("/proc/self/fd");
    int self = dirfd(d);
    memset(set, 0, 1024 * sizeof *set);
    for (struct dirent *e; (e = readdir(d));) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] != '.' && fd != self && fd < 1024)
            set[fd] = true;
    }
    closedir(d);
}

/* Every descriptor opened since `before` is close-on-exec (fdinfo flags include O_CLOEXEC =
 * 02000000). Descriptors the test runner handed us are not knit's business. */
static void assert_new_fds_cloexec(const bool before[1024])
{
    DIR *d = opendir("/proc/self/fd");
    int self = dirfd(d);
    int checked = 0;
    for (struct dirent *e; (e = readdir(d));) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd <= 2 || fd == self || fd >= 1024 || before[fd])
            continue;
        checked++;
        char path[64], line[128];
        snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
        FILE *f = fopen(path, "r");
        unsigned flags = 0;
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "flags: %o", &flags) == 1)
                break;
        if (f)
            fclose(f);
        if (!(flags & 02000000)) {
            char target[256] = "";
            snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
            ssize_t n = readlink(path, target, sizeof target - 1);
            target[n > 0 ? n : 0] = 0;
            print_error("fd %d (%s) is not close-on-exec (flags %o)\n", fd, target, flags);
        }
        assert_true(flags & 02000000);
    }
    closedir(d);
    assert_true(checked >= 4); /* 2 lane memfds, 2 pidfds, the monitor's eventfd */
}

static void test_no_leaks_and_cloexec(void **s)
{
    (void)s;
    int before = knit_test_open_fds();
    static bool before_set[1024];
    open_set(before_set);
    knit_pool_opts_t o = {.threads = 2, .balancer = KNIT_BALANCER_ROUND_ROBIN};
    knit_pool_t *p = make(&o);
    echo_many(p, 100);
    assert_new_fds_cloexec(before_set);
    knit_pool_destroy(p);
    assert_int_equal(knit_test_open_fds(), before);
    /* no zombies: every child was reaped */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
}

static void run_with_prefix(const char *const *prefix, knit_shm_mode_t mode)
{
    knit_pool_opts_t o = {.threads = 1};
    o.worker.process.prefix = prefix;
    o.worker.process.shared_memory = mode;
    knit_pool_t *p = make(&o);
    echo_many(p, 50);
    knit_pool_destroy(p);
}

static bool have(const char *cmd)
{
    char line[256];
    snprintf(line, sizeof line, "command -v %s >/dev/null 2>&1", cmd);
    return system(line) == 0;
}

static void test_prefix_env(void **s)
{
    (void)s;
    static const char *const prefix[] = {"env", "KNIT_TEST_MARK=1", NULL};
    run_with_prefix(prefix, KNIT_SHM_INHERIT);
}

static void test_prefix_taskset(void **s)
{
    (void)s;
    if (!have("taskset"))
        skip();
    static const char *const prefix[] = {"taskset", "-c", "0", NULL};
    run_with_prefix(prefix, KNIT_SHM_INHERIT);
}

static void test_prefix_setpriv(void **s)
{
    (void)s;
    if (!have("setpriv"))
        skip();
    static const char *const prefix[] = {"setpriv", "--no-new-privs", NULL};
    run_with_prefix(prefix, KNIT_SHM_INHERIT);
}

static void test_prefix_unshare(void **s)
{
    (void)s;
    /* a new UTS namespace needs privileges: skipped (with a reason) when not available */
    if (!have("unshare") || system("unshare --uts true >/dev/null 2>&1") != 0) {
        print_message("unshare --uts is not permitted here; skipping\n");
        skip();
    }
    static const char *const prefix[] = {"unshare", "--uts", NULL};
    run_with_prefix(prefix, KNIT_SHM_INHERIT);
}

static void test_prefix_bwrap_named(void **s)
{
    (void)s;
    if (!have("bwrap")
        || system("bwrap --dev-bind / / --die-with-parent true >/dev/null 2>&1") != 0) {
        print_message("bwrap is missing or cannot create a sandbox here; skipping\n");
        skip();
    }
    /* bwrap with a private /dev would hide /dev/shm; share the host's */
    static const char *const prefix[]
        = {"bwrap", "--dev-bind", "/", "/", "--die-with-parent", NULL};
    run_with_prefix(prefix, KNIT_SHM_NAMED);
}

static void test_worker_program_that_exits_fails_startup(void **s)
{
    (void)s;
    knit_pool_opts_t o = {.threads = 1};
    o.worker.process.program = "/bin/true";
    knit_pool_t *p = make(&o);
    knit_value_t v = knit_v_int64(1);
    knit_future_t *f;
    assert_int_equal(knit_call(p, 0, &v, &f), 0);
    assert_int_equal(knit_future_wait(f, -1), KNIT_E_WORKER_STARTUP);
    assert_non_null(strstr((const char *)knit_future_value(f)->u.ptr, "during start-up"));
    knit_future_release(f);
    knit_pool_destroy(p);
}

static void test_corrupt_boot_payload_exits_with_message(void **s)
{
    (void)s;
    char self[512];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = 0;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
        "KNIT_PROCESS_WORKER=1 KNIT_PROCESS_WORKER_BOOT='{\"version\":1,\"hostPid\":\"x\"}' "
        "%s 2>&1 </dev/null",
        self);
    FILE *f = popen(cmd, "r");
    char out[512] = "";
    size_t got = fread(out, 1, sizeof out - 1, f);
    out[got] = 0;
    int status = pclose(f);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_non_null(strstr(out, "invalid boot payload"));

    snprintf(cmd, sizeof cmd,
        "KNIT_PROCESS_WORKER=1 KNIT_PROCESS_WORKER_BOOT='{\"version\":7}' %s 2>&1 </dev/null",
        self);
    f = popen(cmd, "r");
    got = fread(out, 1, sizeof out - 1, f);
    out[got] = 0;
    pclose(f);
    assert_non_null(strstr(out, "version 7 is not supported"));

    /* an over-long memory name in inherit mode (it was once copied into a fixed buffer) */
    char name[300];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    char *longcmd = malloc(4096);
    snprintf(longcmd, 4096,
        "KNIT_PROCESS_WORKER=1 KNIT_PROCESS_WORKER_BOOT='{\"version\":1,\"hostPid\":1,"
        "\"worker\":0,\"memory\":{\"mode\":\"inherit\",\"name\":\"%s\",\"payloadMax\":"
        "1048576,\"payloadInitial\":0,\"maxPayload\":1024,\"abortCapacity\":0},\"wait\":"
        "{\"spinNs\":0,\"spinOnly\":false},\"tasks\":[],\"bootstrap\":{}}' %s 2>&1 </dev/null",
        name, self);
    f = popen(longcmd, "r");
    got = fread(out, 1, sizeof out - 1, f);
    out[got] = 0;
    status = pclose(f);
    free(longcmd);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_non_null(strstr(out, "memory.name is too long"));
}

static void test_kill_9_with_calls_in_flight(void **s)
{
    (void)s;
    knit_pool_opts_t o = {.threads = 1};
    knit_pool_t *p = make(&o);
    int64_t first = worker_pid_by_call(p);
    enum { N = 1000 };
    knit_future_t *fs[N];
    static char big[2048];
    memset(big, 'x', sizeof big);
    for (int i = 0; i < N; i++) {
        knit_value_t v = knit_v_strn(big, sizeof big);
        assert_int_equal(knit_call(p, knit_task_index(p, "echo"), &v, &fs[i]), 0);
    }
    struct timespec t0, t1 = {0, 0};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kill((pid_t)first, SIGKILL);
    int ok = 0, died = 0;
    for (int i = 0; i < N; i++) {
        int rc = knit_future_wait(fs[i], -1);
        assert_true(rc == 0 || rc == KNIT_E_WORKER_DIED);
        ok += rc == 0;
        if (rc == KNIT_E_WORKER_DIED && died++ == 0)
            clock_gettime(CLOCK_MONOTONIC, &t1);
        knit_future_release(fs[i]);
    }
    assert_int_equal(ok + died, N);
    /* reported, not asserted (no timing assertions): how fast the death was noticed */
    print_message("after kill -9: %d resolved, %d rejected with KNIT_E_WORKER_DIED; the first "
                  "rejection came %.3f ms after the signal\n",
        ok, died, (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    /* a fresh worker serves later calls */
    int64_t second = worker_pid_by_call(p);
    assert_true(second != first);
    assert_int_equal(knit_pool_respawns(p), 1);
    echo_many(p, 100);
    knit_pool_destroy(p);
    pid_t z = waitpid(-1, NULL, WNOHANG);
    if (z != -1) {
        char cmd[128];
        snprintf(cmd, sizeof cmd,
            "cat /proc/%d/task/*/children; ps -o pid,ppid,stat,args --ppid %d", (int)getpid(),
            (int)getpid());
        print_error("child left behind: waitpid -> %d\n", (int)z);
        if (system(cmd) != 0)
            print_error("(ps failed)\n");
    }
    assert_int_equal(z, -1);
}

int main(void)
{
    int rc = knit_worker_process_main(tasks, NTASKS, NULL, NULL);
    if (rc != KNIT_E_AGAIN)
        return rc;
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_inherit_fd0_round_trips),
        cmocka_unit_test(test_named_memory_is_unlinked),
        cmocka_unit_test(test_no_leaks_and_cloexec),
        cmocka_unit_test(test_prefix_env),
        cmocka_unit_test(test_prefix_taskset),
        cmocka_unit_test(test_prefix_setpriv),
        cmocka_unit_test(test_prefix_unshare),
        cmocka_unit_test(test_prefix_bwrap_named),
        cmocka_unit_test(test_worker_program_that_exits_fails_startup),
        cmocka_unit_test(test_corrupt_boot_payload_exits_with_message),
        cmocka_unit_test(test_kill_9_with_calls_in_flight),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
