/*
 * The message transports' link (transports/stream/link.c) at shutdown: discarding what the
 * peer sent releases every buffer those frames carry, whatever state the link's own sending
 * side is in.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "transports/link.h"

static int released;

static void count_release(void *data, void *ctx)
{
    (void)ctx;
    free(data);
    released++;
}

static const knit__codec_cfg_t codec = {.max_payload_bytes = 16u << 20};

static void open_pair(knit_transport_t t, knit__link_t **host, knit__link_t **worker)
{
    const knit__link_ops_t *ops = knit__transport_ops(t);
    int h[2], w[2];
    assert_int_equal(ops->pair(h, w), 0);
    knit__link_params_t hp = {.side = KNIT__SIDE_HOST, .codec = codec, .fds = {h[0], h[1]}};
    knit__link_params_t wp = {.side = KNIT__SIDE_WORKER, .codec = codec, .fds = {w[0], w[1]}};
    assert_int_equal(knit__link_open(ops, &hp, host), 0);
    assert_int_equal(knit__link_open(ops, &wp, worker), 0);
}

/* The host's last request is only partly written (the worker stopped reading) when the pool
 * closes; the worker's last result, a moved buffer, sits whole in the pipe. Discarding the
 * host's link must read and release it even though its own sending side cannot go on. */
static void discard_releases_with_a_stuck_sender(knit_transport_t t)
{
    knit__link_t *host, *worker;
    open_pair(t, &host, &worker);
    size_t big = 4u << 20; /* far more than a pipe or socket buffer holds */
    uint8_t *bytes = calloc(1, big);
    assert_non_null(bytes);
    knit_value_t req = knit_v_bytes(bytes, big);
    assert_int_equal(knit__link_send(host, 0, 1, 0, &req), 0); /* accepted, partly written */
    knit_moved_buf_t *m;
    released = 0;
    assert_int_equal(knit_moved_new(malloc(32), 32, count_release, NULL, &m), 0);
    knit_value_t res = knit_v_moved(m);
    res.flags |= KNIT_VF_OWNED;
    assert_int_equal(knit__link_send(worker, 0, 1, 0, &res), 0);
    host->ops->end_tx(host); /* the host stops: no more requests */
    host->ops->discard(host);
    assert_int_equal(released, 1);
    knit__link_close(&worker);
    knit__link_close(&host);
    free(bytes);
}

static void test_discard_with_a_stuck_sender(void **s)
{
    (void)s;
    for (int t = KNIT_TRANSPORT_PIPE; t <= KNIT_TRANSPORT_TCP; t++)
        discard_releases_with_a_stuck_sender((knit_transport_t)t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_discard_with_a_stuck_sender),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
