/* knit transports/stream - the descriptors of one lane for each message transport. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/error.h"
#include "transports/link.h"
#include "transports/stream/pair.h"

int knit__pipe_pair(int host[2], int worker[2])
{
    int a[2], b[2];
    host[0] = host[1] = worker[0] = worker[1] = -1;
    if (pipe2(a, O_CLOEXEC) < 0)
        return knit__err(KNIT_E_SYS, "pipe2: %s", strerror(errno));
    if (pipe2(b, O_CLOEXEC) < 0) {
        int e = errno;
        knit__link_fds_close(a);
        return knit__err(KNIT_E_SYS, "pipe2: %s", strerror(e));
    }
    /* a: requests (host writes, worker reads); b: results (worker writes, host reads) */
    host[0] = b[0];
    host[1] = a[1];
    worker[0] = a[0];
    worker[1] = b[1];
    return 0;
}

static int socket_pair(int type, const char *name, int host[2], int worker[2])
{
    int a[2];
    host[0] = host[1] = worker[0] = worker[1] = -1;
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, a) < 0)
        return knit__err(KNIT_E_SYS, "socketpair(AF_UNIX, %s): %s", name, strerror(errno));
    host[0] = host[1] = a[0];
    worker[0] = worker[1] = a[1];
    return 0;
}

int knit__unix_pair(int host[2], int worker[2])
{
    return socket_pair(SOCK_STREAM, "SOCK_STREAM", host, worker);
}

int knit__seqpacket_pair(int host[2], int worker[2])
{
    return socket_pair(SOCK_SEQPACKET, "SOCK_SEQPACKET", host, worker);
}

static int nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The same address (family, address and port). */
static bool same_addr(const struct sockaddr_in *x, const struct sockaddr_in *y)
{
    return x->sin_family == y->sin_family && x->sin_port == y->sin_port
        && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

/* Accept connections on `ls` until the one from `mine` (our own connected socket) comes; others
 * (another local process that raced to the port) are closed. */
static int accept_own(int ls, int mine)
{
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    if (getsockname(mine, (struct sockaddr *)&me, &len) < 0)
        return -1;
    for (unsigned tries = 0; tries < 64; tries++) {
        struct sockaddr_in peer;
        len = sizeof peer;
        int s = accept4(ls, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
        if (s < 0 && errno == EINTR)
            continue;
        if (s < 0 || same_addr(&peer, &me))
            return s;
        close(s); /* not ours */
    }
    errno = EACCES;
    return -1;
}

int knit__tcp_pair_on(int ls, int host[2], int worker[2])
{
    host[0] = host[1] = worker[0] = worker[1] = -1;
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int c = -1, s = -1;
    if (getsockname(ls, (struct sockaddr *)&a, &alen) < 0)
        goto fail;
    c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0)
        goto fail;
    s = accept_own(ls, c);
    if (s < 0 || nodelay(c) < 0 || nodelay(s) < 0)
        goto fail;
    host[0] = host[1] = c;
    worker[0] = worker[1] = s;
    return 0;
fail:;
    int e = errno;
    if (c >= 0)
        close(c);
    if (s >= 0)
        close(s);
    return knit__err(KNIT_E_SYS, "a loopback TCP connection on 127.0.0.1: %s", strerror(e));
}

/* A connected loopback TCP pair: listen on an ephemeral port, connect, accept our own
 * connection. */
int knit__tcp_pair(int host[2], int worker[2])
{
    host[0] = host[1] = worker[0] = worker[1] = -1;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* a backlog of a few: a stranger's connection cannot keep ours out of the queue */
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 8) < 0) {
        int e = errno;
        if (ls >= 0)
            close(ls);
        return knit__err(KNIT_E_SYS, "listening on 127.0.0.1: %s", strerror(e));
    }
    int rc = knit__tcp_pair_on(ls, host, worker);
    close(ls);
    return rc;
}
