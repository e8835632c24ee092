/*
 * The conformance suite: the pool's behaviour, written once and run unchanged against every
 * transport x runtime combination. `conformance TRANSPORT RUNTIME` runs it for one combination
 * (ctest registers every one as conformance/TRANSPORT/RUNTIME); process workers are this program
 * re-executed. A property a combination cannot have is skipped with the reason printed, never
 * dropped silently.
 *
 * Tasks talk to the test only through values (arguments and results) and through state local
 * to the worker: `_Thread_local` variables, which each worker thread has its own copy of, and
 * which a process worker (a separate program) has its own copy of as well. Nothing a task does
 * is read by the test directly, since a process worker does not share the host's memory.
 *
 * Slow tasks busy-wait on CLOCK_MONOTONIC for a bounded time, so nothing can hang; timing is
 * only ever printed, never asserted as an upper bound.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "knit/knit.h"

#define MS           1000000ull
#define SLOW_TASK_MS 300u /* how long the timeout tasks run */
#define TIMEOUT_MS   50u  /* their timeout */
#define ABORT_SAFETY_MS                                                                            \
    60000u                     /* abort-aware tasks give up after this (a safety net: a busy       \
                                   machine must not make a blocker give up in a test) */
#define SPIN_LIMIT_MS    5000u /* the longest "spin" accepts */
#define MAKE_BYTES_LIMIT (256u * 1024u)

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Busy-wait (yielding the CPU) for `ms` milliseconds of CLOCK_MONOTONIC. */
static void busy_wait_ms(uint64_t ms)
{
    uint64_t end = now_ns() + ms * MS;
    while (now_ns() < end)
        sched_yield();
}

/* --- worker-local state ------------------------------------------------------------------- */

static _Thread_local int64_t sequence_next; /* "sequence": calls seen by this worker */
static _Thread_local int64_t add_one_runs;  /* "add_one": runs on this worker */
static _Thread_local int64_t aborts_seen;   /* "until_aborted": runs that saw their abort */

/* --- tasks ------------------------------------------------------------------------------------ */

static int echo(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = *arg;
    *arg = knit_v_undefined();
    return 0;
}

/* Reject with the argument as the rejection value. */
static int reject(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    echo(ctx, arg, result);
    return KNIT_TASK_REJECT;
}

/* int64 + 1 (counted per worker); anything else rejects. */
/* A task that reports a worker-local counter (each process worker has its own). */
#define REPORT_TASK(fn, counter)                                                                   \
    static int fn(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)                   \
    {                                                                                              \
        (void)ctx;                                                                                 \
        (void)arg;                                                                                 \
        *result = knit_v_int64((int64_t)(counter));                                                \
        return 0;                                                                                  \
    }

static int add_one(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    add_one_runs++;
    if (arg->kind != KNIT_KIND_INT64) {
        *result = knit_v_str("add_one wants an int64");
        return KNIT_TASK_REJECT;
    }
    *result = knit_v_int64(arg->u.i64 + 1);
    return 0;
}

/* How many calls of add_one this worker ran. */
REPORT_TASK(add_one_runs_task, add_one_runs)

/* How many calls of this task the worker ran before this one. */
static int sequence(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)arg;
    *result = knit_v_int64(sequence_next++);
    return 0;
}

static int which_worker(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)arg;
    *result = knit_v_int64((int64_t)knit_task_worker(ctx));
    return 0;
}

/* `arg` (int64) bytes of a fixed pattern, as a result. */
static int make_bytes(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    static uint8_t pattern[MAKE_BYTES_LIMIT];
    if (arg->kind != KNIT_KIND_INT64 || arg->u.i64 < 0 || arg->u.i64 > (int64_t)sizeof pattern) {
        *result = knit_v_str("make_bytes wants a size in [0, 256 KiB]");
        return KNIT_TASK_REJECT;
    }
    for (size_t i = 0; i < (size_t)arg->u.i64; i++)
        pattern[i] = (uint8_t)(i * 31u + 7u);
    *result = knit_v_bytes(pattern, (size_t)arg->u.i64);
    return 0;
}

/* Busy-wait `arg` milliseconds (at most SPIN_LIMIT_MS), then resolve with "spun". */
static int spin(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    int64_t ms = arg->kind == KNIT_KIND_INT64 ? arg->u.i64 : 0;
    busy_wait_ms(ms < 0 ? 0 : ms > SPIN_LIMIT_MS ? SPIN_LIMIT_MS : (uint64_t)ms);
    *result = knit_v_str("spun");
    return 0;
}

/* Runs SLOW_TASK_MS (far beyond TIMEOUT_MS), then returns its argument: the late result. */
static int slow(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    busy_wait_ms(SLOW_TASK_MS);
    return echo(ctx, arg, result);
}

/* Abort-aware: runs until the caller aborts (or the safety limit passes). */
static int until_aborted(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)arg;
    uint64_t end = now_ns() + ABORT_SAFETY_MS * MS;
    while (!knit_task_aborted(ctx) && now_ns() < end)
        sched_yield();
    if (knit_task_aborted(ctx)) {
        aborts_seen++;
        *result = knit_v_str("saw abort");
    } else {
        *result = knit_v_str("gave up");
    }
    return 0;
}

/* How many aborts this worker's until_aborted calls saw. */
REPORT_TASK(aborts_seen_task, aborts_seen)

/* Abort-aware, returns at once; rejects if its abort bit was set before it started. */
static int aware_echo(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    if (knit_task_aborted(ctx)) {
        *result = knit_v_str("aborted before it started");
        return KNIT_TASK_REJECT;
    }
    return echo(ctx, arg, result);
}

/* Kill this worker: SIGKILL (process workers only; the test never calls it on threads). */
static int die(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)arg;
    (void)result;
    raise(SIGKILL);
    return 0;
}

/* Write 16 bytes of 0xFF into this worker's result stream, then resolve. The result stream is
 * the one write-only pipe (pipe transport) or the one socket of this process; a host must read
 * an impossible frame length (process workers with a message transport only). */
static int corrupt_link(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)arg;
    uint8_t junk[16];
    memset(junk, 0xFF, sizeof junk);
    int hit = 0;
    for (int fd = 3; fd < 1024 && !hit; fd++) {
        struct stat st;
        if (fstat(fd, &st) < 0)
            continue;
        int fl = fcntl(fd, F_GETFL);
        bool target
            = S_ISSOCK(st.st_mode) || (S_ISFIFO(st.st_mode) && (fl & O_ACCMODE) == O_WRONLY);
        if (target && write(fd, junk, sizeof junk) == (ssize_t)sizeof junk)
            hit = fd;
    }
    *result = knit_v_int64(hit);
    return 0;
}

/* Reads its argument in place (arg_in_place): resolves sum of the bytes * 2 + 1 when the
 * argument is a view (not owned), * 2 when it is a copy. */
static int in_place_probe(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    int64_t sum = 0;
    const uint8_t *p = arg->u.ptr;
    for (size_t i = 0; arg->kind == KNIT_KIND_BYTES && i < arg->len; i++)
        sum += p[i];
    /* a view is neither an owned copy nor a small one lent by the worker loop */
    *result = knit_v_int64(sum * 2 + ((arg->flags & (KNIT_VF_OWNED | KNIT_VF_LENT)) ? 0 : 1));
    knit_value_free(arg); /* a view or a lent copy: nothing to free; a copy: freed */
    return 0;
}

static int pid_task(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    (void)arg;
    *result = knit_v_int64((int64_t)getpid());
    return 0;
}

static const knit_error_value_t timeout_error
    = {.name = "TimeoutError", .message = "the slow task took too long"};

static const knit_task_def_t tasks[] = {
    {.name = "add_one", .fn = add_one},
    {.name = "add_one_runs", .fn = add_one_runs_task},
    {.name = "aborts_seen", .fn = aborts_seen_task},
    {.name = "aware_echo", .fn = aware_echo, .abort_aware = true},
    {.name = "corrupt_link", .fn = corrupt_link},
    {.name = "die", .fn = die},
    {.name = "echo", .fn = echo},
    {.name = "echo_in_place", .fn = echo, .arg_in_place = true},
    {.name = "in_place_probe", .fn = in_place_probe, .arg_in_place = true},
    {.name = "make_bytes", .fn = make_bytes},
    {.name = "pid", .fn = pid_task},
    {.name = "reject", .fn = reject},
    {.name = "sequence", .fn = sequence},
    {.name = "slow_error",
        .fn = slow,
        .timeout_ms = TIMEOUT_MS,
        .on_timeout = KNIT_TIMEOUT_ERROR,
        .timeout_value = {.kind = KNIT_KIND_ERROR, .u = {.err = &timeout_error}}},
    {.name = "slow_maybe", .fn = slow, .timeout_ms = TIMEOUT_MS, .on_timeout = KNIT_TIMEOUT_MAYBE},
    {.name = "slow_reject",
        .fn = slow,
        .timeout_ms = TIMEOUT_MS,
        .on_timeout = KNIT_TIMEOUT_REJECT},
    {.name = "slow_resolve",
        .fn = slow,
        .timeout_ms = TIMEOUT_MS,
        .on_timeout = KNIT_TIMEOUT_RESOLVE,
        .timeout_value = {.kind = KNIT_KIND_STRING, .len = 8, .u = {.ptr = "fallback"}}},
    {.name = "spin", .fn = spin},
    {.name = "until_aborted", .fn = until_aborted, .abort_aware = true},
    {.name = "which_worker", .fn = which_worker},
};
#define NTASKS (sizeof tasks / sizeof tasks[0])

/* --- helpers ------------------------------------------------------------------------------- */

/* The combination under test (from the command line). */
static knit_transport_t the_transport;

/* The transport carries frames in lane memory (knit, seq): arguments can be read in place and
 * there is no byte stream to corrupt. */
static bool shared_memory(void)
{
    return knit__link_has(knit__transport_ops(the_transport), KNIT__LINK_SHARED_MEMORY);
}
static knit_runtime_t the_runtime;
static int64_t the_spin_ns; /* the wait policy: 0 the transport's default, > 0 poll for this
                               long before blocking, < 0 block at once */

static knit_runtime_t runtime_of(void **state)
{
    (void)state;
    return the_runtime;
}

static const char *runtime_name(void **state)
{
    (void)state;
    return the_runtime == KNIT_RUNTIME_PROCESS ? "process" : "thread";
}

static knit_pool_t *make(void **state, knit_pool_opts_t *o)
{
    o->runtime = runtime_of(state);
    o->transport = the_transport;
    if (o->wait.spin_ns == 0 && !o->wait.spin_only)
        o->wait.spin_ns = the_spin_ns; /* a test that chose its own wait keeps it */
    knit_pool_t *p = NULL;
    int rc = knit_pool_create(o, tasks, NTASKS, &p);
    if (rc < 0)
        print_error("knit_pool_create (%s/%s): %s\n", knit_transport_name(the_transport),
            runtime_name(state), knit_errmsg());
    assert_int_equal(rc, 0);
    assert_non_null(p);
    return p;
}

static knit_pool_t *make_simple(void **state, uint32_t threads)
{
    knit_pool_opts_t o = {.threads = threads};
    if (threads > 1)
        o.balancer = KNIT_BALANCER_ROUND_ROBIN;
    return make(state, &o);
}

static int task(knit_pool_t *p, const char *name)
{
    int t = knit_task_index(p, name);
    assert_true(t >= 0);
    return t;
}

static knit_future_t *call(knit_pool_t *p, int t, knit_value_t v)
{
    knit_future_t *f = NULL;
    assert_int_equal(knit_call(p, t, &v, &f), 0);
    assert_non_null(f);
    return f;
}

static knit_future_t *call_name(knit_pool_t *p, const char *name, knit_value_t v)
{
    return call(p, task(p, name), v);
}

static const char *status_name(int st)
{
    return st == 0 ? "resolved" : knit_strerror(st);
}

/* Wait; on an unexpected status print it with the value's text before failing. */
static void expect_status(knit_future_t *f, int want)
{
    int st = knit_future_wait(f, -1);
    if (st != want) {
        const knit_value_t *v = knit_future_value(f);
        print_error("status %d (%s), wanted %d (%s); value kind %s%s%.*s\n", st, status_name(st),
            want, status_name(want), v ? knit_kind_name((knit_kind_t)v->kind) : "-",
            v && v->kind == KNIT_KIND_STRING ? ": " : "",
            v && v->kind == KNIT_KIND_STRING ? (int)v->len : 0,
            v && v->kind == KNIT_KIND_STRING ? (const char *)v->u.ptr : "");
    }
    assert_int_equal(st, want);
}

static int64_t wait_i64(knit_future_t *f)
{
    expect_status(f, 0);
    const knit_value_t *v = knit_future_value(f);
    assert_int_equal(v->kind, KNIT_KIND_INT64);
    return v->u.i64;
}

static bool value_is_str(const knit_value_t *v, const char *s)
{
    return v && v->kind == KNIT_KIND_STRING && v->len == strlen(s)
        && memcmp(v->u.ptr, s, v->len) == 0;
}

static bool value_mentions(const knit_value_t *v, const char *needle)
{
    if (!v || v->kind != KNIT_KIND_STRING)
        return false;
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= v->len; i++)
        if (memcmp((const char *)v->u.ptr + i, needle, n) == 0)
            return true;
    return false;
}

/* One call of a task with no interesting argument, waited for; its int64 result. */
static int64_t ask_i64(knit_pool_t *p, const char *name)
{
    knit_future_t *f = call_name(p, name, knit_v_null());
    int64_t v = wait_i64(f);
    knit_future_release(f);
    return v;
}

static void count_settle(knit_future_t *f, void *ctx)
{
    (void)f;
    (*(int *)ctx)++;
}

/* --- every value kind round-trips ---------------------------------------------------------- */

enum { MAX_VALUES = 160 };

typedef struct value_set {
    knit_value_t v[MAX_VALUES];
    const char *label[MAX_VALUES];
    int n;
} value_set_t;

static void add_value(value_set_t *s, const char *label, knit_value_t v)
{
    assert_true(s->n < MAX_VALUES);
    s->v[s->n] = v;
    s->label[s->n++] = label;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
    knit_test_rng_t r = {seed | 1};
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)knit_test_rand(&r);
}

static void test_every_value_kind_round_trips(void **state)
{
    knit_pool_t *p = make_simple(state, 1);
    int t_echo = task(p, "echo");
    value_set_t *s = calloc(1, sizeof *s);
    assert_non_null(s);

    add_value(s, "null", knit_v_null());
    add_value(s, "undefined", knit_v_undefined());
    add_value(s, "true", knit_v_bool(true));
    add_value(s, "false", knit_v_bool(false));

    add_value(s, "f64 0.1", knit_v_f64(0.1));
    add_value(s, "f64 +0", knit_v_f64(0.0));
    add_value(s, "f64 -0", knit_v_f64(-0.0));
    add_value(s, "f64 NaN", knit_v_f64(NAN));
    add_value(s, "f64 +inf", knit_v_f64(INFINITY));
    add_value(s, "f64 -inf", knit_v_f64(-INFINITY));
    add_value(s, "f64 max", knit_v_f64(DBL_MAX));
    add_value(s, "f64 subnormal", knit_v_f64(DBL_TRUE_MIN));

    add_value(s, "int64 min", knit_v_int64(INT64_MIN));
    add_value(s, "int64 max", knit_v_int64(INT64_MAX));
    add_value(s, "int64 0", knit_v_int64(0));
    add_value(s, "int64 -1", knit_v_int64(-1));

    /* big integers outside int64: 2^63 (one past INT64_MAX), 9 bytes, and a dynamic one */
    static const uint8_t two63[8] = {0, 0, 0, 0, 0, 0, 0, 0x80};
    static const uint8_t nine[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    static uint8_t huge[700];
    fill(huge, sizeof huge, 11);
    huge[sizeof huge - 1] = 0x5a; /* no leading zero byte: keeps its length */
    knit_value_t b63 = knit_v_bigint(false, two63, sizeof two63);
    knit_value_t b63n = knit_v_bigint(true, two63, sizeof two63); /* -2^63 fits int64 */
    assert_int_equal(b63.kind, KNIT_KIND_BIGINT);
    assert_int_equal(b63n.kind, KNIT_KIND_INT64);
    add_value(s, "bigint 2^63", b63);
    add_value(s, "bigint -2^63 (int64)", b63n);
    add_value(s, "bigint 9 bytes", knit_v_bigint(false, nine, sizeof nine));
    add_value(s, "bigint -9 bytes", knit_v_bigint(true, nine, sizeof nine));
    add_value(s, "bigint 700 bytes", knit_v_bigint(true, huge, sizeof huge));
    for (int i = s->n - 3; i < s->n; i++)
        assert_int_equal(s->v[i].kind, KNIT_KIND_BIGINT);

    /* strings: static (at most 512 bytes travel in the slot) and dynamic */
    static char s512[512], s513[513];
    memset(s512, 'a', sizeof s512);
    memset(s513, 'b', sizeof s513);
    const size_t big_len = 600u * 1024u;
    char *big = malloc(big_len);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + (char)(i % 26));
    add_value(s, "string empty", knit_v_strn("", 0));
    add_value(s, "string utf-8", knit_v_str("h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\xa7\xb6"));
    add_value(s, "string 512", knit_v_strn(s512, sizeof s512));
    add_value(s, "string 513", knit_v_strn(s513, sizeof s513));
    add_value(s, "string 600 KiB", knit_v_strn(big, big_len));

    static char json_big[4096];
    size_t jl = 0;
    jl += (size_t)snprintf(json_big + jl, sizeof json_big - jl, "[");
    for (int i = 0; i < 500 && jl < sizeof json_big - 16; i++)
        jl += (size_t)snprintf(json_big + jl, sizeof json_big - jl, "%s%d", i ? "," : "", i);
    jl += (size_t)snprintf(json_big + jl, sizeof json_big - jl, "]");
    add_value(s, "json object", knit_v_json("{\"a\":1,\"b\":[true,null,\"x\"]}"));
    add_value(s, "json array (dynamic)", knit_v_jsonn(json_big, jl));

    static uint8_t bytes[100 * 1024];
    fill(bytes, sizeof bytes, 3);
    add_value(s, "bytes empty", knit_v_bytes(bytes, 0));
    add_value(s, "bytes 16", knit_v_bytes(bytes, 16));
    add_value(s, "bytes 513", knit_v_bytes(bytes, 513));
    add_value(s, "bytes 100 KiB", knit_v_bytes(bytes, sizeof bytes));

    /* every typed-array element type, small (static) and large (dynamic) */
    static uint8_t typed[4096];
    fill(typed, sizeof typed, 5);
    for (int e = 0; e < KNIT_ELEM_COUNT_; e++) {
        size_t es = knit_elem_size((knit_elem_t)e);
        assert_true(es > 0);
        add_value(s, knit_elem_name((knit_elem_t)e), knit_v_typed((knit_elem_t)e, typed, 3 * es));
        add_value(s, knit_elem_name((knit_elem_t)e),
            knit_v_typed((knit_elem_t)e, typed, sizeof typed / es * es));
    }

    add_value(s, "date", knit_v_date(1700000000123.0));
    add_value(s, "date before 1970", knit_v_date(-86400000.0));
    add_value(s, "invalid date", knit_v_date(NAN));

    /* errors: plain, no name, and a chain of causes */
    static const knit_error_value_t plain = {.name = "Error", .message = "plain"};
    static const knit_error_value_t nameless = {.name = "", .message = "no name"};
    static knit_value_t root_cause, json_cause, num_cause, inner_v;
    root_cause = knit_v_str("root cause");
    json_cause = knit_v_json("{\"code\":42}");
    num_cause = knit_v_int64(-7);
    static knit_error_value_t inner = {.name = "RangeError", .message = "inner"};
    inner.cause = &root_cause;
    inner_v = knit_v_error(&inner);
    static knit_error_value_t outer = {.name = "TypeError", .message = "outer failure"};
    outer.cause = &inner_v;
    static knit_error_value_t with_json = {.name = "Error", .message = "json cause"};
    with_json.cause = &json_cause;
    static knit_error_value_t with_num = {.name = "Error", .message = "number cause"};
    with_num.cause = &num_cause;
    add_value(s, "error", knit_v_error(&plain));
    add_value(s, "error without a name", knit_v_error(&nameless));
    add_value(s, "error with nested causes", knit_v_error(&outer));
    add_value(s, "error with a json cause", knit_v_error(&with_json));
    add_value(s, "error with an int64 cause", knit_v_error(&with_num));

    /* envelopes: JSON and string headers, static and dynamic */
    static knit_envelope_t env_json = {.header = "{\"op\":\"sum\",\"n\":3}", .header_len = 18};
    env_json.body = knit_v_bytes(bytes, 64);
    static knit_envelope_t env_str
        = {.header = "plain header", .header_len = 12, .header_kind = KNIT_ENV_STRING};
    env_str.body = knit_v_bytes(bytes, 2000);
    static char long_header[1500];
    memset(long_header, 'h', sizeof long_header);
    static knit_envelope_t env_long = {.header_kind = KNIT_ENV_STRING};
    env_long.header = long_header;
    env_long.header_len = sizeof long_header;
    env_long.body = knit_v_bytes(bytes, sizeof bytes);
    static knit_envelope_t env_empty = {.header = "{}", .header_len = 2};
    env_empty.body = knit_v_bytes(bytes, 0);
    add_value(s, "envelope json header", knit_v_envelope(&env_json));
    add_value(s, "envelope string header", knit_v_envelope(&env_str));
    add_value(s, "envelope long string header", knit_v_envelope(&env_long));
    add_value(s, "envelope empty body", knit_v_envelope(&env_empty));

    for (int i = 0; i < s->n; i++)
        assert_int_equal(knit_value_validate(&s->v[i]), 0);

    /* all in flight at once, then one at a time */
    knit_future_t **fs = calloc((size_t)s->n, sizeof *fs);
    assert_non_null(fs);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < s->n; i++) {
            fs[i] = call(p, t_echo, s->v[i]);
            if (round == 1)
                knit_future_wait(fs[i], -1);
        }
        int wrong = 0;
        for (int i = 0; i < s->n; i++) {
            int st = knit_future_wait(fs[i], -1);
            const knit_value_t *got = knit_future_value(fs[i]);
            bool ok = st == 0 && got->kind == s->v[i].kind && knit_value_equal(got, &s->v[i]);
            if (ok && s->v[i].kind == KNIT_KIND_F64 && s->v[i].u.f64 == 0)
                ok = signbit(got->u.f64) == signbit(s->v[i].u.f64);
            if (!ok) {
                wrong++;
                print_error("%s: %s round trip of \"%s\" (%s): status %s, kind %s\n",
                    runtime_name(state), round ? "one-at-a-time" : "concurrent", s->label[i],
                    knit_kind_name((knit_kind_t)s->v[i].kind), status_name(st),
                    knit_kind_name((knit_kind_t)got->kind));
            }
            knit_future_release(fs[i]);
        }
        assert_int_equal(wrong, 0);
    }
    print_message("%s: %d values round-tripped\n", runtime_name(state), s->n);
    free(fs);
    free(big);
    free(s);
    assert_int_equal(knit_pool_pending(p), 0);
    knit_pool_destroy(p);
}

/* Shared and moved buffers live in one process: thread workers take them by reference; process
 * workers refuse them with KNIT_E_PROCESS_BOUNDARY before anything is sent. */
static void count_release(void *data, void *ctx)
{
    free(data);
    (*(int *)ctx)++;
}

static void test_shared_and_moved_buffers_by_runtime(void **state)
{
    knit_pool_t *p = make_simple(state, 1);
    int t_echo = task(p, "echo");
    bool process = runtime_of(state) == KNIT_RUNTIME_PROCESS;

    knit_shared_buf_t *sb = NULL;
    assert_int_equal(knit_shared_buf_new(256, &sb), 0);
    memset(knit_shared_buf_data(sb), 0x3c, 256);
    knit_future_t *f = call(p, t_echo, knit_v_shared(sb));
    if (process) {
        expect_status(f, KNIT_E_PROCESS_BOUNDARY);
        assert_true(value_mentions(knit_future_value(f), "process"));
    } else {
        expect_status(f, 0);
        const knit_value_t *v = knit_future_value(f);
        assert_int_equal(v->kind, KNIT_KIND_SHARED);
        assert_ptr_equal(v->u.shared, sb); /* the same buffer, not a copy */
        assert_int_equal(((const uint8_t *)knit_shared_buf_data(v->u.shared))[255], 0x3c);
    }
    knit_future_release(f);
    /* the worker drops its own reference after sending; a later answer from the same worker
     * shows it has */
    f = call(p, t_echo, knit_v_null());
    expect_status(f, 0);
    knit_future_release(f);
    assert_int_equal(knit_shared_buf_refs(sb), 1); /* nothing kept a reference */
    knit_shared_buf_release(sb);

    int released = 0;
    void *data = malloc(100);
    assert_non_null(data);
    memset(data, 0x5d, 100);
    knit_moved_buf_t *m = NULL;
    assert_int_equal(knit_moved_new(data, 100, count_release, &released, &m), 0);
    knit_value_t mv = knit_v_moved(m);
    f = NULL;
    assert_int_equal(knit_call(p, t_echo, &mv, &f), 0);
    assert_int_equal(mv.kind, KNIT_KIND_UNDEFINED); /* consumed by the call */
    if (process) {
        expect_status(f, KNIT_E_PROCESS_BOUNDARY);
        assert_true(value_mentions(knit_future_value(f), "process"));
    } else {
        expect_status(f, 0);
        const knit_value_t *v = knit_future_value(f);
        assert_int_equal(v->kind, KNIT_KIND_MOVED);
        assert_ptr_equal(v->u.moved->data, data);
        assert_int_equal(v->u.moved->len, 100);
    }
    /* thread: the echoed buffer is the future's value; process: the refused call may free it
     * when it settles */
    if (!process)
        assert_int_equal(released, 0);
    knit_future_release(f);
    assert_int_equal(released, 1); /* freed exactly once */

    /* the lane is unaffected */
    f = call(p, t_echo, knit_v_int64(5));
    assert_int_equal(wait_i64(f), 5);
    knit_future_release(f);
    knit_pool_destroy(p);
}

/* --- settlement ---------------------------------------------------------------------------- */

static void test_burst_settles_each_call_once(void **state)
{
    knit_pool_opts_t o = {.threads = 2, .balancer = KNIT_BALANCER_ROUND_ROBIN};
    knit_pool_t *p = make(state, &o);
    int t = task(p, "add_one");
    const size_t n = (size_t)knit_test_iters(20000, 500);
    knit_future_t **fs = calloc(n, sizeof *fs);
    int *settles = calloc(n, sizeof *settles);
    assert_non_null(fs);
    assert_non_null(settles);
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        fs[i] = call(p, t, knit_v_int64((int64_t)i * 7));
        knit_future_on_settle(fs[i], count_settle, &settles[i]);
    }
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) {
        int st = knit_future_wait(fs[i], -1);
        const knit_value_t *v = knit_future_value(fs[i]);
        if (st != 0 || v->kind != KNIT_KIND_INT64 || v->u.i64 != (int64_t)i * 7 + 1) {
            if (wrong++ < 5)
                print_error("call %zu: %s\n", i, status_name(st));
        }
    }
    knit_pool_progress(p, 0);
    size_t not_once = 0;
    for (size_t i = 0; i < n; i++)
        not_once += settles[i] != 1;
    print_message("%s: %zu calls on 2 workers settled in %.1f ms\n", runtime_name(state), n,
        (double)(now_ns() - t0) / 1e6);
    assert_int_equal(wrong, 0);
    assert_int_equal(not_once, 0);
    assert_int_equal(knit_pool_pending(p), 0);
    for (size_t i = 0; i < n; i++)
        knit_future_release(fs[i]);
    knit_pool_progress(p, 0);
    for (size_t i = 0; i < n; i++)
        not_once += settles[i] != 1;
    assert_int_equal(not_once, 0);
    free(fs);
    free(settles);
    knit_pool_destroy(p);
}

/* One worker, far more calls than its slots: they wait in the backlog and run in submission
 * order, so call i is the worker's i-th. */
static void test_back_pressure_keeps_submission_order(void **state)
{
    knit_pool_t *p = make_simple(state, 1);
    int t = task(p, "sequence");
    const size_t n = (size_t)knit_test_iters(100000, 2000);
    knit_future_t **fs = calloc(n, sizeof *fs);
    assert_non_null(fs);
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        fs[i] = call(p, t, knit_v_int64((int64_t)i));
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) {
        int st = knit_future_wait(fs[i], -1);
        const knit_value_t *v = knit_future_value(fs[i]);
        if (st != 0 || v->kind != KNIT_KIND_INT64 || v->u.i64 != (int64_t)i) {
            if (wrong++ < 5)
                print_error("call %zu: %s, counter %lld\n", i, status_name(st),
                    v->kind == KNIT_KIND_INT64 ? (long long)v->u.i64 : -1ll);
        }
        knit_future_release(fs[i]);
    }
    print_message("%s: %zu calls on 1 worker in %.1f ms\n", runtime_name(state), n,
        (double)(now_ns() - t0) / 1e6);
    assert_int_equal(wrong, 0);
    assert_int_equal(ask_i64(p, "sequence"), (int64_t)n);
    free(fs);
    knit_pool_destroy(p);
}

/* --- balancers ----------------------------------------------------------------------------- */

/* n calls of which_worker over 3 workers with balancer `b`: per-worker counts, calls that did
 * not land on worker i % 3 (round-robin order), and answers outside [0, 3). */
typedef struct spread {
    int counts[3];
    int not_cyclic;
    int out_of_range;
} spread_t;

static spread_t spread(void **state, knit_balancer_t b, int n)
{
    knit_pool_opts_t o = {.threads = 3, .balancer = b};
    knit_pool_t *p = make(state, &o);
    int t = task(p, "which_worker");
    knit_future_t **fs = calloc((size_t)n, sizeof *fs);
    assert_non_null(fs);
    for (int i = 0; i < n; i++)
        fs[i] = call(p, t, knit_v_null());
    spread_t r = {{0}, 0, 0};
    for (int i = 0; i < n; i++) {
        int64_t w = wait_i64(fs[i]);
        r.not_cyclic += w != i % 3;
        if (w >= 0 && w < 3)
            r.counts[w]++;
        else
            r.out_of_range++;
        knit_future_release(fs[i]);
    }
    print_message("%s: %s %d/%d/%d\n", runtime_name(state), knit_balancer_name(b), r.counts[0],
        r.counts[1], r.counts[2]);
    free(fs);
    knit_pool_destroy(p);
    return r;
}

static void test_round_robin_distribution(void **state)
{
    spread_t r = spread(state, KNIT_BALANCER_ROUND_ROBIN, 300);
    assert_int_equal(r.not_cyclic, 0);
    assert_int_equal(r.counts[0], 100);
    assert_int_equal(r.counts[1], 100);
    assert_int_equal(r.counts[2], 100);
}

static void test_random_lane_uses_every_worker(void **state)
{
    spread_t r = spread(state, KNIT_BALANCER_RANDOM_LANE, 600);
    assert_int_equal(r.out_of_range, 0);
    /* each worker is missed by all 600 calls with probability (2/3)^600 */
    assert_true(r.counts[0] > 0);
    assert_true(r.counts[1] > 0);
    assert_true(r.counts[2] > 0);
}

/* --- rejection and chains ------------------------------------------------------------------ */

static void test_task_rejection_carries_its_value(void **state)
{
    knit_pool_t *p = make_simple(state, 1);
    int t = task(p, "reject");
    knit_future_t *f = call(p, t, knit_v_str("no thanks"));
    expect_status(f, KNIT_E_TASK);
    assert_true(value_is_str(knit_future_value(f), "no thanks"));
    knit_future_release(f);

    static knit_value_t cause;
    cause = knit_v_str("the reason");
    static knit_error_value_t err = {.name = "ValidationError", .message = "bad input"};
    err.cause = &cause;
    knit_value_t ev = knit_v_error(&err);
    f = call(p, t, ev);
    expect_status(f, KNIT_E_TASK);
    assert_true(knit_value_equal(knit_future_value(f), &ev));
    knit_value_t taken;
    assert_int_equal(knit_future_take(f, &taken), 0);
    assert_int_equal(taken.kind, KNIT_KIND_ERROR);
    assert_string_equal(taken.u.err->message, "bad input");
    knit_value_free(&taken);
    knit_future_release(f);

    /* a rejection of the task's own making */
    f = call_name(p, "add_one", knit_v_str("not a number"));
    expect_status(f, KNIT_E_TASK);
    assert_true(value_is_str(knit_future_value(f), "add_one wants an int64"));
    knit_future_release(f);
    f = call_name(p, "add_one", knit_v_int64(1));
    assert_int_equal(wait_i64(f), 2);
    knit_future_release(f);
    knit_pool_destroy(p);
}

static void test_call_after_chains(void **state)
{
    knit_pool_t *p = make_simple(state, 1);
    int t = task(p, "add_one");
    /* the value flows through three links */
    knit_future_t *a = call(p, t, knit_v_int64(1)), *b = NULL, *c = NULL, *d = NULL;
    assert_int_equal(knit_call_after(p, t, a, &b), 0);
    assert_int_equal(knit_call_after(p, t, b, &c), 0);
    assert_int_equal(wait_i64(c), 4);
    assert_int_equal(wait_i64(a), 2);
    assert_int_equal(wait_i64(b), 3);
    /* after an input that has settled already */
    assert_int_equal(knit_call_after(p, t, c, &d), 0);
    assert_int_equal(wait_i64(d), 5);
    knit_future_release(a);
    knit_future_release(b);
    knit_future_release(c);
    knit_future_release(d);
    assert_int_equal(ask_i64(p, "add_one_runs"), 4);

    /* a rejection propagates down the chain; the dependent tasks never run */
    knit_future_t *r = call_name(p, "reject", knit_v_str("broken link")), *r1 = NULL, *r2 = NULL;
    assert_int_equal(knit_call_after(p, t, r, &r1), 0);
    assert_int_equal(knit_call_after(p, t, r1, &r2), 0);
    expect_status(r2, KNIT_E_TASK);
    assert_true(value_is_str(knit_future_value(r2), "broken link"));
    expect_status(r1, KNIT_E_TASK);
    assert_true(value_is_str(knit_future_value(r1), "broken link"));
    knit_future_release(r);
    knit_future_release(r1);
    knit_future_release(r2);
    assert_int_equal(ask_i64(p, "add_one_runs"), 4);

    /* a dependent whose own task rejects the value it gets */
    knit_future_t *s = call_name(p, "echo", knit_v_str("text")), *s1 = NULL;
    assert_int_equal(knit_call_after(p, t, s, &s1), 0);
    expect_status(s1, KNIT_E_TASK);
    assert_true(value_is_str(knit_future_value(s1), "add_one wants an int64"));
    knit_future_release(s);
    knit_future_release(s1);
    assert_int_equal(knit_pool_pending(p), 0);
    knit_pool_destroy(p);
}

/* --- payload limit ------------------------------------------------------------------------- */

static void test_payload_too_large(void **state)
{
    enum { LIMIT = 64 * 1024 };
    knit_pool_opts_t o = {.threads = 1};
    o.payload.max_payload_bytes = LIMIT;
    knit_pool_t *p = make(state, &o);
    int t_echo = task(p, "echo"), t_make = task(p, "make_bytes");
    static uint8_t buf[LIMIT + 1];
    fill(buf, sizeof buf, 9);

    /* the argument */
    knit_future_t *f = call(p, t_echo, knit_v_bytes(buf, LIMIT + 1));
    expect_status(f, KNIT_E_PAYLOAD_TOO_LARGE);
    assert_true(value_mentions(knit_future_value(f), "maxPayloadBytes"));
    knit_future_release(f);
    f = call(p, t_echo, knit_v_strn((const char *)buf, LIMIT + 1));
    expect_status(f, KNIT_E_PAYLOAD_TOO_LARGE);
    knit_future_release(f);

    /* the result */
    f = call(p, t_make, knit_v_int64(LIMIT + 1));
    expect_status(f, KNIT_E_PAYLOAD_TOO_LARGE);
    assert_true(value_mentions(knit_future_value(f), "maxPayloadBytes"));
    knit_future_release(f);

    /* later calls work, up to the limit itself */
    knit_value_t at_limit = knit_v_bytes(buf, LIMIT);
    f = call(p, t_echo, at_limit);
    expect_status(f, 0);
    assert_true(knit_value_equal(knit_future_value(f), &at_limit));
    knit_future_release(f);
    f = call(p, t_make, knit_v_int64(LIMIT));
    expect_status(f, 0);
    assert_int_equal(knit_future_value(f)->kind, KNIT_KIND_BYTES);
    assert_int_equal(knit_future_value(f)->len, LIMIT);
    knit_future_release(f);
    for (int i = 0; i < 100; i++) {
        f = call(p, t_echo, knit_v_int64(i));
        assert_int_equal(wait_i64(f), i);
        knit_future_release(f);
    }
    assert_int_equal(knit_pool_pending(p), 0);
    knit_pool_destroy(p);
}

/* --- timeouts ------------------------------------------------------------------------------ */

/* A slow task times out with the given outcome; a later call on the same worker (which runs only
 * once the slow task has returned, so its late result arrives first) settles with its own
 * value. */
static void check_timeout(void **state, const char *name, int want_status)
{
    knit_pool_t *p = make_simple(state, 1);
    uint64_t t0 = now_ns();
    knit_future_t *f = call_name(p, name, knit_v_str("late result"));
    expect_status(f, want_status);
    uint64_t t1 = now_ns();
    assert_true(t1 - t0 >= TIMEOUT_MS * MS); /* never early */
    const knit_value_t *v = knit_future_value(f);
    if (!strcmp(name, "slow_resolve")) {
        assert_true(value_is_str(v, "fallback"));
    } else if (!strcmp(name, "slow_maybe")) {
        assert_int_equal(v->kind, KNIT_KIND_UNDEFINED);
    } else if (!strcmp(name, "slow_error")) {
        knit_value_t want = knit_v_error(&timeout_error);
        assert_true(knit_value_equal(v, &want));
    }
    knit_future_t *next = call_name(p, "echo", knit_v_int64(77));
    assert_int_equal(wait_i64(next), 77);
    print_message("%s: %s settled after %.1f ms; the next call after %.1f ms\n",
        runtime_name(state), name, (double)(t1 - t0) / 1e6, (double)(now_ns() - t0) / 1e6);
    /* the late result changed nothing */
    assert_int_equal(knit_future_status(f), want_status);
    if (!strcmp(name, "slow_resolve"))
        assert_true(value_is_str(knit_future_value(f), "fallback"));
    else if (!strcmp(name, "slow_maybe"))
        assert_int_equal(knit_future_value(f)->kind, KNIT_KIND_UNDEFINED);
    else
        assert_false(value_is_str(knit_future_value(f), "late result"));
    knit_future_release(next);
    knit_future_release(f);
    assert_int_equal(knit_pool_pending(p), 0);
    knit_pool_destroy(p);
}

static void test_timeout_reject(void **state)
{
    check_timeout(state, "slow_reject", KNIT_E_TIMEOUT);
}

static void test_timeout_resolve(void **state)
{
    check_timeout(state, "slow_resolve", 0);
}

static void test_timeout_maybe(void **state)
{
    check_timeout(state, "slow_maybe", 0);
}

static void test_timeout_error(void **state)
{
    check_timeout(state, "slow_error", KNIT_E_TASK);
}

/* --- abort --------------------------------------------------------------------------------- */

static void test_abort_reaches_the_task(void **state)
{
    knit_pool_t *p = make_simple(state, 1);
    knit_future_t *f = call_name(p, "until_aborted", knit_v_null());
    /* it keeps running until aborted (or the 5 s safety limit) */
    assert_int_equal(knit_future_wait(f, 5 * MS), KNIT_E_AGAIN);
    uint64_t t0 = now_ns();
    assert_int_equal(knit_future_abort(f), 0);
    expect_status(f, 0);
    print_message("%s: the task returned %.3f ms after the abort\n", runtime_name(state),
        (double)(now_ns() - t0) / 1e6);
    assert_true(value_is_str(knit_future_value(f), "saw abort"));
    knit_future_release(f);
    assert_int_equal(ask_i64(p, "aborts_seen"), 1);
    knit_pool_destroy(p);
}

static void test_cancel_rejects_at_once(void **state)
{
    knit_pool_t *p = make_simple(state, 1);
    int settled = 0;
    knit_future_t *f = call_name(p, "until_aborted", knit_v_null());
    knit_future_on_settle(f, count_settle, &settled);
    assert_int_equal(knit_future_cancel(f), 0);
    assert_int_equal(knit_future_status(f), KNIT_E_ABORTED); /* before any progress */
    assert_int_equal(knit_future_value(f)->kind, KNIT_KIND_UNDEFINED);
    /* one worker: this runs once the cancelled task has returned, having seen its abort */
    assert_int_equal(ask_i64(p, "aborts_seen"), 1);
    knit_pool_progress(p, 0);
    assert_int_equal(settled, 1);
    assert_int_equal(knit_future_status(f), KNIT_E_ABORTED);
    knit_future_release(f);
    assert_int_equal(knit_pool_pending(p), 0);
    knit_pool_destroy(p);
}

static void test_abort_capacity_exhaustion(void **state)
{
    knit_pool_opts_t o = {.threads = 1, .abort_capacity = 2};
    knit_pool_t *p = make(state, &o);
    int t_until = task(p, "until_aborted"), t_aware = task(p, "aware_echo");
    knit_future_t *a = call(p, t_until, knit_v_null()), *b = call(p, t_until, knit_v_null());
    knit_future_t *c = call(p, t_until, knit_v_null());
    assert_int_equal(knit_future_status(c), KNIT_E_ABORT_EXHAUSTED);
    knit_future_release(c);
    int wrong = 0;
    for (int i = 0; i < 1000; i++) {
        knit_future_t *x = call(p, i % 2 ? t_aware : t_until, knit_v_int64(i));
        if (knit_future_status(x) != KNIT_E_ABORT_EXHAUSTED)
            wrong++;
        knit_future_release(x);
        if (i % 100 == 0)
            knit_pool_progress(p, 0);
    }
    assert_int_equal(wrong, 0);
    assert_int_equal(knit_future_status(a), KNIT_E_AGAIN);
    assert_int_equal(knit_future_status(b), KNIT_E_AGAIN);
    assert_int_equal(knit_pool_pending(p), 2);
    /* a plain call is not refused: it queues */
    knit_future_t *plain = call_name(p, "echo", knit_v_int64(9));
    assert_int_equal(knit_future_abort(a), 0);
    assert_int_equal(knit_future_abort(b), 0);
    expect_status(a, 0);
    expect_status(b, 0);
    assert_true(value_is_str(knit_future_value(a), "saw abort"));
    assert_true(value_is_str(knit_future_value(b), "saw abort"));
    assert_int_equal(wait_i64(plain), 9);
    knit_future_release(a);
    knit_future_release(b);
    knit_future_release(plain);
    /* normal and abort-aware calls work again; recycled ids start un-aborted */
    for (int i = 0; i < 100; i++) {
        knit_future_t *x = call(p, t_aware, knit_v_int64(i));
        knit_future_t *y = call(p, t_aware, knit_v_int64(-i));
        knit_future_t *z = call_name(p, "echo", knit_v_int64(1000 + i));
        assert_int_equal(wait_i64(x), i);
        assert_int_equal(wait_i64(y), -i);
        assert_int_equal(wait_i64(z), 1000 + i);
        knit_future_release(x);
        knit_future_release(y);
        knit_future_release(z);
    }
    assert_int_equal(ask_i64(p, "aborts_seen"), 2);
    assert_int_equal(knit_pool_pending(p), 0);
    knit_pool_destroy(p);
}

/* --- payload sizes up to the limit -------------------------------------------------------- */

/* Bytes and strings of every size class - inline, static area edges, one region, far larger
 * than any pipe or socket buffer - up to maxPayloadBytes (8 MiB by default) echo unchanged,
 * one at a time and eight in flight at once. */
static void test_payload_sizes_up_to_the_limit(void **state)
{
    knit_pool_opts_t o = {.threads = 1};
    knit_pool_t *p = make(state, &o);
    const size_t max = 8u << 20; /* the default maxPayloadBytes: 64 MiB >> 3 */
    const size_t sizes[] = {0, 1, 7, 8, 9, 511, 512, 513, 4095, 4096, 65535, 65536, 65537, 212993,
        1u << 20, (3u << 20) + 5, max - 1, max};
    const size_t nsizes = sizeof sizes / sizeof sizes[0];
    uint8_t *buf = malloc(max + 1);
    assert_non_null(buf);
    fill(buf, max + 1, 77);
    int t = task(p, "echo");
    size_t wrong = 0;
    for (size_t i = 0; i < nsizes; i++) {
        knit_value_t v = knit_v_bytes(buf, sizes[i]);
        knit_future_t *f = call(p, t, v);
        expect_status(f, 0);
        if (!knit_value_equal(knit_future_value(f), &v) && wrong++ < 5)
            print_error("bytes of %zu did not round-trip\n", sizes[i]);
        knit_future_release(f);
        knit_value_t sv = knit_v_strn((const char *)buf, sizes[i] < 4096 ? sizes[i] : 4096);
        f = call(p, t, sv);
        expect_status(f, 0);
        if (!knit_value_equal(knit_future_value(f), &sv) && wrong++ < 5)
            print_error("a string of %zu did not round-trip\n", sv.len);
        knit_future_release(f);
    }
    /* eight large frames in flight at once, each larger than a socket buffer */
    knit_future_t *fs[8];
    for (size_t i = 0; i < 8; i++)
        fs[i] = call(p, t, knit_v_bytes(buf + i * 4096, (1u << 20) + i));
    for (size_t i = 0; i < 8; i++) {
        knit_value_t want = knit_v_bytes(buf + i * 4096, (1u << 20) + i);
        expect_status(fs[i], 0);
        if (!knit_value_equal(knit_future_value(fs[i]), &want) && wrong++ < 5)
            print_error("in-flight frame %zu did not round-trip\n", i);
        knit_future_release(fs[i]);
    }
    /* one byte over the limit is refused, and the lane goes on */
    knit_future_t *f = call(p, t, knit_v_bytes(buf, max + 1));
    expect_status(f, KNIT_E_PAYLOAD_TOO_LARGE);
    knit_future_release(f);
    f = call(p, t, knit_v_int64(5));
    assert_int_equal(wait_i64(f), 5);
    knit_future_release(f);
    free(buf);
    assert_int_equal(wrong, 0);
    assert_int_equal(knit_pool_pending(p), 0);
    knit_pool_destroy(p);
}

/* --- arguments read in place -------------------------------------------------------------- */

/* A task with arg_in_place reads arguments beyond the slot as views into a shared-memory
 * transport's arena (copies elsewhere, and for small arguments), sees the right bytes, may return
 * the view as its result, and every view's region goes back: thousands of 64 KiB calls (far more
 * than an arena holds at once) all settle. */
static void test_arguments_read_in_place(void **state)
{
    knit_pool_opts_t o = {.threads = 1};
    knit_pool_t *p = make(state, &o);
    enum { BIG = 64 * 1024 };
    uint8_t *buf = malloc(BIG);
    assert_non_null(buf);
    fill(buf, BIG, 5);
    const size_t sizes[] = {0, 8, 512, 513, 4096, BIG};
    int probe = task(p, "in_place_probe"), echo_ip = task(p, "echo_in_place");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int64_t sum = 0;
        for (size_t k = 0; k < sizes[i]; k++)
            sum += buf[k];
        knit_future_t *f = call(p, probe, knit_v_bytes(buf, sizes[i]));
        int64_t got = wait_i64(f);
        knit_future_release(f);
        bool view_expected = shared_memory() && sizes[i] > 512;
        assert_int_equal(got >> 1, sum);
        assert_int_equal(got & 1, view_expected);
        knit_value_t want = knit_v_bytes(buf, sizes[i]);
        f = call(p, echo_ip, want);
        expect_status(f, 0);
        assert_true(knit_value_equal(knit_future_value(f), &want));
        knit_future_release(f);
    }
    const size_t n = (size_t)knit_test_iters(3000, 300);
    size_t wrong = 0;
    for (size_t done = 0; done < n; done += 100) {
        knit_future_t *fs[100];
        for (int i = 0; i < 100; i++)
            fs[i] = call(p, echo_ip, knit_v_bytes(buf + i, BIG - 128));
        for (int i = 0; i < 100; i++) {
            knit_value_t want = knit_v_bytes(buf + i, BIG - 128);
            /* a leaked region would stall the writer's arena: fail instead of hanging */
            int st = knit_future_wait(fs[i], 30ll * 1000000000);
            bool bad = st != 0 || !knit_value_equal(knit_future_value(fs[i]), &want);
            if (bad && wrong++ < 3)
                print_error("call %zu: status %d, %zu bytes back\n", done + (size_t)i, st,
                    knit_future_value(fs[i]) ? knit_future_value(fs[i])->len : 0);
            knit_future_release(fs[i]);
        }
    }
    free(buf);
    assert_int_equal(wrong, 0);
    assert_int_equal(knit_pool_pending(p), 0);
    knit_pool_destroy(p);
}

/* --- every balancer ------------------------------------------------------------------------ */

/* Bursts over three workers settle every call exactly once with the right value, whichever
 * balancer routes them (and with the pool's default topology). */
static void test_every_balancer_settles_bursts_once(void **state)
{
    const knit_balancer_t bs[] = {KNIT_BALANCER_DEFAULT, KNIT_BALANCER_ROUND_ROBIN,
        KNIT_BALANCER_FIRST_IDLE, KNIT_BALANCER_RANDOM_LANE, KNIT_BALANCER_FIRST_IDLE_OR_RANDOM};
    const size_t n = (size_t)knit_test_iters(3000, 200);
    knit_future_t **fs = calloc(n, sizeof *fs);
    int *settles = calloc(n, sizeof *settles);
    assert_non_null(fs);
    assert_non_null(settles);
    for (size_t b = 0; b < sizeof bs / sizeof bs[0]; b++) {
        knit_pool_opts_t o = {.threads = 3, .balancer = bs[b]};
        knit_pool_t *p = make(state, &o);
        int t = task(p, "add_one");
        memset(settles, 0, n * sizeof *settles);
        for (size_t i = 0; i < n; i++) {
            fs[i] = call(p, t, knit_v_int64((int64_t)i));
            knit_future_on_settle(fs[i], count_settle, &settles[i]);
        }
        size_t wrong = 0, not_once = 0;
        for (size_t i = 0; i < n; i++) {
            int st = knit_future_wait(fs[i], -1);
            const knit_value_t *v = knit_future_value(fs[i]);
            wrong += st != 0 || v->kind != KNIT_KIND_INT64 || v->u.i64 != (int64_t)i + 1;
        }
        knit_pool_progress(p, 0);
        for (size_t i = 0; i < n; i++) {
            not_once += settles[i] != 1;
            knit_future_release(fs[i]);
        }
        if (wrong || not_once)
            print_error("%s: %zu wrong, %zu not settled once\n", knit_balancer_name(bs[b]), wrong,
                not_once);
        assert_int_equal(wrong, 0);
        assert_int_equal(not_once, 0);
        assert_int_equal(knit_pool_pending(p), 0);
        knit_pool_destroy(p);
    }
    free(fs);
    free(settles);
}

/* --- worker death -------------------------------------------------------------------------- */

/* A process worker killed inside a task: that call and the calls queued behind it on the same
 * worker settle with KNIT_E_WORKER_DIED (none is lost or settled twice), a new worker replaces
 * it, and later calls work. */
static void test_worker_death_settles_its_calls(void **state)
{
    if (runtime_of(state) == KNIT_RUNTIME_THREAD) {
        print_message("skipped: a thread worker cannot die without its host process\n");
        skip();
    }
    knit_pool_opts_t o = {.threads = 1};
    knit_pool_t *p = make(state, &o);
    int64_t first = ask_i64(p, "pid");
    int settles[20] = {0};
    knit_future_t *dying = call_name(p, "die", knit_v_null());
    knit_future_on_settle(dying, count_settle, &settles[0]);
    knit_future_t *behind[19];
    for (int i = 0; i < 19; i++) {
        behind[i] = call_name(p, "echo", knit_v_int64(i));
        knit_future_on_settle(behind[i], count_settle, &settles[i + 1]);
    }
    expect_status(dying, KNIT_E_WORKER_DIED);
    assert_true(value_mentions(knit_future_value(dying), "SIGKILL")
        || value_mentions(knit_future_value(dying), "Killed"));
    /* calls published to the dead worker died with it; calls still in the backlog when it
     * died went to its replacement: either way each settles once, resolved ones correctly */
    int died = 0, resolved = 0;
    for (int i = 0; i < 19; i++) {
        int st = knit_future_wait(behind[i], -1);
        if (st == 0) {
            assert_int_equal(knit_future_value(behind[i])->u.i64, i);
            resolved++;
        } else {
            assert_int_equal(st, KNIT_E_WORKER_DIED);
            died++;
        }
    }
    knit_pool_progress(p, 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(settles[i], 1);
    print_message("%s/%s: %d calls died with the worker, %d ran on its replacement\n",
        knit_transport_name(the_transport), runtime_name(state), died, resolved);
    int64_t second = ask_i64(p, "pid");
    assert_true(second != first);
    assert_int_equal(knit_pool_respawns(p), 1);
    for (int i = 0; i < 19; i++)
        knit_future_release(behind[i]);
    knit_future_release(dying);
    knit_pool_destroy(p);
}

/* --- malformed frames ---------------------------------------------------------------------- */

/* A worker whose result stream carries garbage (an impossible frame length): the host fails
 * that lane with KNIT_E_CORRUPT and a message naming the stream, settles its calls, never
 * reads past the bad length, and later calls to the lane reject at once. */
static void test_malformed_frame_fails_the_lane(void **state)
{
    if (shared_memory()) {
        print_message("skipped: the %s transport has no byte stream to corrupt (malformed "
                      "slot headers are covered by unit/test_codec_corrupt)\n",
            knit_transport_name(the_transport));
        skip();
    }
    if (runtime_of(state) == KNIT_RUNTIME_THREAD) {
        print_message("skipped: a thread worker's descriptors are not its own to corrupt; "
                      "malformed streams are covered by unit/test_frame_stream\n");
        skip();
    }
    knit_pool_opts_t o = {.threads = 1};
    o.worker.process.no_respawn = true;
    knit_pool_t *p = make(state, &o);
    assert_int_equal(ask_i64(p, "add_one_runs"), 0);
    knit_future_t *f = call_name(p, "corrupt_link", knit_v_null());
    expect_status(f, KNIT_E_CORRUPT);
    const knit_value_t *msg = knit_future_value(f);
    if (!value_mentions(msg, "stream broke"))
        print_error("message: %.*s\n", msg && msg->kind == KNIT_KIND_STRING ? (int)msg->len : 0,
            msg && msg->kind == KNIT_KIND_STRING ? (const char *)msg->u.ptr : "");
    assert_true(value_mentions(msg, "stream broke"));
    assert_true(value_mentions(msg, knit_transport_name(the_transport)));
    knit_future_release(f);
    knit_future_t *later = call_name(p, "echo", knit_v_int64(1));
    expect_status(later, KNIT_E_CORRUPT);
    knit_future_release(later);
    assert_int_equal(knit_pool_pending(p), 0);
    knit_pool_destroy(p);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* the worker was killed and reaped */
}

/* --- hard timeout -------------------------------------------------------------------------- */

static void test_hard_timeout_closes_the_pool(void **state)
{
    knit_pool_opts_t o = {.threads = 1};
    o.worker.hard_timeout_ms = 100;
    knit_pool_t *p = make(state, &o);
    int t_echo = task(p, "echo");
    int32_t pid = knit_pool_worker_pid(p, 0); /* 0 for a thread worker */
    uint64_t t0 = now_ns();
    knit_future_t *f = call_name(p, "spin", knit_v_int64(1000));
    expect_status(f, KNIT_E_HARD_TIMEOUT);
    uint64_t t1 = now_ns();
    assert_true(t1 - t0 >= 100 * MS); /* never early */
    knit_future_t *late = call(p, t_echo, knit_v_int64(1));
    assert_int_equal(knit_future_status(late), KNIT_E_SHUTDOWN); /* at once */
    knit_future_t *dep = NULL;
    assert_int_equal(knit_call_after(p, t_echo, late, &dep), 0);
    expect_status(dep, KNIT_E_SHUTDOWN);
    knit_pool_destroy(p);
    print_message("%s: hard timeout after %.1f ms; destroy took %.1f ms\n", runtime_name(state),
        (double)(t1 - t0) / 1e6, (double)(now_ns() - t1) / 1e6);
    if (runtime_of(state) == KNIT_RUNTIME_PROCESS) {
        /* the worker is gone and reaped */
        assert_true(pid > 0);
        errno = 0;
        assert_int_equal(kill((pid_t)pid, 0), -1);
        assert_int_equal(errno, ESRCH);
    }
    assert_int_equal(knit_future_status(f), KNIT_E_HARD_TIMEOUT);
    knit_future_release(f);
    knit_future_release(late);
    knit_future_release(dep);
}

/* --- shutdown ------------------------------------------------------------------------------ */

/* Calls 0..FIRST-1 finish; then each worker runs an abort-aware call that only ends when told
 * to stop (shutdown signals it); everything behind those is certainly not done when the pool
 * shuts down, and must reject with KNIT_E_SHUTDOWN - once. */
static void test_shutdown_immediate_rejects_unfinished(void **state)
{
    knit_pool_opts_t o = {.threads = 2, .balancer = KNIT_BALANCER_ROUND_ROBIN};
    knit_pool_t *p = make(state, &o);
    int t = task(p, "add_one"), t_until = task(p, "until_aborted");
    enum { FIRST = 10, BLOCKERS = 2, N = 2000 };
    knit_future_t **fs = calloc(N, sizeof *fs);
    int *settles = calloc(N, sizeof *settles);
    assert_non_null(fs);
    assert_non_null(settles);
    for (int i = 0; i < N; i++) {
        /* round robin per task: the two blockers land on workers 0 and 1 */
        bool blocker = i >= FIRST && i < FIRST + BLOCKERS;
        fs[i] = blocker ? call(p, t_until, knit_v_null()) : call(p, t, knit_v_int64(i));
        knit_future_on_settle(fs[i], count_settle, &settles[i]);
    }
    for (int i = 0; i < FIRST; i++)
        assert_int_equal(wait_i64(fs[i]), i + 1);
    uint64_t t0 = now_ns();
    assert_int_equal(knit_pool_shutdown(p, KNIT_SHUTDOWN_IMMEDIATE, 0), 0);
    uint64_t took = now_ns() - t0;
    assert_int_equal(knit_pool_pending(p), 0);
    int resolved = 0, shut = 0, wrong = 0;
    for (int i = 0; i < N; i++) {
        int st = knit_future_status(fs[i]);
        bool ok = i < FIRST ? st == 0 && knit_future_value(fs[i])->u.i64 == i + 1
                            : st == KNIT_E_SHUTDOWN;
        if (ok && i < FIRST)
            resolved++;
        else if (ok)
            shut++;
        else if (wrong++ < 5)
            print_error("call %d: %s\n", i, status_name(st));
        if (settles[i] != 1)
            wrong++;
    }
    print_message("%s: immediate shutdown took %.1f ms: %d resolved, %d rejected with "
                  "KNIT_E_SHUTDOWN\n",
        runtime_name(state), (double)took / 1e6, resolved, shut);
    assert_int_equal(wrong, 0);
    assert_int_equal(resolved, FIRST);
    assert_int_equal(shut, N - FIRST);
    knit_pool_progress(p, 0);
    knit_pool_destroy(p);
    for (int i = 0; i < N; i++) {
        assert_int_equal(settles[i], 1);
        knit_future_release(fs[i]);
    }
    free(fs);
    free(settles);
}

static void test_shutdown_drain_resolves_everything(void **state)
{
    knit_pool_opts_t o = {.threads = 2, .balancer = KNIT_BALANCER_ROUND_ROBIN};
    knit_pool_t *p = make(state, &o);
    int t = task(p, "add_one");
    enum { N = 2000 };
    knit_future_t **fs = calloc(N, sizeof *fs);
    assert_non_null(fs);
    for (int i = 0; i < N; i++)
        fs[i] = call(p, t, knit_v_int64(i));
    knit_future_t *dep = NULL;
    assert_int_equal(knit_call_after(p, t, fs[N - 1], &dep), 0);
    assert_int_equal(knit_pool_shutdown(p, KNIT_SHUTDOWN_DRAIN, 0), 0);
    assert_int_equal(knit_pool_pending(p), 0);
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        if (knit_future_status(fs[i]) != 0 || knit_future_value(fs[i])->u.i64 != i + 1)
            wrong++;
        knit_future_release(fs[i]);
    }
    assert_int_equal(wrong, 0);
    assert_int_equal(knit_future_status(dep), 0);
    assert_int_equal(knit_future_value(dep)->u.i64, N + 1);
    knit_future_release(dep);
    free(fs);
    knit_pool_destroy(p);
}

static void test_calls_after_shutdown_and_second_shutdown(void **state)
{
    knit_pool_t *p = make_simple(state, 1);
    int t = task(p, "echo");
    knit_future_t *before = call(p, t, knit_v_int64(3));
    assert_int_equal(wait_i64(before), 3);
    assert_int_equal(knit_pool_shutdown(p, KNIT_SHUTDOWN_DRAIN, 0), 0);
    knit_future_t *after = call(p, t, knit_v_int64(4));
    assert_int_equal(knit_future_status(after), KNIT_E_SHUTDOWN); /* at once */
    knit_future_t *dep = NULL;
    assert_int_equal(knit_call_after(p, t, before, &dep), 0);
    expect_status(dep, KNIT_E_SHUTDOWN);
    knit_future_t *aware = call_name(p, "aware_echo", knit_v_int64(5));
    assert_int_equal(knit_future_status(aware), KNIT_E_SHUTDOWN);
    assert_int_equal(knit_pool_shutdown(p, KNIT_SHUTDOWN_IMMEDIATE, 0), 0);
    assert_int_equal(knit_pool_shutdown(p, KNIT_SHUTDOWN_DRAIN, 0), 0);
    assert_int_equal(knit_future_value(before)->u.i64, 3); /* untouched */
    assert_int_equal(knit_pool_pending(p), 0);
    knit_future_release(before);
    knit_future_release(after);
    knit_future_release(dep);
    knit_future_release(aware);
    knit_pool_destroy(p);
}

static int usage(const char *self)
{
    fprintf(stderr,
        "usage: %s TRANSPORT RUNTIME [WAIT]\n"
        "Runs knit's conformance suite on one combination.\n"
        "  TRANSPORT  knit, pipe, unix, seqpacket, tcp or seq\n"
        "  RUNTIME    thread or process\n"
        "  WAIT       default (the transport's), adaptive (poll 200 us, then block) or block\n"
        "cmocka's CMOCKA_TEST_ABORT and CMOCKA_MESSAGE_OUTPUT apply.\n",
        self);
    return 2;
}

int main(int argc, char **argv)
{
    int rc = knit_worker_process_main(tasks, NTASKS, NULL, NULL);
    if (rc != KNIT_E_AGAIN)
        return rc;
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(argv[0]);
        return 0;
    }
    const char *wait = argc == 4 ? argv[3] : "default";
    the_spin_ns = !strcmp(wait, "adaptive") ? 200000 : !strcmp(wait, "block") ? -1 : 0;
    if ((argc != 3 && argc != 4) || knit_transport_parse(argv[1], &the_transport) < 0
        || (strcmp(argv[2], "thread") != 0 && strcmp(argv[2], "process") != 0)
        || (the_spin_ns == 0 && strcmp(wait, "default") != 0)) {
        if (argc >= 3)
            fprintf(stderr, "%s: %s %s is not a combination: %s\n", argv[0], argv[1], argv[2],
                knit_errmsg());
        return usage(argv[0]);
    }
    the_runtime = strcmp(argv[2], "process") ? KNIT_RUNTIME_THREAD : KNIT_RUNTIME_PROCESS;
    print_message("conformance: transport %s, runtime %s, wait %s\n", argv[1], argv[2], wait);
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_every_value_kind_round_trips),
        cmocka_unit_test(test_shared_and_moved_buffers_by_runtime),
        cmocka_unit_test(test_burst_settles_each_call_once),
        cmocka_unit_test(test_back_pressure_keeps_submission_order),
        cmocka_unit_test(test_round_robin_distribution),
        cmocka_unit_test(test_random_lane_uses_every_worker),
        cmocka_unit_test(test_task_rejection_carries_its_value),
        cmocka_unit_test(test_call_after_chains),
        cmocka_unit_test(test_payload_too_large),
        cmocka_unit_test(test_timeout_reject),
        cmocka_unit_test(test_timeout_resolve),
        cmocka_unit_test(test_timeout_maybe),
        cmocka_unit_test(test_timeout_error),
        cmocka_unit_test(test_abort_reaches_the_task),
        cmocka_unit_test(test_cancel_rejects_at_once),
        cmocka_unit_test(test_abort_capacity_exhaustion),
        cmocka_unit_test(test_payload_sizes_up_to_the_limit),
        cmocka_unit_test(test_arguments_read_in_place),
        cmocka_unit_test(test_every_balancer_settles_bursts_once),
        cmocka_unit_test(test_worker_death_settles_its_calls),
        cmocka_unit_test(test_malformed_frame_fails_the_lane),
        cmocka_unit_test(test_hard_timeout_closes_the_pool),
        cmocka_unit_test(test_shutdown_immediate_rejects_unfinished),
        cmocka_unit_test(test_shutdown_drain_resolves_everything),
        cmocka_unit_test(test_calls_after_shutdown_and_second_shutdown),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
