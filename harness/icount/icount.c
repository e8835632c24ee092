/*
 * knit-icount - exact instruction counts of the knit transport's single-threaded call path,
 * for valgrind's callgrind: one round is encode + publish of a bytes value on the host's side
 * of a lane, then discover + decode + free + acknowledge on the worker's side. Collection is
 * switched on only around the measured rounds (callgrind client requests), so the count
 * excludes start-up; divide the total by the rounds.
 *
 *   valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=F knit-icount --size 8
 *
 * tests/bench/icount.sh runs it for 8 B and 4 KiB and checks the counts against the committed
 * reference results/baseline/icount.json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <valgrind/callgrind.h>

#include "transports/shm/shm_lane.h"

static int take(void *ctx, knit__msg_t *m)
{
    size_t *bad = ctx;
    *bad += m->status != 0 || m->value.kind != KNIT_KIND_BYTES;
    knit_value_free(&m->value);
    return 0;
}

static int round_trip(knit__endpoint_t *host, knit__endpoint_t *worker, const uint8_t *buf,
    size_t size, uint32_t id, size_t *bad)
{
    knit_value_t v = knit_v_bytes(buf, size);
    int rc = knit__ep_send(host, 0, id, 0, &v);
    if (rc < 0)
        return rc;
    return knit__ep_drain(worker, take, bad, 0, 0) == 1 ? 0 : KNIT_E_CORRUPT;
}

int main(int argc, char **argv)
{
    size_t size = 8;
    unsigned rounds = 1000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = (unsigned)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr,
                "usage: %s [--size BYTES] [--rounds N]\n"
                "One-threaded encode+publish+decode rounds of a bytes value, for callgrind.\n",
                argv[0]);
            return !strcmp(argv[i], "--help") ? 0 : 2;
        }
    }
    knit__lane_cfg_t cfg = {0};
    knit__shm_lane_t lane;
    int rc = knit__shm_lane_create(&lane, &cfg);
    if (rc < 0) {
        fprintf(stderr, "knit-icount: %s\n", knit_errmsg());
        return 1;
    }
    knit__endpoint_t host, worker;
    knit__endpoint_init(&host, &lane, KNIT__SIDE_HOST);
    knit__endpoint_init(&worker, &lane, KNIT__SIDE_WORKER);
    uint8_t *buf = calloc(1, size ? size : 1);
    size_t bad = 0;
    for (unsigned i = 0; rc == 0 && i < 100; i++) /* warm-up: arena growth, page faults */
        rc = round_trip(&host, &worker, buf, size, i, &bad);
    CALLGRIND_ZERO_STATS;
    CALLGRIND_TOGGLE_COLLECT;
    for (unsigned i = 0; rc == 0 && i < rounds; i++)
        rc = round_trip(&host, &worker, buf, size, i, &bad);
    CALLGRIND_TOGGLE_COLLECT;
    printf("knit-icount: %u rounds of %zu bytes, %zu bad\n", rounds, size, bad);
    free(buf);
    knit__shm_lane_close(&lane);
    return rc < 0 || bad ? 1 : 0;
}
