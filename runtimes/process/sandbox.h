/*
 * knit runtimes/process - the permission policy of process workers (knit_sandbox_t): checked
 * on the host, carried in the boot payload (boot.c), enforced by the worker (sandbox.c) after
 * its start-up and before it serves its first call.
 */
#ifndef KNIT_RUNTIMES_PROCESS_SANDBOX_H
#define KNIT_RUNTIMES_PROCESS_SANDBOX_H

#include <stdbool.h>

#include "knit/knit.h"

/* Test builds and tests only: a worker started with this variable set to 1 behaves as on a
 * kernel without Landlock (start-up fails unless the policy is best effort). */
#define KNIT__ENV_TEST_NO_LANDLOCK "KNIT_TEST_SANDBOX_NO_LANDLOCK"

/* The worker's copy of a policy (from the boot payload): lists NULL-terminated, all owned. */
typedef struct knit__sandbox {
    bool strict; /* false: no policy, nothing below applies */
    bool allow_net;
    bool allow_exec;
    bool best_effort;
    char **read;
    char **write;
    char **env;
} knit__sandbox_t;

/* Host: KNIT_E_INVAL with a message naming the field for a policy that cannot be right (an
 * unknown mode, an empty or over-long path, a variable name with '='). */
int knit__sandbox_check(const knit_sandbox_t *s);

/* Worker: confine this process - Landlock, then seccomp, then the environment. 0, or
 * KNIT_E_WORKER_STARTUP saying what could not be enforced. Call it single-threaded. */
int knit__sandbox_apply(const knit__sandbox_t *s);

void knit__sandbox_free(knit__sandbox_t *s);

#endif
