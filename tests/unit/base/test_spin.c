/* Spinning that notices preemption (base/spin.h): the back-off rules, with synthetic clocks. */
#include "testutil.h"

#include "base/spin.h"

/* A clock gap longer than KNIT__PREEMPT_NS is a preemption; shorter gaps are not. */
static void test_gap_detection(void **state)
{
    (void)state;
    knit__spin_t s = {0};
    assert_true(knit__spin_begin(&s, 1000));
    assert_false(knit__spin_preempted(&s, 1000 + KNIT__PREEMPT_NS));
    assert_true(knit__spin_preempted(&s, 1000 + 2 * KNIT__PREEMPT_NS + 1));
    assert_int_equal(s.preemptions, 1);
}

/* After a preemption the next `backoff` waits do not spin; then spinning resumes. */
static void test_backoff_skips_waits(void **state)
{
    (void)state;
    knit__spin_t s = {0};
    assert_true(knit__spin_begin(&s, 0));
    assert_true(knit__spin_preempted(&s, 10 * KNIT__PREEMPT_NS));
    assert_int_equal(s.skip, KNIT__SPIN_SKIP_MIN);
    for (unsigned i = 0; i < KNIT__SPIN_SKIP_MIN; i++)
        assert_false(knit__spin_begin(&s, 0));
    assert_true(knit__spin_begin(&s, 0));
}

/* Repeated preemptions double the back-off up to the cap; calm spins halve it. */
static void test_backoff_grows_and_shrinks(void **state)
{
    (void)state;
    knit__spin_t s = {0};
    uint64_t t = 0;
    uint32_t prev = 0;
    for (int i = 0; i < 20; i++) {
        s.skip = 0;
        assert_true(knit__spin_begin(&s, t));
        t += 10 * KNIT__PREEMPT_NS;
        assert_true(knit__spin_preempted(&s, t));
        assert_true(s.backoff >= prev);
        assert_true(s.backoff <= KNIT__SPIN_SKIP_MAX);
        prev = s.backoff;
    }
    assert_int_equal(s.backoff, KNIT__SPIN_SKIP_MAX);
    knit__spin_calm(&s);
    assert_int_equal(s.backoff, KNIT__SPIN_SKIP_MAX / 2);
    for (int i = 0; i < 20; i++)
        knit__spin_calm(&s);
    assert_int_equal(s.backoff, 0);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_gap_detection),
        cmocka_unit_test(test_backoff_skips_waits),
        cmocka_unit_test(test_backoff_grows_and_shrinks),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
