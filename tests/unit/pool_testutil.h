/*
 * knit tests - helpers for the pool tests (tests/unit/test_pool_*.c).
 *
 * Tasks run on worker threads and never assert: they record what they saw in atomics that the
 * test's main thread checks after the calls have settled. A gate lets a test hold tasks on
 * their worker until it opens the gate, without burning CPU, and tells the test how many tasks
 * have entered it.
 */
#ifndef KNIT_TESTS_POOL_TESTUTIL_H
#define KNIT_TESTS_POOL_TESTUTIL_H

#include "testutil.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "knit/knit.h"

#define PT_MS            1000000ll
#define PT_HANG_GUARD_NS (5000ll * PT_MS) /* bounded waits where a bug could otherwise hang */

static inline uint64_t pt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* --- gate ------------------------------------------------------------------------------------ */

typedef struct pt_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    unsigned entered; /* tasks that reached the gate */
} pt_gate_t;

static inline void pt_gate_init(pt_gate_t *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = false;
    g->entered = 0;
}

static inline void pt_gate_destroy(pt_gate_t *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

/* Task side: count in, then block until the gate opens. */
static inline void pt_gate_pass(pt_gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    g->entered++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static inline void pt_gate_open(pt_gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Test side: block until n tasks have entered (only for calls already published to workers). */
static inline void pt_gate_wait_entered(pt_gate_t *g, unsigned n)
{
    pthread_mutex_lock(&g->mu);
    while (g->entered < n)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static inline bool pt_gate_is_open(pt_gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    bool open = g->open;
    pthread_mutex_unlock(&g->mu);
    return open;
}

static inline unsigned pt_gate_entered(pt_gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    unsigned n = g->entered;
    pthread_mutex_unlock(&g->mu);
    return n;
}

/* --- per-test fixture ------------------------------------------------------------------------ */

/*
 * What a pool test program sets up around each test: the gate its tasks wait on, and optionally
 * `before` (the program's own counters back to zero) and `after` (let its other held tasks go).
 * A test table entry PT_TEST(test, &fixture) gives each test a fresh gate; after the test the
 * gate is opened, so that no task of a failed test stays held, and destroyed.
 */
typedef struct pt_fixture {
    pt_gate_t *gate;
    void (*before)(void);
    void (*after)(void);
} pt_fixture_t;

static inline int pt_fixture_setup(void **state)
{
    const pt_fixture_t *fx = *state;
    if (fx->before)
        fx->before();
    pt_gate_init(fx->gate);
    return 0;
}

static inline int pt_fixture_teardown(void **state)
{
    const pt_fixture_t *fx = *state;
    if (fx->after)
        fx->after();
    pt_gate_open(fx->gate);
    pt_gate_destroy(fx->gate);
    return 0;
}

#define PT_TEST(test, fixture)                                                                     \
    cmocka_unit_test_prestate_setup_teardown(test, pt_fixture_setup, pt_fixture_teardown, fixture)

/* --- watchdog ------------------------------------------------------------------------------ */

/*
 * Opens a gate if the test has not stopped the watchdog within `ns`: a call the test expects to
 * return while tasks are held would otherwise hang the program. Firing is only a hang guard;
 * the test fails on its own assertions (pt_watchdog_stop reports whether it fired).
 */
typedef struct pt_watchdog {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    bool fired;
    uint64_t deadline_ns;
    pt_gate_t *gate;
} pt_watchdog_t;

static inline void *pt_watchdog_main(void *arg)
{
    pt_watchdog_t *w = arg;
    struct timespec ts
        = {(time_t)(w->deadline_ns / 1000000000ull), (long)(w->deadline_ns % 1000000000ull)};
    pthread_mutex_lock(&w->mu);
    while (!w->stop)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0 && !w->stop) {
            w->fired = true;
            break;
        }
    pthread_mutex_unlock(&w->mu);
    if (w->fired)
        pt_gate_open(w->gate);
    return NULL;
}

static inline void pt_watchdog_start(pt_watchdog_t *w, int64_t ns, pt_gate_t *gate)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->stop = false;
    w->fired = false;
    w->deadline_ns = pt_now_ns() + (uint64_t)ns;
    w->gate = gate;
    assert_int_equal(pthread_create(&w->th, NULL, pt_watchdog_main, w), 0);
}

/* Stop the watchdog; true when it had fired. */
static inline bool pt_watchdog_stop(pt_watchdog_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    return w->fired;
}

/* --- pools and calls -------------------------------------------------------------------------- */

static inline knit_pool_t *pt_pool(
    const knit_pool_opts_t *opts, const knit_task_def_t *tasks, size_t n)
{
    knit_pool_t *pool = NULL;
    int rc = knit_pool_create(opts, tasks, n, &pool);
    if (rc != 0)
        print_error("knit_pool_create: %d %s\n", rc, knit_errmsg());
    assert_int_equal(rc, 0);
    assert_non_null(pool);
    return pool;
}

static inline int pt_task(knit_pool_t *pool, const char *name)
{
    int t = knit_task_index(pool, name);
    assert_true(t >= 0);
    return t;
}

static inline knit_future_t *pt_call(knit_pool_t *pool, int task, knit_value_t v)
{
    knit_future_t *f = NULL;
    assert_int_equal(knit_call(pool, task, &v, &f), 0);
    assert_non_null(f);
    return f;
}

static inline knit_future_t *pt_call_i64(knit_pool_t *pool, int task, int64_t i)
{
    return pt_call(pool, task, knit_v_int64(i));
}

/* Wait for an int64 result and return it. */
static inline int64_t pt_wait_i64(knit_future_t *f)
{
    assert_int_equal(knit_future_wait(f, -1), 0);
    const knit_value_t *v = knit_future_value(f);
    assert_non_null(v);
    assert_int_equal(v->kind, KNIT_KIND_INT64);
    return v->u.i64;
}

/* Submit n calls of `task` with the int64 arguments first, first + 1, ... into fs[]. */
static inline void pt_call_range(
    knit_pool_t *pool, int task, knit_future_t **fs, int n, int64_t first)
{
    for (int i = 0; i < n; i++)
        fs[i] = pt_call_i64(pool, task, first + i);
}

/* Wait for fs[0..n-1], which must resolve with first, first + 1, ..., and release them. */
static inline void pt_wait_range(knit_future_t **fs, int n, int64_t first)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(pt_wait_i64(fs[i]), first + i);
        knit_future_release(fs[i]);
    }
}

/* n calls of an echoing `task` one after another, each waited for before the next is made: call
 * i, with the argument first + i, must resolve with it. */
static inline void pt_echo_each(knit_pool_t *pool, int task, int n, int64_t first)
{
    for (int i = 0; i < n; i++) {
        knit_future_t *f = pt_call_i64(pool, task, first + i);
        assert_int_equal(pt_wait_i64(f), first + i);
        knit_future_release(f);
    }
}

static inline bool pt_value_is_str(const knit_value_t *v, const char *s)
{
    return v && v->kind == KNIT_KIND_STRING && v->len == strlen(s)
        && memcmp(v->u.ptr, s, v->len) == 0;
}

/* A string value whose text contains `needle` (a message produced by the library). */
static inline bool pt_value_mentions(const knit_value_t *v, const char *needle)
{
    if (!v || v->kind != KNIT_KIND_STRING || v->len == 0)
        return false;
    size_t n = strlen(needle);
    const char *s = v->u.ptr;
    for (size_t i = 0; i + n <= v->len; i++)
        if (memcmp(s + i, needle, n) == 0)
            return true;
    return false;
}

/* A settlement counter for knit_future_on_settle. */
typedef struct pt_settle_count {
    int calls;
    int status;
    knit_future_t *seen;
} pt_settle_count_t;

static inline void pt_count_settle(knit_future_t *f, void *ctx)
{
    pt_settle_count_t *c = ctx;
    c->calls++;
    c->status = knit_future_status(f);
    c->seen = f;
}

/* Submit n calls of `task` with the int64 arguments 0..n-1 into fs[], each counted by its own
 * cs[i] (reset first). */
static inline void pt_call_counted(
    knit_pool_t *pool, int task, knit_future_t **fs, pt_settle_count_t *cs, int n)
{
    for (int i = 0; i < n; i++) {
        fs[i] = pt_call_i64(pool, task, i);
        cs[i] = (pt_settle_count_t) {0};
        knit_future_on_settle(fs[i], pt_count_settle, &cs[i]);
    }
}

/* --- common tasks ---------------------------------------------------------------------------- */

/* Return the argument. */
static inline int pt_task_echo(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = *arg;
    *arg = knit_v_undefined();
    return 0;
}

/* int64 + 1; rejects anything else. */
static inline int pt_task_add_one(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    if (arg->kind != KNIT_KIND_INT64) {
        *result = knit_v_str("add_one wants an int64");
        return KNIT_TASK_REJECT;
    }
    *result = knit_v_int64(arg->u.i64 + 1);
    return 0;
}

/* Block on the pt_gate_t in user_data, then return the argument. */
static inline int pt_task_gated(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    pt_gate_pass(knit_task_user_data(ctx));
    *result = *arg;
    *arg = knit_v_undefined();
    return 0;
}

#endif
