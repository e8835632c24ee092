/* knit tests - helpers shared by the unit tests. */
#ifndef KNIT_TESTS_TESTUTIL_H
#define KNIT_TESTS_TESTUTIL_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/rand.h"
#include "transports/shm/shm_lane.h"

/* Divisor for stress-loop counts: 1 normally, larger under sanitizers (KNIT_TEST_SCALE). */
uint64_t knit_test_scale(void);

/* n / knit_test_scale(), at least `floor`. */
uint64_t knit_test_iters(uint64_t n, uint64_t floor);

/* Descriptors this process has open (a leak check compares two counts). */
int knit_test_open_fds(void);

/* Deterministic PRNG (xorshift64*), seeded per test for reproducible failures. */
typedef struct knit_test_rng {
    uint64_t s;
} knit_test_rng_t;

static inline uint64_t knit_test_rand(knit_test_rng_t *r)
{
    return knit__xorshift64s(&r->s);
}

/* Uniform in [0, n). */
static inline uint64_t knit_test_below(knit_test_rng_t *r, uint64_t n)
{
    return n ? knit_test_rand(r) % n : 0;
}

/* A failed randomised check names the seed and step that reproduce it. */
#define KNIT_TEST_CHECK(seed, step, cond, fmt, ...)                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fail_msg("seed %#" PRIx64 " step %" PRIu64 ": " fmt, (uint64_t)(seed),                 \
                (uint64_t)(step), ##__VA_ARGS__);                                                  \
    } while (0)

static inline unsigned knit_test_popcount32(uint32_t v)
{
    return (unsigned)__builtin_popcount(v);
}

/* --- a shared lane and both of its endpoints ----------------------------------------------- */

typedef struct knit_test_lane {
    knit__shm_lane_t lane;
    knit__endpoint_t host;   /* produces requests: writes req_slab and its tx_arena */
    knit__endpoint_t worker; /* consumes requests: its rx_arena is the host's tx arena */
} knit_test_lane_t;

/* Create a lane from `cfg` and attach both endpoints; asserts that it worked. */
knit_test_lane_t *knit_test_lane_open(const knit__lane_cfg_t *cfg);
void knit_test_lane_close(knit_test_lane_t *l);

/* cmocka setup and teardown: a lane of 1 MiB arenas (so maxPayloadBytes = 128 KiB) as the test's
 * state. */
int knit_test_lane_setup(void **state);
int knit_test_lane_teardown(void **state);

/* Frames drained from an endpoint by knit__ep_drain(ep, knit_test_capture_cb, &capture, ...):
 * appended in delivery order; the callback stops the drain once the capture is full. */
#define KNIT_TEST_CAPTURE_MAX 40

typedef struct knit_test_capture {
    int n;
    knit__msg_t msgs[KNIT_TEST_CAPTURE_MAX];
} knit_test_capture_t;

int knit_test_capture_cb(void *ctx, knit__msg_t *msg);

/* --- values ------------------------------------------------------------------------------------
 */

/* A cause chain of n errors (name "E", message "m"): vals[i] is the error chain[i], whose cause
 * is vals[i + 1]; the last has no cause. */
void knit_test_error_chain(knit_error_value_t *chain, knit_value_t *vals, int n);

/* --- moved buffers -----------------------------------------------------------------------------
 */

typedef struct knit_test_release_log {
    int calls;
    void *data; /* what the last call released */
    void *ctx;  /* the context it was given */
} knit_test_release_log_t;

/* Release callback for knit_moved_new: counts into the knit_test_release_log_t passed as ctx,
 * notes what it was given, and frees data. */
void knit_test_log_release(void *data, void *ctx);

#endif
