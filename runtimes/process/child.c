/*
 * knit runtimes/process - the worker side: knit_worker_process_main() reads the boot payload,
 * maps the lane memory (fd 0 or a named object), builds the task table, runs the bootstrap hook
 * and the worker loop, and reports start-up success or failure in the lane's boot word (and on
 * stderr) so the host can reject the lane's calls with a message that says why.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "base/error.h"
#include "runtimes/process/process.h"

bool knit_is_worker_process(void)
{
    const char *e = getenv(KNIT__ENV_WORKER);
    return e && !strcmp(e, "1");
}

static int cmp_def(const void *a, const void *b)
{
    return strcmp(((const knit_task_def_t *)a)->name, ((const knit_task_def_t *)b)->name);
}

/* Give the boot table its functions: this program's own tasks, matched by name, or imports. */
static int bind_tasks(knit__boot_t *b, const knit_task_def_t *own, size_t nown)
{
    knit_task_def_t *sorted = NULL;
    if (own && nown) {
        sorted = malloc(nown * sizeof *sorted);
        if (!sorted)
            return knit__err(KNIT_E_NOMEM, "task table");
        memcpy(sorted, own, nown * sizeof *sorted);
        qsort(sorted, nown, sizeof *sorted, cmp_def);
        if (nown != b->ntasks) {
            free(sorted);
            return knit__err(KNIT_E_WORKER_STARTUP,
                "this program defines %zu tasks but the host runs %u", nown, b->ntasks);
        }
    }
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < b->ntasks; i++) {
        knit_task_def_t *d = &b->tasks[i].def;
        if (sorted) {
            if (strcmp(sorted[i].name, d->name) != 0)
                rc = knit__err(KNIT_E_WORKER_STARTUP,
                    "task '%s' of the host is not task %u of this program ('%s')", d->name, i,
                    sorted[i].name);
            d->fn = sorted[i].fn;
            d->user_data = sorted[i].user_data;
        }
        if (rc == 0 && !d->fn && !d->import_path)
            rc = knit__err(KNIT_E_WORKER_STARTUP,
                "task '%s' is neither defined by this program nor imported", d->name);
    }
    free(sorted);
    return rc;
}

/* Map the lane: fd 0 (moved to a close-on-exec descriptor; fd 0 becomes /dev/null) or by name. */
static int map_lane(const knit__boot_t *b, knit__shm_lane_t *lane)
{
    memset(lane, 0, sizeof *lane);
    lane->fd = -1;
    if (b->named)
        return knit__shm_lane_open_named(lane, b->name, &b->cfg);
    int fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
    if (fd < 0)
        return knit__err(KNIT_E_WORKER_STARTUP, "fd 0 is not the lane memory (fcntl: %m)");
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0); /* dup2 clears close-on-exec on fd 0 only */
        close(null);
    }
    int rc = knit__shm_lane_attach(lane, fd, &b->cfg);
    if (rc < 0) {
        close(fd);
        return knit__err(
            KNIT_E_WORKER_STARTUP, "fd 0 is not usable lane memory: %s", knit_errmsg());
    }
    return 0;
}

/* A message transport's descriptors arrive as fds 3 (requests in) and 4 (results out): move
 * them to close-on-exec descriptors so programs a task starts do not inherit them. */
static int take_link_fds(const knit__boot_t *b, int fds[2])
{
    const knit__link_ops_t *ops = knit__transport_ops(b->transport);
    if (!ops || !knit__link_has(ops, KNIT__LINK_USES_FDS))
        return 0; /* an unknown transport fails when the worker opens its link */
    for (int i = 0; i < 2; i++) {
        fds[i] = fcntl(KNIT__LINK_FD_RX + i, F_DUPFD_CLOEXEC, 5);
        if (fds[i] < 0) {
            if (i)
                close(fds[0]);
            fds[0] = -1;
            return knit__err(KNIT_E_WORKER_STARTUP,
                "fd %d is not the %s transport's descriptor (fcntl: %m)", KNIT__LINK_FD_RX + i,
                knit_transport_name(b->transport));
        }
        close(KNIT__LINK_FD_RX + i);
    }
    return 0;
}

int knit_worker_process_main(
    const knit_task_def_t *tasks, size_t ntasks, knit_bootstrap_fn bootstrap, void *bootstrap_ctx)
{
    if (!knit_is_worker_process())
        return KNIT_E_AGAIN;
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the process that started us */
    char *text = getenv(KNIT__ENV_BOOT) ? strdup(getenv(KNIT__ENV_BOOT)) : NULL;
    /* tasks that start programs must not turn them into knit workers */
    unsetenv(KNIT__ENV_BOOT);
    unsetenv(KNIT__ENV_WORKER);

    knit__boot_t b;
    knit__shm_lane_t lane = {.fd = -1};
    knit__worker_t *w = NULL;
    int rc = knit__boot_decode(text, &b);
    free(text);
    if (rc == 0)
        rc = map_lane(&b, &lane);
    if (rc == 0)
        rc = bind_tasks(&b, tasks, ntasks);
    int fds[2] = {-1, -1};
    if (rc == 0)
        rc = take_link_fds(&b, fds);
    bool reported = rc == 0; /* from here knit__worker_new reports the outcome */
    if (rc == 0) {
        knit__worker_cfg_t cfg = {
            .tasks = b.tasks,
            .ntasks = b.ntasks,
            .index = b.worker,
            .lane = &lane,
            .transport = b.transport,
            .fds = {fds[0], fds[1]},
            .spin_ns = b.spin_ns,
            .spin_only = b.spin_only,
            .bootstrap = b.bootstrap_path ? NULL : bootstrap,
            .bootstrap_ctx = bootstrap_ctx,
            .bootstrap_path = b.bootstrap_path,
            .bootstrap_symbol = b.bootstrap_symbol,
        };
        rc = knit__worker_new(&cfg, &w);
    }
    if (!reported)
        knit__worker_report_boot(&lane, rc);
    if (rc < 0) {
        fprintf(stderr, "knit worker %d: start-up failed: %s\n", (int)getpid(), knit_errmsg());
    } else {
        knit__worker_run(w);
        knit__worker_free(w);
    }
    knit__shm_lane_close(&lane);
    knit__boot_free(&b);
    return rc < 0 ? 1 : 0;
}
