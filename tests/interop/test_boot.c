/*
 * knitting's process-worker boot payload as knit-knitting-worker reads it (interop/kboot.c): the
 * fields a knitting host writes are found, and a payload that is malformed, of another version,
 * or that places a slice outside the lane memory is refused with a message, never mapped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "interop/kworker.h"
#include "knit/error.h"

/* The shape knitting 0.1.61 writes (a 1 MiB-arena lane, three tasks). */
static char *payload(const char *version, uint64_t size, uint64_t ret_arena, const char *names)
{
    static const char *fmt
        = "{\"version\":%s,\"workerData\":{"
          "\"sab\":{\"version\":1,\"descriptor\":{\"version\":1,\"fd\":0,\"size\":%llu,"
          "\"byteLength\":%llu,\"runtime\":\"bun\",\"kind\":\"external-array-buffer\"},"
          "\"byteOffset\":0,\"byteLength\":192},"
          "\"list\":[\"file:///tasks.ts\"],\"ids\":[0,1,2],\"names\":%s,\"at\":[0,1,2],"
          "\"thread\":0,\"workerOptions\":{\"runtime\":\"process\",\"timers\":{\"parkMs\":1}},"
          "\"totalNumberOfThread\":1,\"startAt\":100.5,"
          "\"lock\":{\"headers\":{\"byteOffset\":704,\"byteLength\":18432},"
          "\"headerSlotStrideU32\":144,\"lockSector\":{\"byteOffset\":192,\"byteLength\":256},"
          "\"payloadSector\":{\"byteOffset\":192,\"byteLength\":256},"
          "\"payload\":{\"byteOffset\":37568,\"byteLength\":1048576}},"
          "\"returnLock\":{\"headers\":{\"byteOffset\":19136,\"byteLength\":18432},"
          "\"headerSlotStrideU32\":144,\"lockSector\":{\"byteOffset\":448,\"byteLength\":256},"
          "\"payloadSector\":{\"byteOffset\":448,\"byteLength\":256},"
          "\"payload\":{\"byteOffset\":%llu,\"byteLength\":1048576}},"
          "\"payloadConfig\":{\"mode\":\"fixed\",\"maxPayloadBytes\":131072}}}";
    char *s = malloc(4096);
    assert_non_null(s);
    snprintf(s, 4096, fmt, version, (unsigned long long)size, (unsigned long long)size, names,
        (unsigned long long)ret_arena);
    return s;
}

static void test_fields(void **state)
{
    (void)state;
    char *p = payload("1", 2134720, 1086144, "[\"echo\",\"fail\",\"slow\"]");
    knit__kw_boot_t b;
    assert_int_equal(knit__kw_parse_boot(p, &b), 0);
    assert_int_equal(b.fd, 0);
    assert_string_equal(b.shm_name, "");
    assert_int_equal(b.size, 2134720);
    assert_int_equal(b.req.headers, 704);
    assert_int_equal(b.req.sector, 192);
    assert_int_equal(b.req.arena, 37568);
    assert_int_equal(b.ret.headers, 19136);
    assert_int_equal(b.ret.sector, 448);
    assert_int_equal(b.ret.arena, 1086144);
    assert_int_equal(b.ret.arena_len, 1048576);
    assert_int_equal(b.max_payload, 131072);
    assert_int_equal(b.ntasks, 3);
    assert_string_equal(b.names[2], "slow");
    assert_true(b.park_ms == 1.0 && b.spin_us == 50.0);
    knit__kw_boot_free(&b);
    free(p);
}

static void expect_refused(char *p)
{
    knit__kw_boot_t b;
    int rc = knit__kw_parse_boot(p, &b);
    if (rc == 0) { /* parsed: then mapping must refuse it before touching the fd */
        uint8_t *base = NULL;
        rc = knit__kw_map(&b, &base);
        knit__kw_boot_free(&b);
    }
    assert_true(rc < 0);
    assert_true(strlen(knit_errmsg()) > 0);
    free(p);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refused(strdup("not json"));
    expect_refused(strdup("{\"version\":1}"));
    expect_refused(payload("2", 2134720, 1086144, "[\"a\"]"));         /* another version */
    expect_refused(payload("1", 2134720, 1086144, "[1]"));             /* a name not a string */
    expect_refused(payload("1", 2134720, 1086144, "{}"));              /* names not a list */
    expect_refused(payload("1", 2134720, 2000000, "[\"a\"]"));         /* arena past the end */
    expect_refused(payload("1", 4096, 1086144, "[\"a\"]"));            /* slabs past the end */
    expect_refused(payload("1", 2134720, UINT64_MAX - 10, "[\"a\"]")); /* offset overflow */
}

static void test_task_order(void **state)
{
    (void)state;
    /* the order Bun 1.4.5 gives with (a, b) => a.localeCompare(b) */
    const char *names[] = {"b", "B", "a_2", "a2", "A1", "add1", "_x", "a1", "echo", "Echo2", "x9",
        "x10", "fooBar", "foo_bar", "foobar"};
    const char *sorted[] = {"_x", "a_2", "a1", "A1", "a2", "add1", "b", "B", "echo", "Echo2",
        "foo_bar", "foobar", "fooBar", "x10", "x9"};
    size_t n = sizeof names / sizeof names[0];
    qsort(names, n, sizeof names[0], knit__kx_name_cmp);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(names[i], sorted[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_task_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
