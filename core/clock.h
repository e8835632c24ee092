/* knit core - the one monotonic clock every timeout and stamp uses (host and workers alike). */
#ifndef KNIT_CORE_CLOCK_H
#define KNIT_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

#include "core/frame.h"

static inline uint64_t knit__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The 27-bit millisecond stamp of header word 6 for a CLOCK_MONOTONIC time. */
static inline uint32_t knit__stamp_ms(uint64_t ns)
{
    return (uint32_t)(ns / 1000000ull) & KNIT__META_STAMP_MASK;
}

/* Milliseconds from `stamp` to `now_stamp`, modulo 2^27 (the stamp wraps every ~37 h). */
static inline uint32_t knit__stamp_elapsed(uint32_t stamp, uint32_t now_stamp)
{
    return (now_stamp - stamp) & KNIT__META_STAMP_MASK;
}

#endif
