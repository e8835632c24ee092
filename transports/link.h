/*
 * knit transports - the lane contract: how the scheduler moves frames between the host and one
 * worker, whatever carries them.
 *
 * A lane always has its shared control memory (transports/knit: the stop word, the start-up
 * report, the abort bitmap, the host's doorbell). Its data path - request frames one way,
 * result frames the other - is a link, and a link is one of five transports:
 *
 *   knit       the slots and payload arenas of the lane memory; waits spin, then park on futex
 *              words (the fast path this project exists for);
 *   pipe       postMessage-style: the same codec serialises the frame into private memory, a
 *              length-prefixed write copies it into the kernel, the reader wakes in poll(),
 *              copies it out and deserialises it; two pipes per lane;
 *   unix       the same over a SOCK_STREAM socket pair;
 *   seqpacket  the same over a SOCK_SEQPACKET socket pair, frames cut into records;
 *   tcp        the same over a loopback TCP connection (127.0.0.1, TCP_NODELAY).
 *
 * The message transports never spin: both sides block in poll() (what a worker blocked in
 * read() costs). Every transport keeps at most 32 requests outstanding per lane, so the
 * scheduler's back-pressure, balancers and ordering are the same whatever carries the frames.
 *
 * Contract, for either side:
 *   send       encode a value and start moving it: 0; KNIT_E_FULL when the link has no room
 *              now (the caller keeps the value and retries after a drain); an encode error
 *              (nothing was sent); KNIT_E_WORKER_DIED when the peer is gone.
 *   drain      hand every frame received so far to `cb`, in order, and continue a send the
 *              kernel could not take whole. Returns the number of frames, or a negative code
 *              once the link is broken: KNIT_E_WORKER_DIED (the peer closed its end) or
 *              KNIT_E_CORRUPT (a malformed frame; the stream cannot be trusted any more).
 *   ready      frames are waiting (cheap, no system call; message transports answer false and
 *              are waited for with poll() instead).
 *   can_send   a send now would not be KNIT_E_FULL (cheap): a side with results held back
 *              must not go to sleep while this is true.
 *   wake_peer  after sends: make a parked peer notice (the futex doorbells; nothing for the
 *              message transports, whose write is the wake-up).
 *   wait_fds   the descriptors to poll for this link: reading, and writing while a frame is
 *              only partly sent. The knit transport has none (it parks on futex words).
 *   end_tx     host: no more requests; the worker reads end-of-stream after the last one.
 */
#ifndef KNIT_TRANSPORTS_LINK_H
#define KNIT_TRANSPORTS_LINK_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "knit/knit.h"
#include "transports/shm/shm_lane.h"
#include "transports/stream/frame_stream.h"

#define KNIT__LINK_WINDOW 32u /* requests outstanding per lane, whatever the transport */

typedef struct knit__link knit__link_t;
typedef int (*knit__frame_cb)(void *ctx, knit__msg_t *msg);

typedef struct knit__link_ops {
    const char *name;
    bool uses_fds; /* waits in poll() on descriptors (message transports) */
    int (*send)(knit__link_t *l, uint32_t w0, uint32_t id, uint32_t stamp_ms, knit_value_t *v);
    int (*drain)(knit__link_t *l, knit__frame_cb cb, void *ctx);
    bool (*ready)(const knit__link_t *l);
    bool (*can_send)(knit__link_t *l);
    void (*wake_peer)(knit__link_t *l);
    unsigned (*wait_fds)(const knit__link_t *l, struct pollfd *out); /* at most 2 */
    void (*end_tx)(knit__link_t *l);
    void (*close)(knit__link_t *l);
} knit__link_ops_t;

struct knit__link {
    const knit__link_ops_t *ops;
    knit__side_t side;
    const knit__shm_lane_t *mem; /* the lane's control memory */
    knit__endpoint_t ep;         /* knit: the data path in lane memory */
    knit__fs_writer_t tx;        /* message transports */
    knit__fs_reader_t rx;
    int fd_rx, fd_tx;     /* owned; a socket appears twice */
    uint32_t tx_seq;      /* message transports: publication numbers (header word 7) */
    uint32_t outstanding; /* host: requests sent and not answered yet */
};

/* Descriptors of a message transport: the host's pair and the worker's pair, {rx, tx} each,
 * close-on-exec. For sockets both entries of a pair are the same descriptor. */
int knit__link_fds(knit_transport_t t, int host[2], int worker[2]);
/* Close a pair from knit__link_fds that no link took (a socket once). */
void knit__link_fds_close(int fds[2]);

/* Open one side of a lane's link. Takes `fds` (ignored by the knit transport) in every case:
 * on failure they are closed. */
int knit__link_open(knit__link_t *l, knit_transport_t t, knit__side_t side,
    const knit__shm_lane_t *mem, const int fds[2]);
void knit__link_close(knit__link_t *l);

static inline bool knit__link_open_p(const knit__link_t *l)
{
    return l->ops != NULL;
}

static inline int knit__link_send(
    knit__link_t *l, uint32_t w0, uint32_t id, uint32_t stamp_ms, knit_value_t *v)
{
    return l->ops->send(l, w0, id, stamp_ms, v);
}

static inline int knit__link_drain(knit__link_t *l, knit__frame_cb cb, void *ctx)
{
    return l->ops->drain(l, cb, ctx);
}

static inline bool knit__link_ready(const knit__link_t *l)
{
    return l->ops->ready(l);
}

static inline bool knit__link_can_send(knit__link_t *l)
{
    return l->ops->can_send(l);
}

/* The knit transport's operations (transports/shm/link.c) and the message transports'
 * (transports/stream/link.c). */
extern const knit__link_ops_t knit__link_knit_ops;
extern const knit__link_ops_t knit__link_stream_ops;

/* Stream links: the record size of SOCK_SEQPACKET frames. */
#define KNIT__SEQPACKET_RECORD 65536u

#endif
