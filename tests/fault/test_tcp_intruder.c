/*
 * The tcp transport listens on a loopback port for a moment while it connects a lane's two
 * ends: another local process that connects first must not become the worker's peer.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transports/link.h"
#include "transports/stream/pair.h"

static int listening(struct sockaddr_in *a)
{
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(ls >= 0);
    *a = (struct sockaddr_in) {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof *a;
    assert_int_equal(bind(ls, (struct sockaddr *)a, sizeof *a), 0);
    assert_int_equal(listen(ls, 8), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)a, &len), 0);
    return ls;
}

static void test_first_connection_is_not_trusted(void **s)
{
    (void)s;
    struct sockaddr_in a;
    int ls = listening(&a);
    int intruder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(intruder, (struct sockaddr *)&a, sizeof a), 0);
    int host[2], worker[2];
    assert_int_equal(knit__tcp_pair_on(ls, host, worker), 0);
    close(ls);
    /* the worker's peer is the host's end */
    struct sockaddr_in h, w;
    socklen_t hl = sizeof h, wl = sizeof w;
    assert_int_equal(getsockname(host[0], (struct sockaddr *)&h, &hl), 0);
    assert_int_equal(getpeername(worker[0], (struct sockaddr *)&w, &wl), 0);
    assert_int_equal(h.sin_port, w.sin_port);
    /* and what the host writes reaches the worker */
    assert_int_equal(write(host[1], "ping", 4), 4);
    char buf[8] = {0};
    assert_int_equal(read(worker[0], buf, sizeof buf), 4);
    assert_memory_equal(buf, "ping", 4);
    /* the intruder was hung up on */
    ssize_t n = read(intruder, buf, sizeof buf);
    assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
    close(intruder);
    knit__link_fds_close(host);
    knit__link_fds_close(worker);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_connection_is_not_trusted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
