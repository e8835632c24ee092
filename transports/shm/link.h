/* knit transports/shm - the `knit` transport's link table (link.c). */
#ifndef KNIT_TRANSPORTS_SHM_LINK_H
#define KNIT_TRANSPORTS_SHM_LINK_H

#include "transports/link.h"
#include "transports/shm/shm_lane.h"

extern const knit__link_ops_t knit__shm_link_ops;

#endif
