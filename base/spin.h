/*
 * knit base - spinning that notices when it shares the CPU (host and workers alike).
 *
 * A waiter spins for its budget before it parks, which pays only while the thread keeps its
 * CPU. When the CPUs are oversubscribed (more spinning or busy threads than cores - a 2-core
 * machine with a host and two workers, or any busy neighbour) a spinner is preempted in the
 * middle of its budget and the thread that would have answered it waits for a time slice. A
 * spinner reads the clock every 64 pauses; a gap of more than KNIT__PREEMPT_NS between two
 * reads means it lost the CPU. It then parks at once and skips spinning for its next `backoff`
 * waits (doubling up to KNIT__SPIN_SKIP_MAX while preemptions repeat, halving after waits that
 * spun undisturbed), so a contended pool behaves like a blocking one instead of collapsing.
 */
#ifndef KNIT_BASE_SPIN_H
#define KNIT_BASE_SPIN_H

#include <stdbool.h>
#include <stdint.h>

#define KNIT__PREEMPT_NS    30000u /* a clock gap this long while spinning: we lost the CPU */
#define KNIT__SPIN_SKIP_MIN 8u
#define KNIT__SPIN_SKIP_MAX 4096u

typedef struct knit__spin {
    uint32_t skip;    /* waits left that park without spinning */
    uint32_t backoff; /* the next skip after a preemption */
    uint64_t last;    /* the previous clock read of this spin */
    uint64_t preemptions;
} knit__spin_t;

/* Start a wait: false when this wait should not spin at all (backing off). */
static inline bool knit__spin_begin(knit__spin_t *s, uint64_t now)
{
    if (s->skip) {
        s->skip--;
        return false;
    }
    s->last = now;
    return true;
}

/* A clock read inside the spin: true when the thread was preempted since the last one (the
 * wait should park now; spinning backs off). */
static inline bool knit__spin_preempted(knit__spin_t *s, uint64_t now)
{
    bool lost = now - s->last > KNIT__PREEMPT_NS;
    s->last = now;
    if (!lost)
        return false;
    s->backoff = s->backoff < KNIT__SPIN_SKIP_MIN ? KNIT__SPIN_SKIP_MIN
        : s->backoff < KNIT__SPIN_SKIP_MAX        ? s->backoff * 2
                                                  : KNIT__SPIN_SKIP_MAX;
    s->skip = s->backoff;
    s->preemptions++;
    return true;
}

/* A spin that ended without a preemption: trust spinning a little more. */
static inline void knit__spin_calm(knit__spin_t *s)
{
    s->backoff /= 2;
}

/* Online CPUs (sysconf, read once; not the calling thread's affinity, which a host may have
 * narrowed to pin itself). */
unsigned knit__cpus(void);

#endif
