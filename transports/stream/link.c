/*
 * knit transports/stream - the link contract (transports/link.h) for the message transports:
 * frames over two pipes, a Unix stream or seqpacket socket pair, or a loopback TCP connection.
 * Both sides wait in poll(); a write is the wake-up.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/error.h"
#include "transports/stream/frame_stream.h"
#include "transports/stream/link.h"
#include "transports/stream/pair.h"

#define KNIT__SEQPACKET_RECORD 65536u /* the record size of SOCK_SEQPACKET frames */

typedef struct stream_link {
    knit__link_t base;
    knit__fs_writer_t tx;
    knit__fs_reader_t rx;
    int fd_rx, fd_tx;     /* owned; a socket appears twice */
    uint32_t tx_seq;      /* publication numbers (header word 7) */
    uint32_t outstanding; /* host: requests sent and not answered yet */
} stream_link_t;

static stream_link_t *stream(const knit__link_t *l)
{
    return (stream_link_t *)l;
}

static void stream_close(knit__link_t *l)
{
    stream_link_t *s = stream(l);
    knit__fs_writer_fini(&s->tx);
    knit__fs_reader_fini(&s->rx);
    int fds[2] = {s->fd_rx, s->fd_tx};
    knit__link_fds_close(fds);
    free(s);
}

/* Open with the transport's framing: a socket or not, and records of `rec` bytes or a stream. */
static int stream_open(const knit__link_ops_t *ops, bool sock, uint32_t rec,
    const knit__link_params_t *params, knit__link_t **out)
{
    int fds[2] = {params->fds[0], params->fds[1]};
    if (fds[0] < 0 || fds[1] < 0) {
        knit__link_fds_close(fds);
        return knit__err(KNIT_E_INVAL, "the %s transport needs two descriptors", ops->name);
    }
    stream_link_t *s = calloc(1, sizeof *s);
    if (!s) {
        knit__link_fds_close(fds);
        return knit__err(KNIT_E_NOMEM, "a %s link", ops->name);
    }
    s->base = (knit__link_t) {.ops = ops, .side = params->side};
    s->fd_rx = fds[0];
    s->fd_tx = fds[1];
    int rc = knit__fs_writer_init(&s->tx, s->fd_tx, sock, rec, &params->codec);
    if (rc == 0)
        rc = knit__fs_reader_init(&s->rx, s->fd_rx, sock, rec, &params->codec);
    if (rc < 0) {
        stream_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

static int pipe_open(const knit__link_params_t *p, knit__link_t **out)
{
    return stream_open(&knit__pipe_link_ops, false, 0, p, out);
}

static int unix_open(const knit__link_params_t *p, knit__link_t **out)
{
    return stream_open(&knit__unix_link_ops, true, 0, p, out);
}

static int seqpacket_open(const knit__link_params_t *p, knit__link_t **out)
{
    return stream_open(&knit__seqpacket_link_ops, true, KNIT__SEQPACKET_RECORD, p, out);
}

static int tcp_open(const knit__link_params_t *p, knit__link_t **out)
{
    return stream_open(&knit__tcp_link_ops, true, 0, p, out);
}

static int stream_send(
    knit__link_t *l, uint32_t w0, uint32_t id, uint32_t stamp_ms, knit_value_t *v)
{
    stream_link_t *s = stream(l);
    if (l->side == KNIT__SIDE_HOST && s->outstanding >= KNIT__LINK_WINDOW)
        return KNIT_E_FULL; /* the same 32-request window as the shared slots */
    if (knit__fs_busy(&s->tx)) {
        int rc = knit__fs_flush(&s->tx);
        if (rc == KNIT_E_AGAIN)
            return KNIT_E_FULL;
        if (rc < 0)
            return rc;
    }
    int rc = knit__fs_send(&s->tx, w0, id, stamp_ms, s->tx_seq, v);
    if (rc == 0) {
        s->tx_seq++;
        if (l->side == KNIT__SIDE_HOST)
            s->outstanding++;
    }
    return rc;
}

/* Hand every complete frame received so far to `cb`. */
static int receive(knit__link_t *l, knit__frame_cb cb, void *ctx)
{
    stream_link_t *s = stream(l);
    int n = 0;
    for (;;) {
        knit__msg_t m;
        int rc = knit__fs_recv(&s->rx, &m);
        if (rc == KNIT_E_AGAIN)
            return n;
        if (rc < 0)
            return rc;
        if (l->side == KNIT__SIDE_HOST && s->outstanding)
            s->outstanding--;
        n++;
        rc = cb(ctx, &m);
        if (rc < 0)
            return rc;
    }
}

static int stream_drain(knit__link_t *l, knit__frame_cb cb, void *ctx)
{
    stream_link_t *s = stream(l);
    if (knit__fs_busy(&s->tx)) {
        int rc = knit__fs_flush(&s->tx);
        if (rc < 0 && rc != KNIT_E_AGAIN)
            return rc;
    }
    return receive(l, cb, ctx);
}

/* A non-blocking poll() of the receiving end: what a busy-polling reader pays per check. */
static bool stream_ready(const knit__link_t *l)
{
    const stream_link_t *s = stream(l);
    struct pollfd p = {.fd = s->fd_rx, .events = POLLIN};
    return s->fd_rx >= 0 && poll(&p, 1, 0) > 0;
}

static bool stream_can_send(knit__link_t *l)
{
    stream_link_t *s = stream(l);
    return !knit__fs_busy(&s->tx)
        && (l->side == KNIT__SIDE_WORKER || s->outstanding < KNIT__LINK_WINDOW);
}

static void stream_wake_peer(knit__link_t *l)
{
    (void)l; /* the write woke the reader */
}

static unsigned stream_wait_fds(const knit__link_t *l, struct pollfd *out)
{
    const stream_link_t *s = stream(l);
    unsigned n = 0;
    if (s->fd_rx >= 0)
        out[n++] = (struct pollfd) {.fd = s->fd_rx, .events = POLLIN};
    if (s->fd_tx >= 0 && knit__fs_busy(&s->tx)) {
        if (n && s->fd_tx == s->fd_rx)
            out[0].events |= POLLOUT;
        else
            out[n++] = (struct pollfd) {.fd = s->fd_tx, .events = POLLOUT};
    }
    return n;
}

/* Worker: block in poll() until a request (or end of stream) arrives, or a partly written
 * result can go on. */
static void stream_park(knit__link_t *l, bool (*more)(void *ctx), void *ctx)
{
    if (more(ctx))
        return; /* e.g. a drain finished the frame that held results back: send them now */
    struct pollfd fds[2];
    unsigned n = stream_wait_fds(l, fds);
    if (n)
        poll(fds, n, -1); /* EINTR: the caller looks again */
}

static void stream_end_tx(knit__link_t *l)
{
    stream_link_t *s = stream(l);
    if (s->fd_tx < 0)
        return;
    if (s->fd_tx == s->fd_rx) {
        shutdown(s->fd_tx, SHUT_WR); /* the socket stays open for reading */
    } else {
        close(s->fd_tx);
        s->fd_tx = -1;
        s->tx.end.fd = -1;
    }
}

static int discard_frame(void *ctx, knit__msg_t *m)
{
    (void)ctx;
    knit_value_free(&m->value);
    return 0;
}

static void stream_discard(knit__link_t *l)
{
    /* every frame the peer sent, from our buffer and the kernel's: a frame of pointers (a
     * moved or shared buffer, threads only) holds a reference. Only reading: our own sending
     * side may be stuck or closed (a partly written frame is released when the link
     * closes), and must not stop the reading. */
    receive(l, discard_frame, NULL);
}

#define STREAM_OPS(NAME, OPEN, PAIR)                                                               \
    {                                                                                              \
        .name = NAME, .flags = KNIT__LINK_USES_FDS, .pair = PAIR, .open = OPEN,                    \
        .send = stream_send, .send_hook = NULL, .drain = stream_drain, .ready = stream_ready,      \
        .can_send = stream_can_send, .wake_peer = stream_wake_peer, .wait_fds = stream_wait_fds,   \
        .park = stream_park, .end_tx = stream_end_tx, .set_in_place = NULL, .set_claim = NULL,     \
        .retire = NULL, .discard = stream_discard, .close = stream_close, .shared_lock = NULL,     \
    }

const knit__link_ops_t knit__pipe_link_ops = STREAM_OPS("pipe", pipe_open, knit__pipe_pair);
const knit__link_ops_t knit__unix_link_ops = STREAM_OPS("unix", unix_open, knit__unix_pair);
const knit__link_ops_t knit__seqpacket_link_ops
    = STREAM_OPS("seqpacket", seqpacket_open, knit__seqpacket_pair);
const knit__link_ops_t knit__tcp_link_ops = STREAM_OPS("tcp", tcp_open, knit__tcp_pair);
