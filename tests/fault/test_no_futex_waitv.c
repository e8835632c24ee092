/*
 * A kernel without futex_waitv (before Linux 5.16, or a container's seccomp profile that denies
 * it): the host must still sleep while it waits, not spin, and must still hear every lane.
 * A seccomp filter makes futex_waitv fail with ENOSYS for the whole test process.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "knit/knit.h"

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

static int deny_futex_waitv(void)
{
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_futex_waitv, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof *filter, .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static int nap(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    struct timespec ts = {0, (long)arg->u.i64};
    nanosleep(&ts, NULL);
    *result = knit_v_int64(arg->u.i64);
    return 0;
}

static const knit_task_def_t tasks[] = {{.name = "nap", .fn = nap}};

static double cpu_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* `workers` calls of 300 ms, one per lane. With one lane the host sleeps on its doorbell
 * until the worker rings: next to no CPU. With several it sleeps on the first and looks at the
 * others every millisecond: a little CPU, but still a sleep - a host that spins (what it did
 * before the fallback) burns its whole wait, or what the scheduler gives it of it on a busy
 * machine (a quarter or more on the development VM). */
static void host_sleeps_while_waiting(knit_runtime_t rt, int workers, double max_share)
{
    /* the filter is in place: the kernel says what an old one would */
    errno = 0;
    assert_int_equal(syscall(SYS_futex_waitv, NULL, 0, 0, NULL, 0), -1);
    assert_int_equal(errno, ENOSYS);
    knit_pool_opts_t o
        = {.threads = (uint32_t)workers, .runtime = rt, .balancer = KNIT_BALANCER_ROUND_ROBIN};
    knit_pool_t *p;
    assert_int_equal(knit_pool_create(&o, tasks, 1, &p), 0);
    knit_future_t *f[2];
    for (int i = 0; i < workers; i++) {
        knit_value_t v = knit_v_int64(300000000 + i);
        assert_int_equal(knit_call(p, 0, &v, &f[i]), 0);
    }
    double wall0 = cpu_s(CLOCK_MONOTONIC), cpu0 = cpu_s(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < workers; i++) {
        assert_int_equal(knit_future_wait(f[i], -1), 0);
        assert_int_equal(knit_future_value(f[i])->u.i64, 300000000 + i);
        knit_future_release(f[i]);
    }
    double wall = cpu_s(CLOCK_MONOTONIC) - wall0, cpu = cpu_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    print_message("%d %s worker(s): the host used %.1f ms of CPU in %.0f ms of waiting\n", workers,
        rt == KNIT_RUNTIME_THREAD ? "thread" : "process", cpu * 1e3, wall * 1e3);
    if (cpu > max_share * wall)
        fail_msg("the host used %.0f %% of its wait on the CPU", 100 * cpu / wall);
    knit_pool_destroy(p);
}

static void test_one_lane_sleeps(void **s)
{
    (void)s;
    host_sleeps_while_waiting(KNIT_RUNTIME_THREAD, 1, 0.1);
    host_sleeps_while_waiting(KNIT_RUNTIME_PROCESS, 1, 0.1);
}

static void test_two_lanes_are_heard(void **s)
{
    (void)s;
    host_sleeps_while_waiting(KNIT_RUNTIME_THREAD, 2, 0.5);
    host_sleeps_while_waiting(KNIT_RUNTIME_PROCESS, 2, 0.5);
}

int main(void)
{
    const knit_task_def_t *t = tasks;
    int rc = knit_worker_process_main(t, 1, NULL, NULL);
    if (rc != KNIT_E_AGAIN)
        return rc;
    if (deny_futex_waitv() < 0) {
        perror("seccomp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_lane_sleeps),
        cmocka_unit_test(test_two_lanes_are_heard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
