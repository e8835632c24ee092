/* knit fuzz targets - reading a fuzz input, and the harness's own checks (not library code). */
#ifndef KNIT_TESTS_FUZZ_FUZZ_UTIL_H
#define KNIT_TESTS_FUZZ_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A cursor over the input: a read past its end yields zeros. */
typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in_t;

static inline void fz_take(fz_in_t *in, void *dst, size_t n)
{
    size_t k = in->n < n ? in->n : n;
    memcpy(dst, in->p, k);
    memset((uint8_t *)dst + k, 0, n - k);
    in->p += k;
    in->n -= k;
}

static inline uint32_t fz_u8(fz_in_t *in)
{
    uint8_t b;
    fz_take(in, &b, 1);
    return b;
}

static inline uint32_t fz_u16(fz_in_t *in)
{
    uint16_t v;
    fz_take(in, &v, 2);
    return v;
}

static inline uint32_t fz_u32(fz_in_t *in)
{
    uint32_t v;
    fz_take(in, &v, 4);
    return v;
}

/* The maxPayloadBytes a 2-bit selector picks: the limits a lane may have, small and large. */
static inline uint64_t fz_max_payload(uint32_t sel)
{
    static const uint64_t sizes[4] = {65536, 1024, 4096, 600};
    return sizes[sel & 3u];
}

/* A broken invariant: report it and abort, so libFuzzer saves the input. */
#define FZ_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz check failed: %s: ", #cond);                                     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
