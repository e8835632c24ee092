/*
 * No heap allocation on the call path in steady state: after a warm-up, calls - one in flight,
 * and bursts beyond the lane's window that wait in the backlog - with a small argument and a
 * small or empty result allocate nothing, on the host or in the worker, whatever the
 * transport. Futures come from the pool's cache, small arguments and results live in storage
 * the receiving side keeps (KNIT_VF_LENT), frames in the lane's slots or the link's buffers.
 *
 * The test binary counts every malloc, calloc, realloc and aligned allocation of the process
 * (host and worker threads) by defining them over the C library's own; sanitizer builds
 * replace the allocator themselves, so there the test is skipped.
 */
#include "pool_testutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define COUNTING 0
#else
#define COUNTING 1
#endif

static _Atomic bool counting;
static _Atomic uint64_t allocations;

#if COUNTING
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);
void *__libc_memalign(size_t align, size_t n);

static void note(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
}

void *malloc(size_t n)
{
    note();
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    note();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    note();
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    note();
    return __libc_memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    note();
    void *p = __libc_memalign(align, n);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}
#endif

static int task_null(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)arg;
    *result = knit_v_null();
    return 0;
}

static int task_echo(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = *arg;
    *arg = knit_v_undefined();
    return 0;
}

static const knit_task_def_t tasks[] = {
    {.name = "echo", .fn = task_echo},
    {.name = "null", .fn = task_null},
};
enum { ECHO, NULL_TASK };

static const uint8_t eight[8] = {1, 2, 3, 4, 5, 6, 7, 8};

/* Calls that settled with what they should have. */
typedef struct tally {
    unsigned ok, bad;
} tally_t;

static void check(knit_future_t *f, int task, tally_t *t)
{
    int rc = knit_future_wait(f, PT_HANG_GUARD_NS);
    const knit_value_t *v = knit_future_value(f);
    knit_value_t want = task == ECHO ? knit_v_bytes(eight, sizeof eight) : knit_v_null();
    if (rc == 0 && v && knit_value_equal(v, &want))
        t->ok++;
    else
        t->bad++;
    knit_future_release(f);
}

/* `rounds` calls one at a time, then `rounds` bursts of `burst` calls. */
static void run_calls(knit_pool_t *p, int task, unsigned rounds, unsigned burst, tally_t *t)
{
    knit_future_t *fs[256];
    for (unsigned i = 0; i < rounds; i++) {
        knit_value_t arg = knit_v_bytes(eight, sizeof eight);
        knit_future_t *f = NULL;
        if (knit_call(p, task, &arg, &f) == 0)
            check(f, task, t);
        else
            t->bad++;
    }
    for (unsigned r = 0; r < rounds; r++) {
        unsigned n = 0;
        for (; n < burst; n++) {
            knit_value_t arg = knit_v_bytes(eight, sizeof eight);
            if (knit_call(p, task, &arg, &fs[n]) < 0)
                break;
        }
        t->bad += burst - n;
        for (unsigned i = 0; i < n; i++)
            check(fs[i], task, t);
    }
}

static void no_alloc_on(knit_transport_t transport)
{
    if (!COUNTING)
        skip();
    knit_pool_opts_t o = {.threads = 1, .transport = transport};
    knit_pool_t *p = NULL;
    assert_int_equal(knit_pool_create(&o, tasks, 2, &p), 0);
    enum { BURST = 100 }; /* beyond the lane's window of 32: most wait in the backlog */
    tally_t warm = {0}, measured = {0};
    for (int task = 0; task < 2; task++)
        run_calls(p, task, 20, BURST, &warm);
    unsigned rounds = (unsigned)knit_test_iters(200, 20);
    atomic_store(&allocations, 0);
    atomic_store(&counting, true);
    for (int task = 0; task < 2; task++)
        run_calls(p, task, rounds, BURST, &measured);
    atomic_store(&counting, false);
    uint64_t n = atomic_load(&allocations);
    unsigned calls = 2 * rounds * (BURST + 1);
    printf("%s: %u calls, %llu heap allocations\n", knit_transport_name(transport), calls,
        (unsigned long long)n);
    knit_pool_destroy(p);
    assert_int_equal(warm.bad, 0);
    assert_int_equal(measured.bad, 0);
    assert_int_equal(measured.ok, calls);
    assert_int_equal(n, 0);
}

static void test_knit(void **state)
{
    (void)state;
    no_alloc_on(KNIT_TRANSPORT_KNIT);
}

static void test_pipe(void **state)
{
    (void)state;
    no_alloc_on(KNIT_TRANSPORT_PIPE);
}

static void test_unix(void **state)
{
    (void)state;
    no_alloc_on(KNIT_TRANSPORT_UNIX);
}

static void test_seqpacket(void **state)
{
    (void)state;
    no_alloc_on(KNIT_TRANSPORT_SEQPACKET);
}

static void test_tcp(void **state)
{
    (void)state;
    no_alloc_on(KNIT_TRANSPORT_TCP);
}

static void test_seq(void **state)
{
    (void)state;
    no_alloc_on(KNIT_TRANSPORT_SEQ);
}

/* The counter itself works: an allocation while counting is seen. */
static void test_counter_counts(void **state)
{
    (void)state;
    if (!COUNTING)
        skip();
    atomic_store(&allocations, 0);
    atomic_store(&counting, true);
    void *volatile q = malloc(24);
    atomic_store(&counting, false);
    free(q);
    assert_int_equal(atomic_load(&allocations), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_counts),
        cmocka_unit_test(test_knit),
        cmocka_unit_test(test_pipe),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_seqpacket),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_seq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
