/* knit transports - opening a lane's link and making the descriptors of a message transport. */
#define _GNU_SOURCE
#include "transports/link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/error.h"

static const char *const names[] = {"knit", "pipe", "unix", "seqpacket", "tcp"};

const char *knit_transport_name(knit_transport_t t)
{
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

int knit_transport_parse(const char *name, knit_transport_t *out)
{
    for (unsigned i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i])) {
            *out = (knit_transport_t)i;
            return 0;
        }
    return knit__err(KNIT_E_INVAL, "unknown transport '%s' (knit, pipe, unix, seqpacket, tcp)",
        name ? name : "(null)");
}

void knit__link_fds_close(int fds[2])
{
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0 && fds[1] != fds[0])
        close(fds[1]);
    fds[0] = fds[1] = -1;
}

static int nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* A connected loopback TCP pair: listen on an ephemeral port, connect, accept. */
static int tcp_pair(int out[2])
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int c = -1, s = -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 1) < 0
        || getsockname(ls, (struct sockaddr *)&a, &alen) < 0)
        goto fail;
    c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0)
        goto fail;
    s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (s < 0 || nodelay(c) < 0 || nodelay(s) < 0)
        goto fail;
    close(ls);
    out[0] = c;
    out[1] = s;
    return 0;
fail:;
    int e = errno;
    if (ls >= 0)
        close(ls);
    if (c >= 0)
        close(c);
    if (s >= 0)
        close(s);
    return knit__err(KNIT_E_SYS, "a loopback TCP connection on 127.0.0.1: %s", strerror(e));
}

int knit__link_fds(knit_transport_t t, int host[2], int worker[2])
{
    host[0] = host[1] = worker[0] = worker[1] = -1;
    int a[2], b[2];
    switch (t) {
    case KNIT_TRANSPORT_PIPE:
        if (pipe2(a, O_CLOEXEC) < 0)
            return knit__err(KNIT_E_SYS, "pipe2: %s", strerror(errno));
        if (pipe2(b, O_CLOEXEC) < 0) {
            int e = errno;
            close(a[0]);
            close(a[1]);
            return knit__err(KNIT_E_SYS, "pipe2: %s", strerror(e));
        }
        /* a: requests (host writes, worker reads); b: results (worker writes, host reads) */
        host[0] = b[0];
        host[1] = a[1];
        worker[0] = a[0];
        worker[1] = b[1];
        return 0;
    case KNIT_TRANSPORT_UNIX:
    case KNIT_TRANSPORT_SEQPACKET: {
        int type = t == KNIT_TRANSPORT_UNIX ? SOCK_STREAM : SOCK_SEQPACKET;
        if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, a) < 0)
            return knit__err(KNIT_E_SYS, "socketpair(AF_UNIX, %s): %s",
                t == KNIT_TRANSPORT_UNIX ? "SOCK_STREAM" : "SOCK_SEQPACKET", strerror(errno));
        break;
    }
    case KNIT_TRANSPORT_TCP: {
        int rc = tcp_pair(a);
        if (rc < 0)
            return rc;
        break;
    }
    default:
        return knit__err(KNIT_E_INVAL, "transport %d has no descriptors", (int)t);
    }
    host[0] = host[1] = a[0];
    worker[0] = worker[1] = a[1];
    return 0;
}

int knit__link_open(knit__link_t *l, knit_transport_t t, knit__side_t side,
    const knit__shm_lane_t *mem, const int fds[2])
{
    memset(l, 0, sizeof *l);
    l->side = side;
    l->mem = mem;
    l->fd_rx = l->fd_tx = -1;
    if (t == KNIT_TRANSPORT_KNIT) {
        knit__endpoint_init(&l->ep, mem, side);
        l->ops = &knit__link_knit_ops;
        return 0;
    }
    l->fd_rx = fds[0];
    l->fd_tx = fds[1];
    if (l->fd_rx < 0 || l->fd_tx < 0) {
        int own[2] = {l->fd_rx, l->fd_tx};
        knit__link_fds_close(own);
        return knit__err(KNIT_E_INVAL, "the %s transport needs two descriptors", names[t]);
    }
    knit__codec_cfg_t codec = {
        .max_payload_bytes = mem->cfg.max_payload_bytes,
        .process_boundary = mem->cfg.process_boundary,
    };
    bool sock = t != KNIT_TRANSPORT_PIPE;
    uint32_t rec = t == KNIT_TRANSPORT_SEQPACKET ? KNIT__SEQPACKET_RECORD : 0;
    int rc = knit__fs_writer_init(&l->tx, l->fd_tx, sock, rec, &codec);
    if (rc == 0)
        rc = knit__fs_reader_init(&l->rx, l->fd_rx, sock, rec, &codec);
    l->ops = &knit__link_stream_ops;
    if (rc < 0)
        knit__link_close(l);
    return rc;
}

void knit__link_close(knit__link_t *l)
{
    if (l->ops)
        l->ops->close(l);
    l->ops = NULL;
}
