/*
 * knit runtimes/process - the worker side: knit_worker_process_main() reads the boot payload,
 * maps the lane memory (fd 0 or a named object), builds the task table, runs the bootstrap hook
 * and the worker loop, and reports start-up success or failure in the lane's boot word (and on
 * stderr) so the host can reject the lane's calls with a message that says why.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
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

/* A boot payload too long for the environment: the sealed memfd on fd KNIT__BOOT_FD. */
static char *read_boot_fd(void)
{
    struct stat st;
    int fd = KNIT__BOOT_FD;
    if (fstat(fd, &st) < 0 || st.st_size <= 0 || st.st_size > (off_t)(64u << 20))
        return NULL;
    char *text = malloc((size_t)st.st_size + 1);
    size_t done = 0;
    while (text && done < (size_t)st.st_size) {
        ssize_t n = pread(fd, text + done, (size_t)st.st_size - done, (off_t)done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    close(fd);
    if (!text || done != (size_t)st.st_size) {
        free(text);
        return NULL;
    }
    text[done] = 0;
    return text;
}

/* Arm the parent-death signal, then leave at once if the host is already gone (the signal only
 * covers deaths after it is armed): its life pipe reads as hung up once nobody holds the write
 * end. */
static void watch_parent(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the process that started us */
    const char *life = getenv(KNIT__ENV_LIFE);
    if (!life)
        return;
    int fd = (int)strtol(life, NULL, 10);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLERR)))
        _exit(1);
    close(fd);
}

int knit__child_open(knit__child_t *c)
{
    memset(c, 0, sizeof *c);
    c->lane.fd = -1;
    c->fds[0] = c->fds[1] = -1;
    watch_parent();
    const char *boot = getenv(KNIT__ENV_BOOT);
    char *text = !boot ? NULL : !strcmp(boot, "fd:5") ? read_boot_fd() : strdup(boot);
    /* tasks that start programs must not turn them into knit workers */
    unsetenv(KNIT__ENV_BOOT);
    unsetenv(KNIT__ENV_WORKER);
    unsetenv(KNIT__ENV_LIFE);
    int rc = boot && !text
        ? knit__err(KNIT_E_WORKER_STARTUP, "cannot read the boot payload from fd %d", KNIT__BOOT_FD)
        : knit__boot_decode(text, &c->boot);
    free(text);
    if (rc == 0)
        rc = map_lane(&c->boot, &c->lane);
    if (rc == 0)
        rc = take_link_fds(&c->boot, c->fds);
    if (rc < 0)
        knit__child_fail(c, rc);
    return rc;
}

void knit__child_fail(knit__child_t *c, int rc)
{
    knit__worker_report_boot(&c->lane, rc); /* nothing to report into before the lane maps */
    fprintf(stderr, "knit worker %d: start-up failed: %s\n", (int)getpid(), knit_errmsg());
}

void knit__child_close(knit__child_t *c)
{
    knit__link_fds_close(c->fds);
    knit__shm_lane_close(&c->lane);
    knit__boot_free(&c->boot);
}

/* The worker's lock-down hook: its sandbox, once start-up is done (knit__worker_new). */
static int lockdown(void *ctx)
{
    return knit__sandbox_apply(ctx);
}

int knit_worker_process_main(
    const knit_task_def_t *tasks, size_t ntasks, knit_bootstrap_fn bootstrap, void *bootstrap_ctx)
{
    if (!knit_is_worker_process())
        return KNIT_E_AGAIN;
    knit__child_t c;
    int rc = knit__child_open(&c);
    if (rc < 0) {
        knit__child_close(&c);
        return 1;
    }
    knit__worker_t *w = NULL;
    rc = bind_tasks(&c.boot, tasks, ntasks);
    if (rc < 0) {
        knit__child_fail(&c, rc);
    } else {
        knit__worker_cfg_t cfg = {
            .tasks = c.boot.tasks,
            .ntasks = c.boot.ntasks,
            .index = c.boot.worker,
            .lane = &c.lane,
            .transport = c.boot.transport,
            .fds = {c.fds[0], c.fds[1]},
            .spin_ns = c.boot.spin_ns,
            .spin_only = c.boot.spin_only,
            .bootstrap = c.boot.bootstrap_path ? NULL : bootstrap,
            .bootstrap_ctx = bootstrap_ctx,
            .bootstrap_path = c.boot.bootstrap_path,
            .bootstrap_symbol = c.boot.bootstrap_symbol,
            .lockdown = c.boot.sandbox.strict ? lockdown : NULL,
            .lockdown_ctx = &c.boot.sandbox,
        };
        c.fds[0] = c.fds[1] = -1; /* knit__worker_new takes them and reports the outcome */
        rc = knit__worker_new(&cfg, &w);
        if (rc < 0)
            fprintf(stderr, "knit worker %d: start-up failed: %s\n", (int)getpid(), knit_errmsg());
    }
    if (rc == 0) {
        knit__worker_run(w);
        knit__worker_free(w);
    }
    knit__child_close(&c);
    return rc < 0 ? 1 : 0;
}
