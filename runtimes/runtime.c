/* knit runtimes - start, stop and join a lane's worker in the pool's runtime. */
#include "runtimes/runtime.h"

#include "runtimes/process/process.h"

int knit__runner_start(knit_pool_t *p, knit__lane_t *lane)
{
    if (p->opts.runtime == KNIT_RUNTIME_PROCESS)
        return knit__process_start(p, lane);
    return knit__thread_start(p, lane);
}

void knit__runner_stop(knit__lane_t *lane)
{
    if (lane->runner && lane->mem.map) {
        knit__worker_signal_stop(&lane->mem);
        /* message transports: the worker reads end-of-stream after the last request */
        if (knit__link_open_p(&lane->link))
            lane->link.ops->end_tx(&lane->link);
    }
}

void knit__runner_join(knit_pool_t *p, knit__lane_t *lane)
{
    if (!lane->runner)
        return;
    if (p->opts.runtime == KNIT_RUNTIME_PROCESS)
        knit__process_join(p, lane);
    else
        knit__thread_join(lane);
}
