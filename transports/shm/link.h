/* knit transports/shm - the `knit` transport's link table (link.c), and the operations the
 * shared-memory transports share. */
#ifndef KNIT_TRANSPORTS_SHM_LINK_H
#define KNIT_TRANSPORTS_SHM_LINK_H

#include "transports/link.h"
#include "transports/shm/shm_lane.h"

extern const knit__link_ops_t knit__shm_link_ops;

/* Operations every shared-memory transport (`knit`, and `seq` in seq/) fills its table with:
 * no descriptors to poll, end-of-stream said by the lane's stop word, freeing a link whose
 * state starts with knit__link_t and holds no resource (the lane memory is the lane's), and
 * the frame callback of discard (release what the value holds). */
unsigned knit__shm_wait_fds(const knit__link_t *l, struct pollfd *out);
void knit__shm_end_tx(knit__link_t *l);
void knit__shm_close(knit__link_t *l);
int knit__shm_release_frame(void *ctx, knit__msg_t *m);

#endif
