/*
 * knit base - futex wait and wake on a 32-bit word. Shared (non-private) futexes, so the same
 * word works across processes mapping one memfd; threads of one process pay nothing extra.
 */
#ifndef KNIT_BASE_FUTEX_H
#define KNIT_BASE_FUTEX_H

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"

/* Sleep while *word == expected, at most `timeout_ns` (< 0: no limit). Returns 0 when woken or
 * when the word already differed, -ETIMEDOUT, or -EINTR. */
static inline int knit__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns)
{
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, tp, NULL, 0);
    if (r == 0 || errno == EAGAIN)
        return 0;
    return -errno;
}

/* Without futex_waitv (Linux before 5.16, or a seccomp profile that denies it), waits on several
 * words poll the others at least this often while sleeping on the first. */
#define KNIT__FUTEX_POLL_NS 1000000ull

/* knit__futex_waitv's stand-in: sleep on the first word (with FUTEX_WAIT_BITSET, whose timeout
 * is an absolute CLOCK_MONOTONIC time), for at most KNIT__FUTEX_POLL_NS when there are others. */
static inline int knit__futex_wait_first(
    _Atomic uint32_t *const *words, const uint32_t *expected, unsigned n, uint64_t deadline_ns)
{
    for (unsigned i = 0; i < n; i++)
        if (atomic_load_explicit(words[i], memory_order_relaxed) != expected[i])
            return 0;
    if (n > 1) {
        uint64_t poll_at = knit__now_ns() + KNIT__FUTEX_POLL_NS;
        if (!deadline_ns || poll_at < deadline_ns)
            deadline_ns = poll_at;
    }
    struct timespec ts, *tp = NULL;
    if (deadline_ns) {
        ts.tv_sec = (time_t)(deadline_ns / 1000000000ull);
        ts.tv_nsec = (long)(deadline_ns % 1000000000ull);
        tp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)words[0], FUTEX_WAIT_BITSET, expected[0], tp, NULL,
        FUTEX_BITSET_MATCH_ANY);
    if (r == 0 || errno == EAGAIN)
        return 0;
    return -errno;
}

/*
 * Sleep until one of `n` words (n <= 128) differs from its expected value or is woken, or the
 * CLOCK_MONOTONIC time `deadline_ns` passes (0: no limit). Returns >= 0 when woken or a value
 * already differed, -ETIMEDOUT or -EINTR. Where the kernel refuses futex_waitv with ENOSYS, this
 * and every later wait fall back to knit__futex_wait_first: a sleep, never a busy loop.
 */
static inline int knit__futex_waitv(
    _Atomic uint32_t *const *words, const uint32_t *expected, unsigned n, uint64_t deadline_ns)
{
    static _Atomic bool no_waitv; /* relaxed: a cache of what the kernel said; racing is fine */
    if (n > 128)
        n = 128;
    if (n == 0)
        return 0;
    if (atomic_load_explicit(&no_waitv, memory_order_relaxed))
        return knit__futex_wait_first(words, expected, n, deadline_ns);
    struct futex_waitv w[128];
    for (unsigned i = 0; i < n; i++) {
        w[i].val = expected[i];
        w[i].uaddr = (uint64_t)(uintptr_t)words[i];
        w[i].flags = FUTEX_32; /* shared: the words may live in memory mapped by other processes */
        w[i].__reserved = 0;
    }
    struct timespec ts, *tp = NULL;
    if (deadline_ns) {
        ts.tv_sec = (time_t)(deadline_ns / 1000000000ull);
        ts.tv_nsec = (long)(deadline_ns % 1000000000ull);
        tp = &ts;
    }
    long r = syscall(SYS_futex_waitv, w, n, 0, tp, CLOCK_MONOTONIC);
    if (r >= 0 || errno == EAGAIN)
        return 0;
    if (errno != ENOSYS)
        return -errno;
    atomic_store_explicit(&no_waitv, true, memory_order_relaxed);
    return knit__futex_wait_first(words, expected, n, deadline_ns);
}

static inline void knit__futex_wake(_Atomic uint32_t *word, int n)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* Ask for the cache line at `p` with intent to write (a hint; never faults). On x86-64,
 * PREFETCHW sits in the NOP space of CPUs that lack it. */
static inline void knit__prefetch_w(const void *p)
{
#if defined(__x86_64__)
    __asm__ __volatile__("prefetchw %0" : : "m"(*(const char *)p));
#else
    __builtin_prefetch(p, 1, 3);
#endif
}

static inline void knit__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
