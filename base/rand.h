/*
 * knit base - the one pseudo-random generator of the project: xorshift64* (Vigna), for the
 * balancers' random choices, the benchmark's arrival schedules and the tests' seeded inputs.
 * Not for secrets: the same state gives the same sequence on every machine.
 */
#ifndef KNIT_BASE_RAND_H
#define KNIT_BASE_RAND_H

#include <stdint.h>

/* Next value of a xorshift64* sequence; the state must not be 0. */
static inline uint64_t knit__xorshift64s(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* A well-mixed non-zero state from any seed (splitmix64's finaliser; 0 included). */
static inline uint64_t knit__rand_seed(uint64_t seed)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z ? z : 0x2545f4914f6cdd1dull;
}

#endif
