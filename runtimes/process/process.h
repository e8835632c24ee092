/*
 * knit runtimes/process - workers in child processes.
 *
 * The host spawns the worker program (its own executable by default) behind an optional
 * command prefix, with KNIT_PROCESS_WORKER=1 and a versioned JSON boot payload in
 * KNIT_PROCESS_WORKER_BOOT. The lane memory is a memfd handed over as fd 0, or a named POSIX
 * shm object the child opens. A monitor thread per pool watches the children's pidfds, reaps
 * them and rings the lane's doorbell when one dies, so its calls settle at once.
 */
#ifndef KNIT_RUNTIMES_PROCESS_PROCESS_H
#define KNIT_RUNTIMES_PROCESS_PROCESS_H

#include "sched/pool.h"

#define KNIT__ENV_WORKER   "KNIT_PROCESS_WORKER"
#define KNIT__ENV_BOOT     "KNIT_PROCESS_WORKER_BOOT"
#define KNIT__BOOT_VERSION 1
#define KNIT__LINK_FD_RX   3 /* message transports: the worker's descriptors (fd 4: results) */

/* What a worker process learns from its boot payload. */
typedef struct knit__boot {
    int32_t host_pid;
    uint32_t worker;
    bool named;
    char name[40];
    knit__lane_cfg_t cfg;
    knit_transport_t transport;
    int64_t spin_ns;
    bool spin_only;
    knit__task_t *tasks; /* names and imports owned */
    uint32_t ntasks;
    char *bootstrap_path;
    char *bootstrap_symbol;
} knit__boot_t;

/* Host: the boot payload for `lane` (malloc'd JSON text). */
int knit__boot_encode(const knit_pool_t *p, const knit__lane_t *lane, char **json);
/* Child: parse and validate every field. */
int knit__boot_decode(const char *json, knit__boot_t *out);
void knit__boot_free(knit__boot_t *b);

/* Host side. */
int knit__process_start(knit_pool_t *p, knit__lane_t *lane);
/* Wait for a stopped worker to exit (killing it after a grace period) and reap it. */
void knit__process_join(knit_pool_t *p, knit__lane_t *lane);
/* SIGKILL the lane's child now (hard timeout). */
void knit__process_kill(knit__lane_t *lane);
/* Create a lane's memory as a named POSIX shm object with a fresh random name. */
int knit__process_named_memory(knit_pool_t *p, knit__lane_t *lane);
/* Release what a dead child left: reap it, close its pidfd (the monitor already reaped it). */
void knit__process_forget(knit_pool_t *p, knit__lane_t *lane);
/* The monitor thread of a pool (started with the first child, stopped at shutdown). */
int knit__monitor_watch(knit_pool_t *p, knit__lane_t *lane);
/* Stop watching (the caller reaps); false when the monitor already reaped the child. */
bool knit__monitor_unwatch(knit_pool_t *p, knit__lane_t *lane);
void knit__monitor_stop(knit_pool_t *p);
/* Wait until a reap in progress has finished (before touching a dead lane's memory). */
void knit__monitor_sync(knit_pool_t *p);

#endif
