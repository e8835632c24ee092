/* knit tests - helpers shared by the unit tests. */
#include "testutil.h"

#include <dirent.h>
#include <stdlib.h>

uint64_t knit_test_scale(void)
{
    const char *s = getenv("KNIT_TEST_SCALE");
    long v = s ? strtol(s, NULL, 10) : 1;
    return v > 0 ? (uint64_t)v : 1;
}

uint64_t knit_test_iters(uint64_t n, uint64_t floor)
{
    uint64_t v = n / knit_test_scale();
    return v < floor ? floor : v;
}

int knit_test_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n - 1; /* the directory's own descriptor */
}

knit_test_lane_t *knit_test_lane_open(const knit__lane_cfg_t *cfg)
{
    knit_test_lane_t *l = calloc(1, sizeof *l);
    assert_non_null(l);
    assert_int_equal(knit__shm_lane_create(&l->lane, cfg), 0);
    knit__endpoint_init(&l->host, &l->lane, KNIT__SIDE_HOST);
    knit__endpoint_init(&l->worker, &l->lane, KNIT__SIDE_WORKER);
    return l;
}

void knit_test_lane_close(knit_test_lane_t *l)
{
    knit__shm_lane_close(&l->lane);
    free(l);
}

int knit_test_lane_setup(void **state)
{
    knit__lane_cfg_t cfg = {.payload_max_bytes = 1u << 20};
    *state = knit_test_lane_open(&cfg);
    return 0;
}

int knit_test_lane_teardown(void **state)
{
    knit_test_lane_close(*state);
    return 0;
}

int knit_test_capture_cb(void *ctx, knit__msg_t *msg)
{
    knit_test_capture_t *c = ctx;
    if (c->n >= KNIT_TEST_CAPTURE_MAX)
        return -1;
    c->msgs[c->n++] = *msg;
    return 0;
}

void knit_test_log_release(void *data, void *ctx)
{
    knit_test_release_log_t *log = ctx;
    log->calls++;
    log->data = data;
    log->ctx = ctx;
    free(data);
}

void knit_test_error_chain(knit_error_value_t *chain, knit_value_t *vals, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        chain[i] = (knit_error_value_t) {
            .name = "E", .message = "m", .cause = i < n - 1 ? &vals[i + 1] : NULL};
        vals[i] = knit_v_error(&chain[i]);
    }
}
