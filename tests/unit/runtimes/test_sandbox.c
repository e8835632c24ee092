/*
 * The process workers' sandbox (knit_sandbox_t): files outside the policy's paths, sockets
 * other than Unix ones and programs are denied to tasks, the environment is filtered, calls
 * still work on every transport, and a policy that cannot be enforced fails start-up. This
 * program is its own worker; the tasks report what they saw (a byte count, 0, or -errno) and
 * the test's main thread asserts on it.
 */
#define _GNU_SOURCE
#include "pool_testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/landlock.h>

#include "knit/knit.h"
#include "runtimes/process/process.h"

extern char **environ;

/* --- tasks (run in the worker) ------------------------------------------------------------- */

static int read_file(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    int fd = open((const char *)arg->u.ptr, O_RDONLY | O_CLOEXEC);
    char buf[64];
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf);
    *result = knit_v_int64(n < 0 ? -errno : n);
    if (fd >= 0)
        close(fd);
    return 0;
}

static int write_file(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    int fd = open((const char *)arg->u.ptr, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ssize_t n = fd < 0 ? -1 : write(fd, "knit", 4);
    *result = knit_v_int64(n < 0 ? -errno : n);
    if (fd >= 0)
        close(fd);
    return 0;
}

static int inet_socket(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    int domain = arg->u.i64 == 6 ? AF_INET6 : AF_INET;
    int s = socket(domain, SOCK_STREAM | SOCK_CLOEXEC, 0);
    *result = knit_v_int64(s < 0 ? -errno : 0);
    if (s >= 0)
        close(s);
    return 0;
}

/* Connect to 127.0.0.1:<arg>: 0, or -errno of the step that failed. */
static int tcp_connect(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)arg->u.i64)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0 ? -errno : 0;
    *result = knit_v_int64(rc);
    if (s >= 0)
        close(s);
    return 0;
}

static int unix_pair(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)arg;
    int sv[2];
    int rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ? -errno : 0;
    if (rc == 0 && (write(sv[0], "x", 1) != 1 || read(sv[1], &(char) {0}, 1) != 1))
        rc = -EIO;
    if (rc == 0) {
        close(sv[0]);
        close(sv[1]);
    }
    *result = knit_v_int64(rc);
    return 0;
}

/* Run /bin/true: its exit status, or -errno when it could not start. */
static int spawn_true(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)arg;
    char *argv[] = {"true", NULL};
    pid_t pid;
    int e = posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ);
    int status = 0;
    if (e == 0 && waitpid(pid, &status, 0) < 0)
        e = errno;
    *result = knit_v_int64(e ? -e : WIFEXITED(status) ? WEXITSTATUS(status) : 128);
    return 0;
}

static int get_env(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    const char *v = getenv((const char *)arg->u.ptr);
    *result = v ? knit_v_str(v) : knit_v_null(); /* environment strings outlive the task */
    return 0;
}

static const knit_task_def_t tasks[] = {
    {.name = "echo", .fn = pt_task_echo},
    {.name = "get_env", .fn = get_env},
    {.name = "inet_socket", .fn = inet_socket},
    {.name = "read_file", .fn = read_file},
    {.name = "spawn_true", .fn = spawn_true},
    {.name = "tcp_connect", .fn = tcp_connect},
    {.name = "unix_pair", .fn = unix_pair},
    {.name = "write_file", .fn = write_file},
};
#define NTASKS (sizeof tasks / sizeof tasks[0])

static void *idle_thread(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

/* The worker's bootstrap hook: with KNIT_TEST_SB_THREAD=1 it leaves a thread running. */
static int boot(void *ctx, uint32_t worker)
{
    (void)ctx;
    (void)worker;
    const char *t = getenv("KNIT_TEST_SB_THREAD");
    pthread_t th;
    if (t && !strcmp(t, "1") && pthread_create(&th, NULL, idle_thread, NULL) != 0)
        return 1;
    return 0;
}

/* --- fixture (the test's main thread) ------------------------------------------------------ */

static int landlock_abi; /* 0: none */
static bool has_seccomp; /* the kernel filters system calls */
static char root[256];   /* a fresh directory: ro/data.txt, rw/, secret/s.txt */
static char ro[300], rw[300], secret[300];

static void path(char *out, size_t n, const char *dir, const char *file)
{
    snprintf(out, n, "%s/%s", dir, file);
}

static void put_file(const char *dir, const char *file, const char *text)
{
    char p[400];
    path(p, sizeof p, dir, file);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    landlock_abi = abi > 0 ? (int)abi : 0;
    has_seccomp = prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/knit-sandbox-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(root))
        return -1;
    snprintf(ro, sizeof ro, "%s/ro", root);
    snprintf(rw, sizeof rw, "%s/rw", root);
    snprintf(secret, sizeof secret, "%s/secret", root);
    if (mkdir(ro, 0700) || mkdir(rw, 0700) || mkdir(secret, 0700))
        return -1;
    put_file(ro, "data.txt", "hello");
    put_file(secret, "s.txt", "secret");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *files[][2] = {{ro, "data.txt"}, {rw, "out.txt"}, {secret, "s.txt"}};
    char f[400];
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        path(f, sizeof f, files[i][0], files[i][1]);
        unlink(f);
    }
    int rc = rmdir(ro) | rmdir(rw) | rmdir(secret);
    return rc | rmdir(root) ? -1 : 0;
}

static bool need_landlock(void)
{
    if (landlock_abi > 0)
        return true;
    print_message("skipped: this kernel has no Landlock\n");
    return false;
}

static bool need_seccomp(void)
{
    if (has_seccomp)
        return true;
    print_message("skipped: this kernel has no seccomp filter support\n");
    return false;
}

/* The policy most tests use: read ro/, write rw/. */
static knit_sandbox_t policy(void)
{
    static const char *read[2], *write[2];
    read[0] = ro;
    write[0] = rw;
    return (knit_sandbox_t) {.mode = KNIT_SANDBOX_STRICT, .read = read, .write = write};
}

static knit_pool_t *make_on(const knit_sandbox_t *s, knit_transport_t transport)
{
    knit_pool_opts_t o = {.threads = 1, .runtime = KNIT_RUNTIME_PROCESS, .transport = transport};
    o.worker.process.sandbox = *s;
    return pt_pool(&o, tasks, NTASKS);
}

static knit_pool_t *make(const knit_sandbox_t *s)
{
    return make_on(s, KNIT_TRANSPORT_KNIT);
}

/* Call `task` with `arg`; the settlement code, *out the value (freed by the caller). */
static int call(knit_pool_t *p, const char *task, knit_value_t arg, knit_value_t *out)
{
    knit_future_t *f = pt_call(p, pt_task(p, task), arg);
    int rc = knit_future_wait(f, -1);
    knit_future_take(f, out);
    knit_future_release(f);
    return rc;
}

/* A task that resolves with an int64: that number. */
static int64_t call_i64(knit_pool_t *p, const char *task, knit_value_t arg)
{
    knit_value_t out;
    int rc = call(p, task, arg, &out);
    if (rc != 0)
        print_error("%s: %s: %s\n", task, knit_strerror(rc),
            out.kind == KNIT_KIND_STRING ? (const char *)out.u.ptr : "");
    assert_int_equal(rc, 0);
    assert_int_equal(out.kind, KNIT_KIND_INT64);
    return out.u.i64;
}

static int64_t read_in(knit_pool_t *p, const char *dir, const char *file)
{
    char f[400];
    path(f, sizeof f, dir, file);
    return call_i64(p, "read_file", knit_v_str(f));
}

static int64_t write_in(knit_pool_t *p, const char *dir, const char *file)
{
    char f[400];
    path(f, sizeof f, dir, file);
    return call_i64(p, "write_file", knit_v_str(f));
}

static bool exists_in(const char *dir, const char *file)
{
    char f[400];
    path(f, sizeof f, dir, file);
    return access(f, F_OK) == 0;
}

/* A listening TCP socket on 127.0.0.1 (its port in *port). */
static int listener(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s, 4), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return s;
}

/* The start-up failure of a pool made with `s`: its message (malloc'd). */
static char *startup_failure(const knit_sandbox_t *s)
{
    knit_pool_t *p = make(s);
    knit_value_t out;
    assert_int_equal(call(p, "echo", knit_v_int64(1), &out), KNIT_E_WORKER_STARTUP);
    assert_int_equal(out.kind, KNIT_KIND_STRING);
    char *msg = strdup((const char *)out.u.ptr);
    knit_value_free(&out);
    knit_pool_destroy(p);
    return msg;
}

/* --- tests ---------------------------------------------------------------------------------- */

static void test_read_inside_read_paths(void **state)
{
    (void)state;
    if (!need_landlock())
        skip();
    knit_sandbox_t s = policy();
    knit_pool_t *p = make(&s);
    assert_int_equal(read_in(p, ro, "data.txt"), 5);
    knit_pool_destroy(p);
}

static void test_read_outside_denied(void **state)
{
    (void)state;
    if (!need_landlock())
        skip();
    knit_sandbox_t s = policy();
    knit_pool_t *p = make(&s);
    assert_int_equal(read_in(p, secret, "s.txt"), -EACCES);
    assert_int_equal(call_i64(p, "read_file", knit_v_str("/etc/passwd")), -EACCES);
    knit_pool_destroy(p);
}

static void test_write_inside_write_paths(void **state)
{
    (void)state;
    if (!need_landlock())
        skip();
    knit_sandbox_t s = policy();
    knit_pool_t *p = make(&s);
    assert_int_equal(write_in(p, rw, "out.txt"), 4);
    assert_int_equal(read_in(p, rw, "out.txt"), 4); /* write paths are readable too */
    knit_pool_destroy(p);
    char f[400], buf[8] = {0};
    path(f, sizeof f, rw, "out.txt");
    FILE *fp = fopen(f, "r");
    assert_non_null(fp);
    assert_int_equal(fread(buf, 1, sizeof buf - 1, fp), 4);
    fclose(fp);
    assert_string_equal(buf, "knit");
}

static void test_write_outside_denied(void **state)
{
    (void)state;
    if (!need_landlock())
        skip();
    knit_sandbox_t s = policy();
    knit_pool_t *p = make(&s);
    assert_int_equal(write_in(p, ro, "new.txt"), -EACCES); /* readable is not writable */
    assert_int_equal(write_in(p, secret, "new.txt"), -EACCES);
    assert_int_equal(write_in(p, ro, "data.txt"), -EACCES);
    knit_pool_destroy(p);
    assert_false(exists_in(ro, "new.txt"));
    assert_false(exists_in(secret, "new.txt"));
}

static void test_inet_sockets_denied(void **state)
{
    (void)state;
    if (!need_landlock() || !need_seccomp())
        skip();
    int port;
    int l = listener(&port);
    knit_sandbox_t s = policy();
    knit_pool_t *p = make(&s);
    assert_int_equal(call_i64(p, "inet_socket", knit_v_int64(4)), -EACCES);
    assert_int_equal(call_i64(p, "inet_socket", knit_v_int64(6)), -EACCES);
    assert_int_equal(call_i64(p, "tcp_connect", knit_v_int64(port)), -EACCES);
    assert_int_equal(call_i64(p, "unix_pair", knit_v_null()), 0); /* Unix sockets stay */
    knit_pool_destroy(p);
    close(l);
}

static void test_net_allowed(void **state)
{
    (void)state;
    if (!need_landlock())
        skip();
    int port;
    int l = listener(&port);
    knit_sandbox_t s = policy();
    s.allow_net = true;
    knit_pool_t *p = make(&s);
    assert_int_equal(call_i64(p, "tcp_connect", knit_v_int64(port)), 0);
    assert_int_equal(read_in(p, secret, "s.txt"), -EACCES); /* the file policy still holds */
    knit_pool_destroy(p);
    close(l);
}

static void test_exec_denied(void **state)
{
    (void)state;
    if (!need_landlock() || !need_seccomp())
        skip();
    knit_sandbox_t s = policy();
    knit_pool_t *p = make(&s);
    assert_int_equal(call_i64(p, "spawn_true", knit_v_null()), -EACCES);
    knit_pool_destroy(p);
}

/* allow_exec with the system's programs and libraries readable: /bin/true runs. */
static void test_exec_allowed(void **state)
{
    (void)state;
    if (!need_landlock())
        skip();
    const char *sys[] = {"/usr", "/bin", "/lib", "/lib64", "/etc"};
    const char *read[8] = {0};
    size_t n = 0;
    for (size_t i = 0; i < sizeof sys / sizeof *sys; i++)
        if (access(sys[i], F_OK) == 0)
            read[n++] = sys[i];
    knit_sandbox_t s = {.mode = KNIT_SANDBOX_STRICT, .read = read, .allow_exec = true};
    knit_pool_t *p = make(&s);
    assert_int_equal(call_i64(p, "spawn_true", knit_v_null()), 0);
    knit_pool_destroy(p);
}

static void test_env_only_allowed(void **state)
{
    (void)state;
    if (!need_landlock())
        skip();
    setenv("SB_KEEP", "kept", 1);
    setenv("SB_DROP", "dropped", 1);
    const char *env[] = {"SB_KEEP", "SB_ABSENT", NULL};
    knit_sandbox_t s = policy();
    s.env = env;
    knit_pool_t *p = make(&s);
    knit_value_t out;
    assert_int_equal(call(p, "get_env", knit_v_str("SB_KEEP"), &out), 0);
    assert_int_equal(out.kind, KNIT_KIND_STRING);
    assert_string_equal((const char *)out.u.ptr, "kept");
    knit_value_free(&out);
    const char *gone[] = {"SB_DROP", "SB_ABSENT", "PATH", "HOME"};
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
        assert_int_equal(call(p, "get_env", knit_v_str(gone[i]), &out), 0);
        assert_int_equal(out.kind, KNIT_KIND_NULL);
    }
    knit_pool_destroy(p);
    unsetenv("SB_KEEP");
    unsetenv("SB_DROP");
}

/* Message transports keep their descriptors (a TCP link included) under the policy. */
static void test_message_transports(void **state)
{
    (void)state;
    if (!need_landlock() || !need_seccomp())
        skip();
    const knit_transport_t ts[]
        = {KNIT_TRANSPORT_PIPE, KNIT_TRANSPORT_UNIX, KNIT_TRANSPORT_SEQPACKET, KNIT_TRANSPORT_TCP};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) {
        knit_sandbox_t s = policy();
        knit_pool_t *p = make_on(&s, ts[i]);
        for (int k = 0; k < 20; k++)
            assert_int_equal(call_i64(p, "echo", knit_v_int64(k)), k);
        assert_int_equal(read_in(p, ro, "data.txt"), 5);
        assert_int_equal(read_in(p, secret, "s.txt"), -EACCES);
        assert_int_equal(call_i64(p, "inet_socket", knit_v_int64(4)), -EACCES);
        knit_pool_destroy(p);
    }
}

/* The other shared-memory transport works in the same lane memory under the policy. */
static void test_seq_transport(void **state)
{
    (void)state;
    if (!need_landlock() || !need_seccomp())
        skip();
    knit_sandbox_t s = policy();
    knit_pool_t *p = make_on(&s, KNIT_TRANSPORT_SEQ);
    for (int k = 0; k < 20; k++)
        assert_int_equal(call_i64(p, "echo", knit_v_int64(k)), k);
    assert_int_equal(read_in(p, secret, "s.txt"), -EACCES);
    knit_pool_destroy(p);
}

/* No Landlock (simulated): a strict policy fails start-up and says why. */
static void test_no_landlock_fails_startup(void **state)
{
    (void)state;
    setenv(KNIT__ENV_TEST_NO_LANDLOCK, "1", 1);
    knit_sandbox_t s = policy();
    char *msg = startup_failure(&s);
    unsetenv(KNIT__ENV_TEST_NO_LANDLOCK);
    assert_non_null(strstr(msg, "sandbox needs Landlock"));
    free(msg);
}

/* No Landlock (simulated), best effort: the worker runs; seccomp and the environment still
 * apply, the file policy does not. */
static void test_best_effort_without_landlock(void **state)
{
    (void)state;
    if (!need_seccomp())
        skip();
    setenv(KNIT__ENV_TEST_NO_LANDLOCK, "1", 1);
    knit_sandbox_t s = policy();
    s.best_effort = true;
    knit_pool_t *p = make(&s);
    unsetenv(KNIT__ENV_TEST_NO_LANDLOCK);
    assert_int_equal(call_i64(p, "echo", knit_v_int64(7)), 7);
    assert_int_equal(call_i64(p, "inet_socket", knit_v_int64(4)), -EACCES);
    assert_int_equal(call_i64(p, "spawn_true", knit_v_null()), -EACCES);
    assert_int_equal(read_in(p, secret, "s.txt"), 6);
    knit_value_t out;
    assert_int_equal(call(p, "get_env", knit_v_str("PATH"), &out), 0);
    assert_int_equal(out.kind, KNIT_KIND_NULL);
    knit_pool_destroy(p);
}

static void test_missing_path_fails_startup(void **state)
{
    (void)state;
    if (!need_landlock())
        skip();
    char missing[400];
    path(missing, sizeof missing, root, "nope");
    const char *read[] = {missing, NULL};
    knit_sandbox_t s = {.mode = KNIT_SANDBOX_STRICT, .read = read};
    char *msg = startup_failure(&s);
    assert_non_null(strstr(msg, "sandbox: missing path"));
    free(msg);
}

/* A thread started before the lock-down would escape Landlock: start-up fails. */
static void test_thread_at_lockdown_fails_startup(void **state)
{
    (void)state;
    if (!need_landlock())
        skip();
    setenv("KNIT_TEST_SB_THREAD", "1", 1);
    knit_sandbox_t s = policy();
    char *msg = startup_failure(&s);
    unsetenv("KNIT_TEST_SB_THREAD");
    assert_non_null(strstr(msg, "threads"));
    free(msg);
}

/* The zero value changes nothing: files, sockets, programs and the environment as before. */
static void test_unsafe_default_unchanged(void **state)
{
    (void)state;
    setenv("SB_DROP", "dropped", 1);
    knit_sandbox_t s = {0};
    knit_pool_t *p = make(&s);
    assert_int_equal(read_in(p, secret, "s.txt"), 6);
    assert_int_equal(call_i64(p, "inet_socket", knit_v_int64(4)), 0);
    assert_int_equal(call_i64(p, "spawn_true", knit_v_null()), 0);
    knit_value_t out;
    assert_int_equal(call(p, "get_env", knit_v_str("SB_DROP"), &out), 0);
    assert_int_equal(out.kind, KNIT_KIND_STRING);
    knit_value_free(&out);
    knit_pool_destroy(p);
    unsetenv("SB_DROP");
}

static int create_with(knit_runtime_t rt, const knit_sandbox_t *s)
{
    knit_pool_opts_t o = {.threads = 1, .runtime = rt};
    o.worker.process.sandbox = *s;
    knit_pool_t *p = NULL;
    int rc = knit_pool_create(&o, tasks, NTASKS, &p);
    knit_pool_destroy(p);
    return rc;
}

static void test_invalid_options(void **state)
{
    (void)state;
    knit_sandbox_t s = {.mode = (knit_sandbox_mode_t)7};
    assert_int_equal(create_with(KNIT_RUNTIME_PROCESS, &s), KNIT_E_INVAL);
    assert_non_null(strstr(knit_errmsg(), "sandbox.mode"));
    const char *env[] = {"A=B", NULL};
    s = (knit_sandbox_t) {.mode = KNIT_SANDBOX_STRICT, .env = env};
    assert_int_equal(create_with(KNIT_RUNTIME_PROCESS, &s), KNIT_E_INVAL);
    assert_non_null(strstr(knit_errmsg(), "sandbox.env[0]"));
    const char *empty[] = {"", NULL};
    s = (knit_sandbox_t) {.mode = KNIT_SANDBOX_STRICT, .write = empty};
    assert_int_equal(create_with(KNIT_RUNTIME_PROCESS, &s), KNIT_E_INVAL);
    assert_non_null(strstr(knit_errmsg(), "sandbox.write[0]"));
    s = (knit_sandbox_t) {.mode = KNIT_SANDBOX_STRICT};
    assert_int_equal(create_with(KNIT_RUNTIME_THREAD, &s), KNIT_E_UNSUPPORTED);
}

/* The boot payload carries the policy (version 2) and the worker reads it back exactly. */
static void test_boot_payload_round_trip(void **state)
{
    (void)state;
    knit__shm_lane_t lane = {.cfg = {.payload_max_bytes = 1u << 20, .max_payload_bytes = 1024}};
    knit__task_t t = {.def = {.name = "a"}};
    knit__runner_cfg_t cfg = {.worker = {.tasks = &t, .ntasks = 1, .lane = &lane}};
    const char *read[] = {"/r1", "r2", NULL}, *env[] = {"X", NULL};
    knit_sandbox_t s = {.mode = KNIT_SANDBOX_STRICT, .read = read, .env = env, .allow_exec = true};
    char *json = NULL;
    assert_int_equal(knit__boot_encode(&cfg, "", &s, &json), 0);
    assert_non_null(strstr(json, "\"version\":2"));
    knit__boot_t b;
    assert_int_equal(knit__boot_decode(json, &b), 0);
    assert_true(b.sandbox.strict);
    assert_true(b.sandbox.allow_exec);
    assert_false(b.sandbox.allow_net);
    assert_false(b.sandbox.best_effort);
    assert_string_equal(b.sandbox.read[0], "/r1");
    assert_string_equal(b.sandbox.read[1], "r2");
    assert_null(b.sandbox.read[2]);
    assert_null(b.sandbox.write[0]);
    assert_string_equal(b.sandbox.env[0], "X");
    knit__boot_free(&b);
    free(json);
    knit_sandbox_t none = {0};
    assert_int_equal(knit__boot_encode(&cfg, "", &none, &json), 0);
    assert_non_null(strstr(json, "\"version\":1"));
    assert_null(strstr(json, "sandbox"));
    assert_int_equal(knit__boot_decode(json, &b), 0);
    assert_false(b.sandbox.strict);
    knit__boot_free(&b);
    free(json);
}

/* A payload whose policy is missing, misplaced or mistyped is refused, never run unconfined. */
static void test_boot_payload_bad_sandbox_refused(void **state)
{
    (void)state;
    const char *head = "{\"version\":%d,\"hostPid\":1,\"worker\":0,\"memory\":{\"mode\":"
                       "\"inherit\",\"name\":\"\",\"payloadMax\":1048576,\"payloadInitial\":0,"
                       "\"maxPayload\":1024,\"abortCapacity\":0},\"wait\":{\"spinNs\":0,"
                       "\"spinOnly\":false},\"tasks\":[{\"name\":\"a\",\"timeoutMs\":0,"
                       "\"abortAware\":false}],\"bootstrap\":{}%s}";
    const struct {
        int version;
        const char *sandbox;
        const char *why;
    } bad[] = {
        {2, "", "sandbox needs"},
        {1, ",\"sandbox\":{\"mode\":\"strict\",\"net\":false,\"exec\":false}", "version 1"},
        {2, ",\"sandbox\":{\"mode\":\"loose\",\"net\":false,\"exec\":false}", "strict"},
        {2, ",\"sandbox\":{\"mode\":\"strict\",\"net\":false}", "sandbox needs"},
        {2, ",\"sandbox\":{\"mode\":\"strict\",\"net\":false,\"exec\":false,\"read\":\"/\"}",
            "sandbox.read must be an array"},
        {2, ",\"sandbox\":{\"mode\":\"strict\",\"net\":false,\"exec\":false,\"write\":[1]}",
            "sandbox.write[0] must be a string"},
        {2, ",\"sandbox\":{\"mode\":\"strict\",\"net\":false,\"exec\":false,\"env\":[\"A=B\"]}",
            "cannot hold '='"},
        {3, "", "version 3"},
    };
    char json[1024];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(json, sizeof json, head, bad[i].version, bad[i].sandbox);
        knit__boot_t b;
        assert_int_equal(knit__boot_decode(json, &b), KNIT_E_WORKER_STARTUP);
        if (!strstr(knit_errmsg(), bad[i].why))
            print_error("case %zu: %s\n", i, knit_errmsg());
        assert_non_null(strstr(knit_errmsg(), bad[i].why));
    }
    snprintf(json, sizeof json, head, 2,
        ",\"sandbox\":{\"mode\":\"strict\",\"net\":true,\"exec\":false}");
    knit__boot_t b;
    assert_int_equal(knit__boot_decode(json, &b), 0);
    assert_true(b.sandbox.strict && b.sandbox.allow_net && b.sandbox.read && !b.sandbox.read[0]);
    knit__boot_free(&b);
}

int main(void)
{
    int rc = knit_worker_process_main(tasks, NTASKS, boot, NULL);
    if (rc != KNIT_E_AGAIN)
        return rc;
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_read_inside_read_paths),
        cmocka_unit_test(test_read_outside_denied),
        cmocka_unit_test(test_write_inside_write_paths),
        cmocka_unit_test(test_write_outside_denied),
        cmocka_unit_test(test_inet_sockets_denied),
        cmocka_unit_test(test_net_allowed),
        cmocka_unit_test(test_exec_denied),
        cmocka_unit_test(test_exec_allowed),
        cmocka_unit_test(test_env_only_allowed),
        cmocka_unit_test(test_message_transports),
        cmocka_unit_test(test_seq_transport),
        cmocka_unit_test(test_no_landlock_fails_startup),
        cmocka_unit_test(test_best_effort_without_landlock),
        cmocka_unit_test(test_missing_path_fails_startup),
        cmocka_unit_test(test_thread_at_lockdown_fails_startup),
        cmocka_unit_test(test_unsafe_default_unchanged),
        cmocka_unit_test(test_invalid_options),
        cmocka_unit_test(test_boot_payload_round_trip),
        cmocka_unit_test(test_boot_payload_bad_sandbox_refused),
    };
    return cmocka_run_group_tests(t, setup, teardown);
}
