/*
 * knit-bench scenario `contended`: the `latency` case (one empty call in flight) and the
 * `batch` case with bursts of 1000 on one worker, again while busy processes compete for the
 * CPUs: one process per online CPU spinning in `for (;;)` at nice 0, started after the pool and
 * before the case, killed after it (also on every error path). A pool that spins may collapse
 * here, and that is what the scenario shows, so every round is bounded: calls still pending
 * 2 s after the round's first call (0.5 s with --quick) are cancelled and counted as errors.
 * Variants "latency-hog<N>" / "batch-hog<N>"; every transport on threads, plus knit/process.
 * --quick: latency on knit and pipe, thread.
 *
 * The busy processes hang off one supervisor child: they are not children of knit-bench, so
 * the runner's CPU accounting (itself plus its child processes) counts the pool's workers and
 * not the load. The supervisor forks them, reports how many run, waits until knit-bench closes
 * its end of a pipe (or exits), then SIGKILLs and reaps every one before it exits itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/error.h"
#include "calls.h"

#define MAX_HOGS 1024u

typedef struct hogs {
    pid_t supervisor;
    int stop_fd; /* closing it stops the hogs */
} hogs_t;

static void run_everywhere(void)
{
    cpu_set_t all;
    CPU_ZERO(&all);
    for (unsigned i = 0; i < CPU_SETSIZE; i++)
        CPU_SET(i, &all);
    sched_setaffinity(0, sizeof all, &all); /* the kernel keeps the CPUs we may use */
}

static _Noreturn void hog(pid_t supervisor)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != supervisor)
        _exit(0);
    for (;;)
        __asm__ volatile("");
}

/* The supervisor: only async-signal-safe calls (it is forked from a threaded process). */
static _Noreturn void supervise(int stop_fd, int ready_fd, unsigned n)
{
    pid_t pids[MAX_HOGS], self = getpid();
    unsigned started = 0;
    run_everywhere(); /* the host thread may be pinned to one CPU */
    setpriority(PRIO_PROCESS, 0, 0);
    for (; started < n; started++) {
        pid_t p = fork();
        if (p < 0)
            break;
        if (p == 0) {
            close(stop_fd);
            close(ready_fd);
            hog(self);
        }
        pids[started] = p;
    }
    ssize_t w = write(ready_fd, &started, sizeof started); /* short: the host stops us */
    (void)w;
    close(ready_fd);
    char b;
    while (started == n && read(stop_fd, &b, 1) < 0 && errno == EINTR)
        ;
    for (unsigned i = 0; i < started; i++)
        kill(pids[i], SIGKILL);
    for (unsigned i = 0; i < started; i++)
        while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
            ;
    _exit(0);
}

static void hogs_stop(hogs_t *h)
{
    if (h->supervisor <= 0)
        return;
    close(h->stop_fd);
    while (waitpid(h->supervisor, NULL, 0) < 0 && errno == EINTR)
        ;
    h->supervisor = 0;
}

static unsigned read_started(int fd)
{
    unsigned started = 0;
    ssize_t r;
    while ((r = read(fd, &started, sizeof started)) < 0 && errno == EINTR)
        ;
    return r == (ssize_t)sizeof started ? started : 0;
}

static int hogs_start(hogs_t *h, unsigned n)
{
    int stop[2], ready[2];
    h->supervisor = 0;
    if (pipe2(stop, O_CLOEXEC) < 0)
        return knit__err(KNIT_E_SYS, "contended: pipe2: %s", strerror(errno));
    if (pipe2(ready, O_CLOEXEC) < 0) {
        int e = errno;
        close(stop[0]);
        close(stop[1]);
        return knit__err(KNIT_E_SYS, "contended: pipe2: %s", strerror(e));
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(stop[1]);
        close(ready[0]);
        supervise(stop[0], ready[1], n);
    }
    int e = errno;
    close(stop[0]);
    close(ready[1]);
    h->supervisor = pid;
    h->stop_fd = stop[1];
    if (pid < 0) {
        close(ready[0]);
        close(stop[1]);
        h->supervisor = 0;
        return knit__err(KNIT_E_SYS, "contended: fork: %s", strerror(e));
    }
    unsigned started = read_started(ready[0]);
    close(ready[0]);
    if (started != n) {
        hogs_stop(h);
        return knit__err(
            KNIT_E_SYS, "contended: started %u of %u busy processes (fork failed)", started, n);
    }
    return 0;
}

static json_t *fields(unsigned hogs, int64_t limit_ns)
{
    json_t *j = json_object();
    json_object_set_new(j, "hogs", json_integer(hogs));
    json_object_set_new(j, "round_limit_ns", json_integer(limit_ns));
    return j;
}

/* The pool, then the load, then the case; the load stops before the pool goes. */
static void run_loaded(
    kb_ctx_t *ctx, const kb_case_t *c, const kb_calls_spec_t *spec, unsigned nhogs)
{
    kb_calls_t *k;
    int rc = kb_calls_open(c, NULL, spec, &k);
    if (rc < 0) {
        kb_fail(ctx, c, rc);
        return;
    }
    hogs_t h;
    rc = hogs_start(&h, nhogs);
    if (rc < 0) {
        kb_fail(ctx, c, rc);
        kb_calls_close(k);
        return;
    }
    kb_plan_t plan = {.warmup_ns = kb_ms(ctx, 20, 0),
        .no_ref = "the CPUs are shared with busy threads: read against the other transports' "
                  "cases of the same run"};
    kb_calls_run(ctx, c, &plan, k, fields(nhogs, spec->round_limit_ns));
    hogs_stop(&h);
    kb_calls_close(k);
}

static void run_pair(kb_ctx_t *ctx, const char *transport, const char *runtime)
{
    unsigned nhogs = kb_cpus() < MAX_HOGS ? kb_cpus() : MAX_HOGS;
    kb_calls_spec_t spec = kb_empty_spec();
    spec.round_limit_ns = (int64_t)kb_ms(ctx, 2000, 500);
    for (int batch = 0; batch < 2; batch++) {
        kb_case_t c;
        kb_case_init(&c, "contended", transport, runtime);
        c.batch = batch ? 1000 : 1;
        spec.single = !batch;
        snprintf(c.variant, sizeof c.variant, "%s-hog%u", batch ? "batch" : "latency", nhogs);
        bool quick_skip = batch || (strcmp(transport, "knit") && strcmp(transport, "pipe"));
        if ((kb_quick(ctx) && quick_skip) || !kb_want(ctx, &c))
            continue;
        run_loaded(ctx, &c, &spec, nhogs);
    }
}

int kb_scenario_contended(kb_ctx_t *ctx)
{
    for (const char *const *t = kb_transport_names; *t; t++)
        run_pair(ctx, *t, "thread");
    if (!kb_quick(ctx))
        run_pair(ctx, "knit", "process");
    return 0;
}
