/*
 * Values whose declared lengths are absurd (near SIZE_MAX), as a caller with a bug would make
 * them, on every transport: each such call settles with an error that names the limit, nothing
 * is read past the real buffer, and the pool serves the next call as if nothing happened.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdint.h>
#include <string.h>

#include "knit/knit.h"

static int echo(knit_task_ctx_t *ctx, knit_value_t *arg, knit_value_t *result)
{
    (void)ctx;
    *result = *arg;
    *arg = knit_v_undefined();
    return 0;
}

static const knit_task_def_t tasks[] = {{.name = "echo", .fn = echo}};

static const uint8_t small[16] = {1, 2, 3};

static int settle(knit_pool_t *p, knit_value_t v)
{
    knit_future_t *f;
    assert_int_equal(knit_call(p, 0, &v, &f), 0);
    int st = knit_future_wait(f, -1);
    knit_future_release(f);
    return st;
}

static void huge_values(knit_transport_t t)
{
    knit_pool_opts_t o = {.threads = 1, .transport = t};
    knit_pool_t *p;
    assert_int_equal(knit_pool_create(&o, tasks, 1, &p), 0);
    static const size_t lens[]
        = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 7, SIZE_MAX / 2 + 1, (size_t)UINT32_MAX + 1};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        knit_value_t v[] = {
            knit_v_bytes(small, lens[i]),
            knit_v_strn((const char *)small, lens[i]),
            knit_v_typed(KNIT_ELEM_I8, small, lens[i]),
            /* as a caller's bug would leave it: knit_v_bigint() would read the magnitude */
            {.kind = KNIT_KIND_BIGINT, .len = lens[i], .u.ptr = small},
        };
        knit_envelope_t env
            = {.header = "{}", .header_len = lens[i], .body = knit_v_bytes(small, 4)};
        knit_envelope_t env_body
            = {.header = "{}", .header_len = 2, .body = knit_v_bytes(small, lens[i])};
        for (size_t k = 0; k < sizeof v / sizeof *v; k++) {
            int st = settle(p, v[k]);
            if (st == 0 || st == KNIT_E_AGAIN)
                fail_msg("%s: kind %d of length %zu settled with %d", knit_transport_name(t),
                    v[k].kind, lens[i], st);
        }
        assert_int_not_equal(settle(p, knit_v_envelope(&env)), 0);
        assert_int_not_equal(settle(p, knit_v_envelope(&env_body)), 0);
        /* and the pool goes on */
        assert_int_equal(settle(p, knit_v_bytes(small, sizeof small)), 0);
    }
    knit_pool_destroy(p);
}

static void test_huge_lengths_every_transport(void **s)
{
    (void)s;
    for (int t = KNIT_TRANSPORT_KNIT; t <= KNIT_TRANSPORT_SEQ; t++)
        huge_values((knit_transport_t)t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huge_lengths_every_transport),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
