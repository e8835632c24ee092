/*
 * knit transports - the link contract: how frames move between the host and one worker,
 * whatever carries them.
 *
 * Every lane has its lane memory (transports/shm/shm_lane.h): the control words (the stop word,
 * the start-up report, the abort bitmap, the host's doorbell) live there whatever the
 * transport. The data path - request frames one way, result frames the other - is a link, and
 * a transport is a table of link operations (knit__link_ops_t) with capability flags. The
 * scheduler and the worker loop call the operations and test the flags; they never ask which
 * transport they hold. Each transport keeps its state private, in its own folder:
 *
 *   knit       transports/shm/: the slots and payload arenas of the lane memory; waits spin,
 *              then park on futex words (the fast path this project exists for);
 *   pipe       transports/stream/: postMessage-style - the same codec serialises the frame into
 *              private memory, a length-prefixed write copies it into the kernel, the reader
 *              wakes in poll(), copies it out and deserialises it; two pipes per lane;
 *   unix       the same over a SOCK_STREAM socket pair;
 *   seqpacket  the same over a SOCK_SEQPACKET socket pair, frames cut into records;
 *   tcp        the same over a loopback TCP connection (127.0.0.1, TCP_NODELAY);
 *   seq        transports/shm/seq/: knit's lane memory, codec and waits with one sequence word
 *              per slot in its header line instead of knitting's bitmask words.
 *
 * Every transport keeps at most KNIT__LINK_WINDOW requests outstanding per lane, so the
 * scheduler's back-pressure, balancers and ordering are the same whatever carries the frames.
 * A link is used by one thread at a time (its side's host or worker thread).
 */
#ifndef KNIT_TRANSPORTS_LINK_H
#define KNIT_TRANSPORTS_LINK_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "codec/codec.h"
#include "knit/knit.h"

#define KNIT__LINK_WINDOW 32u /* requests outstanding per lane, whatever the transport */

struct knit__shm_lane; /* a lane's memory (transports/shm/shm_lane.h) */

typedef enum knit__side { KNIT__SIDE_HOST = 0, KNIT__SIDE_WORKER = 1 } knit__side_t;

/* One received frame. */
typedef struct knit__msg {
    uint32_t w0;    /* request: task index | abort meta << 16; response: flags */
    uint32_t id;    /* call id */
    uint32_t stamp; /* 27-bit enqueue stamp (ms) */
    uint32_t seq;   /* the producer's publication number (header word 7) */
    int status;     /* 0, or the decode error (value is then UNDEFINED) */
    int32_t region; /* an in-place argument's arena region, to free after use; else -1 */
    _Atomic uint32_t *region_free; /* that region's arena free word (knit__arena_free) */
    knit_value_t value;
} knit__msg_t;

/* What the capability flags promise; the scheduler and the worker test these, not names. */
enum knit__link_flag {
    /* Frames travel in the lane memory: the lane memory must be reachable by the worker, and
     * frames still in it when the peer is gone are released by discard(). Only such a
     * transport can offer a shared request lock (shared_lock below). */
    KNIT__LINK_SHARED_MEMORY = 1u << 0,
    /* ready() is a plain memory read, so spinning on it is cheap and a pool spins before it
     * parks by default. Without it ready() costs a non-blocking system call per check, and a
     * pool spins (polls) only when its options ask for a budget or spin-only waiting. */
    KNIT__LINK_SPIN_CHEAP = 1u << 1,
    /* Frames travel over descriptors: pair() makes them, the worker's pair is handed over to
     * it (a process worker gets them as fds 3 and 4), and a host waits in poll() on
     * wait_fds(). Without it the host parks on the lanes' doorbells (futex words). */
    KNIT__LINK_USES_FDS = 1u << 2,
    /* A received argument can be read in place until its task returns (set_in_place,
     * send_hook); otherwise the receiver's buffer is reused and arguments are copied. */
    KNIT__LINK_IN_PLACE = 1u << 3,
};

typedef struct knit__link knit__link_t;
typedef struct knit__link_ops knit__link_ops_t;
typedef int (*knit__frame_cb)(void *ctx, knit__msg_t *msg);

/* What opening one side of a lane's link needs. */
typedef struct knit__link_params {
    knit__side_t side;
    const struct knit__shm_lane *mem; /* the lane memory (shared-memory links carry frames in
                                         it; every link may read its control words) */
    knit__codec_cfg_t codec;          /* the codec's limits for frames this side decodes */
    int fds[2];                       /* USES_FDS: this side's {rx, tx} from pair();
                                         ignored by the others */
    /* A shared request lock only: the worker lanes whose parked workers a host's send may
     * wake (host side), or this consumer's index among `consumers` and the lock's region
     * width (worker side). */
    const struct knit__shm_lane *const *peers;
    uint32_t consumers;
    uint32_t consumer;
    uint32_t region_lanes;
} knit__link_params_t;

struct knit__link_ops {
    const char *name; /* the transport's name, as knit_transport_name() gives it */
    unsigned flags;   /* enum knit__link_flag */

    /* USES_FDS only (else NULL): make one lane's descriptors, the host's {rx, tx} and the
     * worker's, close-on-exec (for sockets both entries of a pair are the same descriptor).
     * May block briefly (tcp: connect and accept on loopback). */
    int (*pair)(int host[2], int worker[2]);

    /* Allocate and open one side of a lane's link. A USES_FDS link takes params->fds in every
     * case (on failure they are closed); others never touch them. Does not block, never calls
     * back. */
    int (*open)(const knit__link_params_t *params, knit__link_t **out);

    /* Encode a value and start moving it: 0; KNIT_E_FULL when the link has no room now (the
     * caller keeps the value and retries after a drain); an encode error (nothing was sent);
     * KNIT_E_WORKER_DIED when the peer is gone. Does not block, never calls back; the value is
     * borrowed (what it owns stays the caller's). */
    int (*send)(knit__link_t *l, uint32_t w0, uint32_t id, uint32_t stamp_ms, knit_value_t *v);

    /* IN_PLACE only (else NULL): send, calling before_publish(ctx) once the value has been
     * copied into the link and before the peer can see it. */
    int (*send_hook)(knit__link_t *l, uint32_t w0, uint32_t id, uint32_t stamp_ms, knit_value_t *v,
        void (*before_publish)(void *ctx), void *ctx);

    /* Hand every frame received so far to `cb`, in order (cb owns msg->value; a negative
     * return stops the drain and is returned), and continue a send the kernel could not take
     * whole. Returns the number of frames, or a negative code once the link is broken:
     * KNIT_E_WORKER_DIED (the peer closed its end) or KNIT_E_CORRUPT (a malformed frame; the
     * stream cannot be trusted any more). Does not block. */
    int (*drain)(knit__link_t *l, knit__frame_cb cb, void *ctx);

    /* Frames are waiting (or the peer's end closed). A memory read for SPIN_CHEAP links; a
     * non-blocking poll() of the receiving descriptor otherwise. Never blocks. */
    bool (*ready)(const knit__link_t *l);

    /* A send now would not be KNIT_E_FULL (cheap): a side with results held back must not go
     * to sleep while this is true. */
    bool (*can_send)(knit__link_t *l);

    /* After sends (or after a drain that freed room): make a parked peer notice. Nothing for
     * links whose write is the wake-up. Does not block. */
    void (*wake_peer)(knit__link_t *l);

    /* USES_FDS: the descriptors to poll for this link - reading, and writing while a frame is
     * only partly sent; at most 2. Others return 0. */
    unsigned (*wait_fds)(const knit__link_t *l, struct pollfd *out);

    /* Worker side: sleep until the peer sends, frees room or stops the lane. `more(ctx)` is
     * checked after the sleep is announced and before sleeping, so no wake-up is lost; a
     * spurious return is allowed. Blocks; calls `more` back. */
    void (*park)(knit__link_t *l, bool (*more)(void *ctx), void *ctx);

    /* Host: no more requests; the worker reads end-of-stream after the last one (a
     * shared-memory link says it with the lane's stop word instead). */
    void (*end_tx)(knit__link_t *l);

    /* IN_PLACE only (else NULL): which tasks (by index) read their argument in place. The
     * array is borrowed for the link's life. */
    void (*set_in_place)(knit__link_t *l, const bool *tasks, uint32_t ntasks);

    /* Worker side of a shared request lock: take at most `n` frames per drain (1 while tasks
     * run long, so the others can take the rest). NULL elsewhere. */
    void (*set_claim)(knit__link_t *l, uint32_t n);

    /* Host side of a shared request lock: consumer `c` is gone; the others stop waiting for
     * it. NULL elsewhere. */
    void (*retire)(knit__link_t *l, uint32_t c);

    /* The peer is gone: release every frame still held in either direction (values that
     * reference shared buffers or moved memory). Does not block. */
    void (*discard)(knit__link_t *l);

    /* Close and free the link (not the lane memory). */
    void (*close)(knit__link_t *l);

    /* The ops of this transport's shared request lock - one lock several workers steal calls
     * from - or NULL when the transport has none (work stealing then is unsupported). */
    const knit__link_ops_t *shared_lock;
};

/* What every link starts with; the rest is its transport's own (transports/<name>/). */
struct knit__link {
    const knit__link_ops_t *ops;
    knit__side_t side;
};

/* The operations of a transport, or NULL for an unknown one (transports/registry.c). */
const knit__link_ops_t *knit__transport_ops(knit_transport_t t);

/* Close a descriptor pair from pair() that no link took (a socket once); -1 entries are
 * skipped, and both become -1. */
static inline void knit__link_fds_close(int fds[2])
{
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0 && fds[1] != fds[0])
        close(fds[1]);
    fds[0] = fds[1] = -1;
}

static inline bool knit__link_has(const knit__link_ops_t *ops, unsigned flag)
{
    return (ops->flags & flag) != 0;
}

static inline int knit__link_open(
    const knit__link_ops_t *ops, const knit__link_params_t *params, knit__link_t **out)
{
    return ops->open(params, out);
}

static inline void knit__link_close(knit__link_t **l)
{
    if (*l)
        (*l)->ops->close(*l);
    *l = NULL;
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

static inline void knit__link_wake_peer(knit__link_t *l)
{
    l->ops->wake_peer(l);
}

#endif
