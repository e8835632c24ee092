/*
 * knit-micro - what the benchmark groups (codec.c, slot.c, arena.c, pool.c) share with each other
 * and with main.c: their registration functions, error reporting, a fresh lane, and a table
 * registration loop.
 */
#ifndef KNIT_HARNESS_MICRO_MICRO_H
#define KNIT_HARNESS_MICRO_MICRO_H

#include <stddef.h>
#include <stdint.h>

#include "gbench/gbench.h"
#include "knit/error.h"
#include "transports/shm/shm_lane.h"

/* Defined by the group files; 0 or a negative errno value. */
int knit_micro_register_codec(void);
int knit_micro_register_slot(void);
int knit_micro_register_arena(void);
int knit_micro_register_pool(void);

/* knit-micro is also its own process worker program: main() calls this first (pool.c). */
int knit_micro_worker_guard(void);

/* Skip the running benchmark: `what` failed with the knit error `rc`. */
static inline void knit_micro_fail(knit_gbench_state_t *st, const char *what, int rc)
{
    knit_gbench_skip_with_errorf(st, "%s: %s (%s)", what, knit_strerror(rc), knit_errmsg());
}

/* A fresh lane of the default sizes and, each unless NULL, its host and worker endpoints. 0, or
 * a negative knit error after skipping the benchmark. */
static inline int knit_micro_lane_open(knit_gbench_state_t *st, knit__shm_lane_t *lane,
    knit__endpoint_t *host, knit__endpoint_t *worker)
{
    knit__lane_cfg_t cfg = {0}; /* knitting's defaults: 64 MiB arenas, 8 MiB per payload */
    int rc = knit__shm_lane_create(lane, &cfg);
    if (rc < 0) {
        knit_micro_fail(st, "creating a lane", rc);
        return rc;
    }
    if (host)
        knit__endpoint_init(host, lane, KNIT__SIDE_HOST);
    if (worker)
        knit__endpoint_init(worker, lane, KNIT__SIDE_WORKER);
    return 0;
}

/* One benchmark of a group's table. */
typedef struct knit_micro_bench {
    const char *name;
    knit_gbench_run_fn run;
    int64_t arg;
} knit_micro_bench_t;

/* Register benches[0..n-1], each with `flags` (KNIT_GBENCH_...): 0 or the first negative errno
 * value. */
static inline int knit_micro_register_table(
    const knit_micro_bench_t *benches, size_t n, uint32_t flags)
{
    for (size_t i = 0; i < n; i++) {
        knit_gbench_def_t def = {
            .name = benches[i].name, .flags = flags, .run = benches[i].run, .arg = benches[i].arg};
        int rc = knit_gbench_register(&def);
        if (rc < 0)
            return rc;
    }
    return 0;
}

#endif
