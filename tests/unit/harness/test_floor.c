/*
 * The knit-bench floor mechanisms (harness/bench/floor.c): every mechanism opens, runs rounds
 * that really cross to its peer (no sequence-number mismatch), records one histogram sample per
 * operation, and closes without hanging; unknown names are refused with the valid list; the
 * caller's CPU mask is restored. The futex-gap-<time> references (the idle scenario's) take
 * well-formed gaps only and sleep the gap before each single round trip; the parameterised
 * names (-poll, -b<n>, -gap-<time>, xcopy-<bytes>) open only where they apply, a burst round
 * moves exactly its n items, and an xcopy round its bytes both ways. No latency is asserted:
 * the medians are printed only.
 */
#define _GNU_SOURCE

#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "floor.h"

#define ROUNDS     20
#define MIB        (1024u * 1024u)
#define GAP_ROUNDS 5
#define GAP_NS     2000000ull /* futex-gap-2ms */

/* One mechanism (the test's state names it): rounds run, every operation is recorded, the
 * peer really answered (no errors), and memcpy counts its bytes. */
static void test_mechanism(void **state)
{
    const char *mech = *state;
    kb_floor_t *f = NULL;
    int rc = kb_floor_open(mech, &f);
    if (rc != 0)
        fail_msg("kb_floor_open(%s): %d %s", mech, rc, knit_errmsg());
    assert_non_null(f);

    knit_hist_t *h = malloc(sizeof *h);
    assert_non_null(h);
    knit_hist_init(h);
    kb_rep_t rep = {.hist = h};
    for (uint64_t r = 0; r < ROUNDS; r++) {
        rep.round = r;
        rc = kb_floor_round(f, &rep);
        if (rc != 0)
            fail_msg("kb_floor_round(%s) round %" PRIu64 ": %d %s", mech, r, rc, knit_errmsg());
    }
    kb_floor_close(f);

    print_message("floor %-15s ops %6" PRIu64 "  p50 %8" PRIu64 " ns  min %8" PRIu64
                  " ns  p99 %8" PRIu64 " ns\n",
        mech, rep.ops, knit_hist_percentile(h, 50), h->min, knit_hist_percentile(h, 99));
    assert_true(rep.ops > 0);
    assert_int_equal(rep.errors, 0);
    assert_int_equal(h->total, rep.ops);
    assert_true(h->min > 0);
    if (strcmp(mech, "memcpy") == 0)
        assert_int_equal(rep.bytes, rep.ops * MIB);
    if (strstr(mech, "-gap-"))
        assert_int_equal(rep.ops, ROUNDS); /* one round trip per round */
    const char *b = strstr(mech, "-b");
    if (b) /* a burst of n per round */
        assert_int_equal(rep.ops, ROUNDS * strtoull(b + 2, NULL, 10));
    if (strncmp(mech, "xcopy-", 6) == 0) /* the payload out and back, per item */
        assert_int_equal(rep.bytes, rep.ops * 2 * strtoull(mech + 6, NULL, 10));
    free(h);
}

#define MECH_TEST(mech)                                                                            \
    {                                                                                              \
        .name = "floor " mech, .test_func = test_mechanism, .initial_state = (void *)mech          \
    }

/* Every name of `good` opens (and closes without a round, which could sleep a gap); every
 * name of `bad` is refused with KNIT_E_INVAL and no object. */
static void expect_names(const char *const *good, size_t ngood, const char *const *bad, size_t nbad)
{
    for (size_t i = 0; i < ngood; i++) {
        kb_floor_t *f = NULL;
        int rc = kb_floor_open(good[i], &f);
        if (rc != 0)
            fail_msg("kb_floor_open(%s): %d %s", good[i], rc, knit_errmsg());
        kb_floor_close(f);
    }
    for (size_t i = 0; i < nbad; i++) {
        kb_floor_t *f = NULL;
        if (kb_floor_open(bad[i], &f) != KNIT_E_INVAL)
            fail_msg("kb_floor_open(%s) was not refused", bad[i]);
        assert_null(f);
    }
}

static void test_names_of_the_floor_scenario(void **s)
{
    (void)s;
    static const char *const want[] = {"spin", "futex", "pipe", "unix", "seqpacket", "tcp",
        "pipe-poll", "unix-poll", "seqpacket-poll", "tcp-poll", "ring", "ring-b1000", "memcpy",
        "xcopy-1048576", "thread-spawn", "process-spawn"};
    size_t n = 0;
    while (kb_floor_mechs[n])
        n++;
    assert_int_equal(n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(kb_floor_mechs[i], want[i]);
}

static void test_unknown_name_lists_the_valid_ones(void **s)
{
    (void)s;
    kb_floor_t *f = NULL;
    assert_int_equal(kb_floor_open("carrier-pigeon", &f), KNIT_E_INVAL);
    assert_null(f);
    const char *msg = knit_errmsg();
    assert_non_null(strstr(msg, "carrier-pigeon"));
    static const char *const engines[] = {"spin", "futex", "pipe", "unix", "seqpacket", "tcp",
        "ring", "memcpy", "xcopy-<bytes>", "thread-spawn", "process-spawn", "futex-gap-<n>"};
    for (size_t i = 0; i < sizeof engines / sizeof engines[0]; i++)
        assert_non_null(strstr(msg, engines[i]));
}

/* The suffixes open only on the engines that take them, with well-formed numbers; and the
 * throughput mechanisms are told apart from the round-trip ones. */
static void test_parameterised_names(void **s)
{
    (void)s;
    static const char *const good[] = {"pipe-poll", "tcp-poll-b32", "unix-b1", "seqpacket-b100000",
        "ring-b10", "xcopy-8", "xcopy-4096-b4", "pipe-gap-1ms", "tcp-gap-10us"};
    static const char *const bad[] = {"pipe-b0", "pipe-b", "pipe-b100001", "pipe-b-1", "pipe-bx",
        "pipe-poll-poll", "pipe-b4-poll", "ring-poll", "spin-b2", "futex-poll", "memcpy-b2",
        "xcopy", "xcopy-", "xcopy-0", "xcopy-x", "xcopy-8-poll", "xcopy-268435457", "pipe-gap-",
        "pipe-gap-5m", "ring-gap-1ms", "pipe-poll-gap-1ms", "pipes", "rings-b2"};
    expect_names(good, sizeof good / sizeof good[0], bad, sizeof bad / sizeof bad[0]);
    static const char *const throughput[]
        = {"ring", "ring-b32", "pipe-b4", "tcp-poll-b2", "memcpy", "xcopy-8", "xcopy-64-b2"};
    static const char *const round_trip[] = {"spin", "futex", "pipe", "pipe-poll", "thread-spawn",
        "futex-gap-1ms", "pipe-gap-1ms", "carrier-pigeon"};
    for (size_t i = 0; i < sizeof throughput / sizeof throughput[0]; i++)
        if (!kb_floor_is_throughput(throughput[i]))
            fail_msg("%s is read by throughput", throughput[i]);
    for (size_t i = 0; i < sizeof round_trip / sizeof round_trip[0]; i++)
        if (kb_floor_is_throughput(round_trip[i]))
            fail_msg("%s is read by its round trip", round_trip[i]);
}

/* A gap is a positive integer with ns, us, ms or s, at most 10 s; only futex-gap takes one.
 * Well-formed names open and close without a round (which would sleep the gap). */
static void test_gap_names(void **s)
{
    (void)s;
    static const char *const good[]
        = {"futex-gap-1ns", "futex-gap-10us", "futex-gap-100ms", "futex-gap-10s"};
    static const char *const bad[]
        = {"futex-gap", "futex-gap-", "futex-gap-0ms", "futex-gap-100", "futex-gap-100 ms",
            "futex-gap- 1ms", "futex-gap-+5ms", "futex-gap--5ms", "futex-gap-5m", "futex-gap-1msx",
            "futex-gap-11s", "futex-gap-10000000001ns", "futex-gap-99999999999999999999s",
            "futex-gap-1.5ms", "futex-100ms", "futex-gap1ms", "spin-1ms", "futex-1ms"};
    expect_names(good, sizeof good / sizeof good[0], bad, sizeof bad / sizeof bad[0]);
}

/* futex-gap-<time>: every round sleeps the gap, then times one round trip that excludes it. */
static void test_gap_sleeps_before_each_round_trip(void **s)
{
    (void)s;
    kb_floor_t *f = NULL;
    assert_int_equal(kb_floor_open("futex-gap-2ms", &f), 0);
    knit_hist_t *h = malloc(sizeof *h);
    assert_non_null(h);
    knit_hist_init(h);
    kb_rep_t rep = {.hist = h};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t r = 0; r < GAP_ROUNDS; r++)
        assert_int_equal(kb_floor_round(f, &rep), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    kb_floor_close(f);
    uint64_t elapsed = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)t1.tv_nsec
        - (uint64_t)t0.tv_nsec;
    assert_true(elapsed >= GAP_ROUNDS * GAP_NS);
    assert_int_equal(rep.ops, GAP_ROUNDS);
    assert_int_equal(rep.errors, 0);
    assert_int_equal(h->total, GAP_ROUNDS);
    assert_true(h->min > 0);
    assert_true(h->max < elapsed - (GAP_ROUNDS - 1) * GAP_NS); /* no sample holds a gap */
    free(h);
}

/* Every peer is stopped and joined by close even when it never got any work (blocked in a
 * read, a futex wait or a busy-wait). */
static void test_close_without_rounds(void **s)
{
    (void)s;
    kb_floor_close(NULL);
    for (size_t i = 0; kb_floor_mechs[i]; i++) {
        kb_floor_t *f = NULL;
        int rc = kb_floor_open(kb_floor_mechs[i], &f);
        if (rc != 0)
            fail_msg("kb_floor_open(%s): %d %s", kb_floor_mechs[i], rc, knit_errmsg());
        kb_floor_close(f);
    }
}

/* Open pins the caller (on two or more CPUs); close puts its mask back. */
static void test_close_restores_the_callers_cpus(void **s)
{
    (void)s;
    cpu_set_t before, during, after;
    assert_int_equal(pthread_getaffinity_np(pthread_self(), sizeof before, &before), 0);
    kb_floor_t *f = NULL;
    assert_int_equal(kb_floor_open("pipe", &f), 0);
    assert_int_equal(pthread_getaffinity_np(pthread_self(), sizeof during, &during), 0);
    if (sysconf(_SC_NPROCESSORS_ONLN) >= 2 && CPU_ISSET(0, &before) && CPU_ISSET(1, &before)) {
        assert_int_equal(CPU_COUNT(&during), 1);
        assert_true(CPU_ISSET(0, &during));
    } else {
        assert_true(CPU_EQUAL(&before, &during));
    }
    kb_floor_close(f);
    assert_int_equal(pthread_getaffinity_np(pthread_self(), sizeof after, &after), 0);
    assert_true(CPU_EQUAL(&before, &after));
}

int main(void)
{
    const struct CMUnitTest t[] = {
        MECH_TEST("spin"),
        MECH_TEST("futex"),
        MECH_TEST("pipe"),
        MECH_TEST("unix"),
        MECH_TEST("tcp"),
        MECH_TEST("ring"),
        MECH_TEST("memcpy"),
        MECH_TEST("thread-spawn"),
        MECH_TEST("process-spawn"),
        MECH_TEST("futex-gap-100us"),
        MECH_TEST("seqpacket"),
        MECH_TEST("pipe-poll"),
        MECH_TEST("unix-poll"),
        MECH_TEST("seqpacket-poll"),
        MECH_TEST("tcp-poll"),
        MECH_TEST("pipe-b64"),
        MECH_TEST("tcp-poll-b100"),
        MECH_TEST("ring-b10"),
        MECH_TEST("ring-b1000"),
        MECH_TEST("xcopy-33"),
        MECH_TEST("xcopy-65536-b8"),
        MECH_TEST("pipe-gap-100us"),
        MECH_TEST("futex-gap-1ms"),
        cmocka_unit_test(test_names_of_the_floor_scenario),
        cmocka_unit_test(test_parameterised_names),
        cmocka_unit_test(test_unknown_name_lists_the_valid_ones),
        cmocka_unit_test(test_gap_names),
        cmocka_unit_test(test_gap_sleeps_before_each_round_trip),
        cmocka_unit_test(test_close_without_rounds),
        cmocka_unit_test(test_close_restores_the_callers_cpus),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
