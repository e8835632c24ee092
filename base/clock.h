/* knit base - the one monotonic clock every timeout and stamp uses (host and workers alike). */
#ifndef KNIT_BASE_CLOCK_H
#define KNIT_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t knit__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
