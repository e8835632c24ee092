/* knit transports/shm - waking a parked peer through the lane's control words (wake.c). */
#ifndef KNIT_TRANSPORTS_SHM_WAKE_H
#define KNIT_TRANSPORTS_SHM_WAKE_H

#include <stdbool.h>

#include "transports/shm/shm_lane.h"

/* Host: wake the lane's worker if it is parked (rxStatus 0); true when it did. The caller
 * issued a seq_cst fence after its publication. */
bool knit__ctrl_wake_worker(knit__ctrl_t *c);

/* Worker: after publishing results, wake the host if it parked on this lane's doorbell. */
void knit__ring_host(const knit__shm_lane_t *mem);

#endif
