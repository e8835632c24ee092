/*
 * knit runtimes/thread - a worker on a pthread of the host process. The thread builds its
 * worker (bootstrap hook, imported tasks: dlopen happens on the worker thread), records the
 * outcome in the lane's boot word, then runs the loop until the stop word is set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/futex.h"
#include "runtimes/runtime.h"

struct knit__runner {
    pthread_t thread;
    knit__worker_cfg_t cfg;
};

static void *thread_main(void *arg)
{
    knit__runner_t *r = arg;
    knit__worker_t *w = NULL;
    int rc = knit__worker_new(&r->cfg, &w); /* reports start-up in the lane's boot word */
    if (rc == 0) {
        knit__worker_run(w);
        knit__worker_free(w);
    }
    return NULL;
}

int knit__thread_start(knit_pool_t *p, knit__lane_t *lane)
{
    knit__runner_t *r = calloc(1, sizeof *r);
    if (!r)
        return knit__err(KNIT_E_NOMEM, "worker thread state");
    r->cfg = (knit__worker_cfg_t) {
        .tasks = p->tasks,
        .ntasks = p->ntasks,
        .index = lane->index,
        .lane = &lane->mem,
        .transport = p->opts.transport,
        .fds = {lane->worker_fds[0], lane->worker_fds[1]},
        .submit = p->stealing ? &p->lanes[p->submit].mem : NULL,
        .consumers = p->nworkers,
        .steal_lanes = p->steal_lanes,
        .spin_ns = p->worker_spin_ns,
        .spin_only = p->opts.wait.spin_only,
        .bootstrap = p->opts.worker.bootstrap,
        .bootstrap_ctx = p->opts.worker.bootstrap_ctx,
        .bootstrap_path = p->opts.worker.bootstrap_import_path,
        .bootstrap_symbol = p->opts.worker.bootstrap_import_symbol,
    };
    int rc = pthread_create(&r->thread, NULL, thread_main, r);
    if (rc != 0) {
        free(r);
        return knit__err(KNIT_E_SYS, "pthread_create for worker %u: %s", lane->index, strerror(rc));
    }
    lane->runner = r;
    lane->worker_fds[0] = lane->worker_fds[1] = -1; /* the worker's now */
    return 0;
}

void knit__thread_join(knit__lane_t *lane)
{
    knit__runner_t *r = lane->runner;
    if (!r)
        return;
    pthread_join(r->thread, NULL);
    free(r);
    lane->runner = NULL;
}
