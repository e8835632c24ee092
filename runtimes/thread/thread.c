/*
 * knit runtimes/thread - a worker on a pthread of the host process. The thread builds its
 * worker (bootstrap hook, imported tasks: dlopen happens on the worker thread), records the
 * outcome in the lane's boot word, then runs the loop until the stop word is set. A thread
 * cannot end on its own nor be killed: it is joined once it leaves its loop.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "runtimes/thread/thread.h"

struct knit__runtime {
    int unused; /* thread workers keep no per-pool state */
};

struct knit__runner {
    pthread_t thread;
    knit__worker_cfg_t cfg;
};

static int thread_open(const knit_pool_opts_t *opts, uint32_t workers, knit__runtime_t **out)
{
    (void)workers;
    if (opts->worker.process.sandbox.mode != KNIT_SANDBOX_UNSAFE)
        return knit__err(KNIT_E_UNSUPPORTED,
            "worker.process.sandbox: thread workers share the host's process and cannot be "
            "confined; use runtime KNIT_RUNTIME_PROCESS");
    *out = calloc(1, sizeof **out);
    return *out ? 0 : knit__err(KNIT_E_NOMEM, "thread runtime");
}

static void thread_close(knit__runtime_t *rt)
{
    free(rt);
}

/* Possibly a zeroed lane a closed pool gave back (transports/shm/lane_cache.c). */
static int thread_memory(
    knit__runtime_t *rt, uint32_t worker, const knit__lane_cfg_t *cfg, knit__shm_lane_t *mem)
{
    (void)rt;
    (void)worker;
    return knit__shm_lane_acquire(mem, cfg);
}

static void thread_memory_release(knit__runtime_t *rt, uint32_t worker, knit__shm_lane_t *mem)
{
    (void)rt;
    (void)worker;
    knit__shm_lane_release(mem);
}

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

static int thread_start(knit__runtime_t *rt, const knit__runner_cfg_t *cfg, knit__runner_t **out)
{
    (void)rt;
    knit__runner_t *r = calloc(1, sizeof *r);
    if (!r) {
        int fds[2] = {cfg->worker.fds[0], cfg->worker.fds[1]};
        knit__link_fds_close(fds);
        return knit__err(KNIT_E_NOMEM, "worker thread state");
    }
    r->cfg = cfg->worker;
    int rc = pthread_create(&r->thread, NULL, thread_main, r);
    if (rc != 0) {
        knit__link_fds_close(r->cfg.fds);
        free(r);
        return knit__err(
            KNIT_E_SYS, "pthread_create for worker %u: %s", cfg->worker.index, strerror(rc));
    }
    *out = r;
    return 0;
}

static void thread_join(knit__runtime_t *rt, knit__runner_t *r)
{
    (void)rt;
    pthread_join(r->thread, NULL);
    free(r);
}

static int32_t thread_pid(const knit__runner_t *r)
{
    (void)r;
    return 0;
}

const knit__runtime_ops_t knit__thread_runtime_ops = {
    .name = "thread",
    .flags = KNIT__RUNTIME_SHARED_ADDRESS,
    .open = thread_open,
    .close = thread_close,
    .memory = thread_memory,
    .memory_release = thread_memory_release,
    .start = thread_start,
    .join = thread_join,
    .kill = NULL,
    .exited = NULL,
    .forget = NULL,
    .pid = thread_pid,
};
