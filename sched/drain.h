/* knit sched - receiving results (drain.c): a lane's frames matched to calls and settled. */
#ifndef KNIT_SCHED_DRAIN_H
#define KNIT_SCHED_DRAIN_H

#include "sched/state.h"

/* Settle every result the lane's link holds, then refill the lane from its backlog (or wake a
 * worker held back by full return slots). The number of frames, or the link's negative code
 * once it is broken (the caller handles the lane: knit__lane_service). */
int knit__drain_lane(knit_pool_t *p, knit__lane_t *lane);

/* The codec's storage for a small result arriving on lane `ctx` (knit__codec_cfg_t.small): the
 * small storage of the future whose call it answers, when that call is waiting for it on this
 * lane; else NULL (the heap). */
void *knit__result_storage(void *ctx, const uint32_t *hdr);

#endif
