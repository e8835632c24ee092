/*
 * knit-count - full round trips of one call (knit_call to a settled, released future: encode,
 * publish, wake-up, the worker's drain, decode, task, result, the host's drain, registry,
 * settlement, delivery) for exact per-call counts: instructions and system calls (valgrind's
 * callgrind with --trace-syscalls) and context switches (the kernel's counters, natively).
 *
 * The call is the `latency` scenario's: an empty task with an 8-byte bytes argument on one
 * worker (--bytes N: an echo of N bytes, checked on return, for the payload path). Counts are
 * exact only when the interleaving of host and worker is the same on every run, so by default
 * (--schedule run-to-block) both sides never spin (wait.spin_ns < 0) and share CPU 0 under
 * SCHED_FIFO: a thread runs until it blocks, and every round trip takes the full path - the host
 * publishes, wakes the parked worker and parks; the worker drains, runs the task, sends the result,
 * wakes the host and parks. That needs root or CAP_SYS_NICE; the program exits 77 when it cannot
 * have it. --schedule pinned is knit-bench's placement (host on CPU 0, worker on CPU 1, normal
 * scheduling): real, but the counts then depend on timing.
 *
 * The run is warm-up, mark 1, N round trips, mark 2, 2N round trips, mark 3. A mark is a call
 * of the task `mark`, which in the worker's process dumps callgrind's counters
 * (CALLGRIND_DUMP_STATS_AT "knit-count-mark-K") and makes one marker system call
 * (access("/knit-count-mark-K")); the host then does the same in its own process (process
 * workers only: thread workers share it) and prints both sides' context-switch counters as a
 * JSON line on stdout. A window between two marks holds its round trips plus the tail and the
 * head of two mark calls, which are the same in every window, so (window 2-3) - (window 1-2)
 * is exactly N round trips. harness/count/counts.py runs this program and does the arithmetic.
 *
 *   knit-count --transport knit --runtime thread --rounds 200
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

#include <jansson.h>
#include <knit/knit.h>

/*
 * Valgrind 3.19 (Debian 12) implements neither futex_waitv (the host's park on knit lanes) nor
 * pidfd_open / pidfd_send_signal (the process runtime's handle on a worker): they fail with
 * ENOSYS there, and the host's wait would become a busy loop whose length depends on timing.
 * Under valgrind only, this program stands in for them: a single-word futex_waitv becomes the
 * FUTEX_WAIT_BITSET it is equivalent to (same word, expected value and absolute
 * CLOCK_MONOTONIC deadline, shared futex); pidfd_open returns an eventfd that never becomes
 * readable (deaths go unnoticed, and a stopped worker is killed after the runtime's grace
 * period: neither is on the call path) and pidfd_send_signal becomes kill(). The executable's
 * definition of syscall() takes the place of the C library's for the statically linked
 * libknit. Natively every call goes straight to the C library.
 */
enum { FAKE_PIDFDS = 16 };
static struct {
    int fd, pid;
} fake_pidfds[FAKE_PIDFDS];

long syscall(long number, ...)
{
    static long (*real)(long, ...);
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (!real)
        real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    if (!real) {
        errno = ENOSYS;
        return -1;
    }
    if (RUNNING_ON_VALGRIND) {
        if (number == SYS_futex_waitv && a[1] == 1) {
            const struct futex_waitv *w = (const struct futex_waitv *)(uintptr_t)a[0];
            return real(SYS_futex, (uint32_t *)(uintptr_t)w->uaddr, FUTEX_WAIT_BITSET,
                (uint32_t)w->val, (const struct timespec *)(uintptr_t)a[3], NULL,
                FUTEX_BITSET_MATCH_ANY);
        }
        if (number == SYS_pidfd_open) {
            for (int i = 0; i < FAKE_PIDFDS; i++) {
                if (fake_pidfds[i].pid == 0) {
                    int fd = eventfd(0, EFD_CLOEXEC);
                    if (fd >= 0)
                        fake_pidfds[i].fd = fd, fake_pidfds[i].pid = (int)a[0];
                    return fd;
                }
            }
            errno = EMFILE;
            return -1;
        }
        if (number == SYS_pidfd_send_signal) {
            for (int i = 0; i < FAKE_PIDFDS; i++)
                if (fake_pidfds[i].pid && fake_pidfds[i].fd == (int)a[0])
                    return kill(fake_pidfds[i].pid, (int)a[1]);
            errno = EBADF;
            return -1;
        }
    }
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static void marker(int64_t k)
{
    char label[64];
    snprintf(label, sizeof label, "knit-count-mark-%lld", (long long)k);
    CALLGRIND_DUMP_STATS_AT(label);
    char path[80];
    snprintf(path, sizeof path, "/%s", label);
    if (access(path, F_OK) == 0) /* the marker system call (its path shows in a trace) */
        fprintf(stderr, "knit-count: %s exists\n", path);
}

static int task_empty(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)arg;
    *result = knit_v_null();
    return 0;
}

static int task_echo(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = *arg; /* the argument's buffer becomes the result's */
    *arg = knit_v_undefined();
    return 0;
}

static int task_mark(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    marker(arg->kind == KNIT_KIND_INT64 ? arg->u.i64 : -1);
    *result = knit_v_null();
    return 0;
}

/* Sorted by name: the pool indexes tasks in name order. */
static const knit_task_def_t tasks[] = {
    {.name = "echo", .fn = task_echo},
    {.name = "echo_in_place", .fn = task_echo, .arg_in_place = true},
    {.name = "empty", .fn = task_empty},
    {.name = "mark", .fn = task_mark},
};
enum { TASK_ECHO, TASK_ECHO_IN_PLACE, TASK_EMPTY, TASK_MARK, NTASKS };

/* --schedule run-to-block: the calling process (and what it starts) on CPU 0 under SCHED_FIFO.
 * The setting is inherited by threads and child processes; KNIT_COUNT_RUN_TO_BLOCK tells a
 * worker process's bootstrap not to pin itself elsewhere. */
static int run_to_block(void)
{
    struct sched_param sp = {.sched_priority = 1};
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0 || sched_setscheduler(0, SCHED_FIFO, &sp) < 0)
        return -errno;
    setenv("KNIT_COUNT_RUN_TO_BLOCK", "1", 1);
    return 0;
}

static void pin_self(unsigned cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* Bootstrap hook of thread and process workers: --schedule pinned puts the worker on CPU 1. */
static int pin_worker(void *ctx, uint32_t index)
{
    (void)ctx;
    (void)index;
    if (!getenv("KNIT_COUNT_RUN_TO_BLOCK") && sysconf(_SC_NPROCESSORS_ONLN) >= 2)
        pin_self(1);
    return 0;
}

/* Voluntary and involuntary context switches of every thread of process `pid`. */
static int proc_switches(int pid, long long *vol, long long *invol)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    *vol = *invol = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char status[300], line[256];
        snprintf(status, sizeof status, "/proc/%d/task/%s/status", pid, e->d_name);
        FILE *f = fopen(status, "r");
        if (!f)
            continue;
        long long v;
        while (fgets(line, sizeof line, f)) {
            if (sscanf(line, "voluntary_ctxt_switches: %lld", &v) == 1)
                *vol += v;
            else if (sscanf(line, "nonvoluntary_ctxt_switches: %lld", &v) == 1)
                *invol += v;
        }
        fclose(f);
    }
    closedir(d);
    return 0;
}

#define MAX_BURST 4096u
#define MAX_BYTES (64u << 20)

/* The call every round makes: `empty` with 8 bytes, or with --bytes N `echo` with N bytes. */
static struct {
    int task;
    const uint8_t *data;
    size_t len;
} the_call;

static knit_value_t call_arg(void)
{
    return knit_v_bytes(the_call.data, the_call.len);
}

static bool is_echo(int task)
{
    return task == TASK_ECHO || task == TASK_ECHO_IN_PLACE;
}

/* Wait for `f` and release it: its status, or KNIT_E_CORRUPT when an echo came back changed. */
static int settle(knit_future_t *f, bool echo)
{
    int rc = knit_future_wait(f, -1);
    if (rc == 0 && echo) {
        const knit_value_t *v = knit_future_value(f);
        if (!v || v->kind != KNIT_KIND_BYTES || v->len != the_call.len
            || memcmp(v->u.ptr, the_call.data, the_call.len) != 0)
            rc = KNIT_E_CORRUPT;
    }
    knit_future_release(f);
    return rc;
}

static int call(knit_pool_t *pool, int task, knit_value_t *arg)
{
    knit_future_t *f;
    int rc = knit_call(pool, task, arg, &f);
    return rc < 0 ? rc : settle(f, is_echo(task));
}

/* A burst: `burst` calls made before the first wait (beyond the lane's window of 32, the rest
 * wait in the backlog), then each awaited and released in order. */
static int burst_round(knit_pool_t *pool, unsigned burst)
{
    static knit_future_t *fs[MAX_BURST];
    int rc = 0;
    unsigned made = 0;
    for (; made < burst; made++) {
        knit_value_t arg = call_arg();
        rc = knit_call(pool, the_call.task, &arg, &fs[made]);
        if (rc < 0)
            break;
    }
    for (unsigned i = 0; i < made; i++) {
        int w = settle(fs[i], is_echo(the_call.task));
        rc = rc < 0 ? rc : w;
    }
    return rc;
}

static int rounds(knit_pool_t *pool, unsigned n, unsigned burst)
{
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        if (burst > 1) {
            rc = burst_round(pool, burst);
        } else {
            knit_value_t arg = call_arg();
            rc = call(pool, the_call.task, &arg);
        }
    }
    return rc;
}

/* Minor page faults of every thread of process `pid` (field 10 of /proc/PID/stat). */
static long long proc_minflt(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    long long v = -1;
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %lld", &v) != 1)
        v = -1;
    return v;
}

/* Mark k: the worker's dump and marker, then the host's (process workers), then the
 * context-switch counters of both sides. */
static int mark(knit_pool_t *pool, bool process, int64_t k, unsigned done)
{
    knit_value_t v = knit_v_int64(k);
    int rc = call(pool, TASK_MARK, &v);
    if (rc < 0)
        return rc;
    if (process)
        marker(k);
    if (RUNNING_ON_VALGRIND)
        return 0; /* the context switches come from a native run; reading them allocates */
    long long hv = 0, hi = 0, wv = 0, wi = 0;
    int32_t pid = process ? knit_pool_worker_pid(pool, 0) : 0;
    struct rusage self;
    getrusage(RUSAGE_SELF, &self);
    struct rusage host;
    getrusage(RUSAGE_THREAD, &host);
    hv = host.ru_nvcsw;
    hi = host.ru_nivcsw;
    long long hf = host.ru_minflt, wf = self.ru_minflt - host.ru_minflt;
    if (process) {
        if (proc_switches(pid, &wv, &wi) < 0 || (wf = proc_minflt(pid)) < 0)
            return KNIT_E_WORKER_DIED;
        hf = self.ru_minflt;
        /* the host process's other threads (the monitor) count as the host's */
        hv = self.ru_nvcsw;
        hi = self.ru_nivcsw;
    } else {
        wv = self.ru_nvcsw - hv; /* every other thread of this process: the worker's */
        wi = self.ru_nivcsw - hi;
    }
    printf("{\"mark\": %lld, \"rounds\": %u, \"host_voluntary\": %lld, \"host_involuntary\": "
           "%lld, \"worker_voluntary\": %lld, \"worker_involuntary\": %lld, "
           "\"host_minor_faults\": %lld, \"worker_minor_faults\": %lld}\n",
        (long long)k, done, hv, hi, wv, wi, hf, wf);
    fflush(stdout);
    return 0;
}

static int usage(FILE *o, int status)
{
    fprintf(o,
        "usage: knit-count [--transport T] [--runtime R] [--rounds N] [--warmup W]\n"
        "                  [--burst B] [--bytes N [--in-place]]\n"
        "                  [--schedule run-to-block|pinned]\n"
        "Round trips of an empty task with an 8-byte argument on one worker that never spins:\n"
        "warm-up W (default 200), mark 1, N round trips (default 200), mark 2, 2N, mark 3.\n"
        "With --burst B (1-4096, default 1) a round is B calls made before the first wait,\n"
        "then all awaited: figures per call are the window's divided by N x B.\n"
        "With --bytes N (1 B - 64 MiB) the task is `echo` and the argument N bytes: the\n"
        "payload's round trip (the minor page faults in the marks show what it maps);\n"
        "--in-place: the task reads its argument in the lane (arg_in_place).\n"
        "Marks dump callgrind's counters, make a marker system call and print the context\n"
        "switches and minor page faults of host and worker as JSON lines. Read by\n"
        "harness/count/counts.py.\n"
        "  --transport T   knit (default), pipe, unix, seqpacket, tcp, seq\n"
        "  --runtime R     thread (default), process\n"
        "  --schedule S    run-to-block (default: CPU 0, SCHED_FIFO; the counts are exact; needs\n"
        "                  root or CAP_SYS_NICE, else exit 77) or pinned (host CPU 0, worker\n"
        "                  CPU 1, as knit-bench; the counts depend on timing)\n"
        "Exit status: 0 done, 1 a call failed, 2 bad usage, 77 run-to-block not permitted.\n");
    return status;
}

static bool parse_count(const char *v, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || *end || !*v || n == 0 || n > 10000000)
        return false;
    *out = (unsigned)n;
    return true;
}

int main(int argc, char **argv)
{
    /* jansson seeds its hash tables from /dev/urandom; the boot payload's tables would then
     * leave a different heap behind on every run, and malloc's cost per call with it */
    json_object_seed(1);
    int rc = knit_worker_process_main(tasks, NTASKS, pin_worker, NULL);
    if (rc != KNIT_E_AGAIN)
        return rc;
    const char *transport = "knit", *runtime = "thread", *schedule = "run-to-block";
    unsigned n = 200, warmup = 200, burst = 1, bytes = 0;
    bool in_place = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return usage(stdout, 0);
        if (!strcmp(a, "--in-place")) {
            in_place = true;
            continue;
        }
        bool ok = v != NULL;
        if (ok && !strcmp(a, "--transport"))
            transport = v;
        else if (ok && !strcmp(a, "--runtime"))
            runtime = v;
        else if (ok && !strcmp(a, "--schedule"))
            schedule = v;
        else if (ok && !strcmp(a, "--rounds"))
            ok = parse_count(v, &n);
        else if (ok && !strcmp(a, "--warmup"))
            ok = parse_count(v, &warmup);
        else if (ok && !strcmp(a, "--burst"))
            ok = parse_count(v, &burst) && burst <= MAX_BURST;
        else if (ok && !strcmp(a, "--bytes"))
            ok = parse_count(v, &bytes) && bytes <= MAX_BYTES;
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "knit-count: bad option or value: %s %s\n", a, v ? v : "");
            return usage(stderr, 2);
        }
        i++;
    }
    knit_pool_opts_t o = {.threads = 1};
    bool process = !strcmp(runtime, "process");
    if (in_place && !bytes) {
        fprintf(stderr, "knit-count: --in-place needs --bytes\n");
        return 2;
    }
    if (knit_transport_parse(transport, &o.transport) < 0 || (!process && strcmp(runtime, "thread"))
        || (strcmp(schedule, "run-to-block") && strcmp(schedule, "pinned"))) {
        fprintf(stderr, "knit-count: unknown transport '%s', runtime '%s' or schedule '%s'\n",
            transport, runtime, schedule);
        return 2;
    }
    if (!strcmp(schedule, "run-to-block")) {
        rc = run_to_block();
        if (rc < 0) {
            fprintf(stderr,
                "knit-count: cannot run on CPU 0 under SCHED_FIFO (%s): exact counts need root "
                "or CAP_SYS_NICE\n",
                strerror(-rc));
            return 77;
        }
    } else if (sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
        pin_self(0);
    }
    static const uint8_t eight[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t *payload = NULL;
    the_call.task = TASK_EMPTY, the_call.data = eight, the_call.len = sizeof eight;
    if (bytes) {
        if (!(payload = malloc(bytes))) {
            fprintf(stderr, "knit-count: no memory for a %u-byte argument\n", bytes);
            return 1;
        }
        for (unsigned i = 0; i < bytes; i++)
            payload[i] = (uint8_t)(i * 131u);
        the_call.task = in_place ? TASK_ECHO_IN_PLACE : TASK_ECHO;
        the_call.data = payload, the_call.len = bytes;
    }
    o.runtime = process ? KNIT_RUNTIME_PROCESS : KNIT_RUNTIME_THREAD;
    o.wait.spin_ns = -1; /* never spin: both sides park, no loop lasts as long as the peer */
    if (!process)
        o.worker.bootstrap = pin_worker; /* process workers run the guard's hook */
    /* this executable, named explicitly: under valgrind /proc/self/exe is valgrind's tool */
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
        o.worker.process.program = self;
    }
    /* stdout's first write sets up its buffer (fstat, ioctl): before any window */
    printf("{\"transport\": \"%s\", \"runtime\": \"%s\", \"schedule\": \"%s\", \"rounds\": %u, "
           "\"burst\": %u, \"bytes\": %u}\n",
        transport, runtime, schedule, n, burst, bytes ? bytes : 8);
    fflush(stdout);
    knit_pool_t *pool;
    rc = knit_pool_create(&o, tasks, NTASKS, &pool);
    if (rc < 0) {
        fprintf(stderr, "knit-count: knit_pool_create: %s\n", knit_errmsg());
        free(payload);
        return 1;
    }
    rc = rounds(pool, warmup, burst);
    if (rc == 0)
        rc = mark(pool, process, 1, 0);
    if (rc == 0)
        rc = rounds(pool, n, burst);
    if (rc == 0)
        rc = mark(pool, process, 2, n);
    if (rc == 0)
        rc = rounds(pool, 2 * n, burst);
    if (rc == 0)
        rc = mark(pool, process, 3, 2 * n);
    if (rc < 0)
        fprintf(stderr, "knit-count: %s: %s\n", knit_strerror(rc), knit_errmsg());
    knit_pool_shutdown(pool, KNIT_SHUTDOWN_IMMEDIATE, 0);
    knit_pool_destroy(pool);
    free(payload);
    return rc < 0 ? 1 : 0;
}
