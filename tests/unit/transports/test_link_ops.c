/*
 * The link and runtime contracts' tables (transports/link.h, runtimes/runtime.h): every
 * registered transport and runtime fills each required operation, fills an optional one
 * exactly when its capability flag says so, and is found by id and by name.
 */
#include <string.h>

#include "runtimes/runtime.h"
#include "testutil.h"
#include "transports/link.h"

static const knit_transport_t transports[] = {KNIT_TRANSPORT_KNIT, KNIT_TRANSPORT_PIPE,
    KNIT_TRANSPORT_UNIX, KNIT_TRANSPORT_SEQPACKET, KNIT_TRANSPORT_TCP, KNIT_TRANSPORT_SEQ};

static void check_link_table(const knit__link_ops_t *o, bool lock)
{
    assert_non_null(o->name);
    assert_non_null(o->open);
    assert_non_null(o->send);
    assert_non_null(o->drain);
    assert_non_null(o->ready);
    assert_non_null(o->can_send);
    assert_non_null(o->wake_peer);
    assert_non_null(o->wait_fds);
    assert_non_null(o->park);
    assert_non_null(o->end_tx);
    assert_non_null(o->discard);
    assert_non_null(o->close);
    /* optional operations exactly where the flags promise them */
    assert_int_equal(o->pair != NULL, knit__link_has(o, KNIT__LINK_USES_FDS));
    /* a shared lock's workers only receive on it: they send on their own lanes */
    if (!lock)
        assert_int_equal(o->send_hook != NULL, knit__link_has(o, KNIT__LINK_IN_PLACE));
    assert_int_equal(o->set_in_place != NULL, knit__link_has(o, KNIT__LINK_IN_PLACE));
    /* descriptors and spinning exclude each other: a poll()ed link answers ready() false */
    assert_false(
        knit__link_has(o, KNIT__LINK_USES_FDS) && knit__link_has(o, KNIT__LINK_SPIN_CHEAP));
}

static void test_every_transport_fills_its_table(void **s)
{
    (void)s;
    for (size_t i = 0; i < sizeof transports / sizeof transports[0]; i++) {
        const knit__link_ops_t *o = knit__transport_ops(transports[i]);
        assert_non_null(o);
        check_link_table(o, false);
        assert_string_equal(o->name, knit_transport_name(transports[i]));
        knit_transport_t back;
        assert_int_equal(knit_transport_parse(o->name, &back), 0);
        assert_int_equal(back, transports[i]);
        /* a shared request lock lives in lane memory, and only there */
        if (o->shared_lock) {
            assert_true(knit__link_has(o, KNIT__LINK_SHARED_MEMORY));
            check_link_table(o->shared_lock, true);
            assert_non_null(o->shared_lock->set_claim);
            assert_non_null(o->shared_lock->retire);
            assert_null(o->shared_lock->shared_lock);
        } else {
            assert_null(o->set_claim);
            assert_null(o->retire);
        }
    }
}

static void test_unknown_transport_has_no_table(void **s)
{
    (void)s;
    assert_null(knit__transport_ops((knit_transport_t)99));
    assert_null(knit__transport_ops((knit_transport_t)-1));
    assert_string_equal(knit_transport_name((knit_transport_t)99), "unknown");
    knit_transport_t t;
    assert_int_equal(knit_transport_parse("carrier-pigeon", &t), KNIT_E_INVAL);
    assert_int_equal(knit_transport_parse(NULL, &t), KNIT_E_INVAL);
}

static void test_every_runtime_fills_its_table(void **s)
{
    (void)s;
    const knit_runtime_t runtimes[] = {KNIT_RUNTIME_THREAD, KNIT_RUNTIME_PROCESS};
    for (size_t i = 0; i < 2; i++) {
        const knit__runtime_ops_t *o = knit__runtime_ops(runtimes[i]);
        assert_non_null(o);
        assert_non_null(o->name);
        assert_non_null(o->open);
        assert_non_null(o->close);
        assert_non_null(o->memory);
        assert_non_null(o->memory_release);
        assert_non_null(o->start);
        assert_non_null(o->join);
        assert_non_null(o->pid);
        assert_int_equal(o->kill != NULL, knit__runtime_has(o, KNIT__RUNTIME_KILLABLE));
        assert_int_equal(o->exited != NULL, knit__runtime_has(o, KNIT__RUNTIME_CAN_DIE));
        assert_int_equal(o->forget != NULL, knit__runtime_has(o, KNIT__RUNTIME_CAN_DIE));
    }
    assert_string_equal(knit__runtime_ops(KNIT_RUNTIME_THREAD)->name, "thread");
    assert_string_equal(knit__runtime_ops(KNIT_RUNTIME_PROCESS)->name, "process");
    assert_null(knit__runtime_ops((knit_runtime_t)7));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_transport_fills_its_table),
        cmocka_unit_test(test_unknown_transport_has_no_table),
        cmocka_unit_test(test_every_runtime_fills_its_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
