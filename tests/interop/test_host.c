/*
 * A knit host speaking knitting's process-worker protocol (interop/khost.h) against a worker:
 *   interop_host knit WORKER [TASKS_SO]   knit-knitting-worker (always runs: no Bun needed)
 *   interop_host js                       knitting's own JS worker under Bun (needs
 *                                         KNIT_KNITTING_DIR and Bun; exit 77 = skipped)
 * Every value kind round-trips through `echo`, 10,000 calls settle exactly once, a task error,
 * a thrown string, an unencodable result and a timeout reject as knitting reports them, and
 * stopping leaves no process and no descriptor behind.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "interop/khost.h"
#include "knit/error.h"

#define WAIT_NS 20000000000ull /* 20 s: a worker that answers nothing fails, not hangs */

static bool js_mode;
static char *worker_argv[8];
static const char *tasks_so;
static char module_url[4200];

static const char *const names[]
    = {"add1", "echo", "fail", "int16_array", "sleep", "slow", "throw_string"};

static knit__kh_t *current; /* the running host, stopped by the teardown if a check failed */

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static knit__kh_t *start(const char *const *task_names, size_t n, char **argv)
{
    knit__kh_opts_t o = {.argv = argv,
        .names = task_names,
        .ntasks = n,
        .module_url = module_url,
        .arena_bytes = 16u << 20};
    knit__kh_t *h = NULL;
    int rc = knit__kh_start(&o, &h);
    if (rc < 0)
        fail_msg("starting the worker: %s", knit_errmsg());
    current = h;
    return h;
}

/* One call and its answer. */
static knit__kh_result_t call(knit__kh_t *h, const char *task, knit__kx_value_t arg)
{
    uint32_t id = 0;
    int rc = knit__kh_call(h, task, &arg, &id);
    if (rc < 0)
        fail_msg("call %s: %s", task, knit_errmsg());
    knit__kh_result_t r = {0};
    rc = knit__kh_wait(h, &r, WAIT_NS);
    if (rc < 0)
        fail_msg("answer to %s: %d %s", task, rc, knit_errmsg());
    assert_int_equal(r.id, id);
    return r;
}

static void expect_stopped_clean(knit__kh_t *h, int fds_before)
{
    current = NULL;
    int status = knit__kh_stop(h);
    if (!js_mode) /* the knit worker leaves on SIGTERM with status 0 */
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no child left */
    assert_int_equal(errno, ECHILD);
    assert_int_equal(open_fds(), fds_before);
}

/* --- every kind through echo ------------------------------------------------------------------ */

static knit__kx_value_t kv(knit_value_t v)
{
    return (knit__kx_value_t) {.v = v};
}

static void echo_one(knit__kh_t *h, const char *label, knit__kx_value_t v, knit__kx_value_t want)
{
    knit__kh_result_t r = call(h, "echo", v);
    if (r.reject)
        fail_msg("echo %s rejected", label);
    if (!knit_value_equal(&r.value.v, &want.v) || r.value.form != want.form)
        fail_msg("echo %s: came back as %s (form %u)", label,
            knit_kind_name((knit_kind_t)r.value.v.kind), r.value.form);
    if ((want.stack == NULL) != (r.value.stack == NULL)
        || (want.stack && strcmp(want.stack, r.value.stack)))
        fail_msg("echo %s: stack differs", label);
    knit__kx_free(&r.value);
}

static void echo_same(knit__kh_t *h, const char *label, knit__kx_value_t v)
{
    echo_one(h, label, v, v);
}

static void test_every_kind(void **state)
{
    (void)state;
    int fds = open_fds();
    knit__kh_t *h = start(names, 7, worker_argv);
    static uint8_t buf[600000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    static char text[300001];
    memset(text, 'q', sizeof text - 1);
    static const uint8_t mag[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    echo_same(h, "null", kv(knit_v_null()));
    echo_same(h, "undefined", kv(knit_v_undefined()));
    echo_same(h, "true", kv(knit_v_bool(true)));
    echo_same(h, "number", kv(knit_v_f64(1.5)));
    echo_same(h, "-0", kv(knit_v_f64(-0.0)));
    echo_same(h, "NaN", kv(knit_v_f64(NAN)));
    echo_same(h, "-Infinity", kv(knit_v_f64(-INFINITY)));
    echo_same(h, "int64", kv(knit_v_int64(INT64_MIN)));
    echo_same(h, "bigint", kv(knit_v_bigint(true, mag, sizeof mag)));
    echo_same(h, "date", kv(knit_v_date(1700000000123.0)));
    echo_same(h, "string", kv(knit_v_str("h\xc3\xa9llo \xf0\x9f\x98\x80")));
    echo_same(h, "string 512", kv(knit_v_strn(text, 512)));
    echo_same(h, "string 513", kv(knit_v_strn(text, 513)));
    echo_same(h, "string 300000", kv(knit_v_strn(text, 300000)));
    echo_same(h, "json", kv(knit_v_json("{\"a\":1,\"b\":[1,\"x\",null],\"c\":{\"d\":true}}")));
    echo_same(h, "bytes", kv(knit_v_bytes(buf, 513)));
    echo_same(h, "bytes 600000", kv(knit_v_bytes(buf, sizeof buf)));
    static const knit_elem_t elems[] = {KNIT_ELEM_I32, KNIT_ELEM_F64, KNIT_ELEM_I64, KNIT_ELEM_U64,
        KNIT_ELEM_DATAVIEW, KNIT_ELEM_ARRAYBUFFER, KNIT_ELEM_NODEBUFFER};
    for (size_t e = 0; e < sizeof elems / sizeof elems[0]; e++) {
        for (size_t len = 64; len <= 1024; len += 960) {
            knit__kx_value_t v = kv(knit_v_typed(elems[e], buf, len));
            /* knitting's JS process worker decodes a dynamic Buffer (over 512 bytes) as a
             * Uint8Array, a static one as a Buffer (CONFORMANCE.md) */
            bool as_bytes = js_mode && elems[e] == KNIT_ELEM_NODEBUFFER && len > 512;
            char label[64];
            snprintf(label, sizeof label, "%s of %zu bytes", knit_elem_name(elems[e]), len);
            echo_one(h, label, v, as_bytes ? kv(knit_v_bytes(buf, len)) : v);
        }
    }
    knit_value_t cause = knit_v_json("{\"code\":7}");
    knit_error_value_t err = {.name = "TypeError", .message = "bad", .cause = &cause};
    echo_same(h, "error", (knit__kx_value_t) {.v = knit_v_error(&err), .stack = "TypeError: bad"});
    echo_same(
        h, "symbol", (knit__kx_value_t) {.v = knit_v_str("knit.sym"), .form = KNIT__KX_SYMBOL});
    double na[3] = {1, 2.5, -3};
    echo_same(h, "NumericArray",
        (knit__kx_value_t) {
            .v = knit_v_typed(KNIT_ELEM_F64, na, sizeof na), .form = KNIT__KX_NUMERIC_ARRAY});
    knit_envelope_t env = {.header = "{\"kind\":\"frame\"}",
        .header_len = 16,
        .body = knit_v_bytes(buf, 40),
        .header_kind = KNIT_ENV_JSON};
    echo_same(h, "envelope", kv(knit_v_envelope(&env)));
    knit_envelope_t senv = {.header = text,
        .header_len = 600,
        .body = knit_v_bytes(buf, 3),
        .header_kind = KNIT_ENV_STRING};
    echo_same(h, "envelope string header", kv(knit_v_envelope(&senv)));
    knit_psb_desc_t psb
        = {.fd = -1, .name = "kpw_knit_test", .size = 4096, .offset = 32, .length = 32};
    echo_same(h, "ProcessSharedBuffer named", kv(knit_v_psb(&psb)));
    knit__kx_value_t ext
        = {.v = knit_v_json("[\"knit.test.codec\",{\"id\":5}]"), .form = KNIT__KX_EXTERNAL};
    if (js_mode) /* knitting decodes an unregistered codec to {codec, metadata}: a plain object */
        echo_one(h, "external payload", ext,
            kv(knit_v_json("{\"codec\":\"knit.test.codec\",\"metadata\":{\"id\":5}}")));
    else
        echo_same(h, "external payload", ext);
    expect_stopped_clean(h, fds);
}

/* --- a burst ------------------------------------------------------------------------------------
 */

static void test_burst(void **state)
{
    (void)state;
    int fds = open_fds();
    knit__kh_t *h = start(names, 7, worker_argv);
    enum { N = 10000 };
    static uint8_t seen[N];
    memset(seen, 0, sizeof seen);
    uint32_t base_id = 0, sent = 0, got = 0;
    for (uint32_t i = 0; got < N;) {
        while (sent < N) {
            uint32_t id;
            knit__kx_value_t a = kv(knit_v_f64((double)sent));
            int rc = knit__kh_call(h, "add1", &a, &id);
            if (rc == KNIT_E_FULL)
                break;
            assert_int_equal(rc, 0);
            if (sent == 0)
                base_id = id;
            sent++;
        }
        knit__kh_result_t r;
        int rc = knit__kh_wait(h, &r, WAIT_NS);
        if (rc < 0)
            fail_msg("burst: %u of %d answered: %s", got, N, knit_errmsg());
        uint32_t k = r.id - base_id;
        assert_true(k < N);
        assert_false(r.reject);
        assert_int_equal(seen[k], 0); /* exactly once */
        seen[k] = 1;
        assert_true(r.value.v.kind == KNIT_KIND_F64 && r.value.v.u.f64 == (double)k + 1);
        knit__kx_free(&r.value);
        got++;
        i++;
    }
    knit__kh_result_t extra;
    assert_int_equal(knit__kh_poll(h, &extra), KNIT_E_AGAIN); /* nothing settles twice */
    expect_stopped_clean(h, fds);
}

/* --- errors and timeouts ------------------------------------------------------------------------
 */

static void test_errors_and_timeout(void **state)
{
    (void)state;
    int fds = open_fds();
    knit__kh_t *h = start(names, 7, worker_argv);
    knit__kh_result_t r = call(h, "fail", kv(knit_v_str("bad 3")));
    assert_true(r.reject && r.value.v.kind == KNIT_KIND_ERROR);
    assert_string_equal(r.value.v.u.err->name, "TypeError");
    assert_string_equal(r.value.v.u.err->message, "bad 3");
    assert_non_null(r.value.v.u.err->cause);
    knit_value_t cause = knit_v_json("{\"code\":7}");
    assert_true(knit_value_equal(r.value.v.u.err->cause, &cause));
    knit__kx_free(&r.value);

    r = call(h, "throw_string", kv(knit_v_str("oops")));
    assert_true(r.reject && r.value.v.kind == KNIT_KIND_STRING);
    assert_string_equal(r.value.v.u.ptr, "oops");
    knit__kx_free(&r.value);

    r = call(h, "int16_array", kv(knit_v_undefined()));
    assert_true(r.reject && r.value.v.kind == KNIT_KIND_STRING);
    assert_memory_equal(r.value.v.u.ptr, "KNT_ERROR_3", 11);
    knit__kx_free(&r.value);

    r = call(h, "slow", kv(knit_v_f64(3000)));
    assert_true(r.reject && r.value.v.kind == KNIT_KIND_ERROR);
    assert_string_equal(r.value.v.u.err->message, "Task timeout");
    knit__kx_free(&r.value);
    if (!js_mode) { /* knitting's JS process worker times this out at once (CONFORMANCE.md) */
        r = call(h, "slow", kv(knit_v_f64(5)));
        assert_false(r.reject);
        assert_true(r.value.v.kind == KNIT_KIND_F64 && r.value.v.u.f64 == 5);
        knit__kx_free(&r.value);
    }
    r = call(h, "add1", kv(knit_v_f64(1)));
    assert_true(!r.reject && r.value.v.u.f64 == 2);
    expect_stopped_clean(h, fds);
}

/* --- tasks from a shared object ------------------------------------------------------------------
 */

static void test_tasks_from_shared_object(void **state)
{
    (void)state;
    if (js_mode || !tasks_so)
        skip();
    char *argv[] = {worker_argv[0], "--tasks", (char *)tasks_so, "--", NULL};
    static const char *const so_names[] = {"triple", "add1"};
    int fds = open_fds();
    knit__kh_t *h = start(so_names, 2, argv);
    knit__kh_result_t r = call(h, "triple", kv(knit_v_f64(14)));
    assert_true(!r.reject && r.value.v.u.f64 == 42);
    r = call(h, "add1", kv(knit_v_f64(1))); /* not in the object: the built-in */
    assert_true(!r.reject && r.value.v.u.f64 == 2);
    expect_stopped_clean(h, fds);
}

static int stop_leftover(void **state)
{
    (void)state;
    if (current)
        knit__kh_stop(current);
    current = NULL;
    return 0;
}

/* --- set-up ----------------------------------------------------------------------------------- */

static int setup_js(void)
{
    const char *dir = getenv("KNIT_KNITTING_DIR"), *bun = getenv("KNIT_BUN");
    if (!dir || !*dir) {
        printf("SKIP: KNIT_KNITTING_DIR is not set (a knitting checkout; docs/CONFORMANCE.md)\n");
        return 77;
    }
    static char entry[4200];
    snprintf(entry, sizeof entry, "%s/src/runtime/pool.ts", dir);
    if (access(entry, R_OK) != 0) {
        printf("SKIP: %s not found: KNIT_KNITTING_DIR is not a knitting checkout\n", entry);
        return 77;
    }
    if (!bun || !*bun)
        bun = "bun";
    char probe[4300];
    snprintf(probe, sizeof probe, "'%s' --version >/dev/null 2>&1", bun);
    if (system(probe) != 0) {
        printf("SKIP: Bun not found (KNIT_BUN, or bun on PATH)\n");
        return 77;
    }
    worker_argv[0] = (char *)bun;
    worker_argv[1] = entry;
    snprintf(module_url, sizeof module_url, "file://%s", KNIT_INTEROP_TASKS_TS);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "knit") != 0 && strcmp(argv[1], "js") != 0)
        || (!strcmp(argv[1], "knit") && argc < 3)) {
        fprintf(stderr, "usage: interop_host knit WORKER [TASKS_SO] | interop_host js\n");
        return 2;
    }
    js_mode = strcmp(argv[1], "js") == 0;
    if (js_mode) {
        int rc = setup_js();
        if (rc)
            return rc;
    } else {
        worker_argv[0] = argv[2];
        worker_argv[1] = "--";
        worker_argv[2] = "bun"; /* what knitting appends; the knit worker ignores it */
        tasks_so = argc > 3 ? argv[3] : NULL;
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_every_kind, stop_leftover),
        cmocka_unit_test_teardown(test_burst, stop_leftover),
        cmocka_unit_test_teardown(test_errors_and_timeout, stop_leftover),
        cmocka_unit_test_teardown(test_tasks_from_shared_object, stop_leftover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
