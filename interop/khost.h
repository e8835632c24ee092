/*
 * knit interop - a knit host speaking knitting's process-worker protocol (knitting-internals 1.9,
 * 7): it makes one lane in knitting's single-mapping layout, starts a worker process with the
 * lane on fd 0, KNITTING_PROCESS_WORKER=1 and the boot payload in KNITTING_PROCESS_WORKER_BOOT,
 * publishes requests as knitting's host does and reads the responses. The worker is knitting's
 * own JS process worker (`bun <knitting>/src/runtime/pool.ts`) or knit-knitting-worker.
 *
 * One thread uses a host. Calls are numbered by the host; at most 32 requests wait undecoded in
 * the lane (KNIT_E_FULL then: poll and retry).
 */
#ifndef KNIT_INTEROP_KHOST_H
#define KNIT_INTEROP_KHOST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "interop/kcodec.h"

typedef struct knit__kh_opts {
    char *const *argv;        /* the worker's command (argv[0] is looked up on PATH) */
    const char *const *names; /* the pool's task names */
    size_t ntasks;
    const char *module_url; /* the task module a JS worker imports (workerData.list[0]) */
    uint64_t arena_bytes;   /* payloadMaxByteLength per direction; 0: 1 MiB */
} knit__kh_opts_t;

typedef struct knit__kh_result {
    uint32_t id;
    bool reject;
    knit__kx_value_t value; /* owned: knit__kx_free it */
} knit__kh_result_t;

typedef struct knit__kh knit__kh_t;

int knit__kh_start(const knit__kh_opts_t *o, knit__kh_t **out);

/* Publish a call of task `name`; its id in *id. KNIT_E_FULL: 32 requests wait undecoded. */
int knit__kh_call(knit__kh_t *h, const char *name, knit__kx_value_t *arg, uint32_t *id);

/* One response if there is one: 0, or KNIT_E_AGAIN. KNIT_E_WORKER_DIED once the worker ended. */
int knit__kh_poll(knit__kh_t *h, knit__kh_result_t *out);

/* Wait up to timeout_ns for a response (polling, 20 us naps). */
int knit__kh_wait(knit__kh_t *h, knit__kh_result_t *out, uint64_t timeout_ns);

/* Stop as knitting does (SIGTERM), reap the worker, unmap and close the lane. Returns the
 * worker's wait status, or a negative code. */
int knit__kh_stop(knit__kh_t *h);

pid_t knit__kh_pid(const knit__kh_t *h);

#endif
