/* knit tests - helpers shared by the unit tests. */
#ifndef KNIT_TESTS_TESTUTIL_H
#define KNIT_TESTS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Divisor for stress-loop counts: 1 normally, larger under sanitizers (KNIT_TEST_SCALE). */
uint64_t knit_test_scale(void);

/* n / knit_test_scale(), at least `floor`. */
uint64_t knit_test_iters(uint64_t n, uint64_t floor);

/* Deterministic PRNG (xorshift64*), seeded per test for reproducible failures. */
typedef struct knit_test_rng {
    uint64_t s;
} knit_test_rng_t;

static inline uint64_t knit_test_rand(knit_test_rng_t *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ull;
}

/* Uniform in [0, n). */
static inline uint64_t knit_test_below(knit_test_rng_t *r, uint64_t n)
{
    return n ? knit_test_rand(r) % n : 0;
}

#endif
