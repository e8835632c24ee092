/*
 * knit transports/stream - the lane contract (transports/link.h) for the message transports:
 * frames over two pipes, a Unix stream or seqpacket socket pair, or a loopback TCP connection.
 * Both sides wait in poll(); a write is the wake-up.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/error.h"
#include "transports/link.h"

static int stream_send(
    knit__link_t *l, uint32_t w0, uint32_t id, uint32_t stamp_ms, knit_value_t *v)
{
    if (l->side == KNIT__SIDE_HOST && l->outstanding >= KNIT__LINK_WINDOW)
        return KNIT_E_FULL; /* the same 32-request window as the shared slots */
    if (knit__fs_busy(&l->tx)) {
        int rc = knit__fs_flush(&l->tx);
        if (rc == KNIT_E_AGAIN)
            return KNIT_E_FULL;
        if (rc < 0)
            return rc;
    }
    int rc = knit__fs_send(&l->tx, w0, id, stamp_ms, l->tx_seq, v);
    if (rc == 0) {
        l->tx_seq++;
        if (l->side == KNIT__SIDE_HOST)
            l->outstanding++;
    }
    return rc;
}

static int stream_drain(knit__link_t *l, knit__frame_cb cb, void *ctx)
{
    if (knit__fs_busy(&l->tx)) {
        int rc = knit__fs_flush(&l->tx);
        if (rc < 0 && rc != KNIT_E_AGAIN)
            return rc;
    }
    int n = 0;
    for (;;) {
        knit__msg_t m;
        int rc = knit__fs_recv(&l->rx, &m);
        if (rc == KNIT_E_AGAIN)
            return n;
        if (rc < 0)
            return rc;
        if (l->side == KNIT__SIDE_HOST && l->outstanding)
            l->outstanding--;
        n++;
        rc = cb(ctx, &m);
        if (rc < 0)
            return rc;
    }
}

static bool stream_ready(const knit__link_t *l)
{
    (void)l; /* waited for with poll() */
    return false;
}

static bool stream_can_send(knit__link_t *l)
{
    return !knit__fs_busy(&l->tx)
        && (l->side == KNIT__SIDE_WORKER || l->outstanding < KNIT__LINK_WINDOW);
}

static void stream_wake_peer(knit__link_t *l)
{
    (void)l; /* the write woke the reader */
}

static unsigned stream_wait_fds(const knit__link_t *l, struct pollfd *out)
{
    unsigned n = 0;
    if (l->fd_rx >= 0)
        out[n++] = (struct pollfd) {.fd = l->fd_rx, .events = POLLIN};
    if (l->fd_tx >= 0 && knit__fs_busy(&l->tx)) {
        if (n && l->fd_tx == l->fd_rx)
            out[0].events |= POLLOUT;
        else
            out[n++] = (struct pollfd) {.fd = l->fd_tx, .events = POLLOUT};
    }
    return n;
}

static void stream_end_tx(knit__link_t *l)
{
    if (l->fd_tx < 0)
        return;
    if (l->fd_tx == l->fd_rx) {
        shutdown(l->fd_tx, SHUT_WR); /* the socket stays open for reading */
    } else {
        close(l->fd_tx);
        l->fd_tx = -1;
        l->tx.end.fd = -1;
    }
}

static void stream_close(knit__link_t *l)
{
    knit__fs_writer_fini(&l->tx);
    knit__fs_reader_fini(&l->rx);
    int fds[2] = {l->fd_rx, l->fd_tx};
    knit__link_fds_close(fds);
    l->fd_rx = l->fd_tx = -1;
}

const knit__link_ops_t knit__link_stream_ops = {
    .name = "stream",
    .uses_fds = true,
    .send = stream_send,
    .drain = stream_drain,
    .ready = stream_ready,
    .can_send = stream_can_send,
    .wake_peer = stream_wake_peer,
    .wait_fds = stream_wait_fds,
    .end_tx = stream_end_tx,
    .close = stream_close,
};
