/* knit transports/shm - the shared request lock of a stealing pool, as a link (shared_lock.c). */
#ifndef KNIT_TRANSPORTS_SHM_SHARED_LOCK_H
#define KNIT_TRANSPORTS_SHM_SHARED_LOCK_H

#include "transports/link.h"
#include "transports/shm/shm_lane.h"

extern const knit__link_ops_t knit__shm_lock_ops;

#endif
