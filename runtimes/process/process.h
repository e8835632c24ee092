/*
 * knit runtimes/process - workers in child processes.
 *
 * The host spawns the worker program (its own executable by default) behind an optional
 * command prefix, with KNIT_PROCESS_WORKER=1 and a versioned JSON boot payload in
 * KNIT_PROCESS_WORKER_BOOT. The lane memory is a memfd handed over as fd 0, or a named POSIX
 * shm object the child opens. A monitor thread per pool watches the children's pidfds, reaps
 * them and rings the lane's doorbell when one dies, so its calls settle at once. Host side:
 * spawn.c (the runtime's operations), monitor.c, boot.c; child side: child.c.
 */
#ifndef KNIT_RUNTIMES_PROCESS_PROCESS_H
#define KNIT_RUNTIMES_PROCESS_PROCESS_H

#include <pthread.h>
#include <stdatomic.h>

#include "runtimes/process/sandbox.h"
#include "runtimes/runtime.h"

#define KNIT__ENV_WORKER   "KNIT_PROCESS_WORKER"
#define KNIT__ENV_BOOT     "KNIT_PROCESS_WORKER_BOOT"
#define KNIT__ENV_LIFE     "KNIT_PROCESS_WORKER_LIFE" /* the fd of the host's life pipe */
#define KNIT__BOOT_VERSION 1
#define KNIT__LINK_FD_RX   3 /* message transports: the worker's descriptors (fd 4: results) */
/* The boot payload of a worker with a permission policy ("sandbox"): a worker program built
 * before the policy existed refuses it instead of running unconfined. */
#define KNIT__BOOT_VERSION_SANDBOX 2
/* A boot payload longer than this (a few thousand tasks) does not fit one environment string
 * (Linux: 128 KiB each): it travels in a sealed memfd inherited as fd KNIT__BOOT_FD, and the
 * variable says "fd:5". */
#define KNIT__BOOT_ENV_MAX 65536u
#define KNIT__BOOT_FD      5
/* The read end of a pipe whose write end only the host holds (close-on-exec): it reads as hung
 * up once the host is gone, however the worker was started (a prefix, another pid namespace). */
#define KNIT__LIFE_FD  6
#define KNIT__FD_SPARE 7 /* descriptors for the child are staged at or above this */

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
    knit__sandbox_t sandbox; /* applied after start-up, before the first call */
} knit__boot_t;

typedef struct knit__monitor knit__monitor_t;

/* The process runtime's state of one pool. */
struct knit__runtime {
    knit_process_opts_t opts; /* borrowed strings, as the pool's options */
    char *self_exe;           /* the worker program when opts.program is NULL */
    knit__monitor_t *monitor; /* started with the first child, stopped at close */
    uint32_t workers;
    char (*names)[40]; /* named memory: each worker lane's object name ("" when inherited) */
    int life[2];       /* the life pipe (KNIT__LIFE_FD): children get [0], the host keeps [1] */
};

/* One child. The monitor thread writes `exit_code`, `exit_signal` and then `died`. */
struct knit__runner {
    uint32_t worker;
    int32_t pid;
    int pidfd;
    _Atomic uint32_t died;
    int exit_code;
    int exit_signal;
    _Atomic uint32_t *bell_seq;   /* the lane's host doorbell, rung when the child ends */
    _Atomic uint32_t *death_bell; /* the pool's own word, rung then too */
    int wake_fd;                  /* written then too, or -1 */
};

/* Host: the boot payload of a worker (malloc'd JSON text); `shm_name` "" when inherited;
 * `sandbox` the workers' policy (checked by knit__sandbox_check). */
int knit__boot_encode(const knit__runner_cfg_t *cfg, const char *shm_name,
    const knit_sandbox_t *sandbox, char **json);
/* Child: parse and validate every field. */
int knit__boot_decode(const char *json, knit__boot_t *out);
void knit__boot_free(knit__boot_t *b);

/* The monitor (monitor.c): reap `r`'s child when it ends, and tell the host. */
int knit__monitor_watch(knit__runtime_t *rt, knit__runner_t *r);
/* Stop watching (the caller reaps); false when the monitor already reaped the child. */
bool knit__monitor_unwatch(knit__runtime_t *rt, knit__runner_t *r);
void knit__monitor_stop(knit__runtime_t *rt);
/* Wait until a reap in progress has finished (before the lane memory goes away). */
void knit__monitor_sync(knit__runtime_t *rt);

/* Child: what a worker process starts from - its boot payload, its lane memory mapped, and a
 * message transport's descriptors (else -1). knit__child_open reads and clears the worker
 * environment variables, arms the parent-death signal, and on failure reports it (boot word
 * and stderr). knit__child_close releases what is left (fds a link did not take included). */
typedef struct knit__child {
    knit__boot_t boot;
    knit__shm_lane_t lane;
    int fds[2];
} knit__child_t;

int knit__child_open(knit__child_t *c);
/* Report a start-up failure after knit__child_open succeeded. */
void knit__child_fail(knit__child_t *c, int rc);
void knit__child_close(knit__child_t *c);

extern const knit__runtime_ops_t knit__process_runtime_ops;

#endif
