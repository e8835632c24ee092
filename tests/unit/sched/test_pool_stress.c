/*
 * Pool stress on thread workers: back-pressure (a million calls queued on one worker before
 * the host waits: all settle, in submission order), park/wake cycles with parking forced, and
 * a seeded mix of calls, cancels and dependent calls over two lanes.
 */
#include "pool_testutil.h"

#include <stdio.h>
#include <stdlib.h>

/* --- back-pressure --------------------------------------------------------------------------- */

static _Atomic uint32_t *arrival; /* arrival[k] = argument of the k-th call the worker ran */
static _Atomic uint32_t arrivals; /* calls run so far */

static int record(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    uint32_t k = atomic_fetch_add_explicit(&arrivals, 1, memory_order_relaxed);
    atomic_store_explicit(&arrival[k], (uint32_t)arg->u.i64, memory_order_relaxed);
    *result = *arg;
    return 0;
}

static const knit_task_def_t record_tasks[] = {{.name = "record", .fn = record}};

static void test_backpressure_million_calls_in_order(void **state)
{
    (void)state;
    const uint64_t n = knit_test_iters(1000000, 2000);
    arrival = calloc(n, sizeof *arrival);
    knit_future_t **fs = calloc(n, sizeof *fs);
    assert_non_null(arrival);
    assert_non_null(fs);
    atomic_store(&arrivals, 0);
    knit_pool_t *pool = pt_pool(NULL, record_tasks, 1);
    for (uint64_t i = 0; i < n; i++)
        fs[i] = pt_call_i64(pool, 0, (int64_t)i);
    assert_int_equal(knit_pool_pending(pool), n);
    uint64_t wrong_value = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (knit_future_wait(fs[i], -1) != 0 || knit_future_value(fs[i])->u.i64 != (int64_t)i)
            wrong_value++;
        knit_future_release(fs[i]);
    }
    assert_int_equal(knit_pool_pending(pool), 0);
    knit_pool_destroy(pool);
    assert_int_equal(wrong_value, 0);
    assert_int_equal(atomic_load(&arrivals), n);
    uint64_t out_of_order = 0, first = n;
    for (uint64_t k = 0; k < n; k++)
        if (atomic_load_explicit(&arrival[k], memory_order_relaxed) != k) {
            if (first == n)
                first = k;
            out_of_order++;
        }
    if (out_of_order)
        print_error("%llu of %llu calls ran out of submission order; first at position %llu "
                    "(call %u ran there)\n",
            (unsigned long long)out_of_order, (unsigned long long)n, (unsigned long long)first,
            (unsigned)atomic_load(&arrival[first]));
    free(arrival);
    free(fs);
    assert_int_equal(out_of_order, 0);
}

/* --- park / wake ----------------------------------------------------------------------------- */

static const knit_task_def_t echo_tasks[] = {{.name = "echo", .fn = pt_task_echo}};

/* n calls through a pool made with `o`, each waited for before the next is made: every one
 * comes back with its argument. */
static void echo_in_turn(const knit_pool_opts_t *o, uint64_t n)
{
    knit_pool_t *pool = pt_pool(o, echo_tasks, 1);
    uint64_t bad = 0;
    for (uint64_t i = 0; i < n; i++) {
        knit_future_t *f = pt_call_i64(pool, 0, (int64_t)i);
        if (knit_future_wait(f, -1) != 0 || knit_future_value(f)->u.i64 != (int64_t)i)
            bad++;
        knit_future_release(f);
    }
    knit_pool_destroy(pool);
    assert_int_equal(bad, 0);
}

/* Each call waits for the previous with spinning disabled on both sides, so every call is a
 * full park/wake cycle of worker and host. A lost wake-up hangs (ctest's timeout catches it). */
static void test_park_wake_cycles(void **state)
{
    (void)state;
    knit_pool_opts_t o = {0};
    o.wait.spin_ns = -1;
    echo_in_turn(&o, knit_test_iters(100000, 1000));
}

/* The same over two lanes, alternating, so both workers park between every call. */
static void test_park_wake_two_lanes(void **state)
{
    (void)state;
    knit_pool_opts_t o = {0};
    o.threads = 2;
    o.balancer = KNIT_BALANCER_ROUND_ROBIN;
    o.wait.spin_ns = -1;
    echo_in_turn(&o, knit_test_iters(20000, 500));
}

/* --- seeded mix ------------------------------------------------------------------------------ */

/* Echo the int64 argument, rejecting odd multiples of 5 (with the argument as the value). */
static int mix_task(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = *arg;
    return arg->u.i64 % 10 == 5 ? KNIT_TASK_REJECT : 0;
}

static const knit_task_def_t mix_tasks[] = {{.name = "mix", .fn = mix_task}};

typedef struct mix_rec {
    knit_future_t *f;
    int input;         /* index of the input record for a dependent call, else -1 */
    int64_t arg;       /* direct calls */
    bool cancelled;    /* knit_future_cancel was called while it was pending */
    int settle_calls;  /* completion callback count */
    int settle_status; /* status seen by the callback */
} mix_rec_t;

static void mix_settled(knit_future_t *f, void *ctx)
{
    mix_rec_t *r = ctx;
    r->settle_calls++;
    r->settle_status = knit_future_status(f);
}

/* Expected status and int64 value of record i, from its input chain. */
static int mix_expect(const mix_rec_t *recs, int i, int64_t *value)
{
    const mix_rec_t *r = &recs[i];
    if (r->cancelled)
        return KNIT_E_ABORTED;
    int64_t v = 0;
    if (r->input < 0) {
        v = r->arg;
    } else {
        int st = mix_expect(recs, r->input, &v);
        if (st != 0) {
            *value = v;
            return st;
        }
    }
    *value = v;
    return v % 10 == 5 ? KNIT_E_TASK : 0;
}

static void test_seeded_mix(void **state)
{
    (void)state;
    knit_test_rng_t rng = {0x6d69782d706f6f6cull};
    knit_pool_opts_t o = {0};
    o.threads = 2;
    o.balancer = KNIT_BALANCER_ROUND_ROBIN;
    knit_pool_t *pool = pt_pool(&o, mix_tasks, 1);
    const int n = (int)knit_test_iters(60000, 1500);
    mix_rec_t *recs = calloc((size_t)n, sizeof *recs);
    assert_non_null(recs);
    for (int i = 0; i < n; i++) {
        mix_rec_t *r = &recs[i];
        uint64_t op = knit_test_below(&rng, 100);
        r->input = -1;
        if (op < 20 && i > 0) {
            /* a dependent of a still-pending earlier call */
            int in = (int)knit_test_below(&rng, (uint64_t)i);
            if (knit_future_status(recs[in].f) == KNIT_E_AGAIN) {
                r->input = in;
                assert_int_equal(knit_call_after(pool, 0, recs[in].f, &r->f), 0);
            }
        }
        if (!r->f) {
            r->arg = (int64_t)knit_test_below(&rng, 1000);
            r->f = pt_call_i64(pool, 0, r->arg);
        }
        knit_future_on_settle(r->f, mix_settled, r);
        if (op >= 90) {
            int c = (int)knit_test_below(&rng, (uint64_t)i + 1);
            if (knit_future_status(recs[c].f) == KNIT_E_AGAIN) {
                recs[c].cancelled = true;
                assert_int_equal(knit_future_cancel(recs[c].f), 0);
                assert_int_equal(knit_future_status(recs[c].f), KNIT_E_ABORTED);
            }
        }
        if (op >= 80 && op < 90)
            knit_pool_progress(pool, 0);
    }
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int64_t want = 0;
        int st = mix_expect(recs, i, &want);
        int got = knit_future_wait(recs[i].f, PT_HANG_GUARD_NS);
        const knit_value_t *v = knit_future_value(recs[i].f);
        bool ok = got == st;
        if (ok && st != KNIT_E_ABORTED)
            ok = v && v->kind == KNIT_KIND_INT64 && v->u.i64 == want;
        if (!ok && bad++ < 10)
            print_error("call %d: status %d (want %d)\n", i, got, st);
    }
    knit_pool_progress(pool, 0);
    for (int i = 0; i < n; i++)
        if (recs[i].settle_calls != 1 || recs[i].settle_status != knit_future_status(recs[i].f))
            if (bad++ < 10)
                print_error("call %d: callback ran %d times\n", i, recs[i].settle_calls);
    assert_int_equal(knit_pool_pending(pool), 0);
    for (int i = 0; i < n; i++)
        knit_future_release(recs[i].f);
    knit_pool_destroy(pool);
    free(recs);
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_backpressure_million_calls_in_order),
        cmocka_unit_test(test_park_wake_cycles),
        cmocka_unit_test(test_park_wake_two_lanes),
        cmocka_unit_test(test_seeded_mix),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
