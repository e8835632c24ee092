/* knit transports/shm/seq - the `seq` transport's link table (link.c). */
#ifndef KNIT_TRANSPORTS_SHM_SEQ_LINK_H
#define KNIT_TRANSPORTS_SHM_SEQ_LINK_H

#include "transports/link.h"

extern const knit__link_ops_t knit__seq_link_ops;

#endif
