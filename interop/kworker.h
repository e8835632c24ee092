/*
 * knit interop - a knit worker serving a knitting host (knitting-internals 1, 2.2, 7).
 *
 * knitting starts a process worker as `[prefix..., runtime, entry]` with the lane memory on
 * fd 0 (or a named object), KNITTING_PROCESS_WORKER=1 and, when a prefix is set, the boot
 * payload in KNITTING_PROCESS_WORKER_BOOT. Given as that prefix, this worker reads the payload,
 * maps the lane, resolves the task names to C tasks and serves the request lock with knitting's
 * protocol: the consumer's scan order, the batch acknowledgement, the return lock's
 * highest-free-slot producer, the region allocator and the codec in knitting mode.
 */
#ifndef KNIT_INTEROP_KWORKER_H
#define KNIT_INTEROP_KWORKER_H

#include <stddef.h>
#include <stdint.h>

#include "interop/ktask.h"

#define KNIT__KW_SLOT_BYTES 576u /* 144 words: 512 static bytes + one 64-byte header line */

/* One lock as the boot payload places it in the lane memory (byte offsets). */
typedef struct knit__kw_lock {
    uint64_t headers, sector, arena, arena_len;
} knit__kw_lock_t;

typedef struct knit__kw_boot {
    int fd;            /* the lane memory's descriptor in this process (knitting: 0) */
    char shm_name[64]; /* or its POSIX shm name ("" = by fd) */
    uint64_t size;     /* bytes of the lane memory */
    uint64_t signals;  /* op / rxStatus / txStatus */
    knit__kw_lock_t req, ret;
    uint64_t abort_off, abort_len; /* the abort bitmap (abortSignalSAB); abort_len 0: none */
    uint64_t max_payload;          /* maxPayloadBytes (0: payloadMaxByteLength >> 3) */
    uint32_t lanes;                /* totalNumberOfThread */
    double spin_us, park_ms;
    char **names; /* task names, in the host's order */
    size_t ntasks;
} knit__kw_boot_t;

int knit__kw_parse_boot(const char *text, knit__kw_boot_t *b);
void knit__kw_boot_free(knit__kw_boot_t *b);

/* Map the lane memory the payload describes (fd or name), after checking every slice fits. */
int knit__kw_map(const knit__kw_boot_t *b, uint8_t **base);

typedef struct knit__kw_opts {
    const knit_kx_task_t *extra; /* tasks of a shared object, searched first; may be NULL */
    int trace;                   /* 1: one stderr line per call */
} knit__kw_opts_t;

/* Serve calls until *stop becomes non-zero (a signal handler sets it). */
int knit__kw_serve(
    const knit__kw_boot_t *b, uint8_t *base, const knit__kw_opts_t *o, volatile int *stop);

#endif
