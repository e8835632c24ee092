/* Frames over pipes, Unix stream and seqpacket sockets and TCP loopback (transports/stream). */
#define _GNU_SOURCE
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "transports/stream/frame_stream.h"

enum kind { PIPE, UNIX_STREAM, SEQPACKET, TCP };
static const char *const kind_names[] = {"pipe", "unix", "seqpacket", "tcp"};
#define RECORD_MAX (32u * 1024u)

typedef struct chan {
    int rfd, wfd;
    bool socket;
    uint32_t record_max;
} chan_t;

static void tcp_pair(int fds[2])
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(fds[0], (struct sockaddr *)&a, sizeof a), 0);
    fds[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    assert_true(fds[1] >= 0);
    int one = 1;
    setsockopt(fds[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fds[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    close(l);
}

static chan_t open_chan(enum kind k)
{
    int fds[2];
    chan_t c = {.socket = k != PIPE, .record_max = k == SEQPACKET ? RECORD_MAX : 0};
    if (k == PIPE)
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    else if (k == TCP)
        tcp_pair(fds);
    else
        assert_int_equal(
            socketpair(
                AF_UNIX, (k == SEQPACKET ? SOCK_SEQPACKET : SOCK_STREAM) | SOCK_CLOEXEC, 0, fds),
            0);
    c.rfd = fds[0];
    c.wfd = fds[1];
    return c;
}

static const knit__codec_cfg_t codec = {.max_payload_bytes = 16u << 20};

/* The value of frame i: sizes from 0 to 8 MiB of several kinds, derived from i. */
static size_t frame_size(int i)
{
    static const size_t sizes[] = {0, 1, 8, 511, 512, 513, 4096, 65536, 300000, 8u << 20};
    return sizes[i % 10];
}

static uint8_t *pattern(int i, size_t n)
{
    uint8_t *b = malloc(n + 1);
    for (size_t k = 0; k < n; k++)
        b[k] = (uint8_t)(i * 131 + k * 7);
    return b;
}

typedef struct sender {
    chan_t c;
    int n;
    int rc; /* first failure; checked by the main thread */
} sender_t;

static void *send_all(void *arg)
{
    sender_t *s = arg;
    knit__fs_writer_t w;
    s->rc = knit__fs_writer_init(&w, s->c.wfd, s->c.socket, s->c.record_max, &codec);
    for (int i = 0; s->rc == 0 && i < s->n; i++) {
        size_t n = frame_size(i);
        uint8_t *b = pattern(i, n);
        knit_value_t v = i % 3 == 0 ? knit_v_bytes(b, n)
            : i % 3 == 1            ? knit_v_strn((const char *)b, n)
                                    : knit_v_int64(i);
        int rc = knit__fs_send(&w, (uint32_t)i, (uint32_t)(i * 2), 0, (uint32_t)i, &v);
        while (rc == 0 && knit__fs_busy(&w)) {
            struct pollfd p = {.fd = s->c.wfd, .events = POLLOUT};
            poll(&p, 1, 1000);
            rc = knit__fs_flush(&w);
            if (rc == KNIT_E_AGAIN)
                rc = 0;
        }
        free(b);
        s->rc = rc;
    }
    knit__fs_writer_fini(&w);
    return NULL;
}

static void round_trip(enum kind k, int frames)
{
    chan_t c = open_chan(k);
    sender_t s = {.c = c, .n = frames};
    pthread_t th;
    pthread_create(&th, NULL, send_all, &s);
    knit__fs_reader_t r;
    assert_int_equal(knit__fs_reader_init(&r, c.rfd, c.socket, c.record_max, &codec), 0);
    for (int i = 0; i < frames;) {
        knit__msg_t m;
        int rc = knit__fs_recv(&r, &m);
        if (rc == KNIT_E_AGAIN) {
            struct pollfd p = {.fd = c.rfd, .events = POLLIN};
            poll(&p, 1, 1000);
            continue;
        }
        if (rc != 0)
            print_error("%s frame %d: %s\n", kind_names[k], i, knit_errmsg());
        assert_int_equal(rc, 0);
        assert_int_equal(m.status, 0);
        assert_int_equal(m.w0, (uint32_t)i);
        assert_int_equal(m.id, (uint32_t)(i * 2));
        assert_int_equal(m.seq, (uint32_t)i);
        size_t n = frame_size(i);
        if (i % 3 == 2) {
            assert_int_equal(m.value.kind, KNIT_KIND_INT64);
            assert_int_equal(m.value.u.i64, i);
        } else {
            uint8_t *b = pattern(i, n);
            assert_int_equal(m.value.kind, i % 3 ? KNIT_KIND_STRING : KNIT_KIND_BYTES);
            assert_int_equal(m.value.len, n);
            if (n)
                assert_memory_equal(m.value.u.ptr, b, n);
            free(b);
        }
        knit_value_free(&m.value);
        i++;
    }
    pthread_join(th, NULL);
    assert_int_equal(s.rc, 0);
    knit__fs_reader_fini(&r);
    close(c.rfd);
    close(c.wfd);
}

static void test_pipe_round_trip(void **st)
{
    (void)st;
    round_trip(PIPE, 30);
}

static void test_unix_round_trip(void **st)
{
    (void)st;
    round_trip(UNIX_STREAM, 30);
}

static void test_seqpacket_round_trip(void **st)
{
    (void)st;
    round_trip(SEQPACKET, 30);
}

static void test_tcp_round_trip(void **st)
{
    (void)st;
    round_trip(TCP, 30);
}

/* Signals interrupt the transfer of 8 MiB frames many times (no SA_RESTART). */
static void on_alarm(int sig)
{
    (void)sig;
}

static void test_eintr_is_retried(void **st)
{
    (void)st;
    struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 200}, {0, 200}};
    setitimer(ITIMER_REAL, &it, NULL);
    round_trip(PIPE, 20);
    round_trip(UNIX_STREAM, 20);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_DFL);
}

/* Raw bytes to a reader; it must refuse them with KNIT_E_CORRUPT and never over-read. */
static int feed(enum kind k, const void *bytes, size_t n, bool close_after)
{
    chan_t c = open_chan(k);
    assert_int_equal(write(c.wfd, bytes, n), (ssize_t)n);
    if (close_after)
        close(c.wfd);
    knit__fs_reader_t r;
    assert_int_equal(knit__fs_reader_init(&r, c.rfd, c.socket, c.record_max, &codec), 0);
    knit__msg_t m;
    int rc;
    while ((rc = knit__fs_recv(&r, &m)) == KNIT_E_AGAIN) {
        struct pollfd p = {.fd = c.rfd, .events = POLLIN};
        if (poll(&p, 1, 200) == 0)
            break;
    }
    if (rc == 0)
        knit_value_free(&m.value);
    knit__fs_reader_fini(&r);
    close(c.rfd);
    if (!close_after)
        close(c.wfd);
    return rc;
}

static void test_malformed_frames_fail_cleanly(void **st)
{
    (void)st;
    uint32_t f[12] = {0};
    for (int k = PIPE; k <= UNIX_STREAM; k++) {
        f[0] = 8; /* shorter than a header */
        assert_int_equal(feed(k, f, 4, false), KNIT_E_CORRUPT);
        f[0] = 0xFFFFFFF0u; /* longer than any frame this codec allows */
        assert_int_equal(feed(k, f, 4, false), KNIT_E_CORRUPT);
        f[0] = 36;
        f[1 + KNIT__W_TAG] = 200; /* unknown tag */
        assert_int_equal(feed(k, f, 40, false), KNIT_E_CORRUPT);
        f[1 + KNIT__W_TAG] = 15; /* StaticString with 600 static bytes */
        f[9] = 600;
        f[0] = 36 + 600;
        uint8_t big[4 + 36 + 600] = {0};
        memcpy(big, f, 40);
        assert_int_equal(feed(k, big, sizeof big, false), KNIT_E_CORRUPT);
        f[0] = 36 + 10; /* a body that never comes: the peer ends inside the frame - it died */
        f[9] = 10;
        f[1 + KNIT__W_LEN] = 10;
        assert_int_equal(feed(k, f, 40, true), KNIT_E_WORKER_DIED);
        assert_non_null(strstr(knit_errmsg(), "inside a frame"));
        f[1 + KNIT__W_TAG] = 10; /* Null with bytes it should not have */
        f[9] = 0;
        f[0] = 36 + 4;
        assert_int_equal(feed(k, f, 44, false), KNIT_E_CORRUPT);
        memset(f, 0, sizeof f);
    }
}

static void test_peer_death(void **st)
{
    (void)st;
    for (int k = PIPE; k <= TCP; k++) {
        chan_t c = open_chan(k);
        close(c.rfd); /* the reader is gone: writing must fail, not kill us with SIGPIPE */
        knit__fs_writer_t w;
        assert_int_equal(knit__fs_writer_init(&w, c.wfd, c.socket, c.record_max, &codec), 0);
        knit_value_t v = knit_v_int64(1);
        int rc = knit__fs_send(&w, 0, 0, 0, 0, &v);
        if (k == TCP && rc == 0) /* TCP may accept one write before it learns of the reset */
            rc = knit__fs_send(&w, 0, 0, 0, 0, &v);
        assert_int_equal(rc, KNIT_E_WORKER_DIED);
        knit__fs_writer_fini(&w);
        close(c.wfd);

        c = open_chan(k);
        close(c.wfd); /* the writer is gone: a clean end of stream */
        knit__fs_reader_t r;
        assert_int_equal(knit__fs_reader_init(&r, c.rfd, c.socket, c.record_max, &codec), 0);
        knit__msg_t m;
        assert_int_equal(knit__fs_recv(&r, &m), KNIT_E_WORKER_DIED);
        knit__fs_reader_fini(&r);
        close(c.rfd);
    }
}

static int released;

static void count_release(void *data, void *ctx)
{
    (void)ctx;
    free(data);
    released++;
}

/* A moved buffer whose frame the peer never got whole (its pipe full when the link closed) is
 * released by the writer, not leaked. */
static void test_unsent_moved_buffer_is_released(void **st)
{
    (void)st;
    int fds[2];
    assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    int cap = fcntl(fds[1], F_SETPIPE_SZ, 4096);
    assert_true(cap >= 4096);
    knit__fs_writer_t w;
    assert_int_equal(knit__fs_writer_init(&w, fds[1], false, 0, &codec), 0);
    /* fill the pipe to 20 bytes short of full: the next frame goes in part only */
    uint8_t junk[256] = {0};
    for (int left = cap - 20; left > 0;) {
        ssize_t n = write(fds[1], junk, left < (int)sizeof junk ? (size_t)left : sizeof junk);
        assert_true(n > 0);
        left -= (int)n;
    }
    knit_moved_buf_t *m;
    released = 0;
    assert_int_equal(knit_moved_new(malloc(64), 64, count_release, NULL, &m), 0);
    knit_value_t v = knit_v_moved(m);
    v.flags |= KNIT_VF_OWNED;
    assert_int_equal(knit__fs_send(&w, 0, 1, 0, 0, &v), 0);
    assert_true(knit__fs_busy(&w)); /* part of the frame is in the pipe, the rest pending */
    assert_int_equal(released, 0);
    knit__fs_writer_fini(&w);
    assert_int_equal(released, 1);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_pipe_round_trip),
        cmocka_unit_test(test_unix_round_trip),
        cmocka_unit_test(test_seqpacket_round_trip),
        cmocka_unit_test(test_tcp_round_trip),
        cmocka_unit_test(test_eintr_is_retried),
        cmocka_unit_test(test_malformed_frames_fail_cleanly),
        cmocka_unit_test(test_peer_death),
        cmocka_unit_test(test_unsent_moved_buffer_is_released),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
