/* knit base - what spinning needs from the system: the number of online CPUs. */
#include "base/spin.h"

#include <stdatomic.h>
#include <unistd.h>

unsigned knit__cpus(void)
{
    /* sysconf reads a /sys file each call: once per process is enough (relaxed: any thread
     * computes the same value) */
    static _Atomic unsigned cached;
    unsigned n = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!n) {
        long v = sysconf(_SC_NPROCESSORS_ONLN);
        n = v > 0 ? (unsigned)v : 1u;
        atomic_store_explicit(&cached, n, memory_order_relaxed);
    }
    return n;
}
