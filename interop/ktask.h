/*
 * knit interop - C tasks a knitting host calls by name.
 *
 * The knitting host names its tasks; the knit worker resolves every name to a C task from its
 * built-in table (interop/tasks.c) or from a shared object given with --tasks, which exports
 * `const knit_kx_task_t knit_kx_tasks[]` ended by an entry whose name is NULL.
 *
 * A task runs on the worker's thread. It returns 0 when it has settled the call (result set,
 * `reject` says whether it rejects), or KNIT_E_AGAIN when it is not done yet: it is then called
 * again on later passes of the worker loop with the same `state` (knitting's async task). Only
 * such a pending task can time out, as in knitting: when `timeout_ms` (>= 0) passes first the
 * call settles with knitting's timeout outcome (an Error "Task timeout") and the task is called
 * once more with `cancelled` set, to free its state. Any other negative return rejects the call
 * with an Error carrying knit_errmsg().
 *
 * The worker encodes `result` after the task settled and then releases it with knit_value_free
 * (owned values are freed, borrowed ones must outlive the call: the argument, static data) and
 * free(result.stack). `arg` stays valid until then.
 */
#ifndef KNIT_INTEROP_KTASK_H
#define KNIT_INTEROP_KTASK_H

#include <stdbool.h>
#include <stdint.h>

#include "interop/kcodec.h"

typedef struct knit_kx_call {
    const knit__kx_value_t *arg; /* the argument, decoded */
    knit__kx_value_t result;     /* set by the task */
    bool reject;                 /* the result rejects the call */
    bool cancelled;              /* the call timed out: free `state` and return */
    bool aborted;                /* the caller aborted it (knitting's abortSignal tasks): the
                                  * host set the call's bit in the abort bitmap; re-read before
                                  * every call of the task */
    void *state;                 /* the task's own, kept across calls */
    uint64_t now_ns;             /* CLOCK_MONOTONIC at this call */
} knit_kx_call_t;

typedef int (*knit_kx_task_fn)(knit_kx_call_t *call);

typedef struct knit_kx_task {
    const char *name; /* the knitting task name it serves */
    knit_kx_task_fn fn;
    int64_t timeout_ms; /* < 0: none */
} knit_kx_task_t;

/* The built-in table (interop/tasks.c), ended by a NULL name. */
extern const knit_kx_task_t knit__kx_builtin_tasks[];

/* qsort comparator of task names (char * elements) in knitting's order: JavaScript's
 * localeCompare for identifiers, which gives each task its function index. */
int knit__kx_name_cmp(const void *a, const void *b);

/* Helpers for tasks: reject with an Error {name, message} (copied). */
int knit__kx_reject_error(knit_kx_call_t *c, const char *name, const char *message);

#endif
