/* knit transports/stream - the descriptors of one lane for each message transport. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

/* A connected loopback TCP pair: listen on an ephemeral port, connect, accept. */
int knit__tcp_pair(int host[2], int worker[2])
{
    host[0] = host[1] = worker[0] = worker[1] = -1;
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
    host[0] = host[1] = c;
    worker[0] = worker[1] = s;
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
